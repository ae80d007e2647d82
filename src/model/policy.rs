//! Lifetime and rotation policy of a desired token, after `defaults` were merged in.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::SpecDuration;

/// How long a token lives, when it is rotated, and how its predecessor is retired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Lifetime of each generation; `None` means the token never expires.
    pub expires_in: Option<SpecDuration>,
    pub rotation: Rotation,
    /// How long the predecessor stays valid after its successor reached every target.
    pub grace: SpecDuration,
    pub revoke: Revoke,
    /// Before revoking, require that the successor's `lastUsedDate` is later than its delivery.
    pub verify_usage: bool,
}

/// When a successor is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode", content = "after")]
pub enum Rotation {
    /// Rotate this long before the current generation expires.
    BeforeExpiry(SpecDuration),
    /// Rotate when the current generation is this old, whether or not it expires.
    Every(SpecDuration),
    /// Never rotate on a schedule (only when something forces a replacement).
    Never,
}

/// What retiring a superseded token means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Revoke {
    /// Disable it (reversible), then delete it this long after it was disabled.
    /// ActiveGate tokens cannot be disabled and are deleted when their grace ends.
    Disable { delete_after: SpecDuration },
    /// Delete it as soon as its grace has passed.
    Delete,
}

impl Default for Revoke {
    fn default() -> Self {
        Revoke::Disable {
            delete_after: SpecDuration::from_days(7),
        }
    }
}
