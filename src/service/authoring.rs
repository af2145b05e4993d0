//! Templates authored from plantilla: a template is checked the way Meta reviews its shape,
//! submitted to the channel's WhatsApp Business Account (`POST /{waba-id}/message_templates`,
//! media samples first through the app's resumable upload API for their `header_handle`) and
//! stored with Meta's id and status `PENDING`. The status webhook
//! (`message_template_status_update`) and sync then follow it to APPROVED or REJECTED.
//!
//! Sandbox channels submit nothing: the template is stored `PENDING` with a simulated id
//! (`sandbox-template-…`) and approved `sandbox_approve_delay_ms` later by a task spawned at
//! submission. That task dies with the process, so `serve` also runs
//! [`resume_sandbox_approvals`] at start: every sandbox template still `PENDING` is approved
//! when its delay has passed (at once if it already has). A timer plus a start-up pass was
//! chosen over approving lazily when a template is read because templates are read in many
//! places (sends by id and by name, lists, previews, the compatible API), and a status
//! change must queue `template.status_changed` from one place, as a webhook does.
//!
//! Deleting (`delete`) removes the template at Meta (`DELETE /{waba-id}/message_templates
//! ?name=…&hsm_id=<Meta id>`) and then marks it `DELETED` and inactive locally: messages
//! keep referring to their template (a foreign key), so the row stays; lists hide it.
//!
//! Request shape (native and admin alike): `{name, language, category, parameterFormat?,
//! header?, message, footer?, buttons?, carousel?, limitedTimeOffer?, examples?,
//! addSecurityRecommendation?, codeExpirationMinutes?}`. A media header (and each carousel
//! card's header) gives its sample file inline:
//! `"header": {"format": "IMAGE", "sample": {"data": "<base64>", "mimeType": "image/png",
//! "filename": "promo.png"}}`. `examples` gives one example per placeholder, keyed as the
//! template's `params` (`{"name": "Ana", "1": "A-1", "card.0.1": "Tenis"}`).
//!
//! Meta pages followed: *Templates › Template components* (limits), *Message Templates API*
//! (create, delete), *Resumable Upload API*, *Authentication templates*, *Limited-time offer
//! templates*, *Media card carousel templates*.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use base64::Engine;
use serde_json::{Map, Value, json};

use super::admin::{AdminError, TEMPLATE_CATEGORIES, apply_template_fields, template_fields};
use super::input::{FieldError, Fields};
use super::views;
use crate::api::templates::{AdminTemplateSubmit, TemplateUpdate};
use crate::app::App;
use crate::domain::ids::new_id;
use crate::domain::meta_error::MetaError;
use crate::domain::template::{Button, Header, TemplateContent, parse_placeholders, render};
use crate::now_ms;
use crate::provider::cloud::transport_error;
use crate::store::{Channel, ProviderKind, StoreError, Template, TemplateFilter};

/// The app id of a template authored on a sandbox channel starts with this.
pub const SANDBOX_ID_PREFIX: &str = "sandbox-template-";

/// The fields of a submission (besides `channelId` of the native API).
pub const SUBMIT_FIELDS: &[&str] = &[
    "name",
    "language",
    "category",
    "parameterFormat",
    "header",
    "message",
    "footer",
    "buttons",
    "carousel",
    "limitedTimeOffer",
    "examples",
    "addSecurityRecommendation",
    "codeExpirationMinutes",
];

/// The body text Meta gives an authentication template (English; sync brings Meta's own).
const AUTH_BODY: &str = "*{{1}}* is your verification code.";
const AUTH_SECURITY: &str = " For your security, do not share this code.";

// Meta's limits (Templates › Template components).
const MAX_HEADER_TEXT: usize = 60;
const MAX_BODY: usize = 1024;
const MAX_CARD_BODY: usize = 160;
const MAX_FOOTER: usize = 60;
const MAX_BUTTON_TEXT: usize = 25;
const MAX_COUPON: usize = 15;
const MAX_PHONE: usize = 20;
const MAX_CARD_BUTTONS: usize = 2;
/// Largest media sample (Meta's image limit is 5 MB, video 16 MB, documents 100 MB; the
/// request body limit of the authoring routes bounds it first).
const MAX_SAMPLE_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum AuthorError {
    /// Field-level problems, all found at once where possible.
    #[error("invalid template")]
    Invalid(Vec<FieldError>),
    #[error("no template with id '{0}'")]
    NotFound(String),
    /// Meta refused or failed; nothing was stored (or deleted).
    #[error("the Graph API answered {}: {}", .0.code, .0.description())]
    Upstream(Box<MetaError>),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for AuthorError {
    fn from(e: StoreError) -> Self {
        AuthorError::Internal(e.into())
    }
}

impl From<FieldError> for AuthorError {
    fn from(e: FieldError) -> Self {
        AuthorError::Invalid(vec![e])
    }
}

impl From<AdminError> for AuthorError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Invalid(f) => AuthorError::Invalid(vec![f]),
            AdminError::NotFound { id, .. } => AuthorError::NotFound(id),
            AdminError::Upstream(m) => AuthorError::Internal(anyhow::anyhow!(m)),
            AdminError::Internal(e) => AuthorError::Internal(e),
        }
    }
}

impl AuthorError {
    /// The admin API's shape of this error.
    pub fn into_admin(self) -> AdminError {
        match self {
            AuthorError::Invalid(mut list) => AdminError::Invalid(list.remove(0)),
            AuthorError::NotFound(id) => AdminError::NotFound {
                kind: "template",
                id,
            },
            AuthorError::Upstream(e) => AdminError::Upstream(upstream_detail(&e)),
            AuthorError::Internal(e) => AdminError::Internal(e),
        }
    }
}

/// What Meta answered, for a problem's `detail`.
pub fn upstream_detail(e: &MetaError) -> String {
    format!(
        "the Graph API answered {} ({}): {}",
        e.code,
        e.title,
        e.description()
    )
}

fn field(field: impl Into<String>, message: impl Into<String>) -> AuthorError {
    AuthorError::Invalid(vec![FieldError::new(field, message)])
}

/// A media sample given inline, as [`take_sample`] reads it: the document's `TemplateSample`
/// says its JSON form (`data` is the bytes in base64, `filename` may be null or left out: then
/// `sample.<ext>`).
#[derive(Debug, Clone, utoipa::ToSchema)]
#[schema(
    as = TemplateSample,
    rename_all = "camelCase",
    description = "A media header's sample file, uploaded to Meta through its resumable upload API; Meta reviews the template with it."
)]
pub struct Sample {
    /// The file's bytes, base64.
    #[schema(rename = "data", value_type = String)]
    pub bytes: Vec<u8>,
    #[schema(schema_with = sample_mime_type)]
    pub mime_type: String,
    #[schema(value_type = Option<String>, required = true)]
    pub filename: String,
}

/// A sample's `mimeType` in the document: the types [`sample_types`] takes.
fn sample_mime_type() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::Object::builder()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some([
            "image/jpeg",
            "image/png",
            "video/mp4",
            "application/pdf",
        ]))
        .description(Some(
            "IMAGE: image/jpeg or image/png; VIDEO and GIF: video/mp4; DOCUMENT: application/pdf.",
        ))
        .build()
}

/// A checked submission.
#[derive(Debug, Clone)]
pub struct Draft {
    pub name: String,
    pub language: String,
    pub category: String,
    /// Header, body, footer, buttons, carousel, offer; `extra.parameter_format` is set.
    pub content: TemplateContent,
    /// One example per param (keys as [`TemplateContent::params`]).
    pub examples: BTreeMap<String, String>,
    pub header_sample: Option<Sample>,
    /// One per carousel card.
    pub card_samples: Vec<Option<Sample>>,
    pub add_security_recommendation: bool,
    pub code_expiration_minutes: Option<i64>,
}

/// The media types Meta's resumable upload takes for a header format.
fn sample_types(format: &str) -> &'static [&'static str] {
    match format {
        "IMAGE" => &["image/jpeg", "image/png"],
        "VIDEO" | "GIF" => &["video/mp4"],
        "DOCUMENT" => &["application/pdf"],
        _ => &[],
    }
}

/// Takes `sample` out of a header object when it is an inline file (an object), leaving a
/// header `Header::from_json` reads.
fn take_sample(header: &mut Value, at: &str) -> Result<Option<Sample>, AuthorError> {
    let Some(obj) = header.as_object_mut() else {
        return Ok(None);
    };
    let format = obj
        .get("format")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim()
        .to_ascii_uppercase();
    let sample = match obj.remove("sample") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(s)) => s,
        Some(_) => {
            return Err(field(
                format!("{at}.sample"),
                "must be an object {\"data\": \"<base64>\", \"mimeType\": \"image/png\", \"filename\": \"…\"}",
            ));
        }
    };
    for key in sample.keys() {
        if !["data", "mimeType", "filename"].contains(&key.as_str()) {
            return Err(field(
                format!("{at}.sample.{key}"),
                "is not a field of a sample (data, mimeType, filename)",
            ));
        }
    }
    let data = sample
        .get("data")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
        .ok_or_else(|| {
            field(
                format!("{at}.sample.data"),
                "is required: the file's bytes in base64",
            )
        })?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| field(format!("{at}.sample.data"), format!("is not base64: {e}")))?;
    if bytes.len() > MAX_SAMPLE_BYTES {
        return Err(field(
            format!("{at}.sample.data"),
            format!(
                "is {} bytes; a sample is at most {MAX_SAMPLE_BYTES} bytes",
                bytes.len()
            ),
        ));
    }
    let mime_type = sample
        .get("mimeType")
        .and_then(Value::as_str)
        .map(|m| m.trim().to_ascii_lowercase())
        .filter(|m| !m.is_empty())
        .ok_or_else(|| field(format!("{at}.sample.mimeType"), "is required"))?;
    let allowed = sample_types(&format);
    if !allowed.contains(&mime_type.as_str()) {
        return Err(field(
            format!("{at}.sample.mimeType"),
            if allowed.is_empty() {
                format!("a {format} header takes no sample")
            } else {
                format!(
                    "a {format} header's sample must be {}, got {mime_type}",
                    allowed.join(" or ")
                )
            },
        ));
    }
    let filename = match sample.get("filename") {
        None | Some(Value::Null) => None,
        Some(Value::String(f)) if !f.trim().is_empty() && !f.contains(['/', '\\']) => {
            Some(f.trim().to_string())
        }
        Some(_) => {
            return Err(field(
                format!("{at}.sample.filename"),
                "must be a file name without a path",
            ));
        }
    };
    let filename = filename.unwrap_or_else(|| {
        let ext = mime_type.rsplit('/').next().unwrap_or("bin");
        format!("sample.{ext}")
    });
    Ok(Some(Sample {
        bytes,
        mime_type,
        filename,
    }))
}

/// Reads and checks a submission. Nothing is stored or sent.
pub async fn parse(app: &App, account_id: &str, body: &Value) -> Result<Draft, AuthorError> {
    let submission = read(app, account_id, body).await?;
    draft(app, account_id, submission).await
}

/// Reads a submission's fields, each on its own and with the others, then the content they
/// make (as the admin API checks it), then the examples.
async fn read(
    app: &App,
    account_id: &str,
    body: &Value,
) -> Result<AdminTemplateSubmit, AuthorError> {
    let mut clean = body.clone();
    let obj = clean
        .as_object_mut()
        .ok_or_else(|| field("body", "must be a JSON object"))?;
    let header_sample = match obj.get_mut("header") {
        Some(h) => take_sample(h, "header")?,
        None => None,
    };
    let mut card_samples = Vec::new();
    if let Some(Value::Array(cards)) = obj.get_mut("carousel") {
        for (c, card) in cards.iter_mut().enumerate() {
            let sample = match card.get_mut("header") {
                Some(h) => take_sample(h, &format!("carousel[{c}].header"))?,
                None => None,
            };
            card_samples.push(sample);
        }
    }
    let f = Fields::of(&clean)?;
    f.only(SUBMIT_FIELDS)?;
    f.str("name")?;
    f.str("language")?;
    if !f.has("category") {
        return Err(field(
            "category",
            format!("is required: {}", TEMPLATE_CATEGORIES.join(", ")),
        ));
    }
    let category = f
        .opt_choice("category", TEMPLATE_CATEGORIES)?
        .unwrap_or("UTILITY")
        .to_string();
    let auth = category == "AUTHENTICATION";
    let add_security_recommendation = f.opt_bool("addSecurityRecommendation")?;
    let code_expiration_minutes = f.opt_int("codeExpirationMinutes", 1, 90)?;
    if !auth {
        for key in ["addSecurityRecommendation", "codeExpirationMinutes"] {
            if f.has(key) {
                return Err(field(key, "is only for AUTHENTICATION templates"));
            }
        }
    }
    if auth {
        for (key, why) in [
            ("header", "AUTHENTICATION templates take no header"),
            (
                "message",
                "AUTHENTICATION templates take Meta's fixed body text (\"{{1}} is your verification code\"); leave message out",
            ),
            (
                "footer",
                "AUTHENTICATION templates take no footer text; use codeExpirationMinutes",
            ),
            ("carousel", "AUTHENTICATION templates take no carousel"),
            (
                "limitedTimeOffer",
                "limited-time offers are only for MARKETING templates",
            ),
        ] {
            if f.has(key) {
                return Err(field(key, why));
            }
        }
    } else if f.opt_str("message")?.is_none_or(|m| m.trim().is_empty()) {
        return Err(field("message", "is required: the template's body text"));
    }

    // The admin API's parsing (name, language, header, buttons, carousel, offer, parameter
    // format; placeholders checked by `TemplateContent::validate`). The content is checked
    // here, so that its errors come before the examples'; `draft` makes it again.
    let fields = template_fields(app, account_id, &f).await?;
    apply_template_fields(&mut blank_template(account_id), fields.clone())?;

    let examples = match f.raw("examples") {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => {
            let mut out = BTreeMap::new();
            for (k, v) in map {
                match v {
                    Value::String(s) if !s.trim().is_empty() => {
                        out.insert(k.clone(), s.clone());
                    }
                    _ => {
                        return Err(field(format!("examples.{k}"), "must be a non-empty string"));
                    }
                }
            }
            Some(out)
        }
        Some(_) => {
            return Err(field(
                "examples",
                "must be an object: one example per placeholder, e.g. {\"name\": \"Ana\"}",
            ));
        }
    };
    Ok(AdminTemplateSubmit {
        name: fields.name.unwrap_or_default(),
        language: fields.language.unwrap_or_default(),
        category,
        parameter_format: fields.parameter_format,
        header: fields.header,
        header_sample,
        message: fields.message,
        footer: fields.footer,
        buttons: fields.buttons,
        carousel: fields.carousel,
        card_samples,
        limited_time_offer: fields.limited_time_offer,
        examples,
        add_security_recommendation,
        code_expiration_minutes,
    })
}

/// The draft of a read submission, checked as Meta reviews a template's shape, and refused
/// when the account already has a template of its name and language.
async fn draft(app: &App, account_id: &str, s: AdminTemplateSubmit) -> Result<Draft, AuthorError> {
    let auth = s.category == "AUTHENTICATION";
    let add_security_recommendation = s.add_security_recommendation.unwrap_or(false);
    let mut t = blank_template(account_id);
    apply_template_fields(
        &mut t,
        TemplateUpdate {
            name: Some(s.name),
            language: Some(s.language),
            category: Some(s.category.clone()),
            message: s.message,
            header: s.header,
            footer: s.footer,
            buttons: s.buttons,
            carousel: s.carousel,
            limited_time_offer: s.limited_time_offer,
            parameter_format: s.parameter_format,
            ..TemplateUpdate::default()
        },
    )?;
    if auth {
        t.message = AUTH_BODY.to_string();
        if add_security_recommendation {
            t.message.push_str(AUTH_SECURITY);
        }
        t.footer = s
            .code_expiration_minutes
            .map(|m| format!("This code expires in {m} minutes."));
    }
    let mut content = views::template_content(&t);
    let mut examples = s.examples.unwrap_or_default();
    if auth {
        // Meta makes up the code's example itself.
        examples
            .entry("1".into())
            .or_insert_with(|| "123456".into());
    }
    content.extra.parameter_format = Some(parameter_format(&content)?);
    let draft = Draft {
        name: t.name,
        language: t.language,
        category: s.category,
        content,
        examples,
        header_sample: s.header_sample,
        card_samples: s.card_samples,
        add_security_recommendation,
        code_expiration_minutes: s.code_expiration_minutes,
    };
    check(&draft)?;
    if app
        .store
        .template_by_name(account_id, &draft.name, &draft.language)
        .await?
        .is_some_and(|t| t.status != "DELETED")
    {
        return Err(field(
            "name",
            format!(
                "the account already has a template named '{}' in {}",
                draft.name, draft.language
            ),
        ));
    }
    Ok(draft)
}

fn blank_template(account_id: &str) -> Template {
    let now = now_ms();
    Template {
        id: new_id("tpl"),
        account_id: account_id.to_string(),
        name: String::new(),
        language: String::new(),
        category: "UTILITY".into(),
        status: "PENDING".into(),
        app_id: String::new(),
        message: String::new(),
        header: None,
        footer: None,
        buttons: Value::Array(vec![]),
        extra: Value::Object(Map::new()),
        group_name: None,
        active: true,
        created_at: now,
        updated_at: now,
    }
}

/// The placeholders of the TEXT header and the body.
fn header_body_placeholders(content: &TemplateContent) -> Vec<String> {
    let header = content.header.as_ref().and_then(Header::text).unwrap_or("");
    let mut out = Vec::new();
    for text in [header, content.body.as_str()] {
        for p in parse_placeholders(text).unwrap_or_default() {
            out.push(p.name().to_string());
        }
    }
    out
}

fn is_positional(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_digit())
}

/// `NAMED` or `POSITIONAL`: as given, else as the header and body's placeholders are.
fn parameter_format(content: &TemplateContent) -> Result<String, AuthorError> {
    let named = header_body_placeholders(content)
        .iter()
        .any(|p| !is_positional(p));
    match content.extra.parameter_format.as_deref() {
        Some("POSITIONAL") if named => Err(field(
            "parameterFormat",
            "is POSITIONAL but the header or message has named placeholders",
        )),
        Some(given) => Ok(given.to_string()),
        _ => Ok(if named { "NAMED" } else { "POSITIONAL" }.to_string()),
    }
}

fn label_len(button: &Button) -> Option<usize> {
    match button {
        Button::QuickReply { text }
        | Button::Url { text, .. }
        | Button::PhoneNumber { text, .. }
        | Button::Flow { text, .. }
        | Button::Catalog { text }
        | Button::Mpm { text }
        | Button::VoiceCall { text } => Some(text.chars().count()),
        Button::Otp { text, .. } => text.as_ref().map(|t| t.chars().count()),
        _ => None,
    }
}

/// Meta's rules for a list of buttons at `at` (`buttons`, `carousel[0].buttons`).
fn check_buttons(buttons: &[Button], at: &str, category: &str) -> Result<(), AuthorError> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, b) in buttons.iter().enumerate() {
        let here = format!("{at}[{i}]");
        *counts.entry(b.kind()).or_default() += 1;
        if let Some(n) = label_len(b)
            && n > MAX_BUTTON_TEXT
        {
            return Err(field(
                format!("{here}.text"),
                format!("is {n} characters long; WhatsApp allows {MAX_BUTTON_TEXT}"),
            ));
        }
        match b {
            Button::Url { url, .. } => {
                let bare = url.replace("{{", "").replace("}}", "");
                if !reqwest::Url::parse(&bare).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
                {
                    return Err(field(format!("{here}.url"), "must be an http(s) URL"));
                }
                if let Some(p) = parse_placeholders(url).unwrap_or_default().first()
                    && p.name() != "1"
                {
                    return Err(field(
                        format!("{here}.url"),
                        format!("{p}: Meta takes only {{{{1}}}} as a URL button's placeholder"),
                    ));
                }
            }
            Button::PhoneNumber { phone_number, .. }
                if phone_number.chars().count() > MAX_PHONE =>
            {
                return Err(field(
                    format!("{here}.phoneNumber"),
                    format!("is longer than {MAX_PHONE} characters"),
                ));
            }
            Button::CopyCode { example } if example.chars().count() > MAX_COUPON => {
                return Err(field(
                    format!("{here}.example"),
                    format!("a coupon code is at most {MAX_COUPON} characters"),
                ));
            }
            Button::Otp { otp_type, .. } => {
                if category != "AUTHENTICATION" {
                    return Err(field(
                        format!("{here}.type"),
                        "OTP buttons are only for AUTHENTICATION templates",
                    ));
                }
                if otp_type != "COPY_CODE" {
                    return Err(field(
                        format!("{here}.otpType"),
                        format!(
                            "{otp_type} needs the Android app's package name and signature hash, which plantilla does not author yet; use COPY_CODE"
                        ),
                    ));
                }
            }
            Button::Flow { flow_id: None, .. } => {
                return Err(field(
                    format!("{here}.flowId"),
                    "is required to author a FLOW button",
                ));
            }
            _ => {}
        }
    }
    for (kind, max) in [
        ("URL", 2),
        ("PHONE_NUMBER", 1),
        ("COPY_CODE", 1),
        ("OTP", 1),
        ("FLOW", 1),
        ("VOICE_CALL", 1),
    ] {
        let n = counts.get(kind).copied().unwrap_or(0);
        if n > max {
            return Err(field(
                at,
                format!("has {n} {kind} buttons; WhatsApp allows {max}"),
            ));
        }
    }
    // Quick replies are grouped: all of them together, before or after the other buttons.
    let kinds: Vec<bool> = buttons
        .iter()
        .map(|b| matches!(b, Button::QuickReply { .. }))
        .collect();
    let runs = kinds.windows(2).filter(|w| w[0] != w[1]).count();
    if runs > 1 {
        return Err(field(
            at,
            "quick-reply buttons must be grouped together, before or after the other buttons",
        ));
    }
    Ok(())
}

/// The checks Meta's review of a template's shape makes, with the field each one names.
pub fn check(d: &Draft) -> Result<(), AuthorError> {
    let c = &d.content;
    let auth = d.category == "AUTHENTICATION";
    // Name and language: the admin parsing checked their format; the length too.
    if d.name.len() > 512 {
        return Err(field("name", "must be at most 512 characters"));
    }
    // Lengths.
    if let Some(Header::Text { text }) = &c.header {
        let n = text.chars().count();
        if n > MAX_HEADER_TEXT {
            return Err(field(
                "header.text",
                format!("is {n} characters long; WhatsApp allows {MAX_HEADER_TEXT}"),
            ));
        }
        if let Some(p) = parse_placeholders(text).unwrap_or_default().first()
            && p.is_positional()
            && p.name() != "1"
        {
            return Err(field(
                "header.text",
                format!("{p}: Meta numbers a header's placeholders on their own; use {{{{1}}}}"),
            ));
        }
    }
    let n = c.body.chars().count();
    if n > MAX_BODY {
        return Err(field(
            "message",
            format!("is {n} characters long; WhatsApp allows {MAX_BODY}"),
        ));
    }
    if let Some(footer) = &c.footer {
        let n = footer.chars().count();
        if n > MAX_FOOTER {
            return Err(field(
                "footer",
                format!("is {n} characters long; WhatsApp allows {MAX_FOOTER}"),
            ));
        }
    }
    // Media samples.
    if let Some(h) = &c.header
        && h.media_kind().is_some()
        && d.header_sample.is_none()
    {
        return Err(field(
            "header.sample",
            format!(
                "is required for a {} header: Meta reviews the template with a sample file ({{\"data\": \"<base64>\", \"mimeType\": \"{}\"}})",
                h.format(),
                sample_types(h.format()).first().copied().unwrap_or("")
            ),
        ));
    }
    if d.header_sample.is_some() && c.header.as_ref().and_then(Header::media_kind).is_none() {
        return Err(field("header.sample", "only media headers take a sample"));
    }
    // Buttons.
    check_buttons(&c.buttons, "buttons", &d.category)?;
    for (i, card) in c.extra.carousel.iter().enumerate() {
        let at = format!("carousel[{i}]");
        if d.card_samples.get(i).is_none_or(Option::is_none) {
            return Err(field(
                format!("{at}.header.sample"),
                "is required: each card's media header needs a sample file",
            ));
        }
        if card.body.trim().is_empty() {
            return Err(field(format!("{at}.body"), "is required"));
        }
        let n = card.body.chars().count();
        if n > MAX_CARD_BODY {
            return Err(field(
                format!("{at}.body"),
                format!("is {n} characters long; WhatsApp allows {MAX_CARD_BODY}"),
            ));
        }
        if card.buttons.is_empty() || card.buttons.len() > MAX_CARD_BUTTONS {
            return Err(field(
                format!("{at}.buttons"),
                format!(
                    "a card has 1 to {MAX_CARD_BUTTONS} buttons, got {}",
                    card.buttons.len()
                ),
            ));
        }
        check_buttons(&card.buttons, &format!("{at}.buttons"), &d.category)?;
    }
    // Category rules.
    let otp = c
        .buttons
        .iter()
        .filter(|b| matches!(b, Button::Otp { .. }))
        .count();
    if auth && (otp != 1 || c.buttons.len() != 1) {
        return Err(field(
            "buttons",
            "an AUTHENTICATION template takes exactly one button, of type OTP ({\"type\": \"OTP\", \"otpType\": \"COPY_CODE\"})",
        ));
    }
    if c.extra.limited_time_offer.is_some() {
        if d.category != "MARKETING" {
            return Err(field(
                "limitedTimeOffer",
                "limited-time offers are only for MARKETING templates",
            ));
        }
        if c.footer.is_some() {
            return Err(field(
                "footer",
                "a limited-time offer template takes no footer",
            ));
        }
    }
    if !c.extra.carousel.is_empty() && c.header.is_some() {
        return Err(field(
            "header",
            "a carousel template has no header of its own; each card has one",
        ));
    }
    // Examples.
    let params = c.params();
    let missing: Vec<FieldError> = params
        .iter()
        .filter(|p| !d.examples.contains_key(*p))
        .map(|p| {
            FieldError::new(
                format!("examples.{p}"),
                format!(
                    "is required: Meta reviews every placeholder with an example ({{{{{p}}}}})"
                ),
            )
        })
        .collect();
    if !missing.is_empty() {
        return Err(AuthorError::Invalid(missing));
    }
    let known: BTreeSet<&String> = params.iter().collect();
    if let Some(extra) = d.examples.keys().find(|k| !known.contains(k)) {
        return Err(field(
            format!("examples.{extra}"),
            format!(
                "is not a placeholder of the template (its placeholders: {})",
                if params.is_empty() {
                    "none".to_string()
                } else {
                    params.join(", ")
                }
            ),
        ));
    }
    Ok(())
}

/// The example of each placeholder of `text`, in order of first appearance, looked up as
/// `prefix` + name.
fn text_examples(
    text: &str,
    examples: &BTreeMap<String, String>,
    prefix: &str,
) -> Vec<(String, String)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let mut found = parse_placeholders(text).unwrap_or_default();
    if found.iter().all(|p| p.is_positional()) {
        found.sort_by_key(|p| p.position());
    }
    for p in found {
        if seen.insert(p.name().to_string()) {
            let example = examples
                .get(&format!("{prefix}{}", p.name()))
                .cloned()
                .unwrap_or_default();
            out.push((p.name().to_string(), example));
        }
    }
    out
}

fn header_component(h: &Header, handle: Option<&str>, d: &Draft, named: bool) -> Value {
    match h {
        Header::Text { text } => {
            let mut c = json!({"type": "HEADER", "format": "TEXT", "text": text});
            let ex = text_examples(text, &d.examples, "");
            if !ex.is_empty() {
                c["example"] = if named {
                    json!({"header_text_named_params": ex.iter().map(|(n, e)| json!({"param_name": n, "example": e})).collect::<Vec<_>>()})
                } else {
                    json!({"header_text": ex.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>()})
                };
            }
            c
        }
        Header::Location { .. } => json!({"type": "HEADER", "format": "LOCATION"}),
        media => json!({"type": "HEADER", "format": media.format(),
                        "example": {"header_handle": [handle.unwrap_or_default()]}}),
    }
}

fn body_component(text: &str, d: &Draft, named: bool, prefix: &str) -> Value {
    let mut c = json!({"type": "BODY", "text": text});
    let ex = text_examples(text, &d.examples, prefix);
    if !ex.is_empty() {
        c["example"] = if named && ex.iter().any(|(n, _)| !is_positional(n)) {
            json!({"body_text_named_params": ex.iter().map(|(n, e)| json!({"param_name": n, "example": e})).collect::<Vec<_>>()})
        } else {
            json!({"body_text": [ex.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>()]})
        };
    }
    c
}

fn button_json(b: &Button, d: &Draft, prefix: &str) -> Value {
    match b {
        Button::QuickReply { text } => json!({"type": "QUICK_REPLY", "text": text}),
        Button::Url { text, url } => {
            let mut v = json!({"type": "URL", "text": text, "url": url});
            let found = parse_placeholders(url).unwrap_or_default();
            if !found.is_empty() {
                let values: BTreeMap<String, String> = found
                    .iter()
                    .map(|p| {
                        let key = format!("{prefix}{}", p.name());
                        (
                            p.name().to_string(),
                            d.examples.get(&key).cloned().unwrap_or_default(),
                        )
                    })
                    .collect();
                v["example"] = json!([render(url, &values)]);
            }
            v
        }
        Button::PhoneNumber { text, phone_number } => {
            json!({"type": "PHONE_NUMBER", "text": text, "phone_number": phone_number})
        }
        Button::CopyCode { example } => json!({"type": "COPY_CODE", "example": example}),
        Button::Otp { otp_type, text } => {
            let mut v = json!({"type": "OTP", "otp_type": otp_type});
            if let Some(t) = text {
                v["text"] = json!(t);
            }
            v
        }
        Button::Flow {
            text,
            flow_id,
            flow_action,
            navigate_screen,
        } => {
            let mut v = json!({"type": "FLOW", "text": text, "flow_id": flow_id});
            if let Some(a) = flow_action {
                v["flow_action"] = json!(a);
            }
            if let Some(s) = navigate_screen {
                v["navigate_screen"] = json!(s);
            }
            v
        }
        Button::Catalog { text } => json!({"type": "CATALOG", "text": text}),
        Button::Mpm { text } => json!({"type": "MPM", "text": text}),
        Button::VoiceCall { text } => json!({"type": "VOICE_CALL", "text": text}),
        Button::Other { raw, .. } => raw.clone(),
    }
}

/// The body of `POST /{waba-id}/message_templates` for `d`: the inverse of
/// `service::templates::content_from_meta`. `handles` are the `header_handle`s of the
/// header's sample and of each card's.
pub fn meta_request(d: &Draft, header_handle: Option<&str>, card_handles: &[String]) -> Value {
    let c = &d.content;
    let named = c.extra.parameter_format.as_deref() == Some("NAMED");
    let mut components = Vec::new();
    if d.category == "AUTHENTICATION" {
        let mut body = json!({"type": "BODY"});
        if d.add_security_recommendation {
            body["add_security_recommendation"] = json!(true);
        }
        components.push(body);
        if let Some(m) = d.code_expiration_minutes {
            components.push(json!({"type": "FOOTER", "code_expiration_minutes": m}));
        }
    } else {
        if let Some(h) = &c.header {
            components.push(header_component(h, header_handle, d, named));
        }
        components.push(body_component(&c.body, d, named, ""));
        if let Some(footer) = &c.footer {
            components.push(json!({"type": "FOOTER", "text": footer}));
        }
    }
    if !c.buttons.is_empty() {
        components.push(json!({"type": "BUTTONS",
            "buttons": c.buttons.iter().map(|b| button_json(b, d, "")).collect::<Vec<_>>()}));
    }
    if let Some(offer) = &c.extra.limited_time_offer {
        components.push(json!({"type": "LIMITED_TIME_OFFER",
            "limited_time_offer": {"text": offer.text, "has_expiration": offer.has_expiration}}));
    }
    if !c.extra.carousel.is_empty() {
        let cards: Vec<Value> = c
            .extra
            .carousel
            .iter()
            .enumerate()
            .map(|(i, card)| {
                let prefix = format!("card.{i}.");
                let mut parts = Vec::new();
                if let Some(h) = &card.header {
                    parts.push(header_component(
                        h,
                        card_handles.get(i).map(String::as_str),
                        d,
                        false,
                    ));
                }
                parts.push(body_component(&card.body, d, false, &prefix));
                if !card.buttons.is_empty() {
                    parts.push(json!({"type": "BUTTONS",
                        "buttons": card.buttons.iter().map(|b| button_json(b, d, &prefix)).collect::<Vec<_>>()}));
                }
                json!({"components": parts})
            })
            .collect();
        components.push(json!({"type": "CAROUSEL", "cards": cards}));
    }
    json!({
        "name": d.name,
        "language": d.language,
        "category": d.category,
        "parameter_format": c.extra.parameter_format.as_deref().unwrap_or("POSITIONAL"),
        "components": components,
    })
}

async fn graph_json(response: reqwest::Response) -> Result<Value, MetaError> {
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(|e| transport_error(&e))?;
    if !(200..300).contains(&status) {
        return Err(MetaError::from_response(status, &body, None));
    }
    Ok(serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Uploads a sample through the app's resumable upload API; answers its `header_handle`.
async fn upload_sample(
    app: &App,
    channel: &Channel,
    app_id: &str,
    sample: &Sample,
) -> Result<String, MetaError> {
    let mut url = app
        .graph
        .node_url(&[app_id, "uploads"])
        .map_err(MetaError::connection)?;
    url.query_pairs_mut()
        .append_pair("file_name", &sample.filename)
        .append_pair("file_length", &sample.bytes.len().to_string())
        .append_pair("file_type", &sample.mime_type);
    let started = graph_json(
        app.graph
            .client()
            .post(url)
            .bearer_auth(&channel.access_token)
            .send()
            .await
            .map_err(|e| transport_error(&e))?,
    )
    .await?;
    let session = started["id"]
        .as_str()
        .filter(|s| s.starts_with("upload:"))
        .ok_or_else(|| MetaError::from_response(502, started.to_string().as_bytes(), None))?;
    let url = app
        .graph
        .node_url(&[session])
        .map_err(MetaError::connection)?;
    let done = graph_json(
        app.graph
            .client()
            .post(url)
            .header("Authorization", format!("OAuth {}", channel.access_token))
            .header("file_offset", "0")
            .body(sample.bytes.clone())
            .send()
            .await
            .map_err(|e| transport_error(&e))?,
    )
    .await?;
    done["h"]
        .as_str()
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .ok_or_else(|| MetaError::from_response(502, done.to_string().as_bytes(), None))
}

/// Submits a checked template through `channel` and stores it `PENDING` with Meta's id.
pub async fn submit(app: &App, channel: &Channel, d: Draft) -> Result<Template, AuthorError> {
    let sandbox = channel.provider == ProviderKind::Sandbox;
    let has_samples = d.header_sample.is_some() || d.card_samples.iter().any(Option::is_some);
    let (app_id, header_handle, card_handles) = if sandbox {
        let simulated = |s: &Option<Sample>| {
            s.as_ref()
                .map(|_| format!("sandbox-handle-{}", uuid::Uuid::now_v7().simple()))
        };
        (
            format!("{SANDBOX_ID_PREFIX}{}", uuid::Uuid::now_v7().simple()),
            simulated(&d.header_sample),
            d.card_samples
                .iter()
                .map(|s| simulated(s).unwrap_or_default())
                .collect::<Vec<_>>(),
        )
    } else {
        if channel.waba_id.is_empty() {
            return Err(field(
                "channelId",
                "the channel has no wabaId (WhatsApp Business Account id) to submit templates to",
            ));
        }
        let meta_app = app
            .config
            .meta_app_id
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty());
        let meta_app = match (has_samples, meta_app) {
            (true, None) => {
                return Err(field(
                    if d.header_sample.is_some() {
                        "header.sample"
                    } else {
                        "carousel"
                    },
                    "cannot be uploaded: this server has no Meta app id (set PLANTILLA_META_APP_ID, the app whose resumable upload API takes template samples)",
                ));
            }
            (_, a) => a.unwrap_or_default(),
        };
        let header_handle = match &d.header_sample {
            Some(s) => Some(
                upload_sample(app, channel, meta_app, s)
                    .await
                    .map_err(|e| AuthorError::Upstream(Box::new(e)))?,
            ),
            None => None,
        };
        let mut card_handles = Vec::new();
        for s in &d.card_samples {
            card_handles.push(match s {
                Some(s) => upload_sample(app, channel, meta_app, s)
                    .await
                    .map_err(|e| AuthorError::Upstream(Box::new(e)))?,
                None => String::new(),
            });
        }
        let request = meta_request(&d, header_handle.as_deref(), &card_handles);
        let url = app
            .graph
            .node_url(&[&channel.waba_id, "message_templates"])
            .map_err(|e| AuthorError::Internal(anyhow::anyhow!(e)))?;
        let answer = graph_json(
            app.graph
                .client()
                .post(url)
                .bearer_auth(&channel.access_token)
                .json(&request)
                .send()
                .await
                .map_err(|e| AuthorError::Upstream(Box::new(transport_error(&e))))?,
        )
        .await
        .map_err(|e| AuthorError::Upstream(Box::new(e)))?;
        let id = answer["id"]
            .as_str()
            .map(str::to_string)
            .or_else(|| answer["id"].as_i64().map(|n| n.to_string()))
            .ok_or_else(|| {
                AuthorError::Upstream(Box::new(MetaError::from_response(
                    502,
                    answer.to_string().as_bytes(),
                    None,
                )))
            })?;
        (id, header_handle, card_handles)
    };

    let mut content = d.content.clone();
    set_sample(content.header.as_mut(), header_handle);
    for (card, handle) in content.extra.carousel.iter_mut().zip(card_handles) {
        set_sample(card.header.as_mut(), Some(handle).filter(|h| !h.is_empty()));
    }
    let now = now_ms();
    let template = Template {
        id: new_id("tpl"),
        account_id: channel.account_id.clone(),
        name: d.name.clone(),
        language: d.language.clone(),
        category: d.category.clone(),
        status: "PENDING".into(),
        app_id,
        message: content.body.clone(),
        header: content
            .header
            .as_ref()
            .map(serde_json::to_value)
            .transpose()
            .map_err(anyhow::Error::from)?,
        footer: content.footer.clone(),
        buttons: serde_json::to_value(&content.buttons).map_err(anyhow::Error::from)?,
        extra: serde_json::to_value(&content.extra).map_err(anyhow::Error::from)?,
        group_name: None,
        active: true,
        created_at: now,
        updated_at: now,
    };
    app.store.insert_template(&template).await?;
    tracing::info!(
        template_id = template.id,
        app_id = template.app_id,
        channel_id = channel.id,
        "template submitted"
    );
    if sandbox {
        schedule_sandbox_approval(app.clone(), template.id.clone(), sandbox_delay(app));
    }
    Ok(template)
}

fn set_sample(header: Option<&mut Header>, handle: Option<String>) {
    if let Some(
        Header::Image { sample, .. }
        | Header::Video { sample, .. }
        | Header::Gif { sample, .. }
        | Header::Document { sample, .. },
    ) = header
    {
        *sample = handle;
    }
}

fn sandbox_delay(app: &App) -> Duration {
    Duration::from_millis(app.config.sandbox_approve_delay_ms)
}

/// Approves a sandbox template `after` from now if it is still PENDING then.
fn schedule_sandbox_approval(app: App, template_id: String, after: Duration) {
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        if let Err(e) = approve_sandbox(&app, &template_id).await {
            tracing::warn!(template_id, error = %e, "sandbox template approval failed");
        }
    });
}

async fn approve_sandbox(app: &App, template_id: &str) -> Result<(), StoreError> {
    if let Some(t) = app.store.template(template_id).await?
        && t.status == "PENDING"
        && t.app_id.starts_with(SANDBOX_ID_PREFIX)
    {
        // Queues `template.status_changed`, as Meta's webhook would.
        app.store
            .set_template_status(template_id, "APPROVED", now_ms())
            .await?;
    }
    Ok(())
}

/// At start-up: every sandbox template still PENDING is approved once its delay has passed
/// (the timers of a previous process died with it).
pub async fn resume_sandbox_approvals(app: App) {
    let result = async {
        let channels = app.store.list_channels().await?;
        let accounts: BTreeSet<String> = channels
            .into_iter()
            .filter(|c| c.provider == ProviderKind::Sandbox)
            .map(|c| c.account_id)
            .collect();
        let delay = i64::try_from(app.config.sandbox_approve_delay_ms).unwrap_or(i64::MAX / 4);
        let now = now_ms();
        for account in accounts {
            let mut offset = 0;
            loop {
                let filter = TemplateFilter {
                    status: Some("PENDING".into()),
                    name: None,
                    offset,
                    limit: 500,
                };
                let (page, _) = app.store.list_templates(&account, &filter).await?;
                for t in page
                    .iter()
                    .filter(|t| t.app_id.starts_with(SANDBOX_ID_PREFIX))
                {
                    let due = t.created_at.saturating_add(delay);
                    let wait = u64::try_from(due - now).unwrap_or(0);
                    schedule_sandbox_approval(
                        app.clone(),
                        t.id.clone(),
                        Duration::from_millis(wait),
                    );
                }
                if page.len() < 500 {
                    break;
                }
                offset += 500;
            }
        }
        Ok::<_, StoreError>(())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "cannot resume sandbox template approvals");
    }
}

/// Deletes a template: at Meta when it was submitted there (a Meta id, the account has a
/// cloud channel with a WABA) and `at_meta`, then locally (status `DELETED`, inactive).
pub async fn delete(app: &App, template: &Template, at_meta: bool) -> Result<(), AuthorError> {
    if template.status == "DELETED" {
        return Err(AuthorError::NotFound(template.id.clone()));
    }
    let meta_id = !template.app_id.is_empty() && !template.app_id.starts_with(SANDBOX_ID_PREFIX);
    if at_meta && meta_id {
        let channels: Vec<Channel> = app
            .store
            .list_channels()
            .await?
            .into_iter()
            .filter(|c| {
                c.account_id == template.account_id
                    && c.provider == ProviderKind::Cloud
                    && !c.waba_id.is_empty()
            })
            .collect();
        let mut seen = BTreeSet::new();
        let mut last_error = None;
        let mut deleted = channels.is_empty();
        for c in channels.iter().filter(|c| seen.insert(c.waba_id.clone())) {
            let mut url = app
                .graph
                .node_url(&[&c.waba_id, "message_templates"])
                .map_err(|e| AuthorError::Internal(anyhow::anyhow!(e)))?;
            url.query_pairs_mut()
                .append_pair("name", &template.name)
                .append_pair("hsm_id", &template.app_id);
            let result = match app
                .graph
                .client()
                .delete(url)
                .bearer_auth(&c.access_token)
                .send()
                .await
            {
                Ok(r) => graph_json(r).await,
                Err(e) => Err(transport_error(&e)),
            };
            match result {
                Ok(_) => {
                    deleted = true;
                    break;
                }
                Err(e) => last_error = Some(e),
            }
        }
        if !deleted && let Some(e) = last_error {
            return Err(AuthorError::Upstream(Box::new(e)));
        }
    }
    let now = now_ms();
    // First on its own, so the change queues `template.status_changed`.
    app.store
        .set_template_status(&template.id, "DELETED", now)
        .await?;
    let mut t = app
        .store
        .template(&template.id)
        .await?
        .ok_or_else(|| AuthorError::NotFound(template.id.clone()))?;
    t.active = false;
    t.updated_at = now;
    app.store.update_template(&t).await?;
    tracing::info!(
        template_id = t.id,
        at_meta = at_meta && meta_id,
        "template deleted"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(content: TemplateContent, examples: &[(&str, &str)]) -> Draft {
        Draft {
            name: "promo".into(),
            language: "es".into(),
            category: "MARKETING".into(),
            content,
            examples: examples
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            header_sample: None,
            card_samples: vec![],
            add_security_recommendation: false,
            code_expiration_minutes: None,
        }
    }

    #[test]
    fn named_and_positional_examples_take_metas_shapes() {
        let mut content = TemplateContent {
            header: Some(Header::Text {
                text: "Pedido {{order}}".into(),
            }),
            body: "Hola {{name}}, tu pedido {{order}}".into(),
            buttons: vec![Button::Url {
                text: "Seguir".into(),
                url: "https://x.example/t/{{1}}".into(),
            }],
            ..Default::default()
        };
        content.extra.parameter_format = Some("NAMED".into());
        let d = draft(content, &[("name", "Ana"), ("order", "A-1"), ("1", "A1")]);
        check(&d).unwrap();
        let r = meta_request(&d, None, &[]);
        assert_eq!(r["parameter_format"], "NAMED");
        let c = &r["components"];
        assert_eq!(
            c[0]["example"]["header_text_named_params"],
            json!([{"param_name": "order", "example": "A-1"}])
        );
        assert_eq!(
            c[1]["example"]["body_text_named_params"],
            json!([{"param_name": "name", "example": "Ana"}, {"param_name": "order", "example": "A-1"}])
        );
        assert_eq!(
            c[2]["buttons"][0]["example"],
            json!(["https://x.example/t/A1"])
        );

        let mut content = TemplateContent {
            body: "Cita el {{2}} con {{1}}".into(),
            ..Default::default()
        };
        content.extra.parameter_format = Some("POSITIONAL".into());
        let d = draft(content, &[("1", "Ana"), ("2", "lunes")]);
        let r = meta_request(&d, None, &[]);
        assert_eq!(
            r["components"][0]["example"]["body_text"],
            json!([["Ana", "lunes"]])
        );
    }

    #[test]
    fn missing_examples_and_button_rules_name_their_field() {
        let content = TemplateContent {
            body: "Hola {{name}}".into(),
            ..Default::default()
        };
        match check(&draft(content, &[])) {
            Err(AuthorError::Invalid(list)) => assert_eq!(list[0].field, "examples.name"),
            other => panic!("{other:?}"),
        }
        let qr = |t: &str| Button::QuickReply { text: t.into() };
        let content = TemplateContent {
            body: "Hola".into(),
            buttons: vec![
                qr("a"),
                Button::PhoneNumber {
                    text: "Llamar".into(),
                    phone_number: "+34600000000".into(),
                },
                qr("b"),
            ],
            ..Default::default()
        };
        match check(&draft(content, &[])) {
            Err(AuthorError::Invalid(list)) => assert_eq!(list[0].field, "buttons"),
            other => panic!("{other:?}"),
        }
    }
}
