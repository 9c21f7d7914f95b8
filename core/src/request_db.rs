//! The database as one GraphQL request reads it: the pool, except that on
//! PostgreSQL the statements of heavy work (metrics, forecasts; see
//! work.rs) run on a connection that is closed, not handed back to the
//! pool, when the request drops them unfinished.
//!
//! Why: an abandoned request's SQL must stop (it ran on for 24 to 94 s for
//! nobody before work.rs), and it used to be found by a per-request comment
//! in its text. That comment made every heavy statement's text new to
//! PostgreSQL, so each one was parsed, described and planned again instead
//! of reusing the connection's prepared statement (quota attainment on
//! 1,000,000 deals: about 1/5 of its database time). Now the text is the
//! same for every request, and cancelling is closing: every pooled
//! connection asks the server to check its client while a statement runs
//! (`client_connection_check_interval`, db.rs), so a closed connection's
//! statement stops within that interval, and no other request can be
//! touched because the closed connection is nobody else's.
use std::time::Instant;

use sea_orm::sqlx::{self, pool::PoolConnection, Postgres};
use sea_orm::{
    ConnAcquireErr, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, ExecResult,
    QueryResult, RuntimeErr, Statement,
};
use sea_query_sqlx::SqlxValues;

use crate::db::StatementObserver;
use crate::work::HeavyStatement;

/// A request's reads: `db` and the observer that counts its statements.
#[derive(Clone)]
pub struct RequestDb {
    db: DatabaseConnection,
    observer: Option<StatementObserver>,
}

impl RequestDb {
    pub fn new(db: DatabaseConnection, observer: Option<StatementObserver>) -> Self {
        Self { db, observer }
    }

    /// Heavy work's statements run on a connection of their own on
    /// PostgreSQL (cheap reads keep sea-orm's path: a dropped cheap
    /// statement is let finish, its connection reused).
    fn is_postgres(&self) -> bool {
        self.db.get_database_backend() == DatabaseBackend::Postgres
    }

    /// Every row, or with `one` the first only (as sea-orm's `query_one`).
    /// A statement that runs alone may use parallel workers: they are set
    /// for it and taken back after it (two round trips, only when the
    /// server is otherwise idle); a connection that cannot be set back is
    /// closed, never pooled with workers on.
    async fn fetch(
        &self,
        stmt: Statement,
        one: bool,
        heavy: &HeavyStatement,
    ) -> Result<Vec<QueryResult>, DbErr> {
        let pool = self.db.get_postgres_connection_pool();
        let conn = pool.acquire().await.map_err(acquire_err)?;
        let mut conn = CloseUnlessFinished(Some(conn));
        let values = stmt.values.unwrap_or(sea_orm::Values(Vec::new()));
        let started = Instant::now();
        let held = &mut **conn.0.as_mut().expect("held until finished");
        let workers = heavy.parallel_workers();
        if let Some(n) = workers {
            set_parallel_workers(held, n).await?;
        }
        let query = sqlx::query_with(sqlx::AssertSqlSafe(stmt.sql), SqlxValues(values));
        let got = if one {
            query
                .fetch_optional(&mut *held)
                .await
                .map(|r| r.into_iter().collect())
        } else {
            query.fetch_all(&mut *held).await
        };
        if workers.is_some() {
            // Dropped here on failure: closed, not pooled.
            set_parallel_workers(held, 0).await?;
        }
        conn.finished();
        if let Some(observe) = &self.observer {
            observe(started.elapsed(), got.is_err());
        }
        got.map(|rows| rows.into_iter().map(QueryResult::from).collect())
            .map_err(|e| DbErr::Query(RuntimeErr::SqlxError(e.into())))
    }
}

/// A pooled connection closed when dropped before [`Self::finished`] (its
/// statement abandoned), returned to the pool otherwise. (sqlx's own
/// `close_on_drop` left the socket open in tests/api/hostile.rs
/// `abandoned_sql_is_cancelled`: the statement ran on; detaching and
/// dropping the connection closes the socket at once.)
struct CloseUnlessFinished(Option<PoolConnection<Postgres>>);

impl CloseUnlessFinished {
    fn finished(&mut self) {
        self.0.take();
    }
}

impl Drop for CloseUnlessFinished {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            // Out of the pool (it opens a replacement when it needs one),
            // and the socket closed at once: the server sees its client gone.
            drop(conn.detach());
        }
    }
}

/// `max_parallel_workers_per_gather` for the connection's next statements
/// (the pool's connections start at 0, see db.rs).
async fn set_parallel_workers(conn: &mut sqlx::PgConnection, n: u32) -> Result<(), DbErr> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET max_parallel_workers_per_gather = {n}"
    )))
    .execute(conn)
    .await
    .map(drop)
    .map_err(|e| DbErr::Query(RuntimeErr::SqlxError(e.into())))
}

fn acquire_err(e: sqlx::Error) -> DbErr {
    // As sea-orm maps it, so errors read the same on both paths.
    match e {
        sqlx::Error::PoolTimedOut => DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
        sqlx::Error::PoolClosed => DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
        e => DbErr::Conn(RuntimeErr::SqlxError(e.into())),
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for RequestDb {
    fn get_database_backend(&self) -> DatabaseBackend {
        self.db.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.db.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.db.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        match crate::work::heavy_statement().await {
            Some(heavy) if self.is_postgres() => {
                Ok(self.fetch(stmt, true, &heavy).await?.into_iter().next())
            }
            // SQLite's heavy statements take their connection permit too.
            _heavy => self.db.query_one_raw(stmt).await,
        }
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        match crate::work::heavy_statement().await {
            Some(heavy) if self.is_postgres() => self.fetch(stmt, false, &heavy).await,
            _heavy => self.db.query_all_raw(stmt).await,
        }
    }

    fn support_returning(&self) -> bool {
        self.db.support_returning()
    }

    fn is_mock_connection(&self) -> bool {
        self.db.is_mock_connection()
    }
}
