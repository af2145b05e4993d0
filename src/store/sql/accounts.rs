//! Accounts and channels (with their sealed secrets and health).

use anyhow::Context;

use super::{Cols, Mapped, Shared, sql};
use crate::secrets::{Cipher, SealCensus};
use crate::store::{
    Account, Channel, ProviderError, ProviderKind, RESEAL_TRIES, Resealed, StoreResult,
    open_secrets, reseal, seal_secrets, secrets_of,
};

pub(crate) fn account_from_row(r: &impl Cols) -> StoreResult<Account> {
    Ok(Account {
        id: r.get("id")?,
        name: r.get("name")?,
        conversation_limit: r.get("conversation_limit")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
        quiet_hours: r
            .get::<Option<i64>>("quiet_start")?
            .zip(r.get::<Option<i64>>("quiet_end")?),
    })
}

/// A channel row with its secrets opened.
pub(crate) fn channel_from_row(cipher: &Cipher, r: &impl Cols) -> StoreResult<Channel> {
    let provider: String = r.get("provider")?;
    let id: String = r.get("id")?;
    let stored: [String; 3] = [
        r.get("access_token")?,
        r.get("app_secret")?,
        r.get("verify_token")?,
    ];
    let [access_token, app_secret, verify_token] =
        open_secrets(cipher, &id, [&stored[0], &stored[1], &stored[2]])?;
    Ok(Channel {
        id,
        account_id: r.get("account_id")?,
        name: r.get("name")?,
        provider: ProviderKind::parse(&provider)
            .with_context(|| format!("unknown provider '{provider}' in database"))?,
        phone_number_id: r.get("phone_number_id")?,
        waba_id: r.get("waba_id")?,
        access_token,
        app_secret,
        verify_token,
        status: r.get("status")?,
        messages_per_second: r.get("messages_per_second")?,
        health: r.get("health")?,
        health_error: match r.get::<Option<i64>>("health_code")? {
            Some(code) => Some(ProviderError {
                code,
                title: r
                    .get::<Option<String>>("health_detail")?
                    .unwrap_or_default(),
                details: None,
            }),
            None => None,
        },
        messaging_limit: r.get("messaging_limit")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

impl Shared {
    pub(crate) async fn insert_account(&self, a: &Account) -> StoreResult<()> {
        let _changed = self.lookups.writing();
        self.write()
            .run(
                sql(
                    "INSERT INTO accounts (id, name, conversation_limit, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&a.id)
                .bind(&a.name)
                .bind(a.conversation_limit)
                .bind(a.created_at)
                .bind(a.updated_at),
            )
            .await?;
        Ok(())
    }

    pub(crate) async fn account(&self, id: &str) -> StoreResult<Option<Account>> {
        self.lookups
            .account
            .get_or(&self.lookups, id, async {
                self.read()
                    .opt(sql("SELECT * FROM accounts WHERE id = $1").bind(id))
                    .await?
                    .mapped(account_from_row)
            })
            .await
    }

    pub(crate) async fn insert_channel(&self, c: &Channel, token_hash: &str) -> StoreResult<()> {
        let _changed = self.lookups.writing();
        let [access_token, app_secret, verify_token] =
            seal_secrets(&self.cipher, &c.id, secrets_of(c));
        self.write()
            .run(
                sql(
                    "INSERT INTO channels (id, account_id, name, provider, phone_number_id,
                        waba_id, access_token, app_secret, verify_token, status,
                        messages_per_second, public_token_hash, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                )
                .bind(&c.id)
                .bind(&c.account_id)
                .bind(&c.name)
                .bind(c.provider.as_str())
                .bind(&c.phone_number_id)
                .bind(&c.waba_id)
                .bind(&access_token)
                .bind(&app_secret)
                .bind(&verify_token)
                .bind(&c.status)
                .bind(c.messages_per_second)
                .bind(token_hash)
                .bind(c.created_at)
                .bind(c.updated_at),
            )
            .await?;
        Ok(())
    }

    pub(crate) async fn update_channel(&self, c: &Channel) -> StoreResult<()> {
        let _changed = self.lookups.writing();
        let [access_token, app_secret, verify_token] =
            seal_secrets(&self.cipher, &c.id, secrets_of(c));
        self.write()
            .run(
                sql(
                    "UPDATE channels SET name = $1, provider = $2, phone_number_id = $3,
                        waba_id = $4, access_token = $5, app_secret = $6, verify_token = $7,
                        status = $8, messages_per_second = $9, updated_at = $10
                     WHERE id = $11",
                )
                .bind(&c.name)
                .bind(c.provider.as_str())
                .bind(&c.phone_number_id)
                .bind(&c.waba_id)
                .bind(&access_token)
                .bind(&app_secret)
                .bind(&verify_token)
                .bind(&c.status)
                .bind(c.messages_per_second)
                .bind(c.updated_at)
                .bind(&c.id),
            )
            .await?;
        Ok(())
    }

    pub(crate) async fn set_channel_token(
        &self,
        id: &str,
        token_hash: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let _changed = self.lookups.writing();
        let done = self
            .write()
            .run(
                sql("UPDATE channels SET public_token_hash = $1, updated_at = $2 WHERE id = $3")
                    .bind(token_hash)
                    .bind(now)
                    .bind(id),
            )
            .await?;
        Ok(done == 1)
    }

    /// The channel `q` finds, if any.
    async fn one_channel(&self, q: super::Sql<'_>) -> StoreResult<Option<Channel>> {
        self.read()
            .opt(q)
            .await?
            .mapped(|r| channel_from_row(&self.cipher, r))
    }

    async fn channels(&self, q: super::Sql<'_>) -> StoreResult<Vec<Channel>> {
        self.read()
            .all(q)
            .await?
            .mapped(|r| channel_from_row(&self.cipher, r))
    }

    pub(crate) async fn channel(&self, id: &str) -> StoreResult<Option<Channel>> {
        let load = self.one_channel(sql("SELECT * FROM channels WHERE id = $1").bind(id));
        self.lookups.channel.get_or(&self.lookups, id, load).await
    }

    pub(crate) async fn channel_by_token(&self, token_hash: &str) -> StoreResult<Option<Channel>> {
        let load = self.one_channel(
            sql("SELECT * FROM channels WHERE public_token_hash = $1").bind(token_hash),
        );
        self.lookups
            .channel_by_token
            .get_or(&self.lookups, token_hash, load)
            .await
    }

    /// The oldest channel of a phone number id (two accounts may have registered it).
    pub(crate) async fn channel_by_phone_number_id(
        &self,
        pnid: &str,
    ) -> StoreResult<Option<Channel>> {
        let text = format!(
            "SELECT * FROM channels WHERE phone_number_id = $1 ORDER BY created_at, {} LIMIT 1",
            self.read().by_id()
        );
        let load = self.one_channel(sql(text).bind(pnid));
        self.lookups
            .channel_by_phone_number_id
            .get_or(&self.lookups, pnid, load)
            .await
    }

    pub(crate) async fn channels_by_waba(&self, waba_id: &str) -> StoreResult<Vec<Channel>> {
        let text = format!(
            "SELECT * FROM channels WHERE waba_id = $1 ORDER BY created_at, {}",
            self.read().by_id()
        );
        self.channels(sql(text).bind(waba_id)).await
    }

    pub(crate) async fn list_channels(&self) -> StoreResult<Vec<Channel>> {
        let text = format!(
            "SELECT * FROM channels ORDER BY created_at, {}",
            self.read().by_id()
        );
        self.channels(sql(text)).await
    }

    /// Seals every channel's secrets with the current key. A channel changed meanwhile is
    /// read again (its update is guarded by the values read), up to [`RESEAL_TRIES`] times.
    pub(crate) async fn reseal_channel_secrets(&self) -> StoreResult<Resealed> {
        let _changed = self.lookups.writing();
        let text = format!(
            "SELECT id FROM channels ORDER BY created_at, {}",
            self.read().by_id()
        );
        let ids = self.write().all(sql(text)).await?;
        let mut done = Resealed::default();
        for id in ids {
            let id: String = id.get("id")?;
            done.channels += 1;
            for attempt in 1..=RESEAL_TRIES {
                let stored = self
                    .write()
                    .opt(
                        sql("SELECT access_token, app_secret, verify_token FROM channels
                             WHERE id = $1")
                        .bind(&id),
                    )
                    .await?;
                let Some(stored) = stored else { break };
                let [a, s, v]: [String; 3] = [
                    stored.get("access_token")?,
                    stored.get("app_secret")?,
                    stored.get("verify_token")?,
                ];
                let Some([na, ns, nv]) = reseal(&self.cipher, &id, [&a, &s, &v])? else {
                    break;
                };
                let written = self
                    .write()
                    .run(
                        sql("UPDATE channels SET access_token = $1, app_secret = $2,
                                verify_token = $3
                             WHERE id = $4 AND access_token = $5 AND app_secret = $6
                               AND verify_token = $7")
                        .bind(&na)
                        .bind(&ns)
                        .bind(&nv)
                        .bind(&id)
                        .bind(&a)
                        .bind(&s)
                        .bind(&v),
                    )
                    .await?;
                if written == 1 {
                    done.rewritten += 1;
                    break;
                }
                if attempt == RESEAL_TRIES {
                    return Err(anyhow::anyhow!(
                        "channel {id} kept changing while its secrets were re-encrypted; run again"
                    )
                    .into());
                }
            }
        }
        Ok(done)
    }

    /// How the stored secrets are sealed (which key, or none).
    pub(crate) async fn seal_census(&self) -> StoreResult<SealCensus> {
        let rows = self
            .read()
            .all(sql(
                "SELECT access_token, app_secret, verify_token FROM channels",
            ))
            .await?;
        let mut census = SealCensus::default();
        for r in &rows {
            for column in ["access_token", "app_secret", "verify_token"] {
                census.count(&r.get::<String>(column)?);
            }
        }
        Ok(census)
    }

    pub(crate) async fn set_channel_health(
        &self,
        id: &str,
        halted: Option<&ProviderError>,
        now: i64,
    ) -> StoreResult<()> {
        let _changed = self.lookups.writing();
        self.write()
            .run(
                sql(
                    "UPDATE channels SET health = $1, health_code = $2, health_detail = $3,
                        health_at = $4
                     WHERE id = $5",
                )
                .bind(if halted.is_some() { "halted" } else { "ok" })
                .bind(halted.map(|e| e.code))
                .bind(halted.map(|e| e.title.as_str()))
                .bind(now)
                .bind(id),
            )
            .await?;
        Ok(())
    }
}
