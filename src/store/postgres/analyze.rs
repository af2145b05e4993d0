//! Table statistics kept current where the server's autovacuum is off.
//!
//! Every statement is prepared once per connection with a generic plan (`plan_cache_mode`,
//! see `PgStore::open`), made when the connection first runs it. PostgreSQL keeps the plan
//! until something invalidates it, such as an ANALYZE of one of its tables, which autovacuum
//! runs as they grow. With autovacuum off nothing does: plans made while the tables were small
//! (a new database) stay for as long as their connection lives, and those of the grouped
//! statements then scan whole tables (`messages`, `delivery_jobs`, `conversations`) or
//! hash-join them instead of looking rows up by key. Measured with `plantilla-bench
//! full-cycle-pg` on a server with autovacuum off: PostgreSQL's CPU per message halves once
//! the tables are analyzed as they grow.
//!
//! So where autovacuum is off, a task analyzes each of the schema's tables that has grown to
//! at least four times its pages at its last ANALYZE (from 8 pages on): a table growing from
//! empty to N pages is analyzed about log4(N) times. A plan is made for the table's size when
//! it is made (the planner reads the table's current number of pages; the statistics give
//! rows per page and the columns' distinct values), so replanning at every fourfold growth
//! keeps the plans following it. The step costs the server twice: the ANALYZE itself, and
//! every connection planning again each statement that reads an analyzed table. Profiled in
//! `full-cycle-pg` (a new database, 10,000 messages) with each table analyzed at every
//! doubling, 3 or 4 times in the run: ANALYZE 4.1 % and planning 4.0 % of the server's CPU.
//! Hence fourfold growth rather than twofold (2 rounds in that run), the tables that grew
//! analyzed in one transaction (its commit makes a connection plan a statement once however
//! many of its tables were analyzed, not once per table), and a sample of 3,000 rows rather
//! than 30,000 (statistics target 10, for these ANALYZEs only; a column given a target of its
//! own keeps it): ANALYZE 2.0 % of the server's CPU in the same run. ANALYZE takes no lock
//! that writers wait for. Where autovacuum is on, the task does not run.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::store::StoreResult;

/// How often the tables' sizes are compared with their statistics.
const EVERY: Duration = Duration::from_secs(1);

/// How many times its pages at its last ANALYZE (or VACUUM) a table grows before it is
/// analyzed again.
const GROWTH: i64 = 4;

/// The schema's tables that have grown [`GROWTH`] times in pages since their last ANALYZE (or
/// VACUUM), from 8 pages on, as quoted identifiers.
const GROWN: &str = "SELECT format('%I', c.relname) FROM pg_class c
     WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
       AND pg_relation_size(c.oid)
           >= greatest($1 * c.relpages::BIGINT, 8) * current_setting('block_size')::BIGINT
     ORDER BY c.relname";

/// The statistics target of this task's ANALYZEs, for its transaction only.
const SAMPLE: &str = "SET LOCAL default_statistics_target = 10";

/// Analyzes the tables that have grown (see the module's doc), in one transaction; returns
/// their names.
pub(super) async fn analyze_grown(pool: &PgPool) -> StoreResult<Vec<String>> {
    let tables: Vec<String> = sqlx::query_scalar(GROWN)
        .bind(GROWTH)
        .fetch_all(pool)
        .await?;
    if tables.is_empty() {
        return Ok(tables);
    }
    // One commit: the statistics of all of them, and the plans they invalidate, change at
    // once (each table in a transaction of its own would make a busy connection plan a
    // statement reading three of them three times).
    let mut tx = pool.begin().await?;
    // A sample of 3,000 rows (300 × the target) rather than 30,000: these statistics are for
    // plans to follow the tables' growth, which needs rows per page and the columns' distinct
    // values, not fine histograms.
    sqlx::query(SAMPLE).execute(&mut *tx).await?;
    for table in &tables {
        sqlx::query(&format!("ANALYZE {table}"))
            .persistent(false)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(tables)
}

/// Starts the task if the server's autovacuum is off; it stops when the guard is dropped.
pub(super) async fn start(pool: PgPool) -> StoreResult<Option<DropGuard>> {
    let autovacuum: String = sqlx::query_scalar("SELECT current_setting('autovacuum')")
        .fetch_one(&pool)
        .await?;
    if autovacuum == "on" {
        return Ok(None);
    }
    tracing::info!("the server's autovacuum is off: plantilla analyzes its tables as they grow");
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(EVERY) => {}
            }
            match analyze_grown(&pool).await {
                Ok(tables) if !tables.is_empty() => {
                    tracing::debug!(?tables, "analyzed tables that grew");
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "analyzing grown tables failed"),
            }
        }
    });
    Ok(Some(cancel.drop_guard()))
}
