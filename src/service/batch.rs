//! Bulk sends: many recipients of one template through one channel, decided by the same rules
//! as a single send and stored one transaction per chunk.

use sha2::{Digest, Sha256};

use super::send::{self, SendError, SendOutcome, SendRequest};
use crate::app::App;
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
    pub batch_id: String,
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
pub fn batch_id(idempotency: Option<&IdempotencyKey>) -> String {
    match idempotency {
        Some(k) => {
            let digest = Sha256::digest(format!("{}\u{0}{}", k.scope, k.key).as_bytes());
            format!("bat_{}", &hex::encode(digest)[..32])
        }
        None => crate::domain::ids::new_id("bat"),
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
        request.batch_id = Some(batch_id.clone());
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
            id: outcome.batch_id.clone(),
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
