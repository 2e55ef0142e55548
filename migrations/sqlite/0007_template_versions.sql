-- no-transaction
-- Every loaded version of a template is kept: a row per (name, version). A campaign's
-- template_id names one version, so a later `template load` cannot change what a
-- checked, scheduled campaign sends.
--
-- SQLite cannot drop the UNIQUE on name, so the table is rebuilt as SQLite's
-- documentation prescribes (foreign keys off outside the transaction, create, copy,
-- drop, rename); campaigns reference the table by name and keep doing so.
PRAGMA foreign_keys = OFF;
BEGIN;

CREATE TABLE templates_versioned (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    subject     TEXT    NOT NULL,
    preheader   TEXT,
    html        TEXT    NOT NULL,
    text        TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (name, version)
);

INSERT INTO templates_versioned (id, name, version, subject, preheader, html, text,
                                 created_at, updated_at)
SELECT id, name, 1, subject, preheader, html, text, created_at, updated_at FROM templates;

DROP TABLE templates;
ALTER TABLE templates_versioned RENAME TO templates;

COMMIT;
PRAGMA foreign_keys = ON;
