-- Results kept as their touches arrive, so that judging a test and a campaign's
-- statistics read what is already summed instead of every event (src/store/attribution.rs,
-- src/store/stats.rs). Both tables are maintained by the triggers below whoever writes
-- the events, and filled here from what is already stored, so they always say what a
-- recomputation from the events would. The PostgreSQL migration 0024 is the same.

-- Attribution's facts: for each purchase, the latest human click and the latest message
-- delivered at or before it, over every campaign.
CREATE TABLE purchase_touches (
    event_id          INTEGER PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE,
    recipient_id      INTEGER NOT NULL,
    occurred_at       INTEGER NOT NULL,
    product_id        INTEGER,
    amount_cents      INTEGER NOT NULL,
    click_at          INTEGER,
    click_campaign    INTEGER,
    delivery_at       INTEGER,
    delivery_campaign INTEGER
);
CREATE INDEX purchase_touches_recipient ON purchase_touches (recipient_id, occurred_at);
CREATE INDEX purchase_touches_click ON purchase_touches (click_campaign);
CREATE INDEX purchase_touches_delivery ON purchase_touches (delivery_campaign);

-- Each recipient's opens, clicks and unsubscribes per campaign and verdict: a row is a
-- unique recipient, `events` how many events it stands for.
CREATE TABLE recipient_engagement (
    campaign_id  INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    verdict      TEXT    NOT NULL,
    recipient_id INTEGER NOT NULL,
    variant      INTEGER,
    events       INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, kind, verdict, recipient_id)
);
CREATE INDEX recipient_engagement_recipient ON recipient_engagement (recipient_id);

CREATE TRIGGER events_keep_purchase_touches AFTER INSERT ON events
WHEN NEW.kind = 'purchase'
BEGIN
    INSERT INTO purchase_touches
    SELECT NEW.id, NEW.recipient_id, NEW.occurred_at, NEW.product_id,
           COALESCE(NEW.amount_cents, 0), c.occurred_at, c.campaign_id, v.at, v.campaign_id
    FROM (SELECT 1)
    LEFT JOIN (
        SELECT t.occurred_at, t.campaign_id FROM tracking_events t
        WHERE t.recipient_id = NEW.recipient_id AND t.kind = 'click' AND t.verdict = 'human'
          AND t.occurred_at <= NEW.occurred_at
        ORDER BY t.occurred_at DESC, t.campaign_id DESC LIMIT 1) c ON 1
    LEFT JOIN (
        SELECT COALESCE(d.handed_at, d.sent_at) AS at, d.campaign_id FROM deliveries d
        WHERE d.recipient_id = NEW.recipient_id AND d.status IN ('sent', 'bounced', 'unknown')
          AND COALESCE(d.handed_at, d.sent_at) <= NEW.occurred_at
        ORDER BY 1 DESC, 2 DESC LIMIT 1) v ON 1;
END;

CREATE TRIGGER tracking_events_keep_results AFTER INSERT ON tracking_events
BEGIN
    INSERT INTO recipient_engagement (campaign_id, kind, verdict, recipient_id, variant, events)
    VALUES (NEW.campaign_id, NEW.kind, NEW.verdict, NEW.recipient_id,
            (SELECT d.variant FROM deliveries d
             WHERE d.campaign_id = NEW.campaign_id AND d.recipient_id = NEW.recipient_id), 1)
    ON CONFLICT (campaign_id, kind, verdict, recipient_id) DO UPDATE SET events = events + 1;

    UPDATE purchase_touches SET click_at = NEW.occurred_at, click_campaign = NEW.campaign_id
    WHERE NEW.kind = 'click' AND NEW.verdict = 'human'
      AND recipient_id = NEW.recipient_id AND occurred_at >= NEW.occurred_at
      AND (click_at IS NULL OR (click_at, click_campaign) < (NEW.occurred_at, NEW.campaign_id));
END;

CREATE TRIGGER tracking_events_verdict_changed AFTER UPDATE OF verdict ON tracking_events
WHEN OLD.verdict IS NOT NEW.verdict
BEGIN
    UPDATE recipient_engagement SET events = events - 1
    WHERE campaign_id = OLD.campaign_id AND kind = OLD.kind AND verdict = OLD.verdict
      AND recipient_id = OLD.recipient_id;
    DELETE FROM recipient_engagement
    WHERE campaign_id = OLD.campaign_id AND kind = OLD.kind AND verdict = OLD.verdict
      AND recipient_id = OLD.recipient_id AND events <= 0;
    INSERT INTO recipient_engagement (campaign_id, kind, verdict, recipient_id, variant, events)
    VALUES (NEW.campaign_id, NEW.kind, NEW.verdict, NEW.recipient_id,
            (SELECT d.variant FROM deliveries d
             WHERE d.campaign_id = NEW.campaign_id AND d.recipient_id = NEW.recipient_id), 1)
    ON CONFLICT (campaign_id, kind, verdict, recipient_id) DO UPDATE SET events = events + 1;

    UPDATE purchase_touches SET (click_at, click_campaign) = (
        SELECT t.occurred_at, t.campaign_id FROM tracking_events t
        WHERE t.recipient_id = purchase_touches.recipient_id AND t.kind = 'click'
          AND t.verdict = 'human' AND t.occurred_at <= purchase_touches.occurred_at
        ORDER BY t.occurred_at DESC, t.campaign_id DESC LIMIT 1)
    WHERE NEW.kind = 'click' AND recipient_id = NEW.recipient_id
      AND occurred_at >= MIN(OLD.occurred_at, NEW.occurred_at);
END;

-- Deliveries need no trigger (see the PostgreSQL migration 0024).

INSERT INTO purchase_touches
SELECT e.id, e.recipient_id, e.occurred_at, e.product_id, COALESCE(e.amount_cents, 0),
       (SELECT t.occurred_at FROM tracking_events t
        WHERE t.recipient_id = e.recipient_id AND t.kind = 'click' AND t.verdict = 'human'
          AND t.occurred_at <= e.occurred_at
        ORDER BY t.occurred_at DESC, t.campaign_id DESC LIMIT 1),
       (SELECT t.campaign_id FROM tracking_events t
        WHERE t.recipient_id = e.recipient_id AND t.kind = 'click' AND t.verdict = 'human'
          AND t.occurred_at <= e.occurred_at
        ORDER BY t.occurred_at DESC, t.campaign_id DESC LIMIT 1),
       (SELECT COALESCE(d.handed_at, d.sent_at) FROM deliveries d
        WHERE d.recipient_id = e.recipient_id AND d.status IN ('sent', 'bounced', 'unknown')
          AND COALESCE(d.handed_at, d.sent_at) <= e.occurred_at
        ORDER BY COALESCE(d.handed_at, d.sent_at) DESC, d.campaign_id DESC LIMIT 1),
       (SELECT d.campaign_id FROM deliveries d
        WHERE d.recipient_id = e.recipient_id AND d.status IN ('sent', 'bounced', 'unknown')
          AND COALESCE(d.handed_at, d.sent_at) <= e.occurred_at
        ORDER BY COALESCE(d.handed_at, d.sent_at) DESC, d.campaign_id DESC LIMIT 1)
FROM events e WHERE e.kind = 'purchase';

INSERT INTO recipient_engagement (campaign_id, kind, verdict, recipient_id, variant, events)
SELECT t.campaign_id, t.kind, t.verdict, t.recipient_id,
       (SELECT d.variant FROM deliveries d
        WHERE d.campaign_id = t.campaign_id AND d.recipient_id = t.recipient_id),
       COUNT(*)
FROM tracking_events t
GROUP BY t.campaign_id, t.kind, t.verdict, t.recipient_id;
