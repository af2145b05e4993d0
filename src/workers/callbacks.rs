//! The callback worker: delivers the outbox of status callbacks (written by the stores in the
//! same transaction as each status change) to accounts' webhook endpoints and to messages'
//! own `callbackUrl`.
//!
//! It runs beside the dispatcher, never inside it: its own task, its own HTTP client with a
//! short timeout, its own bound on deliveries in flight, and no lock shared with sending, so
//! a slow or dead receiver delays only its own deliveries.
//!
//! A pass leases due deliveries (`Store::claim_callbacks`: only the oldest pending delivery
//! of each endpoint and message, so a message's events arrive in order), POSTs each outside
//! any transaction, signed the Standard Webhooks way (`domain::callback`), and records the
//! outcome fenced by the attempt number: any 2xx is delivered; anything else is retried with
//! the retry policy's backoff and jitter until `callback_max_age_secs` after the event, then
//! given up as `failed`.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use tokio::sync::{Notify, Semaphore, broadcast};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::App;
use crate::domain::callback::{next_attempt_at, signature};
use crate::domain::meta_error::ErrorClass;
use crate::domain::retry::RetryPolicy;
use crate::now_ms;
use crate::store::{CallbackDelivery, CallbackOutcome, CallbackResult, ClaimedCallback};

/// Longest the worker sleeps when nothing wakes it: retries fall due without a wake-up.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// How much of a refusing receiver's answer is kept as the delivery's last error.
const ERROR_BODY_CHARS: usize = 200;

pub struct CallbackWorker {
    app: App,
    client: reqwest::Client,
    policy: RetryPolicy,
    timeout: Duration,
    max_age_ms: i64,
    lease_ms: i64,
    permits: Arc<Semaphore>,
    in_flight: TaskTracker,
    /// Rung when a delivery is recorded: the next delivery of its stream may go now.
    done: Notify,
    /// When the last `drain` ended (test hook).
    last_drain: tokio::sync::Mutex<i64>,
}

impl CallbackWorker {
    pub fn new(app: App) -> anyhow::Result<Self> {
        let c = &app.config;
        let timeout = Duration::from_millis(c.callback_timeout_ms);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A redirect is an answer that is not 2xx: retried, never followed.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("plantilla-callbacks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let policy = RetryPolicy {
            initial: Duration::from_millis(c.callback_retry_initial_ms),
            max: Duration::from_millis(c.callback_retry_max_ms),
            // The age limit ends the retries, not a count.
            max_attempts: u32::MAX,
        };
        let max_age_ms =
            i64::try_from(c.callback_max_age_secs.saturating_mul(1000)).unwrap_or(i64::MAX / 4);
        let timeout_ms = i64::try_from(c.callback_timeout_ms).unwrap_or(i64::MAX / 8);
        Ok(Self {
            permits: Arc::new(Semaphore::new(
                usize::try_from(c.callback_concurrency).unwrap_or(16),
            )),
            app,
            client,
            policy,
            timeout,
            max_age_ms,
            // Long enough for the call and for recording its outcome; a delivery whose
            // worker died is tried again once it lapses.
            lease_ms: timeout_ms.saturating_add(30_000),
            in_flight: TaskTracker::new(),
            done: Notify::new(),
            last_drain: tokio::sync::Mutex::new(0),
        })
    }

    /// Delivers until `cancel`, then waits for deliveries in flight (each bounded by the
    /// timeout) to record their outcome.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        // Status changes are published after their commit: a wake-up to look at the outbox.
        let mut events = self.app.events.subscribe();
        loop {
            // Read before the pass: a row queued during it bumps the count again.
            let queued = self.app.store.outbox_writes();
            if let Err(e) = self.pass(now_ms()).await {
                tracing::error!(error = format!("{e:#}"), "callback pass failed");
            }
            // One deadline for the wait, however many events are skipped in it: retries
            // fall due without a wake-up.
            let idle = tokio::time::sleep(IDLE_POLL);
            tokio::pin!(idle);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = self.done.notified() => {}
                    _ = events.recv() => {
                        // A status event whose write queued no outbox row (no endpoint, no
                        // callbackUrl) has nothing for a pass: the count is bumped before
                        // the commit the event follows.
                        if self.app.store.outbox_writes() == queued {
                            continue;
                        }
                    }
                    _ = &mut idle => {}
                }
                break;
            }
            if cancel.is_cancelled() {
                break;
            }
            // Many events at once make one pass.
            while !matches!(
                events.try_recv(),
                Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed)
            ) {}
        }
        self.in_flight.close();
        self.in_flight.wait().await;
    }

    /// Test hook: delivers everything due now and waits for the outcomes; each delivery is
    /// tried at most once per drain (a failed one waits for its backoff and a later drain).
    /// Returns how many deliveries were attempted.
    pub async fn drain(self: &Arc<Self>) -> anyhow::Result<usize> {
        let mut last = self.last_drain.lock().await;
        // Retries scheduled during the previous drain are due from the next millisecond on.
        while now_ms() <= *last {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // One instant for the whole drain: a delivery that fails during it is scheduled
        // after it, so it is not tried twice.
        let now = now_ms();
        let mut attempted = 0;
        loop {
            let claimed = self.pass(now).await?;
            self.in_flight.close();
            self.in_flight.wait().await;
            self.in_flight.reopen();
            if claimed == 0 {
                break;
            }
            attempted += claimed;
        }
        *last = now_ms();
        Ok(attempted)
    }

    /// Claims as many due deliveries as there are free slots and starts them.
    async fn pass(self: &Arc<Self>, now: i64) -> anyhow::Result<usize> {
        let free = self.permits.available_permits();
        if free == 0 {
            return Ok(0);
        }
        let limit = u32::try_from(free).unwrap_or(u32::MAX);
        let claimed = self
            .app
            .store
            .claim_callbacks(now, limit, self.lease_ms)
            .await?;
        let count = claimed.len();
        for callback in claimed {
            let permit = self.permits.clone().acquire_owned().await?;
            let worker = self.clone();
            self.in_flight.spawn(async move {
                worker.deliver(callback).await;
                drop(permit);
                worker.done.notify_one();
            });
        }
        Ok(count)
    }

    async fn deliver(&self, callback: ClaimedCallback) {
        let d = &callback.delivery;
        let result = match &callback.secret {
            // The endpoint was deleted after the event was queued.
            None => CallbackResult::Failed {
                response_status: None,
                error: "the endpoint was deleted".into(),
            },
            Some(secret) => self.post(d, secret).await,
        };
        self.app.metrics.callback(match &result {
            CallbackResult::Delivered { .. } => "delivered",
            CallbackResult::Retry { .. } => "retry",
            CallbackResult::Failed { .. } => "failed",
        });
        match &result {
            CallbackResult::Delivered { .. } => {}
            CallbackResult::Retry { error, .. } => tracing::debug!(
                delivery_id = d.id,
                url = d.url,
                attempt = d.attempts,
                error,
                "callback not delivered; will retry"
            ),
            CallbackResult::Failed { error, .. } => tracing::warn!(
                delivery_id = d.id,
                url = d.url,
                attempts = d.attempts,
                error,
                "callback given up"
            ),
        }
        let outcome = CallbackOutcome {
            id: d.id.clone(),
            attempt: d.attempts,
            now: now_ms(),
            result,
        };
        match self.app.store.finish_callback(&outcome).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                delivery_id = d.id,
                attempt = d.attempts,
                "outcome of a stale callback attempt dropped"
            ),
            Err(e) => tracing::error!(
                delivery_id = d.id,
                error = %e,
                "cannot record a callback's outcome"
            ),
        }
    }

    /// One signed POST of the delivery's payload.
    async fn post(&self, d: &CallbackDelivery, secret: &str) -> CallbackResult {
        let timestamp = now_ms() / 1000;
        let Some(signature) = signature(secret, &d.id, timestamp, &d.payload) else {
            return CallbackResult::Failed {
                response_status: None,
                error: "the signing secret is not a whsec_ secret".into(),
            };
        };
        let sent = self
            .client
            .post(&d.url)
            .header("webhook-id", &d.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .header(CONTENT_TYPE, "application/json")
            .body(d.payload.clone())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => CallbackResult::Delivered {
                response_status: i64::from(r.status().as_u16()),
            },
            Ok(r) => {
                let status = r.status();
                let retry_after = retry_after(r.headers());
                let body = r.text().await.unwrap_or_default();
                let mut error = format!("the endpoint answered {status}");
                let excerpt: String = body.trim().chars().take(ERROR_BODY_CHARS).collect();
                if !excerpt.is_empty() {
                    error = format!("{error}: {excerpt}");
                }
                self.after_failure(d, Some(i64::from(status.as_u16())), error, retry_after)
            }
            Err(e) => self.after_failure(d, None, self.describe(&e), None),
        }
    }

    /// Retry with backoff, or give up when the next attempt would fall past the age limit.
    fn after_failure(
        &self,
        d: &CallbackDelivery,
        response_status: Option<i64>,
        error: String,
        retry_after: Option<Duration>,
    ) -> CallbackResult {
        let attempt = u32::try_from(d.attempts).unwrap_or(u32::MAX);
        let delay = self
            .policy
            .next_delay(
                attempt,
                ErrorClass::Retry,
                retry_after,
                &mut rand::thread_rng(),
            )
            .unwrap_or(self.policy.max);
        match next_attempt_at(now_ms(), delay, d.created_at, self.max_age_ms) {
            Some(at) => CallbackResult::Retry {
                response_status,
                error,
                next_attempt_at: at,
            },
            None => CallbackResult::Failed {
                response_status,
                error,
            },
        }
    }

    /// What went wrong with a call that got no answer, without the URL (already known).
    fn describe(&self, e: &reqwest::Error) -> String {
        if e.is_timeout() {
            return format!("no answer within {} ms", self.timeout.as_millis());
        }
        let mut text = if e.is_connect() {
            "could not connect".to_string()
        } else {
            "the request failed".to_string()
        };
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        text
    }
}

/// `Retry-After` in seconds, when the answer has one.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}
