// Template and number health, and what each message cost (issue 15, items 3 to 5), from
// outside: the fake Graph API builds Meta's webhooks (template status, category and quality,
// phone number quality, account update), they are posted signed to plantilla's webhook
// endpoint, and the test reads the result through the native and admin APIs and a webhook
// endpoint that receives the forwarded events. Pricing comes from the fake's status webhooks
// (Meta's per-message `pricing`) and is counted by `GET /v1/usage`.

use super::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use common::*;
use fake_graph::{DEFAULT_WABA_ID, FakeGraph, FakeGraphConfig, FakeTemplate};
use reqwest::StatusCode;
use serde_json::{Value, json};

const PN: &str = "1000001";
const TOKEN: &str = "EAAG-test-token";
const APP_SECRET: &str = "app-secret-for-tests";

const HEALTH_EVENTS: [&str; 4] = [
    "template.status_changed",
    "template.category_changed",
    "template.quality_changed",
    "channel.quality_changed",
];

/// A receiver of plantilla's callbacks: every JSON body it got.
#[derive(Clone, Default)]
struct Inbox(Arc<Mutex<Vec<Value>>>);

impl Inbox {
    async fn start() -> (Inbox, String) {
        let inbox = Inbox::default();
        let got = inbox.clone();
        let router = axum::Router::new().fallback(move |body: Bytes| {
            let got = got.clone();
            async move {
                got.0
                    .lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                "ok"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        (inbox, format!("http://{addr}/hooks"))
    }

    fn take(&self) -> Vec<Value> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

struct Health {
    t: TestApp,
    fake: FakeGraph,
    seed: Seed,
    inbox: Inbox,
}

async fn spawn_health(adjust: impl FnOnce(&mut plantilla::config::Config)) -> Health {
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
        .with_template(
            FakeTemplate::new("promo", "es", "Hola {{name}}, oferta {{order}}")
                .with_category("MARKETING"),
        ),
    )
    .await;
    let base = fake.base_url().to_string();
    let t = spawn_app_with(|c| {
        c.graph_base_url = base;
        c.meta_app_secret = Some(plantilla::config::Secret::new(APP_SECRET));
        c.callback_retry_initial_ms = 1;
        c.callback_retry_max_ms = 1;
        adjust(c);
    })
    .await;
    fake.set_webhook_url(Some(format!("{}/webhooks/whatsapp", t.base)));
    let fake_id = |name: &str| {
        fake.templates()
            .into_iter()
            .find(|t| t.name == name)
            .unwrap()
            .id
    };
    let template = json!({"name": "order_update", "language": "es", "category": "UTILITY",
                          "status": "APPROVED", "appId": fake_id("order_update"),
                          "message": "Hola {{name}}, tu pedido {{order}} va en camino"});
    let seed = seed_cloud_channel(&t, PN, TOKEN, Some(template)).await;
    t.create(
        "/v1/admin/templates",
        json!({"accountId": seed.account_id, "name": "promo", "language": "es",
               "category": "MARKETING", "status": "APPROVED", "appId": fake_id("promo"),
               "message": "Hola {{name}}, oferta {{order}}"}),
    )
    .await;
    let (inbox, url) = Inbox::start().await;
    let h = Health {
        t,
        fake,
        seed,
        inbox,
    };
    let (status, body) = h
        .native(
            "POST",
            "/v1/webhook-endpoints",
            Some(json!({"url": url, "eventTypes": HEALTH_EVENTS})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    h
}

impl Health {
    async fn native(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self
            .t
            .client
            .request(method.parse().unwrap(), format!("{}{}", self.t.base, path))
            .bearer_auth(&self.seed.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Posts a payload signed as Meta would, expects 200.
    async fn post(&self, payload: &Value) {
        assert_eq!(
            self.fake.post_webhook_for(PN, payload).await,
            StatusCode::OK,
            "{payload}"
        );
    }

    /// The callbacks delivered since the last call.
    async fn events(&self) -> Vec<Value> {
        self.t.drain_callbacks().await;
        self.inbox.take()
    }

    async fn template(&self) -> Value {
        let (status, v) = self
            .native(
                "GET",
                &format!("/v1/templates/{}", self.seed.template_id),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v
    }

    async fn channel(&self) -> Value {
        let (status, v) = self
            .t
            .admin(
                "GET",
                &format!("/v1/admin/channels/{}", self.seed.channel_id),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v
    }

    async fn send(&self, template: &str, phone: &str) -> String {
        let (status, v) = self
            .native(
                "POST",
                "/v1/messages",
                Some(json!({"templateId": template, "to": phone,
                            "params": {"name": "Ana", "order": "A-1"}})),
            )
            .await;
        assert!(status.is_success(), "{status} {v}");
        s(&v["id"])
    }

    async fn settle(&self) {
        self.t.drain().await;
        assert!(self.fake.wait_webhooks_idle(Duration::from_secs(10)).await);
    }

    async fn usage(&self, query: &str) -> (StatusCode, Value) {
        self.native("GET", &format!("/v1/usage?{query}"), None)
            .await
    }
}

both_databases!(template_status_events_are_stored_shown_and_forwarded);
async fn template_status_events_are_stored_shown_and_forwarded() {
    let h = spawn_health(|_| {}).await;
    let id = h.seed.template_id.clone();

    // FLAGGED: the template stays approved, flagged, with Meta's reason and disable date.
    let flagged = h.fake.template_status_update_full(
        "order_update",
        "es",
        "FLAGGED",
        Some("LOW_QUALITY"),
        Some(1_893_456_000),
        None,
    );
    h.post(&flagged).await;
    h.post(&flagged).await; // Meta retries: stored and forwarded once.
    let t = h.template().await;
    assert_eq!(t["status"], "APPROVED");
    assert_eq!(t["health"]["flagged"], true);
    assert!(t["health"]["flaggedAt"].is_string());
    assert_eq!(t["health"]["lastEvent"], "FLAGGED");
    assert_eq!(t["health"]["reason"], "LOW_QUALITY");
    assert_eq!(t["health"]["disableDate"], "2030-01-01T00:00:00.000Z");
    let events = h.events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "template.status_changed");
    assert_eq!(
        events[0]["data"],
        json!({"templateId": id, "name": "order_update", "language": "es",
               "status": "APPROVED", "previousStatus": "APPROVED", "event": "FLAGGED",
               "reason": "LOW_QUALITY", "disableDate": "2030-01-01T00:00:00.000Z",
               "flagged": true})
    );

    // PAUSED with other_info, then ARCHIVED, then UNARCHIVED back to approved.
    h.post(&h.fake.template_status_update_full(
        "order_update",
        "es",
        "PAUSED",
        Some("LOW_QUALITY"),
        None,
        Some(("FIRST_PAUSE", "Paused for 3 hours")),
    ))
    .await;
    let t = h.template().await;
    assert_eq!(t["status"], "PAUSED");
    assert_eq!(
        t["health"]["otherInfo"],
        json!({"title": "FIRST_PAUSE", "description": "Paused for 3 hours"})
    );
    h.post(
        &h.fake
            .template_status_update("order_update", "es", "ARCHIVED", None),
    )
    .await;
    assert_eq!(h.template().await["status"], "ARCHIVED");
    h.post(
        &h.fake
            .template_status_update("order_update", "es", "UNARCHIVED", None),
    )
    .await;
    let t = h.template().await;
    assert_eq!(t["status"], "APPROVED");
    assert_eq!(t["health"]["lastEvent"], "UNARCHIVED");
    assert_eq!(t["health"]["flagged"], false);
    assert_eq!(t["health"]["reason"], Value::Null, "NONE is no reason");
    let events = h.events().await;
    let moves: Vec<(String, String)> = events
        .iter()
        .map(|e| (s(&e["data"]["previousStatus"]), s(&e["data"]["status"])))
        .collect();
    assert_eq!(
        moves,
        [
            ("APPROVED".into(), "PAUSED".into()),
            ("PAUSED".into(), "ARCHIVED".into()),
            ("ARCHIVED".into(), "APPROVED".into()),
        ]
    );
    assert_eq!(
        events[0]["data"]["otherInfo"],
        json!({"title": "FIRST_PAUSE", "description": "Paused for 3 hours"})
    );
    assert_eq!(events[2]["data"]["event"], "UNARCHIVED");

    // An event Meta adds later is kept, not dropped, and moves no status.
    h.post(
        &h.fake
            .template_status_update("order_update", "es", "LOCKED_FOR_EDITING", None),
    )
    .await;
    let t = h.template().await;
    assert_eq!(t["status"], "APPROVED");
    assert_eq!(t["health"]["lastEvent"], "LOCKED_FOR_EDITING");
    let events = h.events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["event"], "LOCKED_FOR_EDITING");

    // The admin API shows the same health.
    let (status, admin) =
        h.t.admin("GET", &format!("/v1/admin/templates/{id}"), None)
            .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(admin["health"]["lastEvent"], "LOCKED_FOR_EDITING");
    // The list shows it too.
    let (_, list) = h.native("GET", "/v1/templates", None).await;
    let listed = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == json!(id))
        .unwrap();
    assert_eq!(listed["health"]["lastEvent"], "LOCKED_FOR_EDITING");
}

both_databases!(category_notices_and_changes_and_quality_are_stored_and_forwarded);
async fn category_notices_and_changes_and_quality_are_stored_and_forwarded() {
    let h = spawn_health(|_| {}).await;
    let id = h.seed.template_id.clone();

    // The advance notice: the category has not changed yet.
    h.post(&h.fake.template_category_notice(
        "order_update",
        "es",
        "UTILITY",
        "MARKETING",
        1_893_456_000,
    ))
    .await;
    let t = h.template().await;
    assert_eq!(t["category"], "UTILITY");
    assert_eq!(
        t["health"]["pendingCategoryChange"]["category"],
        "MARKETING"
    );
    assert_eq!(
        t["health"]["pendingCategoryChange"]["effectiveAt"],
        "2030-01-01T00:00:00.000Z"
    );
    let events = h.events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "template.category_changed");
    assert_eq!(
        events[0]["data"],
        json!({"templateId": id, "name": "order_update", "language": "es",
               "previousCategory": "UTILITY", "newCategory": "UTILITY",
               "correctCategory": "MARKETING", "effectiveAt": "2030-01-01T00:00:00.000Z",
               "notice": true})
    );

    // The change itself: the stored category moves (opt-outs follow it).
    h.post(
        &h.fake
            .template_category_update("order_update", "es", "UTILITY", "MARKETING"),
    )
    .await;
    let t = h.template().await;
    assert_eq!(t["category"], "MARKETING");
    assert_eq!(t["health"]["previousCategory"], "UTILITY");
    assert_eq!(t["health"]["pendingCategoryChange"], Value::Null);
    assert!(t["health"]["categoryUpdatedAt"].is_string());
    let events = h.events().await;
    assert_eq!(
        events[0]["data"],
        json!({"templateId": id, "name": "order_update", "language": "es",
               "previousCategory": "UTILITY", "newCategory": "MARKETING", "notice": false})
    );

    // Moved to MARKETING by Meta, the template is now subject to opt-outs.
    let phone = "50755660099";
    let r =
        h.t.client
            .post(format!("{}/v1/suppressions", h.t.base))
            .bearer_auth(&h.seed.token)
            .json(&json!({"phoneNumber": phone, "reason": "asked by phone"}))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let refused = h.t.send_old(&h.seed.token, send_body(&h.seed, phone)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
    assert_eq!(
        refused.json["body"]["message"],
        "The recipient has opted out of marketing messages"
    );
    h.events().await;

    // Quality.
    h.post(
        &h.fake
            .template_quality_update("order_update", "es", "GREEN", "YELLOW"),
    )
    .await;
    h.post(
        &h.fake
            .template_quality_update("order_update", "es", "GREEN", "YELLOW"),
    )
    .await;
    let t = h.template().await;
    assert_eq!(t["health"]["qualityScore"], "YELLOW");
    assert_eq!(t["health"]["previousQualityScore"], "GREEN");
    assert!(t["health"]["qualityUpdatedAt"].is_string());
    let events = h.events().await;
    assert_eq!(events.len(), 1, "a repeated report is forwarded once");
    assert_eq!(events[0]["type"], "template.quality_changed");
    assert_eq!(
        events[0]["data"],
        json!({"templateId": id, "name": "order_update", "language": "es",
               "previousQualityScore": "GREEN", "newQualityScore": "YELLOW"})
    );
}

both_databases!(number_quality_and_limits_are_stored_shown_and_forwarded);
async fn number_quality_and_limits_are_stored_shown_and_forwarded() {
    let h = spawn_health(|_| {}).await;
    let ch = h.seed.channel_id.clone();

    h.post(
        &h.fake
            .phone_quality_update(PN, "FLAGGED", "TIER_2K", Some("TIER_1K")),
    )
    .await;
    let c = h.channel().await;
    assert_eq!(c["messagingLimit"], 2000);
    assert_eq!(c["qualityRating"], "RED");
    assert_eq!(c["quality"]["lastEvent"], "FLAGGED");
    assert_eq!(c["quality"]["displayPhoneNumber"], "15550000001");
    let events = h.events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "channel.quality_changed");
    let data = &events[0]["data"];
    assert_eq!(data["channelId"], json!(ch));
    assert_eq!(data["displayPhoneNumber"], "15550000001");
    assert_eq!(data["event"], "FLAGGED");
    assert_eq!(data["qualityRating"], "RED");
    assert_eq!(data["previousQualityRating"], Value::Null);
    assert_eq!(data["messagingLimit"], 2000);
    assert_eq!(data["previousMessagingLimit"], Value::Null);
    assert!(data["at"].is_string());

    // The current field wins over the deprecated one.
    let mut up = h
        .fake
        .phone_quality_update(PN, "UPGRADE", "TIER_10K", Some("TIER_2K"));
    up["entry"][0]["changes"][0]["value"]["current_limit"] = json!("TIER_250");
    h.post(&up).await;
    let c = h.channel().await;
    assert_eq!(c["messagingLimit"], 10_000);
    assert_eq!(
        c["qualityRating"], "RED",
        "a limit upgrade leaves the rating"
    );
    let events = h.events().await;
    assert_eq!(events[0]["data"]["event"], "UPGRADE");
    assert_eq!(events[0]["data"]["previousMessagingLimit"], 2000);

    h.post(
        &h.fake
            .phone_quality_update(PN, "UNFLAGGED", "TIER_10K", None),
    )
    .await;
    assert_eq!(h.channel().await["qualityRating"], "GREEN");
    let events = h.events().await;
    assert_eq!(events[0]["data"]["previousQualityRating"], "RED");
    assert_eq!(events[0]["data"]["qualityRating"], "GREEN");

    // account_update: the portfolio's limit.
    h.post(
        &h.fake
            .account_update(PN, "ACCOUNT_UPDATE", "TIER_UNLIMITED"),
    )
    .await;
    let c = h.channel().await;
    assert_eq!(c["messagingLimit"], Value::Null, "unlimited");
    let events = h.events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["previousMessagingLimit"], 10_000);
    assert_eq!(events[0]["data"]["messagingLimit"], Value::Null);
}

both_databases!(a_quality_report_names_its_number_within_the_waba);
async fn a_quality_report_names_its_number_within_the_waba() {
    let h = spawn_health(|_| {}).await;
    // A second number on the same WABA.
    let other =
        h.t.create(
            "/v1/admin/channels",
            json!({"accountId": h.seed.account_id, "name": "Second", "provider": "cloud",
                   "phoneNumberId": "1000002", "wabaId": DEFAULT_WABA_ID, "accessToken": TOKEN,
                   "appSecret": "channel-secret", "verifyToken": "channel-verify"}),
        )
        .await;
    let other_id = s(&other["id"]);
    // Known numbers are told apart: the first learnt its display number earlier (when it was
    // the WABA's only number, in this test through the channel-scoped endpoint).
    let known = h.fake.phone_quality_update(PN, "FLAGGED", "TIER_2K", None);
    let url = format!("{}/webhooks/whatsapp/{}", h.t.base, h.seed.channel_id);
    let body = serde_json::to_vec(&known).unwrap();
    let sig = fake_graph::signature("channel-secret", &body);
    assert_eq!(
        h.fake.post_raw_to(&url, body, Some(sig)).await.unwrap(),
        StatusCode::OK
    );
    assert_eq!(h.channel().await["qualityRating"], "RED");
    let (_, second) =
        h.t.admin("GET", &format!("/v1/admin/channels/{other_id}"), None)
            .await;
    assert_eq!(
        second["qualityRating"],
        Value::Null,
        "the other number is untouched"
    );
    // A report for the first number's display number, on the shared WABA endpoint, only
    // touches it.
    h.post(
        &h.fake
            .phone_quality_update(PN, "UNFLAGGED", "TIER_2K", None),
    )
    .await;
    assert_eq!(h.channel().await["qualityRating"], "GREEN");
    let (_, second) =
        h.t.admin("GET", &format!("/v1/admin/channels/{other_id}"), None)
            .await;
    assert_eq!(second["qualityRating"], Value::Null);
}

both_databases!(pricing_is_kept_and_usage_counts_it);
async fn pricing_is_kept_and_usage_counts_it() {
    let h = spawn_health(|c| {
        c.prices = Some("utility=0.01, marketing=0.05, marketing:507=0.07".into());
        c.price_currency = "USD".into();
    })
    .await;
    let (_, list) = h.native("GET", "/v1/templates", None).await;
    let promo = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "promo")
        .map(|t| s(&t["id"]))
        .unwrap();
    let utility = h.seed.template_id.clone();
    let u1 = h.send(&utility, "50755667701").await;
    let u2 = h.send(&utility, "50755667702").await;
    let m1 = h.send(&promo, "50755667703").await;
    let m2 = h.send(&promo, "5215512345678").await;
    h.settle().await;

    // Meta's pricing object is kept on the message.
    let (_, m) = h.native("GET", &format!("/v1/messages/{u1}"), None).await;
    assert_eq!(m["pricingCategory"], "utility");
    assert_eq!(
        m["pricing"],
        json!({"type": "regular", "category": "utility", "pricingModel": "PMP",
               "billable": true})
    );
    let (_, m) = h.native("GET", &format!("/v1/messages/{m2}"), None).await;
    assert_eq!(m["pricing"]["category"], "marketing");

    // A utility message inside an open customer-service window is free.
    let sent = h.fake.sent_to("50755667702");
    let mut free = h.fake.status_payload(&sent[0], "read");
    let pricing = &mut free["entry"][0]["changes"][0]["value"]["statuses"][0]["pricing"];
    pricing["type"] = json!("free_customer_service");
    pricing["billable"] = json!(false);
    assert_eq!(h.fake.post_webhook(&free).await, StatusCode::OK);
    let (_, m) = h.native("GET", &format!("/v1/messages/{u2}"), None).await;
    assert_eq!(m["pricing"]["type"], "free_customer_service");
    assert_eq!(m["pricing"]["billable"], false);

    // One message was accepted and sent yesterday.
    let yesterday_ms = plantilla::now_ms() - 86_400_000;
    h.t.sql(&format!(
        "UPDATE messages SET queued_at = {yesterday_ms} - 1000, sent_at = {yesterday_ms}
         WHERE id = '{m1}'"
    ))
    .await;
    let today = plantilla::domain::usage::day_of(plantilla::now_ms());
    let yesterday = plantilla::domain::usage::day_of(yesterday_ms);

    let (status, u) = h
        .usage(&format!("from={yesterday}&to={today}&groupBy=category"))
        .await;
    assert_eq!(status, StatusCode::OK, "{u}");
    assert_eq!(u["groupBy"], "category");
    assert_eq!(u["currency"], "USD");
    let rows: Vec<(String, u64, u64)> = u["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                s(&r["category"]),
                r["billable"].as_u64().unwrap(),
                r["free"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows, [("marketing".into(), 2, 0), ("utility".into(), 1, 1)]);
    // 0.07 (507) + 0.05 (52, the category's default) and one billable utility at 0.01.
    assert_eq!(u["data"][0]["estimatedCost"], 0.12);
    assert_eq!(u["data"][1]["estimatedCost"], 0.01);
    assert_eq!(u["total"]["billable"], 3);
    assert_eq!(u["total"]["free"], 1);
    assert_eq!(u["total"]["estimatedCost"], 0.13);

    // Dates are whole days, both inclusive: today alone leaves yesterday's message out.
    let (_, u) = h
        .usage(&format!("from={today}&to={today}&groupBy=day"))
        .await;
    assert_eq!(u["data"].as_array().unwrap().len(), 2, "{u}");
    assert!(
        u["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["day"] == json!(today))
    );
    let (_, u) = h
        .usage(&format!("from={yesterday}&to={yesterday}&groupBy=day"))
        .await;
    assert_eq!(
        u["data"],
        json!([{"key": yesterday, "day": yesterday, "category": "marketing",
                "billable": 1, "free": 0, "estimatedCost": 0.07}])
    );

    // By template and by channel.
    let (_, u) = h
        .usage(&format!("from={yesterday}&to={today}&groupBy=template"))
        .await;
    let by_template: Vec<(String, u64)> = u["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (s(&r["templateId"]), r["billable"].as_u64().unwrap()))
        .collect();
    let mut expected = vec![(promo.clone(), 2), (utility.clone(), 1)];
    expected.sort();
    assert_eq!(by_template, expected);
    let (_, u) = h
        .usage(&format!("from={yesterday}&to={today}&groupBy=channel"))
        .await;
    assert!(
        u["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["channelId"] == json!(h.seed.channel_id))
    );
    assert_eq!(u["data"].as_array().unwrap().len(), 2);

    // RFC 3339 instants: a window that ends before yesterday's message.
    let before = chrono::DateTime::from_timestamp_millis(yesterday_ms - 1)
        .unwrap()
        .to_rfc3339();
    let (_, u) = h
        .usage(&format!(
            "from={yesterday}&to={}&groupBy=category",
            before.replace('+', "%2B")
        ))
        .await;
    assert_eq!(u["data"], json!([]), "{u}");
}

both_databases!(bad_usage_parameters_are_refused_by_name);
async fn bad_usage_parameters_are_refused_by_name() {
    let h = spawn_health(|_| {}).await;
    for (query, field) in [
        ("from=2026-13-01", "from"),
        ("to=tomorrow", "to"),
        ("groupBy=week", "groupBy"),
        ("groupBy=", "groupBy"),
        ("to=", "to"),
        ("from=2026-1-05", "from"),
        ("from=2026-02-02&to=2026-02-01", "from"),
        ("from=2024-01-01&to=2026-01-01", "to"),
        ("since=2026-01-01", "since"),
    ] {
        let (status, body) = h.usage(query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
    }
    // Defaults: the current month, by day, no price table: no currency, no estimate.
    let (status, body) = h.usage("").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["groupBy"], "day");
    assert_eq!(body["currency"], Value::Null);
    assert_eq!(body["total"]["estimatedCost"], Value::Null);
}

both_databases!(the_fake_posts_health_webhooks_on_request_over_http);
async fn the_fake_posts_health_webhooks_on_request_over_http() {
    let h = spawn_health(|_| {}).await;
    let post = |field: &'static str, body: Value| {
        let url = format!("{}/_fake/webhooks/{field}", h.fake.base_url());
        let client = h.t.client.clone();
        async move {
            let res = client.post(url).json(&body).send().await.unwrap();
            let status = res.status();
            let v: Value = res.json().await.unwrap();
            assert_eq!(status, StatusCode::OK, "{v}");
            assert_eq!(v["webhook_delivered"], true, "{v}");
            v
        }
    };
    let v = post(
        "phone_number_quality_update",
        json!({"phoneNumberId": PN, "event": "FLAGGED", "limit": "TIER_250", "oldLimit": "TIER_1K"}),
    )
    .await;
    let value = &v["webhook"]["entry"][0]["changes"][0]["value"];
    assert_eq!(value["max_daily_conversations_per_business"], "TIER_250");
    assert_eq!(value["old_limit"], "TIER_1K");
    let c = h.channel().await;
    assert_eq!(c["messagingLimit"], 250);
    assert_eq!(c["qualityRating"], "RED");

    post(
        "message_template_status_update",
        json!({"name": "order_update", "language": "es", "event": "DISABLED",
               "reason": "LOW_QUALITY", "disableDate": 1_893_456_000}),
    )
    .await;
    post(
        "template_category_update",
        json!({"name": "order_update", "language": "es", "newCategory": "UTILITY",
               "correctCategory": "MARKETING", "at": 1_893_456_000}),
    )
    .await;
    post(
        "message_template_quality_update",
        json!({"name": "order_update", "language": "es",
               "previousQualityScore": "UNKNOWN", "newQualityScore": "RED"}),
    )
    .await;
    post(
        "account_update",
        json!({"phoneNumberId": PN, "event": "ACCOUNT_UPDATE", "limit": "TIER_2K"}),
    )
    .await;
    let t = h.template().await;
    assert_eq!(t["status"], "DISABLED");
    assert_eq!(t["health"]["disableDate"], "2030-01-01T00:00:00.000Z");
    assert_eq!(
        t["health"]["pendingCategoryChange"]["category"],
        "MARKETING"
    );
    assert_eq!(t["health"]["qualityScore"], "RED");
    assert_eq!(h.channel().await["messagingLimit"], 2000);
    // Each template's and each channel's events come in order; the two streams interleave.
    let mut types: Vec<String> = h.events().await.iter().map(|e| s(&e["type"])).collect();
    types.sort();
    assert_eq!(
        types,
        [
            "channel.quality_changed",
            "channel.quality_changed",
            "template.category_changed",
            "template.quality_changed",
            "template.status_changed",
        ]
    );
    // A bad request names what is missing.
    let res =
        h.t.client
            .post(format!(
                "{}/_fake/webhooks/account_update",
                h.fake.base_url()
            ))
            .json(&json!({"event": "X"}))
            .send()
            .await
            .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

both_databases!(the_sandbox_prices_its_messages_as_meta_does);
async fn the_sandbox_prices_its_messages_as_meta_does() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let r = t
        .send_new(&seed.token, send_body(&seed, "50755667790"))
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    t.drain().await;
    let id = s(&r.json["data"]["message_id"]);
    let m = t.message(&id).await;
    assert_eq!(m["status"], "read", "{m}");
    assert_eq!(
        m["pricing"],
        json!({"type": "regular", "category": "utility", "pricingModel": "PMP", "billable": true})
    );
    assert_eq!(m["pricingCategory"], "utility");
}
