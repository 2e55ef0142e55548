//! The plain-text part, when the template does not provide one: html2text over the
//! final HTML (links already tracked), minus the hidden preheader and honeypot link.

use super::RenderError;

/// Line width of generated text (RFC 3676 suggests at most 78).
const WIDTH: usize = 78;
/// Blocks of the HTML part that no reader sees, so the text part leaves them out: the
/// preheader and the honeypot link.
pub(crate) const HIDDEN: [(&str, &str); 2] = [
    ("<!--preheader-->", "<!--/preheader-->"),
    ("<!--honeypot-->", "<!--/honeypot-->"),
];

pub(crate) fn from_html(html: &str) -> Result<String, RenderError> {
    let visible = strip_hidden(html);
    let text = html2text::config::plain()
        .raw_mode(true)
        .no_link_wrapping()
        .allow_width_overflow()
        .string_from_read(visible.as_bytes(), WIDTH)
        .map_err(|e| RenderError::Mime(format!("plain-text conversion failed: {e}")))?;
    Ok(squeeze_blank_lines(&text))
}

fn strip_hidden(html: &str) -> std::borrow::Cow<'_, str> {
    let mut html = std::borrow::Cow::Borrowed(html);
    for (start_mark, end_mark) in HIDDEN {
        let Some(start) = html.find(start_mark) else {
            continue;
        };
        if let Some(len) = html[start..].find(end_mark) {
            let end = start + len + end_mark.len();
            html = [&html[..start], &html[end..]].concat().into();
        }
    }
    html
}

/// Layout tables leave runs of empty lines; keep at most one.
fn squeeze_blank_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines() {
        let line = line.trim_end();
        blank = if line.is_empty() { blank + 1 } else { 0 };
        if blank <= 1 {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.trim_start_matches('\n').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_keeps_words_and_links_but_not_hidden_blocks() {
        let [(pre_start, pre_end), (pot_start, pot_end)] = HIDDEN;
        let html = format!(
            "<html><body>{pre_start}<div>preview</div>{pre_end}<table><tr><td><h1>Hi Ann</h1></td></tr>\
             <tr><td><p>See <a href=\"https://t.example/c/abc\">our sale</a></p></td></tr></table>\
             {pot_start}<a href=\"https://t.example/c/pot\"></a>{pot_end}</body></html>"
        );
        let text = from_html(&html).expect("converts");
        assert!(text.contains("Hi Ann"), "{text}");
        assert!(text.contains("https://t.example/c/abc"), "{text}");
        assert!(!text.contains("preview"), "{text}");
        assert!(!text.contains("/c/pot"), "{text}");
        assert!(!text.contains("\n\n\n"));
    }
}
