//! The WAL checkpointer: a connection of its own copies the WAL's pages back into the
//! database file, so the write connection's commits no longer do.
//!
//! SQLite's auto-checkpoint runs inside the commit that takes the WAL past 1,000 pages, on
//! the committing connection: for the group writer that was a fifth of its time (copying
//! pages and the database file's fsync), spent while every send waiting for the next group
//! waited too. The write connection's `wal_hook` replaces it (SQLite's auto-checkpoint is
//! itself such a hook, so installing ours turns it off): after each commit it notes the WAL's
//! size, and wakes the checkpointer once [`CHECKPOINT_PAGES`] more pages have come since the
//! last checkpoint. The checkpointer then runs a PASSIVE checkpoint, which neither waits for
//! nor blocks the writer or the readers; pages a reader may still need are left for the next.
//!
//! Crash safety is SQLite's, unchanged: a checkpoint syncs the WAL before it copies and the
//! database file before the WAL may start over (the checkpointer's connection has the
//! store's `synchronous`), whichever connection runs it; a commit is durable once it is in
//! the WAL.
//!
//! The WAL starts over from its beginning at the first write after a checkpoint that copied
//! all of it, unless a reader is still reading from it then. Readers that kept that from
//! happening every time would let the file grow without end, so once the WAL holds
//! [`RESTART_PAGES`] pages the checkpointer runs a RESTART checkpoint instead: it waits (at
//! most [`RESTART_WAIT`], writers waiting meanwhile) until the readers are done with the WAL,
//! so the next write starts it over.

use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

/// New WAL pages (4 KiB each by default) that wake the checkpointer: as often as SQLite's own
/// auto-checkpoint. A longer WAL was slower: with 4,000 pages, webhooks 10,515 / 12,354 req/s
/// and accept 8,722 / 10,292 against 16,567 / 18,182 and 10,076 / 11,265 with 1,000, in
/// alternating runs (the cause was not profiled).
pub(crate) const CHECKPOINT_PAGES: u32 = 1_000;
/// A WAL this long is made to start over (a RESTART checkpoint) rather than grow.
pub(crate) const RESTART_PAGES: u32 = 10 * CHECKPOINT_PAGES;
/// Longest a RESTART checkpoint waits for readers (and holds up writers).
pub(crate) const RESTART_WAIT: Duration = Duration::from_millis(500);

/// What the write connection's commits tell the checkpointer.
pub(crate) struct WalWatch {
    sizes: Mutex<Sizes>,
    wake: Notify,
    done: watch::Sender<Checkpoints>,
    /// New pages that wake the checkpointer ([`CHECKPOINT_PAGES`]; tests set others).
    every: AtomicU32,
    /// Pages in the WAL from which it runs a RESTART ([`RESTART_PAGES`]; tests set others).
    restart_at: AtomicU32,
}

impl Default for WalWatch {
    fn default() -> Self {
        Self {
            sizes: Mutex::default(),
            wake: Notify::new(),
            done: watch::Sender::default(),
            every: AtomicU32::new(CHECKPOINT_PAGES),
            restart_at: AtomicU32::new(RESTART_PAGES),
        }
    }
}

#[derive(Default)]
struct Sizes {
    /// Pages in the WAL after the last commit.
    pages: u32,
    /// Pages the WAL held at the last checkpoint (0 since it started over).
    checked: u32,
    /// Times the WAL was seen starting over.
    restarts: u64,
}

/// What the checkpointer has done since the store opened (for tests and logs).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoints {
    /// Checkpoints begun: ahead of `runs` while one runs (or after one failed).
    pub started: u64,
    /// Checkpoints run (PASSIVE and RESTART).
    pub runs: u64,
    /// Of those, RESTART checkpoints.
    pub restarts: u64,
    /// Pages in the WAL at the last one, and how many of them it had copied.
    pub wal_pages: i64,
    pub copied_pages: i64,
}

impl WalWatch {
    /// A commit left `pages` pages in the WAL.
    fn committed(&self, pages: u32) {
        let due = {
            let mut s = self.sizes.lock().unwrap_or_else(PoisonError::into_inner);
            if pages < s.pages {
                // The WAL started over: everything in it is new. (A first commit after the
                // start longer than the whole WAL before it goes unnoticed: the next
                // checkpoint then comes at most `CHECKPOINT_PAGES` late.)
                s.checked = 0;
                s.restarts += 1;
            }
            s.pages = pages;
            pages.saturating_sub(s.checked) >= self.every.load(Ordering::Relaxed)
        };
        if due {
            self.wake.notify_one();
        }
    }

    /// Test hook: the checkpointer wakes every `pages` new pages instead, and runs a RESTART
    /// from as many times that as [`RESTART_PAGES`] is [`CHECKPOINT_PAGES`].
    #[cfg(test)]
    pub(crate) fn checkpoint_every(&self, pages: u32) {
        self.every.store(pages, Ordering::Relaxed);
        self.restart_at.store(
            pages.saturating_mul(RESTART_PAGES / CHECKPOINT_PAGES),
            Ordering::Relaxed,
        );
    }

    /// What the checkpointer has done so far, as it changes.
    pub(crate) fn checkpoints(&self) -> watch::Receiver<Checkpoints> {
        self.done.subscribe()
    }
}

/// Makes `conn` (the store's write connection) tell `watch` about each commit instead of
/// checkpointing itself.
pub(crate) async fn watch_commits(
    conn: &mut SqliteConnection,
    watch: &Arc<WalWatch>,
) -> Result<(), sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    // The hook may run for as long as the connection is open, which the store cannot know
    // (the pool closes it): the hook keeps its own reference, one small allocation for each
    // write connection opened (the pool opens one, and another only after losing it).
    let ctx = Arc::into_raw(watch.clone()).cast_mut().cast::<c_void>();
    // SAFETY: the handle is locked away from sqlx's worker thread; `ctx` points to a
    // `WalWatch` that is never freed, and `on_commit` only reads it through `&`.
    unsafe {
        rusqlite::ffi::sqlite3_wal_hook(db, Some(on_commit), ctx);
    }
    Ok(())
}

/// SQLite's `wal_hook`: called after every commit on the connection, with the WAL's size.
unsafe extern "C" fn on_commit(
    ctx: *mut c_void,
    _db: *mut rusqlite::ffi::sqlite3,
    _name: *const c_char,
    pages: c_int,
) -> c_int {
    // SAFETY: `ctx` is the `WalWatch` given to `watch_commits`, never freed.
    let watch = unsafe { &*ctx.cast_const().cast::<WalWatch>() };
    watch.committed(u32::try_from(pages).unwrap_or(0));
    rusqlite::ffi::SQLITE_OK
}

/// Runs the checkpointer on a connection of its own (opened with `options`, the store's)
/// until `stop`: each wake-up a PASSIVE checkpoint, a RESTART one when the WAL has reached
/// `RESTART_PAGES`.
pub(crate) fn start(options: SqliteConnectOptions, watch: Arc<WalWatch>, stop: CancellationToken) {
    let options = options.busy_timeout(RESTART_WAIT);
    tokio::spawn(async move {
        let mut conn: Option<SqliteConnection> = None;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = watch.wake.notified() => {}
            }
            if let Err(e) = checkpoint(&options, &mut conn, &watch).await {
                // Tried again at the next wake-up, on a new connection; meanwhile the WAL
                // grows, and nothing written is at risk.
                tracing::warn!(error = %e, "WAL checkpoint failed");
                conn = None;
            }
        }
        if let Some(conn) = conn {
            let _ = conn.close().await;
        }
    });
}

async fn checkpoint(
    options: &SqliteConnectOptions,
    conn: &mut Option<SqliteConnection>,
    watch: &WalWatch,
) -> Result<(), sqlx::Error> {
    let conn = match conn {
        Some(conn) => conn,
        None => conn.insert(options.connect().await?),
    };
    let restarts_before = lock(watch).restarts;
    let restart = lock(watch).pages >= watch.restart_at.load(Ordering::Relaxed);
    let statement = if restart {
        "PRAGMA wal_checkpoint(RESTART)"
    } else {
        "PRAGMA wal_checkpoint(PASSIVE)"
    };
    watch.done.send_modify(|done| done.started += 1);
    // (busy, pages in the WAL, pages copied): busy when a RESTART could not wait long
    // enough, or another process was checkpointing.
    let (_busy, wal_pages, copied_pages): (i64, i64, i64) =
        sqlx::query_as(statement).fetch_one(&mut *conn).await?;
    {
        let mut s = lock(watch);
        if s.restarts == restarts_before {
            // The next wake-up when as many new pages have come again (pages a reader kept
            // from being copied are copied then).
            s.checked = u32::try_from(wal_pages).unwrap_or(0);
        }
    }
    watch.done.send_modify(|done| {
        done.runs += 1;
        done.restarts += u64::from(restart);
        done.wal_pages = wal_pages;
        done.copied_pages = copied_pages;
    });
    Ok(())
}

fn lock(watch: &WalWatch) -> std::sync::MutexGuard<'_, Sizes> {
    watch.sizes.lock().unwrap_or_else(PoisonError::into_inner)
}
