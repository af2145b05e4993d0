//! Templates the fake knows: how `message_templates` lists them and how a
//! send's `components` are checked against them, the way Meta checks them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::error::GraphError;

fn approved() -> String {
    "APPROVED".to_string()
}

fn utility() -> String {
    "UTILITY".to_string()
}

/// A message template registered in the fake, in the fake's own JSON shape
/// (the `--templates-file` format is an array of these):
///
/// ```json
/// {"name": "order_update", "language": "es", "body": "Hola {{name}}, tu pedido {{order}}",
///  "header": "Pedido {{order}}", "footer": "Gracias",
///  "buttons": [{"type": "URL", "text": "Ver", "url": "https://shop.example/o/{{1}}"}]}
/// ```
///
/// `id` (Meta's template id) is generated when empty; `status` defaults to
/// `APPROVED`, `category` to `UTILITY`. `header_format` is `TEXT` (default;
/// `header` holds the text) or `IMAGE` / `VIDEO` / `DOCUMENT` / `LOCATION`.
/// `waba_id`, when set, limits the template to that WhatsApp Business Account
/// (and the phone numbers of that account); otherwise every account has it.
///
/// A template can also be given in Meta's own shape: `components` is the
/// `components` array exactly as `GET /{waba-id}/message_templates` returns it
/// (then `body`, `header*`, `footer` and `buttons` are ignored) and
/// `parameter_format` is `NAMED` or `POSITIONAL` (derived from the
/// placeholders when absent):
///
/// ```json
/// {"name": "invoice", "language": "es", "category": "UTILITY",
///  "components": [{"type": "HEADER", "format": "DOCUMENT"},
///                 {"type": "BODY", "text": "Factura {{1}}"},
///                 {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Ok"}]}]}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FakeTemplate {
    #[serde(default)]
    pub id: String,
    pub name: String,
    pub language: String,
    #[serde(default = "approved")]
    pub status: String,
    #[serde(default = "utility")]
    pub category: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    #[serde(default)]
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<FakeButton>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waba_id: Option<String>,
    /// Meta's `components` array; when set it is the template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub components: Option<Value>,
    /// `NAMED` or `POSITIONAL`; derived from the placeholders when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_format: Option<String>,
}

/// A template button. JSON: `{"type":"URL","text":..,"url":..}`,
/// `{"type":"QUICK_REPLY","text":..}`, `{"type":"PHONE_NUMBER","text":..,"phone_number":..}`,
/// `{"type":"COPY_CODE","example":..}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FakeButton {
    Url { text: String, url: String },
    QuickReply { text: String },
    PhoneNumber { text: String, phone_number: String },
    CopyCode { example: String },
}

impl FakeTemplate {
    /// An approved UTILITY template with only a body.
    pub fn new(
        name: impl Into<String>,
        language: impl Into<String>,
        body: impl Into<String>,
    ) -> FakeTemplate {
        FakeTemplate {
            id: String::new(),
            name: name.into(),
            language: language.into(),
            status: approved(),
            category: utility(),
            header_format: None,
            header: None,
            body: body.into(),
            footer: None,
            buttons: Vec::new(),
            waba_id: None,
            components: None,
            parameter_format: None,
        }
    }

    /// An approved template in Meta's shape: `components` as
    /// `message_templates` lists them (HEADER of any format, BODY, FOOTER,
    /// BUTTONS of any type, CAROUSEL, LIMITED_TIME_OFFER).
    pub fn from_meta(
        name: impl Into<String>,
        language: impl Into<String>,
        category: impl Into<String>,
        components: Value,
    ) -> FakeTemplate {
        let mut template = FakeTemplate::new(name, language, "");
        template.category = category.into().to_ascii_uppercase();
        template.components = Some(components);
        template
    }

    /// Sets `parameter_format` (`NAMED` or `POSITIONAL`).
    pub fn with_parameter_format(mut self, format: impl Into<String>) -> Self {
        self.parameter_format = Some(format.into().to_ascii_uppercase());
        self
    }

    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// A TEXT header.
    pub fn with_header(mut self, text: impl Into<String>) -> Self {
        self.header_format = None;
        self.header = Some(text.into());
        self
    }

    /// A media (`IMAGE`, `VIDEO`, `DOCUMENT`) or `LOCATION` header.
    pub fn with_media_header(mut self, format: impl Into<String>) -> Self {
        self.header_format = Some(format.into().to_ascii_uppercase());
        self.header = None;
        self
    }

    pub fn with_footer(mut self, text: impl Into<String>) -> Self {
        self.footer = Some(text.into());
        self
    }

    pub fn with_url_button(mut self, text: impl Into<String>, url: impl Into<String>) -> Self {
        self.buttons.push(FakeButton::Url {
            text: text.into(),
            url: url.into(),
        });
        self
    }

    pub fn with_quick_reply(mut self, text: impl Into<String>) -> Self {
        self.buttons
            .push(FakeButton::QuickReply { text: text.into() });
        self
    }

    pub fn with_button(mut self, button: FakeButton) -> Self {
        self.buttons.push(button);
        self
    }

    pub fn with_status(mut self, status: impl Into<String>) -> Self {
        self.status = status.into();
        self
    }

    pub fn with_category(mut self, category: impl Into<String>) -> Self {
        self.category = category.into();
        self
    }

    pub fn with_waba(mut self, waba_id: impl Into<String>) -> Self {
        self.waba_id = Some(waba_id.into());
        self
    }

    /// The header's format: `TEXT` unless a media format was set.
    pub fn header_kind(&self) -> Option<String> {
        match (&self.header_format, &self.header) {
            (Some(format), _) if !format.eq_ignore_ascii_case("TEXT") => {
                Some(format.to_ascii_uppercase())
            }
            (_, Some(_)) => Some("TEXT".to_string()),
            _ => None,
        }
    }

    /// Distinct placeholders of the text header.
    pub fn header_params(&self) -> Vec<String> {
        match (self.header_kind().as_deref(), &self.header) {
            (Some("TEXT"), Some(text)) => placeholders(text),
            _ => Vec::new(),
        }
    }

    /// Distinct placeholders of the body.
    pub fn body_params(&self) -> Vec<String> {
        placeholders(&self.body)
    }

    /// The set `parameter_format`, else `NAMED` when the header or body has a
    /// non-numeric placeholder, else `POSITIONAL`.
    pub fn parameter_format(&self) -> &'static str {
        if let Some(format) = &self.parameter_format {
            return if format.eq_ignore_ascii_case("NAMED") {
                "NAMED"
            } else {
                "POSITIONAL"
            };
        }
        let named = match &self.components {
            Some(components) => meta_texts(components)
                .iter()
                .flat_map(|t| placeholders(t))
                .any(|p| !is_positional(&p)),
            None => self
                .header_params()
                .iter()
                .chain(self.body_params().iter())
                .any(|p| !is_positional(p)),
        };
        if named { "NAMED" } else { "POSITIONAL" }
    }

    fn is_named(&self) -> bool {
        self.parameter_format() == "NAMED"
    }

    /// The template as `GET /{waba-id}/message_templates` lists it.
    pub fn to_graph_json(&self) -> Value {
        json!({
            "name": self.name,
            "parameter_format": self.parameter_format(),
            "components": self.meta_components(),
            "language": self.language,
            "status": self.status,
            "category": self.category,
            "id": self.id,
        })
    }

    /// The template's components in Meta's shape: `components` verbatim, or
    /// built from the builder fields.
    pub fn meta_components(&self) -> Vec<Value> {
        if let Some(components) = &self.components {
            return match components {
                Value::Array(list) => list.clone(),
                other => vec![other.clone()],
            };
        }
        let named = self.is_named();
        let mut components = Vec::new();
        if let Some(kind) = self.header_kind() {
            let mut header = Map::new();
            header.insert("type".into(), Value::from("HEADER"));
            header.insert("format".into(), Value::from(kind.clone()));
            if kind == "TEXT" {
                let text = self.header.clone().unwrap_or_default();
                header.insert("text".into(), Value::from(text));
                let params = self.header_params();
                if !params.is_empty() {
                    let example = if named {
                        json!({"header_text_named_params": named_examples(&params)})
                    } else {
                        json!({"header_text": positional_examples(&params)})
                    };
                    header.insert("example".into(), example);
                }
            } else if kind != "LOCATION" {
                header.insert(
                    "example".into(),
                    json!({"header_handle": [format!("https://fake-graph.invalid/media/{}", self.name)]}),
                );
            }
            components.push(Value::Object(header));
        }
        let mut body = Map::new();
        body.insert("type".into(), Value::from("BODY"));
        body.insert("text".into(), Value::from(self.body.clone()));
        let params = self.body_params();
        if !params.is_empty() {
            let example = if named {
                json!({"body_text_named_params": named_examples(&params)})
            } else {
                json!({"body_text": [positional_examples(&params)]})
            };
            body.insert("example".into(), example);
        }
        components.push(Value::Object(body));
        if let Some(footer) = &self.footer {
            components.push(json!({"type": "FOOTER", "text": footer}));
        }
        if !self.buttons.is_empty() {
            let buttons: Vec<Value> = self
                .buttons
                .iter()
                .map(|button| match button {
                    FakeButton::Url { text, url } => {
                        let mut b = json!({"type": "URL", "text": text, "url": url});
                        if !placeholders(url).is_empty() {
                            let example = replace_placeholders(url, |_| "example".to_string());
                            b["example"] = json!([example]);
                        }
                        b
                    }
                    FakeButton::QuickReply { text } => json!({"type": "QUICK_REPLY", "text": text}),
                    FakeButton::PhoneNumber { text, phone_number } => {
                        json!({"type": "PHONE_NUMBER", "text": text, "phone_number": phone_number})
                    }
                    FakeButton::CopyCode { example } => {
                        json!({"type": "COPY_CODE", "example": example})
                    }
                })
                .collect();
            components.push(json!({"type": "BUTTONS", "buttons": buttons}));
        }
        components
    }

    /// Checks a send's `template.components` against this template as Meta
    /// does (see [`super::check`]): header, body, buttons, limited-time
    /// offer and carousel, each with Meta's error code.
    pub(crate) fn check_components(&self, components: Option<&Value>) -> Result<(), GraphError> {
        let shape = super::check::Shape::of_template(self);
        super::check::check_send(&shape, components, self.is_named())
    }
}

/// Texts that may hold placeholders: HEADER (TEXT) and BODY texts, also of
/// carousel cards.
fn meta_texts(components: &Value) -> Vec<String> {
    let mut texts = Vec::new();
    let list = components.as_array().cloned().unwrap_or_default();
    for c in &list {
        let kind = c.get("type").and_then(Value::as_str).unwrap_or("");
        if kind.eq_ignore_ascii_case("HEADER") || kind.eq_ignore_ascii_case("BODY") {
            if let Some(t) = c.get("text").and_then(Value::as_str) {
                texts.push(t.to_string());
            }
        }
        if kind.eq_ignore_ascii_case("CAROUSEL") {
            for card in c
                .get("cards")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(inner) = card.get("components") {
                    texts.extend(meta_texts(inner));
                }
            }
        }
    }
    texts
}

/// The distinct placeholders of a text, in order of first appearance
/// (`{{ name }}` → `name`). Positional ones are sorted by number.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let name = after[..end].trim();
        if !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !found.iter().any(|f| f == name)
        {
            found.push(name.to_string());
        }
        rest = &after[end + 2..];
    }
    if found.iter().all(|p| is_positional(p)) {
        found.sort_by_key(|p| p.parse::<u64>().unwrap_or(u64::MAX));
    }
    found
}

pub(crate) fn is_positional(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_digit())
}

fn replace_placeholders(text: &str, value: impl Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push_str(&rest[..start]);
        out.push_str(&value(after[..end].trim()));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

fn named_examples(params: &[String]) -> Vec<Value> {
    params
        .iter()
        .map(|p| json!({"param_name": p, "example": format!("example_{p}")}))
        .collect()
}

fn positional_examples(params: &[String]) -> Vec<Value> {
    params
        .iter()
        .map(|p| Value::from(format!("example_{p}")))
        .collect()
}
