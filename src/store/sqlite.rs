//! SQLite implementation of [`Store`].
//!
//! One file in WAL mode. Writes go through a pool of exactly one connection, so every write
//! transaction is serialized (SQLite has one writer anyway) and decisions such as "does this
//! number have a conversation" cannot race; reads use a separate pool and never wait for
//! writes.

use std::collections::HashMap;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

use super::lookups::Lookups;

mod claim;

use super::sql::{
    Cancelled, Cols, Db, Mapped, Tx, accept_with, cancels_follow, each_in_savepoint,
    outcome_is_stale, sql,
};
use super::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::{CancellationToken, DropGuard};

mod checkpoint;
pub use checkpoint::Checkpoints;

/// Embedded migrations, applied in order on open. Never edit one that has shipped: add a new one.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "cloud",
        include_str!("../../migrations/sqlite/0002_cloud.sql"),
    ),
    (
        3,
        "channel_owners",
        include_str!("../../migrations/sqlite/0003_channel_owners.sql"),
    ),
    (
        4,
        "native_api",
        include_str!("../../migrations/sqlite/0004_native_api.sql"),
    ),
    (
        5,
        "callbacks",
        include_str!("../../migrations/sqlite/0005_callbacks.sql"),
    ),
    (
        6,
        "leased_jobs",
        include_str!("../../migrations/sqlite/0006_leased_jobs.sql"),
    ),
    (
        7,
        "template_extra",
        include_str!("../../migrations/sqlite/0007_template_extra.sql"),
    ),
    (
        8,
        "pending_once",
        include_str!("../../migrations/sqlite/0008_pending_once.sql"),
    ),
    (
        9,
        "campaigns",
        include_str!("../../migrations/sqlite/0009_campaigns.sql"),
    ),
    (
        10,
        "console",
        include_str!("../../migrations/sqlite/0010_console.sql"),
    ),
    (
        11,
        "inbound",
        include_str!("../../migrations/sqlite/0011_inbound.sql"),
    ),
    (
        12,
        "suppressions",
        include_str!("../../migrations/sqlite/0012_suppressions.sql"),
    ),
    (
        13,
        "health",
        include_str!("../../migrations/sqlite/0013_health.sql"),
    ),
    (
        14,
        "partial_indexes",
        include_str!("../../migrations/sqlite/0014_partial_indexes.sql"),
    ),
    (
        15,
        "messages_by_conversation",
        include_str!("../../migrations/sqlite/0015_messages_by_conversation.sql"),
    ),
    (
        16,
        "in_flight_without_in_list",
        include_str!("../../migrations/sqlite/0016_in_flight_without_in_list.sql"),
    ),
];

pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
    /// The hot writes (sends, outcomes, statuses), committed in groups by `combine`.
    writes: mpsc::Sender<WriteOp>,
    /// Rows in `pending_statuses` (this process is the file's only sender): while there are
    /// none, a recorded send does not look for early statuses, a write saved per message.
    kept_statuses: AtomicI64,
    stats: Arc<GroupStats>,
    lookups: Arc<Lookups>,
    shared: super::sql::Shared,
    /// The write connection's commits as the checkpointer sees them.
    wal: Arc<checkpoint::WalWatch>,
    /// Stops the checkpointer when the store goes.
    _checkpointer: DropGuard,
}

/// What the group-commit task has done since the store opened.
#[derive(Debug, Default)]
pub struct GroupStats {
    /// Transactions committed for more than one write.
    pub groups: AtomicU64,
    /// Writes committed in those transactions.
    pub grouped_writes: AtomicU64,
    /// Groups rolled back because one of their writes failed (each write then ran alone).
    pub split: AtomicU64,
}

impl SqliteStore {
    pub async fn open(url: &str, synchronous: &str) -> anyhow::Result<Self> {
        let sync = match synchronous {
            "normal" => SqliteSynchronous::Normal,
            _ => SqliteSynchronous::Full,
        };
        let options = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("invalid SQLite URL '{url}'"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(sync)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // The one write connection is never closed while the store is open: the group
        // writer borrows its handle (`with_sync_conn`).
        //
        // Its statement journals (the undo of one statement inside a transaction, for a
        // multi-row write that fails half way) stay in memory instead of spilling to a temp
        // file past 64 KiB: a group's multi-row inserts (since written row by row) touched
        // more pages than that, and the spill's writes were 18 % of the group writer's time;
        // the `json_each` updates of a group still use one. Only what a statement changes
        // is held, and only while it runs. Durability is the WAL's, unchanged.
        //
        // It does not checkpoint: its commits wake the checkpointer instead (`checkpoint`).
        let wal = Arc::new(checkpoint::WalWatch::default());
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .idle_timeout(None)
            .max_lifetime(None)
            .after_connect({
                let wal = wal.clone();
                move |conn, _| {
                    let wal = wal.clone();
                    Box::pin(async move { checkpoint::watch_commits(conn, &wal).await })
                }
            })
            .connect_with(options.clone().pragma("temp_store", "memory"))
            .await
            .with_context(|| format!("cannot open SQLite database '{url}'"))?;
        let stop = CancellationToken::new();
        checkpoint::start(options.clone(), wal.clone(), stop.clone());
        let checkpointer = stop.drop_guard();
        migrate(&write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        let (writes, queue) = mpsc::channel(MAX_GROUP * 4);
        let stats = Arc::new(GroupStats::default());
        let lookups = Arc::new(Lookups::default());
        start_writer(write.clone(), queue, stats.clone(), lookups.clone())?;
        let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM pending_statuses")
            .fetch_one(&write)
            .await?;
        let shared = super::sql::Shared::new(
            super::sql::Pools::Sqlite {
                write: write.clone(),
                read: read.clone(),
            },
            lookups.clone(),
        );
        Ok(Self {
            write,
            read,
            writes,
            kept_statuses: AtomicI64::new(kept),
            stats,
            lookups,
            shared,
            wal,
            _checkpointer: checkpointer,
        })
    }

    /// What the WAL checkpointer has done, as it changes (for tests).
    #[doc(hidden)]
    pub fn checkpoints(&self) -> tokio::sync::watch::Receiver<Checkpoints> {
        self.wal.checkpoints()
    }

    /// How the hot writes were grouped (for tests and benchmarks).
    pub fn group_stats(&self) -> &GroupStats {
        &self.stats
    }

    /// The read-only pool (tests and tools look at the rows through it).
    pub fn read_pool(&self) -> &SqlitePool {
        &self.read
    }

    /// Test hook: decides `sends` as one group, the way concurrent sends are (no commit is
    /// shared with anything else).
    #[doc(hidden)]
    pub async fn accept_group(&self, sends: &[AcceptSend]) -> StoreResult<Vec<AcceptOutcome>> {
        let mut answers = Vec::with_capacity(sends.len());
        let ops: Vec<WriteOp> = sends
            .iter()
            .map(|send| {
                let (to, answer) = oneshot::channel();
                answers.push(answer);
                WriteOp::Accept(Box::new(send.clone()), to)
            })
            .collect();
        with_sync_conn(&self.write, async |c| {
            write_group(c, &ops, &self.lookups).await
        })
        .await??
        .into_iter()
        .map(|w| match w {
            Written::Accept(outcome) => Ok(outcome),
            _ => Err(anyhow::anyhow!("a send answered as another write").into()),
        })
        .collect()
    }

    /// Seals channel secrets with `cipher` (without one they are stored as given).
    pub fn with_cipher(mut self, cipher: Arc<Cipher>) -> Self {
        self.shared.cipher = cipher;
        self
    }
}

// --- Group commit ----------------------------------------------------------------------------
//
// SQLite has one writer and every commit is an fsync (with `synchronous=full`). Sends,
// delivery outcomes and statuses are the writes that come by the thousand, so they go to one
// thread (`start_writer`) that takes everything waiting (up to `MAX_GROUP`) and runs it in one
// transaction, each statement a plain call on that thread (`in_sync_tx`, `Db::Sync`):
// outcomes and statuses in arrival order, then the plain sends together (`accept_many`). The
// decisions are those of one transaction each in that order, since each operation sees the
// ones before it; only the commit is shared. Nobody waits for a group to fill: a lone
// write goes at once, and the writes that arrive during a commit make the next group. If any
// operation of a group fails, the group is rolled back and each operation runs again in its
// own transaction, so one failure is reported to its caller only. A webhook's statuses are
// one operation (`apply_statuses`): they are applied in order, in the same group, and fail
// together.

/// Most operations committed together.
const MAX_GROUP: usize = 256;

enum WriteOp {
    Accept(Box<AcceptSend>, oneshot::Sender<StoreResult<AcceptOutcome>>),
    Finish(AttemptOutcome, oneshot::Sender<StoreResult<Finished>>),
    /// A webhook's statuses (or one), applied in order: one write, so they share one
    /// transaction and fail or commit together.
    Statuses(
        Vec<StatusUpdate>,
        oneshot::Sender<StoreResult<Vec<StatusApplied>>>,
    ),
}

enum Written {
    Accept(AcceptOutcome),
    Finish(Finished),
    Statuses(Vec<StatusApplied>),
}

impl WriteOp {
    async fn run(&self, db: &mut Db<'_>, lookups: &Lookups) -> StoreResult<Written> {
        Ok(match self {
            WriteOp::Accept(send, _) => Written::Accept(accept_in(db, send).await?),
            WriteOp::Finish(outcome, _) => Written::Finish(finish_in(db, lookups, outcome).await?),
            WriteOp::Statuses(updates, _) => {
                let mut applied = Vec::with_capacity(updates.len());
                for update in updates {
                    applied.push(apply_in(db, lookups, update).await?);
                }
                Written::Statuses(applied)
            }
        })
    }

    /// Whether the caller has stopped waiting for the answer.
    fn abandoned(&self) -> bool {
        match self {
            WriteOp::Accept(_, to) => to.is_closed(),
            WriteOp::Finish(_, to) => to.is_closed(),
            WriteOp::Statuses(_, to) => to.is_closed(),
        }
    }

    /// Answers the caller (who may have gone: then nobody is told).
    fn reply(self, result: StoreResult<Written>) {
        fn pick<T>(
            r: StoreResult<Written>,
            f: impl FnOnce(Written) -> Option<T>,
        ) -> StoreResult<T> {
            r.and_then(|w| f(w).ok_or_else(|| anyhow::anyhow!("mismatched write result").into()))
        }
        match self {
            WriteOp::Accept(_, to) => {
                let _ = to.send(pick(result, |w| match w {
                    Written::Accept(o) => Some(o),
                    _ => None,
                }));
            }
            WriteOp::Finish(_, to) => {
                let _ = to.send(pick(result, |w| match w {
                    Written::Finish(o) => Some(o),
                    _ => None,
                }));
            }
            WriteOp::Statuses(_, to) => {
                let _ = to.send(pick(result, |w| match w {
                    Written::Statuses(o) => Some(o),
                    _ => None,
                }));
            }
        }
    }
}

/// A write transaction, holding SQLite's write lock from its first statement: one that
/// began by reading could not wait for another writer (SQLite answers "database is locked"
/// at once rather than let a stale snapshot write), so it takes the lock up front and waits
/// for it (`busy_timeout`).
async fn begin_write(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// Statements the group writer keeps prepared within one session: more than the group path
/// has texts (every one of them is fixed now; a multi-row text per group size once was).
const PREPARED: usize = 128;

/// Longest the group writer holds the write connection while its queue keeps it busy, and
/// most transactions it commits before it lets the connection go: the writes that go
/// through sqlx (claims, admin, everything outside the group writer) wait for that
/// connection, and get it then.
const SESSION_TIME: Duration = Duration::from_millis(5);
const SESSION_TRANSACTIONS: u32 = 32;

/// The write connection as rusqlite sees it, for one session of the group writer. What it
/// did not commit is rolled back when it is dropped, and its prepared statements are
/// finalized then (rusqlite's `Drop`), before sqlx may use or close the handle again.
struct SyncConn(rusqlite::Connection);

impl Drop for SyncConn {
    fn drop(&mut self) {
        if !self.0.is_autocommit() {
            let _ = self.0.execute_batch("ROLLBACK");
        }
    }
}

/// Runs `f` with the write connection held for the group writer: the pool's one connection
/// is taken and its handle locked away from sqlx's worker thread until `f` is done, so every
/// statement `f` makes is a plain call on this thread, and the statements it prepares stay
/// prepared until then (and are finalized before the connection goes back to the pool).
async fn with_sync_conn<R>(
    pool: &SqlitePool,
    f: impl AsyncFnOnce(&mut rusqlite::Connection) -> R,
) -> StoreResult<R> {
    let mut conn = pool.acquire().await?;
    let mut handle = conn.lock_handle().await?;
    // SAFETY: while `handle` lives, sqlx's worker thread makes no call on this connection;
    // `c` (with its prepared statements) is dropped before `handle`, being declared after
    // it, and rusqlite does not close a connection made `from_handle`.
    let raw = handle.as_raw_handle().as_ptr();
    let mut c = SyncConn(unsafe { rusqlite::Connection::from_handle(raw)? });
    c.0.set_prepared_statement_cache_capacity(PREPARED);
    Ok(f(&mut c.0).await)
}

/// Runs `f` in one write transaction (`BEGIN IMMEDIATE`) on the group writer's connection.
/// `f` answering `None` or failing rolls the transaction back.
async fn in_sync_tx<T>(
    c: &mut rusqlite::Connection,
    f: impl AsyncFnOnce(&mut Db<'_>) -> StoreResult<Option<T>>,
) -> StoreResult<Option<T>> {
    c.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let done = async {
        let done = f(&mut Db::Sync(c)).await?;
        if done.is_some() {
            c.prepare_cached("COMMIT")?.execute([])?;
        }
        Ok(done)
    }
    .await;
    if !c.is_autocommit() {
        // Failed, refused or not committed: nothing of it is kept. A connection still in a
        // transaction after this ends the session (`SyncConn`'s drop tries again).
        let _ = c.prepare_cached("ROLLBACK").and_then(|mut s| s.execute([]));
    }
    done
}

/// Runs `op` in a transaction of its own. A caller that stopped waiting before the commit
/// (its request timed out, so it was told nothing was done) gets its write rolled back, as
/// when its own future held the transaction.
async fn write_alone(c: &mut rusqlite::Connection, op: WriteOp, lookups: &Lookups) {
    if op.abandoned() {
        return;
    }
    let result = in_sync_tx(c, async |db| {
        let written = op.run(db, lookups).await?;
        Ok((!op.abandoned()).then_some(written))
    })
    .await;
    match result {
        Ok(Some(written)) => op.reply(Ok(written)),
        Ok(None) => {}
        Err(e) => op.reply(Err(e)),
    }
}

/// Starts the group writer: a thread of its own ("sqlite-writer"), so the synchronous
/// statements and the commit's fsync never hold up the runtime's workers, running
/// [`combine`] until every sender is gone (the store dropped).
fn start_writer(
    pool: SqlitePool,
    queue: mpsc::Receiver<WriteOp>,
    stats: Arc<GroupStats>,
    lookups: Arc<Lookups>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("the SQLite writer's runtime")?;
    std::thread::Builder::new()
        .name("sqlite-writer".into())
        .spawn(move || runtime.block_on(combine(pool, queue, stats, lookups)))
        .context("the SQLite writer's thread")?;
    Ok(())
}

/// Commits the queued writes in groups until every sender is gone. The write connection is
/// held (a session, `with_sync_conn`) while the queue has work, so consecutive groups keep
/// their prepared statements and cost no round trip to sqlx's worker; it goes back to the
/// pool when the queue is empty, and after `SESSION_TIME` or `SESSION_TRANSACTIONS`, so the
/// writes waiting on the pool take their turn.
async fn combine(
    pool: SqlitePool,
    mut queue: mpsc::Receiver<WriteOp>,
    stats: Arc<GroupStats>,
    lookups: Arc<Lookups>,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while queue.recv_many(&mut group, MAX_GROUP).await > 0 {
        let session = with_sync_conn(&pool, async |c| {
            let started = std::time::Instant::now();
            let mut transactions = 0;
            loop {
                transactions += commit_queued(c, &mut group, &stats, &lookups).await;
                if transactions >= SESSION_TRANSACTIONS
                    || started.elapsed() >= SESSION_TIME
                    || !c.is_autocommit()
                {
                    return;
                }
                // What came during the commit makes the next group.
                while group.len() < MAX_GROUP
                    && let Ok(op) = queue.try_recv()
                {
                    group.push(op);
                }
                if group.is_empty() {
                    return;
                }
            }
        })
        .await;
        if let Err(e) = session {
            // No connection: every write waiting is told.
            tracing::warn!(error = %e, writes = group.len(), "the SQLite writer has no connection");
            for op in group.drain(..) {
                op.reply(Err(
                    anyhow::anyhow!("the SQLite write connection: {e}").into()
                ));
            }
        }
    }
}

/// Commits `group` (emptied) on `c`, in one transaction when it can; the transactions it
/// took.
async fn commit_queued(
    c: &mut rusqlite::Connection,
    group: &mut Vec<WriteOp>,
    stats: &GroupStats,
    lookups: &Lookups,
) -> u32 {
    // A caller that stopped waiting (its request timed out) was told nothing was done: its
    // write must not happen later behind its back.
    group.retain(|op| !op.abandoned());
    match group.len() {
        0 => return 0,
        1 => {
            write_alone(c, group.pop().expect("one"), lookups).await;
            return 1;
        }
        _ => {}
    }
    match write_group(c, group, lookups).await {
        Ok(results) => {
            stats.groups.fetch_add(1, Ordering::Relaxed);
            stats
                .grouped_writes
                .fetch_add(results.len() as u64, Ordering::Relaxed);
            for (op, result) in group.drain(..).zip(results) {
                op.reply(Ok(result));
            }
            1
        }
        Err(e) => {
            stats.split.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, writes = group.len(), "group commit failed; writing one by one");
            let transactions = 1 + group.len() as u32;
            for op in group.drain(..) {
                write_alone(c, op, lookups).await;
            }
            transactions
        }
    }
}

/// `group` in one transaction; nothing is kept if any of it fails.
async fn write_group(
    c: &mut rusqlite::Connection,
    group: &[WriteOp],
    lookups: &Lookups,
) -> StoreResult<Vec<Written>> {
    in_sync_tx(c, async |db| group_in(db, group, lookups).await.map(Some))
        .await?
        .ok_or_else(|| anyhow::anyhow!("a group answered nothing").into())
}

/// `group`'s writes in the caller's transaction (see `write_group`).
async fn group_in(
    db: &mut Db<'_>,
    group: &[WriteOp],
    lookups: &Lookups,
) -> StoreResult<Vec<Written>> {
    let mut results: Vec<Option<Written>> = group.iter().map(|_| None).collect();
    // Plain sends are decided together, after the group's other writes: all of them were
    // waiting at once, so any order is one they could have arrived in.
    let mut plain: Vec<(usize, &AcceptSend)> = Vec::new();
    for (i, op) in group.iter().enumerate() {
        match op {
            WriteOp::Accept(send, _) if send.idempotency.is_none() => plain.push((i, send)),
            _ => results[i] = Some(op.run(db, lookups).await?),
        }
    }
    if !plain.is_empty() {
        let sends: Vec<&AcceptSend> = plain.iter().map(|&(_, send)| send).collect();
        for ((i, _), outcome) in plain.iter().zip(accept_many(db, &sends).await?) {
            results[*i] = Some(Written::Accept(outcome));
        }
    }
    let results: Vec<Written> = results
        .into_iter()
        .map(|r| r.expect("every write ran"))
        .collect();
    if group.iter().any(WriteOp::abandoned) {
        // Someone stopped waiting: their write must not commit, the others' may (the
        // transaction is rolled back, and each runs alone).
        return Err(anyhow::anyhow!("a caller stopped waiting").into());
    }
    Ok(results)
}

impl SqliteStore {
    /// Queues `op` for the group-commit task and waits for its answer.
    async fn write<T>(
        &self,
        op: impl FnOnce(oneshot::Sender<StoreResult<T>>) -> WriteOp,
    ) -> StoreResult<T> {
        let (to, answer) = oneshot::channel();
        self.writes
            .send(op(to))
            .await
            .map_err(|_| anyhow::anyhow!("the SQLite writer has stopped"))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the SQLite writer dropped a write"))?
    }
}

async fn migrate(pool: &SqlitePool) -> anyhow::Result<()> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    )
    .execute(pool)
    .await?;
    for (version, name, sql) in MIGRATIONS {
        let mut tx = begin_write(pool).await?;
        let done: Option<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = ?")
                .bind(version)
                .fetch_optional(&mut *tx)
                .await?;
        if done.is_some() {
            continue;
        }
        sqlx::raw_sql(sql)
            .execute(&mut *tx)
            .await
            .with_context(|| format!("migration {version} ({name}) failed"))?;
        sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)")
            .bind(version)
            .bind(name)
            .bind(crate::now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version, name, "applied migration");
    }
    Ok(())
}

async fn insert_message_and_job(
    db: &mut Db<'_>,
    send: &AcceptSend,
    conversation_id: &str,
) -> StoreResult<()> {
    let params = serde_json::to_string(&send.params).context("params")?;
    let metadata = send.metadata.as_ref().map(|m| m.to_string());
    db.run(
        sql(
            "INSERT INTO messages (id, account_id, channel_id, conversation_id, template_id,
                phone_number, params, status, queued_at, updated_at, batch_id, callback_url,
                metadata, scheduled_for)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11, $12, $13)",
        )
        .bind(&send.new_message_id)
        .bind(&send.account_id)
        .bind(&send.channel_id)
        .bind(conversation_id)
        .bind(&send.template_id)
        .bind(&send.phone_number)
        .bind(&params)
        .bind(send.initial_status().as_str())
        .bind(send.now)
        .bind(&send.batch_id)
        .bind(&send.callback_url)
        .bind(&metadata)
        .bind(send.send_at),
    )
    .await?;
    db.run(
        sql("INSERT INTO delivery_jobs (message_id, channel_id, run_at) VALUES ($1, $2, $3)")
            .bind(&send.new_message_id)
            .bind(&send.channel_id)
            .bind(send.run_at()),
    )
    .await?;
    Ok(())
}

/// The pending conversation a send opens.
async fn insert_conversation(
    db: &mut Db<'_>,
    send: &AcceptSend,
    client_name: &str,
) -> StoreResult<()> {
    db.run(
        sql(
            "INSERT INTO conversations (id, account_id, channel_id, phone_number, status,
                assignee, group_id, client_name, first_message_id, created_at, last_activity_at)
             VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, $9, $9)",
        )
        .bind(&send.new_conversation_id)
        .bind(&send.account_id)
        .bind(&send.channel_id)
        .bind(&send.phone_number)
        .bind(send.assignee)
        .bind(&send.group_id)
        .bind(client_name)
        .bind(&send.new_message_id)
        .bind(send.now),
    )
    .await?;
    Ok(())
}

/// A send went out in an open conversation: its 24 hours count from now.
async fn touch_conversation(db: &mut Db<'_>, conversation_id: &str, now: i64) -> StoreResult<()> {
    db.run(
        sql("UPDATE conversations SET last_activity_at = $1 WHERE id = $2")
            .bind(now)
            .bind(conversation_id),
    )
    .await?;
    Ok(())
}

/// A message's conversation as read in the same transaction.
struct KnownConversation {
    status: ConversationStatus,
    first_message_id: Option<String>,
}

impl KnownConversation {
    /// From the columns `conversation_status` and `conversation_first`.
    fn from_row(r: &impl Cols) -> StoreResult<Self> {
        Ok(Self {
            status: r
                .get::<String>("conversation_status")?
                .parse()
                .map_err(anyhow::Error::msg)?,
            first_message_id: r.get("conversation_first")?,
        })
    }
}

/// Moves a pending conversation along after a status of one of its messages (`known`: its
/// conversation, when the caller has read it already).
async fn conversation_follows(
    db: &mut Db<'_>,
    lookups: &Lookups,
    message: &Message,
    status: MessageStatus,
    now: i64,
    known: Option<KnownConversation>,
) -> StoreResult<Option<(String, ConversationStatus)>> {
    let KnownConversation {
        status: current,
        first_message_id: first,
    } = match known {
        Some(known) => known,
        None => KnownConversation::from_row(
            &db.one(
                sql(
                    "SELECT status AS conversation_status, first_message_id AS conversation_first
                     FROM conversations WHERE id = $1",
                )
                .bind(&message.conversation_id),
            )
            .await?,
        )?,
    };
    let is_first = first.as_deref() == Some(message.id.as_str());
    let Some((next, reason)) = current.on_message_status(status, is_first) else {
        return Ok(None);
    };
    match next {
        ConversationStatus::Open => {
            db.run(
                sql("UPDATE conversations SET status = 'open', opened_at = $1,
                        last_activity_at = $1
                     WHERE id = $2 AND status = 'pending'")
                .bind(now)
                .bind(&message.conversation_id),
            )
            .await?;
        }
        ConversationStatus::Closed => {
            db.run(
                sql(
                    "UPDATE conversations SET status = 'closed', closed_at = $1, close_reason = $2
                     WHERE id = $3 AND status != 'closed'",
                )
                .bind(now)
                .bind(reason.map(CloseReason::as_str))
                .bind(&message.conversation_id),
            )
            .await?;
        }
        ConversationStatus::Pending => return Ok(None),
    }
    db.queue_conversation_event(lookups, message, next, reason.map(CloseReason::as_str), now)
        .await
}

async fn fail_message(
    db: &mut Db<'_>,
    lookups: &Lookups,
    message: &Message,
    error: &ProviderError,
    now: i64,
) -> StoreResult<Option<(String, ConversationStatus)>> {
    db.mark_failed(&message.id, error, now).await?;
    db.end_job(&message.id).await?;
    db.queue_message_event(lookups, message, MessageStatus::Failed, Some(error), now)
        .await?;
    conversation_follows(db, lookups, message, MessageStatus::Failed, now, None).await
}

/// One send's decision inside the caller's transaction (see `Store::accept_send`).
async fn accept_in(db: &mut Db<'_>, send: &AcceptSend) -> StoreResult<AcceptOutcome> {
    accept_with(db, send, decide_send).await
}

async fn decide_send(db: &mut Db<'_>, send: &AcceptSend) -> StoreResult<AcceptOutcome> {
    let mut active = db
        .opt(
            sql("SELECT id, status, last_activity_at FROM conversations
                 WHERE channel_id = $1 AND phone_number = $2 AND status IN ('pending', 'open')")
            .bind(&send.channel_id)
            .bind(&send.phone_number),
        )
        .await?;
    if let Some(row) = &active
        && row.get::<String>("status")? == "open"
        && row.get::<i64>("last_activity_at")? < send.expire_before
    {
        // Its 24 hours are over: closed now, and this send opens a new one.
        db.close_expired(&row.get::<String>("id")?, send.now)
            .await?;
        active = None;
    }

    if let Some(row) = active {
        let conversation_id: String = row.get("id")?;
        let status: String = row.get("status")?;
        if status == "pending" {
            // Nothing new is sent.
            return Ok(AcceptOutcome::AlreadyPending { conversation_id });
        }
        // The conversation's contact exists: only a new name changes it.
        if send.client_name.is_some() {
            upsert_contact(db, send).await?;
        }
        insert_message_and_job(db, send, &conversation_id).await?;
        touch_conversation(db, &conversation_id, send.now).await?;
        return Ok(AcceptOutcome::Sent {
            conversation_id,
            message_id: send.new_message_id.clone(),
        });
    }

    // The plan's counter first (every new conversation takes it before the contact).
    db.run(
        sql(
            "INSERT INTO conversation_usage (account_id, period, used) VALUES ($1, $2, 0)
             ON CONFLICT (account_id, period) DO NOTHING",
        )
        .bind(&send.account_id)
        .bind(&send.period),
    )
    .await?;
    let counted = db
        .run(
            sql("UPDATE conversation_usage SET used = used + 1
                 WHERE account_id = $1 AND period = $2 AND used < $3")
            .bind(&send.account_id)
            .bind(&send.period)
            .bind(send.conversation_limit),
        )
        .await?;
    if counted == 0 {
        return Ok(AcceptOutcome::LimitReached);
    }

    upsert_contact(db, send).await?;
    let client_name: String = db
        .one(
            sql("SELECT client_name FROM contacts WHERE account_id = $1 AND phone_number = $2")
                .bind(&send.account_id)
                .bind(&send.phone_number),
        )
        .await?
        .get("client_name")?;
    insert_conversation(db, send, &client_name).await?;
    insert_message_and_job(db, send, &send.new_conversation_id).await?;
    Ok(AcceptOutcome::Pending {
        conversation_id: send.new_conversation_id.clone(),
        message_id: send.new_message_id.clone(),
    })
}

/// A conversation `accept_many` knows about.
struct ActiveConversation {
    id: String,
    pending: bool,
    last_activity_at: i64,
}

/// Sends without an idempotency key, decided in order exactly as `decide_send` decides each
/// one: what they need is read in one statement per kind whatever their count, the
/// decisions are made in memory (each seeing the ones before it), and what they wrote goes
/// row by row through the statements `decide_send` uses. On the group writer a statement is
/// a plain call, prepared once per session; a multi-row statement was a new text to prepare
/// for each group size, and needed a statement journal (the undo of a statement that fails
/// half way), which single-row writes do not.
async fn accept_many(db: &mut Db<'_>, sends: &[&AcceptSend]) -> StoreResult<Vec<AcceptOutcome>> {
    use serde_json::json;
    let keys = serde_json::to_string(
        &sends
            .iter()
            .map(|s| json!({"c": s.channel_id, "p": s.phone_number, "a": s.account_id}))
            .collect::<Vec<_>>(),
    )
    .context("keys")?;
    let mut active: HashMap<(String, String), ActiveConversation> = HashMap::new();
    for r in db
        .all(
            sql(
                "SELECT DISTINCT c.id, c.channel_id, c.phone_number, c.status, c.last_activity_at
                 FROM json_each($1) j JOIN conversations c
                   ON c.channel_id = json_extract(j.value, '$.c')
                  AND c.phone_number = json_extract(j.value, '$.p')
                  AND c.status IN ('pending', 'open')",
            )
            .bind(&keys),
        )
        .await?
    {
        active.insert(
            (r.get("channel_id")?, r.get("phone_number")?),
            ActiveConversation {
                id: r.get("id")?,
                pending: r.get::<String>("status")? == "pending",
                last_activity_at: r.get("last_activity_at")?,
            },
        );
    }
    // Contacts: `Some(name)` when the row exists.
    let mut contacts: HashMap<(String, String), Option<String>> = HashMap::new();
    for r in db
        .all(
            sql("SELECT DISTINCT k.account_id, k.phone_number, k.client_name
                 FROM json_each($1) j JOIN contacts k
                   ON k.account_id = json_extract(j.value, '$.a')
                  AND k.phone_number = json_extract(j.value, '$.p')")
            .bind(&keys),
        )
        .await?
    {
        contacts.insert(
            (r.get("account_id")?, r.get("phone_number")?),
            Some(r.get("client_name")?),
        );
    }
    // The plan's counters, read when first needed.
    let mut usage: HashMap<(String, String), (i64, i64)> = HashMap::new(); // (used, added)

    let mut outcomes = Vec::with_capacity(sends.len());
    let mut expired: Vec<(String, i64)> = Vec::new();
    let mut touched_contacts: Vec<((String, String), i64)> = Vec::new();
    let mut new_conversations: Vec<(&AcceptSend, String)> = Vec::new();
    let mut messages: Vec<(&AcceptSend, String)> = Vec::new();
    // Each open conversation's last send (the time it is left with).
    let mut activity: HashMap<String, i64> = HashMap::new();
    for &send in sends {
        let key = (send.channel_id.clone(), send.phone_number.clone());
        if let Some(c) = active.get(&key)
            && !c.pending
            && c.last_activity_at < send.expire_before
        {
            // Its 24 hours are over: closed now, and this send opens a new one.
            expired.push((c.id.clone(), send.now));
            active.remove(&key);
        }
        let contact_key = (send.account_id.clone(), send.phone_number.clone());
        let mut upsert_contact = |contacts: &mut HashMap<_, Option<String>>| {
            let current = contacts.entry(contact_key.clone()).or_insert(None);
            let name = match (&send.client_name, current.as_ref()) {
                (Some(given), _) => given.clone(),
                (None, Some(kept)) => kept.clone(),
                (None, None) => send.phone_number.clone(),
            };
            *current = Some(name.clone());
            touched_contacts.push((contact_key.clone(), send.now));
            name
        };
        match active.get_mut(&key) {
            Some(c) if c.pending => {
                outcomes.push(AcceptOutcome::AlreadyPending {
                    conversation_id: c.id.clone(),
                });
            }
            Some(c) => {
                if send.client_name.is_some() {
                    upsert_contact(&mut contacts);
                }
                c.last_activity_at = send.now;
                activity.insert(c.id.clone(), send.now);
                messages.push((send, c.id.clone()));
                outcomes.push(AcceptOutcome::Sent {
                    conversation_id: c.id.clone(),
                    message_id: send.new_message_id.clone(),
                });
            }
            None => {
                let usage_key = (send.account_id.clone(), send.period.clone());
                if !usage.contains_key(&usage_key) {
                    let used: Option<i64> = db
                        .opt(
                            sql("SELECT used FROM conversation_usage
                                 WHERE account_id = $1 AND period = $2")
                            .bind(&send.account_id)
                            .bind(&send.period),
                        )
                        .await?
                        .mapped(|r| r.get("used"))?;
                    usage.insert(usage_key.clone(), (used.unwrap_or(0), 0));
                }
                let (used, added) = usage.get_mut(&usage_key).expect("read above");
                if *used + *added >= send.conversation_limit {
                    outcomes.push(AcceptOutcome::LimitReached);
                    continue;
                }
                *added += 1;
                let name = upsert_contact(&mut contacts);
                active.insert(
                    key,
                    ActiveConversation {
                        id: send.new_conversation_id.clone(),
                        pending: true,
                        last_activity_at: send.now,
                    },
                );
                new_conversations.push((send, name));
                messages.push((send, send.new_conversation_id.clone()));
                outcomes.push(AcceptOutcome::Pending {
                    conversation_id: send.new_conversation_id.clone(),
                    message_id: send.new_message_id.clone(),
                });
            }
        }
    }

    // The writes, in the order `decide_send` makes them.
    for (id, now) in &expired {
        db.close_expired(id, *now).await?;
    }
    for ((account_id, period), (_, added)) in &usage {
        if *added > 0 {
            db.run(
                sql(
                    "INSERT INTO conversation_usage (account_id, period, used) VALUES ($1, $2, $3)
                     ON CONFLICT (account_id, period) DO UPDATE SET used = used + $3",
                )
                .bind(account_id)
                .bind(period)
                .bind(*added),
            )
            .await?;
        }
    }
    // Each contact once, with its name after the group; created when first touched.
    let mut written: HashMap<&(String, String), (i64, i64)> = HashMap::new();
    for (key, now) in &touched_contacts {
        written
            .entry(key)
            .and_modify(|(_, last)| *last = *now)
            .or_insert((*now, *now));
    }
    // (account and number, name, first and last touch)
    let written: Vec<_> = written
        .into_iter()
        .map(|(key, times)| {
            let name = contacts
                .get(key)
                .cloned()
                .flatten()
                .unwrap_or_else(|| key.1.clone());
            (key, name, times)
        })
        .collect::<Vec<(&(String, String), String, (i64, i64))>>();
    for ((account_id, phone), name, (first, last)) in &written {
        db.run(
            sql(
                "INSERT INTO contacts (account_id, phone_number, client_name, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (account_id, phone_number) DO UPDATE
                 SET client_name = excluded.client_name, updated_at = excluded.updated_at",
            )
            .bind(account_id)
            .bind(phone)
            .bind(name)
            .bind(*first)
            .bind(*last),
        )
        .await?;
    }
    for (send, name) in &new_conversations {
        insert_conversation(db, send, name).await?;
    }
    for (send, conversation_id) in &messages {
        insert_message_and_job(db, send, conversation_id).await?;
    }
    for (conversation_id, now) in &activity {
        touch_conversation(db, conversation_id, *now).await?;
    }
    Ok(outcomes)
}

/// The contact of a send: its name when the sender gave one, else the number (kept if the
/// contact exists).
async fn upsert_contact(db: &mut Db<'_>, send: &AcceptSend) -> StoreResult<()> {
    db.run(
        sql(
            "INSERT INTO contacts (account_id, phone_number, client_name, created_at, updated_at)
             VALUES ($1, $2, coalesce($3, $2), $4, $4)
             ON CONFLICT (account_id, phone_number) DO UPDATE
             SET client_name = coalesce($3, contacts.client_name), updated_at = $4",
        )
        .bind(&send.account_id)
        .bind(&send.phone_number)
        .bind(&send.client_name)
        .bind(send.now),
    )
    .await?;
    Ok(())
}

/// Records a send's outcome (see `Store::finish_attempt`) in the caller's transaction.
async fn finish_in(
    db: &mut Db<'_>,
    lookups: &Lookups,
    o: &AttemptOutcome,
) -> StoreResult<Finished> {
    // A success ends this attempt's job; when there was none to end, the job is another
    // attempt's (stale) or gone (a status webhook that outran this response ended it: the
    // provider ids are still ours to record).
    let ended = match &o.result {
        AttemptResult::Accepted { .. } => {
            db.run(
                sql("DELETE FROM delivery_jobs WHERE message_id = $1 AND attempt = $2")
                    .bind(&o.message_id)
                    .bind(o.attempt),
            )
            .await?
                > 0
        }
        _ => false,
    };
    let current: Option<i64> = if ended {
        Some(o.attempt)
    } else {
        db.opt(sql("SELECT attempt FROM delivery_jobs WHERE message_id = $1").bind(&o.message_id))
            .await?
            .mapped(|r| r.get("attempt"))?
    };
    if outcome_is_stale(o, current) {
        return Ok(Finished::Stale);
    }
    let mut conversation = None;
    match &o.result {
        AttemptResult::Accepted {
            provider_message_id,
            wa_id,
        } => {
            db.run(
                sql(super::sql::record_accepted_sql!())
                    .bind(provider_message_id)
                    .bind(wa_id)
                    .bind(o.now)
                    .bind(&o.message_id),
            )
            .await?;
            db.record_attempt(&o.message_id, o.attempt, o.now, "accepted", None)
                .await?;
        }
        AttemptResult::Retry { run_at, error } | AttemptResult::Requeue { run_at, error } => {
            let requeue = matches!(o.result, AttemptResult::Requeue { .. });
            db.retry_attempt(&o.message_id, o.attempt, o.now, *run_at, error, requeue)
                .await?;
        }
        AttemptResult::Failed { error } => {
            let row = db
                .one(sql("SELECT * FROM messages WHERE id = $1").bind(&o.message_id))
                .await?;
            let message = Message::from_row(&row)?;
            if message.status.advances_to(MessageStatus::Failed) {
                conversation = fail_message(db, lookups, &message, error, o.now).await?;
            } else {
                db.end_job(&o.message_id).await?;
            }
            db.record_attempt(&o.message_id, o.attempt, o.now, "failed", Some(error))
                .await?;
        }
    }
    Ok(Finished::Recorded { conversation })
}

/// Applies a status (see `Store::apply_status`) in the caller's transaction.
async fn apply_in(
    db: &mut Db<'_>,
    lookups: &Lookups,
    u: &StatusUpdate,
) -> StoreResult<StatusApplied> {
    // The message with its conversation, found by provider id else by our id.
    const BY_PROVIDER_ID: &str = "SELECT m.*, c.status AS conversation_status,
            c.first_message_id AS conversation_first
         FROM messages m JOIN conversations c ON c.id = m.conversation_id
         WHERE m.provider_message_id = $1";
    const BY_ID: &str = "SELECT m.*, c.status AS conversation_status,
            c.first_message_id AS conversation_first
         FROM messages m JOIN conversations c ON c.id = m.conversation_id
         WHERE m.id = $1";
    let mut row = None;
    if let Some(wamid) = &u.provider_message_id {
        row = db.opt(sql(BY_PROVIDER_ID).bind(wamid)).await?;
    }
    if row.is_none()
        && let Some(id) = &u.message_id
    {
        row = db.opt(sql(BY_ID).bind(id)).await?;
    }
    let Some(row) = row else {
        return Ok(StatusApplied::UnknownMessage);
    };
    let message = Message::from_row(&row)?;
    let known = KnownConversation::from_row(&row)?;
    if u.channel_id
        .as_ref()
        .is_some_and(|channel| *channel != message.channel_id)
    {
        return Ok(StatusApplied::OtherChannel);
    }
    if message.provider_message_id.is_none()
        && let Some(wamid) = &u.provider_message_id
    {
        db.run(
            sql("UPDATE messages SET provider_message_id = $1 WHERE id = $2")
                .bind(wamid)
                .bind(&message.id),
        )
        .await?;
    }
    if u.status != MessageStatus::Queued
        && u.status != MessageStatus::Sending
        && matches!(
            message.status,
            MessageStatus::Queued | MessageStatus::Sending
        )
    {
        // The provider has the message: no dispatcher may send it again. (A job lives only
        // while its message is queued or sending.)
        db.end_job(&message.id).await?;
    }
    let changed = message.status.advances_to(u.status);
    let mut conversation = None;
    // The pricing goes with the status's own update, or alone when there is none.
    let mut pricing_kept = false;
    let pricing_type = u.pricing.as_ref().and_then(|p| p.pricing_type.as_deref());
    let pricing_model = u.pricing.as_ref().and_then(|p| p.pricing_model.as_deref());
    let pricing_billable = u.pricing.as_ref().and_then(|p| p.billable);
    if changed {
        if u.status == MessageStatus::Failed {
            let error = u.error.clone().unwrap_or(ProviderError {
                code: 0,
                title: "Failed without an error from the provider".into(),
                details: None,
            });
            conversation = fail_message(db, lookups, &message, &error, u.at).await?;
        } else {
            let text = format!(
                "UPDATE messages SET status = $1, {col} = coalesce({col}, $2), updated_at = $2,
                    pricing_category = coalesce($3, pricing_category),
                    pricing_type = coalesce($4, pricing_type),
                    pricing_model = coalesce($5, pricing_model),
                    pricing_billable = coalesce($6, pricing_billable)
                 WHERE id = $7",
                col = status_column(u.status)
            );
            db.run(
                sql(text)
                    .bind(u.status.as_str())
                    .bind(u.at)
                    .bind(&u.pricing_category)
                    .bind(pricing_type)
                    .bind(pricing_model)
                    .bind(pricing_billable)
                    .bind(&message.id),
            )
            .await?;
            pricing_kept = true;
            db.queue_message_event(lookups, &message, u.status, None, u.at)
                .await?;
            conversation =
                conversation_follows(db, lookups, &message, u.status, u.at, Some(known)).await?;
        }
    } else if message.status != MessageStatus::Failed && u.status != MessageStatus::Failed {
        // A late status keeps its time for the timeline but does not move the status.
        let text = format!(
            "UPDATE messages SET {col} = coalesce({col}, $1),
                pricing_category = coalesce($2, pricing_category),
                pricing_type = coalesce($3, pricing_type),
                pricing_model = coalesce($4, pricing_model),
                pricing_billable = coalesce($5, pricing_billable)
             WHERE id = $6",
            col = status_column(u.status)
        );
        db.run(
            sql(text)
                .bind(u.at)
                .bind(&u.pricing_category)
                .bind(pricing_type)
                .bind(pricing_model)
                .bind(pricing_billable)
                .bind(&message.id),
        )
        .await?;
        pricing_kept = true;
    }
    if !pricing_kept && (u.pricing_category.is_some() || u.pricing.is_some()) {
        db.run(
            sql(
                "UPDATE messages SET pricing_category = coalesce($1, pricing_category),
                    pricing_type = coalesce($2, pricing_type),
                    pricing_model = coalesce($3, pricing_model),
                    pricing_billable = coalesce($4, pricing_billable)
                 WHERE id = $5",
            )
            .bind(&u.pricing_category)
            .bind(pricing_type)
            .bind(pricing_model)
            .bind(pricing_billable)
            .bind(&message.id),
        )
        .await?;
    }
    Ok(StatusApplied::Applied {
        status: if changed { u.status } else { message.status },
        message_id: message.id,
        changed,
        conversation,
    })
}

/// Cancels one message (see `Store::cancel_message`) in the caller's transaction.
async fn cancel_in(
    db: &mut Db<'_>,
    lookups: &Lookups,
    account_id: Option<&str>,
    id: &str,
    now: i64,
) -> StoreResult<CancelOutcome> {
    let Some(row) = db
        .opt(
            sql("SELECT * FROM messages WHERE id = $1 AND account_id = coalesce($2, account_id)")
                .bind(id)
                .bind(account_id),
        )
        .await?
    else {
        return Ok(CancelOutcome::NotFound);
    };
    let message = Message::from_row(&row)?;
    if !message.status.cancellable() {
        return Ok(CancelOutcome::NotCancellable(message.status));
    }
    // Only a job no dispatcher holds: a claimed one is the provider's to answer.
    if !db.take_free_job(id).await? {
        return Ok(CancelOutcome::NotCancellable(message.status));
    }
    let row = db
        .one(
            sql(
                "UPDATE messages SET status = 'cancelled', cancelled_at = $1, updated_at = $1,
                    held_until = NULL, held_reason = NULL
                 WHERE id = $2 RETURNING *",
            )
            .bind(now)
            .bind(id),
        )
        .await?;
    let cancelled = Message::from_row(&row)?;
    db.queue_message_event(lookups, &cancelled, MessageStatus::Cancelled, None, now)
        .await?;
    let conversation =
        conversation_follows(db, lookups, &cancelled, MessageStatus::Cancelled, now, None).await?;
    Ok(CancelOutcome::Cancelled {
        message: Box::new(cancelled),
        conversation,
    })
}

/// Cancels every message of batch `batch_id` that no dispatcher holds and that is `scheduled`
/// or `queued`, in the caller's write transaction, as `cancel_in` would cancel each in turn in
/// the order of their jobs (its job, its status, its event, and the pending conversation it
/// created closed with its event), in four statements whatever their number, and one per
/// outbox row (none when nobody listens). The single writer decides alone: nothing moves
/// between these statements. Returns the ids cancelled, in their jobs' order.
async fn cancel_group(
    db: &mut Db<'_>,
    lookups: &Lookups,
    batch_id: &str,
    now: i64,
) -> StoreResult<Vec<String>> {
    let mut jobs: Vec<(i64, String)> = db
        .all(
            sql(
                "DELETE FROM delivery_jobs WHERE lease_until IS NULL AND message_id IN (
                    SELECT id FROM messages
                    WHERE batch_id = $1 AND status IN ('scheduled', 'queued'))
                 RETURNING seq, message_id",
            )
            .bind(batch_id),
        )
        .await?
        .mapped(|r| Ok((r.get("seq")?, r.get("message_id")?)))?;
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    jobs.sort();
    let ids =
        serde_json::to_string(&jobs.iter().map(|(_, id)| id).collect::<Vec<_>>()).context("ids")?;
    db.run(
        sql(
            "UPDATE messages SET status = 'cancelled', cancelled_at = $1, updated_at = $1,
                held_until = NULL, held_reason = NULL
             WHERE id IN (SELECT value FROM json_each($2))",
        )
        .bind(now)
        .bind(&ids),
    )
    .await?;
    let mut read: HashMap<String, Cancelled> = db
        .all(
            sql("SELECT m.*, c.status = 'pending' AS conversation_pending,
                    c.first_message_id AS conversation_first_message_id
                 FROM messages m JOIN conversations c ON c.id = m.conversation_id
                 WHERE m.id IN (SELECT value FROM json_each($1))")
            .bind(&ids),
        )
        .await?
        .mapped(|r| Cancelled::from_row(r).map(|c| (c.message.id.clone(), c)))?
        .into_iter()
        .collect();
    let cancelled: Vec<Cancelled> = jobs.iter().filter_map(|(_, id)| read.remove(id)).collect();
    let (events, moves) = cancels_follow(&cancelled, now);
    // A cancel only closes the conversation its message created (all moves are that one).
    if let Some(&(_, _, reason, _)) = moves.first() {
        let closed: Vec<&str> = moves
            .iter()
            .map(|(i, ..)| cancelled[*i].message.conversation_id.as_str())
            .collect();
        db.run(
            sql(
                "UPDATE conversations SET status = 'closed', closed_at = $1, close_reason = $2
                 WHERE status = 'pending' AND id IN (SELECT value FROM json_each($3))",
            )
            .bind(now)
            .bind(reason.map(CloseReason::as_str))
            .bind(&serde_json::to_string(&closed).context("conversations")?),
        )
        .await?;
    }
    for (account_id, event, _) in &events {
        db.queue_events(lookups, account_id, std::slice::from_ref(event))
            .await?;
    }
    Ok(cancelled.into_iter().map(|c| c.message.id).collect())
}

#[async_trait]
impl Store for SqliteStore {
    fn shared(&self) -> &super::sql::Shared {
        &self.shared
    }

    async fn finish_attempt(&self, o: &AttemptOutcome) -> StoreResult<Finished> {
        self.write(|to| WriteOp::Finish(o.clone(), to)).await
    }

    async fn apply_status(&self, u: &StatusUpdate) -> StoreResult<StatusApplied> {
        self.apply_statuses(std::slice::from_ref(u))
            .await?
            .pop()
            .ok_or_else(|| anyhow::anyhow!("a status applied to nothing").into())
    }

    async fn apply_statuses(&self, updates: &[StatusUpdate]) -> StoreResult<Vec<StatusApplied>> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        self.write(|to| WriteOp::Statuses(updates.to_vec(), to))
            .await
    }

    async fn ping(&self) -> StoreResult<bool> {
        let latest = MIGRATIONS.last().map_or(0, |(version, _, _)| *version);
        self.shared.ping(latest).await
    }

    /// Written once but for the outbox: `queue_events` runs in this backend's transaction.
    async fn close_conversation(
        &self,
        id: &str,
        reason: CloseReason,
        now: i64,
    ) -> StoreResult<Option<Conversation>> {
        let mut tx = begin_write(&self.write).await?;
        let mut db = super::sql::Db::SqliteConn(&mut tx);
        let (conversation, event) =
            super::sql::Shared::close_conversation_in(&mut db, id, reason, now).await?;
        if let Some(c) = &conversation {
            Db::SqliteConn(&mut tx)
                .queue_events(&self.lookups, &c.account_id, event.as_slice())
                .await?;
        }
        tx.commit().await?;
        Ok(conversation)
    }

    async fn record_inbound_message(&self, m: &InboundInsert) -> StoreResult<InboundRecorded> {
        let mut tx = begin_write(&self.write).await?;
        let mut db = Db::SqliteConn(&mut tx);
        if self.shared.inbound_seen(&mut db, m).await? {
            return Ok(InboundRecorded::Duplicate);
        }
        let Some((message, reply_to_template_id)) =
            self.shared.record_inbound_in(&mut db, m).await?
        else {
            return Ok(InboundRecorded::Duplicate);
        };
        self.shared
            .inbound_stored(Tx::Sqlite(tx), message, reply_to_template_id)
            .await
    }

    async fn accept_send(&self, send: &AcceptSend) -> StoreResult<AcceptOutcome> {
        self.write(|to| WriteOp::Accept(Box::new(send.clone()), to))
            .await
    }

    async fn accept_batch(
        &self,
        sends: &[AcceptSend],
    ) -> StoreResult<Vec<StoreResult<AcceptOutcome>>> {
        let mut tx = begin_write(&self.write).await?;
        // A savepoint per send: one send's failure leaves the others standing.
        let outcomes = each_in_savepoint(&mut tx, sends, async |tx, send| {
            accept_in(&mut Db::SqliteConn(tx), send).await
        })
        .await?;
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn cancel_message(
        &self,
        account_id: &str,
        id: &str,
        now: i64,
    ) -> StoreResult<CancelOutcome> {
        let mut tx = begin_write(&self.write).await?;
        let outcome = cancel_in(
            &mut Db::SqliteConn(&mut tx),
            &self.lookups,
            Some(account_id),
            id,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn cancel_batch(&self, batch_id: &str, now: i64) -> StoreResult<Vec<String>> {
        let mut tx = begin_write(&self.write).await?;
        let cancelled =
            cancel_group(&mut Db::SqliteConn(&mut tx), &self.lookups, batch_id, now).await?;
        tx.commit().await?;
        Ok(cancelled)
    }

    async fn claim_many(
        &self,
        claims: &[(String, u32)],
        now: i64,
        lease_ms: i64,
        orphan_wait_ms: i64,
    ) -> StoreResult<Vec<Vec<ClaimedJob>>> {
        claim::claim_many(&self.write, claims, now, lease_ms, orphan_wait_ms).await
    }

    async fn claim_jobs(
        &self,
        channel_id: &str,
        limit: u32,
        now: i64,
        lease_ms: i64,
        orphan_wait_ms: i64,
    ) -> StoreResult<Vec<ClaimedJob>> {
        // One channel's claim_many: the same transaction and statements.
        let claims = [(channel_id.to_string(), limit)];
        let claimed = self.claim_many(&claims, now, lease_ms, orphan_wait_ms);
        Ok(claimed.await?.pop().unwrap_or_default())
    }

    async fn store_pending_status(
        &self,
        u: &StatusUpdate,
        now: i64,
    ) -> StoreResult<Vec<StatusUpdate>> {
        let kept = self.shared.store_pending_status(u, now).await?;
        // Counted before the message is looked for again: an outcome that reads the count
        // before this sees none and takes nothing, but it committed its wamid before that,
        // so the look below finds the message and takes the status back.
        self.kept_statuses
            .fetch_add(i64::try_from(kept).unwrap_or(0), Ordering::SeqCst);
        let taken = self.shared.take_known_pending(u).await?;
        self.kept_statuses.fetch_sub(
            i64::try_from(taken.len()).unwrap_or(i64::MAX),
            Ordering::SeqCst,
        );
        Ok(taken)
    }

    async fn expire_pending_statuses(&self, received_before: i64) -> StoreResult<u64> {
        let n = self.shared.expire_pending_statuses(received_before).await?;
        self.kept_statuses
            .fetch_sub(i64::try_from(n).unwrap_or(0), Ordering::SeqCst);
        Ok(n)
    }

    async fn take_pending_statuses(
        &self,
        provider_message_id: &str,
        message_id: &str,
    ) -> StoreResult<Vec<StatusUpdate>> {
        if self.kept_statuses.load(Ordering::SeqCst) <= 0 {
            return Ok(Vec::new());
        }
        let updates = Db::Sqlite(&self.write)
            .take_pending(provider_message_id, message_id)
            .await?;
        let taken = i64::try_from(updates.len()).unwrap_or(i64::MAX);
        self.kept_statuses.fetch_sub(taken, Ordering::SeqCst);
        Ok(updates)
    }

    fn listen_for_work(&self, _wake: Arc<Notify>, _cancel: CancellationToken) {
        // One process per SQLite file sends: accepted sends ring `App::wake` directly.
    }

    async fn insert_webhook_endpoint(
        &self,
        e: &WebhookEndpoint,
        idempotency: Option<&IdempotencyKey>,
    ) -> StoreResult<EndpointInsert> {
        let _changed = self.lookups.writing();
        // The single writer serializes this transaction with every other write, so of
        // concurrent creations with one key the first stores it and the others see it.
        let mut tx = begin_write(&self.write).await?;
        if let Some(idem) = idempotency {
            if let Some((fingerprint, outcome)) = Db::SqliteConn(&mut tx)
                .earlier_use(idem, e.created_at)
                .await?
            {
                let mut db = Db::SqliteConn(&mut tx);
                return self
                    .shared
                    .endpoint_replay_in(&mut db, e, &idem.fingerprint, &fingerprint, &outcome)
                    .await;
            }
            Db::SqliteConn(&mut tx)
                .remember_key(idem, &EndpointOutcome::stored(&e.id)?, e.created_at)
                .await?;
        }
        self.shared.endpoint_created(Tx::Sqlite(tx), e).await
    }

    async fn claim_callbacks(
        &self,
        now: i64,
        limit: u32,
        lease_ms: i64,
    ) -> StoreResult<Vec<ClaimedCallback>> {
        let mut tx = self.shared.begin().await?;
        // Due, not leased (or the lease lapsed), and the oldest pending row of its stream.
        let claim = sql(
            "UPDATE callback_outbox SET attempts = attempts + 1, lease_until = ?1
             WHERE seq IN (
                SELECT o.seq FROM callback_outbox o
                WHERE o.status = 'pending' AND o.next_attempt_at <= ?2
                  AND (o.lease_until IS NULL OR o.lease_until <= ?2)
                  AND NOT EXISTS (
                    SELECT 1 FROM callback_outbox p
                    WHERE p.status = 'pending' AND p.endpoint_id = o.endpoint_id
                      AND p.ordering_key = o.ordering_key AND p.seq < o.seq)
                ORDER BY o.seq LIMIT ?3)
             RETURNING *",
        )
        .bind(now + lease_ms)
        .bind(now)
        .bind(limit);
        let rows = tx.db().all(claim).await?;
        self.shared.claimed_callbacks(tx, &rows).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    async fn open(dir: &tempfile::TempDir) -> Arc<SqliteStore> {
        let url = format!("sqlite://{}", dir.path().join("store.db").display());
        Arc::new(SqliteStore::open(&url, "full").await.expect("open"))
    }

    /// A status for no message: the group writer looks for it (its statements run) and
    /// writes nothing.
    fn unknown(i: usize) -> StatusUpdate {
        StatusUpdate {
            provider_message_id: Some(format!("wamid.unknown.{i}")),
            message_id: None,
            status: MessageStatus::Delivered,
            at: 1,
            error: None,
            pricing_category: None,
            pricing: None,
            channel_id: None,
        }
    }

    /// The texts of the statements prepared on the write connection, read through sqlx's own
    /// use of it (so only once the group writer has let it go).
    async fn prepared_on_write_connection(store: &SqliteStore) -> Vec<String> {
        let mut conn = store.write.acquire().await.unwrap();
        let mut handle = conn.lock_handle().await.unwrap();
        let db = handle.as_raw_handle().as_ptr();
        let mut texts = Vec::new();
        // SAFETY: the handle is locked away from sqlx's worker; the statements are only
        // looked at, and their texts copied.
        unsafe {
            let mut stmt = rusqlite::ffi::sqlite3_next_stmt(db, std::ptr::null_mut());
            while !stmt.is_null() {
                let text = rusqlite::ffi::sqlite3_sql(stmt);
                if !text.is_null() {
                    texts.push(
                        std::ffi::CStr::from_ptr(text)
                            .to_string_lossy()
                            .into_owned(),
                    );
                }
                stmt = rusqlite::ffi::sqlite3_next_stmt(db, stmt);
            }
        }
        texts
    }

    /// `(mxFrame, nBackfill)` as the wal-index (the `-shm` file) holds them: pages in the WAL,
    /// and how many of them a checkpoint has copied into the database file (SQLite's WAL
    /// format: the header's `mxFrame` at byte 16, the checkpoint info's `nBackfill` at 96).
    fn wal_index(dir: &tempfile::TempDir) -> (u32, u32) {
        let shm = std::fs::read(dir.path().join("store.db-shm")).expect("the wal-index");
        let word = |at: usize| u32::from_ne_bytes(shm[at..at + 4].try_into().unwrap());
        (word(16), word(96))
    }

    /// Commits `rows` rows of 3,000 random bytes (a page each) in one transaction on the
    /// write connection.
    async fn fill(store: &SqliteStore, rows: u32) {
        let mut tx = begin_write(&store.write).await.unwrap();
        sqlx::query("CREATE TABLE IF NOT EXISTS filler (x BLOB)")
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
             INSERT INTO filler (x) SELECT randomblob(3000) FROM n",
        )
        .bind(rows)
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_write_connection_does_not_checkpoint_when_it_commits() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir).await;
        // Well past SQLite's auto-checkpoint (1,000 pages), short of the checkpointer's turn
        // (set further off than its 1,000 for this test).
        let every = 4 * checkpoint::CHECKPOINT_PAGES;
        store.wal.checkpoint_every(every);
        for _ in 0..4 {
            fill(&store, 500).await;
        }
        // A group of the writer's commits on top.
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..100 {
            let store = store.clone();
            tasks.spawn(async move { store.apply_status(&unknown(i)).await });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap().unwrap();
        }
        let (pages, copied) = wal_index(&dir);
        assert!((1_500..every).contains(&pages), "{pages} pages in the WAL");
        assert_eq!(copied, 0, "a commit checkpointed the WAL");
        assert_eq!(store.checkpoints().borrow().runs, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_checkpointer_copies_the_wal_and_keeps_it_from_growing() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir).await;
        let mut done = store.checkpoints();
        for round in 1..=4 {
            // Each time the checkpointer's turn: it copies the WAL, and the next write
            // starts the WAL over instead of making it longer.
            for _ in 0..4 {
                fill(&store, checkpoint::CHECKPOINT_PAGES / 4).await;
            }
            let checked =
                tokio::time::timeout(Duration::from_secs(60), done.wait_for(|d| d.runs >= round))
                    .await
                    .expect("the checkpointer ran")
                    .unwrap()
                    .to_owned();
            assert_eq!(checked.restarts, 0);
            assert!(
                checked.wal_pages >= i64::from(checkpoint::CHECKPOINT_PAGES),
                "{checked:?}"
            );
            assert_eq!(checked.copied_pages, checked.wal_pages, "{checked:?}");
            let (pages, copied) = wal_index(&dir);
            assert_eq!(copied, pages);
        }
        // Four times the checkpointer's turn written, the WAL file as long as one (and what
        // each round's transaction adds besides its rows: interior pages, the table).
        let wal = std::fs::metadata(dir.path().join("store.db-wal"))
            .unwrap()
            .len();
        let most = 32 + 2 * u64::from(checkpoint::CHECKPOINT_PAGES) * (24 + 4096);
        assert!(
            wal <= most,
            "the WAL file grew to {wal} bytes (at most {most})"
        );
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM filler")
            .fetch_one(&store.read)
            .await
            .unwrap();
        assert_eq!(rows, 4 * i64::from(checkpoint::CHECKPOINT_PAGES));
    }

    /// A reader that keeps its snapshot open pins the WAL: PASSIVE checkpoints cannot copy
    /// what came after it, and the WAL cannot start over. Once the WAL reaches the RESTART
    /// size the checkpointer waits for the reader, writers waiting meanwhile, but only for
    /// `RESTART_WAIT`; it loses nothing, and once the reader is done the WAL starts over.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_reader_pinning_the_wal_holds_a_restart_up_for_its_bound_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir).await;
        // A checkpoint every 40 new pages, a RESTART from 400 pages in the WAL.
        let every = 40;
        store.wal.checkpoint_every(every);
        let restart_at = every * (checkpoint::RESTART_PAGES / checkpoint::CHECKPOINT_PAGES);
        use sqlx::{ConnectOptions, Connection};
        async fn wait_runs(
            done: &mut tokio::sync::watch::Receiver<Checkpoints>,
            runs: u64,
        ) -> Checkpoints {
            tokio::time::timeout(Duration::from_secs(30), done.wait_for(|d| d.runs >= runs))
                .await
                .expect("the checkpointer ran")
                .unwrap()
                .to_owned()
        }
        let mut done = store.checkpoints();
        let mut runs = done.borrow().runs;
        let mut written = 0;

        // The WAL copied and started over, then a few pages in it (short of a wake-up).
        fill(&store, every).await;
        written += every;
        runs = wait_runs(&mut done, runs + 1).await.runs;
        fill(&store, 5).await;
        written += 5;
        let (pinned_at, copied) = wal_index(&dir);
        assert!(
            pinned_at < every && copied == 0,
            "{pinned_at} pages, {copied} copied"
        );

        // A reader whose snapshot is those pages.
        let url = format!("sqlite://{}", dir.path().join("store.db").display());
        let mut reader = SqliteConnectOptions::from_str(&url)
            .unwrap()
            .read_only(true)
            .connect()
            .await
            .unwrap();
        sqlx::query("BEGIN").execute(&mut reader).await.unwrap();
        let snapshot = "SELECT count(*), sum(length(x)) FROM filler";
        let seen: (i64, i64) = sqlx::query_as(snapshot)
            .fetch_one(&mut reader)
            .await
            .unwrap();
        assert_eq!(seen, (i64::from(written), i64::from(written) * 3000));

        // PASSIVE checkpoints while the WAL grows: each copies what the reader's snapshot
        // holds, none lets the WAL start over.
        let mut last = pinned_at;
        loop {
            fill(&store, every).await;
            written += every;
            let (pages, _) = wal_index(&dir);
            assert!(
                pages > last,
                "the WAL started over under a reader ({pages} pages)"
            );
            last = pages;
            if pages >= restart_at {
                break;
            }
            let d = wait_runs(&mut done, runs + 1).await;
            runs = d.runs;
            assert_eq!(d.restarts, 0, "{d:?}");
            assert_eq!(d.wal_pages, i64::from(pages), "{d:?}");
            assert!(d.copied_pages <= i64::from(pinned_at), "{d:?}");
        }

        // The WAL past the RESTART size: the checkpointer takes the write lock and waits for
        // the reader. A commit meanwhile waits for it, not for ever.
        let began = Instant::now();
        tokio::time::timeout(Duration::from_secs(30), done.wait_for(|d| d.started > runs))
            .await
            .expect("the RESTART began")
            .unwrap();
        let commit = Instant::now();
        fill(&store, 1).await;
        written += 1;
        let commit_waited = commit.elapsed();
        let d = wait_runs(&mut done, runs + 1).await;
        let restart_took = began.elapsed();
        // (The commit above may have woken another RESTART, which waits for the reader too.)
        assert!(d.restarts >= 1, "{d:?}");
        assert!(d.wal_pages >= i64::from(last), "{d:?}");
        assert!(
            d.copied_pages <= i64::from(pinned_at),
            "the RESTART copied past the reader's snapshot: {d:?}"
        );
        let most = 4 * checkpoint::RESTART_WAIT;
        assert!(
            restart_took >= checkpoint::RESTART_WAIT / 2,
            "the RESTART gave up after {restart_took:?} without waiting for the reader"
        );
        assert!(
            restart_took <= most && commit_waited <= most,
            "the RESTART took {restart_took:?}, a commit meanwhile waited {commit_waited:?} \
             (RESTART_WAIT {:?})",
            checkpoint::RESTART_WAIT
        );
        // The reader still reads its snapshot, every page of it.
        let still: (i64, i64) = sqlx::query_as(snapshot)
            .fetch_one(&mut reader)
            .await
            .unwrap();
        assert_eq!(still, seen);

        // The reader done, the next checkpoint copies everything and the WAL starts over at
        // the next write, its file no longer growing.
        sqlx::query("COMMIT").execute(&mut reader).await.unwrap();
        reader.close().await.unwrap();
        let begun = done.borrow().started;
        fill(&store, every).await;
        written += every;
        let d = wait_runs(&mut done, begun + 1).await;
        assert_eq!(d.copied_pages, d.wal_pages, "{d:?}");
        let wal_file = || {
            std::fs::metadata(dir.path().join("store.db-wal"))
                .unwrap()
                .len()
        };
        let longest = wal_file();
        fill(&store, 1).await;
        written += 1;
        let (pages, copied) = wal_index(&dir);
        assert!(
            pages < every && copied == 0,
            "the WAL did not start over: {pages} pages"
        );
        for _ in 0..3 {
            fill(&store, every).await;
            written += every;
        }
        assert_eq!(
            wal_file(),
            longest,
            "the WAL file grew after it started over"
        );

        let rows: (i64, i64) = sqlx::query_as(snapshot)
            .fetch_one(&store.read)
            .await
            .unwrap();
        assert_eq!(rows, (i64::from(written), i64::from(written) * 3000));
        let check: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&store.read)
            .await
            .unwrap();
        assert_eq!(check, "ok");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_writer_finalizes_its_statements_before_it_lets_the_connection_go() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir).await;
        // A burst: many groups, committed while the queue stays busy.
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..400 {
            let store = store.clone();
            tasks.spawn(async move { store.apply_status(&unknown(i)).await });
        }
        while let Some(done) = tasks.join_next().await {
            assert_eq!(done.unwrap().unwrap(), StatusApplied::UnknownMessage);
        }
        assert!(store.group_stats().groups.load(Ordering::Relaxed) > 0);

        let left: Vec<String> = prepared_on_write_connection(&store)
            .await
            .into_iter()
            .filter(|text| text.contains("wamid") || text.contains("provider_message_id"))
            .collect();
        assert!(
            left.is_empty(),
            "the group writer's statements outlived its hold on the connection: {left:?}"
        );

        // sqlx uses the connection as its own, writes on it, and closes it cleanly (SQLite
        // refuses to close a connection with statements left, and sqlx reports that).
        store.ping().await.unwrap();
        sqlx::query("CREATE TABLE after_burst (x INTEGER)")
            .execute(&store.write)
            .await
            .unwrap();
        let conn = store.write.acquire().await.unwrap().detach();
        sqlx::Connection::close(conn)
            .await
            .expect("the write connection closes after a burst");
        // The pool opens a new one, and the group writer takes it.
        assert_eq!(
            store.apply_status(&unknown(0)).await.unwrap(),
            StatusApplied::UnknownMessage
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_write_outside_the_group_writer_is_not_held_up_while_it_is_busy() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir).await;
        sqlx::query("CREATE TABLE side (x INTEGER)")
            .execute(&store.write)
            .await
            .unwrap();
        // The queue kept full (it holds four groups): the group writer always has work.
        let busy = CancellationToken::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        let feeder = {
            let (store, busy) = (store.clone(), busy.clone());
            tokio::spawn(async move {
                let (mut sent, mut waiting) = (0_usize, Vec::new());
                while !busy.is_cancelled() && Instant::now() < deadline {
                    let (to, answer) = oneshot::channel();
                    waiting.push(answer);
                    let op = WriteOp::Statuses(vec![unknown(sent)], to);
                    store.writes.send(op).await.unwrap();
                    sent += 1;
                    if waiting.len() >= MAX_GROUP * 8 {
                        // Keep only the unanswered (a dropped answer abandons its write).
                        waiting.retain_mut(|a| {
                            matches!(a.try_recv(), Err(oneshot::error::TryRecvError::Empty))
                        });
                    }
                }
                sent
            })
        };
        // Wait until the group writer is busy.
        while store.group_stats().groups.load(Ordering::Relaxed) < 3 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let groups_before = store.group_stats().groups.load(Ordering::Relaxed);
        let mut slowest = Duration::ZERO;
        for x in 0..20 {
            let started = Instant::now();
            sqlx::query("INSERT INTO side (x) VALUES (?)")
                .bind(x)
                .execute(&store.write)
                .await
                .unwrap();
            slowest = slowest.max(started.elapsed());
        }
        let groups_during = store.group_stats().groups.load(Ordering::Relaxed) - groups_before;
        let still_busy = Instant::now() < deadline;
        busy.cancel();
        let sent = feeder.await.unwrap();
        assert!(still_busy, "the side writes waited for the load to end");
        assert!(groups_during > 0, "the group writer stood still meanwhile");
        assert!(sent > 3 * MAX_GROUP, "{sent}");
        // Each side write waits for at most one turn of the group writer (`SESSION_TIME`
        // and one group): far below this on any machine.
        assert!(
            slowest < Duration::from_secs(2),
            "a side write waited {slowest:?}"
        );
        let side: i64 = sqlx::query_scalar("SELECT count(*) FROM side")
            .fetch_one(&store.write)
            .await
            .unwrap();
        assert_eq!(side, 20);
    }
}
