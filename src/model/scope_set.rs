//! A token's scopes: a set held as one sorted slice.
//!
//! Every desired and live token holds one. A token has a handful of scopes, and a `BTreeSet`
//! holds even one of them in a node of eleven slots, about 200 bytes; a live read of 100,000
//! tokens and a spec of 50,000 hold one set per token. This set holds its scopes in one
//! allocation of exactly their size (two scopes: 32 bytes), sorted and without repeats, so it
//! compares, orders, iterates and prints as the `BTreeSet` it replaces did. It is built once
//! and not changed: code that builds a set scope by scope builds a `BTreeSet` and converts it.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Scope;

/// A set of scopes, in the order of their text.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ScopeSet(Box<[Scope]>);

impl ScopeSet {
    /// The empty set.
    pub fn new() -> Self {
        ScopeSet::default()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scopes, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Scope> {
        self.0.iter()
    }

    pub fn contains(&self, scope: &Scope) -> bool {
        self.0.binary_search(scope).is_ok()
    }

    /// Whether every scope of this set is in `other`.
    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.len() <= other.len() && self.iter().all(|s| other.contains(s))
    }

    /// The scopes of this set that are not in `other`, in order.
    pub fn difference<'a>(&'a self, other: &'a ScopeSet) -> impl Iterator<Item = &'a Scope> + 'a {
        self.iter().filter(move |s| !other.contains(s))
    }

    fn from_vec(mut scopes: Vec<Scope>) -> Self {
        if !scopes.is_sorted_by(|a, b| a < b) {
            scopes.sort_unstable();
            scopes.dedup();
        }
        ScopeSet(scopes.into_boxed_slice())
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        ScopeSet::from_vec(iter.into_iter().collect())
    }
}

impl From<BTreeSet<Scope>> for ScopeSet {
    fn from(set: BTreeSet<Scope>) -> Self {
        // Already sorted and without repeats.
        ScopeSet(set.into_iter().collect())
    }
}

impl<const N: usize> From<[Scope; N]> for ScopeSet {
    fn from(scopes: [Scope; N]) -> Self {
        ScopeSet::from_vec(scopes.into())
    }
}

impl<'a> IntoIterator for &'a ScopeSet {
    type Item = &'a Scope;
    type IntoIter = std::slice::Iter<'a, Scope>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl Serialize for ScopeSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for ScopeSet {
    /// A list of scopes, in any order and with repeats, as a `BTreeSet` reads it.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<Scope>::deserialize(deserializer).map(ScopeSet::from_vec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(scopes: &[&str]) -> ScopeSet {
        scopes.iter().map(Scope::new).collect()
    }

    fn btree(scopes: &[&str]) -> BTreeSet<Scope> {
        scopes.iter().map(Scope::new).collect()
    }

    #[test]
    fn it_behaves_as_the_btree_set_it_replaces() {
        let lists: &[&[&str]] = &[
            &[],
            &["metrics.ingest"],
            &["logs.ingest", "metrics.ingest", "logs.ingest"],
            &["z.custom", "apiTokens.read", "a.custom", "apiTokens.read"],
            &["metrics.ingest", "logs.ingest"],
        ];
        for a in lists {
            let (s, b) = (set(a), btree(a));
            assert_eq!(s.len(), b.len(), "{a:?}");
            assert!(s.iter().eq(b.iter()), "{a:?}: same order, no repeats");
            assert_eq!(format!("{s:?}"), format!("{b:?}"));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                serde_json::to_string(&b).unwrap()
            );
            let back: ScopeSet = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
            assert_eq!(back, s);
            assert_eq!(ScopeSet::from(b.clone()), s);
            for other in lists {
                let (t, c) = (set(other), btree(other));
                assert_eq!(s == t, b == c, "{a:?} == {other:?}");
                assert_eq!(s.cmp(&t), b.cmp(&c), "{a:?} cmp {other:?}");
                assert_eq!(s.is_subset(&t), b.is_subset(&c), "{a:?} ⊆ {other:?}");
                assert!(s.difference(&t).eq(b.difference(&c)), "{a:?} \\ {other:?}");
            }
            for probe in ["metrics.ingest", "a.custom", "nope"] {
                assert_eq!(
                    s.contains(&Scope::new(probe)),
                    b.contains(&Scope::new(probe))
                );
            }
        }
    }

    #[test]
    fn a_set_of_two_scopes_takes_two_words_and_one_exact_allocation() {
        assert_eq!(
            std::mem::size_of::<ScopeSet>(),
            2 * std::mem::size_of::<usize>()
        );
        let s = set(&["metrics.ingest", "logs.ingest"]);
        assert_eq!(
            std::mem::size_of_val(&*s.0),
            2 * std::mem::size_of::<Scope>()
        );
    }
}
