// Templates authored from plantilla (`POST /v1/templates`, `DELETE /v1/templates/{id}`, the
// admin API's submit and delete) over real HTTP against the fake Graph API: the media sample
// goes through Meta's resumable upload, the creation request carries the handle and the
// examples, Meta's review webhook moves the template, refusals reach nothing.

use crate::common;

use std::time::Duration;

use base64::Engine;
use common::*;
use fake_graph::{DEFAULT_WABA_ID, FakeGraph, FakeGraphConfig, FakeTemplate};
use reqwest::StatusCode;
use serde_json::{Value, json};

const PN: &str = "106540352242922";
const TOKEN: &str = "EAAG-authoring-token";
const APP_SECRET: &str = "fake-app-secret";
const META_APP: &str = "778899";

/// A tiny PNG (its signature and padding are enough for Meta's upload API).
fn png() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.resize(300, 7);
    bytes
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

struct Cloud {
    t: TestApp,
    fake: FakeGraph,
    account_id: String,
    channel_id: String,
    token: String,
}

async fn spawn_cloud() -> Cloud {
    spawn_cloud_with(FakeGraphConfig::default()).await
}

async fn spawn_cloud_with(config: FakeGraphConfig) -> Cloud {
    let fake = FakeGraph::start(
        FakeGraphConfig {
            app_secret: APP_SECRET.into(),
            status_delay: Duration::ZERO,
            ..config
        }
        .with_phone(PN, TOKEN),
    )
    .await;
    let base = fake.base_url().to_string();
    let t = spawn_app_with(|c| {
        c.graph_base_url = base;
        c.meta_app_secret = Some(plantilla::config::Secret::new(APP_SECRET));
        c.meta_app_id = Some(META_APP.into());
    })
    .await;
    fake.set_webhook_url(Some(format!("{}/webhooks/whatsapp", t.base)));
    let account = t
        .create("/v1/admin/accounts", json!({"name": "Acme"}))
        .await;
    let channel = t
        .create(
            "/v1/admin/channels",
            json!({"accountId": account["id"], "name": "Main", "provider": "cloud",
                   "phoneNumberId": PN, "wabaId": DEFAULT_WABA_ID, "accessToken": TOKEN,
                   "messagesPerSecond": 1000}),
        )
        .await;
    Cloud {
        account_id: s(&account["id"]),
        channel_id: s(&channel["id"]),
        token: s(&channel["publicToken"]),
        t,
        fake,
    }
}

async fn api_key(t: &TestApp, account_id: &str) -> String {
    let key = t
        .create(
            &format!("/v1/admin/accounts/{account_id}/api-keys"),
            json!({"name": "crm"}),
        )
        .await;
    s(&key["key"])
}

async fn post(t: &TestApp, path: &str, token: &str, body: &Value) -> Reply {
    t.call("POST", path, Some(token), Some(&body.to_string()))
        .await
}

/// A marketing template with an IMAGE header (inline sample), named placeholders and a
/// quick reply.
fn promo() -> Value {
    json!({
        "name": "promo_verano",
        "language": "es",
        "category": "MARKETING",
        "header": {"format": "IMAGE",
                   "sample": {"data": b64(&png()), "mimeType": "image/png", "filename": "promo.png"}},
        "message": "Hola {{name}}, tu cupón {{code}} vence pronto",
        "footer": "Acme",
        "buttons": [{"type": "QUICK_REPLY", "text": "Me interesa"},
                    {"type": "URL", "text": "Ver", "url": "https://acme.example/p/{{1}}"}],
        "examples": {"name": "Ana", "code": "VERANO10", "1": "sku-1"}
    })
}

fn send(template_id: &str) -> Value {
    json!({"to": "50755667701", "templateId": template_id,
           "params": {"name": "Ana", "code": "V1", "1": "sku-9"},
           "header": {"link": "https://cdn.acme.example/promo.png"}})
}

/// Registers an endpoint for `template.status_changed`, so status changes are queued.
async fn subscribe(t: &TestApp, token: &str) {
    let r = post(
        t,
        "/v1/webhook-endpoints",
        token,
        &json!({"url": "https://hooks.acme.example/plantilla", "eventTypes": ["template.status_changed"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
}

async fn template(t: &TestApp, id: &str, token: &str) -> Reply {
    t.call("GET", &format!("/v1/templates/{id}"), Some(token), None)
        .await
}

async fn wait_status(t: &TestApp, id: &str, token: &str, status: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = template(t, id, token).await;
        if r.json["status"] == status {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "template never became {status}: {}",
            r.json
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

both_databases!(a_cloud_template_uploads_its_sample_submits_and_follows_metas_review);
async fn a_cloud_template_uploads_its_sample_submits_and_follows_metas_review() {
    let c = spawn_cloud().await;
    subscribe(&c.t, &c.token).await;
    let r = post(&c.t, "/v1/templates", &c.token, &promo()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["status"], "PENDING");
    assert_eq!(r.json["category"], "MARKETING");
    assert_eq!(r.json["parameterFormat"], "NAMED");
    let id = s(&r.json["id"]);

    // The sample went through the resumable upload of the configured app.
    let uploads = c.fake.uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].app_id, META_APP);
    assert_eq!(uploads[0].file_type, "image/png");
    assert_eq!(uploads[0].file_name, "promo.png");
    assert_eq!(uploads[0].bytes, png());
    let handle = uploads[0].handle.clone().expect("upload finished");

    // The creation request: the handle, the examples, Meta's field names.
    let created = c.fake.created_templates();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].waba_id, DEFAULT_WABA_ID);
    assert_eq!(r.json["appId"], created[0].id.as_str());
    let req = &created[0].request;
    assert_eq!(req["name"], "promo_verano");
    assert_eq!(req["category"], "MARKETING");
    assert_eq!(req["parameter_format"], "NAMED");
    let comps = req["components"].as_array().unwrap();
    assert_eq!(
        comps[0],
        json!({"type": "HEADER", "format": "IMAGE", "example": {"header_handle": [handle]}})
    );
    assert_eq!(
        comps[1]["example"]["body_text_named_params"],
        json!([{"param_name": "name", "example": "Ana"}, {"param_name": "code", "example": "VERANO10"}])
    );
    assert_eq!(comps[2], json!({"type": "FOOTER", "text": "Acme"}));
    assert_eq!(
        comps[3]["buttons"][1]["example"],
        json!(["https://acme.example/p/sku-1"])
    );
    // The stored header keeps Meta's handle as its sample.
    assert_eq!(r.json["header"]["sample"], handle.as_str());

    // PENDING: a send is refused before anything is queued.
    let refused = post(&c.t, "/v1/messages", &c.token, &send(&id)).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.json
    );
    assert_eq!(refused.json["type"], "/problems/template-not-sendable");
    assert_eq!(refused.json["templateStatus"], "PENDING");

    // Meta approves: its signed webhook moves the template.
    let (_, delivered) = c
        .fake
        .review_template(&created[0].id, "APPROVED", None)
        .await
        .expect("the fake knows the template");
    assert!(delivered, "the webhook reached plantilla");
    assert_eq!(
        template(&c.t, &id, &c.token).await.json["status"],
        "APPROVED"
    );
    let events =
        c.t.sql_i64(
            "SELECT count(*) FROM callback_outbox WHERE event_type = 'template.status_changed'",
        )
        .await;
    assert!(events >= 1, "template.status_changed queued");

    let accepted = post(&c.t, "/v1/messages", &c.token, &send(&id)).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.json);
    c.t.drain().await;
    let sent = c.fake.sent();
    let last = sent.last().expect("the send reached the fake");
    assert_eq!(last.template, "promo_verano");
}

both_databases!(a_rejected_template_stays_unsendable);
async fn a_rejected_template_stays_unsendable() {
    let c = spawn_cloud().await;
    let key = api_key(&c.t, &c.account_id).await;
    let mut body = promo();
    body["channelId"] = json!(c.channel_id);
    let r = post(&c.t, "/v1/templates", &key, &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let id = s(&r.json["id"]);
    let meta_id = s(&r.json["appId"]);
    c.fake
        .review_template(&meta_id, "REJECTED", Some("INVALID_FORMAT"))
        .await
        .unwrap();
    assert_eq!(template(&c.t, &id, &key).await.json["status"], "REJECTED");
    let mut s_body = send(&id);
    s_body["channelId"] = json!(c.channel_id);
    let refused = post(&c.t, "/v1/messages", &key, &s_body).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.json
    );
    assert_eq!(refused.json["templateStatus"], "REJECTED");
}

both_databases!(every_refusal_names_its_field_and_nothing_reaches_meta);
async fn every_refusal_names_its_field_and_nothing_reaches_meta() {
    let c = spawn_cloud().await;
    let with = |patch: Value| {
        let mut body = promo();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body
    };
    let auth = |patch: Value| {
        let mut body = json!({"name": "otp_code", "language": "es", "category": "AUTHENTICATION",
                              "buttons": [{"type": "OTP", "otpType": "COPY_CODE"}]});
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        ("bad name", with(json!({"name": "Promo Verano"})), "name"),
        ("long name", with(json!({"name": "a".repeat(513)})), "name"),
        ("no language", with(json!({"language": null})), "language"),
        (
            "bad language",
            with(json!({"language": "spanish"})),
            "language",
        ),
        ("no category", with(json!({"category": null})), "category"),
        (
            "bad category",
            with(json!({"category": "PROMO"})),
            "category",
        ),
        ("no message", with(json!({"message": null})), "message"),
        (
            "mixed placeholders",
            with(json!({"message": "Hola {{name}} {{1}}"})),
            "message",
        ),
        (
            "gap in positional",
            with(json!({"message": "Hola {{1}} y {{3}}", "examples": {"1": "a", "3": "c"}})),
            "message",
        ),
        (
            "missing example",
            with(json!({"examples": {"name": "Ana", "1": "x"}})),
            "examples.code",
        ),
        (
            "unknown example",
            with(json!({"examples": {"name": "Ana", "code": "X", "1": "x", "zzz": "?"}})),
            "examples.zzz",
        ),
        (
            "no sample",
            with(json!({"header": {"format": "IMAGE"}})),
            "header.sample",
        ),
        (
            "sample of the wrong type",
            with(
                json!({"header": {"format": "IMAGE", "sample": {"data": b64(b"%PDF-1.7"), "mimeType": "application/pdf"}}}),
            ),
            "header.sample.mimeType",
        ),
        (
            "sample not base64",
            with(
                json!({"header": {"format": "IMAGE", "sample": {"data": "%%%", "mimeType": "image/png"}}}),
            ),
            "header.sample.data",
        ),
        (
            "eleven buttons",
            with(
                json!({"buttons": (0..11).map(|i| json!({"type": "QUICK_REPLY", "text": format!("b{i}")})).collect::<Vec<_>>()}),
            ),
            "buttons",
        ),
        (
            "three URL buttons",
            with(
                json!({"buttons": (0..3).map(|i| json!({"type": "URL", "text": "Ver", "url": format!("https://a.example/{i}")})).collect::<Vec<_>>()}),
            ),
            "buttons",
        ),
        (
            "quick replies not grouped",
            with(json!({"buttons": [
                {"type": "QUICK_REPLY", "text": "a"},
                {"type": "PHONE_NUMBER", "text": "Llamar", "phoneNumber": "+34600000000"},
                {"type": "QUICK_REPLY", "text": "b"}]})),
            "buttons",
        ),
        (
            "long button text",
            with(json!({"buttons": [{"type": "QUICK_REPLY", "text": "x".repeat(26)}]})),
            "buttons[0].text",
        ),
        (
            "offer on a utility template",
            with(
                json!({"category": "UTILITY", "footer": null, "limitedTimeOffer": {"text": "¡Corre!"}}),
            ),
            "limitedTimeOffer",
        ),
        (
            "offer with a footer",
            with(json!({"limitedTimeOffer": {"text": "¡Corre!"}})),
            "footer",
        ),
        (
            "OTP outside authentication",
            with(json!({"buttons": [{"type": "OTP", "otpType": "COPY_CODE"}]})),
            "buttons[0].type",
        ),
        (
            "authentication without OTP",
            auth(json!({"buttons": [{"type": "QUICK_REPLY", "text": "ok"}]})),
            "buttons",
        ),
        (
            "authentication with a header",
            auth(json!({"header": "Código"})),
            "header",
        ),
        (
            "unknown field",
            with(json!({"status": "APPROVED"})),
            "status",
        ),
    ];
    for (what, body, field) in cases {
        let r = post(&c.t, "/v1/templates", &c.token, &body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.json);
        assert_eq!(r.json["type"], "/problems/validation", "{what}: {}", r.json);
        assert_eq!(r.json["errors"][0]["field"], field, "{what}: {}", r.json);
    }
    assert!(c.fake.created_templates().is_empty());
    assert!(c.fake.uploads().is_empty());
    assert_eq!(c.t.sql_i64("SELECT count(*) FROM templates").await, 0);

    // A valid authentication template passes the same checks and reaches Meta.
    let r = post(
        &c.t,
        "/v1/templates",
        &c.token,
        &auth(json!({"addSecurityRecommendation": true, "codeExpirationMinutes": 10})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let req = &c.fake.created_templates()[0].request;
    assert_eq!(
        req["components"],
        json!([{"type": "BODY", "add_security_recommendation": true},
               {"type": "FOOTER", "code_expiration_minutes": 10},
               {"type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "COPY_CODE"}]}])
    );
    assert_eq!(r.json["params"], json!(["1"]));
}

both_databases!(metas_refusal_is_a_502_and_nothing_is_stored);
async fn metas_refusal_is_a_502_and_nothing_is_stored() {
    // Meta already has a template of this name and language.
    let c = spawn_cloud_with(FakeGraphConfig::default().with_template(FakeTemplate::new(
        "promo_verano",
        "es",
        "Hola",
    )))
    .await;
    let r = post(&c.t, "/v1/templates", &c.token, &promo()).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.json);
    assert_eq!(r.json["type"], "/problems/upstream");
    assert_eq!(r.json["metaCode"], 100);
    assert!(
        s(&r.json["metaMessage"]).contains("already exists"),
        "{}",
        r.json
    );
    assert_eq!(c.t.sql_i64("SELECT count(*) FROM templates").await, 0);
}

both_databases!(a_template_is_deleted_at_meta_then_hidden_here);
async fn a_template_is_deleted_at_meta_then_hidden_here() {
    let c = spawn_cloud().await;
    let r = post(&c.t, "/v1/templates", &c.token, &promo()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let id = s(&r.json["id"]);
    let meta_id = s(&r.json["appId"]);

    // Another account's key sees nothing and deletes nothing.
    let other =
        c.t.create("/v1/admin/accounts", json!({"name": "Other"}))
            .await;
    let other_key = api_key(&c.t, &s(&other["id"])).await;
    let r =
        c.t.call(
            "DELETE",
            &format!("/v1/templates/{id}"),
            Some(&other_key),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.json);
    assert_eq!(
        template(&c.t, &id, &other_key).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(c.fake.deleted_templates().is_empty());

    let r =
        c.t.call(
            "DELETE",
            &format!("/v1/templates/{id}"),
            Some(&c.token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let deleted = c.fake.deleted_templates();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].name, "promo_verano");
    assert_eq!(deleted[0].hsm_id.as_deref(), Some(meta_id.as_str()));
    assert_eq!(deleted[0].waba_id, DEFAULT_WABA_ID);

    // Kept for the messages that refer to it, hidden from lists, not sendable.
    let shown = template(&c.t, &id, &c.token).await;
    assert_eq!(shown.json["status"], "DELETED");
    assert_eq!(shown.json["active"], false);
    let list = c.t.call("GET", "/v1/templates", Some(&c.token), None).await;
    assert_eq!(list.json["total"], 0, "{}", list.json);
    let again =
        c.t.call(
            "DELETE",
            &format!("/v1/templates/{id}"),
            Some(&c.token),
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);

    // The name can be used again.
    let r = post(&c.t, "/v1/templates", &c.token, &promo()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
}

both_databases!(the_admin_api_submits_and_deletes);
async fn the_admin_api_submits_and_deletes() {
    let c = spawn_cloud().await;
    let (status, v) =
        c.t.admin(
            "POST",
            &format!("/v1/admin/channels/{}/templates", c.channel_id),
            Some(promo()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["status"], "PENDING");
    assert_eq!(c.fake.created_templates().len(), 1);
    let (status, v) = c
        .t
        .admin(
            "POST",
            &format!("/v1/admin/channels/{}/templates", c.channel_id),
            Some(json!({"name": "x", "language": "es", "category": "UTILITY", "message": "Hola {{name}}"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["errors"][0]["field"], "examples.name");

    let id = s(&c
        .t
        .call("GET", "/v1/templates", Some(&c.token), None)
        .await
        .json["data"][0]["id"]);
    let (status, v) =
        c.t.admin("DELETE", &format!("/v1/admin/templates/{id}"), None)
            .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{v}");
    assert_eq!(c.fake.deleted_templates().len(), 1);
    let (status, _) =
        c.t.admin("DELETE", &format!("/v1/admin/templates/{id}"), None)
            .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

both_databases!(a_sandbox_template_is_approved_after_the_delay);
async fn a_sandbox_template_is_approved_after_the_delay() {
    let t = spawn_app_with(|c| c.sandbox_approve_delay_ms = 300).await;
    let seed = t.seed().await;
    subscribe(&t, &seed.token).await;
    let r = post(&t, "/v1/templates", &seed.token, &promo()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["status"], "PENDING");
    assert!(s(&r.json["appId"]).starts_with("sandbox-template-"));
    let id = s(&r.json["id"]);
    let refused = post(&t, "/v1/messages", &seed.token, &send(&id)).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.json
    );

    wait_status(&t, &id, &seed.token, "APPROVED").await;
    let events = t
        .sql_i64(
            "SELECT count(*) FROM callback_outbox WHERE event_type = 'template.status_changed'",
        )
        .await;
    assert_eq!(events, 1);
    let accepted = post(&t, "/v1/messages", &seed.token, &send(&id)).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.json);

    // Deleting a sandbox template asks nothing of Meta.
    let r = t
        .call(
            "DELETE",
            &format!("/v1/templates/{id}"),
            Some(&seed.token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
}

both_databases!(a_pending_sandbox_template_is_approved_after_a_restart);
async fn a_pending_sandbox_template_is_approved_after_a_restart() {
    // An hour's delay: only the start-up pass can approve it within the test.
    let t = spawn_app_with(|c| c.sandbox_approve_delay_ms = 3_600_000).await;
    let seed = t.seed().await;
    let r = post(&t, "/v1/templates", &seed.token, &promo()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let id = s(&r.json["id"]);
    let t = t.restart_with(|c| c.sandbox_approve_delay_ms = 0).await;
    wait_status(&t, &id, &seed.token, "APPROVED").await;
}
