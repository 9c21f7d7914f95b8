//! Datasets exported as tables for BI tools (docs/design.md, BI access).
//!
//! A dataset is data: its columns (name, SQL expression, kind), its FROM
//! clause, the roles that may read it and how the caller's scope narrows it
//! (`Scope`). Rows are read in keyset batches ordered by the dataset's id
//! (`batch`), so an export of any size holds one batch in memory and every
//! batch is a short statement; the HTTP edge (api/src/export) encodes the
//! cells as CSV or NDJSON and streams them. The scope is applied exactly as
//! the GraphQL reads apply it: `DealFilter::push_sql` for deal-shaped data,
//! `DealScope::rep_sql` for data owned by a rep.
//!
//! Adding a dataset is one `Dataset` value in `datasets.rs` and its name in
//! `DATASETS` (see the leads/activities note there).
pub mod datasets;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, QueryResult};

use super::deal_filter::DealFilter;
use crate::auth::{Principal, Role};
use crate::db::{Dialect, Sql};
use crate::domain::money::from_cents;
use crate::error::AppResult;

pub use datasets::{find, DATASETS};

/// Rows read per statement unless configured (SALESOPS_EXPORT_BATCH_ROWS).
pub const DEFAULT_BATCH_ROWS: u64 = 5_000;

/// How a column is read from the database and written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A BIGINT (ids, counts, versions).
    Int,
    /// A double (S&OP headcount).
    Float,
    Bool,
    /// Text, including enum names.
    Text,
    /// Integer cents written as an exact decimal with two places ("1234.50").
    Money,
    /// Parts per million written as an exact decimal ("0.6").
    Ppm,
    /// An ISO date (YYYY-MM-DD).
    Date,
    /// An RFC 3339 UTC instant with microseconds.
    Timestamp,
}

/// One output column: its name in the export and its SQL expression.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub sql: &'static str,
    pub kind: Kind,
}

/// Shorthand for the dataset tables.
pub const fn col(name: &'static str, sql: &'static str, kind: Kind) -> Column {
    Column { name, sql, kind }
}

/// How the caller's scope narrows a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Reference or organisation-wide data: every row for every allowed role.
    Everything,
    /// Rows of a deal (the FROM clause has the `deal` table aliased `deal`):
    /// the deal's owner in the caller's scope, and the deal filters apply.
    Deals,
    /// Rows owned by a rep, by this column (REP: own rows; MANAGER: team).
    Rep(&'static str),
}

/// An exportable table.
#[derive(Debug)]
pub struct Dataset {
    /// The name in `GET /export/<name>`.
    pub name: &'static str,
    pub description: &'static str,
    /// Roles that may export it: the same lists as the GraphQL reads.
    pub roles: &'static [Role],
    /// `FROM ...` text (tables and joins), without the keyword.
    pub from: &'static str,
    /// The unique integer column the batches are ordered by (`ids` filters it).
    pub id: &'static str,
    /// The instant `updatedSince` compares with (inclusive).
    pub since: &'static str,
    pub scope: Scope,
    /// The first column is the id.
    pub columns: &'static [Column],
}

/// A value read from a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
    /// Money (two places) or a ppm ratio, exact.
    Decimal(Decimal),
    Date(NaiveDate),
    Timestamp(DateTime<Utc>),
}

/// The filters of an export (query parameters, parsed at the edge).
#[derive(Debug, Clone, Default)]
pub struct ExportFilter {
    /// Rows whose `since` column is at or after this instant.
    pub updated_since: Option<DateTime<Utc>>,
    /// Rows with these ids.
    pub ids: Option<Vec<i64>>,
    /// For `Scope::Deals` datasets: the deal filter (status, stages, owners,
    /// territories, period fields, ...), the same SQL as `deals(filter:)`.
    pub deal: DealFilter,
}

/// One batch of rows and the id to continue after (None at the end).
#[derive(Debug)]
pub struct Batch {
    pub rows: Vec<Vec<Cell>>,
    pub next_after: Option<i64>,
}

impl Dataset {
    /// May this principal export the dataset? FORBIDDEN names the role.
    pub fn authorize(&self, p: &Principal) -> AppResult<()> {
        p.require(self.roles)
    }

    /// Whether the deal filters (status, period fields, ...) apply.
    pub fn takes_deal_filter(&self) -> bool {
        self.scope == Scope::Deals
    }

    pub fn column_names(&self) -> Vec<&'static str> {
        self.columns.iter().map(|c| c.name).collect()
    }

    /// The statement of one batch: rows after `after` in id order.
    pub fn batch_sql(
        &self,
        p: &Principal,
        f: &ExportFilter,
        d: Dialect,
        after: Option<i64>,
        limit: u64,
    ) -> Sql {
        let select = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| match c.kind {
                // PostgreSQL decodes integer (int4) columns only as i32.
                Kind::Int | Kind::Money | Kind::Ppm => format!("CAST({} AS BIGINT) AS c{i}", c.sql),
                _ => format!("{} AS c{i}", c.sql),
            })
            .collect::<Vec<_>>()
            .join(", ");
        let mut sql = Sql::new(format!("SELECT {select} FROM {} WHERE 1 = 1", self.from));
        match self.scope {
            Scope::Everything => {}
            Scope::Deals => f.deal.push_sql(&mut sql, p.scope(), d),
            Scope::Rep(column) => {
                let (text, values) = p.scope().rep_sql(column);
                sql.push(" AND ").push_with(&text, values);
            }
        }
        if let Some(t) = f.updated_since {
            sql.push(&format!(" AND {} >= ", self.since)).bind(t);
        }
        if let Some(ids) = &f.ids {
            sql.push(&format!(" AND {} IN ", self.id))
                .bind_list(ids.iter().copied());
        }
        if let Some(a) = after {
            sql.push(&format!(" AND {} > ", self.id)).bind(a);
        }
        sql.push(&format!(" ORDER BY {} LIMIT ", self.id))
            .bind(limit as i64);
        sql
    }

    /// Reads the rows after `after` (at most `limit`).
    pub async fn batch(
        &self,
        db: &impl ConnectionTrait,
        p: &Principal,
        f: &ExportFilter,
        after: Option<i64>,
        limit: u64,
    ) -> AppResult<Batch> {
        let backend = db.get_database_backend();
        let sql = self.batch_sql(p, f, Dialect::of(db), after, limit);
        let results = db.query_all_raw(sql.statement(backend)).await?;
        let full = results.len() as u64 >= limit;
        let mut rows = Vec::with_capacity(results.len());
        for r in &results {
            rows.push(self.read_row(r)?);
        }
        let next_after = match rows.last() {
            Some(row) if full => match row.first() {
                Some(Cell::Int(id)) => Some(*id),
                _ => None,
            },
            _ => None,
        };
        Ok(Batch { rows, next_after })
    }

    fn read_row(&self, r: &QueryResult) -> AppResult<Vec<Cell>> {
        let mut row = Vec::with_capacity(self.columns.len());
        for (i, c) in self.columns.iter().enumerate() {
            let cell = match c.kind {
                Kind::Int => r.try_get_by_index::<Option<i64>>(i)?.map(Cell::Int),
                Kind::Money => r
                    .try_get_by_index::<Option<i64>>(i)?
                    .map(|v| Cell::Decimal(from_cents(v))),
                Kind::Ppm => r
                    .try_get_by_index::<Option<i64>>(i)?
                    .map(|v| Cell::Decimal(Decimal::new(v, 6).normalize())),
                Kind::Float => r.try_get_by_index::<Option<f64>>(i)?.map(Cell::Float),
                Kind::Bool => r.try_get_by_index::<Option<bool>>(i)?.map(Cell::Bool),
                Kind::Text => r.try_get_by_index::<Option<String>>(i)?.map(Cell::Text),
                Kind::Date => r.try_get_by_index::<Option<NaiveDate>>(i)?.map(Cell::Date),
                Kind::Timestamp => r
                    .try_get_by_index::<Option<DateTime<Utc>>>(i)?
                    .map(Cell::Timestamp),
            };
            row.push(cell.unwrap_or(Cell::Null));
        }
        Ok(row)
    }
}

/// Writes the audit entry of an export: who, which dataset, the filters as
/// given, the rows sent and whether the stream completed.
pub async fn record(
    db: &impl ConnectionTrait,
    p: &Principal,
    dataset: &str,
    filters: &serde_json::Value,
    rows: u64,
    complete: bool,
) -> AppResult<()> {
    let mut changes = super::audit::Changes::new();
    changes
        .created("filters", filters)
        .created("rows", &rows)
        .created("complete", &complete);
    super::audit::record(db, &p.subject, "export", "Export", dataset, &changes).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dataset_starts_with_its_id_and_has_unique_columns() {
        for d in DATASETS {
            assert_eq!(d.columns[0].name, "id", "{}", d.name);
            assert_eq!(d.columns[0].sql, d.id, "{}", d.name);
            assert_eq!(d.columns[0].kind, Kind::Int, "{}", d.name);
            let mut names = d.column_names();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), d.columns.len(), "{}", d.name);
            assert!(find(d.name).is_some());
        }
    }

    #[test]
    fn a_rep_batch_is_scoped_and_keyed() {
        let rep = Principal {
            subject: "r".into(),
            role: Role::Rep,
            rep_id: Some(7),
        };
        let deals = find("deals").unwrap();
        let f = ExportFilter {
            ids: Some(vec![1, 2]),
            ..Default::default()
        };
        let sql = deals.batch_sql(&rep, &f, Dialect::Sqlite, Some(10), 500);
        assert!(sql.text().contains("deal.owner_id = ?"), "{}", sql.text());
        assert!(sql.text().contains("deal.id IN (?, ?)"), "{}", sql.text());
        assert!(
            sql.text()
                .ends_with("AND deal.id > ? ORDER BY deal.id LIMIT ?"),
            "{}",
            sql.text()
        );
    }
}
