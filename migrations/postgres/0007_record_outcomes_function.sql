-- A batch of delivery outcomes recorded in one round trip (Store::record_outcomes).
-- `outcomes` is a JSON array of {id, status, message_id, last_error, next_attempt_at,
-- sent_at}; only rows `holder` holds, and only while sending (or expired to unknown
-- meanwhile), are changed. Just after a campaign starts, the statistics see almost no
-- `sending` rows, and the planner would nest the JSON batch inside a scan of the
-- ledger: rows are found by primary key (`ids`), `status || ''` keeps the status out
-- of index use, and nested loops are off for the function's duration.
CREATE FUNCTION mailcast_record_outcomes(outcomes jsonb, holder text, at bigint, ids bigint[])
RETURNS bigint
LANGUAGE sql
SET enable_nestloop = off
AS $$
    WITH changed AS (
        UPDATE deliveries d
        SET status = v.status, message_id = COALESCE(v.message_id, d.message_id),
            last_error = v.last_error, next_attempt_at = v.next_attempt_at,
            sent_at = v.sent_at, lease_until = NULL, updated_at = at
        FROM jsonb_to_recordset(outcomes) AS v(id bigint, status text, message_id text,
             last_error text, next_attempt_at bigint, sent_at bigint)
        WHERE d.id = ANY(ids) AND d.id = v.id AND d.worker = holder
          AND (d.status || '') IN ('sending', 'unknown')
        RETURNING 1)
    SELECT count(*) FROM changed
$$;
