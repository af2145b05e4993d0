//! Inbound messages, the pure part: what a message of Meta's `messages` webhook says, read
//! into the shape plantilla stores and forwards (`message.received`). No I/O.
//!
//! Meta's types (messages webhook reference): `text`, `button` (a quick-reply click on a
//! template: `{payload, text}`), `interactive` (`list_reply {id, title, description}`,
//! `button_reply {id, title}`, `nfm_reply`), media (`image`, `video`, `audio`, `document`,
//! `sticker`: `{id, mime_type, sha256, caption, filename, voice, animated}`), `location`,
//! `contacts`, `reaction` (`{message_id, emoji}`). Any other type (`order`, `system`,
//! `unsupported`, …) is kept raw: the whole message object travels with it.

use serde_json::{Map, Value, json};

/// The media types: their content is `{id, mimeType, …}` under `media`.
pub const MEDIA_TYPES: [&str; 5] = ["image", "video", "audio", "document", "sticker"];

/// The types read into typed fields; any other is forwarded with its raw object.
pub const KNOWN_TYPES: [&str; 11] = [
    "text",
    "button",
    "interactive",
    "image",
    "video",
    "audio",
    "document",
    "sticker",
    "location",
    "contacts",
    "reaction",
];

/// A quick-reply click on a template's button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ButtonReply {
    pub payload: Option<String>,
    pub text: Option<String>,
}

/// What one inbound message says, as read from Meta's message object.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundContent {
    /// Meta's `type`, as sent (`text`, `button`, `image`, …; `unknown` when absent).
    pub kind: String,
    /// `text.body` of a text message.
    pub text: Option<String>,
    /// `button` of a quick-reply click.
    pub button: Option<ButtonReply>,
    /// The typed parts, camelCase, as shown and forwarded: `interactive`, `media`,
    /// `location`, `contacts`, `reaction` (an empty object for text, button and unknown types).
    pub fields: Map<String, Value>,
    /// Whether the type is one plantilla reads (else only the raw object carries it).
    pub known: bool,
}

fn s(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Copies the listed `(meta key, our key)` pairs of `from` that are present.
fn pick(from: &Value, keys: &[(&str, &str)]) -> Map<String, Value> {
    let mut out = Map::new();
    for (theirs, ours) in keys {
        let v = &from[*theirs];
        if !v.is_null() {
            out.insert((*ours).to_string(), v.clone());
        }
    }
    out
}

/// Reads a message object of `messages[]`.
pub fn content_of(message: &Value) -> InboundContent {
    let kind = message["type"]
        .as_str()
        .filter(|t| !t.is_empty())
        .unwrap_or("unknown")
        .to_string();
    let mut content = InboundContent {
        kind: kind.clone(),
        text: None,
        button: None,
        fields: Map::new(),
        known: KNOWN_TYPES.contains(&kind.as_str()),
    };
    match kind.as_str() {
        "text" => content.text = s(&message["text"]["body"]),
        "button" => {
            content.button = Some(ButtonReply {
                payload: s(&message["button"]["payload"]),
                text: s(&message["button"]["text"]),
            })
        }
        "interactive" => {
            let i = &message["interactive"];
            let sub = i["type"].as_str().unwrap_or_default();
            let mut reply = match sub {
                "list_reply" => pick(
                    &i["list_reply"],
                    &[
                        ("id", "id"),
                        ("title", "title"),
                        ("description", "description"),
                    ],
                ),
                "button_reply" => pick(&i["button_reply"], &[("id", "id"), ("title", "title")]),
                // A flow's answer (`nfm_reply`) and anything newer: kept as Meta sent it.
                other => {
                    let mut m = Map::new();
                    if let Some(v) = i.get(other) {
                        m.insert("reply".into(), v.clone());
                    }
                    m
                }
            };
            reply.insert("type".into(), Value::from(sub));
            content
                .fields
                .insert("interactive".into(), Value::Object(reply));
        }
        t if MEDIA_TYPES.contains(&t) => {
            let media = pick(
                &message[t],
                &[
                    ("id", "id"),
                    ("mime_type", "mimeType"),
                    ("sha256", "sha256"),
                    ("caption", "caption"),
                    ("filename", "filename"),
                    ("voice", "voice"),
                    ("animated", "animated"),
                ],
            );
            content.fields.insert("media".into(), Value::Object(media));
        }
        "location" => {
            let location = pick(
                &message["location"],
                &[
                    ("latitude", "latitude"),
                    ("longitude", "longitude"),
                    ("name", "name"),
                    ("address", "address"),
                    ("url", "url"),
                ],
            );
            content
                .fields
                .insert("location".into(), Value::Object(location));
        }
        "contacts" => {
            content.fields.insert(
                "contacts".into(),
                message["contacts"]
                    .as_array()
                    .cloned()
                    .map_or(json!([]), Value::Array),
            );
        }
        "reaction" => {
            let r = &message["reaction"];
            content.fields.insert(
                "reaction".into(),
                json!({"messageId": s(&r["message_id"]), "emoji": s(&r["emoji"])}),
            );
        }
        _ => {}
    }
    content
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_button_replies_are_read() {
        let t = content_of(&json!({"type": "text", "text": {"body": "hola"}}));
        assert_eq!(t.kind, "text");
        assert_eq!(t.text.as_deref(), Some("hola"));
        assert!(t.known && t.fields.is_empty());
        let b = content_of(&json!({"type": "button", "context": {"id": "wamid.1"},
            "button": {"payload": "STOP_PROMOS", "text": "Stop promotions"}}));
        assert_eq!(
            b.button,
            Some(ButtonReply {
                payload: Some("STOP_PROMOS".into()),
                text: Some("Stop promotions".into())
            })
        );
        assert_eq!(b.text, None);
    }

    #[test]
    fn interactive_media_location_and_reactions_are_typed() {
        let l = content_of(
            &json!({"type": "interactive", "interactive": {"type": "list_reply",
            "list_reply": {"id": "opt-2", "title": "Tuesday", "description": "after 3 pm"}}}),
        );
        assert_eq!(
            l.fields["interactive"],
            json!({"type": "list_reply", "id": "opt-2", "title": "Tuesday", "description": "after 3 pm"})
        );
        let b = content_of(
            &json!({"type": "interactive", "interactive": {"type": "button_reply",
            "button_reply": {"id": "yes", "title": "Yes"}}}),
        );
        assert_eq!(
            b.fields["interactive"],
            json!({"type": "button_reply", "id": "yes", "title": "Yes"})
        );
        let d = content_of(&json!({"type": "document", "document": {"id": "MEDIA1",
            "mime_type": "application/pdf", "filename": "invoice.pdf", "caption": "here"}}));
        assert_eq!(
            d.fields["media"],
            json!({"id": "MEDIA1", "mimeType": "application/pdf", "filename": "invoice.pdf", "caption": "here"})
        );
        let loc = content_of(&json!({"type": "location", "location": {"latitude": 8.98,
            "longitude": -79.52, "name": "Casco Viejo"}}));
        assert_eq!(
            loc.fields["location"],
            json!({"latitude": 8.98, "longitude": -79.52, "name": "Casco Viejo"})
        );
        let r = content_of(
            &json!({"type": "reaction", "reaction": {"message_id": "wamid.9", "emoji": "👍"}}),
        );
        assert_eq!(
            r.fields["reaction"],
            json!({"messageId": "wamid.9", "emoji": "👍"})
        );
    }

    #[test]
    fn unknown_types_are_not_read() {
        let u = content_of(&json!({"type": "order", "order": {"catalog_id": "1"}}));
        assert_eq!(u.kind, "order");
        assert!(!u.known);
        assert!(u.fields.is_empty());
        assert_eq!(content_of(&json!({})).kind, "unknown");
    }
}
