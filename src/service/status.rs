//! Applying provider statuses: the one path for real webhooks and the sandbox alike.

use crate::app::{App, Event};
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
