// Every kind of template against the fake Graph API over real HTTP: synced from Meta's
// listing with every part kept, sent through the compatible and native APIs with the values
// chosen per send (checked by the fake as strictly as Meta), refused before anything is queued
// when a value is wrong, previewed, and sent with a media id from `POST /v1/media`.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use fake_graph::{DEFAULT_WABA_ID, FakeGraph, FakeGraphConfig, FakeTemplate};
use reqwest::StatusCode;
use serde_json::{Value, json};

const PN: &str = "1000001";
const TOKEN: &str = "EAAG-test-token";
const APP_SECRET: &str = "app-secret-for-tests";

fn meta(name: &str, category: &str, components: Value) -> FakeTemplate {
    FakeTemplate::from_meta(name, "es", category, components)
}

/// One template of each kind, as Meta's `message_templates` lists them.
fn templates() -> Vec<FakeTemplate> {
    let card = |product: &str| {
        json!({"components": [
            {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": [format!("https://scontent.example/{product}")]}},
            {"type": "BODY", "text": "Producto {{1}}", "example": {"body_text": [["camisa"]]}},
            {"type": "BUTTONS", "buttons": [
                {"type": "QUICK_REPLY", "text": "Lo quiero"},
                {"type": "URL", "text": "Ver", "url": "https://shop.example/p/{{1}}", "example": ["https://shop.example/p/x"]}]}
        ]})
    };
    vec![
        meta(
            "invoice_doc",
            "UTILITY",
            json!([
                {"type": "HEADER", "format": "DOCUMENT", "example": {"header_handle": ["https://scontent.example/sample.pdf"]}},
                {"type": "BODY", "text": "Hola {{1}}, tu factura {{2}}", "example": {"body_text": [["Ana", "F-1"]]}},
                {"type": "FOOTER", "text": "Gracias"},
                {"type": "BUTTONS", "buttons": [
                    {"type": "QUICK_REPLY", "text": "Pagar"},
                    {"type": "URL", "text": "Ver", "url": "https://pay.example/i/{{1}}", "example": ["https://pay.example/i/F-1"]}]}
            ]),
        ),
        meta(
            "promo_gif",
            "MARKETING",
            json!([
                {"type": "HEADER", "format": "GIF", "example": {"header_handle": ["https://scontent.example/a.mp4"]}},
                {"type": "BODY", "text": "¡Oferta de la semana!"},
                {"type": "BUTTONS", "buttons": [
                    {"type": "FLOW", "text": "Reservar", "flow_id": "1234", "flow_action": "navigate"},
                    {"type": "COPY_CODE", "example": ["SAVE10"]},
                    {"type": "QUICK_REPLY", "text": "Parar promociones"}]}
            ]),
        ),
        meta(
            "store_location",
            "UTILITY",
            json!([
                {"type": "HEADER", "format": "LOCATION"},
                {"type": "BODY", "text": "Te esperamos"}
            ]),
        ),
        meta(
            "otp_code",
            "AUTHENTICATION",
            json!([
                {"type": "BODY", "text": "*{{1}}* es tu código.", "add_security_recommendation": true},
                {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Copiar código",
                    "url": "https://www.whatsapp.com/otp/code/?otp_type=COPY_CODE&code=otp{{1}}"}]}
            ]),
        ),
        meta(
            "carousel_promo",
            "MARKETING",
            json!([
                {"type": "BODY", "text": "Hola {{1}}, mira esto", "example": {"body_text": [["Ana"]]}},
                {"type": "CAROUSEL", "cards": [card("a"), card("b")]}
            ]),
        ),
        meta(
            "lto_offer",
            "MARKETING",
            json!([
                {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["https://scontent.example/x"]}},
                {"type": "LIMITED_TIME_OFFER", "limited_time_offer": {"text": "¡Corre!", "has_expiration": true}},
                {"type": "BODY", "text": "Usa {{1}}", "example": {"body_text": [["SAVE10"]]}},
                {"type": "BUTTONS", "buttons": [
                    {"type": "COPY_CODE", "example": "SAVE10"},
                    {"type": "URL", "text": "Comprar", "url": "https://shop.example/{{1}}", "example": ["https://shop.example/x"]}]}
            ]),
        ),
        meta(
            "video_catalog",
            "MARKETING",
            json!([
                {"type": "HEADER", "format": "VIDEO", "example": {"header_handle": ["https://scontent.example/v.mp4"]}},
                {"type": "BODY", "text": "Nuevo catálogo"},
                {"type": "BUTTONS", "buttons": [
                    {"type": "PHONE_NUMBER", "text": "Llamar", "phone_number": "+50760000000"},
                    {"type": "VOICE_CALL", "text": "Llamar por WhatsApp"},
                    {"type": "CATALOG", "text": "Ver catálogo"}]}
            ]),
        ),
        meta(
            "new_kind",
            "UTILITY",
            json!([
                {"type": "BODY", "text": "Hola"},
                {"type": "BUTTONS", "buttons": [{"type": "SOMETHING_NEW", "text": "?"}]}
            ]),
        ),
        meta(
            "typed_total",
            "UTILITY",
            json!([
                {"type": "BODY", "text": "Total {{total}} el {{day}}",
                 "example": {"body_text_named_params": [
                    {"param_name": "total", "example": "$1"}, {"param_name": "day", "example": "hoy"}]}}
            ]),
        )
        .with_parameter_format("NAMED"),
    ]
}

struct Rich {
    t: TestApp,
    fake: FakeGraph,
    seed: Seed,
    /// Template ids by name, after the sync.
    ids: BTreeMap<String, String>,
}

async fn spawn_rich() -> Rich {
    let mut config = FakeGraphConfig {
        app_secret: APP_SECRET.into(),
        status_delay: Duration::ZERO,
        ..FakeGraphConfig::default()
    }
    .with_phone(PN, TOKEN);
    for t in templates() {
        config = config.with_template(t);
    }
    let fake = FakeGraph::start(config).await;
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
            json!({"name": "Acme", "conversationLimit": 1000}),
        )
        .await;
    let channel = t
        .create(
            "/v1/admin/channels",
            json!({"accountId": account["id"], "name": "Main", "provider": "cloud",
                   "phoneNumberId": PN, "wabaId": DEFAULT_WABA_ID, "accessToken": TOKEN,
                   "appSecret": "channel-secret", "messagesPerSecond": 1000}),
        )
        .await;
    let group = t
        .create(
            "/v1/admin/groups",
            json!({"accountId": account["id"], "name": "Ventas", "channelIds": [channel["id"]]}),
        )
        .await;
    let (status, summary) = t
        .admin(
            "POST",
            &format!(
                "/v1/admin/channels/{}/templates/sync",
                channel["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["created"], 9, "{summary}");
    assert_eq!(
        summary["skipped"], 0,
        "nothing Meta lists is dropped: {summary}"
    );
    let token = s(&channel["publicToken"]);
    let list = t
        .call("GET", "/v1/templates?limit=200", Some(&token), None)
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let ids = list.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (s(&t["name"]), s(&t["id"])))
        .collect();
    Rich {
        seed: Seed {
            account_id: s(&account["id"]),
            channel_id: s(&channel["id"]),
            token,
            group_id: s(&group["id"]),
            template_id: String::new(),
        },
        t,
        fake,
        ids,
    }
}

impl Rich {
    fn id(&self, name: &str) -> &str {
        &self.ids[name]
    }

    async fn template(&self, name: &str) -> Value {
        let r = self
            .t
            .call(
                "GET",
                &format!("/v1/templates/{}", self.id(name)),
                Some(&self.seed.token),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.json
    }

    /// A compatible send of template `name` to `phone` with `params`.
    async fn send(&self, name: &str, phone: &str, params: Value) -> Reply {
        self.t
            .send_old(
                &self.seed.token,
                json!({"templateId": self.id(name), "phoneNumber": phone, "params": params}),
            )
            .await
    }

    /// A native send (`POST /v1/messages`) with `fields` added to the template and number.
    async fn send_native(&self, name: &str, phone: &str, fields: Value) -> Reply {
        let mut body = json!({"templateId": self.id(name), "to": phone});
        for (k, v) in fields.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.t
            .call(
                "POST",
                "/v1/messages",
                Some(&self.seed.token),
                Some(&body.to_string()),
            )
            .await
    }

    async fn settle(&self) {
        self.t.drain().await;
        assert!(
            self.fake.wait_webhooks_idle(Duration::from_secs(10)).await,
            "webhooks delivered"
        );
    }

    fn sent_to(&self, to: &str) -> fake_graph::SentMessage {
        self.fake
            .sent()
            .into_iter()
            .find(|m| m.to == to)
            .unwrap_or_else(|| {
                panic!(
                    "nothing reached the fake for {to}: {:?}",
                    self.fake.requests()
                )
            })
    }
}

fn accepted(r: &Reply) -> String {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["success"], true, "{}", r.text);
    s(&r.json["data"]["message_id"])
}

both_databases!(sync_keeps_every_part_meta_lists_with_each_button_at_its_index);
async fn sync_keeps_every_part_meta_lists_with_each_button_at_its_index() {
    let r = spawn_rich().await;

    let invoice = r.template("invoice_doc").await;
    assert_eq!(invoice["header"]["format"], "DOCUMENT");
    assert_eq!(
        invoice["header"]["sample"],
        "https://scontent.example/sample.pdf"
    );
    assert!(
        invoice["header"].get("example").is_none(),
        "Meta's sample is not a default: {invoice}"
    );
    assert_eq!(invoice["sendable"], true);

    let gif = r.template("promo_gif").await;
    assert_eq!(gif["header"]["format"], "GIF");
    let kinds: Vec<&str> = gif["buttons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["FLOW", "COPY_CODE", "QUICK_REPLY"], "{gif}");
    assert_eq!(
        gif["buttons"][1]["example"], "SAVE10",
        "an array example is read"
    );
    assert_eq!(gif["buttons"][0]["flowId"], "1234");

    assert_eq!(
        r.template("store_location").await["header"]["format"],
        "LOCATION"
    );
    let otp = r.template("otp_code").await;
    assert_eq!(otp["buttons"][0]["type"], "OTP", "{otp}");
    assert_eq!(otp["buttons"][0]["otpType"], "COPY_CODE");

    let carousel = r.template("carousel_promo").await;
    assert_eq!(
        carousel["carousel"].as_array().unwrap().len(),
        2,
        "{carousel}"
    );
    assert_eq!(carousel["params"], json!(["1", "card.0.1", "card.1.1"]));

    let offer = r.template("lto_offer").await;
    assert_eq!(
        offer["limitedTimeOffer"],
        json!({"text": "¡Corre!", "hasExpiration": true})
    );

    let unknown = r.template("new_kind").await;
    assert_eq!(unknown["sendable"], false);
    assert!(
        s(&unknown["unsendableReason"]).contains("SOMETHING_NEW"),
        "{unknown}"
    );
    assert_eq!(r.template("typed_total").await["parameterFormat"], "NAMED");
    let catalog = r.template("video_catalog").await;
    assert_eq!(catalog["header"]["format"], "VIDEO");
    assert_eq!(
        catalog["buttons"],
        json!([{"type": "PHONE_NUMBER", "text": "Llamar", "phoneNumber": "+50760000000"},
               {"type": "VOICE_CALL", "text": "Llamar por WhatsApp"},
               {"type": "CATALOG", "text": "Ver catálogo"}])
    );
}

both_databases!(every_kind_is_sent_with_its_values_and_passes_metas_checks);
async fn every_kind_is_sent_with_its_values_and_passes_metas_checks() {
    let r = spawn_rich().await;
    let expires = chrono::Utc::now().timestamp_millis() + 86_400_000;
    let sends = [
        (
            "invoice_doc",
            "50755667701",
            json!({"1": "Ana", "2": "F-77",
                   "header.link": "https://files.example/f-77.pdf", "header.filename": "Factura F-77.pdf",
                   "button.0.payload": "pay:F-77"}),
        ),
        (
            "promo_gif",
            "50755667702",
            json!({"header.link": "https://cdn.example/promo.mp4", "button.0.flow_token": "tok-9",
                   "button.1.coupon_code": "ANA25", "button.2.payload": "stop"}),
        ),
        (
            "store_location",
            "50755667703",
            json!({"header.latitude": "8.9824", "header.longitude": "-79.5199",
                   "header.name": "Tienda Centro", "header.address": "Calle 50"}),
        ),
        ("otp_code", "50755667704", json!({"1": "482913"})),
        (
            "carousel_promo",
            "50755667705",
            json!({"1": "Ana", "card.0.1": "camisa", "card.0.header.link": "https://cdn.example/a.png",
                   "card.0.button.0.payload": "want-a", "card.1.1": "gorra",
                   "card.1.header.link": "https://cdn.example/b.png"}),
        ),
        (
            "video_catalog",
            "50755667707",
            json!({"header.id": "24680",
                   "button.2.action": r#"{"thumbnail_product_retailer_id":"sku-1"}"#}),
        ),
        (
            "lto_offer",
            "50755667706",
            json!({"1": "ANA25", "header.link": "https://cdn.example/o.jpg",
                   "offer.expiration_time_ms": expires.to_string(), "button.0.coupon_code": "ANA25"}),
        ),
    ];
    let mut messages = Vec::new();
    for (name, phone, params) in &sends {
        messages.push(accepted(&r.send(name, phone, params.clone()).await));
    }
    r.settle().await;
    assert_eq!(
        r.fake.sent().len(),
        sends.len(),
        "every send passed the fake's checks: {:?}",
        r.fake.requests()
    );
    for id in &messages {
        assert_eq!(r.t.message(id).await["status"], "read");
    }

    // The document header with its file name and the quick-reply payload, as Meta documents.
    let m = r.sent_to("50755667701");
    eprintln!("the request plantilla sent: {}", m.body);
    assert_eq!(
        m.components,
        vec![
            json!({"type": "header", "parameters": [{"type": "document", "document":
                {"link": "https://files.example/f-77.pdf", "filename": "Factura F-77.pdf"}}]}),
            json!({"type": "body", "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "F-77"}]}),
            json!({"type": "button", "sub_type": "quick_reply", "index": "0",
                   "parameters": [{"type": "payload", "payload": "pay:F-77"}]}),
            json!({"type": "button", "sub_type": "url", "index": "1",
                   "parameters": [{"type": "text", "text": "Ana"}]}),
        ]
    );

    // A FLOW button first keeps the coupon at index 1 and the quick reply at 2.
    let m = r.sent_to("50755667702");
    assert_eq!(
        m.components_of("header")[0]["parameters"][0],
        json!({"type": "gif", "gif": {"link": "https://cdn.example/promo.mp4"}})
    );
    let buttons: Vec<(String, String)> = m
        .components_of("button")
        .iter()
        .map(|b| (s(&b["sub_type"]), s(&b["index"])))
        .collect();
    assert_eq!(
        buttons,
        [
            ("flow".to_string(), "0".to_string()),
            ("copy_code".into(), "1".into()),
            ("quick_reply".into(), "2".into())
        ]
    );
    assert_eq!(
        m.components_of("button")[1]["parameters"][0]["coupon_code"],
        "ANA25"
    );

    let m = r.sent_to("50755667703");
    assert_eq!(
        m.components_of("header")[0]["parameters"][0]["location"],
        json!({"latitude": 8.9824, "longitude": -79.5199, "name": "Tienda Centro", "address": "Calle 50"})
    );

    // The code goes in the body and in the button.
    let m = r.sent_to("50755667704");
    assert_eq!(m.texts("body"), ["482913"]);
    assert_eq!(
        m.components_of("button")[0]["parameters"][0]["text"],
        "482913"
    );

    let m = r.sent_to("50755667705");
    let cards = m.components_of("carousel")[0]["cards"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(cards.len(), 2);
    assert_eq!(cards[1]["card_index"], 1);
    assert_eq!(
        cards[0]["components"][0]["parameters"][0]["image"]["link"],
        "https://cdn.example/a.png"
    );

    // Phone and voice-call buttons take no value; the catalog's action goes at index 2.
    let m = r.sent_to("50755667707");
    assert_eq!(
        m.components,
        vec![
            json!({"type": "header", "parameters": [{"type": "video", "video": {"id": "24680"}}]}),
            json!({"type": "button", "sub_type": "catalog", "index": "2", "parameters": [
                {"type": "action", "action": {"thumbnail_product_retailer_id": "sku-1"}}]}),
        ]
    );

    let m = r.sent_to("50755667706");
    assert_eq!(
        m.components_of("limited_time_offer")[0]["parameters"][0]["limited_time_offer"]["expiration_time_ms"],
        expires
    );
}

both_databases!(the_native_api_takes_header_buttons_cards_offer_and_typed_params);
async fn the_native_api_takes_header_buttons_cards_offer_and_typed_params() {
    let r = spawn_rich().await;
    let expires = chrono::Utc::now() + chrono::Duration::days(1);
    let sends = [
        (
            "invoice_doc",
            "50755667711",
            json!({"params": {"1": "Ana", "2": "F-1"},
                   "header": {"type": "document", "link": "https://files.example/f-1.pdf", "filename": "F-1.pdf"},
                   "buttons": [{"index": 0, "payload": "pay:F-1"}]}),
        ),
        (
            "carousel_promo",
            "50755667712",
            json!({"params": {"1": "Ana"}, "cards": [
                {"header": {"link": "https://cdn.example/a.png"}, "params": {"1": "camisa"},
                 "buttons": [{"index": 0, "payload": "want-a"}]},
                {"header": {"id": "1234567890"}, "params": {"1": "gorra"}}]}),
        ),
        (
            "lto_offer",
            "50755667713",
            json!({"params": {"1": "ANA25"}, "header": {"link": "https://cdn.example/o.jpg"},
                   "offerExpiresAt": expires.to_rfc3339(),
                   "buttons": [{"index": 0, "couponCode": "ANA25"}]}),
        ),
        (
            "typed_total",
            "50755667714",
            json!({"params": {
                "total": {"currency": {"fallbackValue": "$10.50", "code": "USD", "amount1000": 10500}},
                "day": {"dateTime": {"fallbackValue": "25 de febrero"}}}}),
        ),
        (
            "store_location",
            "50755667715",
            json!({"header": {"latitude": 8.98, "longitude": -79.52}}),
        ),
    ];
    for (name, phone, fields) in &sends {
        let reply = r.send_native(name, phone, fields.clone()).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{name}: {}", reply.text);
    }
    r.settle().await;
    assert_eq!(r.fake.sent().len(), sends.len(), "{:?}", r.fake.requests());
    assert_eq!(
        r.sent_to("50755667711").components_of("header")[0]["parameters"][0]["document"],
        json!({"link": "https://files.example/f-1.pdf", "filename": "F-1.pdf"})
    );
    let cards = r.sent_to("50755667712").components_of("carousel")[0]["cards"].clone();
    assert_eq!(
        cards[1]["components"][0]["parameters"][0],
        json!({"type": "image", "image": {"id": "1234567890"}})
    );
    assert_eq!(
        r.sent_to("50755667713").components_of("limited_time_offer")[0]["parameters"][0]["limited_time_offer"]
            ["expiration_time_ms"],
        expires.timestamp_millis()
    );
    assert_eq!(
        r.sent_to("50755667714").components_of("body")[0]["parameters"],
        json!([
            {"type": "currency", "parameter_name": "total", "currency":
                {"fallback_value": "$10.50", "code": "USD", "amount_1000": 10500}},
            {"type": "date_time", "parameter_name": "day", "date_time": {"fallback_value": "25 de febrero"}}
        ])
    );
}

both_databases!(each_batch_recipient_gets_its_own_media_and_payload);
async fn each_batch_recipient_gets_its_own_media_and_payload() {
    let r = spawn_rich().await;
    let body = json!({"templateId": r.id("invoice_doc"), "recipients": [
        {"to": "50755667751", "params": {"1": "Ana", "2": "F-1"},
         "header": {"link": "https://files.example/f-1.pdf", "filename": "F-1.pdf"},
         "buttons": [{"index": 0, "payload": "pay:F-1"}]},
        {"to": "50755667752", "params": {"1": "Luis", "2": "F-2"},
         "header": {"link": "https://files.example/f-2.png"}},
        {"to": "50755667753", "params": {"1": "Eva", "2": "F-3", "header.id": "555"}}
    ]});
    let reply =
        r.t.call(
            "POST",
            "/v1/messages/batch",
            Some(&r.seed.token),
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    let results = reply.json["results"].as_array().unwrap();
    assert_eq!(results[0]["status"], "accepted", "{}", reply.text);
    assert_eq!(results[1]["status"], "rejected", "{}", reply.text);
    assert_eq!(
        results[1]["problem"]["errors"][0]["field"], "recipients[1].header.link",
        "{}",
        reply.text
    );
    assert_eq!(results[2]["status"], "accepted", "{}", reply.text);
    r.settle().await;
    assert_eq!(
        r.sent_to("50755667751").components_of("header")[0]["parameters"][0]["document"],
        json!({"link": "https://files.example/f-1.pdf", "filename": "F-1.pdf"})
    );
    assert_eq!(
        r.sent_to("50755667753").components_of("header")[0]["parameters"][0]["document"],
        json!({"id": "555"})
    );
    assert_eq!(r.fake.sent().len(), 2);
}

both_databases!(wrong_values_are_refused_naming_the_field_and_nothing_is_queued);
async fn wrong_values_are_refused_naming_the_field_and_nothing_is_queued() {
    let r = spawn_rich().await;
    let phone = "50755667720";
    // Compatible API: a media header with nothing given is a missing param named `header`.
    let reply = r
        .send("invoice_doc", phone, json!({"1": "Ana", "2": "F-1"}))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert_eq!(reply.json["body"]["message"], "Missing params:[header] ");
    assert_eq!(reply.json["body"]["path"], json!(["body.params"]));

    for (name, params, label, words) in [
        (
            "invoice_doc",
            json!({"1": "Ana", "2": "F-1", "header.link": "ftp://files.example/f.pdf"}),
            "body.params.header.link",
            "http:// or https://",
        ),
        (
            "invoice_doc",
            json!({"1": "Ana", "2": "F-1", "header.link": "https://files.example/f.png"}),
            "body.params.header.link",
            "IMAGE media",
        ),
        (
            "invoice_doc",
            json!({"1": "Ana", "2": "F-1", "header.link": "https://f.example/f.pdf", "button.1.payload": "x"}),
            "body.params.button.1.payload",
            "URL button",
        ),
        (
            "promo_gif",
            json!({"header.link": "https://cdn.example/p.mp4", "button.1.coupon_code": "SIXTEEN_CHARS_XX"}),
            "body.params.button.1.coupon_code",
            "at most 15",
        ),
        (
            "promo_gif",
            json!({"header.link": "https://cdn.example/p.mp4", "button.5.payload": "x"}),
            "body.params.button.5.payload",
            "0 to 2",
        ),
        (
            "video_catalog",
            json!({"header.link": "https://cdn.example/v.mp4", "button.0.payload": "x"}),
            "body.params.button.0.payload",
            "PHONE_NUMBER button",
        ),
        (
            "video_catalog",
            json!({"header.link": "https://cdn.example/v.mp4", "button.2.action": "[]"}),
            "body.params.button.2.action",
            "JSON object",
        ),
        (
            "store_location",
            json!({"header.latitude": "123", "header.longitude": "0"}),
            "body.params.header.latitude",
            "-90 to 90",
        ),
        (
            "lto_offer",
            json!({"1": "A", "header.link": "https://cdn.example/o.jpg", "offer.expiration_time_ms": "1000"}),
            "body.params.offer.expiration_time_ms",
            "in the past",
        ),
    ] {
        let reply = r.send(name, phone, params.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{params}: {}",
            reply.text
        );
        assert_eq!(reply.json["code"], 400, "{}", reply.text);
        assert_eq!(
            reply.json["body"]["context"]["label"], label,
            "{}",
            reply.text
        );
        assert_eq!(reply.json["body"]["path"], json!([label]), "{}", reply.text);
        assert!(
            s(&reply.json["body"]["message"]).contains(words),
            "{params}: {}",
            reply.text
        );
    }

    // A template with a part plantilla cannot send: refused like a template not sendable.
    let reply = r.send("new_kind", phone, json!({})).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert_eq!(
        reply.json["body"]["context"]["label"],
        "template.components"
    );
    assert_eq!(reply.json["body"]["path"], json!(["template.components"]));
    let reply = r.send_native("new_kind", phone, json!({})).await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.text
    );
    assert_eq!(reply.json["type"], "/problems/template-not-sendable");

    // Native API: problems name the native field.
    let reply = r
        .send_native(
            "carousel_promo",
            phone,
            json!({"params": {"1": "Ana"}, "cards": [
                {"header": {"link": "https://cdn.example/a.png"}, "params": {"1": "camisa"}}]}),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.text
    );
    assert_eq!(
        reply.json["type"], "/problems/missing-params",
        "{}",
        reply.text
    );
    let fields: Vec<String> = reply.json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| s(&e["field"]))
        .collect();
    assert!(
        fields.contains(&"cards[1].header".to_string()),
        "{fields:?}"
    );
    let reply = r
        .send_native(
            "promo_gif",
            phone,
            json!({"header": {"link": "https://cdn.example/p.mp4", "type": "image"},
                   "buttons": [{"index": 1, "couponCode": "SAVE"}, {"index": 2, "couponCode": "X"}]}),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.text
    );
    assert_eq!(
        reply.json["type"], "/problems/invalid-params",
        "{}",
        reply.text
    );
    let fields: Vec<String> = reply.json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| s(&e["field"]))
        .collect();
    assert_eq!(
        fields,
        ["buttons[index=2].couponCode", "header.type"],
        "{}",
        reply.text
    );
    let reply = r
        .send_native("invoice_doc", phone, json!({"header": {"link": 5}}))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert_eq!(reply.json["errors"][0]["field"], "header.link");

    // Nothing was queued or sent, and no conversation was created: the next good send is new.
    r.settle().await;
    assert!(r.fake.requests().is_empty(), "{:?}", r.fake.requests());
    let reply = r
        .send(
            "invoice_doc",
            phone,
            json!({"1": "Ana", "2": "F-1", "header.link": "https://files.example/f.pdf"}),
        )
        .await;
    assert_eq!(reply.json["message"], "Pending", "{}", reply.text);
}

both_databases!(a_preview_shows_the_message_and_the_components_the_send_then_sends);
async fn a_preview_shows_the_message_and_the_components_the_send_then_sends() {
    let r = spawn_rich().await;
    let params = json!({"1": "Ana", "2": "F-77", "header.link": "https://files.example/f-77.pdf",
                        "header.filename": "Factura F-77.pdf", "button.0.payload": "pay:F-77"});
    let preview =
        r.t.call(
            "POST",
            &format!("/v1/templates/{}/preview", r.id("invoice_doc")),
            Some(&r.seed.token),
            Some(&json!({"params": params}).to_string()),
        )
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.text);
    let p = &preview.json;
    assert_eq!(p["valid"], true, "{p}");
    assert_eq!(p["preview"]["body"], "Hola Ana, tu factura F-77");
    assert_eq!(p["preview"]["footer"], "Gracias");
    assert_eq!(
        p["preview"]["header"],
        json!({"format": "DOCUMENT", "media": {"link": "https://files.example/f-77.pdf", "filename": "Factura F-77.pdf"}})
    );
    assert_eq!(p["preview"]["buttons"][0]["payload"], "pay:F-77");
    assert_eq!(
        p["preview"]["buttons"][1]["url"],
        "https://pay.example/i/Ana"
    );
    assert!(r.fake.requests().is_empty(), "a preview sends nothing");

    accepted(&r.send("invoice_doc", "50755667730", params).await);
    r.settle().await;
    assert_eq!(
        json!(r.sent_to("50755667730").components),
        p["components"],
        "the preview's components are what the send sent"
    );

    // Invalid values: still a preview, with the reasons a send would be refused.
    let preview =
        r.t.call(
            "POST",
            &format!("/v1/templates/{}/preview", r.id("invoice_doc")),
            Some(&r.seed.token),
            Some(
                &json!({"params": {"1": "Ana"}, "buttons": [{"index": 1, "payload": "x"}]})
                    .to_string(),
            ),
        )
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.text);
    assert_eq!(preview.json["valid"], false);
    let fields: Vec<String> = preview.json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| s(&e["field"]))
        .collect();
    assert_eq!(
        fields,
        ["params.2", "header", "buttons[index=1].payload"],
        "{}",
        preview.text
    );
}

both_databases!(an_uploaded_media_id_is_the_header_of_a_send);
async fn an_uploaded_media_id_is_the_header_of_a_send() {
    let r = spawn_rich().await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"%PDF-1.4 invoice".to_vec())
            .file_name("f-9.pdf")
            .mime_str("application/pdf")
            .unwrap(),
    );
    let upload = reqwest::Client::new()
        .post(format!("{}/v1/media", r.t.base))
        .bearer_auth(&r.seed.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), StatusCode::CREATED);
    let media: Value = upload.json().await.unwrap();
    let media_id = s(&media["id"]);
    accepted(
        &r.send(
            "invoice_doc",
            "50755667740",
            json!({"1": "Ana", "2": "F-9", "header.id": media_id, "header.filename": "F-9.pdf"}),
        )
        .await,
    );
    r.settle().await;
    assert_eq!(
        r.sent_to("50755667740").components_of("header")[0]["parameters"][0]["document"],
        json!({"id": media_id, "filename": "F-9.pdf"})
    );
}
