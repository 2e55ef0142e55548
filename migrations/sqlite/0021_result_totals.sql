-- A campaign's totals kept beside the rows they sum, so that its statistics read a few
-- rows instead of a row per engaged recipient (src/store/stats.rs), and the variant of
-- each purchase's latest click kept with it, so that attribution per variant needs no
-- look-up in the ledger (src/store/attribution.rs). The PostgreSQL migration 0026 is
-- the same.

-- Per campaign, variant (-1 outside experiments), kind and verdict: the recipients of
-- `recipient_engagement` and the events they stand for.
CREATE TABLE engagement_totals (
    campaign_id INTEGER NOT NULL,
    variant     INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    verdict     TEXT    NOT NULL,
    recipients  INTEGER NOT NULL,
    events      INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, variant, kind, verdict)
);

-- Per campaign, link and verdict: the recipients of `link_clicks` and their clicks.
CREATE TABLE link_totals (
    campaign_id INTEGER NOT NULL,
    link_id     INTEGER NOT NULL,
    verdict     TEXT    NOT NULL,
    recipients  INTEGER NOT NULL,
    events      INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, link_id, verdict)
);

CREATE TRIGGER recipient_engagement_totals_added AFTER INSERT ON recipient_engagement
BEGIN
    INSERT INTO engagement_totals (campaign_id, variant, kind, verdict, recipients, events)
    VALUES (NEW.campaign_id, COALESCE(NEW.variant, -1), NEW.kind, NEW.verdict, 1, NEW.events)
    ON CONFLICT (campaign_id, variant, kind, verdict) DO UPDATE
    SET recipients = recipients + 1, events = events + excluded.events;
END;

CREATE TRIGGER recipient_engagement_totals_changed AFTER UPDATE ON recipient_engagement
BEGIN
    UPDATE engagement_totals SET recipients = recipients - 1, events = events - OLD.events
    WHERE campaign_id = OLD.campaign_id AND variant = COALESCE(OLD.variant, -1)
      AND kind = OLD.kind AND verdict = OLD.verdict;
    INSERT INTO engagement_totals (campaign_id, variant, kind, verdict, recipients, events)
    VALUES (NEW.campaign_id, COALESCE(NEW.variant, -1), NEW.kind, NEW.verdict, 1, NEW.events)
    ON CONFLICT (campaign_id, variant, kind, verdict) DO UPDATE
    SET recipients = recipients + 1, events = events + excluded.events;
END;

CREATE TRIGGER recipient_engagement_totals_removed AFTER DELETE ON recipient_engagement
BEGIN
    UPDATE engagement_totals SET recipients = recipients - 1, events = events - OLD.events
    WHERE campaign_id = OLD.campaign_id AND variant = COALESCE(OLD.variant, -1)
      AND kind = OLD.kind AND verdict = OLD.verdict;
END;

CREATE TRIGGER link_clicks_totals_added AFTER INSERT ON link_clicks
BEGIN
    INSERT INTO link_totals (campaign_id, link_id, verdict, recipients, events)
    VALUES (NEW.campaign_id, NEW.link_id, NEW.verdict, 1, NEW.events)
    ON CONFLICT (campaign_id, link_id, verdict) DO UPDATE
    SET recipients = recipients + 1, events = events + excluded.events;
END;

CREATE TRIGGER link_clicks_totals_changed AFTER UPDATE ON link_clicks
BEGIN
    UPDATE link_totals SET recipients = recipients - 1, events = events - OLD.events
    WHERE campaign_id = OLD.campaign_id AND link_id = OLD.link_id AND verdict = OLD.verdict;
    INSERT INTO link_totals (campaign_id, link_id, verdict, recipients, events)
    VALUES (NEW.campaign_id, NEW.link_id, NEW.verdict, 1, NEW.events)
    ON CONFLICT (campaign_id, link_id, verdict) DO UPDATE
    SET recipients = recipients + 1, events = events + excluded.events;
END;

CREATE TRIGGER link_clicks_totals_removed AFTER DELETE ON link_clicks
BEGIN
    UPDATE link_totals SET recipients = recipients - 1, events = events - OLD.events
    WHERE campaign_id = OLD.campaign_id AND link_id = OLD.link_id AND verdict = OLD.verdict;
END;

INSERT INTO engagement_totals (campaign_id, variant, kind, verdict, recipients, events)
SELECT campaign_id, COALESCE(variant, -1), kind, verdict, COUNT(*), SUM(events)
FROM recipient_engagement GROUP BY 1, 2, 3, 4;

INSERT INTO link_totals (campaign_id, link_id, verdict, recipients, events)
SELECT campaign_id, link_id, verdict, COUNT(*), SUM(events)
FROM link_clicks GROUP BY 1, 2, 3;

-- The variant of the delivery whose link the purchase's latest human click was on, set
-- whenever that click is.
ALTER TABLE purchase_touches ADD COLUMN click_variant INTEGER;

-- As in 0019, with the columns named now that the table has one more.
DROP TRIGGER events_keep_purchase_touches;
CREATE TRIGGER events_keep_purchase_touches AFTER INSERT ON events
WHEN NEW.kind = 'purchase'
BEGIN
    INSERT INTO purchase_touches (event_id, recipient_id, occurred_at, product_id,
                                  amount_cents, click_at, click_campaign, delivery_at,
                                  delivery_campaign)
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

CREATE TRIGGER purchase_touches_click_variant_added AFTER INSERT ON purchase_touches
WHEN NEW.click_campaign IS NOT NULL
BEGIN
    UPDATE purchase_touches SET click_variant = (
        SELECT d.variant FROM deliveries d
        WHERE d.campaign_id = NEW.click_campaign AND d.recipient_id = NEW.recipient_id)
    WHERE event_id = NEW.event_id;
END;

CREATE TRIGGER purchase_touches_click_variant_changed
AFTER UPDATE OF click_campaign ON purchase_touches
BEGIN
    UPDATE purchase_touches SET click_variant = (
        SELECT d.variant FROM deliveries d
        WHERE d.campaign_id = NEW.click_campaign AND d.recipient_id = NEW.recipient_id)
    WHERE event_id = NEW.event_id;
END;

UPDATE purchase_touches SET click_variant = (
    SELECT d.variant FROM deliveries d
    WHERE d.campaign_id = purchase_touches.click_campaign
      AND d.recipient_id = purchase_touches.recipient_id)
WHERE click_campaign IS NOT NULL;

-- A test's holdout counted, and the uplift's held-out group read, without the rest.
CREATE INDEX experiment_audience_part ON experiment_audience (campaign_id, part, recipient_id);

-- A campaign's deliveries waiting for a local time, quiet hours or the cap, or skipped by
-- the cap, found without reading the rest of its ledger.
CREATE INDEX deliveries_waiting ON deliveries (campaign_id) WHERE status IN ('deferred', 'suppressed');

-- The uplift sums each recipient's purchases in a period: with the amount in the index,
-- the table itself is not read.
DROP INDEX purchase_touches_recipient;
CREATE INDEX purchase_touches_recipient ON purchase_touches (recipient_id, occurred_at, amount_cents);
