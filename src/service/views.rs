//! The JSON shapes of stored things, shared by every adapter that shows them.

use serde_json::{Value, json};

use crate::domain::template::{Button, Header, TemplateContent, TemplateExtra};
use crate::format_ms;
use crate::store::{
    Account, Channel, ChannelQuality, Conversation, Group, InboundMessage, Message, Template,
    TemplateHealth,
};

fn time(ms: Option<i64>) -> Value {
    ms.map(|ms| Value::String(format_ms(ms)))
        .unwrap_or(Value::Null)
}

/// The typed content of a stored template (its header, buttons and extra were validated when
/// stored).
pub fn template_content(t: &Template) -> TemplateContent {
    TemplateContent {
        header: t
            .header
            .as_ref()
            .and_then(|h| serde_json::from_value::<Header>(h.clone()).ok()),
        body: t.message.clone(),
        footer: t.footer.clone(),
        buttons: serde_json::from_value::<Vec<Button>>(t.buttons.clone()).unwrap_or_default(),
        extra: serde_json::from_value::<TemplateExtra>(t.extra.clone()).unwrap_or_default(),
    }
}

/// A list's cursor, opaque to callers: hex of `<ms>.<id>` of the last item seen.
pub fn cursor(ms: i64, id: &str) -> String {
    hex::encode(format!("{ms}.{id}"))
}

/// The `(ms, id)` of a [`cursor`]; `None` when it is not one.
pub fn parse_cursor(raw: &str) -> Option<(i64, String)> {
    let text = String::from_utf8(hex::decode(raw).ok()?).ok()?;
    let (ms, id) = text.split_once('.')?;
    Some((ms.parse().ok()?, id.to_string()))
}

pub fn template(t: &Template) -> Value {
    let content = template_content(t);
    let unsendable = content.unsendable_reason();
    let mut view = json!({
        "id": t.id,
        "name": t.name,
        "language": t.language,
        "category": t.category,
        "status": t.status,
        "appId": if t.app_id.is_empty() { Value::Null } else { Value::String(t.app_id.clone()) },
        "message": if t.message.is_empty() { Value::Null } else { Value::String(t.message.clone()) },
        "params": content.params(),
        "header": t.header,
        "footer": t.footer,
        "buttons": t.buttons,
        "groupName": t.group_name,
        "active": t.active,
        "sendable": unsendable.is_none(),
        "unsendableReason": unsendable,
        "createdAt": format_ms(t.created_at),
        "updatedAt": format_ms(t.updated_at),
    });
    if let Value::Object(fields) = &mut view {
        if !content.extra.carousel.is_empty() {
            fields.insert("carousel".into(), json!(content.extra.carousel));
        }
        if let Some(offer) = &content.extra.limited_time_offer {
            fields.insert("limitedTimeOffer".into(), json!(offer));
        }
        if let Some(format) = &content.extra.parameter_format {
            fields.insert("parameterFormat".into(), json!(format));
        }
    }
    view
}

/// A template as the native and admin APIs show it: [`template`] and, once Meta has reported
/// on it, its `health` (status event and reason, disable date, flag, quality score, a pending
/// category change). The compatible API's envelopes keep [`template`].
pub fn template_with_health(t: &Template, health: Option<&TemplateHealth>) -> Value {
    let mut view = template(t);
    if let (Value::Object(fields), Some(health)) = (&mut view, health) {
        fields.insert("health".into(), health.view());
    }
    view
}

/// A channel with its quality as Meta last reported it (`quality`).
pub fn channel_with_quality(c: &Channel, quality: Option<&ChannelQuality>) -> Value {
    let mut view = channel(c);
    if let Value::Object(fields) = &mut view {
        let quality = quality.cloned().unwrap_or_default();
        fields.insert("qualityRating".into(), json!(quality.quality_rating));
        fields.insert("quality".into(), quality.view());
    }
    view
}

pub fn account(a: &Account) -> Value {
    json!({
        "id": a.id,
        "name": a.name,
        "conversationLimit": a.conversation_limit,
        "quietHours": a.quiet_hours.map(|(start, end)| json!({
            "start": crate::domain::quiet_hours::format_minutes(start),
            "end": crate::domain::quiet_hours::format_minutes(end),
        })),
        "createdAt": format_ms(a.created_at),
        "updatedAt": format_ms(a.updated_at),
    })
}

/// A channel without its secrets: only whether each is set.
pub fn channel(c: &Channel) -> Value {
    json!({
        "id": c.id,
        "accountId": c.account_id,
        "name": c.name,
        "provider": c.provider,
        "phoneNumberId": c.phone_number_id,
        "wabaId": c.waba_id,
        "accessTokenSet": !c.access_token.is_empty(),
        "appSecretSet": !c.app_secret.is_empty(),
        "verifyTokenSet": !c.verify_token.is_empty(),
        "status": c.status,
        "messagesPerSecond": c.messages_per_second,
        "health": c.health,
        "healthError": c.health_error,
        "messagingLimit": c.messaging_limit,
        "createdAt": format_ms(c.created_at),
        "updatedAt": format_ms(c.updated_at),
    })
}

pub fn group(g: &Group) -> Value {
    json!({
        "id": g.id,
        "accountId": g.account_id,
        "name": g.name,
        "channelIds": g.channel_ids,
        "createdAt": format_ms(g.created_at),
    })
}

/// A conversation as every API shows it ([`crate::api::messages::Conversation`]).
pub fn conversation(c: &Conversation) -> Value {
    json!(crate::api::messages::Conversation::from(c))
}

pub fn message(m: &Message) -> Value {
    json!({
        "id": m.id,
        "conversationId": m.conversation_id,
        "channelId": m.channel_id,
        "templateId": m.template_id,
        "phoneNumber": m.phone_number,
        "status": m.status.as_str(),
        "providerMessageId": m.provider_message_id,
        "waId": m.wa_id,
        "params": m.params,
        "attempts": m.attempts,
        "error": m.error,
        "pricingCategory": m.pricing_category,
        "pricing": m.pricing.as_ref().map(crate::store::Pricing::view),
        "statusTimes": {
            "queued": format_ms(m.queued_at),
            "sending": time(m.sending_at),
            "sent": time(m.sent_at),
            "delivered": time(m.delivered_at),
            "read": time(m.read_at),
            "failed": time(m.failed_at),
            "cancelled": time(m.cancelled_at),
        },
        "scheduledFor": time(m.scheduled_for),
        "heldUntil": time(m.held_until),
        "heldReason": m.held_reason,
        "createdAt": format_ms(m.queued_at),
        "updatedAt": format_ms(m.updated_at),
    })
}

/// An inbound message as listed in a conversation's thread (`direction: "inbound"`): the
/// `message.received` data.
pub fn inbound_message(m: &InboundMessage) -> Value {
    json!(crate::api::messages::InboundMessage::from(m))
}
