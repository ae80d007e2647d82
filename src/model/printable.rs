//! Text from outside shown on a terminal or in a CI log: a server's error message, a token's
//! owner or last-used address. Such text is the server's to choose, and printed raw an escape
//! sequence clears the screen or retitles the window, and a line break forges a line of
//! tokensmith's own (`error: …`, or a GitHub Actions `::` command). [`printable`] writes every
//! control character as an escape (`\u{1b}`, `\n`), leaving all other text as it is.

/// `text` with its control characters (C0, DEL and C1) escaped.
pub fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    let mut shown = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(
            printable("\u{1b}[2J\u{1b}]0;pwned\u{7}\r\nerror: forged"),
            "\\u{1b}[2J\\u{1b}]0;pwned\\u{7}\\r\\nerror: forged"
        );
        assert_eq!(printable("Büro 10.0.0.1 ✓"), "Büro 10.0.0.1 ✓");
        assert_eq!(printable("\u{9b}31m"), "\\u{9b}31m");
    }
}
