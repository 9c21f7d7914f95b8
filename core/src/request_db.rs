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
//!
//! Cheap reads on PostgreSQL run on the request's warm connections
//! (warm_connections.rs) when it has them: handed on to the next read
//! without the round trip sqlx's pool adds to every return.
use std::sync::Arc;
use std::time::Instant;

use sea_orm::sqlx::{self, pool::PoolConnection, Postgres};
use sea_orm::{
    ConnAcquireErr, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, ExecResult,
    QueryResult, RuntimeErr, Statement,
};
use sea_query_sqlx::SqlxValues;

use crate::db::StatementObserver;
use crate::warm_connections::WarmConnections;
use crate::work::HeavyStatement;

/// A request's reads: `db` and the observer that counts its statements.
#[derive(Clone)]
pub struct RequestDb {
    db: DatabaseConnection,
    observer: Option<StatementObserver>,
    /// `db`'s connections kept between cheap reads (PostgreSQL).
    warm: Option<Arc<WarmConnections>>,
}

impl RequestDb {
    pub fn new(db: DatabaseConnection, observer: Option<StatementObserver>) -> Self {
        Self {
            db,
            observer,
            warm: None,
        }
    }

    /// Cheap reads take their connections from `warm` (which must be of
    /// the same pool as `db`): see warm_connections.rs.
    pub fn with_warm(mut self, warm: Option<Arc<WarmConnections>>) -> Self {
        self.warm = warm;
        self
    }

    /// Heavy work's statements run on a connection of their own on
    /// PostgreSQL (a dropped cheap statement is let finish, its connection
    /// given back to the pool, whose ping waits for it).
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
        let held = &mut **conn.0.as_mut().expect("held until finished");
        let workers = heavy.parallel_workers();
        if let Some(n) = workers {
            set_parallel_workers(held, n).await?;
        }
        let got = self.run(held, stmt, one).await;
        if workers.is_some() {
            // Dropped here on failure: closed, not pooled.
            set_parallel_workers(held, 0).await?;
        }
        conn.finished();
        got
    }

    /// A cheap read on a warm connection: handed to the next read when the
    /// statement finished, back to the pool otherwise.
    async fn fetch_warm(
        &self,
        warm: &Arc<WarmConnections>,
        stmt: Statement,
        one: bool,
    ) -> Result<Vec<QueryResult>, DbErr> {
        let mut conn = warm.take().await.map_err(acquire_err)?;
        let got = self.run(conn.conn(), stmt, one).await;
        if got.is_ok() {
            conn.finished();
        }
        got
    }

    /// Runs `stmt` on `conn` and counts it.
    async fn run(
        &self,
        conn: &mut sqlx::PgConnection,
        stmt: Statement,
        one: bool,
    ) -> Result<Vec<QueryResult>, DbErr> {
        let values = stmt.values.unwrap_or(sea_orm::Values(Vec::new()));
        let started = Instant::now();
        let query = sqlx::query_with(sqlx::AssertSqlSafe(stmt.sql), SqlxValues(values));
        let got = if one {
            query
                .fetch_optional(&mut *conn)
                .await
                .map(|r| r.into_iter().collect())
        } else {
            query.fetch_all(&mut *conn).await
        };
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
            None if let Some(warm) = &self.warm => {
                Ok(self.fetch_warm(warm, stmt, true).await?.into_iter().next())
            }
            // SQLite's heavy statements take their connection permit too.
            _heavy => self.db.query_one_raw(stmt).await,
        }
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        match crate::work::heavy_statement().await {
            Some(heavy) if self.is_postgres() => self.fetch(stmt, false, &heavy).await,
            None if let Some(warm) = &self.warm => self.fetch_warm(warm, stmt, false).await,
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
