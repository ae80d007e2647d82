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
//! - `recording_proxy`: a proxy that records request lines and forwards nothing.
//! - `saturation`: a gate that holds requests until a concurrency cap is reached, so cap tests
//!   assert exact counts without timing (live_pacing, live_snapshot).

pub mod apply_harness;
pub mod binary_world;
pub mod http_stub;
pub mod k8s_double;
pub mod recording_proxy;
pub mod sandbox_client;
pub mod saturation;

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

/// A FIFO at `path` (no writer: a reader that opens it blocking waits forever).
pub fn mkfifo(path: &std::path::Path) -> std::path::PathBuf {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo(3) with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    path.to_path_buf()
}

/// A directory holding a copy of `examples/quickstart.yaml` as `tokensmith.yaml` (one
/// `sandbox://demo`, whose state the binary keeps beside it).
pub fn quickstart_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        "examples/quickstart.yaml",
        dir.path().join("tokensmith.yaml"),
    )
    .unwrap();
    dir
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

/// How one of several applies started at once ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaceOutcome {
    /// It executed steps (only such a run prints its journal), and succeeded.
    Acted,
    /// It waited for the locks and then found nothing to do.
    WaitedIdle,
    /// It failed fast, naming the holder (`locked` is the start of that message).
    BackedOff,
}

/// Start `commands` at once, wait for all, and classify each run; `locked` is how a run that
/// backs off names the busy place (e.g. "environment `demo` is locked by"). `check` sees every
/// run's exit code and output first (a secret scan). Fails the test on any other ending.
pub fn race(
    commands: Vec<std::process::Command>,
    locked: &str,
    when: &str,
    check: impl Fn(&str),
) -> Vec<(RaceOutcome, String)> {
    let children: Vec<_> = commands
        .into_iter()
        .map(|mut c| {
            c.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("tokensmith starts")
        })
        .collect();
    children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().expect("tokensmith runs");
            let t = text(&out);
            check(&t);
            let outcome = if t.contains("journal:") {
                assert_eq!(out.status.code(), Some(0), "{when}:\n{t}");
                RaceOutcome::Acted
            } else if out.status.code() == Some(0) {
                assert!(t.contains("No changes"), "{when}:\n{t}");
                RaceOutcome::WaitedIdle
            } else {
                assert!(t.contains(locked), "{when}:\n{t}");
                RaceOutcome::BackedOff
            };
            (outcome, t)
        })
        .collect()
}

/// The outputs of a [`race`], one after the other, for a failure message.
pub fn race_texts(runs: &[(RaceOutcome, String)]) -> String {
    runs.iter()
        .map(|(_, t)| t.as_str())
        .collect::<Vec<_>>()
        .join("\n---\n")
}
