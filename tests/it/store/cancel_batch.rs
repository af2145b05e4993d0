//! The set-based cancel of a batch (`cancel_batch`: a few statements per chunk of messages on
//! PostgreSQL, a few for the whole batch on SQLite) against the same messages cancelled one by
//! one (`cancel_message`) on a copy of the same database: the same ids and the same rows, on
//! both databases; and, on PostgreSQL, a cancel that meets a claim in flight.

use std::time::Duration;

use crate::common::store_seed;
use plantilla::domain::ids::new_id;
use plantilla::store::postgres::PgStore;
use plantilla::store::sqlite::SqliteStore;
use plantilla::store::*;
use sqlx::{Column, Connection, Row, TypeInfo, ValueRef};
use store_seed::{Seeded, accept, sent_message, status};

use super::postgres_status_group::{counted, dump, with_databases};

const ORPHAN_WAIT: i64 = 120_000;
const LEASE: i64 = 30_000;
const HOUR: i64 = 3_600_000;

/// A new message of `batch` to `phone`, due at `send_at` (queued when `None`).
async fn in_batch<S: Store>(
    store: &S,
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
async fn claim<S: Store>(store: &S, s: &Seeded, message_id: &str) -> i64 {
    let jobs = store
        .claim_jobs(&s.channel.id, 100, plantilla::now_ms(), LEASE, ORPHAN_WAIT)
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].message.id, message_id);
    jobs[0].attempt
}

async fn finish<S: Store>(store: &S, message_id: &str, attempt: i64, result: AttemptResult) {
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

/// A batch mixing every state a message of it can be in, and its messages by what a cancel
/// must make of them.
struct Mixed {
    batch: String,
    /// Not handed over: cancelled (on new conversations but `on_open`).
    cancellable: Vec<String>,
    /// (message, its status after the cancel): handed over, cancelled before, another batch's.
    left: Vec<(String, &'static str)>,
}

/// Builds [`Mixed`] in `store` (whose database `url` also reaches), with an endpoint for the
/// events a cancel queues.
async fn mixed_batch<S: Store>(store: &S, url: &str) -> (Seeded, Mixed) {
    let s = store_seed::seed(store, 1000).await;
    store_seed::endpoint(store, &s, &["message.cancelled", "conversation.closed"]).await;
    let batch = new_id("bat");
    let later = plantilla::now_ms() + HOUR;
    // An open conversation (its first message sent and delivered, not in the batch).
    sent_message(store, &s, "50766000001", "wamid.OPEN").await;
    store
        .apply_status(&status(
            "wamid.OPEN",
            plantilla::domain::status::MessageStatus::Delivered,
            plantilla::now_ms(),
        ))
        .await
        .unwrap();
    // Taken by the provider (its job gone, its conversation pending until it is
    // delivered): not cancellable.
    let sent = in_batch(store, &s, &batch, "50766000002", None, None).await;
    let attempt = claim(store, &s, &sent).await;
    finish(
        store,
        &sent,
        attempt,
        AttemptResult::Accepted {
            provider_message_id: "wamid.SENT".into(),
            wa_id: None,
        },
    )
    .await;
    // Claimed, no answer yet (its job leased, `sending`): the dispatcher's.
    let sending = in_batch(store, &s, &batch, "50766000003", None, None).await;
    claim(store, &s, &sending).await;
    // Tried once, to be retried in an hour: queued again with its error, its job free.
    let retried = in_batch(store, &s, &batch, "50766000004", None, None).await;
    let attempt = claim(store, &s, &retried).await;
    finish(
        store,
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
    let mut cancellable = vec![retried];
    cancellable.push(in_batch(store, &s, &batch, "50766000005", Some(later), None).await);
    for i in 0..12 {
        let phone = format!("5076601{i:04}");
        cancellable.push(in_batch(store, &s, &batch, &phone, None, None).await);
    }
    let callback = Some("http://127.0.0.1:9/cb");
    cancellable.push(in_batch(store, &s, &batch, "50766000006", None, callback).await);
    let held = in_batch(store, &s, &batch, "50766000007", None, None).await;
    execute(
        url,
        &format!(
            "UPDATE messages SET held_until = {later}, held_reason = 'quiet-hours'
             WHERE id = '{held}'"
        ),
    )
    .await;
    cancellable.push(held);
    cancellable.push(in_batch(store, &s, &batch, "50766000001", None, None).await);
    let gone = in_batch(store, &s, &batch, "50766000008", None, None).await;
    assert!(matches!(
        store
            .cancel_message(&s.account.id, &gone, plantilla::now_ms())
            .await
            .unwrap(),
        CancelOutcome::Cancelled { .. }
    ));
    let other = in_batch(store, &s, &new_id("bat"), "50766000009", None, None).await;
    let left = vec![
        (sent, "sending"),
        (sending, "sending"),
        (gone, "cancelled"),
        (other, "queued"),
    ];
    (
        s,
        Mixed {
            batch,
            cancellable,
            left,
        },
    )
}

/// Runs `sql` on the database at `url` (SQLite or PostgreSQL), beside the store.
async fn execute(url: &str, sql: &str) {
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query(sql).execute(&mut c).await.unwrap();
        let _ = c.close().await;
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query(sql).execute(&mut c).await.unwrap();
        let _ = c.close().await;
    }
}

/// One number from the database at `url`.
async fn number(url: &str, sql: &str) -> i64 {
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        let n = sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap();
        let _ = c.close().await;
        n
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        let n = sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap();
        let _ = c.close().await;
        n
    }
}

/// Cancels `m`'s batch on `grouped`, and its messages one by one in the order of their jobs
/// on `alone` (a copy of the same database, reached at `alone_url`): the same ids. Then checks
/// what that is on `grouped` (at `url`). The ids, and the statements the batch's cancel ran
/// (logged by sqlx in this task: PostgreSQL's).
async fn cancel_and_compare<S: Store>(
    s: &Seeded,
    m: &Mixed,
    grouped: &S,
    url: &str,
    alone: &S,
    alone_url: &str,
) -> (Vec<String>, Vec<String>) {
    let now = plantilla::now_ms();
    let (ids, statements) = counted(grouped.cancel_batch(&m.batch, now)).await;
    let ids = ids.expect("cancel the batch");
    let mut one_by_one = Vec::new();
    for id in ids_in_job_order(alone_url, &m.batch).await {
        if let CancelOutcome::Cancelled { .. } =
            alone.cancel_message(&s.account.id, &id, now).await.unwrap()
        {
            one_by_one.push(id);
        }
    }
    assert_eq!(ids, one_by_one);

    // What that is: every message not handed over, and nothing else.
    let (mut expected, mut got) = (m.cancellable.clone(), ids.clone());
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
    for (id, st) in &m.left {
        let sql = format!("SELECT count(*) FROM messages WHERE id = '{id}' AND status = '{st}'");
        assert_eq!(number(url, &sql).await, 1, "{id} {st}");
    }
    // Jobs left: the one being sent, and the other batch's.
    assert_eq!(number(url, "SELECT count(*) FROM delivery_jobs").await, 2);
    assert_eq!(
        number(
            url,
            "SELECT count(*) FROM messages WHERE held_until IS NOT NULL"
        )
        .await,
        0
    );
    // Conversations: the cancelled first messages' closed; the open one, the sent and
    // sending ones' and the other batch's as they were.
    assert_eq!(
        number(
            url,
            "SELECT count(*) FROM conversations
             WHERE status = 'closed' AND close_reason = 'first_message_cancelled'"
        )
        .await,
        // The batch's 16 new conversations, and the one cancelled before.
        17
    );
    let conversations =
        |st: &str| format!("SELECT count(*) FROM conversations WHERE status = '{st}'");
    assert_eq!(number(url, &conversations("pending")).await, 3);
    assert_eq!(number(url, &conversations("open")).await, 1);
    // Events: one `message.cancelled` per message cancelled (and the one before), one
    // `conversation.closed` per conversation closed.
    let events = |event: &str| {
        format!(
            "SELECT count(*) FROM callback_outbox WHERE event_type = '{event}'
             AND endpoint_id <> ''"
        )
    };
    assert_eq!(
        number(url, &events("message.cancelled")).await,
        ids.len() as i64 + 1
    );
    assert_eq!(number(url, &events("conversation.closed")).await, 17);
    // Its own callback URL gets both of its message's events.
    assert_eq!(
        number(
            url,
            "SELECT count(*) FROM callback_outbox WHERE endpoint_id = ''"
        )
        .await,
        2
    );
    (ids, statements)
}

/// The messages of `batch`, in the order of their jobs (those without one last).
async fn ids_in_job_order(url: &str, batch: &str) -> Vec<String> {
    let sql = "SELECT m.id FROM messages m LEFT JOIN delivery_jobs j ON j.message_id = m.id
         WHERE m.batch_id = $1 ORDER BY j.seq IS NULL, j.seq, m.id";
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        let ids = sqlx::query_scalar(sql)
            .bind(batch)
            .fetch_all(&mut c)
            .await
            .unwrap();
        let _ = c.close().await;
        ids
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        let ids = sqlx::query_scalar(sql)
            .bind(batch)
            .fetch_all(&mut c)
            .await
            .unwrap();
        let _ = c.close().await;
        ids
    }
}

postgres_only!(a_batch_cancels_exactly_as_its_messages_one_by_one);
/// [`Mixed`]: the same cancelled ids, messages, jobs, conversations and outbox rows (in the
/// same order) as each message cancelled alone, in a few statements.
async fn a_batch_cancels_exactly_as_its_messages_one_by_one() {
    with_databases(|dbs| async move {
        let url = dbs.url(&dbs.original);
        let setup = PgStore::open(&url, 4).await.unwrap();
        let (s, m) = mixed_batch(&setup, &url).await;
        setup.pool().close().await;
        drop(setup);
        let (grouped, alone) = dbs.copy_and_open().await;
        let alone_url = dbs.url(&format!("{}_copy", dbs.original));
        let (ids, statements) =
            cancel_and_compare(&s, &m, &grouped, &url, &alone, &alone_url).await;
        for ((table, g), (_, a)) in dump(&grouped).await.into_iter().zip(dump(&alone).await) {
            assert_eq!(g, a, "table {table}: batch (left) and one by one (right)");
        }
        eprintln!(
            "a batch of {} cancelled in {} statements (BEGIN not logged): {statements:?}",
            ids.len(),
            statements.len()
        );
        // Its messages; cancelled; the account's endpoints (read once per store's lifetime);
        // the conversations and the outbox; COMMIT.
        assert!(statements.len() <= 5, "{statements:?}");
    })
    .await;
}

#[tokio::test]
/// [`Mixed`] on SQLite: the same ids and rows as one by one.
async fn a_batch_cancels_exactly_as_its_messages_one_by_one_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("batch.db").display());
    let copy = dir.path().join("alone.db");
    let alone_url = format!("sqlite://{}", copy.display());
    let grouped = SqliteStore::open(&url, "full").await.expect("open");
    let (s, m) = mixed_batch(&grouped, &url).await;
    execute(&url, &format!("VACUUM INTO '{}'", copy.display())).await;
    let alone = SqliteStore::open(&alone_url, "full").await.expect("open");
    cancel_and_compare(&s, &m, &grouped, &url, &alone, &alone_url).await;
    for ((table, g), (_, a)) in sqlite_dump(&url)
        .await
        .into_iter()
        .zip(sqlite_dump(&alone_url).await)
    {
        assert_eq!(g, a, "table {table}: batch (left) and one by one (right)");
    }
}

/// [`dump`] of a SQLite database.
async fn sqlite_dump(url: &str) -> Vec<(&'static str, Vec<serde_json::Value>)> {
    let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
    let mut tables = Vec::new();
    for (table, order, unstable) in [
        ("messages", "id", &[][..]),
        ("conversations", "id", &[]),
        ("delivery_jobs", "seq", &[]),
        ("delivery_attempts", "id", &[]),
        ("pending_statuses", "id", &[]),
        (
            "callback_outbox",
            "seq",
            &["id", "created_at", "next_attempt_at"],
        ),
    ] {
        let rows = sqlx::query(&format!("SELECT * FROM {table} ORDER BY {order}"))
            .fetch_all(&mut c)
            .await
            .unwrap();
        let rows = rows
            .iter()
            .map(|row| {
                let mut out = serde_json::Map::new();
                for column in row.columns() {
                    if unstable.contains(&column.name()) {
                        continue;
                    }
                    let raw = row.try_get_raw(column.ordinal()).unwrap();
                    let value = if raw.is_null() {
                        serde_json::Value::Null
                    } else {
                        match raw.type_info().name() {
                            "INTEGER" => row.get::<i64, _>(column.ordinal()).into(),
                            "REAL" => row.get::<f64, _>(column.ordinal()).into(),
                            _ => row.get::<String, _>(column.ordinal()).into(),
                        }
                    };
                    out.insert(column.name().to_string(), value);
                }
                serde_json::Value::Object(out)
            })
            .collect();
        tables.push((table, rows));
    }
    let _ = c.close().await;
    tables
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
