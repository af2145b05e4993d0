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

-- More room on each page for a row's next versions, so its updates stay HOT (no entry in any
-- of the table's indexes). A message's row is written six times within a second or so
-- (accepted, claimed, outcome, sent, delivered, read) and a conversation's twice (pending,
-- open), by rows inserted together on the same pages. Counted over full-cycle-pg
-- (pg_stat_user_tables): at fillfactor 70 / 80, 18 % of the updates of `messages` and 37 %
-- of those of `conversations` found no room and were not HOT, each writing an entry in all
-- of the table's indexes (six and three); at 50, 8 % and none. Pages written from now on;
-- the cost is a larger heap for the same rows.
ALTER TABLE messages SET (fillfactor = 50);
ALTER TABLE conversations SET (fillfactor = 50);
