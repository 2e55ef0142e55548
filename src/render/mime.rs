//! The RFC 5322 message: multipart/alternative (text, then HTML), unsubscribe and list
//! headers, optional DKIM signature.

use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::{Address, Message};

use super::RenderError;
use super::safety::check_header;

const LIST_UNSUBSCRIBE: HeaderName = HeaderName::new_from_ascii_str("List-Unsubscribe");
const LIST_UNSUBSCRIBE_POST: HeaderName = HeaderName::new_from_ascii_str("List-Unsubscribe-Post");
const LIST_ID: HeaderName = HeaderName::new_from_ascii_str("List-Id");

/// A DKIM key. `private_key` is a PKCS#1 PEM for RSA (`-----BEGIN RSA PRIVATE KEY-----`)
/// or the base64 of the 32-byte seed for Ed25519.
#[derive(Clone)]
pub struct DkimSettings {
    pub domain: String,
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    pub private_key: String,
}

impl std::fmt::Debug for DkimSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimSettings")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DkimAlgorithm {
    Rsa,
    Ed25519,
}

/// Headers signed when present; List-Unsubscribe(-Post) must be covered for one-click
/// unsubscribe to be honoured (RFC 8058).
const SIGNED: [&str; 11] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "List-Id",
    "MIME-Version",
    "Content-Type",
];

impl DkimSettings {
    /// Reads a key file: an RSA PKCS#1 PEM, or the base64 seed of an Ed25519 key.
    pub fn from_key_file(
        domain: &str,
        selector: &str,
        path: impl AsRef<std::path::Path>,
    ) -> Result<Self, RenderError> {
        let path = path.as_ref();
        let private_key = std::fs::read_to_string(path).map_err(|e| RenderError::io(path, e))?;
        let algorithm = if private_key.contains("-----BEGIN") {
            DkimAlgorithm::Rsa
        } else {
            DkimAlgorithm::Ed25519
        };
        let settings = Self {
            domain: domain.to_string(),
            selector: selector.to_string(),
            algorithm,
            private_key,
        };
        settings.config(false, false)?;
        Ok(settings)
    }

    pub(crate) fn config(
        &self,
        reply_to: bool,
        list_headers: bool,
    ) -> Result<DkimConfig, RenderError> {
        let algorithm = match self.algorithm {
            DkimAlgorithm::Rsa => DkimSigningAlgorithm::Rsa,
            DkimAlgorithm::Ed25519 => DkimSigningAlgorithm::Ed25519,
        };
        let key = DkimSigningKey::new(self.private_key.trim(), algorithm)
            .map_err(|e| RenderError::Dkim(e.to_string()))?;
        let headers = SIGNED
            .iter()
            .filter(|h| reply_to || **h != "Reply-To")
            .filter(|h| list_headers || !h.starts_with("List-"))
            .map(|h| HeaderName::new_from_ascii((*h).to_string()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| RenderError::Dkim(e.to_string()))?;
        let relaxed = DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        };
        Ok(DkimConfig::new(
            self.selector.clone(),
            self.domain.clone(),
            key,
            headers,
            relaxed,
        ))
    }
}

/// Per-campaign header material.
pub(crate) struct Envelope {
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    /// `List-Id`, or None for transactional campaigns.
    pub list_id: Option<String>,
    /// Domain part of Message-IDs and of the unsubscribe mailbox.
    pub domain: String,
    pub dkim: Option<DkimConfig>,
}

impl Envelope {
    pub fn new(
        from_name: &str,
        from_email: &str,
        reply_to: Option<&str>,
        domain: &str,
        list: Option<(i64, &str)>,
    ) -> Result<Self, RenderError> {
        check_header("From name", from_name)?;
        let from = Mailbox::new(
            Some(from_name.trim().to_string()).filter(|n| !n.is_empty()),
            address("From", from_email)?,
        );
        let reply_to = reply_to
            .map(|r| address("Reply-To", r).map(|a| Mailbox::new(None, a)))
            .transpose()?;
        let domain = domain.trim().to_ascii_lowercase();
        if domain.is_empty()
            || !domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.".contains(c))
        {
            return Err(RenderError::Settings(format!(
                "list_id_domain {domain:?} is not a domain name"
            )));
        }
        let list_id = list.map(|(id, name)| list_id(id, name, &domain));
        Ok(Self {
            from,
            reply_to,
            list_id,
            domain,
            dkim: None,
        })
    }

    pub fn message_id(&self, campaign_id: i64, recipient_id: i64) -> String {
        format!("<{campaign_id}.{recipient_id}.mailcast@{}>", self.domain)
    }
}

/// `Campaign name <campaign-7.lists.example.com>`; the phrase only when it is plain.
fn list_id(campaign_id: i64, name: &str, domain: &str) -> String {
    let id = format!("<campaign-{campaign_id}.{domain}>");
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " -_.,!&".contains(c));
    if plain { format!("{name} {id}") } else { id }
}

pub(crate) fn address(field: &'static str, value: &str) -> Result<Address, RenderError> {
    value
        .trim()
        .parse::<Address>()
        .map_err(|e| RenderError::InvalidAddress {
            field,
            value: value.chars().take(200).collect(),
            reason: e.to_string(),
        })
}

/// One recipient's message parts.
pub(crate) struct Parts<'a> {
    pub message_id: &'a str,
    pub to: Address,
    pub subject: &'a str,
    pub text: &'a str,
    pub html: &'a str,
    pub unsubscribe_url: &'a str,
    pub unsubscribe_token: &'a str,
}

pub(crate) fn build(envelope: &Envelope, parts: &Parts) -> Result<Vec<u8>, RenderError> {
    // Given, lettre would otherwise format and re-parse From and To to derive it.
    let smtp_envelope =
        lettre::address::Envelope::new(Some(envelope.from.email.clone()), vec![parts.to.clone()])
            .map_err(|e| RenderError::Mime(e.to_string()))?;
    let mut builder = Message::builder()
        .envelope(smtp_envelope)
        .from(envelope.from.clone())
        .to(Mailbox::new(None, parts.to.clone()))
        .subject(parts.subject)
        .message_id(Some(parts.message_id.to_string()));
    if let Some(reply_to) = &envelope.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    if let Some(list_id) = &envelope.list_id {
        builder = builder
            .raw_header(HeaderValue::new(LIST_ID, list_id.clone()))
            .raw_header(HeaderValue::new(
                LIST_UNSUBSCRIBE,
                list_unsubscribe(envelope, parts),
            ))
            .raw_header(HeaderValue::new(
                LIST_UNSUBSCRIBE_POST,
                "List-Unsubscribe=One-Click".to_string(),
            ));
    }
    let body = MultiPart::alternative()
        .singlepart(part(ContentType::TEXT_PLAIN, parts.text))
        .singlepart(part(ContentType::TEXT_HTML, parts.html));
    let mut message = builder
        .multipart(body)
        .map_err(|e| RenderError::Mime(e.to_string()))?;
    if let Some(dkim) = &envelope.dkim {
        message.sign(dkim);
    }
    Ok(message.formatted())
}

/// Our own quoted-printable encoder: lettre's chooses an encoding, converts line endings
/// and encodes in three passes; ours is one, and never leaves a lone `.` line.
fn part(content_type: ContentType, text: &str) -> SinglePart {
    let body = Body::dangerous_pre_encoded(
        super::qp::encode(text),
        ContentTransferEncoding::QuotedPrintable,
    );
    SinglePart::builder().header(content_type).body(body)
}

/// RFC 2369 / 8058: the HTTPS URL first (one-click POST), then a mailto fallback whose
/// subject carries the same signed token.
fn list_unsubscribe(envelope: &Envelope, parts: &Parts) -> String {
    format!(
        "<{}>, <mailto:unsubscribe@{}?subject=unsubscribe%20{}>",
        parts.unsubscribe_url, envelope.domain, parts.unsubscribe_token
    )
}
