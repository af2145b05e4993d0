//! Status callbacks, the pure part: which events exist, how a delivery is signed (Standard
//! Webhooks), and when a failing delivery is given up. No I/O.
//!
//! Signing follows <https://www.standardwebhooks.com>: the headers `webhook-id`,
//! `webhook-timestamp` (Unix seconds) and `webhook-signature` = `v1,<base64 of
//! HMAC-SHA256("{id}.{timestamp}.{body}")>`, keyed with the bytes of the secret's base64 part
//! (the secret is `whsec_<base64>`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use super::status::{ConversationStatus, MessageStatus};

/// An event a webhook endpoint can subscribe to. `message.received`: a customer wrote or clicked something (its `data` is an `InboundMessage` without `direction`), forwarded once per WhatsApp message id even when Meta retries the webhook. `contact.opted_out` / `contact.opted_in`: a number joined or left the account's suppression list; `data` has `accountId`, `phoneNumber`, `reason` (`keyword`, `button`, `meta_131050` or `api`; for `opted_in`, how it left: `keyword` or `api`), `channelId` when known and `at`.
// Its name ([`EventType::as_str`]) is its JSON form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
pub enum EventType {
    #[serde(rename = "message.sent")]
    MessageSent,
    #[serde(rename = "message.delivered")]
    MessageDelivered,
    #[serde(rename = "message.read")]
    MessageRead,
    #[serde(rename = "message.failed")]
    MessageFailed,
    #[serde(rename = "message.cancelled")]
    MessageCancelled,
    #[serde(rename = "conversation.opened")]
    ConversationOpened,
    #[serde(rename = "conversation.closed")]
    ConversationClosed,
    #[serde(rename = "template.status_changed")]
    TemplateStatusChanged,
    #[serde(rename = "message.received")]
    MessageReceived,
    #[serde(rename = "contact.opted_out")]
    ContactOptedOut,
    #[serde(rename = "contact.opted_in")]
    ContactOptedIn,
    #[serde(rename = "template.category_changed")]
    TemplateCategoryChanged,
    #[serde(rename = "template.quality_changed")]
    TemplateQualityChanged,
    #[serde(rename = "channel.quality_changed")]
    ChannelQualityChanged,
}

impl EventType {
    pub const ALL: [EventType; 14] = [
        Self::MessageSent,
        Self::MessageDelivered,
        Self::MessageRead,
        Self::MessageFailed,
        Self::MessageCancelled,
        Self::ConversationOpened,
        Self::ConversationClosed,
        Self::TemplateStatusChanged,
        Self::MessageReceived,
        Self::ContactOptedOut,
        Self::ContactOptedIn,
        Self::TemplateCategoryChanged,
        Self::TemplateQualityChanged,
        Self::ChannelQualityChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::MessageSent => "message.sent",
            Self::MessageDelivered => "message.delivered",
            Self::MessageRead => "message.read",
            Self::MessageFailed => "message.failed",
            Self::MessageCancelled => "message.cancelled",
            Self::ConversationOpened => "conversation.opened",
            Self::ConversationClosed => "conversation.closed",
            Self::TemplateStatusChanged => "template.status_changed",
            Self::MessageReceived => "message.received",
            Self::ContactOptedOut => "contact.opted_out",
            Self::ContactOptedIn => "contact.opted_in",
            Self::TemplateCategoryChanged => "template.category_changed",
            Self::TemplateQualityChanged => "template.quality_changed",
            Self::ChannelQualityChanged => "channel.quality_changed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The event of a message reaching `status`; `queued` and `sending` have none.
    pub fn of_message(status: MessageStatus) -> Option<Self> {
        match status {
            MessageStatus::Sent => Some(Self::MessageSent),
            MessageStatus::Delivered => Some(Self::MessageDelivered),
            MessageStatus::Read => Some(Self::MessageRead),
            MessageStatus::Failed => Some(Self::MessageFailed),
            MessageStatus::Cancelled => Some(Self::MessageCancelled),
            MessageStatus::Scheduled | MessageStatus::Queued | MessageStatus::Sending => None,
        }
    }

    /// The event of a conversation reaching `status`; `pending` (creation) has none.
    pub fn of_conversation(status: ConversationStatus) -> Option<Self> {
        match status {
            ConversationStatus::Open => Some(Self::ConversationOpened),
            ConversationStatus::Closed => Some(Self::ConversationClosed),
            ConversationStatus::Pending => None,
        }
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A new signing secret: `whsec_` and the base64 of 24 random bytes.
pub fn new_signing_secret() -> String {
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("whsec_{}", BASE64.encode(bytes))
}

/// The `webhook-signature` header of a delivery: `v1,<base64 HMAC-SHA256>`. `None` when the
/// secret is not `whsec_<base64>`.
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = BASE64.decode(secret.strip_prefix("whsec_")?).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    Some(format!("v1,{}", BASE64.encode(mac.finalize().into_bytes())))
}

/// Why an endpoint URL is refused, if it is: absolute `http(s)://host…`, at most 2048 bytes.
pub fn url_problem(url: &str) -> Option<&'static str> {
    if url.len() > 2048 {
        return Some("must be at most 2048 characters");
    }
    match reqwest::Url::parse(url) {
        Ok(u) if !matches!(u.scheme(), "http" | "https") => {
            Some("must be an http:// or https:// URL")
        }
        Ok(u) if u.host_str().is_none_or(str::is_empty) => Some("must name a host"),
        Ok(_) => None,
        Err(_) => Some("must be an absolute http:// or https:// URL"),
    }
}

/// When a delivery that just failed is tried again, or `None` when it is given up: the next
/// attempt would fall after `created_at + max_age_ms`. Never sooner than 1 ms from `now`, so
/// a failed delivery is not retried within the same instant.
pub fn next_attempt_at(
    now: i64,
    delay: std::time::Duration,
    created_at: i64,
    max_age_ms: i64,
) -> Option<i64> {
    let delay = i64::try_from(delay.as_millis())
        .unwrap_or(i64::MAX / 4)
        .max(1);
    let at = now.saturating_add(delay);
    (at <= created_at.saturating_add(max_age_ms)).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_round_trip() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            assert_eq!(
                serde_json::to_value(t).unwrap(),
                t.as_str(),
                "JSON is the name"
            );
        }
        assert_eq!(EventType::parse("message.queued"), None);
        assert_eq!(
            EventType::of_message(MessageStatus::Read),
            Some(EventType::MessageRead)
        );
        assert_eq!(EventType::of_message(MessageStatus::Sending), None);
        assert_eq!(
            EventType::of_conversation(ConversationStatus::Closed),
            Some(EventType::ConversationClosed)
        );
        assert_eq!(
            EventType::of_conversation(ConversationStatus::Pending),
            None
        );
    }

    #[test]
    fn secrets_are_whsec_and_24_bytes() {
        let s = new_signing_secret();
        let raw = BASE64.decode(s.strip_prefix("whsec_").unwrap()).unwrap();
        assert_eq!(raw.len(), 24);
        assert_ne!(s, new_signing_secret());
    }

    /// The example of the Standard Webhooks reference libraries.
    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        let sig = signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(
            sig.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_eq!(signature("not-a-secret", "id", 1, "{}"), None);
        assert_eq!(signature("whsec_%%%", "id", 1, "{}"), None);
    }

    #[test]
    fn urls_must_be_absolute_http() {
        assert_eq!(url_problem("https://example.com/hooks"), None);
        assert_eq!(url_problem("http://127.0.0.1:9000/x?y=1"), None);
        assert!(url_problem("ftp://example.com").is_some());
        assert!(url_problem("/relative").is_some());
        assert!(url_problem("example.com").is_some());
        assert!(url_problem(&format!("https://e.com/{}", "a".repeat(2048))).is_some());
    }

    #[test]
    fn retries_stop_at_the_age_limit() {
        let s = std::time::Duration::from_secs;
        assert_eq!(next_attempt_at(1_000, s(5), 0, 86_400_000), Some(6_000));
        assert_eq!(next_attempt_at(86_399_000, s(5), 0, 86_400_000), None);
        assert_eq!(
            next_attempt_at(10, std::time::Duration::ZERO, 0, 1_000),
            Some(11),
            "at least 1 ms later"
        );
    }
}
