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
//!   waits for it.
//! - `insert_webhook_endpoint` with an idempotency key inserts the key first, `ON CONFLICT DO
//!   NOTHING`: a concurrent creation with the same key waits on the key's primary key until
//!   the first commits, then answers what the first created. It locks nothing else.
//! - `claim_jobs` picks jobs with `FOR UPDATE SKIP LOCKED`, so two dispatchers never claim
//!   the same job.
//! - `finish_attempt` and `apply_status` lock the job, then the message, then the
//!   conversation. Every method that locks more than one of these takes them in that order
//!   (job → message → conversation; conversation → usage counter → contact), so they cannot
//!   deadlock with one another. Concurrent outcomes are committed in groups (`outcomes`): a
//!   group locks all its jobs first (in `seq` order, as claims do), then messages, then
//!   conversations.
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

use super::console::ConsoleSession;
use super::lookups::Lookups;
use super::*;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

mod outcomes;
pub use outcomes::OutcomeGroupStats;

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
}

impl PgStore {
    /// One try of [`Store::record_inbound_message`]: `Duplicate` when the wamid is stored
    /// already, or when a concurrent transaction stored it first (this one is rolled back).
    async fn record_inbound_message_once(&self, m: &InboundInsert) -> StoreResult<InboundRecorded> {
        let seen: Option<String> = sqlx::query_scalar(
            "SELECT id FROM inbound_messages WHERE channel_id = $1 AND provider_message_id = $2",
        )
        .bind(&m.channel_id)
        .bind(&m.provider_message_id)
        .fetch_optional(&self.pool)
        .await?;
        if seen.is_some() {
            return Ok(InboundRecorded::Duplicate);
        }
        let mut tx = self.pool.begin().await?;
        // The sender's number: as given, else the contact that has this user id.
        let phone: Option<String> = match (&m.phone_number, &m.user_id) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(uid)) => {
                sqlx::query_scalar(
                    "SELECT phone_number FROM contacts WHERE account_id = $1 AND user_id = $2
                     ORDER BY updated_at DESC LIMIT 1",
                )
                .bind(&m.account_id)
                .bind(uid)
                .fetch_optional(&mut *tx)
                .await?
            }
            (None, None) => None,
        };
        let mut conversation_id = None;
        if let Some(phone) = &phone {
            // Conversation before contact: the order `accept_send` locks them in.
            sqlx::query(
                "UPDATE conversations SET last_activity_at = GREATEST(last_activity_at, $1)
                 WHERE channel_id = $2 AND phone_number = $3 AND status = 'open'",
            )
            .bind(m.sent_at)
            .bind(&m.channel_id)
            .bind(phone)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO contacts (account_id, phone_number, client_name, last_inbound_at,
                    created_at, updated_at, user_id, username)
                 VALUES ($1, $2, coalesce($3, $2), $4, $4, $4, $5, $6)
                 ON CONFLICT (account_id, phone_number) DO UPDATE SET
                    client_name = coalesce($3, contacts.client_name),
                    last_inbound_at = GREATEST(coalesce(contacts.last_inbound_at, 0), $4),
                    user_id = coalesce($5, contacts.user_id),
                    username = coalesce($6, contacts.username),
                    updated_at = GREATEST(contacts.updated_at, $4)",
            )
            .bind(&m.account_id)
            .bind(phone)
            .bind(&m.contact_name)
            .bind(m.sent_at)
            .bind(&m.user_id)
            .bind(&m.username)
            .execute(&mut *tx)
            .await?;
            conversation_id = sqlx::query_scalar(
                "SELECT id FROM conversations WHERE channel_id = $1 AND phone_number = $2
                 ORDER BY status IN ('pending', 'open') DESC, created_at DESC, id DESC LIMIT 1",
            )
            .bind(&m.channel_id)
            .bind(phone)
            .fetch_optional(&mut *tx)
            .await?;
        }
        let replied: Option<(String, String)> = match &m.context_id {
            Some(wamid) => {
                sqlx::query_as(
                    "SELECT id, template_id FROM messages
                     WHERE provider_message_id = $1 AND channel_id = $2",
                )
                .bind(wamid)
                .bind(&m.channel_id)
                .fetch_optional(&mut *tx)
                .await?
            }
            None => None,
        };
        let (reply_to, reply_to_template_id) = replied.unzip();
        let message = InboundMessage {
            id: m.id.clone(),
            account_id: m.account_id.clone(),
            channel_id: m.channel_id.clone(),
            conversation_id,
            provider_message_id: m.provider_message_id.clone(),
            phone_number: phone,
            user_id: m.user_id.clone(),
            contact_name: m.contact_name.clone(),
            kind: m.kind.clone(),
            text: m.text.clone(),
            content: m.content.clone(),
            raw: m.raw.clone(),
            context_id: m.context_id.clone(),
            reply_to,
            sent_at: m.sent_at,
            received_at: m.received_at,
        };
        let inserted = sqlx::query(
            "INSERT INTO inbound_messages (id, account_id, channel_id, conversation_id,
                provider_message_id, phone_number, user_id, contact_name, type, text, content,
                raw, context_id, reply_to, sent_at, received_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
             ON CONFLICT (channel_id, provider_message_id) DO NOTHING",
        )
        .bind(&message.id)
        .bind(&message.account_id)
        .bind(&message.channel_id)
        .bind(&message.conversation_id)
        .bind(&message.provider_message_id)
        .bind(&message.phone_number)
        .bind(&message.user_id)
        .bind(&message.contact_name)
        .bind(&message.kind)
        .bind(&message.text)
        .bind(message.content.to_string())
        .bind(message.raw.to_string())
        .bind(&message.context_id)
        .bind(&message.reply_to)
        .bind(message.sent_at)
        .bind(message.received_at)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            // A concurrent copy of the same webhook won: it is the one stored and forwarded.
            tx.rollback().await?;
            return Ok(InboundRecorded::Duplicate);
        }
        queue_events(
            &mut tx,
            &self.lookups,
            &message.account_id,
            &[inbound_event(&message)],
        )
        .await?;
        tx.commit().await?;
        Ok(InboundRecorded::Stored {
            message: Box::new(message),
            reply_to_template_id,
        })
    }

    async fn record_inbound_once(
        &self,
        channel: &Channel,
        phone: &str,
        name: Option<&str>,
        at: i64,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        // Conversation before contact: the order `accept_send` locks them in.
        sqlx::query(
            "UPDATE conversations SET last_activity_at = GREATEST(last_activity_at, $1)
             WHERE channel_id = $2 AND phone_number = $3 AND status = 'open'",
        )
        .bind(at)
        .bind(&channel.id)
        .bind(phone)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO contacts (account_id, phone_number, client_name, last_inbound_at,
                created_at, updated_at)
             VALUES ($1, $2, coalesce($3, $2), $4, $4, $4)
             ON CONFLICT (account_id, phone_number) DO UPDATE SET
                client_name = coalesce($3, contacts.client_name),
                last_inbound_at = GREATEST(coalesce(contacts.last_inbound_at, 0), $4),
                updated_at = $4",
        )
        .bind(&channel.account_id)
        .bind(phone)
        .bind(name)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
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
        let options = options.options([("plan_cache_mode", "force_generic_plan")]);
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
        Ok(Self {
            pool,
            lookups,
            shared,
            outcomes,
        })
    }

    /// How delivery outcomes were grouped (for tests and benchmarks).
    pub fn outcome_group_stats(&self) -> &OutcomeGroupStats {
        self.outcomes.stats()
    }

    /// Test hook: writes `outcomes` (one per message) as one group, the way concurrent
    /// outcomes are (no commit is shared with anything else).
    #[doc(hidden)]
    pub async fn finish_group(&self, outcomes: &[AttemptOutcome]) -> StoreResult<Vec<Finished>> {
        let outcomes: Vec<&AttemptOutcome> = outcomes.iter().collect();
        outcomes::finish_group(&self.pool, &self.lookups, &outcomes, || false).await
    }

    /// Seals channel secrets with `cipher` (without one they are stored as given).
    pub fn with_cipher(mut self, cipher: Arc<Cipher>) -> Self {
        self.shared.cipher = cipher;
        self
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

// Ties in `created_at` (and "the first" row where SQLite takes the first in insertion order)
// are broken by id: ids are time-ordered UUIDs, compared bytewise as SQLite compares text.
fn suppression_from_row(r: &PgRow) -> StoreResult<Suppression> {
    Ok(Suppression {
        account_id: r.try_get("account_id")?,
        phone_number: r.try_get("phone_number")?,
        reason: r.try_get("reason")?,
        note: r.try_get("note")?,
        automatic: r.try_get("automatic")?,
        channel_id: r.try_get("channel_id")?,
        created_at: r.try_get("created_at")?,
    })
}

fn template_from_row(r: &PgRow) -> StoreResult<Template> {
    let header: Option<String> = r.try_get("header")?;
    let buttons: String = r.try_get("buttons")?;
    Ok(Template {
        id: r.try_get("id")?,
        account_id: r.try_get("account_id")?,
        name: r.try_get("name")?,
        language: r.try_get("language")?,
        category: r.try_get("category")?,
        status: r.try_get("status")?,
        app_id: r.try_get("app_id")?,
        message: r.try_get("message")?,
        header: header
            .map(|h| serde_json::from_str(&h))
            .transpose()
            .context("template header")?,
        footer: r.try_get("footer")?,
        buttons: serde_json::from_str(&buttons).context("template buttons")?,
        extra: serde_json::from_str(&r.try_get::<String, _>("extra")?).context("template extra")?,
        group_name: r.try_get("group_name")?,
        active: r.try_get("active")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

const CONVERSATION_SELECT: &str = "SELECT c.*, g.name AS group_name, ct.user_id AS contact_user_id \
     FROM conversations c LEFT JOIN groups g ON g.id = c.group_id \
     LEFT JOIN contacts ct ON ct.account_id = c.account_id AND ct.phone_number = c.phone_number";

fn conversation_from_row(r: &PgRow) -> StoreResult<Conversation> {
    let status: String = r.try_get("status")?;
    Ok(Conversation {
        id: r.try_get("id")?,
        account_id: r.try_get("account_id")?,
        channel_id: r.try_get("channel_id")?,
        phone_number: r.try_get("phone_number")?,
        status: status.parse().map_err(anyhow::Error::msg)?,
        assignee: r.try_get("assignee")?,
        group_id: r.try_get("group_id")?,
        group_name: r.try_get("group_name")?,
        client_name: r.try_get("client_name")?,
        first_message_id: r.try_get("first_message_id")?,
        close_reason: r.try_get("close_reason")?,
        created_at: r.try_get("created_at")?,
        opened_at: r.try_get("opened_at")?,
        closed_at: r.try_get("closed_at")?,
        last_activity_at: r.try_get("last_activity_at")?,
        user_id: r.try_get("contact_user_id")?,
    })
}

fn inbound_from_row(r: &PgRow) -> StoreResult<InboundMessage> {
    let json = |column: &str| -> StoreResult<Value> {
        let text: String = r.try_get(column)?;
        Ok(serde_json::from_str(&text).context("inbound message JSON")?)
    };
    Ok(InboundMessage {
        id: r.try_get("id")?,
        account_id: r.try_get("account_id")?,
        channel_id: r.try_get("channel_id")?,
        conversation_id: r.try_get("conversation_id")?,
        provider_message_id: r.try_get("provider_message_id")?,
        phone_number: r.try_get("phone_number")?,
        user_id: r.try_get("user_id")?,
        contact_name: r.try_get("contact_name")?,
        kind: r.try_get("type")?,
        text: r.try_get("text")?,
        content: json("content")?,
        raw: json("raw")?,
        context_id: r.try_get("context_id")?,
        reply_to: r.try_get("reply_to")?,
        sent_at: r.try_get("sent_at")?,
        received_at: r.try_get("received_at")?,
    })
}

fn message_from_row(r: &PgRow) -> StoreResult<Message> {
    let status: String = r.try_get("status")?;
    let params: String = r.try_get("params")?;
    let error_code: Option<i64> = r.try_get("error_code")?;
    Ok(Message {
        id: r.try_get("id")?,
        account_id: r.try_get("account_id")?,
        channel_id: r.try_get("channel_id")?,
        conversation_id: r.try_get("conversation_id")?,
        template_id: r.try_get("template_id")?,
        phone_number: r.try_get("phone_number")?,
        params: serde_json::from_str(&params).context("message params")?,
        status: status.parse().map_err(anyhow::Error::msg)?,
        provider_message_id: r.try_get("provider_message_id")?,
        wa_id: r.try_get("wa_id")?,
        attempts: r.try_get("attempts")?,
        error: match error_code {
            Some(code) => Some(ProviderError {
                code,
                title: r
                    .try_get::<Option<String>, _>("error_title")?
                    .unwrap_or_default(),
                details: r.try_get("error_details")?,
            }),
            None => None,
        },
        queued_at: r.try_get("queued_at")?,
        sending_at: r.try_get("sending_at")?,
        sent_at: r.try_get("sent_at")?,
        delivered_at: r.try_get("delivered_at")?,
        read_at: r.try_get("read_at")?,
        failed_at: r.try_get("failed_at")?,
        pricing_category: r.try_get("pricing_category")?,
        pricing: pricing_from_row(r)?,
        batch_id: r.try_get("batch_id")?,
        callback_url: r.try_get("callback_url")?,
        metadata: r
            .try_get::<Option<String>, _>("metadata")?
            .map(|m| serde_json::from_str(&m))
            .transpose()
            .context("message metadata")?,
        updated_at: r.try_get("updated_at")?,
        scheduled_for: r.try_get("scheduled_for")?,
        held_until: r.try_get("held_until")?,
        held_reason: r.try_get("held_reason")?,
        cancelled_at: r.try_get("cancelled_at")?,
    })
}

/// The `pricing` of a message or kept status row: `None` when no status carried one (only
/// `pricing_category` may be set then, by an older status).
fn pricing_from_row(r: &PgRow) -> StoreResult<Option<Pricing>> {
    let pricing_type: Option<String> = r.try_get("pricing_type")?;
    let pricing_model: Option<String> = r.try_get("pricing_model")?;
    let billable: Option<bool> = r.try_get("pricing_billable")?;
    if pricing_type.is_none() && pricing_model.is_none() && billable.is_none() {
        return Ok(None);
    }
    Ok(Some(Pricing {
        pricing_type,
        category: r.try_get("pricing_category")?,
        pricing_model,
        billable,
    }))
}

fn status_from_pending_row(r: &PgRow) -> StoreResult<StatusUpdate> {
    let status: String = r.try_get("status")?;
    Ok(StatusUpdate {
        provider_message_id: r.try_get("provider_message_id")?,
        message_id: r.try_get("message_id")?,
        status: status.parse().map_err(anyhow::Error::msg)?,
        at: r.try_get("at")?,
        error: match r.try_get::<Option<i64>, _>("error_code")? {
            Some(code) => Some(ProviderError {
                code,
                title: r
                    .try_get::<Option<String>, _>("error_title")?
                    .unwrap_or_default(),
                details: r.try_get("error_details")?,
            }),
            None => None,
        },
        pricing_category: r.try_get("pricing_category")?,
        pricing: pricing_from_row(r)?,
        // A kept status matched no message when it came; it is taken by its own message's
        // wamid or id only.
        channel_id: None,
    })
}

async fn record_attempt(
    tx: &mut Transaction<'_, Postgres>,
    message_id: &str,
    attempt: i64,
    now: i64,
    outcome: &str,
    error: Option<&ProviderError>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO delivery_attempts (message_id, attempt, finished_at, outcome, error_code,
            error_title, error_details) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(message_id)
    .bind(attempt)
    .bind(now)
    .bind(outcome)
    .bind(error.map(|e| e.code))
    .bind(error.map(|e| e.title.as_str()))
    .bind(error.and_then(|e| e.details.as_deref()))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn group_with_channels(pool: &PgPool, row: Option<PgRow>) -> StoreResult<Option<Group>> {
    let Some(r) = row else { return Ok(None) };
    let id: String = r.try_get("id")?;
    let channel_ids: Vec<String> = sqlx::query_scalar(
        "SELECT channel_id FROM channel_groups WHERE group_id = $1 ORDER BY seq",
    )
    .bind(&id)
    .fetch_all(pool)
    .await?;
    Ok(Some(Group {
        id,
        account_id: r.try_get("account_id")?,
        name: r.try_get("name")?,
        channel_ids,
        created_at: r.try_get("created_at")?,
    }))
}

/// A message locked for a status or an outcome (`$1` its id), with whether its conversation
/// is pending (read without the conversation's lock; see [`conversation_follows`]).
const MESSAGE_TO_MOVE: &str = "SELECT m.*, c.status = 'pending' AS conversation_pending
     FROM messages m JOIN conversations c ON c.id = m.conversation_id
     WHERE m.id = $1 FOR NO KEY UPDATE OF m";

/// The timestamp column a status sets.
fn status_column(status: MessageStatus) -> &'static str {
    match status {
        MessageStatus::Scheduled | MessageStatus::Queued => "queued_at",
        MessageStatus::Sending => "sending_at",
        MessageStatus::Sent => "sent_at",
        MessageStatus::Delivered => "delivered_at",
        MessageStatus::Read => "read_at",
        MessageStatus::Failed => "failed_at",
        MessageStatus::Cancelled => "cancelled_at",
    }
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
    let event = conversation_event(
        &message.conversation_id,
        &message.channel_id,
        &message.phone_number,
        next,
        reason.map(CloseReason::as_str),
        Some(message),
        now,
    );
    queue_events(tx, lookups, &message.account_id, event.as_slice()).await?;
    Ok(Some((message.conversation_id.clone(), next)))
}

/// Writes `events` to the outbox, in the caller's transaction, once per receiver: each of
/// the account's endpoints subscribed to the event's type, and the message's `callbackUrl`.
/// Endpoints come from a copy of at most [`lookups::TTL`] (most accounts have none, and a
/// status then costs no statement here); a row for an endpoint is inserted only if the
/// endpoint still exists. Endpoints are read without a lock and outbox rows only inserted:
/// this adds no lock to the caller's order.
async fn queue_events(
    tx: &mut Transaction<'_, Postgres>,
    lookups: &Lookups,
    account_id: &str,
    events: &[OutboxEvent],
) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let endpoints = lookups
        .endpoints
        .get_or(lookups, account_id, async {
            Ok(sqlx::query_as(
                "SELECT id, url, event_types FROM webhook_endpoints WHERE account_id = $1
                 ORDER BY created_at, id",
            )
            .bind(account_id)
            .fetch_all(&mut **tx)
            .await?)
        })
        .await?;
    let now = crate::now_ms();
    for event in events {
        for (endpoint_id, url) in receivers(&endpoints, event) {
            sqlx::query(
                "INSERT INTO callback_outbox (id, account_id, endpoint_id, url, ordering_key,
                    message_id, event_type, payload, next_attempt_at, created_at)
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10
                 WHERE $3 = '' OR EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = $3)",
            )
            .bind(crate::domain::ids::new_id("evt"))
            .bind(account_id)
            .bind(endpoint_id)
            .bind(url)
            .bind(&event.ordering_key)
            .bind(&event.message_id)
            .bind(event.event_type.as_str())
            .bind(&event.payload)
            .bind(now)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

/// The account's callback secret, created the first time it is needed (the account's row is
/// locked only then).
async fn account_callback_secret(
    tx: &mut Transaction<'_, Postgres>,
    account_id: &str,
) -> StoreResult<Option<String>> {
    let query = "SELECT callback_secret FROM accounts WHERE id = $1";
    let secret: Option<String> = sqlx::query_scalar(query)
        .bind(account_id)
        .fetch_optional(&mut **tx)
        .await?
        .flatten();
    if secret.is_some() {
        return Ok(secret);
    }
    sqlx::query(
        "UPDATE accounts SET callback_secret = $1 WHERE id = $2 AND callback_secret IS NULL",
    )
    .bind(crate::domain::callback::new_signing_secret())
    .bind(account_id)
    .execute(&mut **tx)
    .await?;
    Ok(sqlx::query_scalar(query)
        .bind(account_id)
        .fetch_optional(&mut **tx)
        .await?
        .flatten())
}

fn delivery_from_row(r: &PgRow) -> StoreResult<CallbackDelivery> {
    let endpoint_id: String = r.try_get("endpoint_id")?;
    Ok(CallbackDelivery {
        seq: r.try_get("seq")?,
        id: r.try_get("id")?,
        account_id: r.try_get("account_id")?,
        endpoint_id: (!endpoint_id.is_empty()).then_some(endpoint_id),
        url: r.try_get("url")?,
        message_id: r.try_get("message_id")?,
        event_type: r.try_get("event_type")?,
        payload: r.try_get("payload")?,
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_response_status: r.try_get("last_response_status")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        delivered_at: r.try_get("delivered_at")?,
    })
}

fn endpoint_from_row(r: &PgRow) -> StoreResult<WebhookEndpoint> {
    let types: String = r.try_get("event_types")?;
    Ok(WebhookEndpoint {
        id: r.try_get("id")?,
        account_id: r.try_get("account_id")?,
        url: r.try_get("url")?,
        event_types: serde_json::from_str(&types).context("endpoint event types")?,
        description: r.try_get("description")?,
        secret: r.try_get("secret")?,
        created_at: r.try_get("created_at")?,
    })
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
    sqlx::query(
        "UPDATE messages SET status = 'failed', failed_at = $1, updated_at = $1,
            error_code = $2, error_title = $3, error_details = $4
         WHERE id = $5",
    )
    .bind(now)
    .bind(error.code)
    .bind(&error.title)
    .bind(&error.details)
    .bind(&message.id)
    .execute(&mut **tx)
    .await?;
    let event = message_event(message, MessageStatus::Failed, Some(error), now);
    queue_events(tx, lookups, &message.account_id, event.as_slice()).await?;
    conversation_follows(tx, lookups, message, MessageStatus::Failed, now, pending).await
}

/// Forgets `idem` if it has expired, so its next use counts as a first.
async fn forget_expired_key(
    tx: &mut Transaction<'_, Postgres>,
    idem: &IdempotencyKey,
    now: i64,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND expires_at <= $3")
        .bind(&idem.scope)
        .bind(&idem.key)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// What an idempotency key was stored with: (fingerprint, outcome).
async fn stored_key(
    tx: &mut Transaction<'_, Postgres>,
    idem: &IdempotencyKey,
) -> StoreResult<Option<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT fingerprint, outcome FROM idempotency_keys WHERE scope = $1 AND key = $2",
    )
    .bind(&idem.scope)
    .bind(&idem.key)
    .fetch_optional(&mut **tx)
    .await?)
}

/// One send's decision inside the caller's transaction (see `Store::accept_send`).
async fn accept_in(
    tx: &mut Transaction<'_, Postgres>,
    send: &AcceptSend,
) -> StoreResult<AcceptOutcome> {
    if let Some(idem) = &send.idempotency {
        forget_expired_key(tx, idem, send.now).await?;
        if let Some((fingerprint, outcome)) = stored_key(tx, idem).await? {
            return replay(&idem.fingerprint, &fingerprint, &outcome);
        }
        sqlx::query(
            "INSERT INTO idempotency_keys (scope, key, fingerprint, outcome, created_at, expires_at)
             VALUES ($1, $2, $3, '{}', $4, $5)",
        )
        .bind(&idem.scope)
        .bind(&idem.key)
        .bind(&idem.fingerprint)
        .bind(send.now)
        .bind(idem.expires_at)
        .execute(&mut **tx)
        .await?;
    }
    let outcome = decide_send(tx, send).await?;
    if let Some(idem) = &send.idempotency {
        sqlx::query("UPDATE idempotency_keys SET outcome = $1 WHERE scope = $2 AND key = $3")
            .bind(serde_json::to_string(&outcome).context("outcome")?)
            .bind(&idem.scope)
            .bind(&idem.key)
            .execute(&mut **tx)
            .await?;
    }
    Ok(outcome)
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
         WHERE channel_id = $1 AND phone_number = $2 AND status IN ('pending', 'open')
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
        sqlx::query(
            "UPDATE conversations SET status = 'closed', closed_at = $1, close_reason = 'expired'
             WHERE id = $2",
        )
        .bind(send.now)
        .bind(&conversation_id)
        .execute(&mut **tx)
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
    let taken =
        sqlx::query("DELETE FROM delivery_jobs WHERE message_id = $1 AND lease_until IS NULL")
            .bind(id)
            .execute(&mut **tx)
            .await?
            .rows_affected();
    let row = if taken == 0 {
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
    let cancelled = message_from_row(&row)?;
    let event = message_event(&cancelled, MessageStatus::Cancelled, None, now);
    queue_events(tx, lookups, &cancelled.account_id, event.as_slice()).await?;
    let conversation =
        conversation_follows(tx, lookups, &cancelled, MessageStatus::Cancelled, now, true).await?;
    Ok(CancelOutcome::Cancelled {
        message: Box::new(cancelled),
        conversation,
    })
}

#[async_trait]
impl Store for PgStore {
    fn shared(&self) -> &super::sql::Shared {
        &self.shared
    }

    async fn ping(&self) -> StoreResult<bool> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        let latest = MIGRATIONS.last().map_or(0, |(version, _, _)| *version);
        let applied: Result<i64, sqlx::Error> =
            sqlx::query_scalar("SELECT COUNT(*) FROM schema_migrations WHERE version = $1")
                .bind(latest)
                .fetch_one(&self.pool)
                .await;
        Ok(matches!(applied, Ok(n) if n > 0))
    }

    async fn queues(&self) -> StoreResult<Vec<ChannelQueue>> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            // Scheduled and held messages not due yet, and paused batches' messages, wait by
            // design: they are not a backlog. A due one counts from its time.
            "SELECT j.channel_id, COUNT(*),
                    MIN(coalesce(m.held_until, m.scheduled_for, m.queued_at))
             FROM delivery_jobs j JOIN messages m ON m.id = j.message_id
             WHERE j.paused = 0 AND j.run_at <= CAST(extract(epoch FROM now()) * 1000 AS BIGINT) + 1000
                OR (m.status <> 'scheduled' AND m.held_until IS NULL AND j.paused = 0)
             GROUP BY j.channel_id ORDER BY j.channel_id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(channel_id, depth, oldest_queued_at)| ChannelQueue {
                channel_id,
                depth,
                oldest_queued_at,
            })
            .collect())
    }

    async fn message_counts(&self) -> StoreResult<Vec<(String, i64)>> {
        Ok(
            sqlx::query_as("SELECT status, COUNT(*) FROM messages GROUP BY status ORDER BY status")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn insert_group(&self, g: &Group) -> StoreResult<()> {
        let _changed = self.lookups.writing();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO groups (id, account_id, name, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&g.id)
        .bind(&g.account_id)
        .bind(&g.name)
        .bind(g.created_at)
        .execute(&mut *tx)
        .await?;
        for channel_id in &g.channel_ids {
            sqlx::query("INSERT INTO channel_groups (channel_id, group_id) VALUES ($1, $2)")
                .bind(channel_id)
                .bind(&g.id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn group_by_name(&self, account_id: &str, name: &str) -> StoreResult<Option<Group>> {
        let row = sqlx::query("SELECT * FROM groups WHERE account_id = $1 AND name = $2")
            .bind(account_id)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        group_with_channels(&self.pool, row).await
    }

    async fn default_group(&self, channel_id: &str) -> StoreResult<Option<Group>> {
        self.lookups
            .default_group
            .get_or(&self.lookups, channel_id, async {
                let row = sqlx::query(
                    "SELECT g.* FROM channel_groups cg JOIN groups g ON g.id = cg.group_id
             WHERE cg.channel_id = $1 ORDER BY cg.seq LIMIT 1",
                )
                .bind(channel_id)
                .fetch_optional(&self.pool)
                .await?;
                group_with_channels(&self.pool, row).await
            })
            .await
    }

    async fn insert_template(&self, t: &Template) -> StoreResult<()> {
        let _changed = self.lookups.writing();
        sqlx::query(
            "INSERT INTO templates (id, account_id, name, language, category, status, app_id,
                message, header, footer, buttons, group_name, active, created_at, updated_at, extra)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(&t.id)
        .bind(&t.account_id)
        .bind(&t.name)
        .bind(&t.language)
        .bind(&t.category)
        .bind(&t.status)
        .bind(&t.app_id)
        .bind(&t.message)
        .bind(t.header.as_ref().map(|h| h.to_string()))
        .bind(&t.footer)
        .bind(t.buttons.to_string())
        .bind(&t.group_name)
        .bind(t.active)
        .bind(t.created_at)
        .bind(t.updated_at)
        .bind(t.extra.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn update_template(&self, t: &Template) -> StoreResult<()> {
        let _changed = self.lookups.writing();
        sqlx::query(
            "UPDATE templates SET name = $1, language = $2, category = $3, status = $4,
                app_id = $5, message = $6, header = $7, footer = $8, buttons = $9,
                group_name = $10, active = $11, updated_at = $12, extra = $14
             WHERE id = $13",
        )
        .bind(&t.name)
        .bind(&t.language)
        .bind(&t.category)
        .bind(&t.status)
        .bind(&t.app_id)
        .bind(&t.message)
        .bind(t.header.as_ref().map(|h| h.to_string()))
        .bind(&t.footer)
        .bind(t.buttons.to_string())
        .bind(&t.group_name)
        .bind(t.active)
        .bind(t.updated_at)
        .bind(&t.id)
        .bind(t.extra.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn template(&self, id: &str) -> StoreResult<Option<Template>> {
        sqlx::query("SELECT * FROM templates WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(template_from_row)
            .transpose()
    }

    async fn account_template(&self, account_id: &str, id: &str) -> StoreResult<Option<Template>> {
        self.lookups
            .account_template
            .get_or(&self.lookups, &format!("{account_id}\n{id}"), async {
                sqlx::query("SELECT * FROM templates WHERE id = $1 AND account_id = $2")
                    .bind(id)
                    .bind(account_id)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(template_from_row)
                    .transpose()
            })
            .await
    }

    async fn template_by_app_id(
        &self,
        account_id: &str,
        app_id: &str,
    ) -> StoreResult<Option<Template>> {
        sqlx::query(
            "SELECT * FROM templates WHERE account_id = $1 AND app_id = $2
             ORDER BY created_at, id COLLATE \"C\" LIMIT 1",
        )
        .bind(account_id)
        .bind(app_id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(template_from_row)
        .transpose()
    }

    async fn template_by_name(
        &self,
        account_id: &str,
        name: &str,
        language: &str,
    ) -> StoreResult<Option<Template>> {
        sqlx::query(
            "SELECT * FROM templates WHERE account_id = $1 AND name = $2 AND language = $3
             ORDER BY (status = 'DELETED'), created_at, id COLLATE \"C\" LIMIT 1",
        )
        .bind(account_id)
        .bind(name)
        .bind(language)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(template_from_row)
        .transpose()
    }

    async fn list_templates(
        &self,
        account_id: &str,
        f: &TemplateFilter,
    ) -> StoreResult<(Vec<Template>, u64)> {
        // SQLite's NOCASE and lower() fold ASCII letters only; lower() under the "C"
        // collation does the same here, whatever the database's locale. Ids order bytewise,
        // as in SQLite.
        const WHERE: &str = "WHERE account_id = $1
             AND ($2::text IS NULL OR lower(status COLLATE \"C\") = lower($2 COLLATE \"C\"))
             AND ($3::text IS NULL
                  OR strpos(lower(name COLLATE \"C\"), lower($3 COLLATE \"C\")) > 0)
             AND ($2::text IS NOT NULL OR status <> 'DELETED')";
        let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM templates {WHERE}"))
            .bind(account_id)
            .bind(&f.status)
            .bind(&f.name)
            .fetch_one(&self.pool)
            .await?;
        let rows = sqlx::query(&format!(
            "SELECT * FROM templates {WHERE} ORDER BY created_at, id COLLATE \"C\"
             LIMIT $4 OFFSET $5"
        ))
        .bind(account_id)
        .bind(&f.status)
        .bind(&f.name)
        .bind(i64::from(f.limit))
        .bind(i64::from(f.offset))
        .fetch_all(&self.pool)
        .await?;
        let templates = rows
            .iter()
            .map(template_from_row)
            .collect::<StoreResult<_>>()?;
        Ok((templates, total as u64))
    }

    async fn conversation(&self, id: &str) -> StoreResult<Option<Conversation>> {
        sqlx::query(&format!("{CONVERSATION_SELECT} WHERE c.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(conversation_from_row)
            .transpose()
    }

    async fn close_conversation(
        &self,
        id: &str,
        reason: CloseReason,
        now: i64,
    ) -> StoreResult<Option<Conversation>> {
        let mut tx = self.pool.begin().await?;
        let closed = sqlx::query(
            "UPDATE conversations SET status = 'closed', closed_at = $1, close_reason = $2
             WHERE id = $3 AND status != 'closed'",
        )
        .bind(now)
        .bind(reason.as_str())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let conversation = sqlx::query(&format!("{CONVERSATION_SELECT} WHERE c.id = $1"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .as_ref()
            .map(conversation_from_row)
            .transpose()?;
        if let Some(c) = &conversation
            && closed.rows_affected() == 1
        {
            let event = conversation_event(
                &c.id,
                &c.channel_id,
                &c.phone_number,
                c.status,
                c.close_reason.as_deref(),
                None,
                now,
            );
            queue_events(&mut tx, &self.lookups, &c.account_id, event.as_slice()).await?;
        }
        tx.commit().await?;
        Ok(conversation)
    }

    async fn message(&self, id: &str) -> StoreResult<Option<Message>> {
        sqlx::query("SELECT * FROM messages WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(message_from_row)
            .transpose()
    }

    async fn message_attempts(&self, message_id: &str) -> StoreResult<Vec<AttemptRecord>> {
        let rows = sqlx::query("SELECT * FROM delivery_attempts WHERE message_id = $1 ORDER BY id")
            .bind(message_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AttemptRecord {
                    attempt: r.try_get("attempt")?,
                    finished_at: r.try_get("finished_at")?,
                    outcome: r.try_get("outcome")?,
                    error: match r.try_get::<Option<i64>, _>("error_code")? {
                        Some(code) => Some(ProviderError {
                            code,
                            title: r
                                .try_get::<Option<String>, _>("error_title")?
                                .unwrap_or_default(),
                            details: r.try_get("error_details")?,
                        }),
                        None => None,
                    },
                })
            })
            .collect()
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
            match self.record_inbound_once(channel, phone, name, at).await {
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

    async fn conversation_inbound(
        &self,
        conversation_id: &str,
        after: Option<(i64, String)>,
        limit: u32,
    ) -> StoreResult<Vec<InboundMessage>> {
        let (after_time, after_id) = after.unzip();
        let rows = sqlx::query(
            "SELECT * FROM inbound_messages WHERE conversation_id = $1
               AND ($2::BIGINT IS NULL OR received_at > $2 OR (received_at = $2 AND id > $3))
             ORDER BY received_at, id LIMIT $4",
        )
        .bind(conversation_id)
        .bind(after_time)
        .bind(after_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(inbound_from_row).collect()
    }

    async fn link_message_user_id(
        &self,
        message_id: &str,
        user_id: &str,
        now: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE contacts c SET user_id = $1, updated_at = $2 FROM messages m
             WHERE m.id = $3 AND c.account_id = m.account_id AND c.phone_number = m.phone_number
               AND c.user_id IS DISTINCT FROM $1",
        )
        .bind(user_id)
        .bind(now)
        .bind(message_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn accept_send(&self, send: &AcceptSend) -> StoreResult<AcceptOutcome> {
        if send.idempotency.is_none() {
            // A send to a number with no active conversation (read without a lock), the
            // first message of every conversation, is one statement outside a transaction:
            // counter, contact, conversation, message and job commit together. A conversation
            // another send created meanwhile makes it fail on `conversations_one_active`
            // (`StoreError::Conflict`), and the send service decides it again.
            let active: Option<String> = sqlx::query_scalar(
                "SELECT id FROM conversations
                 WHERE channel_id = $1 AND phone_number = $2 AND status IN ('pending', 'open')",
            )
            .bind(&send.channel_id)
            .bind(&send.phone_number)
            .fetch_optional(&self.pool)
            .await?;
            if active.is_none() {
                let written = write_send(&self.pool, send, None).await?;
                return Ok(pending_or_limit(send, written));
            }
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
        let mut outcomes = Vec::with_capacity(sends.len());
        for send in sends {
            // A savepoint per send: one send's failure leaves the others standing.
            let mut one = sqlx::Acquire::begin(&mut tx).await?;
            match accept_in(&mut one, send).await {
                Ok(outcome) => {
                    one.commit().await?;
                    outcomes.push(Ok(outcome));
                }
                Err(e) => {
                    one.rollback().await?;
                    outcomes.push(Err(e));
                }
            }
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn insert_batch(&self, b: &Batch) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO batches (id, account_id, channel_id, total, accepted, rejected, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (id) DO UPDATE SET total = excluded.total,
                accepted = excluded.accepted, rejected = excluded.rejected",
        )
        .bind(&b.id)
        .bind(&b.account_id)
        .bind(&b.channel_id)
        .bind(b.total)
        .bind(b.accepted)
        .bind(b.rejected)
        .bind(b.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn batch(&self, id: &str) -> StoreResult<Option<Batch>> {
        let row = sqlx::query("SELECT * FROM batches WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(Batch {
                id: r.try_get("id")?,
                account_id: r.try_get("account_id")?,
                channel_id: r.try_get("channel_id")?,
                total: r.try_get("total")?,
                accepted: r.try_get("accepted")?,
                rejected: r.try_get("rejected")?,
                created_at: r.try_get("created_at")?,
                paused: r.try_get::<i32, _>("paused")? != 0,
            })
        })
        .transpose()
    }

    async fn batch_counts(&self, id: &str) -> StoreResult<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT status, count(*) FROM messages WHERE batch_id = $1 GROUP BY status ORDER BY status",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn list_messages(
        &self,
        account_id: &str,
        f: &MessageFilter,
    ) -> StoreResult<Vec<Message>> {
        let mut q =
            sqlx::QueryBuilder::<Postgres>::new("SELECT * FROM messages WHERE account_id = ");
        q.push_bind(account_id);
        let equal = [
            ("channel_id", &f.channel_id),
            ("status", &f.status),
            ("phone_number", &f.phone_number),
            ("batch_id", &f.batch_id),
            ("template_id", &f.template_id),
            ("conversation_id", &f.conversation_id),
        ];
        for (column, value) in equal {
            if let Some(value) = value {
                q.push(format_args!(" AND {column} = ")).push_bind(value);
            }
        }
        if let Some(from) = f.from {
            q.push(" AND queued_at >= ").push_bind(from);
        }
        if let Some(to) = f.to {
            q.push(" AND queued_at < ").push_bind(to);
        }
        let (past, order) = if f.newest_first {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        if let Some((time, id)) = &f.after {
            q.push(format_args!(" AND (queued_at {past} "))
                .push_bind(time);
            q.push(" OR (queued_at = ").push_bind(time);
            q.push(format_args!(" AND id {past} "))
                .push_bind(id)
                .push("))");
        }
        q.push(format_args!(
            " ORDER BY queued_at {order}, id {order} LIMIT "
        ))
        .push_bind(i64::from(f.limit));
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.iter().map(message_from_row).collect()
    }

    async fn list_conversations(
        &self,
        account_id: &str,
        f: &ConversationFilter,
    ) -> StoreResult<Vec<Conversation>> {
        let mut q = sqlx::QueryBuilder::<Postgres>::new(CONVERSATION_SELECT);
        q.push(" WHERE c.account_id = ").push_bind(account_id);
        let equal = [
            ("c.channel_id", &f.channel_id),
            ("c.status", &f.status),
            ("c.phone_number", &f.phone_number),
        ];
        for (column, value) in equal {
            if let Some(value) = value {
                q.push(format_args!(" AND {column} = ")).push_bind(value);
            }
        }
        let (past, order) = if f.newest_first {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        if let Some((time, id)) = &f.after {
            q.push(format_args!(" AND (c.created_at {past} "))
                .push_bind(time);
            q.push(" OR (c.created_at = ").push_bind(time);
            q.push(format_args!(" AND c.id {past} "))
                .push_bind(id)
                .push("))");
        }
        q.push(format_args!(
            " ORDER BY c.created_at {order}, c.id {order} LIMIT "
        ))
        .push_bind(i64::from(f.limit));
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.iter().map(conversation_from_row).collect()
    }

    async fn next_attempt_at(&self, message_id: &str) -> StoreResult<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT run_at FROM delivery_jobs WHERE message_id = $1")
                .bind(message_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn delete_expired_idempotency_keys(&self, now: i64) -> StoreResult<u64> {
        Ok(
            sqlx::query("DELETE FROM idempotency_keys WHERE expires_at <= $1")
                .bind(now)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
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
        for chunk in ids.chunks(500) {
            let mut tx = self.pool.begin().await?;
            for id in chunk {
                // A savepoint per message: one the dispatcher took meanwhile is left to it.
                let mut one = sqlx::Acquire::begin(&mut tx).await?;
                match cancel_in(&mut one, &self.lookups, None, id, now).await {
                    Ok(CancelOutcome::Cancelled { .. }) => {
                        one.commit().await?;
                        cancelled.push(id.clone());
                    }
                    Ok(_) | Err(StoreError::Conflict(_)) => one.rollback().await?,
                    Err(e) => return Err(e),
                }
            }
            tx.commit().await?;
        }
        Ok(cancelled)
    }

    async fn set_batch_paused(&self, batch_id: &str, paused: bool) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let found = sqlx::query("UPDATE batches SET paused = $1 WHERE id = $2")
            .bind(i32::from(paused))
            .bind(batch_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        sqlx::query(
            "UPDATE delivery_jobs SET paused = $1
             WHERE message_id IN (SELECT id FROM messages WHERE batch_id = $2)",
        )
        .bind(i32::from(paused))
        .bind(batch_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(found)
    }

    async fn hold_job(
        &self,
        message_id: &str,
        attempt: i64,
        until: i64,
        reason: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let held = sqlx::query(
            "UPDATE delivery_jobs SET run_at = $1, lease_until = NULL, tries = tries - 1
             WHERE message_id = $2 AND attempt = $3",
        )
        .bind(until)
        .bind(message_id)
        .bind(attempt)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if held {
            sqlx::query(
                "UPDATE messages SET status = CASE WHEN status = 'sending' THEN 'queued'
                        ELSE status END,
                    attempts = attempts - 1, sending_at = NULL, held_until = $1,
                    held_reason = $2, updated_at = $3
                 WHERE id = $4",
            )
            .bind(until)
            .bind(reason)
            .bind(now)
            .bind(message_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(held)
    }

    async fn new_recipients(&self, channel_id: &str, since: i64) -> StoreResult<NewRecipients> {
        let (count, oldest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT count(DISTINCT m.phone_number), min(m.sending_at) FROM messages m
             JOIN conversations c ON c.first_message_id = m.id
             WHERE m.channel_id = $1 AND m.sending_at >= $2",
        )
        .bind(channel_id)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        Ok(NewRecipients { count, oldest })
    }

    async fn set_quiet_hours(
        &self,
        account_id: &str,
        window: Option<(i64, i64)>,
        now: i64,
    ) -> StoreResult<bool> {
        let _changed = self.lookups.writing();
        let (start, end) = window.unzip();
        Ok(sqlx::query(
            "UPDATE accounts SET quiet_start = $1, quiet_end = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(start)
        .bind(end)
        .bind(now)
        .bind(account_id)
        .execute(&self.pool)
        .await?
        .rows_affected()
            > 0)
    }

    async fn set_messaging_limit(
        &self,
        channel_id: &str,
        limit: Option<i64>,
        now: i64,
    ) -> StoreResult<bool> {
        let _changed = self.lookups.writing();
        Ok(
            sqlx::query("UPDATE channels SET messaging_limit = $1, updated_at = $2 WHERE id = $3")
                .bind(limit)
                .bind(now)
                .bind(channel_id)
                .execute(&self.pool)
                .await?
                .rows_affected()
                > 0,
        )
    }

    async fn batch_report(&self, batch_id: &str) -> StoreResult<BatchReport> {
        let by_error_code = sqlx::query_as(
            "SELECT error_code, count(*) FROM messages
             WHERE batch_id = $1 AND status = 'failed' AND error_code IS NOT NULL
             GROUP BY error_code ORDER BY error_code",
        )
        .bind(batch_id)
        .fetch_all(&self.pool)
        .await?;
        let by_template = sqlx::query_as(
            "SELECT template_id, status, count(*) FROM messages WHERE batch_id = $1
             GROUP BY template_id, status ORDER BY template_id, status",
        )
        .bind(batch_id)
        .fetch_all(&self.pool)
        .await?;
        let held = sqlx::query_as(
            "SELECT held_reason, count(*) FROM messages
             WHERE batch_id = $1 AND held_reason IS NOT NULL AND status = 'queued'
             GROUP BY held_reason ORDER BY held_reason",
        )
        .bind(batch_id)
        .fetch_all(&self.pool)
        .await?;
        let last_due = sqlx::query_scalar(
            "SELECT max(j.run_at) FROM delivery_jobs j JOIN messages m ON m.id = j.message_id
             WHERE m.batch_id = $1",
        )
        .bind(batch_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(BatchReport {
            by_error_code,
            by_template,
            held,
            last_due,
        })
    }

    async fn insert_api_key(&self, k: &ApiKey, key_hash: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO api_keys (id, account_id, name, key_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&k.id)
        .bind(&k.account_id)
        .bind(&k.name)
        .bind(key_hash)
        .bind(k.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn api_key(&self, key_hash: &str) -> StoreResult<Option<ApiKey>> {
        let row = sqlx::query("SELECT * FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL")
            .bind(key_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(ApiKey {
                id: r.try_get("id")?,
                account_id: r.try_get("account_id")?,
                name: r.try_get("name")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    async fn due_channels(&self, now: i64, orphan_wait_ms: i64) -> StoreResult<Vec<String>> {
        // Due, and not leased or leased by a dispatcher that died more than the wait ago; on
        // a channel that can send. Per channel, so a long queue is not read on every pass:
        // the index walk stops at the first due job.
        Ok(sqlx::query_scalar(
            "SELECT c.id FROM channels c
             WHERE c.status = 'connected' AND c.health = 'ok' AND EXISTS (
                SELECT 1 FROM delivery_jobs j WHERE j.channel_id = c.id AND j.run_at <= $1
                  AND (j.lease_until IS NULL OR j.lease_until + $2 <= $1) AND j.paused = 0)",
        )
        .bind(now)
        .bind(orphan_wait_ms)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn next_due(&self, orphan_wait_ms: i64) -> StoreResult<Option<i64>> {
        // The first unleased job of each channel, and the leases (few: the sends in flight).
        Ok(sqlx::query_scalar(
            "SELECT min(t) FROM (
                SELECT (SELECT j.run_at FROM delivery_jobs j
                        WHERE j.channel_id = c.id AND j.lease_until IS NULL AND j.paused = 0
                        ORDER BY j.run_at LIMIT 1) AS t
                FROM channels c WHERE c.status = 'connected' AND c.health = 'ok'
                UNION ALL
                SELECT GREATEST(j.run_at, j.lease_until + $1) FROM delivery_jobs j
                JOIN channels c ON c.id = j.channel_id AND c.status = 'connected'
                    AND c.health = 'ok'
                WHERE j.lease_until IS NOT NULL) due",
        )
        .bind(orphan_wait_ms)
        .fetch_one(&self.pool)
        .await?)
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
        let mut claimed: Vec<(i64, String, i64, i64)> = claimed
            .iter()
            .map(|r| {
                Ok((
                    r.try_get("seq")?,
                    r.try_get("message_id")?,
                    r.try_get("attempt")?,
                    r.try_get("tries")?,
                ))
            })
            .collect::<StoreResult<_>>()?;
        claimed.sort_by_key(|(seq, ..)| *seq);
        let mut jobs = Vec::with_capacity(claimed.len());
        let mut templates: std::collections::HashMap<String, Template> =
            std::collections::HashMap::new();
        for (_, message_id, attempt, tries) in claimed {
            let row = sqlx::query(
                "UPDATE messages SET status = CASE WHEN status IN ('scheduled', 'queued', 'sending')
                        THEN 'sending' ELSE status END,
                    sending_at = coalesce(sending_at, $1), attempts = $2, updated_at = $1,
                    held_until = NULL, held_reason = NULL
                 WHERE id = $3 RETURNING *",
            )
            .bind(now)
            .bind(tries)
            .bind(&message_id)
            .fetch_one(&mut *tx)
            .await?;
            let message = message_from_row(&row)?;
            // A claim's messages mostly share a template: read each once.
            let template = match templates.get(&message.template_id) {
                Some(t) => Clone::clone(t),
                None => {
                    let row = sqlx::query("SELECT * FROM templates WHERE id = $1")
                        .bind(&message.template_id)
                        .fetch_one(&mut *tx)
                        .await?;
                    let t = template_from_row(&row)?;
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
        self.outcomes.finish(o).await
    }

    async fn apply_status(&self, u: &StatusUpdate) -> StoreResult<StatusApplied> {
        let mut tx = self.pool.begin().await?;
        // The message by its wamid, else by our id. Its job is locked first, the order
        // `claim_jobs` and `finish_attempt` take them in; a status past `sending` ends the job
        // (the provider has the message: no dispatcher may send it again), in the same
        // statement. If the status turns out not to apply, the transaction is rolled back.
        let ends_job = u.status != MessageStatus::Queued && u.status != MessageStatus::Sending;
        let id: Option<String> = sqlx::query_scalar(if ends_job {
            "WITH target AS (
                SELECT coalesce((SELECT id FROM messages WHERE provider_message_id = $1),
                                (SELECT id FROM messages WHERE id = $2)) AS id),
             gone AS (DELETE FROM delivery_jobs WHERE message_id = (SELECT id FROM target))
             SELECT id FROM target"
        } else {
            "SELECT coalesce((SELECT id FROM messages WHERE provider_message_id = $1),
                             (SELECT id FROM messages WHERE id = $2))"
        })
        .bind(&u.provider_message_id)
        .bind(&u.message_id)
        .fetch_one(&mut *tx)
        .await?;
        let Some(id) = id else {
            return Ok(StatusApplied::UnknownMessage);
        };
        if !ends_job {
            sqlx::query("SELECT seq FROM delivery_jobs WHERE message_id = $1 FOR UPDATE")
                .bind(&id)
                .fetch_optional(&mut *tx)
                .await?;
        }
        // Then the message, decided on as it is now: two statuses for one message are applied
        // one after the other.
        let row = sqlx::query(MESSAGE_TO_MOVE)
            .bind(&id)
            .fetch_one(&mut *tx)
            .await?;
        let message = message_from_row(&row)?;
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
            .execute(&mut *tx)
            .await?;
            let event = message_event(&message, u.status, None, u.at);
            queue_events(
                &mut tx,
                &self.lookups,
                &message.account_id,
                event.as_slice(),
            )
            .await?;
            conversation =
                conversation_follows(&mut tx, &self.lookups, &message, u.status, u.at, pending)
                    .await?;
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
            .execute(&mut *tx)
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
                .execute(&mut *tx)
                .await?;
            }
            if changed {
                let error = u.error.clone().unwrap_or(ProviderError {
                    code: 0,
                    title: "Failed without an error from the provider".into(),
                    details: None,
                });
                conversation =
                    fail_message(&mut tx, &self.lookups, &message, &error, u.at, pending).await?;
            }
        }
        tx.commit().await?;
        Ok(StatusApplied::Applied {
            status: if changed { u.status } else { message.status },
            message_id: message.id,
            changed,
            conversation,
        })
    }

    async fn store_pending_status(&self, u: &StatusUpdate, now: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO pending_statuses (provider_message_id, message_id, status, at,
                error_code, error_title, error_details, pricing_category, received_at,
                pricing_type, pricing_model, pricing_billable)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (provider_message_id, status) DO NOTHING",
        )
        .bind(&u.provider_message_id)
        .bind(&u.message_id)
        .bind(u.status.as_str())
        .bind(u.at)
        .bind(u.error.as_ref().map(|e| e.code))
        .bind(u.error.as_ref().map(|e| e.title.as_str()))
        .bind(u.error.as_ref().and_then(|e| e.details.as_deref()))
        .bind(&u.pricing_category)
        .bind(now)
        .bind(u.pricing.as_ref().and_then(|p| p.pricing_type.as_deref()))
        .bind(u.pricing.as_ref().and_then(|p| p.pricing_model.as_deref()))
        .bind(u.pricing.as_ref().and_then(|p| p.billable))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn expire_pending_statuses(&self, received_before: i64) -> StoreResult<u64> {
        Ok(
            sqlx::query("DELETE FROM pending_statuses WHERE received_at < $1")
                .bind(received_before)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    async fn pending_status_count(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM pending_statuses")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn sandbox_in_flight(&self, limit: i64) -> StoreResult<Vec<SimulatedMessage>> {
        let rows: Vec<SimulatedRow> = sqlx::query_as(&sandbox_in_flight_sql("$1"))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(SimulatedMessage::from_row).collect()
    }

    async fn take_pending_statuses(
        &self,
        provider_message_id: &str,
        message_id: &str,
    ) -> StoreResult<Vec<StatusUpdate>> {
        let rows = sqlx::query(
            "DELETE FROM pending_statuses WHERE provider_message_id = $1 OR message_id = $2
             RETURNING *",
        )
        .bind(provider_message_id)
        .bind(message_id)
        .fetch_all(&self.pool)
        .await?;
        let mut updates = rows
            .iter()
            .map(|r| Ok((r.try_get::<i64, _>("id")?, status_from_pending_row(r)?)))
            .collect::<StoreResult<Vec<_>>>()?;
        updates.sort_by_key(|(id, _)| *id);
        Ok(updates.into_iter().map(|(_, u)| u).collect())
    }

    async fn own_channel(
        &self,
        channel_id: &str,
        owner: &str,
        now: i64,
        ttl_ms: i64,
    ) -> StoreResult<bool> {
        let row = sqlx::query(
            "INSERT INTO channel_owners (channel_id, owner, until) VALUES ($1, $2, $3 + $4)
             ON CONFLICT (channel_id) DO UPDATE SET owner = excluded.owner, until = excluded.until
             WHERE channel_owners.owner = excluded.owner OR channel_owners.until <= $3
             RETURNING owner",
        )
        .bind(channel_id)
        .bind(owner)
        .bind(now)
        .bind(ttl_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    async fn release_channels(&self, owner: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM channel_owners WHERE owner = $1")
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(())
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
            forget_expired_key(&mut tx, idem, e.created_at).await?;
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
                let Some((fingerprint, outcome)) = stored_key(&mut tx, idem).await? else {
                    // Forgotten (expired) between the two statements: decide again.
                    return Err(StoreError::Conflict(
                        "the idempotency key was forgotten meanwhile".into(),
                    ));
                };
                let Some(id) = endpoint_replay(&idem.fingerprint, &fingerprint, &outcome)? else {
                    return Ok(EndpointInsert::KeyReused);
                };
                let created = sqlx::query(
                    "SELECT * FROM webhook_endpoints WHERE id = $1 AND account_id = $2",
                )
                .bind(&id)
                .bind(&e.account_id)
                .fetch_optional(&mut *tx)
                .await?;
                return Ok(match created {
                    Some(row) => EndpointInsert::Replayed(endpoint_from_row(&row)?),
                    None => EndpointInsert::ReplayedDeleted { id },
                });
            }
        }
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, account_id, url, event_types, description,
                secret, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&e.id)
        .bind(&e.account_id)
        .bind(&e.url)
        .bind(serde_json::to_string(&e.event_types).context("event types")?)
        .bind(&e.description)
        .bind(&e.secret)
        .bind(e.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(EndpointInsert::Created)
    }

    async fn webhook_endpoints(&self, account_id: &str) -> StoreResult<Vec<WebhookEndpoint>> {
        sqlx::query("SELECT * FROM webhook_endpoints WHERE account_id = $1 ORDER BY created_at, id")
            .bind(account_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(endpoint_from_row)
            .collect()
    }

    async fn webhook_endpoint(
        &self,
        account_id: &str,
        id: &str,
    ) -> StoreResult<Option<WebhookEndpoint>> {
        sqlx::query("SELECT * FROM webhook_endpoints WHERE id = $1 AND account_id = $2")
            .bind(id)
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(endpoint_from_row)
            .transpose()
    }

    async fn delete_webhook_endpoint(&self, account_id: &str, id: &str) -> StoreResult<bool> {
        let _changed = self.lookups.writing();
        let mut tx = self.pool.begin().await?;
        let deleted =
            sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1 AND account_id = $2")
                .bind(id)
                .bind(account_id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
        if deleted {
            sqlx::query("DELETE FROM callback_outbox WHERE endpoint_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }

    async fn callback_deliveries(
        &self,
        endpoint_id: &str,
        after_seq: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<CallbackDelivery>> {
        sqlx::query(
            "SELECT * FROM callback_outbox
             WHERE endpoint_id = $1 AND ($2::BIGINT IS NULL OR seq > $2)
             ORDER BY seq LIMIT $3",
        )
        .bind(endpoint_id)
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(delivery_from_row)
        .collect()
    }

    async fn set_callback_secret(&self, account_id: &str, secret: &str) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE accounts SET callback_secret = $1 WHERE id = $2")
            .bind(secret)
            .bind(account_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_template_status(&self, id: &str, status: &str, now: i64) -> StoreResult<bool> {
        let _changed = self.lookups.writing();
        let mut tx = self.pool.begin().await?;
        // The template's row alone is locked: two status updates of it are applied one after
        // the other, so their events are queued in the order they happened.
        let Some(row) = sqlx::query("SELECT * FROM templates WHERE id = $1 FOR NO KEY UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(false);
        };
        let mut template = template_from_row(&row)?;
        if template.status == status {
            return Ok(false);
        }
        sqlx::query("UPDATE templates SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(status)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let previous = std::mem::replace(&mut template.status, status.to_string());
        let event = template_event(&template, &previous, now);
        queue_events(&mut tx, &self.lookups, &template.account_id, &[event]).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn list_suppressions(
        &self,
        account_id: &str,
        after: Option<(i64, String)>,
        limit: u32,
    ) -> StoreResult<Vec<Suppression>> {
        let (after_ms, after_phone) = after.unwrap_or((i64::MIN, String::new()));
        let rows = sqlx::query(
            "SELECT * FROM suppressions WHERE account_id = $1
               AND (created_at > $2 OR (created_at = $2 AND phone_number > $3))
             ORDER BY created_at, phone_number LIMIT $4",
        )
        .bind(account_id)
        .bind(after_ms)
        .bind(after_phone)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(suppression_from_row).collect()
    }

    async fn suppression(
        &self,
        account_id: &str,
        phone_number: &str,
    ) -> StoreResult<Option<Suppression>> {
        let row =
            sqlx::query("SELECT * FROM suppressions WHERE account_id = $1 AND phone_number = $2")
                .bind(account_id)
                .bind(phone_number)
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(suppression_from_row).transpose()
    }

    async fn add_suppression(&self, entry: &Suppression) -> StoreResult<Option<Suppression>> {
        let mut tx = self.pool.begin().await?;
        // The primary key decides between two concurrent adds: the loser reads the winner's.
        let inserted = sqlx::query(
            "INSERT INTO suppressions (account_id, phone_number, reason, note, automatic,
                channel_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (account_id, phone_number) DO NOTHING",
        )
        .bind(&entry.account_id)
        .bind(&entry.phone_number)
        .bind(&entry.reason)
        .bind(&entry.note)
        .bind(entry.automatic)
        .bind(&entry.channel_id)
        .bind(entry.created_at)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !inserted {
            let row = sqlx::query(
                "SELECT * FROM suppressions WHERE account_id = $1 AND phone_number = $2",
            )
            .bind(&entry.account_id)
            .bind(&entry.phone_number)
            .fetch_optional(&mut *tx)
            .await?;
            tx.commit().await?;
            return match row {
                Some(row) => Ok(Some(suppression_from_row(&row)?)),
                // Removed again in between: as good as added by the other writer.
                None => Ok(None),
            };
        }
        let event = contact_event(
            EventType::ContactOptedOut,
            entry,
            &entry.reason,
            entry.channel_id.as_deref(),
            entry.created_at,
        );
        queue_events(&mut tx, &self.lookups, &entry.account_id, &[event]).await?;
        tx.commit().await?;
        Ok(None)
    }

    async fn remove_suppression(
        &self,
        account_id: &str,
        phone_number: &str,
        removal: &SuppressionRemoval,
    ) -> StoreResult<Option<Suppression>> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "DELETE FROM suppressions WHERE account_id = $1 AND phone_number = $2
               AND (automatic OR NOT $3)
             RETURNING *",
        )
        .bind(account_id)
        .bind(phone_number)
        .bind(removal.only_automatic)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let removed = suppression_from_row(&row)?;
        let event = contact_event(
            EventType::ContactOptedIn,
            &removed,
            &removal.reason,
            removal.channel_id.as_deref(),
            removal.now,
        );
        queue_events(&mut tx, &self.lookups, account_id, &[event]).await?;
        tx.commit().await?;
        Ok(Some(removed))
    }

    async fn requeue_declined(
        &self,
        message_id: &str,
        channel_id: Option<&str>,
        error: &ProviderError,
        run_at: i64,
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "UPDATE messages SET status = 'queued', provider_message_id = NULL, sent_at = NULL,
                error_code = $1, error_title = $2, error_details = $3, updated_at = $4
             WHERE id = $5 AND status IN ('sending', 'sent')
               AND ($6::text IS NULL OR channel_id = $6)
             RETURNING channel_id, attempts",
        )
        .bind(error.code)
        .bind(&error.title)
        .bind(&error.details)
        .bind(now)
        .bind(message_id)
        .bind(channel_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let channel: String = row.try_get("channel_id")?;
        let attempts: i64 = row.try_get("attempts")?;
        sqlx::query(
            "INSERT INTO delivery_jobs (message_id, channel_id, run_at, attempt, tries)
             VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(message_id)
        .bind(&channel)
        .bind(run_at)
        .bind(attempts)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO delivery_attempts (message_id, attempt, finished_at, outcome, error_code,
                error_title, error_details) VALUES ($1, $2, $3, 'retry', $4, $5, $6)",
        )
        .bind(message_id)
        .bind(attempts)
        .bind(now)
        .bind(error.code)
        .bind(&error.title)
        .bind(&error.details)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn apply_template_health(
        &self,
        template_id: &str,
        change: &TemplateHealthChange,
        now: i64,
    ) -> StoreResult<bool> {
        let _changed = self.lookups.writing();
        let mut tx = self.pool.begin().await?;
        // The template's row is locked, as in `set_template_status`: two reports of one
        // template are applied one after the other, their events queued in that order.
        let Some(row) = sqlx::query("SELECT * FROM templates WHERE id = $1 FOR NO KEY UPDATE")
            .bind(template_id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(false);
        };
        let template = template_from_row(&row)?;
        let current: TemplateHealth = sqlx::query_scalar::<_, String>(
            "SELECT health FROM template_health WHERE template_id = $1",
        )
        .bind(template_id)
        .fetch_optional(&mut *tx)
        .await?
        .map(|h| serde_json::from_str(&h))
        .transpose()
        .context("template health")?
        .unwrap_or_default();
        let Some(plan) = health::plan_template(&template, &current, change, now) else {
            return Ok(false);
        };
        if plan.status != template.status || plan.category != template.category {
            sqlx::query(
                "UPDATE templates SET status = $1, category = $2, updated_at = $3 WHERE id = $4",
            )
            .bind(&plan.status)
            .bind(&plan.category)
            .bind(now)
            .bind(template_id)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO template_health (template_id, health, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (template_id) DO UPDATE SET health = excluded.health,
                updated_at = excluded.updated_at",
        )
        .bind(template_id)
        .bind(serde_json::to_string(&plan.health).context("template health")?)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        queue_events(&mut tx, &self.lookups, &template.account_id, &plan.events).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn template_healths(
        &self,
        account_id: &str,
    ) -> StoreResult<std::collections::HashMap<String, TemplateHealth>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT h.template_id, h.health FROM template_health h
             JOIN templates t ON t.id = h.template_id WHERE t.account_id = $1",
        )
        .bind(account_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, h)| Ok((id, serde_json::from_str(&h).context("template health")?)))
            .collect()
    }

    async fn apply_channel_quality(
        &self,
        channel_id: &str,
        change: &ChannelQualityChange,
        now: i64,
    ) -> StoreResult<bool> {
        let _changed = self.lookups.writing();
        let mut tx = self.pool.begin().await?;
        let Some((account_id, limit)): Option<(String, Option<i64>)> = sqlx::query_as(
            "SELECT account_id, messaging_limit FROM channels WHERE id = $1 FOR NO KEY UPDATE",
        )
        .bind(channel_id)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(false);
        };
        let current: ChannelQuality = sqlx::query_scalar::<_, String>(
            "SELECT quality FROM channel_quality WHERE channel_id = $1",
        )
        .bind(channel_id)
        .fetch_optional(&mut *tx)
        .await?
        .map(|q| serde_json::from_str(&q))
        .transpose()
        .context("channel quality")?
        .unwrap_or_default();
        let Some(plan) = health::plan_channel(channel_id, limit, &current, change, now) else {
            return Ok(false);
        };
        if let Some(limit) = plan.limit {
            sqlx::query("UPDATE channels SET messaging_limit = $1, updated_at = $2 WHERE id = $3")
                .bind(limit)
                .bind(now)
                .bind(channel_id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO channel_quality (channel_id, quality, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (channel_id) DO UPDATE SET quality = excluded.quality,
                updated_at = excluded.updated_at",
        )
        .bind(channel_id)
        .bind(serde_json::to_string(&plan.quality).context("channel quality")?)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        queue_events(&mut tx, &self.lookups, &account_id, &[plan.event]).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn opt_keywords(&self, account_id: &str) -> StoreResult<Option<OptKeywords>> {
        let row: Option<(Option<String>, Option<String>)> =
            sqlx::query_as("SELECT opt_out_keywords, opt_in_keywords FROM accounts WHERE id = $1")
                .bind(account_id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(out, inn)| keywords_from_columns(out, inn))
            .transpose()
    }

    async fn set_opt_keywords(
        &self,
        account_id: &str,
        opt_out: Option<Option<Vec<String>>>,
        opt_in: Option<Option<Vec<String>>>,
        now: i64,
    ) -> StoreResult<bool> {
        let json = |v: &Option<Vec<String>>| v.as_ref().map(|l| serde_json::json!(l).to_string());
        let done = sqlx::query(
            "UPDATE accounts SET
                opt_out_keywords = CASE WHEN $1 THEN $2 ELSE opt_out_keywords END,
                opt_in_keywords = CASE WHEN $3 THEN $4 ELSE opt_in_keywords END,
                updated_at = $5
             WHERE id = $6",
        )
        .bind(opt_out.is_some())
        .bind(opt_out.as_ref().and_then(json))
        .bind(opt_in.is_some())
        .bind(opt_in.as_ref().and_then(json))
        .bind(now)
        .bind(account_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn channel_qualities(
        &self,
    ) -> StoreResult<std::collections::HashMap<String, ChannelQuality>> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT channel_id, quality FROM channel_quality")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(id, q)| Ok((id, serde_json::from_str(&q).context("channel quality")?)))
            .collect()
    }

    async fn priced_messages(
        &self,
        account_id: &str,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<PricedMessage>> {
        let rows = sqlx::query(
            "SELECT * FROM (
                SELECT coalesce(sent_at, delivered_at, read_at) AS at, template_id, channel_id,
                    phone_number, pricing_type, pricing_category, pricing_model, pricing_billable
                FROM messages
                WHERE account_id = $1 AND pricing_category IS NOT NULL AND queued_at < $3) priced
             WHERE at >= $2 AND at < $3 ORDER BY at",
        )
        .bind(account_id)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PricedMessage {
                    at: r.try_get("at")?,
                    template_id: r.try_get("template_id")?,
                    channel_id: r.try_get("channel_id")?,
                    phone_number: r.try_get("phone_number")?,
                    pricing: pricing_from_row(r)?.unwrap_or_else(|| Pricing {
                        category: r.try_get("pricing_category").ok().flatten(),
                        ..Pricing::default()
                    }),
                })
            })
            .collect()
    }

    async fn claim_callbacks(
        &self,
        now: i64,
        limit: u32,
        lease_ms: i64,
    ) -> StoreResult<Vec<ClaimedCallback>> {
        let mut tx = self.pool.begin().await?;
        // Due, not leased (or the lease lapsed), and the oldest pending row of its stream.
        // A stream's rows are inserted under the lock of what they report (the message, the
        // template), so an older row of a stream is always committed before a newer one.
        let rows = sqlx::query(
            "WITH due AS (
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
             RETURNING c.*",
        )
        .bind(now + lease_ms)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let mut deliveries = rows
            .iter()
            .map(delivery_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        deliveries.sort_by_key(|d| d.seq);
        let mut claimed = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            let secret: Option<String> = match &delivery.endpoint_id {
                Some(endpoint_id) => {
                    sqlx::query_scalar("SELECT secret FROM webhook_endpoints WHERE id = $1")
                        .bind(endpoint_id)
                        .fetch_optional(&mut *tx)
                        .await?
                }
                None => account_callback_secret(&mut tx, &delivery.account_id).await?,
            };
            claimed.push(ClaimedCallback { delivery, secret });
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn finish_callback(&self, o: &CallbackOutcome) -> StoreResult<bool> {
        let (status, delivered_at, next_attempt_at, response_status, error) = match &o.result {
            CallbackResult::Delivered { response_status } => {
                ("delivered", Some(o.now), None, Some(*response_status), None)
            }
            CallbackResult::Retry {
                response_status,
                error,
                next_attempt_at,
            } => (
                "pending",
                None,
                Some(*next_attempt_at),
                *response_status,
                Some(error.as_str()),
            ),
            CallbackResult::Failed {
                response_status,
                error,
            } => ("failed", None, None, *response_status, Some(error.as_str())),
        };
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE callback_outbox SET status = $1, delivered_at = $2,
                next_attempt_at = coalesce($3, next_attempt_at), lease_until = NULL,
                last_response_status = $4, last_error = $5
             WHERE id = $6 AND attempts = $7 AND status = 'pending'
             RETURNING endpoint_id, ordering_key, seq",
        )
        .bind(status)
        .bind(delivered_at)
        .bind(next_attempt_at)
        .bind(response_status)
        .bind(error)
        .bind(&o.id)
        .bind(o.attempt)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = done else {
            return Ok(false);
        };
        if let Some(at) = next_attempt_at {
            // The stream's later deliveries wait for this one: out of the due rows with it,
            // so a failing receiver's backlog is not scanned by every claim.
            let endpoint_id: String = row.try_get("endpoint_id")?;
            let ordering_key: String = row.try_get("ordering_key")?;
            let seq: i64 = row.try_get("seq")?;
            sqlx::query(
                "UPDATE callback_outbox SET next_attempt_at = $1
                 WHERE endpoint_id = $2 AND ordering_key = $3 AND seq > $4
                   AND status = 'pending' AND next_attempt_at < $1",
            )
            .bind(at)
            .bind(endpoint_id)
            .bind(ordering_key)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn insert_console_session(&self, session: &ConsoleSession) -> StoreResult<()> {
        sqlx::query(console::DELETE_EXPIRED_SESSIONS)
            .bind(session.created_at)
            .execute(&self.pool)
            .await?;
        sqlx::query(console::INSERT_SESSION)
            .bind(&session.token_hash)
            .bind(&session.account_id)
            .bind(&session.key_hash)
            .bind(&session.csrf_token)
            .bind(session.created_at)
            .bind(session.expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn console_session(
        &self,
        token_hash: &str,
        now: i64,
    ) -> StoreResult<Option<ConsoleSession>> {
        let row: Option<console::SessionRow> = sqlx::query_as(console::SESSION)
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(ConsoleSession::from_row))
    }

    async fn delete_console_session(&self, token_hash: &str) -> StoreResult<()> {
        sqlx::query(console::DELETE_SESSION)
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn list_accounts(&self) -> StoreResult<Vec<Account>> {
        let rows: Vec<console::AccountRow> = sqlx::query_as(console::ACCOUNTS)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(console::account_from_row).collect())
    }

    async fn list_batches(&self, account_id: &str, limit: u32) -> StoreResult<Vec<Batch>> {
        let rows: Vec<console::BatchRow> = sqlx::query_as(console::BATCHES)
            .bind(account_id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(console::batch_from_row).collect())
    }

    async fn message_series(
        &self,
        account_id: &str,
        since: i64,
        bucket_ms: i64,
    ) -> StoreResult<Vec<(i64, String, i64)>> {
        let rows: Vec<console::SeriesRow> = sqlx::query_as(console::SERIES)
            .bind(account_id)
            .bind(since)
            .bind(bucket_ms.max(1))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows)
    }

    async fn message_funnel(&self, account_id: &str, since: i64) -> StoreResult<console::Funnel> {
        let row: console::FunnelRow = sqlx::query_as(console::FUNNEL)
            .bind(account_id)
            .bind(since)
            .fetch_one(&self.pool)
            .await?;
        Ok(console::funnel_from_row(row))
    }

    async fn top_failures(
        &self,
        account_id: &str,
        since: i64,
        limit: u32,
    ) -> StoreResult<Vec<(i64, Option<String>, i64)>> {
        let rows: Vec<console::FailureRow> = sqlx::query_as(console::FAILURES)
            .bind(account_id)
            .bind(since)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows)
    }

    async fn recent_deliveries(
        &self,
        account_id: &str,
        endpoint_id: Option<&str>,
        message_id: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<CallbackDelivery>> {
        sqlx::query(console::DELIVERIES)
            .bind(account_id)
            .bind(endpoint_id)
            .bind(message_id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(delivery_from_row)
            .collect()
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
