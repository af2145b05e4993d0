-- Issue 15, items 3 to 5: what Meta reports about a template's and a number's health, and
-- what each message cost.
--
-- A template's health beyond its status and category (which stay on `templates`): the last
-- status event and its reason, the disable date, the flag, the quality score, a pending
-- category change. One JSON document (`store::TemplateHealth`) per template that has had one.
CREATE TABLE template_health (
    template_id  TEXT PRIMARY KEY,
    health       TEXT NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- A number's quality rating and last quality event (`store::ChannelQuality`); its messaging
-- limit stays on `channels.messaging_limit`.
CREATE TABLE channel_quality (
    channel_id   TEXT PRIMARY KEY,
    quality      TEXT NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- Meta's per-message `pricing` (since July 2025): `type` (regular, free_customer_service,
-- free_entry_point), `pricing_model` (PMP), `billable`; `pricing_category` exists already.
ALTER TABLE messages ADD COLUMN pricing_type TEXT;
ALTER TABLE messages ADD COLUMN pricing_model TEXT;
ALTER TABLE messages ADD COLUMN pricing_billable INTEGER;
ALTER TABLE pending_statuses ADD COLUMN pricing_type TEXT;
ALTER TABLE pending_statuses ADD COLUMN pricing_model TEXT;
ALTER TABLE pending_statuses ADD COLUMN pricing_billable INTEGER;
-- `GET /v1/usage` reads an account's priced messages through messages_account_time (queued
-- before the window's end); no index of its own, since one on sent_at or pricing_category
-- would be rewritten by every status (and, on PostgreSQL, make those updates non-HOT).
