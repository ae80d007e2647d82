//! YAML text to a tree of located nodes, with the limits that keep hostile input harmless.
//!
//! The tree is built from `saphyr-parser` events, which carry positions, so every node knows its
//! line and column; [`super::de`] then deserializes the spec types from the tree, and any error
//! points at the node it is about. This module owns YAML-level rules only: one document,
//! unique mapping keys, merge keys (`<<: *base`), no custom tags, bounded nesting and a bounded
//! number of nodes that aliases add (a "billion laughs" alias bomb is refused before it expands,
//! while a large plain spec is limited only by its byte size). It knows nothing about what a
//! spec means.

use crate::model::hash::{map_with_capacity, HashMap, HashSet};
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle, Span as YamlSpan};

use super::diagnostic::{Diagnostic, SourceFile, Span};

mod split;

/// Specs at least this large are parsed on every core (and their working set freed on another
/// thread).
pub use split::MIN_BYTES as PARALLEL_MIN_BYTES;

/// Aliases may add at most this many nodes beyond the document's own (or as many as the
/// document itself holds, when that is more): the copies an alias makes are what multiply a
/// document, so they are what is bounded. The document's own nodes are bounded by the file size
/// ([`super::load::MAX_SPEC_BYTES`]).
pub const MAX_NODES: usize = 100_000;

/// At most this many nested sequences and mappings.
pub const MAX_DEPTH: usize = 64;

/// One YAML node and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// Boxed slices, not `Vec`: no spare capacity, and a smaller node (a tree of tens of
    /// thousands of tokens holds millions of them). Short texts are shared: a spec repeats
    /// the same keys and values (`environments`, `scopes`, `prod`) in every entry.
    Scalar {
        text: Arc<str>,
        plain: bool,
    },
    Seq(Box<[Node]>),
    Map(Box<[(Node, Node)]>),
}

impl Node {
    fn null(span: Span) -> Node {
        Node {
            kind: NodeKind::Scalar {
                text: "".into(),
                plain: true,
            },
            span,
        }
    }

    /// Number of nodes in this subtree, itself included.
    pub fn size(&self) -> usize {
        match &self.kind {
            NodeKind::Scalar { .. } => 1,
            NodeKind::Seq(items) => 1 + items.iter().map(Node::size).sum::<usize>(),
            NodeKind::Map(entries) => {
                1 + entries
                    .iter()
                    .map(|(k, v)| k.size() + v.size())
                    .sum::<usize>()
            }
        }
    }

    /// The scalar text, for a scalar.
    pub fn as_scalar(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// A plain scalar that YAML reads as null (`~`, `null`, or nothing).
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { text, plain: true } if matches!(&**text, "" | "~" | "null" | "Null" | "NULL"))
    }

    /// The span of the first scalar with exactly this text inside the node that starts at
    /// `within`, for pointing at one string of a larger value (a template in a target).
    pub fn find_scalar(&self, within: Span, text: &str) -> Option<Span> {
        let container = self.find_node(within)?;
        container.first_scalar(text)
    }

    /// The span of field `name` (its value, or its key when the value is empty) in the mapping
    /// that starts at `within` or in the first mapping nested in it (a target's settings).
    pub fn find_field(&self, within: Span, name: &str) -> Option<Span> {
        let mut node = self.find_node(within)?;
        loop {
            let NodeKind::Map(entries) = &node.kind else {
                return None;
            };
            if let Some((k, v)) = entries.iter().find(|(k, _)| k.as_scalar() == Some(name)) {
                return Some(if v.is_null() { k.span } else { v.span });
            }
            match &**entries {
                [(_, inner)] => node = inner,
                _ => return None,
            }
        }
    }

    /// The value of the mapping entry whose key is the node at `key` (an entry of a section,
    /// found from its key's span).
    pub fn value_of(&self, key: Span) -> Option<&Node> {
        match &self.kind {
            NodeKind::Scalar { .. } => None,
            NodeKind::Seq(items) => items.iter().find_map(|n| n.value_of(key)),
            NodeKind::Map(entries) => entries.iter().find_map(|(k, v)| {
                if k.span == key {
                    Some(v)
                } else {
                    v.value_of(key)
                }
            }),
        }
    }

    /// Whether this node or one inside it starts at `span`.
    pub fn contains(&self, span: Span) -> bool {
        self.find_node(span).is_some()
    }

    fn find_node(&self, span: Span) -> Option<&Node> {
        if self.span == span {
            return Some(self);
        }
        match &self.kind {
            NodeKind::Scalar { .. } => None,
            NodeKind::Seq(items) => items.iter().find_map(|n| n.find_node(span)),
            NodeKind::Map(entries) => entries
                .iter()
                .find_map(|(k, v)| k.find_node(span).or_else(|| v.find_node(span))),
        }
    }

    fn first_scalar(&self, wanted: &str) -> Option<Span> {
        match &self.kind {
            NodeKind::Scalar { text, .. } => (&**text == wanted).then_some(self.span),
            NodeKind::Seq(items) => items.iter().find_map(|n| n.first_scalar(wanted)),
            NodeKind::Map(entries) => entries.iter().find_map(|(_, v)| v.first_scalar(wanted)),
        }
    }
}

/// Parses one YAML document into a located tree. An empty document is a null scalar.
///
/// A large spec is parsed on every core when its layout allows (`split`); the tree is the
/// same either way.
pub fn parse(source: &SourceFile) -> Result<Node, Diagnostic> {
    let cores = super::parallel::cores();
    if cores > 1 {
        // More pieces than cores, so a core that finishes early takes another: with eight a
        // core, the last piece is about a sixteenth of a two-core parse, the longest one core
        // can be left working alone.
        if let Some(node) = split::parse(source, split::MIN_BYTES, cores * 8) {
            return Ok(node);
        }
    }
    Builder::new(source, source.text()).run()
}

/// Maps the line numbers of a parsed piece of text to lines of the source file.
#[derive(Debug, Clone, Copy)]
enum Lines {
    /// The piece is the whole file.
    Same,
    /// The piece starts after this many lines of the file.
    After(usize),
    /// The piece is the file with lines `from..from + count` taken out.
    Without { from: usize, count: usize },
}

impl Lines {
    fn map(self, line: usize) -> usize {
        match self {
            Lines::Same => line,
            Lines::After(n) => line + n,
            Lines::Without { from, count } if line >= from => line + count,
            Lines::Without { .. } => line,
        }
    }
}

/// A collection being read. Its finished children wait on the builder's scratch stacks
/// (`items`, `pairs`) from `start` on, so a collection allocates once, at its exact size, when
/// it ends, instead of growing a list of its own (a spec of 50,000 tokens has 400,000).
enum Frame {
    Seq {
        span: Span,
        anchor: usize,
        start: usize,
    },
    Map {
        span: Span,
        anchor: usize,
        start: usize,
        key: Option<Node>,
    },
}

struct Builder<'a> {
    source: &'a SourceFile,
    /// The text parsed: the source's, or a piece of it ([`split`]).
    text: &'a str,
    /// Where the lines of `text` are in the source.
    lines: Lines,
    /// Levels of nesting around `text` (a piece that is the inside of a section starts at 1).
    depth: usize,
    /// Alias events seen (the split parse does not handle documents with aliases).
    aliases: usize,
    stack: Vec<Frame>,
    /// The finished items of the open sequences, innermost last ([`Frame`]).
    items: Vec<Node>,
    /// The finished entries of the open mappings, innermost last ([`Frame`]).
    pairs: Vec<(Node, Node)>,
    anchors: HashMap<usize, (Node, usize)>,
    /// The short scalar texts seen so far, shared by every node that repeats one.
    texts: HashSet<Arc<str>>,
    /// Nodes written in the document itself.
    own: usize,
    /// Nodes added by alias expansion (an alias of an anchor of n nodes adds n - 1).
    added: usize,
    root: Option<Node>,
}

impl<'a> Builder<'a> {
    fn new(source: &'a SourceFile, text: &'a str) -> Self {
        Builder {
            source,
            text,
            lines: Lines::Same,
            depth: 0,
            aliases: 0,
            stack: Vec::new(),
            items: Vec::new(),
            pairs: Vec::new(),
            anchors: HashMap::default(),
            texts: HashSet::default(),
            own: 0,
            added: 0,
            root: None,
        }
    }

    /// `text` as a node's text: shared with earlier nodes of the same short text.
    fn text(&mut self, text: &str) -> Arc<str> {
        /// Longer texts (names, paths, URLs) rarely repeat.
        const SHARED_UP_TO: usize = 32;
        if text.len() > SHARED_UP_TO {
            return Arc::from(text);
        }
        if let Some(shared) = self.texts.get(text) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(text);
        self.texts.insert(shared.clone());
        shared
    }

    fn run(self) -> Result<Node, Diagnostic> {
        self.run_counted().map(|(node, _)| node)
    }

    /// The tree and the number of aliases used in it.
    fn run_counted(mut self) -> Result<(Node, usize), Diagnostic> {
        let mut parser = Parser::new_from_str(self.text);
        let mut documents = 0;
        while let Some(next) = parser.next_event() {
            let (event, yspan) = match next {
                Ok(ok) => ok,
                Err(e) => {
                    let m = e.marker();
                    return Err(
                        Diagnostic::error(format!("YAML syntax error: {}", e.info()))
                            .at(self
                                .source
                                .locate_point(self.lines.map(m.line()), m.col() + 1))
                            .help("check the indentation and quoting around this place"),
                    );
                }
            };
            let span = self.span_of(&yspan);
            let is_seq = matches!(event, Event::SequenceStart(..));
            match event {
                Event::DocumentStart(_) => {
                    documents += 1;
                    if documents > 1 {
                        return Err(self
                            .source
                            .error(span, "a spec file holds one YAML document, found a second")
                            .help("remove the `---` line or split the file"));
                    }
                }
                Event::Scalar(text, style, anchor, tag) => {
                    let mut plain = style == ScalarStyle::Plain;
                    if let Some(tag) = tag {
                        if tag.is_yaml_core_schema() {
                            if tag.suffix == "str" {
                                plain = false;
                            }
                        } else {
                            return Err(self
                                .source
                                .error(span, format!("YAML tag `{tag}` is not supported"))
                                .help("remove the tag; a spec uses plain YAML values"));
                        }
                    }
                    let node = Node {
                        kind: NodeKind::Scalar {
                            text: self.text(&text),
                            plain,
                        },
                        span,
                    };
                    self.own += 1;
                    self.finish(node, anchor)?;
                }
                Event::SequenceStart(anchor, tag) | Event::MappingStart(anchor, tag) => {
                    if let Some(tag) = tag.filter(|t| !t.is_yaml_core_schema()) {
                        return Err(self
                            .source
                            .error(span, format!("YAML tag `{tag}` is not supported"))
                            .help("remove the tag; a spec uses plain YAML values"));
                    }
                    if self.stack.len() + self.depth >= MAX_DEPTH {
                        return Err(self
                            .source
                            .error(
                                span,
                                format!("the YAML nests deeper than {MAX_DEPTH} levels"),
                            )
                            .help("a spec needs only a few levels of nesting"));
                    }
                    self.own += 1;
                    self.stack.push(match is_seq {
                        true => Frame::Seq {
                            span,
                            anchor,
                            start: self.items.len(),
                        },
                        false => Frame::Map {
                            span,
                            anchor,
                            start: self.pairs.len(),
                            key: None,
                        },
                    });
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    let Some(frame) = self.stack.pop() else {
                        continue;
                    };
                    let (node, anchor) = match frame {
                        Frame::Seq {
                            span,
                            anchor,
                            start,
                        } => (
                            Node {
                                kind: NodeKind::Seq(self.items.drain(start..).collect()),
                                span,
                            },
                            anchor,
                        ),
                        Frame::Map {
                            span,
                            anchor,
                            start,
                            ..
                        } => {
                            let entries = self.pairs.drain(start..).collect();
                            (
                                Node {
                                    kind: NodeKind::Map(
                                        self.merge_and_check(entries)?.into_boxed_slice(),
                                    ),
                                    span,
                                },
                                anchor,
                            )
                        }
                    };
                    self.finish(node, anchor)?;
                }
                Event::Alias(id) => {
                    self.aliases += 1;
                    let Some(size) = self.anchors.get(&id).map(|(_, size)| *size) else {
                        return Err(self.source.error(span, "alias refers to an unknown anchor"));
                    };
                    // The alias itself is one node of the document; the rest of the copy is
                    // what it adds. Counted before copying, so a bomb never expands.
                    self.own += 1;
                    self.add(size.saturating_sub(1), span)?;
                    let mut node = self.anchors[&id].0.clone();
                    // Point at the alias, so errors in the copy name the place it is used.
                    node.span = span;
                    self.finish(node, 0)?;
                }
                Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
            }
        }
        let root = self
            .root
            .unwrap_or_else(|| Node::null(Span::new(self.lines.map(1), 1, 1)));
        Ok((root, self.aliases))
    }

    fn span_of(&self, span: &YamlSpan) -> Span {
        let (start, end) = (span.start, span.end);
        let len = if end.line() == start.line() && end.col() > start.col() {
            end.col() - start.col()
        } else {
            usize::MAX / 2
        };
        Span::new(self.lines.map(start.line()), start.col() + 1, len)
    }

    /// Counts `n` nodes added by an alias; refuses when aliases have added more than
    /// [`MAX_NODES`] and more than the document's own nodes so far.
    fn add(&mut self, n: usize, span: Span) -> Result<(), Diagnostic> {
        self.added = self.added.saturating_add(n);
        let limit = MAX_NODES.max(self.own);
        if self.added > limit {
            return Err(self
                .source
                .error(
                    span,
                    format!(
                        "the YAML expands to more than {limit} values beyond the {} written in it",
                        self.own
                    ),
                )
                .with_label("expansion limit reached here")
                .help("aliases (`*name`) that repeat large anchors multiply the document; a spec never needs this many copies"));
        }
        Ok(())
    }

    /// Places a finished node in its parent (or makes it the root) and records its anchor.
    fn finish(&mut self, node: Node, anchor: usize) -> Result<(), Diagnostic> {
        if anchor != 0 {
            let size = node.size();
            self.anchors.insert(anchor, (node.clone(), size));
        }
        match self.stack.last_mut() {
            None => {
                self.root.get_or_insert(node);
            }
            Some(Frame::Seq { .. }) => self.items.push(node),
            Some(Frame::Map { key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => self.pairs.push((k, node)),
            },
        }
        Ok(())
    }

    /// Applies merge keys (`<<: *base`, explicit keys win) and refuses duplicate keys.
    fn merge_and_check(&self, entries: Vec<(Node, Node)>) -> Result<Vec<(Node, Node)>, Diagnostic> {
        self.refuse_duplicates(&entries)?;
        if !entries.iter().any(|(key, _)| is_merge_key(key)) {
            return Ok(entries);
        }
        let mut own: Vec<(Node, Node)> = Vec::with_capacity(entries.len());
        let mut merged: Vec<(Node, Node)> = Vec::new();
        for (key, value) in entries {
            if is_merge_key(&key) {
                let sources = match value.kind {
                    NodeKind::Map(m) => vec![m],
                    NodeKind::Seq(items) => {
                        let mut maps = Vec::new();
                        for item in items {
                            match item.kind {
                                NodeKind::Map(m) => maps.push(m),
                                _ => {
                                    return Err(self.source.error(
                                        item.span,
                                        "a merge key (`<<`) takes mappings only",
                                    ))
                                }
                            }
                        }
                        maps
                    }
                    _ => {
                        return Err(self
                            .source
                            .error(
                                value.span,
                                "a merge key (`<<`) takes a mapping or a list of mappings",
                            )
                            .help("write `<<: *anchor` where the anchor names a mapping"))
                    }
                };
                merged.extend(sources.into_iter().flatten());
                continue;
            }
            own.push((key, value));
        }
        let mut taken: HashSet<String> = own
            .iter()
            .filter_map(|(key, _)| key.as_scalar().map(str::to_owned))
            .collect();
        for (key, value) in merged {
            let fresh = match key.as_scalar() {
                Some(text) => taken.insert(text.to_owned()),
                None => true,
            };
            if fresh {
                own.push((key, value));
            }
        }
        Ok(own)
    }

    /// [`refuse_duplicates`] in this builder's source.
    fn refuse_duplicates(&self, entries: &[(Node, Node)]) -> Result<(), Diagnostic> {
        refuse_duplicates(self.source, entries)
    }
}

/// Refuses a mapping whose explicit scalar keys (merge keys aside) repeat, pointing at the
/// second one. A short mapping is compared pairwise; a long one through a set of borrowed keys
/// (no copy of any key).
fn refuse_duplicates(source: &SourceFile, entries: &[(Node, Node)]) -> Result<(), Diagnostic> {
    fn key_of((key, _): &(Node, Node)) -> Option<(&str, Span)> {
        match is_merge_key(key) {
            true => None,
            false => key.as_scalar().map(|text| (text, key.span)),
        }
    }
    let keys = entries.iter().filter_map(key_of);
    let duplicate = if entries.len() <= 16 {
        entries.iter().enumerate().find_map(|(i, entry)| {
            let (text, span) = key_of(entry)?;
            entries[..i]
                .iter()
                .filter_map(key_of)
                .find(|(earlier, _)| *earlier == text)
                .map(|(_, first)| (text, span, first))
        })
    } else {
        let mut seen: HashMap<&str, Span> = map_with_capacity(entries.len());
        keys.into_iter()
            .find_map(|(text, span)| match seen.entry(text) {
                std::collections::hash_map::Entry::Occupied(first) => {
                    Some((text, span, *first.get()))
                }
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(span);
                    None
                }
            })
    };
    match duplicate {
        None => Ok(()),
        Some((text, span, first)) => Err(source
            .error(span, format!("duplicate key `{text}`"))
            .note(format!("first defined at {}", source.position(first)))
            .help("YAML mapping keys must be unique; remove or rename one")),
    }
}

/// A plain `<<` key: YAML's merge key.
fn is_merge_key(key: &Node) -> bool {
    matches!(&key.kind, NodeKind::Scalar { text, plain: true } if &**text == "<<")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Node, Diagnostic> {
        parse(&SourceFile::new("t.yaml", text))
    }

    #[test]
    fn nodes_carry_positions() {
        let node = parse_str("a:\n  b: [x, 'y']\n").unwrap();
        let NodeKind::Map(entries) = &node.kind else {
            panic!("not a map")
        };
        let NodeKind::Map(inner) = &entries[0].1.kind else {
            panic!("not a map")
        };
        let NodeKind::Seq(items) = &inner[0].1.kind else {
            panic!("not a seq")
        };
        assert_eq!(items[0].span, Span::new(2, 7, 1));
        assert_eq!(items[1].span.col, 10);
        assert_eq!(
            items[1].kind,
            NodeKind::Scalar {
                text: "y".into(),
                plain: false
            }
        );
    }

    #[test]
    fn merge_keys_fill_in_and_explicit_keys_win() {
        let node = parse_str("base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\n").unwrap();
        let NodeKind::Map(entries) = &node.kind else {
            panic!()
        };
        let NodeKind::Map(used) = &entries[1].1.kind else {
            panic!()
        };
        let pairs: Vec<_> = used
            .iter()
            .map(|(k, v)| (k.as_scalar().unwrap(), v.as_scalar().unwrap()))
            .collect();
        assert_eq!(pairs, vec![("y", "3"), ("x", "1")]);
    }

    #[test]
    fn alias_bombs_stop_at_the_limit() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = parse_str(&text).unwrap_err();
        assert!(err.message.contains("expands to more than"), "{err}");
        assert!(err.location.is_some());
    }

    #[test]
    fn duplicate_keys_and_deep_nesting_are_refused() {
        let err = parse_str("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.location.unwrap().line, 3);
        // A long mapping is checked through a set: the same answer.
        let mut long: String = (0..40).map(|i| format!("k{i}: {i}\n")).collect();
        long.push_str("k7: again\nk9: again\n");
        let err = parse_str(&long).unwrap_err();
        assert_eq!(err.message, "duplicate key `k7`");
        assert_eq!(err.location.unwrap().line, 41);
        assert!(parse_str("<<: {a: 1}\n<<: {b: 2}\na: 3\n").is_ok());
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(parse_str(&deep).unwrap_err().message.contains("deeper"));
    }
}
