//! The sandbox: an in-process simulator of WhatsApp. It accepts every send, answers with a
//! `wamid.…`, and then reports `sent`, `delivered` and `read` a configurable delay apart
//! through the same status path as real webhooks. Numbers ending in `0000` are reported
//! `failed` with Meta's 131026 (message undeliverable). Media uploads are accepted (after the
//! same type and size checks as for cloud channels) and answer a simulated id.

use std::time::Duration;

use async_trait::async_trait;
use rand::RngCore;
use tokio_util::task::TaskTracker;

use super::{Accepted, MediaFile, Provider};
use crate::app::App;
use crate::domain::meta_error::MetaError;
use crate::domain::status::MessageStatus;
use crate::now_ms;
use crate::service::inbound::statuses as status;
use crate::store::{Channel, ClaimedJob, ProviderError, SimulatedMessage, StatusUpdate};

/// Most unfinished simulations picked up on start (the oldest first).
const RESUME_LIMIT: i64 = 100_000;

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

    /// Reports the statuses `message` has still to go through (`sent`, `delivered`, `read`;
    /// or `failed` for a number ending in 0000), the first after `first_wait`, the next ones
    /// `delay` apart.
    fn simulate(&self, message: SimulatedMessage, first_wait: Duration) {
        let steps: Vec<(MessageStatus, Option<ProviderError>)> =
            if message.phone_number.ends_with("0000") {
                vec![(MessageStatus::Failed, Some(undeliverable()))]
            } else {
                [
                    MessageStatus::Sent,
                    MessageStatus::Delivered,
                    MessageStatus::Read,
                ]
                .into_iter()
                .filter(|s| message.status.advances_to(*s))
                .map(|s| (s, None))
                .collect()
            };
        let app = self.app.clone();
        let delay = self.delay;
        self.tasks.spawn(async move {
            // Priced as Meta prices a template since July 2025: per message, in the
            // template's category.
            let category = sandbox_pricing_category(&app, &message.message_id).await;
            let pricing = crate::store::Pricing {
                pricing_type: Some("regular".into()),
                category: Some(category.clone()),
                pricing_model: Some("PMP".into()),
                billable: Some(true),
            };
            let mut wait = first_wait;
            for (status, error) in steps {
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                wait = delay;
                let update = StatusUpdate {
                    provider_message_id: Some(message.provider_message_id.clone()),
                    message_id: Some(message.message_id.clone()),
                    status,
                    at: now_ms(),
                    error,
                    pricing_category: Some(category.clone()),
                    pricing: (status != MessageStatus::Failed).then(|| pricing.clone()),
                    channel_id: Some(message.channel_id.clone()),
                };
                if let Err(e) = status::apply(&app, &update).await {
                    tracing::error!(error = %e, message_id = message.message_id, "sandbox could not apply a status");
                }
            }
        });
    }

    /// Picks up the simulations a previous process left unfinished (a kill -9 loses the
    /// timers, not the messages): every accepted sandbox message short of `read` gets its
    /// remaining statuses, the next one `delay` after its last change (at once when that has
    /// passed). Runs in the background; `settle` waits for it.
    pub fn resume(&self) {
        let this = Self {
            app: self.app.clone(),
            delay: self.delay,
            tasks: self.tasks.clone(),
        };
        self.tasks.spawn(async move {
            let unfinished = match this.app.store.sandbox_in_flight(RESUME_LIMIT).await {
                Ok(m) => m,
                Err(e) => {
                    tracing::error!(error = %e, "sandbox cannot resume its simulated statuses");
                    return;
                }
            };
            if !unfinished.is_empty() {
                tracing::info!(
                    messages = unfinished.len(),
                    "sandbox resumes the simulated statuses of accepted messages"
                );
            }
            let now = now_ms();
            for m in unfinished {
                let since = u64::try_from(now.saturating_sub(m.updated_at)).unwrap_or(0);
                let wait = this.delay.saturating_sub(Duration::from_millis(since));
                this.simulate(m, wait);
            }
        });
    }

    /// Waits until every status the sandbox has scheduled so far has been applied.
    pub async fn settle(&self) {
        self.tasks.close();
        self.tasks.wait().await;
        self.tasks.reopen();
    }
}

/// The sandbox's answer to an upload: a simulated media id (nothing is stored; sandbox sends
/// accept any id).
pub fn upload_media(_file: &MediaFile) -> String {
    format!("sandbox-media-{}", uuid::Uuid::now_v7().simple())
}

#[async_trait]
impl Provider for Sandbox {
    async fn upload_media(
        &self,
        _channel: &Channel,
        file: &MediaFile,
    ) -> Result<String, MetaError> {
        Ok(upload_media(file))
    }

    async fn send(&self, channel: &Channel, job: &ClaimedJob) -> Result<Accepted, MetaError> {
        let mut bytes = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut bytes);
        let wamid = format!("wamid.{}", hex::encode(bytes));
        self.simulate(
            SimulatedMessage {
                message_id: job.message.id.clone(),
                channel_id: channel.id.clone(),
                provider_message_id: wamid.clone(),
                phone_number: job.message.phone_number.clone(),
                status: MessageStatus::Sending,
                updated_at: now_ms(),
            },
            self.delay,
        );
        Ok(Accepted {
            provider_message_id: wamid,
            wa_id: Some(job.message.phone_number.clone()),
        })
    }
}

/// The pricing category (`marketing`, `utility`, `authentication`) of a sandbox message: its
/// template's category; `utility` when it cannot be read.
async fn sandbox_pricing_category(app: &App, message_id: &str) -> String {
    let template_id = match app.store.message(message_id).await {
        Ok(Some(m)) => m.template_id,
        _ => return "utility".into(),
    };
    match app.store.template(&template_id).await {
        Ok(Some(t)) => t.category.to_ascii_lowercase(),
        _ => "utility".into(),
    }
}
