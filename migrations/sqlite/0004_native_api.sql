-- The native API: account API keys, idempotency keys, batches, per-message callbacks.

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts(id),
    name         TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);

-- A request's idempotency key (per caller scope), the fingerprint of the request it was first
-- used with, and what that request decided; written in the send's transaction.
CREATE TABLE idempotency_keys (
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    outcome      TEXT NOT NULL, -- JSON
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys(expires_at);

CREATE TABLE batches (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts(id),
    channel_id   TEXT NOT NULL REFERENCES channels(id),
    total        INTEGER NOT NULL,
    accepted     INTEGER NOT NULL,
    rejected     INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
);

ALTER TABLE messages ADD COLUMN batch_id TEXT;
ALTER TABLE messages ADD COLUMN callback_url TEXT;
ALTER TABLE messages ADD COLUMN metadata TEXT; -- JSON object
CREATE INDEX messages_account_time ON messages(account_id, queued_at, id);
CREATE INDEX messages_batch ON messages(batch_id);
CREATE INDEX messages_phone ON messages(account_id, phone_number);
CREATE INDEX conversations_account_time ON conversations(account_id, created_at, id);
