//! The sandbox clock and every date format the emulated APIs speak.
//!
//! Owns: the controllable [`Clock`] (a start time from the seed or the real clock, an offset that
//! the admin endpoint advances, optionally frozen), the [`Millis`] timestamp type that the state
//! stores and serialises as ISO text, the output format `yyyy-MM-ddTHH:mm:ss.SSSZ`, the HTTP
//! `Date` header, and the parser for Dynatrace's date inputs (UTC millis, ISO with or without an
//! offset, `now+14d/d`). It does not decide what a date means for a token; the handlers do.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset, Weekday};

/// A point in time as milliseconds since the Unix epoch (UTC). Serialised as ISO-8601 text so the
/// state file stays readable; parsed back from any input [`parse_time_input`] accepts.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Millis(pub i64);

impl Millis {
    pub fn from_datetime(t: OffsetDateTime) -> Millis {
        Millis((t.unix_timestamp_nanos() / 1_000_000) as i64)
    }

    pub fn to_datetime(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(self.0 as i128 * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    pub fn plus(self, d: Duration) -> Millis {
        Millis(self.0.saturating_add(d.whole_milliseconds() as i64))
    }

    /// `yyyy-MM-ddTHH:mm:ss.SSSZ`, the format of every date the environment APIs return.
    pub fn iso_millis(self) -> String {
        self.iso().as_str().to_owned()
    }

    /// [`Millis::iso_millis`] without allocating: a list page writes several dates per token.
    /// Years 0 to 9999 are written digit by digit; any other year goes through `time`'s
    /// formatter, which is what this text always was.
    pub fn iso(self) -> IsoMillis {
        let t = self.to_datetime();
        let (year, month, day) = t.to_calendar_date();
        let Ok(year) = u16::try_from(year) else {
            return IsoMillis::Formatted(iso_formatted(t));
        };
        if year > 9999 {
            return IsoMillis::Formatted(iso_formatted(t));
        }
        let mut b = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut n: u16| {
            for i in (at..at + width).rev() {
                b[i] = b'0' + (n % 10) as u8;
                n /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, month as u16);
        put(8, 2, u16::from(day));
        put(11, 2, u16::from(t.hour()));
        put(14, 2, u16::from(t.minute()));
        put(17, 2, u16::from(t.second()));
        put(20, 3, t.millisecond());
        IsoMillis::Digits(b)
    }

    /// RFC 3339 without a fraction when there is none (`2027-01-01T00:00:00Z`), the format the
    /// account API uses for platform tokens.
    pub fn rfc3339(self) -> String {
        self.to_datetime()
            .format(&Rfc3339)
            .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
    }

    /// The RFC 7231 `Date` header value (`Sun, 06 Nov 1994 08:49:37 GMT`).
    pub fn http_date(self) -> String {
        let fmt = format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        );
        self.to_datetime()
            .format(&fmt)
            .unwrap_or_else(|_| "Thu, 01 Jan 1970 00:00:00 GMT".into())
    }
}

fn iso_formatted(t: OffsetDateTime) -> String {
    let fmt =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.format(&fmt)
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".into())
}

/// The text of [`Millis::iso`]: on the stack for four-digit years.
#[derive(Clone)]
pub enum IsoMillis {
    Digits([u8; 24]),
    Formatted(String),
}

impl IsoMillis {
    pub fn as_str(&self) -> &str {
        match self {
            // Only ASCII digits and separators are ever written into the array.
            IsoMillis::Digits(b) => std::str::from_utf8(b).unwrap_or("1970-01-01T00:00:00.000Z"),
            IsoMillis::Formatted(s) => s,
        }
    }
}

impl Serialize for IsoMillis {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Debug for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.iso_millis())
    }
}

impl Serialize for Millis {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.iso().as_str())
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(Millis(n)),
            Raw::Text(s) => parse_absolute(&s).map_err(serde::de::Error::custom),
        }
    }
}

/// The sandbox clock. Sandbox time is `start + offset + (real now − real anchor)`, or
/// `start + offset` when frozen. It is part of the persisted state, so a second process continues
/// where the first left off (advanced offsets included).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Clock {
    /// Sandbox time at the moment `real_anchor` was taken.
    pub start: Millis,
    /// Real time when the clock was (re)started.
    pub real_anchor: Millis,
    /// Total time added through the admin endpoint, in milliseconds.
    #[serde(default)]
    pub offset_ms: i64,
    /// A frozen clock does not follow real time; only `advance` moves it.
    #[serde(default)]
    pub frozen: bool,
}

impl Clock {
    /// A clock that starts at `start` (or the real now) and then follows real time unless frozen.
    pub fn new(start: Option<Millis>, frozen: bool) -> Clock {
        let real = real_now();
        Clock {
            start: start.unwrap_or(real),
            real_anchor: real,
            offset_ms: 0,
            frozen,
        }
    }

    pub fn now(&self) -> Millis {
        let running = if self.frozen {
            0
        } else {
            (real_now().0 - self.real_anchor.0).max(0)
        };
        Millis(self.start.0 + self.offset_ms + running)
    }

    pub fn advance(&mut self, by: Duration) {
        self.offset_ms = self
            .offset_ms
            .saturating_add(by.whole_milliseconds() as i64);
    }

    /// Jump to an absolute sandbox time (only forwards or backwards in tests; Dynatrace never does).
    pub fn set(&mut self, to: Millis) {
        self.start = to;
        self.real_anchor = real_now();
        self.offset_ms = 0;
    }
}

pub fn real_now() -> Millis {
    Millis::from_datetime(OffsetDateTime::now_utc())
}

/// Parse a Dynatrace date input (`expirationDate`, `from`, `to`): UTC milliseconds,
/// `2021-01-25T05:57:01.123+01:00` (space allowed for `T`, seconds and fraction optional, no zone
/// = UTC) or a relative `now`, `now-1y/w`, `now+14d` (units m h d w M y, optional alignment).
pub fn parse_time_input(input: &str, now: Millis) -> Result<Millis, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if let Some(rest) = s.strip_prefix("now") {
        return parse_relative(rest, now).ok_or_else(|| {
            format!("'{s}' is not a valid relative time; use e.g. now+14d, now-1y/w")
        });
    }
    if s.chars().all(|c| c.is_ascii_digit()) || (s.starts_with('-') && s.len() > 1) {
        return s
            .parse::<i64>()
            .map(Millis)
            .map_err(|_| format!("'{s}' is not a valid timestamp"));
    }
    parse_absolute(s)
}

/// ISO-8601 date or date-time, with `T` or a space, optional seconds and fraction, optional zone.
pub fn parse_absolute(input: &str) -> Result<Millis, String> {
    let bad = || {
        format!("'{input}' is not a valid date; use ISO 8601 like 2026-01-25T05:57:01.123+01:00, UTC millis or now+14d")
    };
    let s = input.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(Millis::from_datetime(t));
    }
    if s.len() < 10 || !s.is_char_boundary(10) {
        return Err(bad());
    }
    let (date_part, rest) = s.split_at(10);
    let date =
        Date::parse(date_part, format_description!("[year]-[month]-[day]")).map_err(|_| bad())?;
    if rest.is_empty() {
        return Ok(Millis::from_datetime(date.midnight().assume_utc()));
    }
    let rest = rest.strip_prefix(['T', ' ']).ok_or_else(bad)?;
    // Split the zone off: `Z`, `+hh:mm`, `-hh:mm`, `+hhmm`.
    let (clock, offset) = if let Some(c) = rest.strip_suffix('Z') {
        (c, UtcOffset::UTC)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let zone = &rest[i..];
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
        if digits.len() != 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        let h: i8 = digits[..2].parse().map_err(|_| bad())?;
        let m: i8 = digits[2..].parse().map_err(|_| bad())?;
        let off = UtcOffset::from_hms(sign * h, sign * m, 0).map_err(|_| bad())?;
        (&rest[..i], off)
    } else {
        (rest, UtcOffset::UTC)
    };
    let (hms, frac) = match clock.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (clock, None),
    };
    let parts: Vec<&str> = hms.split(':').collect();
    if !(2..=3).contains(&parts.len())
        || parts
            .iter()
            .any(|p| p.len() != 2 || !p.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(bad());
    }
    let h: u8 = parts[0].parse().map_err(|_| bad())?;
    let m: u8 = parts[1].parse().map_err(|_| bad())?;
    let sec: u8 = parts
        .get(2)
        .map_or(Ok(0), |p| p.parse())
        .map_err(|_| bad())?;
    let millis: u16 = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.chars().all(|c| c.is_ascii_digit()) => {
            let mut f3: String = f.chars().take(3).collect();
            while f3.len() < 3 {
                f3.push('0');
            }
            f3.parse().map_err(|_| bad())?
        }
        Some(_) => return Err(bad()),
    };
    let time = Time::from_hms_milli(h, m, sec, millis).map_err(|_| bad())?;
    let t = PrimitiveDateTime::new(date, time).assume_offset(offset);
    Ok(Millis::from_datetime(t))
}

fn parse_relative(rest: &str, now: Millis) -> Option<Millis> {
    let (shift, align) = match rest.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (rest, None),
    };
    let mut t = now.to_datetime();
    if !shift.is_empty() {
        let sign: i64 = match shift.as_bytes()[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let body = &shift[1..];
        let split = body.find(|c: char| !c.is_ascii_digit())?;
        let (n, unit) = body.split_at(split);
        let n: i64 = n.parse().ok()?;
        let n = sign * n;
        t = match unit {
            "s" => t + Duration::seconds(n),
            "m" => t + Duration::minutes(n),
            "h" => t + Duration::hours(n),
            "d" => t + Duration::days(n),
            "w" => t + Duration::weeks(n),
            "M" => add_months(t, n)?,
            "y" => add_months(t, n.checked_mul(12)?)?,
            _ => return None,
        };
    }
    if let Some(unit) = align {
        t = align_to(t, unit)?;
    }
    Some(Millis::from_datetime(t))
}

fn add_months(t: OffsetDateTime, months: i64) -> Option<OffsetDateTime> {
    let total = t.year() as i64 * 12 + (t.month() as i64 - 1) + months;
    let year = i32::try_from(total.div_euclid(12)).ok()?;
    let month = Month::try_from((total.rem_euclid(12) + 1) as u8).ok()?;
    let last = time::util::days_in_month(month, year);
    let day = t.day().min(last);
    let date = Date::from_calendar_date(year, month, day).ok()?;
    Some(t.replace_date(date))
}

fn align_to(t: OffsetDateTime, unit: &str) -> Option<OffsetDateTime> {
    let midnight = t.replace_time(Time::MIDNIGHT);
    Some(match unit {
        "m" => t.replace_second(0).ok()?.replace_nanosecond(0).ok()?,
        "h" => t
            .replace_minute(0)
            .ok()?
            .replace_second(0)
            .ok()?
            .replace_nanosecond(0)
            .ok()?,
        "d" => midnight,
        "w" => {
            let back = midnight.weekday().number_days_from_monday() as i64;
            let _ = Weekday::Monday;
            midnight - Duration::days(back)
        }
        "M" => midnight.replace_day(1).ok()?,
        "y" => midnight
            .replace_day(1)
            .ok()?
            .replace_month(Month::January)
            .ok()?,
        _ => return None,
    })
}

impl FromStr for Millis {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_absolute(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Millis {
        parse_absolute(s).unwrap()
    }

    #[test]
    fn iso_digits_match_the_formatter() {
        // Year 0, four-digit years, the last millisecond of 9999, negative years (formatter
        // path), out of range (the epoch), and a spread of values in between.
        let mut samples = vec![
            0,
            -1,
            1,
            999,
            -62_167_219_200_000,
            -62_167_219_200_001,
            253_402_300_799_999,
            253_402_300_800_000,
            i64::MIN,
            i64::MAX,
            1_793_523_600_000,
        ];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..2_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            samples.push((x % 400_000_000_000_000) as i64 - 100_000_000_000_000);
        }
        for ms in samples {
            let m = Millis(ms);
            assert_eq!(m.iso().as_str(), iso_formatted(m.to_datetime()), "{ms}");
        }
        assert!(matches!(
            Millis(-62_167_219_200_001).iso(),
            IsoMillis::Formatted(_)
        ));
        assert_eq!(Millis(0).iso().as_str(), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn formats() {
        let t = at("2026-03-01T10:20:30.045Z");
        assert_eq!(t.iso_millis(), "2026-03-01T10:20:30.045Z");
        assert_eq!(t.http_date(), "Sun, 01 Mar 2026 10:20:30 GMT");
        assert_eq!(at("2027-01-01T00:00:00Z").rfc3339(), "2027-01-01T00:00:00Z");
    }

    #[test]
    fn inputs() {
        let now = at("2026-01-31T12:00:00Z");
        let p = |s: &str| parse_time_input(s, now).unwrap().iso_millis();
        assert_eq!(p("1700000000000"), "2023-11-14T22:13:20.000Z");
        assert_eq!(
            p("2021-01-25T05:57:01.123+01:00"),
            "2021-01-25T04:57:01.123Z"
        );
        assert_eq!(p("2021-01-25 05:57"), "2021-01-25T05:57:00.000Z");
        assert_eq!(p("2021-01-25T05:57:01"), "2021-01-25T05:57:01.000Z");
        assert_eq!(p("2021-01-25T05:57:01-0230"), "2021-01-25T08:27:01.000Z");
        assert_eq!(p("2021-01-25"), "2021-01-25T00:00:00.000Z");
        assert_eq!(p("now"), "2026-01-31T12:00:00.000Z");
        assert_eq!(p("now+14d"), "2026-02-14T12:00:00.000Z");
        assert_eq!(p("now+1M"), "2026-02-28T12:00:00.000Z");
        assert_eq!(p("now-1y/w"), "2025-01-27T00:00:00.000Z");
        assert_eq!(p("now/d"), "2026-01-31T00:00:00.000Z");
        for bad in [
            "",
            "yesterday",
            "now+14",
            "now*3d",
            "2021-13-01",
            "2021-01-25X05:57",
        ] {
            assert!(parse_time_input(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn clock_advances_and_freezes() {
        let mut c = Clock::new(Some(at("2026-01-01T00:00:00Z")), true);
        assert_eq!(c.now(), at("2026-01-01T00:00:00Z"));
        c.advance(Duration::days(2));
        assert_eq!(c.now(), at("2026-01-03T00:00:00Z"));
        let running = Clock::new(None, false);
        assert!(running.now() >= running.start);
    }
}
