//! Dynatrace's timestamps, both directions, and [`WireDate`]: a date read while a page is decoded.
//!
//! The environment APIs write `yyyy-MM-ddTHH:mm:ss.SSSZ`; other shapes of RFC 3339, and the same
//! without an offset (read as UTC), are accepted too. A list page carries up to four dates per
//! token, so the wire types read them as they are decoded ([`WireDate`]) instead of keeping a
//! string each; only a value that is not a date keeps its text, for the error that names it.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::{Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, PrimitiveDateTime};

/// A date field of the wire as decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireDate {
    /// An empty (or blank) string: no date, as if the field were absent.
    Blank,
    At(OffsetDateTime),
    /// Not a date this client can read; the plan must not guess (DESIGN.md invariant 7).
    Unreadable(String),
}

impl WireDate {
    /// Read a date's text.
    pub fn read(text: &str) -> WireDate {
        if text.trim().is_empty() {
            return WireDate::Blank;
        }
        match parse_date(text) {
            Some(t) => WireDate::At(t),
            None => WireDate::Unreadable(text.to_owned()),
        }
    }
}

impl<'de> Deserialize<'de> for WireDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Text;
        impl Visitor<'_> for Text {
            type Value = WireDate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a date string")
            }
            // Borrowed or transient, the text is read in place: no string is kept for a date.
            fn visit_str<E: de::Error>(self, v: &str) -> Result<WireDate, E> {
                Ok(WireDate::read(v))
            }
        }
        d.deserialize_str(Text)
    }
}

impl Serialize for WireDate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            WireDate::Blank => s.serialize_str(""),
            WireDate::At(t) => s.serialize_str(&format_date(*t)),
            WireDate::Unreadable(text) => s.serialize_str(text),
        }
    }
}

/// Parse a Dynatrace timestamp: RFC 3339 (`2022-03-08T11:31:53.218Z`, millis optional), or the
/// same without an offset (read as UTC).
pub fn parse_date(value: &str) -> Option<OffsetDateTime> {
    let value = value.trim();
    parse_utc_millis(value)
        .or_else(|| parse_date_general(value))
        .and_then(within_reach)
}

/// The latest year a date from a server may have. The planner adds spec durations (at most 100
/// years each) to these dates, and `time` ends at year 9999: a server's `9999-12-31` would
/// otherwise make that arithmetic overflow. A later date is not one Dynatrace writes (a token
/// that never expires has no expiration date), so it is read as no date at all would be: as
/// unreadable, an error naming the environment and the field.
pub const LATEST_YEAR: i32 = 9000;

/// `t`, when its year is at most [`LATEST_YEAR`].
pub fn within_reach(t: OffsetDateTime) -> Option<OffsetDateTime> {
    (t.year() <= LATEST_YEAR).then_some(t)
}

/// The shape every date of the environment APIs has, `yyyy-MM-ddTHH:mm:ss.SSSZ`, read digit by
/// digit (a list page carries several per token); `None` for anything else, including an
/// impossible date or time of that shape, which [`parse_date_general`] then judges.
fn parse_utc_millis(value: &str) -> Option<OffsetDateTime> {
    let b: &[u8; 24] = value.as_bytes().try_into().ok()?;
    let separators = [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
    ];
    if b[23] != b'Z' || separators.iter().any(|&(i, c)| b[i] != c) {
        return None;
    }
    let number = |from: usize, to: usize| {
        b[from..to].iter().try_fold(0u16, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u16::from(d - b'0'))
        })
    };
    let month = time::Month::try_from(u8::try_from(number(5, 7)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(
        i32::from(number(0, 4)?),
        month,
        u8::try_from(number(8, 10)?).ok()?,
    )
    .ok()?;
    let time = time::Time::from_hms_milli(
        u8::try_from(number(11, 13)?).ok()?,
        u8::try_from(number(14, 16)?).ok()?,
        u8::try_from(number(17, 19)?).ok()?,
        number(20, 23)?,
    )
    .ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// Every shape [`parse_date`] accepts, through `time`'s parsers.
fn parse_date_general(value: &str) -> Option<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(value, &Rfc3339) {
        return Some(t);
    }
    let local = time::macros::format_description!(
        version = 2,
        "[year]-[month]-[day][first [T][ ]][hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    PrimitiveDateTime::parse(value, local)
        .ok()
        .map(|t| t.assume_utc())
}

/// Format a date the way the API writes them: `yyyy-MM-ddTHH:mm:ss.SSSZ` in UTC.
pub fn format_date(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(format).expect("a UTC date always formats")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn dates_in_the_shapes_dynatrace_sends() {
        assert_eq!(
            parse_date("2022-03-08T11:31:53.218Z"),
            Some(datetime!(2022-03-08 11:31:53.218 UTC))
        );
        assert_eq!(
            parse_date("2027-01-01T00:00:00Z"),
            Some(datetime!(2027-01-01 00:00:00 UTC))
        );
        assert_eq!(
            parse_date("2021-01-25T05:57:01.123+01:00"),
            Some(datetime!(2021-01-25 04:57:01.123 UTC))
        );
        assert_eq!(
            parse_date("2021-01-25 05:57:01"),
            Some(datetime!(2021-01-25 05:57:01 UTC))
        );
        assert_eq!(parse_date("now+14d"), None);
        assert_eq!(
            format_date(datetime!(2026-12-01 08:15:30.1449 +02:00)),
            "2026-12-01T06:15:30.144Z"
        );
    }

    #[test]
    fn the_fast_date_path_agrees_with_the_general_parsers() {
        let fast = [
            "2026-11-01T09:00:00.000Z",
            "2024-02-29T23:59:59.999Z",
            "0000-01-01T00:00:00.000Z",
            "9999-12-31T23:59:59.999Z",
            "1970-01-01T00:00:00.001Z",
        ];
        for v in fast {
            assert!(parse_utc_millis(v).is_some(), "{v}");
            assert_eq!(parse_utc_millis(v), parse_date_general(v), "{v}");
        }
        // Same length and shape but not a valid instant, or not quite the shape: the general
        // parsers decide, exactly as before the fast path existed.
        let odd = [
            "2023-02-29T00:00:00.000Z",
            "2026-13-01T00:00:00.000Z",
            "2026-00-01T00:00:00.000Z",
            "2026-01-32T00:00:00.000Z",
            "2026-01-01T24:00:00.000Z",
            "2026-01-01T23:60:00.000Z",
            "2016-12-31T23:59:60.000Z",
            "2026-01-01T00:00:00.000z",
            "2026-01-01t00:00:00.000Z",
            "2026-01-01 00:00:00.000Z",
            "2026-01-01T00:00:00,000Z",
            "+026-01-01T00:00:00.000Z",
            "2026-01-01T00:00:0a.000Z",
            "2026-1-01T00:00:00.0000Z",
            "2026-01-01T00:00:00.00+1",
            "  2026-01-01T00:00:00.000Z ",
            "2026-01-01T00:00:00.12Z",
            "2026-01-01T00:00:00.1234Z",
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00.000+00:00",
            "2026-01-01T00:00:00.000",
            "ä026-01-01T00:00:00.00Z",
        ];
        for v in odd {
            assert_eq!(parse_date(v), parse_date_general(v.trim()), "{v}");
        }
        assert_eq!(parse_utc_millis("2016-12-31T23:59:60.000Z"), None);
        assert_eq!(parse_date("2023-02-29T00:00:00.000Z"), None);
        // Every millisecond value and a spread of dates round-trip through the writer.
        let mut t = datetime!(1999-12-31 23:59:58.000 UTC);
        for _ in 0..3_000 {
            t += time::Duration::milliseconds(1_234_567_891);
            let text = format_date(t);
            assert_eq!(parse_utc_millis(&text), Some(t), "{text}");
            assert_eq!(parse_date_general(&text), Some(t), "{text}");
        }
    }

    #[test]
    fn wire_dates_are_read_while_decoding() {
        let read = |json: &str| serde_json::from_str::<Option<WireDate>>(json).unwrap();
        assert_eq!(
            read(r#""2022-03-08T11:31:53.218Z""#),
            Some(WireDate::At(datetime!(2022-03-08 11:31:53.218 UTC)))
        );
        // An escaped string is not borrowed from the body; it is read all the same.
        assert_eq!(
            read(r#""2022-03-08T11:31:53.218\u005a""#),
            Some(WireDate::At(datetime!(2022-03-08 11:31:53.218 UTC)))
        );
        assert_eq!(read(r#""  ""#), Some(WireDate::Blank));
        assert_eq!(read("null"), None);
        assert_eq!(read(r#""soon""#), Some(WireDate::Unreadable("soon".into())));
        assert!(serde_json::from_str::<WireDate>("42").is_err());
        for d in [
            WireDate::Blank,
            WireDate::At(datetime!(2026-12-01 06:15:30.144 UTC)),
            WireDate::Unreadable("soon".into()),
        ] {
            let text = serde_json::to_string(&d).unwrap();
            assert_eq!(
                serde_json::from_str::<WireDate>(&text).unwrap(),
                d,
                "{text}"
            );
        }
    }

    #[test]
    fn dates_past_the_latest_year_are_not_read() {
        assert_eq!(parse_date("9999-12-31T23:59:59.000Z"), None);
        assert_eq!(parse_date("9001-01-01T00:00:00Z"), None);
        assert!(parse_date("9000-12-31T23:59:59.000Z").is_some());
        assert!(matches!(
            WireDate::read("9999-12-31T23:59:59.000Z"),
            WireDate::Unreadable(_)
        ));
    }
}
