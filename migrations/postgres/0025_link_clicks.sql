-- Each recipient's clicks per campaign, link and verdict, kept like recipient_engagement
-- (migration 0024) so that a campaign's top links read a row per clicking recipient
-- instead of every click.
CREATE TABLE link_clicks (
    campaign_id  BIGINT NOT NULL,
    link_id      BIGINT NOT NULL,
    verdict      TEXT   NOT NULL,
    recipient_id BIGINT NOT NULL,
    events       BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, link_id, verdict, recipient_id)
);
CREATE INDEX link_clicks_recipient ON link_clicks (recipient_id);

CREATE FUNCTION mailcast_link_clicks_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO link_clicks (campaign_id, link_id, verdict, recipient_id, events)
    SELECT n.campaign_id, n.link_id, n.verdict, n.recipient_id, COUNT(*)
    FROM added n
    WHERE n.kind = 'click' AND n.link_id IS NOT NULL
    GROUP BY n.campaign_id, n.link_id, n.verdict, n.recipient_id
    ORDER BY n.campaign_id, n.link_id, n.verdict, n.recipient_id
    ON CONFLICT (campaign_id, link_id, verdict, recipient_id)
    DO UPDATE SET events = link_clicks.events + EXCLUDED.events;
    RETURN NULL;
END $$;
CREATE TRIGGER tracking_events_keep_link_clicks AFTER INSERT ON tracking_events
REFERENCING NEW TABLE AS added FOR EACH STATEMENT
EXECUTE FUNCTION mailcast_link_clicks_added();

CREATE FUNCTION mailcast_link_click_verdict_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE link_clicks SET events = events - 1
    WHERE campaign_id = OLD.campaign_id AND link_id = OLD.link_id AND verdict = OLD.verdict
      AND recipient_id = OLD.recipient_id;
    DELETE FROM link_clicks
    WHERE campaign_id = OLD.campaign_id AND link_id = OLD.link_id AND verdict = OLD.verdict
      AND recipient_id = OLD.recipient_id AND events <= 0;
    INSERT INTO link_clicks (campaign_id, link_id, verdict, recipient_id, events)
    VALUES (NEW.campaign_id, NEW.link_id, NEW.verdict, NEW.recipient_id, 1)
    ON CONFLICT (campaign_id, link_id, verdict, recipient_id)
    DO UPDATE SET events = link_clicks.events + 1;
    RETURN NULL;
END $$;
CREATE TRIGGER tracking_events_link_click_verdict_changed AFTER UPDATE OF verdict ON tracking_events
FOR EACH ROW WHEN (OLD.verdict IS DISTINCT FROM NEW.verdict AND NEW.kind = 'click'
                   AND NEW.link_id IS NOT NULL)
EXECUTE FUNCTION mailcast_link_click_verdict_changed();

INSERT INTO link_clicks (campaign_id, link_id, verdict, recipient_id, events)
SELECT campaign_id, link_id, verdict, recipient_id, COUNT(*)
FROM tracking_events
WHERE kind = 'click' AND link_id IS NOT NULL
GROUP BY campaign_id, link_id, verdict, recipient_id;
