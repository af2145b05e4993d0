//! Template authoring, as Meta's Graph API offers it:
//!
//! - `POST /{version}/{waba-id}/message_templates` creates a template
//!   (`{"id","status":"PENDING","category"}`), checked the way Meta documents
//!   it (name, category, components, examples, buttons, `header_handle`s
//!   issued by the upload API below);
//! - `DELETE /{version}/{waba-id}/message_templates?name=…[&hsm_id=…]`
//!   (`{"success":true}`);
//! - the resumable upload API for media samples:
//!   `POST /{version}/{app-id}/uploads?file_name=&file_length=&file_type=`
//!   (`{"id":"upload:…"}`), then `POST /{version}/upload:…` with the bytes,
//!   `file_offset: 0` and `Authorization: OAuth <token>` (`{"h":"<handle>"}`);
//!   `GET /{version}/upload:…` answers `{"id","file_offset"}`;
//! - review: [`FakeGraph::review_template`] or
//!   `POST /_fake/templates/{id}/review` `{"event":"APPROVED"|"REJECTED","reason"?}`
//!   sets the status and posts a signed `message_template_status_update`
//!   webhook; [`FakeGraphConfig::auto_approve_after`] approves on its own.
//!
//! Pages followed: *Reference › WhatsApp Business Account › Message
//! Template API* (create / delete), *Templates › Template components*
//! (limits: name ≤ 512 lowercase letters, digits and underscores; header
//! text ≤ 60 characters with at most one placeholder; body ≤ 1024 characters;
//! footer ≤ 60; at most 10 buttons, 2 URL, 1 phone number, 1 copy code;
//! button text ≤ 25), *Graph API › Resumable Upload API* (file types
//! `application/pdf`, `image/jpeg`, `image/jpg`, `image/png`, `video/mp4`;
//! `Authorization: OAuth`, `file_offset`), *Webhooks ›
//! message_template_status_update*.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{DateTime, Utc};
use rand::Rng;
use rand::distributions::Alphanumeric;
use serde_json::{Value, json};

use super::error::GraphError;
use super::payload::{self, TemplateStatusUpdate};
use super::server::{invalid_token, token, unknown_object};
use super::template::{FakeTemplate, is_positional};
use super::{FakeGraph, Shared, State, webhook};

/// A template created through `POST /{waba-id}/message_templates`.
#[derive(Debug, Clone)]
pub struct CreatedTemplate {
    /// The id answered.
    pub id: String,
    pub waba_id: String,
    pub name: String,
    pub language: String,
    pub category: String,
    /// The request body as received.
    pub request: Value,
    pub at: DateTime<Utc>,
}

/// A `DELETE /{waba-id}/message_templates` that removed templates.
#[derive(Debug, Clone)]
pub struct DeletedTemplate {
    pub waba_id: String,
    pub name: String,
    pub hsm_id: Option<String>,
    /// Ids of the templates removed.
    pub ids: Vec<String>,
    pub at: DateTime<Utc>,
}

/// One resumable-upload session.
#[derive(Debug, Clone)]
pub struct UploadRecord {
    /// `upload:…`, as answered.
    pub session: String,
    pub app_id: String,
    pub file_name: String,
    pub file_length: u64,
    pub file_type: String,
    /// The bytes received so far.
    pub bytes: Vec<u8>,
    /// The handle (`h`) once the file is complete.
    pub handle: Option<String>,
    token: String,
}

#[derive(Debug, Default)]
pub(crate) struct AuthoringState {
    pub(crate) created: Vec<CreatedTemplate>,
    pub(crate) deleted: Vec<DeletedTemplate>,
    pub(crate) uploads: Vec<UploadRecord>,
    pub(crate) handles: HashSet<String>,
}

/// Counters for `GET /_fake/stats`.
pub(crate) fn stats(state: &State) -> Value {
    json!({
        "created": state.authoring.created.len(),
        "deleted": state.authoring.deleted.len(),
        "uploads": state.authoring.uploads.len(),
        "handles": state.authoring.handles.len(),
    })
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/{version}/{id}/message_templates",
            post(create_handler).delete(delete_handler),
        )
        .route("/{version}/{id}/uploads", post(start_upload_handler))
        .route(
            "/{version}/{id}",
            post(upload_bytes_handler).get(upload_status_handler),
        )
        .route("/_fake/templates/{id}/review", post(review_handler))
        .with_state(shared)
}

fn random(n: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

fn invalid(details: impl Into<String>) -> GraphError {
    GraphError::meta(100).with_details(details)
}

fn required(field: &str) -> GraphError {
    GraphError::new(
        400,
        100,
        format!("(#100) The parameter {field} is required."),
    )
}

/// The token may act on this WABA: a phone number of the WABA with that
/// token, the default token, or any token when `accept_any_token`.
fn authorize_waba(state: &State, waba_id: &str, token: Option<String>) -> Result<(), GraphError> {
    let token = token.ok_or_else(invalid_token)?;
    let ok = state
        .phones
        .values()
        .any(|p| p.waba_id == waba_id && p.access_token == token)
        || state.config.default_access_token.as_deref() == Some(token.as_str())
        || state.config.accept_any_token;
    if ok {
        return Ok(());
    }
    if state.phones.values().any(|p| p.access_token == token) {
        Err(unknown_object(waba_id))
    } else {
        Err(invalid_token())
    }
}

/// Any token the fake knows (uploads belong to the app, not to a WABA).
fn authorize_any(state: &State, token: Option<&str>) -> Result<String, GraphError> {
    let token = token.filter(|t| !t.is_empty()).ok_or_else(invalid_token)?;
    let ok = state.phones.values().any(|p| p.access_token == token)
        || state.config.default_access_token.as_deref() == Some(token)
        || state.config.accept_any_token;
    if ok {
        Ok(token.to_string())
    } else {
        Err(invalid_token())
    }
}

// ---------------------------------------------------------------------------
// POST /{version}/{waba-id}/message_templates
// ---------------------------------------------------------------------------

async fn create_handler(
    AxState(shared): AxState<Arc<Shared>>,
    Path((_version, waba_id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match create(&shared, &waba_id, &query, &headers, &body) {
        Ok((answer, id)) => {
            let delay = shared.lock().config.auto_approve_after;
            if let Some(delay) = delay {
                spawn_auto_approve(shared.clone(), id, delay);
            }
            axum::Json(answer).into_response()
        }
        Err(e) => e.into_response(),
    }
}

fn create(
    shared: &Shared,
    waba_id: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Value, String), GraphError> {
    let mut state = shared.lock();
    authorize_waba(&state, waba_id, token(headers, query))?;
    let request: Value = serde_json::from_slice(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| invalid("The request body must be a JSON object"))?;
    let new = validate_create(&request, &state.authoring.handles)?;
    let exists = state.templates.iter().any(|t| {
        t.name == new.name
            && t.language == new.language
            && t.waba_id.as_deref().is_none_or(|w| w == waba_id)
    });
    if exists {
        return Err(GraphError::meta(100).with_subcode(2388024).with_details(format!(
            "Content in this language already exists: there is already {} template named {} in {}",
            new.category, new.name, new.language
        )));
    }
    let mut template = FakeTemplate::from_meta(
        &new.name,
        &new.language,
        &new.category,
        Value::Array(new.components),
    )
    .with_status("PENDING")
    .with_waba(waba_id);
    template.parameter_format = Some(new.parameter_format.clone());
    let id = state.add_template(template);
    state.authoring.created.push(CreatedTemplate {
        id: id.clone(),
        waba_id: waba_id.to_string(),
        name: new.name,
        language: new.language,
        category: new.category.clone(),
        request,
        at: Utc::now(),
    });
    Ok((
        json!({"id": id, "status": "PENDING", "category": new.category}),
        id,
    ))
}

struct NewTemplate {
    name: String,
    language: String,
    category: String,
    parameter_format: String,
    components: Vec<Value>,
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

/// Placeholders in order of appearance, repeats included.
fn raw_placeholders(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        found.push(after[..end].trim().to_string());
        rest = &after[end + 2..];
    }
    found
}

/// Checks a text's placeholders (sequential `{{1}}`, `{{2}}`… or named
/// lowercase ones with `parameter_format: NAMED`) and returns the distinct
/// ones in order.
fn check_placeholders(section: &str, text: &str, named: bool) -> Result<Vec<String>, GraphError> {
    let mut distinct: Vec<String> = Vec::new();
    for p in raw_placeholders(text) {
        if !distinct.contains(&p) {
            distinct.push(p);
        }
    }
    let positional = distinct.iter().filter(|p| is_positional(p)).count();
    if positional > 0 && positional < distinct.len() {
        return Err(invalid(format!(
            "{section}: do not mix positional ({{{{1}}}}) and named placeholders"
        )));
    }
    if positional > 0 {
        for (i, p) in distinct.iter().enumerate() {
            if p.parse::<usize>().ok() != Some(i + 1) {
                return Err(invalid(format!(
                    "{section}: placeholders must be sequential, {{{{1}}}}, {{{{2}}}}… in order of appearance; found {{{{{p}}}}} at position {}",
                    i + 1
                )));
            }
        }
    } else if !distinct.is_empty() {
        if !named {
            return Err(invalid(format!(
                "{section}: named placeholders need parameter_format NAMED"
            )));
        }
        for p in &distinct {
            let ok = p
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && p.starts_with(|c: char| c.is_ascii_lowercase());
            if !ok {
                return Err(invalid(format!(
                    "{section}: placeholder {{{{{p}}}}} must be lowercase letters, digits and underscores"
                )));
            }
        }
    }
    Ok(distinct)
}

/// Checks the examples of a text's placeholders: `example.<positional_key>`
/// (`header_text: [..]` or `body_text: [[..]]`) or `example.<named_key>`
/// (`[{param_name, example}]`).
fn check_examples(
    section: &str,
    component: &Value,
    params: &[String],
    positional_key: &str,
    named_key: &str,
    nested: bool,
) -> Result<(), GraphError> {
    if params.is_empty() {
        return Ok(());
    }
    let example = component.get("example");
    if is_positional(&params[0]) {
        let list = example.and_then(|e| e.get(positional_key)).and_then(|l| {
            if nested {
                l.as_array()
                    .and_then(|outer| outer.first())
                    .and_then(Value::as_array)
            } else {
                l.as_array()
            }
        });
        let ok = list.is_some_and(|l| {
            l.len() == params.len() && l.iter().all(|v| v.as_str().is_some_and(|s| !s.is_empty()))
        });
        if !ok {
            return Err(invalid(format!(
                "{section}: example.{positional_key} must give one example per placeholder ({})",
                params.len()
            )));
        }
    } else {
        let list = example
            .and_then(|e| e.get(named_key))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for p in params {
            let ok = list.iter().any(|e| {
                e.get("param_name").and_then(Value::as_str) == Some(p.as_str())
                    && e.get("example")
                        .and_then(Value::as_str)
                        .is_some_and(|s| !s.is_empty())
            });
            if !ok {
                return Err(invalid(format!(
                    "{section}: example.{named_key} must give an example for {p}"
                )));
            }
        }
    }
    Ok(())
}

fn upper_field(v: &mut Value, key: &str) {
    if let Some(s) = v
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_ascii_uppercase)
    {
        v[key] = Value::from(s);
    }
}

fn check_header(
    section: &str,
    c: &mut Value,
    named: bool,
    handles: &HashSet<String>,
    allowed: &[&str],
) -> Result<(), GraphError> {
    upper_field(c, "format");
    let format = c
        .get("format")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| invalid(format!("{section}: format is required")))?;
    if !allowed.contains(&format.as_str()) {
        return Err(invalid(format!(
            "{section}: format must be one of {}, got {format}",
            allowed.join(", ")
        )));
    }
    match format.as_str() {
        "TEXT" => {
            let text = str_field(c, "text")
                .ok_or_else(|| invalid(format!("{section}: text is required")))?;
            if text.chars().count() > 60 {
                return Err(invalid(format!(
                    "{section}: header text is longer than 60 characters"
                )));
            }
            let params = check_placeholders(section, text, named)?;
            if params.len() > 1 {
                return Err(invalid(format!(
                    "{section}: a header text takes at most one placeholder"
                )));
            }
            check_examples(
                section,
                c,
                &params,
                "header_text",
                "header_text_named_params",
                false,
            )
        }
        "LOCATION" => Ok(()),
        _ => {
            let handle = c
                .pointer("/example/header_handle")
                .and_then(Value::as_array)
                .and_then(|l| l.first())
                .and_then(Value::as_str);
            match handle {
                None => Err(invalid(format!(
                    "{section}: a {format} header needs example.header_handle (a handle from the resumable upload API)"
                ))),
                Some(h) if !handles.contains(h) => Err(invalid(format!(
                    "{section}: example.header_handle {h:?} was not issued by the resumable upload API"
                ))),
                Some(_) => Ok(()),
            }
        }
    }
}

fn check_body(
    section: &str,
    c: &Value,
    named: bool,
    max: usize,
    text_required: bool,
) -> Result<(), GraphError> {
    let Some(text) = str_field(c, "text") else {
        if text_required {
            return Err(invalid(format!("{section}: text is required")));
        }
        return Ok(());
    };
    if text.chars().count() > max {
        return Err(invalid(format!(
            "{section}: body text is longer than {max} characters"
        )));
    }
    let params = check_placeholders(section, text, named)?;
    check_examples(
        section,
        c,
        &params,
        "body_text",
        "body_text_named_params",
        true,
    )
}

fn check_buttons(
    section: &str,
    c: &mut Value,
    category: &str,
    max: usize,
) -> Result<(), GraphError> {
    let Some(buttons) = c.get_mut("buttons").and_then(Value::as_array_mut) else {
        return Err(invalid(format!("{section}: buttons must be an array")));
    };
    if buttons.is_empty() || buttons.len() > max {
        return Err(invalid(format!(
            "{section}: a template has 1 to {max} buttons, got {}",
            buttons.len()
        )));
    }
    let mut counts: HashMap<String, usize> = HashMap::new();
    for (i, b) in buttons.iter_mut().enumerate() {
        let at = format!("{section}.buttons[{i}]");
        upper_field(b, "type");
        let kind = b
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        *counts.entry(kind.clone()).or_default() += 1;
        let needs_text = matches!(kind.as_str(), "QUICK_REPLY" | "URL" | "PHONE_NUMBER");
        if needs_text {
            let text =
                str_field(b, "text").ok_or_else(|| invalid(format!("{at}: text is required")))?;
            if text.chars().count() > 25 {
                return Err(invalid(format!(
                    "{at}: button text is longer than 25 characters"
                )));
            }
        }
        match kind.as_str() {
            "QUICK_REPLY" | "CATALOG" | "MPM" | "VOICE_CALL" => {}
            "URL" => {
                let url =
                    str_field(b, "url").ok_or_else(|| invalid(format!("{at}: url is required")))?;
                let parsed = reqwest::Url::parse(&url.replace("{{", "").replace("}}", ""));
                if !parsed.is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                    return Err(invalid(format!("{at}: url must be an http(s) URL")));
                }
                let params = raw_placeholders(url);
                if params.len() > 1 || (params.len() == 1 && !url.trim_end().ends_with("}}")) {
                    return Err(invalid(format!(
                        "{at}: a URL takes one placeholder, at its end"
                    )));
                }
                if !params.is_empty() {
                    let ok = b
                        .get("example")
                        .and_then(Value::as_array)
                        .and_then(|l| l.first())
                        .and_then(Value::as_str)
                        .is_some_and(|s| !s.is_empty());
                    if !ok {
                        return Err(invalid(format!(
                            "{at}: a URL with a placeholder needs an example"
                        )));
                    }
                }
            }
            "PHONE_NUMBER" => {
                let ok = str_field(b, "phone_number").is_some_and(|p| p.chars().count() <= 20);
                if !ok {
                    return Err(invalid(format!(
                        "{at}: phone_number is required (at most 20 characters)"
                    )));
                }
            }
            "COPY_CODE" => {
                let example = match b.get("example") {
                    Some(Value::String(s)) => Some(s.as_str()),
                    Some(Value::Array(l)) => l.first().and_then(Value::as_str),
                    _ => None,
                };
                if !example.is_some_and(|e| !e.is_empty() && e.chars().count() <= 15) {
                    return Err(invalid(format!(
                        "{at}: a COPY_CODE button needs an example code of 1 to 15 characters"
                    )));
                }
            }
            "OTP" => {
                if category != "AUTHENTICATION" {
                    return Err(invalid(format!(
                        "{at}: OTP buttons are only for AUTHENTICATION templates"
                    )));
                }
                let otp = b.get("otp_type").and_then(Value::as_str).unwrap_or("");
                if !matches!(otp, "COPY_CODE" | "ONE_TAP" | "ZERO_TAP") {
                    return Err(invalid(format!(
                        "{at}: otp_type must be COPY_CODE, ONE_TAP or ZERO_TAP"
                    )));
                }
            }
            "FLOW" => {
                let ok = ["flow_id", "flow_name", "flow_json"]
                    .iter()
                    .any(|k| b.get(*k).is_some());
                if !ok {
                    return Err(invalid(format!(
                        "{at}: a FLOW button needs flow_id, flow_name or flow_json"
                    )));
                }
            }
            other => {
                return Err(invalid(format!("{at}: unknown button type '{other}'")));
            }
        }
    }
    for (kind, max) in [
        ("URL", 2),
        ("PHONE_NUMBER", 1),
        ("COPY_CODE", 1),
        ("OTP", 1),
        ("QUICK_REPLY", 10),
    ] {
        let n = counts.get(kind).copied().unwrap_or(0);
        if n > max {
            return Err(invalid(format!(
                "{section}: at most {max} {kind} button(s), got {n}"
            )));
        }
    }
    Ok(())
}

/// Meta: "in your template creation request the button type is designated
/// as OTP, but upon creation the button type will be set to URL" (Templates ›
/// Authentication templates › Copy code authentication templates). The URL
/// carries the otp_type and the code placeholder.
fn otp_as_listed(button: &mut Value) {
    if button["type"] != "OTP" {
        return;
    }
    let otp_type = button["otp_type"]
        .as_str()
        .unwrap_or("COPY_CODE")
        .to_ascii_uppercase();
    let text = button["text"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| {
            if otp_type == "COPY_CODE" {
                "Copy code".to_string()
            } else {
                "Autofill".to_string()
            }
        });
    *button = json!({
        "type": "URL",
        "text": text,
        "url": format!("https://www.whatsapp.com/otp/code/?otp_type={otp_type}&code=otp{{{{1}}}}"),
    });
}

fn validate_create(request: &Value, handles: &HashSet<String>) -> Result<NewTemplate, GraphError> {
    let name = str_field(request, "name").ok_or_else(|| required("name"))?;
    let name_ok = name.len() <= 512
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !name_ok {
        return Err(invalid(format!(
            "name: {name:?} must be at most 512 lowercase letters, digits and underscores"
        )));
    }
    let language = str_field(request, "language").ok_or_else(|| required("language"))?;
    let category = str_field(request, "category")
        .ok_or_else(|| required("category"))?
        .to_ascii_uppercase();
    if !matches!(
        category.as_str(),
        "MARKETING" | "UTILITY" | "AUTHENTICATION"
    ) {
        return Err(invalid(format!(
            "category must be MARKETING, UTILITY or AUTHENTICATION, got {category}"
        )));
    }
    let parameter_format = match str_field(request, "parameter_format") {
        None => "POSITIONAL".to_string(),
        Some(f) if f.eq_ignore_ascii_case("NAMED") => "NAMED".to_string(),
        Some(f) if f.eq_ignore_ascii_case("POSITIONAL") => "POSITIONAL".to_string(),
        Some(f) => {
            return Err(invalid(format!(
                "parameter_format must be NAMED or POSITIONAL, got {f}"
            )));
        }
    };
    let named = parameter_format == "NAMED";
    let auth = category == "AUTHENTICATION";
    let mut components = match request.get("components") {
        Some(Value::Array(list)) if !list.is_empty() => list.clone(),
        Some(_) => return Err(invalid("components must be a non-empty array")),
        None => return Err(required("components")),
    };
    let mut seen = HashSet::new();
    let mut has_otp = false;
    for (i, c) in components.iter_mut().enumerate() {
        let section = format!("components[{i}]");
        if !c.is_object() {
            return Err(invalid(format!("{section} must be an object")));
        }
        upper_field(c, "type");
        let kind = c
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if !seen.insert(kind.clone()) {
            return Err(invalid(format!(
                "{section}: more than one {kind} component"
            )));
        }
        match kind.as_str() {
            "HEADER" => {
                if auth {
                    return Err(invalid(format!(
                        "{section}: AUTHENTICATION templates take no header"
                    )));
                }
                let allowed = ["TEXT", "IMAGE", "VIDEO", "GIF", "DOCUMENT", "LOCATION"];
                check_header(&section, c, named, handles, &allowed)?;
            }
            "BODY" => {
                check_body(&section, c, named, 1024, !auth)?;
                if auth && c.get("text").is_none() {
                    // Meta lists the body of an authentication template with
                    // its fixed text.
                    let mut text = "*{{1}}* is your verification code.".to_string();
                    if c.get("add_security_recommendation")
                        .and_then(Value::as_bool)
                        == Some(true)
                    {
                        text.push_str(" For your security, do not share this code.");
                    }
                    c["text"] = Value::from(text);
                }
            }
            "FOOTER" => {
                if let Some(minutes) = c.get("code_expiration_minutes").and_then(Value::as_u64) {
                    c["text"] = Value::from(format!("This code expires in {minutes} minutes."));
                } else {
                    let ok = str_field(c, "text").is_some_and(|t| t.chars().count() <= 60);
                    if !ok {
                        return Err(invalid(format!(
                            "{section}: footer text is required (at most 60 characters)"
                        )));
                    }
                }
            }
            "BUTTONS" => {
                check_buttons(&section, c, &category, 10)?;
                has_otp = c["buttons"]
                    .as_array()
                    .is_some_and(|bs| bs.iter().any(|b| b["type"] == "OTP"));
                for b in c["buttons"].as_array_mut().into_iter().flatten() {
                    otp_as_listed(b);
                }
            }
            "LIMITED_TIME_OFFER" => {
                if category != "MARKETING" {
                    return Err(invalid(format!(
                        "{section}: limited-time offers are only for MARKETING templates"
                    )));
                }
                let offer = c.get("limited_time_offer").filter(|o| o.is_object());
                let text_ok = offer
                    .and_then(|o| str_field(o, "text"))
                    .is_some_and(|t| t.chars().count() <= 16);
                if !text_ok {
                    return Err(invalid(format!(
                        "{section}: limited_time_offer.text is required (at most 16 characters)"
                    )));
                }
                if offer
                    .and_then(|o| o.get("has_expiration"))
                    .is_some_and(|h| !h.is_boolean())
                {
                    return Err(invalid(format!(
                        "{section}: limited_time_offer.has_expiration must be a boolean"
                    )));
                }
            }
            "CAROUSEL" => {
                let Some(cards) = c.get_mut("cards").and_then(Value::as_array_mut) else {
                    return Err(invalid(format!("{section}: cards must be an array")));
                };
                if cards.is_empty() || cards.len() > 10 {
                    return Err(invalid(format!(
                        "{section}: a carousel has 1 to 10 cards, got {}",
                        cards.len()
                    )));
                }
                for (j, card) in cards.iter_mut().enumerate() {
                    let Some(inner) = card.get_mut("components").and_then(Value::as_array_mut)
                    else {
                        return Err(invalid(format!(
                            "{section}.cards[{j}]: components must be an array"
                        )));
                    };
                    let mut has_header = false;
                    for (k, cc) in inner.iter_mut().enumerate() {
                        let at = format!("{section}.cards[{j}].components[{k}]");
                        upper_field(cc, "type");
                        match cc.get("type").and_then(Value::as_str).unwrap_or("") {
                            "HEADER" => {
                                has_header = true;
                                check_header(&at, cc, named, handles, &["IMAGE", "VIDEO"])?;
                            }
                            "BODY" => check_body(&at, cc, named, 160, true)?,
                            "BUTTONS" => check_buttons(&at, cc, &category, 2)?,
                            other => {
                                return Err(invalid(format!(
                                    "{at}: unsupported card component type '{other}'"
                                )));
                            }
                        }
                    }
                    if !has_header {
                        return Err(invalid(format!(
                            "{section}.cards[{j}]: a card needs an IMAGE or VIDEO header"
                        )));
                    }
                }
            }
            other => {
                return Err(invalid(format!(
                    "{section}: unknown component type '{other}'"
                )));
            }
        }
    }
    // Limited-time offer templates: "Footer components are not supported"
    // (Templates › Marketing templates › Limited-time offer templates).
    if seen.contains("LIMITED_TIME_OFFER") && seen.contains("FOOTER") {
        return Err(invalid(
            "components: limited-time offer templates take no FOOTER",
        ));
    }
    if !seen.contains("BODY") {
        return Err(invalid("components: a BODY component is required"));
    }
    if auth && !has_otp {
        return Err(invalid(
            "components: an AUTHENTICATION template needs a BUTTONS component with one OTP button",
        ));
    }
    Ok(NewTemplate {
        name: name.to_string(),
        language: language.to_string(),
        category,
        parameter_format,
        components,
    })
}

// ---------------------------------------------------------------------------
// DELETE /{version}/{waba-id}/message_templates?name=…[&hsm_id=…]
// ---------------------------------------------------------------------------

async fn delete_handler(
    AxState(shared): AxState<Arc<Shared>>,
    Path((_version, waba_id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut state = shared.lock();
    if let Err(e) = authorize_waba(&state, &waba_id, token(&headers, &query)) {
        return e.into_response();
    }
    let Some(name) = query.get("name").filter(|n| !n.is_empty()).cloned() else {
        return required("name").into_response();
    };
    let hsm_id = query.get("hsm_id").filter(|n| !n.is_empty()).cloned();
    let matches = |t: &FakeTemplate| {
        t.name == name
            && t.waba_id.as_deref().is_none_or(|w| w == waba_id)
            && hsm_id.as_deref().is_none_or(|id| t.id == id)
    };
    let ids: Vec<String> = state
        .templates
        .iter()
        .filter(|t| matches(t))
        .map(|t| t.id.clone())
        .collect();
    if ids.is_empty() {
        return invalid(format!(
            "No template named {name}{} in WhatsApp Business Account {waba_id}",
            hsm_id
                .as_deref()
                .map(|id| format!(" with id {id}"))
                .unwrap_or_default()
        ))
        .into_response();
    }
    state.templates.retain(|t| !matches(t));
    state.authoring.deleted.push(DeletedTemplate {
        waba_id,
        name,
        hsm_id,
        ids,
        at: Utc::now(),
    });
    axum::Json(json!({"success": true})).into_response()
}

// ---------------------------------------------------------------------------
// Resumable upload
// ---------------------------------------------------------------------------

/// File types the resumable upload API takes.
pub const UPLOAD_FILE_TYPES: &[&str] = &[
    "application/pdf",
    "image/jpeg",
    "image/jpg",
    "image/png",
    "video/mp4",
];

async fn start_upload_handler(
    AxState(shared): AxState<Arc<Shared>>,
    Path((_version, app_id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut state = shared.lock();
    let token = match authorize_any(&state, token(&headers, &query).as_deref()) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let Some(file_name) = query.get("file_name").filter(|n| !n.is_empty()).cloned() else {
        return required("file_name").into_response();
    };
    let file_length = match query.get("file_length").map(|l| l.parse::<u64>()) {
        None => return required("file_length").into_response(),
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            return invalid("file_length must be a positive integer (bytes)").into_response();
        }
    };
    let Some(file_type) = query.get("file_type").cloned() else {
        return required("file_type").into_response();
    };
    if !UPLOAD_FILE_TYPES.contains(&file_type.as_str()) {
        return invalid(format!(
            "file_type must be one of {}, got {file_type}",
            UPLOAD_FILE_TYPES.join(", ")
        ))
        .into_response();
    }
    let session = format!("upload:{}", random(32));
    state.authoring.uploads.push(UploadRecord {
        session: session.clone(),
        app_id,
        file_name,
        file_length,
        file_type,
        bytes: Vec::new(),
        handle: None,
        token,
    });
    axum::Json(json!({"id": session})).into_response()
}

/// `Authorization: OAuth <token>`: the upload API's own scheme.
fn oauth_token(headers: &HeaderMap) -> Result<String, GraphError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match value.trim().split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("oauth") && !token.trim().is_empty() =>
        {
            Ok(token.trim().to_string())
        }
        _ => Err(invalid_token().with_details(
            "the resumable upload API wants the header Authorization: OAuth <access token>",
        )),
    }
}

async fn upload_bytes_handler(
    AxState(shared): AxState<Arc<Shared>>,
    Path((_version, session)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !session.starts_with("upload:") {
        return super::server::unsupported(&format!("POST /{_version}/{session}"));
    }
    let token = match oauth_token(&headers) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let mut state = shared.lock();
    let Some(upload) = state
        .authoring
        .uploads
        .iter_mut()
        .find(|u| u.session == session)
    else {
        return invalid(format!("Unknown upload session {session}")).into_response();
    };
    if upload.token != token {
        return invalid_token().into_response();
    }
    let offset = match headers
        .get("file_offset")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().parse::<u64>())
    {
        None => return required("file_offset").into_response(),
        Some(Ok(n)) => n,
        Some(Err(_)) => return invalid("file_offset must be an integer").into_response(),
    };
    let received = upload.bytes.len() as u64;
    if offset != received {
        return invalid(format!(
            "file_offset {offset} does not match the bytes received so far ({received})"
        ))
        .into_response();
    }
    if received + body.len() as u64 > upload.file_length {
        return invalid(format!(
            "the upload is longer than file_length ({} > {})",
            received + body.len() as u64,
            upload.file_length
        ))
        .into_response();
    }
    upload.bytes.extend_from_slice(&body);
    if (upload.bytes.len() as u64) < upload.file_length {
        let answer = json!({"id": session, "file_offset": upload.bytes.len()});
        return axum::Json(answer).into_response();
    }
    let handle = upload.handle.clone().unwrap_or_else(|| {
        use base64::Engine;
        let kind = base64::engine::general_purpose::STANDARD.encode(&upload.file_type);
        format!("4::{kind}:{}", random(40))
    });
    upload.handle = Some(handle.clone());
    state.authoring.handles.insert(handle.clone());
    axum::Json(json!({"h": handle})).into_response()
}

async fn upload_status_handler(
    AxState(shared): AxState<Arc<Shared>>,
    Path((version, session)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !session.starts_with("upload:") {
        return super::server::unsupported(&format!("GET /{version}/{session}"));
    }
    let token = match oauth_token(&headers) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let state = shared.lock();
    match state
        .authoring
        .uploads
        .iter()
        .find(|u| u.session == session)
    {
        Some(u) if u.token == token => {
            axum::Json(json!({"id": session, "file_offset": u.bytes.len()})).into_response()
        }
        Some(_) => invalid_token().into_response(),
        None => invalid(format!("Unknown upload session {session}")).into_response(),
    }
}

// ---------------------------------------------------------------------------
// Review
// ---------------------------------------------------------------------------

async fn review_handler(
    AxState(shared): AxState<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let Some(event) = request.get("event").and_then(Value::as_str) else {
        return required("event").into_response();
    };
    let reason = request.get("reason").and_then(Value::as_str);
    match review(&shared, &id, event, reason).await {
        Some((payload, delivered)) => {
            axum::Json(json!({"success": true, "webhook_delivered": delivered, "webhook": payload}))
                .into_response()
        }
        None => invalid(format!("No template with id {id}")).into_response(),
    }
}

/// Sets the template's status to `event` and posts the signed
/// `message_template_status_update` webhook (to the webhook URL of a phone
/// number of the template's WABA, else the global one). `None` when no
/// template has this id; else the payload and whether it was delivered.
pub(crate) async fn review(
    shared: &Shared,
    id: &str,
    event: &str,
    reason: Option<&str>,
) -> Option<(Value, bool)> {
    let event = event.to_ascii_uppercase();
    let (payload, phone) = {
        let mut state = shared.lock();
        let template = state.templates.iter_mut().find(|t| t.id == id)?;
        template.status = event.clone();
        let template = template.clone();
        let waba_id = template
            .waba_id
            .clone()
            .unwrap_or_else(|| super::DEFAULT_WABA_ID.to_string());
        let update = TemplateStatusUpdate {
            event: event.clone(),
            message_template_id: template.id.clone(),
            message_template_name: template.name.clone(),
            message_template_language: template.language.clone(),
            reason: reason.map(str::to_string),
            message_template_category: Some(template.category.clone()),
        };
        let mut phones: Vec<_> = state
            .phones
            .values()
            .filter(|p| p.waba_id == waba_id)
            .collect();
        phones.sort_by_key(|p| (p.webhook_url.is_none(), p.phone_number_id.clone()));
        let phone = phones
            .first()
            .map(|p| p.phone_number_id.clone())
            .unwrap_or_default();
        (payload::template_status_payload(&waba_id, &update), phone)
    };
    let delivered = webhook::deliver(shared, &phone, payload.clone()).await;
    Some((payload, delivered))
}

fn spawn_auto_approve(shared: Arc<Shared>, id: String, delay: Duration) {
    shared.pending_webhooks.fetch_add(1, Ordering::SeqCst);
    tokio::spawn(async move {
        if shared.sleep(delay).await {
            let pending = shared
                .lock()
                .templates
                .iter()
                .any(|t| t.id == id && t.status == "PENDING");
            if pending {
                review(&shared, &id, "APPROVED", None).await;
            }
        }
        shared.pending_webhooks.fetch_sub(1, Ordering::SeqCst);
    });
}

// ---------------------------------------------------------------------------
// FakeGraph accessors
// ---------------------------------------------------------------------------

impl FakeGraph {
    /// Sets a template's status (`APPROVED`, `REJECTED`, `PAUSED`, …) as
    /// Meta's review would and posts the signed
    /// `message_template_status_update` webhook (awaited). `None` when no
    /// template has this id; else the webhook payload and whether it was
    /// delivered.
    pub async fn review_template(
        &self,
        id: &str,
        event: &str,
        reason: Option<&str>,
    ) -> Option<(Value, bool)> {
        review(&self.shared, id, event, reason).await
    }

    /// Created templates approve on their own after this delay (None: they
    /// stay PENDING until reviewed).
    pub fn set_auto_approve(&self, after: Option<Duration>) {
        self.shared.lock().config.auto_approve_after = after;
    }

    /// Templates created through the API, in order.
    pub fn created_templates(&self) -> Vec<CreatedTemplate> {
        self.shared.lock().authoring.created.clone()
    }

    /// Template deletions through the API, in order.
    pub fn deleted_templates(&self) -> Vec<DeletedTemplate> {
        self.shared.lock().authoring.deleted.clone()
    }

    /// Resumable-upload sessions, in order.
    pub fn uploads(&self) -> Vec<UploadRecord> {
        self.shared.lock().authoring.uploads.clone()
    }

    /// Issues an upload handle as if a file had been uploaded (for tests
    /// that create templates without going through the upload API).
    pub fn issue_upload_handle(&self) -> String {
        let handle = format!("4::fake:{}", random(40));
        self.shared.lock().authoring.handles.insert(handle.clone());
        handle
    }
}
