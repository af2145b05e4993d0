-- A number's messages are read through its conversations (issue 13). `messages_phone`
-- (account, number) took an entry at a random page for every message inserted: in the WAL of
-- an accept run it was 23 of the 76 pages each group commit wrote. A message's number is its
-- conversation's, so the listing's filter by number reads the number's conversations here
-- (one row per conversation, not per message) and their messages by `messages_conversation`.
DROP INDEX messages_phone;
CREATE INDEX conversations_phone ON conversations(account_id, phone_number);
