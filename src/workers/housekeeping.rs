//! Housekeeping: what expires is deleted on a timer.

use tokio_util::sync::CancellationToken;

use crate::app::App;

/// Deletes expired idempotency keys every hour.
pub async fn forget_idempotency_keys(app: App, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
        }
        match app
            .store
            .delete_expired_idempotency_keys(crate::now_ms())
            .await
        {
            Ok(n) if n > 0 => tracing::debug!(deleted = n, "expired idempotency keys deleted"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot delete expired idempotency keys"),
        }
    }
}
