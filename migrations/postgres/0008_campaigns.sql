-- Campaigns (issue 17): scheduled sends, cancel, batch pause, quiet hours, messaging limit.

-- A scheduled message's time (its delivery job's `run_at` holds it back until then); a held
-- message's release time and why (`quiet-hours` or `messaging-limit`); a cancelled one's time.
ALTER TABLE messages ADD COLUMN scheduled_for BIGINT;
ALTER TABLE messages ADD COLUMN held_until BIGINT;
ALTER TABLE messages ADD COLUMN held_reason TEXT;
ALTER TABLE messages ADD COLUMN cancelled_at BIGINT;

-- A paused batch's jobs are not claimed until it resumes.
ALTER TABLE delivery_jobs ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
-- The claim's index holds only jobs that are not paused: a paused batch of 10,000 at the head
-- of a channel's queue is not walked over on every dispatcher pass.
DROP INDEX delivery_jobs_due;
CREATE INDEX delivery_jobs_due ON delivery_jobs(channel_id, run_at, seq) WHERE paused = 0;
ALTER TABLE batches ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;

-- Quiet hours of an account: minutes after local midnight (in the recipient's time zone) at
-- which the window starts and ends; NULL when off.
ALTER TABLE accounts ADD COLUMN quiet_start BIGINT;
ALTER TABLE accounts ADD COLUMN quiet_end BIGINT;

-- A channel's messaging limit (unique recipients of new business-initiated conversations per
-- rolling 24 h); NULL when unlimited.
ALTER TABLE channels ADD COLUMN messaging_limit BIGINT;

-- The recipients a channel started conversations with lately (the messaging limit's count).
CREATE INDEX messages_channel_sending ON messages(channel_id, sending_at);
