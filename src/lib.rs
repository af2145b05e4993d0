//! plantilla: a self-hosted WhatsApp template gateway.
//!
//! Data flows one way: `http` (adapters) → `service` (use cases) → `store` / `provider`.
//! `domain` holds the pure rules; `workers` are the background tasks (the dispatcher moves
//! queued messages to providers, the callback worker delivers events to integrators).

pub mod api;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod connections;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod provider;
pub mod secrets;
pub mod server;
pub mod service;
pub mod store;
pub mod workers;

/// Milliseconds since the Unix epoch, the unit of every stored time.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Formats a stored time for JSON: RFC 3339 in UTC with milliseconds.
pub fn format_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
