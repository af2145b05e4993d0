//! Test harness: the real server on port 0 over a real SQLite file, driven over real HTTP.
#![allow(dead_code)]

use std::path::PathBuf;

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

pub fn test_config(dir: &std::path::Path) -> Config {
    Config {
        database_url: format!("sqlite://{}", dir.join("plantilla.db").display()),
        admin_token: Some(Secret::new(ADMIN_TOKEN)),
        sandbox_status_delay_ms: 0,
        sqlite_synchronous: "normal".into(),
        retry_initial_ms: 10,
        retry_max_ms: 200,
        log: "warn".into(),
        ..Config::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(dir.path());
    adjust(&mut config);
    start(dir, config).await
}

async fn start(dir: tempfile::TempDir, config: Config) -> TestApp {
    let app = App::open(config.clone()).await.expect("open app");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let server = server::start(app, listener, false).await.expect("start");
    TestApp {
        base: format!("http://{}", server.addr),
        server: Some(server),
        client: reqwest::Client::new(),
        dir,
        config,
    }
}

impl TestApp {
    pub fn app(&self) -> &App {
        &self.server.as_ref().expect("running").app
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("plantilla.db")
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

    /// Stops the server and starts a new one on the same database file.
    pub async fn restart(mut self) -> TestApp {
        self.server
            .take()
            .expect("running")
            .stop()
            .await
            .expect("stop");
        let TestApp { dir, config, .. } = self;
        start(dir, config).await
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
