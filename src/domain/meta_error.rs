//! WhatsApp Cloud API errors and what the dispatcher does about each. No I/O.
//!
//! Meta's codes, titles and advice are from the Cloud API "Error codes" page:
//! <https://developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes>
//! (formerly <https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes>).
//! Meta recommends building error handling on `code` and `error_data.details`,
//! not on titles, which is what [`MetaError::class`] does.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

/// What to do with a message whose send failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Throughput limit of the business number or app: slow the whole
    /// channel down, then retry.
    RetryChannel,
    /// Pair rate limit (131056): too many messages to this one recipient;
    /// delay only that recipient's messages, then retry.
    RetryRecipient,
    /// Transient failure (Meta-side errors, 5xx, timeouts): retry with backoff.
    Retry,
    /// Meta declined a MARKETING message to keep the user's engagement healthy (131049):
    /// retry hours later, on the marketing schedule
    /// ([`super::retry::marketing_retry_delay`]), not the usual backoff.
    MarketingLimit,
    /// Retrying cannot help: fail the message now, keeping Meta's code and text.
    Permanent,
    /// The channel itself cannot send (token, permissions, account locked or
    /// unpaid): stop the channel and alert the operator; keep messages queued.
    /// Does not consume the message's attempts.
    ChannelHalt,
}

impl ErrorClass {
    /// A stable lowercase name for logs, metrics and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::RetryChannel => "retry_channel",
            ErrorClass::RetryRecipient => "retry_recipient",
            ErrorClass::Retry => "retry",
            ErrorClass::MarketingLimit => "marketing_limit",
            ErrorClass::Permanent => "permanent",
            ErrorClass::ChannelHalt => "channel_halt",
        }
    }

    /// The message should be tried again later (after a delay from
    /// [`super::retry::RetryPolicy::next_delay`]).
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorClass::RetryChannel
                | ErrorClass::RetryRecipient
                | ErrorClass::Retry
                | ErrorClass::MarketingLimit
        )
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Code of a request that timed out before Meta answered. Negative because
/// every Meta code is >= 0 (0 is Meta's AuthException).
pub const CODE_TIMEOUT: i64 = -1;
/// Code of a request that never reached Meta (DNS, connect, TLS, reset).
pub const CODE_CONNECTION: i64 = -2;
/// Code of an HTTP error response whose body is not Meta's error JSON (a
/// proxy's HTML page, an empty body…). Classified by HTTP status.
pub const CODE_UNKNOWN: i64 = -3;
/// Code of a MARKETING message not sent because its number joined the account's suppression
/// list after the send was accepted (plantilla's own, never Meta's).
pub const CODE_OPTED_OUT: i64 = -4;

use ErrorClass::{ChannelHalt, MarketingLimit, Permanent, Retry, RetryChannel, RetryRecipient};

/// Meta declined a marketing message to keep the user's engagement healthy.
pub const CODE_MARKETING_LIMIT: i64 = 131049;
/// The user stopped marketing messages from this business.
pub const CODE_MARKETING_OPTED_OUT: i64 = 131050;

/// Meta's codes (and plantilla's transport sentinels), each with what to do
/// and Meta's title. Meta documents 200-299 as one range: the row for 200
/// stands for all of it (see [`lookup`]).
pub static CLASSES: &[(i64, ErrorClass, &str)] = &[
    // --- plantilla's transport sentinels (not Meta codes) ---
    (CODE_TIMEOUT, Retry, "Request to WhatsApp timed out"),
    (CODE_CONNECTION, Retry, "Could not connect to WhatsApp"),
    // --- Throttling ---
    (4, RetryChannel, "API Too Many Calls"),
    (80007, RetryChannel, "Rate limit issues"),
    (130429, RetryChannel, "Rate limit hit"),
    // Restrictions on how many messages this number may send, after earlier
    // messages were blocked or reported as spam. A rate limit of the whole
    // number that lifts by itself: slow the channel rather than halt it.
    (131048, RetryChannel, "Spam rate limit hit"),
    // The account is in maintenance mode, e.g. during a throughput upgrade:
    // the whole number is briefly unavailable.
    (131057, RetryChannel, "Account in maintenance mode"),
    (
        131056,
        RetryRecipient,
        "(Business Account, Consumer Account) pair rate limit hit",
    ),
    // --- Transient ---
    (1, Retry, "API Unknown"),
    (2, Retry, "API Service"),
    (131000, Retry, "Something went wrong"),
    (131016, Retry, "Service unavailable"),
    (133004, Retry, "Server temporarily unavailable"),
    // --- Permanent: this message cannot be sent as it is ---
    (100, Permanent, "Invalid parameter"),
    (
        470,
        Permanent,
        "Re-engagement message (On-Premises API code)",
    ),
    (130472, Permanent, "User's number is part of an experiment"),
    (
        130497,
        Permanent,
        "Business account is restricted from messaging users in this country",
    ),
    (131008, Permanent, "Required parameter is missing"),
    (131009, Permanent, "Parameter value is not valid"),
    (131021, Permanent, "Recipient cannot be sender"),
    (131026, Permanent, "Message undeliverable"),
    (
        131030,
        Permanent,
        "Recipient phone number not in allowed list",
    ),
    (131045, Permanent, "Incorrect certificate"),
    (131047, Permanent, "Re-engagement message"),
    // "This message was not delivered to maintain healthy ecosystem
    // engagement": the recipient's per-user marketing limit. Meta advises not
    // retrying soon: retried hours later on the marketing schedule, a
    // configured number of times, then failed.
    (
        131049,
        MarketingLimit,
        "Message not delivered to maintain healthy ecosystem engagement",
    ),
    (
        131050,
        Permanent,
        "Recipient has chosen to stop receiving marketing messages from this business",
    ),
    (131051, Permanent, "Unsupported message type"),
    (131052, Permanent, "Media download error"),
    (131053, Permanent, "Media upload error"),
    (132000, Permanent, "Template Param Count Mismatch"),
    (132001, Permanent, "Template does not exist"),
    (132005, Permanent, "Template Hydrated Text Too Long"),
    (
        132007,
        Permanent,
        "Template Format Character Policy Violated",
    ),
    (132012, Permanent, "Template Parameter Format Mismatch"),
    (132015, Permanent, "Template is Paused"),
    (132016, Permanent, "Template is Disabled"),
    (132068, Permanent, "Flow is blocked"),
    (132069, Permanent, "Flow is throttled"),
    (133010, Permanent, "Phone number Not Registered"),
    (135000, Permanent, "Generic user error"),
    // --- The channel cannot send: halt it, alert, keep messages queued ---
    (0, ChannelHalt, "AuthException"),
    (
        3,
        ChannelHalt,
        "API Method (capability or permissions issue)",
    ),
    (10, ChannelHalt, "Permission Denied"),
    (
        33,
        ChannelHalt,
        "Parameter value is not valid (the business phone number has been deleted)",
    ),
    (190, ChannelHalt, "Access token has expired"),
    (200, ChannelHalt, "API Permission"),
    (
        368,
        ChannelHalt,
        "Temporarily blocked for policies violations",
    ),
    (131005, ChannelHalt, "Access denied"),
    (131031, ChannelHalt, "Account has been locked"),
    (
        131037,
        ChannelHalt,
        "WhatsApp provided number needs display name approval before message can be sent",
    ),
    (131042, ChannelHalt, "Business eligibility payment issue"),
];

/// The class and Meta's title of a code, when the code is known. Codes
/// 200-299 ("API Permission") share the row of 200.
pub fn lookup(code: i64) -> Option<(ErrorClass, &'static str)> {
    let key = if (200..=299).contains(&code) {
        200
    } else {
        code
    };
    CLASSES
        .iter()
        .find(|(c, _, _)| *c == key)
        .map(|(_, class, title)| (*class, *title))
}

/// An error from the WhatsApp Cloud API (a send's response or a failed
/// status webhook) or from the transport to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaError {
    /// Meta's `code`, or one of [`CODE_TIMEOUT`], [`CODE_CONNECTION`],
    /// [`CODE_UNKNOWN`].
    pub code: i64,
    /// A short title: Meta's `error_user_title` or webhook `title`, else the
    /// title Meta puts in `message` after `(#code)`, else the table's.
    pub title: String,
    /// Meta's `message`, as sent.
    pub message: String,
    /// Meta's `error_data.details`: the most specific explanation.
    pub details: Option<String>,
    /// The HTTP status of the send's response; `None` for webhooks and
    /// transport failures.
    pub http_status: Option<u16>,
    /// The response's `Retry-After`, when it was a number of seconds.
    pub retry_after: Option<Duration>,
    /// Meta's `error_subcode`.
    pub subcode: Option<i64>,
    /// Meta's `fbtrace_id`, to quote to Meta's support.
    pub fbtrace_id: Option<String>,
}

impl MetaError {
    fn bare(code: i64, title: String, message: String) -> MetaError {
        MetaError {
            code,
            title,
            message,
            details: None,
            http_status: None,
            retry_after: None,
            subcode: None,
            fbtrace_id: None,
        }
    }

    /// Reads a failed send's response:
    /// `{"error":{"message","type","code","error_subcode","error_data":{"details"},"error_user_title","fbtrace_id"}}`.
    /// A body that is not that (not JSON, no `error.code`) gives an error with
    /// code [`CODE_UNKNOWN`], classified by `http_status`.
    /// `retry_after_header` is honoured when it is a number of seconds (the
    /// HTTP-date form is ignored: Meta sends seconds when it sends one at all).
    pub fn from_response(
        http_status: u16,
        body: &[u8],
        retry_after_header: Option<&str>,
    ) -> MetaError {
        let parsed = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.get("error").cloned())
            .and_then(|e| MetaError::from_error_object(&e, "error_user_title"));
        let mut error = parsed.unwrap_or_else(|| {
            let snippet: String = String::from_utf8_lossy(body)
                .trim()
                .chars()
                .take(300)
                .collect();
            let title = format!("HTTP {http_status} {}", reason_phrase(http_status))
                .trim_end()
                .to_string();
            let message = if snippet.is_empty() {
                title.clone()
            } else {
                snippet
            };
            MetaError::bare(CODE_UNKNOWN, title, message)
        });
        error.http_status = Some(http_status);
        error.retry_after = retry_after_header.and_then(parse_retry_after);
        error
    }

    /// Reads one entry of a status webhook's `errors`:
    /// `{"code":131026,"title":"Message undeliverable","message":..,"error_data":{"details":..}}`.
    /// Anything without a numeric `code` gives code [`CODE_UNKNOWN`] with the
    /// JSON as message.
    pub fn from_status_error(value: &Value) -> MetaError {
        MetaError::from_error_object(value, "title").unwrap_or_else(|| {
            MetaError::bare(CODE_UNKNOWN, "Unknown error".to_string(), value.to_string())
        })
    }

    /// Shared reader for Meta's error objects; `title_key` is where the title
    /// lives (`error_user_title` in responses, `title` in webhooks).
    fn from_error_object(value: &Value, title_key: &str) -> Option<MetaError> {
        let code = as_i64(value.get("code")?)?;
        let text = |key: &str| {
            value
                .get(key)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let message = text("message").unwrap_or_default();
        let title = text(title_key)
            .or_else(|| title_from_message(&message))
            .or_else(|| lookup(code).map(|(_, t)| t.to_string()))
            .unwrap_or_else(|| format!("Error {code}"));
        let details = value
            .get("error_data")
            .and_then(|d| d.get("details"))
            .and_then(Value::as_str)
            .map(str::to_string);
        Some(MetaError {
            code,
            title,
            message,
            details,
            http_status: None,
            retry_after: None,
            subcode: value.get("error_subcode").and_then(as_i64),
            fbtrace_id: text("fbtrace_id"),
        })
    }

    /// A request that got no answer in time. Class [`ErrorClass::Retry`].
    pub fn timeout() -> MetaError {
        MetaError::bare(
            CODE_TIMEOUT,
            "Request to WhatsApp timed out".to_string(),
            "The request to the WhatsApp Cloud API timed out before a response arrived".to_string(),
        )
    }

    /// A request that did not reach Meta (`msg` says why). Class
    /// [`ErrorClass::Retry`].
    pub fn connection(msg: impl Into<String>) -> MetaError {
        MetaError::bare(
            CODE_CONNECTION,
            "Could not connect to WhatsApp".to_string(),
            msg.into(),
        )
    }

    /// What to do about this error: the class of its code in the table;
    /// otherwise by HTTP status: 5xx and 429 are [`ErrorClass::Retry`], other
    /// 4xx [`ErrorClass::Permanent`], any other status `Retry`. An unknown
    /// code without a status (a failed status webhook) is `Permanent`.
    pub fn class(&self) -> ErrorClass {
        if let Some((class, _)) = lookup(self.code) {
            return class;
        }
        match self.http_status {
            Some(429) => Retry,
            Some(s) if (500..600).contains(&s) => Retry,
            Some(s) if (400..500).contains(&s) => Permanent,
            Some(_) => Retry,
            None => Permanent,
        }
    }

    /// The text to keep on a failed message: Meta's details when given,
    /// else its message, else the title.
    pub fn description(&self) -> &str {
        self.details
            .as_deref()
            .filter(|d| !d.is_empty())
            .or(Some(self.message.as_str()).filter(|m| !m.is_empty()))
            .unwrap_or(&self.title)
    }
}

impl fmt::Display for MetaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(#{}) {}", self.code, self.title)?;
        let description = self.description();
        if description != self.title {
            write!(f, ": {description}")?;
        }
        Ok(())
    }
}

impl std::error::Error for MetaError {}

/// Meta puts the title in `message` as `(#131026) Message Undeliverable.`.
fn title_from_message(message: &str) -> Option<String> {
    let rest = message.strip_prefix("(#")?;
    let (_, title) = rest.split_once(')')?;
    let title = title.trim().trim_end_matches('.').trim();
    (!title.is_empty()).then(|| title.to_string())
}

fn as_i64(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `Retry-After: <delta-seconds>`. The HTTP-date form gives `None`.
fn parse_retry_after(header: &str) -> Option<Duration> {
    header.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeSet;

    #[test]
    fn table_has_no_duplicate_codes() {
        let mut seen = BTreeSet::new();
        for (code, _, title) in CLASSES {
            assert!(seen.insert(*code), "duplicate code {code}");
            assert!(!title.is_empty(), "code {code} has no title");
        }
    }

    #[test]
    fn classifies_the_contracts_codes() {
        for code in [130429, 80007, 4] {
            assert_eq!(lookup(code).unwrap().0, RetryChannel, "{code}");
        }
        assert_eq!(lookup(131056).unwrap().0, RetryRecipient);
        assert_eq!(lookup(131049).unwrap().0, MarketingLimit);
        assert!(MarketingLimit.is_retryable());
        for code in [131000, 131016, 1, 2, 133004] {
            assert_eq!(lookup(code).unwrap().0, Retry, "{code}");
        }
        for code in [
            131026, 131047, 131051, 132000, 132001, 132005, 132007, 132012, 132015, 132016, 100,
            131008, 131009, 131021, 131052, 131053, 132068, 132069, 470, 131045, 133010, 131050,
        ] {
            assert_eq!(lookup(code).unwrap().0, Permanent, "{code}");
        }
        for code in [190, 131031, 131042, 368, 10, 3, 0, 200, 250, 299] {
            assert_eq!(lookup(code).unwrap().0, ChannelHalt, "{code}");
        }
        assert_eq!(lookup(300), None);
        assert_eq!(lookup(999_999), None);
    }

    #[test]
    fn parses_a_graph_api_error_response() {
        let body = br#"{"error":{"message":"(#131026) Message Undeliverable.","type":"OAuthException","code":131026,"error_subcode":2494010,"error_data":{"messaging_product":"whatsapp","details":"Recipient is not a WhatsApp user"},"fbtrace_id":"AbC123"}}"#;
        let e = MetaError::from_response(400, body, None);
        assert_eq!(e.code, 131026);
        assert_eq!(e.title, "Message Undeliverable");
        assert_eq!(e.message, "(#131026) Message Undeliverable.");
        assert_eq!(
            e.details.as_deref(),
            Some("Recipient is not a WhatsApp user")
        );
        assert_eq!(e.http_status, Some(400));
        assert_eq!(e.subcode, Some(2494010));
        assert_eq!(e.fbtrace_id.as_deref(), Some("AbC123"));
        assert_eq!(e.retry_after, None);
        assert_eq!(e.class(), Permanent);
        assert_eq!(e.description(), "Recipient is not a WhatsApp user");
        assert_eq!(
            e.to_string(),
            "(#131026) Message Undeliverable: Recipient is not a WhatsApp user"
        );
    }

    #[test]
    fn prefers_error_user_title_and_reads_retry_after() {
        let body = json!({"error": {
            "message": "(#130429) Rate limit hit",
            "type": "OAuthException",
            "code": 130429,
            "error_user_title": "Throughput reached",
        }})
        .to_string();
        let e = MetaError::from_response(400, body.as_bytes(), Some(" 30 "));
        assert_eq!(e.title, "Throughput reached");
        assert_eq!(e.retry_after, Some(Duration::from_secs(30)));
        assert_eq!(e.class(), RetryChannel);

        let e =
            MetaError::from_response(429, body.as_bytes(), Some("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(e.retry_after, None);
    }

    #[test]
    fn falls_back_to_the_tables_title() {
        let e = MetaError::from_response(400, br#"{"error":{"code":131056,"message":""}}"#, None);
        assert_eq!(
            e.title,
            "(Business Account, Consumer Account) pair rate limit hit"
        );
        assert_eq!(e.class(), RetryRecipient);
        let e = MetaError::from_response(400, br#"{"error":{"code":777}}"#, None);
        assert_eq!(e.title, "Error 777");
    }

    #[test]
    fn non_json_bodies_become_synthetic_errors_classified_by_status() {
        let e = MetaError::from_response(502, b"<html>Bad Gateway</html>", None);
        assert_eq!(e.code, CODE_UNKNOWN);
        assert_eq!(e.http_status, Some(502));
        assert_eq!(e.title, "HTTP 502 Bad Gateway");
        assert_eq!(e.message, "<html>Bad Gateway</html>");
        assert_eq!(e.class(), Retry);

        let e = MetaError::from_response(503, b"", Some("5"));
        assert_eq!(e.message, "HTTP 503 Service Unavailable");
        assert_eq!(e.retry_after, Some(Duration::from_secs(5)));
        assert_eq!(e.class(), Retry);

        // JSON, but not Meta's error shape.
        let e = MetaError::from_response(404, br#"{"detail":"nope"}"#, None);
        assert_eq!(e.code, CODE_UNKNOWN);
        assert_eq!(e.class(), Permanent);

        let e = MetaError::from_response(429, b"slow down", None);
        assert_eq!(e.class(), Retry);
    }

    #[test]
    fn unknown_codes_are_classified_by_status() {
        let body = |code: i64| json!({"error": {"code": code, "message": "x"}}).to_string();
        assert_eq!(
            MetaError::from_response(500, body(999).as_bytes(), None).class(),
            Retry
        );
        assert_eq!(
            MetaError::from_response(503, body(999).as_bytes(), None).class(),
            Retry
        );
        assert_eq!(
            MetaError::from_response(429, body(999).as_bytes(), None).class(),
            Retry
        );
        assert_eq!(
            MetaError::from_response(400, body(999).as_bytes(), None).class(),
            Permanent
        );
        assert_eq!(
            MetaError::from_response(403, body(999).as_bytes(), None).class(),
            Permanent
        );
        // The table wins over the status.
        assert_eq!(
            MetaError::from_response(500, body(131026).as_bytes(), None).class(),
            Permanent
        );
        assert_eq!(
            MetaError::from_response(400, body(131000).as_bytes(), None).class(),
            Retry
        );
        assert_eq!(
            MetaError::from_response(401, body(190).as_bytes(), None).class(),
            ChannelHalt
        );
    }

    #[test]
    fn parses_status_webhook_errors() {
        let e = MetaError::from_status_error(&json!({
            "code": 131026,
            "title": "Message undeliverable",
            "message": "Message undeliverable",
            "error_data": {"details": "Message Undeliverable."},
            "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"
        }));
        assert_eq!(e.code, 131026);
        assert_eq!(e.title, "Message undeliverable");
        assert_eq!(e.details.as_deref(), Some("Message Undeliverable."));
        assert_eq!(e.http_status, None);
        assert_eq!(e.class(), Permanent);

        let e = MetaError::from_status_error(&json!({"code": 131049, "title": "x"}));
        assert_eq!(e.class(), MarketingLimit);
        let e =
            MetaError::from_status_error(&json!({"code": 131000, "title": "Something went wrong"}));
        assert_eq!(e.class(), Retry);

        // Unknown code, no HTTP status: the message already failed at Meta.
        let e = MetaError::from_status_error(&json!({"code": 123456, "title": "New thing"}));
        assert_eq!(e.class(), Permanent);

        let e = MetaError::from_status_error(&json!("garbage"));
        assert_eq!(e.code, CODE_UNKNOWN);
        assert_eq!(e.message, "\"garbage\"");
        let e = MetaError::from_status_error(&json!({"code": "131047"}));
        assert_eq!(e.code, 131047);
        assert_eq!(e.title, "Re-engagement message");
    }

    #[test]
    fn transport_failures_are_retryable() {
        let t = MetaError::timeout();
        assert_eq!(t.code, CODE_TIMEOUT);
        assert_eq!(t.class(), Retry);
        assert_eq!(t.http_status, None);
        let c = MetaError::connection("connection refused");
        assert_eq!(c.code, CODE_CONNECTION);
        assert_eq!(c.message, "connection refused");
        assert_eq!(c.class(), Retry);
        assert!(c.to_string().contains("connection refused"));
    }

    #[test]
    fn class_names_and_retryability() {
        assert_eq!(RetryChannel.as_str(), "retry_channel");
        assert_eq!(ChannelHalt.to_string(), "channel_halt");
        assert!(
            Retry.is_retryable() && RetryChannel.is_retryable() && RetryRecipient.is_retryable()
        );
        assert!(!Permanent.is_retryable() && !ChannelHalt.is_retryable());
    }
}
