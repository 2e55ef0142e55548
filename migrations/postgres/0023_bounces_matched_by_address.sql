-- A provider's webhook event without a Message-ID of ours (Postmark's never carry one)
-- is matched to the latest message sent to the address it reports: matched_by 'address'.
-- The old constraint guaranteed every row, so the new one is added NOT VALID (no scan
-- under the exclusive lock) and validated after.
ALTER TABLE bounces DROP CONSTRAINT bounces_matched_by_check;
ALTER TABLE bounces ADD CONSTRAINT bounces_matched_by_check
    CHECK (matched_by IN ('return_path', 'message_id', 'address')) NOT VALID;
ALTER TABLE bounces VALIDATE CONSTRAINT bounces_matched_by_check;
