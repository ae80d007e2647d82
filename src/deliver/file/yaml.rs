//! `yaml` files: set one scalar at a dotted key path by splicing it in place, keeping comments,
//! order, anchors elsewhere, quoting style and every other byte.
//!
//! The key is found by indentation in block mappings (`a:` then, more indented, `b:`); the
//! scalar after the colon is replaced keeping its quoting (plain, `'single'`, `"double"`; a plain
//! value that would not read back as the same string is written double-quoted). The record
//! comment `# tokensmith: holds …` goes on the line directly above the key, at its indentation.
//! The result is checked by parsing old and new documents: they must be equal except at the key.
//!
//! A missing key is created, and so is a missing file: the path's missing mappings are added in
//! block style at the end of the deepest mapping that exists (indented like its children, or two
//! spaces deeper than its key), with the record above the new key.
//!
//! Limits, refused with a clear error: flow collections (`{a: b}`), sequences on the path, a
//! path through a scalar, block scalars (`|`, `>`), anchors, aliases and tags on the value,
//! multi-line plain scalars and multi-document files.

use crate::deliver::record::{self, Parsed, Record};

/// The value and record found at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub value: String,
    pub record: Option<Parsed>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Double,
    Single,
    Empty,
}

#[derive(Debug)]
struct Located {
    line: usize,
    indent: usize,
    span: (usize, usize),
    style: Style,
}

fn split_lines(content: &str) -> Vec<(&str, &str)> {
    content
        .split_inclusive('\n')
        .map(|l| {
            if let Some(t) = l.strip_suffix("\r\n") {
                (t, "\r\n")
            } else if let Some(t) = l.strip_suffix('\n') {
                (t, "\n")
            } else {
                (l, "")
            }
        })
        .collect()
}

fn indent_of(text: &str) -> usize {
    text.len() - text.trim_start_matches(' ').len()
}

fn is_content(text: &str) -> bool {
    let t = text.trim();
    !(t.is_empty() || t.starts_with('#'))
}

/// The key of a mapping line (`key: …`, `"key": …`), and the byte index just after its colon.
fn mapping_key(text: &str, at: usize) -> Option<(String, usize)> {
    let s = &text[at..];
    let (key, after_key) = match s.chars().next()? {
        q @ ('"' | '\'') => {
            let close = s[1..].find(q)? + 1;
            (s[1..close].to_owned(), close + 1)
        }
        _ => {
            let mut idx = None;
            for (i, c) in s.char_indices() {
                if c == ':'
                    && s[i + 1..]
                        .chars()
                        .next()
                        .is_none_or(|n| n == ' ' || n == '\t')
                {
                    idx = Some(i);
                    break;
                }
            }
            let i = idx?;
            (s[..i].trim_end().to_owned(), i)
        }
    };
    let rest = &s[after_key..];
    let colon = rest.len() - rest.trim_start().len();
    if !rest[colon..].starts_with(':') {
        return None;
    }
    Some((key, at + after_key + colon + 1))
}

fn locate(lines: &[(&str, &str)], path: &[&str]) -> Result<Option<Located>, String> {
    let key = path.join(".");
    let mut seen_content = false;
    for (text, _) in lines {
        if *text == "---" || text.starts_with("--- ") || *text == "..." {
            if seen_content {
                return Err("multi-document YAML files are not supported".to_owned());
            }
        } else if is_content(text) {
            seen_content = true;
        }
    }
    let content = |i: usize| {
        let t = lines[i].0;
        is_content(t) && t != "---" && !t.starts_with("--- ")
    };
    let mut range = (0, lines.len());
    let mut parent_indent: Option<usize> = None;
    for (depth, seg) in path.iter().enumerate() {
        let Some(first) = (range.0..range.1).find(|&i| content(i)) else {
            return Ok(None);
        };
        let child = indent_of(lines[first].0);
        if parent_indent.is_some_and(|p| child <= p) {
            return Ok(None);
        }
        let mut found = None;
        for (i, (text, _)) in lines.iter().enumerate().take(range.1).skip(range.0) {
            if !content(i) || indent_of(text) != child {
                continue;
            }
            if text[child..].starts_with('{') || text[child..].starts_with('[') {
                return Err(format!(
                    "`{key}` is inside a flow collection (`{{…}}` or `[…]`), which tokensmith does not edit; use block style"
                ));
            }
            if let Some((k, after)) = mapping_key(text, child) {
                if k == *seg {
                    found = Some((i, after));
                    break;
                }
            }
        }
        let Some((line, after)) = found else {
            return Ok(None);
        };
        let text = lines[line].0;
        let rest = &text[after..];
        let vstart = after + (rest.len() - rest.trim_start().len());
        let v = &text[vstart..];
        let block_end = (line + 1..range.1)
            .find(|&i| content(i) && indent_of(lines[i].0) <= child)
            .unwrap_or(range.1);
        let has_children = (line + 1..block_end).any(content);
        let last = depth + 1 == path.len();
        if !last {
            if !(v.is_empty() || v.starts_with('#')) {
                if v.starts_with('{') {
                    return Err(format!(
                        "`{}` is a flow mapping (`{{…}}`), which tokensmith does not edit; use block style",
                        path[..=depth].join(".")
                    ));
                }
                return Ok(None);
            }
            range = (line + 1, block_end);
            parent_indent = Some(child);
            continue;
        }
        let unsupported = |what: &str| {
            Err(format!(
                "`{key}` holds {what}, which tokensmith does not edit; write the value as a single-line scalar"
            ))
        };
        let (span, style) = match v.chars().next() {
            None | Some('#') => {
                if has_children {
                    return unsupported("a mapping or sequence");
                }
                ((after, after), Style::Empty)
            }
            Some('"') => {
                let bytes = v.as_bytes();
                let mut i = 1;
                let mut close = None;
                while i < bytes.len() {
                    match bytes[i] {
                        b'\\' => i += 2,
                        b'"' => {
                            close = Some(i);
                            break;
                        }
                        _ => i += 1,
                    }
                }
                match close {
                    Some(c) => ((vstart + 1, vstart + c), Style::Double),
                    None => return unsupported("a multi-line quoted scalar"),
                }
            }
            Some('\'') => {
                let bytes = v.as_bytes();
                let mut i = 1;
                let mut close = None;
                while i < bytes.len() {
                    if bytes[i] == b'\'' {
                        if bytes.get(i + 1) == Some(&b'\'') {
                            i += 2;
                            continue;
                        }
                        close = Some(i);
                        break;
                    }
                    i += 1;
                }
                match close {
                    Some(c) => ((vstart + 1, vstart + c), Style::Single),
                    None => return unsupported("a multi-line quoted scalar"),
                }
            }
            Some('|' | '>') => return unsupported("a block scalar"),
            Some('&' | '*' | '!') => return unsupported("an anchor, alias or tag"),
            Some('{' | '[') => return unsupported("a flow collection"),
            Some(_) => {
                if has_children {
                    return unsupported("a multi-line plain scalar");
                }
                let end = [" #", "\t#"]
                    .iter()
                    .filter_map(|c| v.find(c))
                    .min()
                    .unwrap_or(v.len());
                ((vstart, vstart + v[..end].trim_end().len()), Style::Plain)
            }
        };
        return Ok(Some(Located {
            line,
            indent: child,
            span,
            style,
        }));
    }
    Ok(None)
}

fn parse_doc(content: &str) -> Result<serde_yaml::Value, String> {
    if content.trim().is_empty() {
        return Ok(serde_yaml::Value::Null);
    }
    serde_yaml::from_str(content).map_err(|e| format!("the file is not valid YAML: {e}"))
}

fn get<'v>(doc: &'v serde_yaml::Value, path: &[&str]) -> Option<&'v serde_yaml::Value> {
    path.iter().try_fold(doc, |node, seg| node.get(*seg))
}

/// The scalar at `path` and the record above it, if the path exists.
pub fn read(content: &str, path: &[&str]) -> Result<Option<Found>, String> {
    let doc = parse_doc(content)?;
    let Some(node) = get(&doc, path) else {
        return Ok(None);
    };
    let value = match node {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Null => String::new(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Number(n) => n.to_string(),
        _ => {
            return Err(format!(
                "`{}` holds a mapping or sequence, not a scalar",
                path.join(".")
            ))
        }
    };
    let lines = split_lines(content);
    let record = locate(&lines, path)
        .ok()
        .flatten()
        .and_then(|l| l.line.checked_sub(1))
        .and_then(|above| record::parse_comment_line(lines[above].0));
    Ok(Some(Found { value, record }))
}

/// `content` with the scalar at `path` set to `value` and `record` written above the key; a
/// missing key (or file: empty `content`) is created.
pub fn write(content: &str, path: &[&str], value: &str, record: &Record) -> Result<String, String> {
    let old = parse_doc(content)?;
    let lines = split_lines(content);
    let Some(loc) = locate(&lines, path)? else {
        return insert(content, &old, path, value, record);
    };
    let eol = if content.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    };
    let literal = match loc.style {
        Style::Double => escape_double(value),
        Style::Single => value.replace('\'', "''"),
        Style::Plain if plain_safe(value) => value.to_owned(),
        Style::Empty if plain_safe(value) => format!(" {value}"),
        Style::Plain => format!("\"{}\"", escape_double(value)),
        Style::Empty => format!(" \"{}\"", escape_double(value)),
    };
    let indent = " ".repeat(loc.indent);
    let comment = record::comment_line(&indent, record);
    let mut out = String::with_capacity(content.len() + comment.len() + literal.len());
    for (i, (text, end)) in lines.iter().enumerate() {
        if i + 1 == loc.line && record::is_comment_line(text) {
            out.push_str(&comment);
            out.push_str(end);
            continue;
        }
        if i == loc.line {
            if loc.line == 0 || !record::is_comment_line(lines[loc.line - 1].0) {
                out.push_str(&comment);
                out.push_str(eol);
            }
            out.push_str(&text[..loc.span.0]);
            out.push_str(&literal);
            out.push_str(&text[loc.span.1..]);
            out.push_str(end);
            continue;
        }
        out.push_str(text);
        out.push_str(end);
    }

    check_only_path_changed(old, &out, path, value)?;
    Ok(out)
}

/// Checks that `out` parses to `old` with the scalar at `path` set to `value` (the mappings on
/// the way created when missing), and nothing else changed.
fn check_only_path_changed(
    old: serde_yaml::Value,
    out: &str,
    path: &[&str],
    value: &str,
) -> Result<(), String> {
    use serde_yaml::Value;
    let key = path.join(".");
    let new = parse_doc(out)
        .map_err(|e| format!("updating `{key}` would break the file ({e}); nothing was written"))?;
    let mut expected = old;
    let mut node = &mut expected;
    for seg in path {
        if node.is_null() {
            *node = Value::Mapping(serde_yaml::Mapping::new());
        }
        let Value::Mapping(map) = node else {
            return Err(format!("key `{key}` is not a plain mapping path"));
        };
        node = map
            .entry(Value::String((*seg).to_owned()))
            .or_insert(Value::Null);
    }
    *node = Value::String(value.to_owned());
    if new != expected {
        return Err(format!(
            "updating `{key}` in place would change other parts of the file; nothing was written"
        ));
    }
    Ok(())
}

/// `content` (possibly empty: a file to create) with the missing part of `path` added as block
/// mappings under the deepest mapping of the path that exists, `value` at the end, its record
/// above it.
fn insert(
    content: &str,
    old: &serde_yaml::Value,
    path: &[&str],
    value: &str,
    record: &Record,
) -> Result<String, String> {
    use serde_yaml::Value;
    let key = path.join(".");
    // How much of the path exists, and that it ends in a mapping (or an empty value) to add to.
    let mut existing = 0;
    let mut node = old;
    for seg in path {
        match node {
            Value::Mapping(map) => match map.get(*seg) {
                Some(next) => {
                    existing += 1;
                    node = next;
                }
                None => break,
            },
            Value::Null => break,
            _ => {
                let at = if existing == 0 {
                    "the document".to_owned()
                } else {
                    format!("`{}`", path[..existing].join("."))
                };
                return Err(format!(
                    "{at} holds a value, not a mapping, so `{key}` cannot be added under it"
                ));
            }
        }
    }
    if existing == path.len() {
        return Err(format!(
            "`{key}` is in the file but not as a block mapping key tokensmith can find; write it in block style (`a:` then, indented, `b: value`)"
        ));
    }
    let lines = split_lines(content);
    let block = block_of(&lines, &path[..existing])?.ok_or_else(|| {
        format!("`{}` is not in block style, so tokensmith cannot add `{key}` under it; add the key with a placeholder value", path[..existing].join("."))
    })?;
    let eol = if content.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    };
    let mut added = String::new();
    for (depth, seg) in path[existing..].iter().enumerate() {
        let indent = " ".repeat(block.indent + 2 * depth);
        let name = if plain_safe(seg) && !seg.contains('#') {
            (*seg).to_owned()
        } else {
            format!("\"{}\"", escape_double(seg))
        };
        if existing + depth + 1 == path.len() {
            let literal = if plain_safe(value) {
                value.to_owned()
            } else {
                format!("\"{}\"", escape_double(value))
            };
            added.push_str(&record::comment_line(&indent, record));
            added.push_str(eol);
            added.push_str(&format!("{indent}{name}: {literal}{eol}"));
        } else {
            added.push_str(&format!("{indent}{name}:{eol}"));
        }
    }
    let mut out = String::with_capacity(content.len() + added.len() + 2);
    for (i, (text, end)) in lines.iter().enumerate() {
        if i == block.insert_at {
            out.push_str(&added);
        }
        out.push_str(text);
        out.push_str(end);
        if i + 1 == lines.len() && end.is_empty() && block.insert_at == lines.len() {
            out.push_str(eol);
        }
    }
    if block.insert_at >= lines.len() {
        out.push_str(&added);
    }
    check_only_path_changed(old.clone(), &out, path, value)?;
    Ok(out)
}

/// Where new keys of a block mapping go.
struct Block {
    /// The line index to insert before (the number of lines: at the end).
    insert_at: usize,
    /// The indentation of the mapping's keys.
    indent: usize,
}

/// The block mapping at `prefix` (the whole document for an empty prefix); `None` when a step of
/// the prefix is not a block mapping key.
fn block_of(lines: &[(&str, &str)], prefix: &[&str]) -> Result<Option<Block>, String> {
    let content = |i: usize| {
        let t = lines[i].0;
        is_content(t) && t != "---" && !t.starts_with("--- ")
    };
    let mut range = (0, lines.len());
    let mut own_indent: Option<usize> = None;
    for (depth, seg) in prefix.iter().enumerate() {
        let Some(first) = (range.0..range.1).find(|&i| content(i)) else {
            return Ok(None);
        };
        let child = indent_of(lines[first].0);
        let found = (range.0..range.1).find_map(|i| {
            let text = lines[i].0;
            if !content(i) || indent_of(text) != child {
                return None;
            }
            mapping_key(text, child)
                .filter(|(k, _)| k == seg)
                .map(|(_, after)| (i, after))
        });
        let Some((line, after)) = found else {
            return Ok(None);
        };
        let rest = lines[line].0[after..].trim_start();
        if !(rest.is_empty() || rest.starts_with('#')) {
            return Err(format!(
                "`{}` is not an empty block mapping (it holds `{}` on its line), which tokensmith does not extend",
                prefix[..=depth].join("."),
                rest.chars().take(20).collect::<String>()
            ));
        }
        let end = (line + 1..range.1)
            .find(|&i| content(i) && indent_of(lines[i].0) <= child)
            .unwrap_or(range.1);
        range = (line + 1, end);
        own_indent = Some(child);
    }
    let last_content = (range.0..range.1).rev().find(|&i| content(i));
    let indent = match (range.0..range.1).find(|&i| content(i)) {
        Some(first) => indent_of(lines[first].0),
        None => own_indent.map_or(0, |p| p + 2),
    };
    let insert_at = match (last_content, prefix.is_empty()) {
        (Some(last), _) => last + 1,
        // An empty document: after everything (comments, `---`).
        (None, true) => lines.len(),
        // An empty mapping: right after its key line.
        (None, false) => range.0,
    };
    Ok(Some(Block { insert_at, indent }))
}

fn escape_double(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Whether `value` written as a plain scalar reads back as the same string.
fn plain_safe(value: &str) -> bool {
    if value.is_empty() || value.contains(": ") || value.contains(" #") {
        return false;
    }
    matches!(
        serde_yaml::from_str::<serde_yaml::Value>(&format!("k: {value}")),
        Ok(doc) if doc.get("k") == Some(&serde_yaml::Value::String(value.to_owned()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TokenId;

    #[test]
    fn splices_nested_scalars_in_place() {
        let input = "# config\nauth:\n  # the token\n  other: 1\n  token: \"old\"  # keep me\nlist:\n  - token: x\n";
        let rec = Record::token(TokenId::new("dt0c01.N"), None);
        let out = write(input, &["auth", "token"], "dt0c01.N.S", &rec).unwrap();
        assert_eq!(
            out,
            "# config\nauth:\n  # the token\n  other: 1\n  # tokensmith: holds dt0c01.N\n  token: \"dt0c01.N.S\"  # keep me\nlist:\n  - token: x\n"
        );
        let found = read(&out, &["auth", "token"]).unwrap().unwrap();
        assert_eq!(found.value, "dt0c01.N.S");
        assert_eq!(
            found.record,
            Some(Parsed::Token {
                id: TokenId::new("dt0c01.N"),
                expires: None
            })
        );
        // A second write replaces the record instead of stacking another.
        let again = write(
            &out,
            &["auth", "token"],
            "dt0c01.M.S",
            &Record::token(TokenId::new("dt0c01.M"), None),
        )
        .unwrap();
        assert_eq!(again.matches("tokensmith").count(), 1);
    }

    #[test]
    fn documents_markers_quoted_keys_and_deep_paths() {
        let rec = Record::token(TokenId::new("dt0c01.N"), None);
        let input = "---\n# top\na:\n    b:\n\n        # note\n        \"c d\"  : old   # trailing\n        e: 1\n    f: 2\n";
        let out = write(input, &["a", "b", "c d"], "new", &rec).unwrap();
        assert_eq!(
            out,
            "---\n# top\na:\n    b:\n\n        # note\n        # tokensmith: holds dt0c01.N\n        \"c d\"  : new   # trailing\n        e: 1\n    f: 2\n"
        );
        // A key of the same name at another level is not confused with the path.
        assert_eq!(
            write("x:\n  y: 1\ny: 2\n", &["x", "z"], "v", &rec).unwrap(),
            "x:\n  y: 1\n  # tokensmith: holds dt0c01.N\n  z: v\ny: 2\n"
        );
        assert!(write("a: 1\n---\nb: 2\n", &["a"], "v", &rec)
            .unwrap_err()
            .contains("document"));
    }

    #[test]
    fn plain_values_that_would_change_type_are_quoted() {
        let rec = Record::token(TokenId::new("dt0c01.N"), None);
        let out = write("a: b\nn: x\n", &["n"], "12345", &rec).unwrap();
        assert!(out.ends_with("n: \"12345\"\n"), "{out}");
        let out = write("a:\r\n  b: plain # c\r\n  e:\r\n", &["a", "e"], "v.1", &rec).unwrap();
        assert_eq!(
            out,
            "a:\r\n  b: plain # c\r\n  # tokensmith: holds dt0c01.N\r\n  e: v.1\r\n"
        );
        let out = write(&out, &["a", "b"], "w", &rec).unwrap();
        assert!(out.contains("  b: w # c\r\n"), "{out:?}");
        assert!(write("a: |\n  x\n", &["a"], "v", &rec)
            .unwrap_err()
            .contains("block scalar"));
        assert!(write("a: {b: c}\n", &["a", "b"], "v", &rec)
            .unwrap_err()
            .contains("flow"));
        assert_eq!(
            write("a: b\n", &["c"], "v", &rec).unwrap(),
            "a: b\n# tokensmith: holds dt0c01.N\nc: v\n"
        );
    }

    #[test]
    fn missing_files_and_keys_are_created_in_block_style() {
        let rec = Record::token(TokenId::new("dt0c01.N"), None);
        // A new file (empty content) gets the whole path.
        let out = write("", &["auth", "token"], "dt0c01.N.S", &rec).unwrap();
        assert_eq!(
            out,
            "auth:\n  # tokensmith: holds dt0c01.N\n  token: dt0c01.N.S\n"
        );
        assert_eq!(
            read(&out, &["auth", "token"]).unwrap().unwrap().value,
            "dt0c01.N.S"
        );
        // Under an existing mapping, at its children's indentation, before the next sibling.
        let input = "# c\nexporters:\n    otlp:\n        endpoint: x # e\nservice: {}\n";
        let out = write(
            input,
            &["exporters", "otlp", "headers", "Authorization"],
            "Api-Token a",
            &rec,
        )
        .unwrap();
        assert_eq!(
            out,
            "# c\nexporters:\n    otlp:\n        endpoint: x # e\n        headers:\n          # tokensmith: holds dt0c01.N\n          Authorization: Api-Token a\nservice: {}\n"
        );
        // An empty mapping key, CRLF line ends, a last line without one, values that need quotes.
        let out = write("a:\r\nb: 1", &["a", "true"], "12", &rec).unwrap();
        assert_eq!(
            out,
            "a:\r\n  # tokensmith: holds dt0c01.N\r\n  \"true\": \"12\"\r\nb: 1"
        );
        // The created key is updated in place next time, its record replaced.
        let again = write(
            &out,
            &["a", "true"],
            "13",
            &Record::token(TokenId::new("dt0c01.M"), None),
        )
        .unwrap();
        assert_eq!(again.matches("tokensmith").count(), 1);
        assert!(again.contains("\"true\": \"13\""), "{again:?}");
        // A path through a scalar, a sequence or a null value is refused.
        assert!(write("a: 1\n", &["a", "b"], "v", &rec)
            .unwrap_err()
            .contains("not a mapping"));
        assert!(write("a:\n  - x\n", &["a", "b"], "v", &rec)
            .unwrap_err()
            .contains("not a mapping"));
        assert!(write("a: ~\n", &["a", "b"], "v", &rec).is_err());
        assert!(write("- x\n", &["a"], "v", &rec).is_err());
    }
}
