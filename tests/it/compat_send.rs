// The template API's send, both families, one test per row of the contract's send table
// (contract §2, "Send: outcomes, checked in this order"), plus the 500 and the body fields
// that shape the conversation.

use crate::common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const JSON_UTF8: &str = "application/json; charset=utf-8";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Old,
    New,
}

use Family::{New, Old};

const FAMILIES: [Family; 2] = [Old, New];

impl Family {
    fn send_path(self) -> &'static str {
        match self {
            Old => "/api/Template/SendMessage",
            New => "/templates",
        }
    }
}

async fn send(t: &TestApp, family: Family, token: &str, body: &Value) -> Reply {
    send_raw(t, family, token, &body.to_string()).await
}

async fn send_raw(t: &TestApp, family: Family, token: &str, body: &str) -> Reply {
    t.call("POST", family.send_path(), Some(token), Some(body))
        .await
}

/// The `{code, body: {context, message, path, type}}` envelope.
fn envelope(code: u16, context: Value, message: &str, path: Value, kind: &str) -> Value {
    json!({"code": code, "body": {"context": context, "message": message, "path": path, "type": kind}})
}

/// Asserts status, JSON content type and the whole body.
fn assert_reply(r: &Reply, status: StatusCode, body: &Value) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.content_type, JSON_UTF8, "{}", r.text);
    assert_eq!(&r.json, body, "{}", r.text);
}

/// Asserts a `Pending` reply and returns `(conversation_id, message_id)`.
fn assert_pending(r: &Reply) -> (String, String) {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let conversation_id = s(&r.json["data"]["conversation_id"]);
    let message_id = s(&r.json["data"]["message_id"]);
    assert_reply(
        r,
        StatusCode::OK,
        &json!({"success": true, "message": "Pending",
                "data": {"conversation_id": conversation_id, "message_id": message_id}}),
    );
    assert!(conversation_id.starts_with("conv_"), "{conversation_id}");
    assert!(message_id.starts_with("msg_"), "{message_id}");
    (conversation_id, message_id)
}

/// Rows in the tables a send writes: conversations, messages, delivery jobs, usage counted.
async fn written(t: &TestApp) -> (i64, i64, i64, i64) {
    (
        t.sql_i64("SELECT count(*) FROM conversations").await,
        t.sql_i64("SELECT count(*) FROM messages").await,
        t.sql_i64("SELECT count(*) FROM delivery_jobs").await,
        t.sql_i64("SELECT CAST(coalesce(sum(used), 0) AS BIGINT) FROM conversation_usage")
            .await,
    )
}

/// After a refused send: nothing was written, and the number is still new (a valid send is
/// `Pending`, not `202`).
async fn assert_nothing_created(t: &TestApp, seed: &Seed, phone: &str) {
    assert_eq!(written(t).await, (0, 0, 0, 0), "a refused send wrote rows");
    assert_pending(&send(t, Old, &seed.token, &send_body(seed, phone)).await);
}

async fn create_template(t: &TestApp, account_id: &str, body: Value) -> String {
    let mut body = body;
    body["accountId"] = json!(account_id);
    s(&t.create("/v1/admin/templates", body).await["id"])
}

// ---------------------------------------------------------------------------------------------
// Row 1: no Authorization header.
// ---------------------------------------------------------------------------------------------

both_databases!(row1_no_authorization_header_is_401);
async fn row1_no_authorization_header_is_401() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    // Even with a bad body: authentication is checked first.
    for body in [
        send_body(&seed, "50755667788").to_string(),
        "not json".into(),
    ] {
        let r = t.call("POST", Old.send_path(), None, Some(&body)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.text, "No authorization token found.");
        assert!(
            r.content_type.starts_with("text/plain"),
            "{}",
            r.content_type
        );

        let r = t.call("POST", New.send_path(), None, Some(&body)).await;
        assert_reply(
            &r,
            StatusCode::UNAUTHORIZED,
            &json!({"code": 401, "body": {
                "context": {"key": "Authorization", "label": "headers.authorization"},
                "message": "No authorization token found",
                "path": ["headers.authorization"],
                "type": "Unauthorized"}}),
        );
    }
    assert_nothing_created(&t, &seed, "50755667788").await;
}

// ---------------------------------------------------------------------------------------------
// Row 2: unknown token.
// ---------------------------------------------------------------------------------------------

fn unknown_token_body() -> Value {
    json!({
        "context": {"key": "Authorization", "label": "headers.authorization", "value": "Bearer"},
        "message": "Cannot find a channel associated with the public token Bearer",
        "path": ["headers.authorization"],
        "type": "Bad format"
    })
}

both_databases!(row2_unknown_token_is_400_and_never_echoes_the_token);
async fn row2_unknown_token_is_400_and_never_echoes_the_token() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let wrong = "pk_0123456789abcdefWRONGTOKENvalue";
    // A token that differs from the real one in its last character is just as unknown.
    let almost = format!("{}x", &seed.token[..seed.token.len() - 1]);
    for token in [wrong, almost.as_str(), ""] {
        for body in [
            send_body(&seed, "50755667788").to_string(),
            "not json".into(),
        ] {
            let r = send_raw(&t, Old, token, &body).await;
            assert_reply(&r, StatusCode::BAD_REQUEST, &unknown_token_body());
            if !token.is_empty() {
                assert!(!r.text.contains(token), "token echoed: {}", r.text);
            }

            let r = send_raw(&t, New, token, &body).await;
            assert_reply(
                &r,
                StatusCode::BAD_REQUEST,
                &json!({"code": 400, "body": unknown_token_body()}),
            );
            if !token.is_empty() {
                assert!(!r.text.contains(token), "token echoed: {}", r.text);
            }
        }
    }
    assert_nothing_created(&t, &seed, "50755667788").await;
}

// ---------------------------------------------------------------------------------------------
// Row 3: bad bodies.
// ---------------------------------------------------------------------------------------------

both_databases!(row3_bad_bodies_are_400_naming_the_field);
async fn row3_bad_bodies_are_400_naming_the_field() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let tpl = seed.template_id.as_str();
    let params = json!({"name": "Ana", "order": "A-1"});
    // (body, field named in the new family's label, text the detail must mention)
    let cases: Vec<(String, &str, &str)> = vec![
        ("not json".into(), "body", "JSON"),
        (r#"{"templateId": "#.into(), "body", "JSON"),
        ("[1, 2]".into(), "body", "object"),
        ("\"a string\"".into(), "body", "object"),
        (
            json!({"phoneNumber": "50755667788", "params": params}).to_string(),
            "templateId",
            "templateId",
        ),
        (
            json!({"templateId": 42, "phoneNumber": "50755667788", "params": params}).to_string(),
            "templateId",
            "templateId",
        ),
        (
            json!({"templateId": tpl, "params": params}).to_string(),
            "phoneNumber",
            "phoneNumber",
        ),
        (
            json!({"templateId": tpl, "phoneNumber": 50755667788_i64, "params": params})
                .to_string(),
            "phoneNumber",
            "phoneNumber",
        ),
        (
            json!({"templateId": tpl, "phoneNumber": "+50755667788", "params": params}).to_string(),
            "phoneNumber",
            "phoneNumber",
        ),
        (
            json!({"templateId": tpl, "phoneNumber": "55667788", "params": params}).to_string(),
            "phoneNumber",
            "phoneNumber",
        ),
        (
            json!({"templateId": tpl, "phoneNumber": "507 55667788", "params": params}).to_string(),
            "phoneNumber",
            "phoneNumber",
        ),
        (
            json!({"templateId": tpl, "phoneNumber": "50755667788", "assign": "true",
                   "params": params})
            .to_string(),
            "assign",
            "assign",
        ),
        (
            json!({"templateId": tpl, "phoneNumber": "50755667788", "params": ["Ana", "A-1"]})
                .to_string(),
            "params",
            "params",
        ),
        (
            json!({"templateId": tpl, "phoneNumber": "50755667788", "clientName": 7,
                   "params": params})
            .to_string(),
            "clientName",
            "clientName",
        ),
        (
            json!({"templateId": tpl, "phoneNumber": "50755667788", "groupName": ["Ventas"],
                   "params": params})
            .to_string(),
            "groupName",
            "groupName",
        ),
    ];
    for (body, field, mention) in &cases {
        let r = send_raw(&t, Old, &seed.token, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text);
        assert_eq!(r.content_type, JSON_UTF8, "{body}");
        let detail = r.json["detail"].as_str().unwrap_or_default().to_string();
        assert_eq!(
            r.json,
            json!({"success": false, "message": "No hay datos para enviar", "detail": detail}),
            "{body}"
        );
        assert!(
            detail.contains(mention),
            "{body}: detail {detail:?} should mention {mention}"
        );

        let r = send_raw(&t, New, &seed.token, body).await;
        let label = if *field == "body" {
            "body".to_string()
        } else {
            format!("body.{field}")
        };
        let message = r.json["body"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert_reply(
            &r,
            StatusCode::BAD_REQUEST,
            &envelope(
                400,
                json!({"key": "Body", "label": label}),
                &message,
                json!([label]),
                "Bad format",
            ),
        );
        assert!(
            message.contains(mention),
            "{body}: message {message:?} should mention {mention}"
        );
    }
    assert_nothing_created(&t, &seed, "50755667788").await;
}

both_databases!(row3_the_documented_phone_forms_are_accepted);
async fn row3_the_documented_phone_forms_are_accepted() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    // The document's own example (possible, unassigned), Mexican 521…, Argentine 549….
    for phone in ["50755667788", "5215512345678", "5491123456789"] {
        assert_pending(&send(&t, Old, &seed.token, &send_body(&seed, phone)).await);
    }
}

// ---------------------------------------------------------------------------------------------
// Row 4: template not found in the account.
// ---------------------------------------------------------------------------------------------

both_databases!(row4_a_template_of_another_account_or_an_unknown_id_is_404);
async fn row4_a_template_of_another_account_or_an_unknown_id_is_404() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let other = t.seed().await;
    assert_ne!(seed.account_id, other.account_id);
    for family in FAMILIES {
        for id in [
            other.template_id.as_str(),
            "tpl_0000000000000000000000000000dead",
        ] {
            let mut body = send_body(&seed, "50755667788");
            body["templateId"] = json!(id);
            let r = send(&t, family, &seed.token, &body).await;
            assert_reply(
                &r,
                StatusCode::NOT_FOUND,
                &envelope(
                    404,
                    json!({"key": "Body", "label": "body.templateId", "value": id}),
                    "Template not found",
                    json!(["body.templateId"]),
                    "Not found",
                ),
            );
        }
    }
    assert_nothing_created(&t, &seed, "50755667788").await;
    // The other account's template is real: its own token sends it.
    assert_pending(&send(&t, Old, &other.token, &send_body(&other, "50755667788")).await);
}

// ---------------------------------------------------------------------------------------------
// Row 5: template without appId / message.
// ---------------------------------------------------------------------------------------------

both_databases!(row5_a_template_without_app_id_or_message_is_400);
async fn row5_a_template_without_app_id_or_message_is_400() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let base = json!({"name": "incomplete", "language": "es", "status": "APPROVED"});
    let mut no_app_id = base.clone();
    no_app_id["message"] = json!("Hola");
    let mut no_message = base.clone();
    no_message["appId"] = json!("app_9");
    let no_both = base.clone();
    // Row 5 comes before row 6: a paused template without appId is still row 5.
    let mut paused_no_app_id = no_app_id.clone();
    paused_no_app_id["status"] = json!("PAUSED");
    let cases = [
        (no_app_id, json!(["template.appId"])),
        (no_message, json!(["template.message"])),
        (no_both, json!(["template.appId", "template.message"])),
        (paused_no_app_id, json!(["template.appId"])),
    ];
    for (template, missing) in cases {
        let id = create_template(&t, &seed.account_id, template.clone()).await;
        for family in FAMILIES {
            let body = json!({"templateId": id, "phoneNumber": "50755667788"});
            let r = send(&t, family, &seed.token, &body).await;
            assert_reply(
                &r,
                StatusCode::BAD_REQUEST,
                &envelope(
                    400,
                    json!({"key": "Body", "label": missing}),
                    "No data to send",
                    missing.clone(),
                    "Bad format",
                ),
            );
        }
    }
    assert_nothing_created(&t, &seed, "50755667788").await;
}

// ---------------------------------------------------------------------------------------------
// Row 6: template not sendable.
// ---------------------------------------------------------------------------------------------

fn assert_not_sendable(r: &Reply, status: &str, says: &str) {
    let message = r.json["body"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_reply(
        r,
        StatusCode::BAD_REQUEST,
        &envelope(
            400,
            json!({"key": "Template", "label": "template.status", "value": status}),
            &message,
            json!(["template.status"]),
            "Bad format",
        ),
    );
    assert!(
        message.to_lowercase().contains(says),
        "message {message:?} should say {says:?}"
    );
}

both_databases!(row6_a_paused_or_deactivated_template_is_400);
async fn row6_a_paused_or_deactivated_template_is_400() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let paused = create_template(
        &t,
        &seed.account_id,
        json!({"name": "paused", "language": "es", "status": "PAUSED", "appId": "app_2",
               "message": "Hola {{name}}"}),
    )
    .await;
    let rejected = create_template(
        &t,
        &seed.account_id,
        json!({"name": "rejected", "language": "es", "status": "REJECTED", "appId": "app_3",
               "message": "Hola"}),
    )
    .await;
    let inactive = create_template(
        &t,
        &seed.account_id,
        json!({"name": "inactive", "language": "es", "status": "APPROVED", "appId": "app_4",
               "message": "Hola {{name}}", "active": false}),
    )
    .await;
    // Sent with no params: row 6 comes before row 8.
    for family in FAMILIES {
        let body = |id: &str| json!({"templateId": id, "phoneNumber": "50755667788"});
        assert_not_sendable(
            &send(&t, family, &seed.token, &body(&paused)).await,
            "PAUSED",
            "approved",
        );
        assert_not_sendable(
            &send(&t, family, &seed.token, &body(&rejected)).await,
            "REJECTED",
            "approved",
        );
        assert_not_sendable(
            &send(&t, family, &seed.token, &body(&inactive)).await,
            "APPROVED",
            "deactivated",
        );
    }
    assert_nothing_created(&t, &seed, "50755667788").await;
}

// ---------------------------------------------------------------------------------------------
// Row 7: channel not connected.
// ---------------------------------------------------------------------------------------------

both_databases!(row7_a_disconnected_channel_is_400);
async fn row7_a_disconnected_channel_is_400() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let (status, v) = t
        .admin(
            "PATCH",
            &format!("/v1/admin/channels/{}", seed.channel_id),
            Some(json!({"status": "disconnected"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let expected = envelope(
        400,
        json!({"value": "disconnected", "key": "Channel", "label": "channel.status"}),
        "The channel associated to the template is not configured yet, please contact the support team",
        json!(["channel.status"]),
        "Bad format",
    );
    for family in FAMILIES {
        let r = send(&t, family, &seed.token, &send_body(&seed, "50755667788")).await;
        assert_reply(&r, StatusCode::BAD_REQUEST, &expected);
        // Row 7 comes before row 8: missing params on a disconnected channel is still row 7.
        let body = json!({"templateId": seed.template_id, "phoneNumber": "50755667788"});
        assert_reply(
            &send(&t, family, &seed.token, &body).await,
            StatusCode::BAD_REQUEST,
            &expected,
        );
    }
    assert_eq!(written(&t).await, (0, 0, 0, 0));

    let (status, v) = t
        .admin(
            "PATCH",
            &format!("/v1/admin/channels/{}", seed.channel_id),
            Some(json!({"status": "connected"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_nothing_created(&t, &seed, "50755667788").await;
}

// ---------------------------------------------------------------------------------------------
// Row 8: missing params, or values WhatsApp refuses.
// ---------------------------------------------------------------------------------------------

fn missing_params(names: &[&str], detail: &[String]) -> Value {
    json!({"code": 400, "body": {
        "context": {"key": "Body", "label": "body.params"},
        "message": format!("Missing params:[{}] ", names.join(",")),
        "path": ["body.params"],
        "type": "Bad format",
        "detail": detail,
    }})
}

both_databases!(row8_missing_or_refused_params_are_400_with_their_names);
async fn row8_missing_or_refused_params_are_400_with_their_names() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let is_missing = |n: &str| format!("params.{n} is missing");
    let newline = "params.name contains a newline, which WhatsApp does not accept".to_string();
    let tab = "params.order contains a tab, which WhatsApp does not accept".to_string();
    let spaces =
        "params.name contains more than 4 consecutive spaces, which WhatsApp does not accept"
            .to_string();
    let cases: Vec<(Option<Value>, Vec<&str>, Vec<String>)> = vec![
        (
            None,
            vec!["name", "order"],
            vec![is_missing("name"), is_missing("order")],
        ),
        (
            Some(json!({})),
            vec!["name", "order"],
            vec![is_missing("name"), is_missing("order")],
        ),
        (
            Some(json!({"name": "Ana"})),
            vec!["order"],
            vec![is_missing("order")],
        ),
        (
            // Params not in the template do not stand in for missing ones.
            Some(json!({"order": "A-1", "nombre": "Ana"})),
            vec!["name"],
            vec![is_missing("name")],
        ),
        (
            Some(json!({"name": "", "order": "A-1"})),
            vec!["name"],
            vec!["params.name is empty".to_string()],
        ),
        (
            Some(json!({"name": "Ana\nMaría", "order": "A-1"})),
            vec!["name"],
            vec![newline],
        ),
        (
            Some(json!({"name": "Ana", "order": "A\t1"})),
            vec!["order"],
            vec![tab],
        ),
        (
            Some(json!({"name": "Ana     María", "order": "A-1"})),
            vec!["name"],
            vec![spaces],
        ),
    ];
    for family in FAMILIES {
        for (params, names, detail) in &cases {
            let mut body = json!({"templateId": seed.template_id, "phoneNumber": "50755667788",
                                  "groupName": "NoSuchGroup"});
            if let Some(params) = params {
                body["params"] = params.clone();
            }
            // Row 8 comes before row 9: the unknown group is not reported.
            let r = send(&t, family, &seed.token, &body).await;
            assert_reply(&r, StatusCode::BAD_REQUEST, &missing_params(names, detail));
        }
    }
    assert_eq!(written(&t).await, (0, 0, 0, 0));

    // Four consecutive spaces are accepted.
    let body = json!({"templateId": seed.template_id, "phoneNumber": "50755667788",
                      "params": {"name": "Ana    María", "order": "A-1"}});
    let (_, message_id) = assert_pending(&send(&t, Old, &seed.token, &body).await);
    assert_eq!(
        t.message(&message_id).await["params"]["name"],
        "Ana    María"
    );
}

// ---------------------------------------------------------------------------------------------
// Row 9: unknown group.
// ---------------------------------------------------------------------------------------------

both_databases!(row9_an_unknown_group_is_400);
async fn row9_an_unknown_group_is_400() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let other = t.seed().await;
    t.create(
        "/v1/admin/groups",
        json!({"accountId": other.account_id, "name": "Soporte", "channelIds": [other.channel_id]}),
    )
    .await;
    // "Soporte" exists, but in another account.
    for name in ["NoSuchGroup", "Soporte"] {
        for family in FAMILIES {
            let mut body = send_body(&seed, "50755667788");
            body["groupName"] = json!(name);
            let r = send(&t, family, &seed.token, &body).await;
            assert_reply(
                &r,
                StatusCode::BAD_REQUEST,
                &envelope(
                    400,
                    json!({"key": "Body", "label": "body.groupName", "value": name}),
                    "Group not found",
                    json!(["body.groupName"]),
                    "Bad format",
                ),
            );
        }
    }
    assert_nothing_created(&t, &seed, "50755667788").await;
}

// ---------------------------------------------------------------------------------------------
// Row 10: open conversation → Sent.
// ---------------------------------------------------------------------------------------------

both_databases!(row10_an_open_conversation_gets_sent_on_it);
async fn row10_an_open_conversation_gets_sent_on_it() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    for (family, phone) in [(Old, "50755667701"), (New, "50755667702")] {
        let (conversation_id, first) =
            assert_pending(&send(&t, family, &seed.token, &send_body(&seed, phone)).await);
        t.drain().await;
        assert_eq!(t.conversation(&conversation_id).await["status"], "open");

        let mut body = send_body(&seed, phone);
        body["params"] = json!({"name": "Beto", "order": "B-2"});
        let r = send(&t, family, &seed.token, &body).await;
        let message_id = s(&r.json["data"]["message_id"]);
        assert_reply(
            &r,
            StatusCode::OK,
            &json!({"success": true, "message": "Sent",
                    "data": {"conversation_id": conversation_id, "message_id": message_id}}),
        );
        assert_ne!(message_id, first);
        let m = t.message(&message_id).await;
        assert_eq!(m["conversationId"], conversation_id.as_str());
        assert_eq!(m["status"], "queued");
        assert_eq!(m["params"], json!({"name": "Beto", "order": "B-2"}));
        assert_eq!(t.conversation(&conversation_id).await["status"], "open");
    }
    // Two conversations, four messages; the last "Sent" one durably queued with its job (the
    // second drain delivered the first).
    assert_eq!(written(&t).await, (2, 4, 1, 2));
    t.drain().await;
    assert_eq!(written(&t).await, (2, 4, 0, 2));
}

// ---------------------------------------------------------------------------------------------
// Row 11: pending conversation → 202.
// ---------------------------------------------------------------------------------------------

both_databases!(row11_a_pending_conversation_gets_202_and_nothing_is_sent);
async fn row11_a_pending_conversation_gets_202_and_nothing_is_sent() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let (conversation_id, _) =
        assert_pending(&send(&t, Old, &seed.token, &send_body(&seed, "50755667788")).await);
    for family in FAMILIES {
        let r = send(&t, family, &seed.token, &send_body(&seed, "50755667788")).await;
        assert_reply(
            &r,
            StatusCode::ACCEPTED,
            &json!({"success": false, "conversationId": conversation_id, "status": 202}),
        );
    }
    assert_eq!(
        written(&t).await,
        (1, 1, 1, 1),
        "a 202 must not queue anything"
    );
}

// ---------------------------------------------------------------------------------------------
// Row 12: plan limit.
// ---------------------------------------------------------------------------------------------

both_databases!(row12_the_plan_limit_refuses_new_conversations_only);
async fn row12_the_plan_limit_refuses_new_conversations_only() {
    let t = spawn_app().await;
    let seed = t.seed_with(1, "connected").await;
    let (first, _) =
        assert_pending(&send(&t, Old, &seed.token, &send_body(&seed, "50755667701")).await);

    let r = send(&t, Old, &seed.token, &send_body(&seed, "50755667702")).await;
    assert_reply(
        &r,
        StatusCode::UNAUTHORIZED,
        &json!({"success": false, "message": "The client has reached conversations limit",
                "conversationId": null, "status": 401}),
    );
    let r = send(&t, New, &seed.token, &send_body(&seed, "50755667702")).await;
    assert_reply(
        &r,
        StatusCode::UNAUTHORIZED,
        &envelope(
            401,
            json!({"key": "Account", "label": "account.conversationLimit", "value": 1}),
            "The client has reached conversations limit",
            json!(["account.conversationLimit"]),
            "Unauthorized",
        ),
    );
    assert_eq!(written(&t).await, (1, 1, 1, 1), "a 401 must not write");

    // At the limit, the pending conversation still answers 202 …
    for family in FAMILIES {
        let r = send(&t, family, &seed.token, &send_body(&seed, "50755667701")).await;
        assert_reply(
            &r,
            StatusCode::ACCEPTED,
            &json!({"success": false, "conversationId": first, "status": 202}),
        );
    }
    // … and once open, it still gets "Sent".
    t.drain().await;
    for family in FAMILIES {
        let r = send(&t, family, &seed.token, &send_body(&seed, "50755667701")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json["message"], "Sent");
        assert_eq!(r.json["data"]["conversation_id"], first.as_str());
    }
    assert_eq!(written(&t).await, (1, 3, 2, 1));
}

// ---------------------------------------------------------------------------------------------
// Row 13: new number → Pending.
// ---------------------------------------------------------------------------------------------

both_databases!(row13_a_new_number_gets_pending_with_a_queued_message);
async fn row13_a_new_number_gets_pending_with_a_queued_message() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    for (family, phone) in [(Old, "50755667701"), (New, "50755667702")] {
        let r = send(&t, family, &seed.token, &send_body(&seed, phone)).await;
        let (conversation_id, message_id) = assert_pending(&r);

        let m = t.message(&message_id).await;
        assert_eq!(m["status"], "queued", "{m}");
        assert_eq!(m["conversationId"], conversation_id.as_str());
        assert_eq!(m["templateId"], seed.template_id.as_str());
        assert_eq!(m["params"], json!({"name": "Ana", "order": "A-1"}));
        assert_eq!(m["providerMessageId"], Value::Null);

        let c = t.conversation(&conversation_id).await;
        assert_eq!(c["status"], "pending", "{c}");
        assert_eq!(c["phoneNumber"], phone);
        assert_eq!(c["channelId"], seed.channel_id.as_str());
        assert_eq!(c["clientName"], "Ana");
        assert_eq!(c["assignee"], "bot");
        assert_eq!(c["groupName"], "Ventas");
    }
    assert_eq!(written(&t).await, (2, 2, 2, 2));
}

// ---------------------------------------------------------------------------------------------
// The 500.
// ---------------------------------------------------------------------------------------------

both_databases!(a_database_failure_is_500_with_an_error_id_and_no_internals);
async fn a_database_failure_is_500_with_an_error_id_and_no_internals() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    t.sql("DROP TABLE delivery_jobs").await;

    let mut ids = Vec::new();
    for (family, phone) in [(Old, "50755667701"), (New, "50755667702")] {
        let r = send(&t, family, &seed.token, &send_body(&seed, phone)).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.text);
        let body = if family == Old {
            &r.json
        } else {
            &r.json["body"]
        };
        let id = s(&body["context"]["value"]);
        assert!(id.starts_with("err_"), "{id}");
        let inner = json!({
            "context": {"key": "Api", "label": "api.SendTemplateController", "value": id},
            "message": "Something went wrong while the operation was executed",
            "path": ["api.SendTemplateController"],
            "type": "Internal Server Error"
        });
        let expected = match family {
            Old => inner,
            New => json!({"code": 500, "body": inner}),
        };
        assert_reply(&r, StatusCode::INTERNAL_SERVER_ERROR, &expected);
        let lower = r.text.to_lowercase();
        for internal in [
            "delivery_jobs",
            "no such table",
            "sql",
            "insert",
            "database",
        ] {
            assert!(
                !lower.contains(internal),
                "500 leaks {internal:?}: {}",
                r.text
            );
        }
        ids.push(id);
    }
    assert_ne!(ids[0], ids[1], "each failure has its own error id");

    // The failed transaction left nothing behind.
    for table in ["conversations", "messages"] {
        let n = t.sql_i64(&format!("SELECT count(*) FROM {table}")).await;
        assert_eq!(n, 0, "{table}");
    }
}

// ---------------------------------------------------------------------------------------------
// What the body's optional fields do.
// ---------------------------------------------------------------------------------------------

async fn pending_conversation(t: &TestApp, family: Family, token: &str, body: Value) -> Value {
    let (conversation_id, _) = assert_pending(&send(t, family, token, &body).await);
    t.conversation(&conversation_id).await
}

both_databases!(client_name_defaults_to_the_number_and_the_new_family_joins_first_and_last_name);
async fn client_name_defaults_to_the_number_and_the_new_family_joins_first_and_last_name() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let tpl = seed.template_id.as_str();
    let params = json!({"name": "Ana", "order": "A-1"});

    let c = pending_conversation(
        &t,
        New,
        &seed.token,
        json!({"templateId": tpl, "phoneNumber": "50755667701", "firstName": "Ana",
               "lastName": "Pérez", "params": params}),
    )
    .await;
    assert_eq!(c["clientName"], "Ana Pérez", "{c}");

    for family in FAMILIES {
        let phone = if family == Old {
            "50755667702"
        } else {
            "50755667703"
        };
        let c = pending_conversation(
            &t,
            family,
            &seed.token,
            json!({"templateId": tpl, "phoneNumber": phone, "params": params}),
        )
        .await;
        assert_eq!(c["clientName"], phone, "{c}");
    }

    let c = pending_conversation(
        &t,
        Old,
        &seed.token,
        json!({"templateId": tpl, "phoneNumber": "50755667704", "clientName": "Carla Ruiz",
               "params": params}),
    )
    .await;
    assert_eq!(c["clientName"], "Carla Ruiz", "{c}");
}

both_databases!(assign_true_goes_to_an_agent_otherwise_the_bot);
async fn assign_true_goes_to_an_agent_otherwise_the_bot() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let cases = [
        (Old, "50755667701", Some(true), "agent"),
        (New, "50755667702", Some(true), "agent"),
        (Old, "50755667703", Some(false), "bot"),
        (New, "50755667704", None, "bot"),
    ];
    for (family, phone, assign, assignee) in cases {
        let mut body = send_body(&seed, phone);
        if let Some(assign) = assign {
            body["assign"] = json!(assign);
        }
        let c = pending_conversation(&t, family, &seed.token, body).await;
        assert_eq!(c["assignee"], assignee, "{family:?} {assign:?}: {c}");
    }
}

both_databases!(the_default_group_is_the_channels_first_and_group_name_picks_another);
async fn the_default_group_is_the_channels_first_and_group_name_picks_another() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    // Associated after "Ventas" (and sorting before it): not the default.
    t.create(
        "/v1/admin/groups",
        json!({"accountId": seed.account_id, "name": "Soporte", "channelIds": [seed.channel_id]}),
    )
    .await;
    // A group of the account that is not associated with the channel.
    t.create(
        "/v1/admin/groups",
        json!({"accountId": seed.account_id, "name": "Archivo"}),
    )
    .await;

    for (family, phone) in [(Old, "50755667701"), (New, "50755667702")] {
        let c = pending_conversation(&t, family, &seed.token, send_body(&seed, phone)).await;
        assert_eq!(c["groupName"], "Ventas", "{c}");
    }
    for (family, phone, group) in [
        (Old, "50755667703", "Soporte"),
        (New, "50755667704", "Soporte"),
        (Old, "50755667705", "Archivo"),
    ] {
        let mut body = send_body(&seed, phone);
        body["groupName"] = json!(group);
        let c = pending_conversation(&t, family, &seed.token, body).await;
        assert_eq!(c["groupName"], group, "{c}");
    }
}

both_databases!(params_given_as_numbers_or_booleans_are_stored_as_text);
async fn params_given_as_numbers_or_booleans_are_stored_as_text() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    for (family, phone) in [(Old, "50755667701"), (New, "50755667702")] {
        let body = json!({"templateId": seed.template_id, "phoneNumber": phone,
                          "params": {"name": true, "order": 1042}});
        let (_, message_id) = assert_pending(&send(&t, family, &seed.token, &body).await);
        let m = t.message(&message_id).await;
        assert_eq!(m["params"], json!({"name": "true", "order": "1042"}), "{m}");

        t.drain().await;
        assert_eq!(t.message(&message_id).await["status"], "read");
    }
    let body = json!({"templateId": seed.template_id, "phoneNumber": "50755667703",
                      "params": {"name": false, "order": 2.5}});
    let (_, message_id) = assert_pending(&send(&t, New, &seed.token, &body).await);
    assert_eq!(
        t.message(&message_id).await["params"],
        json!({"name": "false", "order": "2.5"})
    );
}

// ---------------------------------------------------------------------------------------------
// Control characters (NUL, escape, …): WhatsApp refuses them; so does plantilla, first.
// ---------------------------------------------------------------------------------------------

both_databases!(control_characters_in_names_and_params_are_400_and_store_nothing);
async fn control_characters_in_names_and_params_are_400_and_store_nothing() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let params = json!({"name": "Ana", "order": "A-1"});
    // A contact name: row 3's shapes, naming the field.
    for (family, key, value) in [
        (Old, "clientName", "Ana\u{0}"),
        (New, "clientName", "Ana\u{1b}[31m"),
        (New, "firstName", "Ana\u{7}"),
        (New, "lastName", "Pérez\u{0}"),
    ] {
        let mut body = json!({"templateId": seed.template_id, "phoneNumber": "50755667788",
                              "params": params});
        body[key] = json!(value);
        let r = send(&t, family, &seed.token, &body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{key}: {}", r.text);
        let detail = format!(
            "{key} contains a control character (U+{:04X}), which WhatsApp does not accept",
            u32::from(value.chars().find(|c| c.is_control()).unwrap())
        );
        let label = format!("body.{key}");
        let expected = match family {
            Old => {
                json!({"success": false, "message": "No hay datos para enviar", "detail": detail})
            }
            New => envelope(
                400,
                json!({"key": "Body", "label": label}),
                &detail,
                json!([label]),
                "Bad format",
            ),
        };
        assert_reply(&r, StatusCode::BAD_REQUEST, &expected);
    }
    // A param's value: like a newline (row 8), whether the template uses it or not.
    for family in FAMILIES {
        let body = json!({"templateId": seed.template_id, "phoneNumber": "50755667788",
                          "params": {"name": "Ana\u{0}", "order": "A-1"}});
        let r = send(&t, family, &seed.token, &body).await;
        assert_reply(
            &r,
            StatusCode::BAD_REQUEST,
            &missing_params(
                &["name"],
                &["params.name contains a control character (U+0000), which WhatsApp does not accept".into()],
            ),
        );
        let body = json!({"templateId": seed.template_id, "phoneNumber": "50755667788",
                          "params": {"name": "Ana", "order": "A-1", "nota": "x\u{0}y"}});
        let r = send(&t, family, &seed.token, &body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert_eq!(r.json["code"], 400, "{}", r.text);
        assert_eq!(
            r.json["body"]["path"],
            json!(["body.params.nota"]),
            "{}",
            r.text
        );
        assert_eq!(
            r.json["body"]["message"],
            "nota contains a control character (U+0000), which WhatsApp does not accept"
        );
    }
    assert_nothing_created(&t, &seed, "50755667788").await;
}
