// Opt-outs (issue 15, items 2 and 6): the suppression list over `/v1/suppressions`, the admin
// API and the CLI's service; MARKETING sends to a suppressed number refused on every API
// with nothing queued; keywords and buttons through the inbound service function;
// `contact.opted_out` / `contact.opted_in` delivered to a webhook endpoint; Meta's 131049
// retried hours later (driven by the test clock) and 131050 failing and suppressing.

use super::common;

use std::time::Duration;

use axum::body::Bytes;
use common::*;
use fake_graph::{Action, FakeGraph, FakeGraphConfig, FakeTemplate, Rule};
use plantilla::domain::opt_out::Reason;
use plantilla::service::suppressions::{self, InboundEffect};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::mpsc;

const OPTED_OUT_BODY: &str = r#"{"code":400,"body":{"context":{"key":"Body","label":"body.phoneNumber"},"message":"The recipient has opted out of marketing messages","path":["body.phoneNumber"],"type":"Bad format"}}"#;

/// The compatible API's answer to a MARKETING send to a suppressed number (both families).
pub fn opted_out_body() -> Value {
    serde_json::from_str(OPTED_OUT_BODY).unwrap()
}

const PHONE: &str = "50755667788";

async fn req(
    t: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut r = t
        .client
        .request(method.parse().unwrap(), format!("{}{path}", t.base))
        .bearer_auth(token);
    if let Some(body) = body {
        r = r.json(&body);
    }
    let res = r.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A MARKETING template of the seeded account (`{{name}}`).
async fn marketing_template(t: &TestApp, seed: &Seed, app_id: &str) -> String {
    s(&t.create(
        "/v1/admin/templates",
        json!({"accountId": seed.account_id, "name": "promo", "language": "es",
                   "category": "MARKETING", "status": "APPROVED", "appId": app_id,
                   "message": "Hola {{name}}, 20% de descuento hoy"}),
    )
    .await["id"])
}

fn promo_body(template_id: &str, phone: &str) -> Value {
    json!({"templateId": template_id, "phoneNumber": phone, "params": {"name": "Ana"}})
}

async fn count(t: &TestApp, sql: &str) -> i64 {
    t.sql_i64(sql).await
}

// --- CRUD --------------------------------------------------------------------------------

both_databases!(the_suppression_list_is_kept_over_v1_and_the_admin_api);
async fn the_suppression_list_is_kept_over_v1_and_the_admin_api() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let tok = seed.token.as_str();

    // Empty at first.
    let (status, list) = req(&t, "GET", "/v1/suppressions", tok, None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["data"], json!([]));
    assert!(list["nextCursor"].is_null());

    // Added with a free-text reason: stored as `api`, not automatic.
    let (status, entry) = req(
        &t,
        "POST",
        "/v1/suppressions",
        tok,
        Some(json!({"phoneNumber": PHONE, "reason": "asked by phone"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{entry}");
    assert_eq!(entry["phoneNumber"], PHONE);
    assert_eq!(entry["reason"], "api");
    assert_eq!(entry["note"], "asked by phone");
    assert_eq!(entry["automatic"], false);
    assert_eq!(entry["channelId"], json!(seed.channel_id));
    assert!(
        entry["createdAt"].as_str().unwrap().ends_with('Z'),
        "{entry}"
    );

    // Adding again keeps the first entry.
    let (status, again) = req(
        &t,
        "POST",
        "/v1/suppressions",
        tok,
        Some(json!({"phoneNumber": PHONE})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["note"], "asked by phone");

    // Bad input names the field and changes nothing.
    for (body, field) in [
        (json!({}), "phoneNumber"),
        (json!({"phoneNumber": 507}), "phoneNumber"),
        (json!({"phoneNumber": "55667788"}), "phoneNumber"),
        (json!({"phoneNumber": "50755660000", "reason": 3}), "reason"),
        (json!({"phoneNumber": "50755660000", "why": "x"}), "why"),
    ] {
        let (status, p) = req(&t, "POST", "/v1/suppressions", tok, Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {p}");
        assert_eq!(p["type"], "/problems/validation", "{p}");
        assert_eq!(p["errors"][0]["field"], field, "{body}: {p}");
    }
    assert_eq!(count(&t, "SELECT count(*) FROM suppressions").await, 1);

    // The admin API sees the same list and adds to it.
    let path = format!("/v1/admin/accounts/{}/suppressions", seed.account_id);
    let (status, added) = t
        .admin("POST", &path, Some(json!({"phoneNumber": "50766778899"})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    assert_eq!(added["reason"], "api");
    assert!(added["channelId"].is_null());
    let (status, bad) = t
        .admin("POST", &path, Some(json!({"phoneNumber": "+50"})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert_eq!(bad["errors"][0]["field"], "phoneNumber");
    let (status, _) = t
        .admin("GET", "/v1/admin/accounts/acc_nope/suppressions", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Paged, oldest first.
    let (_, page) = req(&t, "GET", "/v1/suppressions?limit=1", tok, None).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(page["data"][0]["phoneNumber"], PHONE);
    let cursor = s(&page["nextCursor"]);
    let (_, page2) = req(
        &t,
        "GET",
        &format!("/v1/suppressions?limit=1&cursor={cursor}"),
        tok,
        None,
    )
    .await;
    assert_eq!(page2["data"][0]["phoneNumber"], "50766778899");
    let (status, p) = req(&t, "GET", "/v1/suppressions?limit=0", tok, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(p["errors"][0]["field"], "limit");
    let (_, admin_list) = t.admin("GET", &path, None).await;
    assert_eq!(admin_list["data"].as_array().unwrap().len(), 2);

    // Removed over /v1 and over the admin API; absent: 404.
    let (status, _) = req(
        &t,
        "DELETE",
        &format!("/v1/suppressions/{PHONE}"),
        tok,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, p) = req(
        &t,
        "DELETE",
        &format!("/v1/suppressions/{PHONE}"),
        tok,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{p}");
    assert_eq!(p["type"], "/problems/not-found");
    let (status, p) = req(&t, "DELETE", "/v1/suppressions/12", tok, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{p}");
    assert_eq!(p["errors"][0]["field"], "phoneNumber");
    let (status, _) = t
        .admin("DELETE", &format!("{path}/50766778899"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = t
        .admin("DELETE", &format!("{path}/50766778899"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(count(&t, "SELECT count(*) FROM suppressions").await, 0);

    // Without a token: 401.
    let (status, _) = req(&t, "GET", "/v1/suppressions", "nope", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

both_databases!(the_cli_lists_adds_and_removes);
async fn the_cli_lists_adds_and_removes() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let app = t.app();
    let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let added = plantilla::cli::run_admin(
        app,
        "suppressions",
        "add",
        &args(&[
            &seed.account_id,
            "phoneNumber=50755667788",
            "reason=by phone",
        ]),
    )
    .await
    .unwrap();
    assert_eq!(added["reason"], "api");
    assert_eq!(added["created"], true);
    let list = plantilla::cli::run_admin(app, "suppressions", "list", &args(&[&seed.account_id]))
        .await
        .unwrap();
    assert_eq!(list["data"][0]["phoneNumber"], PHONE);
    let err = plantilla::cli::run_admin(
        app,
        "suppressions",
        "add",
        &args(&[&seed.account_id, "phoneNumber=12"]),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("phoneNumber"), "{err}");
    plantilla::cli::run_admin(
        app,
        "suppressions",
        "remove",
        &args(&[&seed.account_id, "phoneNumber=50755667788"]),
    )
    .await
    .unwrap();
    assert_eq!(count(&t, "SELECT count(*) FROM suppressions").await, 0);
}

both_databases!(each_account_sees_only_its_own_list);
async fn each_account_sees_only_its_own_list() {
    let t = spawn_app().await;
    let a = t.seed().await;
    let b = t.seed().await;
    let (status, _) = req(
        &t,
        "POST",
        "/v1/suppressions",
        &a.token,
        Some(json!({"phoneNumber": PHONE})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, list) = req(&t, "GET", "/v1/suppressions", &b.token, None).await;
    assert_eq!(list["data"], json!([]));
    let (status, _) = req(
        &t,
        "DELETE",
        &format!("/v1/suppressions/{PHONE}"),
        &b.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "B cannot remove A's entry");
    // A's opt-out does not stop B's marketing.
    let promo_b = marketing_template(&t, &b, "app_b").await;
    let r = t.send_old(&b.token, promo_body(&promo_b, PHONE)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let promo_a = marketing_template(&t, &a, "app_a").await;
    let r = t.send_old(&a.token, promo_body(&promo_a, PHONE)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let (_, list) = req(&t, "GET", "/v1/suppressions", &a.token, None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}

// --- Sends -------------------------------------------------------------------------------

both_databases!(
    a_marketing_send_to_a_suppressed_number_is_refused_everywhere_and_nothing_is_queued
);
async fn a_marketing_send_to_a_suppressed_number_is_refused_everywhere_and_nothing_is_queued() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let promo = marketing_template(&t, &seed, "app_2").await;

    // An open conversation with the number first (a utility template, confirmed).
    let r = t.send_old(&seed.token, send_body(&seed, PHONE)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let conversation = s(&r.json["data"]["conversation_id"]);
    t.drain().await;
    assert_eq!(t.conversation(&conversation).await["status"], "open");

    let (status, _) = req(
        &t,
        "POST",
        "/v1/suppressions",
        &seed.token,
        Some(json!({"phoneNumber": PHONE})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let messages = count(&t, "SELECT count(*) FROM messages").await;
    let jobs = count(&t, "SELECT count(*) FROM delivery_jobs").await;
    let conversations = count(&t, "SELECT count(*) FROM conversations").await;

    // Both compatible families: the exact body.
    let expected = opted_out_body();
    let r = t.send_old(&seed.token, promo_body(&promo, PHONE)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json, expected, "{}", r.text);
    let r = t.send_new(&seed.token, promo_body(&promo, PHONE)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json, expected, "{}", r.text);

    // Native: 422 recipient-opted-out, with an idempotency key that must not replay later.
    let native = json!({"templateId": promo, "to": PHONE, "params": {"name": "Ana"}});
    let res = t
        .client
        .post(format!("{}/v1/messages", t.base))
        .bearer_auth(&seed.token)
        .header("Idempotency-Key", "promo-1")
        .json(&native)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["type"], "/problems/recipient-opted-out", "{p}");
    assert_eq!(p["errors"][0]["field"], "to", "{p}");

    // The template and its params are checked first: missing params are reported as such.
    let r = t
        .send_old(
            &seed.token,
            json!({"templateId": promo, "phoneNumber": PHONE}),
        )
        .await;
    assert!(r.text.contains("Missing params"), "{}", r.text);

    // A batch rejects just that recipient.
    let (status, batch) = req(
        &t,
        "POST",
        "/v1/messages/batch",
        &seed.token,
        Some(json!({"templateId": promo, "recipients": [
            {"to": "50755660001", "params": {"name": "Luz"}},
            {"to": PHONE, "params": {"name": "Ana"}},
        ]})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{batch}");
    assert_eq!(batch["results"][0]["status"], "accepted", "{batch}");
    assert_eq!(batch["results"][1]["status"], "rejected", "{batch}");
    assert_eq!(
        batch["results"][1]["problem"]["type"],
        "/problems/recipient-opted-out"
    );
    assert_eq!(
        batch["results"][1]["problem"]["errors"][0]["field"],
        "recipients[1].to"
    );

    // Nothing was written for the refused sends (the batch's one accepted recipient only).
    assert_eq!(
        count(&t, "SELECT count(*) FROM messages").await,
        messages + 1
    );
    assert_eq!(
        count(&t, "SELECT count(*) FROM delivery_jobs").await,
        jobs + 1
    );
    assert_eq!(
        count(&t, "SELECT count(*) FROM conversations").await,
        conversations + 1
    );
    assert_eq!(
        count_q(
            &format!("SELECT count(*) FROM messages WHERE phone_number = '{PHONE}'"),
            &t
        )
        .await,
        1
    );

    // A utility template still goes through (on the open conversation).
    let r = t.send_old(&seed.token, send_body(&seed, PHONE)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["message"], "Sent");

    // Removed: the marketing send is accepted, and the earlier key did not store a refusal.
    let (status, _) = req(
        &t,
        "DELETE",
        &format!("/v1/suppressions/{PHONE}"),
        &seed.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let r = t.send_old(&seed.token, promo_body(&promo, PHONE)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let res = t
        .client
        .post(format!("{}/v1/messages", t.base))
        .bearer_auth(&seed.token)
        .header("Idempotency-Key", "promo-1")
        .json(&native)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
}

/// `count` with its arguments the other way round, for a query built inline.
async fn count_q(sql: &str, t: &TestApp) -> i64 {
    t.sql_i64(sql).await
}

both_databases!(a_template_moved_to_marketing_is_subject_to_opt_outs);
async fn a_template_moved_to_marketing_is_subject_to_opt_outs() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let (status, _) = req(
        &t,
        "POST",
        "/v1/suppressions",
        &seed.token,
        Some(json!({"phoneNumber": PHONE})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let r = t
        .send_old(&seed.token, send_body(&seed, "50755660002"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // The stored category decides: UTILITY goes, then MARKETING is refused.
    let (status, v) = t
        .admin(
            "PATCH",
            &format!("/v1/admin/templates/{}", seed.template_id),
            Some(json!({"category": "MARKETING"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let r = t.send_old(&seed.token, send_body(&seed, PHONE)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.json, opted_out_body());
}

// --- Keywords and buttons (the inbound service function) ---------------------------------

both_databases!(keywords_and_the_stop_button_opt_out_and_opt_in_removes_only_automatic_entries);
async fn keywords_and_the_stop_button_opt_out_and_opt_in_removes_only_automatic_entries() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let promo = marketing_template(&t, &seed, "app_3").await;
    let app = t.app();
    let channel = app.store.channel(&seed.channel_id).await.unwrap().unwrap();
    let utility = app
        .store
        .template(&seed.template_id)
        .await
        .unwrap()
        .unwrap();
    let marketing = app.store.template(&promo).await.unwrap().unwrap();
    let account_id = seed.account_id.as_str();
    let entry = |phone: &'static str| async move {
        app.store.suppression(account_id, phone).await.unwrap()
    };

    // Not a keyword: nothing.
    let e = suppressions::on_inbound(app, &channel, PHONE, Some("please stop"), None, None)
        .await
        .unwrap();
    assert_eq!(e, InboundEffect::None);
    assert!(entry(PHONE).await.is_none());

    // A keyword, case, accents and punctuation aside.
    let e = suppressions::on_inbound(app, &channel, PHONE, Some("  Bája. "), None, None)
        .await
        .unwrap();
    assert_eq!(e, InboundEffect::OptedOut(Reason::Keyword));
    let s1 = entry(PHONE).await.unwrap();
    assert_eq!(s1.reason, "keyword");
    assert!(s1.automatic);
    assert_eq!(s1.channel_id.as_deref(), Some(seed.channel_id.as_str()));
    // Again: already there.
    let e = suppressions::on_inbound(app, &channel, PHONE, Some("STOP"), None, None)
        .await
        .unwrap();
    assert_eq!(e, InboundEffect::None);

    // The opt-in keyword removes the automatic entry.
    let e = suppressions::on_inbound(app, &channel, PHONE, Some("start!"), None, None)
        .await
        .unwrap();
    assert_eq!(e, InboundEffect::OptedIn);
    assert!(entry(PHONE).await.is_none());

    // Meta's "Stop promotions" button on a marketing template: `button`.
    const OTHER: &str = "50755660003";
    let e = suppressions::on_inbound(
        app,
        &channel,
        OTHER,
        None,
        Some(("", "Stop promotions")),
        Some(&utility),
    )
    .await
    .unwrap();
    assert_eq!(e, InboundEffect::None, "not a marketing template");
    let e = suppressions::on_inbound(
        app,
        &channel,
        OTHER,
        None,
        Some(("", "Stop promotions")),
        Some(&marketing),
    )
    .await
    .unwrap();
    assert_eq!(e, InboundEffect::OptedOut(Reason::Button));
    assert_eq!(entry(OTHER).await.unwrap().reason, "button");

    // An `api` entry stays on an opt-in keyword.
    const MANUAL: &str = "50755660004";
    let (status, _) = req(
        &t,
        "POST",
        "/v1/suppressions",
        &seed.token,
        Some(json!({"phoneNumber": MANUAL})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let e = suppressions::on_inbound(app, &channel, MANUAL, Some("ALTA"), None, None)
        .await
        .unwrap();
    assert_eq!(e, InboundEffect::None);
    assert_eq!(entry(MANUAL).await.unwrap().reason, "api");
}

both_databases!(an_account_configures_its_own_keywords);
async fn an_account_configures_its_own_keywords() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let path = format!("/v1/admin/accounts/{}", seed.account_id);
    let (_, account) = t.admin("GET", &path, None).await;
    assert_eq!(
        account["optOutKeywords"],
        json!(["STOP", "BAJA", "PARAR", "CANCELAR", "UNSUBSCRIBE", "SAIR"])
    );
    assert_eq!(account["optInKeywords"], json!(["START", "ALTA"]));

    // Bad lists name the field and change nothing (quiet hours in the same request too).
    for (body, field) in [
        (json!({"optOutKeywords": []}), "optOutKeywords"),
        (json!({"optOutKeywords": ["!!"]}), "optOutKeywords"),
        (json!({"optInKeywords": [3]}), "optInKeywords[0]"),
        (json!({"optInKeywords": "START"}), "optInKeywords"),
        (
            json!({"optOutKeywords": ["BASTA"], "quietHours": {"start": "x"}}),
            "quietHours.start",
        ),
    ] {
        let (status, p) = t.admin("PATCH", &path, Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {p}");
        assert_eq!(p["errors"][0]["field"], field, "{body}: {p}");
    }
    let (_, unchanged) = t.admin("GET", &path, None).await;
    assert_eq!(unchanged["optOutKeywords"], account["optOutKeywords"]);

    let (status, updated) = t
        .admin(
            "PATCH",
            &path,
            Some(json!({"optOutKeywords": ["Basta", "No más"], "optInKeywords": ["VOLVER"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["optOutKeywords"], json!(["Basta", "No más"]));
    assert_eq!(updated["optInKeywords"], json!(["VOLVER"]));

    let app = t.app();
    let channel = app.store.channel(&seed.channel_id).await.unwrap().unwrap();
    let e = suppressions::on_inbound(app, &channel, PHONE, Some("stop"), None, None)
        .await
        .unwrap();
    assert_eq!(e, InboundEffect::None, "STOP is no longer a keyword");
    let e = suppressions::on_inbound(app, &channel, PHONE, Some("NO MAS!"), None, None)
        .await
        .unwrap();
    assert_eq!(e, InboundEffect::OptedOut(Reason::Keyword));
    let e = suppressions::on_inbound(app, &channel, PHONE, Some("volver"), None, None)
        .await
        .unwrap();
    assert_eq!(e, InboundEffect::OptedIn);

    // null: back to the defaults.
    let (_, reset) = t
        .admin("PATCH", &path, Some(json!({"optOutKeywords": null})))
        .await;
    assert_eq!(reset["optOutKeywords"][0], "STOP");
    assert_eq!(reset["optInKeywords"], json!(["VOLVER"]));
}

// --- Events ------------------------------------------------------------------------------

/// An HTTP receiver on port 0 that records each body it gets.
async fn receiver() -> (String, mpsc::UnboundedReceiver<Value>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let handler = move |body: Bytes| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null));
            "ok"
        }
    };
    let router = axum::Router::new().fallback(handler);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (format!("http://{addr}/hooks"), rx)
}

both_databases!(opted_out_and_opted_in_reach_a_webhook_endpoint);
async fn opted_out_and_opted_in_reach_a_webhook_endpoint() {
    let t = spawn_app_with(|c| {
        c.callback_retry_initial_ms = 1;
        c.callback_retry_max_ms = 1;
    })
    .await;
    let seed = t.seed().await;
    let (url, mut rx) = receiver().await;
    let (status, ep) = req(
        &t,
        "POST",
        "/v1/webhook-endpoints",
        &seed.token,
        Some(json!({"url": url, "eventTypes": ["contact.opted_out", "contact.opted_in"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{ep}");

    let app = t.app();
    let channel = app.store.channel(&seed.channel_id).await.unwrap().unwrap();
    suppressions::on_inbound(app, &channel, PHONE, Some("STOP"), None, None)
        .await
        .unwrap();
    suppressions::on_inbound(app, &channel, PHONE, Some("START"), None, None)
        .await
        .unwrap();
    let (status, _) = req(
        &t,
        "POST",
        "/v1/suppressions",
        &seed.token,
        Some(json!({"phoneNumber": "50755660005"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    t.drain_callbacks().await;

    let mut got = Vec::new();
    while let Ok(v) = rx.try_recv() {
        got.push(v);
    }
    assert_eq!(got.len(), 3, "{got:?}");
    let mine: Vec<&Value> = got
        .iter()
        .filter(|v| v["data"]["phoneNumber"] == PHONE)
        .collect();
    assert_eq!(mine[0]["type"], "contact.opted_out");
    assert_eq!(mine[0]["data"]["reason"], "keyword");
    assert_eq!(mine[0]["data"]["accountId"], json!(seed.account_id));
    assert_eq!(mine[0]["data"]["channelId"], json!(seed.channel_id));
    assert!(mine[0]["data"]["at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(mine[1]["type"], "contact.opted_in");
    assert_eq!(mine[1]["data"]["reason"], "keyword");
    let api = got
        .iter()
        .find(|v| v["data"]["phoneNumber"] == "50755660005")
        .unwrap();
    assert_eq!(api["type"], "contact.opted_out");
    assert_eq!(api["data"]["reason"], "api");
}

// --- Meta's 131049 and 131050 -------------------------------------------------------------

const PN: &str = "1000001";
const TOKEN: &str = "EAAG-test-token";
const APP_SECRET: &str = "app-secret-for-tests";

struct Cloud {
    t: TestApp,
    fake: FakeGraph,
    seed: Seed,
    promo: String,
}

async fn spawn_cloud(delays: &str) -> Cloud {
    let fake = FakeGraph::start(
        FakeGraphConfig {
            app_secret: APP_SECRET.into(),
            status_delay: Duration::ZERO,
            ..FakeGraphConfig::default()
        }
        .with_phone(PN, TOKEN)
        .with_template(FakeTemplate::new(
            "promo",
            "es",
            "Hola {{name}}, 20% de descuento hoy",
        )),
    )
    .await;
    let base = fake.base_url().to_string();
    let delays = delays.to_string();
    let t = spawn_app_with(|c| {
        c.graph_base_url = base;
        c.meta_app_secret = Some(plantilla::config::Secret::new(APP_SECRET));
        c.marketing_retry_delays = delays;
    })
    .await;
    fake.set_webhook_url(Some(format!("{}/webhooks/whatsapp", t.base)));
    let seed = seed_cloud_channel(&t, PN, TOKEN, None).await;
    let promo = marketing_template(&t, &seed, "1002").await;
    Cloud {
        t,
        fake,
        seed,
        promo,
    }
}

impl Cloud {
    async fn send_promo(&self, phone: &str) -> String {
        let r = self
            .t
            .send_old(&self.seed.token, promo_body(&self.promo, phone))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        s(&r.json["data"]["message_id"])
    }

    async fn native_message(&self, id: &str) -> Value {
        let (status, m) = req(
            &self.t,
            "GET",
            &format!("/v1/messages/{id}"),
            &self.seed.token,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{m}");
        m
    }

    async fn settle(&self) {
        self.t.drain().await;
        assert!(self.fake.wait_webhooks_idle(Duration::from_secs(10)).await);
        self.t.drain().await;
    }
}

const HOUR_MS: i64 = 3_600_000;

both_databases!(meta_131049_is_retried_hours_later_then_sent);
async fn meta_131049_is_retried_hours_later_then_sent() {
    let c = spawn_cloud("1h,2h").await;
    c.fake.add_rule(Rule::times(2, Action::error(131049)));
    let id = c.send_promo(PHONE).await;
    c.settle().await;

    // Declined once: waiting for its retry an hour later, shown as such.
    let m = c.native_message(&id).await;
    assert_ne!(m["status"], "failed", "{m}");
    assert_eq!(m["error"]["code"], 131049, "{m}");
    assert_eq!(m["error"]["willRetry"], true, "{m}");
    let next = chrono::DateTime::parse_from_rfc3339(m["error"]["nextAttemptAt"].as_str().unwrap())
        .unwrap()
        .timestamp_millis();
    let now = c.t.app().clock.now_ms();
    assert!(
        (now + HOUR_MS - 60_000..=now + HOUR_MS).contains(&next),
        "next attempt about an hour ahead: {m}"
    );
    assert_eq!(c.fake.requests().len(), 1, "not retried at once");

    // An hour later: declined again; the next retry is two hours later.
    c.t.app().clock.advance(HOUR_MS + 1_000);
    c.settle().await;
    assert_eq!(c.fake.requests().len(), 2);
    let m = c.native_message(&id).await;
    assert_eq!(m["error"]["willRetry"], true, "{m}");
    let next = chrono::DateTime::parse_from_rfc3339(m["error"]["nextAttemptAt"].as_str().unwrap())
        .unwrap()
        .timestamp_millis();
    let now = c.t.app().clock.now_ms();
    assert!(next > now + 2 * HOUR_MS - 60_000, "{m}");

    // Two hours later: sent.
    c.t.app().clock.advance(2 * HOUR_MS + 1_000);
    c.settle().await;
    let m = c.native_message(&id).await;
    assert!(
        ["sent", "delivered", "read"].contains(&m["status"].as_str().unwrap()),
        "{m}"
    );
    assert_eq!(c.fake.sent().len(), 1);
    assert_eq!(c.fake.requests().len(), 3);
}

both_databases!(meta_131049_fails_the_message_after_the_last_retry);
async fn meta_131049_fails_the_message_after_the_last_retry() {
    let c = spawn_cloud("1h").await;
    c.fake.add_rule(Rule::always(Action::error(131049)));
    let id = c.send_promo(PHONE).await;
    c.settle().await;
    assert_eq!(c.native_message(&id).await["error"]["willRetry"], true);
    c.t.app().clock.advance(HOUR_MS + 1_000);
    c.settle().await;
    let m = c.native_message(&id).await;
    assert_eq!(m["status"], "failed", "{m}");
    assert_eq!(m["error"]["code"], 131049);
    assert_eq!(m["error"]["willRetry"], false, "{m}");
    assert_eq!(c.fake.requests().len(), 2);
    // Not an opt-out: the number is not suppressed.
    assert_eq!(count(&c.t, "SELECT count(*) FROM suppressions").await, 0);
}

both_databases!(meta_131050_fails_the_message_and_suppresses_the_number);
async fn meta_131050_fails_the_message_and_suppresses_the_number() {
    let c = spawn_cloud("1h").await;
    c.fake.add_rule(Rule::once(Action::error(131050)).to(PHONE));
    let id = c.send_promo(PHONE).await;
    c.settle().await;
    let m = c.native_message(&id).await;
    assert_eq!(m["status"], "failed", "{m}");
    assert_eq!(m["error"]["code"], 131050);
    assert_eq!(m["error"]["willRetry"], false);
    assert_eq!(c.fake.requests().len(), 1, "final: not retried");

    let (_, list) = req(&c.t, "GET", "/v1/suppressions", &c.seed.token, None).await;
    assert_eq!(list["data"][0]["phoneNumber"], PHONE, "{list}");
    assert_eq!(list["data"][0]["reason"], "meta_131050");
    assert_eq!(list["data"][0]["automatic"], true);
    assert_eq!(list["data"][0]["channelId"], json!(c.seed.channel_id));

    // The next marketing send is refused before anything is queued.
    let r =
        c.t.send_old(&c.seed.token, promo_body(&c.promo, PHONE))
            .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.json, opted_out_body());
}

both_databases!(meta_131050_in_a_status_webhook_also_suppresses_the_number);
async fn meta_131050_in_a_status_webhook_also_suppresses_the_number() {
    let c = spawn_cloud("1h").await;
    c.fake.add_rule(Rule::once(Action::accept_then_fail(
        131050,
        "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business.",
        "The user stopped marketing messages",
    )));
    let id = c.send_promo(PHONE).await;
    c.settle().await;
    let m = c.native_message(&id).await;
    assert_eq!(m["status"], "failed", "{m}");
    assert_eq!(m["error"]["code"], 131050, "{m}");
    let (_, list) = req(&c.t, "GET", "/v1/suppressions", &c.seed.token, None).await;
    assert_eq!(list["data"][0]["phoneNumber"], PHONE, "{list}");
    assert_eq!(list["data"][0]["reason"], "meta_131050");
}

both_databases!(meta_131049_in_a_status_webhook_is_retried_later_too);
async fn meta_131049_in_a_status_webhook_is_retried_later_too() {
    let c = spawn_cloud("1h").await;
    c.fake.add_rule(Rule::times(
        2,
        Action::accept_then_fail(
            131049,
            "This message was not delivered to maintain healthy ecosystem engagement.",
            "Marketing limit for the user",
        ),
    ));
    let id = c.send_promo(PHONE).await;
    c.settle().await;
    let m = c.native_message(&id).await;
    assert_eq!(m["status"], "queued", "back in the queue, not failed: {m}");
    assert_eq!(m["error"]["code"], 131049, "{m}");
    assert_eq!(m["error"]["willRetry"], true, "{m}");
    assert_eq!(c.fake.requests().len(), 1);

    // An hour later it goes again; Meta declines it again and the schedule is used up.
    c.t.app().clock.advance(HOUR_MS + 1_000);
    c.settle().await;
    assert_eq!(c.fake.requests().len(), 2);
    let m = c.native_message(&id).await;
    assert_eq!(m["status"], "failed", "{m}");
    assert_eq!(m["error"]["code"], 131049);
    assert_eq!(m["error"]["willRetry"], false);
}

both_databases!(meta_131049_in_a_status_webhook_then_sent);
async fn meta_131049_in_a_status_webhook_then_sent() {
    let c = spawn_cloud("1h,2h").await;
    c.fake.add_rule(Rule::once(Action::accept_then_fail(
        131049,
        "This message was not delivered to maintain healthy ecosystem engagement.",
        "Marketing limit for the user",
    )));
    let id = c.send_promo(PHONE).await;
    c.settle().await;
    assert_eq!(c.native_message(&id).await["status"], "queued");
    c.t.app().clock.advance(HOUR_MS + 1_000);
    c.settle().await;
    let m = c.native_message(&id).await;
    assert!(
        ["sent", "delivered", "read"].contains(&m["status"].as_str().unwrap()),
        "{m}"
    );
    assert!(m["error"].is_null(), "{m}");
    assert_eq!(c.fake.requests().len(), 2);
}

both_databases!(a_marketing_message_queued_before_the_opt_out_is_not_sent);
async fn a_marketing_message_queued_before_the_opt_out_is_not_sent() {
    let c = spawn_cloud("1h").await;
    // Scheduled for later, then the number opts out.
    let send_at = chrono::Utc::now() + chrono::Duration::hours(2);
    let (status, accepted) = req(
        &c.t,
        "POST",
        "/v1/messages",
        &c.seed.token,
        Some(
            json!({"templateId": c.promo, "to": PHONE, "params": {"name": "Ana"},
                    "sendAt": send_at.to_rfc3339()}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let id = s(&accepted["id"]);
    let (status, _) = req(
        &c.t,
        "POST",
        "/v1/suppressions",
        &c.seed.token,
        Some(json!({"phoneNumber": PHONE})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    c.t.app().clock.advance(2 * HOUR_MS + 1_000);
    c.settle().await;
    let m = c.native_message(&id).await;
    assert_eq!(m["status"], "failed", "{m}");
    assert_eq!(m["error"]["code"], -4, "{m}");
    assert_eq!(c.fake.requests().len(), 0, "nothing reached Meta");
}
