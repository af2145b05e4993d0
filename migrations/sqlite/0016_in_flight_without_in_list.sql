-- The sandbox's in-flight messages, indexed by a predicate SQLite evaluates without a
-- temporary table (issue 13). `status IN ('sending', 'sent', 'delivered')` is a list of
-- three constants, which SQLite codes as a lookup in a small B-tree built for the purpose:
-- every update of a message's status built it twice (for the row before and after), the
-- claim and each of the three statuses a message receives. The same set written with `OR`
-- is three comparisons. The resume query (`sandbox_in_flight_sql`) says it the same way, as
-- a query must for SQLite to use a partial index.
DROP INDEX messages_in_flight;
CREATE INDEX messages_in_flight ON messages(channel_id)
 WHERE status = 'sending' OR status = 'sent' OR status = 'delivered';
