//! Postmark's bounce, spam complaint and delivery webhooks: one JSON record per request.
//! Postmark signs nothing; it sends the HTTP Basic credentials set on the webhook
//! (`https://USER:PASSWORD@host/webhooks/postmark`), compared here in constant time.

use std::fmt;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::digest::{CtOutput, Output};
use sha2::{Digest, Sha256};

use super::{Hooks, WebhookSettingError, bad_event, json_body, not_configured};
use crate::bounce::{WebhookEvent, WebhookProvider};
use crate::http::error::HttpError;

/// The `USER:PASSWORD` set on Postmark's webhook; only its SHA-256 is kept.
#[derive(Clone, PartialEq, Eq)]
pub struct PostmarkAuth {
    user: String,
    credentials: Output<Sha256>,
}

impl PostmarkAuth {
    /// From `USER:PASSWORD`, neither empty.
    pub fn parse(text: &str) -> Result<PostmarkAuth, WebhookSettingError> {
        let bad = |problem: &str| WebhookSettingError::new("Postmark webhook credentials", problem);
        let (user, password) = text
            .split_once(':')
            .ok_or_else(|| bad("are not USER:PASSWORD"))?;
        if user.is_empty() || password.is_empty() {
            return Err(bad("need a user and a password (USER:PASSWORD)"));
        }
        Ok(PostmarkAuth {
            user: user.to_string(),
            credentials: Sha256::digest(text.as_bytes()),
        })
    }

    /// Whether `presented` (the decoded `USER:PASSWORD` of a Basic header) is these
    /// credentials. Digests of equal length are compared in constant time.
    fn admits(&self, presented: &[u8]) -> bool {
        CtOutput::<Sha256>::new(Sha256::digest(presented)) == CtOutput::new(self.credentials)
    }
}

impl fmt::Debug for PostmarkAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostmarkAuth({}:…)", self.user)
    }
}

pub(super) async fn receive(
    State(hooks): State<Arc<Hooks>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, HttpError> {
    let auth = hooks
        .settings
        .postmark
        .as_ref()
        .ok_or_else(|| not_configured("Postmark"))?;
    match basic_credentials(&headers) {
        None => {
            return Ok(challenge(
                "no credentials: set USER:PASSWORD on the webhook",
            ));
        }
        Some(presented) if !auth.admits(&presented) => {
            return Ok(challenge("wrong credentials"));
        }
        Some(_) => {}
    }
    let event =
        WebhookEvent::new(WebhookProvider::Postmark, json_body(&body)?).map_err(bad_event)?;
    Ok(hooks.apply_one(event).await?.into_response())
}

/// The decoded credentials of `Authorization: Basic …` (the scheme in any case).
fn basic_credentials(headers: &HeaderMap) -> Option<Vec<u8>> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    BASE64.decode(encoded.trim()).ok()
}

/// 401 with the challenge that tells a client to send Basic credentials.
fn challenge(reason: &str) -> Response {
    (
        [(WWW_AUTHENTICATE, "Basic realm=\"mailcast webhooks\"")],
        HttpError::Unauthorized(reason.to_string()),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(authorization).unwrap());
        headers
    }

    #[test]
    fn only_the_configured_credentials_are_admitted() {
        let auth = PostmarkAuth::parse("postmark:s3cret:with-colon").unwrap();
        let basic = |text: &str| format!("Basic {}", BASE64.encode(text));
        let presented = basic_credentials(&headers(&basic("postmark:s3cret:with-colon"))).unwrap();
        assert!(auth.admits(&presented));
        let lowercase = format!("basic {}", BASE64.encode("postmark:s3cret:with-colon"));
        assert!(auth.admits(&basic_credentials(&headers(&lowercase)).unwrap()));
        let wrong = basic_credentials(&headers(&basic("postmark:s3cret"))).unwrap();
        assert!(!auth.admits(&wrong));
        assert_eq!(basic_credentials(&headers("Bearer abc")), None);
        assert_eq!(basic_credentials(&HeaderMap::new()), None);
        assert!(!format!("{auth:?}").contains("s3cret"));
    }

    #[test]
    fn credentials_need_a_user_and_a_password() {
        for text in ["postmark", ":pw", "user:", ""] {
            assert!(PostmarkAuth::parse(text).is_err(), "{text}");
        }
    }
}
