// Tenant isolation: two accounts, each with a channel, groups, a template, a conversation and
// a message. For every endpoint that takes an id (or a name that resolves to one), account
// A's token never reads or sends through B's things, and a channel's webhook never touches
// another channel's messages. The admin API is global by design (the operator's); a public
// token never opens it.

use crate::common;

use common::*;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

const SHARED_APP_SECRET: &str = "shared-meta-app-secret";

struct Tenant {
    seed: Seed,
    channel_id: String,
    phone_number_id: String,
    app_secret: String,
    verify_token: String,
    template_name: &'static str,
    /// A message queued to `phone` on a pending conversation.
    phone: &'static str,
    conversation_id: String,
    message_id: String,
}

struct World {
    t: TestApp,
    a: Tenant,
    b: Tenant,
}

/// Tenant `key` ("a", "b"): phone number id `PN-<key>`, app secret `<key>-app-secret`,
/// verify token `<key>-verify`.
async fn tenant(
    t: &TestApp,
    key: &str,
    template_name: &'static str,
    phone: &'static str,
    extra_group: Option<&str>,
) -> Tenant {
    let name = format!("Account {key}");
    let pnid = format!("PN-{key}");
    let secret = format!("{key}-app-secret");
    let verify = format!("{key}-verify");
    let account = t
        .create(
            "/v1/admin/accounts",
            json!({"name": name, "conversationLimit": 100}),
        )
        .await;
    let channel = t
        .create(
            "/v1/admin/channels",
            json!({"accountId": account["id"], "name": "Main", "provider": "sandbox",
                   "phoneNumberId": pnid, "appSecret": secret, "verifyToken": verify,
                   "messagesPerSecond": 1000}),
        )
        .await;
    let group = t
        .create(
            "/v1/admin/groups",
            json!({"accountId": account["id"], "name": "Ventas", "channelIds": [channel["id"]]}),
        )
        .await;
    if let Some(extra) = extra_group {
        t.create(
            "/v1/admin/groups",
            json!({"accountId": account["id"], "name": extra, "channelIds": [channel["id"]]}),
        )
        .await;
    }
    let template = t
        .create(
            "/v1/admin/templates",
            json!({"accountId": account["id"], "name": template_name, "language": "es",
                   "category": "UTILITY", "status": "APPROVED", "appId": format!("app_{template_name}"),
                   "message": "Hola {{name}}, tu pedido {{order}} va en camino"}),
        )
        .await;
    let seed = Seed {
        account_id: s(&account["id"]),
        channel_id: s(&channel["id"]),
        token: s(&channel["publicToken"]),
        group_id: s(&group["id"]),
        template_id: s(&template["id"]),
    };
    let r = t.send_old(&seed.token, send_body(&seed, phone)).await;
    assert_eq!(r.json["message"], "Pending", "{}", r.text);
    Tenant {
        channel_id: seed.channel_id.clone(),
        conversation_id: s(&r.json["data"]["conversation_id"]),
        message_id: s(&r.json["data"]["message_id"]),
        seed,
        phone_number_id: pnid,
        app_secret: secret,
        verify_token: verify,
        template_name,
        phone,
    }
}

async fn world() -> World {
    let t = spawn_app_with(|c| {
        c.meta_app_secret = Some(plantilla::config::Secret::new(SHARED_APP_SECRET));
    })
    .await;
    let a = tenant(&t, "a", "order_update", "50755661111", None).await;
    let b = tenant(&t, "b", "invoice_ready", "50755662222", Some("Compras")).await;
    World { t, a, b }
}

impl World {
    /// (conversations, messages) stored.
    async fn counts(&self) -> (i64, i64) {
        (
            self.t.sql_i64("SELECT COUNT(*) FROM conversations").await,
            self.t.sql_i64("SELECT COUNT(*) FROM messages").await,
        )
    }
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn status_payload(pnid: &str, wamid: &str, message_id: &str, status: &str) -> String {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{
        "field": "messages",
        "value": {"messaging_product": "whatsapp",
                  "metadata": {"display_phone_number": "15550000", "phone_number_id": pnid},
                  "statuses": [{"id": wamid, "status": status, "timestamp": "1700000000",
                                "recipient_id": "50755669999",
                                "biz_opaque_callback_data": message_id}]}}]}]})
    .to_string()
}

async fn webhook(t: &TestApp, path: &str, secret: &str, body: &str) -> StatusCode {
    t.client
        .post(format!("{}{path}", t.base))
        .header("X-Hub-Signature-256", sign(secret, body.as_bytes()))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
}

both_databases!(template_detail_of_another_account_is_not_found_in_both_families);
async fn template_detail_of_another_account_is_not_found_in_both_families() {
    let w = world().await;
    for family in ["/api/Template", "/templates"] {
        let own =
            w.t.call(
                "GET",
                &format!("{family}/{}", w.a.seed.template_id),
                Some(&w.a.seed.token),
                None,
            )
            .await;
        assert_eq!(own.status, StatusCode::OK, "{}", own.text);
        let other =
            w.t.call(
                "GET",
                &format!("{family}/{}", w.b.seed.template_id),
                Some(&w.a.seed.token),
                None,
            )
            .await;
        assert_eq!(other.status, StatusCode::NOT_FOUND, "{family}");
        assert_eq!(
            other.json,
            json!({"code": 404, "body": {
                "context": {"key": "Params", "label": "params.templateId", "value": w.b.seed.template_id},
                "message": "Template not found", "path": ["params.templateId"], "type": "Not found"}})
        );
        assert!(!other.text.contains(w.b.template_name));
    }
}

both_databases!(template_lists_show_only_the_accounts_own);
async fn template_lists_show_only_the_accounts_own() {
    let w = world().await;
    for family in ["/api/Template", "/templates"] {
        let all = w.t.call("GET", family, Some(&w.a.seed.token), None).await;
        assert_eq!(all.status, StatusCode::OK);
        let ids: Vec<&str> = all.json["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec![w.a.seed.template_id.as_str()]);
        assert_eq!(all.json["total"], 1);
        let by_name =
            w.t.call(
                "GET",
                &format!("{family}?name={}", w.b.template_name),
                Some(&w.a.seed.token),
                None,
            )
            .await;
        assert_eq!(by_name.json["total"], 0, "{}", by_name.text);
    }
}

both_databases!(sending_with_another_accounts_template_is_not_found_and_creates_nothing);
async fn sending_with_another_accounts_template_is_not_found_and_creates_nothing() {
    let w = world().await;
    let before = w.counts().await;
    let mut body = send_body(&w.b.seed, "50755663333");
    let old = w.t.send_old(&w.a.seed.token, body.clone()).await;
    assert_eq!(old.status, StatusCode::NOT_FOUND);
    assert_eq!(
        old.json,
        json!({"code": 404, "body": {
            "context": {"key": "Body", "label": "body.templateId", "value": w.b.seed.template_id},
            "message": "Template not found", "path": ["body.templateId"], "type": "Not found"}})
    );
    body["groupName"] = json!("Ventas");
    let new = w.t.send_new(&w.a.seed.token, body).await;
    assert_eq!(new.status, StatusCode::NOT_FOUND);
    assert_eq!(new.json["body"]["message"], "Template not found");
    // Nor with B's template's name or appId in place of an id.
    for not_an_id in [
        w.b.template_name.to_string(),
        format!("app_{}", w.b.template_name),
    ] {
        let mut body = send_body(&w.a.seed, "50755663333");
        body["templateId"] = json!(not_an_id);
        let r = w.t.send_old(&w.a.seed.token, body).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{not_an_id}");
    }
    assert_eq!(w.counts().await, before, "nothing created");
}

both_databases!(group_names_resolve_only_within_the_account);
async fn group_names_resolve_only_within_the_account() {
    let w = world().await;
    let before = w.counts().await;
    // "Compras" is only B's.
    let mut body = send_body(&w.a.seed, "50755663333");
    body["groupName"] = json!("Compras");
    for r in [
        w.t.send_old(&w.a.seed.token, body.clone()).await,
        w.t.send_new(&w.a.seed.token, body.clone()).await,
    ] {
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.json["body"]["message"], "Group not found", "{}", r.text);
        assert_eq!(r.json["body"]["context"]["value"], "Compras");
    }
    assert_eq!(w.counts().await, before, "nothing created");
    // "Ventas" exists in both: A's send goes to A's.
    body["groupName"] = json!("Ventas");
    let r = w.t.send_old(&w.a.seed.token, body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let conversation = s(&r.json["data"]["conversation_id"]);
    assert_eq!(
        w.t.sql_i64(&format!(
            "SELECT COUNT(*) FROM conversations WHERE id = '{conversation}' AND group_id = '{}' AND account_id = '{}'",
            w.a.seed.group_id, w.a.seed.account_id
        ))
        .await,
        1
    );
}

both_databases!(conversations_of_another_account_are_neither_seen_nor_reused);
async fn conversations_of_another_account_are_neither_seen_nor_reused() {
    let w = world().await;
    // B's number has a pending conversation in B: for A it is a new number (never B's 202).
    for (from, to) in [(&w.a, &w.b), (&w.b, &w.a)] {
        let r =
            w.t.send_old(&from.seed.token, send_body(&from.seed, to.phone))
                .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json["message"], "Pending");
        let conversation = s(&r.json["data"]["conversation_id"]);
        assert_ne!(conversation, to.conversation_id);
        assert!(!r.text.contains(&to.conversation_id));
        let c = w.t.conversation(&conversation).await;
        assert_eq!(c["accountId"], json!(from.seed.account_id));
        assert_eq!(c["channelId"], json!(from.channel_id));
        // The other account's conversation keeps its one message.
        let theirs = w.t.conversation(&to.conversation_id).await;
        assert_eq!(theirs["status"], "pending");
        assert_eq!(
            w.t.sql_i64(&format!(
                "SELECT COUNT(*) FROM messages WHERE conversation_id = '{}'",
                to.conversation_id
            ))
            .await,
            1
        );
    }
    // Within the account, the contract's 202 still holds.
    let r =
        w.t.send_old(&w.a.seed.token, send_body(&w.a.seed, w.a.phone))
            .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.json["conversationId"], json!(w.a.conversation_id));
}

both_databases!(a_channels_webhook_never_touches_another_channels_messages);
async fn a_channels_webhook_never_touches_another_channels_messages() {
    let w = world().await;
    let b_message = || w.t.message(&w.b.message_id);
    // B's own webhook: B's message is sent (a control that the payload is right).
    let body = status_payload(&w.b.phone_number_id, "wamid.B1", &w.b.message_id, "sent");
    let path_b = format!("/webhooks/whatsapp/{}", w.b.channel_id);
    assert_eq!(
        webhook(&w.t, &path_b, &w.b.app_secret, &body).await,
        StatusCode::OK
    );
    assert_eq!(b_message().await["status"], "sent");

    let path_a = format!("/webhooks/whatsapp/{}", w.a.channel_id);
    // Through A's channel endpoint, with A's secret: by B's message id, by B's wamid, and
    // naming B's phone number id. Through the shared endpoint, with A's phone number id.
    let forged = [
        (
            path_a.clone(),
            w.a.app_secret.as_str(),
            status_payload(
                &w.a.phone_number_id,
                "wamid.forged",
                &w.b.message_id,
                "read",
            ),
        ),
        (
            path_a.clone(),
            w.a.app_secret.as_str(),
            status_payload(&w.a.phone_number_id, "wamid.B1", "msg_none", "failed"),
        ),
        (
            path_a.clone(),
            w.a.app_secret.as_str(),
            status_payload(&w.b.phone_number_id, "wamid.B1", &w.b.message_id, "read"),
        ),
        (
            "/webhooks/whatsapp".to_string(),
            SHARED_APP_SECRET,
            status_payload(&w.a.phone_number_id, "wamid.B1", &w.b.message_id, "failed"),
        ),
    ];
    for (path, secret, body) in forged {
        assert_eq!(webhook(&w.t, &path, secret, &body).await, StatusCode::OK);
        let m = b_message().await;
        assert_eq!(m["status"], "sent", "{path}: {body} moved B's message: {m}");
    }
    // Nothing was kept to be applied later either.
    assert_eq!(
        w.t.sql_i64("SELECT COUNT(*) FROM pending_statuses").await,
        0
    );
    assert_eq!(
        w.t.conversation(&w.b.conversation_id).await["status"],
        "open",
        "B's conversation opened with its own sent status only"
    );
    // A's own message is untouched by all this too.
    assert_eq!(w.t.message(&w.a.message_id).await["status"], "queued");
}

both_databases!(channel_webhook_verification_uses_only_that_channels_token);
async fn channel_webhook_verification_uses_only_that_channels_token() {
    let w = world().await;
    let verify = |channel: &str, token: &str| {
        let url = format!(
            "{}/webhooks/whatsapp/{channel}?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=42",
            w.t.base
        );
        let client = w.t.client.clone();
        async move { client.get(url).send().await.unwrap() }
    };
    let own = verify(&w.a.channel_id, &w.a.verify_token).await;
    assert_eq!(own.status(), StatusCode::OK);
    assert_eq!(own.text().await.unwrap(), "42");
    let other = verify(&w.a.channel_id, &w.b.verify_token).await;
    assert_eq!(other.status(), StatusCode::FORBIDDEN);
}

both_databases!(a_public_token_never_opens_the_global_admin_api);
async fn a_public_token_never_opens_the_global_admin_api() {
    let w = world().await;
    for path in [
        format!("/v1/admin/messages/{}", w.a.message_id),
        format!("/v1/admin/messages/{}", w.b.message_id),
        format!("/v1/admin/conversations/{}", w.b.conversation_id),
        format!("/v1/admin/templates/{}", w.b.seed.template_id),
        format!("/v1/admin/channels/{}", w.b.channel_id),
        format!("/v1/admin/accounts/{}", w.b.seed.account_id),
    ] {
        let r =
            w.t.client
                .get(format!("{}{path}", w.t.base))
                .bearer_auth(&w.a.seed.token)
                .send()
                .await
                .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        let v: Value = r.json().await.unwrap();
        assert!(!v.to_string().contains(&w.b.message_id));
    }
}

/// A request to the native API with a bearer token; (status, JSON body).
async fn native(
    t: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
    idempotency_key: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = t
        .client
        .request(method.parse().unwrap(), format!("{}{path}", t.base))
        .bearer_auth(token);
    if let Some(key) = idempotency_key {
        req = req.header("Idempotency-Key", key);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn native_body(tenant: &Tenant, to: &str) -> Value {
    json!({"templateId": tenant.seed.template_id, "to": to,
           "params": {"name": "Ana", "order": "A-1"}})
}

both_databases!(native_api_ids_of_another_account_are_not_found);
async fn native_api_ids_of_another_account_are_not_found() {
    let w = world().await;
    let t = &w.t;
    let key = s(&t
        .create(
            &format!("/v1/admin/accounts/{}/api-keys", w.a.seed.account_id),
            json!({}),
        )
        .await["key"]);
    let (status, batch) = native(
        t,
        "POST",
        "/v1/messages/batch",
        &w.b.seed.token,
        Some(json!({"templateId": w.b.seed.template_id,
                    "recipients": [{"to": "50755664444", "params": {"name": "Ana", "order": "A-1"}}]})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{batch}");
    let b_batch = s(&batch["batchId"]);
    let b_ids = [
        w.b.message_id.clone(),
        w.b.conversation_id.clone(),
        w.b.seed.template_id.clone(),
        b_batch.clone(),
    ];
    let before = w.counts().await;

    for token in [w.a.seed.token.as_str(), key.as_str()] {
        for path in [
            format!("/v1/messages/{}", w.b.message_id),
            format!("/v1/conversations/{}", w.b.conversation_id),
            format!("/v1/templates/{}", w.b.seed.template_id),
            format!("/v1/batches/{b_batch}"),
        ] {
            let (status, body) = native(t, "GET", &path, token, None, None).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
            assert_eq!(body["type"], "/problems/not-found");
        }
        let (status, body) = native(
            t,
            "POST",
            &format!("/v1/conversations/{}/close", w.b.conversation_id),
            token,
            None,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        // Lists show only the account's own things, whatever the filter asks.
        for path in [
            "/v1/messages".to_string(),
            format!("/v1/messages?channelId={}", w.b.channel_id),
            format!("/v1/messages?batchId={b_batch}"),
            format!("/v1/messages?phoneNumber={}", w.b.phone),
            "/v1/conversations".to_string(),
            format!("/v1/conversations?channelId={}", w.b.channel_id),
            "/v1/templates".to_string(),
        ] {
            let (status, body) = native(t, "GET", &path, token, None, None).await;
            let text = body.to_string();
            assert!(
                status == StatusCode::OK || status == StatusCode::BAD_REQUEST,
                "{path}: {status} {body}"
            );
            for id in &b_ids {
                assert!(!text.contains(id.as_str()), "{path} shows B's {id}: {body}");
            }
        }
        // Sends: B's template by id or by name, through B's channel.
        let mut by_name = native_body(&w.a, "50755665555");
        by_name.as_object_mut().unwrap().remove("templateId");
        by_name["templateName"] = json!(w.b.template_name);
        by_name["language"] = json!("es");
        let mut b_channel = native_body(&w.a, "50755665555");
        b_channel["channelId"] = json!(w.b.channel_id);
        let mut b_template = native_body(&w.b, "50755665555");
        b_template["channelId"] = json!(w.a.channel_id);
        for body in [by_name, b_channel, b_template] {
            let mut body = body;
            if token == key && body.get("channelId").is_none() {
                body["channelId"] = json!(w.a.channel_id);
            }
            let (status, answer) =
                native(t, "POST", "/v1/messages", token, Some(body.clone()), None).await;
            assert!(
                status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
                "{body} → {status} {answer}"
            );
        }
    }
    assert_eq!(w.counts().await, before, "nothing created");
    assert_eq!(
        t.conversation(&w.b.conversation_id).await["status"],
        "pending"
    );

    // The same Idempotency-Key in two accounts names two requests.
    let (status, a) = native(
        t,
        "POST",
        "/v1/messages",
        &w.a.seed.token,
        Some(native_body(&w.a, "50755666666")),
        Some("same-key"),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{a}");
    let (status, b) = native(
        t,
        "POST",
        "/v1/messages",
        &w.b.seed.token,
        Some(native_body(&w.b, "50755666666")),
        Some("same-key"),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{b}");
    assert_ne!(a["id"], b["id"]);
    assert_eq!(b["channelId"], json!(w.b.channel_id));
}
