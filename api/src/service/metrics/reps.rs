//! Per-rep totals shared by quota attainment, rep performance and
//! commissions: quota and closed-won in a period (and optionally a second
//! period to compare with), in one statement over the reps in scope.
//!
//! The reps listed are the active reps in scope plus any rep in scope with
//! a quota or closed-won in one of the periods (an inactive rep who still
//! carried a quota is measured). Quotas count when their range lies inside
//! the period (DESIGN.md).
use sea_orm::{ConnectionTrait, FromQueryResult};

use crate::clock::start_of;
use crate::db::{Dialect, Sql};
use crate::domain::period::Period;
use crate::error::AppResult;
use crate::service::access::{team_subquery_sql, DealScope};

#[derive(Debug, Clone, Default, PartialEq, FromQueryResult)]
pub struct RepTotals {
    pub rep_id: i64,
    pub rate_ppm: i64,
    pub threshold_ppm: i64,
    pub quota_cents: i64,
    pub won_cents: i64,
    pub prev_quota_cents: i64,
    pub prev_won_cents: i64,
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

/// `SUM(CASE WHEN cond THEN col ELSE 0 END)` as a 64-bit integer, 0 when
/// nothing matched.
fn sum_when(d: Dialect, cond: &Sql, col: &str) -> Sql {
    let template = d.sum_i64("\u{0}");
    let (before, after) = template.split_once('\u{0}').unwrap_or((&template, ""));
    let mut s = Sql::new(format!("{before}CASE WHEN "));
    s.append(cond)
        .push(&format!(" THEN {col} ELSE 0 END{after}"));
    s
}

/// One statement; rows ordered by rep id.
pub async fn rep_totals(
    db: &impl ConnectionTrait,
    scope: DealScope,
    current: &Period,
    previous: Option<&Period>,
    narrow: RepNarrowing,
) -> AppResult<Vec<RepTotals>> {
    let d = Dialect::of(db);
    let (cur_q, cur_w) = (quota_in(current), closed_in(current));
    let prev = previous.map(|p| (quota_in(p), closed_in(p)));
    // Without a second period its sums are constant 0 and its ranges vanish.
    let prev_sum = |pick: fn(&(Sql, Sql)) -> &Sql, col: &str| match &prev {
        Some(p) => sum_when(d, pick(p), col),
        None => Sql::new("CAST(0 AS BIGINT)"),
    };
    let either = |cur: &Sql, pick: fn(&(Sql, Sql)) -> &Sql| {
        let mut s = Sql::new("(");
        s.append(cur);
        if let Some(p) = &prev {
            s.push(" OR ").append(pick(p));
        }
        s.push(")");
        s
    };
    let mut sql = Sql::new(
        "SELECT rep.id AS rep_id, rep.commission_rate_ppm AS rate_ppm, \
         rep.commission_threshold_ppm AS threshold_ppm, \
         COALESCE(q.cur, 0) AS quota_cents, COALESCE(q.prev, 0) AS prev_quota_cents, \
         COALESCE(w.cur, 0) AS won_cents, COALESCE(w.prev, 0) AS prev_won_cents \
         FROM rep LEFT JOIN (SELECT quota.rep_id AS rep_id, ",
    );
    sql.append(&sum_when(d, &cur_q, "quota.amount_cents"))
        .push(" AS cur, ")
        .append(&prev_sum(|p| &p.0, "quota.amount_cents"))
        .push(" AS prev FROM quota WHERE ")
        .append(&either(&cur_q, |p| &p.0))
        .push(" GROUP BY quota.rep_id) q ON q.rep_id = rep.id LEFT JOIN (SELECT deal.owner_id AS owner_id, ")
        .append(&sum_when(d, &cur_w, "deal.amount_cents"))
        .push(" AS cur, ")
        .append(&prev_sum(|p| &p.1, "deal.amount_cents"))
        .push(" AS prev FROM deal WHERE deal.status = 'WON' AND ")
        .append(&either(&cur_w, |p| &p.1))
        .push(" GROUP BY deal.owner_id) w ON w.owner_id = rep.id WHERE ");
    let (scope_sql, scope_values) = scope.rep_sql("rep.id");
    sql.push_with(&scope_sql, scope_values)
        .push(" AND (rep.active = ")
        .bind(true)
        .push(" OR q.rep_id IS NOT NULL OR w.owner_id IS NOT NULL)");
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
    Ok(
        RepTotals::find_by_statement(sql.statement(db.get_database_backend()))
            .all(db)
            .await?,
    )
}
