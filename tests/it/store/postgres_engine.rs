//! The PostgreSQL store against the machine's PostgreSQL: migrations, statement planning, and
//! the rules that must hold without a single writer (one pending conversation per number, the
//! plan limit, claims, fenced outcomes, monotonic statuses).
//!
//! Each test (a `postgres_only!` case) creates its own database (`plantilla_test_<random>`)
//! through the server named by `PLANTILLA_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and drops it at the end; an unreachable server
//! follows the harness' rule (tests/it/common/mod.rs).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::common::{pg_server_url, pg_url_for, store_seed};
use plantilla::app::App;
use plantilla::config::Config;
use plantilla::domain::ids::new_id;
use plantilla::domain::status::MessageStatus;
use plantilla::service::send::{SendOutcome, send};
use plantilla::store::postgres::PgStore;
use plantilla::store::*;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::task::JoinSet;

const ORPHAN_WAIT: i64 = 120_000;
const LEASE: i64 = 30_000;

/// Runs `body` with the URL of a fresh database, which is dropped afterwards even when the
/// body panics.
async fn with_database<F, Fut>(body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let url = pg_server_url();
    let options: PgConnectOptions = url
        .parse()
        .expect("PLANTILLA_TEST_PG_URL is not a PostgreSQL URL");
    let mut admin =
        tokio::time::timeout(Duration::from_secs(5), PgConnection::connect_with(&options))
            .await
            .expect("connecting to PostgreSQL timed out")
            .expect("connect to PostgreSQL");
    let name = format!("plantilla_test_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create the test database");
    let outcome = tokio::spawn(body(pg_url_for(&url, &name))).await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .expect("drop the test database");
    let _ = admin.close().await;
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("test body did not finish: {e}"),
        }
    }
}

async fn open(url: &str) -> Arc<PgStore> {
    Arc::new(PgStore::open(url, 16).await.expect("open PgStore"))
}

async fn count(store: &PgStore, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .expect(sql)
}

use store_seed::{Seeded, accept, request, sent_message, status};

async fn seed(store: &PgStore, conversation_limit: i64) -> Seeded {
    store_seed::seed(store, conversation_limit).await
}

fn app(store: Arc<PgStore>, url: &str) -> App {
    let config = Config {
        database_url: url.to_string(),
        ..Config::default()
    };
    App::with_store(store, config).expect("app")
}

/// Migrations embedded for PostgreSQL (one row each in `schema_migrations`).
const MIGRATIONS: i64 = 18;

postgres_only!(migrations_apply_twice_and_from_instances_starting_together);
async fn migrations_apply_twice_and_from_instances_starting_together() {
    with_database(|url| async move {
        let first = open(&url).await;
        drop(first);
        let second = open(&url).await;
        assert_eq!(
            count(&second, "SELECT count(*) FROM schema_migrations").await,
            MIGRATIONS
        );

        // Instances starting at once on a migrated database.
        let mut starting = JoinSet::new();
        for _ in 0..4 {
            let url = url.clone();
            starting.spawn(async move { PgStore::open(&url, 2).await.map(|_| ()) });
        }
        while let Some(done) = starting.join_next().await {
            done.unwrap().expect("concurrent open");
        }
        assert_eq!(
            count(&second, "SELECT count(*) FROM schema_migrations").await,
            MIGRATIONS
        );
    })
    .await;
}

postgres_only!(a_sent_message_moves_to_delivered_and_read_without_index_writes);
async fn a_sent_message_moves_to_delivered_and_read_without_index_writes() {
    with_database(|url| async move {
        let store = open(&url).await;
        let s = seed(&store, 10).await;
        let (_, message_id) = sent_message(&*store, &s, "+34600000001", "wamid.HOT").await;
        // What a status group writes for `delivered`, then `read`: every column written,
        // only the status and its times changed. No index of `messages` may cover them, so
        // each is a HOT update (no entry in any of the table's indexes).
        let mut tx = store.pool().begin().await.unwrap();
        // The connection's counts not yet reported include its earlier transactions' (the
        // claim's update is HOT too): what these two add is counted.
        let hot = "SELECT pg_stat_get_xact_tuples_hot_updated('messages'::regclass)";
        let before: i64 = sqlx::query_scalar(hot).fetch_one(&mut *tx).await.unwrap();
        for (status, column) in [("delivered", "delivered_at"), ("read", "read_at")] {
            sqlx::query(&format!(
                "UPDATE messages SET status = $2, {column} = $3, updated_at = $3,
                    provider_message_id = provider_message_id, sending_at = sending_at,
                    queued_at = queued_at
                 WHERE id = $1"
            ))
            .bind(&message_id)
            .bind(status)
            .bind(plantilla::now_ms())
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        let after: i64 = sqlx::query_scalar(hot).fetch_one(&mut *tx).await.unwrap();
        assert_eq!(
            after - before,
            2,
            "delivered and read must be HOT updates of messages"
        );
        tx.rollback().await.unwrap();
    })
    .await;
}

/// `CREATE INDEX` statements of every index of `table`.
async fn index_definitions(store: &PgStore, table: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = $1::regclass",
    )
    .bind(table)
    .fetch_all(store.pool())
    .await
    .unwrap()
}

/// The first index that names one of `columns`, in its keys or its predicate, and that column
/// (an update that changes it is not HOT).
fn index_naming<'a>(indexes: &'a [String], columns: &[&'a str]) -> Option<(&'a str, &'a str)> {
    indexes.iter().find_map(|index| {
        let words: Vec<&str> = index
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .collect();
        columns
            .iter()
            .find(|column| words.contains(column))
            .map(|column| (index.as_str(), *column))
    })
}

postgres_only!(no_index_of_messages_covers_what_a_claim_or_a_status_changes);
async fn no_index_of_messages_covers_what_a_claim_or_a_status_changes() {
    with_database(|url| async move {
        let store = open(&url).await;
        // The claim's update (status, `sending_at`, attempts, hold), the outcome's (the wamid,
        // the WhatsApp id, the retry's error) and the statuses' (status, their times, pricing)
        // stay HOT only while no index of `messages` names one of their columns, in its keys or
        // its predicate. Wamids are looked up in `message_wamids`.
        let indexes: Vec<String> = sqlx::query_scalar(
            "SELECT pg_get_indexdef(indexrelid) FROM pg_index
             WHERE indrelid = 'messages'::regclass",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        let changed = [
            "status",
            "sending_at",
            "sent_at",
            "delivered_at",
            "read_at",
            "failed_at",
            "attempts",
            "updated_at",
            "held_until",
            "held_reason",
            "pricing_category",
            "provider_message_id",
            "wa_id",
            "error_code",
        ];
        if let Some((index, column)) = index_naming(&indexes, &changed) {
            panic!("{index} covers {column}, which claims or statuses change");
        }
        assert!(indexes.len() >= 5, "{indexes:?}");
    })
    .await;
}

postgres_only!(rows_written_together_have_room_on_their_pages_for_their_next_versions);
async fn rows_written_together_have_room_on_their_pages_for_their_next_versions() {
    with_database(|url| async move {
        let store = open(&url).await;
        let s = seed(&store, 1000).await;
        // Sends written together fill the same pages, and their rows are updated again soon
        // after (a message six times, its conversation once), often before pruning can take
        // the old versions back. An update is HOT (no entry in the table's indexes) only if
        // the new version fits on the row's page: each page must keep room for a new version
        // of every row on it. 60 copies of a real message and its conversation (more than a
        // page of each), written in one transaction, then each updated once in it (nothing
        // can be pruned meanwhile), without growing (every time column already set).
        let (conversation_id, message_id) =
            sent_message(&*store, &s, "+34600000001", "wamid.PAGE").await;
        let mut tx = store.pool().begin().await.unwrap();
        for statement in [
            "CREATE TEMP TABLE copies ON COMMIT DROP AS
             SELECT m.*, g FROM messages m, generate_series(1, 60) AS g WHERE m.id = $1",
            "UPDATE copies SET id = id || '-' || g,
                provider_message_id = provider_message_id || '-' || g,
                sending_at = 1, sent_at = 1, delivered_at = 1, read_at = 1, failed_at = 1",
            "ALTER TABLE copies DROP COLUMN g",
            "INSERT INTO messages SELECT * FROM copies",
            "INSERT INTO conversations (id, account_id, channel_id, phone_number, status,
                assignee, group_id, client_name, first_message_id, close_reason, created_at,
                opened_at, closed_at, last_activity_at)
             SELECT c.id || '-' || g, account_id, channel_id, phone_number || '-' || g,
                'pending', assignee, group_id, client_name, first_message_id, 'a reason', 1,
                1, 1, 1
             FROM conversations c, generate_series(1, 60) AS g WHERE c.id = $2",
        ] {
            sqlx::query(statement)
                .bind(&message_id)
                .bind(&conversation_id)
                .execute(&mut *tx)
                .await
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
        for (table, update) in [
            (
                "messages",
                "UPDATE messages SET status = 'read', read_at = 2, updated_at = 2
                 WHERE id LIKE $1 || '-%'",
            ),
            (
                "conversations",
                "UPDATE conversations SET status = 'open', opened_at = 2, last_activity_at = 2
                 WHERE id LIKE $2 || '-%'",
            ),
        ] {
            let counts = format!(
                "SELECT pg_stat_get_xact_tuples_updated('{table}'::regclass),
                        pg_stat_get_xact_tuples_hot_updated('{table}'::regclass)"
            );
            let (updated, hot): (i64, i64) =
                sqlx::query_as(&counts).fetch_one(&mut *tx).await.unwrap();
            sqlx::query(update)
                .bind(&message_id)
                .bind(&conversation_id)
                .execute(&mut *tx)
                .await
                .unwrap();
            let (updated_after, hot_after): (i64, i64) =
                sqlx::query_as(&counts).fetch_one(&mut *tx).await.unwrap();
            assert_eq!(updated_after - updated, 60, "{table}");
            assert_eq!(hot_after - hot, 60, "{table}: updates that were not HOT");
        }
        tx.rollback().await.unwrap();
    })
    .await;
}

postgres_only!(no_index_is_served_by_another_one);
async fn no_index_is_served_by_another_one() {
    with_database(|url| async move {
        let store = open(&url).await;
        // Every index costs an entry per row written. One whose key columns lead another
        // index of the same table (same predicate) serves nothing the longer one does not,
        // unless it is unique and the other is not (then it enforces a rule).
        let redundant: Vec<(String, String)> = sqlx::query_as(
            "SELECT pg_get_indexdef(a.indexrelid), pg_get_indexdef(b.indexrelid)
             FROM pg_index a
             JOIN pg_index b ON b.indrelid = a.indrelid AND b.indexrelid <> a.indexrelid
             JOIN pg_class t ON t.oid = a.indrelid
             WHERE t.relnamespace = 'public'::regnamespace
               AND a.indnatts <= b.indnatts
               AND (b.indkey::int2[])[0:a.indnatts - 1] = (a.indkey::int2[])[0:a.indnatts - 1]
               AND (NOT a.indisunique OR b.indisunique)
               AND pg_get_expr(a.indpred, a.indrelid) IS NOT DISTINCT FROM
                   pg_get_expr(b.indpred, b.indrelid)",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        assert!(redundant.is_empty(), "{redundant:#?}");
    })
    .await;
}

postgres_only!(a_message_s_attempts_are_one_index_entry_each_and_read_by_it);
async fn a_message_s_attempts_are_one_index_entry_each_and_read_by_it() {
    with_database(|url| async move {
        let store = open(&url).await;
        // Attempts are only read by message, in the order written: one index serves that.
        assert_eq!(
            index_definitions(&store, "delivery_attempts").await,
            [
                "CREATE UNIQUE INDEX delivery_attempts_pkey ON public.delivery_attempts \
              USING btree (message_id, id)"
            ]
        );
        let s = seed(&store, 10).await;
        let (_, message_id) = sent_message(&*store, &s, "+34600000001", "wamid.TRIES").await;
        let other = sent_message(&*store, &s, "+34600000002", "wamid.OTHER")
            .await
            .1;
        for (id, attempt, outcome) in [
            (&message_id, 2, "failed"),
            (&other, 2, "failed"),
            (&message_id, 3, "accepted"),
        ] {
            sqlx::query(
                "INSERT INTO delivery_attempts (message_id, attempt, finished_at, outcome)
                 VALUES ($1, $2, 0, $3)",
            )
            .bind(id)
            .bind(attempt)
            .bind(outcome)
            .execute(store.pool())
            .await
            .unwrap();
        }
        let attempts = store.message_attempts(&message_id).await.unwrap();
        let attempts: Vec<i64> = attempts.iter().map(|a| a.attempt).collect();
        assert_eq!(attempts, [1, 2, 3]);
        // The store's plan (generic, as on every connection of its pool) reads that index.
        let mut conn = store.pool().acquire().await.unwrap();
        sqlx::Executor::execute(
            &mut *conn,
            "PREPARE tries(TEXT) AS
             SELECT * FROM delivery_attempts WHERE message_id = $1 ORDER BY id",
        )
        .await
        .unwrap();
        let plan: Vec<String> = sqlx::query_scalar("EXPLAIN EXECUTE tries('x')")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        let plan = plan.join("\n");
        assert!(plan.contains("delivery_attempts_pkey"), "{plan}");
    })
    .await;
}

postgres_only!(no_index_of_conversations_covers_what_opening_one_changes);
async fn no_index_of_conversations_covers_what_opening_one_changes() {
    with_database(|url| async move {
        let store = open(&url).await;
        // Every first message opens its conversation (pending -> open): a HOT update only
        // while no index names what the move changes. One active conversation per (channel,
        // number) is kept by `conversations_one_active` on `active`, which it does not change.
        let indexes = index_definitions(&store, "conversations").await;
        let changed = ["status", "opened_at", "last_activity_at"];
        if let Some((index, column)) = index_naming(&indexes, &changed) {
            panic!("{index} covers {column}, which opening a conversation changes");
        }
        assert!(
            indexes
                .iter()
                .any(|i| i.contains("conversations_one_active") && i.contains("WHERE active")),
            "{indexes:?}"
        );
        // A row's `active` follows its status.
        let s = seed(&store, 10).await;
        let (conversation_id, _) = sent_message(&*store, &s, "+34600000001", "wamid.OPEN").await;
        let active = "SELECT active FROM conversations WHERE id = $1";
        for (status, expected) in [("open", true), ("closed", false)] {
            sqlx::query("UPDATE conversations SET status = $2 WHERE id = $1")
                .bind(&conversation_id)
                .bind(status)
                .execute(store.pool())
                .await
                .unwrap();
            let now: bool = sqlx::query_scalar(active)
                .bind(&conversation_id)
                .fetch_one(store.pool())
                .await
                .unwrap();
            assert_eq!(now, expected, "{status}");
        }
    })
    .await;
}

postgres_only!(a_wamid_names_one_message_and_follows_it);
async fn a_wamid_names_one_message_and_follows_it() {
    with_database(|url| async move {
        let store = open(&url).await;
        let s = seed(&store, 10).await;
        let (_, first) = sent_message(&*store, &s, "+34600000001", "wamid.ONE").await;
        let (_, second) = sent_message(&*store, &s, "+34600000002", "wamid.TWO").await;
        let wamids = |store: Arc<PgStore>| async move {
            sqlx::query_as::<_, (String, String)>(
                "SELECT wamid, message_id FROM message_wamids ORDER BY wamid",
            )
            .fetch_all(store.pool())
            .await
            .unwrap()
        };
        assert_eq!(
            wamids(store.clone()).await,
            [
                ("wamid.ONE".to_string(), first.clone()),
                ("wamid.TWO".to_string(), second.clone())
            ]
        );
        // A wamid is on one message at most, as the unique index on messages kept it.
        let taken =
            sqlx::query("UPDATE messages SET provider_message_id = 'wamid.ONE' WHERE id = $1")
                .bind(&second)
                .execute(store.pool())
                .await
                .unwrap_err();
        assert!(
            taken
                .as_database_error()
                .is_some_and(|e| e.is_unique_violation()),
            "{taken:?}"
        );
        // Cleared and set again by any statement, the table follows.
        sqlx::query("UPDATE messages SET provider_message_id = NULL WHERE id = $1")
            .bind(&first)
            .execute(store.pool())
            .await
            .unwrap();
        sqlx::query("UPDATE messages SET provider_message_id = 'wamid.ONE' WHERE id = $1")
            .bind(&second)
            .execute(store.pool())
            .await
            .unwrap();
        assert_eq!(
            wamids(store.clone()).await,
            [("wamid.ONE".to_string(), second.clone())]
        );
    })
    .await;
}

postgres_only!(
    migrations_race_on_an_empty_database,
    flavor = "multi_thread",
    worker_threads = 4
);
async fn migrations_race_on_an_empty_database() {
    with_database(|url| async move {
        // Nothing applied yet: four instances race to create the schema.
        let mut starting = JoinSet::new();
        for _ in 0..4 {
            let url = url.clone();
            starting.spawn(async move { PgStore::open(&url, 2).await.map(|_| ()) });
        }
        while let Some(done) = starting.join_next().await {
            done.unwrap().expect("concurrent first open");
        }
        let store = open(&url).await;
        assert_eq!(
            count(&store, "SELECT count(*) FROM schema_migrations").await,
            MIGRATIONS
        );
    })
    .await;
}

/// Starts a transaction that creates a pending conversation for `phone` and leaves it
/// uncommitted, as a concurrent send on another instance would.
async fn conversation_in_flight(
    store: &PgStore,
    s: &Seeded,
    phone: &str,
) -> (sqlx::Transaction<'static, sqlx::Postgres>, String) {
    let id = new_id("conv");
    let mut tx = store.pool().begin().await.unwrap();
    sqlx::query(
        "INSERT INTO conversations (id, account_id, channel_id, phone_number, status, assignee,
            client_name, created_at, last_activity_at)
         VALUES ($1, $2, $3, $4, 'pending', 'bot', $4, 0, 0)",
    )
    .bind(&id)
    .bind(&s.account.id)
    .bind(&s.channel.id)
    .bind(phone)
    .execute(&mut *tx)
    .await
    .unwrap();
    (tx, id)
}

postgres_only!(
    a_concurrent_conversation_is_a_conflict_that_the_send_retries,
    flavor = "multi_thread",
    worker_threads = 4
);
async fn a_concurrent_conversation_is_a_conflict_that_the_send_retries() {
    with_database(|url| async move {
        let store = open(&url).await;
        let s = Arc::new(seed(&store, 1000).await);

        // The store: the second insert waits for the first, then reports a conflict and
        // keeps nothing of its transaction (the usage count, the contact).
        let (tx, _) = conversation_in_flight(&store, &s, "50755667788").await;
        let racing = {
            let (store, mut send) = (
                store.clone(),
                accept(&s, "50755667788", plantilla::now_ms()),
            );
            send.client_name = Some("Ana".into());
            tokio::spawn(async move { store.accept_send(&send).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !racing.is_finished(),
            "the insert should wait for the other transaction"
        );
        tx.commit().await.unwrap();
        let outcome = racing.await.unwrap();
        assert!(
            matches!(outcome, Err(StoreError::Conflict(_))),
            "{outcome:?}"
        );
        assert_eq!(
            count(
                &store,
                "SELECT count(*) FROM conversation_usage WHERE used > 0"
            )
            .await,
            0
        );
        assert_eq!(count(&store, "SELECT count(*) FROM contacts").await, 0);
        assert_eq!(count(&store, "SELECT count(*) FROM messages").await, 0);

        // The send service retries once and reports the conversation that won.
        let app = app(store.clone(), &url);
        let (tx, winner) = conversation_in_flight(&store, &s, "50766778899").await;
        let racing = {
            let (app, s) = (app.clone(), s.clone());
            tokio::spawn(
                async move { send(&app, &s.channel, request(&s, "50766778899", None)).await },
            )
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!racing.is_finished());
        tx.commit().await.unwrap();
        assert_eq!(
            racing.await.unwrap().expect("send"),
            SendOutcome::AlreadyPending {
                conversation_id: winner.into()
            }
        );
        assert_eq!(count(&store, "SELECT count(*) FROM messages").await, 0);
    })
    .await;
}

postgres_only!(an_endpoint_deleted_by_another_instance_gets_no_more_events);
async fn an_endpoint_deleted_by_another_instance_gets_no_more_events() {
    with_database(|url| async move {
        // Two instances on one database; `a` keeps a copy of the account's endpoints.
        let a = open(&url).await;
        let b = open(&url).await;
        let s = seed(&a, 1000).await;
        let endpoint = WebhookEndpoint {
            id: new_id("we"),
            account_id: s.account.id.clone(),
            url: "http://127.0.0.1:9/hook".into(),
            event_types: vec!["message.sent".into(), "message.delivered".into()],
            description: None,
            secret: "whsec_test".into(),
            created_at: plantilla::now_ms(),
        };
        a.insert_webhook_endpoint(&endpoint, None).await.unwrap();
        let (_, message_id) = sent_message(&*a, &s, "50755660002", "wamid.EP1").await;
        let rows = "SELECT count(*) FROM callback_outbox WHERE endpoint_id <> ''";
        let started = std::time::Instant::now();
        let now = plantilla::now_ms();
        a.apply_status(&status("wamid.EP1", MessageStatus::Sent, now))
            .await
            .unwrap();
        assert_eq!(count(&a, rows).await, 1, "the sent event for the endpoint");
        // `b` deletes the endpoint (and its outbox rows); `a`'s copy still lists it.
        assert!(
            b.delete_webhook_endpoint(&s.account.id, &endpoint.id)
                .await
                .unwrap()
        );
        a.apply_status(&status("wamid.EP1", MessageStatus::Delivered, now + 1))
            .await
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(1), // the copies' lifetime
            "the test must run within one copy's lifetime to test anything"
        );
        assert_eq!(
            count(&a, rows).await,
            0,
            "no event queued for the deleted endpoint"
        );
        let message = a.message(&message_id).await.unwrap().unwrap();
        assert_eq!(message.status, MessageStatus::Delivered);
    })
    .await;
}

postgres_only!(
    mixed_concurrent_traffic_never_deadlocks,
    flavor = "multi_thread",
    worker_threads = 4
);
/// Sends (with and without a name), inbound messages, two dispatchers and webhooks on the same
/// numbers at once: every call succeeds (no deadlock between the methods' locks) and no
/// message is left queued or sending.
async fn mixed_concurrent_traffic_never_deadlocks() {
    with_database(|url| async move {
        let store = open(&url).await;
        let s = Arc::new(seed(&store, 1000).await);
        let app = app(store.clone(), &url);
        let phones: Arc<Vec<String>> = Arc::new((0..6).map(|i| format!("5076{i:07}")).collect());
        let senders_done = Arc::new(AtomicBool::new(false));

        let mut senders = JoinSet::new();
        for i in 0..24 {
            let (app, s, phones) = (app.clone(), s.clone(), phones.clone());
            senders.spawn(async move {
                for round in 0..6 {
                    let phone = &phones[(i + round) % phones.len()];
                    let name = (i % 2 == 0).then_some("Ana");
                    send(&app, &s.channel, request(&s, phone, name))
                        .await
                        .expect("send");
                }
            });
        }
        for i in 0..6 {
            let (store, s, phones) = (store.clone(), s.clone(), phones.clone());
            senders.spawn(async move {
                for round in 0..20 {
                    let name = (round % 3 == 0).then_some("Inbound");
                    store
                        .record_inbound(&s.channel, &phones[i], name, plantilla::now_ms())
                        .await
                        .expect("record inbound");
                }
            });
        }
        let mut dispatchers = JoinSet::new();
        // Webhooks for messages in any state, queued ones and ones being claimed included (a
        // send whose response was lost): they race the claims for the same job.
        {
            let (store, done) = (store.clone(), senders_done.clone());
            dispatchers.spawn(async move {
                while !done.load(Ordering::SeqCst) {
                    let ids: Vec<String> = sqlx::query_scalar(
                        "SELECT id FROM messages WHERE status IN ('queued', 'sending')",
                    )
                    .fetch_all(store.pool())
                    .await
                    .expect("messages");
                    for id in ids.iter().step_by(2) {
                        let mut webhook = status("", MessageStatus::Sent, plantilla::now_ms());
                        webhook.provider_message_id = None;
                        webhook.message_id = Some(id.clone());
                        store.apply_status(&webhook).await.expect("stray status");
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            });
        }
        for _ in 0..2 {
            let (store, s, done) = (store.clone(), s.clone(), senders_done.clone());
            dispatchers.spawn(async move {
                loop {
                    let finished = done.load(Ordering::SeqCst);
                    let now = plantilla::now_ms();
                    let jobs = store
                        .claim_jobs(&s.channel.id, 5, now, LEASE, ORPHAN_WAIT)
                        .await
                        .expect("claim");
                    if jobs.is_empty() {
                        if finished {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        continue;
                    }
                    for (n, job) in jobs.into_iter().enumerate() {
                        let id = job.message.id.clone();
                        let wamid = format!("wamid.{id}");
                        let outcome = |result| AttemptOutcome {
                            message_id: id.clone(),
                            attempt: job.attempt,
                            now,
                            result,
                        };
                        let accepted = AttemptResult::Accepted {
                            provider_message_id: wamid.clone(),
                            wa_id: None,
                        };
                        let mut webhook = status(&wamid, MessageStatus::Delivered, now);
                        webhook.message_id = Some(id.clone());
                        match n % 3 {
                            // The webhook outruns the provider's response.
                            0 => {
                                store.apply_status(&webhook).await.expect("status");
                                store
                                    .finish_attempt(&outcome(accepted))
                                    .await
                                    .expect("finish");
                            }
                            1 => {
                                store
                                    .finish_attempt(&outcome(accepted))
                                    .await
                                    .expect("finish");
                                store.apply_status(&webhook).await.expect("status");
                            }
                            _ => {
                                let error = ProviderError {
                                    code: 131026,
                                    title: "Message undeliverable".into(),
                                    details: None,
                                };
                                let failed = AttemptResult::Failed { error };
                                store
                                    .finish_attempt(&outcome(failed))
                                    .await
                                    .expect("finish");
                            }
                        }
                    }
                }
            });
        }
        while let Some(done) = senders.join_next().await {
            done.unwrap();
        }
        senders_done.store(true, Ordering::SeqCst);
        while let Some(done) = dispatchers.join_next().await {
            done.unwrap();
        }
        assert_eq!(count(&store, "SELECT count(*) FROM delivery_jobs").await, 0);
        assert_eq!(
            count(
                &store,
                "SELECT count(*) FROM messages WHERE status IN ('queued', 'sending')"
            )
            .await,
            0
        );
        assert!(count(&store, "SELECT count(*) FROM messages").await >= 6);
        assert_eq!(
            count(
                &store,
                "SELECT count(*) FROM (SELECT channel_id, phone_number FROM conversations
                 WHERE status IN ('pending', 'open') GROUP BY 1, 2 HAVING count(*) > 1) dup"
            )
            .await,
            0
        );
    })
    .await;
}

postgres_only!(connections_plan_their_statements_once);
async fn connections_plan_their_statements_once() {
    with_database(|url| async move {
        let store = open(&url).await;
        let mode: String = sqlx::query_scalar("SELECT current_setting('plan_cache_mode')")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(mode, "force_generic_plan");
    })
    .await;
}

postgres_only!(a_few_rows_are_looked_up_by_index_in_a_table_of_some_pages);
async fn a_few_rows_are_looked_up_by_index_in_a_table_of_some_pages() {
    with_database(|url| async move {
        let store = open(&url).await;
        // The grouped statements join a table with arrays, which a generic plan takes for
        // 10 rows. On a table of about 30 pages the server's default costs (random_page_cost
        // 4) make that a hash join over the whole table; the store's connections look the
        // rows up by index.
        let mut conn = store.pool().acquire().await.unwrap();
        sqlx::query(
            "INSERT INTO pending_statuses (provider_message_id, status, at, received_at)
             SELECT 'wamid.' || g, 'sent', 0, 0 FROM generate_series(1, 3000) AS g",
        )
        .execute(&mut *conn)
        .await
        .unwrap();
        sqlx::Executor::execute(&mut *conn, "ANALYZE pending_statuses")
            .await
            .unwrap();
        sqlx::Executor::execute(
            &mut *conn,
            "PREPARE few(TEXT[]) AS SELECT p.id FROM pending_statuses p
             JOIN unnest($1::TEXT[]) AS k (wamid) ON p.provider_message_id = k.wamid",
        )
        .await
        .unwrap();
        let plan: Vec<String> = sqlx::query_scalar("EXPLAIN EXECUTE few('{wamid.7}')")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        let plan = plan.join("\n");
        sqlx::Executor::execute(&mut *conn, "DEALLOCATE few")
            .await
            .unwrap();
        assert!(!plan.contains("Seq Scan"), "{plan}");
        assert!(plan.contains("Index Scan"), "{plan}");
    })
    .await;
}

#[test]
fn test_database_urls_keep_the_server_and_options() {
    assert_eq!(
        pg_url_for("postgres://postgres@127.0.0.1:5432/postgres", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        pg_url_for("postgres://u:p@h/postgres?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
    assert_eq!(pg_url_for("postgres://h:1", "x"), "postgres://h:1/x");
}

postgres_only!(tables_that_grew_are_analyzed_so_plans_made_on_small_tables_are_made_again);
async fn tables_that_grew_are_analyzed_so_plans_made_on_small_tables_are_made_again() {
    with_database(|url| async move {
        let store = open(&url).await;
        // A connection of the store's pool (generic plans, as every statement of the store
        // has) prepares a lookup while the table is empty: its plan scans the table.
        let mut conn = store.pool().acquire().await.unwrap();
        // At the server's default cost of random reads: at the store's (1.1) this lookup uses
        // the index even on an empty table, so it would not show a plan made again.
        sqlx::Executor::execute(&mut *conn, "SET random_page_cost = 4")
            .await
            .unwrap();
        sqlx::Executor::execute(
            &mut *conn,
            "PREPARE kept(TEXT[]) AS
             SELECT id FROM pending_statuses WHERE provider_message_id = ANY($1)",
        )
        .await
        .unwrap();
        async fn plan(conn: &mut sqlx::PgConnection) -> String {
            let lines: Vec<String> = sqlx::query_scalar("EXPLAIN EXECUTE kept('{wamid.7}')")
                .fetch_all(conn)
                .await
                .unwrap();
            lines.join("\n")
        }
        assert!(plan(&mut conn).await.contains("Seq Scan"));
        let autovacuum: String = sqlx::query_scalar("SELECT current_setting('autovacuum')")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO pending_statuses (provider_message_id, status, at, received_at)
             SELECT 'wamid.' || g, 'sent', 0, 0 FROM generate_series(1, 5000) AS g",
        )
        .execute(&mut *conn)
        .await
        .unwrap();
        if autovacuum == "off" {
            // Nothing tells PostgreSQL to plan it again: the table is scanned for every lookup.
            assert!(plan(&mut conn).await.contains("Seq Scan"));
        }
        // The store analyzes the table that grew (every second where autovacuum is off; the
        // hook runs that step now), which makes the connection plan the lookup again.
        let analyzed = store.analyze_grown_tables().await.unwrap();
        assert!(
            analyzed.contains(&"pending_statuses".to_string()),
            "{analyzed:?}"
        );
        let replanned = plan(&mut conn).await;
        assert!(!replanned.contains("Seq Scan"), "{replanned}");
        // Analyzed again at four times its pages, not before: not while it has not grown, nor
        // when it has doubled.
        let again = store.analyze_grown_tables().await.unwrap();
        assert!(
            !again.contains(&"pending_statuses".to_string()),
            "{again:?}"
        );
        let pages = async |conn: &mut sqlx::PgConnection| -> i64 {
            sqlx::query_scalar(
                "SELECT pg_relation_size('pending_statuses') / current_setting('block_size')::BIGINT",
            )
            .fetch_one(conn)
            .await
            .unwrap()
        };
        let analyzed_at = pages(&mut conn).await;
        let mut added = 5000;
        while pages(&mut conn).await < 2 * analyzed_at {
            sqlx::query(
                "INSERT INTO pending_statuses (provider_message_id, status, at, received_at)
                 SELECT 'wamid.' || g, 'delivered', 0, 0 FROM generate_series($1, $1 + 999) AS g",
            )
            .bind(added)
            .execute(&mut *conn)
            .await
            .unwrap();
            added += 1000;
        }
        assert!(pages(&mut conn).await < 4 * analyzed_at);
        let doubled = store.analyze_grown_tables().await.unwrap();
        assert!(
            !doubled.contains(&"pending_statuses".to_string()),
            "{doubled:?}"
        );
        sqlx::query(
            "INSERT INTO pending_statuses (provider_message_id, status, at, received_at)
             SELECT 'wamid.' || g, 'read', 0, 0 FROM generate_series(1, 4 * $1::INT) AS g",
        )
        .bind(added)
        .execute(&mut *conn)
        .await
        .unwrap();
        let grown = store.analyze_grown_tables().await.unwrap();
        assert!(
            grown.contains(&"pending_statuses".to_string()),
            "{grown:?}"
        );
        sqlx::Executor::execute(&mut *conn, "DEALLOCATE kept; RESET random_page_cost")
            .await
            .unwrap();
    })
    .await;
}
