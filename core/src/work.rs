//! The database work one request may do, and stopping it when the request
//! is abandoned.
//!
//! Measured before: 50 `funnel` aliases in one 2 KB document (any reader)
//! held every pooled connection, so other users' `deal(id)` waited 5 s and
//! failed; and SQL kept running 24 to 94 s after the client had gone. So:
//! - heavy fields (metrics, forecasts) mark their request's work heavy, and
//!   each of their statements takes a permit from the request's own budget
//!   (a few at a time) and one of the process's: heavy statements hold at
//!   most half of the pool, which leaves connections for cheap reads
//!   whatever the load. The budgets are per statement, not per field, so
//!   every heavy field of a document starts at once and the aggregates
//!   they share are asked together (the closed deals' batches, loaders.rs);
//! - on PostgreSQL a heavy statement may use parallel workers only when it
//!   runs alone (see [`HeavyStatements`]);
//! - a request runs inside a deadline;
//! - when a request's future is dropped (deadline, client gone, shutdown)
//!   before it finished, its SQL is stopped: on PostgreSQL heavy work's
//!   statements run on connections that are closed when dropped unfinished,
//!   and the server stops a closed client's statement (request_db.rs); on
//!   SQLite the connection's progress handler interrupts the statement.
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

tokio::task_local! {
    static CURRENT: Arc<RequestWork>;
}

/// Budgets shared by every request of the process.
#[derive(Debug)]
pub struct WorkLimits {
    /// Heavy statements of the process.
    statements: Arc<HeavyStatements>,
    /// Heavy statements running at once in one request.
    pub per_request: usize,
    /// How long a request may run.
    pub request_timeout: Duration,
    /// Whether metrics read the deal rollups where they cover the question
    /// (service/rollup.rs); a request may still opt out.
    pub rollups: bool,
}

impl WorkLimits {
    /// `pool` is the number of pooled connections: heavy statements may
    /// hold at most half of them, so cheap reads always find a connection.
    pub fn new(pool: u32, per_request: usize, request_timeout: Duration) -> Self {
        Self {
            statements: Arc::new(HeavyStatements {
                connections: Arc::new(Semaphore::new((pool as usize / 2).max(1))),
                running: AtomicUsize::new(0),
                parallel_workers: None,
            }),
            per_request: per_request.max(1),
            request_timeout,
            rollups: true,
        }
    }

    /// PostgreSQL's parallel workers per statement for a heavy statement
    /// that runs alone (None: PostgreSQL's own setting for every statement;
    /// the pool's connections then start without parallel workers, see
    /// `db::PoolSettings::parallel_workers`).
    pub fn with_parallel_workers(mut self, workers: Option<u32>) -> Self {
        Arc::get_mut(&mut self.statements)
            .expect("set before any request shares the limits")
            .parallel_workers = workers;
        self
    }
}

/// The heavy statements of the process: at most half of the pool's
/// connections, and which of them may use PostgreSQL's parallel workers.
///
/// Why parallel workers only alone: a parallel plan splits one scan over
/// worker processes, which lowers one statement's latency when cores are
/// idle, but at load the cores are busy anyway and launching workers and
/// gathering their rows is work of its own. Measured on 1,000,000 deals
/// (the stage-weighted forecast's two statements in pgbench): 16 clients
/// 6.4-6.9 statements/s with parallel workers, 8.9-9.3 without; one client
/// 148 + 130 ms with, 183 + 173 ms without.
#[derive(Debug)]
pub struct HeavyStatements {
    connections: Arc<Semaphore>,
    /// Heavy statements running now.
    running: AtomicUsize,
    parallel_workers: Option<u32>,
}

impl Default for WorkLimits {
    fn default() -> Self {
        Self::new(16, 2, Duration::from_secs(30))
    }
}

/// One request's work: whether it was abandoned, its heavy-work budget.
#[derive(Debug)]
pub struct RequestWork {
    cancelled: AtomicBool,
    /// The request's heavy statements running at once.
    heavy: Arc<Semaphore>,
    statements: Arc<HeavyStatements>,
    /// Heavy fields of this request running now (permits held).
    heavy_running: AtomicUsize,
    /// Whether this request's metrics may read the rollups.
    rollups: AtomicBool,
}

impl RequestWork {
    pub fn new(limits: &WorkLimits) -> Arc<Self> {
        Arc::new(Self {
            cancelled: AtomicBool::new(false),
            heavy: Arc::new(Semaphore::new(limits.per_request)),
            statements: limits.statements.clone(),
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

/// Runs `fut` as the work of `work`: its heavy statements close their
/// connection if dropped (request_db.rs), and
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

/// Held while a heavy statement runs: its permits.
pub struct HeavyStatement {
    _request: OwnedSemaphorePermit,
    _connection: OwnedSemaphorePermit,
    statements: Arc<HeavyStatements>,
    alone: bool,
}

impl HeavyStatement {
    /// The parallel workers this statement may use: some when it runs
    /// alone and the setting allows them, else none.
    pub fn parallel_workers(&self) -> Option<u32> {
        self.statements
            .parallel_workers
            .filter(|n| self.alone && *n > 0)
    }
}

impl Drop for HeavyStatement {
    fn drop(&mut self) {
        self.statements.running.fetch_sub(1, Ordering::Relaxed);
    }
}

/// For a statement of the current request's heavy work: waits for a slot
/// of the request's budget, then for a connection permit (at most half the
/// pool is heavy). None outside heavy work (cheap reads, writes, the CLI).
pub async fn heavy_statement() -> Option<HeavyStatement> {
    let (request, statements) = CURRENT
        .try_with(|w| {
            (w.heavy_running.load(Ordering::Relaxed) > 0)
                .then(|| (w.heavy.clone(), w.statements.clone()))
        })
        .ok()
        .flatten()?;
    let never_closed = "the heavy budgets' semaphores are never closed";
    let request = request.acquire_owned().await.expect(never_closed);
    let connection = statements
        .connections
        .clone()
        .acquire_owned()
        .await
        .expect(never_closed);
    let alone = statements.running.fetch_add(1, Ordering::Relaxed) == 0;
    Some(HeavyStatement {
        _request: request,
        _connection: connection,
        statements,
        alone,
    })
}

/// Held while a heavy field runs: its request's work is heavy.
pub struct HeavyPermit {
    work: Option<Arc<RequestWork>>,
}

impl Drop for HeavyPermit {
    fn drop(&mut self) {
        if let Some(w) = &self.work {
            w.heavy_running.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Marks the current request's work heavy while the permit is held (its
/// statements then take the heavy budgets, [`heavy_statement`]). Outside a
/// request (tests of services): nothing to mark.
pub fn heavy_permit() -> HeavyPermit {
    let work = current();
    if let Some(w) = &work {
        w.heavy_running.fetch_add(1, Ordering::Relaxed);
    }
    HeavyPermit { work }
}

/// Marks the request abandoned when dropped before `finish` was called.
pub struct CancelOnDrop {
    work: Arc<RequestWork>,
    finished: bool,
    metrics: Option<Arc<crate::observability::Metrics>>,
    cancel_sql: bool,
}

impl CancelOnDrop {
    pub fn new(work: Arc<RequestWork>) -> Self {
        Self {
            work,
            finished: false,
            metrics: None,
            cancel_sql: true,
        }
    }

    /// Leaves the SQL of a dropped write alone (SQLite's progress handler is
    /// not armed for it): its transaction rolls back when its connection is
    /// released; writes are short, reads are the ones that run long.
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
        // SQLite: the progress handler sees the flag within ~1,000 virtual
        // machine steps. PostgreSQL: the heavy statements' connections were
        // closed as the request's futures were dropped (request_db.rs).
        self.work.cancelled.store(true, Ordering::Relaxed);
    }
}

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

    /// A request's statements are heavy (budgeted, and on PostgreSQL on
    /// connections closed when dropped) while one of its heavy fields runs;
    /// other statements, and those outside a request, keep the pool's path.
    #[tokio::test]
    async fn statements_are_heavy_while_a_permit_is_held() {
        let limits = WorkLimits::default();
        let work = RequestWork::new(&limits);
        let heavy = || async { heavy_statement().await.is_some() };
        scope(work, async {
            assert!(!heavy().await);
            let permit = heavy_permit();
            assert!(heavy().await);
            let second = heavy_permit();
            drop(permit);
            assert!(heavy().await, "one still runs");
            drop(second);
            assert!(!heavy().await);
        })
        .await;
        assert!(!heavy().await, "outside a request");
    }

    /// A heavy statement may use parallel workers only when it starts
    /// while no other heavy statement runs.
    #[tokio::test]
    async fn parallel_workers_only_alone() {
        let limits = WorkLimits::default().with_parallel_workers(Some(2));
        scope(RequestWork::new(&limits), async {
            let _field = heavy_permit();
            let first = heavy_statement().await.unwrap();
            assert_eq!(first.parallel_workers(), Some(2));
            let second = heavy_statement().await.unwrap();
            assert_eq!(second.parallel_workers(), None);
            drop((first, second));
            assert_eq!(heavy_statement().await.unwrap().parallel_workers(), Some(2));
        })
        .await;
        let never = WorkLimits::default();
        scope(RequestWork::new(&never), async {
            let _field = heavy_permit();
            assert_eq!(heavy_statement().await.unwrap().parallel_workers(), None);
        })
        .await;
    }
}
