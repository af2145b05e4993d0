//! Helpers of the crash and fault tests: a database for `plantilla serve` processes (a SQLite
//! file, or a fresh PostgreSQL database dropped afterwards), those processes (killed on drop),
//! a bounded load of sends, and what the fake Graph API saw of each message.
//!
//! The database is the running case's (see tests/it/common/mod.rs).
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fake_graph::{FakeGraph, RequestOutcome, SentMessage};
use serde_json::{Value, json};

use crate::common::{PgDatabase, create_pg_database};

pub const ADMIN_TOKEN: &str = "chaos-admin-token-0123456789";

// ---------------------------------------------------------------------------
// The database
// ---------------------------------------------------------------------------

/// The database the processes share. Dropping it drops a PostgreSQL database.
pub struct Db {
    pub url: String,
    pub dir: tempfile::TempDir,
    pg: Option<PgDatabase>,
}

impl Db {
    /// A fresh PostgreSQL database when `postgres`, else a SQLite file in a temporary
    /// directory.
    pub async fn new(postgres: bool) -> Db {
        let dir = tempfile::tempdir().expect("temp dir");
        if !postgres {
            return Db {
                url: format!("sqlite://{}", dir.path().join("plantilla.db").display()),
                dir,
                pg: None,
            };
        }
        let pg = create_pg_database().await;
        Db {
            url: pg.url(),
            dir,
            pg: Some(pg),
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }

    /// Text rows of one column (cast in SQL when needed).
    pub async fn strings(&self, sql: &str) -> Vec<String> {
        if self.is_postgres() {
            let pool = sqlx::PgPool::connect(&self.url).await.unwrap();
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

    /// `(text, integer)` rows.
    pub async fn pairs(&self, sql: &str) -> Vec<(String, i64)> {
        if self.is_postgres() {
            let pool = sqlx::PgPool::connect(&self.url).await.unwrap();
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

    pub async fn i64(&self, sql: &str) -> i64 {
        if self.is_postgres() {
            let pool = sqlx::PgPool::connect(&self.url).await.unwrap();
            let n = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
            pool.close().await;
            n
        } else {
            let pool = self.sqlite_pool().await;
            let n = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
            pool.close().await;
            n
        }
    }

    async fn sqlite_pool(&self) -> sqlx::SqlitePool {
        let path = PathBuf::from(self.url.trim_start_matches("sqlite://"));
        sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(path)
                    .busy_timeout(Duration::from_secs(10)),
            )
            .await
            .expect("open the test database")
    }
}

// ---------------------------------------------------------------------------
// `plantilla serve` processes
// ---------------------------------------------------------------------------

/// A `plantilla serve` process; SIGKILLed when dropped.
pub struct Serve {
    child: Child,
    pub base: String,
    pub log: PathBuf,
}

impl Serve {
    /// Starts `plantilla serve` on a free port with these extra environment variables and
    /// waits (at most 30 s) until it answers HTTP. Its stderr goes to `log`.
    pub async fn start(db: &Db, graph: &str, env: &[(&str, &str)], log: PathBuf) -> Serve {
        let port = free_port();
        let stderr = std::fs::File::create(&log).expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_plantilla"));
        command
            .arg("serve")
            .env("DATABASE_URL", &db.url)
            .env("PLANTILLA_LISTEN", format!("127.0.0.1:{port}"))
            .env("PLANTILLA_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("PLANTILLA_GRAPH_BASE_URL", graph)
            .env("PLANTILLA_DATABASE_MAX_CONNECTIONS", "8")
            .env("PLANTILLA_TEMPLATE_SYNC_INTERVAL_SECS", "0")
            .env("PLANTILLA_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().expect("start plantilla serve");
        let mut serve = Serve {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if client
                .get(format!("{}/", serve.base))
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .is_ok()
            {
                break;
            }
            if let Ok(Some(status)) = serve.child.try_wait() {
                panic!(
                    "plantilla serve exited at start ({status}): {}",
                    std::fs::read_to_string(&serve.log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "plantilla serve did not start listening"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        serve
    }

    /// `kill -9`, and reap it.
    pub fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL plantilla serve");
        self.child.wait().expect("reap plantilla serve");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// POSTs to the admin API and expects 201.
pub async fn admin(client: &reqwest::Client, base: &str, path: &str, body: Value) -> Value {
    let r = client
        .post(format!("{base}{path}"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap_or_default();
    assert_eq!(status, 201, "{path}: {v}");
    v
}

/// An account with a cloud channel for `phone_number_id` and a template `Hola {{name}}`:
/// `(public token, template id)`.
pub async fn seed_cloud(
    client: &reqwest::Client,
    base: &str,
    phone_number_id: &str,
    access_token: &str,
    rate: u32,
) -> (String, String) {
    let account = admin(
        client,
        base,
        "/v1/admin/accounts",
        json!({"name": "Chaos", "conversationLimit": 1_000_000}),
    )
    .await;
    let channel = admin(
        client,
        base,
        "/v1/admin/channels",
        json!({"accountId": account["id"], "name": "Main", "provider": "cloud",
               "phoneNumberId": phone_number_id, "accessToken": access_token,
               "messagesPerSecond": rate}),
    )
    .await;
    let template = admin(
        client,
        base,
        "/v1/admin/templates",
        json!({"accountId": account["id"], "name": "order_update", "language": "es",
               "category": "UTILITY", "status": "APPROVED", "appId": "1",
               "message": "Hola {{name}}"}),
    )
    .await;
    (
        channel["publicToken"].as_str().unwrap().to_string(),
        template["id"].as_str().unwrap().to_string(),
    )
}

// ---------------------------------------------------------------------------
// Load
// ---------------------------------------------------------------------------

/// What became of one send request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendResult {
    /// 200 with a message id.
    Accepted(String),
    /// Any other answer.
    Refused(u16),
    /// No answer (the server died, or was not there).
    NoAnswer,
}

#[derive(Debug, Clone)]
pub struct Attempted {
    pub phone: String,
    pub result: SendResult,
}

pub struct LoadConfig {
    pub workers: usize,
    /// Sends per second per worker (at most).
    pub per_worker_rate: f64,
    /// Most sends in all.
    pub max_sends: usize,
    /// Longest the load runs.
    pub max_duration: Duration,
    pub token: String,
    pub template_id: String,
    /// Phone number of the i-th send (each send a new number: every answer is a new message).
    pub phone: fn(usize) -> String,
}

/// A steady load of sends to whatever base URL `target` holds at each send. Bounded in count
/// and time; `stop` ends it early.
pub struct Load {
    pub stop: Arc<AtomicBool>,
    pub sent: Arc<AtomicUsize>,
    handles: Vec<tokio::task::JoinHandle<Vec<Attempted>>>,
}

impl Load {
    pub fn start(config: LoadConfig, target: Arc<Mutex<String>>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicUsize::new(0));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let config = Arc::new(config);
        let deadline = Instant::now() + config.max_duration;
        let interval = Duration::from_secs_f64(1.0 / config.per_worker_rate);
        let mut handles = Vec::new();
        for _ in 0..config.workers {
            let (stop, next, client, config, target) = (
                stop.clone(),
                next.clone(),
                client.clone(),
                config.clone(),
                target.clone(),
            );
            handles.push(tokio::spawn(async move {
                let mut done = Vec::new();
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= config.max_sends {
                        break;
                    }
                    let started = Instant::now();
                    let phone = (config.phone)(i);
                    let base = target.lock().unwrap().clone();
                    let r = client
                        .post(format!("{base}/api/Template/SendMessage"))
                        .bearer_auth(&config.token)
                        .json(
                            &json!({"templateId": config.template_id, "phoneNumber": phone,
                                      "params": {"name": "Ana"}}),
                        )
                        .send()
                        .await;
                    let result = match r {
                        Ok(r) if r.status() == 200 => match r.json::<Value>().await {
                            Ok(v) => match v["data"]["message_id"].as_str() {
                                Some(id) => SendResult::Accepted(id.to_string()),
                                None => panic!("200 without a message id: {v}"),
                            },
                            // The answer was cut: the server may or may not have the message.
                            Err(_) => SendResult::NoAnswer,
                        },
                        Ok(r) => SendResult::Refused(r.status().as_u16()),
                        Err(_) => SendResult::NoAnswer,
                    };
                    done.push(Attempted { phone, result });
                    let spent = started.elapsed();
                    if spent < interval {
                        tokio::time::sleep(interval - spent).await;
                    }
                }
                done
            }));
        }
        Load {
            stop,
            sent: next,
            handles,
        }
    }

    /// Stops the load and returns every send attempted.
    pub async fn finish(self) -> Vec<Attempted> {
        self.stop.store(true, Ordering::SeqCst);
        let mut all = Vec::new();
        for h in self.handles {
            all.extend(h.await.expect("load worker"));
        }
        all
    }
}

// ---------------------------------------------------------------------------
// What the fake saw
// ---------------------------------------------------------------------------

/// The fake's accepted sends, by callback data (plantilla's message id), in order.
pub fn accepted_by_message(fake: &FakeGraph) -> HashMap<String, Vec<SentMessage>> {
    let mut by: HashMap<String, Vec<SentMessage>> = HashMap::new();
    for m in fake.sent() {
        if let Some(id) = m.biz_opaque_callback_data.clone() {
            by.entry(id).or_default().push(m);
        }
    }
    by
}

/// Calls per message id (any outcome) and how many of them the fake dropped, timed out on
/// (answered after the client gave up is not visible here) or refused.
pub fn requests_by_message(fake: &FakeGraph) -> HashMap<String, Vec<RequestOutcome>> {
    let mut by: HashMap<String, Vec<RequestOutcome>> = HashMap::new();
    for r in fake.requests() {
        if let Some(id) = r.body["biz_opaque_callback_data"].as_str() {
            by.entry(id.to_string()).or_default().push(r.outcome);
        }
    }
    by
}

/// When the first status webhook naming `wamid` reached plantilla, if one did.
pub fn first_webhook_delivered(
    fake: &FakeGraph,
    wamid: &str,
) -> Option<chrono::DateTime<chrono::Utc>> {
    fake.webhooks()
        .iter()
        .filter(|w| w.delivered)
        .filter(|w| {
            w.body["entry"][0]["changes"][0]["value"]["statuses"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|s| s["id"].as_str() == Some(wamid))
        })
        .map(|w| w.at)
        .min()
}

pub use crate::common::on_postgres;
