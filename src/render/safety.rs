//! The rules that keep recipient data from becoming markup, headers or SMTP commands.

use std::io::Write;

use super::RenderError;

/// Marks where a tracked link starts and ends in rendered HTML (see `links.rs`).
/// Recipient data can never carry them: [`escape_html`] drops them.
pub(crate) const LINK_START: char = '\u{1}';
pub(crate) const LINK_END: char = '\u{2}';

/// Tera's HTML escaping (`& < > " '`), minus C0 control characters other than tab, CR
/// and LF: they are invalid in HTML and two of them delimit tracked links.
pub(crate) fn escape_html(input: &str, out: &mut dyn Write) -> std::io::Result<()> {
    // Values escaped into a `{% set %}` capture never reach the limited writer: the
    // message's time is checked here too.
    super::limits::check_time()?;
    if !input.bytes().any(is_stray_control) {
        return tera::escape_html(input, out);
    }
    let cleaned: String = input
        .chars()
        .filter(|c| !c.is_ascii() || !is_stray_control(*c as u8))
        .collect();
    tera::escape_html(&cleaned, out)
}

fn is_stray_control(byte: u8) -> bool {
    byte < 0x20 && !matches!(byte, b'\t' | b'\n' | b'\r')
}

/// A header value must stay on one line: CR or LF would start a new header.
/// Other control characters have no business in a header either.
pub(crate) fn check_header(field: &'static str, value: &str) -> Result<(), RenderError> {
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(RenderError::HeaderInjection {
            field,
            value: value.chars().take(200).collect(),
        });
    }
    Ok(())
}

/// Every line break becomes CRLF (lone CR, lone LF and CRLF alike), so the SMTP layer
/// sees exactly the lines we see: a line holding a lone `.` is dot-stuffed by the
/// transport instead of ending DATA early.
pub fn normalize_crlf(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + text.len() / 32);
    let mut start = 0;
    while let Some(found) = memchr::memchr2(b'\r', b'\n', &bytes[start..]) {
        let i = start + found;
        out.push_str(&text[start..i]);
        out.push_str("\r\n");
        start = i + if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            2
        } else {
            1
        };
    }
    out.push_str(&text[start..]);
    out
}

/// True when every line break in `bytes` is a CRLF pair.
pub fn is_crlf_only(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().all(|(i, &b)| match b {
        b'\n' => i > 0 && bytes[i - 1] == b'\r',
        b'\r' => bytes.get(i + 1) == Some(&b'\n'),
        _ => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(input: &str) -> String {
        let mut out = Vec::new();
        escape_html(input, &mut out).expect("writing to a Vec");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn escaping_covers_text_and_attribute_contexts() {
        assert_eq!(
            escaped(r#"<a href=x>"'&"#),
            "&lt;a href=x&gt;&quot;&#39;&amp;"
        );
    }

    #[test]
    fn escaping_drops_link_markers_and_other_controls() {
        assert_eq!(escaped("a\u{1}b\u{2}c\u{0}d\te"), "abcd\te");
    }

    #[test]
    fn header_values_with_line_breaks_are_refused() {
        assert!(check_header("Subject", "Hello Ann").is_ok());
        for bad in [
            "Hi\r\nBcc: x@evil.example",
            "Hi\nthere",
            "Hi\rthere",
            "nul\0",
        ] {
            assert!(matches!(
                check_header("Subject", bad),
                Err(RenderError::HeaderInjection {
                    field: "Subject",
                    ..
                })
            ));
        }
    }

    #[test]
    fn line_breaks_become_crlf() {
        assert_eq!(normalize_crlf("a\n.\nb\r\nc\rd"), "a\r\n.\r\nb\r\nc\r\nd");
        assert!(is_crlf_only(normalize_crlf("x\n\n\r\r\n.\n").as_bytes()));
        assert!(!is_crlf_only(b"a\nb"));
        assert!(!is_crlf_only(b"a\rb"));
    }
}
