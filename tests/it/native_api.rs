// The native API (`/v1`): authentication, sends and their problem types, idempotency, bulk
// sends, message status and lists, conversations and templates.

use crate::common;

use std::time::Duration;

use common::*;
use fake_graph::{Action, FakeGraph, FakeGraphConfig, Rule};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Native {
    t: TestApp,
    seed: Seed,
}

async fn native() -> Native {
    let t = spawn_app().await;
    let seed = t.seed().await;
    Native { t, seed }
}

impl Native {
    async fn post(
        &self,
        path: &str,
        token: &str,
        key: Option<&str>,
        body: Value,
    ) -> (StatusCode, Value, String) {
        let mut req = self
            .t
            .client
            .post(format!("{}{path}", self.t.base))
            .bearer_auth(token)
            .json(&body);
        if let Some(key) = key {
            req = req.header("Idempotency-Key", key);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, r.json().await.unwrap_or(Value::Null), ct)
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let r = self
            .t
            .client
            .get(format!("{}{path}", self.t.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    fn body(&self, to: &str) -> Value {
        json!({"to": to, "templateId": self.seed.template_id, "params": {"name": "Ana", "order": "A-1"}})
    }

    async fn api_key(&self) -> String {
        let key = self
            .t
            .create(
                &format!("/v1/admin/accounts/{}/api-keys", self.seed.account_id),
                json!({"name": "crm"}),
            )
            .await;
        s(&key["key"])
    }
}

fn assert_problem(status: StatusCode, body: &Value, ct: &str, expected: StatusCode, kind: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(ct, "application/problem+json", "{body}");
    assert_eq!(body["type"], format!("/problems/{kind}"), "{body}");
    assert_eq!(body["status"], expected.as_u16());
    assert!(
        body["title"].is_string() && !s(&body["detail"]).is_empty(),
        "{body}"
    );
}

both_databases!(a_send_is_accepted_with_the_message_and_its_conversation);
async fn a_send_is_accepted_with_the_message_and_its_conversation() {
    let n = native().await;
    let (status, body, _) = n
        .post("/v1/messages", &n.seed.token, None, n.body("50755667701"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = s(&body["id"]);
    assert_eq!(
        body,
        json!({"id": id, "status": "queued", "scheduledFor": null, "channelId": n.seed.channel_id, "to": "50755667701",
               "conversation": {"id": body["conversation"]["id"], "status": "pending"}})
    );
    n.t.drain().await;
    let (status, m) = n.get(&format!("/v1/messages/{id}"), &n.seed.token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(m["status"], "read");
    for step in ["queued", "sent", "delivered", "read"] {
        assert!(m["statusTimes"][step].is_string(), "{m}");
    }
    // The next send to the number goes on the open conversation.
    let (_, body, _) = n
        .post("/v1/messages", &n.seed.token, None, n.body("50755667701"))
        .await;
    assert_eq!(body["conversation"]["status"], "open");
}

both_databases!(template_pages_stop_at_a_million_and_header_types_are_the_documents);
/// What openapi.json states, the server holds to: `/v1/templates` pages go up to 1,000,000 like
/// the compatible lists (any u32 used to pass); a header's `type` is one of the document's
/// values (an unknown one used to pass a preview); null is absent for a send's values.
async fn template_pages_stop_at_a_million_and_header_types_are_the_documents() {
    let n = native().await;
    let token = n.seed.token.clone();
    let (status, body) = n.get("/v1/templates?page=1000000", &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["page"], 1_000_000);
    for page in ["1000001", "4294967295", "0", ""] {
        let (status, body) = n.get(&format!("/v1/templates?page={page}"), &token).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "page={page}: {body}");
        assert_eq!(body["errors"][0]["field"], "page", "{body}");
    }
    let doc = plantilla::http::openapi::document();
    let page = doc["paths"]["/v1/templates"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "page")
        .unwrap()["schema"]
        .clone();
    assert_eq!(
        (page["minimum"].clone(), page["maximum"].clone()),
        (json!(1), json!(1_000_000))
    );

    let preview = format!("/v1/templates/{}/preview", n.seed.template_id);
    let (status, body, ct) = n
        .post(&preview, &token, None, json!({"header": {"type": "AAA"}}))
        .await;
    assert_problem(status, &body, &ct, StatusCode::BAD_REQUEST, "validation");
    assert_eq!(body["errors"][0]["field"], "header.type", "{body}");
    let mut send = n.body("50755667799");
    send["header"] = json!({"type": "pdf"});
    let (status, body, ct) = n.post("/v1/messages", &token, None, send).await;
    assert_problem(status, &body, &ct, StatusCode::BAD_REQUEST, "validation");
    assert_eq!(body["errors"][0]["field"], "header.type", "{body}");
    for field in ["link", "id"] {
        let (status, body, ct) = n
            .post(&preview, &token, None, json!({"header": {field: ""}}))
            .await;
        assert_problem(status, &body, &ct, StatusCode::BAD_REQUEST, "validation");
        assert_eq!(
            body["errors"][0]["field"],
            format!("header.{field}"),
            "{body}"
        );
        let schema = &doc["components"]["schemas"]["SendHeader"]["properties"][field];
        assert_eq!(schema["minLength"], 1, "{schema}");
    }
    let types = &doc["components"]["schemas"]["SendHeader"]["properties"]["type"]["enum"];
    assert!(
        !types.as_array().unwrap().contains(&json!("AAA")),
        "{types}"
    );
    for ty in ["image", "VIDEO"] {
        assert!(types.as_array().unwrap().contains(&json!(ty)), "{types}");
        let (status, body, _) = n
            .post(
                &preview,
                &token,
                None,
                json!({"header": {"type": ty}, "params": null}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{ty}: {body}");
    }
}

both_databases!(templates_can_be_named_by_name_and_language);
async fn templates_can_be_named_by_name_and_language() {
    let n = native().await;
    let body = json!({"to": "50755667701", "templateName": "order_update", "language": "es",
                      "params": {"name": "Ana", "order": "A-1"}});
    let (status, body, _) = n.post("/v1/messages", &n.seed.token, None, body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let bad = json!({"to": "50755667702", "templateName": "order_update", "language": "en",
                     "params": {"name": "Ana", "order": "A-1"}});
    let (status, body, ct) = n.post("/v1/messages", &n.seed.token, None, bad).await;
    assert_problem(
        status,
        &body,
        &ct,
        StatusCode::UNPROCESSABLE_ENTITY,
        "template-not-found",
    );
}

both_databases!(every_refusal_is_a_problem_with_a_stable_type);
async fn every_refusal_is_a_problem_with_a_stable_type() {
    let n = native().await;
    let token = n.seed.token.clone();
    // Authentication.
    let r =
        n.t.client
            .post(format!("{}/v1/messages", n.t.base))
            .json(&n.body("50755667701"))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (status, body, ct) = n
        .post("/v1/messages", "pk_nope", None, n.body("50755667701"))
        .await;
    assert_problem(status, &body, &ct, StatusCode::UNAUTHORIZED, "unauthorized");

    // Validation names every failing field.
    let (status, body, ct) = n
        .post(
            "/v1/messages",
            &token,
            None,
            json!({"to": "+50755667701", "params": [1], "assign": "yes"}),
        )
        .await;
    assert_problem(status, &body, &ct, StatusCode::BAD_REQUEST, "validation");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for f in ["templateId", "to", "params", "assign"] {
        assert!(fields.contains(&f), "{f} in {fields:?}");
    }

    // Missing params.
    let (status, body, ct) = n
        .post("/v1/messages", &token, None, json!({"to": "50755667701", "templateId": n.seed.template_id, "params": {"name": "a\nb"}}))
        .await;
    assert_problem(
        status,
        &body,
        &ct,
        StatusCode::UNPROCESSABLE_ENTITY,
        "missing-params",
    );
    assert_eq!(body["errors"][0]["field"], "params.name");
    assert_eq!(body["errors"][1]["field"], "params.order");

    // Unknown group.
    let mut b = n.body("50755667701");
    b["groupName"] = json!("Nope");
    let (status, body, ct) = n.post("/v1/messages", &token, None, b).await;
    assert_problem(
        status,
        &body,
        &ct,
        StatusCode::UNPROCESSABLE_ENTITY,
        "group-not-found",
    );

    // Pending conversation: 409 naming it.
    let (_, first, _) = n
        .post("/v1/messages", &token, None, n.body("50755667701"))
        .await;
    let (status, body, ct) = n
        .post("/v1/messages", &token, None, n.body("50755667701"))
        .await;
    assert_problem(
        status,
        &body,
        &ct,
        StatusCode::CONFLICT,
        "conversation-pending",
    );
    assert_eq!(body["conversationId"], first["conversation"]["id"]);

    // Channel not connected.
    n.t.admin(
        "PATCH",
        &format!("/v1/admin/channels/{}", n.seed.channel_id),
        Some(json!({"status": "disconnected"})),
    )
    .await;
    let (status, body, ct) = n
        .post("/v1/messages", &token, None, n.body("50755667702"))
        .await;
    assert_problem(
        status,
        &body,
        &ct,
        StatusCode::CONFLICT,
        "channel-not-connected",
    );
}

both_databases!(the_plan_limit_is_402);
async fn the_plan_limit_is_402() {
    let t = spawn_app().await;
    let seed = t.seed_with(1, "connected").await;
    let n = Native { t, seed };
    let (status, _, _) = n
        .post("/v1/messages", &n.seed.token, None, n.body("50755667701"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, body, ct) = n
        .post("/v1/messages", &n.seed.token, None, n.body("50755667702"))
        .await;
    assert_problem(
        status,
        &body,
        &ct,
        StatusCode::PAYMENT_REQUIRED,
        "conversation-limit",
    );
    assert_eq!(body["conversationLimit"], 1);
}

both_databases!(api_keys_work_account_wide_and_name_their_channel);
async fn api_keys_work_account_wide_and_name_their_channel() {
    let n = native().await;
    let key = n.api_key().await;
    assert!(key.starts_with("ak_"));
    let (status, body, ct) = n
        .post("/v1/messages", &key, None, n.body("50755667701"))
        .await;
    assert_problem(status, &body, &ct, StatusCode::BAD_REQUEST, "validation");
    assert_eq!(body["errors"][0]["field"], "channelId");
    let mut b = n.body("50755667701");
    b["channelId"] = json!(n.seed.channel_id);
    let (status, body, _) = n.post("/v1/messages", &key, None, b).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let message_id = s(&body["id"]);
    let (status, m) = n.get(&format!("/v1/messages/{message_id}"), &key).await;
    assert_eq!((status, &m["id"]), (StatusCode::OK, &json!(message_id)));
    // A channel token cannot send through another channel.
    let mut b = n.body("50755667702");
    b["channelId"] = json!("ch_other");
    let (status, body, _) = n.post("/v1/messages", &n.seed.token, None, b).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Another account's key sees nothing of this account.
    let other =
        n.t.create("/v1/admin/accounts", json!({"name": "Other"}))
            .await;
    let other_key =
        n.t.create(
            &format!("/v1/admin/accounts/{}/api-keys", s(&other["id"])),
            json!({}),
        )
        .await;
    let (status, _) = n
        .get(&format!("/v1/messages/{message_id}"), &s(&other_key["key"]))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, list) = n.get("/v1/messages", &s(&other_key["key"])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["data"], json!([]));
}

both_databases!(the_same_idempotency_key_and_body_replays_the_first_answer);
async fn the_same_idempotency_key_and_body_replays_the_first_answer() {
    let n = native().await;
    let (s1, b1, _) = n
        .post(
            "/v1/messages",
            &n.seed.token,
            Some("order-A-1"),
            n.body("50755667701"),
        )
        .await;
    assert_eq!(s1, StatusCode::ACCEPTED, "{b1}");
    let (s2, b2, _) = n
        .post(
            "/v1/messages",
            &n.seed.token,
            Some("order-A-1"),
            n.body("50755667701"),
        )
        .await;
    assert_eq!(
        (s2, &b2),
        (StatusCode::ACCEPTED, &b1),
        "the first response, not a 409"
    );
    assert_eq!(n.t.sql_i64("SELECT count(*) FROM messages").await, 1);

    let (status, body, ct) = n
        .post(
            "/v1/messages",
            &n.seed.token,
            Some("order-A-1"),
            n.body("50755667702"),
        )
        .await;
    assert_problem(
        status,
        &body,
        &ct,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-reused",
    );
    assert_eq!(n.t.sql_i64("SELECT count(*) FROM messages").await, 1);

    let (status, body, ct) = n
        .post(
            "/v1/messages",
            &n.seed.token,
            Some(""),
            n.body("50755667702"),
        )
        .await;
    assert_problem(
        status,
        &body,
        &ct,
        StatusCode::BAD_REQUEST,
        "idempotency-key-invalid",
    );
}

both_databases!(
    concurrent_duplicates_create_exactly_one_message,
    flavor = "multi_thread",
    worker_threads = 4
);
async fn concurrent_duplicates_create_exactly_one_message() {
    let n = std::sync::Arc::new(native().await);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let n = n.clone();
        tasks.spawn(async move {
            let _ = i;
            n.post(
                "/v1/messages",
                &n.seed.token,
                Some("dup-key"),
                n.body("50755667701"),
            )
            .await
        });
    }
    let mut bodies = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let (status, body, _) = r.unwrap();
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        bodies.push(body);
    }
    assert!(
        bodies.iter().all(|b| b == &bodies[0]),
        "every duplicate got the first answer"
    );
    assert_eq!(n.t.sql_i64("SELECT count(*) FROM messages").await, 1);
}

both_databases!(a_batch_of_ten_thousand_is_accepted_in_order_with_per_recipient_results);
async fn a_batch_of_ten_thousand_is_accepted_in_order_with_per_recipient_results() {
    let t = spawn_app().await;
    let seed = t.seed_with(100_000, "connected").await;
    let n = Native { t, seed };
    let mut recipients: Vec<Value> = (0..10_000)
        .map(|i| json!({"to": format!("5075{i:07}"), "params": {"name": format!("N{i}"), "order": i}}))
        .collect();
    recipients[10] = json!({"to": "+5075"});
    recipients[20] = json!({"to": "50755550020", "params": {"name": "x"}});
    recipients[30] = json!({"to": "50700000001", "params": {"name": "a", "order": "b"}});
    recipients[31] = json!({"to": "50700000001", "params": {"name": "a", "order": "b"}});
    let body = json!({"templateId": n.seed.template_id, "recipients": recipients});
    let (status, batch, _) = n
        .post(
            "/v1/messages/batch",
            &n.seed.token,
            Some("campaign-1"),
            body.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{}", batch["results"][0]);
    let results = batch["results"].as_array().unwrap();
    assert_eq!(results.len(), 10_000);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["index"], i, "in request order");
    }
    assert_eq!(results[10]["status"], "rejected");
    assert_eq!(results[10]["problem"]["type"], "/problems/validation");
    assert_eq!(
        results[10]["problem"]["errors"][0]["field"],
        "recipients[10].to"
    );
    assert_eq!(results[20]["problem"]["type"], "/problems/missing-params");
    assert_eq!(results[30]["status"], "accepted");
    assert_eq!(
        results[31]["problem"]["type"],
        "/problems/conversation-pending"
    );
    assert_eq!(batch["accepted"], 9_997);
    assert_eq!(batch["rejected"], 3);
    assert_eq!(n.t.sql_i64("SELECT count(*) FROM messages").await, 9_997);

    // Retrying the batch with its key changes nothing and answers the same.
    let (status, again, _) = n
        .post(
            "/v1/messages/batch",
            &n.seed.token,
            Some("campaign-1"),
            body,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(again["batchId"], batch["batchId"]);
    assert_eq!(again["results"][0], batch["results"][0]);
    assert_eq!(again["accepted"], 9_997);
    assert_eq!(n.t.sql_i64("SELECT count(*) FROM messages").await, 9_997);

    let (status, summary) = n
        .get(
            &format!("/v1/batches/{}", s(&batch["batchId"])),
            &n.seed.token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["total"], 10_000);
    assert_eq!(summary["byStatus"]["queued"], 9_997);
    let (_, page) = n
        .get(
            &format!("/v1/messages?batchId={}&limit=5", s(&batch["batchId"])),
            &n.seed.token,
        )
        .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 5);
}

both_databases!(messages_list_by_filters_with_cursor_paging);
async fn messages_list_by_filters_with_cursor_paging() {
    let n = native().await;
    for i in 0..7 {
        n.post(
            "/v1/messages",
            &n.seed.token,
            None,
            n.body(&format!("5075566770{i}")),
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/messages?limit=3&cursor={c}"),
            None => "/v1/messages?limit=3".to_string(),
        };
        let (status, page) = n.get(&path, &n.seed.token).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for m in page["data"].as_array().unwrap() {
            seen.push(s(&m["id"]));
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7, "every message once across pages");
    let mut sorted = seen.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), 7);
    let (_, page) = n
        .get("/v1/messages?phoneNumber=50755667703", &n.seed.token)
        .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    let (_, page) = n.get("/v1/messages?status=read", &n.seed.token).await;
    assert_eq!(page["data"], json!([]));
    let (status, _) = n.get("/v1/messages?status=bogus", &n.seed.token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = n.get("/v1/messages?from=yesterday", &n.seed.token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, page) = n
        .get(
            "/v1/messages?from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z",
            &n.seed.token,
        )
        .await;
    assert_eq!(page["data"], json!([]));
}

both_databases!(conversations_and_templates_are_listed_read_and_closed);
async fn conversations_and_templates_are_listed_read_and_closed() {
    let n = native().await;
    let (_, sent, _) = n
        .post("/v1/messages", &n.seed.token, None, n.body("50755667701"))
        .await;
    let conversation = s(&sent["conversation"]["id"]);
    let (_, list) = n
        .get("/v1/conversations?status=pending", &n.seed.token)
        .await;
    assert_eq!(list["data"][0]["id"], conversation.as_str());
    let (status, c) = n
        .get(&format!("/v1/conversations/{conversation}"), &n.seed.token)
        .await;
    assert_eq!((status, &c["status"]), (StatusCode::OK, &json!("pending")));
    let (status, closed, _) = n
        .post(
            &format!("/v1/conversations/{conversation}/close"),
            &n.seed.token,
            None,
            json!({}),
        )
        .await;
    assert_eq!(
        (status, &closed["status"]),
        (StatusCode::OK, &json!("closed"))
    );
    let (status, _) = n.get("/v1/conversations/conv_nope", &n.seed.token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, templates) = n.get("/v1/templates", &n.seed.token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(templates["total"], 1);
    let (status, t) = n
        .get(
            &format!("/v1/templates/{}", n.seed.template_id),
            &n.seed.token,
        )
        .await;
    assert_eq!(
        (status, &t["params"]),
        (StatusCode::OK, &json!(["name", "order"]))
    );
    let (status, body, ct) = n
        .post("/v1/templates/sync", &n.seed.token, None, json!({}))
        .await;
    assert_problem(status, &body, &ct, StatusCode::BAD_REQUEST, "validation");
}

both_databases!(closing_and_syncing_check_an_idempotency_key_and_are_safe_to_repeat);
async fn closing_and_syncing_check_an_idempotency_key_and_are_safe_to_repeat() {
    let n = native().await;
    let (_, sent, _) = n
        .post("/v1/messages", &n.seed.token, None, n.body("50755667701"))
        .await;
    let conversation = s(&sent["conversation"]["id"]);
    let close = format!("/v1/conversations/{conversation}/close");
    // A malformed key is refused before anything is closed.
    let (status, body, ct) = n
        .post(&close, &n.seed.token, Some("has space"), json!({}))
        .await;
    assert_problem(
        status,
        &body,
        &ct,
        StatusCode::BAD_REQUEST,
        "idempotency-key-invalid",
    );
    let (_, c) = n
        .get(&format!("/v1/conversations/{conversation}"), &n.seed.token)
        .await;
    assert_eq!(c["status"], "pending", "{c}");
    // Closing is idempotent by nature: the same answer with the key, again, and without it.
    let (status, first, _) = n
        .post(&close, &n.seed.token, Some("close-1"), json!({}))
        .await;
    assert_eq!(
        (status, &first["status"]),
        (StatusCode::OK, &json!("closed"))
    );
    for key in [Some("close-1"), Some("close-2"), None] {
        let (status, again, _) = n.post(&close, &n.seed.token, key, json!({})).await;
        assert_eq!((status, &again), (StatusCode::OK, &first), "{key:?}");
    }
    // The key is checked, not stored.
    assert_eq!(
        n.t.sql_i64("SELECT count(*) FROM idempotency_keys").await,
        0
    );

    // Sync: a malformed key is refused before the channel is looked at; a good one changes
    // nothing (this sandbox channel cannot sync).
    let (status, body, ct) = n
        .post("/v1/templates/sync", &n.seed.token, Some(""), json!({}))
        .await;
    assert_problem(
        status,
        &body,
        &ct,
        StatusCode::BAD_REQUEST,
        "idempotency-key-invalid",
    );
    let (status, body, ct) = n
        .post(
            "/v1/templates/sync",
            &n.seed.token,
            Some("sync-1"),
            json!({}),
        )
        .await;
    assert_problem(status, &body, &ct, StatusCode::BAD_REQUEST, "validation");
}

both_databases!(a_message_being_retried_says_so_with_its_next_attempt);
async fn a_message_being_retried_says_so_with_its_next_attempt() {
    let fake = FakeGraph::start(FakeGraphConfig::default().with_phone("1000001", "TOKEN1")).await;
    fake.add_rule(Rule::always(Action::server_error()));
    let base = fake.base_url().to_string();
    let t = spawn_app_with(|c| {
        c.graph_base_url = base;
        c.retry_initial_ms = 60_000;
        c.retry_max_ms = 120_000;
    })
    .await;
    let account = t
        .create("/v1/admin/accounts", json!({"name": "Acme"}))
        .await;
    let channel = t
        .create(
            "/v1/admin/channels",
            json!({"accountId": account["id"], "name": "C", "provider": "cloud",
                                             "phoneNumberId": "1000001", "accessToken": "TOKEN1"}),
        )
        .await;
    let template = t
        .create(
            "/v1/admin/templates",
            json!({"accountId": account["id"], "name": "hola", "language": "es",
                                              "appId": "1", "message": "Hola"}),
        )
        .await;
    let token = s(&channel["publicToken"]);
    let r = t
        .client
        .post(format!("{}/v1/messages", t.base))
        .bearer_auth(&token)
        .json(&json!({"to": "50755667701", "templateId": template["id"]}))
        .send()
        .await
        .unwrap();
    let id = s(&r.json::<Value>().await.unwrap()["id"]);
    t.server
        .as_ref()
        .unwrap()
        .dispatcher
        .pass_and_settle()
        .await
        .unwrap();
    let m: Value = t
        .client
        .get(format!("{}/v1/messages/{id}", t.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["status"], "queued", "{m}");
    assert_eq!(m["error"]["code"], 131000);
    assert_eq!(m["error"]["willRetry"], true);
    let next = chrono::DateTime::parse_from_rfc3339(m["error"]["nextAttemptAt"].as_str().unwrap())
        .unwrap();
    assert!(
        next > chrono::Utc::now() + chrono::Duration::seconds(20),
        "{next}"
    );
    let _ = Duration::ZERO;
}

both_databases!(
    control_characters_in_a_client_name_or_a_param_are_refused_before_anything_is_stored
);
async fn control_characters_in_a_client_name_or_a_param_are_refused_before_anything_is_stored() {
    let n = native().await;
    let token = n.seed.token.clone();
    // A single send: 400 naming the field.
    let mut b = n.body("50755667701");
    b["clientName"] = json!("Ana\u{0}");
    let (status, body, ct) = n.post("/v1/messages", &token, None, b).await;
    assert_problem(status, &body, &ct, StatusCode::BAD_REQUEST, "validation");
    assert_eq!(body["errors"][0]["field"], "clientName", "{body}");
    assert!(
        s(&body["errors"][0]["message"]).contains("control character"),
        "{body}"
    );

    // A param the template uses: like a newline (422, missing-params naming it).
    let mut b = n.body("50755667701");
    b["params"]["name"] = json!("Ana\u{1b}[2J");
    let (status, body, ct) = n.post("/v1/messages", &token, None, b).await;
    assert_problem(
        status,
        &body,
        &ct,
        StatusCode::UNPROCESSABLE_ENTITY,
        "missing-params",
    );
    assert_eq!(body["errors"][0]["field"], "params.name", "{body}");
    // A value the template does not use is stored with the message: refused too.
    let mut b = n.body("50755667701");
    b["params"]["nota"] = json!("x\u{0}");
    let (status, body, _) = n.post("/v1/messages", &token, None, b).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("nota"), "{body}");

    // A batch: each recipient on its own, naming the recipient's field.
    let recipients = json!([
        {"to": "50755667702", "clientName": "Luis\u{7}", "params": {"name": "Luis", "order": "1"}},
        {"to": "50755667703", "params": {"name": "Eva", "order": "2\u{0}"}},
        {"to": "50755667704", "clientName": "Ana", "params": {"name": "Ana", "order": "3"}},
    ]);
    let body = json!({"templateId": n.seed.template_id, "recipients": recipients});
    let (status, batch, _) = n
        .post("/v1/messages/batch", &token, Some("ctl-1"), body)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{batch}");
    let results = &batch["results"];
    assert_eq!(results[0]["status"], "rejected", "{batch}");
    assert_eq!(
        results[0]["problem"]["errors"][0]["field"],
        "recipients[0].clientName"
    );
    assert_eq!(results[1]["status"], "rejected", "{batch}");
    assert_eq!(results[1]["problem"]["type"], "/problems/missing-params");
    assert_eq!(results[2]["status"], "accepted", "{batch}");
    assert_eq!(n.t.sql_i64("SELECT count(*) FROM messages").await, 1);
    assert_eq!(
        n.t.sql_i64("SELECT count(*) FROM contacts WHERE client_name <> 'Ana'")
            .await,
        0
    );
}
