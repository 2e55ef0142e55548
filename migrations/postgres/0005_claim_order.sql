-- The claim reads pending and due deferred deliveries in (next_attempt_at, id) order
-- straight from this index instead of sorting every pending row of the campaign.
-- (SQLite needs nothing: its index already ends with the rowid, which is `id`.)
DROP INDEX IF EXISTS deliveries_claim;
CREATE INDEX deliveries_claim ON deliveries (campaign_id, status, next_attempt_at, id);
