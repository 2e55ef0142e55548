-- Every loaded version of a template is kept: a row per (name, version). A campaign's
-- template_id names one version, so a later `template load` cannot change what a
-- checked, scheduled campaign sends.
ALTER TABLE templates ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE templates ALTER COLUMN version DROP DEFAULT;
ALTER TABLE templates DROP CONSTRAINT templates_name_key;
ALTER TABLE templates ADD CONSTRAINT templates_name_version_key UNIQUE (name, version);
