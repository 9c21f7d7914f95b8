//! metricSeries (DESIGN.md "Metrics"): a metric bucketed by ISO week,
//! month, quarter or year inside the period, per group key, with the
//! relative change from the previous bucket of the same key.
//!
//! Every bucket of the period is emitted for every key that has data in
//! any bucket, so a trend is continuous: counts and amounts are 0 in an
//! empty bucket, ratios and means null. Buckets reaching outside the period
//! are clipped to it (a period starting mid-month starts with a partial
//! month, named by its range). Deals count in the bucket of the event the
//! metric measures: closed_at for won/lost metrics, opened_at for
//! NEW_PIPELINE (the amount of the deals opened in the bucket, whatever
//! their status now).
use std::collections::{BTreeSet, HashMap};

use chrono::{Datelike, NaiveDate};
use rust_decimal::prelude::ToPrimitive;
use sea_orm::{ConnectionTrait, FromQueryResult};

use super::{group_key_sql, push_closed_in};
use crate::auth::Principal;
use crate::clock::start_of;
use crate::db::{Dialect, Sql};
use crate::domain::metrics::{mean, mean_money, relative_change, win_rate};
use crate::domain::period::{Granularity, Period};
use crate::error::{AppError, AppResult};
use crate::service::access::METRIC_READERS;
use crate::service::deal_filter::DealFilter;
use crate::service::grouping::{self, Dimension, GroupKey};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    ClosedWonAmount,
    DealsWon,
    DealsLost,
    WinRate,
    NewPipeline,
    AvgDealSize,
    AvgSalesCycleDays,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SeriesPoint {
    /// The bucket clipped to the period.
    pub bucket: Period,
    pub key: GroupKey,
    pub value: Option<f64>,
    pub change: Option<f64>,
}

/// A bucket of a series: at most this many points per request.
const MAX_POINTS: usize = 20_000;

/// The Monday that week indexes count from.
fn week_epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 5).unwrap_or_default()
}

/// The SQL bucket index of a timestamp column; `bucket_index` is its twin.
fn bucket_sql(d: Dialect, col: &str, g: Granularity) -> String {
    match g {
        Granularity::Month => d.month_index_utc(col),
        Granularity::Quarter => format!("({} / 3)", d.month_index_utc(col)),
        Granularity::Year => format!("({} / 12)", d.month_index_utc(col)),
        Granularity::Week => match d {
            Dialect::Sqlite => {
                format!("(CAST(julianday(date({col})) - julianday('1970-01-05') AS INTEGER) / 7)")
            }
            Dialect::Postgres => format!(
                "CAST(((({col}) AT TIME ZONE 'UTC')::date - DATE '1970-01-05') / 7 AS BIGINT)"
            ),
        },
    }
}

/// The bucket index of a day (days from 1970 on, so never negative).
fn bucket_index(day: NaiveDate, g: Granularity) -> i64 {
    let month = i64::from(day.year()) * 12 + i64::from(day.month0());
    match g {
        Granularity::Month => month,
        Granularity::Quarter => month / 3,
        Granularity::Year => month / 12,
        Granularity::Week => (day - week_epoch()).num_days().div_euclid(7),
    }
}

#[derive(FromQueryResult, Default, Clone)]
struct ClosedBucket {
    group_id: Option<i64>,
    bucket: i64,
    won: i64,
    lost: i64,
    won_cents: i64,
    won_days: i64,
}

#[derive(FromQueryResult, Default, Clone)]
struct OpenedBucket {
    group_id: Option<i64>,
    bucket: i64,
    cents: i64,
}

fn money_f64(cents: i64) -> f64 {
    cents as f64 / 100.0
}

/// Two statements: the bucketed aggregate and the labels.
pub async fn metric_series(
    db: &impl ConnectionTrait,
    p: &Principal,
    metric: Metric,
    period: &Period,
    granularity: Granularity,
    dim: Dimension,
    filter: &DealFilter,
) -> AppResult<Vec<SeriesPoint>> {
    p.require(METRIC_READERS)?;
    let buckets: Vec<Period> = period.buckets(granularity);
    if buckets.len() > MAX_POINTS {
        return Err(AppError::bad_input(format!(
            "at most {MAX_POINTS} buckets per series; use a coarser granularity"
        )));
    }
    if period.start() < week_epoch() {
        return Err(AppError::bad_input(
            "a metric series must start on or after 1970-01-05",
        ));
    }
    let d = Dialect::of(db);
    let key = group_key_sql(dim);
    let backend = db.get_database_backend();
    // Per (key, bucket index): the metric's value.
    let mut values: HashMap<(Option<i64>, i64), Option<f64>> = HashMap::new();
    let mut keys: BTreeSet<Option<i64>> = BTreeSet::new();
    if metric == Metric::NewPipeline {
        let bucket = bucket_sql(d, "deal.opened_at", granularity);
        let mut sql = Sql::new(format!(
            "SELECT {key} AS group_id, {bucket} AS bucket, {} AS cents FROM deal{} \
             WHERE deal.opened_at >= ",
            d.sum_i64("deal.amount_cents"),
            dim.join_sql()
        ));
        sql.bind(start_of(period.start()))
            .push(" AND deal.opened_at < ")
            .bind(start_of(period.end()));
        filter.push_sql(&mut sql, p.scope());
        sql.push(&format!(" GROUP BY {key}, {bucket}"));
        for r in OpenedBucket::find_by_statement(sql.statement(backend))
            .all(db)
            .await?
        {
            keys.insert(r.group_id);
            values.insert((r.group_id, r.bucket), Some(money_f64(r.cents)));
        }
    } else {
        let bucket = bucket_sql(d, "deal.closed_at", granularity);
        let mut sql = Sql::new(format!(
            "SELECT {key} AS group_id, {bucket} AS bucket, {} FROM deal{} WHERE deal.status {}",
            closed_columns_for(d, metric),
            dim.join_sql(),
            statuses_for(metric)
        ));
        push_closed_in(&mut sql, period);
        filter.push_sql(&mut sql, p.scope());
        sql.push(&format!(" GROUP BY {key}, {bucket}"));
        for r in ClosedBucket::find_by_statement(sql.statement(backend))
            .all(db)
            .await?
        {
            keys.insert(r.group_id);
            values.insert((r.group_id, r.bucket), closed_value(metric, &r));
        }
    }
    if dim == Dimension::None {
        keys.insert(None);
    }
    let empty = closed_value(metric, &ClosedBucket::default());
    let labels = grouping::labels(db, dim, keys.iter().copied()).await?;
    let mut ordered: Vec<(GroupKey, Option<i64>)> =
        keys.into_iter().map(|k| (labels[&k].clone(), k)).collect();
    grouping::sort_by_key(&mut ordered, |(g, _)| g);
    let mut out = Vec::with_capacity(ordered.len() * buckets.len());
    for (label, k) in ordered {
        let mut previous: Option<Option<f64>> = None;
        for b in &buckets {
            let value = values
                .get(&(k, bucket_index(b.start(), granularity)))
                .copied()
                .unwrap_or(empty);
            let change = previous.and_then(|prev| relative_change(prev, value));
            previous = Some(value);
            let (start, end) = b.intersect(period).unwrap_or((b.start(), b.end()));
            out.push(SeriesPoint {
                bucket: Period::canonical(start, end).unwrap_or(*b),
                key: label.clone(),
                value,
                change,
            });
        }
    }
    Ok(out)
}

/// The closed deals a metric reads.
fn statuses_for(metric: Metric) -> &'static str {
    match metric {
        Metric::WinRate => "IN ('WON', 'LOST')",
        Metric::DealsLost => "= 'LOST'",
        _ => "= 'WON'",
    }
}

/// Only the aggregates a metric needs (the others are constant 0), so a
/// series costs what a hand-written query for that one metric costs.
fn closed_columns_for(d: Dialect, metric: Metric) -> String {
    let zero = "CAST(0 AS BIGINT)";
    let count = |status: &str| format!("COUNT(CASE WHEN deal.status = '{status}' THEN 1 END)");
    let (won, lost, won_cents, won_days) = match metric {
        Metric::WinRate => (
            count("WON"),
            count("LOST"),
            zero.to_owned(),
            zero.to_owned(),
        ),
        Metric::DealsWon => (
            "COUNT(*)".to_owned(),
            zero.to_owned(),
            zero.to_owned(),
            zero.to_owned(),
        ),
        Metric::DealsLost => (
            zero.to_owned(),
            "COUNT(*)".to_owned(),
            zero.to_owned(),
            zero.to_owned(),
        ),
        Metric::ClosedWonAmount => (
            zero.to_owned(),
            zero.to_owned(),
            d.sum_i64("deal.amount_cents"),
            zero.to_owned(),
        ),
        Metric::AvgDealSize => (
            "COUNT(*)".to_owned(),
            zero.to_owned(),
            d.sum_i64("deal.amount_cents"),
            zero.to_owned(),
        ),
        Metric::AvgSalesCycleDays | Metric::NewPipeline => (
            "COUNT(*)".to_owned(),
            zero.to_owned(),
            zero.to_owned(),
            d.sum_i64(&d.day_diff("deal.opened_at", "deal.closed_at")),
        ),
    };
    format!("{won} AS won, {lost} AS lost, {won_cents} AS won_cents, {won_days} AS won_days")
}

/// A closed-deal metric of one bucket (0 or null when it is empty).
fn closed_value(metric: Metric, r: &ClosedBucket) -> Option<f64> {
    match metric {
        Metric::ClosedWonAmount => Some(money_f64(r.won_cents)),
        Metric::DealsWon => Some(r.won as f64),
        Metric::DealsLost => Some(r.lost as f64),
        Metric::WinRate => win_rate(r.won, r.lost),
        Metric::AvgDealSize => mean_money(r.won_cents, r.won).and_then(|m| m.to_f64()),
        Metric::AvgSalesCycleDays => mean(r.won_days, r.won),
        Metric::NewPipeline => Some(0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_indexes_follow_calendar_and_iso_weeks() {
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(
            bucket_index(day("2026-01-31"), Granularity::Month),
            2026 * 12
        );
        assert_eq!(
            bucket_index(day("2026-07-01"), Granularity::Quarter),
            (2026 * 12 + 6) / 3
        );
        // 2026-W01 runs Monday 2025-12-29 to Sunday 2026-01-04.
        let w = bucket_index(day("2025-12-29"), Granularity::Week);
        assert_eq!(bucket_index(day("2026-01-04"), Granularity::Week), w);
        assert_eq!(bucket_index(day("2026-01-05"), Granularity::Week), w + 1);
        assert_eq!(bucket_index(day("2025-12-28"), Granularity::Week), w - 1);
    }
}
