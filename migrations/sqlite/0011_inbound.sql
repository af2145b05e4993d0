-- Inbound messages (issue 15): every message of Meta's `messages` webhook, kept on its
-- conversation and forwarded as `message.received`; and business-scoped user ids (BSUID,
-- Meta's `user_id`) kept on the contact.

ALTER TABLE contacts ADD COLUMN user_id TEXT;
ALTER TABLE contacts ADD COLUMN username TEXT;
CREATE INDEX contacts_user_id ON contacts(account_id, user_id) WHERE user_id IS NOT NULL;

-- One row per inbound message; Meta's wamid is unique per channel, so a retried webhook is
-- stored (and forwarded) once. `conversation_id` is NULL when the sender has no conversation
-- on the channel (nothing was ever sent to them, or only their user id is known).
CREATE TABLE inbound_messages (
    id                  TEXT PRIMARY KEY,
    account_id          TEXT NOT NULL REFERENCES accounts(id),
    channel_id          TEXT NOT NULL REFERENCES channels(id),
    conversation_id     TEXT REFERENCES conversations(id),
    provider_message_id TEXT NOT NULL,
    phone_number        TEXT,
    user_id             TEXT,
    contact_name        TEXT,
    type                TEXT NOT NULL,
    text                TEXT,
    content             TEXT NOT NULL, -- JSON object: the typed parts as shown
    raw                 TEXT NOT NULL, -- JSON object: Meta's message as received
    context_id          TEXT,          -- Meta's context.id (the wamid replied to)
    reply_to            TEXT,          -- plantilla's message with that wamid, if any
    sent_at             INTEGER NOT NULL, -- Meta's timestamp
    received_at         INTEGER NOT NULL,
    UNIQUE (channel_id, provider_message_id)
);
CREATE INDEX inbound_messages_conversation ON inbound_messages(conversation_id, received_at, id);
CREATE INDEX inbound_messages_account ON inbound_messages(account_id, received_at, id);
