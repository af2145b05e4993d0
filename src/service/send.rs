//! Where a send is decided: the rules of the template API, in the contract's order, ending in
//! one transaction that stores the message and its delivery job.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{DateTime, Datelike, Utc};

use super::views::template_content;
use crate::app::App;
use crate::domain::ids::{ConversationId, MessageId, TemplateId, new_id};
use crate::domain::phone::PhoneNumber;
use crate::domain::template_send::{InvalidValue, check_send};
use crate::metrics::SendResult;
use crate::store::{
    AcceptOutcome, AcceptSend, CancelOutcome, Channel, Group, IdempotencyKey, StoreError,
};

/// Which template a send uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateRef {
    Id(TemplateId),
    /// Meta's template name and language, as the native API also accepts.
    Name {
        name: String,
        language: String,
    },
}

impl TemplateRef {
    fn describe(&self) -> String {
        match self {
            TemplateRef::Id(id) => id.to_string(),
            TemplateRef::Name { name, language } => format!("{name} ({language})"),
        }
    }
}

/// A well-formed send (the adapters parse request bodies into this).
#[derive(Debug, Clone)]
pub struct SendRequest {
    pub template: TemplateRef,
    pub phone: PhoneNumber,
    pub client_name: Option<String>,
    pub group_name: Option<String>,
    pub assign: bool,
    pub params: BTreeMap<String, String>,
    /// Where status callbacks for this message go, besides the account's endpoints.
    pub callback_url: Option<String>,
    /// The integrator's own data, returned with the message.
    pub metadata: Option<serde_json::Value>,
    pub batch_id: Option<String>,
    pub idempotency: Option<IdempotencyKey>,
    /// When to send (ms since the epoch); `None` or a past time: now.
    pub send_at: Option<i64>,
}

impl SendRequest {
    /// A send with only what the compatible API carries.
    pub fn new(template: TemplateRef, phone: PhoneNumber) -> Self {
        SendRequest {
            template,
            phone,
            client_name: None,
            group_name: None,
            assign: false,
            params: BTreeMap::new(),
            callback_url: None,
            metadata: None,
            batch_id: None,
            idempotency: None,
            send_at: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Queued on the number's open conversation.
    Sent {
        conversation_id: ConversationId,
        message_id: MessageId,
    },
    /// A pending conversation was created with the message queued.
    Pending {
        conversation_id: ConversationId,
        message_id: MessageId,
    },
    /// An earlier template to this number is not confirmed yet; nothing was sent.
    AlreadyPending { conversation_id: ConversationId },
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("template '{0}' not found")]
    TemplateNotFound(String),
    /// The template lacks these of `template.appId`, `template.message`.
    #[error("template has no {0:?}")]
    TemplateIncomplete(Vec<&'static str>),
    #[error("template cannot be sent: {reason}")]
    TemplateNotSendable { status: String, reason: String },
    /// The template has a component plantilla cannot send (kept so nothing is half-sent).
    #[error("template cannot be sent: {0}")]
    TemplateUnsupported(String),
    #[error("channel is {0}")]
    ChannelNotConnected(String),
    #[error("missing params {missing:?}")]
    MissingParams {
        missing: Vec<String>,
        detail: Vec<String>,
    },
    /// Values given for the template that Meta would refuse, each with its key.
    #[error("invalid params {0:?}")]
    InvalidParams(Vec<InvalidValue>),
    #[error("group '{0}' not found")]
    GroupNotFound(String),
    /// The template is MARKETING and the number is on the account's suppression list.
    #[error("the recipient has opted out of marketing messages")]
    RecipientOptedOut,
    #[error("the account has reached its conversations limit")]
    ConversationLimit { limit: i64 },
    /// `sendAt` is farther ahead than the configured horizon allows.
    #[error("sendAt is more than {horizon_days} days ahead")]
    SendAtBeyondHorizon { horizon_days: u64 },
    /// The idempotency key was first used with a different request.
    #[error("the idempotency key was used with a different request")]
    IdempotencyKeyReused,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for SendError {
    fn from(e: StoreError) -> Self {
        SendError::Internal(e.into())
    }
}

/// `YYYY-MM` of a time, UTC: the plan limit's period.
pub fn period_of(ms: i64) -> String {
    let at = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
    // Every send asks: written without parsing a format string, as `%Y-%m` writes the years
    // 0 to 9999 (others, signed and wider, by chrono itself).
    match at.year() {
        year @ 0..=9999 => format!("{year:04}-{:02}", at.month()),
        _ => at.format("%Y-%m").to_string(),
    }
}

/// Decides and, when accepted, stores a send through `channel`; counted and timed in the
/// metrics.
pub async fn send(
    app: &App,
    channel: &Channel,
    req: SendRequest,
) -> Result<SendOutcome, SendError> {
    let started = Instant::now();
    let outcome = decide(app, channel, req).await;
    let result = match &outcome {
        Ok(SendOutcome::Pending { .. }) => SendResult::Pending,
        Ok(SendOutcome::Sent { .. }) => SendResult::Sent,
        Ok(SendOutcome::AlreadyPending { .. }) => SendResult::AlreadyPending,
        Err(SendError::ConversationLimit { .. }) => SendResult::LimitReached,
        Err(SendError::Internal(_)) => SendResult::Error,
        Err(_) => SendResult::Rejected,
    };
    app.metrics.send(result, started.elapsed());
    outcome
}

async fn decide(app: &App, channel: &Channel, req: SendRequest) -> Result<SendOutcome, SendError> {
    let prepared = prepare(app, channel, req).await?;
    let outcome = match app.store.accept_send(&prepared).await {
        // A concurrent send created the conversation (or used the idempotency key) first: the
        // database reports its unique index; decide again, now seeing it.
        Err(StoreError::Conflict(_)) => app.store.accept_send(&prepared).await?,
        other => other?,
    };
    finish(app, &prepared, outcome)
}

/// Everything a send needs checked before its transaction (rows 4 to 9 of the contract).
pub async fn prepare(
    app: &App,
    channel: &Channel,
    req: SendRequest,
) -> Result<AcceptSend, SendError> {
    let store = &app.store;
    let now = app.clock.now_ms();
    let horizon_ms = i64::try_from(app.config.schedule_horizon_days.saturating_mul(86_400_000))
        .unwrap_or(i64::MAX / 4);
    if req
        .send_at
        .is_some_and(|at| at > now.saturating_add(horizon_ms))
    {
        return Err(SendError::SendAtBeyondHorizon {
            horizon_days: app.config.schedule_horizon_days,
        });
    }
    let template = match &req.template {
        TemplateRef::Id(id) => store.account_template(&channel.account_id, id).await?,
        TemplateRef::Name { name, language } => {
            store
                .template_by_name(&channel.account_id, name, language)
                .await?
        }
    }
    .ok_or_else(|| SendError::TemplateNotFound(req.template.describe()))?;

    let mut incomplete = Vec::new();
    if template.app_id.trim().is_empty() {
        incomplete.push("template.appId");
    }
    if template.message.trim().is_empty() {
        incomplete.push("template.message");
    }
    if !incomplete.is_empty() {
        return Err(SendError::TemplateIncomplete(incomplete));
    }

    if template.status != "APPROVED" {
        return Err(SendError::TemplateNotSendable {
            reason: format!(
                "The template is not approved (status {}), only APPROVED templates can be sent",
                template.status
            ),
            status: template.status,
        });
    }
    if !template.active {
        return Err(SendError::TemplateNotSendable {
            status: template.status,
            reason: "The template is deactivated".into(),
        });
    }

    // Decoded once: the unsendable check and the values check both read it.
    let content = template_content(&template);
    if let Some(reason) = content.unsendable_reason() {
        return Err(SendError::TemplateUnsupported(reason));
    }

    if channel.status != "connected" {
        return Err(SendError::ChannelNotConnected(channel.status.clone()));
    }

    if let Err(problems) = check_send(&content, &req.params, now) {
        if !problems.missing.is_empty() {
            return Err(SendError::MissingParams {
                detail: problems.missing_detail,
                missing: problems.missing,
            });
        }
        return Err(SendError::InvalidParams(problems.invalid));
    }

    let group = resolve_group(app, channel, &req, template.group_name.as_deref()).await?;

    // Row 9b: after the template and its values, before any conversation decision (an open
    // or pending conversation does not bypass an opt-out). The template's current category.
    if template.category.eq_ignore_ascii_case("MARKETING")
        && super::suppressions::is_suppressed(app, &channel.account_id, req.phone.as_str()).await?
    {
        return Err(SendError::RecipientOptedOut);
    }

    let account = store
        .account(&channel.account_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("channel {} has no account", channel.id))?;

    Ok(AcceptSend {
        account_id: account.id,
        channel_id: channel.id.clone(),
        template_id: template.id,
        phone_number: req.phone.as_str().to_string(),
        client_name: req.client_name.filter(|n| !n.trim().is_empty()),
        group_id: group.map(|g| g.id),
        assignee: if req.assign { "agent" } else { "bot" },
        params: req.params,
        conversation_limit: account.conversation_limit,
        period: period_of(now),
        now,
        expire_before: now.saturating_sub(
            i64::try_from(app.config.conversation_ttl_secs.saturating_mul(1000))
                .unwrap_or(i64::MAX),
        ),
        new_conversation_id: new_id("conv"),
        new_message_id: new_id("msg"),
        batch_id: req.batch_id,
        callback_url: req.callback_url,
        metadata: req.metadata,
        idempotency: req.idempotency,
        // A time in the past means now.
        send_at: req.send_at.filter(|at| *at > now),
    })
}

/// Maps a stored decision to the send's outcome, waking the dispatcher for a queued message.
pub fn finish(
    app: &App,
    prepared: &AcceptSend,
    outcome: AcceptOutcome,
) -> Result<SendOutcome, SendError> {
    Ok(match outcome {
        AcceptOutcome::Sent {
            conversation_id,
            message_id,
        } => {
            app.wake_for_channel(&prepared.channel_id);
            SendOutcome::Sent {
                conversation_id: conversation_id.into(),
                message_id: message_id.into(),
            }
        }
        AcceptOutcome::Pending {
            conversation_id,
            message_id,
        } => {
            app.wake_for_channel(&prepared.channel_id);
            SendOutcome::Pending {
                conversation_id: conversation_id.into(),
                message_id: message_id.into(),
            }
        }
        AcceptOutcome::AlreadyPending { conversation_id } => SendOutcome::AlreadyPending {
            conversation_id: conversation_id.into(),
        },
        AcceptOutcome::LimitReached => {
            return Err(SendError::ConversationLimit {
                limit: prepared.conversation_limit,
            });
        }
        AcceptOutcome::Replayed { original } => return finish(app, prepared, *original),
        AcceptOutcome::KeyReused => return Err(SendError::IdempotencyKeyReused),
    })
}

/// The group a new conversation goes to: the one asked for, else the template's, else the
/// channel's first.
async fn resolve_group(
    app: &App,
    channel: &Channel,
    req: &SendRequest,
    template_group: Option<&str>,
) -> Result<Option<Group>, SendError> {
    if let Some(name) = req.group_name.as_deref() {
        return match app.store.group_by_name(&channel.account_id, name).await? {
            Some(g) => Ok(Some(g)),
            None => Err(SendError::GroupNotFound(name.to_string())),
        };
    }
    if let Some(name) = template_group
        && let Some(g) = app.store.group_by_name(&channel.account_id, name).await?
    {
        return Ok(Some(g));
    }
    Ok(app.store.default_group(&channel.id).await?)
}

/// Cancels message `id` of `account_id` when it is not yet handed to WhatsApp, telling
/// subscribers of the message's (and its conversation's) new status.
pub async fn cancel(app: &App, account_id: &str, id: &str) -> Result<CancelOutcome, StoreError> {
    let outcome = app
        .store
        .cancel_message(account_id, id, app.clock.now_ms())
        .await?;
    if let CancelOutcome::Cancelled {
        message,
        conversation,
    } = &outcome
    {
        app.publish(crate::app::Event::MessageStatus {
            message_id: message.id.clone(),
            status: crate::domain::status::MessageStatus::Cancelled,
        });
        if let Some((conversation_id, status)) = conversation {
            app.publish(crate::app::Event::ConversationStatus {
                conversation_id: conversation_id.clone(),
                status: *status,
            });
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_is_the_utc_calendar_month() {
        // 2026-01-31T23:59:59.999Z and one millisecond later.
        assert_eq!(period_of(1_769_903_999_999), "2026-01");
        assert_eq!(period_of(1_769_904_000_000), "2026-02");
    }

    #[test]
    fn period_is_what_chronos_format_writes() {
        let chrono_way = |ms: i64| {
            DateTime::<Utc>::from_timestamp_millis(ms)
                .unwrap_or_default()
                .format("%Y-%m")
                .to_string()
        };
        let year_ms = 31_556_952_000_i64;
        for ms in [
            0,
            -1,
            i64::MIN,
            i64::MAX,
            1_769_903_999_999,
            -62_167_219_200_000,    // 0000-01-01
            -62_167_219_200_001,    // -0001-12
            253_402_300_799_999,    // 9999-12-31
            253_402_300_800_000,    // 10000-01
            8_210_266_876_799_999,  // chrono's last time
            8_210_266_876_800_000,  // past it: the epoch
            -8_334_601_228_800_001, // before chrono's first
        ]
        .into_iter()
        .chain((-200..200).map(|i| i * year_ms / 7))
        {
            assert_eq!(period_of(ms), chrono_way(ms), "{ms}");
        }
    }
}
