//! Link-signing keys: several may be valid at once so that rotating the key does not
//! break links already sent. The first key signs; every listed key verifies.

use std::fmt;

use crate::store::{Store, StoreError};

/// The environment variable holding the key ring: `ID:HEXSECRET[,ID:HEXSECRET…]`,
/// the signing key first, e.g. `MAILCAST_LINK_KEYS=2:9f…,1:3a…`.
pub const KEYS_ENV: &str = "MAILCAST_LINK_KEYS";

/// The development key of tests and examples ([`KeyRing::development`]). It is public
/// knowledge: anyone can forge links signed with it, so the HTTP server refuses it on
/// any address but loopback.
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

/// Id of the key generated for a database without configured keys.
pub const GENERATED_KEY_ID: u8 = 1;

/// Bytes of a generated secret.
const GENERATED_SECRET_LEN: usize = 32;

/// Why no key ring could be had.
#[derive(Debug, thiserror::Error)]
pub enum LoadKeysError {
    #[error("{KEYS_ENV} is not a valid key ring")]
    Configured(#[source] KeyRingError),
    #[error("the link-signing keys stored in the database are not valid")]
    Stored(#[source] KeyRingError),
    #[error("cannot read or store the link-signing keys")]
    Store(#[source] StoreError),
}

/// Said once per process, however many parts of it load the ring.
fn warn_development_key_once() {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        tracing::warn!(
            "{KEYS_ENV} lists the public development key: anyone can forge tracking and \
             unsubscribe links; mailcast serves it on loopback addresses only"
        );
    });
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

    /// The ring [`KEYS_ENV`] configures; when it is unset, the ring stored in the
    /// database, generated on the first start (so a new install is secure with no
    /// set-up, and every process sharing the database uses the same ring).
    pub async fn load(store: &Store) -> Result<Self, LoadKeysError> {
        let configured = std::env::var(KEYS_ENV).ok();
        Self::configured_or_stored(configured.as_deref(), store).await
    }

    /// [`KeyRing::load`] with the configuration given instead of read.
    pub async fn configured_or_stored(
        spec: Option<&str>,
        store: &Store,
    ) -> Result<Self, LoadKeysError> {
        match spec {
            Some(spec) if !spec.trim().is_empty() => {
                let ring = Self::parse(spec).map_err(LoadKeysError::Configured)?;
                if ring.contains_development_key() {
                    warn_development_key_once();
                }
                Ok(ring)
            }
            _ => Self::stored(store).await,
        }
    }

    /// The ring stored in the database, generating and storing one key first when
    /// there is none.
    pub async fn stored(store: &Store) -> Result<Self, LoadKeysError> {
        let mut stored = store.link_keys().await.map_err(LoadKeysError::Store)?;
        if stored.is_empty() {
            let secret: [u8; GENERATED_SECRET_LEN] = rand::random();
            let added = store
                .add_link_key_if_absent(i64::from(GENERATED_KEY_ID), &hex::encode(secret))
                .await
                .map_err(LoadKeysError::Store)?;
            if added {
                tracing::info!(
                    "{KEYS_ENV} is not set: generated a link-signing key and stored it in the \
                     database; every process using this database signs with it"
                );
            }
            stored = store.link_keys().await.map_err(LoadKeysError::Store)?;
        }
        let keys = stored
            .into_iter()
            .map(|(id, secret)| {
                let id = u8::try_from(id).map_err(|_| KeyRingError::BadId(id.to_string()))?;
                let secret = hex::decode(secret).map_err(|_| KeyRingError::BadHex(id))?;
                Ok((id, secret))
            })
            .collect::<Result<Vec<_>, KeyRingError>>()
            .map_err(LoadKeysError::Stored)?;
        Self::new(keys).map_err(LoadKeysError::Stored)
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

    /// True when any key of this ring is the public development key: links it
    /// verifies can be forged by anyone.
    pub fn contains_development_key(&self) -> bool {
        self.keys
            .iter()
            .any(|k| k.secret == INSECURE_DEVELOPMENT_KEY)
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
