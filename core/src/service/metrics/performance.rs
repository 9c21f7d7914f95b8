//! Rep performance quadrants (docs/design.md, Rep performance): the current period against
//! compareTo (default: the period of the same kind just before; while the
//! period is under way, the same number of days at the start of the
//! previous one, `Period::default_comparison`). High performer: attainment
//! at least 1.0, or without a quota, closed-won at or above the median closed-won
//! of the reps compared; improving: closed-won did not fall. A rep with no
//! quota and nothing closed in either period is NO_ACTIVITY and stays out
//! of the median. Reps that do not carry a quota are left out unless they
//! have one in the period (`reps::rep_totals`); territoryId and managerId
//! narrow the reps as in quotaAttainment.
use rust_decimal::Decimal;
use sea_orm::ConnectionTrait;

use super::reps::rep_totals;
pub use super::reps::RepNarrowing;
use crate::auth::Principal;
use crate::clock;
use crate::domain::metrics::{
    attainment, has_activity, is_high_performer, median, quadrant, relative_change, Quadrant,
};
use crate::domain::money::from_cents;
use crate::domain::period::Period;
use crate::error::{AppError, AppResult};
use crate::rows::Columns;
use crate::service::access::METRIC_READERS;

#[derive(Debug, Clone, PartialEq)]
pub struct RepPerformance {
    pub rep: entity::rep::Model,
    pub current: Decimal,
    pub previous: Decimal,
    pub current_attainment: Option<f64>,
    pub previous_attainment: Option<f64>,
    pub change: Option<f64>,
    pub quadrant: Quadrant,
}

/// One statement; rows ordered by rep id.
pub async fn rep_performance(
    db: &impl ConnectionTrait,
    p: &Principal,
    period: &Period,
    compare_to: Option<Period>,
    narrow: RepNarrowing,
) -> AppResult<Vec<RepPerformance>> {
    p.require(METRIC_READERS)?;
    let previous = match compare_to {
        Some(c) => c,
        None => period
            .default_comparison(clock::today())
            .ok_or_else(|| AppError::bad_input("the period has no previous period"))?,
    };
    let reps = rep_totals(
        db,
        p.scope(),
        period,
        Some(&previous),
        narrow,
        Columns::all::<entity::rep::Model>(),
    )
    .await?;
    let active = |r: &super::reps::RepTotals| {
        has_activity(
            [r.quota_cents, r.prev_quota_cents],
            [r.won_cents, r.prev_won_cents],
        )
    };
    let won: Vec<i128> = reps
        .iter()
        .filter(|r| active(r))
        .map(|r| r.won_cents)
        .collect();
    let median_won = median(&won);
    Ok(reps
        .into_iter()
        .map(|r| {
            let high = is_high_performer(r.won_cents, r.quota_cents, median_won);
            let quadrant = if active(&r) {
                quadrant(high, r.won_cents, r.prev_won_cents)
            } else {
                Quadrant::NoActivity
            };
            RepPerformance {
                rep: r.rep.clone(),
                current: from_cents(r.won_cents),
                previous: from_cents(r.prev_won_cents),
                current_attainment: attainment(r.won_cents, r.quota_cents),
                previous_attainment: attainment(r.prev_won_cents, r.prev_quota_cents),
                change: relative_change(Some(r.prev_won_cents as f64), Some(r.won_cents as f64)),
                quadrant,
            }
        })
        .collect())
}
