//! PostgreSQL connections handed from one cheap read to the next without
//! going back through sqlx's pool in between.
//!
//! Why: sqlx pings every connection it takes back (a Sync and its
//! ReadyForQuery: sqlx-core's `PoolConnection::return_to_pool`, with no
//! setting to skip it), so a one-statement request cost two round trips and
//! two wake-ups of its PostgreSQL backend where the statement needs one.
//! The ping is there to drain what an abandoned statement left on the
//! connection; a read that finished has received its ReadyForQuery (sqlx's
//! `fetch_all` and `fetch_optional` read up to it), so nothing is pending
//! and the next read can use the connection as it is. Measured with
//! bench/question.sh Q1 at 16 clients, alternated, one build with sqlx's
//! ping and one without: 3,645-3,714 against 4,097-4,382 requests/s.
//!
//! At most half of the pool's connections are held this way (in use or
//! waiting here), so writers and heavy work, which take theirs from the
//! pool, always find the rest; one that waits here `LINGER` unused goes back
//! to the pool (with sqlx's ping), so an idle server holds none. A read that
//! finds none waiting and `cap` held takes a connection from the pool as
//! before.
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use sea_orm::sqlx::{pool::PoolConnection, PgConnection, PgPool, Postgres};
use sea_orm::{DatabaseBackend, DatabaseConnection};

/// How long a connection waits here unused before it goes back to the pool.
pub const LINGER: Duration = Duration::from_millis(200);

pub struct WarmConnections {
    pool: PgPool,
    /// Connections whose last read finished, the most recent last.
    waiting: Mutex<Vec<(PoolConnection<Postgres>, Instant)>>,
    /// Connections taken from the pool for this and not given back (waiting
    /// here or in use).
    held: AtomicUsize,
    cap: usize,
    reaper: AtomicBool,
}

impl WarmConnections {
    /// For a PostgreSQL pool: half of its connections (the other half is
    /// what heavy work may take at once, work.rs; writers queue for any
    /// connection either gives back). Measured with bench/question.sh Q1 at
    /// 16 clients, alternated: a pool of 16 holding 8 here ran 3,739 and
    /// 4,101 requests/s against 3,419 and 3,587 holding 4. None for SQLite,
    /// whose pool does not ping, and for a pool of one connection.
    pub fn of(db: &DatabaseConnection) -> Option<Arc<Self>> {
        if db.get_database_backend() != DatabaseBackend::Postgres {
            return None;
        }
        let pool = db.get_postgres_connection_pool().clone();
        let cap = pool.options().get_max_connections() as usize / 2;
        if cap == 0 {
            return None;
        }
        Some(Arc::new(Self {
            pool,
            waiting: Mutex::new(Vec::new()),
            held: AtomicUsize::new(0),
            cap,
            reaper: AtomicBool::new(false),
        }))
    }

    /// A connection for one read: one that waits here, else a new one from
    /// the pool (held here when under `cap`).
    pub async fn take(self: &Arc<Self>) -> Result<WarmConnection, sea_orm::sqlx::Error> {
        self.start_reaper();
        if let Some((conn, _)) = self.lock().pop() {
            return Ok(WarmConnection {
                conn: Some(conn),
                home: Some(self.clone()),
            });
        }
        // Counted once acquired: a read dropped while it waits for the pool
        // must not leave a count behind.
        let conn = self.pool.acquire().await?;
        let hold = self
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.cap).then_some(n + 1)
            })
            .is_ok();
        Ok(WarmConnection {
            conn: Some(conn),
            home: hold.then(|| self.clone()),
        })
    }

    /// Connections waiting here now (the pool counts them as in use).
    pub fn waiting(&self) -> usize {
        self.lock().len()
    }

    /// Connections held here, waiting or in use.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(PoolConnection<Postgres>, Instant)>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives back to the pool the connections that waited `LINGER` (every
    /// `LINGER`, from the first read on, while this lives).
    fn start_reaper(self: &Arc<Self>) {
        if self.reaper.swap(true, Ordering::AcqRel) {
            return;
        }
        let me: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(LINGER);
            loop {
                tick.tick().await;
                let Some(me) = me.upgrade() else { return };
                me.give_back_unused(LINGER);
            }
        });
    }

    /// Hands the connections that waited at least `unused` back to the pool.
    pub fn give_back_unused(&self, unused: Duration) -> usize {
        let stale: Vec<_> = {
            let mut waiting = self.lock();
            // Oldest first: the stale ones are a prefix.
            let n = waiting
                .iter()
                .take_while(|(_, since)| since.elapsed() >= unused)
                .count();
            waiting.drain(..n).collect()
        };
        self.held.fetch_sub(stale.len(), Ordering::AcqRel);
        stale.len()
    }
}

impl Drop for WarmConnections {
    fn drop(&mut self) {
        let waiting = std::mem::take(&mut *self.lock());
        if tokio::runtime::Handle::try_current().is_ok() {
            // Back to the pool (it outlives this: it has its own Arc).
            drop(waiting);
        } else {
            // sqlx spawns the return of a dropped pool connection and
            // panics without a runtime (a process tearing down after its
            // runtimes stopped): the sockets close when the process exits.
            std::mem::forget(waiting);
        }
    }
}

/// A connection for one read. [`Self::finished`] after the read received
/// its answer in full; dropped otherwise, it goes back to the pool, whose
/// ping drains what is left.
pub struct WarmConnection {
    conn: Option<PoolConnection<Postgres>>,
    /// Where it waits between reads; None: a plain pool connection.
    home: Option<Arc<WarmConnections>>,
}

impl WarmConnection {
    pub fn conn(&mut self) -> &mut PgConnection {
        self.conn.as_mut().expect("held until finished")
    }

    /// The read received everything: the connection waits for the next
    /// read (a plain one goes back to the pool).
    pub fn finished(mut self) {
        if let (Some(conn), Some(home)) = (self.conn.take(), self.home.take()) {
            home.lock().push((conn, Instant::now()));
        }
    }
}

impl Drop for WarmConnection {
    fn drop(&mut self) {
        if let (Some(conn), Some(home)) = (self.conn.take(), &self.home) {
            drop(conn);
            home.held.fetch_sub(1, Ordering::AcqRel);
        }
    }
}
