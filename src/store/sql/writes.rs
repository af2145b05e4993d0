//! The steps of the hot writes that both engines take alike (events queued, idempotency keys, attempts recorded), run inside the engine's own transaction.
//!
//! The hot writes themselves (sends, claims, outcomes, statuses, cancels) stay in `sqlite.rs`
//! and `postgres.rs`: SQLite decides them behind its one writer and commits them in groups,
//! PostgreSQL locks job → message → conversation, claims with `SKIP LOCKED`, wakes the other
//! instances with `pg_notify` and writes a send in one statement. The statements they share
//! are written here once, as methods of [`Db`] that the backends call on their transaction
//! (`Db::SqliteConn(tx)`, `Db::PostgresConn(tx)`): each runs the statement its backend ran,
//! and no more of them. The few hot writes that are the same statements on both engines from
//! beginning to end are [`Shared`] methods.

use anyhow::Context;

use super::{Cols, Db, Mapped, Shared, sql};
use crate::domain::callback::EventType;
use crate::domain::status::{CloseReason, ConversationStatus, MessageStatus};
use crate::store::lookups::Lookups;
use crate::store::{
    AcceptOutcome, AcceptSend, AttemptOutcome, AttemptResult, IdempotencyKey, Message, OutboxEvent,
    ProviderError, StatusUpdate, StoreResult, conversation_event, message_event, receivers,
};

impl Db<'_> {
    /// Writes `events` to the outbox, in the caller's transaction, once per receiver: each of
    /// the account's endpoints subscribed to the event's type, and the message's
    /// `callbackUrl`. Endpoints come from the lookups' copy, at most a second old (most
    /// accounts have none, and a status then costs no statement here); a row for an endpoint
    /// is inserted only if the endpoint still exists. On PostgreSQL endpoints are read
    /// without a lock and outbox rows only inserted: this adds no lock to the caller's order.
    pub(crate) async fn queue_events(
        &mut self,
        lookups: &Lookups,
        account_id: &str,
        events: &[OutboxEvent],
    ) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let endpoints = self.endpoints(lookups, account_id).await?;
        self.queue_events_to(lookups, account_id, &endpoints, events)
            .await
    }

    /// The account's webhook endpoints as (id, url, event types JSON), from the lookups' copy.
    async fn endpoints(
        &mut self,
        lookups: &Lookups,
        account_id: &str,
    ) -> StoreResult<Vec<(String, String, String)>> {
        lookups
            .endpoints
            .get_or(lookups, account_id, async {
                self.all(
                    sql(
                        "SELECT id, url, event_types FROM webhook_endpoints WHERE account_id = $1
                         ORDER BY created_at, id",
                    )
                    .bind(account_id),
                )
                .await?
                .mapped(|r| Ok((r.get("id")?, r.get("url")?, r.get("event_types")?)))
            })
            .await
    }

    /// [`Db::queue_events`] to `endpoints`, the account's.
    async fn queue_events_to(
        &mut self,
        lookups: &Lookups,
        account_id: &str,
        endpoints: &[(String, String, String)],
        events: &[OutboxEvent],
    ) -> StoreResult<()> {
        let now = crate::now_ms();
        for event in events {
            for (endpoint_id, url) in receivers(endpoints, event) {
                lookups.outbox_queued();
                let id = crate::domain::ids::new_id("evt");
                self.run(
                    sql(
                        "INSERT INTO callback_outbox (id, account_id, endpoint_id, url,
                            ordering_key, message_id, event_type, payload, next_attempt_at,
                            created_at)
                         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10
                         WHERE $3 = '' OR EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = $3)",
                    )
                    .bind(&id)
                    .bind(account_id)
                    .bind(&endpoint_id)
                    .bind(&url)
                    .bind(&event.ordering_key)
                    .bind(&event.message_id)
                    .bind(event.event_type.as_str())
                    .bind(&event.payload)
                    .bind(now)
                    .bind(now),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Queues the event of `message` moving to `status` (none for a status without one).
    pub(crate) async fn queue_message_event(
        &mut self,
        lookups: &Lookups,
        message: &Message,
        status: MessageStatus,
        error: Option<&ProviderError>,
        at: i64,
    ) -> StoreResult<()> {
        let Some(event_type) = EventType::of_message(status) else {
            return Ok(());
        };
        let endpoints = self.endpoints(lookups, &message.account_id).await?;
        // Most messages have no receiver: their event is not even built (issue 13).
        if !has_receiver(&endpoints, event_type, message.callback_url.as_deref()) {
            return Ok(());
        }
        let event = message_event(message, status, error, at);
        self.queue_events_to(lookups, &message.account_id, &endpoints, event.as_slice())
            .await
    }

    /// Queues the event of `message`'s conversation moving to `status`; answers the move, for
    /// the caller to return.
    pub(crate) async fn queue_conversation_event(
        &mut self,
        lookups: &Lookups,
        message: &Message,
        status: ConversationStatus,
        close_reason: Option<&str>,
        now: i64,
    ) -> StoreResult<Option<(String, ConversationStatus)>> {
        let Some(event_type) = EventType::of_conversation(status) else {
            return Ok(Some((message.conversation_id.clone(), status)));
        };
        let endpoints = self.endpoints(lookups, &message.account_id).await?;
        if !has_receiver(&endpoints, event_type, message.callback_url.as_deref()) {
            return Ok(Some((message.conversation_id.clone(), status)));
        }
        let event = conversation_event(
            &message.conversation_id,
            &message.channel_id,
            &message.phone_number,
            status,
            close_reason,
            Some(message),
            now,
        );
        self.queue_events_to(lookups, &message.account_id, &endpoints, event.as_slice())
            .await?;
        Ok(Some((message.conversation_id.clone(), status)))
    }

    /// The account's callback secret, created the first time it is needed (on PostgreSQL the
    /// account's row is locked only then).
    pub(crate) async fn account_callback_secret(
        &mut self,
        account_id: &str,
    ) -> StoreResult<Option<String>> {
        const SECRET: &str = "SELECT callback_secret FROM accounts WHERE id = $1";
        let read = |r: Option<super::Row>| -> StoreResult<Option<String>> {
            Ok(r.map(|r| r.get::<Option<String>>("callback_secret"))
                .transpose()?
                .flatten())
        };
        let secret = read(self.opt(sql(SECRET).bind(account_id)).await?)?;
        if secret.is_some() {
            return Ok(secret);
        }
        let new = crate::domain::callback::new_signing_secret();
        self.run(
            sql("UPDATE accounts SET callback_secret = $1 WHERE id = $2 AND callback_secret IS NULL")
                .bind(&new)
                .bind(account_id),
        )
        .await?;
        read(self.opt(sql(SECRET).bind(account_id)).await?)
    }

    /// Records how an attempt ended.
    pub(crate) async fn record_attempt(
        &mut self,
        message_id: &str,
        attempt: i64,
        now: i64,
        outcome: &str,
        error: Option<&ProviderError>,
    ) -> StoreResult<()> {
        self.run(
            sql(
                "INSERT INTO delivery_attempts (message_id, attempt, finished_at, outcome,
                    error_code, error_title, error_details) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(message_id)
            .bind(attempt)
            .bind(now)
            .bind(outcome)
            .bind(error.map(|e| e.code))
            .bind(error.map(|e| e.title.as_str()))
            .bind(error.and_then(|e| e.details.as_deref())),
        )
        .await?;
        Ok(())
    }

    /// An attempt to retry at `run_at` (`requeue`: without counting it): the job is due
    /// again, the message back to `queued` with the error, and the attempt recorded. The
    /// caller has checked the job is still at this attempt.
    pub(crate) async fn retry_attempt(
        &mut self,
        message_id: &str,
        attempt: i64,
        now: i64,
        run_at: i64,
        error: &ProviderError,
        requeue: bool,
    ) -> StoreResult<()> {
        self.run(
            sql("UPDATE delivery_jobs SET run_at = $1, lease_until = NULL,
                    tries = tries - $2 WHERE message_id = $3")
            .bind(run_at)
            .bind(i64::from(requeue))
            .bind(message_id),
        )
        .await?;
        self.run(
            sql(
                "UPDATE messages SET status = CASE WHEN status = 'sending' THEN 'queued'
                        ELSE status END,
                    attempts = attempts - $1,
                    error_code = $2, error_title = $3, error_details = $4, updated_at = $5
                 WHERE id = $6",
            )
            .bind(i64::from(requeue))
            .bind(error.code)
            .bind(&error.title)
            .bind(&error.details)
            .bind(now)
            .bind(message_id),
        )
        .await?;
        let outcome = if requeue { "requeued" } else { "retry" };
        self.record_attempt(message_id, attempt, now, outcome, Some(error))
            .await
    }

    /// Marks a message failed with `error` (its job, event and conversation are the
    /// caller's).
    pub(crate) async fn mark_failed(
        &mut self,
        message_id: &str,
        error: &ProviderError,
        now: i64,
    ) -> StoreResult<()> {
        self.run(
            sql(
                "UPDATE messages SET status = 'failed', failed_at = $1, updated_at = $1,
                    error_code = $2, error_title = $3, error_details = $4
                 WHERE id = $5",
            )
            .bind(now)
            .bind(error.code)
            .bind(&error.title)
            .bind(&error.details)
            .bind(message_id),
        )
        .await?;
        Ok(())
    }

    /// Deletes a message's job, whoever holds it (the message is failed, or the provider
    /// has it).
    pub(crate) async fn end_job(&mut self, message_id: &str) -> StoreResult<()> {
        self.run(sql("DELETE FROM delivery_jobs WHERE message_id = $1").bind(message_id))
            .await?;
        Ok(())
    }

    /// Deletes a message's job if no dispatcher holds it (a cancel); whether it did.
    pub(crate) async fn take_free_job(&mut self, message_id: &str) -> StoreResult<bool> {
        let taken = self
            .run(
                sql("DELETE FROM delivery_jobs WHERE message_id = $1 AND lease_until IS NULL")
                    .bind(message_id),
            )
            .await?;
        Ok(taken > 0)
    }

    /// Closes an open conversation whose 24 hours are over (a send then starts a new one).
    pub(crate) async fn close_expired(
        &mut self,
        conversation_id: &str,
        now: i64,
    ) -> StoreResult<()> {
        self.run(
            sql("UPDATE conversations SET status = 'closed', closed_at = $1,
                    close_reason = 'expired'
                 WHERE id = $2")
            .bind(now)
            .bind(conversation_id),
        )
        .await?;
        Ok(())
    }

    /// Forgets `idem` if it has expired, so its next use counts as a first.
    pub(crate) async fn forget_expired_key(
        &mut self,
        idem: &IdempotencyKey,
        now: i64,
    ) -> StoreResult<()> {
        self.run(
            sql("DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND expires_at <= $3")
                .bind(&idem.scope)
                .bind(&idem.key)
                .bind(now),
        )
        .await?;
        Ok(())
    }

    /// What an idempotency key was stored with: (fingerprint, outcome).
    pub(crate) async fn stored_key(
        &mut self,
        idem: &IdempotencyKey,
    ) -> StoreResult<Option<(String, String)>> {
        self.opt(
            sql("SELECT fingerprint, outcome FROM idempotency_keys WHERE scope = $1 AND key = $2")
                .bind(&idem.scope)
                .bind(&idem.key),
        )
        .await?
        .map(|r| Ok((r.get("fingerprint")?, r.get("outcome")?)))
        .transpose()
    }

    /// What an idempotency key was stored with (fingerprint, outcome), once an expired one
    /// is forgotten.
    pub(crate) async fn earlier_use(
        &mut self,
        idem: &IdempotencyKey,
        now: i64,
    ) -> StoreResult<Option<(String, String)>> {
        self.forget_expired_key(idem, now).await?;
        self.stored_key(idem).await
    }

    /// Stores a key's first use with `outcome`.
    pub(crate) async fn remember_key(
        &mut self,
        idem: &IdempotencyKey,
        outcome: &str,
        now: i64,
    ) -> StoreResult<()> {
        self.run(
            sql(
                "INSERT INTO idempotency_keys (scope, key, fingerprint, outcome, created_at,
                    expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&idem.scope)
            .bind(&idem.key)
            .bind(&idem.fingerprint)
            .bind(outcome)
            .bind(now)
            .bind(idem.expires_at),
        )
        .await?;
        Ok(())
    }

    /// A send's idempotency key, before it is decided: the earlier outcome when the key was
    /// used already (or `KeyReused`), else the key is remembered, to be given the outcome by
    /// [`Db::keep_outcome`].
    pub(crate) async fn replay_or_remember(
        &mut self,
        idem: &IdempotencyKey,
        now: i64,
    ) -> StoreResult<Option<AcceptOutcome>> {
        if let Some((fingerprint, outcome)) = self.earlier_use(idem, now).await? {
            return crate::store::replay(&idem.fingerprint, &fingerprint, &outcome).map(Some);
        }
        self.remember_key(idem, "{}", now).await?;
        Ok(None)
    }

    /// Gives a key remembered by [`Db::replay_or_remember`] its send's outcome.
    pub(crate) async fn keep_outcome(
        &mut self,
        idem: &IdempotencyKey,
        outcome: &AcceptOutcome,
    ) -> StoreResult<()> {
        let outcome = serde_json::to_string(outcome).context("outcome")?;
        self.run(
            sql("UPDATE idempotency_keys SET outcome = $1 WHERE scope = $2 AND key = $3")
                .bind(&outcome)
                .bind(&idem.scope)
                .bind(&idem.key),
        )
        .await?;
        Ok(())
    }

    /// Takes (deletes) the kept statuses of a message, by provider id or plantilla id,
    /// oldest first.
    pub(crate) async fn take_pending(
        &mut self,
        provider_message_id: &str,
        message_id: &str,
    ) -> StoreResult<Vec<StatusUpdate>> {
        let rows = self
            .all(
                sql(
                    "DELETE FROM pending_statuses WHERE provider_message_id = $1 OR message_id = $2
                     RETURNING *",
                )
                .bind(provider_message_id)
                .bind(message_id),
            )
            .await?;
        super::pending_in_order(&rows)
    }
}

impl Shared {
    pub(crate) async fn hold_job(
        &self,
        message_id: &str,
        attempt: i64,
        until: i64,
        reason: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let mut db = tx.db();
        let held = db
            .run(
                sql(
                    "UPDATE delivery_jobs SET run_at = $1, lease_until = NULL, tries = tries - 1
                     WHERE message_id = $2 AND attempt = $3",
                )
                .bind(until)
                .bind(message_id)
                .bind(attempt),
            )
            .await?
            > 0;
        if held {
            if db.is_postgres() {
                // The conversation this message started (if it is a first message) no longer
                // counts against the messaging limit: its `sending_at` is cleared below.
                db.run(
                    sql("DELETE FROM recipient_starts r USING messages m
                         WHERE m.id = $1 AND r.channel_id = m.channel_id
                           AND r.started_at = m.sending_at AND r.message_id = m.id")
                    .bind(message_id),
                )
                .await?;
            }
            db.run(
                sql(
                    "UPDATE messages SET status = CASE WHEN status = 'sending' THEN 'queued'
                            ELSE status END,
                        attempts = attempts - 1, sending_at = NULL, held_until = $1,
                        held_reason = $2, updated_at = $3
                     WHERE id = $4",
                )
                .bind(until)
                .bind(reason)
                .bind(now)
                .bind(message_id),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(held)
    }

    pub(crate) async fn requeue_declined(
        &self,
        message_id: &str,
        channel_id: Option<&str>,
        error: &ProviderError,
        run_at: i64,
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let mut db = tx.db();
        let text = format!(
            "UPDATE messages SET status = 'queued', provider_message_id = NULL, sent_at = NULL,
                error_code = $1, error_title = $2, error_details = $3, updated_at = $4
             WHERE id = $5 AND status IN ('sending', 'sent')
               AND ({} IS NULL OR channel_id = $6)
             RETURNING channel_id, attempts",
            db.pick("$6", "$6::text")
        );
        let row = db
            .opt(
                sql(text)
                    .bind(error.code)
                    .bind(&error.title)
                    .bind(&error.details)
                    .bind(now)
                    .bind(message_id)
                    .bind(channel_id),
            )
            .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let channel: String = row.get("channel_id")?;
        let attempts: i64 = row.get("attempts")?;
        db.run(
            sql(
                "INSERT INTO delivery_jobs (message_id, channel_id, run_at, attempt, tries)
                 VALUES ($1, $2, $3, $4, $4)",
            )
            .bind(message_id)
            .bind(&channel)
            .bind(run_at)
            .bind(attempts),
        )
        .await?;
        db.run(
            sql(
                "INSERT INTO delivery_attempts (message_id, attempt, finished_at, outcome,
                    error_code, error_title, error_details) VALUES ($1, $2, $3, 'retry', $4, $5, $6)",
            )
            .bind(message_id)
            .bind(attempts)
            .bind(now)
            .bind(error.code)
            .bind(&error.title)
            .bind(&error.details),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(crate) async fn due_channels(
        &self,
        now: i64,
        orphan_wait_ms: i64,
    ) -> StoreResult<Vec<String>> {
        // Due, and not leased or leased by a dispatcher that died more than the wait ago; on
        // a channel that can send. Per channel, so a long queue is not read on every pass:
        // the index walk stops at the first due job.
        self.read()
            .all(
                sql("SELECT c.id FROM channels c
                     WHERE c.status = 'connected' AND c.health = 'ok' AND EXISTS (
                        SELECT 1 FROM delivery_jobs j WHERE j.channel_id = c.id AND j.run_at <= $1
                          AND (j.lease_until IS NULL OR j.lease_until + $2 <= $1)
                          AND j.paused = 0)")
                .bind(now)
                .bind(orphan_wait_ms),
            )
            .await?
            .mapped(|r| r.get("id"))
    }

    pub(crate) async fn next_due(&self, orphan_wait_ms: i64) -> StoreResult<Option<i64>> {
        // The first unleased job of each channel, and the leases (few: the sends in flight).
        let mut db = self.read();
        let text = format!(
            "SELECT min(t) AS t FROM (
                SELECT (SELECT j.run_at FROM delivery_jobs j
                        WHERE j.channel_id = c.id AND j.lease_until IS NULL AND j.paused = 0
                        ORDER BY j.run_at LIMIT 1) AS t
                FROM channels c WHERE c.status = 'connected' AND c.health = 'ok'
                UNION ALL
                SELECT {}(j.run_at, j.lease_until + $1) FROM delivery_jobs j
                JOIN channels c ON c.id = j.channel_id AND c.status = 'connected'
                    AND c.health = 'ok'
                WHERE j.lease_until IS NOT NULL){}",
            db.pick("max", "GREATEST"),
            db.pick("", " due")
        );
        db.one(sql(text).bind(orphan_wait_ms)).await?.get("t")
    }

    pub(crate) async fn own_channel(
        &self,
        channel_id: &str,
        owner: &str,
        now: i64,
        ttl_ms: i64,
    ) -> StoreResult<bool> {
        let row = self
            .write()
            .opt(
                sql(
                    "INSERT INTO channel_owners (channel_id, owner, until) VALUES ($1, $2, $3 + $4)
                     ON CONFLICT (channel_id) DO UPDATE
                     SET owner = excluded.owner, until = excluded.until
                     WHERE channel_owners.owner = excluded.owner OR channel_owners.until <= $3
                     RETURNING owner",
                )
                .bind(channel_id)
                .bind(owner)
                .bind(now)
                .bind(ttl_ms),
            )
            .await?;
        Ok(row.is_some())
    }

    pub(crate) async fn release_channels(&self, owner: &str) -> StoreResult<()> {
        self.write()
            .run(sql("DELETE FROM channel_owners WHERE owner = $1").bind(owner))
            .await?;
        Ok(())
    }
}

/// The statement that records an accepted send's provider ids on its message (`$1` the
/// wamid, `$2` the WhatsApp id, `$3` now, `$4` the message id), as a literal so that
/// PostgreSQL's outcome can embed it in its one statement (`concat!`).
macro_rules! record_accepted_sql {
    () => {
        "UPDATE messages SET provider_message_id = coalesce(provider_message_id, $1),
            wa_id = coalesce(wa_id, $2), updated_at = $3,
            -- A success clears the last retry's error, unless a status webhook
            -- that outran this response already failed the message.
            error_code = CASE WHEN status = 'failed' THEN error_code END,
            error_title = CASE WHEN status = 'failed' THEN error_title END,
            error_details = CASE WHEN status = 'failed' THEN error_details END
         WHERE id = $4"
    };
}
pub(crate) use record_accepted_sql;

/// A transaction of either engine, as the [`Db`] its shared steps run on.
pub(crate) trait InTx {
    fn db(&mut self) -> Db<'_>;
}

impl InTx for sqlx::Transaction<'_, sqlx::Sqlite> {
    fn db(&mut self) -> Db<'_> {
        Db::SqliteConn(self)
    }
}

/// A place a step already runs on (SQLite's group writer hands its steps a `Db`).
impl InTx for Db<'_> {
    fn db(&mut self) -> Db<'_> {
        self.reborrow()
    }
}

impl InTx for sqlx::Transaction<'_, sqlx::Postgres> {
    fn db(&mut self) -> Db<'_> {
        Db::PostgresConn(self)
    }
}

/// One send's decision inside the caller's transaction (see `Store::accept_send`): a send
/// whose idempotency key was seen before replays that outcome; else `decide` (the engine's
/// own statements) decides it, and the key keeps the outcome.
pub(crate) async fn accept_with<T: InTx>(
    tx: &mut T,
    send: &AcceptSend,
    decide: impl AsyncFnOnce(&mut T, &AcceptSend) -> StoreResult<AcceptOutcome>,
) -> StoreResult<AcceptOutcome> {
    if let Some(idem) = &send.idempotency
        && let Some(replayed) = tx.db().replay_or_remember(idem, send.now).await?
    {
        return Ok(replayed);
    }
    let outcome = decide(tx, send).await?;
    if let Some(idem) = &send.idempotency {
        tx.db().keep_outcome(idem, &outcome).await?;
    }
    Ok(outcome)
}

/// `op` for each of `items` inside the caller's transaction, each in a savepoint of its
/// own: one item's failure (its savepoint rolled back) leaves the others standing.
pub(crate) async fn each_in_savepoint<DB: sqlx::Database, I, T>(
    tx: &mut sqlx::Transaction<'_, DB>,
    items: &[I],
    mut op: impl AsyncFnMut(&mut sqlx::Transaction<'_, DB>, &I) -> StoreResult<T>,
) -> StoreResult<Vec<StoreResult<T>>> {
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        let mut one = sqlx::Acquire::begin(&mut *tx).await?;
        match op(&mut one, item).await {
            Ok(done) => {
                one.commit().await?;
                results.push(Ok(done));
            }
            Err(e) => {
                one.rollback().await?;
                results.push(Err(e));
            }
        }
    }
    Ok(results)
}

/// The jobs a claim's `RETURNING seq, message_id, attempt, tries` leased, as
/// `(seq, message_id, attempt, tries)` in queue order.
pub(crate) fn claimed_jobs(rows: &[impl Cols]) -> StoreResult<Vec<(i64, String, i64, i64)>> {
    let mut claimed = rows
        .iter()
        .map(|r| {
            Ok((
                r.get("seq")?,
                r.get("message_id")?,
                r.get("attempt")?,
                r.get("tries")?,
            ))
        })
        .collect::<StoreResult<Vec<_>>>()?;
    claimed.sort_by_key(|(seq, ..)| *seq);
    Ok(claimed)
}

/// A message a batch's cancel cancelled, with its conversation as read in the same
/// transaction: whether it was pending, and the message that created it.
pub(crate) struct Cancelled {
    pub(crate) message: Message,
    pub(crate) pending: bool,
    pub(crate) first_message_id: Option<String>,
}

impl Cancelled {
    /// From a cancelled message's row with the columns `conversation_pending` and
    /// `conversation_first_message_id`.
    pub(crate) fn from_row(r: &impl Cols) -> StoreResult<Self> {
        Ok(Self {
            message: Message::from_row(r)?,
            pending: r.flag("conversation_pending")?,
            first_message_id: r.get("conversation_first_message_id")?,
        })
    }
}

/// An event to queue: `(account, event, conversation whose move it reports)`.
pub(crate) type QueuedEvent = (String, OutboxEvent, Option<String>);

/// The move of a conversation a cancel closes: `(index in the cancelled, next status, its
/// reason, whether it holds only for the conversation's first message)`.
pub(crate) type CancelMove = (usize, ConversationStatus, Option<CloseReason>, bool);

/// What cancelling each of `cancelled` (in order) queues and moves besides the message, as a
/// cancel of one message does (`conversation_follows`): the message's event; then, when its
/// conversation was pending and the message created it, the conversation's move and its
/// event. The events are `(account, event, conversation whose move it reports)`, in the order
/// they are queued.
pub(crate) fn cancels_follow(
    cancelled: &[Cancelled],
    now: i64,
) -> (Vec<QueuedEvent>, Vec<CancelMove>) {
    let status = MessageStatus::Cancelled;
    let follows = ConversationStatus::Pending
        .on_message_status(status, true)
        .filter(|(next, _)| *next != ConversationStatus::Pending);
    let first_only = ConversationStatus::Pending
        .on_message_status(status, false)
        .is_none();
    let mut events = Vec::new();
    let mut moves = Vec::new();
    for (index, c) in cancelled.iter().enumerate() {
        let m = &c.message;
        if let Some(event) = message_event(m, status, None, now) {
            events.push((m.account_id.clone(), event, None));
        }
        let Some((next, reason)) = follows else {
            continue;
        };
        if !c.pending || (first_only && c.first_message_id.as_deref() != Some(m.id.as_str())) {
            continue;
        }
        let (conversation, reason_text) = (&m.conversation_id, reason.map(CloseReason::as_str));
        let event = conversation_event(
            conversation,
            &m.channel_id,
            &m.phone_number,
            next,
            reason_text,
            Some(m),
            now,
        );
        if let Some(event) = event {
            events.push((m.account_id.clone(), event, Some(conversation.clone())));
        }
        moves.push((index, next, reason, first_only));
    }
    (events, moves)
}

/// Whether a delivery outcome is stale and writes nothing, `current` being the attempt of
/// the message's job (`None`: the job is gone). A success is stale only when another attempt
/// holds the job: a status webhook that outran the response may have ended it, and the
/// provider ids are still ours to record. Any other outcome is stale unless the job is at
/// its attempt.
pub(crate) fn outcome_is_stale(o: &AttemptOutcome, current: Option<i64>) -> bool {
    match o.result {
        AttemptResult::Accepted { .. } => current.is_some_and(|a| a != o.attempt),
        _ => current != Some(o.attempt),
    }
}

/// Whether an event of `event_type` has a receiver: one of `endpoints` subscribed to its type
/// or the message's `callback_url` (as [`receivers`] picks them).
fn has_receiver(
    endpoints: &[(String, String, String)],
    event_type: EventType,
    callback_url: Option<&str>,
) -> bool {
    callback_url.is_some()
        || endpoints.iter().any(|(_, _, types)| {
            serde_json::from_str::<Vec<String>>(types)
                .is_ok_and(|t| t.iter().any(|t| t == event_type.as_str()))
        })
}
