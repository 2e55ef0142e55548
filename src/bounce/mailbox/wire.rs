//! The connection to the mail server: TCP, inside TLS unless the server is on this
//! machine and the URL says plain; lines and literals read within limits, every wait
//! bounded by a timeout.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::error::MailboxError;
use super::{MailboxLimits, MailboxUrl};

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Verifies servers against the public CAs (webpki-roots) and, when given, the CAs of a
/// PEM file (a private server's own CA, or its self-signed certificate).
pub(super) fn tls_connector(extra_ca: Option<&Path>) -> Result<TlsConnector, MailboxError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_ca {
        for cert in read_ca_file(path)? {
            roots.add(cert).map_err(|e| MailboxError::CaFile {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| MailboxError::Settings(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, MailboxError> {
    let fail = |reason: String| MailboxError::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    if certs.is_empty() {
        return Err(fail("it holds no PEM certificate".into()));
    }
    Ok(certs)
}

pub(super) struct Wire {
    stream: BufReader<Box<dyn Stream>>,
    /// The server as errors name it (no password).
    pub server: String,
    limits: MailboxLimits,
}

impl Wire {
    pub async fn connect(
        url: &MailboxUrl,
        tls: &TlsConnector,
        limits: &MailboxLimits,
    ) -> Result<Wire, MailboxError> {
        let server = url.to_string();
        let connect = TcpStream::connect((url.host.as_str(), url.port));
        let tcp = timed(&server, "the connection", limits.timeout, connect)
            .await?
            .map_err(|source| MailboxError::Connect {
                server: server.clone(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Stream> = if url.tls {
            let name = ServerName::try_from(url.host.clone()).map_err(|e| {
                MailboxError::Settings(format!("'{}' is not a TLS server name: {e}", url.host))
            })?;
            let handshake = tls.connect(name, tcp);
            let tls = timed(&server, "the TLS handshake", limits.timeout, handshake)
                .await?
                .map_err(|source| MailboxError::Tls {
                    server: server.clone(),
                    source,
                })?;
            Box::new(tls)
        } else {
            Box::new(tcp)
        };
        Ok(Wire {
            stream: BufReader::new(stream),
            server,
            limits: limits.clone(),
        })
    }

    pub fn limits(&self) -> &MailboxLimits {
        &self.limits
    }

    /// Writes `bytes` and flushes; `command` names what they are in errors.
    pub async fn send(&mut self, bytes: &[u8], command: &str) -> Result<(), MailboxError> {
        let stream = self.stream.get_mut();
        let write = async {
            stream.write_all(bytes).await?;
            stream.flush().await
        };
        let written = timed(&self.server, command, self.limits.timeout, write).await?;
        written.map_err(|source| self.io(source))
    }

    /// One line without its CRLF (or bare LF). A line longer than the limit is an error.
    pub async fn line(&mut self, command: &str) -> Result<Vec<u8>, MailboxError> {
        let (timeout, max) = (self.limits.timeout, self.limits.max_line);
        let read = read_line(&mut self.stream, max);
        let line = timed(&self.server, command, timeout, read).await?;
        match line {
            Ok(Some(line)) => Ok(line),
            Ok(None) => Err(self.protocol(command, format!("the line is longer than {max} bytes"))),
            Err(source) => Err(self.io(source)),
        }
    }

    /// Exactly `len` bytes.
    pub async fn exact(&mut self, len: usize, command: &str) -> Result<Vec<u8>, MailboxError> {
        let mut bytes = vec![0; len];
        let read = self.stream.read_exact(&mut bytes);
        let read = timed(&self.server, command, self.limits.timeout, read).await?;
        read.map_err(|source| self.io(source))?;
        Ok(bytes)
    }

    /// Reads and drops `len` bytes.
    pub async fn skip(&mut self, len: u64, command: &str) -> Result<(), MailboxError> {
        let mut taken = (&mut self.stream).take(len);
        let mut sink = tokio::io::sink();
        let copy = tokio::io::copy(&mut taken, &mut sink);
        let copied = timed(&self.server, command, self.limits.timeout, copy).await?;
        match copied {
            Ok(n) if n == len => Ok(()),
            Ok(_) => Err(self.io(std::io::ErrorKind::UnexpectedEof.into())),
            Err(source) => Err(self.io(source)),
        }
    }

    pub fn refused(&self, command: &str, answer: &[u8]) -> MailboxError {
        MailboxError::Refused {
            server: self.server.clone(),
            command: command.to_string(),
            answer: super::error::shown(answer),
        }
    }

    pub fn protocol(&self, command: &str, detail: String) -> MailboxError {
        MailboxError::Protocol {
            server: self.server.clone(),
            command: command.to_string(),
            detail,
        }
    }

    fn io(&self, source: std::io::Error) -> MailboxError {
        MailboxError::Io {
            server: self.server.clone(),
            source,
        }
    }
}

/// A line of at most `max` bytes (None when longer), its line break removed.
async fn read_line<R: AsyncBufReadExt + Unpin>(
    reader: &mut R,
    max: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    loop {
        let buffer = reader.fill_buf().await?;
        if buffer.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        let (taken, complete) = match memchr::memchr(b'\n', buffer) {
            Some(end) => (end + 1, true),
            None => (buffer.len(), false),
        };
        line.extend_from_slice(&buffer[..taken]);
        reader.consume(taken);
        if line.len() > max + 2 {
            return Ok(None);
        }
        if complete {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Some(line));
        }
    }
}

async fn timed<T>(
    server: &str,
    command: &str,
    limit: Duration,
    work: impl Future<Output = T>,
) -> Result<T, MailboxError> {
    tokio::time::timeout(limit, work)
        .await
        .map_err(|_| MailboxError::Timeout {
            server: server.to_string(),
            command: command.to_string(),
            seconds: limit.as_secs(),
        })
}

#[cfg(test)]
mod tests {
    use super::read_line;

    #[tokio::test]
    async fn lines_lose_their_break_and_long_ones_are_refused() {
        let mut input: &[u8] = b"* OK ready\r\nbare\nxxxxxxxxxxxxxxxxxxxx\r\n";
        assert_eq!(
            read_line(&mut input, 16).await.unwrap().unwrap(),
            b"* OK ready"
        );
        assert_eq!(read_line(&mut input, 16).await.unwrap().unwrap(), b"bare");
        assert_eq!(read_line(&mut input, 16).await.unwrap(), None);
        let mut closed: &[u8] = b"partial";
        assert!(read_line(&mut closed, 16).await.is_err());
    }
}
