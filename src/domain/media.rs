//! The media WhatsApp accepts: MIME types and size limits, checked before a file is sent to
//! Meta. No I/O.
//!
//! From Meta's "Supported media types" (Cloud API reference, Media):
//! <https://developers.facebook.com/docs/whatsapp/cloud-api/reference/media#supported-media-types>
//! audio 16 MB (AAC, AMR, MP3, MP4 audio, OGG with the OPUS codec); documents 100 MB (plain
//! text, PDF, Word, Excel, PowerPoint); images 5 MB (JPEG, PNG); stickers (WebP) 100 KB static
//! and 500 KB animated; video 16 MB (MP4, 3GPP). Sizes are read as binary units (1 MB =
//! 1,048,576 bytes).

use std::fmt;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;

/// What WhatsApp does with a file: the kind of message (or template header) it can go in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Audio,
    Document,
    Image,
    Sticker,
    Video,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Document => "document",
            MediaKind::Image => "image",
            MediaKind::Sticker => "sticker",
            MediaKind::Video => "video",
        }
    }

    /// The largest file of this kind Meta takes (an animated sticker's, for stickers).
    pub fn max_size(self) -> u64 {
        match self {
            MediaKind::Audio | MediaKind::Video => 16 * MIB,
            MediaKind::Document => 100 * MIB,
            MediaKind::Image => 5 * MIB,
            MediaKind::Sticker => STICKER_ANIMATED_MAX,
        }
    }
}

impl fmt::Display for MediaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Largest static sticker.
pub const STICKER_STATIC_MAX: u64 = 100 * KIB;
/// Largest animated sticker.
pub const STICKER_ANIMATED_MAX: u64 = 500 * KIB;

/// One MIME type WhatsApp accepts, its kind and the file name extensions it goes by.
#[derive(Debug, PartialEq, Eq)]
pub struct MediaType {
    pub mime: &'static str,
    pub kind: MediaKind,
    pub extensions: &'static [&'static str],
}

const fn t(mime: &'static str, kind: MediaKind, extensions: &'static [&'static str]) -> MediaType {
    MediaType {
        mime,
        kind,
        extensions,
    }
}

/// Every MIME type Meta's Cloud API accepts for upload.
pub static SUPPORTED: &[MediaType] = &[
    t("audio/aac", MediaKind::Audio, &["aac"]),
    t("audio/amr", MediaKind::Audio, &["amr"]),
    t("audio/mpeg", MediaKind::Audio, &["mp3"]),
    t("audio/mp4", MediaKind::Audio, &["m4a"]),
    t("audio/ogg", MediaKind::Audio, &["ogg", "opus"]),
    t("text/plain", MediaKind::Document, &["txt"]),
    t("application/pdf", MediaKind::Document, &["pdf"]),
    t("application/msword", MediaKind::Document, &["doc"]),
    t(
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        MediaKind::Document,
        &["docx"],
    ),
    t("application/vnd.ms-excel", MediaKind::Document, &["xls"]),
    t(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        MediaKind::Document,
        &["xlsx"],
    ),
    t(
        "application/vnd.ms-powerpoint",
        MediaKind::Document,
        &["ppt"],
    ),
    t(
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        MediaKind::Document,
        &["pptx"],
    ),
    t("image/jpeg", MediaKind::Image, &["jpg", "jpeg"]),
    t("image/png", MediaKind::Image, &["png"]),
    t("image/webp", MediaKind::Sticker, &["webp"]),
    t("video/mp4", MediaKind::Video, &["mp4"]),
    t("video/3gpp", MediaKind::Video, &["3gp"]),
];

/// The MIME types accepted, in the table's order.
pub fn accepted() -> Vec<&'static str> {
    SUPPORTED.iter().map(|m| m.mime).collect()
}

/// The bare type of a `Content-Type` value: lowercase, parameters (`; charset=…`) dropped.
pub fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The supported type of a `Content-Type` value, if it is one.
pub fn lookup(content_type: &str) -> Option<&'static MediaType> {
    let mime = essence(content_type);
    SUPPORTED.iter().find(|m| m.mime == mime)
}

/// The supported type a file name's extension stands for, if any.
pub fn from_filename(name: &str) -> Option<&'static MediaType> {
    let (_, ext) = name.rsplit_once('.')?;
    let ext = ext.to_ascii_lowercase();
    SUPPORTED
        .iter()
        .find(|m| m.extensions.contains(&ext.as_str()))
}

/// The type of an uploaded file: its declared `Content-Type`, or, when that says nothing
/// (absent, or `application/octet-stream` as clients send for unknown files), the type of its
/// file name's extension. `Err` carries the type to name in the refusal.
pub fn resolve(
    content_type: Option<&str>,
    filename: Option<&str>,
) -> Result<&'static MediaType, MediaRefusal> {
    let declared = content_type.map(essence).filter(|m| !m.is_empty());
    let vague = declared
        .as_deref()
        .is_none_or(|m| m == "application/octet-stream");
    if vague && let Some(m) = filename.and_then(from_filename) {
        return Ok(m);
    }
    match declared {
        Some(mime) => lookup(&mime).ok_or(MediaRefusal::Unsupported { mime }),
        None => Err(MediaRefusal::Unsupported {
            mime: String::new(),
        }),
    }
}

/// Whether a WebP file is animated: an extended (`VP8X`) header with the animation flag.
pub fn webp_is_animated(bytes: &[u8]) -> bool {
    bytes.len() > 20
        && &bytes[0..4] == b"RIFF"
        && &bytes[8..12] == b"WEBP"
        && &bytes[12..16] == b"VP8X"
        && bytes[20] & 0x02 != 0
}

/// The largest size Meta takes for a file of this type with these first bytes (a WebP
/// sticker's limit depends on whether it is animated).
pub fn size_limit(media: &MediaType, head: &[u8]) -> u64 {
    match media.kind {
        MediaKind::Sticker if !webp_is_animated(head) => STICKER_STATIC_MAX,
        kind => kind.max_size(),
    }
}

/// Why a file cannot go to WhatsApp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaRefusal {
    /// Not a type WhatsApp accepts (`mime` is empty when the file declared none).
    Unsupported { mime: String },
    /// Larger than its type's limit.
    TooLarge {
        mime: &'static str,
        kind: MediaKind,
        /// Whether the limit is an animated sticker's.
        animated: bool,
        size: u64,
        limit: u64,
    },
}

/// Checks a whole file of a known type against its limit.
pub fn check_size(media: &'static MediaType, bytes: &[u8]) -> Result<(), MediaRefusal> {
    let limit = size_limit(media, bytes);
    let size = bytes.len() as u64;
    if size > limit {
        return Err(MediaRefusal::TooLarge {
            mime: media.mime,
            kind: media.kind,
            animated: media.kind == MediaKind::Sticker && webp_is_animated(bytes),
            size,
            limit,
        });
    }
    Ok(())
}

/// A size for people: `5 MB`, `100 KB`, `1234 bytes` (binary units, as Meta's table).
pub fn human_size(bytes: u64) -> String {
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

impl fmt::Display for MediaRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MediaRefusal::Unsupported { mime } if mime.is_empty() => write!(
                f,
                "the file has no media type; send its MIME type as the part's Content-Type (curl: -F 'file=@invoice.pdf;type=application/pdf'); accepted: {}",
                accepted().join(", ")
            ),
            MediaRefusal::Unsupported { mime } if mime == "application/octet-stream" => write!(
                f,
                "'{mime}' says nothing of the file and its name has no known extension; send its MIME type as the part's Content-Type (curl: -F 'file=@invoice.pdf;type=application/pdf'); accepted: {}",
                accepted().join(", ")
            ),
            MediaRefusal::Unsupported { mime } => write!(
                f,
                "'{mime}' is not a media type WhatsApp accepts; accepted: {}",
                accepted().join(", ")
            ),
            MediaRefusal::TooLarge {
                mime,
                kind,
                animated,
                size,
                limit,
            } => {
                let what = match (kind, animated) {
                    (MediaKind::Sticker, true) => "animated stickers".to_string(),
                    (MediaKind::Sticker, false) => "static stickers".to_string(),
                    (kind, _) => format!("{kind} files"),
                };
                write!(
                    f,
                    "the file is {size} bytes; WhatsApp takes {what} ({mime}) up to {} ({limit} bytes)",
                    human_size(*limit)
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_read_from_content_type_or_file_name() {
        assert_eq!(
            resolve(Some("application/PDF; name=x"), None).unwrap().mime,
            "application/pdf"
        );
        assert_eq!(
            resolve(Some("application/octet-stream"), Some("Invoice.PDF"))
                .unwrap()
                .mime,
            "application/pdf"
        );
        assert_eq!(resolve(None, Some("a.3gp")).unwrap().kind, MediaKind::Video);
        // A declared type wins over the extension.
        assert_eq!(
            resolve(Some("image/gif"), Some("a.png")),
            Err(MediaRefusal::Unsupported {
                mime: "image/gif".into()
            })
        );
        assert_eq!(
            resolve(None, Some("notes")),
            Err(MediaRefusal::Unsupported {
                mime: String::new()
            })
        );
        assert!(resolve(Some("application/octet-stream"), None).is_err());
    }

    #[test]
    fn limits_follow_meta() {
        let image = lookup("image/png").unwrap();
        assert!(check_size(image, &vec![0; 5 * 1024 * 1024]).is_ok());
        let err = check_size(image, &vec![0; 5 * 1024 * 1024 + 1]).unwrap_err();
        assert!(err.to_string().contains("up to 5 MB"), "{err}");
        let doc = lookup("application/pdf").unwrap();
        assert_eq!(size_limit(doc, b""), 100 * 1024 * 1024);
        assert_eq!(
            size_limit(lookup("audio/ogg").unwrap(), b""),
            16 * 1024 * 1024
        );
        assert_eq!(
            size_limit(lookup("video/3gpp").unwrap(), b""),
            16 * 1024 * 1024
        );
    }

    #[test]
    fn animated_stickers_get_the_larger_limit() {
        let webp = lookup("image/webp").unwrap();
        let mut animated = b"RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0\x02".to_vec();
        animated.resize(200 * 1024, 0);
        assert!(webp_is_animated(&animated));
        assert!(check_size(webp, &animated).is_ok());
        let mut still = animated.clone();
        still[20] = 0;
        let err = check_size(webp, &still).unwrap_err();
        assert!(
            err.to_string().contains("static stickers") && err.to_string().contains("100 KB"),
            "{err}"
        );
    }

    #[test]
    fn refusals_list_what_is_accepted() {
        let text = MediaRefusal::Unsupported {
            mime: "image/gif".into(),
        }
        .to_string();
        assert!(text.contains("'image/gif'") && text.contains("application/pdf"));
        assert_eq!(human_size(100 * 1024), "100 KB");
        assert_eq!(human_size(1000), "1000 bytes");
    }
}
