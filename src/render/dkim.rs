//! DKIM signatures (RFC 6376) over the bytes that are sent: relaxed/relaxed
//! canonicalisation, `rsa-sha256` or `ed25519-sha256` (RFC 8463).
//!
//! Signing the final bytes is what makes the signature hold. lettre 0.11's signer hashed
//! its own header map, where a multipart message's top-level Content-Type is missing (the
//! MIME part writes it when formatted): it listed `content-type` in `h=` without hashing
//! it, and every verifier rejected the message.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::Signer as _;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs1v15::Pkcs1v15Sign;
use rsa::pkcs8::DecodePrivateKey;
use rsa::{RsaPrivateKey, traits::PublicKeyParts};
use sha2::{Digest, Sha256};

use super::RenderError;

/// Headers signed when the message has them, in `h=` order. List-Unsubscribe(-Post)
/// must be covered for one-click unsubscribe to be honoured (RFC 8058).
const SIGNED: [&str; 12] = [
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "reply-to",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
];

/// Longest header line we write; RFC 5322 asks for 78 where possible.
const LINE: usize = 78;

/// RSA keys shorter than this are refused: RFC 8301 forbids verifiers to accept them.
const RSA_MIN_BITS: usize = 1024;

/// A DKIM key as configured. `private_key` is one of: a PEM PKCS#8 key, RSA or Ed25519
/// (`-----BEGIN PRIVATE KEY-----`, what `openssl genpkey` writes); a PEM PKCS#1 RSA key
/// (`-----BEGIN RSA PRIVATE KEY-----`); or the base64 of a 32-byte Ed25519 seed.
#[derive(Clone)]
pub struct DkimSettings {
    pub domain: String,
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    pub private_key: String,
}

impl std::fmt::Debug for DkimSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimSettings")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DkimAlgorithm {
    Rsa,
    Ed25519,
}

impl DkimAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            DkimAlgorithm::Rsa => "RSA",
            DkimAlgorithm::Ed25519 => "Ed25519",
        }
    }
}

impl DkimSettings {
    /// Reads a key file in any of the formats [`DkimSettings`] names; the algorithm is
    /// the key's.
    pub fn from_key_file(
        domain: &str,
        selector: &str,
        path: impl AsRef<std::path::Path>,
    ) -> Result<Self, RenderError> {
        let path = path.as_ref();
        let private_key = std::fs::read_to_string(path).map_err(|e| RenderError::io(path, e))?;
        let key = SigningKey::parse(&private_key)?;
        let settings = Self {
            domain: domain.to_string(),
            selector: selector.to_string(),
            algorithm: key.algorithm(),
            private_key,
        };
        settings.signer()?;
        Ok(settings)
    }

    /// The signer these settings describe, or why they describe none.
    pub(crate) fn signer(&self) -> Result<Signer, RenderError> {
        let key = SigningKey::parse(&self.private_key)?;
        if key.algorithm() != self.algorithm {
            return Err(RenderError::Dkim(format!(
                "the key is an {} key, but {} was configured",
                key.algorithm().name(),
                self.algorithm.name()
            )));
        }
        Signer::new(&self.domain, &self.selector, key)
    }
}

enum SigningKey {
    Rsa(RsaPrivateKey),
    Ed25519(ed25519_dalek::SigningKey),
}

impl SigningKey {
    fn parse(text: &str) -> Result<Self, RenderError> {
        let text = text.trim();
        let key = if text.starts_with("-----BEGIN RSA PRIVATE KEY-----") {
            RsaPrivateKey::from_pkcs1_pem(text)
                .map(SigningKey::Rsa)
                .map_err(|e| RenderError::Dkim(format!("not a PKCS#1 RSA key: {e}")))?
        } else if text.starts_with("-----BEGIN PRIVATE KEY-----") {
            Self::from_pkcs8(text)?
        } else if text.starts_with("-----BEGIN") {
            let label = text.lines().next().unwrap_or_default();
            return Err(RenderError::Dkim(format!(
                "{label} is not a supported key; use PKCS#8 (BEGIN PRIVATE KEY, unencrypted) \
                 or PKCS#1 (BEGIN RSA PRIVATE KEY)"
            )));
        } else {
            Self::from_seed(text)?
        };
        if let SigningKey::Rsa(rsa) = &key {
            let bits = rsa.size() * 8;
            if bits < RSA_MIN_BITS {
                return Err(RenderError::Dkim(format!(
                    "the RSA key has {bits} bits; verifiers refuse fewer than {RSA_MIN_BITS}"
                )));
            }
        }
        Ok(key)
    }

    fn from_pkcs8(pem: &str) -> Result<Self, RenderError> {
        if let Ok(rsa) = RsaPrivateKey::from_pkcs8_pem(pem) {
            return Ok(SigningKey::Rsa(rsa));
        }
        ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
            .map(SigningKey::Ed25519)
            .map_err(|e| RenderError::Dkim(format!("PKCS#8 key is neither RSA nor Ed25519: {e}")))
    }

    fn from_seed(text: &str) -> Result<Self, RenderError> {
        let bytes = BASE64.decode(text).map_err(|e| {
            RenderError::Dkim(format!(
                "neither a PEM key nor the base64 of an Ed25519 seed: {e}"
            ))
        })?;
        let seed: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            RenderError::Dkim(format!(
                "an Ed25519 seed is 32 bytes; this base64 holds {}",
                bytes.len()
            ))
        })?;
        Ok(SigningKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(
            &seed,
        )))
    }

    fn algorithm(&self) -> DkimAlgorithm {
        match self {
            SigningKey::Rsa(_) => DkimAlgorithm::Rsa,
            SigningKey::Ed25519(_) => DkimAlgorithm::Ed25519,
        }
    }

    fn tag(&self) -> &'static str {
        match self {
            SigningKey::Rsa(_) => "rsa-sha256",
            SigningKey::Ed25519(_) => "ed25519-sha256",
        }
    }

    /// RSA is blinded (random per signature) so its timing says nothing of the key.
    fn sign(&self, header_hash: &[u8]) -> Result<Vec<u8>, RenderError> {
        match self {
            SigningKey::Rsa(key) => key
                .sign_with_rng(
                    &mut rsa::rand_core::OsRng,
                    Pkcs1v15Sign::new::<Sha256>(),
                    header_hash,
                )
                .map_err(|e| RenderError::Dkim(format!("RSA signing failed: {e}"))),
            // RFC 8463: Ed25519 signs the SHA-256 hash, not the headers themselves.
            SigningKey::Ed25519(key) => Ok(key.sign(header_hash).to_bytes().to_vec()),
        }
    }
}

/// Signs messages for one domain and selector. `Send + Sync`: built once per campaign.
pub(crate) struct Signer {
    domain: String,
    selector: String,
    key: SigningKey,
}

impl Signer {
    fn new(domain: &str, selector: &str, key: SigningKey) -> Result<Self, RenderError> {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        let selector = selector.trim().to_ascii_lowercase();
        check_dns_name("domain", &domain)?;
        check_dns_name("selector", &selector)?;
        Ok(Self {
            domain,
            selector,
            key,
        })
    }

    /// `message` with a DKIM-Signature header in front. `message` is a complete RFC 5322
    /// message with CRLF line endings, exactly as it will be sent.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, RenderError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.sign_at(message, now)
    }

    fn sign_at(&self, message: &[u8], timestamp: u64) -> Result<Vec<u8>, RenderError> {
        let (header_block, body) = split_message(message);
        let fields = parse_fields(header_block);
        let signed = select_signed(&fields);
        let body_hash = BASE64.encode(body_hash(body));
        let mut header = self.unsigned_header(&signed, timestamp, &body_hash);

        let mut hasher = Sha256::new();
        let mut canonical = Vec::with_capacity(header_block.len());
        for field in signed.iter().filter_map(|entry| entry.field) {
            canonical_field(field, &mut canonical);
        }
        let own = canonical.len();
        canonical_field(header.as_bytes(), &mut canonical);
        // The signature header is hashed without its final CRLF (RFC 6376 3.7).
        canonical.truncate(canonical.len() - 2);
        debug_assert!(canonical.len() > own);
        hasher.update(&canonical);
        let signature = self.key.sign(&hasher.finalize())?;
        fold_base64(&BASE64.encode(signature), &mut header);
        header.push_str("\r\n");

        let mut out = Vec::with_capacity(header.len() + message.len());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(message);
        Ok(out)
    }

    /// `DKIM-Signature: v=1; …; b=` folded to [`LINE`] columns, the signature still empty.
    fn unsigned_header(&self, signed: &[SignedEntry], timestamp: u64, body_hash: &str) -> String {
        let mut header = Folder::new("DKIM-Signature:");
        header.word(" ", "v=1;");
        header.word(" ", &format!("a={};", self.key.tag()));
        header.word(" ", "c=relaxed/relaxed;");
        header.word(" ", &format!("d={};", self.domain));
        header.word(" ", &format!("s={};", self.selector));
        header.word(" ", &format!("t={timestamp};"));
        for (i, entry) in signed.iter().enumerate() {
            let last = i + 1 == signed.len();
            let name = match (i, last) {
                (0, true) => format!("h={};", entry.name),
                (0, false) => format!("h={}", entry.name),
                (_, true) => format!(":{};", entry.name),
                (_, false) => format!(":{}", entry.name),
            };
            header.word(if i == 0 { " " } else { "" }, &name);
        }
        header.word(" ", &format!("bh={body_hash};"));
        header.word(" ", "b=");
        header.text
    }
}

/// Domain and selector become `s._domainkey.d` in DNS and tags in the header: DNS
/// labels only, so nothing can end a tag or the header.
fn check_dns_name(what: &str, name: &str) -> Result<(), RenderError> {
    let valid = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if valid {
        Ok(())
    } else {
        Err(RenderError::Dkim(format!(
            "{what} {name:?} is not a DNS name (letters, digits, '-', '_' and dots)"
        )))
    }
}

/// Header block (with the CRLF ending its last field) and body.
fn split_message(message: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memmem::find(message, b"\r\n\r\n") {
        Some(at) => (&message[..at + 2], &message[at + 4..]),
        None => (message, &[]),
    }
}

/// One header field: its text from the name to the CRLF that ends it (folds included,
/// that CRLF not).
struct Field<'a> {
    name: &'a [u8],
    text: &'a [u8],
}

fn parse_fields(header_block: &[u8]) -> Vec<Field<'_>> {
    let mut fields: Vec<Field> = Vec::with_capacity(16);
    let mut start = 0;
    let mut line_start = 0;
    while line_start < header_block.len() {
        let line_end = memchr::memmem::find(&header_block[line_start..], b"\r\n")
            .map_or(header_block.len(), |at| line_start + at);
        let next = (line_end + 2).min(header_block.len());
        let continues = matches!(header_block.get(next), Some(b' ' | b'\t'));
        if !continues {
            let text = &header_block[start..line_end];
            if let Some(colon) = memchr::memchr(b':', text) {
                fields.push(Field {
                    name: trim_wsp(&text[..colon]),
                    text,
                });
            }
            start = next;
        }
        line_start = next;
    }
    fields
}

/// One `h=` entry: the field it hashes, or None for an entry that claims a further
/// instance the message does not have (RFC 6376 5.4.2).
struct SignedEntry<'a> {
    name: &'static str,
    field: Option<&'a [u8]>,
}

/// Every instance of each [`SIGNED`] name the message has, bottom-up as verifiers take
/// them (RFC 6376 5.4.2), plus one entry more: a header of that name added later would
/// break the signature instead of going unnoticed (a second From, Subject or
/// List-Unsubscribe prepended in transit). Names the message lacks are not listed.
fn select_signed<'a>(fields: &[Field<'a>]) -> Vec<SignedEntry<'a>> {
    let mut entries = Vec::with_capacity(2 * SIGNED.len());
    for name in SIGNED {
        let before = entries.len();
        entries.extend(
            fields
                .iter()
                .rev()
                .filter(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
                .map(|f| SignedEntry {
                    name,
                    field: Some(f.text),
                }),
        );
        if entries.len() > before {
            entries.push(SignedEntry { name, field: None });
        }
    }
    entries
}

/// Relaxed header canonicalisation (RFC 6376 3.4.2): name lowercased, the value
/// unfolded, runs of space and tab made one space, none around the colon or at the end.
fn canonical_field(field: &[u8], out: &mut Vec<u8>) {
    let colon = memchr::memchr(b':', field).unwrap_or(field.len());
    out.extend(trim_wsp(&field[..colon]).iter().map(u8::to_ascii_lowercase));
    out.push(b':');
    let value = field.get(colon + 1..).unwrap_or_default();
    let mut pending_space = false;
    let mut written = false;
    for &byte in value {
        match byte {
            b'\r' | b'\n' => {}
            b' ' | b'\t' => pending_space = written,
            _ => {
                if pending_space {
                    out.push(b' ');
                    pending_space = false;
                }
                out.push(byte);
                written = true;
            }
        }
    }
    out.extend_from_slice(b"\r\n");
}

fn trim_wsp(bytes: &[u8]) -> &[u8] {
    let is_wsp = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_wsp(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_wsp(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// SHA-256 of the relaxed body (RFC 6376 3.4.4): no space or tab at a line's end, runs
/// of them one space, no empty lines at the end, a non-empty body ending in CRLF.
fn body_hash(body: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    let mut empty_lines = 0usize;
    let mut line = Vec::with_capacity(128);
    let mut rest = body;
    while !rest.is_empty() {
        let (raw, next) = match memchr::memmem::find(rest, b"\r\n") {
            Some(at) => (&rest[..at], &rest[at + 2..]),
            None => (rest, &[][..]),
        };
        rest = next;
        let canonical = relaxed_line(raw, &mut line);
        if canonical.is_empty() {
            empty_lines += 1;
            continue;
        }
        for _ in 0..std::mem::take(&mut empty_lines) {
            hasher.update(b"\r\n");
        }
        hasher.update(canonical);
        hasher.update(b"\r\n");
    }
    hasher.finalize().into()
}

/// The line itself when it is already relaxed (the usual case: quoted-printable leaves
/// no trailing space), else its relaxed form written to `scratch`.
fn relaxed_line<'a>(raw: &'a [u8], scratch: &'a mut Vec<u8>) -> &'a [u8] {
    let needs_work = raw.last().is_some_and(|b| *b == b' ' || *b == b'\t')
        || raw
            .windows(2)
            .any(|w| w[0] == b'\t' || (w[0] == b' ' && (w[1] == b' ' || w[1] == b'\t')));
    if !needs_work {
        return raw;
    }
    scratch.clear();
    let mut pending_space = false;
    for &byte in raw {
        if byte == b' ' || byte == b'\t' {
            pending_space = true;
        } else {
            if pending_space {
                scratch.push(b' ');
                pending_space = false;
            }
            scratch.push(byte);
        }
    }
    scratch
}

/// Writes a header as words, folding (CRLF and a space) before a word that would pass
/// [`LINE`] columns.
struct Folder {
    text: String,
    column: usize,
}

impl Folder {
    fn new(name: &str) -> Self {
        Self {
            text: name.to_string(),
            column: name.len(),
        }
    }

    /// `separator` is " " between tags, "" inside a list that may fold anywhere.
    fn word(&mut self, separator: &str, word: &str) {
        if self.column + separator.len() + word.len() > LINE {
            self.text.push_str("\r\n ");
            self.column = 1;
        } else {
            self.text.push_str(separator);
            self.column += separator.len();
        }
        self.text.push_str(word);
        self.column += word.len();
    }
}

/// Appends the signature to a header ending in `b=`, folded to [`LINE`] columns.
fn fold_base64(signature: &str, header: &mut String) {
    let column = header.len() - header.rfind('\n').map_or(0, |i| i + 1);
    let first = LINE.saturating_sub(column).min(signature.len());
    header.push_str(&signature[..first]);
    for chunk in signature.as_bytes()[first..].chunks(LINE - 1) {
        header.push_str("\r\n ");
        header.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(field: &str) -> String {
        let mut out = Vec::new();
        canonical_field(field.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn relaxed_headers_unfold_and_squeeze_whitespace() {
        assert_eq!(
            canonical("Subject : Hello \t  world\r\n  again  "),
            "subject:Hello world again\r\n"
        );
        assert_eq!(canonical("X-Empty:   "), "x-empty:\r\n");
    }

    #[test]
    fn relaxed_body_drops_trailing_space_and_empty_lines() {
        let plain = body_hash(b"a b\r\nc\r\n");
        assert_eq!(body_hash(b"a  \t b \r\nc\r\n\r\n\r\n"), plain);
        assert_eq!(
            body_hash(b"a b\r\nc"),
            plain,
            "a missing final CRLF is added"
        );
        assert_ne!(
            body_hash(b"a b\r\n\r\nc\r\n"),
            plain,
            "inner empty lines count"
        );
        assert_eq!(body_hash(b""), body_hash(b"\r\n\r\n"), "empty is empty");
        assert_eq!(
            body_hash(b"").to_vec(),
            Sha256::digest(b"").to_vec(),
            "RFC 6376 3.4.4: an empty body hashes as nothing"
        );
    }

    #[test]
    fn fields_keep_their_folds_and_names_are_trimmed() {
        let block = b"From: a@b\r\nSubject: one\r\n two\r\nTo : c@d\r\n";
        let fields = parse_fields(block);
        let names: Vec<&[u8]> = fields.iter().map(|f| f.name).collect();
        assert_eq!(names, [&b"From"[..], b"Subject", b"To"]);
        assert_eq!(fields[1].text, b"Subject: one\r\n two");
    }

    #[test]
    fn only_present_headers_are_listed_each_once_more_than_it_occurs() {
        let block = b"Subject: x\r\nFrom: a@b\r\nX-Other: y\r\n";
        let fields = parse_fields(block);
        let names: Vec<&str> = select_signed(&fields).iter().map(|e| e.name).collect();
        assert_eq!(names, ["from", "from", "subject", "subject"]);
    }

    #[test]
    fn dns_names_only_for_domain_and_selector() {
        assert!(check_dns_name("selector", "s1").is_ok());
        assert!(check_dns_name("domain", "mail.shop-1.example.com").is_ok());
        for bad in ["", "a;b", "a b", "a..b", "s1\r\nX-Evil: 1"] {
            assert!(check_dns_name("selector", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_signature_header_is_folded() {
        let key = SigningKey::parse("nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=").unwrap();
        let signer = Signer::new("shop.example.com", "s1", key).unwrap();
        let message = b"From: a@shop.example.com\r\nSubject: hi\r\n\r\nbody\r\n";
        let signed = signer.sign_at(message, 1_700_000_000).unwrap();
        let text = String::from_utf8(signed).unwrap();
        let header_end = text.find("\r\nFrom:").unwrap();
        for line in text[..header_end].split("\r\n") {
            assert!(line.len() <= LINE, "{line:?}");
        }
        assert!(text.ends_with("\r\nFrom: a@shop.example.com\r\nSubject: hi\r\n\r\nbody\r\n"));
        assert!(text.contains("h=from:from:subject:subject;"), "{text}");
    }
}
