//! Templates and their placeholders: parsing, validation of operator input,
//! the required params of a template, checking the params of a send, and the
//! `components` array of a WhatsApp Cloud API template send. No I/O.
//!
//! # Placeholders
//!
//! A placeholder is `{{name}}` (named) or `{{1}}` (positional). Spaces and tabs
//! just inside the braces are tolerated (`{{ name }}`). A named placeholder
//! follows Meta's rule for named parameters: lowercase ASCII letters, digits and
//! underscores, starting with a letter or an underscore. A positional one is a
//! number without leading zeros. Anything else between `{{` and `}}`, and a
//! `{{` that is never closed, is an error.
//!
//! Params are keyed by placeholder name, so the same placeholder in the header,
//! the body and a URL button is one param with one value. For positional
//! templates this means `{{1}}` in the header and `{{1}}` in the body receive
//! the same value (Meta numbers each component separately; an operator who
//! needs two different values numbers the header's placeholder apart, e.g.
//! `{{3}}`, or names the URL button's).
//!
//! Meta pages this module follows:
//! - Template components (header, body, footer, buttons; named vs positional
//!   parameters; one variable in a text header; one variable at the end of a
//!   URL button's url):
//!   <https://developers.facebook.com/documentation/business-messaging/whatsapp/templates/components>
//! - Template fundamentals (`parameter_format` NAMED / POSITIONAL):
//!   <https://developers.facebook.com/documentation/business-messaging/whatsapp/templates/overview>

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

// ---------------------------------------------------------------------------
// Template content
// ---------------------------------------------------------------------------

/// What a template says: optional header, body (the contract's `message`),
/// optional footer and buttons; and what Meta's richer templates add: a
/// carousel of cards, a limited-time offer, the declared parameter format,
/// and why plantilla cannot send it, when it cannot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateContent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<Header>,
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,
    /// Every button, in Meta's order: a button's position here is the `index`
    /// Meta counts it by.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<Button>,
    #[serde(default, skip_serializing_if = "TemplateExtra::is_empty")]
    pub extra: TemplateExtra,
}

/// The parts of a template beyond header, body, footer and buttons (stored
/// in the template's `extra` column).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateExtra {
    /// Meta's `parameter_format`: `NAMED` or `POSITIONAL` (None: inferred).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_format: Option<String>,
    /// A carousel's cards, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub carousel: Vec<Card>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limited_time_offer: Option<Offer>,
    /// Why plantilla cannot send this template (a component it does not know).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsupported: Option<String>,
}

impl TemplateExtra {
    pub fn is_empty(&self) -> bool {
        self == &TemplateExtra::default()
    }
}

/// One card of a carousel template: a media header, a body and buttons.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(
    as = TemplateCard,
    description = "One card of a carousel template.",
    examples(json!({"header": {"format": "IMAGE"}, "body": "Producto {{1}}",
        "buttons": [{"type": "QUICK_REPLY", "text": "Lo quiero"}]}))
)]
pub struct Card {
    /// Every stored card has one (operator input and sync refuse a card without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = card_header_schema, required = true)]
    pub header: Option<Header>,
    /// The card's text; positional placeholders. Empty when left out.
    #[serde(default)]
    pub body: String,
    /// None when null.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(nullable)]
    pub buttons: Vec<Button>,
}

/// A card's header in the document: a [`Header`] of format IMAGE or VIDEO.
fn card_header_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AllOfBuilder, Object, SchemaType};
    let only_image_or_video = Object::builder()
        .schema_type(SchemaType::AnyValue)
        .property(
            "format",
            Object::builder()
                .schema_type(SchemaType::AnyValue)
                .enum_values(Some(["IMAGE", "VIDEO"])),
        )
        .build();
    AllOfBuilder::new()
        .item(utoipa::openapi::Ref::from_schema_name("TemplateHeader"))
        .item(only_image_or_video)
        .description(Some(
            "An IMAGE or VIDEO header, the same kind on every card.",
        ))
        .build()
        .into()
}

/// A limited-time offer: the offer's text and whether it shows an expiry
/// (then every send gives the expiry time).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(
    as = TemplateOffer,
    description = "A limited-time offer.",
    examples(json!({"text": "¡Solo hoy!", "hasExpiration": true}))
)]
pub struct Offer {
    /// The offer's headline (at most 16 characters).
    pub text: String,
    /// true: every send gives `offerExpiresAt` (`offer.expiration_time_ms` in the compatible API).
    #[serde(default)]
    #[schema(nullable)]
    pub has_expiration: bool,
}

/// A media file: `link` or `id`, and for documents an optional `filename`.
// As a send gives it: a public link or a media id, and for documents the file name the
// recipient sees. Unknown fields are refused ([`MediaRef::from_json`] too).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(examples(json!({"id": "1234567890", "filename": "catalogo.pdf"})))]
pub struct MediaRef {
    // Each field may be `null`, read as left out (as `MediaRef::from_json` reads it); an
    // answer leaves it out.
    /// An http(s) URL of the media.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1)]
    pub link: Option<String>,
    /// A media id (from `POST /v1/media`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1)]
    pub id: Option<String>,
    /// A document's file name, as the recipient sees it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

impl Card {
    /// Reads the `carousel` of operator input: `null` is none, otherwise an array of
    /// `{"header": {"format": "IMAGE"|"VIDEO", …}, "body": "…", "buttons": […]}` (2 to 10
    /// cards, Meta's bounds). Errors name the card and field, e.g. `carousel[1].header …`.
    pub fn list_from_json(value: &Value) -> Result<Vec<Card>, String> {
        let items = match value {
            Value::Null => return Ok(Vec::new()),
            Value::Array(items) => items,
            other => {
                return Err(format!(
                    "carousel must be an array, got {}",
                    json_kind(other)
                ));
            }
        };
        if !(MIN_CARDS..=MAX_CARDS).contains(&items.len()) {
            return Err(format!(
                "carousel has {} cards; WhatsApp allows {MIN_CARDS} to {MAX_CARDS}",
                items.len()
            ));
        }
        items
            .iter()
            .enumerate()
            .map(|(c, item)| {
                let at = format!("carousel[{c}]");
                let Value::Object(obj) = item else {
                    return Err(format!("{at} must be an object, got {}", json_kind(item)));
                };
                if let Some(key) = obj
                    .keys()
                    .find(|k| !["header", "body", "buttons"].contains(&k.as_str()))
                {
                    return Err(format!(
                        "{at}.{key} is not a field of a card (header, body, buttons)"
                    ));
                }
                if let Some((key, _)) = obj.iter().find(|(_, v)| v.is_null()) {
                    return Err(format!(
                        "{at}.{key} must not be null (leave the field out instead)"
                    ));
                }
                let header = match obj.get("header") {
                    None | Some(Value::Null) => {
                        return Err(format!(
                            "{at}.header is required (an IMAGE or VIDEO header)"
                        ));
                    }
                    Some(h) => Header::from_json(h).map_err(|e| format!("{at}.{e}"))?,
                };
                if !matches!(header, Header::Image { .. } | Header::Video { .. }) {
                    return Err(format!(
                        "{at}.header must be IMAGE or VIDEO, got {}",
                        header.format()
                    ));
                }
                Ok(Card {
                    header: Some(header),
                    body: optional_string(obj, "body", &format!("{at}.body"))?.unwrap_or_default(),
                    buttons: Button::list_from_json_at(
                        obj.get("buttons").unwrap_or(&Value::Null),
                        &format!("{at}.buttons"),
                    )?,
                })
            })
            .collect()
    }
}

/// Fewest and most cards of a carousel (Meta's bounds).
const MIN_CARDS: usize = 2;
const MAX_CARDS: usize = 10;

impl Offer {
    /// Reads `{"text": "…", "hasExpiration": true}` of operator input.
    pub fn from_json(value: &Value) -> Result<Offer, String> {
        let Value::Object(obj) = value else {
            return Err(format!(
                "limitedTimeOffer must be an object with a text, got {}",
                json_kind(value)
            ));
        };
        if let Some(key) = obj
            .keys()
            .find(|k| !["text", "hasExpiration"].contains(&k.as_str()))
        {
            return Err(format!(
                "limitedTimeOffer.{key} is not a field of an offer (text, hasExpiration)"
            ));
        }
        let text = optional_string(obj, "text", "limitedTimeOffer.text")?
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| "limitedTimeOffer.text is required".to_string())?;
        let has_expiration = match obj.get("hasExpiration") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(format!(
                    "limitedTimeOffer.hasExpiration must be true or false, got {}",
                    json_kind(other)
                ));
            }
        };
        Ok(Offer {
            text,
            has_expiration,
        })
    }
}

impl MediaRef {
    /// Reads `{"link": …}` or `{"id": …}` with an optional `filename`; errors
    /// start with `field`.
    pub fn from_json(value: &Value, field: &str) -> Result<MediaRef, String> {
        let Value::Object(obj) = value else {
            return Err(format!(
                "{field} must be an object with a link or an id, got {}",
                json_kind(value)
            ));
        };
        for key in obj.keys() {
            if !["link", "id", "filename"].contains(&key.as_str()) {
                return Err(format!(
                    "{field}.{key} is not a field of a media (link, id, filename)"
                ));
            }
        }
        let media = MediaRef {
            link: optional_string(obj, "link", &format!("{field}.link"))?,
            id: optional_string(obj, "id", &format!("{field}.id"))?,
            filename: optional_string(obj, "filename", &format!("{field}.filename"))?,
        };
        match (&media.link, &media.id) {
            (Some(_), Some(_)) => Err(format!("{field}: give a link or an id, not both")),
            (None, None) => Err(format!("{field} needs a link or an id")),
            (Some(link), None) => {
                check_media_link(link).map_err(|m| format!("{field}.link {m}"))?;
                Ok(media)
            }
            (None, Some(id)) => {
                check_media_id(id).map_err(|m| format!("{field}.id {m}"))?;
                Ok(media)
            }
        }
    }

    /// Checks that this media suits a header of `format`; errors start with `field`.
    pub fn check_for(&self, format: &str, field: &str) -> Result<(), String> {
        if self.filename.is_some() && format != "DOCUMENT" {
            return Err(format!(
                "{field}.filename is only for DOCUMENT headers, this one is {format}"
            ));
        }
        if let Some(filename) = &self.filename {
            check_filename(filename).map_err(|m| format!("{field}.filename {m}"))?;
        }
        if let Some(link) = &self.link {
            check_link_kind(link, format).map_err(|m| format!("{field}.link {m}"))?;
        }
        Ok(())
    }
}

/// Longest media link accepted (Meta gives no figure; 2,048 is what browsers and CDNs keep).
pub const MAX_LINK_LEN: usize = 2048;
/// Longest document file name accepted (Meta shows it under the document; 240 is a common file-system bound).
pub const MAX_FILENAME_LEN: usize = 240;

/// A media link: an absolute http(s) URL with a host, no spaces or control characters.
pub fn check_media_link(link: &str) -> Result<(), String> {
    if link.len() > MAX_LINK_LEN {
        return Err(format!("is longer than {MAX_LINK_LEN} characters"));
    }
    if link.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must not contain spaces or control characters".into());
    }
    let lower = link.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or_else(|| {
            format!(
                "must be an http:// or https:// URL, got \"{}\"",
                short(link)
            )
        })?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return Err(format!("must name a host, got \"{}\"", short(link)));
    }
    Ok(())
}

/// A media id (Meta's are digits; the sandbox's are `sandbox-media-…`): 1 to 128 of
/// `[A-Za-z0-9_.:-]`.
pub fn check_media_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 128 {
        return Err("must be 1 to 128 characters".into());
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b))
    {
        return Err(
            "must be letters, digits, '_', '.', ':' or '-' (a media id from POST /v1/media)".into(),
        );
    }
    Ok(())
}

fn check_filename(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if name.chars().count() > MAX_FILENAME_LEN {
        return Err(format!("is longer than {MAX_FILENAME_LEN} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

/// File extensions by header format (Meta's supported media types); a link
/// whose path ends in another format's extension is media of the wrong kind.
const EXTENSIONS: &[(&str, &[&str])] = &[
    ("IMAGE", &["jpg", "jpeg", "png"]),
    ("VIDEO", &["mp4", "3gp", "3gpp"]),
    ("GIF", &["mp4", "gif"]),
    (
        "DOCUMENT",
        &["pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "txt"],
    ),
];

fn check_link_kind(link: &str, format: &str) -> Result<(), String> {
    let path = link.split(['?', '#']).next().unwrap_or(link);
    let last = path.rsplit('/').next().unwrap_or("");
    let Some((_, ext)) = last.rsplit_once('.') else {
        return Ok(());
    };
    let ext = ext.to_ascii_lowercase();
    let Some((_, allowed)) = EXTENSIONS.iter().find(|(f, _)| *f == format) else {
        return Ok(());
    };
    if allowed.contains(&ext.as_str()) {
        return Ok(());
    }
    if let Some((other, _)) = EXTENSIONS
        .iter()
        .find(|(f, exts)| *f != format && exts.contains(&ext.as_str()))
    {
        return Err(format!(
            "points to a .{ext} file, which is {other} media, but the template's header is {format} ({})",
            allowed.join(", ")
        ));
    }
    Ok(())
}

fn short(text: &str) -> String {
    text.chars().take(60).collect()
}

/// A template header. JSON: `{"format":"TEXT","text":"Hola {{name}}"}` or
/// `{"format":"IMAGE"|"VIDEO"|"GIF"|"DOCUMENT","example":"https://…","defaultMedia":{…},"sample":"…"}`
/// or `{"format":"LOCATION"}`.
///
/// For media headers the media is chosen per send (`header.link` /
/// `header.id`); when a send gives none, the operator's default is used:
/// `defaultMedia`, else `example` (a public URL the operator gave, sent as
/// the link, as before). `sample` is Meta's sample (`header_handle`) of a
/// synced template: shown, never sent (Meta's links to it expire).
// The document's schema names each variant's fields in camelCase itself (`#[schema(rename_all)]`):
// utoipa does not read serde's `rename_all_fields`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(
    tag = "format",
    rename_all = "UPPERCASE",
    rename_all_fields = "camelCase"
)]
#[schema(
    as = TemplateHeader,
    description = "A template header: text (with placeholders), media chosen per send, or a location."
)]
pub enum Header {
    Text {
        text: String,
    },
    #[schema(rename_all = "camelCase")]
    Image {
        /// Public URL of the media, sent as the header's media when a send gives none (unless `defaultMedia` is set).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        example: Option<String>,
        /// Meta's sample of a synced template (`header_handle`): shown, never sent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sample: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(schema_with = nullable_media_ref)]
        default_media: Option<MediaRef>,
    },
    #[schema(rename_all = "camelCase")]
    Video {
        /// Public URL of the media, sent as the header's media when a send gives none (unless `defaultMedia` is set).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        example: Option<String>,
        /// Meta's sample of a synced template (`header_handle`): shown, never sent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sample: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(schema_with = nullable_media_ref)]
        default_media: Option<MediaRef>,
    },
    #[schema(rename_all = "camelCase")]
    Gif {
        /// Public URL of the media, sent as the header's media when a send gives none (unless `defaultMedia` is set).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        example: Option<String>,
        /// Meta's sample of a synced template (`header_handle`): shown, never sent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sample: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(schema_with = nullable_media_ref)]
        default_media: Option<MediaRef>,
    },
    #[schema(rename_all = "camelCase")]
    Document {
        /// Public URL of the media, sent as the header's media when a send gives none (unless `defaultMedia` is set).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        example: Option<String>,
        /// Meta's sample of a synced template (`header_handle`): shown, never sent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sample: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(schema_with = nullable_media_ref)]
        default_media: Option<MediaRef>,
    },
    Location {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        example: Option<String>,
    },
}

/// A media header's `defaultMedia` in the document: a `MediaRef` or null.
fn nullable_media_ref() -> utoipa::openapi::schema::Schema {
    utoipa::openapi::schema::OneOfBuilder::new()
        .item(utoipa::openapi::schema::Object::with_type(
            utoipa::openapi::schema::Type::Null,
        ))
        .item(utoipa::openapi::Ref::from_schema_name("MediaRef"))
        .build()
        .into()
}

const HEADER_FORMATS: &str = "TEXT, IMAGE, VIDEO, GIF, DOCUMENT or LOCATION";

impl Header {
    /// Reads a header as an operator would write it: a plain JSON string is a
    /// TEXT header; an object has a `format` (case-insensitive; it may be left
    /// out when `text` is given) and `text` or `example`.
    ///
    /// `null` is an error here: callers treat an absent or null header as "no
    /// header" before calling this.
    pub fn from_json(value: &Value) -> Result<Header, String> {
        let obj = match value {
            Value::String(text) => {
                if text.trim().is_empty() {
                    return Err("header must not be empty".to_string());
                }
                return Ok(Header::Text { text: text.clone() });
            }
            Value::Object(obj) => obj,
            other => {
                return Err(format!(
                    "header must be a string (a text header) or an object with a format, got {}",
                    json_kind(other)
                ));
            }
        };
        let format = match obj.get("format") {
            None | Some(Value::Null) if obj.contains_key("text") => "TEXT".to_string(),
            None | Some(Value::Null) => {
                return Err(format!("header.format is required ({HEADER_FORMATS})"));
            }
            Some(Value::String(f)) => f.trim().to_ascii_uppercase(),
            Some(other) => {
                return Err(format!(
                    "header.format must be a string ({HEADER_FORMATS}), got {}",
                    json_kind(other)
                ));
            }
        };
        // Operator input: a field the header's format does not have is refused, not dropped.
        let fields: &[&str] = match format.as_str() {
            "TEXT" => &["format", "text"],
            "LOCATION" => &["format", "example"],
            _ => &["format", "example", "sample", "defaultMedia"],
        };
        if let Some(key) = obj.keys().find(|k| !fields.contains(&k.as_str())) {
            return Err(format!(
                "header.{key} is not a field of {format} headers ({})",
                fields.join(", ")
            ));
        }
        if format == "TEXT" {
            let text = optional_string(obj, "text", "header.text")?
                .filter(|t| !t.trim().is_empty())
                .ok_or_else(|| "header.text is required for TEXT headers".to_string())?;
            return Ok(Header::Text { text });
        }
        let example =
            optional_string(obj, "example", "header.example")?.filter(|e| !e.trim().is_empty());
        let sample =
            optional_string(obj, "sample", "header.sample")?.filter(|e| !e.trim().is_empty());
        let default_media = match obj.get("defaultMedia") {
            None | Some(Value::Null) => None,
            Some(v) => Some(MediaRef::from_json(v, "header.defaultMedia")?),
        };
        if format == "LOCATION" {
            return Ok(Header::Location { example });
        }
        if let Some(m) = &default_media {
            m.check_for(&format, "header.defaultMedia")?;
        }
        match format.as_str() {
            "IMAGE" => Ok(Header::Image {
                example,
                sample,
                default_media,
            }),
            "VIDEO" => Ok(Header::Video {
                example,
                sample,
                default_media,
            }),
            "GIF" => Ok(Header::Gif {
                example,
                sample,
                default_media,
            }),
            "DOCUMENT" => Ok(Header::Document {
                example,
                sample,
                default_media,
            }),
            _ => Err(format!(
                "header.format must be one of {HEADER_FORMATS}, got \"{format}\""
            )),
        }
    }

    /// A media header of `format` (IMAGE, VIDEO, GIF, DOCUMENT) with only an example link.
    pub fn media(format: &str, example: Option<String>) -> Option<Header> {
        let (sample, default_media) = (None, None);
        Some(match format {
            "IMAGE" => Header::Image {
                example,
                sample,
                default_media,
            },
            "VIDEO" => Header::Video {
                example,
                sample,
                default_media,
            },
            "GIF" => Header::Gif {
                example,
                sample,
                default_media,
            },
            "DOCUMENT" => Header::Document {
                example,
                sample,
                default_media,
            },
            _ => return None,
        })
    }

    /// `TEXT`, `IMAGE`, `VIDEO`, `GIF`, `DOCUMENT` or `LOCATION`.
    pub fn format(&self) -> &'static str {
        match self {
            Header::Text { .. } => "TEXT",
            Header::Image { .. } => "IMAGE",
            Header::Video { .. } => "VIDEO",
            Header::Gif { .. } => "GIF",
            Header::Document { .. } => "DOCUMENT",
            Header::Location { .. } => "LOCATION",
        }
    }

    /// The parameter type of a media header as Meta names it at send time
    /// (`image`, `video`, `gif`, `document`); None for TEXT and LOCATION.
    pub fn media_kind(&self) -> Option<&'static str> {
        match self {
            Header::Image { .. } => Some("image"),
            Header::Video { .. } => Some("video"),
            Header::Gif { .. } => Some("gif"),
            Header::Document { .. } => Some("document"),
            _ => None,
        }
    }

    /// The media a send without its own uses: `defaultMedia`, else the
    /// operator's `example` link.
    pub fn default_media(&self) -> Option<MediaRef> {
        match self {
            Header::Image {
                example,
                default_media,
                ..
            }
            | Header::Video {
                example,
                default_media,
                ..
            }
            | Header::Gif {
                example,
                default_media,
                ..
            }
            | Header::Document {
                example,
                default_media,
                ..
            } => default_media.clone().or_else(|| {
                example.as_ref().map(|link| MediaRef {
                    link: Some(link.clone()),
                    ..MediaRef::default()
                })
            }),
            _ => None,
        }
    }

    /// Meta's sample of a synced media header, or the operator's example.
    pub fn sample(&self) -> Option<&str> {
        match self {
            Header::Image {
                example, sample, ..
            }
            | Header::Video {
                example, sample, ..
            }
            | Header::Gif {
                example, sample, ..
            }
            | Header::Document {
                example, sample, ..
            } => sample.as_deref().or(example.as_deref()),
            Header::Location { example } => example.as_deref(),
            Header::Text { .. } => None,
        }
    }

    /// The header's text when it is a TEXT header.
    pub fn text(&self) -> Option<&str> {
        match self {
            Header::Text { text } => Some(text),
            _ => None,
        }
    }
}

/// A template button. JSON: `{"type":"QUICK_REPLY","text":..}`,
/// `{"type":"URL","text":..,"url":"https://x.com/track/{{1}}"}`,
/// `{"type":"PHONE_NUMBER","text":..,"phoneNumber":..}`,
/// `{"type":"COPY_CODE","example":..}`, `{"type":"OTP","otpType":"COPY_CODE"}`,
/// `{"type":"FLOW","text":..,"flowId":..}`, `{"type":"CATALOG","text":..}`,
/// `{"type":"MPM","text":..}`, `{"type":"VOICE_CALL","text":..}`; a type Meta
/// adds later is kept as `{"type":"OTHER","kind":"<Meta's type>","raw":{…}}`.
// As for [`Header`], each variant renames its fields for the document itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(
    tag = "type",
    rename_all = "SCREAMING_SNAKE_CASE",
    rename_all_fields = "camelCase"
)]
#[schema(as = TemplateButton, description = "A template button.")]
pub enum Button {
    QuickReply {
        text: String,
    },
    Url {
        text: String,
        /// May end with a placeholder, e.g. `https://x.com/track/{{1}}`.
        url: String,
    },
    #[schema(rename_all = "camelCase")]
    PhoneNumber {
        text: String,
        phone_number: String,
    },
    CopyCode {
        example: String,
    },
    /// An authentication template's code button (`otp_type` COPY_CODE,
    /// ONE_TAP or ZERO_TAP): sent as a `url` button carrying the code.
    #[schema(rename_all = "camelCase")]
    Otp {
        #[schema(schema_with = otp_type_schema)]
        otp_type: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(nullable = false)]
        text: Option<String>,
    },
    #[schema(rename_all = "camelCase")]
    Flow {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(nullable = false)]
        flow_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(nullable = false)]
        flow_action: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(nullable = false)]
        navigate_screen: Option<String>,
    },
    Catalog {
        text: String,
    },
    Mpm {
        text: String,
    },
    VoiceCall {
        text: String,
    },
    /// A button type plantilla does not know yet: kept so the other buttons keep their index; the template is not sendable.
    Other {
        /// Meta's type of the button.
        kind: String,
        #[schema(value_type = Object)]
        raw: Value,
    },
}

/// An OTP button's `otpType` in the document: the types operator input takes.
fn otp_type_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::Object::builder()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["COPY_CODE", "ONE_TAP", "ZERO_TAP"]))
        .build()
}

const BUTTON_TYPES: &str =
    "QUICK_REPLY, URL, PHONE_NUMBER, COPY_CODE, OTP, FLOW, CATALOG, MPM or VOICE_CALL";
/// Meta allows at most 10 buttons on a template.
const MAX_BUTTONS: usize = 10;
/// OTP button kinds.
const OTP_TYPES: [&str; 3] = ["COPY_CODE", "ONE_TAP", "ZERO_TAP"];

impl Button {
    /// Meta's name of the button's type (`QUICK_REPLY`, `URL`, …).
    pub fn kind(&self) -> &str {
        match self {
            Button::QuickReply { .. } => "QUICK_REPLY",
            Button::Url { .. } => "URL",
            Button::PhoneNumber { .. } => "PHONE_NUMBER",
            Button::CopyCode { .. } => "COPY_CODE",
            Button::Otp { .. } => "OTP",
            Button::Flow { .. } => "FLOW",
            Button::Catalog { .. } => "CATALOG",
            Button::Mpm { .. } => "MPM",
            Button::VoiceCall { .. } => "VOICE_CALL",
            Button::Other { kind, .. } => kind,
        }
    }

    /// The label the recipient sees.
    pub fn label(&self) -> String {
        match self {
            Button::QuickReply { text }
            | Button::Url { text, .. }
            | Button::PhoneNumber { text, .. }
            | Button::Flow { text, .. }
            | Button::Catalog { text }
            | Button::Mpm { text }
            | Button::VoiceCall { text } => text.clone(),
            Button::CopyCode { .. } => "Copy offer code".into(),
            Button::Otp { text, otp_type } => {
                text.clone().unwrap_or_else(|| match otp_type.as_str() {
                    "ONE_TAP" => "Autofill".into(),
                    _ => "Copy code".into(),
                })
            }
            Button::Other { raw, kind } => raw["text"].as_str().unwrap_or(kind).to_string(),
        }
    }

    /// Reads the `buttons` of operator input: `null` is no buttons, otherwise
    /// an array of button objects. `type` is case-insensitive; `phoneNumber`
    /// may also be written `phone_number` (and `otpType` `otp_type`, `flowId`
    /// `flow_id`). Errors name the index and field, e.g.
    /// `buttons[1].url is required for URL buttons`.
    pub fn list_from_json(value: &Value) -> Result<Vec<Button>, String> {
        Button::list_from_json_at(value, "buttons")
    }

    /// [`Button::list_from_json`] for buttons at `field` (e.g. `carousel[0].buttons`).
    pub fn list_from_json_at(value: &Value, field: &str) -> Result<Vec<Button>, String> {
        let items = match value {
            Value::Null => return Ok(Vec::new()),
            Value::Array(items) => items,
            other => {
                return Err(format!(
                    "{field} must be an array, got {}",
                    json_kind(other)
                ));
            }
        };
        if items.len() > MAX_BUTTONS {
            return Err(format!(
                "{field} has {} entries; WhatsApp allows at most {MAX_BUTTONS}",
                items.len()
            ));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, item)| Button::from_json_at(&format!("{field}[{i}]"), item))
            .collect()
    }

    fn from_json_at(at: &str, value: &Value) -> Result<Button, String> {
        let Value::Object(obj) = value else {
            return Err(format!("{at} must be an object, got {}", json_kind(value)));
        };
        let kind = optional_string(obj, "type", &format!("{at}.type"))?
            .ok_or_else(|| format!("{at}.type is required ({BUTTON_TYPES})"))?;
        let kind = kind.trim().to_ascii_uppercase();
        let fields: &[&str] = match kind.as_str() {
            "URL" => &["url"],
            "PHONE_NUMBER" => &["phoneNumber", "phone_number"],
            "COPY_CODE" => &["example"],
            "OTP" => &["otpType", "otp_type"],
            "FLOW" => &[
                "flowId",
                "flow_id",
                "flowAction",
                "flow_action",
                "navigateScreen",
                "navigate_screen",
            ],
            _ => &[],
        };
        if let Some(key) = obj.keys().find(|k| {
            let k = k.as_str();
            k != "type" && (k != "text" || kind == "COPY_CODE") && !fields.contains(&k)
        }) {
            return Err(format!("{at}.{key} is not a field of a {kind} button"));
        }
        if let Some((key, _)) = obj.iter().find(|(_, v)| v.is_null()) {
            return Err(format!(
                "{at}.{key} must be a string, got null (leave the field out instead)"
            ));
        }
        let optional = |key: &str, alias: Option<&str>| -> Result<Option<String>, String> {
            let mut found = optional_string(obj, key, &format!("{at}.{key}"))?;
            if found.is_none()
                && let Some(alias) = alias
            {
                found = optional_string(obj, alias, &format!("{at}.{alias}"))?;
            }
            Ok(found.filter(|s| !s.trim().is_empty()))
        };
        let required = |key: &str, alias: Option<&str>| -> Result<String, String> {
            optional(key, alias)?
                .ok_or_else(|| format!("{at}.{key} is required for {kind} buttons"))
        };
        match kind.as_str() {
            "QUICK_REPLY" => Ok(Button::QuickReply {
                text: required("text", None)?,
            }),
            "URL" => Ok(Button::Url {
                text: required("text", None)?,
                url: required("url", None)?,
            }),
            "PHONE_NUMBER" => Ok(Button::PhoneNumber {
                text: required("text", None)?,
                phone_number: required("phoneNumber", Some("phone_number"))?,
            }),
            "COPY_CODE" => Ok(Button::CopyCode {
                example: required("example", None)?,
            }),
            "OTP" => {
                let otp_type = required("otpType", Some("otp_type"))?.to_ascii_uppercase();
                if !OTP_TYPES.contains(&otp_type.as_str()) {
                    return Err(format!(
                        "{at}.otpType must be COPY_CODE, ONE_TAP or ZERO_TAP, got \"{otp_type}\""
                    ));
                }
                Ok(Button::Otp {
                    otp_type,
                    text: optional("text", None)?,
                })
            }
            "FLOW" => Ok(Button::Flow {
                text: required("text", None)?,
                flow_id: optional("flowId", Some("flow_id"))?,
                flow_action: optional("flowAction", Some("flow_action"))?,
                navigate_screen: optional("navigateScreen", Some("navigate_screen"))?,
            }),
            "CATALOG" => Ok(Button::Catalog {
                text: required("text", None)?,
            }),
            "MPM" => Ok(Button::Mpm {
                text: required("text", None)?,
            }),
            "VOICE_CALL" => Ok(Button::VoiceCall {
                text: required("text", None)?,
            }),
            _ => Err(format!(
                "{at}.type must be one of {BUTTON_TYPES}, got \"{kind}\""
            )),
        }
    }
}

fn optional_string(
    obj: &Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Option<String>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!(
            "{field} must be a string, got {}",
            json_kind(other)
        )),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

// ---------------------------------------------------------------------------
// Placeholders
// ---------------------------------------------------------------------------

/// A valid placeholder name: `order_id` (named) or `1` (positional), without
/// braces or surrounding spaces. Cannot hold an invalid name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Placeholder(String);

impl Placeholder {
    /// Parses what stands between the braces; surrounding spaces and tabs are
    /// ignored.
    pub fn parse(inner: &str) -> Result<Placeholder, PlaceholderError> {
        let name = inner.trim_matches([' ', '\t']);
        let raw = || format!("{{{{{inner}}}}}");
        if name.is_empty() {
            return Err(PlaceholderError {
                raw: raw(),
                kind: PlaceholderErrorKind::Empty,
            });
        }
        if name.bytes().all(|b| b.is_ascii_digit()) {
            if name.len() > 1 && name.starts_with('0') {
                return Err(PlaceholderError {
                    raw: raw(),
                    kind: PlaceholderErrorKind::LeadingZero,
                });
            }
            return Ok(Placeholder(name.to_string()));
        }
        let mut bytes = name.bytes();
        let first_ok = bytes
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
        let rest_ok = bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if first_ok && rest_ok {
            Ok(Placeholder(name.to_string()))
        } else {
            Err(PlaceholderError {
                raw: raw(),
                kind: PlaceholderErrorKind::InvalidName,
            })
        }
    }

    /// The name without braces: `order_id` or `1`.
    pub fn name(&self) -> &str {
        &self.0
    }

    /// `{{1}}`-style.
    pub fn is_positional(&self) -> bool {
        self.0.bytes().all(|b| b.is_ascii_digit())
    }

    /// The number of a positional placeholder.
    pub fn position(&self) -> Option<u32> {
        if self.is_positional() {
            self.0.parse().ok()
        } else {
            None
        }
    }
}

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{{{}}}}}", self.0)
    }
}

/// Why a `{{…}}` is not a placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaceholderErrorKind {
    /// `{{}}` or `{{  }}`.
    Empty,
    /// Uppercase letters, spaces, hyphens, a leading digit followed by
    /// letters, and so on.
    InvalidName,
    /// `{{01}}`.
    LeadingZero,
    /// A `{{` with no `}}` after it.
    Unclosed,
}

/// An invalid placeholder, with the text as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceholderError {
    /// The offending text as written, e.g. `{{Order Id}}`.
    pub raw: String,
    pub kind: PlaceholderErrorKind,
}

impl fmt::Display for PlaceholderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let raw = &self.raw;
        match self.kind {
            PlaceholderErrorKind::Empty => write!(
                f,
                "{raw} is an empty placeholder: write a name such as {{{{order_id}}}} or a number such as {{{{1}}}}"
            ),
            PlaceholderErrorKind::InvalidName => write!(
                f,
                "{raw} is not a valid placeholder: a named placeholder uses only lowercase letters, digits and underscores and starts with a letter or underscore (e.g. {{{{order_id}}}}); a positional one is a number (e.g. {{{{1}}}})"
            ),
            PlaceholderErrorKind::LeadingZero => write!(
                f,
                "{raw} is not a valid placeholder: positional placeholders are numbers without leading zeros (e.g. {{{{1}}}})"
            ),
            PlaceholderErrorKind::Unclosed => {
                write!(
                    f,
                    "\"{raw}\" opens a placeholder with {{{{ that is never closed with }}}}"
                )
            }
        }
    }
}

impl std::error::Error for PlaceholderError {}

/// One `{{…}}` found in a text, with its byte range (braces included).
type Scanned = Result<(Range<usize>, Placeholder), PlaceholderError>;

/// Finds every `{{…}}` in `text`, valid or not, in order.
fn scan(text: &str) -> Vec<Scanned> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(rel) = text[from..].find("{{") {
        let start = from + rel;
        let inner_start = start + 2;
        match text[inner_start..].find("}}") {
            Some(rel_end) => {
                let inner_end = inner_start + rel_end;
                let end = inner_end + 2;
                out.push(
                    Placeholder::parse(&text[inner_start..inner_end]).map(|p| (start..end, p)),
                );
                from = end;
            }
            None => {
                let raw: String = text[start..].chars().take(24).collect();
                out.push(Err(PlaceholderError {
                    raw,
                    kind: PlaceholderErrorKind::Unclosed,
                }));
                break;
            }
        }
    }
    out
}

/// Every placeholder of `text`, in order of appearance, repeats included.
/// The first invalid `{{…}}` (or an unclosed `{{`) is an error.
pub fn parse_placeholders(text: &str) -> Result<Vec<Placeholder>, PlaceholderError> {
    scan(text)
        .into_iter()
        .map(|item| item.map(|(_, p)| p))
        .collect()
}

/// The valid placeholders of `text`, first appearance only, skipping invalid
/// ones. For texts already validated; never panics.
pub(crate) fn distinct_placeholders(text: &str) -> Vec<Placeholder> {
    let mut seen = BTreeSet::new();
    scan(text)
        .into_iter()
        .filter_map(Result::ok)
        .map(|(_, p)| p)
        .filter(|p| seen.insert(p.clone()))
        .collect()
}

/// Substitutes each valid placeholder that has a value in `params`; other
/// placeholders, and anything that is not a valid placeholder, stay as
/// written. For previews and logs of the rendered message.
pub fn render(text: &str, params: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (range, placeholder) in scan(text).into_iter().filter_map(Result::ok) {
        if let Some(value) = params.get(placeholder.name()) {
            out.push_str(&text[last..range.start]);
            out.push_str(value);
            last = range.end;
        }
    }
    out.push_str(&text[last..]);
    out
}

impl TemplateContent {
    /// The texts whose placeholders are params, in order: the TEXT header,
    /// the body, then each URL button's url (with the button's index).
    fn param_sources(&self) -> impl Iterator<Item = &str> {
        let header = self.header.as_ref().and_then(Header::text);
        let urls = self.buttons.iter().filter_map(|b| match b {
            Button::Url { url, .. } => Some(url.as_str()),
            _ => None,
        });
        header
            .into_iter()
            .chain(std::iter::once(self.body.as_str()))
            .chain(urls)
    }

    /// The required params: the placeholders of the TEXT header, the body
    /// and URL buttons' urls, in order of first appearance, without repeats.
    /// Invalid placeholders (rejected by [`TemplateContent::validate`]) are skipped.
    pub fn params(&self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for text in self.param_sources() {
            for placeholder in distinct_placeholders(text) {
                if seen.insert(placeholder.name().to_string()) {
                    out.push(placeholder.name().to_string());
                }
            }
        }
        // A carousel card's placeholders are its own: `card.<c>.<name>`.
        for (c, card) in self.extra.carousel.iter().enumerate() {
            let urls = card.buttons.iter().filter_map(|b| match b {
                Button::Url { url, .. } => Some(url.as_str()),
                _ => None,
            });
            for text in std::iter::once(card.body.as_str()).chain(urls) {
                for placeholder in distinct_placeholders(text) {
                    let name = format!("card.{c}.{}", placeholder.name());
                    if seen.insert(name.clone()) {
                        out.push(name);
                    }
                }
            }
        }
        out
    }

    /// Why plantilla cannot send this template, if it cannot: a component or button type it
    /// does not know (kept so the indexes of the others stay right).
    pub fn unsendable_reason(&self) -> Option<String> {
        if let Some(reason) = &self.extra.unsupported {
            return Some(reason.clone());
        }
        let unknown = |buttons: &[Button], at: &str| {
            buttons.iter().enumerate().find_map(|(i, b)| match b {
                Button::Other { kind, .. } => Some(format!(
                    "{at}[{i}] is a {kind} button, which plantilla cannot send yet"
                )),
                _ => None,
            })
        };
        if let Some(reason) = unknown(&self.buttons, "buttons") {
            return Some(reason);
        }
        self.extra
            .carousel
            .iter()
            .enumerate()
            .find_map(|(c, card)| unknown(&card.buttons, &format!("carousel[{c}].buttons")))
    }

    /// Checks operator input: every placeholder parses; a text header has at most one placeholder (Meta's limit) and the
    /// footer none; header and body do not mix named and positional
    /// placeholders; positional placeholders of the body are `{{1}}..{{n}}`
    /// without gaps; a URL button has at most one placeholder, at the end of
    /// its url. Errors name the field: `message`, `header.text`, `footer`,
    /// `buttons[0].url`, and each error starts with its field's name.
    ///
    /// An empty body passes: a template may be stored without its `message`
    /// (the send refuses it, contract case 5).
    ///
    /// A URL button's placeholder may be of either kind whatever the rest of
    /// the template uses: Meta sends it as an unnamed url suffix, and Meta's
    /// own URL buttons are `{{1}}` even in templates with named parameters.
    pub fn validate(&self) -> Result<(), String> {
        let field_err = |field: &str, e: PlaceholderError| format!("{field}: {e}");

        // Header and body: parse, then the one-kind rule across both.
        let mut kinds: Vec<(&str, Placeholder)> = Vec::new();
        if let Some(header) = &self.header {
            match header {
                Header::Text { text } => {
                    if text.trim().is_empty() {
                        return Err("header.text is required for TEXT headers".to_string());
                    }
                    let found =
                        parse_placeholders(text).map_err(|e| field_err("header.text", e))?;
                    let distinct: BTreeSet<_> = found.iter().collect();
                    if distinct.len() > 1 {
                        return Err(format!(
                            "header.text has {} placeholders; WhatsApp allows at most one in a text header",
                            distinct.len()
                        ));
                    }
                    kinds.extend(found.into_iter().map(|p| ("header.text", p)));
                }
                Header::Image { .. }
                | Header::Video { .. }
                | Header::Gif { .. }
                | Header::Document { .. }
                | Header::Location { .. } => {}
            }
        }
        let body = parse_placeholders(&self.body).map_err(|e| field_err("message", e))?;
        kinds.extend(body.iter().cloned().map(|p| ("message", p)));

        if let Some((named_field, named)) = kinds.iter().find(|(_, p)| !p.is_positional())
            && let Some((pos_field, pos)) = kinds.iter().find(|(_, p)| p.is_positional())
        {
            let (field, detail) = if named_field == pos_field {
                (
                    *named_field,
                    format!("mixes named ({named}) and positional ({pos}) placeholders"),
                )
            } else {
                // Report at the later field, whose kind disagrees with the earlier one.
                let (later, later_p, earlier, earlier_p) = if *named_field == "message" {
                    (named_field, named, pos_field, pos)
                } else {
                    (pos_field, pos, named_field, named)
                };
                (
                    *later,
                    format!(
                        "uses {} placeholders ({later_p}) but {earlier} uses {} ones ({earlier_p})",
                        kind_word(later_p),
                        kind_word(earlier_p)
                    ),
                )
            };
            return Err(format!(
                "{field} {detail}; a template uses one kind, named or positional"
            ));
        }

        // Positional placeholders of the body: 1..n without gaps.
        let numbers: BTreeSet<u32> = body.iter().filter_map(Placeholder::position).collect();
        if !numbers.is_empty() {
            let expected: BTreeSet<u32> = (1..=numbers.len() as u32).collect();
            if numbers != expected {
                let found: Vec<String> = numbers.iter().map(|n| format!("{{{{{n}}}}}")).collect();
                let max = numbers.iter().copied().max().unwrap_or(0);
                // A body may jump to {{4000000000}}: name a few gaps and count the rest,
                // never walking (or listing) every number up to the highest.
                let missing: Vec<String> = (1..=max)
                    .filter(|n| !numbers.contains(n))
                    .take(MAX_GAPS_NAMED)
                    .map(|n| format!("{{{{{n}}}}}"))
                    .collect();
                let gaps = u64::from(max) - numbers.range(1..).count() as u64;
                let more = gaps - missing.len() as u64;
                let why = if numbers.contains(&0) {
                    "numbering starts at {{1}}, not {{0}}".to_string()
                } else if more > 0 {
                    format!("missing {} and {more} more", missing.join(", "))
                } else {
                    format!("missing {}", missing.join(", "))
                };
                return Err(format!(
                    "message: positional placeholders must be numbered {{{{1}}}} to {{{{n}}}} without gaps; found {} ({why})",
                    found.join(", ")
                ));
            }
        }

        if let Some(footer) = &self.footer {
            let found = parse_placeholders(footer).map_err(|e| field_err("footer", e))?;
            if let Some(p) = found.first() {
                return Err(format!(
                    "footer: {p} is not allowed; WhatsApp footers cannot contain placeholders"
                ));
            }
        }

        check_url_buttons(&self.buttons, "buttons")?;

        for (c, card) in self.extra.carousel.iter().enumerate() {
            let at = format!("carousel[{c}]");
            match &card.header {
                Some(h) if h.media_kind().is_some() => {}
                _ => {
                    return Err(format!(
                        "{at}.header must be a media header (IMAGE or VIDEO) in a carousel card"
                    ));
                }
            }
            let found =
                parse_placeholders(&card.body).map_err(|e| field_err(&format!("{at}.body"), e))?;
            if let Some(p) = found.iter().find(|p| !p.is_positional()) {
                return Err(format!(
                    "{at}.body: {p} is named; carousel cards use positional placeholders ({{{{1}}}})"
                ));
            }
            check_url_buttons(&card.buttons, &format!("{at}.buttons"))?;
        }
        if let Some(offer) = &self.extra.limited_time_offer
            && offer.text.chars().count() > MAX_OFFER_TEXT
        {
            return Err(format!(
                "limitedTimeOffer.text is {} characters long; WhatsApp allows {MAX_OFFER_TEXT}",
                offer.text.chars().count()
            ));
        }
        Ok(())
    }
}

/// Longest limited-time offer text (Meta: 16 characters).
const MAX_OFFER_TEXT: usize = 16;

/// A URL button has at most one placeholder, at the end of its url.
fn check_url_buttons(buttons: &[Button], at: &str) -> Result<(), String> {
    for (i, button) in buttons.iter().enumerate() {
        if let Button::Url { url, .. } = button {
            let field = format!("{at}[{i}].url");
            let found = scan(url)
                .into_iter()
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{field}: {e}"))?;
            match found.as_slice() {
                [] => {}
                [(range, p)] => {
                    if range.end != url.trim_end().len() {
                        return Err(format!(
                            "{field}: the placeholder {p} must be at the end of the url (e.g. https://example.com/track/{p})"
                        ));
                    }
                }
                _ => {
                    return Err(format!(
                        "{field} has {} placeholders; a URL button has at most one, at the end of the url",
                        found.len()
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Most missing positional placeholders an error names.
const MAX_GAPS_NAMED: usize = 5;

fn kind_word(p: &Placeholder) -> &'static str {
    if p.is_positional() {
        "positional"
    } else {
        "named"
    }
}

// ---------------------------------------------------------------------------
// Params of a send
// ---------------------------------------------------------------------------

/// What is wrong with one required param.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamIssue {
    /// Not given.
    Absent,
    /// Empty or only whitespace.
    Empty,
    /// Contains `\n` or `\r`.
    Newline,
    /// Contains a tab.
    Tab,
    /// Contains another control character (NUL, escape, …).
    Control(char),
    /// More than 4 consecutive spaces.
    TooManySpaces,
}

/// One required param and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamProblem {
    pub name: String,
    pub issue: ParamIssue,
}

/// The required params a send cannot go out with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamProblems {
    /// Every required param that is absent, empty or refused by WhatsApp, in
    /// the template's order (what the API reports as `Missing params:[…]`).
    pub missing: Vec<String>,
    /// The same params, each with its reason, in the same order.
    pub problems: Vec<ParamProblem>,
}

impl ParamProblems {
    /// One sentence per problem, e.g. `params.name is missing` or
    /// `params.address contains a newline, which WhatsApp does not accept`.
    pub fn detail(&self) -> Vec<String> {
        self.problems
            .iter()
            .map(|p| {
                let name = &p.name;
                match p.issue {
                    ParamIssue::Absent => format!("params.{name} is missing"),
                    ParamIssue::Empty => format!("params.{name} is empty"),
                    ParamIssue::Newline => format!(
                        "params.{name} contains a newline, which WhatsApp does not accept"
                    ),
                    ParamIssue::Tab => {
                        format!("params.{name} contains a tab, which WhatsApp does not accept")
                    }
                    ParamIssue::Control(c) => format!(
                        "params.{name} contains a control character (U+{:04X}), which WhatsApp does not accept",
                        u32::from(c)
                    ),
                    ParamIssue::TooManySpaces => format!(
                        "params.{name} contains more than 4 consecutive spaces, which WhatsApp does not accept"
                    ),
                }
            })
            .collect()
    }
}

impl fmt::Display for ParamProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail().join("; "))
    }
}

impl std::error::Error for ParamProblems {}

/// The first control character of `text` (Unicode's Cc: U+0000 to U+001F and U+007F to
/// U+009F, newline and tab included), if any: WhatsApp refuses them in every text plantilla
/// passes on, so every way in (compatible, native and batch sends, the CLI, the admin API)
/// refuses them before anything is stored.
pub fn first_control(text: &str) -> Option<char> {
    text.chars().find(|c| c.is_control())
}

/// What WhatsApp would refuse in a param value, if anything.
fn value_issue(value: &str) -> Option<ParamIssue> {
    if value.trim().is_empty() {
        Some(ParamIssue::Empty)
    } else if value.contains(['\n', '\r']) {
        Some(ParamIssue::Newline)
    } else if value.contains('\t') {
        Some(ParamIssue::Tab)
    } else if let Some(c) = first_control(value) {
        Some(ParamIssue::Control(c))
    } else if value.contains("     ") {
        Some(ParamIssue::TooManySpaces)
    } else {
        None
    }
}

/// Checks the params of a send against the template's required params.
/// Params not in the template are ignored.
pub fn check_params(
    required: &[String],
    given: &BTreeMap<String, String>,
) -> Result<(), ParamProblems> {
    let mut seen = BTreeSet::new();
    let problems: Vec<ParamProblem> = required
        .iter()
        .filter(|name| seen.insert(name.as_str()))
        .filter_map(|name| {
            let issue = match given.get(name) {
                None => Some(ParamIssue::Absent),
                Some(value) => value_issue(value),
            };
            issue.map(|issue| ParamProblem {
                name: name.clone(),
                issue,
            })
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ParamProblems {
            missing: problems.iter().map(|p| p.name.clone()).collect(),
            problems,
        })
    }
}

pub use super::template_send::cloud_components;

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn names(found: &[Placeholder]) -> Vec<&str> {
        found.iter().map(Placeholder::name).collect()
    }

    fn body_only(body: &str) -> TemplateContent {
        TemplateContent {
            header: None,
            body: body.to_string(),
            footer: None,
            buttons: vec![],
            ..Default::default()
        }
    }

    fn url_button(url: &str) -> Button {
        Button::Url {
            text: "Track".into(),
            url: url.into(),
        }
    }

    // --- placeholders -----------------------------------------------------

    #[test]
    fn parses_named_and_positional_placeholders() {
        let found = parse_placeholders("Hi {{name}}, order {{order_id2}} is {{_x}}").unwrap();
        assert_eq!(names(&found), ["name", "order_id2", "_x"]);
        assert!(found.iter().all(|p| !p.is_positional()));

        let found = parse_placeholders("{{1}} and {{2}} and {{10}}").unwrap();
        assert_eq!(names(&found), ["1", "2", "10"]);
        assert!(found.iter().all(Placeholder::is_positional));
        assert_eq!(found[2].position(), Some(10));
        assert_eq!(found[0].to_string(), "{{1}}");
    }

    #[test]
    fn tolerates_spaces_inside_braces() {
        let found = parse_placeholders("Hola {{ name }} y {{\t1 }}").unwrap();
        assert_eq!(names(&found), ["name", "1"]);
    }

    #[test]
    fn keeps_repeats_in_parse_and_ignores_single_braces() {
        let found = parse_placeholders("{name} {{a}} {{a}} }} {").unwrap();
        assert_eq!(names(&found), ["a", "a"]);
        assert_eq!(parse_placeholders("no placeholders").unwrap(), vec![]);
    }

    #[test]
    fn rejects_invalid_placeholders_saying_which_and_why() {
        let e = parse_placeholders("Hi {{Order Id}}").unwrap_err();
        assert_eq!(e.kind, PlaceholderErrorKind::InvalidName);
        assert_eq!(e.raw, "{{Order Id}}");
        let msg = e.to_string();
        assert!(msg.contains("{{Order Id}}"), "{msg}");
        assert!(
            msg.contains("lowercase letters, digits and underscores"),
            "{msg}"
        );

        let e = parse_placeholders("Hi {{}}").unwrap_err();
        assert_eq!(e.kind, PlaceholderErrorKind::Empty);
        assert!(e.to_string().contains("{{}} is an empty placeholder"));
        assert_eq!(
            parse_placeholders("{{   }}").unwrap_err().kind,
            PlaceholderErrorKind::Empty
        );

        for bad in [
            "{{Name}}",
            "{{order-id}}",
            "{{1a}}",
            "{{é}}",
            "{{a b}}",
            "{{{a}}}",
        ] {
            assert_eq!(
                parse_placeholders(bad).unwrap_err().kind,
                PlaceholderErrorKind::InvalidName,
                "{bad}"
            );
        }
        assert_eq!(
            parse_placeholders("{{01}}").unwrap_err().kind,
            PlaceholderErrorKind::LeadingZero
        );
        let e = parse_placeholders("Hi {{name, bye").unwrap_err();
        assert_eq!(e.kind, PlaceholderErrorKind::Unclosed);
        assert!(e.to_string().contains("never closed"), "{e}");
    }

    // --- params ----------------------------------------------------------

    #[test]
    fn params_come_from_header_body_and_url_buttons_in_order_deduplicated() {
        let content = TemplateContent {
            header: Some(Header::Text {
                text: "Hola {{name}}".into(),
            }),
            body: "{{name}}, tu pedido {{order_id}} llega el {{ date }}. {{order_id}}".into(),
            footer: Some("Gracias".into()),
            buttons: vec![
                Button::QuickReply { text: "OK".into() },
                url_button("https://x.com/track/{{tracking}}"),
                url_button("https://x.com/o/{{order_id}}"),
                Button::PhoneNumber {
                    text: "Call".into(),
                    phone_number: "+50755667788".into(),
                },
            ],
            ..Default::default()
        };
        assert_eq!(content.params(), ["name", "order_id", "date", "tracking"]);
    }

    #[test]
    fn positional_params_in_order_of_first_appearance() {
        let content = TemplateContent {
            header: Some(Header::media("IMAGE", None).unwrap()),
            body: "Order {{2}} for {{1}} ({{2}})".into(),
            footer: None,
            buttons: vec![url_button("https://x.com/track/{{3}}")],
            ..Default::default()
        };
        assert_eq!(content.params(), ["2", "1", "3"]);
    }

    #[test]
    fn params_skip_invalid_placeholders_without_panicking() {
        assert_eq!(body_only("{{Bad}} {{ok}} {{").params(), ["ok"]);
        assert!(body_only("").params().is_empty());
    }

    // --- validate --------------------------------------------------------

    #[test]
    fn validate_accepts_good_templates() {
        let named = TemplateContent {
            header: Some(Header::Text {
                text: "Hola {{name}}".into(),
            }),
            body: "Hola {{name}}, pedido {{order_id}}".into(),
            footer: Some("Gracias".into()),
            buttons: vec![
                url_button("https://x.com/track/{{1}}"),
                Button::CopyCode {
                    example: "SAVE10".into(),
                },
            ],
            ..Default::default()
        };
        assert_eq!(named.validate(), Ok(()));
        assert_eq!(body_only("{{2}} then {{1}} then {{2}}").validate(), Ok(()));
        assert_eq!(body_only("No placeholders at all").validate(), Ok(()));
    }

    #[test]
    fn validate_names_the_field_of_an_invalid_placeholder() {
        let e = body_only("Hi {{Order Id}}").validate().unwrap_err();
        assert!(e.starts_with("message: {{Order Id}}"), "{e}");

        let mut content = body_only("Hi");
        content.header = Some(Header::Text {
            text: "{{}}".into(),
        });
        let e = content.validate().unwrap_err();
        assert!(e.starts_with("header.text: {{}}"), "{e}");

        let mut content = body_only("Hi");
        content.buttons = vec![
            Button::QuickReply { text: "a".into() },
            url_button("https://x.com/{{Id}}"),
        ];
        let e = content.validate().unwrap_err();
        assert!(e.starts_with("buttons[1].url: {{Id}}"), "{e}");
    }

    #[test]
    fn validate_rejects_mixing_named_and_positional() {
        let e = body_only("Hi {{name}}, order {{1}}")
            .validate()
            .unwrap_err();
        assert!(
            e.starts_with("message mixes named ({{name}}) and positional ({{1}})"),
            "{e}"
        );

        let mut content = body_only("Order {{1}}");
        content.header = Some(Header::Text {
            text: "Hola {{name}}".into(),
        });
        let e = content.validate().unwrap_err();
        assert!(
            e.starts_with(
                "message uses positional placeholders ({{1}}) but header.text uses named ones"
            ),
            "{e}"
        );

        let mut content = body_only("Hi {{name}}");
        content.header = Some(Header::Text {
            text: "Pedido {{1}}".into(),
        });
        let e = content.validate().unwrap_err();
        assert!(
            e.starts_with(
                "message uses named placeholders ({{name}}) but header.text uses positional ones"
            ),
            "{e}"
        );
    }

    #[test]
    fn validate_rejects_gaps_in_positional_body_placeholders() {
        let e = body_only("{{1}} and {{3}}").validate().unwrap_err();
        assert!(e.starts_with("message: positional placeholders"), "{e}");
        assert!(e.contains("missing {{2}}"), "{e}");

        let e = body_only("{{2}} only").validate().unwrap_err();
        assert!(e.contains("missing {{1}}"), "{e}");

        let e = body_only("{{0}} and {{1}}").validate().unwrap_err();
        assert!(e.contains("starts at {{1}}"), "{e}");
    }

    #[test]
    fn validate_names_a_few_gaps_of_a_huge_positional_jump_and_counts_the_rest() {
        // Found by the `placeholders` fuzz target: every gap up to the highest number was
        // listed, 4 billion strings for this body (a timeout, then out of memory).
        let e = body_only("{{1}} {{4294967295}}").validate().unwrap_err();
        assert!(
            e.ends_with("(missing {{2}}, {{3}}, {{4}}, {{5}}, {{6}} and 4294967288 more)"),
            "{e}"
        );
        let e = body_only("{{1}} {{3}} {{5}}").validate().unwrap_err();
        assert!(e.ends_with("(missing {{2}}, {{4}})"), "{e}");
    }

    #[test]
    fn validate_checks_url_buttons() {
        let mut content = body_only("Hi {{name}}");
        content.buttons = vec![url_button("https://x.com/{{a}}/{{b}}")];
        let e = content.validate().unwrap_err();
        assert!(e.starts_with("buttons[0].url has 2 placeholders"), "{e}");

        content.buttons = vec![
            Button::QuickReply { text: "a".into() },
            url_button("https://x.com/{{1}}/track"),
        ];
        let e = content.validate().unwrap_err();
        assert!(
            e.starts_with("buttons[1].url: the placeholder {{1}} must be at the end"),
            "{e}"
        );

        content.buttons = vec![url_button("https://x.com/static")];
        assert_eq!(content.validate(), Ok(()));
    }

    #[test]
    fn validate_checks_header_and_footer_and_allows_an_empty_body() {
        assert_eq!(body_only("").validate(), Ok(()));

        let mut content = body_only("Hi");
        content.header = Some(Header::Text {
            text: "{{a}} {{b}}".into(),
        });
        let e = content.validate().unwrap_err();
        assert!(e.starts_with("header.text has 2 placeholders"), "{e}");

        let mut content = body_only("Hi");
        content.footer = Some("Bye {{name}}".into());
        let e = content.validate().unwrap_err();
        assert!(e.starts_with("footer: {{name}} is not allowed"), "{e}");
    }

    // --- check_params ----------------------------------------------------

    #[test]
    fn check_params_accepts_complete_params_and_ignores_extras() {
        let required = vec!["name".to_string(), "order_id".to_string()];
        let given = map(&[("name", "Ana"), ("order_id", "A-1"), ("extra", "\n")]);
        assert_eq!(check_params(&required, &given), Ok(()));
        assert_eq!(check_params(&[], &BTreeMap::new()), Ok(()));
    }

    #[test]
    fn check_params_reports_missing_and_empty_in_required_order() {
        let required = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let given = map(&[("c", "  "), ("b", "ok")]);
        let problems = check_params(&required, &given).unwrap_err();
        assert_eq!(problems.missing, ["a", "c"]);
        assert_eq!(
            problems.detail(),
            ["params.a is missing", "params.c is empty"]
        );
    }

    #[test]
    fn check_params_rejects_values_whatsapp_refuses() {
        let required: Vec<String> = ["address", "note", "cr", "wide", "ok4"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let given = map(&[
            ("address", "Calle 1\nPanamá"),
            ("note", "a\tb"),
            ("cr", "a\rb"),
            ("wide", "a     b"),
            ("ok4", "a    b"),
        ]);
        let problems = check_params(&required, &given).unwrap_err();
        assert_eq!(problems.missing, ["address", "note", "cr", "wide"]);
        let issues: Vec<ParamIssue> = problems.problems.iter().map(|p| p.issue).collect();
        assert_eq!(
            issues,
            [
                ParamIssue::Newline,
                ParamIssue::Tab,
                ParamIssue::Newline,
                ParamIssue::TooManySpaces
            ]
        );
        let detail = problems.detail();
        assert_eq!(
            detail[0],
            "params.address contains a newline, which WhatsApp does not accept"
        );
        assert_eq!(
            detail[1],
            "params.note contains a tab, which WhatsApp does not accept"
        );
        assert_eq!(
            detail[3],
            "params.wide contains more than 4 consecutive spaces, which WhatsApp does not accept"
        );
        assert!(problems.to_string().contains("; "));
    }

    #[test]
    fn four_spaces_are_fine_five_are_not() {
        let required = vec!["x".to_string()];
        assert!(check_params(&required, &map(&[("x", "a    b")])).is_ok());
        assert!(check_params(&required, &map(&[("x", "a     b")])).is_err());
    }

    // --- render ----------------------------------------------------------

    #[test]
    fn render_substitutes_known_placeholders_only() {
        let params = map(&[("name", "Ana"), ("1", "42")]);
        assert_eq!(
            render(
                "Hola {{name}} / {{ name }} #{{1}} {{missing}} {{Bad}}",
                &params
            ),
            "Hola Ana / Ana #42 {{missing}} {{Bad}}"
        );
        assert_eq!(render("plain", &params), "plain");
        assert_eq!(render("tail {{name", &params), "tail {{name");
    }

    // --- components ------------------------------------------------------

    #[test]
    fn components_for_named_template() {
        let content = body_only("Hola {{name}}, tu pedido {{order_id}} ({{name}})");
        let params = map(&[("name", "Ana"), ("order_id", "A-1"), ("extra", "x")]);
        assert_eq!(
            cloud_components(&content, &params),
            vec![json!({
                "type": "body",
                "parameters": [
                    {"type": "text", "parameter_name": "name", "text": "Ana"},
                    {"type": "text", "parameter_name": "order_id", "text": "A-1"},
                ]
            })]
        );
    }

    #[test]
    fn components_for_positional_template_are_in_number_order() {
        let content = body_only("Order {{2}} for {{1}}");
        let params = map(&[("1", "Ana"), ("2", "A-1")]);
        assert_eq!(
            cloud_components(&content, &params),
            vec![json!({
                "type": "body",
                "parameters": [
                    {"type": "text", "text": "Ana"},
                    {"type": "text", "text": "A-1"},
                ]
            })]
        );
    }

    #[test]
    fn components_with_text_header() {
        let content = TemplateContent {
            header: Some(Header::Text {
                text: "Hola {{name}}".into(),
            }),
            body: "Tu pedido {{order_id}}".into(),
            footer: None,
            buttons: vec![],
            ..Default::default()
        };
        let params = map(&[("name", "Ana"), ("order_id", "A-1")]);
        assert_eq!(
            cloud_components(&content, &params),
            vec![
                json!({"type": "header", "parameters": [
                    {"type": "text", "parameter_name": "name", "text": "Ana"}
                ]}),
                json!({"type": "body", "parameters": [
                    {"type": "text", "parameter_name": "order_id", "text": "A-1"}
                ]}),
            ]
        );

        // A text header without placeholders sends no header component.
        let content = TemplateContent {
            header: Some(Header::Text {
                text: "Hola".into(),
            }),
            ..body_only("Tu pedido {{order_id}}")
        };
        let components = cloud_components(&content, &params);
        assert_eq!(components.len(), 1);
        assert_eq!(components[0]["type"], "body");
    }

    #[test]
    fn components_with_url_button_use_the_buttons_index() {
        let content = TemplateContent {
            header: None,
            body: "Hola {{name}}".into(),
            footer: None,
            buttons: vec![
                Button::QuickReply { text: "OK".into() },
                url_button("https://x.com/help"),
                url_button("https://x.com/track/{{1}}"),
            ],
            ..Default::default()
        };
        let params = map(&[("name", "Ana"), ("1", "TRK9")]);
        assert_eq!(
            cloud_components(&content, &params),
            vec![
                json!({"type": "body", "parameters": [
                    {"type": "text", "parameter_name": "name", "text": "Ana"}
                ]}),
                json!({
                    "type": "button",
                    "sub_type": "url",
                    "index": "2",
                    "parameters": [{"type": "text", "text": "TRK9"}]
                }),
            ]
        );
    }

    #[test]
    fn components_for_template_without_params_are_empty() {
        let content = TemplateContent {
            header: Some(Header::Text {
                text: "Hola".into(),
            }),
            body: "Gracias por su compra".into(),
            footer: Some("Tienda".into()),
            buttons: vec![
                Button::QuickReply { text: "OK".into() },
                url_button("https://x.com/help"),
                Button::PhoneNumber {
                    text: "Call".into(),
                    phone_number: "+50755667788".into(),
                },
            ],
            ..Default::default()
        };
        assert_eq!(
            cloud_components(&content, &BTreeMap::new()),
            Vec::<Value>::new()
        );
    }

    #[test]
    fn components_with_media_header_and_copy_code() {
        let content = TemplateContent {
            header: Some(Header::media("IMAGE", Some("https://cdn.x.com/a.png".into())).unwrap()),
            body: "Oferta".into(),
            footer: None,
            buttons: vec![Button::CopyCode {
                example: "SAVE10".into(),
            }],
            ..Default::default()
        };
        assert_eq!(
            cloud_components(&content, &BTreeMap::new()),
            vec![
                json!({"type": "header", "parameters": [
                    {"type": "image", "image": {"link": "https://cdn.x.com/a.png"}}
                ]}),
                json!({
                    "type": "button",
                    "sub_type": "copy_code",
                    "index": "0",
                    "parameters": [{"type": "coupon_code", "coupon_code": "SAVE10"}]
                }),
            ]
        );
        let no_link = TemplateContent {
            header: Some(Header::media("VIDEO", None).unwrap()),
            ..body_only("Hi")
        };
        assert!(
            cloud_components(&no_link, &BTreeMap::new()).is_empty(),
            "a media header with no media given and no default sends nothing (check_send refuses it first)"
        );
    }

    #[test]
    fn components_send_absent_params_as_empty_text() {
        let content = body_only("Hola {{name}}");
        let components = cloud_components(&content, &BTreeMap::new());
        assert_eq!(components[0]["parameters"][0]["text"], "");
    }

    // --- JSON shapes -----------------------------------------------------

    #[test]
    fn header_serde_shape() {
        let text = Header::Text {
            text: "Hola {{name}}".into(),
        };
        assert_eq!(
            serde_json::to_value(&text).unwrap(),
            json!({"format": "TEXT", "text": "Hola {{name}}"})
        );
        let image: Header =
            serde_json::from_value(json!({"format": "IMAGE", "example": "https://x/a.png"}))
                .unwrap();
        assert_eq!(
            image,
            Header::media("IMAGE", Some("https://x/a.png".into())).unwrap()
        );
        assert_eq!(
            serde_json::to_value(Header::media("VIDEO", None).unwrap()).unwrap(),
            json!({"format": "VIDEO"})
        );
    }

    #[test]
    fn header_from_json_accepts_operator_input() {
        assert_eq!(
            Header::from_json(&json!("Hola {{name}}")).unwrap(),
            Header::Text {
                text: "Hola {{name}}".into()
            }
        );
        assert_eq!(
            Header::from_json(&json!({"format": "text", "text": "Hi"})).unwrap(),
            Header::Text { text: "Hi".into() }
        );
        assert_eq!(
            Header::from_json(&json!({"text": "Hi"})).unwrap(),
            Header::Text { text: "Hi".into() }
        );
        assert_eq!(
            Header::from_json(&json!({"format": "DOCUMENT", "example": "https://x/a.pdf"}))
                .unwrap(),
            Header::media("DOCUMENT", Some("https://x/a.pdf".into())).unwrap()
        );
        assert_eq!(
            Header::from_json(&json!({"format": "LOCATION"})).unwrap(),
            Header::Location { example: None }
        );
    }

    #[test]
    fn header_from_json_errors_are_clear() {
        let e = Header::from_json(&json!(42)).unwrap_err();
        assert!(e.starts_with("header must be a string"), "{e}");
        let e = Header::from_json(&json!({"format": "AUDIO"})).unwrap_err();
        assert!(e.contains("header.format must be one of"), "{e}");
        assert!(e.contains("AUDIO"), "{e}");
        let e = Header::from_json(&json!({"format": "TEXT"})).unwrap_err();
        assert_eq!(e, "header.text is required for TEXT headers");
        let e = Header::from_json(&json!({"example": "x"})).unwrap_err();
        assert!(e.starts_with("header.format is required"), "{e}");
        let e = Header::from_json(&json!({"format": "IMAGE", "exampel": "https://x/a.png"}))
            .unwrap_err();
        assert_eq!(
            e,
            "header.exampel is not a field of IMAGE headers (format, example, sample, defaultMedia)"
        );
        let e = Header::from_json(&json!({"format": "LOCATION", "sample": "x"})).unwrap_err();
        assert!(
            e.starts_with("header.sample is not a field of LOCATION headers"),
            "{e}"
        );
        let e = Header::from_json(&json!({"text": "Hi", "example": "x"})).unwrap_err();
        assert!(
            e.starts_with("header.example is not a field of TEXT headers"),
            "{e}"
        );
        let e = Header::from_json(&json!({"format": "IMAGE", "example": 3})).unwrap_err();
        assert_eq!(e, "header.example must be a string, got a number");
        assert!(Header::from_json(&json!("")).is_err());
    }

    #[test]
    fn button_serde_shape() {
        let buttons = vec![
            Button::QuickReply { text: "OK".into() },
            url_button("https://x.com/track/{{1}}"),
            Button::PhoneNumber {
                text: "Call".into(),
                phone_number: "+1555".into(),
            },
            Button::CopyCode {
                example: "SAVE10".into(),
            },
        ];
        let value = serde_json::to_value(&buttons).unwrap();
        assert_eq!(
            value,
            json!([
                {"type": "QUICK_REPLY", "text": "OK"},
                {"type": "URL", "text": "Track", "url": "https://x.com/track/{{1}}"},
                {"type": "PHONE_NUMBER", "text": "Call", "phoneNumber": "+1555"},
                {"type": "COPY_CODE", "example": "SAVE10"},
            ])
        );
        let back: Vec<Button> = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(back, buttons);
        assert_eq!(Button::list_from_json(&value).unwrap(), buttons);
    }

    #[test]
    fn button_list_from_json_errors_name_index_and_field() {
        let e = Button::list_from_json(&json!([
            {"type": "QUICK_REPLY", "text": "OK"},
            {"type": "URL", "text": "Track"}
        ]))
        .unwrap_err();
        assert_eq!(e, "buttons[1].url is required for URL buttons");

        let e =
            Button::list_from_json(&json!([{"type": "PHONE_NUMBER", "text": "Call"}])).unwrap_err();
        assert_eq!(
            e,
            "buttons[0].phoneNumber is required for PHONE_NUMBER buttons"
        );

        let e = Button::list_from_json(&json!([{"type": "COPY_CODE"}])).unwrap_err();
        assert_eq!(e, "buttons[0].example is required for COPY_CODE buttons");

        let e = Button::list_from_json(&json!([{"text": "x"}])).unwrap_err();
        assert!(e.starts_with("buttons[0].type is required"), "{e}");

        let e = Button::list_from_json(&json!([{"type": "BOGUS", "text": "x"}])).unwrap_err();
        assert!(e.starts_with("buttons[0].type must be one of"), "{e}");

        let e =
            Button::list_from_json(&json!([{"type": "URL", "text": "x", "url": 5}])).unwrap_err();
        assert_eq!(e, "buttons[0].url must be a string, got a number");

        let e = Button::list_from_json(&json!(["OK"])).unwrap_err();
        assert_eq!(e, "buttons[0] must be an object, got a string");

        let e = Button::list_from_json(&json!({"type": "URL"})).unwrap_err();
        assert_eq!(e, "buttons must be an array, got an object");

        let eleven = Value::Array(vec![json!({"type": "QUICK_REPLY", "text": "a"}); 11]);
        assert!(
            Button::list_from_json(&eleven)
                .unwrap_err()
                .contains("at most 10")
        );
    }

    #[test]
    fn buttons_cards_and_offers_refuse_fields_they_do_not_have() {
        let e = Button::list_from_json(&json!([{"type": "QUICK_REPLY", "text": "a", "url": "x"}]))
            .unwrap_err();
        assert_eq!(e, "buttons[0].url is not a field of a QUICK_REPLY button");
        let e =
            Button::list_from_json(&json!([{"type": "COPY_CODE", "example": "A", "text": "t"}]))
                .unwrap_err();
        assert_eq!(e, "buttons[0].text is not a field of a COPY_CODE button");
        let e = Card::list_from_json(&json!([
            {"header": {"format": "IMAGE"}, "body": "a", "extra": 1},
            {"header": {"format": "IMAGE"}, "body": "b"}
        ]))
        .unwrap_err();
        assert!(e.starts_with("carousel[0].extra is not a field"), "{e}");
        let e = Offer::from_json(&json!({"text": "a", "x": 1})).unwrap_err();
        assert!(e.starts_with("limitedTimeOffer.x is not a field"), "{e}");
        let e =
            Button::list_from_json(&json!([{"type": "OTP", "otpType": "COPY_CODE", "text": null}]))
                .unwrap_err();
        assert!(
            e.starts_with("buttons[0].text must be a string, got null"),
            "{e}"
        );
    }

    #[test]
    fn button_list_from_json_is_lenient_about_case_and_aliases() {
        assert_eq!(Button::list_from_json(&Value::Null).unwrap(), vec![]);
        let buttons = Button::list_from_json(&json!([
            {"type": "phone_number", "text": "Call", "phone_number": "+1555"},
            {"type": "url", "text": "Go", "url": "https://x.com"}
        ]))
        .unwrap();
        assert_eq!(
            buttons,
            vec![
                Button::PhoneNumber {
                    text: "Call".into(),
                    phone_number: "+1555".into()
                },
                url_button_text("Go", "https://x.com"),
            ]
        );
    }

    fn url_button_text(text: &str, url: &str) -> Button {
        Button::Url {
            text: text.into(),
            url: url.into(),
        }
    }

    #[test]
    fn template_content_round_trips_through_json() {
        let content = TemplateContent {
            header: Some(Header::Text {
                text: "Hola {{name}}".into(),
            }),
            body: "Pedido {{order_id}}".into(),
            footer: None,
            buttons: vec![url_button("https://x.com/{{order_id}}")],
            ..Default::default()
        };
        let value = serde_json::to_value(&content).unwrap();
        assert!(value.get("footer").is_none());
        let back: TemplateContent = serde_json::from_value(value).unwrap();
        assert_eq!(back, content);
        let minimal: TemplateContent = serde_json::from_value(json!({"body": "Hi"})).unwrap();
        assert_eq!(minimal, body_only("Hi"));
    }
}
