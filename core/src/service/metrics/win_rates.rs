//! Win rates per group: won / (won + lost) by count and by amount, over the
//! deals closed in the period (docs/design.md, Win rates).
use rust_decimal::Decimal;
use sea_orm::ConnectionTrait;

use super::closed::ClosedSource;
use crate::auth::Principal;
use crate::domain::metrics::win_rate;
use crate::domain::money::from_cents;
use crate::domain::period::Period;
use crate::error::AppResult;
use crate::service::access::METRIC_READERS;
use crate::service::deal_filter::DealFilter;
use crate::service::grouping::{self, Dimension, GroupKey};

#[derive(Debug, Clone, PartialEq)]
pub struct WinRateRow {
    pub key: GroupKey,
    pub won: i64,
    pub lost: i64,
    pub win_rate: Option<f64>,
    pub won_amount: Decimal,
    pub lost_amount: Decimal,
    pub amount_win_rate: Option<f64>,
}

/// Two statements: the grouped aggregate (from `closed`, which may share
/// it with other fields of the request) and the labels of its keys.
pub async fn win_rates(
    db: &impl ConnectionTrait,
    closed: &impl ClosedSource,
    p: &Principal,
    period: &Period,
    dim: Dimension,
    filter: &DealFilter,
) -> AppResult<Vec<WinRateRow>> {
    p.require(METRIC_READERS)?;
    crate::service::metric_definitions::check_group_by("winRates", None, dim)?;
    let rows = closed
        .closed_by_key(p.scope(), filter, period, dim, super::Cycle::Skip)
        .await?;
    let labels = grouping::labels(db, dim, rows.iter().map(|r| r.group_id)).await?;
    let mut out: Vec<WinRateRow> = rows
        .into_iter()
        .map(|r| WinRateRow {
            key: labels[&r.group_id].clone(),
            won: r.won,
            lost: r.lost,
            win_rate: win_rate(r.won, r.lost),
            won_amount: from_cents(r.won_cents),
            lost_amount: from_cents(r.lost_cents),
            amount_win_rate: win_rate(r.won_cents, r.lost_cents),
        })
        .collect();
    grouping::sort_by_key(&mut out, |r| &r.key);
    Ok(out)
}
