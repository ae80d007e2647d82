//! The semantic rules of a spec: what makes a well-typed file still wrong.
//!
//! Two kinds of check live here. Value checks look at one value (a URL, a scope list, a
//! delivery target) and return [`Finding`]s, which the resolver places at the value's position.
//! Cross checks look at the whole resolved [`Desired`] with the positions the resolver recorded
//! ([`Sites`]): duplicate keys after `for_each`, a target written by two tokens, the platform-token
//! limit per owner. Nothing here reads files or the network.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::token::{Generation, Marker, MAX_NAME_LEN};
use crate::model::{
    Desired, Endpoint, FileFormat, Home, Preset, Rotation, Scope, Target, TokenDetails, TokenKey,
    TokenKind,
};

use super::diagnostic::{Diagnostic, Severity, SourceFile, Span};

/// Dynatrace allows at most this many platform tokens per owner and account.
pub const PLATFORM_TOKENS_PER_OWNER: usize = 10;

/// Platform token names may be this long.
pub const MAX_PLATFORM_NAME_LEN: usize = 255;

/// Room kept in names for markers of up to this generation.
pub const NAME_CHECK_GENERATION: Generation = Generation(999);

/// One problem with a value, before it is given a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub message: String,
    pub help: Option<String>,
}

impl Finding {
    pub fn error(message: impl Into<String>) -> Finding {
        Finding {
            severity: Severity::Error,
            message: message.into(),
            help: None,
        }
    }

    pub fn warning(message: impl Into<String>) -> Finding {
        Finding {
            severity: Severity::Warning,
            message: message.into(),
            help: None,
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Finding {
        self.help = Some(help.into());
        self
    }

    /// The finding as a diagnostic at `span`.
    pub fn at(self, source: &SourceFile, span: Span) -> Diagnostic {
        let mut d = match self.severity {
            Severity::Error => source.error(span, self.message),
            Severity::Warning => source.warning(span, self.message),
        };
        if let Some(help) = self.help {
            d = d.help(help);
        }
        d
    }
}

/// Whether `name` can be an environment variable name.
pub fn is_env_var_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks a field that names an environment variable holding a secret.
pub fn check_env_var(field: &str, name: &str) -> Option<Finding> {
    if looks_like_secret(name) {
        return Some(
            Finding::error(format!(
                "`{field}` holds what looks like a token or secret; it must name an environment variable"
            ))
            .help("never put secrets in the spec: export the value and write the variable's name, e.g. `DT_PROD_ADMIN_TOKEN`"),
        );
    }
    (!is_env_var_name(name)).then(|| {
        Finding::error(format!("`{name}` is not a valid environment variable name"))
            .help("use letters, digits and `_`, not starting with a digit")
    })
}

fn looks_like_secret(value: &str) -> bool {
    value.starts_with("dt0") && value.contains('.') || value.len() >= 40 && !value.contains('_')
}

/// Whether a name of an environment or account is acceptable.
pub fn check_entry_name(kind: &str, name: &str) -> Option<Finding> {
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    (!ok).then(|| {
        Finding::error(format!("`{name}` is not a valid {kind} name"))
            .help("use up to 64 letters, digits, `-`, `_` and `.`, starting with a letter or digit")
    })
}

/// Parses an environment URL: SaaS, Managed (`/e/{env-id}`), or `sandbox://NAME`. Plain `http`
/// is accepted only for loopback addresses (a local test server).
pub fn parse_endpoint(url: &str) -> Result<Endpoint, Finding> {
    if let Some(name) = url.strip_prefix("sandbox://") {
        let ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
        return if ok {
            Ok(Endpoint::Sandbox {
                name: name.to_owned(),
            })
        } else {
            Err(
                Finding::error(format!("`{url}` is not a valid sandbox URL"))
                    .help("write `sandbox://NAME` with letters, digits, `-` and `_`"),
            )
        };
    }
    let shapes = "expected `https://{id}.live.dynatrace.com`, `https://{host}/e/{env-id}` or `sandbox://NAME`";
    let parsed = url::Url::parse(url)
        .map_err(|e| Finding::error(format!("`{url}` is not a URL: {e}")).help(shapes))?;
    let host = parsed.host_str().unwrap_or_default().to_owned();
    let loopback =
        matches!(host.as_str(), "localhost" | "[::1]" | "::1") || host.starts_with("127.");
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(Finding::error(format!("`{url}` uses plain http")).help(
                "Dynatrace is reached over https; plain http is only for loopback test servers",
            ))
        }
        other => {
            return Err(
                Finding::error(format!("`{url}` has the unsupported scheme `{other}`"))
                    .help(shapes),
            )
        }
    }
    if host.is_empty() {
        return Err(Finding::error(format!("`{url}` has no host")).help(shapes));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Finding::error("the URL contains credentials")
            .help("never put credentials in the spec; use `token_env`"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(Finding::error(format!("`{url}` has a query or fragment")).help(shapes));
    }
    if host.ends_with(".apps.dynatrace.com") {
        return Err(
            Finding::error(format!("`{url}` is a platform (apps) URL")).help(
                "the token APIs are served from the classic URL: `https://{id}.live.dynatrace.com`",
            ),
        );
    }
    let path = parsed.path().trim_end_matches('/');
    if path.contains("/api") {
        return Err(Finding::error(format!("`{url}` includes an API path"))
            .help("give the environment's base URL; tokensmith appends `/api/v2/…`"));
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let managed = matches!(segments.as_slice(), ["e", id] if id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    if !segments.is_empty() && !managed {
        return Err(
            Finding::error(format!("`{url}` has an unexpected path `{path}`")).help(shapes),
        );
    }
    let base = parsed.as_str().trim_end_matches('/').to_owned();
    Ok(Endpoint::Url { base })
}

/// The environment id that platform-token resources name (`urn:dtenvironment:<id>`).
pub fn environment_id(endpoint: &Endpoint, fallback: &str) -> String {
    match endpoint {
        Endpoint::Sandbox { name } => name.clone(),
        Endpoint::Url { base } => {
            let Ok(url) = url::Url::parse(base) else {
                return fallback.to_owned();
            };
            let segments: Vec<&str> = url.path().split('/').filter(|s| !s.is_empty()).collect();
            if let ["e", id] = segments.as_slice() {
                return (*id).to_owned();
            }
            match url.host_str() {
                Some(host) if host.contains(".dynatrace") => {
                    host.split('.').next().unwrap_or(fallback).to_owned()
                }
                _ => fallback.to_owned(),
            }
        }
    }
}

/// Checks an account API or OAuth URL; returns it without a trailing slash.
pub fn check_service_url(url: &str) -> Result<String, Finding> {
    let parsed =
        url::Url::parse(url).map_err(|e| Finding::error(format!("`{url}` is not a URL: {e}")))?;
    let host = parsed.host_str().unwrap_or_default();
    let loopback = host == "localhost" || host.starts_with("127.") || host == "[::1]";
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(Finding::error(format!("`{url}` must use https"))
                .help("plain http is only for loopback test servers"))
        }
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Finding::error("the URL contains credentials")
            .help("never put credentials in the spec"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// Whether `s` is a UUID (8-4-4-4-12 hex digits).
pub fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Checks one scope written for an access token.
pub fn check_scope(scope: &Scope, personal_access_token: bool) -> Option<Finding> {
    if scope.is_legacy_only() {
        return Some(
            Finding::error(format!(
                "scope `{scope}` can no longer be given to new tokens (removed in Dynatrace 1.247)"
            ))
            .help("remove it; existing tokens keep it, new ones cannot have it"),
        );
    }
    if !scope.is_creatable() {
        let f = Finding::error(format!("unknown scope `{scope}`"));
        return Some(match scope.suggest() {
            Some(s) => f.help(format!("did you mean `{s}`?")),
            None => f.help("see the scope list in the Dynatrace access-token documentation"),
        });
    }
    if personal_access_token && !scope.allowed_for_personal_access_token() {
        return Some(
            Finding::error(format!(
                "personal access tokens cannot have scope `{scope}`"
            ))
            .help("remove the scope or set `personal_access_token: false`"),
        );
    }
    None
}

/// Checks one scope written for a platform token (`storage:logs:read`).
pub fn check_platform_scope(scope: &str) -> Option<Finding> {
    let parts: Vec<&str> = scope.split(':').collect();
    let ok = parts.len() >= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
    if ok {
        return None;
    }
    let f = Finding::error(format!("`{scope}` is not a platform-token scope"));
    Some(if Scope::from(scope).is_creatable() {
        f.help("that is an access-token scope; platform tokens use scopes like `storage:logs:read`")
    } else {
        f.help("platform scopes look like `storage:logs:read` or `settings:objects:read`")
    })
}

/// What excluding `scope` from a token with `preset` means.
pub fn check_exclusion(scope: &Scope, preset: Option<Preset>, has: bool) -> Option<Finding> {
    if let Some(preset) = preset {
        if let Some((_, why)) = preset.required().iter().find(|(s, _)| *s == scope.as_str()) {
            return Some(
                Finding::error(format!(
                    "preset `{}` needs `{scope}` ({why}); excluding it breaks the consumer",
                    preset.as_str()
                ))
                .help("remove it from `exclude_scopes`, or drop the preset and list the scopes yourself"),
            );
        }
        if let Some((_, why)) = preset.optional().iter().find(|(s, _)| *s == scope.as_str()) {
            return Some(Finding::warning(format!(
                "excluding `{scope}` turns off a feature of the `{}` consumer: {why}",
                preset.as_str()
            )));
        }
    }
    (!has).then(|| {
        Finding::warning(format!(
            "`{scope}` is excluded but the token would not have it anyway"
        ))
    })
}

/// Checks the token id given to `adopt` for a token of `kind`.
pub fn parse_adopt(id: &str, kind: TokenKind) -> Result<crate::model::TokenId, Finding> {
    let prefix = match kind {
        TokenKind::ApiToken => "dt0c01",
        TokenKind::ActivegateToken => "dt0g02",
        TokenKind::PlatformToken => "dt0s16",
        TokenKind::TenantToken => "",
    };
    let parts: Vec<&str> = id.split('.').collect();
    if parts.len() == 3 {
        return Err(Finding::error("`adopt` holds a token secret, not a token id")
            .help(format!("write only the id (`{prefix}.PUBLICPART`, the part before the second `.`); revoke the exposed token")));
    }
    let ok = parts.len() == 2
        && parts[0] == prefix
        && !parts[1].is_empty()
        && parts[1].chars().all(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(crate::model::TokenId::new(id))
    } else {
        Err(
            Finding::error(format!("`{id}` is not a {kind} id")).help(format!(
                "a {kind} id looks like `{prefix}.ST2EY72KQINMH574`"
            )),
        )
    }
}

/// Checks a display name (after templating) against the name limit with the marker appended.
pub fn check_name(display: &str, key: &TokenKey, kind: TokenKind) -> Option<Finding> {
    if display.trim().is_empty() {
        return Some(Finding::error("the token name is empty"));
    }
    let max = match kind {
        TokenKind::PlatformToken => MAX_PLATFORM_NAME_LEN,
        _ => MAX_NAME_LEN,
    };
    let tag = Marker::new(key.clone(), NAME_CHECK_GENERATION).tag();
    let total = display.trim().chars().count() + 1 + tag.chars().count();
    (total > max).then(|| {
        Finding::error(format!(
            "the token name would be {total} characters with its marker `{tag}`; Dynatrace allows {max}"
        ))
        .help(format!(
            "shorten `name` (or the key) by {} characters",
            total - max
        ))
    })
}

/// Checks one delivery target (after templating).
pub fn check_target(target: &Target) -> Vec<Finding> {
    let mut out = Vec::new();
    match target {
        Target::KubernetesSecret(k) => {
            for (field, value) in [("namespace", &k.namespace), ("name", &k.name)] {
                if !is_dns_name(value) {
                    out.push(
                        Finding::error(format!("`{value}` is not a valid Kubernetes {field}"))
                            .help(
                            "use lowercase letters, digits, `-` and `.`, at most 253 characters",
                        ),
                    );
                }
            }
            let key_ok = !k.key.is_empty()
                && k.key.len() <= 253
                && k.key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !key_ok {
                out.push(
                    Finding::error(format!("`{}` is not a valid Secret key", k.key))
                        .help("use letters, digits, `-`, `_` and `.`"),
                );
            }
            for r in &k.restart {
                let ok = matches!(r.split_once('/'), Some((kind, name))
                    if matches!(kind, "deployment" | "statefulset" | "daemonset") && is_dns_name(name));
                if !ok {
                    out.push(
                        Finding::error(format!("`{r}` is not a workload to restart")).help(
                            "write `deployment/NAME`, `statefulset/NAME` or `daemonset/NAME`",
                        ),
                    );
                }
            }
        }
        Target::File(f) => {
            if f.path.trim().is_empty() {
                out.push(Finding::error("the file path is empty"));
            }
            match (f.format, &f.key) {
                (FileFormat::Raw, Some(_)) => out.push(
                    Finding::error("a `raw` file holds only the value and has no `key`")
                        .help("remove `key`, or set `format` to env, properties, json or yaml"),
                ),
                (FileFormat::Raw, None) => {}
                (format, None) => out.push(
                    Finding::error(format!(
                        "a file with `format: {}` needs a `key`",
                        format_name(format)
                    ))
                    .help("name the key that holds the value, e.g. `key: DT_API_TOKEN`"),
                ),
                (_, Some(key)) if key.trim().is_empty() => {
                    out.push(Finding::error("the file `key` is empty"))
                }
                _ => {}
            }
            if f.section.is_some() && f.format != FileFormat::Properties {
                out.push(Finding::error(
                    "`section` applies only to `properties` files",
                ));
            }
            let mode_ok = (3..=4).contains(&f.mode.len())
                && f.mode.chars().all(|c| ('0'..='7').contains(&c))
                && (f.mode.len() == 3 || f.mode.starts_with('0'));
            if !mode_ok {
                out.push(
                    Finding::error(format!("`{}` is not a file mode", f.mode))
                        .help("write an octal mode such as `\"0600\"`"),
                );
            } else if !f.mode.ends_with('0') {
                out.push(
                    Finding::warning(format!(
                        "mode `{}` lets every user of the machine read the token",
                        f.mode
                    ))
                    .help("use `\"0600\"` or `\"0640\"`"),
                );
            }
        }
        Target::Exec(e) => {
            if e.command.first().is_none_or(|c| c.trim().is_empty()) {
                out.push(Finding::error("the exec `command` is empty").help(
                    "give the program and its arguments, e.g. `[oneagentctl, --set-tenant-token]`",
                ));
            }
            let modes = usize::from(e.secret_env.is_some())
                + usize::from(e.secret_stdin)
                + usize::from(e.secret_in_argv);
            if modes == 0 {
                out.push(
                    Finding::error("the exec target does not say how it receives the value")
                        .help("set `secret_env: NAME` (preferred) or `secret_stdin: true`"),
                );
            } else if modes > 1 {
                out.push(
                    Finding::error("the exec target sets more than one of `secret_env`, `secret_stdin` and `secret_in_argv`")
                        .help("choose one way to pass the value"),
                );
            }
            if let Some(name) = &e.secret_env {
                if !is_env_var_name(name) {
                    out.push(Finding::error(format!(
                        "`{name}` is not a valid environment variable name"
                    )));
                }
            }
            let placeholder = e.command.iter().any(|a| a.contains("{{ secret }}"));
            if e.secret_in_argv {
                out.push(
                    Finding::warning("`secret_in_argv` puts the token on the command line, where every user of the machine can read it (`ps`)")
                        .help("prefer `secret_env` or `secret_stdin`"),
                );
                if !placeholder {
                    out.push(Finding::error(
                        "`secret_in_argv` is set but no argument contains `{{ secret }}`",
                    ));
                }
            } else if placeholder {
                out.push(
                    Finding::error("an argument contains `{{ secret }}` but `secret_in_argv` is not set")
                        .help("prefer `secret_env`; set `secret_in_argv: true` only if the program cannot read the environment"),
                );
            }
            for (field, cmd) in [
                ("read_command", &e.read_command),
                ("verify_command", &e.verify_command),
            ] {
                if cmd
                    .as_ref()
                    .is_some_and(|c| c.first().is_none_or(|p| p.trim().is_empty()))
                {
                    out.push(Finding::error(format!("`{field}` is empty")));
                }
            }
            if e.timeout.is_some_and(|t| t.as_secs() <= 0) {
                out.push(Finding::error("the exec `timeout` must be longer than 0s"));
            }
        }
    }
    out
}

fn format_name(format: FileFormat) -> &'static str {
    match format {
        FileFormat::Raw => "raw",
        FileFormat::Env => "env",
        FileFormat::Properties => "properties",
        FileFormat::Json => "json",
        FileFormat::Yaml => "yaml",
    }
}

fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

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
    out
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
    let mut seen: BTreeMap<(TokenKind, &Home, &TokenKey), usize> = BTreeMap::new();
    for (i, token) in desired.tokens.iter().enumerate() {
        match seen.get(&(token.kind, &token.home, &token.key)) {
            None => {
                seen.insert((token.kind, &token.home, &token.key), i);
            }
            Some(&first) => {
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

/// Reports targets written by two tokens (a repeated key is reported once, as a duplicate).
fn shared_targets(
    desired: &Desired,
    sites: &Sites,
    skip: &BTreeSet<usize>,
    source: &SourceFile,
    out: &mut Vec<Diagnostic>,
) {
    let mut seen: BTreeMap<crate::model::TargetAddress, (String, Span)> = BTreeMap::new();
    let mut files: BTreeMap<String, (FileFormat, String, Span)> = BTreeMap::new();
    let mut visit = |target: &Target, owner: String, span: Span, out: &mut Vec<Diagnostic>| {
        let address = target.address();
        if let Some((first_owner, first_span)) = seen.get(&address) {
            out.push(
                source
                    .error(span, format!("target `{address}` is also written by {first_owner}"))
                    .note(format!("first used at {}", source.position(*first_span)))
                    .help("each target holds one token; give each token its own key, file or Secret (e.g. with `{{ env }}` in the path)"),
            );
            return;
        }
        seen.insert(address, (owner.clone(), span));
        // Keys of one file may go to different tokens, but only if every writer agrees on the
        // file's layout: a raw writer replaces the whole file, and two formats cannot both hold.
        let Target::File(f) = target else { return };
        match files.get(&f.path) {
            None => {
                files.insert(f.path.clone(), (f.format, owner, span));
            }
            Some((format, first_owner, first_span))
                if *format != f.format || f.format == FileFormat::Raw =>
            {
                let how = |x: FileFormat| match x {
                    FileFormat::Raw => "whole (raw)".to_owned(),
                    other => format!("as {}", format_name(other)),
                };
                out.push(
                    source
                        .error(
                            span,
                            format!(
                                "file `{}` is written {} here and {} by {first_owner}",
                                f.path,
                                how(f.format),
                                how(*format)
                            ),
                        )
                        .note(format!("first used at {}", source.position(*first_span)))
                        .help("writers of one file must use the same non-raw format with different keys"),
                );
            }
            Some(_) => {}
        }
    };
    for (i, (token, site)) in desired.tokens.iter().zip(&sites.tokens).enumerate() {
        if skip.contains(&i) {
            continue;
        }
        let home = match &token.home {
            Home::Environment(e) => e.to_string(),
            Home::Account(a) => a.clone(),
        };
        let owner = format!("{} `{}` ({home})", token.kind, token.key);
        for (target, span) in token.deliver.iter().zip(&site.targets) {
            visit(target, owner.clone(), *span, out);
        }
    }
    for (tenant, spans) in desired.tenant_tokens.iter().zip(&sites.tenant_targets) {
        let owner = format!("the tenant token of `{}`", tenant.environment);
        for (target, span) in tenant
            .activegates
            .iter()
            .chain(&tenant.oneagents)
            .zip(spans)
        {
            visit(target, owner.clone(), *span, out);
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

/// The scopes of a set that are not allowed on a personal access token.
pub fn pat_forbidden(scopes: &BTreeSet<Scope>) -> Vec<&Scope> {
    scopes
        .iter()
        .filter(|s| s.is_creatable() && !s.allowed_for_personal_access_token())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            parse_endpoint("https://abc12345.live.dynatrace.com/").unwrap(),
            Endpoint::Url {
                base: "https://abc12345.live.dynatrace.com".into()
            }
        );
        assert!(
            parse_endpoint("https://dt.example.com/e/6a1c1a9e-4c21-4d0d-9a3e-1e0d3f2b7c11").is_ok()
        );
        assert!(parse_endpoint("http://127.0.0.1:8080/e/demo").is_ok());
        assert!(parse_endpoint("sandbox://demo").is_ok());
        for bad in [
            "http://abc12345.live.dynatrace.com",
            "https://abc12345.apps.dynatrace.com",
            "https://abc12345.live.dynatrace.com/api/v2",
            "https://user:pw@abc.live.dynatrace.com",
            "https://abc.live.dynatrace.com/x/y",
            "sandbox://",
            "ftp://x",
            "not a url",
        ] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
        let managed = parse_endpoint("https://dt.example.com/e/abc-1").unwrap();
        assert_eq!(environment_id(&managed, "x"), "abc-1");
        let saas = parse_endpoint("https://abc12345.live.dynatrace.com").unwrap();
        assert_eq!(environment_id(&saas, "x"), "abc12345");
    }

    #[test]
    fn scopes() {
        assert!(check_scope(&Scope::from("apiTokens.read"), false).is_none());
        let f = check_scope(&Scope::from("apiToken.read"), false).unwrap();
        assert_eq!(f.help.as_deref(), Some("did you mean `apiTokens.read`?"));
        assert!(check_scope(&Scope::from("ViewDashboard"), false)
            .unwrap()
            .message
            .contains("1.247"));
        assert!(check_scope(&Scope::from("DataExport"), true).is_some());
        assert!(check_platform_scope("storage:logs:read").is_none());
        assert!(check_platform_scope("apiTokens.read").is_some());
    }

    #[test]
    fn adopt_ids() {
        assert!(parse_adopt("dt0c01.ABC123", TokenKind::ApiToken).is_ok());
        assert!(parse_adopt("dt0g02.ABC123", TokenKind::ApiToken).is_err());
        let secret = parse_adopt("dt0c01.ABC.SECRETPART", TokenKind::ApiToken).unwrap_err();
        assert!(!secret.message.contains("SECRETPART"));
    }

    #[test]
    fn names_fit_with_the_marker() {
        let key = TokenKey::parse("k8s-operator").unwrap();
        assert!(check_name("k8s operator", &key, TokenKind::ApiToken).is_none());
        assert!(check_name(&"x".repeat(90), &key, TokenKind::ApiToken).is_some());
        assert!(check_name(&"x".repeat(90), &key, TokenKind::PlatformToken).is_none());
    }
}
