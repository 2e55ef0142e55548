-- `campaign status` lists a campaign's failed and unknown deliveries. Without an index
-- it read every delivery of the campaign (1.5 s for 1,000,000); this one holds only the
-- few that need attention, so it costs nothing for the messages that were sent.
CREATE INDEX deliveries_attention ON deliveries (campaign_id) WHERE status IN ('failed', 'unknown');
