//! Per-campaign preparation: MJML, CSS inlining, link marking, preheader and open
//! pixel placement, and one Tera instance holding every part, compiled once.

use tera::{Kwargs, State, Tera, TeraResult, Value};

use super::error::{Part, from_tera};
use super::limits::{Budget, LimitedWriter};
use super::links::LinkPlan;
use super::{RenderError, css, mjml, safety};
use crate::store::Template;

pub(crate) const SUBJECT: &str = "subject.txt";
pub(crate) const PREHEADER: &str = "preheader.txt";
pub(crate) const BODY: &str = "body.html";
pub(crate) const TEXT: &str = "text.txt";

/// Hidden text right after `<body>`: the inbox preview line.
const PREHEADER_BLOCK: &str = "<!--preheader--><div style=\"display:none;font-size:1px;line-height:1px;\
max-height:0;max-width:0;opacity:0;overflow:hidden;mso-hide:all;\">{{ preheader }}</div><!--/preheader-->";
const OPEN_PIXEL: &str = "<img src=\"{{ open_pixel_url }}\" width=\"1\" height=\"1\" alt=\"\" \
style=\"display:block;width:1px;height:1px;border:0;\">";
/// A link no person sees or reaches (hidden, not announced, not focusable) and that
/// the text part leaves out: whoever requests it follows every link of a message
/// without looking, a scanner (see `http::verdict`).
const HONEYPOT_LINK: &str = "<!--honeypot--><a href=\"{{ honeypot_url }}\" style=\"display:none\" \
aria-hidden=\"true\" tabindex=\"-1\"></a><!--/honeypot-->";

/// `html` without the open pixel, rendered with an empty URL.
pub(crate) fn without_open_pixel(html: &str) -> String {
    let pixel = OPEN_PIXEL.replace("{{ open_pixel_url }}", "");
    match html.rfind(&pixel) {
        Some(at) => [&html[..at], &html[at + pixel.len()..]].concat(),
        None => html.to_string(),
    }
}

/// A campaign template ready to render for any number of recipients.
pub(crate) struct Compiled {
    pub tera: Tera,
    pub has_preheader: bool,
    pub has_text: bool,
    /// The final sources by part, to quote the failing expression in render errors.
    sources: Vec<(Part, String)>,
}

impl Compiled {
    pub fn new(
        template: &Template,
        plan: &mut LinkPlan,
        require_unsubscribe: bool,
        campaign: &tera::Context,
    ) -> Result<Self, RenderError> {
        let subject = template.subject.trim_end_matches(['\r', '\n']).to_string();
        let preheader = template
            .preheader
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty());
        let text = template.text.as_deref().filter(|t| !t.trim().is_empty());
        // Syntax errors are reported against the source as written, before MJML and CSS
        // inlining move lines around.
        check_syntax(Part::Html, &template.html)?;
        if require_unsubscribe {
            require_unsubscribe_link(Part::Html, &template.html)?;
            if let Some(text) = text {
                require_unsubscribe_link(Part::Text, text)?;
            }
        }
        let body = prepare_body(&template.html, plan, preheader.is_some())?;
        let mut sources = vec![(Part::Subject, subject), (Part::Html, body)];
        if let Some(preheader) = preheader {
            sources.push((Part::Preheader, preheader.to_string()));
        }
        if let Some(text) = text {
            sources.push((Part::Text, text.to_string()));
        }
        let mut tera = new_tera();
        tera.global_context().extend(campaign.clone());
        for (part, source) in &sources {
            tera.add_raw_template(name(*part), source)
                .map_err(|e| from_tera(*part, source, &e, true))?;
        }
        Ok(Self {
            tera,
            has_preheader: preheader.is_some(),
            has_text: text.is_some(),
            sources,
        })
    }

    /// Renders one part, spending from the message's `budget`; errors name the line,
    /// column and failing expression, or the limit crossed.
    pub fn render(
        &self,
        part: Part,
        context: &tera::Context,
        budget: &mut Budget,
    ) -> Result<String, RenderError> {
        let source = self
            .sources
            .iter()
            .find(|(p, _)| *p == part)
            .map_or("", |(_, s)| s.as_str());
        // Sized up front: growing a 10 kB body by doubling costs several copies.
        let mut out = Vec::with_capacity(source.len() + source.len() / 4 + 1024);
        let (result, crossed) = budget.spend(|| {
            self.tera
                .render_to(name(part), context, LimitedWriter(&mut out))
        });
        if let Some(limit) = crossed {
            return Err(RenderError::Limit { part, limit });
        }
        result.map_err(|e| from_tera(part, source, &e, false))?;
        String::from_utf8(out).map_err(|e| RenderError::Render {
            part,
            location: None,
            message: e.to_string(),
        })
    }
}

pub(crate) fn name(part: Part) -> &'static str {
    match part {
        Part::Subject => SUBJECT,
        Part::Preheader => PREHEADER,
        Part::Html => BODY,
        Part::Text => TEXT,
    }
}

fn new_tera() -> Tera {
    let mut tera = Tera::new();
    tera.autoescape_on([".html"]);
    tera.set_escape_fn(safety::escape_html);
    tera.register_filter("default", default_filter);
    // Replaces Tera's own, which bounds each call but not a loop of calls.
    tera.register_function("range", super::limits::range);
    tera
}

/// Like Tera's `default`, but a null or blank value is missing too: a recipient with
/// an empty first name still gets "Hi there".
fn default_filter(value: Value, kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    let fallback = kwargs.must_get::<Value>("value")?;
    let missing = value.is_undefined()
        || value.is_none()
        || value.as_str().is_some_and(|s| s.trim().is_empty());
    Ok(if missing { fallback } else { value })
}

fn check_syntax(part: Part, source: &str) -> Result<(), RenderError> {
    let mut tera = new_tera();
    tera.add_raw_template(name(part), source)
        .map_err(|e| from_tera(part, source, &e, true))
}

/// The unsubscribe link must be a real link, not just a mention of the variable.
fn require_unsubscribe_link(part: Part, source: &str) -> Result<(), RenderError> {
    let used = source.match_indices("unsubscribe_url").any(|(i, _)| {
        let before = &source[..i];
        let open = before.rfind("{{");
        open.is_some_and(|o| !before[o..].contains("}}"))
    });
    if used {
        Ok(())
    } else {
        Err(RenderError::MissingUnsubscribe { part })
    }
}

fn prepare_body(source: &str, plan: &mut LinkPlan, preheader: bool) -> Result<String, RenderError> {
    let html = if mjml::is_mjml(source) {
        mjml::compile(source)?
    } else {
        source.to_string()
    };
    let html = css::inline(&html)?;
    let html = plan.mark(&html);
    let html = if preheader {
        insert_after_body_open(&html, PREHEADER_BLOCK)
    } else {
        html
    };
    Ok(insert_before_body_close(
        &html,
        &[HONEYPOT_LINK, OPEN_PIXEL].concat(),
    ))
}

fn insert_after_body_open(html: &str, block: &str) -> String {
    let lower = html.to_ascii_lowercase();
    let at = lower
        .find("<body")
        .and_then(|start| lower[start..].find('>').map(|end| start + end + 1))
        .unwrap_or(0);
    [&html[..at], block, &html[at..]].concat()
}

fn insert_before_body_close(html: &str, block: &str) -> String {
    let at = html
        .to_ascii_lowercase()
        .rfind("</body")
        .unwrap_or(html.len());
    [&html[..at], block, &html[at..]].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsubscribe_link_must_be_an_expression() {
        assert!(
            require_unsubscribe_link(Part::Html, r#"<a href="{{ unsubscribe_url }}">u</a>"#)
                .is_ok()
        );
        assert!(require_unsubscribe_link(Part::Html, "write to unsubscribe_url").is_err());
        assert!(require_unsubscribe_link(Part::Html, "<p>no link</p>").is_err());
    }

    #[test]
    fn hidden_blocks_are_marked_hidden_for_the_text_part() {
        use super::super::text::HIDDEN;
        for block in [PREHEADER_BLOCK, HONEYPOT_LINK] {
            assert!(
                HIDDEN
                    .iter()
                    .any(|(start, end)| block.starts_with(start) && block.ends_with(end)),
                "{block}"
            );
        }
    }

    #[test]
    fn blocks_land_inside_body() {
        let html = "<html><BODY class=x><p>hi</p></BODY></html>";
        let with = insert_before_body_close(&insert_after_body_open(html, "[pre]"), "[px]");
        assert_eq!(with, "<html><BODY class=x>[pre]<p>hi</p>[px]</BODY></html>");
    }
}
