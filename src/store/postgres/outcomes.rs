//! Delivery outcomes committed in groups.
//!
//! Every send ends in an outcome, so outcomes come by the thousand; one transaction each is
//! four round trips and a commit (a WAL flush) per message. Concurrent `finish_attempt`
//! calls are queued for one task that takes everything waiting (up to [`MAX_GROUP`]) and
//! commits it in one transaction:
//!
//! 1. the jobs of all the group's messages are locked in one statement, in `seq` order (the
//!    order `claim_jobs` takes them in): the fence of every outcome at once;
//! 2. the accepted outcomes (the common case) whose fence holds are written by one statement
//!    from arrays: it deletes their jobs, records their attempts and updates their messages;
//!    an accepted outcome of an attempt a newer claim owns is [`Finished::Stale`];
//! 3. the other outcomes (retries, halts, failures) run one by one, in arrival order, with the
//!    code a lone outcome runs ([`finish_in`]).
//!
//! After the commit, one statement takes the statuses kept for the accepted outcomes' messages
//! (`Store::finish_and_take_kept`: statuses that arrived before the provider's response, for
//! the dispatcher to apply). Not before: a status kept after this transaction's snapshot,
//! whose lookup ran before the wamid committed, would be seen by neither (see
//! [`take_kept_after_commit`]).
//!
//! Locks are taken in the store's order: jobs (all of them first), then messages (the
//! accepted ones in their jobs' order, then each other outcome's), then conversations. A
//! group holds one outcome per message; a second outcome for a message waits for the next
//! group, so each outcome sees the ones before it as if it had run alone. The decisions are
//! those of one transaction per outcome in an order they could have arrived in; only the
//! commit is shared. Nobody waits for a group to fill: a lone outcome runs at once, as it
//! always did, and the outcomes that arrive meanwhile make the next group. If anything in a
//! group fails (a deadlock with another instance, a serialization failure, an error of one
//! outcome), the group is rolled back and each outcome runs again alone, so a failure is
//! reported to its own caller only and results never depend on grouping.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};

use super::*;
use crate::store::sql::outcome_is_stale;

/// Most outcomes committed together.
const MAX_GROUP: usize = 256;

/// What the outcome group commit has done since the store opened.
#[derive(Debug, Default)]
pub struct OutcomeGroupStats {
    /// Transactions committed for more than one outcome.
    pub groups: AtomicU64,
    /// Outcomes committed in those transactions.
    pub grouped_outcomes: AtomicU64,
    /// Groups rolled back (each outcome then ran alone).
    pub split: AtomicU64,
}

/// What an outcome decided, with the statuses kept for its message when it was an accepted
/// one recorded and its caller asked for them. They are taken after the commit, so failing to
/// take them (the inner error) leaves the outcome recorded.
pub(super) type Taken = (Finished, StoreResult<Vec<StatusUpdate>>);

/// An outcome waiting for the group commit, with where its answer goes.
struct Queued {
    outcome: AttemptOutcome,
    /// Whether the statuses kept for the message are taken (an accepted outcome's).
    take_kept: bool,
    to: oneshot::Sender<StoreResult<Taken>>,
}

impl Queued {
    /// Whether the caller stopped waiting (it was then told nothing was written).
    fn abandoned(&self) -> bool {
        self.to.is_closed()
    }
}

/// The store's side of the group commit: the queue to its task.
pub(super) struct Outcomes {
    queue: mpsc::Sender<Queued>,
    stats: Arc<OutcomeGroupStats>,
}

impl Outcomes {
    /// Starts the task that commits the outcomes of `pool`; it ends when `self` is dropped.
    pub(super) fn start(pool: PgPool, lookups: Arc<Lookups>) -> Self {
        let (queue, waiting) = mpsc::channel(MAX_GROUP * 4);
        let stats = Arc::new(OutcomeGroupStats::default());
        tokio::spawn(combine(pool, lookups, waiting, stats.clone()));
        Self { queue, stats }
    }

    pub(super) fn stats(&self) -> &OutcomeGroupStats {
        &self.stats
    }

    /// Queues `outcome` and waits for its answer (with the kept statuses if `take_kept`).
    pub(super) async fn finish(
        &self,
        outcome: &AttemptOutcome,
        take_kept: bool,
    ) -> StoreResult<Taken> {
        let (to, answer) = oneshot::channel();
        self.queue
            .send(Queued {
                outcome: outcome.clone(),
                take_kept,
                to,
            })
            .await
            .map_err(|_| anyhow::anyhow!("the outcome writer has stopped"))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the outcome writer dropped an outcome"))?
    }
}

/// Commits the queued outcomes in groups until the store is dropped.
async fn combine(
    pool: PgPool,
    lookups: Arc<Lookups>,
    mut queue: mpsc::Receiver<Queued>,
    stats: Arc<OutcomeGroupStats>,
) {
    // Outcomes taken but not yet written: the second outcome of a message waits here for
    // the next group (at the front, so outcomes of one message keep their order).
    let mut waiting: Vec<Queued> = Vec::with_capacity(MAX_GROUP);
    loop {
        if waiting.is_empty() {
            if queue.recv_many(&mut waiting, MAX_GROUP).await == 0 {
                return;
            }
        } else {
            while waiting.len() < MAX_GROUP {
                match queue.try_recv() {
                    Ok(q) => waiting.push(q),
                    Err(_) => break,
                }
            }
        }
        // A caller that stopped waiting was told nothing was written: its outcome must not
        // be written later behind its back (the next claim sends the message again).
        waiting.retain(|q| !q.abandoned());
        let mut messages = HashSet::new();
        let (group, later): (Vec<Queued>, Vec<Queued>) = waiting
            .drain(..)
            .partition(|q| messages.insert(q.outcome.message_id.clone()));
        waiting = later;
        match group.len() {
            0 => {}
            1 => {
                let q = group.into_iter().next().expect("one");
                finish_alone(&pool, &lookups, q).await;
            }
            n => {
                let outcomes: Vec<(&AttemptOutcome, bool)> =
                    group.iter().map(|q| (&q.outcome, q.take_kept)).collect();
                let abandoned = || group.iter().any(Queued::abandoned);
                match finish_group(&pool, &lookups, &outcomes, abandoned).await {
                    Ok(results) => {
                        stats.groups.fetch_add(1, Ordering::Relaxed);
                        stats
                            .grouped_outcomes
                            .fetch_add(n as u64, Ordering::Relaxed);
                        for (q, result) in group.into_iter().zip(results) {
                            let _ = q.to.send(Ok(result));
                        }
                    }
                    Err(e) => {
                        stats.split.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, outcomes = n, "outcome group commit failed; writing one by one");
                        for q in group {
                            finish_alone(&pool, &lookups, q).await;
                        }
                    }
                }
            }
        }
    }
}

/// The fence of one outcome: the attempt of the message's job, whose row is locked so that
/// no claim or status can move it under us (`None`: the job is gone).
async fn fence(tx: &mut Transaction<'_, Postgres>, message_id: &str) -> StoreResult<Option<i64>> {
    Ok(
        sqlx::query_scalar("SELECT attempt FROM delivery_jobs WHERE message_id = $1 FOR UPDATE")
            .bind(message_id)
            .fetch_optional(&mut **tx)
            .await?,
    )
}

/// Writes `q`'s outcome in a transaction of its own and answers its caller. A caller that
/// stopped waiting before the commit gets its outcome rolled back, as when its own future
/// held the transaction.
async fn finish_alone(pool: &PgPool, lookups: &Lookups, q: Queued) {
    if q.abandoned() {
        return;
    }
    let result = async {
        let mut tx = pool.begin().await?;
        let current = fence(&mut tx, &q.outcome.message_id).await?;
        let finished = finish_in(&mut tx, lookups, &q.outcome, current).await?;
        if q.abandoned() {
            tx.rollback().await?;
            return Ok(None);
        }
        if let Finished::Recorded { .. } = finished {
            tx.commit().await?;
        }
        Ok(Some(finished))
    }
    .await;
    match result {
        Ok(Some(finished)) => {
            let kept = match takes_kept(&q.outcome, q.take_kept, &finished) {
                // A caller that stopped waiting would drop what is taken for it: left kept.
                Some(wamid) if !q.abandoned() => {
                    let outcome = [(q.outcome.message_id.as_str(), wamid)];
                    take_kept_after_commit(pool, &outcome)
                        .await
                        .map(|mut taken| taken.remove(&q.outcome.message_id).unwrap_or_default())
                }
                _ => Ok(Vec::new()),
            };
            let _ = q.to.send(Ok((finished, kept)));
        }
        Ok(None) => {}
        Err(e) => {
            let _ = q.to.send(Err(e));
        }
    }
}

/// `outcomes` (one per message, each with whether its kept statuses are taken) in one
/// transaction, answered in their order; nothing is kept if any of it fails, or if
/// `abandoned()` says a caller stopped waiting before the commit. The kept statuses are
/// taken after the commit.
pub(super) async fn finish_group(
    pool: &PgPool,
    lookups: &Lookups,
    outcomes: &[(&AttemptOutcome, bool)],
    abandoned: impl Fn() -> bool,
) -> StoreResult<Vec<Taken>> {
    let ids: Vec<&str> = outcomes
        .iter()
        .map(|(o, _)| o.message_id.as_str())
        .collect();
    if ids.iter().collect::<HashSet<_>>().len() != ids.len() {
        return Err(anyhow::anyhow!("a group holds one outcome per message").into());
    }
    let mut tx = pool.begin().await?;
    // The fence of every outcome: all the jobs, locked in the order claims take them.
    let jobs: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT message_id, attempt, seq FROM delivery_jobs WHERE message_id = ANY($1)
         ORDER BY seq FOR UPDATE",
    )
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?;
    let jobs: HashMap<&str, (i64, i64)> = jobs
        .iter()
        .map(|(id, attempt, seq)| (id.as_str(), (*attempt, *seq)))
        .collect();
    let current = |o: &AttemptOutcome| jobs.get(o.message_id.as_str()).map(|&(a, _)| a);

    let mut results: Vec<Option<Finished>> = outcomes.iter().map(|_| None).collect();
    // The accepted outcomes the fence lets through, in their jobs' order (the order claims
    // lock the messages in), then those whose job is gone.
    let mut accepted: Vec<(i64, &AttemptOutcome, &str, Option<&str>)> = Vec::new();
    for (i, &(o, _)) in outcomes.iter().enumerate() {
        if let AttemptResult::Accepted {
            provider_message_id,
            wa_id,
        } = &o.result
        {
            // As in `finish_in`: the job may already be gone (a status that outran the
            // provider's response ended it); a newer claim's job makes the outcome stale.
            if current(o).is_some_and(|a| a != o.attempt) {
                results[i] = Some(Finished::Stale);
                continue;
            }
            let seq = jobs
                .get(o.message_id.as_str())
                .map_or(i64::MAX, |&(_, seq)| seq);
            accepted.push((seq, o, provider_message_id, wa_id.as_deref()));
            results[i] = Some(Finished::Recorded { conversation: None });
        }
    }
    if !accepted.is_empty() {
        accepted.sort_by(|a, b| (a.0, &a.1.message_id).cmp(&(b.0, &b.1.message_id)));
        let ids: Vec<&str> = accepted.iter().map(|a| a.1.message_id.as_str()).collect();
        let attempts: Vec<i64> = accepted.iter().map(|a| a.1.attempt).collect();
        let ats: Vec<i64> = accepted.iter().map(|a| a.1.now).collect();
        let wamids: Vec<&str> = accepted.iter().map(|a| a.2).collect();
        let wa_ids: Vec<Option<&str>> = accepted.iter().map(|a| a.3).collect();
        // `finish_in`'s statement for an accepted outcome, for all of them at once; answers
        // the number of messages updated.
        let updated: i64 = sqlx::query_scalar(
            "WITH o AS (
                SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[],
                    $5::text[]) AS o(message_id, attempt, at, provider_message_id, wa_id)),
             gone AS (DELETE FROM delivery_jobs j USING o WHERE j.message_id = o.message_id),
             recorded AS (
                INSERT INTO delivery_attempts (message_id, attempt, finished_at, outcome)
                SELECT message_id, attempt, at, 'accepted' FROM o),
             updated AS (
                UPDATE messages m SET
                    provider_message_id = coalesce(m.provider_message_id, o.provider_message_id),
                    wa_id = coalesce(m.wa_id, o.wa_id), updated_at = o.at,
                    error_code = CASE WHEN m.status = 'failed' THEN m.error_code END,
                    error_title = CASE WHEN m.status = 'failed' THEN m.error_title END,
                    error_details = CASE WHEN m.status = 'failed' THEN m.error_details END
                FROM o WHERE m.id = o.message_id RETURNING m.id)
             SELECT count(*) FROM updated",
        )
        .bind(&ids)
        .bind(&attempts)
        .bind(&ats)
        .bind(&wamids)
        .bind(&wa_ids)
        .fetch_one(&mut *tx)
        .await?;
        if updated != ids.len() as i64 {
            return Err(anyhow::anyhow!(
                "{updated} of {} accepted outcomes found their message",
                ids.len()
            )
            .into());
        }
    }
    // The others, one by one in arrival order, as each would run alone.
    for (i, &(o, _)) in outcomes.iter().enumerate() {
        if results[i].is_none() {
            results[i] = Some(finish_in(&mut tx, lookups, o, current(o)).await?);
        }
    }
    if abandoned() {
        // Someone stopped waiting: their outcome must not commit, the others' may (alone).
        tx.rollback().await?;
        return Err(anyhow::anyhow!("a caller stopped waiting").into());
    }
    tx.commit().await?;
    let finished: Vec<Finished> = results
        .into_iter()
        .map(|r| r.expect("every outcome decided"))
        .collect();
    // Committed: from here on nothing fails the group (its outcomes must not run again).
    let taking: Vec<(&str, &str)> = outcomes
        .iter()
        .zip(&finished)
        .filter_map(|(&(o, take_kept), f)| {
            takes_kept(o, take_kept, f).map(|wamid| (o.message_id.as_str(), wamid))
        })
        .collect();
    let mut kept = if taking.is_empty() {
        Ok(HashMap::new())
    } else {
        take_kept_after_commit(pool, &taking).await
    };
    Ok(outcomes
        .iter()
        .zip(finished)
        .map(|(&(o, take_kept), f)| {
            let taken = match &mut kept {
                _ if takes_kept(o, take_kept, &f).is_none() => Ok(Vec::new()),
                Ok(kept) => Ok(kept.remove(&o.message_id).unwrap_or_default()),
                Err(e) => Err(anyhow::anyhow!("taking the kept statuses: {e}").into()),
            };
            (f, taken)
        })
        .collect())
}

/// The wamid by which an outcome takes the statuses kept for its message: an accepted one
/// that was recorded, whose caller asked for them.
fn takes_kept<'o>(o: &'o AttemptOutcome, take_kept: bool, finished: &Finished) -> Option<&'o str> {
    match (&o.result, finished) {
        (
            AttemptResult::Accepted {
                provider_message_id,
                ..
            },
            Finished::Recorded { .. },
        ) if take_kept => Some(provider_message_id),
        _ => None,
    }
}

/// Takes the statuses kept for `outcomes` (message id, wamid), accepted outcomes that have
/// committed, by wamid or message id: by message id, each message's oldest first.
///
/// After the commit, not in the outcome's transaction: the status's side looks the message up
/// (by wamid), finds nothing, keeps the status, commits, then looks again
/// (`Shared::take_known_pending`). Under READ COMMITTED a take inside the outcome's
/// transaction reads a snapshot that may precede the keep's commit while the keep's second
/// look precedes the outcome's commit: the status would be kept for nobody until it expires.
/// Here each side has committed its write before it reads the other's, so the later of the
/// two reads sees the other's write and takes the status; `DELETE … RETURNING` gives it to
/// one of them only.
async fn take_kept_after_commit(
    pool: &PgPool,
    outcomes: &[(&str, &str)],
) -> StoreResult<HashMap<String, Vec<StatusUpdate>>> {
    let (ids, wamids): (Vec<&str>, Vec<&str>) = outcomes.iter().copied().unzip();
    let rows = sqlx::query(
        "WITH o AS (SELECT * FROM unnest($1::text[], $2::text[]) AS o(message_id, wamid))
         DELETE FROM pending_statuses p USING o
         WHERE p.provider_message_id = o.wamid OR p.message_id = o.message_id
         RETURNING p.*, o.message_id AS taken_for",
    )
    .bind(&ids)
    .bind(&wamids)
    .fetch_all(pool)
    .await?;
    let mut by_message: HashMap<String, Vec<PgRow>> = HashMap::new();
    for r in rows {
        let taken_for: String = r.try_get("taken_for")?;
        by_message.entry(taken_for).or_default().push(r);
    }
    by_message
        .into_iter()
        .map(|(id, rows)| Ok((id, crate::store::sql::pending_in_order(&rows)?)))
        .collect()
}

/// One outcome inside the caller's transaction, `current` being the attempt of the message's
/// job as the caller's fence locked it (`None`: the job is gone). A stale outcome writes
/// nothing.
async fn finish_in(
    tx: &mut Transaction<'_, Postgres>,
    lookups: &Lookups,
    o: &AttemptOutcome,
    current: Option<i64>,
) -> StoreResult<Finished> {
    if outcome_is_stale(o, current) {
        return Ok(Finished::Stale);
    }
    let mut conversation = None;
    match &o.result {
        AttemptResult::Accepted {
            provider_message_id,
            wa_id,
        } => {
            // The job may already be gone: a status webhook that outran this response
            // ended it. The provider ids are still ours to record. One statement ends
            // the job, records the ids and the attempt (the job's lock is held already).
            sqlx::query(concat!(
                "WITH gone AS (DELETE FROM delivery_jobs WHERE message_id = $4),
                 attempt AS (
                    INSERT INTO delivery_attempts (message_id, attempt, finished_at, outcome)
                    VALUES ($4, $5, $3, 'accepted'))
                 ",
                crate::store::sql::record_accepted_sql!(),
            ))
            .bind(provider_message_id)
            .bind(wa_id)
            .bind(o.now)
            .bind(&o.message_id)
            .bind(o.attempt)
            .execute(&mut **tx)
            .await?;
        }
        AttemptResult::Retry { run_at, error } | AttemptResult::Requeue { run_at, error } => {
            let requeue = matches!(o.result, AttemptResult::Requeue { .. });
            Db::PostgresConn(tx)
                .retry_attempt(&o.message_id, o.attempt, o.now, *run_at, error, requeue)
                .await?;
        }
        AttemptResult::Failed { error } => {
            Db::PostgresConn(tx).end_job(&o.message_id).await?;
            let row = sqlx::query(MESSAGE_TO_MOVE)
                .bind(&o.message_id)
                .fetch_one(&mut **tx)
                .await?;
            let message = Message::from_row(&row)?;
            if message.status.advances_to(MessageStatus::Failed) {
                let pending = row.try_get("conversation_pending")?;
                conversation = fail_message(tx, lookups, &message, error, o.now, pending).await?;
            }
            Db::PostgresConn(tx)
                .record_attempt(&o.message_id, o.attempt, o.now, "failed", Some(error))
                .await?;
        }
    }
    Ok(Finished::Recorded { conversation })
}
