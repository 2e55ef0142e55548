//! Signing as the sending providers do, for the webhook tests: an RSA key with a
//! self-signed certificate, served over HTTP the way SNS serves its signing
//! certificates (the server records every request: certificate fetches, subscription
//! confirmations); a P-256 key as SendGrid's; Mailgun's HMAC. Keys and signatures are
//! made with the `openssl` command, apart from mailcast's own code.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Runs `openssl` with `args`, `input` on its standard input; its standard output.
pub fn openssl(args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("input to openssl");
    let output = child.wait_with_output().expect("openssl ran");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// A private key in a file of its own, and signatures made with it.
pub struct Key {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Key {
    fn generate(args: &[&str]) -> Key {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("key.pem");
        let mut all = args.to_vec();
        let out = path.to_str().expect("UTF-8 path");
        all.extend(["-out", out]);
        openssl(&all, b"");
        Key { _dir: dir, path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Base64 of the signature of `data` with digest `digest` (`sha1`, `sha256`).
    pub fn sign(&self, digest: &str, data: &[u8]) -> String {
        let key = self.path.to_str().expect("UTF-8 path");
        BASE64.encode(openssl(
            &["dgst", &format!("-{digest}"), "-sign", key],
            data,
        ))
    }
}

/// An RSA key with a self-signed certificate (PEM), as SNS signs with.
pub struct SnsSigner {
    pub key: Key,
    pub certificate: Vec<u8>,
}

impl SnsSigner {
    pub fn new() -> SnsSigner {
        let key = Key::generate(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ]);
        let certificate = openssl(
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                key.path().to_str().expect("UTF-8 path"),
                "-subj",
                "/CN=sns.test",
                "-days",
                "2",
            ],
            b"",
        );
        SnsSigner { key, certificate }
    }

    /// `message` with `SignatureVersion` and `Signature` set: version 1 signs with
    /// SHA-1, 2 with SHA-256, over the string AWS documents for the message's type.
    pub fn sign(&self, mut message: serde_json::Value, version: u8) -> serde_json::Value {
        let digest = if version == 1 { "sha1" } else { "sha256" };
        let signature = self.key.sign(digest, string_to_sign(&message).as_bytes());
        message["SignatureVersion"] = version.to_string().into();
        message["Signature"] = signature.into();
        message
    }
}

/// The fields SNS signs, `Name\nvalue\n` each, as AWS's documentation lists them.
fn string_to_sign(message: &serde_json::Value) -> String {
    let names: &[&str] = if message["Type"] == "Notification" {
        &[
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ]
    } else {
        &[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ]
    };
    names
        .iter()
        .filter_map(|name| Some(format!("{name}\n{}\n", message.get(*name)?.as_str()?)))
        .collect()
}

/// A P-256 key as SendGrid's signed event webhook uses, and its public key as
/// SendGrid shows it (base64 DER SubjectPublicKeyInfo).
pub struct SendGridSigner {
    key: Key,
    pub public_key: String,
}

impl SendGridSigner {
    pub fn new() -> SendGridSigner {
        let key = Key::generate(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ]);
        let path = key.path().to_str().expect("UTF-8 path");
        let der = openssl(&["pkey", "-in", path, "-pubout", "-outform", "DER"], b"");
        SendGridSigner {
            key,
            public_key: BASE64.encode(der),
        }
    }

    /// The signature header's value for `body` sent at `timestamp`.
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> String {
        let signed = [timestamp.to_string().as_bytes(), body].concat();
        self.key.sign("sha256", &signed)
    }
}

/// Mailgun's `signature` object for a request at `timestamp`.
pub fn mailgun_signature(key: &str, timestamp: i64, token: &str) -> serde_json::Value {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(format!("{timestamp}{token}").as_bytes());
    serde_json::json!({
        "timestamp": timestamp.to_string(),
        "token": token,
        "signature": hex::encode(mac.finalize().into_bytes()),
    })
}

#[derive(Clone)]
struct Served {
    certificate: Arc<Vec<u8>>,
    requests: Arc<Mutex<Vec<String>>>,
}

/// An HTTP server on a free loopback port under `/sns/`: `*.pem` answers the
/// certificate, anything else a confirmation; it records every request's path and query.
pub struct CertServer {
    /// `http://127.0.0.1:PORT/sns/`
    pub base: String,
    requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl CertServer {
    pub async fn start(certificate: Vec<u8>) -> CertServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let served = Served {
            certificate: Arc::new(certificate),
            requests: Arc::default(),
        };
        let requests = served.requests.clone();
        let app = Router::new().fallback(answer).with_state(served);
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("certificate server");
        });
        CertServer {
            base: format!("http://{addr}/sns/"),
            requests,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Paths and queries requested so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("requests lock").clone()
    }
}

impl Drop for CertServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(State(served): State<Served>, uri: Uri) -> Response {
    served
        .requests
        .lock()
        .expect("requests lock")
        .push(uri.to_string());
    if uri.path().ends_with(".pem") {
        served.certificate.as_ref().clone().into_response()
    } else {
        "<ConfirmSubscriptionResponse/>".into_response()
    }
}
