//! File modes as the spec writes them (`mode: "0600"`). The atomic replace itself is
//! [`crate::atomic_write`], shared with the other files tokensmith writes (saved plans, metrics).

pub use crate::atomic_write::write_atomic;

/// Parse an octal file mode as written in the spec: `"0600"`, `"600"` or `"0o600"`.
pub fn parse_mode(text: &str) -> Result<u32, String> {
    let digits = text.trim();
    let digits = digits.strip_prefix("0o").unwrap_or(digits);
    let mode = u32::from_str_radix(digits, 8)
        .map_err(|_| format!("mode `{text}` is not an octal file mode; write it like \"0600\""))?;
    if mode > 0o7777 || digits.is_empty() {
        return Err(format!(
            "mode `{text}` is out of range; write it like \"0600\""
        ));
    }
    Ok(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_as_octal() {
        assert_eq!(parse_mode("0600"), Ok(0o600));
        assert_eq!(parse_mode("640"), Ok(0o640));
        assert_eq!(parse_mode("0o644"), Ok(0o644));
        assert!(parse_mode("0800").is_err());
        assert!(parse_mode("rw").is_err());
        assert!(parse_mode("").is_err());
        assert!(parse_mode("17777").is_err());
    }
}
