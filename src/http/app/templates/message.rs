//! A rendered message as the preview shows it: its header fields (decoded where the
//! reader sees them decoded, without the MIME structure), and its HTML in a frame of
//! its own, sandboxed and without the honeypot link.

use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;

use crate::render::RenderedMessage;

/// The framed message may show images and its own inline styles, nothing else.
const PREVIEW_CSP: &str = "sandbox; default-src 'none'; img-src * data:; \
     style-src 'unsafe-inline'; frame-ancestors 'self'";
/// Header fields a preview leaves out: the MIME structure and the send time.
const UNSHOWN_HEADERS: &[&str] = &[
    "from",
    "to",
    "subject",
    "date",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "dkim-signature",
];
/// Where the renderer puts the honeypot link (see `render::template`).
const HONEYPOT_START: &str = "<!--honeypot-->";
const HONEYPOT_END: &str = "<!--/honeypot-->";

#[derive(Debug, Serialize)]
pub(super) struct HeaderView {
    name: String,
    value: String,
}

/// From, To and Subject as the reader sees them (decoded), then every other header
/// the message carries apart from its MIME structure.
pub(super) fn shown_headers(message: &RenderedMessage) -> Vec<HeaderView> {
    let decoded = [
        ("From", &message.from),
        ("To", &message.to),
        ("Subject", &message.subject),
    ];
    let first = decoded.into_iter().map(|(name, value)| HeaderView {
        name: name.to_string(),
        value: value.clone(),
    });
    let rest = header_fields(&message.raw)
        .into_iter()
        .filter(|(name, _)| !UNSHOWN_HEADERS.contains(&name.to_ascii_lowercase().as_str()))
        .map(|(name, value)| HeaderView { name, value });
    first.chain(rest).collect()
}

/// The header fields of a raw RFC 5322 message, unfolded, in their order.
fn header_fields(raw: &[u8]) -> Vec<(String, String)> {
    let end = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push_str(line);
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            fields.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    fields
}

/// The message's HTML with headers of its own: sandboxed, framed only by the dashboard.
pub(super) fn framed(status: StatusCode, html: String) -> Response {
    let headers = [
        (header::CONTENT_SECURITY_POLICY, PREVIEW_CSP),
        (header::X_FRAME_OPTIONS, "SAMEORIGIN"),
    ];
    (status, headers, Html(html)).into_response()
}

/// A frame that says why there is no message to show.
pub(super) fn notice_html(text: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>No preview</title>\
         </head><body><p>{}</p></body></html>",
        html_escape::encode_text(text)
    )
}

/// `html` without the renderer's hidden honeypot link: nobody should follow it from
/// a preview, not even by accident.
pub(super) fn without_honeypot(html: &str) -> String {
    let Some(start) = html.rfind(HONEYPOT_START) else {
        return html.to_string();
    };
    match html[start..].find(HONEYPOT_END) {
        Some(length) => [&html[..start], &html[start + length + HONEYPOT_END.len()..]].concat(),
        None => html.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_unfolded_and_the_body_ignored() {
        let raw = b"From: a@x.example\r\nSubject: =?utf-8?b?SGk=?=\r\n =?utf-8?b?IQ==?=\r\n\
                    List-Unsubscribe: <https://t.example/u/tok>,\r\n <mailto:u@x.example>\r\n\
                    \r\nBody: not a header\r\n";
        let fields = header_fields(raw);
        assert_eq!(
            fields,
            [
                ("From".to_string(), "a@x.example".to_string()),
                (
                    "Subject".to_string(),
                    "=?utf-8?b?SGk=?= =?utf-8?b?IQ==?=".to_string()
                ),
                (
                    "List-Unsubscribe".to_string(),
                    "<https://t.example/u/tok>, <mailto:u@x.example>".to_string()
                ),
            ]
        );
    }

    #[test]
    fn shown_headers_decode_the_address_lines_and_hide_the_mime_structure() {
        let message = RenderedMessage {
            message_id: "<1.2.mailcast@x.example>".into(),
            from: "Shop <news@x.example>".into(),
            to: "ana@x.example".into(),
            subject: "Hallo Ana ☕".into(),
            html: String::new(),
            text: String::new(),
            links: Vec::new(),
            raw: b"From: =?utf-8?b?U2hvcA==?= <news@x.example>\r\nTo: ana@x.example\r\n\
                   Subject: =?utf-8?b?SGFsbG8=?=\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
                   Message-ID: <1.2.mailcast@x.example>\r\nMIME-Version: 1.0\r\n\
                   Content-Type: multipart/alternative; boundary=\"b\"\r\n\r\n--b\r\n"
                .to_vec(),
        };
        let shown: Vec<(String, String)> = shown_headers(&message)
            .into_iter()
            .map(|h| (h.name, h.value))
            .collect();
        let names: Vec<&str> = shown.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["From", "To", "Subject", "Message-ID"]);
        assert_eq!(shown[2].1, "Hallo Ana ☕");
    }

    #[test]
    fn the_honeypot_link_is_cut_out() {
        let html = "<body><p>hi</p><!--honeypot--><a href=\"https://t/c/x\"></a><!--/honeypot--><img></body>";
        assert_eq!(without_honeypot(html), "<body><p>hi</p><img></body>");
        assert_eq!(without_honeypot("<p>none</p>"), "<p>none</p>");
        assert_eq!(
            without_honeypot("<!--honeypot--> unclosed"),
            "<!--honeypot--> unclosed"
        );
    }

    #[test]
    fn the_frame_is_sandboxed_html() {
        let response = framed(StatusCode::OK, "<p>hi</p>".into());
        let headers = response.headers();
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], PREVIEW_CSP);
        assert_eq!(headers[header::X_FRAME_OPTIONS], "SAMEORIGIN");
    }
}
