//! The dispatcher: takes queued messages, oldest first per channel, and hands them to the
//! channel's provider, never faster than the channel's rate.
//!
//! A pass claims, per channel with due jobs, as many jobs as the channel's pacer allows now
//! (a short write transaction that leases them), then sends each outside any transaction and
//! records the outcome with an update fenced by the attempt number.

pub mod pacer;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::{App, Event};
use crate::domain::meta_error::{ErrorClass, MetaError};
use crate::domain::retry::RetryPolicy;
use crate::domain::status::MessageStatus;
use crate::now_ms;
use crate::provider::Provider;
use crate::provider::sandbox::Sandbox;
use crate::store::{
    AttemptOutcome, AttemptResult, Channel, ClaimedJob, Finished, ProviderError, ProviderKind,
};
use pacer::Pacer;

/// How long the dispatcher sleeps when it has nothing due and nobody wakes it.
const IDLE_POLL: Duration = Duration::from_secs(1);

pub struct Dispatcher {
    app: App,
    sandbox: Arc<Sandbox>,
    pacers: Mutex<HashMap<String, Pacer>>,
    policy: RetryPolicy,
    in_flight: TaskTracker,
}

impl Dispatcher {
    pub fn new(app: App, sandbox: Arc<Sandbox>) -> Self {
        let c = &app.config;
        let policy = RetryPolicy {
            initial: Duration::from_millis(c.retry_initial_ms),
            max: Duration::from_millis(c.retry_max_ms),
            max_attempts: c.retry_max_attempts,
        };
        Self {
            app,
            sandbox,
            pacers: Mutex::new(HashMap::new()),
            policy,
            in_flight: TaskTracker::new(),
        }
    }

    fn provider_for(&self, kind: ProviderKind) -> Option<Arc<dyn Provider>> {
        match kind {
            ProviderKind::Sandbox => Some(self.sandbox.clone()),
            ProviderKind::Cloud => None,
        }
    }

    /// Runs passes until `cancel`, then waits for in-flight sends to record their outcome.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            let wait = match self.pass().await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "dispatcher pass failed");
                    Some(IDLE_POLL)
                }
            };
            let wait = wait.unwrap_or(IDLE_POLL).min(IDLE_POLL);
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.app.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        self.in_flight.close();
        self.in_flight.wait().await;
    }

    /// Test hook: runs passes until no job is due or in flight, and the sandbox's statuses
    /// are applied. Waits only for pacing (use generous rates in tests).
    pub async fn drain(&self) -> anyhow::Result<()> {
        loop {
            let wait = self.pass().await?;
            self.in_flight.close();
            self.in_flight.wait().await;
            self.in_flight.reopen();
            if self.app.store.due_channels(now_ms()).await?.is_empty() {
                break;
            }
            if let Some(wait) = wait {
                tokio::time::sleep(wait).await;
            }
        }
        self.sandbox.settle().await;
        Ok(())
    }

    /// One pass over the channels with due jobs. Returns how long until pacing lets more go,
    /// when a channel still had jobs waiting for its rate.
    pub async fn pass(&self) -> anyhow::Result<Option<Duration>> {
        let store = &self.app.store;
        let mut next: Option<Duration> = None;
        for channel_id in store.due_channels(now_ms()).await? {
            let Some(channel) = store.channel(&channel_id).await? else {
                continue;
            };
            if channel.status != "connected" {
                continue;
            }
            let Some(provider) = self.provider_for(channel.provider) else {
                continue;
            };
            let rate = u32::try_from(channel.messages_per_second).unwrap_or(1);
            let now = Instant::now();
            let allowed = {
                let mut pacers = self.pacers.lock().expect("pacers lock");
                let pacer = pacers
                    .entry(channel.id.clone())
                    .or_insert_with(|| Pacer::new(rate, now));
                pacer.set_rate(rate);
                let allowed = pacer.take(now, self.app.config.dispatch_batch);
                if allowed == 0 {
                    let wait = pacer.wait(now);
                    next = Some(next.map_or(wait, |n| n.min(wait)));
                }
                allowed
            };
            if allowed == 0 {
                continue;
            }
            let lease_ms =
                i64::try_from(self.app.config.dispatch_lease_secs * 1000).unwrap_or(30_000);
            let jobs = store
                .claim_jobs(&channel.id, allowed, now_ms(), lease_ms)
                .await?;
            let claimed = u32::try_from(jobs.len()).unwrap_or(u32::MAX);
            {
                let mut pacers = self.pacers.lock().expect("pacers lock");
                if let Some(pacer) = pacers.get_mut(&channel.id) {
                    pacer.give_back(allowed - claimed.min(allowed));
                    if claimed == allowed {
                        let wait = pacer.wait(Instant::now());
                        next = Some(next.map_or(wait, |n| n.min(wait)));
                    }
                }
            }
            let channel = Arc::new(channel);
            for job in jobs {
                let provider = provider.clone();
                let channel = channel.clone();
                let this = self.deliverer();
                self.in_flight.spawn(async move {
                    this.deliver(provider.as_ref(), &channel, job).await;
                });
            }
        }
        Ok(next)
    }

    fn deliverer(&self) -> Deliverer {
        Deliverer {
            app: self.app.clone(),
            policy: self.policy.clone(),
        }
    }
}

/// What a spawned send needs.
struct Deliverer {
    app: App,
    policy: RetryPolicy,
}

impl Deliverer {
    async fn deliver(&self, provider: &dyn Provider, channel: &Channel, job: ClaimedJob) {
        let message_id = job.message.id.clone();
        let attempt = job.attempt;
        let result = match provider.send(channel, &job).await {
            Ok(accepted) => AttemptResult::Accepted {
                provider_message_id: accepted.provider_message_id,
                wa_id: accepted.wa_id,
            },
            Err(e) => self.on_error(&e, attempt),
        };
        let failed = matches!(result, AttemptResult::Failed { .. });
        let outcome = AttemptOutcome {
            message_id: message_id.clone(),
            attempt,
            now: now_ms(),
            result,
        };
        match self.app.store.finish_attempt(&outcome).await {
            Ok(Finished::Recorded { conversation }) => {
                if failed {
                    self.app.publish(Event::MessageStatus {
                        message_id,
                        status: MessageStatus::Failed,
                    });
                }
                if let Some((conversation_id, status)) = conversation {
                    self.app.publish(Event::ConversationStatus {
                        conversation_id,
                        status,
                    });
                }
            }
            Ok(Finished::Stale) => {
                tracing::warn!(message_id, attempt, "outcome of a stale attempt dropped");
            }
            Err(e) => {
                tracing::error!(message_id, attempt, error = %e, "cannot record a send's outcome");
            }
        }
    }

    fn on_error(&self, e: &MetaError, attempt: i64) -> AttemptResult {
        let error = ProviderError {
            code: e.code,
            title: e.title.clone(),
            details: Some(e.description().to_string()),
        };
        let class = e.class();
        let attempt = u32::try_from(attempt).unwrap_or(u32::MAX);
        let delay = match class {
            ErrorClass::Permanent => None,
            // Not counted against the message: the channel, not the message, is at fault.
            ErrorClass::ChannelHalt => Some(self.policy.max),
            _ => self
                .policy
                .next_delay(attempt, class, e.retry_after, &mut rand::thread_rng()),
        };
        tracing::warn!(code = e.code, class = %class, attempt, "provider error");
        match delay {
            Some(delay) => AttemptResult::Retry {
                run_at: now_ms() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2),
                error,
            },
            None => AttemptResult::Failed { error },
        }
    }
}
