//! Checks of one delivery target after templating: Kubernetes names, file formats and modes,
//! how an exec target receives the value.

use crate::model::{FileFormat, Preset, Target};

use super::values::is_env_var_name;
use super::Finding;

/// Keys of the token Secret the Dynatrace Operator reads (CONSUMERS.md §1.1).
const OPERATOR_KEYS: [&str; 3] = ["apiToken", "dataIngestToken", "paasToken"];

/// A `kubernetes_secret` target of a token with an operator preset whose key the Dynatrace
/// Operator does not read: a warning with the key to use. For `dynatrace-operator` any other
/// key; for `data-ingest` and `paas` (which other consumers use too) a key that differs from an
/// operator key only in case, or any other key of a Secret whose DynaKube is touched.
pub fn check_operator_key(preset: Option<Preset>, target: &Target) -> Option<Finding> {
    let Target::KubernetesSecret(k) = target else {
        return None;
    };
    let preset = preset?;
    if OPERATOR_KEYS.contains(&k.key.as_str()) {
        return None;
    }
    let near = OPERATOR_KEYS
        .iter()
        .find(|o| o.eq_ignore_ascii_case(&k.key))
        .copied();
    let expected = match preset {
        Preset::DynatraceOperator => "apiToken",
        Preset::DataIngest => "dataIngestToken",
        Preset::Paas => "paasToken",
    };
    let for_operator = preset == Preset::DynatraceOperator || k.touch_dynakube.is_some();
    if near.is_none() && !for_operator {
        return None;
    }
    Some(
        Finding::warning(format!(
            "the Dynatrace Operator reads only the keys apiToken, dataIngestToken and paasToken (case matters); a DynaKube will not see `{}`",
            k.key
        ))
        .field("key")
        .help(format!(
            "use `key: {}` for a `{}` token",
            near.unwrap_or(expected),
            preset.as_str()
        )),
    )
}

/// Checks one delivery target (after templating).
pub fn check_target(target: &Target) -> Vec<Finding> {
    let mut out = Vec::new();
    match target {
        Target::KubernetesSecret(k) => {
            for (field, value) in [("namespace", &k.namespace), ("name", &k.name)] {
                if !is_dns_name(value) {
                    out.push(
                        Finding::error(format!("`{value}` is not a valid Kubernetes {field}"))
                            .field(field)
                            .help(
                                "use lowercase letters, digits, `-` and `.`, at most 253 characters",
                            ),
                    );
                }
            }
            let key_ok = !k.key.is_empty()
                && k.key.len() <= 253
                && k.key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !key_ok {
                out.push(
                    Finding::error(format!("`{}` is not a valid Secret key", k.key))
                        .field("key")
                        .help("use letters, digits, `-`, `_` and `.`"),
                );
            }
            for r in &k.restart {
                let ok = matches!(r.split_once('/'), Some((kind, name))
                    if matches!(kind, "deployment" | "statefulset" | "daemonset") && is_dns_name(name));
                if !ok {
                    out.push(
                        Finding::error(format!("`{r}` is not a workload to restart"))
                            .field("restart")
                            .help(
                                "write `deployment/NAME`, `statefulset/NAME` or `daemonset/NAME`",
                            ),
                    );
                }
            }
        }
        Target::DynakubeTenant(d) => {
            for (field, value) in [("namespace", &d.namespace), ("dynakube", &d.dynakube)] {
                if !is_dns_name(value) {
                    out.push(
                        Finding::error(format!("`{value}` is not a valid Kubernetes {field}"))
                            .field(field),
                    );
                }
            }
            for w in &d.restart {
                if !matches!(w.kind.as_str(), "Deployment" | "StatefulSet" | "DaemonSet")
                    || !is_dns_name(&w.name)
                {
                    out.push(
                        Finding::error(format!(
                            "restart `{}`: kind must be Deployment, StatefulSet or DaemonSet with a valid name",
                            w.as_path()
                        ))
                        .field("restart"),
                    );
                }
            }
        }
        Target::File(f) => {
            if f.path.trim().is_empty() {
                out.push(Finding::error("the file path is empty").field("path"));
            }
            if let Some(reason) = crate::deliver::file::place::in_git_dir(&f.path) {
                out.push(Finding::error(reason).field("path"));
            }
            // `<file>.tokensmith` is the sidecar tokensmith keeps beside a raw or json file:
            // a target of that name would be overwritten by it, or overwrite it.
            if let Some(holder) = f
                .path
                .strip_suffix(".tokensmith")
                .filter(|h| !h.is_empty() && !h.ends_with('/'))
            {
                out.push(
                    Finding::error(format!(
                        "`{}` is the name of the sidecar tokensmith keeps beside `{holder}` (a raw or json file's record)",
                        f.path
                    ))
                    .field("path")
                    .help("choose a file name that does not end in `.tokensmith`"),
                );
            }
            if f.path.contains(['\0', '\n', '\r']) {
                out.push(
                    Finding::error("the file path contains a NUL byte or a line break")
                        .field("path"),
                );
            }
            if let Some(key) = &f.key {
                if let Some(bad) = key_problem(f.format, key) {
                    out.push(Finding::error(bad).field("key"));
                }
            }
            if let Some(section) = &f.section {
                let bad = section.trim().is_empty()
                    || section
                        .chars()
                        .any(|c| c.is_control() || matches!(c, '[' | ']'));
                if bad {
                    out.push(
                        Finding::error(format!(
                            "`{}` is not a properties section name",
                            section.escape_debug()
                        ))
                        .field("section")
                        .help("a section name is one line without `[` or `]`"),
                    );
                }
            }
            match (f.format, &f.key) {
                (FileFormat::Raw, Some(_)) => out.push(
                    Finding::error("a `raw` file holds only the value and has no `key`")
                        .field("key")
                        .help("remove `key`, or set `format` to env, properties, json or yaml"),
                ),
                (FileFormat::Raw, None) => {}
                (format, None) => out.push(
                    Finding::error(format!(
                        "a file with `format: {}` needs a `key`",
                        format_name(format)
                    ))
                    .field("format")
                    .help("name the key that holds the value, e.g. `key: DT_API_TOKEN`"),
                ),
                (_, Some(key)) if key.trim().is_empty() => {
                    out.push(Finding::error("the file `key` is empty").field("key"))
                }
                _ => {}
            }
            if f.section.is_some() && f.format != FileFormat::Properties {
                out.push(
                    Finding::error("`section` applies only to `properties` files").field("section"),
                );
            }
            let mode_ok = (3..=4).contains(&f.mode.len())
                && f.mode.chars().all(|c| ('0'..='7').contains(&c))
                && (f.mode.len() == 3 || f.mode.starts_with('0'));
            if !mode_ok {
                out.push(
                    Finding::error(format!("`{}` is not a file mode", f.mode))
                        .field("mode")
                        .help("write an octal mode such as `\"0600\"`"),
                );
            } else if !f.mode.ends_with('0') {
                out.push(
                    Finding::warning(format!(
                        "mode `{}` lets every user of the machine read the token",
                        f.mode
                    ))
                    .field("mode")
                    .help("use `\"0600\"` or `\"0640\"`"),
                );
            }
        }
        Target::Exec(e) => {
            if e.command.first().is_none_or(|c| c.trim().is_empty()) {
                out.push(Finding::error("the exec `command` is empty").field("command").help(
                    "give the program and its arguments, e.g. `[oneagentctl, --set-tenant-token]`",
                ));
            }
            let modes = usize::from(e.secret_env.is_some())
                + usize::from(e.secret_stdin)
                + usize::from(e.secret_in_argv);
            if modes == 0 {
                out.push(
                    Finding::error("the exec target does not say how it receives the value")
                        .help("set `secret_env: NAME` (preferred) or `secret_stdin: true`"),
                );
            } else if modes > 1 {
                out.push(
                    Finding::error("the exec target sets more than one of `secret_env`, `secret_stdin` and `secret_in_argv`")
                        .help("choose one way to pass the value"),
                );
            }
            if let Some(name) = &e.secret_env {
                if !is_env_var_name(name) {
                    out.push(
                        Finding::error(format!(
                            "`{name}` is not a valid environment variable name"
                        ))
                        .field("secret_env"),
                    );
                }
            }
            let placeholder = e.command.iter().any(|a| a.contains("{{ secret }}"));
            if e.secret_in_argv {
                out.push(
                    Finding::warning("`secret_in_argv` puts the token on the command line, where every user of the machine can read it (`ps`)")
                        .field("secret_in_argv")
                        .help("prefer `secret_env` or `secret_stdin`"),
                );
                if !placeholder {
                    out.push(
                        Finding::error(
                            "`secret_in_argv` is set but no argument contains `{{ secret }}`",
                        )
                        .field("command"),
                    );
                }
            } else if placeholder {
                out.push(
                    Finding::error("an argument contains `{{ secret }}` but `secret_in_argv` is not set")
                        .field("command")
                        .help("prefer `secret_env`; set `secret_in_argv: true` only if the program cannot read the environment"),
                );
            }
            for (field, cmd) in [
                ("read_command", &e.read_command),
                ("verify_command", &e.verify_command),
            ] {
                if cmd
                    .as_ref()
                    .is_some_and(|c| c.first().is_none_or(|p| p.trim().is_empty()))
                {
                    out.push(Finding::error(format!("`{field}` is empty")).field(field));
                }
            }
            let programs = std::iter::once(("command", e.command.first())).chain([
                (
                    "read_command",
                    e.read_command.as_ref().and_then(|c| c.first()),
                ),
                (
                    "verify_command",
                    e.verify_command.as_ref().and_then(|c| c.first()),
                ),
            ]);
            for (field, program) in programs {
                let Some(program) = program else { continue };
                if program.contains(|c: char| {
                    c.is_whitespace() || c.is_control() || SHELL_METACHARACTERS.contains(c)
                }) {
                    out.push(
                        Finding::error(format!(
                            "the program `{}` contains shell syntax or spaces, but commands run without a shell",
                            program.escape_debug()
                        ))
                        .field(field)
                        .help("write the program and each argument as separate list items, e.g. `[sh, -c, \"a | b\"]` if a shell is really wanted"),
                    );
                }
            }
            for name in &e.env {
                if !is_env_var_name(name) {
                    out.push(
                        Finding::error(format!(
                            "`{name}` in `env` is not a valid environment variable name"
                        ))
                        .field("env"),
                    );
                } else if name.starts_with("TOKENSMITH_") {
                    out.push(
                        Finding::error(format!("`{name}` in `env` is set by tokensmith itself"))
                            .field("env"),
                    );
                }
            }
            if e.timeout.is_some_and(|t| t.as_secs() <= 0) {
                out.push(
                    Finding::error("the exec `timeout` must be longer than 0s").field("timeout"),
                );
            }
        }
    }
    if let Target::File(f) = target {
        out.extend(check_restart(f.restart.as_deref()));
    }
    out
}

/// A file target's `restart`: a program and its arguments, run without a shell and never given
/// the value, so `{{ secret }}` has no place in it.
fn check_restart(restart: Option<&[String]>) -> Vec<Finding> {
    let Some(argv) = restart else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if argv.first().is_none_or(|p| p.trim().is_empty()) {
        out.push(
            Finding::error("the file target's `restart` is empty")
                .field("restart")
                .help("give the program and its arguments, e.g. `[systemctl, restart, dynatracegateway]`, or remove `restart`"),
        );
    } else if argv[0].chars().any(char::is_whitespace) {
        out.push(
            Finding::error(format!(
                "`{}` is not a program name: `restart` runs without a shell",
                argv[0]
            ))
            .field("restart")
            .help("write the program and each argument as separate list items, e.g. `[systemctl, restart, dynatracegateway]`"),
        );
    }
    if argv.iter().any(|a| a.contains("{{ secret }}")) {
        out.push(
            Finding::error("`restart` is never given the value; remove `{{ secret }}`")
                .field("restart"),
        );
    }
    out
}

/// Characters a shell would interpret; a program name holding one was meant for a shell.
const SHELL_METACHARACTERS: &str = ";|&$`<>*?(){}[]!~'\"\\";

/// Why `key` cannot name an entry of a file in `format`: a line break or control character
/// would inject lines; in `env` and `properties` files the separators and comment signs would
/// end or hide the key.
fn key_problem(format: FileFormat, key: &str) -> Option<String> {
    let shown = key.escape_debug();
    if key.chars().any(char::is_control) {
        return Some(format!(
            "the file key `{shown}` contains a line break or control character"
        ));
    }
    match format {
        FileFormat::Env if !is_env_var_name(key) => Some(format!(
            "`{shown}` is not an env file key; use letters, digits and `_`, not starting with a digit"
        )),
        FileFormat::Properties
            if key.starts_with(['#', '!', '['])
                || key.contains(['=', ':', ' ', '\t']) =>
        {
            Some(format!(
                "`{shown}` is not a properties key; it may not contain `=`, `:` or spaces nor start with `#`, `!` or `[`"
            ))
        }
        _ => None,
    }
}

pub(super) fn format_name(format: FileFormat) -> &'static str {
    match format {
        FileFormat::Raw => "raw",
        FileFormat::Env => "env",
        FileFormat::Properties => "properties",
        FileFormat::Json => "json",
        FileFormat::Yaml => "yaml",
    }
}

fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}
