// Structured logs of the real binary: JSON lines, and every line a request causes carries its
// request id (the incoming `X-Request-Id` when sane, else a generated one, returned either
// way).

use crate::common;

use std::time::{Duration, Instant};

use common::serve::ServeProcess;
use common::*;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const APP_SECRET: &str = "logging-app-secret-value";

fn sign(body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(APP_SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The JSON log records whose current span carries `request_id`, waiting (bounded) until
/// `want` of them have arrived.
async fn lines_of(server: &ServeProcess, request_id: &str, want: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let lines: Vec<Value> = server
            .log_records()
            .into_iter()
            .filter(|r| r["span"]["request_id"] == request_id)
            .collect();
        if lines.len() >= want || started.elapsed() > Duration::from_secs(10) {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

both_databases!(every_line_a_request_causes_carries_its_request_id);
async fn every_line_a_request_causes_carries_its_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database(dir.path()).await;
    let server = ServeProcess::start(&[
        ("DATABASE_URL", db.url.clone()),
        ("PLANTILLA_ADMIN_TOKEN", ADMIN_TOKEN.to_string()),
        ("PLANTILLA_META_APP_SECRET", APP_SECRET.to_string()),
        ("PLANTILLA_TEMPLATE_SYNC_INTERVAL_SECS", "0".to_string()),
    ]);
    // Every line is one JSON object.
    let logs = server.logs();
    assert!(!logs.is_empty());
    for line in &logs {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
    }

    // A channel whose webhooks arrive at the shared endpoint.
    let client = reqwest::Client::new();
    let admin = |path: &str, body: Value| {
        client
            .post(format!("{}{path}", server.base))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
    };
    let account: Value = admin(
        "/v1/admin/accounts",
        json!({"name": "Logs", "conversationLimit": 10}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let r = admin(
        "/v1/admin/channels",
        json!({"accountId": account["id"], "name": "Main", "provider": "sandbox",
               "phoneNumberId": "PN-LOG"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);

    // A signed status for a message nobody knows: the status service warns about it, inside
    // the request.
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{
        "field": "messages", "value": {"metadata": {"phone_number_id": "PN-LOG"},
        "statuses": [{"id": "wamid.unknown", "status": "sent", "timestamp": "1700000000"}]}}]}]})
    .to_string();
    let r = client
        .post(format!("{}/webhooks/whatsapp", server.base))
        .header("X-Request-Id", "trace-me-123")
        .header("X-Hub-Signature-256", sign(&body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    assert_eq!(r.headers()["x-request-id"], "trace-me-123");
    let lines = lines_of(&server, "trace-me-123", 2).await;
    assert!(
        lines.iter().any(
            |l| l["fields"]["message"] == "status for an unknown message" && l["level"] == "WARN"
        ),
        "the handler's own line carries the id: {lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "request answered"
                && l["fields"]["status"] == 200
                && l["span"]["route"] == "/webhooks/whatsapp"),
        "{lines:?}"
    );
    // Lines of other requests do not carry it.
    let all = server.log_records();
    let tagged = all
        .iter()
        .filter(|l| l.to_string().contains("trace-me-123"))
        .count();
    assert_eq!(tagged, lines.len());

    // An insane incoming id is replaced, and never logged.
    let r = client
        .get(format!("{}/healthz", server.base))
        .header("X-Request-Id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let generated = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(generated.starts_with("req_"), "{generated}");
    let r = client
        .get(format!(
            "{}/v1/admin/accounts/{}",
            server.base,
            account["id"].as_str().unwrap()
        ))
        .bearer_auth(ADMIN_TOKEN)
        .header("X-Request-Id", "second.request")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "second.request");
    let lines = lines_of(&server, "second.request", 1).await;
    assert!(!lines.is_empty());
    let logs = server.logs().join("\n");
    assert!(!logs.contains("bad id with spaces"));
    // Neither the admin token nor the app secret is ever logged.
    assert!(!logs.contains(ADMIN_TOKEN) && !logs.contains(APP_SECRET));
}
