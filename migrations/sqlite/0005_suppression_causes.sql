-- What put each address on the suppression list: the campaign, delivery and SMTP reply
-- that refused the mailbox (NULL for suppressions of another kind: erasure, tests,
-- imports). No foreign keys: a suppression outlives the campaign that caused it.
ALTER TABLE suppressions ADD COLUMN campaign_id INTEGER;
ALTER TABLE suppressions ADD COLUMN delivery_id INTEGER;
ALTER TABLE suppressions ADD COLUMN smtp_reply TEXT;
-- The list is read newest first.
CREATE INDEX suppressions_created ON suppressions (created_at, email_hash);

-- Why a campaign paused itself (a relay refused the sender, too many render
-- failures); NULL when a person paused it, cleared when it runs again.
ALTER TABLE campaigns ADD COLUMN pause_reason TEXT;
