//! The fake Graph API server over real HTTP: sends, Meta's errors, injected
//! faults, throughput, signed status webhooks, template paging, the binary.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderMap;
use fake_graph::{
    Action, FakeGraph, FakeGraphConfig, FakePhoneNumber, FakeTemplate, PairRate, RequestOutcome,
    Rule,
};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

const PHONE: &str = "1061234567890";
const TOKEN: &str = "EAAG-test-token";
const SECRET: &str = "app-secret-for-tests";
const TO: &str = "50755667788";

fn named_template() -> FakeTemplate {
    FakeTemplate::new(
        "order_update",
        "es",
        "Hola {{name}}, tu pedido {{order}} va en camino",
    )
    .with_header("Pedido {{order}}")
    .with_footer("Gracias")
    .with_url_button("Ver pedido", "https://shop.example/o/{{1}}")
}

fn positional_template() -> FakeTemplate {
    FakeTemplate::new("reminder", "en_US", "Hi {{1}}, see you on {{2}}")
}

fn config() -> FakeGraphConfig {
    FakeGraphConfig::default()
        .with_phone(PHONE, TOKEN)
        .with_template(named_template())
        .with_template(positional_template())
}

fn named_body(to: &str, callback: &str) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "biz_opaque_callback_data": callback,
        "template": {
            "name": "order_update",
            "language": {"code": "es"},
            "components": [
                {"type": "header", "parameters": [
                    {"type": "text", "parameter_name": "order", "text": "A-17"}]},
                {"type": "body", "parameters": [
                    {"type": "text", "parameter_name": "name", "text": "Ana"},
                    {"type": "text", "parameter_name": "order", "text": "A-17"}]},
                {"type": "button", "sub_type": "url", "index": "0", "parameters": [
                    {"type": "text", "text": "A-17"}]}
            ]
        }
    })
}

fn positional_body(to: &str, params: &[&str]) -> Value {
    let parameters: Vec<Value> = params
        .iter()
        .map(|p| json!({"type": "text", "text": p}))
        .collect();
    json!({
        "messaging_product": "whatsapp",
        "to": to,
        "type": "template",
        "template": {
            "name": "reminder",
            "language": {"code": "en_US"},
            "components": [{"type": "body", "parameters": parameters}]
        }
    })
}

async fn send(fake: &FakeGraph, token: &str, body: &Value) -> (StatusCode, Value) {
    send_from(fake, PHONE, token, body).await
}

async fn send_from(
    fake: &FakeGraph,
    phone: &str,
    token: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/v23.0/{phone}/messages", fake.base_url()))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("request reaches the fake");
    let status = response.status();
    let json = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, json)
}

fn error_code(body: &Value) -> i64 {
    body["error"]["code"].as_i64().unwrap_or(-1)
}

// ---------------------------------------------------------------------------
// A tiny webhook receiver that checks signatures
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Received {
    signature_ok: bool,
    body: Value,
    at: Instant,
}

struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(secret: &'static str) -> Receiver {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let store = received.clone();
        let app = axum::Router::new().route(
            "/webhooks/whatsapp",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let store = store.clone();
                async move {
                    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
                    mac.update(&body);
                    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
                    let given = headers
                        .get("x-hub-signature-256")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    store.lock().unwrap().push(Received {
                        signature_ok: given == expected,
                        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                        at: Instant::now(),
                    });
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            url: format!("http://{addr}/webhooks/whatsapp"),
            received,
        }
    }

    fn all(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.all().len() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.all()
    }
}

fn statuses(received: &[Received]) -> Vec<Value> {
    received
        .iter()
        .filter_map(|r| {
            r.body
                .pointer("/entry/0/changes/0/value/statuses/0")
                .cloned()
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Sends
// ---------------------------------------------------------------------------

#[tokio::test]
async fn accepted_send_is_recorded_with_callback_data() {
    let fake = FakeGraph::start(config()).await;
    assert!(fake.base_url().starts_with("http://127.0.0.1:"));

    let (status, body) = send(&fake, TOKEN, &named_body("+50755667788", "msg-123")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["messaging_product"], "whatsapp");
    assert_eq!(body["contacts"][0]["input"], "+50755667788");
    assert_eq!(body["contacts"][0]["wa_id"], TO);
    let wamid = body["messages"][0]["id"].as_str().unwrap().to_string();
    assert!(wamid.starts_with("wamid."), "{wamid}");
    assert_eq!(body["messages"][0]["message_status"], "accepted");

    let sent = fake.sent();
    assert_eq!(sent.len(), 1);
    let m = &sent[0];
    assert_eq!(m.wamid, wamid);
    assert_eq!(m.phone_number_id, PHONE);
    assert_eq!(m.to, "+50755667788");
    assert_eq!(m.wa_id, TO);
    assert_eq!(m.template, "order_update");
    assert_eq!(m.language, "es");
    assert_eq!(m.biz_opaque_callback_data.as_deref(), Some("msg-123"));
    assert_eq!(m.components.len(), 3);
    assert_eq!(m.texts("header"), ["A-17"]);
    assert_eq!(
        m.named_body_params(),
        [
            (Some("name".to_string()), "Ana".to_string()),
            (Some("order".to_string()), "A-17".to_string())
        ]
    );
    assert_eq!(fake.sent_count(PHONE), 1);
    assert_eq!(fake.request_count(PHONE), 1);
    assert_eq!(fake.sent_to(TO).len(), 1);
    assert_eq!(
        fake.requests()[0].outcome,
        RequestOutcome::Accepted { wamid }
    );

    // Unversioned paths work too, and positional templates take plain params.
    let response = reqwest::Client::new()
        .post(format!("{}/{PHONE}/messages", fake.base_url()))
        .bearer_auth(TOKEN)
        .json(&positional_body(TO, &["Ana", "Monday"]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(fake.sent_count(PHONE), 2);
    fake.stop().await;
}

#[tokio::test]
async fn wrong_or_missing_token_gets_190() {
    let fake = FakeGraph::start(config()).await;
    let (status, body) = send(&fake, "not-the-token", &named_body(TO, "x")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), 190);
    assert_eq!(body["error"]["type"], "OAuthException");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Invalid OAuth access token")
    );
    assert!(body["error"]["fbtrace_id"].is_string());

    let response = reqwest::Client::new()
        .post(format!("{}/v23.0/{PHONE}/messages", fake.base_url()))
        .json(&named_body(TO, "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&response.json().await.unwrap()), 190);

    // A rotated token makes the old one invalid.
    fake.set_access_token(PHONE, "new-token");
    let (status, _) = send(&fake, TOKEN, &named_body(TO, "x")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = send(&fake, "new-token", &named_body(TO, "x")).await;
    assert_eq!(status, StatusCode::OK);

    assert!(fake.sent().len() == 1 && fake.requests().len() == 4);
    assert_eq!(fake.rejected_with(190), 3);
    fake.stop().await;
}

#[tokio::test]
async fn payload_and_template_are_checked_like_meta() {
    let fake = FakeGraph::start(config()).await;

    // Body parameter count mismatch.
    let (status, body) = send(&fake, TOKEN, &positional_body(TO, &["only one"])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), 132000);
    assert_eq!(
        body["error"]["message"],
        "(#132000) Number of parameters does not match the expected number of params"
    );
    assert_eq!(body["error"]["error_data"]["messaging_product"], "whatsapp");
    assert!(
        body["error"]["error_data"]["details"]
            .as_str()
            .unwrap()
            .contains("body")
    );

    // Missing URL button parameter.
    let mut no_button = named_body(TO, "x");
    no_button["template"]["components"]
        .as_array_mut()
        .unwrap()
        .pop();
    let (_, body) = send(&fake, TOKEN, &no_button).await;
    assert_eq!(error_code(&body), 132000);

    // A named parameter with the wrong name, and one without a name.
    let mut wrong_name = named_body(TO, "x");
    wrong_name["template"]["components"][1]["parameters"][0]["parameter_name"] = json!("nombre");
    let (_, body) = send(&fake, TOKEN, &wrong_name).await;
    assert_eq!(error_code(&body), 132000);
    let mut no_name = named_body(TO, "x");
    no_name["template"]["components"][1]["parameters"][0]
        .as_object_mut()
        .unwrap()
        .remove("parameter_name");
    let (_, body) = send(&fake, TOKEN, &no_name).await;
    assert_eq!(error_code(&body), 100);

    // Empty text.
    let (_, body) = send(&fake, TOKEN, &positional_body(TO, &["Ana", " "])).await;
    assert_eq!(error_code(&body), 131008);

    // Unknown template, and a known name in another language.
    let mut unknown = positional_body(TO, &["a", "b"]);
    unknown["template"]["name"] = json!("nope");
    let (status, body) = send(&fake, TOKEN, &unknown).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), 132001);
    assert_eq!(
        body["error"]["message"],
        "(#132001) Template name does not exist in the translation"
    );
    let mut other_language = positional_body(TO, &["a", "b"]);
    other_language["template"]["language"]["code"] = json!("es");
    let (_, body) = send(&fake, TOKEN, &other_language).await;
    assert_eq!(error_code(&body), 132001);

    // Shape errors.
    let mut no_product = positional_body(TO, &["a", "b"]);
    no_product
        .as_object_mut()
        .unwrap()
        .remove("messaging_product");
    let (_, body) = send(&fake, TOKEN, &no_product).await;
    assert_eq!(error_code(&body), 100);
    let mut no_to = positional_body(TO, &["a", "b"]);
    no_to.as_object_mut().unwrap().remove("to");
    let (_, body) = send(&fake, TOKEN, &no_to).await;
    assert_eq!(error_code(&body), 100);

    // Paused template.
    assert!(fake.set_template_status("reminder", "en_US", "PAUSED"));
    let (_, body) = send(&fake, TOKEN, &positional_body(TO, &["a", "b"])).await;
    assert_eq!(error_code(&body), 132015);

    assert!(fake.sent().is_empty());
    assert_eq!(fake.requests().len(), 10);
    fake.stop().await;
}

// ---------------------------------------------------------------------------
// Injected faults and limits
// ---------------------------------------------------------------------------

#[tokio::test]
async fn rule_500_500_then_success() {
    let fake = FakeGraph::start(config()).await;
    fake.add_rule(Rule::times(2, Action::server_error()));
    // A rule for another recipient never fires here.
    fake.add_rule(Rule::always(Action::error(131026)).to("15550001111"));

    let body = positional_body(TO, &["Ana", "Monday"]);
    let (s1, b1) = send(&fake, TOKEN, &body).await;
    let (s2, b2) = send(&fake, TOKEN, &body).await;
    let (s3, b3) = send(&fake, TOKEN, &body).await;
    assert_eq!(s1, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error_code(&b1), 131000);
    assert_eq!(s2, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error_code(&b2), 131000);
    assert_eq!(s3, StatusCode::OK, "{b3}");
    assert_eq!(fake.requests().len(), 3);
    assert_eq!(fake.sent().len(), 1);
    assert_eq!(fake.rules_fired(), [2, 0]);

    let (status, body) = send(&fake, TOKEN, &positional_body("15550001111", &["a", "b"])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), 131026);

    // HttpError carries subcode, details and Retry-After.
    fake.clear_rules();
    fake.add_rule(Rule::once(Action::HttpError {
        status: 400,
        code: 130429,
        subcode: Some(2494055),
        message: "(#130429) Rate limit hit".into(),
        details: Some("slow down".into()),
        retry_after: Some(7),
    }));
    let response = reqwest::Client::new()
        .post(format!("{}/v23.0/{PHONE}/messages", fake.base_url()))
        .bearer_auth(TOKEN)
        .json(&positional_body(TO, &["a", "b"]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.headers()["retry-after"], "7");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], 130429);
    assert_eq!(body["error"]["error_subcode"], 2494055);
    assert_eq!(body["error"]["error_data"]["details"], "slow down");
    fake.stop().await;
}

#[tokio::test]
async fn dropped_connection_and_delay() {
    let fake = FakeGraph::start(config()).await;
    fake.add_rule(Rule::once(Action::DropConnection));
    fake.add_rule(Rule::once(Action::Delay(Duration::from_millis(400))));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let url = format!("{}/v23.0/{PHONE}/messages", fake.base_url());
    let body = positional_body(TO, &["a", "b"]);

    let dropped = client
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await;
    let err = dropped.expect_err("the connection is closed without an answer");
    assert!(!err.is_timeout(), "{err:?}");
    assert_eq!(fake.dropped(), 1);

    let slow = client
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await;
    assert!(slow.expect_err("times out").is_timeout());

    let ok = client
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    // The delayed request was handled after all (like a send whose answer was lost).
    assert!(fake.wait_for_sent(2, Duration::from_secs(2)).await);
    fake.stop().await;
}

#[tokio::test]
async fn throughput_above_max_rps_gets_130429() {
    let mut config = config();
    config.max_rps = Some(5);
    let fake = Arc::new(FakeGraph::start(config).await);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let fake = fake.clone();
        tasks.push(tokio::spawn(async move {
            send(&fake, TOKEN, &positional_body(TO, &["a", "b"])).await
        }));
    }
    let mut ok = 0;
    let mut limited = 0;
    for task in tasks {
        let (status, body) = task.await.unwrap();
        if status == StatusCode::OK {
            ok += 1;
        } else {
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert_eq!(error_code(&body), 130429);
            assert_eq!(body["error"]["message"], "(#130429) Rate limit hit");
            limited += 1;
        }
    }
    assert_eq!(ok + limited, 8);
    assert_eq!(fake.rejected_with(130429), limited);
    // The limit holds whatever the timing; on a machine slow enough to spread
    // the 8 sends over more than a second, more than 5 may pass.
    assert!(fake.max_per_second(PHONE) <= 5);
    if started.elapsed() < Duration::from_millis(900) {
        assert_eq!((ok, limited), (5, 3));
        assert_eq!(fake.max_per_second(PHONE), 5);
        assert_eq!(fake.max_requests_per_second(PHONE), 8);
    }

    // After the window slides, sends are accepted again.
    tokio::time::sleep(Duration::from_millis(1050)).await;
    let (status, _) = send(&fake, TOKEN, &positional_body(TO, &["a", "b"])).await;
    assert_eq!(status, StatusCode::OK);
    assert!(fake.max_per_second(PHONE) <= 5);
}

#[tokio::test]
async fn pair_rate_gets_131056_for_that_recipient_only() {
    let mut config = config();
    config.pair_rate = Some(PairRate {
        max: 1,
        per: Duration::from_secs(6),
    });
    let fake = FakeGraph::start(config).await;
    let (status, _) = send(&fake, TOKEN, &positional_body(TO, &["a", "b"])).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = send(&fake, TOKEN, &positional_body(TO, &["a", "b"])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), 131056);
    let (status, _) = send(&fake, TOKEN, &positional_body("15550002222", &["a", "b"])).await;
    assert_eq!(status, StatusCode::OK);
    fake.stop().await;
}

#[tokio::test]
async fn fail_ratio_is_seeded() {
    async fn outcomes(seed: u64) -> Vec<String> {
        let mut config = config();
        config.fail_ratio = 0.5;
        config.fault_delay = Duration::from_millis(5);
        config.seed = seed;
        let fake = FakeGraph::start(config).await;
        for _ in 0..20 {
            let _ = reqwest::Client::new()
                .post(format!("{}/v23.0/{PHONE}/messages", fake.base_url()))
                .bearer_auth(TOKEN)
                .json(&positional_body(TO, &["a", "b"]))
                .send()
                .await;
        }
        let result = fake
            .requests()
            .iter()
            .map(|r| match &r.outcome {
                RequestOutcome::Accepted { .. } => "ok".to_string(),
                RequestOutcome::Rejected { code, .. } => code.to_string(),
                RequestOutcome::Dropped => "drop".to_string(),
            })
            .collect();
        fake.stop().await;
        result
    }
    let a = outcomes(7).await;
    let b = outcomes(7).await;
    assert_eq!(a, b);
    assert_eq!(a.len(), 20);
    assert!(a.iter().any(|o| o != "ok"), "{a:?}");
    assert!(a.iter().any(|o| o == "ok"), "{a:?}");
}

// ---------------------------------------------------------------------------
// Status webhooks
// ---------------------------------------------------------------------------

#[tokio::test]
async fn signed_status_webhooks_arrive_in_order() {
    let receiver = Receiver::start(SECRET).await;
    let mut config = config().with_webhook(&receiver.url, SECRET);
    config.status_delay = Duration::from_millis(20);
    let fake = FakeGraph::start(config).await;

    let (status, body) = send(&fake, TOKEN, &named_body(TO, "msg-42")).await;
    assert_eq!(status, StatusCode::OK);
    let wamid = body["messages"][0]["id"].as_str().unwrap().to_string();

    let received = receiver.wait_for(3).await;
    assert_eq!(received.len(), 3);
    assert!(received.iter().all(|r| r.signature_ok));
    let statuses = statuses(&received);
    let order: Vec<&str> = statuses
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["sent", "delivered", "read"]);
    for s in &statuses {
        assert_eq!(s["id"], wamid.as_str());
        assert_eq!(s["recipient_id"], TO);
        assert_eq!(s["biz_opaque_callback_data"], "msg-42");
        assert!(s["timestamp"].as_str().unwrap().parse::<i64>().is_ok());
        assert_eq!(s["pricing"]["pricing_model"], "PMP");
        assert_eq!(s["pricing"]["type"], "regular");
        assert_eq!(s["pricing"]["category"], "utility");
        assert_eq!(s["pricing"]["billable"], true);
        assert!(s["conversation"]["id"].is_string());
    }
    assert!(statuses[0]["conversation"]["expiration_timestamp"].is_string());
    let first = &received[0].body;
    assert_eq!(first["object"], "whatsapp_business_account");
    assert_eq!(first["entry"][0]["changes"][0]["field"], "messages");
    let value = &first["entry"][0]["changes"][0]["value"];
    assert_eq!(value["messaging_product"], "whatsapp");
    assert_eq!(value["metadata"]["phone_number_id"], PHONE);
    assert!(value["metadata"]["display_phone_number"].is_string());

    assert!(fake.wait_webhooks_idle(Duration::from_secs(5)).await);
    assert_eq!(fake.webhooks().len(), 3);
    assert_eq!(fake.webhook_failures(), 0);
    fake.stop().await;
}

#[tokio::test]
async fn batched_webhooks_carry_many_statuses_each_message_in_order() {
    let receiver = Receiver::start(SECRET).await;
    let other = "1069999999999";
    let fake = FakeGraph::start(FakeGraphConfig {
        webhook_batch: 50,
        webhook_linger: Duration::from_millis(20),
        ..config()
            .with_phone(other, TOKEN)
            .with_webhook(&receiver.url, SECRET)
    })
    .await;
    let mut wamids = Vec::new();
    for i in 0..6 {
        let phone = if i % 2 == 0 { PHONE } else { other };
        let to = format!("5075566770{i}");
        let (status, body) = send_from(&fake, phone, TOKEN, &named_body(&to, "cb")).await;
        assert_eq!(status, StatusCode::OK);
        wamids.push(body["messages"][0]["id"].as_str().unwrap().to_string());
    }
    assert!(fake.wait_webhooks_idle(Duration::from_secs(10)).await);
    let received = receiver.all();
    assert!(received.iter().all(|r| r.signature_ok));
    // Every status once, in fewer POSTs than statuses; each change names its number.
    let mut seen: Vec<(String, String)> = Vec::new();
    for r in &received {
        assert_eq!(r.body["object"], "whatsapp_business_account");
        for entry in r.body["entry"].as_array().unwrap() {
            for change in entry["changes"].as_array().unwrap() {
                assert_eq!(change["field"], "messages");
                let value = &change["value"];
                let phone = value["metadata"]["phone_number_id"].as_str().unwrap();
                for s in value["statuses"].as_array().unwrap() {
                    let wamid = s["id"].as_str().unwrap().to_string();
                    let i = wamids.iter().position(|w| *w == wamid).unwrap();
                    assert_eq!(phone, if i % 2 == 0 { PHONE } else { other });
                    assert_eq!(s["pricing"]["category"], "utility");
                    seen.push((wamid, s["status"].as_str().unwrap().to_string()));
                }
            }
        }
    }
    assert_eq!(seen.len(), 18, "{seen:?}");
    assert!(received.len() < 18, "{} POSTs", received.len());
    for wamid in &wamids {
        let order: Vec<&str> = seen
            .iter()
            .filter(|(w, _)| w == wamid)
            .map(|(_, s)| s.as_str())
            .collect();
        assert_eq!(order, ["sent", "delivered", "read"]);
    }
    assert_eq!(fake.webhooks().len(), received.len());
    assert!(fake.webhooks().iter().all(|w| w.delivered));
    assert_eq!(fake.stats()["webhooks"]["delivered"], received.len());
    fake.stop().await;
}

#[tokio::test]
async fn accept_then_fail_reports_failed_status() {
    let receiver = Receiver::start(SECRET).await;
    let fake = FakeGraph::start(config().with_webhook(&receiver.url, SECRET)).await;
    fake.add_rule(Rule::once(Action::accept_then_fail(
        131026,
        "Message undeliverable",
        "Recipient is not on WhatsApp",
    )));
    let (status, body) = send(&fake, TOKEN, &named_body(TO, "msg-9")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["messages"][0]["id"].is_string());

    let received = receiver.wait_for(1).await;
    assert!(fake.wait_webhooks_idle(Duration::from_secs(5)).await);
    let statuses = statuses(&receiver.all());
    assert_eq!(statuses.len(), 1, "{received:?}");
    let s = &statuses[0];
    assert_eq!(s["status"], "failed");
    assert_eq!(s["biz_opaque_callback_data"], "msg-9");
    assert_eq!(s["errors"][0]["code"], 131026);
    assert_eq!(s["errors"][0]["title"], "Message undeliverable");
    assert_eq!(
        s["errors"][0]["error_data"]["details"],
        "Recipient is not on WhatsApp"
    );
    assert!(s.get("pricing").is_none());
    assert_eq!(fake.sent()[0].fails_with, Some(131026));
    fake.stop().await;
}

#[tokio::test]
async fn held_webhooks_wait_until_released() {
    let receiver = Receiver::start(SECRET).await;
    let fake = FakeGraph::start(config().with_webhook(&receiver.url, SECRET)).await;
    fake.set_status_lifecycle(false, false);
    fake.hold_webhooks(true);
    let (status, _) = send(&fake, TOKEN, &named_body(TO, "held")).await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(receiver.all().is_empty());
    assert_eq!(fake.pending_webhooks(), 1);

    fake.hold_webhooks(false);
    let received = receiver.wait_for(1).await;
    assert_eq!(statuses(&received)[0]["status"], "sent");
    assert!(fake.wait_webhooks_idle(Duration::from_secs(5)).await);
    fake.stop().await;
}

#[tokio::test]
async fn status_can_arrive_before_the_send_response() {
    let receiver = Receiver::start(SECRET).await;
    let fake = FakeGraph::start(config().with_webhook(&receiver.url, SECRET)).await;
    fake.set_status_lifecycle(false, false);
    fake.add_rule(Rule::once(Action::StatusBeforeResponse));
    let (status, body) = send(&fake, TOKEN, &named_body(TO, "early")).await;
    let answered = Instant::now();
    assert_eq!(status, StatusCode::OK);
    let received = receiver.all();
    assert_eq!(
        received.len(),
        1,
        "the webhook was posted before the answer"
    );
    assert!(received[0].at <= answered);
    assert_eq!(statuses(&received)[0]["id"], body["messages"][0]["id"]);
    fake.stop().await;
}

#[tokio::test]
async fn crafted_webhooks_are_signed_and_counted_failures() {
    let receiver = Receiver::start(SECRET).await;
    let fake = FakeGraph::start(config().with_webhook(&receiver.url, SECRET)).await;
    fake.set_status_lifecycle(false, false);

    let update = fake.template_status_update("order_update", "es", "PAUSED", Some("LOW_QUALITY"));
    assert_eq!(fake.post_webhook(&update).await, StatusCode::OK);
    let inbound = fake.inbound_message(PHONE, TO, "Ana Pérez", "hola");
    assert_eq!(fake.post_webhook(&inbound).await, StatusCode::OK);
    let (_, body) = send(&fake, TOKEN, &named_body(TO, "m-1")).await;
    assert_eq!(body["messages"][0]["message_status"], "accepted");
    let sent = fake.sent()[0].clone();
    let delivered = fake.status_payload(&sent, "delivered");
    assert_eq!(fake.post_webhook(&delivered).await, StatusCode::OK);
    // A body signed with another secret.
    let raw = serde_json::to_vec(&delivered).unwrap();
    let bad = fake_graph::signature("wrong-secret", &raw);
    assert_eq!(fake.post_webhook_raw(raw, Some(bad)).await, StatusCode::OK);

    let received = receiver.wait_for(5).await;
    assert_eq!(received.len(), 5);
    let ok: Vec<bool> = received.iter().map(|r| r.signature_ok).collect();
    assert_eq!(ok.iter().filter(|ok| **ok).count(), 4);

    let update = &received[0].body["entry"][0];
    assert!(update["time"].is_i64());
    assert_eq!(
        update["changes"][0]["field"],
        "message_template_status_update"
    );
    let value = &update["changes"][0]["value"];
    assert_eq!(value["event"], "PAUSED");
    assert_eq!(value["message_template_name"], "order_update");
    assert_eq!(value["message_template_language"], "es");
    assert_eq!(value["reason"], "LOW_QUALITY");
    let template_id = &fake.templates()[0].id;
    assert_eq!(value["message_template_id"].to_string(), *template_id);

    let value = &received[1].body["entry"][0]["changes"][0]["value"];
    assert_eq!(value["contacts"][0]["profile"]["name"], "Ana Pérez");
    assert_eq!(value["contacts"][0]["wa_id"], TO);
    assert_eq!(value["messages"][0]["from"], TO);
    assert_eq!(value["messages"][0]["text"]["body"], "hola");

    // Webhooks to a dead endpoint are retried and counted as failures.
    fake.set_webhook_url(Some("http://127.0.0.1:9/nowhere".into()));
    let (status, _) = send(&fake, TOKEN, &named_body(TO, "m-2")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(fake.wait_webhooks_idle(Duration::from_secs(10)).await);
    assert_eq!(fake.webhook_failures(), 3); // 1 attempt + 2 retries
    assert!(!fake.webhooks().last().unwrap().delivered);
    fake.stop().await;
}

// ---------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------

#[tokio::test]
async fn message_templates_page_over_three_pages() {
    let fake = FakeGraph::start(
        FakeGraphConfig::default()
            .with_template(named_template())
            .with_template(positional_template()),
    )
    .await;
    fake.add_phone_number(FakePhoneNumber::new(PHONE, TOKEN).with_waba("waba-1"));
    for i in 0..5 {
        fake.add_template(
            FakeTemplate::new(format!("t{i}"), "es", "Hola {{1}}").with_category("MARKETING"),
        );
    }
    // Another account's template is not listed.
    fake.add_template(FakeTemplate::new("other", "es", "x").with_waba("waba-2"));

    let client = reqwest::Client::new();
    let mut url = format!("{}/v23.0/waba-1/message_templates?limit=3", fake.base_url());
    let mut pages = Vec::new();
    loop {
        let response = client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let page: Value = response.json().await.unwrap();
        let next = page["paging"]["next"].as_str().map(str::to_string);
        pages.push(page);
        match next {
            Some(next) => {
                assert!(next.starts_with(fake.base_url()), "{next}");
                url = next;
            }
            None => break,
        }
        assert!(pages.len() < 5, "paging does not end");
    }
    assert_eq!(pages.len(), 3);
    let sizes: Vec<usize> = pages
        .iter()
        .map(|p| p["data"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [3, 3, 1]);
    let names: Vec<&str> = pages
        .iter()
        .flat_map(|p| p["data"].as_array().unwrap())
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["order_update", "reminder", "t0", "t1", "t2", "t3", "t4"]
    );
    assert!(pages[2]["paging"]["cursors"]["after"].is_string());
    assert!(pages[1]["paging"]["previous"].is_string());

    let order = &pages[0]["data"][0];
    assert_eq!(order["language"], "es");
    assert_eq!(order["status"], "APPROVED");
    assert_eq!(order["category"], "UTILITY");
    assert_eq!(order["parameter_format"], "NAMED");
    assert!(order["id"].as_str().is_some_and(|id| !id.is_empty()));
    let components = order["components"].as_array().unwrap();
    assert_eq!(components[0]["type"], "HEADER");
    assert_eq!(components[0]["format"], "TEXT");
    assert_eq!(components[0]["text"], "Pedido {{order}}");
    assert_eq!(components[1]["type"], "BODY");
    assert_eq!(
        components[1]["example"]["body_text_named_params"][0]["param_name"],
        "name"
    );
    assert_eq!(components[2]["type"], "FOOTER");
    assert_eq!(components[3]["type"], "BUTTONS");
    assert_eq!(components[3]["buttons"][0]["type"], "URL");
    assert_eq!(
        components[3]["buttons"][0]["url"],
        "https://shop.example/o/{{1}}"
    );
    let reminder = &pages[0]["data"][1];
    assert_eq!(reminder["parameter_format"], "POSITIONAL");
    assert_eq!(
        reminder["components"][0]["example"]["body_text"][0][1],
        "example_2"
    );

    // The token is checked.
    let response = client
        .get(format!(
            "{}/v23.0/waba-1/message_templates",
            fake.base_url()
        ))
        .bearer_auth("bad")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&response.json().await.unwrap()), 190);
    // access_token in the query works too, and an empty account has no paging.
    fake.add_phone_number(FakePhoneNumber::new("999", "tok-3").with_waba("waba-3"));
    let page: Value = client
        .get(format!(
            "{}/v23.0/waba-3/message_templates?access_token=tok-3",
            fake.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 7);
    assert_eq!(fake.template_list_requests(), 5);
    fake.stop().await;
}

// ---------------------------------------------------------------------------
// The binary
// ---------------------------------------------------------------------------

/// Kills the child process when dropped.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn binary_prints_its_address_and_serves() {
    use std::io::{BufRead, BufReader};

    let dir = tempfile::tempdir().unwrap();
    let templates = dir.path().join("templates.json");
    std::fs::write(
        &templates,
        serde_json::to_string(&json!([
            {"name": "reminder", "language": "en_US", "body": "Hi {{1}}, see you on {{2}}"}
        ]))
        .unwrap(),
    )
    .unwrap();
    let mut child = ChildGuard(
        std::process::Command::new(env!("CARGO_BIN_EXE_fake-graph"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--app-secret",
                SECRET,
                "--max-rps",
                "50",
            ])
            .arg("--templates-file")
            .arg(&templates)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let first = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    });
    let first = tokio::time::timeout(Duration::from_secs(30), first)
        .await
        .unwrap()
        .unwrap();
    let addr = first
        .trim()
        .strip_prefix("listening on ")
        .expect(&first)
        .to_string();
    let base = format!("http://{addr}");

    let client = reqwest::Client::new();
    let response = client
        .post(format!("{base}/v23.0/{PHONE}/messages"))
        .bearer_auth("any-token")
        .json(&positional_body(TO, &["Ana", "Monday"]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut unknown = positional_body(TO, &["Ana", "Monday"]);
    unknown["template"]["name"] = json!("nope");
    let response = client
        .post(format!("{base}/v23.0/{PHONE}/messages"))
        .bearer_auth("any-token")
        .json(&unknown)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let stats: Value = client
        .get(format!("{base}/_fake/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["requests"], 2);
    assert_eq!(stats["accepted"], 1);
    assert_eq!(stats["rejected"]["132001"], 1);
    assert_eq!(stats["phone_numbers"][PHONE]["accepted"], 1);
    drop(child);
}
