//! Templates the fake knows: how `message_templates` lists them and how a
//! send's `components` are checked against them, the way Meta checks them.

use std::collections::{BTreeMap, BTreeSet};

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
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<FakeButton>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waba_id: Option<String>,
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
        }
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

    /// `NAMED` when the header or body has a non-numeric placeholder, else
    /// `POSITIONAL`.
    pub fn parameter_format(&self) -> &'static str {
        let named = self
            .header_params()
            .iter()
            .chain(self.body_params().iter())
            .any(|p| !is_positional(p));
        if named { "NAMED" } else { "POSITIONAL" }
    }

    fn is_named(&self) -> bool {
        self.parameter_format() == "NAMED"
    }

    /// The template as `GET /{waba-id}/message_templates` lists it.
    pub fn to_graph_json(&self) -> Value {
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
        json!({
            "name": self.name,
            "parameter_format": self.parameter_format(),
            "components": components,
            "language": self.language,
            "status": self.status,
            "category": self.category,
            "id": self.id,
        })
    }

    /// Checks a send's `template.components` against this template: the
    /// number of header, body and URL-button parameters, `parameter_name`
    /// for named templates, text values present.
    pub(crate) fn check_components(&self, components: Option<&Value>) -> Result<(), GraphError> {
        let list: &[Value] = match components {
            None | Some(Value::Null) => &[],
            Some(Value::Array(list)) => list,
            Some(_) => {
                return Err(GraphError::meta(100)
                    .with_details("template.components must be an array of components"));
            }
        };
        let mut header: Option<&[Value]> = None;
        let mut body: Option<&[Value]> = None;
        let mut buttons: BTreeMap<usize, (String, &[Value])> = BTreeMap::new();
        for (i, component) in list.iter().enumerate() {
            let kind = component
                .get("type")
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
                .ok_or_else(|| {
                    GraphError::meta(131008)
                        .with_details(format!("components[{i}]: the parameter type is required"))
                })?;
            let params: &[Value] = match component.get("parameters") {
                None | Some(Value::Null) => &[],
                Some(Value::Array(p)) => p,
                Some(_) => {
                    return Err(GraphError::meta(100)
                        .with_details(format!("components[{i}]: parameters must be an array")));
                }
            };
            match kind.as_str() {
                "header" => header = Some(params),
                "body" => body = Some(params),
                "button" => {
                    let sub_type = component
                        .get("sub_type")
                        .and_then(Value::as_str)
                        .map(str::to_ascii_lowercase)
                        .ok_or_else(|| {
                            GraphError::meta(131008).with_details(format!(
                                "components[{i}]: the parameter sub_type is required for buttons"
                            ))
                        })?;
                    let index = component
                        .get("index")
                        .and_then(|v| match v {
                            Value::String(s) => s.trim().parse::<usize>().ok(),
                            Value::Number(n) => n.as_u64().map(|n| n as usize),
                            _ => None,
                        })
                        .ok_or_else(|| {
                            GraphError::meta(131008).with_details(format!(
                                "components[{i}]: the parameter index is required for buttons"
                            ))
                        })?;
                    buttons.insert(index, (sub_type, params));
                }
                other => {
                    return Err(GraphError::meta(100).with_details(format!(
                        "components[{i}]: unsupported component type '{other}'"
                    )));
                }
            }
        }

        let named = self.is_named();
        // Header.
        match self.header_kind().as_deref() {
            Some("TEXT") | None => check_text_params(
                "header",
                &self.header_params(),
                header.unwrap_or(&[]),
                named,
            )?,
            Some(media) => check_media_header(media, header.unwrap_or(&[]))?,
        }
        // Body.
        check_text_params("body", &self.body_params(), body.unwrap_or(&[]), named)?;
        // Buttons.
        for (index, (sub_type, params)) in &buttons {
            let Some(button) = self.buttons.get(*index) else {
                return Err(GraphError::meta(132000).with_details(format!(
                    "buttons: the template has no button at index {index}"
                )));
            };
            let section = format!("button at index {index}");
            match (button, sub_type.as_str()) {
                (FakeButton::Url { url, .. }, "url") => {
                    let expected = placeholders(url).len().min(1);
                    check_count(&section, params.len(), expected)?;
                    for p in params.iter() {
                        check_text_value(&section, p)?;
                    }
                }
                (FakeButton::QuickReply { .. }, "quick_reply") => {}
                (FakeButton::CopyCode { .. }, "copy_code") => {
                    check_count(&section, params.len(), 1)?;
                    let code = params[0].get("coupon_code").and_then(Value::as_str);
                    if code.is_none_or(|c| c.trim().is_empty()) {
                        return Err(GraphError::meta(131008).with_details(format!(
                            "{section}: parameter of type coupon_code is missing coupon_code value"
                        )));
                    }
                }
                (_, other) => {
                    return Err(GraphError::meta(132012).with_details(format!(
                        "{section}: sub_type '{other}' does not match the template's button"
                    )));
                }
            }
        }
        for (index, button) in self.buttons.iter().enumerate() {
            let needs = match button {
                FakeButton::Url { url, .. } => !placeholders(url).is_empty(),
                FakeButton::CopyCode { .. } => true,
                _ => false,
            };
            if needs && !buttons.contains_key(&index) {
                return Err(GraphError::meta(132000).with_details(format!(
                    "button at index {index}: number of params (0) does not match the expected number of params (1)"
                )));
            }
        }
        Ok(())
    }
}

fn check_count(section: &str, given: usize, expected: usize) -> Result<(), GraphError> {
    if given != expected {
        return Err(GraphError::meta(132000).with_details(format!(
            "{section}: number of localizable_params ({given}) does not match the expected number of params ({expected})"
        )));
    }
    Ok(())
}

fn check_text_value(section: &str, param: &Value) -> Result<(), GraphError> {
    let kind = param.get("type").and_then(Value::as_str).unwrap_or("");
    if !kind.eq_ignore_ascii_case("text") {
        return Err(GraphError::meta(132012).with_details(format!(
            "{section}: parameter of type '{kind}' does not match the expected type text"
        )));
    }
    match param.get("text").and_then(Value::as_str) {
        Some(text) if !text.trim().is_empty() => Ok(()),
        _ => Err(GraphError::meta(131008).with_details(format!(
            "{section}: Parameter of type text is missing text value"
        ))),
    }
}

fn check_text_params(
    section: &str,
    expected: &[String],
    given: &[Value],
    named: bool,
) -> Result<(), GraphError> {
    check_count(section, given.len(), expected.len())?;
    for p in given {
        check_text_value(section, p)?;
    }
    let names: Vec<Option<&str>> = given
        .iter()
        .map(|p| p.get("parameter_name").and_then(Value::as_str))
        .collect();
    if named {
        let mut seen = BTreeSet::new();
        for name in &names {
            let Some(name) = name else {
                return Err(GraphError::meta(100).with_details(format!(
                    "{section}: parameter_name is required for templates with named parameters"
                )));
            };
            if !expected.iter().any(|e| e == name) || !seen.insert(*name) {
                return Err(GraphError::meta(132000).with_details(format!(
                    "{section}: parameter_name '{name}' does not match the expected params ({})",
                    expected.join(", ")
                )));
            }
        }
    } else if names.iter().any(Option::is_some) {
        return Err(GraphError::meta(100).with_details(format!(
            "{section}: parameter_name is only allowed for templates with named parameters"
        )));
    }
    Ok(())
}

fn check_media_header(format: &str, given: &[Value]) -> Result<(), GraphError> {
    check_count("header", given.len(), 1)?;
    let param = &given[0];
    let expected = format.to_ascii_lowercase();
    let kind = param.get("type").and_then(Value::as_str).unwrap_or("");
    if !kind.eq_ignore_ascii_case(&expected) {
        return Err(GraphError::meta(132012).with_details(format!(
            "header: parameter of type '{kind}' does not match the expected type {expected}"
        )));
    }
    if expected == "location" {
        return Ok(());
    }
    let media = param.get(expected.as_str());
    let has_source = media.is_some_and(|m| {
        m.get("link").and_then(Value::as_str).is_some()
            || m.get("id").and_then(Value::as_str).is_some()
    });
    if !has_source {
        return Err(GraphError::meta(131008).with_details(format!(
            "header: parameter of type {expected} needs a link or an id"
        )));
    }
    Ok(())
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

fn is_positional(name: &str) -> bool {
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
