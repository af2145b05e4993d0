//! What every `Store` must do, whatever the database: each test runs on SQLite and on
//! PostgreSQL (`both_databases!`) through the `Store` trait alone. One pending conversation per
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
use plantilla::domain::ids::new_id;
use plantilla::domain::status::{ConversationStatus, MessageStatus};
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
        store
            .insert_webhook_endpoint(
                &WebhookEndpoint {
                    id: new_id("we"),
                    account_id: s.account.id.clone(),
                    url: "http://127.0.0.1:9/hooks".into(),
                    event_types: vec!["message.received".into()],
                    description: None,
                    secret: plantilla::domain::callback::new_signing_secret(),
                    created_at: plantilla::now_ms(),
                },
                None,
            )
            .await
            .unwrap();
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
