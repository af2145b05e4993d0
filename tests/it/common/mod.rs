//! Test harness: the real server on port 0 over a real database, driven over real HTTP.
//!
//! The database is a parameter of each test. `both_databases!(name)` before `async fn name()`
//! makes two cases of that one body, `name::sqlite` and `name::postgres` (so
//! `cargo test -- postgres` selects the PostgreSQL ones); `postgres_only!(name)` makes the
//! `name::postgres` case alone; a plain `#[tokio::test]` is a SQLite-only test. tokio's test
//! arguments follow the name: `both_databases!(name, flavor = "multi_thread")`. Everything here
//! that opens a database (`spawn_app…`, `fresh_database`, chaos's `Db`) uses the running case's
//! database, each test a fresh one: a SQLite file in a temporary directory, or a new
//! PostgreSQL database (`plantilla_t_…`, dropped with the test) on the server named by
//! `PLANTILLA_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`).
//!
//! A PostgreSQL case whose server is unreachable fails when PostgreSQL was asked for
//! (`PLANTILLA_TEST_PG_URL` or `CI` set), and is skipped with a notice on stderr otherwise; it
//! never runs on SQLite instead.
#![allow(dead_code)]

pub mod browser;
pub mod serve;
pub mod store_seed;

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use plantilla::app::App;
use plantilla::config::{Config, Secret};
use plantilla::server::{self, Server};
use reqwest::StatusCode;
use serde_json::{Value, json};

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

pub struct TestApp {
    pub server: Option<Server>,
    pub base: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub config: Config,
    /// The PostgreSQL database this test created (dropped with the test), if any.
    pg: Option<PgDatabase>,
    background: bool,
}

/// The database a test case runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

tokio::task_local! {
    static BACKEND: Backend;
}

/// The running case's database: SQLite outside `both_databases!` / `postgres_only!` cases.
/// It is the test task's: open the test's databases there, not in a task it spawns.
pub fn backend() -> Backend {
    BACKEND.try_with(|b| *b).unwrap_or(Backend::Sqlite)
}

/// Whether the running case is a PostgreSQL case.
pub fn on_postgres() -> bool {
    backend() == Backend::Postgres
}

/// Runs one case of a test body on `backend`. A PostgreSQL case checks the server first: when
/// it is unreachable the case fails if PostgreSQL was asked for, and is skipped with a notice
/// otherwise.
pub async fn run_case(backend: Backend, body: impl Future<Output = ()>) {
    if backend == Backend::Postgres
        && let Err(why) = postgres_reachable().await
    {
        let place = pg_server_place();
        if postgres_required() {
            panic!(
                "PostgreSQL was asked for (PLANTILLA_TEST_PG_URL or CI is set) but is \
                     unreachable at {place}: {why}. Start it, or unset both to skip the \
                     PostgreSQL cases."
            );
        }
        // Straight to stderr, past the test harness' capture, so the skip is seen.
        let _ = writeln!(
            std::io::stderr(),
            "notice: PostgreSQL is unreachable at {place} ({why}); this PostgreSQL case \
                 is skipped. Set PLANTILLA_TEST_PG_URL to require it."
        );
        return;
    }
    BACKEND.scope(backend, body).await
}

/// Whether PostgreSQL was asked for: then an unreachable server fails its cases.
pub fn postgres_required() -> bool {
    std::env::var_os("PLANTILLA_TEST_PG_URL").is_some() || std::env::var_os("CI").is_some()
}

/// Whether the PostgreSQL server answers (asked once per test binary).
async fn postgres_reachable() -> Result<(), String> {
    static REACHABLE: OnceLock<Result<(), String>> = OnceLock::new();
    if let Some(known) = REACHABLE.get() {
        return known.clone();
    }
    let server = pg_server_url();
    let attempt = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&server);
    let answer = match tokio::time::timeout(Duration::from_secs(10), attempt).await {
        Ok(Ok(pool)) => {
            pool.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("connection timed out".to_string()),
    };
    REACHABLE.get_or_init(|| answer).clone()
}

/// `host:port` of the PostgreSQL server (the URL may carry a password).
fn pg_server_place() -> String {
    match pg_server_url().parse::<sqlx::postgres::PgConnectOptions>() {
        Ok(o) => format!("{}:{}", o.get_host(), o.get_port()),
        Err(_) => "PLANTILLA_TEST_PG_URL (not a PostgreSQL URL)".to_string(),
    }
}

/// One test body, two cases: `name::sqlite` and `name::postgres`. The body is the
/// `async fn name()` that follows; tokio's test arguments, if any, come after the name.
macro_rules! both_databases {
    ($test:ident $(, $($arg:tt)+)?) => {
        mod $test {
            #[tokio::test$(($($arg)+))?]
            async fn sqlite() {
                $crate::common::run_case($crate::common::Backend::Sqlite, super::$test()).await
            }
            #[tokio::test$(($($arg)+))?]
            async fn postgres() {
                $crate::common::run_case($crate::common::Backend::Postgres, super::$test())
                    .await
            }
        }
    };
}

/// A test that exists on PostgreSQL only: the `name::postgres` case of `async fn name()`.
#[allow(unused_macros)]
macro_rules! postgres_only {
    ($test:ident $(, $($arg:tt)+)?) => {
        mod $test {
            #[tokio::test$(($($arg)+))?]
            async fn postgres() {
                $crate::common::run_case($crate::common::Backend::Postgres, super::$test())
                    .await
            }
        }
    };
}

/// The PostgreSQL server the tests create their databases on.
pub fn pg_server_url() -> String {
    std::env::var("PLANTILLA_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// `url` with its database name replaced.
pub fn pg_url_for(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let root = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{database}?{q}"),
        None => format!("{root}/{database}"),
    }
}

/// A PostgreSQL database created for one test, dropped with this value.
pub struct PgDatabase {
    pub server: String,
    pub name: String,
}

impl PgDatabase {
    /// The URL of this database.
    pub fn url(&self) -> String {
        pg_url_for(&self.server, &self.name)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let server = self.server.clone();
        let name = self.name.clone();
        // A fresh runtime on another thread: drop may run inside the test's runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(pool) = sqlx::PgPool::connect(&server).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&pool)
                        .await;
                    pool.close().await;
                }
            });
        })
        .join();
    }
}

/// Creates a fresh PostgreSQL database (the case checked that the server answers).
pub async fn create_pg_database() -> PgDatabase {
    let server = pg_server_url();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&server)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {}: {e}", pg_server_place()));
    let name = format!("plantilla_t_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
        .expect("create the test database");
    pool.close().await;
    PgDatabase { server, name }
}

/// A fresh database for a test that runs the `plantilla` binary itself: a SQLite file in
/// `dir`, or in a PostgreSQL case a new PostgreSQL database, dropped with this value.
pub struct FreshDatabase {
    pub url: String,
    _pg: Option<PgDatabase>,
}

pub async fn fresh_database(dir: &std::path::Path) -> FreshDatabase {
    let pg = if on_postgres() {
        Some(create_pg_database().await)
    } else {
        None
    };
    let url = match &pg {
        Some(db) => db.url(),
        None => format!("sqlite://{}", dir.join("plantilla.db").display()),
    };
    FreshDatabase { url, _pg: pg }
}

/// `(text, optional text)` rows from a query on the database at `url` (SQLite or PostgreSQL).
pub async fn query_text_pairs(url: &str, sql: &str) -> Vec<(String, Option<String>)> {
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        let rows = sqlx::query_as(sql).fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows
    } else {
        let options =
            sqlx::sqlite::SqliteConnectOptions::new().filename(url.trim_start_matches("sqlite://"));
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap();
        let rows = sqlx::query_as(sql).fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows
    }
}

/// What `seed` created: an account with a sandbox channel, a group and a template with named
/// params (`{{name}}`, `{{order}}`).
#[derive(Debug, Clone)]
pub struct Seed {
    pub account_id: String,
    pub channel_id: String,
    pub token: String,
    pub group_id: String,
    pub template_id: String,
}

/// What the Cloud API tests start from: an account "Acme", a cloud channel for the fake's
/// number `phone_number_id` in its default WABA (1000 messages/s, a per-channel app secret and
/// verify token), a group "Ventas" and, when `template` is given, that template of the
/// account (its `accountId` is filled in). The seed's `group_id` / `template_id` are those.
pub async fn seed_cloud_channel(
    t: &TestApp,
    phone_number_id: &str,
    access_token: &str,
    template: Option<Value>,
) -> Seed {
    let account = t
        .create(
            "/v1/admin/accounts",
            json!({"name": "Acme", "conversationLimit": 1000}),
        )
        .await;
    let channel = t
        .create(
            "/v1/admin/channels",
            json!({"accountId": account["id"], "name": "Main", "provider": "cloud",
                   "phoneNumberId": phone_number_id,
                   "wabaId": fake_graph::DEFAULT_WABA_ID,
                   "accessToken": access_token,
                   "appSecret": "channel-secret", "verifyToken": "channel-verify",
                   "messagesPerSecond": 1000}),
        )
        .await;
    let group = t
        .create(
            "/v1/admin/groups",
            json!({"accountId": account["id"], "name": "Ventas", "channelIds": [channel["id"]]}),
        )
        .await;
    let template_id = match template {
        Some(mut body) => {
            body["accountId"] = account["id"].clone();
            s(&t.create("/v1/admin/templates", body).await["id"])
        }
        None => String::new(),
    };
    Seed {
        account_id: s(&account["id"]),
        channel_id: s(&channel["id"]),
        token: s(&channel["publicToken"]),
        group_id: s(&group["id"]),
        template_id,
    }
}

pub fn test_config(dir: &std::path::Path) -> Config {
    Config {
        database_url: format!("sqlite://{}", dir.join("plantilla.db").display()),
        admin_token: Some(Secret::new(ADMIN_TOKEN)),
        sandbox_status_delay_ms: 0,
        sqlite_synchronous: "normal".into(),
        retry_initial_ms: 10,
        retry_max_ms: 200,
        log: "warn".into(),
        // Tests send in bursts; the rate limit's own tests turn it on.
        token_rate_per_sec: 0,
        ..Config::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    spawn(adjust, false).await
}

/// The server with its dispatcher running in the background, as `serve` runs it.
pub async fn spawn_app_dispatching() -> TestApp {
    spawn(|_| {}, true).await
}

pub async fn spawn_app_dispatching_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    spawn(adjust, true).await
}

async fn spawn(adjust: impl FnOnce(&mut Config), background: bool) -> TestApp {
    // Server-side warnings and errors go to the test's captured output (shown on failure).
    let _ = tracing_subscriber::fmt()
        .with_env_filter("plantilla=warn")
        .with_ansi(false)
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(dir.path());
    let pg = if on_postgres() {
        Some(create_pg_database().await)
    } else {
        None
    };
    if let Some(db) = &pg {
        config.database_url = db.url();
        config.database_max_connections = 8;
    }
    adjust(&mut config);
    start(dir, config, pg, background).await
}

async fn start(
    dir: tempfile::TempDir,
    config: Config,
    pg: Option<PgDatabase>,
    background: bool,
) -> TestApp {
    let app = App::open(config.clone()).await.expect("open app");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let server = server::start(app, listener, background)
        .await
        .expect("start");
    TestApp {
        base: format!("http://{}", server.addr),
        server: Some(server),
        client: reqwest::Client::new(),
        dir,
        config,
        pg,
        background,
    }
}

impl TestApp {
    pub fn app(&self) -> &App {
        &self.server.as_ref().expect("running").app
    }

    /// Runs a statement on the test's database (SQLite or PostgreSQL); rows affected.
    pub async fn sql(&self, sql: &str) -> u64 {
        if self.config.database_url.starts_with("postgres") {
            let pool = sqlx::PgPool::connect(&self.config.database_url)
                .await
                .unwrap();
            let n = sqlx::query(sql)
                .execute(&pool)
                .await
                .unwrap()
                .rows_affected();
            pool.close().await;
            n
        } else {
            let pool = self.sqlite_pool().await;
            let n = sqlx::query(sql)
                .execute(&pool)
                .await
                .unwrap()
                .rows_affected();
            pool.close().await;
            n
        }
    }

    /// One integer from a query on the test's database.
    pub async fn sql_i64(&self, sql: &str) -> i64 {
        if self.config.database_url.starts_with("postgres") {
            let pool = sqlx::PgPool::connect(&self.config.database_url)
                .await
                .unwrap();
            let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
            pool.close().await;
            n
        } else {
            let pool = self.sqlite_pool().await;
            let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
            pool.close().await;
            n
        }
    }

    /// `(text, integer)` rows from a query on the test's database.
    pub async fn sql_pairs(&self, sql: &str) -> Vec<(String, i64)> {
        if self.config.database_url.starts_with("postgres") {
            let pool = sqlx::PgPool::connect(&self.config.database_url)
                .await
                .unwrap();
            let rows = sqlx::query_as(sql).fetch_all(&pool).await.unwrap();
            pool.close().await;
            rows
        } else {
            let pool = self.sqlite_pool().await;
            let rows = sqlx::query_as(sql).fetch_all(&pool).await.unwrap();
            pool.close().await;
            rows
        }
    }

    /// The first column of every row of a query, as text, on the test's database.
    pub async fn sql_strings(&self, sql: &str) -> Vec<String> {
        if self.config.database_url.starts_with("postgres") {
            let pool = sqlx::PgPool::connect(&self.config.database_url)
                .await
                .unwrap();
            let rows = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
            pool.close().await;
            rows
        } else {
            let pool = self.sqlite_pool().await;
            let rows = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
            pool.close().await;
            rows
        }
    }

    async fn sqlite_pool(&self) -> sqlx::SqlitePool {
        let path = self
            .config
            .database_url
            .trim_start_matches("sqlite://")
            .to_string();
        sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(PathBuf::from(path)))
            .await
            .expect("open the test database")
    }

    /// Runs the dispatcher until nothing is due and the sandbox's statuses are applied.
    pub async fn drain(&self) {
        self.server
            .as_ref()
            .expect("running")
            .dispatcher
            .drain()
            .await
            .expect("drain");
    }

    /// Runs the callback worker until no delivery is due now and waits for the outcomes; a
    /// delivery that fails waits for its backoff and a later call. How many were attempted.
    pub async fn drain_callbacks(&self) -> usize {
        self.server
            .as_ref()
            .expect("running")
            .callbacks
            .drain()
            .await
            .expect("drain callbacks")
    }

    /// Stops the server and starts a new one on the same database file.
    pub async fn restart(mut self) -> TestApp {
        self.server
            .take()
            .expect("running")
            .stop()
            .await
            .expect("stop");
        let pg = self.pg.take();
        let background = self.background;
        let TestApp { dir, config, .. } = self;
        start(dir, config, pg, background).await
    }

    /// Stops the server and starts a new one on the same database with a changed
    /// configuration (for example another encryption key).
    pub async fn restart_with(mut self, adjust: impl FnOnce(&mut Config)) -> TestApp {
        adjust(&mut self.config);
        self.restart().await
    }

    pub async fn admin(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let url = format!("{}{}", self.base, path);
        let mut req = self
            .client
            .request(method.parse().unwrap(), url)
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("admin request");
        let status = res.status();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// POSTs to the admin API and expects 201.
    pub async fn create(&self, path: &str, body: Value) -> Value {
        let (status, v) = self.admin("POST", path, Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{path}: {v}");
        v
    }

    pub async fn seed(&self) -> Seed {
        self.seed_with(1000, "connected").await
    }

    pub async fn seed_with(&self, conversation_limit: i64, channel_status: &str) -> Seed {
        let account = self
            .create(
                "/v1/admin/accounts",
                json!({"name": "Acme", "conversationLimit": conversation_limit}),
            )
            .await;
        let channel = self
            .create(
                "/v1/admin/channels",
                json!({"accountId": account["id"], "name": "Main", "provider": "sandbox",
                       "status": channel_status, "messagesPerSecond": 1000}),
            )
            .await;
        let group = self
            .create(
                "/v1/admin/groups",
                json!({"accountId": account["id"], "name": "Ventas", "channelIds": [channel["id"]]}),
            )
            .await;
        let template = self
            .create(
                "/v1/admin/templates",
                json!({"accountId": account["id"], "name": "order_update", "language": "es",
                       "category": "UTILITY", "status": "APPROVED", "appId": "app_1",
                       "message": "Hola {{name}}, tu pedido {{order}} va en camino"}),
            )
            .await;
        Seed {
            account_id: s(&account["id"]),
            channel_id: s(&channel["id"]),
            token: s(&channel["publicToken"]),
            group_id: s(&group["id"]),
            template_id: s(&template["id"]),
        }
    }

    /// A request to the template API with an optional bearer token and a raw body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Reply {
        let mut req = self
            .client
            .request(method.parse().unwrap(), format!("{}{}", self.base, path));
        if let Some(token) = token {
            req = req.header("Authorization", format!("Bearer {token}"));
        }
        if let Some(body) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let content_type = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let text = res.text().await.unwrap();
        Reply {
            status,
            content_type,
            json: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    /// `POST /api/Template/SendMessage` with a JSON body.
    pub async fn send_old(&self, token: &str, body: Value) -> Reply {
        self.call(
            "POST",
            "/api/Template/SendMessage",
            Some(token),
            Some(&body.to_string()),
        )
        .await
    }

    /// `POST /templates` with a JSON body.
    pub async fn send_new(&self, token: &str, body: Value) -> Reply {
        self.call("POST", "/templates", Some(token), Some(&body.to_string()))
            .await
    }

    pub async fn message(&self, id: &str) -> Value {
        let (status, v) = self
            .admin("GET", &format!("/v1/admin/messages/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v
    }

    pub async fn conversation(&self, id: &str) -> Value {
        let (status, v) = self
            .admin("GET", &format!("/v1/admin/conversations/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub json: Value,
    pub text: String,
}

pub fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_string()
}

/// A send body for the seeded template with both params.
pub fn send_body(seed: &Seed, phone: &str) -> Value {
    json!({"templateId": seed.template_id, "phoneNumber": phone, "clientName": "Ana",
           "params": {"name": "Ana", "order": "A-1"}})
}
