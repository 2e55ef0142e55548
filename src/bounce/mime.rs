//! Getting the parts a bounce classifier reads out of a message: its own headers, its
//! human-readable text, the machine-readable reports, and the headers of the message it
//! returns.

use std::borrow::Cow;
use std::sync::LazyLock;

use mail_parser::{HeaderName, Message, MessageParser, MimeHeaders, PartType};

/// A parser that structures only what the classifiers read through it: the MIME headers
/// (to find the parts) and Subject. Every other header is kept raw, since they are read
/// raw; parsing Received, address and date fields would be work thrown away.
static PARSER: LazyLock<MessageParser> = LazyLock::new(|| {
    MessageParser::new()
        .with_mime_headers()
        .header_text(HeaderName::Subject)
});

/// The bytes with every CRLF and bare CR turned into LF, so that one set of rules reads
/// mail written with any convention.
pub(crate) fn normalise_line_endings(raw: &[u8]) -> Cow<'_, [u8]> {
    if memchr::memchr(b'\r', raw).is_none() {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = memchr::memchr(b'\r', rest) {
        out.extend_from_slice(&rest[..at]);
        out.push(b'\n');
        rest = &rest[at + 1..];
        if rest.first() == Some(&b'\n') {
            rest = &rest[1..];
        }
    }
    out.extend_from_slice(rest);
    Cow::Owned(out)
}

/// The headers of the message a bounce returns, as far as it quotes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginalMessage {
    pub message_id: Option<String>,
    /// The To header of the returned message.
    pub to: Option<String>,
    pub from: Option<String>,
    pub subject: Option<String>,
    /// Who it was delivered to, when a header of the copy says so (X-Original-To,
    /// Delivered-To, or Microsoft's X-HmXmrOriginalRecipient in complaint reports).
    pub envelope_recipient: Option<String>,
}

/// What the classifiers read, taken out of one message.
#[derive(Debug, Default)]
pub(crate) struct Parts {
    /// The bounce's own headers, name in lower case, unfolded value.
    pub headers: Vec<(String, String)>,
    /// The bounce's Subject, encoded words decoded.
    pub subject: Option<String>,
    /// The text/plain (and tag-stripped text/html) parts of the bounce itself, not of
    /// the message it returns.
    pub text: String,
    /// `text` in ASCII lower case (same byte offsets), for matching wordings.
    pub lower: String,
    /// Where the copy of the returned message starts in `text`, when a line says so.
    pub copy_at: Option<usize>,
    /// The bodies of message/delivery-status parts (RFC 3464).
    pub delivery_status: Vec<String>,
    /// The body of a message/feedback-report part (RFC 5965).
    pub feedback_report: Option<String>,
    /// The report-type of a multipart/report.
    pub report_type: Option<String>,
    pub original: OriginalMessage,
    /// Whether the original's headers came from a MIME part (not guessed from text).
    pub original_found: bool,
    /// The recipient a Microsoft junk mail report (JMRP) names in the attached copy.
    pub jmrp_recipient: Option<String>,
    /// The attached message, when it is itself a delivery report (a bounce of a bounce,
    /// or a relay that wraps the report it received).
    pub attached_report: Option<Vec<u8>>,
}

impl Parts {
    /// The report part of the text: everything before the returned copy.
    pub fn report(&self) -> &str {
        &self.text[..self.copy_at.unwrap_or(self.text.len())]
    }

    /// [`Parts::report`] in lower case.
    pub fn report_lower(&self) -> &str {
        &self.lower[..self.copy_at.unwrap_or(self.lower.len())]
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a message (LF line endings); `None` when it has no headers at all.
pub(crate) fn split(raw: &[u8]) -> Option<Parts> {
    let message = PARSER.parse(skip_blank_lines(raw))?;
    let mut parts = Parts {
        headers: headers_of(&message),
        subject: message.subject().map(str::to_string),
        ..Parts::default()
    };
    if let Some(ct) = message.content_type()
        && ct.ctype().eq_ignore_ascii_case("multipart")
    {
        parts.report_type = ct.attribute("report-type").map(str::to_ascii_lowercase);
        if ct.attribute("boundary").is_none() {
            // No boundary to split on (a broken fold): the body is read as one text.
            let body = message
                .raw_message()
                .get(message.root_part().raw_body_offset() as usize..);
            parts.text = lossy(body.unwrap_or_default());
            return Some(parts);
        }
    }
    for part in &message.parts {
        read_part(part, &mut parts);
    }
    Some(parts)
}

/// `raw` without the whitespace-only lines before its first header (some mail stores
/// write one), which would otherwise end the header block before it starts.
fn skip_blank_lines(raw: &[u8]) -> &[u8] {
    let mut start = 0;
    while let Some(end) = memchr::memchr(b'\n', &raw[start..]).map(|i| start + i) {
        if !raw[start..end].iter().all(u8::is_ascii_whitespace) {
            break;
        }
        start = end + 1;
    }
    &raw[start..]
}

fn read_part(part: &mail_parser::MessagePart<'_>, parts: &mut Parts) {
    let (ctype, subtype) = match part.content_type() {
        Some(ct) => (
            ct.ctype().to_ascii_lowercase(),
            ct.subtype().unwrap_or("").to_ascii_lowercase(),
        ),
        None => ("text".to_string(), "plain".to_string()),
    };
    match (&part.body, ctype.as_str(), subtype.as_str()) {
        (PartType::Multipart(_), _, _) => {}
        (PartType::Message(inner), _, _) if !parts.original_found => {
            parts.original = original_from(inner);
            parts.original_found = true;
            parts.jmrp_recipient = inner.header_raw("X-HmXmrOriginalRecipient").map(unfold);
            if is_report(inner) {
                parts.attached_report = Some(inner.raw_message().to_vec());
            }
        }
        (PartType::Message(_), _, _) => {}
        (_, "message" | "text", "delivery-status" | "global-delivery-status") => {
            parts.delivery_status.push(lossy(part.contents()));
        }
        (_, "message", "feedback-report") => {
            parts.feedback_report = Some(lossy(part.contents()));
        }
        (_, "text" | "message", subtype) if is_header_copy(subtype) && !parts.original_found => {
            parts.original = original_from_header_text(&lossy(part.contents()));
            parts.original_found = true;
        }
        // Only the first copy is the returned message's.
        (_, "text" | "message", subtype) if is_header_copy(subtype) => {}
        (PartType::Html(html), _, _) => {
            parts.text.push_str(&strip_tags(html));
            parts.text.push('\n');
        }
        (PartType::Text(text), _, _) => {
            parts.text.push_str(text);
            parts.text.push('\n');
        }
        _ => {}
    }
}

fn is_header_copy(subtype: &str) -> bool {
    matches!(
        subtype,
        "rfc822-headers" | "rfc822-header" | "global-headers" | "rfc822"
    )
}

fn is_report(message: &Message<'_>) -> bool {
    message.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .attribute("report-type")
                .is_some_and(|t| t.eq_ignore_ascii_case("delivery-status"))
    })
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn headers_of(message: &Message<'_>) -> Vec<(String, String)> {
    message
        .headers_raw()
        .map(|(name, value)| (name.to_ascii_lowercase(), unfold(value)))
        .collect()
}

/// `value` trimmed, every run of whitespace (folding included) made one space.
pub(crate) fn unfold(value: &str) -> String {
    let value = value.trim();
    let folded = !value.is_ascii()
        || value
            .as_bytes()
            .windows(2)
            .any(|w| w[0].is_ascii_whitespace() && (w[1].is_ascii_whitespace() || w[0] != b' '));
    if !folded {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len());
    for word in value.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// `text` in ASCII lower case with every run of whitespace made one space, so that a
/// wording matches whatever line breaks the server put in it.
pub(crate) fn flatten_lower(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_ascii_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out.make_ascii_lowercase();
    out
}

fn original_from(message: &Message<'_>) -> OriginalMessage {
    let raw = |name: &str| message.header_raw(name).map(unfold);
    OriginalMessage {
        message_id: raw("Message-ID").map(|id| trim_angles(&id)),
        to: raw("To"),
        from: raw("From"),
        subject: message.subject().map(str::to_string),
        envelope_recipient: ["X-HmXmrOriginalRecipient", "X-Original-To", "Delivered-To"]
            .iter()
            .find_map(|name| raw(name)),
    }
}

/// The original's headers from a block of header text (text/rfc822-headers, or the
/// copy a non-MIME bounce appends).
pub(crate) fn original_from_header_text(text: &str) -> OriginalMessage {
    let mut original = OriginalMessage::default();
    for (name, value) in header_fields(text) {
        let slot = match name.as_str() {
            "message-id" => &mut original.message_id,
            "to" => &mut original.to,
            "from" => &mut original.from,
            "subject" => &mut original.subject,
            "x-hmxmroriginalrecipient" | "x-original-to" | "delivered-to" => {
                &mut original.envelope_recipient
            }
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(if name == "message-id" {
                trim_angles(&value)
            } else {
                value
            });
        }
    }
    original
}

/// `Name: value` fields of a header-like block, continuation lines unfolded. Lines that
/// are not fields are skipped, so this also reads fields out of free text.
pub(crate) fn header_fields(text: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut open = false;
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if open && let Some((_, value)) = fields.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        open = false;
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            continue;
        }
        fields.push((name.to_ascii_lowercase(), value.trim().to_string()));
        open = true;
    }
    fields
}

fn trim_angles(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_string()
}

fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_and_bare_cr_become_lf() {
        assert_eq!(&*normalise_line_endings(b"a\r\nb\rc\n\r\n"), b"a\nb\nc\n\n");
        assert!(matches!(normalise_line_endings(b"a\nb"), Cow::Borrowed(_)));
    }

    #[test]
    fn whitespace_lines_before_the_headers_are_skipped() {
        assert_eq!(
            skip_blank_lines(b"   \n\nFrom: a\n\nbody"),
            b"From: a\n\nbody"
        );
        assert_eq!(skip_blank_lines(b"From: a\n"), b"From: a\n");
        assert_eq!(skip_blank_lines(b"  \n"), b"");
    }

    #[test]
    fn header_fields_unfold_continuations() {
        let fields =
            header_fields("To: a@example.com,\n  b@example.com\nnot a field\nSubject: x\n");
        assert_eq!(fields[0].1, "a@example.com, b@example.com");
        assert_eq!(fields[1], ("subject".into(), "x".into()));
    }
}
