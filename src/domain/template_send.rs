//! What one send puts into a template: the values chosen per send (media of the header, a
//! location, button payloads and codes, carousel cards, an offer's expiry, typed parameters),
//! checked the way Meta would check them, then turned into the `components` of a Cloud API
//! template send, or into the text a recipient would see (a preview). No I/O.
//!
//! # Values travel as params
//!
//! A message keeps one `{key: value}` map of strings. Placeholders are keyed by their names
//! (`order_id`, `1`); everything else uses reserved dotted keys, which cannot collide with
//! Meta's parameter names (lowercase letters, digits and underscores):
//!
//! | key | for |
//! |---|---|
//! | `header.link`, `header.id`, `header.filename`, `header.type` | IMAGE, VIDEO, GIF, DOCUMENT headers (`type` must match the template's) |
//! | `header.latitude`, `header.longitude`, `header.name`, `header.address` | LOCATION headers |
//! | `button.<i>.payload` | QUICK_REPLY |
//! | `button.<i>.coupon_code` | COPY_CODE |
//! | `button.<i>.flow_token`, `button.<i>.flow_action_data` (JSON object) | FLOW |
//! | `button.<i>.action` (JSON object) | CATALOG, MPM |
//! | `card.<c>.<placeholder>`, `card.<c>.header.link` / `.id`, `card.<c>.button.<i>.payload` / `.coupon_code` | carousel card `c` |
//! | `offer.expiration_time_ms` | limited-time offers with an expiry |
//! | `<placeholder>.currency` (JSON `{"code","amount_1000"}`), `<placeholder>.date_time` (any value) | a body placeholder sent as a typed parameter; its own value is the fallback text |
//!
//! `<i>` is the button's index as Meta counts it (its position among the template's buttons).
//!
//! Meta pages followed: "Template components" (send-time syntax of each component),
//! "Template media", "Limited-time offer templates", "Media card carousel templates",
//! "Authentication templates" (the code goes in the body and in the button), "Coupon code
//! templates" (codes of at most 15 characters), "Supported media types".

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::template::{
    Button, Card, Header, MediaRef, Placeholder, TemplateContent, check_media_id, check_media_link,
    check_params, first_control, render,
};

/// Longest coupon code Meta accepts.
pub const MAX_COUPON_CODE: usize = 15;
/// Longest quick-reply payload accepted.
pub const MAX_PAYLOAD: usize = 1000;
/// Longest flow token accepted.
pub const MAX_FLOW_TOKEN: usize = 1000;
/// Longest body once rendered (Meta: 1,024 characters).
pub const MAX_BODY: usize = 1024;
/// Longest text header once rendered (Meta: 60 characters).
pub const MAX_TEXT_HEADER: usize = 60;
/// Longest carousel card body once rendered (Meta: 160 characters).
pub const MAX_CARD_BODY: usize = 160;
/// Longest location name or address accepted.
pub const MAX_LOCATION_TEXT: usize = 1000;

/// Why a send's values cannot go out: the params missing (the API's `Missing params:[…]`,
/// with a sentence each) and the values given but wrong (each with its key).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendProblems {
    pub missing: Vec<String>,
    pub missing_detail: Vec<String>,
    pub invalid: Vec<InvalidValue>,
}

/// One value given but wrong: its key (`header.link`, `button.1.coupon_code`, `card.2`) and
/// what is wrong, as a sentence that starts with the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidValue {
    pub key: String,
    pub message: String,
}

impl SendProblems {
    fn missing(&mut self, key: impl Into<String>, why: impl Into<String>) {
        let key = key.into();
        if !self.missing.contains(&key) {
            self.missing.push(key);
            self.missing_detail.push(why.into());
        }
    }

    fn invalid(&mut self, key: impl Into<String>, message: impl Into<String>) {
        let key = key.into();
        let message = message.into();
        self.invalid.push(InvalidValue {
            message: format!("{key} {message}"),
            key,
        });
    }

    fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.invalid.is_empty()
    }
}

/// The media a send gives for a header (or a card's header), read from its keys.
fn media_of(params: &BTreeMap<String, String>, prefix: &str) -> Option<MediaRef> {
    let get = |k: &str| params.get(&format!("{prefix}.{k}")).cloned();
    let media = MediaRef {
        link: get("link"),
        id: get("id"),
        filename: get("filename"),
    };
    (media.link.is_some() || media.id.is_some()).then_some(media)
}

/// Checks a send's values against the template: what [`check_params`] checks for the
/// placeholders, plus every reserved key (see the module's table). `now_ms` is for an offer's
/// expiry, which must be in the future.
pub fn check_send(
    content: &TemplateContent,
    params: &BTreeMap<String, String>,
    now_ms: i64,
) -> Result<(), SendProblems> {
    let mut p = SendProblems::default();

    // Placeholders (header text, body, URL buttons, cards).
    let required = content.params();
    if let Err(problems) = check_params(&required, params) {
        for (name, sentence) in problems.missing.iter().zip(problems.detail()) {
            p.missing(name.clone(), sentence);
        }
    }

    // Reserved keys: each must name something the template has.
    for key in params.keys() {
        if let Some(message) = unknown_key(content, key, &required) {
            p.invalid(key.clone(), message);
        }
    }

    check_header(content.header.as_ref(), params, "header", &mut p);
    check_buttons(&content.buttons, params, "button", &content.body, &mut p);
    check_typed(params, &mut p);
    check_cards(&content.extra.carousel, params, &mut p);

    if let Some(offer) = &content.extra.limited_time_offer
        && offer.has_expiration
    {
        match params.get("offer.expiration_time_ms") {
            None => p.missing(
                "offer.expiration_time_ms",
                "offer.expiration_time_ms is missing: the offer's expiry, in milliseconds since 1970",
            ),
            Some(v) => match v.trim().parse::<i64>() {
                Ok(ms) if ms > now_ms => {}
                Ok(_) => p.invalid(
                    "offer.expiration_time_ms",
                    "is in the past: the offer would show as expired",
                ),
                Err(_) => p.invalid(
                    "offer.expiration_time_ms",
                    format!("must be whole milliseconds since 1970, got \"{v}\""),
                ),
            },
        }
    }

    // Every other value (reserved keys, params the template does not use, which are stored
    // with the message): no control characters, which WhatsApp refuses. A flow's action
    // data is JSON text, where line breaks and tabs are only spacing.
    for (key, value) in params {
        if first_control(key).is_some() {
            p.invalid("params", "has a name with a control character");
            continue;
        }
        let named = |k: &String| k == key;
        if required.iter().any(named)
            || p.missing.iter().any(named)
            || p.invalid.iter().any(|v| &v.key == key)
        {
            continue;
        }
        let found = if key.ends_with(".flow_action_data") {
            value
                .chars()
                .find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        } else {
            first_control(value)
        };
        if let Some(c) = found {
            p.invalid(
                key.clone(),
                format!(
                    "contains a control character (U+{:04X}), which WhatsApp does not accept",
                    u32::from(c)
                ),
            );
        }
    }

    // Lengths once rendered (only meaningful when the placeholders are fine).
    if p.is_empty() {
        let body = render(&content.body, params);
        let n = body.chars().count();
        if n > MAX_BODY {
            p.invalid(
                "params",
                format!("make the body {n} characters long; WhatsApp allows {MAX_BODY}"),
            );
        }
        if let Some(Header::Text { text }) = &content.header {
            let n = render(text, params).chars().count();
            if n > MAX_TEXT_HEADER {
                p.invalid(
                    "params",
                    format!(
                        "make the text header {n} characters long; WhatsApp allows {MAX_TEXT_HEADER}"
                    ),
                );
            }
        }
        for (c, card) in content.extra.carousel.iter().enumerate() {
            let n = render(&card.body, &card_params(params, c)).chars().count();
            if n > MAX_CARD_BODY {
                p.invalid(
                    format!("card.{c}"),
                    format!("body would be {n} characters long; WhatsApp allows {MAX_CARD_BODY}"),
                );
            }
        }
    }

    if p.is_empty() { Ok(()) } else { Err(p) }
}

/// Why a key does not fit the template, when it is a reserved (dotted) key that names nothing
/// the template has. Plain names that are not placeholders are ignored, as always.
fn unknown_key(content: &TemplateContent, key: &str, required: &[String]) -> Option<String> {
    if !key.contains('.') || required.iter().any(|r| r == key) {
        return None;
    }
    let parts: Vec<&str> = key.split('.').collect();
    match parts.as_slice() {
        ["header", field] => header_key_problem(content.header.as_ref(), field),
        ["cards", "given"] => None,
        ["button", index, field] => button_key_problem(&content.buttons, index, field),
        ["offer", "expiration_time_ms"] => match &content.extra.limited_time_offer {
            Some(o) if o.has_expiration => None,
            Some(_) => Some("is not used: the template's offer shows no expiry".into()),
            None => Some("is not used: the template has no limited-time offer".into()),
        },
        ["card", c, rest @ ..] => {
            let cards = &content.extra.carousel;
            let Some(card) = c.parse::<usize>().ok().and_then(|c| cards.get(c)) else {
                return Some(if cards.is_empty() {
                    "is not used: the template is not a carousel".into()
                } else {
                    format!(
                        "names card {c}, but the template has {} cards (0 to {})",
                        cards.len(),
                        cards.len() - 1
                    )
                });
            };
            match rest {
                ["header", field] => header_key_problem(card.header.as_ref(), field),
                ["button", index, field] => button_key_problem(&card.buttons, index, field),
                [_] => Some("is not a placeholder of that card".into()),
                _ => Some("is not a field of a carousel card".into()),
            }
        }
        [name, "currency" | "date_time"] => {
            let body_names: BTreeSet<String> = super::template::parse_placeholders(&content.body)
                .unwrap_or_default()
                .iter()
                .map(|p| p.name().to_string())
                .collect();
            (!body_names.contains(*name))
                .then(|| format!("names {name}, which is not a placeholder of the body"))
        }
        _ if ["header", "button", "card", "offer"].contains(&parts[0]) => Some(
            "is not a field plantilla knows (see the API reference: header.*, button.<index>.*, card.<n>.*, offer.expiration_time_ms)"
                .into(),
        ),
        _ => None,
    }
}

fn header_key_problem(header: Option<&Header>, field: &str) -> Option<String> {
    let media_fields = ["link", "id", "filename", "type"];
    let location_fields = ["latitude", "longitude", "name", "address"];
    match header {
        Some(h) if h.media_kind().is_some() => {
            if media_fields.contains(&field) {
                None
            } else {
                Some(format!(
                    "is not a field of a {} header (link, id, filename)",
                    h.format()
                ))
            }
        }
        Some(Header::Location { .. }) => {
            if location_fields.contains(&field) {
                None
            } else {
                Some(
                    "is not a field of a LOCATION header (latitude, longitude, name, address)"
                        .into(),
                )
            }
        }
        Some(h) => Some(format!(
            "is not used: the template's header is {}, not media or a location",
            h.format()
        )),
        None => Some("is not used: the template has no header".into()),
    }
}

fn button_key_problem(buttons: &[Button], index: &str, field: &str) -> Option<String> {
    let Some(button) = index.parse::<usize>().ok().and_then(|i| buttons.get(i)) else {
        return Some(if buttons.is_empty() {
            "names a button, but the template has none".into()
        } else {
            format!(
                "names button {index}, but the template's buttons are 0 to {}",
                buttons.len() - 1
            )
        });
    };
    let fits = matches!(
        (button, field),
        (Button::QuickReply { .. }, "payload")
            | (Button::CopyCode { .. }, "coupon_code")
            | (Button::Flow { .. }, "flow_token" | "flow_action_data")
            | (Button::Catalog { .. } | Button::Mpm { .. }, "action")
    );
    if fits {
        return None;
    }
    let takes = match button {
        Button::QuickReply { .. } => "payload",
        Button::CopyCode { .. } => "coupon_code",
        Button::Flow { .. } => "flow_token and flow_action_data",
        Button::Catalog { .. } | Button::Mpm { .. } => "action",
        Button::Url { .. } => "its url's placeholder, by the placeholder's name",
        Button::Otp { .. } => "the code, given as the body's parameter",
        _ => "no value",
    };
    Some(format!(
        "does not fit button {index}, a {} button (it takes {takes})",
        button.kind()
    ))
}

fn check_header(
    header: Option<&Header>,
    params: &BTreeMap<String, String>,
    prefix: &str,
    p: &mut SendProblems,
) {
    let Some(header) = header else { return };
    let key = |k: &str| format!("{prefix}.{k}");
    if let Some(kind) = header.media_kind() {
        if let Some(t) = params.get(&key("type"))
            && !t.trim().eq_ignore_ascii_case(kind)
            && !t.trim().eq_ignore_ascii_case(header.format())
        {
            p.invalid(
                key("type"),
                format!(
                    "is \"{t}\", but the template's header is {}",
                    header.format()
                ),
            );
        }
        let given = media_of(params, prefix);
        match (&given, header.default_media()) {
            (None, None) => {
                if params.contains_key(&key("filename")) {
                    p.invalid(key("filename"), "is given without header.link or header.id");
                }
                p.missing(
                    prefix.to_string(),
                    format!(
                        "{prefix} is missing: the template's header is {}; give {prefix}.link (an http(s) URL) or {prefix}.id (a media id)",
                        header.format()
                    ),
                );
            }
            (Some(media), _) => check_media(media, header.format(), prefix, p),
            (None, Some(_)) => {
                if params.contains_key(&key("filename")) {
                    p.invalid(
                        key("filename"),
                        "is given without header.link or header.id (the default media has its own)",
                    );
                }
            }
        }
    } else if let Header::Location { .. } = header {
        for coord in ["latitude", "longitude"] {
            let limit = if coord == "latitude" { 90.0 } else { 180.0 };
            match params.get(&key(coord)) {
                None => p.missing(
                    key(coord),
                    format!(
                        "{} is missing: a LOCATION header needs latitude and longitude",
                        key(coord)
                    ),
                ),
                Some(v) => match v.trim().parse::<f64>() {
                    Ok(n) if n.is_finite() && n.abs() <= limit => {}
                    _ => p.invalid(
                        key(coord),
                        format!("must be a number from -{limit} to {limit}, got \"{v}\""),
                    ),
                },
            }
        }
        for text in ["name", "address"] {
            if let Some(v) = params.get(&key(text)) {
                if v.chars().count() > MAX_LOCATION_TEXT {
                    p.invalid(
                        key(text),
                        format!("is longer than {MAX_LOCATION_TEXT} characters"),
                    );
                } else if v.chars().any(char::is_control) {
                    p.invalid(key(text), "must not contain control characters");
                }
            }
        }
    }
}

fn check_media(media: &MediaRef, format: &str, prefix: &str, p: &mut SendProblems) {
    match (&media.link, &media.id) {
        (Some(_), Some(_)) => p.invalid(
            format!("{prefix}.link"),
            format!("and {prefix}.id are both given; give one"),
        ),
        (Some(link), None) => {
            if let Err(m) = check_media_link(link) {
                p.invalid(format!("{prefix}.link"), m);
            }
        }
        (None, Some(id)) => {
            if let Err(m) = check_media_id(id) {
                p.invalid(format!("{prefix}.id"), m);
            }
        }
        (None, None) => {}
    }
    if let Err(m) = media.check_for(format, prefix) {
        // `check_for` names the field itself; split the key off for our shape.
        let (key, message) = m.split_once(' ').unwrap_or((prefix, &m));
        p.invalid(key.to_string(), message.to_string());
    }
}

/// The code of an authentication template: the body's one placeholder.
fn otp_code_param(body: &str) -> Option<String> {
    super::template::parse_placeholders(body)
        .ok()?
        .first()
        .map(|p| p.name().to_string())
}

fn check_buttons(
    buttons: &[Button],
    params: &BTreeMap<String, String>,
    prefix: &str,
    body: &str,
    p: &mut SendProblems,
) {
    for (i, button) in buttons.iter().enumerate() {
        let key = |k: &str| format!("{prefix}.{i}.{k}");
        match button {
            Button::QuickReply { .. } => {
                if let Some(v) = params.get(&key("payload")) {
                    check_text_value(&key("payload"), v, MAX_PAYLOAD, p);
                }
            }
            Button::CopyCode { example } => match params.get(&key("coupon_code")) {
                Some(code) => check_coupon(&key("coupon_code"), code, p),
                None if example.trim().is_empty() => p.missing(
                    key("coupon_code"),
                    format!("{} is missing: the coupon code to copy", key("coupon_code")),
                ),
                None => {}
            },
            Button::Otp { .. } if otp_code_param(body).is_none() => {
                p.invalid(
                    format!("{prefix}.{i}"),
                    "is an OTP button, but the body has no placeholder for the code",
                );
            }
            Button::Flow { .. } => {
                if let Some(v) = params.get(&key("flow_token")) {
                    check_text_value(&key("flow_token"), v, MAX_FLOW_TOKEN, p);
                }
                if let Some(v) = params.get(&key("flow_action_data")) {
                    check_json_object(&key("flow_action_data"), v, p);
                }
            }
            Button::Catalog { .. } => {
                if let Some(v) = params.get(&key("action")) {
                    check_json_object(&key("action"), v, p);
                }
            }
            Button::Mpm { .. } => match params.get(&key("action")) {
                Some(v) => check_json_object(&key("action"), v, p),
                None => p.missing(
                    key("action"),
                    format!(
                        "{} is missing: a multi-product button needs its action (thumbnail_product_retailer_id and sections)",
                        key("action")
                    ),
                ),
            },
            _ => {}
        }
    }
}

fn check_text_value(key: &str, value: &str, max: usize, p: &mut SendProblems) {
    if value.trim().is_empty() {
        p.invalid(key, "is empty");
    } else if value.chars().count() > max {
        p.invalid(key, format!("is longer than {max} characters"));
    } else if value.chars().any(char::is_control) {
        p.invalid(key, "must not contain control characters");
    }
}

fn check_coupon(key: &str, code: &str, p: &mut SendProblems) {
    let n = code.chars().count();
    if code.trim().is_empty() {
        p.invalid(key, "is empty");
    } else if n > MAX_COUPON_CODE {
        p.invalid(
            key,
            format!("is {n} characters long; WhatsApp allows at most {MAX_COUPON_CODE}"),
        );
    } else if code.chars().any(|c| c.is_whitespace() || c.is_control()) {
        p.invalid(key, "must not contain spaces or control characters");
    }
}

fn check_json_object(key: &str, value: &str, p: &mut SendProblems) {
    match serde_json::from_str::<Value>(value) {
        Ok(Value::Object(_)) => {}
        _ => p.invalid(key, "must be a JSON object"),
    }
}

fn check_typed(params: &BTreeMap<String, String>, p: &mut SendProblems) {
    for (key, value) in params {
        let Some(name) = key.strip_suffix(".currency") else {
            continue;
        };
        if name.contains('.') {
            continue;
        }
        let ok = serde_json::from_str::<Value>(value).ok().and_then(|v| {
            let code = v.get("code")?.as_str()?;
            let amount = v.get("amount_1000")?.as_i64()?;
            (code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())).then_some(amount)
        });
        if ok.is_none() {
            p.invalid(
                key.clone(),
                "must be a JSON object {\"code\": ISO 4217 code such as \"USD\", \"amount_1000\": the amount times 1000, an integer}",
            );
        }
    }
}

fn check_cards(cards: &[Card], params: &BTreeMap<String, String>, p: &mut SendProblems) {
    if let Some(given) = params.get("cards.given")
        && given.parse::<usize>().ok() != Some(cards.len())
    {
        p.invalid(
            "cards",
            if cards.is_empty() {
                "were given, but the template is not a carousel".to_string()
            } else {
                format!(
                    "has {given} cards; the template's carousel has {}",
                    cards.len()
                )
            },
        );
    }
    for (c, card) in cards.iter().enumerate() {
        let prefix = format!("card.{c}");
        check_header(card.header.as_ref(), params, &format!("{prefix}.header"), p);
        check_buttons(
            &card.buttons,
            params,
            &format!("{prefix}.button"),
            &card.body,
            p,
        );
    }
}

/// The params of card `c`, keyed as in the card's own texts (`1` for `card.2.1`).
fn card_params(params: &BTreeMap<String, String>, c: usize) -> BTreeMap<String, String> {
    let prefix = format!("card.{c}.");
    params
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|k| (k.to_string(), v.clone())))
        .collect()
}

// ---------------------------------------------------------------------------
// Components
// ---------------------------------------------------------------------------

/// Whether the template uses named parameters (`parameter_format` NAMED, or inferred from
/// its placeholders).
fn is_named(content: &TemplateContent) -> bool {
    match content.extra.parameter_format.as_deref() {
        Some(f) => f.eq_ignore_ascii_case("NAMED"),
        None => {
            let header = content.header.as_ref().and_then(Header::text).unwrap_or("");
            super::template::parse_placeholders(header)
                .unwrap_or_default()
                .iter()
                .chain(
                    super::template::parse_placeholders(&content.body)
                        .unwrap_or_default()
                        .iter(),
                )
                .any(|p| !p.is_positional())
        }
    }
}

/// The distinct valid placeholders of `text`; positional ones in number order.
fn ordered_placeholders(text: &str) -> Vec<Placeholder> {
    let mut found = super::template::distinct_placeholders(text);
    if found.iter().all(Placeholder::is_positional) {
        found.sort_by_key(Placeholder::position);
    }
    found
}

/// Parameters for the placeholders of one text: named ones carry `parameter_name` (when
/// `named`); a placeholder with a `.currency` or `.date_time` key is sent typed.
fn text_parameters(text: &str, params: &BTreeMap<String, String>, named: bool) -> Vec<Value> {
    ordered_placeholders(text)
        .iter()
        .map(|p| {
            let value = params.get(p.name()).map(String::as_str).unwrap_or("");
            let mut param = Map::new();
            if let Some(currency) = params
                .get(&format!("{}.currency", p.name()))
                .and_then(|c| serde_json::from_str::<Value>(c).ok())
            {
                param.insert("type".into(), "currency".into());
                param.insert(
                    "currency".into(),
                    json!({
                        "fallback_value": value,
                        "code": currency["code"],
                        "amount_1000": currency["amount_1000"],
                    }),
                );
            } else if params.contains_key(&format!("{}.date_time", p.name())) {
                param.insert("type".into(), "date_time".into());
                param.insert("date_time".into(), json!({ "fallback_value": value }));
            } else {
                param.insert("type".into(), "text".into());
                param.insert("text".into(), value.into());
            }
            if named && !p.is_positional() {
                param.insert("parameter_name".into(), p.name().into());
            }
            Value::Object(param)
        })
        .collect()
}

fn media_parameter(kind: &str, media: &MediaRef) -> Value {
    let mut object = Map::new();
    if let Some(link) = &media.link {
        object.insert("link".into(), link.clone().into());
    } else if let Some(id) = &media.id {
        object.insert("id".into(), id.clone().into());
    }
    if kind == "document"
        && let Some(filename) = &media.filename
    {
        object.insert("filename".into(), filename.clone().into());
    }
    let mut parameter = Map::new();
    parameter.insert("type".into(), kind.into());
    parameter.insert(kind.into(), Value::Object(object));
    Value::Object(parameter)
}

/// The header component's one parameter, if the header takes one.
fn header_parameter(
    header: Option<&Header>,
    params: &BTreeMap<String, String>,
    prefix: &str,
    named: bool,
) -> Option<Value> {
    let header = header?;
    if let Some(kind) = header.media_kind() {
        let media = media_of(params, prefix).or_else(|| header.default_media())?;
        return Some(media_parameter(kind, &media));
    }
    match header {
        Header::Text { text } => text_parameters(text, params, named).into_iter().next(),
        Header::Location { .. } => {
            let get = |k: &str| params.get(&format!("{prefix}.{k}"));
            let number = |k: &str| -> Value {
                get(k)
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .map(Value::from)
                    .unwrap_or(Value::Null)
            };
            let mut location = Map::new();
            location.insert("latitude".into(), number("latitude"));
            location.insert("longitude".into(), number("longitude"));
            for k in ["name", "address"] {
                if let Some(v) = get(k) {
                    location.insert(k.into(), v.clone().into());
                }
            }
            Some(json!({"type": "location", "location": location}))
        }
        _ => None,
    }
}

/// The button components of a list of buttons (top level or a card's).
fn button_components(
    buttons: &[Button],
    params: &BTreeMap<String, String>,
    prefix: &str,
    body: &str,
) -> Vec<Value> {
    let mut out = Vec::new();
    for (index, button) in buttons.iter().enumerate() {
        let get = |k: &str| params.get(&format!("{prefix}.{index}.{k}"));
        let component = |sub_type: &str, parameter: Value| {
            json!({
                "type": "button",
                "sub_type": sub_type,
                "index": index.to_string(),
                "parameters": [parameter],
            })
        };
        match button {
            Button::Url { url, .. } => {
                if let Some(suffix) = text_parameters(url, params, false).into_iter().next() {
                    out.push(component("url", suffix));
                }
            }
            Button::QuickReply { .. } => {
                if let Some(payload) = get("payload") {
                    out.push(component(
                        "quick_reply",
                        json!({"type": "payload", "payload": payload}),
                    ));
                }
            }
            Button::CopyCode { example } => {
                let code = get("coupon_code").unwrap_or(example);
                if !code.trim().is_empty() {
                    out.push(component(
                        "copy_code",
                        json!({"type": "coupon_code", "coupon_code": code}),
                    ));
                }
            }
            Button::Otp { .. } => {
                let code = otp_code_param(body)
                    .and_then(|name| params.get(&name).cloned())
                    .unwrap_or_default();
                out.push(component("url", json!({"type": "text", "text": code})));
            }
            Button::Flow { .. } => {
                let mut action = Map::new();
                if let Some(token) = get("flow_token") {
                    action.insert("flow_token".into(), token.clone().into());
                }
                if let Some(data) =
                    get("flow_action_data").and_then(|d| serde_json::from_str::<Value>(d).ok())
                {
                    action.insert("flow_action_data".into(), data);
                }
                if !action.is_empty() {
                    out.push(component(
                        "flow",
                        json!({"type": "action", "action": action}),
                    ));
                }
            }
            Button::Catalog { .. } | Button::Mpm { .. } => {
                let sub_type = if matches!(button, Button::Mpm { .. }) {
                    "mpm"
                } else {
                    "catalog"
                };
                if let Some(action) =
                    get("action").and_then(|a| serde_json::from_str::<Value>(a).ok())
                {
                    out.push(component(
                        sub_type,
                        json!({"type": "action", "action": action}),
                    ));
                }
            }
            Button::PhoneNumber { .. } | Button::VoiceCall { .. } | Button::Other { .. } => {}
        }
    }
    out
}

/// The `components` array of a Cloud API template send
/// (`POST /{phone-number-id}/messages` with `type: "template"`), for params that passed
/// [`check_send`]:
///
/// - `header`: a TEXT header's parameter; a media header's media (the send's
///   `header.link`/`header.id`, else the template's default) as
///   `{"type":"image","image":{"link":…}}` (`video`, `gif`, `document` with `filename`);
///   a LOCATION header's `{"type":"location","location":{latitude, longitude, name, address}}`.
/// - `body`: one parameter per distinct placeholder (named ones carry `parameter_name`;
///   typed ones are `currency` / `date_time`).
/// - `limited_time_offer`: `expiration_time_ms` when the offer shows an expiry.
/// - `button`: per button that takes a value, at its index (a string): `url` suffixes,
///   `quick_reply` payloads, `copy_code` codes, an OTP button's code (sub_type `url`),
///   `flow` actions, `catalog` / `mpm` actions.
/// - `carousel`: every card, with its `card_index` and its own header, body and buttons.
///
/// Components with no parameters are left out.
pub fn cloud_components(
    content: &TemplateContent,
    params: &BTreeMap<String, String>,
) -> Vec<Value> {
    let named = is_named(content);
    let mut components = Vec::new();

    if let Some(parameter) = header_parameter(content.header.as_ref(), params, "header", named) {
        components.push(json!({"type": "header", "parameters": [parameter]}));
    }

    let body = text_parameters(&content.body, params, named);
    if !body.is_empty() {
        components.push(json!({"type": "body", "parameters": body}));
    }

    if let Some(offer) = &content.extra.limited_time_offer
        && offer.has_expiration
        && let Some(ms) = params
            .get("offer.expiration_time_ms")
            .and_then(|v| v.trim().parse::<i64>().ok())
    {
        components.push(json!({
            "type": "limited_time_offer",
            "parameters": [{
                "type": "limited_time_offer",
                "limited_time_offer": {"expiration_time_ms": ms},
            }],
        }));
    }

    components.extend(button_components(
        &content.buttons,
        params,
        "button",
        &content.body,
    ));

    if !content.extra.carousel.is_empty() {
        let cards: Vec<Value> = content
            .extra
            .carousel
            .iter()
            .enumerate()
            .map(|(c, card)| {
                let own = card_params(params, c);
                let mut parts = Vec::new();
                if let Some(parameter) =
                    header_parameter(card.header.as_ref(), &own, "header", false)
                {
                    parts.push(json!({"type": "header", "parameters": [parameter]}));
                }
                let body = text_parameters(&card.body, &own, false);
                if !body.is_empty() {
                    parts.push(json!({"type": "body", "parameters": body}));
                }
                parts.extend(button_components(&card.buttons, &own, "button", &card.body));
                json!({"card_index": c, "components": parts})
            })
            .collect();
        components.push(json!({"type": "carousel", "cards": cards}));
    }
    components
}

// ---------------------------------------------------------------------------
// Preview
// ---------------------------------------------------------------------------

fn header_preview(
    header: Option<&Header>,
    params: &BTreeMap<String, String>,
    prefix: &str,
) -> Value {
    let Some(header) = header else {
        return Value::Null;
    };
    match header {
        Header::Text { text } => json!({"format": "TEXT", "text": render(text, params)}),
        Header::Location { .. } => {
            let get = |k: &str| params.get(&format!("{prefix}.{k}")).cloned();
            json!({"format": "LOCATION", "location": {
                "latitude": get("latitude"), "longitude": get("longitude"),
                "name": get("name"), "address": get("address"),
            }})
        }
        _ => {
            let media = media_of(params, prefix).or_else(|| header.default_media());
            json!({"format": header.format(), "media": media})
        }
    }
}

fn buttons_preview(
    buttons: &[Button],
    params: &BTreeMap<String, String>,
    prefix: &str,
    body: &str,
) -> Vec<Value> {
    buttons
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let get = |k: &str| params.get(&format!("{prefix}.{i}.{k}")).cloned();
            let mut v = json!({"index": i, "type": b.kind(), "text": b.label()});
            match b {
                Button::Url { url, .. } => v["url"] = render(url, params).into(),
                Button::PhoneNumber { phone_number, .. } => {
                    v["phoneNumber"] = phone_number.clone().into()
                }
                Button::QuickReply { .. } => v["payload"] = get("payload").into(),
                Button::CopyCode { example } => {
                    v["couponCode"] = get("coupon_code").unwrap_or(example.clone()).into()
                }
                Button::Otp { otp_type, .. } => {
                    v["otpType"] = otp_type.clone().into();
                    v["code"] = otp_code_param(body)
                        .and_then(|n| params.get(&n).cloned())
                        .into();
                }
                Button::Flow { .. } => v["flowToken"] = get("flow_token").into(),
                _ => {}
            }
            v
        })
        .collect()
}

/// What a recipient would see: the header (its text, media or location), the body and footer
/// with the params in place, each button with its label and value, each card, the offer.
pub fn preview(content: &TemplateContent, params: &BTreeMap<String, String>) -> Value {
    let cards: Vec<Value> = content
        .extra
        .carousel
        .iter()
        .enumerate()
        .map(|(c, card)| {
            let own = card_params(params, c);
            json!({
                "index": c,
                "header": header_preview(card.header.as_ref(), &own, "header"),
                "body": render(&card.body, &own),
                "buttons": buttons_preview(&card.buttons, &own, "button", &card.body),
            })
        })
        .collect();
    let offer = content.extra.limited_time_offer.as_ref().map(|o| {
        let expires = params
            .get("offer.expiration_time_ms")
            .and_then(|v| v.trim().parse::<i64>().ok())
            .map(crate::format_ms);
        json!({"text": o.text, "expiresAt": expires})
    });
    json!({
        "header": header_preview(content.header.as_ref(), params, "header"),
        "body": render(&content.body, params),
        "footer": content.footer,
        "buttons": buttons_preview(&content.buttons, params, "button", &content.body),
        "cards": cards,
        "offer": offer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::template::Offer;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn with_header(header: Header, body: &str) -> TemplateContent {
        TemplateContent {
            header: Some(header),
            body: body.into(),
            ..Default::default()
        }
    }

    const NOW: i64 = 1_780_000_000_000;

    fn refused(content: &TemplateContent, given: &[(&str, &str)]) -> SendProblems {
        check_send(content, &params(given), NOW).unwrap_err()
    }

    fn invalid_keys(p: &SendProblems) -> Vec<&str> {
        p.invalid.iter().map(|v| v.key.as_str()).collect()
    }

    #[test]
    fn a_document_header_takes_its_link_and_filename_per_send() {
        let content = TemplateContent {
            buttons: vec![Button::QuickReply {
                text: "Pagar".into(),
            }],
            ..with_header(Header::media("DOCUMENT", None).unwrap(), "Factura {{1}}")
        };
        let given = params(&[
            ("1", "F-77"),
            ("header.link", "https://files.example/f-77.pdf"),
            ("header.filename", "Factura F-77.pdf"),
            ("button.0.payload", "pay:F-77"),
        ]);
        assert_eq!(check_send(&content, &given, NOW), Ok(()));
        assert_eq!(
            cloud_components(&content, &given),
            vec![
                json!({"type": "header", "parameters": [{"type": "document", "document":
                    {"link": "https://files.example/f-77.pdf", "filename": "Factura F-77.pdf"}}]}),
                json!({"type": "body", "parameters": [{"type": "text", "text": "F-77"}]}),
                json!({"type": "button", "sub_type": "quick_reply", "index": "0",
                       "parameters": [{"type": "payload", "payload": "pay:F-77"}]}),
            ]
        );
    }

    #[test]
    fn a_media_header_with_nothing_given_uses_the_default_or_is_missing() {
        let bare = with_header(Header::media("IMAGE", None).unwrap(), "Hola");
        let p = refused(&bare, &[]);
        assert_eq!(p.missing, ["header"]);
        assert!(p.missing_detail[0].contains("header.link"), "{p:?}");

        let with_default = with_header(
            Header::from_json(&json!({"format": "IMAGE",
                "defaultMedia": {"id": "1234567890"}}))
            .unwrap(),
            "Hola",
        );
        assert_eq!(check_send(&with_default, &params(&[]), NOW), Ok(()));
        assert_eq!(
            cloud_components(&with_default, &params(&[]))[0],
            json!({"type": "header", "parameters": [{"type": "image", "image": {"id": "1234567890"}}]})
        );
        // A media id given per send wins over the default.
        let given = params(&[("header.id", "998877")]);
        assert_eq!(
            cloud_components(&with_default, &given)[0]["parameters"][0]["image"],
            json!({"id": "998877"})
        );
    }

    #[test]
    fn media_values_are_checked_before_anything_is_queued() {
        let image = with_header(Header::media("IMAGE", None).unwrap(), "Hola");
        let p = refused(&image, &[("header.link", "ftp://x.example/a.png")]);
        assert_eq!(invalid_keys(&p), ["header.link"]);
        assert!(
            p.invalid[0].message.contains("http:// or https://"),
            "{p:?}"
        );

        let p = refused(&image, &[("header.link", "https://x.example/invoice.pdf")]);
        assert!(p.invalid[0].message.contains("DOCUMENT media"), "{p:?}");

        let p = refused(
            &image,
            &[
                ("header.link", "https://x.example/a.png"),
                ("header.id", "12"),
            ],
        );
        assert_eq!(invalid_keys(&p), ["header.link"]);

        let p = refused(
            &image,
            &[
                ("header.link", "https://x.example/a.png"),
                ("header.filename", "a.png"),
            ],
        );
        assert_eq!(invalid_keys(&p), ["header.filename"]);

        let p = refused(
            &image,
            &[
                ("header.link", "https://x.example/a.png"),
                ("header.type", "video"),
            ],
        );
        assert_eq!(invalid_keys(&p), ["header.type"]);

        let p = refused(
            &image,
            &[
                ("header.link", "https://x.example/a.png"),
                ("header.lnk", "x"),
            ],
        );
        assert_eq!(invalid_keys(&p), ["header.lnk"]);

        let text = with_header(
            Header::Text {
                text: "Hola".into(),
            },
            "x",
        );
        let p = refused(&text, &[("header.link", "https://x.example/a.png")]);
        assert!(p.invalid[0].message.contains("header is TEXT"), "{p:?}");
    }

    #[test]
    fn a_gif_header_is_sent_as_gif() {
        let gif = with_header(Header::media("GIF", None).unwrap(), "Hola");
        let given = params(&[("header.link", "https://x.example/a.mp4")]);
        assert_eq!(check_send(&gif, &given, NOW), Ok(()));
        assert_eq!(
            cloud_components(&gif, &given)[0],
            json!({"type": "header", "parameters": [{"type": "gif", "gif": {"link": "https://x.example/a.mp4"}}]})
        );
    }

    #[test]
    fn a_location_header_needs_coordinates_in_range() {
        let content = with_header(Header::Location { example: None }, "Te esperamos");
        let p = refused(&content, &[]);
        assert_eq!(p.missing, ["header.latitude", "header.longitude"]);
        let p = refused(
            &content,
            &[("header.latitude", "91"), ("header.longitude", "abc")],
        );
        assert_eq!(invalid_keys(&p), ["header.latitude", "header.longitude"]);
        let given = params(&[
            ("header.latitude", "8.9824"),
            ("header.longitude", "-79.5199"),
            ("header.name", "Tienda Centro"),
            ("header.address", "Calle 50, Panamá"),
        ]);
        assert_eq!(check_send(&content, &given, NOW), Ok(()));
        assert_eq!(
            cloud_components(&content, &given)[0],
            json!({"type": "header", "parameters": [{"type": "location", "location": {
                "latitude": 8.9824, "longitude": -79.5199,
                "name": "Tienda Centro", "address": "Calle 50, Panamá"}}]})
        );
    }

    fn buttons_template() -> TemplateContent {
        TemplateContent {
            body: "Hola {{name}}".into(),
            buttons: vec![
                Button::QuickReply { text: "Sí".into() },
                Button::CopyCode {
                    example: "SAVE10".into(),
                },
                Button::Flow {
                    text: "Reservar".into(),
                    flow_id: Some("77".into()),
                    flow_action: None,
                    navigate_screen: None,
                },
                Button::Url {
                    text: "Ver".into(),
                    url: "https://x.example/o/{{1}}".into(),
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn button_values_go_at_metas_index_with_their_sub_type() {
        let content = buttons_template();
        let given = params(&[
            ("name", "Ana"),
            ("1", "A-1"),
            ("button.0.payload", "yes"),
            ("button.1.coupon_code", "ANA25"),
            ("button.2.flow_token", "tok-1"),
            ("button.2.flow_action_data", r#"{"screen":"START"}"#),
        ]);
        assert_eq!(check_send(&content, &given, NOW), Ok(()));
        let components = cloud_components(&content, &given);
        let buttons: Vec<&Value> = components
            .iter()
            .filter(|c| c["type"] == "button")
            .collect();
        assert_eq!(
            buttons,
            vec![
                &json!({"type": "button", "sub_type": "quick_reply", "index": "0",
                        "parameters": [{"type": "payload", "payload": "yes"}]}),
                &json!({"type": "button", "sub_type": "copy_code", "index": "1",
                        "parameters": [{"type": "coupon_code", "coupon_code": "ANA25"}]}),
                &json!({"type": "button", "sub_type": "flow", "index": "2",
                        "parameters": [{"type": "action", "action":
                            {"flow_token": "tok-1", "flow_action_data": {"screen": "START"}}}]}),
                &json!({"type": "button", "sub_type": "url", "index": "3",
                        "parameters": [{"type": "text", "text": "A-1"}]}),
            ]
        );
    }

    #[test]
    fn button_values_that_do_not_fit_are_refused() {
        let content = buttons_template();
        let base = [("name", "Ana"), ("1", "A-1")];
        let with = |extra: (&str, &str)| {
            let mut all = base.to_vec();
            all.push(extra);
            refused(&content, &all)
        };
        let p = with(("button.1.payload", "x"));
        assert_eq!(invalid_keys(&p), ["button.1.payload"]);
        assert!(p.invalid[0].message.contains("COPY_CODE"), "{p:?}");
        let p = with(("button.7.payload", "x"));
        assert!(p.invalid[0].message.contains("0 to 3"), "{p:?}");
        let p = with(("button.1.coupon_code", "SIXTEEN_CHARS_XX"));
        assert!(p.invalid[0].message.contains("at most 15"), "{p:?}");
        let p = with(("button.2.flow_action_data", "[1]"));
        assert_eq!(invalid_keys(&p), ["button.2.flow_action_data"]);
        let p = with(("button.0.payload", ""));
        assert_eq!(invalid_keys(&p), ["button.0.payload"]);
    }

    #[test]
    fn an_otp_template_puts_the_code_in_the_body_and_the_button() {
        let content = TemplateContent {
            body: "*{{1}}* es tu código de verificación.".into(),
            buttons: vec![Button::Otp {
                otp_type: "COPY_CODE".into(),
                text: Some("Copiar código".into()),
            }],
            ..Default::default()
        };
        assert_eq!(refused(&content, &[]).missing, ["1"]);
        let given = params(&[("1", "482913")]);
        assert_eq!(check_send(&content, &given, NOW), Ok(()));
        assert_eq!(
            cloud_components(&content, &given),
            vec![
                json!({"type": "body", "parameters": [{"type": "text", "text": "482913"}]}),
                json!({"type": "button", "sub_type": "url", "index": "0",
                       "parameters": [{"type": "text", "text": "482913"}]}),
            ]
        );
    }

    fn carousel() -> TemplateContent {
        let card = |n: &str| Card {
            header: Some(Header::media("IMAGE", None).unwrap()),
            body: format!("Producto {n}: {{{{1}}}}"),
            buttons: vec![
                Button::QuickReply {
                    text: "Lo quiero".into(),
                },
                Button::Url {
                    text: "Ver".into(),
                    url: "https://shop.example/p/{{1}}".into(),
                },
            ],
        };
        TemplateContent {
            body: "Hola {{1}}, mira esto".into(),
            extra: crate::domain::template::TemplateExtra {
                carousel: vec![card("A"), card("B")],
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn a_carousel_sends_every_card_with_its_own_values() {
        let content = carousel();
        let given = params(&[
            ("1", "Ana"),
            ("card.0.1", "camisa"),
            ("card.0.header.link", "https://shop.example/a.jpg"),
            ("card.0.button.0.payload", "want:a"),
            ("card.1.1", "gorra"),
            ("card.1.header.id", "4455"),
            ("cards.given", "2"),
        ]);
        assert_eq!(check_send(&content, &given, NOW), Ok(()));
        let components = cloud_components(&content, &given);
        assert_eq!(
            components[1],
            json!({"type": "carousel", "cards": [
                {"card_index": 0, "components": [
                    {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://shop.example/a.jpg"}}]},
                    {"type": "body", "parameters": [{"type": "text", "text": "camisa"}]},
                    {"type": "button", "sub_type": "quick_reply", "index": "0", "parameters": [{"type": "payload", "payload": "want:a"}]},
                    {"type": "button", "sub_type": "url", "index": "1", "parameters": [{"type": "text", "text": "camisa"}]}]},
                {"card_index": 1, "components": [
                    {"type": "header", "parameters": [{"type": "image", "image": {"id": "4455"}}]},
                    {"type": "body", "parameters": [{"type": "text", "text": "gorra"}]},
                    {"type": "button", "sub_type": "url", "index": "1", "parameters": [{"type": "text", "text": "gorra"}]}]}
            ]})
        );
    }

    #[test]
    fn a_carousel_with_the_wrong_cards_is_refused() {
        let content = carousel();
        let p = refused(
            &content,
            &[
                ("1", "Ana"),
                ("card.0.1", "x"),
                ("card.0.header.id", "1"),
                ("cards.given", "1"),
            ],
        );
        assert!(p.missing.contains(&"card.1.1".to_string()), "{p:?}");
        assert!(p.missing.contains(&"card.1.header".to_string()), "{p:?}");
        assert!(invalid_keys(&p).contains(&"cards"), "{p:?}");
        let p = refused(&content, &[("card.2.header.id", "1")]);
        assert!(invalid_keys(&p).contains(&"card.2.header.id"), "{p:?}");
    }

    #[test]
    fn a_limited_time_offer_needs_a_future_expiry() {
        let content = TemplateContent {
            body: "Oferta".into(),
            buttons: vec![Button::CopyCode {
                example: "X".into(),
            }],
            extra: crate::domain::template::TemplateExtra {
                limited_time_offer: Some(Offer {
                    text: "¡Corre!".into(),
                    has_expiration: true,
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(refused(&content, &[]).missing, ["offer.expiration_time_ms"]);
        let past = (NOW - 1).to_string();
        let p = refused(&content, &[("offer.expiration_time_ms", past.as_str())]);
        assert_eq!(invalid_keys(&p), ["offer.expiration_time_ms"]);
        let later = (NOW + 3_600_000).to_string();
        let given = params(&[
            ("offer.expiration_time_ms", later.as_str()),
            ("button.0.coupon_code", "ANA25"),
        ]);
        assert_eq!(check_send(&content, &given, NOW), Ok(()));
        let components = cloud_components(&content, &given);
        assert_eq!(
            components[0],
            json!({"type": "limited_time_offer", "parameters": [{"type": "limited_time_offer",
                "limited_time_offer": {"expiration_time_ms": NOW + 3_600_000}}]})
        );
        assert_eq!(components[1]["sub_type"], "copy_code");
    }

    #[test]
    fn typed_parameters_are_sent_typed_with_their_fallback() {
        let content = TemplateContent {
            body: "Total {{total}} el {{day}}".into(),
            ..Default::default()
        };
        let given = params(&[
            ("total", "$10.50"),
            ("total.currency", r#"{"code":"USD","amount_1000":10500}"#),
            ("day", "25 de febrero"),
            ("day.date_time", "1"),
        ]);
        assert_eq!(check_send(&content, &given, NOW), Ok(()));
        assert_eq!(
            cloud_components(&content, &given)[0]["parameters"],
            json!([
                {"type": "currency", "parameter_name": "total", "currency":
                    {"fallback_value": "$10.50", "code": "USD", "amount_1000": 10500}},
                {"type": "date_time", "parameter_name": "day", "date_time": {"fallback_value": "25 de febrero"}},
            ])
        );
        let p = refused(
            &content,
            &[
                ("total", "1"),
                ("day", "x"),
                ("total.currency", r#"{"code":"usd"}"#),
            ],
        );
        assert_eq!(invalid_keys(&p), ["total.currency"]);
        let p = refused(
            &content,
            &[("total", "1"), ("day", "x"), ("nope.currency", "{}")],
        );
        assert!(invalid_keys(&p).contains(&"nope.currency"), "{p:?}");
    }

    #[test]
    fn rendered_lengths_follow_metas_limits() {
        let content = TemplateContent {
            body: "{{a}}".into(),
            ..Default::default()
        };
        let long = "x".repeat(MAX_BODY + 1);
        let p = refused(&content, &[("a", long.as_str())]);
        assert_eq!(invalid_keys(&p), ["params"]);
    }

    #[test]
    fn unknown_buttons_make_a_template_unsendable() {
        let content = TemplateContent {
            body: "x".into(),
            buttons: vec![Button::Other {
                kind: "BRAND_NEW".into(),
                raw: json!({"type": "BRAND_NEW"}),
            }],
            ..Default::default()
        };
        assert!(content.unsendable_reason().unwrap().contains("BRAND_NEW"));
    }

    #[test]
    fn a_preview_shows_what_the_recipient_sees() {
        let content = TemplateContent {
            footer: Some("Gracias".into()),
            buttons: vec![
                Button::QuickReply {
                    text: "Pagar".into(),
                },
                Button::CopyCode {
                    example: "SAVE10".into(),
                },
            ],
            ..with_header(Header::media("DOCUMENT", None).unwrap(), "Factura {{n}}")
        };
        let given = params(&[
            ("n", "F-1"),
            ("header.link", "https://f.example/1.pdf"),
            ("header.filename", "F-1.pdf"),
            ("button.0.payload", "pay"),
        ]);
        let p = preview(&content, &given);
        assert_eq!(p["body"], "Factura F-1");
        assert_eq!(p["footer"], "Gracias");
        assert_eq!(
            p["header"],
            json!({"format": "DOCUMENT", "media": {"link": "https://f.example/1.pdf", "filename": "F-1.pdf"}})
        );
        assert_eq!(p["buttons"][0]["payload"], "pay");
        assert_eq!(p["buttons"][1]["couponCode"], "SAVE10");
    }
}
