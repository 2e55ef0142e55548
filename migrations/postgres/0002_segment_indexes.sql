-- Indexes that segment resolution reads (src/segment/compile.rs; measured in
-- benches/SEGMENTS.md). Behaviour compiles to EXISTS / NOT EXISTS and to counts and
-- sums over one recipient's events; PostgreSQL answers them either per recipient
-- (recipient_id, kind, occurred_at) or, as hash semi- and anti-joins, from every event
-- of one kind in a time window (kind, occurred_at). Both indexes carry the columns the
-- tests read (recipient, product for sku/category, amount for spent()), so either way
-- the plan is an index-only scan and never visits the 10-million-row heap.

DROP INDEX events_recipient_kind_time;
CREATE INDEX events_recipient_kind_time ON events (recipient_id, kind, occurred_at)
    INCLUDE (product_id, amount_cents);

DROP INDEX events_kind_time;
CREATE INDEX events_kind_time ON events (kind, occurred_at)
    INCLUDE (recipient_id, product_id, amount_cents);

-- opened(...) / clicked(...) count human opens and clicks: the same two shapes.
DROP INDEX tracking_events_recipient;
CREATE INDEX tracking_events_recipient ON tracking_events (recipient_id, kind, occurred_at)
    INCLUDE (verdict);
CREATE INDEX tracking_events_kind_time ON tracking_events (kind, occurred_at)
    INCLUDE (recipient_id, verdict);

-- Eligibility (consent to the campaign's topic) is checked for every match of every
-- segment: answered from the index alone.
CREATE INDEX consents_recipient_topic ON consents (recipient_id, topic_id) INCLUDE (status);
