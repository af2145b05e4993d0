-- Ids, phone numbers, wamids, hashes and keys compare byte by byte (issue 13). Under the
-- database's collation (`C.UTF-8` here, `en_US.UTF-8` elsewhere) every B-tree comparison of
-- two different texts went through `strcoll`, and every lookup and insert in an index on an
-- id makes a dozen of them: a visible share of the server's CPU per message. These columns
-- hold ASCII identifiers, never text shown sorted to a person, so "C" orders them the same
-- way wherever it matters (the keyset pagination's `(created_at, id)` ties) and equality is
-- unchanged. Names, labels and JSON keep the database's collation.
ALTER TABLE accounts ALTER COLUMN id TYPE TEXT COLLATE "C";
ALTER TABLE api_keys
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN account_id TYPE TEXT COLLATE "C",
    ALTER COLUMN key_hash TYPE TEXT COLLATE "C";
ALTER TABLE batches
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN account_id TYPE TEXT COLLATE "C",
    ALTER COLUMN channel_id TYPE TEXT COLLATE "C";
ALTER TABLE callback_outbox
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN account_id TYPE TEXT COLLATE "C",
    ALTER COLUMN endpoint_id TYPE TEXT COLLATE "C",
    ALTER COLUMN ordering_key TYPE TEXT COLLATE "C",
    ALTER COLUMN message_id TYPE TEXT COLLATE "C";
ALTER TABLE channel_groups
    ALTER COLUMN channel_id TYPE TEXT COLLATE "C",
    ALTER COLUMN group_id TYPE TEXT COLLATE "C";
ALTER TABLE channel_owners ALTER COLUMN channel_id TYPE TEXT COLLATE "C";
ALTER TABLE channel_quality ALTER COLUMN channel_id TYPE TEXT COLLATE "C";
ALTER TABLE channels
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN account_id TYPE TEXT COLLATE "C",
    ALTER COLUMN phone_number_id TYPE TEXT COLLATE "C",
    ALTER COLUMN waba_id TYPE TEXT COLLATE "C",
    ALTER COLUMN public_token_hash TYPE TEXT COLLATE "C";
ALTER TABLE console_sessions
    ALTER COLUMN token_hash TYPE TEXT COLLATE "C",
    ALTER COLUMN account_id TYPE TEXT COLLATE "C";
ALTER TABLE contacts
    ALTER COLUMN account_id TYPE TEXT COLLATE "C",
    ALTER COLUMN phone_number TYPE TEXT COLLATE "C",
    ALTER COLUMN user_id TYPE TEXT COLLATE "C";
ALTER TABLE conversation_usage
    ALTER COLUMN account_id TYPE TEXT COLLATE "C",
    ALTER COLUMN period TYPE TEXT COLLATE "C";
ALTER TABLE conversations
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN account_id TYPE TEXT COLLATE "C",
    ALTER COLUMN channel_id TYPE TEXT COLLATE "C",
    ALTER COLUMN phone_number TYPE TEXT COLLATE "C",
    ALTER COLUMN group_id TYPE TEXT COLLATE "C",
    ALTER COLUMN first_message_id TYPE TEXT COLLATE "C";
ALTER TABLE delivery_attempts ALTER COLUMN message_id TYPE TEXT COLLATE "C";
ALTER TABLE delivery_jobs
    ALTER COLUMN message_id TYPE TEXT COLLATE "C",
    ALTER COLUMN channel_id TYPE TEXT COLLATE "C";
ALTER TABLE groups
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN account_id TYPE TEXT COLLATE "C";
ALTER TABLE idempotency_keys
    ALTER COLUMN scope TYPE TEXT COLLATE "C",
    ALTER COLUMN key TYPE TEXT COLLATE "C";
ALTER TABLE inbound_messages
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN account_id TYPE TEXT COLLATE "C",
    ALTER COLUMN channel_id TYPE TEXT COLLATE "C",
    ALTER COLUMN conversation_id TYPE TEXT COLLATE "C",
    ALTER COLUMN provider_message_id TYPE TEXT COLLATE "C";
ALTER TABLE messages
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN account_id TYPE TEXT COLLATE "C",
    ALTER COLUMN channel_id TYPE TEXT COLLATE "C",
    ALTER COLUMN conversation_id TYPE TEXT COLLATE "C",
    ALTER COLUMN template_id TYPE TEXT COLLATE "C",
    ALTER COLUMN phone_number TYPE TEXT COLLATE "C",
    ALTER COLUMN provider_message_id TYPE TEXT COLLATE "C",
    ALTER COLUMN batch_id TYPE TEXT COLLATE "C";
ALTER TABLE pending_statuses
    ALTER COLUMN provider_message_id TYPE TEXT COLLATE "C",
    ALTER COLUMN message_id TYPE TEXT COLLATE "C";
ALTER TABLE recipient_starts
    ALTER COLUMN channel_id TYPE TEXT COLLATE "C",
    ALTER COLUMN phone_number TYPE TEXT COLLATE "C",
    ALTER COLUMN message_id TYPE TEXT COLLATE "C";
ALTER TABLE suppressions
    ALTER COLUMN account_id TYPE TEXT COLLATE "C",
    ALTER COLUMN phone_number TYPE TEXT COLLATE "C",
    ALTER COLUMN channel_id TYPE TEXT COLLATE "C";
ALTER TABLE template_health ALTER COLUMN template_id TYPE TEXT COLLATE "C";
ALTER TABLE templates
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN account_id TYPE TEXT COLLATE "C";
ALTER TABLE webhook_endpoints
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN account_id TYPE TEXT COLLATE "C";
