//! Commissions (docs/design.md, Commissions): closed-won x the rep's rate when attainment
//! reaches the rep's threshold, else 0; rate and threshold come from the
//! rep row (ppm).
use rust_decimal::Decimal;
use sea_orm::ConnectionTrait;

use super::reps::{rep_totals, RepNarrowing};
use crate::auth::Principal;
use crate::domain::metrics::{attainment, commission};
use crate::domain::money::{from_cents, ppm_to_decimal};
use crate::domain::period::Period;
use crate::error::AppResult;
use crate::rows::Columns;
use crate::service::access::METRIC_READERS;

#[derive(Debug, Clone, PartialEq)]
pub struct CommissionRow {
    pub rep: entity::rep::Model,
    pub quota: Decimal,
    pub closed_won: Decimal,
    pub attainment: Option<f64>,
    pub rate: Decimal,
    pub qualified: bool,
    pub earned: Decimal,
}

/// One statement; rows ordered by rep id.
pub async fn commissions(
    db: &impl ConnectionTrait,
    p: &Principal,
    period: &Period,
) -> AppResult<Vec<CommissionRow>> {
    p.require(METRIC_READERS)?;
    let reps = rep_totals(
        db,
        p.scope(),
        period,
        None,
        RepNarrowing::default(),
        Columns::all::<entity::rep::Model>(),
    )
    .await?;
    Ok(reps
        .into_iter()
        .map(|r| {
            let (qualified, earned) =
                commission(r.won_cents, r.quota_cents, r.rate_ppm, r.threshold_ppm);
            CommissionRow {
                rep: r.rep.clone(),
                quota: from_cents(r.quota_cents),
                closed_won: from_cents(r.won_cents),
                attainment: attainment(r.won_cents, r.quota_cents),
                rate: ppm_to_decimal(r.rate_ppm),
                qualified,
                earned,
            }
        })
        .collect())
}
