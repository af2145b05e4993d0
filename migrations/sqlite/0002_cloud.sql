-- Cloud delivery: channel health, attempts as rows, pricing, statuses that arrive before
-- their message is known.

ALTER TABLE channels ADD COLUMN health TEXT NOT NULL DEFAULT 'ok'; -- 'ok' | 'halted'
ALTER TABLE channels ADD COLUMN health_code INTEGER;
ALTER TABLE channels ADD COLUMN health_detail TEXT;
ALTER TABLE channels ADD COLUMN health_at INTEGER;
CREATE INDEX channels_phone_number_id ON channels(phone_number_id);
CREATE INDEX channels_waba ON channels(waba_id);

ALTER TABLE messages ADD COLUMN pricing_category TEXT;

-- Jobs count attempts that really tried (a channel halt gives its attempt back).
ALTER TABLE delivery_jobs ADD COLUMN tries INTEGER NOT NULL DEFAULT 0;

CREATE TABLE delivery_attempts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id   TEXT NOT NULL REFERENCES messages(id),
    attempt      INTEGER NOT NULL,
    finished_at  INTEGER NOT NULL,
    outcome      TEXT NOT NULL, -- accepted | retry | failed | requeued
    error_code   INTEGER,
    error_title  TEXT,
    error_details TEXT
);
CREATE INDEX delivery_attempts_message ON delivery_attempts(message_id, id);

CREATE TABLE pending_statuses (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    provider_message_id TEXT,
    message_id          TEXT,
    status              TEXT NOT NULL,
    at                  INTEGER NOT NULL,
    error_code          INTEGER,
    error_title         TEXT,
    error_details       TEXT,
    pricing_category    TEXT,
    received_at         INTEGER NOT NULL
);
CREATE INDEX pending_statuses_wamid ON pending_statuses(provider_message_id);
CREATE INDEX pending_statuses_message ON pending_statuses(message_id);
