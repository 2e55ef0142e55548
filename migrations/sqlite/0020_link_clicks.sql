-- Each recipient's clicks per campaign, link and verdict, kept like recipient_engagement
-- (migration 0019) so that a campaign's top links read a row per clicking recipient
-- instead of every click. The PostgreSQL migration 0025 is the same.
CREATE TABLE link_clicks (
    campaign_id  INTEGER NOT NULL,
    link_id      INTEGER NOT NULL,
    verdict      TEXT    NOT NULL,
    recipient_id INTEGER NOT NULL,
    events       INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, link_id, verdict, recipient_id)
);
CREATE INDEX link_clicks_recipient ON link_clicks (recipient_id);

CREATE TRIGGER tracking_events_keep_link_clicks AFTER INSERT ON tracking_events
WHEN NEW.kind = 'click' AND NEW.link_id IS NOT NULL
BEGIN
    INSERT INTO link_clicks (campaign_id, link_id, verdict, recipient_id, events)
    VALUES (NEW.campaign_id, NEW.link_id, NEW.verdict, NEW.recipient_id, 1)
    ON CONFLICT (campaign_id, link_id, verdict, recipient_id) DO UPDATE SET events = events + 1;
END;

CREATE TRIGGER tracking_events_link_click_verdict_changed AFTER UPDATE OF verdict ON tracking_events
WHEN OLD.verdict IS NOT NEW.verdict AND NEW.kind = 'click' AND NEW.link_id IS NOT NULL
BEGIN
    UPDATE link_clicks SET events = events - 1
    WHERE campaign_id = OLD.campaign_id AND link_id = OLD.link_id AND verdict = OLD.verdict
      AND recipient_id = OLD.recipient_id;
    DELETE FROM link_clicks
    WHERE campaign_id = OLD.campaign_id AND link_id = OLD.link_id AND verdict = OLD.verdict
      AND recipient_id = OLD.recipient_id AND events <= 0;
    INSERT INTO link_clicks (campaign_id, link_id, verdict, recipient_id, events)
    VALUES (NEW.campaign_id, NEW.link_id, NEW.verdict, NEW.recipient_id, 1)
    ON CONFLICT (campaign_id, link_id, verdict, recipient_id) DO UPDATE SET events = events + 1;
END;

INSERT INTO link_clicks (campaign_id, link_id, verdict, recipient_id, events)
SELECT campaign_id, link_id, verdict, recipient_id, COUNT(*)
FROM tracking_events
WHERE kind = 'click' AND link_id IS NOT NULL
GROUP BY campaign_id, link_id, verdict, recipient_id;
