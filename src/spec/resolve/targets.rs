//! Delivery targets of one token instance: every string field rendered with the instance's
//! variables (`{{ env }}`, `for_each` values; `{{ secret }}` kept literally in exec arguments),
//! then checked. A template error points at the very string that failed. File paths are
//! normalised (`./out//x` is `out/x`, so one file has one identity) and, for a spec on disk,
//! checked against the filesystem ([`place`]).

use crate::deliver::file::place;
use crate::model::target::{DynakubeTenantTarget, WorkloadRef};
use crate::model::{ExecTarget, FileTarget, KubernetesSecretTarget, Target};

use super::fleet::fleet_of;
use super::Resolver;
use crate::spec::de::Spanned;
use crate::spec::diagnostic::Span;
use crate::spec::template::{TemplateError, Vars};
use crate::spec::validate::{self, Finding};

impl Resolver<'_> {
    /// Renders every string of a target; on failure reports at the failing string.
    fn target(&mut self, target: &Spanned<Target>, vars: &Vars) -> Option<Target> {
        let mut failed: Option<(String, TemplateError)> = None;
        let templates = &self.templates;
        let mut r = |s: &String, extra: bool| -> String {
            if failed.is_some() {
                return s.clone();
            }
            let result = if extra {
                let mut v = vars.clone();
                v.insert("secret".into(), "{{ secret }}".into());
                templates.render(s, &v)
            } else {
                templates.render(s, vars)
            };
            result.unwrap_or_else(|e| {
                failed = Some((s.clone(), e));
                s.clone()
            })
        };
        let rendered = match &target.value {
            Target::KubernetesSecret(k) => Target::KubernetesSecret(KubernetesSecretTarget {
                context: k.context.as_ref().map(|c| r(c, false)),
                namespace: r(&k.namespace, false),
                name: r(&k.name, false),
                key: r(&k.key, false),
                touch_dynakube: k.touch_dynakube.as_ref().map(|c| r(c, false)),
                restart: k.restart.iter().map(|c| r(c, false)).collect(),
            }),
            Target::DynakubeTenant(d) => Target::DynakubeTenant(DynakubeTenantTarget {
                context: d.context.as_ref().map(|c| r(c, false)),
                namespace: r(&d.namespace, false),
                dynakube: r(&d.dynakube, false),
                restart: d
                    .restart
                    .iter()
                    .map(|w| WorkloadRef {
                        kind: r(&w.kind, false),
                        name: r(&w.name, false),
                    })
                    .collect(),
            }),
            Target::File(f) => Target::File(FileTarget {
                path: place::normalize(&r(&f.path, false)),
                format: f.format,
                key: f.key.as_ref().map(|c| r(c, false)),
                section: f.section.as_ref().map(|c| r(c, false)),
                mode: f.mode.clone(),
                restart: f
                    .restart
                    .as_ref()
                    .map(|c| c.iter().map(|a| r(a, false)).collect()),
            }),
            Target::Exec(e) => Target::Exec(ExecTarget {
                command: e.command.iter().map(|c| r(c, true)).collect(),
                secret_env: e.secret_env.as_ref().map(|c| r(c, false)),
                secret_stdin: e.secret_stdin,
                secret_in_argv: e.secret_in_argv,
                read_command: e
                    .read_command
                    .as_ref()
                    .map(|c| c.iter().map(|a| r(a, false)).collect()),
                verify_command: e
                    .verify_command
                    .as_ref()
                    .map(|c| c.iter().map(|a| r(a, false)).collect()),
                timeout: e.timeout,
                env: e.env.clone(),
                for_each: None,
            }),
        };
        if let Some((text, e)) = failed {
            let span = self
                .root
                .find_scalar(target.span, &text)
                .unwrap_or(target.span);
            self.emit(Finding::from(e), span);
            return None;
        }
        let mut findings = validate::check_target(&rendered);
        if let (Target::File(f), Some(rules)) = (&rendered, &self.confinement) {
            if !f.path.contains('\0') {
                if let Err(reason) = rules.check_cached(&f.path, &mut self.resolved_dirs) {
                    findings.push(Finding::error(reason).field("path"));
                }
            }
        }
        if let (Target::Exec(e), Some(spec)) = (&rendered, &self.spec_file) {
            findings.extend(missing_programs(e, &crate::spec::spec_dir(spec)));
        }
        for f in findings {
            let span = f
                .field
                .and_then(|field| self.root.find_field(target.span, field))
                .unwrap_or(target.span);
            self.emit(f, span);
        }
        Some(rendered)
    }

    /// The targets of an access token: as [`Self::targets`], refusing `dynakube_tenant` (the
    /// operator fetches only the tenant token itself).
    pub(super) fn access_token_targets(
        &mut self,
        list: &[Spanned<Target>],
        vars: &Vars,
    ) -> (Vec<Target>, Vec<Span>) {
        for t in list {
            if matches!(t.value, Target::DynakubeTenant(_)) {
                self.emit(
                    Finding::error("a `dynakube_tenant` target receives only the tenant token")
                        .help("list it under `tenant_token: … activegates/oneagents`; deliver access tokens with `kubernetes_secret`"),
                    t.span,
                );
            }
        }
        let (targets, spans) = self.targets(list, vars);
        if !targets
            .iter()
            .any(|t| matches!(t, Target::DynakubeTenant(_)))
        {
            return (targets, spans);
        }
        targets
            .into_iter()
            .zip(spans)
            .filter(|(t, _)| !matches!(t, Target::DynakubeTenant(_)))
            .unzip()
    }

    pub(super) fn targets(
        &mut self,
        list: &[Spanned<Target>],
        vars: &Vars,
    ) -> (Vec<Target>, Vec<Span>) {
        let mut targets = Vec::with_capacity(list.len());
        let mut spans = Vec::with_capacity(list.len());
        for t in list {
            let Some((exec, for_each)) = fleet_of(&t.value) else {
                // One target, rendered with the token's own variables: no copy of either.
                if let Some(r) = self.target(t, vars) {
                    targets.push(r);
                    spans.push(t.span);
                }
                continue;
            };
            let Some(fleet) = self.fleet(t, exec, for_each, vars) else {
                continue;
            };
            let expanded = fleet.len() > 1;
            let mut seen = std::collections::BTreeSet::new();
            for (one, vars) in fleet {
                let Some(r) = self.target(&one, &vars) else {
                    break;
                };
                if expanded && !seen.insert(r.address()) {
                    let span = self.root.find_field(t.span, "for_each").unwrap_or(t.span);
                    self.emit(
                        Finding::error(format!("`for_each` gives the same target `{}` twice", r.address()))
                            .help("use the `for_each` variable in `command`, e.g. `[ssh, \"{{ host }}\", …]`"),
                        span,
                    );
                    break;
                }
                targets.push(r);
                spans.push(t.span);
            }
        }
        (targets, spans)
    }
}

/// Warnings for exec programs given as a path (absolute, or relative to the spec's directory)
/// that does not exist here. A warning, not an error: `validate` often runs on another machine
/// (CI) than `apply` (the host the program lives on), and the delivery fails if the program is
/// still missing there. Bare names (`vault`) are looked up on `PATH` only when the command
/// runs: CI rarely has the tools of the target hosts, and a warning on every run would be
/// noise.
fn missing_programs(e: &ExecTarget, spec_dir: &std::path::Path) -> Vec<Finding> {
    let programs = std::iter::once(("command", e.command.first())).chain([
        (
            "read_command",
            e.read_command.as_ref().and_then(|c| c.first()),
        ),
        (
            "verify_command",
            e.verify_command.as_ref().and_then(|c| c.first()),
        ),
    ]);
    let mut out = Vec::new();
    for (field, program) in programs {
        let Some(program) = program.filter(|p| !p.trim().is_empty()) else {
            continue;
        };
        if program.contains('/') && !spec_dir.join(program).is_file() {
            out.push(
                Finding::warning(format!(
                    "the program `{program}` does not exist on this machine"
                ))
                .field(field)
                .help("check the name; if it exists only where `apply` runs, ignore this"),
            );
        }
    }
    out
}
