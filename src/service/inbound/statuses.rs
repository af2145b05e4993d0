//! Applying provider statuses: the one path for real webhooks and the sandbox alike.

use crate::app::{App, Event};
use crate::domain::meta_error::{CODE_MARKETING_LIMIT, CODE_MARKETING_OPTED_OUT};
use crate::domain::retry::marketing_retry_delay;
use crate::domain::status::MessageStatus;
use crate::store::{ProviderError, StatusApplied, StatusUpdate, StoreResult};

pub async fn apply(app: &App, update: &StatusUpdate) -> StoreResult<StatusApplied> {
    if let Some(applied) = declined_for_engagement(app, update).await? {
        return Ok(applied);
    }
    let applied = app.store.apply_status(update).await?;
    followed_up(app, update, &applied).await;
    Ok(applied)
}

/// What follows a status the store applied (`applied`, the store's answer): its events, the
/// suppression of a number that opted out, the warnings. Whether the store applied it alone
/// (`apply`) or with others of its webhook (`Store::apply_statuses`), in their order.
pub async fn followed_up(app: &App, update: &StatusUpdate, applied: &StatusApplied) {
    match applied {
        StatusApplied::Applied {
            message_id,
            status,
            changed,
            conversation,
        } => {
            if *changed {
                app.publish(Event::MessageStatus {
                    message_id: message_id.clone(),
                    status: *status,
                });
                if *status == MessageStatus::Failed
                    && let Some(error) = &update.error
                    && error.code == CODE_MARKETING_OPTED_OUT
                {
                    opted_out(app, message_id, error.details.as_deref()).await;
                }
            }
            if let Some((conversation_id, status)) = conversation {
                app.publish(Event::ConversationStatus {
                    conversation_id: conversation_id.clone(),
                    status: *status,
                });
            }
        }
        StatusApplied::OtherChannel => {
            tracing::warn!(
                channel_id = update.channel_id.as_deref(),
                message_id = update.message_id.as_deref(),
                status = %update.status,
                "status for a message of another channel ignored"
            );
        }
        StatusApplied::UnknownMessage => {
            tracing::warn!(
                provider_message_id = update.provider_message_id.as_deref(),
                message_id = update.message_id.as_deref(),
                status = %update.status,
                "status for an unknown message"
            );
        }
    }
}

/// A message failed with Meta's 131050 in a status webhook (the user stopped marketing
/// messages from the business): its number joins the account's suppression list.
async fn opted_out(app: &App, message_id: &str, details: Option<&str>) {
    let result = async {
        let Some(m) = app.store.message(message_id).await? else {
            return Ok(());
        };
        crate::service::suppressions::on_meta_opt_out(
            app,
            &m.account_id,
            &m.channel_id,
            &m.phone_number,
            details,
        )
        .await
        .map(|_| ())
    }
    .await;
    if let Err(e) = result {
        tracing::error!(message_id, error = %e, "cannot add an opted-out number to the suppression list");
    }
}

/// A `failed` status with Meta's 131049 (a MARKETING message declined to keep the user's
/// engagement healthy) is not final while the marketing retry schedule has a delay left: the
/// message goes back to the queue for then instead of failing. `None`: not such a status, or
/// the schedule is used up (the status is applied as usual, failing the message).
async fn declined_for_engagement(
    app: &App,
    update: &StatusUpdate,
) -> StoreResult<Option<StatusApplied>> {
    let Some((error, message_id)) = engagement_decline(update) else {
        return Ok(None);
    };
    let declined_before = app
        .store
        .message_attempts(message_id)
        .await?
        .iter()
        .filter(|a| {
            a.error
                .as_ref()
                .is_some_and(|e| e.code == CODE_MARKETING_LIMIT)
        })
        .count();
    let Some(delay) =
        marketing_retry_delay(&app.config.marketing_retry_schedule(), declined_before)
    else {
        return Ok(None);
    };
    let now = app.clock.now_ms();
    let run_at = now.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 4));
    if !app
        .store
        .requeue_declined(message_id, update.channel_id.as_deref(), error, run_at, now)
        .await?
    {
        return Ok(None);
    }
    tracing::info!(
        message_id,
        retry_at = crate::format_ms(run_at),
        "marketing message declined by Meta (131049): retried later"
    );
    app.wake_dispatcher();
    Ok(Some(StatusApplied::Applied {
        message_id: message_id.to_string(),
        status: MessageStatus::Queued,
        changed: true,
        conversation: None,
    }))
}

/// The error and message id of a status `declined_for_engagement` looks at: a `failed` with
/// Meta's 131049, of a message known by plantilla's id (`biz_opaque_callback_data`, which
/// every send carries).
fn engagement_decline(update: &StatusUpdate) -> Option<(&ProviderError, &str)> {
    let error = update
        .error
        .as_ref()
        .filter(|e| update.status == MessageStatus::Failed && e.code == CODE_MARKETING_LIMIT)?;
    Some((error, update.message_id.as_deref()?))
}

/// Whether `apply` may do something else with `update` than have the store apply it (a
/// marketing decline may go back to the queue instead). Any other status is applied by the
/// store alone, so it can be applied with others (`Store::apply_statuses`) and followed up
/// (`followed_up`) as `apply` would.
pub fn store_alone_applies(update: &StatusUpdate) -> bool {
    engagement_decline(update).is_none()
}
