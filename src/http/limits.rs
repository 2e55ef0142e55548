//! What one client may cost the server: how long it may take to send a request, how
//! long a connection may sit idle, how many connections are open at once, and how
//! large a body may be on each kind of route. Without them a client that announces a
//! 100 GB body, or opens connections and sends nothing, holds memory and sockets for
//! as long as it likes.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use tokio::time::Sleep;

use super::error::HttpError;
use super::state::AppState;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// A request's header must arrive in full within this, counted from its first byte.
    pub header_timeout: Duration,
    /// A request's body must arrive in full within this, counted from its header.
    pub body_timeout: Duration,
    /// A connection waiting for its next request, or on which a response makes no
    /// progress, is closed after this.
    pub idle_timeout: Duration,
    /// Connections open at once; further ones are answered 503 and closed.
    pub max_connections: usize,
    /// Largest body on the link routes (`/o`, `/c`, `/v`, `/u`, `/healthz`, `/metrics`):
    /// an unsubscribe form is a few hundred bytes.
    pub link_body_limit: usize,
    /// Largest body under `/api` (batch imports of recipients, events, products).
    pub api_body_limit: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 512,
            link_body_limit: 16 * 1024,
            api_body_limit: 1024 * 1024,
        }
    }
}

/// The body rules of one kind of route.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BodyRule {
    pub limit: usize,
    pub timeout: Duration,
}

/// Routes of `router` refuse bodies over `rule.limit` (413, before reading any of it
/// when the length is announced) and stop reading a body after `rule.timeout`.
pub(crate) fn with_body_rule(
    router: axum::Router<AppState>,
    rule: BodyRule,
) -> axum::Router<AppState> {
    router
        .layer(axum::middleware::from_fn_with_state(rule, limit_body))
        .layer(DefaultBodyLimit::max(rule.limit))
}

async fn limit_body(State(rule): State<BodyRule>, request: Request, next: Next) -> Response {
    let announced = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|length| length > rule.limit as u64) {
        return HttpError::TooLarge { limit: rule.limit }.into_response();
    }
    if announced == Some(0)
        || (announced.is_none() && !request.headers().contains_key("transfer-encoding"))
    {
        return next.run(request).await;
    }
    let request = request.map(|body| Body::new(Timed::new(body, rule.timeout)));
    next.run(request).await
}

/// Why reading a body stopped: it did not arrive within the body timeout.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {}s", .0.as_secs_f64())]
pub struct BodyTimedOut(pub Duration);

/// True when `error` or one of its sources is a [`BodyTimedOut`].
pub(crate) fn is_body_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.is::<BodyTimedOut>() {
            return true;
        }
        current = error.source();
    }
    false
}

/// A body that fails with [`BodyTimedOut`] once its deadline has passed.
struct Timed {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
}

impl Timed {
    fn new(inner: Body, timeout: Duration) -> Timed {
        Timed {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            timeout,
        }
    }
}

impl http_body::Body for Timed {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(BodyTimedOut(self.timeout).into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
