//! Webhook endpoints and the callback outbox, suppressions, inbound messages, template and
//! number health, opt keywords, kept (early) statuses and idempotency housekeeping.
//!
//! What stays in the backends, and why:
//! - `claim_callbacks`' claim: PostgreSQL leases with `FOR UPDATE … SKIP LOCKED` so several
//!   instances claim side by side; SQLite's single writer needs no lock. The rows claimed
//!   get their secrets here ([`Shared::claimed_callbacks`]).
//! - `insert_webhook_endpoint`'s idempotency key: SQLite's single writer reads the key then
//!   stores it; PostgreSQL lets the key's primary key decide between concurrent creations.
//!   The endpoint's insert and a replay are here.
//! - Nothing of the transactions that queue events (`add_suppression`, `remove_suppression`,
//!   `apply_template_health`, `apply_channel_quality`): they are here whole; PostgreSQL's
//!   lock of the template's or channel's row is the one clause [`Db::pick`] adds.
//!   `record_inbound_message` begins in the backends (PostgreSQL's duplicate check and
//!   retries) and ends here ([`Shared::inbound_stored`]).
//! - SQLite counts kept statuses (`kept_statuses`, so a status costs no statement while
//!   none are kept); PostgreSQL, with several instances, cannot.
//! - PostgreSQL tries `record_inbound` and `record_inbound_message` again when chosen as a
//!   deadlock victim.

use std::collections::HashMap;
use std::ops::ControlFlow;

use anyhow::Context;

use super::{Cols, Db, Mapped, Row, Shared, Tx, sql};
use crate::domain::callback::EventType;
use crate::store::health::ChannelPlan;
use crate::store::{
    CallbackDelivery, CallbackOutcome, CallbackResult, Channel, ChannelQuality,
    ChannelQualityChange, ClaimedCallback, EndpointInsert, InboundInsert, InboundMessage,
    InboundRecorded, OptKeywords, OutboxEvent, Pricing, ProviderError, SimulatedMessage,
    SimulatedRow, StatusUpdate, StoreResult, Suppression, SuppressionRemoval, Template,
    TemplateHealth, TemplateHealthChange, WebhookEndpoint, contact_event, endpoint_replay, health,
    inbound_event, keywords_from_columns, sandbox_in_flight_sql,
};

/// A conversation that is open. PostgreSQL's `conversations_one_active` (channel, number)
/// holds only active ones, and its planner cannot infer `active` from `status`.
const OPEN_SQLITE: &str = "status = 'open'";
const OPEN_POSTGRES: &str = "active AND status = 'open'";

impl Suppression {
    pub(crate) fn from_row(r: &impl Cols) -> StoreResult<Suppression> {
        Ok(Suppression {
            account_id: r.get("account_id")?,
            phone_number: r.get("phone_number")?,
            reason: r.get("reason")?,
            note: r.get("note")?,
            automatic: r.flag("automatic")?,
            channel_id: r.get("channel_id")?,
            created_at: r.get("created_at")?,
        })
    }
}

impl CallbackDelivery {
    pub(crate) fn from_row(r: &impl Cols) -> StoreResult<CallbackDelivery> {
        let endpoint_id: String = r.get("endpoint_id")?;
        Ok(CallbackDelivery {
            seq: r.get("seq")?,
            id: r.get("id")?,
            account_id: r.get("account_id")?,
            endpoint_id: (!endpoint_id.is_empty()).then_some(endpoint_id),
            url: r.get("url")?,
            message_id: r.get("message_id")?,
            event_type: r.get("event_type")?,
            payload: r.get("payload")?,
            status: r.get("status")?,
            attempts: r.get("attempts")?,
            next_attempt_at: r.get("next_attempt_at")?,
            last_response_status: r.get("last_response_status")?,
            last_error: r.get("last_error")?,
            created_at: r.get("created_at")?,
            delivered_at: r.get("delivered_at")?,
        })
    }
}

impl WebhookEndpoint {
    pub(crate) fn from_row(r: &impl Cols) -> StoreResult<WebhookEndpoint> {
        let types: String = r.get("event_types")?;
        Ok(WebhookEndpoint {
            id: r.get("id")?,
            account_id: r.get("account_id")?,
            url: r.get("url")?,
            event_types: serde_json::from_str(&types).context("endpoint event types")?,
            description: r.get("description")?,
            secret: r.get("secret")?,
            created_at: r.get("created_at")?,
        })
    }
}

impl StatusUpdate {
    /// A row of `pending_statuses`.
    pub(crate) fn from_pending_row(r: &impl Cols) -> StoreResult<StatusUpdate> {
        let status: String = r.get("status")?;
        Ok(StatusUpdate {
            provider_message_id: r.get("provider_message_id")?,
            message_id: r.get("message_id")?,
            status: status.parse().map_err(anyhow::Error::msg)?,
            at: r.get("at")?,
            error: match r.get::<Option<i64>>("error_code")? {
                Some(code) => Some(ProviderError {
                    code,
                    title: r.get::<Option<String>>("error_title")?.unwrap_or_default(),
                    details: r.get("error_details")?,
                }),
                None => None,
            },
            pricing_category: r.get("pricing_category")?,
            pricing: Pricing::from_row(r)?,
            // A kept status matched no message when it came; it is taken by its own
            // message's wamid or id only.
            channel_id: None,
        })
    }
}

/// Kept statuses, as `DELETE … RETURNING *` took them from `pending_statuses`, oldest first.
pub(crate) fn pending_in_order(rows: &[impl Cols]) -> StoreResult<Vec<StatusUpdate>> {
    let mut taken = rows
        .iter()
        .map(|r| Ok((r.get::<i64>("id")?, StatusUpdate::from_pending_row(r)?)))
        .collect::<StoreResult<Vec<_>>>()?;
    taken.sort_by_key(|(id, _)| *id);
    Ok(taken.into_iter().map(|(_, u)| u).collect())
}

impl Shared {
    // Webhook endpoints and the outbox

    /// Ends `insert_webhook_endpoint` once the backend's transaction `tx` decided to create
    /// the endpoint: stores it and commits.
    pub(crate) async fn endpoint_created(
        &self,
        mut tx: Tx,
        e: &WebhookEndpoint,
    ) -> StoreResult<EndpointInsert> {
        let event_types = serde_json::to_string(&e.event_types).context("event types")?;
        let insert = sql(
            "INSERT INTO webhook_endpoints (id, account_id, url, event_types, description,
                secret, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&e.id)
        .bind(&e.account_id)
        .bind(&e.url)
        .bind(&event_types)
        .bind(&e.description)
        .bind(&e.secret)
        .bind(e.created_at);
        tx.db().run(insert).await?;
        tx.commit().await?;
        Ok(EndpointInsert::Created)
    }

    /// What a creation with an idempotency key stored before (`fingerprint`, `outcome`)
    /// answers, read in the caller's transaction.
    pub(crate) async fn endpoint_replay_in(
        &self,
        db: &mut Db<'_>,
        e: &WebhookEndpoint,
        request_fingerprint: &str,
        fingerprint: &str,
        outcome: &str,
    ) -> StoreResult<EndpointInsert> {
        let Some(id) = endpoint_replay(request_fingerprint, fingerprint, outcome)? else {
            return Ok(EndpointInsert::KeyReused);
        };
        let created = db
            .opt(
                sql("SELECT * FROM webhook_endpoints WHERE id = $1 AND account_id = $2")
                    .bind(&id)
                    .bind(&e.account_id),
            )
            .await?;
        Ok(match created {
            Some(row) => EndpointInsert::Replayed(WebhookEndpoint::from_row(&row)?),
            None => EndpointInsert::ReplayedDeleted { id },
        })
    }

    pub(crate) async fn webhook_endpoints(
        &self,
        account_id: &str,
    ) -> StoreResult<Vec<WebhookEndpoint>> {
        self.read()
            .all(
                sql("SELECT * FROM webhook_endpoints WHERE account_id = $1
                     ORDER BY created_at, id")
                .bind(account_id),
            )
            .await?
            .mapped(WebhookEndpoint::from_row)
    }

    pub(crate) async fn webhook_endpoint(
        &self,
        account_id: &str,
        id: &str,
    ) -> StoreResult<Option<WebhookEndpoint>> {
        self.read()
            .opt(
                sql("SELECT * FROM webhook_endpoints WHERE id = $1 AND account_id = $2")
                    .bind(id)
                    .bind(account_id),
            )
            .await?
            .mapped(WebhookEndpoint::from_row)
    }

    pub(crate) async fn delete_webhook_endpoint(
        &self,
        account_id: &str,
        id: &str,
    ) -> StoreResult<bool> {
        let _changed = self.lookups.writing();
        let mut tx = self.begin().await?;
        let deleted = tx
            .db()
            .run(
                sql("DELETE FROM webhook_endpoints WHERE id = $1 AND account_id = $2")
                    .bind(id)
                    .bind(account_id),
            )
            .await?
            == 1;
        if deleted {
            tx.db()
                .run(sql("DELETE FROM callback_outbox WHERE endpoint_id = $1").bind(id))
                .await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }

    pub(crate) async fn callback_deliveries(
        &self,
        endpoint_id: &str,
        after_seq: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<CallbackDelivery>> {
        self.read()
            .all(
                sql("SELECT * FROM callback_outbox
                     WHERE endpoint_id = $1 AND (CAST($2 AS BIGINT) IS NULL OR seq > $2)
                     ORDER BY seq LIMIT $3")
                .bind(endpoint_id)
                .bind(after_seq)
                .bind(limit),
            )
            .await?
            .mapped(CallbackDelivery::from_row)
    }

    pub(crate) async fn set_callback_secret(
        &self,
        account_id: &str,
        secret: &str,
    ) -> StoreResult<bool> {
        let done = self
            .write()
            .run(
                sql("UPDATE accounts SET callback_secret = $1 WHERE id = $2")
                    .bind(secret)
                    .bind(account_id),
            )
            .await?;
        Ok(done == 1)
    }

    /// Ends `claim_callbacks`: the outbox `rows` the backend's claim leased in `tx`, in outbox
    /// order, each with the secret that signs it (its endpoint's, or the account's for a
    /// `callbackUrl`), read in the claim's transaction before it commits.
    pub(crate) async fn claimed_callbacks(
        &self,
        mut tx: Tx,
        rows: &[Row],
    ) -> StoreResult<Vec<ClaimedCallback>> {
        let deliveries = rows
            .iter()
            .map(CallbackDelivery::from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        let claimed = self.with_secrets(&mut tx.db(), deliveries).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    async fn with_secrets(
        &self,
        db: &mut Db<'_>,
        mut deliveries: Vec<CallbackDelivery>,
    ) -> StoreResult<Vec<ClaimedCallback>> {
        deliveries.sort_by_key(|d| d.seq);
        let mut claimed = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            let secret: Option<String> = match &delivery.endpoint_id {
                Some(endpoint_id) => db
                    .opt(
                        sql("SELECT secret FROM webhook_endpoints WHERE id = $1").bind(endpoint_id),
                    )
                    .await?
                    .map(|r| r.get("secret"))
                    .transpose()?,
                None => db.account_callback_secret(&delivery.account_id).await?,
            };
            claimed.push(ClaimedCallback { delivery, secret });
        }
        Ok(claimed)
    }

    pub(crate) async fn finish_callback(&self, o: &CallbackOutcome) -> StoreResult<bool> {
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
        let mut tx = self.begin().await?;
        let done = tx
            .db()
            .opt(
                sql("UPDATE callback_outbox SET status = $1, delivered_at = $2,
                        next_attempt_at = coalesce($3, next_attempt_at), lease_until = NULL,
                        last_response_status = $4, last_error = $5
                     WHERE id = $6 AND attempts = $7 AND status = 'pending'
                     RETURNING endpoint_id, ordering_key, seq")
                .bind(status)
                .bind(delivered_at)
                .bind(next_attempt_at)
                .bind(response_status)
                .bind(error)
                .bind(&o.id)
                .bind(o.attempt),
            )
            .await?;
        let Some(row) = done else {
            return Ok(false);
        };
        if let Some(at) = next_attempt_at {
            // The stream's later deliveries wait for this one: out of the due rows with it,
            // so a failing receiver's backlog is not scanned by every claim.
            let endpoint_id: String = row.get("endpoint_id")?;
            let ordering_key: String = row.get("ordering_key")?;
            let seq: i64 = row.get("seq")?;
            tx.db()
                .run(
                    sql("UPDATE callback_outbox SET next_attempt_at = $1
                         WHERE endpoint_id = $2 AND ordering_key = $3 AND seq > $4
                           AND status = 'pending' AND next_attempt_at < $1")
                    .bind(at)
                    .bind(&endpoint_id)
                    .bind(&ordering_key)
                    .bind(seq),
                )
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    // Suppressions

    pub(crate) async fn list_suppressions(
        &self,
        account_id: &str,
        after: Option<(i64, String)>,
        limit: u32,
    ) -> StoreResult<Vec<Suppression>> {
        let (after_ms, after_phone) = after.unwrap_or((i64::MIN, String::new()));
        self.read()
            .all(
                sql("SELECT * FROM suppressions WHERE account_id = $1
                       AND (created_at > $2 OR (created_at = $2 AND phone_number > $3))
                     ORDER BY created_at, phone_number LIMIT $4")
                .bind(account_id)
                .bind(after_ms)
                .bind(&after_phone)
                .bind(limit),
            )
            .await?
            .mapped(Suppression::from_row)
    }

    pub(crate) async fn suppression(
        &self,
        account_id: &str,
        phone_number: &str,
    ) -> StoreResult<Option<Suppression>> {
        self.read()
            .opt(
                sql("SELECT * FROM suppressions WHERE account_id = $1 AND phone_number = $2")
                    .bind(account_id)
                    .bind(phone_number),
            )
            .await?
            .mapped(Suppression::from_row)
    }

    /// [`Store::add_suppression`](crate::store::Store::add_suppression) in the caller's
    /// transaction, but for the event: `Continue` with the `contact.opted_out` to queue when
    /// added; `Break` with the answer when the number was on the list already (nothing
    /// written). The primary key decides between two concurrent adds: the loser reads the
    /// winner's, or `None` when it was removed again in between (as good as added by the
    /// other writer).
    pub(crate) async fn add_suppression_in(
        &self,
        db: &mut Db<'_>,
        entry: &Suppression,
    ) -> StoreResult<ControlFlow<Option<Suppression>, OutboxEvent>> {
        let inserted = db
            .run(
                sql(
                    "INSERT INTO suppressions (account_id, phone_number, reason, note,
                        automatic, channel_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (account_id, phone_number) DO NOTHING",
                )
                .bind(&entry.account_id)
                .bind(&entry.phone_number)
                .bind(&entry.reason)
                .bind(&entry.note)
                .bind(entry.automatic)
                .bind(&entry.channel_id)
                .bind(entry.created_at),
            )
            .await?
            == 1;
        if !inserted {
            let row = db
                .opt(
                    sql("SELECT * FROM suppressions WHERE account_id = $1 AND phone_number = $2")
                        .bind(&entry.account_id)
                        .bind(&entry.phone_number),
                )
                .await?;
            let existing = row.as_ref().map(Suppression::from_row).transpose()?;
            return Ok(ControlFlow::Break(existing));
        }
        Ok(ControlFlow::Continue(contact_event(
            EventType::ContactOptedOut,
            entry,
            &entry.reason,
            entry.channel_id.as_deref(),
            entry.created_at,
        )))
    }

    /// [`Store::remove_suppression`](crate::store::Store::remove_suppression) in the
    /// caller's transaction: the removed entry and its `contact.opted_in`, which the caller
    /// queues.
    pub(crate) async fn remove_suppression_in(
        &self,
        db: &mut Db<'_>,
        account_id: &str,
        phone_number: &str,
        removal: &SuppressionRemoval,
    ) -> StoreResult<Option<(Suppression, OutboxEvent)>> {
        let row = db
            .opt(
                sql(
                    "DELETE FROM suppressions WHERE account_id = $1 AND phone_number = $2
                       AND (automatic OR NOT $3)
                     RETURNING *",
                )
                .bind(account_id)
                .bind(phone_number)
                .bind(removal.only_automatic),
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let removed = Suppression::from_row(&row)?;
        let event = contact_event(
            EventType::ContactOptedIn,
            &removed,
            &removal.reason,
            removal.channel_id.as_deref(),
            removal.now,
        );
        Ok(Some((removed, event)))
    }

    /// [`Store::add_suppression`](crate::store::Store::add_suppression): the entry and its
    /// `contact.opted_out` in one transaction. When the number was on the list already
    /// nothing was written, and the transaction ends at once.
    pub(crate) async fn add_suppression(
        &self,
        entry: &Suppression,
    ) -> StoreResult<Option<Suppression>> {
        let mut tx = self.begin().await?;
        let event = match self.add_suppression_in(&mut tx.db(), entry).await? {
            ControlFlow::Continue(event) => event,
            ControlFlow::Break(existing) => {
                tx.commit().await?;
                return Ok(existing);
            }
        };
        tx.db()
            .queue_events(&self.lookups, &entry.account_id, &[event])
            .await?;
        tx.commit().await?;
        Ok(None)
    }

    /// [`Store::remove_suppression`](crate::store::Store::remove_suppression): the removal
    /// and its `contact.opted_in` in one transaction.
    pub(crate) async fn remove_suppression(
        &self,
        account_id: &str,
        phone_number: &str,
        removal: &SuppressionRemoval,
    ) -> StoreResult<Option<Suppression>> {
        let mut tx = self.begin().await?;
        let removed = self
            .remove_suppression_in(&mut tx.db(), account_id, phone_number, removal)
            .await?;
        let Some((removed, event)) = removed else {
            return Ok(None);
        };
        tx.db()
            .queue_events(&self.lookups, account_id, &[event])
            .await?;
        tx.commit().await?;
        Ok(Some(removed))
    }

    // Inbound messages

    pub(crate) async fn record_inbound(
        &self,
        channel: &Channel,
        phone_number: &str,
        name: Option<&str>,
        at: i64,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let mut db = tx.db();
        let greatest = db.pick("max", "GREATEST");
        let open = db.pick(OPEN_SQLITE, OPEN_POSTGRES);
        // Conversation before contact: the order `accept_send` locks them in on PostgreSQL.
        let text = format!(
            "UPDATE conversations SET last_activity_at = {greatest}(last_activity_at, $1)
             WHERE channel_id = $2 AND phone_number = $3 AND {open}"
        );
        db.run(sql(text).bind(at).bind(&channel.id).bind(phone_number))
            .await?;
        let text = format!(
            "INSERT INTO contacts (account_id, phone_number, client_name, last_inbound_at,
                created_at, updated_at)
             VALUES ($1, $2, coalesce($3, $2), $4, $4, $4)
             ON CONFLICT (account_id, phone_number) DO UPDATE SET
                client_name = coalesce($3, contacts.client_name),
                last_inbound_at = {greatest}(coalesce(contacts.last_inbound_at, 0), $4),
                updated_at = $4"
        );
        db.run(
            sql(text)
                .bind(&channel.account_id)
                .bind(phone_number)
                .bind(name)
                .bind(at),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether the channel has the inbound message's wamid already.
    pub(crate) async fn inbound_seen(
        &self,
        db: &mut Db<'_>,
        m: &InboundInsert,
    ) -> StoreResult<bool> {
        Ok(db
            .opt(
                sql("SELECT id FROM inbound_messages
                     WHERE channel_id = $1 AND provider_message_id = $2")
                .bind(&m.channel_id)
                .bind(&m.provider_message_id),
            )
            .await?
            .is_some())
    }

    /// Ends [`Store::record_inbound_message`](crate::store::Store::record_inbound_message)
    /// once `record_inbound_in` stored `message` in `tx`: queues its `message.received` and
    /// commits.
    pub(crate) async fn inbound_stored(
        &self,
        mut tx: Tx,
        message: InboundMessage,
        reply_to_template_id: Option<String>,
    ) -> StoreResult<InboundRecorded> {
        tx.db()
            .queue_events(
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

    /// [`Store::record_inbound_message`](crate::store::Store::record_inbound_message) in the
    /// caller's transaction, but for the event, which the caller queues: the message stored,
    /// with the template of the message it replies to; `None` (nothing stored) when the
    /// channel has its wamid already.
    pub(crate) async fn record_inbound_in(
        &self,
        db: &mut Db<'_>,
        m: &InboundInsert,
    ) -> StoreResult<Option<(InboundMessage, Option<String>)>> {
        // The sender's number: as given, else the contact that has this user id.
        let phone: Option<String> = match (&m.phone_number, &m.user_id) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(uid)) => db
                .opt(
                    sql(
                        "SELECT phone_number FROM contacts WHERE account_id = $1 AND user_id = $2
                         ORDER BY updated_at DESC LIMIT 1",
                    )
                    .bind(&m.account_id)
                    .bind(uid.as_str()),
                )
                .await?
                .map(|r| r.get("phone_number"))
                .transpose()?,
            (None, None) => None,
        };
        let mut conversation_id = None;
        if let Some(phone) = &phone {
            let greatest = db.pick("max", "GREATEST");
            let open = db.pick(OPEN_SQLITE, OPEN_POSTGRES);
            // Conversation before contact: the order `accept_send` locks them in on PostgreSQL.
            let text = format!(
                "UPDATE conversations SET last_activity_at = {greatest}(last_activity_at, $1)
                 WHERE channel_id = $2 AND phone_number = $3 AND {open}"
            );
            db.run(sql(text).bind(m.sent_at).bind(&m.channel_id).bind(phone))
                .await?;
            let text = format!(
                "INSERT INTO contacts (account_id, phone_number, client_name, last_inbound_at,
                    created_at, updated_at, user_id, username)
                 VALUES ($1, $2, coalesce($3, $2), $4, $4, $4, $5, $6)
                 ON CONFLICT (account_id, phone_number) DO UPDATE SET
                    client_name = coalesce($3, contacts.client_name),
                    last_inbound_at = {greatest}(coalesce(contacts.last_inbound_at, 0), $4),
                    user_id = coalesce($5, contacts.user_id),
                    username = coalesce($6, contacts.username),
                    updated_at = {greatest}(contacts.updated_at, $4)"
            );
            db.run(
                sql(text)
                    .bind(&m.account_id)
                    .bind(phone)
                    .bind(&m.contact_name)
                    .bind(m.sent_at)
                    .bind(&m.user_id)
                    .bind(&m.username),
            )
            .await?;
            conversation_id = db
                .opt(
                    sql(
                        "SELECT id FROM conversations WHERE channel_id = $1 AND phone_number = $2
                         ORDER BY status IN ('pending', 'open') DESC, created_at DESC, id DESC
                         LIMIT 1",
                    )
                    .bind(&m.channel_id)
                    .bind(phone),
                )
                .await?
                .map(|r| r.get::<String>("id"))
                .transpose()?;
        }
        // PostgreSQL finds a wamid's message in `message_wamids` (its migration 0017).
        let by_wamid = db.pick(
            "SELECT id, template_id FROM messages
             WHERE provider_message_id = $1 AND channel_id = $2",
            "SELECT id, template_id FROM messages
             WHERE id = (SELECT message_id FROM message_wamids WHERE wamid = $1)
               AND channel_id = $2",
        );
        let replied = match &m.context_id {
            Some(wamid) => db
                .opt(sql(by_wamid).bind(wamid).bind(&m.channel_id))
                .await?
                .map(|r| StoreResult::Ok((r.get::<String>("id")?, r.get::<String>("template_id")?)))
                .transpose()?,
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
        let content = message.content.to_string();
        let raw = message.raw.to_string();
        let inserted = db
            .run(
                sql(
                    "INSERT INTO inbound_messages (id, account_id, channel_id, conversation_id,
                        provider_message_id, phone_number, user_id, contact_name, type, text,
                        content, raw, context_id, reply_to, sent_at, received_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                        $16)
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
                .bind(&content)
                .bind(&raw)
                .bind(&message.context_id)
                .bind(&message.reply_to)
                .bind(message.sent_at)
                .bind(message.received_at),
            )
            .await?;
        // None inserted: a concurrent copy of the same webhook won (PostgreSQL); it is the
        // one stored and forwarded.
        Ok((inserted == 1).then_some((message, reply_to_template_id)))
    }

    // Template and number health

    /// [`Store::apply_template_health`](crate::store::Store::apply_template_health) for the
    /// `template` read (and, on PostgreSQL, locked) in the caller's transaction: the events
    /// to queue, or `None` when the report repeats what is known.
    pub(crate) async fn apply_template_health_in(
        &self,
        db: &mut Db<'_>,
        template: &Template,
        change: &TemplateHealthChange,
        now: i64,
    ) -> StoreResult<Option<Vec<OutboxEvent>>> {
        let current: TemplateHealth = db
            .opt(
                sql("SELECT health FROM template_health WHERE template_id = $1").bind(&template.id),
            )
            .await?
            .map(|r| r.get::<String>("health"))
            .transpose()?
            .map(|h| serde_json::from_str(&h))
            .transpose()
            .context("template health")?
            .unwrap_or_default();
        let Some(plan) = health::plan_template(template, &current, change, now) else {
            return Ok(None);
        };
        if plan.status != template.status || plan.category != template.category {
            db.run(
                sql(
                    "UPDATE templates SET status = $1, category = $2, updated_at = $3
                     WHERE id = $4",
                )
                .bind(&plan.status)
                .bind(&plan.category)
                .bind(now)
                .bind(&template.id),
            )
            .await?;
        }
        db.run(
            sql(
                "INSERT INTO template_health (template_id, health, updated_at)
                 VALUES ($1, $2, $3)
                 ON CONFLICT (template_id) DO UPDATE SET health = excluded.health,
                    updated_at = excluded.updated_at",
            )
            .bind(&template.id)
            .bind(&serde_json::to_string(&plan.health).context("template health")?)
            .bind(now),
        )
        .await?;
        Ok(Some(plan.events))
    }

    pub(crate) async fn template_healths(
        &self,
        account_id: &str,
    ) -> StoreResult<HashMap<String, TemplateHealth>> {
        self.read()
            .all(
                sql("SELECT h.template_id, h.health FROM template_health h
                     JOIN templates t ON t.id = h.template_id WHERE t.account_id = $1")
                .bind(account_id),
            )
            .await?
            .iter()
            .map(|r| {
                let health: String = r.get("health")?;
                Ok((
                    r.get("template_id")?,
                    serde_json::from_str(&health).context("template health")?,
                ))
            })
            .collect()
    }

    /// [`Store::apply_channel_quality`](crate::store::Store::apply_channel_quality) for the
    /// channel's messaging `limit` read (and, on PostgreSQL, locked) in the caller's
    /// transaction: the event to queue, or `None` when the report repeats what is known.
    pub(crate) async fn apply_channel_quality_in(
        &self,
        db: &mut Db<'_>,
        channel_id: &str,
        limit: Option<i64>,
        change: &ChannelQualityChange,
        now: i64,
    ) -> StoreResult<Option<OutboxEvent>> {
        let current: ChannelQuality = db
            .opt(sql("SELECT quality FROM channel_quality WHERE channel_id = $1").bind(channel_id))
            .await?
            .map(|r| r.get::<String>("quality"))
            .transpose()?
            .map(|q| serde_json::from_str(&q))
            .transpose()
            .context("channel quality")?
            .unwrap_or_default();
        let Some(ChannelPlan {
            quality,
            limit: new_limit,
            event,
        }) = health::plan_channel(channel_id, limit, &current, change, now)
        else {
            return Ok(None);
        };
        if let Some(limit) = new_limit {
            db.run(
                sql("UPDATE channels SET messaging_limit = $1, updated_at = $2 WHERE id = $3")
                    .bind(limit)
                    .bind(now)
                    .bind(channel_id),
            )
            .await?;
        }
        db.run(
            sql(
                "INSERT INTO channel_quality (channel_id, quality, updated_at)
                 VALUES ($1, $2, $3)
                 ON CONFLICT (channel_id) DO UPDATE SET quality = excluded.quality,
                    updated_at = excluded.updated_at",
            )
            .bind(channel_id)
            .bind(&serde_json::to_string(&quality).context("channel quality")?)
            .bind(now),
        )
        .await?;
        Ok(Some(event))
    }

    /// [`Store::apply_template_health`](crate::store::Store::apply_template_health), in one
    /// transaction. On PostgreSQL the template's row is locked first (as by
    /// `set_template_status`): two reports of one template are applied one after the other,
    /// their events queued in that order. SQLite's write transaction excludes every other
    /// writer already.
    pub(crate) async fn apply_template_health(
        &self,
        template_id: &str,
        change: &TemplateHealthChange,
        now: i64,
    ) -> StoreResult<bool> {
        let _changed = self.lookups.writing();
        let mut tx = self.begin().await?;
        let mut db = tx.db();
        let Some(template) = db.template_for_update(template_id).await? else {
            return Ok(false);
        };
        let planned = self.apply_template_health_in(&mut db, &template, change, now);
        let Some(events) = planned.await? else {
            return Ok(false);
        };
        db.queue_events(&self.lookups, &template.account_id, &events)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// [`Store::apply_channel_quality`](crate::store::Store::apply_channel_quality), in one
    /// transaction; on PostgreSQL the channel's row is locked first.
    pub(crate) async fn apply_channel_quality(
        &self,
        channel_id: &str,
        change: &ChannelQualityChange,
        now: i64,
    ) -> StoreResult<bool> {
        let _changed = self.lookups.writing();
        let mut tx = self.begin().await?;
        let mut db = tx.db();
        let lock = db.pick("", " FOR NO KEY UPDATE");
        let text = format!("SELECT account_id, messaging_limit FROM channels WHERE id = $1{lock}");
        let Some(row) = db.opt(sql(text).bind(channel_id)).await? else {
            return Ok(false);
        };
        let account_id: String = row.get("account_id")?;
        let limit: Option<i64> = row.get("messaging_limit")?;
        let planned = self.apply_channel_quality_in(&mut db, channel_id, limit, change, now);
        let Some(event) = planned.await? else {
            return Ok(false);
        };
        db.queue_events(&self.lookups, &account_id, &[event])
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(crate) async fn channel_qualities(&self) -> StoreResult<HashMap<String, ChannelQuality>> {
        self.read()
            .all(sql("SELECT channel_id, quality FROM channel_quality"))
            .await?
            .iter()
            .map(|r| {
                let quality: String = r.get("quality")?;
                Ok((
                    r.get("channel_id")?,
                    serde_json::from_str(&quality).context("channel quality")?,
                ))
            })
            .collect()
    }

    // Opt keywords

    pub(crate) async fn opt_keywords(&self, account_id: &str) -> StoreResult<Option<OptKeywords>> {
        let row = self
            .read()
            .opt(
                sql("SELECT opt_out_keywords, opt_in_keywords FROM accounts WHERE id = $1")
                    .bind(account_id),
            )
            .await?;
        row.map(|r| keywords_from_columns(r.get("opt_out_keywords")?, r.get("opt_in_keywords")?))
            .transpose()
    }

    pub(crate) async fn set_opt_keywords(
        &self,
        account_id: &str,
        opt_out: Option<Option<Vec<String>>>,
        opt_in: Option<Option<Vec<String>>>,
        now: i64,
    ) -> StoreResult<bool> {
        let json = |v: &Option<Vec<String>>| v.as_ref().map(|l| serde_json::json!(l).to_string());
        let out_json = opt_out.as_ref().and_then(json);
        let in_json = opt_in.as_ref().and_then(json);
        let done = self
            .write()
            .run(
                sql("UPDATE accounts SET
                        opt_out_keywords = CASE WHEN $1 THEN $2 ELSE opt_out_keywords END,
                        opt_in_keywords = CASE WHEN $3 THEN $4 ELSE opt_in_keywords END,
                        updated_at = $5
                     WHERE id = $6")
                .bind(opt_out.is_some())
                .bind(&out_json)
                .bind(opt_in.is_some())
                .bind(&in_json)
                .bind(now)
                .bind(account_id),
            )
            .await?;
        Ok(done == 1)
    }

    // Kept (early) statuses and housekeeping

    /// Keeps a status whose message is not known (yet), once per (wamid, status); how many
    /// rows it stored (0 for a replay).
    pub(crate) async fn store_pending_status(
        &self,
        u: &StatusUpdate,
        now: i64,
    ) -> StoreResult<u64> {
        let error = u.error.as_ref();
        let pricing = u.pricing.as_ref();
        self.write()
            .run(
                sql(
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
                .bind(error.map(|e| e.code))
                .bind(error.map(|e| e.title.as_str()))
                .bind(error.and_then(|e| e.details.as_deref()))
                .bind(&u.pricing_category)
                .bind(now)
                .bind(pricing.and_then(|p| p.pricing_type.as_deref()))
                .bind(pricing.and_then(|p| p.pricing_model.as_deref()))
                .bind(pricing.and_then(|p| p.billable)),
            )
            .await
    }

    /// Takes back the statuses kept for `u`'s message (by its wamid or our id) if the message
    /// is known now: the second half of keeping a status, run after the keep committed.
    ///
    /// A status is kept because its lookup found no message; the send's response may record
    /// the wamid after that lookup, and take the message's kept statuses, before the keep
    /// commits: nothing would take the kept status then. So the two sides each write, commit,
    /// then read what the other writes: the keep commits, then this looks for the message;
    /// the outcome commits the wamid, then takes the kept statuses (PostgreSQL's outcome
    /// writer after its commit, SQLite's `finish_and_take_kept` after `finish_attempt`). Of
    /// two such reads, the later sees the other's write, since each side's write committed
    /// before its own read began; so every kept status is taken by one of them, and the
    /// `DELETE … RETURNING` gives each to only one.
    pub(crate) async fn take_known_pending(
        &self,
        u: &StatusUpdate,
    ) -> StoreResult<Vec<StatusUpdate>> {
        let mut db = self.write();
        // PostgreSQL finds a wamid's message in `message_wamids` (its migration 0017).
        let text = db.pick(
            "DELETE FROM pending_statuses
             WHERE (provider_message_id = $1
                    AND EXISTS (SELECT 1 FROM messages WHERE provider_message_id = $1))
                OR (message_id = $2 AND EXISTS (SELECT 1 FROM messages WHERE id = $2))
             RETURNING *",
            "DELETE FROM pending_statuses
             WHERE (provider_message_id = $1
                    AND EXISTS (SELECT 1 FROM message_wamids WHERE wamid = $1))
                OR (message_id = $2 AND EXISTS (SELECT 1 FROM messages WHERE id = $2))
             RETURNING *",
        );
        let rows = db
            .all(sql(text).bind(&u.provider_message_id).bind(&u.message_id))
            .await?;
        pending_in_order(&rows)
    }

    pub(crate) async fn expire_pending_statuses(&self, received_before: i64) -> StoreResult<u64> {
        self.write()
            .run(sql("DELETE FROM pending_statuses WHERE received_at < $1").bind(received_before))
            .await
    }

    pub(crate) async fn pending_status_count(&self) -> StoreResult<i64> {
        self.read()
            .one(sql("SELECT count(*) AS n FROM pending_statuses"))
            .await?
            .get("n")
    }

    pub(crate) async fn sandbox_in_flight(&self, limit: i64) -> StoreResult<Vec<SimulatedMessage>> {
        self.read()
            .all(sql(sandbox_in_flight_sql("$1")).bind(limit))
            .await?
            .iter()
            .map(|r| {
                let row: SimulatedRow = (
                    r.get("id")?,
                    r.get("channel_id")?,
                    r.get("provider_message_id")?,
                    r.get("phone_number")?,
                    r.get("status")?,
                    r.get("updated_at")?,
                );
                SimulatedMessage::from_row(row)
            })
            .collect()
    }

    pub(crate) async fn delete_expired_idempotency_keys(&self, now: i64) -> StoreResult<u64> {
        self.write()
            .run(sql("DELETE FROM idempotency_keys WHERE expires_at <= $1").bind(now))
            .await
    }
}
