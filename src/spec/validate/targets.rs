//! Checks of one delivery target after templating: Kubernetes names, file formats and modes,
//! how an exec target receives the value.

use crate::model::{FileFormat, Target};

use super::values::is_env_var_name;
use super::Finding;

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
        Target::File(f) => {
            if f.path.trim().is_empty() {
                out.push(Finding::error("the file path is empty").field("path"));
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
