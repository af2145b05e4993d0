//! Bulk sends: many recipients of one template through one channel, decided by the same rules
//! as a single send and stored one transaction per chunk.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::send::{self, SendError, SendOutcome, SendRequest};
use crate::api::messages as api;
use crate::app::{App, Event};
use crate::domain::ids::BatchId;
use crate::domain::status::MessageStatus;
use crate::now_ms;
use crate::store::{AcceptOutcome, AcceptSend, Batch, Channel, IdempotencyKey, StoreError};

/// Most recipients in one batch request.
pub const MAX_RECIPIENTS: usize = 10_000;
/// Recipients decided per transaction.
pub const CHUNK: usize = 500;

/// What happened to one recipient, in request order.
#[derive(Debug)]
pub enum RecipientResult {
    Accepted(SendOutcome),
    Rejected(SendError),
    /// The adapter could not parse this recipient (and says why itself).
    Unparsed,
}

#[derive(Debug)]
pub struct BatchOutcome {
    pub batch_id: BatchId,
    pub results: Vec<RecipientResult>,
}

impl BatchOutcome {
    pub fn accepted(&self) -> usize {
        self.results
            .iter()
            .filter(|r| {
                matches!(
                    r,
                    RecipientResult::Accepted(
                        SendOutcome::Sent { .. } | SendOutcome::Pending { .. }
                    )
                )
            })
            .count()
    }
}

/// A batch's id: random, or derived from its idempotency key so a retried batch is the same.
pub fn batch_id(idempotency: Option<&IdempotencyKey>) -> BatchId {
    match idempotency {
        Some(k) => {
            let digest = Sha256::digest(format!("{}\u{0}{}", k.scope, k.key).as_bytes());
            format!("{}_{}", BatchId::PREFIX, &hex::encode(digest)[..32]).into()
        }
        None => BatchId::generate(),
    }
}

/// The idempotency key of recipient `index` of a batch sent with key `batch_key`: each
/// recipient is idempotent on its own, so a retried batch resumes where it stopped.
fn recipient_key(
    batch_key: &IdempotencyKey,
    index: usize,
    request: &SendRequest,
) -> IdempotencyKey {
    let fingerprint = Sha256::digest(
        format!(
            "{}\u{0}{}\u{0}{:?}",
            batch_key.fingerprint, index, request.phone
        )
        .as_bytes(),
    );
    IdempotencyKey {
        scope: batch_key.scope.clone(),
        key: format!("{}#{index}", batch_key.key),
        fingerprint: hex::encode(fingerprint),
        expires_at: batch_key.expires_at,
    }
}

/// Sends `requests` (`None`: a recipient the adapter could not parse).
pub async fn send_batch(
    app: &App,
    channel: &Channel,
    requests: Vec<Option<SendRequest>>,
    idempotency: Option<IdempotencyKey>,
) -> Result<BatchOutcome, SendError> {
    let batch_id = batch_id(idempotency.as_ref());
    let total = requests.len();
    let mut results: Vec<Option<RecipientResult>> = (0..total).map(|_| None).collect();
    let mut prepared: Vec<(usize, AcceptSend)> = Vec::new();
    for (index, request) in requests.into_iter().enumerate() {
        let Some(mut request) = request else {
            results[index] = Some(RecipientResult::Unparsed);
            continue;
        };
        request.batch_id = Some(batch_id.to_string());
        request.idempotency = idempotency
            .as_ref()
            .map(|k| recipient_key(k, index, &request));
        match send::prepare(app, channel, request).await {
            Ok(p) => prepared.push((index, p)),
            Err(SendError::Internal(e)) => return Err(SendError::Internal(e)),
            Err(e) => results[index] = Some(RecipientResult::Rejected(e)),
        }
    }
    for chunk in prepared.chunks(CHUNK) {
        let sends: Vec<AcceptSend> = chunk.iter().map(|(_, p)| p.clone()).collect();
        let outcomes = app.store.accept_batch(&sends).await?;
        for ((index, prepared), outcome) in chunk.iter().zip(outcomes) {
            let outcome: Result<AcceptOutcome, StoreError> = match outcome {
                // A concurrent send took the number's conversation first: decide it alone.
                Err(StoreError::Conflict(_)) => app.store.accept_send(prepared).await,
                other => other,
            };
            let result = match outcome
                .map_err(SendError::from)
                .and_then(|o| send::finish(app, prepared, o))
            {
                Ok(o) => RecipientResult::Accepted(o),
                Err(SendError::Internal(e)) => return Err(SendError::Internal(e)),
                Err(e) => RecipientResult::Rejected(e),
            };
            results[*index] = Some(result);
        }
    }
    let results: Vec<RecipientResult> = results
        .into_iter()
        .map(|r| r.expect("every recipient has a result"))
        .collect();
    let outcome = BatchOutcome { batch_id, results };
    let accepted = outcome.accepted() as i64;
    app.store
        .insert_batch(&Batch {
            id: outcome.batch_id.to_string(),
            account_id: channel.account_id.clone(),
            channel_id: channel.id.clone(),
            total: total as i64,
            accepted,
            rejected: total as i64 - accepted,
            created_at: now_ms(),
            paused: false,
        })
        .await?;
    Ok(outcome)
}

/// Cancels what of batch `id` is not yet handed to WhatsApp, telling subscribers.
pub async fn cancel(app: &App, id: &str) -> Result<(), StoreError> {
    for message_id in app.store.cancel_batch(id, app.clock.now_ms()).await? {
        app.publish(Event::MessageStatus {
            message_id,
            status: MessageStatus::Cancelled,
        });
    }
    Ok(())
}

/// Pauses or resumes batch `id`; a resumed batch wakes the dispatcher.
pub async fn set_paused(app: &App, id: &str, paused: bool) -> Result<(), StoreError> {
    app.store.set_batch_paused(id, paused).await?;
    app.wake_dispatcher();
    Ok(())
}

/// A batch with its counts by status, error code, template and hold reason, its progress and
/// an estimate of when it completes.
pub async fn report(app: &App, id: &str) -> Result<Option<api::Batch>, StoreError> {
    let Some(b) = app.store.batch(id).await? else {
        return Ok(None);
    };
    let counts = app.store.batch_counts(id).await?;
    let report = app.store.batch_report(id).await?;
    let count = |statuses: &[&str]| -> i64 {
        counts
            .iter()
            .filter(|(s, _)| statuses.contains(&s.as_str()))
            .map(|(_, n)| n)
            .sum()
    };
    let done = count(&["sent", "delivered", "read", "failed", "cancelled"]);
    let waiting = count(&["scheduled", "queued", "sending"]);
    let by_status: BTreeMap<String, i64> = counts.iter().cloned().collect();
    let by_error_code: BTreeMap<String, i64> = report
        .by_error_code
        .iter()
        .map(|(code, n)| (code.to_string(), *n))
        .collect();
    let mut by_template: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for (template_id, status, n) in &report.by_template {
        by_template
            .entry(template_id.clone())
            .or_default()
            .insert(status.clone(), *n);
    }
    let held: BTreeMap<String, i64> = report.held.iter().cloned().collect();
    let estimate = if waiting == 0 || b.paused {
        None
    } else {
        let channel = app.store.channel(&b.channel_id).await?;
        let now = app.clock.now_ms();
        let rate = channel.as_ref().map_or(1, |c| c.messages_per_second.max(1));
        let mut at = now + waiting * 1000 / rate;
        if let Some(limit) = channel.as_ref().and_then(|c| c.messaging_limit) {
            // Each new recipient past the limit's room waits for the window to roll.
            let recent = app
                .store
                .new_recipients(&b.channel_id, now - 24 * 3600 * 1000)
                .await?;
            let over = waiting - (limit - recent.count).max(0);
            if over > 0 {
                at += (over + limit - 1) / limit * 24 * 3600 * 1000;
            }
        }
        // Scheduled and held messages go at their time at the earliest.
        Some(report.last_due.map_or(at, |due| at.max(due)))
    };
    Ok(Some(api::Batch {
        id: b.id.into(),
        channel_id: b.channel_id.into(),
        total: b.total,
        accepted: b.accepted,
        rejected: b.rejected,
        by_status,
        by_error_code,
        by_template,
        held,
        progress: api::BatchProgress {
            done,
            waiting,
            percent: if b.accepted > 0 {
                (done * 1000 / b.accepted) as f64 / 10.0
            } else {
                100.0
            },
        },
        paused: b.paused,
        estimated_completion_at: estimate.map(crate::format_ms),
        created_at: crate::format_ms(b.created_at),
    }))
}
