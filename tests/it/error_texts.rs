//! The binary prints an error with its causes (`error: a: b: c`). An error type whose message
//! already quotes its cause must therefore not also give that cause as its source, or every
//! such error says its cause twice (`…: no such file or directory (os error 2): No such file or
//! directory (os error 2)`). thiserror makes a field the source when it is marked `#[source]`
//! or `#[from]`, or is named `source`; this scans the crate's error enums for a message that
//! quotes such a field.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The `#[error("…")]` messages of `text` that quote a field thiserror takes as the source, as
/// `line: message`.
fn quoted_sources(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(at) = line.find("#[error(") else {
            continue;
        };
        // The attribute, over as many lines as rustfmt gave it (`#[error(\n "…"\n)]`).
        let mut message = line[at..].to_owned();
        let mut end = i;
        while !lines[end].trim_end().ends_with(")]") && end + 1 < lines.len() {
            end += 1;
            message.push_str(lines[end].trim());
        }
        // The variant: up to the end of its fields (`},` for named fields, `),` for a tuple).
        let mut fields = Vec::new();
        for next in &lines[end + 1..] {
            fields.push(*next);
            let t = next.trim();
            if t == "}," || t.ends_with("),") || t.starts_with("#[error(") {
                break;
            }
        }
        let mut sources = Vec::new();
        for (j, f) in fields.iter().enumerate() {
            let t = f.trim();
            if t.starts_with("source:") || t.contains(" source:") || t.contains("{source:") {
                sources.push("source".to_owned());
            }
            if t.contains("#[source]") || t.contains("#[from]") {
                if t.contains('(') {
                    sources.push("0".to_owned());
                } else if let Some(name) =
                    fields.get(j + 1).and_then(|n| n.trim().split(':').next())
                {
                    sources.push(name.trim().to_owned());
                }
            }
        }
        // `{field}`, `{field:…}`, or a tuple field passed as an argument (`lower(.0)`).
        let quotes = |s: &String| {
            message.contains(&format!("{{{s}}}"))
                || message.contains(&format!("{{{s}:"))
                || (s == "0" && message.contains(".0)"))
        };
        if sources.iter().any(quotes) {
            found.push(format!("{}: {}", i + 1, line.trim()));
        }
    }
    found
}

#[test]
fn the_check_finds_each_way_a_message_can_quote_its_source() {
    let bad = r#"
    #[error("cannot read {path}: {source}")]
    Named { path: String, source: io::Error },
    #[error("lock file {path}: {cause}")]
    Marked {
        path: PathBuf,
        #[source]
        cause: io::Error,
    },
    #[error("could not run git: {0}; install it")]
    Tuple(#[from] io::Error),
    #[error("{}", lower(.0))]
    Argument(#[from] io::Error),
    #[error(
        "cannot open the journal `{path}`: {source}; pass `--journal PATH` to write it elsewhere"
    )]
    Wrapped {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
"#;
    assert_eq!(quoted_sources(bad).len(), 5, "{:?}", quoted_sources(bad));
    let good = r#"
    #[error("cannot read {path}: {cause}")]
    Plain { path: String, cause: io::Error },
    #[error("apply lease")]
    Api(#[source] LiveError),
    #[error(transparent)]
    Live(#[from] LiveError),
    #[error(
        "a long message that names {path} and says what to do about it, over two lines"
    )]
    Wrapped {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
"#;
    assert!(
        quoted_sources(good).is_empty(),
        "{:?}",
        quoted_sources(good)
    );
}

#[test]
fn no_error_message_quotes_the_cause_it_also_gives_as_its_source() {
    let mut files = Vec::new();
    rust_files(Path::new("src"), &mut files);
    assert!(files.len() > 100, "the crate's sources were found");
    let found: Vec<String> = files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            quoted_sources(&text)
                .into_iter()
                .map(move |m| format!("{}:{m}", f.display()))
        })
        .collect();
    assert!(
        found.is_empty(),
        "these messages quote their source, so the printed chain repeats it; keep the cause as a plain field instead:\n{}",
        found.join("\n")
    );
}
