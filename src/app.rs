//! The application handle every adapter shares: storage, configuration, the event stream and
//! the dispatcher's wake-up.

use std::sync::Arc;

use tokio::sync::{Notify, broadcast};

use crate::config::Config;
use crate::domain::status::{ConversationStatus, MessageStatus};
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
            config: Arc::new(config),
            events,
            wake: Arc::new(Notify::new()),
        })
    }

    pub fn publish(&self, event: Event) {
        // No subscriber is fine.
        let _ = self.events.send(event);
    }
}
