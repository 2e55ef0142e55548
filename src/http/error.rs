//! Every failure a handler can answer with, and its status: mapped here and nowhere
//! else. API errors are JSON: `{"error": "…"}`, plus `"errors": {"field": ["…"]}`
//! for invalid fields.

use std::collections::BTreeMap;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::dispatch::DispatchError;
use crate::store::{FailureKind, StoreError};

/// Messages by field name (`email`, `recipients[2].country`).
pub type FieldErrors = BTreeMap<String, Vec<String>>;

pub(crate) fn add_error(errors: &mut FieldErrors, field: &str, message: impl Into<String>) {
    errors
        .entry(field.to_string())
        .or_default()
        .push(message.into());
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// A tracking token that is malformed, forged, of another kind, or names nothing.
    #[error("this link is not valid")]
    BadLink,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    /// Signed in, but the role does not allow it.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    /// Too many attempts (sign-in throttle).
    #[error("{0}")]
    TooManyRequests(String),
    #[error("request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// The request body stopped arriving (the body timeout).
    #[error("{0}")]
    TimedOut(String),
    #[error("{message}")]
    Invalid {
        message: String,
        fields: FieldErrors,
    },
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
    #[error("{0}")]
    Internal(String),
}

impl HttpError {
    /// One invalid field.
    pub fn field(field: &str, message: impl Into<String>) -> HttpError {
        let mut fields = FieldErrors::new();
        fields.insert(field.to_string(), vec![message.into()]);
        HttpError::invalid(fields)
    }

    pub fn invalid(fields: FieldErrors) -> HttpError {
        let names: Vec<&str> = fields.keys().map(String::as_str).collect();
        HttpError::Invalid {
            message: format!("invalid fields: {}", names.join(", ")),
            fields,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            HttpError::BadLink | HttpError::NotFound(_) => StatusCode::NOT_FOUND,
            HttpError::BadRequest(_) => StatusCode::BAD_REQUEST,
            HttpError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            HttpError::Forbidden(_) => StatusCode::FORBIDDEN,
            HttpError::Conflict(_) => StatusCode::CONFLICT,
            HttpError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            HttpError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            HttpError::TimedOut(_) => StatusCode::REQUEST_TIMEOUT,
            HttpError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            HttpError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            HttpError::Store(error) => store_status(error),
            HttpError::Dispatch(error) => dispatch_status(error),
            HttpError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the client is told. Server-side failures say only that they happened;
    /// the log (found by the response's `x-request-id`) has the details.
    pub(crate) fn public_message(&self, status: StatusCode) -> String {
        if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            return "internal error; the server log has the details under this response's x-request-id".into();
        }
        self.to_string()
    }
}

fn store_status(error: &StoreError) -> StatusCode {
    match error.kind() {
        FailureKind::NotFound => StatusCode::NOT_FOUND,
        FailureKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        FailureKind::Conflict => StatusCode::CONFLICT,
        FailureKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        FailureKind::Other => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn dispatch_status(error: &DispatchError) -> StatusCode {
    match error {
        DispatchError::Store(error) => store_status(error),
        // A campaign in the wrong state for the command (schedule a running one …).
        DispatchError::Campaign { .. } => StatusCode::CONFLICT,
        DispatchError::Render { .. }
        | DispatchError::Segment { .. }
        | DispatchError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        DispatchError::Queue(_) | DispatchError::Ledger(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        if matches!(self, HttpError::BadLink) {
            return (status, "This link is not valid.\n").into_response();
        }
        let message = self.public_message(status);
        let body = match self {
            HttpError::Invalid { fields, .. } => json!({ "error": message, "errors": fields }),
            _ => json!({ "error": message }),
        };
        (status, Json(body)).into_response()
    }
}
