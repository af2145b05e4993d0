-- plantilla schema, SQLite. Times are milliseconds since the Unix epoch (UTC).

CREATE TABLE accounts (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    conversation_limit  INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
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
    messages_per_second INTEGER NOT NULL,
    public_token_hash   TEXT NOT NULL UNIQUE,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);
CREATE INDEX channels_account ON channels(account_id);

CREATE TABLE groups (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (account_id, name)
);

-- The order of association (seq) decides a channel's default group: the lowest seq.
CREATE TABLE channel_groups (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
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
    active      INTEGER NOT NULL DEFAULT 1,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX templates_account ON templates(account_id, created_at);

CREATE TABLE contacts (
    account_id   TEXT NOT NULL REFERENCES accounts(id),
    phone_number TEXT NOT NULL,
    client_name  TEXT NOT NULL,
    last_inbound_at INTEGER,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
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
    created_at   INTEGER NOT NULL,
    opened_at    INTEGER,
    closed_at    INTEGER,
    last_activity_at INTEGER NOT NULL
);
-- At most one pending-or-open conversation per (channel, number), enforced by the database.
CREATE UNIQUE INDEX conversations_one_active
    ON conversations(channel_id, phone_number) WHERE status IN ('pending', 'open');

-- Conversations created per account and calendar month (UTC): the plan limit's counter.
CREATE TABLE conversation_usage (
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    period      TEXT NOT NULL, -- 'YYYY-MM'
    used        INTEGER NOT NULL,
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
    attempts         INTEGER NOT NULL DEFAULT 0,
    error_code       INTEGER,
    error_title      TEXT,
    error_details    TEXT,
    queued_at        INTEGER NOT NULL,
    sending_at       INTEGER,
    sent_at          INTEGER,
    delivered_at     INTEGER,
    read_at          INTEGER,
    failed_at        INTEGER,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX messages_conversation ON messages(conversation_id);
CREATE UNIQUE INDEX messages_provider_id ON messages(provider_message_id) WHERE provider_message_id IS NOT NULL;

-- The delivery job of a queued message. Written in the same transaction as the message,
-- deleted when the message leaves the dispatcher's hands (sent to the provider or failed).
CREATE TABLE delivery_jobs (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT, -- oldest first per channel
    message_id   TEXT NOT NULL UNIQUE REFERENCES messages(id),
    channel_id   TEXT NOT NULL,
    run_at       INTEGER NOT NULL,
    attempt      INTEGER NOT NULL DEFAULT 0,
    lease_until  INTEGER
);
CREATE INDEX delivery_jobs_due ON delivery_jobs(channel_id, run_at, seq);
