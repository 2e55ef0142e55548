-- When a delivery was handed to SMTP (its MAIL FROM ... DATA under way, the body about to
-- follow), written before the message body goes out. A lease that runs out makes a
-- `sending` delivery `unknown` only when this is set; a delivery claimed but never
-- handed goes back to `pending` and is sent later, exactly once. Cleared by each claim.
ALTER TABLE deliveries ADD COLUMN handed_at BIGINT;
