//! MJML → HTML, once per campaign. A template is MJML when its body starts with
//! `<mjml`. Tera control tags between MJML elements belong in `<mj-raw>` so that the
//! MJML compiler passes them through untouched.

use super::RenderError;

pub(crate) fn is_mjml(source: &str) -> bool {
    let head = source.trim_start();
    head.get(..5)
        .is_some_and(|h| h.eq_ignore_ascii_case("<mjml"))
}

pub(crate) fn compile(source: &str) -> Result<String, RenderError> {
    let parsed = mrml::parse(source).map_err(|e| RenderError::Mjml(e.to_string()))?;
    let options = mrml::prelude::render::RenderOptions {
        disable_comments: true,
        ..Default::default()
    };
    parsed
        .element
        .render(&options)
        .map_err(|e| RenderError::Mjml(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mjml_is_detected_by_its_root_element() {
        assert!(is_mjml("\n  <mjml><mj-body></mj-body></mjml>"));
        assert!(!is_mjml("<html><body>mjml</body></html>"));
    }

    #[test]
    fn tera_survives_mjml_compilation() {
        let source = r#"<mjml><mj-body><mj-section><mj-column>
<mj-raw>{% for p in items %}</mj-raw>
<mj-text>Hello {{ recipient.first_name | default(value="there") }}</mj-text>
<mj-button href="{{ p.url }}">Buy</mj-button>
<mj-raw>{% endfor %}</mj-raw>
</mj-column></mj-section></mj-body></mjml>"#;
        let html = compile(source).expect("compiles");
        for construct in [
            "{% for p in items %}",
            r#"{{ recipient.first_name | default(value="there") }}"#,
            "{{ p.url }}",
            "{% endfor %}",
        ] {
            assert!(html.contains(construct), "{construct} lost in {html}");
        }
    }
}
