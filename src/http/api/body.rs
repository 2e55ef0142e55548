//! Request bodies: JSON whatever the content type says, with the status a developer
//! can act on: 413 too large, 400 not JSON, 422 naming the field that is wrong.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::http::error::{FieldErrors, HttpError};
use crate::http::limits::is_body_timeout;
use crate::http::state::AppState;

/// A JSON body deserialised into `T`.
pub(crate) struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = HttpError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, HttpError> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    HttpError::TooLarge {
                        limit: state.settings.limits.api_body_limit,
                    }
                } else if is_body_timeout(&rejection) {
                    HttpError::TimedOut(rejection.body_text())
                } else {
                    HttpError::BadRequest(format!(
                        "cannot read the request body: {}",
                        rejection.body_text()
                    ))
                }
            })?;
        parse(&bytes).map(JsonBody)
    }
}

pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, HttpError> {
    refuse_nul(bytes)?;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            Category::Data => field_error(&path, &inner),
            _ => HttpError::BadRequest(format!("the body is not valid JSON: {inner}")),
        }
    })?;
    deserializer
        .end()
        .map_err(|e| HttpError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

/// A NUL (`\\u0000`) in any string or key is a 422 naming the field: PostgreSQL
/// stores no NUL in text or JSON and would answer a 500. Bodies without the escape
/// (nearly all) are not parsed twice.
fn refuse_nul(bytes: &[u8]) -> Result<(), HttpError> {
    if memchr::memmem::find(bytes, b"\\u0000").is_none() {
        return Ok(());
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Ok(());
    };
    let Some(path) = crate::import::nul_path(&value) else {
        return Ok(());
    };
    let field = match path.strip_prefix('.').unwrap_or(&path) {
        "" => "body".to_string(),
        field => field.to_string(),
    };
    let mut fields = FieldErrors::new();
    let message = "contains a NUL character (U+0000), which cannot be stored";
    fields.insert(field, vec![message.to_string()]);
    Err(HttpError::invalid(fields))
}

/// Names the field at fault: serde's path points at an unknown field itself, but at
/// the object that lacks a missing one (`missing field `email``).
fn field_error(path: &str, error: &serde_json::Error) -> HttpError {
    let message = error.to_string();
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(&message)
        .to_string();
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    let field = match (missing, path) {
        (Some(name), "." | "") => name.to_string(),
        (Some(name), path) => format!("{path}.{name}"),
        (None, "." | "") => "body".to_string(),
        (None, path) => path.to_string(),
    };
    let mut fields = FieldErrors::new();
    fields.insert(field, vec![message]);
    HttpError::invalid(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
        items: Vec<Item>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Item {
        count: i64,
    }

    fn fields(error: HttpError) -> Vec<String> {
        match error {
            HttpError::Invalid { fields, .. } => fields.into_keys().collect(),
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        assert!(matches!(
            parse::<Sample>(b"{\"name\": "),
            Err(HttpError::BadRequest(_))
        ));
        assert!(matches!(
            parse::<Sample>(b""),
            Err(HttpError::BadRequest(_))
        ));
        let trailing = br#"{"name": "a", "items": []} x"#;
        assert!(matches!(
            parse::<Sample>(trailing),
            Err(HttpError::BadRequest(_))
        ));
    }

    #[test]
    fn wrong_fields_are_named() {
        assert_eq!(
            fields(parse::<Sample>(b"{\"items\": []}").unwrap_err()),
            ["name"]
        );
        let wrong_type = br#"{"name": "a", "items": [{"count": 1}, {"count": "x"}]}"#;
        assert_eq!(
            fields(parse::<Sample>(wrong_type).unwrap_err()),
            ["items[1].count"]
        );
        let extra = br#"{"name": "a", "items": [], "colour": 1}"#;
        assert_eq!(fields(parse::<Sample>(extra).unwrap_err()), ["colour"]);
        let nested = br#"{"name": "a", "items": [{}]}"#;
        assert_eq!(
            fields(parse::<Sample>(nested).unwrap_err()),
            ["items[0].count"]
        );
    }
}
