//! `inventory` and the HTML report end to end: the real binary against a sandbox seeded with the
//! messy tokens of issue 13 (an admin-scoped unmanaged token, an expired one, two duplicates, an
//! unused PaaS token, a name carrying markup), and the HTML page rendered in a real headless
//! Chromium to check what a person would see.
//!
//! Chromium: the test looks for `chromium` (Debian's package; `.ci/run` installs it). Without
//! it the browser checks are skipped with a printed reason, except under `CI=true`, where a
//! missing browser fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::binary_world::World;

const SPEC: &str = r#"
api_tokens:
  ci:
    name: CI pipeline
    environments: [demo]
    scopes: [metrics.ingest]
    expires_in: 30d
    rotate_before: 7d
    deliver:
      - file: { path: out/ci-token.env, format: env, key: DT_API_TOKEN }
unmanaged:
  report_unused_after: 90d
"#;

/// A name that would run script if it were not escaped.
const EVIL_NAME: &str = r#"<script>document.body.setAttribute('data-pwned','1')</script><img src=x onerror="document.body.setAttribute('data-pwned','2')">"#;

fn messy_tokens() -> String {
    let evil = EVIL_NAME.replace('\'', "''");
    format!(
        r#"      - {{ name: admin all scopes, owner: admin@example.com, scopes: [apiTokens.read, apiTokens.write, WriteConfig, tenantTokenRotation.write, metrics.read], created: now-100d, last_used: now-1d, last_used_ip: 10.0.0.7 }}
      - {{ name: old export, owner: bob@example.com, scopes: [DataExport], created: now-60d, expires: now-3d, last_used: now-4d }}
      - {{ name: PaaS token, owner: ops@example.com, scopes: [InstallerDownload], created: now-50d, last_used: now-1d, last_used_ip: 10.0.0.8 }}
      - {{ name: PaaS token, owner: ops@example.com, scopes: [InstallerDownload], created: now-40d, last_used: now-20d }}
      - {{ name: PaaS token for the old installer, owner: ops@example.com, scopes: [InstallerDownload, SupportAlert], created: now-200d }}
      - {{ name: '{evil}', owner: mallory@example.com, scopes: [metrics.read], created: now-5d, last_used: now-1d }}"#
    )
}

fn world() -> World {
    let w = World::with_tokens(SPEC, &messy_tokens());
    let applied = w.apply();
    assert_eq!(applied.code, Some(0), "{}", applied.text);
    w
}

fn stdout_of(w: &World, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tokensmith"))
        .args(args)
        .current_dir(w.dir.path())
        .env("NO_COLOR", "1")
        .env(
            crate::support::binary_world::TOKEN_ENV,
            crate::support::tok('A'),
        )
        .output()
        .expect("tokensmith runs");
    assert_eq!(out.status.code(), Some(0), "{}", crate::support::text(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn by_name<'a>(inv: &'a Value, name: &str) -> Vec<&'a Value> {
    inv["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == name)
        .collect()
}

fn classes(e: &Value) -> Vec<&str> {
    e["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect()
}

#[test]
fn the_seeded_mess_is_classed_with_owners_scopes_and_recommendations() {
    let w = world();
    let inv: Value =
        serde_json::from_str(&stdout_of(&w, &["inventory", "--format", "json"])).unwrap();
    assert_eq!(inv["format_version"], 2);

    let admin = by_name(&inv, "admin all scopes")[0];
    assert!(classes(admin).contains(&"over_privileged"), "{admin:#}");
    assert_eq!(admin["owner"], "admin@example.com");
    assert_eq!(admin["last_used_from"], "10.0.0.7");
    assert!(admin["scopes"]
        .as_array()
        .unwrap()
        .contains(&Value::from("apiTokens.write")));
    assert_eq!(admin["recommendation"]["action"], "narrow");

    let expired = by_name(&inv, "old export")[0];
    assert_eq!(classes(expired), ["expired"], "{expired:#}");
    assert_eq!(expired["recommendation"]["action"], "delete");
    assert_eq!(expired["purge_at"], "2026-06-05T00:00:00Z");

    let paas = by_name(&inv, "PaaS token");
    assert_eq!(paas.len(), 2);
    let actions: Vec<&str> = paas
        .iter()
        .map(|e| {
            assert!(classes(e).contains(&"duplicate"), "{e:#}");
            e["recommendation"]["action"].as_str().unwrap()
        })
        .collect();
    assert!(
        actions.contains(&"keep") && actions.contains(&"delete"),
        "{actions:?}"
    );

    let unused = by_name(&inv, "PaaS token for the old installer")[0];
    assert!(classes(unused).contains(&"never_used"), "{unused:#}");
    assert_eq!(unused["recommendation"]["action"], "delete");

    let mgmt = by_name(&inv, "admin")[0];
    assert!(classes(mgmt).contains(&"management_token"), "{mgmt:#}");
    assert!(!classes(mgmt).contains(&"over_privileged"), "{mgmt:#}");
    assert_eq!(mgmt["recommendation"]["action"], "keep");

    let ci = &inv["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == "ci")
        .unwrap();
    assert_eq!(ci["status"], "managed_current");

    // The human output shows owners and scopes, so the two PaaS tokens can be told apart.
    let human = stdout_of(&w, &["inventory"]);
    assert!(human.contains("owner ops@example.com"), "{human}");
    assert!(human.contains("scopes   InstallerDownload"), "{human}");
    assert!(
        human.contains("apiTokens.{read,write}") && human.contains("WriteConfig"),
        "{human}"
    );
    assert!(
        human.contains("used     2026-05-31 from 10.0.0.8"),
        "{human}"
    );

    // Filters.
    let only: Value = serde_json::from_str(&stdout_of(
        &w,
        &["inventory", "--format", "json", "--class", "expired"],
    ))
    .unwrap();
    assert_eq!(only["entries"].as_array().unwrap().len(), 1, "{only:#}");
    assert_eq!(only["entries"][0]["name"], "old export");
    let ops: Value = serde_json::from_str(&stdout_of(
        &w,
        &["inventory", "--format", "json", "--owner", "OPS@"],
    ))
    .unwrap();
    assert_eq!(ops["entries"].as_array().unwrap().len(), 3, "{ops:#}");

    // CSV: a header and one line per token; the markup-carrying name stays one quoted cell.
    let csv = stdout_of(&w, &["inventory", "--format", "csv"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("home,kind,id,name,owner,"), "{csv}");
    assert_eq!(lines.len(), 1 + inv["entries"].as_array().unwrap().len());
}

/// The page as a browser shows it: the DOM after the page's script ran.
struct Browser {
    exe: PathBuf,
    dir: PathBuf,
}

impl Browser {
    /// Debian's `chromium`; `None` (with the reason printed) when it is missing outside CI.
    fn find() -> Option<Browser> {
        let exe = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists());
        let Some(exe) = exe else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "chromium is not installed, and CI=true: .ci/run installs it (apt-get install -y chromium)"
            );
            eprintln!("SKIPPED the browser checks: chromium is not installed (apt-get install -y chromium)");
            return None;
        };
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("html-report");
        std::fs::create_dir_all(&dir).unwrap();
        Some(Browser { exe, dir })
    }

    fn run(&self, extra: &[&str], url: &str) -> String {
        let profile = tempfile::tempdir().unwrap();
        let out = Command::new(&self.exe)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--virtual-time-budget=3000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(url)
            .output()
            .expect("chromium runs");
        assert!(
            out.status.success(),
            "chromium failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn dump_dom(&self, url: &str) -> String {
        self.run(&["--dump-dom"], url)
    }

    fn screenshot(&self, url: &str, name: &str) -> PathBuf {
        let png = self.dir.join(name);
        let _ = std::fs::remove_file(&png);
        self.run(
            &[
                &format!("--screenshot={}", png.display()),
                "--window-size=1500,2200",
                "--hide-scrollbars",
            ],
            url,
        );
        png
    }
}

/// `(id, hidden)` for every token row of the table in a dumped DOM.
fn table_rows(dom: &str) -> Vec<(String, bool)> {
    let body = &dom[dom.find("<tbody>").unwrap()..dom.find("</tbody>").unwrap()];
    body.match_indices("<tr ")
        .map(|(i, _)| {
            let tag = &body[i..i + body[i..].find('>').unwrap()];
            let id = tag.split("data-id=\"").nth(1).unwrap();
            let id = id[..id.find('"').unwrap()].to_owned();
            (id, tag.contains(" hidden"))
        })
        .collect()
}

#[test]
fn the_html_report_renders_in_a_browser_with_rows_timeline_and_a_working_filter() {
    let w = world();
    let html = stdout_of(&w, &["inventory", "--format", "html"]);
    // Self-contained and inert: no URL to fetch, the name escaped, one script of our own.
    assert!(html.starts_with("<!doctype html>"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the page refers to the network"
    );
    assert!(html.contains("default-src 'none'"));
    assert_eq!(html.matches("<script").count(), 1);
    assert!(html.contains("&lt;script&gt;document.body.setAttribute("));
    assert!(!html.contains(EVIL_NAME));
    let page = w.path("report.html");
    std::fs::write(&page, &html).unwrap();
    let plan_html = stdout_of(&w, &["plan", "--format", "html"]);
    assert!(
        plan_html.contains("What the next apply does"),
        "{plan_html}"
    );
    assert!(
        plan_html.contains("m-rotation"),
        "the plan's timeline shows the next rotation"
    );

    let Some(browser) = Browser::find() else {
        return;
    };
    let url = format!("file://{}", page.display());
    let dom = browser.dump_dom(&url);
    let rows = table_rows(&dom);
    let tokens = html.matches("<tr data-id=").count();
    assert_eq!(rows.len(), tokens, "{dom}");
    assert!(rows.len() >= 8, "{rows:?}");
    assert!(rows.iter().all(|(_, hidden)| !hidden), "{rows:?}");
    assert!(
        dom.contains(&format!("{tokens} of {tokens} tokens")),
        "{dom}"
    );
    // Timeline marks a person can see: expiry, Dynatrace's purge, the next rotation of `ci`.
    for mark in ["m-created", "m-expires", "m-purge", "m-rotation", "m-grace"] {
        assert!(
            dom.contains(&format!("class=\"mark {mark}")),
            "no {mark} mark on the timeline"
        );
    }
    // The markup in the name stayed text: nothing ran, no image element was made.
    let body_tag = &dom[dom.find("<body").unwrap()..];
    let body_tag = &body_tag[..body_tag.find('>').unwrap()];
    assert!(
        !body_tag.contains("data-pwned"),
        "the token name ran as script: {body_tag}"
    );
    assert!(!dom.contains("<img"), "the token name became an element");
    assert!(dom.contains("&lt;script&gt;document.body.setAttribute("));

    // The filter in the URL is applied on load: only the expired token's row stays.
    let filtered = browser.dump_dom(&format!("{url}#class=expired"));
    let rows = table_rows(&filtered);
    let visible: Vec<&String> = rows.iter().filter(|(_, h)| !h).map(|(id, _)| id).collect();
    assert_eq!(visible.len(), 1, "{rows:?}");
    let inv: Value =
        serde_json::from_str(&stdout_of(&w, &["inventory", "--format", "json"])).unwrap();
    let expired_id = by_name(&inv, "old export")[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(visible[0], &expired_id);
    assert!(filtered.contains(&format!("1 of {tokens} tokens")));
    // And the timeline lines of the other tokens are hidden too.
    assert_eq!(
        filtered.matches("class=\"tl-row\" data-id=").count(),
        tokens
    );
    let hidden_lines = filtered
        .match_indices("<div class=\"tl-row\" data-id=")
        .filter(|(i, _)| {
            let tag = &filtered[*i..*i + filtered[*i..].find('>').unwrap()];
            tag.contains(" hidden")
        })
        .count();
    assert_eq!(hidden_lines, tokens - 1);

    // A search in the URL works the same way.
    let searched = browser.dump_dom(&format!("{url}#q=ops%40example.com"));
    let visible = table_rows(&searched).iter().filter(|(_, h)| !h).count();
    assert_eq!(visible, 3);

    let png = browser.screenshot(&url, "inventory.png");
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 10_000,
        "screenshot {} is {size} bytes",
        png.display()
    );
    eprintln!("screenshot: {}", png.display());
}

/// A token's owner, last-used address and unknown scope are the server's text: escape sequences
/// and line breaks in them are shown escaped in every text format, so a listed token cannot
/// clear the terminal, retitle it or forge a line (`::error::…` in a GitHub Actions log).
#[test]
fn control_characters_from_the_server_are_shown_escaped_in_every_format() {
    let tokens = r#"      - { name: odd, owner: "mallory\e[2J\e]0;pwned\a\r\n::error::forged", scopes: ["metrics.read", "x\e[31m"], created: now-5d, last_used: now-1d, last_used_ip: "10.0.0.9\e[2J" }"#;
    let w = World::with_tokens(SPEC, tokens);
    let applied = w.apply();
    assert_eq!(applied.code, Some(0), "{}", applied.text);
    w.assert_plan_empty("after the apply");
    for format in ["human", "markdown", "csv"] {
        let out = stdout_of(&w, &["inventory", "--format", format]);
        assert!(out.contains("mallory"), "{format}: {out}");
        assert!(
            !out.contains(['\u{1b}', '\u{7}', '\r']),
            "{format} prints a control character: {out:?}"
        );
        assert!(
            !out.lines().any(|l| l.starts_with("::error::")),
            "{format} lets the owner forge a line: {out}"
        );
        assert!(out.contains("\\u{1b}[2J"), "{format}: {out}");
    }
}
