//! Dashboard accounts: users with a role and an Argon2id password hash, their sessions
//! (kept by token hash) and failed sign-ins for the throttle. Passwords are hashed and
//! checked in `crate::accounts`; this module only stores.

use serde::Serialize;

use super::{Store, StoreError, built, on_pool};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub role: String,
    pub created_at: i64,
}

/// A live session and who it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserSession {
    pub user_id: i64,
    pub email: String,
    pub role: String,
    pub csrf: String,
    pub created_at: i64,
    pub seen_at: i64,
}

const USER_COLUMNS: &str = "id, email, role, created_at";

impl Store {
    /// Creates a user, or sets the role and password of the one with this email.
    pub async fn upsert_user(
        &self,
        email: &str,
        role: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<User, StoreError> {
        let sql = format!(
            "INSERT INTO users (email, role, password_hash, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (email) DO UPDATE SET role = excluded.role,
                 password_hash = excluded.password_hash
             RETURNING {USER_COLUMNS}"
        );
        let user: User = on_pool!(self, pool => sqlx::query_as(built(&sql))
            .bind(email).bind(role).bind(password_hash).bind(now)
            .fetch_one(pool).await)?;
        // A new password ends every session signed in with the old one.
        on_pool!(self, pool => sqlx::query("DELETE FROM user_sessions WHERE user_id = $1")
            .bind(user.id).execute(pool).await.map(|_| ()))?;
        Ok(user)
    }

    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY email");
        Ok(on_pool!(self, pool => sqlx::query_as(built(&sql)).fetch_all(pool).await)?)
    }

    /// The user and their password hash.
    pub async fn user_credentials(
        &self,
        email: &str,
    ) -> Result<Option<(User, String)>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE email = $1");
        let row: Option<(i64, String, String, i64, String)> = on_pool!(self, pool => sqlx::query_as(built(&sql)).bind(email).fetch_optional(pool).await)?;
        Ok(row.map(|(id, email, role, created_at, hash)| {
            let user = User {
                id,
                email,
                role,
                created_at,
            };
            (user, hash)
        }))
    }

    /// Deletes the user and their sessions; false when there was none.
    pub async fn remove_user(&self, email: &str) -> Result<bool, StoreError> {
        let deleted = on_pool!(self, pool => sqlx::query("DELETE FROM users WHERE email = $1")
            .bind(email).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(deleted == 1)
    }

    pub async fn create_session(
        &self,
        token_hash: &str,
        user_id: i64,
        csrf: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO user_sessions (token_hash, user_id, csrf, created_at, seen_at)
                   VALUES ($1, $2, $3, $4, $4)";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(token_hash).bind(user_id).bind(csrf).bind(now)
            .execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    pub async fn session(&self, token_hash: &str) -> Result<Option<UserSession>, StoreError> {
        let sql = "SELECT s.user_id, u.email, u.role, s.csrf, s.created_at, s.seen_at
                   FROM user_sessions s JOIN users u ON u.id = s.user_id
                   WHERE s.token_hash = $1";
        Ok(on_pool!(self, pool => sqlx::query_as(sql).bind(token_hash).fetch_optional(pool).await)?)
    }

    /// Marks the session used at `now`.
    pub async fn touch_session(&self, token_hash: &str, now: i64) -> Result<(), StoreError> {
        let sql = "UPDATE user_sessions SET seen_at = $2 WHERE token_hash = $1";
        on_pool!(self, pool => sqlx::query(sql).bind(token_hash).bind(now).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    pub async fn end_session(&self, token_hash: &str) -> Result<(), StoreError> {
        let sql = "DELETE FROM user_sessions WHERE token_hash = $1";
        on_pool!(self, pool => sqlx::query(sql).bind(token_hash).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Failed sign-ins under `key` since `since`.
    pub async fn login_failures(&self, key: &str, since: i64) -> Result<i64, StoreError> {
        let sql = "SELECT COUNT(*) FROM login_failures WHERE throttle_key = $1 AND failed_at >= $2";
        let (count,): (i64,) = on_pool!(self, pool => sqlx::query_as(sql)
            .bind(key).bind(since).fetch_one(pool).await)?;
        Ok(count)
    }

    /// Records a failed sign-in under each key, and forgets failures older than `prune_before`.
    pub async fn record_login_failure(
        &self,
        keys: &[&str],
        now: i64,
        prune_before: i64,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("DELETE FROM login_failures WHERE failed_at < $1")
            .bind(prune_before).execute(pool).await.map(|_| ()))?;
        for key in keys {
            let sql = "INSERT INTO login_failures (throttle_key, failed_at) VALUES ($1, $2)";
            on_pool!(self, pool => sqlx::query(sql).bind(*key).bind(now).execute(pool).await.map(|_| ()))?;
        }
        Ok(())
    }

    /// Forgets an account's failures after it signs in.
    pub async fn clear_login_failures(&self, key: &str) -> Result<(), StoreError> {
        let sql = "DELETE FROM login_failures WHERE throttle_key = $1";
        on_pool!(self, pool => sqlx::query(sql).bind(key).execute(pool).await.map(|_| ()))?;
        Ok(())
    }
}
