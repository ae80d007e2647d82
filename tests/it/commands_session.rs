//! The management-token lookup the commands share: `Session::endpoint` (used for metrics
//! ingest) answers what the connector's environment clients use, so a `token_env` set for a
//! `sandbox://` environment wins over the sandbox's own management token there too. And what a
//! session reads: `--env` narrows environments and leaves accounts in, `--account` narrows
//! accounts.

use tokensmith::cli::settings::Connections;
use tokensmith::commands::session::{self, load_spec, Session};
use tokensmith::output::Printer;

/// Set only by this test (nextest runs each test in its own process).
const OVERRIDE_VAR: &str = "TS_TEST_SESSION_SANDBOX_TOKEN";

#[test]
fn token_env_wins_over_the_sandbox_token_for_every_caller() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("tokensmith.yaml");
    std::fs::write(
        &spec,
        format!("version: 1\nenvironments:\n  demo: {{ url: sandbox://demo, token_env: {OVERRIDE_VAR} }}\n"),
    )
    .unwrap();
    let mut printer = Printer::new(Box::new(std::io::sink()), Box::new(std::io::sink()));
    let source = load_spec(&spec, None, &mut printer)
        .unwrap()
        .expect("the spec is valid");
    let session = Session::new(&spec, source, &[], &[], &Connections::default()).unwrap();
    let demo = session
        .desired
        .environments
        .values()
        .next()
        .unwrap()
        .clone();
    let runtime = session::runtime().unwrap();

    // Unset: the sandbox's own management token.
    std::env::remove_var(OVERRIDE_VAR);
    let (base, sandbox_token) = runtime.block_on(session.endpoint(&demo)).unwrap();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    assert!(!sandbox_token.expose().is_empty());

    // Set: the variable `token_env` names wins, trimmed, as it does for the environment client.
    std::env::set_var(OVERRIDE_VAR, " override-from-token-env ");
    let (same_base, token) = runtime.block_on(session.endpoint(&demo)).unwrap();
    assert_eq!(same_base, base);
    // Compared without printing: on failure the other value is the sandbox's secret.
    assert!(
        token.expose() == "override-from-token-env",
        "the value of `{OVERRIDE_VAR}` must win over the sandbox's management token"
    );
    assert!(
        sandbox_token.expose() != token.expose(),
        "the sandbox's own token must differ from the override"
    );
}

#[test]
fn env_keeps_accounts_and_account_narrows_them() {
    let loaded = tokensmith::spec::load(std::path::Path::new("examples/platform-tokens.yaml"))
        .unwrap_or_else(|_| panic!("the example loads"));
    let desired = &loaded.desired;
    let platform = |d: &tokensmith::model::Desired| {
        d.tokens
            .iter()
            .filter(|t| t.kind == tokensmith::model::TokenKind::PlatformToken)
            .count()
    };
    let by_env = session::select(desired, &["prod".into()], &[]).unwrap();
    assert!(by_env.accounts.contains_key("main"));
    assert_eq!(platform(&by_env), platform(desired));
    assert!(platform(desired) > 0);
    let by_account = session::select(desired, &[], &["main".into()]).unwrap();
    assert_eq!(platform(&by_account), platform(desired));
    assert_eq!(by_account.environments.len(), desired.environments.len());
    let err = session::select(desired, &[], &["other".into()])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "--account other: the spec declares no such account; it declares main"
    );
}
