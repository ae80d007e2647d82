//! Every environment variable tokensmith reads, named and read in one place.
//!
//! This is the only module that calls `std::env::var`, `var_os` or `vars`; clippy's
//! `disallowed-methods` (see `clippy.toml`) refuses them everywhere else. Other modules ask for
//! what they need by meaning ([`no_color`], [`login`], [`kubeconfig`], …) instead of by name.
//! It imports nothing from the crate, so any layer may use it without an arrow pointing back.
//!
//! Management tokens and OAuth client credentials are read from variables the spec names
//! (`token_env`, `client_id_env`, `client_secret_env`); those names are data, not constants, so
//! they are read through [`spec_named`] and not listed here. What this module does not own: what
//! a value means once read (the colour decision is the `Printer`'s, the lock holder the lock's).
#![allow(clippy::disallowed_methods)]

use std::ffi::OsString;

/// Disables colour when set to any non-empty value (<https://no-color.org>).
pub const NO_COLOR: &str = "NO_COLOR";

/// Set by CI systems; output stays plain and prompts are refused.
pub const CI: &str = "CI";

/// The login name (Unix), recorded as the holder of an apply lock.
pub const USER: &str = "USER";
/// The login name (Windows), when `USER` is unset.
pub const USERNAME: &str = "USERNAME";
/// The GitHub Actions actor, when no login name is set.
pub const GITHUB_ACTOR: &str = "GITHUB_ACTOR";
/// The GitLab CI user, when no login name is set.
pub const GITLAB_USER_LOGIN: &str = "GITLAB_USER_LOGIN";
/// This machine's host name, when `/proc/sys/kernel/hostname` cannot be read.
pub const HOSTNAME: &str = "HOSTNAME";

/// Kubeconfig files, a `:`-separated list (as for kubectl).
pub const KUBECONFIG: &str = "KUBECONFIG";
/// The home directory, for `~/.kube/config` when `KUBECONFIG` is unset.
pub const HOME: &str = "HOME";
/// Set in a pod: the in-cluster Kubernetes API server's host.
pub const KUBERNETES_SERVICE_HOST: &str = "KUBERNETES_SERVICE_HOST";
/// Set in a pod: the in-cluster Kubernetes API server's port.
pub const KUBERNETES_SERVICE_PORT: &str = "KUBERNETES_SERVICE_PORT";

/// The proxy of https requests, as curl reads it (the upper-case name first).
pub const HTTPS_PROXY: [&str; 2] = ["HTTPS_PROXY", "https_proxy"];
/// The proxy of every scheme, when no https proxy is set (tokensmith uses it for https only).
pub const ALL_PROXY: [&str; 2] = ["ALL_PROXY", "all_proxy"];
/// Hosts that bypass the proxy, comma-separated (curl's format).
pub const NO_PROXY: [&str; 2] = ["NO_PROXY", "no_proxy"];

/// The first of `names` that is set to a non-empty value.
fn first_set(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
}

/// The proxy for https requests: `HTTPS_PROXY`, else `ALL_PROXY` (either case).
pub fn https_proxy() -> Option<String> {
    first_set(&HTTPS_PROXY).or_else(|| first_set(&ALL_PROXY))
}

/// The hosts that bypass the proxy (`NO_PROXY`, either case).
pub fn no_proxy() -> Option<String> {
    first_set(&NO_PROXY)
}

/// The names of the variables set to a (Unicode) value `holds_secret` accepts: what a child
/// process that inherits this environment must not see.
pub fn names_whose_value(holds_secret: impl Fn(&str) -> bool) -> Vec<String> {
    std::env::vars_os()
        .filter(|(_, v)| v.to_str().is_some_and(&holds_secret))
        .filter_map(|(k, _)| k.into_string().ok())
        .collect()
}

/// Whether `NO_COLOR` is set to a non-empty value.
pub fn no_color() -> bool {
    std::env::var_os(NO_COLOR).is_some_and(|v| !v.is_empty())
}

/// Whether `CI` says this runs in CI: set, non-empty and not `false`.
pub fn ci() -> bool {
    std::env::var_os(CI).is_some_and(|v| !(v.is_empty() || v == "false"))
}

/// Who is running: the first of `USER`, `USERNAME`, `GITHUB_ACTOR` and `GITLAB_USER_LOGIN`
/// that is set (to valid Unicode).
pub fn login() -> Option<String> {
    [USER, USERNAME, GITHUB_ACTOR, GITLAB_USER_LOGIN]
        .into_iter()
        .find_map(|name| std::env::var(name).ok())
}

/// `HOSTNAME`, when set.
pub fn hostname() -> Option<String> {
    std::env::var(HOSTNAME).ok()
}

/// `KUBECONFIG` as set (possibly empty).
pub fn kubeconfig() -> Option<OsString> {
    std::env::var_os(KUBECONFIG)
}

/// `HOME` as set.
pub fn home() -> Option<OsString> {
    std::env::var_os(HOME)
}

/// `KUBERNETES_SERVICE_HOST` and `KUBERNETES_SERVICE_PORT`, when both are set (possibly empty).
pub fn kubernetes_service() -> Option<(String, String)> {
    match (
        std::env::var(KUBERNETES_SERVICE_HOST),
        std::env::var(KUBERNETES_SERVICE_PORT),
    ) {
        (Ok(host), Ok(port)) => Some((host, port)),
        _ => None,
    }
}

/// The value of a variable the spec names (`token_env`, `client_id_env`,
/// `client_secret_env`), as set; `None` when unset or not valid Unicode.
pub fn spec_named(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The raw value of a variable an exec target passes through to its command: the allow-list of
/// `deliver::exec` (`PATH`, `HOME`, `LANG`, `TZ`) and the names the target's `env:` lists.
pub fn passed_to_command(name: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_named_reads_the_variable_the_spec_names() {
        std::env::set_var("TS_ENV_VARS_UNIT_SET", " a value ");
        assert_eq!(
            spec_named("TS_ENV_VARS_UNIT_SET").as_deref(),
            Some(" a value ")
        );
        assert_eq!(spec_named("TS_ENV_VARS_UNIT_NEVER_SET"), None);
    }
}
