//! `json` files: set one string value at a dotted key path by splicing its bytes, so every
//! other byte (order, spacing, number formatting, escapes) is kept.
//!
//! A small scanner walks the document to the value's byte span; the new value is written as a
//! JSON string literal in its place. The result is checked by parsing old and new documents: they
//! must be equal except at the key. Limits: the key must already exist and hold a string (or
//! `null`); path segments name object members only (no array indexes, no dots inside member
//! names). The record goes to the sidecar file, since JSON has no comments.

/// The string at `path`, if the path exists (error if it holds something else than a string).
pub fn read(content: &str, path: &[&str]) -> Result<Option<String>, String> {
    let doc: serde_json::Value =
        serde_json::from_str(content).map_err(|e| format!("the file is not valid JSON: {e}"))?;
    let mut node = &doc;
    for seg in path {
        match node.get(seg) {
            Some(next) => node = next,
            None => return Ok(None),
        }
    }
    match node {
        serde_json::Value::String(s) => Ok(Some(s.clone())),
        serde_json::Value::Null => Ok(Some(String::new())),
        other => Err(format!(
            "`{}` holds {}, not a string",
            path.join("."),
            kind(other)
        )),
    }
}

/// `content` with the string at `path` replaced by `value`.
pub fn write(content: &str, path: &[&str], value: &str) -> Result<String, String> {
    let key = path.join(".");
    let old: serde_json::Value =
        serde_json::from_str(content).map_err(|e| format!("the file is not valid JSON: {e}"))?;
    let mut scanner = Scanner {
        s: content.as_bytes(),
        i: 0,
    };
    scanner.ws();
    let (start, end) = scanner.find(path)?.ok_or_else(|| {
        format!("key `{key}` is not in the file; tokensmith updates existing keys in json files, so add it with a placeholder value first")
    })?;
    let span = &content[start..end];
    if !(span.starts_with('"') || span == "null") {
        let v: serde_json::Value = serde_json::from_str(span).unwrap_or(serde_json::Value::Null);
        return Err(format!("`{key}` holds {}, not a string", kind(&v)));
    }
    let literal = serde_json::to_string(value).map_err(|e| e.to_string())?;
    let mut out = String::with_capacity(content.len() + literal.len());
    out.push_str(&content[..start]);
    out.push_str(&literal);
    out.push_str(&content[end..]);

    // The splice must change exactly the value at the path.
    let new: serde_json::Value = serde_json::from_str(&out)
        .map_err(|e| format!("updating `{key}` would break the file ({e}); nothing was written"))?;
    let mut expected = old;
    let mut node = &mut expected;
    for seg in path {
        node = node
            .get_mut(seg)
            .ok_or_else(|| format!("key `{key}` vanished while updating"))?;
    }
    *node = serde_json::Value::String(value.to_owned());
    if new != expected {
        return Err(format!(
            "updating `{key}` in place would change other parts of the file; nothing was written"
        ));
    }
    Ok(out)
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Walks a JSON text that serde already accepted, tracking byte offsets.
struct Scanner<'a> {
    s: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("unexpected JSON at byte {}", self.i))
        }
    }

    /// The byte span of the value at `path`, starting at the current value.
    fn find(&mut self, path: &[&str]) -> Result<Option<(usize, usize)>, String> {
        let Some((seg, rest)) = path.split_first() else {
            let start = self.i;
            self.skip_value()?;
            return Ok(Some((start, self.i)));
        };
        if self.peek() != Some(b'{') {
            return Ok(None);
        }
        self.i += 1;
        loop {
            self.ws();
            if self.peek() == Some(b'}') {
                return Ok(None);
            }
            let key = self.string()?;
            self.ws();
            self.expect(b':')?;
            self.ws();
            if key == *seg {
                return self.find(rest);
            }
            self.skip_value()?;
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => return Ok(None),
                _ => return Err(format!("unexpected JSON at byte {}", self.i)),
            }
        }
    }

    /// A string literal, decoded.
    fn string(&mut self) -> Result<String, String> {
        let start = self.i;
        self.skip_string()?;
        serde_json::from_slice(&self.s[start..self.i]).map_err(|e| e.to_string())
    }

    fn skip_string(&mut self) -> Result<(), String> {
        self.expect(b'"')?;
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'\\' => self.i += 1,
                b'"' => return Ok(()),
                _ => {}
            }
        }
        Err("unterminated JSON string".to_owned())
    }

    fn skip_value(&mut self) -> Result<(), String> {
        match self.peek() {
            Some(b'"') => self.skip_string(),
            Some(open @ (b'{' | b'[')) => {
                let close = if open == b'{' { b'}' } else { b']' };
                self.i += 1;
                loop {
                    self.ws();
                    match self.peek() {
                        Some(c) if c == close => {
                            self.i += 1;
                            return Ok(());
                        }
                        Some(b',' | b':') => self.i += 1,
                        Some(_) => self.skip_value()?,
                        None => return Err("unterminated JSON value".to_owned()),
                    }
                }
            }
            Some(_) => {
                while let Some(c) = self.peek() {
                    if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                        break;
                    }
                    self.i += 1;
                }
                Ok(())
            }
            None => Err("unexpected end of JSON".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splices_only_the_value() {
        let input = "{\n  \"a\": 1.50,\n  \"auth\": { \"x\": [1, {\"token\": \"no\"}], \"token\" :\"old\" },\n  \"z\": \"\\u00e9\"\n}\n";
        let out = write(input, &["auth", "token"], "new").unwrap();
        assert_eq!(out, input.replace("\"old\"", "\"new\""));
        assert_eq!(read(&out, &["auth", "token"]).unwrap(), Some("new".into()));
        assert!(write(input, &["auth", "missing"], "v")
            .unwrap_err()
            .contains("placeholder"));
        assert!(write(input, &["a"], "v").unwrap_err().contains("a number"));
    }
}
