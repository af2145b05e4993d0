// Inbound messages (issue 15, items 1 and 7): what customers write or click, sent by the fake
// Graph API as Meta's signed `messages` webhooks, is stored once per wamid on its
// conversation, forwarded to webhook endpoints as `message.received` (Standard Webhooks
// signatures, checked here independently), listed with the outbound messages by
// `GET /v1/conversations/{id}/messages`; senders and recipients known only by a
// business-scoped user id are accepted and the id is kept on the contact.

use super::common;
use super::suppressions::opted_out_body;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::*;
use fake_graph::{FakeGraph, FakeGraphConfig, FakeTemplate, InboundEvent, StatusEvent};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

const PN: &str = "1000001";
const TOKEN: &str = "EAAG-test-token";
const APP_SECRET: &str = "app-secret-for-tests";
const PHONE: &str = "50755667701";
const USER_ID: &str = "US.13491208655302741918";

struct Inbound {
    t: TestApp,
    fake: FakeGraph,
    seed: Seed,
}

async fn spawn() -> Inbound {
    let fake = FakeGraph::start(
        FakeGraphConfig {
            app_secret: APP_SECRET.into(),
            status_delay: Duration::ZERO,
            ..FakeGraphConfig::default()
        }
        .with_phone(PN, TOKEN)
        .with_template(FakeTemplate::new(
            "order_update",
            "es",
            "Hola {{name}}, tu pedido {{order}} va en camino",
        ))
        .with_template(FakeTemplate::new(
            "promo",
            "es",
            "Hola {{name}}, 20% de descuento hoy",
        )),
    )
    .await;
    let base = fake.base_url().to_string();
    let t = spawn_app_with(|c| {
        c.graph_base_url = base;
        c.meta_app_secret = Some(plantilla::config::Secret::new(APP_SECRET));
        c.callback_retry_initial_ms = 1;
        c.callback_retry_max_ms = 1;
    })
    .await;
    fake.set_webhook_url(Some(format!("{}/webhooks/whatsapp", t.base)));
    let template = json!({"name": "order_update", "language": "es", "appId": "1001",
                          "message": "Hola {{name}}, tu pedido {{order}} va en camino"});
    let seed = seed_cloud_channel(&t, PN, TOKEN, Some(template)).await;
    Inbound { t, fake, seed }
}

impl Inbound {
    /// Sends the template to `phone` and lets its statuses arrive; (conversation, message,
    /// wamid).
    async fn send(&self, phone: &str) -> (String, String, String) {
        let r = self
            .t
            .send_old(&self.seed.token, send_body(&self.seed, phone))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let conversation = s(&r.json["data"]["conversation_id"]);
        let message = s(&r.json["data"]["message_id"]);
        self.settle().await;
        let wamid = self
            .fake
            .sent()
            .into_iter()
            .find(|m| m.biz_opaque_callback_data.as_deref() == Some(message.as_str()))
            .expect("the fake got the send")
            .wamid;
        (conversation, message, wamid)
    }

    async fn settle(&self) {
        self.t.drain().await;
        assert!(
            self.fake.wait_webhooks_idle(Duration::from_secs(10)).await,
            "status webhooks delivered"
        );
    }

    async fn emit(&self, event: &InboundEvent) {
        assert!(self.fake.emit_inbound(PN, event).await, "webhook accepted");
    }

    async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        let r = self
            .t
            .client
            .get(format!("{}{path}", self.t.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Registers an endpoint for `types`; its secret.
    async fn register(&self, url: &str, types: &[&str]) -> String {
        let r = self
            .t
            .client
            .post(format!("{}/v1/webhook-endpoints", self.t.base))
            .bearer_auth(&self.seed.token)
            .json(&json!({"url": url, "eventTypes": types}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json().await.unwrap();
        s(&body["secret"])
    }

    async fn inbound_count(&self) -> i64 {
        self.t
            .sql_i64("SELECT count(*) FROM inbound_messages")
            .await
    }
}

// --- A receiver of callbacks ---------------------------------------------------------------

#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
    json: Value,
}

#[derive(Clone, Default)]
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let sink = got.clone();
        let handler = move |headers: HeaderMap, body: Bytes| {
            let sink = sink.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .map(|v| v.to_str().unwrap().to_string())
                        .unwrap_or_default()
                };
                let body = String::from_utf8(body.to_vec()).unwrap();
                sink.lock().unwrap().push(Received {
                    id: header("webhook-id"),
                    timestamp: header("webhook-timestamp"),
                    signature: header("webhook-signature"),
                    json: serde_json::from_str(&body).unwrap_or(Value::Null),
                    body,
                });
                "ok"
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = axum::Router::new().fallback(handler);
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Receiver {
            url: format!("http://{addr}/hooks"),
            got,
        }
    }

    fn take(&self) -> Vec<Received> {
        std::mem::take(&mut *self.got.lock().unwrap())
    }
}

/// Standard Webhooks: `v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` keyed with the
/// bytes after `whsec_`.
fn assert_signed(secret: &str, r: &Received) {
    let key = BASE64
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", r.id, r.timestamp, r.body).as_bytes());
    let expected = format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()));
    assert!(
        r.signature.split(' ').any(|s| s == expected),
        "{} is not signed {expected}",
        r.body
    );
    let ts: i64 = r.timestamp.parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - ts).abs() < 300);
}

// --- Tests ---------------------------------------------------------------------------------

both_databases!(an_inbound_text_and_a_quick_reply_click_reach_an_endpoint_as_message_received);
async fn an_inbound_text_and_a_quick_reply_click_reach_an_endpoint_as_message_received() {
    let c = spawn().await;
    let rx = Receiver::start().await;
    let secret = c.register(&rx.url, &["message.received"]).await;
    let (conversation, message, wamid) = c.send(PHONE).await;
    c.t.drain_callbacks().await;
    assert!(rx.take().is_empty(), "only message.received is subscribed");

    c.emit(&InboundEvent::text(PHONE, "hola, ¿cuándo llega?").with_profile("Ana María", None))
        .await;
    c.emit(&InboundEvent::button(
        PHONE,
        &wamid,
        "TRACK_ORDER",
        "Track my order",
    ))
    .await;
    c.t.drain_callbacks().await;
    let got = rx.take();
    assert_eq!(got.len(), 2, "{got:?}");
    for r in &got {
        assert_signed(&secret, r);
        assert_eq!(r.json["type"], "message.received", "{}", r.body);
        assert!(r.json["timestamp"].is_string());
    }

    let text = &got[0].json["data"];
    assert!(s(&text["id"]).starts_with("in_"), "{text}");
    assert_eq!(text["channelId"], json!(c.seed.channel_id));
    assert_eq!(text["conversationId"], json!(conversation));
    assert_eq!(text["from"], PHONE);
    assert_eq!(text["contactName"], "Ana María");
    assert_eq!(text["type"], "text");
    assert_eq!(text["text"], "hola, ¿cuándo llega?");
    assert_eq!(text["button"], Value::Null);
    assert_eq!(text["replyTo"], Value::Null);
    assert!(text["timestamp"].is_string(), "{text}");

    let click = &got[1].json["data"];
    assert_eq!(click["type"], "button");
    assert_eq!(
        click["button"],
        json!({"payload": "TRACK_ORDER", "text": "Track my order"})
    );
    assert_eq!(click["text"], Value::Null);
    assert_eq!(
        click["replyTo"],
        json!(message),
        "context.id is our message's wamid"
    );
    assert_eq!(click["conversationId"], json!(conversation));
    assert_ne!(click["id"], text["id"]);

    // A reply to a wamid plantilla never sent has no replyTo.
    c.emit(&InboundEvent::text(PHONE, "?").with_context("wamid.someone-else"))
        .await;
    c.t.drain_callbacks().await;
    let got = rx.take();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json["data"]["replyTo"], Value::Null);
    assert_eq!(got[0].json["data"]["contextId"], "wamid.someone-else");
}

both_databases!(stop_by_whatsapp_refuses_marketing_keeps_utility_and_start_lets_it_through);
/// Issue 15 items 1 and 2 together: what the customer writes through Meta's webhook moves
/// the number on and off the suppression list, and MARKETING sends follow.
async fn stop_by_whatsapp_refuses_marketing_keeps_utility_and_start_lets_it_through() {
    let c = spawn().await;
    let promo = s(&c
        .t
        .create(
            "/v1/admin/templates",
            json!({"accountId": c.seed.account_id, "name": "promo", "language": "es",
                   "category": "MARKETING", "status": "APPROVED", "appId": "1002",
                   "message": "Hola {{name}}, 20% de descuento hoy"}),
        )
        .await["id"]);
    let promo_body = |phone: &str| {
        json!({"templateId": promo, "phoneNumber": phone, "clientName": "Ana",
               "params": {"name": "Ana"}})
    };
    let rx = Receiver::start().await;
    let secret = c
        .register(&rx.url, &["contact.opted_out", "contact.opted_in"])
        .await;
    // An open conversation with the number, then the customer writes STOP.
    c.send(PHONE).await;
    c.emit(&InboundEvent::text(PHONE, "  Stop! ")).await;
    c.t.drain_callbacks().await;
    let got = rx.take();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_signed(&secret, &got[0]);
    assert_eq!(got[0].json["type"], "contact.opted_out");
    assert_eq!(got[0].json["data"]["phoneNumber"], PHONE);
    assert_eq!(got[0].json["data"]["reason"], "keyword");
    assert_eq!(got[0].json["data"]["channelId"], json!(c.seed.channel_id));

    let messages = c.t.sql_i64("SELECT count(*) FROM messages").await;
    let r = c.t.send_old(&c.seed.token, promo_body(PHONE)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json, opted_out_body());
    let r = c.t.send_new(&c.seed.token, promo_body(PHONE)).await;
    assert_eq!(r.json, opted_out_body());
    assert_eq!(
        c.t.sql_i64("SELECT count(*) FROM messages").await,
        messages,
        "nothing queued"
    );
    // A utility template still goes.
    let r = c.t.send_old(&c.seed.token, send_body(&c.seed, PHONE)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // START: off the list, marketing goes again.
    c.emit(&InboundEvent::text(PHONE, "start")).await;
    c.t.drain_callbacks().await;
    let got = rx.take();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].json["type"], "contact.opted_in");
    assert_eq!(got[0].json["data"]["phoneNumber"], PHONE);
    let r = c.t.send_old(&c.seed.token, promo_body(PHONE)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let promo_message = s(&r.json["data"]["message_id"]);
    c.settle().await;

    // Meta's "Stop promotions" button on the marketing template: reason `button`.
    let wamid = c
        .fake
        .sent()
        .into_iter()
        .find(|m| m.biz_opaque_callback_data.as_deref() == Some(promo_message.as_str()))
        .expect("the fake got the promo")
        .wamid;
    c.emit(&InboundEvent::button(PHONE, &wamid, "", "Stop promotions"))
        .await;
    c.t.drain_callbacks().await;
    let got = rx.take();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].json["type"], "contact.opted_out");
    assert_eq!(got[0].json["data"]["reason"], "button");
    let r = c.t.send_old(&c.seed.token, promo_body(PHONE)).await;
    assert_eq!(r.json, opted_out_body());

    // A sender known only by a user id no contact has: no number to suppress, no event.
    c.emit(&InboundEvent::text_from_user_id("US.999", "STOP"))
        .await;
    c.t.drain_callbacks().await;
    assert!(rx.take().is_empty());
}

both_databases!(a_duplicated_inbound_webhook_is_stored_and_forwarded_once);
async fn a_duplicated_inbound_webhook_is_stored_and_forwarded_once() {
    let c = spawn().await;
    let rx = Receiver::start().await;
    c.register(&rx.url, &["message.received"]).await;
    let (conversation, _, _) = c.send(PHONE).await;
    let event = InboundEvent::text(PHONE, "hola");
    c.emit(&event).await;
    c.emit(&event).await;
    // Meta's retries may also race each other.
    let (a, b) = tokio::join!(
        c.fake.emit_inbound(PN, &event),
        c.fake.emit_inbound(PN, &event)
    );
    assert!(a && b);
    assert_eq!(c.inbound_count().await, 1);
    c.t.drain_callbacks().await;
    c.t.drain_callbacks().await;
    let got = rx.take();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].json["data"]["conversationId"], json!(conversation));
    // A new wamid is a new message.
    c.emit(&InboundEvent::text(PHONE, "otra")).await;
    assert_eq!(c.inbound_count().await, 2);
}

both_databases!(a_conversations_messages_list_both_directions_in_order_paged);
async fn a_conversations_messages_list_both_directions_in_order_paged() {
    let c = spawn().await;
    let (conversation, message, wamid) = c.send(PHONE).await;
    c.emit(&InboundEvent::text(PHONE, "primero")).await;
    c.emit(&InboundEvent::button(PHONE, &wamid, "YES", "Sí"))
        .await;
    let path = format!("/v1/conversations/{conversation}/messages");

    let (status, all) = c.get(&c.seed.token, &path).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let items = all["data"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{all}");
    assert_eq!(items[0]["direction"], "outbound");
    assert_eq!(items[0]["id"], json!(message));
    assert_eq!(items[0]["templateId"], json!(c.seed.template_id));
    assert_eq!(items[1]["direction"], "inbound");
    assert_eq!(items[1]["text"], "primero");
    assert_eq!(items[2]["direction"], "inbound");
    assert_eq!(items[2]["button"]["payload"], "YES");
    assert_eq!(items[2]["replyTo"], json!(message));
    assert_eq!(all["nextCursor"], Value::Null);
    // Inbound items have the fields the OpenAPI document declares (the conformance test
    // checks the outbound ones), and every required one.
    let doc = plantilla::http::openapi::document();
    let schema = &doc["components"]["schemas"]["InboundMessage"];
    for item in &items[1..] {
        let fields = item.as_object().unwrap();
        for key in fields.keys() {
            assert!(
                schema["properties"].get(key).is_some(),
                "{key} undocumented"
            );
        }
        for key in schema["required"].as_array().unwrap() {
            assert!(fields.contains_key(key.as_str().unwrap()), "{key} missing");
        }
    }

    // Pages of two: the same three, in the same order.
    let (status, first) = c.get(&c.seed.token, &format!("{path}?limit=2")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    let cursor = s(&first["nextCursor"]);
    let (status, second) = c
        .get(&c.seed.token, &format!("{path}?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let ids: Vec<Value> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["data"].as_array().unwrap())
        .map(|i| i["id"].clone())
        .collect();
    let all_ids: Vec<Value> = items.iter().map(|i| i["id"].clone()).collect();
    assert_eq!(ids, all_ids);
    assert_eq!(second["nextCursor"], Value::Null);

    // Bad paging is refused, naming the parameter.
    let (status, bad) = c.get(&c.seed.token, &format!("{path}?limit=0")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert!(bad.to_string().contains("limit"), "{bad}");
    let (status, bad) = c.get(&c.seed.token, &format!("{path}?cursor=zz")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");

    // Another tenant sees no such conversation; nor does an unknown id exist.
    let other =
        c.t.create(
            "/v1/admin/accounts",
            json!({"name": "Other", "conversationLimit": 10}),
        )
        .await;
    let other_channel =
        c.t.create(
            "/v1/admin/channels",
            json!({"accountId": other["id"], "name": "Theirs", "provider": "sandbox"}),
        )
        .await;
    let (status, body) = c.get(&s(&other_channel["publicToken"]), &path).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = c
        .get(&c.seed.token, "/v1/conversations/conv_nope/messages")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let r =
        c.t.client
            .get(format!("{}{path}", c.t.base))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

both_databases!(an_inbound_and_a_status_known_only_by_user_id_are_accepted_and_kept_on_the_contact);
async fn an_inbound_and_a_status_known_only_by_user_id_are_accepted_and_kept_on_the_contact() {
    let c = spawn().await;
    let rx = Receiver::start().await;
    c.register(&rx.url, &["message.received"]).await;
    c.fake.set_status_lifecycle(false, false);
    let (conversation, message, wamid) = c.send(PHONE).await;
    assert_eq!(c.t.message(&message).await["status"], "sent");

    // A status naming the recipient only by user id still applies to its message (matched by
    // wamid), and the user id is kept on the contact it was sent to.
    let status = c.fake.statuses_payload(
        PN,
        &[StatusEvent::new(&wamid, "delivered", "").with_recipient_user_id(USER_ID)],
    );
    assert!(
        status["entry"][0]["changes"][0]["value"]["statuses"][0]
            .get("recipient_id")
            .is_none()
    );
    assert_eq!(c.fake.post_webhook(&status).await, StatusCode::OK);
    assert_eq!(c.t.message(&message).await["status"], "delivered");
    assert_eq!(
        c.t.sql_strings(&format!(
            "SELECT user_id FROM contacts WHERE phone_number = '{PHONE}'"
        ))
        .await,
        vec![USER_ID.to_string()]
    );
    let (_, view) = c
        .get(&c.seed.token, &format!("/v1/conversations/{conversation}"))
        .await;
    assert_eq!(view["userId"], USER_ID, "{view}");

    // An inbound with only `from_user_id` (no `from`, no `wa_id`) joins that contact's
    // conversation.
    c.emit(
        &InboundEvent::text_from_user_id(USER_ID, "hola").with_profile("Bob", Some("@bob".into())),
    )
    .await;
    c.t.drain_callbacks().await;
    let got = rx.take();
    assert_eq!(got.len(), 1);
    let data = &got[0].json["data"];
    assert_eq!(data["userId"], USER_ID);
    assert_eq!(data["from"], PHONE, "the number known for this user id");
    assert_eq!(data["conversationId"], json!(conversation));
    assert_eq!(data["text"], "hola");

    // A user id nobody has is still stored and forwarded, with no conversation.
    let stranger = "BR.1502576394655843";
    c.emit(&InboundEvent::text_from_user_id(stranger, "oi"))
        .await;
    c.t.drain_callbacks().await;
    let got = rx.take();
    assert_eq!(got.len(), 1);
    let data = &got[0].json["data"];
    assert_eq!(data["userId"], stranger);
    assert_eq!(data["from"], Value::Null);
    assert_eq!(data["conversationId"], Value::Null);
    assert_eq!(c.inbound_count().await, 2);

    // An inbound giving both keeps the user id on the number's contact.
    c.emit(&InboundEvent::text("50755667702", "hey").with_user_id("PA.777"))
        .await;
    assert_eq!(
        c.t.sql_strings("SELECT user_id FROM contacts WHERE phone_number = '50755667702'")
            .await,
        vec!["PA.777".to_string()]
    );
}

both_databases!(unknown_inbound_types_are_kept_raw_and_media_is_typed);
async fn unknown_inbound_types_are_kept_raw_and_media_is_typed() {
    let c = spawn().await;
    let rx = Receiver::start().await;
    c.register(&rx.url, &["message.received"]).await;
    c.send(PHONE).await;
    c.emit(&InboundEvent::new(
        PHONE,
        "order",
        json!({"catalog_id": "CAT-1", "product_items": [{"product_retailer_id": "SKU-9", "quantity": 2}]}),
    ))
    .await;
    c.emit(&InboundEvent::new(
        PHONE,
        "image",
        json!({"id": "MEDIA-1", "mime_type": "image/jpeg", "sha256": "abc", "caption": "la caja"}),
    ))
    .await;
    c.emit(&InboundEvent::new(
        PHONE,
        "interactive",
        json!({"type": "list_reply", "list_reply": {"id": "slot-2", "title": "Martes", "description": "tarde"}}),
    ))
    .await;
    c.emit(&InboundEvent::new(
        PHONE,
        "reaction",
        json!({"message_id": "wamid.x", "emoji": "👍"}),
    ))
    .await;
    c.emit(&InboundEvent::new(
        PHONE,
        "location",
        json!({"latitude": 8.95, "longitude": -79.53, "name": "Casco Viejo"}),
    ))
    .await;
    c.t.drain_callbacks().await;
    let got = rx.take();
    assert_eq!(got.len(), 5);
    let order = &got[0].json["data"];
    assert_eq!(order["type"], "order");
    assert_eq!(order["raw"]["order"]["catalog_id"], "CAT-1");
    assert_eq!(order["raw"]["order"]["product_items"][0]["quantity"], 2);
    assert_eq!(
        c.t.sql_strings("SELECT raw FROM inbound_messages WHERE type = 'order'")
            .await
            .len(),
        1
    );
    let image = &got[1].json["data"];
    assert_eq!(image["type"], "image");
    assert_eq!(
        image["media"],
        json!({"id": "MEDIA-1", "mimeType": "image/jpeg", "sha256": "abc", "caption": "la caja"})
    );
    assert_eq!(
        got[2].json["data"]["interactive"],
        json!({"type": "list_reply", "id": "slot-2", "title": "Martes", "description": "tarde"})
    );
    assert_eq!(
        got[3].json["data"]["reaction"],
        json!({"messageId": "wamid.x", "emoji": "👍"})
    );
    assert_eq!(got[4].json["data"]["location"]["name"], "Casco Viejo");
}

both_databases!(the_fakes_control_endpoint_emits_signed_inbound_webhooks);
async fn the_fakes_control_endpoint_emits_signed_inbound_webhooks() {
    let c = spawn().await;
    let rx = Receiver::start().await;
    c.register(&rx.url, &["message.received"]).await;
    let (_, message, wamid) = c.send(PHONE).await;
    let r =
        c.t.client
            .post(format!("{}/_fake/inbound", c.fake.base_url()))
            .json(
                &json!({"phoneNumberId": PN, "from": PHONE, "type": "button",
                      "payload": "STOP", "buttonText": "Stop promotions", "contextId": wamid}),
            )
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["delivered"], true);
    assert!(s(&body["id"]).starts_with("wamid."));
    c.t.drain_callbacks().await;
    let got = rx.take();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json["data"]["replyTo"], json!(message));
    assert_eq!(got[0].json["data"]["button"]["payload"], "STOP");
    // The fake signed it with the app secret: plantilla accepted it (it would answer 401).
    let hook = c.fake.webhooks().into_iter().last().unwrap();
    assert!(hook.delivered);
    let r =
        c.t.client
            .post(format!("{}/_fake/inbound", c.fake.base_url()))
            .json(&json!({"phoneNumberId": PN}))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}
