//! Connecting, migrating, transactions and the few SQL spellings that differ
//! between SQLite and PostgreSQL.
use std::sync::Arc;
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection,
    DatabaseTransaction, DbErr, EntityTrait, IdenStatic, Iterable, ModelTrait,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

use crate::config::Config;

/// Called with every executed statement (for metrics and tests).
pub type StatementObserver = Arc<dyn Fn(Duration, bool) + Send + Sync>;

#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub min_connections: u32,
    pub acquire_timeout: Duration,
    pub statement_timeout: Option<Duration>,
    /// Some: PostgreSQL connections start without parallel workers, which
    /// heavy statements that run alone are given (request_db.rs, work.rs);
    /// None: the database's own setting.
    pub parallel_workers: Option<u32>,
}

impl PoolSettings {
    pub fn from_config(cfg: &Config) -> Self {
        Self {
            max_connections: cfg.db_max_connections,
            min_connections: cfg.db_min_connections,
            acquire_timeout: cfg.db_acquire_timeout(),
            statement_timeout: cfg.statement_timeout(),
            parallel_workers: cfg.parallel_workers(),
        }
    }
}

/// Connections a SQLite pool keeps at most. SQLite has one writer at a time,
/// and every connection holds its own page cache and prepared statements:
/// measured with bench/attacks.py at 200,000 deals, the server's peak RSS was
/// 309 MB with 16 connections, 285 MB with 8 and 235 MB with 6; readers'
/// p99 stayed under 30 ms with 8.
pub const SQLITE_MAX_CONNECTIONS: u32 = 8;

/// The pool size used for `url`: the configured size, capped for SQLite.
pub fn pool_size(url: &str, configured: u32) -> u32 {
    let n = configured.max(1);
    if url.starts_with("sqlite") {
        n.min(SQLITE_MAX_CONNECTIONS)
    } else {
        n
    }
}

pub async fn connect(
    url: &str,
    pool: &PoolSettings,
    observer: Option<StatementObserver>,
) -> Result<DatabaseConnection, DbErr> {
    let mut opt = ConnectOptions::new(url.to_owned());
    opt.max_connections(pool_size(url, pool.max_connections))
        .min_connections(pool.min_connections.min(pool.max_connections.max(1)))
        .acquire_timeout(pool.acquire_timeout)
        .connect_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        // Ping a pooled connection before use only when it sat idle a while:
        // a round trip per acquire is too dear for sub-millisecond queries.
        .test_before_acquire_if_idle_for(Duration::from_secs(30));
    if let Some(t) = pool.statement_timeout {
        if url.starts_with("postgres") {
            opt.statement_timeout(t);
        }
    }
    // PostgreSQL checks the client every 250 ms while a statement runs, so
    // the statement of a connection closed under it (an abandoned request's,
    // request_db.rs) stops within that. The setting exists from PostgreSQL
    // 14 on (13 went out of support in November 2025).
    // Parallel workers: see PoolSettings::parallel_workers. (One closure:
    // sea-orm keeps the last one given.)
    let no_workers = pool.parallel_workers.is_some();
    opt.map_sqlx_postgres_opts(move |o| {
        let o = o.options([("client_connection_check_interval", "250")]);
        if no_workers {
            o.options([("max_parallel_workers_per_gather", "0")])
        } else {
            o
        }
    });
    // SQLite: write-ahead log so reads never wait for a writer, and a busy
    // timeout so writers queue instead of failing.
    opt.map_sqlx_sqlite_opts(|o| {
        o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
    });
    // A connection leaving the pool inside a request watches that request's
    // cancel flag (see work.rs).
    opt.map_sqlx_sqlite_before_acquire(|conn, _meta| crate::work::sqlite_before_acquire(conn));
    let mut db = Database::connect(opt).await?;
    if let Some(observer) = observer {
        db.set_metric_callback(move |info| observer(info.elapsed, info.failed));
    }
    Ok(db)
}

pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// Starts a transaction that will write. On SQLite it takes the write lock
/// at BEGIN, so two writers queue on the busy timeout instead of one failing
/// when it upgrades a read lock.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    let options = TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    };
    db.begin_with_options(options).await
}

/// Backend-specific SQL fragments, so services can write one query for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    pub fn of(db: &impl ConnectionTrait) -> Self {
        match db.get_database_backend() {
            DatabaseBackend::Sqlite => Dialect::Sqlite,
            _ => Dialect::Postgres,
        }
    }

    /// The UTC calendar date of a timestamp column, as a value comparable
    /// with a bound chrono::NaiveDate.
    pub fn utc_date(self, col: &str) -> String {
        match self {
            Dialect::Sqlite => format!("date({col})"),
            Dialect::Postgres => format!("(({col}) AT TIME ZONE 'UTC')::date"),
        }
    }

    /// Whole UTC calendar days from `from` to `to` (both timestamps).
    pub fn day_diff(self, from: &str, to: &str) -> String {
        match self {
            Dialect::Sqlite => {
                format!("CAST(julianday(date({to})) - julianday(date({from})) AS INTEGER)")
            }
            Dialect::Postgres => {
                format!("((({to}) AT TIME ZONE 'UTC')::date - (({from}) AT TIME ZONE 'UTC')::date)")
            }
        }
    }

    /// The UTC calendar date of a timestamp column plus a whole number of
    /// days, comparable with a bound chrono::NaiveDate.
    pub fn date_plus_days(self, col: &str, days: i64) -> String {
        match self {
            Dialect::Sqlite => format!("date({col}, '{days:+} days')"),
            Dialect::Postgres => format!("((({col}) AT TIME ZONE 'UTC')::date + ({days}))"),
        }
    }

    /// SUM of an integer expression as a 64-bit integer (PostgreSQL widens
    /// SUM(bigint) to numeric). Only for counts and day totals, whose sums
    /// stay far below 2^63; money goes through `sum_cents`.
    pub fn sum_i64(self, expr: &str) -> String {
        match self {
            Dialect::Sqlite => format!("COALESCE(SUM({expr}), 0)"),
            Dialect::Postgres => format!("COALESCE(SUM({expr}), 0)::bigint"),
        }
    }

    /// SUM of an integer money expression (cents, or cents x days), exact
    /// for any number of rows: as text, read with `SumCents`. PostgreSQL sums bigint into
    /// numeric (exact, unbounded). SQLite sums in 64 bits and raises
    /// "integer overflow", so the high and low 32 bits are summed apart
    /// (`x = (x >> 32) * 2^32 + (x & 0xFFFFFFFF)`, arithmetic shift, so
    /// negatives too): for any 64-bit x both parts are below 2^32 in
    /// absolute value, so neither sum can overflow below 2^31 rows per
    /// group (with |x| <= 10^14, `money::MAX_CENTS`, the high part is at
    /// most 23,283), and the two combine in Rust as i128. `expr` is used twice: it must carry no placeholders
    /// (see `sum_cents_sql` for one that does).
    pub fn sum_cents(self, expr: &str) -> String {
        match self {
            Dialect::Sqlite => format!(
                "(COALESCE(SUM(({expr}) >> 32), 0) || ':' || COALESCE(SUM(({expr}) & 4294967295), 0))"
            ),
            Dialect::Postgres => format!("CAST(COALESCE(SUM({expr}), 0) AS TEXT)"),
        }
    }

    /// `sum_cents` of an expression with bound values.
    pub fn sum_cents_sql(self, expr: &Sql) -> Sql {
        let mut s = Sql::new("");
        match self {
            Dialect::Sqlite => {
                s.push("(COALESCE(SUM((")
                    .append(expr)
                    .push(") >> 32), 0) || ':' || COALESCE(SUM((")
                    .append(expr)
                    .push(") & 4294967295), 0))");
            }
            Dialect::Postgres => {
                s.push("CAST(COALESCE(SUM(")
                    .append(expr)
                    .push("), 0) AS TEXT)");
            }
        }
        s
    }

    /// A money sum of nothing, typed like `sum_cents`.
    pub fn zero_cents(self) -> &'static str {
        "CAST('0' AS TEXT)"
    }

    /// The month of a timestamp column in UTC as one 64-bit integer,
    /// year * 12 + month - 1 (the same number as `domain::sop::month_index`).
    pub fn month_index_utc(self, col: &str) -> String {
        match self {
            Dialect::Sqlite => format!(
                "(CAST(strftime('%Y', {col}) AS INTEGER) * 12 + CAST(strftime('%m', {col}) AS INTEGER) - 1)"
            ),
            Dialect::Postgres => format!(
                "(EXTRACT(YEAR FROM ({col}) AT TIME ZONE 'UTC')::bigint * 12 + EXTRACT(MONTH FROM ({col}) AT TIME ZONE 'UTC')::bigint - 1)"
            ),
        }
    }

    /// The month of a DATE column as year * 12 + month - 1 (64-bit).
    pub fn month_index_date(self, col: &str) -> String {
        match self {
            Dialect::Sqlite => format!(
                "(CAST(strftime('%Y', {col}) AS INTEGER) * 12 + CAST(strftime('%m', {col}) AS INTEGER) - 1)"
            ),
            Dialect::Postgres => format!(
                "(EXTRACT(YEAR FROM {col})::bigint * 12 + EXTRACT(MONTH FROM {col})::bigint - 1)"
            ),
        }
    }

    /// The day of the month of a DATE column (64-bit).
    pub fn day_of_month(self, col: &str) -> String {
        match self {
            Dialect::Sqlite => format!("CAST(strftime('%d', {col}) AS INTEGER)"),
            Dialect::Postgres => format!("EXTRACT(DAY FROM {col})::bigint"),
        }
    }

    /// COUNT as a 64-bit integer on both backends.
    pub fn count(self, expr: &str) -> String {
        format!("COUNT({expr})")
    }
}

/// A money sum read from a `Dialect::sum_cents` column: exact, 128-bit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SumCents(pub i128);

impl SumCents {
    /// Parses "n" (PostgreSQL numeric) or "hi:lo" (SQLite's split sum).
    pub fn parse(s: &str) -> Option<Self> {
        match s.split_once(':') {
            Some((hi, lo)) => {
                let hi: i128 = hi.trim().parse().ok()?;
                let lo: i128 = lo.trim().parse().ok()?;
                hi.checked_mul(1 << 32)?.checked_add(lo).map(SumCents)
            }
            None => {
                let s = s.trim();
                // Most sums fit an i64, which parses several times faster.
                if s.len() <= 18 {
                    s.parse::<i64>().ok().map(|v| SumCents(v.into()))
                } else {
                    s.parse().ok().map(SumCents)
                }
            }
        }
        // A sum must fit a Decimal's 96 bits (2^31 deals at the maximum
        // amount sum to 2.1 x 10^23 cents; amount x age in days, at most
        // 4.6 x 10^18 per row, to 10^28): beyond, an error, not a panic.
        .filter(|c| c.0.unsigned_abs() <= 79_228_162_514_264_337_593_543_950_335)
    }
}

impl From<SumCents> for i128 {
    fn from(c: SumCents) -> i128 {
        c.0
    }
}

impl std::ops::AddAssign for SumCents {
    fn add_assign(&mut self, other: Self) {
        self.0 += other.0;
    }
}

impl sea_orm::TryGetable for SumCents {
    fn try_get_by<I: sea_orm::ColIdx>(
        res: &sea_orm::QueryResult,
        index: I,
    ) -> Result<Self, sea_orm::TryGetError> {
        let text = String::try_get_by(res, index)?;
        SumCents::parse(&text).ok_or_else(|| {
            sea_orm::TryGetError::DbErr(DbErr::Type(format!("not a money sum: {text:?}")))
        })
    }
}

/// A hand-written statement with `?` placeholders, rendered for the
/// connection's backend (PostgreSQL wants `$1`, `$2`, ...).
#[derive(Debug, Default, Clone)]
pub struct Sql {
    text: String,
    values: Vec<sea_orm::Value>,
}

impl Sql {
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            values: Vec::new(),
        }
    }

    /// Appends SQL text.
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`.
    /// Appends a row count as literal text (` LIMIT 51`), not a parameter:
    /// PostgreSQL plans a prepared `LIMIT $1` for an unknown share of the
    /// rows, so every execution is planned again (a page of deals with its
    /// owner and account joined: 2,187 against 4,507 statements/s at 16
    /// clients in pgbench). Page sizes are few, so their texts are too.
    pub fn push_limit(&mut self, rows: u64) -> &mut Self {
        self.text.push_str(" LIMIT ");
        self.text.push_str(&rows.to_string());
        self
    }

    pub fn bind(&mut self, value: impl Into<sea_orm::Value>) -> &mut Self {
        self.text.push('?');
        self.values.push(value.into());
        self
    }

    /// Appends SQL text that carries its own `?` placeholders and values.
    pub fn push_with(
        &mut self,
        text: &str,
        values: impl IntoIterator<Item = sea_orm::Value>,
    ) -> &mut Self {
        self.text.push_str(text);
        self.values.extend(values);
        self
    }

    /// Appends `(?, ?, ...)` for a list of values; `(NULL)` when empty, so
    /// `x IN (NULL)` matches nothing.
    pub fn bind_list<V: Into<sea_orm::Value>>(
        &mut self,
        values: impl IntoIterator<Item = V>,
    ) -> &mut Self {
        self.text.push('(');
        let mut any = false;
        for v in values {
            if any {
                self.text.push_str(", ");
            }
            self.bind(v);
            any = true;
        }
        if !any {
            self.text.push_str("NULL");
        }
        self.text.push(')');
        self
    }

    /// Appends another statement fragment with its values.
    pub fn append(&mut self, other: &Sql) -> &mut Self {
        self.text.push_str(&other.text);
        self.values.extend(other.values.iter().cloned());
        self
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The statement for `backend` (PostgreSQL numbers its placeholders).
    /// The text is the same for every request, so a connection reuses its
    /// prepared statement.
    pub fn statement(&self, backend: DatabaseBackend) -> sea_orm::Statement {
        let text = match backend {
            DatabaseBackend::Postgres => {
                let mut out = String::with_capacity(self.text.len() + 16);
                let mut n = 0;
                for c in self.text.chars() {
                    if c == '?' {
                        n += 1;
                        out.push('$');
                        out.push_str(&n.to_string());
                    } else {
                        out.push(c);
                    }
                }
                out
            }
            _ => self.text.clone(),
        };
        sea_orm::Statement::from_sql_and_values(backend, text, self.values.clone())
    }
}

/// Bound parameters per statement: under SQLite's 32,766 and PostgreSQL's
/// 65,535.
pub const MAX_PARAMS: usize = 30_000;

/// Rows per statement on PostgreSQL, where rows travel as one JSON document.
const PG_ROWS_PER_STATEMENT: usize = 5_000;

/// The SQL type of a column of rows written in bulk (PostgreSQL needs it to
/// read them from JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    BigInt,
    Int,
    Double,
    Text,
    Bool,
    Timestamp,
    Date,
}

impl ColType {
    /// The bulk type of an entity column, from the column's own definition.
    /// A type bulk writes cannot carry yet is a programming error that names
    /// the column (the unit tests build every shape, so it fails there first).
    pub fn of_column<C: ColumnTrait>(column: &C) -> ColType {
        Self::of_type(column.def().get_column_type()).unwrap_or_else(|| {
            panic!(
                "column {} has type {:?}, which bulk writes cannot carry: add it to ColType",
                column.as_str(),
                column.def().get_column_type()
            )
        })
    }

    fn of_type(t: &sea_orm::ColumnType) -> Option<ColType> {
        use sea_orm::ColumnType as T;
        Some(match t {
            T::BigInteger => ColType::BigInt,
            T::Integer => ColType::Int,
            T::Double => ColType::Double,
            // String-backed enums are String columns too.
            T::String(_) | T::Text | T::Char(_) => ColType::Text,
            T::Boolean => ColType::Bool,
            T::TimestampWithTimeZone => ColType::Timestamp,
            T::Date => ColType::Date,
            _ => return None,
        })
    }

    fn pg(self) -> &'static str {
        match self {
            ColType::BigInt => "bigint",
            ColType::Int => "integer",
            ColType::Double => "double precision",
            ColType::Text => "text",
            ColType::Bool => "boolean",
            ColType::Timestamp => "timestamptz",
            ColType::Date => "date",
        }
    }
}

fn json_of(v: &sea_orm::Value) -> serde_json::Value {
    use sea_orm::Value as V;
    use serde_json::Value as J;
    match v {
        V::Bool(Some(b)) => J::from(*b),
        V::Int(Some(i)) => J::from(*i),
        V::BigInt(Some(i)) => J::from(*i),
        V::Double(Some(x)) => J::from(*x),
        V::String(Some(s)) => J::from(s.as_str()),
        V::ChronoDate(Some(d)) => J::from(d.format("%Y-%m-%d").to_string()),
        V::ChronoDateTimeUtc(Some(t)) => {
            J::from(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        }
        _ => J::Null,
    }
}

/// Rows as a relation for a WITH clause: `name(c1, c2) AS (VALUES (?, ?),
/// ...)` on SQLite; on PostgreSQL `name AS (SELECT * FROM
/// json_to_recordset(?::json) AS r(c1 type, ...))`, one bound document,
/// which PostgreSQL parses far faster than thousands of parameters.
pub fn rows_relation(
    backend: DatabaseBackend,
    name: &str,
    columns: &[(&str, ColType)],
    rows: &[Vec<sea_orm::Value>],
) -> Sql {
    let names = columns.iter().map(|(c, _)| *c).collect::<Vec<_>>();
    match backend {
        DatabaseBackend::Postgres => {
            let doc: Vec<serde_json::Value> = rows
                .iter()
                .map(|row| {
                    serde_json::Value::Object(
                        names
                            .iter()
                            .zip(row)
                            .map(|(c, v)| ((*c).to_owned(), json_of(v)))
                            .collect(),
                    )
                })
                .collect();
            let defs = columns
                .iter()
                .map(|(c, t)| format!("{c} {}", t.pg()))
                .collect::<Vec<_>>()
                .join(", ");
            let mut sql = Sql::new(format!("{name} AS (SELECT * FROM json_to_recordset("));
            sql.bind(serde_json::Value::Array(doc).to_string())
                .push(&format!("::json) AS r({defs}))"));
            sql
        }
        _ => {
            let mut sql = Sql::new(format!("{name}({}) AS (VALUES ", names.join(", ")));
            for (i, row) in rows.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.bind_list(row.iter().cloned());
            }
            sql.push(")");
            sql
        }
    }
}

/// How many rows of this width one bulk statement may carry.
pub fn rows_per_statement(backend: DatabaseBackend, width: usize) -> usize {
    match backend {
        DatabaseBackend::Postgres => PG_ROWS_PER_STATEMENT,
        _ => (MAX_PARAMS / width.max(1)).max(1),
    }
}

/// `WITH src AS (rows) INSERT INTO table (columns) SELECT columns FROM src`
/// (plus `tail`, e.g. a RETURNING clause), for one chunk of rows.
pub fn insert_statement(
    backend: DatabaseBackend,
    table: &str,
    columns: &[(&str, ColType)],
    rows: &[Vec<sea_orm::Value>],
    tail: &str,
) -> sea_orm::Statement {
    let names = columns
        .iter()
        .map(|(c, _)| *c)
        .collect::<Vec<_>>()
        .join(", ");
    let mut sql = Sql::new("WITH ");
    sql.append(&rows_relation(backend, "src", columns, rows))
        .push(&format!(
            " INSERT INTO {table} ({names}) SELECT {names} FROM src{tail}"
        ));
    sql.statement(backend)
}

/// The columns of entity `E` that one kind of write sets: every column of
/// the entity, in entity order, but a named list of skipped ones. Column
/// names, their SQL types and each row's values all come from the entity,
/// so they cannot drift apart, and a new entity field is written
/// everywhere unless a place names it in its skip list.
pub struct RowShape<E: EntityTrait> {
    columns: Vec<E::Column>,
    typed: Vec<(&'static str, ColType)>,
}

impl<E: EntityTrait> RowShape<E> {
    pub fn all_but(skip: &[E::Column]) -> Self {
        let skip: Vec<&str> = skip.iter().map(|c| c.as_str()).collect();
        let columns: Vec<E::Column> = E::Column::iter()
            .filter(|c| !skip.contains(&c.as_str()))
            .collect();
        let typed = columns
            .iter()
            .map(|c| (c.as_str(), ColType::of_column(c)))
            .collect();
        Self { columns, typed }
    }

    /// The table written.
    pub fn table(&self) -> &'static str {
        E::default().table_name()
    }

    /// Column names and types, in the order of `values`.
    pub fn columns(&self) -> &[(&'static str, ColType)] {
        &self.typed
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.typed.iter().map(|(c, _)| *c).collect()
    }

    /// One row's values, in the order of `columns`.
    pub fn values(&self, model: &E::Model) -> Vec<sea_orm::Value> {
        self.columns.iter().map(|c| model.get(*c)).collect()
    }

    pub fn rows<'a>(
        &self,
        models: impl IntoIterator<Item = &'a E::Model>,
    ) -> Vec<Vec<sea_orm::Value>>
    where
        E::Model: 'a,
    {
        models.into_iter().map(|m| self.values(m)).collect()
    }
}

/// Writes whole models (all columns but `skip`, typically the generated id)
/// with as few statements as the backend allows.
pub async fn insert_models<E: EntityTrait>(
    db: &impl ConnectionTrait,
    skip: &[E::Column],
    models: &[E::Model],
) -> Result<(), DbErr> {
    if models.is_empty() {
        return Ok(());
    }
    let shape = RowShape::<E>::all_but(skip);
    insert_rows(db, shape.table(), shape.columns(), shape.rows(models)).await
}

/// Writes rows into a table with as few statements as the backend allows.
pub async fn insert_rows(
    db: &impl ConnectionTrait,
    table: &str,
    columns: &[(&str, ColType)],
    rows: Vec<Vec<sea_orm::Value>>,
) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    for chunk in rows.chunks(rows_per_statement(backend, columns.len())) {
        db.execute_raw(insert_statement(backend, table, columns, chunk, ""))
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use entity::enums::{DealSource, DealStatus, ForecastCategory};
    use entity::*;

    #[test]
    fn money_sums_parse_exactly() {
        let p = |t: &str| SumCents::parse(t).map(|c| c.0);
        assert_eq!(p("123"), Some(123));
        assert_eq!(p(" -5 "), Some(-5));
        assert_eq!(p("999999999999999999"), Some(999_999_999_999_999_999));
        assert_eq!(p("-9223372036854775809"), Some(-9_223_372_036_854_775_809));
        assert_eq!(
            p("79228162514264337593543950335"),
            Some(79_228_162_514_264_337_593_543_950_335)
        );
        assert_eq!(p("79228162514264337593543950336"), None);
        assert_eq!(p("3:7"), Some(3 * (1 << 32) + 7));
        assert_eq!(p("12.5"), None);
        assert_eq!(p(""), None);
        assert_eq!(p("x"), None);
    }

    #[derive(sea_orm::FromQueryResult)]
    struct TableColumn {
        name: String,
        notnull: i32,
        pk: i32,
    }

    async fn migrated() -> DatabaseConnection {
        let mut opt = ConnectOptions::new("sqlite::memory:");
        // One connection: each in-memory connection is its own database.
        opt.max_connections(1)
            .min_connections(1)
            .sqlx_logging(false);
        let db = Database::connect(opt).await.unwrap();
        migrate(&db).await.unwrap();
        db
    }

    /// Every column of `E` has a bulk type, and the entity and the migrated
    /// table have the same columns with the same nullability, so a field
    /// added to one but not the other fails here, named.
    async fn check_entity<E: EntityTrait>(db: &DatabaseConnection) {
        let table = E::default().table_name();
        let stmt =
            Sql::new(format!("PRAGMA table_info({table})")).statement(DatabaseBackend::Sqlite);
        let live = TableColumn::find_by_statement(stmt).all(db).await.unwrap();
        for c in E::Column::iter() {
            ColType::of_column(&c);
            let Some(t) = live.iter().find(|t| t.name == c.as_str()) else {
                panic!(
                    "{table}.{} is in the entity but no migration creates it",
                    c.as_str()
                );
            };
            if t.pk == 0 {
                assert_eq!(
                    t.notnull == 0,
                    c.def().is_null(),
                    "{table}.{}: the entity and the migration disagree on NULL",
                    c.as_str()
                );
            }
        }
        for t in &live {
            assert!(
                E::Column::iter().any(|c| c.as_str() == t.name),
                "{table}.{} is in the migrations but not in the entity",
                t.name
            );
        }
    }

    use sea_orm::FromQueryResult;

    #[tokio::test]
    async fn bulk_written_entities_match_their_tables() {
        let db = migrated().await;
        check_entity::<deal::Entity>(&db).await;
        check_entity::<deal_stage_change::Entity>(&db).await;
        check_entity::<audit_entry::Entity>(&db).await;
        check_entity::<webhook_delivery::Entity>(&db).await;
        check_entity::<webhook_attempt::Entity>(&db).await;
        check_entity::<territory::Entity>(&db).await;
        check_entity::<rep::Entity>(&db).await;
        check_entity::<account::Entity>(&db).await;
        check_entity::<playbook::Entity>(&db).await;
        check_entity::<playbook_step::Entity>(&db).await;
        check_entity::<quota::Entity>(&db).await;
        check_entity::<forecast_submission::Entity>(&db).await;
        check_entity::<deal_revision::Entity>(&db).await;
        check_entity::<sop_line::Entity>(&db).await;
        check_entity::<lead::Entity>(&db).await;
        check_entity::<lead_status_change::Entity>(&db).await;
        check_entity::<activity::Entity>(&db).await;
        check_entity::<lead_scoring_rule::Entity>(&db).await;
    }

    #[test]
    fn a_shape_is_the_entity_in_order_but_the_skipped_columns() {
        let shape = RowShape::<deal::Entity>::all_but(&[deal::Column::Id, deal::Column::Version]);
        let all: Vec<&str> = deal::Column::iter().map(|c| c.as_str()).collect();
        assert_eq!(
            shape.names(),
            all.iter()
                .filter(|c| !["id", "version"].contains(c))
                .copied()
                .collect::<Vec<_>>()
        );
        assert_eq!(shape.names().len(), all.len() - 2);
        assert_eq!(shape.table(), "deal");
        assert_eq!(shape.columns()[0], ("external_id", ColType::Text));
        assert_eq!(shape.columns()[2], ("amount_cents", ColType::BigInt));
    }

    /// Values land in their own columns: a deal with every field distinct
    /// and set, written through the bulk path and read back by the entity.
    #[tokio::test]
    async fn a_deal_round_trips_through_the_bulk_insert() {
        let db = migrated().await;
        db.execute_unprepared("PRAGMA foreign_keys = OFF")
            .await
            .unwrap();
        let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        let d = deal::Model {
            id: 41,
            external_id: Some("ext-1".into()),
            name: "Acme renewal".into(),
            amount_cents: 123_456,
            currency: "EUR".into(),
            owner_id: 2,
            account_id: Some(3),
            territory_id: Some(4),
            stage_id: 5,
            status: DealStatus::Lost,
            forecast_category: ForecastCategory::Omitted,
            source: Some(DealSource::Partner),
            playbook_id: Some(6),
            opened_at: at("2026-01-02T03:04:05.123456Z"),
            expected_close_date: Some(chrono::NaiveDate::from_ymd_opt(2026, 3, 4).unwrap()),
            closed_at: Some(at("2026-02-03T04:05:06Z")),
            lost_reason: Some("price".into()),
            version: 7,
            valid_from: at("2026-02-03T04:05:06Z"),
            push_count: 2,
            first_amount_cents: Some(150_000),
            pushed_at: Some(at("2026-01-20T00:00:00Z")),
            stage_entered_at: Some(at("2026-02-03T04:05:06Z")),
            last_activity_at: Some(at("2026-01-30T10:00:00.5Z")),
            created_at: at("2026-01-01T00:00:00Z"),
            updated_at: at("2026-02-03T04:05:07Z"),
        };
        insert_models::<deal::Entity>(&db, &[], std::slice::from_ref(&d))
            .await
            .unwrap();
        let read = deal::Entity::find_by_id(41).one(&db).await.unwrap();
        assert_eq!(read, Some(d));
    }
}
