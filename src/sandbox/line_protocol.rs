//! Dynatrace's metric ingestion protocol, one line at a time:
//! `metric.key[,dim=value]* payload [timestamp-ms]`, where the payload is a gauge (`42`,
//! `gauge,42`, `gauge,min=1,max=9,sum=20,count=4`) or a counter (`count,delta=3`).
//!
//! Owns: parsing one line into a [`DataPoint`] or an error message, and the validation rules of
//! the public protocol docs: metric key sections of letters, digits, `-` and `_` with the first
//! starting with a letter, at most 255 characters, the reserved `dt.` prefix refused; dimension
//! keys lower-cased (Dynatrace normalises them), at most 100 characters, at most 50 dimensions,
//! no key twice; values quoted (`"a b"`, with `\"` and `\\`) or plain (`\` escapes the next
//! character), at most 250 characters; numbers finite; a timestamp at most one hour old and ten
//! minutes ahead of sandbox time. The wording of the messages is the sandbox's own (the real ones
//! are not recorded). Comment/metadata lines (`#…`) and empty lines are the caller's to skip. It
//! does not know HTTP or the state; `metrics.rs` does.

use std::collections::BTreeMap;

use super::clock::Millis;
use super::state::{DataPoint, Payload};

pub const MAX_METRIC_KEY_LEN: usize = 255;
pub const MAX_DIMENSION_KEY_LEN: usize = 100;
pub const MAX_DIMENSION_VALUE_LEN: usize = 250;
pub const MAX_DIMENSIONS: usize = 50;
/// How far a timestamp may lie in the past / future of sandbox time, in milliseconds.
pub const MAX_PAST_MS: i64 = 60 * 60 * 1000;
pub const MAX_FUTURE_MS: i64 = 10 * 60 * 1000;

/// Parse one data line; `now` stamps a line without a timestamp and bounds one with it.
pub fn parse_line(line: &str, now: Millis) -> Result<DataPoint, String> {
    let mut cur = Cursor {
        chars: line.trim().chars().collect(),
        pos: 0,
    };
    let metric_key = cur.take_while(|c| c != ',' && !c.is_whitespace());
    check_metric_key(&metric_key)?;
    let mut dimensions = BTreeMap::new();
    while cur.peek() == Some(',') {
        cur.pos += 1;
        let key = cur.take_while(|c| c != '=' && c != ',' && !c.is_whitespace());
        if cur.peek() != Some('=') {
            return Err(format!("dimension `{key}` has no `=value`"));
        }
        cur.pos += 1;
        let key = check_dimension_key(&key)?;
        let value = cur.dimension_value()?;
        if value.chars().count() > MAX_DIMENSION_VALUE_LEN {
            return Err(format!(
                "the value of dimension `{key}` is longer than {MAX_DIMENSION_VALUE_LEN} characters"
            ));
        }
        if dimensions.insert(key.clone(), value).is_some() {
            return Err(format!("dimension `{key}` appears twice"));
        }
        if dimensions.len() > MAX_DIMENSIONS {
            return Err(format!("more than {MAX_DIMENSIONS} dimensions"));
        }
    }
    match cur.peek() {
        Some(c) if c.is_whitespace() => {}
        None => return Err("the line has no value".into()),
        Some(c) => return Err(format!("unexpected `{c}` after the dimensions")),
    }
    cur.skip_whitespace();
    let payload = parse_payload(&cur.take_while(|c| !c.is_whitespace()))?;
    cur.skip_whitespace();
    let timestamp = match cur.take_while(|c| !c.is_whitespace()) {
        t if t.is_empty() => now,
        t => parse_timestamp(&t, now)?,
    };
    cur.skip_whitespace();
    if cur.peek().is_some() {
        return Err("unexpected text after the timestamp".into());
    }
    Ok(DataPoint {
        metric_key,
        dimensions,
        payload,
        timestamp,
    })
}

struct Cursor {
    chars: Vec<char>,
    pos: usize,
}

impl Cursor {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> String {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    fn skip_whitespace(&mut self) {
        self.take_while(char::is_whitespace);
    }

    /// A quoted or plain dimension value, unescaped; the cursor stops at `,`, a space or the end.
    fn dimension_value(&mut self) -> Result<String, String> {
        let mut out = String::new();
        if self.peek() == Some('"') {
            self.pos += 1;
            loop {
                match self.peek() {
                    None => return Err("a quoted dimension value is not closed".into()),
                    Some('"') => {
                        self.pos += 1;
                        break;
                    }
                    Some('\\') => {
                        self.pos += 1;
                        match self.peek() {
                            Some(c) => out.push(c),
                            None => return Err("a quoted dimension value is not closed".into()),
                        }
                        self.pos += 1;
                    }
                    Some(c) => {
                        out.push(c);
                        self.pos += 1;
                    }
                }
            }
            return match self.peek() {
                None | Some(',') => Ok(out),
                Some(c) if c.is_whitespace() => Ok(out),
                Some(c) => Err(format!("unexpected `{c}` after a quoted dimension value")),
            };
        }
        loop {
            match self.peek() {
                None | Some(',') => break,
                Some(c) if c.is_whitespace() => break,
                Some('\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c) => out.push(c),
                        None => return Err("a dimension value ends with `\\`".into()),
                    }
                    self.pos += 1;
                }
                Some('"') => return Err("a `\"` inside a plain dimension value".into()),
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
        Ok(out)
    }
}

fn check_metric_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("the line has no metric key".into());
    }
    if key.len() > MAX_METRIC_KEY_LEN {
        return Err(format!(
            "metric key is longer than {MAX_METRIC_KEY_LEN} characters"
        ));
    }
    if key == "dt" || key.starts_with("dt.") {
        return Err(format!(
            "invalid metric key `{key}`: the `dt.` prefix is reserved"
        ));
    }
    let sections_ok = key.split('.').all(|s| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    });
    if !sections_ok || !key.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(format!(
            "invalid metric key `{key}`: sections of letters, digits, `-` and `_`, separated by `.`, starting with a letter"
        ));
    }
    Ok(())
}

fn check_dimension_key(key: &str) -> Result<String, String> {
    let lower = key.to_ascii_lowercase();
    if lower.is_empty() {
        return Err("a dimension has an empty key".into());
    }
    if lower.len() > MAX_DIMENSION_KEY_LEN {
        return Err(format!(
            "dimension key `{key}` is longer than {MAX_DIMENSION_KEY_LEN} characters"
        ));
    }
    let ok = lower.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && lower
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.:".contains(c));
    if !ok {
        return Err(format!(
            "invalid dimension key `{key}`: letters, digits, `-`, `_`, `.` and `:`, starting with a letter"
        ));
    }
    Ok(lower)
}

fn number(text: &str, what: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("invalid {what} `{text}`: expected a finite number")),
    }
}

fn parse_payload(text: &str) -> Result<Payload, String> {
    let (kind, rest) = match text.split_once(',') {
        Some((k, r)) => (k, Some(r)),
        None => (text, None),
    };
    match (kind, rest) {
        (v, None) => Ok(Payload::Gauge {
            value: number(v, "value")?,
        }),
        ("gauge", Some(r)) if !r.contains('=') => Ok(Payload::Gauge {
            value: number(r, "value")?,
        }),
        ("gauge", Some(r)) => {
            let fields = key_values(r)?;
            let get = |name: &str| {
                fields
                    .get(name)
                    .ok_or_else(|| format!("a gauge summary needs `{name}=`"))
                    .and_then(|v| number(v, name))
            };
            if fields.len() != 4 {
                return Err("a gauge summary has exactly min, max, sum and count".into());
            }
            let (min, max, sum, count) = (get("min")?, get("max")?, get("sum")?, get("count")?);
            if min > max {
                return Err("gauge summary: min is greater than max".into());
            }
            if count < 1.0 || count.fract() != 0.0 {
                return Err("gauge summary: count must be a whole number of at least 1".into());
            }
            Ok(Payload::Summary {
                min,
                max,
                sum,
                count: count as u64,
            })
        }
        ("count", Some(r)) => match r.split_once('=') {
            Some(("delta", v)) => Ok(Payload::Count {
                delta: number(v, "delta")?,
            }),
            _ => Err("a counter is written `count,delta=<number>`".into()),
        },
        (other, Some(_)) => Err(format!(
            "unknown payload type `{other}`: expected `gauge` or `count`"
        )),
    }
}

fn key_values(text: &str) -> Result<BTreeMap<&str, &str>, String> {
    let mut out = BTreeMap::new();
    for part in text.split(',') {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("expected `name=value`, found `{part}`"))?;
        if out.insert(k, v).is_some() {
            return Err(format!("`{k}=` appears twice"));
        }
    }
    Ok(out)
}

fn parse_timestamp(text: &str, now: Millis) -> Result<Millis, String> {
    let ms: i64 = text
        .parse()
        .map_err(|_| format!("invalid timestamp `{text}`: expected milliseconds since 1970"))?;
    // UNCERTAIN: the docs allow one hour back and ten minutes ahead; whether Dynatrace rejects a
    // point outside that window as an invalid line or drops it with a warning is not recorded.
    // The sandbox rejects it, so a client with a skewed clock notices.
    if ms < now.0 - MAX_PAST_MS || ms > now.0 + MAX_FUTURE_MS {
        return Err(format!(
            "timestamp {text} is outside the accepted range (one hour back, ten minutes ahead of {})",
            now.iso_millis()
        ));
    }
    Ok(Millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = Millis(1_780_000_000_000);

    fn ok(line: &str) -> DataPoint {
        parse_line(line, NOW).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    fn err(line: &str) -> String {
        match parse_line(line, NOW) {
            Ok(p) => panic!("{line} parsed as {p:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn parses_the_documented_forms() {
        let p = ok("server.cpu.temperature,cpu.id=0 42");
        assert_eq!(p.metric_key, "server.cpu.temperature");
        assert_eq!(p.dimensions["cpu.id"], "0");
        assert_eq!(p.payload, Payload::Gauge { value: 42.0 });
        assert_eq!(p.timestamp, NOW);

        let ts = NOW.0 - 1000;
        let p = ok(&format!("a.b,Host=\"web 1\",path=/x\\,y gauge,1.5e2 {ts}"));
        assert_eq!(p.dimensions["host"], "web 1", "keys are lower-cased");
        assert_eq!(p.dimensions["path"], "/x,y");
        assert_eq!(p.payload, Payload::Gauge { value: 150.0 });
        assert_eq!(p.timestamp, Millis(ts));

        assert_eq!(
            ok("a.b gauge,min=1,max=9,sum=20,count=4").payload,
            Payload::Summary {
                min: 1.0,
                max: 9.0,
                sum: 20.0,
                count: 4
            }
        );
        assert_eq!(
            ok("  req.count,q=\"say \\\"hi\\\"\" count,delta=-3  ").payload,
            Payload::Count { delta: -3.0 }
        );
        assert_eq!(
            ok("req.count,q=\"say \\\"hi\\\"\" count,delta=-3").dimensions["q"],
            "say \"hi\""
        );
    }

    #[test]
    fn rejects_what_the_protocol_forbids() {
        for (line, needle) in [
            ("", "no metric key"),
            ("1abc 1", "invalid metric key"),
            ("a..b 1", "invalid metric key"),
            ("a.b$ 1", "invalid metric key"),
            ("dt.host.cpu 1", "reserved"),
            ("a.b", "no value"),
            ("a.b,x 1", "no `=value`"),
            ("a.b,9x=1 1", "invalid dimension key"),
            ("a.b,x=1,x=2 1", "twice"),
            ("a.b,x=\"open 1", "not closed"),
            ("a.b,x=a\"b 1", "plain dimension value"),
            ("a.b abc", "invalid value"),
            ("a.b NaN", "finite"),
            ("a.b inf", "finite"),
            ("a.b gauge,min=3,max=1,sum=4,count=2", "greater than max"),
            ("a.b gauge,min=1,max=3,sum=4", "exactly"),
            ("a.b count,5", "count,delta="),
            ("a.b histogram,5", "unknown payload type"),
            ("a.b 1 notatime", "invalid timestamp"),
            ("a.b 1 1000", "outside the accepted range"),
        ] {
            let e = err(line);
            assert!(e.contains(needle), "{line:?}: {e}");
        }
        assert!(err(&format!("a.b 1 {}", NOW.0 + MAX_FUTURE_MS + 1)).contains("range"));
        assert!(err(&format!("a.b 1 {} extra", NOW.0)).contains("after the timestamp"));
        let many: Vec<String> = (0..51).map(|i| format!("k{i}=v")).collect();
        assert!(err(&format!("a.b,{} 1", many.join(","))).contains("more than 50"));
        assert!(err(&format!("a.{} 1", "x".repeat(300))).contains("longer"));
        assert!(err(&format!("a.b,k={} 1", "v".repeat(251))).contains("longer"));
    }
}
