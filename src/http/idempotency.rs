//! The `Idempotency-Key` header of the native API, as an extractor that checks it: 1 to 255
//! visible ASCII characters, or a 400 `idempotency-key-invalid`.
//!
//! Operations that are safe to repeat by nature (closing a conversation, syncing templates)
//! take the extractor only to check the key, so every `POST` of `/v1` treats the header alike;
//! they store nothing. Sends and endpoint registrations store it with the request's
//! [fingerprint](IdempotencyHeader::for_request). A handler that checks its body first takes
//! `Result<IdempotencyHeader, Problem>` and applies `?` after the body.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};

use super::problem::Problem;
use crate::app::App;
use crate::now_ms;
use crate::service::access::Caller;
use crate::store::IdempotencyKey;

/// How the document describes the header where the key is stored with the request.
pub(crate) const STORED: &str = "Makes a retry safe: the same key with the same body answers the \
    first response (and sends nothing new); the same key with a different body is a 422 \
    `idempotency-key-reused`. Keys are scoped to the caller (channel token or API key) and \
    expire after 24 hours (configurable).";

/// How the document describes the header where the operation is safe to repeat by nature.
pub(crate) const CHECKED: &str = "Accepted like on every POST and checked (a malformed key \
    is a 400 `idempotency-key-invalid`), but not stored: this operation is safe to repeat by \
    nature, so a retry with or without the key does no harm.";

/// How the document describes the header of a webhook endpoint's registration, whose key keeps
/// the endpoint it registered.
const ENDPOINT: &str = "Makes a retry safe: the same key with the same body answers 201 with the \
    endpoint the first request registered, the same id and secret (nothing new is registered, \
    even for retries sent at once); the same key with a different body is a 422 \
    `idempotency-key-reused` and registers nothing; a 404 `not-found` if that endpoint was \
    deleted since. The key keeps only the endpoint's id, never its secret. Keys are scoped to \
    the caller (channel token or API key) and expire after 24 hours (configurable).";

/// The `Idempotency-Key` parameter of an operation that checks the key but stores nothing
/// (`params(CheckedKey)` in its `#[utoipa::path]`).
pub struct CheckedKey;

impl utoipa::IntoParams for CheckedKey {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![key_parameter(CHECKED)]
    }
}

/// The `Idempotency-Key` parameter of an operation that stores the key with the request.
pub struct StoredKey;

impl utoipa::IntoParams for StoredKey {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![key_parameter(STORED)]
    }
}

/// The `Idempotency-Key` parameter of a webhook endpoint's registration (`POST
/// /v1/webhook-endpoints`), which stores the key with the endpoint's id.
pub struct EndpointKey;

impl utoipa::IntoParams for EndpointKey {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![key_parameter(ENDPOINT)]
    }
}

/// The header as the extractor checks it, described by `description`.
pub(crate) fn key_parameter(description: &str) -> Parameter {
    let schema = ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(255))
        .pattern(Some("^[!-~]+$"));
    ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

/// The request's checked `Idempotency-Key`, if it has one.
pub struct IdempotencyHeader(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyHeader {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        let Some(raw) = parts.headers.get("idempotency-key") else {
            return Ok(IdempotencyHeader(None));
        };
        let key = raw.to_str().unwrap_or_default().trim();
        if key.is_empty() || key.len() > 255 || !key.chars().all(|c| c.is_ascii_graphic()) {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "idempotency-key-invalid",
                "Invalid Idempotency-Key",
                "the Idempotency-Key header must be 1 to 255 visible ASCII characters",
            ));
        }
        Ok(IdempotencyHeader(Some(key.to_string())))
    }
}

impl IdempotencyHeader {
    /// The key to store with a `POST` to `path` with `body`: scoped to the caller, with the
    /// request's fingerprint, expiring after the configured time.
    pub fn for_request(
        self,
        app: &App,
        caller: &Caller,
        path: &str,
        body: &Value,
    ) -> Option<IdempotencyKey> {
        let key = self.0?;
        // serde_json's maps are sorted, so the same body always prints the same.
        let fingerprint = hex::encode(Sha256::digest(format!("POST {path}\n{body}").as_bytes()));
        let ttl = i64::try_from(app.config.idempotency_ttl_secs.saturating_mul(1000))
            .unwrap_or(i64::MAX / 4);
        Some(IdempotencyKey {
            scope: caller.scope(),
            key,
            fingerprint,
            expires_at: now_ms().saturating_add(ttl),
        })
    }
}
