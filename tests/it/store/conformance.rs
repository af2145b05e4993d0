//! What every `Store` must do, whatever the database: each test runs on SQLite and on
//! PostgreSQL (`both_databases!`) through the `Store` trait alone. Every method once, with what
//! it reads back; one pending conversation per
//! number and the plan limit under concurrent sends, claims that never hand a job out twice,
//! fenced stale attempts, monotonic statuses, a status for another channel, concurrent copies
//! of one inbound message, claims over several channels, statuses kept for later.
//!
//! What one engine adds is tested beside this module: `sqlite_engine` (the group commit) and
//! `postgres_engine` (migrations, transaction conflicts, several instances, statements).

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;

use plantilla::app::App;
use plantilla::config::Config;
use plantilla::domain::ids::{hash_token, new_id};
use plantilla::domain::status::{CloseReason, ConversationStatus, MessageStatus};
use plantilla::service::send::{SendError, SendOutcome, send};
use plantilla::store::postgres::PgStore;
use plantilla::store::sqlite::SqliteStore;
use plantilla::store::*;
use serde_json::json;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use crate::common::fresh_database;
use crate::common::store_seed::{self, Seeded, accept, request, sent_message, status};

const ORPHAN_WAIT: i64 = 120_000;
const LEASE: i64 = 30_000;

/// Runs `body` with the URL of a fresh database of the running case (a SQLite file, or a new
/// PostgreSQL database), which is dropped afterwards even when the body panics.
async fn with_database<F, Fut>(body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temp dir");
    let database = fresh_database(dir.path()).await;
    body(database.url.clone()).await;
}

/// A store under test: the `Store` trait, and the URL its rows can be counted through.
struct TestStore {
    store: Arc<dyn Store>,
    url: String,
}

impl Deref for TestStore {
    type Target = dyn Store;
    fn deref(&self) -> &(dyn Store + 'static) {
        &*self.store
    }
}

async fn open(url: &str) -> Arc<TestStore> {
    let store: Arc<dyn Store> = if url.starts_with("postgres") {
        Arc::new(PgStore::open(url, 16).await.expect("open PgStore"))
    } else {
        Arc::new(
            SqliteStore::open(url, "full")
                .await
                .expect("open SqliteStore"),
        )
    };
    Arc::new(TestStore {
        store,
        url: url.to_string(),
    })
}

/// One integer from a query (written in SQL both databases read alike).
async fn count(store: &TestStore, sql: &str) -> i64 {
    if store.url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(&store.url).await.unwrap();
        let n = sqlx::query_scalar(sql).fetch_one(&pool).await.expect(sql);
        pool.close().await;
        n
    } else {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(store.url.trim_start_matches("sqlite://"));
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap();
        let n = sqlx::query_scalar(sql).fetch_one(&pool).await.expect(sql);
        pool.close().await;
        n
    }
}

async fn seed(store: &TestStore, conversation_limit: i64) -> Seeded {
    store_seed::seed(&**store, conversation_limit).await
}

/// An endpoint of the seeded account for `event_type`, at an address nobody answers.
async fn add_endpoint(store: &TestStore, s: &Seeded, event_type: &str) {
    store
        .insert_webhook_endpoint(
            &WebhookEndpoint {
                id: new_id("we"),
                account_id: s.account.id.clone(),
                url: "http://127.0.0.1:9/hooks".into(),
                event_types: vec![event_type.into()],
                description: None,
                secret: plantilla::domain::callback::new_signing_secret(),
                created_at: plantilla::now_ms(),
            },
            None,
        )
        .await
        .unwrap();
}

fn app(store: Arc<TestStore>, url: &str) -> App {
    let config = Config {
        database_url: url.to_string(),
        ..Config::default()
    };
    App::with_store(store.store.clone(), config).expect("app")
}

both_databases!(
    forty_concurrent_sends_to_one_new_number_give_one_pending,
    flavor = "multi_thread",
    worker_threads = 4
);
async fn forty_concurrent_sends_to_one_new_number_give_one_pending() {
    with_database(|url| async move {
        let store = open(&url).await;
        let s = Arc::new(seed(&store, 1000).await);
        let app = app(store.clone(), &url);
        let barrier = Arc::new(Barrier::new(40));
        let mut tasks = JoinSet::new();
        for i in 0..40 {
            let (app, s, barrier) = (app.clone(), s.clone(), barrier.clone());
            tasks.spawn(async move {
                // Half give a name (the contact upsert path), half do not.
                let name = (i % 2 == 0).then_some("Ana");
                barrier.wait().await;
                send(&app, &s.channel, request(&s, "50755667788", name)).await
            });
        }
        let mut pending = Vec::new();
        let mut already = Vec::new();
        while let Some(done) = tasks.join_next().await {
            match done.unwrap().expect("send") {
                SendOutcome::Pending {
                    conversation_id, ..
                } => pending.push(conversation_id),
                SendOutcome::AlreadyPending { conversation_id } => already.push(conversation_id),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(pending.len(), 1, "pending {pending:?}, already {already:?}");
        assert_eq!(already.len(), 39);
        assert!(already.iter().all(|c| *c == pending[0]));
        assert_eq!(count(&store, "SELECT count(*) FROM conversations").await, 1);
        assert_eq!(count(&store, "SELECT count(*) FROM messages").await, 1);
        assert_eq!(count(&store, "SELECT count(*) FROM delivery_jobs").await, 1);
        assert_eq!(
            count(
                &store,
                "SELECT CAST(sum(used) AS BIGINT) FROM conversation_usage"
            )
            .await,
            1
        );
    })
    .await;
}

both_databases!(
    plan_limit_holds_for_concurrent_new_numbers,
    flavor = "multi_thread",
    worker_threads = 4
);
async fn plan_limit_holds_for_concurrent_new_numbers() {
    with_database(|url| async move {
        let store = open(&url).await;
        let s = Arc::new(seed(&store, 5).await);
        let app = app(store.clone(), &url);
        let barrier = Arc::new(Barrier::new(20));
        let mut tasks = JoinSet::new();
        for i in 0..20 {
            let (app, s, barrier) = (app.clone(), s.clone(), barrier.clone());
            tasks.spawn(async move {
                let phone = format!("5076{i:07}");
                barrier.wait().await;
                send(&app, &s.channel, request(&s, &phone, None)).await
            });
        }
        let (mut pending, mut limited) = (0, 0);
        while let Some(done) = tasks.join_next().await {
            match done.unwrap() {
                Ok(SendOutcome::Pending { .. }) => pending += 1,
                Err(SendError::ConversationLimit { .. }) => limited += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((pending, limited), (5, 15));
        assert_eq!(count(&store, "SELECT count(*) FROM conversations").await, 5);
        assert_eq!(count(&store, "SELECT count(*) FROM delivery_jobs").await, 5);
        assert_eq!(
            count(
                &store,
                "SELECT CAST(sum(used) AS BIGINT) FROM conversation_usage"
            )
            .await,
            5
        );
    })
    .await;
}

both_databases!(
    concurrent_claims_never_return_the_same_job,
    flavor = "multi_thread",
    worker_threads = 4
);
async fn concurrent_claims_never_return_the_same_job() {
    with_database(|url| async move {
        let store = open(&url).await;
        let s = seed(&store, 1000).await;
        let now = plantilla::now_ms();
        for i in 0..200 {
            let outcome = store
                .accept_send(&accept(&s, &format!("5076{i:07}"), now))
                .await
                .unwrap();
            assert!(matches!(outcome, AcceptOutcome::Pending { .. }));
        }
        let barrier = Arc::new(Barrier::new(2));
        let mut claimers = JoinSet::new();
        for _ in 0..2 {
            let (store, channel_id, barrier) =
                (store.clone(), s.channel.id.clone(), barrier.clone());
            claimers.spawn(async move {
                barrier.wait().await;
                let mut mine = Vec::new();
                loop {
                    let jobs = store
                        .claim_jobs(&channel_id, 7, now, LEASE, ORPHAN_WAIT)
                        .await
                        .expect("claim");
                    if jobs.is_empty() {
                        break;
                    }
                    for job in jobs {
                        assert_eq!(job.attempt, 1);
                        assert_eq!(job.message.status, MessageStatus::Sending);
                        mine.push(job.message.id);
                    }
                }
                mine
            });
        }
        let mut all = Vec::new();
        let mut per_claimer = Vec::new();
        while let Some(done) = claimers.join_next().await {
            let mine = done.unwrap();
            per_claimer.push(mine.len());
            all.extend(mine);
        }
        let distinct: HashSet<&String> = all.iter().collect();
        assert_eq!(distinct.len(), all.len(), "a job was claimed twice");
        assert_eq!(all.len(), 200, "claims per caller: {per_claimer:?}");
        assert_eq!(
            count(
                &store,
                "SELECT count(*) FROM delivery_jobs WHERE attempt = 1 AND lease_until IS NOT NULL"
            )
            .await,
            200
        );
    })
    .await;
}

both_databases!(a_stale_attempt_is_fenced_off);
async fn a_stale_attempt_is_fenced_off() {
    with_database(|url| async move {
        let store = open(&url).await;
        let s = seed(&store, 1000).await;
        let now = plantilla::now_ms();
        let AcceptOutcome::Pending { message_id, .. } = store
            .accept_send(&accept(&s, "50755667788", now))
            .await
            .unwrap()
        else {
            panic!("expected pending");
        };
        let first = store
            .claim_jobs(&s.channel.id, 10, now, 1000, 0)
            .await
            .unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].attempt, 1);
        // Still leased: nobody else gets it.
        assert!(
            store
                .claim_jobs(&s.channel.id, 10, now + 500, 1000, 0)
                .await
                .unwrap()
                .is_empty()
        );
        // The lease runs out (the first dispatcher is presumed dead): a second claim.
        let second = store
            .claim_jobs(&s.channel.id, 10, now + 2000, 1000, 0)
            .await
            .unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].attempt, 2);

        let error = ProviderError {
            code: 131000,
            title: "Something went wrong".into(),
            details: None,
        };
        for result in [
            AttemptResult::Accepted {
                provider_message_id: "wamid.old".into(),
                wa_id: None,
            },
            AttemptResult::Retry {
                run_at: now + 5000,
                error: error.clone(),
            },
            AttemptResult::Failed {
                error: error.clone(),
            },
        ] {
            let stale = store
                .finish_attempt(&AttemptOutcome {
                    message_id: message_id.clone(),
                    attempt: 1,
                    now: now + 2100,
                    result,
                })
                .await
                .unwrap();
            assert_eq!(stale, Finished::Stale);
        }
        let message = store.message(&message_id).await.unwrap().unwrap();
        assert_eq!(message.status, MessageStatus::Sending);
        assert_eq!(message.provider_message_id, None);
        assert!(
            store
                .message_attempts(&message_id)
                .await
                .unwrap()
                .is_empty()
        );

        // The current attempt retries, then succeeds.
        let retried = store
            .finish_attempt(&AttemptOutcome {
                message_id: message_id.clone(),
                attempt: 2,
                now: now + 2200,
                result: AttemptResult::Retry {
                    run_at: now + 3000,
                    error: error.clone(),
                },
            })
            .await
            .unwrap();
        assert_eq!(retried, Finished::Recorded { conversation: None });
        let queued = store.message(&message_id).await.unwrap().unwrap();
        assert_eq!(queued.status, MessageStatus::Queued);
        assert_eq!(queued.error.as_ref().map(|e| e.code), Some(131000));
        assert_eq!(store.next_due(0).await.unwrap(), Some(now + 3000));
        let third = store
            .claim_jobs(&s.channel.id, 10, now + 3000, 1000, 0)
            .await
            .unwrap();
        assert_eq!(third[0].attempt, 3);
        assert_eq!(third[0].message.attempts, 3);
        let accepted = store
            .finish_attempt(&AttemptOutcome {
                message_id: message_id.clone(),
                attempt: 3,
                now: now + 3100,
                result: AttemptResult::Accepted {
                    provider_message_id: "wamid.new".into(),
                    wa_id: Some("50755667788".into()),
                },
            })
            .await
            .unwrap();
        assert_eq!(accepted, Finished::Recorded { conversation: None });
        let message = store.message(&message_id).await.unwrap().unwrap();
        assert_eq!(message.provider_message_id.as_deref(), Some("wamid.new"));
        assert_eq!(message.error.as_ref().map(|e| e.code), None);
        assert_eq!(store.next_due(0).await.unwrap(), None);
        let attempts = store.message_attempts(&message_id).await.unwrap();
        let outcomes: Vec<(i64, &str)> = attempts
            .iter()
            .map(|a| (a.attempt, a.outcome.as_str()))
            .collect();
        assert_eq!(outcomes, [(2, "retry"), (3, "accepted")]);
        // Too late for the fence: the job is gone, the old attempt is stale.
        let late = store
            .finish_attempt(&AttemptOutcome {
                message_id: message_id.clone(),
                attempt: 1,
                now: now + 4000,
                result: AttemptResult::Failed { error },
            })
            .await
            .unwrap();
        assert_eq!(late, Finished::Stale);
    })
    .await;
}

both_databases!(
    statuses_are_monotonic_and_failed_is_final,
    flavor = "multi_thread",
    worker_threads = 4
);
async fn statuses_are_monotonic_and_failed_is_final() {
    with_database(|url| async move {
        let store = open(&url).await;
        let s = seed(&store, 1000).await;
        let now = plantilla::now_ms();

        // read, then a late delivered: stays read, keeps the delivered time.
        let (conv_a, msg_a) = sent_message(&**store, &s, "50755667788", "wamid.a").await;
        let StatusApplied::Applied {
            status: st,
            changed,
            conversation,
            ..
        } = store
            .apply_status(&status("wamid.a", MessageStatus::Read, now + 10))
            .await
            .unwrap()
        else {
            panic!("unknown message");
        };
        assert_eq!((st, changed), (MessageStatus::Read, true));
        assert_eq!(
            conversation,
            Some((conv_a.clone(), ConversationStatus::Open))
        );
        let StatusApplied::Applied {
            status: st,
            changed,
            ..
        } = store
            .apply_status(&status("wamid.a", MessageStatus::Delivered, now + 5))
            .await
            .unwrap()
        else {
            panic!("unknown message");
        };
        assert_eq!((st, changed), (MessageStatus::Read, false));
        let m = store.message(&msg_a).await.unwrap().unwrap();
        assert_eq!(m.status, MessageStatus::Read);
        assert_eq!((m.read_at, m.delivered_at), (Some(now + 10), Some(now + 5)));
        let c = store.conversation(&conv_a).await.unwrap().unwrap();
        assert_eq!(c.status, ConversationStatus::Open);

        // failed: final, closes the pending conversation of its first message.
        let (conv_b, msg_b) = sent_message(&**store, &s, "50766778899", "wamid.b").await;
        let mut failed = status("wamid.b", MessageStatus::Failed, now + 20);
        failed.error = Some(ProviderError {
            code: 131026,
            title: "Message undeliverable".into(),
            details: Some("not on WhatsApp".into()),
        });
        let StatusApplied::Applied {
            status: st,
            changed,
            conversation,
            ..
        } = store.apply_status(&failed).await.unwrap()
        else {
            panic!("unknown message");
        };
        assert_eq!((st, changed), (MessageStatus::Failed, true));
        assert_eq!(
            conversation,
            Some((conv_b.clone(), ConversationStatus::Closed))
        );
        for late in [
            MessageStatus::Sent,
            MessageStatus::Delivered,
            MessageStatus::Read,
        ] {
            let StatusApplied::Applied {
                status: st,
                changed,
                ..
            } = store
                .apply_status(&status("wamid.b", late, now + 30))
                .await
                .unwrap()
            else {
                panic!("unknown message");
            };
            assert_eq!((st, changed), (MessageStatus::Failed, false));
        }
        let m = store.message(&msg_b).await.unwrap().unwrap();
        assert_eq!(m.status, MessageStatus::Failed);
        assert_eq!(m.delivered_at, None);
        assert_eq!(m.error.map(|e| e.code), Some(131026));
        let c = store.conversation(&conv_b).await.unwrap().unwrap();
        assert_eq!(c.status, ConversationStatus::Closed);
        assert_eq!(c.close_reason.as_deref(), Some("first_message_failed"));

        // Many webhooks for one message at once: the furthest status wins, each applied once.
        let (_, msg_c) = sent_message(&**store, &s, "50777889900", "wamid.c").await;
        let mut webhooks = JoinSet::new();
        for i in 0..30 {
            let store = store.clone();
            let st = [
                MessageStatus::Sent,
                MessageStatus::Delivered,
                MessageStatus::Read,
            ][i % 3];
            webhooks.spawn(async move {
                store
                    .apply_status(&status("wamid.c", st, now + 100 + i as i64))
                    .await
                    .expect("apply")
            });
        }
        let mut changes = 0;
        while let Some(done) = webhooks.join_next().await {
            if let StatusApplied::Applied { changed: true, .. } = done.unwrap() {
                changes += 1;
            }
        }
        assert!((1..=3).contains(&changes), "{changes} changes");
        let m = store.message(&msg_c).await.unwrap().unwrap();
        assert_eq!(m.status, MessageStatus::Read);

        assert!(matches!(
            store
                .apply_status(&status("wamid.unknown", MessageStatus::Sent, now))
                .await
                .unwrap(),
            StatusApplied::UnknownMessage
        ));
    })
    .await;
}

both_databases!(a_status_finds_its_message_by_the_wamid_it_has_now);
async fn a_status_finds_its_message_by_the_wamid_it_has_now() {
    with_database(|url| async move {
        let store = open(&url).await;
        let s = seed(&store, 1000).await;
        let now = plantilla::now_ms();
        let (_, message_id) = sent_message(&**store, &s, "50755667788", "wamid.first").await;
        // Meta declined it (131049): back to the queue, its wamid forgotten.
        let error = ProviderError {
            code: 131049,
            title: "Not delivered to maintain healthy ecosystem engagement".into(),
            details: None,
        };
        assert!(
            store
                .requeue_declined(&message_id, None, &error, now, now)
                .await
                .unwrap()
        );
        for update in [
            vec![status("wamid.first", MessageStatus::Delivered, now + 1)],
            vec![
                status("wamid.first", MessageStatus::Delivered, now + 1),
                status("wamid.first", MessageStatus::Read, now + 2),
            ],
        ] {
            let applied = store.apply_statuses(&update).await.unwrap();
            assert!(
                applied
                    .iter()
                    .all(|a| matches!(a, StatusApplied::UnknownMessage)),
                "the forgotten wamid still finds the message: {applied:?}"
            );
        }
        assert!(matches!(
            store
                .apply_status(&status("wamid.first", MessageStatus::Read, now + 2))
                .await
                .unwrap(),
            StatusApplied::UnknownMessage
        ));

        // Sent again: the new wamid finds it, alone and in a group.
        let jobs = store
            .claim_jobs(&s.channel.id, 10, now + 10, 30_000, 120_000)
            .await
            .unwrap();
        let job = jobs.iter().find(|j| j.message.id == message_id).unwrap();
        let accepted = store
            .finish_attempt(&AttemptOutcome {
                message_id: message_id.clone(),
                attempt: job.attempt,
                now: now + 20,
                result: AttemptResult::Accepted {
                    provider_message_id: "wamid.second".into(),
                    wa_id: None,
                },
            })
            .await
            .unwrap();
        assert!(
            matches!(accepted, Finished::Recorded { .. }),
            "{accepted:?}"
        );
        let StatusApplied::Applied { status: st, .. } = store
            .apply_status(&status("wamid.second", MessageStatus::Delivered, now + 30))
            .await
            .unwrap()
        else {
            panic!("the new wamid does not find its message");
        };
        assert_eq!(st, MessageStatus::Delivered);
        let applied = store
            .apply_statuses(&[status("wamid.second", MessageStatus::Read, now + 40)])
            .await
            .unwrap();
        assert!(
            matches!(
                applied[..],
                [StatusApplied::Applied {
                    status: MessageStatus::Read,
                    ..
                }]
            ),
            "{applied:?}"
        );
        let m = store.message(&message_id).await.unwrap().unwrap();
        assert_eq!(m.provider_message_id.as_deref(), Some("wamid.second"));
        assert_eq!(m.status, MessageStatus::Read);
    })
    .await;
}

both_databases!(a_status_naming_another_channel_changes_nothing);
async fn a_status_naming_another_channel_changes_nothing() {
    with_database(|url| async move {
        let store = open(&url).await;
        let s = seed(&store, 1000).await;
        let now = plantilla::now_ms();
        let AcceptOutcome::Pending { message_id, .. } = store
            .accept_send(&accept(&s, "50755660001", now))
            .await
            .unwrap()
        else {
            panic!("expected pending");
        };
        // The status ends the job before it reads the message; naming another channel, it
        // must leave the job (and the message) as they were.
        let forged = StatusUpdate {
            provider_message_id: None,
            message_id: Some(message_id.clone()),
            channel_id: Some("ch_someone_else".into()),
            pricing_category: Some("marketing".into()),
            pricing: None,
            ..status("wamid.none", MessageStatus::Delivered, now)
        };
        assert!(matches!(
            store.apply_status(&forged).await.unwrap(),
            StatusApplied::OtherChannel
        ));
        let message = store.message(&message_id).await.unwrap().unwrap();
        assert_eq!(message.status, MessageStatus::Queued);
        assert_eq!(message.pricing_category, None);
        let jobs = store
            .claim_jobs(&s.channel.id, 10, now, LEASE, ORPHAN_WAIT)
            .await
            .unwrap();
        assert_eq!(jobs.len(), 1, "the job is still there to send");
        assert_eq!(jobs[0].message.id, message_id);
    })
    .await;
}

both_databases!(
    a_batch_of_statuses_applies_as_one_by_one,
    flavor = "multi_thread",
    worker_threads = 4
);
/// A webhook's statuses in one `apply_statuses`: several of one message (in order), of other
/// messages, a late one, a failure, an unknown wamid, another channel's message, a queued
/// message reached by our id (whose wamid the next status uses). Two alike sets of messages,
/// one given the batch and one the same statuses one by one, end with the same answers and
/// rows.
async fn a_batch_of_statuses_applies_as_one_by_one() {
    with_database(|url| async move {
        let store = open(&url).await;
        let s = seed(&store, 1000).await;
        let now = plantilla::now_ms();
        let mut sets = Vec::new();
        for (n, batch) in [(1, true), (2, false)] {
            let wamid = |i: usize| format!("wamid.{n}.{i}");
            let mut messages = Vec::new();
            for i in 0..4 {
                messages
                    .push(sent_message(&**store, &s, &format!("5075{n}00000{i}"), &wamid(i)).await);
            }
            let AcceptOutcome::Pending {
                conversation_id,
                message_id: queued,
            } = store
                .accept_send(&accept(&s, &format!("5075{n}000004"), now))
                .await
                .unwrap()
            else {
                panic!("expected pending");
            };
            messages.push((conversation_id, queued.clone()));
            let mut failed = status(&wamid(2), MessageStatus::Failed, now + 20);
            failed.error = Some(ProviderError {
                code: 131026,
                title: "Message undeliverable".into(),
                details: Some("not on WhatsApp".into()),
            });
            let updates = vec![
                status(&wamid(0), MessageStatus::Sent, now + 1),
                status(&wamid(1), MessageStatus::Read, now + 5),
                status(&wamid(0), MessageStatus::Delivered, now + 2),
                StatusUpdate {
                    pricing_category: Some("utility".into()),
                    ..status(&wamid(1), MessageStatus::Delivered, now + 4)
                },
                failed,
                status(&format!("wamid.{n}.unknown"), MessageStatus::Delivered, now),
                status(&wamid(0), MessageStatus::Read, now + 3),
                status(&wamid(2), MessageStatus::Delivered, now + 21),
                StatusUpdate {
                    channel_id: Some("ch_someone_else".into()),
                    ..status(&wamid(3), MessageStatus::Read, now + 6)
                },
                StatusUpdate {
                    message_id: Some(queued.clone()),
                    ..status(&wamid(4), MessageStatus::Delivered, now + 7)
                },
                status(&wamid(4), MessageStatus::Read, now + 8),
            ];
            let results = if batch {
                store.apply_statuses(&updates).await.unwrap()
            } else {
                let mut results = Vec::new();
                for u in &updates {
                    results.push(store.apply_status(u).await.unwrap());
                }
                results
            };
            // The answers and rows, with the ids of the set replaced by their place in it.
            let place = |id: &str| {
                messages
                    .iter()
                    .position(|(c, m)| c == id || m == id)
                    .map_or(id.to_string(), |i| format!("#{i}"))
            };
            let answers: Vec<String> = results
                .iter()
                .map(|r| match r {
                    StatusApplied::Applied {
                        message_id,
                        status,
                        changed,
                        conversation,
                    } => format!(
                        "{} {status} {changed} {:?}",
                        place(message_id),
                        conversation.as_ref().map(|(c, st)| (place(c), *st))
                    ),
                    other => format!("{other:?}"),
                })
                .collect();
            let mut rows = Vec::new();
            for (conversation_id, message_id) in &messages {
                let m = store.message(message_id).await.unwrap().unwrap();
                let c = store.conversation(conversation_id).await.unwrap().unwrap();
                rows.push(format!(
                    "{} {:?} {:?} {:?} {:?} {:?} | {} {:?} {:?} {:?}",
                    m.status,
                    m.provider_message_id
                        .map(|w| w.replace(&format!("wamid.{n}."), "wamid.")),
                    (m.delivered_at, m.read_at, m.failed_at),
                    m.error.map(|e| (e.code, e.title, e.details)),
                    m.pricing_category,
                    m.pricing,
                    c.status,
                    c.close_reason,
                    c.opened_at,
                    c.closed_at,
                ));
            }
            let jobs = count(
                &store,
                &format!("SELECT count(*) FROM delivery_jobs WHERE message_id = '{queued}'"),
            )
            .await;
            sets.push((answers, rows, jobs));
        }
        let (answers, rows, jobs) = &sets[0];
        assert_eq!(sets[0], sets[1], "a batch applies as one by one");
        assert_eq!(
            answers[..3],
            [
                "#0 sent true Some((\"#0\", Open))",
                "#1 read true Some((\"#1\", Open))",
                "#0 delivered true None",
            ],
            "{answers:#?}"
        );
        assert_eq!(answers[5], "UnknownMessage");
        assert_eq!(answers[6], "#0 read true None");
        assert_eq!(answers[8], "OtherChannel");
        assert_eq!(answers[10], "#4 read true None");
        assert!(rows[0].starts_with("read "), "{rows:#?}");
        assert!(rows[2].starts_with("failed "), "{rows:#?}");
        assert!(rows[3].starts_with("sending "), "{rows:#?}");
        assert!(rows[4].starts_with("read Some(\"wamid.4\")"), "{rows:#?}");
        assert_eq!(*jobs, 0, "a status ends the queued message's job");
    })
    .await;
}

both_databases!(
    concurrent_batches_naming_messages_in_any_order_all_apply,
    flavor = "multi_thread",
    worker_threads = 4
);
/// Webhooks whose batches name the same messages in opposite orders, at once: every batch
/// applies (on PostgreSQL none deadlocks: a batch takes its locks in one order), and every
/// message ends read.
async fn concurrent_batches_naming_messages_in_any_order_all_apply() {
    with_database(|url| async move {
        let store = open(&url).await;
        let s = seed(&store, 1000).await;
        let now = plantilla::now_ms();
        let mut messages = Vec::new();
        for i in 0..6 {
            let wamid = format!("wamid.c{i}");
            let (_, message_id) =
                sent_message(&**store, &s, &format!("507770000{i}"), &wamid).await;
            messages.push((wamid, message_id));
        }
        let messages = Arc::new(messages);
        let mut webhooks = JoinSet::new();
        for w in 0..12 {
            let (store, messages) = (store.clone(), messages.clone());
            webhooks.spawn(async move {
                let mut order: Vec<usize> = (0..messages.len()).collect();
                if w % 2 == 1 {
                    order.reverse();
                }
                let updates: Vec<StatusUpdate> = order
                    .iter()
                    .flat_map(|&i| {
                        [MessageStatus::Delivered, MessageStatus::Read]
                            .map(|st| status(&messages[i].0, st, now + w))
                    })
                    .collect();
                store.apply_statuses(&updates).await.expect("batch applied")
            });
        }
        let mut changes = 0;
        while let Some(done) = webhooks.join_next().await {
            let results = done.unwrap();
            assert_eq!(results.len(), 12);
            changes += results
                .iter()
                .filter(|r| matches!(r, StatusApplied::Applied { changed: true, .. }))
                .count();
        }
        assert_eq!(changes, 12, "each message delivered then read, once");
        for (_, message_id) in messages.iter() {
            let m = store.message(message_id).await.unwrap().unwrap();
            assert_eq!(m.status, MessageStatus::Read);
        }
    })
    .await;
}

both_databases!(concurrent_copies_of_an_inbound_message_store_and_forward_it_once);
/// Meta's retries of one inbound webhook arriving at once on several instances: exactly one
/// stores the message and queues `message.received`; the others see a duplicate. The reply
/// finds the message it answers and the conversation of its number.
async fn concurrent_copies_of_an_inbound_message_store_and_forward_it_once() {
    with_database(|url| async move {
        let store = open(&url).await;
        let s = seed(&store, 1000).await;
        let (conversation_id, message_id) =
            sent_message(&**store, &s, "50755661234", "wamid.template-1").await;
        add_endpoint(&store, &s, "message.received").await;
        let copies = 12;
        let barrier = Arc::new(Barrier::new(copies));
        let mut tasks = JoinSet::new();
        for _ in 0..copies {
            let store = store.clone();
            let barrier = barrier.clone();
            let insert = InboundInsert {
                id: new_id("in"),
                account_id: s.account.id.clone(),
                channel_id: s.channel.id.clone(),
                provider_message_id: "wamid.inbound-1".into(),
                phone_number: Some("50755661234".into()),
                user_id: Some("PA.42".into()),
                contact_name: Some("Ana".into()),
                username: None,
                kind: "button".into(),
                text: None,
                content: json!({"button": {"payload": "YES", "text": "Sí"}}),
                raw: json!({"type": "button"}),
                context_id: Some("wamid.template-1".into()),
                sent_at: plantilla::now_ms(),
                received_at: plantilla::now_ms(),
            };
            tasks.spawn(async move {
                barrier.wait().await;
                store.record_inbound_message(&insert).await.unwrap()
            });
        }
        let mut stored = Vec::new();
        while let Some(done) = tasks.join_next().await {
            if let InboundRecorded::Stored {
                message,
                reply_to_template_id,
            } = done.unwrap()
            {
                stored.push((message, reply_to_template_id));
            }
        }
        assert_eq!(stored.len(), 1, "exactly one copy is stored");
        let (message, template) = &stored[0];
        assert_eq!(message.reply_to.as_deref(), Some(message_id.as_str()));
        assert_eq!(template.as_deref(), Some(s.template.id.as_str()));
        assert_eq!(
            message.conversation_id.as_deref(),
            Some(conversation_id.as_str())
        );
        assert_eq!(count(&store, "SELECT count(*) FROM inbound_messages").await, 1);
        assert_eq!(
            count(
                &store,
                "SELECT count(*) FROM callback_outbox WHERE event_type = 'message.received'"
            )
            .await,
            1
        );
        assert_eq!(
            count(
                &store,
                "SELECT count(*) FROM contacts WHERE user_id = 'PA.42' AND last_inbound_at IS NOT NULL"
            )
            .await,
            1
        );
        let listed = store
            .conversation_inbound(&conversation_id, None, 10)
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, message.id);
        assert_eq!(listed[0].content, message.content);
    })
    .await;
}

both_databases!(one_claim_for_several_channels_keeps_each_channels_limit_and_order);
async fn one_claim_for_several_channels_keeps_each_channels_limit_and_order() {
    with_database(|url| async move {
        let store = open(&url).await;
        let a = seed(&store, 1000).await;
        let b = seed(&store, 1000).await;
        let mut queued: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for i in 0..10 {
            for s in [&a, &b] {
                let AcceptOutcome::Pending { message_id, .. } = store
                    .accept_send(&accept(s, &format!("5075522{i:04}"), plantilla::now_ms()))
                    .await
                    .unwrap()
                else {
                    panic!("a new number opens a pending conversation");
                };
                queued
                    .entry(s.channel.id.clone())
                    .or_default()
                    .push(message_id);
            }
        }
        let now = plantilla::now_ms();
        let asks = [(a.channel.id.clone(), 4), (b.channel.id.clone(), 7)];
        let first = store
            .claim_many(&asks, now, LEASE, ORPHAN_WAIT)
            .await
            .unwrap();
        let ids = |jobs: &[ClaimedJob]| {
            jobs.iter()
                .map(|j| j.message.id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&first[0]), queued[&a.channel.id][..4]);
        assert_eq!(ids(&first[1]), queued[&b.channel.id][..7]);
        assert!(
            first[0]
                .iter()
                .all(|j| j.message.channel_id == a.channel.id)
        );
        // Leased jobs are not claimed again: the next claim takes what is left.
        let second = store
            .claim_many(&asks, now, LEASE, ORPHAN_WAIT)
            .await
            .unwrap();
        assert_eq!(ids(&second[0]), queued[&a.channel.id][4..8]);
        assert_eq!(ids(&second[1]), queued[&b.channel.id][7..]);
    })
    .await;
}

both_databases!(a_status_kept_for_later_keeps_its_pricing);
async fn a_status_kept_for_later_keeps_its_pricing() {
    with_database(|url| async move {
        let store = open(&url).await;
        let now = plantilla::now_ms();
        let pricing = Pricing {
            pricing_type: Some("free_entry_point".into()),
            category: Some("marketing".into()),
            pricing_model: Some("PMP".into()),
            billable: Some(false),
        };
        store
            .store_pending_status(
                &StatusUpdate {
                    provider_message_id: Some("wamid.early".into()),
                    message_id: None,
                    channel_id: None,
                    status: MessageStatus::Delivered,
                    at: now,
                    error: None,
                    pricing_category: Some("marketing".into()),
                    pricing: Some(pricing.clone()),
                },
                now,
            )
            .await
            .unwrap();
        let taken = store
            .take_pending_statuses("wamid.early", "msg_none")
            .await
            .unwrap();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].pricing, Some(pricing));
    })
    .await;
}

both_databases!(an_accepted_outcome_takes_the_statuses_kept_for_its_message);
async fn an_accepted_outcome_takes_the_statuses_kept_for_its_message() {
    with_database(|url| async move {
        let store = open(&url).await;
        let s = seed(&store, 1000).await;
        let now = plantilla::now_ms();
        let send = accept(&s, "50763000001", now);
        store.accept_send(&send).await.unwrap();
        let jobs = store
            .claim_jobs(&s.channel.id, 10, now, LEASE, ORPHAN_WAIT)
            .await
            .unwrap();
        assert_eq!(jobs.len(), 1);
        // Statuses that outran the provider's response, and one for another message.
        for (wamid, st) in [
            ("wamid.kept", MessageStatus::Delivered),
            ("wamid.kept", MessageStatus::Sent),
            ("wamid.other", MessageStatus::Read),
        ] {
            store
                .store_pending_status(&status(wamid, st, now), now)
                .await
                .unwrap();
        }
        let outcome = |attempt, result| AttemptOutcome {
            message_id: send.new_message_id.clone(),
            attempt,
            now: now + 1,
            result,
        };
        let accepted = AttemptResult::Accepted {
            provider_message_id: "wamid.kept".into(),
            wa_id: None,
        };
        let (finished, kept) = store
            .finish_and_take_kept(&outcome(jobs[0].attempt, accepted))
            .await
            .unwrap();
        assert_eq!(finished, Finished::Recorded { conversation: None });
        let kept: Vec<(Option<String>, MessageStatus)> = kept
            .unwrap()
            .into_iter()
            .map(|u| (u.provider_message_id, u.status))
            .collect();
        let wamid = Some("wamid.kept".to_string());
        assert_eq!(
            kept,
            [
                (wamid.clone(), MessageStatus::Delivered),
                (wamid, MessageStatus::Sent)
            ],
            "the message's own, in arrival order"
        );
        // Taken once; the other message's status stays.
        let again = store
            .take_pending_statuses("wamid.kept", &send.new_message_id)
            .await
            .unwrap();
        assert!(again.is_empty());
        assert_eq!(store.pending_status_count().await.unwrap(), 1);
        // A stale outcome takes nothing.
        let failed = AttemptResult::Failed {
            error: ProviderError {
                code: 131_026,
                title: "Undeliverable".into(),
                details: None,
            },
        };
        let (finished, kept) = store
            .finish_and_take_kept(&outcome(jobs[0].attempt, failed))
            .await
            .unwrap();
        assert_eq!(finished, Finished::Stale);
        assert!(kept.unwrap().is_empty());
        assert_eq!(store.pending_status_count().await.unwrap(), 1);
    })
    .await;
}

both_databases!(a_status_kept_after_its_outcome_took_the_kept_ones_is_handed_back);
/// A status looked up before its message's outcome recorded the wamid, and kept after the
/// outcome committed and took the message's kept statuses: keeping it finds the message known
/// and hands the status back to be applied, instead of keeping it for nobody until it expires.
async fn a_status_kept_after_its_outcome_took_the_kept_ones_is_handed_back() {
    with_database(|url| async move {
        let store = open(&url).await;
        let s = seed(&store, 1000).await;
        let now = plantilla::now_ms();
        let send = accept(&s, "50763000002", now);
        store.accept_send(&send).await.unwrap();
        let jobs = store
            .claim_jobs(&s.channel.id, 10, now, LEASE, ORPHAN_WAIT)
            .await
            .unwrap();
        assert_eq!(jobs.len(), 1);
        // The status's lookup: no message has the wamid yet.
        let early = status("wamid.late_keep", MessageStatus::Delivered, now + 1);
        assert_eq!(
            store.apply_status(&early).await.unwrap(),
            StatusApplied::UnknownMessage
        );
        // The send's response: recorded, nothing kept to take yet.
        let (finished, kept) = store
            .finish_and_take_kept(&AttemptOutcome {
                message_id: send.new_message_id.clone(),
                attempt: jobs[0].attempt,
                now: now + 2,
                result: AttemptResult::Accepted {
                    provider_message_id: "wamid.late_keep".into(),
                    wa_id: None,
                },
            })
            .await
            .unwrap();
        assert_eq!(finished, Finished::Recorded { conversation: None });
        assert!(kept.unwrap().is_empty());
        // Then the status is kept: its message is known now, so it comes back.
        let known = store.store_pending_status(&early, now + 3).await.unwrap();
        assert_eq!(
            store.pending_status_count().await.unwrap(),
            0,
            "kept for nobody"
        );
        let known: Vec<_> = known
            .iter()
            .map(|u| (u.provider_message_id.as_deref(), u.status, u.at))
            .collect();
        assert_eq!(
            known,
            [(Some("wamid.late_keep"), MessageStatus::Delivered, now + 1)]
        );
    })
    .await;
}

both_databases!(every_method_round_trips);
async fn every_method_round_trips() {
    with_database(|url| async move {
        let store = open(&url).await;
        let s = seed(&store, 1000).await;
        let now = plantilla::now_ms();

        // Accounts and channels.
        let account = store.account(&s.account.id).await.unwrap().unwrap();
        assert_eq!(account.conversation_limit, 1000);
        assert!(store.account("acc_missing").await.unwrap().is_none());
        let token = hash_token(&s.channel.id);
        let by_token = store.channel_by_token(&token).await.unwrap().unwrap();
        assert_eq!(by_token.id, s.channel.id);
        assert_eq!(by_token.provider, ProviderKind::Sandbox);
        let by_pnid = store
            .channel_by_phone_number_id(&s.channel.phone_number_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(by_pnid.id, s.channel.id);
        assert_eq!(store.channels_by_waba("waba_1").await.unwrap().len(), 1);
        assert_eq!(store.list_channels().await.unwrap().len(), 1);
        let mut channel = s.channel.clone();
        channel.name = "Renamed".into();
        channel.messages_per_second = 20;
        channel.updated_at = now + 1;
        store.update_channel(&channel).await.unwrap();
        let got = store.channel(&channel.id).await.unwrap().unwrap();
        assert_eq!(
            (got.name.as_str(), got.messages_per_second),
            ("Renamed", 20)
        );
        assert!(
            store
                .set_channel_token(&channel.id, "newhash", now)
                .await
                .unwrap()
        );
        assert!(
            !store
                .set_channel_token("chn_missing", "x", now)
                .await
                .unwrap()
        );
        assert!(store.channel_by_token("newhash").await.unwrap().is_some());
        let halt = ProviderError {
            code: 190,
            title: "Access token expired".into(),
            details: None,
        };
        store
            .set_channel_health(&channel.id, Some(&halt), now)
            .await
            .unwrap();
        let got = store.channel(&channel.id).await.unwrap().unwrap();
        assert_eq!(got.health, "halted");
        assert_eq!(
            got.health_error.map(|e| (e.code, e.title)),
            Some((190, halt.title.clone()))
        );

        // Groups: the first association is the default.
        let second_channel = Channel {
            id: new_id("chn"),
            ..s.channel.clone()
        };
        store
            .insert_channel(&second_channel, &hash_token(&second_channel.id))
            .await
            .unwrap();
        for (name, channels) in [
            (
                "Ventas",
                vec![channel.id.clone(), second_channel.id.clone()],
            ),
            ("Soporte", vec![channel.id.clone()]),
        ] {
            store
                .insert_group(&Group {
                    id: new_id("grp"),
                    account_id: s.account.id.clone(),
                    name: name.into(),
                    channel_ids: channels,
                    created_at: now,
                })
                .await
                .unwrap();
        }
        let ventas = store
            .group_by_name(&s.account.id, "Ventas")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            ventas.channel_ids,
            [channel.id.clone(), second_channel.id.clone()]
        );
        let default = store.default_group(&channel.id).await.unwrap().unwrap();
        assert_eq!(default.name, "Ventas");
        assert!(
            store
                .group_by_name(&s.account.id, "Nope")
                .await
                .unwrap()
                .is_none()
        );
        let duplicate = store
            .insert_group(&Group {
                id: new_id("grp"),
                account_id: s.account.id.clone(),
                name: "Ventas".into(),
                channel_ids: vec![],
                created_at: now,
            })
            .await;
        assert!(
            matches!(duplicate, Err(StoreError::Conflict(_))),
            "{duplicate:?}"
        );

        // Templates and the list filters (ASCII case folding, as SQLite).
        let mut t2 = Template {
            id: new_id("tpl"),
            name: "Promo_Verano".into(),
            status: "PENDING".into(),
            app_id: "app_2".into(),
            header: Some(json!({"type": "text", "text": "Hola"})),
            footer: Some("Gracias".into()),
            group_name: Some("Ventas".into()),
            created_at: now + 1,
            ..s.template.clone()
        };
        store.insert_template(&t2).await.unwrap();
        t2.active = false;
        t2.buttons = json!([{"type": "QUICK_REPLY", "text": "OK"}]);
        store.update_template(&t2).await.unwrap();
        let got = store.template(&t2.id).await.unwrap().unwrap();
        assert!(!got.active);
        assert_eq!(got.header, t2.header);
        assert_eq!(got.buttons, t2.buttons);
        assert!(
            store
                .account_template("acc_other", &t2.id)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .account_template(&s.account.id, &t2.id)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(
            store
                .template_by_app_id(&s.account.id, "app_2")
                .await
                .unwrap()
                .map(|t| t.id),
            Some(t2.id.clone())
        );
        assert_eq!(
            store
                .template_by_name(&s.account.id, "order_update", "es")
                .await
                .unwrap()
                .map(|t| t.id),
            Some(s.template.id.clone())
        );
        let list = |status: Option<&str>, name: Option<&str>, offset: u32, limit: u32| {
            let store = store.clone();
            let account_id = s.account.id.clone();
            let filter = TemplateFilter {
                status: status.map(str::to_string),
                name: name.map(str::to_string),
                offset,
                limit,
            };
            async move {
                let (templates, total) = store.list_templates(&account_id, &filter).await.unwrap();
                (
                    templates.into_iter().map(|t| t.name).collect::<Vec<_>>(),
                    total,
                )
            }
        };
        assert_eq!(
            list(None, None, 0, 10).await,
            (
                vec!["order_update".to_string(), "Promo_Verano".to_string()],
                2
            )
        );
        assert_eq!(
            list(None, None, 1, 1).await,
            (vec!["Promo_Verano".to_string()], 2)
        );
        assert_eq!(list(Some("approved"), None, 0, 10).await.1, 1);
        assert_eq!(list(None, Some("VERANO"), 0, 10).await.0, ["Promo_Verano"]);
        assert_eq!(list(Some("pending"), Some("order"), 0, 10).await.1, 0);

        // Conversations: sent on an open conversation, inbound activity, expiry, closing.
        store
            .set_channel_health(&channel.id, None, now)
            .await
            .unwrap();
        let phone = "50755667788";
        let mut first = accept(&s, phone, now);
        first.client_name = Some("Ana".into());
        let AcceptOutcome::Pending {
            conversation_id,
            message_id,
        } = store.accept_send(&first).await.unwrap()
        else {
            panic!("expected pending");
        };
        assert_eq!(
            store.due_channels(now, ORPHAN_WAIT).await.unwrap(),
            [channel.id.clone()]
        );
        assert_eq!(store.next_due(ORPHAN_WAIT).await.unwrap(), Some(now));
        let conversation = store.conversation(&conversation_id).await.unwrap().unwrap();
        assert_eq!(conversation.client_name, "Ana");
        assert_eq!(conversation.status, ConversationStatus::Pending);
        assert_eq!(
            conversation.first_message_id.as_deref(),
            Some(message_id.as_str())
        );
        // Delivered: the conversation opens.
        store
            .apply_status(&StatusUpdate {
                provider_message_id: Some("wamid.1".into()),
                message_id: Some(message_id.clone()),
                status: MessageStatus::Delivered,
                at: now + 10,
                error: None,
                pricing_category: Some("utility".into()),
                pricing: Some(Pricing {
                    pricing_type: Some("regular".into()),
                    category: Some("utility".into()),
                    pricing_model: Some("PMP".into()),
                    billable: Some(true),
                }),
                channel_id: None,
            })
            .await
            .unwrap();
        let m = store.message(&message_id).await.unwrap().unwrap();
        assert_eq!(m.provider_message_id.as_deref(), Some("wamid.1"));
        assert_eq!(m.pricing_category.as_deref(), Some("utility"));
        assert_eq!(
            m.pricing.as_ref().and_then(|p| p.pricing_type.as_deref()),
            Some("regular")
        );
        assert_eq!(m.pricing.as_ref().and_then(|p| p.billable), Some(true));
        // It is counted by usage in its window only.
        let priced = store
            .priced_messages(&s.account.id, now + 10, now + 11)
            .await
            .unwrap();
        assert_eq!(priced.len(), 1);
        assert_eq!(priced[0].pricing.pricing_model.as_deref(), Some("PMP"));
        assert!(
            store
                .priced_messages(&s.account.id, now + 11, now + 20)
                .await
                .unwrap()
                .is_empty()
        );

        // Template health: the status and category move, the health is kept.
        let flagged = TemplateHealthChange::Status {
            event: "FLAGGED".into(),
            reason: Some("LOW_QUALITY".into()),
            category: None,
            disable_date: Some(now + 1000),
            other_info: None,
        };
        assert!(
            store
                .apply_template_health(&s.template.id, &flagged, now)
                .await
                .unwrap()
        );
        assert!(
            !store
                .apply_template_health(&s.template.id, &flagged, now)
                .await
                .unwrap(),
            "a repeat changes nothing"
        );
        let change = TemplateHealthChange::Category {
            previous: None,
            new: "MARKETING".into(),
        };
        assert!(
            store
                .apply_template_health(&s.template.id, &change, now)
                .await
                .unwrap()
        );
        let t = store.template(&s.template.id).await.unwrap().unwrap();
        assert_eq!(t.category, "MARKETING");
        let healths = store.template_healths(&s.account.id).await.unwrap();
        let h = &healths[&s.template.id];
        assert!(h.flagged);
        assert_eq!(h.disable_date, Some(now + 1000));
        assert_eq!(h.previous_category.as_deref(), Some("UTILITY"));
        assert!(
            !store
                .apply_template_health("tpl_missing", &change, now)
                .await
                .unwrap()
        );

        // Number quality: the rating is kept, the limit moves.
        let report = ChannelQualityChange {
            event: Some("FLAGGED".into()),
            display_phone_number: Some("15550000001".into()),
            quality_rating: None,
            limit: Some(Some(2000)),
            learn_display: true,
        };
        assert!(
            store
                .apply_channel_quality(&s.channel.id, &report, now)
                .await
                .unwrap()
        );
        assert!(
            !store
                .apply_channel_quality(&s.channel.id, &report, now)
                .await
                .unwrap()
        );
        let q = &store.channel_qualities().await.unwrap()[&s.channel.id];
        assert_eq!(q.quality_rating.as_deref(), Some("RED"));
        assert_eq!(q.display_phone_number.as_deref(), Some("15550000001"));
        assert_eq!(
            store
                .channel(&s.channel.id)
                .await
                .unwrap()
                .unwrap()
                .messaging_limit,
            Some(2000)
        );
        assert_eq!(store.next_due(ORPHAN_WAIT).await.unwrap(), None);
        let open = store.conversation(&conversation_id).await.unwrap().unwrap();
        assert_eq!(open.status, ConversationStatus::Open);

        // An inbound message renames the contact and moves the activity forward only.
        store
            .record_inbound(&channel, phone, Some("Ana María"), now + 50)
            .await
            .unwrap();
        store
            .record_inbound(&channel, phone, None, now + 40)
            .await
            .unwrap();
        assert_eq!(
            count(
                &store,
                &format!(
                    "SELECT COUNT(*) FROM contacts WHERE phone_number = '{phone}' \
                     AND client_name = 'Ana María' AND last_inbound_at = {}",
                    now + 50
                )
            )
            .await,
            1,
            "the contact is renamed and its last inbound moved to the latest"
        );
        let c = store.conversation(&conversation_id).await.unwrap().unwrap();
        assert_eq!(c.last_activity_at, now + 50);
        store
            .record_inbound(&channel, "50799990000", None, now)
            .await
            .unwrap();

        // A send on the open conversation is queued on it.
        let again = accept(&s, phone, now + 60);
        let outcome = store.accept_send(&again).await.unwrap();
        assert_eq!(
            outcome,
            AcceptOutcome::Sent {
                conversation_id: conversation_id.clone(),
                message_id: again.new_message_id.clone(),
            }
        );
        // Much later the conversation has expired: a new pending one.
        let mut later = accept(&s, phone, now + 48 * 3600 * 1000);
        later.expire_before = now + 1000;
        let AcceptOutcome::Pending {
            conversation_id: newer,
            ..
        } = store.accept_send(&later).await.unwrap()
        else {
            panic!("expected pending after expiry");
        };
        let expired = store.conversation(&conversation_id).await.unwrap().unwrap();
        assert_eq!(expired.status, ConversationStatus::Closed);
        assert_eq!(expired.close_reason.as_deref(), Some("expired"));
        let closed = store
            .close_conversation(&newer, CloseReason::Operator, now + 70)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(closed.status, ConversationStatus::Closed);
        assert_eq!(closed.close_reason.as_deref(), Some("operator"));
        assert!(
            store
                .close_conversation("conv_missing", CloseReason::Operator, now)
                .await
                .unwrap()
                .is_none()
        );

        // The plan limit of a period (this one has one conversation already).
        let mut limited = accept(&s, "50711112222", now);
        limited.conversation_limit = 1;
        assert_eq!(
            store.accept_send(&limited).await.unwrap(),
            AcceptOutcome::LimitReached
        );

        // Statuses kept for messages not known yet, taken oldest first.
        for (i, st) in [MessageStatus::Delivered, MessageStatus::Sent]
            .into_iter()
            .enumerate()
        {
            store
                .store_pending_status(
                    &StatusUpdate {
                        provider_message_id: Some("wamid.early".into()),
                        message_id: None,
                        status: st,
                        at: now + i as i64,
                        error: Some(ProviderError {
                            code: 1,
                            title: "t".into(),
                            details: Some("d".into()),
                        }),
                        pricing_category: Some("marketing".into()),
                        pricing: Some(Pricing {
                            pricing_type: Some("free_entry_point".into()),
                            category: Some("marketing".into()),
                            pricing_model: Some("PMP".into()),
                            billable: Some(false),
                        }),
                        channel_id: None,
                    },
                    now,
                )
                .await
                .unwrap();
        }
        let taken = store
            .take_pending_statuses("wamid.early", "msg_none")
            .await
            .unwrap();
        let statuses: Vec<MessageStatus> = taken.iter().map(|u| u.status).collect();
        assert_eq!(statuses, [MessageStatus::Delivered, MessageStatus::Sent]);
        assert_eq!(
            taken[0].error.as_ref().and_then(|e| e.details.as_deref()),
            Some("d")
        );
        assert_eq!(
            taken[0]
                .pricing
                .as_ref()
                .and_then(|p| p.pricing_type.as_deref()),
            Some("free_entry_point"),
            "a kept status keeps its pricing"
        );
        assert!(
            store
                .take_pending_statuses("wamid.early", "msg_none")
                .await
                .unwrap()
                .is_empty()
        );
    })
    .await;
}

both_databases!(a_numbers_messages_are_listed_across_its_conversations);
/// The listing's filter by number reads the number's conversations (SQLite keeps no index of
/// messages by number): each of the number's conversations counts, another number or account
/// does not.
async fn a_numbers_messages_are_listed_across_its_conversations() {
    with_database(|url| async move {
        let store = open(&url).await;
        let s = seed(&store, 1000).await;
        let other = seed(&store, 1000).await;
        let now = plantilla::now_ms();
        let pending = |o: AcceptOutcome| match o {
            AcceptOutcome::Pending {
                conversation_id,
                message_id,
            } => (conversation_id, message_id),
            o => panic!("expected a pending conversation: {o:?}"),
        };
        let phone = "50765000001";
        let (first_conversation, first) =
            pending(store.accept_send(&accept(&s, phone, now)).await.unwrap());
        store
            .close_conversation(&first_conversation, CloseReason::Operator, now + 1)
            .await
            .unwrap()
            .expect("closed");
        let (_, second) = pending(
            store
                .accept_send(&accept(&s, phone, now + 2))
                .await
                .unwrap(),
        );
        pending(
            store
                .accept_send(&accept(&s, "50765000002", now + 3))
                .await
                .unwrap(),
        );
        pending(
            store
                .accept_send(&accept(&other, phone, now + 4))
                .await
                .unwrap(),
        );
        let listed = |newest_first| {
            let store = store.clone();
            let account_id = s.account.id.clone();
            async move {
                store
                    .list_messages(
                        &account_id,
                        &MessageFilter {
                            phone_number: Some(phone.into()),
                            newest_first,
                            limit: 10,
                            ..MessageFilter::default()
                        },
                    )
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|m| m.id)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(listed(false).await, [first.clone(), second.clone()]);
        assert_eq!(listed(true).await, [second, first]);
    })
    .await;
}

both_databases!(listings_batches_and_plain_writes_answer_alike);
/// The listings' filters and cursors, a batch's life (upsert, pause, counts, report) and the
/// plain writes, through the statements both databases share.
async fn listings_batches_and_plain_writes_answer_alike() {
    with_database(|url| async move {
        let store = open(&url).await;
        let s = seed(&store, 1000).await;
        let now = plantilla::now_ms();
        assert!(store.ping().await.unwrap());

        let batch = Batch {
            id: new_id("bat"),
            account_id: s.account.id.clone(),
            channel_id: s.channel.id.clone(),
            total: 3,
            accepted: 0,
            rejected: 0,
            created_at: now,
            paused: false,
        };
        store.insert_batch(&batch).await.unwrap();
        store
            .insert_batch(&Batch {
                accepted: 3,
                ..batch.clone()
            })
            .await
            .unwrap();
        let got = store.batch(&batch.id).await.unwrap().unwrap();
        assert_eq!((got.total, got.accepted, got.paused), (3, 3, false));
        assert!(store.batch("bat_missing").await.unwrap().is_none());

        // Four sends a millisecond apart, the first three in the batch.
        let mut sent = Vec::new();
        for i in 0..4_i64 {
            let mut send = accept(&s, &format!("5076000000{i}"), now + i);
            if i < 3 {
                send.batch_id = Some(batch.id.clone());
            }
            let AcceptOutcome::Pending {
                conversation_id,
                message_id,
            } = store.accept_send(&send).await.unwrap()
            else {
                panic!("expected pending");
            };
            sent.push((message_id, conversation_id));
        }
        let message_ids = |v: Vec<Message>| v.into_iter().map(|m| m.id).collect::<Vec<_>>();
        let ids = |picked: &[usize]| {
            picked
                .iter()
                .map(|&i| sent[i].0.clone())
                .collect::<Vec<_>>()
        };
        let filter = MessageFilter {
            limit: 10,
            ..MessageFilter::default()
        };
        let list = |f: MessageFilter| {
            let store = store.clone();
            let account_id = s.account.id.clone();
            async move { message_ids(store.list_messages(&account_id, &f).await.unwrap()) }
        };
        assert_eq!(list(filter.clone()).await, ids(&[0, 1, 2, 3]));
        let newest = MessageFilter {
            newest_first: true,
            ..filter.clone()
        };
        assert_eq!(list(newest.clone()).await, ids(&[3, 2, 1, 0]));
        assert_eq!(
            list(MessageFilter {
                after: Some((now + 1, sent[1].0.clone())),
                ..filter.clone()
            })
            .await,
            ids(&[2, 3])
        );
        assert_eq!(
            list(MessageFilter {
                after: Some((now + 2, sent[2].0.clone())),
                ..newest.clone()
            })
            .await,
            ids(&[1, 0])
        );
        assert_eq!(
            list(MessageFilter {
                batch_id: Some(batch.id.clone()),
                ..filter.clone()
            })
            .await,
            ids(&[0, 1, 2])
        );
        assert_eq!(
            list(MessageFilter {
                phone_number: Some("50760000003".into()),
                status: Some("queued".into()),
                channel_id: Some(s.channel.id.clone()),
                template_id: Some(s.template.id.clone()),
                ..filter.clone()
            })
            .await,
            ids(&[3])
        );
        assert_eq!(
            list(MessageFilter {
                conversation_id: Some(sent[1].1.clone()),
                ..filter.clone()
            })
            .await,
            ids(&[1])
        );
        assert_eq!(
            list(MessageFilter {
                from: Some(now + 1),
                to: Some(now + 3),
                ..filter.clone()
            })
            .await,
            ids(&[1, 2])
        );
        assert_eq!(
            list(MessageFilter {
                status: Some("sent".into()),
                ..filter.clone()
            })
            .await,
            ids(&[])
        );
        assert_eq!(
            list(MessageFilter {
                limit: 2,
                ..filter.clone()
            })
            .await,
            ids(&[0, 1])
        );
        assert!(
            store
                .list_messages("acc_other", &filter)
                .await
                .unwrap()
                .is_empty()
        );

        let conversations = |f: ConversationFilter| {
            let store = store.clone();
            let account_id = s.account.id.clone();
            async move {
                store
                    .list_conversations(&account_id, &f)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|c| c.id)
                    .collect::<Vec<_>>()
            }
        };
        let conversation_ids = |picked: &[usize]| {
            picked
                .iter()
                .map(|&i| sent[i].1.clone())
                .collect::<Vec<_>>()
        };
        let all = ConversationFilter {
            limit: 10,
            ..ConversationFilter::default()
        };
        assert_eq!(
            conversations(all.clone()).await,
            conversation_ids(&[0, 1, 2, 3])
        );
        assert_eq!(
            conversations(ConversationFilter {
                newest_first: true,
                after: Some((now + 2, sent[2].1.clone())),
                ..all.clone()
            })
            .await,
            conversation_ids(&[1, 0])
        );
        assert_eq!(
            conversations(ConversationFilter {
                after: Some((now, sent[0].1.clone())),
                limit: 2,
                ..all.clone()
            })
            .await,
            conversation_ids(&[1, 2])
        );
        assert_eq!(
            conversations(ConversationFilter {
                status: Some("pending".into()),
                phone_number: Some("50760000002".into()),
                channel_id: Some(s.channel.id.clone()),
                ..all.clone()
            })
            .await,
            conversation_ids(&[2])
        );

        // Counts, the queue, the batch paused and resumed.
        assert_eq!(
            store.message_counts().await.unwrap(),
            [("queued".to_string(), 4)]
        );
        assert_eq!(
            store.batch_counts(&batch.id).await.unwrap(),
            [("queued".to_string(), 3)]
        );
        let queue = |depth, oldest_queued_at| {
            vec![ChannelQueue {
                channel_id: s.channel.id.clone(),
                depth,
                oldest_queued_at,
            }]
        };
        assert_eq!(store.queues().await.unwrap(), queue(4, now));
        assert!(store.set_batch_paused(&batch.id, true).await.unwrap());
        assert!(store.batch(&batch.id).await.unwrap().unwrap().paused);
        assert_eq!(store.queues().await.unwrap(), queue(1, now + 3));
        assert!(!store.set_batch_paused("bat_missing", true).await.unwrap());
        assert!(store.set_batch_paused(&batch.id, false).await.unwrap());
        assert_eq!(store.queues().await.unwrap(), queue(4, now));
        let report = store.batch_report(&batch.id).await.unwrap();
        assert!(report.by_error_code.is_empty() && report.held.is_empty());
        assert_eq!(
            report.by_template,
            [(s.template.id.clone(), "queued".to_string(), 3)]
        );
        assert!(report.last_due.is_some());
        assert!(store.next_attempt_at(&sent[0].0).await.unwrap().is_some());
        assert!(
            store
                .next_attempt_at("msg_missing")
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            store.new_recipients(&s.channel.id, now).await.unwrap(),
            NewRecipients::default()
        );

        // The plain writes.
        store
            .link_message_user_id(&sent[0].0, "PA.123", now)
            .await
            .unwrap();
        let user_id = |i: usize| {
            let store = store.clone();
            let id = sent[i].1.clone();
            async move { store.conversation(&id).await.unwrap().unwrap().user_id }
        };
        assert_eq!(user_id(0).await.as_deref(), Some("PA.123"));
        assert_eq!(user_id(1).await, None);
        assert!(
            store
                .set_quiet_hours(&s.account.id, Some((22, 7)), now)
                .await
                .unwrap()
        );
        assert_eq!(
            store
                .account(&s.account.id)
                .await
                .unwrap()
                .unwrap()
                .quiet_hours,
            Some((22, 7))
        );
        assert!(
            !store
                .set_quiet_hours("acc_missing", None, now)
                .await
                .unwrap()
        );
        assert!(
            store
                .set_messaging_limit(&s.channel.id, Some(250), now)
                .await
                .unwrap()
        );
        assert_eq!(
            store
                .channel(&s.channel.id)
                .await
                .unwrap()
                .unwrap()
                .messaging_limit,
            Some(250)
        );
        assert!(
            !store
                .set_messaging_limit("chn_missing", None, now)
                .await
                .unwrap()
        );
    })
    .await;
}

both_databases!(a_status_counts_as_queuing_callbacks_only_when_it_queued_some);
/// The callback worker skips the pass a status event causes when the store says no write
/// queued an outbox row since its last pass (`outbox_writes`): a status with no receiver
/// must not move the count, one with a receiver must, alone and in a webhook's group.
async fn a_status_counts_as_queuing_callbacks_only_when_it_queued_some() {
    with_database(|url| async move {
        let store = open(&url).await;
        let s = seed(&store, 1000).await;
        let now = plantilla::now_ms();
        sent_message(&**store, &s, "50755660001", "wamid.q1").await;
        sent_message(&**store, &s, "50755660002", "wamid.q2").await;
        let before = store.outbox_writes();
        store
            .apply_status(&status("wamid.q1", MessageStatus::Delivered, now + 1))
            .await
            .unwrap();
        store
            .apply_statuses(&[status("wamid.q2", MessageStatus::Delivered, now + 1)])
            .await
            .unwrap();
        assert_eq!(store.outbox_writes(), before, "nobody to call back");
        assert_eq!(
            count(&store, "SELECT count(*) FROM callback_outbox").await,
            0
        );

        add_endpoint(&store, &s, "message.read").await;
        store
            .apply_status(&status("wamid.q1", MessageStatus::Read, now + 2))
            .await
            .unwrap();
        let after_one = store.outbox_writes();
        assert!(after_one > before, "a queued callback is counted");
        store
            .apply_statuses(&[status("wamid.q2", MessageStatus::Read, now + 2)])
            .await
            .unwrap();
        assert!(
            store.outbox_writes() > after_one,
            "also in a webhook's group"
        );
        assert_eq!(
            count(&store, "SELECT count(*) FROM callback_outbox").await,
            2
        );
    })
    .await;
}

both_databases!(new_recipients_are_first_messages_handed_over_and_not_held_back);
async fn new_recipients_are_first_messages_handed_over_and_not_held_back() {
    with_database(|url| async move {
        let store = open(&url).await;
        let s = seed(&store, 1000).await;
        let recipients = |since: i64| {
            let store = store.clone();
            let channel = s.channel.id.clone();
            async move { store.new_recipients(&channel, since).await.unwrap() }
        };
        let counted = |count, oldest| NewRecipients {
            count,
            oldest: Some(oldest),
        };
        // A conversation started and opened by its first message.
        let (_, first) = sent_message(&**store, &s, "50761000001", "wamid.nr1").await;
        let started = store.message(&first).await.unwrap().unwrap().sending_at;
        let started = started.expect("claimed");
        let now = plantilla::now_ms().max(started) + 10;
        store
            .apply_status(&status("wamid.nr1", MessageStatus::Sent, now))
            .await
            .unwrap();
        assert_eq!(recipients(0).await, counted(1, started));

        // A second message on it is no new recipient; a new number's first message is.
        let AcceptOutcome::Sent { .. } = store
            .accept_send(&accept(&s, "50761000001", now))
            .await
            .unwrap()
        else {
            panic!("expected a message on the open conversation");
        };
        let AcceptOutcome::Pending { message_id, .. } = store
            .accept_send(&accept(&s, "50761000002", now))
            .await
            .unwrap()
        else {
            panic!("expected a pending conversation");
        };
        let jobs = store
            .claim_jobs(&s.channel.id, 10, now + 20, LEASE, ORPHAN_WAIT)
            .await
            .unwrap();
        assert_eq!(jobs.len(), 2);
        assert_eq!(recipients(0).await, counted(2, started));
        assert_eq!(recipients(now + 20).await, counted(1, now + 20));
        assert_eq!(recipients(now + 21).await, NewRecipients::default());

        // Held back (the messaging limit): it no longer counts.
        let attempt = jobs
            .iter()
            .find(|j| j.message.id == message_id)
            .expect("claimed")
            .attempt;
        assert!(
            store
                .hold_job(
                    &message_id,
                    attempt,
                    now + 1000,
                    "messaging-limit",
                    now + 30
                )
                .await
                .unwrap()
        );
        assert_eq!(recipients(0).await, counted(1, started));
        assert_eq!(recipients(now + 20).await, NewRecipients::default());

        // Claimed again when the hold ends: it counts from then, and a later claim of the
        // same message (its lease ran out) does not move it.
        let again = store
            .claim_jobs(&s.channel.id, 10, now + 2000, LEASE, ORPHAN_WAIT)
            .await
            .unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(recipients(0).await, counted(2, started));
        assert_eq!(recipients(now + 1500).await, counted(1, now + 2000));
        let late = now + 2000 + LEASE + ORPHAN_WAIT + 1;
        let third = store
            .claim_jobs(&s.channel.id, 10, late, LEASE, ORPHAN_WAIT)
            .await
            .unwrap();
        // (The second message's lease ran out too.)
        assert_eq!(third.len(), 2);
        assert!(
            third
                .iter()
                .any(|j| j.message.id == message_id && j.attempt == 3)
        );
        assert_eq!(recipients(now + 1500).await, counted(1, now + 2000));
        assert_eq!(recipients(late).await, NewRecipients::default());

        // Housekeeping forgets the starts older than the window it reads: the first number's
        // start goes on PostgreSQL (which keeps them apart from `messages`), the later one
        // stays and still counts.
        let forgotten = store.forget_recipient_starts(now + 1500).await.unwrap();
        if url.starts_with("postgres") {
            assert_eq!(forgotten, 1);
            assert_eq!(recipients(0).await, counted(1, now + 2000));
        } else {
            assert_eq!(forgotten, 0);
            assert_eq!(recipients(0).await, counted(2, started));
        }
        assert_eq!(recipients(now + 1500).await, counted(1, now + 2000));
    })
    .await;
}
