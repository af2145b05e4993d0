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

use super::problem::Problem;
use crate::app::App;
use crate::now_ms;
use crate::service::access::Caller;
use crate::store::IdempotencyKey;

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
