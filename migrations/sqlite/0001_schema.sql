-- Times are unix seconds (INTEGER) on both engines, so that the segment compiler
-- and the ledger compare them the same way everywhere.

CREATE TABLE recipients (
    id          INTEGER PRIMARY KEY,
    email       TEXT    NOT NULL,
    email_key   TEXT    NOT NULL UNIQUE,          -- lower-cased email: unique regardless of case
    email_hash  TEXT    NOT NULL,                 -- SHA-256 of email_key: joins the suppression list
    first_name  TEXT,
    last_name   TEXT,
    country     TEXT,
    city        TEXT,
    attributes  TEXT    NOT NULL DEFAULT '{}',    -- JSON object
    locale      TEXT,
    timezone    TEXT,
    status      TEXT    NOT NULL DEFAULT 'active' -- active | unsubscribed | bounced | erased
                CHECK (status IN ('active', 'unsubscribed', 'bounced', 'erased')),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX recipients_email_hash ON recipients (email_hash);
CREATE INDEX recipients_country ON recipients (country);
CREATE INDEX recipients_created_at ON recipients (created_at);

CREATE TABLE topics (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    description TEXT    NOT NULL DEFAULT ''
);

CREATE TABLE consents (
    recipient_id INTEGER NOT NULL REFERENCES recipients (id) ON DELETE CASCADE,
    topic_id     INTEGER NOT NULL REFERENCES topics (id) ON DELETE CASCADE,
    status       TEXT    NOT NULL CHECK (status IN ('subscribed', 'unsubscribed')),
    source       TEXT    NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (recipient_id, topic_id)
);
CREATE INDEX consents_topic ON consents (topic_id, status);

-- Keyed by the SHA-256 of the lower-cased address, so an erased recipient stays
-- suppressed after their address itself is gone (email is then NULL).
CREATE TABLE suppressions (
    email_hash  TEXT    PRIMARY KEY,
    email       TEXT,
    reason      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE products (
    id          INTEGER PRIMARY KEY,
    sku         TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    url         TEXT    NOT NULL,
    image_url   TEXT,
    price_cents INTEGER NOT NULL,
    currency    TEXT    NOT NULL,
    category    TEXT    NOT NULL,
    in_stock    INTEGER NOT NULL DEFAULT 1,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX products_category ON products (category);

CREATE TABLE events (
    id           INTEGER PRIMARY KEY,
    external_id  TEXT    UNIQUE,                  -- the sender's id: re-imports do not duplicate
    recipient_id INTEGER NOT NULL REFERENCES recipients (id) ON DELETE CASCADE,
    kind         TEXT    NOT NULL,                -- view | cart_add | purchase | ...
    product_id   INTEGER REFERENCES products (id),
    amount_cents INTEGER,
    occurred_at  INTEGER NOT NULL,
    properties   TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX events_recipient_kind_time ON events (recipient_id, kind, occurred_at);
CREATE INDEX events_kind_time ON events (kind, occurred_at);
CREATE INDEX events_product ON events (product_id);

CREATE TABLE segments (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    expression  TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE templates (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    subject     TEXT    NOT NULL,
    preheader   TEXT,
    html        TEXT    NOT NULL,
    text        TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE campaigns (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL UNIQUE,
    kind         TEXT    NOT NULL DEFAULT 'marketing' CHECK (kind IN ('marketing', 'transactional')),
    status       TEXT    NOT NULL DEFAULT 'draft'
                 CHECK (status IN ('draft', 'scheduled', 'running', 'paused', 'done', 'cancelled', 'expired')),
    template_id  INTEGER NOT NULL REFERENCES templates (id),
    segment_id   INTEGER REFERENCES segments (id),  -- NULL: every consented recipient
    topic_id     INTEGER REFERENCES topics (id),
    from_name    TEXT    NOT NULL,
    from_email   TEXT    NOT NULL,
    reply_to     TEXT,
    send_at      INTEGER,
    started_at   INTEGER,
    finished_at  INTEGER,
    settings     TEXT    NOT NULL DEFAULT '{}',   -- JSON: utm parameters, smtp server, limits
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- The delivery ledger: one row per (campaign, recipient), the single source of truth.
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    campaign_id     INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    recipient_id    INTEGER NOT NULL REFERENCES recipients (id) ON DELETE CASCADE,
    status          TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sending', 'sent', 'deferred', 'failed', 'suppressed', 'unknown')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    lease_until     INTEGER,
    worker          TEXT,
    next_attempt_at INTEGER,
    message_id      TEXT,
    last_error      TEXT,
    sent_at         INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (campaign_id, recipient_id)
);
CREATE INDEX deliveries_claim ON deliveries (campaign_id, status, next_attempt_at);
CREATE INDEX deliveries_lease ON deliveries (status, lease_until);

-- Tracked links. link_id is derived from the URL (see links::link_id), so workers on
-- many machines agree on it without asking the database first.
CREATE TABLE links (
    campaign_id INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    link_id     INTEGER NOT NULL,
    url         TEXT    NOT NULL,
    PRIMARY KEY (campaign_id, link_id)
);

CREATE TABLE tracking_events (
    id           INTEGER PRIMARY KEY,
    kind         TEXT    NOT NULL CHECK (kind IN ('open', 'click', 'unsubscribe')),
    campaign_id  INTEGER NOT NULL,
    recipient_id INTEGER NOT NULL,
    link_id      INTEGER,
    occurred_at  INTEGER NOT NULL,
    ip           TEXT,
    user_agent   TEXT,
    verdict      TEXT    NOT NULL DEFAULT 'human' CHECK (verdict IN ('human', 'machine')),
    reason       TEXT
);
CREATE INDEX tracking_events_campaign ON tracking_events (campaign_id, kind);
CREATE INDEX tracking_events_recipient ON tracking_events (recipient_id, kind, occurred_at);

CREATE TABLE api_keys (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    key_hash    TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);
