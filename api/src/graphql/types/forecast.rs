//! Forecast outputs and inputs.
use crate::graphql::eager::{ready, ready_decimal, ready_node, Eager, EagerList, ReadyFields};
use crate::graphql::errors::Extend as _;
use async_graphql::{Context, Enum, InputObject, Object, Result, ID};
use chrono::{DateTime, Utc};
use ref_cast::RefCast;
use rust_decimal::Decimal;

use entity::forecast_submission;

use super::grouping::GroupKey;
use super::org::Rep;
use crate::domain::money::from_cents;
use crate::error::AppError;
use crate::graphql::enums::{Dimension, ForecastCategory, SubmissionKind, SubmissionScope};
use crate::graphql::scalars::Date;
use crate::graphql::scalars::Period;
use crate::service::forecast as svc;

/// STAGE_WEIGHTED: amount x stage probability. SALES_CYCLE: amount x min(age / average won cycle, 1). HISTORICAL: trailing monthly run rate plus growth plus new-rep ramp. REP_SUBMITTED: the latest forecast each rep submitted (intuitive forecasting).
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "crate::service::forecast::Method")]
pub enum ForecastMethod {
    StageWeighted,
    SalesCycle,
    Historical,
    RepSubmitted,
}

pub struct ForecastRow(pub svc::ForecastRow);

impl ReadyFields for ForecastRow {
    fn ready_field(&self, field: &str) -> Option<async_graphql::Value> {
        let r = &self.0;
        Some(match field {
            "amount" => ready_decimal(&r.amount),
            "closedWon" => ready_decimal(&r.closed_won),
            "projected" => ready_decimal(&r.projected),
            "dealCount" => ready(&i32::try_from(r.deal_count).unwrap_or(i32::MAX)),
            _ => return None,
        })
    }
    fn ready_object(
        &self,
        ctx: &async_graphql::Context<'_>,
        field: &str,
    ) -> Option<async_graphql::Value> {
        match field {
            "key" => ready_node(ctx, GroupKey::ref_cast(&self.0.key)),
            _ => None,
        }
    }
}

#[Object]
impl ForecastRow {
    async fn key(&self) -> Eager<GroupKey> {
        Eager(GroupKey(self.0.key.clone()))
    }
    /// closedWon + projected.
    async fn amount(&self) -> Decimal {
        self.0.amount
    }
    async fn closed_won(&self) -> Decimal {
        self.0.closed_won
    }
    async fn projected(&self) -> Decimal {
        self.0.projected
    }
    async fn deal_count(&self) -> i32 {
        i32::try_from(self.0.deal_count).unwrap_or(i32::MAX)
    }
}

pub struct Forecast(pub svc::Forecast);

#[Object]
impl Forecast {
    async fn method(&self) -> ForecastMethod {
        self.0.method.into()
    }
    async fn period(&self) -> Period {
        self.0.period.into()
    }
    async fn as_of(&self) -> Date {
        Date(self.0.as_of)
    }
    async fn amount(&self) -> Decimal {
        self.0.amount
    }
    async fn closed_won(&self) -> Decimal {
        self.0.closed_won
    }
    async fn projected(&self) -> Decimal {
        self.0.projected
    }
    async fn rows(&self) -> EagerList<ForecastRow> {
        self.0.rows.iter().cloned().map(ForecastRow).collect()
    }
    /// A low and high bound where the method has one (e.g. P10 and P90 of simulated outcomes).
    async fn low(&self) -> Option<Decimal> {
        self.0.low
    }
    async fn high(&self) -> Option<Decimal> {
        self.0.high
    }
}

/// One point of a forecast trend: the forecast as of the end of a bucket.
pub struct ForecastPoint(pub svc::Forecast);

impl ReadyFields for ForecastPoint {}

#[Object]
impl ForecastPoint {
    async fn as_of(&self) -> Date {
        Date(self.0.as_of)
    }
    async fn amount(&self) -> Decimal {
        self.0.amount
    }
    async fn closed_won(&self) -> Decimal {
        self.0.closed_won
    }
    async fn projected(&self) -> Decimal {
        self.0.projected
    }
    /// As Forecast.low, for STAGE_WEIGHTED.
    async fn low(&self) -> Option<Decimal> {
        self.0.low
    }
    async fn high(&self) -> Option<Decimal> {
        self.0.high
    }
}

pub struct ForecastAccuracyRow(pub svc::accuracy::AccuracyRow);

impl ReadyFields for ForecastAccuracyRow {}

#[Object]
impl ForecastAccuracyRow {
    async fn period(&self) -> Period {
        self.0.period.into()
    }
    async fn method(&self) -> ForecastMethod {
        self.0.method.into()
    }
    async fn as_of(&self) -> Date {
        Date(self.0.as_of)
    }
    async fn forecast(&self) -> Decimal {
        self.0.forecast
    }
    async fn actual(&self) -> Decimal {
        self.0.actual
    }
    /// |forecast - actual| / actual; null when actual is 0.
    async fn absolute_percentage_error(&self) -> Option<f64> {
        self.0.absolute_percentage_error
    }
    /// 1 - absolutePercentageError, floored at 0.
    async fn accuracy(&self) -> Option<f64> {
        self.0.accuracy
    }
}

pub struct ForecastSubmission(pub forecast_submission::Model);

impl ReadyFields for ForecastSubmission {}

#[Object]
impl ForecastSubmission {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn rep(&self, ctx: &Context<'_>) -> Result<Rep> {
        Rep::referenced(ctx, self.0.rep_id).await
    }
    async fn period(&self) -> Result<Period> {
        crate::domain::period::Period::canonical(self.0.period_start, self.0.period_end)
            .map(Period)
            .ok_or_else(|| AppError::internal("stored submission period is empty").extend())
    }
    async fn category(&self) -> ForecastCategory {
        self.0.category.into()
    }
    async fn amount(&self) -> Decimal {
        from_cents(self.0.amount_cents)
    }
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }
    async fn submitted_at(&self) -> DateTime<Utc> {
        self.0.submitted_at
    }
    /// The token subject that made it.
    async fn submitted_by(&self) -> &str {
        &self.0.submitted_by
    }
    /// CALL when the rep made it, ADJUSTMENT when someone above the rep (or OPS/ADMIN) did.
    async fn kind(&self) -> SubmissionKind {
        self.0.kind.into()
    }
    async fn scope(&self) -> SubmissionScope {
        self.0.scope.into()
    }
}

#[derive(InputObject, Debug, Clone, Default)]
pub struct HistoricalParams {
    /// Whole months before the period's start that set the monthly run rate (default 3).
    pub lookback_months: Option<i32>,
    /// Expected growth on the run rate, e.g. 0.05 (default 0).
    pub growth_rate: Option<f64>,
    /// New reps joining for the period (default 0).
    pub new_reps: Option<i32>,
    /// Deals each new rep is expected to close in the period (default 0).
    pub deals_per_new_rep: Option<f64>,
    /// Average size of a new rep's deal (default: the average won deal size in the lookback).
    pub new_rep_deal_size: Option<Decimal>,
}

impl From<HistoricalParams> for svc::HistoricalInput {
    fn from(p: HistoricalParams) -> Self {
        Self {
            lookback_months: p.lookback_months,
            growth_rate: p.growth_rate,
            new_reps: p.new_reps,
            deals_per_new_rep: p.deals_per_new_rep,
            new_rep_deal_size: p.new_rep_deal_size,
        }
    }
}

#[derive(InputObject, Debug, Clone)]
pub struct SubmitForecastInput {
    /// Defaults to the caller's own rep.
    pub rep_id: Option<ID>,
    pub period: Period,
    pub category: ForecastCategory,
    pub amount: Decimal,
    pub note: Option<String>,
    /// When the call was made; only OPS, ADMIN and INTEGRATION may set it (backfills). Default now.
    pub submitted_at: Option<DateTime<Utc>>,
    /// PERSONAL (default): the rep's own number; TEAM: the roll-up of the rep's team.
    pub scope: Option<SubmissionScope>,
}

/// The dimension of a forecast's rows (NONE when not given).
pub fn dimension(d: Option<Dimension>) -> crate::service::grouping::Dimension {
    d.map(Into::into).unwrap_or_default()
}

/// One rep's node in the forecast call roll-up (docs/design.md, Forecast calls).
#[derive(Clone)]
pub struct ForecastCallNode {
    pub tree: std::sync::Arc<svc::calls::CallTree>,
    pub idx: usize,
}

impl ReadyFields for ForecastCallNode {}

impl ForecastCallNode {
    fn node(&self) -> &svc::calls::CallNode {
        &self.tree.nodes[self.idx]
    }
}

/// One rep's node in the forecast call roll-up (DESIGN.md, Forecast calls).
#[Object]
impl ForecastCallNode {
    /// Null for the organisation's root node.
    async fn rep(&self) -> Option<Rep> {
        self.node().rep.clone().map(Rep)
    }
    /// The rep's own latest call for the period and category.
    async fn call(&self) -> Option<ForecastSubmission> {
        self.node().call.clone().map(ForecastSubmission)
    }
    /// The latest PERSONAL adjustment of this rep's number by someone above it.
    async fn adjustment(&self) -> Option<ForecastSubmission> {
        self.node().adjustment.clone().map(ForecastSubmission)
    }
    /// adjustment else call (else the sum of parts); null when there is none.
    async fn personal(&self) -> Option<Decimal> {
        self.node().personal
    }
    /// True when personal was summed from calls for the months (or quarters) tiling the period.
    async fn from_parts(&self) -> bool {
        self.node().from_parts
    }
    /// The latest TEAM adjustment of this node's roll-up.
    async fn team_adjustment(&self) -> Option<ForecastSubmission> {
        self.node().team_adjustment.clone().map(ForecastSubmission)
    }
    /// teamAdjustment else personal + the children's rollups (missing numbers count 0).
    async fn rollup(&self) -> Decimal {
        self.node().rollup
    }
    /// Closed-won in the period so far, over the node's subtree.
    async fn closed_won(&self) -> Decimal {
        self.node().closed_won
    }
    /// Quotas of the subtree's quota-carrying reps for the period; null when none.
    async fn quota(&self) -> Option<Decimal> {
        self.node().quota
    }
    /// Open amount expected to close in the period, over the subtree.
    async fn pipeline(&self) -> Decimal {
        self.node().pipeline
    }
    /// rollup / quota.
    async fn attainment(&self) -> Option<f64> {
        self.node().attainment
    }
    async fn children(&self) -> EagerList<ForecastCallNode> {
        self.node()
            .children
            .iter()
            .map(|&idx| ForecastCallNode {
                tree: self.tree.clone(),
                idx,
            })
            .collect()
    }
}
