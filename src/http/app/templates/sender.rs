//! Who a preview (and a test) is sent from, and as what kind of message: what the form
//! asks for, else what the newest campaign with the template used, else a placeholder.

use super::PreviewQuery;
use crate::domain::CampaignKind;
use crate::http::app::page::field_error;
use crate::http::error::FieldErrors;
use crate::store::{Template, TemplateSender};

/// The From of a preview when neither the form nor an earlier campaign names one.
const PLACEHOLDER_FROM: &str = "sender@example.com";

/// Where the From of a preview comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SenderSource {
    Form,
    /// The newest campaign that used the template (or the form repeats it).
    Campaign,
    /// Nothing names one: [`PLACEHOLDER_FROM`] is shown.
    Placeholder,
}

/// Who a preview (and a test) is sent from, and as what kind of message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Sender {
    /// Empty with [`SenderSource::Placeholder`].
    pub(super) from_email: String,
    pub(super) from_name: String,
    pub(super) reply_to: Option<String>,
    pub(super) kind: CampaignKind,
    pub(super) source: SenderSource,
}

impl Sender {
    pub(super) fn shown_from_email(&self) -> &str {
        match self.source {
            SenderSource::Placeholder => PLACEHOLDER_FROM,
            _ => &self.from_email,
        }
    }

    pub(super) fn note(&self) -> &'static str {
        match self.source {
            SenderSource::Form => "The From is the one entered under Sender.",
            SenderSource::Campaign => {
                "The From is that of the newest campaign that used this template; change it \
                 under Sender."
            }
            SenderSource::Placeholder => {
                "No campaign has used this template yet: the From is a placeholder. Enter the \
                 address you will send from under Sender."
            }
        }
    }
}

/// The sender the form asks for, else the newest campaign's, else a placeholder; the
/// kind likewise, else marketing when the template has an unsubscribe link.
pub(super) fn settle_sender(
    query: &PreviewQuery,
    earlier: Option<TemplateSender>,
    template: &Template,
) -> Result<Sender, FieldErrors> {
    let kind = match query.kind.trim() {
        "" => earlier
            .as_ref()
            .map(|sender| sender.kind)
            .unwrap_or_else(|| guessed_kind(template)),
        text => text
            .parse()
            .map_err(|_| field_error("kind", "Choose marketing or transactional."))?,
    };
    let reply_to = earlier.as_ref().and_then(|sender| sender.reply_to.clone());
    let from_email = query.from_email.trim();
    let from_name = query.from_name.trim();
    let as_before = earlier
        .as_ref()
        .is_some_and(|e| e.from_email == from_email && e.from_name == from_name);
    let (from_email, from_name, source) = match earlier {
        _ if !from_email.is_empty() && !as_before => (
            from_email.to_string(),
            from_name.to_string(),
            SenderSource::Form,
        ),
        Some(earlier) => (
            earlier.from_email,
            earlier.from_name,
            SenderSource::Campaign,
        ),
        None => (
            String::new(),
            from_name.to_string(),
            SenderSource::Placeholder,
        ),
    };
    Ok(Sender {
        from_email,
        from_name,
        reply_to,
        kind,
        source,
    })
}

/// A template that links to its unsubscribe page is meant for marketing; the renderer
/// refuses a marketing message without one.
fn guessed_kind(template: &Template) -> CampaignKind {
    let parts = [Some(&template.html), template.text.as_ref()];
    if parts
        .into_iter()
        .flatten()
        .any(|part| part.contains("unsubscribe_url"))
    {
        CampaignKind::Marketing
    } else {
        CampaignKind::Transactional
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(html: &str, text: Option<&str>) -> Template {
        Template {
            id: 1,
            name: "welcome".into(),
            subject: "Hi".into(),
            preheader: None,
            html: html.into(),
            text: text.map(str::to_string),
        }
    }

    fn earlier(kind: CampaignKind) -> TemplateSender {
        TemplateSender {
            from_name: "Shop".into(),
            from_email: "news@shop.example".into(),
            reply_to: Some("care@shop.example".into()),
            kind,
        }
    }

    #[test]
    fn the_form_wins_then_the_newest_campaign_then_a_placeholder() {
        let plain = template("<p>hi</p>", None);
        let query = PreviewQuery {
            from_email: " me@shop.example ".into(),
            from_name: "Me".into(),
            kind: "transactional".into(),
            ..PreviewQuery::default()
        };
        let chosen = settle_sender(&query, Some(earlier(CampaignKind::Marketing)), &plain).unwrap();
        assert_eq!(chosen.source, SenderSource::Form);
        assert_eq!(chosen.from_email, "me@shop.example");
        assert_eq!(chosen.kind, CampaignKind::Transactional);
        assert_eq!(chosen.reply_to.as_deref(), Some("care@shop.example"));

        let empty = PreviewQuery::default();
        let campaign =
            settle_sender(&empty, Some(earlier(CampaignKind::Marketing)), &plain).unwrap();
        assert_eq!(campaign.source, SenderSource::Campaign);
        assert_eq!(campaign.from_name, "Shop");
        assert_eq!(campaign.kind, CampaignKind::Marketing);

        let repeated = PreviewQuery {
            from_email: "news@shop.example".into(),
            from_name: "Shop".into(),
            ..PreviewQuery::default()
        };
        let again = settle_sender(&repeated, Some(earlier(CampaignKind::Marketing)), &plain);
        assert_eq!(again.unwrap().source, SenderSource::Campaign);

        let none = settle_sender(&empty, None, &plain).unwrap();
        assert_eq!(none.source, SenderSource::Placeholder);
        assert_eq!(none.shown_from_email(), PLACEHOLDER_FROM);
        assert_eq!(none.from_email, "");
    }

    #[test]
    fn an_unknown_kind_is_a_field_error() {
        let query = PreviewQuery {
            kind: "newsletter".into(),
            ..PreviewQuery::default()
        };
        let errors = settle_sender(&query, None, &template("<p>hi</p>", None)).unwrap_err();
        assert!(errors.contains_key("kind"));
    }

    #[test]
    fn a_template_with_an_unsubscribe_link_is_taken_for_marketing() {
        let linked = template(r#"<a href="{{ unsubscribe_url }}">stop</a>"#, None);
        assert_eq!(guessed_kind(&linked), CampaignKind::Marketing);
        let in_text = template("<p>hi</p>", Some("Stop: {{ unsubscribe_url }}"));
        assert_eq!(guessed_kind(&in_text), CampaignKind::Marketing);
        assert_eq!(
            guessed_kind(&template("<p>receipt</p>", None)),
            CampaignKind::Transactional
        );
    }
}
