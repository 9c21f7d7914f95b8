//! Backtesting (docs/design.md, Forecasts: forecastAccuracy): for each period and method, the
//! forecast as of (period start + asOfOffsetDays) against what was actually
//! won in the period (closed-won as the deals stand now), over the caller's
//! deals.
//!
//! - methods default to STAGE_WEIGHTED, SALES_CYCLE and HISTORICAL: the ones
//!   the deal history alone answers. REP_SUBMITTED is backtested when asked
//!   (without calls its forecast is 0).
//! - At most `MAX_PERIODS` periods; HISTORICAL needs whole-month periods
//!   (else BAD_USER_INPUT) and uses its defaults (3 months lookback, no
//!   growth, no new reps); REP_SUBMITTED uses the COMMIT category.
//! - An as-of day after today is BAD_USER_INPUT (that forecast cannot be
//!   made yet); asOfOffsetDays must lie within +-3,660 days.
//! - Statements: the won cycles of every as-of day (1), the as-of aggregate
//!   of every period for all methods (1), the calls (1, only for
//!   REP_SUBMITTED: the reps, the submissions and, when parts were called,
//!   closed-won by month: up to 3) and the actuals (1), whatever the
//!   number of periods.
use chrono::Duration;
use rust_decimal::Decimal;
use sea_orm::ConnectionTrait;

use entity::enums::ForecastCategory;

use super::asof::{self, Source};
use super::{ask_for, calls, check_as_of, evaluate, group_rows, plan, Method, Plan};
use crate::auth::Principal;
use crate::domain::forecast::{absolute_percentage_error, accuracy};
use crate::domain::money::{from_cents, round_money};
use crate::domain::period::Period;
use crate::error::{AppError, AppResult};
use crate::service::access::METRIC_READERS;
use crate::service::deal_filter::DealFilter;
use crate::service::grouping::Dimension;

/// Most periods one backtest may ask for.
pub const MAX_PERIODS: usize = 24;
/// Largest |asOfOffsetDays|.
pub const MAX_OFFSET_DAYS: i32 = 3_660;

#[derive(Debug, Clone, PartialEq)]
pub struct AccuracyRow {
    pub period: Period,
    pub method: Method,
    pub as_of: chrono::NaiveDate,
    pub forecast: Decimal,
    pub actual: Decimal,
    pub absolute_percentage_error: Option<f64>,
    pub accuracy: Option<f64>,
}

pub const DEFAULT_METHODS: &[Method] = &[
    Method::StageWeighted,
    Method::SalesCycle,
    Method::Historical,
];

pub async fn backtest(
    db: &impl ConnectionTrait,
    actor: &Principal,
    periods: &[Period],
    methods: Option<&[Method]>,
    offset_days: Option<i32>,
) -> AppResult<Vec<AccuracyRow>> {
    actor.require(METRIC_READERS)?;
    if periods.len() > MAX_PERIODS {
        return Err(AppError::bad_input(format!(
            "at most {MAX_PERIODS} periods per backtest"
        )));
    }
    let offset = offset_days.unwrap_or(0);
    if !(-MAX_OFFSET_DAYS..=MAX_OFFSET_DAYS).contains(&offset) {
        return Err(AppError::bad_input(format!(
            "asOfOffsetDays must be between -{MAX_OFFSET_DAYS} and {MAX_OFFSET_DAYS}"
        )));
    }
    let mut methods: Vec<Method> = methods.unwrap_or(DEFAULT_METHODS).to_vec();
    methods.sort();
    methods.dedup();
    if periods.is_empty() || methods.is_empty() {
        return Ok(Vec::new());
    }
    let category = |m: Method| (m == Method::RepSubmitted).then_some(ForecastCategory::Commit);
    // Every period for every method, validated before any statement.
    let mut plans: Vec<Vec<Plan>> = Vec::with_capacity(periods.len());
    for p in periods {
        plans.push(
            methods
                .iter()
                .map(|m| plan(*m, p, None, category(*m)))
                .collect::<AppResult<_>>()?,
        );
    }
    let mut asks = Vec::with_capacity(periods.len());
    for (p, period_plans) in periods.iter().zip(&plans) {
        let as_of = p.start() + Duration::days(i64::from(offset));
        check_as_of(as_of, "period start + asOfOffsetDays")?;
        // The HISTORICAL plan (if any) sets the lookback of the period's ask.
        let plan = period_plans
            .iter()
            .find(|pl| pl.historical.is_some())
            .unwrap_or(&period_plans[0]);
        asks.push(ask_for(plan, *p, as_of)?);
    }
    let scope = actor.scope();
    let filter = DealFilter::default();
    let open = methods.iter().any(|m| m.uses_pipeline());
    if open {
        let cycles = asof::won_cycles(db, &asks, Source::History, &filter).await?;
        for (a, c) in asks.iter_mut().zip(cycles) {
            a.cycle = c;
        }
    }
    let needs = asof::Needs {
        open,
        by_probability: methods.contains(&Method::StageWeighted),
    };
    let rows = asof::aggregate(
        db,
        &asks,
        Source::History,
        needs,
        Dimension::None,
        &filter,
        scope,
    )
    .await?;
    let submitted = if methods.contains(&Method::RepSubmitted) {
        calls::submitted_numbers(
            db,
            &asks,
            Source::History,
            ForecastCategory::Commit,
            Dimension::None,
            scope,
            None,
        )
        .await?
        .totals
    } else {
        Vec::new()
    };
    let actual = asof::won_now(db, &asks, &filter, scope).await?;

    let mut out = Vec::with_capacity(asks.len() * methods.len());
    for (i, (ask, plans)) in asks.iter().zip(&plans).enumerate() {
        let idx = i as i64;
        let (_, total) = group_rows(&rows, idx);
        let calls: i128 = submitted.get(i).copied().unwrap_or(0);
        let actual = from_cents(actual[i]);
        for plan in plans {
            let (amount, _, _) =
                evaluate(plan, &total, &total, &ask.cycle, from_cents(calls), true);
            let forecast = round_money(amount);
            let ape = absolute_percentage_error(forecast, actual);
            out.push(AccuracyRow {
                period: ask.period,
                method: plan.method,
                as_of: ask.as_of,
                forecast,
                actual,
                absolute_percentage_error: ape,
                accuracy: accuracy(ape),
            });
        }
    }
    Ok(out)
}
