//! SQLite's claim of due jobs for several channels (`Store::claim_many`).
//!
//! A dispatcher pass claims for every channel that may send, in one transaction on the one
//! write connection. Through sqlx each statement (three per channel) was a round trip to
//! sqlx's worker thread, and a pass over 100 channels took ≈ 100 ms; here the transaction
//! holds the connection the way the group writer does (`with_sync_conn`) and runs each
//! statement as a plain call, prepared once per hold: one `UPDATE … RETURNING` per channel
//! (an index walk that stops at the channel's `limit`th due job), then one statement for
//! every claimed message and one for their templates, whatever the number of channels.

use std::collections::{HashMap, HashSet};

use anyhow::Context;
use sqlx::SqlitePool;

use super::{in_sync_tx, with_sync_conn};
use crate::store::sql::{Db, claimed_jobs, sql};
use crate::store::{ClaimedJob, Message, StoreResult, Template};

/// Leases, for each `(channel id, limit)`, up to `limit` of the channel's oldest due jobs
/// until `now + lease_ms` and marks their messages `sending`: the answers in the same order.
pub(super) async fn claim_many(
    write: &SqlitePool,
    claims: &[(String, u32)],
    now: i64,
    lease_ms: i64,
    orphan_wait_ms: i64,
) -> StoreResult<Vec<Vec<ClaimedJob>>> {
    with_sync_conn(write, async |c| {
        in_sync_tx(c, async |db| {
            claim_in(db, claims, now, lease_ms, orphan_wait_ms)
                .await
                .map(Some)
        })
        .await
    })
    .await??
    .context("a claim answered nothing")
    .map_err(Into::into)
}

/// [`claim_many`] in the caller's transaction.
async fn claim_in(
    db: &mut Db<'_>,
    claims: &[(String, u32)],
    now: i64,
    lease_ms: i64,
    orphan_wait_ms: i64,
) -> StoreResult<Vec<Vec<ClaimedJob>>> {
    // Each channel's jobs, as (message id, attempt) in queue order.
    let mut per_channel: Vec<Vec<(String, i64)>> = Vec::with_capacity(claims.len());
    for (channel_id, limit) in claims {
        let rows = db
            .all(
                sql(
                    "UPDATE delivery_jobs SET attempt = attempt + 1, tries = tries + 1,
                        lease_until = $1
                     WHERE seq IN (
                        SELECT seq FROM delivery_jobs WHERE channel_id = $2 AND run_at <= $3
                          AND (lease_until IS NULL OR lease_until + $5 <= $3) AND paused = 0
                        ORDER BY seq LIMIT $4)
                     RETURNING seq, message_id, attempt, tries",
                )
                .bind(now + lease_ms)
                .bind(channel_id.as_str())
                .bind(now)
                .bind(*limit)
                .bind(orphan_wait_ms),
            )
            .await?;
        per_channel.push(
            claimed_jobs(&rows)?
                .into_iter()
                .map(|(_, message_id, attempt, _)| (message_id, attempt))
                .collect(),
        );
    }
    let ids: Vec<&str> = per_channel
        .iter()
        .flatten()
        .map(|(id, _)| id.as_str())
        .collect();
    if ids.is_empty() {
        return Ok(per_channel.iter().map(|_| Vec::new()).collect());
    }
    // Every claimed message and its template, in one statement each.
    let ids = serde_json::to_string(&ids).context("claimed ids")?;
    let rows = db
        .all(
            sql(
                "UPDATE messages SET status = CASE WHEN status IN ('scheduled', 'queued', 'sending')
                    THEN 'sending' ELSE status END,
                sending_at = coalesce(sending_at, $1), held_until = NULL, held_reason = NULL,
                attempts = (SELECT tries FROM delivery_jobs j WHERE j.message_id = messages.id),
                updated_at = $1
             WHERE id IN (SELECT value FROM json_each($2)) RETURNING *",
            )
            .bind(now)
            .bind(&ids),
        )
        .await?;
    let mut messages = rows
        .iter()
        .map(|r| Message::from_row(r).map(|m| (m.id.clone(), m)))
        .collect::<StoreResult<HashMap<_, _>>>()?;
    let template_ids = serde_json::to_string(
        &messages
            .values()
            .map(|m| m.template_id.as_str())
            .collect::<HashSet<_>>(),
    )
    .context("template ids")?;
    let templates = db
        .all(
            sql("SELECT * FROM templates WHERE id IN (SELECT value FROM json_each($1))")
                .bind(&template_ids),
        )
        .await?
        .iter()
        .map(|r| Template::from_row(r).map(|t| (t.id.clone(), t)))
        .collect::<StoreResult<HashMap<_, _>>>()?;
    per_channel
        .into_iter()
        .map(|claimed| {
            claimed
                .into_iter()
                .map(|(message_id, attempt)| {
                    let message = messages
                        .remove(&message_id)
                        .with_context(|| format!("claimed job without message {message_id}"))?;
                    let template = templates
                        .get(&message.template_id)
                        .with_context(|| format!("message {message_id} without its template"))?
                        .clone();
                    Ok(ClaimedJob {
                        template,
                        message,
                        attempt,
                    })
                })
                .collect()
        })
        .collect()
}
