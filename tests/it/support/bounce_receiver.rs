//! The bounce receiver in the test process on a free loopback port, and a plain SMTP
//! client that says exactly what a test tells it to.

use std::net::SocketAddr;

use mailcast::bounce::{BounceSettings, ReceiverLimits, bind_receiver, serve_receiver};
use mailcast::store::Store;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

pub struct Receiver {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start(
        store: &Store,
        settings: BounceSettings,
        limits: ReceiverLimits,
    ) -> Receiver {
        let listener = bind_receiver("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let store = store.clone();
        let task = tokio::spawn(async move {
            let stopped = async {
                let _ = stopped.await;
            };
            serve_receiver(listener, store, settings, limits, stopped)
                .await
                .expect("bounce receiver");
        });
        Receiver {
            addr,
            stop: Some(stop),
            task,
        }
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.unwrap();
    }
}

pub struct Client {
    stream: BufReader<TcpStream>,
    /// The server's greeting.
    pub greeting: String,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = BufReader::new(TcpStream::connect(addr).await.unwrap());
        let mut client = Client {
            stream,
            greeting: String::new(),
        };
        client.greeting = client.reply().await;
        client
    }

    /// Sends one command line; returns the whole reply (lines joined by `\n`).
    pub async fn command(&mut self, line: &str) -> String {
        self.stream
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
        self.reply().await
    }

    /// Sends a message body (dot-stuffed here) and the final dot; returns the reply.
    pub async fn data(&mut self, body: &[u8]) -> String {
        let mut wire = Vec::new();
        for line in body.split_inclusive(|&b| b == b'\n') {
            if line.starts_with(b".") {
                wire.push(b'.');
            }
            wire.extend_from_slice(line);
        }
        if !wire.ends_with(b"\r\n") {
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b".\r\n");
        self.stream.get_mut().write_all(&wire).await.unwrap();
        self.reply().await
    }

    /// EHLO, MAIL FROM:<>, one RCPT TO, DATA: the reply to each, then to the message.
    pub async fn send(&mut self, to: &str, body: &[u8]) -> Vec<String> {
        let mut replies = vec![
            self.command("EHLO mx.example.net").await,
            self.command("MAIL FROM:<>").await,
            self.command(&format!("RCPT TO:<{to}>")).await,
        ];
        let data = self.command("DATA").await;
        let go_on = data.starts_with("354");
        replies.push(data);
        if go_on {
            replies.push(self.data(body).await);
        }
        replies
    }

    /// One reply, however many lines; empty when the server closed the connection.
    pub async fn reply(&mut self) -> String {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if self.stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                return lines.join("\n");
            }
            let line = line.trim_end().to_string();
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return lines.join("\n");
            }
        }
    }
}
