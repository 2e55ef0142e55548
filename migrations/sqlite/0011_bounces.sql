-- no-transaction
-- Bounces: every message that came back (a DSN, a complaint, an automatic reply), kept
-- for audit, and `bounced`, the ledger state of a delivery a hard bounce reported.
--
-- SQLite cannot change a CHECK constraint, so the ledger is rebuilt as SQLite's
-- documentation prescribes (https://sqlite.org/lang_altertable.html#otheralter):
-- foreign keys off outside the transaction, create, copy, drop, rename, recreate the
-- indexes. Nothing references deliveries by foreign key.
PRAGMA foreign_keys = OFF;
BEGIN;

CREATE TABLE deliveries_rebuilt (
    id              INTEGER PRIMARY KEY,
    campaign_id     INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    recipient_id    INTEGER NOT NULL REFERENCES recipients (id) ON DELETE CASCADE,
    status          TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sending', 'sent', 'deferred', 'failed',
                                      'suppressed', 'unknown', 'bounced')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    lease_until     INTEGER,
    worker          TEXT,
    next_attempt_at INTEGER,
    message_id      TEXT,
    last_error      TEXT,
    sent_at         INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    handed_at       INTEGER,
    UNIQUE (campaign_id, recipient_id)
);

INSERT INTO deliveries_rebuilt (id, campaign_id, recipient_id, status, attempts, lease_until,
                                worker, next_attempt_at, message_id, last_error, sent_at,
                                created_at, updated_at, handed_at)
SELECT id, campaign_id, recipient_id, status, attempts, lease_until,
       worker, next_attempt_at, message_id, last_error, sent_at,
       created_at, updated_at, handed_at
FROM deliveries;

DROP TABLE deliveries;
ALTER TABLE deliveries_rebuilt RENAME TO deliveries;

CREATE INDEX deliveries_claim ON deliveries (campaign_id, status, next_attempt_at);
CREATE INDEX deliveries_lease ON deliveries (status, lease_until);

-- One row per message received. The raw message is committed before the sender is told
-- it was accepted, and classified and applied afterwards: processed_at is NULL until
-- then, and a process that starts finishes what one that stopped left unprocessed.
-- digest (SHA-256 of the raw bytes, hex) is unique: the same bounce twice is one row.
-- delivery_id has no foreign key: the audit row outlives the ledger.
CREATE TABLE bounces (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    digest        TEXT    NOT NULL UNIQUE,
    raw           BLOB    NOT NULL,
    envelope_from TEXT,
    envelope_to   TEXT,                              -- RCPT TO addresses, comma separated
    received_at   INTEGER NOT NULL,
    processed_at  INTEGER,
    class         TEXT CHECK (class IN ('hard', 'soft', 'complaint', 'autoreply',
                                        'delivered', 'none')),
    recipient     TEXT,                              -- the address the bounce reports
    status        TEXT,                              -- RFC 3463 enhanced code
    diagnostic    TEXT,
    delivery_id   INTEGER,
    matched_by    TEXT CHECK (matched_by IN ('return_path', 'message_id')),
    action        TEXT                               -- what it did, in words
);
CREATE INDEX bounces_unprocessed ON bounces (id) WHERE processed_at IS NULL;
CREATE INDEX bounces_delivery ON bounces (delivery_id, class);
CREATE INDEX bounces_received ON bounces (received_at, id);

COMMIT;
PRAGMA foreign_keys = ON;
