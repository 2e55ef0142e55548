//! Dashboard accounts: roles, Argon2id passwords, session tokens. The CLI's
//! `mailcast user` and the dashboard's sign-in both come here.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::domain::EmailAddress;
use crate::store::{Store, StoreError, User};

/// Shortest password a user may set.
pub const MIN_PASSWORD_LEN: usize = 12;

/// What a user may do: admins everything, editors everything but accounts and API
/// keys, viewers only look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Role {
    Viewer,
    Editor,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    /// The stored text; an unknown one is read as the least privileged role.
    pub fn from_stored(text: &str) -> Role {
        match text {
            "admin" => Role::Admin,
            "editor" => Role::Editor,
            _ => Role::Viewer,
        }
    }

    pub fn can_change(self) -> bool {
        self >= Role::Editor
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("email: {0}")]
    Email(String),
    #[error("password: must be at least {MIN_PASSWORD_LEN} characters")]
    ShortPassword,
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates the user, or resets their role and password. Without a password one is
/// generated and returned, to be shown once.
pub async fn create_user(
    store: &Store,
    email: &str,
    role: Role,
    password: Option<String>,
) -> Result<(User, Option<String>), AccountError> {
    let email = account_email(email)?;
    let (password, generated) = match password {
        Some(password) if password.chars().count() < MIN_PASSWORD_LEN => {
            return Err(AccountError::ShortPassword);
        }
        Some(password) => (password, false),
        None => (generate_password(), true),
    };
    let hash = hash_password(&password)?;
    let user = store
        .upsert_user(&email, role.as_str(), &hash, crate::time::now())
        .await?;
    Ok((user, generated.then_some(password)))
}

/// The form accounts are kept under: a valid address, lower-cased.
pub fn account_email(text: &str) -> Result<String, AccountError> {
    EmailAddress::parse(text.trim())
        .map(|email| email.as_str().to_lowercase())
        .map_err(|e| AccountError::Email(e.to_string()))
}

pub fn hash_password(password: &str) -> Result<String, AccountError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| AccountError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

/// True when `password` matches the stored PHC string; a malformed one matches nothing.
pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash that no password is checked against successfully, so that a sign-in for an
/// unknown account costs as much as one for a known account.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password(&random_token()).unwrap_or_default())
}

/// 20 characters from an alphabet without look-alikes (about 115 bits).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| ALPHABET[(rng.next_u32() as usize) % ALPHABET.len()] as char)
        .collect()
}

/// 256 random bits, URL-safe: session tokens and CSRF tokens.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the store keeps of a session token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterY", &hash));
        assert!(!verify_password("correct horse battery", "not a hash"));
        assert!(!verify_password("anything", decoy_hash()));
    }

    #[test]
    fn generated_passwords_are_long_enough_and_differ() {
        let (a, b) = (generate_password(), generate_password());
        assert!(a.len() >= MIN_PASSWORD_LEN);
        assert_ne!(a, b);
    }

    #[test]
    fn roles_order_by_privilege() {
        assert!(!Role::Viewer.can_change());
        assert!(Role::Editor.can_change());
        assert_eq!(Role::from_stored("admin"), Role::Admin);
        assert_eq!(Role::from_stored("owner"), Role::Viewer);
    }
}
