//! Who calls, as extractors: [`Caller`] for the native API (a channel's public token or an
//! account API key, see `service::access`) and [`AdminToken`] for the admin API. Both refuse
//! with a problem document.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::problem::Problem;
use super::{bearer, same_secret};
use crate::app::App;
use crate::service::access::{self, AuthError};

pub use crate::service::access::Caller;

fn unauthorized(detail: &str) -> Problem {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Unauthorized",
        detail,
    )
}

impl FromRequestParts<App> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Problem> {
        let Some(token) = bearer(&parts.headers).filter(|t| !t.is_empty()) else {
            return Err(unauthorized(
                "send a channel's public token or an account API key as 'Authorization: Bearer <token>'",
            ));
        };
        access::authenticate(app, token).await.map_err(|e| match e {
            AuthError::RateLimited(secs) => Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
                format!("too many requests with this token: retry in {secs} s"),
            )
            .retry_after(secs),
            AuthError::Unknown => {
                unauthorized("the token is not a channel token or API key of this server")
            }
            AuthError::Store(e) => e.into(),
        })
    }
}

/// The admin API's caller: the request carries the configured admin token.
pub struct AdminToken;

impl FromRequestParts<App> for AdminToken {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Problem> {
        let expected = app.config.admin_token.as_ref().map(|t| t.expose());
        match (bearer(&parts.headers), expected) {
            (Some(given), Some(expected)) if !given.is_empty() && same_secret(given, expected) => {
                Ok(AdminToken)
            }
            _ => Err(unauthorized(
                "send the admin token as 'Authorization: Bearer <token>'",
            )),
        }
    }
}
