-- Dashboard accounts (src/http/app): people who sign in to /app, their sessions, and
-- failed sign-ins (the throttle counts them per account and per address).
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT    NOT NULL UNIQUE,          -- lower-cased
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
    password_hash TEXT    NOT NULL,                 -- Argon2id, PHC string
    created_at    INTEGER NOT NULL
);

-- Only a SHA-256 of the session token is kept: the table alone signs nobody in.
CREATE TABLE user_sessions (
    token_hash TEXT    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    seen_at    INTEGER NOT NULL
);
CREATE INDEX user_sessions_user ON user_sessions (user_id);

-- `account:<email>` or `address:<ip>`; rows older than the throttle window are pruned.
CREATE TABLE login_failures (
    throttle_key TEXT    NOT NULL,
    failed_at    INTEGER NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (throttle_key, failed_at);
