//! Status callbacks, the use cases: an account's webhook endpoints (register, list, read,
//! delete), what was delivered to them, and the account's secret for messages' own
//! `callbackUrl`. Every call is scoped to one account.

use serde_json::Value;

use super::admin::AdminError;
use super::input::{FieldError, describe};
use crate::api::events::{
    self as api, DeliveryStatus, WebhookEndpointCreate, WebhookEndpointCreated, WebhookEndpointList,
};
use crate::app::App;
use crate::domain::callback::{EventType, new_signing_secret, url_problem};
use crate::domain::ids::new_id;
use crate::format_ms;
use crate::now_ms;
use crate::store::{CallbackDelivery, EndpointInsert, IdempotencyKey, StoreError, WebhookEndpoint};

#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("invalid request")]
    Invalid(Vec<FieldError>),
    #[error("no {kind} with id '{id}'")]
    NotFound { kind: &'static str, id: String },
    /// The idempotency key was first used with a different request; nothing was created.
    #[error("the idempotency key was used with a different request")]
    IdempotencyKeyReused,
    /// The idempotency key created this endpoint, which was deleted since.
    #[error("the webhook endpoint '{0}' created with this idempotency key was deleted")]
    CreatedEndpointDeleted(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for CallbackError {
    fn from(e: StoreError) -> Self {
        CallbackError::Internal(e.into())
    }
}

pub type CallbackResult<T> = Result<T, CallbackError>;

const MAX_DESCRIPTION: usize = 500;

/// Reads `{url, eventTypes, description?}` of a new endpoint; every bad field is named.
pub fn parse_endpoint(body: &Value) -> CallbackResult<WebhookEndpointCreate> {
    let mut errors = Vec::new();
    let url = match body.get("url") {
        Some(Value::String(u)) => match url_problem(u.trim()) {
            None => Some(u.trim().to_string()),
            Some(problem) => {
                errors.push(FieldError::new("url", problem));
                None
            }
        },
        None | Some(Value::Null) => {
            errors.push(FieldError::new("url", "is required: an http(s) URL"));
            None
        }
        Some(v) => {
            errors.push(FieldError::new(
                "url",
                format!("must be a string, got {}", describe(v)),
            ));
            None
        }
    };
    let all = || {
        EventType::ALL
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut event_types: Vec<EventType> = Vec::new();
    match body.get("eventTypes") {
        Some(Value::Array(list)) if !list.is_empty() => {
            for (i, v) in list.iter().enumerate() {
                let field = format!("eventTypes[{i}]");
                match v.as_str().map(|s| (s, EventType::parse(s))) {
                    Some((s, Some(t))) if event_types.contains(&t) => {
                        errors.push(FieldError::new(field, format!("'{s}' is listed twice")));
                    }
                    Some((_, Some(t))) => event_types.push(t),
                    Some((s, None)) => errors.push(FieldError::new(
                        field,
                        format!("'{s}' is not an event type ({})", all()),
                    )),
                    None => errors.push(FieldError::new(
                        field,
                        format!("must be a string, got {}", describe(v)),
                    )),
                }
            }
        }
        Some(Value::Array(_)) | None | Some(Value::Null) => errors.push(FieldError::new(
            "eventTypes",
            format!("is required: a non-empty array of event types ({})", all()),
        )),
        Some(v) => errors.push(FieldError::new(
            "eventTypes",
            format!("must be an array, got {}", describe(v)),
        )),
    }
    let description = match body.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(d)) if d.chars().count() <= MAX_DESCRIPTION => {
            Some(d.trim().to_string()).filter(|d| !d.is_empty())
        }
        Some(Value::String(_)) => {
            errors.push(FieldError::new(
                "description",
                format!("must be at most {MAX_DESCRIPTION} characters"),
            ));
            None
        }
        Some(v) => {
            errors.push(FieldError::new(
                "description",
                format!("must be a string, got {}", describe(v)),
            ));
            None
        }
    };
    let (Some(url), true) = (url, errors.is_empty()) else {
        return Err(CallbackError::Invalid(errors));
    };
    Ok(WebhookEndpointCreate {
        url,
        event_types,
        description,
    })
}

/// Registers an endpoint. The answer is the only time its secret is shown, except to a retry
/// with the same idempotency key and body, which is answered the endpoint the first request
/// created.
pub async fn create_endpoint(
    app: &App,
    account_id: &str,
    input: WebhookEndpointCreate,
    idempotency: Option<IdempotencyKey>,
) -> CallbackResult<WebhookEndpointCreated> {
    let endpoint = WebhookEndpoint {
        id: new_id("we"),
        account_id: account_id.to_string(),
        url: input.url,
        event_types: input.event_types.iter().map(|t| t.to_string()).collect(),
        description: input.description,
        secret: new_signing_secret(),
        created_at: now_ms(),
    };
    let idempotency = idempotency.as_ref();
    let inserted = match app
        .store
        .insert_webhook_endpoint(&endpoint, idempotency)
        .await
    {
        // A concurrent writer of the same key got in the way (on PostgreSQL, an expired key
        // forgotten between two statements): decide again, now seeing what it left.
        Err(StoreError::Conflict(_)) => {
            app.store
                .insert_webhook_endpoint(&endpoint, idempotency)
                .await?
        }
        other => other?,
    };
    let endpoint = match inserted {
        EndpointInsert::Created => endpoint,
        EndpointInsert::Replayed(first) => first,
        EndpointInsert::ReplayedDeleted { id } => {
            return Err(CallbackError::CreatedEndpointDeleted(id));
        }
        EndpointInsert::KeyReused => return Err(CallbackError::IdempotencyKeyReused),
    };
    let view = endpoint_view(&endpoint)?;
    Ok(WebhookEndpointCreated {
        id: view.id,
        url: view.url,
        event_types: view.event_types,
        description: view.description,
        created_at: view.created_at,
        secret: endpoint.secret,
    })
}

pub async fn list_endpoints(app: &App, account_id: &str) -> CallbackResult<WebhookEndpointList> {
    let list = app.store.webhook_endpoints(account_id).await?;
    Ok(WebhookEndpointList {
        data: list.iter().map(endpoint_view).collect::<Result<_, _>>()?,
    })
}

async fn load(app: &App, account_id: &str, id: &str) -> CallbackResult<WebhookEndpoint> {
    app.store
        .webhook_endpoint(account_id, id)
        .await?
        .ok_or_else(|| CallbackError::NotFound {
            kind: "webhook endpoint",
            id: id.into(),
        })
}

pub async fn get_endpoint(
    app: &App,
    account_id: &str,
    id: &str,
) -> CallbackResult<api::WebhookEndpoint> {
    Ok(endpoint_view(&load(app, account_id, id).await?)?)
}

/// Deletes the endpoint and its deliveries: nothing more is sent to it.
pub async fn delete_endpoint(app: &App, account_id: &str, id: &str) -> CallbackResult<()> {
    if app.store.delete_webhook_endpoint(account_id, id).await? {
        Ok(())
    } else {
        Err(CallbackError::NotFound {
            kind: "webhook endpoint",
            id: id.into(),
        })
    }
}

/// A page of an endpoint's deliveries, oldest first, after the delivery numbered `after`.
/// The second value is the number to continue after, when the page is full.
pub async fn deliveries(
    app: &App,
    account_id: &str,
    endpoint_id: &str,
    after: Option<i64>,
    limit: u32,
) -> CallbackResult<(Vec<api::CallbackDelivery>, Option<i64>)> {
    load(app, account_id, endpoint_id).await?;
    let list = app
        .store
        .callback_deliveries(endpoint_id, after, limit)
        .await?;
    let next = (list.len() == limit as usize)
        .then(|| list.last().map(|d| d.seq))
        .flatten();
    let list = list.iter().map(delivery_view).collect::<Result<_, _>>()?;
    Ok((list, next))
}

/// A new secret for the account's deliveries to messages' `callbackUrl` (admin API): the
/// old one stops signing at once.
pub async fn rotate_callback_secret(
    app: &App,
    account_id: &str,
) -> Result<crate::api::admin::CallbackSecret, AdminError> {
    let secret = new_signing_secret();
    if !app.store.set_callback_secret(account_id, &secret).await? {
        return Err(AdminError::NotFound {
            kind: "account",
            id: account_id.into(),
        });
    }
    Ok(crate::api::admin::CallbackSecret {
        account_id: account_id.into(),
        secret,
    })
}

/// The event type a store row names; one that is not is an error of the store.
fn event_type(name: &str, of: &str) -> Result<EventType, StoreError> {
    EventType::parse(name).ok_or_else(|| {
        StoreError::Other(anyhow::anyhow!("{of} has an unknown event type '{name}'"))
    })
}

/// An endpoint without its secret.
pub fn endpoint_view(e: &WebhookEndpoint) -> Result<api::WebhookEndpoint, StoreError> {
    let of = || format!("the webhook endpoint '{}'", e.id);
    Ok(api::WebhookEndpoint {
        id: e.id.clone().into(),
        url: e.url.clone(),
        event_types: e
            .event_types
            .iter()
            .map(|t| event_type(t, &of()))
            .collect::<Result<_, _>>()?,
        description: e.description.clone(),
        created_at: format_ms(e.created_at),
    })
}

pub fn delivery_view(d: &CallbackDelivery) -> Result<api::CallbackDelivery, StoreError> {
    let of = format!("the callback delivery '{}'", d.id);
    let status = DeliveryStatus::parse(&d.status).ok_or_else(|| {
        StoreError::Other(anyhow::anyhow!("{of} has an unknown status '{}'", d.status))
    })?;
    Ok(api::CallbackDelivery {
        id: d.id.clone().into(),
        event_type: event_type(&d.event_type, &of)?,
        message_id: d.message_id.clone().map(Into::into),
        status,
        attempts: d.attempts,
        last_response_status: d.last_response_status,
        last_error: d.last_error.clone(),
        next_attempt_at: (status == DeliveryStatus::Pending).then(|| format_ms(d.next_attempt_at)),
        created_at: format_ms(d.created_at),
        delivered_at: d.delivered_at.map(format_ms),
        payload: serde_json::from_str::<Value>(&d.payload).unwrap_or(Value::Null),
    })
}
