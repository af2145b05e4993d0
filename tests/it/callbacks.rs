// Status callbacks: endpoints registered over `/v1/webhook-endpoints` and messages' own
// `callbackUrl` receive signed events (Standard Webhooks) from a test receiver's point of
// view: in order per message, retried with backoff, visible in `/deliveries`, never slowing
// sends, and never crossing accounts.

use crate::common;

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::*;
use fake_graph::{Action, FakeGraph, FakeGraphConfig, Rule};
use plantilla::app::Event;
use plantilla::config::{Config, Secret};
use plantilla::domain::status::MessageStatus;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

const ALL_EVENTS: [&str; 7] = [
    "message.sent",
    "message.delivered",
    "message.read",
    "message.failed",
    "conversation.opened",
    "conversation.closed",
    "template.status_changed",
];

/// Retries due 1 ms after a failure, so each `drain_callbacks` tries the next attempt.
fn fast_callbacks(c: &mut Config) {
    c.callback_retry_initial_ms = 1;
    c.callback_retry_max_ms = 1;
    c.callback_timeout_ms = 5_000;
}

// --- The receiver --------------------------------------------------------------------------

/// One request the receiver got, and what it answered.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    content_type: String,
    body: String,
    json: Value,
    answered: u16,
}

impl Received {
    fn event_type(&self) -> &str {
        self.json["type"].as_str().unwrap_or_default()
    }
    fn message_id(&self) -> Option<&str> {
        self.json["data"]["messageId"].as_str()
    }
}

type Responder = Box<dyn FnMut(&Value) -> u16 + Send>;

/// An HTTP server on port 0 that records every request on a channel and answers with the
/// status its responder picks.
struct Receiver {
    url: String,
    rx: mpsc::UnboundedReceiver<Received>,
}

async fn receiver() -> Receiver {
    receiver_answering(|_| 200).await
}

async fn receiver_answering(respond: impl FnMut(&Value) -> u16 + Send + 'static) -> Receiver {
    let (tx, rx) = mpsc::unbounded_channel();
    let respond: Arc<Mutex<Responder>> = Arc::new(Mutex::new(Box::new(respond)));
    let handler = move |headers: HeaderMap, body: Bytes| {
        let tx = tx.clone();
        let respond = respond.clone();
        async move {
            let body = String::from_utf8(body.to_vec()).expect("UTF-8 body");
            let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let answered = (respond.lock().unwrap())(&json);
            let header = |name: &str| {
                headers
                    .get(name)
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default()
            };
            let _ = tx.send(Received {
                id: header("webhook-id"),
                timestamp: header("webhook-timestamp"),
                signature: header("webhook-signature"),
                content_type: header("content-type"),
                body,
                json,
                answered,
            });
            (axum::http::StatusCode::from_u16(answered).unwrap(), "ok")
        }
    };
    let router = axum::Router::new().fallback(handler);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Receiver {
        url: format!("http://{addr}/hooks"),
        rx,
    }
}

impl Receiver {
    /// Everything received so far. A drain returns after its deliveries were answered, so
    /// they have all arrived by then.
    fn take(&mut self) -> Vec<Received> {
        let mut got = Vec::new();
        while let Ok(r) = self.rx.try_recv() {
            got.push(r);
        }
        got
    }
}

fn types(got: &[Received]) -> Vec<&str> {
    got.iter().map(Received::event_type).collect()
}

// --- Signatures, checked independently of plantilla's code ---------------------------------

/// HMAC-SHA256 (RFC 2104) from SHA-256 alone.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

fn expected_signature(secret: &str, id: &str, timestamp: &str, body: &str) -> String {
    let key = BASE64
        .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
        .expect("base64 after whsec_");
    let signed = format!("{id}.{timestamp}.{body}");
    format!("v1,{}", BASE64.encode(hmac_sha256(&key, signed.as_bytes())))
}

/// A delivery as Standard Webhooks receivers check it: the signature over id, timestamp and
/// the raw body with the secret, and a fresh timestamp.
fn assert_signed(secret: &str, r: &Received) {
    let expected = expected_signature(secret, &r.id, &r.timestamp, &r.body);
    assert!(
        r.signature.split(' ').any(|s| s == expected),
        "signature {} is not {expected} for {}",
        r.signature,
        r.body
    );
    let ts: i64 = r.timestamp.parse().expect("unix seconds");
    assert!((chrono::Utc::now().timestamp() - ts).abs() < 300, "{ts}");
    assert!(r.id.starts_with("evt_"), "{}", r.id);
    assert_eq!(r.content_type, "application/json");
}

#[test]
fn the_tests_hmac_matches_the_standard_webhooks_example() {
    assert_eq!(
        expected_signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            r#"{"test": 2432232314}"#
        ),
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    );
}

// --- The API -------------------------------------------------------------------------------

struct Cb {
    t: TestApp,
    seed: Seed,
}

async fn setup() -> Cb {
    setup_with(|_| {}).await
}

async fn setup_with(adjust: impl FnOnce(&mut Config)) -> Cb {
    let t = spawn_app_with(|c| {
        fast_callbacks(c);
        adjust(c);
    })
    .await;
    let seed = t.seed().await;
    Cb { t, seed }
}

impl Cb {
    async fn request(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value, String) {
        self.request_keyed(method, path, token, None, body).await
    }

    /// A request with an optional `Idempotency-Key`.
    async fn request_keyed(
        &self,
        method: &str,
        path: &str,
        token: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value, String) {
        let mut req = self
            .t
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.t.base))
            .bearer_auth(token);
        if let Some(key) = key {
            req = req.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, r.json().await.unwrap_or(Value::Null), ct)
    }

    /// Registers an endpoint and returns it (with its secret).
    async fn register(&self, token: &str, url: &str, event_types: &[&str]) -> Value {
        let (status, body, _) = self
            .request(
                "POST",
                "/v1/webhook-endpoints",
                token,
                Some(json!({"url": url, "eventTypes": event_types, "description": "CRM"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Sends the seeded template to `to` with `extra` fields; the message and conversation ids.
    async fn send(&self, token: &str, to: &str, extra: Value) -> (String, String) {
        self.send_template(token, &self.seed.template_id, to, extra)
            .await
    }

    async fn send_template(
        &self,
        token: &str,
        template_id: &str,
        to: &str,
        extra: Value,
    ) -> (String, String) {
        let mut body = json!({"to": to, "templateId": template_id,
                              "params": {"name": "Ana", "order": "A-1"}});
        if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
            b.extend(e);
        }
        let (status, r, _) = self
            .request("POST", "/v1/messages", token, Some(body))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{r}");
        (s(&r["id"]), s(&r["conversation"]["id"]))
    }

    /// `POST /v1/webhook-endpoints` with an `Idempotency-Key`.
    async fn register_keyed(
        &self,
        token: &str,
        key: &str,
        body: Value,
    ) -> (StatusCode, Value, String) {
        self.request_keyed(
            "POST",
            "/v1/webhook-endpoints",
            token,
            Some(key),
            Some(body),
        )
        .await
    }

    async fn endpoint_count(&self) -> i64 {
        self.t
            .sql_i64("SELECT count(*) FROM webhook_endpoints")
            .await
    }

    async fn deliveries(&self, token: &str, endpoint_id: &str) -> Vec<Value> {
        let (status, body, _) = self
            .request(
                "GET",
                &format!("/v1/webhook-endpoints/{endpoint_id}/deliveries"),
                token,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"].as_array().unwrap().clone()
    }
}

fn assert_problem(status: StatusCode, body: &Value, ct: &str, expected: StatusCode, kind: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(ct, "application/problem+json", "{body}");
    assert_eq!(body["type"], format!("/problems/{kind}"), "{body}");
    assert_eq!(body["status"], expected.as_u16(), "{body}");
}

// --- Tests ---------------------------------------------------------------------------------

both_databases!(an_endpoint_gets_a_messages_events_in_order_with_valid_signatures);
async fn an_endpoint_gets_a_messages_events_in_order_with_valid_signatures() {
    let cb = setup().await;
    let token = cb.seed.token.clone();
    let mut rx = receiver().await;
    let endpoint = cb.register(&token, &rx.url, &ALL_EVENTS).await;
    let endpoint_id = s(&endpoint["id"]);
    let secret = s(&endpoint["secret"]);
    assert_eq!(
        BASE64
            .decode(secret.strip_prefix("whsec_").unwrap())
            .unwrap()
            .len(),
        24
    );
    assert_eq!(endpoint["url"], rx.url);
    assert_eq!(endpoint["eventTypes"], json!(ALL_EVENTS));
    assert_eq!(endpoint["description"], "CRM");
    assert!(endpoint["createdAt"].is_string());

    // The secret is shown only when the endpoint is created.
    let (status, got, _) = cb
        .request(
            "GET",
            &format!("/v1/webhook-endpoints/{endpoint_id}"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(got.get("secret").is_none(), "{got}");
    assert_eq!(got["id"], endpoint_id);
    let (_, list, _) = cb
        .request("GET", "/v1/webhook-endpoints", &token, None)
        .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert!(list["data"][0].get("secret").is_none());

    let (message_id, conversation_id) = cb
        .send(
            &token,
            "50755667701",
            json!({"metadata": {"crmId": "lead-7"}}),
        )
        .await;
    cb.t.drain().await;
    assert_eq!(cb.t.drain_callbacks().await, 4);
    let got = rx.take();
    assert_eq!(
        types(&got),
        [
            "message.sent",
            "conversation.opened",
            "message.delivered",
            "message.read"
        ]
    );
    for r in &got {
        assert_signed(&secret, r);
        assert_eq!(r.answered, 200);
    }
    let ids: HashSet<&str> = got.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), 4, "one webhook-id per delivery");

    let read = &got[3].json;
    assert!(
        chrono::DateTime::parse_from_rfc3339(read["timestamp"].as_str().unwrap()).is_ok(),
        "{read}"
    );
    assert_eq!(
        read["data"],
        json!({"messageId": message_id, "conversationId": conversation_id,
               "channelId": cb.seed.channel_id, "to": "50755667701", "status": "read",
               "error": null, "metadata": {"crmId": "lead-7"}})
    );
    assert_eq!(
        got[1].json["data"],
        json!({"conversationId": conversation_id, "channelId": cb.seed.channel_id,
               "to": "50755667701", "status": "open", "closeReason": null,
               "messageId": message_id})
    );

    // What was delivered is visible, oldest first.
    let deliveries = cb.deliveries(&token, &endpoint_id).await;
    assert_eq!(deliveries.len(), 4);
    for (d, r) in deliveries.iter().zip(&got) {
        assert_eq!(d["id"], r.id.as_str());
        assert_eq!(d["eventType"], r.event_type());
        assert_eq!(d["messageId"], message_id.as_str());
        assert_eq!(d["status"], "delivered", "{d}");
        assert_eq!(d["attempts"], 1);
        assert_eq!(d["lastResponseStatus"], 200);
        assert_eq!(d["lastError"], Value::Null);
        assert_eq!(d["nextAttemptAt"], Value::Null);
        assert!(
            d["createdAt"].is_string() && d["deliveredAt"].is_string(),
            "{d}"
        );
        assert_eq!(d["payload"], r.json);
    }
    // Paging: two at a time.
    let (_, page, _) = cb
        .request(
            "GET",
            &format!("/v1/webhook-endpoints/{endpoint_id}/deliveries?limit=2"),
            &token,
            None,
        )
        .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    let cursor = s(&page["nextCursor"]);
    let (_, rest, _) = cb
        .request(
            "GET",
            &format!("/v1/webhook-endpoints/{endpoint_id}/deliveries?limit=2&cursor={cursor}"),
            &token,
            None,
        )
        .await;
    assert_eq!(rest["data"][0]["id"], deliveries[2]["id"]);
    assert_eq!(rest["data"][1]["id"], deliveries[3]["id"]);

    // Nothing left to deliver.
    assert_eq!(cb.t.drain_callbacks().await, 0);
}

both_databases!(a_messages_callback_url_gets_its_events_signed_with_the_account_secret);
async fn a_messages_callback_url_gets_its_events_signed_with_the_account_secret() {
    let cb = setup().await;
    let token = cb.seed.token.clone();
    let mut rx = receiver().await;
    let path = format!("/v1/admin/accounts/{}/callback-secret", cb.seed.account_id);
    let (status, rotated) = cb.t.admin("POST", &path, None).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_eq!(rotated["accountId"], cb.seed.account_id.as_str());
    let secret = s(&rotated["secret"]);
    assert!(secret.starts_with("whsec_"));

    let (message_id, _) = cb
        .send(&token, "50755667702", json!({"callbackUrl": rx.url}))
        .await;
    cb.t.drain().await;
    cb.t.drain_callbacks().await;
    let got = rx.take();
    assert_eq!(
        types(&got),
        [
            "message.sent",
            "conversation.opened",
            "message.delivered",
            "message.read"
        ]
    );
    for r in &got {
        assert_signed(&secret, r);
        assert_eq!(r.message_id(), Some(message_id.as_str()));
    }

    // A message that fails: its failure, with the provider's error, then its conversation.
    let (failed_id, _) = cb
        .send(&token, "50755660000", json!({"callbackUrl": rx.url}))
        .await;
    cb.t.drain().await;
    cb.t.drain_callbacks().await;
    let got = rx.take();
    assert_eq!(types(&got), ["message.failed", "conversation.closed"]);
    assert_eq!(got[0].json["data"]["messageId"], failed_id.as_str());
    assert_eq!(got[0].json["data"]["status"], "failed");
    assert_eq!(got[0].json["data"]["error"]["code"], 131026);
    assert!(got[0].json["data"]["error"]["title"].is_string());
    assert_eq!(got[1].json["data"]["closeReason"], "first_message_failed");
    for r in &got {
        assert_signed(&secret, r);
    }

    // Rotating replaces the secret at once.
    let (_, rotated) = cb.t.admin("POST", &path, None).await;
    let new_secret = s(&rotated["secret"]);
    assert_ne!(new_secret, secret);
    cb.send(&token, "50755667703", json!({"callbackUrl": rx.url}))
        .await;
    cb.t.drain().await;
    cb.t.drain_callbacks().await;
    let got = rx.take();
    assert_eq!(got.len(), 4);
    for r in &got {
        assert_signed(&new_secret, r);
        assert_ne!(
            r.signature,
            expected_signature(&secret, &r.id, &r.timestamp, &r.body)
        );
    }

    let (status, body) =
        cb.t.admin("POST", "/v1/admin/accounts/acc_nope/callback-secret", None)
            .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["type"], "/problems/not-found");
}

both_databases!(an_endpoint_that_fails_twice_then_succeeds_is_delivered_with_three_attempts);
async fn an_endpoint_that_fails_twice_then_succeeds_is_delivered_with_three_attempts() {
    let cb = setup().await;
    let token = cb.seed.token.clone();
    let mut script = VecDeque::from([500, 500]);
    let mut rx = receiver_answering(move |_| script.pop_front().unwrap_or(200)).await;
    let endpoint = cb.register(&token, &rx.url, &["message.read"]).await;
    let endpoint_id = s(&endpoint["id"]);
    let secret = s(&endpoint["secret"]);
    cb.send(&token, "50755667704", json!({})).await;
    cb.t.drain().await;

    let mut ids = HashSet::new();
    for (attempt, answer) in [(1, 500), (2, 500), (3, 200)] {
        assert_eq!(cb.t.drain_callbacks().await, 1, "attempt {attempt}");
        let got = rx.take();
        assert_eq!(got.len(), 1, "attempt {attempt}");
        assert_eq!(got[0].answered, answer);
        assert_eq!(got[0].event_type(), "message.read");
        assert_signed(&secret, &got[0]);
        ids.insert(got[0].id.clone());
        let d = &cb.deliveries(&token, &endpoint_id).await[0];
        assert_eq!(d["attempts"], attempt, "{d}");
        assert_eq!(d["lastResponseStatus"], answer, "{d}");
        if answer == 500 {
            assert_eq!(d["status"], "pending", "{d}");
            assert!(d["nextAttemptAt"].is_string(), "{d}");
            assert!(d["deliveredAt"].is_null(), "{d}");
            assert!(d["lastError"].as_str().unwrap().contains("500"), "{d}");
        } else {
            assert_eq!(d["status"], "delivered", "{d}");
            assert!(d["nextAttemptAt"].is_null(), "{d}");
            assert!(d["deliveredAt"].is_string(), "{d}");
            assert!(d["lastError"].is_null(), "{d}");
        }
    }
    assert_eq!(ids.len(), 1, "every attempt carries the same webhook-id");
    assert_eq!(cb.t.drain_callbacks().await, 0);
    // The attempts are counted by result.
    let metrics =
        cb.t.client
            .get(format!("{}/metrics", cb.t.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    for line in [
        "plantilla_callback_deliveries_total{result=\"delivered\"} 1",
        "plantilla_callback_deliveries_total{result=\"retry\"} 2",
        "plantilla_callback_deliveries_total{result=\"failed\"} 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}:\n{metrics}");
    }
}

both_databases!(a_messages_later_events_wait_while_an_earlier_one_is_retried);
async fn a_messages_later_events_wait_while_an_earlier_one_is_retried() {
    let cb = setup().await;
    let token = cb.seed.token.clone();
    // The first event about 50755667711 is refused once; everything else is taken.
    let mut refused = false;
    let mut rx = receiver_answering(move |body| {
        if body["data"]["to"] == "50755667711" && !refused {
            refused = true;
            500
        } else {
            200
        }
    })
    .await;
    let endpoint = cb
        .register(
            &token,
            &rx.url,
            &["message.sent", "message.delivered", "message.read"],
        )
        .await;
    let endpoint_id = s(&endpoint["id"]);
    let (a, _) = cb.send(&token, "50755667711", json!({})).await;
    let (b, _) = cb.send(&token, "50755667712", json!({})).await;
    cb.t.drain().await;

    cb.t.drain_callbacks().await;
    let got = rx.take();
    let of = |got: &[Received], id: &str| -> Vec<(String, u16)> {
        got.iter()
            .filter(|r| r.message_id() == Some(id))
            .map(|r| (r.event_type().to_string(), r.answered))
            .collect()
    };
    let pairs = |list: &[(&str, u16)]| -> Vec<(String, u16)> {
        list.iter().map(|(t, s)| (t.to_string(), *s)).collect()
    };
    // A's later events wait behind its refused first one; B's are not held up by A.
    assert_eq!(of(&got, &a), pairs(&[("message.sent", 500)]));
    assert_eq!(
        of(&got, &b),
        pairs(&[
            ("message.sent", 200),
            ("message.delivered", 200),
            ("message.read", 200)
        ])
    );
    let deliveries = cb.deliveries(&token, &endpoint_id).await;
    let of_a: Vec<(String, String, i64)> = deliveries
        .iter()
        .filter(|d| d["messageId"] == a.as_str())
        .map(|d| {
            (
                s(&d["eventType"]),
                s(&d["status"]),
                d["attempts"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        of_a,
        [
            ("message.sent".into(), "pending".into(), 1),
            ("message.delivered".into(), "pending".into(), 0),
            ("message.read".into(), "pending".into(), 0)
        ]
    );
    // They wait for its retry: not due before it.
    let retry_at: Vec<&Value> = deliveries
        .iter()
        .filter(|d| d["messageId"] == a.as_str())
        .map(|d| &d["nextAttemptAt"])
        .collect();
    assert!(retry_at.iter().all(|at| *at == retry_at[0]), "{retry_at:?}");

    // The retry goes through, and only then the rest, in order.
    cb.t.drain_callbacks().await;
    let got = rx.take();
    assert_eq!(
        of(&got, &a),
        pairs(&[
            ("message.sent", 200),
            ("message.delivered", 200),
            ("message.read", 200)
        ])
    );
    assert!(of(&got, &b).is_empty());
    let deliveries = cb.deliveries(&token, &endpoint_id).await;
    assert!(deliveries.iter().all(|d| d["status"] == "delivered"));
}

both_databases!(a_dead_endpoint_does_not_delay_sending);
async fn a_dead_endpoint_does_not_delay_sending() {
    let cb = setup().await;
    let token = cb.seed.token.clone();
    // A port nothing listens on: connections are refused.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hooks", l.local_addr().unwrap())
    };
    let endpoint = cb.register(&token, &dead, &ALL_EVENTS).await;
    let endpoint_id = s(&endpoint["id"]);
    let mut ids = Vec::new();
    for to in ["50755667721", "50755667722", "50755667723"] {
        ids.push(cb.send(&token, to, json!({"callbackUrl": dead})).await.0);
    }
    cb.t.drain().await;
    for id in &ids {
        let (_, m, _) = cb
            .request("GET", &format!("/v1/messages/{id}"), &token, None)
            .await;
        assert_eq!(m["status"], "read", "{m}");
    }
    // Three streams per receiver (one per message), each trying its first event.
    assert_eq!(cb.t.drain_callbacks().await, 6);
    let deliveries = cb.deliveries(&token, &endpoint_id).await;
    assert_eq!(deliveries.len(), 12, "4 events for each of 3 messages");
    assert!(deliveries.iter().all(|d| d["status"] == "pending"));
    let tried: Vec<&Value> = deliveries.iter().filter(|d| d["attempts"] == 1).collect();
    assert_eq!(tried.len(), 3);
    for d in tried {
        assert_eq!(d["eventType"], "message.sent");
        assert!(d["lastResponseStatus"].is_null(), "{d}");
        assert!(
            d["lastError"]
                .as_str()
                .unwrap()
                .starts_with("could not connect"),
            "{d}"
        );
        assert!(d["nextAttemptAt"].is_string());
    }
}

both_databases!(a_hanging_endpoint_does_not_slow_the_running_dispatcher);
async fn a_hanging_endpoint_does_not_slow_the_running_dispatcher() {
    // An endpoint that accepts connections and never answers, with a long timeout.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hanging = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let t = spawn_app_dispatching_with(|c| {
        fast_callbacks(c);
        c.callback_timeout_ms = 60_000;
        c.callback_concurrency = 2;
    })
    .await;
    let seed = t.seed().await;
    let cb = Cb { t, seed };
    let token = cb.seed.token.clone();
    let endpoint = cb.register(&token, &hanging, &ALL_EVENTS).await;
    let mut events = cb.t.app().events.subscribe();
    let started = std::time::Instant::now();
    let mut ids = HashSet::new();
    for i in 0..5 {
        let to = format!("5075566773{i}");
        ids.insert(
            cb.send(&token, &to, json!({"callbackUrl": hanging}))
                .await
                .0,
        );
    }
    let mut read = HashSet::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while read.len() < ids.len() {
            if let Ok(Event::MessageStatus {
                message_id,
                status: MessageStatus::Read,
            }) = events.recv().await
            {
                read.insert(message_id);
            }
        }
    })
    .await
    .expect("every message reaches read while the endpoint hangs");
    assert_eq!(read, ids);
    assert!(started.elapsed() < Duration::from_secs(20));
    // Nothing was delivered, and at most the two allowed deliveries are in flight.
    let deliveries = cb.deliveries(&token, &s(&endpoint["id"])).await;
    assert_eq!(deliveries.len(), 20);
    assert!(deliveries.iter().all(|d| d["status"] == "pending"));
    let in_flight = deliveries.iter().filter(|d| d["attempts"] == 1).count();
    assert!(in_flight <= 2, "{in_flight}");
}

both_databases!(another_accounts_token_cannot_see_or_delete_an_endpoint);
async fn another_accounts_token_cannot_see_or_delete_an_endpoint() {
    let cb = setup().await;
    let token = cb.seed.token.clone();
    let mut rx = receiver().await;
    let endpoint = cb.register(&token, &rx.url, &ALL_EVENTS).await;
    let id = s(&endpoint["id"]);
    let other = cb.t.seed().await;

    for (method, path) in [
        ("GET", format!("/v1/webhook-endpoints/{id}")),
        ("DELETE", format!("/v1/webhook-endpoints/{id}")),
        ("GET", format!("/v1/webhook-endpoints/{id}/deliveries")),
    ] {
        let (status, body, ct) = cb.request(method, &path, &other.token, None).await;
        assert_problem(status, &body, &ct, StatusCode::NOT_FOUND, "not-found");
    }
    let (_, list, _) = cb
        .request("GET", "/v1/webhook-endpoints", &other.token, None)
        .await;
    assert_eq!(list["data"], json!([]));

    // The other account's messages are not reported to this account's endpoint.
    cb.send_template(&other.token, &other.template_id, "50755667741", json!({}))
        .await;
    cb.t.drain().await;
    assert_eq!(cb.t.drain_callbacks().await, 0);
    assert!(rx.take().is_empty());

    // The owner's API key sees it (endpoints are account-wide) and deletes it.
    let key =
        cb.t.create(
            &format!("/v1/admin/accounts/{}/api-keys", cb.seed.account_id),
            json!({"name": "crm"}),
        )
        .await;
    let key = s(&key["key"]);
    let (status, _, _) = cb
        .request("GET", &format!("/v1/webhook-endpoints/{id}"), &key, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = cb
        .request("DELETE", &format!("/v1/webhook-endpoints/{id}"), &key, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body, ct) = cb
        .request("GET", &format!("/v1/webhook-endpoints/{id}"), &token, None)
        .await;
    assert_problem(status, &body, &ct, StatusCode::NOT_FOUND, "not-found");
    // Nothing is queued for a deleted endpoint.
    cb.send(&token, "50755667742", json!({})).await;
    cb.t.drain().await;
    assert_eq!(cb.t.drain_callbacks().await, 0);
}

both_databases!(bad_registrations_are_problems_naming_their_fields);
async fn bad_registrations_are_problems_naming_their_fields() {
    let cb = setup().await;
    let token = cb.seed.token.clone();
    let (status, body, ct) = cb
        .request(
            "POST",
            "/v1/webhook-endpoints",
            &token,
            Some(json!({"url": "ftp://example.com/x",
                        "eventTypes": ["message.sent", "message.bogus", 3, "message.sent"],
                        "description": 7})),
        )
        .await;
    assert_problem(status, &body, &ct, StatusCode::BAD_REQUEST, "validation");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "url",
            "eventTypes[1]",
            "eventTypes[2]",
            "eventTypes[3]",
            "description"
        ],
        "{body}"
    );
    for (payload, field) in [
        (json!({"eventTypes": ["message.read"]}), "url"),
        (json!({"url": "https://example.com"}), "eventTypes"),
        (
            json!({"url": "https://example.com", "eventTypes": []}),
            "eventTypes",
        ),
        (
            json!({"url": "not a url", "eventTypes": ["message.read"]}),
            "url",
        ),
    ] {
        let (status, body, ct) = cb
            .request("POST", "/v1/webhook-endpoints", &token, Some(payload))
            .await;
        assert_problem(status, &body, &ct, StatusCode::BAD_REQUEST, "validation");
        assert_eq!(body["errors"][0]["field"], field, "{body}");
    }
    let r =
        cb.t.client
            .post(format!("{}/v1/webhook-endpoints", cb.t.base))
            .json(&json!({"url": "https://example.com", "eventTypes": ["message.read"]}))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (status, body, ct) = cb
        .request("GET", "/v1/webhook-endpoints", "pk_wrong", None)
        .await;
    assert_problem(status, &body, &ct, StatusCode::UNAUTHORIZED, "unauthorized");
}

both_databases!(closing_a_conversation_and_template_status_updates_are_reported);
async fn closing_a_conversation_and_template_status_updates_are_reported() {
    const META_SECRET: &str = "meta-app-secret";
    let cb = setup_with(|c| c.meta_app_secret = Some(Secret::new(META_SECRET))).await;
    let token = cb.seed.token.clone();
    let mut rx = receiver().await;
    let endpoint = cb
        .register(
            &token,
            &rx.url,
            &["conversation.closed", "template.status_changed"],
        )
        .await;
    let secret = s(&endpoint["secret"]);
    let (_, conversation_id) = cb.send(&token, "50755667751", json!({})).await;
    cb.t.drain().await;
    let (status, _, _) = cb
        .request(
            "POST",
            &format!("/v1/conversations/{conversation_id}/close"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Closing twice reports once.
    cb.request(
        "POST",
        &format!("/v1/conversations/{conversation_id}/close"),
        &token,
        None,
    )
    .await;
    cb.t.drain_callbacks().await;
    let closed = rx.take();
    assert_eq!(types(&closed), ["conversation.closed"]);
    assert_eq!(
        closed[0].json["data"],
        json!({"conversationId": conversation_id, "channelId": cb.seed.channel_id,
               "to": "50755667751", "status": "closed", "closeReason": "operator",
               "messageId": null})
    );

    // Meta pauses the template (a signed webhook for the channel's WABA).
    let (status, _) =
        cb.t.admin(
            "PATCH",
            &format!("/v1/admin/channels/{}", cb.seed.channel_id),
            Some(json!({"wabaId": "WABA1"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let payload = json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA1",
        "changes": [{"field": "message_template_status_update", "value": {
            "event": "PAUSED", "message_template_id": "app_1",
            "message_template_name": "order_update", "message_template_language": "es"}}]}]})
    .to_string();
    for _ in 0..2 {
        // The second, identical update changes nothing and reports nothing.
        let r =
            cb.t.client
                .post(format!("{}/webhooks/whatsapp", cb.t.base))
                .header(
                    "X-Hub-Signature-256",
                    format!(
                        "sha256={}",
                        hex::encode(hmac_sha256(META_SECRET.as_bytes(), payload.as_bytes()))
                    ),
                )
                .header("Content-Type", "application/json")
                .body(payload.clone())
                .send()
                .await
                .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }

    cb.t.drain_callbacks().await;
    let got = rx.take();
    assert_eq!(types(&got), ["template.status_changed"]);
    for r in closed.iter().chain(&got) {
        assert_signed(&secret, r);
    }
    assert_eq!(
        got[0].json["data"],
        json!({"templateId": cb.seed.template_id, "name": "order_update", "language": "es",
               "status": "PAUSED", "previousStatus": "APPROVED"})
    );
}

both_databases!(a_send_the_provider_refuses_is_reported_failed);
async fn a_send_the_provider_refuses_is_reported_failed() {
    let fake = FakeGraph::start(FakeGraphConfig::default().with_phone("1000001", "TOKEN1")).await;
    fake.add_rule(Rule::always(Action::error(132001)));
    let base = fake.base_url().to_string();
    let t = spawn_app_with(|c| {
        fast_callbacks(c);
        c.graph_base_url = base;
    })
    .await;
    let account = t
        .create("/v1/admin/accounts", json!({"name": "Acme"}))
        .await;
    let channel = t
        .create(
            "/v1/admin/channels",
            json!({"accountId": account["id"], "name": "C", "provider": "cloud",
                   "phoneNumberId": "1000001", "accessToken": "TOKEN1"}),
        )
        .await;
    let template = t
        .create(
            "/v1/admin/templates",
            json!({"accountId": account["id"], "name": "hola", "language": "es",
                   "appId": "1", "message": "Hola {{name}}, pedido {{order}}"}),
        )
        .await;
    let seed = Seed {
        account_id: s(&account["id"]),
        channel_id: s(&channel["id"]),
        token: s(&channel["publicToken"]),
        group_id: String::new(),
        template_id: s(&template["id"]),
    };
    let cb = Cb { t, seed };
    let token = cb.seed.token.clone();
    let mut rx = receiver().await;
    let endpoint = cb.register(&token, &rx.url, &ALL_EVENTS).await;
    let (message_id, conversation_id) = cb.send(&token, "50755667761", json!({})).await;
    cb.t.drain().await;
    cb.t.drain_callbacks().await;
    let got = rx.take();
    assert_eq!(types(&got), ["message.failed", "conversation.closed"]);
    for r in &got {
        assert_signed(&s(&endpoint["secret"]), r);
    }
    let data = &got[0].json["data"];
    assert_eq!(data["messageId"], message_id.as_str());
    assert_eq!(data["status"], "failed");
    assert_eq!(data["error"]["code"], 132001, "{data}");
    assert_eq!(
        got[1].json["data"]["conversationId"],
        conversation_id.as_str()
    );
    assert_eq!(got[1].json["data"]["closeReason"], "first_message_failed");
}

both_databases!(concurrent_claims_never_overlap_and_take_one_delivery_per_stream);
async fn concurrent_claims_never_overlap_and_take_one_delivery_per_stream() {
    let cb = setup().await;
    let token = cb.seed.token.clone();
    let rx = receiver().await;
    cb.register(&token, &rx.url, &ALL_EVENTS).await;
    for i in 0..5 {
        cb.send(&token, &format!("5075566777{i}"), json!({})).await;
    }
    cb.t.drain().await;
    // 5 messages × 4 events, in 5 streams: only each stream's oldest may be claimed.
    let store = cb.t.app().store.clone();
    let now = plantilla::now_ms();
    let mut claims = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let store = store.clone();
        claims.spawn(async move { store.claim_callbacks(now, 100, 60_000).await.unwrap() });
    }
    let mut claimed = Vec::new();
    while let Some(batch) = claims.join_next().await {
        claimed.extend(batch.unwrap());
    }
    assert_eq!(claimed.len(), 5, "{claimed:?}");
    let streams: HashSet<Option<String>> = claimed
        .iter()
        .map(|c| c.delivery.message_id.clone())
        .collect();
    assert_eq!(streams.len(), 5);
    assert!(
        claimed
            .iter()
            .all(|c| c.delivery.event_type == "message.sent"
                && c.delivery.attempts == 1
                && c.secret.is_some())
    );
    // Leased: nothing more until the lease lapses, then the same heads again.
    assert!(
        store
            .claim_callbacks(now, 100, 60_000)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store
        .claim_callbacks(now + 60_000, 100, 60_000)
        .await
        .unwrap();
    assert_eq!(again.len(), 5);
    assert!(again.iter().all(|c| c.delivery.attempts == 2));
    // The first claim's outcome comes too late: the second claim owns the delivery.
    let stale = plantilla::store::CallbackOutcome {
        id: again[0].delivery.id.clone(),
        attempt: 1,
        now,
        result: plantilla::store::CallbackResult::Delivered {
            response_status: 200,
        },
    };
    assert!(!store.finish_callback(&stale).await.unwrap());
    let current = plantilla::store::CallbackOutcome {
        attempt: 2,
        ..stale
    };
    assert!(store.finish_callback(&current).await.unwrap());
}

// --- Idempotent registration ---------------------------------------------------------------

fn endpoint_body(url: &str) -> Value {
    json!({"url": url, "eventTypes": ["message.sent", "message.read"], "description": "CRM"})
}

both_databases!(a_retried_registration_with_its_idempotency_key_gets_the_same_endpoint_and_secret);
async fn a_retried_registration_with_its_idempotency_key_gets_the_same_endpoint_and_secret() {
    let cb = setup().await;
    let token = cb.seed.token.clone();
    let mut rx = receiver().await;
    let (s1, first, _) = cb
        .register_keyed(&token, "crm-hook-1", endpoint_body(&rx.url))
        .await;
    assert_eq!(s1, StatusCode::CREATED, "{first}");
    assert!(s(&first["secret"]).starts_with("whsec_"), "{first}");
    let (s2, again, _) = cb
        .register_keyed(&token, "crm-hook-1", endpoint_body(&rx.url))
        .await;
    assert_eq!(
        (s2, &again),
        (StatusCode::CREATED, &first),
        "the first answer: same id, same secret"
    );
    assert_eq!(cb.endpoint_count().await, 1);

    // The key keeps the endpoint's id, never its secret.
    let secret = s(&first["secret"]);
    let outcomes =
        cb.t.sql_strings("SELECT outcome FROM idempotency_keys")
            .await;
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert!(
        outcomes[0].contains(s(&first["id"]).as_str()),
        "{outcomes:?}"
    );
    let key_part = secret.trim_start_matches("whsec_");
    assert!(
        !outcomes[0].contains("whsec_") && !outcomes[0].contains(key_part),
        "a secret in idempotency_keys: {outcomes:?}"
    );

    // The replayed secret is the one that signs the endpoint's deliveries.
    cb.send(&token, "50755667790", json!({})).await;
    cb.t.drain().await;
    cb.t.drain_callbacks().await;
    let got = rx.take();
    assert!(!got.is_empty(), "the send's events are delivered");
    for r in &got {
        assert_signed(&secret, r);
    }

    // The same key with another body: a problem, and nothing registered.
    for other in [
        endpoint_body("https://example.com/b"),
        json!({"url": rx.url, "eventTypes": ["message.sent"]}),
    ] {
        let (status, body, ct) = cb.register_keyed(&token, "crm-hook-1", other).await;
        assert_problem(
            status,
            &body,
            &ct,
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
        );
        assert!(body.get("secret").is_none(), "{body}");
    }
    assert_eq!(cb.endpoint_count().await, 1);

    // A malformed key is refused before anything is registered.
    for bad in ["has space", ""] {
        let (status, body, ct) = cb
            .register_keyed(&token, bad, endpoint_body("https://example.com/c"))
            .await;
        assert_problem(
            status,
            &body,
            &ct,
            StatusCode::BAD_REQUEST,
            "idempotency-key-invalid",
        );
    }
    let long = "k".repeat(256);
    let (status, body, ct) = cb
        .register_keyed(&token, &long, endpoint_body("https://example.com/c"))
        .await;
    assert_problem(
        status,
        &body,
        &ct,
        StatusCode::BAD_REQUEST,
        "idempotency-key-invalid",
    );
    assert_eq!(cb.endpoint_count().await, 1);

    // A bad body with a used key is a validation problem; the key still replays after it.
    let (status, body, ct) = cb
        .register_keyed(
            &token,
            "crm-hook-1",
            json!({"url": "ftp://x", "eventTypes": []}),
        )
        .await;
    assert_problem(status, &body, &ct, StatusCode::BAD_REQUEST, "validation");
    let (status, again, _) = cb
        .register_keyed(&token, "crm-hook-1", endpoint_body(&rx.url))
        .await;
    assert_eq!((status, &again), (StatusCode::CREATED, &first));

    // Without a key, every registration is a new endpoint, as before.
    cb.register(&token, "https://example.com/a", &["message.sent"])
        .await;
    cb.register(&token, "https://example.com/a", &["message.sent"])
        .await;
    assert_eq!(cb.endpoint_count().await, 3);
}

both_databases!(a_retry_after_the_endpoint_was_deleted_registers_nothing);
async fn a_retry_after_the_endpoint_was_deleted_registers_nothing() {
    let cb = setup().await;
    let token = cb.seed.token.clone();
    let (status, first, _) = cb
        .register_keyed(&token, "crm-hook-2", endpoint_body("https://example.com/a"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let id = s(&first["id"]);
    let (status, _, _) = cb
        .request(
            "DELETE",
            &format!("/v1/webhook-endpoints/{id}"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body, ct) = cb
        .register_keyed(&token, "crm-hook-2", endpoint_body("https://example.com/a"))
        .await;
    assert_problem(status, &body, &ct, StatusCode::NOT_FOUND, "not-found");
    assert!(s(&body["detail"]).contains(&id), "{body}");
    assert_eq!(cb.endpoint_count().await, 0);
    // Another body with that key is still a reuse; a new key registers again.
    let (status, body, ct) = cb
        .register_keyed(&token, "crm-hook-2", endpoint_body("https://example.com/b"))
        .await;
    assert_problem(
        status,
        &body,
        &ct,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-reused",
    );
    let (status, body, _) = cb
        .register_keyed(&token, "crm-hook-3", endpoint_body("https://example.com/a"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_ne!(body["id"], first["id"]);
    assert_eq!(cb.endpoint_count().await, 1);
}

both_databases!(an_expired_idempotency_key_registers_a_new_endpoint);
async fn an_expired_idempotency_key_registers_a_new_endpoint() {
    let cb = setup().await;
    let token = cb.seed.token.clone();
    let (_, first, _) = cb
        .register_keyed(&token, "crm-hook-4", endpoint_body("https://example.com/a"))
        .await;
    cb.t.sql("UPDATE idempotency_keys SET expires_at = 0").await;
    // Expired: forgotten in the same transaction, so even another body is a new request.
    let (status, second, _) = cb
        .register_keyed(&token, "crm-hook-4", endpoint_body("https://example.com/b"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_ne!(second["id"], first["id"]);
    assert_ne!(second["secret"], first["secret"]);
    assert_eq!(cb.endpoint_count().await, 2);
    let (status, again, _) = cb
        .register_keyed(&token, "crm-hook-4", endpoint_body("https://example.com/b"))
        .await;
    assert_eq!((status, &again), (StatusCode::CREATED, &second));
    assert_eq!(
        cb.t.sql_i64("SELECT count(*) FROM idempotency_keys").await,
        1
    );
}

both_databases!(
    concurrent_registrations_with_one_key_make_exactly_one_endpoint,
    flavor = "multi_thread",
    worker_threads = 4
);
async fn concurrent_registrations_with_one_key_make_exactly_one_endpoint() {
    let cb = std::sync::Arc::new(setup().await);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let cb = cb.clone();
        tasks.spawn(async move {
            cb.register_keyed(
                &cb.seed.token,
                "crm-hook-dup",
                endpoint_body("https://example.com/a"),
            )
            .await
        });
    }
    let mut bodies = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let (status, body, _) = r.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
        bodies.push(body);
    }
    assert!(
        bodies.iter().all(|b| b == &bodies[0]),
        "every duplicate got the first answer: {bodies:?}"
    );
    assert!(s(&bodies[0]["secret"]).starts_with("whsec_"));
    assert_eq!(cb.endpoint_count().await, 1);
    assert_eq!(
        cb.t.sql_i64("SELECT count(*) FROM idempotency_keys").await,
        1
    );
}

both_databases!(idempotency_keys_of_different_callers_are_independent);
async fn idempotency_keys_of_different_callers_are_independent() {
    let cb = setup().await;
    let other = cb.t.seed().await;
    let key =
        cb.t.create(
            &format!("/v1/admin/accounts/{}/api-keys", cb.seed.account_id),
            json!({"name": "crm"}),
        )
        .await;
    let api_key = s(&key["key"]);
    let body = endpoint_body("https://example.com/a");
    // The same key and body from three callers: this account's channel token and API key,
    // and another account's channel token.
    let mut created = Vec::new();
    for token in [&cb.seed.token, &api_key, &other.token] {
        let (status, r, _) = cb.register_keyed(token, "shared-key", body.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{r}");
        created.push(r);
    }
    let ids: HashSet<&str> = created.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let secrets: HashSet<&str> = created
        .iter()
        .map(|r| r["secret"].as_str().unwrap())
        .collect();
    assert_eq!((ids.len(), secrets.len()), (3, 3), "{created:?}");
    assert_eq!(cb.endpoint_count().await, 3);
    // Each caller's retry answers its own endpoint; another body is a reuse for that caller
    // only.
    for (token, first) in [&cb.seed.token, &api_key, &other.token]
        .into_iter()
        .zip(&created)
    {
        let (status, again, _) = cb.register_keyed(token, "shared-key", body.clone()).await;
        assert_eq!((status, &again), (StatusCode::CREATED, first));
    }
    let (status, r, ct) = cb
        .register_keyed(
            &other.token,
            "shared-key",
            endpoint_body("https://example.com/b"),
        )
        .await;
    assert_problem(
        status,
        &r,
        &ct,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-reused",
    );
    // Each account sees its own endpoints only.
    let (_, theirs, _) = cb
        .request("GET", "/v1/webhook-endpoints", &other.token, None)
        .await;
    assert_eq!(theirs["data"].as_array().unwrap().len(), 1, "{theirs}");
    assert_eq!(theirs["data"][0]["id"], created[2]["id"]);
    assert_eq!(cb.endpoint_count().await, 3);
}
