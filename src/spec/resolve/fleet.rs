//! Fleets: an exec target with `for_each` stands for one target per value, typically one per
//! host of a host list kept next to the spec (`for_each: { host: { file: hosts.txt } }`).
//!
//! This module reads and checks the values (inline or from a file inside the spec's directory,
//! one value per line, `#` comments) and expands the target into one [`Target`] per combination,
//! each rendered by the resolver with the values as template variables. Every file it reads is
//! remembered ([`ValuesFiles`]) so the spec's fingerprint covers the host list too: a saved plan
//! goes stale when the host list changes.
//!
//! Not here: rendering and checking each expanded target (`targets`), running the fleet
//! (`apply` runs exec targets with bounded parallelism).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::Resolver;
use crate::bounded_read::read_regular;
use crate::model::{ExecTarget, Target, TargetValues};
use crate::spec::de::Spanned;
use crate::spec::template::{Vars, RESERVED};
use crate::spec::validate::Finding;

/// A target's `for_each`: values by variable name.
type ForEach = BTreeMap<String, TargetValues>;

/// The exec target and its `for_each` when `target` stands for a fleet; `None` for a target
/// that stands for itself.
pub(super) fn fleet_of(target: &Target) -> Option<(&ExecTarget, &ForEach)> {
    match target {
        Target::Exec(e) => e.for_each.as_ref().map(|for_each| (e, for_each)),
        _ => None,
    }
}

/// At most this many targets from one `for_each` of a target.
pub const MAX_FLEET: usize = 100_000;

/// Largest values file read.
pub const MAX_VALUES_FILE: u64 = 16 * 1024 * 1024;

/// Reads a `for_each` values file by its path relative to the spec's directory (checked by the
/// loader to stay inside it): for a spec read from somewhere else than a directory on disk,
/// such as a git commit.
pub type ValuesReader<'r> = &'r (dyn Fn(&str) -> Result<Vec<u8>, String> + Sync);

/// The values files read while resolving, by the path written in the spec: their bytes, for the
/// spec's fingerprint. Shared with the loader, which outlives the resolver.
pub type ValuesFiles = Arc<Mutex<BTreeMap<String, Vec<u8>>>>;

impl Resolver<'_> {
    /// The targets the exec target `exec` (written at `target`) stands for with its
    /// `for_each`: one per combination of values, with the variables to render each with.
    /// `None` after reporting an error.
    pub(super) fn fleet(
        &mut self,
        target: &Spanned<Target>,
        exec: &ExecTarget,
        for_each: &ForEach,
        vars: &Vars,
    ) -> Option<Vec<(Spanned<Target>, Vars)>> {
        let span = self
            .root
            .find_field(target.span, "for_each")
            .unwrap_or(target.span);
        if for_each.is_empty() {
            self.emit(
                Finding::error("`for_each` names no variable")
                    .help("write e.g. `for_each: { host: { file: hosts.txt } }`"),
                span,
            );
            return None;
        }
        let mut lists: Vec<(String, Vec<String>)> = Vec::new();
        for (name, values) in for_each {
            if let Some(f) = check_name(name, vars) {
                self.emit(f, span);
                return None;
            }
            let values = match values {
                TargetValues::List(list) => check_values(list.iter().map(|v| (None, v.as_str())))
                    .map_err(|m| Finding::error(format!("`for_each.{name}`: {m}"))),
                TargetValues::File(f) => self.values_file(&f.file).and_then(|text| {
                    let lines = text.lines().enumerate().filter_map(|(i, line)| {
                        let line = line.split('#').next().unwrap_or("").trim();
                        (!line.is_empty()).then_some((Some(i + 1), line))
                    });
                    check_values(lines).map_err(|m| Finding::error(format!("`{}`: {m}", f.file)))
                }),
            };
            match values {
                Ok(v) if v.is_empty() => {
                    self.emit(
                        Finding::error(format!("`for_each.{name}` has no values"))
                            .help("a fleet with no hosts would leave its agents without the token; list at least one, or remove the target"),
                        span,
                    );
                    return None;
                }
                Ok(v) => lists.push((name.clone(), v)),
                Err(f) => {
                    self.emit(f, span);
                    return None;
                }
            }
        }
        let total = lists
            .iter()
            .try_fold(1usize, |n, (_, v)| n.checked_mul(v.len()));
        if total.is_none_or(|n| n > MAX_FLEET) {
            self.emit(
                Finding::error(format!(
                    "`for_each` expands this target to more than {MAX_FLEET} targets"
                ))
                .help("split the fleet into several targets"),
                span,
            );
            return None;
        }
        let base = Spanned {
            span: target.span,
            value: Target::Exec(ExecTarget {
                for_each: None,
                ..exec.clone()
            }),
        };
        let mut combos: Vec<Vars> = vec![vars.clone()];
        for (name, values) in &lists {
            combos = combos
                .into_iter()
                .flat_map(|v| {
                    values.iter().map(move |value| {
                        let mut v = v.clone();
                        v.insert(name.clone(), value.clone());
                        v
                    })
                })
                .collect();
        }
        Some(combos.into_iter().map(|v| (base.clone(), v)).collect())
    }

    /// The text of a values file: relative to the spec's directory, inside it, a regular file.
    fn values_file(&mut self, written: &str) -> Result<String, Finding> {
        if let Some(bytes) = lock(&self.values_files).get(written) {
            return Ok(String::from_utf8_lossy(bytes).into_owned());
        }
        if let Some(read) = self.values_reader {
            check_relative(written)?;
            let bytes = read(written)
                .map_err(|e| Finding::error(format!("cannot read `{written}`: {e}")))?;
            if bytes.len() as u64 > MAX_VALUES_FILE {
                return Err(too_large(written));
            }
            let text = String::from_utf8(bytes.clone())
                .map_err(|_| Finding::error(format!("`{written}` is not UTF-8 text")))?;
            lock(&self.values_files).insert(written.to_owned(), bytes);
            return Ok(text);
        }
        let Some(base) = self.base_dir.clone() else {
            return Err(Finding::error(format!(
                "`{written}` cannot be read: this spec was not loaded from a directory"
            ))
            .help("load the spec from a file on disk so the values file next to it can be read"));
        };
        let bytes = read_inside(&base, written)?;
        let text = String::from_utf8(bytes.clone())
            .map_err(|_| Finding::error(format!("`{written}` is not UTF-8 text")))?;
        lock(&self.values_files).insert(written.to_owned(), bytes);
        Ok(text)
    }
}

/// The values files read so far (a resolver working on a slice of the entries shares them).
pub fn lock(files: &ValuesFiles) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
    files
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A `for_each` variable name: an identifier that does not hide another variable.
fn check_name(name: &str, vars: &Vars) -> Option<Finding> {
    let ident = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ident {
        return Some(
            Finding::error(format!("`{name}` is not a valid `for_each` variable name"))
                .help("use letters, digits and `_`, e.g. `host`"),
        );
    }
    if RESERVED.contains(&name) || vars.contains_key(name) {
        return Some(
            Finding::error(format!("`for_each` variable `{name}` is already defined")).help(
                format!(
                    "choose another name; `{}` and the token's own `for_each` variables are taken",
                    RESERVED.join("`, `")
                ),
            ),
        );
    }
    None
}

/// The values, checked: no whitespace or control characters (a value becomes one argument), no
/// leading `-` (a host named `-oProxyCommand=…` would be read as an option), no repeats.
fn check_values<'a>(
    values: impl Iterator<Item = (Option<usize>, &'a str)>,
) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut seen: BTreeMap<&str, Option<usize>> = BTreeMap::new();
    let at = |line: Option<usize>| line.map(|l| format!("line {l}: ")).unwrap_or_default();
    for (line, value) in values {
        if value.is_empty() {
            return Err(format!("{}a value is empty", at(line)));
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "{}`{}` contains whitespace or control characters; write one value per line",
                at(line),
                value.escape_debug()
            ));
        }
        if value.starts_with('-') {
            return Err(format!(
                "{}`{value}` starts with `-`, which a command would read as an option",
                at(line)
            ));
        }
        if let Some(first) = seen.insert(value, line) {
            let first = first
                .map(|l| format!(" (first on line {l})"))
                .unwrap_or_default();
            return Err(format!("{}`{value}` is listed twice{first}", at(line)));
        }
        out.push(value.to_owned());
    }
    Ok(out)
}

fn outside(written: &str) -> Finding {
    Finding::error(format!("`{written}` is outside the spec's directory"))
        .help("keep the values file next to the spec, e.g. `hosts.txt`")
}

fn too_large(written: &str) -> Finding {
    Finding::error(format!(
        "`{written}` is larger than {} MiB",
        MAX_VALUES_FILE / 1024 / 1024
    ))
}

/// A values file path as written: not empty, relative, never stepping up with `..`.
fn check_relative(written: &str) -> Result<(), Finding> {
    let rel = Path::new(written);
    if written.trim().is_empty() {
        return Err(Finding::error("the values file path is empty"));
    }
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(outside(written));
    }
    Ok(())
}

/// Read `written`, a path relative to `base` that must stay inside it and name a regular file.
fn read_inside(base: &Path, written: &str) -> Result<Vec<u8>, Finding> {
    check_relative(written)?;
    let rel = Path::new(written);
    let base_real = std::fs::canonicalize(base).map_err(|e| {
        Finding::error(format!(
            "cannot read the spec's directory `{}`: {e}",
            base.display()
        ))
    })?;
    let path: PathBuf = base_real.join(rel);
    let real = std::fs::canonicalize(&path)
        .map_err(|e| Finding::error(format!("cannot read `{written}`: {e}")))?;
    if !real.starts_with(&base_real) {
        return Err(outside(written));
    }
    // Checked on the opened file, so a FIFO swapped in after the checks above cannot hang it.
    read_regular(&real, MAX_VALUES_FILE)
        .map_err(|e| Finding::error(format!("cannot read `{written}`: {e}")))
}
