//! The accept loop: at most `max_connections` connections at once, and a watchdog per
//! connection that closes it when a request's header trickles in for longer than the
//! header timeout, or when it sits idle (no request under way, no byte moving) for
//! longer than the idle timeout. Body timeouts are per request (`limits.rs`).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt;

use super::limits::HttpLimits;

/// What a connection over the cap is told before it is closed.
const OVER_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n\
retry-after: 1\r\ncontent-length: 0\r\n\r\n";

/// Serves `app` on `listener` until `shutdown` completes; then stops accepting, lets
/// each connection finish the request it is serving, and returns once all are closed.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()>,
) {
    let capacity = limits
        .max_connections
        .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
    let permits = Arc::new(Semaphore::new(capacity));
    let (stop, stopping) = watch::channel(false);
    let limits = Arc::new(limits);
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // EMFILE and the like: give the process a moment to close sockets.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refuse(stream, peer, capacity);
            continue;
        };
        let connection = Connection {
            app: app.clone(),
            limits: limits.clone(),
            stopping: stopping.clone(),
            _permit: permit,
        };
        tokio::spawn(connection.run(stream, peer));
    }
    drop(listener);
    let _ = stop.send(true);
    // Every open connection holds a permit until it is closed.
    let _ = permits.acquire_many(capacity as u32).await;
}

fn refuse(stream: TcpStream, peer: SocketAddr, capacity: usize) {
    tracing::debug!(%peer, capacity, "connection refused: too many open connections");
    // Best effort: a fresh socket's send buffer takes these bytes without waiting.
    let _ = stream.try_write(OVER_CAPACITY);
}

struct Connection {
    app: Router,
    limits: Arc<HttpLimits>,
    stopping: watch::Receiver<bool>,
    /// Released when the connection is closed.
    _permit: OwnedSemaphorePermit,
}

impl Connection {
    async fn run(mut self, stream: TcpStream, peer: SocketAddr) {
        let clock = Arc::new(Clock::new());
        let io = TokioIo::new(Watched {
            stream,
            clock: clock.clone(),
        });
        let app = self.app.clone();
        let service_clock = clock.clone();
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let busy = service_clock.busy();
            let app = app.clone();
            async move {
                let response = app.oneshot(request).await;
                drop(busy);
                response
            }
        });
        let mut builder = http1::Builder::new();
        // The watchdog below times headers from their first byte; hyper's own timer
        // would count from the end of the previous response.
        builder.header_read_timeout(None);
        let mut conn = pin!(builder.serve_connection(io, service));
        let mut stopping = false;
        loop {
            let deadline = clock.deadline(&self.limits);
            let expired = async {
                match deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                served = conn.as_mut() => {
                    if let Err(error) = served {
                        tracing::debug!(%peer, %error, "connection ended with an error");
                    }
                    return;
                }
                _ = self.stopping.wait_for(|stop| *stop), if !stopping => {
                    stopping = true;
                    conn.as_mut().graceful_shutdown();
                }
                () = clock.changed.notified() => {}
                () = expired => {
                    if let Some(reason) = clock.expired(&self.limits) {
                        tracing::debug!(%peer, reason, "connection closed");
                        return;
                    }
                }
            }
        }
    }
}

/// Where a connection is between requests, for its watchdog.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Waiting for a request, or writing a response: `since` is the last byte moved.
    Idle { since: Instant },
    /// The first bytes of a request's header arrived at `since`.
    Header { since: Instant },
    /// A handler is running (it reads the body itself, under the body timeout).
    Busy { handlers: usize },
}

struct Clock {
    phase: Mutex<Phase>,
    /// Wakes the watchdog when a deadline may have moved earlier.
    changed: Notify,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            phase: Mutex::new(Phase::Idle {
                since: Instant::now(),
            }),
            changed: Notify::new(),
        }
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn read(&self) {
        let mut phase = self.phase();
        if let Phase::Idle { .. } = *phase {
            *phase = Phase::Header {
                since: Instant::now(),
            };
            self.changed.notify_one();
        }
    }

    fn wrote(&self) {
        let mut phase = self.phase();
        if let Phase::Idle { since } = &mut *phase {
            *since = Instant::now();
        }
    }

    fn busy(self: &Arc<Self>) -> Busy {
        let mut phase = self.phase();
        *phase = match *phase {
            Phase::Busy { handlers } => Phase::Busy {
                handlers: handlers + 1,
            },
            _ => Phase::Busy { handlers: 1 },
        };
        Busy(self.clone())
    }

    fn deadline(&self, limits: &HttpLimits) -> Option<Instant> {
        match *self.phase() {
            Phase::Idle { since } => Some(since + limits.idle_timeout),
            Phase::Header { since } => Some(since + limits.header_timeout),
            Phase::Busy { .. } => None,
        }
    }

    /// Why the connection should close now, if it should.
    fn expired(&self, limits: &HttpLimits) -> Option<&'static str> {
        let now = Instant::now();
        match *self.phase() {
            Phase::Idle { since } if now >= since + limits.idle_timeout => Some("idle timeout"),
            Phase::Header { since } if now >= since + limits.header_timeout => {
                Some("header timeout")
            }
            _ => None,
        }
    }
}

/// A running handler; the connection is idle again when the last one is dropped.
struct Busy(Arc<Clock>);

impl Drop for Busy {
    fn drop(&mut self) {
        let mut phase = self.0.phase();
        *phase = match *phase {
            Phase::Busy { handlers } if handlers > 1 => Phase::Busy {
                handlers: handlers - 1,
            },
            _ => Phase::Idle {
                since: Instant::now(),
            },
        };
        self.0.changed.notify_one();
    }
}

/// The socket, telling the clock when bytes move.
struct Watched {
    stream: TcpStream,
    clock: Arc<Clock>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.clock.read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.clock.wrote();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.clock.wrote();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
