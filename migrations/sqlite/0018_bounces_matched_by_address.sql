-- A provider's webhook event without a Message-ID of ours (Postmark's never carry one)
-- is matched to the latest message sent to the address it reports: matched_by 'address'.
--
-- SQLite cannot change a CHECK constraint, so the table is rebuilt as SQLite's
-- documentation prescribes (https://sqlite.org/lang_altertable.html#otheralter):
-- create, copy, drop, rename, recreate the indexes. Nothing references bounces by
-- foreign key, so foreign keys can stay on. The id sequence is carried over, so no id
-- is handed out twice.
CREATE TABLE bounces_rebuilt (
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
    matched_by    TEXT CHECK (matched_by IN ('return_path', 'message_id', 'address')),
    action        TEXT                               -- what it did, in words
);

INSERT INTO bounces_rebuilt (id, digest, raw, envelope_from, envelope_to, received_at,
                             processed_at, class, recipient, status, diagnostic,
                             delivery_id, matched_by, action)
SELECT id, digest, raw, envelope_from, envelope_to, received_at,
       processed_at, class, recipient, status, diagnostic,
       delivery_id, matched_by, action
FROM bounces;

DELETE FROM sqlite_sequence WHERE name = 'bounces_rebuilt';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'bounces_rebuilt', seq FROM sqlite_sequence WHERE name = 'bounces';

DROP TABLE bounces;
ALTER TABLE bounces_rebuilt RENAME TO bounces;

CREATE INDEX bounces_unprocessed ON bounces (id) WHERE processed_at IS NULL;
CREATE INDEX bounces_delivery ON bounces (delivery_id, class);
CREATE INDEX bounces_received ON bounces (received_at, id);
