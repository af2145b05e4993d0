//! The in-process metrics registry, rendered in Prometheus' text format by `GET /metrics`.
//!
//! Counters and histograms live here, updated where things happen (the HTTP layer, the send
//! service, the dispatcher, the webhook service). Gauges about stored data (messages by status,
//! queue depth, channel health) are read from the store at scrape time by
//! `service::ops::render_metrics`. Labels are route templates, status codes, error codes and
//! channel ids: never a token, a secret or a phone number.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Buckets (seconds) of the send-accept latency: a commit on a local disk is milliseconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets (seconds) of the webhook lag: Meta reports statuses with second precision and
/// delivers them seconds to minutes later.
const LAG_BUCKETS: &[f64] = &[
    0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// A histogram with fixed buckets; cumulative counts are computed when rendered.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One count per bound (observations `<=` it and above the previous one), then `+Inf`.
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: Duration) {
        let secs = value.as_secs_f64();
        let slot = self
            .bounds
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(
            u64::try_from(value.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        header(out, name, help, "histogram");
        let mut cumulative = 0;
        for (i, bound) in self.bounds.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.counts[self.bounds.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {}", self.count.load(Ordering::Relaxed));
    }
}

/// What became of a send request, for `plantilla_sends_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
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

#[derive(Debug)]
pub struct Metrics {
    /// (route template, method, status) → requests answered.
    http_requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    http_duration: Histogram,
    send_latency: Histogram,
    sends: Mutex<BTreeMap<SendResult, u64>>,
    /// Meta's error code → provider errors seen by the dispatcher.
    provider_errors: Mutex<BTreeMap<i64, u64>>,
    webhook_lag: Histogram,
    rate_limited: AtomicU64,
    /// Status callback attempts to integrators: delivered, retried, failed (given up).
    callbacks: [AtomicU64; 3],
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            http_requests: Mutex::new(BTreeMap::new()),
            http_duration: Histogram::new(LATENCY_BUCKETS),
            send_latency: Histogram::new(LATENCY_BUCKETS),
            sends: Mutex::new(BTreeMap::new()),
            provider_errors: Mutex::new(BTreeMap::new()),
            webhook_lag: Histogram::new(LAG_BUCKETS),
            rate_limited: AtomicU64::new(0),
            callbacks: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
        }
    }
}

const CALLBACK_RESULTS: [&str; 3] = ["delivered", "retry", "failed"];

/// The route label of a request that matched no route: raw paths would be unbounded (and
/// may hold ids).
pub const UNMATCHED_ROUTE: &str = "unmatched";

impl Metrics {
    /// A request answered: `route` is the route template (`/templates/{id}`), never the raw
    /// path.
    pub fn http_request(&self, route: &str, method: &str, status: u16, took: Duration) {
        let mut map = self.http_requests.lock().expect("metrics lock");
        *map.entry((route.to_string(), method.to_string(), status))
            .or_insert(0) += 1;
        drop(map);
        self.http_duration.observe(took);
    }

    /// A send decided (accepted or not) in `took`.
    pub fn send(&self, result: SendResult, took: Duration) {
        *self
            .sends
            .lock()
            .expect("metrics lock")
            .entry(result)
            .or_insert(0) += 1;
        self.send_latency.observe(took);
    }

    pub fn provider_error(&self, code: i64) {
        *self
            .provider_errors
            .lock()
            .expect("metrics lock")
            .entry(code)
            .or_insert(0) += 1;
    }

    /// A provider status applied `lag_ms` after the provider stamped it.
    pub fn webhook_lag(&self, lag_ms: i64) {
        let ms = u64::try_from(lag_ms).unwrap_or(0);
        self.webhook_lag.observe(Duration::from_millis(ms));
    }

    /// A status callback attempt ended: `result` is `delivered`, `retry` or `failed`.
    pub fn callback(&self, result: &str) {
        let i = CALLBACK_RESULTS
            .iter()
            .position(|r| *r == result)
            .unwrap_or(1);
        self.callbacks[i].fetch_add(1, Ordering::Relaxed);
    }

    pub fn rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters and histograms, in Prometheus' text format.
    pub fn render(&self, out: &mut String) {
        header(
            out,
            "plantilla_http_requests_total",
            "HTTP requests answered, by route template, method and status.",
            "counter",
        );
        for ((route, method, status), n) in self.http_requests.lock().expect("metrics lock").iter()
        {
            let _ = writeln!(
                out,
                "plantilla_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                escape(route),
                escape(method)
            );
        }
        self.http_duration.render(
            out,
            "plantilla_http_request_duration_seconds",
            "Time to answer an HTTP request.",
        );
        self.send_latency.render(
            out,
            "plantilla_send_accept_duration_seconds",
            "Time to decide a send (stored and committed when accepted).",
        );
        header(
            out,
            "plantilla_sends_total",
            "Send requests decided, by result.",
            "counter",
        );
        let sends = self.sends.lock().expect("metrics lock");
        for result in [
            SendResult::Pending,
            SendResult::Sent,
            SendResult::AlreadyPending,
            SendResult::LimitReached,
            SendResult::Rejected,
            SendResult::Error,
        ] {
            let n = sends.get(&result).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "plantilla_sends_total{{result=\"{}\"}} {n}",
                result.as_str()
            );
        }
        drop(sends);
        header(
            out,
            "plantilla_rate_limited_total",
            "Template and native API requests refused with 429 by the per-token rate limit.",
            "counter",
        );
        let _ = writeln!(
            out,
            "plantilla_rate_limited_total {}",
            self.rate_limited.load(Ordering::Relaxed)
        );
        header(
            out,
            "plantilla_provider_errors_total",
            "Errors answered by providers to send calls, by Meta error code (negative: transport).",
            "counter",
        );
        for (code, n) in self.provider_errors.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "plantilla_provider_errors_total{{code=\"{code}\"}} {n}"
            );
        }
        self.webhook_lag.render(
            out,
            "plantilla_webhook_lag_seconds",
            "Time from a provider status's timestamp to its being applied.",
        );
        header(
            out,
            "plantilla_callback_deliveries_total",
            "Status callback attempts to integrators, by result (retry: will be tried again).",
            "counter",
        );
        for (i, result) in CALLBACK_RESULTS.iter().enumerate() {
            let n = self.callbacks[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "plantilla_callback_deliveries_total{{result=\"{result}\"}} {n}"
            );
        }
    }
}

/// `# HELP` and `# TYPE` lines of a family.
pub fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value escaped as the text format wants (`\`, `"` and newlines).
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_render_cumulative_buckets() {
        let h = Histogram::new(&[0.01, 0.1]);
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_secs(3));
        let mut out = String::new();
        h.render(&mut out, "x_seconds", "X.");
        assert!(out.contains("# TYPE x_seconds histogram\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"0.01\"} 1\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"0.1\"} 3\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"+Inf\"} 4\n"), "{out}");
        assert!(out.contains("x_seconds_sum 3.105\n"), "{out}");
        assert!(out.contains("x_seconds_count 4\n"), "{out}");
    }

    #[test]
    fn counters_are_labelled_by_route_template() {
        let m = Metrics::default();
        m.http_request("/templates/{id}", "GET", 404, Duration::from_millis(1));
        m.http_request("/templates/{id}", "GET", 404, Duration::from_millis(1));
        m.provider_error(131026);
        m.webhook_lag(-5);
        let mut out = String::new();
        m.render(&mut out);
        assert!(
            out.contains(
                "plantilla_http_requests_total{route=\"/templates/{id}\",method=\"GET\",status=\"404\"} 2\n"
            ),
            "{out}"
        );
        assert!(out.contains("plantilla_provider_errors_total{code=\"131026\"} 1\n"));
        assert!(out.contains("plantilla_webhook_lag_seconds_bucket{le=\"0.5\"} 1\n"));
        assert!(out.contains("plantilla_callback_deliveries_total{result=\"delivered\"} 0\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
