//! SNS signing certificates: fetched from the URL a message names (once it is known to
//! be trusted), read for their RSA key, and cached by URL; and the GET that confirms a
//! subscription.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use url::Url;
use x509_cert::Certificate;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::{Decode, DecodePem};
use x509_cert::time::Time;

use crate::http::error::HttpError;

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// A certificate is a few kilobytes; so is a confirmation's answer.
const MAX_ANSWER: usize = 64 * 1024;
/// SNS signs with a handful of certificates at a time.
const CACHED: usize = 64;

/// The RSA key of a signing certificate, and when the certificate is valid.
#[derive(Debug)]
pub(super) struct SigningKey {
    /// PKCS#1 RSAPublicKey, DER.
    pub rsa: Vec<u8>,
    pub not_before: i64,
    pub not_after: i64,
}

impl SigningKey {
    /// From an X.509 certificate, PEM or DER.
    fn from_certificate(bytes: &[u8]) -> Result<SigningKey, String> {
        let certificate = Certificate::from_pem(bytes)
            .or_else(|_| Certificate::from_der(bytes))
            .map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let tbs = &certificate.tbs_certificate;
        let key = &tbs.subject_public_key_info;
        if key.algorithm.oid != RSA_ENCRYPTION {
            return Err("its key is not RSA".into());
        }
        let rsa = key
            .subject_public_key
            .as_bytes()
            .ok_or("its key is not a whole number of bytes")?
            .to_vec();
        let unix =
            |time: Time| i64::try_from(time.to_unix_duration().as_secs()).unwrap_or(i64::MAX);
        Ok(SigningKey {
            rsa,
            not_before: unix(tbs.validity.not_before),
            not_after: unix(tbs.validity.not_after),
        })
    }
}

pub(super) struct Certificates {
    client: Result<reqwest::Client, String>,
    keys: Mutex<HashMap<Url, Arc<SigningKey>>>,
}

impl Certificates {
    pub fn new() -> Certificates {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string());
        Certificates {
            client,
            keys: Mutex::default(),
        }
    }

    /// The key of the certificate at `url`, which the caller has found trusted.
    pub async fn key(&self, url: &Url) -> Result<Arc<SigningKey>, HttpError> {
        let cached = self
            .keys
            .lock()
            .expect("certificate lock")
            .get(url)
            .cloned();
        if let Some(key) = cached {
            return Ok(key);
        }
        let bytes = self.fetch(url).await.map_err(|e| {
            HttpError::Unavailable(format!("cannot fetch the signing certificate {url}: {e}"))
        })?;
        let key = SigningKey::from_certificate(&bytes).map_err(|e| {
            HttpError::Forbidden(format!("the signing certificate at {url} is unusable: {e}"))
        })?;
        let key = Arc::new(key);
        let mut keys = self.keys.lock().expect("certificate lock");
        if keys.len() >= CACHED {
            keys.clear();
        }
        keys.insert(url.clone(), key.clone());
        Ok(key)
    }

    /// GETs `url`, which the caller has found trusted, and forgets the answer.
    pub async fn visit(&self, url: &Url) -> Result<(), String> {
        self.fetch(url).await.map(drop)
    }

    async fn fetch(&self, url: &Url) -> Result<Vec<u8>, String> {
        let client = self
            .client
            .as_ref()
            .map_err(|e| format!("no HTTP client: {e}"))?;
        let mut response = client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("it answered {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_ANSWER {
                return Err(format!("it answered more than {MAX_ANSWER} bytes"));
            }
        }
        Ok(body)
    }
}
