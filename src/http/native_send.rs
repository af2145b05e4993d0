//! The native API's send shapes: a send's body fields (`to`, the template, `params`, `header`,
//! `buttons`, `cards`, …) into a [`SendRequest`], and a refused send into its problem, naming
//! the native field a value came from.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::problem::Problem;
use crate::api::compat::{Currency, DateTime, SendButton, SendCard, SendHeader, TypedParam};
use crate::api::messages::{self as api, BatchRecipient, ParamValue};
use crate::api::templates::TemplatePreviewRequest;
use crate::domain::ids::{ChannelId, ConversationId};
use crate::domain::phone::PhoneNumber;
use crate::domain::template::first_control;
use crate::service::batch::MAX_RECIPIENTS;
use crate::service::input::{FieldError, describe};
use crate::service::send::{SendError, TemplateRef};

/// The problem of a refused send; `field_prefix` locates fields of a batch recipient.
pub fn send_problem(e: SendError, field_prefix: &str) -> Problem {
    let f = |name: &str| format!("{field_prefix}{name}");
    match e {
        SendError::TemplateNotFound(t) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "template-not-found",
            "Template not found",
            format!("the account has no template {t}"),
        )
        .errors(vec![FieldError::new(f("templateId"), "no such template")]),
        SendError::TemplateIncomplete(missing) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "template-incomplete",
            "Template incomplete",
            format!("the template has no {}", missing.join(" and ")),
        )
        .with(|p| p.missing = Some(missing.iter().map(|m| m.to_string()).collect())),
        SendError::TemplateNotSendable { status, reason } => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "template-not-sendable",
            "Template cannot be sent",
            reason,
        )
        .with(|p| p.template_status = Some(status.as_str().into())),
        SendError::TemplateUnsupported(reason) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "template-not-sendable",
            "Template cannot be sent",
            format!("the template cannot be sent: {reason}"),
        )
        .errors(vec![FieldError::new("template.components", reason)]),
        SendError::InvalidParams(invalid) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-params",
            "Template values refused",
            invalid
                .iter()
                .map(|v| v.message.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        )
        .errors(
            invalid
                .iter()
                .map(|v| FieldError::new(f(&native_field(&v.key)), v.message.clone()))
                .collect(),
        ),
        SendError::ChannelNotConnected(status) => Problem::new(
            StatusCode::CONFLICT,
            "channel-not-connected",
            "Channel not connected",
            format!("the channel is {status}; ask the operator to connect it"),
        )
        .with(|p| p.channel_status = Some(status)),
        SendError::MissingParams { missing, detail } => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing-params",
            "Template params missing or refused",
            detail.join("; "),
        )
        .errors(
            missing
                .iter()
                .zip(detail.iter())
                .map(|(m, d)| FieldError::new(f(&native_field(m)), d.clone()))
                .collect(),
        ),
        SendError::GroupNotFound(name) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "group-not-found",
            "Group not found",
            format!("the account has no group named '{name}'"),
        )
        .errors(vec![FieldError::new(f("groupName"), "no such group")]),
        SendError::RecipientOptedOut => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "recipient-opted-out",
            "Recipient opted out",
            "the recipient has opted out of marketing messages from this account; only UTILITY and AUTHENTICATION templates can be sent to it",
        )
        .errors(vec![FieldError::new(
            f("to"),
            "has opted out of marketing messages",
        )]),
        SendError::ConversationLimit { limit } => Problem::new(
            StatusCode::PAYMENT_REQUIRED,
            "conversation-limit",
            "Conversation limit reached",
            format!(
                "the account has used the {limit} new conversations of its plan this month (UTC)"
            ),
        )
        .with(|p| p.conversation_limit = Some(limit)),
        SendError::SendAtBeyondHorizon { horizon_days } => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "send-at-beyond-horizon",
            "Send time too far ahead",
            format!("sendAt may be at most {horizon_days} days ahead"),
        )
        .errors(vec![FieldError::new(
            f("sendAt"),
            format!("more than {horizon_days} days ahead"),
        )]),
        SendError::IdempotencyKeyReused => Problem::idempotency_key_reused(),
        SendError::Internal(e) => Problem::internal(&e),
    }
}

/// The native field a send value came from: `header.link` → `header.link`,
/// `button.1.coupon_code` → `buttons[index=1].couponCode`, `card.0.1` → `cards[0].params.1`,
/// `offer.expiration_time_ms` → `offerExpiresAt`, a placeholder → `params.<name>`.
pub fn native_field(key: &str) -> String {
    fn camel(s: &str) -> String {
        let mut out = String::new();
        let mut up = false;
        for c in s.chars() {
            if c == '_' {
                up = true;
            } else if up {
                out.extend(c.to_uppercase());
                up = false;
            } else {
                out.push(c);
            }
        }
        out
    }
    let parts: Vec<&str> = key.split('.').collect();
    match parts.as_slice() {
        ["header", field] => format!("header.{}", camel(field)),
        ["header"] => "header".into(),
        ["button", i, field] => format!("buttons[index={i}].{}", camel(field)),
        ["offer", _] => "offerExpiresAt".into(),
        ["card", c] => format!("cards[{c}]"),
        ["cards", ..] => "cards".into(),
        ["card", c, "header"] => format!("cards[{c}].header"),
        ["card", c, "header", field] => format!("cards[{c}].header.{}", camel(field)),
        ["card", c, "button", i, field] => {
            format!("cards[{c}].buttons[index={i}].{}", camel(field))
        }
        ["card", c, name] => format!("cards[{c}].params.{name}"),
        ["params"] => "params".into(),
        _ => format!("params.{key}"),
    }
}

pub(crate) fn pending_problem(conversation_id: &ConversationId, prefix: &str) -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        "conversation-pending",
        "Conversation pending",
        "an earlier template to this number is not confirmed by WhatsApp yet; nothing was sent",
    )
    .with(|p| {
        p.conversation_id = Some(conversation_id.clone());
        p.field = Some(format!("{prefix}to"));
    })
}

pub(crate) fn opt_string(
    obj: &Map<String, Value>,
    key: &str,
    prefix: &str,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    match obj.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(Value::String(_)) => {
            errors.push(FieldError::new(
                format!("{prefix}{key}"),
                "must not be empty",
            ));
            None
        }
        Some(v) => {
            errors.push(FieldError::new(
                format!("{prefix}{key}"),
                format!("must be a string, got {}", describe(v)),
            ));
            None
        }
    }
}

/// The template of a send: `templateId`, or `templateName` with `language`.
pub(crate) fn template_ref(
    obj: &Map<String, Value>,
    errors: &mut Vec<FieldError>,
) -> Option<TemplateRef> {
    let id = opt_string(obj, "templateId", "", errors);
    let name = opt_string(obj, "templateName", "", errors);
    let language = opt_string(obj, "language", "", errors);
    match (id, name, language) {
        (Some(id), None, None) => Some(TemplateRef::Id(id.into())),
        (None, Some(name), Some(language)) => Some(TemplateRef::Name { name, language }),
        (None, Some(_), None) => {
            errors.push(FieldError::new("language", "is required with templateName"));
            None
        }
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            errors.push(FieldError::new(
                "templateId",
                "give templateId or templateName with language, not both",
            ));
            None
        }
        _ => {
            errors.push(FieldError::new(
                "templateId",
                "is required (or templateName with language)",
            ));
            None
        }
    }
}

/// The body of `POST /v1/messages`: `channelId`, the template, the recipient's fields.
pub(crate) fn send_request(
    obj: &Map<String, Value>,
    errors: &mut Vec<FieldError>,
) -> Option<api::SendRequest> {
    let channel_id = opt_string(obj, "channelId", "", errors).map(ChannelId::from);
    let template = template_ref(obj, errors);
    let recipient = recipient(obj, "", errors);
    if !errors.is_empty() {
        return None;
    }
    Some(api::SendRequest::new(channel_id, template?, recipient?))
}

/// The body of `POST /v1/messages/batch`: `channelId`, the template, `sendAt` and the
/// recipients, each read on its own (a bad one is refused with its errors, the others go).
pub(crate) fn batch_request(
    obj: &Map<String, Value>,
    errors: &mut Vec<FieldError>,
) -> Option<api::BatchRequest> {
    let channel_id = opt_string(obj, "channelId", "", errors).map(ChannelId::from);
    let template = template_ref(obj, errors);
    let recipients = match obj.get("recipients") {
        Some(Value::Array(items)) if !items.is_empty() && items.len() <= MAX_RECIPIENTS => {
            items.as_slice()
        }
        Some(Value::Array(items)) => {
            errors.push(FieldError::new(
                "recipients",
                format!(
                    "must hold 1 to {MAX_RECIPIENTS} recipients, got {}",
                    items.len()
                ),
            ));
            &[]
        }
        _ => {
            errors.push(FieldError::new(
                "recipients",
                "is required: an array of {to, params, …}",
            ));
            &[]
        }
    };
    let batch_send_at = send_at(obj, "", errors);
    let (Some(template), true) = (template, errors.is_empty()) else {
        return None;
    };
    let recipients = recipients
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut errors = Vec::new();
            let parsed = match r {
                Value::Object(o) => recipient(o, &format!("recipients[{i}]."), &mut errors),
                other => {
                    errors.push(FieldError::new(
                        format!("recipients[{i}]"),
                        format!("must be an object, got {}", describe(other)),
                    ));
                    None
                }
            };
            parsed.ok_or(errors)
        })
        .collect();
    Some(api::BatchRequest::new(
        channel_id,
        template,
        batch_send_at,
        recipients,
    ))
}

/// One recipient's fields: `to`, the send's values, `clientName`, `groupName`, `assign`,
/// `callbackUrl`, `metadata`, `sendAt`. Errors are collected with `prefix` (e.g.
/// `recipients[3].`).
pub(crate) fn recipient(
    obj: &Map<String, Value>,
    prefix: &str,
    errors: &mut Vec<FieldError>,
) -> Option<BatchRecipient> {
    let before = errors.len();
    let phone = match obj.get("to") {
        Some(Value::String(s)) => match PhoneNumber::parse(s) {
            Ok(p) => Some(p),
            Err(e) => {
                errors.push(FieldError::new(format!("{prefix}to"), e.to_string()));
                None
            }
        },
        None | Some(Value::Null) => {
            errors.push(FieldError::new(
                format!("{prefix}to"),
                "is required: the recipient's number, country code first, digits only",
            ));
            None
        }
        Some(v) => {
            errors.push(FieldError::new(
                format!("{prefix}to"),
                format!("must be a string, got {}", describe(v)),
            ));
            None
        }
    };
    let values = send_value_parts(obj, prefix, errors);
    let client_name = opt_string(obj, "clientName", prefix, errors);
    if let Some(c) = client_name.as_deref().and_then(first_control) {
        errors.push(FieldError::new(
            format!("{prefix}clientName"),
            format!(
                "contains a control character (U+{:04X}), which WhatsApp does not accept",
                u32::from(c)
            ),
        ));
    }
    let group_name = opt_string(obj, "groupName", prefix, errors);
    let assign = match obj.get("assign") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(v) => {
            errors.push(FieldError::new(
                format!("{prefix}assign"),
                format!("must be true or false, got {}", describe(v)),
            ));
            None
        }
    };
    let callback_url = opt_string(obj, "callbackUrl", prefix, errors);
    if let Some(url) = &callback_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        errors.push(FieldError::new(
            format!("{prefix}callbackUrl"),
            "must be an http:// or https:// URL",
        ));
    }
    let metadata = match obj.get("metadata") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) if Value::Object(m.clone()).to_string().len() <= 4096 => {
            Some(m.clone())
        }
        Some(Value::Object(_)) => {
            errors.push(FieldError::new(
                format!("{prefix}metadata"),
                "must be at most 4 KiB of JSON",
            ));
            None
        }
        Some(v) => {
            errors.push(FieldError::new(
                format!("{prefix}metadata"),
                format!("must be an object, got {}", describe(v)),
            ));
            None
        }
    };
    let send_at = send_at(obj, prefix, errors);
    if errors.len() > before {
        return None;
    }
    Some(BatchRecipient {
        to: phone?,
        params: values.params,
        header: values.header,
        buttons: values.buttons,
        cards: values.cards,
        offer_expires_at: values.offer_expires_at,
        client_name,
        group_name,
        assign,
        callback_url,
        metadata,
        send_at,
    })
}

/// `sendAt`: an RFC 3339 time with its offset (a past one means now).
pub(crate) fn send_at(
    obj: &Map<String, Value>,
    prefix: &str,
    errors: &mut Vec<FieldError>,
) -> Option<i64> {
    let field = format!("{prefix}sendAt");
    match obj.get("sendAt") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match chrono::DateTime::parse_from_rfc3339(s.trim()) {
            Ok(t) => Some(t.timestamp_millis()),
            Err(_) => {
                errors.push(FieldError::new(
                    field,
                    format!("must be an RFC 3339 time such as 2026-11-25T09:00:00Z, got '{s}'"),
                ));
                None
            }
        },
        Some(v) => {
            errors.push(FieldError::new(
                field,
                format!("must be an RFC 3339 time string, got {}", describe(v)),
            ));
            None
        }
    }
}

/// The values of a send (`params`, `header`, `buttons`, `cards`, `offerExpiresAt`). Shapes are
/// checked here; whether they fit the template is checked with the template, before anything
/// is queued.
pub(crate) fn send_value_parts(
    obj: &Map<String, Value>,
    prefix: &str,
    errors: &mut Vec<FieldError>,
) -> TemplatePreviewRequest {
    let mut params = None;
    match obj.get("params") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            let params = params.get_or_insert_with(BTreeMap::new);
            for (k, v) in map {
                if let Some(text) = param_text(v) {
                    params.insert(k.clone(), ParamValue::Text(text));
                    continue;
                }
                match v {
                    Value::Null => {}
                    Value::Object(typed) => {
                        if let Some(t) = typed_param(typed, &format!("{prefix}params.{k}"), errors)
                        {
                            params.insert(k.clone(), ParamValue::Typed(t));
                        }
                    }
                    other => errors.push(FieldError::new(
                        format!("{prefix}params.{k}"),
                        format!(
                            "must be a string, number, boolean or a typed parameter ({{\"currency\": …}} or {{\"dateTime\": …}}), got {}",
                            describe(other)
                        ),
                    )),
                }
            }
        }
        Some(v) => errors.push(FieldError::new(
            format!("{prefix}params"),
            format!("must be an object, got {}", describe(v)),
        )),
    }
    let mut values = TemplatePreviewRequest {
        params,
        header: None,
        buttons: None,
        cards: None,
        offer_expires_at: None,
    };
    rich_values(obj, prefix, &mut values, errors);
    values
}

/// A typed parameter: `{"currency": {"fallbackValue", "code", "amount1000"}}` or
/// `{"dateTime": {"fallbackValue"}}`; `None` (the refusal in `errors`) otherwise.
fn typed_param(
    typed: &Map<String, Value>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<TypedParam> {
    let fallback = |v: &Value, at: &str, errors: &mut Vec<FieldError>| match v.get("fallbackValue")
    {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        _ => {
            errors.push(FieldError::new(
                format!("{at}.fallbackValue"),
                "is required: the text shown where the value cannot be localized",
            ));
            None
        }
    };
    match (typed.get("currency"), typed.get("dateTime"), typed.len()) {
        (Some(c), None, 1) => {
            let at = format!("{field}.currency");
            let text = fallback(c, &at, errors)?;
            let code = c.get("code").and_then(Value::as_str);
            let amount = c.get("amount1000").and_then(Value::as_i64);
            let valid = |c: &str| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase());
            match (code, amount) {
                (Some(code), Some(amount)) if valid(code) => {
                    let currency = Currency {
                        fallback_value: text,
                        code: code.to_string(),
                        amount1000: amount,
                    };
                    Some(TypedParam::Currency(currency))
                }
                (Some(code), _) if !valid(code) => {
                    errors.push(FieldError::new(
                        format!("{at}.code"),
                        "must be an ISO 4217 code in capitals, such as USD",
                    ));
                    None
                }
                _ => {
                    errors.push(FieldError::new(
                        at,
                        "needs code (ISO 4217, e.g. USD) and amount1000 (the amount times 1000, an integer)",
                    ));
                    None
                }
            }
        }
        (None, Some(d), 1) => {
            let at = format!("{field}.dateTime");
            let text = fallback(d, &at, errors)?;
            Some(TypedParam::DateTime(DateTime {
                fallback_value: text,
            }))
        }
        _ => {
            errors.push(FieldError::new(
                field,
                "an object must be a typed parameter: {\"currency\": {…}} or {\"dateTime\": {…}}",
            ));
            None
        }
    }
}

/// A JSON scalar as the text a param carries (strings as they are, numbers as written,
/// booleans as `true`/`false`); None for anything else.
fn param_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `header`, `buttons`, `cards` and `offerExpiresAt` of a send.
fn rich_values(
    obj: &Map<String, Value>,
    prefix: &str,
    values: &mut TemplatePreviewRequest,
    errors: &mut Vec<FieldError>,
) {
    if let Some(v) = obj.get("header").filter(|v| !v.is_null()) {
        values.header = header_values(v, &format!("{prefix}header"), errors);
    }
    if let Some(v) = obj.get("buttons").filter(|v| !v.is_null()) {
        values.buttons = button_values(v, &format!("{prefix}buttons"), errors);
    }
    match obj.get("cards") {
        None | Some(Value::Null) => {}
        Some(Value::Array(cards)) => {
            let given = values.cards.insert(Vec::new());
            for (c, card) in cards.iter().enumerate() {
                let at = format!("{prefix}cards[{c}]");
                let Value::Object(card) = card else {
                    errors.push(FieldError::new(
                        at,
                        format!("must be an object, got {}", describe(card)),
                    ));
                    continue;
                };
                for key in card.keys() {
                    if !["header", "params", "buttons"].contains(&key.as_str()) {
                        errors.push(FieldError::new(
                            format!("{at}.{key}"),
                            "is not a field of a card (header, params, buttons)",
                        ));
                    }
                }
                let mut values = SendCard::default();
                if let Some(h) = card.get("header").filter(|v| !v.is_null()) {
                    values.header = header_values(h, &format!("{at}.header"), errors);
                }
                match card.get("params") {
                    None | Some(Value::Null) => {}
                    Some(Value::Object(map)) => {
                        let texts = values.params.get_or_insert_default();
                        for (k, v) in map {
                            match param_text(v) {
                                Some(text) => {
                                    texts.insert(k.clone(), text);
                                }
                                None if v.is_null() => {}
                                None => errors.push(FieldError::new(
                                    format!("{at}.params.{k}"),
                                    format!(
                                        "must be a string, number or boolean, got {}",
                                        describe(v)
                                    ),
                                )),
                            }
                        }
                    }
                    Some(v) => errors.push(FieldError::new(
                        format!("{at}.params"),
                        format!("must be an object, got {}", describe(v)),
                    )),
                }
                if let Some(b) = card.get("buttons").filter(|v| !v.is_null()) {
                    values.buttons = button_values(b, &format!("{at}.buttons"), errors);
                }
                given.push(values);
            }
        }
        Some(v) => errors.push(FieldError::new(
            format!("{prefix}cards"),
            format!("must be an array of cards, got {}", describe(v)),
        )),
    }
    match obj.get("offerExpiresAt") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) => values.offer_expires_at = Some(t.timestamp_millis()),
            Err(_) => errors.push(FieldError::new(
                format!("{prefix}offerExpiresAt"),
                format!("must be an RFC 3339 time such as 2026-12-31T23:59:00Z, got \"{s}\""),
            )),
        },
        Some(v) => errors.push(FieldError::new(
            format!("{prefix}offerExpiresAt"),
            format!("must be an RFC 3339 time as a string, got {}", describe(v)),
        )),
    }
}

/// A [`SendHeader`]; `None` (the refusal in `errors`) when it is not an object.
fn header_values(v: &Value, at: &str, errors: &mut Vec<FieldError>) -> Option<SendHeader> {
    let Value::Object(h) = v else {
        errors.push(FieldError::new(
            at,
            format!(
                "must be an object: {{\"link\"|\"id\", \"filename\"}} for media, {{\"latitude\", \"longitude\", \"name\", \"address\"}} for a location; got {}",
                describe(v)
            ),
        ));
        return None;
    };
    let mut header = SendHeader::default();
    for (k, value) in h {
        let known = [
            "type",
            "link",
            "id",
            "filename",
            "latitude",
            "longitude",
            "name",
            "address",
        ];
        if !known.contains(&k.as_str()) {
            errors.push(FieldError::new(
                format!("{at}.{k}"),
                "is not a field of a header (type, link, id, filename, latitude, longitude, name, address)",
            ));
            continue;
        }
        if value.is_null() {
            continue;
        }
        const TYPES: [&str; 8] = [
            "image", "video", "gif", "document", "IMAGE", "VIDEO", "GIF", "DOCUMENT",
        ];
        let numeric = k == "latitude" || k == "longitude";
        match (numeric, value) {
            // The header's media type, as openapi.json lists it (a 400 here, as the document
            // says, rather than a mismatch found later against the template).
            // A media link or id is never empty (openapi.json: minLength 1).
            (_, Value::String(s)) if (k == "link" || k == "id") && s.trim().is_empty() => {
                errors.push(FieldError::new(format!("{at}.{k}"), "must not be empty"));
            }
            (_, Value::String(s)) if k == "type" && !TYPES.contains(&s.as_str()) => {
                errors.push(FieldError::new(
                    format!("{at}.{k}"),
                    format!("must be image, video, gif or document, got '{s}'"),
                ));
            }
            (_, Value::String(s)) => {
                if let Some(field) = header.field(k) {
                    *field = Some(s.clone());
                }
            }
            (true, Value::Number(n)) => {
                if let Some(field) = header.field(k) {
                    *field = Some(n.to_string());
                }
            }
            _ => errors.push(FieldError::new(
                format!("{at}.{k}"),
                format!(
                    "must be a {}, got {}",
                    if numeric { "number" } else { "string" },
                    describe(value)
                ),
            )),
        }
    }
    Some(header)
}

/// The [`SendButton`]s given (the refusals in `errors`); `None` when not an array.
fn button_values(v: &Value, at: &str, errors: &mut Vec<FieldError>) -> Option<Vec<SendButton>> {
    let Value::Array(buttons) = v else {
        errors.push(FieldError::new(
            at,
            format!("must be an array of {{\"index\", …}}, got {}", describe(v)),
        ));
        return None;
    };
    let mut values = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (n, b) in buttons.iter().enumerate() {
        let here = format!("{at}[{n}]");
        let Value::Object(b) = b else {
            errors.push(FieldError::new(
                here,
                format!("must be an object, got {}", describe(b)),
            ));
            continue;
        };
        let Some(index) = b.get("index").and_then(Value::as_u64).filter(|i| *i < 10) else {
            errors.push(FieldError::new(
                format!("{here}.index"),
                "is required: the button's position among the template's buttons, 0 to 9",
            ));
            continue;
        };
        if !seen.insert(index) {
            errors.push(FieldError::new(
                format!("{here}.index"),
                format!("gives button {index} twice"),
            ));
            continue;
        }
        let mut button = SendButton {
            index: index as u8,
            ..SendButton::default()
        };
        for (k, value) in b {
            let target = match k.as_str() {
                "index" => continue,
                "payload" => "payload",
                "couponCode" => "coupon_code",
                "flowToken" => "flow_token",
                "flowActionData" => "flow_action_data",
                "action" => "action",
                _ => {
                    errors.push(FieldError::new(
                        format!("{here}.{k}"),
                        "is not a field of a button value (index, payload, couponCode, flowToken, flowActionData, action)",
                    ));
                    continue;
                }
            };
            match (target, value) {
                ("flow_action_data", Value::Object(o)) => button.flow_action_data = Some(o.clone()),
                ("action", Value::Object(o)) => button.action = Some(o.clone()),
                ("flow_action_data" | "action", _) => {
                    errors.push(FieldError::new(
                        format!("{here}.{k}"),
                        format!("must be an object, got {}", describe(value)),
                    ));
                    continue;
                }
                ("payload", Value::String(s)) => button.payload = Some(s.clone()),
                ("coupon_code", Value::String(s)) => button.coupon_code = Some(s.clone()),
                ("flow_token", Value::String(s)) => button.flow_token = Some(s.clone()),
                _ => {
                    errors.push(FieldError::new(
                        format!("{here}.{k}"),
                        format!("must be a string, got {}", describe(value)),
                    ));
                    continue;
                }
            }
        }
        values.push(button);
    }
    Some(values)
}
