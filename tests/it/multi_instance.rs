// Three `plantilla serve` processes on one PostgreSQL database share the work: 5,000 messages
// over 10 channels, one instance killed with SIGKILL in the middle. Every message reaches the
// (fake) Graph API exactly once and no channel goes faster than its rate plus its burst.

use crate::common;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{ADMIN_TOKEN, pg_server_url, pg_url_for};
use fake_graph::{FakeGraph, FakeGraphConfig};
use serde_json::{Value, json};

const CHANNELS: usize = 10;
const MESSAGES: usize = 5_000;
const RATE: u32 = 20;
const SECRET: &str = "multi-instance-app-secret";

struct Instance {
    child: Child,
    base: String,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_instance(database_url: &str, graph: &str) -> Instance {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_plantilla"))
        .arg("serve")
        .env("DATABASE_URL", database_url)
        .env("PLANTILLA_LISTEN", format!("127.0.0.1:{port}"))
        .env("PLANTILLA_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("PLANTILLA_GRAPH_BASE_URL", graph)
        .env("PLANTILLA_META_APP_SECRET", SECRET)
        .env("PLANTILLA_DATABASE_MAX_CONNECTIONS", "8")
        .env("PLANTILLA_DISPATCH_LEASE_MS", "2000")
        .env("PLANTILLA_RECONCILE_WINDOW_MS", "2000")
        .env("PLANTILLA_CHANNEL_LEASE_MS", "1000")
        .env("PLANTILLA_TEMPLATE_SYNC_INTERVAL_SECS", "0")
        .env("PLANTILLA_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start plantilla serve");
    let instance = Instance {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client
        .get(format!("{}/", instance.base))
        .send()
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "instance did not start listening"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    instance
}

async fn admin(client: &reqwest::Client, base: &str, path: &str, body: Value) -> Value {
    let r = client
        .post(format!("{base}{path}"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{path}");
    r.json().await.unwrap()
}

postgres_only!(
    three_instances_share_the_work_and_survive_a_sigkill,
    flavor = "multi_thread",
    worker_threads = 4
);
async fn three_instances_share_the_work_and_survive_a_sigkill() {
    // A fresh database (the harness' rules: CI fails loudly without PostgreSQL).
    let server = pg_server_url();
    let admin_pool = match sqlx::PgPool::connect(&server).await {
        Ok(p) => p,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("notice: PostgreSQL unreachable ({e}); multi-instance test not run");
            return;
        }
        Err(e) => panic!("PostgreSQL is unreachable ({e}); CI must run the PostgreSQL tests"),
    };
    let db = format!("plantilla_t_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&admin_pool)
        .await
        .unwrap();
    let database_url = pg_url_for(&server, &db);

    let mut config = FakeGraphConfig {
        app_secret: SECRET.into(),
        accept_unknown_templates: true,
        ..FakeGraphConfig::default()
    };
    for c in 0..CHANNELS {
        config = config.with_phone(&format!("20000{c}"), &format!("TOKEN{c}"));
    }
    let fake = FakeGraph::start(config).await;

    let mut instances = Vec::new();
    for _ in 0..3 {
        instances.push(start_instance(&database_url, fake.base_url()).await);
    }
    // Webhooks go to the instance that survives.
    fake.set_webhook_url(Some(format!("{}/webhooks/whatsapp", instances[0].base)));

    let client = reqwest::Client::new();
    let base0 = instances[0].base.clone();
    let account = admin(
        &client,
        &base0,
        "/v1/admin/accounts",
        json!({"name": "Multi", "conversationLimit": 1_000_000}),
    )
    .await;
    let template = admin(
        &client,
        &base0,
        "/v1/admin/templates",
        json!({"accountId": account["id"], "name": "order_update", "language": "es",
               "appId": "1", "message": "Hola {{name}}"}),
    )
    .await;
    let mut tokens = Vec::new();
    for c in 0..CHANNELS {
        let channel = admin(
            &client,
            &base0,
            "/v1/admin/channels",
            json!({"accountId": account["id"], "name": format!("ch{c}"), "provider": "cloud",
                   "phoneNumberId": format!("20000{c}"), "accessToken": format!("TOKEN{c}"),
                   "messagesPerSecond": RATE}),
        )
        .await;
        tokens.push(channel["publicToken"].as_str().unwrap().to_string());
    }
    let template_id = template["id"].as_str().unwrap().to_string();

    // Send through all three instances; kill the third when 40% are accepted.
    let bases: Vec<String> = instances.iter().map(|i| i.base.clone()).collect();
    let accepted = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let semaphore = Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..MESSAGES {
        let permit = semaphore.clone().acquire_owned().await.unwrap();
        let (client, bases, tokens, template_id) = (
            client.clone(),
            bases.clone(),
            tokens.clone(),
            template_id.clone(),
        );
        let (accepted, task_killed) = (accepted.clone(), killed.clone());
        tasks.spawn(async move {
            let _permit = permit;
            let body = json!({"templateId": template_id, "phoneNumber": format!("5075{i:07}"),
                              "params": {"name": "Ana"}});
            // Try the instances in turn, skipping the killed one once it is gone.
            for attempt in 0..3 {
                let mut target = (i + attempt) % 3;
                if target == 2 && task_killed.load(Ordering::SeqCst) {
                    target = (i + attempt + 1) % 2;
                }
                let r = client
                    .post(format!("{}/api/Template/SendMessage", bases[target]))
                    .bearer_auth(&tokens[i % CHANNELS])
                    .json(&body)
                    .send()
                    .await;
                if let Ok(r) = r
                    && r.status() == 200
                {
                    let v: Value = r.json().await.unwrap();
                    accepted.fetch_add(1, Ordering::SeqCst);
                    return Some(v["data"]["message_id"].as_str().unwrap().to_string());
                }
            }
            None
        });
        if i == MESSAGES * 2 / 5 && !killed.load(Ordering::SeqCst) {
            // SIGKILL: no shutdown, in-flight sends and leases are abandoned. Reaped on a
            // blocking thread: `wait` would hold up a runtime worker (and the sends on it).
            let mut third = instances.pop().expect("three instances");
            third.child.kill().unwrap();
            tokio::task::spawn_blocking(move || third.child.wait())
                .await
                .unwrap()
                .unwrap();
            killed.store(true, Ordering::SeqCst);
        }
    }
    let mut message_ids = Vec::new();
    while let Some(r) = tasks.join_next().await {
        if let Some(id) = r.unwrap() {
            message_ids.push(id);
        }
    }
    // Sends answered "Pending" by the dying instance may be in the database without the
    // test knowing: count what the database holds.
    let pool = sqlx::PgPool::connect(&database_url).await.unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(stored as usize >= message_ids.len());
    assert!(
        message_ids.len() >= MESSAGES * 9 / 10,
        "most sends accepted: {}",
        message_ids.len()
    );

    assert!(
        fake.wait_for_sent(stored as usize, Duration::from_secs(120))
            .await,
        "every stored message reaches the Graph API: {} of {stored}",
        fake.sent().len()
    );
    assert!(fake.wait_webhooks_idle(Duration::from_secs(30)).await);

    // Exactly once: no message id twice at the fake, and every accepted one there.
    let sent = fake.sent();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for m in &sent {
        *seen
            .entry(m.biz_opaque_callback_data.clone().unwrap())
            .or_default() += 1;
    }
    let duplicates: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicates.is_empty(), "sent twice: {duplicates:?}");
    for id in &message_ids {
        assert_eq!(seen.get(id), Some(&1), "{id} sent once");
    }
    assert_eq!(sent.len() as i64, stored);

    // Every message in the database reached sent (or beyond) after the webhooks. A failure
    // names each one with what would say why: its wamid, attempts, whether its job is still
    // there (and leased) and how many of its statuses were kept as early.
    // (id, status, wamid, attempts, job lease, kept statuses)
    type Unsent = (String, String, Option<String>, i64, Option<i64>, i64);
    let unsent: Vec<Unsent> = sqlx::query_as(
        "SELECT m.id, m.status, m.provider_message_id, m.attempts::BIGINT, j.lease_until,
            (SELECT count(*) FROM pending_statuses p
             WHERE p.message_id = m.id OR p.provider_message_id = m.provider_message_id)
         FROM messages m LEFT JOIN delivery_jobs j ON j.message_id = m.id
         WHERE m.status NOT IN ('sent', 'delivered', 'read')",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(
        unsent.is_empty(),
        "not sent after the webhooks (id, status, wamid, attempts, job lease, kept statuses): \
         {unsent:?}"
    );

    // No channel over its rate plus its burst in any one-second window.
    let burst = RATE / 10;
    let mut report = Vec::new();
    for c in 0..CHANNELS {
        let max = fake.max_per_second(&format!("20000{c}"));
        report.push(max);
        assert!(
            max <= RATE + burst,
            "phone {c}: {max} in one second (limit {RATE} + {burst})"
        );
    }
    eprintln!(
        "three instances: {} accepted, {stored} stored, {} sent, max per second by channel {report:?}",
        message_ids.len(),
        sent.len()
    );

    drop(instances);
    pool.close().await;
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .execute(&admin_pool)
        .await;
}
