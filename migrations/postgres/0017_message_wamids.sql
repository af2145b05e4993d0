-- A message's wamid, looked up by status webhooks, in a table of its own (issue 13). The
-- unique index `messages_provider_id` on `messages.provider_message_id` made the update that
-- records an accepted send's wamid (every message) a non-HOT update: the new row version got
-- an entry in each of the table's indexes. `message_wamids` holds one row per wamid, kept by
-- the triggers below from `messages.provider_message_id` whatever statement sets or clears
-- it, and its primary key keeps a wamid on one message, as the unique index did. Lookups by
-- wamid read it; `messages.provider_message_id` stays the message's wamid for every reader.
-- No foreign key to `messages`: only the triggers write a row, from the message's own row
-- (messages are never deleted), and its check would lock the row the outcome just updated.
CREATE TABLE message_wamids (
    wamid      TEXT COLLATE "C" PRIMARY KEY,
    message_id TEXT COLLATE "C" NOT NULL
);
INSERT INTO message_wamids (wamid, message_id)
SELECT provider_message_id, id FROM messages WHERE provider_message_id IS NOT NULL;
DROP INDEX messages_provider_id;

CREATE FUNCTION message_wamids_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.provider_message_id IS NOT NULL THEN
        DELETE FROM message_wamids WHERE wamid = OLD.provider_message_id;
    END IF;
    IF NEW.provider_message_id IS NOT NULL THEN
        INSERT INTO message_wamids (wamid, message_id) VALUES (NEW.provider_message_id, NEW.id);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER messages_wamid_inserted AFTER INSERT ON messages
    FOR EACH ROW WHEN (NEW.provider_message_id IS NOT NULL)
    EXECUTE FUNCTION message_wamids_follow();
CREATE TRIGGER messages_wamid_changed AFTER UPDATE OF provider_message_id ON messages
    FOR EACH ROW WHEN (OLD.provider_message_id IS DISTINCT FROM NEW.provider_message_id)
    EXECUTE FUNCTION message_wamids_follow();
