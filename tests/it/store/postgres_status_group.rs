//! PostgreSQL's set-based apply of a group of statuses (`PgStore::apply_group_for_test`)
//! against the same statuses applied one by one (`apply_status`) on a copy of the same
//! database: the same results and the same rows, in a constant number of statements.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use crate::common::{pg_server_url, pg_url_for, store_seed};
use plantilla::domain::ids::new_id;
use plantilla::domain::status::MessageStatus;
use plantilla::store::postgres::PgStore;
use plantilla::store::*;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use store_seed::{Seeded, accept, sent_message, status};
use tracing::instrument::WithSubscriber;
use tracing_subscriber::layer::SubscriberExt;

const ORPHAN_WAIT: i64 = 120_000;
const LEASE: i64 = 30_000;

/// A database to build a state in, and the name of its copy.
pub(super) struct Databases {
    server: String,
    pub(super) original: String,
    copy: String,
}

impl Databases {
    async fn admin(&self) -> PgConnection {
        let options: PgConnectOptions = self
            .server
            .parse()
            .expect("PLANTILLA_TEST_PG_URL is not a PostgreSQL URL");
        tokio::time::timeout(Duration::from_secs(5), PgConnection::connect_with(&options))
            .await
            .expect("connecting to PostgreSQL timed out")
            .expect("connect to PostgreSQL")
    }

    pub(super) fn url(&self, name: &str) -> String {
        pg_url_for(&self.server, name)
    }

    /// Copies the original (no connection to it may be open) and opens both.
    pub(super) async fn copy_and_open(&self) -> (PgStore, PgStore) {
        let mut admin = self.admin().await;
        sqlx::query(&format!(
            "CREATE DATABASE {} TEMPLATE {}",
            self.copy, self.original
        ))
        .execute(&mut admin)
        .await
        .expect("copy the database");
        let _ = admin.close().await;
        (
            PgStore::open(&self.url(&self.original), 4).await.unwrap(),
            PgStore::open(&self.url(&self.copy), 4).await.unwrap(),
        )
    }
}

/// Runs `body` with a fresh database and the name of its copy to be; both are dropped
/// afterwards even when the body panics.
pub(super) async fn with_databases<F, Fut>(body: F)
where
    F: FnOnce(Arc<Databases>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let id = uuid::Uuid::now_v7().simple();
    let dbs = Arc::new(Databases {
        server: pg_server_url(),
        original: format!("plantilla_test_{id}"),
        copy: format!("plantilla_test_{id}_copy"),
    });
    let mut admin = dbs.admin().await;
    sqlx::query(&format!("CREATE DATABASE {}", dbs.original))
        .execute(&mut admin)
        .await
        .expect("create the test database");
    let outcome = tokio::spawn(body(dbs.clone())).await;
    for name in [&dbs.original, &dbs.copy] {
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await
            .expect("drop the test database");
    }
    let _ = admin.close().await;
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("test body did not finish: {e}"),
        }
    }
}

/// The statements sqlx runs (BEGIN and COMMIT included) in what it is given, by their
/// first words.
#[derive(Clone, Default)]
struct Statements(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Statements {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Summary(String);
        impl tracing::field::Visit for Summary {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "summary" {
                    self.0 = value.to_string();
                }
            }
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn Debug) {
                if field.name() == "summary" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        if event.metadata().target() == "sqlx::query" {
            let mut summary = Summary(String::new());
            event.record(&mut summary);
            self.0.lock().unwrap().push(summary.0);
        }
    }
}

pub(super) async fn counted<T>(work: impl Future<Output = T>) -> (T, Vec<String>) {
    let statements = Statements::default();
    let subscriber = tracing_subscriber::registry().with(statements.clone());
    let out = work.with_subscriber(subscriber).await;
    let ran = statements.0.lock().unwrap().clone();
    (out, ran)
}

/// Every row a status may write, as JSON, table by table; an outbox row without what is new
/// each time it is written (its id and the times of its writing).
pub(super) async fn dump(store: &PgStore) -> Vec<(&'static str, serde_json::Value)> {
    let mut tables = Vec::new();
    for (table, order, unstable) in [
        ("messages", "id", "{}"),
        ("conversations", "id", "{}"),
        ("delivery_jobs", "seq", "{}"),
        ("delivery_attempts", "id", "{}"),
        ("pending_statuses", "id", "{}"),
        ("callback_outbox", "seq", "{id,created_at,next_attempt_at}"),
    ] {
        let rows: String = sqlx::query_scalar(&format!(
            "SELECT coalesce(jsonb_agg(to_jsonb(t) - '{unstable}'::text[] ORDER BY t.{order}),
                             '[]')::text
             FROM {table} t"
        ))
        .fetch_one(store.pool())
        .await
        .unwrap();
        tables.push((table, serde_json::from_str(&rows).unwrap()));
    }
    tables
}

/// Applies `updates` as one group on `grouped` and one by one on `alone` (copies of one
/// database), checks that results and rows are the same; the results and the statements
/// each way ran.
async fn compare(
    grouped: &PgStore,
    alone: &PgStore,
    updates: &[StatusUpdate],
) -> (Vec<StatusApplied>, usize, usize) {
    let started = std::time::Instant::now();
    let (together, group_statements) = counted(grouped.apply_group_for_test(updates)).await;
    let group_time = started.elapsed();
    let started = std::time::Instant::now();
    let together = together.expect("apply the group");
    let (one_by_one, single_statements) = counted(async {
        let mut results = Vec::new();
        for u in updates {
            results.push(alone.apply_status(u).await.expect("apply one status"));
        }
        results
    })
    .await;
    let single_time = started.elapsed();
    assert_eq!(together.len(), updates.len());
    for (i, (g, a)) in together.iter().zip(&one_by_one).enumerate() {
        assert_eq!(
            format!("{g:?}"),
            format!("{a:?}"),
            "status #{i} {:?}",
            updates[i]
        );
    }
    for ((table, g), (_, a)) in dump(grouped).await.into_iter().zip(dump(alone).await) {
        assert_eq!(g, a, "table {table}: group (left) and one by one (right)");
    }
    // sqlx does not log BEGIN: one more each way per transaction.
    eprintln!(
        "{} statuses: as a group {group_time:?}, {:?}; one by one {single_time:?}",
        updates.len(),
        group_statements
    );
    (together, group_statements.len(), single_statements.len())
}

/// An endpoint for every event a status group queues.
async fn endpoint(store: &PgStore, s: &Seeded) {
    store_seed::endpoint(
        store,
        s,
        &[
            "message.sent",
            "message.delivered",
            "message.read",
            "message.failed",
            "conversation.opened",
            "conversation.closed",
        ],
    )
    .await;
}

/// A new queued message to `phone` (its conversation's first when `phone` has none).
async fn queued(store: &PgStore, s: &Seeded, phone: &str, callback: Option<&str>) -> String {
    let mut send = accept(s, phone, plantilla::now_ms());
    send.callback_url = callback.map(str::to_string);
    match store.accept_send(&send).await.unwrap() {
        AcceptOutcome::Pending { message_id, .. } | AcceptOutcome::Sent { message_id, .. } => {
            message_id
        }
        other => panic!("not queued: {other:?}"),
    }
}

/// Claims the channel's only queued job: `message_id`'s.
async fn claim(store: &PgStore, s: &Seeded, message_id: &str) -> i64 {
    let jobs = store
        .claim_jobs(&s.channel.id, 100, plantilla::now_ms(), LEASE, ORPHAN_WAIT)
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].message.id, message_id);
    jobs[0].attempt
}

fn by_id(id: &str, status: MessageStatus, at: i64) -> StatusUpdate {
    StatusUpdate {
        provider_message_id: None,
        message_id: Some(id.to_string()),
        status,
        at,
        error: None,
        pricing_category: None,
        pricing: None,
        channel_id: None,
    }
}

fn pricing(category: &str) -> Option<Pricing> {
    Some(Pricing {
        pricing_type: Some("regular".into()),
        category: Some(category.into()),
        pricing_model: Some("PMP".into()),
        billable: Some(true),
    })
}

fn error(code: i64) -> Option<ProviderError> {
    Some(ProviderError {
        code,
        title: "Message undeliverable".into(),
        details: Some("details".into()),
    })
}

/// The per-message lists of statuses, taken one from each list in turn.
fn interleave(lists: Vec<Vec<StatusUpdate>>) -> Vec<StatusUpdate> {
    let mut lists: Vec<std::collections::VecDeque<StatusUpdate>> =
        lists.into_iter().map(Into::into).collect();
    let mut out = Vec::new();
    while lists.iter().any(|l| !l.is_empty()) {
        for list in &mut lists {
            if let Some(u) = list.pop_front() {
                out.push(u);
            }
        }
    }
    out
}

postgres_only!(a_group_of_statuses_applies_exactly_as_one_by_one);
async fn a_group_of_statuses_applies_exactly_as_one_by_one() {
    with_databases(|dbs| async move {
        let setup = PgStore::open(&dbs.url(&dbs.original), 4).await.unwrap();
        let s = store_seed::seed(&setup, 1000).await;
        endpoint(&setup, &s).await;
        let other_channel = new_id("chn");
        // Sent, their conversations pending: P1..P6.
        let mut p = Vec::new();
        for i in 1..=6 {
            let wamid = format!("wamid.P{i}");
            let (_, id) = sent_message(&setup, &s, &format!("5076100000{i}"), &wamid).await;
            p.push((wamid, id));
        }
        // A second message on an open conversation: O1.
        sent_message(&setup, &s, "50761000010", "wamid.O0").await;
        setup
            .apply_status(&status(
                "wamid.O0",
                MessageStatus::Delivered,
                plantilla::now_ms(),
            ))
            .await
            .unwrap();
        let o1 = queued(&setup, &s, "50761000010", None).await;
        let attempt = claim(&setup, &s, &o1).await;
        setup
            .finish_attempt(&AttemptOutcome {
                message_id: o1.clone(),
                attempt,
                now: plantilla::now_ms(),
                result: AttemptResult::Accepted {
                    provider_message_id: "wamid.O1".into(),
                    wa_id: None,
                },
            })
            .await
            .unwrap();
        // Claimed, no answer from the provider yet: Q2 (its job leased).
        let q2 = queued(&setup, &s, "50761000020", None).await;
        claim(&setup, &s, &q2).await;
        // Queued: Q1 (with its own callback URL), Q3; cancelled: C1.
        let q1 = queued(&setup, &s, "50761000021", Some("http://127.0.0.1:9/cb")).await;
        let q3 = queued(&setup, &s, "50761000022", None).await;
        let c1 = queued(&setup, &s, "50761000023", None).await;
        assert!(matches!(
            setup
                .cancel_message(&s.account.id, &c1, plantilla::now_ms())
                .await
                .unwrap(),
            CancelOutcome::Cancelled { .. }
        ));
        setup.pool().close().await;
        drop(setup);
        let (grouped, alone) = dbs.copy_and_open().await;

        // Times from now on (an open conversation idle for a day would be closed by a send).
        let t0 = plantilla::now_ms();
        let status = |wamid: &str, st, at: i64| status(wamid, st, t0 + at);
        let by_id = |id: &str, st, at: i64| by_id(id, st, t0 + at);
        let wamid = |i: usize, st, at| status(&p[i].0, st, at);
        let on = |mut u: StatusUpdate, channel: &str| {
            u.channel_id = Some(channel.to_string());
            u
        };
        let priced = |mut u: StatusUpdate, category: &str| {
            u.pricing_category = Some(category.into());
            u.pricing = pricing(category);
            u
        };
        let failed = |mut u: StatusUpdate, code| {
            u.error = error(code);
            u
        };
        use MessageStatus::*;
        let lists = vec![
            // In order, then a failed after read (ignored).
            vec![
                priced(wamid(0, Sent, 2_000), "utility"),
                wamid(0, Delivered, 2_100),
                wamid(0, Read, 2_200),
                failed(wamid(0, Failed, 2_300), 131026),
            ],
            // Out of order: read first, the others late.
            vec![
                wamid(1, Read, 3_300),
                wamid(1, Delivered, 3_200),
                wamid(1, Sent, 3_100),
            ],
            // A duplicate, a failure after sent, a read after the failure.
            vec![
                wamid(2, Sent, 4_000),
                wamid(2, Sent, 4_001),
                failed(wamid(2, Failed, 4_100), 131047),
                wamid(2, Read, 4_200),
            ],
            // Failed without an error first (closes the pending conversation), then a
            // delivered that only brings its pricing.
            vec![
                wamid(3, Failed, 5_000),
                priced(wamid(3, Delivered, 5_100), "marketing"),
            ],
            // Another channel's webhook, then the message's own.
            vec![
                on(wamid(4, Delivered, 6_000), &other_channel),
                on(wamid(4, Sent, 6_100), &s.channel.id),
            ],
            vec![on(wamid(5, Read, 7_000), &other_channel)],
            // A message of an open conversation: delivered, then failed.
            vec![
                status("wamid.O1", Delivered, 8_000),
                failed(status("wamid.O1", Failed, 8_100), 131026),
            ],
            // Known by our id only: it learns its wamid, by which the next ones find it.
            vec![
                priced(
                    StatusUpdate {
                        provider_message_id: Some("wamid.Q1".into()),
                        ..by_id(&q1, Sent, 9_000)
                    },
                    "utility",
                ),
                status("wamid.Q1", Delivered, 9_100),
                status("wamid.Q1", Read, 9_200),
            ],
            vec![by_id(&q2, Sent, 10_000)],
            vec![by_id(&q3, Sending, 11_000)],
            vec![by_id(&c1, Sent, 12_000)],
            // Unknown ones; a wamid and an id of two messages (the wamid's wins).
            vec![
                status("wamid.nope", Delivered, 13_000),
                by_id("msg_nope", Delivered, 13_001),
                StatusUpdate {
                    provider_message_id: None,
                    ..status("", Read, 13_002)
                },
                StatusUpdate {
                    provider_message_id: Some(p[0].0.clone()),
                    ..by_id(&q3, Delivered, 13_003)
                },
            ],
        ];
        // Q1's wamid before Q1 learns it: unknown then.
        let mut updates = vec![status("wamid.Q1", Delivered, 8_999)];
        updates.extend(interleave(lists));

        let (results, group_statements, single_statements) =
            compare(&grouped, &alone, &updates).await;
        // Every kind of result was given (or the comparison proved little).
        let mut kinds = std::collections::BTreeMap::new();
        for r in &results {
            let kind = match r {
                StatusApplied::UnknownMessage => "unknown".to_string(),
                StatusApplied::OtherChannel => "other channel".to_string(),
                StatusApplied::Applied {
                    changed,
                    conversation,
                    ..
                } => format!(
                    "changed {changed}, conversation {:?}",
                    conversation.as_ref().map(|c| c.1)
                ),
            };
            *kinds.entry(kind).or_insert(0) += 1;
        }
        assert_eq!(
            kinds,
            std::collections::BTreeMap::from([
                ("unknown".to_string(), 4),
                ("other channel".to_string(), 2),
                ("changed false, conversation None".to_string(), 8),
                ("changed true, conversation None".to_string(), 8),
                ("changed true, conversation Some(Open)".to_string(), 6),
                ("changed true, conversation Some(Closed)".to_string(), 1),
            ]),
            "{results:?}"
        );
        // Events went out to the endpoint and to Q1's own callback URL, for messages and
        // conversations.
        let outbox: Vec<(String, String)> = sqlx::query_as(
            "SELECT DISTINCT event_type, endpoint_id FROM callback_outbox ORDER BY 1, 2",
        )
        .fetch_all(grouped.pool())
        .await
        .unwrap();
        for (event, endpoint) in [
            ("conversation.opened", false),
            ("conversation.closed", false),
            ("message.failed", false),
            ("message.read", true),
        ] {
            assert!(
                outbox
                    .iter()
                    .any(|(e, id)| e == event && id.is_empty() == endpoint),
                "{event} {endpoint}: {outbox:?}"
            );
        }
        eprintln!(
            "{} statuses: {group_statements} statements as a group, \
             {single_statements} one by one (BEGIN not counted)",
            updates.len()
        );
        // Found and jobs locked, messages read, all written, COMMIT (BEGIN is not logged),
        // and the account's endpoints, read once per copy's lifetime.
        assert!(group_statements <= 5, "{group_statements} statements");
    })
    .await;
}

postgres_only!(a_webhooks_worth_of_sent_delivered_read_as_a_group);
/// The common case: messages sent, delivered and read, in batches the way Meta sends them.
async fn a_webhooks_worth_of_sent_delivered_read_as_a_group() {
    with_databases(|dbs| async move {
        let setup = PgStore::open(&dbs.url(&dbs.original), 4).await.unwrap();
        let s = store_seed::seed(&setup, 1000).await;
        endpoint(&setup, &s).await;
        let mut wamids = Vec::new();
        for i in 0..33 {
            let wamid = format!("wamid.M{i}");
            sent_message(&setup, &s, &format!("507620000{i:02}"), &wamid).await;
            wamids.push(wamid);
        }
        setup.pool().close().await;
        drop(setup);
        let (grouped, alone) = dbs.copy_and_open().await;
        let mut updates = Vec::new();
        for (k, st) in [
            MessageStatus::Sent,
            MessageStatus::Delivered,
            MessageStatus::Read,
        ]
        .into_iter()
        .enumerate()
        {
            for (i, wamid) in wamids.iter().enumerate() {
                let mut u = status(wamid, st, 1_000 * k as i64 + i as i64);
                u.channel_id = Some(s.channel.id.clone());
                if st == MessageStatus::Sent {
                    u.pricing_category = Some("utility".into());
                    u.pricing = pricing("utility");
                }
                updates.push(u);
            }
        }
        let (_, group_statements, single_statements) = compare(&grouped, &alone, &updates).await;
        eprintln!(
            "{} statuses: {group_statements} statements as a group, \
             {single_statements} one by one (BEGIN not counted)",
            updates.len()
        );
        // Found and jobs locked, messages read, all written, COMMIT (BEGIN is not logged),
        // and the account's endpoints, read once per copy's lifetime.
        assert!(group_statements <= 5, "{group_statements} statements");
        assert!(
            single_statements >= 5 * updates.len(),
            "{single_statements}"
        );
    })
    .await;
}

postgres_only!(
    concurrent_groups_and_claims_never_deadlock,
    flavor = "multi_thread",
    worker_threads = 4
);
/// Groups of the same statuses in different orders, single statuses and dispatchers at once:
/// every call succeeds (the locks are taken in one order), and each conversation opens once.
async fn concurrent_groups_and_claims_never_deadlock() {
    with_databases(|dbs| async move {
        let store = Arc::new(PgStore::open(&dbs.url(&dbs.original), 16).await.unwrap());
        let s = Arc::new(store_seed::seed(&*store, 1000).await);
        endpoint(&store, &s).await;
        let mut wamids = Vec::new();
        for i in 0..24 {
            let wamid = format!("wamid.C{i}");
            sent_message(&*store, &s, &format!("507630000{i:02}"), &wamid).await;
            wamids.push(wamid);
        }
        // Queued messages the dispatchers claim while statuses come for them by our id.
        let mut queued_ids = Vec::new();
        for i in 0..24 {
            queued_ids.push(queued(&store, &s, &format!("507640000{i:02}"), None).await);
        }
        let now = plantilla::now_ms();
        let mut all: Vec<StatusUpdate> = Vec::new();
        for (k, st) in [
            MessageStatus::Sent,
            MessageStatus::Delivered,
            MessageStatus::Read,
        ]
        .into_iter()
        .enumerate()
        {
            for wamid in &wamids {
                all.push(status(wamid, st, now + k as i64));
            }
            for id in &queued_ids {
                all.push(by_id(id, st, now + k as i64));
            }
        }
        let all = Arc::new(all);
        let mut tasks = tokio::task::JoinSet::new();
        for t in 0..6usize {
            let (store, all) = (store.clone(), all.clone());
            tasks.spawn(async move {
                // Each task its own order, in groups of 20.
                let mut mine: Vec<StatusUpdate> = all.to_vec();
                mine.rotate_left(t * 11 % all.len());
                if t % 2 == 1 {
                    mine.reverse();
                }
                for group in mine.chunks(20) {
                    store.apply_group_for_test(group).await.expect("group");
                }
            });
        }
        {
            let (store, all) = (store.clone(), all.clone());
            tasks.spawn(async move {
                for u in all.iter().rev() {
                    store.apply_status(u).await.expect("status");
                }
            });
        }
        for _ in 0..2 {
            let (store, s) = (store.clone(), s.clone());
            tasks.spawn(async move {
                for _ in 0..20 {
                    let now = plantilla::now_ms();
                    let jobs = store
                        .claim_jobs(&s.channel.id, 3, now, LEASE, ORPHAN_WAIT)
                        .await
                        .expect("claim");
                    for job in jobs {
                        store
                            .finish_attempt(&AttemptOutcome {
                                message_id: job.message.id.clone(),
                                attempt: job.attempt,
                                now,
                                result: AttemptResult::Accepted {
                                    provider_message_id: format!("wamid.{}", job.message.id),
                                    wa_id: None,
                                },
                            })
                            .await
                            .expect("finish");
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        let count = |sql: &'static str| {
            let store = store.clone();
            async move {
                sqlx::query_scalar::<_, i64>(sql)
                    .fetch_one(store.pool())
                    .await
                    .unwrap()
            }
        };
        assert_eq!(
            count("SELECT count(*) FROM messages WHERE status <> 'read'").await,
            0,
            "every message read"
        );
        assert_eq!(count("SELECT count(*) FROM delivery_jobs").await, 0);
        assert_eq!(
            count("SELECT count(*) FROM conversations WHERE status = 'open'").await,
            48
        );
        // A conversation moves once, whoever moves it: one event each.
        assert_eq!(
            count("SELECT count(*) FROM callback_outbox WHERE event_type = 'conversation.opened'")
                .await,
            48
        );
        for event in ["message.sent", "message.delivered", "message.read"] {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM (SELECT message_id FROM callback_outbox
                 WHERE event_type = $1 GROUP BY message_id HAVING count(*) > 1) twice",
            )
            .bind(event)
            .fetch_one(store.pool())
            .await
            .unwrap();
            assert_eq!(n, 0, "{event} queued twice for a message");
        }
    })
    .await;
}
