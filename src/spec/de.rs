//! A serde deserializer over the located YAML tree, and [`Spanned`] values that remember where
//! they were written.
//!
//! Every error carries the span of the innermost node it is about: a wrong type points at the
//! value, an unknown field at its key, a missing field at the mapping that lacks it. Scalars follow
//! the YAML 1.2 core schema (`true`, `12`, `~`); a quoted scalar is always a string. Where a string
//! is expected a plain number is accepted as its text (`name: 2024`), but `null` and booleans are
//! not, so `token_env: true` is an error rather than the string "true".
//!
//! This module knows serde and the tree, not the spec: the spec types live in [`super::types`].

use std::fmt;
use std::marker::PhantomData;

use schemars::JsonSchema;
use serde::de::Error as _;
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, VariantAccess, Visitor,
};
use serde::Deserialize;

use super::diagnostic::Span;
use super::yaml::{Node, NodeKind};

/// A deserialization error and the node it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeError {
    pub message: String,
    pub span: Option<Span>,
    pub help: Option<String>,
}

impl DeError {
    fn or_span(mut self, span: Span) -> DeError {
        self.span.get_or_insert(span);
        self
    }

    fn with_help(mut self, help: String) -> DeError {
        self.help = Some(help);
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            span: None,
            help: None,
        }
    }

    fn invalid_type(unexp: Unexpected, exp: &dyn de::Expected) -> Self {
        DeError::custom(format_args!(
            "expected {}, found {}",
            expected(exp),
            describe(&unexp)
        ))
    }

    fn invalid_value(unexp: Unexpected, exp: &dyn de::Expected) -> Self {
        DeError::custom(format_args!(
            "invalid value {}, expected {}",
            describe(&unexp),
            expected(exp)
        ))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let err = DeError::custom(format_args!("unknown field `{field}`"));
        match closest(field, expected) {
            Some(near) => err.with_help(format!("did you mean `{near}`?")),
            None if expected.is_empty() => err.with_help("no fields are allowed here".into()),
            None => err.with_help(format!("expected one of {}", list(expected))),
        }
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let err = DeError::custom(format_args!("unknown value `{variant}`"));
        match closest(variant, expected) {
            Some(near) => err.with_help(format!("did you mean `{near}`?")),
            None => err.with_help(format!("expected one of {}", list(expected))),
        }
    }

    fn missing_field(field: &'static str) -> Self {
        DeError::custom(format_args!("missing field `{field}`"))
    }
}

fn describe(unexp: &Unexpected) -> String {
    match unexp {
        Unexpected::Unit => "an empty value".into(),
        Unexpected::Seq => "a list".into(),
        Unexpected::Map => "a mapping".into(),
        Unexpected::Str(s) => format!("the string `{s}`"),
        Unexpected::Bool(b) => format!("the boolean `{b}`"),
        Unexpected::Signed(n) => format!("the number `{n}`"),
        Unexpected::Unsigned(n) => format!("the number `{n}`"),
        Unexpected::Float(n) => format!("the number `{n}`"),
        other => other.to_string(),
    }
}

/// serde's names for what it expected, in the words of a YAML file.
fn expected(exp: &dyn de::Expected) -> String {
    let text = exp.to_string();
    match text.as_str() {
        "a sequence" => "a list".into(),
        "a map" => "a mapping".into(),
        "u8" | "u16" | "u32" | "u64" | "i8" | "i16" | "i32" | "i64" => "a whole number".into(),
        "a boolean" => "`true` or `false`".into(),
        _ => match text.strip_prefix("struct ") {
            Some(name) => format!("a mapping ({name})"),
            None => text,
        },
    }
}

fn list(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn closest<'a>(wanted: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(c, wanted), *c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Deserializes a `T` from a node of the tree.
pub fn from_node<'a, T: Deserialize<'a>>(node: &'a Node) -> Result<T, DeError> {
    T::deserialize(De { node })
}

/// A value and the place it was written, for errors found after deserialization. Equality and
/// ordering look at the value only. Only the tree deserializer of this module can produce one.
#[derive(Debug, Clone)]
pub struct Spanned<T> {
    pub span: Span,
    pub value: T,
}

impl<T> Spanned<T> {
    pub fn new(span: Span, value: T) -> Spanned<T> {
        Spanned { span, value }
    }
}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: PartialEq> PartialEq for Spanned<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T: Eq> Eq for Spanned<T> {}

impl<T: PartialOrd> PartialOrd for Spanned<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        self.value.partial_cmp(&other.value)
    }
}

impl<T: Ord> Ord for Spanned<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.value.cmp(&other.value)
    }
}

impl<T: JsonSchema> JsonSchema for Spanned<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

const SPANNED: &str = "$__tokensmith_spanned";
const SPANNED_FIELDS: &[&str] = &["$line", "$col", "$len", "$value"];

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SpannedVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for SpannedVisitor<T> {
            type Value = Spanned<T>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a located value")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Spanned<T>, A::Error> {
                let mut pos = [0usize; 3];
                for slot in &mut pos {
                    let _: Option<String> = map.next_key()?;
                    *slot = map.next_value::<u64>()? as usize;
                }
                let _: Option<String> = map.next_key()?;
                let value = map.next_value::<T>()?;
                Ok(Spanned::new(Span::new(pos[0], pos[1], pos[2]), value))
            }
        }

        deserializer.deserialize_struct(SPANNED, SPANNED_FIELDS, SpannedVisitor(PhantomData))
    }
}

/// How a plain scalar reads under the YAML 1.2 core schema.
enum Plain<'a> {
    Null,
    Bool(bool),
    Signed(i64),
    Unsigned(u64),
    Float(f64),
    Str(&'a str),
}

fn resolve(text: &str, plain: bool) -> Plain<'_> {
    if !plain {
        return Plain::Str(text);
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Plain::Null,
        "true" | "True" | "TRUE" => return Plain::Bool(true),
        "false" | "False" | "FALSE" => return Plain::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Plain::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Plain::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Plain::Float(f64::NAN),
        _ => {}
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = text.parse::<i64>() {
            return Plain::Signed(n);
        }
        if let Ok(n) = text.trim_start_matches('+').parse::<u64>() {
            return Plain::Unsigned(n);
        }
        return Plain::Str(text);
    }
    if let Some(hex) = text.strip_prefix("0x") {
        if let Ok(n) = u64::from_str_radix(hex, 16) {
            return Plain::Unsigned(n);
        }
    }
    if let Some(oct) = text.strip_prefix("0o") {
        if let Ok(n) = u64::from_str_radix(oct, 8) {
            return Plain::Unsigned(n);
        }
    }
    let float_chars = text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if float_chars && text.bytes().any(|b| b.is_ascii_digit()) {
        if let Ok(f) = text.parse::<f64>() {
            return Plain::Float(f);
        }
    }
    Plain::Str(text)
}

#[derive(Clone, Copy)]
struct De<'a> {
    node: &'a Node,
}

impl<'a> De<'a> {
    fn unexpected(&self) -> Unexpected<'a> {
        match &self.node.kind {
            NodeKind::Scalar { text, plain } => match resolve(text, *plain) {
                Plain::Null => Unexpected::Unit,
                Plain::Bool(b) => Unexpected::Bool(b),
                Plain::Signed(n) => Unexpected::Signed(n),
                Plain::Unsigned(n) => Unexpected::Unsigned(n),
                Plain::Float(f) => Unexpected::Float(f),
                Plain::Str(s) => Unexpected::Str(s),
            },
            NodeKind::Seq(_) => Unexpected::Seq,
            NodeKind::Map(_) => Unexpected::Map,
        }
    }

    fn wrong<V: Visitor<'a>>(&self, visitor: &V) -> DeError {
        de::Error::invalid_type(self.unexpected(), visitor)
    }

    fn plain(&self) -> Option<Plain<'a>> {
        match &self.node.kind {
            NodeKind::Scalar { text, plain } => Some(resolve(text, *plain)),
            _ => None,
        }
    }

    fn spanned<T>(&self, result: Result<T, DeError>) -> Result<T, DeError> {
        result.map_err(|e| e.or_span(self.node.span))
    }
}

macro_rules! integer {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
            let result = match self.plain() {
                Some(Plain::Signed(n)) => visitor.visit_i64(n),
                Some(Plain::Unsigned(n)) => visitor.visit_u64(n),
                _ => Err(self.wrong(&visitor)),
            };
            self.spanned(result)
        }
    )*};
}

impl<'a> Deserializer<'a> for De<'a> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match &self.node.kind {
            NodeKind::Scalar { text, plain } => match resolve(text, *plain) {
                Plain::Null => visitor.visit_unit(),
                Plain::Bool(b) => visitor.visit_bool(b),
                Plain::Signed(n) => visitor.visit_i64(n),
                Plain::Unsigned(n) => visitor.visit_u64(n),
                Plain::Float(f) => visitor.visit_f64(f),
                Plain::Str(s) => visitor.visit_borrowed_str(s),
            },
            NodeKind::Seq(items) => visitor.visit_seq(Seq {
                items: items.iter(),
            }),
            NodeKind::Map(entries) => visitor.visit_map(Map {
                entries: entries.iter(),
                value: None,
            }),
        };
        self.spanned(result)
    }

    fn deserialize_bool<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match self.plain() {
            Some(Plain::Bool(b)) => visitor.visit_bool(b),
            _ => Err(self.wrong(&visitor)),
        };
        self.spanned(result)
    }

    integer!(deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_u8
        deserialize_u16 deserialize_u32 deserialize_u64);

    fn deserialize_f32<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match self.plain() {
            Some(Plain::Signed(n)) => visitor.visit_f64(n as f64),
            Some(Plain::Unsigned(n)) => visitor.visit_f64(n as f64),
            Some(Plain::Float(f)) => visitor.visit_f64(f),
            _ => Err(self.wrong(&visitor)),
        };
        self.spanned(result)
    }

    fn deserialize_char<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match (&self.node.kind, self.plain()) {
            (_, Some(Plain::Null | Plain::Bool(_))) | (NodeKind::Seq(_) | NodeKind::Map(_), _) => {
                Err(self.wrong(&visitor))
            }
            (NodeKind::Scalar { text, .. }, _) => visitor.visit_borrowed_str(text),
        };
        self.spanned(result)
    }

    fn deserialize_string<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = if self.node.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        };
        self.spanned(result)
    }

    fn deserialize_unit<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = if self.node.is_null() {
            visitor.visit_unit()
        } else {
            Err(self.wrong(&visitor))
        };
        self.spanned(result)
    }

    fn deserialize_unit_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let result = visitor.visit_newtype_struct(self);
        self.spanned(result)
    }

    fn deserialize_seq<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match &self.node.kind {
            NodeKind::Seq(items) => visitor.visit_seq(Seq {
                items: items.iter(),
            }),
            _ => Err(self.wrong(&visitor)),
        };
        self.spanned(result)
    }

    fn deserialize_tuple<V: Visitor<'a>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match &self.node.kind {
            NodeKind::Map(entries) => visitor.visit_map(Map {
                entries: entries.iter(),
                value: None,
            }),
            _ => Err(self.wrong(&visitor)),
        };
        self.spanned(result)
    }

    fn deserialize_struct<V: Visitor<'a>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if name == SPANNED {
            return visitor.visit_map(SpannedMap {
                node: self.node,
                step: 0,
            });
        }
        let _ = fields;
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'a>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let result = match &self.node.kind {
            NodeKind::Scalar { .. } if !self.node.is_null() => visitor.visit_enum(Enum {
                tag: self.node,
                value: None,
            }),
            NodeKind::Map(entries) if entries.len() == 1 => visitor.visit_enum(Enum {
                tag: &entries[0].0,
                value: Some(&entries[0].1),
            }),
            _ => Err(DeError::custom(format!(
                "expected one of {}, found {}",
                list(variants),
                describe(&self.unexpected())
            ))
            .with_help(
                "write the choice as a string (`delete`) or as a mapping with one key (`disable: {…}`)"
                    .into(),
            )),
        };
        self.spanned(result)
    }

    fn deserialize_identifier<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

struct Seq<'a> {
    items: std::slice::Iter<'a, Node>,
}

impl<'a> SeqAccess<'a> for Seq<'a> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'a>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            Some(node) => seed.deserialize(De { node }).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Map<'a> {
    entries: std::slice::Iter<'a, (Node, Node)>,
    value: Option<(&'a Node, &'a Node)>,
}

impl<'a> MapAccess<'a> for Map<'a> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'a>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.entries.next() {
            Some((key, value)) => {
                self.value = Some((key, value));
                let de = De { node: key };
                de.spanned(seed.deserialize(de)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'a>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        match self.value.take() {
            Some((key, node)) => {
                let de = De { node };
                // An error about a whole block (a missing field, a wrong kind of block) points at
                // the key that introduces it, which reads better than the block's first line.
                de.spanned(seed.deserialize(de)).map_err(|mut e| {
                    let block = !matches!(node.kind, NodeKind::Scalar { .. });
                    if block && e.span == Some(node.span) && key.span.line != node.span.line {
                        e.span = Some(key.span);
                    }
                    e
                })
            }
            None => Err(DeError::custom("a mapping value was read twice")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// Feeds a [`Spanned`] its position and then its value.
struct SpannedMap<'a> {
    node: &'a Node,
    step: usize,
}

impl<'a> MapAccess<'a> for SpannedMap<'a> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'a>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match SPANNED_FIELDS.get(self.step) {
            Some(field) => seed.deserialize(field.into_deserializer()).map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'a>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let span = self.node.span;
        let step = self.step;
        self.step += 1;
        let n = match step {
            0 => span.line,
            1 => span.col,
            2 => span.len,
            _ => return seed.deserialize(De { node: self.node }),
        };
        seed.deserialize((n as u64).into_deserializer())
    }
}

struct Enum<'a> {
    tag: &'a Node,
    value: Option<&'a Node>,
}

impl<'a> EnumAccess<'a> for Enum<'a> {
    type Error = DeError;
    type Variant = Variant<'a>;

    fn variant_seed<S: DeserializeSeed<'a>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Variant<'a>), DeError> {
        let de = De { node: self.tag };
        let variant = de.spanned(seed.deserialize(de))?;
        Ok((
            variant,
            Variant {
                tag: self.tag,
                value: self.value,
            },
        ))
    }
}

struct Variant<'a> {
    tag: &'a Node,
    value: Option<&'a Node>,
}

impl Variant<'_> {
    fn name(&self) -> &str {
        self.tag.as_scalar().unwrap_or("?")
    }
}

impl<'a> VariantAccess<'a> for Variant<'a> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        match self.value {
            Some(v) if !v.is_null() => Err(DeError::custom(format!(
                "`{}` takes no settings",
                self.name()
            ))
            .with_help(format!("write just `{}`", self.name()))
            .or_span(v.span)),
            _ => Ok(()),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'a>>(self, seed: T) -> Result<T::Value, DeError> {
        match self.value {
            Some(node) => seed.deserialize(De { node }),
            None => Err(DeError::custom(format!("`{}` needs settings", self.name()))
                .with_help(format!("write `{}: {{ … }}`", self.name()))
                .or_span(self.tag.span)),
        }
    }

    fn tuple_variant<V: Visitor<'a>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Some(node) => De { node }.deserialize_seq(visitor),
            None => {
                Err(DeError::custom(format!("`{}` needs a list", self.name()))
                    .or_span(self.tag.span))
            }
        }
    }

    fn struct_variant<V: Visitor<'a>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.value {
            Some(node) => De { node }.deserialize_struct("", fields, visitor),
            None => Err(DeError::custom(format!("`{}` needs settings", self.name()))
                .with_help(format!(
                    "write `{}: {{ {} }}`",
                    self.name(),
                    fields
                        .iter()
                        .map(|f| format!("{f}: …"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .or_span(self.tag.span)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::spec::diagnostic::SourceFile;
    use crate::spec::yaml::parse;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        name: Spanned<String>,
        #[serde(default)]
        tags: Vec<Spanned<String>>,
        count: Option<u32>,
        #[serde(default)]
        map: BTreeMap<Spanned<String>, bool>,
    }

    fn load<T: for<'a> Deserialize<'a>>(text: &str) -> Result<T, DeError> {
        let node = parse(&SourceFile::new("t.yaml", text)).unwrap();
        from_node(&node)
    }

    #[test]
    fn values_remember_their_place() {
        let s: Sample = load("name: x\ntags:\n  - 'a'\n  - b\ncount: 3\nmap: {k: true}\n").unwrap();
        assert_eq!(s.name.span, Span::new(1, 7, 1));
        assert_eq!(s.tags[1].span.line, 4);
        assert_eq!(s.tags[0].value, "a");
        assert_eq!(s.count, Some(3));
        assert_eq!(s.map.keys().next().unwrap().span.col, 7);
    }

    #[test]
    fn errors_point_at_the_innermost_node() {
        let e = load::<Sample>("name: x\ncount: many\n").unwrap_err();
        assert_eq!(e.span, Some(Span::new(2, 8, 4)));
        assert!(e.message.contains("found the string `many`"), "{e}");

        let e = load::<Sample>("name: x\ncont: 3\n").unwrap_err();
        assert_eq!(e.span.map(|s| (s.line, s.col)), Some((2, 1)));
        assert_eq!(e.help.as_deref(), Some("did you mean `count`?"));

        let e = load::<Sample>("tags: []\n").unwrap_err();
        assert_eq!(e.message, "missing field `name`");

        let e = load::<Sample>("name: true\n").unwrap_err();
        assert!(e.message.contains("boolean"), "{e}");

        let e = load::<Sample>("name: x\ntags: [a, [b]]\n").unwrap_err();
        assert_eq!(e.span.map(|s| (s.line, s.col)), Some((2, 11)));
    }

    #[test]
    fn plain_numbers_are_strings_where_strings_are_expected() {
        let s: Sample = load("name: 2024\n").unwrap();
        assert_eq!(s.name.value, "2024");
    }
}
