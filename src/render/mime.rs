//! The RFC 5322 message: multipart/alternative (text, then HTML), unsubscribe and list
//! headers, optional DKIM signature.

use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::{Address, Message};

use super::RenderError;
use super::dkim::Signer;
use super::safety::check_header;

const LIST_UNSUBSCRIBE: HeaderName = HeaderName::new_from_ascii_str("List-Unsubscribe");
const LIST_UNSUBSCRIBE_POST: HeaderName = HeaderName::new_from_ascii_str("List-Unsubscribe-Post");
const LIST_ID: HeaderName = HeaderName::new_from_ascii_str("List-Id");
const SUBJECT: HeaderName = HeaderName::new_from_ascii_str("Subject");

/// Per-campaign header material.
pub(crate) struct Envelope {
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    /// `List-Id`, or None for transactional campaigns.
    pub list_id: Option<String>,
    /// Domain part of Message-IDs and of the unsubscribe mailbox.
    pub domain: String,
    pub dkim: Option<Signer>,
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
        .raw_header(HeaderValue::dangerous_new_pre_encoded(
            SUBJECT,
            parts.subject.to_string(),
            encode_subject(parts.subject),
        ))
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
    let message = builder
        .multipart(body)
        .map_err(|e| RenderError::Mime(e.to_string()))?
        .formatted();
    match &envelope.dkim {
        Some(signer) => signer.sign(&message),
        None => Ok(message),
    }
}

/// Text of an RFC 2047 encoded-word, in bytes: 42 make 56 base64 characters, a word of
/// 68, so `Subject: ` and a word fit in 78 columns.
const ENCODED_TEXT_MAX: usize = 42;
/// Longest word written as it is; a longer one is encoded, and so split.
const PLAIN_WORD_MAX: usize = 68;
/// RFC 5322's recommended line length, kept by every line of the Subject.
const LINE: usize = 78;

/// The Subject as header text: words of printable ASCII as they are, the rest as
/// RFC 2047 encoded-words (UTF-8, base64), folded so no line passes 78 columns. A word
/// that would read as an encoded-word (a first name `=?utf-8?b?…?=`) is encoded
/// itself, so the receiver shows it as written. lettre writes such a word raw, and an
/// overlong word unfolded (RFC 5322 allows 998 octets a line).
pub(crate) fn encode_subject(subject: &str) -> String {
    let mut out = String::with_capacity(subject.len() + subject.len() / 2);
    let mut column = "Subject: ".len();
    for (i, token) in subject_tokens(subject).iter().enumerate() {
        if i > 0 {
            if column + 1 + token.len() > LINE {
                out.push_str("\r\n ");
                column = 1;
            } else {
                out.push(' ');
                column += 1;
            }
        }
        out.push_str(token);
        column += token.len();
    }
    out
}

/// Plain words and encoded-words, to be joined by single spaces. A space between a
/// plain word and an encoded-word is kept by decoders, one between two encoded-words
/// is dropped (RFC 2047 6.2), so consecutive words to encode are encoded together.
fn subject_tokens(subject: &str) -> Vec<std::borrow::Cow<'_, str>> {
    let words: Vec<&str> = subject.split(' ').collect();
    if words.iter().any(|word| word.is_empty()) {
        // Leading, trailing or repeated spaces: only encoded-words keep them exactly.
        return encoded_words(subject).map(Into::into).collect();
    }
    let mut tokens = Vec::with_capacity(words.len());
    let mut to_encode: Vec<&str> = Vec::new();
    for word in words {
        if is_plain_word(word) {
            tokens.extend(encoded_words(&to_encode.join(" ")).map(Into::into));
            to_encode.clear();
            tokens.push(word.into());
        } else {
            to_encode.push(word);
        }
    }
    tokens.extend(encoded_words(&to_encode.join(" ")).map(Into::into));
    tokens
}

fn is_plain_word(word: &str) -> bool {
    word.len() <= PLAIN_WORD_MAX
        && word.bytes().all(|b| b.is_ascii_graphic())
        && !word.contains("=?")
}

/// `text` as encoded-words of at most [`ENCODED_TEXT_MAX`] bytes each, split between
/// characters (RFC 2047 5: a word holds whole characters).
fn encoded_words(text: &str) -> impl Iterator<Item = String> + '_ {
    use base64::Engine;
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = rest.len().min(ENCODED_TEXT_MAX);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (chunk, tail) = rest.split_at(end);
        rest = tail;
        let encoded = base64::engine::general_purpose::STANDARD.encode(chunk);
        Some(format!("=?utf-8?b?{encoded}?="))
    })
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
