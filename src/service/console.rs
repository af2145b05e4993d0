//! The operator console's use cases: signing in and out, and what each page shows and does.
//! Everything is read and changed through the store and the same services as the APIs
//! (sends through `send`, channel changes through `admin`, previews through `templates`);
//! this module only decides who sees what. A session of an account API key sees that account
//! only: another account's id is "not found", exactly as on the native API.

use std::collections::BTreeMap;

use serde_json::Value;

use super::admin::{self, AdminError};
use super::input::FieldError;
use super::send::{self, SendError, SendRequest, TemplateRef};
use super::{callbacks, templates, views};
use crate::api::admin::{Account, AdminMessage, Channel as ChannelView};
use crate::api::console as api;
use crate::api::messages::{Conversation, InboundMessage};
use crate::app::App;
use crate::domain::ids::{hash_token, new_secret, same_secret};
use crate::domain::meta_error;
use crate::domain::phone::PhoneNumber;
use crate::format_ms;
use crate::now_ms;
use crate::store::console::ConsoleSession;
use crate::store::{Channel, ConversationFilter, MessageFilter, StoreError, TemplateFilter};

/// How long a console session lasts.
pub const SESSION_TTL_MS: i64 = 12 * 3600 * 1000;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("sign in first")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    Invalid(FieldError),
    #[error("no {kind} with id '{id}'")]
    NotFound { kind: &'static str, id: String },
    #[error("{0}")]
    Upstream(String),
    #[error("the send was refused")]
    Send(SendError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for ConsoleError {
    fn from(e: StoreError) -> Self {
        ConsoleError::Internal(e.into())
    }
}

impl From<FieldError> for ConsoleError {
    fn from(e: FieldError) -> Self {
        ConsoleError::Invalid(e)
    }
}

impl From<AdminError> for ConsoleError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Invalid(f) => ConsoleError::Invalid(f),
            AdminError::NotFound { kind, id } => ConsoleError::NotFound { kind, id },
            AdminError::Upstream(m) => ConsoleError::Upstream(m),
            AdminError::Internal(e) => ConsoleError::Internal(e),
        }
    }
}

pub type ConsoleResult<T> = Result<T, ConsoleError>;

fn not_found(kind: &'static str, id: &str) -> ConsoleError {
    ConsoleError::NotFound {
        kind,
        id: id.to_string(),
    }
}

/// Who is signed in.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub session: ConsoleSession,
}

impl Viewer {
    pub fn is_admin(&self) -> bool {
        self.session.account_id.is_none()
    }

    /// Whether a thing of `account_id` is visible.
    fn sees(&self, account_id: &str) -> bool {
        self.session
            .account_id
            .as_deref()
            .is_none_or(|a| a == account_id)
    }

    /// The account a page shows: an account session's own (asking for another is "not
    /// found"); for the admin, the one asked for or else the first.
    pub async fn account(
        &self,
        app: &App,
        requested: Option<&str>,
    ) -> Result<String, ConsoleError> {
        let requested = requested.filter(|a| !a.is_empty());
        match (&self.session.account_id, requested) {
            (Some(own), None) => Ok(own.clone()),
            (Some(own), Some(r)) if r == own => Ok(own.clone()),
            (Some(_), Some(r)) => Err(not_found("account", r)),
            (None, Some(r)) => match app.store.account(r).await? {
                Some(a) => Ok(a.id),
                None => Err(not_found("account", r)),
            },
            (None, None) => app
                .store
                .list_accounts()
                .await?
                .into_iter()
                .next()
                .map(|a| a.id)
                .ok_or_else(|| {
                    ConsoleError::Invalid(FieldError::new(
                        "account",
                        "there is no account yet: create one with the admin API",
                    ))
                }),
        }
    }

    fn require_admin(&self) -> Result<(), ConsoleError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ConsoleError::Forbidden(
                "only the operator (signed in with the admin token) can change channels",
            ))
        }
    }
}

// --- Sessions --------------------------------------------------------------------------------

/// A new session and the cookie token that names it (shown only here).
pub struct SignedIn {
    pub token: String,
    pub viewer: Viewer,
}

/// Signs in with the admin token (every account) or an account API key (that account).
pub async fn sign_in(app: &App, body: &Value) -> Result<SignedIn, ConsoleError> {
    let f = super::input::Fields::of(body)?;
    f.only(&["token"])?;
    let token = f.str("token")?.trim();
    if token.is_empty() {
        return Err(FieldError::new("token", "is required: the admin token or an API key").into());
    }
    let admin = app
        .config
        .admin_token
        .as_ref()
        .is_some_and(|t| same_secret(token, t.expose()));
    let (account_id, key_hash) = if admin {
        (None, None)
    } else {
        let hash = hash_token(token);
        match app.store.api_key(&hash).await? {
            Some(key) => (Some(key.account_id), Some(hash)),
            None => return Err(ConsoleError::Unauthorized),
        }
    };
    let now = now_ms();
    let session_token = new_secret("cs_");
    let session = ConsoleSession {
        token_hash: hash_token(&session_token),
        account_id,
        key_hash,
        csrf_token: new_secret(""),
        created_at: now,
        expires_at: now + SESSION_TTL_MS,
    };
    app.store.insert_console_session(&session).await?;
    Ok(SignedIn {
        token: session_token,
        viewer: Viewer { session },
    })
}

/// The session a cookie token names, if it is live.
pub async fn viewer(app: &App, token: &str) -> Result<Viewer, ConsoleError> {
    if token.is_empty() {
        return Err(ConsoleError::Unauthorized);
    }
    app.store
        .console_session(&hash_token(token), now_ms())
        .await?
        .map(|session| Viewer { session })
        .ok_or(ConsoleError::Unauthorized)
}

pub async fn sign_out(app: &App, viewer: &Viewer) -> Result<(), ConsoleError> {
    app.store
        .delete_console_session(&viewer.session.token_hash)
        .await?;
    Ok(())
}

/// What the page needs to know about its session: who, which accounts, the CSRF token.
pub async fn session_view(app: &App, viewer: &Viewer) -> ConsoleResult<api::Session> {
    let accounts: Vec<Account> = match &viewer.session.account_id {
        None => app
            .store
            .list_accounts()
            .await?
            .iter()
            .map(Account::of)
            .collect(),
        Some(id) => app
            .store
            .account(id)
            .await?
            .iter()
            .map(Account::of)
            .collect(),
    };
    Ok(api::Session {
        role: if viewer.is_admin() {
            "admin"
        } else {
            "account"
        },
        account_id: viewer.session.account_id.clone(),
        accounts,
        csrf_token: viewer.session.csrf_token.clone(),
        expires_at: format_ms(viewer.session.expires_at),
    })
}

// --- Overview --------------------------------------------------------------------------------

async fn account_channels(app: &App, account_id: &str) -> Result<Vec<Channel>, ConsoleError> {
    Ok(app
        .store
        .list_channels()
        .await?
        .into_iter()
        .filter(|c| c.account_id == account_id)
        .collect())
}

fn series(rows: Vec<(i64, String, i64)>, since: i64, bucket_ms: i64) -> api::Series {
    let points = rows
        .into_iter()
        .map(|(t, status, n)| api::Point { t, status, n })
        .collect();
    api::Series {
        since,
        bucket_ms,
        points,
    }
}

/// The overview of an account: messages over time by status, the funnel, the commonest
/// failures, the queues and the halted channels.
pub async fn overview(
    app: &App,
    viewer: &Viewer,
    account: Option<&str>,
) -> ConsoleResult<api::Overview> {
    let account_id = viewer.account(app, account).await?;
    let now = now_ms();
    const MINUTE: i64 = 60_000;
    let hour_since = (now - 60 * MINUTE) / MINUTE * MINUTE;
    let day_bucket = 30 * MINUTE;
    let day_since = (now - 24 * 60 * MINUTE) / day_bucket * day_bucket;
    let hour = app
        .store
        .message_series(&account_id, hour_since, MINUTE)
        .await?;
    let day = app
        .store
        .message_series(&account_id, day_since, day_bucket)
        .await?;
    let funnel = app.store.message_funnel(&account_id, day_since).await?;
    let failures = app
        .store
        .top_failures(&account_id, day_since, 5)
        .await?
        .into_iter()
        .map(|(code, title, n)| {
            let known = meta_error::lookup(code);
            api::Failure {
                code,
                title: known.map(|(_, t)| t.to_string()).or(title),
                class: known.map(|(c, _)| c.as_str()),
                messages: n,
            }
        })
        .collect();
    let channels = account_channels(app, &account_id).await?;
    let queues = app.store.queues().await?;
    let queues = channels
        .iter()
        .map(|c| {
            let q = queues.iter().find(|q| q.channel_id == c.id);
            api::Queue {
                channel_id: c.id.clone(),
                channel_name: c.name.clone(),
                depth: q.map_or(0, |q| q.depth),
                oldest_age_seconds: q.map(|q| (now - q.oldest_queued_at).max(0) / 1000),
            }
        })
        .collect();
    let halted = channels
        .iter()
        .filter(|c| c.health != "ok")
        .map(ChannelView::of)
        .collect();
    Ok(api::Overview {
        account_id,
        now,
        hour: series(hour, hour_since, MINUTE),
        day: series(day, day_since, day_bucket),
        funnel,
        failures,
        queues,
        halted,
    })
}

// --- Messages --------------------------------------------------------------------------------

/// The filters of the messages page, as the page sends them.
#[derive(Debug, Default)]
pub struct MessageQuery {
    pub account: Option<String>,
    pub channel_id: Option<String>,
    pub status: Option<String>,
    pub template_id: Option<String>,
    pub phone_number: Option<String>,
    pub batch_id: Option<String>,
    pub conversation_id: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub after: Option<(i64, String)>,
    pub limit: u32,
}

fn message_row(m: &crate::store::Message) -> api::MessageRow {
    api::MessageRow {
        message: AdminMessage::new(m),
        batch_id: m.batch_id.clone(),
    }
}

pub async fn messages(
    app: &App,
    viewer: &Viewer,
    q: MessageQuery,
) -> ConsoleResult<api::MessagePage> {
    let account_id = viewer.account(app, q.account.as_deref()).await?;
    if let Some(status) = &q.status
        && status
            .parse::<crate::domain::status::MessageStatus>()
            .is_err()
    {
        return Err(FieldError::new(
            "status",
            format!(
                "'{status}' is not a message status (queued, sending, sent, delivered, read, failed)"
            ),
        )
        .into());
    }
    let filter = MessageFilter {
        channel_id: q.channel_id,
        status: q.status,
        phone_number: q.phone_number,
        batch_id: q.batch_id,
        template_id: q.template_id,
        conversation_id: q.conversation_id,
        from: q.from,
        to: q.to,
        after: q.after,
        limit: q.limit,
        newest_first: true,
    };
    let list = app.store.list_messages(&account_id, &filter).await?;
    let next = (list.len() == filter.limit as usize)
        .then(|| list.last().map(|m| views::cursor(m.queued_at, &m.id)))
        .flatten();
    Ok(api::MessagePage {
        account_id,
        data: list.iter().map(message_row).collect(),
        next_cursor: next,
    })
}

/// A message with its timeline, its delivery attempts, what was sent to Meta and the
/// callbacks delivered for it.
pub async fn message(app: &App, viewer: &Viewer, id: &str) -> ConsoleResult<api::MessageDetail> {
    let m = app
        .store
        .message(id)
        .await?
        .filter(|m| viewer.sees(&m.account_id))
        .ok_or_else(|| not_found("message", id))?;
    let attempts = app
        .store
        .message_attempts(&m.id)
        .await?
        .into_iter()
        .map(|a| api::Attempt {
            attempt: a.attempt,
            finished_at: format_ms(a.finished_at),
            outcome: a.outcome,
            error: a.error,
        })
        .collect();
    let template = app.store.template(&m.template_id).await?;
    let (components, preview) = match &template {
        Some(t) => {
            let p = templates::preview(t, &m.params, now_ms());
            (p.components, p.preview)
        }
        None => (Vec::new(), Value::Null),
    };
    let channel = app.store.channel(&m.channel_id).await?;
    let callbacks = app
        .store
        .recent_deliveries(&m.account_id, None, Some(&m.id), 100)
        .await?
        .iter()
        .map(|d| {
            Ok::<_, StoreError>(api::MessageCallback {
                delivery: callbacks::delivery_view(d)?,
                url: d.url.clone(),
            })
        })
        .collect::<Result<_, _>>()?;
    let next_attempt = app.store.next_attempt_at(&m.id).await?;
    Ok(api::MessageDetail {
        row: message_row(&m),
        template_name: template.map(|t| t.name),
        channel_name: channel.map(|c| c.name),
        next_attempt_at: next_attempt.map(format_ms),
        attempts_list: attempts,
        components,
        preview,
        callbacks,
        metadata: m.metadata,
        callback_url: m.callback_url,
    })
}

// --- Templates -------------------------------------------------------------------------------

pub async fn templates(
    app: &App,
    viewer: &Viewer,
    account: Option<&str>,
) -> ConsoleResult<api::TemplateList> {
    let account_id = viewer.account(app, account).await?;
    let (list, total) = app
        .store
        .list_templates(
            &account_id,
            &TemplateFilter {
                limit: 200,
                ..TemplateFilter::default()
            },
        )
        .await?;
    Ok(api::TemplateList {
        account_id,
        data: list.iter().map(views::template).collect(),
        total,
    })
}

async fn visible_template(
    app: &App,
    viewer: &Viewer,
    id: &str,
) -> Result<crate::store::Template, ConsoleError> {
    app.store
        .template(id)
        .await?
        .filter(|t| viewer.sees(&t.account_id))
        .ok_or_else(|| not_found("template", id))
}

/// Example values for a preview: each placeholder's name in brackets, until the operator
/// types others.
fn example_params(t: &crate::store::Template) -> BTreeMap<String, String> {
    views::template_content(t)
        .params()
        .into_iter()
        .map(|p| (p.clone(), format!("[{p}]")))
        .collect()
}

fn preview_view(t: &crate::store::Template, params: BTreeMap<String, String>) -> api::Preview {
    let p = templates::preview(t, &params, now_ms());
    api::Preview {
        sendable: p.sendable,
        problems: p
            .problems
            .into_iter()
            .map(|(k, m)| FieldError::new(k, m))
            .collect(),
        preview: p.preview,
        components: p.components,
        params,
    }
}

pub async fn template(app: &App, viewer: &Viewer, id: &str) -> ConsoleResult<api::TemplateDetail> {
    let t = visible_template(app, viewer, id).await?;
    let channels = account_channels(app, &t.account_id)
        .await?
        .into_iter()
        .map(|c| api::ChannelName {
            id: c.id,
            name: c.name,
            provider: c.provider,
        })
        .collect();
    Ok(api::TemplateDetail {
        template: views::template(&t),
        preview: preview_view(&t, example_params(&t)),
        channels,
    })
}

/// `{"field": "value"}` of strings, as the page's parameter form sends them.
fn string_map(body: &Value, field: &str) -> Result<BTreeMap<String, String>, ConsoleError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(o)) => o
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(FieldError::new(format!("{field}.{k}"), "must be a string").into()),
            })
            .collect(),
        Some(_) => Err(FieldError::new(field, "must be an object of strings").into()),
    }
}

pub async fn preview(
    app: &App,
    viewer: &Viewer,
    id: &str,
    body: &Value,
) -> ConsoleResult<api::Preview> {
    let f = super::input::Fields::of(body)?;
    f.only(&["params"])?;
    let params = string_map(body, "params")?;
    let t = visible_template(app, viewer, id).await?;
    Ok(preview_view(&t, params))
}

/// Sends the template to a number through one of its account's channels (a test send): the
/// same send as every API's, with the same checks.
pub async fn send_test(
    app: &App,
    viewer: &Viewer,
    id: &str,
    body: &Value,
) -> ConsoleResult<api::TestSent> {
    let f = super::input::Fields::of(body)?;
    f.only(&["to", "channelId", "params"])?;
    let to = f.str("to")?;
    let phone = PhoneNumber::parse(to.trim())
        .map_err(|e| ConsoleError::Invalid(FieldError::new("to", e.to_string())))?;
    let params = string_map(body, "params")?;
    let t = visible_template(app, viewer, id).await?;
    let channels = account_channels(app, &t.account_id).await?;
    let channel = match f.opt_str("channelId")? {
        Some(cid) if !cid.is_empty() => {
            channels.into_iter().find(|c| c.id == cid).ok_or_else(|| {
                FieldError::new("channelId", format!("the account has no channel '{cid}'"))
            })?
        }
        _ => channels.into_iter().next().ok_or_else(|| {
            FieldError::new(
                "channelId",
                "the template's account has no channel to send through",
            )
        })?,
    };
    let mut request = SendRequest::new(TemplateRef::Id(t.id.clone().into()), phone);
    request.params = params;
    match send::send(app, &channel, request).await {
        Ok(send::SendOutcome::Sent {
            message_id,
            conversation_id,
        })
        | Ok(send::SendOutcome::Pending {
            message_id,
            conversation_id,
        }) => Ok(api::TestSent {
            message_id,
            conversation_id,
        }),
        Ok(send::SendOutcome::AlreadyPending { conversation_id }) => {
            Err(ConsoleError::Invalid(FieldError::new(
                "to",
                format!(
                    "an earlier template to this number is not confirmed yet (conversation {conversation_id}); nothing was sent"
                ),
            )))
        }
        Err(e) => Err(ConsoleError::Send(e)),
    }
}

/// Syncs the templates of every cloud channel of the account from WhatsApp now.
pub async fn sync_templates(
    app: &App,
    viewer: &Viewer,
    account: Option<&str>,
) -> ConsoleResult<api::TemplateSync> {
    let account_id = viewer.account(app, account).await?;
    let mut results = Vec::new();
    for c in account_channels(app, &account_id).await? {
        if c.provider != crate::store::ProviderKind::Cloud {
            continue;
        }
        let outcome = match admin::sync_templates(app, &c.id).await {
            Ok(summary) => api::ChannelSync {
                channel_id: c.id,
                ok: true,
                summary: Some(summary),
                error: None,
            },
            Err(AdminError::Internal(e)) => return Err(ConsoleError::Internal(e)),
            Err(e) => api::ChannelSync {
                channel_id: c.id,
                ok: false,
                summary: None,
                error: Some(e.to_string()),
            },
        };
        results.push(outcome);
    }
    Ok(api::TemplateSync {
        account_id,
        channels: results,
    })
}

// --- Channels --------------------------------------------------------------------------------

pub async fn channels(
    app: &App,
    viewer: &Viewer,
    account: Option<&str>,
) -> ConsoleResult<api::ChannelList> {
    let account_id = viewer.account(app, account).await?;
    let queues = app.store.queues().await?;
    let qualities = app.store.channel_qualities().await?;
    let now = now_ms();
    let list = account_channels(app, &account_id)
        .await?
        .iter()
        .map(|c| {
            let q = queues.iter().find(|q| q.channel_id == c.id);
            api::ChannelRow {
                channel: ChannelView::with_quality(c, qualities.get(&c.id)),
                queue_depth: q.map_or(0, |q| q.depth),
                oldest_age_seconds: q.map(|q| (now - q.oldest_queued_at).max(0) / 1000),
            }
        })
        .collect();
    Ok(api::ChannelList {
        account_id,
        can_edit: viewer.is_admin(),
        data: list,
    })
}

async fn admin_channel(app: &App, viewer: &Viewer, id: &str) -> Result<Channel, ConsoleError> {
    viewer.require_admin()?;
    app.store
        .channel(id)
        .await?
        .ok_or_else(|| not_found("channel", id))
}

/// Changes a channel's rate (the admin API's PATCH, which also resumes a halted channel).
pub async fn update_channel(
    app: &App,
    viewer: &Viewer,
    id: &str,
    body: &Value,
) -> ConsoleResult<ChannelView> {
    let f = super::input::Fields::of(body)?;
    f.only(&["messagesPerSecond"])?;
    if f.opt_int("messagesPerSecond", 1, 10_000)?.is_none() {
        return Err(FieldError::new("messagesPerSecond", "is required: 1 to 10000").into());
    }
    let change = admin::channel_update(body)?;
    admin_channel(app, viewer, id).await?;
    Ok(admin::update_channel(app, id, change).await?)
}

/// Resumes a halted channel: a PATCH with no change, as the admin API does it.
pub async fn resume_channel(app: &App, viewer: &Viewer, id: &str) -> ConsoleResult<ChannelView> {
    admin_channel(app, viewer, id).await?;
    Ok(admin::update_channel(app, id, Default::default()).await?)
}

pub async fn rotate_token(
    app: &App,
    viewer: &Viewer,
    id: &str,
) -> ConsoleResult<crate::api::admin::TokenRotated> {
    admin_channel(app, viewer, id).await?;
    Ok(admin::rotate_channel_token(app, id).await?)
}

// --- Batches, callbacks, conversations -------------------------------------------------------

pub async fn batches(
    app: &App,
    viewer: &Viewer,
    account: Option<&str>,
) -> ConsoleResult<api::BatchList> {
    let account_id = viewer.account(app, account).await?;
    let mut list = Vec::new();
    for b in app.store.list_batches(&account_id, 50).await? {
        let by_status = app.store.batch_counts(&b.id).await?.into_iter().collect();
        list.push(api::Batch {
            id: b.id,
            channel_id: b.channel_id,
            total: b.total,
            accepted: b.accepted,
            rejected: b.rejected,
            by_status,
            created_at: format_ms(b.created_at),
        });
    }
    Ok(api::BatchList {
        account_id,
        data: list,
    })
}

pub async fn callbacks(
    app: &App,
    viewer: &Viewer,
    account: Option<&str>,
) -> ConsoleResult<api::Callbacks> {
    let account_id = viewer.account(app, account).await?;
    let endpoints = app
        .store
        .webhook_endpoints(&account_id)
        .await?
        .iter()
        .map(callbacks::endpoint_view)
        .collect::<Result<_, _>>()?;
    let deliveries = app
        .store
        .recent_deliveries(&account_id, None, None, 100)
        .await?
        .iter()
        .map(|d| {
            Ok::<_, StoreError>(api::Delivery::of(
                callbacks::delivery_view(d)?,
                d.endpoint_id.clone(),
                d.url.clone(),
            ))
        })
        .collect::<Result<_, _>>()?;
    Ok(api::Callbacks {
        account_id,
        endpoints,
        deliveries,
    })
}

pub async fn conversations(
    app: &App,
    viewer: &Viewer,
    account: Option<&str>,
    status: Option<String>,
    phone_number: Option<String>,
) -> ConsoleResult<api::ConversationList> {
    let account_id = viewer.account(app, account).await?;
    if let Some(s) = &status
        && s.parse::<crate::domain::status::ConversationStatus>()
            .is_err()
    {
        return Err(FieldError::new(
            "status",
            format!("'{s}' is not a conversation status (pending, open, closed)"),
        )
        .into());
    }
    let list = app
        .store
        .list_conversations(
            &account_id,
            &ConversationFilter {
                status,
                phone_number,
                limit: 200,
                newest_first: true,
                ..ConversationFilter::default()
            },
        )
        .await?;
    Ok(api::ConversationList {
        account_id,
        data: list.iter().map(Conversation::from).collect(),
    })
}

/// A conversation and its messages, oldest first.
pub async fn conversation(
    app: &App,
    viewer: &Viewer,
    id: &str,
) -> ConsoleResult<api::ConversationDetail> {
    let c = app
        .store
        .conversation(id)
        .await?
        .filter(|c| viewer.sees(&c.account_id))
        .ok_or_else(|| not_found("conversation", id))?;
    let messages = app
        .store
        .list_messages(
            &c.account_id,
            &MessageFilter {
                conversation_id: Some(c.id.clone()),
                limit: 200,
                ..MessageFilter::default()
            },
        )
        .await?;
    // Each message as the recipient saw it: its template rendered with its values.
    let mut templates: BTreeMap<String, Option<crate::store::Template>> = BTreeMap::new();
    let mut rows = Vec::with_capacity(messages.len());
    for m in &messages {
        if !templates.contains_key(&m.template_id) {
            let t = app.store.template(&m.template_id).await?;
            templates.insert(m.template_id.clone(), t);
        }
        let rendered = match templates.get(&m.template_id) {
            Some(Some(t)) => Some(api::Rendered {
                template_name: t.name.clone(),
                preview: templates::preview(t, &m.params, now_ms()).preview,
            }),
            _ => None,
        };
        rows.push(api::ThreadMessage {
            row: message_row(m),
            rendered,
        });
    }
    // What the customer wrote or clicked (the page interleaves both by time).
    let inbound = app.store.conversation_inbound(&c.id, None, 200).await?;
    Ok(api::ConversationDetail {
        conversation: Conversation::from(&c),
        messages: rows,
        inbound: inbound.iter().map(InboundMessage::from).collect(),
    })
}
