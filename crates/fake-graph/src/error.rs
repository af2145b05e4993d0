//! Graph API error responses as Meta sends them:
//! `{"error":{"message","type":"OAuthException","code","error_subcode","error_data":{"messaging_product":"whatsapp","details"},"fbtrace_id"}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use rand::distributions::Alphanumeric;
use serde_json::{Map, Value, json};

/// One Graph API error: the HTTP status and the fields of the `error` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError {
    /// HTTP status of the response.
    pub status: u16,
    /// Meta's `error.code`.
    pub code: i64,
    /// Meta's `error.error_subcode`.
    pub subcode: Option<i64>,
    /// Meta's `error.message`, e.g. `(#130429) Rate limit hit`.
    pub message: String,
    /// Meta's `error.error_data.details`.
    pub details: Option<String>,
    /// A `Retry-After` header (seconds), when set.
    pub retry_after: Option<u64>,
}

impl GraphError {
    /// An error with an explicit status and message.
    pub fn new(status: u16, code: i64, message: impl Into<String>) -> GraphError {
        GraphError {
            status,
            code,
            subcode: None,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    /// Meta's usual error for `code`: its HTTP status and `(#code) Title`
    /// message (see [`standard`]).
    pub fn meta(code: i64) -> GraphError {
        let (status, message) = standard(code);
        GraphError::new(status, code, message)
    }

    /// Sets `error_data.details`.
    pub fn with_details(mut self, details: impl Into<String>) -> GraphError {
        self.details = Some(details.into());
        self
    }

    /// Sets `error_subcode`.
    pub fn with_subcode(mut self, subcode: i64) -> GraphError {
        self.subcode = Some(subcode);
        self
    }

    /// Overrides the HTTP status.
    pub fn with_status(mut self, status: u16) -> GraphError {
        self.status = status;
        self
    }

    /// The response body.
    pub fn body(&self) -> Value {
        let mut error = Map::new();
        error.insert("message".into(), Value::from(self.message.clone()));
        error.insert("type".into(), Value::from("OAuthException"));
        error.insert("code".into(), Value::from(self.code));
        if let Some(subcode) = self.subcode {
            error.insert("error_subcode".into(), Value::from(subcode));
        }
        if let Some(details) = &self.details {
            error.insert(
                "error_data".into(),
                json!({"messaging_product": "whatsapp", "details": details}),
            );
        }
        error.insert("fbtrace_id".into(), Value::from(fbtrace_id()));
        json!({ "error": Value::Object(error) })
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut response = (status, axum::Json(self.body())).into_response();
        let headers = response.headers_mut();
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.code == 190 {
            let value = format!(
                "OAuth \"Facebook Platform\" \"invalid_token\" \"{}\"",
                self.message.replace('"', "'")
            );
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}

/// The HTTP status and message Meta uses for a code. Titles follow the Cloud
/// API "Error codes" page; the message carries the code as `(#code) Title`.
/// Unknown codes get 400 and `(#code) Error`.
pub fn standard(code: i64) -> (u16, String) {
    let (status, title) = match code {
        0 => (401, "AuthException"),
        1 => (500, "An unknown error occurred"),
        2 => (503, "Service temporarily unavailable"),
        3 => (
            400,
            "Application does not have the capability to make this API call.",
        ),
        4 => (400, "Application request limit reached"),
        10 => (403, "Permission Denied"),
        100 => (400, "Invalid parameter"),
        190 => {
            return (
                401,
                "Invalid OAuth access token - Cannot parse access token".to_string(),
            );
        }
        200 => (403, "Permission error"),
        368 => (400, "Temporarily blocked for policies violations"),
        80007 => (400, "Rate limit issues"),
        130429 => (400, "Rate limit hit"),
        131000 => (500, "Something went wrong"),
        131005 => (403, "Access denied"),
        131008 => (400, "Required parameter is missing"),
        131009 => (400, "Parameter value is not valid"),
        131016 => (503, "Service unavailable"),
        131021 => (400, "Recipient cannot be sender"),
        131026 => (400, "Message undeliverable"),
        131031 => (400, "Business Account locked"),
        131042 => (400, "Business eligibility payment issue"),
        131047 => (400, "Re-engagement message"),
        131048 => (400, "Spam rate limit hit"),
        131049 => (
            400,
            "This message was not delivered to maintain healthy ecosystem engagement.",
        ),
        131050 => (
            400,
            "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business.",
        ),
        131051 => (400, "Unsupported message type"),
        131056 => (
            400,
            "(Business Account, Consumer Account) pair rate limit hit",
        ),
        131057 => (400, "Account in maintenance mode"),
        132000 => (
            400,
            "Number of parameters does not match the expected number of params",
        ),
        132001 => (404, "Template name does not exist in the translation"),
        132005 => (400, "Translated text too long"),
        132007 => (400, "Template Format Character Policy Violated"),
        132012 => (
            400,
            "Parameter format does not match format in the created template",
        ),
        132015 => (400, "Template is Paused"),
        132018 => (
            400,
            "There was an issue with the parameters in your template.",
        ),
        132016 => (400, "Template is disabled"),
        133010 => (400, "Phone number Not registered"),
        _ => (400, "Error"),
    };
    (status, format!("(#{code}) {title}"))
}

/// A random trace id shaped like Meta's `fbtrace_id`.
pub fn fbtrace_id() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(23)
        .map(char::from)
        .collect()
}
