//! Posting the fake's own status webhooks: one task per accepted message, its
//! statuses in order, each after the configured delay, each waiting while
//! webhooks are held, signed with the app secret, retried on failure.
//!
//! By default each status is its own POST. With
//! [`FakeGraphConfig::webhook_batch`](super::FakeGraphConfig::webhook_batch) above 1, the
//! statuses of many messages share a POST as Meta batches them (`entry[]` per WABA,
//! `changes[]` per phone number, `statuses[]` in order): a message's next status is still
//! handed over only once the POST carrying the previous one was answered, so each
//! message's statuses arrive in order.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::payload::{self, BusinessIds, StatusError, StatusEvent};
use super::{PostedWebhook, Shared, State};

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
    pub(crate) steps: Vec<(&'static str, Option<StatusError>)>,
}

impl StatusPlan {
    fn event(&self, status: &str, error: Option<&StatusError>) -> StatusEvent {
        let mut event = StatusEvent::new(&self.wamid, status, &self.recipient_id)
            .with_callback_data(self.callback_data.clone());
        if status != "failed" {
            let expiration = (status == "sent").then_some(self.expiration);
            event = event.with_conversation(&self.conversation_id, expiration);
        }
        event.category.clone_from(&self.category);
        event.pricing_model.clone_from(&self.pricing_model);
        if let Some(error) = error {
            event = event.with_error(error.clone());
        }
        event
    }
}

/// Posts the plan's statuses in the background. `first_done` is signalled
/// once the first status was posted (or given up). The caller counted the plan in
/// `pending_webhooks` already, under the state lock that recorded its send; it is
/// uncounted here once its statuses are posted (or given up).
pub(crate) fn spawn_statuses(
    shared: Arc<Shared>,
    plan: StatusPlan,
    first_done: Option<oneshot::Sender<()>>,
) {
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
        let mut event = plan.event(status, error.as_ref());
        match &shared.batcher {
            Some(batcher) => {
                // The batch stamps the time when it is posted.
                let (ack, posted) = oneshot::channel();
                let unit = Unit {
                    biz: plan.biz.clone(),
                    event,
                    ack,
                };
                if batcher.send(unit).is_err() {
                    return;
                }
                let _ = posted.await;
            }
            None => {
                // The timestamp is when the status is posted, after any hold.
                shared.wait_released().await;
                event.timestamp = chrono::Utc::now().timestamp();
                let body = payload::statuses_body(&[(&plan.biz, std::slice::from_ref(&event))]);
                deliver_bytes(shared, &plan.biz.phone_number_id, body.into()).await;
            }
        }
        if let Some(tx) = first_done.take() {
            let _ = tx.send(());
        }
    }
}

/// Posts one webhook, retrying with a short backoff; records the outcome.
pub(crate) async fn deliver(shared: &Shared, phone_number_id: &str, body: Value) -> bool {
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    deliver_bytes(shared, phone_number_id, bytes.into()).await
}

/// [`deliver`] of a serialized body. The target (URL and secret of the phone number) is
/// read at each attempt, so a changed URL redirects retries and held webhooks.
pub(crate) async fn deliver_bytes(shared: &Shared, phone_number_id: &str, body: Bytes) -> bool {
    post_retrying(shared, phone_number_id, body, |state| {
        let (url, secret) = state.webhook_target(Some(phone_number_id));
        url.map(|url| (url, secret))
    })
    .await
}

/// Posts `body` to the target `target` names at each attempt (none: nothing is posted),
/// retrying with a short backoff up to the configured retries, and records the outcome.
async fn post_retrying(
    shared: &Shared,
    phone_number_id: &str,
    body: Bytes,
    target: impl Fn(&State) -> Option<(String, String)>,
) -> bool {
    let mut attempts = 0u32;
    loop {
        shared.wait_released().await;
        let (target, retries) = {
            let state = shared.lock();
            (target(&state), state.config.webhook_retries)
        };
        let Some((url, secret)) = target else {
            return false;
        };
        attempts += 1;
        let status = post_signed(shared, &url, &secret, &body).await;
        let delivered = status.is_some_and(|s| (200..300).contains(&s));
        if delivered || attempts > retries {
            shared.lock().webhooks.push(PostedWebhook {
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

/// One signed POST; the answer's status, `None` on a connection error. Counts failures.
async fn post_signed(shared: &Shared, url: &str, secret: &str, body: &Bytes) -> Option<u16> {
    let result = shared
        .http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Hub-Signature-256", payload::signature(secret, body))
        .body(body.clone())
        .send()
        .await;
    let status = result.as_ref().ok().map(|r| r.status().as_u16());
    if !status.is_some_and(|s| (200..300).contains(&s)) {
        shared.webhook_failures.fetch_add(1, Ordering::SeqCst);
        tracing::debug!(%url, ?status, "fake-graph: webhook POST failed");
    }
    status
}

// ---------------------------------------------------------------------------
// Batches
// ---------------------------------------------------------------------------

/// One status handed to the batcher; `ack` fires once the POST carrying it was answered
/// (or given up).
pub(crate) struct Unit {
    biz: BusinessIds,
    event: StatusEvent,
    ack: oneshot::Sender<()>,
}

/// How statuses are batched.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchConfig {
    /// Most statuses in one POST.
    pub(crate) max: usize,
    /// How long a batch waits for more statuses after its first.
    pub(crate) linger: Duration,
    /// Most batch POSTs in flight at once.
    pub(crate) in_flight: usize,
}

/// Starts the batcher: it gathers up to `max` statuses (waiting at most `linger` after the
/// first), then posts them while it gathers the next batch; at most `in_flight` POSTs at
/// once (while they are all busy, statuses queue up and the next batch is fuller).
pub(crate) fn start_batcher(
    shared: std::sync::Weak<Shared>,
    cancel: tokio_util::sync::CancellationToken,
    config: BatchConfig,
) -> mpsc::UnboundedSender<Unit> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Unit>();
    tokio::spawn(async move {
        let permits = Arc::new(Semaphore::new(config.in_flight.max(1)));
        loop {
            let first = tokio::select! {
                _ = cancel.cancelled() => return,
                unit = rx.recv() => match unit {
                    Some(unit) => unit,
                    None => return,
                },
            };
            let mut batch = vec![first];
            let until = tokio::time::Instant::now() + config.linger;
            while batch.len() < config.max {
                match rx.try_recv() {
                    Ok(unit) => batch.push(unit),
                    Err(_) if config.linger.is_zero() => break,
                    Err(_) => match tokio::time::timeout_at(until, rx.recv()).await {
                        Ok(Some(unit)) => batch.push(unit),
                        _ => break,
                    },
                }
            }
            let permit = tokio::select! {
                _ = cancel.cancelled() => return,
                permit = permits.clone().acquire_owned() => permit.expect("never closed"),
            };
            // What queued while the POSTs were busy joins this batch.
            while batch.len() < config.max {
                match rx.try_recv() {
                    Ok(unit) => batch.push(unit),
                    Err(_) => break,
                }
            }
            let Some(shared) = shared.upgrade() else {
                return;
            };
            tokio::spawn(async move {
                let cancel = shared.cancel.clone();
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = post_batch(&shared, batch) => {}
                }
                drop(permit);
            });
        }
    });
    tx
}

/// Posts a batch: one body per webhook target (URL and secret), every status stamped with
/// the time of posting, then acknowledges each status.
async fn post_batch(shared: &Shared, batch: Vec<Unit>) {
    shared.wait_released().await;
    let now = chrono::Utc::now().timestamp();
    // Target → phone numbers (in order of first appearance) → their statuses in order.
    type Group = (BusinessIds, Vec<StatusEvent>);
    let mut targets: Vec<((String, String), Vec<Group>)> = Vec::new();
    let mut acks = Vec::with_capacity(batch.len());
    {
        let state = shared.lock();
        for Unit {
            biz,
            mut event,
            ack,
        } in batch
        {
            acks.push(ack);
            let (Some(url), secret) = state.webhook_target(Some(&biz.phone_number_id)) else {
                continue;
            };
            event.timestamp = now;
            let key = (url, secret);
            let groups = match targets.iter_mut().find(|(k, _)| *k == key) {
                Some((_, groups)) => groups,
                None => {
                    targets.push((key, Vec::new()));
                    &mut targets.last_mut().expect("just pushed").1
                }
            };
            match groups
                .iter_mut()
                .find(|(b, _)| b.phone_number_id == biz.phone_number_id)
            {
                Some((_, events)) => events.push(event),
                None => groups.push((biz, vec![event])),
            }
        }
    }
    for ((url, secret), groups) in targets {
        let refs: Vec<(&BusinessIds, &[StatusEvent])> =
            groups.iter().map(|(b, e)| (b, e.as_slice())).collect();
        let body: Bytes = payload::statuses_body(&refs).into();
        let target = Some((url, secret));
        post_retrying(shared, &groups[0].0.phone_number_id, body, |_| {
            target.clone()
        })
        .await;
    }
    for ack in acks {
        let _ = ack.send(());
    }
}
