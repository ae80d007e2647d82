//! Parse, then resolve: the parsed command line ([`Cli`], clap's raw arguments) becomes the
//! typed [`Settings`] a command runs with, once, before any command starts.
//!
//! Durations arrive as [`SpecDuration`]/[`Duration`], the sandbox's `--listen` as resolved
//! socket addresses, output formats as the renderer's [`Format`], and the HTTP client's settings
//! as [`ClientSettings`]; commands do not parse strings. A bad value fails here with an error
//! naming the flag, before anything is read or changed. What the settings mean is each
//! command's business; environment variables are read in [`super::env_vars`], not here.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use super::env_vars;
pub use super::EmbeddedSandboxArgs;
use super::{
    ApplyArgs, Cli, Command, CompletionShell, DriftArgs, ForceUnlockArgs, GitArgs, InventoryArgs,
    InventoryClass, InventoryFormat, LeakArgs, OutputFormat, PlanArgs, PlanFormat, ReportArgs,
    SandboxArgs, SandboxClockAction, SandboxCommand, SandboxServeArgs, SchemaArgs, SpecArgs,
    ValidateArgs, DEFAULT_SPEC_FILE,
};
use crate::deliver::KubeSettings;
use crate::live::{ClientSettings, ProxySettings};
use crate::model::SpecDuration;
use crate::plan::ReplaceRequest;
use crate::render::Format;

/// Everything a command needs from the command line, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    pub connect: Connections,
    pub command: CommandSettings,
}

/// How tokensmith reaches the systems it reads and writes.
#[derive(Debug, Clone, Default)]
pub struct Connections {
    /// How every Dynatrace and account client connects, times out and retries.
    pub dynatrace: ClientSettings,
    /// Where Kubernetes configuration comes from and how long an API server, or a kubeconfig's
    /// exec plugin fetching credentials, may take (`--kube-timeout`).
    pub kubernetes: KubeSettings,
}

/// One subcommand's resolved settings.
#[derive(Debug, Clone)]
pub enum CommandSettings {
    Validate(ValidateArgs),
    Schema(SchemaArgs),
    Plan(PlanSettings),
    Apply(ApplySettings),
    Drift(DriftSettings),
    Inventory(InventorySettings),
    Sandbox(SandboxSettings),
    ForceUnlock(ForceUnlockArgs),
    Leak(LeakArgs),
    Completions(CompletionShell),
    Man,
}

/// `tokensmith plan`.
#[derive(Debug, Clone)]
pub struct PlanSettings {
    pub spec: SpecArgs,
    pub git: GitArgs,
    pub base: Option<String>,
    /// `--no-exec`: run no spec command.
    pub no_exec: bool,
    pub metrics_file: Option<PathBuf>,
    pub envs: Vec<String>,
    /// `--account`: only these accounts (empty = every one).
    pub accounts: Vec<String>,
    pub out: Option<PathBuf>,
    pub format: Format,
    /// `--format html`: one self-contained page instead of `format`.
    pub html: bool,
    pub detailed_exitcode: bool,
    pub fail_on_expiry_within: Option<SpecDuration>,
    /// `--replace KEY[@ENV]`: rotate these now.
    pub replace: Vec<ReplaceRequest>,
}

/// `tokensmith apply`.
#[derive(Debug, Clone)]
pub struct ApplySettings {
    pub plan: Option<PathBuf>,
    pub spec: SpecArgs,
    /// Whether `-f` was given (otherwise a saved plan's recorded spec is used).
    pub spec_given: bool,
    pub git: GitArgs,
    pub allow_other_commit: bool,
    pub lock_remote: Option<String>,
    /// How long to wait for another apply's lock (`--lock-timeout`).
    pub lock_timeout: Duration,
    pub envs: Vec<String>,
    /// `--account`: only these accounts (empty = every one).
    pub accounts: Vec<String>,
    pub auto_approve: bool,
    pub format: Format,
    pub journal: Option<PathBuf>,
    /// Exec targets delivered at once (`--exec-concurrency`).
    pub exec_concurrency: usize,
    /// `--operator-wait`: how long a Kubernetes delivery waits for the operator.
    pub operator_wait: Duration,
    /// `--replace KEY[@ENV]`: rotate these now (only when planning, not with a saved plan).
    pub replace: Vec<ReplaceRequest>,
}

/// `tokensmith inventory`, and the report part of `drift`.
#[derive(Debug, Clone)]
pub struct ReportSettings {
    pub spec: SpecArgs,
    /// `--no-exec`: run no spec command.
    pub no_exec: bool,
    pub envs: Vec<String>,
    /// `--account`: only these accounts (empty = every one).
    pub accounts: Vec<String>,
    pub format: Format,
}

/// `tokensmith inventory`.
#[derive(Debug, Clone)]
pub struct InventorySettings {
    pub spec: SpecArgs,
    /// `--no-exec`: run no spec command.
    pub no_exec: bool,
    pub envs: Vec<String>,
    pub accounts: Vec<String>,
    pub format: InventoryFormat,
    /// How the human form is written (colour).
    pub human: Format,
    pub classes: Vec<InventoryClass>,
    pub owner: Option<String>,
}

/// `tokensmith drift`.
#[derive(Debug, Clone)]
pub struct DriftSettings {
    pub report: ReportSettings,
    pub verify_values: bool,
    pub metrics_file: Option<PathBuf>,
    pub send_metrics: bool,
}

/// `tokensmith sandbox`: serve, or look after an embedded sandbox.
#[derive(Debug, Clone)]
pub enum SandboxSettings {
    Serve(SandboxServeSettings),
    /// `sandbox clock advance DURATION`.
    ClockAdvance {
        sandbox: EmbeddedSandboxArgs,
        by: SpecDuration,
    },
    /// `sandbox clock show`.
    ClockShow {
        sandbox: EmbeddedSandboxArgs,
    },
    /// `sandbox seed FILE`.
    Seed {
        sandbox: EmbeddedSandboxArgs,
        file: PathBuf,
    },
}

/// `tokensmith sandbox [serve]`.
#[derive(Debug, Clone)]
pub struct SandboxServeSettings {
    pub listen: ListenAddress,
    pub seed: Option<PathBuf>,
    pub state: Option<PathBuf>,
}

/// `--listen` as written and the socket addresses it names (a host name may name several;
/// binding tries them in order).
#[derive(Debug, Clone)]
pub struct ListenAddress {
    pub text: String,
    pub addrs: Vec<SocketAddr>,
}

impl ListenAddress {
    /// Resolve `HOST:PORT` (an IP address or a host name such as `localhost`).
    pub fn resolve(text: &str) -> anyhow::Result<Self> {
        let addrs: Vec<SocketAddr> = text
            .to_socket_addrs()
            .and_then(|found| {
                let found: Vec<SocketAddr> = found.collect();
                if found.is_empty() {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "the address names no host",
                    ))
                } else {
                    Ok(found)
                }
            })
            .with_context(|| listen_hint(text))?;
        Ok(ListenAddress {
            text: text.to_owned(),
            addrs,
        })
    }
}

/// The error text for an address the sandbox cannot listen on.
pub fn listen_hint(text: &str) -> String {
    format!("cannot listen on {text}; pick another with --listen 127.0.0.1:PORT")
}

impl Cli {
    /// Resolve the parsed arguments; `color` is the printer's decision (human output is
    /// coloured only when the printer is).
    pub fn resolve(self, color: bool) -> anyhow::Result<Settings> {
        let format = |f: OutputFormat| match f {
            OutputFormat::Human => Format::Human { color },
            OutputFormat::Json => Format::Json,
            OutputFormat::Markdown => Format::Markdown,
        };
        let report = |args: ReportArgs| ReportSettings {
            spec: args.spec,
            no_exec: args.no_exec,
            envs: args.envs,
            accounts: args.accounts,
            format: format(args.format),
        };
        let command = match self.command {
            Command::Validate(args) => CommandSettings::Validate(args),
            Command::Schema(args) => CommandSettings::Schema(args),
            Command::Plan(args) => CommandSettings::Plan(resolve_plan(args, format)?),
            Command::Apply(args) => CommandSettings::Apply(resolve_apply(args, format)?),
            Command::Drift(DriftArgs {
                report: args,
                verify_values,
                metrics_file,
                send_metrics,
            }) => CommandSettings::Drift(DriftSettings {
                report: report(args),
                verify_values,
                metrics_file,
                send_metrics,
            }),
            Command::Inventory(args) => CommandSettings::Inventory(resolve_inventory(args, color)),
            Command::Sandbox(args) => CommandSettings::Sandbox(resolve_sandbox(args)?),
            Command::ForceUnlock(args) => CommandSettings::ForceUnlock(args),
            Command::Leak(args) => CommandSettings::Leak(args),
            Command::Completions(args) => CommandSettings::Completions(args.shell),
            Command::Man => CommandSettings::Man,
        };
        let answer_deadline = wait_flag("--kube-timeout", &self.kube_timeout)?;
        if answer_deadline.is_zero() {
            anyhow::bail!("--kube-timeout: must be at least 1s");
        }
        Ok(Settings {
            connect: Connections {
                dynatrace: ClientSettings {
                    proxy: ProxySettings {
                        https: env_vars::https_proxy(),
                        no_proxy: env_vars::no_proxy(),
                    },
                    ..ClientSettings::default()
                },
                kubernetes: KubeSettings {
                    answer_deadline,
                    ..KubeSettings::from_env()
                },
            },
            command,
        })
    }
}

fn resolve_inventory(args: InventoryArgs, color: bool) -> InventorySettings {
    let InventoryArgs {
        spec,
        no_exec,
        envs,
        accounts,
        format,
        classes,
        owner,
    } = args;
    InventorySettings {
        spec,
        no_exec,
        envs,
        accounts,
        format,
        human: Format::Human { color },
        classes,
        owner,
    }
}

fn resolve_plan(
    args: PlanArgs,
    format: impl Fn(OutputFormat) -> Format,
) -> anyhow::Result<PlanSettings> {
    let fail_on_expiry_within = args
        .fail_on_expiry_within
        .as_deref()
        .map(|d| d.parse::<SpecDuration>())
        .transpose()
        .map_err(|e| anyhow::anyhow!("--fail-on-expiry-within: {e}"))?;
    Ok(PlanSettings {
        spec: args.spec,
        git: args.git,
        base: args.base,
        no_exec: args.no_exec,
        metrics_file: args.metrics_file,
        envs: args.envs,
        accounts: args.accounts,
        out: args.out,
        format: format(match args.format {
            PlanFormat::Human | PlanFormat::Html => OutputFormat::Human,
            PlanFormat::Json => OutputFormat::Json,
            PlanFormat::Markdown => OutputFormat::Markdown,
        }),
        html: args.format == PlanFormat::Html,
        detailed_exitcode: args.detailed_exitcode,
        fail_on_expiry_within,
        replace: resolve_replace(&args.replace)?,
    })
}

fn resolve_apply(
    args: ApplyArgs,
    format: impl Fn(OutputFormat) -> Format,
) -> anyhow::Result<ApplySettings> {
    let lock_timeout = wait_flag("--lock-timeout", &args.lock_timeout)?;
    let operator_wait = wait_flag("--operator-wait", &args.operator_wait)?;
    let replace = resolve_replace(&args.replace)?;
    if args.plan.is_some() && !replace.is_empty() {
        anyhow::bail!(
            "--replace: a saved plan already says what it rotates; pass --replace to `plan --out` instead"
        );
    }
    Ok(ApplySettings {
        plan: args.plan,
        spec_given: args.file.is_some(),
        spec: SpecArgs {
            file: args
                .file
                .unwrap_or_else(|| PathBuf::from(DEFAULT_SPEC_FILE)),
        },
        git: args.git,
        allow_other_commit: args.allow_other_commit,
        lock_remote: args.lock_remote,
        lock_timeout,
        envs: args.envs,
        accounts: args.accounts,
        auto_approve: args.auto_approve,
        format: format(args.format),
        journal: args.journal,
        exec_concurrency: args.exec_concurrency,
        operator_wait,
        replace,
    })
}

/// A wait given on the command line in the spec's duration syntax (`0s`, `5m`, `2h`).
fn wait_flag(flag: &str, text: &str) -> anyhow::Result<Duration> {
    let wait: SpecDuration = text.parse().map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
    Ok(Duration::from_secs(wait.as_secs().max(0) as u64))
}

/// `--replace KEY[@ENV]`, each checked for a valid key.
fn resolve_replace(values: &[String]) -> anyhow::Result<Vec<ReplaceRequest>> {
    values
        .iter()
        .map(|v| {
            v.parse::<ReplaceRequest>()
                .map_err(|e| anyhow::anyhow!("--replace {v}: {e}"))
        })
        .collect()
}

fn resolve_sandbox(args: SandboxArgs) -> anyhow::Result<SandboxSettings> {
    let serve = |args: SandboxServeArgs| -> anyhow::Result<SandboxSettings> {
        Ok(SandboxSettings::Serve(SandboxServeSettings {
            listen: ListenAddress::resolve(&args.listen)?,
            seed: args.seed,
            state: args.state,
        }))
    };
    match args.command {
        None => serve(args.serve),
        Some(SandboxCommand::Serve(args)) => serve(args),
        Some(SandboxCommand::Clock(clock)) => match clock.action {
            SandboxClockAction::Advance { by, sandbox } => Ok(SandboxSettings::ClockAdvance {
                by: by
                    .parse()
                    .map_err(|e| anyhow::anyhow!("sandbox clock advance {by}: {e}"))?,
                sandbox,
            }),
            SandboxClockAction::Show { sandbox } => Ok(SandboxSettings::ClockShow { sandbox }),
        },
        Some(SandboxCommand::Seed(seed)) => Ok(SandboxSettings::Seed {
            sandbox: seed.sandbox,
            file: seed.seed_file,
        }),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn resolve(argv: &[&str]) -> anyhow::Result<Settings> {
        Cli::try_parse_from(argv)?.resolve(false)
    }

    #[test]
    fn durations_are_resolved_once_and_name_their_flag_when_bad() {
        let Settings {
            command: CommandSettings::Apply(apply),
            ..
        } = resolve(&["tokensmith", "apply", "--lock-timeout", "5m"]).unwrap()
        else {
            panic!("apply resolves to apply settings");
        };
        assert_eq!(apply.lock_timeout, Duration::from_secs(300));

        let Settings {
            command: CommandSettings::Plan(plan),
            ..
        } = resolve(&["tokensmith", "plan", "--fail-on-expiry-within", "7d"]).unwrap()
        else {
            panic!("plan resolves to plan settings");
        };
        assert_eq!(
            plan.fail_on_expiry_within.map(|d| d.as_secs()),
            Some(7 * 86_400)
        );

        let err = resolve(&["tokensmith", "apply", "--replace", "ci@"]).unwrap_err();
        assert!(format!("{err}").starts_with("--replace ci@: "), "{err}");
        let err = resolve(&["tokensmith", "apply", "p.json", "--replace", "ci"]).unwrap_err();
        assert!(format!("{err}").starts_with("--replace: "), "{err}");

        let err = resolve(&["tokensmith", "apply", "--lock-timeout", "soon"]).unwrap_err();
        assert!(format!("{err}").starts_with("--lock-timeout: "), "{err}");
        let err = resolve(&["tokensmith", "plan", "--fail-on-expiry-within", "7x"]).unwrap_err();
        assert!(
            format!("{err}").starts_with("--fail-on-expiry-within: "),
            "{err}"
        );
    }

    #[test]
    fn listen_addresses_resolve_before_the_sandbox_starts() {
        for argv in [
            &["tokensmith", "sandbox", "--listen", "127.0.0.1:0"][..],
            &["tokensmith", "sandbox", "serve", "--listen", "127.0.0.1:0"],
        ] {
            let Settings {
                command: CommandSettings::Sandbox(SandboxSettings::Serve(sandbox)),
                ..
            } = resolve(argv).unwrap()
            else {
                panic!("{argv:?} resolves to serving settings");
            };
            assert_eq!(
                sandbox.listen.addrs,
                vec!["127.0.0.1:0".parse::<SocketAddr>().unwrap()]
            );
        }
        let err = resolve(&["tokensmith", "sandbox", "--listen", "no-port"]).unwrap_err();
        assert!(
            format!("{err}")
                .starts_with("cannot listen on no-port; pick another with --listen 127.0.0.1:PORT"),
            "{err}"
        );
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn sandbox_subcommands_resolve_their_duration_and_refuse_serving_flags() {
        let Settings {
            command: CommandSettings::Sandbox(SandboxSettings::ClockAdvance { by, sandbox }),
            ..
        } = resolve(&[
            "tokensmith",
            "sandbox",
            "clock",
            "advance",
            "36h",
            "--name",
            "prod",
        ])
        .unwrap()
        else {
            panic!("clock advance resolves to its settings");
        };
        assert_eq!(by, SpecDuration::from_hours(36));
        assert_eq!(sandbox.name.as_deref(), Some("prod"));
        assert_eq!(sandbox.spec.file, PathBuf::from(DEFAULT_SPEC_FILE));
        let err = resolve(&["tokensmith", "sandbox", "clock", "advance", "30x"]).unwrap_err();
        assert!(
            format!("{err}").starts_with("sandbox clock advance 30x: `30x` has an unknown unit"),
            "{err}"
        );
        let err = Cli::try_parse_from([
            "tokensmith",
            "sandbox",
            "--listen",
            "127.0.0.1:0",
            "clock",
            "show",
        ])
        .unwrap_err();
        assert_eq!(
            err.kind(),
            clap::error::ErrorKind::ArgumentConflict,
            "{err}"
        );
    }

    #[test]
    fn formats_carry_the_printers_colour_decision() {
        let settings = Cli::try_parse_from(["tokensmith", "inventory"])
            .unwrap()
            .resolve(true)
            .unwrap();
        let CommandSettings::Inventory(report) = settings.command else {
            panic!("inventory resolves to report settings");
        };
        assert_eq!(report.human, Format::Human { color: true });
    }
}
