//! Pipeline summary per group (docs/design.md, Pipeline summary): the open pipeline of
//! the period (count, value, stage-weighted value) beside what closed in
//! it: mean deal size, mean and median sales cycle of the deals won, and
//! the win rate.
use std::collections::{BTreeSet, HashMap};

use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, FromQueryResult};

use super::closed::ClosedSource;
use super::{group_key_sql, median_with_closed, open_by_key, push_closed_in, Cycle};
use crate::auth::Principal;
use crate::db::{Dialect, Sql};
use crate::domain::metrics::{mean, mean_money, median_of_histogram, win_rate};
use crate::domain::money::{from_cents, round_money};
use crate::domain::period::Period;
use crate::error::AppResult;
use crate::service::access::{DealScope, METRIC_READERS};
use crate::service::deal_filter::DealFilter;
use crate::service::grouping::{self, Dimension, GroupKey};

/// A group's row; each part is there when the caller asked for it
/// ([`SummaryParts`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineSummaryRow {
    pub key: GroupKey,
    pub open: Option<OpenPart>,
    pub closed: Option<ClosedPart>,
    /// The median sales cycle (itself null when nothing was won).
    pub median_sales_cycle_days: Option<Option<f64>>,
}

/// The open pipeline of the period.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenPart {
    pub open_deals: i64,
    pub pipeline_value: Decimal,
    pub weighted_pipeline: Decimal,
}

/// What closed in the period.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedPart {
    pub avg_deal_size: Option<Decimal>,
    pub avg_sales_cycle_days: Option<f64>,
    pub win_rate: Option<f64>,
}

/// The parts of a pipeline summary asked for: the open pipeline, the closed
/// aggregates, the medians. Grouped by a dimension, a group appears when it
/// has open pipeline or closed deals, so both of those run whatever is
/// selected; the single NONE row needs only the parts asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SummaryParts {
    pub open: bool,
    pub closed: bool,
    pub medians: bool,
}

impl SummaryParts {
    pub const ALL: SummaryParts = SummaryParts {
        open: true,
        closed: true,
        medians: true,
    };
}

#[derive(FromQueryResult)]
struct MedianRow {
    group_id: Option<i64>,
    median_days: Option<f64>,
}

#[derive(FromQueryResult)]
struct HistRow {
    group_id: Option<i64>,
    days: i64,
    deals: i64,
}

/// Median days opened -> closed of the deals won in the period, per key:
/// percentile_cont on PostgreSQL; on SQLite (no percentile function) a
/// histogram of cycle lengths per key, whose median is taken in Rust.
async fn median_cycles(
    db: &impl ConnectionTrait,
    scope: DealScope,
    filter: &DealFilter,
    period: &Period,
    dim: Dimension,
) -> AppResult<HashMap<Option<i64>, f64>> {
    let d = Dialect::of(db);
    let days = d.day_diff("deal.opened_at", "deal.closed_at");
    let key = group_key_sql(dim);
    let select = match d {
        Dialect::Postgres => format!(
            "SELECT {key} AS group_id, percentile_cont(0.5) WITHIN GROUP (ORDER BY {days}) AS median_days"
        ),
        Dialect::Sqlite => {
            format!("SELECT {key} AS group_id, {days} AS days, COUNT(*) AS deals")
        }
    };
    let mut sql = Sql::new(format!(
        "{select} FROM deal{} WHERE deal.status = 'WON'",
        dim.join_sql()
    ));
    push_closed_in(&mut sql, period);
    filter.push_sql(&mut sql, scope, d);
    let stmt_backend = db.get_database_backend();
    match d {
        Dialect::Postgres => {
            dim.push_group_by(&mut sql);
            let rows = MedianRow::find_by_statement(sql.statement(stmt_backend))
                .all(db)
                .await?;
            Ok(rows
                .into_iter()
                .filter_map(|r| r.median_days.map(|m| (r.group_id, m)))
                .collect())
        }
        Dialect::Sqlite => {
            sql.push(&format!(" GROUP BY {key}, {days}"));
            let rows = HistRow::find_by_statement(sql.statement(stmt_backend))
                .all(db)
                .await?;
            let mut hist: HashMap<Option<i64>, Vec<(i64, i64)>> = HashMap::new();
            for r in rows {
                hist.entry(r.group_id).or_default().push((r.days, r.deals));
            }
            Ok(hist
                .into_iter()
                .filter_map(|(k, h)| median_of_histogram(&h).map(|m| (k, m)))
                .collect())
        }
    }
}

/// Up to four statements: open pipeline, closed aggregates and medians
/// (concurrently, each when `parts` needs it; on PostgreSQL the medians come
/// with the closed aggregates when those scan the deals), then the labels.
/// A group appears when it has open pipeline or closed deals.
pub async fn pipeline_summary(
    db: &impl ConnectionTrait,
    closed_source: &impl ClosedSource,
    p: &Principal,
    period: &Period,
    dim: Dimension,
    filter: &DealFilter,
    parts: SummaryParts,
) -> AppResult<Vec<PipelineSummaryRow>> {
    p.require(METRIC_READERS)?;
    crate::service::metric_definitions::check_group_by("pipelineSummary", None, dim)?;
    let scope = p.scope();
    let grouped = dim != Dimension::None;
    let median_in_closed = parts.medians && median_with_closed(Dialect::of(db), filter, dim);
    let open = async {
        if parts.open || grouped {
            open_by_key(db, scope, filter, period, dim).await.map(Some)
        } else {
            Ok(None)
        }
    };
    let closed = async {
        if parts.closed || grouped || median_in_closed {
            let cycle = if median_in_closed {
                Cycle::DaysAndMedian
            } else {
                Cycle::Days
            };
            closed_source
                .closed_by_key(scope, filter, period, dim, cycle)
                .await
                .map(Some)
        } else {
            Ok(None)
        }
    };
    let medians = async {
        if parts.medians && !median_in_closed {
            median_cycles(db, scope, filter, period, dim)
                .await
                .map(Some)
        } else {
            Ok(None)
        }
    };
    let (open, closed, mut medians) = futures::try_join!(open, closed, medians)?;
    if median_in_closed {
        medians = closed.as_ref().map(|c| {
            c.iter()
                .filter_map(|r| r.median_days.map(|m| (r.group_id, m)))
                .collect()
        });
    }
    let closed: Option<HashMap<Option<i64>, _>> =
        closed.map(|c| c.into_iter().map(|r| (r.group_id, r)).collect());
    let keys: BTreeSet<Option<i64>> = if grouped {
        open.iter()
            .flat_map(|o| o.keys())
            .chain(closed.iter().flat_map(|c| c.keys()))
            .copied()
            .collect()
    } else {
        BTreeSet::from([None])
    };
    let labels = grouping::labels(db, dim, keys.iter().copied()).await?;
    let mut rows: Vec<PipelineSummaryRow> = keys
        .into_iter()
        .map(|k| PipelineSummaryRow {
            key: labels[&k].clone(),
            open: open.as_ref().filter(|_| parts.open).map(|open| {
                let o = open.get(&k).cloned().unwrap_or_default();
                OpenPart {
                    open_deals: o.deals,
                    pipeline_value: from_cents(o.cents),
                    weighted_pipeline: round_money(o.weighted),
                }
            }),
            closed: closed.as_ref().filter(|_| parts.closed).map(|closed| {
                let c = closed.get(&k).cloned().unwrap_or_default();
                ClosedPart {
                    avg_deal_size: mean_money(c.won_cents, c.won),
                    avg_sales_cycle_days: mean(c.won_days, c.won),
                    win_rate: win_rate(c.won, c.lost),
                }
            }),
            median_sales_cycle_days: medians.as_ref().map(|m| m.get(&k).copied()),
        })
        .collect();
    grouping::sort_by_key(&mut rows, |r| &r.key);
    Ok(rows)
}
