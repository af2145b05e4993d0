-- Opt-outs: each account's suppression list. A MARKETING template is not sent to a number on
-- it. `reason`: keyword, button, meta_131050 (automatic) or api (added by a person, which an
-- opt-in keyword does not remove). `channel_id`: the channel the opt-out came through, when
-- known.
CREATE TABLE suppressions (
    account_id    TEXT NOT NULL REFERENCES accounts(id),
    phone_number  TEXT NOT NULL,
    reason        TEXT NOT NULL,
    note          TEXT,
    automatic     BOOLEAN NOT NULL,
    channel_id    TEXT,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (account_id, phone_number)
);
CREATE INDEX suppressions_account_created ON suppressions(account_id, created_at, phone_number);

-- The account's opt-out and opt-in keywords (JSON arrays of text); NULL: the defaults.
ALTER TABLE accounts ADD COLUMN opt_out_keywords TEXT;
ALTER TABLE accounts ADD COLUMN opt_in_keywords TEXT;
