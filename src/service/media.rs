//! Media uploads: a file checked against what WhatsApp accepts, then handed to the channel's
//! provider, which answers the media id a send can use (a template header's `id`).

use crate::app::App;
use crate::domain::media::{self, MediaRefusal};
use crate::domain::meta_error::MetaError;
use crate::provider::{MediaFile, Provider, sandbox};
use crate::store::{Channel, ProviderKind};

/// Why an upload was refused.
#[derive(Debug)]
pub enum UploadError {
    /// The file's type or size is not one WhatsApp accepts; nothing reached the provider.
    Refused(MediaRefusal),
    /// The channel's status is not `connected` (its status).
    ChannelNotConnected(String),
    /// The provider refused or failed.
    Provider(MetaError),
}

/// Checks `file` (its type must be a supported one) and uploads it through `channel`'s
/// provider; answers the media id.
pub async fn upload(app: &App, channel: &Channel, file: &MediaFile) -> Result<String, UploadError> {
    let Some(media_type) = media::lookup(&file.mime_type) else {
        return Err(UploadError::Refused(MediaRefusal::Unsupported {
            mime: media::essence(&file.mime_type),
        }));
    };
    media::check_size(media_type, &file.bytes).map_err(UploadError::Refused)?;
    if channel.status != "connected" {
        return Err(UploadError::ChannelNotConnected(channel.status.clone()));
    }
    let result = match channel.provider {
        ProviderKind::Cloud => app.graph.upload_media(channel, file).await,
        ProviderKind::Sandbox => Ok(sandbox::upload_media(file)),
    };
    result.map_err(|e| {
        tracing::warn!(channel_id = %channel.id, code = e.code, error = %e, "media upload refused by the provider");
        UploadError::Provider(e)
    })
}
