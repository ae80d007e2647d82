//! Reading a spec: bytes to text (bounded size, UTF-8 checked), text to the located YAML tree,
//! and the tree's top-level sections to typed entries.
//!
//! Each entry (one environment, one token, …) is deserialized on its own, so one file reports
//! every broken entry at once instead of stopping at the first. An entry that does not parse is
//! kept by name, so later checks do not also call it "not declared". When what is left of an
//! entry after taking out its broken fields still parses, that rest is kept too, so its meaning
//! (scopes, targets, environments) is checked in the same run; findings that would only follow
//! from the fields taken out are dropped ([`Parsed::drop_follow_ons`]). What the entries mean is
//! decided in [`super::resolve`].

use std::borrow::Cow;
use std::collections::HashSet;
use std::path::Path;

use serde::de::DeserializeOwned;

use super::de::{from_node, DeError, Spanned};
use super::diagnostic::{Diagnostic, SourceFile, Span};
use super::types::{
    AccountSpec, ActiveGateTokenSpec, ApiTokenSpec, DefaultsSpec, EnvironmentSpec,
    PlatformTokenSpec, TenantTokenSpec, UnmanagedSpec, SECTIONS,
};
use super::yaml::{self, Node, NodeKind};

/// Spec files larger than this are refused before parsing.
pub const MAX_SPEC_BYTES: usize = 8 * 1024 * 1024;

/// One named entry of a section; `spec` is `None` when the entry did not parse (its errors
/// were reported).
#[derive(Debug, Clone)]
pub struct Entry<T> {
    pub key: Spanned<String>,
    pub spec: Option<T>,
}

/// The sections of a spec file, entry by entry.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub version: Option<Spanned<u32>>,
    pub environments: Vec<Entry<EnvironmentSpec>>,
    pub accounts: Vec<Entry<AccountSpec>>,
    pub defaults: Option<DefaultsSpec>,
    pub api_tokens: Vec<Entry<ApiTokenSpec>>,
    pub activegate_tokens: Vec<Entry<ActiveGateTokenSpec>>,
    pub tenant_token: Vec<Entry<TenantTokenSpec>>,
    pub platform_tokens: Vec<Entry<PlatformTokenSpec>>,
    pub unmanaged: Option<UnmanagedSpec>,
    /// Entries kept without their broken fields (their errors were reported).
    pub partial: Vec<PartialEntry>,
}

/// Where an entry kept without its broken fields was, and what was taken out of it.
#[derive(Debug, Clone, Default)]
pub struct PartialEntry {
    /// The entry's first and last line.
    lines: (usize, usize),
    /// Positions (line, column) of the entry's name, of its value and of every node taken out:
    /// a finding there is about the entry as a whole or about a removed field.
    hidden: HashSet<(usize, usize)>,
    /// The names of the fields taken out.
    removed: Vec<String>,
}

impl Parsed {
    /// Drops, from the findings about the parsed entries, those that follow only from fields
    /// taken out of a partial entry: at its name or a removed node (an entry-level finding such
    /// as "no scopes", "no deliver targets"), or naming a removed field inside the entry (a
    /// policy check against a default that the broken field was meant to replace).
    pub fn drop_follow_ons(&self, diags: &mut Vec<Diagnostic>) {
        if self.partial.is_empty() {
            return;
        }
        diags.retain(|d| {
            let Some(loc) = &d.location else { return true };
            !self.partial.iter().any(|p| {
                let inside = (p.lines.0..=p.lines.1).contains(&loc.line);
                inside
                    && (p.hidden.contains(&(loc.line, loc.column))
                        || p.removed
                            .iter()
                            .any(|f| d.message.contains(&format!("`{f}`"))))
            })
        });
    }
}

/// Reads a spec file's bytes, refusing files over [`MAX_SPEC_BYTES`] without reading them, and
/// anything but a regular file (a FIFO would block, `/dev/zero` never ends). The file is opened
/// without blocking and read no further than the limit, whatever its metadata says.
pub fn read(path: &Path) -> Result<Vec<u8>, Diagnostic> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let name = path.display();
    let cannot = |e: std::io::Error| {
        Diagnostic::error(format!("cannot read `{name}`: {}", lower(&e)))
            .help("pass the spec file with `-f FILE` (default `tokensmith.yaml`)")
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    if !meta.is_file() {
        return Err(
            Diagnostic::error(format!("cannot read `{name}`: it is not a regular file")).help(
                "pass the spec file with `-f FILE`; FIFOs, devices and directories are refused",
            ),
        );
    }
    check_real_location(path, &file)?;
    if meta.len() > MAX_SPEC_BYTES as u64 {
        return Err(too_large(&name.to_string(), meta.len() as usize));
    }
    // Room for the whole file and the byte that would show it grew: read in one piece.
    let mut bytes = Vec::with_capacity(meta.len() as usize + 1);
    file.take(MAX_SPEC_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() > MAX_SPEC_BYTES {
        return Err(too_large(&name.to_string(), bytes.len()));
    }
    Ok(bytes)
}

/// Where a spec may really be. Git stores symlinks, so a pull request can turn the spec into a
/// link to any file of the machine that runs its plan check, and tokensmith quotes the lines of
/// a spec it cannot parse: `tokensmith.yaml -> /proc/self/environ` would print the CI job's
/// environment, `-> ~/.aws/credentials` its keys. So the opened file (as the kernel names it,
/// after every link) must not be one of the kernel's (`/proc`, `/sys`, `/dev`), and a spec
/// inside a git repository (a `.git` above it, as the path is written) must resolve to a file
/// inside that repository. A spec outside any repository may link anywhere else: whoever wrote
/// the link is the user running tokensmith.
fn check_real_location(path: &Path, file: &std::fs::File) -> Result<(), Diagnostic> {
    use std::os::fd::AsRawFd;
    let name = path.display();
    // The opened file's own path, so a link swapped after the open cannot mislead the check.
    let real = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .or_else(|_| std::fs::canonicalize(path))
        .map_err(|e| Diagnostic::error(format!("cannot read `{name}`: {}", lower(&e))))?;
    if ["/proc", "/sys", "/dev"]
        .iter()
        .any(|k| real.starts_with(k))
    {
        return Err(Diagnostic::error(format!(
            "cannot read `{name}`: it resolves to `{}`, a file of the kernel, not a spec",
            real.display()
        ))
        .help("pass the spec file with `-f FILE`; a spec is a YAML file a user wrote"));
    }
    let absolute = std::path::absolute(path)
        .map_err(|e| Diagnostic::error(format!("cannot read `{name}`: {}", lower(&e))))?;
    // `..` taken lexically (`specs/../x.yaml` is in the directory that holds `specs`).
    let written = crate::paths::lexically_normal(&absolute);
    let repository = written
        .ancestors()
        .skip(1)
        .find(|dir| dir.join(".git").exists());
    if let Some(root) = repository {
        let root_real = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        if !real.starts_with(&root_real) {
            return Err(Diagnostic::error(format!(
                "cannot read `{name}`: it resolves to `{}`, outside its git repository `{}`",
                real.display(),
                root_real.display()
            ))
            .help(
                "a spec in a repository must be a file of that repository: a committed symlink could \
                 otherwise make tokensmith read, and quote in its errors, any file of the machine; \
                 pass the real path with `-f FILE`",
            ));
        }
    }
    Ok(())
}

fn lower(e: &std::io::Error) -> String {
    let text = e.to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

fn too_large(file_name: &str, len: usize) -> Diagnostic {
    Diagnostic::error(format!(
        "the spec `{file_name}` is {len} bytes or more, larger than the limit of {MAX_SPEC_BYTES} bytes (8 MiB)"
    ))
    .help("a spec declares tokens, not data; split it or remove generated content")
}

/// Bytes to text: refuses oversized input and invalid UTF-8 (naming the line, column and byte
/// offset of the first bad byte).
pub fn decode(bytes: Cow<'_, [u8]>, file_name: &str) -> Result<String, Diagnostic> {
    if bytes.len() > MAX_SPEC_BYTES {
        return Err(too_large(file_name, bytes.len()));
    }
    // A spec read from disk is taken over as it is, not copied: it is the largest single
    // allocation of a large spec's load.
    let text = match bytes {
        Cow::Owned(bytes) => String::from_utf8(bytes)
            .map_err(|e| not_utf8(e.as_bytes(), e.utf8_error(), file_name))?,
        Cow::Borrowed(bytes) => std::str::from_utf8(bytes)
            .map_err(|e| not_utf8(bytes, e, file_name))?
            .to_owned(),
    };
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_owned(),
        None => text,
    })
}

fn not_utf8(bytes: &[u8], e: std::str::Utf8Error, file_name: &str) -> Diagnostic {
    let offset = e.valid_up_to();
    let before = String::from_utf8_lossy(&bytes[..offset]);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    let lossy = SourceFile::new(file_name, String::from_utf8_lossy(bytes));
    Diagnostic::error(format!(
        "the file is not valid UTF-8: byte 0x{:02x} at offset {offset}",
        bytes[offset]
    ))
    .at(lossy.locate(Span::new(line, col, 1)))
    .help("save the spec as UTF-8")
}

/// Splits the tree into sections and deserializes each entry, reporting every failure.
pub fn sections(root: &Node, source: &SourceFile, diags: &mut Vec<Diagnostic>) -> Parsed {
    let mut parsed = Parsed::default();
    let entries = match &root.kind {
        NodeKind::Map(entries) => entries,
        _ if root.is_null() => {
            diags.push(
                source
                    .error(root.span, "the spec is empty")
                    .help("start the file with `version: 1`"),
            );
            return parsed;
        }
        _ => {
            diags.push(
                source
                    .error(root.span, "the spec must be a mapping of sections")
                    .help(format!("top-level keys are {}", SECTIONS.join(", "))),
            );
            return parsed;
        }
    };
    let mut partial = Vec::new();
    for (key, value) in entries {
        let Some(section) = key.as_scalar() else {
            diags.push(source.error(key.span, "a section name must be a string"));
            continue;
        };
        match section {
            "version" => parsed.version = one(value, source, diags),
            "environments" => parsed.environments = many(value, source, diags, &mut partial),
            "accounts" => parsed.accounts = many(value, source, diags, &mut partial),
            "defaults" => parsed.defaults = optional(value, source, diags),
            "api_tokens" => parsed.api_tokens = many(value, source, diags, &mut partial),
            "activegate_tokens" => {
                parsed.activegate_tokens = many(value, source, diags, &mut partial)
            }
            "tenant_token" => parsed.tenant_token = many(value, source, diags, &mut partial),
            "platform_tokens" => parsed.platform_tokens = many(value, source, diags, &mut partial),
            "unmanaged" => parsed.unmanaged = optional(value, source, diags),
            // Extension keys hold anchors for reuse elsewhere; they mean nothing themselves.
            other if other.starts_with("x-") => {}
            other => {
                let mut d = source.error(key.span, format!("unknown section `{other}`"));
                let near = SECTIONS
                    .iter()
                    .map(|s| (strsim::jaro_winkler(s, other), *s))
                    .filter(|(score, _)| *score > 0.8)
                    .max_by(|a, b| a.0.total_cmp(&b.0));
                d = match near {
                    Some((_, s)) => d.help(format!("did you mean `{s}`?")),
                    None => d.help(format!(
                        "top-level keys are {} (and `x-…` keys for anchors)",
                        SECTIONS.join(", ")
                    )),
                };
                diags.push(d);
            }
        }
    }
    parsed.partial = partial;
    let has_version = entries
        .iter()
        .any(|(k, _)| k.as_scalar() == Some("version"));
    if !has_version {
        diags.push(
            source
                .error(root.span, "missing `version`")
                .help("start the file with `version: 1`"),
        );
    }
    parsed
}

/// Turns a deserialization error into a located diagnostic.
pub fn de_error(e: DeError, fallback: Span, source: &SourceFile) -> Diagnostic {
    let mut d = source.error(e.span.unwrap_or(fallback), e.message);
    if let Some(help) = e.help {
        d = d.help(help);
    }
    d
}

fn one<T: DeserializeOwned>(
    node: &Node,
    source: &SourceFile,
    diags: &mut Vec<Diagnostic>,
) -> Option<T> {
    deserialize_all(node)
        .map_err(|errors| {
            for e in errors {
                diags.push(de_error(e, node.span, source));
            }
        })
        .ok()
}

/// Deserializes `node` and, when that fails, keeps looking for more errors in it: the field (or
/// list item of a top-level list field) holding the error is taken out and the rest is tried
/// again, up to [`MAX_ERRORS_PER_ENTRY`] errors. A required field that was taken out is not
/// reported again as missing.
pub fn deserialize_all<T: DeserializeOwned>(node: &Node) -> Result<T, Vec<DeError>> {
    deserialize_rest(node).map_err(|(errors, _)| errors)
}

/// What is left of a node after its broken fields were taken out, deserialized.
pub struct Rest<T> {
    pub value: T,
    /// The node without the broken fields (and list items).
    pub node: Node,
    /// The names of the fields taken out whole.
    pub removed: Vec<String>,
}

/// Like [`deserialize_all`]; on failure also returns the rest of the node when it deserializes
/// without the fields (or list items) that held the errors.
pub fn deserialize_rest<T: DeserializeOwned>(
    node: &Node,
) -> Result<T, (Vec<DeError>, Option<Rest<T>>)> {
    let first = match from_node(node) {
        Ok(value) => return Ok(value),
        Err(e) => e,
    };
    let mut errors = vec![first];
    let mut rest = node.clone();
    let mut removed: Vec<String> = Vec::new();
    while errors.len() < MAX_ERRORS_PER_ENTRY {
        let Some(span) = errors.last().and_then(|e| e.span) else {
            break;
        };
        if !remove_containing(&mut rest, span, &mut removed) {
            break;
        }
        match from_node::<T>(&rest) {
            Ok(value) => {
                let rest = Rest {
                    value,
                    node: rest,
                    removed,
                };
                return Err((errors, Some(rest)));
            }
            Err(e) => {
                let follow_on = removed
                    .iter()
                    .any(|f| e.message == format!("missing field `{f}`"));
                if follow_on || errors.contains(&e) {
                    break;
                }
                errors.push(e);
            }
        }
    }
    Err((errors, None))
}

/// At most this many errors are reported for one entry.
pub const MAX_ERRORS_PER_ENTRY: usize = 16;

/// Removes the top-level field of a mapping that holds `span` (or, for a list field, the list
/// item that holds it); records removed field names. False when nothing holds the span.
fn remove_containing(node: &mut Node, span: Span, removed: &mut Vec<String>) -> bool {
    let NodeKind::Map(entries) = &mut node.kind else {
        return false;
    };
    let Some(i) = entries
        .iter()
        .position(|(k, v)| k.span == span || v.contains(span))
    else {
        return false;
    };
    if let NodeKind::Seq(items) = &mut entries[i].1.kind {
        if let Some(j) = items.iter().position(|item| item.contains(span)) {
            let mut kept = std::mem::take(items).into_vec();
            kept.remove(j);
            *items = kept.into_boxed_slice();
            return true;
        }
    }
    let mut kept = std::mem::take(entries).into_vec();
    let (key, _) = kept.remove(i);
    *entries = kept.into_boxed_slice();
    removed.push(key.as_scalar().unwrap_or_default().to_owned());
    true
}

fn optional<T: DeserializeOwned>(
    node: &Node,
    source: &SourceFile,
    diags: &mut Vec<Diagnostic>,
) -> Option<T> {
    if node.is_null() {
        return None;
    }
    one(node, source, diags)
}

/// Large sections (tens of thousands of tokens) are deserialized on every core, in chunks of this
/// many entries.
const ENTRIES_PER_CHUNK: usize = 1_000;

fn many<T: DeserializeOwned + Send>(
    node: &Node,
    source: &SourceFile,
    diags: &mut Vec<Diagnostic>,
    partial: &mut Vec<PartialEntry>,
) -> Vec<Entry<T>> {
    let entries = match &node.kind {
        NodeKind::Map(entries) => entries,
        _ if node.is_null() => return Vec::new(),
        _ => {
            diags.push(
                source
                    .error(node.span, "expected a mapping of names to entries")
                    .help("write `name:` on its own line and the entry's fields indented below it"),
            );
            return Vec::new();
        }
    };
    let slices = super::parallel::by_chunks(entries, ENTRIES_PER_CHUNK, |slice| {
        let (mut diags, mut partial) = (Vec::new(), Vec::new());
        let out: Vec<Entry<T>> = slice
            .iter()
            .filter_map(|(key, value)| entry(key, value, source, &mut diags, &mut partial))
            .collect();
        (out, diags, partial)
    });
    let mut out = Vec::with_capacity(entries.len());
    for (entries, more, partials) in slices {
        out.extend(entries);
        diags.extend(more);
        partial.extend(partials);
    }
    out
}

/// One named entry of a section; `None` when its name is not a string.
fn entry<T: DeserializeOwned>(
    key: &Node,
    value: &Node,
    source: &SourceFile,
    diags: &mut Vec<Diagnostic>,
    partial: &mut Vec<PartialEntry>,
) -> Option<Entry<T>> {
    let name: Spanned<String> = match from_node(key) {
        Ok(name) => name,
        Err(e) => {
            diags.push(de_error(e, key.span, source));
            return None;
        }
    };
    let spec = if value.is_null() {
        diags.push(
            source
                .error(key.span, format!("`{}` has no settings", name.value))
                .help("add its fields, indented below the name"),
        );
        None
    } else {
        match deserialize_rest(value) {
            Ok(spec) => Some(spec),
            Err((errors, rest)) => {
                for mut e in errors {
                    // A problem with the entry as a whole (a missing field) points at its name.
                    if e.span == Some(value.span) && value.as_scalar().is_none() {
                        e.span = Some(key.span);
                    }
                    diags.push(de_error(e, key.span, source));
                }
                rest.map(|rest| {
                    partial.push(partial_entry(key, value, &rest.node, rest.removed, source));
                    rest.value
                })
            }
        }
    };
    Some(Entry { key: name, spec })
}

/// The record of an entry kept without some of its nodes: `value` as written, `rest` as kept.
fn partial_entry(
    key: &Node,
    value: &Node,
    rest: &Node,
    removed: Vec<String>,
    source: &SourceFile,
) -> PartialEntry {
    let mut written = Vec::new();
    spans(value, &mut written);
    let mut kept = Vec::new();
    spans(rest, &mut kept);
    let kept: HashSet<Span> = kept.into_iter().skip(1).collect();
    let place = |span: Span| {
        let loc = source.locate(span);
        (loc.line, loc.column)
    };
    let mut hidden: HashSet<(usize, usize)> = written
        .iter()
        .filter(|s| !kept.contains(s))
        .map(|s| place(*s))
        .collect();
    hidden.insert(place(key.span));
    let last = written
        .iter()
        .map(|s| s.line())
        .max()
        .unwrap_or(key.span.line());
    PartialEntry {
        lines: (key.span.line(), last.max(key.span.line())),
        hidden,
        removed,
    }
}

/// The spans of `node` and every node in it, `node` first.
fn spans(node: &Node, out: &mut Vec<Span>) {
    out.push(node.span);
    match &node.kind {
        NodeKind::Scalar { .. } => {}
        NodeKind::Seq(items) => items.iter().for_each(|n| spans(n, out)),
        NodeKind::Map(entries) => entries.iter().for_each(|(k, v)| {
            spans(k, out);
            spans(v, out);
        }),
    }
}

/// Parses text to the tree; syntax errors become one diagnostic.
pub fn tree(source: &SourceFile) -> Result<Node, Diagnostic> {
    yaml::parse(source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_names_the_place() {
        let bytes: &[u8] = b"version: 1\nenvironments:\n  pr\xffod: {}\n";
        // Borrowed (a spec in memory) or owned (a spec read from disk): the same error.
        for bytes in [Cow::Borrowed(bytes), Cow::Owned(bytes.to_vec())] {
            let d = decode(bytes, "t.yaml").unwrap_err();
            let loc = d.location.unwrap();
            assert_eq!((loc.line, loc.column), (3, 5));
            assert!(d.message.contains("offset 29"), "{}", d.message);
        }
    }

    #[test]
    fn a_byte_order_mark_is_dropped_from_either() {
        let bytes: &[u8] = b"\xef\xbb\xbfversion: 1\n";
        for bytes in [Cow::Borrowed(bytes), Cow::Owned(bytes.to_vec())] {
            assert_eq!(decode(bytes, "t.yaml").unwrap(), "version: 1\n");
        }
    }

    #[test]
    fn oversized_input_is_refused_before_parsing() {
        let big = vec![b' '; MAX_SPEC_BYTES + 1];
        assert!(decode(Cow::Owned(big), "t.yaml")
            .unwrap_err()
            .message
            .contains("8 MiB"));
    }
}
