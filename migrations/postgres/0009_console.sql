-- The operator console's sessions (`/console`). The cookie carries a random token; only its
-- SHA-256 is kept. `account_id` NULL: signed in with the admin token (every account);
-- otherwise with an API key of that account, whose hash is kept so revoking the key ends the
-- session too.
CREATE TABLE console_sessions (
    token_hash   TEXT PRIMARY KEY,
    account_id   TEXT REFERENCES accounts(id),
    key_hash     TEXT,
    csrf_token   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions(expires_at);

-- The console lists an account's newest messages of a template or a conversation.
CREATE INDEX messages_account_template ON messages(account_id, template_id, queued_at);
CREATE INDEX batches_account ON batches(account_id, created_at);
CREATE INDEX callback_outbox_account ON callback_outbox(account_id, seq);
