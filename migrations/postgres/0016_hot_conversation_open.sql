-- A conversation's move from pending to open (every first message, on its acceptance) was
-- not a HOT update: `conversations_one_active`'s predicate read `status`, whose value the
-- move changes, so the new row version got an entry in each of the table's indexes.
-- `active` (pending or open) does not change on that move, only when the conversation
-- closes. Queries that look an active conversation up say `active` as well (PostgreSQL
-- cannot infer it from `status`), so they can use the index.
ALTER TABLE conversations
    ADD COLUMN active BOOLEAN GENERATED ALWAYS AS (status IN ('pending', 'open')) STORED;
DROP INDEX conversations_one_active;
CREATE UNIQUE INDEX conversations_one_active
    ON conversations(channel_id, phone_number) WHERE active;
-- Room on each page for the row's next version (pages written from now on).
ALTER TABLE conversations SET (fillfactor = 80);
