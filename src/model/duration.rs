//! Durations as users write them in the spec: `90d`, `12h`, `30m`, `2w`, `45s`.
//!
//! A [`SpecDuration`] is a whole number of seconds. It parses from and prints to the compact
//! form, so plans and errors show durations the way the user wrote them.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written as a number followed by a unit: `s`, `m`, `h`, `d` or `w`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpecDuration {
    seconds: i64,
}

impl SpecDuration {
    pub const ZERO: SpecDuration = SpecDuration { seconds: 0 };

    pub const fn from_secs(seconds: i64) -> Self {
        SpecDuration { seconds }
    }

    pub const fn from_days(days: i64) -> Self {
        SpecDuration {
            seconds: days * 86_400,
        }
    }

    pub const fn from_hours(hours: i64) -> Self {
        SpecDuration {
            seconds: hours * 3_600,
        }
    }

    pub const fn as_secs(self) -> i64 {
        self.seconds
    }

    pub fn to_time(self) -> time::Duration {
        time::Duration::seconds(self.seconds)
    }
}

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration; write a number and a unit, like `90d`, `12h` or `30m`")]
    Empty,
    #[error("`{0}` has no unit; write a number and a unit: s, m, h, d or w (e.g. `90d`)")]
    MissingUnit(String),
    #[error("`{input}` has an unknown unit `{unit}`; use s, m, h, d or w (e.g. `90d`)")]
    UnknownUnit { input: String, unit: String },
    #[error("`{0}` is not a duration; write a number and a unit, like `90d`, `12h` or `30m`")]
    Invalid(String),
    #[error("`{0}` is too large")]
    Overflow(String),
}

impl FromStr for SpecDuration {
    type Err = DurationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let s = input.trim();
        if s.is_empty() {
            return Err(DurationError::Empty);
        }
        let split = s
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| DurationError::MissingUnit(input.to_owned()))?;
        let (number, unit) = s.split_at(split);
        if number.is_empty() {
            return Err(DurationError::Invalid(input.to_owned()));
        }
        let n: i64 = number
            .parse()
            .map_err(|_| DurationError::Overflow(input.to_owned()))?;
        let factor = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            _ if unit.chars().all(|c| c.is_ascii_alphabetic()) => {
                return Err(DurationError::UnknownUnit {
                    input: input.to_owned(),
                    unit: unit.to_owned(),
                })
            }
            _ => return Err(DurationError::Invalid(input.to_owned())),
        };
        // Bounded to 100 years so that adding it to any timestamp stays in range.
        let seconds = n
            .checked_mul(factor)
            .filter(|s| *s <= 100 * 366 * 86_400)
            .ok_or_else(|| DurationError::Overflow(input.to_owned()))?;
        Ok(SpecDuration { seconds })
    }
}

impl fmt::Display for SpecDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.seconds;
        // Weeks are printed as days: `14d` reads better next to `expires_in: 90d` than `2w`.
        let (n, unit) = if s != 0 && s % 86_400 == 0 {
            (s / 86_400, "d")
        } else if s != 0 && s % 3_600 == 0 {
            (s / 3_600, "h")
        } else if s != 0 && s % 60 == 0 {
            (s / 60, "m")
        } else {
            (s, "s")
        };
        write!(f, "{n}{unit}")
    }
}

impl fmt::Debug for SpecDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for SpecDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SpecDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for SpecDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[0-9]+[smhdw]$",
            "description": "A duration: a whole number and a unit, s (seconds), m (minutes), h (hours), d (days) or w (weeks). Examples: `90d`, `12h`, `30m`.",
            "examples": ["90d", "12h", "30m"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_round_trip() {
        for (text, secs) in [
            ("90d", 90 * 86_400),
            ("12h", 43_200),
            ("30m", 1_800),
            ("45s", 45),
        ] {
            let d: SpecDuration = text.parse().unwrap();
            assert_eq!(d.as_secs(), secs);
            assert_eq!(d.to_string(), text);
        }
        assert_eq!("2w".parse::<SpecDuration>().unwrap().to_string(), "14d");
    }

    #[test]
    fn rejects_bad_input_with_a_hint() {
        assert_eq!("".parse::<SpecDuration>(), Err(DurationError::Empty));
        assert!(matches!(
            "90".parse::<SpecDuration>(),
            Err(DurationError::MissingUnit(_))
        ));
        assert!(matches!(
            "90y".parse::<SpecDuration>(),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(
            "d".parse::<SpecDuration>(),
            Err(DurationError::Invalid(_))
        ));
        assert!(matches!(
            "-5d".parse::<SpecDuration>(),
            Err(DurationError::Invalid(_))
        ));
        assert!(matches!(
            "99999999999999999999d".parse::<SpecDuration>(),
            Err(DurationError::Overflow(_))
        ));
    }
}
