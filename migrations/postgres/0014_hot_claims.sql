-- Less written per message (issue 13). Measured with pg_waldump over full-cycle-pg, a message
-- cost ≈ 70 WAL records, most of them index entries of `messages`: every row version that
-- is not a HOT update writes an entry in each of its indexes.

-- The claim sets `sending_at`, which `messages_channel_sending` indexed, so the claim's
-- update of every message was not HOT. That index served two queries: the messaging limit's
-- count of new recipients, now read from `recipient_starts` below, and the sandbox's resume
-- (at start, sandbox channels only), which needs the channel alone.
DROP INDEX messages_channel_sending;
CREATE INDEX messages_channel ON messages(channel_id);

-- The start of each conversation that counts against a channel's messaging limit: its first
-- message, when it moved to `sending` (the message's `sending_at`). The claim that sets a
-- first message's `sending_at` adds its row; a hold that clears it again removes it. The
-- count of a channel's new recipients over the last 24 h reads this (a row per start) where
-- it read `messages` by `messages_channel_sending`.
CREATE TABLE recipient_starts (
    channel_id   TEXT NOT NULL,
    started_at   BIGINT NOT NULL,
    phone_number TEXT NOT NULL,
    message_id   TEXT NOT NULL
);
CREATE INDEX recipient_starts_channel ON recipient_starts(channel_id, started_at);
INSERT INTO recipient_starts (channel_id, started_at, phone_number, message_id)
SELECT m.channel_id, m.sending_at, m.phone_number, m.id
FROM messages m JOIN conversations c ON c.id = m.conversation_id AND c.first_message_id = m.id
WHERE m.sending_at IS NOT NULL;

-- Most messages are not in a batch: their NULL `batch_id` was an entry of `messages_batch`
-- for every row version. Every query of it asks for one batch (`batch_id = $1`).
DROP INDEX messages_batch;
CREATE INDEX messages_batch ON messages(batch_id) WHERE batch_id IS NOT NULL;
