//! Configuration: defaults, then an optional TOML file, then environment variables.
//! Kept by hand rather than on figment or config-rs: the layering is already serde + toml in
//! one short function, and their env providers would not give errors naming the variable
//! (`PLANTILLA_DISPATCH_BATCH must be a whole number, got 'x'`) or keep `DATABASE_URL` unprefixed.
//!
//! Every key has the same name in the file (snake_case) and in the environment
//! (upper case, `PLANTILLA_` prefix, except `DATABASE_URL`).

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

/// A value that must never be printed: its `Debug` shows `[redacted]`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `sqlite://path/to/file.db` (created if missing) or `postgres://user@host:port/db`.
    pub database_url: String,
    /// Most connections in the PostgreSQL pool (per instance). Few: the hot paths write in
    /// groups, so a few connections carry the load, and each connection costs the server
    /// (its start, its caches, every prepared statement planned again after an ANALYZE).
    pub database_max_connections: u32,
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Enables the admin API when set.
    pub admin_token: Option<Secret>,
    /// SQLite `synchronous` pragma: `full` (default, every commit is on disk before the
    /// response) or `normal` (WAL: survives a process crash, may lose the last commits on
    /// power loss).
    pub sqlite_synchronous: String,
    /// Delay between the sandbox provider's simulated statuses (sent, delivered, read).
    pub sandbox_status_delay_ms: u64,
    /// An open conversation with no activity for this long is closed as expired.
    pub conversation_ttl_secs: u64,
    /// Farthest ahead a send may be scheduled (`sendAt`), in days.
    pub schedule_horizon_days: u64,
    /// How long a claimed delivery job is leased to the dispatcher that claimed it.
    pub dispatch_lease_ms: u64,
    /// A job whose lease expired while its message was being sent (a crash mid-call) waits
    /// this long for a status webhook proving the send happened before it is sent again.
    pub reconcile_window_ms: u64,
    /// A status for a message plantilla does not know (yet) is kept this long for its send's
    /// response (a little longer than the reconcile window), then forgotten.
    pub pending_status_ttl_ms: u64,
    /// How long an instance holds the right to send for a channel without renewing it; when
    /// an instance dies its channels move to another after this long.
    pub channel_lease_ms: u64,
    /// Most messages the dispatcher claims for one channel at a time.
    pub dispatch_batch: u32,
    /// Retry policy for retryable provider errors.
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
    pub retry_max_attempts: u32,
    /// When a MARKETING message Meta declined with 131049 (per-user marketing limit) is tried
    /// again: comma-separated delays with a unit (`s`, `m`, `h`, `d`), one per retry, e.g.
    /// `6h,12h,24h`; after the last the message fails. Empty: no retries.
    pub marketing_retry_delays: String,
    /// `tracing` filter, e.g. `info` or `plantilla=debug`.
    pub log: String,
    /// WhatsApp Cloud API (Graph API) base URL and version.
    pub graph_base_url: String,
    pub graph_version: String,
    /// Timeout of one call to the Graph API.
    pub graph_timeout_ms: u64,
    /// App secret and verify token of the Meta app whose webhooks arrive at
    /// `/webhooks/whatsapp` (one app serving many channels).
    pub meta_app_secret: Option<Secret>,
    pub meta_verify_token: Option<Secret>,
    /// The id of that Meta app: templates authored from plantilla upload their media samples
    /// through the app's resumable upload API (`POST /{app-id}/uploads`). Needed only to
    /// submit templates with a media header to cloud channels.
    pub meta_app_id: Option<String>,
    /// A template authored on a sandbox channel is approved this long after its submission
    /// (as Meta's review would, queueing `template.status_changed`).
    pub sandbox_approve_delay_ms: u64,
    /// How often `serve` syncs templates from each cloud channel's WhatsApp Business
    /// Account; 0 turns it off.
    pub template_sync_interval_secs: u64,
    /// Templates asked for per page when syncing.
    pub template_sync_page_size: u32,
    /// How long an `Idempotency-Key` of the native API is remembered.
    pub idempotency_ttl_secs: u64,
    /// Key that encrypts channel secrets at rest: 32 bytes, hex or base64. Unset: secrets are
    /// stored unencrypted (a warning says so at start-up).
    pub encryption_key: Option<Secret>,
    /// Comma-separated keys that still decrypt what they encrypted (key rotation).
    pub encryption_old_keys: Option<Secret>,
    /// Timeout of one status callback delivery (connect and answer).
    pub callback_timeout_ms: u64,
    /// A callback not delivered this long after its event is given up (`failed`).
    pub callback_max_age_secs: u64,
    /// Retry schedule of callbacks: first delay, doubling (equal jitter) up to the longest.
    pub callback_retry_initial_ms: u64,
    pub callback_retry_max_ms: u64,
    /// Most callback deliveries in flight at once (per instance).
    pub callback_concurrency: u32,
    /// Log lines as `text` (human-readable) or `json` (one object per line).
    pub log_format: String,
    /// On SIGTERM, how long in-flight requests and provider calls may take to finish before
    /// the process exits anyway.
    pub shutdown_timeout_ms: u64,
    /// Largest request body accepted on any route; larger ones get 413.
    pub max_body_bytes: u64,
    /// Largest body of a bulk send (`POST /v1/messages/batch`, up to 10,000 recipients).
    pub max_batch_body_bytes: u64,
    /// Largest body of a media upload (`POST /v1/media`): WhatsApp's largest file (100 MB
    /// documents) and the multipart envelope around it.
    pub max_media_bytes: u64,
    /// Longest a request may take, reading its body included; then 408 (body) or 503.
    pub request_timeout_ms: u64,
    /// The same for a bulk send (`POST /v1/messages/batch`): 10,000 recipients are decided
    /// one by one in the database; and for a media upload (`POST /v1/media`), whose file can
    /// be 100 MB.
    pub batch_request_timeout_ms: u64,
    /// Requests per second one token (a channel's public token or an account API key) may
    /// make to the template and native APIs (burst: as many); 0 turns the limit off. Kept in
    /// memory, per instance.
    pub token_rate_per_sec: u64,
    /// When set, `GET /metrics` requires `Authorization: Bearer <metrics_token>`.
    pub metrics_token: Option<Secret>,
    /// A connection that has not sent a whole request head (request line and headers) this
    /// long after it opened, or after the first byte of its next request, is closed.
    pub header_read_timeout_ms: u64,
    /// A kept-alive connection with no request for this long is closed.
    pub idle_timeout_ms: u64,
    /// Most connections open at once; more wait to be accepted until one closes.
    pub max_connections: u64,
    /// Largest request head (request line and headers) answered normally; larger ones get
    /// 431 in the error shape of their API.
    pub max_header_bytes: u64,
    /// The console's session cookie is marked `Secure` (sent over https only) even when a
    /// request does not say it came over https (`X-Forwarded-Proto: https`).
    pub console_secure_cookie: bool,
    /// Estimated prices per message for `GET /v1/usage`, as
    /// `category[:calling code]=amount` pairs separated by commas, e.g.
    /// `marketing:507=0.0740,marketing=0.0625,utility=0.0080` (a calling-code price wins
    /// over the category's default). Unset: usage has counts and no estimate.
    pub prices: Option<String>,
    /// Currency of `prices` (ISO 4217), shown with the estimate.
    pub price_currency: String,
    /// `GET /` redirects to the console (the demo sets it; not configurable).
    #[serde(skip)]
    pub console_at_root: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: "sqlite://plantilla.db".into(),
            database_max_connections: 4,
            listen: "127.0.0.1:8080".parse().expect("static address"),
            admin_token: None,
            sqlite_synchronous: "full".into(),
            sandbox_status_delay_ms: 1000,
            conversation_ttl_secs: 24 * 3600,
            schedule_horizon_days: 35,
            dispatch_lease_ms: 30_000,
            reconcile_window_ms: 120_000,
            pending_status_ttl_ms: 300_000,
            channel_lease_ms: 5_000,
            dispatch_batch: 100,
            retry_initial_ms: 1000,
            retry_max_ms: 600_000,
            retry_max_attempts: 10,
            marketing_retry_delays: "6h,12h,24h".into(),
            log: "info".into(),
            graph_base_url: "https://graph.facebook.com".into(),
            graph_version: "v23.0".into(),
            graph_timeout_ms: 15_000,
            meta_app_secret: None,
            meta_verify_token: None,
            meta_app_id: None,
            sandbox_approve_delay_ms: 2000,
            template_sync_interval_secs: 900,
            template_sync_page_size: 100,
            idempotency_ttl_secs: 24 * 3600,
            encryption_key: None,
            encryption_old_keys: None,
            callback_timeout_ms: 10_000,
            callback_max_age_secs: 24 * 3600,
            callback_retry_initial_ms: 5_000,
            callback_retry_max_ms: 3_600_000,
            callback_concurrency: 16,
            log_format: "text".into(),
            shutdown_timeout_ms: 30_000,
            max_body_bytes: 256 * 1024,
            max_batch_body_bytes: 8 * 1024 * 1024,
            max_media_bytes: DEFAULT_MAX_MEDIA_BYTES,
            request_timeout_ms: 30_000,
            batch_request_timeout_ms: 120_000,
            token_rate_per_sec: 100,
            metrics_token: None,
            header_read_timeout_ms: 10_000,
            idle_timeout_ms: 75_000,
            max_connections: 10_000,
            max_header_bytes: 64 * 1024,
            console_secure_cookie: false,
            prices: None,
            price_currency: "USD".into(),
            console_at_root: false,
        }
    }
}

/// The default `max_media_bytes`: 100 MiB (WhatsApp's largest document) and 64 KiB for the
/// multipart envelope (boundaries, part headers, `channelId`).
pub const DEFAULT_MAX_MEDIA_BYTES: u64 = 100 * 1024 * 1024 + 64 * 1024;

/// Environment variable names, one per key.
const ENV_KEYS: &[(&str, &str)] = &[
    ("DATABASE_URL", "database_url"),
    (
        "PLANTILLA_DATABASE_MAX_CONNECTIONS",
        "database_max_connections",
    ),
    ("PLANTILLA_LISTEN", "listen"),
    ("PLANTILLA_ADMIN_TOKEN", "admin_token"),
    ("PLANTILLA_SQLITE_SYNCHRONOUS", "sqlite_synchronous"),
    (
        "PLANTILLA_SANDBOX_STATUS_DELAY_MS",
        "sandbox_status_delay_ms",
    ),
    ("PLANTILLA_CONVERSATION_TTL_SECS", "conversation_ttl_secs"),
    ("PLANTILLA_SCHEDULE_HORIZON_DAYS", "schedule_horizon_days"),
    ("PLANTILLA_DISPATCH_LEASE_MS", "dispatch_lease_ms"),
    ("PLANTILLA_RECONCILE_WINDOW_MS", "reconcile_window_ms"),
    ("PLANTILLA_PENDING_STATUS_TTL_MS", "pending_status_ttl_ms"),
    ("PLANTILLA_CHANNEL_LEASE_MS", "channel_lease_ms"),
    ("PLANTILLA_DISPATCH_BATCH", "dispatch_batch"),
    ("PLANTILLA_RETRY_INITIAL_MS", "retry_initial_ms"),
    ("PLANTILLA_RETRY_MAX_MS", "retry_max_ms"),
    ("PLANTILLA_RETRY_MAX_ATTEMPTS", "retry_max_attempts"),
    ("PLANTILLA_MARKETING_RETRY_DELAYS", "marketing_retry_delays"),
    ("PLANTILLA_LOG", "log"),
    ("PLANTILLA_GRAPH_BASE_URL", "graph_base_url"),
    ("PLANTILLA_GRAPH_VERSION", "graph_version"),
    ("PLANTILLA_GRAPH_TIMEOUT_MS", "graph_timeout_ms"),
    ("PLANTILLA_META_APP_SECRET", "meta_app_secret"),
    ("PLANTILLA_META_VERIFY_TOKEN", "meta_verify_token"),
    ("PLANTILLA_META_APP_ID", "meta_app_id"),
    (
        "PLANTILLA_SANDBOX_APPROVE_DELAY_MS",
        "sandbox_approve_delay_ms",
    ),
    (
        "PLANTILLA_TEMPLATE_SYNC_INTERVAL_SECS",
        "template_sync_interval_secs",
    ),
    (
        "PLANTILLA_TEMPLATE_SYNC_PAGE_SIZE",
        "template_sync_page_size",
    ),
    ("PLANTILLA_IDEMPOTENCY_TTL_SECS", "idempotency_ttl_secs"),
    ("PLANTILLA_ENCRYPTION_KEY", "encryption_key"),
    ("PLANTILLA_ENCRYPTION_OLD_KEYS", "encryption_old_keys"),
    ("PLANTILLA_CALLBACK_TIMEOUT_MS", "callback_timeout_ms"),
    ("PLANTILLA_CALLBACK_MAX_AGE_SECS", "callback_max_age_secs"),
    (
        "PLANTILLA_CALLBACK_RETRY_INITIAL_MS",
        "callback_retry_initial_ms",
    ),
    ("PLANTILLA_CALLBACK_RETRY_MAX_MS", "callback_retry_max_ms"),
    ("PLANTILLA_CALLBACK_CONCURRENCY", "callback_concurrency"),
    ("PLANTILLA_LOG_FORMAT", "log_format"),
    ("PLANTILLA_SHUTDOWN_TIMEOUT_MS", "shutdown_timeout_ms"),
    ("PLANTILLA_MAX_BODY_BYTES", "max_body_bytes"),
    ("PLANTILLA_MAX_BATCH_BODY_BYTES", "max_batch_body_bytes"),
    ("PLANTILLA_MAX_MEDIA_BYTES", "max_media_bytes"),
    ("PLANTILLA_REQUEST_TIMEOUT_MS", "request_timeout_ms"),
    (
        "PLANTILLA_BATCH_REQUEST_TIMEOUT_MS",
        "batch_request_timeout_ms",
    ),
    ("PLANTILLA_TOKEN_RATE_PER_SEC", "token_rate_per_sec"),
    ("PLANTILLA_METRICS_TOKEN", "metrics_token"),
    ("PLANTILLA_HEADER_READ_TIMEOUT_MS", "header_read_timeout_ms"),
    ("PLANTILLA_IDLE_TIMEOUT_MS", "idle_timeout_ms"),
    ("PLANTILLA_MAX_CONNECTIONS", "max_connections"),
    ("PLANTILLA_MAX_HEADER_BYTES", "max_header_bytes"),
    ("PLANTILLA_CONSOLE_SECURE_COOKIE", "console_secure_cookie"),
    ("PLANTILLA_PRICES", "prices"),
    ("PLANTILLA_PRICE_CURRENCY", "price_currency"),
];

impl Config {
    /// The cipher of `encryption_key` and `encryption_old_keys`, for the secrets at rest.
    pub fn cipher(&self) -> anyhow::Result<crate::secrets::Cipher> {
        crate::secrets::Cipher::from_settings(
            self.encryption_key.as_ref().map(Secret::expose),
            self.encryption_old_keys.as_ref().map(Secret::expose),
        )
    }

    /// `marketing_retry_delays`, parsed (checked when the configuration loads).
    pub fn marketing_retry_schedule(&self) -> Vec<std::time::Duration> {
        crate::domain::retry::parse_delays(&self.marketing_retry_delays).unwrap_or_default()
    }

    /// Loads the configuration: defaults, then `file` (or `PLANTILLA_CONFIG`) if given, then
    /// the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("PLANTILLA_CONFIG").map(Into::into));
        let text = match &file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?,
            ),
            None => None,
        };
        Self::from_sources(text.as_deref(), &env)
    }

    /// Builds a configuration from a TOML text and environment pairs (testable without
    /// touching the process environment).
    pub fn from_sources(file: Option<&str>, env: &[(String, String)]) -> anyhow::Result<Config> {
        let mut table: toml::Table = match file {
            Some(text) => text.parse().context("config file is not valid TOML")?,
            None => toml::Table::new(),
        };
        for (var, key) in ENV_KEYS {
            if let Some((_, value)) = env.iter().find(|(k, _)| k == var) {
                let value = if *key == "console_secure_cookie" {
                    match value.trim() {
                        "true" | "1" => toml::Value::Boolean(true),
                        "false" | "0" => toml::Value::Boolean(false),
                        other => bail!("{var} must be true or false, got '{other}'"),
                    }
                } else if Self::is_number(key) {
                    let n: i64 = value
                        .trim()
                        .parse()
                        .with_context(|| format!("{var} must be a whole number, got '{value}'"))?;
                    toml::Value::Integer(n)
                } else {
                    toml::Value::String(value.clone())
                };
                table.insert((*key).to_string(), value);
            }
        }
        let config: Config = toml::Value::Table(table)
            .try_into()
            .context("invalid configuration")?;
        config.check()?;
        Ok(config)
    }

    fn is_number(key: &str) -> bool {
        key.ends_with("_ms")
            || key.ends_with("_secs")
            || key.ends_with("_attempts")
            || key == "dispatch_batch"
            || key == "template_sync_page_size"
            || key == "database_max_connections"
            || key == "callback_concurrency"
            || key == "max_body_bytes"
            || key == "max_batch_body_bytes"
            || key == "max_media_bytes"
            || key == "token_rate_per_sec"
            || key == "max_connections"
            || key == "max_header_bytes"
    }

    fn check(&self) -> anyhow::Result<()> {
        if !matches!(self.sqlite_synchronous.as_str(), "full" | "normal") {
            bail!(
                "sqlite_synchronous must be 'full' or 'normal', got '{}'",
                self.sqlite_synchronous
            );
        }
        if let Some(token) = &self.admin_token
            && token.expose().len() < 16
        {
            bail!("admin_token must be at least 16 characters long");
        }
        if !(self.graph_base_url.starts_with("http://")
            || self.graph_base_url.starts_with("https://"))
        {
            bail!(
                "graph_base_url must be an http:// or https:// URL, got '{}'",
                self.graph_base_url
            );
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            bail!(
                "log_format must be 'text' or 'json', got '{}'",
                self.log_format
            );
        }
        if self.max_body_bytes == 0 {
            bail!("max_body_bytes must be at least 1");
        }
        if self.request_timeout_ms == 0 {
            bail!("request_timeout_ms must be at least 1");
        }
        if self.batch_request_timeout_ms == 0 {
            bail!("batch_request_timeout_ms must be at least 1");
        }
        if self.header_read_timeout_ms == 0 || self.idle_timeout_ms == 0 {
            bail!("header_read_timeout_ms and idle_timeout_ms must be at least 1");
        }
        if self.max_connections == 0 {
            bail!("max_connections must be at least 1");
        }
        if self.max_header_bytes < 1024 {
            bail!("max_header_bytes must be at least 1024");
        }
        if let Some(token) = &self.metrics_token
            && token.expose().len() < 16
        {
            bail!("metrics_token must be at least 16 characters long");
        }
        if self.dispatch_batch == 0 {
            bail!("dispatch_batch must be at least 1");
        }
        if self.retry_initial_ms == 0 || self.retry_max_ms < self.retry_initial_ms {
            bail!("retry_initial_ms must be > 0 and retry_max_ms >= retry_initial_ms");
        }
        crate::domain::retry::parse_delays(&self.marketing_retry_delays)
            .map_err(|e| anyhow::anyhow!("marketing_retry_delays: {e}"))?;
        self.cipher()?;
        if self.callback_retry_initial_ms == 0
            || self.callback_retry_max_ms < self.callback_retry_initial_ms
        {
            bail!(
                "callback_retry_initial_ms must be > 0 and callback_retry_max_ms >= callback_retry_initial_ms"
            );
        }
        if self.callback_timeout_ms == 0 || self.callback_concurrency == 0 {
            bail!("callback_timeout_ms and callback_concurrency must be at least 1");
        }
        if let Some(prices) = &self.prices {
            crate::domain::usage::PriceTable::parse(prices)
                .map_err(|e| anyhow::anyhow!("prices: {e}"))?;
        }
        let currency = self.price_currency.trim();
        if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
            bail!(
                "price_currency must be a 3-letter ISO 4217 code such as USD, got '{}'",
                self.price_currency
            );
        }
        Ok(())
    }

    pub fn sandbox_status_delay(&self) -> Duration {
        Duration::from_millis(self.sandbox_status_delay_ms)
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn batch_request_timeout(&self) -> Duration {
        Duration::from_millis(self.batch_request_timeout_ms)
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_environment_variable_is_a_key_and_is_documented() {
        let readme = include_str!("../README.md");
        for (var, key) in ENV_KEYS {
            assert!(
                readme.contains(var),
                "README's configuration table lacks {var}"
            );
            let value = if Config::is_number(key) { "1" } else { "\"x\"" };
            let parsed: Result<Config, _> = toml::from_str(&format!("{key} = {value}"));
            assert!(
                parsed.is_ok() || !format!("{:?}", parsed.as_ref().err()).contains("unknown field"),
                "{var} names no configuration key ({key})"
            );
        }
    }

    #[test]
    fn the_console_cookie_can_be_made_secure_from_the_environment() {
        let env = |v: &str| vec![("PLANTILLA_CONSOLE_SECURE_COOKIE".to_string(), v.to_string())];
        assert!(
            Config::from_sources(None, &env("true"))
                .unwrap()
                .console_secure_cookie
        );
        assert!(
            !Config::from_sources(None, &env("0"))
                .unwrap()
                .console_secure_cookie
        );
        let err = Config::from_sources(None, &env("yes"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("PLANTILLA_CONSOLE_SECURE_COOKIE"), "{err}");
        assert!(!Config::default().console_at_root);
    }

    #[test]
    fn defaults_apply_without_sources() {
        let c = Config::from_sources(None, &[]).unwrap();
        assert_eq!(c.database_url, "sqlite://plantilla.db");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert!(c.admin_token.is_none());
    }

    #[test]
    fn environment_overrides_file() {
        let file = "listen = \"0.0.0.0:9000\"\nretry_max_attempts = 3\n";
        let c = Config::from_sources(
            Some(file),
            &env(&[
                ("PLANTILLA_RETRY_MAX_ATTEMPTS", "5"),
                ("DATABASE_URL", "sqlite://x.db"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(c.retry_max_attempts, 5);
        assert_eq!(c.database_url, "sqlite://x.db");
    }

    #[test]
    fn bad_values_are_named() {
        let err = Config::from_sources(None, &env(&[("PLANTILLA_RETRY_MAX_MS", "soon")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("PLANTILLA_RETRY_MAX_MS"), "{err}");
        let err = format!(
            "{:#}",
            Config::from_sources(Some("unknown_key = 1"), &[]).unwrap_err()
        );
        assert!(err.contains("unknown_key"), "{err}");
        let err = Config::from_sources(None, &env(&[("PLANTILLA_ADMIN_TOKEN", "short")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("admin_token"), "{err}");
        let err = Config::from_sources(None, &env(&[("PLANTILLA_LOG_FORMAT", "xml")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("log_format"), "{err}");
    }

    #[test]
    fn operations_keys_have_defaults_and_read_the_environment() {
        let c = Config::from_sources(None, &[]).unwrap();
        assert_eq!(c.shutdown_timeout_ms, 30_000);
        assert_eq!(c.max_body_bytes, 256 * 1024);
        assert_eq!(c.max_batch_body_bytes, 8 * 1024 * 1024);
        assert_eq!(c.max_media_bytes, 100 * 1024 * 1024 + 64 * 1024);
        assert_eq!(c.request_timeout_ms, 30_000);
        assert_eq!(c.token_rate_per_sec, 100);
        assert_eq!(c.log_format, "text");
        assert_eq!(c.header_read_timeout_ms, 10_000);
        assert_eq!(c.idle_timeout_ms, 75_000);
        assert_eq!(c.max_connections, 10_000);
        assert_eq!(c.max_header_bytes, 64 * 1024);
        let c = Config::from_sources(
            None,
            &env(&[
                ("PLANTILLA_LOG_FORMAT", "json"),
                ("PLANTILLA_SHUTDOWN_TIMEOUT_MS", "5000"),
                ("PLANTILLA_MAX_BODY_BYTES", "1024"),
                ("PLANTILLA_MAX_BATCH_BODY_BYTES", "4096"),
                ("PLANTILLA_MAX_MEDIA_BYTES", "8192"),
                ("PLANTILLA_REQUEST_TIMEOUT_MS", "2000"),
                ("PLANTILLA_TOKEN_RATE_PER_SEC", "0"),
                ("PLANTILLA_METRICS_TOKEN", "metrics-token-0123456789"),
                ("PLANTILLA_HEADER_READ_TIMEOUT_MS", "500"),
                ("PLANTILLA_IDLE_TIMEOUT_MS", "700"),
                ("PLANTILLA_MAX_CONNECTIONS", "3"),
                ("PLANTILLA_MAX_HEADER_BYTES", "2048"),
            ]),
        )
        .unwrap();
        assert_eq!(c.log_format, "json");
        assert_eq!(c.shutdown_timeout_ms, 5000);
        assert_eq!(c.max_body_bytes, 1024);
        assert_eq!(c.max_batch_body_bytes, 4096);
        assert_eq!(c.max_media_bytes, 8192);
        assert_eq!(c.request_timeout_ms, 2000);
        assert_eq!(c.token_rate_per_sec, 0);
        assert!(c.metrics_token.is_some());
        assert_eq!(c.header_read_timeout_ms, 500);
        assert_eq!(c.idle_timeout_ms, 700);
        assert_eq!(c.max_connections, 3);
        assert_eq!(c.max_header_bytes, 2048);
    }

    #[test]
    fn secrets_do_not_print() {
        let c = Config::from_sources(
            None,
            &env(&[("PLANTILLA_ADMIN_TOKEN", "super-secret-admin-token")]),
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("super-secret"));
    }

    #[test]
    fn encryption_keys_are_checked_without_being_shown() {
        let key = "a".repeat(64);
        let c = Config::from_sources(
            None,
            &env(&[
                ("PLANTILLA_ENCRYPTION_KEY", &key),
                (
                    "PLANTILLA_ENCRYPTION_OLD_KEYS",
                    &format!(" {}, ", "b".repeat(64)),
                ),
            ]),
        )
        .unwrap();
        assert!(c.encryption_key.is_some() && c.encryption_old_keys.is_some());
        assert!(!format!("{c:?}").contains("aaaaaaaa"));
        let bad = "not-a-key-but-a-secret";
        let err = Config::from_sources(None, &env(&[("PLANTILLA_ENCRYPTION_KEY", bad)]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("encryption_key") && err.contains("32 bytes"),
            "{err}"
        );
        assert!(!err.contains(bad), "{err}");
        let err = Config::from_sources(
            None,
            &env(&[
                ("PLANTILLA_ENCRYPTION_KEY", &key),
                ("PLANTILLA_ENCRYPTION_OLD_KEYS", &format!("{key},{bad}")),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("key 2 of 2"), "{err}");
        assert!(!err.contains(bad), "{err}");
        let err = Config::from_sources(None, &env(&[("PLANTILLA_ENCRYPTION_OLD_KEYS", &key)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("without encryption_key"), "{err}");
    }
}
