//! Support code shared by the integration tests, and the few helpers every kind of test uses
//! (token-shaped strings, the real binary run in a directory, the output of a finished binary).
//!
//! - `apply_harness`: an in-memory Dynatrace implementing the live traits with fault switches,
//!   a deliverer with failure switches, and a harness checking the safety invariants (apply_*).
//! - `binary_world`: a seeded sandbox on loopback plus a spec directory, driven through the real
//!   binary (apply_sandbox).
//! - `sandbox_client`: a seeded sandbox and an HTTP client for its API (sandbox_*).
//! - `http_stub`: a scripted HTTP server recording every request (live_*).
//! - `k8s_double`: a Kubernetes API double (deliver_kube).

pub mod apply_harness;
pub mod binary_world;
pub mod http_stub;
pub mod k8s_double;
pub mod sandbox_client;

/// A syntactically valid classic access token whose id and secret parts are all `c`.
pub fn tok(c: char) -> String {
    format!(
        "dt0c01.{}.{}",
        c.to_string().repeat(24),
        c.to_string().repeat(64)
    )
}

/// The public id (`dt0c01.XXXX`) of a full token.
pub fn id_of(token: &str) -> String {
    token.rsplit_once('.').unwrap().0.to_owned()
}

/// Standard output followed by standard error of a finished command, lossily decoded.
pub fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The real binary in `dir` with `args`: plain output (no colour), not in CI mode.
pub fn command_in(dir: &std::path::Path, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tokensmith"));
    cmd.args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("CI");
    cmd
}

/// [`command_in`] run to its end.
pub fn tokensmith_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    command_in(dir, args).output().expect("tokensmith runs")
}
