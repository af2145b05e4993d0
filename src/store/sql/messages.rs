//! Conversations, messages and batches: what is read and listed, and the writes that are plain statements.
//!
//! The row mappings are associated functions of the types they build (`Message::from_row`,
//! `Conversation::from_row`, …): the backends' own statements (accept, claim, finish, status,
//! cancel) read their rows with them too.

use std::fmt::Write as _;

use anyhow::Context;

use super::{Arg, Cols, Db, Mapped, Shared, Sql, sql};
use crate::domain::status::CloseReason;
use crate::store::{
    AttemptRecord, Batch, BatchReport, ChannelQueue, Conversation, ConversationFilter,
    InboundMessage, Message, MessageFilter, NewRecipients, OutboxEvent, PricedMessage, Pricing,
    ProviderError, StoreResult, conversation_event,
};

impl ProviderError {
    /// The error of a message, attempt or kept status row (`error_code`, `error_title`,
    /// `error_details`): `None` without a code.
    pub(crate) fn from_row(r: &impl Cols) -> StoreResult<Option<Self>> {
        Ok(match r.get::<Option<i64>>("error_code")? {
            Some(code) => Some(ProviderError {
                code,
                title: r.get::<Option<String>>("error_title")?.unwrap_or_default(),
                details: r.get("error_details")?,
            }),
            None => None,
        })
    }
}

impl Pricing {
    /// The `pricing` of a message or kept status row: `None` when no status carried one
    /// (only `pricing_category` may be set then, by an older status).
    pub(crate) fn from_row(r: &impl Cols) -> StoreResult<Option<Self>> {
        let pricing_type: Option<String> = r.get("pricing_type")?;
        let pricing_model: Option<String> = r.get("pricing_model")?;
        let billable: Option<bool> = r.get("pricing_billable")?;
        if pricing_type.is_none() && pricing_model.is_none() && billable.is_none() {
            return Ok(None);
        }
        Ok(Some(Pricing {
            pricing_type,
            category: r.get("pricing_category")?,
            pricing_model,
            billable,
        }))
    }
}

impl Message {
    /// A `messages` row (`SELECT *`, possibly with more columns).
    pub(crate) fn from_row(r: &impl Cols) -> StoreResult<Self> {
        let status: String = r.get("status")?;
        let params: String = r.get("params")?;
        Ok(Message {
            id: r.get("id")?,
            account_id: r.get("account_id")?,
            channel_id: r.get("channel_id")?,
            conversation_id: r.get("conversation_id")?,
            template_id: r.get("template_id")?,
            phone_number: r.get("phone_number")?,
            params: serde_json::from_str(&params).context("message params")?,
            status: status.parse().map_err(anyhow::Error::msg)?,
            provider_message_id: r.get("provider_message_id")?,
            wa_id: r.get("wa_id")?,
            attempts: r.get("attempts")?,
            error: ProviderError::from_row(r)?,
            queued_at: r.get("queued_at")?,
            sending_at: r.get("sending_at")?,
            sent_at: r.get("sent_at")?,
            delivered_at: r.get("delivered_at")?,
            read_at: r.get("read_at")?,
            failed_at: r.get("failed_at")?,
            pricing_category: r.get("pricing_category")?,
            pricing: Pricing::from_row(r)?,
            batch_id: r.get("batch_id")?,
            callback_url: r.get("callback_url")?,
            metadata: r
                .get::<Option<String>>("metadata")?
                .map(|m| serde_json::from_str(&m))
                .transpose()
                .context("message metadata")?,
            updated_at: r.get("updated_at")?,
            scheduled_for: r.get("scheduled_for")?,
            held_until: r.get("held_until")?,
            held_reason: r.get("held_reason")?,
            cancelled_at: r.get("cancelled_at")?,
        })
    }
}

impl Conversation {
    /// A conversation with its group's name and its contact's user id; `WHERE …` follows.
    pub(crate) const SELECT: &'static str = "SELECT c.*, g.name AS group_name, ct.user_id AS contact_user_id \
         FROM conversations c LEFT JOIN groups g ON g.id = c.group_id \
         LEFT JOIN contacts ct ON ct.account_id = c.account_id AND ct.phone_number = c.phone_number";

    /// A row of [`Conversation::SELECT`].
    pub(crate) fn from_row(r: &impl Cols) -> StoreResult<Self> {
        let status: String = r.get("status")?;
        Ok(Conversation {
            id: r.get("id")?,
            account_id: r.get("account_id")?,
            channel_id: r.get("channel_id")?,
            phone_number: r.get("phone_number")?,
            status: status.parse().map_err(anyhow::Error::msg)?,
            assignee: r.get("assignee")?,
            group_id: r.get("group_id")?,
            group_name: r.get("group_name")?,
            client_name: r.get("client_name")?,
            first_message_id: r.get("first_message_id")?,
            close_reason: r.get("close_reason")?,
            created_at: r.get("created_at")?,
            opened_at: r.get("opened_at")?,
            closed_at: r.get("closed_at")?,
            last_activity_at: r.get("last_activity_at")?,
            user_id: r.get("contact_user_id")?,
        })
    }
}

impl InboundMessage {
    /// An `inbound_messages` row.
    pub(crate) fn from_row(r: &impl Cols) -> StoreResult<Self> {
        let json = |column: &str| -> StoreResult<serde_json::Value> {
            let text: String = r.get(column)?;
            Ok(serde_json::from_str(&text).context("inbound message JSON")?)
        };
        Ok(InboundMessage {
            id: r.get("id")?,
            account_id: r.get("account_id")?,
            channel_id: r.get("channel_id")?,
            conversation_id: r.get("conversation_id")?,
            provider_message_id: r.get("provider_message_id")?,
            phone_number: r.get("phone_number")?,
            user_id: r.get("user_id")?,
            contact_name: r.get("contact_name")?,
            kind: r.get("type")?,
            text: r.get("text")?,
            content: json("content")?,
            raw: json("raw")?,
            context_id: r.get("context_id")?,
            reply_to: r.get("reply_to")?,
            sent_at: r.get("sent_at")?,
            received_at: r.get("received_at")?,
        })
    }
}

impl Batch {
    /// A `batches` row (`paused` is an integer column on both databases).
    pub(crate) fn from_row(r: &impl Cols) -> StoreResult<Self> {
        Ok(Batch {
            id: r.get("id")?,
            account_id: r.get("account_id")?,
            channel_id: r.get("channel_id")?,
            total: r.get("total")?,
            accepted: r.get("accepted")?,
            rejected: r.get("rejected")?,
            created_at: r.get("created_at")?,
            paused: r.get::<i32>("paused")? != 0,
        })
    }
}

impl AttemptRecord {
    /// A `delivery_attempts` row.
    pub(crate) fn from_row(r: &impl Cols) -> StoreResult<Self> {
        Ok(AttemptRecord {
            attempt: r.get("attempt")?,
            finished_at: r.get("finished_at")?,
            outcome: r.get("outcome")?,
            error: ProviderError::from_row(r)?,
        })
    }
}

/// A statement whose `WHERE` names only the filters given (a plan for `$n IS NULL OR …`
/// cannot use the filters' indexes on PostgreSQL).
struct Filtered<'a> {
    text: String,
    args: Vec<Arg<'a>>,
}

impl<'a> Filtered<'a> {
    fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            args: Vec::new(),
        }
    }

    /// `arg`'s placeholder.
    fn arg(&mut self, arg: impl Into<Arg<'a>>) -> String {
        self.args.push(arg.into());
        format!("${}", self.args.len())
    }

    /// Appends `text`.
    fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }

    /// ` AND column = value` when `value` is given.
    fn equal(&mut self, column: &str, value: &'a Option<String>) {
        if let Some(value) = value {
            let p = self.arg(value);
            let _ = write!(self.text, " AND {column} = {p}");
        }
    }

    /// The keyset cursor: rows past `(time, id)` in the listing's order (`past` is `<` or
    /// `>`).
    fn after(
        &mut self,
        time_col: &str,
        id_col: &str,
        past: &str,
        after: &'a Option<(i64, String)>,
    ) {
        if let Some((time, id)) = after {
            let t1 = self.arg(*time);
            let t2 = self.arg(*time);
            let i = self.arg(id);
            let _ = write!(
                self.text,
                " AND ({time_col} {past} {t1} OR ({time_col} = {t2} AND {id_col} {past} {i}))"
            );
        }
    }

    fn into_sql(self) -> Sql<'a> {
        self.args.into_iter().fold(sql(self.text), Sql::bind)
    }
}

/// `(past, order)` of a listing: newest first or oldest first.
fn direction(newest_first: bool) -> (&'static str, &'static str) {
    if newest_first {
        ("<", "DESC")
    } else {
        (">", "ASC")
    }
}

impl Shared {
    /// A trivial round trip, and whether migration `latest` (the backend's last) is applied.
    pub(crate) async fn ping(&self, latest: i64) -> StoreResult<bool> {
        self.read().run(sql("SELECT 1")).await?;
        let applied = self
            .read()
            .one(sql("SELECT COUNT(*) AS n FROM schema_migrations WHERE version = $1").bind(latest))
            .await
            .and_then(|r| r.get::<i64>("n"));
        Ok(matches!(applied, Ok(n) if n > 0))
    }

    pub(crate) async fn queues(&self) -> StoreResult<Vec<ChannelQueue>> {
        let mut db = self.read();
        let now = db.pick(
            "CAST(strftime('%s', 'now') AS INTEGER) * 1000",
            "CAST(extract(epoch FROM now()) * 1000 AS BIGINT)",
        );
        // Scheduled and held messages not due yet, and paused batches' messages, wait by
        // design: they are not a backlog. A due one counts from its time.
        let text = format!(
            "SELECT j.channel_id, COUNT(*) AS depth,
                    MIN(coalesce(m.held_until, m.scheduled_for, m.queued_at)) AS oldest
             FROM delivery_jobs j JOIN messages m ON m.id = j.message_id
             WHERE j.paused = 0 AND j.run_at <= {now} + 1000
                OR (m.status <> 'scheduled' AND m.held_until IS NULL AND j.paused = 0)
             GROUP BY j.channel_id ORDER BY j.channel_id"
        );
        db.all(sql(text))
            .await?
            .iter()
            .map(|r| {
                Ok(ChannelQueue {
                    channel_id: r.get("channel_id")?,
                    depth: r.get("depth")?,
                    oldest_queued_at: r.get("oldest")?,
                })
            })
            .collect()
    }

    pub(crate) async fn message_counts(&self) -> StoreResult<Vec<(String, i64)>> {
        self.read()
            .all(sql(
                "SELECT status, COUNT(*) AS n FROM messages GROUP BY status ORDER BY status",
            ))
            .await?
            .mapped(|r| Ok((r.get("status")?, r.get("n")?)))
    }

    pub(crate) async fn conversation(&self, id: &str) -> StoreResult<Option<Conversation>> {
        let text = format!("{} WHERE c.id = $1", Conversation::SELECT);
        self.read()
            .opt(sql(text).bind(id))
            .await?
            .mapped(Conversation::from_row)
    }

    /// Closes a conversation unless it is closed already, in the caller's transaction: the
    /// conversation as it is now, and the event to queue when this call closed it. The
    /// backends queue the event in the same transaction.
    pub(crate) async fn close_conversation_in(
        db: &mut Db<'_>,
        id: &str,
        reason: CloseReason,
        now: i64,
    ) -> StoreResult<(Option<Conversation>, Option<OutboxEvent>)> {
        let closed = db
            .run(
                sql(
                    "UPDATE conversations SET status = 'closed', closed_at = $1, close_reason = $2
                     WHERE id = $3 AND status != 'closed'",
                )
                .bind(now)
                .bind(reason.as_str())
                .bind(id),
            )
            .await?;
        let text = format!("{} WHERE c.id = $1", Conversation::SELECT);
        let conversation = db
            .opt(sql(text).bind(id))
            .await?
            .mapped(Conversation::from_row)?;
        let event = match &conversation {
            Some(c) if closed == 1 => conversation_event(
                &c.id,
                &c.channel_id,
                &c.phone_number,
                c.status,
                c.close_reason.as_deref(),
                None,
                now,
            ),
            _ => None,
        };
        Ok((conversation, event))
    }

    pub(crate) async fn message(&self, id: &str) -> StoreResult<Option<Message>> {
        self.read()
            .opt(sql("SELECT * FROM messages WHERE id = $1").bind(id))
            .await?
            .mapped(Message::from_row)
    }

    pub(crate) async fn message_attempts(
        &self,
        message_id: &str,
    ) -> StoreResult<Vec<AttemptRecord>> {
        self.read()
            .all(
                sql("SELECT * FROM delivery_attempts WHERE message_id = $1 ORDER BY id")
                    .bind(message_id),
            )
            .await?
            .mapped(AttemptRecord::from_row)
    }

    pub(crate) async fn conversation_inbound(
        &self,
        conversation_id: &str,
        after: Option<(i64, String)>,
        limit: u32,
    ) -> StoreResult<Vec<InboundMessage>> {
        let (after_time, after_id) = after.unzip();
        let mut db = self.read();
        // PostgreSQL cannot tell the type of a parameter first met in `IS NULL`.
        let time = db.pick("$2", "$2::BIGINT");
        let text = format!(
            "SELECT * FROM inbound_messages WHERE conversation_id = $1
               AND ({time} IS NULL OR received_at > $2 OR (received_at = $2 AND id > $3))
             ORDER BY received_at, id LIMIT $4"
        );
        db.all(
            sql(text)
                .bind(conversation_id)
                .bind(after_time)
                .bind(&after_id)
                .bind(limit),
        )
        .await?
        .mapped(InboundMessage::from_row)
    }

    pub(crate) async fn link_message_user_id(
        &self,
        message_id: &str,
        user_id: &str,
        now: i64,
    ) -> StoreResult<()> {
        let mut db = self.write();
        // The same update in each engine's words (SQLite's `IS NOT` is `IS DISTINCT FROM`).
        let text = db.pick(
            "UPDATE contacts SET user_id = $1, updated_at = $2
             WHERE (account_id, phone_number) =
                   (SELECT account_id, phone_number FROM messages WHERE id = $3)
               AND user_id IS NOT $1",
            "UPDATE contacts c SET user_id = $1, updated_at = $2 FROM messages m
             WHERE m.id = $3 AND c.account_id = m.account_id AND c.phone_number = m.phone_number
               AND c.user_id IS DISTINCT FROM $1",
        );
        db.run(sql(text).bind(user_id).bind(now).bind(message_id))
            .await?;
        Ok(())
    }

    pub(crate) async fn insert_batch(&self, b: &Batch) -> StoreResult<()> {
        self.write()
            .run(
                sql(
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
                .bind(b.created_at),
            )
            .await?;
        Ok(())
    }

    pub(crate) async fn batch(&self, id: &str) -> StoreResult<Option<Batch>> {
        self.read()
            .opt(sql("SELECT * FROM batches WHERE id = $1").bind(id))
            .await?
            .mapped(Batch::from_row)
    }

    pub(crate) async fn batch_counts(&self, id: &str) -> StoreResult<Vec<(String, i64)>> {
        self.read()
            .all(
                sql(
                    "SELECT status, count(*) AS n FROM messages WHERE batch_id = $1
                     GROUP BY status ORDER BY status",
                )
                .bind(id),
            )
            .await?
            .mapped(|r| Ok((r.get("status")?, r.get("n")?)))
    }

    pub(crate) async fn list_messages(
        &self,
        account_id: &str,
        f: &MessageFilter,
    ) -> StoreResult<Vec<Message>> {
        let mut db = self.read();
        // On SQLite a number's messages are found through its conversations (a message's
        // number is its conversation's): it has no index of `messages` by number, whose
        // entry for each new message went to a random page that every group commit wrote to
        // the WAL. Its planner, without statistics, would rather walk the account's messages
        // in time order, so it is told which index to read. PostgreSQL keeps its index.
        let by_conversations = f.phone_number.is_some() && !db.is_postgres();
        let mut q = Filtered::new(if by_conversations {
            "SELECT * FROM messages INDEXED BY messages_conversation WHERE account_id = "
        } else {
            "SELECT * FROM messages WHERE account_id = "
        });
        let account = q.arg(account_id);
        q.push(&account);
        q.equal("channel_id", &f.channel_id);
        q.equal("status", &f.status);
        q.equal("phone_number", &f.phone_number);
        if by_conversations && let Some(phone) = &f.phone_number {
            let p = q.arg(phone);
            let _ = write!(
                q.text,
                " AND conversation_id IN
                    (SELECT id FROM conversations WHERE account_id = {account} AND phone_number = {p})"
            );
        }
        q.equal("batch_id", &f.batch_id);
        q.equal("template_id", &f.template_id);
        q.equal("conversation_id", &f.conversation_id);
        if let Some(from) = f.from {
            let p = q.arg(from);
            q.push(&format!(" AND queued_at >= {p}"));
        }
        if let Some(to) = f.to {
            let p = q.arg(to);
            q.push(&format!(" AND queued_at < {p}"));
        }
        let (past, order) = direction(f.newest_first);
        q.after("queued_at", "id", past, &f.after);
        let p = q.arg(f.limit);
        q.push(&format!(
            " ORDER BY queued_at {order}, id {order} LIMIT {p}"
        ));
        db.all(q.into_sql()).await?.mapped(Message::from_row)
    }

    pub(crate) async fn list_conversations(
        &self,
        account_id: &str,
        f: &ConversationFilter,
    ) -> StoreResult<Vec<Conversation>> {
        let mut q = Filtered::new(Conversation::SELECT);
        let p = q.arg(account_id);
        q.push(&format!(" WHERE c.account_id = {p}"));
        q.equal("c.channel_id", &f.channel_id);
        q.equal("c.status", &f.status);
        q.equal("c.phone_number", &f.phone_number);
        let (past, order) = direction(f.newest_first);
        q.after("c.created_at", "c.id", past, &f.after);
        let p = q.arg(f.limit);
        q.push(&format!(
            " ORDER BY c.created_at {order}, c.id {order} LIMIT {p}"
        ));
        self.read()
            .all(q.into_sql())
            .await?
            .mapped(Conversation::from_row)
    }

    pub(crate) async fn next_attempt_at(&self, message_id: &str) -> StoreResult<Option<i64>> {
        self.read()
            .opt(sql("SELECT run_at FROM delivery_jobs WHERE message_id = $1").bind(message_id))
            .await?
            .map(|r| r.get("run_at"))
            .transpose()
    }

    pub(crate) async fn set_batch_paused(&self, batch_id: &str, paused: bool) -> StoreResult<bool> {
        let paused = i32::from(paused);
        let mut tx = self.begin().await?;
        let found = tx
            .db()
            .run(
                sql("UPDATE batches SET paused = $1 WHERE id = $2")
                    .bind(paused)
                    .bind(batch_id),
            )
            .await?
            > 0;
        tx.db()
            .run(
                sql("UPDATE delivery_jobs SET paused = $1
                     WHERE message_id IN (SELECT id FROM messages WHERE batch_id = $2)")
                .bind(paused)
                .bind(batch_id),
            )
            .await?;
        tx.commit().await?;
        Ok(found)
    }

    pub(crate) async fn new_recipients(
        &self,
        channel_id: &str,
        since: i64,
    ) -> StoreResult<NewRecipients> {
        let mut db = self.read();
        // The conversations started on the channel since `since`: their first messages'
        // `sending_at`. PostgreSQL keeps them in `recipient_starts` (written by the claim),
        // so that `sending_at` is in no index of `messages` and the claim's update is HOT.
        let text = db.pick(
            "SELECT count(DISTINCT m.phone_number) AS n, min(m.sending_at) AS oldest
             FROM messages m JOIN conversations c ON c.first_message_id = m.id
             WHERE m.channel_id = $1 AND m.sending_at >= $2",
            "SELECT count(DISTINCT phone_number) AS n, min(started_at) AS oldest
             FROM recipient_starts WHERE channel_id = $1 AND started_at >= $2",
        );
        let r = db.one(sql(text).bind(channel_id).bind(since)).await?;
        Ok(NewRecipients {
            count: r.get("n")?,
            oldest: r.get("oldest")?,
        })
    }

    /// Deletes PostgreSQL's conversation starts older than `before` (the messaging limit
    /// reads the last 24 hours of them); SQLite reads `messages` and keeps no such rows.
    pub(crate) async fn forget_recipient_starts(&self, before: i64) -> StoreResult<u64> {
        let mut db = self.write();
        if !db.is_postgres() {
            return Ok(0);
        }
        db.run(sql("DELETE FROM recipient_starts WHERE started_at < $1").bind(before))
            .await
    }

    pub(crate) async fn set_quiet_hours(
        &self,
        account_id: &str,
        window: Option<(i64, i64)>,
        now: i64,
    ) -> StoreResult<bool> {
        let _changed = self.lookups.writing();
        let (start, end) = window.unzip();
        let done = self
            .write()
            .run(
                sql(
                    "UPDATE accounts SET quiet_start = $1, quiet_end = $2, updated_at = $3
                     WHERE id = $4",
                )
                .bind(start)
                .bind(end)
                .bind(now)
                .bind(account_id),
            )
            .await?;
        Ok(done > 0)
    }

    pub(crate) async fn set_messaging_limit(
        &self,
        channel_id: &str,
        limit: Option<i64>,
        now: i64,
    ) -> StoreResult<bool> {
        let _changed = self.lookups.writing();
        let done = self
            .write()
            .run(
                sql("UPDATE channels SET messaging_limit = $1, updated_at = $2 WHERE id = $3")
                    .bind(limit)
                    .bind(now)
                    .bind(channel_id),
            )
            .await?;
        Ok(done > 0)
    }

    pub(crate) async fn batch_report(&self, batch_id: &str) -> StoreResult<BatchReport> {
        let by_error_code = self
            .read()
            .all(
                sql("SELECT error_code, count(*) AS n FROM messages
                     WHERE batch_id = $1 AND status = 'failed' AND error_code IS NOT NULL
                     GROUP BY error_code ORDER BY error_code")
                .bind(batch_id),
            )
            .await?
            .iter()
            .map(|r| Ok((r.get("error_code")?, r.get("n")?)))
            .collect::<StoreResult<_>>()?;
        let by_template = self
            .read()
            .all(
                sql(
                    "SELECT template_id, status, count(*) AS n FROM messages WHERE batch_id = $1
                     GROUP BY template_id, status ORDER BY template_id, status",
                )
                .bind(batch_id),
            )
            .await?
            .iter()
            .map(|r| Ok((r.get("template_id")?, r.get("status")?, r.get("n")?)))
            .collect::<StoreResult<_>>()?;
        let held = self
            .read()
            .all(
                sql("SELECT held_reason, count(*) AS n FROM messages
                     WHERE batch_id = $1 AND held_reason IS NOT NULL AND status = 'queued'
                     GROUP BY held_reason ORDER BY held_reason")
                .bind(batch_id),
            )
            .await?
            .iter()
            .map(|r| Ok((r.get("held_reason")?, r.get("n")?)))
            .collect::<StoreResult<_>>()?;
        let last_due = self
            .read()
            .one(
                sql("SELECT max(j.run_at) AS last_due
                     FROM delivery_jobs j JOIN messages m ON m.id = j.message_id
                     WHERE m.batch_id = $1")
                .bind(batch_id),
            )
            .await?
            .get("last_due")?;
        Ok(BatchReport {
            by_error_code,
            by_template,
            held,
            last_due,
        })
    }

    pub(crate) async fn priced_messages(
        &self,
        account_id: &str,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<PricedMessage>> {
        self.read()
            .all(
                sql("SELECT * FROM (
                        SELECT coalesce(sent_at, delivered_at, read_at) AS at, template_id,
                            channel_id, phone_number, pricing_type, pricing_category,
                            pricing_model, pricing_billable
                        FROM messages
                        WHERE account_id = $1 AND pricing_category IS NOT NULL
                          AND queued_at < $3) priced
                     WHERE at >= $2 AND at < $3 ORDER BY at")
                .bind(account_id)
                .bind(from)
                .bind(to),
            )
            .await?
            .iter()
            .map(|r| {
                Ok(PricedMessage {
                    at: r.get("at")?,
                    template_id: r.get("template_id")?,
                    channel_id: r.get("channel_id")?,
                    phone_number: r.get("phone_number")?,
                    pricing: Pricing::from_row(r)?.unwrap_or_else(|| Pricing {
                        category: r.get("pricing_category").ok().flatten(),
                        ..Pricing::default()
                    }),
                })
            })
            .collect()
    }
}
