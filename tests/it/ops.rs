// Operations and hardening over real HTTP: /healthz, /readyz, /metrics, request ids, the body
// size and JSON depth limits, request timeouts and the per-token rate limit.

use crate::common;

use std::time::{Duration, Instant};

use common::*;
use fake_graph::{Action, DEFAULT_WABA_ID, FakeGraph, FakeGraphConfig, FakeTemplate, Rule};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get(t: &TestApp, path: &str) -> reqwest::Response {
    t.client
        .get(format!("{}{path}", t.base))
        .send()
        .await
        .expect("request")
}

async fn metrics(t: &TestApp) -> String {
    let r = get(t, "/metrics").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    r.text().await.unwrap()
}

/// The value of one sample line (`name{labels} value`), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// A request written by hand on a TCP connection (for bodies reqwest will not send: chunked
/// without a length, or one that never arrives); the answer's status and body.
async fn raw(t: &TestApp, request: &str, then_wait: bool) -> (u16, String) {
    let addr = t.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    if !then_wait {
        stream.shutdown().await.ok();
    }
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("an answer within 10 s")
            .unwrap();
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&answer);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            });
            if length.is_some_and(|n| body.len() >= n) {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string());
    (status, body.unwrap_or_default())
}

both_databases!(healthz_answers_while_the_process_runs);
async fn healthz_answers_while_the_process_runs() {
    let t = spawn_app().await;
    for path in ["/healthz", "/HealthZ"] {
        let r = get(&t, path).await;
        assert_eq!(r.status(), StatusCode::OK);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v, json!({"status": "ok"}));
    }
}

both_databases!(readyz_needs_the_database_migrations_and_the_dispatcher);
async fn readyz_needs_the_database_migrations_and_the_dispatcher() {
    let t = spawn_app_dispatching().await;
    let r = get(&t, "/readyz").await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "ready", "{v}");
    assert_eq!(
        v["checks"],
        json!({"database": "ok", "migrations": "ok", "dispatcher": "ok"})
    );

    // A database whose schema is behind this binary is not ready.
    let latest = t
        .sql_i64("SELECT MAX(version) FROM schema_migrations")
        .await;
    t.sql(&format!(
        "DELETE FROM schema_migrations WHERE version = {latest}"
    ))
    .await;
    let r = get(&t, "/readyz").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["checks"]["migrations"], "not applied", "{v}");
    assert_eq!(v["notReady"], json!(["migrations"]));

    // Without a running dispatcher, not ready either (tests drive it by hand).
    let t = spawn_app().await;
    let r = get(&t, "/readyz").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "not ready");
    assert_eq!(v["checks"]["database"], "ok");
    assert_eq!(v["notReady"], json!(["dispatcher"]));
}

both_databases!(request_ids_are_kept_when_sane_and_made_otherwise);
async fn request_ids_are_kept_when_sane_and_made_otherwise() {
    let t = spawn_app().await;
    let id_of = |r: &reqwest::Response| {
        r.headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_string())
    };
    let r = t
        .client
        .get(format!("{}/healthz", t.base))
        .header("X-Request-Id", "abc-123_DEF.4")
        .send()
        .await
        .unwrap();
    assert_eq!(id_of(&r).as_deref(), Some("abc-123_DEF.4"));
    for insane in ["a b", "a\"b", &"x".repeat(65), "<script>"] {
        let r = t
            .client
            .get(format!("{}/healthz", t.base))
            .header("X-Request-Id", insane)
            .send()
            .await
            .unwrap();
        let id = id_of(&r).unwrap();
        assert!(id.starts_with("req_") && id != insane, "{insane} → {id}");
    }
    // Every response has one, unknown paths and errors included, each its own.
    let a = id_of(&get(&t, "/nowhere").await).unwrap();
    let b = id_of(&get(&t, "/api/Template").await).unwrap();
    assert!(a.starts_with("req_") && b.starts_with("req_") && a != b);
}

both_databases!(metrics_count_requests_by_route_template_and_read_the_store);
async fn metrics_count_requests_by_route_template_and_read_the_store() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let phones = ["50755660001", "50755660002", "50755660003"];
    let mut ids = vec![];
    for phone in phones {
        let r = t.send_old(&seed.token, send_body(&seed, phone)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        ids.push(s(&r.json["data"]["message_id"]));
    }
    // Refused sends count by their result.
    let r = t
        .send_new(
            &seed.token,
            json!({"templateId": "tpl_nope", "phoneNumber": "50755660009"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    t.message(&ids[0]).await;
    t.call("GET", "/templates/tpl_nope", Some(&seed.token), None)
        .await;
    get(&t, "/no/such/path/msg_secret123").await;

    // Queued, not yet dispatched.
    let text = metrics(&t).await;
    let route = |route: &str, method: &str, status: u16| {
        sample(
            &text,
            &format!(
                "plantilla_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}}"
            ),
        )
    };
    assert_eq!(route("/api/template/sendmessage", "POST", 200), Some(3.0));
    assert_eq!(route("/templates", "POST", 404), Some(1.0));
    assert_eq!(route("/v1/admin/messages/{id}", "GET", 200), Some(1.0));
    assert_eq!(route("/templates/{id}", "GET", 404), Some(1.0));
    assert_eq!(route("unmatched", "GET", 404), Some(1.0));
    assert_eq!(
        sample(&text, "plantilla_sends_total{result=\"pending\"}"),
        Some(3.0)
    );
    assert_eq!(
        sample(&text, "plantilla_sends_total{result=\"rejected\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "plantilla_send_accept_duration_seconds_count"),
        Some(4.0)
    );
    let channel = &seed.channel_id;
    assert_eq!(
        sample(
            &text,
            &format!("plantilla_queue_depth{{channel=\"{channel}\"}}")
        ),
        Some(3.0),
        "{text}"
    );
    let age = sample(
        &text,
        &format!("plantilla_queue_oldest_age_seconds{{channel=\"{channel}\"}}"),
    )
    .unwrap();
    assert!((0.0..60.0).contains(&age), "{age}");
    assert_eq!(
        sample(&text, "plantilla_messages{status=\"queued\"}"),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!("plantilla_channel_halted{{channel=\"{channel}\"}}")
        ),
        Some(0.0)
    );
    assert_eq!(sample(&text, "plantilla_database_up"), Some(1.0));
    assert_eq!(
        sample(
            &text,
            "plantilla_callback_deliveries_total{result=\"delivered\"}"
        ),
        Some(0.0)
    );

    // Dispatched: the queue is empty, the messages are read (the sandbox reports at once).
    t.drain().await;
    let text = metrics(&t).await;
    assert_eq!(
        sample(
            &text,
            &format!("plantilla_queue_depth{{channel=\"{channel}\"}}")
        ),
        None,
        "{text}"
    );
    assert_eq!(
        sample(&text, "plantilla_messages{status=\"read\"}"),
        Some(3.0),
        "{text}"
    );

    // Never a raw path with ids, a token or a phone number.
    assert!(!text.contains("msg_"), "{text}");
    assert!(!text.contains("tpl_nope"), "{text}");
    assert!(!text.contains(&seed.token));
    assert!(!text.contains(ADMIN_TOKEN));
    for phone in phones {
        assert!(!text.contains(phone), "{phone} in metrics");
    }
}

const PN: &str = "1000002";
const ACCESS_TOKEN: &str = "EAAG-ops-access-token";
const APP_SECRET: &str = "ops-app-secret-value";

both_databases!(provider_errors_channel_health_and_webhook_lag_are_measured);
async fn provider_errors_channel_health_and_webhook_lag_are_measured() {
    let fake = FakeGraph::start(
        FakeGraphConfig {
            app_secret: APP_SECRET.into(),
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
    .await;
    let base = fake.base_url().to_string();
    let t = spawn_app_with(|c| {
        c.graph_base_url = base;
        c.meta_app_secret = Some(plantilla::config::Secret::new(APP_SECRET));
    })
    .await;
    fake.set_webhook_url(Some(format!("{}/webhooks/whatsapp", t.base)));
    let account = t
        .create(
            "/v1/admin/accounts",
            json!({"name": "Ops", "conversationLimit": 100}),
        )
        .await;
    let channel = t
        .create(
            "/v1/admin/channels",
            json!({"accountId": account["id"], "name": "Main", "provider": "cloud",
                   "phoneNumberId": PN, "wabaId": DEFAULT_WABA_ID, "accessToken": ACCESS_TOKEN,
                   "appSecret": "channel-app-secret", "messagesPerSecond": 1000}),
        )
        .await;
    let template = t
        .create(
            "/v1/admin/templates",
            json!({"accountId": account["id"], "name": "order_update", "language": "es",
                   "appId": "1001", "message": "Hola {{name}}, tu pedido {{order}} va en camino"}),
        )
        .await;
    let token = s(&channel["publicToken"]);
    let send = |phone: &'static str| {
        let body = json!({"templateId": template["id"], "phoneNumber": phone,
                          "params": {"name": "Ana", "order": "A-1"}});
        let t = &t;
        let token = token.clone();
        async move {
            let r = t.send_old(&token, body).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        }
    };

    // A permanent error, then a success whose statuses come back by webhook.
    fake.add_rule(Rule::once(Action::error(131026)));
    send("50755661001").await;
    send("50755661002").await;
    t.drain().await;
    assert!(fake.wait_webhooks_idle(Duration::from_secs(10)).await);
    let text = metrics(&t).await;
    assert_eq!(
        sample(&text, "plantilla_provider_errors_total{code=\"131026\"}"),
        Some(1.0),
        "{text}"
    );
    let lagged = sample(&text, "plantilla_webhook_lag_seconds_count").unwrap();
    assert!(lagged >= 1.0, "statuses applied from webhooks: {text}");
    assert_eq!(
        sample(&text, "plantilla_messages{status=\"failed\"}"),
        Some(1.0)
    );

    // An expired token halts the channel.
    fake.add_rule(Rule::always(Action::expired_token()));
    send("50755661003").await;
    t.drain().await;
    let text = metrics(&t).await;
    let id = s(&channel["id"]);
    assert_eq!(
        sample(
            &text,
            &format!("plantilla_channel_halted{{channel=\"{id}\"}}")
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "plantilla_provider_errors_total{code=\"190\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, &format!("plantilla_queue_depth{{channel=\"{id}\"}}")),
        Some(1.0)
    );
    for secret in [
        ACCESS_TOKEN,
        APP_SECRET,
        "channel-app-secret",
        token.as_str(),
    ] {
        assert!(!text.contains(secret), "a secret in the metrics");
    }
    assert!(
        !text.contains("5075566100"),
        "a phone number in the metrics"
    );
}

both_databases!(metrics_can_require_a_token);
async fn metrics_can_require_a_token() {
    let t = spawn_app_with(|c| {
        c.metrics_token = Some(plantilla::config::Secret::new("metrics-token-0123456789"));
    })
    .await;
    assert_eq!(get(&t, "/metrics").await.status(), StatusCode::UNAUTHORIZED);
    let r = t
        .client
        .get(format!("{}/metrics", t.base))
        .bearer_auth("metrics-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Health and readiness stay open for probes.
    assert_eq!(get(&t, "/healthz").await.status(), StatusCode::OK);
}

both_databases!(bodies_over_the_limit_get_413_in_each_api_shape);
async fn bodies_over_the_limit_get_413_in_each_api_shape() {
    let t = spawn_app_with(|c| {
        c.max_body_bytes = 1024;
        c.max_batch_body_bytes = 4096;
    })
    .await;
    let seed = t.seed().await;
    let mut big = send_body(&seed, "50755667788");
    big["clientName"] = json!("x".repeat(2000));
    let big = big.to_string();

    let old = t
        .call(
            "POST",
            "/api/Template/SendMessage",
            Some(&seed.token),
            Some(&big),
        )
        .await;
    assert_eq!(old.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(old.content_type, "application/json; charset=utf-8");
    assert_eq!(old.json["success"], false);
    assert_eq!(old.json["message"], "No hay datos para enviar");
    assert!(
        old.json["detail"].as_str().unwrap().contains("1024 bytes"),
        "{}",
        old.text
    );

    let new = t
        .call("POST", "/templates", Some(&seed.token), Some(&big))
        .await;
    assert_eq!(new.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(new.json["code"], 413);
    assert_eq!(new.json["body"]["type"], "Payload Too Large");
    assert_eq!(new.json["body"]["path"], json!(["body"]));

    let r = t
        .client
        .post(format!("{}/v1/admin/accounts", t.base))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(json!({"name": "x".repeat(2000)}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], 413);

    let r = t
        .client
        .post(format!("{}/webhooks/whatsapp", t.base))
        .body("x".repeat(2000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Without a Content-Length (chunked), the limit holds while reading.
    let chunk = "y".repeat(800);
    let request = format!(
        "POST /templates HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         {len:x}\r\n{chunk}\r\n{len:x}\r\n{chunk}\r\n0\r\n\r\n",
        seed.token,
        len = chunk.len(),
    );
    let (status, body) = raw(&t, &request, true).await;
    assert_eq!(status, 413, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["code"], 413);

    // Nothing was stored.
    assert_eq!(t.sql_i64("SELECT COUNT(*) FROM messages").await, 0);

    // Bulk sends have their own, larger limit.
    let batch = |n: usize| {
        let recipients: Vec<Value> = (0..n)
            .map(|i| json!({"to": format!("507556{i:05}"), "params": {"name": "Ana", "order": "A-1"}}))
            .collect();
        json!({"templateId": seed.template_id, "recipients": recipients}).to_string()
    };
    let post_batch = |body: String| {
        t.client
            .post(format!("{}/v1/messages/batch", t.base))
            .bearer_auth(&seed.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let body = batch(30);
    assert!(body.len() > 1024 && body.len() < 4096, "{}", body.len());
    let r = post_batch(body).await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let body = batch(80);
    assert!(body.len() > 4096);
    let r = post_batch(body).await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "/problems/payload-too-large", "{v}");
    assert_eq!(t.sql_i64("SELECT COUNT(*) FROM messages").await, 30);

    // A body within the limit still works.
    let ok = t
        .send_old(&seed.token, send_body(&seed, "50755667788"))
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
}

fn deep(levels: usize) -> String {
    format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
}

both_databases!(deeply_nested_json_is_refused_before_parsing);
async fn deeply_nested_json_is_refused_before_parsing() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let body = format!(
        r#"{{"templateId":"{}","phoneNumber":"50755667788","params":{{"name":"Ana","order":"A-1"}},"extra":{}}}"#,
        seed.template_id,
        deep(40)
    );
    let old = t
        .call(
            "POST",
            "/api/Template/SendMessage",
            Some(&seed.token),
            Some(&body),
        )
        .await;
    assert_eq!(old.status, StatusCode::BAD_REQUEST);
    assert_eq!(old.json["message"], "No hay datos para enviar");
    assert!(
        old.json["detail"].as_str().unwrap().contains("32 levels"),
        "{}",
        old.text
    );
    let new = t
        .call("POST", "/templates", Some(&seed.token), Some(&body))
        .await;
    assert_eq!(new.status, StatusCode::BAD_REQUEST);
    assert_eq!(new.json["code"], 400);
    assert!(
        new.json["body"]["message"]
            .as_str()
            .unwrap()
            .contains("32 levels"),
        "{}",
        new.text
    );
    // The contract's order holds: without a token, 401 first.
    let anonymous = t
        .call("POST", "/api/Template/SendMessage", None, Some(&body))
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    // Brackets inside strings do not count.
    let mut fine = send_body(&seed, "50755667788");
    fine["clientName"] = json!("[".repeat(100));
    let r = t.send_old(&seed.token, fine).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let r = t
        .client
        .post(format!("{}/v1/admin/accounts", t.base))
        .bearer_auth(ADMIN_TOKEN)
        .header("Content-Type", "application/json")
        .body(format!(r#"{{"name":"A","x":{}}}"#, deep(40)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errors"][0]["field"], "body", "{v}");
    // The native API too.
    let r = t
        .client
        .post(format!("{}/v1/messages", t.base))
        .bearer_auth(&seed.token)
        .header("Content-Type", "application/json")
        .body(format!(
            r#"{{"templateId":"{}","to":"50755667799","metadata":{{"x":{}}}}}"#,
            seed.template_id,
            deep(40)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errors"][0]["field"], "body", "{v}");
    assert!(v["detail"].as_str().unwrap().contains("32 levels"), "{v}");
    assert_eq!(t.sql_i64("SELECT COUNT(*) FROM messages").await, 1);
}

/// Holds the database so that an accepting send waits on it: SQLite's write lock, or on
/// PostgreSQL an exclusive lock on `accounts` (which the send reads). Released on drop of the
/// returned guard's connection.
async fn hold_database(t: &TestApp) -> Box<dyn std::any::Any + Send> {
    use sqlx::Connection;
    let url = &t.config.database_url;
    if url.starts_with("postgres") {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
        sqlx::query("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE")
            .execute(&mut conn)
            .await
            .unwrap();
        Box::new(conn)
    } else {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut conn)
            .await
            .unwrap();
        Box::new(conn)
    }
}

both_databases!(slow_requests_time_out_with_a_json_answer);
async fn slow_requests_time_out_with_a_json_answer() {
    let t = spawn_app_with(|c| c.request_timeout_ms = 400).await;
    let seed = t.seed().await;

    // A handler stuck on the database: 503 in the family's shape, and nothing stored.
    let lock = hold_database(&t).await;
    let started = Instant::now();
    let r = t
        .send_new(&seed.token, send_body(&seed, "50755667788"))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(r.json["code"], 503);
    assert!(
        r.json["body"]["message"]
            .as_str()
            .unwrap()
            .contains("400 ms"),
        "{}",
        r.text
    );
    let old = t
        .send_old(&seed.token, send_body(&seed, "50755667788"))
        .await;
    assert_eq!(old.status, StatusCode::SERVICE_UNAVAILABLE, "{}", old.text);
    assert_eq!(old.json["type"], "Service Unavailable", "{}", old.text);
    drop(lock);
    assert_eq!(t.sql_i64("SELECT COUNT(*) FROM messages").await, 0);

    // A body that never arrives: 408.
    let request = format!(
        "POST /api/Template/SendMessage HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"templateId\"",
        seed.token
    );
    let (status, body) = raw(&t, &request, true).await;
    assert_eq!(status, 408, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["type"], "Request Timeout", "{v}");

    // Afterwards, sends work again.
    let r = t
        .send_old(&seed.token, send_body(&seed, "50755667788"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

both_databases!(a_bulk_send_has_its_own_longer_timeout);
async fn a_bulk_send_has_its_own_longer_timeout() {
    let t = spawn_app_with(|c| {
        c.request_timeout_ms = 400;
        c.batch_request_timeout_ms = 60_000;
    })
    .await;
    let seed = t.seed().await;
    let lock = hold_database(&t).await;
    let body = json!({"templateId": seed.template_id, "recipients": [
        {"to": "50755667711", "params": {"name": "Ana", "order": "A-1"}}]})
    .to_string();
    let batch = t.call("POST", "/v1/messages/batch", Some(&seed.token), Some(&body));
    let single = async {
        // While the database is held, an ordinary send runs out of its 400 ms…
        let r = t
            .send_new(&seed.token, send_body(&seed, "50755667722"))
            .await;
        drop(lock);
        r
    };
    let (batch, single) = tokio::join!(batch, single);
    assert_eq!(
        single.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        single.text
    );
    // …and the bulk send, older than that, waited and went through once it was free.
    assert_eq!(batch.status, StatusCode::ACCEPTED, "{}", batch.text);
    assert_eq!(
        batch.json["results"][0]["status"], "accepted",
        "{}",
        batch.text
    );
    // The send that timed out was not stored behind its caller's back.
    assert_eq!(
        t.sql_i64("SELECT COUNT(*) FROM messages WHERE phone_number = '50755667722'")
            .await,
        0
    );
    assert_eq!(t.sql_i64("SELECT COUNT(*) FROM messages").await, 1);
}

both_databases!(each_token_is_rate_limited_on_the_template_api);
async fn each_token_is_rate_limited_on_the_template_api() {
    let t = spawn_app_with(|c| c.token_rate_per_sec = 3).await;
    let a = t.seed().await;
    let b = t.seed_with(10, "connected").await;
    let started = Instant::now();
    let mut answers = vec![];
    for _ in 0..12 {
        answers.push(t.call("GET", "/templates", Some(&a.token), None).await);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ok = answers
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    assert!(
        answers[..3].iter().all(|r| r.status == StatusCode::OK),
        "a burst of the rate passes"
    );
    let allowed = 3 + (elapsed * 3.0).ceil() as usize;
    assert!(ok <= allowed, "{ok} passed in {elapsed} s");
    let limited = answers
        .iter()
        .find(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .expect("a 429");
    assert_eq!(limited.json["code"], 429, "{}", limited.text);
    assert_eq!(limited.json["body"]["type"], "Too Many Requests");
    assert!(
        !limited.text.contains(&a.token),
        "the token is never echoed"
    );

    // Retry-After in whole seconds; the old family's shape.
    let r = t
        .client
        .get(format!("{}/api/Template", t.base))
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "Too Many Requests", "{v}");

    // The native API shares the token's budget, and answers with a problem.
    let r = t
        .client
        .get(format!("{}/v1/templates", t.base))
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "/problems/rate-limited", "{v}");

    // Another token has its own budget; sends count against the same one.
    let r = t.send_old(&b.token, send_body(&b, "50755667788")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let text = metrics(&t).await;
    assert!(sample(&text, "plantilla_rate_limited_total").unwrap() >= 2.0);
    // The admin API is not limited by public tokens.
    let (status, _) = t
        .admin("GET", &format!("/v1/admin/accounts/{}", a.account_id), None)
        .await;
    assert_eq!(status, StatusCode::OK);
}
