//! Webhook payloads shaped like Meta's (`object: "whatsapp_business_account"`,
//! `entry[].changes[].value`), and their `X-Hub-Signature-256`.
//!
//! Shapes follow Meta's webhook references: "Status messages webhook
//! reference", "messages webhook reference" (incoming messages + contacts)
//! and "message_template_status_update webhook reference".

use hmac::{Hmac, Mac};
use rand::Rng;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::{Map, Value, json};
use sha2::Sha256;

/// The business side of a webhook: the WABA (`entry[].id`) and the phone
/// number (`metadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessIds {
    pub waba_id: String,
    pub phone_number_id: String,
    pub display_phone_number: String,
}

/// An error of a `failed` status: `{code, title, message, error_data: {details}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusError {
    pub code: i64,
    pub title: String,
    /// Defaults to the title.
    pub message: Option<String>,
    pub details: Option<String>,
}

impl StatusError {
    pub fn new(code: i64, title: impl Into<String>, details: Option<String>) -> StatusError {
        StatusError {
            code,
            title: title.into(),
            message: None,
            details,
        }
    }
}

const ERROR_CODES_URL: &str =
    "https://developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes";

/// `{code, title, message, error_data: {details}, href}`.
impl Serialize for StatusError {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("code", &self.code)?;
        m.serialize_entry("title", &self.title)?;
        m.serialize_entry("message", self.message.as_ref().unwrap_or(&self.title))?;
        if let Some(details) = &self.details {
            m.serialize_entry("error_data", &ErrorData { details })?;
        }
        m.serialize_entry("href", ERROR_CODES_URL)?;
        m.end()
    }
}

#[derive(Serialize)]
struct ErrorData<'a> {
    details: &'a str,
}

/// One entry of `statuses`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusEvent {
    /// The wamid.
    pub id: String,
    /// `sent`, `delivered`, `read` or `failed`.
    pub status: String,
    /// Unix seconds (sent as a string, like Meta).
    pub timestamp: i64,
    /// The number; left out of the JSON when empty (a user known only by user id).
    pub recipient_id: String,
    /// `recipient_user_id`: the business-scoped user id, when set.
    pub recipient_user_id: Option<String>,
    pub biz_opaque_callback_data: Option<String>,
    /// `conversation.id`; no `conversation` object when `None` or when the
    /// status is `failed`.
    pub conversation_id: Option<String>,
    /// `conversation.expiration_timestamp` (Meta sends it with `sent`).
    pub conversation_expiration: Option<i64>,
    /// Pricing category and conversation origin type, lowercase: `utility`,
    /// `marketing`, `authentication`, `service`.
    pub category: String,
    /// `pricing.pricing_model`: `PMP` (per-message pricing, Meta's model since July 2025)
    /// by default.
    pub pricing_model: String,
    /// `pricing.type`: `regular` (charged), `free_customer_service` or `free_entry_point`.
    pub pricing_type: String,
    /// `errors` (for `failed`).
    pub errors: Vec<StatusError>,
}

impl StatusEvent {
    /// A status with the current time, category `utility`, no conversation.
    pub fn new(
        wamid: impl Into<String>,
        status: impl Into<String>,
        recipient_id: impl Into<String>,
    ) -> StatusEvent {
        StatusEvent {
            id: wamid.into(),
            status: status.into(),
            timestamp: chrono::Utc::now().timestamp(),
            recipient_id: recipient_id.into(),
            recipient_user_id: None,
            biz_opaque_callback_data: None,
            conversation_id: None,
            conversation_expiration: None,
            category: "utility".to_string(),
            pricing_model: "PMP".to_string(),
            pricing_type: "regular".to_string(),
            errors: Vec::new(),
        }
    }

    pub fn with_callback_data(mut self, data: Option<String>) -> StatusEvent {
        self.biz_opaque_callback_data = data;
        self
    }

    pub fn with_conversation(
        mut self,
        id: impl Into<String>,
        expiration: Option<i64>,
    ) -> StatusEvent {
        self.conversation_id = Some(id.into());
        self.conversation_expiration = expiration;
        self
    }

    /// Names the recipient by a business-scoped user id too (`recipient_user_id`); with an
    /// empty `recipient_id`, by that alone.
    pub fn with_recipient_user_id(mut self, user_id: impl Into<String>) -> StatusEvent {
        self.recipient_user_id = Some(user_id.into());
        self
    }

    pub fn with_timestamp(mut self, unix_seconds: i64) -> StatusEvent {
        self.timestamp = unix_seconds;
        self
    }

    pub fn with_error(mut self, error: StatusError) -> StatusEvent {
        self.errors.push(error);
        self
    }

    /// The JSON object of `statuses[]` (what its [`Serialize`] writes).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("a status serializes")
    }
}

/// The object of `statuses[]`, written straight to the body (no [`Value`] tree in between).
impl Serialize for StatusEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &self.id)?;
        m.serialize_entry("status", &self.status)?;
        m.serialize_entry("timestamp", &Decimal(self.timestamp))?;
        if !self.recipient_id.is_empty() {
            m.serialize_entry("recipient_id", &self.recipient_id)?;
        }
        if let Some(user_id) = &self.recipient_user_id {
            m.serialize_entry("recipient_user_id", user_id)?;
        }
        if let Some(data) = &self.biz_opaque_callback_data {
            m.serialize_entry("biz_opaque_callback_data", data)?;
        }
        if self.status != "failed" {
            if let Some(id) = &self.conversation_id {
                m.serialize_entry(
                    "conversation",
                    &Conversation {
                        id,
                        expiration_timestamp: self.conversation_expiration.map(Decimal),
                        origin: Origin {
                            kind: &self.category,
                        },
                    },
                )?;
            }
            m.serialize_entry(
                "pricing",
                &Pricing {
                    billable: self.pricing_type == "regular",
                    pricing_model: &self.pricing_model,
                    kind: &self.pricing_type,
                    category: &self.category,
                },
            )?;
        }
        if !self.errors.is_empty() {
            m.serialize_entry("errors", &self.errors)?;
        }
        m.end()
    }
}

/// An integer written as a JSON string (Meta's timestamps), without a `String` in between.
struct Decimal(i64);

impl Serialize for Decimal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

#[derive(Serialize)]
struct Conversation<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    expiration_timestamp: Option<Decimal>,
    origin: Origin<'a>,
}

#[derive(Serialize)]
struct Origin<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
}

#[derive(Serialize)]
struct Pricing<'a> {
    billable: bool,
    pricing_model: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    category: &'a str,
}

/// A template status change (`field: "message_template_status_update"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateStatusUpdate {
    /// `APPROVED`, `REJECTED`, `PAUSED`, `DISABLED`, `PENDING_DELETION`, …
    pub event: String,
    pub message_template_id: String,
    pub message_template_name: String,
    pub message_template_language: String,
    /// `NONE` when absent.
    pub reason: Option<String>,
    pub message_template_category: Option<String>,
}

fn envelope(waba_id: &str, field: &str, value: Value, time: Option<i64>) -> Value {
    let mut entry = Map::new();
    entry.insert("id".into(), Value::from(waba_id));
    if let Some(time) = time {
        entry.insert("time".into(), Value::from(time));
    }
    entry.insert(
        "changes".into(),
        json!([{ "value": value, "field": field }]),
    );
    json!({
        "object": "whatsapp_business_account",
        "entry": [Value::Object(entry)],
    })
}

fn metadata(biz: &BusinessIds) -> Value {
    json!({
        "display_phone_number": biz.display_phone_number,
        "phone_number_id": biz.phone_number_id,
    })
}

/// A `messages` webhook carrying `statuses`.
pub fn statuses_payload(biz: &BusinessIds, statuses: &[StatusEvent]) -> Value {
    serde_json::from_slice(&statuses_body(&[(biz, statuses)])).expect("a status webhook is JSON")
}

/// The bytes of a `messages` webhook carrying the statuses of one or more phone numbers:
/// one `entry` per WABA (in order of first appearance), one `change` per phone number in
/// it, each with its `statuses` in the order given (Meta batches statuses this way).
/// Serialized straight from the events.
pub fn statuses_body(groups: &[(&BusinessIds, &[StatusEvent])]) -> Vec<u8> {
    let mut entries: Vec<StatusEntry<'_>> = Vec::new();
    for (biz, statuses) in groups {
        let change = StatusChange {
            field: "messages",
            value: StatusValue {
                messaging_product: "whatsapp",
                metadata: Metadata {
                    display_phone_number: &biz.display_phone_number,
                    phone_number_id: &biz.phone_number_id,
                },
                statuses,
            },
        };
        match entries.iter_mut().find(|e| e.id == biz.waba_id) {
            Some(entry) => entry.changes.push(change),
            None => entries.push(StatusEntry {
                id: &biz.waba_id,
                changes: vec![change],
            }),
        }
    }
    let envelope = StatusEnvelope {
        object: "whatsapp_business_account",
        entry: entries,
    };
    let mut out = Vec::with_capacity(256 + 512 * groups.iter().map(|g| g.1.len()).sum::<usize>());
    serde_json::to_writer(&mut out, &envelope).expect("a status webhook serializes");
    out
}

#[derive(Serialize)]
struct StatusEnvelope<'a> {
    object: &'static str,
    entry: Vec<StatusEntry<'a>>,
}

#[derive(Serialize)]
struct StatusEntry<'a> {
    id: &'a str,
    changes: Vec<StatusChange<'a>>,
}

#[derive(Serialize)]
struct StatusChange<'a> {
    field: &'static str,
    value: StatusValue<'a>,
}

#[derive(Serialize)]
struct StatusValue<'a> {
    messaging_product: &'static str,
    metadata: Metadata<'a>,
    statuses: &'a [StatusEvent],
}

#[derive(Serialize)]
struct Metadata<'a> {
    display_phone_number: &'a str,
    phone_number_id: &'a str,
}

/// A `messages` webhook carrying one inbound text message from `from`, with
/// `contacts[0].profile.name = profile_name`.
pub fn inbound_text_payload(
    biz: &BusinessIds,
    from: &str,
    profile_name: &str,
    text: &str,
    timestamp: i64,
) -> Value {
    let value = json!({
        "messaging_product": "whatsapp",
        "metadata": metadata(biz),
        "contacts": [{ "profile": { "name": profile_name }, "wa_id": from }],
        "messages": [{
            "from": from,
            "id": new_wamid(),
            "timestamp": timestamp.to_string(),
            "type": "text",
            "text": { "body": text },
        }],
    });
    envelope(&biz.waba_id, "messages", value, None)
}

/// One inbound message of a `messages` webhook, from a number (`from`), a business-scoped
/// user id (`from_user_id`) or both.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundEvent {
    /// Its wamid (a fresh one by default).
    pub id: String,
    pub from: Option<String>,
    pub user_id: Option<String>,
    /// `contacts[0].profile.name` / `.username`.
    pub profile_name: Option<String>,
    pub username: Option<String>,
    /// Unix seconds (sent as a string, like Meta).
    pub timestamp: i64,
    /// `context.id`: the wamid replied to, or of the template whose button was clicked.
    pub context_id: Option<String>,
    /// `type`, and the object under that key (`text`, `button`, …).
    pub kind: String,
    pub body: Value,
}

impl InboundEvent {
    /// A message of any type: `body` goes under the key named `kind`.
    pub fn new(from: impl Into<String>, kind: impl Into<String>, body: Value) -> InboundEvent {
        InboundEvent {
            id: new_wamid(),
            from: Some(from.into()),
            user_id: None,
            profile_name: None,
            username: None,
            timestamp: chrono::Utc::now().timestamp(),
            context_id: None,
            kind: kind.into(),
            body,
        }
    }

    /// A text message.
    pub fn text(from: impl Into<String>, text: &str) -> InboundEvent {
        InboundEvent::new(from, "text", json!({ "body": text }))
    }

    /// A click on a template's quick-reply button: `context_id` is the template message's
    /// wamid, `payload` the button's payload, `text` its label.
    pub fn button(
        from: impl Into<String>,
        context_id: impl Into<String>,
        payload: &str,
        text: &str,
    ) -> InboundEvent {
        InboundEvent::new(from, "button", json!({ "payload": payload, "text": text }))
            .with_context(context_id)
    }

    /// A text message from a user known only by their business-scoped user id (no `from`,
    /// no `wa_id`).
    pub fn text_from_user_id(user_id: impl Into<String>, text: &str) -> InboundEvent {
        let mut event = InboundEvent::text("", text);
        event.from = None;
        event.user_id = Some(user_id.into());
        event
    }

    pub fn with_context(mut self, wamid: impl Into<String>) -> InboundEvent {
        self.context_id = Some(wamid.into());
        self
    }

    pub fn with_user_id(mut self, user_id: impl Into<String>) -> InboundEvent {
        self.user_id = Some(user_id.into());
        self
    }

    pub fn with_profile(
        mut self,
        name: impl Into<String>,
        username: Option<String>,
    ) -> InboundEvent {
        self.profile_name = Some(name.into());
        self.username = username;
        self
    }

    pub fn with_id(mut self, wamid: impl Into<String>) -> InboundEvent {
        self.id = wamid.into();
        self
    }

    /// The JSON object of `messages[]`.
    pub fn message_json(&self) -> Value {
        let mut m = Map::new();
        if let Some(from) = &self.from {
            m.insert("from".into(), Value::from(from.clone()));
        }
        if let Some(user_id) = &self.user_id {
            m.insert("from_user_id".into(), Value::from(user_id.clone()));
        }
        m.insert("id".into(), Value::from(self.id.clone()));
        m.insert("timestamp".into(), Value::from(self.timestamp.to_string()));
        if let Some(context) = &self.context_id {
            m.insert("context".into(), json!({ "from": "", "id": context }));
        }
        m.insert("type".into(), Value::from(self.kind.clone()));
        m.insert(self.kind.clone(), self.body.clone());
        Value::Object(m)
    }

    /// The JSON object of `contacts[]`.
    pub fn contact_json(&self) -> Value {
        let mut profile = Map::new();
        profile.insert(
            "name".into(),
            Value::from(self.profile_name.clone().unwrap_or_default()),
        );
        if let Some(username) = &self.username {
            profile.insert("username".into(), Value::from(username.clone()));
        }
        let mut c = Map::new();
        c.insert("profile".into(), Value::Object(profile));
        if let Some(from) = &self.from {
            c.insert("wa_id".into(), Value::from(from.clone()));
        }
        if let Some(user_id) = &self.user_id {
            c.insert("user_id".into(), Value::from(user_id.clone()));
        }
        Value::Object(c)
    }
}

/// A `messages` webhook carrying inbound messages (and their senders' `contacts`).
pub fn inbound_payload(biz: &BusinessIds, messages: &[InboundEvent]) -> Value {
    let value = json!({
        "messaging_product": "whatsapp",
        "metadata": metadata(biz),
        "contacts": messages.iter().map(InboundEvent::contact_json).collect::<Vec<_>>(),
        "messages": messages.iter().map(|m| {
            let mut json = m.message_json();
            // Meta's `context.from`: the business number the replied message came from.
            if m.context_id.is_some() {
                json["context"]["from"] = Value::from(biz.display_phone_number.clone());
            }
            json
        }).collect::<Vec<_>>(),
    });
    envelope(&biz.waba_id, "messages", value, None)
}

/// A `message_template_status_update` webhook.
pub fn template_status_payload(waba_id: &str, update: &TemplateStatusUpdate) -> Value {
    // Meta sends the template id as a JSON number.
    let id = update
        .message_template_id
        .parse::<u64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::from(update.message_template_id.clone()));
    let mut value = Map::new();
    value.insert("event".into(), Value::from(update.event.clone()));
    value.insert("message_template_id".into(), id);
    value.insert(
        "message_template_name".into(),
        Value::from(update.message_template_name.clone()),
    );
    value.insert(
        "message_template_language".into(),
        Value::from(update.message_template_language.clone()),
    );
    value.insert(
        "reason".into(),
        Value::from(update.reason.clone().unwrap_or_else(|| "NONE".to_string())),
    );
    if let Some(category) = &update.message_template_category {
        value.insert(
            "message_template_category".into(),
            Value::from(category.clone()),
        );
    }
    envelope(
        waba_id,
        "message_template_status_update",
        Value::Object(value),
        Some(chrono::Utc::now().timestamp()),
    )
}

/// A `template_category_update` webhook: a change made (`previous_category`,
/// `new_category`), or with `correct_category` the advance notice of one (then
/// `new_category` is the current category and `category_update_timestamp` when the change
/// will happen, Unix seconds).
pub fn template_category_payload(
    waba_id: &str,
    template: (&str, &str, &str),
    previous_or_current: &str,
    new_or_correct: &str,
    notice_at: Option<i64>,
) -> Value {
    let (id, name, language) = template;
    let mut value = template_ids(id, name, language);
    match notice_at {
        None => {
            value.insert("previous_category".into(), Value::from(previous_or_current));
            value.insert("new_category".into(), Value::from(new_or_correct));
        }
        Some(at) => {
            value.insert("correct_category".into(), Value::from(new_or_correct));
            value.insert("new_category".into(), Value::from(previous_or_current));
            value.insert("category_update_timestamp".into(), Value::from(at));
        }
    }
    envelope(
        waba_id,
        "template_category_update",
        Value::Object(value),
        Some(chrono::Utc::now().timestamp()),
    )
}

/// A `message_template_quality_update` webhook.
pub fn template_quality_payload(
    waba_id: &str,
    template: (&str, &str, &str),
    previous: &str,
    new: &str,
) -> Value {
    let (id, name, language) = template;
    let mut value = template_ids(id, name, language);
    value.insert("previous_quality_score".into(), Value::from(previous));
    value.insert("new_quality_score".into(), Value::from(new));
    envelope(
        waba_id,
        "message_template_quality_update",
        Value::Object(value),
        Some(chrono::Utc::now().timestamp()),
    )
}

fn template_ids(id: &str, name: &str, language: &str) -> Map<String, Value> {
    let mut value = Map::new();
    value.insert(
        "message_template_id".into(),
        id.parse::<u64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::from(id)),
    );
    value.insert("message_template_name".into(), Value::from(name));
    value.insert("message_template_language".into(), Value::from(language));
    value
}

/// A `phone_number_quality_update` webhook: `event` (`FLAGGED`, `UNFLAGGED`, `UPGRADE`,
/// `DOWNGRADE`, …), the limit as `max_daily_conversations_per_business` (current) and, as
/// Meta still sends them, `current_limit` and `old_limit` (deprecated).
pub fn phone_quality_payload(
    biz: &BusinessIds,
    event: &str,
    limit: &str,
    old_limit: Option<&str>,
) -> Value {
    let mut value = Map::new();
    value.insert(
        "display_phone_number".into(),
        Value::from(biz.display_phone_number.clone()),
    );
    value.insert("event".into(), Value::from(event));
    if let Some(old) = old_limit {
        value.insert("old_limit".into(), Value::from(old));
    }
    value.insert("current_limit".into(), Value::from(limit));
    value.insert(
        "max_daily_conversations_per_business".into(),
        Value::from(limit),
    );
    envelope(
        &biz.waba_id,
        "phone_number_quality_update",
        Value::Object(value),
        Some(chrono::Utc::now().timestamp()),
    )
}

/// An `account_update` webhook carrying the business portfolio's messaging limit
/// (`whatsapp_business_manager_messaging_limit`).
pub fn account_update_payload(waba_id: &str, event: &str, limit: &str) -> Value {
    envelope(
        waba_id,
        "account_update",
        json!({"event": event, "whatsapp_business_manager_messaging_limit": limit}),
        Some(chrono::Utc::now().timestamp()),
    )
}

/// `sha256=<hex HMAC-SHA256 of body with secret>`: the `X-Hub-Signature-256`
/// header value.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A fresh message id shaped like Meta's (`wamid.` + base64-ish text).
pub fn new_wamid() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    let tail: String = (0..44)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect();
    format!("wamid.HBgL{tail}=")
}

/// A random 32-hex-digit conversation id.
pub fn new_conversation_id() -> String {
    let bytes: [u8; 16] = rand::thread_rng().r#gen();
    hex::encode(bytes)
}
