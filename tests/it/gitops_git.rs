//! The spec's git repository (`git::repo`) and apply locks kept in a git remote
//! (`lock::git_remote`), against real repositories made with the `git` command line in
//! temporary directories. Remotes are bare repositories on disk.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use tokensmith::git::repo::{
    check_plan_commit, discover, read_at_ref, spec_at_ref, spec_commit, CommitMismatch, GitError,
    SpecCommit,
};
use tokensmith::lock::{lock_ref, GitRemoteLockError, GitRemoteLocks, LockError, LockInfo};
use tokensmith::model::EnvName;
use tokensmith::plan::Inputs;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A repository with `config/tokensmith.yaml` committed twice (`v1`, then `v2`) and a
/// `README.md`; returns (tempdir, spec path).
fn repo_with_history() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    git(root, &["init", "-q", "-b", "main"]);
    std::fs::create_dir(root.join("config")).unwrap();
    let spec = root.join("config/tokensmith.yaml");
    std::fs::write(&spec, "version: 1 # v1\n").unwrap();
    std::fs::write(root.join("README.md"), "hello\n").unwrap();
    git(root, &["add", "."]);
    git(root, &["commit", "-q", "-m", "v1"]);
    git(root, &["tag", "v1"]);
    std::fs::write(&spec, "version: 1 # v2\n").unwrap();
    std::fs::write(root.join("config/other.yaml"), "x\n").unwrap();
    git(root, &["add", "."]);
    git(root, &["commit", "-q", "-m", "v2"]);
    (dir, spec)
}

#[test]
fn spec_outside_git_has_no_commit() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("tokensmith.yaml");
    std::fs::write(&spec, "version: 1\n").unwrap();
    assert_eq!(spec_commit(&spec).unwrap(), None);
    let err = spec_at_ref(&spec, "HEAD").unwrap_err();
    assert!(matches!(err, GitError::NotARepository { .. }), "{err}");
}

#[test]
fn spec_commit_names_head_and_tracks_dirtiness() {
    let (dir, spec) = repo_with_history();
    let root = dir.path();
    let head = git(root, &["rev-parse", "HEAD"]);
    let clean = SpecCommit {
        commit: head.clone(),
        dirty: false,
        path_in_repo: "config/tokensmith.yaml".into(),
    };
    assert_eq!(spec_commit(&spec).unwrap(), Some(clean.clone()));

    // An untracked file elsewhere (CI's plan.json) does not make the tree dirty.
    std::fs::write(root.join("plan.json"), "{}").unwrap();
    assert_eq!(spec_commit(&spec).unwrap(), Some(clean.clone()));

    // A relative path from inside the repository finds the same file.
    let relative = Path::new("config/../config/tokensmith.yaml");
    let found = std::env::set_current_dir(root).map(|()| spec_commit(relative));
    assert_eq!(found.unwrap().unwrap(), Some(clean.clone()));

    // Another tracked file changed: dirty.
    std::fs::write(root.join("README.md"), "changed\n").unwrap();
    assert!(spec_commit(&spec).unwrap().unwrap().dirty);
    git(root, &["checkout", "-q", "--", "README.md"]);
    assert!(!spec_commit(&spec).unwrap().unwrap().dirty);

    // The spec itself changed, then only staged: dirty both times.
    std::fs::write(&spec, "version: 1 # v3\n").unwrap();
    assert!(spec_commit(&spec).unwrap().unwrap().dirty);
    git(root, &["add", "config/tokensmith.yaml"]);
    assert!(spec_commit(&spec).unwrap().unwrap().dirty);
    git(root, &["commit", "-q", "-m", "v3"]);
    let after = spec_commit(&spec).unwrap().unwrap();
    assert!(!after.dirty);
    assert_ne!(after.commit, head);

    // An untracked spec is dirty.
    let new_spec = root.join("config/new.yaml");
    std::fs::write(&new_spec, "version: 1\n").unwrap();
    assert!(spec_commit(&new_spec).unwrap().unwrap().dirty);
}

#[test]
fn read_at_ref_reads_git_objects_without_touching_the_tree() {
    let (dir, spec) = repo_with_history();
    let root = dir.path();
    std::fs::write(&spec, "version: 1 # uncommitted\n").unwrap();
    let (repo, path) = discover(&spec).unwrap();
    assert_eq!(path, "config/tokensmith.yaml");
    assert_eq!(
        read_at_ref(&repo, "HEAD", &path, LIMIT).unwrap(),
        b"version: 1 # v2\n"
    );
    assert_eq!(
        read_at_ref(&repo, "HEAD~1", &path, LIMIT).unwrap(),
        b"version: 1 # v1\n"
    );
    assert_eq!(
        read_at_ref(&repo, "v1", &path, LIMIT).unwrap(),
        b"version: 1 # v1\n"
    );
    let v1 = git(root, &["rev-parse", "v1"]);
    assert_eq!(
        read_at_ref(&repo, &v1, &path, LIMIT).unwrap(),
        b"version: 1 # v1\n"
    );
    // The working tree is as we left it.
    assert_eq!(
        std::fs::read_to_string(&spec).unwrap(),
        "version: 1 # uncommitted\n"
    );

    let err = read_at_ref(&repo, "no-such-branch", &path, LIMIT).unwrap_err();
    assert!(matches!(err, GitError::UnknownRef { .. }), "{err:?}");
    assert!(
        err.to_string().contains("unknown git ref `no-such-branch`"),
        "{err}"
    );
    assert!(err.to_string().contains("git fetch"), "{err}");

    let err = read_at_ref(&repo, "v1", "config/other.yaml", LIMIT).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, GitError::FileAbsent { .. }), "{err:?}");
    assert!(
        msg.contains("`config/other.yaml` does not exist at `v1`"),
        "{msg}"
    );
    assert!(msg.contains(&v1), "{msg}");

    let err = read_at_ref(&repo, "HEAD", "config", LIMIT).unwrap_err();
    assert!(matches!(err, GitError::NotAFile { .. }), "{err:?}");

    // A blob over the limit is refused from its header: "version: 1 # v2\n" is 16 bytes.
    assert_eq!(read_at_ref(&repo, "HEAD", &path, 16).unwrap().len(), 16);
    let err = read_at_ref(&repo, "HEAD", &path, 15).unwrap_err();
    assert!(
        matches!(err, GitError::TooLarge { size: 16, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("is 16 bytes, larger than the limit of 15 bytes"),
        "{err}"
    );
}

/// Any blob is larger than this test's files; the limit itself is tested above.
const LIMIT: u64 = 1 << 20;

#[test]
fn spec_at_ref_records_the_ref_commit_as_clean() {
    let (dir, spec) = repo_with_history();
    std::fs::write(&spec, "dirty\n").unwrap();
    let at = spec_at_ref(&spec, "v1").unwrap();
    let v1 = git(dir.path(), &["rev-parse", "v1"]);
    assert_eq!(at.bytes, b"version: 1 # v1\n");
    assert_eq!(at.commit.commit, v1);
    assert!(!at.commit.dirty);
    assert_eq!(
        at.file_name,
        format!("config/tokensmith.yaml@{}", &v1[..12])
    );
    // The spec need not exist in the working tree at all.
    std::fs::remove_file(&spec).unwrap();
    assert_eq!(
        spec_at_ref(&spec, "HEAD").unwrap().bytes,
        b"version: 1 # v2\n"
    );
}

fn inputs(commit: Option<&str>, dirty: bool) -> Inputs {
    Inputs {
        spec: "s".into(),
        live: "l".into(),
        targets: "t".into(),
        spec_commit: commit.map(str::to_owned),
        dirty,
        replace: Vec::new(),
    }
}

#[test]
fn a_saved_plan_from_another_commit_is_refused() {
    let at = |c: &str| SpecCommit {
        commit: c.into(),
        dirty: false,
        path_in_repo: "tokensmith.yaml".into(),
    };
    assert_eq!(
        check_plan_commit(&inputs(Some("aaa"), false), Some(&at("aaa"))),
        Ok(())
    );
    assert_eq!(
        check_plan_commit(&inputs(None, false), Some(&at("aaa"))),
        Ok(())
    );
    assert_eq!(check_plan_commit(&inputs(None, true), None), Ok(()));
    let err = check_plan_commit(&inputs(Some("aaa"), false), Some(&at("bbb"))).unwrap_err();
    assert_eq!(
        err,
        CommitMismatch::Different {
            planned: "aaa".into(),
            current: "bbb".into()
        }
    );
    assert!(err.to_string().contains("plan --out"), "{err}");
    assert!(matches!(
        check_plan_commit(&inputs(Some("aaa"), false), None),
        Err(CommitMismatch::NoLongerInGit { .. })
    ));
    // Dirtiness is the fingerprint's business (the spec hash), not the commit check's.
    assert_eq!(
        check_plan_commit(&inputs(Some("aaa"), true), Some(&at("aaa"))),
        Ok(())
    );
}

// ---- remote locks ----

/// A bare "remote" and `n` independent local repositories (runners that share nothing).
fn remote_and_runners(n: usize) -> (tempfile::TempDir, String, Vec<std::path::PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let remote = dir.path().join("remote.git");
    std::fs::create_dir(&remote).unwrap();
    git(&remote, &["init", "-q", "--bare"]);
    let runners = (0..n)
        .map(|i| {
            let r = dir.path().join(format!("runner{i}"));
            std::fs::create_dir(&r).unwrap();
            git(&r, &["init", "-q"]);
            r
        })
        .collect();
    let remote = remote.to_string_lossy().into_owned();
    (dir, remote, runners)
}

fn remote_holder(remote: &str, env: &str) -> Option<LockInfo> {
    let out = Command::new("git")
        .args(["-C", remote, "log", "-1", "--format=%B"])
        .arg(lock_ref(&EnvName::new(env)))
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).expect("lock commit message is LockInfo"))
}

#[test]
fn two_concurrent_acquirers_exactly_one_wins_and_the_other_names_the_holder() {
    let (_dir, remote, runners) = remote_and_runners(2);
    let env = EnvName::new("prod");
    for round in 0..4 {
        let barrier = Arc::new(Barrier::new(2));
        let handles: Vec<_> = runners
            .iter()
            .map(|r| {
                let locks = GitRemoteLocks::new(r, remote.clone());
                let barrier = barrier.clone();
                let env = env.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    locks.acquire(&env, Some(format!("commit-{round}")), Duration::ZERO)
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        let winner = winners[0].info().clone();
        let loser = results.iter().find_map(|r| r.as_ref().err()).unwrap();
        match loser {
            LockError::Held(held) => assert_eq!(held.id, winner.id),
            other => panic!("round {round}: unexpected error {other:?}"),
        }
        let msg = loser.to_string();
        assert!(msg.contains(&winner.id), "{msg}");
        assert!(msg.contains(&winner.holder), "{msg}");
        assert!(msg.contains(&format!("commit commit-{round}")), "{msg}");
        // The hint is a command that works: it names the remote the lock is kept in.
        assert!(
            msg.contains(&format!(
                "tokensmith force-unlock prod {} --lock-remote {}",
                winner.id, remote
            )),
            "{msg}"
        );
        // A person reads the time: UTC to the second and how long ago.
        assert!(msg.contains(" UTC (") && msg.contains(" ago)"), "{msg}");
        assert!(!msg.contains("unknown@"), "{msg}");
        // The remote holds the winner's info.
        assert_eq!(remote_holder(&remote, "prod"), Some(winner.clone()));
        for guard in results.into_iter().flatten() {
            guard.release().unwrap();
        }
        assert_eq!(
            remote_holder(&remote, "prod"),
            None,
            "round {round}: released"
        );
    }
}

#[test]
fn release_current_and_a_waiting_acquirer() {
    let (_dir, remote, runners) = remote_and_runners(2);
    let a = GitRemoteLocks::new(&runners[0], remote.clone());
    let b = GitRemoteLocks::new(&runners[1], remote.clone())
        .with_poll_interval(Duration::from_millis(100));
    let env = EnvName::new("eu/managed");
    assert_eq!(b.current(&env).unwrap(), None);
    let guard = a.acquire(&env, None, Duration::ZERO).unwrap();
    assert_eq!(guard.reference(), "refs/tokensmith/locks/eu%2Fmanaged");
    assert_eq!(b.current(&env).unwrap().as_ref(), Some(guard.info()));
    // Another environment is independent.
    let other = b
        .acquire(&EnvName::new("prod"), None, Duration::ZERO)
        .unwrap();

    let waiter = std::thread::spawn(move || b.acquire(&env, None, Duration::from_secs(20)));
    std::thread::sleep(Duration::from_millis(400));
    let first_id = guard.info().id.clone();
    drop(guard); // dropping releases
    let second = waiter.join().unwrap().unwrap();
    assert_ne!(second.info().id, first_id);
    assert_eq!(
        remote_holder(&remote, "eu/managed").unwrap().id,
        second.info().id
    );
    second.release().unwrap();
    other.release().unwrap();
    assert_eq!(remote_holder(&remote, "eu/managed"), None);
    assert_eq!(remote_holder(&remote, "prod"), None);
}

#[test]
fn force_unlock_needs_the_right_id_and_a_stale_guard_leaves_the_new_lock_alone() {
    let (_dir, remote, runners) = remote_and_runners(2);
    let a = GitRemoteLocks::new(&runners[0], remote.clone());
    let b = GitRemoteLocks::new(&runners[1], remote.clone());
    let env = EnvName::new("prod");
    let err = b.force_unlock(&env, "nope").unwrap_err();
    assert!(matches!(err, LockError::NotLocked { .. }), "{err:?}");

    let stale = a.acquire(&env, None, Duration::ZERO).unwrap();
    let id = stale.info().id.clone();
    let err = b.force_unlock(&env, "0123456789ab").unwrap_err();
    assert!(
        err.to_string().contains(&format!(
            "locked by lock {id}, not 0123456789ab; nothing was released"
        )),
        "{err}"
    );
    assert_eq!(remote_holder(&remote, "prod").unwrap().id, id);

    let removed = b.force_unlock(&env, &id).unwrap();
    assert_eq!(removed.id, id);
    assert_eq!(remote_holder(&remote, "prod"), None);

    // Runner b takes the lock; a's stale guard must not release it.
    let fresh = b.acquire(&env, None, Duration::ZERO).unwrap();
    stale.release().unwrap();
    assert_eq!(remote_holder(&remote, "prod").unwrap().id, fresh.info().id);
    fresh.release().unwrap();
}

#[test]
fn an_unreachable_remote_is_a_clean_error() {
    let (dir, _remote, runners) = remote_and_runners(1);
    let missing = dir.path().join("does-not-exist.git");
    let locks = GitRemoteLocks::new(&runners[0], missing.to_string_lossy().into_owned());
    let err = locks
        .acquire(&EnvName::new("prod"), None, Duration::ZERO)
        .unwrap_err();
    assert!(
        matches!(
            err,
            LockError::GitRemote(GitRemoteLockError::GitCommand { .. })
        ),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("`git push` failed"), "{err}");
}

/// A remote that accepts the connection and then never answers (a stalled server, a firewall
/// that drops packets) stops the acquire at the command deadline with the remote named, instead
/// of holding the apply for ever: git has no overall timeout of its own. The URL's credentials
/// are not in the error.
#[test]
fn a_remote_that_never_answers_is_given_up_at_the_deadline() {
    let (_dir, _remote, runners) = remote_and_runners(1);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let url = format!("http://ci-bot:hunter2@127.0.0.1:{port}/locks.git");
    let locks =
        GitRemoteLocks::new(&runners[0], url).with_command_deadline(Duration::from_millis(1500));
    // On a thread of its own: a hang fails the test at the guard instead of holding it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let err = locks
            .acquire(&EnvName::new("prod"), None, Duration::ZERO)
            .unwrap_err();
        let _ = tx.send((err, started.elapsed()));
    });
    let (err, took) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the acquire gives up instead of waiting for the remote");
    assert!(
        matches!(
            err,
            LockError::GitRemote(GitRemoteLockError::TimedOut { .. })
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("`git push` with remote `http://"), "{text}");
    assert!(
        text.contains(&format!("127.0.0.1:{port}/locks.git")),
        "{text}"
    );
    assert!(text.contains("did not finish within 1.5 s"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(took >= Duration::from_millis(1500), "{took:?}");
    assert!(took < Duration::from_secs(20), "{took:?}");
}

const SPEC_V1: &str = "\
version: 1
environments:
  demo:
    url: sandbox://demo
api_tokens:
  ci:
    environments: [demo]
    scopes: [metrics.ingest]
    expires_in: 30d
    deliver:
      - file: { path: out/ci-token }
";

#[test]
fn load_at_ref_and_diff_against_a_base() {
    use tokensmith::git::at_ref::{diff_against, load_at_ref, AtRefError};
    use tokensmith::git::desired_diff::ChangeKind;

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    git(root, &["init", "-q", "-b", "main"]);
    let spec = root.join("tokensmith.yaml");
    std::fs::write(&spec, "version: 1\nenvironments: {demo: {url: 12}}\n").unwrap();
    git(root, &["add", "."]);
    git(root, &["commit", "-q", "-m", "broken"]);
    std::fs::write(&spec, SPEC_V1).unwrap();
    git(root, &["commit", "-q", "-am", "v1"]);
    let v1 = git(root, &["rev-parse", "HEAD"]);

    // The working tree adds a scope and a token.
    let head_text = SPEC_V1.replace("[metrics.ingest]", "[metrics.ingest, logs.ingest]")
        + "  extra:\n    environments: [demo]\n    scopes: [entities.read]\n    deliver:\n      - file: { path: out/extra }\n";
    std::fs::write(&spec, &head_text).unwrap();
    let head = tokensmith::spec::load(&spec).unwrap();

    let base = load_at_ref(&spec, "main").unwrap();
    assert_eq!(base.commit.commit, v1);
    assert!(!base.commit.dirty);
    assert_eq!(base.spec.desired.tokens.len(), 1);

    let d = diff_against(&spec, "HEAD", &head.desired).unwrap();
    assert_eq!(d.token_counts(), (1, 1, 0));
    let ci = d
        .tokens
        .iter()
        .find(|t| t.change == ChangeKind::Changed)
        .unwrap();
    assert_eq!(
        ci.scopes_added
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>(),
        ["logs.ingest"]
    );

    // A commit whose spec does not load: diagnostics named after the commit.
    let err = load_at_ref(&spec, "HEAD~1").unwrap_err();
    match &err {
        AtRefError::Spec { diagnostics, .. } => {
            let text = diagnostics.to_string();
            assert!(text.contains("tokensmith.yaml@"), "{text}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        load_at_ref(&spec, "nope").unwrap_err(),
        AtRefError::Git(GitError::UnknownRef { .. })
    ));
}

#[test]
fn a_foreign_commit_at_the_lock_ref_is_reported_not_overwritten() {
    let (_dir, remote, runners) = remote_and_runners(1);
    let runner = &runners[0];
    std::fs::write(runner.join("f"), "x").unwrap();
    git(runner, &["add", "f"]);
    git(runner, &["commit", "-q", "-m", "not a lock"]);
    git(
        runner,
        &["push", "-q", &remote, "HEAD:refs/tokensmith/locks/prod"],
    );
    let locks = GitRemoteLocks::new(runner, remote.clone());
    let err = locks
        .acquire(&EnvName::new("prod"), None, Duration::ZERO)
        .unwrap_err();
    assert!(
        matches!(
            err,
            LockError::GitRemote(GitRemoteLockError::Corrupt { .. })
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("refs/tokensmith/locks/prod"),
        "{err}"
    );
    // Still there, untouched.
    let head = git(runner, &["rev-parse", "HEAD"]);
    assert_eq!(
        git(
            Path::new(&remote),
            &["rev-parse", "refs/tokensmith/locks/prod"]
        ),
        head
    );
}

#[test]
fn a_remote_that_refuses_the_lock_namespace_is_an_error_not_a_wait() {
    let (_dir, remote, runners) = remote_and_runners(1);
    let hook = Path::new(&remote).join("hooks/update");
    std::fs::write(
        &hook,
        "#!/bin/sh\ncase \"$1\" in refs/tokensmith/*) echo 'no locks here' >&2; exit 1;; esac\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let locks = GitRemoteLocks::new(&runners[0], remote.clone());
    let err = locks
        .acquire(&EnvName::new("prod"), None, Duration::from_secs(60))
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            LockError::GitRemote(GitRemoteLockError::GitCommand { .. })
        ),
        "{err:?}"
    );
    assert!(
        msg.contains("refused to create refs/tokensmith/locks/prod"),
        "{msg}"
    );
    assert!(msg.contains("refs/tokensmith/*"), "{msg}");
}
