-- (campaign_id, kind) is a prefix of tracking_events_campaign_recipient: one index
-- fewer to maintain for every stored open and click.
DROP INDEX IF EXISTS tracking_events_campaign;
