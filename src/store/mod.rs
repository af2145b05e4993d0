//! Storage: one interface, one implementation per database.
//!
//! Services speak to [`Store`]; `sqlite` and `postgres` implement it. Every write that
//! decides something (accepting a send, claiming jobs, applying a status) is one method, so
//! each implementation can make it one transaction.

pub mod console;
pub mod health;
mod lookups;
pub mod postgres;
pub mod sql;
pub mod sqlite;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::callback::EventType;
use crate::domain::status::{CloseReason, ConversationStatus, MessageStatus};
use crate::secrets::{Cipher, SealCensus, channel_context};
pub use health::{
    ChannelQuality, ChannelQualityChange, Pricing, TemplateHealth, TemplateHealthChange,
};

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule of the data was broken (for example a group name taken).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e {
            // A unique index broken by a concurrent writer, or PostgreSQL choosing this
            // transaction as a deadlock or serialization victim: the caller may decide again.
            let retryable = matches!(db.code().as_deref(), Some("40P01" | "40001"));
            if db.is_unique_violation() || retryable {
                return StoreError::Conflict(db.message().to_string());
            }
        }
        StoreError::Other(e.into())
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        // The same rule as sqlx's errors above, for statements run on SQLite's writer thread.
        if let rusqlite::Error::SqliteFailure(code, message) = &e
            && matches!(
                code.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            )
        {
            return StoreError::Conflict(message.clone().unwrap_or_else(|| e.to_string()));
        }
        StoreError::Other(e.into())
    }
}

/// Turns off SQLite's memory statistics for the process. With them on (the bundled build's
/// default), every allocation and free SQLite makes takes one process-wide mutex to count it,
/// ≈ 5 % of the SQLite writer thread's time in full-cycle. plantilla reads none of them
/// (`sqlite3_memory_used`, a soft heap limit). Returns whether SQLite took the setting: it
/// must come before SQLite is first used in the process (later it is refused and nothing
/// changes); `plantilla`'s `main` calls it first thing.
pub fn sqlite_without_memory_statistics() -> bool {
    // SAFETY: `sqlite3_config` is not thread-safe and must not run while SQLite is in use:
    // the caller runs it before any connection is opened. Once SQLite is initialized it
    // only returns SQLITE_MISUSE.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_config(
            rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS,
            0 as std::os::raw::c_int,
        )
    };
    rc == rusqlite::ffi::SQLITE_OK
}

/// Opens the store named by a database URL, applies its migrations and checks that every
/// key the stored channel secrets need is configured.
pub async fn open(config: &crate::config::Config) -> anyhow::Result<Arc<dyn Store>> {
    let cipher = Arc::new(config.cipher()?);
    let url = config.database_url.as_str();
    let store: Arc<dyn Store> = if url.starts_with("sqlite:") {
        Arc::new(
            sqlite::SqliteStore::open(url, &config.sqlite_synchronous)
                .await?
                .with_cipher(cipher.clone()),
        )
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Arc::new(
            postgres::PgStore::open(url, config.database_max_connections)
                .await?
                .with_cipher(cipher.clone()),
        )
    } else {
        anyhow::bail!(
            "unsupported DATABASE_URL '{}': use sqlite://path/to/file.db or \
             postgres://user:password@host:port/database",
            url.split(':').next().unwrap_or_default()
        )
    };
    let census = store.seal_census().await?;
    match cipher.check(&census) {
        Err(e) => anyhow::bail!("cannot read the stored channel secrets: {e}"),
        Ok(_) if cipher.current_key_id().is_none() => tracing::warn!(
            "PLANTILLA_ENCRYPTION_KEY is not set: channel secrets (access tokens, app secrets, \
             verify tokens) are stored unencrypted; generate a key with `openssl rand -hex 32`"
        ),
        Ok(Some(stale)) => tracing::warn!("{stale}"),
        Ok(None) => {}
    }
    Ok(store)
}

/// The columns of `channels` that hold secrets, in the order the helpers below use.
const SECRET_COLUMNS: [&str; 3] = ["access_token", "app_secret", "verify_token"];

/// A channel's secrets, in `SECRET_COLUMNS` order.
fn secrets_of(c: &Channel) -> [&str; 3] {
    [&c.access_token, &c.app_secret, &c.verify_token]
}

/// How a channel's secrets are stored.
fn seal_secrets(cipher: &Cipher, channel_id: &str, open: [&str; 3]) -> [String; 3] {
    std::array::from_fn(|i| cipher.seal(&channel_context(channel_id, SECRET_COLUMNS[i]), open[i]))
}

/// Opens a channel's stored secrets; the error names the channel, the column and the key
/// needed, never a value.
fn open_secrets(cipher: &Cipher, channel_id: &str, stored: [&str; 3]) -> StoreResult<[String; 3]> {
    let mut open: [String; 3] = Default::default();
    for (i, column) in SECRET_COLUMNS.iter().enumerate() {
        open[i] = cipher
            .open(&channel_context(channel_id, column), stored[i])
            .map_err(|e| {
                anyhow::anyhow!("cannot decrypt the {column} of channel {channel_id}: {e}")
            })?;
    }
    Ok(open)
}

/// What resealing a channel writes: `None` when its stored secrets are already as the cipher
/// would write them now.
fn reseal(
    cipher: &Cipher,
    channel_id: &str,
    stored: [&str; 3],
) -> StoreResult<Option<[String; 3]>> {
    if stored.iter().all(|s| cipher.is_current(s)) {
        return Ok(None);
    }
    let open = open_secrets(cipher, channel_id, stored)?;
    Ok(Some(seal_secrets(
        cipher,
        channel_id,
        [&open[0], &open[1], &open[2]],
    )))
}

/// How many times resealing retries a channel that changed under it.
const RESEAL_TRIES: u32 = 5;

/// What `reseal_channel_secrets` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resealed {
    /// Channels looked at.
    pub channels: u64,
    /// Channels whose secrets were rewritten under the current key.
    pub rewritten: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub id: String,
    pub name: String,
    pub conversation_limit: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// Quiet hours in the recipient's local time: minutes after midnight the window starts
    /// and ends (`None`: off).
    #[serde(skip)]
    pub quiet_hours: Option<(i64, i64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Sandbox,
    Cloud,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sandbox => "sandbox",
            Self::Cloud => "cloud",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sandbox" => Some(Self::Sandbox),
            "cloud" => Some(Self::Cloud),
            _ => None,
        }
    }
}

/// A WhatsApp number of an account. Holds its secrets decrypted: never serialize it
/// directly (`api::admin::Channel::of` shows it); its `Debug` leaves the secrets out.
#[derive(Clone)]
pub struct Channel {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub provider: ProviderKind,
    pub phone_number_id: String,
    pub waba_id: String,
    pub access_token: String,
    pub app_secret: String,
    pub verify_token: String,
    /// `connected` or `disconnected`.
    pub status: String,
    pub messages_per_second: i64,
    /// `ok`, or `halted` after an error that no retry fixes (expired token, locked or
    /// unpaid account): the dispatcher leaves its messages queued until an operator acts.
    pub health: String,
    pub health_error: Option<ProviderError>,
    /// Meta's messaging limit: unique recipients of new business-initiated conversations per
    /// rolling 24 h (`None`: unlimited).
    pub messaging_limit: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |s: &str| if s.is_empty() { "unset" } else { "[redacted]" };
        f.debug_struct("Channel")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("name", &self.name)
            .field("provider", &self.provider)
            .field("phone_number_id", &self.phone_number_id)
            .field("waba_id", &self.waba_id)
            .field("access_token", &set(&self.access_token))
            .field("app_secret", &set(&self.app_secret))
            .field("verify_token", &set(&self.verify_token))
            .field("status", &self.status)
            .field("messages_per_second", &self.messages_per_second)
            .field("health", &self.health)
            .field("health_error", &self.health_error)
            .field("messaging_limit", &self.messaging_limit)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: String,
    pub account_id: String,
    pub name: String,
    /// Channels this group is associated with, in association order.
    pub channel_ids: Vec<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct Template {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub language: String,
    pub category: String,
    pub status: String,
    pub app_id: String,
    pub message: String,
    pub header: Option<Value>,
    pub footer: Option<String>,
    pub buttons: Value,
    /// The rest of the template's content (`domain::template::TemplateExtra` as JSON).
    pub extra: Value,
    pub group_name: Option<String>,
    pub active: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Default)]
pub struct TemplateFilter {
    pub status: Option<String>,
    pub name: Option<String>,
    pub offset: u32,
    pub limit: u32,
}

#[derive(Debug, Clone)]
pub struct Conversation {
    pub id: String,
    pub account_id: String,
    pub channel_id: String,
    pub phone_number: String,
    pub status: ConversationStatus,
    /// `agent` or `bot`.
    pub assignee: String,
    pub group_id: Option<String>,
    pub group_name: Option<String>,
    pub client_name: String,
    pub first_message_id: Option<String>,
    pub close_reason: Option<String>,
    pub created_at: i64,
    pub opened_at: Option<i64>,
    pub closed_at: Option<i64>,
    pub last_activity_at: i64,
    /// The contact's business-scoped user id (Meta's `user_id`), when known.
    pub user_id: Option<String>,
}

/// An error the provider (WhatsApp) reported.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderError {
    /// Meta's error code.
    pub code: i64,
    pub title: String,
    #[schema(required = true)]
    pub details: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub account_id: String,
    pub channel_id: String,
    pub conversation_id: String,
    pub template_id: String,
    pub phone_number: String,
    pub params: BTreeMap<String, String>,
    pub status: MessageStatus,
    pub provider_message_id: Option<String>,
    pub wa_id: Option<String>,
    pub attempts: i64,
    pub error: Option<ProviderError>,
    pub queued_at: i64,
    pub sending_at: Option<i64>,
    pub sent_at: Option<i64>,
    pub delivered_at: Option<i64>,
    pub read_at: Option<i64>,
    pub failed_at: Option<i64>,
    pub pricing_category: Option<String>,
    /// Meta's whole `pricing` object, when a status carried one.
    pub pricing: Option<Pricing>,
    pub batch_id: Option<String>,
    pub callback_url: Option<String>,
    pub metadata: Option<Value>,
    pub updated_at: i64,
    /// When a scheduled message goes (its `sendAt`).
    pub scheduled_for: Option<i64>,
    /// When a held message is released, and why (`quiet-hours`, `messaging-limit`).
    pub held_until: Option<i64>,
    pub held_reason: Option<String>,
    pub cancelled_at: Option<i64>,
}

/// One recorded delivery attempt.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptRecord {
    pub attempt: i64,
    pub finished_at: i64,
    pub outcome: String,
    pub error: Option<ProviderError>,
}

/// Everything needed to accept one send in one transaction.
#[derive(Debug, Clone)]
pub struct AcceptSend {
    pub account_id: String,
    pub channel_id: String,
    pub template_id: String,
    pub phone_number: String,
    /// The name the sender gave, if any; otherwise the contact keeps the name it has.
    pub client_name: Option<String>,
    pub group_id: Option<String>,
    pub assignee: &'static str,
    pub params: BTreeMap<String, String>,
    pub conversation_limit: i64,
    /// Calendar month of `now`, `YYYY-MM` (UTC): the plan limit's period.
    pub period: String,
    pub now: i64,
    /// Open conversations idle since before this instant are closed as expired first.
    pub expire_before: i64,
    pub new_conversation_id: String,
    pub new_message_id: String,
    pub batch_id: Option<String>,
    pub callback_url: Option<String>,
    pub metadata: Option<Value>,
    /// The caller's idempotency key: written in the same transaction, so a retry with the
    /// same key replays this decision instead of deciding again.
    pub idempotency: Option<IdempotencyKey>,
    /// When a scheduled send goes: only set when later than `now` (the message is stored
    /// `scheduled` and its job is not due before then).
    pub send_at: Option<i64>,
}

impl AcceptSend {
    /// `scheduled` when the send waits for its time, else `queued`.
    pub fn initial_status(&self) -> MessageStatus {
        if self.send_at.is_some() {
            MessageStatus::Scheduled
        } else {
            MessageStatus::Queued
        }
    }

    /// When the delivery job is first due.
    pub fn run_at(&self) -> i64 {
        self.send_at.unwrap_or(self.now)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// Whose key it is (a channel or an account): keys of different callers never meet.
    pub scope: String,
    pub key: String,
    /// A hash of the request the key was first used with.
    pub fingerprint: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AcceptOutcome {
    /// Queued on an open conversation.
    Sent {
        conversation_id: String,
        message_id: String,
    },
    /// A new pending conversation was created with the message queued.
    Pending {
        conversation_id: String,
        message_id: String,
    },
    /// The number already has a pending conversation; nothing was stored.
    AlreadyPending { conversation_id: String },
    /// The account used its plan's conversations this period; nothing was stored.
    LimitReached,
    /// The idempotency key was used before with this request: what was decided then.
    Replayed { original: Box<AcceptOutcome> },
    /// The idempotency key was used before with a different request; nothing was stored.
    KeyReused,
}

/// What an idempotency key seen before means for a request with `fingerprint`.
pub(crate) fn replay(
    fingerprint: &str,
    stored_fingerprint: &str,
    stored: &str,
) -> StoreResult<AcceptOutcome> {
    if fingerprint != stored_fingerprint {
        return Ok(AcceptOutcome::KeyReused);
    }
    let original: AcceptOutcome = serde_json::from_str(stored)
        .map_err(|e| StoreError::Other(anyhow::anyhow!("stored idempotent outcome: {e}")))?;
    Ok(AcceptOutcome::Replayed {
        original: Box::new(original),
    })
}

/// What `insert_webhook_endpoint` did.
#[derive(Debug, Clone)]
pub enum EndpointInsert {
    /// The endpoint was stored, with the idempotency key if one came.
    Created,
    /// The idempotency key was used before with this request: the endpoint created then.
    Replayed(WebhookEndpoint),
    /// The idempotency key was used before with this request, but the endpoint it created
    /// (this id) was deleted since; nothing was stored.
    ReplayedDeleted { id: String },
    /// The idempotency key was used before with a different request; nothing was stored.
    KeyReused,
}

/// What an endpoint creation keeps with its idempotency key: the endpoint's id only, never
/// its secret (a replay reads the endpoint). Tagged like [`AcceptOutcome`]; a key's
/// fingerprint includes the request's path, so a message's key never reads as this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub(crate) enum EndpointOutcome {
    WebhookEndpointCreated { endpoint_id: String },
}

impl EndpointOutcome {
    pub(crate) fn stored(endpoint_id: &str) -> StoreResult<String> {
        let outcome = EndpointOutcome::WebhookEndpointCreated {
            endpoint_id: endpoint_id.to_string(),
        };
        serde_json::to_string(&outcome)
            .map_err(|e| StoreError::Other(anyhow::anyhow!("endpoint outcome: {e}")))
    }
}

/// What an idempotency key seen before means for an endpoint creation with `fingerprint`:
/// the id of the endpoint the key created, or `None` when it came with a different request.
pub(crate) fn endpoint_replay(
    fingerprint: &str,
    stored_fingerprint: &str,
    stored: &str,
) -> StoreResult<Option<String>> {
    if fingerprint != stored_fingerprint {
        return Ok(None);
    }
    let EndpointOutcome::WebhookEndpointCreated { endpoint_id } = serde_json::from_str(stored)
        .map_err(|e| StoreError::Other(anyhow::anyhow!("stored endpoint outcome: {e}")))?;
    Ok(Some(endpoint_id))
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct Batch {
    pub id: String,
    pub account_id: String,
    pub channel_id: String,
    pub total: i64,
    pub accepted: i64,
    pub rejected: i64,
    pub created_at: i64,
    /// A paused batch's messages not yet claimed wait until it resumes.
    pub paused: bool,
}

/// What cancelling a message did.
#[derive(Debug, Clone)]
pub enum CancelOutcome {
    /// No such message in the account.
    NotFound,
    /// It was already handed to the provider (or ended): its status.
    NotCancellable(MessageStatus),
    /// Cancelled; its conversation closed when the message had created it.
    Cancelled {
        message: Box<Message>,
        conversation: Option<(String, ConversationStatus)>,
    },
}

/// Why a message waits past its time.
pub const HELD_QUIET_HOURS: &str = "quiet-hours";
pub const HELD_MESSAGING_LIMIT: &str = "messaging-limit";

/// A batch's figures beyond its counts per status.
#[derive(Debug, Clone, Default)]
pub struct BatchReport {
    /// `(error code, messages)` of its failed messages.
    pub by_error_code: Vec<(i64, i64)>,
    /// `(template id, status, messages)`.
    pub by_template: Vec<(String, String, i64)>,
    /// `(reason, messages)` of its held messages not yet sent.
    pub held: Vec<(String, i64)>,
    /// The latest time one of its waiting messages is due (scheduled or held).
    pub last_due: Option<i64>,
}

/// The recipients a channel started conversations with in a rolling window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NewRecipients {
    /// Distinct numbers.
    pub count: i64,
    /// When the oldest of them was handed over: the window frees a place 24 h after it.
    pub oldest: Option<i64>,
}

/// Filters of a message list; `after` is the cursor (the last `(queued_at, id)` seen).
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub channel_id: Option<String>,
    pub status: Option<String>,
    pub phone_number: Option<String>,
    pub batch_id: Option<String>,
    pub template_id: Option<String>,
    pub conversation_id: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub after: Option<(i64, String)>,
    pub limit: u32,
    /// Newest first (the console); `after` is then the last `(queued_at, id)` seen going back.
    pub newest_first: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ConversationFilter {
    pub channel_id: Option<String>,
    pub status: Option<String>,
    pub phone_number: Option<String>,
    pub after: Option<(i64, String)>,
    pub limit: u32,
    /// Newest first (the console); `after` is then the last `(created_at, id)` seen going back.
    pub newest_first: bool,
}

/// A delivery job claimed by a dispatcher, with what the provider needs.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub message: Message,
    pub template: Template,
    /// The attempt this claim is; outcomes are fenced by it.
    pub attempt: i64,
}

/// A sandbox message whose simulated statuses are not all applied (see `provider::sandbox`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatedMessage {
    pub message_id: String,
    pub channel_id: String,
    pub provider_message_id: String,
    pub phone_number: String,
    pub status: MessageStatus,
    /// When the message last changed.
    pub updated_at: i64,
}

/// The SQL of [`Store::sandbox_in_flight`] with the backend's placeholder for its limit: the
/// two backends run the same query. Its status test is written as SQLite's `messages_in_flight`
/// predicate is (with `OR`, not `IN`), or SQLite would not use that index. Public (hidden)
/// for the test that checks SQLite's plan of this very text.
#[doc(hidden)]
pub fn sandbox_in_flight_sql(limit_placeholder: &str) -> String {
    format!(
        "SELECT m.id, m.channel_id, m.provider_message_id, m.phone_number, m.status, m.updated_at
           FROM messages m
          WHERE (m.status = 'sending' OR m.status = 'sent' OR m.status = 'delivered')
            AND m.provider_message_id IS NOT NULL
            AND m.channel_id IN (SELECT id FROM channels WHERE provider = 'sandbox')
            AND NOT EXISTS (SELECT 1 FROM delivery_jobs j WHERE j.message_id = m.id)
          ORDER BY m.updated_at LIMIT {limit_placeholder}"
    )
}

/// A row of [`sandbox_in_flight_sql`]: id, channel, wamid, number, status, last change.
pub(crate) type SimulatedRow = (String, String, String, String, String, i64);

impl SimulatedMessage {
    pub(crate) fn from_row(
        (message_id, channel_id, provider_message_id, phone_number, status, updated_at): SimulatedRow,
    ) -> StoreResult<SimulatedMessage> {
        Ok(SimulatedMessage {
            message_id,
            channel_id,
            provider_message_id,
            phone_number,
            status: status.parse().map_err(anyhow::Error::msg)?,
            updated_at,
        })
    }
}

#[derive(Debug, Clone)]
pub enum AttemptResult {
    /// The provider took the message.
    Accepted {
        provider_message_id: String,
        wa_id: Option<String>,
    },
    /// Try again at `run_at`; `error` is kept as the last error.
    Retry { run_at: i64, error: ProviderError },
    /// Give up: the message fails with `error`.
    Failed { error: ProviderError },
    /// The channel cannot send (halted): back to the queue at `run_at` without counting
    /// the attempt against the message.
    Requeue { run_at: i64, error: ProviderError },
}

#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub message_id: String,
    pub attempt: i64,
    pub now: i64,
    pub result: AttemptResult,
}

/// A channel's queue: messages not yet taken by the provider (queued, sending or waiting for
/// a retry), for monitoring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelQueue {
    pub channel_id: String,
    pub depth: i64,
    /// `queued_at` of the oldest message in the queue.
    pub oldest_queued_at: i64,
}

/// A delivery status reported by the provider (a webhook or the sandbox).
#[derive(Debug, Clone)]
pub struct StatusUpdate {
    pub provider_message_id: Option<String>,
    /// plantilla's message id, from `biz_opaque_callback_data`.
    pub message_id: Option<String>,
    pub status: MessageStatus,
    pub at: i64,
    pub error: Option<ProviderError>,
    /// Meta's pricing category (`utility`, `marketing`, …), when reported.
    pub pricing_category: Option<String>,
    /// Meta's whole `pricing` object (`type`, `category`, `pricing_model`, `billable`).
    pub pricing: Option<Pricing>,
    /// The channel the status came for (the webhook's phone number): when set, only a message
    /// of that channel matches, so one channel's webhook cannot touch another's messages.
    pub channel_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StatusApplied {
    /// No message matches the update.
    UnknownMessage,
    /// The message belongs to another channel than the update's: nothing was written (and
    /// the update must not be kept for later).
    OtherChannel,
    /// Matched; `changed` says whether the status moved.
    Applied {
        message_id: String,
        status: MessageStatus,
        changed: bool,
        conversation: Option<(String, ConversationStatus)>,
    },
}

/// What recording an attempt's outcome did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    /// A newer claim owns the job; nothing was written.
    Stale,
    /// Recorded; a failure may have moved the message's conversation.
    Recorded {
        conversation: Option<(String, ConversationStatus)>,
    },
}

/// An account's webhook endpoint. Holds its signing secret: never serialize it directly.
#[derive(Debug, Clone)]
pub struct WebhookEndpoint {
    pub id: String,
    pub account_id: String,
    pub url: String,
    /// Event type names (`message.read`, …) it receives.
    pub event_types: Vec<String>,
    pub description: Option<String>,
    /// `whsec_<base64>`: signs its deliveries.
    pub secret: String,
    pub created_at: i64,
}

/// One event for one receiver, as the outbox holds it.
#[derive(Debug, Clone)]
pub struct CallbackDelivery {
    /// Outbox order: a stream's rows are delivered in this order.
    pub seq: i64,
    /// Sent as `webhook-id`; the same on every attempt.
    pub id: String,
    pub account_id: String,
    /// `None` for a message's own `callbackUrl`.
    pub endpoint_id: Option<String>,
    pub url: String,
    pub message_id: Option<String>,
    pub event_type: String,
    /// The JSON body, exactly as signed.
    pub payload: String,
    /// `pending`, `delivered` or `failed` (given up).
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_response_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

/// A delivery leased to a worker, with the secret to sign it with (`None` when its endpoint
/// was deleted meanwhile).
#[derive(Debug, Clone)]
pub struct ClaimedCallback {
    pub delivery: CallbackDelivery,
    pub secret: Option<String>,
}

#[derive(Debug, Clone)]
pub enum CallbackResult {
    /// The receiver answered 2xx.
    Delivered { response_status: i64 },
    /// Try again at `next_attempt_at`.
    Retry {
        response_status: Option<i64>,
        error: String,
        next_attempt_at: i64,
    },
    /// Given up.
    Failed {
        response_status: Option<i64>,
        error: String,
    },
}

/// The outcome of one delivery attempt, fenced by the attempt number.
#[derive(Debug, Clone)]
pub struct CallbackOutcome {
    pub id: String,
    pub attempt: i64,
    pub now: i64,
    pub result: CallbackResult,
}

/// An event to queue for an account's receivers, built where the change is decided and
/// written in the same transaction.
#[derive(Debug, Clone)]
pub(crate) struct OutboxEvent {
    pub event_type: EventType,
    /// The stream it is ordered in: the message's id when a message caused it.
    pub ordering_key: String,
    pub message_id: Option<String>,
    /// The message's own `callbackUrl`, which receives the event too.
    pub callback_url: Option<String>,
    pub payload: String,
}

fn event_payload(event_type: EventType, at: i64, data: Value) -> String {
    serde_json::json!({
        "type": event_type.as_str(),
        "timestamp": crate::format_ms(at),
        "data": data,
    })
    .to_string()
}

/// The timestamp column a status sets.
pub(crate) fn status_column(status: MessageStatus) -> &'static str {
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

/// The event of `message` reaching `status` (with its error, if it failed).
pub(crate) fn message_event(
    message: &Message,
    status: MessageStatus,
    error: Option<&ProviderError>,
    at: i64,
) -> Option<OutboxEvent> {
    let event_type = EventType::of_message(status)?;
    let data = serde_json::json!({
        "messageId": message.id,
        "conversationId": message.conversation_id,
        "channelId": message.channel_id,
        "to": message.phone_number,
        "status": status.as_str(),
        "error": error.map(|e| serde_json::json!({"code": e.code, "title": e.title, "details": e.details})),
        "metadata": message.metadata,
    });
    Some(OutboxEvent {
        event_type,
        ordering_key: message.id.clone(),
        message_id: Some(message.id.clone()),
        callback_url: message.callback_url.clone(),
        payload: event_payload(event_type, at, data),
    })
}

/// A conversation of `channel_id` with `phone_number` reaching `status`. When `message`
/// caused it, the event joins that message's stream and callback.
pub(crate) fn conversation_event(
    conversation_id: &str,
    channel_id: &str,
    phone_number: &str,
    status: ConversationStatus,
    close_reason: Option<&str>,
    message: Option<&Message>,
    at: i64,
) -> Option<OutboxEvent> {
    let event_type = EventType::of_conversation(status)?;
    let data = serde_json::json!({
        "conversationId": conversation_id,
        "channelId": channel_id,
        "to": phone_number,
        "status": status.as_str(),
        "closeReason": close_reason,
        "messageId": message.map(|m| &m.id),
    });
    Some(OutboxEvent {
        event_type,
        ordering_key: message.map_or(conversation_id, |m| &m.id).to_string(),
        message_id: message.map(|m| m.id.clone()),
        callback_url: message.and_then(|m| m.callback_url.clone()),
        payload: event_payload(event_type, at, data),
    })
}

/// One priced message, as `GET /v1/usage` counts it.
#[derive(Debug, Clone)]
pub struct PricedMessage {
    pub at: i64,
    pub template_id: String,
    pub channel_id: String,
    pub phone_number: String,
    pub pricing: Pricing,
}

/// A template's status moving from `previous` to its current one.
pub(crate) fn template_event(template: &Template, previous: &str, at: i64) -> OutboxEvent {
    let event_type = EventType::TemplateStatusChanged;
    let data = serde_json::json!({
        "templateId": template.id,
        "name": template.name,
        "language": template.language,
        "status": template.status,
        "previousStatus": previous,
    });
    OutboxEvent {
        event_type,
        ordering_key: template.id.clone(),
        message_id: None,
        callback_url: None,
        payload: event_payload(event_type, at, data),
    }
}

/// An inbound message to store (see [`Store::record_inbound_message`]).
#[derive(Debug, Clone)]
pub struct InboundInsert {
    /// plantilla's id for it, used when it is new.
    pub id: String,
    pub account_id: String,
    pub channel_id: String,
    /// Meta's wamid of the inbound message: unique per channel.
    pub provider_message_id: String,
    /// The sender's number (`from`), when Meta gave it.
    pub phone_number: Option<String>,
    /// The sender's business-scoped user id (`from_user_id` / `contacts[].user_id`).
    pub user_id: Option<String>,
    pub contact_name: Option<String>,
    pub username: Option<String>,
    /// Meta's `type`.
    pub kind: String,
    pub text: Option<String>,
    /// The typed parts (`button`, `interactive`, `media`, …), camelCase.
    pub content: Value,
    /// Meta's message object as received.
    pub raw: Value,
    /// Meta's `context.id`: the wamid of the message replied to or clicked.
    pub context_id: Option<String>,
    /// Meta's timestamp.
    pub sent_at: i64,
    pub received_at: i64,
}

/// A stored inbound message.
#[derive(Debug, Clone)]
pub struct InboundMessage {
    pub id: String,
    pub account_id: String,
    pub channel_id: String,
    pub conversation_id: Option<String>,
    pub provider_message_id: String,
    pub phone_number: Option<String>,
    pub user_id: Option<String>,
    pub contact_name: Option<String>,
    pub kind: String,
    pub text: Option<String>,
    pub content: Value,
    pub raw: Value,
    pub context_id: Option<String>,
    /// plantilla's message whose wamid is `context_id` (same channel).
    pub reply_to: Option<String>,
    pub sent_at: i64,
    pub received_at: i64,
}

impl InboundMessage {
    /// How it is shown and forwarded (`message.received`'s `data`).
    pub fn data(&self) -> Value {
        let mut data = serde_json::json!({
            "id": self.id,
            "channelId": self.channel_id,
            "conversationId": self.conversation_id,
            "from": self.phone_number,
            "userId": self.user_id,
            "contactName": self.contact_name,
            "type": self.kind,
            "text": self.text,
            "button": self.content.get("button").cloned().unwrap_or(Value::Null),
            "replyTo": self.reply_to,
            "contextId": self.context_id,
            "providerMessageId": self.provider_message_id,
            "timestamp": crate::format_ms(self.sent_at),
            "receivedAt": crate::format_ms(self.received_at),
        });
        if let (Value::Object(out), Value::Object(content)) = (&mut data, &self.content) {
            for (k, v) in content {
                out.entry(k.clone()).or_insert_with(|| v.clone());
            }
            out.insert("raw".into(), self.raw.clone());
        }
        data
    }
}

/// What [`Store::record_inbound_message`] did.
#[derive(Debug, Clone)]
pub enum InboundRecorded {
    /// Stored now, with `message.received` queued.
    Stored {
        message: Box<InboundMessage>,
        /// The template of the message replied to, if plantilla sent it.
        reply_to_template_id: Option<String>,
    },
    /// The channel has this wamid already (Meta retried): nothing was written.
    Duplicate,
}

/// `message.received` for a stored inbound message. Ordered in its conversation's stream (or
/// its own when it has none).
pub(crate) fn inbound_event(m: &InboundMessage) -> OutboxEvent {
    let event_type = EventType::MessageReceived;
    OutboxEvent {
        event_type,
        ordering_key: m.conversation_id.clone().unwrap_or_else(|| m.id.clone()),
        message_id: None,
        callback_url: None,
        payload: event_payload(event_type, m.received_at, m.data()),
    }
}

/// A number on an account's suppression list: MARKETING templates are not sent to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    pub account_id: String,
    /// E.164 digits, as sends store recipients.
    pub phone_number: String,
    /// `keyword`, `button`, `meta_131050` or `api` (`domain::opt_out::Reason`).
    pub reason: String,
    /// Free text: the API's `reason` text, the keyword written, Meta's error details.
    pub note: Option<String>,
    /// Added by plantilla itself (an opt-in keyword removes only these).
    pub automatic: bool,
    /// The channel the opt-out came through, when known.
    pub channel_id: Option<String>,
    pub created_at: i64,
}

/// How a number left the suppression list (for its `contact.opted_in` event).
#[derive(Debug, Clone)]
pub struct SuppressionRemoval {
    /// `keyword` (an opt-in keyword) or `api`.
    pub reason: String,
    /// Only an automatic entry is removed (an opt-in keyword never removes an `api` entry).
    pub only_automatic: bool,
    pub channel_id: Option<String>,
    pub now: i64,
}

/// A number joining (`contact.opted_out`) or leaving (`contact.opted_in`) the suppression
/// list. Ordered per number, so an opt-out and the opt-in after it arrive in that order.
pub(crate) fn contact_event(
    event_type: EventType,
    entry: &Suppression,
    reason: &str,
    channel_id: Option<&str>,
    at: i64,
) -> OutboxEvent {
    let mut data = serde_json::json!({
        "accountId": entry.account_id,
        "phoneNumber": entry.phone_number,
        "reason": reason,
        "channelId": channel_id,
        "at": crate::format_ms(at),
    });
    if event_type == EventType::ContactOptedOut {
        data["automatic"] = Value::Bool(entry.automatic);
        data["note"] = serde_json::json!(entry.note);
    } else {
        data["previousReason"] = Value::String(entry.reason.clone());
    }
    OutboxEvent {
        event_type,
        ordering_key: format!("contact:{}", entry.phone_number),
        message_id: None,
        callback_url: None,
        payload: event_payload(event_type, at, data),
    }
}

/// An account's keyword lists as stored: `None` means the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OptKeywords {
    pub opt_out: Option<Vec<String>>,
    pub opt_in: Option<Vec<String>>,
}

/// Who receives `event`: `(endpoint id, url)` of each endpoint subscribed to its type (from
/// `(id, url, event types JSON)` rows of the account), then `("", callbackUrl)`.
pub(crate) fn receivers(
    endpoints: &[(String, String, String)],
    event: &OutboxEvent,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = endpoints
        .iter()
        .filter(|(_, _, types)| {
            serde_json::from_str::<Vec<String>>(types)
                .is_ok_and(|t| t.iter().any(|t| t == event.event_type.as_str()))
        })
        .map(|(id, url, _)| (id.clone(), url.clone()))
        .collect();
    if let Some(url) = &event.callback_url {
        out.push((String::new(), url.clone()));
    }
    out
}

/// Keyword lists from their stored JSON columns.
pub(crate) fn keywords_from_columns(
    opt_out: Option<String>,
    opt_in: Option<String>,
) -> StoreResult<OptKeywords> {
    let parse = |v: Option<String>| -> StoreResult<Option<Vec<String>>> {
        v.map(|t| {
            serde_json::from_str(&t)
                .map_err(|e| StoreError::Other(anyhow::anyhow!("stored keywords: {e}")))
        })
        .transpose()
    };
    Ok(OptKeywords {
        opt_out: parse(opt_out)?,
        opt_in: parse(opt_in)?,
    })
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// What both backends do alike: the statements written once (`sql`), with this
    /// backend's pools, cipher and lookups. The methods with a body below are those.
    fn shared(&self) -> &sql::Shared;

    /// How many writes of this process have queued callback outbox rows (counted before
    /// their commit): the callback worker skips a status event's pass when it has not moved.
    fn outbox_writes(&self) -> u64 {
        self.shared().lookups.outbox_writes()
    }

    // Operations
    /// A trivial round trip: `Ok(true)` when the database answers and has every migration this
    /// binary embeds, `Ok(false)` when it answers but its schema is behind, `Err` when it does
    /// not answer.
    async fn ping(&self) -> StoreResult<bool>;
    /// Per channel with messages not yet taken by the provider: how many and since when.
    async fn queues(&self) -> StoreResult<Vec<ChannelQueue>> {
        self.shared().queues().await
    }
    /// How many messages are in each status (statuses with none are left out).
    async fn message_counts(&self) -> StoreResult<Vec<(String, i64)>> {
        self.shared().message_counts().await
    }

    // Accounts
    async fn insert_account(&self, account: &Account) -> StoreResult<()> {
        self.shared().insert_account(account).await
    }
    async fn account(&self, id: &str) -> StoreResult<Option<Account>> {
        self.shared().account(id).await
    }

    // Channels
    async fn insert_channel(&self, channel: &Channel, token_hash: &str) -> StoreResult<()> {
        self.shared().insert_channel(channel, token_hash).await
    }
    async fn update_channel(&self, channel: &Channel) -> StoreResult<()> {
        self.shared().update_channel(channel).await
    }
    async fn set_channel_token(&self, id: &str, token_hash: &str, now: i64) -> StoreResult<bool> {
        self.shared().set_channel_token(id, token_hash, now).await
    }
    async fn channel(&self, id: &str) -> StoreResult<Option<Channel>> {
        self.shared().channel(id).await
    }
    async fn channel_by_token(&self, token_hash: &str) -> StoreResult<Option<Channel>> {
        self.shared().channel_by_token(token_hash).await
    }
    async fn channel_by_phone_number_id(
        &self,
        phone_number_id: &str,
    ) -> StoreResult<Option<Channel>> {
        self.shared()
            .channel_by_phone_number_id(phone_number_id)
            .await
    }
    async fn channels_by_waba(&self, waba_id: &str) -> StoreResult<Vec<Channel>> {
        self.shared().channels_by_waba(waba_id).await
    }
    async fn list_channels(&self) -> StoreResult<Vec<Channel>> {
        self.shared().list_channels().await
    }
    /// Halts a channel with the error that stopped it, or (`None`) marks it healthy again.
    async fn set_channel_health(
        &self,
        id: &str,
        halted: Option<&ProviderError>,
        now: i64,
    ) -> StoreResult<()> {
        self.shared().set_channel_health(id, halted, now).await
    }
    /// Rewrites the secrets of every channel whose secrets are not under the current
    /// encryption key (key rotation). Each rewrite is a compare-and-set on the stored values,
    /// so a concurrent change of the channel is never overwritten.
    async fn reseal_channel_secrets(&self) -> StoreResult<Resealed> {
        self.shared().reseal_channel_secrets().await
    }
    /// How the channels' secrets are stored: unencrypted, or under which key.
    async fn seal_census(&self) -> StoreResult<SealCensus> {
        self.shared().seal_census().await
    }

    // Groups
    async fn insert_group(&self, group: &Group) -> StoreResult<()> {
        self.shared().insert_group(group).await
    }
    async fn group_by_name(&self, account_id: &str, name: &str) -> StoreResult<Option<Group>> {
        self.shared().group_by_name(account_id, name).await
    }
    /// The first group associated with the channel.
    async fn default_group(&self, channel_id: &str) -> StoreResult<Option<Group>> {
        self.shared().default_group(channel_id).await
    }

    // Templates
    async fn insert_template(&self, template: &Template) -> StoreResult<()> {
        self.shared().insert_template(template).await
    }
    async fn update_template(&self, template: &Template) -> StoreResult<()> {
        self.shared().update_template(template).await
    }
    async fn template(&self, id: &str) -> StoreResult<Option<Template>> {
        self.shared().template(id).await
    }
    /// A template of one account (tenant-scoped: another account's id is `None`).
    async fn account_template(&self, account_id: &str, id: &str) -> StoreResult<Option<Template>> {
        self.shared().account_template(account_id, id).await
    }
    async fn template_by_app_id(
        &self,
        account_id: &str,
        app_id: &str,
    ) -> StoreResult<Option<Template>> {
        self.shared().template_by_app_id(account_id, app_id).await
    }
    /// The template with this name and language (one that is not `DELETED` first).
    async fn template_by_name(
        &self,
        account_id: &str,
        name: &str,
        language: &str,
    ) -> StoreResult<Option<Template>> {
        self.shared()
            .template_by_name(account_id, name, language)
            .await
    }
    /// The account's templates by page; `DELETED` ones only when `filter.status` asks for them.
    async fn list_templates(
        &self,
        account_id: &str,
        filter: &TemplateFilter,
    ) -> StoreResult<(Vec<Template>, u64)> {
        self.shared().list_templates(account_id, filter).await
    }

    // Conversations and messages
    async fn conversation(&self, id: &str) -> StoreResult<Option<Conversation>> {
        self.shared().conversation(id).await
    }
    async fn close_conversation(
        &self,
        id: &str,
        reason: CloseReason,
        now: i64,
    ) -> StoreResult<Option<Conversation>>;
    async fn message(&self, id: &str) -> StoreResult<Option<Message>> {
        self.shared().message(id).await
    }
    async fn message_attempts(&self, message_id: &str) -> StoreResult<Vec<AttemptRecord>> {
        self.shared().message_attempts(message_id).await
    }
    /// An inbound message from a contact: keeps the contact's name and the time of their
    /// last message (WhatsApp's 24-hour window), and the conversation's activity.
    async fn record_inbound(
        &self,
        channel: &Channel,
        phone_number: &str,
        name: Option<&str>,
        at: i64,
    ) -> StoreResult<()> {
        self.shared()
            .record_inbound(channel, phone_number, name, at)
            .await
    }

    /// Stores an inbound message once per (channel, wamid), in one transaction with: the
    /// contact (name, username, user id, the 24-hour window) when the sender's number is
    /// given or known by user id, the conversation's activity, and `message.received` queued.
    /// The message joins the channel's pending or open conversation with the number, else
    /// the latest one; none when there is no conversation or no number. A wamid seen before
    /// changes nothing (`Duplicate`).
    async fn record_inbound_message(&self, m: &InboundInsert) -> StoreResult<InboundRecorded>;
    /// A conversation's inbound messages in `(received_at, id)` order, after the cursor.
    async fn conversation_inbound(
        &self,
        conversation_id: &str,
        after: Option<(i64, String)>,
        limit: u32,
    ) -> StoreResult<Vec<InboundMessage>> {
        self.shared()
            .conversation_inbound(conversation_id, after, limit)
            .await
    }
    /// Keeps a status's business-scoped user id on the contact message `message_id` was sent
    /// to (one statement; nothing written when the contact has it already).
    async fn link_message_user_id(
        &self,
        message_id: &str,
        user_id: &str,
        now: i64,
    ) -> StoreResult<()> {
        self.shared()
            .link_message_user_id(message_id, user_id, now)
            .await
    }

    /// Decides and stores one send in a single transaction: the conversation (found, expired or
    /// created within the plan limit), the contact, the message and its delivery job.
    async fn accept_send(&self, send: &AcceptSend) -> StoreResult<AcceptOutcome>;
    /// Decides and stores many sends in one transaction, each as `accept_send` would; a send
    /// that meets a concurrent conversation gets `Err(Conflict)` and the others stand.
    async fn accept_batch(
        &self,
        sends: &[AcceptSend],
    ) -> StoreResult<Vec<StoreResult<AcceptOutcome>>>;
    async fn insert_batch(&self, batch: &Batch) -> StoreResult<()> {
        self.shared().insert_batch(batch).await
    }
    async fn batch(&self, id: &str) -> StoreResult<Option<Batch>> {
        self.shared().batch(id).await
    }
    /// Messages of a batch by status.
    async fn batch_counts(&self, id: &str) -> StoreResult<Vec<(String, i64)>> {
        self.shared().batch_counts(id).await
    }
    async fn list_messages(
        &self,
        account_id: &str,
        filter: &MessageFilter,
    ) -> StoreResult<Vec<Message>> {
        self.shared().list_messages(account_id, filter).await
    }
    async fn list_conversations(
        &self,
        account_id: &str,
        filter: &ConversationFilter,
    ) -> StoreResult<Vec<Conversation>> {
        self.shared().list_conversations(account_id, filter).await
    }

    /// Deletes what the messaging limit no longer reads: conversation starts older than
    /// `before` (PostgreSQL's `recipient_starts`; nothing on SQLite).
    async fn forget_recipient_starts(&self, before: i64) -> StoreResult<u64> {
        self.shared().forget_recipient_starts(before).await
    }
    async fn delete_expired_idempotency_keys(&self, now: i64) -> StoreResult<u64> {
        self.shared().delete_expired_idempotency_keys(now).await
    }
    /// When a queued message's next attempt is due, if it has a delivery job.
    async fn next_attempt_at(&self, message_id: &str) -> StoreResult<Option<i64>> {
        self.shared().next_attempt_at(message_id).await
    }

    // Campaigns
    /// Cancels a message of the account that no dispatcher holds and the provider does not
    /// have (`scheduled` or `queued`), in one transaction that races a claim safely: exactly
    /// one of them wins. Queues `message.cancelled`.
    async fn cancel_message(
        &self,
        account_id: &str,
        id: &str,
        now: i64,
    ) -> StoreResult<CancelOutcome>;
    /// Cancels every cancellable message of a batch; their ids.
    async fn cancel_batch(&self, batch_id: &str, now: i64) -> StoreResult<Vec<String>>;
    /// Pauses or resumes a batch: its jobs not claimed are skipped by the dispatcher while
    /// paused. `false` when no such batch.
    async fn set_batch_paused(&self, batch_id: &str, paused: bool) -> StoreResult<bool> {
        self.shared().set_batch_paused(batch_id, paused).await
    }
    /// Gives a claimed job back until `until`, without counting the attempt, and shows the
    /// message as held for `reason`; fenced by the attempt.
    async fn hold_job(
        &self,
        message_id: &str,
        attempt: i64,
        until: i64,
        reason: &str,
        now: i64,
    ) -> StoreResult<bool> {
        self.shared()
            .hold_job(message_id, attempt, until, reason, now)
            .await
    }
    /// Recipients of the channel's messages that opened a new conversation, handed over since
    /// `since`.
    async fn new_recipients(&self, channel_id: &str, since: i64) -> StoreResult<NewRecipients> {
        self.shared().new_recipients(channel_id, since).await
    }
    /// Sets (or with `None` clears) an account's quiet hours; `false` when no such account.
    async fn set_quiet_hours(
        &self,
        account_id: &str,
        window: Option<(i64, i64)>,
        now: i64,
    ) -> StoreResult<bool> {
        self.shared().set_quiet_hours(account_id, window, now).await
    }
    /// Sets (or with `None` clears) a channel's messaging limit; `false` when no such channel.
    async fn set_messaging_limit(
        &self,
        channel_id: &str,
        limit: Option<i64>,
        now: i64,
    ) -> StoreResult<bool> {
        self.shared()
            .set_messaging_limit(channel_id, limit, now)
            .await
    }
    /// A batch's figures by error code, template and hold reason.
    async fn batch_report(&self, batch_id: &str) -> StoreResult<BatchReport> {
        self.shared().batch_report(batch_id).await
    }

    // API keys
    async fn insert_api_key(&self, key: &ApiKey, key_hash: &str) -> StoreResult<()> {
        self.shared().insert_api_key(key, key_hash).await
    }
    /// The live key with this hash.
    async fn api_key(&self, key_hash: &str) -> StoreResult<Option<ApiKey>> {
        self.shared().api_key(key_hash).await
    }

    // Delivery
    /// Connected, healthy channels that have jobs due at `now`. A job whose lease expired (its dispatcher died
    /// mid-send) is due only `orphan_wait_ms` after the lease ended, giving a status webhook
    /// time to prove the send happened.
    async fn due_channels(&self, now: i64, orphan_wait_ms: i64) -> StoreResult<Vec<String>> {
        self.shared().due_channels(now, orphan_wait_ms).await
    }

    /// When the earliest job becomes claimable (see `due_channels`), to sleep until.
    async fn next_due(&self, orphan_wait_ms: i64) -> StoreResult<Option<i64>> {
        self.shared().next_due(orphan_wait_ms).await
    }

    /// Leases up to `limit` of the channel's oldest due jobs until `now + lease_ms` and marks
    /// their messages `sending`.
    async fn claim_jobs(
        &self,
        channel_id: &str,
        limit: u32,
        now: i64,
        lease_ms: i64,
        orphan_wait_ms: i64,
    ) -> StoreResult<Vec<ClaimedJob>>;
    /// `claim_jobs` for several channels, `(channel id, limit)` each; the answers in the same
    /// order. A store with one writer claims them all in one transaction.
    async fn claim_many(
        &self,
        claims: &[(String, u32)],
        now: i64,
        lease_ms: i64,
        orphan_wait_ms: i64,
    ) -> StoreResult<Vec<Vec<ClaimedJob>>> {
        let mut out = Vec::with_capacity(claims.len());
        for (channel_id, limit) in claims {
            out.push(
                self.claim_jobs(channel_id, *limit, now, lease_ms, orphan_wait_ms)
                    .await?,
            );
        }
        Ok(out)
    }
    /// Records an attempt's outcome if the job is still at that attempt; `Stale` when a newer
    /// claim owns the job (the outcome is dropped).
    async fn finish_attempt(&self, outcome: &AttemptOutcome) -> StoreResult<Finished>;

    /// [`Store::finish_attempt`], and when it recorded an accepted outcome, the statuses kept
    /// for the message ([`Store::take_pending_statuses`] by the provider's id and ours),
    /// taken for the caller to apply. The outcome is recorded even when the kept statuses
    /// cannot be taken (the inner error). PostgreSQL takes them in the outcome's own
    /// transaction.
    async fn finish_and_take_kept(
        &self,
        outcome: &AttemptOutcome,
    ) -> StoreResult<(Finished, StoreResult<Vec<StatusUpdate>>)> {
        let finished = self.finish_attempt(outcome).await?;
        let kept = match (&finished, &outcome.result) {
            (
                Finished::Recorded { .. },
                AttemptResult::Accepted {
                    provider_message_id,
                    ..
                },
            ) => {
                self.take_pending_statuses(provider_message_id, &outcome.message_id)
                    .await
            }
            _ => Ok(Vec::new()),
        };
        Ok((finished, kept))
    }

    /// Applies a provider status to its message and conversation, monotonically. A status
    /// proves the provider took the message, so it also ends the message's delivery job.
    async fn apply_status(&self, update: &StatusUpdate) -> StoreResult<StatusApplied>;
    /// Applies `updates` in their order, each as [`Store::apply_status`] applies it (several
    /// statuses of one message apply one after the other), in one transaction: the results
    /// in the same order, or an error and none of them applied. A webhook's statuses are
    /// applied this way, one commit for all of them.
    async fn apply_statuses(&self, updates: &[StatusUpdate]) -> StoreResult<Vec<StatusApplied>>;
    /// Takes or renews the right to send for a channel until `now + ttl_ms`: `true` when
    /// `owner` holds it (it was free, lapsed, or already `owner`'s). One instance sends for a
    /// channel at a time, so the channel's rate holds across instances.
    async fn own_channel(
        &self,
        channel_id: &str,
        owner: &str,
        now: i64,
        ttl_ms: i64,
    ) -> StoreResult<bool> {
        self.shared()
            .own_channel(channel_id, owner, now, ttl_ms)
            .await
    }

    /// Gives up every channel `owner` holds (on shutdown).
    async fn release_channels(&self, owner: &str) -> StoreResult<()> {
        self.shared().release_channels(owner).await
    }
    /// Rings `wake` whenever another instance queues work, until `cancel` (a no-op where
    /// only one process sends).
    fn listen_for_work(
        &self,
        wake: Arc<tokio::sync::Notify>,
        cancel: tokio_util::sync::CancellationToken,
    );

    /// Keeps a status whose message was not known, once per (wamid, status): a replay of a
    /// kept status is not kept twice. If the message has become known meanwhile (its send's
    /// response was recorded since the status was looked up), the statuses kept for it (this
    /// one among them) are taken back and returned, oldest first, for the caller to apply:
    /// the outcome that recorded the wamid may have taken the kept statuses before this one
    /// was kept (see `Shared::take_known_pending`). Empty: the status is kept.
    async fn store_pending_status(
        &self,
        update: &StatusUpdate,
        now: i64,
    ) -> StoreResult<Vec<StatusUpdate>> {
        self.shared().store_pending_status(update, now).await?;
        self.shared().take_known_pending(update).await
    }

    /// Forgets kept statuses received before `received_before`; how many.
    async fn expire_pending_statuses(&self, received_before: i64) -> StoreResult<u64> {
        self.shared().expire_pending_statuses(received_before).await
    }

    /// How many statuses are kept for messages not known (yet).
    async fn pending_status_count(&self) -> StoreResult<i64> {
        self.shared().pending_status_count().await
    }

    /// Sandbox messages the simulator has not finished: accepted (a wamid, no delivery job)
    /// and `sending`, `sent` or `delivered`, oldest change first, at most `limit`.
    async fn sandbox_in_flight(&self, limit: i64) -> StoreResult<Vec<SimulatedMessage>> {
        self.shared().sandbox_in_flight(limit).await
    }

    /// Takes the kept statuses of a message, by provider id or plantilla id, oldest first.
    async fn take_pending_statuses(
        &self,
        provider_message_id: &str,
        message_id: &str,
    ) -> StoreResult<Vec<StatusUpdate>>;

    // Status callbacks
    /// Stores an endpoint. With an idempotency key, in the same transaction: an expired key
    /// is forgotten; a key seen before answers what it created (`Replayed`) or `KeyReused`
    /// and stores nothing; a new key is stored with the endpoint's id (never its secret). Of
    /// concurrent creations with one key, exactly one stores an endpoint.
    async fn insert_webhook_endpoint(
        &self,
        endpoint: &WebhookEndpoint,
        idempotency: Option<&IdempotencyKey>,
    ) -> StoreResult<EndpointInsert>;

    /// The account's endpoints, oldest first.
    async fn webhook_endpoints(&self, account_id: &str) -> StoreResult<Vec<WebhookEndpoint>> {
        self.shared().webhook_endpoints(account_id).await
    }
    /// An endpoint of one account (tenant-scoped: another account's id is `None`).
    async fn webhook_endpoint(
        &self,
        account_id: &str,
        id: &str,
    ) -> StoreResult<Option<WebhookEndpoint>> {
        self.shared().webhook_endpoint(account_id, id).await
    }

    /// Deletes an endpoint of the account with its deliveries; `false` when it has none.
    async fn delete_webhook_endpoint(&self, account_id: &str, id: &str) -> StoreResult<bool> {
        self.shared().delete_webhook_endpoint(account_id, id).await
    }
    /// An endpoint's deliveries in outbox order, after the one numbered `after_seq`.
    async fn callback_deliveries(
        &self,
        endpoint_id: &str,
        after_seq: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<CallbackDelivery>> {
        self.shared()
            .callback_deliveries(endpoint_id, after_seq, limit)
            .await
    }

    /// Replaces the secret that signs deliveries to messages' `callbackUrl`; `false` when no
    /// such account.
    async fn set_callback_secret(&self, account_id: &str, secret: &str) -> StoreResult<bool> {
        self.shared().set_callback_secret(account_id, secret).await
    }
    /// Sets a template's status and, when it changed, queues `template.status_changed` in the
    /// same transaction. Returns whether it changed.
    async fn set_template_status(&self, id: &str, status: &str, now: i64) -> StoreResult<bool> {
        self.shared().set_template_status(id, status, now).await
    }
    // Opt-outs
    /// The account's suppression list, oldest first, after the `(created_at, phone)` cursor.
    async fn list_suppressions(
        &self,
        account_id: &str,
        after: Option<(i64, String)>,
        limit: u32,
    ) -> StoreResult<Vec<Suppression>> {
        self.shared()
            .list_suppressions(account_id, after, limit)
            .await
    }
    async fn suppression(
        &self,
        account_id: &str,
        phone_number: &str,
    ) -> StoreResult<Option<Suppression>> {
        self.shared().suppression(account_id, phone_number).await
    }
    /// Adds `entry` and queues `contact.opted_out` in the same transaction. A number already
    /// on the list keeps its entry: `Ok(Some(existing))`, nothing written. `Ok(None)`: added.
    async fn add_suppression(&self, entry: &Suppression) -> StoreResult<Option<Suppression>> {
        self.shared().add_suppression(entry).await
    }
    /// Removes the number's entry (only an automatic one when `removal.only_automatic`) and
    /// queues `contact.opted_in` in the same transaction. The removed entry, if any.
    async fn remove_suppression(
        &self,
        account_id: &str,
        phone_number: &str,
        removal: &SuppressionRemoval,
    ) -> StoreResult<Option<Suppression>> {
        self.shared()
            .remove_suppression(account_id, phone_number, removal)
            .await
    }
    /// Meta declined an accepted MARKETING message with 131049 in a status webhook and it is
    /// retried at `run_at`: back to `queued` with the error kept, its provider id forgotten, a
    /// delivery job due then and the attempt recorded (`retry`), in one transaction. `false`
    /// (nothing written) when the message is not of `channel_id` or no longer in flight
    /// (`sending` or `sent`).
    async fn requeue_declined(
        &self,
        message_id: &str,
        channel_id: Option<&str>,
        error: &ProviderError,
        run_at: i64,
        now: i64,
    ) -> StoreResult<bool> {
        self.shared()
            .requeue_declined(message_id, channel_id, error, run_at, now)
            .await
    }

    /// The account's keyword lists; `None` when there is no such account.
    async fn opt_keywords(&self, account_id: &str) -> StoreResult<Option<OptKeywords>> {
        self.shared().opt_keywords(account_id).await
    }
    /// Sets the lists given (`Some(None)`: back to the defaults; `None`: unchanged). `false`
    /// when there is no such account.
    async fn set_opt_keywords(
        &self,
        account_id: &str,
        opt_out: Option<Option<Vec<String>>>,
        opt_in: Option<Option<Vec<String>>>,
        now: i64,
    ) -> StoreResult<bool> {
        self.shared()
            .set_opt_keywords(account_id, opt_out, opt_in, now)
            .await
    }

    // Template and number health, usage (issue 15)
    /// Applies a health report from Meta to a template: its status, category and health
    /// move, and the events (`template.status_changed`, `template.category_changed`,
    /// `template.quality_changed`) are queued in the same transaction. `false`: no such
    /// template, or the report repeats what is known.
    async fn apply_template_health(
        &self,
        template_id: &str,
        change: &TemplateHealthChange,
        now: i64,
    ) -> StoreResult<bool> {
        self.shared()
            .apply_template_health(template_id, change, now)
            .await
    }
    /// The health of the account's templates that have one, by template id.
    async fn template_healths(
        &self,
        account_id: &str,
    ) -> StoreResult<std::collections::HashMap<String, TemplateHealth>> {
        self.shared().template_healths(account_id).await
    }
    /// Applies a quality / messaging-limit report to a channel and queues
    /// `channel.quality_changed` in the same transaction. `false`: no such channel, or the
    /// report repeats what is known.
    async fn apply_channel_quality(
        &self,
        channel_id: &str,
        change: &ChannelQualityChange,
        now: i64,
    ) -> StoreResult<bool> {
        self.shared()
            .apply_channel_quality(channel_id, change, now)
            .await
    }
    /// The quality of every channel that has one, by channel id.
    async fn channel_qualities(
        &self,
    ) -> StoreResult<std::collections::HashMap<String, ChannelQuality>> {
        self.shared().channel_qualities().await
    }
    /// The account's messages Meta priced (a status carried `pricing`) whose first status
    /// time (sent, else delivered, else read) is in `[from, to)` (Unix ms).
    async fn priced_messages(
        &self,
        account_id: &str,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<PricedMessage>> {
        self.shared().priced_messages(account_id, from, to).await
    }
    /// Leases until `now + lease_ms` up to `limit` due deliveries, each the oldest pending
    /// one of its stream (endpoint and message), so a stream is never delivered out of order.
    /// A delivery to a `callbackUrl` comes with the account's callback secret, created here
    /// the first time.
    async fn claim_callbacks(
        &self,
        now: i64,
        limit: u32,
        lease_ms: i64,
    ) -> StoreResult<Vec<ClaimedCallback>>;

    /// Records an attempt's outcome if the delivery is still at that attempt; `false` when
    /// it is not (a newer claim owns it, or it is gone). A retry moves the later pending
    /// deliveries of its stream to its next attempt time too.
    async fn finish_callback(&self, outcome: &CallbackOutcome) -> StoreResult<bool> {
        self.shared().finish_callback(outcome).await
    }

    // The operator console (see `console`)
    /// Stores a session, forgetting expired ones.
    async fn insert_console_session(&self, session: &console::ConsoleSession) -> StoreResult<()> {
        self.shared().insert_console_session(session).await
    }
    /// The live session with this token hash (an API key's only while the key is live).
    async fn console_session(
        &self,
        token_hash: &str,
        now: i64,
    ) -> StoreResult<Option<console::ConsoleSession>> {
        self.shared().console_session(token_hash, now).await
    }
    async fn delete_console_session(&self, token_hash: &str) -> StoreResult<()> {
        self.shared().delete_console_session(token_hash).await
    }
    async fn list_accounts(&self) -> StoreResult<Vec<Account>> {
        self.shared().list_accounts().await
    }
    /// An account's newest batches.
    async fn list_batches(&self, account_id: &str, limit: u32) -> StoreResult<Vec<Batch>> {
        self.shared().list_batches(account_id, limit).await
    }
    /// `(bucket start, status, messages)` of an account's messages queued since `since`.
    async fn message_series(
        &self,
        account_id: &str,
        since: i64,
        bucket_ms: i64,
    ) -> StoreResult<Vec<(i64, String, i64)>> {
        self.shared()
            .message_series(account_id, since, bucket_ms)
            .await
    }
    async fn message_funnel(&self, account_id: &str, since: i64) -> StoreResult<console::Funnel> {
        self.shared().message_funnel(account_id, since).await
    }
    /// `(code, title, messages)` of the commonest errors of messages failed since `since`.
    async fn top_failures(
        &self,
        account_id: &str,
        since: i64,
        limit: u32,
    ) -> StoreResult<Vec<(i64, Option<String>, i64)>> {
        self.shared().top_failures(account_id, since, limit).await
    }
    /// An account's newest callback deliveries, of one endpoint (`Some("")`: messages' own
    /// `callbackUrl`) and/or one message when given.
    async fn recent_deliveries(
        &self,
        account_id: &str,
        endpoint_id: Option<&str>,
        message_id: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<CallbackDelivery>> {
        self.shared()
            .recent_deliveries(account_id, endpoint_id, message_id, limit)
            .await
    }
}
