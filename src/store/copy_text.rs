//! Rows for PostgreSQL's `COPY … FROM STDIN` in its text format: columns separated by
//! tabs, `\N` for NULL, backslash escapes for the characters that would end a value.

use std::fmt::Write as _;

#[derive(Default)]
pub(crate) struct CopyText {
    buffer: String,
    /// Whether the current line has a column yet.
    started: bool,
}

impl CopyText {
    pub fn with_capacity(bytes: usize) -> CopyText {
        CopyText {
            buffer: String::with_capacity(bytes),
            started: false,
        }
    }

    pub fn text(&mut self, value: &str) -> &mut Self {
        self.separate();
        for c in value.chars() {
            match c {
                '\\' => self.buffer.push_str("\\\\"),
                '\t' => self.buffer.push_str("\\t"),
                '\n' => self.buffer.push_str("\\n"),
                '\r' => self.buffer.push_str("\\r"),
                c => self.buffer.push(c),
            }
        }
        self
    }

    pub fn optional_text(&mut self, value: Option<&str>) -> &mut Self {
        match value {
            Some(value) => self.text(value),
            None => self.null(),
        }
    }

    pub fn int(&mut self, value: i64) -> &mut Self {
        self.separate();
        let _ = write!(self.buffer, "{value}");
        self
    }

    pub fn optional_int(&mut self, value: Option<i64>) -> &mut Self {
        match value {
            Some(value) => self.int(value),
            None => self.null(),
        }
    }

    pub fn json(&mut self, value: &serde_json::Map<String, serde_json::Value>) -> &mut Self {
        let text = serde_json::to_string(value).expect("a JSON map serialises");
        self.text(&text)
    }

    pub fn null(&mut self) -> &mut Self {
        self.separate();
        self.buffer.push_str("\\N");
        self
    }

    pub fn end_row(&mut self) {
        self.buffer.push('\n');
        self.started = false;
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_bytes()
    }

    fn separate(&mut self) {
        if self.started {
            self.buffer.push('\t');
        }
        self.started = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_would_end_a_column_or_row_are_escaped() {
        let mut copy = CopyText::default();
        copy.text("a\tb\\c\nd\re").optional_text(None).int(-7);
        copy.end_row();
        assert_eq!(copy.as_bytes(), b"a\\tb\\\\c\\nd\\re\t\\N\t-7\n");
    }
}
