//! Groups, templates, API keys and what the console reads.

use anyhow::Context;

use super::accounts::account_from_row;
use super::{Cols, Db, Mapped, Row, Shared, sql};
use crate::store::console::{ConsoleSession, Funnel};
use crate::store::{
    Account, ApiKey, Batch, CallbackDelivery, Group, StoreResult, Template, TemplateFilter,
    template_event,
};

impl Template {
    /// A `templates` row (the backends' own statements read templates with it too).
    pub(crate) fn from_row(r: &impl Cols) -> StoreResult<Template> {
        let header: Option<String> = r.get("header")?;
        let buttons: String = r.get("buttons")?;
        Ok(Template {
            id: r.get("id")?,
            account_id: r.get("account_id")?,
            name: r.get("name")?,
            language: r.get("language")?,
            category: r.get("category")?,
            status: r.get("status")?,
            app_id: r.get("app_id")?,
            message: r.get("message")?,
            header: header
                .map(|h| serde_json::from_str(&h))
                .transpose()
                .context("template header")?,
            footer: r.get("footer")?,
            buttons: serde_json::from_str(&buttons).context("template buttons")?,
            extra: serde_json::from_str(&r.get::<String>("extra")?).context("template extra")?,
            group_name: r.get("group_name")?,
            active: r.flag("active")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
        })
    }
}

fn api_key_from_row(r: &impl Cols) -> StoreResult<ApiKey> {
    Ok(ApiKey {
        id: r.get("id")?,
        account_id: r.get("account_id")?,
        name: r.get("name")?,
        created_at: r.get("created_at")?,
    })
}

fn session_from_row(r: &impl Cols) -> StoreResult<ConsoleSession> {
    Ok(ConsoleSession {
        token_hash: r.get("token_hash")?,
        account_id: r.get("account_id")?,
        key_hash: r.get("key_hash")?,
        csrf_token: r.get("csrf_token")?,
        created_at: r.get("created_at")?,
        expires_at: r.get("expires_at")?,
    })
}

impl Db<'_> {
    /// The template `id`, its row locked until the transaction ends on PostgreSQL (SQLite's
    /// write transaction excludes every other writer already): changes of one template are
    /// applied one after the other.
    pub(crate) async fn template_for_update(&mut self, id: &str) -> StoreResult<Option<Template>> {
        let lock = self.pick("", " FOR NO KEY UPDATE");
        self.opt(sql(format!("SELECT * FROM templates WHERE id = $1{lock}")).bind(id))
            .await?
            .mapped(Template::from_row)
    }
}

impl Shared {
    pub(crate) async fn insert_group(&self, g: &Group) -> StoreResult<()> {
        let _changed = self.lookups.writing();
        let mut tx = self.begin().await?;
        tx.db()
            .run(
                sql(
                    "INSERT INTO groups (id, account_id, name, created_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(&g.id)
                .bind(&g.account_id)
                .bind(&g.name)
                .bind(g.created_at),
            )
            .await?;
        for channel_id in &g.channel_ids {
            tx.db()
                .run(
                    sql("INSERT INTO channel_groups (channel_id, group_id) VALUES ($1, $2)")
                        .bind(channel_id)
                        .bind(&g.id),
                )
                .await?;
        }
        tx.commit().await
    }

    /// The group a `groups` row is, with its channels.
    async fn group_with_channels(&self, row: Option<Row>) -> StoreResult<Option<Group>> {
        let Some(r) = row else { return Ok(None) };
        let id: String = r.get("id")?;
        let channel_ids = self
            .read()
            .all(
                sql("SELECT channel_id FROM channel_groups WHERE group_id = $1 ORDER BY seq")
                    .bind(&id),
            )
            .await?
            .iter()
            .map(|c| c.get("channel_id"))
            .collect::<StoreResult<_>>()?;
        Ok(Some(Group {
            id,
            account_id: r.get("account_id")?,
            name: r.get("name")?,
            channel_ids,
            created_at: r.get("created_at")?,
        }))
    }

    pub(crate) async fn group_by_name(
        &self,
        account_id: &str,
        name: &str,
    ) -> StoreResult<Option<Group>> {
        let row = self
            .read()
            .opt(
                sql("SELECT * FROM groups WHERE account_id = $1 AND name = $2")
                    .bind(account_id)
                    .bind(name),
            )
            .await?;
        self.group_with_channels(row).await
    }

    pub(crate) async fn default_group(&self, channel_id: &str) -> StoreResult<Option<Group>> {
        self.lookups
            .default_group
            .get_or(&self.lookups, channel_id, async {
                let row = self
                    .read()
                    .opt(
                        sql(
                            "SELECT g.* FROM channel_groups cg JOIN groups g ON g.id = cg.group_id
                             WHERE cg.channel_id = $1 ORDER BY cg.seq LIMIT 1",
                        )
                        .bind(channel_id),
                    )
                    .await?;
                self.group_with_channels(row).await
            })
            .await
    }

    pub(crate) async fn insert_template(&self, t: &Template) -> StoreResult<()> {
        let _changed = self.lookups.writing();
        let header = t.header.as_ref().map(|h| h.to_string());
        let (buttons, extra) = (t.buttons.to_string(), t.extra.to_string());
        self.write()
            .run(
                sql(
                    "INSERT INTO templates (id, account_id, name, language, category, status,
                        app_id, message, header, footer, buttons, group_name, active, created_at,
                        updated_at, extra)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                        $16)",
                )
                .bind(&t.id)
                .bind(&t.account_id)
                .bind(&t.name)
                .bind(&t.language)
                .bind(&t.category)
                .bind(&t.status)
                .bind(&t.app_id)
                .bind(&t.message)
                .bind(&header)
                .bind(&t.footer)
                .bind(&buttons)
                .bind(&t.group_name)
                .bind(t.active)
                .bind(t.created_at)
                .bind(t.updated_at)
                .bind(&extra),
            )
            .await?;
        Ok(())
    }

    pub(crate) async fn update_template(&self, t: &Template) -> StoreResult<()> {
        let _changed = self.lookups.writing();
        let header = t.header.as_ref().map(|h| h.to_string());
        let (buttons, extra) = (t.buttons.to_string(), t.extra.to_string());
        self.write()
            .run(
                sql(
                    "UPDATE templates SET name = $1, language = $2, category = $3, status = $4,
                        app_id = $5, message = $6, header = $7, footer = $8, buttons = $9,
                        group_name = $10, active = $11, updated_at = $12, extra = $13
                     WHERE id = $14",
                )
                .bind(&t.name)
                .bind(&t.language)
                .bind(&t.category)
                .bind(&t.status)
                .bind(&t.app_id)
                .bind(&t.message)
                .bind(&header)
                .bind(&t.footer)
                .bind(&buttons)
                .bind(&t.group_name)
                .bind(t.active)
                .bind(t.updated_at)
                .bind(&extra)
                .bind(&t.id),
            )
            .await?;
        Ok(())
    }

    /// [`Store::set_template_status`](crate::store::Store::set_template_status), in one
    /// transaction. On PostgreSQL the template's row alone is locked first: two status
    /// updates of it are applied one after the other, so their events are queued in the order
    /// they happened. SQLite's write transaction excludes every other writer already.
    pub(crate) async fn set_template_status(
        &self,
        id: &str,
        status: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let _changed = self.lookups.writing();
        let mut tx = self.begin().await?;
        let mut db = tx.db();
        let Some(mut template) = db.template_for_update(id).await? else {
            return Ok(false);
        };
        if template.status == status {
            return Ok(false);
        }
        db.run(
            sql("UPDATE templates SET status = $1, updated_at = $2 WHERE id = $3")
                .bind(status)
                .bind(now)
                .bind(id),
        )
        .await?;
        let previous = std::mem::replace(&mut template.status, status.to_string());
        let event = template_event(&template, &previous, now);
        db.queue_events(&self.lookups, &template.account_id, &[event])
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(crate) async fn template(&self, id: &str) -> StoreResult<Option<Template>> {
        self.read()
            .opt(sql("SELECT * FROM templates WHERE id = $1").bind(id))
            .await?
            .mapped(Template::from_row)
    }

    pub(crate) async fn account_template(
        &self,
        account_id: &str,
        id: &str,
    ) -> StoreResult<Option<Template>> {
        self.lookups
            .account_template
            .get_or(&self.lookups, &format!("{account_id}\n{id}"), async {
                self.read()
                    .opt(
                        sql("SELECT * FROM templates WHERE id = $1 AND account_id = $2")
                            .bind(id)
                            .bind(account_id),
                    )
                    .await?
                    .mapped(Template::from_row)
            })
            .await
    }

    pub(crate) async fn template_by_app_id(
        &self,
        account_id: &str,
        app_id: &str,
    ) -> StoreResult<Option<Template>> {
        let mut db = self.read();
        // SQLite answers the first by its index on (account_id, created_at), in insertion
        // order among equal times; PostgreSQL says so (ids are time-ordered).
        let order = db.pick("", "ORDER BY created_at, id COLLATE \"C\"");
        let text = format!(
            "SELECT * FROM templates WHERE account_id = $1 AND app_id = $2 {order} LIMIT 1"
        );
        db.opt(sql(text).bind(account_id).bind(app_id))
            .await?
            .mapped(Template::from_row)
    }

    pub(crate) async fn template_by_name(
        &self,
        account_id: &str,
        name: &str,
        language: &str,
    ) -> StoreResult<Option<Template>> {
        let mut db = self.read();
        let text = format!(
            "SELECT * FROM templates WHERE account_id = $1 AND name = $2 AND language = $3
             ORDER BY (status = 'DELETED'), created_at, {} LIMIT 1",
            db.by_id()
        );
        db.opt(sql(text).bind(account_id).bind(name).bind(language))
            .await?
            .mapped(Template::from_row)
    }

    pub(crate) async fn list_templates(
        &self,
        account_id: &str,
        f: &TemplateFilter,
    ) -> StoreResult<(Vec<Template>, u64)> {
        let mut db = self.read();
        // SQLite's NOCASE and lower() fold ASCII letters only; lower() under the "C"
        // collation does the same on PostgreSQL, whatever the database's locale.
        let status_is = db.pick(
            "status = $2 COLLATE NOCASE",
            "lower(status COLLATE \"C\") = lower($2 COLLATE \"C\")",
        );
        let name_has = db.pick(
            "instr(lower(name), lower($3))",
            "strpos(lower(name COLLATE \"C\"), lower($3 COLLATE \"C\"))",
        );
        let filter = format!(
            "WHERE account_id = $1 AND (CAST($2 AS TEXT) IS NULL OR {status_is})
               AND (CAST($3 AS TEXT) IS NULL OR {name_has} > 0)
               AND (CAST($2 AS TEXT) IS NOT NULL OR status <> 'DELETED')"
        );
        let total: i64 = db
            .one(
                sql(format!("SELECT count(*) AS n FROM templates {filter}"))
                    .bind(account_id)
                    .bind(&f.status)
                    .bind(&f.name),
            )
            .await?
            .get("n")?;
        let rows = db
            .all(
                sql(format!(
                    "SELECT * FROM templates {filter} ORDER BY created_at, {}
                     LIMIT $4 OFFSET $5",
                    db.by_id()
                ))
                .bind(account_id)
                .bind(&f.status)
                .bind(&f.name)
                .bind(f.limit)
                .bind(f.offset),
            )
            .await?;
        let templates = rows
            .iter()
            .map(Template::from_row)
            .collect::<StoreResult<_>>()?;
        Ok((templates, total as u64))
    }

    pub(crate) async fn insert_api_key(&self, k: &ApiKey, key_hash: &str) -> StoreResult<()> {
        self.write()
            .run(
                sql(
                    "INSERT INTO api_keys (id, account_id, name, key_hash, created_at)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&k.id)
                .bind(&k.account_id)
                .bind(&k.name)
                .bind(key_hash)
                .bind(k.created_at),
            )
            .await?;
        Ok(())
    }

    pub(crate) async fn api_key(&self, key_hash: &str) -> StoreResult<Option<ApiKey>> {
        self.read()
            .opt(
                sql("SELECT * FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL")
                    .bind(key_hash),
            )
            .await?
            .mapped(api_key_from_row)
    }

    pub(crate) async fn insert_console_session(&self, s: &ConsoleSession) -> StoreResult<()> {
        let mut db = self.write();
        db.run(sql("DELETE FROM console_sessions WHERE expires_at <= $1").bind(s.created_at))
            .await?;
        db.run(
            sql("INSERT INTO console_sessions
                    (token_hash, account_id, key_hash, csrf_token, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&s.token_hash)
            .bind(&s.account_id)
            .bind(&s.key_hash)
            .bind(&s.csrf_token)
            .bind(s.created_at)
            .bind(s.expires_at),
        )
        .await?;
        Ok(())
    }

    /// A live session, and (for an API key's) only while the key is live.
    pub(crate) async fn console_session(
        &self,
        token_hash: &str,
        now: i64,
    ) -> StoreResult<Option<ConsoleSession>> {
        self.read()
            .opt(
                sql(
                    "SELECT s.token_hash, s.account_id, s.key_hash, s.csrf_token,
                        s.created_at, s.expires_at
                     FROM console_sessions s
                     WHERE s.token_hash = $1 AND s.expires_at > $2
                       AND (s.key_hash IS NULL OR EXISTS (
                            SELECT 1 FROM api_keys k
                            WHERE k.key_hash = s.key_hash AND k.revoked_at IS NULL))",
                )
                .bind(token_hash)
                .bind(now),
            )
            .await?
            .mapped(session_from_row)
    }

    pub(crate) async fn delete_console_session(&self, token_hash: &str) -> StoreResult<()> {
        self.write()
            .run(sql("DELETE FROM console_sessions WHERE token_hash = $1").bind(token_hash))
            .await?;
        Ok(())
    }

    pub(crate) async fn list_accounts(&self) -> StoreResult<Vec<Account>> {
        self.read()
            .all(sql(
                "SELECT id, name, conversation_limit, created_at, updated_at, quiet_start,
                    quiet_end
                 FROM accounts ORDER BY created_at, id",
            ))
            .await?
            .mapped(account_from_row)
    }

    /// An account's newest batches.
    pub(crate) async fn list_batches(
        &self,
        account_id: &str,
        limit: u32,
    ) -> StoreResult<Vec<Batch>> {
        self.read()
            .all(
                sql(
                    "SELECT id, account_id, channel_id, total, accepted, rejected, created_at,
                        paused
                     FROM batches WHERE account_id = $1
                     ORDER BY created_at DESC, id DESC LIMIT $2",
                )
                .bind(account_id)
                .bind(limit),
            )
            .await?
            .mapped(Batch::from_row)
    }

    /// Messages queued since `since`, per bucket of `bucket_ms` and status:
    /// `(bucket start, status, n)`.
    pub(crate) async fn message_series(
        &self,
        account_id: &str,
        since: i64,
        bucket_ms: i64,
    ) -> StoreResult<Vec<(i64, String, i64)>> {
        self.read()
            .all(
                sql(
                    "SELECT (queued_at / $3) * $3 AS bucket, status, COUNT(*) AS n
                     FROM messages WHERE account_id = $1 AND queued_at >= $2
                     GROUP BY (queued_at / $3) * $3, status ORDER BY 1, 2",
                )
                .bind(account_id)
                .bind(since)
                .bind(bucket_ms.max(1)),
            )
            .await?
            .mapped(|r| Ok((r.get("bucket")?, r.get("status")?, r.get("n")?)))
    }

    /// How many of an account's messages queued since `since` were accepted and reached each
    /// status (a read message was also sent and delivered).
    pub(crate) async fn message_funnel(&self, account_id: &str, since: i64) -> StoreResult<Funnel> {
        let r = self
            .read()
            .one(
                sql("SELECT COUNT(*) AS accepted,
                        COUNT(CASE WHEN sent_at IS NOT NULL OR delivered_at IS NOT NULL
                                     OR read_at IS NOT NULL THEN 1 END) AS sent,
                        COUNT(CASE WHEN delivered_at IS NOT NULL OR read_at IS NOT NULL
                                   THEN 1 END) AS delivered,
                        COUNT(CASE WHEN read_at IS NOT NULL THEN 1 END) AS read,
                        COUNT(CASE WHEN status = 'failed' THEN 1 END) AS failed
                     FROM messages WHERE account_id = $1 AND queued_at >= $2")
                .bind(account_id)
                .bind(since),
            )
            .await?;
        Ok(Funnel {
            accepted: r.get("accepted")?,
            sent: r.get("sent")?,
            delivered: r.get("delivered")?,
            read: r.get("read")?,
            failed: r.get("failed")?,
        })
    }

    /// The commonest error codes of messages failed since `since`: `(code, a title, n)`.
    pub(crate) async fn top_failures(
        &self,
        account_id: &str,
        since: i64,
        limit: u32,
    ) -> StoreResult<Vec<(i64, Option<String>, i64)>> {
        self.read()
            .all(
                sql("SELECT error_code, MAX(error_title) AS title, COUNT(*) AS n
                     FROM messages
                     WHERE account_id = $1 AND status = 'failed' AND queued_at >= $2
                       AND error_code IS NOT NULL
                     GROUP BY error_code ORDER BY 3 DESC, 1 LIMIT $3")
                .bind(account_id)
                .bind(since)
                .bind(limit),
            )
            .await?
            .mapped(|r| Ok((r.get("error_code")?, r.get("title")?, r.get("n")?)))
    }

    /// An account's newest callback deliveries, optionally of one endpoint (`""`: messages'
    /// own `callbackUrl`) or one message.
    pub(crate) async fn recent_deliveries(
        &self,
        account_id: &str,
        endpoint_id: Option<&str>,
        message_id: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<CallbackDelivery>> {
        self.read()
            .all(
                sql("SELECT * FROM callback_outbox
                     WHERE account_id = $1
                       AND (CAST($2 AS TEXT) IS NULL OR endpoint_id = $2)
                       AND (CAST($3 AS TEXT) IS NULL OR message_id = $3)
                     ORDER BY seq DESC LIMIT $4")
                .bind(account_id)
                .bind(endpoint_id)
                .bind(message_id)
                .bind(limit),
            )
            .await?
            .mapped(CallbackDelivery::from_row)
    }
}
