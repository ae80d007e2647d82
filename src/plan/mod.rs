//! The pure planner and its outputs: [`Plan`] (what `apply` executes), [`DriftReport`] (what
//! changed outside git) and [`Inventory`] (every live token, classified), plus the
//! fingerprints `apply` uses to refuse a stale plan.
//!
//! Everything here is a function of values: the desired state, the live snapshot, the target
//! holders and a clock. No I/O, no secrets; rendering lives in [`crate::render`].

mod analysis;
mod budget;
mod draft;
pub mod drift;
mod fingerprint;
mod guards;
pub mod inventory;
mod migrate;
mod order;
mod planner;
mod prune;
mod retire;
mod tenant;
pub mod tenant_record;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;
mod types;

pub use analysis::{home_label, EXPIRY_TOLERANCE};
pub use drift::{add_value_drift, drift, DriftItem, DriftReport, ValueLookup};
pub use fingerprint::{live_fingerprint, sha256_hex, targets_fingerprint};
pub use guards::{CALLER_EXPIRY_WARNING, PLATFORM_TOKEN_LIMIT};
pub use inventory::{
    add_schedule, inventory, Advice, ClassFilter, Finding, Inventory, InventoryCounts,
    InventoryEntry, InventoryFilter, LifeEvent, LifeEventKind, Recommendation, TokenClass,
    TokenStatus,
};
pub use planner::{check_replace, plan};
pub use retire::{REVOKED_SUFFIX, SUPERSEDED_SUFFIX};
pub use types::*;
