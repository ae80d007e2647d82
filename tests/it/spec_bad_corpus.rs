//! The bad-input corpus: every malformed spec under `tests/bad_specs/` must fail with at least one
//! error that names its file, line and column, never a panic. The rendered diagnostics of the whole
//! corpus are one snapshot, so a change in any message is reviewed. Inputs too large to commit
//! (a huge file, a deeper alias bomb) are generated here.

use std::path::{Path, PathBuf};
use std::process::Command;

use tokensmith::spec::{self, Diagnostics};

const CORPUS: &str = "tests/bad_specs";

/// A token secret that appears in two corpus files; it must never be printed.
const SECRET_PART: &str = "G3DFPBEJYMODIDAEX454M7YWBUVEFOWKPRVMWFASS64NFH52PX6BNDVFFM572RZM";

fn corpus() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(CORPUS)
        .expect("the corpus directory exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn render(diags: &Diagnostics) -> String {
    let mut buf = Vec::new();
    diags.render(&mut buf, false).unwrap();
    String::from_utf8(buf).unwrap()
}

/// Asserts that a failed load has a located error whose excerpt is the real line of the file.
fn assert_located(path: &Path, diags: &Diagnostics) {
    let bytes = std::fs::read(path).unwrap();
    // Line breaks as YAML counts them: `\n`, `\r\n` and a lone `\r`.
    let text = String::from_utf8_lossy(&bytes)
        .replace("\r\n", "\n")
        .replace('\r', "\n");
    let lines: Vec<&str> = text.lines().collect();
    let located: Vec<_> = diags.errors().filter_map(|d| d.location.as_ref()).collect();
    assert!(
        !located.is_empty(),
        "{}: no located error in\n{diags}",
        path.display()
    );
    for loc in located {
        assert_eq!(loc.file, path.display().to_string());
        assert!(loc.line >= 1 && loc.column >= 1 && loc.width >= 1);
        let actual = lines.get(loc.line - 1).copied().unwrap_or("");
        if !actual.contains("dt0c01.") {
            assert_eq!(
                loc.excerpt,
                actual.trim_end_matches('\r'),
                "{}:{}",
                path.display(),
                loc.line
            );
        }
    }
}

#[test]
fn the_corpus_has_at_least_forty_files() {
    assert!(corpus().len() >= 40, "only {} files", corpus().len());
}

#[test]
fn every_bad_spec_fails_with_located_errors() {
    let mut report = String::new();
    for path in corpus() {
        let diags = match spec::load(&path) {
            Ok(_) => panic!("{} loaded without errors", path.display()),
            Err(d) => d,
        };
        assert_located(&path, &diags);
        let rendered = render(&diags);
        assert!(
            !rendered.contains(SECRET_PART),
            "{} prints a secret",
            path.display()
        );
        report.push_str(&format!("=== {}\n{rendered}\n", path.display()));
    }
    insta::assert_snapshot!("bad_specs", report);
}

#[test]
fn the_binary_exits_1_with_located_errors_for_every_bad_spec() {
    for path in corpus() {
        let out = Command::new(env!("CARGO_BIN_EXE_tokensmith"))
            .args(["validate", "-f"])
            .arg(&path)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {stderr}", path.display());
        assert!(
            stderr.contains(&format!(" --> {}:", path.display()))
                || stderr.contains(&format!("  --> {}:", path.display())),
            "{}: {stderr}",
            path.display()
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!stderr.contains(SECRET_PART));
        assert!(!stderr.contains('\x1b'), "colour with NO_COLOR");
    }
}

#[test]
fn a_huge_file_is_refused_before_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.yaml");
    let mut text = String::from("version: 1\n");
    let line = "# padding padding padding padding padding padding padding padding\n";
    while text.len() <= spec::load::MAX_SPEC_BYTES {
        text.push_str(line);
    }
    std::fs::write(&path, &text).unwrap();
    let diags = spec::load(&path).unwrap_err();
    assert!(render(&diags).contains("larger than the limit"), "{diags}");
    let diags = spec::load_str(&text, "huge.yaml").unwrap_err();
    assert!(render(&diags).contains("8 MiB"));
}

#[test]
fn a_deep_alias_bomb_is_refused_quickly() {
    let mut text =
        String::from("version: 1\na0: &a0 [x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..30 {
        let refs = vec![format!("*a{}", i - 1); 16].join(", ");
        text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    let started = std::time::Instant::now();
    let diags = spec::load_str(&text, "bomb.yaml").unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let d = diags.errors().next().unwrap();
    assert!(d.message.contains("expands to more than"), "{d}");
    assert!(d.location.is_some());
}

/// A plain spec of `tokens` API tokens (no anchors, no aliases), about 140 bytes per token.
fn plain_spec(tokens: usize) -> String {
    let mut text =
        String::from("version: 1\nenvironments:\n  prod:\n    url: sandbox://prod\napi_tokens:\n");
    for i in 0..tokens {
        text.push_str(&format!(
            "  ingest-{i:06}:\n    environments: [prod]\n    scopes: [metrics.ingest, logs.ingest]\n    deliver:\n      - file: {{ path: out/ingest-{i:06} }}\n"
        ));
    }
    text
}

#[test]
fn a_large_plain_spec_is_not_mistaken_for_an_alias_bomb() {
    // 50,000 tokens, about 6.9 MB: far more values than the alias limit, but no alias adds any.
    let text = plain_spec(50_000);
    assert!(text.len() > 6_000_000 && text.len() < spec::load::MAX_SPEC_BYTES);
    let loaded = spec::load_str(&text, "large.yaml").unwrap_or_else(|d| {
        panic!(
            "{}",
            render(&d).lines().take(20).collect::<Vec<_>>().join("\n")
        )
    });
    assert_eq!(loaded.desired.tokens.len(), 50_000);
}

#[test]
fn the_billion_laughs_file_is_refused_quickly_for_what_its_aliases_add() {
    let path = Path::new(CORPUS).join("06-alias-bomb-billion-laughs.yaml");
    let started = std::time::Instant::now();
    let diags = spec::load(&path).unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    let d = diags.errors().next().unwrap();
    assert!(
        d.message
            .contains("expands to more than 100000 values beyond"),
        "{d}"
    );
    // A large anchor repeated a few times in a large document stays within the limit: aliases
    // may add as many values as the document holds.
    let mut text = plain_spec(2_000);
    text.push_str("x-big: &big [");
    text.push_str(&vec!["v"; 60_000].join(", "));
    text.push_str("]\nx-copy: *big\n");
    spec::load_str(&text, "copies.yaml").unwrap_or_else(|d| panic!("{}", render(&d)));
    text.push_str("x-copy-2: *big\nx-copy-3: *big\n");
    let diags = spec::load_str(&text, "copies.yaml").unwrap_err();
    assert!(render(&diags).contains("expands to more than"), "{diags}");
}

#[test]
fn invalid_utf8_anywhere_names_its_line() {
    let valid = "version: 1\nenvironments:\n  demo:\n    url: sandbox://demo\n";
    for (at, bytes) in [
        (0, &[0xffu8][..]),
        (15, &[0xc3, 0x28]),
        (valid.len(), &[0xe2, 0x82]),
    ] {
        let mut input = valid.as_bytes()[..at].to_vec();
        input.extend_from_slice(bytes);
        input.extend_from_slice(&valid.as_bytes()[at..]);
        let diags = spec::load_bytes(&input, "t.yaml").unwrap_err();
        let d = diags.errors().next().unwrap();
        assert!(d.message.contains("not valid UTF-8"), "{d}");
        let line = valid[..at].matches('\n').count() + 1;
        assert_eq!(d.location.as_ref().unwrap().line, line);
    }
}

#[test]
fn a_missing_file_is_an_error_not_a_panic() {
    let diags = spec::load(Path::new("tests/bad_specs/does-not-exist.yaml")).unwrap_err();
    assert!(render(&diags).contains("cannot read"));
}

#[test]
fn a_fifo_or_device_as_the_spec_is_refused_without_blocking_or_reading_forever() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = crate::support::mkfifo(&dir.path().join("spec.yaml"));
    for path in [fifo.as_path(), Path::new("/dev/zero")] {
        let (tx, rx) = std::sync::mpsc::channel();
        let owned = path.to_path_buf();
        std::thread::spawn(move || {
            let _ = tx.send(render(&spec::load(&owned).unwrap_err()));
        });
        let text = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("loading did not hang");
        assert!(text.contains("not a regular file"), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
    }
}

/// A spec that is a symlink (git stores them, so a pull request can make one) to a file of the
/// kernel or to a file outside its repository is refused before it is parsed: tokensmith quotes
/// the lines of a spec it cannot parse, so `tokensmith.yaml -> /proc/self/environ` would print
/// the CI job's environment and `-> ~/.aws/credentials` its keys. A link inside the repository
/// is a spec like any other.
#[test]
fn a_spec_linked_to_a_kernel_file_or_out_of_its_repository_is_refused_unread() {
    const CANARY: &str = "canary-3f9a1c-not-for-output";
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(repo.join("specs")).unwrap();
    let init = Command::new("git")
        .args(["init", "-q"])
        .current_dir(&repo)
        .status()
        .unwrap();
    assert!(init.success());
    std::fs::copy("examples/quickstart.yaml", repo.join("specs/real.yaml")).unwrap();
    // Outside the repository: a credentials file, which is not YAML a spec could be.
    std::fs::write(
        dir.path().join("credentials"),
        format!("[default]\naws_secret_access_key = {CANARY}\n"),
    )
    .unwrap();
    let link = |name: &str, to: &str| std::os::unix::fs::symlink(to, repo.join(name)).unwrap();
    link("environ.yaml", "/proc/self/environ");
    link("credentials.yaml", "../credentials");
    link("inside.yaml", "specs/real.yaml");

    for (spec, says) in [
        ("environ.yaml", "a file of the kernel, not a spec"),
        ("credentials.yaml", "outside its git repository"),
    ] {
        for format in ["human", "github"] {
            let out =
                crate::support::command_in(&repo, &["validate", "-f", spec, "--format", format])
                    .env("TS_TEST_CANARY", CANARY)
                    .output()
                    .unwrap();
            let text = crate::support::text(&out);
            assert_eq!(out.status.code(), Some(1), "{spec}: {text}");
            assert!(text.contains(says), "{spec}: {text}");
            assert!(
                !text.contains(CANARY),
                "{spec} leaks what it links to: {text}"
            );
        }
    }
    let out = crate::support::command_in(&repo, &["validate", "-f", "inside.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", crate::support::text(&out));
}
