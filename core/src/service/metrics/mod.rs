//! Sales metrics (docs/design.md, Metrics), one module per metric. Every number
//! is aggregated in SQL over the deals the caller may see (`DealScope`) and
//! the contract's `DealFilter`; ratios and other math happen afterwards in
//! `domain::metrics` on those aggregates.
//!
//! Shared conventions:
//! - A deal is won (lost) in a period when its status is WON (LOST) and
//!   closed_at falls in it; day counts are differences of UTC dates.
//! - Open pipeline: OPEN deals whose expected close date (their own, else
//!   opened_at + the average won cycle of the 365 days ending today, see
//!   `deal_sets`) falls in the period; its weighted value multiplies each
//!   amount by the stage probability (coverage uses the unweighted one).
//! - Independent statements of one request run concurrently.
pub mod activities;
pub mod attainment;
pub mod closed;
pub mod commissions;
pub mod funnel;
pub mod health;
pub mod leads;
pub mod performance;
pub mod pipeline;
pub mod pipeline_changes;
pub mod playbook;
pub mod reps;
pub mod series;
pub mod win_rates;

use std::collections::HashMap;

use chrono::{Duration, NaiveDate};
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, FromQueryResult};

use super::access::DealScope;
use super::deal_filter::DealFilter;
use super::deal_sets::CYCLE_WINDOW_DAYS;
use super::grouping::Dimension;
use super::rollup;
use crate::clock::{self, start_of};
use crate::db::{Dialect, Sql, SumCents};
use crate::domain::metrics::weighted;
use crate::domain::period::Period;
use crate::error::AppResult;

/// The group key of a dimension as a BIGINT on both backends (PostgreSQL
/// types the CASE of enum dimensions as integer).
pub(crate) fn group_key_sql(dim: Dimension) -> String {
    format!("CAST({} AS BIGINT)", dim.key_sql())
}

/// What a caller of the won/lost aggregates needs of the won deals' sales
/// cycle: nothing, their total days, or also the median days. The median
/// comes with the aggregates only on PostgreSQL and when they scan the
/// deals ([`median_with_closed`]): the rollups hold no medians and SQLite
/// has no percentile function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cycle {
    Skip,
    Days,
    DaysAndMedian,
}

/// Won and lost deals of one group in a period.
#[derive(Debug, Clone, Default, PartialEq, FromQueryResult)]
pub struct ClosedAgg {
    pub group_id: Option<i64>,
    pub won: i64,
    pub lost: i64,
    pub won_cents: SumCents,
    pub lost_cents: SumCents,
    /// Total days opened -> closed of the won deals.
    pub won_days: i64,
    /// Their median, with [`Cycle::DaysAndMedian`] (none when nothing was
    /// won).
    pub median_days: Option<f64>,
}

/// Whether the median sales cycle of the deals won, grouped by `dim`, is
/// read with the won/lost aggregates (one scan for both) rather than by a
/// statement of its own: on PostgreSQL when the aggregates scan the deals.
pub(crate) fn median_with_closed(d: Dialect, filter: &DealFilter, dim: Dimension) -> bool {
    d == Dialect::Postgres && !rollup::usable(filter, &[dim])
}

/// The median column of the aggregates when it is not asked for.
fn no_median(d: Dialect) -> &'static str {
    match d {
        Dialect::Postgres => "CAST(NULL AS DOUBLE PRECISION) AS median_days",
        Dialect::Sqlite => "CAST(NULL AS REAL) AS median_days",
    }
}

/// `... AND deal.closed_at >= start AND deal.closed_at < end`.
pub(crate) fn push_closed_in(sql: &mut Sql, p: &Period) {
    sql.push(" AND deal.closed_at >= ")
        .bind(start_of(p.start()))
        .push(" AND deal.closed_at < ")
        .bind(start_of(p.end()));
}

/// The SELECT list of won/lost aggregates (aliases of `ClosedAgg`) over
/// the closed deals; the won cycle days (0 otherwise) and median (NULL
/// otherwise; PostgreSQL only) when asked for.
pub(crate) fn closed_columns(d: Dialect, cycle: Cycle) -> String {
    let day_diff = d.day_diff("deal.opened_at", "deal.closed_at");
    let days = if cycle >= Cycle::Days {
        d.sum_i64(&format!(
            "CASE WHEN deal.status = 'WON' THEN {day_diff} ELSE 0 END"
        ))
    } else {
        "CAST(0 AS BIGINT)".to_owned()
    };
    let median = match (cycle, d) {
        (Cycle::DaysAndMedian, Dialect::Postgres) => format!(
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY {day_diff}) \
             FILTER (WHERE deal.status = 'WON') AS median_days"
        ),
        _ => no_median(d).to_owned(),
    };
    format!(
        "COUNT(CASE WHEN deal.status = 'WON' THEN 1 END) AS won, \
         COUNT(CASE WHEN deal.status = 'LOST' THEN 1 END) AS lost, \
         {} AS won_cents, {} AS lost_cents, {days} AS won_days, {median}",
        d.sum_cents("CASE WHEN deal.status = 'WON' THEN deal.amount_cents ELSE 0 END"),
        d.sum_cents("CASE WHEN deal.status = 'LOST' THEN deal.amount_cents ELSE 0 END"),
    )
}

/// Where won/lost aggregates are read: the deals closed in the period, or
/// (when they cover the question) the rollups' measure rows of it.
pub(crate) struct ClosedFrom {
    /// `deal` or a derived table aliased `deal`.
    pub from: Sql,
    /// The aggregate columns of `ClosedAgg` (without group_id).
    pub columns: String,
    /// The WHERE condition before the filter's.
    pub cond: Sql,
}

pub(crate) fn closed_from(
    d: Dialect,
    filter: &DealFilter,
    dims: &[Dimension],
    period: &Period,
    cycle: Cycle,
) -> ClosedFrom {
    // The rollups hold no medians: asked for one, scan.
    if cycle < Cycle::DaysAndMedian && rollup::usable(filter, dims) {
        let mut parts = rollup::Parts::new(d);
        parts.closed(0, period.start(), period.end());
        if let Some(from) = parts.relation() {
            let days = if cycle >= Cycle::Days {
                d.sum_i64("deal.won_days")
            } else {
                "CAST(0 AS BIGINT)".to_owned()
            };
            return ClosedFrom {
                from,
                columns: format!(
                    "{} AS won, {} AS lost, {} AS won_cents, {} AS lost_cents, {days} AS won_days, {}",
                    d.sum_i64("deal.won"),
                    d.sum_i64("deal.lost"),
                    rollup::sum_cents(d, "won_cents", None),
                    rollup::sum_cents(d, "lost_cents", None),
                    no_median(d),
                ),
                cond: Sql::new("1 = 1"),
            };
        }
    }
    let mut cond = Sql::new("deal.status IN ('WON', 'LOST')");
    push_closed_in(&mut cond, period);
    ClosedFrom {
        from: Sql::new("deal"),
        columns: closed_columns(d, cycle),
        cond,
    }
}

/// Won/lost aggregates per group key in one statement (the cycle's parts
/// as `cycle` asks).
pub async fn closed_by_key(
    db: &impl ConnectionTrait,
    scope: DealScope,
    filter: &DealFilter,
    period: &Period,
    dim: Dimension,
    cycle: Cycle,
) -> AppResult<Vec<ClosedAgg>> {
    let d = Dialect::of(db);
    let src = closed_from(d, filter, &[dim], period, cycle);
    let mut sql = Sql::new(format!(
        "SELECT {} AS group_id, {} FROM ",
        group_key_sql(dim),
        src.columns
    ));
    sql.append(&src.from)
        .push(&dim.join_sql())
        .push(" WHERE ")
        .append(&src.cond);
    filter.push_sql(&mut sql, scope, d);
    dim.push_group_by(&mut sql);
    let rows = ClosedAgg::find_by_statement(sql.statement(db.get_database_backend()))
        .all(db)
        .await?;
    // NONE without any deal still answers its single row of zeros.
    Ok(rows
        .into_iter()
        .filter(|r| dim == Dimension::None || r.won + r.lost > 0)
        .collect())
}

/// Open pipeline of one group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpenAgg {
    pub deals: i64,
    pub cents: i128,
    /// Sum of amount x stage probability, not yet rounded.
    pub weighted: Decimal,
}

#[derive(FromQueryResult)]
struct OpenRow {
    group_id: Option<i64>,
    probability_ppm: i64,
    deals: i64,
    cents: SumCents,
}

/// Open pipeline per group key in one statement. The average won cycle that
/// dates open deals without an expected close (`deal_sets`: the deals won in
/// the 365 days ending today, in the caller's scope and filter, mean days
/// rounded half up, no fallback when nothing was won) is a CTE of the same
/// statement, in exact integer arithmetic. Grouped by key and stage
/// probability, so the weighting stays exact (no SUM of amount x ppm that
/// could overflow) and costs a few rows per key.
pub async fn open_by_key(
    db: &impl ConnectionTrait,
    scope: DealScope,
    filter: &DealFilter,
    period: &Period,
    dim: Dimension,
) -> AppResult<HashMap<Option<i64>, OpenAgg>> {
    let d = Dialect::of(db);
    let today = clock::today();
    let from = today - Duration::days(CYCLE_WINDOW_DAYS - 1);
    let key = group_key_sql(dim);
    let sql = if rollup::usable(filter, &[dim]) {
        open_by_key_from_rollups(d, scope, filter, period, dim, from, today)
    } else {
        let mut sql = Sql::new(format!(
            "WITH cyc AS (SELECT (2 * SUM({days}) + COUNT(*)) / NULLIF(2 * COUNT(*), 0) AS days \
             FROM deal WHERE deal.status = 'WON' AND deal.closed_at >= ",
            days = d.day_diff("deal.opened_at", "deal.closed_at")
        ));
        sql.bind(start_of(from))
            .push(" AND deal.closed_at < ")
            .bind(start_of(today + Duration::days(1)));
        filter.push_sql(&mut sql, scope, d);
        let close = match d {
            Dialect::Postgres => "COALESCE(deal.expected_close_date, \
                 ((deal.opened_at) AT TIME ZONE 'UTC')::date + CAST(cyc.days AS INTEGER))"
                .to_owned(),
            Dialect::Sqlite => "COALESCE(deal.expected_close_date, \
                 date(deal.opened_at, '+' || cyc.days || ' days'))"
                .to_owned(),
        };
        sql.push(&format!(
            ") SELECT {key} AS group_id, stage.probability_ppm AS probability_ppm, COUNT(*) AS deals, \
             {} AS cents FROM deal JOIN stage ON stage.id = deal.stage_id CROSS JOIN cyc{} \
             WHERE deal.status = 'OPEN' AND {close} >= ",
            d.sum_cents("deal.amount_cents"),
            dim.join_sql()
        ));
        sql.bind(period.start())
            .push(&format!(" AND {close} < "))
            .bind(period.end());
        filter.push_sql(&mut sql, scope, d);
        sql.push(&format!(" GROUP BY {key}, stage.probability_ppm"));
        sql
    };
    let rows = OpenRow::find_by_statement(sql.statement(db.get_database_backend()))
        .all(db)
        .await?;
    let mut out: HashMap<Option<i64>, OpenAgg> = HashMap::new();
    for r in rows {
        let agg = out.entry(r.group_id).or_default();
        agg.deals += r.deals;
        agg.cents += r.cents.0;
        agg.weighted += weighted(r.cents, r.probability_ppm);
    }
    Ok(out)
}

/// `open_by_key`'s statement over the rollups: the won cycle from the
/// closed measures of the 365 days, the pipeline from the open measures of
/// the period plus the undated open deals (dated by the cycle). Groups of
/// cells whose deals all moved away sum to zero deals and are left out, as
/// the scan never sees them.
fn open_by_key_from_rollups(
    d: Dialect,
    scope: DealScope,
    filter: &DealFilter,
    period: &Period,
    dim: Dimension,
    from: NaiveDate,
    today: NaiveDate,
) -> Sql {
    let mut won = rollup::Parts::new(d);
    won.won(0, from, today + Duration::days(1));
    let (n, days) = (d.sum_i64("deal.won"), d.sum_i64("deal.won_days"));
    let mut sql = Sql::new(format!(
        "WITH cyc AS (SELECT (2 * {days} + {n}) / NULLIF(2 * {n}, 0) AS days FROM "
    ));
    sql.append(&won.relation().expect("a year of days"))
        .push(" WHERE 1 = 1");
    filter.push_sql(&mut sql, scope, d);
    let mut open = rollup::Parts::new(d);
    open.open(
        0,
        period.start(),
        period.end(),
        Some(("cyc.days", " CROSS JOIN cyc")),
    );
    let key = group_key_sql(dim);
    sql.push(&format!(
        ") SELECT {key} AS group_id, stage.probability_ppm AS probability_ppm, {} AS deals, {} AS cents FROM ",
        d.sum_i64("deal.open_deals"),
        rollup::sum_cents(d, "open_cents", None),
    ))
    .append(&open.relation().expect("the undated part"))
    .push(&format!(
        " JOIN stage ON stage.id = deal.stage_id{} WHERE 1 = 1",
        dim.join_sql()
    ));
    filter.push_sql(&mut sql, scope, d);
    sql.push(&format!(
        " GROUP BY {key}, stage.probability_ppm HAVING SUM(deal.open_deals) <> 0"
    ));
    sql
}
