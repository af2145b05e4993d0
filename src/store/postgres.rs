//! PostgreSQL implementation of [`Store`].
//!
//! Several `plantilla` instances may share one database, so nothing here relies on a single
//! writer (as `sqlite` does). Every decision is one short transaction in READ COMMITTED that
//! locks what it decides on:
//!
//! - `accept_send` locks the number's active conversation and the account's
//!   usage counter row (the plan limit); a concurrent creation of the same active conversation
//!   is stopped by the partial unique index `conversations_one_active` and reported as
//!   [`StoreError::Conflict`], which the send service retries once. A send to a number with no
//!   active conversation is one statement in no transaction: the counter row is held only
//!   while that statement and its commit run, since every new conversation of the account
//!   waits for it. Concurrent sends without an idempotency key are committed in groups
//!   (`sends`): a group locks its numbers' active conversations (in id order), then the
//!   counters (in (account, period) order), then the contacts (in (account, number) order).
//! - `insert_webhook_endpoint` with an idempotency key inserts the key first, `ON CONFLICT DO
//!   NOTHING`: a concurrent creation with the same key waits on the key's primary key until
//!   the first commits, then answers what the first created. It locks nothing else.
//! - `claim_jobs` picks jobs with `FOR UPDATE SKIP LOCKED`, so two dispatchers never claim
//!   the same job.
//! - `finish_attempt` and `apply_status` lock the job, then the message, then the
//!   conversation. Every method that locks more than one of these takes them in that order
//!   (job → message → conversation; conversation → usage counter → contact), so they cannot
//!   deadlock with one another. `apply_statuses` (a webhook's statuses in one transaction,
//!   `apply_group`) first locks all its jobs, then all its messages, then their pending
//!   conversations, each kind in id order. Concurrent outcomes are committed in groups
//!   (`outcomes`): a group locks all its jobs first (in `seq` order, as claims do), then
//!   messages, then conversations. `cancel_batch` cancels a batch in chunks, each in one
//!   transaction that locks the chunk's jobs no dispatcher holds (in `seq` order, as claims
//!   do), then their messages, then the pending conversations they created, these two in id
//!   order (`cancel_group`).
//!
//! - Status callbacks add no lock to that order. The transactions that change a message or a
//!   conversation (and `set_template_status`, which locks the template's row alone) insert
//!   outbox rows and read webhook endpoints without locking them. The delivery worker locks
//!   only outbox rows (`claim_callbacks` with `FOR UPDATE SKIP LOCKED`; `finish_callback` the
//!   delivery, then the later ones of its stream when it is retried, which no claim takes
//!   while it is pending), and the account's row when it creates the account's callback secret;
//!   `delete_webhook_endpoint` locks the endpoint, then its outbox rows. None of them waits
//!   for a lock the sending path holds, so a slow receiver cannot hold up a send.
//!
//! Conversations and messages are locked `FOR NO KEY UPDATE`, not `FOR UPDATE`: their keys
//! never change and they are never deleted, and the stronger lock would conflict with the
//! `FOR KEY SHARE` lock PostgreSQL's foreign-key checks take on them (a transaction that
//! updates a message twice re-checks its `conversation_id`), which deadlocks two status
//! updates of one conversation. Jobs, which are deleted, are locked `FOR UPDATE`.

use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, Executor, Postgres, Row, Transaction};

use super::lookups::Lookups;

use super::sql::{
    Cancelled, Db, Tx, accept_with, cancels_follow, claimed_jobs, each_in_savepoint, sql,
};
use super::*;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

mod analyze;
mod outcomes;
mod sends;
pub use outcomes::OutcomeGroupStats;
pub use sends::SendGroupStats;

/// Embedded migrations, applied in order on open. Never edit one that has shipped: add a new one.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "channel_owners",
        include_str!("../../migrations/postgres/0002_channel_owners.sql"),
    ),
    (
        3,
        "native_api",
        include_str!("../../migrations/postgres/0003_native_api.sql"),
    ),
    (
        4,
        "callbacks",
        include_str!("../../migrations/postgres/0004_callbacks.sql"),
    ),
    (
        5,
        "leased_jobs",
        include_str!("../../migrations/postgres/0005_leased_jobs.sql"),
    ),
    (
        6,
        "template_extra",
        include_str!("../../migrations/postgres/0006_template_extra.sql"),
    ),
    (
        7,
        "pending_once",
        include_str!("../../migrations/postgres/0007_pending_once.sql"),
    ),
    (
        8,
        "campaigns",
        include_str!("../../migrations/postgres/0008_campaigns.sql"),
    ),
    (
        9,
        "console",
        include_str!("../../migrations/postgres/0009_console.sql"),
    ),
    (
        10,
        "inbound",
        include_str!("../../migrations/postgres/0010_inbound.sql"),
    ),
    (
        11,
        "suppressions",
        include_str!("../../migrations/postgres/0011_suppressions.sql"),
    ),
    (
        12,
        "health",
        include_str!("../../migrations/postgres/0012_health.sql"),
    ),
    (
        13,
        "hot_message_updates",
        include_str!("../../migrations/postgres/0013_hot_message_updates.sql"),
    ),
    (
        14,
        "hot_claims",
        include_str!("../../migrations/postgres/0014_hot_claims.sql"),
    ),
    (
        15,
        "ids_collate_c",
        include_str!("../../migrations/postgres/0015_ids_collate_c.sql"),
    ),
    (
        16,
        "hot_conversation_open",
        include_str!("../../migrations/postgres/0016_hot_conversation_open.sql"),
    ),
    (
        17,
        "message_wamids",
        include_str!("../../migrations/postgres/0017_message_wamids.sql"),
    ),
    (
        19,
        "fewer_index_entries",
        include_str!("../../migrations/postgres/0019_fewer_index_entries.sql"),
    ),
];

/// The channel every instance listens on; accepted sends notify it (on commit).
const WORK_CHANNEL: &str = "plantilla_work";

/// Key of the advisory lock that serializes migrations of instances starting together.
const MIGRATION_LOCK: i64 = 0x706c_616e_7469_6c6c; // "plantill"

/// How long `open` waits for PostgreSQL to accept connections.
const STARTUP_WAIT: Duration = Duration::from_secs(30);

pub struct PgStore {
    pool: PgPool,
    lookups: Arc<Lookups>,
    shared: super::sql::Shared,
    /// Delivery outcomes, committed in groups (see `outcomes`).
    outcomes: outcomes::Outcomes,
    /// Sends without an idempotency key, committed in groups (see `sends`).
    sends: sends::Sends,
    /// Stops the task that analyzes grown tables where autovacuum is off (see `analyze`).
    _analyze: Option<tokio_util::sync::DropGuard>,
}

impl PgStore {
    /// One try of [`Store::record_inbound_message`]: `Duplicate` when the wamid is stored
    /// already, or when a concurrent transaction stored it first (this one is rolled back).
    async fn record_inbound_message_once(&self, m: &InboundInsert) -> StoreResult<InboundRecorded> {
        if self
            .shared
            .inbound_seen(&mut Db::Postgres(&self.pool), m)
            .await?
        {
            return Ok(InboundRecorded::Duplicate);
        }
        let mut tx = self.pool.begin().await?;
        let recorded = self
            .shared
            .record_inbound_in(&mut Db::PostgresConn(&mut tx), m)
            .await?;
        let Some((message, reply_to_template_id)) = recorded else {
            tx.rollback().await?;
            return Ok(InboundRecorded::Duplicate);
        };
        self.shared
            .inbound_stored(Tx::Postgres(tx), message, reply_to_template_id)
            .await
    }

    /// Connects (waiting up to 30 s for the server to come up), applies the migrations and
    /// returns a store over a pool of at most `max_connections`.
    pub async fn open(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        // The URL may hold a password: never print it, only host and port.
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| anyhow::anyhow!("invalid PostgreSQL URL: {}", redact(&e.to_string())))?;
        let place = match options.get_socket() {
            Some(socket) => socket.display().to_string(),
            None => format!("{}:{}", options.get_host(), options.get_port()),
        };
        wait_for_server(&options, &place).await?;
        // Every statement is prepared once per connection; a generic plan saves planning it
        // on each execution (about a tenth of the server's CPU per message in the bench).
        // PostgreSQL's default plans each execution with its values until it trusts a generic
        // plan, which it never does for the statements with CTEs. The hot statements look
        // rows up by key, whatever the values; the listings of messages and conversations
        // leave absent filters out of their SQL rather than test them (`$n IS NULL OR …`,
        // which a generic plan cannot use an index for).
        //
        // Random page reads are costed as 1.1 sequential ones rather than 4 (the value
        // commonly given to servers whose data is in memory or on SSDs). The grouped
        // statements look up a few rows of a table by key, and their generic plans guess 10
        // for each array; at the default, a plan made while a table was some tens of pages
        // scanned it whole (a hash join) instead, and kept doing so until its next ANALYZE,
        // four times that size: `delivery_jobs`, a queue whose pages fill with deleted rows
        // where nothing vacuums it, was scanned by every group of outcomes and of statuses.
        // Measured in `plantilla-bench full-cycle-pg`: about 6 % less PostgreSQL CPU per message.
        let options = options.options([
            ("plan_cache_mode", "force_generic_plan"),
            ("random_page_cost", "1.1"),
        ]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL at {place}: {e}"))?;
        migrate(&pool).await?;
        let lookups = Arc::new(Lookups::default());
        let shared =
            super::sql::Shared::new(super::sql::Pools::Postgres(pool.clone()), lookups.clone());
        let outcomes = outcomes::Outcomes::start(pool.clone(), lookups.clone());
        let sends = sends::Sends::start(pool.clone());
        let analyze = analyze::start(pool.clone()).await?;
        Ok(Self {
            pool,
            lookups,
            shared,
            outcomes,
            sends,
            _analyze: analyze,
        })
    }

    /// How delivery outcomes were grouped (for tests and benchmarks).
    pub fn outcome_group_stats(&self) -> &OutcomeGroupStats {
        self.outcomes.stats()
    }

    /// How sends were grouped (for tests and benchmarks).
    pub fn send_group_stats(&self) -> &SendGroupStats {
        self.sends.stats()
    }

    /// Test hook: decides `sends` (none with an idempotency key) as one group, the way
    /// concurrent sends are (no commit is shared with anything else).
    #[doc(hidden)]
    pub async fn accept_group(&self, sends: &[AcceptSend]) -> StoreResult<Vec<AcceptOutcome>> {
        let sends: Vec<&AcceptSend> = sends.iter().collect();
        sends::accept_group(&self.pool, &sends, || false).await
    }

    /// Test hook: writes `outcomes` (one per message) as one group, the way concurrent
    /// outcomes are (no commit is shared with anything else).
    #[doc(hidden)]
    pub async fn finish_group(&self, outcomes: &[AttemptOutcome]) -> StoreResult<Vec<Finished>> {
        let taken = self.finish_group_taking_kept(outcomes, false).await?;
        Ok(taken.into_iter().map(|(finished, _)| finished).collect())
    }

    /// Test hook: [`PgStore::finish_group`], taking the kept statuses of the accepted
    /// outcomes if `take_kept` (as [`Store::finish_and_take_kept`] does).
    #[doc(hidden)]
    pub async fn finish_group_taking_kept(
        &self,
        outcomes: &[AttemptOutcome],
        take_kept: bool,
    ) -> StoreResult<Vec<(Finished, Vec<StatusUpdate>)>> {
        let outcomes: Vec<(&AttemptOutcome, bool)> =
            outcomes.iter().map(|o| (o, take_kept)).collect();
        outcomes::finish_group(&self.pool, &self.lookups, &outcomes, || false)
            .await?
            .into_iter()
            .map(|(finished, kept)| Ok((finished, kept?)))
            .collect()
    }

    /// Seals channel secrets with `cipher` (without one they are stored as given).
    pub fn with_cipher(mut self, cipher: Arc<Cipher>) -> Self {
        self.shared.cipher = cipher;
        self
    }

    /// Test hook: analyzes the tables that have grown since their statistics were taken, as
    /// the store does every second where the server's autovacuum is off; returns their names.
    #[doc(hidden)]
    pub async fn analyze_grown_tables(&self) -> StoreResult<Vec<String>> {
        analyze::analyze_grown(&self.pool).await
    }

    /// The pool, for tests and tools.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Removes anything that looks like a URL's user info from an error text.
fn redact(text: &str) -> String {
    match (text.find("://"), text.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://[redacted]{}", &text[..scheme], &text[at..])
        }
        _ => text.to_string(),
    }
}

/// Whether a connection error may go away by itself (the server is not up yet).
fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => true,
        // 57P03 cannot_connect_now: "the database system is starting up"; 53300 too many
        // connections.
        sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("57P03" | "53300")),
        _ => false,
    }
}

/// Tries to connect until the server answers or `STARTUP_WAIT` has passed.
async fn wait_for_server(options: &PgConnectOptions, place: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut announced: Option<Instant> = None;
    loop {
        let attempt = tokio::time::timeout(
            Duration::from_secs(5),
            sqlx::PgConnection::connect_with(options),
        )
        .await;
        let error = match attempt {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
                return Ok(());
            }
            Ok(Err(e)) if is_transient(&e) => e.to_string(),
            Ok(Err(e)) => {
                anyhow::bail!("cannot connect to PostgreSQL at {place}: {e}");
            }
            Err(_) => "connection attempt timed out".to_string(),
        };
        if started.elapsed() >= STARTUP_WAIT {
            anyhow::bail!(
                "PostgreSQL at {place} did not accept connections within {} s: {error}",
                STARTUP_WAIT.as_secs()
            );
        }
        if announced.is_none_or(|at| at.elapsed() >= Duration::from_secs(5)) {
            tracing::warn!(error, "waiting for PostgreSQL at {place}…");
            announced = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Applies the embedded migrations not applied yet, each in its own transaction under an
/// advisory lock, so instances starting at once apply each migration exactly once.
async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    for (version, name, sql) in MIGRATIONS {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
        let done: Option<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(version)
                .fetch_optional(&mut *tx)
                .await?;
        if done.is_some() {
            continue;
        }
        // Through `Executor` (a boxed future): `RawSql::execute` would make `open`'s future
        // not `Send`.
        (&mut *tx)
            .execute(sqlx::raw_sql(sql))
            .await
            .with_context(|| format!("migration {version} ({name}) failed"))?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(version)
        .bind(name)
        .bind(crate::now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(version, name, "applied migration");
    }
    Ok(())
}

/// A message locked for a status or an outcome (`$1` its id), with whether its conversation
/// is pending (read without the conversation's lock; see [`conversation_follows`]).
const MESSAGE_TO_MOVE: &str = "SELECT m.*, c.status = 'pending' AS conversation_pending
     FROM messages m JOIN conversations c ON c.id = m.conversation_id
     WHERE m.id = $1 FOR NO KEY UPDATE OF m";

/// Applies a status (see `Store::apply_status`) in the caller's transaction, which takes the
/// job, then the message, then the conversation. What it wrote is to be kept only when the
/// status applied (`StatusApplied::Applied`): otherwise the caller rolls it back (a status past
/// `sending` ended the job of a message it then found to be another channel's).
async fn apply_in(
    tx: &mut Transaction<'_, Postgres>,
    lookups: &Lookups,
    u: &StatusUpdate,
) -> StoreResult<StatusApplied> {
    // The message by its wamid, else by our id. Its job is locked first, the order
    // `claim_jobs` and `finish_attempt` take them in; a status past `sending` ends the job
    // (the provider has the message: no dispatcher may send it again), in the same
    // statement. If the status turns out not to apply, the transaction is rolled back.
    let ends_job = u.status != MessageStatus::Queued && u.status != MessageStatus::Sending;
    let id: Option<String> = sqlx::query_scalar(if ends_job {
        "WITH target AS (
            SELECT coalesce((SELECT message_id FROM message_wamids WHERE wamid = $1),
                            (SELECT id FROM messages WHERE id = $2)) AS id),
         gone AS (DELETE FROM delivery_jobs WHERE message_id = (SELECT id FROM target))
         SELECT id FROM target"
    } else {
        "SELECT coalesce((SELECT message_id FROM message_wamids WHERE wamid = $1),
                         (SELECT id FROM messages WHERE id = $2))"
    })
    .bind(&u.provider_message_id)
    .bind(&u.message_id)
    .fetch_one(&mut **tx)
    .await?;
    let Some(id) = id else {
        return Ok(StatusApplied::UnknownMessage);
    };
    if !ends_job {
        sqlx::query("SELECT seq FROM delivery_jobs WHERE message_id = $1 FOR UPDATE")
            .bind(&id)
            .fetch_optional(&mut **tx)
            .await?;
    }
    // Then the message, decided on as it is now: two statuses for one message are applied
    // one after the other.
    let row = sqlx::query(MESSAGE_TO_MOVE)
        .bind(&id)
        .fetch_one(&mut **tx)
        .await?;
    let message = Message::from_row(&row)?;
    let pending: bool = row.try_get("conversation_pending")?;
    if u.channel_id
        .as_ref()
        .is_some_and(|channel| *channel != message.channel_id)
    {
        return Ok(StatusApplied::OtherChannel);
    }
    // The wamid when the message has none yet, the pricing when the status has one: in
    // the status's own update where there is one.
    let learns = (message.provider_message_id.is_none() && u.provider_message_id.is_some())
        || u.pricing_category.is_some()
        || u.pricing.is_some();
    let pricing_type = u.pricing.as_ref().and_then(|p| p.pricing_type.as_deref());
    let pricing_model = u.pricing.as_ref().and_then(|p| p.pricing_model.as_deref());
    let pricing_billable = u.pricing.as_ref().and_then(|p| p.billable);
    let changed = message.status.advances_to(u.status);
    let mut conversation = None;
    let timestamp_only =
        message.status != MessageStatus::Failed && u.status != MessageStatus::Failed;
    if changed && u.status != MessageStatus::Failed {
        sqlx::query(&format!(
            "UPDATE messages SET status = $1, {col} = coalesce({col}, $2), updated_at = $2,
                provider_message_id = coalesce(provider_message_id, $4),
                pricing_category = coalesce($5, pricing_category),
                pricing_type = coalesce($6, pricing_type),
                pricing_model = coalesce($7, pricing_model),
                pricing_billable = coalesce($8, pricing_billable)
             WHERE id = $3",
            col = status_column(u.status)
        ))
        .bind(u.status.as_str())
        .bind(u.at)
        .bind(&message.id)
        .bind(&u.provider_message_id)
        .bind(&u.pricing_category)
        .bind(pricing_type)
        .bind(pricing_model)
        .bind(pricing_billable)
        .execute(&mut **tx)
        .await?;
        Db::PostgresConn(tx)
            .queue_message_event(lookups, &message, u.status, None, u.at)
            .await?;
        conversation = conversation_follows(tx, lookups, &message, u.status, u.at, pending).await?;
    } else if !changed && timestamp_only {
        // A late status keeps its time for the timeline but does not move the status.
        sqlx::query(&format!(
            "UPDATE messages SET {col} = coalesce({col}, $1),
                provider_message_id = coalesce(provider_message_id, $3),
                pricing_category = coalesce($4, pricing_category),
                pricing_type = coalesce($5, pricing_type),
                pricing_model = coalesce($6, pricing_model),
                pricing_billable = coalesce($7, pricing_billable)
             WHERE id = $2",
            col = status_column(u.status)
        ))
        .bind(u.at)
        .bind(&message.id)
        .bind(&u.provider_message_id)
        .bind(&u.pricing_category)
        .bind(pricing_type)
        .bind(pricing_model)
        .bind(pricing_billable)
        .execute(&mut **tx)
        .await?;
    } else {
        if learns {
            sqlx::query(
                "UPDATE messages SET provider_message_id = coalesce(provider_message_id, $1),
                    pricing_category = coalesce($2, pricing_category),
                    pricing_type = coalesce($4, pricing_type),
                    pricing_model = coalesce($5, pricing_model),
                    pricing_billable = coalesce($6, pricing_billable)
                 WHERE id = $3",
            )
            .bind(&u.provider_message_id)
            .bind(&u.pricing_category)
            .bind(&message.id)
            .bind(pricing_type)
            .bind(pricing_model)
            .bind(pricing_billable)
            .execute(&mut **tx)
            .await?;
        }
        if changed {
            let error = u.error.clone().unwrap_or(ProviderError {
                code: 0,
                title: "Failed without an error from the provider".into(),
                details: None,
            });
            conversation = fail_message(tx, lookups, &message, &error, u.at, pending).await?;
        }
    }
    Ok(StatusApplied::Applied {
        status: if changed { u.status } else { message.status },
        message_id: message.id,
        changed,
        conversation,
    })
}

/// Moves a pending conversation along after a status of one of its messages. The caller holds
/// the message's lock; `pending` is whether the conversation was pending when the caller read
/// it (unlocked: a conversation only moves forward, so one read as open or closed stays so).
///
/// Only a pending conversation moves on a message status (see
/// `ConversationStatus::on_message_status`), so the move is one update guarded by
/// `status = 'pending'`: it takes the conversation's lock, and changes nothing when another
/// transaction moved the conversation first.
async fn conversation_follows(
    tx: &mut Transaction<'_, Postgres>,
    lookups: &Lookups,
    message: &Message,
    status: MessageStatus,
    now: i64,
    pending: bool,
) -> StoreResult<Option<(String, ConversationStatus)>> {
    if !pending {
        return Ok(None);
    }
    let Some((next, reason)) = ConversationStatus::Pending.on_message_status(status, true) else {
        return Ok(None);
    };
    // Whether the move holds only for the conversation's first message.
    let first_only = ConversationStatus::Pending
        .on_message_status(status, false)
        .is_none();
    let sql = match next {
        ConversationStatus::Open => {
            "UPDATE conversations SET status = 'open', opened_at = $1, last_activity_at = $1
             WHERE id = $2 AND status = 'pending' AND (NOT $3 OR first_message_id = $4)"
        }
        ConversationStatus::Closed => {
            "UPDATE conversations SET status = 'closed', closed_at = $1, close_reason = $5
             WHERE id = $2 AND status = 'pending' AND (NOT $3 OR first_message_id = $4)"
        }
        ConversationStatus::Pending => return Ok(None),
    };
    let mut query = sqlx::query(sql)
        .bind(now)
        .bind(&message.conversation_id)
        .bind(first_only)
        .bind(&message.id);
    if next == ConversationStatus::Closed {
        query = query.bind(reason.map(CloseReason::as_str));
    }
    let moved = query.execute(&mut **tx).await?.rows_affected() == 1;
    if !moved {
        return Ok(None);
    }
    Db::PostgresConn(tx)
        .queue_conversation_event(lookups, message, next, reason.map(CloseReason::as_str), now)
        .await
}

/// Fails `message` (whose lock the caller holds, its job already gone) and moves its
/// conversation; `pending` as in [`conversation_follows`].
async fn fail_message(
    tx: &mut Transaction<'_, Postgres>,
    lookups: &Lookups,
    message: &Message,
    error: &ProviderError,
    now: i64,
    pending: bool,
) -> StoreResult<Option<(String, ConversationStatus)>> {
    let mut db = Db::PostgresConn(tx);
    db.mark_failed(&message.id, error, now).await?;
    db.queue_message_event(lookups, message, MessageStatus::Failed, Some(error), now)
        .await?;
    conversation_follows(tx, lookups, message, MessageStatus::Failed, now, pending).await
}

/// One send's decision inside the caller's transaction (see `Store::accept_send`).
async fn accept_in(
    tx: &mut Transaction<'_, Postgres>,
    send: &AcceptSend,
) -> StoreResult<AcceptOutcome> {
    accept_with(tx, send, decide_send).await
}

/// The statement that writes an accepted send: the contact (its name when the sender gave
/// one, else the number, kept if the contact exists), the message, its job, and the wake-up of
/// every instance's dispatcher (`pg_notify`, delivered on commit), in one round trip.
/// `$1`–`$13` are bound by [`write_send`]. `{gate}` and `{conversation}` are what the send
/// does to its conversation; `{from}` gates every insert; the statement returns one row
/// when it wrote the send.
const WRITE_SEND: &str = "WITH {gate}
     contact AS (
        INSERT INTO contacts (account_id, phone_number, client_name, created_at, updated_at)
        SELECT $1, $2, coalesce($3, $2), $4, $4 {from}
        ON CONFLICT (account_id, phone_number) DO UPDATE
        SET client_name = coalesce($3, contacts.client_name), updated_at = $4
        RETURNING client_name),
     conversation AS ({conversation}),
     message AS (
        INSERT INTO messages (id, account_id, channel_id, conversation_id, template_id,
            phone_number, params, status, queued_at, updated_at, batch_id, callback_url, metadata,
            scheduled_for)
        SELECT $9, $1, $6, $5, $7, $2, $8,
            CASE WHEN $14::BIGINT IS NULL THEN 'queued' ELSE 'scheduled' END,
            $4, $4, $10, $11, $12, $14 {from}),
     job AS (
        INSERT INTO delivery_jobs (message_id, channel_id, run_at)
        SELECT $9, $6, coalesce($14, $4) {from})
     SELECT pg_notify($13, $6) {from}";

/// [`WRITE_SEND`] on an open conversation: its activity moves.
static WRITE_SEND_OPEN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    WRITE_SEND
        .replace("{gate}", "")
        .replace("{from}", "")
        .replace(
            "{conversation}",
            "UPDATE conversations SET last_activity_at = $4 WHERE id = $5",
        )
});

/// [`WRITE_SEND`] with a new pending conversation, named after the contact, if the plan's
/// counter for the period (`$17`) is below the limit (`$18`): counted first, so it is the
/// first lock the statement takes (plan counter → contact), and held only while this one
/// statement and the commit run. Nothing is written when the limit is reached.
static WRITE_SEND_NEW: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    WRITE_SEND
        .replace(
            "{gate}",
            "counted AS (
                INSERT INTO conversation_usage (account_id, period, used)
                SELECT $1, $17, 1 WHERE $18 > 0
                ON CONFLICT (account_id, period) DO UPDATE SET used = conversation_usage.used + 1
                WHERE conversation_usage.used < $18
                RETURNING 1),",
        )
        .replace("{from}", "FROM counted")
        .replace(
            "{conversation}",
            "INSERT INTO conversations (id, account_id, channel_id, phone_number, status,
                assignee, group_id, client_name, first_message_id, created_at, last_activity_at)
             SELECT $5, $1, $6, $2, 'pending', $15, $16, contact.client_name, $9, $4, $4
             FROM contact",
        )
});

/// Writes `send` on the open conversation `open`, or with a new conversation when `open` is
/// `None`; `false` when a new conversation was over the plan's limit (nothing written).
async fn write_send<'e>(
    executor: impl Executor<'e, Database = Postgres>,
    send: &AcceptSend,
    open: Option<&str>,
) -> StoreResult<bool> {
    let sql: &str = if open.is_some() {
        &WRITE_SEND_OPEN
    } else {
        &WRITE_SEND_NEW
    };
    let mut query = sqlx::query(sql)
        .bind(&send.account_id)
        .bind(&send.phone_number)
        .bind(&send.client_name)
        .bind(send.now)
        .bind(open.unwrap_or(&send.new_conversation_id))
        .bind(&send.channel_id)
        .bind(&send.template_id)
        .bind(serde_json::to_string(&send.params).context("params")?)
        .bind(&send.new_message_id)
        .bind(&send.batch_id)
        .bind(&send.callback_url)
        .bind(send.metadata.as_ref().map(|m| m.to_string()))
        .bind(WORK_CHANNEL)
        .bind(send.send_at);
    if open.is_none() {
        query = query
            .bind(send.assignee)
            .bind(&send.group_id)
            .bind(&send.period)
            .bind(send.conversation_limit);
    }
    Ok(query.fetch_optional(executor).await?.is_some())
}

/// What writing a send with a new conversation decided.
fn pending_or_limit(send: &AcceptSend, written: bool) -> AcceptOutcome {
    if written {
        AcceptOutcome::Pending {
            conversation_id: send.new_conversation_id.clone(),
            message_id: send.new_message_id.clone(),
        }
    } else {
        AcceptOutcome::LimitReached
    }
}

async fn decide_send(
    tx: &mut Transaction<'_, Postgres>,
    send: &AcceptSend,
) -> StoreResult<AcceptOutcome> {
    let active = sqlx::query(
        "SELECT id, status, last_activity_at FROM conversations
         WHERE channel_id = $1 AND phone_number = $2 AND active
         FOR NO KEY UPDATE",
    )
    .bind(&send.channel_id)
    .bind(&send.phone_number)
    .fetch_optional(&mut **tx)
    .await?;

    if let Some(row) = active {
        let conversation_id: String = row.try_get("id")?;
        let status: String = row.try_get("status")?;
        let last_activity_at: i64 = row.try_get("last_activity_at")?;
        if status == "pending" {
            // Nothing new is sent.
            return Ok(AcceptOutcome::AlreadyPending { conversation_id });
        }
        if last_activity_at >= send.expire_before {
            write_send(&mut **tx, send, Some(&conversation_id)).await?;
            return Ok(AcceptOutcome::Sent {
                conversation_id,
                message_id: send.new_message_id.clone(),
            });
        }
        // Open past its window: closed as expired, and the send starts a new one.
        Db::PostgresConn(tx)
            .close_expired(&conversation_id, send.now)
            .await?;
    }
    let written = write_send(&mut **tx, send, None).await?;
    Ok(pending_or_limit(send, written))
}

/// Cancels one message (see `Store::cancel_message`) in the caller's transaction. Locks the
/// job, then the message, then the conversation (the order every method keeps).
async fn cancel_in(
    tx: &mut Transaction<'_, Postgres>,
    lookups: &Lookups,
    account_id: Option<&str>,
    id: &str,
    now: i64,
) -> StoreResult<CancelOutcome> {
    let Some(status) = sqlx::query_scalar::<_, String>(
        "SELECT status FROM messages WHERE id = $1 AND account_id = coalesce($2, account_id)",
    )
    .bind(id)
    .bind(account_id)
    .fetch_optional(&mut **tx)
    .await?
    else {
        return Ok(CancelOutcome::NotFound);
    };
    let status: MessageStatus = status.parse().map_err(anyhow::Error::msg)?;
    if !status.cancellable() {
        return Ok(CancelOutcome::NotCancellable(status));
    }
    // Only a job no dispatcher holds. A claim that locked it first makes this wait, then
    // see its lease and delete nothing; one that comes after skips the locked row.
    let row = if !Db::PostgresConn(tx).take_free_job(id).await? {
        None
    } else {
        sqlx::query(
            "UPDATE messages SET status = 'cancelled', cancelled_at = $1, updated_at = $1,
                held_until = NULL, held_reason = NULL
             WHERE id = $2 AND status IN ('scheduled', 'queued') RETURNING *",
        )
        .bind(now)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
    };
    let Some(row) = row else {
        let status: String = sqlx::query_scalar("SELECT status FROM messages WHERE id = $1")
            .bind(id)
            .fetch_one(&mut **tx)
            .await?;
        return Err(StoreError::Conflict(format!(
            "message {id} moved to {status} while being cancelled"
        )));
    };
    let cancelled = Message::from_row(&row)?;
    Db::PostgresConn(tx)
        .queue_message_event(lookups, &cancelled, MessageStatus::Cancelled, None, now)
        .await?;
    let conversation =
        conversation_follows(tx, lookups, &cancelled, MessageStatus::Cancelled, now, true).await?;
    Ok(CancelOutcome::Cancelled {
        message: Box::new(cancelled),
        conversation,
    })
}

// --- A batch's cancel, set-based --------------------------------------------------------------
//
// `cancel_in` costs about seven statements per message (savepoint included); a batch of 5,000
// was 35,000 of them in a row. [`cancel_group`] cancels a chunk of a batch's messages with a
// constant number of statements, with the outcome and the rows of `cancel_in` applied to each
// in turn in the order of their jobs.

/// How many of a batch's messages one transaction of `cancel_batch` cancels: the locks of a
/// chunk are held only while its few statements run.
const CANCEL_CHUNK: usize = 500;

/// Cancels those of the messages `$1` that `cancel_in` would cancel, at `$2`, in one
/// statement. Their jobs that no dispatcher holds are locked first, in `seq` order (as claims
/// and outcomes take them): a claim that locked one first makes this wait, then see its lease
/// and leave it, and one that comes after skips the locked row. Then the messages still
/// `scheduled` or `queued`, locked by id (after the jobs, as every method takes them), are
/// cancelled and their jobs deleted. Returns the cancelled messages with whether their
/// conversation is pending and which message created it (read without the conversation's
/// lock, as [`MESSAGE_TO_MOVE`] reads it).
const CANCEL_GROUP: &str = "WITH free AS (
        SELECT seq, message_id FROM delivery_jobs
        WHERE message_id = ANY($1::TEXT[]) AND lease_until IS NULL
        ORDER BY seq FOR UPDATE),
     locked AS (
        SELECT id FROM messages
        WHERE id IN (SELECT message_id FROM free) AND status IN ('scheduled', 'queued')
        ORDER BY id FOR NO KEY UPDATE),
     gone AS (
        DELETE FROM delivery_jobs
        WHERE seq IN (SELECT seq FROM free WHERE message_id IN (SELECT id FROM locked)))
     UPDATE messages m SET status = 'cancelled', cancelled_at = $2, updated_at = $2,
        held_until = NULL, held_reason = NULL
     FROM locked l, conversations c
     WHERE m.id = l.id AND c.id = m.conversation_id
     RETURNING m.*, c.status = 'pending' AS conversation_pending,
        c.first_message_id AS conversation_first_message_id";

/// Cancels those of `ids` (a batch's messages, in their jobs' order) that no dispatcher holds
/// and that are `scheduled` or `queued`, in the caller's transaction, as `cancel_in` would
/// cancel each in turn (each message's job, status, event, and the pending conversation it
/// created closed with its event), in two statements whatever their number ([`CANCEL_GROUP`],
/// then [`WRITE_GROUP`] for the conversations and the outbox), one more when the account's
/// endpoints are not in `lookups`. Locks are taken job → message → conversation, each kind in
/// one order. Returns the ids cancelled, in the order of `ids`.
async fn cancel_group(
    tx: &mut Transaction<'_, Postgres>,
    lookups: &Lookups,
    ids: &[String],
    now: i64,
) -> StoreResult<Vec<String>> {
    let mut read: std::collections::HashMap<String, Cancelled> = sqlx::query(CANCEL_GROUP)
        .bind(ids)
        .bind(now)
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|r| Cancelled::from_row(r).map(|c| (c.message.id.clone(), c)))
        .collect::<StoreResult<_>>()?;
    if read.is_empty() {
        return Ok(Vec::new());
    }
    // In the order of `ids`, as one by one.
    let cancelled: Vec<Cancelled> = ids.iter().filter_map(|id| read.remove(id)).collect();
    let (events, moves) = cancels_follow(&cancelled, now);
    // Each guarded as `conversation_follows` guards it: the conversation read as pending may
    // have moved since.
    let moves: Vec<ConversationMove> = moves
        .into_iter()
        .map(|(index, next, reason, first_only)| ConversationMove {
            index,
            conversation_id: cancelled[index].message.conversation_id.clone(),
            next,
            reason,
            at: now,
            first_only,
            message_id: cancelled[index].message.id.clone(),
        })
        .collect();
    let rows = outbox_rows(tx, lookups, events).await?;
    if !moves.is_empty() || !rows.is_empty() {
        write_group(tx, &[], &[], &moves, &rows).await?;
    }
    Ok(cancelled.into_iter().map(|c| c.message.id).collect())
}

// --- A group of statuses, set-based ----------------------------------------------------------
//
// `apply_status` costs about five statements per status. A webhook carries up to 100 statuses,
// so [`apply_group`] applies a group of them with a constant number of statements: it finds
// and locks everything the group touches, decides every status in memory in the group's order
// by the rules of `apply_status`, and writes the outcome at once. The results and the rows
// are those of the statuses applied one by one in that order.

/// A message of a status group, read (and locked) once, then changed in memory status after
/// status: the columns a status writes, as the row holds them.
#[derive(Clone, PartialEq)]
struct StatusColumns {
    status: MessageStatus,
    queued_at: Option<i64>,
    sending_at: Option<i64>,
    sent_at: Option<i64>,
    delivered_at: Option<i64>,
    read_at: Option<i64>,
    failed_at: Option<i64>,
    cancelled_at: Option<i64>,
    updated_at: i64,
    provider_message_id: Option<String>,
    pricing_category: Option<String>,
    pricing_type: Option<String>,
    pricing_model: Option<String>,
    pricing_billable: Option<bool>,
    error_code: Option<i64>,
    error_title: Option<String>,
    error_details: Option<String>,
}

impl StatusColumns {
    fn from_row(r: &PgRow) -> StoreResult<Self> {
        let status: String = r.try_get("status")?;
        Ok(Self {
            status: status.parse().map_err(anyhow::Error::msg)?,
            queued_at: r.try_get("queued_at")?,
            sending_at: r.try_get("sending_at")?,
            sent_at: r.try_get("sent_at")?,
            delivered_at: r.try_get("delivered_at")?,
            read_at: r.try_get("read_at")?,
            failed_at: r.try_get("failed_at")?,
            cancelled_at: r.try_get("cancelled_at")?,
            updated_at: r.try_get("updated_at")?,
            provider_message_id: r.try_get("provider_message_id")?,
            pricing_category: r.try_get("pricing_category")?,
            pricing_type: r.try_get("pricing_type")?,
            pricing_model: r.try_get("pricing_model")?,
            pricing_billable: r.try_get("pricing_billable")?,
            error_code: r.try_get("error_code")?,
            error_title: r.try_get("error_title")?,
            error_details: r.try_get("error_details")?,
        })
    }

    /// The timestamp column `status` sets (as [`status_column`] names it).
    fn time_of(&mut self, status: MessageStatus) -> &mut Option<i64> {
        match status {
            MessageStatus::Scheduled | MessageStatus::Queued => &mut self.queued_at,
            MessageStatus::Sending => &mut self.sending_at,
            MessageStatus::Sent => &mut self.sent_at,
            MessageStatus::Delivered => &mut self.delivered_at,
            MessageStatus::Read => &mut self.read_at,
            MessageStatus::Failed => &mut self.failed_at,
            MessageStatus::Cancelled => &mut self.cancelled_at,
        }
    }

    /// What every status writes, whatever it does to the status: the wamid when the message
    /// has none yet, the pricing it carries.
    fn learn(&mut self, u: &StatusUpdate) {
        fn keep<T: Clone>(column: &mut Option<T>, value: Option<&T>) {
            if let Some(v) = value {
                *column = Some(v.clone());
            }
        }
        if self.provider_message_id.is_none() {
            self.provider_message_id.clone_from(&u.provider_message_id);
        }
        keep(&mut self.pricing_category, u.pricing_category.as_ref());
        let pricing = u.pricing.as_ref();
        keep(
            &mut self.pricing_type,
            pricing.and_then(|p| p.pricing_type.as_ref()),
        );
        keep(
            &mut self.pricing_model,
            pricing.and_then(|p| p.pricing_model.as_ref()),
        );
        keep(
            &mut self.pricing_billable,
            pricing.and_then(|p| p.billable.as_ref()),
        );
    }
}

/// A message of a status group: as read, what the statuses made of it, and whether its
/// conversation is pending and which message created it (read without the conversation's
/// lock, as [`MESSAGE_TO_MOVE`] reads it).
struct GroupMessage {
    message: Message,
    read: StatusColumns,
    now: StatusColumns,
}

/// A conversation a status of the group moves: the status's index, the move, the message.
struct ConversationMove {
    index: usize,
    conversation_id: String,
    next: ConversationStatus,
    reason: Option<CloseReason>,
    at: i64,
    first_only: bool,
    message_id: String,
}

/// An outbox row of the group; `conversation_id` when it is the event of a conversation's
/// move, written only if the move is.
struct GroupEvent {
    account_id: String,
    endpoint_id: String,
    url: String,
    event: OutboxEvent,
    conversation_id: Option<String>,
}

/// The messages of a status group's statuses, each by its wamid, else by our id, and the
/// delivery jobs of those messages locked, by message id (jobs come before messages in every
/// method's order, and several are taken in one order). A row per status, in order:
/// (the message with its wamid, the message with its id). A status whose message learns its
/// wamid earlier in the group is resolved in memory ([`apply_group`]).
const GROUP_MESSAGES: &str = "WITH u AS (
        SELECT u.n,
            (SELECT message_id FROM message_wamids WHERE wamid = u.wamid) AS by_wamid,
            (SELECT id FROM messages WHERE id = u.id) AS by_id
        FROM unnest($1::TEXT[], $2::TEXT[]) WITH ORDINALITY AS u (wamid, id, n)),
     jobs AS (
        SELECT message_id FROM delivery_jobs
        WHERE message_id IN (SELECT coalesce(by_wamid, by_id) FROM u)
        ORDER BY message_id FOR UPDATE)
     SELECT u.by_wamid, u.by_id, (SELECT count(*) FROM jobs) AS jobs FROM u ORDER BY u.n";

/// The messages of a status group, locked by id, with whether their conversation is pending
/// and the conversation's first message (see [`MESSAGE_TO_MOVE`]).
const GROUP_MESSAGES_TO_MOVE: &str = "SELECT m.*, c.status = 'pending' AS conversation_pending,
        c.first_message_id AS conversation_first_message_id
     FROM messages m JOIN conversations c ON c.id = m.conversation_id
     WHERE m.id = ANY($1) ORDER BY m.id FOR NO KEY UPDATE OF m";

/// What a status group decided, in one statement: the messages' new columns (`$1`–`$18`),
/// the jobs the statuses ended (`$19`), the conversation moves (`$20`–`$25`, each guarded as
/// [`conversation_follows`] guards it, the conversations locked by id: after the messages,
/// as every method takes them) and the outbox rows in the statuses' order (`$26`–`$35`; a
/// conversation's event only if its move was written). Returns the conversations moved.
const WRITE_GROUP: &str = "WITH changed AS (
        UPDATE messages m SET status = u.status, queued_at = u.queued_at,
            sending_at = u.sending_at, sent_at = u.sent_at, delivered_at = u.delivered_at,
            read_at = u.read_at, failed_at = u.failed_at, cancelled_at = u.cancelled_at,
            updated_at = u.updated_at, provider_message_id = u.provider_message_id,
            pricing_category = u.pricing_category, pricing_type = u.pricing_type,
            pricing_model = u.pricing_model, pricing_billable = u.pricing_billable,
            error_code = u.error_code, error_title = u.error_title,
            error_details = u.error_details
        FROM unnest($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::BIGINT[], $5::BIGINT[],
                    $6::BIGINT[], $7::BIGINT[], $8::BIGINT[], $9::BIGINT[], $10::BIGINT[],
                    $11::TEXT[], $12::TEXT[], $13::TEXT[], $14::TEXT[], $15::BOOLEAN[],
                    $16::BIGINT[], $17::TEXT[], $18::TEXT[])
            AS u (id, status, queued_at, sending_at, sent_at, delivered_at, read_at, failed_at,
                  cancelled_at, updated_at, provider_message_id, pricing_category, pricing_type,
                  pricing_model, pricing_billable, error_code, error_title, error_details)
        WHERE m.id = u.id),
     gone AS (DELETE FROM delivery_jobs WHERE message_id = ANY($19::TEXT[])),
     plan AS (
        SELECT * FROM unnest($20::TEXT[], $21::TEXT[], $22::BIGINT[], $23::TEXT[],
                             $24::BOOLEAN[], $25::TEXT[])
            AS p (conversation_id, status, at, close_reason, first_only, message_id)),
     locked AS (
        SELECT c.id FROM conversations c JOIN plan p ON p.conversation_id = c.id
        WHERE c.status = 'pending' AND (NOT p.first_only OR c.first_message_id = p.message_id)
        ORDER BY c.id FOR NO KEY UPDATE OF c),
     moved AS (
        UPDATE conversations c SET status = p.status,
            opened_at = CASE WHEN p.status = 'open' THEN p.at ELSE c.opened_at END,
            last_activity_at =
                CASE WHEN p.status = 'open' THEN p.at ELSE c.last_activity_at END,
            closed_at = CASE WHEN p.status = 'closed' THEN p.at ELSE c.closed_at END,
            close_reason =
                CASE WHEN p.status = 'closed' THEN p.close_reason ELSE c.close_reason END
        FROM plan p
        WHERE c.id = p.conversation_id AND c.id IN (SELECT id FROM locked)
          AND c.status = 'pending' AND (NOT p.first_only OR c.first_message_id = p.message_id)
        RETURNING c.id),
     queued AS (
        INSERT INTO callback_outbox (id, account_id, endpoint_id, url, ordering_key,
            message_id, event_type, payload, next_attempt_at, created_at)
        SELECT e.id, e.account_id, e.endpoint_id, e.url, e.ordering_key, e.message_id,
            e.event_type, e.payload, $35, $35
        FROM unnest($26::TEXT[], $27::TEXT[], $28::TEXT[], $29::TEXT[], $30::TEXT[],
                    $31::TEXT[], $32::TEXT[], $33::TEXT[], $34::TEXT[]) WITH ORDINALITY
            AS e (id, account_id, endpoint_id, url, ordering_key, message_id, event_type,
                  payload, conversation_id, n)
        WHERE (e.conversation_id IS NULL OR e.conversation_id IN (SELECT id FROM moved))
          AND (e.endpoint_id = ''
               OR EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.id = e.endpoint_id))
        ORDER BY e.n)
     SELECT id FROM moved";

/// Applies `updates` in the caller's transaction as [`Store::apply_status`] would apply them
/// one after the other in their order (each in its own transaction), with the same results
/// and rows, in three statements whatever their number: their messages found and their jobs
/// locked, the messages locked and read, everything they wrote (see [`WRITE_GROUP`]); fewer
/// when nothing matches or nothing changes, one more when the account's endpoints are not in
/// `lookups`. Locks are taken job → message → conversation, each kind by id (a job by its
/// message's), so a group waits for other groups and methods as one status does and cannot
/// deadlock with them.
async fn apply_group(
    tx: &mut Transaction<'_, Postgres>,
    lookups: &Lookups,
    updates: &[StatusUpdate],
) -> StoreResult<Vec<StatusApplied>> {
    use std::collections::{BTreeSet, HashMap};
    if updates.is_empty() {
        return Ok(Vec::new());
    }
    let wamids: Vec<Option<&str>> = updates
        .iter()
        .map(|u| u.provider_message_id.as_deref())
        .collect();
    let ids: Vec<Option<&str>> = updates.iter().map(|u| u.message_id.as_deref()).collect();
    let found: Vec<(Option<String>, Option<String>)> = sqlx::query(GROUP_MESSAGES)
        .bind(&wamids)
        .bind(&ids)
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("by_wamid")?, r.try_get("by_id")?)))
        .collect::<StoreResult<_>>()?;
    let candidates: BTreeSet<&str> = found
        .iter()
        .filter_map(|(by_wamid, by_id)| by_wamid.as_deref().or(by_id.as_deref()))
        .collect();
    let mut messages: HashMap<String, GroupMessage> = HashMap::new();
    // Conversation → (pending, its first message), as read with its messages.
    let mut conversations: HashMap<String, (bool, Option<String>)> = HashMap::new();
    if !candidates.is_empty() {
        let candidates: Vec<&str> = candidates.into_iter().collect();
        let rows = sqlx::query(GROUP_MESSAGES_TO_MOVE)
            .bind(&candidates)
            .fetch_all(&mut **tx)
            .await?;
        for row in &rows {
            let message = Message::from_row(row)?;
            let columns = StatusColumns::from_row(row)?;
            conversations.insert(
                message.conversation_id.clone(),
                (
                    row.try_get("conversation_pending")?,
                    row.try_get("conversation_first_message_id")?,
                ),
            );
            messages.insert(
                message.id.clone(),
                GroupMessage {
                    message,
                    now: columns.clone(),
                    read: columns,
                },
            );
        }
    }

    // Each status in order, on the messages as the statuses before it left them.
    let mut learned: HashMap<String, String> = HashMap::new();
    let mut ended_jobs: BTreeSet<String> = BTreeSet::new();
    let mut moves: Vec<ConversationMove> = Vec::new();
    // (account, event, conversation whose move it reports), in the order they are queued.
    let mut events: Vec<(String, OutboxEvent, Option<String>)> = Vec::new();
    let mut results = Vec::with_capacity(updates.len());
    for (index, (u, (by_wamid, by_id))) in updates.iter().zip(&found).enumerate() {
        let id = by_wamid
            .as_ref()
            .or_else(|| {
                u.provider_message_id
                    .as_ref()
                    .and_then(|wamid| learned.get(wamid))
            })
            .or(by_id.as_ref());
        let Some(id) = id else {
            results.push(StatusApplied::UnknownMessage);
            continue;
        };
        let g = messages.get_mut(id).ok_or_else(|| {
            StoreError::Other(anyhow::anyhow!("message {id} of a status group not read"))
        })?;
        let message = &g.message;
        if u.channel_id
            .as_ref()
            .is_some_and(|channel| *channel != message.channel_id)
        {
            results.push(StatusApplied::OtherChannel);
            continue;
        }
        if u.status != MessageStatus::Queued && u.status != MessageStatus::Sending {
            ended_jobs.insert(message.id.clone());
        }
        let before = g.now.status;
        let had_wamid = g.now.provider_message_id.is_some();
        g.now.learn(u);
        if !had_wamid && let Some(wamid) = &g.now.provider_message_id {
            learned.insert(wamid.clone(), message.id.clone());
        }
        let changed = before.advances_to(u.status);
        let mut error = None;
        if changed && u.status == MessageStatus::Failed {
            let e = u.error.clone().unwrap_or(ProviderError {
                code: 0,
                title: "Failed without an error from the provider".into(),
                details: None,
            });
            g.now.status = MessageStatus::Failed;
            g.now.failed_at = Some(u.at);
            g.now.updated_at = u.at;
            g.now.error_code = Some(e.code);
            g.now.error_title = Some(e.title.clone());
            g.now.error_details.clone_from(&e.details);
            error = Some(e);
        } else if changed {
            g.now.status = u.status;
            g.now.time_of(u.status).get_or_insert(u.at);
            g.now.updated_at = u.at;
        } else if before != MessageStatus::Failed && u.status != MessageStatus::Failed {
            // A late status keeps its time for the timeline but does not move the status.
            g.now.time_of(u.status).get_or_insert(u.at);
        }
        if changed {
            if let Some(event) = message_event(message, u.status, error.as_ref(), u.at) {
                events.push((message.account_id.clone(), event, None));
            }
            // The conversation, as `conversation_follows` moves it.
            let conversation = conversations
                .get_mut(&message.conversation_id)
                .ok_or_else(|| anyhow::anyhow!("conversation of {} not read", message.id))?;
            if conversation.0
                && let Some((next, reason)) =
                    ConversationStatus::Pending.on_message_status(u.status, true)
                && next != ConversationStatus::Pending
            {
                let first_only = ConversationStatus::Pending
                    .on_message_status(u.status, false)
                    .is_none();
                if !first_only || conversation.1.as_deref() == Some(message.id.as_str()) {
                    conversation.0 = false;
                    moves.push(ConversationMove {
                        index,
                        conversation_id: message.conversation_id.clone(),
                        next,
                        reason,
                        at: u.at,
                        first_only,
                        message_id: message.id.clone(),
                    });
                    if let Some(event) = conversation_event(
                        &message.conversation_id,
                        &message.channel_id,
                        &message.phone_number,
                        next,
                        reason.map(CloseReason::as_str),
                        Some(message),
                        u.at,
                    ) {
                        events.push((
                            message.account_id.clone(),
                            event,
                            Some(message.conversation_id.clone()),
                        ));
                    }
                }
            }
        }
        results.push(StatusApplied::Applied {
            status: if changed { u.status } else { before },
            message_id: message.id.clone(),
            changed,
            conversation: None,
        });
    }

    let rows = outbox_rows(tx, lookups, events).await?;
    let changed: Vec<&GroupMessage> = {
        let mut changed: Vec<&GroupMessage> =
            messages.values().filter(|g| g.now != g.read).collect();
        changed.sort_by(|a, b| a.message.id.cmp(&b.message.id));
        changed
    };
    if changed.is_empty() && ended_jobs.is_empty() && moves.is_empty() && rows.is_empty() {
        return Ok(results);
    }
    let ended_jobs: Vec<&str> = ended_jobs.iter().map(String::as_str).collect();
    let moved = write_group(tx, &changed, &ended_jobs, &moves, &rows).await?;
    for m in moves {
        if moved.contains(&m.conversation_id)
            && let StatusApplied::Applied { conversation, .. } = &mut results[m.index]
        {
            *conversation = Some((m.conversation_id, m.next));
        }
    }
    Ok(results)
}

/// The outbox rows of `events` (account, event, conversation whose move it reports; in the
/// order they are queued): each event once per receiver (see `queue_events`), the accounts'
/// endpoints from `lookups` (read in `tx` when they are not there).
async fn outbox_rows(
    tx: &mut Transaction<'_, Postgres>,
    lookups: &Lookups,
    events: Vec<(String, OutboxEvent, Option<String>)>,
) -> StoreResult<Vec<GroupEvent>> {
    use std::collections::HashMap;
    let mut rows: Vec<GroupEvent> = Vec::new();
    let mut endpoints: HashMap<String, Vec<(String, String, String)>> = HashMap::new();
    for (account_id, event, conversation_id) in events {
        if !endpoints.contains_key(&account_id) {
            let loaded = lookups
                .endpoints
                .get_or(lookups, &account_id, async {
                    Ok(sqlx::query_as(
                        "SELECT id, url, event_types FROM webhook_endpoints WHERE account_id = $1
                         ORDER BY created_at, id",
                    )
                    .bind(&account_id)
                    .fetch_all(&mut **tx)
                    .await?)
                })
                .await?;
            endpoints.insert(account_id.clone(), loaded);
        }
        for (endpoint_id, url) in receivers(&endpoints[&account_id], &event) {
            rows.push(GroupEvent {
                account_id: account_id.clone(),
                endpoint_id,
                url,
                event: event.clone(),
                conversation_id: conversation_id.clone(),
            });
        }
    }
    if !rows.is_empty() {
        lookups.outbox_queued();
    }
    Ok(rows)
}

/// Writes what a group decided ([`WRITE_GROUP`]): the messages' new columns, the jobs it
/// ended, the conversation moves and the outbox rows; the conversations moved.
async fn write_group(
    tx: &mut Transaction<'_, Postgres>,
    changed: &[&GroupMessage],
    ended_jobs: &[&str],
    moves: &[ConversationMove],
    rows: &[GroupEvent],
) -> StoreResult<Vec<String>> {
    // One array per column, in `WRITE_GROUP`'s order.
    fn each<'a, T, U>(items: &'a [T], f: impl Fn(&'a T) -> U) -> Vec<U> {
        items.iter().map(f).collect()
    }
    Ok(sqlx::query_scalar(WRITE_GROUP)
        .bind(each(changed, |g| g.message.id.as_str()))
        .bind(each(changed, |g| g.now.status.as_str()))
        .bind(each(changed, |g| g.now.queued_at))
        .bind(each(changed, |g| g.now.sending_at))
        .bind(each(changed, |g| g.now.sent_at))
        .bind(each(changed, |g| g.now.delivered_at))
        .bind(each(changed, |g| g.now.read_at))
        .bind(each(changed, |g| g.now.failed_at))
        .bind(each(changed, |g| g.now.cancelled_at))
        .bind(each(changed, |g| g.now.updated_at))
        .bind(each(changed, |g| g.now.provider_message_id.as_deref()))
        .bind(each(changed, |g| g.now.pricing_category.as_deref()))
        .bind(each(changed, |g| g.now.pricing_type.as_deref()))
        .bind(each(changed, |g| g.now.pricing_model.as_deref()))
        .bind(each(changed, |g| g.now.pricing_billable))
        .bind(each(changed, |g| g.now.error_code))
        .bind(each(changed, |g| g.now.error_title.as_deref()))
        .bind(each(changed, |g| g.now.error_details.as_deref()))
        .bind(ended_jobs)
        .bind(each(moves, |m| m.conversation_id.as_str()))
        .bind(each(moves, |m| m.next.as_str()))
        .bind(each(moves, |m| m.at))
        .bind(each(moves, |m| m.reason.map(CloseReason::as_str)))
        .bind(each(moves, |m| m.first_only))
        .bind(each(moves, |m| m.message_id.as_str()))
        .bind(each(rows, |_| crate::domain::ids::new_id("evt")))
        .bind(each(rows, |r| r.account_id.as_str()))
        .bind(each(rows, |r| r.endpoint_id.as_str()))
        .bind(each(rows, |r| r.url.as_str()))
        .bind(each(rows, |r| r.event.ordering_key.as_str()))
        .bind(each(rows, |r| r.event.message_id.as_deref()))
        .bind(each(rows, |r| r.event.event_type.as_str()))
        .bind(each(rows, |r| r.event.payload.as_str()))
        .bind(each(rows, |r| r.conversation_id.as_deref()))
        .bind(crate::now_ms())
        .fetch_all(&mut **tx)
        .await?)
}

impl PgStore {
    /// Test hook: applies `updates` as one group ([`apply_group`]) in a transaction of its
    /// own, as a webhook's statuses are to be applied.
    #[doc(hidden)]
    pub async fn apply_group_for_test(
        &self,
        updates: &[StatusUpdate],
    ) -> StoreResult<Vec<StatusApplied>> {
        let mut tx = self.pool.begin().await?;
        let applied = apply_group(&mut tx, &self.lookups, updates).await?;
        tx.commit().await?;
        Ok(applied)
    }
}

#[async_trait]
impl Store for PgStore {
    fn shared(&self) -> &super::sql::Shared {
        &self.shared
    }

    async fn ping(&self) -> StoreResult<bool> {
        let latest = MIGRATIONS.last().map_or(0, |(version, _, _)| *version);
        self.shared.ping(latest).await
    }

    /// Written once but for the outbox: `queue_events` runs in this backend's transaction.
    async fn close_conversation(
        &self,
        id: &str,
        reason: CloseReason,
        now: i64,
    ) -> StoreResult<Option<Conversation>> {
        let mut tx = self.pool.begin().await?;
        let mut db = super::sql::Db::PostgresConn(&mut tx);
        let (conversation, event) =
            super::sql::Shared::close_conversation_in(&mut db, id, reason, now).await?;
        if let Some(c) = &conversation {
            Db::PostgresConn(&mut tx)
                .queue_events(&self.lookups, &c.account_id, event.as_slice())
                .await?;
        }
        tx.commit().await?;
        Ok(conversation)
    }

    async fn record_inbound(
        &self,
        channel: &Channel,
        phone: &str,
        name: Option<&str>,
        at: i64,
    ) -> StoreResult<()> {
        // PostgreSQL may pick this short transaction as a deadlock victim against a send to
        // the same number; it only touches two rows, so trying again is safe.
        let mut tries = 0;
        loop {
            match self.shared.record_inbound(channel, phone, name, at).await {
                Err(StoreError::Conflict(_)) if tries < 3 => tries += 1,
                other => return other,
            }
        }
    }

    async fn record_inbound_message(&self, m: &InboundInsert) -> StoreResult<InboundRecorded> {
        // A deadlock victim against a send to the same number is tried again, as in
        // `record_inbound`.
        let mut tries = 0;
        loop {
            match self.record_inbound_message_once(m).await {
                Err(StoreError::Conflict(_)) if tries < 3 => tries += 1,
                other => return other,
            }
        }
    }

    async fn accept_send(&self, send: &AcceptSend) -> StoreResult<AcceptOutcome> {
        if send.idempotency.is_none() {
            // Concurrent sends are committed in groups; a lone one runs at once.
            return self.sends.accept(send).await;
        }
        let mut tx = self.pool.begin().await?;
        let outcome = accept_in(&mut tx, send).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn accept_batch(
        &self,
        sends: &[AcceptSend],
    ) -> StoreResult<Vec<StoreResult<AcceptOutcome>>> {
        let mut tx = self.pool.begin().await?;
        // A savepoint per send: one send's failure leaves the others standing.
        let outcomes = each_in_savepoint(&mut tx, sends, accept_in).await?;
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn cancel_message(
        &self,
        account_id: &str,
        id: &str,
        now: i64,
    ) -> StoreResult<CancelOutcome> {
        let mut tx = self.pool.begin().await?;
        let outcome = cancel_in(&mut tx, &self.lookups, Some(account_id), id, now).await;
        let outcome = match outcome {
            Err(StoreError::Conflict(_)) => {
                // The job was claimed between reading the status and the delete.
                tx.rollback().await?;
                let status: String =
                    sqlx::query_scalar("SELECT status FROM messages WHERE id = $1")
                        .bind(id)
                        .fetch_one(&self.pool)
                        .await?;
                return Ok(CancelOutcome::NotCancellable(
                    status.parse().map_err(anyhow::Error::msg)?,
                ));
            }
            other => other?,
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn cancel_batch(&self, batch_id: &str, now: i64) -> StoreResult<Vec<String>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT m.id FROM messages m JOIN delivery_jobs j ON j.message_id = m.id
             WHERE m.batch_id = $1 AND m.status IN ('scheduled', 'queued')
               AND j.lease_until IS NULL ORDER BY j.seq",
        )
        .bind(batch_id)
        .fetch_all(&self.pool)
        .await?;
        let mut cancelled = Vec::with_capacity(ids.len());
        // A few statements per chunk (`cancel_group`); a message the dispatcher took
        // meanwhile is left to it.
        for chunk in ids.chunks(CANCEL_CHUNK) {
            let mut tx = self.pool.begin().await?;
            cancelled.extend(cancel_group(&mut tx, &self.lookups, chunk, now).await?);
            tx.commit().await?;
        }
        Ok(cancelled)
    }

    async fn claim_jobs(
        &self,
        channel_id: &str,
        limit: u32,
        now: i64,
        lease_ms: i64,
        orphan_wait_ms: i64,
    ) -> StoreResult<Vec<ClaimedJob>> {
        let mut tx = self.pool.begin().await?;
        // SKIP LOCKED: jobs another dispatcher is claiming right now are left to it.
        let claimed = sqlx::query(
            "UPDATE delivery_jobs SET attempt = attempt + 1, tries = tries + 1, lease_until = $1
             WHERE seq IN (
                SELECT seq FROM delivery_jobs WHERE channel_id = $2 AND run_at <= $3
                  AND (lease_until IS NULL OR lease_until + $5 <= $3) AND paused = 0
                ORDER BY seq LIMIT $4
                FOR UPDATE SKIP LOCKED)
             RETURNING seq, message_id, attempt, tries",
        )
        .bind(now + lease_ms)
        .bind(channel_id)
        .bind(now)
        .bind(i64::from(limit))
        .bind(orphan_wait_ms)
        .fetch_all(&mut *tx)
        .await?;
        let claimed = claimed_jobs(&claimed)?;
        if claimed.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        // Every claimed message moves to `sending` in one statement (the claim holds their
        // jobs, which every other writer locks before a message, so the rows' order here
        // cannot deadlock with anyone).
        let ids: Vec<&str> = claimed.iter().map(|(_, id, ..)| id.as_str()).collect();
        let tries: Vec<i64> = claimed.iter().map(|(.., tries)| *tries).collect();
        // A first message that moves to `sending` for the first time starts its conversation
        // for the messaging limit (`recipient_starts`): `before` reads the rows as they were
        // (the statement's snapshot), the update's new versions are not visible to it.
        let mut moved: std::collections::HashMap<String, Message> = sqlx::query(
            "WITH before AS (
                SELECT id FROM messages WHERE id = ANY($2) AND sending_at IS NULL),
             moved AS (
                UPDATE messages m SET
                    status = CASE WHEN m.status IN ('scheduled', 'queued', 'sending')
                        THEN 'sending' ELSE m.status END,
                    sending_at = coalesce(m.sending_at, $1), attempts = c.tries, updated_at = $1,
                    held_until = NULL, held_reason = NULL
                FROM unnest($2::text[], $3::bigint[]) AS c(id, tries)
                WHERE m.id = c.id RETURNING m.*),
             started AS (
                INSERT INTO recipient_starts (channel_id, started_at, phone_number, message_id)
                SELECT m.channel_id, m.sending_at, m.phone_number, m.id
                FROM moved m JOIN conversations c ON c.id = m.conversation_id
                WHERE c.first_message_id = m.id AND m.id IN (SELECT id FROM before))
             SELECT * FROM moved",
        )
        .bind(now)
        .bind(&ids)
        .bind(&tries)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| Message::from_row(r).map(|m| (m.id.clone(), m)))
        .collect::<StoreResult<_>>()?;
        let mut jobs = Vec::with_capacity(claimed.len());
        let mut templates: std::collections::HashMap<String, Template> =
            std::collections::HashMap::new();
        for (_, message_id, attempt, _) in claimed {
            let message = moved
                .remove(&message_id)
                .ok_or_else(|| anyhow::anyhow!("claimed message {message_id} not found"))?;
            // A claim's messages mostly share a template: read each once.
            let template = match templates.get(&message.template_id) {
                Some(t) => Clone::clone(t),
                None => {
                    let row = sqlx::query("SELECT * FROM templates WHERE id = $1")
                        .bind(&message.template_id)
                        .fetch_one(&mut *tx)
                        .await?;
                    let t = Template::from_row(&row)?;
                    templates.insert(t.id.clone(), t.clone());
                    t
                }
            };
            jobs.push(ClaimedJob {
                template,
                message,
                attempt,
            });
        }
        tx.commit().await?;
        Ok(jobs)
    }

    async fn finish_attempt(&self, o: &AttemptOutcome) -> StoreResult<Finished> {
        // Concurrent outcomes are committed in groups; a lone one runs at once.
        Ok(self.outcomes.finish(o, false).await?.0)
    }

    async fn finish_and_take_kept(
        &self,
        o: &AttemptOutcome,
    ) -> StoreResult<(Finished, StoreResult<Vec<StatusUpdate>>)> {
        // The kept statuses are taken by the outcome writer right after its commit, for the
        // whole group in one statement.
        self.outcomes.finish(o, true).await
    }

    async fn apply_status(&self, u: &StatusUpdate) -> StoreResult<StatusApplied> {
        let mut tx = self.pool.begin().await?;
        let applied = apply_in(&mut tx, &self.lookups, u).await?;
        // A status that does not apply may have ended its job already in this transaction:
        // rolled back before answering, so the job's lock is gone when the caller goes on
        // (a dropped transaction would roll back only when its connection is next used).
        if matches!(applied, StatusApplied::Applied { .. }) {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(applied)
    }

    async fn apply_statuses(&self, updates: &[StatusUpdate]) -> StoreResult<Vec<StatusApplied>> {
        match updates {
            [] => return Ok(Vec::new()),
            [one] => return Ok(vec![self.apply_status(one).await?]),
            _ => {}
        }
        // The whole webhook's statuses in a constant number of statements (`apply_group`).
        // If it fails (a deadlock with another instance, a wamid recorded meanwhile), nothing
        // was applied and the caller applies them one by one.
        let mut tx = self.pool.begin().await?;
        let results = apply_group(&mut tx, &self.lookups, updates).await?;
        tx.commit().await?;
        Ok(results)
    }

    async fn take_pending_statuses(
        &self,
        provider_message_id: &str,
        message_id: &str,
    ) -> StoreResult<Vec<StatusUpdate>> {
        Db::Postgres(&self.pool)
            .take_pending(provider_message_id, message_id)
            .await
    }

    fn listen_for_work(&self, wake: Arc<Notify>, cancel: CancellationToken) {
        let pool = self.pool.clone();
        tokio::spawn(async move {
            loop {
                let listener = async {
                    let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
                    listener.listen(WORK_CHANNEL).await?;
                    loop {
                        // `try_recv` reconnects after a lost connection and says so with `None`:
                        // work may have arrived meanwhile, so wake either way.
                        listener.try_recv().await?;
                        wake.notify_one();
                    }
                    #[allow(unreachable_code)]
                    Ok::<(), sqlx::Error>(())
                };
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    result = listener => {
                        if let Err(e) = result {
                            tracing::warn!(error = %e, "work notifications interrupted; reconnecting");
                        }
                    }
                }
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                }
            }
        });
    }
    async fn insert_webhook_endpoint(
        &self,
        e: &WebhookEndpoint,
        idempotency: Option<&IdempotencyKey>,
    ) -> StoreResult<EndpointInsert> {
        let _changed = self.lookups.writing();
        let mut tx = self.pool.begin().await?;
        if let Some(idem) = idempotency {
            Db::PostgresConn(&mut tx)
                .forget_expired_key(idem, e.created_at)
                .await?;
            // The key's primary key decides between concurrent creations: an insert that
            // meets a concurrent one waits for it to commit, then inserts nothing.
            let stored = sqlx::query(
                "INSERT INTO idempotency_keys (scope, key, fingerprint, outcome, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (scope, key) DO NOTHING",
            )
            .bind(&idem.scope)
            .bind(&idem.key)
            .bind(&idem.fingerprint)
            .bind(EndpointOutcome::stored(&e.id)?)
            .bind(e.created_at)
            .bind(idem.expires_at)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if !stored {
                // READ COMMITTED: this statement sees the key the conflict waited for.
                let Some((fingerprint, outcome)) =
                    Db::PostgresConn(&mut tx).stored_key(idem).await?
                else {
                    // Forgotten (expired) between the two statements: decide again.
                    return Err(StoreError::Conflict(
                        "the idempotency key was forgotten meanwhile".into(),
                    ));
                };
                let mut db = Db::PostgresConn(&mut tx);
                return self
                    .shared
                    .endpoint_replay_in(&mut db, e, &idem.fingerprint, &fingerprint, &outcome)
                    .await;
            }
        }
        self.shared.endpoint_created(Tx::Postgres(tx), e).await
    }

    async fn claim_callbacks(
        &self,
        now: i64,
        limit: u32,
        lease_ms: i64,
    ) -> StoreResult<Vec<ClaimedCallback>> {
        let mut tx = self.shared.begin().await?;
        // Due, not leased (or the lease lapsed), and the oldest pending row of its stream.
        // A stream's rows are inserted under the lock of what they report (the message, the
        // template), so an older row of a stream is always committed before a newer one.
        let claim = sql("WITH due AS (
                SELECT o.seq FROM callback_outbox o
                WHERE o.status = 'pending' AND o.next_attempt_at <= $2
                  AND (o.lease_until IS NULL OR o.lease_until <= $2)
                  AND NOT EXISTS (
                    SELECT 1 FROM callback_outbox p
                    WHERE p.status = 'pending' AND p.endpoint_id = o.endpoint_id
                      AND p.ordering_key = o.ordering_key AND p.seq < o.seq)
                ORDER BY o.seq LIMIT $3
                FOR UPDATE OF o SKIP LOCKED)
             UPDATE callback_outbox c SET attempts = c.attempts + 1, lease_until = $1
             FROM due WHERE c.seq = due.seq
             RETURNING c.*")
        .bind(now + lease_ms)
        .bind(now)
        .bind(limit);
        let rows = tx.db().all(claim).await?;
        self.shared.claimed_callbacks(tx, &rows).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_errors() {
        let text = redact("bad url postgres://user:hunter2@db:5432/x");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("@db:5432"), "{text}");
        assert_eq!(redact("no url here"), "no url here");
    }

    /// `serve` may open the store in a spawned task: the future must be `Send`.
    #[test]
    fn opening_is_send() {
        fn is_send<T: Send>(_: &T) {}
        let open = PgStore::open("postgres://localhost/x", 1);
        is_send(&open);
    }
}
