//! S&OP plans: the plan, its lines, transitions, gaps and variances, and the
//! inputs of the planning mutations.
use async_graphql::{Context, InputObject, Object, Result, ID};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use entity::{sop_line, sop_plan, sop_transition, territory};

use super::org::Territory;
use crate::domain::money::{from_cents, ppm_to_f64};
use crate::graphql::enums::{SopLineKind, SopStage};
use crate::graphql::loaders::{
    load_by_id, load_children, load_list, SopPlanGaps, SopPlanLines, SopPlanTransitions,
    SopPlanVariances,
};
use crate::graphql::scalars::Date;
use crate::service::sop::{Gap, Variance};

async fn territory_of(ctx: &Context<'_>, id: Option<i64>) -> Result<Option<Territory>> {
    match id {
        None => Ok(None),
        Some(id) => Ok(load_by_id::<territory::Entity>(ctx, id)
            .await?
            .map(Territory)),
    }
}

/// One revision of a sales and operations plan. Numbers are per territory
/// and month; a null territory is the bucket of deals and reps without one.
pub struct SopPlan(pub sop_plan::Model);

#[Object]
impl SopPlan {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// First day of the first month the plan covers.
    async fn horizon_start(&self) -> Date {
        Date(self.0.horizon_start)
    }
    /// 1 to 12.
    async fn horizon_months(&self) -> i32 {
        self.0.horizon_months
    }
    /// The first day after the last month the plan covers.
    async fn horizon_end(&self) -> Date {
        Date(self.0.horizon_start + chrono::Months::new(self.0.horizon_months.max(0) as u32))
    }
    /// Months of closed-won actuals gathered before horizonStart.
    async fn lookback_months(&self) -> i32 {
        self.0.lookback_months
    }
    /// Whole months before horizonStart whose closed-won sets the baseline's monthly run rate.
    async fn baseline_lookback_months(&self) -> i32 {
        self.0.baseline_lookback_months
    }
    /// Growth applied to the baseline run rate (0.05 is 5%).
    async fn growth_rate(&self) -> f64 {
        ppm_to_f64(self.0.growth_rate_ppm)
    }
    async fn stage(&self) -> SopStage {
        self.0.stage.into()
    }
    async fn revision(&self) -> i32 {
        self.0.revision
    }
    async fn previous_revision(&self, ctx: &Context<'_>) -> Result<Option<SopPlan>> {
        match self.0.previous_revision_id {
            None => Ok(None),
            Some(id) => Ok(load_by_id::<sop_plan::Entity>(ctx, id).await?.map(SopPlan)),
        }
    }
    /// Who created this revision.
    async fn owner(&self) -> &str {
        &self.0.owner
    }
    /// Ordered by kind (ACTUAL, BASELINE, DEMAND, SUPPLY, ADJUSTMENT), territory name (no territory last), month.
    async fn lines(&self, ctx: &Context<'_>, kind: Option<SopLineKind>) -> Result<Vec<SopLine>> {
        let kind: Option<entity::enums::SopLineKind> = kind.map(Into::into);
        Ok(load_list::<SopPlanLines, _>(ctx, self.0.id)
            .await?
            .into_iter()
            .filter(|l| kind.is_none_or(|k| l.kind == k))
            .map(SopLine)
            .collect())
    }
    /// Every stage change, oldest first.
    async fn transitions(&self, ctx: &Context<'_>) -> Result<Vec<SopTransition>> {
        Ok(load_children::<SopPlanTransitions>(ctx, self.0.id)
            .await?
            .into_iter()
            .map(SopTransition)
            .collect())
    }
    /// demand - supply - adjustments per territory-month, ordered by territory name (no territory last) then month.
    /// Demand is the DEMAND line, else the BASELINE; supply is the SUPPLY line, else, until the plan leaves
    /// SUPPLY_PLANNING, the capacity computed from active reps' ramped monthly quotas.
    async fn gaps(&self, ctx: &Context<'_>) -> Result<Vec<SopGap>> {
        Ok(load_list::<SopPlanGaps, _>(ctx, self.0.id)
            .await?
            .into_iter()
            .map(SopGap)
            .collect())
    }
    /// Once released: planned demand against actual closed-won per territory-month (territory-months won without a
    /// plan included), ordered like gaps. Empty before release.
    async fn plan_vs_actual(&self, ctx: &Context<'_>) -> Result<Vec<SopVariance>> {
        Ok(load_list::<SopPlanVariances, _>(ctx, self.0.id)
            .await?
            .into_iter()
            .map(SopVariance)
            .collect())
    }
    async fn released_at(&self) -> Option<DateTime<Utc>> {
        self.0.released_at
    }
    /// Incremented by every change (lines, adjustments, transitions); pass it back as expectedVersion.
    async fn version(&self) -> i32 {
        self.0.version
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

pub struct SopLine(pub sop_line::Model);

#[Object]
impl SopLine {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn kind(&self) -> SopLineKind {
        self.0.kind.into()
    }
    /// Null: deals and reps without a territory.
    async fn territory(&self, ctx: &Context<'_>) -> Result<Option<Territory>> {
        territory_of(ctx, self.0.territory_id).await
    }
    /// First day of the month the line is for.
    async fn month(&self) -> Date {
        Date(self.0.month)
    }
    async fn amount(&self) -> Decimal {
        from_cents(self.0.amount_cents)
    }
    async fn headcount(&self) -> Option<f64> {
        self.0.headcount
    }
    async fn budget(&self) -> Option<Decimal> {
        self.0.budget_cents.map(from_cents)
    }
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }
    /// Who wrote the line (for generated lines, who made the move that generated them).
    async fn author(&self) -> &str {
        &self.0.author
    }
    /// Written by the system: gathered data, baseline confirmed as demand, computed capacity.
    async fn generated(&self) -> bool {
        self.0.generated
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

pub struct SopTransition(pub sop_transition::Model);

#[Object]
impl SopTransition {
    /// Null for the plan's creation.
    async fn from(&self) -> Option<SopStage> {
        self.0.from_stage.map(Into::into)
    }
    async fn to(&self) -> SopStage {
        self.0.to_stage.into()
    }
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
    async fn actor(&self) -> &str {
        &self.0.actor
    }
    /// The mover's note; for a reopen, the reason.
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }
}

pub struct SopGap(pub Gap);

#[Object]
impl SopGap {
    /// Null: deals and reps without a territory.
    async fn territory(&self, ctx: &Context<'_>) -> Result<Option<Territory>> {
        territory_of(ctx, self.0.territory_id).await
    }
    async fn month(&self) -> Date {
        Date(self.0.month)
    }
    async fn demand(&self) -> Decimal {
        self.0.demand
    }
    async fn supply(&self) -> Decimal {
        self.0.supply
    }
    /// Ramped headcount behind the supply, when known.
    async fn headcount(&self) -> Option<f64> {
        self.0.headcount
    }
    /// True while supply is the live computed capacity (no SUPPLY line yet).
    async fn supply_computed(&self) -> bool {
        self.0.supply_computed
    }
    async fn adjustments(&self) -> Decimal {
        self.0.adjustments
    }
    /// demand - supply - adjustments; positive means capacity is short.
    async fn gap(&self) -> Decimal {
        self.0.gap
    }
}

pub struct SopVariance(pub Variance);

#[Object]
impl SopVariance {
    /// Null: deals without a territory.
    async fn territory(&self, ctx: &Context<'_>) -> Result<Option<Territory>> {
        territory_of(ctx, self.0.territory_id).await
    }
    async fn month(&self) -> Date {
        Date(self.0.month)
    }
    /// The plan's demand.
    async fn planned(&self) -> Decimal {
        self.0.planned
    }
    /// Closed-won in the territory-month.
    async fn actual(&self) -> Decimal {
        self.0.actual
    }
    /// actual - planned: positive when the plan was beaten.
    async fn variance(&self) -> Decimal {
        self.0.variance
    }
    /// variance / planned (-0.1 is 10% under plan); null when nothing was planned.
    async fn variance_pct(&self) -> Option<f64> {
        self.0.variance_pct
    }
}

#[derive(InputObject)]
pub struct CreateSopPlanInput {
    pub name: String,
    /// Must be the first day of a month.
    pub horizon_start: Date,
    /// 1 to 12.
    pub horizon_months: i32,
    /// Months of actuals gathered before horizonStart (default 12).
    pub lookback_months: Option<i32>,
    /// Whole months before horizonStart that set the baseline's monthly run rate (HISTORICAL; default 3).
    pub baseline_lookback_months: Option<i32>,
    /// Growth on the baseline run rate, e.g. 0.05 (default 0).
    pub growth_rate: Option<f64>,
}

#[derive(InputObject)]
pub struct SopDemandLineInput {
    /// Null: the bucket of deals without a territory.
    pub territory_id: Option<ID>,
    pub month: Date,
    pub amount: Decimal,
    pub note: Option<String>,
}

#[derive(InputObject)]
pub struct SopSupplyLineInput {
    /// Null: the bucket of reps without a territory.
    pub territory_id: Option<ID>,
    pub month: Date,
    /// Ramped rep headcount planned for the month.
    pub headcount: f64,
    /// Selling capacity; defaults to headcount x the average monthly quota per rep.
    pub amount: Option<Decimal>,
    pub note: Option<String>,
}

#[derive(InputObject)]
pub struct SopAdjustmentInput {
    pub territory_id: Option<ID>,
    pub month: Date,
    /// How much this change closes the gap (capacity added or demand trimmed); a negative amount widens it.
    pub amount: Decimal,
    pub budget: Option<Decimal>,
    pub note: String,
}
