//! Helpers for `tests/apply_sandbox.rs`: a seeded sandbox served on loopback from the test
//! process (so the test controls its clock and faults between runs), a temporary directory with a
//! spec pointing at it, the real `tokensmith` binary driven against both, and the checks of
//! DESIGN.md invariants read from the sandbox state and the delivered files.

#![allow(dead_code)]

pub use super::{id_of, tok};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

use tokensmith::model::Marker;
use tokensmith::sandbox::{spawn, Faults, Sandbox, Seed};

pub const TOKEN_ENV: &str = "TS_ITEST_TOKEN";
pub const ENV_ID: &str = "env1";

const MANAGEMENT_SCOPES: &str = "[apiTokens.read, apiTokens.write, activeGateTokenManagement.read, activeGateTokenManagement.create, activeGateTokenManagement.write, tenantTokenRotation.write, InstallerDownload, activeGates.read]";

fn seed_yaml(extra_api_tokens: &str) -> String {
    format!(
        r#"
start_time: 2026-06-01T00:00:00Z
frozen_clock: true
default_environment: {ENV_ID}
environments:
  {ENV_ID}:
    tenant_token: tenantoriginal000000
    api_tokens:
      - {{ name: admin, token: "{a}", owner: admin@example.com, scopes: {MANAGEMENT_SCOPES}, created: now-10d }}
{extra_api_tokens}
"#,
        a = tok('A'),
    )
}

/// A sandbox on loopback, a runtime serving it, and a directory for the spec and its outputs.
pub struct World {
    _rt: tokio::runtime::Runtime,
    pub sandbox: Sandbox,
    pub base: String,
    pub dir: tempfile::TempDir,
}

impl World {
    /// A fresh sandbox and `tokensmith.yaml` = `spec` with `{{BASE}}` replaced by the environment
    /// block `demo: {url, token_env}`.
    pub fn new(spec_body: &str) -> World {
        World::with_tokens(spec_body, "")
    }

    /// As [`World::new`], with more API tokens in the seed: YAML list items indented by six
    /// spaces (`      - { name: …, scopes: […] }`).
    pub fn with_tokens(spec_body: &str, extra_api_tokens: &str) -> World {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let seed = Seed::from_yaml(&seed_yaml(extra_api_tokens)).unwrap();
        let sandbox = Sandbox::from_seed(&seed).unwrap();
        let addr = rt.block_on(spawn(sandbox.clone())).unwrap();
        let base = format!("http://{addr}");
        let dir = tempfile::tempdir().unwrap();
        let w = World {
            _rt: rt,
            sandbox,
            base,
            dir,
        };
        w.write_spec(spec_body);
        w
    }

    pub fn write_spec(&self, body: &str) {
        let spec = format!(
            "version: 1\nenvironments:\n  demo: {{ url: \"{}\", token_env: {TOKEN_ENV} }}\n{body}",
            self.base
        );
        std::fs::write(self.dir.path().join("tokensmith.yaml"), spec).unwrap();
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tokensmith"));
        c.args(args)
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env("CI", "1")
            .env(TOKEN_ENV, tok('A'));
        c
    }

    /// Run tokensmith to completion; every output is checked for leaked secrets.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_env(args, &[])
    }

    /// [`World::run`] with extra environment variables (`KUBECONFIG`).
    pub fn run_with_env(&self, args: &[&str], envs: &[(&str, &str)]) -> Run {
        let mut command = self.command(args);
        command.envs(envs.iter().copied());
        let out: Output = command.output().expect("tokensmith runs");
        let run = Run {
            code: out.status.code(),
            text: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        };
        assert_no_secret(&run.text);
        run
    }

    /// Run tokensmith with `input` on its stdin; every output is checked for leaked secrets.
    pub fn run_with_stdin(&self, args: &[&str], input: &str) -> Run {
        use std::io::Write;
        let mut child = self
            .command(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("tokensmith runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let run = Run {
            code: out.status.code(),
            text: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        };
        assert_no_secret(&run.text);
        run
    }

    pub fn apply(&self) -> Run {
        self.run(&["apply", "--auto-approve"])
    }

    /// `plan --detailed-exitcode`: Some(0) when nothing is to do.
    pub fn plan_code(&self) -> Run {
        self.run(&["plan", "--detailed-exitcode"])
    }

    pub fn assert_plan_empty(&self, when: &str) {
        let p = self.plan_code();
        assert_eq!(p.code, Some(0), "{when}: plan not empty:\n{}", p.text);
    }

    /// Start `apply --auto-approve` in the background, its output going to `killed-run.log`
    /// (checked for secrets by the caller).
    pub fn spawn_apply(&self) -> Child {
        let log = std::fs::File::create(self.path("killed-run.log")).unwrap();
        self.command(&["apply", "--auto-approve"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    pub fn advance(&self, by: time::Duration) {
        self.sandbox.advance_clock(by).unwrap();
    }

    pub fn faults(&self, f: Faults) {
        self.sandbox.set_faults(f).unwrap();
    }

    /// Live managed tokens (API and ActiveGate) of the environment.
    pub fn live(&self) -> Vec<LiveTok> {
        let s = self.sandbox.snapshot();
        let env = &s.environments[ENV_ID];
        let mut v = Vec::new();
        for t in env.api_tokens.values() {
            v.push(LiveTok {
                id: t.id.clone(),
                name: t.name.clone(),
                enabled: t.enabled,
                expired: t.is_expired(s.now()),
                marker: Marker::parse_name(&t.name),
            });
        }
        for t in env.activegate_tokens.values() {
            v.push(LiveTok {
                id: t.id.clone(),
                name: t.name.clone(),
                enabled: true,
                expired: t.expiration_date.is_some_and(|e| e <= s.now()),
                marker: Marker::parse_name(&t.name),
            });
        }
        v
    }

    /// Token ids held by every delivered file under `out/`, by file.
    pub fn held(&self) -> BTreeMap<PathBuf, Vec<String>> {
        files_under(&self.path("out"))
            .into_iter()
            .map(|f| {
                let ids = secrets_in(&std::fs::read_to_string(&f).unwrap_or_default())
                    .into_iter()
                    .map(|s| id_of(&s))
                    .collect();
                (f, ids)
            })
            .collect()
    }

    /// DESIGN.md invariants 1–3 and no orphan: targets hold only live, enabled, unexpired tokens;
    /// each key+generation at most once; the newest generation of every key is held by a target;
    /// no secret in the journal or other files tokensmith wrote under `.tokensmith/`.
    pub fn check_invariants(&self, when: &str) {
        self.check(when, true);
    }

    /// Invariants 1–3 only: for the state right after an interrupted or failed run, where a
    /// successor may exist that no target holds yet (the next run finishes or removes it).
    pub fn check_interrupted(&self, when: &str) {
        self.check(when, false);
    }

    fn check(&self, when: &str, orphans: bool) {
        let live = self.live();
        let by_id: BTreeMap<&str, &LiveTok> = live.iter().map(|t| (t.id.as_str(), t)).collect();
        let held = self.held();
        let mut held_ids = BTreeSet::new();
        for (file, ids) in &held {
            for id in ids {
                let t = by_id.get(id.as_str()).unwrap_or_else(|| {
                    panic!(
                        "{when}: {} holds {id}, which the sandbox no longer has",
                        file.display()
                    )
                });
                assert!(
                    t.enabled,
                    "{when}: {} holds disabled {}",
                    file.display(),
                    t.name
                );
                assert!(
                    !t.expired,
                    "{when}: {} holds expired {}",
                    file.display(),
                    t.name
                );
                held_ids.insert(id.clone());
            }
        }
        let mut seen = BTreeSet::new();
        let mut newest: BTreeMap<String, (u32, &LiveTok)> = BTreeMap::new();
        for t in &live {
            let Some(m) = &t.marker else { continue };
            // tokensmith's own bookkeeping (apply leases) is delivered nowhere.
            if tokensmith::model::system_token::is_reserved_key(m.key.as_str()) {
                continue;
            }
            assert!(
                seen.insert((m.key.as_str().to_owned(), m.generation.0)),
                "{when}: duplicate marker {}: {:#?}",
                m.tag(),
                live
            );
            let e = newest
                .entry(m.key.as_str().to_owned())
                .or_insert((m.generation.0, t));
            if m.generation.0 > e.0 {
                *e = (m.generation.0, t);
            }
        }
        for (key, (_, t)) in &newest {
            if orphans && t.enabled {
                assert!(
                    held_ids.contains(&t.id),
                    "{when}: orphan: newest generation of {key} ({}) is held by no target; held: {held:#?}",
                    t.name
                );
            }
        }
        for f in files_under(&self.path(".tokensmith")) {
            if let Ok(text) = std::fs::read_to_string(&f) {
                assert_no_secret(&text);
            }
        }
    }
}

#[derive(Debug)]
pub struct LiveTok {
    pub id: String,
    pub name: String,
    pub enabled: bool,
    pub expired: bool,
    pub marker: Option<Marker>,
}

pub struct Run {
    pub code: Option<i32>,
    pub text: String,
}

pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Every full token secret (`dt0xNN.ID.SECRET`) in `s`.
pub fn secrets_in(s: &str) -> Vec<String> {
    tokensmith::model::redact::token_spans(s)
        .into_iter()
        .map(|span| s[span.whole()].to_owned())
        .collect()
}

pub fn assert_no_secret(s: &str) {
    let found = secrets_in(s);
    assert!(found.is_empty(), "a token secret leaked:\n{s}");
}
