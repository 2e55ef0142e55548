//! Sockets for SMTP sessions: TCP with TCP_NODELAY, optionally inside implicit TLS.
//!
//! lettre writes a message body and its final `.` in two writes, each flushed; with
//! Nagle's algorithm on, the terminator waits for the receiver's delayed ACK (~40 ms
//! per message), so every socket handed to lettre has nodelay set. With nodelay, each
//! flush is a packet of its own: [`Coalescing`] holds what is written until the client
//! waits for a reply, so body and terminator leave together.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use lettre::transport::smtp::client::AsyncTokioStream;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Connects to the first address of `host` that answers, with nodelay set.
pub async fn connect_tcp(host: &str, port: u16) -> io::Result<Coalescing<TcpStream>> {
    let stream = TcpStream::connect((host, port)).await?;
    stream.set_nodelay(true)?;
    Ok(Coalescing::new(stream))
}

/// Bytes held before a write goes out even though no reply is awaited yet.
const HOLD_AT_MOST: usize = 64 * 1024;

/// Bytes a server may send between two of our writes. lettre reads a reply line until
/// its end before it checks the line's length, so a server sending one endless line
/// would be buffered whole (~900 MB were seen). Replies are short (RFC 5321: 512
/// octets a line; a pipelined transaction awaits three replies) and a TLS handshake's
/// server flight is a few KB; this counts what arrives on the socket, so it bounds
/// TLS sessions too.
pub const REPLY_BYTES_LIMIT: usize = 256 * 1024;

/// A stream whose writes and flushes are held until the next read (or shutdown), then
/// sent as one: an SMTP client always reads a reply after what it sent. Reads fail
/// once the server sent more than [`REPLY_BYTES_LIMIT`] since our last write.
#[derive(Debug)]
pub struct Coalescing<S> {
    inner: S,
    held: Vec<u8>,
    /// Bytes read since our last write.
    unanswered: usize,
}

impl<S: AsyncWrite + Unpin> Coalescing<S> {
    fn new(inner: S) -> Self {
        Coalescing {
            inner,
            held: Vec::new(),
            unanswered: 0,
        }
    }

    fn poll_send_held(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.held.is_empty() {
            let written = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.held))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.held.drain(..written);
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }
}

impl AsyncTokioStream for Coalescing<TcpStream> {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Coalescing<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        ready!(self.poll_send_held(cx))?;
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        self.unanswered += buf.filled().len() - before;
        if self.unanswered > REPLY_BYTES_LIMIT {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the SMTP server sent more than {} KiB without waiting for a command \
                     (an endless reply line?)",
                    REPLY_BYTES_LIMIT / 1024
                ),
            )));
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Coalescing<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.held.len() >= HOLD_AT_MOST {
            ready!(self.poll_send_held(cx))?;
        }
        if !buf.is_empty() {
            self.unanswered = 0;
        }
        self.held.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    /// Held until the next read: see the type.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_send_held(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// TLS from the first byte (`smtps://`), verified against the webpki roots.
pub struct ImplicitTls {
    connector: TlsConnector,
}

impl ImplicitTls {
    pub fn new(host: &str) -> Result<ImplicitTls, String> {
        ServerName::try_from(host.to_string())
            .map_err(|e| format!("'{host}' is not a TLS server name: {e}"))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(ImplicitTls {
            connector: TlsConnector::from(Arc::new(config)),
        })
    }

    pub async fn wrap(
        &self,
        tcp: Coalescing<TcpStream>,
        host: &str,
    ) -> io::Result<Box<dyn AsyncTokioStream>> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let stream = self.connector.connect(name, tcp).await?;
        Ok(Box::new(TlsSocket(stream)))
    }
}

/// A TLS client stream in the shape lettre accepts for an existing connection.
#[derive(Debug)]
struct TlsSocket(TlsStream<Coalescing<TcpStream>>);

impl AsyncTokioStream for TlsSocket {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl AsyncRead for TlsSocket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsSocket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn writes_are_held_until_a_reply_is_awaited_then_leave_together() {
        let (client, mut server) = tokio::io::duplex(1024);
        let mut client = Coalescing::new(client);
        client.write_all(b"body").await.unwrap();
        client.flush().await.unwrap();
        client.write_all(b"\r\n.\r\n").await.unwrap();
        client.flush().await.unwrap();

        let mut received = [0u8; 64];
        let early = tokio::time::timeout(Duration::from_millis(50), server.read(&mut received));
        assert!(
            early.await.is_err(),
            "nothing leaves before the client reads"
        );

        server.write_all(b"250 ok\r\n").await.unwrap();
        let mut reply = [0u8; 8];
        client.read_exact(&mut reply).await.unwrap();
        assert_eq!(&reply, b"250 ok\r\n");
        let n = server.read(&mut received).await.unwrap();
        assert_eq!(&received[..n], b"body\r\n.\r\n", "one piece");
    }

    #[tokio::test]
    async fn a_reply_longer_than_the_limit_is_an_error_and_a_write_resets_the_count() {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        let mut client = Coalescing::new(client);
        let serve = tokio::spawn(async move {
            let chunk = vec![b'x'; 8 * 1024];
            while server.write_all(&chunk).await.is_ok() {}
        });
        let mut read = 0;
        let mut buffer = vec![0u8; 8 * 1024];
        let error = loop {
            match client.read(&mut buffer).await {
                Ok(n) => read += n,
                Err(error) => break error,
            }
        };
        assert!(read <= REPLY_BYTES_LIMIT, "{read} bytes read");
        assert!(error.to_string().contains("endless reply"), "{error}");
        client.write_all(b"QUIT\r\n").await.unwrap();
        let after_write = client
            .read(&mut buffer)
            .await
            .expect("a fresh allowance after a write");
        assert!(after_write > 0);
        serve.abort();
    }

    #[tokio::test]
    async fn shutdown_sends_what_is_held() {
        let (client, mut server) = tokio::io::duplex(1024);
        let mut client = Coalescing::new(client);
        client.write_all(b"QUIT\r\n").await.unwrap();
        client.shutdown().await.unwrap();
        let mut received = Vec::new();
        server.read_to_end(&mut received).await.unwrap();
        assert_eq!(received, b"QUIT\r\n");
    }
}
