//! Reading plantilla's database directly (SQLite file or PostgreSQL database) after and
//! during a run, and creating / dropping the throwaway PostgreSQL databases.

use std::collections::BTreeMap;
use std::str::FromStr;

use anyhow::Context;
use sqlx::Connection;
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

pub enum Db {
    Sqlite(SqlitePool),
    Pg(PgPool),
}

/// Runs `$body` with `$pool` bound to the pool of either backend (the body is compiled once
/// per backend, so `query_as::<_, …>` infers the database).
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            Db::Sqlite($pool) => $body,
            Db::Pg($pool) => $body,
        }
    };
}

/// One message's times, ms since the epoch.
#[derive(Debug, Clone, Copy)]
pub struct MessageTimes {
    pub queued_at: i64,
    /// When plantilla recorded the Graph API's acceptance (the attempt's `finished_at`).
    pub accepted_by_graph: Option<i64>,
    /// `read_at`: the `read` webhook's timestamp (whole seconds, × 1000).
    pub read_at: Option<i64>,
}

impl Db {
    /// A read-only pool on a SQLite file plantilla writes.
    pub async fn sqlite(url: &str) -> anyhow::Result<Db> {
        let options = SqliteConnectOptions::from_str(url)?.read_only(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .with_context(|| format!("opening {url} read-only"))?;
        Ok(Db::Sqlite(pool))
    }

    pub async fn pg(url: &str) -> anyhow::Result<Db> {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect(url)
            .await
            .with_context(|| format!("connecting to {url}"))?;
        Ok(Db::Pg(pool))
    }

    pub async fn close(&self) {
        on_pool!(self, p => p.close().await)
    }

    /// Messages by status.
    pub async fn status_counts(&self) -> anyhow::Result<BTreeMap<String, i64>> {
        const SQL: &str = "SELECT status, count(*) FROM messages GROUP BY status";
        let rows: Vec<(String, i64)> = on_pool!(self, p => sqlx::query_as(SQL).fetch_all(p).await?);
        Ok(rows.into_iter().collect())
    }

    /// A `SELECT count(*) …`.
    pub async fn count(&self, sql: &str) -> anyhow::Result<i64> {
        let n: i64 = on_pool!(self, p => sqlx::query_scalar(sql).fetch_one(p).await?);
        Ok(n)
    }

    pub async fn read_count(&self) -> anyhow::Result<i64> {
        self.count("SELECT count(*) FROM messages WHERE status = 'read'")
            .await
    }

    pub async fn with_provider_id(&self) -> anyhow::Result<i64> {
        self.count("SELECT count(*) FROM messages WHERE provider_message_id IS NOT NULL")
            .await
    }

    pub async fn message_times(&self) -> anyhow::Result<Vec<MessageTimes>> {
        const SQL: &str = "SELECT m.queued_at,
                (SELECT min(a.finished_at) FROM delivery_attempts a
                  WHERE a.message_id = m.id AND a.outcome = 'accepted'),
                m.read_at
             FROM messages m";
        let rows: Vec<(i64, Option<i64>, Option<i64>)> =
            on_pool!(self, p => sqlx::query_as(SQL).fetch_all(p).await?);
        Ok(rows
            .into_iter()
            .map(|(queued_at, accepted_by_graph, read_at)| MessageTimes {
                queued_at,
                accepted_by_graph,
                read_at,
            })
            .collect())
    }

    /// `(wamid, wa_id or phone number)` of every message the provider accepted.
    pub async fn provider_ids(&self) -> anyhow::Result<Vec<(String, String)>> {
        const SQL: &str = "SELECT provider_message_id, coalesce(wa_id, phone_number)
             FROM messages WHERE provider_message_id IS NOT NULL ORDER BY queued_at";
        let rows: Vec<(String, String)> =
            on_pool!(self, p => sqlx::query_as(SQL).fetch_all(p).await?);
        Ok(rows)
    }

    /// First and last Graph API acceptance (ms) and how many there were.
    pub async fn acceptance_span(&self) -> anyhow::Result<(Option<i64>, Option<i64>, i64)> {
        const SQL: &str = "SELECT min(finished_at), max(finished_at), count(*)
             FROM delivery_attempts WHERE outcome = 'accepted'";
        let row: (Option<i64>, Option<i64>, i64) =
            on_pool!(self, p => sqlx::query_as(SQL).fetch_one(p).await?);
        Ok(row)
    }
}

/// `server` with its database name replaced by `database`.
pub fn pg_url_for(server: &str, database: &str) -> anyhow::Result<String> {
    let mut url = reqwest::Url::parse(server).with_context(|| format!("parsing {server}"))?;
    url.set_path(&format!("/{database}"));
    Ok(url.to_string())
}

/// Creates `plantilla_bench_<random>` on the server; returns its name and URL.
pub async fn create_pg_database(server: &str) -> anyhow::Result<(String, String)> {
    let mut conn = PgConnection::connect(server)
        .await
        .with_context(|| format!("connecting to {server}"))?;
    let name = format!("plantilla_bench_{:08x}", rand::random::<u32>());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .with_context(|| format!("CREATE DATABASE {name}"))?;
    conn.close().await?;
    let url = pg_url_for(server, &name)?;
    Ok((name, url))
}

pub async fn drop_pg_database(server: &str, name: &str) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(server).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .with_context(|| format!("DROP DATABASE {name}"))?;
    conn.close().await?;
    Ok(())
}
