//! Errors and warnings about a spec file, each pointing at `file:line:column` with a caret
//! excerpt, and their rendering.
//!
//! This module owns the [`Span`] of a YAML node, the [`SourceFile`] that turns spans into
//! printable [`Location`]s, and the text layout of a diagnostic. It does not decide what is wrong
//! with a spec; the loader, the resolver and the validator do. A diagnostic is self-contained (it
//! carries its excerpt line), so it can be rendered long after the source text is gone.
//!
//! Secrets never reach the output: excerpts and messages pass through [`mask_secrets`], which
//! hides the secret part of anything shaped like a Dynatrace token that a user pasted by mistake.

use std::fmt;
use std::io;

/// Where a YAML node starts, and how many characters of its first line the caret underlines.
///
/// Every node of a spec's tree and every spanned field carries one, so it is kept in 12 bytes:
/// a spec is refused long before it has 4 billion lines (and a longer underline is cut).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub col: u32,
    /// Underlined width in characters (at least 1).
    pub len: u32,
}

impl Span {
    pub fn new(line: usize, col: usize, len: usize) -> Span {
        let narrow = |n: usize| u32::try_from(n.max(1)).unwrap_or(u32::MAX);
        Span {
            line: narrow(line),
            col: narrow(col),
            len: narrow(len),
        }
    }

    /// The 1-based line as an index type.
    pub fn line(self) -> usize {
        self.line as usize
    }

    /// The 1-based column as an index type.
    pub fn col(self) -> usize {
        self.col as usize
    }

    /// The underlined width as an index type.
    pub fn width(self) -> usize {
        self.len as usize
    }
}

/// How bad a finding is: errors make `validate` fail, warnings are printed and allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

/// A printable place in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The source line, secrets masked, without its line break.
    pub excerpt: String,
    /// Characters underlined from `column`.
    pub width: usize,
}

/// One finding about a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub location: Option<Box<Location>>,
    /// A short text printed after the carets.
    pub label: Option<String>,
    /// `help: …` and `note: …` lines printed below the excerpt.
    pub notes: Vec<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            message: mask_secrets(&message.into()),
            location: None,
            label: None,
            notes: Vec::new(),
        }
    }

    pub fn warning(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message)
        }
    }

    pub fn at(mut self, location: Location) -> Diagnostic {
        self.location = Some(Box::new(location));
        self
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = Some(mask_secrets(&label.into()));
        self
    }

    /// Adds a `help: …` line.
    pub fn help(mut self, text: impl Into<String>) -> Diagnostic {
        self.notes
            .push(format!("help: {}", mask_secrets(&text.into())));
        self
    }

    /// Adds a `note: …` line.
    pub fn note(mut self, text: impl Into<String>) -> Diagnostic {
        self.notes
            .push(format!("note: {}", mask_secrets(&text.into())));
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Writes the diagnostic in the rustc layout:
    ///
    /// ```text
    /// error: unknown scope `apiToken.read`
    ///   --> tokensmith.yaml:12:9
    ///    |
    /// 12 |       - apiToken.read
    ///    |         ^^^^^^^^^^^^^ not in the scope catalogue
    ///    |
    ///    = help: did you mean `apiTokens.read`?
    /// ```
    pub fn render(&self, w: &mut dyn io::Write, color: bool) -> io::Result<()> {
        let paint = Paint { color };
        let (word, tone) = match self.severity {
            Severity::Error => ("error", RED),
            Severity::Warning => ("warning", YELLOW),
        };
        writeln!(
            w,
            "{}: {}",
            paint.bold(tone, word),
            paint.bold("", &self.message)
        )?;
        let gutter = self
            .location
            .as_ref()
            .map(|l| l.line.to_string().len())
            .unwrap_or(1);
        let pad = " ".repeat(gutter);
        if let Some(loc) = &self.location {
            writeln!(
                w,
                "{pad}{} {}:{}:{}",
                paint.bold(BLUE, "-->"),
                loc.file,
                loc.line,
                loc.column
            )?;
            writeln!(w, "{pad} {}", paint.bold(BLUE, "|"))?;
            let excerpt = loc.excerpt.replace('\t', " ");
            let (excerpt, column, width) =
                excerpt_window(excerpt.trim_end(), loc.column.saturating_sub(1), loc.width);
            writeln!(
                w,
                "{} {} {}",
                paint.bold(BLUE, &loc.line.to_string()),
                paint.bold(BLUE, "|"),
                excerpt
            )?;
            let indent = " ".repeat(column);
            let carets = "^".repeat(width.max(1));
            let label = self
                .label
                .as_deref()
                .map(|l| format!(" {l}"))
                .unwrap_or_default();
            writeln!(
                w,
                "{pad} {} {indent}{}",
                paint.bold(BLUE, "|"),
                paint.bold(tone, &format!("{carets}{label}"))
            )?;
        } else if let Some(label) = &self.label {
            writeln!(w, "{pad} = {label}")?;
        }
        if !self.notes.is_empty() {
            if self.location.is_some() {
                writeln!(w, "{pad} {}", paint.bold(BLUE, "|"))?;
            }
            for note in &self.notes {
                writeln!(w, "{pad} {} {note}", paint.bold(BLUE, "="))?;
            }
        }
        Ok(())
    }
}

/// The characters of an excerpt line shown around the finding: a line of a generated spec
/// can be hundreds of kilobytes (a flow mapping nested a thousand deep), and an error prints
/// the part that matters, not the whole line.
const EXCERPT_CHARS: usize = 120;

/// `line` cut to [`EXCERPT_CHARS`] around `column` (0-based, in characters) with `…` where it
/// was cut, and the column and caret width within what is shown.
fn excerpt_window(line: &str, column: usize, width: usize) -> (String, usize, usize) {
    let count = line.chars().count();
    if count <= EXCERPT_CHARS {
        return (line.to_owned(), column, width);
    }
    let start = column
        .saturating_sub(EXCERPT_CHARS / 3)
        .min(count - EXCERPT_CHARS);
    let end = start + EXCERPT_CHARS;
    let mut shown: String = line.chars().skip(start).take(EXCERPT_CHARS).collect();
    let lead = usize::from(start > 0);
    if start > 0 {
        shown.insert(0, '…');
    }
    if end < count {
        shown.push('…');
    }
    let column = column - start + lead;
    let width = width.min((end + lead).saturating_sub(column + start - lead).max(1));
    (shown, column, width)
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = Vec::new();
        self.render(&mut buf, false).map_err(|_| fmt::Error)?;
        f.write_str(&String::from_utf8_lossy(&buf))
    }
}

/// Every finding of one load, errors and warnings, in file order. Returned as the error of
/// [`fn@crate::spec::load`] when at least one is an error.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new(items: Vec<Diagnostic>) -> Diagnostics {
        let mut d = Diagnostics { items };
        d.sort();
        d
    }

    /// Sorts by position (findings without a position first), keeping the order of equal ones.
    pub fn sort(&mut self) {
        self.items.sort_by_key(|d| {
            d.location
                .as_ref()
                .map(|l| (l.line, l.column))
                .unwrap_or((0, 0))
        });
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.is_error())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| !d.is_error())
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    /// Renders every finding, a blank line between them, and a closing count line.
    pub fn render(&self, w: &mut dyn io::Write, color: bool) -> io::Result<()> {
        render_all(&self.items, w, color)
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = Vec::new();
        self.render(&mut buf, false).map_err(|_| fmt::Error)?;
        f.write_str(String::from_utf8_lossy(&buf).trim_end())
    }
}

impl std::error::Error for Diagnostics {}

/// Renders findings followed by a summary line such as `2 errors, 1 warning`.
pub fn render_all(items: &[Diagnostic], w: &mut dyn io::Write, color: bool) -> io::Result<()> {
    for d in items {
        d.render(w, color)?;
        writeln!(w)?;
    }
    let errors = items.iter().filter(|d| d.is_error()).count();
    let warnings = items.len() - errors;
    if !items.is_empty() {
        writeln!(
            w,
            "{}, {}",
            plural(errors, "error"),
            plural(warnings, "warning")
        )?;
    }
    Ok(())
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The text of one spec file, indexed by line, for turning spans into locations.
#[derive(Debug, Clone)]
pub struct SourceFile {
    name: String,
    text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> SourceFile {
        let text = text.into();
        // Line breaks as YAML counts them: `\n`, `\r\n`, and a lone `\r` (old Mac files), so
        // the parser's line numbers and the excerpts agree.
        let line_starts = line_starts(text.as_bytes());
        SourceFile {
            name: name.into(),
            text,
            line_starts,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text of a 1-based line, without its line break (empty past the end).
    pub fn line(&self, line: usize) -> &str {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return "";
        };
        let end = self
            .line_starts
            .get(line)
            .copied()
            .unwrap_or(self.text.len());
        self.text[start..end].trim_end_matches(['\n', '\r'])
    }

    /// The printable location of a span, its width clipped to the line.
    pub fn locate(&self, span: Span) -> Location {
        let excerpt = mask_secrets(self.line(span.line()));
        let chars = excerpt.chars().count();
        let column = span.col().min(chars + 1).max(1);
        let width = span.width().min((chars + 1).saturating_sub(column)).max(1);
        Location {
            file: self.name.clone(),
            line: span.line(),
            column,
            excerpt,
            width,
        }
    }

    /// A location for a 1-based line and column (for parser errors).
    pub fn locate_point(&self, line: usize, col: usize) -> Location {
        self.locate(Span::new(line, col, 1))
    }

    /// A diagnostic for `span`.
    pub fn error(&self, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(message).at(self.locate(span))
    }

    pub fn warning(&self, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic::warning(message).at(self.locate(span))
    }

    /// `file:line:column` of a span, for notes that refer to a second place.
    pub fn position(&self, span: Span) -> String {
        format!("{}:{}:{}", self.name, span.line, span.col)
    }
}

/// Hides the secret part of anything shaped like a Dynatrace token (`dt0c01.PUBLIC.SECRET`):
/// the prefix and public part stay (they identify the token and are not secret), the secret part
/// becomes `<redacted>` (the one rule of [`crate::model::redact`]).
pub fn mask_secrets(text: &str) -> String {
    crate::model::redact::redact_tokens(text)
}

const RED: &str = "31";
const YELLOW: &str = "33";
const BLUE: &str = "34";

struct Paint {
    color: bool,
}

impl Paint {
    fn bold(&self, tone: &str, text: &str) -> String {
        if !self.color {
            return text.to_owned();
        }
        if tone.is_empty() {
            format!("\x1b[1m{text}\x1b[0m")
        } else {
            format!("\x1b[1;{tone}m{text}\x1b[0m")
        }
    }
}

/// Where each line starts: 0, and after every `\n`, every `\r\n` and every lone `\r`. The
/// breaks are found with a vectorised search (a 7 MB spec is scanned on the main thread before
/// parsing can start), not byte by byte.
fn line_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = vec![0];
    starts.extend(
        memchr::memchr2_iter(b'\n', b'\r', bytes)
            .filter(|&i| bytes[i] == b'\n' || bytes.get(i + 1) != Some(&b'\n'))
            .map(|i| i + 1),
    );
    starts
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The search finds the breaks a byte-by-byte scan finds, in texts dense with `\r`,
        /// `\n` and `\r\n`.
        #[test]
        fn line_starts_are_those_of_a_byte_scan(text in "[a\r\n]{0,64}") {
            let bytes = text.as_bytes();
            let mut want = vec![0];
            want.extend(
                bytes
                    .iter()
                    .enumerate()
                    .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')))
                    .map(|(i, _)| i + 1),
            );
            proptest::prop_assert_eq!(line_starts(bytes), want);
        }
    }

    #[test]
    fn cr_only_line_endings_give_real_lines() {
        let f = SourceFile::new("cr.yaml", "version: 1\renvironments:\r  prod: 3\r");
        assert_eq!(f.line(2), "environments:");
        let loc = f.locate(Span::new(3, 9, 1));
        assert_eq!((loc.column, loc.excerpt.as_str()), (9, "  prod: 3"));
        let mixed = SourceFile::new("crlf.yaml", "a: 1\r\nb: 2\n");
        assert_eq!(mixed.line(2), "b: 2");
    }

    #[test]
    fn a_long_line_is_cut_around_the_finding() {
        let line = format!("{}[bad]{}", "a".repeat(5000), "b".repeat(5000));
        let (shown, column, width) = excerpt_window(&line, 5000, 5);
        assert!(shown.chars().count() <= EXCERPT_CHARS + 2, "{shown}");
        assert!(shown.starts_with('…') && shown.ends_with('…'), "{shown}");
        let under: String = shown.chars().skip(column).take(width).collect();
        assert_eq!(under, "[bad]");
        // Short lines are shown whole; a finding at the end of a long one keeps its place.
        assert_eq!(excerpt_window("key: x", 5, 1), ("key: x".into(), 5, 1));
        let (shown, column, width) = excerpt_window(&line, 10_004, 1);
        assert_eq!(shown.chars().nth(column), Some('b'), "{shown}");
        assert_eq!(width, 1);
    }

    #[test]
    fn renders_a_caret_excerpt() {
        let src = SourceFile::new("t.yaml", "a: 1\nscopes:\n  - apiToken.read\n");
        let d = src
            .error(Span::new(3, 5, 13), "unknown scope `apiToken.read`")
            .with_label("not in the scope catalogue")
            .help("did you mean `apiTokens.read`?");
        let text = d.to_string();
        assert_eq!(
            text,
            "error: unknown scope `apiToken.read`\n --> t.yaml:3:5\n  |\n3 |   - apiToken.read\n  |     ^^^^^^^^^^^^^ not in the scope catalogue\n  |\n  = help: did you mean `apiTokens.read`?\n"
        );
    }

    #[test]
    fn masks_token_secrets_but_keeps_ids() {
        assert_eq!(
            mask_secrets(concat!(
                "token: dt0c01.ST2EY72KQINMH574WMNVI7YN.",
                "G3DFPBEJYMODIDAEX454M7YWBUVEFOWKPRVMWFASS64NFH52PX6BNDVFFM572RZM rest"
            )),
            "token: dt0c01.ST2EY72KQINMH574WMNVI7YN.<redacted> rest"
        );
        assert_eq!(mask_secrets("adopt: dt0c01.ABC"), "adopt: dt0c01.ABC");
        assert_eq!(mask_secrets("dt0 dt0c dt0."), "dt0 dt0c dt0.");
    }

    #[test]
    fn locations_clip_to_the_line() {
        let src = SourceFile::new("t.yaml", "ab\n");
        let loc = src.locate(Span::new(1, 2, 50));
        assert_eq!((loc.column, loc.width), (2, 1));
        let past = src.locate(Span::new(9, 9, 1));
        assert_eq!(past.excerpt, "");
    }
}
