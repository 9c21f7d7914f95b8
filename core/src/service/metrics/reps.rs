//! Per-rep totals shared by quota attainment, rep performance and
//! commissions: quota and closed-won in a period (and optionally a second
//! period to compare with), in one statement over the reps in scope.
//!
//! The reps listed are the active reps in scope plus any rep in scope with
//! a quota or closed-won in one of the periods (an inactive rep who still
//! carried a quota is measured), except reps that do not carry a quota
//! (managers who do not sell) unless they have a quota in the current
//! period (docs/design.md, Forecast calls). Quotas count when their range
//! lies inside the period (docs/design.md, Quota attainment).
use entity::rep;
use sea_orm::ConnectionTrait;

use crate::clock::start_of;
use crate::db::{Dialect, Sql, SumCents};
use crate::domain::period::Period;
use crate::error::AppResult;
use crate::rows::{Columns, Positional, Value};
use crate::service::access::{team_subquery_sql, DealScope};
use crate::service::deal_filter::DealFilter;
use crate::service::grouping::Dimension;
use crate::service::rollup;

/// A rep's row (read in the same statement, so its `rep` field needs no
/// further query) with its sums.
#[derive(Debug, Clone, PartialEq)]
pub struct RepTotals {
    pub rep: rep::Model,
    pub rate_ppm: i64,
    pub threshold_ppm: i64,
    pub quota_cents: i128,
    pub won_cents: i128,
    pub prev_quota_cents: i128,
    pub prev_won_cents: i128,
}

/// Narrows the reps measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RepNarrowing {
    /// Reps of this territory or any territory below it.
    pub territory_id: Option<i64>,
    /// This manager and every rep below them, transitively.
    pub manager_id: Option<i64>,
}

fn quota_in(p: &Period) -> Sql {
    let mut s = Sql::new("(quota.start_date >= ");
    s.bind(p.start())
        .push(" AND quota.end_date <= ")
        .bind(p.end())
        .push(")");
    s
}

fn closed_in(p: &Period) -> Sql {
    let mut s = Sql::new("(deal.closed_at >= ");
    s.bind(start_of(p.start()))
        .push(" AND deal.closed_at < ")
        .bind(start_of(p.end()))
        .push(")");
    s
}

/// `SUM(CASE WHEN cond THEN col ELSE 0 END)` as an exact money sum, 0
/// when nothing matched.
fn sum_when(d: Dialect, cond: &Sql, col: &str) -> Sql {
    let mut case = Sql::new("CASE WHEN ");
    case.append(cond).push(&format!(" THEN {col} ELSE 0 END"));
    d.sum_cents_sql(&case)
}

/// What a rep's per-period sums add up: quota rows or won deals.
#[derive(Clone, Copy)]
enum Source {
    Quota,
    Won,
}

impl Source {
    fn column(self) -> &'static str {
        match self {
            Source::Quota => "quota.amount_cents",
            Source::Won => "deal.amount_cents",
        }
    }
    /// The row belongs to the period.
    fn within(self, p: &Period) -> Sql {
        match self {
            Source::Quota => quota_in(p),
            Source::Won => closed_in(p),
        }
    }
    /// The row starts (closes) on or after the period's start.
    fn since_start(self, p: &Period) -> Sql {
        let mut s = Sql::new("");
        match self {
            Source::Quota => s.push("quota.start_date >= ").bind(p.start()),
            Source::Won => s.push("deal.closed_at >= ").bind(start_of(p.start())),
        };
        s
    }
    /// The row ends (closes) before the period's end.
    fn until_end(self, p: &Period) -> Sql {
        let mut s = Sql::new("");
        match self {
            Source::Quota => s.push("quota.end_date <= ").bind(p.end()),
            Source::Won => s.push("deal.closed_at < ").bind(start_of(p.end())),
        };
        s
    }
}

/// (current sum, previous sum, WHERE) of one source. Rows are first limited
/// to the periods; then, without a previous period, the current sum is a
/// plain SUM, and with a previous period wholly before the current one (the
/// default comparison) one bound tells them apart.
fn period_sums(d: Dialect, src: Source, cur: &Period, prev: Option<&Period>) -> (Sql, Sql, Sql) {
    let col = src.column();
    match prev {
        None => (
            Sql::new(d.sum_cents(col)),
            Sql::new(d.zero_cents()),
            src.within(cur),
        ),
        Some(prev) => {
            let mut within = Sql::new("(");
            within
                .append(&src.within(cur))
                .push(" OR ")
                .append(&src.within(prev))
                .push(")");
            let (cur_cond, prev_cond) = if prev.end() <= cur.start() {
                (src.since_start(cur), src.until_end(prev))
            } else {
                (src.within(cur), src.within(prev))
            };
            (
                sum_when(d, &cur_cond, col),
                sum_when(d, &prev_cond, col),
                within,
            )
        }
    }
}

/// Closed-won per owner in the current (`cur`) and previous (`prev`)
/// period, one row per owner who won something in either: from the
/// rollups (tag 0 the current period's measure rows, 1 the previous
/// one's), else from the deals.
fn won_by_owner(d: Dialect, current: &Period, previous: Option<&Period>) -> Sql {
    if rollup::usable(&DealFilter::default(), &[Dimension::Rep]) {
        // Won parts only: the cells of lost deals are not read (on
        // 1,000,000 deals the attainment statement ran 346 -> 393
        // statements/s in pgbench at 16 clients).
        let mut parts = rollup::Parts::new(d);
        parts.won(0, current.start(), current.end());
        if let Some(p) = previous {
            parts.won(1, p.start(), p.end());
        }
        if let Some(rel) = parts.relation() {
            // With one period every row is its own: no tag to test.
            let (cur, prev) = if previous.is_some() {
                (
                    rollup::sum_cents(d, "won_cents", Some("deal.tag = 0")),
                    rollup::sum_cents(d, "won_cents", Some("deal.tag = 1")),
                )
            } else {
                (
                    rollup::sum_cents(d, "won_cents", None),
                    d.zero_cents().to_owned(),
                )
            };
            let mut sql = Sql::new(format!(
                "SELECT deal.owner_id AS owner_id, {cur} AS cur, {prev} AS prev FROM "
            ));
            sql.append(&rel)
                .push(" GROUP BY deal.owner_id HAVING SUM(deal.won) <> 0");
            return sql;
        }
    }
    let (w_cur, w_prev, w_where) = period_sums(d, Source::Won, current, previous);
    let mut sql = Sql::new("SELECT deal.owner_id AS owner_id, ");
    sql.append(&w_cur)
        .push(" AS cur, ")
        .append(&w_prev)
        .push(" AS prev FROM deal WHERE deal.status = 'WON' AND ")
        .append(&w_where)
        .push(" GROUP BY deal.owner_id");
    sql
}

/// One statement; rows ordered by rep id. `columns` are the rep columns
/// the caller shows (the rest of each `rep` is unread, `rows::Columns`): an
/// attainment table that shows reps' ids and names reads those two (on
/// 1,000,000 deals the statement ran 145 -> 180 statements/s in pgbench
/// with two rep columns instead of all fifteen). `rate_ppm` and
/// `threshold_ppm` are the rep's, so 0 unless `columns` holds them.
pub async fn rep_totals(
    db: &impl ConnectionTrait,
    scope: DealScope,
    current: &Period,
    previous: Option<&Period>,
    narrow: RepNarrowing,
    columns: Columns,
) -> AppResult<Vec<RepTotals>> {
    let d = Dialect::of(db);
    let (q_cur, q_prev, q_where) = period_sums(d, Source::Quota, current, previous);
    let won = won_by_owner(d, current, previous);
    // Without a previous period its sums are 0: not selected (two text
    // columns fewer to decode per rep).
    let sums = if previous.is_some() {
        "COALESCE(q.cur, '0') AS quota_cents, COALESCE(w.cur, '0') AS won_cents, \
         COALESCE(q.prev, '0') AS prev_quota_cents, COALESCE(w.prev, '0') AS prev_won_cents"
    } else {
        "COALESCE(q.cur, '0') AS quota_cents, COALESCE(w.cur, '0') AS won_cents"
    };
    let mut sql = Sql::new(format!(
        "SELECT {}, {sums} FROM rep LEFT JOIN (SELECT quota.rep_id AS rep_id, ",
        rep::Model::select_columns("rep", columns)
    ));
    sql.append(&q_cur)
        .push(" AS cur, ")
        .append(&q_prev)
        .push(" AS prev FROM quota WHERE ")
        .append(&q_where)
        .push(" GROUP BY quota.rep_id) q ON q.rep_id = rep.id LEFT JOIN (")
        .append(&won)
        .push(") w ON w.owner_id = rep.id WHERE ");
    let (scope_sql, scope_values) = scope.rep_sql("rep.id");
    sql.push_with(&scope_sql, scope_values)
        .push(" AND (rep.active = ")
        .bind(true)
        .push(" OR q.rep_id IS NOT NULL OR w.owner_id IS NOT NULL) AND (rep.quota_carrying = ")
        .bind(true);
    if previous.is_none() {
        // `q` holds exactly the current period's quotas: a rep has one
        // there when it has a row (a second scan of quota cost the
        // attainment statement about 15%).
        sql.push(" OR q.rep_id IS NOT NULL)");
    } else {
        sql.push(
            " OR EXISTS (SELECT 1 FROM quota qc WHERE qc.rep_id = rep.id AND qc.start_date >= ",
        )
        .bind(current.start())
        .push(" AND qc.end_date <= ")
        .bind(current.end())
        .push("))");
    }
    if let Some(t) = narrow.territory_id {
        sql.push(
            " AND rep.territory_id IN (WITH RECURSIVE sub(id) AS (SELECT id FROM territory WHERE id = ",
        )
        .bind(t)
        .push(" UNION SELECT t.id FROM territory t JOIN sub ON t.parent_id = sub.id) SELECT id FROM sub)");
    }
    if let Some(m) = narrow.manager_id {
        sql.push(&format!(" AND rep.id IN ({})", team_subquery_sql("?")))
            .push_with("", [m.into()]);
    }
    sql.push(" ORDER BY rep.id");
    let rows = db
        .query_all_raw(sql.statement(db.get_database_backend()))
        .await?;
    // Sized up front: collecting a Result grows the Vec by doubling, and a
    // row with its rep is a few hundred bytes.
    let mut totals = Vec::with_capacity(rows.len());
    for row in &rows {
        let rep = rep::Model::decode_columns(row, 0, columns)?;
        // The sums follow the rep's columns, in the SELECT's order.
        let at = columns.count();
        let sum = |i: usize| SumCents::at(row, at + i).map(|s| s.0);
        let (prev_quota_cents, prev_won_cents) = match previous {
            Some(_) => (sum(2)?, sum(3)?),
            None => (0, 0),
        };
        totals.push(RepTotals {
            rate_ppm: rep.commission_rate_ppm,
            threshold_ppm: rep.commission_threshold_ppm,
            rep,
            quota_cents: sum(0)?,
            won_cents: sum(1)?,
            prev_quota_cents,
            prev_won_cents,
        });
    }
    Ok(totals)
}
