//! Parsing a large spec on every core.
//!
//! A spec of tens of thousands of tokens is one huge section (`api_tokens:`) whose entries are
//! the lines indented by the same few spaces under it. Such a section is cut at entry lines
//! into a few pieces per core; each piece is parsed on its own as a mapping by whichever thread
//! is free (one per core), and the rest of the file (the "skeleton", the section emptied) is
//! parsed after them. The
//! pieces' entries then become the section's mapping, and every node keeps the line and column
//! it has in the file.
//!
//! The result must be the very tree the one-pass parse builds, so the split is only a fast path:
//! anything it cannot vouch for returns `None` and the caller parses the whole file in one pass
//! (which also gives any error its proper place). It declines when a piece fails to parse (a
//! quoted scalar or flow collection left open at a cut, a line that is not an entry, an alias
//! to an anchor in another piece), when any alias is used anywhere (the alias-expansion limit
//! counts in document order), when the section uses merge keys or repeats a key across pieces,
//! and when the file has directives. Block scalars cannot cross a cut: their lines are indented
//! deeper than the entries, and a line at the entries' indentation ends them.

use super::{refuse_duplicates, Builder, Lines, Node, NodeKind};
use crate::spec::diagnostic::{SourceFile, Span};

/// Files smaller than this are parsed in one pass: threads would cost more than they save.
pub const MIN_BYTES: usize = 512 * 1024;

/// A section's entries: the byte range they take and where each entry's first line starts.
struct Section<'a> {
    /// The section's name, as its key line writes it.
    name: &'a str,
    /// The line of the section's key (1-based).
    key_line: usize,
    /// Byte range of the entries (from the first entry's line to the section's end).
    range: std::ops::Range<usize>,
    /// Byte offset and line (1-based) of each entry's first line.
    entries: Vec<(usize, usize)>,
}

/// The tree of `source`, parsed in up to `parts` pieces (by as many threads as there are cores);
/// `None` when the file is smaller than
/// `min_bytes`, has no section worth splitting, or the split cannot vouch for its result.
pub(super) fn parse(source: &SourceFile, min_bytes: usize, parts: usize) -> Option<Node> {
    let text = source.text();
    if parts < 2 || text.len() < min_bytes {
        return None;
    }
    let section = largest_section(text)?;
    if section.range.len() < min_bytes / 2 || section.entries.len() < parts {
        return None;
    }
    let pieces = cut(&section, parts);

    // The skeleton: the file without the section's entries (their lines taken out).
    let removed_lines = text[section.range.clone()].matches('\n').count();
    let skeleton_text = format!(
        "{}{}",
        &text[..section.range.start],
        &text[section.range.end..]
    );
    let first_entry_line = section.entries[0].1;
    let results = crate::spec::parallel::by_chunks(&pieces, 1, |mine| {
        mine.iter()
            .map(|piece| {
                let mut builder = Builder::new(source, &text[piece.clone()]);
                builder.lines = Lines::After(line_of(&section, piece.start) - 1);
                // A piece is the inside of a section: the file's mapping and the section's
                // own mapping are around it.
                builder.depth = 1;
                let built = builder.run_counted();
                built.ok().filter(|(_, aliases)| *aliases == 0)
            })
            .collect::<Vec<_>>()
    });
    let mut builder = Builder::new(source, &skeleton_text);
    builder.lines = Lines::Without {
        from: first_entry_line,
        count: removed_lines,
    };
    let (mut root, aliases) = builder.run_counted().ok()?;
    if aliases > 0 {
        return None;
    }

    let mut entries: Vec<(Node, Node)> = Vec::with_capacity(section.entries.len());
    let mut span: Option<Span> = None;
    for piece in results.into_iter().flatten() {
        let (node, _) = piece?;
        span.get_or_insert(node.span);
        let NodeKind::Map(more) = node.kind else {
            return None;
        };
        entries.extend(more.into_vec());
    }
    if entries.len() != section.entries.len()
        || entries
            .iter()
            .zip(&section.entries)
            .any(|((key, _), (_, line))| key.span.line() != *line)
        || entries.iter().any(|(key, _)| super::is_merge_key(key))
        || refuse_duplicates(source, &entries).is_err()
    {
        return None;
    }

    // The section's key in the skeleton has no value; its value is the pieces' mapping.
    let NodeKind::Map(sections) = &mut root.kind else {
        return None;
    };
    let (_, value) = sections.iter_mut().find(|(key, _)| {
        key.span.line() == section.key_line && key.as_scalar() == Some(section.name)
    })?;
    if !value.is_null() {
        return None;
    }
    *value = Node {
        kind: NodeKind::Map(entries.into_boxed_slice()),
        span: span?,
    };
    Some(root)
}

/// The line (1-based) of the entry that starts at byte `offset`.
fn line_of(section: &Section<'_>, offset: usize) -> usize {
    let i = section
        .entries
        .partition_point(|(start, _)| *start < offset);
    section.entries.get(i).map_or(0, |(_, line)| *line)
}

/// Cuts the entries into at most `parts` byte ranges of about equal size, at entry lines.
fn cut(section: &Section<'_>, parts: usize) -> Vec<std::ops::Range<usize>> {
    let target = section.range.len().div_ceil(parts);
    let mut pieces = Vec::with_capacity(parts);
    let mut start = section.range.start;
    for &(offset, _) in &section.entries[1..] {
        if offset - start >= target && pieces.len() + 1 < parts {
            pieces.push(start..offset);
            start = offset;
        }
    }
    pieces.push(start..section.range.end);
    pieces
}

/// The top-level section whose entries take the most bytes, if its layout allows a split: a
/// key line `name:` with nothing after it but a comment, then entries at one indentation that
/// are mapping keys (not `- ` items, `? ` keys or flow collections). `None` for a file with
/// directives (`%YAML`, `%TAG`) or no such section.
fn largest_section(text: &str) -> Option<Section<'_>> {
    let mut best: Option<Section<'_>> = None;
    let mut current: Option<Section<'_>> = None;
    let mut indent: Option<usize> = None;
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let number = index + 1;
        let start = offset;
        offset += line.len();
        let content = line.trim_end_matches(['\n', '\r']);
        let body = content.trim_start_matches(' ');
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let spaces = content.len() - body.len();
        if spaces == 0 {
            // A top-level line ends the section before it and may start the next.
            if let Some(done) = current.take() {
                best = larger(best, done);
            }
            if content.starts_with('%') {
                return None;
            }
            indent = None;
            current = section_key(content).map(|name| Section {
                name,
                key_line: number,
                range: start + line.len()..start + line.len(),
                entries: Vec::new(),
            });
            continue;
        }
        let Some(section) = current.as_mut() else {
            continue;
        };
        let entry_indent = *indent.get_or_insert(spaces);
        if spaces == entry_indent {
            if body.starts_with(['-', '?', '{', '[', '\t']) {
                current = None;
                continue;
            }
            if section.entries.is_empty() {
                section.range.start = start;
            }
            section.entries.push((start, number));
        }
        section.range.end = offset;
    }
    if let Some(done) = current {
        best = larger(best, done);
    }
    best.filter(|s| !s.entries.is_empty())
}

fn larger<'a>(best: Option<Section<'a>>, other: Section<'a>) -> Option<Section<'a>> {
    match best {
        Some(b) if b.range.len() >= other.range.len() => Some(b),
        _ => Some(other),
    }
}

/// The name of a section key line: `name:` and at most spaces and a comment after it.
fn section_key(line: &str) -> Option<&str> {
    let (name, rest) = line.split_once(':')?;
    let rest = rest.trim_start_matches(' ');
    let plain = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    (plain && (rest.is_empty() || rest.starts_with('#'))).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The split parse (forced: no size minimum, `parts` pieces) of `text`, checked against the
    /// one-pass parse: either it declines, or it builds the same tree. Returns whether it split.
    fn same_tree(text: &str, parts: usize) -> bool {
        let source = SourceFile::new("t.yaml", text);
        let whole = Builder::new(&source, source.text()).run();
        match parse(&source, 0, parts) {
            None => false,
            Some(split) => {
                assert_eq!(
                    Ok(&split),
                    whole.as_ref(),
                    "split parse differs for:\n{text}"
                );
                true
            }
        }
    }

    fn spec(tokens: usize, entry: impl Fn(usize) -> String) -> String {
        let mut text = String::from(
            "version: 1\n# the fleet\nenvironments:\n  prod: { url: sandbox://prod }\napi_tokens:\n",
        );
        for i in 0..tokens {
            text.push_str(&entry(i));
        }
        text.push_str("defaults:\n  rotation: 30d\n");
        text
    }

    #[test]
    fn a_plain_large_section_splits_into_the_same_tree() {
        let text = spec(40, |i| {
            format!("  t{i}:\n    scopes: [metrics.ingest]\n    deliver:\n      - file: {{ path: out/t{i} }}\n")
        });
        for parts in [2, 3, 7] {
            assert!(same_tree(&text, parts), "{parts} parts");
        }
        // CRLF line ends, comments at any indentation, blank lines and block scalars.
        let text = spec(30, |i| {
            format!("  t{i}:   # entry {i}\r\n\r\n# a note\r\n    description: |\r\n      line one\r\n\r\n      line two\r\n    scopes: [a]\r\n")
        });
        assert!(same_tree(&text, 4));
    }

    #[test]
    fn layouts_it_cannot_vouch_for_are_parsed_in_one_pass() {
        // A quoted scalar open across a cut, a flow list across lines, aliases, merge keys, a
        // repeated key in two pieces, a directive, a sequence section, a tab: each either
        // declines or (where the one-pass parse agrees) builds the same tree.
        let quoted = spec(20, |i| {
            if i == 10 {
                "  t10: \"one\n  t11: two\"\n".to_owned()
            } else {
                format!("  t{i}: {{ scopes: [a] }}\n")
            }
        });
        let flow = spec(20, |i| format!("  t{i}: [a,\n  b]\n"));
        let aliases = format!(
            "x-base: &b {{ scopes: [a] }}\n{}",
            spec(20, |i| format!("  t{i}: *b\n"))
        );
        let merges = spec(20, |i| match i {
            7 => "  <<: { t100: 1 }\n".to_owned(),
            _ => format!("  t{i}: {{ scopes: [a] }}\n"),
        });
        let repeated = spec(20, |i| format!("  t{}: {{ scopes: [a] }}\n", i % 15));
        let directive = format!("%YAML 1.2\n---\n{}", spec(20, |i| format!("  t{i}: 1\n")));
        let sequence = spec(20, |i| format!("  - t{i}\n"));
        let tabs = spec(20, |i| format!("  t{i}:\n\tscopes: [a]\n"));
        for text in [
            quoted, flow, aliases, merges, repeated, directive, sequence, tabs,
        ] {
            assert!(!same_tree(&text, 3), "should not split:\n{text}");
        }
        // A plain scalar cannot continue at the entries' indentation: the one-pass parse
        // refuses the line, and the split declines.
        let plain = spec(20, |i| format!("  t{i}: some words\n  more words\n"));
        assert!(!same_tree(&plain, 3));
        // Merge keys inside entries stay inside one piece: the same tree.
        let inner_merges = spec(20, |i| format!("  t{i}:\n    <<: {{ scopes: [a] }}\n"));
        assert!(same_tree(&inner_merges, 3));
    }

    #[test]
    fn errors_come_from_the_one_pass_parse() {
        let text =
            spec(20, |i| format!("  t{i}: {{ scopes: [a] }}\n")).replace("  t13: {", "  t13: {{");
        let source = SourceFile::new("t.yaml", text);
        assert!(parse(&source, 0, 3).is_none());
        let err = super::super::parse(&source).unwrap_err();
        let whole = Builder::new(&source, source.text()).run().unwrap_err();
        assert_eq!(err, whole);
        assert!(err.location.as_ref().unwrap().line >= 19, "{err}");
    }
}
