//! Every environment variable tokensmith reads, in one place.
//!
//! Management tokens are read from variables the spec names (`token_env`), never from the spec
//! itself; those names are data, not constants, so they are not listed here.

/// Disables colour when set to any non-empty value (<https://no-color.org>).
pub const NO_COLOR: &str = "NO_COLOR";

/// Set by CI systems; output stays plain and prompts are refused.
pub const CI: &str = "CI";
