//! A string builder that refuses to grow past a byte limit, for pull-request comments
//! (GitHub rejects comments over 65,536 characters).

/// The most a markdown rendering may contain, in bytes (which bounds the characters too).
pub const MARKDOWN_LIMIT: usize = 65_000;

/// Room kept for the closing lines and the truncation note.
const RESERVE: usize = 1_000;

pub(crate) struct Limited {
    buf: String,
    limit: usize,
    pub truncated: usize,
}

impl Limited {
    pub fn new(limit: usize) -> Self {
        Limited {
            buf: String::new(),
            limit,
            truncated: 0,
        }
    }

    /// Append a line if it fits below the limit minus the reserve; count it as cut otherwise.
    pub fn line(&mut self, s: &str) -> bool {
        if self.truncated > 0 || self.buf.len() + s.len() + 1 > self.limit - RESERVE {
            self.truncated += 1;
            return false;
        }
        self.buf.push_str(s);
        self.buf.push('\n');
        true
    }

    /// Append a line that must always be there (closing tags, notes); uses the reserve.
    pub fn always(&mut self, s: &str) {
        if self.buf.len() + s.len() < self.limit {
            self.buf.push_str(s);
            self.buf.push('\n');
        }
    }

    /// Start a new section: lines cut in the previous one do not stop this one.
    pub fn take_truncated(&mut self) -> usize {
        std::mem::take(&mut self.truncated)
    }

    pub fn finish(self) -> String {
        self.buf
    }
}

/// Text for a markdown table cell or list item: pipes escaped, no newlines, in a code span.
pub(crate) fn code(s: &str) -> String {
    let s = s.replace('|', "\\|").replace(['\n', '\r'], " ");
    let s = crate::model::printable::printable(&s);
    if s.contains('`') {
        format!("`` {s} ``")
    } else {
        format!("`{s}`")
    }
}

/// Plain text for markdown: pipes and angle brackets escaped, no newlines.
pub(crate) fn text(s: &str) -> String {
    crate::model::printable::printable(
        &s.replace('|', "\\|")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace(['\n', '\r'], " "),
    )
}
