//! Validation findings as GitHub Actions workflow commands (`validate --format github`):
//! `::error file=tokensmith.yaml,line=12,col=5::unknown scope ...`, which GitHub shows as
//! annotations on the pull request's changed lines.
//!
//! Escaping follows GitHub's toolkit (`@actions/core` `command.ts`): in the message `%`, `\r`
//! and `\n` become `%25`, `%0D` and `%0A`; property values also escape `:` and `,` (`%3A`,
//! `%2C`). Not here: producing the findings (that is `spec`); spec diagnostics are mapped
//! by [`github_diagnostics`].

use std::io;

use crate::spec::{self, Diagnostics};

/// How GitHub shows an annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
    Notice,
}

impl Severity {
    fn command(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Notice => "notice",
        }
    }
}

/// One finding to annotate. `line` and `col` are 1-based; `None` leaves them out (a finding
/// about the whole file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation<'a> {
    /// The path relative to the repository root, as GitHub needs it to place the annotation;
    /// `None` for a finding about no file in particular.
    pub file: Option<&'a str>,
    pub line: Option<u32>,
    pub col: Option<u32>,
    pub severity: Severity,
    /// A short title shown above the message, if any.
    pub title: Option<&'a str>,
    pub message: &'a str,
}

/// Write one workflow command per annotation.
pub fn github(annotations: &[Annotation<'_>], out: &mut dyn io::Write) -> io::Result<()> {
    for a in annotations {
        let mut properties = Vec::new();
        if let Some(file) = a.file {
            properties.push(format!("file={}", escape_property(file)));
        }
        if let Some(line) = a.line {
            properties.push(format!("line={line}"));
        }
        if let Some(col) = a.col {
            properties.push(format!("col={col}"));
        }
        if let Some(title) = a.title {
            properties.push(format!("title={}", escape_property(title)));
        }
        let space = if properties.is_empty() { "" } else { " " };
        writeln!(
            out,
            "::{}{space}{}::{}",
            a.severity.command(),
            properties.join(","),
            escape_data(a.message)
        )?;
    }
    Ok(())
}

/// The spec loader's findings as annotations: each diagnostic's message with its label and
/// `help:`/`note:` lines on the following lines, placed at its file, line and column.
pub fn github_diagnostics(diags: &Diagnostics, out: &mut dyn io::Write) -> io::Result<()> {
    let messages: Vec<String> = diags
        .items
        .iter()
        .map(|d| {
            let mut m = d.message.clone();
            if let Some(label) = &d.label {
                m.push_str(&format!(" ({label})"));
            }
            for note in &d.notes {
                m.push('\n');
                m.push_str(note);
            }
            m
        })
        .collect();
    let annotations: Vec<Annotation<'_>> = diags
        .items
        .iter()
        .zip(&messages)
        .map(|(d, message)| Annotation {
            file: d.location.as_ref().map(|l| l.file.as_str()),
            line: d.location.as_ref().map(|l| l.line as u32),
            col: d.location.as_ref().map(|l| l.column as u32),
            severity: match d.severity {
                spec::Severity::Error => Severity::Error,
                spec::Severity::Warning => Severity::Warning,
            },
            title: None,
            message,
        })
        .collect();
    github(&annotations, out)
}

/// Escape a command's message.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escape a property value (`file=`, `title=`).
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(annotations: &[Annotation<'_>]) -> String {
        let mut out = Vec::new();
        github(annotations, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn error_with_position_and_escapes() {
        let text = render(&[Annotation {
            file: Some("specs/a,b:c.yaml"),
            line: Some(12),
            col: Some(5),
            severity: Severity::Error,
            title: None,
            message: "unknown scope `x`: 100% wrong\nhelp: did you mean `y`?\r",
        }]);
        assert_eq!(
            text,
            "::error file=specs/a%2Cb%3Ac.yaml,line=12,col=5::unknown scope `x`: 100%25 wrong%0Ahelp: did you mean `y`?%0D\n"
        );
    }

    #[test]
    fn warning_without_position_and_with_title() {
        let text = render(&[
            Annotation {
                file: Some("tokensmith.yaml"),
                line: None,
                col: None,
                severity: Severity::Warning,
                title: Some("tokensmith: expiry, soon"),
                message: "a",
            },
            Annotation {
                file: None,
                line: Some(1),
                col: None,
                severity: Severity::Notice,
                title: None,
                message: "b",
            },
        ]);
        assert_eq!(
            text,
            "::warning file=tokensmith.yaml,title=tokensmith%3A expiry%2C soon::a\n::notice line=1::b\n"
        );
    }

    #[test]
    fn spec_diagnostics_become_one_line_each_at_their_place() {
        let text = "version: 1\nenvironments:\n  prod:\n    url: https://abc12345.live.dynatrace.com\n    token_env: DT\napi_tokens:\n  k:\n    environments: [prod]\n    scopes: [no.such.scope]\n";
        let diags = crate::spec::load_str(text, "specs/tokensmith.yaml").unwrap_err();
        assert!(!diags.items.is_empty());
        let mut out = Vec::new();
        github_diagnostics(&diags, &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(out.lines().count(), diags.items.len(), "{out}");
        for (line, d) in out.lines().zip(&diags.items) {
            let loc = d.location.as_ref().expect("located");
            assert!(
                line.starts_with(&format!(
                    "::{} file=specs/tokensmith.yaml,line={},col={}::",
                    match d.severity {
                        crate::spec::Severity::Error => "error",
                        crate::spec::Severity::Warning => "warning",
                    },
                    loc.line,
                    loc.column
                )),
                "{line}"
            );
        }
        assert!(out.contains("::error file="), "{out}");
        assert!(out.contains("no.such.scope"), "{out}");
        assert!(out.contains("%0Ahelp: "), "{out}");
    }
}
