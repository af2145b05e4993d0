//! Posting the fake's own status webhooks: one task per accepted message, its
//! statuses in order, each after the configured delay, each waiting while
//! webhooks are held, signed with the app secret, retried on failure.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;

use super::payload::{self, BusinessIds, StatusError, StatusEvent};
use super::{Shared, WebhookRecord};

/// The statuses to report for one accepted message.
pub(crate) struct StatusPlan {
    pub(crate) biz: BusinessIds,
    pub(crate) wamid: String,
    pub(crate) recipient_id: String,
    pub(crate) callback_data: Option<String>,
    pub(crate) conversation_id: String,
    pub(crate) expiration: i64,
    pub(crate) category: String,
    pub(crate) pricing_model: String,
    pub(crate) delay: Duration,
    /// `(status, error for failed)`, in order.
    pub(crate) steps: Vec<(String, Option<StatusError>)>,
}

/// Posts the plan's statuses in the background. `first_done` is signalled
/// once the first status was posted (or given up).
pub(crate) fn spawn_statuses(
    shared: Arc<Shared>,
    plan: StatusPlan,
    first_done: Option<oneshot::Sender<()>>,
) {
    shared.pending_webhooks.fetch_add(1, Ordering::SeqCst);
    tokio::spawn(async move {
        let cancel = shared.cancel.clone();
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = run(&shared, plan, first_done) => {}
        }
        shared.pending_webhooks.fetch_sub(1, Ordering::SeqCst);
    });
}

async fn run(shared: &Shared, plan: StatusPlan, mut first_done: Option<oneshot::Sender<()>>) {
    for (status, error) in &plan.steps {
        if !plan.delay.is_zero() {
            tokio::time::sleep(plan.delay).await;
        }
        let mut event = StatusEvent::new(&plan.wamid, status, &plan.recipient_id)
            .with_callback_data(plan.callback_data.clone());
        if status != "failed" {
            let expiration = (status == "sent").then_some(plan.expiration);
            event = event.with_conversation(&plan.conversation_id, expiration);
        }
        event.category = plan.category.clone();
        event.pricing_model = plan.pricing_model.clone();
        if let Some(error) = error {
            event = event.with_error(error.clone());
        }
        // The timestamp is when the status is posted, after any hold.
        shared.wait_released().await;
        event.timestamp = chrono::Utc::now().timestamp();
        let body = payload::statuses_payload(&plan.biz, &[event]);
        deliver(shared, &plan.biz.phone_number_id, body).await;
        if let Some(tx) = first_done.take() {
            let _ = tx.send(());
        }
    }
}

/// Posts one webhook, retrying with a short backoff; records the outcome.
pub(crate) async fn deliver(shared: &Shared, phone_number_id: &str, body: Value) -> bool {
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut attempts = 0u32;
    loop {
        shared.wait_released().await;
        let (url, secret, retries) = {
            let state = shared.lock();
            let (url, secret) = state.webhook_target(Some(phone_number_id));
            (url, secret, state.config.webhook_retries)
        };
        let Some(url) = url else {
            return false;
        };
        attempts += 1;
        let result = shared
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Hub-Signature-256", payload::signature(&secret, &bytes))
            .body(bytes.clone())
            .send()
            .await;
        let status = result.as_ref().ok().map(|r| r.status().as_u16());
        let delivered = status.is_some_and(|s| (200..300).contains(&s));
        if !delivered {
            shared.webhook_failures.fetch_add(1, Ordering::SeqCst);
            tracing::debug!(%url, ?status, "fake-graph: webhook POST failed");
        }
        if delivered || attempts > retries {
            shared.lock().webhooks.push(WebhookRecord {
                phone_number_id: phone_number_id.to_string(),
                url,
                body,
                status,
                attempts,
                delivered,
                at: chrono::Utc::now(),
            });
            return delivered;
        }
        tokio::time::sleep(Duration::from_millis(100 << attempts.min(6))).await;
    }
}
