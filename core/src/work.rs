//! The database work one request may do, and stopping it when the request
//! is abandoned.
//!
//! Measured before: 50 `funnel` aliases in one 2 KB document (any reader)
//! held every pooled connection, so other users' `deal(id)` waited 5 s and
//! failed; and SQL kept running 24 to 94 s after the client had gone. So:
//! - heavy fields (metrics, forecasts) take a permit from the request's own
//!   budget (a few at a time) and from a process-wide budget smaller than
//!   the pool, which leaves connections for cheap reads whatever the load;
//! - a request runs inside a deadline;
//! - when a request's future is dropped (deadline, client gone, shutdown)
//!   before it finished, its SQL is stopped: on PostgreSQL the backends
//!   running statements tagged with the request's id are cancelled
//!   (`pg_cancel_backend`), on SQLite the connection's progress handler
//!   interrupts the statement.
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{AppError, AppResult};

tokio::task_local! {
    static CURRENT: Arc<RequestWork>;
}

/// Budgets shared by every request of the process.
#[derive(Debug)]
pub struct WorkLimits {
    /// Heavy fields running at once in the whole process.
    global: Arc<Semaphore>,
    /// Heavy fields running at once in one request.
    pub per_request: usize,
    /// How long a request may run.
    pub request_timeout: Duration,
    /// Whether metrics read the deal rollups where they cover the question
    /// (service/rollup.rs); a request may still opt out.
    pub rollups: bool,
}

impl WorkLimits {
    /// `pool` is the number of pooled connections: heavy work may hold at
    /// most half of them (each heavy field runs up to two statements at
    /// once), so cheap reads always find a connection.
    pub fn new(pool: u32, per_request: usize, request_timeout: Duration) -> Self {
        let global = (pool as usize / 4).max(1);
        Self {
            global: Arc::new(Semaphore::new(global)),
            per_request: per_request.max(1),
            request_timeout,
            rollups: true,
        }
    }
}

impl Default for WorkLimits {
    fn default() -> Self {
        Self::new(16, 2, Duration::from_secs(30))
    }
}

/// One request's work: its tag in SQL text and whether it was abandoned.
#[derive(Debug)]
pub struct RequestWork {
    tag: String,
    cancelled: AtomicBool,
    heavy: Arc<Semaphore>,
    /// Heavy fields of this request running now (permits held).
    heavy_running: AtomicUsize,
    /// Whether this request's metrics may read the rollups.
    rollups: AtomicBool,
}

impl RequestWork {
    pub fn new(limits: &WorkLimits) -> Arc<Self> {
        Arc::new(Self {
            tag: format!("/*rq:{}*/ ", uuid::Uuid::new_v4().simple()),
            cancelled: AtomicBool::new(false),
            heavy: Arc::new(Semaphore::new(limits.per_request)),
            heavy_running: AtomicUsize::new(0),
            rollups: AtomicBool::new(limits.rollups),
        })
    }

    /// This request scans the deals even where rollups would answer (the
    /// `Salesops-Rollups: off` header: to compare both paths).
    pub fn skip_rollups(&self) {
        self.rollups.store(false, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}

/// Runs `fut` as the work of `work`: statements it builds carry the tag, and
/// its SQLite connections watch the cancel flag.
pub async fn scope<F: Future>(work: Arc<RequestWork>, fut: F) -> F::Output {
    CURRENT.scope(work, fut).await
}

/// The request being served by this task, if any.
pub fn current() -> Option<Arc<RequestWork>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// Whether the current request's metrics may read the rollups (outside a
/// request, e.g. the CLI: yes).
pub fn rollups_enabled() -> bool {
    CURRENT
        .try_with(|w| w.rollups.load(Ordering::Relaxed))
        .unwrap_or(true)
}

/// The comment that prefixes the statements of the current request while
/// one of its heavy fields runs, so they can be found in `pg_stat_activity`
/// and cancelled. Only statements that ran for 500 ms are ever cancelled,
/// and those are heavy work's; the rest stay untagged because a tag makes
/// each request's SQL text new to PostgreSQL: parsed and planned again
/// instead of reusing the connection's prepared statement (measured on a
/// forecast: 14 ms of parse and plan per request; on a page of deals, most
/// of the database's time).
pub fn current_tag() -> Option<String> {
    CURRENT
        .try_with(|w| (w.heavy_running.load(Ordering::Relaxed) > 0).then(|| w.tag.clone()))
        .ok()
        .flatten()
}

/// Held while a heavy field runs.
pub struct HeavyPermit {
    _request: OwnedSemaphorePermit,
    _global: OwnedSemaphorePermit,
    work: Option<Arc<RequestWork>>,
}

impl Drop for HeavyPermit {
    fn drop(&mut self) {
        if let Some(w) = &self.work {
            w.heavy_running.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Waits for a slot of the request's and of the process's heavy budget.
pub async fn heavy_permit(limits: &WorkLimits) -> AppResult<HeavyPermit> {
    let work = current();
    let request = match &work {
        Some(w) => w.heavy.clone(),
        // Outside a request (tests of services): only the global budget.
        None => Arc::new(Semaphore::new(1)),
    };
    let closed = |_| AppError::internal("work budget closed");
    let request = request.acquire_owned().await.map_err(closed)?;
    let global = limits
        .global
        .clone()
        .acquire_owned()
        .await
        .map_err(closed)?;
    if let Some(w) = &work {
        w.heavy_running.fetch_add(1, Ordering::Relaxed);
    }
    Ok(HeavyPermit {
        _request: request,
        _global: global,
        work,
    })
}

/// Cancels the request's SQL when dropped before `finish` was called.
pub struct CancelOnDrop {
    work: Arc<RequestWork>,
    db: DatabaseConnection,
    finished: bool,
    metrics: Option<Arc<crate::observability::Metrics>>,
    cancel_sql: bool,
}

impl CancelOnDrop {
    pub fn new(work: Arc<RequestWork>, db: DatabaseConnection) -> Self {
        Self {
            work,
            db,
            finished: false,
            metrics: None,
            cancel_sql: true,
        }
    }

    /// Leaves the SQL of a dropped write alone: its transaction rolls back
    /// when its connection is released, and `pg_cancel_backend` signals a
    /// backend, not a statement, so a write's connection reused at once by
    /// another request could take the signal (writes are short; reads are
    /// the ones that run long).
    pub fn keep_sql(mut self) -> Self {
        self.cancel_sql = false;
        self
    }

    /// Counts abandoned requests into `metrics`.
    pub fn counted(mut self, metrics: Arc<crate::observability::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if let Some(m) = &self.metrics {
            m.record_abandoned();
        }
        if !self.cancel_sql {
            return;
        }
        self.work.cancelled.store(true, Ordering::Relaxed);
        if self.db.get_database_backend() != DatabaseBackend::Postgres {
            // SQLite: the progress handler sees the flag within ~1,000
            // virtual machine steps.
            return;
        }
        let db = self.db.clone();
        let pattern = format!("{}%", self.work.tag.replace('_', "\\_"));
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            // `pg_cancel_backend` signals a backend, not a statement: a
            // statement that ends between our look and the signal would let
            // the signal hit whatever that connection runs next (another
            // request's). So only statements that have already run for a
            // while are cancelled (they are the ones worth stopping, and
            // unlikely to end in that instant), looking again every 200 ms
            // until none of the request's statements is left.
            let stmt = sea_orm::Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                "SELECT count(*) AS running, \
                 count(*) FILTER (WHERE CASE WHEN query_start < now() - interval '500 milliseconds' \
                 THEN pg_cancel_backend(pid) ELSE false END) AS cancelled \
                 FROM pg_stat_activity \
                 WHERE pid <> pg_backend_pid() AND state = 'active' AND query LIKE $1",
                [pattern.into()],
            );
            for _ in 0..CANCEL_ROUNDS {
                match db.query_one_raw(stmt.clone()).await {
                    Ok(Some(row)) => {
                        let running: i64 = row.try_get("", "running").unwrap_or(0);
                        let cancelled: i64 = row.try_get("", "cancelled").unwrap_or(0);
                        if cancelled > 0 {
                            tracing::info!(cancelled, "cancelled an abandoned request's SQL");
                        }
                        if running == 0 {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not cancel an abandoned request's SQL");
                        return;
                    }
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        });
    }
}

/// How many times an abandoned request's statements are looked for (200 ms
/// apart): past the statement timeout a statement has ended anyway.
const CANCEL_ROUNDS: usize = 200;

/// Installed on every SQLite connection as it leaves the pool: inside a
/// request, a progress handler that interrupts the running statement once
/// the request is cancelled; elsewhere none (a connection must not keep a
/// finished request's handler).
pub fn sqlite_before_acquire<'c>(
    conn: &'c mut sea_orm::sqlx::sqlite::SqliteConnection,
) -> futures::future::BoxFuture<'c, Result<bool, sea_orm::sqlx::Error>> {
    let work = current();
    Box::pin(async move {
        let mut handle = conn.lock_handle().await?;
        match work {
            Some(w) => handle.set_progress_handler(1_000, move || !w.is_cancelled()),
            None => handle.remove_progress_handler(),
        }
        Ok(true)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Sql;

    fn text() -> String {
        Sql::new("SELECT 1")
            .statement(DatabaseBackend::Postgres)
            .sql
            .clone()
    }

    /// Statements carry the request's tag only while a heavy field of the
    /// request runs: cheap reads keep one text, so PostgreSQL reuses their
    /// prepared statements.
    #[tokio::test]
    async fn only_heavy_work_is_tagged() {
        let limits = WorkLimits::default();
        let work = RequestWork::new(&limits);
        let tag = work.tag.clone();
        scope(work, async {
            assert_eq!(text(), "SELECT 1");
            let permit = heavy_permit(&limits).await.unwrap();
            assert_eq!(text(), format!("{tag}SELECT 1"));
            let second = heavy_permit(&limits).await.unwrap();
            drop(permit);
            assert_eq!(text(), format!("{tag}SELECT 1"), "one still runs");
            drop(second);
            assert_eq!(text(), "SELECT 1");
        })
        .await;
        assert_eq!(text(), "SELECT 1", "outside a request");
    }
}
