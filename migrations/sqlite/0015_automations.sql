-- Automations: journeys started by triggers, their versions, and their runs.

CREATE TABLE automations (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    status      TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused')),
    version_id  INTEGER,                           -- the version new runs start on
    events_from INTEGER NOT NULL DEFAULT 0,        -- events after this id trigger it
    recipients_from INTEGER NOT NULL DEFAULT 0,    -- recipients after this id are new to it
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- Every edit is a new version; a run finishes on the version it started.
CREATE TABLE automation_versions (
    id            INTEGER PRIMARY KEY,
    automation_id INTEGER NOT NULL REFERENCES automations (id) ON DELETE CASCADE,
    version       INTEGER NOT NULL,
    definition    TEXT    NOT NULL,                -- the checked definition, JSON
    source        TEXT    NOT NULL,                -- the file as it was loaded
    created_at    INTEGER NOT NULL,
    UNIQUE (automation_id, version)
);

CREATE TABLE automation_runs (
    id               INTEGER PRIMARY KEY,
    automation_id    INTEGER NOT NULL REFERENCES automations (id) ON DELETE CASCADE,
    version_id       INTEGER NOT NULL REFERENCES automation_versions (id),
    recipient_id     INTEGER NOT NULL REFERENCES recipients (id) ON DELETE CASCADE,
    ordinal          INTEGER NOT NULL,             -- this recipient's n-th run of the automation
    trigger_key      TEXT    NOT NULL,             -- what started it: e<event id>, created, ...
    trigger_event_id INTEGER,
    status           TEXT    NOT NULL CHECK (status IN ('active', 'ended')),
    step             INTEGER NOT NULL,             -- the step to run next (active runs)
    step_entered_at  INTEGER NOT NULL,
    due_at           INTEGER,                      -- when the step is looked at next
    waiting_for      TEXT,                         -- wait_for: an event of this kind wakes it early
    goal_kind        TEXT,                         -- an event of this kind ends it as converted
    lease_owner      TEXT,
    lease_until      INTEGER,
    last_sent_step   INTEGER,
    started_at       INTEGER NOT NULL,
    ended_at         INTEGER,
    end_reason       TEXT,                         -- finished | exit | goal | unsubscribed | ...
    ended_at_step    INTEGER,
    converted_at     INTEGER,
    UNIQUE (automation_id, recipient_id, ordinal),
    UNIQUE (automation_id, recipient_id, trigger_key)
);
-- Never two runs of one automation for one recipient at once.
CREATE UNIQUE INDEX automation_runs_one_active ON automation_runs (automation_id, recipient_id)
    WHERE status = 'active';
CREATE INDEX automation_runs_due ON automation_runs (due_at) WHERE status = 'active';
-- A recipient's runs: waking them on events, and the erasure's cascade.
CREATE INDEX automation_runs_recipient ON automation_runs (recipient_id);

-- Which steps each run entered: the per-step "entered" figure.
CREATE TABLE automation_run_steps (
    run_id     INTEGER NOT NULL REFERENCES automation_runs (id) ON DELETE CASCADE,
    step       INTEGER NOT NULL,
    entered_at INTEGER NOT NULL,
    PRIMARY KEY (run_id, step)
);

-- The campaign behind each send step: one per (version, step, run ordinal), so the
-- ledger's (campaign, recipient) key is the run's (run, step) key.
CREATE TABLE automation_campaigns (
    campaign_id   INTEGER PRIMARY KEY REFERENCES campaigns (id),
    automation_id INTEGER NOT NULL REFERENCES automations (id) ON DELETE CASCADE,
    version_id    INTEGER NOT NULL,
    step          INTEGER NOT NULL,
    ordinal       INTEGER NOT NULL,
    UNIQUE (version_id, step, ordinal)
);
CREATE INDEX automation_campaigns_automation ON automation_campaigns (automation_id, step);

-- How far the trigger scans have read (events and recipients by id).
CREATE TABLE automation_cursors (
    name     TEXT    PRIMARY KEY,
    position INTEGER NOT NULL
);

-- Who was in an `enters_segment` automation's segment at its last evaluation.
CREATE TABLE automation_members (
    automation_id INTEGER NOT NULL REFERENCES automations (id) ON DELETE CASCADE,
    recipient_id  INTEGER NOT NULL REFERENCES recipients (id) ON DELETE CASCADE,
    PRIMARY KEY (automation_id, recipient_id)
);
CREATE INDEX automation_members_recipient ON automation_members (recipient_id);
