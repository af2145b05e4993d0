//! One scenario's world: a fresh database, `fake-graph` and `plantilla serve` as separate
//! processes on loopback, and the admin calls that seed them.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::Options;
use crate::db::{self, Db};
use crate::procs::{self, Proc};

pub const ADMIN_TOKEN: &str = "bench-admin-token-0123456789abcdef";
pub const APP_SECRET: &str = "bench-meta-app-secret";
/// The access token the fake accepts for every phone number.
pub const GOOD_TOKEN: &str = "EAAG-bench-good-token";
/// A token the fake answers with 190 (the channel halts, its messages stay queued).
pub const BAD_TOKEN: &str = "EAAG-bench-revoked-token";
pub const WABA_ID: &str = fake_graph::DEFAULT_WABA_ID;
pub const DISPLAY_NUMBER: &str = fake_graph::DEFAULT_DISPLAY_PHONE_NUMBER;
pub const TEMPLATE_TEXT: &str = "Hola {{name}}, tu pedido va en camino";

pub struct StackConfig {
    /// The fake posts status webhooks (sent, delivered, read) to plantilla.
    pub webhooks: bool,
    /// Run on a fresh database of this PostgreSQL server instead of SQLite.
    pub pg_server: Option<String>,
}

pub struct Stack {
    pub dir: PathBuf,
    pub fake: Proc,
    pub fake_url: String,
    pub plantilla: Proc,
    pub base: String,
    pub db: Db,
    pub client: reqwest::Client,
    pg: Option<(String, String)>,
    keep: bool,
}

pub struct ChannelSeed {
    pub id: String,
    pub token: String,
    pub phone_number_id: String,
}

impl Stack {
    pub async fn start(opts: &Options, name: &str, cfg: StackConfig) -> anyhow::Result<Stack> {
        let dir = std::env::temp_dir().join(format!(
            "plantilla-bench-{}-{}-{:06x}",
            name,
            std::process::id(),
            rand::random::<u32>() & 0xff_ffff
        ));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

        let port = procs::free_port()?;
        let base = format!("http://127.0.0.1:{port}");

        // The fake Graph API first: plantilla needs its address.
        let mut fake_cmd = Command::new(opts.bin_dir.join("fake-graph"));
        fake_cmd
            .args(["--listen", "127.0.0.1:0", "--accept-unknown-templates"])
            .args(["--app-secret", APP_SECRET, "--token", GOOD_TOKEN]);
        if cfg.webhooks {
            fake_cmd
                .args(["--webhook-url", &format!("{base}/webhooks/whatsapp")])
                .args(["--webhook-batch", &opts.webhook_batch.to_string()])
                .args(["--webhook-linger-ms", &opts.webhook_linger_ms.to_string()]);
        }
        fake_cmd.env("RUST_LOG", "warn");
        let (mut fake, lines) = Proc::spawn("fake-graph", fake_cmd, dir.join("fake.log"), true)?;
        let lines = lines.expect("captured stdout");
        let fake_addr = procs::listening_addr(&mut fake, &lines, Duration::from_secs(20))?;
        let fake_url = format!("http://{fake_addr}");

        // The database.
        let (pg, database_url) = match &cfg.pg_server {
            Some(server) => {
                let (db_name, url) = db::create_pg_database(server).await?;
                (Some((server.clone(), db_name)), url)
            }
            None => (
                None,
                format!("sqlite://{}", dir.join("plantilla.db").display()),
            ),
        };

        let mut cmd = Command::new(opts.bin_dir.join("plantilla"));
        cmd.arg("serve");
        for (key, _) in std::env::vars() {
            if key.starts_with("PLANTILLA_") || key == "DATABASE_URL" {
                cmd.env_remove(key);
            }
        }
        cmd.env("DATABASE_URL", &database_url)
            .env("PLANTILLA_LISTEN", format!("127.0.0.1:{port}"))
            .env("PLANTILLA_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("PLANTILLA_GRAPH_BASE_URL", &fake_url)
            .env("PLANTILLA_META_APP_SECRET", APP_SECRET)
            .env("PLANTILLA_TEMPLATE_SYNC_INTERVAL_SECS", "0")
            // The load comes from one token: measure the server, not its per-token limit
            // (`--plantilla-env PLANTILLA_TOKEN_RATE_PER_SEC=100` measures with it).
            .env("PLANTILLA_TOKEN_RATE_PER_SEC", "0")
            .env("PLANTILLA_LOG", "warn");
        for (k, v) in &opts.plantilla_env {
            cmd.env(k, v);
        }
        let (mut plantilla, _) = Proc::spawn("plantilla", cmd, dir.join("plantilla.log"), false)?;

        let client = crate::load::client(opts.connections.max(64));
        wait_http(&client, &base, &mut plantilla, Duration::from_secs(30)).await?;

        let db = match &pg {
            Some(_) => Db::pg(&database_url).await?,
            None => Db::sqlite(&database_url).await?,
        };
        Ok(Stack {
            dir,
            fake,
            fake_url,
            plantilla,
            base,
            db,
            client,
            pg,
            keep: opts.keep,
        })
    }

    /// Stops both processes, drops the PostgreSQL database, removes the temp dir.
    pub async fn shutdown(mut self) {
        self.db.close().await;
        self.plantilla.stop(Duration::from_secs(10));
        self.fake.stop(Duration::from_secs(5));
        if let Some((server, name)) = &self.pg
            && let Err(e) = db::drop_pg_database(server, name).await
        {
            eprintln!("  warning: could not drop {name}: {e:#}");
        }
        if self.keep {
            eprintln!("  kept {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// Whether plantilla is still running; an error with its log otherwise.
    pub fn alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.plantilla.exited() {
            bail!(
                "plantilla exited ({status})\n{}",
                self.plantilla.log_tail(30)
            );
        }
        Ok(())
    }

    pub fn rss_kb(&self) -> Option<u64> {
        procs::status_kb(self.plantilla.pid, "VmRSS")
    }

    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("{method} {path}: HTTP {status}: {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn admin_post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.admin(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn admin_patch(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.admin(reqwest::Method::PATCH, path, Some(body)).await
    }

    pub async fn admin_get(&self, path: &str) -> anyhow::Result<Value> {
        self.admin(reqwest::Method::GET, path, None).await
    }

    pub async fn create_account(&self) -> anyhow::Result<String> {
        let a = self
            .admin_post(
                "/v1/admin/accounts",
                json!({"name": "Bench", "conversationLimit": 1_000_000_000i64}),
            )
            .await?;
        str_field(&a, "id")
    }

    pub async fn create_channel(
        &self,
        account_id: &str,
        phone_number_id: &str,
        access_token: &str,
        rate: u32,
    ) -> anyhow::Result<ChannelSeed> {
        let c = self
            .admin_post(
                "/v1/admin/channels",
                json!({"accountId": account_id, "name": format!("Cloud {phone_number_id}"),
                       "provider": "cloud", "phoneNumberId": phone_number_id,
                       "wabaId": WABA_ID, "accessToken": access_token,
                       "appSecret": APP_SECRET, "verifyToken": "bench-verify",
                       "messagesPerSecond": rate}),
            )
            .await?;
        Ok(ChannelSeed {
            id: str_field(&c, "id")?,
            token: str_field(&c, "publicToken")?,
            phone_number_id: phone_number_id.to_string(),
        })
    }

    pub async fn create_template(&self, account_id: &str) -> anyhow::Result<String> {
        let t = self
            .admin_post(
                "/v1/admin/templates",
                json!({"accountId": account_id, "name": "order_update", "language": "es",
                       "appId": "1001", "message": TEMPLATE_TEXT}),
            )
            .await?;
        str_field(&t, "id")
    }

    pub async fn patch_channel(&self, id: &str, body: Value) -> anyhow::Result<()> {
        self.admin_patch(&format!("/v1/admin/channels/{id}"), body)
            .await?;
        Ok(())
    }

    pub async fn channel_health(&self, id: &str) -> anyhow::Result<String> {
        let c = self.admin_get(&format!("/v1/admin/channels/{id}")).await?;
        str_field(&c, "health")
    }

    /// The fake's `GET /_fake/stats`.
    pub async fn fake_stats(&self) -> anyhow::Result<Value> {
        let resp = self
            .client
            .get(format!("{}/_fake/stats", self.fake_url))
            .send()
            .await
            .context("GET /_fake/stats")?;
        Ok(resp.json().await?)
    }

    pub async fn probe(&self, probe: Probe) -> anyhow::Result<i64> {
        match probe {
            Probe::Read => self.db.read_count().await,
            Probe::WithProviderId => self.db.with_provider_id().await,
        }
    }

    /// Polls `probe` every `every` until it reaches `target`; gives up when the count has
    /// not moved for `stall` (or plantilla died). Returns when the target was seen.
    pub async fn wait_for(
        &mut self,
        probe: Probe,
        target: i64,
        every: Duration,
        stall: Duration,
    ) -> anyhow::Result<Instant> {
        let mut last = i64::MIN;
        let mut moved = Instant::now();
        loop {
            let n = self.probe(probe).await?;
            if n >= target {
                return Ok(Instant::now());
            }
            if n != last {
                last = n;
                moved = Instant::now();
            } else if moved.elapsed() > stall {
                bail!("waiting for {probe:?}: stuck at {n} of {target} for {stall:?}");
            }
            self.alive()?;
            tokio::time::sleep(every).await;
        }
    }
}

/// What [`Stack::wait_for`] counts.
#[derive(Debug, Clone, Copy)]
pub enum Probe {
    /// Messages in status `read`.
    Read,
    /// Messages the Graph API accepted (with a wamid).
    WithProviderId,
}

async fn wait_http(
    client: &reqwest::Client,
    base: &str,
    proc: &mut Proc,
    timeout: Duration,
) -> anyhow::Result<()> {
    let until = Instant::now() + timeout;
    loop {
        if client.get(format!("{base}/")).send().await.is_ok() {
            return Ok(());
        }
        if let Some(status) = proc.exited() {
            bail!("{} exited ({status})\n{}", proc.name, proc.log_tail(30));
        }
        if Instant::now() > until {
            bail!(
                "{} did not answer on {base} within {timeout:?}\n{}",
                proc.name,
                proc.log_tail(30)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn str_field(v: &Value, key: &str) -> anyhow::Result<String> {
    v[key]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("no '{key}' in {v}"))
}
