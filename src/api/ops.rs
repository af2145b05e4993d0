//! The operations endpoints' answers (`/healthz`, `/readyz`): operators' probes read them.

use serde::Serialize;
use utoipa::ToSchema;

/// `/healthz`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Health {
    #[schema(inline)]
    pub status: Alive,
}

// `"ok"`: the process answers (no doc: it would describe the field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Alive {
    Ok,
}

/// `/readyz`'s answer: each check, and the names of those not `ok`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Readiness {
    #[schema(inline)]
    pub status: Ready,
    #[schema(inline)]
    pub checks: ReadinessChecks,
    /// The checks that are not `ok`, in the order of `checks`.
    pub not_ready: Vec<String>,
}

// Whether every check is `ok` (no doc: it would describe the field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub enum Ready {
    #[serde(rename = "ready")]
    Ready,
    #[serde(rename = "not ready")]
    NotReady,
}

/// Each check: `ok`, or why not (`unreachable`, `timed out`, `not applied`, `not running`, `in progress`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadinessChecks {
    /// The database answers within 2 s (`ok`, `unreachable`, `timed out`).
    pub database: String,
    /// Every migration this binary embeds is applied (`ok`, `not applied`, `unknown`).
    pub migrations: String,
    /// The dispatcher loop runs (`ok`, `not running`).
    pub dispatcher: String,
    /// Present while a shutdown is under way (`in progress`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub shutdown: Option<String>,
}

impl Readiness {
    /// The answer for these checks: ready when every one is `ok`.
    pub fn of(checks: ReadinessChecks) -> Self {
        let not_ready: Vec<String> = [
            ("database", Some(&checks.database)),
            ("migrations", Some(&checks.migrations)),
            ("dispatcher", Some(&checks.dispatcher)),
            ("shutdown", checks.shutdown.as_ref()),
        ]
        .into_iter()
        .filter_map(|(name, state)| state.filter(|s| *s != "ok").map(|_| name.to_string()))
        .collect();
        let status = if not_ready.is_empty() {
            Ready::Ready
        } else {
            Ready::NotReady
        };
        Readiness {
            status,
            checks,
            not_ready,
        }
    }

    pub fn ready(&self) -> bool {
        self.status == Ready::Ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_names_each_check_not_ok_and_serializes_as_before() {
        let checks = |dispatcher: &str, shutdown: Option<&str>| ReadinessChecks {
            database: "ok".into(),
            migrations: "ok".into(),
            dispatcher: dispatcher.into(),
            shutdown: shutdown.map(Into::into),
        };
        let ready = Readiness::of(checks("ok", None));
        assert!(ready.ready());
        assert_eq!(
            serde_json::to_value(&ready).unwrap(),
            serde_json::json!({"status": "ready", "notReady": [],
                "checks": {"database": "ok", "migrations": "ok", "dispatcher": "ok"}})
        );
        let stopping = Readiness::of(checks("not running", Some("in progress")));
        assert!(!stopping.ready());
        assert_eq!(
            serde_json::to_value(&stopping).unwrap(),
            serde_json::json!({"status": "not ready", "notReady": ["dispatcher", "shutdown"],
                "checks": {"database": "ok", "migrations": "ok", "dispatcher": "not running",
                           "shutdown": "in progress"}})
        );
    }
}
