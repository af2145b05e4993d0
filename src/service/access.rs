//! Who calls the native API and what it may see: a channel's public token sees that channel,
//! an account API key (`ak_…`) sees the account's channels. Every tenant rule of `/v1` is
//! here; the HTTP adapter only reads the token and maps refusals to problems.

use std::time::Instant;

use crate::app::App;
use crate::domain::ids::hash_token;
use crate::domain::rate_limit::retry_after_secs;
use crate::service::input::FieldError;
use crate::store::{Batch, Channel, Conversation, Message, StoreError, Template};

/// Who is calling.
pub enum Caller {
    /// A channel's public token: calls see that channel only.
    Channel(Box<Channel>),
    /// An account API key: calls see the account's channels.
    Account(String),
}

/// Why a token is refused.
pub enum AuthError {
    /// The token made more requests than its rate allows: retry in this many seconds.
    RateLimited(u64),
    /// Not a channel token or API key of this server.
    Unknown,
    Store(StoreError),
}

/// Why a caller cannot use a channel.
pub enum AccessError {
    /// The channel asked for is not the caller's (or none was named where one is needed).
    Invalid(FieldError),
    Store(StoreError),
}

impl From<StoreError> for AccessError {
    fn from(e: StoreError) -> Self {
        AccessError::Store(e)
    }
}

/// The caller a bearer token names, limited by the token's hash (never the token) before the
/// lookup, as the template API.
pub async fn authenticate(app: &App, token: &str) -> Result<Caller, AuthError> {
    let hash = hash_token(token);
    if let Err(wait) = app.rate_limiter.check(&hash, Instant::now()) {
        app.metrics.rate_limited();
        return Err(AuthError::RateLimited(retry_after_secs(wait)));
    }
    if let Some(channel) = app
        .store
        .channel_by_token(&hash)
        .await
        .map_err(AuthError::Store)?
    {
        return Ok(Caller::Channel(Box::new(channel)));
    }
    if let Some(key) = app.store.api_key(&hash).await.map_err(AuthError::Store)? {
        return Ok(Caller::Account(key.account_id));
    }
    Err(AuthError::Unknown)
}

impl Caller {
    pub fn account_id(&self) -> &str {
        match self {
            Caller::Channel(c) => &c.account_id,
            Caller::Account(a) => a,
        }
    }

    /// The channel of a channel token; `None` for an account API key.
    pub fn channel_id(&self) -> Option<&str> {
        match self {
            Caller::Channel(c) => Some(&c.id),
            Caller::Account(_) => None,
        }
    }

    /// What idempotency keys are scoped to: the token's channel or the key's account.
    pub fn scope(&self) -> String {
        match self {
            Caller::Channel(c) => format!("ch:{}", c.id),
            Caller::Account(a) => format!("acc:{a}"),
        }
    }

    /// The channel a call works through: the token's, or `channelId` of an account's call.
    pub async fn channel(
        &self,
        app: &App,
        channel_id: Option<&str>,
    ) -> Result<Channel, AccessError> {
        let invalid = |message: String| AccessError::Invalid(FieldError::new("channelId", message));
        match (self, channel_id) {
            (Caller::Channel(c), None) => Ok((**c).clone()),
            (Caller::Channel(c), Some(id)) if id == c.id => Ok((**c).clone()),
            (Caller::Channel(_), Some(_)) => Err(invalid(
                "a channel token can only use its own channel; omit channelId or use an account API key".into(),
            )),
            (Caller::Account(_), None) => {
                Err(invalid("is required with an account API key".into()))
            }
            (Caller::Account(account), Some(id)) => match app.store.channel(id).await? {
                Some(c) if &c.account_id == account => Ok(c),
                _ => Err(invalid(format!("the account has no channel '{id}'"))),
            },
        }
    }

    /// Restricts a list's `channelId` filter to the caller's channel when it has a channel
    /// token; another channel asked for is refused.
    pub fn scope_channel_filter(&self, channel_id: &mut Option<String>) -> Result<(), FieldError> {
        if let Caller::Channel(c) = self {
            if channel_id.as_deref().is_some_and(|id| id != c.id) {
                return Err(FieldError::new(
                    "channelId",
                    "a channel token sees only its own channel",
                ));
            }
            *channel_id = Some(c.id.clone());
        }
        Ok(())
    }

    /// Whether a thing of `channel_id` in `account_id` is visible to this caller.
    pub fn sees(&self, account_id: &str, channel_id: &str) -> bool {
        match self {
            Caller::Channel(c) => c.id == channel_id,
            Caller::Account(a) => a == account_id,
        }
    }

    /// The message `id` when the caller sees it.
    pub async fn message(&self, app: &App, id: &str) -> Result<Option<Message>, StoreError> {
        Ok(app
            .store
            .message(id)
            .await?
            .filter(|m| self.sees(&m.account_id, &m.channel_id)))
    }

    /// The batch `id` when the caller sees it.
    pub async fn batch(&self, app: &App, id: &str) -> Result<Option<Batch>, StoreError> {
        Ok(app
            .store
            .batch(id)
            .await?
            .filter(|b| self.sees(&b.account_id, &b.channel_id)))
    }

    /// The conversation `id` when the caller sees it.
    pub async fn conversation(
        &self,
        app: &App,
        id: &str,
    ) -> Result<Option<Conversation>, StoreError> {
        Ok(app
            .store
            .conversation(id)
            .await?
            .filter(|c| self.sees(&c.account_id, &c.channel_id)))
    }

    /// The template `id` of the caller's account.
    pub async fn template(&self, app: &App, id: &str) -> Result<Option<Template>, StoreError> {
        app.store.account_template(self.account_id(), id).await
    }
}
