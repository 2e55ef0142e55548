-- Every status change of a delivery writes a new row version, and each index gets an
-- entry for it. The claim reads only pending and deferred deliveries and lease expiry
-- only sending ones, so partial indexes leave the other versions out: two index
-- entries fewer for every message sent.
DROP INDEX IF EXISTS deliveries_claim;
CREATE INDEX deliveries_claim ON deliveries (campaign_id, status, next_attempt_at, id)
    WHERE status IN ('pending', 'deferred');
DROP INDEX IF EXISTS deliveries_lease;
CREATE INDEX deliveries_lease ON deliveries (lease_until) WHERE status = 'sending';

-- (campaign_id, kind) is a prefix of tracking_events_campaign_recipient: one index
-- fewer to maintain for every stored open and click.
DROP INDEX IF EXISTS tracking_events_campaign;
