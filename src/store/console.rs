//! What the operator console reads and keeps that no API does: its sessions and the
//! overview's aggregates. The SQL is written once, with PostgreSQL's `$N` placeholders, and
//! run by both backends ([`for_sqlite`] turns them into SQLite's `?N`).

use serde::Serialize;

use super::Batch;

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

/// `$N` placeholders as SQLite writes them (`?N`); the SQL here has no other `$`.
pub(crate) fn for_sqlite(sql: &str) -> String {
    sql.replace('$', "?")
}

pub(crate) const INSERT_SESSION: &str = "INSERT INTO console_sessions
    (token_hash, account_id, key_hash, csrf_token, created_at, expires_at)
    VALUES ($1, $2, $3, $4, $5, $6)";

pub(crate) const DELETE_EXPIRED_SESSIONS: &str =
    "DELETE FROM console_sessions WHERE expires_at <= $1";

/// A live session, and (for an API key's) only while the key is live.
pub(crate) const SESSION: &str = "SELECT s.token_hash, s.account_id, s.key_hash, s.csrf_token,
        s.created_at, s.expires_at
   FROM console_sessions s
  WHERE s.token_hash = $1 AND s.expires_at > $2
    AND (s.key_hash IS NULL OR EXISTS (
         SELECT 1 FROM api_keys k WHERE k.key_hash = s.key_hash AND k.revoked_at IS NULL))";

pub(crate) type SessionRow = (String, Option<String>, Option<String>, String, i64, i64);

impl ConsoleSession {
    pub(crate) fn from_row(
        (token_hash, account_id, key_hash, csrf_token, created_at, expires_at): SessionRow,
    ) -> Self {
        ConsoleSession {
            token_hash,
            account_id,
            key_hash,
            csrf_token,
            created_at,
            expires_at,
        }
    }
}

pub(crate) const DELETE_SESSION: &str = "DELETE FROM console_sessions WHERE token_hash = $1";

pub(crate) const ACCOUNTS: &str =
    "SELECT id, name, conversation_limit, created_at, updated_at, quiet_start, quiet_end
   FROM accounts ORDER BY created_at, id";

pub(crate) type AccountRow = (String, String, i64, i64, i64, Option<i64>, Option<i64>);

pub(crate) fn account_from_row(
    (id, name, conversation_limit, created_at, updated_at, quiet_start, quiet_end): AccountRow,
) -> super::Account {
    super::Account {
        id,
        name,
        conversation_limit,
        created_at,
        updated_at,
        quiet_hours: quiet_start.zip(quiet_end),
    }
}

/// An account's newest batches.
pub(crate) const BATCHES: &str =
    "SELECT id, account_id, channel_id, total, accepted, rejected, created_at, paused
   FROM batches WHERE account_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2";

pub(crate) type BatchRow = (String, String, String, i64, i64, i64, i64, i32);

pub(crate) fn batch_from_row(
    (id, account_id, channel_id, total, accepted, rejected, created_at, paused): BatchRow,
) -> Batch {
    Batch {
        id,
        account_id,
        channel_id,
        total,
        accepted,
        rejected,
        created_at,
        paused: paused != 0,
    }
}

/// Messages queued since `$2`, per bucket of `$3` ms and status: `(bucket start, status, n)`.
pub(crate) const SERIES: &str = "SELECT (queued_at / $3) * $3 AS bucket, status, COUNT(*)
   FROM messages WHERE account_id = $1 AND queued_at >= $2
  GROUP BY (queued_at / $3) * $3, status ORDER BY 1, 2";

pub(crate) type SeriesRow = (i64, String, i64);

pub(crate) const FUNNEL: &str = "SELECT COUNT(*),
        COUNT(CASE WHEN sent_at IS NOT NULL OR delivered_at IS NOT NULL OR read_at IS NOT NULL THEN 1 END),
        COUNT(CASE WHEN delivered_at IS NOT NULL OR read_at IS NOT NULL THEN 1 END),
        COUNT(CASE WHEN read_at IS NOT NULL THEN 1 END),
        COUNT(CASE WHEN status = 'failed' THEN 1 END)
   FROM messages WHERE account_id = $1 AND queued_at >= $2";

pub(crate) type FunnelRow = (i64, i64, i64, i64, i64);

pub(crate) fn funnel_from_row((accepted, sent, delivered, read, failed): FunnelRow) -> Funnel {
    Funnel {
        accepted,
        sent,
        delivered,
        read,
        failed,
    }
}

/// The commonest error codes of messages that failed since `$2`: `(code, a title, n)`.
pub(crate) const FAILURES: &str = "SELECT error_code, MAX(error_title), COUNT(*)
   FROM messages
  WHERE account_id = $1 AND status = 'failed' AND queued_at >= $2 AND error_code IS NOT NULL
  GROUP BY error_code ORDER BY 3 DESC, 1 LIMIT $3";

pub(crate) type FailureRow = (i64, Option<String>, i64);

/// An account's newest callback deliveries, optionally of one endpoint (`''`: messages' own
/// `callbackUrl`) or one message.
pub(crate) const DELIVERIES: &str = "SELECT * FROM callback_outbox
  WHERE account_id = $1
    AND (CAST($2 AS TEXT) IS NULL OR endpoint_id = $2)
    AND (CAST($3 AS TEXT) IS NULL OR message_id = $3)
  ORDER BY seq DESC LIMIT $4";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_sqlites() {
        assert_eq!(
            for_sqlite("a = $1 AND b = $12"),
            "a = ?1 AND b = ?12".to_string()
        );
        for sql in [SESSION, SERIES, FUNNEL, FAILURES, DELIVERIES, BATCHES] {
            assert!(!for_sqlite(sql).contains('$'));
        }
    }
}
