-- Link-signing keys mailcast generates on its first start when MAILCAST_LINK_KEYS is
-- unset, so that every process sharing this database signs and verifies links with
-- the same ring. Secrets are hex. Id 0 is the public development key's: never stored.
CREATE TABLE link_keys (
    id INTEGER PRIMARY KEY CHECK (id BETWEEN 1 AND 255),
    secret TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
