//! Hash maps and sets for the passes that hash every key of a large spec or live read.
//!
//! They hash with aHash, keyed at random per process as std's default SipHash is, so a
//! hostile spec still cannot choose keys that collide. On the short texts these maps hold
//! (scalars, token keys, paths), SipHash was about a twentieth of validating a 50,000-token
//! spec.

/// A `HashMap` with [`RandomState`]; build one with `default()` or
/// `with_capacity_and_hasher(n, RandomState::default())`.
pub type HashMap<K, V> = std::collections::HashMap<K, V, RandomState>;
/// A `HashSet` with [`RandomState`].
pub type HashSet<T> = std::collections::HashSet<T, RandomState>;
/// aHash's keys: seeded at random once per process, and different for every map.
pub type RandomState = ahash::RandomState;

/// An empty map with room for `n` entries.
pub fn map_with_capacity<K, V>(n: usize) -> HashMap<K, V> {
    HashMap::with_capacity_and_hasher(n, RandomState::default())
}
