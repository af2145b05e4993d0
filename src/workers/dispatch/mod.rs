//! The dispatcher: takes queued messages, oldest first per channel, and hands them to the
//! channel's provider, never faster than the channel's rate.
//!
//! A pass claims, per channel with due jobs, the jobs whose pacer slots come within
//! `pacer::LOOKAHEAD` (a short write transaction that leases them), and never past the time this
//! instance's lease on the channel is sure to last; each job waits for its slot, checks the lease
//! again, is sent outside any transaction (late, only while the channel's sends leave room for
//! it, else it takes a new slot: `pacer::LATE`), and its outcome recorded with an update fenced
//! by the attempt number. What an error means is
//! decided by Meta's error class (`domain::meta_error`) and the retry policy
//! (`domain::retry`).

pub mod pacer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::{App, Event};
use crate::domain::meta_error::{
    CODE_MARKETING_LIMIT, CODE_MARKETING_OPTED_OUT, CODE_OPTED_OUT, ErrorClass, MetaError,
};
use crate::domain::quiet_hours;
use crate::domain::retry::{RetryPolicy, marketing_retry_delay};
use crate::domain::status::MessageStatus;
use crate::provider::Provider;
use crate::provider::cloud::CloudProvider;
use crate::provider::sandbox::Sandbox;
use crate::service::inbound::statuses as status;
use crate::service::suppressions;
use crate::store::{
    AttemptOutcome, AttemptResult, Channel, ClaimedJob, Finished, HELD_MESSAGING_LIMIT,
    HELD_QUIET_HOURS, ProviderError, ProviderKind, StatusUpdate, StoreResult,
};
use pacer::{Pacer, Slot};

/// Longest the dispatcher sleeps when nothing wakes it.
const IDLE_POLL: Duration = Duration::from_secs(1);

type Pacers = Arc<Mutex<HashMap<String, Pacer>>>;

/// Channels this instance holds, and until when (ms, the app's clock).
type Owned = Arc<Mutex<HashMap<String, i64>>>;

/// How long before this instance's lease on a channel ends its last message must have left:
/// another instance may take the channel the moment the lease ends, and the two must not
/// send at once (a message sent at its slot reaches the provider a few milliseconds later).
const HANDOVER_MARGIN_MS: i64 = 100;

pub struct Dispatcher {
    app: App,
    /// This instance's name in `channel_owners`.
    owner: String,
    /// Channels this instance holds, and until when (ms): renewed at half-life, so a busy
    /// channel costs one write per half lease, not one per pass.
    owned: Owned,
    sandbox: Arc<Sandbox>,
    cloud: Arc<CloudProvider>,
    pacers: Pacers,
    policy: RetryPolicy,
    in_flight: TaskTracker,
    crash_after_send: Arc<AtomicBool>,
}

impl Dispatcher {
    pub fn new(app: App, sandbox: Arc<Sandbox>, cloud: Arc<CloudProvider>) -> Self {
        let c = &app.config;
        let policy = RetryPolicy {
            initial: Duration::from_millis(c.retry_initial_ms),
            max: Duration::from_millis(c.retry_max_ms),
            max_attempts: c.retry_max_attempts,
        };
        Self {
            app,
            owner: crate::domain::ids::new_id("inst"),
            owned: Arc::new(Mutex::new(HashMap::new())),
            sandbox,
            cloud,
            pacers: Arc::new(Mutex::new(HashMap::new())),
            policy,
            in_flight: TaskTracker::new(),
            crash_after_send: Arc::new(AtomicBool::new(false)),
        }
    }

    fn provider_for(&self, kind: ProviderKind) -> Arc<dyn Provider> {
        match kind {
            ProviderKind::Sandbox => self.sandbox.clone(),
            ProviderKind::Cloud => self.cloud.clone(),
        }
    }

    fn channel_lease_ms(&self) -> i64 {
        i64::try_from(self.app.config.channel_lease_ms).unwrap_or(5_000)
    }

    fn orphan_wait_ms(&self) -> i64 {
        i64::try_from(self.app.config.reconcile_window_ms).unwrap_or(i64::MAX / 4)
    }

    /// Test hook: when on, sends stop right after the provider call, before the outcome is
    /// written, as if the process died there.
    #[doc(hidden)]
    pub fn set_crash_after_send(&self, on: bool) {
        self.crash_after_send.store(on, Ordering::SeqCst);
    }

    /// The rate a channel is sending at now (lower than configured after 130429s).
    pub fn effective_rate(&self, channel_id: &str) -> Option<f64> {
        let pacers = self.pacers.lock().expect("pacers lock");
        pacers.get(channel_id).map(Pacer::effective_rate)
    }

    /// Runs passes until `cancel`, then waits for in-flight sends to record their outcome.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let _running = Running::mark(&self.app);
        'passes: loop {
            let wait = match self.pass().await {
                Ok(pacing) => self.until_next(pacing).await,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "dispatcher pass failed");
                    IDLE_POLL
                }
            };
            let until = tokio::time::Instant::now() + wait;
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break 'passes,
                    _ = self.app.wake.notified() => {
                        if self.wake_needs_pass() {
                            break;
                        }
                    }
                    _ = tokio::time::sleep_until(until) => break,
                }
            }
        }
        self.in_flight.close();
        self.in_flight.wait().await;
        self.release().await;
    }

    /// Whether what woke the dispatcher calls for a pass now. Not when it only tells of
    /// messages queued for channels this instance holds and whose pacer lets nothing go yet:
    /// that pass would send nothing (under load it would read the queue once per send), and
    /// the timer set after the last pass ends the wait when the pacer allows more. Nor when
    /// it tells nothing: its reasons were taken, and judged, at an earlier wake.
    fn wake_needs_pass(&self) -> bool {
        let reasons = self.app.take_wakes();
        if reasons.any {
            return true;
        }
        let ttl = i64::try_from(self.app.config.channel_lease_ms).unwrap_or(5_000);
        let now_ms = self.app.clock.now_ms();
        let held: Vec<bool> = {
            let owned = self.owned.lock().expect("owned lock");
            reasons
                .channels
                .iter()
                .map(|c| owned.get(c).is_some_and(|until| until - now_ms > ttl / 2))
                .collect()
        };
        let now = Instant::now();
        let pacers = self.pacers.lock().expect("pacers lock");
        reasons.channels.iter().zip(held).any(|(c, held)| {
            // The pass asks the pacer the same.
            let paced = pacers.get(c).is_some_and(|p| !p.refill_in(now).is_zero());
            !(held && paced)
        })
    }

    /// Gives up this instance's channels, so another instance sends for them at once.
    pub async fn release(&self) {
        self.owned.lock().expect("owned lock").clear();
        if let Err(e) = self.app.store.release_channels(&self.owner).await {
            tracing::warn!(error = %e, "could not release this instance's channels");
        }
    }

    /// Whether this instance may send for `channel_id` now (taking or renewing the lease).
    async fn owns(&self, channel_id: &str) -> anyhow::Result<bool> {
        let ttl = self.channel_lease_ms();
        let now = self.app.clock.now_ms();
        let held_until = self
            .owned
            .lock()
            .expect("owned lock")
            .get(channel_id)
            .copied();
        if held_until.is_some_and(|until| until - now > ttl / 2) {
            return Ok(true);
        }
        let owns = self
            .app
            .store
            .own_channel(channel_id, &self.owner, now, ttl)
            .await?;
        let mut owned = self.owned.lock().expect("owned lock");
        if owns {
            owned.insert(channel_id.to_string(), now + ttl);
        } else {
            owned.remove(channel_id);
        }
        Ok(owns)
    }

    /// How long this instance's lease on `channel_id` is sure to last, less the handover
    /// margin: a claimed message's slot must come before then.
    fn lease_left(&self, channel_id: &str) -> Duration {
        let until = self
            .owned
            .lock()
            .expect("owned lock")
            .get(channel_id)
            .copied();
        let left = until.map_or(0, |until| {
            until - self.app.clock.now_ms() - HANDOVER_MARGIN_MS
        });
        Duration::from_millis(u64::try_from(left).unwrap_or(0))
    }

    /// How long to sleep, at most `IDLE_POLL`: until pacing allows more or another instance's
    /// channel may be free (`waiting`), else until the next job is due.
    async fn until_next(&self, waiting: Option<Duration>) -> Duration {
        if let Some(wait) = waiting {
            // Jobs are due but not ours to send now: looking at `next_due` would spin.
            return wait.min(IDLE_POLL);
        }
        match self.app.store.next_due(self.orphan_wait_ms()).await {
            Ok(Some(at)) => {
                Duration::from_millis(u64::try_from(at - self.app.clock.now_ms()).unwrap_or(0))
                    .min(IDLE_POLL)
            }
            _ => IDLE_POLL,
        }
    }

    /// Test hook: one pass, then waits until its sends have recorded their outcome.
    pub async fn pass_and_settle(&self) -> anyhow::Result<()> {
        self.pass().await?;
        self.settle().await;
        Ok(())
    }

    /// Test hook: waits until the jobs already claimed have been sent (each at its slot) and
    /// their outcomes recorded; no pass is made.
    pub async fn settle(&self) {
        self.in_flight.close();
        self.in_flight.wait().await;
        self.in_flight.reopen();
    }

    /// Test hook: runs passes until no job is left (waiting for scheduled retries and for
    /// pacing), then until the sandbox's statuses are applied.
    pub async fn drain(&self) -> anyhow::Result<()> {
        loop {
            let pacing = self.pass().await?;
            self.in_flight.close();
            self.in_flight.wait().await;
            self.in_flight.reopen();
            // Jobs of halted or disconnected channels are not due: they do not hold this up;
            // nor do scheduled and held ones (due later than a retry's backoff in tests).
            let horizon = self.app.clock.now_ms() + DRAIN_HORIZON_MS;
            if self
                .app
                .store
                .next_due(self.orphan_wait_ms())
                .await?
                .is_none_or(|at| at > horizon)
            {
                break;
            }
            let wait = self.until_next(pacing).await;
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
        self.sandbox.settle().await;
        Ok(())
    }

    /// One pass over the channels with due jobs. Returns how long until more may go, when a
    /// channel still had jobs waiting for its rate or for another instance's lease.
    pub async fn pass(&self) -> anyhow::Result<Option<Duration>> {
        let store = &self.app.store;
        let mut next: Option<Duration> = None;
        let mut note = |d: Duration| next = Some(next.map_or(d, |n: Duration| n.min(d)));
        let mut wanted: Vec<(Channel, u32)> = Vec::new();
        for channel_id in store
            .due_channels(self.app.clock.now_ms(), self.orphan_wait_ms())
            .await?
        {
            if !self.owns(&channel_id).await? {
                // Another instance sends for it; look again when its lease may have lapsed.
                note(
                    Duration::from_millis(self.app.config.channel_lease_ms / 4)
                        .max(Duration::from_millis(10)),
                );
                continue;
            }
            let Some(channel) = store.channel(&channel_id).await? else {
                continue;
            };
            let rate = channel_rate(&channel);
            // Claimed no further ahead than the lease is sure to last (see `Deliverer::may_send`).
            let lease_left = self.lease_left(&channel.id);
            let now = Instant::now();
            let allowed = {
                let mut pacers = self.pacers.lock().expect("pacers lock");
                let pacer = pacers
                    .entry(channel.id.clone())
                    .or_insert_with(|| Pacer::new(rate, now));
                pacer.set_rate(rate);
                // What was claimed before still covers the time until `refill`: claiming
                // now would take only a slot or two.
                let refill = pacer.refill_in(now);
                if refill.is_zero() {
                    let horizon = now + pacer::LOOKAHEAD.min(lease_left);
                    pacer.ahead(now, horizon, self.app.config.dispatch_batch)
                } else {
                    note(refill);
                    0
                }
            };
            if allowed == 0 {
                continue;
            }
            wanted.push((channel, allowed));
        }
        if wanted.is_empty() {
            return Ok(next);
        }
        // One claim for every channel that may send now (one transaction on SQLite).
        let lease_ms = i64::try_from(self.app.config.dispatch_lease_ms).unwrap_or(30_000);
        let asks: Vec<(String, u32)> = wanted
            .iter()
            .map(|(channel, allowed)| (channel.id.clone(), *allowed))
            .collect();
        let now = self.app.clock.now_ms();
        let claimed = store
            .claim_many(&asks, now, lease_ms, self.orphan_wait_ms())
            .await?;
        for ((channel, allowed), jobs) in wanted.into_iter().zip(claimed) {
            let jobs = self.hold(&channel, jobs, now).await?;
            let claimed = u32::try_from(jobs.len()).unwrap_or(u32::MAX).min(allowed);
            // The slots are taken now the jobs are claimed, from now: slots taken before the
            // claim would have passed while it ran, and their jobs would all go at once.
            let slots = {
                let mut pacers = self.pacers.lock().expect("pacers lock");
                let now = Instant::now();
                let pacer = pacers
                    .entry(channel.id.clone())
                    .or_insert_with(|| Pacer::new(channel_rate(&channel), now));
                let slots = pacer.take_slots(now, claimed);
                if claimed == allowed {
                    note(pacer.refill_in(now));
                }
                slots
            };
            let provider = self.provider_for(channel.provider);
            let channel = Arc::new(channel);
            for (job, slot) in jobs.into_iter().zip(slots) {
                let deliverer = Deliverer {
                    app: self.app.clone(),
                    policy: self.policy,
                    pacers: self.pacers.clone(),
                    owned: self.owned.clone(),
                    owner: self.owner.clone(),
                    provider: provider.clone(),
                    channel: channel.clone(),
                    crash_after_send: self.crash_after_send.clone(),
                };
                self.in_flight
                    .spawn(async move { deliverer.deliver(job, slot).await });
            }
        }
        Ok(next)
    }
}

/// A channel's configured rate, in messages per second.
fn channel_rate(channel: &Channel) -> u32 {
    u32::try_from(channel.messages_per_second).unwrap_or(1)
}

/// `drain` does not wait for jobs due later than this (scheduled or held messages).
const DRAIN_HORIZON_MS: i64 = 5_000;

/// The messaging limit's rolling window.
const DAY_MS: i64 = 24 * 3600 * 1000;

impl Dispatcher {
    /// Gives back, until they may go, claimed jobs that must wait: MARKETING ones inside the
    /// account's quiet hours in the recipient's local time, and new conversations beyond the
    /// channel's messaging limit. Returns the jobs to send now.
    async fn hold(
        &self,
        channel: &Channel,
        jobs: Vec<ClaimedJob>,
        now: i64,
    ) -> anyhow::Result<Vec<ClaimedJob>> {
        if jobs.is_empty() {
            return Ok(jobs);
        }
        let store = &self.app.store;
        let quiet = if jobs
            .iter()
            .any(|j| j.template.category.eq_ignore_ascii_case("MARKETING"))
        {
            store
                .account(&channel.account_id)
                .await?
                .and_then(|a| a.quiet_hours)
        } else {
            None
        };
        // Which claimed jobs start a new conversation (only counted when there is a limit).
        let mut new = Vec::with_capacity(jobs.len());
        if channel.messaging_limit.is_some() {
            for job in &jobs {
                let conversation = store.conversation(&job.message.conversation_id).await?;
                new.push(conversation.is_some_and(|c| {
                    c.first_message_id.as_deref() == Some(job.message.id.as_str())
                }));
            }
        }
        let claimed_new = i64::try_from(new.iter().filter(|n| **n).count()).unwrap_or(0);
        let mut keep = Vec::with_capacity(jobs.len());
        let mut held: Vec<(ClaimedJob, i64, &'static str)> = Vec::new();
        let mut room: Option<(i64, i64)> = None;
        for (i, job) in jobs.into_iter().enumerate() {
            let quiet_until = quiet
                .filter(|_| job.template.category.eq_ignore_ascii_case("MARKETING"))
                .and_then(|(start, end)| {
                    let zone = quiet_hours::zone_of(&job.message.phone_number, now)?;
                    quiet_hours::release_at(start, end, zone, now)
                });
            if let Some(until) = quiet_until {
                held.push((job, until, HELD_QUIET_HOURS));
                continue;
            }
            if let (Some(limit), true) = (channel.messaging_limit, new.get(i) == Some(&true)) {
                if room.is_none() {
                    // The claim counted its own new conversations already (their
                    // `sending_at` is now): the room is what was left before it.
                    let recent = store.new_recipients(&channel.id, now - DAY_MS).await?;
                    let until = recent
                        .oldest
                        .map(|t| t + DAY_MS)
                        .filter(|t| *t > now)
                        .unwrap_or(now + 1000);
                    room = Some((limit - (recent.count - claimed_new), until));
                }
                let (left, until) = room.as_mut().expect("set above");
                if *left <= 0 {
                    let until = *until;
                    held.push((job, until, HELD_MESSAGING_LIMIT));
                    continue;
                }
                *left -= 1;
            }
            keep.push(job);
        }
        for (job, until, reason) in held {
            tracing::info!(
                message_id = job.message.id,
                until = crate::format_ms(until),
                reason,
                "message held"
            );
            store
                .hold_job(&job.message.id, job.attempt, until, reason, now)
                .await?;
        }
        Ok(keep)
    }
}

/// Marks the dispatcher running (for `/readyz`) until dropped, however `run` ends.
struct Running(App);

impl Running {
    fn mark(app: &App) -> Self {
        app.run_state.set_dispatcher_running(true);
        Self(app.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.run_state.set_dispatcher_running(false);
    }
}

/// What a spawned send needs.
struct Deliverer {
    app: App,
    policy: RetryPolicy,
    pacers: Pacers,
    /// The dispatcher's leases on channels, and its name in `channel_owners`.
    owned: Owned,
    owner: String,
    provider: Arc<dyn Provider>,
    channel: Arc<Channel>,
    crash_after_send: Arc<AtomicBool>,
}

impl Deliverer {
    /// Whether the job is sent now (`None`: the pacer counts it as sent), else when to ask
    /// again ([`Pacer::go`]: a job past its slot goes while the channel's sends leave room,
    /// else waits for room or, more than `pacer::LATE` late, takes the next free slot).
    fn go(&self, slot: &mut Slot) -> Option<Instant> {
        let mut pacers = self.pacers.lock().expect("pacers lock");
        pacers
            .get_mut(&self.channel.id)
            .and_then(|pacer| pacer.go(slot, Instant::now()))
    }

    /// Whether this instance still holds the channel, with `HANDOVER_MARGIN_MS` to spare, now
    /// that the job's slot has come. The pass claims no further ahead than that, but a late
    /// pass or a slow claim may have pushed the slot past it: the lease is then renewed, and
    /// when another instance holds the channel (this one's lease lapsed) the job does not
    /// go: it stays leased, and is sent again as an orphan once its lease has passed.
    async fn may_send(&self) -> bool {
        let now = self.app.clock.now_ms();
        let until = self
            .owned
            .lock()
            .expect("owned lock")
            .get(&self.channel.id)
            .copied();
        if until.is_some_and(|until| until - now >= HANDOVER_MARGIN_MS) {
            return true;
        }
        let ttl = i64::try_from(self.app.config.channel_lease_ms).unwrap_or(5_000);
        match self
            .app
            .store
            .own_channel(&self.channel.id, &self.owner, now, ttl)
            .await
        {
            Ok(true) => {
                let mut owned = self.owned.lock().expect("owned lock");
                let until = owned.entry(self.channel.id.clone()).or_insert(now + ttl);
                *until = (*until).max(now + ttl);
                true
            }
            Ok(false) => {
                self.owned
                    .lock()
                    .expect("owned lock")
                    .remove(&self.channel.id);
                false
            }
            Err(e) => {
                tracing::error!(channel_id = self.channel.id, error = %e, "cannot renew the lease on a channel");
                false
            }
        }
    }

    async fn deliver(&self, job: ClaimedJob, mut slot: Slot) {
        let message_id = job.message.id.clone();
        let attempt = job.attempt;
        // A MARKETING message accepted (or scheduled) before its number opted out is not
        // sent: it fails with plantilla's own code instead.
        let mut opted_out = None;
        let mut next = slot.at;
        loop {
            tokio::time::sleep_until(next.into()).await;
            if !self.may_send().await {
                tracing::warn!(
                    message_id,
                    channel_id = self.channel.id,
                    "another instance took the channel before this message's slot; it goes once its lease has passed"
                );
                return;
            }
            if opted_out.is_none() {
                opted_out = Some(self.opted_out_of_marketing(&job).await);
            }
            // Asked right before the send: the lease's renewal or the suppression list may
            // have taken a while.
            match self.go(&mut slot) {
                None => break,
                Some(at) => next = at,
            }
        }
        let sent = if opted_out == Some(true) {
            Err(None)
        } else {
            self.provider.send(&self.channel, &job).await.map_err(Some)
        };
        if self.crash_after_send.load(Ordering::SeqCst) {
            return;
        }
        let result = match sent {
            Err(None) => AttemptResult::Failed {
                error: ProviderError {
                    code: CODE_OPTED_OUT,
                    title: "Recipient opted out of marketing messages".into(),
                    details: Some(
                        "the number is on the account's suppression list; nothing was sent".into(),
                    ),
                },
            },
            Ok(accepted) => AttemptResult::Accepted {
                provider_message_id: accepted.provider_message_id,
                wa_id: accepted.wa_id,
            },
            Err(Some(e)) => self.on_error(&e, &job).await,
        };
        let failed = matches!(result, AttemptResult::Failed { .. });
        // Meta's 131050: the user stopped marketing messages from the business.
        let opted_out = match &result {
            AttemptResult::Failed { error } if error.code == CODE_MARKETING_OPTED_OUT => {
                Some(error.details.clone())
            }
            _ => None,
        };
        let outcome = AttemptOutcome {
            message_id: message_id.clone(),
            attempt,
            now: self.app.clock.now_ms(),
            result,
        };
        // An accepted outcome comes back with the statuses that arrived before it (kept
        // until its provider id was known), taken in the same write where the store can.
        match self.app.store.finish_and_take_kept(&outcome).await {
            Ok((Finished::Recorded { conversation }, kept)) => {
                if failed {
                    self.app.publish(Event::MessageStatus {
                        message_id: message_id.clone(),
                        status: MessageStatus::Failed,
                    });
                }
                if let Some((conversation_id, status)) = conversation {
                    self.app.publish(Event::ConversationStatus {
                        conversation_id,
                        status,
                    });
                }
                self.apply_early_statuses(kept, &message_id).await;
                if let Some(details) = opted_out
                    && let Err(e) = suppressions::on_meta_opt_out(
                        &self.app,
                        &job.message.account_id,
                        &job.message.channel_id,
                        &job.message.phone_number,
                        details.as_deref(),
                    )
                    .await
                {
                    tracing::error!(message_id, error = %e, "cannot add an opted-out number to the suppression list");
                }
            }
            Ok((Finished::Stale, _)) => {
                tracing::warn!(message_id, attempt, "outcome of a stale attempt dropped");
            }
            Err(e) => {
                tracing::error!(message_id, attempt, error = %e, "cannot record a send's outcome");
            }
        }
    }

    /// Whether `job` is a MARKETING message to a number on its account's suppression list
    /// (the list is read as the message goes; an error reading it lets the message go).
    async fn opted_out_of_marketing(&self, job: &ClaimedJob) -> bool {
        if !job.template.category.eq_ignore_ascii_case("MARKETING") {
            return false;
        }
        match suppressions::is_suppressed(
            &self.app,
            &job.message.account_id,
            &job.message.phone_number,
        )
        .await
        {
            Ok(suppressed) => suppressed,
            Err(e) => {
                tracing::error!(message_id = job.message.id, error = %e, "cannot read the suppression list");
                false
            }
        }
    }

    /// Statuses that arrived before the message's provider id was known (none but for an
    /// accepted outcome).
    async fn apply_early_statuses(&self, kept: StoreResult<Vec<StatusUpdate>>, message_id: &str) {
        match kept {
            Ok(updates) => {
                for update in updates {
                    if let Err(e) = status::apply(&self.app, &update).await {
                        tracing::error!(message_id, error = %e, "cannot apply a kept status");
                    }
                }
            }
            Err(e) => tracing::error!(message_id, error = %e, "cannot read kept statuses"),
        }
    }

    async fn on_error(&self, e: &MetaError, job: &ClaimedJob) -> AttemptResult {
        let error = ProviderError {
            code: e.code,
            title: e.title.clone(),
            details: Some(e.description().to_string()),
        };
        let class = e.class();
        self.app.metrics.provider_error(e.code);
        let tries = u32::try_from(job.message.attempts).unwrap_or(u32::MAX);
        tracing::warn!(
            message_id = job.message.id,
            channel_id = self.channel.id,
            code = e.code,
            class = %class,
            tries,
            "provider error"
        );
        let now = self.app.clock.now_ms();
        let at = |delay: Duration| now + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 4);
        match class {
            ErrorClass::Permanent => AttemptResult::Failed { error },
            ErrorClass::MarketingLimit => {
                // Retried hours later on its own schedule: how many times Meta declined this
                // message so before decides which delay comes next.
                let declined_before = match self.app.store.message_attempts(&job.message.id).await {
                    Ok(attempts) => attempts
                        .iter()
                        .filter(|a| {
                            a.error
                                .as_ref()
                                .is_some_and(|e| e.code == CODE_MARKETING_LIMIT)
                        })
                        .count(),
                    Err(err) => {
                        tracing::error!(error = %err, "cannot read the message's attempts");
                        usize::MAX
                    }
                };
                match marketing_retry_delay(
                    &self.app.config.marketing_retry_schedule(),
                    declined_before,
                ) {
                    Some(delay) => AttemptResult::Retry {
                        run_at: at(delay),
                        error,
                    },
                    None => AttemptResult::Failed { error },
                }
            }
            ErrorClass::ChannelHalt => {
                tracing::error!(
                    channel_id = self.channel.id,
                    code = e.code,
                    title = e.title,
                    "channel halted: its messages stay queued until an operator updates the channel"
                );
                if let Err(err) = self
                    .app
                    .store
                    .set_channel_health(&self.channel.id, Some(&error), self.app.clock.now_ms())
                    .await
                {
                    tracing::error!(error = %err, "cannot record the channel's health");
                }
                AttemptResult::Requeue {
                    run_at: self.app.clock.now_ms(),
                    error,
                }
            }
            _ => {
                let delay =
                    self.policy
                        .next_delay(tries, class, e.retry_after, &mut rand::thread_rng());
                if class == ErrorClass::RetryChannel {
                    let pause = delay.unwrap_or(self.policy.initial);
                    let mut pacers = self.pacers.lock().expect("pacers lock");
                    if let Some(pacer) = pacers.get_mut(&self.channel.id) {
                        pacer.throttle(Instant::now(), pause);
                    }
                }
                match delay {
                    Some(delay) => AttemptResult::Retry {
                        run_at: at(delay),
                        error,
                    },
                    None => AttemptResult::Failed { error },
                }
            }
        }
    }
}
