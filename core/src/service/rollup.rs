//! Exact monthly rollups of the deals (docs/design.md, Rollups).
//!
//! The cells (`migration::rollup_sql`) hold, per UTC month, owner,
//! territory and stage, the won, lost and open measures of the deals in
//! them; triggers on `deal` append every change to a delta table in the
//! writer's transaction, so cells plus deltas equal the deal table at every
//! instant. A metric reads them through [`Parts`]: the whole months of its
//! day range from the cells, the days before the first and after the last
//! whole month from the deal table, so any period is exact.
//!
//! The rollups answer only what a cell knows: filters on the owner,
//! territory, segment or stage, groupings by those (and the owner's
//! manager), and the current state of the deals (an as-of question reads
//! the history). Anything else scans the deals as before ([`usable`]).
use std::time::Duration;

use chrono::{Datelike, Months, NaiveDate};
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, TransactionTrait};

use migration::rollup_sql;

use crate::clock::start_of;
use crate::db::{begin_write, Dialect, Sql};
use crate::error::AppResult;
use crate::service::deal_filter::DealFilter;
use crate::service::grouping::Dimension;

/// The exact sum of a cents measure of a `Parts` relation (its two halves
/// summed apart, recombined as `Dialect::sum_cents` does, read with
/// `SumCents`); with `when`, of the rows where it holds.
pub(crate) fn sum_cents(d: Dialect, measure: &str, when: Option<&str>) -> String {
    let half = |h: &str| match when {
        Some(c) => format!("CASE WHEN {c} THEN deal.{measure}_{h} ELSE 0 END"),
        None => format!("deal.{measure}_{h}"),
    };
    let (hi, lo) = (half("hi"), half("lo"));
    match d {
        Dialect::Sqlite => {
            format!("(COALESCE(SUM({hi}), 0) || ':' || COALESCE(SUM({lo}), 0))")
        }
        Dialect::Postgres => {
            format!("CAST(COALESCE(SUM({hi}), 0) * 4294967296 + COALESCE(SUM({lo}), 0) AS TEXT)")
        }
    }
}

/// Whether the current request reads rollups at all (the server's setting,
/// and a request may opt out with `Salesops-Rollups: off`).
fn enabled() -> bool {
    crate::work::rollups_enabled()
}

/// Whether the filter narrows deals only by what a cell knows.
fn covers_filter(f: &DealFilter) -> bool {
    let DealFilter {
        status,
        stage_ids: _,
        owner_ids: _,
        territory_ids: _,
        segments: _,
        forecast_categories,
        min_amount_cents,
        max_amount_cents,
        opened_in,
        expected_close_in,
        closed_in,
        search,
        updated_since,
        playbook_ids,
        not_updated_since,
        risk_signals,
    } = f;
    status.is_none()
        && forecast_categories.is_none()
        && min_amount_cents.is_none()
        && max_amount_cents.is_none()
        && opened_in.is_none()
        && expected_close_in.is_none()
        && closed_in.is_none()
        && search.as_deref().map(str::trim).unwrap_or("").is_empty()
        && updated_since.is_none()
        && playbook_ids.is_none()
        && not_updated_since.is_none()
        && risk_signals.is_none()
}

/// Whether a grouping is a column of the cell (or joins from one).
fn covers_dimension(dim: Dimension) -> bool {
    matches!(
        dim,
        Dimension::None
            | Dimension::Rep
            | Dimension::Territory
            | Dimension::Segment
            | Dimension::Manager
            | Dimension::Stage
    )
}

/// Whether a question over the current deals with this filter and these
/// groupings is answered from the rollups.
pub fn usable(filter: &DealFilter, dims: &[Dimension]) -> bool {
    enabled() && covers_filter(filter) && dims.iter().all(|d| covers_dimension(*d))
}

/// A half-open day range as its whole months and the days around them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Split {
    /// First day of the first whole month, first day after the last one.
    months: Option<(NaiveDate, NaiveDate)>,
    /// The days outside whole months (at most two ranges).
    days: Vec<(NaiveDate, NaiveDate)>,
}

fn split(from: NaiveDate, to: NaiveDate) -> Split {
    if from >= to {
        return Split {
            months: None,
            days: Vec::new(),
        };
    }
    let first = if from.day() == 1 {
        Some(from)
    } else {
        from.with_day(1)
            .and_then(|d| d.checked_add_months(Months::new(1)))
    };
    let last = to.with_day(1);
    match (first, last) {
        (Some(a), Some(b)) if a < b => Split {
            months: Some((a, b)),
            days: [(from, a), (b, to)]
                .into_iter()
                .filter(|(x, y)| x < y)
                .collect(),
        },
        _ => Split {
            months: None,
            days: vec![(from, to)],
        },
    }
}

/// Which measures a part reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Closed,
    /// Closed, but only the won deals are needed (a won cycle).
    Won,
    Open,
}

impl Kind {
    /// The cells (or deltas) with a measure of this kind.
    fn cell_filter(self) -> String {
        let (lo, hi) = match self {
            Kind::Closed => (0, rollup_sql::CLOSED),
            Kind::Won => (0, rollup_sql::WON),
            Kind::Open => (rollup_sql::CLOSED, rollup_sql::MEASURES.len()),
        };
        let any: Vec<String> = rollup_sql::MEASURES[lo..hi]
            .iter()
            .map(|m| format!("{m} <> 0"))
            .collect();
        format!("({})", any.join(" OR "))
    }

    /// The measures as the part selects them (the other kind's are 0).
    fn cell_measures(self) -> String {
        rollup_sql::MEASURES
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let mine = match self {
                    Kind::Closed => i < rollup_sql::CLOSED,
                    Kind::Won => i < rollup_sql::WON,
                    Kind::Open => i >= rollup_sql::CLOSED,
                };
                if mine {
                    format!("{m} AS {m}")
                } else {
                    format!("0 AS {m}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A derived table `deal` of measure rows (`tag`, owner_id, territory_id,
/// stage_id and the measures of `rollup_sql::MEASURES`) built from parts:
/// cells for whole months, deal rows for the days around them. The outer
/// query sums the measures per group; the tag tells parts apart (a period
/// and its comparison period, a forecast's period and lookback).
pub(crate) struct Parts {
    d: Dialect,
    sql: Sql,
    empty: bool,
}

impl Parts {
    pub fn new(d: Dialect) -> Self {
        Self {
            d,
            sql: Sql::new("("),
            empty: true,
        }
    }

    fn union(&mut self) -> &mut Sql {
        if !self.empty {
            self.sql.push(" UNION ALL ");
        }
        self.empty = false;
        &mut self.sql
    }

    fn cells(&mut self, tag: i64, kind: Kind, from: NaiveDate, to: NaiveDate) {
        for table in ["deal_rollup", "deal_rollup_delta"] {
            let text = format!(
                "SELECT {tag} AS tag, owner_id, NULLIF(territory_id, 0) AS territory_id, stage_id, {} \
                 FROM {table} WHERE month >= ",
                kind.cell_measures()
            );
            self.union()
                .push(&text)
                .bind(from)
                .push(" AND month < ")
                .bind(to)
                .push(&format!(" AND {}", kind.cell_filter()));
        }
    }

    /// One measure row per deal of `WHERE cond`.
    fn deal_rows(&mut self, tag: i64, kind: Kind, from_sql: &str) -> &mut Sql {
        let keep = |status: &str| match kind {
            Kind::Closed => status != "OPEN",
            Kind::Won => status == "WON",
            Kind::Open => status == "OPEN",
        };
        let when = |status: &str, v: &str| {
            if !keep(status) {
                "0".to_owned()
            } else if kind == Kind::Open {
                // Every row of an open part is an open deal.
                v.to_owned()
            } else {
                format!("CASE WHEN deal.status = '{status}' THEN {v} ELSE 0 END")
            }
        };
        let measures = rollup_sql::measures(
            "deal",
            &when,
            &self.d.day_diff("deal.opened_at", "deal.closed_at"),
        );
        let text = format!(
            "SELECT {tag} AS tag, deal.owner_id AS owner_id, deal.territory_id AS territory_id, \
             deal.stage_id AS stage_id, {measures} FROM {from_sql} WHERE "
        );
        self.union().push(&text)
    }

    /// The won and lost deals closed on the days [from, to).
    pub fn closed(&mut self, tag: i64, from: NaiveDate, to: NaiveDate) -> &mut Self {
        self.closed_kind(tag, Kind::Closed, from, to)
    }

    /// The won deals closed on the days [from, to) (lost measures are 0).
    pub fn won(&mut self, tag: i64, from: NaiveDate, to: NaiveDate) -> &mut Self {
        self.closed_kind(tag, Kind::Won, from, to)
    }

    fn closed_kind(&mut self, tag: i64, kind: Kind, from: NaiveDate, to: NaiveDate) -> &mut Self {
        let s = split(from, to);
        if let Some((a, b)) = s.months {
            self.cells(tag, kind, a, b);
        }
        let status = match kind {
            Kind::Won => "deal.status = 'WON'",
            _ => "deal.status IN ('WON', 'LOST')",
        };
        for (x, y) in s.days {
            self.deal_rows(tag, kind, "deal")
                .push(&format!("{status} AND deal.closed_at >= "))
                .bind(start_of(x))
                .push(" AND deal.closed_at < ")
                .bind(start_of(y));
        }
        self
    }

    /// The open deals with their own expected close date on the days
    /// [from, to), and with `undated` (days SQL, its join) the open deals
    /// without one dated by it: opened_at plus that many days.
    pub fn open(
        &mut self,
        tag: i64,
        from: NaiveDate,
        to: NaiveDate,
        undated: Option<(&str, &str)>,
    ) -> &mut Self {
        let s = split(from, to);
        if let Some((a, b)) = s.months {
            self.cells(tag, Kind::Open, a, b);
        }
        for (x, y) in s.days {
            self.deal_rows(tag, Kind::Open, "deal")
                .push("deal.status = 'OPEN' AND deal.expected_close_date >= ")
                .bind(x)
                .push(" AND deal.expected_close_date < ")
                .bind(y);
        }
        if let Some((days, join)) = undated {
            let dated = match self.d {
                Dialect::Postgres => {
                    format!("((deal.opened_at) AT TIME ZONE 'UTC')::date + CAST({days} AS INTEGER)")
                }
                Dialect::Sqlite => format!("date(deal.opened_at, '+' || {days} || ' days')"),
            };
            self.deal_rows(tag, Kind::Open, &format!("deal{join}"))
                .push(&format!(
                    "deal.status = 'OPEN' AND deal.expected_close_date IS NULL AND {dated} >= "
                ))
                .bind(from)
                .push(&format!(" AND {dated} < "))
                .bind(to);
        }
        self
    }

    /// `(...) deal`, or None when no part was added.
    pub fn relation(mut self) -> Option<Sql> {
        if self.empty {
            return None;
        }
        self.sql.push(") deal");
        Some(self.sql)
    }
}

/// Folds the deltas into the cells. PostgreSQL: one statement moves the
/// deltas visible now (deleted and added in the same transaction, so a
/// reader sees them in one table or the other, never both or neither);
/// only one compaction runs at a time (an advisory lock), and writers never
/// wait for it. SQLite: both steps inside its single writer's lock.
/// Returns the delta rows folded.
pub async fn compact(db: &DatabaseConnection) -> AppResult<u64> {
    // Nothing pending: no transaction (on SQLite, no write lock).
    let pending = Count::find_by_statement(sea_orm::Statement::from_string(
        db.get_database_backend(),
        "SELECT COUNT(*) AS n FROM (SELECT 1 FROM deal_rollup_delta LIMIT 1) x",
    ))
    .one(db)
    .await?
    .map(|c| c.n)
    .unwrap_or(0);
    if pending == 0 {
        return Ok(0);
    }
    let cols = rollup_sql::columns();
    let key = rollup_sql::KEY.join(", ");
    let sums: Vec<String> = rollup_sql::MEASURES
        .iter()
        .map(|m| format!("SUM({m})"))
        .collect();
    let add: Vec<String> = rollup_sql::MEASURES
        .iter()
        .map(|m| format!("{m} = deal_rollup.{m} + excluded.{m}"))
        .collect();
    let upsert = format!("ON CONFLICT ({key}) DO UPDATE SET {}", add.join(", "));
    match Dialect::of(db) {
        Dialect::Postgres => {
            let tx = db.begin().await?;
            let locked = tx
                .query_one_raw(sea_orm::Statement::from_string(
                    db.get_database_backend(),
                    "SELECT pg_try_advisory_xact_lock(736626110001) AS locked",
                ))
                .await?
                .map(|r| r.try_get::<bool>("", "locked"))
                .transpose()?
                .unwrap_or(false);
            if !locked {
                return Ok(0);
            }
            let moved = tx
                .execute_unprepared(&format!(
                    "WITH moved AS (DELETE FROM deal_rollup_delta RETURNING {cols}), \
                     folded AS (INSERT INTO deal_rollup ({cols}) SELECT {key}, {sums} FROM moved \
                     GROUP BY {key} ORDER BY {key} {upsert} RETURNING 1) \
                     SELECT 1 FROM moved",
                    sums = sums.join(", ")
                ))
                .await?
                .rows_affected();
            tx.commit().await?;
            if moved > 0 {
                reclaim(db).await?;
            }
            Ok(moved)
        }
        Dialect::Sqlite => {
            let tx = begin_write(db).await?;
            tx.execute_unprepared(&format!(
                "INSERT INTO deal_rollup ({cols}) SELECT {key}, {sums} FROM deal_rollup_delta \
                 WHERE 1 GROUP BY {key} {upsert}",
                sums = sums.join(", ")
            ))
            .await?;
            let moved = tx
                .execute_unprepared("DELETE FROM deal_rollup_delta")
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok(moved)
        }
    }
}

/// PostgreSQL: vacuums the two tables a compaction churns. Every delta row
/// is deleted within seconds of its insert and every folded cell is
/// rewritten, so without a vacuum each read scans the dead rows too: on the
/// bench data set (autovacuum off) 1,627 dead pages of an empty delta table
/// made the quota attainment statement 22 ms instead of 10, and planned it
/// parallel. Autovacuum would get there within its naptime; this does not
/// wait for it. SKIP_LOCKED: a vacuum already running (or a rebuild) is
/// left alone.
async fn reclaim(db: &DatabaseConnection) -> AppResult<()> {
    db.execute_unprepared("VACUUM (SKIP_LOCKED) deal_rollup_delta, deal_rollup")
        .await?;
    Ok(())
}

/// Compacts every `every` while the process runs (a failure is logged and
/// tried again next time: reads stay exact with deltas pending).
pub fn spawn_compactor(db: DatabaseConnection, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = compact(&db).await {
                tracing::warn!(error = %e, "rollup compaction failed; trying again later");
            }
        }
    })
}

#[derive(FromQueryResult)]
struct Count {
    n: i64,
}

/// Cells whose rollup differs from what the deal table says now (missing,
/// extra or different); 0 when the rollups are exact.
pub async fn drift(db: &impl ConnectionTrait) -> AppResult<i64> {
    let b = db.get_database_backend();
    let deals = rollup_sql::cells_of_deals(b);
    let rollups = rollup_sql::cells_of_rollups();
    let sql = format!(
        "SELECT (SELECT COUNT(*) FROM (SELECT * FROM ({deals}) a EXCEPT SELECT * FROM ({rollups}) b) x) \
         + (SELECT COUNT(*) FROM (SELECT * FROM ({rollups}) c EXCEPT SELECT * FROM ({deals}) e) y) AS n"
    );
    let n = Count::find_by_statement(sea_orm::Statement::from_string(b, sql))
        .one(db)
        .await?
        .map(|c| c.n)
        .unwrap_or(0);
    Ok(n)
}

/// What a rebuild found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rebuilt {
    /// Cells that differed from the deal table before the rebuild.
    pub drifted: i64,
    /// Cells written.
    pub cells: u64,
}

/// Rebuilds the rollups from the deal table in one transaction; on
/// PostgreSQL deal writes wait for it (SHARE lock), readers do not.
pub async fn rebuild(db: &DatabaseConnection) -> AppResult<Rebuilt> {
    let b = db.get_database_backend();
    let tx = begin_write(db).await?;
    if Dialect::of(db) == Dialect::Postgres {
        tx.execute_unprepared("LOCK TABLE deal IN SHARE MODE")
            .await?;
    }
    let drifted = drift(&tx).await?;
    tx.execute_unprepared("DELETE FROM deal_rollup_delta")
        .await?;
    tx.execute_unprepared("DELETE FROM deal_rollup").await?;
    let cells = tx
        .execute_unprepared(&rollup_sql::fill(b))
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(Rebuilt { drifted, cells })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_period_of_whole_months_reads_cells_only() {
        assert_eq!(
            split(day("2026-10-01"), day("2027-01-01")),
            Split {
                months: Some((day("2026-10-01"), day("2027-01-01"))),
                days: vec![],
            }
        );
    }

    #[test]
    fn days_around_whole_months_read_the_deals() {
        assert_eq!(
            split(day("2025-12-07"), day("2026-12-07")),
            Split {
                months: Some((day("2026-01-01"), day("2026-12-01"))),
                days: vec![
                    (day("2025-12-07"), day("2026-01-01")),
                    (day("2026-12-01"), day("2026-12-07"))
                ],
            }
        );
    }

    #[test]
    fn less_than_a_whole_month_reads_the_deals() {
        for (a, b) in [
            ("2026-10-05", "2026-10-20"),
            ("2026-10-05", "2026-11-20"),
            ("2026-10-01", "2026-10-31"),
        ] {
            assert_eq!(
                split(day(a), day(b)),
                Split {
                    months: None,
                    days: vec![(day(a), day(b))],
                }
            );
        }
        assert_eq!(split(day("2026-10-05"), day("2026-10-05")).days, vec![]);
    }

    #[test]
    fn only_deal_filters_a_cell_knows_use_rollups() {
        assert!(covers_filter(&DealFilter::default()));
        assert!(covers_filter(&DealFilter {
            owner_ids: Some(vec![1]),
            territory_ids: Some(vec![2]),
            stage_ids: Some(vec![3]),
            search: Some("  ".into()),
            ..Default::default()
        }));
        assert!(!covers_filter(&DealFilter {
            min_amount_cents: Some(1),
            ..Default::default()
        }));
        assert!(!covers_filter(&DealFilter {
            search: Some("acme".into()),
            ..Default::default()
        }));
        assert!(!covers_dimension(Dimension::Source));
        assert!(covers_dimension(Dimension::Manager));
    }
}
