//! The sandbox: an in-process simulator of WhatsApp. It accepts every send, answers with a
//! `wamid.…`, and then reports `sent`, `delivered` and `read` a configurable delay apart
//! through the same status path as real webhooks. Numbers ending in `0000` are reported
//! `failed` with Meta's 131026 (message undeliverable).

use std::time::Duration;

use async_trait::async_trait;
use rand::RngCore;
use tokio_util::task::TaskTracker;

use super::{Accepted, Provider};
use crate::app::App;
use crate::domain::meta_error::MetaError;
use crate::domain::status::MessageStatus;
use crate::now_ms;
use crate::service::status;
use crate::store::{Channel, ClaimedJob, ProviderError, StatusUpdate};

pub struct Sandbox {
    app: App,
    delay: Duration,
    tasks: TaskTracker,
}

/// Meta's error for a number that cannot receive the message.
pub fn undeliverable() -> ProviderError {
    ProviderError {
        code: 131026,
        title: "Message undeliverable".into(),
        details: Some(
            "Unable to deliver message. The recipient may not be a WhatsApp user (sandbox: numbers ending in 0000)."
                .into(),
        ),
    }
}

impl Sandbox {
    pub fn new(app: App, delay: Duration) -> Self {
        Self {
            app,
            delay,
            tasks: TaskTracker::new(),
        }
    }

    /// Waits until every status the sandbox has scheduled so far has been applied.
    pub async fn settle(&self) {
        self.tasks.close();
        self.tasks.wait().await;
        self.tasks.reopen();
    }
}

#[async_trait]
impl Provider for Sandbox {
    async fn send(&self, channel: &Channel, job: &ClaimedJob) -> Result<Accepted, MetaError> {
        let mut bytes = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut bytes);
        let wamid = format!("wamid.{}", hex::encode(bytes));
        let fails = job.message.phone_number.ends_with("0000");
        let steps: Vec<(MessageStatus, Option<ProviderError>)> = if fails {
            vec![(MessageStatus::Failed, Some(undeliverable()))]
        } else {
            vec![
                (MessageStatus::Sent, None),
                (MessageStatus::Delivered, None),
                (MessageStatus::Read, None),
            ]
        };
        let app = self.app.clone();
        let delay = self.delay;
        let message_id = job.message.id.clone();
        let channel_id = channel.id.clone();
        let provider_message_id = wamid.clone();
        self.tasks.spawn(async move {
            for (status, error) in steps {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                let update = StatusUpdate {
                    provider_message_id: Some(provider_message_id.clone()),
                    message_id: Some(message_id.clone()),
                    status,
                    at: now_ms(),
                    error,
                    pricing_category: Some("utility".into()),
                    channel_id: Some(channel_id.clone()),
                };
                if let Err(e) = status::apply(&app, &update).await {
                    tracing::error!(error = %e, message_id, "sandbox could not apply a status");
                }
            }
        });
        Ok(Accepted {
            provider_message_id: wamid,
            wa_id: Some(job.message.phone_number.clone()),
        })
    }
}
