-- The dashboard's recipient search compares email_key prefixes byte-wise (COLLATE "C"),
-- whatever the database's collation; this index serves that range.
CREATE INDEX recipients_email_key_c ON recipients (email_key COLLATE "C");
