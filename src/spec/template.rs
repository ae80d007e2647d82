//! Templates in token keys, names and target fields (`data-ingest-{{ cluster }}`), and the
//! `for_each` expansion that feeds them.
//!
//! Rendering uses minijinja with strict undefined variables: a misspelt `{{ clustr }}` is an error
//! naming the variables that exist, never an empty string. Only `{{ expression }}` is allowed;
//! statements (`{% for %}`) and comments are refused, so a spec cannot loop, and rendered values
//! are bounded in length. This module renders strings; deciding which strings are templates and
//! where an error points is the resolver's job.

use std::collections::BTreeMap;

use minijinja::{Environment, ErrorKind, UndefinedBehavior};

use super::de::Spanned;
use super::types::ForEach;

/// At most this many tokens from one `for_each`.
pub const MAX_COMBINATIONS: usize = 1_000;

/// Longest rendered value.
pub const MAX_RENDERED_LEN: usize = 4_096;

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
    pub fn new() -> Templates {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
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
        let rendered = self.env.render_str(text, vars).map_err(|e| {
            if e.kind() == ErrorKind::UndefinedError {
                self.undefined(text, vars)
            } else {
                TemplateError {
                    message: format!(
                        "template error: {}",
                        e.detail().unwrap_or("the template is invalid")
                    ),
                    help: Some("a template looks like `{{ cluster }}`".into()),
                }
            }
        })?;
        if rendered.len() > MAX_RENDERED_LEN {
            return Err(TemplateError {
                message: format!(
                    "the template renders to {} bytes, more than {MAX_RENDERED_LEN}",
                    rendered.len()
                ),
                help: None,
            });
        }
        Ok(rendered)
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
