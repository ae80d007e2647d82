//! What the planner and the drift report know about one desired token: its live generations,
//! which one is current, what each target holds, and how the current generation differs from
//! the spec. Pure facts, no decisions about steps.
//!
//! Timestamps, since there is no state file:
//! - The current generation is the newest one that is enabled, not expired, and whose value is
//!   obtainable: some readable target holds it, or the token has no readable target at all.
//!   A newer generation held by no readable target is "never delivered" (an interrupted apply):
//!   Dynatrace never shows a secret twice, so its value is lost.
//! - Lifetime is `expires - created` of the live token; it differs from `expires_in` when the
//!   two are more than [`EXPIRY_TOLERANCE`] apart (the applier's clock and Dynatrace's differ).

use std::collections::{BTreeSet, HashMap};

use time::{Duration, OffsetDateTime};

use super::types::{Change, Reason};
use crate::model::token::{CLASSIC_PURGE_AFTER_EXPIRY, MAX_NAME_LEN};
use crate::model::{
    DesiredToken, Holder, Home, LiveSnapshot, LiveToken, Marker, Rotation, ScopeSet, Target,
    TargetAddress, TargetSnapshot, TokenDetails, TokenId, TokenKey, TokenKind,
};

/// How far a live lifetime may be from `expires_in` before it counts as changed.
pub const EXPIRY_TOLERANCE: Duration = Duration::hours(1);

/// The live tokens of a home and kind.
pub(crate) fn live_tokens<'a>(
    live: &'a LiveSnapshot,
    home: &Home,
    kind: TokenKind,
) -> &'a [LiveToken] {
    match home {
        Home::Environment(e) => match live.environments.get(e) {
            Some(env) => match kind {
                TokenKind::ActivegateToken => &env.activegate_tokens,
                _ => &env.api_tokens,
            },
            None => &[],
        },
        Home::Account(a) => match live.accounts.get(a) {
            Some(acc) => &acc.platform_tokens,
            None => &[],
        },
    }
}

/// "Now" for a home: the environment's or account's server clock when known, else the
/// planner's.
pub(crate) fn now_for(live: &LiveSnapshot, home: &Home, now: OffsetDateTime) -> OffsetDateTime {
    let server = match home {
        Home::Environment(e) => live.environments.get(e).and_then(|e| e.server_time),
        Home::Account(a) => live.accounts.get(a).and_then(|a| a.server_time),
    };
    server.unwrap_or(now)
}

/// A short label for a home: the environment name, or `account:<name>`.
pub fn home_label(home: &Home) -> String {
    match home {
        Home::Environment(e) => e.to_string(),
        Home::Account(a) => format!("account:{a}"),
    }
}

/// What one target holds, relative to nothing in particular.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TargetState<'a> {
    Holds(&'a TokenId),
    /// Readable and holding nothing we can identify.
    Empty,
    WriteOnly,
    Unreadable,
}

impl TargetState<'_> {
    pub fn readable(self) -> bool {
        matches!(self, TargetState::Holds(_) | TargetState::Empty)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct TargetFact<'a> {
    pub target: &'a Target,
    pub address: TargetAddress,
    pub state: TargetState<'a>,
    /// When the token the target holds expires, as its record says (records written before
    /// tokensmith recorded expiries say nothing).
    pub recorded_expiry: Option<OffsetDateTime>,
}

pub(crate) fn target_facts<'a>(
    targets: &'a [Target],
    snapshot: &'a TargetSnapshot,
) -> Vec<TargetFact<'a>> {
    // The validator rejects a target named twice; should one slip through, it is planned once.
    let mut seen = std::collections::HashSet::new();
    targets
        .iter()
        .filter(|t| seen.insert(t.address()))
        .map(|target| {
            let address = target.address();
            let holder = snapshot.holders.get(&address);
            let recorded_expiry = match holder {
                Some(Holder::Token { expires, .. }) => *expires,
                _ => None,
            };
            let state = match holder {
                Some(Holder::Token { id, .. }) => TargetState::Holds(id),
                Some(
                    Holder::Absent
                    | Holder::Unknown
                    | Holder::TenantToken { .. }
                    | Holder::RestartOwed { .. },
                ) => TargetState::Empty,
                Some(Holder::WriteOnly) => TargetState::WriteOnly,
                Some(Holder::Unreadable { .. }) | None => TargetState::Unreadable,
            };
            TargetFact {
                target,
                address,
                state,
                recorded_expiry,
            }
        })
        .collect()
}

/// Everything known about one desired token.
#[derive(Debug, Clone)]
pub(crate) struct TokenFacts<'a> {
    pub desired: &'a DesiredToken,
    pub now: OffsetDateTime,
    /// Live generations with this key, oldest first.
    pub generations: Vec<(Marker, &'a LiveToken)>,
    pub current: Option<&'a LiveToken>,
    /// Enabled, unexpired generations newer than the current one that no readable target holds.
    pub never_delivered: Vec<&'a LiveToken>,
    /// Every other generation (older than current, disabled or expired).
    pub superseded: Vec<&'a LiveToken>,
    pub targets: Vec<TargetFact<'a>>,
    /// When there is no current generation: why.
    pub absent_reason: Option<Reason>,
    /// The unmanaged token named by `adopt`, when it is live and no generation exists yet.
    pub adoptable: Option<&'a LiveToken>,
    /// The management token, when its name carries this key's marker (renamed outside
    /// tokensmith): never one of the generations, so never revoked, narrowed or retired.
    pub management_token: Option<(Marker, &'a LiveToken)>,
    /// Differences of the current generation that can be changed in place.
    pub name_change: Option<Change<String>>,
    pub scope_change: Option<Change<ScopeSet>>,
    /// A difference that needs a new generation.
    pub replace: Option<Reason>,
    /// A scheduled rotation that is due.
    pub rotate: Option<Reason>,
}

impl<'a> TokenFacts<'a> {
    /// The highest generation number in use for this key, the management token's marker
    /// included (a new generation never repeats its marker).
    pub fn max_generation(&self) -> u32 {
        self.generations
            .iter()
            .chain(&self.management_token)
            .map(|(m, _)| m.generation.0)
            .max()
            .unwrap_or(0)
    }

    pub fn has_readable_target(&self) -> bool {
        self.targets.iter().any(|t| t.state.readable())
    }

    pub fn held_by_readable(&self, id: &TokenId) -> bool {
        self.targets
            .iter()
            .any(|t| matches!(t.state, TargetState::Holds(h) if h == id))
    }

    /// A readable target that holds `id`, to copy the value from.
    pub fn copy_source(&self, id: &TokenId) -> Option<&TargetAddress> {
        self.targets
            .iter()
            .find(|t| matches!(t.state, TargetState::Holds(h) if h == id))
            .map(|t| &t.address)
    }

    /// The full name the current generation should have.
    pub fn wanted_name(&self, generation: crate::model::Generation) -> String {
        Marker::new(self.desired.key.clone(), generation)
            .name_with(&self.desired.display_name, MAX_NAME_LEN)
    }
}

fn usable(t: &LiveToken, now: OffsetDateTime) -> bool {
    t.enabled && t.expires.is_none_or(|e| e > now)
}

/// Live tokens carrying a marker, by home, kind and key, so that each desired token finds its
/// generations without scanning every live token. An environment's management token is set
/// apart even when its name carries a marker (someone renamed it outside tokensmith): it is
/// never a generation, so no plan disables, deletes, narrows or retires it.
pub(crate) struct LiveIndex<'a> {
    by_key: HashMap<IndexKey, Vec<(Marker, &'a LiveToken)>>,
    management: HashMap<IndexKey, (Marker, &'a LiveToken)>,
}

type IndexKey = (Home, TokenKind, TokenKey);

impl<'a> LiveIndex<'a> {
    pub fn new(live: &'a LiveSnapshot) -> Self {
        let mut by_key: HashMap<_, Vec<_>> = HashMap::new();
        let mut management = HashMap::new();
        let mut add = |home: &Home,
                       caller: Option<&TokenId>,
                       tokens: &mut dyn Iterator<Item = &'a LiveToken>| {
            for t in tokens {
                if let Some(m) = Marker::parse_name(&t.name) {
                    let key = (home.clone(), t.kind, m.key.clone());
                    if t.kind == TokenKind::ApiToken && Some(&t.id) == caller {
                        management.insert(key, (m, t));
                    } else {
                        by_key.entry(key).or_default().push((m, t));
                    }
                }
            }
        };
        for (name, env) in &live.environments {
            let home = Home::Environment(name.clone());
            add(
                &home,
                env.caller.as_ref(),
                &mut env.api_tokens.iter().chain(&env.activegate_tokens),
            );
        }
        for (name, account) in &live.accounts {
            add(
                &Home::Account(name.clone()),
                None,
                &mut account.platform_tokens.iter(),
            );
        }
        LiveIndex { by_key, management }
    }

    fn generations(&self, d: &DesiredToken) -> Vec<(Marker, &'a LiveToken)> {
        self.by_key
            .get(&(d.home.clone(), d.kind, d.key.clone()))
            .cloned()
            .unwrap_or_default()
    }

    fn management_token(&self, d: &DesiredToken) -> Option<(Marker, &'a LiveToken)> {
        self.management
            .get(&(d.home.clone(), d.kind, d.key.clone()))
            .cloned()
    }
}

/// Collect the facts of one desired token.
pub(crate) fn analyze<'a>(
    desired: &'a DesiredToken,
    live: &'a LiveSnapshot,
    index: &LiveIndex<'a>,
    snapshot: &'a TargetSnapshot,
    now: OffsetDateTime,
) -> TokenFacts<'a> {
    let now = now_for(live, &desired.home, now);
    let pool = live_tokens(live, &desired.home, desired.kind);
    let mut generations = index.generations(desired);
    generations.sort_by(|(ma, a), (mb, b)| {
        (ma.generation, a.created, &a.id).cmp(&(mb.generation, b.created, &b.id))
    });
    let targets = target_facts(&desired.deliver, snapshot);
    let mut facts = TokenFacts {
        desired,
        now,
        generations,
        current: None,
        never_delivered: Vec::new(),
        superseded: Vec::new(),
        targets,
        absent_reason: None,
        adoptable: None,
        management_token: index.management_token(desired),
        name_change: None,
        scope_change: None,
        replace: None,
        rotate: None,
    };

    // The newest usable generation whose value is obtainable is current; newer usable ones that
    // no readable target holds were never delivered.
    let readable = facts.has_readable_target();
    let mut current_index = None;
    for (i, (_, t)) in facts.generations.iter().enumerate().rev() {
        if !usable(t, now) {
            continue;
        }
        if !readable || facts.held_by_readable(&t.id) {
            current_index = Some(i);
            break;
        }
    }
    let mut never_delivered = Vec::new();
    let mut superseded = Vec::new();
    for (i, (_, t)) in facts.generations.iter().enumerate() {
        match current_index {
            Some(c) if i == c => facts.current = Some(t),
            Some(c) if i > c && usable(t, now) => never_delivered.push(*t),
            None if usable(t, now) => never_delivered.push(*t),
            _ => superseded.push(*t),
        }
    }
    facts.never_delivered = never_delivered;
    facts.superseded = superseded;

    match facts.current {
        None => {
            facts.absent_reason = Some(absent_reason(&facts));
            if facts.generations.is_empty() {
                if let Some(id) = &desired.adopt {
                    facts.adoptable = pool.iter().find(|t| {
                        &t.id == id
                            && t.kind == desired.kind
                            && Marker::parse_name(&t.name).is_none_or(|m| m.key != desired.key)
                    });
                }
            }
        }
        Some(current) => compare(&mut facts, current),
    }
    facts
}

fn absent_reason(facts: &TokenFacts<'_>) -> Reason {
    if let Some((_, newest)) = facts.generations.last() {
        if !newest.enabled {
            return Reason::DisabledOutsideGit;
        }
        if newest.expires.is_some_and(|e| e <= facts.now) {
            return Reason::Expired;
        }
        return Reason::SecretUnavailable;
    }
    // No generation is live. A platform token whose targets still record a classic API token
    // (`dt0c01.`) replaces it: the spec switched the key's kind (see `migrate`).
    if facts.desired.kind == TokenKind::PlatformToken
        && facts.targets.iter().any(
            |t| matches!(t.state, TargetState::Holds(id) if id.as_str().starts_with("dt0c01.")),
        )
    {
        return Reason::MigratedToPlatform;
    }
    if purged_by_dynatrace(facts) {
        return Reason::ExpiredAndPurged;
    }
    // Otherwise, if a target still records a token, it was deleted outside git.
    if facts
        .targets
        .iter()
        .any(|t| matches!(t.state, TargetState::Holds(_)))
    {
        Reason::DeletedOutsideGit
    } else {
        Reason::Missing
    }
}

/// Whether every token the targets record (none of them live) is a classic API token that
/// Dynatrace deleted itself, [`CLASSIC_PURGE_AFTER_EXPIRY`] after it expired: a target records
/// its expiry and that much time has passed since.
///
/// A token whose purge time has not come was deleted by someone (Dynatrace still lists an
/// expired token until then). A token no target records an expiry for (a record written before
/// tokensmith recorded expiries) is taken as deleted outside git: when it expired is not known,
/// and it is not guessed.
fn purged_by_dynatrace(facts: &TokenFacts<'_>) -> bool {
    if facts.desired.kind != TokenKind::ApiToken {
        return false;
    }
    let held: BTreeSet<&TokenId> = facts
        .targets
        .iter()
        .filter_map(|t| match t.state {
            TargetState::Holds(id) => Some(id),
            _ => None,
        })
        .collect();
    let purged = |id: &TokenId| {
        id.as_str().starts_with("dt0c01.")
            && facts.targets.iter().any(|t| {
                matches!(t.state, TargetState::Holds(h) if h == id)
                    && t.recorded_expiry
                        .is_some_and(|e| facts.now >= e + CLASSIC_PURGE_AFTER_EXPIRY)
            })
    };
    !held.is_empty() && held.into_iter().all(purged)
}

fn compare<'a>(facts: &mut TokenFacts<'a>, current: &'a LiveToken) {
    let desired = facts.desired;
    let generation = facts
        .generations
        .iter()
        .find(|(_, t)| t.id == current.id)
        .map(|(m, _)| m.generation)
        .expect("the current token is one of the generations");
    let wanted_name = facts.wanted_name(generation);
    if current.name != wanted_name {
        facts.name_change = Some(Change {
            from: current.name.clone(),
            to: wanted_name,
        });
    }
    if desired.kind != TokenKind::ActivegateToken && current.scopes != desired.scopes {
        facts.scope_change = Some(Change {
            from: current.scopes.clone(),
            to: desired.scopes.clone(),
        });
    }

    // What the API cannot change in place.
    facts.replace = match (&desired.details, desired.kind) {
        (
            TokenDetails::Api {
                personal_access_token,
                ..
            },
            _,
        ) if *personal_access_token != current.personal_access_token => {
            Some(Reason::DetailsChanged)
        }
        (
            TokenDetails::Activegate {
                activegate_type,
                seed,
            },
            _,
        ) if current
            .activegate_type
            .is_some_and(|t| t != *activegate_type)
            || current.seed != *seed =>
        {
            Some(Reason::DetailsChanged)
        }
        // The owner is not compared: the spec names a user or service-user UUID, the API
        // reports an email or `<uuid>@service.sso.dynatrace.com`.
        (TokenDetails::Platform { resources, .. }, _)
            if sorted(resources) != sorted(&current.resources) =>
        {
            Some(Reason::DetailsChanged)
        }
        _ => None,
    };
    if facts.replace.is_none()
        && matches!(
            desired.kind,
            TokenKind::ActivegateToken | TokenKind::PlatformToken
        )
    {
        // Neither ActiveGate nor platform tokens can be renamed; platform scopes are fixed.
        if facts.scope_change.is_some() {
            facts.replace = Some(Reason::ScopesChanged);
        } else if facts.name_change.is_some() {
            facts.replace = Some(Reason::NameChanged);
        }
    }
    if facts.replace.is_none() && lifetime_differs(desired, current) {
        facts.replace = Some(Reason::ExpiryChanged);
    }
    if facts.replace.is_some() {
        // The successor gets the desired name and scopes; nothing to change in place.
        facts.name_change = None;
        facts.scope_change = None;
    }
    facts.rotate = rotation_due(desired, current, facts.now);
}

fn sorted(v: &[String]) -> Vec<&String> {
    let mut v: Vec<&String> = v.iter().collect();
    v.sort();
    v
}

pub(crate) fn lifetime_differs(desired: &DesiredToken, current: &LiveToken) -> bool {
    match (desired.policy.expires_in, current.expires, current.created) {
        (None, None, _) => false,
        (None, Some(_), _) | (Some(_), None, _) => true,
        (Some(want), Some(expires), Some(created)) => {
            ((expires - created) - want.to_time()).abs() > EXPIRY_TOLERANCE
        }
        (Some(_), Some(_), None) => false,
    }
}

/// The reason a scheduled rotation is due now, if it is.
pub(crate) fn rotation_due(
    desired: &DesiredToken,
    current: &LiveToken,
    now: OffsetDateTime,
) -> Option<Reason> {
    let due = next_rotation(desired.policy.rotation, current.created, current.expires)?;
    if due > now {
        return None;
    }
    match desired.policy.rotation {
        Rotation::BeforeExpiry(_) => {
            let expires = current.expires?;
            let secs = (expires - now).whole_seconds().max(0);
            Some(Reason::ExpiringIn {
                days: (secs + 86_399) / 86_400,
            })
        }
        _ => Some(Reason::RotationDue),
    }
}

/// When a generation's scheduled rotation is due, from when it was created and when it expires:
/// `rotate_before` ahead of its expiry, or `rotate_every` after its creation. A `rotate_before` as
/// long as the lifetime would make every new generation due at birth (a rotation on every run), so
/// rotation is never due before half the generation's lifetime. The planner uses it both for live
/// generations (is the rotation due now?) and for the one it creates (the forecast).
pub(crate) fn next_rotation(
    rotation: Rotation,
    created: Option<OffsetDateTime>,
    expires: Option<OffsetDateTime>,
) -> Option<OffsetDateTime> {
    match rotation {
        Rotation::BeforeExpiry(d) => expires.map(|e| {
            let due = e - d.to_time();
            match created {
                Some(c) if c < e => due.max(c + (e - c) / 2),
                _ => due,
            }
        }),
        Rotation::Every(d) => created.map(|c| c + d.to_time()),
        Rotation::Never => None,
    }
}
