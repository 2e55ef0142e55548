-- Experiments (src/experiment): each delivery's variant (0 = A, the default; NULL for a
-- campaign without an experiment), chosen once when the audience is frozen.
ALTER TABLE deliveries ADD COLUMN variant BIGINT;

-- The part of an experiment's audience that is not in the ledger: the holdout (never
-- mailed; compared with the mailed for uplift) and the rest of a test-then-winner
-- campaign (mailed the winner once the test is judged). Erased with the recipient.
CREATE TABLE experiment_audience (
    campaign_id  BIGINT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    recipient_id BIGINT NOT NULL REFERENCES recipients (id) ON DELETE CASCADE,
    part         TEXT   NOT NULL CHECK (part IN ('holdout', 'rest')),
    PRIMARY KEY (campaign_id, recipient_id)
);

-- A test's judgement, written once: a second judge finds it and sends the same variant.
CREATE TABLE experiment_judgements (
    campaign_id  BIGINT PRIMARY KEY REFERENCES campaigns (id) ON DELETE CASCADE,
    judged_at    BIGINT NOT NULL,
    winner       BIGINT,
    sent_variant BIGINT NOT NULL,
    judgement    TEXT   NOT NULL
);
