//! PostgreSQL's set-based cancel of a batch (`cancel_batch`, a few statements per chunk of
//! messages) against the same messages cancelled one by one (`cancel_message`) on a copy of the
//! same database: the same ids and the same rows; and a cancel that meets a claim in flight.

use std::time::Duration;

use crate::common::store_seed;
use plantilla::domain::ids::new_id;
use plantilla::store::postgres::PgStore;
use plantilla::store::*;
use sqlx::Connection;
use store_seed::{Seeded, accept, sent_message, status};

use super::postgres_status_group::{counted, dump, with_databases};

const ORPHAN_WAIT: i64 = 120_000;
const LEASE: i64 = 30_000;
const HOUR: i64 = 3_600_000;

/// An endpoint for every event a cancel queues.
async fn endpoint(store: &PgStore, s: &Seeded) {
    let endpoint = WebhookEndpoint {
        id: new_id("we"),
        account_id: s.account.id.clone(),
        url: "http://127.0.0.1:9/hook".into(),
        event_types: ["message.cancelled", "conversation.closed"]
            .map(String::from)
            .to_vec(),
        description: None,
        secret: "whsec_test".into(),
        created_at: plantilla::now_ms(),
    };
    store
        .insert_webhook_endpoint(&endpoint, None)
        .await
        .unwrap();
}

/// A new message of `batch` to `phone`, due at `send_at` (queued when `None`).
async fn in_batch(
    store: &PgStore,
    s: &Seeded,
    batch: &str,
    phone: &str,
    send_at: Option<i64>,
    callback: Option<&str>,
) -> String {
    let mut send = accept(s, phone, plantilla::now_ms());
    send.batch_id = Some(batch.to_string());
    send.send_at = send_at;
    send.callback_url = callback.map(str::to_string);
    match store.accept_send(&send).await.unwrap() {
        AcceptOutcome::Pending { message_id, .. } | AcceptOutcome::Sent { message_id, .. } => {
            message_id
        }
        other => panic!("not queued: {other:?}"),
    }
}

/// Claims the channel's only due job, `message_id`'s: its attempt.
async fn claim(store: &PgStore, s: &Seeded, message_id: &str) -> i64 {
    let jobs = store
        .claim_jobs(&s.channel.id, 100, plantilla::now_ms(), LEASE, ORPHAN_WAIT)
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].message.id, message_id);
    jobs[0].attempt
}

async fn finish(store: &PgStore, message_id: &str, attempt: i64, result: AttemptResult) {
    store
        .finish_attempt(&AttemptOutcome {
            message_id: message_id.to_string(),
            attempt,
            now: plantilla::now_ms(),
            result,
        })
        .await
        .unwrap();
}

async fn status_of(store: &PgStore, id: &str) -> String {
    sqlx::query_scalar("SELECT status FROM messages WHERE id = $1")
        .bind(id)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

postgres_only!(a_batch_cancels_exactly_as_its_messages_one_by_one);
/// A batch mixing every state a message of it can be in: the same cancelled ids, messages,
/// jobs, conversations and outbox rows (in the same order) as each message cancelled alone,
/// in a few statements.
async fn a_batch_cancels_exactly_as_its_messages_one_by_one() {
    with_databases(|dbs| async move {
        let setup = PgStore::open(&dbs.url(&dbs.original), 4).await.unwrap();
        let s = store_seed::seed(&setup, 1000).await;
        endpoint(&setup, &s).await;
        let batch = new_id("bat");
        let later = plantilla::now_ms() + HOUR;
        // An open conversation (its first message sent and delivered, not in the batch).
        sent_message(&setup, &s, "50766000001", "wamid.OPEN").await;
        setup
            .apply_status(&status(
                "wamid.OPEN",
                plantilla::domain::status::MessageStatus::Delivered,
                plantilla::now_ms(),
            ))
            .await
            .unwrap();
        // Taken by the provider (its job gone, its conversation pending until it is
        // delivered): not cancellable.
        let sent = in_batch(&setup, &s, &batch, "50766000002", None, None).await;
        let attempt = claim(&setup, &s, &sent).await;
        finish(
            &setup,
            &sent,
            attempt,
            AttemptResult::Accepted {
                provider_message_id: "wamid.SENT".into(),
                wa_id: None,
            },
        )
        .await;
        // Claimed, no answer yet (its job leased, `sending`): the dispatcher's.
        let sending = in_batch(&setup, &s, &batch, "50766000003", None, None).await;
        claim(&setup, &s, &sending).await;
        // Tried once, to be retried in an hour: queued again with its error, its job free.
        let retried = in_batch(&setup, &s, &batch, "50766000004", None, None).await;
        let attempt = claim(&setup, &s, &retried).await;
        finish(
            &setup,
            &retried,
            attempt,
            AttemptResult::Retry {
                run_at: later,
                error: ProviderError {
                    code: 131_000,
                    title: "Something went wrong".into(),
                    details: None,
                },
            },
        )
        .await;
        // Scheduled, queued (one with its own callback URL), held, on the open conversation
        // (not its first message), already cancelled; and one of another batch.
        let scheduled = in_batch(&setup, &s, &batch, "50766000005", Some(later), None).await;
        let mut queued = Vec::new();
        for i in 0..12 {
            let phone = format!("5076601{i:04}");
            queued.push(in_batch(&setup, &s, &batch, &phone, None, None).await);
        }
        let own_callback = in_batch(
            &setup,
            &s,
            &batch,
            "50766000006",
            None,
            Some("http://127.0.0.1:9/cb"),
        )
        .await;
        let held = in_batch(&setup, &s, &batch, "50766000007", None, None).await;
        sqlx::query(
            "UPDATE messages SET held_until = $1, held_reason = 'quiet-hours' WHERE id = $2",
        )
        .bind(later)
        .bind(&held)
        .execute(setup.pool())
        .await
        .unwrap();
        let on_open = in_batch(&setup, &s, &batch, "50766000001", None, None).await;
        let gone = in_batch(&setup, &s, &batch, "50766000008", None, None).await;
        assert!(matches!(
            setup
                .cancel_message(&s.account.id, &gone, plantilla::now_ms())
                .await
                .unwrap(),
            CancelOutcome::Cancelled { .. }
        ));
        let other = in_batch(&setup, &s, &new_id("bat"), "50766000009", None, None).await;
        setup.pool().close().await;
        drop(setup);
        let (grouped, alone) = dbs.copy_and_open().await;

        let now = plantilla::now_ms();
        let (ids, statements) = counted(grouped.cancel_batch(&batch, now)).await;
        let ids = ids.expect("cancel the batch");
        // One by one, in the order of their jobs, as the batch's cancel took them.
        let in_order: Vec<String> = sqlx::query_scalar(
            "SELECT m.id FROM messages m LEFT JOIN delivery_jobs j ON j.message_id = m.id
             WHERE m.batch_id = $1 ORDER BY j.seq NULLS LAST, m.id",
        )
        .bind(&batch)
        .fetch_all(alone.pool())
        .await
        .unwrap();
        let mut one_by_one = Vec::new();
        for id in &in_order {
            if let CancelOutcome::Cancelled { .. } =
                alone.cancel_message(&s.account.id, id, now).await.unwrap()
            {
                one_by_one.push(id.clone());
            }
        }
        assert_eq!(ids, one_by_one);
        for ((table, g), (_, a)) in dump(&grouped).await.into_iter().zip(dump(&alone).await) {
            assert_eq!(g, a, "table {table}: batch (left) and one by one (right)");
        }

        // What that is: every message not handed over, and nothing else.
        let mut expected: Vec<&String> = vec![&retried, &scheduled, &own_callback, &held, &on_open];
        expected.extend(&queued);
        let mut got: Vec<&String> = ids.iter().collect();
        expected.sort();
        got.sort();
        assert_eq!(got, expected);
        for (id, st) in [
            (&sent, "sending"),
            (&sending, "sending"),
            (&gone, "cancelled"),
            (&other, "queued"),
        ] {
            assert_eq!(status_of(&grouped, id).await, st, "{id}");
        }
        let count = |sql: &'static str| {
            let pool = grouped.pool().clone();
            async move {
                sqlx::query_scalar::<_, i64>(sql)
                    .fetch_one(&pool)
                    .await
                    .unwrap()
            }
        };
        // Jobs left: the one being sent, and the other batch's.
        assert_eq!(count("SELECT count(*) FROM delivery_jobs").await, 2);
        assert_eq!(
            count("SELECT count(*) FROM messages WHERE held_until IS NOT NULL").await,
            0
        );
        // Conversations: the cancelled first messages' closed; the open one, the sent and
        // sending ones' and the other batch's as they were.
        assert_eq!(
            count(
                "SELECT count(*) FROM conversations
                 WHERE status = 'closed' AND close_reason = 'first_message_cancelled'"
            )
            .await,
            // The batch's 16 new conversations, and the one cancelled before.
            17
        );
        assert_eq!(
            count("SELECT count(*) FROM conversations WHERE status = 'pending'").await,
            3
        );
        assert_eq!(
            count("SELECT count(*) FROM conversations WHERE status = 'open'").await,
            1
        );
        // Events: one `message.cancelled` per message cancelled (and the one before), one
        // `conversation.closed` per conversation closed.
        assert_eq!(
            count(
                "SELECT count(*) FROM callback_outbox WHERE event_type = 'message.cancelled'
                 AND endpoint_id <> ''"
            )
            .await,
            ids.len() as i64 + 1
        );
        // Its own callback URL gets both of its message's events.
        assert_eq!(
            count("SELECT count(*) FROM callback_outbox WHERE endpoint_id = ''").await,
            2
        );
        assert_eq!(
            count(
                "SELECT count(*) FROM callback_outbox WHERE event_type = 'conversation.closed'
                 AND endpoint_id <> ''"
            )
            .await,
            17
        );
        eprintln!(
            "a batch of {} cancelled in {} statements (BEGIN not logged): {statements:?}",
            ids.len(),
            statements.len()
        );
        // The batch's messages; cancelled; the account's endpoints (read once per store's
        // lifetime); the conversations and the outbox; COMMIT.
        assert!(statements.len() <= 5, "{statements:?}");
    })
    .await;
}

postgres_only!(
    a_batch_cancel_waits_for_a_claim_in_flight_and_leaves_it_its_message,
    flavor = "multi_thread",
    worker_threads = 2
);
/// A claim that has locked a job of the batch and not committed yet: the cancel waits for it,
/// then leaves that message to the dispatcher and cancels the others; a transaction that
/// locked a job without taking it (a pause) makes the cancel wait, then lose nothing.
async fn a_batch_cancel_waits_for_a_claim_in_flight_and_leaves_it_its_message() {
    with_databases(|dbs| async move {
        let store = PgStore::open(&dbs.url(&dbs.original), 4).await.unwrap();
        let s = store_seed::seed(&store, 1000).await;
        // The first batch meets a claim; the second a transaction that locked a job without
        // taking it.
        let (first, second) = (new_id("bat"), new_id("bat"));
        let mut ids = Vec::new();
        for i in 0..6 {
            ids.push(in_batch(&store, &s, &first, &format!("5076700000{i}"), None, None).await);
        }
        let mut seconds = Vec::new();
        for i in 0..2 {
            seconds
                .push(in_batch(&store, &s, &second, &format!("5076700010{i}"), None, None).await);
        }
        let (claimed, locked) = (ids[2].clone(), seconds[1].clone());
        let mut other = sqlx::PgConnection::connect(&dbs.url(&dbs.original))
            .await
            .unwrap();
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut other)
            .await
            .unwrap();
        for (batch, id, takes) in [(&first, &claimed, true), (&second, &locked, false)] {
            let mut tx = other.begin().await.unwrap();
            if takes {
                // What a claim writes, job then message, not committed yet.
                let now = plantilla::now_ms();
                sqlx::query(
                    "UPDATE delivery_jobs SET attempt = attempt + 1, tries = tries + 1,
                        lease_until = $1 WHERE message_id = $2",
                )
                .bind(now + LEASE)
                .bind(id)
                .execute(&mut *tx)
                .await
                .unwrap();
                sqlx::query(
                    "UPDATE messages SET status = 'sending', sending_at = $1, attempts = 1,
                        updated_at = $1 WHERE id = $2",
                )
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await
                .unwrap();
            } else {
                sqlx::query("SELECT seq FROM delivery_jobs WHERE message_id = $1 FOR UPDATE")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            let cancel = {
                let url = dbs.url(&dbs.original);
                let batch = batch.clone();
                tokio::spawn(async move {
                    let store = PgStore::open(&url, 2).await.unwrap();
                    store.cancel_batch(&batch, plantilla::now_ms()).await
                })
            };
            // The cancel waits for the lock the other transaction holds.
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            loop {
                let waiting: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE datname = current_database() AND wait_event_type = 'Lock'
                       AND $1 = ANY(pg_blocking_pids(pid))",
                )
                .bind(pid)
                .fetch_one(store.pool())
                .await
                .unwrap();
                if waiting > 0 {
                    break;
                }
                assert!(
                    !cancel.is_finished(),
                    "the cancel did not wait for the lock"
                );
                assert!(
                    std::time::Instant::now() < deadline,
                    "the cancel never waited"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            tx.commit().await.unwrap();
            let cancelled = cancel.await.unwrap().expect("cancel the batch");
            if takes {
                let rest: Vec<String> = ids.iter().filter(|i| **i != claimed).cloned().collect();
                assert_eq!(cancelled, rest, "all but the claimed one, in order");
                assert_eq!(status_of(&store, &claimed).await, "sending");
                let lease: Option<i64> = sqlx::query_scalar(
                    "SELECT lease_until FROM delivery_jobs WHERE message_id = $1",
                )
                .bind(&claimed)
                .fetch_one(store.pool())
                .await
                .unwrap();
                assert!(lease.is_some(), "the claimed job is the dispatcher's");
                let conversation: String = sqlx::query_scalar(
                    "SELECT c.status FROM conversations c JOIN messages m
                     ON m.conversation_id = c.id WHERE m.id = $1",
                )
                .bind(&claimed)
                .fetch_one(store.pool())
                .await
                .unwrap();
                assert_eq!(
                    conversation, "pending",
                    "its conversation waits for its outcome"
                );
            } else {
                assert_eq!(cancelled, seconds, "the locked one too, once free");
                assert_eq!(status_of(&store, &locked).await, "cancelled");
            }
        }
        let _ = other.close().await;
    })
    .await;
}
