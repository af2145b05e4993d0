// PostgreSQL drops every connection of plantilla's pool, three times, during a load of
// sends: requests fail cleanly meanwhile, and every send that got a success answer is
// delivered, once.

use crate::common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use fake_graph::{FakeGraph, FakeGraphConfig};
use serde_json::json;

const SECRET: &str = "connection-loss-secret";

postgres_only!(
    accepted_sends_survive_dropped_database_connections,
    flavor = "multi_thread",
    worker_threads = 4
);
async fn accepted_sends_survive_dropped_database_connections() {
    let fake = FakeGraph::start(
        FakeGraphConfig {
            app_secret: SECRET.into(),
            accept_unknown_templates: true,
            ..FakeGraphConfig::default()
        }
        .with_phone("1000001", "TOKEN1"),
    )
    .await;
    let graph = fake.base_url().to_string();
    let t = spawn_app_dispatching_with(|c| {
        c.graph_base_url = graph;
        c.meta_app_secret = Some(plantilla::config::Secret::new(SECRET));
    })
    .await;
    if !t.config.database_url.starts_with("postgres") {
        eprintln!("notice: not on PostgreSQL; nothing to drop");
        return;
    }
    fake.set_webhook_url(Some(format!("{}/webhooks/whatsapp", t.base)));
    let account = t
        .create(
            "/v1/admin/accounts",
            json!({"name": "Acme", "conversationLimit": 100_000}),
        )
        .await;
    let channel = t
        .create(
            "/v1/admin/channels",
            json!({"accountId": account["id"], "name": "Main", "provider": "cloud",
                   "phoneNumberId": "1000001", "accessToken": "TOKEN1", "messagesPerSecond": 1000}),
        )
        .await;
    let template = t
        .create(
            "/v1/admin/templates",
            json!({"accountId": account["id"], "name": "order_update", "language": "es",
                   "appId": "1", "message": "Hola {{name}}"}),
        )
        .await;
    let token = s(&channel["publicToken"]);
    let template_id = s(&template["id"]);

    // The fault: terminate every backend of the test database, three times during the load.
    let url = t.config.database_url.clone();
    let killer = tokio::spawn(async move {
        let mut terminated = 0;
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            let n: i64 = sqlx::query_scalar(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            terminated += n;
            pool.close().await;
        }
        terminated
    });

    let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(16));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..800 {
        let permit = semaphore.clone().acquire_owned().await.unwrap();
        let (client, base, token, template_id) = (
            t.client.clone(),
            t.base.clone(),
            token.clone(),
            template_id.clone(),
        );
        tasks.spawn(async move {
            let _permit = permit;
            let r = client
                .post(format!("{base}/api/Template/SendMessage"))
                .bearer_auth(token)
                .json(
                    &json!({"templateId": template_id, "phoneNumber": format!("5075{i:07}"),
                              "params": {"name": "Ana"}}),
                )
                .send()
                .await
                .unwrap();
            let status = r.status();
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            (status, body)
        });
    }
    let (mut accepted, mut failed) = (Vec::new(), 0);
    while let Some(r) = tasks.join_next().await {
        let (status, body) = r.unwrap();
        if status == 200 {
            accepted.push(s(&body["data"]["message_id"]));
        } else {
            assert_eq!(
                status, 500,
                "a failure during the outage is a clean 500: {body}"
            );
            assert_eq!(body["type"], "Internal Server Error");
            failed += 1;
        }
    }
    let terminated = killer.await.unwrap();
    assert!(terminated > 0, "the fault happened");

    let stored = t.sql_i64("SELECT count(*) FROM messages").await as usize;
    assert!(stored >= accepted.len());
    assert!(
        fake.wait_for_sent(stored, Duration::from_secs(60)).await,
        "every stored message delivered: {} of {stored}",
        fake.sent().len()
    );
    let mut seen: HashMap<String, usize> = HashMap::new();
    for m in fake.sent() {
        *seen.entry(m.biz_opaque_callback_data.unwrap()).or_default() += 1;
    }
    for id in &accepted {
        assert_eq!(seen.get(id), Some(&1), "{id} delivered exactly once");
    }
    eprintln!(
        "connection loss: {terminated} connections terminated, {} accepted, {failed} failed cleanly, {} delivered",
        accepted.len(),
        seen.len()
    );
}
