//! The fake Graph API's template checks over real HTTP: Meta-shaped
//! templates of every kind (media / location headers, typed body params,
//! every button type, OTP, limited-time offers, carousels), each accepted
//! send and each refusal with Meta's code; and template authoring (create,
//! list, review webhook, delete) with the resumable upload API.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderMap;
use fake_graph::{FakeGraph, FakeGraphConfig, FakePhoneNumber, FakeTemplate};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

const PHONE: &str = "1061234567890";
const TOKEN: &str = "EAAG-test-token";
const WABA: &str = "waba-77";
const SECRET: &str = "app-secret-for-tests";
const TO: &str = "50755667788";

fn config() -> FakeGraphConfig {
    FakeGraphConfig {
        phone_numbers: vec![FakePhoneNumber::new(PHONE, TOKEN).with_waba(WABA)],
        ..FakeGraphConfig::default()
    }
}

async fn start(templates: Vec<FakeTemplate>) -> FakeGraph {
    let mut config = config();
    config.templates = templates;
    FakeGraph::start(config).await
}

/// Sends a template; answers the error code, or 0 when accepted.
async fn send(fake: &FakeGraph, name: &str, language: &str, components: Value) -> (i64, Value) {
    let body = json!({
        "messaging_product": "whatsapp",
        "to": TO,
        "type": "template",
        "template": {"name": name, "language": {"code": language}, "components": components}
    });
    let response = reqwest::Client::new()
        .post(format!("{}/v23.0/{PHONE}/messages", fake.base_url()))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .expect("request reaches the fake");
    let status = response.status();
    let json: Value = response.json().await.unwrap_or(Value::Null);
    if status == StatusCode::OK {
        assert!(json["messages"][0]["id"].is_string(), "{json}");
        (0, json)
    } else {
        (json["error"]["code"].as_i64().unwrap_or(-1), json)
    }
}

/// Asserts the send is answered with `code` (0: accepted).
async fn expect(fake: &FakeGraph, name: &str, language: &str, components: Value, code: i64) {
    let (got, body) = send(fake, name, language, components.clone()).await;
    assert_eq!(got, code, "components {components}\nanswer {body}");
}

fn body_params(texts: &[&str]) -> Value {
    let params: Vec<Value> = texts
        .iter()
        .map(|t| json!({"type": "text", "text": t}))
        .collect();
    json!({"type": "body", "parameters": params})
}

fn media_header(kind: &str, media: Value) -> Value {
    json!({"type": "header", "parameters": [{"type": kind, kind: media}]})
}

fn header_template(name: &str, format: &str) -> FakeTemplate {
    FakeTemplate::from_meta(
        name,
        "es",
        "UTILITY",
        json!([
            {"type": "HEADER", "format": format,
             "example": {"header_handle": ["https://scontent.whatsapp.net/sample"]}},
            {"type": "BODY", "text": "Hola {{1}}", "example": {"body_text": [["Ana"]]}},
            {"type": "FOOTER", "text": "Gracias"}
        ]),
    )
}

// ---------------------------------------------------------------------------
// Meta-shaped templates
// ---------------------------------------------------------------------------

#[tokio::test]
async fn meta_shaped_template_is_listed_verbatim_and_loads_from_json() {
    let components = json!([
        {"type": "HEADER", "format": "DOCUMENT",
         "example": {"header_handle": ["https://scontent.whatsapp.net/v/t61/doc.pdf"]}},
        {"type": "BODY", "text": "Factura {{invoice}} de {{name}}",
         "example": {"body_text_named_params": [
             {"param_name": "invoice", "example": "F-1"}, {"param_name": "name", "example": "Ana"}]}},
        {"type": "BUTTONS", "buttons": [
            {"type": "QUICK_REPLY", "text": "Ok"},
            {"type": "COPY_CODE", "example": ["SAVE10"]},
            {"type": "FLOW", "text": "Abrir", "flow_id": "123", "flow_action": "navigate"}]}
    ]);
    // The --templates-file shape: Meta's components inside the fake's object.
    let template: FakeTemplate = serde_json::from_value(json!({
        "name": "invoice", "language": "es", "category": "UTILITY",
        "components": components, "waba_id": WABA
    }))
    .unwrap();
    assert_eq!(template.parameter_format(), "NAMED");
    let fake = start(vec![template]).await;
    let page: Value = reqwest::Client::new()
        .get(format!(
            "{}/v23.0/{WABA}/message_templates",
            fake.base_url()
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = &page["data"][0];
    assert_eq!(listed["components"], components);
    assert_eq!(listed["name"], "invoice");
    assert_eq!(listed["status"], "APPROVED");
    assert_eq!(listed["category"], "UTILITY");
    assert_eq!(listed["parameter_format"], "NAMED");
    assert!(listed["id"].as_str().is_some_and(|id| !id.is_empty()));

    // And a send is checked against those components.
    let doc = media_header(
        "document",
        json!({"link": "https://files.example/f-1.pdf", "filename": "F-1.pdf"}),
    );
    let named_body = json!({"type": "body", "parameters": [
        {"type": "text", "parameter_name": "invoice", "text": "F-1"},
        {"type": "text", "parameter_name": "name", "text": "Ana"}]});
    let coupon = json!({"type": "button", "sub_type": "copy_code", "index": "1",
        "parameters": [{"type": "coupon_code", "coupon_code": "SAVE10"}]});
    expect(&fake, "invoice", "es", json!([doc, named_body, coupon]), 0).await;
    // Positional params for a NAMED template.
    expect(
        &fake,
        "invoice",
        "es",
        json!([doc, body_params(&["F-1", "Ana"]), coupon]),
        100,
    )
    .await;
    let sent = fake.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].components_of("header")[0]["parameters"][0]["document"]["filename"],
        "F-1.pdf"
    );
}

#[tokio::test]
async fn media_headers_need_their_kind_and_one_source() {
    let fake = start(vec![
        header_template("img", "IMAGE"),
        header_template("vid", "VIDEO"),
        header_template("doc", "DOCUMENT"),
        header_template("gif", "GIF"),
    ])
    .await;
    let body = body_params(&["Ana"]);
    let link = json!({"link": "https://cdn.example/a"});
    for (name, kind) in [
        ("img", "image"),
        ("vid", "video"),
        ("doc", "document"),
        ("gif", "gif"),
    ] {
        expect(
            &fake,
            name,
            "es",
            json!([media_header(kind, link.clone()), body]),
            0,
        )
        .await;
        expect(
            &fake,
            name,
            "es",
            json!([media_header(kind, json!({"id": "4490709327384033"})), body]),
            0,
        )
        .await;
        // No header at all: Meta's "Format mismatch, expected IMAGE, received UNKNOWN".
        let (code, answer) = send(&fake, name, "es", json!([body])).await;
        assert_eq!(code, 132012, "{answer}");
        assert!(
            answer["error"]["error_data"]["details"]
                .as_str()
                .unwrap()
                .contains("expected")
        );
        // Both link and id, neither, a non-http link.
        expect(
            &fake,
            name,
            "es",
            json!([
                media_header(kind, json!({"link": "https://a.example/x", "id": "1"})),
                body
            ]),
            100,
        )
        .await;
        expect(
            &fake,
            name,
            "es",
            json!([media_header(kind, json!({})), body]),
            131008,
        )
        .await;
        expect(
            &fake,
            name,
            "es",
            json!([
                media_header(kind, json!({"link": "ftp://a.example/x"})),
                body
            ]),
            100,
        )
        .await;
        expect(
            &fake,
            name,
            "es",
            json!([media_header(kind, json!({"link": "not a url"})), body]),
            100,
        )
        .await;
    }
    // Wrong kind of media.
    expect(
        &fake,
        "img",
        "es",
        json!([media_header("video", link.clone()), body]),
        132012,
    )
    .await;
    expect(
        &fake,
        "doc",
        "es",
        json!([media_header("image", link.clone()), body]),
        132012,
    )
    .await;
    expect(
        &fake,
        "img",
        "es",
        json!([{"type": "header", "parameters": [{"type": "text", "text": "x"}]}, body]),
        132012,
    )
    .await;
    // filename only for documents.
    expect(
        &fake,
        "doc",
        "es",
        json!([
            media_header("document", json!({"id": "7", "filename": "a.pdf"})),
            body
        ]),
        0,
    )
    .await;
    expect(
        &fake,
        "img",
        "es",
        json!([
            media_header(
                "image",
                json!({"link": "https://a.example/x", "filename": "a.png"})
            ),
            body
        ]),
        100,
    )
    .await;
    // Two header parameters.
    let two = json!({"type": "header", "parameters": [
        {"type": "image", "image": link}, {"type": "image", "image": link}]});
    expect(&fake, "img", "es", json!([two, body]), 132000).await;
    // Body still counted.
    expect(
        &fake,
        "img",
        "es",
        json!([media_header("image", link.clone())]),
        132000,
    )
    .await;
    // Old builder templates go through the same checks.
    fake.add_template(
        FakeTemplate::new("old_doc", "es", "Factura {{1}}")
            .with_media_header("DOCUMENT")
            .with_quick_reply("Ok"),
    );
    expect(&fake, "old_doc", "es", json!([media_header("document", json!({"link": "https://a.example/f.pdf", "filename": "f.pdf"})), body,
        {"type": "button", "sub_type": "quick_reply", "index": 0, "parameters": [{"type": "payload", "payload": "OK-1"}]}]), 0).await;
    expect(
        &fake,
        "old_doc",
        "es",
        json!([media_header("image", link), body]),
        132012,
    )
    .await;
}

#[tokio::test]
async fn location_header_needs_coordinates_in_range() {
    let fake = start(vec![header_template("loc", "LOCATION")]).await;
    let body = body_params(&["Ana"]);
    let loc = |location: Value| json!({"type": "header", "parameters": [{"type": "location", "location": location}]});
    expect(&fake, "loc", "es", json!([loc(json!({"latitude": 8.98, "longitude": -79.52, "name": "Tienda", "address": "Calle 50"})), body]), 0).await;
    expect(
        &fake,
        "loc",
        "es",
        json!([
            loc(json!({"latitude": "8.98", "longitude": "-79.52"})),
            body
        ]),
        0,
    )
    .await;
    expect(
        &fake,
        "loc",
        "es",
        json!([loc(json!({"longitude": -79.52})), body]),
        131008,
    )
    .await;
    expect(
        &fake,
        "loc",
        "es",
        json!([loc(json!({"latitude": 8.98})), body]),
        131008,
    )
    .await;
    expect(
        &fake,
        "loc",
        "es",
        json!([loc(json!({"latitude": 91, "longitude": 0})), body]),
        100,
    )
    .await;
    expect(
        &fake,
        "loc",
        "es",
        json!([loc(json!({"latitude": 0, "longitude": -181})), body]),
        100,
    )
    .await;
    expect(
        &fake,
        "loc",
        "es",
        json!([loc(json!({"latitude": "north", "longitude": 0})), body]),
        100,
    )
    .await;
    expect(
        &fake,
        "loc",
        "es",
        json!([loc(json!({"latitude": 0, "longitude": 0, "name": 5})), body]),
        100,
    )
    .await;
    expect(
        &fake,
        "loc",
        "es",
        json!([
            media_header("image", json!({"link": "https://a.example/x"})),
            body
        ]),
        132012,
    )
    .await;
    expect(&fake, "loc", "es", json!([body]), 132012).await;
}

#[tokio::test]
async fn text_params_typed_params_and_named_params() {
    let positional = FakeTemplate::from_meta(
        "pay",
        "es",
        "UTILITY",
        json!([
            {"type": "HEADER", "format": "TEXT", "text": "Pago {{1}}", "example": {"header_text": ["A-1"]}},
            {"type": "BODY", "text": "Debes {{1}} antes del {{2}}",
             "example": {"body_text": [["$10", "lunes"]]}}
        ]),
    );
    let named = FakeTemplate::from_meta(
        "pay_named",
        "es",
        "UTILITY",
        json!([{"type": "BODY", "text": "Hola {{first_name}}",
                "example": {"body_text_named_params": [{"param_name": "first_name", "example": "Ana"}]}}]),
    )
    .with_parameter_format("NAMED");
    let fake = start(vec![positional, named]).await;
    let header = json!({"type": "header", "parameters": [{"type": "text", "text": "A-1"}]});
    let currency = json!({"type": "currency", "currency": {"fallback_value": "$10.00", "code": "USD", "amount_1000": 10000}});
    let date = json!({"type": "date_time", "date_time": {"fallback_value": "lunes 3"}});
    let body = |a: Value, b: Value| json!({"type": "body", "parameters": [a, b]});
    expect(
        &fake,
        "pay",
        "es",
        json!([header, body(currency.clone(), date.clone())]),
        0,
    )
    .await;
    expect(
        &fake,
        "pay",
        "es",
        json!([header, body_params(&["$10", "lunes"])]),
        0,
    )
    .await;
    // Currency fields.
    let mut bad = currency.clone();
    bad["currency"]["code"] = json!("US");
    expect(
        &fake,
        "pay",
        "es",
        json!([header, body(bad, date.clone())]),
        100,
    )
    .await;
    let mut bad = currency.clone();
    bad["currency"]["amount_1000"] = json!(10.5);
    expect(
        &fake,
        "pay",
        "es",
        json!([header, body(bad, date.clone())]),
        100,
    )
    .await;
    let mut bad = currency.clone();
    bad["currency"]
        .as_object_mut()
        .unwrap()
        .remove("fallback_value");
    expect(
        &fake,
        "pay",
        "es",
        json!([header, body(bad, date.clone())]),
        131008,
    )
    .await;
    let bad_date = json!({"type": "date_time", "date_time": {}});
    expect(
        &fake,
        "pay",
        "es",
        json!([header, body(currency.clone(), bad_date)]),
        131008,
    )
    .await;
    // A type Meta does not take in a body.
    let image = json!({"type": "image", "image": {"link": "https://a.example/x"}});
    expect(
        &fake,
        "pay",
        "es",
        json!([header, body(image, date.clone())]),
        132012,
    )
    .await;
    // Text rules: no new line, no tab, at most 4 consecutive spaces.
    expect(
        &fake,
        "pay",
        "es",
        json!([header, body_params(&["$10\n", "lunes"])]),
        132018,
    )
    .await;
    expect(
        &fake,
        "pay",
        "es",
        json!([header, body_params(&["$10", "lu\tnes"])]),
        132018,
    )
    .await;
    expect(
        &fake,
        "pay",
        "es",
        json!([header, body_params(&["$10", "lu     nes"])]),
        132018,
    )
    .await;
    expect(
        &fake,
        "pay",
        "es",
        json!([header, body_params(&["$10", "lu    nes"])]),
        0,
    )
    .await;
    expect(
        &fake,
        "pay",
        "es",
        json!([header, body_params(&["$10", ""])]),
        131008,
    )
    .await;
    // Header count.
    expect(
        &fake,
        "pay",
        "es",
        json!([body_params(&["$10", "lunes"])]),
        132000,
    )
    .await;
    // Named parameters.
    let named_param = |name: &str| json!({"type": "body", "parameters": [{"type": "text", "parameter_name": name, "text": "Ana"}]});
    expect(
        &fake,
        "pay_named",
        "es",
        json!([named_param("first_name")]),
        0,
    )
    .await;
    expect(
        &fake,
        "pay_named",
        "es",
        json!([named_param("name")]),
        132000,
    )
    .await;
    expect(
        &fake,
        "pay_named",
        "es",
        json!([body_params(&["Ana"])]),
        100,
    )
    .await;
    // Unknown component type, parameters not an array.
    expect(
        &fake,
        "pay_named",
        "es",
        json!([named_param("first_name"), {"type": "footer", "parameters": []}]),
        100,
    )
    .await;
    expect(
        &fake,
        "pay_named",
        "es",
        json!([{"type": "body", "parameters": {"a": 1}}]),
        100,
    )
    .await;
}

fn buttons_template() -> FakeTemplate {
    FakeTemplate::from_meta(
        "promo",
        "es",
        "MARKETING",
        json!([
            {"type": "BODY", "text": "Oferta"},
            {"type": "BUTTONS", "buttons": [
                {"type": "QUICK_REPLY", "text": "Me interesa"},
                {"type": "URL", "text": "Ver", "url": "https://shop.example/p/{{1}}", "example": ["https://shop.example/p/1"]},
                {"type": "COPY_CODE", "example": "SAVE10"},
                {"type": "PHONE_NUMBER", "text": "Llamar", "phone_number": "+50760000000"},
                {"type": "FLOW", "text": "Reservar", "flow_id": "1234"},
                {"type": "VOICE_CALL", "text": "Llamar por WhatsApp"},
                {"type": "URL", "text": "Web", "url": "https://shop.example"}
            ]}
        ]),
    )
}

fn button(sub_type: &str, index: Value, parameters: Value) -> Value {
    json!({"type": "button", "sub_type": sub_type, "index": index, "parameters": parameters})
}

#[tokio::test]
async fn buttons_are_checked_at_metas_index() {
    let fake = start(vec![buttons_template()]).await;
    let body = json!({"type": "body", "parameters": []});
    let qr = button(
        "quick_reply",
        json!("0"),
        json!([{"type": "payload", "payload": "LIKE-1"}]),
    );
    let url = button(
        "url",
        json!("1"),
        json!([{"type": "text", "text": "sku-9"}]),
    );
    let coupon = |code: &str| {
        button(
            "copy_code",
            json!("2"),
            json!([{"type": "coupon_code", "coupon_code": code}]),
        )
    };
    let flow = button(
        "flow",
        json!("4"),
        json!([{"type": "action", "action": {"flow_token": "T-1", "flow_action_data": {"day": "lunes"}}}]),
    );
    let required = || vec![body.clone(), url.clone(), coupon("SAVE10")];
    let with = |extra: Vec<Value>| {
        let mut all = required();
        all.extend(extra);
        Value::Array(all)
    };

    // Quick reply and flow are optional; URL (dynamic) and copy code required.
    expect(&fake, "promo", "es", with(vec![]), 0).await;
    expect(
        &fake,
        "promo",
        "es",
        with(vec![qr.clone(), flow.clone()]),
        0,
    )
    .await;
    // The index may also be a number.
    expect(
        &fake,
        "promo",
        "es",
        json!([
            body,
            button("url", json!(1), json!([{"type": "text", "text": "x"}])),
            coupon("A1")
        ]),
        0,
    )
    .await;
    expect(
        &fake,
        "promo",
        "es",
        json!([body, coupon("SAVE10")]),
        132000,
    )
    .await;
    expect(&fake, "promo", "es", json!([body, url]), 132000).await;
    // An index the template lacks; a sub_type of another button type.
    expect(
        &fake,
        "promo",
        "es",
        with(vec![button(
            "quick_reply",
            json!("9"),
            json!([{"type": "payload", "payload": "x"}]),
        )]),
        100,
    )
    .await;
    expect(
        &fake,
        "promo",
        "es",
        with(vec![button(
            "url",
            json!("0"),
            json!([{"type": "text", "text": "x"}]),
        )]),
        132012,
    )
    .await;
    expect(
        &fake,
        "promo",
        "es",
        json!([
            body,
            button(
                "quick_reply",
                json!("1"),
                json!([{"type": "payload", "payload": "x"}])
            ),
            coupon("A")
        ]),
        132012,
    )
    .await;
    expect(
        &fake,
        "promo",
        "es",
        with(vec![button("sparkle", json!("0"), json!([]))]),
        100,
    )
    .await;
    expect(
        &fake,
        "promo",
        "es",
        with(vec![button("quick_reply", json!("first"), json!([]))]),
        100,
    )
    .await;
    expect(
        &fake,
        "promo",
        "es",
        with(vec![
            json!({"type": "button", "index": "0", "parameters": []}),
        ]),
        131008,
    )
    .await;
    // Phone number and voice call buttons take no parameters.
    expect(
        &fake,
        "promo",
        "es",
        with(vec![button("phone_number", json!("3"), json!([]))]),
        132012,
    )
    .await;
    expect(
        &fake,
        "promo",
        "es",
        with(vec![button("voice_call", json!("5"), json!([]))]),
        132012,
    )
    .await;
    // A static URL button takes no parameter.
    expect(
        &fake,
        "promo",
        "es",
        with(vec![button(
            "url",
            json!("6"),
            json!([{"type": "text", "text": "x"}]),
        )]),
        132000,
    )
    .await;
    // Same index twice.
    expect(
        &fake,
        "promo",
        "es",
        with(vec![qr.clone(), qr.clone()]),
        100,
    )
    .await;
    // Quick-reply payload: one payload parameter, present, at most 1000 characters.
    expect(
        &fake,
        "promo",
        "es",
        with(vec![button(
            "quick_reply",
            json!("0"),
            json!([{"type": "text", "text": "x"}]),
        )]),
        132012,
    )
    .await;
    expect(
        &fake,
        "promo",
        "es",
        with(vec![button(
            "quick_reply",
            json!("0"),
            json!([{"type": "payload"}]),
        )]),
        131008,
    )
    .await;
    expect(
        &fake,
        "promo",
        "es",
        with(vec![button("quick_reply", json!("0"), json!([]))]),
        132000,
    )
    .await;
    let long = "p".repeat(1001);
    expect(
        &fake,
        "promo",
        "es",
        with(vec![button(
            "quick_reply",
            json!("0"),
            json!([{"type": "payload", "payload": long}]),
        )]),
        100,
    )
    .await;
    // Copy code: coupon_code of at most 15 characters.
    expect(
        &fake,
        "promo",
        "es",
        json!([body, url, coupon("ABCDEFGHIJKLMNO")]),
        0,
    )
    .await;
    expect(
        &fake,
        "promo",
        "es",
        json!([body, url, coupon("ABCDEFGHIJKLMNOP")]),
        100,
    )
    .await;
    expect(&fake, "promo", "es", json!([body, url, coupon("")]), 131008).await;
    expect(
        &fake,
        "promo",
        "es",
        json!([
            body,
            url,
            button(
                "copy_code",
                json!("2"),
                json!([{"type": "text", "text": "SAVE10"}])
            )
        ]),
        132012,
    )
    .await;
    // URL suffix must be text, non-empty.
    expect(
        &fake,
        "promo",
        "es",
        json!([
            body,
            button("url", json!("1"), json!([{"type": "text", "text": " "}])),
            coupon("A")
        ]),
        131008,
    )
    .await;
    // Flow: action parameter; token optional; flow_action_data an object.
    expect(
        &fake,
        "promo",
        "es",
        with(vec![button(
            "flow",
            json!("4"),
            json!([{"type": "action", "action": {}}]),
        )]),
        0,
    )
    .await;
    expect(
        &fake,
        "promo",
        "es",
        with(vec![button("flow", json!("4"), json!([]))]),
        0,
    )
    .await;
    expect(
        &fake,
        "promo",
        "es",
        with(vec![button(
            "flow",
            json!("4"),
            json!([{"type": "action", "action": {"flow_action_data": "day=1"}}]),
        )]),
        100,
    )
    .await;
    expect(
        &fake,
        "promo",
        "es",
        with(vec![button(
            "flow",
            json!("4"),
            json!([{"type": "payload", "payload": "x"}]),
        )]),
        132012,
    )
    .await;

    let sent = fake.sent();
    let last_with_qr = sent
        .iter()
        .find(|s| s.components_of("button").len() == 4)
        .expect("the send with every button");
    assert_eq!(
        last_with_qr.components_of("button")[2]["parameters"][0]["payload"],
        "LIKE-1"
    );
}

#[tokio::test]
async fn catalog_and_multi_product_buttons() {
    let catalog = FakeTemplate::from_meta(
        "catalog",
        "es",
        "MARKETING",
        json!([{"type": "BODY", "text": "Mira"},
               {"type": "BUTTONS", "buttons": [{"type": "CATALOG", "text": "Ver catálogo"}]}]),
    );
    let mpm = FakeTemplate::from_meta(
        "mpm",
        "es",
        "MARKETING",
        json!([{"type": "HEADER", "format": "TEXT", "text": "Novedades"},
               {"type": "BODY", "text": "Mira"},
               {"type": "BUTTONS", "buttons": [{"type": "MPM", "text": "Ver artículos"}]}]),
    );
    let fake = start(vec![catalog, mpm]).await;
    let action = |a: Value| json!([{"type": "action", "action": a}]);
    expect(&fake, "catalog", "es", json!([]), 0).await;
    expect(
        &fake,
        "catalog",
        "es",
        json!([button(
            "catalog",
            json!("0"),
            action(json!({"thumbnail_product_retailer_id": "sku-1"}))
        )]),
        0,
    )
    .await;
    expect(
        &fake,
        "catalog",
        "es",
        json!([button(
            "catalog",
            json!("0"),
            action(json!({"thumbnail_product_retailer_id": 5}))
        )]),
        100,
    )
    .await;
    expect(
        &fake,
        "catalog",
        "es",
        json!([button("mpm", json!("0"), json!([]))]),
        132012,
    )
    .await;
    let sections = json!([{"title": "Nuevos", "product_items": [{"product_retailer_id": "sku-1"}, {"product_retailer_id": "sku-2"}]}]);
    expect(
        &fake,
        "mpm",
        "es",
        json!([button(
            "mpm",
            json!("0"),
            action(json!({"thumbnail_product_retailer_id": "sku-1", "sections": sections}))
        )]),
        0,
    )
    .await;
    expect(&fake, "mpm", "es", json!([]), 132000).await;
    expect(
        &fake,
        "mpm",
        "es",
        json!([button(
            "mpm",
            json!("0"),
            action(json!({"sections": sections}))
        )]),
        131008,
    )
    .await;
    expect(&fake, "mpm", "es", json!([button("mpm", json!("0"), action(json!({"thumbnail_product_retailer_id": "sku-1", "sections": [{"title": "x", "product_items": []}]})))]), 100).await;
}

#[tokio::test]
async fn otp_code_goes_in_the_body_and_the_button() {
    // As the lead's sync sees it (OTP button) and as Meta lists copy-code
    // authentication buttons (URL with otp_type).
    let otp = FakeTemplate::from_meta(
        "login_code",
        "es",
        "AUTHENTICATION",
        json!([
            {"type": "BODY", "text": "*{{1}}* es tu código.", "add_security_recommendation": true},
            {"type": "FOOTER", "text": "Vence en 10 minutos."},
            {"type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "COPY_CODE", "text": "Copiar código"}]}
        ]),
    );
    let url_otp = FakeTemplate::from_meta(
        "login_code_url",
        "es",
        "AUTHENTICATION",
        json!([
            {"type": "BODY", "text": "*{{1}}* es tu código."},
            {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Copiar código",
              "url": "https://www.whatsapp.com/otp/code/?otp_type=COPY_CODE&code=otp{{1}}"}]}
        ]),
    );
    let fake = start(vec![otp, url_otp]).await;
    let code_button =
        |code: &str| button("url", json!("0"), json!([{"type": "text", "text": code}]));
    for name in ["login_code", "login_code_url"] {
        expect(
            &fake,
            name,
            "es",
            json!([body_params(&["482913"]), code_button("482913")]),
            0,
        )
        .await;
        expect(
            &fake,
            name,
            "es",
            json!([body_params(&["482913"]), code_button("000000")]),
            100,
        )
        .await;
        expect(&fake, name, "es", json!([body_params(&["482913"])]), 132000).await;
        expect(
            &fake,
            name,
            "es",
            json!([
                body_params(&["1234567890123456"]),
                code_button("1234567890123456")
            ]),
            100,
        )
        .await;
        expect(
            &fake,
            name,
            "es",
            json!([
                body_params(&["482913"]),
                button(
                    "copy_code",
                    json!("0"),
                    json!([{"type": "coupon_code", "coupon_code": "482913"}])
                )
            ]),
            132012,
        )
        .await;
        expect(&fake, name, "es", json!([code_button("482913")]), 132000).await;
    }
}

fn offer_template(has_expiration: bool) -> FakeTemplate {
    FakeTemplate::from_meta(
        if has_expiration {
            "offer"
        } else {
            "offer_open"
        },
        "es",
        "MARKETING",
        json!([
            {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["https://scontent.whatsapp.net/x"]}},
            {"type": "LIMITED_TIME_OFFER", "limited_time_offer": {"text": "¡Oferta!", "has_expiration": has_expiration}},
            {"type": "BODY", "text": "Usa {{1}}", "example": {"body_text": [["SAVE10"]]}},
            {"type": "BUTTONS", "buttons": [
                {"type": "COPY_CODE", "example": "SAVE10"},
                {"type": "URL", "text": "Comprar", "url": "https://shop.example/{{1}}", "example": ["https://shop.example/x"]}
            ]}
        ]),
    )
}

#[tokio::test]
async fn limited_time_offer_needs_its_expiration() {
    let fake = start(vec![
        offer_template(true),
        offer_template(false),
        header_template("img", "IMAGE"),
    ])
    .await;
    let offer = |v: Value| json!({"type": "limited_time_offer", "parameters": [{"type": "limited_time_offer", "limited_time_offer": v}]});
    let rest = |extra: Option<Value>| {
        let mut all = vec![
            media_header("image", json!({"link": "https://a.example/x.png"})),
            body_params(&["SAVE10"]),
            button(
                "copy_code",
                json!("0"),
                json!([{"type": "coupon_code", "coupon_code": "SAVE10"}]),
            ),
            button(
                "url",
                json!("1"),
                json!([{"type": "text", "text": "SAVE10"}]),
            ),
        ];
        all.extend(extra);
        Value::Array(all)
    };
    let ms = json!({"expiration_time_ms": 1_790_000_000_000_i64});
    expect(&fake, "offer", "es", rest(Some(offer(ms.clone()))), 0).await;
    expect(&fake, "offer", "es", rest(None), 131008).await;
    expect(&fake, "offer", "es", rest(Some(offer(json!({})))), 131008).await;
    expect(
        &fake,
        "offer",
        "es",
        rest(Some(offer(json!({"expiration_time_ms": "tomorrow"})))),
        100,
    )
    .await;
    expect(
        &fake,
        "offer",
        "es",
        rest(Some(offer(json!({"expiration_time_ms": 1.5})))),
        100,
    )
    .await;
    expect(
        &fake,
        "offer",
        "es",
        rest(Some(
            json!({"type": "limited_time_offer", "parameters": [{"type": "text", "text": "x"}]}),
        )),
        132012,
    )
    .await;
    // Without has_expiration the component may be left out.
    expect(&fake, "offer_open", "es", rest(None), 0).await;
    // A template without an offer refuses one.
    expect(
        &fake,
        "img",
        "es",
        json!([
            media_header("image", json!({"link": "https://a.example/x.png"})),
            body_params(&["Ana"]),
            offer(ms)
        ]),
        100,
    )
    .await;
}

fn carousel_template() -> FakeTemplate {
    let card = json!({"components": [
        {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["https://scontent.whatsapp.net/c"]}},
        {"type": "BODY", "text": "Producto {{1}}", "example": {"body_text": [["Rosa"]]}},
        {"type": "BUTTONS", "buttons": [
            {"type": "QUICK_REPLY", "text": "Quiero"},
            {"type": "URL", "text": "Ver", "url": "https://shop.example/{{1}}", "example": ["https://shop.example/rosa"]}
        ]}
    ]});
    FakeTemplate::from_meta(
        "carousel",
        "es",
        "MARKETING",
        json!([
            {"type": "BODY", "text": "Hola {{1}}, mira esto", "example": {"body_text": [["Ana"]]}},
            {"type": "CAROUSEL", "cards": [card.clone(), card]}
        ]),
    )
}

fn card(index: Value, header_kind: &str, product: &str) -> Value {
    json!({"card_index": index, "components": [
        media_header(header_kind, json!({"link": format!("https://cdn.example/{product}.png")})),
        body_params(&[product]),
        button("quick_reply", json!("0"), json!([{"type": "payload", "payload": format!("want-{product}")}])),
        button("url", json!("1"), json!([{"type": "text", "text": product}]))
    ]})
}

#[tokio::test]
async fn carousel_cards_are_checked_one_by_one() {
    let fake = start(vec![carousel_template()]).await;
    let body = body_params(&["Ana"]);
    let carousel = |cards: Vec<Value>| json!({"type": "carousel", "cards": cards});
    expect(
        &fake,
        "carousel",
        "es",
        json!([
            body,
            carousel(vec![
                card(json!(0), "image", "rosa"),
                card(json!(1), "image", "tulipan")
            ])
        ]),
        0,
    )
    .await;
    // The wrong number of cards, or none.
    let (code, answer) = send(
        &fake,
        "carousel",
        "es",
        json!([body, carousel(vec![card(json!(0), "image", "rosa")])]),
    )
    .await;
    assert_eq!(code, 132012, "{answer}");
    assert!(
        answer["error"]["error_data"]["details"]
            .as_str()
            .unwrap()
            .contains("cards")
    );
    expect(&fake, "carousel", "es", json!([body]), 132012).await;
    expect(
        &fake,
        "carousel",
        "es",
        json!([body, {"type": "carousel"}]),
        131008,
    )
    .await;
    // A card's header of another kind; a card's missing URL suffix.
    let (code, answer) = send(
        &fake,
        "carousel",
        "es",
        json!([
            body,
            carousel(vec![
                card(json!(0), "image", "rosa"),
                card(json!(1), "video", "tulipan")
            ])
        ]),
    )
    .await;
    assert_eq!(code, 132012);
    assert!(
        answer["error"]["error_data"]["details"]
            .as_str()
            .unwrap()
            .starts_with("cards[1].header"),
        "{answer}"
    );
    let mut no_url = card(json!(1), "image", "tulipan");
    no_url["components"].as_array_mut().unwrap().pop();
    expect(
        &fake,
        "carousel",
        "es",
        json!([
            body,
            carousel(vec![card(json!(0), "image", "rosa"), no_url])
        ]),
        132000,
    )
    .await;
    // card_index: distinct, in range, present.
    expect(
        &fake,
        "carousel",
        "es",
        json!([
            body,
            carousel(vec![
                card(json!(0), "image", "a"),
                card(json!(0), "image", "b")
            ])
        ]),
        100,
    )
    .await;
    expect(
        &fake,
        "carousel",
        "es",
        json!([
            body,
            carousel(vec![
                card(json!(0), "image", "a"),
                card(json!(2), "image", "b")
            ])
        ]),
        100,
    )
    .await;
    let mut no_index = card(json!(1), "image", "b");
    no_index.as_object_mut().unwrap().remove("card_index");
    expect(
        &fake,
        "carousel",
        "es",
        json!([body, carousel(vec![card(json!(0), "image", "a"), no_index])]),
        131008,
    )
    .await;
    // Cards may come in any order.
    expect(
        &fake,
        "carousel",
        "es",
        json!([
            body,
            carousel(vec![
                card(json!(1), "image", "a"),
                card(json!(0), "image", "b")
            ])
        ]),
        0,
    )
    .await;
    // The bubble's body is checked too.
    expect(
        &fake,
        "carousel",
        "es",
        json!([carousel(vec![
            card(json!(0), "image", "a"),
            card(json!(1), "image", "b")
        ])]),
        132000,
    )
    .await;
    assert_eq!(fake.sent().len(), 2);
}

// ---------------------------------------------------------------------------
// Authoring
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Received {
    signature_ok: bool,
    body: Value,
}

struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let store = received.clone();
        let app = axum::Router::new().route(
            "/webhooks/whatsapp",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let store = store.clone();
                async move {
                    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
                    mac.update(&body);
                    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
                    let given = headers
                        .get("x-hub-signature-256")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    store.lock().unwrap().push(Received {
                        signature_ok: given == expected,
                        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
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
}

async fn call(
    method: reqwest::Method,
    url: String,
    auth: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<Value>,
    raw: Option<Vec<u8>>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(auth) = auth {
        request = request.header("Authorization", auth);
    }
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    if let Some(raw) = raw {
        request = request.body(raw);
    }
    let response = request.send().await.expect("request reaches the fake");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Meta's resumable upload: start a session, then post the bytes.
async fn upload(fake: &FakeGraph, bytes: &[u8], file_type: &str) -> String {
    let bearer = format!("Bearer {TOKEN}");
    let (status, session) = call(
        reqwest::Method::POST,
        format!(
            "{}/v23.0/app-1/uploads?file_name=sample.png&file_length={}&file_type={file_type}",
            fake.base_url(),
            bytes.len()
        ),
        Some(&bearer),
        &[],
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let id = session["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("upload:"), "{id}");
    let oauth = format!("OAuth {TOKEN}");
    let (status, answer) = call(
        reqwest::Method::POST,
        format!("{}/v23.0/{id}", fake.base_url()),
        Some(&oauth),
        &[("file_offset", "0")],
        None,
        Some(bytes.to_vec()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["h"].as_str().unwrap().to_string()
}

fn image_template_request(name: &str, handle: &str) -> Value {
    json!({
        "name": name,
        "language": "es",
        "category": "MARKETING",
        "components": [
            {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": [handle]}},
            {"type": "BODY", "text": "Hola {{1}}, mira {{2}}", "example": {"body_text": [["Ana", "esto"]]}},
            {"type": "FOOTER", "text": "Tienda"},
            {"type": "BUTTONS", "buttons": [
                {"type": "QUICK_REPLY", "text": "Me interesa"},
                {"type": "URL", "text": "Ver", "url": "https://shop.example/{{1}}", "example": ["https://shop.example/x"]}
            ]}
        ]
    })
}

async fn create(fake: &FakeGraph, request: Value) -> (StatusCode, Value) {
    call(
        reqwest::Method::POST,
        format!("{}/v23.0/{WABA}/message_templates", fake.base_url()),
        Some(&format!("Bearer {TOKEN}")),
        &[],
        Some(request),
        None,
    )
    .await
}

async fn list(fake: &FakeGraph) -> Vec<Value> {
    let (_, page) = call(
        reqwest::Method::GET,
        format!("{}/v23.0/{WABA}/message_templates", fake.base_url()),
        Some(&format!("Bearer {TOKEN}")),
        &[],
        None,
        None,
    )
    .await;
    page["data"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn create_upload_review_send_and_delete() {
    let receiver = Receiver::start().await;
    let fake = FakeGraph::start(config().with_webhook(&receiver.url, SECRET)).await;

    let png = b"\x89PNG\r\n\x1a\nfake image bytes".to_vec();
    let handle = upload(&fake, &png, "image/png").await;
    let uploads = fake.uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].bytes, png);
    assert_eq!(uploads[0].file_type, "image/png");
    assert_eq!(uploads[0].handle.as_deref(), Some(handle.as_str()));

    let (status, created) = create(&fake, image_template_request("spring_sale", &handle)).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["status"], "PENDING");
    assert_eq!(created["category"], "MARKETING");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(fake.created_templates()[0].id, id);
    assert_eq!(fake.created_templates()[0].request["name"], "spring_sale");

    let listed = list(&fake).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["status"], "PENDING");
    assert_eq!(listed[0]["parameter_format"], "POSITIONAL");
    assert_eq!(listed[0]["components"][0]["format"], "IMAGE");

    // Not sendable while pending.
    let components = json!([
        media_header("image", json!({"link": "https://cdn.example/a.png"})),
        body_params(&["Ana", "esto"]),
        button("url", json!("1"), json!([{"type": "text", "text": "x"}]))
    ]);
    expect(&fake, "spring_sale", "es", components.clone(), 132001).await;

    // Approve: status and a signed webhook.
    let (payload, delivered) = fake
        .review_template(&id, "APPROVED", None)
        .await
        .expect("the template exists");
    assert!(delivered);
    let received = receiver.all();
    assert_eq!(received.len(), 1);
    assert!(received[0].signature_ok);
    assert_eq!(received[0].body, payload);
    let change = &received[0].body["entry"][0]["changes"][0];
    assert_eq!(received[0].body["entry"][0]["id"], WABA);
    assert_eq!(change["field"], "message_template_status_update");
    assert_eq!(change["value"]["event"], "APPROVED");
    assert_eq!(change["value"]["message_template_id"].to_string(), id);
    assert_eq!(change["value"]["message_template_name"], "spring_sale");
    assert_eq!(change["value"]["message_template_language"], "es");
    assert_eq!(list(&fake).await[0]["status"], "APPROVED");
    expect(&fake, "spring_sale", "es", components.clone(), 0).await;
    // The new template's components are checked like any other.
    expect(
        &fake,
        "spring_sale",
        "es",
        json!([body_params(&["Ana", "esto"])]),
        132012,
    )
    .await;

    // Reject through the HTTP hook.
    let (_, second) = create(&fake, image_template_request("second_sale", &handle)).await;
    let second_id = second["id"].as_str().unwrap().to_string();
    let (status, answer) = call(
        reqwest::Method::POST,
        format!("{}/_fake/templates/{second_id}/review", fake.base_url()),
        None,
        &[],
        Some(json!({"event": "REJECTED", "reason": "INVALID_FORMAT"})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["webhook_delivered"], true);
    let last = receiver.all().last().unwrap().body.clone();
    assert_eq!(last["entry"][0]["changes"][0]["value"]["event"], "REJECTED");
    assert_eq!(
        last["entry"][0]["changes"][0]["value"]["reason"],
        "INVALID_FORMAT"
    );
    let (_, unknown) = call(
        reqwest::Method::POST,
        format!("{}/_fake/templates/404/review", fake.base_url()),
        None,
        &[],
        Some(json!({"event": "APPROVED"})),
        None,
    )
    .await;
    assert_eq!(unknown["error"]["code"], 100);

    // Delete by name (all languages), then by name and hsm_id.
    let bearer = format!("Bearer {TOKEN}");
    let delete = |query: String| {
        call(
            reqwest::Method::DELETE,
            format!("{}/v23.0/{WABA}/message_templates?{query}", fake.base_url()),
            Some(bearer.as_str()),
            &[],
            None,
            None,
        )
    };
    let (status, answer) = delete("name=spring_sale".into()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer, json!({"success": true}));
    let (_, answer) = delete(format!("name=second_sale&hsm_id={id}")).await;
    assert_eq!(answer["error"]["code"], 100, "hsm_id of another template");
    let (_, answer) = delete(format!("name=second_sale&hsm_id={second_id}")).await;
    assert_eq!(answer, json!({"success": true}));
    let (_, answer) = delete("name=spring_sale".into()).await;
    assert_eq!(answer["error"]["code"], 100);
    let (_, answer) = delete(String::new()).await;
    assert_eq!(answer["error"]["code"], 100);
    assert!(list(&fake).await.is_empty());
    let deleted = fake.deleted_templates();
    assert_eq!(deleted.len(), 2);
    assert_eq!(deleted[0].ids, vec![id.clone()]);
    assert_eq!(deleted[1].hsm_id.as_deref(), Some(second_id.as_str()));
    expect(&fake, "spring_sale", "es", components, 132001).await;

    let stats = fake.stats();
    assert_eq!(stats["templates"]["created"], 2);
    assert_eq!(stats["templates"]["deleted"], 2);
    assert_eq!(stats["templates"]["uploads"], 1);
}

#[tokio::test]
async fn created_templates_approve_after_the_configured_delay() {
    let receiver = Receiver::start().await;
    let mut config = config().with_webhook(&receiver.url, SECRET);
    config.auto_approve_after = Some(Duration::from_millis(50));
    let fake = FakeGraph::start(config).await;
    let handle = fake.issue_upload_handle();
    let started = Instant::now();
    let (_, created) = create(&fake, image_template_request("auto_sale", &handle)).await;
    assert_eq!(created["status"], "PENDING");
    assert!(fake.wait_webhooks_idle(Duration::from_secs(10)).await);
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(list(&fake).await[0]["status"], "APPROVED");
    let received = receiver.all();
    assert_eq!(received.len(), 1);
    assert!(received[0].signature_ok);
    assert_eq!(
        received[0].body["entry"][0]["changes"][0]["value"]["event"],
        "APPROVED"
    );
    assert_eq!(
        received[0].body["entry"][0]["changes"][0]["value"]["message_template_id"].to_string(),
        created["id"].as_str().unwrap()
    );
}

#[tokio::test]
async fn creation_is_validated_like_meta() {
    let fake = start(vec![]).await;
    let handle = fake.issue_upload_handle();
    let good = image_template_request("good_one", &handle);
    let refused = |mutate: &dyn Fn(&mut Value)| {
        let mut request = good.clone();
        mutate(&mut request);
        request
    };
    let cases: Vec<(&str, Value)> = vec![
        (
            "upper-case name",
            refused(&|r| r["name"] = json!("Spring-Sale")),
        ),
        (
            "long name",
            refused(&|r| r["name"] = json!("a".repeat(513))),
        ),
        (
            "no language",
            refused(&|r| {
                r.as_object_mut().unwrap().remove("language");
            }),
        ),
        ("bad category", refused(&|r| r["category"] = json!("PROMO"))),
        (
            "handle not issued",
            refused(&|r| r["components"][0]["example"]["header_handle"] = json!(["4::made-up"])),
        ),
        (
            "no handle",
            refused(&|r| {
                r["components"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("example");
            }),
        ),
        (
            "no body examples",
            refused(&|r| {
                r["components"][1]
                    .as_object_mut()
                    .unwrap()
                    .remove("example");
            }),
        ),
        (
            "examples short",
            refused(&|r| r["components"][1]["example"]["body_text"] = json!([["Ana"]])),
        ),
        (
            "placeholders out of order",
            refused(&|r| r["components"][1]["text"] = json!("Hola {{2}}, mira {{1}}")),
        ),
        (
            "named without NAMED",
            refused(&|r| r["components"][1]["text"] = json!("Hola {{name}}")),
        ),
        (
            "no body",
            refused(&|r| {
                r["components"].as_array_mut().unwrap().remove(1);
            }),
        ),
        (
            "long footer",
            refused(&|r| r["components"][2]["text"] = json!("f".repeat(61))),
        ),
        (
            "11 buttons",
            refused(&|r| {
                r["components"][3]["buttons"] =
                    json!(vec![json!({"type": "QUICK_REPLY", "text": "x"}); 11])
            }),
        ),
        (
            "3 URL buttons",
            refused(&|r| {
                r["components"][3]["buttons"] = json!(vec![
                    json!({"type": "URL", "text": "x", "url": "https://a.example"});
                    3
                ])
            }),
        ),
        (
            "URL example missing",
            refused(&|r| {
                r["components"][3]["buttons"][1]
                    .as_object_mut()
                    .unwrap()
                    .remove("example");
            }),
        ),
        (
            "long button text",
            refused(&|r| r["components"][3]["buttons"][0]["text"] = json!("b".repeat(26))),
        ),
        (
            "unknown component",
            refused(&|r| {
                r["components"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "STICKER"}))
            }),
        ),
        (
            "OTP in marketing",
            refused(&|r| {
                r["components"][3]["buttons"] = json!([{"type": "OTP", "otp_type": "COPY_CODE"}])
            }),
        ),
        (
            "offer with a footer",
            refused(&|r| {
                r["components"].as_array_mut().unwrap().push(
                    json!({"type": "LIMITED_TIME_OFFER", "limited_time_offer": {"text": "Oferta"}}),
                )
            }),
        ),
        (
            "utility offer",
            refused(&|r| {
                r["category"] = json!("UTILITY");
                r["components"][2] =
                    json!({"type": "LIMITED_TIME_OFFER", "limited_time_offer": {"text": "Oferta"}});
            }),
        ),
        (
            "header in an authentication template",
            refused(&|r| {
                r["category"] = json!("AUTHENTICATION");
                r["components"][3]["buttons"] = json!([{"type": "OTP", "otp_type": "COPY_CODE"}]);
            }),
        ),
        (
            "long coupon example",
            refused(&|r| {
                r["components"][3]["buttons"] =
                    json!([{"type": "COPY_CODE", "example": "ABCDEFGHIJKLMNOP"}])
            }),
        ),
    ];
    for (case, request) in cases {
        let (status, answer) = create(&fake, request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{case}: {answer}");
        assert_eq!(answer["error"]["code"], 100, "{case}: {answer}");
    }
    assert!(fake.created_templates().is_empty());

    // Named parameters with parameter_format NAMED, an authentication
    // template, a carousel and a limited-time offer are accepted.
    let (status, answer) = create(
        &fake,
        json!({"name": "named_one", "language": "es", "category": "UTILITY", "parameter_format": "NAMED",
               "components": [{"type": "BODY", "text": "Hola {{first_name}}",
                               "example": {"body_text_named_params": [{"param_name": "first_name", "example": "Ana"}]}}]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) = create(
        &fake,
        json!({"name": "login_code", "language": "es", "category": "AUTHENTICATION",
               "components": [{"type": "BODY", "add_security_recommendation": true},
                              {"type": "FOOTER", "code_expiration_minutes": 10},
                              {"type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "COPY_CODE"}]}]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["category"], "AUTHENTICATION");
    let card = json!({"components": [
        {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": [handle]}},
        {"type": "BODY", "text": "Producto {{1}}", "example": {"body_text": [["Rosa"]]}},
        {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Quiero"}]}]});
    let (status, answer) = create(
        &fake,
        json!({"name": "flowers", "language": "es", "category": "MARKETING",
               "components": [{"type": "BODY", "text": "Mira"}, {"type": "CAROUSEL", "cards": [card.clone(), card]}]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) = create(
        &fake,
        json!({"name": "offer", "language": "es", "category": "marketing",
               "components": [{"type": "limited_time_offer", "limited_time_offer": {"text": "¡Oferta!", "has_expiration": true}},
                              {"type": "body", "text": "Usa SAVE10"},
                              {"type": "buttons", "buttons": [{"type": "copy_code", "example": "SAVE10"}]}]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // The same name and language again.
    let (_, answer) = create(
        &fake,
        json!({"name": "offer", "language": "es", "category": "MARKETING",
        "components": [{"type": "BODY", "text": "x"}]}),
    )
    .await;
    assert_eq!(answer["error"]["code"], 100);
    assert_eq!(answer["error"]["error_subcode"], 2388024);

    // Listed as Meta lists them; the authentication body gets its text and a
    // send of it follows the OTP rules.
    let listed = list(&fake).await;
    assert_eq!(listed.len(), 4);
    let login = listed.iter().find(|t| t["name"] == "login_code").unwrap();
    assert!(
        login["components"][0]["text"]
            .as_str()
            .unwrap()
            .contains("{{1}}")
    );
    // Meta turns the OTP button into a URL button when it creates the template.
    let otp_button = &login["components"][2]["buttons"][0];
    assert_eq!(otp_button["type"], "URL");
    assert_eq!(
        otp_button["url"],
        "https://www.whatsapp.com/otp/code/?otp_type=COPY_CODE&code=otp{{1}}"
    );
    assert_eq!(
        login["components"][1]["text"],
        "This code expires in 10 minutes."
    );
    let offer = listed.iter().find(|t| t["name"] == "offer").unwrap();
    assert_eq!(offer["components"][0]["type"], "LIMITED_TIME_OFFER");
    assert_eq!(offer["components"][2]["buttons"][0]["type"], "COPY_CODE");
    let named = listed.iter().find(|t| t["name"] == "named_one").unwrap();
    assert_eq!(named["parameter_format"], "NAMED");
    let login_id = login["id"].as_str().unwrap().to_string();
    fake.review_template(&login_id, "APPROVED", None)
        .await
        .unwrap();
    expect(
        &fake,
        "login_code",
        "es",
        json!([
            body_params(&["123456"]),
            button(
                "url",
                json!("0"),
                json!([{"type": "text", "text": "123456"}])
            )
        ]),
        0,
    )
    .await;
    expect(
        &fake,
        "login_code",
        "es",
        json!([body_params(&["123456"])]),
        132000,
    )
    .await;

    // The token is checked.
    let (status, answer) = call(
        reqwest::Method::POST,
        format!("{}/v23.0/{WABA}/message_templates", fake.base_url()),
        Some("Bearer wrong"),
        &[],
        Some(good.clone()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer["error"]["code"], 190);
    let (_, answer) = call(
        reqwest::Method::DELETE,
        format!(
            "{}/v23.0/{WABA}/message_templates?name=offer",
            fake.base_url()
        ),
        None,
        &[],
        None,
        None,
    )
    .await;
    assert_eq!(answer["error"]["code"], 190);
    // Another account's WABA with a known token.
    let (_, answer) = call(
        reqwest::Method::POST,
        format!("{}/v23.0/other-waba/message_templates", fake.base_url()),
        Some(&format!("Bearer {TOKEN}")),
        &[],
        Some(good),
        None,
    )
    .await;
    assert_eq!(answer["error"]["code"], 100);
}

#[tokio::test]
async fn resumable_upload_is_checked() {
    let fake = start(vec![]).await;
    let base = fake.base_url().to_string();
    let bearer = format!("Bearer {TOKEN}");
    let start_session = |query: &str| {
        call(
            reqwest::Method::POST,
            format!("{base}/v23.0/app-1/uploads?{query}"),
            Some(bearer.as_str()),
            &[],
            None,
            None,
        )
    };
    let (_, answer) = start_session("file_name=a.gif&file_length=4&file_type=image/gif").await;
    assert_eq!(answer["error"]["code"], 100, "{answer}");
    let (_, answer) = start_session("file_name=a.png&file_length=0&file_type=image/png").await;
    assert_eq!(answer["error"]["code"], 100);
    let (_, answer) = start_session("file_name=a.png&file_type=image/png").await;
    assert_eq!(answer["error"]["code"], 100);
    let (status, answer) = call(
        reqwest::Method::POST,
        format!("{base}/v23.0/app-1/uploads?file_name=a.png&file_length=4&file_type=image/png"),
        Some("Bearer nope"),
        &[],
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer["error"]["code"], 190);

    let (_, session) =
        start_session("file_name=doc.pdf&file_length=8&file_type=application/pdf").await;
    let id = session["id"].as_str().unwrap().to_string();
    let url = format!("{base}/v23.0/{id}");
    let oauth = format!("OAuth {TOKEN}");
    let post = |auth: Option<String>, offset: Option<&'static str>, bytes: &'static [u8]| {
        let headers: Vec<(&str, &str)> =
            offset.map(|o| vec![("file_offset", o)]).unwrap_or_default();
        let url = url.clone();
        async move {
            call(
                reqwest::Method::POST,
                url,
                auth.as_deref(),
                &headers,
                None,
                Some(bytes.to_vec()),
            )
            .await
        }
    };
    // Bearer is not the upload API's scheme; file_offset is required and
    // must match; more bytes than announced are refused.
    let (_, answer) = post(Some(bearer.clone()), Some("0"), b"%PDF").await;
    assert_eq!(answer["error"]["code"], 190);
    let (_, answer) = post(Some(oauth.clone()), None, b"%PDF").await;
    assert_eq!(answer["error"]["code"], 100);
    let (_, answer) = post(Some(oauth.clone()), Some("3"), b"%PDF").await;
    assert_eq!(answer["error"]["code"], 100);
    let (_, answer) = post(Some(oauth.clone()), Some("0"), b"%PDF-1.7-too-long").await;
    assert_eq!(answer["error"]["code"], 100);
    // In two parts: the first answers the offset, the second the handle.
    let (_, answer) = post(Some(oauth.clone()), Some("0"), b"%PDF").await;
    assert_eq!(answer["file_offset"], 4, "{answer}");
    let (_, status) = call(
        reqwest::Method::GET,
        url.clone(),
        Some(&oauth),
        &[],
        None,
        None,
    )
    .await;
    assert_eq!(status["file_offset"], 4);
    let (_, answer) = post(Some(oauth.clone()), Some("4"), b"-1.7").await;
    let handle = answer["h"].as_str().expect("a handle").to_string();
    assert_eq!(fake.uploads()[0].bytes, b"%PDF-1.7");
    // The handle works as a DOCUMENT sample.
    let (status, answer) = call(
        reqwest::Method::POST,
        format!("{base}/v23.0/{WABA}/message_templates"),
        Some(&bearer),
        &[],
        Some(json!({"name": "invoice", "language": "es", "category": "UTILITY",
                    "components": [{"type": "HEADER", "format": "DOCUMENT", "example": {"header_handle": [handle]}},
                                   {"type": "BODY", "text": "Tu factura"}]})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // An unknown session.
    let (_, answer) = call(
        reqwest::Method::POST,
        format!("{base}/v23.0/upload:nope"),
        Some(&oauth),
        &[("file_offset", "0")],
        None,
        Some(b"x".to_vec()),
    )
    .await;
    assert_eq!(answer["error"]["code"], 100);
}

/// Kills the child process when dropped.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn binary_loads_meta_shaped_templates_and_auto_approves() {
    use std::io::{BufRead, BufReader};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("templates.json");
    let components = carousel_template().components.unwrap();
    std::fs::write(
        &path,
        serde_json::to_string(&json!([
            {"name": "carousel", "language": "es", "category": "MARKETING", "components": components}
        ]))
        .unwrap(),
    )
    .unwrap();
    let mut child = ChildGuard(
        std::process::Command::new(env!("CARGO_BIN_EXE_fake-graph"))
            .args(["--listen", "127.0.0.1:0", "--auto-approve-ms", "10"])
            .arg("--templates-file")
            .arg(&path)
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
    let base = format!(
        "http://{}",
        first.trim().strip_prefix("listening on ").expect(&first)
    );
    let client = reqwest::Client::new();
    let listed: Value = client
        .get(format!("{base}/v23.0/{WABA}/message_templates"))
        .bearer_auth("any-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"][0]["components"], components);
    // A send with one card too few is refused as Meta does.
    let send = |cards: Vec<Value>| {
        client
            .post(format!("{base}/v23.0/{PHONE}/messages"))
            .bearer_auth("any-token")
            .json(
                &json!({"messaging_product": "whatsapp", "to": TO, "type": "template",
                "template": {"name": "carousel", "language": {"code": "es"},
                    "components": [body_params(&["Ana"]), {"type": "carousel", "cards": cards}]}}),
            )
            .send()
    };
    let answer: Value = send(vec![card(json!(0), "image", "a")])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["error"]["code"], 132012, "{answer}");
    let response = send(vec![
        card(json!(0), "image", "a"),
        card(json!(1), "image", "b"),
    ])
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // --auto-approve-ms: a created template turns APPROVED on its own.
    let (status, created) = call(
        reqwest::Method::POST,
        format!("{base}/v23.0/{WABA}/message_templates"),
        Some("Bearer any-token"),
        &[],
        Some(
            json!({"name": "plain", "language": "es", "category": "UTILITY",
                    "components": [{"type": "BODY", "text": "Hola"}]}),
        ),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["status"], "PENDING");
    // The binary has no hook to wait on: poll the listing.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page: Value = client
            .get(format!("{base}/v23.0/{WABA}/message_templates?name=plain"))
            .bearer_auth("any-token")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if page["data"][0]["status"] == "APPROVED" {
            break;
        }
        assert!(Instant::now() < deadline, "never approved: {page}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
