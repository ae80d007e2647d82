//! `Secret<T>`: a value that cannot be printed by accident.
//!
//! Token values live in this type from the moment Dynatrace returns them until a target holds
//! them. It has no `Display`, no `Serialize`, and its `Debug` prints `Secret(<redacted>)`. The
//! one way in is [`Secret::expose`], and each call site is a place a reviewer should look at.

use std::fmt;

/// A secret value (a token, a client secret). See the module docs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The secret itself. Call only where the value must leave the process (an HTTP header, a
    /// target), never to log or format it.
    pub fn expose(&self) -> &T {
        &self.0
    }

    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl From<String> for Secret<String> {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl From<&str> for Secret<String> {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts() {
        let s = Secret::from("dt0c01.ABC.DEF");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(format!("{:?}", Some(s)), "Some(Secret(<redacted>))");
    }
}
