-- When a delivery was handed to SMTP (its MAIL FROM ... DATA under way, the body about to
-- follow), written before the message body goes out. A lease that runs out makes a
-- `sending` delivery `unknown` only when this is set; a delivery claimed but never
-- handed goes back to `pending` and is sent later, exactly once. Cleared by each claim.
ALTER TABLE deliveries ADD COLUMN handed_at BIGINT;

-- Outcomes recorded and deliveries marked as handed in one round trip and one commit
-- (Store::write_ledger): the outcomes first, then the marks, which return the ids this
-- worker still holds (a delivery whose lease ran out is not handed).
CREATE FUNCTION mailcast_write_ledger(outcomes jsonb, holder text, at bigint, ids bigint[],
                                      handing bigint[])
RETURNS SETOF bigint
LANGUAGE sql
AS $$
    SELECT mailcast_record_outcomes(outcomes, holder, at, ids);
    UPDATE deliveries SET handed_at = at
    WHERE id = ANY(handing) AND worker = holder AND status = 'sending'
    RETURNING id;
$$;
