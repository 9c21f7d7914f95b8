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
//!   before it finished, its SQL is stopped: on PostgreSQL heavy work's
//!   statements run on connections that are closed when dropped unfinished,
//!   and the server stops a closed client's statement (request_db.rs); on
//!   SQLite the connection's progress handler interrupts the statement.
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

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

/// One request's work: whether it was abandoned, its heavy-work budget.
#[derive(Debug)]
pub struct RequestWork {
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

/// Whether the current request has heavy work running: its PostgreSQL
/// statements then run on connections closed if the request drops them
/// (request_db.rs). Outside a request: no.
pub fn in_heavy_work() -> bool {
    CURRENT
        .try_with(|w| w.heavy_running.load(Ordering::Relaxed) > 0)
        .unwrap_or(false)
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

    /// A request is in heavy work while one of its heavy fields runs (its
    /// PostgreSQL statements then close their connection when dropped);
    /// cheap reads outside it keep the pool's path.
    #[tokio::test]
    async fn heavy_work_lasts_while_a_permit_is_held() {
        let limits = WorkLimits::default();
        let work = RequestWork::new(&limits);
        scope(work, async {
            assert!(!in_heavy_work());
            let permit = heavy_permit(&limits).await.unwrap();
            assert!(in_heavy_work());
            let second = heavy_permit(&limits).await.unwrap();
            drop(permit);
            assert!(in_heavy_work(), "one still runs");
            drop(second);
            assert!(!in_heavy_work());
        })
        .await;
        assert!(!in_heavy_work(), "outside a request");
    }
}
