-- A status kept for a message plantilla does not know (yet) is kept once per (wamid, status):
-- Meta retries webhooks, and a number shared with another sender reports that sender's
-- messages forever. Kept statuses expire by age (`received_at`, PLANTILLA_PENDING_STATUS_TTL_MS).
DELETE FROM pending_statuses
 WHERE provider_message_id IS NOT NULL
   AND id NOT IN (SELECT min(id) FROM pending_statuses
                   WHERE provider_message_id IS NOT NULL
                   GROUP BY provider_message_id, status);
CREATE UNIQUE INDEX pending_statuses_once ON pending_statuses(provider_message_id, status);
CREATE INDEX pending_statuses_received ON pending_statuses(received_at);

-- The sandbox's messages still being simulated (accepted, not yet read): resumed on start, so
-- a kill -9 does not leave them short of `read`.
CREATE INDEX messages_in_flight ON messages(channel_id)
 WHERE status IN ('sending', 'sent', 'delivered');
