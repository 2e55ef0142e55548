-- What each delivery's message was personalised with (src/render/rendered_with.rs),
-- written with the mark that hands it to SMTP: "view in browser" renders it again.
ALTER TABLE deliveries ADD COLUMN rendered_with TEXT;

-- Earlier versions of a recipient's data, kept when it changes, so that a message can
-- be shown as it was rendered for them. Each row is the data as it was until
-- `replaced_at`. Erased with the recipient.
CREATE TABLE recipient_versions (
    id          INTEGER PRIMARY KEY,
    recipient_id INTEGER NOT NULL REFERENCES recipients (id) ON DELETE CASCADE,
    replaced_at INTEGER NOT NULL,
    email       TEXT    NOT NULL,
    first_name  TEXT,
    last_name   TEXT,
    country     TEXT,
    city        TEXT,
    attributes  TEXT    NOT NULL,
    locale      TEXT,
    timezone    TEXT
);
CREATE INDEX recipient_versions_recipient ON recipient_versions (recipient_id, id);

CREATE TRIGGER recipients_keep_version AFTER UPDATE ON recipients
WHEN OLD.email IS NOT NEW.email OR OLD.first_name IS NOT NEW.first_name
  OR OLD.last_name IS NOT NEW.last_name OR OLD.country IS NOT NEW.country
  OR OLD.city IS NOT NEW.city OR OLD.attributes IS NOT NEW.attributes
  OR OLD.locale IS NOT NEW.locale OR OLD.timezone IS NOT NEW.timezone
BEGIN
    INSERT INTO recipient_versions (recipient_id, replaced_at, email, first_name, last_name,
                                    country, city, attributes, locale, timezone)
    VALUES (OLD.id, NEW.updated_at, OLD.email, OLD.first_name, OLD.last_name,
            OLD.country, OLD.city, OLD.attributes, OLD.locale, OLD.timezone);
END;
