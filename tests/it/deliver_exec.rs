//! `exec` targets: how the value reaches the command (env, stdin, argv only when asked),
//! timeouts that kill the whole process group, failures that name the target with the secret
//! redacted, read commands as holders, and verify commands.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use time::macros::datetime;
use tokensmith::deliver::{
    DeliverError, Deliverer, DeliveryContext, KubeSettings, Record, Verified,
};
use tokensmith::model::target::tenant_fingerprint;
use tokensmith::model::{ExecTarget, Holder, Secret, SpecDuration, Target, TokenId};

const SECRET: &str =
    "dt0c01.EXECPUBLIC2345ABCDEFGHIJ.EXECSECRETPART234567ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_PART: &str = "EXECSECRETPART";
const ID: &str = "dt0c01.EXECPUBLIC2345ABCDEFGHIJ";

fn deliverer(dir: &Path) -> Deliverer {
    Deliverer::new(DeliveryContext::with_kube(dir, KubeSettings::default()))
}

fn exec(command: &[&str]) -> ExecTarget {
    ExecTarget {
        command: command.iter().map(|s| (*s).to_owned()).collect(),
        secret_env: None,
        secret_stdin: false,
        secret_in_argv: false,
        read_command: None,
        verify_command: None,
        timeout: None,
        env: Vec::new(),
        for_each: None,
    }
}

fn record() -> Record {
    Record::token(TokenId::new(ID), None)
}

#[tokio::test]
async fn the_value_arrives_in_env_or_on_stdin_with_the_record_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = deliverer(dir.path());
    let mut e = exec(&[
        "sh",
        "-c",
        "printf %s \"$DT_TOKEN\" > env.out; printf %s \"$TOKENSMITH_TOKEN_ID\" > id.out",
    ]);
    e.secret_env = Some("DT_TOKEN".into());
    let out = d
        .deliver(&Target::Exec(e), &Secret::from(SECRET), &record())
        .await
        .unwrap();
    assert!(out.changed);
    assert_eq!(
        fs::read_to_string(dir.path().join("env.out")).unwrap(),
        SECRET
    );
    assert_eq!(fs::read_to_string(dir.path().join("id.out")).unwrap(), ID);

    let mut e = exec(&["sh", "-c", "cat > stdin.out; printf %s \"$TOKENSMITH_TENANT_FINGERPRINT $TOKENSMITH_TENANT_SINCE\" > fp.out"]);
    e.secret_stdin = true;
    let tenant = "opaqueTENANTvalue123";
    let rec = Record::Tenant {
        fingerprint: tenant_fingerprint(tenant),
        at: datetime!(2026-11-22 10:00 UTC),
    };
    d.deliver(&Target::Exec(e), &Secret::from(tenant), &rec)
        .await
        .unwrap();
    // No trailing newline on stdin.
    assert_eq!(
        fs::read(dir.path().join("stdin.out")).unwrap(),
        tenant.as_bytes()
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("fp.out")).unwrap(),
        format!("{} 2026-11-22T10:00:00Z", tenant_fingerprint(tenant))
    );
}

#[tokio::test]
async fn argv_substitution_only_when_the_spec_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let d = deliverer(dir.path());
    let mut e = exec(&[
        "sh",
        "-c",
        "printf %s \"$1\" > argv.out",
        "sh",
        "--token={{ secret }}",
    ]);
    let err = d
        .deliver(&Target::Exec(e.clone()), &Secret::from(SECRET), &record())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("secret_in_argv"), "{err}");
    assert!(!dir.path().join("argv.out").exists());
    e.secret_in_argv = true;
    d.deliver(&Target::Exec(e.clone()), &Secret::from(SECRET), &record())
        .await
        .unwrap();
    assert_eq!(
        fs::read_to_string(dir.path().join("argv.out")).unwrap(),
        format!("--token={SECRET}")
    );
    // The address names the placeholder, never the value.
    assert!(Target::Exec(e)
        .address()
        .to_string()
        .contains("{{ secret }}"));

    let e = exec(&["true"]);
    let err = d
        .deliver(&Target::Exec(e), &Secret::from(SECRET), &record())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("secret_env"), "{err}");
}

#[tokio::test]
async fn failures_name_the_target_and_redact_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let d = deliverer(dir.path());
    let mut e = exec(&[
        "sh",
        "-c",
        "echo \"rejected token $T (also $T)\" >&2; exit 3",
    ]);
    e.secret_env = Some("T".into());
    let target = Target::Exec(e);
    let err = d
        .deliver(&target, &Secret::from(SECRET), &record())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, DeliverError::Command { .. }));
    assert!(text.starts_with(&target.address().to_string()), "{text}");
    assert!(text.contains("exited with status 3"), "{text}");
    assert!(text.contains("rejected token <redacted>"), "{text}");
    assert!(!text.contains(SECRET_PART), "{text}");
    assert!(!format!("{err:?}").contains(SECRET_PART));

    let e = exec(&["./does-not-exist.sh"]);
    let mut e2 = e.clone();
    e2.secret_stdin = true;
    let err = d
        .deliver(&Target::Exec(e2), &Secret::from(SECRET), &record())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot start"), "{err}");
}

#[tokio::test]
async fn a_timeout_kills_the_command_and_everything_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let d = deliverer(dir.path());
    // The grandchild would write a file after 3s if it survived.
    let mut e = exec(&["sh", "-c", "(sleep 3; echo survived > late.out) & sleep 30"]);
    e.secret_env = Some("T".into());
    e.timeout = Some(SpecDuration::from_secs(1));
    let started = Instant::now();
    let err = d
        .deliver(&Target::Exec(e), &Secret::from(SECRET), &record())
        .await
        .unwrap_err();
    assert!(
        matches!(err, DeliverError::Timeout { after: 1, .. }),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !dir.path().join("late.out").exists(),
        "the process group was not killed"
    );
}

#[tokio::test]
async fn read_commands_report_holders_and_verify_checks_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = deliverer(dir.path());
    let no_read = exec(&["true"]);
    assert_eq!(
        d.read_holder(&Target::Exec(no_read.clone())).await,
        Holder::WriteOnly
    );
    assert_eq!(
        d.verify(&Target::Exec(no_read), &record()).await.unwrap(),
        Verified::Unverifiable
    );

    let mut e = exec(&["true"]);
    e.read_command = Some(vec!["sh".into(), "-c".into(), format!("echo ' {ID} '")]);
    assert_eq!(
        d.read_holder(&Target::Exec(e.clone())).await,
        Holder::Token {
            id: TokenId::new(ID),
            expires: None,
        }
    );
    assert!(matches!(
        d.verify(&Target::Exec(e.clone()), &record()).await,
        Ok(Verified::ReadBack(_))
    ));
    let other = Record::token(TokenId::new("dt0c01.OTHER"), None);
    assert!(matches!(
        d.verify(&Target::Exec(e), &other).await,
        Err(DeliverError::Mismatch { .. })
    ));

    // `oneagentctl --get-tenant-token` prints the token itself: only its fingerprint is kept.
    let mut e = exec(&["true"]);
    e.read_command = Some(vec!["echo".into(), "opaqueTENANTvalue123".into()]);
    let holder = d.read_holder(&Target::Exec(e)).await;
    assert_eq!(
        holder,
        Holder::TenantToken {
            fingerprint: tenant_fingerprint("opaqueTENANTvalue123"),
            since: None
        }
    );
    assert!(!format!("{holder:?}").contains("opaqueTENANT"));

    let mut e = exec(&["true"]);
    e.read_command = Some(vec![
        "echo".into(),
        "tenant:0123456789ab since 2026-11-22T10:00:00Z".into(),
    ]);
    assert_eq!(
        d.read_holder(&Target::Exec(e)).await,
        Holder::TenantToken {
            fingerprint: "0123456789ab".into(),
            since: Some(datetime!(2026-11-22 10:00 UTC))
        }
    );

    // A full token printed by a read command is cut to its id.
    let mut e = exec(&["true"]);
    e.read_command = Some(vec!["echo".into(), SECRET.into()]);
    let holder = d.read_holder(&Target::Exec(e)).await;
    assert_eq!(
        holder,
        Holder::Token {
            id: TokenId::new(ID),
            expires: None,
        }
    );

    // A failing read command is an unreadable holder, with secret-looking output redacted.
    let mut e = exec(&["true"]);
    e.read_command = Some(vec![
        "sh".into(),
        "-c".into(),
        format!("echo 'cannot reach host, last token {SECRET}' >&2; exit 1"),
    ]);
    match d.read_holder(&Target::Exec(e)).await {
        Holder::Unreadable { reason } => {
            assert!(reason.contains("cannot reach host"), "{reason}");
            assert!(!reason.contains(SECRET_PART), "{reason}");
        }
        other => panic!("{other:?}"),
    }

    // verify_command sees the record, not the secret.
    let mut e = exec(&["true"]);
    e.verify_command = Some(vec![
        "sh".into(),
        "-c".into(),
        format!("test \"$TOKENSMITH_TOKEN_ID\" = {ID}"),
    ]);
    assert_eq!(
        d.verify(&Target::Exec(e.clone()), &record()).await.unwrap(),
        Verified::VerifyCommand
    );
    assert!(d.verify(&Target::Exec(e), &other_record()).await.is_err());
}

fn other_record() -> Record {
    Record::token(TokenId::new("dt0c01.OTHER"), None)
}

#[tokio::test]
async fn relative_commands_run_from_the_spec_directory() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("scripts")).unwrap();
    let script = dir.path().join("scripts/deliver.sh");
    fs::write(&script, "#!/bin/sh\ncat > delivered.out\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let d = deliverer(dir.path());
    let mut e = exec(&["./scripts/deliver.sh"]);
    e.secret_stdin = true;
    d.deliver(&Target::Exec(e), &Secret::from(SECRET), &record())
        .await
        .unwrap();
    // Run in the spec directory, so relative output paths land there too.
    assert_eq!(
        fs::read_to_string(dir.path().join("delivered.out")).unwrap(),
        SECRET
    );
}

#[tokio::test]
async fn commands_get_a_clean_environment_without_the_jobs_credentials() {
    // nextest runs every test in a process of its own, so these reach only this test.
    std::env::set_var("DT_API_TOKEN", "dt0c01.MGMTLEAK.MGMTLEAKSECRETPART");
    std::env::set_var("DT_CLIENT_SECRET", "oauth-client-secret-value");
    std::env::set_var("SSH_AUTH_SOCK", "/tmp/agent.sock");
    let dir = tempfile::tempdir().unwrap();
    let d = deliverer(dir.path());
    let dump = "tr '\\0' '\\n' < /proc/self/environ > {}.env";
    let mut e = exec(&["sh", "-c", &dump.replace("{}", "plain")]);
    e.secret_env = Some("DT_TOKEN".into());
    d.deliver(&Target::Exec(e.clone()), &Secret::from(SECRET), &record())
        .await
        .unwrap();
    let mut with_agent = exec(&["sh", "-c", &dump.replace("{}", "agent")]);
    with_agent.secret_env = Some("DT_TOKEN".into());
    with_agent.env = vec!["SSH_AUTH_SOCK".into()];
    d.deliver(&Target::Exec(with_agent), &Secret::from(SECRET), &record())
        .await
        .unwrap();
    let mut reader = exec(&["true"]);
    reader.read_command = Some(vec!["sh".into(), "-c".into(), dump.replace("{}", "read")]);
    d.read_holder(&Target::Exec(reader)).await;

    for (name, agent) in [("plain", false), ("agent", true), ("read", false)] {
        let text = fs::read_to_string(dir.path().join(format!("{name}.env"))).unwrap();
        let names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, _)| k)
            .collect();
        assert!(!text.contains("MGMTLEAK"), "{name}: {text}");
        assert!(
            !text.contains("oauth-client-secret-value"),
            "{name}: {text}"
        );
        assert!(
            !names.contains(&"DT_API_TOKEN") && !names.contains(&"DT_CLIENT_SECRET"),
            "{name}: {names:?}"
        );
        assert_eq!(names.contains(&"SSH_AUTH_SOCK"), agent, "{name}: {names:?}");
        assert!(names.contains(&"PATH"), "{name}: {names:?}");
        let allowed = [
            "PATH",
            "HOME",
            "LANG",
            "TZ",
            "SSH_AUTH_SOCK",
            "DT_TOKEN",
            "PWD",
            "SHLVL",
            "_",
        ];
        for n in &names {
            assert!(
                allowed.contains(n) || n.starts_with("TOKENSMITH_"),
                "{name}: unexpected {n}"
            );
        }
        assert_eq!(
            names.contains(&"DT_TOKEN"),
            name != "read",
            "{name}: {names:?}"
        );
    }
}

/// The record's expiry reaches the command (`TOKENSMITH_TOKEN_EXPIRES` and in
/// `TOKENSMITH_RECORD`), and a read command that prints the stored record back reports it.
#[tokio::test]
async fn the_expiry_travels_with_the_record_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = deliverer(dir.path());
    let mut e = exec(&[
        "sh",
        "-c",
        "printf %s \"$TOKENSMITH_RECORD\" > record.out; printf %s \"$TOKENSMITH_TOKEN_EXPIRES\" > expires.out",
    ]);
    e.secret_env = Some("DT_TOKEN".into());
    e.read_command = Some(vec!["cat".into(), "record.out".into()]);
    let expires = datetime!(2026-12-01 10:00 UTC);
    let rec = Record::token(TokenId::new(ID), Some(expires));
    let t = Target::Exec(e);
    d.deliver(&t, &Secret::from(SECRET), &rec).await.unwrap();
    assert_eq!(
        fs::read_to_string(dir.path().join("record.out")).unwrap(),
        format!("{ID} until 2026-12-01T10:00:00Z")
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("expires.out")).unwrap(),
        "2026-12-01T10:00:00Z"
    );
    assert_eq!(
        d.read_holder(&t).await,
        Holder::Token {
            id: TokenId::new(ID),
            expires: Some(expires),
        }
    );
    assert!(matches!(
        d.verify(&t, &rec).await,
        Ok(Verified::ReadBack(_))
    ));
}
