//! The application handle every adapter shares: storage, configuration, the event stream and
//! the dispatcher's wake-up.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, broadcast};

use crate::clock::Clock;
use crate::config::Config;
use crate::domain::rate_limit::RateLimiter;
use crate::domain::status::{ConversationStatus, MessageStatus};
use crate::metrics::Metrics;
use crate::provider::cloud::CloudProvider;
use crate::store::Store;

/// Something that happened to a message or conversation, published after it is committed.
/// Tests subscribe to it; the callback worker takes it as a wake-up (the callbacks themselves
/// are written to the outbox in the change's own transaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    MessageStatus {
        message_id: String,
        status: MessageStatus,
    },
    ConversationStatus {
        conversation_id: String,
        status: ConversationStatus,
    },
}

/// Cheap to clone (one reference count): handlers, workers and every delivery take their own.
/// Its parts are reached through [`AppParts`] (`app.store`, `app.config`, …).
#[derive(Clone)]
pub struct App(Arc<AppParts>);

impl std::ops::Deref for App {
    type Target = AppParts;
    fn deref(&self) -> &AppParts {
        &self.0
    }
}

#[derive(Clone)]
pub struct AppParts {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
    pub events: broadcast::Sender<Event>,
    /// Rung when a message is queued, so the dispatcher does not wait for its next tick:
    /// through [`App::wake_dispatcher`] or [`App::wake_for_channel`], which say why.
    pub wake: Arc<Notify>,
    /// Why the dispatcher was woken since it last looked.
    pub wakes: Arc<Wakes>,
    /// The WhatsApp Cloud API client (sends, template sync).
    pub graph: Arc<CloudProvider>,
    /// Counters and histograms for `GET /metrics`.
    pub metrics: Arc<Metrics>,
    /// What `GET /readyz` reports besides the database.
    pub run_state: Arc<RunState>,
    /// The template API's per-token request limit.
    pub rate_limiter: Arc<RateLimiter>,
    /// The time sends are scheduled and dispatched by (tests move it).
    pub clock: Arc<Clock>,
}

/// Why the dispatcher was woken since it last looked ([`App::take_wakes`]): messages queued
/// for some channels, or anything else (`any`: a pass is due whatever the channels' pacing).
#[derive(Debug, Default)]
pub struct Wakes(Mutex<WakeReasons>);

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WakeReasons {
    pub any: bool,
    pub channels: Vec<String>,
}

/// Channels a wake names at most; past that it counts as `any`.
const MAX_WAKE_CHANNELS: usize = 64;

/// Whether the process is doing its work: set by the dispatcher and the shutdown.
#[derive(Debug, Default)]
pub struct RunState {
    dispatcher_running: AtomicBool,
    stopping: AtomicBool,
}

impl WakeReasons {
    fn channel(&mut self, channel_id: &str) {
        if self.any || self.channels.iter().any(|c| c == channel_id) {
            return;
        }
        if self.channels.len() < MAX_WAKE_CHANNELS {
            self.channels.push(channel_id.to_string());
        } else {
            self.any = true;
        }
    }
}

impl Wakes {
    fn lock(&self) -> std::sync::MutexGuard<'_, WakeReasons> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl RunState {
    pub fn dispatcher_running(&self) -> bool {
        self.dispatcher_running.load(Ordering::SeqCst)
    }
    pub fn set_dispatcher_running(&self, running: bool) {
        self.dispatcher_running.store(running, Ordering::SeqCst);
    }
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
    pub fn set_stopping(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }
}

impl App {
    pub async fn open(config: Config) -> anyhow::Result<App> {
        let store = crate::store::open(&config).await?;
        Self::with_store(store, config)
    }

    pub fn with_store(store: Arc<dyn Store>, config: Config) -> anyhow::Result<App> {
        let (events, _) = broadcast::channel(4096);
        Ok(App(Arc::new(AppParts {
            store,
            graph: Arc::new(CloudProvider::new(&config)?),
            metrics: Arc::new(Metrics::default()),
            run_state: Arc::new(RunState::default()),
            rate_limiter: Arc::new(RateLimiter::new(config.token_rate_per_sec)),
            config: Arc::new(config),
            events,
            wake: Arc::new(Notify::new()),
            wakes: Arc::new(Wakes::default()),
            clock: Arc::new(Clock::default()),
        })))
    }

    /// The same application on another clock (tests: two instances that move together).
    pub fn with_clock(&self, clock: Arc<Clock>) -> App {
        App(Arc::new(AppParts {
            clock,
            ..(*self.0).clone()
        }))
    }

    /// Wakes the dispatcher for a pass, whatever it knows of the channels' pacing.
    pub fn wake_dispatcher(&self) {
        self.wakes.lock().any = true;
        self.wake.notify_one();
    }

    /// Wakes the dispatcher for a message queued for `channel_id`: no pass is run for it
    /// while the dispatcher holds that channel and its pacer lets nothing go yet.
    pub fn wake_for_channel(&self, channel_id: &str) {
        self.wakes.lock().channel(channel_id);
        self.wake.notify_one();
    }

    /// Why the dispatcher was woken since the last call (then forgotten).
    pub fn take_wakes(&self) -> WakeReasons {
        std::mem::take(&mut *self.wakes.lock())
    }

    pub fn publish(&self, event: Event) {
        // No subscriber is fine.
        let _ = self.events.send(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wake_reasons_name_each_channel_once_and_too_many_mean_any() {
        let mut r = WakeReasons::default();
        r.channel("ch_a");
        r.channel("ch_b");
        r.channel("ch_a");
        assert_eq!(r.channels, ["ch_a", "ch_b"]);
        assert!(!r.any);
        for i in 0..MAX_WAKE_CHANNELS {
            r.channel(&format!("ch_{i}"));
        }
        assert!(r.any);
        assert_eq!(r.channels.len(), MAX_WAKE_CHANNELS);
    }
}
