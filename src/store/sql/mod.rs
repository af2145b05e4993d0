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

pub(crate) use writes::{accept_with, claimed_jobs, each_in_savepoint, outcome_is_stale};

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

/// A value a column of either database can be read as.
pub(crate) trait Col:
    for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}
impl<T> Col for T where
    T: for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}

/// A row of either database.
pub(crate) enum Row {
    Sqlite(SqliteRow),
    Postgres(PgRow),
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
        }
    }

    fn flag(&self, name: &str) -> StoreResult<bool> {
        match self {
            Row::Sqlite(r) => r.flag(name),
            Row::Postgres(r) => r.flag(name),
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
/// database.
pub(crate) enum Db<'a> {
    Sqlite(&'a SqlitePool),
    SqliteConn(&'a mut SqliteConnection),
    Postgres(&'a PgPool),
    PostgresConn(&'a mut PgConnection),
}

impl Db<'_> {
    /// `sqlite` on SQLite, `postgres` on PostgreSQL: for the one word a shared statement
    /// writes differently.
    pub fn pick<'t>(&self, sqlite: &'t str, postgres: &'t str) -> &'t str {
        match self {
            Db::Sqlite(_) | Db::SqliteConn(_) => sqlite,
            Db::Postgres(_) | Db::PostgresConn(_) => postgres,
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
            Db::Postgres(p) => wrap(q.postgres().fetch_all(*p).await?, Row::Postgres),
            Db::PostgresConn(c) => wrap(q.postgres().fetch_all(&mut **c).await?, Row::Postgres),
        })
    }

    /// The first row of `q`, if any.
    pub async fn opt(&mut self, q: Sql<'_>) -> StoreResult<Option<Row>> {
        Ok(match self {
            Db::Sqlite(p) => q.sqlite().fetch_optional(*p).await?.map(Row::Sqlite),
            Db::SqliteConn(c) => q.sqlite().fetch_optional(&mut **c).await?.map(Row::Sqlite),
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
            Db::Postgres(p) => Row::Postgres(q.postgres().fetch_one(*p).await?),
            Db::PostgresConn(c) => Row::Postgres(q.postgres().fetch_one(&mut **c).await?),
        })
    }

    /// Runs `q`; the number of rows it changed.
    pub async fn run(&mut self, q: Sql<'_>) -> StoreResult<u64> {
        Ok(match self {
            Db::Sqlite(p) => q.sqlite().execute(*p).await?.rows_affected(),
            Db::SqliteConn(c) => q.sqlite().execute(&mut **c).await?.rows_affected(),
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
