//! The SQL both backends share, written once.
//!
//! Most of what the store does is the same statement on SQLite and PostgreSQL: the CRUD of
//! channels, templates, endpoints and keys, every listing and lookup, the row mappings, and
//! the steps of the hot writes that both engines take alike (`writes`). Those are written
//! here once, as methods of [`Shared`] (or of [`Db`], for a step run inside an engine's own
//! transaction), with PostgreSQL's `$N` placeholders (sqlx binds `$N` on SQLite too). A
//! statement is a [`Sql`] (its text and borrowed arguments), run by a [`Db`] (either
//! database, a pool or a transaction), which answers [`Row`]s; rows are read by column name
//! through [`Cols`], which the drivers' own rows implement too.
//!
//! What the engines do differently stays in `sqlite.rs` and `postgres.rs` (and
//! `postgres/outcomes.rs`): SQLite's single writer and its group commit, PostgreSQL's lock
//! order, `SKIP LOCKED` claims, `LISTEN/NOTIFY` and its statements from arrays. Where a shared
//! statement needs one word that differs (a collation, `max`/`GREATEST`, a row lock that only
//! PostgreSQL needs), [`Db::pick`] chooses the text.
//!
//! Why an enum over the two drivers and not code generic over `sqlx::Database`: the
//! generic form needs the same half-dozen higher-ranked bounds on every function, and a
//! `dyn Store` cannot carry a type parameter anyway; a `match` per statement costs nothing
//! next to the statement.

mod accounts;
mod callbacks;
mod messages;
mod templates;
mod writes;

pub(crate) use callbacks::pending_in_order;
pub(crate) use writes::{
    Cancelled, accept_with, cancels_follow, claimed_jobs, each_in_savepoint, outcome_is_stale,
    record_accepted_sql,
};

use std::borrow::Cow;
use std::sync::Arc;

use sqlx::postgres::{PgConnection, PgPool, PgRow};
use sqlx::sqlite::{SqliteConnection, SqlitePool, SqliteRow};
use sqlx::{Decode, Postgres, Row as _, Sqlite, Type};

use super::StoreResult;
use super::lookups::Lookups;
use crate::secrets::Cipher;

/// One argument of a statement, borrowed from the caller.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    Text(Option<&'a str>),
    Int(Option<i64>),
    Bool(Option<bool>),
    Real(Option<f64>),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(Some(v))
    }
}
impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(Some(v))
    }
}
impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::Text(v)
    }
}
impl<'a> From<&'a Option<String>> for Arg<'a> {
    fn from(v: &'a Option<String>) -> Self {
        Arg::Text(v.as_deref())
    }
}
impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}
impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}
impl From<i32> for Arg<'_> {
    fn from(v: i32) -> Self {
        Arg::Int(Some(v.into()))
    }
}
impl From<u32> for Arg<'_> {
    fn from(v: u32) -> Self {
        Arg::Int(Some(v.into()))
    }
}
impl From<bool> for Arg<'_> {
    fn from(v: bool) -> Self {
        Arg::Bool(Some(v))
    }
}
impl From<Option<bool>> for Arg<'_> {
    fn from(v: Option<bool>) -> Self {
        Arg::Bool(v)
    }
}
impl From<f64> for Arg<'_> {
    fn from(v: f64) -> Self {
        Arg::Real(Some(v))
    }
}
impl From<Option<f64>> for Arg<'_> {
    fn from(v: Option<f64>) -> Self {
        Arg::Real(v)
    }
}

/// A statement: its text (with `$N` placeholders) and its arguments in order.
#[derive(Debug, Clone)]
pub(crate) struct Sql<'a> {
    text: Cow<'a, str>,
    args: Vec<Arg<'a>>,
}

/// Starts a statement (a `&'static str`, or a `String` made with [`Db::pick`]).
pub(crate) fn sql<'a>(text: impl Into<Cow<'a, str>>) -> Sql<'a> {
    Sql {
        text: text.into(),
        args: Vec::new(),
    }
}

impl<'a> Sql<'a> {
    /// Binds the next `$N`.
    pub fn bind(mut self, arg: impl Into<Arg<'a>>) -> Self {
        self.args.push(arg.into());
        self
    }

    fn sqlite(&self) -> sqlx::query::Query<'_, Sqlite, sqlx::sqlite::SqliteArguments<'_>> {
        let mut q = sqlx::query(&self.text);
        for a in &self.args {
            q = match *a {
                Arg::Text(v) => q.bind(v),
                Arg::Int(v) => q.bind(v),
                Arg::Bool(v) => q.bind(v),
                Arg::Real(v) => q.bind(v),
            };
        }
        q
    }

    /// The statement prepared (from `c`'s cache) with its arguments bound. Each parameter
    /// takes the argument its name numbers, as sqlx binds them: `$N` and `?N` are the Nth,
    /// a bare `?` the one at its position.
    fn sync_prepared<'c>(
        &self,
        c: &'c rusqlite::Connection,
    ) -> rusqlite::Result<rusqlite::CachedStatement<'c>> {
        let mut stmt = c.prepare_cached(&self.text)?;
        for i in 1..=stmt.parameter_count() {
            let n = match stmt.parameter_name(i) {
                Some(name) => name
                    .get(1..)
                    .and_then(|n| n.parse::<usize>().ok())
                    .ok_or(rusqlite::Error::InvalidParameterName(name.to_string()))?,
                None => i,
            };
            let arg = n
                .checked_sub(1)
                .and_then(|n| self.args.get(n))
                .ok_or(rusqlite::Error::InvalidParameterCount(n, self.args.len()))?;
            match *arg {
                Arg::Text(v) => stmt.raw_bind_parameter(i, v)?,
                Arg::Int(v) => stmt.raw_bind_parameter(i, v)?,
                Arg::Bool(v) => stmt.raw_bind_parameter(i, v)?,
                Arg::Real(v) => stmt.raw_bind_parameter(i, v)?,
            }
        }
        Ok(stmt)
    }

    /// Up to `limit` rows of the statement run on `c`.
    fn sync_rows(&self, c: &rusqlite::Connection, limit: usize) -> rusqlite::Result<Vec<Row>> {
        let mut stmt = self.sync_prepared(c)?;
        let names: Arc<[String]> = stmt.column_names().into_iter().map(String::from).collect();
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while out.len() < limit
            && let Some(row) = rows.next()?
        {
            let values = (0..names.len())
                .map(|i| row.get::<_, rusqlite::types::Value>(i))
                .collect::<rusqlite::Result<_>>()?;
            out.push(Row::Sync(SyncRow {
                names: names.clone(),
                values,
            }));
        }
        Ok(out)
    }

    /// Runs the statement on `c` to its end; the number of rows it changed.
    fn sync_run(&self, c: &rusqlite::Connection) -> rusqlite::Result<u64> {
        let mut stmt = self.sync_prepared(c)?;
        let mut rows = stmt.raw_query();
        while rows.next()?.is_some() {}
        drop(rows);
        Ok(c.changes())
    }

    fn postgres(&self) -> sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments> {
        let mut q = sqlx::query(&self.text);
        for a in &self.args {
            q = match *a {
                Arg::Text(v) => q.bind(v),
                Arg::Int(v) => q.bind(v),
                Arg::Bool(v) => q.bind(v),
                Arg::Real(v) => q.bind(v),
            };
        }
        q
    }
}

/// A value a column of either database (through either SQLite driver) can be read as.
pub(crate) trait Col:
    for<'r> Decode<'r, Sqlite>
    + Type<Sqlite>
    + for<'r> Decode<'r, Postgres>
    + Type<Postgres>
    + rusqlite::types::FromSql
{
}
impl<T> Col for T where
    T: for<'r> Decode<'r, Sqlite>
        + Type<Sqlite>
        + for<'r> Decode<'r, Postgres>
        + Type<Postgres>
        + rusqlite::types::FromSql
{
}

/// A row of either database.
pub(crate) enum Row {
    Sqlite(SqliteRow),
    Postgres(PgRow),
    /// A row read on SQLite's writer thread ([`Db::Sync`]), with its values owned.
    Sync(SyncRow),
}

/// A row read through rusqlite: its statement's column names (shared by its rows) and
/// its values.
pub(crate) struct SyncRow {
    names: Arc<[String]>,
    values: Vec<rusqlite::types::Value>,
}

impl Cols for SyncRow {
    fn get<T: Col>(&self, name: &str) -> StoreResult<T> {
        let i = self
            .names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| anyhow::anyhow!("no column found for name: {name}"))?;
        let value = rusqlite::types::ValueRef::from(&self.values[i]);
        T::column_result(value)
            .map_err(|e| anyhow::anyhow!("error decoding column {name}: {e}").into())
    }

    fn flag(&self, name: &str) -> StoreResult<bool> {
        Ok(self.get::<i64>(name)? != 0)
    }
}

/// Reading a row's columns by name: the row mappings are written once against this, and
/// read a [`Row`] or either driver's own row (the backends' own statements use them too).
pub(crate) trait Cols {
    /// The column named `name`, as `T`.
    fn get<T: Col>(&self, name: &str) -> StoreResult<T>;

    /// A 0/1 (SQLite) or boolean (PostgreSQL) column.
    fn flag(&self, name: &str) -> StoreResult<bool>;
}

impl Cols for SqliteRow {
    fn get<T: Col>(&self, name: &str) -> StoreResult<T> {
        Ok(self.try_get(name)?)
    }

    fn flag(&self, name: &str) -> StoreResult<bool> {
        Ok(self.try_get::<i64, _>(name)? != 0)
    }
}

impl Cols for PgRow {
    fn get<T: Col>(&self, name: &str) -> StoreResult<T> {
        Ok(self.try_get(name)?)
    }

    fn flag(&self, name: &str) -> StoreResult<bool> {
        Ok(self.try_get(name)?)
    }
}

impl Cols for Row {
    fn get<T: Col>(&self, name: &str) -> StoreResult<T> {
        match self {
            Row::Sqlite(r) => Cols::get(r, name),
            Row::Postgres(r) => Cols::get(r, name),
            Row::Sync(r) => r.get(name),
        }
    }

    fn flag(&self, name: &str) -> StoreResult<bool> {
        match self {
            Row::Sqlite(r) => r.flag(name),
            Row::Postgres(r) => r.flag(name),
            Row::Sync(r) => r.flag(name),
        }
    }
}

/// What a statement answered, read with a row mapping (`Message::from_row`, …): the first row
/// that does not map is the error.
pub(crate) trait Mapped {
    type Of<T>;
    fn mapped<T>(&self, f: impl Fn(&Row) -> StoreResult<T>) -> StoreResult<Self::Of<T>>;
}

impl Mapped for Option<Row> {
    type Of<T> = Option<T>;
    fn mapped<T>(&self, f: impl Fn(&Row) -> StoreResult<T>) -> StoreResult<Option<T>> {
        self.as_ref().map(f).transpose()
    }
}

impl Mapped for Vec<Row> {
    type Of<T> = Vec<T>;
    fn mapped<T>(&self, f: impl Fn(&Row) -> StoreResult<T>) -> StoreResult<Vec<T>> {
        self.iter().map(f).collect()
    }
}

/// Where a statement runs: a pool or a connection (a transaction derefs to one) of either
/// database, or SQLite's write connection as the writer thread holds it (`Sync`: each
/// statement runs on the calling thread, and the future answers without waiting).
pub(crate) enum Db<'a> {
    Sqlite(&'a SqlitePool),
    SqliteConn(&'a mut SqliteConnection),
    Sync(&'a mut rusqlite::Connection),
    Postgres(&'a PgPool),
    PostgresConn(&'a mut PgConnection),
}

impl Db<'_> {
    /// `sqlite` on SQLite, `postgres` on PostgreSQL: for the one word a shared statement
    /// writes differently.
    pub fn pick<'t>(&self, sqlite: &'t str, postgres: &'t str) -> &'t str {
        match self {
            Db::Sqlite(_) | Db::SqliteConn(_) | Db::Sync(_) => sqlite,
            Db::Postgres(_) | Db::PostgresConn(_) => postgres,
        }
    }

    /// Whether this is PostgreSQL (for a statement only its schema needs).
    pub fn is_postgres(&self) -> bool {
        matches!(self, Db::Postgres(_) | Db::PostgresConn(_))
    }

    /// The same place, borrowed again (to hand to a step while keeping this one).
    pub fn reborrow(&mut self) -> Db<'_> {
        match self {
            Db::Sqlite(p) => Db::Sqlite(p),
            Db::SqliteConn(c) => Db::SqliteConn(c),
            Db::Sync(c) => Db::Sync(c),
            Db::Postgres(p) => Db::Postgres(p),
            Db::PostgresConn(c) => Db::PostgresConn(c),
        }
    }

    /// `ORDER BY` words that sort ids byte by byte on both databases (SQLite's default
    /// collation; PostgreSQL's `"C"`), so ties come out in the same order.
    pub fn by_id(&self) -> &'static str {
        self.pick("id", "id COLLATE \"C\"")
    }

    /// Every row of `q`.
    pub async fn all(&mut self, q: Sql<'_>) -> StoreResult<Vec<Row>> {
        Ok(match self {
            Db::Sqlite(p) => wrap(q.sqlite().fetch_all(*p).await?, Row::Sqlite),
            Db::SqliteConn(c) => wrap(q.sqlite().fetch_all(&mut **c).await?, Row::Sqlite),
            Db::Sync(c) => q.sync_rows(c, usize::MAX)?,
            Db::Postgres(p) => wrap(q.postgres().fetch_all(*p).await?, Row::Postgres),
            Db::PostgresConn(c) => wrap(q.postgres().fetch_all(&mut **c).await?, Row::Postgres),
        })
    }

    /// The first row of `q`, if any.
    pub async fn opt(&mut self, q: Sql<'_>) -> StoreResult<Option<Row>> {
        Ok(match self {
            Db::Sqlite(p) => q.sqlite().fetch_optional(*p).await?.map(Row::Sqlite),
            Db::SqliteConn(c) => q.sqlite().fetch_optional(&mut **c).await?.map(Row::Sqlite),
            Db::Sync(c) => q.sync_rows(c, 1)?.pop(),
            Db::Postgres(p) => q.postgres().fetch_optional(*p).await?.map(Row::Postgres),
            Db::PostgresConn(c) => q
                .postgres()
                .fetch_optional(&mut **c)
                .await?
                .map(Row::Postgres),
        })
    }

    /// The one row `q` must answer.
    pub async fn one(&mut self, q: Sql<'_>) -> StoreResult<Row> {
        Ok(match self {
            Db::Sqlite(p) => Row::Sqlite(q.sqlite().fetch_one(*p).await?),
            Db::SqliteConn(c) => Row::Sqlite(q.sqlite().fetch_one(&mut **c).await?),
            Db::Sync(c) => q.sync_rows(c, 1)?.pop().ok_or(sqlx::Error::RowNotFound)?,
            Db::Postgres(p) => Row::Postgres(q.postgres().fetch_one(*p).await?),
            Db::PostgresConn(c) => Row::Postgres(q.postgres().fetch_one(&mut **c).await?),
        })
    }

    /// Runs `q`; the number of rows it changed.
    pub async fn run(&mut self, q: Sql<'_>) -> StoreResult<u64> {
        Ok(match self {
            Db::Sqlite(p) => q.sqlite().execute(*p).await?.rows_affected(),
            Db::SqliteConn(c) => q.sqlite().execute(&mut **c).await?.rows_affected(),
            Db::Sync(c) => q.sync_run(c)?,
            Db::Postgres(p) => q.postgres().execute(*p).await?.rows_affected(),
            Db::PostgresConn(c) => q.postgres().execute(&mut **c).await?.rows_affected(),
        })
    }
}

fn wrap<R>(rows: Vec<R>, f: fn(R) -> Row) -> Vec<Row> {
    rows.into_iter().map(f).collect()
}

/// The pools of one database.
#[derive(Clone)]
pub(crate) enum Pools {
    /// SQLite: the one write connection and the read-only pool.
    Sqlite {
        write: SqlitePool,
        read: SqlitePool,
    },
    Postgres(PgPool),
}

/// What the shared statements run with: the pools, the cipher that seals channel secrets,
/// and the 1 s lookups every read of a channel, account, template or group goes through.
pub struct Shared {
    pools: Pools,
    pub(crate) cipher: Arc<Cipher>,
    pub(crate) lookups: Arc<Lookups>,
}

impl Shared {
    pub(crate) fn new(pools: Pools, lookups: Arc<Lookups>) -> Self {
        Self {
            pools,
            cipher: Arc::new(Cipher::none()),
            lookups,
        }
    }

    /// For reads: SQLite's read-only pool, or the PostgreSQL pool.
    pub(crate) fn read(&self) -> Db<'_> {
        match &self.pools {
            Pools::Sqlite { read, .. } => Db::Sqlite(read),
            Pools::Postgres(p) => Db::Postgres(p),
        }
    }

    /// For writes that are not part of a group: SQLite's write connection, or the
    /// PostgreSQL pool.
    pub(crate) fn write(&self) -> Db<'_> {
        match &self.pools {
            Pools::Sqlite { write, .. } => Db::Sqlite(write),
            Pools::Postgres(p) => Db::Postgres(p),
        }
    }

    /// A write transaction. On SQLite it holds the write lock from its first statement
    /// (`BEGIN IMMEDIATE`): one that began by reading could not wait for another writer.
    pub(crate) async fn begin(&self) -> StoreResult<Tx> {
        Ok(match &self.pools {
            Pools::Sqlite { write, .. } => Tx::Sqlite(write.begin_with("BEGIN IMMEDIATE").await?),
            Pools::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }
}

/// A write transaction of either database; rolled back when dropped uncommitted.
pub(crate) enum Tx {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

impl Tx {
    /// Where the transaction's statements run.
    pub fn db(&mut self) -> Db<'_> {
        match self {
            Tx::Sqlite(t) => Db::SqliteConn(t),
            Tx::Postgres(t) => Db::PostgresConn(t),
        }
    }

    pub async fn commit(self) -> StoreResult<()> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    /// One row of every kind of column, read by both SQLite drivers.
    #[derive(Debug, PartialEq)]
    struct Kinds {
        text: String,
        int: i64,
        real: f64,
        flag: bool,
        null_text: Option<String>,
        null_int: Option<i64>,
        some_text: Option<String>,
    }

    fn kinds(r: &impl Cols) -> StoreResult<Kinds> {
        Ok(Kinds {
            text: r.get("text")?,
            int: r.get("int")?,
            real: r.get("real")?,
            flag: r.flag("flag")?,
            null_text: r.get("null_text")?,
            null_int: r.get("null_int")?,
            some_text: r.get("some_text")?,
        })
    }

    /// Writes the same rows through `db` and reads them back as `Kinds`: the statements
    /// use `$N` out of order and repeated, as the shared statements do.
    async fn write_and_read(db: &mut Db<'_>, table: &str) -> StoreResult<(u64, Vec<Kinds>)> {
        db.run(sql(format!(
            "CREATE TABLE {table} (id INTEGER PRIMARY KEY, text TEXT NOT NULL,
                int INTEGER NOT NULL, real REAL NOT NULL, flag INTEGER NOT NULL,
                null_text TEXT, null_int INTEGER, some_text TEXT)"
        )))
        .await?;
        for (id, text, flag) in [(1_i64, "héllo 'x'", true), (2, "", false)] {
            db.run(
                sql(format!(
                    "INSERT INTO {table} (some_text, id, text, int, real, flag, null_text, null_int)
                     VALUES ($7, $6, $1, $2 * $2, $3, $4, $5, $8)"
                ))
                .bind(text)
                .bind(-7_i64 * id)
                .bind(2.5 * id as f64)
                .bind(flag)
                .bind(None::<&str>)
                .bind(id)
                .bind(Some("kept"))
                .bind(None::<i64>),
            )
            .await?;
        }
        let changed = db
            .run(
                sql(format!("UPDATE {table} SET int = int + $1 WHERE id >= $2"))
                    .bind(1)
                    .bind(1),
            )
            .await?;
        let rows = db
            .all(sql(format!("SELECT * FROM {table} ORDER BY id")))
            .await?
            .mapped(kinds)?;
        Ok((changed, rows))
    }

    #[tokio::test]
    async fn the_writer_threads_rows_read_as_sqlxs_do() {
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        let mut conn = pool.acquire().await.unwrap();
        let by_sqlx = write_and_read(&mut Db::SqliteConn(&mut conn), "a")
            .await
            .unwrap();

        let mut handle = conn.lock_handle().await.unwrap();
        // SAFETY: the handle is locked away from sqlx's worker while `c` lives, and `c` is
        // dropped before the lock.
        let mut c =
            unsafe { rusqlite::Connection::from_handle(handle.as_raw_handle().as_ptr()) }.unwrap();
        let mut db = Db::Sync(&mut c);
        let by_rusqlite = write_and_read(&mut db, "b").await.unwrap();
        assert_eq!(by_rusqlite, by_sqlx);
        assert_eq!(by_sqlx.0, 2);
        assert_eq!(
            by_sqlx.1[0],
            Kinds {
                text: "héllo 'x'".into(),
                int: 50,
                real: 2.5,
                flag: true,
                null_text: None,
                null_int: None,
                some_text: Some("kept".into()),
            }
        );
        assert_eq!(db.pick("sqlite", "postgres"), "sqlite");

        // Rows sqlx wrote read the same through rusqlite; `one`, `opt`, and a missing row.
        let row = db
            .one(sql("SELECT * FROM a WHERE id = $1").bind(2))
            .await
            .unwrap();
        assert_eq!(kinds(&row).unwrap(), by_sqlx.1[1]);
        assert!(
            db.opt(sql("SELECT * FROM a WHERE id = $1").bind(3))
                .await
                .unwrap()
                .is_none()
        );
        assert!(db.one(sql("SELECT * FROM a WHERE id = 3")).await.is_err());
        let row = db.one(sql("SELECT 1 AS one")).await.unwrap();
        assert!(
            row.get::<i64>("two").is_err(),
            "a missing column is an error"
        );
        assert!(row.get::<String>("one").is_err(), "an integer is not text");

        // A broken unique rule is a conflict, as through sqlx.
        let dup = sql("INSERT INTO a (id, text, int, real, flag) VALUES (1, '', 0, 0, 0)");
        assert!(matches!(
            db.run(dup.clone()).await,
            Err(StoreError::Conflict(_))
        ));
        drop(c);
        drop(handle);
        assert!(matches!(
            Db::SqliteConn(&mut conn).run(dup).await,
            Err(StoreError::Conflict(_))
        ));
    }
}
