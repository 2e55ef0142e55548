//! A real SMTP server (mailin-embedded) on a free loopback port, recording what it
//! accepts.

use std::net::{IpAddr, TcpListener};
use std::sync::{Arc, Mutex};

use mailin_embedded::{Handler, Response, Server, response};

#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: Vec<u8>,
}

impl Received {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }

    /// The message's Message-ID header value, angle brackets included.
    pub fn message_id(&self) -> String {
        self.text()
            .lines()
            .find_map(|l| l.strip_prefix("Message-ID: "))
            .expect("a Message-ID")
            .trim()
            .to_string()
    }
}

/// Decides the reply to RCPT TO for an address; None accepts it.
pub type RcptPolicy = Arc<dyn Fn(&str) -> Option<Response> + Send + Sync>;

#[derive(Clone)]
struct Recorder {
    received: Arc<Mutex<Vec<Received>>>,
    rcpt_policy: RcptPolicy,
    current: Option<Received>,
}

impl Handler for Recorder {
    fn rcpt(&mut self, to: &str) -> Response {
        (self.rcpt_policy)(to).unwrap_or(response::OK)
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.current = Some(Received {
            from: from.to_string(),
            to: to.to_vec(),
            data: Vec::new(),
        });
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if let Some(current) = &mut self.current {
            current.data.extend_from_slice(buf);
        }
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        if let Some(message) = self.current.take() {
            self.received.lock().expect("received lock").push(message);
        }
        response::OK
    }

    fn helo(&mut self, _ip: IpAddr, _domain: &str) -> Response {
        response::OK
    }
}

pub struct SmtpServer {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
}

impl SmtpServer {
    /// Starts a server accepting every recipient.
    pub fn start() -> SmtpServer {
        SmtpServer::start_with(Arc::new(|_| None))
    }

    /// Starts a server whose RCPT replies come from `rcpt_policy`. It runs on its own
    /// threads until the test process ends.
    pub fn start_with(rcpt_policy: RcptPolicy) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let port = listener.local_addr().expect("local addr").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let handler = Recorder {
            received: received.clone(),
            rcpt_policy,
            current: None,
        };
        let mut server = Server::new(handler);
        server
            .with_name("test.mailcast.invalid")
            .with_num_threads(64)
            .with_tcp_listener(listener);
        std::thread::spawn(move || {
            if let Err(error) = server.serve() {
                eprintln!("test SMTP server stopped: {error}");
            }
        });
        SmtpServer { port, received }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("received lock").clone()
    }
}
