-- Fewer index entries per accepted send (issue 13). Every message inserted wrote an entry in
-- each index of `messages`, and two of them indexed a NULL for most rows: nothing reads those
-- entries, and each was written at insert (and, for `sending_at`, deleted again by the claim).

-- Most messages are not in a batch. Every query of this index asks for one batch
-- (`batch_id = ?`), which SQLite's planner takes to imply `batch_id IS NOT NULL`.
DROP INDEX messages_batch;
CREATE INDEX messages_batch ON messages(batch_id) WHERE batch_id IS NOT NULL;

-- `sending_at` is NULL until the claim sets it. The index serves the messaging limit's count
-- of a channel's new recipients (`sending_at >= ?`, which implies IS NOT NULL); the sandbox's
-- resume (sending, sent or delivered messages) reads `messages_in_flight`.
DROP INDEX messages_channel_sending;
CREATE INDEX messages_channel_sending ON messages(channel_id, sending_at)
 WHERE sending_at IS NOT NULL;
