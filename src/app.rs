//! The application handle every adapter shares: storage, configuration, the event stream and
//! the dispatcher's wake-up.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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

#[derive(Clone)]
pub struct App {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
    pub events: broadcast::Sender<Event>,
    /// Rung when a message is queued, so the dispatcher does not wait for its next tick.
    pub wake: Arc<Notify>,
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

/// Whether the process is doing its work: set by the dispatcher and the shutdown.
#[derive(Debug, Default)]
pub struct RunState {
    dispatcher_running: AtomicBool,
    stopping: AtomicBool,
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
        Ok(App {
            store,
            graph: Arc::new(CloudProvider::new(&config)?),
            metrics: Arc::new(Metrics::default()),
            run_state: Arc::new(RunState::default()),
            rate_limiter: Arc::new(RateLimiter::new(config.token_rate_per_sec)),
            config: Arc::new(config),
            events,
            wake: Arc::new(Notify::new()),
            clock: Arc::new(Clock::default()),
        })
    }

    pub fn publish(&self, event: Event) {
        // No subscriber is fine.
        let _ = self.events.send(event);
    }
}
