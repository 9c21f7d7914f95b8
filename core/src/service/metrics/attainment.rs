//! Quota attainment (docs/design.md, Quota attainment): closed-won in the period over the quotas
//! whose range lies inside it, per rep, with open and weighted pipeline,
//! the gap to quota and pipeline coverage; the report totals and the quota
//! achievement rate (reps at or over 100% / reps with a quota).
use rust_decimal::Decimal;
use sea_orm::ConnectionTrait;

use super::open_by_key;
use super::reps::{rep_totals, RepNarrowing};
use crate::auth::Principal;
use crate::domain::metrics::{attained_quota, attainment, coverage, gap_to_quota, ratio};
use crate::domain::money::{from_cents, round_money};
use crate::domain::period::Period;
use crate::error::AppResult;
use crate::rows::Columns;
use crate::service::access::METRIC_READERS;
use crate::service::deal_filter::DealFilter;
use crate::service::grouping::Dimension;

#[derive(Debug, Clone, PartialEq)]
pub struct RepAttainment {
    pub rep: entity::rep::Model,
    pub quota: Decimal,
    pub closed_won: Decimal,
    pub attainment: Option<f64>,
    pub attained_quota: bool,
    pub gap_to_quota: Decimal,
    /// The rep's open pipeline, when it was asked for.
    pub pipeline: Option<RepPipeline>,
}

/// A rep's open pipeline for the period (one statement over every open
/// deal, so it is computed only when a caller selects it).
#[derive(Debug, Clone, PartialEq)]
pub struct RepPipeline {
    pub open_pipeline: Decimal,
    pub weighted_pipeline: Decimal,
    pub pipeline_coverage: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AttainmentReport {
    pub period: Period,
    pub rows: Vec<RepAttainment>,
    pub total_quota: Decimal,
    pub total_closed_won: Decimal,
    pub attainment: Option<f64>,
    pub reps_with_quota: i64,
    pub reps_at_quota: i64,
    pub quota_achievement_rate: Option<f64>,
}

/// One statement for the per-rep totals, and with `with_pipeline` a second,
/// concurrent one for the open pipeline per rep. Rows are ordered by rep id.
pub async fn quota_attainment(
    db: &impl ConnectionTrait,
    p: &Principal,
    period: &Period,
    narrow: RepNarrowing,
    with_pipeline: bool,
    rep_columns: Columns,
) -> AppResult<AttainmentReport> {
    p.require(METRIC_READERS)?;
    let scope = p.scope();
    let filter = DealFilter::default();
    let open = async {
        if with_pipeline {
            open_by_key(db, scope, &filter, period, Dimension::Rep)
                .await
                .map(Some)
        } else {
            Ok(None)
        }
    };
    let (reps, open) = futures::try_join!(
        rep_totals(db, scope, period, None, narrow, rep_columns),
        open
    )?;
    let (mut total_quota, mut total_won, mut with_quota, mut at_quota) = (0i128, 0i128, 0, 0);
    let rows = reps
        .into_iter()
        .map(|r| {
            let gap = gap_to_quota(r.quota_cents, r.won_cents);
            let attained = attained_quota(r.won_cents, r.quota_cents);
            let rep_id = r.rep.id;
            total_quota += r.quota_cents;
            total_won += r.won_cents;
            if r.quota_cents > 0 {
                with_quota += 1;
                at_quota += i64::from(attained);
            }
            RepAttainment {
                rep: r.rep,
                quota: from_cents(r.quota_cents),
                closed_won: from_cents(r.won_cents),
                attainment: attainment(r.won_cents, r.quota_cents),
                attained_quota: attained,
                gap_to_quota: from_cents(gap),
                pipeline: open.as_ref().map(|open| {
                    let pipe = open.get(&Some(rep_id)).cloned().unwrap_or_default();
                    RepPipeline {
                        open_pipeline: from_cents(pipe.cents),
                        weighted_pipeline: round_money(pipe.weighted),
                        pipeline_coverage: coverage(pipe.cents, gap),
                    }
                }),
            }
        })
        .collect();
    Ok(AttainmentReport {
        period: *period,
        rows,
        total_quota: from_cents(total_quota),
        total_closed_won: from_cents(total_won),
        attainment: attainment(total_won, total_quota),
        reps_with_quota: with_quota,
        reps_at_quota: at_quota,
        quota_achievement_rate: ratio(at_quota, with_quota),
    })
}
