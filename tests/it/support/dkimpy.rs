//! An independent DKIM verifier: dkimpy (Debian's `python3-dkim`), handed the public key
//! record through its `dnsfunc` instead of DNS, and test keys made by `openssl`.
//! `/usr/bin/python3` on purpose: a pyenv `python3` earlier in PATH lacks the module.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

const PYTHON: &str = "/usr/bin/python3";

/// Whether dkimpy can run here. Where it cannot, the tests that need it say so and
/// return; under CI (`MAILCAST_TEST_CI`, set by `.ci/run`, which installs it) they fail.
pub fn present() -> bool {
    static PRESENT: OnceLock<bool> = OnceLock::new();
    let present = *PRESENT.get_or_init(|| {
        Command::new(PYTHON)
            .args(["-c", "import dkim"])
            .output()
            .is_ok_and(|output| output.status.success())
    });
    if !present {
        assert!(
            std::env::var_os("MAILCAST_TEST_CI").is_none(),
            "dkimpy is missing: `{PYTHON} -c 'import dkim'` failed (apt-get install python3-dkim)"
        );
        eprintln!("dkimpy missing: DKIM verification skipped (apt-get install python3-dkim)");
    }
    present
}

/// Reads a JSON list of base64 messages on stdin; argv: the DNS name to answer, and
/// its TXT record. Answers one verdict per message, as JSON.
const VERIFY: &str = r#"
import base64, io, json, logging, sys
import dkim
name, record = sys.argv[1].encode(), sys.argv[2].encode()
verdicts = []
for message in json.load(sys.stdin):
    asked = []
    def dnsfunc(qname, timeout=5):
        asked.append(qname.decode())
        return record if qname == name else None
    log = io.StringIO()
    logger = logging.getLogger("dkimpy-test-%d" % len(verdicts))
    logger.addHandler(logging.StreamHandler(log))
    logger.setLevel(logging.DEBUG)
    verifier = dkim.DKIM(base64.b64decode(message), logger=logger)
    try:
        ok, error = bool(verifier.verify(dnsfunc=dnsfunc)), None
    except dkim.DKIMException as e:
        ok, error = False, repr(e)
    headers = [h.decode() for h in getattr(verifier, "include_headers", ())]
    verdicts.append({"ok": ok, "error": error, "asked": asked, "headers": headers,
                     "log": log.getvalue()})
print(json.dumps(verdicts))
"#;

/// What dkimpy made of a message's first DKIM-Signature.
#[derive(Debug)]
pub struct Verdict {
    pub ok: bool,
    /// The `h=` list as dkimpy read it, lowercase.
    pub signed_headers: Vec<String>,
    /// The DNS names dkimpy asked for.
    pub asked: Vec<String>,
    /// dkimpy's error and debug log, for assertion messages.
    pub detail: String,
}

/// Verifies each message with dkimpy (one process for all), answering
/// `selector._domainkey.domain.` with `record`.
pub fn verify_all(
    messages: &[Vec<u8>],
    selector: &str,
    domain: &str,
    record: &str,
) -> Vec<Verdict> {
    let name = format!("{selector}._domainkey.{domain}.");
    let input: Vec<String> = messages.iter().map(|m| BASE64.encode(m)).collect();
    let mut child = Command::new(PYTHON)
        .args(["-c", VERIFY, &name, record])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{PYTHON}: {e} (apt-get install python3-dkim)"));
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        serde_json::to_writer(&mut stdin, &input).expect("messages to dkimpy");
        stdin.flush().expect("flush");
    });
    let output = child.wait_with_output().expect("dkimpy ran");
    writer.join().expect("writer thread");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "dkimpy failed to run (is python3-dkim installed?): {stderr}"
    );
    let answers: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("dkimpy answer: {e}: {stderr}"));
    assert_eq!(answers.len(), messages.len(), "one verdict per message");
    answers.iter().map(verdict).collect()
}

pub fn verify(message: &[u8], selector: &str, domain: &str, record: &str) -> Verdict {
    verify_all(&[message.to_vec()], selector, domain, record)
        .pop()
        .expect("one verdict")
}

fn verdict(answer: &serde_json::Value) -> Verdict {
    let strings = |key: &str| -> Vec<String> {
        answer[key]
            .as_array()
            .expect("a list")
            .iter()
            .map(|v| v.as_str().expect("a string").to_string())
            .collect()
    };
    Verdict {
        ok: answer["ok"].as_bool().expect("ok is a bool"),
        signed_headers: strings("headers"),
        asked: strings("asked"),
        detail: format!(
            "{} {}",
            answer["error"],
            answer["log"].as_str().unwrap_or("")
        ),
    }
}

/// A private key in the formats mailcast reads, and its public DNS record.
pub struct TestKey {
    /// PEM PKCS#8 (`BEGIN PRIVATE KEY`), as `openssl genpkey` writes it.
    pub pkcs8: String,
    /// The other accepted format: PEM PKCS#1 for RSA, the base64 seed for Ed25519.
    pub legacy: String,
    /// The `selector._domainkey` TXT record.
    pub record: String,
}

pub fn rsa_key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let pkcs8 = openssl(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ],
            b"",
        );
        let pkcs1 = openssl(&["rsa", "-traditional"], &pkcs8);
        let public = openssl(&["pkey", "-pubout", "-outform", "DER"], &pkcs8);
        TestKey {
            pkcs8: text(pkcs8),
            legacy: text(pkcs1),
            record: format!("v=DKIM1; k=rsa; p={}", BASE64.encode(public)),
        }
    })
}

pub fn ed25519_key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let pkcs8 = openssl(&["genpkey", "-algorithm", "ed25519"], b"");
        let private = openssl(&["pkey", "-outform", "DER"], &pkcs8);
        let public = openssl(&["pkey", "-pubout", "-outform", "DER"], &pkcs8);
        // Both DER forms end with the 32 key bytes (RFC 8410).
        let seed = &private[private.len() - 32..];
        let raw_public = &public[public.len() - 32..];
        TestKey {
            pkcs8: text(pkcs8),
            legacy: BASE64.encode(seed),
            record: format!("v=DKIM1; k=ed25519; p={}", BASE64.encode(raw_public)),
        }
    })
}

fn openssl(args: &[&str], input: &[u8]) -> Vec<u8> {
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

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("PEM is text")
}
