-- no-transaction
-- Recipient ids are never handed out twice. Signed links (/u/, /v/, /o/, /c/) name a
-- recipient by id; without AUTOINCREMENT SQLite gives a new row max(id) + 1, so erasing
-- the newest recipient and importing someone else gave the newcomer the erased
-- person's id, and the erased person's old links acted on the newcomer.
--
-- SQLite cannot add AUTOINCREMENT to a table, so the table is rebuilt the way SQLite's
-- documentation prescribes (https://sqlite.org/lang_altertable.html#otheralter):
-- foreign keys off outside the transaction (or DROP TABLE would cascade-delete every
-- consent, event and delivery), create, copy, drop, rename, recreate the indexes.
-- consents, events and deliveries reference the table by name and keep doing so.
PRAGMA foreign_keys = OFF;
BEGIN;

CREATE TABLE recipients_rebuilt (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    email       TEXT    NOT NULL,
    email_key   TEXT    NOT NULL UNIQUE,          -- EmailAddress::key: NFC local part lower-cased, IDNA A-label domain
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

INSERT INTO recipients_rebuilt (id, email, email_key, email_hash, first_name, last_name, country,
                                city, attributes, locale, timezone, status, created_at, updated_at)
SELECT id, email, email_key, email_hash, first_name, last_name, country,
       city, attributes, locale, timezone, status, created_at, updated_at
FROM recipients;

DROP TABLE recipients;
ALTER TABLE recipients_rebuilt RENAME TO recipients;

CREATE INDEX recipients_email_hash ON recipients (email_hash);
CREATE INDEX recipients_country ON recipients (country);
CREATE INDEX recipients_created_at ON recipients (created_at);

-- Ids erased before this migration may lie above today's largest id, and which ones
-- is no longer known. Every id above it was erased at least once, and every erasure
-- left one hash-only suppression (email IS NULL): starting that many ids further on
-- passes them all (short only if one address was erased, re-imported and erased again).
DELETE FROM sqlite_sequence WHERE name = 'recipients';
INSERT INTO sqlite_sequence (name, seq)
VALUES ('recipients',
        (SELECT COALESCE(MAX(id), 0) FROM recipients)
        + (SELECT COUNT(*) FROM suppressions WHERE email IS NULL));

COMMIT;
PRAGMA foreign_keys = ON;
