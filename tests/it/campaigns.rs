// Campaigns (issue 17): scheduled sends, cancel, batch pause and resume, quiet hours in the
// recipient's time zone and the channel's messaging limit, driven by the app's test clock
// (no sleeps). Each test runs on SQLite and on PostgreSQL.

use crate::common;

use std::sync::Arc;
use std::time::Instant;

use common::*;
use plantilla::app::App;
use plantilla::provider::sandbox::Sandbox;
use plantilla::workers::dispatch::Dispatcher;
use reqwest::StatusCode;
use serde_json::{Value, json};

const HOUR: i64 = 3_600_000;

struct Campaign {
    t: TestApp,
    seed: Seed,
}

async fn campaign() -> Campaign {
    let t = spawn_app().await;
    let seed = t.seed_with(1_000_000, "connected").await;
    Campaign { t, seed }
}

fn rfc3339(ms: i64) -> String {
    plantilla::format_ms(ms)
}

fn ms(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis()
}

impl Campaign {
    fn app(&self) -> &App {
        self.t.app()
    }

    fn now(&self) -> i64 {
        self.app().clock.now_ms()
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .t
            .client
            .post(format!("{}{path}", self.t.base))
            .bearer_auth(&self.seed.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> Value {
        let r = self
            .t
            .client
            .get(format!("{}{path}", self.t.base))
            .bearer_auth(&self.seed.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        r.json().await.unwrap()
    }

    /// Sends the seeded (UTILITY) template to `to`, with `extra` fields; the message id.
    async fn send(&self, to: &str, extra: Value) -> String {
        let mut body = json!({"templateId": self.seed.template_id, "to": to,
                              "params": {"name": "Ana", "order": "A-1"}});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, v) = self.post("/v1/messages", body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{v}");
        s(&v["id"])
    }

    async fn message(&self, id: &str) -> Value {
        self.get(&format!("/v1/messages/{id}")).await
    }

    async fn status(&self, id: &str) -> String {
        s(&self.message(id).await["status"])
    }

    async fn marketing_template(&self) -> String {
        let v = self
            .t
            .create(
                "/v1/admin/templates",
                json!({"accountId": self.seed.account_id, "name": "promo", "language": "es",
                       "category": "MARKETING", "status": "APPROVED", "appId": "app_promo",
                       "message": "Hola {{name}}, 20% hoy"}),
            )
            .await;
        s(&v["id"])
    }

    async fn pass(&self) {
        self.t
            .server
            .as_ref()
            .unwrap()
            .dispatcher
            .pass_and_settle()
            .await
            .unwrap();
    }

    async fn attempts_of(&self, id: &str) -> i64 {
        self.t
            .sql_i64(&format!(
                "SELECT count(*) FROM delivery_attempts WHERE message_id = '{id}'"
            ))
            .await
    }
}

fn handed_over(status: &str) -> bool {
    matches!(status, "sent" | "delivered" | "read")
}

both_databases!(
    a_scheduled_send_waits_for_its_time_and_goes_once_across_a_restart_and_two_instances
);
async fn a_scheduled_send_waits_for_its_time_and_goes_once_across_a_restart_and_two_instances() {
    let c = campaign().await;
    let at = c.now() + HOUR;
    let (status, v) = c
        .post(
            "/v1/messages",
            json!({"templateId": c.seed.template_id, "to": "50760000001",
                   "params": {"name": "Ana", "order": "A-1"}, "sendAt": rfc3339(at)}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["status"], "scheduled");
    assert_eq!(v["scheduledFor"], rfc3339(at));
    let id = s(&v["id"]);

    // Stored at once and visible everywhere.
    let m = c.message(&id).await;
    assert_eq!(m["status"], "scheduled");
    assert_eq!(m["scheduledFor"], rfc3339(at));
    let list = c.get("/v1/messages?status=scheduled").await;
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert!(
        c.app().store.queues().await.unwrap().is_empty(),
        "a send not due yet is not a backlog"
    );

    // Not sent early, even a second before its time.
    c.t.drain().await;
    c.app().clock.advance(HOUR - 60_000);
    c.t.drain().await;
    assert_eq!(c.status(&id).await, "scheduled");
    assert_eq!(c.attempts_of(&id).await, 0);

    // Across a restart, with two instances racing for it once its time has come.
    let Campaign { t, seed } = c;
    let t = t.restart().await;
    let c = Campaign { t, seed };
    c.app().clock.set(at + 1_000);
    let other = if on_postgres() {
        App::open(c.t.config.clone()).await.unwrap()
    } else {
        c.app().clone()
    }
    .with_clock(c.app().clock.clone());
    let second = Arc::new(Dispatcher::new(
        other.clone(),
        Arc::new(Sandbox::new(other.clone(), std::time::Duration::ZERO)),
        other.graph.clone(),
    ));
    let first = c.t.server.as_ref().unwrap().dispatcher.clone();
    let (a, b) = tokio::join!(first.pass_and_settle(), second.pass_and_settle());
    a.unwrap();
    b.unwrap();
    c.t.drain().await;
    second.drain().await.unwrap();
    let m = c.message(&id).await;
    assert!(handed_over(m["status"].as_str().unwrap()), "{m}");
    assert_eq!(c.attempts_of(&id).await, 1, "sent exactly once");
    assert_eq!(m["attempts"], 1);
}

both_databases!(send_at_in_the_past_means_now_and_beyond_the_horizon_is_refused);
async fn send_at_in_the_past_means_now_and_beyond_the_horizon_is_refused() {
    let c = campaign().await;
    let id = c
        .send("50760000002", json!({"sendAt": "2020-01-01T00:00:00Z"}))
        .await;
    assert_eq!(c.status(&id).await, "queued");
    c.t.drain().await;
    assert!(handed_over(&c.status(&id).await));

    let before = c.t.sql_i64("SELECT count(*) FROM messages").await;
    let far = rfc3339(c.now() + 36 * 24 * HOUR);
    let (status, p) = c
        .post(
            "/v1/messages",
            json!({"templateId": c.seed.template_id, "to": "50760000003",
                   "params": {"name": "Ana", "order": "A-1"}, "sendAt": far}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(p["type"], "/problems/send-at-beyond-horizon");
    assert_eq!(p["errors"][0]["field"], "sendAt");
    for bad in [
        json!("tomorrow 9:00"),
        json!(12),
        json!("2026-13-01T00:00:00Z"),
    ] {
        let (status, p) = c
            .post(
                "/v1/messages",
                json!({"templateId": c.seed.template_id, "to": "50760000003",
                       "params": {"name": "Ana", "order": "A-1"}, "sendAt": bad}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{p}");
        assert_eq!(p["errors"][0]["field"], "sendAt", "{p}");
    }
    assert_eq!(
        c.t.sql_i64("SELECT count(*) FROM messages").await,
        before,
        "nothing stored"
    );
}

both_databases!(a_cancelled_message_is_final_closes_its_conversation_and_queues_its_event);
async fn a_cancelled_message_is_final_closes_its_conversation_and_queues_its_event() {
    let c = campaign().await;
    let at = rfc3339(c.now() + HOUR);
    let id = c
        .send(
            "50760000010",
            json!({"sendAt": at, "callbackUrl": "http://127.0.0.1:9/hook"}),
        )
        .await;
    let (status, v) = c
        .post(&format!("/v1/messages/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "cancelled");
    assert!(v["statusTimes"]["cancelled"].is_string(), "{v}");
    let conversation = c.t.conversation(&s(&v["conversationId"])).await;
    assert_eq!(conversation["status"], "closed");
    assert_eq!(conversation["closeReason"], "first_message_cancelled");
    assert_eq!(
        c.t.sql_i64(&format!(
            "SELECT count(*) FROM callback_outbox
              WHERE message_id = '{id}' AND event_type = 'message.cancelled'"
        ))
        .await,
        1
    );

    // Final: a second cancel says so, and its time never sends it.
    let (status, p) = c
        .post(&format!("/v1/messages/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{p}");
    assert_eq!(p["type"], "/problems/message-not-cancellable");
    assert_eq!(p["messageStatus"], "cancelled");
    c.app().clock.advance(2 * HOUR);
    c.t.drain().await;
    assert_eq!(c.status(&id).await, "cancelled");
    assert_eq!(c.attempts_of(&id).await, 0);

    // The number is free for a new send; one already handed over cannot be taken back.
    let sent = c.send("50760000010", json!({})).await;
    c.t.drain().await;
    let (status, p) = c
        .post(&format!("/v1/messages/{sent}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{p}");
    assert!(handed_over(p["messageStatus"].as_str().unwrap()), "{p}");
    let (status, _) = c.post("/v1/messages/msg_nope/cancel", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

both_databases!(cancel_racing_the_dispatcher_ends_each_message_sent_or_cancelled_never_both);
async fn cancel_racing_the_dispatcher_ends_each_message_sent_or_cancelled_never_both() {
    let c = campaign().await;
    let dispatcher = c.t.server.as_ref().unwrap().dispatcher.clone();
    let started = Instant::now();
    let (mut sent, mut cancelled) = (0, 0);
    for round in 0..200 {
        let id = c.send(&format!("5076100{:04}", round + 1), json!({})).await;
        let path = format!("/v1/messages/{id}/cancel");
        let (pass, (status, body)) =
            tokio::join!(dispatcher.pass_and_settle(), c.post(&path, json!({})));
        pass.unwrap();
        let m = c.message(&id).await;
        let attempts = c.attempts_of(&id).await;
        match status {
            StatusCode::OK => {
                cancelled += 1;
                assert_eq!(m["status"], "cancelled", "{m}");
                assert!(m["providerMessageId"].is_null(), "{m}");
                assert_eq!(attempts, 0, "a cancelled message was never attempted: {m}");
            }
            StatusCode::CONFLICT => {
                sent += 1;
                assert_ne!(body["messageStatus"], "cancelled", "{body}");
                assert_ne!(m["status"], "cancelled", "{m}");
                assert!(m["statusTimes"]["cancelled"].is_null(), "{m}");
                assert_eq!(attempts, 1, "{m}");
            }
            other => panic!("cancel answered {other}: {body}"),
        }
    }
    c.t.drain().await;
    // Settled: nothing cancelled was sent afterwards, and everything else went.
    assert_eq!(
        c.t.sql_i64("SELECT count(*) FROM messages WHERE status = 'cancelled'")
            .await,
        cancelled
    );
    assert_eq!(
        c.t.sql_i64(
            "SELECT count(*) FROM messages WHERE status = 'cancelled'
               AND (provider_message_id IS NOT NULL OR sending_at IS NOT NULL)"
        )
        .await,
        0
    );
    assert_eq!(
        c.t.sql_i64("SELECT count(*) FROM messages WHERE status IN ('sent', 'delivered', 'read')")
            .await,
        sent
    );
    eprintln!(
        "cancel race: 200 rounds in {:.2} s: {sent} sent, {cancelled} cancelled, none both",
        started.elapsed().as_secs_f64()
    );
}

both_databases!(a_batch_of_5000_pauses_resumes_and_reports_its_progress);
async fn a_batch_of_5000_pauses_resumes_and_reports_its_progress() {
    let c = campaign().await;
    let (status, _) =
        c.t.admin(
            "PATCH",
            &format!("/v1/admin/channels/{}", c.seed.channel_id),
            Some(json!({"messagesPerSecond": 10_000})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let recipients: Vec<Value> = (0..5_000)
        .map(|i| json!({"to": format!("5076200{:04}", i + 1), "params": {"name": "N", "order": i}}))
        .collect();
    let started = Instant::now();
    let (status, batch) = c
        .post(
            "/v1/messages/batch",
            json!({"templateId": c.seed.template_id, "recipients": recipients}),
        )
        .await;
    let accept_secs = started.elapsed().as_secs_f64();
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(batch["accepted"], 5_000);
    let id = s(&batch["batchId"]);

    // One pass takes a first slice; the pause stops everything not yet claimed.
    c.pass().await;
    let started = Instant::now();
    let (status, report) = c.post(&format!("/v1/batches/{id}/pause"), json!({})).await;
    let pause_ms = started.elapsed().as_millis();
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["paused"], true);
    assert!(report["estimatedCompletionAt"].is_null());
    c.t.drain().await;
    let report = c.get(&format!("/v1/batches/{id}")).await;
    let queued = report["byStatus"]["queued"].as_i64().unwrap();
    let first_slice = 5_000 - queued;
    assert!(
        first_slice > 0 && first_slice <= 100,
        "only the first claim went: {report}"
    );
    assert_eq!(report["progress"]["done"], first_slice);
    assert_eq!(report["progress"]["waiting"], queued);
    assert_eq!(
        report["byTemplate"][&c.seed.template_id]["queued"], queued,
        "{report}"
    );

    // Resumed, the rest goes.
    let started = Instant::now();
    let (status, report) = c.post(&format!("/v1/batches/{id}/resume"), json!({})).await;
    let resume_ms = started.elapsed().as_millis();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["paused"], false);
    assert!(report["estimatedCompletionAt"].is_string(), "{report}");
    let started = Instant::now();
    c.t.drain().await;
    let drain_secs = started.elapsed().as_secs_f64();
    let report = c.get(&format!("/v1/batches/{id}")).await;
    assert_eq!(report["progress"]["done"], 5_000, "{report}");
    assert_eq!(report["progress"]["percent"], 100.0);
    assert!(report["byStatus"]["queued"].is_null(), "{report}");
    eprintln!(
        "batch of 5,000: accepted in {accept_secs:.2} s, paused in {pause_ms} ms after a first \
         slice of {first_slice}, resumed in {resume_ms} ms, the rest dispatched in {drain_secs:.2} s"
    );
}

both_databases!(a_scheduled_batch_is_counted_and_cancelled_at_once);
async fn a_scheduled_batch_is_counted_and_cancelled_at_once() {
    let c = campaign().await;
    let at = c.now() + HOUR;
    let recipients: Vec<Value> = (0..10)
        .map(|i| {
            let mut r =
                json!({"to": format!("5076300{:04}", i + 1), "params": {"name": "N", "order": i}});
            if i == 0 {
                // A recipient's own time wins over the batch's.
                r["sendAt"] = json!(rfc3339(at + HOUR));
            }
            r
        })
        .collect();
    let (status, batch) = c
        .post(
            "/v1/messages/batch",
            json!({"templateId": c.seed.template_id, "recipients": recipients,
                   "sendAt": rfc3339(at)}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{batch}");
    assert_eq!(batch["results"][0]["scheduledFor"], rfc3339(at + HOUR));
    assert_eq!(batch["results"][1]["scheduledFor"], rfc3339(at));
    let id = s(&batch["batchId"]);
    let report = c.get(&format!("/v1/batches/{id}")).await;
    assert_eq!(report["byStatus"]["scheduled"], 10, "{report}");
    assert_eq!(
        report["estimatedCompletionAt"].as_str().map(ms),
        Some(at + HOUR),
        "not before its last scheduled message: {report}"
    );
    let (status, report) = c.post(&format!("/v1/batches/{id}/cancel"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["byStatus"]["cancelled"], 10, "{report}");
    c.app().clock.advance(3 * HOUR);
    c.t.drain().await;
    let report = c.get(&format!("/v1/batches/{id}")).await;
    assert_eq!(report["byStatus"]["cancelled"], 10, "{report}");
    let (status, _) = c.post("/v1/batches/bat_nope/pause", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

both_databases!(marketing_at_night_in_the_recipients_zone_is_held_until_morning_utility_is_not);
async fn marketing_at_night_in_the_recipients_zone_is_held_until_morning_utility_is_not() {
    let c = campaign().await;
    let promo = c.marketing_template().await;
    let path = format!("/v1/admin/accounts/{}", c.seed.account_id);
    // Bad input names its field and changes nothing.
    for (bad, field) in [
        (
            json!({"start": "25:00", "end": "08:00"}),
            "quietHours.start",
        ),
        (json!({"start": "21:00"}), "quietHours.end"),
        (json!("21-08"), "quietHours"),
    ] {
        let (status, p) =
            c.t.admin("PATCH", &path, Some(json!({"quietHours": bad})))
                .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{p}");
        assert!(p.to_string().contains(field), "{p}");
    }
    let (_, account) = c.t.admin("GET", &path, None).await;
    assert!(account["quietHours"].is_null());
    let (status, account) =
        c.t.admin(
            "PATCH",
            &path,
            Some(json!({"quietHours": {"start": "21:00", "end": "08:00"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{account}");
    assert_eq!(account["quietHours"]["start"], "21:00");

    // 23:30 in New York (+1 212, EDT) is 03:30Z; 08:00 there is 12:00Z.
    c.app().clock.set(ms("2026-07-02T03:30:00Z"));
    let (status, v) = c
        .post(
            "/v1/messages",
            json!({"templateId": promo, "to": "12125550100", "params": {"name": "Ana"}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    let marketing = s(&v["id"]);
    let utility = c.send("12125550101", json!({})).await;
    // Another zone: Buenos Aires (+54 9 11, UTC-3) is at 00:30.
    let (_, v) = c
        .post(
            "/v1/messages",
            json!({"templateId": promo, "to": "5491155550100", "params": {"name": "Ana"}}),
        )
        .await;
    let argentina = s(&v["id"]);
    let (_, v) = c
        .post(
            "/v1/messages",
            json!({"templateId": promo, "to": "12125550102", "params": {"name": "Eva"}}),
        )
        .await;
    let taken_back = s(&v["id"]);
    c.t.drain().await;

    let m = c.message(&marketing).await;
    assert_eq!(m["status"], "queued", "{m}");
    assert_eq!(m["heldReason"], "quiet-hours");
    assert_eq!(m["heldUntil"], "2026-07-02T12:00:00.000Z");
    assert_eq!(c.attempts_of(&marketing).await, 0);
    assert!(
        handed_over(&c.status(&utility).await),
        "utility is not held"
    );
    // Buenos Aires is 00:30 (UTC-3): held until 08:00 there, 11:00Z.
    let a = c.message(&argentina).await;
    assert_eq!(a["heldUntil"], "2026-07-02T11:00:00.000Z", "{a}");

    // A cancel takes a held message back as well; the others go when the window ends.
    let held = c.message(&taken_back).await;
    assert_eq!(held["heldReason"], "quiet-hours", "{held}");
    let (status, v) = c
        .post(&format!("/v1/messages/{taken_back}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["heldUntil"].is_null(), "{v}");
    c.app().clock.set(ms("2026-07-02T11:59:00Z"));
    c.t.drain().await;
    assert_eq!(c.status(&marketing).await, "queued");
    assert!(handed_over(&c.status(&argentina).await));
    c.app().clock.set(ms("2026-07-02T12:00:01Z"));
    c.t.drain().await;
    let m = c.message(&marketing).await;
    assert!(handed_over(m["status"].as_str().unwrap()), "{m}");
    assert!(m["heldUntil"].is_null(), "{m}");
    assert_eq!(m["attempts"], 1);
    assert_eq!(c.status(&taken_back).await, "cancelled");
    assert_eq!(c.attempts_of(&taken_back).await, 0);
}

both_databases!(a_messaging_limit_of_250_holds_the_251st_new_recipient_until_the_window_rolls);
async fn a_messaging_limit_of_250_holds_the_251st_new_recipient_until_the_window_rolls() {
    let c = campaign().await;
    let path = format!("/v1/admin/channels/{}", c.seed.channel_id);
    for bad in [json!("250"), json!(0), json!(2.5)] {
        let (status, p) =
            c.t.admin("PATCH", &path, Some(json!({"messagingLimit": bad})))
                .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{p}");
        assert!(p.to_string().contains("messagingLimit"), "{p}");
    }
    let (status, channel) =
        c.t.admin(
            "PATCH",
            &path,
            Some(json!({"messagingLimit": 250, "messagesPerSecond": 10_000})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{channel}");
    assert_eq!(channel["messagingLimit"], 250);

    let start = c.now();
    let recipients: Vec<Value> = (0..251)
        .map(|i| json!({"to": format!("5076400{:04}", i + 1), "params": {"name": "N", "order": i}}))
        .collect();
    let (status, batch) = c
        .post(
            "/v1/messages/batch",
            json!({"templateId": c.seed.template_id, "recipients": recipients}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let id = s(&batch["batchId"]);
    c.t.drain().await;
    let report = c.get(&format!("/v1/batches/{id}")).await;
    assert_eq!(report["held"]["messaging-limit"], 1, "{report}");
    assert_eq!(report["byStatus"]["queued"], 1, "{report}");
    assert_eq!(report["progress"]["done"], 250);
    let eta = ms(report["estimatedCompletionAt"].as_str().unwrap());
    assert!(eta >= start + 24 * HOUR, "{report}");
    let held = s(&batch["results"][250]["messageId"]);
    let m = c.message(&held).await;
    assert_eq!(m["heldReason"], "messaging-limit", "{m}");
    let until = ms(m["heldUntil"].as_str().unwrap());
    assert!(
        until >= start + 24 * HOUR && until < c.now() + 24 * HOUR + 1_000,
        "{m}"
    );

    // A number with an open conversation is not a new one: not held.
    let again = c.send("50764000001", json!({})).await;
    c.t.drain().await;
    let m = c.message(&again).await;
    assert!(handed_over(m["status"].as_str().unwrap()), "{m}");
    assert_eq!(c.status(&held).await, "queued");

    // The window rolls: it goes.
    c.app().clock.set(until + 1_000);
    c.t.drain().await;
    let m = c.message(&held).await;
    assert!(handed_over(m["status"].as_str().unwrap()), "{m}");
    let report = c.get(&format!("/v1/batches/{id}")).await;
    assert!(report["held"].as_object().unwrap().is_empty(), "{report}");
    eprintln!(
        "messaging limit 250: 251 new recipients, 250 sent, the 251st held for {:.1} h",
        (until - start) as f64 / HOUR as f64
    );
}

both_databases!(the_number_health_webhook_sets_the_messaging_limit);
async fn the_number_health_webhook_sets_the_messaging_limit() {
    use hmac::{Hmac, Mac};
    const META_SECRET: &str = "meta-app-secret";
    let t =
        spawn_app_with(|c| c.meta_app_secret = Some(plantilla::config::Secret::new(META_SECRET)))
            .await;
    let seed = t.seed().await;
    let path = format!("/v1/admin/channels/{}", seed.channel_id);
    let (status, _) = t
        .admin("PATCH", &path, Some(json!({"wabaId": "WABA1"})))
        .await;
    assert_eq!(status, StatusCode::OK);
    for (field, value, expected) in [
        (
            "phone_number_quality_update",
            json!({"display_phone_number": "15550001111", "event": "DOWNGRADE",
                   "current_limit": "TIER_250"}),
            json!(250),
        ),
        (
            "account_update",
            json!({"whatsapp_business_manager_messaging_limit": "TIER_UNLIMITED"}),
            Value::Null,
        ),
    ] {
        let payload = json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA1",
            "changes": [{"field": field, "value": value}]}]})
        .to_string();
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(META_SECRET.as_bytes()).unwrap();
        mac.update(payload.as_bytes());
        let r = t
            .client
            .post(format!("{}/webhooks/whatsapp", t.base))
            .header(
                "X-Hub-Signature-256",
                format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
            )
            .header("Content-Type", "application/json")
            .body(payload)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let (_, channel) = t.admin("GET", &path, None).await;
        assert_eq!(channel["messagingLimit"], expected, "{field}: {channel}");
    }
}

both_databases!(a_scheduled_batch_of_5000_is_cancelled_in_one_call);
async fn a_scheduled_batch_of_5000_is_cancelled_in_one_call() {
    let c = campaign().await;
    let recipients: Vec<Value> = (0..5_000)
        .map(|i| json!({"to": format!("5076500{:04}", i + 1), "params": {"name": "N", "order": i}}))
        .collect();
    let (status, batch) = c
        .post(
            "/v1/messages/batch",
            json!({"templateId": c.seed.template_id, "recipients": recipients,
                   "sendAt": rfc3339(c.now() + HOUR)}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let id = s(&batch["batchId"]);
    let started = Instant::now();
    let (status, report) = c.post(&format!("/v1/batches/{id}/cancel"), json!({})).await;
    let cancel_secs = started.elapsed().as_secs_f64();
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["byStatus"]["cancelled"], 5_000, "{report}");
    assert_eq!(
        c.t.sql_i64("SELECT count(*) FROM conversations WHERE status = 'pending'")
            .await,
        0,
        "every conversation they opened is closed"
    );
    c.app().clock.advance(2 * HOUR);
    c.t.drain().await;
    assert_eq!(
        c.t.sql_i64("SELECT count(*) FROM delivery_attempts").await,
        0
    );
    eprintln!("scheduled batch of 5,000 cancelled in {cancel_secs:.2} s");
}
