//! The fake's health webhooks on request, over HTTP (for the bench and the `fake-graph`
//! binary; tests can also build them with the handle's methods and post them):
//!
//! `POST /_fake/webhooks/{field}` with a JSON body, posted signed (and retried, recorded)
//! like the fake's status webhooks; answers `{"webhook_delivered", "webhook"}`:
//! - `message_template_status_update`: `{name, language, event, reason?, disableDate? (Unix
//!   seconds), otherInfo? {title, description}}`
//! - `template_category_update`: `{name, language, previousCategory, newCategory}` (a change,
//!   also made on the fake's template) or `{name, language, newCategory, correctCategory, at}`
//!   (an advance notice; `at` in Unix seconds)
//! - `message_template_quality_update`: `{name, language, previousQualityScore,
//!   newQualityScore}`
//! - `phone_number_quality_update`: `{phoneNumberId, event, limit, oldLimit?}`
//! - `account_update`: `{phoneNumberId, event, limit}`

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::payload::{self, BusinessIds, TemplateStatusUpdate};
use super::{Shared, webhook};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/_fake/webhooks/{field}", post(emit_handler))
        .with_state(shared)
}

fn bad(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": {"message": message}})),
    )
        .into_response()
}

async fn emit_handler(
    AxState(shared): AxState<Arc<Shared>>,
    Path(field): Path<String>,
    body: Bytes,
) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match build(&shared, &field, &request) {
        Ok((phone, payload)) => {
            let delivered = webhook::deliver(&shared, &phone, payload.clone()).await;
            axum::Json(json!({"webhook_delivered": delivered, "webhook": payload})).into_response()
        }
        Err(message) => bad(message),
    }
}

fn field<'a>(request: &'a Value, name: &str) -> Result<&'a str, String> {
    request
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("`{name}` is required (a string)"))
}

/// The phone number whose webhook URL gets the payload, and the payload.
fn build(shared: &Shared, kind: &str, request: &Value) -> Result<(String, Value), String> {
    let mut state = shared.lock();
    if matches!(kind, "phone_number_quality_update" | "account_update") {
        let phone = state.phone(field(request, "phoneNumberId")?);
        let biz = BusinessIds {
            waba_id: phone.waba_id.clone(),
            phone_number_id: phone.phone_number_id.clone(),
            display_phone_number: phone.display_phone_number.clone(),
        };
        let event = field(request, "event")?;
        let limit = field(request, "limit")?;
        let payload = if kind == "account_update" {
            payload::account_update_payload(&biz.waba_id, event, limit)
        } else {
            let old = request.get("oldLimit").and_then(Value::as_str);
            payload::phone_quality_payload(&biz, event, limit, old)
        };
        return Ok((biz.phone_number_id, payload));
    }
    let name = field(request, "name")?;
    let language = field(request, "language")?;
    let template = state
        .templates
        .iter_mut()
        .find(|t| t.name == name && t.language == language)
        .ok_or_else(|| format!("no template {name} ({language})"))?;
    let waba_id = template
        .waba_id
        .clone()
        .unwrap_or_else(|| super::DEFAULT_WABA_ID.to_string());
    let ids = (template.id.clone(), name.to_string(), language.to_string());
    let keys = (ids.0.as_str(), ids.1.as_str(), ids.2.as_str());
    let payload = match kind {
        "message_template_status_update" => {
            let event = field(request, "event")?.to_ascii_uppercase();
            let update = TemplateStatusUpdate {
                event: event.clone(),
                message_template_id: template.id.clone(),
                message_template_name: template.name.clone(),
                message_template_language: template.language.clone(),
                reason: request
                    .get("reason")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                message_template_category: Some(template.category.clone()),
            };
            let mut payload = payload::template_status_payload(&waba_id, &update);
            let value = &mut payload["entry"][0]["changes"][0]["value"];
            if let Some(date) = request.get("disableDate").and_then(Value::as_i64) {
                value["disable_info"] = json!({ "disable_date": date });
            }
            if let Some(info) = request.get("otherInfo").filter(|v| v.is_object()) {
                value["other_info"] = info.clone();
            }
            payload
        }
        "template_category_update" => {
            match request.get("correctCategory").and_then(Value::as_str) {
                Some(correct) => {
                    let at = request
                        .get("at")
                        .and_then(Value::as_i64)
                        .ok_or("`at` is required with correctCategory (Unix seconds)")?;
                    let current = request
                        .get("newCategory")
                        .and_then(Value::as_str)
                        .unwrap_or(&template.category)
                        .to_string();
                    payload::template_category_payload(&waba_id, keys, &current, correct, Some(at))
                }
                None => {
                    let previous = request
                        .get("previousCategory")
                        .and_then(Value::as_str)
                        .unwrap_or(&template.category)
                        .to_string();
                    let new = field(request, "newCategory")?;
                    template.category = new.to_string();
                    payload::template_category_payload(&waba_id, keys, &previous, new, None)
                }
            }
        }
        "message_template_quality_update" => payload::template_quality_payload(
            &waba_id,
            keys,
            field(request, "previousQualityScore")?,
            field(request, "newQualityScore")?,
        ),
        other => return Err(format!("unknown webhook field {other}")),
    };
    // To the webhook URL of a phone number of the template's WABA, else the global one.
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
    Ok((phone, payload))
}
