-- The delivery ledger without foreign keys (measured in benches/SEGMENTS.md): their two
-- row triggers cost about 11 µs for every row a campaign start freezes into the ledger
-- (each locks its recipient row), which put freezes of a few hundred thousand
-- recipients over 5 s. The store keeps the ledger consistent itself:
--   - deliveries are only inserted for recipients and campaigns just read (the freeze's
--     INSERT … SELECT, a triggered send's INSERT … SELECT … FOR KEY SHARE);
--   - erasure deletes the recipient's deliveries in the same transaction, holding the
--     ledger advisory lock exclusively, while a freeze holds it shared
--     (src/store/audience.rs, src/store/privacy.rs);
--   - campaigns are never deleted, only cancelled or expired.
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_campaign_id_fkey;
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_recipient_id_fkey;
