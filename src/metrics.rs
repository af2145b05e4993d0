//! The in-process metrics registry (`prometheus-client`), rendered in Prometheus' text format
//! (0.0.4) by `GET /metrics`.
//!
//! Counters and histograms live here, updated where things happen (the HTTP layer, the send
//! service, the dispatcher, the webhook service). Gauges about stored data (messages by status,
//! queue depth, channel health) are read from the store at scrape time by
//! `service::ops::render_metrics`. Labels are route templates, status codes, error codes and
//! channel ids: never a token, a secret or a phone number.
//!
//! The registry appends `_total` to counter names and a `.` to help texts: names and help are
//! registered without them.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::RwLock;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Buckets (seconds) of the send-accept latency: a commit on a local disk is milliseconds.
const LATENCY_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets (seconds) of the webhook lag: Meta reports statuses with second precision and
/// delivers them seconds to minutes later.
const LAG_BUCKETS: [f64; 12] = [
    0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// What became of a send request, for `plantilla_sends_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendResult {
    /// Queued on a new pending conversation.
    Pending,
    /// Queued on an open conversation.
    Sent,
    /// The number had a pending conversation: nothing queued.
    AlreadyPending,
    /// The plan's conversations are used up.
    LimitReached,
    /// Refused for the request's own reason (template, params, group, channel).
    Rejected,
    /// Failed on our side.
    Error,
}

impl SendResult {
    const ALL: [Self; 6] = [
        Self::Pending,
        Self::Sent,
        Self::AlreadyPending,
        Self::LimitReached,
        Self::Rejected,
        Self::Error,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::AlreadyPending => "already_pending",
            Self::LimitReached => "limit_reached",
            Self::Rejected => "rejected",
            Self::Error => "error",
        }
    }
}

impl EncodeLabelValue for SendResult {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        self.as_str().encode(encoder)
    }
}

/// Borrowed for the known routes and methods, so counting a request copies no text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    route: Cow<'static, str>,
    method: Cow<'static, str>,
    status: u16,
}

/// Route templates kept as `&'static str` at most: the router's routes are far fewer (past
/// this, a route label is copied per request as before).
const MAX_ROUTES: usize = 1_000;

/// The route templates seen, each kept once for the life of the process.
#[derive(Debug, Default)]
struct Routes(RwLock<HashSet<&'static str>>);

impl Routes {
    fn label(&self, route: &str) -> Cow<'static, str> {
        if let Some(kept) = self.0.read().expect("routes lock").get(route) {
            return Cow::Borrowed(kept);
        }
        let mut routes = self.0.write().expect("routes lock");
        if let Some(kept) = routes.get(route) {
            return Cow::Borrowed(kept);
        }
        if routes.len() >= MAX_ROUTES {
            return Cow::Owned(route.to_string());
        }
        let kept: &'static str = Box::leak(route.into());
        routes.insert(kept);
        Cow::Borrowed(kept)
    }
}

/// A method's label: the standard ones without a copy.
fn method_label(method: &str) -> Cow<'static, str> {
    const METHODS: [&str; 9] = [
        "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE",
    ];
    match METHODS.iter().find(|m| **m == method) {
        Some(m) => Cow::Borrowed(m),
        None => Cow::Owned(method.to_string()),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SendLabels {
    result: SendResult,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CodeLabels {
    code: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CallbackLabels {
    result: &'static str,
}

/// Status callback attempts to integrators: delivered, retried, failed (given up).
const CALLBACK_RESULTS: [&str; 3] = ["delivered", "retry", "failed"];

/// The route label of a request that matched no route: raw paths would be unbounded (and
/// may hold ids).
pub const UNMATCHED_ROUTE: &str = "unmatched";

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    http_requests: Family<RequestLabels, Counter>,
    routes: Routes,
    http_duration: Histogram,
    send_latency: Histogram,
    sends: Family<SendLabels, Counter>,
    /// Meta's error code → provider errors seen by the dispatcher.
    provider_errors: Family<CodeLabels, Counter>,
    webhook_lag: Histogram,
    rate_limited: Counter,
    callbacks: Family<CallbackLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut m = Self {
            registry: Registry::default(),
            http_requests: Family::default(),
            routes: Routes::default(),
            http_duration: Histogram::new(LATENCY_BUCKETS),
            send_latency: Histogram::new(LATENCY_BUCKETS),
            sends: Family::default(),
            provider_errors: Family::default(),
            webhook_lag: Histogram::new(LAG_BUCKETS),
            rate_limited: Counter::default(),
            callbacks: Family::default(),
        };
        // Results a dashboard compares are shown from the start, at 0.
        for result in SendResult::ALL {
            let _ = m.sends.get_or_create(&SendLabels { result });
        }
        for result in CALLBACK_RESULTS {
            let _ = m.callbacks.get_or_create(&CallbackLabels { result });
        }
        m.registry.register(
            "plantilla_http_requests",
            "HTTP requests answered, by route template, method and status",
            m.http_requests.clone(),
        );
        m.registry.register(
            "plantilla_http_request_duration_seconds",
            "Time to answer an HTTP request",
            m.http_duration.clone(),
        );
        m.registry.register(
            "plantilla_send_accept_duration_seconds",
            "Time to decide a send (stored and committed when accepted)",
            m.send_latency.clone(),
        );
        m.registry.register(
            "plantilla_sends",
            "Send requests decided, by result",
            m.sends.clone(),
        );
        m.registry.register(
            "plantilla_rate_limited",
            "Template and native API requests refused with 429 by the per-token rate limit",
            m.rate_limited.clone(),
        );
        m.registry.register(
            "plantilla_provider_errors",
            "Errors answered by providers to send calls, by Meta error code (negative: transport)",
            m.provider_errors.clone(),
        );
        m.registry.register(
            "plantilla_webhook_lag_seconds",
            "Time from a provider status's timestamp to its being applied",
            m.webhook_lag.clone(),
        );
        m.registry.register(
            "plantilla_callback_deliveries",
            "Status callback attempts to integrators, by result (retry: will be tried again)",
            m.callbacks.clone(),
        );
        m
    }
}

impl Metrics {
    /// A request answered: `route` is the route template (`/templates/{id}`), never the raw
    /// path.
    pub fn http_request(&self, route: &str, method: &str, status: u16, took: Duration) {
        self.http_requests
            .get_or_create(&RequestLabels {
                route: self.routes.label(route),
                method: method_label(method),
                status,
            })
            .inc();
        self.http_duration.observe(took.as_secs_f64());
    }

    /// A send decided (accepted or not) in `took`.
    pub fn send(&self, result: SendResult, took: Duration) {
        self.sends.get_or_create(&SendLabels { result }).inc();
        self.send_latency.observe(took.as_secs_f64());
    }

    pub fn provider_error(&self, code: i64) {
        self.provider_errors
            .get_or_create(&CodeLabels { code })
            .inc();
    }

    /// A provider status applied `lag_ms` after the provider stamped it (a negative lag, from
    /// a clock ahead of ours, counts as 0).
    pub fn webhook_lag(&self, lag_ms: i64) {
        self.webhook_lag.observe(lag_ms.max(0) as f64 / 1000.0);
    }

    /// A status callback attempt ended: `result` is `delivered`, `retry` or `failed`.
    pub fn callback(&self, result: &str) {
        let result = CALLBACK_RESULTS
            .into_iter()
            .find(|r| *r == result)
            .unwrap_or("retry");
        self.callbacks
            .get_or_create(&CallbackLabels { result })
            .inc();
    }

    pub fn rate_limited(&self) {
        self.rate_limited.inc();
    }

    /// The counters and histograms, in Prometheus' text format.
    pub fn render(&self, out: &mut String) {
        encode(out, &self.registry);
    }
}

/// Appends `registry` to `out` in Prometheus' text format (0.0.4: no `# EOF`, so several
/// registries make one document).
pub fn encode(out: &mut String, registry: &Registry) {
    prometheus_client::encoding::prometheus_text::encode(out, registry)
        .expect("writing to a String cannot fail");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_render_with_their_prometheus_names_help_and_zeros() {
        let m = Metrics::default();
        m.http_request("/templates/{id}", "GET", 404, Duration::from_millis(1));
        m.http_request("/templates/{id}", "GET", 404, Duration::from_millis(1));
        m.http_request("/a\"b", "GET", 200, Duration::from_millis(1));
        m.send(SendResult::AlreadyPending, Duration::from_millis(5));
        m.provider_error(131026);
        m.webhook_lag(-5);
        m.webhook_lag(3_105);
        m.callback("something else");
        let mut out = String::new();
        m.render(&mut out);
        for line in [
            "# HELP plantilla_http_requests_total HTTP requests answered, by route template, method and status.\n",
            "# TYPE plantilla_http_requests_total counter\n",
            "plantilla_http_requests_total{route=\"/templates/{id}\",method=\"GET\",status=\"404\"} 2\n",
            "plantilla_http_requests_total{route=\"/a\\\"b\",method=\"GET\",status=\"200\"} 1\n",
            "# TYPE plantilla_http_request_duration_seconds histogram\n",
            "plantilla_http_request_duration_seconds_count 3\n",
            "plantilla_send_accept_duration_seconds_bucket{le=\"0.0025\"} 0\n",
            "plantilla_send_accept_duration_seconds_bucket{le=\"0.005\"} 1\n",
            "plantilla_send_accept_duration_seconds_bucket{le=\"10\"} 1\n",
            "plantilla_send_accept_duration_seconds_count 1\n",
            "plantilla_sends_total{result=\"already_pending\"} 1\n",
            "plantilla_sends_total{result=\"limit_reached\"} 0\n",
            "plantilla_rate_limited_total 0\n",
            "plantilla_provider_errors_total{code=\"131026\"} 1\n",
            "plantilla_webhook_lag_seconds_bucket{le=\"0.5\"} 1\n",
            "plantilla_webhook_lag_seconds_bucket{le=\"5\"} 2\n",
            "plantilla_webhook_lag_seconds_sum 3.105\n",
            "plantilla_callback_deliveries_total{result=\"delivered\"} 0\n",
            "plantilla_callback_deliveries_total{result=\"retry\"} 1\n",
            "plantilla_callback_deliveries_total{result=\"failed\"} 0\n",
        ] {
            assert!(out.contains(line), "{line:?} not in\n{out}");
        }
        assert!(
            !out.contains(".."),
            "help registered with its own '.': {out}"
        );
        assert!(!out.contains("# EOF"), "the OpenMetrics encoder: {out}");
    }

    #[test]
    fn route_and_method_labels_are_kept_or_copied_alike() {
        let m = Metrics::default();
        let route = String::from("/templates/{id}");
        m.http_request(&route, "GET", 200, Duration::from_millis(1));
        m.http_request("/templates/{id}", "GET", 200, Duration::from_millis(1));
        m.http_request("/templates/{id}", "PURGE", 200, Duration::from_millis(1));
        m.http_request(UNMATCHED_ROUTE, "get", 404, Duration::from_millis(1));
        // Past the kept routes, labels are copied and count as the same series.
        for i in 0..MAX_ROUTES {
            m.routes.label(&format!("/r{i}"));
        }
        m.http_request("/templates/{id}", "GET", 200, Duration::from_millis(1));
        m.http_request("/late", "GET", 200, Duration::from_millis(1));
        m.http_request("/late", "GET", 200, Duration::from_millis(1));
        assert!(matches!(m.routes.label("/late"), Cow::Owned(_)));
        assert!(matches!(
            m.routes.label("/templates/{id}"),
            Cow::Borrowed(_)
        ));
        let mut out = String::new();
        m.render(&mut out);
        for line in [
            "plantilla_http_requests_total{route=\"/templates/{id}\",method=\"GET\",status=\"200\"} 3\n",
            "plantilla_http_requests_total{route=\"/templates/{id}\",method=\"PURGE\",status=\"200\"} 1\n",
            "plantilla_http_requests_total{route=\"unmatched\",method=\"get\",status=\"404\"} 1\n",
            "plantilla_http_requests_total{route=\"/late\",method=\"GET\",status=\"200\"} 2\n",
            "plantilla_http_request_duration_seconds_count 7\n",
        ] {
            assert!(out.contains(line), "{line:?} not in\n{out}");
        }
    }
}
