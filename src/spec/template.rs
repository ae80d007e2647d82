//! Templates in token keys, names and target fields (`data-ingest-{{ cluster }}`), and the
//! `for_each` expansion that feeds them.
//!
//! Rendering uses minijinja with strict undefined variables: a misspelt `{{ clustr }}` is an error
//! naming the variables that exist, never an empty string. Only `{{ expression }}` is allowed;
//! statements (`{% for %}`) and comments are refused, so a spec cannot loop. A spec comes from a
//! pull request, so one template is bounded in memory and time: no functions, a few string
//! filters, no operator that repeats or joins strings, at most [`MAX_RENDERED_LEN`] bytes out
//! ([`Templates::new`] says why). This module renders strings; deciding which strings are
//! templates and where an error points is the resolver's job.

use std::collections::BTreeMap;
use std::io;

use minijinja::machinery::{tokenize, Token, WhitespaceConfig};
use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior};

use super::de::Spanned;
use super::types::ForEach;

/// At most this many tokens from one `for_each`.
pub const MAX_COMBINATIONS: usize = 1_000;

/// At most this many tokens in a spec: every `for_each` combination of every entry, in each of
/// its environments. Far above real use (the benchmarks validate 50,000), and far below what
/// takes a PR check minutes and gigabytes (2,000 entries of 990 combinations each made 1,980,000
/// tokens in 82 s and 2.2 GB).
pub const MAX_TOKENS: usize = 100_000;

/// Longest rendered value, and longest value a template filter takes or makes.
pub const MAX_RENDERED_LEN: usize = 4_096;

/// At most this many minijinja instructions in one rendering. A variable with a filter or two
/// takes a handful; a template needs more than a few dozen only to waste time.
pub const FUEL: u64 = 256;

/// The filters a template may use: on strings, each refusing a value longer than
/// [`MAX_RENDERED_LEN`] bytes (and `replace` a result longer than that).
pub const FILTERS: &[&str] = &["default", "lower", "replace", "trim", "upper"];

/// The variables names that `for_each` cannot use, because the resolver provides them.
pub const RESERVED: &[&str] = &["env", "secret"];

/// Template variables: name → value.
pub type Vars = BTreeMap<String, String>;

/// Why a template did not render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub message: String,
    pub help: Option<String>,
}

/// Renders spec templates.
pub struct Templates {
    env: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        Templates::new()
    }
}

impl Templates {
    /// The environment templates render in.
    ///
    /// A template is read from a pull request, and a line of it must not take the check's memory
    /// or time. minijinja's own limits are far above that: a repeated string (`"x" * n`) may be
    /// 100 MB, `range` makes 100,000 items, `join`, `replace` and `indent` have no limit, and
    /// the 4 KiB limit on the result was checked only after all of it had been built (a
    /// 150-character path took 3 GB). What a key, a name or a path needs is a variable, perhaps
    /// through a string filter, with text around it; so:
    ///
    /// - the environment starts empty: no functions (`range`, `dict`, `namespace`) and only the
    ///   [`FILTERS`], each refusing a value longer than [`MAX_RENDERED_LEN`] (`replace`, which
    ///   can lengthen it, a result longer than that too);
    /// - `refused_operator` refuses, before anything renders, the operators that make a
    ///   string longer than their operands: `*` (repetition), `~` and `+` (joining; a chain of
    ///   them over a long `for_each` value grows as the square of its length). Text between
    ///   templates joins values instead: `{{ a }}-{{ b }}`;
    /// - the output goes through `Capped`, which stops the rendering at the first byte past
    ///   [`MAX_RENDERED_LEN`] (`{{ v }}{{ v }}…` over a long value, or a literal list);
    /// - [`FUEL`] bounds the instructions, and so the time (a filter chain on a long value).
    ///
    /// What remains makes numbers and booleans, slices, and the spec's own text and variables,
    /// so no value is larger than the spec itself and a rendering ends after [`FUEL`] steps.
    pub fn new() -> Templates {
        let mut env = Environment::empty();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(FUEL));
        env.add_filter("default", minijinja::filters::default);
        env.add_filter("lower", |v: &str| {
            Ok::<_, Error>(bounded(v)?.to_lowercase())
        });
        env.add_filter("upper", |v: &str| {
            Ok::<_, Error>(bounded(v)?.to_uppercase())
        });
        env.add_filter("trim", |v: &str, chars: Option<&str>| {
            let v = bounded(v)?;
            Ok::<_, Error>(match chars {
                Some(chars) => v.trim_matches(|c| chars.contains(c)).to_owned(),
                None => v.trim().to_owned(),
            })
        });
        env.add_filter("replace", replace);
        Templates { env }
    }

    /// Whether a string contains template syntax at all.
    pub fn is_template(text: &str) -> bool {
        text.contains("{{") || text.contains("{%") || text.contains("{#")
    }

    /// Renders `text` with `vars`; strings without template syntax are returned unchanged.
    pub fn render(&self, text: &str, vars: &Vars) -> Result<String, TemplateError> {
        if !Templates::is_template(text) {
            return Ok(text.to_owned());
        }
        if text.contains("{%") || text.contains("{#") {
            return Err(TemplateError {
                message: "only `{{ expression }}` templates are allowed here".into(),
                help: Some("statements (`{% … %}`) and comments (`{# … #}`) are not supported; use `for_each` to repeat an entry".into()),
            });
        }
        if let Some(op) = refused_operator(text) {
            return Err(TemplateError {
                message: format!("`{op}` is not allowed in a template"),
                help: Some(
                    "a template does not repeat or join strings (`*`, `~`, `+`); put text between templates instead, e.g. `{{ a }}-{{ b }}`"
                        .into(),
                ),
            });
        }
        let mut out = Capped::default();
        let rendered = self
            .env
            .template_from_str(text)
            .and_then(|t| t.render_captured_to(vars, &mut out));
        if out.exceeded {
            return Err(TemplateError {
                message: format!("the template renders to more than {MAX_RENDERED_LEN} bytes"),
                help: None,
            });
        }
        rendered.map_err(|e| match e.kind() {
            ErrorKind::UndefinedError => self.undefined(text, vars),
            ErrorKind::OutOfFuel => TemplateError {
                message: format!("the template takes more than {FUEL} steps to render"),
                help: Some(
                    "a template is a variable with a filter or two, e.g. `{{ cluster | lower }}`"
                        .into(),
                ),
            },
            kind => TemplateError {
                message: format!(
                    "template error: {}",
                    e.detail().unwrap_or("the template is invalid")
                ),
                help: Some(
                    if matches!(kind, ErrorKind::UnknownFilter | ErrorKind::UnknownFunction) {
                        format!(
                            "templates have no functions, and the filters are {}",
                            FILTERS
                                .iter()
                                .map(|f| format!("`{f}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    } else {
                        "a template looks like `{{ cluster }}`".into()
                    },
                ),
            },
        })?;
        String::from_utf8(out.buf).map_err(|_| TemplateError {
            message: "the template renders to invalid UTF-8".into(),
            help: None,
        })
    }

    fn undefined(&self, text: &str, vars: &Vars) -> TemplateError {
        let missing: Vec<String> = self
            .env
            .template_from_str(text)
            .map(|t| {
                let mut names: Vec<String> = t
                    .undeclared_variables(false)
                    .into_iter()
                    .filter(|name| !vars.contains_key(name))
                    .collect();
                names.sort();
                names
            })
            .unwrap_or_default();
        let defined = if vars.is_empty() {
            "no variables are defined here".to_owned()
        } else {
            format!(
                "defined here: {}",
                vars.keys()
                    .filter(|k| k.as_str() != "secret")
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        match missing.as_slice() {
            [] => TemplateError {
                message: "the template uses an undefined value".into(),
                help: Some(defined),
            },
            [one] => TemplateError {
                message: format!("undefined variable `{one}` in template"),
                help: Some(defined),
            },
            many => TemplateError {
                message: format!(
                    "undefined variables in template: {}",
                    many.iter()
                        .map(|m| format!("`{m}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                help: Some(defined),
            },
        }
    }
}

/// The first operator in `text`, read by minijinja's own lexer, that may make a string longer
/// than its operands (see [`Templates::new`]); `None` when there is none. Anything not known to
/// be harmless counts: an operator a later minijinja adds is refused until it is looked at. A
/// template the lexer cannot read is left to the parser, which refuses it with its own message.
fn refused_operator(text: &str) -> Option<String> {
    // The default syntax (a unit struct unless minijinja's `custom_syntax` is on).
    let syntax: SyntaxConfig = Default::default();
    for token in tokenize(text, false, syntax, WhitespaceConfig::default()) {
        let Ok((token, _)) = token else {
            return None;
        };
        match token {
            Token::TemplateData(_)
            | Token::VariableStart
            | Token::VariableEnd
            | Token::Ident(_)
            | Token::Str(_)
            | Token::String(_)
            | Token::Int(_)
            | Token::Int128(_)
            | Token::Float(_)
            | Token::Dot
            | Token::Comma
            | Token::Colon
            | Token::Assign
            | Token::Pipe
            | Token::ParenOpen
            | Token::ParenClose
            | Token::BracketOpen
            | Token::BracketClose
            | Token::BraceOpen
            | Token::BraceClose
            // Numbers and comparisons: fixed-size results.
            | Token::Minus
            | Token::Div
            | Token::FloorDiv
            | Token::Mod
            | Token::Pow
            | Token::Eq
            | Token::Ne
            | Token::Gt
            | Token::Gte
            | Token::Lt
            | Token::Lte => {}
            Token::Plus => return Some("+".into()),
            Token::Mul => return Some("*".into()),
            Token::Tilde => return Some("~".into()),
            other => return Some(other.to_string()),
        }
    }
    None
}

/// `value` if it is at most [`MAX_RENDERED_LEN`] bytes long: what a filter takes.
fn bounded(value: &str) -> Result<&str, Error> {
    if value.len() > MAX_RENDERED_LEN {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("a filter takes at most {MAX_RENDERED_LEN} bytes"),
        ));
    }
    Ok(value)
}

/// The `replace` filter, refusing a result longer than [`MAX_RENDERED_LEN`] before making it.
fn replace(value: &str, from: &str, to: &str) -> Result<String, Error> {
    let (value, from, to) = (bounded(value)?, bounded(from)?, bounded(to)?);
    // An empty `from` matches between every two characters and at both ends.
    let count = if from.is_empty() {
        value.chars().count() + 1
    } else {
        value.matches(from).count()
    };
    let len = value.len() - count * from.len() + count * to.len();
    if len > MAX_RENDERED_LEN {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("`replace` would make {len} bytes, more than {MAX_RENDERED_LEN}"),
        ));
    }
    Ok(value.replace(from, to))
}

/// Where a rendering writes: refuses the first write past [`MAX_RENDERED_LEN`], which stops the
/// rendering, and remembers that it did.
#[derive(Default)]
struct Capped {
    buf: Vec<u8>,
    exceeded: bool,
}

impl io::Write for Capped {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.buf.len() + bytes.len() > MAX_RENDERED_LEN {
            self.exceeded = true;
            return Err(io::Error::other("the rendered value is too long"));
        }
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Every combination of `for_each` values, variables in name order; one empty combination when
/// there is no `for_each`. Refuses more than [`MAX_COMBINATIONS`].
pub fn combinations(for_each: Option<&ForEach>) -> Result<Vec<Vars>, String> {
    let mut out = vec![Vars::new()];
    let Some(for_each) = for_each else {
        return Ok(out);
    };
    for (name, values) in for_each {
        let mut next = Vec::with_capacity(out.len().saturating_mul(values.len()));
        for base in &out {
            for value in values {
                let mut vars = base.clone();
                vars.insert(name.value.clone(), value.value.clone());
                next.push(vars);
                if next.len() > MAX_COMBINATIONS {
                    return Err(format!(
                        "`for_each` expands to more than {MAX_COMBINATIONS} tokens"
                    ));
                }
            }
        }
        out = next;
    }
    Ok(out)
}

/// How many combinations [`combinations`] makes of `for_each`, counted without making them: 1
/// without `for_each`, saturating at `usize::MAX`.
pub fn combination_count(for_each: Option<&ForEach>) -> usize {
    for_each.map_or(1, |fe| {
        fe.values()
            .fold(1, |n: usize, values| n.saturating_mul(values.len()))
    })
}

/// Checks a `for_each` variable name: an identifier, not reserved.
pub fn check_variable_name(name: &Spanned<String>) -> Result<(), String> {
    let valid = name
        .value
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name
            .value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "`{}` is not a valid variable name; use letters, digits and `_`",
            name.value
        ));
    }
    if RESERVED.contains(&name.value.as_str()) {
        return Err(format!(
            "`{}` is provided by tokensmith and cannot be a `for_each` variable",
            name.value
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::diagnostic::Span;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn renders_and_refuses_undefined() {
        let t = Templates::new();
        let v = vars(&[("cluster", "eu-1"), ("env", "prod")]);
        assert_eq!(t.render("ingest-{{ cluster }}", &v).unwrap(), "ingest-eu-1");
        assert_eq!(t.render("plain", &v).unwrap(), "plain");
        let err = t.render("ingest-{{ clustr }}", &v).unwrap_err();
        assert_eq!(err.message, "undefined variable `clustr` in template");
        assert_eq!(err.help.unwrap(), "defined here: `cluster`, `env`");
        assert!(t.render("{% for x in y %}{% endfor %}", &v).is_err());
        assert!(t
            .render("{{ oops", &v)
            .unwrap_err()
            .message
            .starts_with("template error"));
        assert!(t.render("{{ 'x' * 100000 }}", &v).is_err());
    }

    /// Templates that once built gigabytes before the length limit was checked, or that would
    /// with another builtin: each is refused, with the reason, without building its value.
    #[test]
    fn hostile_templates_are_refused_before_they_grow() {
        let t = Templates::new();
        let long = "y".repeat(4_000);
        let v = vars(&[("cluster", "eu-1"), ("long", &long)]);
        let refused = |text: &str, expected: &str| {
            let err = t.render(text, &v).unwrap_err();
            assert!(
                err.message.contains(expected),
                "{text}: `{}` does not say `{expected}`",
                err.message
            );
        };
        // Cheap ones first: without these limits they render, and the test fails cleanly.
        refused("{{ cluster * 2 }}", "`*` is not allowed");
        refused("{{ cluster | indent(3) }}", "filter indent is unknown");
        refused(
            r#"out/{{ range(100000) | map("string") | join("x"*100000) }}"#,
            "`*` is not allowed",
        );
        refused(r#"{{ ("x"*100000)*100000 }}"#, "`*` is not allowed");
        refused("{{ long ~ long ~ long }}", "`~` is not allowed");
        refused("{{ cluster + cluster }}", "`+` is not allowed");
        // `}}` inside a string does not end the expression for the lexer that runs it.
        refused(r#"{{ "}}" ~ cluster }}"#, "`~` is not allowed");
        refused(
            "{% for i in range(9) %}{{ i }}{% endfor %}",
            "only `{{ expression }}`",
        );
        refused(
            "{% macro f(n) %}{{ f(n) ~ f(n) }}{% endmacro %}{{ f(1) }}",
            "only `{{ expression }}`",
        );
        // No functions at all, and only the listed filters.
        refused("{{ range(100000) | join(',') }}", "range is unknown");
        refused("{{ lipsum(1000) }}", "lipsum is unknown");
        refused(
            "{{ cluster | indent(100000000) }}",
            "filter indent is unknown",
        );
        refused(
            "{{ cluster | center(100000000) }}",
            "filter center is unknown",
        );
        refused("{{ cluster | join(long) }}", "filter join is unknown");
        refused("{{ cluster.replace('e', long) }}", "template error");
        // Filters refuse long values and results.
        refused(
            "{{ 'xxxxxxxxxx' | replace('x', 'yyyyyyyyyy') | replace('y', 'zzzzzzzzzz') | replace('z', 'wwwwwwwwww') }}",
            "`replace` would make 10000 bytes",
        );
        refused("{{ long | replace('', long) }}", "`replace` would make");
        refused("{{ (long ~ long) | lower }}", "`~` is not allowed");
        refused(
            &format!("{{{{ '{}' | lower }}}}", "x".repeat(5_000)),
            "at most 4096 bytes",
        );
        // The output stops at the limit, whatever writes it.
        refused("{{ long }}{{ long }}", "more than 4096 bytes");
        refused("{{ [long, long, long, long] }}", "more than 4096 bytes");
        refused(&"{{ long }}".repeat(1_000), "more than 4096 bytes");
        // Time: a long chain of filters runs out of fuel.
        refused(
            &format!("{{{{ long{} }}}}", " | lower".repeat(300)),
            "more than 256 steps",
        );
        // Deep nesting is the parser's to refuse, not a stack overflow.
        let deep = format!("{{{{ {}1{} }}}}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(t.render(&deep, &v).is_err());
    }

    #[test]
    fn the_template_language_a_spec_needs_still_renders() {
        let t = Templates::new();
        let v = vars(&[("cluster", "EU.1"), ("env", "prod")]);
        for (text, out) in [
            ("ingest-{{ cluster }}-{{ env }}", "ingest-EU.1-prod"),
            ("{{ cluster | lower | replace('.', '-') }}", "eu-1"),
            ("{{ cluster | upper }}", "EU.1"),
            ("{{ ' x ' | trim }}/{{ '--x--' | trim('-') }}", "x/x"),
            ("{{ missing | default('none') }}", "none"),
            ("{{ cluster[:2] }}{{ cluster[-1] }}", "EU1"),
            ("{{ 'a' if env == 'prod' else 'b' }}", "a"),
            (r#"{{ "}}" }}"#, "}}"),
            ("out/*.env-{{ env }}", "out/*.env-prod"),
        ] {
            assert_eq!(t.render(text, &v).unwrap(), out, "{text}");
        }
        let exactly = "x".repeat(MAX_RENDERED_LEN);
        let v = vars(&[("x", &exactly)]);
        assert_eq!(t.render("{{ x }}", &v).unwrap(), exactly);
        assert_eq!(
            t.render("{{ x | upper }}", &v).unwrap().len(),
            MAX_RENDERED_LEN
        );
    }

    #[test]
    fn combinations_are_a_cartesian_product() {
        let s = |v: &str| Spanned::new(Span::default(), v.to_owned());
        let mut fe = ForEach::new();
        fe.insert(s("a"), vec![s("1"), s("2")]);
        fe.insert(s("b"), vec![s("x"), s("y"), s("z")]);
        let all = combinations(Some(&fe)).unwrap();
        assert_eq!(all.len(), 6);
        assert_eq!(all[0], vars(&[("a", "1"), ("b", "x")]));
        assert_eq!(combinations(None).unwrap(), vec![Vars::new()]);
    }
}
