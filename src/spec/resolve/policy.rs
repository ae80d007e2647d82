//! The policy of a token: its own fields over `defaults` over the built-in defaults, and the
//! checks that need the merged result (rotation against expiry, the ActiveGate expiry limit).

use crate::model::{Policy, Revoke, Rotation, SpecDuration, TokenKind};

use super::{
    Resolver, DEFAULT_EXPIRES_IN, DEFAULT_GRACE, DEFAULT_ROTATE_BEFORE, MAX_ACTIVEGATE_EXPIRY,
};
use crate::spec::diagnostic::Span;
use crate::spec::types::PolicySpec;

impl Resolver<'_> {
    /// Conflicts within one policy level (one token or `defaults`).
    pub(super) fn check_level(&mut self, p: &PolicySpec) {
        if let (Some(_), Some(never)) = (&p.expires_in, &p.never_expires) {
            if never.value {
                self.error(
                    never.span,
                    "`never_expires` and `expires_in` contradict each other",
                    Some("keep one of them".into()),
                );
            }
        }
        if let (Some(_), Some(every)) = (&p.rotate_before, &p.rotate_every) {
            self.error(
                every.span,
                "set either `rotate_before` or `rotate_every`, not both",
                Some("`rotate_before` rotates relative to expiry, `rotate_every` by age".into()),
            );
        }
        for (d, field) in [
            (&p.expires_in, "expires_in"),
            (&p.rotate_before, "rotate_before"),
            (&p.rotate_every, "rotate_every"),
        ] {
            if let Some(d) = d {
                self.positive(d, field);
            }
        }
        if let Some(Revoke::Disable { delete_after }) = p.revoke.as_ref().map(|r| r.value) {
            if delete_after.as_secs() < 0 {
                self.error(
                    p.revoke.as_ref().map(|r| r.span).unwrap_or_default(),
                    "`delete_after` cannot be negative",
                    None,
                );
            }
        }
    }

    /// Merges a token's policy over the defaults and checks the result.
    pub(super) fn policy(
        &mut self,
        own: &PolicySpec,
        defaults: &PolicySpec,
        kind: TokenKind,
        key_span: Span,
    ) -> Policy {
        self.check_level(own);
        // Expiry: the token's own setting wins, then the defaults, then 90d.
        let pick_expiry = |p: &PolicySpec| -> Option<(Option<SpecDuration>, Span)> {
            if let Some(n) = p.never_expires.as_ref().filter(|n| n.value) {
                return Some((None, n.span));
            }
            p.expires_in.as_ref().map(|e| (Some(e.value), e.span))
        };
        let (expires_in, expiry_span, expiry_own) = match pick_expiry(own) {
            Some((e, s)) => (e, s, true),
            None => match pick_expiry(defaults) {
                Some((e, s)) => (e, s, false),
                None => (Some(DEFAULT_EXPIRES_IN), key_span, false),
            },
        };
        // Rotation: the level that sets either field decides the mode.
        let pick_rotation = |p: &PolicySpec| -> Option<(Rotation, Span)> {
            if let Some(b) = &p.rotate_before {
                return Some((Rotation::BeforeExpiry(b.value), b.span));
            }
            p.rotate_every
                .as_ref()
                .map(|e| (Rotation::Every(e.value), e.span))
        };
        let (mut rotation, rotation_span, rotation_own) = match pick_rotation(own) {
            Some((r, s)) => (r, s, true),
            None => match pick_rotation(defaults) {
                Some((r, s)) => (r, s, false),
                None => (
                    Rotation::BeforeExpiry(DEFAULT_ROTATE_BEFORE),
                    key_span,
                    false,
                ),
            },
        };
        match (expires_in, rotation) {
            (None, Rotation::BeforeExpiry(_)) => {
                if rotation_own {
                    self.error(
                        rotation_span,
                        "`rotate_before` needs an expiry, but this token never expires",
                        Some("use `rotate_every` to rotate by age, or set `expires_in`".into()),
                    );
                }
                rotation = Rotation::Never;
            }
            (Some(exp), Rotation::BeforeExpiry(before)) if before >= exp => {
                let (span, whose) = if rotation_own || !expiry_own {
                    (rotation_span, "")
                } else {
                    (expiry_span, " (from the defaults)")
                };
                self.error(
                    span,
                    format!("`rotate_before` {before}{whose} is not shorter than `expires_in` {exp}"),
                    Some("the successor must be created before the token expires; make `rotate_before` smaller than `expires_in`".into()),
                );
            }
            (Some(exp), Rotation::Every(every)) if every >= exp => {
                let span = if rotation_own || !expiry_own {
                    rotation_span
                } else {
                    expiry_span
                };
                self.error(
                    span,
                    format!("`rotate_every` {every} is not shorter than `expires_in` {exp}"),
                    Some("the token would expire before its successor is made; make `rotate_every` smaller than `expires_in`".into()),
                );
            }
            _ => {}
        }
        if kind == TokenKind::ActivegateToken {
            if let Some(r) = own.revoke.as_ref().filter(|r| r.value != Revoke::Delete) {
                let d = self
                    .source
                    .warning(r.span, "ActiveGate tokens cannot be disabled; the old token is deleted when its grace ends")
                    .help("write `revoke: delete` to say so");
                self.diags.push(d);
            }
            match expires_in {
                None => self.error(
                    expiry_span,
                    "ActiveGate tokens must expire within 2 years",
                    Some(format!(
                        "set `expires_in` to at most {MAX_ACTIVEGATE_EXPIRY}"
                    )),
                ),
                Some(e) if e > MAX_ACTIVEGATE_EXPIRY => self.error(
                    expiry_span,
                    format!("ActiveGate token expiry {e} is more than 2 years"),
                    Some(format!("Dynatrace accepts at most {MAX_ACTIVEGATE_EXPIRY}")),
                ),
                _ => {}
            }
        }
        let grace_set = own.grace.as_ref().or(defaults.grace.as_ref());
        if let (Some(g), Some(exp)) = (grace_set, expires_in) {
            if g.value >= exp {
                self.error(
                    g.span,
                    format!("`grace` {} is not shorter than the token's lifetime `expires_in` {exp}", g.value),
                    Some("the old token would expire before its grace ends; make `grace` shorter than `expires_in`".into()),
                );
            }
        }
        let grace = grace_set.map(|g| g.value).unwrap_or(DEFAULT_GRACE);
        let revoke = own
            .revoke
            .as_ref()
            .or(defaults.revoke.as_ref())
            .map(|r| r.value)
            .unwrap_or_default();
        let verify_usage = own
            .verify_usage
            .as_ref()
            .or(defaults.verify_usage.as_ref())
            .is_some_and(|v| v.value);
        Policy {
            expires_in,
            rotation,
            grace,
            revoke,
            verify_usage,
        }
    }
}
