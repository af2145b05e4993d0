//! What the operator console reads and keeps that no API does: its sessions and the
//! overview's aggregates (the statements are in `sql::templates`).

use serde::Serialize;

/// A signed-in console session. The cookie's token is never stored, only its hash.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    pub token_hash: String,
    /// `None`: signed in with the admin token (every account).
    pub account_id: Option<String>,
    /// The hash of the API key signed in with; the session ends when the key is revoked.
    pub key_hash: Option<String>,
    /// Sent back as `X-CSRF-Token` with every request that changes something.
    pub csrf_token: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// The delivery funnel of an account's messages queued in a window: how many were accepted
/// and how many reached each status (a read message was also sent and delivered).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Funnel {
    pub accepted: i64,
    pub sent: i64,
    pub delivered: i64,
    pub read: i64,
    pub failed: i64,
}
