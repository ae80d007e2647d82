//! The shared vocabulary: token identity, scopes, durations, secrets, targets, and the desired
//! and live views of the world. Every other module speaks in these types; this module does no
//! I/O and depends on nothing else in the crate.

pub mod desired;
pub mod duration;
pub mod dynatrace_messages;
pub mod encode;
pub mod hash;
pub mod live;
pub mod loopback;
pub mod policy;
pub mod preset;
pub mod printable;
pub mod redact;
pub mod scope;
pub mod scope_set;
pub mod secret;
pub mod system_token;
pub mod target;
pub mod token;

pub use desired::{
    Account, AccountName, ActiveGateType, Desired, DesiredTenantToken, DesiredToken, Endpoint,
    Environment, ForeignRotation, Home, OAuthScopes, PruneSelect, TokenDetails, UnmanagedPolicy,
    DEFAULT_TENANT_GRACE,
};
pub use duration::SpecDuration;
pub use live::{LiveAccount, LiveEnvironment, LiveSnapshot, LiveToken, TargetSnapshot};
pub use loopback::{loopback_ip, plain_http_allowed};
pub use policy::{Policy, Revoke, Rotation};
pub use preset::{PlatformPreset, Preset};
pub use scope::Scope;
pub use scope_set::ScopeSet;
pub use secret::Secret;
pub use system_token::SystemToken;
pub use target::{
    ExecTarget, FileFormat, FileTarget, Holder, KubernetesSecretTarget, Target, TargetAddress,
    TargetValues, ValuesFile,
};
pub use token::{EnvName, Generation, Marker, TokenId, TokenKey, TokenKind, ACCOUNT_LOCK_PREFIX};
