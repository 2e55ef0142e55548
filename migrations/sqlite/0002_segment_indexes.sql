-- Indexes that segment resolution reads (src/segment/compile.rs; measured in
-- benches/SEGMENTS.md). Behaviour compiles to EXISTS / NOT EXISTS and to counts and
-- sums over one recipient's events, which SQLite answers per recipient from
-- (recipient_id, kind, occurred_at). The indexes also carry the columns the tests read
-- (product for sku/category, amount for spent(), verdict for opened()/clicked()),
-- so every lookup is covering and never reads the table itself.

DROP INDEX events_recipient_kind_time;
CREATE INDEX events_recipient_kind_time
    ON events (recipient_id, kind, occurred_at, product_id, amount_cents);

DROP INDEX tracking_events_recipient;
CREATE INDEX tracking_events_recipient
    ON tracking_events (recipient_id, kind, occurred_at, verdict);
