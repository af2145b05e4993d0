-- Status callbacks: accounts' webhook endpoints and the outbox of deliveries, written in the
-- same transaction as the status change they report.

-- Signs deliveries to messages' own callbackUrl; created when first needed.
ALTER TABLE accounts ADD COLUMN callback_secret TEXT;

CREATE TABLE webhook_endpoints (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts(id),
    url          TEXT NOT NULL,
    event_types  TEXT NOT NULL, -- JSON array of event type names
    description  TEXT,
    secret       TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX webhook_endpoints_account ON webhook_endpoints(account_id, created_at);

-- One row per event and receiver. A stream is (endpoint_id, ordering_key): its rows are
-- delivered one at a time, oldest first.
CREATE TABLE callback_outbox (
    seq                  INTEGER PRIMARY KEY AUTOINCREMENT,
    id                   TEXT NOT NULL UNIQUE, -- the webhook-id header
    account_id           TEXT NOT NULL,
    endpoint_id          TEXT NOT NULL, -- '' for the message's own callbackUrl
    url                  TEXT NOT NULL,
    ordering_key         TEXT NOT NULL, -- the message id (else conversation or template id)
    message_id           TEXT,
    event_type           TEXT NOT NULL,
    payload              TEXT NOT NULL, -- the JSON body, exactly as signed
    status               TEXT NOT NULL DEFAULT 'pending', -- pending | delivered | failed
    attempts             INTEGER NOT NULL DEFAULT 0,
    next_attempt_at      INTEGER NOT NULL,
    lease_until          INTEGER,
    last_response_status INTEGER,
    last_error           TEXT,
    created_at           INTEGER NOT NULL,
    delivered_at         INTEGER
);
CREATE INDEX callback_outbox_due ON callback_outbox(next_attempt_at, seq) WHERE status = 'pending';
CREATE INDEX callback_outbox_stream
    ON callback_outbox(endpoint_id, ordering_key, seq) WHERE status = 'pending';
CREATE INDEX callback_outbox_endpoint ON callback_outbox(endpoint_id, seq);
