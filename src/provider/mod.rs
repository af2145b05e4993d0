//! Providers deliver a claimed message to WhatsApp (or pretend to).

pub mod cloud;
pub mod sandbox;

use async_trait::async_trait;

use crate::domain::meta_error::MetaError;
use crate::store::{Channel, ClaimedJob};

/// The provider took the message for delivery.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// Meta's message id (`wamid.…`).
    pub provider_message_id: String,
    /// The recipient's WhatsApp id, when the provider reports it.
    pub wa_id: Option<String>,
}

#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// Hands one message to the provider. Errors carry Meta's error object so the dispatcher
    /// can classify them.
    async fn send(&self, channel: &Channel, job: &ClaimedJob) -> Result<Accepted, MetaError>;
}
