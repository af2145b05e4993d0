//! Applying provider statuses: the one path for real webhooks and the sandbox alike.

use crate::app::{App, Event};
use crate::domain::meta_error::CODE_MARKETING_OPTED_OUT;
use crate::domain::status::MessageStatus;
use crate::store::{StatusApplied, StatusUpdate, StoreResult};

pub async fn apply(app: &App, update: &StatusUpdate) -> StoreResult<StatusApplied> {
    let applied = app.store.apply_status(update).await?;
    match &applied {
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
    Ok(applied)
}

/// A message failed with Meta's 131050 in a status webhook (the user stopped marketing
/// messages from the business): its number joins the account's suppression list.
async fn opted_out(app: &App, message_id: &str, details: Option<&str>) {
    let result = async {
        let Some(m) = app.store.message(message_id).await? else {
            return Ok(());
        };
        super::suppressions::on_meta_opt_out(
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
