//! Providers deliver a claimed message to WhatsApp (or pretend to).

pub mod cloud;
pub mod sandbox;

use async_trait::async_trait;
use bytes::Bytes;

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

    /// Uploads a file to the channel's phone number (`POST /{phone-number-id}/media`) and
    /// answers its media id, usable in a send (a template header's `id`). The file's type and
    /// size are checked before ([`crate::domain::media`]).
    async fn upload_media(&self, channel: &Channel, file: &MediaFile) -> Result<String, MetaError>;
}

/// A file to upload: its bytes, its (supported) MIME type and, when given, its name.
#[derive(Debug, Clone)]
pub struct MediaFile {
    pub bytes: Bytes,
    pub mime_type: String,
    pub filename: Option<String>,
}

impl MediaFile {
    /// The name to give the file: its own, else `upload.<extension of its type>`.
    pub fn name_or_default(&self) -> String {
        if let Some(name) = self.filename.as_deref().filter(|n| !n.is_empty()) {
            return name.to_string();
        }
        let ext = crate::domain::media::lookup(&self.mime_type)
            .and_then(|m| m.extensions.first())
            .copied()
            .unwrap_or("bin");
        format!("upload.{ext}")
    }
}
