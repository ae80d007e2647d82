//! Line-based formats: `env` (`KEY=value`, dotenv and systemd environment files) and
//! `properties` (`key = value` in optional `[section]`s: Java properties, ActiveGate
//! `authorization.properties`, `ruxitagent.conf`).
//!
//! An update rewrites only the value's bytes on the key's line and the record comment
//! (`# tokensmith: holds …`) directly above it; every other byte, line ending, separator style,
//! quote and inline comment stays as it was. A missing key is added (at the end of the file or of
//! its section, in the separator style the file already uses), and a missing file is created.
//!
//! Limits, refused with a clear error rather than guessed: multi-line values (a trailing `\`
//! continuation, an unclosed quote), and values that would need escaping (tokens never do). When
//! a key appears more than once in the same place, the last occurrence is updated (the one
//! readers use).

use crate::deliver::record::{self, Parsed, Record};

/// The value found for a key, and the record above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub value: String,
    pub record: Option<Parsed>,
}

/// Which line-based dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Env,
    Properties,
}

/// One `key=value` line.
#[derive(Debug, Clone)]
struct Entry {
    line: usize,
    key: String,
    section: Option<String>,
    indent: String,
    /// Byte range of the value within the line's text (inside quotes, when quoted).
    value: (usize, usize),
    /// The bytes between the key and the value (`=`, ` = `, `: `, ` `), for new keys.
    separator: String,
    quoted: Option<char>,
}

struct Parsed_ {
    /// Each line's text and its line ending.
    lines: Vec<(String, String)>,
    entries: Vec<Entry>,
    /// Line index of each `[section]` header, with its name.
    sections: Vec<(usize, String)>,
}

fn split_lines(content: &str) -> Vec<(String, String)> {
    content
        .split_inclusive('\n')
        .map(|l| {
            if let Some(t) = l.strip_suffix("\r\n") {
                (t.to_owned(), "\r\n".to_owned())
            } else if let Some(t) = l.strip_suffix('\n') {
                (t.to_owned(), "\n".to_owned())
            } else {
                (l.to_owned(), String::new())
            }
        })
        .collect()
}

fn parse(content: &str, dialect: Dialect) -> Result<Parsed_, String> {
    let lines = split_lines(content);
    let mut entries = Vec::new();
    let mut sections = Vec::new();
    let mut section: Option<String> = None;
    for (i, (text, _)) in lines.iter().enumerate() {
        let indent_len = text.len() - text.trim_start().len();
        let rest = &text[indent_len..];
        if rest.is_empty() || rest.starts_with('#') {
            continue;
        }
        let entry = match dialect {
            Dialect::Env => parse_env(text, indent_len, i + 1)?,
            Dialect::Properties => {
                if rest.starts_with('!') || rest.starts_with(';') {
                    continue;
                }
                if rest.starts_with('[') && rest.trim_end().ends_with(']') {
                    let name = rest.trim_end();
                    let name = name[1..name.len() - 1].trim().to_owned();
                    sections.push((i, name.clone()));
                    section = Some(name);
                    continue;
                }
                if rest.starts_with('[') {
                    return Err(format!(
                        "line {}: a `[section]` header is not closed; refusing to edit a file whose layout is not understood",
                        i + 1
                    ));
                }
                parse_property(text, indent_len, i + 1)?
            }
        };
        if let Some(mut e) = entry {
            e.line = i;
            e.section = section.clone();
            e.indent = text[..indent_len].to_owned();
            entries.push(e);
        }
    }
    Ok(Parsed_ {
        lines,
        entries,
        sections,
    })
}

fn parse_env(text: &str, start: usize, line_no: usize) -> Result<Option<Entry>, String> {
    let mut pos = start;
    if let Some(after) = text[pos..].strip_prefix("export ") {
        pos = text.len() - after.trim_start().len();
    }
    let Some(eq) = text[pos..].find('=') else {
        return Ok(None);
    };
    let key = &text[pos..pos + eq];
    if key.is_empty() || key.contains(char::is_whitespace) {
        return Ok(None);
    }
    let vs = pos + eq + 1;
    let v = &text[vs..];
    let (value, quoted) = match v.chars().next() {
        Some(q @ ('"' | '\'')) => match v[1..].find(q) {
            Some(close) => ((vs + 1, vs + 1 + close), Some(q)),
            None => {
                return Err(format!(
                    "line {line_no}: the value of `{key}` opens a quote that does not close on the same line; multi-line values are not supported"
                ))
            }
        },
        _ => {
            let end = [" #", "\t#"]
                .iter()
                .filter_map(|c| v.find(c))
                .min()
                .unwrap_or(v.len());
            ((vs, vs + v[..end].trim_end().len()), None)
        }
    };
    Ok(Some(Entry {
        line: 0,
        key: key.to_owned(),
        section: None,
        indent: String::new(),
        value,
        separator: "=".to_owned(),
        quoted,
    }))
}

fn parse_property(text: &str, start: usize, line_no: usize) -> Result<Option<Entry>, String> {
    let bytes = text.as_bytes();
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'=' | b':' | b' ' | b'\t' => break,
            _ => i += 1,
        }
    }
    let key_end = i.min(bytes.len());
    let key = &text[start..key_end];
    let mut j = key_end;
    while j < bytes.len() && (bytes[j] == b' ' || bytes[j] == b'\t') {
        j += 1;
    }
    if j < bytes.len() && (bytes[j] == b'=' || bytes[j] == b':') {
        j += 1;
        while j < bytes.len() && (bytes[j] == b' ' || bytes[j] == b'\t') {
            j += 1;
        }
    }
    let value_end = text.trim_end().len().max(j);
    let value = &text[j..value_end];
    let trailing_backslashes = value.len() - value.trim_end_matches('\\').len();
    if trailing_backslashes % 2 == 1 {
        return Err(format!(
            "line {line_no}: the value of `{key}` continues on the next line (trailing `\\`); multi-line values are not supported"
        ));
    }
    Ok(Some(Entry {
        line: 0,
        key: key.to_owned(),
        section: None,
        indent: String::new(),
        value: (j, value_end),
        separator: text[key_end..j].to_owned(),
        quoted: None,
    }))
}

/// The entry for `key` (in `section` for properties), if present.
fn find<'p>(
    parsed: &'p Parsed_,
    key: &str,
    section: Option<&str>,
    dialect: Dialect,
) -> Result<Option<&'p Entry>, String> {
    let matching = |e: &&Entry| e.key == key;
    if dialect == Dialect::Env {
        return Ok(parsed.entries.iter().rfind(matching));
    }
    match section {
        Some(s) => Ok(parsed
            .entries
            .iter()
            .rfind(|e| e.key == key && e.section.as_deref() == Some(s))),
        None => {
            let global = parsed
                .entries
                .iter()
                .rfind(|e| e.key == key && e.section.is_none());
            if global.is_some() {
                return Ok(global);
            }
            let mut in_sections: Vec<&Entry> = parsed.entries.iter().filter(matching).collect();
            let mut names: Vec<&str> = in_sections
                .iter()
                .filter_map(|e| e.section.as_deref())
                .collect();
            names.sort_unstable();
            names.dedup();
            if names.len() > 1 {
                return Err(format!(
                    "key `{key}` is in several sections ({}); set `section` on the target",
                    names
                        .iter()
                        .map(|n| format!("[{n}]"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            Ok(in_sections.pop())
        }
    }
}

fn record_above(parsed: &Parsed_, line: usize) -> Option<Parsed> {
    let above = line.checked_sub(1)?;
    record::parse_comment_line(&parsed.lines[above].0)
}

/// Read `key`'s value and record.
pub fn read(
    content: &str,
    dialect: Dialect,
    key: &str,
    section: Option<&str>,
) -> Result<Option<Found>, String> {
    let parsed = parse(content, dialect)?;
    Ok(find(&parsed, key, section, dialect)?.map(|e| Found {
        value: parsed.lines[e.line].0[e.value.0..e.value.1].to_owned(),
        record: record_above(&parsed, e.line),
    }))
}

/// `content` (or an empty new file) with `key` set to `value` and `record` written above it.
pub fn write(
    content: Option<&str>,
    dialect: Dialect,
    key: &str,
    section: Option<&str>,
    value: &str,
    record: &Record,
) -> Result<String, String> {
    let content = content.unwrap_or("");
    let parsed = parse(content, dialect)?;
    let eol = if content.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    };
    let found = find(&parsed, key, section, dialect)?.cloned();
    let mut lines = parsed.lines.clone();

    match found {
        Some(entry) => {
            check_fits(value, entry.quoted, dialect, key)?;
            let text = &mut lines[entry.line].0;
            text.replace_range(entry.value.0..entry.value.1, value);
            set_record(&mut lines, entry.line, &entry.indent, record, eol);
        }
        None => {
            check_fits(value, None, dialect, key)?;
            let separator = parsed
                .entries
                .first()
                .map_or_else(|| default_separator(dialect), |e| e.separator.clone());
            let new_lines = [
                (record::comment_line("", record), eol.to_owned()),
                (format!("{key}{separator}{value}"), eol.to_owned()),
            ];
            let at = insertion_point(&parsed, section, dialect);
            match at {
                Some(at) => {
                    // Inserting after a last line without a line ending: give it one.
                    if at > 0 && lines[at - 1].1.is_empty() {
                        lines[at - 1].1 = eol.to_owned();
                    }
                    lines.splice(at..at, new_lines);
                }
                None => {
                    // A new section at the end of the file.
                    if let Some(last) = lines.last_mut() {
                        if last.1.is_empty() {
                            last.1 = eol.to_owned();
                        }
                    }
                    if !lines.is_empty() {
                        lines.push((String::new(), eol.to_owned()));
                    }
                    let name = section.unwrap_or_default();
                    lines.push((format!("[{name}]"), eol.to_owned()));
                    lines.extend(new_lines);
                }
            }
        }
    }
    Ok(lines.into_iter().flat_map(|(t, e)| [t, e]).collect())
}

fn default_separator(dialect: Dialect) -> String {
    match dialect {
        Dialect::Env => "=".to_owned(),
        Dialect::Properties => " = ".to_owned(),
    }
}

/// Where a new key goes: after the last non-blank line of its section (or of the part before
/// the first section), or `None` when the section does not exist yet.
fn insertion_point(parsed: &Parsed_, section: Option<&str>, dialect: Dialect) -> Option<usize> {
    let lines = &parsed.lines;
    let (start, end) = if dialect == Dialect::Env {
        (0, lines.len())
    } else {
        match section {
            None => (0, parsed.sections.first().map_or(lines.len(), |s| s.0)),
            Some(name) => {
                let idx = parsed.sections.iter().rposition(|(_, n)| n == name)?;
                let start = parsed.sections[idx].0 + 1;
                let end = parsed.sections.get(idx + 1).map_or(lines.len(), |s| s.0);
                (start, end)
            }
        }
    };
    let last_content = (start..end).rev().find(|&i| !lines[i].0.trim().is_empty());
    Some(last_content.map_or(start, |i| i + 1))
}

/// Write or replace the record comment directly above the key on `line`.
fn set_record(
    lines: &mut Vec<(String, String)>,
    line: usize,
    indent: &str,
    record: &Record,
    eol: &str,
) {
    let comment = record::comment_line(indent, record);
    if line > 0 && record::is_comment_line(&lines[line - 1].0) {
        lines[line - 1].0 = comment;
    } else {
        lines.insert(line, (comment, eol.to_owned()));
    }
}

/// Refuse values that this place cannot hold without escaping.
fn check_fits(
    value: &str,
    quoted: Option<char>,
    dialect: Dialect,
    key: &str,
) -> Result<(), String> {
    let bad = match (dialect, quoted) {
        (_, Some(q)) => value.contains(q) || value.contains('\\'),
        (Dialect::Env, None) => !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-+/=:@,~%".contains(c)),
        (Dialect::Properties, None) => value.contains('\\') || value.starts_with(['#', '!']),
    };
    if bad {
        return Err(format!(
            "the new value of `{key}` contains characters that would need escaping here; tokensmith writes values verbatim"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_unterminated_section_is_refused_not_edited() {
        let content = "[connectivity\nauthToken = old\n";
        let Err(err) = parse(content, Dialect::Properties) else {
            panic!("parsed")
        };
        assert!(
            err.contains("line 1") && err.contains("not closed"),
            "{err}"
        );
    }

    use super::*;
    use crate::model::TokenId;

    fn rec(id: &str) -> Record {
        Record::token(TokenId::new(id), None)
    }

    #[test]
    fn env_keeps_quotes_export_and_inline_comments() {
        let input = "# app settings\nexport A=1\nDT_TOKEN=\"old\" # the token\nB='x'\n";
        let out = write(
            Some(input),
            Dialect::Env,
            "DT_TOKEN",
            None,
            "new",
            &rec("dt0c01.N"),
        )
        .unwrap();
        assert_eq!(
            out,
            "# app settings\nexport A=1\n# tokensmith: holds dt0c01.N\nDT_TOKEN=\"new\" # the token\nB='x'\n"
        );
        let again = write(
            Some(&out),
            Dialect::Env,
            "DT_TOKEN",
            None,
            "newer",
            &rec("dt0c01.M"),
        )
        .unwrap();
        assert_eq!(again.matches("tokensmith").count(), 1);
        let found = read(&again, Dialect::Env, "DT_TOKEN", None)
            .unwrap()
            .unwrap();
        assert_eq!(found.value, "newer");
        assert_eq!(
            found.record,
            Some(Parsed::Token {
                id: TokenId::new("dt0c01.M"),
                expires: None
            })
        );
    }

    #[test]
    fn properties_sections_and_separators() {
        let input = "[abc]\nmainTenant = true\ntenantToken = old\n\n[def]\ntenantToken=other\n";
        assert!(read(input, Dialect::Properties, "tenantToken", None)
            .unwrap_err()
            .contains("set `section`"));
        let out = write(
            Some(input),
            Dialect::Properties,
            "tenantToken",
            Some("def"),
            "new",
            &rec("dt0c01.N"),
        )
        .unwrap();
        assert_eq!(
            out,
            "[abc]\nmainTenant = true\ntenantToken = old\n\n[def]\n# tokensmith: holds dt0c01.N\ntenantToken=new\n"
        );
        let added = write(
            Some(input),
            Dialect::Properties,
            "authToken",
            Some("abc"),
            "v",
            &rec("dt0g02.X"),
        )
        .unwrap();
        assert_eq!(
            added,
            "[abc]\nmainTenant = true\ntenantToken = old\n# tokensmith: holds dt0g02.X\nauthToken = v\n\n[def]\ntenantToken=other\n"
        );
        let new_section = write(
            Some("a = 1"),
            Dialect::Properties,
            "k",
            Some("s"),
            "v",
            &rec("dt0c01.N"),
        )
        .unwrap();
        assert_eq!(
            new_section,
            "a = 1\n\n[s]\n# tokensmith: holds dt0c01.N\nk = v\n"
        );
    }

    #[test]
    fn continuations_are_refused() {
        let err = write(
            Some("k = a\\\n  b\n"),
            Dialect::Properties,
            "k",
            None,
            "v",
            &rec("dt0c01.N"),
        )
        .unwrap_err();
        assert!(err.contains("multi-line"), "{err}");
    }
}
