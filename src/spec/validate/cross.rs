//! Checks across the resolved spec: duplicate keys after `for_each`, one target written by two
//! tokens (or one file with two layouts), one live token adopted twice, and the platform-token
//! limit per owner and account.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use crate::model::hash::{map_with_capacity, HashMap};

use crate::model::{
    Desired, FileFormat, Home, Rotation, Target, TokenDetails, TokenKey, TokenKind,
};

use super::targets::format_name;
use super::{Diagnostic, SourceFile, Span};

/// Dynatrace allows at most this many platform tokens per owner and account.
pub const PLATFORM_TOKENS_PER_OWNER: usize = 10;

/// Where the resolver found each desired token and tenant target, for cross-check errors.
#[derive(Debug, Clone, Default)]
pub struct Sites {
    /// Parallel to `Desired::tokens`.
    pub tokens: Vec<TokenSite>,
    /// Parallel to `Desired::tenant_tokens`: spans of activegate targets then oneagent targets.
    pub tenant_targets: Vec<Vec<Span>>,
}

#[derive(Debug, Clone)]
pub struct TokenSite {
    pub key: Span,
    /// Parallel to the token's `deliver`.
    pub targets: Vec<Span>,
    /// The `for_each` values that produced this token, for messages.
    pub vars: String,
}

/// The checks that need the whole resolved spec.
pub fn cross_check(desired: &Desired, sites: &Sites, source: &SourceFile) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let duplicates = duplicate_keys(desired, sites, source, &mut out);
    shared_targets(desired, sites, &duplicates, source, &mut out);
    platform_limits(desired, sites, source, &mut out);
    adopted_twice(desired, sites, source, &mut out);
    credentials_passed_to_commands(desired, sites, source, &mut out);
    out
}

/// Reports exec targets whose `env:` passes through a variable the spec names as a credential
/// (a management token, an OAuth client id or secret): spec commands never get those.
fn credentials_passed_to_commands(
    desired: &Desired,
    sites: &Sites,
    source: &SourceFile,
    out: &mut Vec<Diagnostic>,
) {
    let credentials: BTreeSet<&str> = desired.credential_vars();
    let tokens = desired
        .tokens
        .iter()
        .zip(&sites.tokens)
        .flat_map(|(t, site)| t.deliver.iter().zip(&site.targets));
    let tenants = desired
        .tenant_tokens
        .iter()
        .zip(&sites.tenant_targets)
        .flat_map(|(t, spans)| t.activegates.iter().chain(&t.oneagents).zip(spans));
    for (target, span) in tokens.chain(tenants) {
        let Target::Exec(e) = target else { continue };
        for name in e.env.iter().filter(|n| credentials.contains(n.as_str())) {
            out.push(
                source
                    .error(
                        *span,
                        format!("`env` passes `{name}` to a command, but the spec uses it as a credential"),
                    )
                    .help("spec commands never get management tokens or OAuth client credentials; remove it from `env`"),
            );
        }
    }
}

fn adopted_twice(desired: &Desired, sites: &Sites, source: &SourceFile, out: &mut Vec<Diagnostic>) {
    let mut seen: BTreeMap<(&Home, &crate::model::TokenId), usize> = BTreeMap::new();
    for (i, token) in desired.tokens.iter().enumerate() {
        let Some(id) = &token.adopt else { continue };
        match seen.get(&(&token.home, id)) {
            None => {
                seen.insert((&token.home, id), i);
            }
            Some(&first) => out.push(
                source
                    .error(
                        sites.tokens[i].key,
                        format!("token `{id}` is adopted twice"),
                    )
                    .note(format!(
                        "first adopted by `{}` at {}",
                        desired.tokens[first].key,
                        source.position(sites.tokens[first].key)
                    ))
                    .help("one live token can belong to one desired token only"),
            ),
        }
    }
}

/// Reports duplicate keys; returns the indices of the repeats.
fn duplicate_keys(
    desired: &Desired,
    sites: &Sites,
    source: &SourceFile,
    out: &mut Vec<Diagnostic>,
) -> BTreeSet<usize> {
    let mut repeats = BTreeSet::new();
    let mut seen: HashMap<(TokenKind, &Home, &TokenKey), usize> =
        map_with_capacity(desired.tokens.len());
    for (i, token) in desired.tokens.iter().enumerate() {
        match seen.entry((token.kind, &token.home, &token.key)) {
            Entry::Vacant(v) => {
                v.insert(i);
            }
            Entry::Occupied(o) => {
                let first = *o.get();
                repeats.insert(i);
                let site = &sites.tokens[i];
                let first_site = &sites.tokens[first];
                let home = match &token.home {
                    Home::Environment(e) => format!("environment `{e}`"),
                    Home::Account(a) => format!("account `{a}`"),
                };
                let mut d = source
                    .error(
                        site.key,
                        format!("duplicate {} key `{}` in {home}", token.kind, token.key),
                    )
                    .note(format!(
                        "first produced at {}{}",
                        source.position(first_site.key),
                        first_site.vars
                    ));
                if !site.vars.is_empty() {
                    d = d.note(format!("produced again{}", site.vars));
                }
                out.push(d.help("keys must be unique per kind and environment; use every `for_each` variable in the key"));
            }
        }
    }
    repeats
}

/// Who writes a target, for messages: a desired token or a tenant token (by index), formatted
/// only when a message needs it.
#[derive(Clone, Copy)]
enum Writer {
    Token(usize),
    Tenant(usize),
}

impl Writer {
    fn describe(self, desired: &Desired) -> String {
        match self {
            Writer::Token(i) => {
                let token = &desired.tokens[i];
                let home = match &token.home {
                    Home::Environment(e) => e.to_string(),
                    Home::Account(a) => a.clone(),
                };
                format!("{} `{}` ({home})", token.kind, token.key)
            }
            Writer::Tenant(i) => format!(
                "the tenant token of `{}`",
                desired.tenant_tokens[i].environment
            ),
        }
    }
}

/// The targets seen so far by [`shared_targets`], and the layout of each file.
struct Seen<'d> {
    desired: &'d Desired,
    source: &'d SourceFile,
    addresses: HashMap<crate::model::TargetAddress, (Writer, Span)>,
    files: HashMap<&'d str, (FileFormat, Writer, Span)>,
}

impl<'d> Seen<'d> {
    fn visit(
        &mut self,
        target: &'d Target,
        address: crate::model::TargetAddress,
        writer: Writer,
        span: Span,
        out: &mut Vec<Diagnostic>,
    ) {
        let (desired, source) = (self.desired, self.source);
        if let Some((first, first_span)) = self.addresses.get(&address) {
            out.push(
                source
                    .error(span, format!("target `{address}` is also written by {}", first.describe(desired)))
                    .note(format!("first used at {}", source.position(*first_span)))
                    .help("each target holds one token; give each token its own key, file or Secret (e.g. with `{{ env }}` in the path)"),
            );
            return;
        }
        self.addresses.insert(address, (writer, span));
        // Keys of one file may go to different tokens, but only if every writer agrees on the
        // file's layout: a raw writer replaces the whole file, and two formats cannot both hold.
        let Target::File(f) = target else { return };
        match self.files.entry(f.path.as_str()) {
            Entry::Vacant(v) => {
                v.insert((f.format, writer, span));
            }
            Entry::Occupied(o) => {
                let (format, first, first_span) = *o.get();
                if format == f.format && f.format != FileFormat::Raw {
                    return;
                }
                let how = |x: FileFormat| match x {
                    FileFormat::Raw => "whole (raw)".to_owned(),
                    other => format!("as {}", format_name(other)),
                };
                out.push(
                    source
                        .error(
                            span,
                            format!(
                                "file `{}` is written {} here and {} by {}",
                                f.path,
                                how(f.format),
                                how(format),
                                first.describe(desired)
                            ),
                        )
                        .note(format!("first used at {}", source.position(first_span)))
                        .help("writers of one file must use the same non-raw format with different keys"),
                );
            }
        }
    }
}

/// Reports targets written by two tokens (a repeated key is reported once, as a duplicate).
fn shared_targets<'d>(
    desired: &'d Desired,
    sites: &Sites,
    skip: &BTreeSet<usize>,
    source: &'d SourceFile,
    out: &mut Vec<Diagnostic>,
) {
    let capacity = desired.tokens.iter().map(|t| t.deliver.len()).sum();
    let mut seen = Seen {
        desired,
        source,
        addresses: map_with_capacity(capacity),
        files: map_with_capacity(capacity),
    };
    // Formatting every target's address is most of the work: done on every core first.
    let addresses = crate::spec::parallel::by_chunks(&desired.tokens, 1_000, |tokens| {
        tokens
            .iter()
            .map(|t| t.deliver.iter().map(Target::address).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    });
    let per_token = addresses.into_iter().flatten();
    for (i, ((token, site), addresses)) in desired
        .tokens
        .iter()
        .zip(&sites.tokens)
        .zip(per_token)
        .enumerate()
    {
        if skip.contains(&i) {
            continue;
        }
        for ((target, span), address) in token.deliver.iter().zip(&site.targets).zip(addresses) {
            seen.visit(target, address, Writer::Token(i), *span, out);
        }
    }
    for (i, (tenant, spans)) in desired
        .tenant_tokens
        .iter()
        .zip(&sites.tenant_targets)
        .enumerate()
    {
        for (target, span) in tenant
            .activegates
            .iter()
            .chain(&tenant.oneagents)
            .zip(spans)
        {
            seen.visit(target, target.address(), Writer::Tenant(i), *span, out);
        }
    }
}

fn platform_limits(
    desired: &Desired,
    sites: &Sites,
    source: &SourceFile,
    out: &mut Vec<Diagnostic>,
) {
    let mut per_owner: BTreeMap<(&Home, Option<&String>), Vec<usize>> = BTreeMap::new();
    for (i, token) in desired.tokens.iter().enumerate() {
        if let TokenDetails::Platform { owner, .. } = &token.details {
            per_owner
                .entry((&token.home, owner.as_ref()))
                .or_default()
                .push(i);
        }
    }
    for ((home, owner), indices) in per_owner {
        let weight = |i: &usize| {
            if desired.tokens[*i].policy.rotation == Rotation::Never {
                1
            } else {
                2
            }
        };
        let total: usize = indices.iter().map(weight).sum();
        if total <= PLATFORM_TOKENS_PER_OWNER {
            continue;
        }
        let account = match home {
            Home::Account(a) => a.clone(),
            Home::Environment(e) => e.to_string(),
        };
        let owner = owner
            .map(String::as_str)
            .unwrap_or("(the OAuth client's user)");
        let rotating = indices.iter().filter(|i| weight(i) == 2).count();
        let last = *indices.last().unwrap_or(&0);
        out.push(
            source
                .error(
                    sites.tokens[last].key,
                    format!(
                        "owner `{owner}` would hold up to {total} platform tokens in account `{account}`; Dynatrace allows {PLATFORM_TOKENS_PER_OWNER}"
                    ),
                )
                .note(format!(
                    "{} tokens, {rotating} of them rotating (a rotation briefly needs a second token)",
                    indices.len()
                ))
                .help("spread the tokens over several owners (service users) or rotate fewer"),
        );
    }
}
