// Graceful shutdown of the real `plantilla serve` binary: SIGTERM under a steady load of sends
// to a cloud channel whose provider calls take 300 ms (so some are always in flight).
// Nothing that got a 200 is lost, sends in flight finish and record their outcome, nothing is
// sent twice, and after a restart everything accepted reaches the fake Graph API exactly once.

use crate::common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::serve::ServeProcess;
use common::*;
use fake_graph::{Action, DEFAULT_WABA_ID, FakeGraph, FakeGraphConfig, FakeTemplate, Rule};
use serde_json::{Value, json};

const PN: &str = "1000005";
const ACCESS_TOKEN: &str = "EAAG-sigterm-access-token";
const PROVIDER_DELAY: Duration = Duration::from_millis(300);
const SHUTDOWN_TIMEOUT_MS: u64 = 10_000;

async fn fake_graph() -> FakeGraph {
    FakeGraph::start(
        FakeGraphConfig {
            status_delay: Duration::ZERO,
            ..FakeGraphConfig::default()
        }
        .with_phone(PN, ACCESS_TOKEN)
        .with_template(FakeTemplate::new(
            "order_update",
            "es",
            "Hola {{name}}, tu pedido {{order}} va en camino",
        )),
    )
    .await
}

fn env(
    db: &FreshDatabase,
    fake: &FakeGraph,
    shutdown_timeout_ms: u64,
) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", db.url.clone()),
        ("PLANTILLA_ADMIN_TOKEN", ADMIN_TOKEN.to_string()),
        ("PLANTILLA_GRAPH_BASE_URL", fake.base_url().to_string()),
        ("PLANTILLA_GRAPH_TIMEOUT_MS", "60000".to_string()),
        (
            "PLANTILLA_SHUTDOWN_TIMEOUT_MS",
            shutdown_timeout_ms.to_string(),
        ),
        ("PLANTILLA_TEMPLATE_SYNC_INTERVAL_SECS", "0".to_string()),
        ("PLANTILLA_SQLITE_SYNCHRONOUS", "normal".to_string()),
        ("PLANTILLA_DATABASE_MAX_CONNECTIONS", "8".to_string()),
        ("PLANTILLA_TOKEN_RATE_PER_SEC", "0".to_string()),
    ]
}

async fn admin_create(client: &reqwest::Client, base: &str, path: &str, body: Value) -> Value {
    let r = client
        .post(format!("{base}{path}"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    r.json().await.unwrap()
}

/// An account, a cloud channel on the fake at `rate` messages/s and a template; returns
/// (public token, template id).
async fn set_up(client: &reqwest::Client, base: &str, rate: u32) -> (String, String) {
    let account = admin_create(
        client,
        base,
        "/v1/admin/accounts",
        json!({"name": "Load", "conversationLimit": 100000}),
    )
    .await;
    let channel = admin_create(
        client,
        base,
        "/v1/admin/channels",
        json!({"accountId": account["id"], "name": "Main", "provider": "cloud",
               "phoneNumberId": PN, "wabaId": DEFAULT_WABA_ID, "accessToken": ACCESS_TOKEN,
               "messagesPerSecond": rate}),
    )
    .await;
    admin_create(
        client,
        base,
        "/v1/admin/groups",
        json!({"accountId": account["id"], "name": "Ventas", "channelIds": [channel["id"]]}),
    )
    .await;
    let template = admin_create(
        client,
        base,
        "/v1/admin/templates",
        json!({"accountId": account["id"], "name": "order_update", "language": "es",
               "appId": "1001", "message": "Hola {{name}}, tu pedido {{order}} va en camino"}),
    )
    .await;
    (s(&channel["publicToken"]), s(&template["id"]))
}

fn send_body_for(template_id: &str, n: usize) -> Value {
    json!({"templateId": template_id, "phoneNumber": format!("50761{n:06}"),
           "params": {"name": "Ana", "order": format!("A-{n}")}})
}

/// Polls `done` every 20 ms for at most `timeout`.
async fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while !done() {
        if started.elapsed() > timeout {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

both_databases!(
    sigterm_under_load_loses_nothing_and_sends_nothing_twice,
    flavor = "multi_thread",
    worker_threads = 2
);
async fn sigterm_under_load_loses_nothing_and_sends_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database(dir.path()).await;
    // No webhook URL: a stored provider id can only come from the dispatcher recording the
    // send's answer.
    let fake = fake_graph().await;
    fake.add_rule(Rule::always(Action::DelayResponse(PROVIDER_DELAY)));
    let mut server = ServeProcess::start(&env(&db, &fake, SHUTDOWN_TIMEOUT_MS));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let (token, template_id) = set_up(&client, &server.base, 200).await;

    // The load: three clients, each a send every 20 ms to a new number, until refused.
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicUsize::new(0));
    let mut clients = vec![];
    for _ in 0..3 {
        let (client, base, token, template_id) = (
            client.clone(),
            server.base.clone(),
            token.clone(),
            template_id.clone(),
        );
        let (stop, next) = (stop.clone(), next.clone());
        clients.push(tokio::spawn(async move {
            let mut accepted = vec![];
            let mut refused = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let n = next.fetch_add(1, Ordering::SeqCst);
                let sent = client
                    .post(format!("{base}/api/Template/SendMessage"))
                    .bearer_auth(&token)
                    .json(&send_body_for(&template_id, n))
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == reqwest::StatusCode::OK => {
                        let v: Value = r.json().await.unwrap();
                        accepted.push(s(&v["data"]["message_id"]));
                    }
                    Ok(r) => panic!("a send answered {}: {:?}", r.status(), r.text().await),
                    // Refused once the server stops accepting.
                    Err(_) => {
                        refused += 1;
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (accepted, refused)
        }));
    }

    // Under way: sends accepted and provider calls made, some in flight.
    assert!(
        wait_until(Duration::from_secs(30), || fake.requests().len() >= 150).await,
        "the load reaches the fake"
    );
    let killed = Instant::now();
    server.sigterm();
    let status = server
        .wait_exit(Duration::from_millis(SHUTDOWN_TIMEOUT_MS + 5_000))
        .expect("the process exits after SIGTERM");
    let took = killed.elapsed();
    assert!(status.success(), "exit status {status}");
    assert!(
        took < Duration::from_millis(SHUTDOWN_TIMEOUT_MS),
        "exited within the shutdown timeout: {took:?}"
    );
    stop.store(true, Ordering::SeqCst);
    let mut accepted = vec![];
    for c in clients {
        let (ids, _) = c.await.unwrap();
        accepted.extend(ids);
    }
    let logs = server.logs();
    assert!(logs.iter().any(|l| l.contains("shutting down")), "{logs:?}");

    // Every 200 is stored; every call the fake took has its answer (the provider id)
    // recorded, the ones in flight at SIGTERM included; nothing reached the fake twice.
    let rows: HashMap<String, Option<String>> =
        query_text_pairs(&db.url, "SELECT id, provider_message_id FROM messages")
            .await
            .into_iter()
            .collect();
    for id in &accepted {
        assert!(rows.contains_key(id), "accepted {id} is stored");
    }
    let sent = fake.sent();
    let mut seen = HashSet::new();
    let mut in_flight_at_sigterm = 0;
    for m in &sent {
        let id = m.biz_opaque_callback_data.clone().expect("callback data");
        assert!(seen.insert(id.clone()), "{id} sent twice");
        assert_eq!(
            rows.get(&id).cloned().flatten().as_deref(),
            Some(m.wamid.as_str()),
            "the outcome of the send of {id} is recorded"
        );
        if m.received < killed && m.received + PROVIDER_DELAY > killed {
            in_flight_at_sigterm += 1;
        }
    }
    assert!(
        in_flight_at_sigterm > 0,
        "some provider calls were in flight at SIGTERM"
    );
    let before_restart = sent.len();
    eprintln!(
        "sigterm: {} sends accepted, {before_restart} sent before the stop \
         ({in_flight_at_sigterm} in flight at SIGTERM), shutdown took {took:?}",
        accepted.len()
    );

    // After a restart, everything stored reaches the fake exactly once.
    let mut server = ServeProcess::start(&env(&db, &fake, SHUTDOWN_TIMEOUT_MS));
    let stored = rows.len();
    assert!(
        wait_until(Duration::from_secs(60), || fake.sent().len() >= stored).await,
        "{} of {stored} sent after the restart",
        fake.sent().len()
    );
    let ids: Vec<String> = fake
        .sent()
        .iter()
        .map(|m| m.biz_opaque_callback_data.clone().unwrap())
        .collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "nothing sent twice");
    assert_eq!(
        unique,
        rows.keys().collect::<HashSet<_>>(),
        "exactly the stored messages were sent"
    );
    for id in &accepted {
        assert!(unique.contains(id), "accepted {id} was sent");
    }
    server.sigterm();
    let status = server
        .wait_exit(Duration::from_millis(SHUTDOWN_TIMEOUT_MS + 5_000))
        .expect("exits");
    assert!(
        status.success(),
        "exited with {status} after SIGTERM; its log:\n{}",
        server.logs().join("\n")
    );
    assert_eq!(fake.sent().len(), ids.len(), "nothing more after the stop");
}

both_databases!(
    the_shutdown_timeout_bounds_a_stuck_provider_call,
    flavor = "multi_thread",
    worker_threads = 2
);
async fn the_shutdown_timeout_bounds_a_stuck_provider_call() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database(dir.path()).await;
    let fake = fake_graph().await;
    // A provider call that outlasts the shutdown timeout.
    fake.add_rule(Rule::always(Action::DelayResponse(Duration::from_secs(30))));
    let mut server = ServeProcess::start(&env(&db, &fake, 1_000));
    let client = reqwest::Client::new();
    let (token, template_id) = set_up(&client, &server.base, 80).await;
    let r = client
        .post(format!("{}/api/Template/SendMessage", server.base))
        .bearer_auth(&token)
        .json(&send_body_for(&template_id, 1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    assert!(wait_until(Duration::from_secs(30), || fake.requests().len() == 1).await);

    let killed = Instant::now();
    server.sigterm();
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("the process exits after SIGTERM");
    let took = killed.elapsed();
    assert!(status.success(), "exit status {status}");
    assert!(
        took >= Duration::from_millis(1_000) && took < Duration::from_secs(5),
        "exited at the 1 s deadline: {took:?}"
    );
    assert!(
        server
            .logs()
            .iter()
            .any(|l| l.contains("shutdown deadline passed")),
        "the forced exit is logged"
    );
}
