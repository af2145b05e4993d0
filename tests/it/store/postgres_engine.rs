//! The PostgreSQL store against the machine's PostgreSQL: migrations, every method once, and
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
use plantilla::domain::ids::{hash_token, new_id};
use plantilla::domain::status::{CloseReason, ConversationStatus, MessageStatus};
use plantilla::service::send::{SendOutcome, send};
use plantilla::store::postgres::PgStore;
use plantilla::store::*;
use serde_json::json;
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
const MIGRATIONS: i64 = 12;

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
                conversation_id: winner
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

postgres_only!(every_method_round_trips);
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
        let (name, last): (String, Option<i64>) = sqlx::query_as(
            "SELECT client_name, last_inbound_at FROM contacts WHERE phone_number = $1",
        )
        .bind(phone)
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!((name.as_str(), last), ("Ana María", Some(now + 50)));
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
