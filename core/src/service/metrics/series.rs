//! metricSeries (docs/design.md, Metric series): a metric bucketed by ISO week,
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

use chrono::NaiveDate;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, FromQueryResult};

use super::{group_key_sql, push_closed_in};
use crate::auth::Principal;
use crate::clock::{self, start_of};
use crate::db::{Dialect, Sql, SumCents};
use crate::domain::metrics::{mean, mean_money, relative_change, win_rate};
use crate::domain::money::from_cents;
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
    /// Exact money for CLOSED_WON_AMOUNT, NEW_PIPELINE and AVG_DEAL_SIZE
    /// (the mean rounded to cents once); None for the other metrics.
    pub amount: Option<Decimal>,
    pub change: Option<f64>,
    /// The bucket (clipped to the period) ends after today: its value is
    /// still moving.
    pub partial: bool,
}

/// At most this many buckets per series (a 40-year series by week is fine).
const MAX_POINTS: usize = 20_000;
/// At most this many points (buckets x groups) per answer: a 150-byte
/// request for 19,600 weekly buckets per rep once answered 80 MB. 50,000
/// points is about 5 MB of JSON.
pub const MAX_SERIES_POINTS: usize = 50_000;

/// The first day (UTC) of the bucket of a timestamp column, as a DATE on
/// PostgreSQL and YYYY-MM-DD text on SQLite; ISO weeks start on Monday.
pub(crate) fn bucket_sql(d: Dialect, col: &str, g: Granularity) -> String {
    match d {
        Dialect::Postgres => {
            let unit = match g {
                Granularity::Week => "week",
                Granularity::Month => "month",
                Granularity::Quarter => "quarter",
                Granularity::Year => "year",
            };
            format!("CAST(date_trunc('{unit}', ({col}) AT TIME ZONE 'UTC') AS DATE)")
        }
        Dialect::Sqlite => match g {
            // The next Sunday (or the day itself), back to its Monday.
            Granularity::Week => format!("date({col}, 'weekday 0', '-6 days')"),
            Granularity::Month => format!("date({col}, 'start of month')"),
            Granularity::Quarter => format!(
                "date({col}, 'start of month', '-' || ((CAST(strftime('%m', {col}) AS INTEGER) - 1) % 3) || ' months')"
            ),
            Granularity::Year => format!("date({col}, 'start of year')"),
        },
    }
}

#[derive(FromQueryResult, Default, Clone)]
struct ClosedBucket {
    group_id: Option<i64>,
    bucket: NaiveDate,
    won: i64,
    lost: i64,
    won_cents: SumCents,
    won_days: i64,
}

#[derive(FromQueryResult, Default, Clone)]
struct OpenedBucket {
    group_id: Option<i64>,
    bucket: NaiveDate,
    cents: SumCents,
}

fn money_f64(cents: SumCents) -> f64 {
    cents.0 as f64 / 100.0
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
    crate::service::metric_definitions::check_group_by("metricSeries", None, dim)?;
    let buckets: Vec<Period> = period.buckets(granularity);
    if buckets.len() > MAX_POINTS {
        return Err(AppError::bad_input(format!(
            "at most {MAX_POINTS} buckets per series; use a coarser granularity"
        )));
    }
    let d = Dialect::of(db);
    let key = group_key_sql(dim);
    let backend = db.get_database_backend();
    // Per (key, first day of the bucket): the metric's value.
    let mut values: HashMap<(Option<i64>, NaiveDate), Option<f64>> = HashMap::new();
    let mut amounts: HashMap<(Option<i64>, NaiveDate), Option<Decimal>> = HashMap::new();
    let mut keys: BTreeSet<Option<i64>> = BTreeSet::new();
    if metric == Metric::NewPipeline {
        let bucket = bucket_sql(d, "deal.opened_at", granularity);
        let mut sql = Sql::new(format!(
            "SELECT {key} AS group_id, {bucket} AS bucket, {} AS cents FROM deal{} \
             WHERE deal.opened_at >= ",
            d.sum_cents("deal.amount_cents"),
            dim.join_sql()
        ));
        sql.bind(start_of(period.start()))
            .push(" AND deal.opened_at < ")
            .bind(start_of(period.end()));
        filter.push_sql(&mut sql, p.scope(), d);
        sql.push(&format!(" GROUP BY {key}, {bucket}"));
        for r in OpenedBucket::find_by_statement(sql.statement(backend))
            .all(db)
            .await?
        {
            keys.insert(r.group_id);
            values.insert((r.group_id, r.bucket), Some(money_f64(r.cents)));
            amounts.insert((r.group_id, r.bucket), Some(from_cents(r.cents.0)));
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
        filter.push_sql(&mut sql, p.scope(), d);
        sql.push(&format!(" GROUP BY {key}, {bucket}"));
        for r in ClosedBucket::find_by_statement(sql.statement(backend))
            .all(db)
            .await?
        {
            keys.insert(r.group_id);
            values.insert((r.group_id, r.bucket), closed_value(metric, &r));
            amounts.insert((r.group_id, r.bucket), closed_amount(metric, &r));
        }
    }
    if dim == Dimension::None {
        keys.insert(None);
    }
    let points = keys.len().saturating_mul(buckets.len());
    if points > MAX_SERIES_POINTS {
        return Err(AppError::QueryTooComplex(format!(
            "the series has {points} points ({} groups x {} buckets), more than {MAX_SERIES_POINTS}: \
             use a coarser granularity, a shorter period or a filter",
            keys.len(),
            buckets.len()
        )));
    }
    let empty = closed_value(metric, &ClosedBucket::default());
    let empty_amount = if metric == Metric::NewPipeline {
        Some(from_cents(0))
    } else {
        closed_amount(metric, &ClosedBucket::default())
    };
    let today = clock::today();
    let labels = grouping::labels(db, dim, keys.iter().copied()).await?;
    let mut ordered: Vec<(GroupKey, Option<i64>)> =
        keys.into_iter().map(|k| (labels[&k].clone(), k)).collect();
    grouping::sort_by_key(&mut ordered, |(g, _)| g);
    let mut out = Vec::with_capacity(ordered.len() * buckets.len());
    for (label, k) in ordered {
        let mut previous: Option<Option<f64>> = None;
        for b in &buckets {
            let value = values.get(&(k, b.start())).copied().unwrap_or(empty);
            let change = previous.and_then(|prev| relative_change(prev, value));
            previous = Some(value);
            let (start, end) = b.intersect(period).unwrap_or((b.start(), b.end()));
            out.push(SeriesPoint {
                bucket: Period::canonical(start, end).unwrap_or(*b),
                key: label.clone(),
                value,
                amount: amounts
                    .get(&(k, b.start()))
                    .copied()
                    .unwrap_or(empty_amount),
                change,
                partial: end > today,
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
    let zero_cents = d.zero_cents();
    let count = |status: &str| format!("COUNT(CASE WHEN deal.status = '{status}' THEN 1 END)");
    let (won, lost, won_cents, won_days) = match metric {
        Metric::WinRate => (
            count("WON"),
            count("LOST"),
            zero_cents.to_owned(),
            zero.to_owned(),
        ),
        Metric::DealsWon => (
            "COUNT(*)".to_owned(),
            zero.to_owned(),
            zero_cents.to_owned(),
            zero.to_owned(),
        ),
        Metric::DealsLost => (
            zero.to_owned(),
            "COUNT(*)".to_owned(),
            zero_cents.to_owned(),
            zero.to_owned(),
        ),
        Metric::ClosedWonAmount => (
            zero.to_owned(),
            zero.to_owned(),
            d.sum_cents("deal.amount_cents"),
            zero.to_owned(),
        ),
        Metric::AvgDealSize => (
            "COUNT(*)".to_owned(),
            zero.to_owned(),
            d.sum_cents("deal.amount_cents"),
            zero.to_owned(),
        ),
        Metric::AvgSalesCycleDays | Metric::NewPipeline => (
            "COUNT(*)".to_owned(),
            zero.to_owned(),
            zero_cents.to_owned(),
            d.sum_i64(&d.day_diff("deal.opened_at", "deal.closed_at")),
        ),
    };
    format!("{won} AS won, {lost} AS lost, {won_cents} AS won_cents, {won_days} AS won_days")
}

/// A money metric of one bucket, exact (0.00 or null when it is empty).
fn closed_amount(metric: Metric, r: &ClosedBucket) -> Option<Decimal> {
    match metric {
        Metric::ClosedWonAmount => Some(from_cents(r.won_cents.0)),
        Metric::AvgDealSize => mean_money(r.won_cents, r.won),
        _ => None,
    }
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
