// Cloud channels against the fake Graph API over real HTTP: payloads, error classes,
// webhooks, template status, template sync, and the crash between send and write-back.

use crate::common;

use std::time::Duration;

use common::*;
use fake_graph::{Action, DEFAULT_WABA_ID, FakeGraph, FakeGraphConfig, FakeTemplate, Rule};
use reqwest::StatusCode;
use serde_json::{Value, json};

const PN: &str = "1000001";
const TOKEN: &str = "EAAG-test-token";
const APP_SECRET: &str = "app-secret-for-tests";
const VERIFY: &str = "verify-me";

struct Cloud {
    t: TestApp,
    fake: FakeGraph,
    seed: Seed,
}

async fn spawn_cloud() -> Cloud {
    spawn_cloud_with(|_| {}).await
}

async fn spawn_cloud_with(adjust: impl FnOnce(&mut plantilla::config::Config)) -> Cloud {
    let fake = FakeGraph::start(
        FakeGraphConfig {
            app_secret: APP_SECRET.into(),
            status_delay: Duration::ZERO,
            ..FakeGraphConfig::default()
        }
        .with_phone(PN, TOKEN)
        .with_template(FakeTemplate::new(
            "order_update",
            "es",
            "Hola {{name}}, tu pedido {{order}} va en camino",
        ))
        .with_template(FakeTemplate::new(
            "appointment",
            "es",
            "Tu cita es el {{1}} a las {{2}}",
        ))
        .with_template(
            FakeTemplate::new(
                "shipping",
                "en_US",
                "Hi {{name}}, your parcel is on its way",
            )
            .with_header("Order {{order}}")
            .with_url_button("Track", "https://track.example/p/{{1}}"),
        ),
    )
    .await;
    let base = fake.base_url().to_string();
    let t = spawn_app_with(|c| {
        c.graph_base_url = base;
        c.meta_app_secret = Some(plantilla::config::Secret::new(APP_SECRET));
        c.meta_verify_token = Some(plantilla::config::Secret::new(VERIFY));
        adjust(c);
    })
    .await;
    fake.set_webhook_url(Some(format!("{}/webhooks/whatsapp", t.base)));
    let seed = seed_cloud(&t).await;
    Cloud { t, fake, seed }
}

async fn seed_cloud(t: &TestApp) -> Seed {
    let template = json!({"name": "order_update", "language": "es", "appId": "1001",
                          "message": "Hola {{name}}, tu pedido {{order}} va en camino"});
    seed_cloud_channel(t, PN, TOKEN, Some(template)).await
}

impl Cloud {
    async fn template(&self, body: Value) -> String {
        let mut body = body;
        body["accountId"] = json!(self.seed.account_id);
        s(&self.t.create("/v1/admin/templates", body).await["id"])
    }

    /// Sends the seeded named template to `phone`; returns (conversation id, message id).
    async fn send(&self, phone: &str) -> (String, String) {
        let r = self
            .t
            .send_old(&self.seed.token, send_body(&self.seed, phone))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        (
            s(&r.json["data"]["conversation_id"]),
            s(&r.json["data"]["message_id"]),
        )
    }

    async fn settle(&self) {
        self.t.drain().await;
        assert!(
            self.fake.wait_webhooks_idle(Duration::from_secs(10)).await,
            "webhooks delivered"
        );
    }

    fn dispatcher(&self) -> &plantilla::workers::dispatch::Dispatcher {
        &self.t.server.as_ref().unwrap().dispatcher
    }
}

both_databases!(named_positional_header_and_url_button_payloads_match_meta);
async fn named_positional_header_and_url_button_payloads_match_meta() {
    let c = spawn_cloud().await;
    let (_, named) = c.send("50755667701").await;
    let positional = c
        .template(
            json!({"name": "appointment", "language": "es", "appId": "1002",
                         "message": "Tu cita es el {{1}} a las {{2}}"}),
        )
        .await;
    let shipping = c
        .template(json!({"name": "shipping", "language": "en_US", "appId": "1003",
                         "header": "Order {{order}}", "message": "Hi {{name}}, your parcel is on its way",
                         "buttons": [{"type": "URL", "text": "Track", "url": "https://track.example/p/{{1}}"}]}))
        .await;
    for (template, phone, params) in [
        (
            &positional,
            "50755667702",
            json!({"1": "lunes", "2": "10:00"}),
        ),
        (
            &shipping,
            "50755667703",
            json!({"name": "Ana", "order": "A-9", "1": "XYZ"}),
        ),
    ] {
        let r =
            c.t.send_old(
                &c.seed.token,
                json!({"templateId": template, "phoneNumber": phone, "params": params}),
            )
            .await;
        assert_eq!(r.json["message"], "Pending", "{}", r.text);
    }
    c.settle().await;

    let sent = c.fake.sent();
    assert_eq!(
        sent.len(),
        3,
        "every send accepted by the fake's checks: {:?}",
        c.fake.requests()
    );
    let by_to = |to: &str| sent.iter().find(|m| m.to == to).unwrap().clone();

    let m = by_to("50755667701");
    assert_eq!(m.template, "order_update");
    assert_eq!(m.language, "es");
    assert_eq!(m.biz_opaque_callback_data.as_deref(), Some(named.as_str()));
    assert_eq!(
        m.components,
        vec![json!({"type": "body", "parameters": [
            {"type": "text", "parameter_name": "name", "text": "Ana"},
            {"type": "text", "parameter_name": "order", "text": "A-1"}]})]
    );

    let m = by_to("50755667702");
    assert_eq!(
        m.components,
        vec![json!({"type": "body", "parameters": [
            {"type": "text", "text": "lunes"}, {"type": "text", "text": "10:00"}]})]
    );

    let m = by_to("50755667703");
    assert_eq!(m.texts("header"), vec!["A-9"]);
    assert_eq!(m.texts("body"), vec!["Ana"]);
    let button = m.components_of("button");
    assert_eq!(button.len(), 1);
    assert_eq!(button[0]["sub_type"], "url");
    assert_eq!(button[0]["index"], "0");
    assert_eq!(button[0]["parameters"][0]["text"], "XYZ");

    // The webhooks took the message to read and kept what Meta said.
    let stored = c.t.message(&named).await;
    assert_eq!(stored["status"], "read", "{stored}");
    assert_eq!(
        stored["providerMessageId"],
        json!(by_to("50755667701").wamid)
    );
    assert_eq!(stored["waId"], "50755667701");
}

both_databases!(a_permanent_error_fails_at_once_with_the_code_kept_and_closes_the_conversation);
async fn a_permanent_error_fails_at_once_with_the_code_kept_and_closes_the_conversation() {
    let c = spawn_cloud().await;
    c.fake.add_rule(Rule::always(Action::error_with_details(
        131047,
        "re-engagement needed",
    )));
    let (conversation, message) = c.send("50755667701").await;
    c.settle().await;
    let m = c.t.message(&message).await;
    assert_eq!(m["status"], "failed", "{m}");
    assert_eq!(m["attempts"], 1);
    assert_eq!(m["error"]["code"], 131047);
    assert!(s(&m["error"]["details"]).contains("re-engagement"), "{m}");
    let conv = c.t.conversation(&conversation).await;
    assert_eq!(conv["status"], "closed");
    assert_eq!(conv["closeReason"], "first_message_failed");
    assert_eq!(c.fake.requests().len(), 1, "no retry of a permanent error");
}

both_databases!(two_server_errors_then_success_end_sent_after_three_attempts);
async fn two_server_errors_then_success_end_sent_after_three_attempts() {
    let c = spawn_cloud().await;
    c.fake.add_rule(Rule::times(2, Action::server_error()));
    let (conversation, message) = c.send("50755667701").await;
    c.settle().await;
    let m = c.t.message(&message).await;
    assert_eq!(m["status"], "read", "{m}");
    assert_eq!(m["attempts"], 3);
    assert!(m["error"].is_null(), "a success clears the last error: {m}");
    assert_eq!(c.fake.requests().len(), 3);
    assert_eq!(c.fake.sent().len(), 1);
    assert_eq!(c.t.conversation(&conversation).await["status"], "open");
}

both_databases!(retries_stop_at_the_configured_maximum_with_the_last_error_kept);
async fn retries_stop_at_the_configured_maximum_with_the_last_error_kept() {
    let c = spawn_cloud_with(|c| c.retry_max_attempts = 3).await;
    c.fake.add_rule(Rule::always(Action::server_error()));
    let (_, message) = c.send("50755667701").await;
    c.settle().await;
    let m = c.t.message(&message).await;
    assert_eq!(m["status"], "failed", "{m}");
    assert_eq!(m["attempts"], 3);
    assert_eq!(m["error"]["code"], 131000);
    assert_eq!(c.fake.requests().len(), 3);
}

both_databases!(a_throughput_error_slows_the_whole_channel);
async fn a_throughput_error_slows_the_whole_channel() {
    let c = spawn_cloud().await;
    c.fake.add_rule(Rule::once(Action::throughput()));
    let (_, message) = c.send("50755667701").await;
    c.settle().await;
    let m = c.t.message(&message).await;
    assert_eq!(m["status"], "read", "{m}");
    assert_eq!(m["attempts"], 2);
    let rate = c.dispatcher().effective_rate(&c.seed.channel_id).unwrap();
    assert!(
        rate < 1000.0,
        "the channel's pace dropped after 130429: {rate}"
    );
}

both_databases!(a_pair_rate_error_delays_only_that_recipient);
async fn a_pair_rate_error_delays_only_that_recipient() {
    let c = spawn_cloud().await;
    c.fake
        .add_rule(Rule::once(Action::pair_rate()).to("50755667701"));
    let (_, slow) = c.send("50755667701").await;
    let (_, other) = c.send("50755667702").await;
    c.settle().await;
    assert_eq!(c.t.message(&slow).await["attempts"], 2);
    assert_eq!(c.t.message(&other).await["attempts"], 1);
    assert_eq!(c.t.message(&other).await["status"], "read");
    let rate = c.dispatcher().effective_rate(&c.seed.channel_id).unwrap();
    assert_eq!(rate, 1000.0, "131056 does not slow the channel");
}

both_databases!(an_expired_token_halts_the_channel_without_failing_messages);
async fn an_expired_token_halts_the_channel_without_failing_messages() {
    let c = spawn_cloud().await;
    c.fake.add_rule(Rule::always(Action::expired_token()));
    let (_, first) = c.send("50755667701").await;
    let (_, second) = c.send("50755667702").await;
    c.settle().await;
    for id in [&first, &second] {
        let m = c.t.message(id).await;
        assert_eq!(m["status"], "queued", "kept queued: {m}");
        assert_eq!(m["attempts"], 0, "a halt spends no attempt: {m}");
        assert_eq!(m["error"]["code"], 190);
    }
    let (_, channel) =
        c.t.admin(
            "GET",
            &format!("/v1/admin/channels/{}", c.seed.channel_id),
            None,
        )
        .await;
    assert_eq!(channel["health"], "halted");
    assert_eq!(channel["healthError"]["code"], 190);
    let calls = c.fake.requests().len();
    assert!(calls <= 2, "a halted channel stops calling Meta: {calls}");

    // The operator installs a working token: the channel resumes and delivers.
    c.fake.clear_rules();
    let (status, channel) =
        c.t.admin(
            "PATCH",
            &format!("/v1/admin/channels/{}", c.seed.channel_id),
            Some(json!({"accessToken": TOKEN})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{channel}");
    assert_eq!(channel["health"], "ok");
    c.settle().await;
    for id in [&first, &second] {
        assert_eq!(c.t.message(id).await["status"], "read");
    }
}

both_databases!(webhook_verification_answers_the_challenge_only_for_the_right_token);
async fn webhook_verification_answers_the_challenge_only_for_the_right_token() {
    let c = spawn_cloud().await;
    let get = |path: String| {
        let client = c.t.client.clone();
        async move {
            let r = client.get(path).send().await.unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    let base = &c.t.base;
    let q = |token: &str| {
        format!("hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444")
    };
    assert_eq!(
        get(format!("{base}/webhooks/whatsapp?{}", q(VERIFY))).await,
        (StatusCode::OK, "1158201444".into())
    );
    assert_eq!(
        get(format!("{base}/webhooks/whatsapp?{}", q("wrong")))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let channel = &c.seed.channel_id;
    assert_eq!(
        get(format!(
            "{base}/webhooks/whatsapp/{channel}?{}",
            q("channel-verify")
        ))
        .await,
        (StatusCode::OK, "1158201444".into())
    );
    assert_eq!(
        get(format!("{base}/webhooks/whatsapp/{channel}?{}", q(VERIFY)))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
}

both_databases!(unsigned_or_tampered_webhooks_are_refused_and_change_nothing);
async fn unsigned_or_tampered_webhooks_are_refused_and_change_nothing() {
    let c = spawn_cloud().await;
    c.fake.hold_webhooks(true);
    let (_, message) = c.send("50755667701").await;
    c.t.drain().await;
    let sent = c.fake.sent().pop().unwrap();
    let payload = c.fake.status_payload(&sent, "read");
    let body = serde_json::to_vec(&payload).unwrap();
    let signature = c.fake.sign(&body);

    let mut tampered = body.clone();
    let at = tampered.iter().position(|b| *b == b'r').unwrap();
    tampered[at] = b'R';
    assert_eq!(
        c.fake.post_webhook_raw(body.clone(), None).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        c.fake
            .post_webhook_raw(body.clone(), Some("sha256=00".into()))
            .await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        c.fake
            .post_webhook_raw(tampered, Some(signature.clone()))
            .await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        c.t.message(&message).await["status"],
        "sending",
        "nothing applied"
    );

    assert_eq!(
        c.fake.post_webhook_raw(body, Some(signature)).await,
        StatusCode::OK
    );
    assert_eq!(c.t.message(&message).await["status"], "read");
}

both_databases!(statuses_never_move_backwards_and_duplicates_are_harmless);
async fn statuses_never_move_backwards_and_duplicates_are_harmless() {
    let c = spawn_cloud().await;
    c.fake.hold_webhooks(true);
    let (conversation, message) = c.send("50755667701").await;
    c.t.drain().await;
    let sent = c.fake.sent().pop().unwrap();
    for status in ["read", "delivered", "read", "sent", "failed"] {
        assert_eq!(
            c.fake
                .post_webhook(&c.fake.status_payload(&sent, status))
                .await,
            StatusCode::OK
        );
    }
    let m = c.t.message(&message).await;
    assert_eq!(m["status"], "read", "{m}");
    assert!(m["error"].is_null());
    for step in ["sent", "delivered", "read"] {
        assert!(
            m["statusTimes"][step].is_string(),
            "{step} kept for the timeline: {m}"
        );
    }
    assert_eq!(c.t.conversation(&conversation).await["status"], "open");
}

both_databases!(a_status_that_arrives_before_the_send_response_is_applied_once);
async fn a_status_that_arrives_before_the_send_response_is_applied_once() {
    let c = spawn_cloud().await;
    c.fake.add_rule(Rule::once(Action::StatusBeforeResponse));
    let (conversation, message) = c.send("50755667701").await;
    c.settle().await;
    let m = c.t.message(&message).await;
    assert_eq!(m["status"], "read", "{m}");
    assert_eq!(m["attempts"], 1);
    assert_eq!(m["providerMessageId"], json!(c.fake.sent()[0].wamid));
    assert_eq!(
        m["waId"], "50755667701",
        "the late response still records wa_id"
    );
    assert_eq!(c.fake.sent().len(), 1);
    assert_eq!(c.t.conversation(&conversation).await["status"], "open");
}

both_databases!(a_failed_status_closes_the_pending_conversation);
async fn a_failed_status_closes_the_pending_conversation() {
    let c = spawn_cloud().await;
    c.fake.add_rule(Rule::once(Action::accept_then_fail(
        131026,
        "Message undeliverable",
        "not on WhatsApp",
    )));
    let (conversation, message) = c.send("50755667701").await;
    c.settle().await;
    let m = c.t.message(&message).await;
    assert_eq!(m["status"], "failed", "{m}");
    assert_eq!(m["error"]["code"], 131026);
    assert_eq!(m["error"]["title"], "Message undeliverable");
    assert_eq!(c.t.conversation(&conversation).await["status"], "closed");
    // The next send starts a new pending conversation.
    let (next, _) = c.send("50755667701").await;
    assert_ne!(next, conversation);
}

both_databases!(template_status_updates_pause_a_template_for_sending);
async fn template_status_updates_pause_a_template_for_sending() {
    let c = spawn_cloud().await;
    let update = c
        .fake
        .template_status_update("order_update", "es", "PAUSED", Some("low quality"));
    // The seeded template's appId must be Meta's id for the event to find it.
    let meta_id = update["entry"][0]["changes"][0]["value"]["message_template_id"].to_string();
    let (status, _) =
        c.t.admin(
            "PATCH",
            &format!("/v1/admin/templates/{}", c.seed.template_id),
            Some(json!({"appId": meta_id})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(c.fake.post_webhook(&update).await, StatusCode::OK);
    let (_, t) =
        c.t.admin(
            "GET",
            &format!("/v1/admin/templates/{}", c.seed.template_id),
            None,
        )
        .await;
    assert_eq!(t["status"], "PAUSED");
    let r =
        c.t.send_old(&c.seed.token, send_body(&c.seed, "50755667701"))
            .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json["body"]["context"]["value"], "PAUSED");
}

both_databases!(inbound_messages_keep_the_contact_name_and_activity);
async fn inbound_messages_keep_the_contact_name_and_activity() {
    let c = spawn_cloud().await;
    let (conversation, _) = c.send("50755667701").await;
    c.settle().await;
    let before = c.t.conversation(&conversation).await["lastActivityAt"].clone();
    let inbound = c
        .fake
        .inbound_message(PN, "50755667701", "Ana María", "hola");
    assert_eq!(c.fake.post_webhook(&inbound).await, StatusCode::OK);
    let after = c.t.conversation(&conversation).await["lastActivityAt"].clone();
    assert!(s(&after) >= s(&before));
    // The contact's name is what the next conversation is created with.
    let (status, _) =
        c.t.admin(
            "POST",
            &format!("/v1/admin/conversations/{conversation}/close"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let r =
        c.t.send_old(
            &c.seed.token,
            json!({"templateId": c.seed.template_id, "phoneNumber": "50755667701",
                                         "params": {"name": "a", "order": "b"}}),
        )
        .await;
    let next = s(&r.json["data"]["conversation_id"]);
    assert_eq!(c.t.conversation(&next).await["clientName"], "Ana María");
}

both_databases!(template_sync_follows_three_pages);
async fn template_sync_follows_three_pages() {
    let c = spawn_cloud_with(|c| c.template_sync_page_size = 3).await;
    for i in 0..4 {
        c.fake.add_template(FakeTemplate::new(
            format!("promo_{i}"),
            "es",
            format!("Oferta {i} para {{{{name}}}}"),
        ));
    }
    // 3 templates from start-up plus 4: 7 templates, pages of 3.
    let (status, summary) =
        c.t.admin(
            "POST",
            &format!("/v1/admin/channels/{}/templates/sync", c.seed.channel_id),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["pages"], 3);
    assert_eq!(
        summary["created"].as_u64().unwrap() + summary["updated"].as_u64().unwrap(),
        7
    );
    assert_eq!(
        summary["updated"], 1,
        "order_update existed (matched by name and language)"
    );
    let list =
        c.t.call("GET", "/templates?size=200", Some(&c.seed.token), None)
            .await;
    assert_eq!(list.json["total"], 7, "{}", list.text);
    let promo = list.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "promo_2")
        .unwrap();
    assert_eq!(promo["params"], json!(["name"]));
    assert_eq!(promo["status"], "APPROVED");
    assert!(promo["appId"].is_string());
    // Syncing again creates nothing new.
    let (_, again) =
        c.t.admin(
            "POST",
            &format!("/v1/admin/channels/{}/templates/sync", c.seed.channel_id),
            None,
        )
        .await;
    assert_eq!(again["created"], 0);
    assert_eq!(again["updated"], 7);
}

both_databases!(a_crash_between_send_and_write_back_is_reconciled_by_the_webhook_without_resending);
async fn a_crash_between_send_and_write_back_is_reconciled_by_the_webhook_without_resending() {
    let c = spawn_cloud_with(|c| {
        c.dispatch_lease_ms = 1;
        c.reconcile_window_ms = 60_000;
    })
    .await;
    c.fake.hold_webhooks(true);
    let (conversation, message) = c.send("50755667701").await;
    c.dispatcher().set_crash_after_send(true);
    c.dispatcher().pass().await.unwrap();
    assert!(c.fake.wait_for_sent(1, Duration::from_secs(10)).await);
    let Cloud { t, fake, seed } = c;

    // The process "died" after Meta took the message; a new one starts on the same database.
    let t = t.restart().await;
    fake.set_webhook_url(Some(format!("{}/webhooks/whatsapp", t.base)));
    let dispatcher = &t.server.as_ref().unwrap().dispatcher;
    dispatcher.pass().await.unwrap();
    assert_eq!(
        fake.sent().len(),
        1,
        "the expired lease is not resent within the window"
    );
    assert_eq!(t.message(&message).await["status"], "sending");

    fake.hold_webhooks(false);
    assert!(fake.wait_webhooks_idle(Duration::from_secs(10)).await);
    t.drain().await;
    let m = t.message(&message).await;
    assert_eq!(m["status"], "read", "{m}");
    assert_eq!(m["providerMessageId"], json!(fake.sent()[0].wamid));
    assert_eq!(fake.sent().len(), 1, "sent exactly once");
    assert_eq!(t.conversation(&conversation).await["status"], "open");
    let _ = seed;
}

both_databases!(without_a_webhook_the_orphaned_send_is_retried_after_the_window);
async fn without_a_webhook_the_orphaned_send_is_retried_after_the_window() {
    let c = spawn_cloud_with(|c| {
        c.dispatch_lease_ms = 1;
        c.reconcile_window_ms = 50;
    })
    .await;
    c.fake.hold_webhooks(true);
    let (_, message) = c.send("50755667701").await;
    c.dispatcher().set_crash_after_send(true);
    c.dispatcher().pass().await.unwrap();
    assert!(c.fake.wait_for_sent(1, Duration::from_secs(10)).await);
    let Cloud { t, fake, .. } = c;
    let t = t.restart().await;
    t.drain().await;
    // Meta's ambiguity: the first call succeeded but nothing proved it, so it went again.
    assert_eq!(fake.sent().len(), 2);
    let m = t.message(&message).await;
    assert_eq!(m["providerMessageId"], json!(fake.sent()[1].wamid));
}

both_databases!(a_channel_never_exceeds_its_rate_plus_burst);
async fn a_channel_never_exceeds_its_rate_plus_burst() {
    let c = spawn_cloud().await;
    let (status, _) =
        c.t.admin(
            "PATCH",
            &format!("/v1/admin/channels/{}", c.seed.channel_id),
            Some(json!({"messagesPerSecond": 100})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for i in 0..250 {
        c.send(&format!("5075566{i:04}")).await;
    }
    c.settle().await;
    assert_eq!(c.fake.sent().len(), 250);
    let max = c.fake.max_per_second(PN);
    assert!(
        max <= 100 + 10,
        "at most rate + burst (10) in any second: {max}"
    );
}

// Two instances on one database, one taking a channel over when the other's lease on it
// lapses: the first claims messages ahead of their pacer slots, and must not send any of them
// once the second may have started (both would send at once: 26/s on a channel at 20/s in the
// three-instance test, when slots were claimed 400 ms ahead whatever the lease).
both_databases!(an_instance_sends_nothing_for_a_channel_after_its_lease_on_it_ends);
async fn an_instance_sends_nothing_for_a_channel_after_its_lease_on_it_ends() {
    use plantilla::provider::sandbox::Sandbox;
    use plantilla::workers::dispatch::Dispatcher;
    const LEASE_MS: u64 = 300;
    let c = spawn_cloud_with(|cfg| cfg.channel_lease_ms = LEASE_MS).await;
    let (status, _) =
        c.t.admin(
            "PATCH",
            &format!("/v1/admin/channels/{}", c.seed.channel_id),
            Some(json!({"messagesPerSecond": 80})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for i in 0..60 {
        c.send(&format!("5075577{i:04}")).await;
    }
    // Two dispatchers with names of their own: two instances as `channel_owners` sees them.
    let app = c.t.app().clone();
    let instance = || {
        let sandbox = std::sync::Arc::new(Sandbox::new(app.clone(), Duration::ZERO));
        Dispatcher::new(app.clone(), sandbox, app.graph.clone())
    };
    let (first, second) = (instance(), instance());
    // The first takes the channel and claims what its pacer and its lease allow, then makes
    // no further pass (as if stalled): its lease lapses while its messages wait for slots.
    first.pass().await.unwrap();
    let claimed_by_first =
        c.t.sql_strings("SELECT id FROM messages WHERE sending_at IS NOT NULL ORDER BY id")
            .await;
    assert!(!claimed_by_first.is_empty(), "the first instance claimed");
    tokio::time::sleep(Duration::from_millis(LEASE_MS)).await;
    // The second takes the channel over as soon as it may, and sends the rest.
    second.drain().await.unwrap();
    first.settle().await;
    assert!(
        c.fake.wait_for_sent(60, Duration::from_secs(10)).await,
        "every message sent: {}",
        c.fake.sent().len()
    );
    // In the order the Graph API received them, every message of the first instance comes
    // before any of the second's.
    let order: Vec<bool> = c
        .fake
        .sent()
        .iter()
        .map(|m| claimed_by_first.contains(m.biz_opaque_callback_data.as_ref().expect("our id")))
        .collect();
    let first_of_second = order.iter().position(|by_first| !by_first);
    let last_of_first = order.iter().rposition(|by_first| *by_first);
    assert!(
        first_of_second.is_none_or(|f| last_of_first.is_none_or(|l| l < f)),
        "the first instance sent after the second took the channel over: {order:?}"
    );
    assert_eq!(order.len(), 60, "each message once");
}

/// A signed-ready status payload for `wamid` on phone number id `pnid`.
fn status_for(pnid: &str, wamid: &str, status: &str) -> Value {
    json!({"object": "whatsapp_business_account", "entry": [{"id": DEFAULT_WABA_ID, "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000001", "phone_number_id": pnid},
            "statuses": [{"id": wamid, "status": status, "timestamp": "1700000000",
                          "recipient_id": "50755667701"}]}}]}]})
}

async fn pending_gauge(t: &TestApp) -> i64 {
    let text = t
        .client
        .get(format!("{}/metrics", t.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("plantilla_pending_statuses "))
        .unwrap_or_else(|| panic!("no plantilla_pending_statuses in {text}"))
        .parse()
        .unwrap()
}

both_databases!(statuses_for_unknown_messages_are_kept_once_and_expire);
async fn statuses_for_unknown_messages_are_kept_once_and_expire() {
    let c = spawn_cloud_with(|cfg| cfg.pending_status_ttl_ms = 60_000).await;
    let count = || c.t.sql_i64("SELECT COUNT(*) FROM pending_statuses");

    // One payload and 5 replays (Meta retries; a shared number reports forever): one row.
    let payload = status_for(PN, "wamid.not-ours-1", "delivered");
    for _ in 0..6 {
        assert_eq!(c.fake.post_webhook(&payload).await, StatusCode::OK);
    }
    assert_eq!(count().await, 1);
    // Another status of the same message is another row, kept once too.
    for _ in 0..3 {
        let read = status_for(PN, "wamid.not-ours-1", "read");
        assert_eq!(c.fake.post_webhook(&read).await, StatusCode::OK);
    }
    assert_eq!(count().await, 2);
    assert_eq!(pending_gauge(&c.t).await, 2);

    // Older than the TTL: forgotten when the next one is kept.
    c.t.sql("UPDATE pending_statuses SET received_at = received_at - 61000")
        .await;
    let other = status_for(PN, "wamid.not-ours-2", "sent");
    assert_eq!(c.fake.post_webhook(&other).await, StatusCode::OK);
    assert_eq!(
        c.t.sql_strings("SELECT provider_message_id FROM pending_statuses")
            .await,
        ["wamid.not-ours-2"]
    );
    assert_eq!(pending_gauge(&c.t).await, 1);

    // The expiry itself: only what was received before the cutoff goes.
    let store = &c.t.app().store;
    let now = plantilla::now_ms();
    assert_eq!(
        store.expire_pending_statuses(now - 60_000).await.unwrap(),
        0
    );
    assert_eq!(store.expire_pending_statuses(now + 1).await.unwrap(), 1);
    assert_eq!(count().await, 0);
    assert_eq!(pending_gauge(&c.t).await, 0);

    // A status that beats its send's response is still applied when the response arrives.
    c.fake.add_rule(Rule::once(Action::StatusBeforeResponse));
    let (_, message) = c.send("50755667702").await;
    c.settle().await;
    assert_eq!(c.t.message(&message).await["status"], "read");
    assert_eq!(count().await, 0, "taken by the send's response");
}

both_databases!(one_webhook_with_many_statuses_applies_them_all_in_order);
/// Meta batches statuses: one POST with sent, delivered and read of several messages (one
/// of them read before delivered), a status of a message not known and one for a number
/// that is not ours. Every message ends read with its timeline, the unknown status is kept
/// for later, the recipient's user id is learned; the answers and counts are those of
/// statuses applied one by one.
async fn one_webhook_with_many_statuses_applies_them_all_in_order() {
    let c = spawn_cloud().await;
    c.fake.hold_webhooks(true);
    let mut sent = Vec::new();
    for i in 0..5 {
        let (conversation, message) = c.send(&format!("5075566780{i}")).await;
        sent.push((conversation, message));
    }
    c.t.drain().await;
    let wamids = c.fake.sent();
    assert_eq!(wamids.len(), 5);
    let event = |i: usize, status: &str| {
        c.fake.status_payload(&wamids[i], status)["entry"][0]["changes"][0]["value"]["statuses"][0]
            .clone()
    };
    let mut statuses = Vec::new();
    for status in ["sent", "delivered", "read"] {
        for i in 0..5 {
            // The first message's read comes before its delivered.
            let status = match (i, status) {
                (0, "delivered") => "read",
                (0, "read") => "delivered",
                _ => status,
            };
            statuses.push(event(i, status));
        }
    }
    statuses[10]["recipient_user_id"] = json!("US.42");
    let mut unknown = event(1, "delivered");
    unknown["id"] = json!("wamid.not-ours");
    unknown["biz_opaque_callback_data"] = Value::Null;
    statuses.push(unknown);
    let mut payload = c.fake.status_payload(&wamids[0], "sent");
    payload["entry"][0]["changes"][0]["value"]["statuses"] = json!(statuses);
    let mut elsewhere = payload["entry"][0]["changes"][0].clone();
    elsewhere["value"]["metadata"]["phone_number_id"] = json!("9999999");
    elsewhere["value"]["statuses"] = json!([event(2, "read")]);
    payload["entry"][0]["changes"]
        .as_array_mut()
        .unwrap()
        .push(elsewhere);

    assert_eq!(c.fake.post_webhook(&payload).await, StatusCode::OK);
    for (conversation, message) in &sent {
        let m = c.t.message(message).await;
        assert_eq!(m["status"], "read", "{m}");
        for step in ["sent", "delivered", "read"] {
            assert!(m["statusTimes"][step].is_string(), "{step}: {m}");
        }
        assert_eq!(c.t.conversation(conversation).await["status"], "open");
    }
    assert_eq!(
        c.t.sql_strings("SELECT provider_message_id FROM pending_statuses")
            .await,
        ["wamid.not-ours"]
    );
    assert_eq!(
        c.t.sql_strings("SELECT user_id FROM contacts WHERE phone_number LIKE '%55667800'")
            .await,
        ["US.42"]
    );
    // The same payload again (Meta's retry), counted: every status of ours applied (moving
    // nothing now), the unknown one kept (once), the other number's ignored.
    let applied = plantilla::service::inbound::apply(c.t.app(), None, &payload)
        .await
        .unwrap();
    assert_eq!(
        applied,
        plantilla::service::inbound::Applied {
            statuses: 15,
            kept_for_later: 1,
            ignored: 1,
            ..Default::default()
        }
    );
    assert_eq!(
        c.t.sql_i64("SELECT COUNT(*) FROM pending_statuses").await,
        1
    );
}

both_databases!(a_webhook_with_an_empty_phone_number_id_matches_no_channel);
async fn a_webhook_with_an_empty_phone_number_id_matches_no_channel() {
    let c = spawn_cloud().await;
    // A sandbox channel has no phone number id: it used to take these.
    let sandbox = c.t.seed().await;
    let r =
        c.t.send_old(&sandbox.token, send_body(&sandbox, "50755667703"))
            .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    c.t.drain().await;
    let contacts = || {
        c.t.sql_i64("SELECT COUNT(*) FROM contacts WHERE client_name = 'Mallory'")
    };

    let status = status_for("", "wamid.nobody", "delivered");
    assert_eq!(c.fake.post_webhook(&status).await, StatusCode::OK);
    let mut inbound = status_for("", "wamid.x", "sent");
    let value = &mut inbound["entry"][0]["changes"][0]["value"];
    value.as_object_mut().unwrap().remove("statuses");
    value["contacts"] = json!([{"profile": {"name": "Mallory"}, "wa_id": "50755667703"}]);
    value["messages"] = json!([{"from": "50755667703", "id": "wamid.in", "timestamp": "1700000000",
                                "type": "text", "text": {"body": "hola"}}]);
    assert_eq!(c.fake.post_webhook(&inbound).await, StatusCode::OK);
    assert_eq!(
        c.t.sql_i64("SELECT COUNT(*) FROM pending_statuses").await,
        0,
        "nothing kept for an empty phone number id"
    );
    assert_eq!(contacts().await, 0, "no inbound recorded");
    // The same payload with the channel's id is applied (the test sees what it should).
    let mut ours = inbound.clone();
    ours["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = json!(PN);
    assert_eq!(c.fake.post_webhook(&ours).await, StatusCode::OK);
    assert_eq!(contacts().await, 1);
}
