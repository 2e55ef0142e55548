//! API keys: 256 random bits, shown once; the store keeps their SHA-256.

use sha2::{Digest, Sha256};

/// Prefix that makes a mailcast key recognisable (in logs, secret scanners).
const PREFIX: &str = "mc_";

/// A new random key, `mc_` and 64 hex digits.
pub fn generate_api_key() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{PREFIX}{}", hex::encode(bytes))
}

/// What the store keeps of a key.
pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_prefixed_and_hashed() {
        let (a, b) = (generate_api_key(), generate_api_key());
        assert_ne!(a, b);
        assert!(a.starts_with("mc_") && a.len() == 67);
        assert_eq!(hash_api_key(&a).len(), 64);
        assert_ne!(hash_api_key(&a), hash_api_key(&b));
    }
}
