// A restart on the same database keeps conversations, messages and tokens, and delivers what
// was queued before it.

use crate::common;

use common::*;
use reqwest::StatusCode;
use serde_json::json;

both_databases!(a_restart_keeps_conversations_messages_and_tokens);
async fn a_restart_keeps_conversations_messages_and_tokens() {
    let t = spawn_app().await;
    let seed = t.seed().await;

    // 50755667701: an open conversation.
    let r = t
        .send_old(&seed.token, send_body(&seed, "50755667701"))
        .await;
    assert_eq!(r.json["message"], "Pending", "{}", r.text);
    let open = s(&r.json["data"]["conversation_id"]);
    t.drain().await;
    assert_eq!(t.conversation(&open).await["status"], "open");

    // 50755667702: a pending conversation whose message is still queued.
    let r = t
        .send_new(&seed.token, send_body(&seed, "50755667702"))
        .await;
    assert_eq!(r.json["message"], "Pending", "{}", r.text);
    let pending = s(&r.json["data"]["conversation_id"]);
    let queued = s(&r.json["data"]["message_id"]);
    assert_eq!(t.message(&queued).await["status"], "queued");

    let t = t.restart().await;

    // The token still names the channel, the template is still there.
    let r = t
        .call(
            "GET",
            &format!("/templates/{}", seed.template_id),
            Some(&seed.token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // The open conversation still gets "Sent" …
    let r = t
        .send_old(&seed.token, send_body(&seed, "50755667701"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["message"], "Sent");
    assert_eq!(r.json["data"]["conversation_id"], open.as_str());
    let sent_after = s(&r.json["data"]["message_id"]);

    // … the pending one still answers 202, and its message is still queued.
    for path in ["/api/Template/SendMessage", "/templates"] {
        let body = send_body(&seed, "50755667702").to_string();
        let r = t.call("POST", path, Some(&seed.token), Some(&body)).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
        assert_eq!(
            r.json,
            json!({"success": false, "conversationId": pending, "status": 202})
        );
    }
    let m = t.message(&queued).await;
    assert_eq!(m["status"], "queued", "{m}");
    assert_eq!(m["params"], json!({"name": "Ana", "order": "A-1"}));
    assert_eq!(t.conversation(&pending).await["status"], "pending");

    // The dispatcher of the new process delivers what was queued before the restart.
    t.drain().await;
    let m = t.message(&queued).await;
    assert_eq!(m["status"], "read", "{m}");
    assert_eq!(m["attempts"], 1);
    assert_eq!(t.conversation(&pending).await["status"], "open");
    assert_eq!(t.message(&sent_after).await["status"], "read");

    // And the once-pending number now gets "Sent".
    let r = t
        .send_new(&seed.token, send_body(&seed, "50755667702"))
        .await;
    assert_eq!(r.json["message"], "Sent", "{}", r.text);
    assert_eq!(r.json["data"]["conversation_id"], pending.as_str());
}

both_databases!(a_rotated_token_and_the_plan_usage_survive_a_restart);
async fn a_rotated_token_and_the_plan_usage_survive_a_restart() {
    let t = spawn_app().await;
    let seed = t.seed_with(1, "connected").await;
    let r = t
        .send_old(&seed.token, send_body(&seed, "50755667701"))
        .await;
    assert_eq!(r.json["message"], "Pending", "{}", r.text);
    let (status, v) = t
        .admin(
            "POST",
            &format!("/v1/admin/channels/{}/rotate-token", seed.channel_id),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let token = s(&v["publicToken"]);

    let t = t.restart().await;

    let r = t
        .send_old(&seed.token, send_body(&seed, "50755667702"))
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "the old token stays revoked: {}",
        r.text
    );
    // The month's one conversation is still counted.
    let r = t.send_old(&token, send_body(&seed, "50755667702")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    assert_eq!(
        r.json["message"],
        "The client has reached conversations limit"
    );
}
