//! The PostgreSQL store's group commit of delivery outcomes: concurrent outcomes are
//! committed together, and still decide exactly as one transaction each would, with the
//! same fence, from one instance or several sharing the database.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::common::create_pg_database;
use crate::common::store_seed::{self, Seeded, accept};
use plantilla::domain::ids::hash_token;
use plantilla::domain::status::{ConversationStatus, MessageStatus};
use plantilla::service::send::period_of;
use plantilla::store::postgres::PgStore;
use plantilla::store::*;
use tokio::task::JoinSet;

const LEASE: i64 = 30_000;
const ORPHAN_WAIT: i64 = 120_000;

async fn open(url: &str) -> Arc<PgStore> {
    Arc::new(PgStore::open(url, 16).await.expect("open PgStore"))
}

fn error(code: i64) -> ProviderError {
    ProviderError {
        code,
        title: format!("Error {code}"),
        details: Some("details".into()),
    }
}

fn status(message_id: &str, status: MessageStatus, at: i64) -> StatusUpdate {
    StatusUpdate {
        provider_message_id: None,
        message_id: Some(message_id.to_string()),
        channel_id: None,
        status,
        at,
        error: (status == MessageStatus::Failed).then(|| error(131_026)),
        pricing_category: None,
        pricing: None,
    }
}

fn outcome(message_id: &str, attempt: i64, now: i64, result: AttemptResult) -> AttemptOutcome {
    AttemptOutcome {
        message_id: message_id.to_string(),
        attempt,
        now,
        result,
    }
}

fn accepted(message_id: &str, wa_id: Option<&str>) -> AttemptResult {
    AttemptResult::Accepted {
        provider_message_id: format!("wamid.{message_id}"),
        wa_id: wa_id.map(str::to_string),
    }
}

/// The rows outcomes decide, as text, in a stable order (without the serial ids, random ids
/// and wall-clock times that differ between two databases).
async fn dump(store: &PgStore) -> Vec<String> {
    let mut out = Vec::new();
    for (what, sql) in [
        (
            "message",
            "SELECT row_to_json(m)::text FROM messages m ORDER BY id",
        ),
        (
            "conversation",
            "SELECT row_to_json(c)::text FROM conversations c ORDER BY id",
        ),
        (
            "job",
            "SELECT row_to_json(j)::text FROM delivery_jobs j ORDER BY message_id",
        ),
        (
            "attempt",
            "SELECT (to_jsonb(a) - 'id')::text FROM delivery_attempts a ORDER BY message_id, id",
        ),
        (
            "event",
            "SELECT (to_jsonb(o) - 'id' - 'seq' - 'created_at' - 'next_attempt_at')::text
             FROM callback_outbox o ORDER BY seq",
        ),
    ] {
        let rows: Vec<String> = sqlx::query_scalar(sql)
            .fetch_all(store.pool())
            .await
            .unwrap();
        out.extend(rows.into_iter().map(|r| format!("{what}: {r}")));
    }
    out
}

/// Twelve sends (ids `msg_01`…), claimed, then brought to the states the group's outcomes
/// meet: a retried and claimed again (attempt 2), ended by a status, failed by a status.
async fn prepare(store: &PgStore, s: &Seeded, base: i64) {
    for n in 1..=12 {
        let mut a = accept(s, &format!("5076100{n:04}"), base + n);
        a.period = period_of(a.now);
        a.expire_before = base - 1;
        a.new_conversation_id = format!("conv_{n:02}");
        a.new_message_id = format!("msg_{n:02}");
        a.callback_url = Some("http://127.0.0.1:9/callback".into());
        store.accept_send(&a).await.unwrap();
    }
    let t0 = base + 100;
    let jobs = store
        .claim_jobs(&s.channel.id, 100, t0, LEASE, ORPHAN_WAIT)
        .await
        .unwrap();
    assert_eq!(jobs.len(), 12);
    assert!(jobs.iter().all(|j| j.attempt == 1));
    // Retried, and claimed again (attempt 2): msg_03, msg_04, msg_11.
    for id in ["msg_03", "msg_04", "msg_11"] {
        let retry = AttemptResult::Retry {
            run_at: t0 + 1,
            error: error(131_000),
        };
        let done = store
            .finish_attempt(&outcome(id, 1, t0 + 1, retry))
            .await
            .unwrap();
        assert_eq!(done, Finished::Recorded { conversation: None });
    }
    let again = store
        .claim_jobs(&s.channel.id, 100, t0 + 2, LEASE, ORPHAN_WAIT)
        .await
        .unwrap();
    assert_eq!(
        again
            .iter()
            .map(|j| (j.message.id.as_str(), j.attempt))
            .collect::<Vec<_>>(),
        [("msg_03", 2), ("msg_04", 2), ("msg_11", 2)]
    );
    // Statuses that outran the provider's response end the job: delivered, failed, sent.
    for (id, st) in [
        ("msg_05", MessageStatus::Delivered),
        ("msg_06", MessageStatus::Failed),
        ("msg_10", MessageStatus::Sent),
    ] {
        let applied = store.apply_status(&status(id, st, t0 + 3)).await.unwrap();
        assert!(
            matches!(applied, StatusApplied::Applied { changed: true, .. }),
            "{applied:?}"
        );
    }
}

postgres_only!(
    a_group_of_outcomes_decides_exactly_as_the_same_outcomes_one_by_one,
    flavor = "multi_thread",
    worker_threads = 4
);
async fn a_group_of_outcomes_decides_exactly_as_the_same_outcomes_one_by_one() {
    let (db_grouped, db_alone) = (create_pg_database().await, create_pg_database().await);
    let (grouped, alone) = (open(&db_grouped.url()).await, open(&db_alone.url()).await);
    let s = store_seed::seed(grouped.as_ref(), 1000).await;
    alone.insert_account(&s.account).await.unwrap();
    alone
        .insert_channel(&s.channel, &hash_token(&s.channel.id))
        .await
        .unwrap();
    alone.insert_template(&s.template).await.unwrap();
    let base = plantilla::now_ms() - 10_000;
    prepare(&grouped, &s, base).await;
    prepare(&alone, &s, base).await;
    assert_eq!(dump(&grouped).await, dump(&alone).await, "the same start");

    let t = base + 200;
    let retry = |run_at| AttemptResult::Retry {
        run_at,
        error: error(131_000),
    };
    let outcomes = vec![
        outcome("msg_01", 1, t, accepted("msg_01", Some("50761000001"))),
        // Stale: a newer claim (attempt 2) owns the job.
        outcome("msg_03", 1, t + 1, accepted("msg_03", None)),
        outcome("msg_07", 1, t + 2, retry(t + 5_000)),
        // The job ended by a delivered status: the ids are still recorded.
        outcome("msg_05", 1, t + 3, accepted("msg_05", Some("50761000005"))),
        // A permanent failure: the message fails, its pending conversation closes.
        outcome(
            "msg_09",
            1,
            t + 4,
            AttemptResult::Failed {
                error: error(131_026),
            },
        ),
        outcome("msg_02", 1, t + 5, accepted("msg_02", None)),
        // Failed by a status first: the error stays.
        outcome("msg_06", 1, t + 6, accepted("msg_06", None)),
        // A halted channel: back to the queue, the attempt given back.
        outcome(
            "msg_08",
            1,
            t + 7,
            AttemptResult::Requeue {
                run_at: t + 9_000,
                error: error(131_049),
            },
        ),
        // A failure whose job a status ended: stale.
        outcome(
            "msg_10",
            1,
            t + 8,
            AttemptResult::Failed {
                error: error(131_026),
            },
        ),
        // Accepted on its second attempt: the first attempt's error is cleared.
        outcome("msg_04", 2, t + 9, accepted("msg_04", None)),
        // A failure of a stale attempt.
        outcome(
            "msg_11",
            1,
            t + 10,
            AttemptResult::Failed {
                error: error(131_026),
            },
        ),
        outcome("msg_12", 1, t + 11, accepted("msg_12", Some("50761000012"))),
    ];

    let together = grouped.finish_group(&outcomes).await.unwrap();
    let mut one_by_one = Vec::new();
    for o in &outcomes {
        one_by_one.push(alone.finish_attempt(o).await.unwrap());
    }
    assert_eq!(together, one_by_one);
    let recorded = |conversation| Finished::Recorded { conversation };
    assert_eq!(
        together,
        vec![
            recorded(None),
            Finished::Stale,
            recorded(None),
            recorded(None),
            recorded(Some(("conv_09".to_string(), ConversationStatus::Closed))),
            recorded(None),
            recorded(None),
            recorded(None),
            Finished::Stale,
            recorded(None),
            Finished::Stale,
            recorded(None),
        ],
        "every kind of outcome was decided (or the comparison proved little)"
    );
    let rows = dump(&grouped).await;
    assert_eq!(rows, dump(&alone).await);
    assert!(
        rows.iter().filter(|r| r.starts_with("event: ")).count() >= 2,
        "the failure queued its events: {rows:#?}"
    );
    // One statement took the accepted ones: their attempts are recorded.
    let attempts: i64 =
        sqlx::query_scalar("SELECT count(*) FROM delivery_attempts WHERE outcome = 'accepted'")
            .fetch_one(grouped.pool())
            .await
            .unwrap();
    assert_eq!(attempts, 6);

    // A second outcome for one message is refused by the hook (the combiner keeps it for
    // the next group).
    let twice = [
        outcome("msg_07", 1, t + 20, accepted("msg_07", None)),
        outcome("msg_07", 1, t + 21, accepted("msg_07", None)),
    ];
    assert!(grouped.finish_group(&twice).await.is_err());
    drop((grouped, alone));
    drop((db_grouped, db_alone));
}

postgres_only!(
    concurrent_outcomes_from_two_instances_land_exactly_once,
    flavor = "multi_thread",
    worker_threads = 4
);
/// Many outcomes at once, from two instances sharing the database, with a stale duplicate
/// racing some of them: each is written once, the stale ones not at all, and they were
/// committed in groups.
async fn concurrent_outcomes_from_two_instances_land_exactly_once() {
    let db = create_pg_database().await;
    let (a, b) = (open(&db.url()).await, open(&db.url()).await);
    let s = store_seed::seed(a.as_ref(), 100_000).await;
    const N: usize = 400;
    let now = plantilla::now_ms();
    for i in 0..N {
        let send = accept(&s, &format!("5077{i:07}"), now);
        assert!(matches!(
            a.accept_send(&send).await.unwrap(),
            AcceptOutcome::Pending { .. }
        ));
    }
    let jobs = a
        .claim_jobs(&s.channel.id, N as u32, now, LEASE, ORPHAN_WAIT)
        .await
        .unwrap();
    assert_eq!(jobs.len(), N);

    let mut tasks = JoinSet::new();
    for (i, job) in jobs.iter().enumerate() {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let id = job.message.id.clone();
        let result = match i % 10 {
            0 => AttemptResult::Failed {
                error: error(131_026),
            },
            1 => AttemptResult::Retry {
                run_at: now + 60_000,
                error: error(131_000),
            },
            _ => accepted(&id, None),
        };
        let o = outcome(&id, job.attempt, plantilla::now_ms(), result);
        tasks.spawn(async move { (i, false, store.finish_attempt(&o).await.unwrap()) });
        if i % 7 == 0 {
            // A stale attempt's failure, from the other instance and the same one.
            for store in [a.clone(), b.clone()] {
                let stale = outcome(
                    &id,
                    job.attempt - 1,
                    plantilla::now_ms(),
                    AttemptResult::Failed {
                        error: error(131_026),
                    },
                );
                tasks.spawn(async move { (i, true, store.finish_attempt(&stale).await.unwrap()) });
            }
        }
    }
    let mut answers = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        let (i, stale, finished) = joined.unwrap();
        if stale {
            assert_eq!(finished, Finished::Stale, "message {i}");
        } else {
            assert!(
                matches!(finished, Finished::Recorded { .. }),
                "message {i}: {finished:?}"
            );
            assert!(answers.insert(i, finished).is_none());
        }
    }
    assert_eq!(answers.len(), N);

    let rows: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT message_id, count(*), min(outcome) FROM delivery_attempts GROUP BY message_id",
    )
    .fetch_all(a.pool())
    .await
    .unwrap();
    let attempts: BTreeMap<String, (i64, String)> =
        rows.into_iter().map(|(m, n, o)| (m, (n, o))).collect();
    assert_eq!(attempts.len(), N, "every outcome recorded");
    for (i, job) in jobs.iter().enumerate() {
        let id = &job.message.id;
        let expected = match i % 10 {
            0 => "failed",
            1 => "retry",
            _ => "accepted",
        };
        assert_eq!(
            attempts[id],
            (1, expected.to_string()),
            "{id}: exactly once"
        );
        let m = a.message(id).await.unwrap().expect("stored");
        match i % 10 {
            0 => assert_eq!(m.status, MessageStatus::Failed),
            1 => assert_eq!(m.status, MessageStatus::Queued),
            _ => {
                assert_eq!(m.status, MessageStatus::Sending);
                assert_eq!(
                    m.provider_message_id.as_deref(),
                    Some(format!("wamid.{id}").as_str())
                );
            }
        }
    }
    let jobs_left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM delivery_jobs WHERE lease_until IS NULL AND run_at = $1",
    )
    .bind(now + 60_000)
    .fetch_one(a.pool())
    .await
    .unwrap();
    let all_jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM delivery_jobs")
        .fetch_one(a.pool())
        .await
        .unwrap();
    assert_eq!((jobs_left, all_jobs), ((N / 10) as i64, (N / 10) as i64));
    let (stats_a, stats_b) = (a.outcome_group_stats(), b.outcome_group_stats());
    let groups = stats_a.groups.load(Ordering::Relaxed) + stats_b.groups.load(Ordering::Relaxed);
    let grouped = stats_a.grouped_outcomes.load(Ordering::Relaxed)
        + stats_b.grouped_outcomes.load(Ordering::Relaxed);
    assert!(groups > 0, "{N} concurrent outcomes made no group");
    assert!(grouped > groups, "groups of one are not groups");
    drop((a, b));
    drop(db);
}
