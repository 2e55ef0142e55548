-- The HTTP side: idempotent triggered sends from the CRM API.

-- The first answer given to a request carrying an Idempotency-Key, per API key, kept
-- 24 hours. `status` and `response` are NULL while that first request is being handled.
CREATE TABLE idempotency_keys (
    api_key_id   INTEGER NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    idem_key     TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    status       INTEGER,
    response     TEXT,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (api_key_id, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Statistics read a campaign's events by kind and recipient.
CREATE INDEX tracking_events_campaign_recipient ON tracking_events (campaign_id, kind, recipient_id);
