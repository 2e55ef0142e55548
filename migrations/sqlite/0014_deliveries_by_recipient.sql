-- A recipient's deliveries across campaigns: the frequency cap counts them at every
-- claim, and an erasure deletes them.
CREATE INDEX deliveries_recipient ON deliveries (recipient_id);
