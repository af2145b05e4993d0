//! RFC 9457 problem documents, the errors of the native and admin APIs: `type` is stable
//! (`/problems/<slug>`), `detail` says exactly what is wrong, `errors` names failing fields.
//! A handler returns `Result<_, Problem>`; the problem is the response.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{error_id, typed_json};
use crate::api::problem::ProblemDocument;
use crate::service::access::AccessError;
use crate::service::input::FieldError;

#[derive(Debug)]
pub struct Problem {
    status: StatusCode,
    /// Boxed: a `Result<_, Problem>` stays small.
    body: Box<ProblemDocument>,
    /// `Retry-After` seconds (429).
    retry_after: Option<u64>,
}

impl Problem {
    pub fn new(
        status: StatusCode,
        slug: impl Into<Cow<'static, str>>,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        let slug: Cow<'static, str> = slug.into();
        Problem {
            status,
            body: Box::new(ProblemDocument {
                problem_type: format!("/problems/{slug}"),
                title: title.to_string(),
                status: status.as_u16(),
                detail: detail.into(),
                ..ProblemDocument::default()
            }),
            retry_after: None,
        }
    }

    pub(crate) fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// The problem with the type-specific members `set` fills in (`conversationId`,
    /// `missing`…).
    pub(crate) fn with(mut self, set: impl FnOnce(&mut ProblemDocument)) -> Self {
        set(&mut self.body);
        self
    }

    /// The problem naming `errors`.
    pub(crate) fn errors(mut self, errors: Vec<FieldError>) -> Self {
        self.body.errors = errors;
        self
    }

    /// 400 `validation`, naming each failing field.
    pub(crate) fn validation(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        Problem::new(
            StatusCode::BAD_REQUEST,
            "validation",
            "Invalid request",
            detail,
        )
        .errors(errors)
    }

    pub(crate) fn field(field: &str, message: impl Into<String>) -> Self {
        Problem::validation(vec![FieldError::new(field, message)])
    }

    pub(crate) fn not_found(kind: &str, id: &str) -> Self {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            format!("no {kind} with id '{id}'"),
        )
    }

    pub(crate) fn idempotency_key_reused() -> Self {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "Idempotency key reused",
            "this Idempotency-Key was used with a different request; use a new key for a new request",
        )
    }

    /// 500, logged (with `what` failed) under an id the answer gives.
    pub(crate) fn internal_logged(e: &anyhow::Error, what: &str) -> Self {
        let id = error_id();
        tracing::error!(error_id = %id, error = format!("{e:#}"), "{what}");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal Server Error",
            format!("something went wrong; the log has the cause under {id}"),
        )
        .with(|p| p.error_id = Some(id))
    }

    pub(crate) fn internal(e: &anyhow::Error) -> Self {
        Problem::internal_logged(e, "native API request failed")
    }

    /// The problem document.
    pub fn body(&self) -> &ProblemDocument {
        &self.body
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut r = typed_json(self.status, &self.body);
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        r
    }
}

impl From<anyhow::Error> for Problem {
    fn from(e: anyhow::Error) -> Self {
        Problem::internal(&e)
    }
}

impl From<crate::store::StoreError> for Problem {
    fn from(e: crate::store::StoreError) -> Self {
        Problem::internal(&e.into())
    }
}

impl From<FieldError> for Problem {
    fn from(e: FieldError) -> Self {
        Problem::validation(vec![e])
    }
}

impl From<AccessError> for Problem {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::Invalid(e) => e.into(),
            AccessError::Store(e) => e.into(),
        }
    }
}
