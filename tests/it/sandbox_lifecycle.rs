// The sandbox provider takes messages through sent, delivered and read, and its statuses
// drive conversations, through the same path real webhooks use.

use crate::common;

use common::*;
use plantilla::app::Event;
use plantilla::domain::status::{ConversationStatus, MessageStatus};
use reqwest::StatusCode;

both_databases!(a_new_number_goes_pending_then_open_and_the_message_reaches_read);
async fn a_new_number_goes_pending_then_open_and_the_message_reaches_read() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let mut events = t.app().events.subscribe();

    let r = t
        .send_old(&seed.token, send_body(&seed, "50755667788"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["message"], "Pending");
    let conversation_id = s(&r.json["data"]["conversation_id"]);
    let message_id = s(&r.json["data"]["message_id"]);

    let m = t.message(&message_id).await;
    assert_eq!(m["status"], "queued");
    assert_eq!(t.conversation(&conversation_id).await["status"], "pending");

    t.drain().await;

    let m = t.message(&message_id).await;
    assert_eq!(m["status"], "read", "{m}");
    assert!(s(&m["providerMessageId"]).starts_with("wamid."));
    assert_eq!(m["attempts"], 1);
    for step in ["queued", "sending", "sent", "delivered", "read"] {
        assert!(
            m["statusTimes"][step].is_string(),
            "{step} time missing: {m}"
        );
    }
    assert!(m["statusTimes"]["failed"].is_null());
    let c = t.conversation(&conversation_id).await;
    assert_eq!(c["status"], "open", "{c}");
    assert!(c["openedAt"].is_string());

    // The events were published in order, once each.
    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        seen.push(e);
    }
    let statuses: Vec<_> = seen
        .iter()
        .filter_map(|e| match e {
            Event::MessageStatus {
                message_id: id,
                status,
            } if *id == message_id => Some(*status),
            _ => None,
        })
        .collect();
    assert_eq!(
        statuses,
        vec![
            MessageStatus::Sent,
            MessageStatus::Delivered,
            MessageStatus::Read
        ]
    );
    assert!(seen.contains(&Event::ConversationStatus {
        conversation_id: conversation_id.clone(),
        status: ConversationStatus::Open
    }));

    // The next send to the number goes on the open conversation: "Sent".
    let r = t
        .send_old(&seed.token, send_body(&seed, "50755667788"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["message"], "Sent");
    assert_eq!(r.json["data"]["conversation_id"], conversation_id.as_str());
}

both_databases!(an_undeliverable_number_fails_with_131026_and_closes_its_conversation);
async fn an_undeliverable_number_fails_with_131026_and_closes_its_conversation() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let r = t
        .send_old(&seed.token, send_body(&seed, "50755660000"))
        .await;
    assert_eq!(r.json["message"], "Pending", "{}", r.text);
    let conversation_id = s(&r.json["data"]["conversation_id"]);
    let message_id = s(&r.json["data"]["message_id"]);

    t.drain().await;

    let m = t.message(&message_id).await;
    assert_eq!(m["status"], "failed", "{m}");
    assert_eq!(m["error"]["code"], 131026);
    assert_eq!(m["error"]["title"], "Message undeliverable");
    assert!(m["statusTimes"]["failed"].is_string());
    let c = t.conversation(&conversation_id).await;
    assert_eq!(c["status"], "closed");
    assert_eq!(c["closeReason"], "first_message_failed");

    // The next send to that number starts a new pending conversation.
    let r = t
        .send_old(&seed.token, send_body(&seed, "50755660000"))
        .await;
    assert_eq!(r.json["message"], "Pending", "{}", r.text);
    assert_ne!(s(&r.json["data"]["conversation_id"]), conversation_id);
}

both_databases!(the_background_dispatcher_delivers_without_being_driven);
async fn the_background_dispatcher_delivers_without_being_driven() {
    let mut t = spawn_app_dispatching().await;
    let seed = t.seed().await;
    let mut events = t.app().events.subscribe();
    let r = t
        .send_old(&seed.token, send_body(&seed, "50755667788"))
        .await;
    let message_id = s(&r.json["data"]["message_id"]);
    // Wait on the event stream (a hook, not a sleep), bounded so a bug fails instead of hangs.
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            if let Event::MessageStatus {
                message_id: id,
                status: MessageStatus::Read,
            } = events.recv().await.unwrap()
                && id == message_id
            {
                break;
            }
        }
    })
    .await
    .expect("message reached read");
    assert_eq!(t.message(&message_id).await["status"], "read");
    t.server.take().unwrap().stop().await.unwrap();
}

both_databases!(simulated_statuses_survive_a_restart);
async fn simulated_statuses_survive_a_restart() {
    // The first process accepts the sends and dies before any simulated status is due.
    let t = spawn_app_with(|c| c.sandbox_status_delay_ms = 3_600_000).await;
    let seed = t.seed().await;
    let mut messages = Vec::new();
    for phone in ["50755667701", "50755667702", "50755660000"] {
        let r = t.send_old(&seed.token, send_body(&seed, phone)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        messages.push(s(&r.json["data"]["message_id"]));
    }
    // Sent to the sandbox (each has its wamid); its statuses are only timers now.
    t.server
        .as_ref()
        .unwrap()
        .dispatcher
        .pass_and_settle()
        .await
        .unwrap();
    for id in &messages {
        let m = t.message(id).await;
        assert_eq!(m["status"], "sending", "{m}");
        assert!(m["providerMessageId"].is_string(), "{m}");
    }
    // One of them was further along: delivered.
    t.sql(&format!(
        "UPDATE messages SET status = 'delivered', sent_at = updated_at, delivered_at = updated_at
          WHERE id = '{}'",
        messages[1]
    ))
    .await;

    // A new process (its delay long past for these messages) finishes every simulation.
    let t = t.restart_with(|c| c.sandbox_status_delay_ms = 0).await;
    t.drain().await;
    let read = t.message(&messages[0]).await;
    assert_eq!(read["status"], "read", "{read}");
    for step in ["sent", "delivered", "read"] {
        assert!(read["statusTimes"][step].is_string(), "{step}: {read}");
    }
    assert_eq!(t.message(&messages[1]).await["status"], "read");
    let failed = t.message(&messages[2]).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error"]["code"], 131026, "{failed}");
    assert_eq!(read["attempts"], 1, "resumed, not sent again");
}

both_databases!(a_channel_held_by_its_rate_neither_holds_up_another_nor_is_forgotten);
async fn a_channel_held_by_its_rate_neither_holds_up_another_nor_is_forgotten() {
    // The dispatcher skips the pass a send's wake-up would cause when the send's channel is
    // held by its pacer; a send for another channel still gets its pass at once, and the
    // held channel's message goes when its pacer allows.
    use std::time::{Duration, Instant};
    let mut t = spawn_app_dispatching().await;
    let slow = t.seed().await;
    let fast = t.seed().await;
    let (status, body) = t
        .admin(
            "PATCH",
            &format!("/v1/admin/channels/{}", slow.channel_id),
            Some(serde_json::json!({"messagesPerSecond": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut events = t.app().events.subscribe();
    let send = async |seed: &Seed, phone: &str| {
        let r = t.send_old(&seed.token, send_body(seed, phone)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        s(&r.json["data"]["message_id"])
    };
    // The first of the slow channel goes at once and uses its second.
    let first = send(&slow, "50755667701").await;
    sent_times(&mut events, std::slice::from_ref(&first)).await;
    let started = Instant::now();
    let waiting = send(&slow, "50755667702").await;
    let other = send(&fast, "50755667703").await;
    let at = sent_times(&mut events, &[waiting.clone(), other.clone()]).await;
    let other_after = at[&other] - started;
    let waiting_after = at[&waiting] - started;
    assert!(
        other_after < Duration::from_millis(500),
        "the other channel's message waited {other_after:?}"
    );
    assert!(
        at[&other] < at[&waiting],
        "the held channel's message went first ({waiting_after:?} < {other_after:?})"
    );
    assert!(
        waiting_after < Duration::from_secs(3),
        "the held channel's message waited {waiting_after:?}"
    );
    t.server.take().unwrap().stop().await.unwrap();
}

/// When each of `ids` was seen `sent` on `events` (each waited for at most 10 s).
async fn sent_times(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    ids: &[String],
) -> std::collections::HashMap<String, std::time::Instant> {
    let mut at = std::collections::HashMap::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while at.len() < ids.len() {
            if let Event::MessageStatus {
                message_id,
                status: MessageStatus::Sent,
            } = events.recv().await.unwrap()
                && ids.contains(&message_id)
            {
                at.entry(message_id).or_insert_with(std::time::Instant::now);
            }
        }
    })
    .await
    .expect("every message sent");
    at
}
