-- plantilla schema, PostgreSQL: the SQLite schema (0001_init + 0002_cloud) in one migration.
-- Times are milliseconds since the Unix epoch (UTC). JSON columns stay TEXT, as in SQLite.

CREATE TABLE accounts (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    conversation_limit  BIGINT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);

CREATE TABLE channels (
    id                  TEXT PRIMARY KEY,
    account_id          TEXT NOT NULL REFERENCES accounts(id),
    name                TEXT NOT NULL,
    provider            TEXT NOT NULL,
    phone_number_id     TEXT NOT NULL DEFAULT '',
    waba_id             TEXT NOT NULL DEFAULT '',
    access_token        TEXT NOT NULL DEFAULT '',
    app_secret          TEXT NOT NULL DEFAULT '',
    verify_token        TEXT NOT NULL DEFAULT '',
    status              TEXT NOT NULL,
    messages_per_second BIGINT NOT NULL,
    public_token_hash   TEXT NOT NULL UNIQUE,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    health              TEXT NOT NULL DEFAULT 'ok', -- 'ok' | 'halted'
    health_code         BIGINT,
    health_detail       TEXT,
    health_at           BIGINT
);
CREATE INDEX channels_account ON channels(account_id);
CREATE INDEX channels_phone_number_id ON channels(phone_number_id);
CREATE INDEX channels_waba ON channels(waba_id);

CREATE TABLE groups (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (account_id, name)
);

-- The order of association (seq) decides a channel's default group: the lowest seq.
CREATE TABLE channel_groups (
    seq         BIGSERIAL PRIMARY KEY,
    channel_id  TEXT NOT NULL REFERENCES channels(id),
    group_id    TEXT NOT NULL REFERENCES groups(id),
    UNIQUE (channel_id, group_id)
);

CREATE TABLE templates (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    name        TEXT NOT NULL,
    language    TEXT NOT NULL,
    category    TEXT NOT NULL,
    status      TEXT NOT NULL,
    app_id      TEXT NOT NULL DEFAULT '',
    message     TEXT NOT NULL DEFAULT '',
    header      TEXT,            -- JSON
    footer      TEXT,
    buttons     TEXT NOT NULL DEFAULT '[]', -- JSON array
    group_name  TEXT,
    active      BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX templates_account ON templates(account_id, created_at);

CREATE TABLE contacts (
    account_id   TEXT NOT NULL REFERENCES accounts(id),
    phone_number TEXT NOT NULL,
    client_name  TEXT NOT NULL,
    last_inbound_at BIGINT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (account_id, phone_number)
);

CREATE TABLE conversations (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts(id),
    channel_id   TEXT NOT NULL REFERENCES channels(id),
    phone_number TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'open', 'closed')),
    assignee     TEXT NOT NULL CHECK (assignee IN ('agent', 'bot')),
    group_id     TEXT REFERENCES groups(id),
    client_name  TEXT NOT NULL,
    first_message_id TEXT,
    close_reason TEXT,
    created_at   BIGINT NOT NULL,
    opened_at    BIGINT,
    closed_at    BIGINT,
    last_activity_at BIGINT NOT NULL
);
-- At most one pending-or-open conversation per (channel, number), enforced by the database:
-- with several writers, a concurrent second insert fails with a unique violation.
CREATE UNIQUE INDEX conversations_one_active
    ON conversations(channel_id, phone_number) WHERE status IN ('pending', 'open');

-- Conversations created per account and calendar month (UTC): the plan limit's counter.
CREATE TABLE conversation_usage (
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    period      TEXT NOT NULL, -- 'YYYY-MM'
    used        BIGINT NOT NULL,
    PRIMARY KEY (account_id, period)
);

CREATE TABLE messages (
    id               TEXT PRIMARY KEY,
    account_id       TEXT NOT NULL REFERENCES accounts(id),
    channel_id       TEXT NOT NULL REFERENCES channels(id),
    conversation_id  TEXT NOT NULL REFERENCES conversations(id),
    template_id      TEXT NOT NULL REFERENCES templates(id),
    phone_number     TEXT NOT NULL,
    params           TEXT NOT NULL, -- JSON object
    status           TEXT NOT NULL,
    provider_message_id TEXT,
    wa_id            TEXT,
    attempts         BIGINT NOT NULL DEFAULT 0,
    error_code       BIGINT,
    error_title      TEXT,
    error_details    TEXT,
    queued_at        BIGINT NOT NULL,
    sending_at       BIGINT,
    sent_at          BIGINT,
    delivered_at     BIGINT,
    read_at          BIGINT,
    failed_at        BIGINT,
    updated_at       BIGINT NOT NULL,
    pricing_category TEXT
);
CREATE INDEX messages_conversation ON messages(conversation_id);
CREATE UNIQUE INDEX messages_provider_id ON messages(provider_message_id)
    WHERE provider_message_id IS NOT NULL;

-- The delivery job of a queued message. Written in the same transaction as the message,
-- deleted when the message leaves the dispatcher's hands (sent to the provider or failed).
CREATE TABLE delivery_jobs (
    seq          BIGSERIAL PRIMARY KEY, -- oldest first per channel
    message_id   TEXT NOT NULL UNIQUE REFERENCES messages(id),
    channel_id   TEXT NOT NULL,
    run_at       BIGINT NOT NULL,
    attempt      BIGINT NOT NULL DEFAULT 0,
    lease_until  BIGINT,
    -- Attempts that really tried (a channel halt gives its attempt back).
    tries        BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX delivery_jobs_due ON delivery_jobs(channel_id, run_at, seq);

CREATE TABLE delivery_attempts (
    id           BIGSERIAL PRIMARY KEY,
    message_id   TEXT NOT NULL REFERENCES messages(id),
    attempt      BIGINT NOT NULL,
    finished_at  BIGINT NOT NULL,
    outcome      TEXT NOT NULL, -- accepted | retry | failed | requeued
    error_code   BIGINT,
    error_title  TEXT,
    error_details TEXT
);
CREATE INDEX delivery_attempts_message ON delivery_attempts(message_id, id);

-- Statuses that arrive before their message is known.
CREATE TABLE pending_statuses (
    id                  BIGSERIAL PRIMARY KEY,
    provider_message_id TEXT,
    message_id          TEXT,
    status              TEXT NOT NULL,
    at                  BIGINT NOT NULL,
    error_code          BIGINT,
    error_title         TEXT,
    error_details       TEXT,
    pricing_category    TEXT,
    received_at         BIGINT NOT NULL
);
CREATE INDEX pending_statuses_wamid ON pending_statuses(provider_message_id);
CREATE INDEX pending_statuses_message ON pending_statuses(message_id);
