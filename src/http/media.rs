//! `POST /v1/media` (native API): uploads a file through a channel and answers the media id
//! a send can use as a template header's `id`. The body is `multipart/form-data` with a
//! `file` part (its `Content-Type` is the file's MIME type) and, with an account API key,
//! `channelId` (a text part or a query parameter).
//!
//! The file's type and size are checked against WhatsApp's limits while it is read, before
//! anything reaches Meta: 415 `unsupported-media-type`, 413 `media-too-large`.

use std::collections::HashMap;

use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::{Multipart, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use bytes::BytesMut;

use super::caller::Caller;
use super::idempotency::{CheckedKey, IdempotencyHeader};
use super::openapi::NATIVE;
use super::problem::Problem;
use super::typed_json;
use crate::api::events::{Media, MediaUpload};
use crate::app::App;
use crate::domain::media::{self, MediaRefusal};
use crate::provider::MediaFile;
use crate::service::media::{self as service, UploadError};
use crate::store::ProviderError;

/// Longest `channelId` read from a part (ids are far shorter).
const MAX_CHANNEL_ID: usize = 200;
/// Bytes of a file's start kept to tell its kind (WebP's animation flag is byte 20).
const HEAD: usize = 32;
/// Longest file name kept; longer ones are cut (Meta shows at most 240 characters).
const MAX_FILENAME: usize = 240;

/// The query of `POST /v1/media`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
struct MediaQuery {
    /// The channel: required with an account API key (here or as a `channelId` part); with a channel token, omit it or give that channel.
    #[param(min_length = 1)]
    channel_id: Option<String>,
}

/// Each upload makes a new media id, harmless to repeat: a key is checked, not stored.
#[utoipa::path(
    post,
    path = "/v1/media",
    operation_id = "uploadMedia",
    tag = NATIVE,
    summary = "Upload a media file",
    description = "Uploads a file through a channel and answers its media id, to use as a template header's media (`header.id`). The body is `multipart/form-data` with the file in a part named `file`, its MIME type as the part's `Content-Type` (`curl -F 'file=@invoice.pdf;type=application/pdf'`; a part sent as `application/octet-stream` or without a type is typed by its file name's extension). WhatsApp's types and limits are checked while the file is read, before anything reaches Meta: audio 16 MB (`audio/aac`, `audio/amr`, `audio/mpeg`, `audio/mp4`, `audio/ogg` with OPUS), documents 100 MB (`text/plain`, `application/pdf`, Word, Excel and PowerPoint), images 5 MB (`image/jpeg`, `image/png`), stickers (`image/webp`) 100 KB or 500 KB animated, video 16 MB (`video/mp4`, `video/3gpp`). Cloud channels upload to Meta (`POST /{phone-number-id}/media`); Meta keeps the file 30 days. Sandbox channels answer a simulated id (`sandbox-media-…`). The body may be up to `PLANTILLA_MAX_MEDIA_BYTES` (100 MiB and the envelope). Each upload makes a new id (an Idempotency-Key is checked, not stored).",
    params(MediaQuery, CheckedKey),
    request_body(
        description = "The file, and with an API key the channel.",
        // The types WhatsApp accepts, the only ones the server takes (a 415 otherwise).
        content((MediaUpload = "multipart/form-data", encoding(("file" = (content_type = media::accepted().join(", ")))))),
    ),
    responses(
        (status = 201, description = "Uploaded: the media id, its type and size.", body = Media),
        (status = 400, description = "No `file` part (or a multipart body that cannot be read, or an empty file), channelId is missing or wrong, or the Idempotency-Key is wrong.", extensions(("x-problems" = json!(["validation", "idempotency-key-invalid"])))),
        (status = 409, description = "The channel is not connected.", extensions(("x-problems" = json!(["channel-not-connected"])))),
        (status = 413, description = "The file is larger than WhatsApp takes for its type (`limit`), or the body is larger than `PLANTILLA_MAX_MEDIA_BYTES`.", extensions(("x-problems" = json!(["media-too-large", "payload-too-large"])))),
        (status = 415, description = "The body is not `multipart/form-data` (`contentType` is its type), or the file's type is not one WhatsApp takes; `accepted` lists those it does.", extensions(("x-problems" = json!(["unsupported-media-type"])))),
        (status = 502, description = "Meta's Graph API refused or failed the upload; `providerError` is its error.", extensions(("x-problems" = json!(["upstream"])))),
    ),
)]
pub(crate) async fn upload(
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
    caller: Caller,
    _key: IdempotencyHeader,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, Problem> {
    let q = MediaQuery {
        channel_id: q.get("channelId").cloned(),
    };
    let mut multipart = multipart.map_err(|_| {
        Problem::field(
            "file",
            "is required: send the body as multipart/form-data with the file in a part named 'file'",
        )
    })?;
    let form = read_form(&mut multipart).await?;
    let channel_id = match (q.channel_id, form.channel_id) {
        (Some(a), Some(b)) if a != b.as_str() => {
            return Err(Problem::field(
                "channelId",
                "is given twice (query and form) with different values",
            ));
        }
        (Some(a), _) => Some(a),
        (None, b) => b.map(String::from),
    };
    let channel = caller.channel(&app, channel_id.as_deref()).await?;
    let file = form.file.ok_or_else(|| {
        Problem::field(
            "file",
            "is required: a part named 'file' with the file, its MIME type as the part's Content-Type",
        )
    })?;
    let id = service::upload(&app, &channel, &file)
        .await
        .map_err(upload_problem)?;
    let media = Media {
        id,
        size: file.bytes.len() as u64,
        mime_type: file.mime_type,
        channel_id: channel.id.into(),
    };
    Ok(typed_json(StatusCode::CREATED, &media))
}

fn bad_multipart(e: &MultipartError) -> Problem {
    Problem::field(
        "file",
        format!(
            "the multipart/form-data body cannot be read: {}",
            e.body_text()
        ),
    )
}

/// Reads the parts: `file` (checked as it arrives: its type first, then its size) and
/// `channelId`; other parts are skipped.
async fn read_form(multipart: &mut Multipart) -> Result<MediaUpload, Problem> {
    let mut form = MediaUpload {
        file: None,
        channel_id: None,
    };
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| bad_multipart(&e))?
    {
        match field.name() {
            Some("file") => {
                if form.file.is_some() {
                    return Err(Problem::field(
                        "file",
                        "is given twice; upload one file per request",
                    ));
                }
                let filename = field
                    .file_name()
                    .map(clean_filename)
                    .filter(|n| !n.is_empty());
                let media_type = media::resolve(field.content_type(), filename.as_deref())
                    .map_err(refusal_problem)?;
                // Read up to the largest size of the type; past it, only count.
                let cap = media_type.kind.max_size();
                let mut bytes = BytesMut::new();
                // The first bytes, kept even past the cap (an animated sticker says so there).
                let mut head = Vec::with_capacity(HEAD);
                let mut size: u64 = 0;
                while let Some(chunk) = field.chunk().await.map_err(|e| bad_multipart(&e))? {
                    if head.len() < HEAD {
                        let take = (HEAD - head.len()).min(chunk.len());
                        head.extend_from_slice(&chunk[..take]);
                    }
                    size += chunk.len() as u64;
                    if size <= cap {
                        bytes.extend_from_slice(&chunk);
                    }
                }
                if size > cap {
                    let limit = media::size_limit(media_type, &head);
                    return Err(refusal_problem(MediaRefusal::TooLarge {
                        mime: media_type.mime,
                        kind: media_type.kind,
                        animated: limit == media::STICKER_ANIMATED_MAX
                            && media_type.kind == media::MediaKind::Sticker,
                        size,
                        limit,
                    }));
                }
                if size == 0 {
                    return Err(Problem::field("file", "is empty"));
                }
                media::check_size(media_type, &bytes).map_err(refusal_problem)?;
                form.file = Some(MediaFile {
                    bytes: bytes.freeze(),
                    mime_type: media_type.mime.to_string(),
                    filename,
                });
            }
            Some("channelId") => {
                let text = field.text().await.map_err(|e| bad_multipart(&e))?;
                let text = text.trim();
                if text.is_empty() || text.len() > MAX_CHANNEL_ID {
                    return Err(Problem::field("channelId", "must be a channel id"));
                }
                form.channel_id = Some(text.into());
            }
            _ => {}
        }
    }
    Ok(form)
}

/// A file name as given, without any directory part or control characters, at most
/// [`MAX_FILENAME`] characters.
fn clean_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    base.chars()
        .filter(|c| !c.is_control())
        .take(MAX_FILENAME)
        .collect::<String>()
        .trim()
        .to_string()
}

fn refusal_problem(r: MediaRefusal) -> Problem {
    let detail = r.to_string();
    match r {
        MediaRefusal::Unsupported { mime } => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            detail,
        )
        .with(|p| {
            p.mime_type = Some((!mime.is_empty()).then(|| mime.to_string()));
            p.accepted = Some(media::accepted().iter().map(|t| t.to_string()).collect());
        }),
        MediaRefusal::TooLarge {
            mime,
            kind,
            size,
            limit,
            ..
        } => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "media-too-large",
            "Media too large",
            detail,
        )
        .with(|p| {
            p.mime_type = Some(Some(mime.to_string()));
            p.media_kind = Some(kind.as_str().to_string());
            p.size = Some(size);
            p.limit = Some(limit);
        }),
    }
}

fn upload_problem(e: UploadError) -> Problem {
    match e {
        UploadError::Refused(r) => refusal_problem(r),
        UploadError::ChannelNotConnected(status) => Problem::new(
            StatusCode::CONFLICT,
            "channel-not-connected",
            "Channel not connected",
            format!("the channel is {status}; ask the operator to connect it"),
        )
        .with(|p| p.channel_status = Some(status)),
        UploadError::Provider(e) => Problem::new(
            StatusCode::BAD_GATEWAY,
            "upstream",
            "The provider refused",
            format!(
                "the Graph API answered {} ({}): {}",
                e.code,
                e.title,
                e.description()
            ),
        )
        .with(|p| {
            p.provider_error = Some(ProviderError {
                code: e.code,
                title: e.title,
                details: e.details,
            })
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_lose_directories_and_control_characters() {
        assert_eq!(clean_filename("C:\\docs\\invoice.pdf"), "invoice.pdf");
        assert_eq!(clean_filename("../../etc/passwd"), "passwd");
        assert_eq!(clean_filename("a\r\nb.pdf"), "ab.pdf");
        assert_eq!(clean_filename(&"x".repeat(300)).len(), MAX_FILENAME);
    }
}
