//! Template sync: every `template_sync_interval_secs`, each connected Cloud API channel's
//! templates are read from Meta (`service::templates::sync`), so statuses and categories
//! changed outside plantilla are seen even when a webhook was missed.

use crate::app::App;
use crate::service::templates::sync;
use crate::store::ProviderKind;

/// Syncs every connected cloud channel with a WABA, forever, every `interval`.
pub async fn run(
    app: App,
    interval: std::time::Duration,
    cancel: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let channels = match app.store.list_channels().await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "template sync: cannot list channels");
                continue;
            }
        };
        for channel in channels.iter().filter(|c| {
            c.provider == ProviderKind::Cloud && !c.waba_id.is_empty() && c.status == "connected"
        }) {
            if let Err(e) = sync(&app, channel).await {
                tracing::warn!(channel_id = channel.id, error = %e, "template sync failed");
            }
        }
    }
}
