-- Results kept as their touches arrive, so that judging a test and a campaign's
-- statistics read what is already summed instead of every event (src/store/attribution.rs,
-- src/store/stats.rs). Both tables are maintained by the triggers below whoever writes
-- the events (imports, the API, the HTTP side, the worker), and filled here from what is
-- already stored, so they always say what a recomputation from the events would.

-- Attribution's facts: for each purchase, the latest human click and the latest message
-- delivered at or before it (as recorded when the purchase was stored), over every
-- campaign. Which campaign earned the purchase
-- follows from these and the campaign's windows, so a change of window needs no rebuild.
CREATE TABLE purchase_touches (
    event_id          BIGINT PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE,
    recipient_id      BIGINT NOT NULL,
    occurred_at       BIGINT NOT NULL,
    product_id        BIGINT,
    amount_cents      BIGINT NOT NULL,
    click_at          BIGINT,
    click_campaign    BIGINT,
    delivery_at       BIGINT,
    delivery_campaign BIGINT
);
CREATE INDEX purchase_touches_recipient ON purchase_touches (recipient_id, occurred_at);
CREATE INDEX purchase_touches_click ON purchase_touches (click_campaign);
CREATE INDEX purchase_touches_delivery ON purchase_touches (delivery_campaign);

-- Each recipient's opens, clicks and unsubscribes per campaign and verdict: a row is a
-- unique recipient, `events` how many events it stands for. `variant` is their
-- delivery's (NULL outside experiments).
CREATE TABLE recipient_engagement (
    campaign_id  BIGINT NOT NULL,
    kind         TEXT   NOT NULL,
    verdict      TEXT   NOT NULL,
    recipient_id BIGINT NOT NULL,
    variant      BIGINT,
    events       BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, kind, verdict, recipient_id)
);
CREATE INDEX recipient_engagement_recipient ON recipient_engagement (recipient_id);

-- The latest human click and delivery at or before each purchase of `purchases`.
CREATE FUNCTION mailcast_purchase_facts(purchases events[])
RETURNS SETOF purchase_touches LANGUAGE sql STABLE AS $$
    SELECT a.id, a.recipient_id, a.occurred_at, a.product_id, COALESCE(a.amount_cents, 0),
           c.occurred_at, c.campaign_id, v.at, v.campaign_id
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

CREATE FUNCTION mailcast_purchases_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO purchase_touches
    SELECT * FROM mailcast_purchase_facts(ARRAY(SELECT a::events FROM added a WHERE a.kind = 'purchase'));
    RETURN NULL;
END $$;
CREATE TRIGGER events_keep_purchase_touches AFTER INSERT ON events
REFERENCING NEW TABLE AS added FOR EACH STATEMENT
EXECUTE FUNCTION mailcast_purchases_added();

-- New tracking events: their recipients' engagement rows, and any purchase at or after
-- a new human click whose latest click it now is (a click can arrive after the purchase
-- it led to).
CREATE FUNCTION mailcast_tracking_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO recipient_engagement (campaign_id, kind, verdict, recipient_id, variant, events)
    SELECT n.campaign_id, n.kind, n.verdict, n.recipient_id, MAX(d.variant), COUNT(*)
    FROM added n
    LEFT JOIN deliveries d ON d.campaign_id = n.campaign_id AND d.recipient_id = n.recipient_id
    GROUP BY n.campaign_id, n.kind, n.verdict, n.recipient_id
    ORDER BY n.campaign_id, n.kind, n.verdict, n.recipient_id
    ON CONFLICT (campaign_id, kind, verdict, recipient_id)
    DO UPDATE SET events = recipient_engagement.events + EXCLUDED.events;

    UPDATE purchase_touches p SET click_at = b.at, click_campaign = b.campaign_id
    FROM (SELECT DISTINCT ON (p2.event_id) p2.event_id, n.occurred_at AS at, n.campaign_id
          FROM added n
          JOIN purchase_touches p2
            ON p2.recipient_id = n.recipient_id AND p2.occurred_at >= n.occurred_at
          WHERE n.kind = 'click' AND n.verdict = 'human'
          ORDER BY p2.event_id, n.occurred_at DESC, n.campaign_id DESC) b
    WHERE p.event_id = b.event_id
      AND (p.click_at IS NULL OR (p.click_at, p.click_campaign) < (b.at, b.campaign_id));
    RETURN NULL;
END $$;
CREATE TRIGGER tracking_events_keep_results AFTER INSERT ON tracking_events
REFERENCING NEW TABLE AS added FOR EACH STATEMENT
EXECUTE FUNCTION mailcast_tracking_added();

-- A click found to be a scanner's after it was stored: its engagement row moves to the
-- machine verdict, and the purchases after it look for their latest human click again.
CREATE FUNCTION mailcast_verdict_changed() RETURNS trigger LANGUAGE plpgsql AS $$
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
    ON CONFLICT (campaign_id, kind, verdict, recipient_id)
    DO UPDATE SET events = recipient_engagement.events + 1;

    IF NEW.kind = 'click' THEN
        UPDATE purchase_touches p SET (click_at, click_campaign) = (
            SELECT t.occurred_at, t.campaign_id FROM tracking_events t
            WHERE t.recipient_id = p.recipient_id AND t.kind = 'click' AND t.verdict = 'human'
              AND t.occurred_at <= p.occurred_at
            ORDER BY t.occurred_at DESC, t.campaign_id DESC LIMIT 1)
        WHERE p.recipient_id = NEW.recipient_id
          AND p.occurred_at >= LEAST(OLD.occurred_at, NEW.occurred_at);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER tracking_events_verdict_changed AFTER UPDATE OF verdict ON tracking_events
FOR EACH ROW WHEN (OLD.verdict IS DISTINCT FROM NEW.verdict)
EXECUTE FUNCTION mailcast_verdict_changed();

-- Deliveries need no trigger: a message is recorded as delivered when it is sent, so a
-- purchase stored before that is dated before it, unless it is dated in the future.
-- A trigger per delivered message cost the send path more than that case is worth.

INSERT INTO purchase_touches
SELECT * FROM mailcast_purchase_facts(ARRAY(SELECT e FROM events e WHERE e.kind = 'purchase'));

INSERT INTO recipient_engagement (campaign_id, kind, verdict, recipient_id, variant, events)
SELECT t.campaign_id, t.kind, t.verdict, t.recipient_id, MAX(d.variant), COUNT(*)
FROM tracking_events t
LEFT JOIN deliveries d ON d.campaign_id = t.campaign_id AND d.recipient_id = t.recipient_id
GROUP BY t.campaign_id, t.kind, t.verdict, t.recipient_id;
