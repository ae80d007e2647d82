//! Command-line definitions (clap) and the settings they resolve to.
//!
//! This module describes arguments as the user types them ([`Cli`]); [`settings`] resolves them
//! once into the typed [`settings::Settings`] the commands run with (parse, then resolve). Each
//! subcommand's behaviour lives in `commands/`; every environment variable the tool reads is
//! named and read in [`env_vars`].

pub mod env_vars;
pub mod settings;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Examples:
  tokensmith validate -f tokensmith.yaml
  tokensmith plan -f examples/quickstart.yaml
  tokensmith plan --format markdown --out plan.json --detailed-exitcode
  tokensmith apply plan.json
  tokensmith apply -f tokensmith.yaml --auto-approve
  tokensmith drift --format json
  tokensmith inventory --env prod
  tokensmith sandbox --listen 127.0.0.1:8080 --seed seed.yaml

Exit codes: 0 success and nothing to do, 1 error, 2 changes pending (plan --detailed-exitcode) or drift found.";

/// GitOps for Dynatrace access tokens: plan, apply, rotate and deliver tokens from a desired-state file.
#[derive(Debug, Parser)]
#[command(name = "tokensmith", version, about, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    /// When to use colour: auto (only on a terminal, never with NO_COLOR), always or never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,

    /// How long one Kubernetes request may take, answer and credentials included: raise it
    /// when a kubeconfig's exec plugin waits for an interactive login (e.g. `5m`).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "60s",
        env = "TOKENSMITH_KUBE_TIMEOUT",
        global = true
    )]
    pub kube_timeout: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a desired-state file offline and report every problem with its file:line:column.
    #[command(
        after_help = "Examples:\n  tokensmith validate\n  tokensmith validate -f examples/operator.yaml"
    )]
    Validate(ValidateArgs),

    /// Print the JSON Schema of the desired-state file, or check a committed copy.
    #[command(
        after_help = "Examples:\n  tokensmith schema > schemas/tokensmith.schema.json\n  tokensmith schema --check schemas/tokensmith.schema.json"
    )]
    Schema(SchemaArgs),

    /// Compare the desired state with live Dynatrace and print an ordered plan.
    #[command(
        after_help = "Examples:\n  tokensmith plan -f examples/quickstart.yaml\n  tokensmith plan --format markdown --out plan.json --detailed-exitcode\n  tokensmith plan --fail-on-expiry-within 7d"
    )]
    Plan(PlanArgs),

    /// Execute a saved plan, or plan and execute the desired state.
    #[command(
        after_help = "Examples:\n  tokensmith apply plan.json\n  tokensmith apply -f tokensmith.yaml --auto-approve"
    )]
    Apply(ApplyArgs),

    /// Report what changed outside git (exit 2 when drift is found).
    #[command(after_help = "Examples:\n  tokensmith drift\n  tokensmith drift --format markdown")]
    Drift(DriftArgs),

    /// Respond to a leaked token: read its secret from stdin (or --secret-file, never the
    /// command line), find it, rotate a managed one with zero grace and revoke the leaked value,
    /// or disable an unmanaged one. Exits 1 while the leaked token is still valid.
    #[command(
        after_help = "Examples:\n  pbpaste | tokensmith leak --auto-approve\n  tokensmith leak --secret-file /tmp/leaked.txt"
    )]
    Leak(LeakArgs),

    /// List every live token, classified: managed, unused, expiring, over-privileged.
    #[command(
        after_help = "Examples:\n  tokensmith inventory\n  tokensmith inventory --env prod --format json\n  tokensmith inventory --class expired --class never-used --owner jane@example.com\n  tokensmith inventory --format html > tokens.html"
    )]
    Inventory(InventoryArgs),

    /// Serve the Dynatrace emulator over HTTP on loopback, or move the clock of (or seed) a
    /// spec's embedded `sandbox://NAME`.
    #[command(
        after_help = "Examples:\n  tokensmith sandbox\n  tokensmith sandbox --listen 127.0.0.1:8080 --seed seed.yaml --state sandbox-state.json\n  tokensmith sandbox clock advance 30d -f examples/quickstart.yaml\n  tokensmith sandbox clock show\n  tokensmith sandbox seed my-seed.yaml --name demo"
    )]
    Sandbox(SandboxArgs),

    /// Release an apply lock left behind by a crashed run.
    #[command(
        name = "force-unlock",
        after_help = "Examples:\n  tokensmith force-unlock prod 6f1c2a\n  tokensmith force-unlock account-main 2077699177"
    )]
    ForceUnlock(ForceUnlockArgs),

    /// Print a shell completion script (bash, zsh, fish or powershell) on stdout.
    #[command(
        after_help = "Examples:\n  tokensmith completions bash > /etc/bash_completion.d/tokensmith\n  tokensmith completions zsh > \"${fpath[1]}/_tokensmith\"\n  tokensmith completions fish > ~/.config/fish/completions/tokensmith.fish"
    )]
    Completions(CompletionsArgs),

    /// Print the manual page (roff) on stdout.
    #[command(after_help = "Examples:\n  tokensmith man > tokensmith.1 && man ./tokensmith.1")]
    Man,
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: CompletionShell,
}

/// The shells `tokensmith completions` writes a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

/// Where the desired-state file is.
#[derive(Debug, Clone, Args)]
pub struct SpecArgs {
    /// The desired-state file.
    #[arg(
        short = 'f',
        long = "file",
        default_value = DEFAULT_SPEC_FILE,
        value_name = "FILE"
    )]
    pub file: PathBuf,
}

/// The desired-state file when `-f` is not given.
pub const DEFAULT_SPEC_FILE: &str = "tokensmith.yaml";

#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// `human`, or `github` for `::error file=…,line=…` workflow annotations on stdout.
    #[arg(long, value_enum, default_value_t = ValidateFormat::Human)]
    pub format: ValidateFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidateFormat {
    /// `file:line:column` diagnostics for people.
    Human,
    /// `::error file=…,line=…` workflow annotations on stdout.
    Github,
}

/// Where the spec comes from in git.
#[derive(Debug, Clone, Args)]
pub struct GitArgs {
    /// Use the spec as committed at this ref (commit, branch, tag), read from git objects
    /// without checking anything out: exactly the merged commit, not a dirty tree.
    #[arg(long, value_name = "REF")]
    pub spec_ref: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct SchemaArgs {
    /// Compare this file with the current schema instead of printing it; exit 1 when it differs.
    #[arg(long, value_name = "PATH")]
    pub check: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Text for a terminal (coloured on a terminal unless NO_COLOR).
    Human,
    /// Machine-readable JSON on stdout.
    Json,
    /// A pull-request comment (GitHub's size limit kept).
    Markdown,
}

#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    #[command(flatten)]
    pub git: GitArgs,
    /// Also show what the change does to the desired state between this ref and the spec at
    /// hand (added and removed tokens, scope, policy and target changes). A `read_command` that
    /// is new or changed against REF is not run (the target is treated as write-only).
    #[arg(long, value_name = "REF")]
    pub base: Option<String>,
    /// Run no spec command (`read_command`); exec targets are treated as write-only.
    #[arg(long)]
    pub no_exec: bool,
    /// Write OpenMetrics (days to expiry per managed token) to this file.
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
    /// Only these environments (repeatable); accounts are read either way.
    #[arg(long = "env", value_name = "NAME")]
    pub envs: Vec<String>,
    /// Only these accounts (repeatable); environments are read either way.
    #[arg(long = "account", value_name = "NAME")]
    pub accounts: Vec<String>,
    /// Save the plan (with the fingerprint of its inputs) for `apply PLAN`.
    #[arg(long, value_name = "PLAN")]
    pub out: Option<PathBuf>,
    /// How the plan is written.
    #[arg(long, value_enum, default_value_t = PlanFormat::Human)]
    pub format: PlanFormat,
    /// Exit 0 when there is nothing to do, 2 when there are changes, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Fail (exit 1) when a managed token expires within this duration (e.g. `7d`).
    #[arg(long, value_name = "DURATION")]
    pub fail_on_expiry_within: Option<String>,
    /// Rotate this token now, regardless of its schedule (repeatable; `KEY` in every
    /// environment, `KEY@ENV` in one environment or account).
    #[arg(long, value_name = "KEY[@ENV]")]
    pub replace: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ApplyArgs {
    /// A plan saved with `plan --out`; without it, plan the desired state first.
    #[arg(value_name = "PLAN")]
    pub plan: Option<PathBuf>,
    /// The desired-state file (default `tokensmith.yaml`; with PLAN, the spec the plan was
    /// made from, found on its own).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub git: GitArgs,
    /// Apply a saved plan even though the spec is now at a different commit than when it was
    /// planned (the plan is still refused when live state or targets changed).
    #[arg(long)]
    pub allow_other_commit: bool,
    /// Keep the per-environment apply lock in this git remote (a pushed ref) instead of a local
    /// file, for CI runners that share no disk.
    #[arg(long, value_name = "REMOTE")]
    pub lock_remote: Option<String>,
    /// How long to wait for another apply's lock before failing (e.g. `5m`).
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    pub lock_timeout: String,
    /// How long a Kubernetes delivery waits for the Dynatrace Operator to confirm or roll out a
    /// new token after touching the DynaKube (e.g. `2m`); what it has not done by then, a later
    /// apply checks again.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub operator_wait: String,
    /// Only these environments (repeatable); accounts are read either way.
    #[arg(long = "env", value_name = "NAME")]
    pub envs: Vec<String>,
    /// Only these accounts (repeatable); environments are read either way.
    #[arg(long = "account", value_name = "NAME")]
    pub accounts: Vec<String>,
    /// Do not ask for confirmation (for CI).
    #[arg(long)]
    pub auto_approve: bool,
    /// How the plan (and, in markdown, the result) is written; progress goes to stderr.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
    /// Rotate this token now, regardless of its schedule (repeatable; `KEY` in every
    /// environment, `KEY@ENV` in one environment or account). Not with a saved plan.
    #[arg(long, value_name = "KEY[@ENV]")]
    pub replace: Vec<String>,
    /// Where to write the JSON-lines journal (default under `.tokensmith/` next to the spec).
    #[arg(long, value_name = "PATH")]
    pub journal: Option<PathBuf>,
    /// How many exec targets (e.g. one `oneagentctl` per host of a fleet) are delivered, and how
    /// many exec commands run, at once.
    #[arg(long, value_name = "N", default_value_t = crate::deliver::DEFAULT_EXEC_CONCURRENCY,
          value_parser = exec_concurrency)]
    pub exec_concurrency: usize,
}

/// `--exec-concurrency`: 1 to 1024.
fn exec_concurrency(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=1024).contains(&n) => Ok(n),
        _ => Err(format!("`{text}` is not a number from 1 to 1024")),
    }
}

#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Run no spec command (`read_command`); exec targets are treated as write-only.
    #[arg(long)]
    pub no_exec: bool,
    /// Only these environments (repeatable); accounts are read either way.
    #[arg(long = "env", value_name = "NAME")]
    pub envs: Vec<String>,
    /// Only these accounts (repeatable); environments are read either way.
    #[arg(long = "account", value_name = "NAME")]
    pub accounts: Vec<String>,
    /// How the report is written.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// Text for a terminal (coloured on a terminal unless NO_COLOR).
    Human,
    /// The plan as versioned JSON on stdout.
    Json,
    /// A pull-request comment (GitHub's size limit kept).
    Markdown,
    /// One self-contained page (inventory, timeline and steps) on stdout.
    Html,
}

#[derive(Debug, Clone, Args)]
pub struct InventoryArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Run no spec command (`read_command`); exec targets are treated as write-only.
    #[arg(long)]
    pub no_exec: bool,
    /// Only these environments (repeatable); accounts are read either way.
    #[arg(long = "env", value_name = "NAME")]
    pub envs: Vec<String>,
    /// Only these accounts (repeatable); environments are read either way.
    #[arg(long = "account", value_name = "NAME")]
    pub accounts: Vec<String>,
    /// `csv` for spreadsheets; `html` writes one self-contained page (a sortable, filterable
    /// table and a timeline of every token's life) to stdout.
    #[arg(long, value_enum, default_value_t = InventoryFormat::Human)]
    pub format: InventoryFormat,
    /// Only tokens in this class (repeatable; any of them matches).
    #[arg(long = "class", value_enum, value_name = "CLASS")]
    pub classes: Vec<InventoryClass>,
    /// Only tokens whose owner contains this text (case-insensitive).
    #[arg(long, value_name = "OWNER")]
    pub owner: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InventoryFormat {
    /// A table for a terminal.
    Human,
    /// Machine-readable JSON on stdout.
    Json,
    /// A markdown table.
    Markdown,
    /// Comma-separated values for spreadsheets.
    Csv,
    /// One self-contained page (a sortable, filterable table and a timeline) on stdout.
    Html,
}

/// What `inventory --class` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InventoryClass {
    Expired,
    ExpiringSoon,
    NeverUsed,
    Unused,
    OverPrivileged,
    Duplicate,
    Disabled,
    Personal,
    ManagementToken,
    ForeignMarker,
    Managed,
    Superseded,
    Unmanaged,
}

#[derive(Debug, Clone, Args)]
pub struct DriftArgs {
    #[command(flatten)]
    pub report: ReportArgs,
    /// Also read the values readable targets (files, Kubernetes Secrets) hold and look each up
    /// in Dynatrace (`POST /api/v2/apiTokens/lookup`): report a value that is not the token its
    /// record claims, or no valid token at all.
    #[arg(long)]
    pub verify_values: bool,
    /// Write OpenMetrics (days to expiry, drift count) to this file.
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
    /// Send the same numbers to each environment's metrics ingest API
    /// (`/api/v2/metrics/ingest`; the management token needs `metrics.ingest`).
    #[arg(long)]
    pub send_metrics: bool,
}

/// `tokensmith sandbox`: serve (the default), or look after the embedded sandbox of a spec.
#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SandboxArgs {
    #[command(subcommand)]
    pub command: Option<SandboxCommand>,
    /// Serving options when no subcommand is given (as `sandbox serve`).
    #[command(flatten)]
    pub serve: SandboxServeArgs,
}

#[derive(Debug, Clone, Subcommand)]
pub enum SandboxCommand {
    /// Serve the emulator over HTTP until Ctrl-C (what `tokensmith sandbox` alone does).
    #[command(
        after_help = "Examples:\n  tokensmith sandbox serve --listen 127.0.0.1:8080 --seed seed.yaml"
    )]
    Serve(SandboxServeArgs),
    /// Show or move the clock of a spec's embedded sandbox (`sandbox://NAME`).
    Clock(SandboxClockArgs),
    /// Replace the state of a spec's embedded sandbox (`sandbox://NAME`) with the world a seed
    /// file declares; the seed must declare an environment with the id NAME.
    #[command(
        after_help = "Examples:\n  tokensmith sandbox seed my-seed.yaml -f examples/quickstart.yaml"
    )]
    Seed(SandboxSeedArgs),
}

#[derive(Debug, Clone, Args)]
pub struct SandboxServeArgs {
    /// Address to listen on (loopback by default).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: String,
    /// A seed file declaring environments, tokens, tenant tokens, accounts and OAuth clients.
    #[arg(long, value_name = "FILE")]
    pub seed: Option<PathBuf>,
    /// Persist the emulator's state in this file (loaded at start if present).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
}

/// Which embedded sandbox: a `sandbox://NAME` of the spec.
#[derive(Debug, Clone, Args)]
pub struct EmbeddedSandboxArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// The NAME of `sandbox://NAME`; needed only when the spec has several.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct SandboxClockArgs {
    #[command(subcommand)]
    pub action: SandboxClockAction,
}

#[derive(Debug, Clone, Subcommand)]
pub enum SandboxClockAction {
    /// Move the sandbox clock forward (`30d`, `36h`; units s m h d w, as in the spec), e.g. to
    /// bring a rotation due.
    #[command(
        after_help = "Examples:\n  tokensmith sandbox clock advance 30d -f examples/quickstart.yaml\n  tokensmith sandbox clock advance 36h --name prod"
    )]
    Advance {
        /// How far (a number and a unit: s, m, h, d or w).
        #[arg(value_name = "DURATION")]
        by: String,
        #[command(flatten)]
        sandbox: EmbeddedSandboxArgs,
    },
    /// Print the sandbox time.
    #[command(
        after_help = "Examples:\n  tokensmith sandbox clock show -f examples/quickstart.yaml"
    )]
    Show {
        #[command(flatten)]
        sandbox: EmbeddedSandboxArgs,
    },
}

#[derive(Debug, Clone, Args)]
pub struct SandboxSeedArgs {
    /// The seed file (the format of examples/sandbox/seed.yaml).
    #[arg(value_name = "SEED")]
    pub seed_file: PathBuf,
    #[command(flatten)]
    pub sandbox: EmbeddedSandboxArgs,
}

#[derive(Debug, Clone, Args)]
pub struct LeakArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Read the leaked secret from this file instead of stdin.
    #[arg(long, value_name = "PATH")]
    pub secret_file: Option<PathBuf>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ForceUnlockArgs {
    /// The environment whose lock to release (`account-NAME` for an account).
    pub env: String,
    /// The lock id printed by the apply that holds it.
    pub lock_id: String,
    #[command(flatten)]
    pub spec: SpecArgs,
    /// The lock lives in this git remote (as with `apply --lock-remote`).
    #[arg(long, value_name = "REMOTE")]
    pub lock_remote: Option<String>,
}
