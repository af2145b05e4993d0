//! A store seeded directly through the `Store` trait (an account, a sandbox channel, a
//! template) and sends for it: shared by the store-level tests (tests/it/store/).

use std::collections::BTreeMap;

use plantilla::domain::ids::{hash_token, new_id};
use plantilla::domain::phone::PhoneNumber;
use plantilla::domain::status::MessageStatus;
use plantilla::service::send::{SendRequest, TemplateRef, period_of};
use plantilla::store::*;
use serde_json::json;

const ORPHAN_WAIT: i64 = 120_000;
const LEASE: i64 = 30_000;

pub struct Seeded {
    pub account: Account,
    pub channel: Channel,
    pub template: Template,
}

/// A new account with `conversation_limit`, its connected sandbox channel (public token: the
/// channel id's hash) and an approved template `Hola {{name}}`.
pub async fn seed(store: &dyn Store, conversation_limit: i64) -> Seeded {
    let now = plantilla::now_ms();
    let account = Account {
        id: new_id("acc"),
        name: "Acme".into(),
        conversation_limit,
        created_at: now,
        updated_at: now,
        quiet_hours: None,
    };
    store.insert_account(&account).await.unwrap();
    let channel = Channel {
        id: new_id("chn"),
        account_id: account.id.clone(),
        name: "Main".into(),
        provider: ProviderKind::Sandbox,
        phone_number_id: new_id("pnid"),
        waba_id: "waba_1".into(),
        access_token: String::new(),
        app_secret: String::new(),
        verify_token: String::new(),
        status: "connected".into(),
        messages_per_second: 1000,
        health: "ok".into(),
        health_error: None,
        messaging_limit: None,
        created_at: now,
        updated_at: now,
    };
    store
        .insert_channel(&channel, &hash_token(&channel.id))
        .await
        .unwrap();
    let template = Template {
        id: new_id("tpl"),
        account_id: account.id.clone(),
        name: "order_update".into(),
        language: "es".into(),
        category: "UTILITY".into(),
        status: "APPROVED".into(),
        app_id: "app_1".into(),
        message: "Hola {{name}}".into(),
        header: None,
        footer: None,
        buttons: json!([]),
        extra: json!({}),
        group_name: None,
        active: true,
        created_at: now,
        updated_at: now,
    };
    store.insert_template(&template).await.unwrap();
    Seeded {
        account,
        channel,
        template,
    }
}

/// A plain send of the seeded template to `phone` at `now`, with new ids.
pub fn accept(s: &Seeded, phone: &str, now: i64) -> AcceptSend {
    AcceptSend {
        account_id: s.account.id.clone(),
        channel_id: s.channel.id.clone(),
        template_id: s.template.id.clone(),
        phone_number: phone.to_string(),
        client_name: None,
        group_id: None,
        assignee: "bot",
        params: BTreeMap::from([("name".to_string(), "Ana".to_string())]),
        conversation_limit: s.account.conversation_limit,
        period: period_of(now),
        now,
        expire_before: now - 24 * 3600 * 1000,
        new_conversation_id: new_id("conv"),
        new_message_id: new_id("msg"),
        batch_id: None,
        callback_url: None,
        metadata: None,
        idempotency: None,
        send_at: None,
    }
}

/// A send request for the seeded template to `phone`.
pub fn request(s: &Seeded, phone: &str, client_name: Option<&str>) -> SendRequest {
    SendRequest {
        client_name: client_name.map(str::to_string),
        params: BTreeMap::from([("name".to_string(), "Ana".to_string())]),
        ..SendRequest::new(
            TemplateRef::Id(s.template.id.clone().into()),
            PhoneNumber::parse(phone).expect("valid phone"),
        )
    }
}

/// A new pending conversation's message, claimed and accepted by the provider as `wamid`.
pub async fn sent_message(
    store: &dyn Store,
    s: &Seeded,
    phone: &str,
    wamid: &str,
) -> (String, String) {
    let now = plantilla::now_ms();
    let AcceptOutcome::Pending {
        conversation_id,
        message_id,
    } = store.accept_send(&accept(s, phone, now)).await.unwrap()
    else {
        panic!("expected a pending conversation");
    };
    let jobs = store
        .claim_jobs(&s.channel.id, 100, now, LEASE, ORPHAN_WAIT)
        .await
        .unwrap();
    let job = jobs
        .iter()
        .find(|j| j.message.id == message_id)
        .expect("claimed");
    let finished = store
        .finish_attempt(&AttemptOutcome {
            message_id: message_id.clone(),
            attempt: job.attempt,
            now,
            result: AttemptResult::Accepted {
                provider_message_id: wamid.to_string(),
                wa_id: Some(phone.to_string()),
            },
        })
        .await
        .unwrap();
    assert_eq!(finished, Finished::Recorded { conversation: None });
    (conversation_id, message_id)
}

/// A status webhook for `wamid`.
pub fn status(wamid: &str, status: MessageStatus, at: i64) -> StatusUpdate {
    StatusUpdate {
        provider_message_id: Some(wamid.to_string()),
        message_id: None,
        status,
        at,
        error: None,
        pricing_category: None,
        pricing: None,
        channel_id: None,
    }
}

/// A webhook endpoint of `s`'s account for `event_types` (its URL refuses connections: the
/// store-level tests only look at the outbox rows it makes the store queue).
pub async fn endpoint(store: &dyn Store, s: &Seeded, event_types: &[&str]) {
    let endpoint = WebhookEndpoint {
        id: new_id("we"),
        account_id: s.account.id.clone(),
        url: "http://127.0.0.1:9/hook".into(),
        event_types: event_types.iter().map(|e| e.to_string()).collect(),
        description: None,
        secret: "whsec_test".into(),
        created_at: plantilla::now_ms(),
    };
    store
        .insert_webhook_endpoint(&endpoint, None)
        .await
        .unwrap();
}
