// The admin API (`/v1/admin/…`): authentication, the shapes it returns, secrets it never
// shows, validation naming the field, and the effect of its operations on the template API.

use crate::common;

use std::collections::BTreeSet;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const PROBLEM: &str = "application/problem+json";

/// An admin request with an explicit `Authorization` header value (or none) and a raw body.
async fn admin_raw(
    t: &TestApp,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&str>,
) -> Reply {
    let mut req = t
        .client
        .request(method.parse().unwrap(), format!("{}{path}", t.base));
    if let Some(auth) = auth {
        req = req.header("Authorization", auth);
    }
    if let Some(body) = body {
        req = req
            .header("Content-Type", "application/json")
            .body(body.to_string());
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = res.text().await.unwrap();
    Reply {
        status,
        content_type,
        json: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

async fn admin_json(t: &TestApp, method: &str, path: &str, body: Option<Value>) -> Reply {
    let body = body.map(|b| b.to_string());
    admin_raw(
        t,
        method,
        path,
        Some(&format!("Bearer {ADMIN_TOKEN}")),
        body.as_deref(),
    )
    .await
}

/// Asserts a 400 problem document naming `field`.
fn assert_invalid(r: &Reply, field: &str) {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{field}: {}", r.text);
    assert_eq!(r.content_type, PROBLEM, "{field}");
    assert_eq!(r.json["status"], 400, "{}", r.text);
    assert_eq!(r.json["type"], "/problems/invalid-field", "{}", r.text);
    assert_eq!(r.json["errors"][0]["field"], field, "{}", r.text);
    assert!(
        r.json["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert!(
        r.json["detail"].as_str().is_some_and(|d| d.contains(field)),
        "{}",
        r.text
    );
}

fn assert_not_found(r: &Reply) {
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert_eq!(r.content_type, PROBLEM);
    assert_eq!(r.json["status"], 404, "{}", r.text);
    assert_eq!(r.json["type"], "/problems/not-found", "{}", r.text);
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().expect("an object").keys().cloned().collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Asserts `v` has at least these keys (additions are allowed).
fn assert_has_keys(v: &Value, names: &[&str]) {
    let missing: Vec<_> = set(names).difference(&keys(v)).cloned().collect();
    assert!(missing.is_empty(), "missing {missing:?} in {v}");
}

/// A channel view never carries its secrets, under any spelling.
fn assert_no_secret_keys(v: &Value) {
    for key in [
        "accessToken",
        "appSecret",
        "verifyToken",
        "access_token",
        "app_secret",
        "verify_token",
    ] {
        assert!(v.get(key).is_none(), "{key} shown in {v}");
    }
}

fn is_time(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok())
}

const CHANNEL_KEYS: &[&str] = &[
    "id",
    "accountId",
    "name",
    "provider",
    "phoneNumberId",
    "wabaId",
    "accessTokenSet",
    "appSecretSet",
    "verifyTokenSet",
    "status",
    "messagesPerSecond",
    "createdAt",
    "updatedAt",
];

both_databases!(admin_routes_need_the_admin_token);
async fn admin_routes_need_the_admin_token() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let routes = [
        ("POST", "/v1/admin/accounts".to_string()),
        ("GET", format!("/v1/admin/accounts/{}", seed.account_id)),
        ("GET", format!("/v1/admin/channels/{}", seed.channel_id)),
        (
            "POST",
            format!("/v1/admin/channels/{}/rotate-token", seed.channel_id),
        ),
        ("GET", format!("/v1/admin/templates/{}", seed.template_id)),
        ("POST", "/v1/admin/groups".to_string()),
    ];
    let wrong = [
        None,
        Some("Bearer".to_string()),
        Some("Bearer wrong-admin-token".to_string()),
        Some(format!("Bearer {ADMIN_TOKEN}x")),
        Some(format!("Basic {ADMIN_TOKEN}")),
        // A channel's public token is not an admin token.
        Some(format!("Bearer {}", seed.token)),
    ];
    for (method, path) in &routes {
        for auth in &wrong {
            let r = admin_raw(&t, method, path, auth.as_deref(), Some(r#"{"name":"X"}"#)).await;
            assert_eq!(
                r.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} {auth:?}: {}",
                r.text
            );
            assert_eq!(r.content_type, PROBLEM);
            assert_eq!(r.json["status"], 401);
            assert_eq!(r.json["type"], "/problems/unauthorized");
            assert!(!r.text.contains(ADMIN_TOKEN));
        }
    }
    // The rotation above never ran: the seeded token still works.
    let r = t
        .send_old(&seed.token, send_body(&seed, "50755667788"))
        .await;
    assert_eq!(r.json["message"], "Pending", "{}", r.text);
    // Nor did the account creation.
    let r = admin_json(
        &t,
        "GET",
        &format!("/v1/admin/accounts/{}", seed.account_id),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
}

both_databases!(without_a_configured_admin_token_the_admin_api_does_not_exist);
async fn without_a_configured_admin_token_the_admin_api_does_not_exist() {
    let t = spawn_app_with(|c| c.admin_token = None).await;
    for (method, path) in [
        ("POST", "/v1/admin/accounts"),
        ("GET", "/v1/admin/accounts/acc_1"),
        ("POST", "/v1/admin/channels"),
        ("GET", "/v1/admin/messages/msg_1"),
    ] {
        for auth in [
            None,
            Some(format!("Bearer {ADMIN_TOKEN}")),
            Some("Bearer ".to_string()),
        ] {
            let r = admin_raw(&t, method, path, auth.as_deref(), Some(r#"{"name":"X"}"#)).await;
            assert_eq!(
                r.status,
                StatusCode::NOT_FOUND,
                "{method} {path}: {}",
                r.text
            );
        }
    }
}

both_databases!(creates_return_201_and_the_documented_fields);
async fn creates_return_201_and_the_documented_fields() {
    let t = spawn_app().await;

    let r = admin_json(
        &t,
        "POST",
        "/v1/admin/accounts",
        Some(json!({"name": "Acme", "conversationLimit": 7})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.content_type, "application/json; charset=utf-8");
    let account = r.json;
    assert_has_keys(
        &account,
        &["id", "name", "conversationLimit", "createdAt", "updatedAt"],
    );
    assert!(s(&account["id"]).starts_with("acc_"));
    assert_eq!(account["name"], "Acme");
    assert_eq!(account["conversationLimit"], 7);
    assert!(is_time(&account["createdAt"]) && is_time(&account["updatedAt"]));
    let account_id = s(&account["id"]);
    let r = admin_json(&t, "GET", &format!("/v1/admin/accounts/{account_id}"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json, account);

    let channel = t
        .create(
            "/v1/admin/channels",
            json!({"accountId": account_id, "name": "Main", "provider": "sandbox"}),
        )
        .await;
    assert_has_keys(&channel, CHANNEL_KEYS);
    assert_has_keys(&channel, &["publicToken"]);
    assert_no_secret_keys(&channel);
    assert!(s(&channel["id"]).starts_with("ch_"));
    assert_eq!(channel["accountId"], account_id.as_str());
    assert_eq!(channel["provider"], "sandbox");
    assert_eq!(
        channel["messagesPerSecond"], 80,
        "the contract's default rate"
    );
    assert!(s(&channel["publicToken"]).len() >= 32);
    let channel_id = s(&channel["id"]);

    let group = t
        .create(
            "/v1/admin/groups",
            json!({"accountId": account_id, "name": "Ventas", "channelIds": [channel_id]}),
        )
        .await;
    assert_has_keys(
        &group,
        &["id", "accountId", "name", "channelIds", "createdAt"],
    );
    assert!(s(&group["id"]).starts_with("grp_"));
    assert_eq!(group["channelIds"], json!([channel_id]));

    let template = t
        .create(
            "/v1/admin/templates",
            json!({"accountId": account_id, "name": "hello", "language": "es", "appId": "77",
                   "message": "Hola {{name}}", "groupName": "Ventas"}),
        )
        .await;
    assert_has_keys(
        &template,
        &[
            "id",
            "name",
            "language",
            "category",
            "status",
            "appId",
            "message",
            "params",
            "header",
            "footer",
            "buttons",
            "groupName",
            "active",
            "createdAt",
            "updatedAt",
        ],
    );
    assert!(s(&template["id"]).starts_with("tpl_"));
    assert_eq!(template["params"], json!(["name"]));
    assert_eq!(template["groupName"], "Ventas");
    assert_eq!(template["active"], true);
    let r = admin_json(
        &t,
        "GET",
        &format!("/v1/admin/templates/{}", s(&template["id"])),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json, template);
}

both_databases!(the_public_token_is_shown_on_create_and_rotate_only_and_secrets_never);
async fn the_public_token_is_shown_on_create_and_rotate_only_and_secrets_never() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let secrets = [
        "EAAGm0PX4ZCpsBAKSECRETaccess",
        "appsecret-5f4dcc3b5aa765d61d83",
        "verify-me-0451",
    ];
    let r = admin_json(
        &t,
        "POST",
        "/v1/admin/channels",
        Some(
            json!({"accountId": seed.account_id, "name": "Cloud", "provider": "cloud",
                    "phoneNumberId": "106540352242922", "wabaId": "102290129340398",
                    "accessToken": secrets[0], "appSecret": secrets[1], "verifyToken": secrets[2]}),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let channel_id = s(&r.json["id"]);
    let token = s(&r.json["publicToken"]);
    assert_eq!(r.json["accessTokenSet"], true);
    assert_eq!(r.json["appSecretSet"], true);
    assert_eq!(r.json["verifyTokenSet"], true);
    assert_eq!(r.json["phoneNumberId"], "106540352242922");
    let mut responses = vec![r.text];

    let r = admin_json(&t, "GET", &format!("/v1/admin/channels/{channel_id}"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_has_keys(&r.json, CHANNEL_KEYS);
    assert_eq!(
        r.json["publicToken"],
        Value::Null,
        "GET has no token: {}",
        r.text
    );
    assert_no_secret_keys(&r.json);
    assert!(!r.text.contains(&token));
    responses.push(r.text);

    let r = admin_json(
        &t,
        "PATCH",
        &format!("/v1/admin/channels/{channel_id}"),
        Some(json!({"name": "Cloud 2", "messagesPerSecond": 20})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_has_keys(&r.json, CHANNEL_KEYS);
    assert_eq!(
        r.json["publicToken"],
        Value::Null,
        "PATCH has no token: {}",
        r.text
    );
    assert_no_secret_keys(&r.json);
    assert_eq!(r.json["name"], "Cloud 2");
    assert_eq!(r.json["messagesPerSecond"], 20);
    assert_eq!(
        r.json["accessTokenSet"], true,
        "a PATCH without secrets keeps them"
    );
    assert!(!r.text.contains(&token));
    responses.push(r.text);

    let r = admin_json(
        &t,
        "POST",
        &format!("/v1/admin/channels/{channel_id}/rotate-token"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let rotated = s(&r.json["publicToken"]);
    assert_ne!(rotated, token);
    responses.push(r.text);

    // A failing PATCH does not echo secrets either.
    let r = admin_json(
        &t,
        "PATCH",
        &format!("/v1/admin/channels/{channel_id}"),
        Some(json!({"accessToken": secrets[0], "status": "sleeping"})),
    )
    .await;
    assert_invalid(&r, "status");
    responses.push(r.text);

    for text in &responses {
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} shown in {text}");
        }
    }
}

both_databases!(rotating_the_token_invalidates_the_old_one);
async fn rotating_the_token_invalidates_the_old_one() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let r = admin_json(
        &t,
        "POST",
        &format!("/v1/admin/channels/{}/rotate-token", seed.channel_id),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["id"], seed.channel_id.as_str());
    let new_token = s(&r.json["publicToken"]);
    assert_ne!(new_token, seed.token);

    let r = t
        .send_old(&seed.token, send_body(&seed, "50755667788"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(
        r.json["message"],
        "Cannot find a channel associated with the public token Bearer"
    );
    let r = t.call("GET", "/templates", Some(&seed.token), None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);

    let r = t
        .send_new(&new_token, send_body(&seed, "50755667788"))
        .await;
    assert_eq!(r.json["message"], "Pending", "{}", r.text);
    let r = t.call("GET", "/api/Template", Some(&new_token), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let r = admin_json(&t, "POST", "/v1/admin/channels/ch_nope/rotate-token", None).await;
    assert_not_found(&r);
}

both_databases!(bad_input_is_400_naming_the_field);
async fn bad_input_is_400_naming_the_field() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let other = t.seed().await;
    let acc = seed.account_id.as_str();
    let tpl = |extra: Value| {
        let mut body = json!({"accountId": acc, "name": "ok_name", "language": "es",
                              "appId": "1", "message": "Hola {{name}}"});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        ("/v1/admin/accounts", json!({}), "name"),
        ("/v1/admin/accounts", json!({"name": "  "}), "name"),
        (
            "/v1/admin/accounts",
            json!({"name": "A", "conversationLimit": -1}),
            "conversationLimit",
        ),
        (
            "/v1/admin/accounts",
            json!({"name": "A", "conversationLimit": "10"}),
            "conversationLimit",
        ),
        (
            "/v1/admin/accounts",
            json!({"name": "A", "plan": "gold"}),
            "plan",
        ),
        ("/v1/admin/accounts", json!([1]), "body"),
        (
            "/v1/admin/channels",
            json!({"name": "C", "provider": "sandbox"}),
            "accountId",
        ),
        (
            "/v1/admin/channels",
            json!({"accountId": "acc_nope", "name": "C", "provider": "sandbox"}),
            "accountId",
        ),
        (
            "/v1/admin/channels",
            json!({"accountId": acc, "name": "C"}),
            "provider",
        ),
        (
            "/v1/admin/channels",
            json!({"accountId": acc, "name": "C", "provider": "telegram"}),
            "provider",
        ),
        (
            "/v1/admin/channels",
            json!({"accountId": acc, "provider": "sandbox"}),
            "name",
        ),
        (
            "/v1/admin/channels",
            json!({"accountId": acc, "name": "C", "provider": "cloud", "accessToken": "x"}),
            "phoneNumberId",
        ),
        (
            "/v1/admin/channels",
            json!({"accountId": acc, "name": "C", "provider": "cloud", "phoneNumberId": "1"}),
            "accessToken",
        ),
        (
            "/v1/admin/channels",
            json!({"accountId": acc, "name": "C", "provider": "sandbox", "messagesPerSecond": 0}),
            "messagesPerSecond",
        ),
        (
            "/v1/admin/channels",
            json!({"accountId": acc, "name": "C", "provider": "sandbox", "status": "on"}),
            "status",
        ),
        ("/v1/admin/groups", json!({"accountId": acc}), "name"),
        (
            "/v1/admin/groups",
            json!({"accountId": acc, "name": "Ventas"}),
            "name",
        ),
        (
            "/v1/admin/groups",
            json!({"accountId": acc, "name": "G", "channelIds": "ch_1"}),
            "channelIds",
        ),
        (
            "/v1/admin/groups",
            json!({"accountId": acc, "name": "G", "channelIds": ["ch_nope"]}),
            "channelIds[0]",
        ),
        (
            "/v1/admin/groups",
            json!({"accountId": acc, "name": "G", "channelIds": [seed.channel_id, other.channel_id]}),
            "channelIds[1]",
        ),
        (
            "/v1/admin/groups",
            json!({"accountId": acc, "name": "G", "channelIds": [seed.channel_id, seed.channel_id]}),
            "channelIds[1]",
        ),
        (
            "/v1/admin/templates",
            tpl(json!({"accountId": null})),
            "accountId",
        ),
        (
            "/v1/admin/templates",
            tpl(json!({"name": "Order Update"})),
            "name",
        ),
        ("/v1/admin/templates", tpl(json!({"name": null})), "name"),
        (
            "/v1/admin/templates",
            tpl(json!({"language": "english"})),
            "language",
        ),
        (
            "/v1/admin/templates",
            tpl(json!({"language": null})),
            "language",
        ),
        (
            "/v1/admin/templates",
            tpl(json!({"category": "SPAM"})),
            "category",
        ),
        (
            "/v1/admin/templates",
            tpl(json!({"status": "LIVE"})),
            "status",
        ),
        (
            "/v1/admin/templates",
            tpl(json!({"message": "Hola {{Bad Name}}"})),
            "message",
        ),
        (
            "/v1/admin/templates",
            tpl(json!({"message": "Hola {{name"})),
            "message",
        ),
        (
            "/v1/admin/templates",
            tpl(json!({"groupName": "NoSuchGroup"})),
            "groupName",
        ),
        (
            "/v1/admin/templates",
            tpl(json!({"active": "yes"})),
            "active",
        ),
        (
            "/v1/admin/templates",
            tpl(json!({"buttons": {"type": "URL"}})),
            "buttons",
        ),
        ("/v1/admin/templates", tpl(json!({"header": 5})), "header"),
    ];
    for (path, body, field) in &cases {
        let r = admin_json(&t, "POST", path, Some(body.clone())).await;
        assert_invalid(&r, field);
    }
    // A body that is not JSON at all.
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let r = admin_raw(&t, "POST", "/v1/admin/accounts", Some(&auth), Some("{oops")).await;
    assert_invalid(&r, "body");

    // Updates validate too, and a refused update changes nothing.
    let path = format!("/v1/admin/templates/{}", seed.template_id);
    let before = admin_json(&t, "GET", &path, None).await.json;
    for (body, field) in [
        (json!({"message": "Hola {{Bad Name}}"}), "message"),
        (json!({"status": "nope"}), "status"),
        (json!({"accountId": other.account_id}), "accountId"),
    ] {
        assert_invalid(&admin_json(&t, "PATCH", &path, Some(body)).await, field);
    }
    assert_eq!(admin_json(&t, "GET", &path, None).await.json, before);
}

both_databases!(a_null_provider_is_refused_and_a_whole_float_is_an_integer);
/// `provider` is a string in openapi.json, never null: a null is refused on create (it used to
/// make a sandbox channel) and on update, naming the field. A whole number written `1000.0` is
/// an integer to JSON Schema, so the server takes it as one.
async fn a_null_provider_is_refused_and_a_whole_float_is_an_integer() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let r = admin_json(
        &t,
        "POST",
        "/v1/admin/channels",
        Some(json!({"accountId": seed.account_id, "name": "Null", "provider": null})),
    )
    .await;
    assert_invalid(&r, "provider");
    let r = admin_json(
        &t,
        "PATCH",
        &format!("/v1/admin/channels/{}", seed.channel_id),
        Some(json!({"provider": null})),
    )
    .await;
    assert_invalid(&r, "provider");
    let r = admin_json(
        &t,
        "GET",
        &format!("/v1/admin/channels/{}", seed.channel_id),
        None,
    )
    .await;
    assert_eq!(r.json["provider"], "sandbox");
    let doc = plantilla::http::openapi::document();
    for schema in ["ChannelCreate", "ChannelUpdate"] {
        assert_eq!(
            doc["components"]["schemas"][schema]["properties"]["provider"]["type"], "string",
            "{schema}"
        );
    }

    let r = admin_json(
        &t,
        "POST",
        "/v1/admin/accounts",
        Some(json!({"name": "Whole", "conversationLimit": 1000.0})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json["conversationLimit"], 1000);
    let r = admin_json(
        &t,
        "POST",
        "/v1/admin/accounts",
        Some(json!({"name": "Half", "conversationLimit": 1000.5})),
    )
    .await;
    assert_invalid(&r, "conversationLimit");
}

both_databases!(unknown_ids_are_404);
async fn unknown_ids_are_404() {
    let t = spawn_app().await;
    t.seed().await;
    for (method, path, body) in [
        ("GET", "/v1/admin/accounts/acc_nope", None),
        ("GET", "/v1/admin/channels/ch_nope", None),
        (
            "PATCH",
            "/v1/admin/channels/ch_nope",
            Some(json!({"name": "X"})),
        ),
        ("POST", "/v1/admin/channels/ch_nope/rotate-token", None),
        ("GET", "/v1/admin/templates/tpl_nope", None),
        (
            "PATCH",
            "/v1/admin/templates/tpl_nope",
            Some(json!({"status": "PAUSED"})),
        ),
        ("GET", "/v1/admin/conversations/conv_nope", None),
        ("POST", "/v1/admin/conversations/conv_nope/close", None),
        ("GET", "/v1/admin/messages/msg_nope", None),
    ] {
        let r = admin_json(&t, method, path, body).await;
        assert_not_found(&r);
    }
}

both_databases!(the_group_associated_first_with_a_channel_is_its_default);
async fn the_group_associated_first_with_a_channel_is_its_default() {
    let t = spawn_app().await;
    let account = t
        .create("/v1/admin/accounts", json!({"name": "Acme"}))
        .await;
    let acc = s(&account["id"]);
    let mut channels = Vec::new();
    for name in ["A", "B"] {
        let c = t
            .create(
                "/v1/admin/channels",
                json!({"accountId": acc, "name": name, "provider": "sandbox"}),
            )
            .await;
        channels.push((s(&c["id"]), s(&c["publicToken"])));
    }
    let (a, b) = (&channels[0], &channels[1]);
    // "Zeta" is A's first group; "Alfa" (listed B first) is B's first and A's second.
    let zeta = t
        .create(
            "/v1/admin/groups",
            json!({"accountId": acc, "name": "Zeta", "channelIds": [a.0]}),
        )
        .await;
    assert_eq!(zeta["channelIds"], json!([a.0]));
    let alfa = t
        .create(
            "/v1/admin/groups",
            json!({"accountId": acc, "name": "Alfa", "channelIds": [b.0, a.0]}),
        )
        .await;
    assert_eq!(
        alfa["channelIds"],
        json!([b.0, a.0]),
        "channelIds keep their order"
    );
    let template = t
        .create(
            "/v1/admin/templates",
            json!({"accountId": acc, "name": "hi", "language": "es", "appId": "1", "message": "Hola"}),
        )
        .await;
    let tpl = s(&template["id"]);

    for ((_, token), group) in [(a, "Zeta"), (b, "Alfa")] {
        let r = t
            .send_old(
                token,
                json!({"templateId": tpl, "phoneNumber": "50755667788"}),
            )
            .await;
        assert_eq!(r.json["message"], "Pending", "{}", r.text);
        let c = t.conversation(&s(&r.json["data"]["conversation_id"])).await;
        assert_eq!(c["groupName"], group, "{c}");
    }
}

both_databases!(patching_a_template_status_decides_whether_it_can_be_sent);
async fn patching_a_template_status_decides_whether_it_can_be_sent() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let path = format!("/v1/admin/templates/{}", seed.template_id);
    let r = admin_json(&t, "PATCH", &path, Some(json!({"status": "PAUSED"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["status"], "PAUSED");
    assert_eq!(r.json["id"], seed.template_id.as_str());
    assert_eq!(
        admin_json(&t, "GET", &path, None).await.json["status"],
        "PAUSED"
    );

    let r = t
        .send_new(&seed.token, send_body(&seed, "50755667788"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.json["body"]["context"]["value"], "PAUSED");
    // The template API shows the new status.
    let r = t
        .call(
            "GET",
            &format!("/templates/{}", seed.template_id),
            Some(&seed.token),
            None,
        )
        .await;
    assert_eq!(r.json["data"]["status"], "PAUSED");

    let r = admin_json(&t, "PATCH", &path, Some(json!({"status": "approved"}))).await;
    assert_eq!(r.json["status"], "APPROVED", "{}", r.text);
    let r = t
        .send_new(&seed.token, send_body(&seed, "50755667788"))
        .await;
    assert_eq!(r.json["message"], "Pending", "{}", r.text);

    let r = admin_json(&t, "PATCH", &path, Some(json!({"active": false}))).await;
    assert_eq!(r.json["active"], false, "{}", r.text);
    let r = t
        .send_new(&seed.token, send_body(&seed, "50755667799"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
}

both_databases!(closing_a_conversation_makes_the_next_send_pending_on_a_new_one);
async fn closing_a_conversation_makes_the_next_send_pending_on_a_new_one() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    // An open conversation (drained) and a pending one (not yet confirmed).
    let r = t
        .send_old(&seed.token, send_body(&seed, "50755667701"))
        .await;
    let open = s(&r.json["data"]["conversation_id"]);
    t.drain().await;
    let r = t
        .send_old(&seed.token, send_body(&seed, "50755667702"))
        .await;
    let pending = s(&r.json["data"]["conversation_id"]);
    assert_eq!(t.conversation(&open).await["status"], "open");
    assert_eq!(t.conversation(&pending).await["status"], "pending");

    for (conversation_id, phone) in [(&open, "50755667701"), (&pending, "50755667702")] {
        let r = admin_json(
            &t,
            "POST",
            &format!("/v1/admin/conversations/{conversation_id}/close"),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json["id"], conversation_id.as_str());
        assert_eq!(r.json["status"], "closed");
        assert_eq!(r.json["closeReason"], "operator");
        assert!(is_time(&r.json["closedAt"]));
        // Closing twice is harmless.
        let again = admin_json(
            &t,
            "POST",
            &format!("/v1/admin/conversations/{conversation_id}/close"),
            None,
        )
        .await;
        assert_eq!(again.status, StatusCode::OK);
        assert_eq!(again.json["status"], "closed");

        let r = t.send_new(&seed.token, send_body(&seed, phone)).await;
        assert_eq!(r.json["message"], "Pending", "{}", r.text);
        assert_ne!(s(&r.json["data"]["conversation_id"]), *conversation_id);
    }
}

both_databases!(a_message_shows_its_status_timeline);
async fn a_message_shows_its_status_timeline() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let r = t
        .send_old(&seed.token, send_body(&seed, "50755667788"))
        .await;
    let conversation_id = s(&r.json["data"]["conversation_id"]);
    let message_id = s(&r.json["data"]["message_id"]);

    let m = t.message(&message_id).await;
    let documented = set(&[
        "id",
        "conversationId",
        "templateId",
        "status",
        "providerMessageId",
        "params",
        "attempts",
        "error",
        "statusTimes",
    ]);
    assert!(
        keys(&m).is_superset(&documented),
        "missing {:?}",
        documented.difference(&keys(&m))
    );
    assert!(keys(&m["statusTimes"]).is_superset(&set(&[
        "queued",
        "sent",
        "delivered",
        "read",
        "failed"
    ])));
    assert_eq!(m["id"], message_id.as_str());
    assert_eq!(m["conversationId"], conversation_id.as_str());
    assert_eq!(m["templateId"], seed.template_id.as_str());
    assert_eq!(m["status"], "queued");
    assert_eq!(m["providerMessageId"], Value::Null);
    assert_eq!(m["params"], json!({"name": "Ana", "order": "A-1"}));
    assert_eq!(m["attempts"], 0);
    assert_eq!(m["error"], Value::Null);
    assert!(is_time(&m["statusTimes"]["queued"]));
    for later in ["sent", "delivered", "read", "failed"] {
        assert_eq!(m["statusTimes"][later], Value::Null, "{later}");
    }

    t.drain().await;
    let m = t.message(&message_id).await;
    assert_eq!(m["status"], "read");
    assert!(s(&m["providerMessageId"]).starts_with("wamid."));
    assert_eq!(m["attempts"], 1);
    assert_eq!(m["error"], Value::Null);
    for step in ["queued", "sent", "delivered", "read"] {
        assert!(is_time(&m["statusTimes"][step]), "{step}: {m}");
    }
    assert_eq!(m["statusTimes"]["failed"], Value::Null);

    // A failed one keeps Meta's code and text.
    let r = t
        .send_old(&seed.token, send_body(&seed, "50755660000"))
        .await;
    let failed_id = s(&r.json["data"]["message_id"]);
    t.drain().await;
    let m = t.message(&failed_id).await;
    assert_eq!(m["status"], "failed");
    assert_eq!(m["error"]["code"], 131026);
    assert!(m["error"]["title"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(is_time(&m["statusTimes"]["failed"]));
}

/// A Graph API stand-in: answers every request with an empty template page and hands back
/// each request's method and target (path and query, as sent).
async fn recording_graph() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let app =
        axum::Router::new().fallback(move |method: axum::http::Method, uri: axum::http::Uri| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(format!("{method} {uri}"));
                axum::Json(json!({"data": []}))
            }
        });
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, rx)
}

both_databases!(graph_ids_are_digits_and_nothing_in_a_channel_has_control_characters);
async fn graph_ids_are_digits_and_nothing_in_a_channel_has_control_characters() {
    let (graph, mut seen) = recording_graph().await;
    let t = spawn_app_with(|c| c.graph_base_url = graph.clone()).await;
    let seed = t.seed().await;
    let acc = seed.account_id.clone();
    let cloud = |extra: Value| {
        let mut body = json!({"accountId": acc, "name": "C", "provider": "cloud",
                              "phoneNumberId": "106540352242922", "wabaId": "102290129340398",
                              "accessToken": "EAAG"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let sandbox = |extra: Value| {
        let mut body = json!({"accountId": acc, "name": "S", "provider": "sandbox"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let channels = "/v1/admin/channels";
    for (body, field) in [
        // The probe's traversal: it made template sync call …/me/accounts.
        (cloud(json!({"wabaId": "../../me/accounts?z="})), "wabaId"),
        (cloud(json!({"wabaId": "1/2"})), "wabaId"),
        (cloud(json!({"phoneNumberId": "PN1"})), "phoneNumberId"),
        (cloud(json!({"phoneNumberId": "123?x=1"})), "phoneNumberId"),
        (
            cloud(json!({"phoneNumberId": "1".repeat(33)})),
            "phoneNumberId",
        ),
        (
            cloud(json!({"accessToken": "EAAG\r\nX-Injected: 1"})),
            "accessToken",
        ),
        (cloud(json!({"appSecret": "s\u{0}"})), "appSecret"),
        (
            sandbox(json!({"phoneNumberId": "PN\u{0}1"})),
            "phoneNumberId",
        ),
        (sandbox(json!({"wabaId": "W\u{1b}[2J"})), "wabaId"),
        (sandbox(json!({"name": "Main\u{7f}"})), "name"),
        (sandbox(json!({"verifyToken": "v\u{85}x"})), "verifyToken"),
    ] {
        let r = admin_json(&t, "POST", channels, Some(body.clone())).await;
        assert_invalid(&r, field);
    }
    let r = admin_json(&t, "POST", channels, Some(cloud(json!({"wabaId": "../x"})))).await;
    assert!(
        r.json["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("digits")),
        "{}",
        r.text
    );
    // Sandbox channels keep free-form ids (no Graph API call uses them).
    let r = admin_json(
        &t,
        "POST",
        channels,
        Some(sandbox(json!({"phoneNumberId": "PN-1", "wabaId": "WABA1"}))),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let sandbox_id = r.json["id"].as_str().unwrap().to_string();
    // … until one becomes a cloud channel: then its ids are checked.
    let path = format!("{channels}/{sandbox_id}");
    let r = admin_json(
        &t,
        "PATCH",
        &path,
        Some(json!({"provider": "cloud", "accessToken": "EAAG"})),
    )
    .await;
    assert_invalid(&r, "phoneNumberId");

    // Updates are checked the same way, and a refused one changes nothing.
    let r = admin_json(&t, "POST", channels, Some(cloud(json!({})))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let cloud_id = r.json["id"].as_str().unwrap().to_string();
    let path = format!("{channels}/{cloud_id}");
    let before = admin_json(&t, "GET", &path, None).await.json;
    for (body, field) in [
        (json!({"wabaId": "../../me/accounts?z="}), "wabaId"),
        (json!({"phoneNumberId": "1 2"}), "phoneNumberId"),
        (json!({"name": "a\nb"}), "name"),
    ] {
        assert_invalid(&admin_json(&t, "PATCH", &path, Some(body)).await, field);
    }
    assert_eq!(admin_json(&t, "GET", &path, None).await.json, before);

    // A template's appId (Meta's template id) refuses control characters too.
    let r = admin_json(
        &t,
        "PATCH",
        &format!("/v1/admin/templates/{}", seed.template_id),
        Some(json!({"appId": "app\u{0}1"})),
    )
    .await;
    assert_invalid(&r, "appId");

    // A traversal stored before this rule (straight through the store) still cannot leave
    // the version prefix: sync sends it as one encoded path segment.
    let mut stored = t.app().store.channel(&cloud_id).await.unwrap().unwrap();
    stored.waba_id = "../../me/accounts?z=".into();
    t.app().store.update_channel(&stored).await.unwrap();
    let r = admin_json(
        &t,
        "POST",
        &format!("{path}/templates/sync"),
        Some(json!({})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let line = seen.recv().await.unwrap();
    assert_eq!(
        line,
        "GET /v23.0/..%2F..%2Fme%2Faccounts%3Fz=/message_templates\
         ?limit=100&fields=id%2Cname%2Clanguage%2Cstatus%2Ccategory%2Ccomponents"
    );
    assert!(seen.try_recv().is_err(), "one request only");
}
