//! Odd files wherever tokensmith reads one besides the spec (which `spec_bad_corpus` covers): a
//! saved plan, a sandbox seed and state file, a leaked secret, a lock file, a committed schema.
//! Each is fed a FIFO with no writer, an endless device behind a symlink, a directory or a file
//! over its limit, and must end with a clear error naming the file and what is wrong with it,
//! never a hang (the real binary runs against a deadline) and never a change. The files it
//! writes besides targets (a saved plan, a metrics file, the journal) get the same treatment.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::support::{command_in, mkfifo, quickstart_dir as quickstart};

/// Far above what any of these runs takes; reaching it means the run hangs.
const DEADLINE: Duration = Duration::from_secs(30);

/// The real binary in `dir` with `args` and an empty stdin; its exit code and output, or a
/// failed test if it is still running at the deadline (it is killed then).
fn run(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    run_with_stdin(dir, args, Stdio::null())
}

/// [`run`] with `stdin`.
fn run_with_stdin(dir: &Path, args: &[&str], stdin: Stdio) -> (Option<i32>, String) {
    let child = command_in(dir, args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tokensmith starts");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(out) => {
            let out = out.unwrap();
            (out.status.code(), crate::support::text(&out))
        }
        Err(_) => {
            // SAFETY: kill(2) on the pid of a child this test started and has not reaped.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("`tokensmith {}` hangs", args.join(" "));
        }
    }
}

/// `tokensmith ARGS` (an apply) in `dir` succeeds, and the next plan is empty.
fn apply_converges(dir: &Path, args: &[&str]) {
    let (code, text) = run(dir, args);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = run(dir, &["plan", "--detailed-exitcode"]);
    assert_eq!(code, Some(0), "the next plan is empty: {text}");
}

/// A FIFO, a symlink to `/dev/zero` and a directory, named `NAME.fifo.EXT`, `NAME.zero.EXT`
/// and `NAME.dir.EXT` in `dir`, with the words each error must contain.
fn odd_files(dir: &Path, name: &str, ext: &str) -> Vec<(String, &'static str)> {
    mkfifo(&dir.join(format!("{name}.fifo.{ext}")));
    std::os::unix::fs::symlink("/dev/zero", dir.join(format!("{name}.zero.{ext}"))).unwrap();
    std::fs::create_dir(dir.join(format!("{name}.dir.{ext}"))).unwrap();
    vec![
        (format!("{name}.fifo.{ext}"), "it is a FIFO"),
        (format!("{name}.zero.{ext}"), "it is a device"),
        (format!("{name}.dir.{ext}"), "it is a directory"),
    ]
}

#[test]
fn odd_saved_plans_are_refused_naming_the_plan() {
    let dir = quickstart();
    for (file, what) in odd_files(dir.path(), "p", "plan") {
        let (code, text) = run(dir.path(), &["apply", &file, "--auto-approve"]);
        assert_eq!(code, Some(1), "{file}: {text}");
        assert!(
            text.contains(&format!("cannot read the plan {file}")),
            "{text}"
        );
        assert!(text.contains(what), "{file}: {text}");
    }
    // A plan that is not there: the reason once, not once per layer of the error.
    let (code, text) = run(dir.path(), &["apply", "missing.plan", "--auto-approve"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("cannot read the plan missing.plan"), "{text}");
    assert_eq!(
        text.matches("o such file or directory").count(),
        1,
        "{text}"
    );
    assert!(
        !dir.path().join(".tokensmith").exists(),
        "nothing was started"
    );
}

#[test]
fn odd_seed_and_state_files_are_refused_by_the_sandbox_commands() {
    let dir = quickstart();
    for (file, what) in odd_files(dir.path(), "seed", "yaml") {
        let (code, text) = run(dir.path(), &["sandbox", "seed", &file, "--name", "demo"]);
        assert_ne!(code, Some(0), "{file}: {text}");
        assert!(
            text.contains(&format!("cannot read the seed file {file}")),
            "{text}"
        );
        assert!(text.contains(what), "{file}: {text}");

        let (code, text) = run(
            dir.path(),
            &["sandbox", "--seed", &file, "--listen", "127.0.0.1:0"],
        );
        assert_ne!(code, Some(0), "{file}: {text}");
        assert!(text.contains(what), "{file}: {text}");
    }
    for (file, what) in odd_files(dir.path(), "state", "json") {
        let (code, text) = run(
            dir.path(),
            &["sandbox", "--state", &file, "--listen", "127.0.0.1:0"],
        );
        assert_ne!(code, Some(0), "{file}: {text}");
        assert!(
            text.contains(&format!("cannot read the sandbox state {file}")),
            "{text}"
        );
        assert!(text.contains(what), "{file}: {text}");
    }
}

#[test]
fn an_odd_embedded_sandbox_state_stops_plan_with_its_path() {
    let dir = quickstart();
    let state_dir = dir.path().join(".tokensmith/sandbox");
    std::fs::create_dir_all(&state_dir).unwrap();
    mkfifo(&state_dir.join("demo.json"));
    let (code, text) = run(dir.path(), &["plan"]);
    assert_ne!(code, Some(0), "{text}");
    assert!(text.contains(".tokensmith/sandbox/demo.json"), "{text}");
    assert!(text.contains("it is a FIFO"), "{text}");
}

#[test]
fn a_lock_file_replaced_by_a_fifo_stops_apply_with_its_path() {
    let dir = quickstart();
    let locks = dir.path().join(".tokensmith/locks");
    std::fs::create_dir_all(&locks).unwrap();
    mkfifo(&locks.join("demo.lock"));
    let (code, text) = run(dir.path(), &["apply", "--auto-approve"]);
    assert_ne!(code, Some(0), "{text}");
    assert!(text.contains("demo.lock"), "{text}");
    assert!(text.contains("it is a FIFO"), "{text}");
    assert!(
        !dir.path().join("out").exists(),
        "nothing was delivered: {text}"
    );
}

/// A journal replaced by a FIFO (or a socket) stops the apply before its first step, naming the
/// journal, once: opening a FIFO for writing would wait for a reader forever. `--journal` to a
/// device such as `/dev/null` is allowed, and the apply goes on from there.
#[test]
fn a_journal_replaced_by_a_fifo_stops_apply_before_any_step() {
    let dir = quickstart();
    std::fs::create_dir_all(dir.path().join(".tokensmith")).unwrap();
    mkfifo(&dir.path().join(".tokensmith/journal.jsonl"));
    let (code, text) = run(dir.path(), &["apply", "--auto-approve"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("cannot open the journal `./.tokensmith/journal.jsonl`: it is a FIFO"),
        "{text}"
    );
    assert_eq!(text.matches("it is a FIFO").count(), 1, "{text}");
    assert!(
        !dir.path().join("out").exists(),
        "nothing was delivered: {text}"
    );
    apply_converges(
        dir.path(),
        &["apply", "--auto-approve", "--journal", "/dev/null"],
    );
}

/// A journal that is a symlink (committed to the repository as `.tokensmith/journal.jsonl`, it
/// would have every apply append to a file of its choosing) is refused and its target left
/// alone. And the files an apply makes for itself are private whatever the umask: under
/// `umask 000` the directories are 0700 and the journal 0600, not 0777 and 0666, so no other
/// user can plant such a link.
#[test]
fn the_journal_is_not_written_through_a_symlink_and_the_run_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = quickstart();
    let root = dir.path();
    let mode = |p: &str| {
        std::fs::metadata(root.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    let bashrc = root.join("fake-bashrc");
    std::fs::write(&bashrc, "# mine\n").unwrap();
    std::fs::create_dir(root.join(".tokensmith")).unwrap();
    std::os::unix::fs::symlink(&bashrc, root.join(".tokensmith/journal.jsonl")).unwrap();
    let (code, text) = run(root, &["apply", "--auto-approve"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("it is a symlink"), "{text}");
    assert_eq!(std::fs::read_to_string(&bashrc).unwrap(), "# mine\n");
    assert!(!root.join("out").exists(), "nothing was delivered: {text}");

    std::fs::remove_dir_all(root.join(".tokensmith")).unwrap();
    let bin = env!("CARGO_BIN_EXE_tokensmith");
    let out = std::process::Command::new("sh")
        .args(["-c", "umask 000 && exec \"$0\" apply --auto-approve", bin])
        .current_dir(root)
        .env("NO_COLOR", "1")
        .env_remove("CI")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", crate::support::text(&out));
    let (code, text) = run(root, &["plan", "--detailed-exitcode"]);
    assert_eq!(code, Some(0), "the next plan is empty: {text}");
    for (path, want) in [
        (".tokensmith", 0o700),
        (".tokensmith/locks", 0o700),
        (".tokensmith/sandbox", 0o700),
        (".tokensmith/journal.jsonl", 0o600),
        (".tokensmith/sandbox/demo.json", 0o600),
        ("out", 0o700),
    ] {
        assert_eq!(mode(path), want, "{path} is {:o}", mode(path));
    }
}

#[test]
fn a_leaked_secret_file_is_read_from_a_pipe_but_never_without_end() {
    let dir = quickstart();
    // `/dev/zero` is read up to the limit and refused: a token is far shorter.
    let (code, text) = run(
        dir.path(),
        &["leak", "--secret-file", "/dev/zero", "--auto-approve"],
    );
    assert_ne!(code, Some(0), "{text}");
    assert!(text.contains("--secret-file /dev/zero"), "{text}");
    assert!(text.contains("larger than the limit of 64 KiB"), "{text}");
    // Standard input is bounded the same way.
    let zero = std::fs::File::open("/dev/zero").unwrap();
    let (code, text) = run_with_stdin(dir.path(), &["leak", "--auto-approve"], zero.into());
    assert_ne!(code, Some(0), "{text}");
    assert!(
        text.contains(
            "cannot read the leaked secret from stdin: it is larger than the limit of 64 KiB"
        ),
        "{text}"
    );
    let (code, text) = run(
        dir.path(),
        &["leak", "--secret-file", ".", "--auto-approve"],
    );
    assert_ne!(code, Some(0), "{text}");
    assert!(text.contains("it is a directory"), "{text}");
    // A pipe with a writer (the shell's `<(pass show …)`) is read: the run gets past reading
    // the secret and answers about the secret itself (no token of this spec's world).
    let pipe = mkfifo(&dir.path().join("secret.pipe"));
    let writer = std::thread::spawn(move || std::fs::write(pipe, b"not a token\n").unwrap());
    let (code, text) = run(
        dir.path(),
        &["leak", "--secret-file", "secret.pipe", "--auto-approve"],
    );
    writer.join().unwrap();
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("the leaked token is not a valid token of any environment"),
        "{text}"
    );
}

#[test]
fn an_odd_schema_to_check_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (file, what) in odd_files(dir.path(), "schema", "json") {
        let (code, text) = run(dir.path(), &["schema", "--check", &file]);
        assert_ne!(code, Some(0), "{file}: {text}");
        assert!(
            text.contains(&format!("cannot read the schema `{file}`")),
            "{text}"
        );
        assert!(text.contains(what), "{file}: {text}");
    }
}

/// An error says its cause once: the chain the binary prints (`error: a: b: c`) does not repeat
/// a cause the message already quotes. Two that did: a lock in the git remote of a directory that
/// is no repository, and a lock directory that a file stands in the way of.
#[test]
fn errors_say_their_cause_once() {
    let dir = quickstart();
    let (code, text) = run(
        dir.path(),
        &["apply", "--lock-remote", "origin", "--auto-approve"],
    );
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(
        text.matches("could not find repository").count(),
        1,
        "{text}"
    );
    std::fs::create_dir_all(dir.path().join(".tokensmith")).unwrap();
    std::fs::write(dir.path().join(".tokensmith/locks"), "").unwrap();
    let (code, text) = run(dir.path(), &["apply", "--auto-approve"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("lock file"), "{text}");
    assert_eq!(text.matches("File exists").count(), 1, "{text}");
}

/// Odd places to write to: a FIFO or a symlink at `plan --out` is replaced by the plan (a plain
/// write would wait for a reader forever, or write through the link), and an output path that
/// cannot be written (a directory, or a file where a directory must be) is refused before
/// anything is read, locked or started.
#[test]
fn odd_output_files_are_replaced_or_refused_before_the_read() {
    let dir = quickstart();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    std::fs::write(dir.path().join("file"), "").unwrap();
    for (args, why) in [
        (&["plan", "--out", "d"][..], "it is a directory"),
        (&["plan", "--out", "file/p.plan"], "file is not a directory"),
        (&["plan", "--metrics-file", "d"], "it is a directory"),
        (
            &["drift", "--metrics-file", "file/m.prom"],
            "file is not a directory",
        ),
    ] {
        let (code, text) = run(dir.path(), args);
        assert_eq!(code, Some(1), "{args:?}: {text}");
        assert!(
            text.contains(&format!(
                "{} {}: {why}; nothing was read or changed",
                args[1], args[2]
            )),
            "{args:?}: {text}"
        );
        assert!(
            !dir.path().join(".tokensmith").exists(),
            "{args:?}: nothing was started"
        );
    }

    mkfifo(&dir.path().join("fifo.plan"));
    let (code, text) = run(dir.path(), &["plan", "--out", "fifo.plan"]);
    assert_eq!(code, Some(0), "{text}");
    let elsewhere = dir.path().join("elsewhere.txt");
    std::fs::write(&elsewhere, "not a plan").unwrap();
    std::os::unix::fs::symlink(&elsewhere, dir.path().join("link.plan")).unwrap();
    let (code, text) = run(dir.path(), &["plan", "--out", "link.plan"]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(
        std::fs::read_to_string(&elsewhere).unwrap(),
        "not a plan",
        "the link's target is not written through"
    );
    for plan in ["fifo.plan", "link.plan"] {
        let meta = std::fs::symlink_metadata(dir.path().join(plan)).unwrap();
        assert!(meta.is_file(), "{plan} is now a plan file");
    }
    apply_converges(dir.path(), &["apply", "fifo.plan", "--auto-approve"]);
}

/// A raw target that already holds a file of several lines (a config file the spec names by
/// mistake) is not a file tokensmith wrote: the plan warns that it cannot be read, the apply
/// refuses to replace it and deletes the token it made for it, and the file keeps every line.
#[test]
fn a_raw_target_holding_a_file_of_several_lines_is_not_replaced() {
    let dir = quickstart();
    let root = dir.path();
    let file = root.join("out/data-ingest-token");
    std::fs::create_dir_all(root.join("out")).unwrap();
    std::fs::write(&file, "name = prod\nurl = https://example.com\n").unwrap();
    let (code, text) = run(root, &["plan"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("holds 2 lines, and a raw target holds one value"),
        "{text}"
    );
    assert!(text.contains("(target_unreadable)"), "{text}");
    let (code, text) = run(root, &["apply", "--auto-approve"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("holds 2 lines"), "{text}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "name = prod\nurl = https://example.com\n"
    );
    std::fs::remove_file(&file).unwrap();
    apply_converges(root, &["apply", "--auto-approve"]);
}
