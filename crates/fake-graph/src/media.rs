//! `POST /{version}/{phone-number-id}/media`: Meta's media upload, checked as Meta documents it
//! (Cloud API reference, Media): the phone number's bearer token, a `multipart/form-data` body
//! with `messaging_product=whatsapp`, `type` (the file's MIME type) and `file`; the type must
//! be one Meta supports and the file within that type's limit. Accepted uploads answer
//! `{"id": "<media id>"}`. Every attempt is recorded ([`FakeGraph::media_uploads`]) so tests
//! can assert what arrived, or that nothing did.
//!
//! The supported types and limits are written out here on their own (not taken from
//! plantilla's `domain::media`), so a mistake in plantilla's table shows up as a refusal.

use std::sync::Arc;

use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State as AxState};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, post};
use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::json;

use super::error::GraphError;
use super::{FakeGraph, Shared};

/// Largest body the route reads: Meta's largest file (100 MB documents) and the envelope.
const MAX_BODY: usize = 100 * 1024 * 1024 + 1024 * 1024;

/// Meta's supported upload types and their limits in bytes (stickers: the static limit; an
/// animated WebP gets [`ANIMATED_STICKER_LIMIT`]).
const TYPES: &[(&str, u64)] = &[
    ("audio/aac", 16 << 20),
    ("audio/amr", 16 << 20),
    ("audio/mpeg", 16 << 20),
    ("audio/mp4", 16 << 20),
    ("audio/ogg", 16 << 20),
    ("text/plain", 100 << 20),
    ("application/pdf", 100 << 20),
    ("application/vnd.ms-powerpoint", 100 << 20),
    ("application/msword", 100 << 20),
    ("application/vnd.ms-excel", 100 << 20),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        100 << 20,
    ),
    (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        100 << 20,
    ),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        100 << 20,
    ),
    ("image/jpeg", 5 << 20),
    ("image/png", 5 << 20),
    ("image/webp", 100 << 10),
    ("video/mp4", 16 << 20),
    ("video/3gpp", 16 << 20),
];

const ANIMATED_STICKER_LIMIT: u64 = 500 << 10;

/// One `POST …/media` request, accepted or not.
#[derive(Debug, Clone)]
pub struct MediaUpload {
    pub phone_number_id: String,
    pub authorization: Option<String>,
    /// The `messaging_product` field, when sent.
    pub messaging_product: Option<String>,
    /// The `type` field (the MIME type Meta goes by), when sent.
    pub mime_type: Option<String>,
    /// The `file` part's own `Content-Type` and file name.
    pub file_content_type: Option<String>,
    pub filename: Option<String>,
    /// Bytes of the `file` part (0 without one).
    pub size: usize,
    pub bytes: Vec<u8>,
    /// The media id answered; `None` when refused.
    pub id: Option<String>,
    /// Meta's error code when refused.
    pub error_code: Option<i64>,
    pub received_at: DateTime<Utc>,
}

/// The route's method router, with its own body limit.
pub(super) fn route() -> MethodRouter<Arc<Shared>> {
    post(upload).layer(DefaultBodyLimit::max(MAX_BODY))
}

impl FakeGraph {
    /// Every media upload request, in order.
    pub fn media_uploads(&self) -> Vec<MediaUpload> {
        self.shared.lock().media_uploads.clone()
    }
}

/// The bearer token of an `Authorization` value.
fn token(authorization: &str) -> Option<String> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth"))
        .then(|| token.trim().to_string())
        .filter(|t| !t.is_empty())
}

fn required(field: &str) -> GraphError {
    GraphError::new(
        400,
        100,
        format!("(#100) The parameter {field} is required."),
    )
}

fn upload_error(details: String) -> GraphError {
    GraphError::new(400, 131053, "(#131053) Media upload error").with_details(details)
}

fn animated_webp(bytes: &[u8]) -> bool {
    bytes.len() > 20
        && bytes.starts_with(b"RIFF")
        && &bytes[8..16] == b"WEBPVP8X"
        && bytes[20] & 0x02 != 0
}

async fn upload(
    AxState(shared): AxState<Arc<Shared>>,
    Path((_version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let mut record = MediaUpload {
        phone_number_id,
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        messaging_product: None,
        mime_type: None,
        file_content_type: None,
        filename: None,
        size: 0,
        bytes: Vec::new(),
        id: None,
        error_code: None,
        received_at: Utc::now(),
    };
    let result = match multipart {
        Ok(mut multipart) => read(&mut multipart, &mut record).await,
        Err(_) => Err(required("messaging_product")),
    };
    let result = result.and_then(|()| check(&shared, &record));
    let response = match result {
        Ok(id) => {
            record.id = Some(id.clone());
            axum::Json(json!({"id": id})).into_response()
        }
        Err(e) => {
            record.error_code = Some(e.code);
            e.into_response()
        }
    };
    shared.lock().media_uploads.push(record);
    response
}

async fn read(multipart: &mut Multipart, record: &mut MediaUpload) -> Result<(), GraphError> {
    let unreadable = |e: axum::extract::multipart::MultipartError| {
        GraphError::meta(100).with_details(format!("The multipart body cannot be read: {e}"))
    };
    while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
        match field.name().unwrap_or_default() {
            "messaging_product" => {
                record.messaging_product = Some(field.text().await.map_err(unreadable)?);
            }
            "type" => record.mime_type = Some(field.text().await.map_err(unreadable)?),
            "file" => {
                record.file_content_type = field.content_type().map(str::to_string);
                record.filename = field.file_name().map(str::to_string);
                let bytes = field.bytes().await.map_err(unreadable)?;
                record.size = bytes.len();
                record.bytes = bytes.to_vec();
            }
            _ => {}
        }
    }
    Ok(())
}

/// Meta's checks, in order: token, phone number, fields, type, size. The media id on success.
fn check(shared: &Shared, record: &MediaUpload) -> Result<String, GraphError> {
    let state = shared.lock();
    let token = record
        .authorization
        .as_deref()
        .and_then(token)
        .ok_or_else(|| GraphError::meta(190))?;
    let phone_id = record.phone_number_id.as_str();
    match state.phones.get(phone_id) {
        Some(phone) if phone.access_token != token => return Err(GraphError::meta(190)),
        Some(_) => {}
        None => {
            let default_ok = state.config.default_access_token.as_deref() == Some(token.as_str());
            if !default_ok && !state.config.accept_any_token {
                let known = state.phones.values().any(|p| p.access_token == token);
                return Err(if known {
                    GraphError::new(
                        400,
                        100,
                        format!(
                            "Unsupported post request. Object with ID '{phone_id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api"
                        ),
                    )
                    .with_subcode(33)
                } else {
                    GraphError::meta(190)
                });
            }
        }
    }
    drop(state);
    match record.messaging_product.as_deref() {
        None => return Err(required("messaging_product")),
        Some(p) if p.eq_ignore_ascii_case("whatsapp") => {}
        Some(other) => {
            return Err(GraphError::new(
                400,
                100,
                format!(
                    "(#100) Param messaging_product must be one of {{WHATSAPP}} - got \"{other}\"."
                ),
            ));
        }
    }
    if record.file_content_type.is_none() && record.filename.is_none() && record.size == 0 {
        return Err(required("file"));
    }
    let mime = record
        .mime_type
        .as_deref()
        .ok_or_else(|| required("type"))?;
    let Some((_, limit)) = TYPES.iter().find(|(t, _)| *t == mime) else {
        let list: Vec<&str> = TYPES.iter().map(|(t, _)| *t).collect();
        return Err(GraphError::new(
            400,
            100,
            format!(
                "(#100) Param file must be a file with one of the following types: {}. Received file of type '{mime}'.",
                list.join(", ")
            ),
        ));
    };
    let limit = if mime == "image/webp" && animated_webp(&record.bytes) {
        ANIMATED_STICKER_LIMIT
    } else {
        *limit
    };
    if record.size == 0 {
        return Err(upload_error("The file is empty.".into()));
    }
    if record.size as u64 > limit {
        return Err(upload_error(format!(
            "The file is {} bytes; files of type {mime} can be at most {limit} bytes.",
            record.size
        )));
    }
    Ok(rand::thread_rng()
        .gen_range(1_000_000_000_000_000u64..10_000_000_000_000_000)
        .to_string())
}
