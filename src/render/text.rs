//! The plain-text part, when the template does not provide one: html2text over the
//! final HTML (links already tracked), minus the hidden preheader.

use super::RenderError;

/// Line width of generated text (RFC 3676 suggests at most 78).
const WIDTH: usize = 78;
pub(crate) const HIDDEN_START: &str = "<!--preheader-->";
pub(crate) const HIDDEN_END: &str = "<!--/preheader-->";

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
    let Some(start) = html.find(HIDDEN_START) else {
        return html.into();
    };
    match html[start..].find(HIDDEN_END) {
        Some(len) => [&html[..start], &html[start + len + HIDDEN_END.len()..]]
            .concat()
            .into(),
        None => html.into(),
    }
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
    fn text_keeps_words_and_links_but_not_the_hidden_preheader() {
        let html = format!(
            "<html><body>{HIDDEN_START}<div>preview</div>{HIDDEN_END}<table><tr><td><h1>Hi Ann</h1></td></tr>\
             <tr><td><p>See <a href=\"https://t.example/c/abc\">our sale</a></p></td></tr></table></body></html>"
        );
        let text = from_html(&html).expect("converts");
        assert!(text.contains("Hi Ann"), "{text}");
        assert!(text.contains("https://t.example/c/abc"), "{text}");
        assert!(!text.contains("preview"), "{text}");
        assert!(!text.contains("\n\n\n"));
    }
}
