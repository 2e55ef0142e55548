//! CSS inlining, once per campaign, on the template source itself.
//!
//! The inliner parses HTML, which would mangle Tera syntax (a `{% for %}` between two
//! `<tr>` is foster-parented out of the table). So every Tera construct is first swapped
//! for a placeholder the HTML parser leaves in place — a comment between elements, a
//! plain word inside a tag — and swapped back afterwards.

use super::RenderError;
use super::links::skip_tera;

const MARK: &str = "mctera";

pub(crate) fn inline(source: &str) -> Result<String, RenderError> {
    if !source.to_ascii_lowercase().contains("<style") {
        return Ok(source.to_string());
    }
    let (protected, constructs) = protect(source)?;
    let inliner = css_inline::CSSInliner::options()
        .load_remote_stylesheets(false)
        .keep_link_tags(true)
        .keep_at_rules(true)
        .apply_width_attributes(true)
        .build();
    let inlined = inliner
        .inline(&protected)
        .map_err(|e| RenderError::Css(e.to_string()))?;
    restore(&inlined, &constructs)
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Text,
    Tag,
    Quoted(u8),
}

/// Replaces Tera constructs by numbered placeholders; returns them in order.
fn protect(source: &str) -> Result<(String, Vec<&str>), RenderError> {
    let bytes = source.as_bytes();
    let mut out = String::with_capacity(source.len() + 512);
    let mut constructs = Vec::new();
    let mut state = State::Text;
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(end) = skip_tera(source, i) {
            out.push_str(&source[copied..i]);
            let n = constructs.len();
            constructs.push(&source[i..end]);
            match state {
                State::Text => out.push_str(&format!("<!--{MARK}{n}-->")),
                State::Quoted(_) => out.push_str(&format!("{MARK}{n}x")),
                State::Tag => return Err(between_attributes(source, i, end)),
            }
            i = end;
            copied = end;
            continue;
        }
        state = next_state(state, bytes, i);
        i += 1;
    }
    out.push_str(&source[copied..]);
    Ok((out, constructs))
}

/// The HTML parser may reorder attributes, so a tag between them would end up
/// guarding the wrong one.
fn between_attributes(source: &str, start: usize, end: usize) -> RenderError {
    let line = source[..start].matches('\n').count() + 1;
    RenderError::Css(format!(
        "line {line}: `{}` stands between attributes; put it inside an attribute value \
         (class=\"{{% if x %}}a{{% endif %}}\") so that CSS can be inlined",
        &source[start..end]
    ))
}

fn next_state(state: State, bytes: &[u8], i: usize) -> State {
    let b = bytes[i];
    match state {
        State::Text => {
            let opens_tag = b == b'<'
                && bytes
                    .get(i + 1)
                    .is_some_and(|n| n.is_ascii_alphabetic() || matches!(n, b'/' | b'!'));
            if opens_tag { State::Tag } else { State::Text }
        }
        State::Tag => match b {
            b'>' => State::Text,
            b'"' | b'\'' => State::Quoted(b),
            _ => State::Tag,
        },
        State::Quoted(q) if b == q => State::Tag,
        quoted => quoted,
    }
}

fn restore(inlined: &str, constructs: &[&str]) -> Result<String, RenderError> {
    let mut out = inlined.to_string();
    for (n, construct) in constructs.iter().enumerate().rev() {
        let forms = [
            format!("<!--{MARK}{n}-->"),
            format!("&lt;!--{MARK}{n}--&gt;"),
            format!("{MARK}{n}x=\"\""),
            format!("{MARK}{n}x"),
        ];
        if !forms.iter().any(|f| out.contains(f.as_str())) {
            return Err(RenderError::Css(format!(
                "template tag `{construct}` was lost while inlining CSS; keep Tera out of <style>"
            )));
        }
        for form in &forms {
            out = out.replace(form.as_str(), construct);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn styles_are_inlined_and_tera_survives_tables_and_attributes() {
        let source = r#"<html><head><style>td { color: red; } @media (max-width: 600px) { td { color: blue; } }</style></head>
<body><table><tbody>{% for p in items %}<tr><td class="{{ p.class }}" id="{% if p.x %}x{% endif %}">{{ p.name }}</td></tr>{% endfor %}</tbody></table>
<a href="{{ p.url | default(value='https://x.example/') }}">x</a></body></html>"#;
        let out = inline(source).expect("inlines");
        assert!(out.contains(r#"style="color: red;""#), "{out}");
        assert!(out.contains("@media"), "{out}");
        let tera = [
            "{% for p in items %}<tr>",
            "{{ p.class }}",
            r#"id="{% if p.x %}x{% endif %}""#,
            "{{ p.name }}</td>",
            "</tr>{% endfor %}</tbody>",
        ];
        for construct in tera {
            assert!(out.contains(construct), "{construct} lost in {out}");
        }
        assert!(out.contains("default(value='https://x.example/')"), "{out}");
    }

    #[test]
    fn tera_between_attributes_is_refused_with_its_line() {
        let source = "<style>td{color:red}</style>\n<td {% if x %}id=\"x\"{% endif %}>a</td>";
        let error = inline(source).unwrap_err().to_string();
        assert!(
            error.contains("line 2") && error.contains("{% if x %}"),
            "{error}"
        );
    }

    #[test]
    fn html_without_style_is_left_alone() {
        let source = "<p {% if x %}id=\"x\"{% endif %}>{{ a }}</p>";
        assert_eq!(inline(source).expect("no-op"), source);
    }
}
