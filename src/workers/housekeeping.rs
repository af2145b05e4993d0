//! Housekeeping: what expires is deleted on a timer.

use tokio_util::sync::CancellationToken;

use crate::app::App;

/// The messaging limit's window: conversation starts older than this are no longer read.
const DAY_MS: i64 = 24 * 3600 * 1000;

/// Every hour, deletes expired idempotency keys and the conversation starts the messaging
/// limit no longer reads.
pub async fn forget_expired(app: App, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
        }
        let now = crate::now_ms();
        match app.store.delete_expired_idempotency_keys(now).await {
            Ok(n) if n > 0 => tracing::debug!(deleted = n, "expired idempotency keys deleted"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot delete expired idempotency keys"),
        }
        match app.store.forget_recipient_starts(now - DAY_MS).await {
            Ok(n) if n > 0 => tracing::debug!(deleted = n, "old conversation starts deleted"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot delete old conversation starts"),
        }
    }
}
