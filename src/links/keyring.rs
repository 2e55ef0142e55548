//! Link-signing keys: several may be valid at once so that rotating the key does not
//! break links already sent. The first key signs; every listed key verifies.

use std::fmt;

/// The environment variable holding the key ring: `ID:HEXSECRET[,ID:HEXSECRET…]`,
/// the signing key first, e.g. `MAILCAST_LINK_KEYS=2:9f…,1:3a…`.
pub const KEYS_ENV: &str = "MAILCAST_LINK_KEYS";

/// Used when [`KEYS_ENV`] is unset. It is public knowledge: anyone can forge links
/// signed with it, so production must configure its own keys.
pub const INSECURE_DEVELOPMENT_KEY: &[u8] = b"mailcast-INSECURE-development-link-key-DO-NOT-USE";

/// Id of [`INSECURE_DEVELOPMENT_KEY`]. Real keys should use other ids so that links
/// signed during development never verify in production.
pub const DEVELOPMENT_KEY_ID: u8 = 0;

/// The shortest secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyRingError {
    #[error("the key ring is empty")]
    Empty,
    #[error("key entry {0:?} is not ID:HEXSECRET")]
    Syntax(String),
    #[error("key id {0:?} is not a number from 0 to 255")]
    BadId(String),
    #[error("the secret of key {0} is not hexadecimal")]
    BadHex(u8),
    #[error("the secret of key {id} has {len} bytes; at least {MIN_SECRET_LEN} are required")]
    TooShort { id: u8, len: usize },
    #[error("key id {0} is listed twice")]
    Duplicate(u8),
}

#[derive(Clone)]
struct Key {
    id: u8,
    secret: Vec<u8>,
    /// HMAC state with the key (and the token domain) already absorbed: signing clones
    /// it instead of hashing the key's pads again for every token.
    mac: super::token::HmacSha256,
}

impl Key {
    fn new(id: u8, secret: Vec<u8>) -> Self {
        let mac = super::token::keyed_mac(&secret);
        Self { id, secret, mac }
    }
}

/// An ordered set of (key id, secret). Cheap to clone; never prints its secrets.
#[derive(Clone)]
pub struct KeyRing {
    keys: Vec<Key>,
}

impl KeyRing {
    /// Builds a ring from `(id, secret)` pairs; the first one signs.
    pub fn new(keys: Vec<(u8, Vec<u8>)>) -> Result<Self, KeyRingError> {
        if keys.is_empty() {
            return Err(KeyRingError::Empty);
        }
        let mut ring = Vec::with_capacity(keys.len());
        for (id, secret) in keys {
            if secret.len() < MIN_SECRET_LEN {
                return Err(KeyRingError::TooShort {
                    id,
                    len: secret.len(),
                });
            }
            if ring.iter().any(|k: &Key| k.id == id) {
                return Err(KeyRingError::Duplicate(id));
            }
            ring.push(Key::new(id, secret));
        }
        Ok(Self { keys: ring })
    }

    /// Parses `ID:HEXSECRET[,ID:HEXSECRET…]`, the signing key first.
    pub fn parse(spec: &str) -> Result<Self, KeyRingError> {
        let entries = spec.split(',').map(str::trim).filter(|e| !e.is_empty());
        let keys = entries.map(parse_entry).collect::<Result<Vec<_>, _>>()?;
        Self::new(keys)
    }

    /// Reads [`KEYS_ENV`]; when it is unset, falls back to the well-known development
    /// key and says so loudly.
    pub fn from_env_or_dev() -> Result<Self, KeyRingError> {
        match std::env::var(KEYS_ENV) {
            Ok(spec) if !spec.trim().is_empty() => Self::parse(&spec),
            _ => {
                tracing::warn!(
                    "{KEYS_ENV} is not set: signing links with the INSECURE development key; \
                     anyone can forge tracking and unsubscribe links"
                );
                Ok(Self::development())
            }
        }
    }

    /// The well-known development ring: for tests and local runs only.
    pub fn development() -> Self {
        Self {
            keys: vec![Key::new(
                DEVELOPMENT_KEY_ID,
                INSECURE_DEVELOPMENT_KEY.to_vec(),
            )],
        }
    }

    /// True when this ring signs with the development key.
    pub fn is_development(&self) -> bool {
        self.signing_id() == DEVELOPMENT_KEY_ID && self.keys[0].secret == INSECURE_DEVELOPMENT_KEY
    }

    pub fn signing_id(&self) -> u8 {
        self.keys[0].id
    }

    pub(crate) fn signing_mac(&self) -> &super::token::HmacSha256 {
        &self.keys[0].mac
    }

    pub(crate) fn mac(&self, id: u8) -> Option<&super::token::HmacSha256> {
        self.keys.iter().find(|k| k.id == id).map(|k| &k.mac)
    }

    /// Key ids in order, the signing key first.
    pub fn ids(&self) -> impl Iterator<Item = u8> + '_ {
        self.keys.iter().map(|k| k.id)
    }
}

fn parse_entry(entry: &str) -> Result<(u8, Vec<u8>), KeyRingError> {
    let (id, hex_secret) = entry
        .split_once(':')
        .ok_or_else(|| KeyRingError::Syntax(redact(entry)))?;
    let id: u8 = id
        .trim()
        .parse()
        .map_err(|_| KeyRingError::BadId(id.trim().to_string()))?;
    let secret = hex::decode(hex_secret.trim()).map_err(|_| KeyRingError::BadHex(id))?;
    Ok((id, secret))
}

/// Error messages must not echo secrets.
fn redact(entry: &str) -> String {
    let shown: String = entry.chars().take(4).collect();
    format!("{shown}…")
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<u8> = self.ids().collect();
        f.debug_struct("KeyRing")
            .field("ids", &ids)
            .field("secrets", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_several_keys_signing_with_the_first() {
        let ring = KeyRing::parse(
            "2:00112233445566778899aabbccddeeff, 1:ffeeddccbbaa99887766554433221100",
        )
        .expect("valid ring");
        assert_eq!(ring.ids().collect::<Vec<_>>(), vec![2, 1]);
        assert_eq!(ring.signing_id(), 2);
    }

    #[test]
    fn refuses_short_bad_and_duplicate_keys() {
        assert_eq!(
            KeyRing::parse("1:0011").unwrap_err(),
            KeyRingError::TooShort { id: 1, len: 2 }
        );
        assert_eq!(KeyRing::parse("1:zz").unwrap_err(), KeyRingError::BadHex(1));
        assert_eq!(KeyRing::parse("").unwrap_err(), KeyRingError::Empty);
        assert!(matches!(
            KeyRing::parse("300:00112233445566778899aabbccddeeff"),
            Err(KeyRingError::BadId(_))
        ));
        let dup = "1:00112233445566778899aabbccddeeff,1:00112233445566778899aabbccddeeff";
        assert_eq!(KeyRing::parse(dup).unwrap_err(), KeyRingError::Duplicate(1));
    }

    #[test]
    fn debug_output_hides_secrets() {
        let ring = KeyRing::parse("7:00112233445566778899aabbccddeeff").expect("valid ring");
        let shown = format!("{ring:?}");
        assert!(!shown.contains("0011"));
        assert!(shown.contains('7'));
    }

    #[test]
    fn development_ring_is_recognisable() {
        assert!(KeyRing::development().is_development());
    }
}
