-- A campaign's totals kept beside the rows they sum, so that its statistics read a few
-- rows instead of a row per engaged recipient (src/store/stats.rs), and the variant of
-- each purchase's latest click kept with it, so that attribution per variant needs no
-- look-up in the ledger (src/store/attribution.rs). The SQLite migration 0021 is the same.
LOCK TABLE recipient_engagement, link_clicks, purchase_touches IN SHARE ROW EXCLUSIVE MODE;

-- Per campaign, variant (-1 outside experiments), kind and verdict: the recipients of
-- `recipient_engagement` and the events they stand for.
CREATE TABLE engagement_totals (
    campaign_id BIGINT NOT NULL,
    variant     BIGINT NOT NULL,
    kind        TEXT   NOT NULL,
    verdict     TEXT   NOT NULL,
    recipients  BIGINT NOT NULL,
    events      BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, variant, kind, verdict)
);

-- Per campaign, link and verdict: the recipients of `link_clicks` and their clicks.
CREATE TABLE link_totals (
    campaign_id BIGINT NOT NULL,
    link_id     BIGINT NOT NULL,
    verdict     TEXT   NOT NULL,
    recipients  BIGINT NOT NULL,
    events      BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, link_id, verdict)
);

-- Keeps a totals table: the trigger's arguments are the table, its key columns, and
-- those columns as read from a changed row `c`. The rows a statement changed count +1
-- when added and -1 when removed (an update removes its old row and adds its new one).
-- Transition tables are visible to dynamic SQL, so one function serves every table's
-- three triggers.
CREATE FUNCTION mailcast_totals_kept() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed TEXT := CASE TG_OP
        WHEN 'INSERT' THEN 'SELECT a.*, 1 AS sign FROM added a'
        WHEN 'DELETE' THEN 'SELECT r.*, -1 AS sign FROM removed r'
        ELSE 'SELECT r.*, -1 AS sign FROM removed r UNION ALL SELECT a.*, 1 FROM added a'
    END;
BEGIN
    EXECUTE format(
        'INSERT INTO %I AS t (%s, recipients, events)
         SELECT %s, SUM(c.sign), SUM(c.sign * c.events) FROM (%s) c
         GROUP BY %3$s ORDER BY %3$s
         ON CONFLICT (%2$s) DO UPDATE
         SET recipients = t.recipients + EXCLUDED.recipients, events = t.events + EXCLUDED.events',
        TG_ARGV[0], TG_ARGV[1], TG_ARGV[2], changed);
    RETURN NULL;
END $$;

CREATE TRIGGER recipient_engagement_totals_added AFTER INSERT ON recipient_engagement
REFERENCING NEW TABLE AS added FOR EACH STATEMENT
EXECUTE FUNCTION mailcast_totals_kept('engagement_totals', 'campaign_id, variant, kind, verdict',
                                      'c.campaign_id, COALESCE(c.variant, -1), c.kind, c.verdict');
CREATE TRIGGER recipient_engagement_totals_changed AFTER UPDATE ON recipient_engagement
REFERENCING OLD TABLE AS removed NEW TABLE AS added FOR EACH STATEMENT
EXECUTE FUNCTION mailcast_totals_kept('engagement_totals', 'campaign_id, variant, kind, verdict',
                                      'c.campaign_id, COALESCE(c.variant, -1), c.kind, c.verdict');
CREATE TRIGGER recipient_engagement_totals_removed AFTER DELETE ON recipient_engagement
REFERENCING OLD TABLE AS removed FOR EACH STATEMENT
EXECUTE FUNCTION mailcast_totals_kept('engagement_totals', 'campaign_id, variant, kind, verdict',
                                      'c.campaign_id, COALESCE(c.variant, -1), c.kind, c.verdict');

CREATE TRIGGER link_clicks_totals_added AFTER INSERT ON link_clicks
REFERENCING NEW TABLE AS added FOR EACH STATEMENT
EXECUTE FUNCTION mailcast_totals_kept('link_totals', 'campaign_id, link_id, verdict',
                                      'c.campaign_id, c.link_id, c.verdict');
CREATE TRIGGER link_clicks_totals_changed AFTER UPDATE ON link_clicks
REFERENCING OLD TABLE AS removed NEW TABLE AS added FOR EACH STATEMENT
EXECUTE FUNCTION mailcast_totals_kept('link_totals', 'campaign_id, link_id, verdict',
                                      'c.campaign_id, c.link_id, c.verdict');
CREATE TRIGGER link_clicks_totals_removed AFTER DELETE ON link_clicks
REFERENCING OLD TABLE AS removed FOR EACH STATEMENT
EXECUTE FUNCTION mailcast_totals_kept('link_totals', 'campaign_id, link_id, verdict',
                                      'c.campaign_id, c.link_id, c.verdict');

INSERT INTO engagement_totals (campaign_id, variant, kind, verdict, recipients, events)
SELECT campaign_id, COALESCE(variant, -1), kind, verdict, COUNT(*), SUM(events)
FROM recipient_engagement GROUP BY 1, 2, 3, 4;

INSERT INTO link_totals (campaign_id, link_id, verdict, recipients, events)
SELECT campaign_id, link_id, verdict, COUNT(*), SUM(events)
FROM link_clicks GROUP BY 1, 2, 3;

-- The variant of the delivery whose link the purchase's latest human click was on.
ALTER TABLE purchase_touches ADD COLUMN click_variant BIGINT;

CREATE OR REPLACE FUNCTION mailcast_purchase_facts(purchases events[])
RETURNS SETOF purchase_touches LANGUAGE sql STABLE AS $$
    SELECT a.id, a.recipient_id, a.occurred_at, a.product_id, COALESCE(a.amount_cents, 0),
           c.occurred_at, c.campaign_id, v.at, v.campaign_id, NULL::BIGINT
    FROM UNNEST(purchases) a
    LEFT JOIN LATERAL (
        SELECT t.occurred_at, t.campaign_id FROM tracking_events t
        WHERE t.recipient_id = a.recipient_id AND t.kind = 'click' AND t.verdict = 'human'
          AND t.occurred_at <= a.occurred_at
        ORDER BY t.occurred_at DESC, t.campaign_id DESC LIMIT 1) c ON TRUE
    LEFT JOIN LATERAL (
        SELECT COALESCE(d.handed_at, d.sent_at) AS at, d.campaign_id FROM deliveries d
        WHERE d.recipient_id = a.recipient_id AND d.status IN ('sent', 'bounced', 'unknown')
          AND COALESCE(d.handed_at, d.sent_at) <= a.occurred_at
        ORDER BY 1 DESC, 2 DESC LIMIT 1) v ON TRUE
    WHERE a.kind = 'purchase'
$$;

CREATE FUNCTION mailcast_click_variant() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.click_variant := (SELECT d.variant FROM deliveries d
                          WHERE d.campaign_id = NEW.click_campaign
                            AND d.recipient_id = NEW.recipient_id);
    RETURN NEW;
END $$;
CREATE TRIGGER purchase_touches_click_variant
BEFORE INSERT OR UPDATE OF click_campaign ON purchase_touches
FOR EACH ROW EXECUTE FUNCTION mailcast_click_variant();

UPDATE purchase_touches p SET click_variant = d.variant
FROM deliveries d
WHERE d.campaign_id = p.click_campaign AND d.recipient_id = p.recipient_id
  AND d.variant IS NOT NULL;

-- A test's holdout counted, and the uplift's held-out group read, without the rest.
CREATE INDEX experiment_audience_part ON experiment_audience (campaign_id, part, recipient_id);

-- A campaign's deliveries waiting for a local time, quiet hours or the cap, or skipped by
-- the cap, found without reading the rest of its ledger.
CREATE INDEX deliveries_waiting ON deliveries (campaign_id) WHERE status IN ('deferred', 'suppressed');

-- The uplift sums each recipient's purchases in a period: with the amount in the index,
-- that is a walk of this index merged with the campaign's ledger, in recipient order.
DROP INDEX purchase_touches_recipient;
CREATE INDEX purchase_touches_recipient ON purchase_touches (recipient_id, occurred_at)
INCLUDE (amount_cents);
