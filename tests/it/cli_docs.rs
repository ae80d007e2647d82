//! Shell completions and the manual page (issue 14): `tokensmith completions SHELL` and
//! `tokensmith man`, generated from the real command line, name every subcommand and the flags
//! users type; the bash and zsh scripts parse in their shells when those are installed.

use std::process::Command;

fn tokensmith(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tokensmith"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("tokensmith runs")
}

const SUBCOMMANDS: &[&str] = &[
    "validate",
    "plan",
    "apply",
    "drift",
    "inventory",
    "sandbox",
    "force-unlock",
    "completions",
];

#[test]
fn completions_for_each_shell_name_the_subcommands_and_flags() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = tokensmith(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {out:?}");
        let script = String::from_utf8(out.stdout).unwrap();
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell} completes `{sub}`");
        }
        for flag in ["auto-approve", "lock-remote", "detailed-exitcode"] {
            assert!(script.contains(flag), "{shell} completes --{flag}");
        }
        // The script parses in its shell, when that shell is here.
        let check = match shell {
            "bash" => Some(("bash", "-n")),
            "zsh" => Some(("zsh", "-n")),
            _ => None,
        };
        if let Some((program, flag)) = check {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("completion");
            std::fs::write(&path, &script).unwrap();
            if let Ok(status) = Command::new(program).arg(flag).arg(&path).status() {
                assert!(status.success(), "{shell} parses its completion script");
            }
        }
    }
}

#[test]
fn an_unknown_shell_is_refused_naming_the_ones_there_are() {
    let out = tokensmith(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bash, zsh, fish, powershell"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn the_man_page_is_roff_with_every_subcommand() {
    let out = tokensmith(&["man"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.contains(".TH tokensmith 1"), "{page}");
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH SUBCOMMANDS"] {
        assert!(page.contains(section), "{section} in {page}");
    }
    for sub in SUBCOMMANDS {
        // roff escapes the hyphen.
        let roff = sub.replace('-', "\\-");
        assert!(page.contains(&roff), "the man page names `{sub}`");
    }
    assert!(
        page.contains("Exit codes"),
        "the examples and exit codes are in it"
    );
}

#[test]
fn every_format_flag_says_what_it_does() {
    for (sub, phrase) in [
        ("validate", "workflow annotations"),
        ("plan", "How the plan is written"),
        (
            "apply",
            "How the plan (and, in markdown, the result) is written",
        ),
        ("drift", "How the report is written"),
        ("inventory", "for spreadsheets"),
    ] {
        let out = tokensmith(&[sub, "--help"]);
        assert_eq!(out.status.code(), Some(0));
        let help = String::from_utf8(out.stdout).unwrap();
        let at = help.find("--format <FORMAT>").expect("a --format flag");
        let after = &help[at..(at + 400).min(help.len())];
        assert!(after.contains(phrase), "{sub} --format: {after}");
    }
    // The values are described too.
    let out = tokensmith(&["plan", "--help"]);
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("A pull-request comment"), "{help}");
}
