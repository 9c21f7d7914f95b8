//! forecastTrend (docs/design.md, Deal history): one forecast as of the
//! last day of each bucket of from..to (the last point as of `to`), so a
//! front-end watches a number evolve. Every point is exactly the forecast
//! asked with that asOf, computed for all points at once
//! (`forecasts_as_of`): a fixed number of statements whatever the number of
//! points.
use chrono::{Duration, NaiveDate};
use sea_orm::ConnectionTrait;

use entity::enums::ForecastCategory;

use super::{check_as_of, checked_plan, forecasts_as_of, Forecast, Method, Source};
use crate::auth::Principal;
use crate::clock;
use crate::domain::period::{Granularity, Period};
use crate::error::{AppError, AppResult};
use crate::service::access::METRIC_READERS;
use crate::service::deal_filter::DealFilter;
use crate::service::grouping::Dimension;

/// Most points one trend answers (two years of weeks, with room).
pub const MAX_POINTS: usize = 120;

/// The as-of day of each point: the last day of each bucket of
/// `granularity` overlapping from..=to, the last one `to`.
pub fn point_days(
    from: NaiveDate,
    to: NaiveDate,
    granularity: Granularity,
) -> AppResult<Vec<NaiveDate>> {
    if from > to {
        return Err(AppError::bad_input(format!(
            "from ({from}) must not be after to ({to})"
        )));
    }
    let span = Period::range(from, to + Duration::days(1))
        .ok_or_else(|| AppError::bad_input("from..to is not a valid range"))?;
    let days: Vec<NaiveDate> = span
        .buckets(granularity)
        .iter()
        .map(|b| (b.end() - Duration::days(1)).min(to))
        .collect();
    if days.len() > MAX_POINTS {
        return Err(AppError::bad_input(format!(
            "from..to holds {} points of this granularity; at most {MAX_POINTS}",
            days.len()
        )));
    }
    Ok(days)
}

/// The forecast trend of the caller's deals.
#[allow(clippy::too_many_arguments)]
pub async fn trend(
    db: &impl ConnectionTrait,
    actor: &Principal,
    period: Period,
    method: Method,
    from: NaiveDate,
    to: Option<NaiveDate>,
    granularity: Granularity,
    category: Option<ForecastCategory>,
) -> AppResult<Vec<Forecast>> {
    actor.require(METRIC_READERS)?;
    let filter = DealFilter::default();
    let plan = checked_plan(method, &period, None, category, Dimension::None, &filter)?;
    let to = to.unwrap_or_else(clock::today);
    check_as_of(to, "to")?;
    let days = point_days(from, to, granularity)?;
    forecasts_as_of(
        db,
        actor,
        &plan,
        period,
        Dimension::None,
        &filter,
        &days,
        Source::History,
        true,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn points_end_each_bucket_and_the_last_is_to() {
        assert_eq!(
            point_days(day("2026-11-01"), day("2026-11-18"), Granularity::Week).unwrap(),
            [
                day("2026-11-01"),
                day("2026-11-08"),
                day("2026-11-15"),
                day("2026-11-18")
            ]
        );
        assert_eq!(
            point_days(day("2026-10-15"), day("2026-12-06"), Granularity::Month).unwrap(),
            [day("2026-10-31"), day("2026-11-30"), day("2026-12-06")]
        );
        assert_eq!(
            point_days(day("2026-12-06"), day("2026-12-06"), Granularity::Quarter).unwrap(),
            [day("2026-12-06")]
        );
    }

    #[test]
    fn reversed_or_too_long_ranges_are_refused() {
        assert!(point_days(day("2026-12-07"), day("2026-12-06"), Granularity::Week).is_err());
        assert!(point_days(day("2020-01-01"), day("2026-12-06"), Granularity::Week).is_err());
    }
}
