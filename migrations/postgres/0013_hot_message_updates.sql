-- A message's row is rewritten four times on its way (claimed, sent, delivered, read). An
-- update that changes no indexed column and finds room on its page is a HOT update: no entry
-- in any of the table's nine indexes. `messages_in_flight` indexed by `status` (its
-- predicate), so every status change wrote a new entry in all nine; without it, `delivered`
-- and `read` change no indexed column. The sandbox's resume query it served runs once, at
-- start, over sandbox channels only (found by `messages_channel_sending`).
DROP INDEX messages_in_flight;
-- Room on each page for a row's later versions, so they stay HOT (pages written from now on).
ALTER TABLE messages SET (fillfactor = 70);
