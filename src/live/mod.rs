//! The Dynatrace client: read and write traits, their HTTP implementation, and the snapshot
//! reader the planner's input comes from.
//!
//! - [`traits`]: the contract ([`EnvironmentRead`], [`EnvironmentWrite`], [`AccountRead`],
//!   [`AccountWrite`]) and the values it speaks; fakes implement these in tests.
//! - [`environment`] and [`account`]: the HTTP implementations (paths, bodies, pagination,
//!   OAuth for the account API).
//! - [`http`]: timeouts, authentication header, retries with backoff, the server clock, the
//!   call counter. [`error`]: [`LiveError`], what it means ([`ApiFailure`]: the one place
//!   Dynatrace's answers are recognised) and token redaction. [`pacing`]: the gate per
//!   throttling domain (429 hints, `X-RateLimit-*` budgets) and the in-flight cap per host that
//!   every request of a run shares.
//! - [`wire`]: serde types of the JSON on the wire; [`convert`]: wire → `model::LiveToken`;
//!   [`token_page`]: a token list's page decoded straight into model tokens;
//!   [`dates`]: Dynatrace's timestamps both ways, read while a page is decoded;
//!   [`offload`]: big pages are decoded and converted on the blocking pool, so a fleet's reads
//!   use every core.
//! - [`connect`]: spec environments and accounts → clients ([`Connector`], [`DefaultConnector`]).
//! - [`metrics_ingest`]: metric lines sent to an environment's metrics ingest API.
//! - [`snapshot`]: [`read_snapshot`], the bounded concurrent read of everything the spec names.
//!
//! Not here: deciding what to change (the planner), changing it in order (the applier), and the
//! Dynatrace emulator (`sandbox`), which this client talks to over real HTTP like any server.

pub mod account;
pub mod connect;
pub mod convert;
pub mod dates;
pub mod environment;
pub mod error;
pub mod http;
pub mod metrics_ingest;
pub mod offload;
pub mod pacing;
pub mod snapshot;
pub mod token_page;
pub mod traits;
pub mod wire;

pub use account::{AccountClient, AccountConfig};
pub use connect::{Connector, DefaultConnector, SandboxEndpoint, SandboxResolver};
pub use environment::EnvironmentClient;
pub use error::{redact, ApiFailure, LiveError, RequestLabel, Subject, Violation};
pub use http::{CallCounter, ClientSettings, ProxySettings, RetryPolicy, Transport};
pub use snapshot::{read_snapshot, read_snapshot_reporting, SnapshotError, SnapshotRead};
pub use traits::{
    AccountApi, AccountRead, AccountWrite, ApiTokenChange, CreatedToken, Deletion, EnvironmentApi,
    EnvironmentRead, EnvironmentWrite, LiveResult, NewActiveGateToken, NewApiToken,
    NewPlatformToken, TenantTokens,
};
