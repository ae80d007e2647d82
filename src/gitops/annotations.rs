//! Validation findings as GitHub Actions workflow commands (`validate --format github`):
//! `::error file=tokensmith.yaml,line=12,col=5::unknown scope ...`, which GitHub shows as
//! annotations on the pull request's changed lines.
//!
//! Escaping follows GitHub's toolkit (`@actions/core` `command.ts`): in the message `%`, `\r`
//! and `\n` become `%25`, `%0D` and `%0A`; property values also escape `:` and `,` (`%3A`,
//! `%2C`). Not here: producing the findings (that is `spec`).

use std::io;

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
    /// The path relative to the repository root, as GitHub needs it to place the annotation.
    pub file: &'a str,
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
        let mut properties = vec![format!("file={}", escape_property(a.file))];
        if let Some(line) = a.line {
            properties.push(format!("line={line}"));
        }
        if let Some(col) = a.col {
            properties.push(format!("col={col}"));
        }
        if let Some(title) = a.title {
            properties.push(format!("title={}", escape_property(title)));
        }
        writeln!(
            out,
            "::{} {}::{}",
            a.severity.command(),
            properties.join(","),
            escape_data(a.message)
        )?;
    }
    Ok(())
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
            file: "specs/a,b:c.yaml",
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
                file: "tokensmith.yaml",
                line: None,
                col: None,
                severity: Severity::Warning,
                title: Some("tokensmith: expiry, soon"),
                message: "a",
            },
            Annotation {
                file: "t.yaml",
                line: Some(1),
                col: None,
                severity: Severity::Notice,
                title: None,
                message: "b",
            },
        ]);
        assert_eq!(
            text,
            "::warning file=tokensmith.yaml,title=tokensmith%3A expiry%2C soon::a\n::notice file=t.yaml,line=1::b\n"
        );
    }
}
