-- Fewer index entries per message (issue 13): each is a B-tree insert and a WAL record.
--
-- A delivery attempt's rows are only ever read by message, in the order they were written
-- (`WHERE message_id = $1 ORDER BY id`): `delivery_attempts_message` on `(message_id, id)`
-- served that, and the primary key on `id` alone served nothing, yet every accepted send
-- wrote an entry in both. The key is now `(message_id, id)`: still unique (the `id`
-- sequence stays), one entry per attempt.
ALTER TABLE delivery_attempts DROP CONSTRAINT delivery_attempts_pkey;
DROP INDEX delivery_attempts_message;
ALTER TABLE delivery_attempts ADD CONSTRAINT delivery_attempts_pkey PRIMARY KEY (message_id, id);

-- A status that arrives before its send's outcome is kept in `pending_statuses`, and found
-- again by wamid. `pending_statuses_once` on `(provider_message_id, status)` serves every
-- lookup by wamid (its leading column), so `pending_statuses_wamid` only cost an entry per
-- kept status.
DROP INDEX pending_statuses_wamid;
