// Concurrency of the send decision: one pending conversation per number, and the plan limit,
// under concurrent requests; and the limit's period, the current calendar month (UTC).

use crate::common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::task::JoinSet;

/// `(status, body)` of each of `bodies` sent at once, alternating the two families.
async fn send_concurrently(
    t: &TestApp,
    token: &str,
    bodies: Vec<Value>,
) -> Vec<(StatusCode, Value)> {
    let mut tasks = JoinSet::new();
    for (i, body) in bodies.into_iter().enumerate() {
        let client = t.client.clone();
        let path = if i % 2 == 0 {
            "/api/Template/SendMessage"
        } else {
            "/templates"
        };
        let url = format!("{}{path}", t.base);
        let token = token.to_string();
        tasks.spawn(async move {
            let res = client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .expect("send");
            let status = res.status();
            (status, res.json::<Value>().await.expect("json body"))
        });
    }
    let mut replies = Vec::new();
    while let Some(r) = tasks.join_next().await {
        replies.push(r.expect("task"));
    }
    replies
}

fn current_period() -> String {
    chrono::Utc::now().format("%Y-%m").to_string()
}

both_databases!(
    thirty_concurrent_sends_to_one_new_number_give_one_pending_and_29_accepted,
    flavor = "multi_thread",
    worker_threads = 4
);
async fn thirty_concurrent_sends_to_one_new_number_give_one_pending_and_29_accepted() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let bodies = (0..30).map(|_| send_body(&seed, "50755667788")).collect();
    let replies = send_concurrently(&t, &seed.token, bodies).await;

    let pending: Vec<&Value> = replies
        .iter()
        .filter(|(status, body)| *status == StatusCode::OK && body["message"] == "Pending")
        .map(|(_, body)| body)
        .collect();
    assert_eq!(pending.len(), 1, "{replies:?}");
    let conversation_id = s(&pending[0]["data"]["conversation_id"]);
    let accepted: Vec<&Value> = replies
        .iter()
        .filter(|(status, _)| *status == StatusCode::ACCEPTED)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(accepted.len(), 29, "{replies:?}");
    for body in accepted {
        assert_eq!(
            body,
            &json!({"success": false, "conversationId": conversation_id, "status": 202})
        );
    }

    assert_eq!(t.sql_i64("SELECT count(*) FROM conversations").await, 1);
    assert_eq!(t.sql_i64("SELECT count(*) FROM messages").await, 1);
    assert_eq!(t.sql_i64("SELECT count(*) FROM delivery_jobs").await, 1);
    assert_eq!(
        t.sql_i64("SELECT CAST(coalesce(sum(used), 0) AS BIGINT) FROM conversation_usage")
            .await,
        1
    );
}

both_databases!(
    the_plan_limit_holds_under_concurrent_sends_to_new_numbers,
    flavor = "multi_thread",
    worker_threads = 4
);
async fn the_plan_limit_holds_under_concurrent_sends_to_new_numbers() {
    let t = spawn_app().await;
    let seed = t.seed_with(5, "connected").await;
    let bodies = (0..20)
        .map(|i| send_body(&seed, &format!("507556677{i:02}")))
        .collect();
    let replies = send_concurrently(&t, &seed.token, bodies).await;

    let pending = replies
        .iter()
        .filter(|(status, body)| *status == StatusCode::OK && body["message"] == "Pending")
        .count();
    let refused = replies
        .iter()
        .filter(|(status, body)| {
            *status == StatusCode::UNAUTHORIZED
                && (body["message"] == "The client has reached conversations limit"
                    || body["body"]["message"] == "The client has reached conversations limit")
        })
        .count();
    assert_eq!((pending, refused), (5, 15), "{replies:?}");

    assert_eq!(t.sql_i64("SELECT count(*) FROM conversations").await, 5);
    assert_eq!(t.sql_i64("SELECT count(*) FROM messages").await, 5);
    assert_eq!(
        t.sql_i64("SELECT CAST(coalesce(sum(used), 0) AS BIGINT) FROM conversation_usage")
            .await,
        5
    );
}

both_databases!(
    the_limit_counts_the_current_calendar_month_only,
    flavor = "multi_thread",
    worker_threads = 4
);
async fn the_limit_counts_the_current_calendar_month_only() {
    let t = spawn_app().await;
    let seed = t.seed_with(2, "connected").await;
    let send = |phone: &'static str| {
        let t = &t;
        let seed = &seed;
        async move { t.send_old(&seed.token, send_body(seed, phone)).await }
    };
    for phone in ["50755667701", "50755667702"] {
        assert_eq!(send(phone).await.json["message"], "Pending");
    }
    let r = send("50755667703").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);

    // Move this month's conversations and usage to an earlier month (January 2000, UTC).
    let january_2000_ms = 947_937_600_000_i64; // 2000-01-15T12:00:00Z
    let moved = t
        .sql(&format!(
            "UPDATE conversation_usage SET period = '2000-01' WHERE period = '{}'",
            current_period()
        ))
        .await;
    assert_eq!(moved, 1);
    // Close them too: otherwise they are still the numbers' active conversations.
    t.sql(&format!(
        "UPDATE conversations SET created_at = {january_2000_ms}, last_activity_at = {january_2000_ms},
            status = 'closed', closed_at = {january_2000_ms}, close_reason = 'expired'"
    ))
    .await;

    // This month starts from zero: two new conversations again, then the limit.
    for phone in ["50755667703", "50755667701"] {
        let r = send(phone).await;
        assert_eq!(r.json["message"], "Pending", "{}", r.text);
    }
    let r = send("50755667704").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);

    let used = t
        .sql_pairs("SELECT period, CAST(used AS BIGINT) FROM conversation_usage ORDER BY period")
        .await;
    assert_eq!(
        used,
        vec![("2000-01".to_string(), 2), (current_period(), 2)]
    );
}
