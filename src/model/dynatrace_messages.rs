//! Dynatrace's own words: the `error.message` texts of its error envelope that tokensmith
//! recognises (REFERENCE.md §3.1 and §6), defined once.
//!
//! The sandbox answers with these texts and the client (`live::error`) classifies answers by
//! them, so the emulator and the classifier cannot drift apart. Texts observed on real tenants
//! are copied verbatim; the tenant rotation texts are the spec's wording (REFERENCE.md marks the
//! exact messages UNCERTAIN, which is why the classifier also accepts close variants).
//!
//! Not here: how an answer is classified (`live::error::ApiFailure`) nor how the sandbox builds
//! its envelope (`sandbox::errors`). Plain constants, no dependencies.

/// 401 without an `Authorization` header.
pub const MISSING_AUTHORIZATION: &str = "Missing authorization parameter.";

/// 401 for an unknown, disabled or expired token.
pub const AUTHENTICATION_FAILED: &str = "Token Authentication failed";

/// 403 when the token lacks a scope; followed by `<scope> (<display name>)[, …]`.
pub const MISSING_SCOPE_PREFIX: &str = "Token is missing required scope. Use one of: ";

/// 400 for a request that breaks a rule; the details are in `constraintViolations`.
pub const CONSTRAINTS_VIOLATED: &str = "Constraints violated.";

/// 404 for an unknown route.
pub const NO_ROUTE: &str = "HTTP 404 Not Found";

/// 405 for a known route with another method.
pub const METHOD_NOT_ALLOWED: &str = "HTTP 405 Method Not Allowed";

/// 400 from `tenantTokenRotation/start` while a rotation runs.
pub const ROTATION_ALREADY_RUNNING: &str = "Another rotation process is already in progress";

/// 400 from `tenantTokenRotation/finish` while no rotation runs.
pub const NO_ROTATION_TO_FINISH: &str = "No ongoing rotation process";

/// 400 from `tenantTokenRotation/cancel` while no rotation runs.
pub const NO_ROTATION_TO_CANCEL: &str = "There is no ongoing rotation process";
