//! S&OP plans: the plan, its lines, transitions, gaps and variances, and the
//! inputs of the planning mutations.
use crate::graphql::eager::{EagerList, ReadyFields};
use async_graphql::{Context, InputObject, Object, Result, ID};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use entity::{sop_approver, sop_line, sop_plan, sop_transition, territory};

use super::org::Territory;
use crate::domain::money::{from_cents, ppm_to_f64};
use crate::graphql::enums::{SopLineKind, SopStage};
use crate::graphql::errors::{Extend as _, ResultExt as _};
use crate::graphql::loaders::{
    load_by_id, load_children, load_list, SopPlanApprovers, SopPlanBudgets, SopPlanGaps,
    SopPlanLines, SopPlanTransitions, SopPlanVariances,
};
use crate::graphql::read_db;
use crate::graphql::scalars::Date;
use crate::service::sop::{ComparisonRow, Figures, Gap, LineTotal, Variance};

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

impl ReadyFields for SopPlan {}

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
    async fn lines(
        &self,
        ctx: &Context<'_>,
        kind: Option<SopLineKind>,
    ) -> Result<EagerList<SopLine>> {
        let kind: Option<entity::enums::SopLineKind> = kind.map(Into::into);
        Ok(load_list::<SopPlanLines, _>(ctx, self.0.id)
            .await?
            .into_iter()
            .filter(|l| kind.is_none_or(|k| l.kind == k))
            .map(SopLine)
            .collect())
    }
    /// Every stage change, oldest first.
    async fn transitions(&self, ctx: &Context<'_>) -> Result<EagerList<SopTransition>> {
        Ok(load_children::<SopPlanTransitions>(ctx, self.0.id)
            .await?
            .into_iter()
            .map(SopTransition)
            .collect())
    }
    /// demand - supply - adjustments per territory-month, ordered by territory name (no territory last) then month.
    /// Demand is the DEMAND line, else the BASELINE; supply is the SUPPLY line, else, until the plan leaves
    /// SUPPLY_PLANNING, the capacity computed from active reps' ramped monthly quotas.
    /// Only the months the plan plans (from plannedFrom). rollUpTo: add every territory's numbers to its ancestor
    /// at that level of the territory tree (0 is the top; a territory above the level stays itself); a level the tree
    /// does not have is BAD_USER_INPUT.
    async fn gaps(&self, ctx: &Context<'_>, roll_up_to: Option<i32>) -> Result<EagerList<SopGap>> {
        let gaps = load_list::<SopPlanGaps, _>(ctx, self.0.id).await?;
        let gaps = match (
            crate::service::sop::tree_for(read_db(ctx)?, roll_up_to)
                .await
                .extend()?,
            roll_up_to,
        ) {
            (Some(tree), Some(level)) => crate::service::sop::roll_up_gaps(gaps, &tree, level),
            _ => gaps,
        };
        Ok(gaps.into_iter().map(SopGap).collect())
    }
    /// Once released: planned demand against actual closed-won per territory-month (territory-months won without a
    /// plan included), ordered like gaps. Empty before release.
    /// Months that were over when the plan was made are left out. rollUpTo: as in gaps.
    async fn plan_vs_actual(
        &self,
        ctx: &Context<'_>,
        roll_up_to: Option<i32>,
    ) -> Result<EagerList<SopVariance>> {
        let rows = load_list::<SopPlanVariances, _>(ctx, self.0.id).await?;
        let rows = match (
            crate::service::sop::tree_for(read_db(ctx)?, roll_up_to)
                .await
                .extend()?,
            roll_up_to,
        ) {
            (Some(tree), Some(level)) => crate::service::sop::roll_up_variances(rows, &tree, level),
            _ => rows,
        };
        Ok(rows.into_iter().map(SopVariance).collect())
    }
    /// The plan's lines summed per kind, territory and month (ordered like lines); rollUpTo: as in gaps.
    async fn line_totals(
        &self,
        ctx: &Context<'_>,
        kind: Option<SopLineKind>,
        roll_up_to: Option<i32>,
    ) -> Result<EagerList<SopLineTotal>> {
        let p = crate::graphql::principal(ctx)?;
        Ok(crate::service::sop::line_totals_of(
            read_db(ctx)?,
            p,
            self.0.id,
            kind.map(Into::into),
            roll_up_to,
        )
        .await
        .extend()?
        .into_iter()
        .map(SopLineTotal)
        .collect())
    }
    /// The first month the plan plans. Months of the horizon before it were over when the plan (or this revision)
    /// was made: their closed-won is their demand and they are not planned.
    async fn planned_from(&self) -> Date {
        Date(self.0.planned_from.unwrap_or(self.0.horizon_start))
    }
    /// The approvers named on the plan (by name) and their sign-off. Release needs every one's approval of the
    /// current version.
    async fn approvers(&self, ctx: &Context<'_>) -> Result<EagerList<SopApprover>> {
        let version = self.0.version;
        Ok(load_children::<SopPlanApprovers>(ctx, self.0.id)
            .await?
            .into_iter()
            .map(|a| SopApprover(a, version))
            .collect())
    }
    /// The sum of the budgets of the plan's adjustments.
    async fn budget_total(&self, ctx: &Context<'_>) -> Result<Decimal> {
        Ok(ctx
            .data::<async_graphql::dataloader::DataLoader<SopPlanBudgets>>()?
            .load_one(self.0.id)
            .await
            .map_err(|e| (*e).clone().extend())?
            .unwrap_or_default())
    }
    /// Time spent in each stage the plan has been in, in cycle order (a stage reopened adds its visits up); the
    /// current stage counts until now.
    async fn stage_durations(&self, ctx: &Context<'_>) -> Result<EagerList<SopStageDuration>> {
        let transitions = load_children::<SopPlanTransitions>(ctx, self.0.id).await?;
        let now = crate::clock::now();
        let mut out: Vec<SopStageDuration> = Vec::new();
        for (i, t) in transitions.iter().enumerate() {
            let left = transitions.get(i + 1).map(|n| n.at);
            let seconds = (left.unwrap_or(now) - t.at).num_seconds().max(0);
            match out.iter_mut().find(|d| d.stage == t.to_stage) {
                Some(d) => {
                    d.seconds += seconds;
                    d.visits += 1;
                    d.left_at = left;
                }
                None => out.push(SopStageDuration {
                    stage: t.to_stage,
                    seconds,
                    visits: 1,
                    entered_at: t.at,
                    left_at: left,
                }),
            }
        }
        out.sort_by_key(|d| d.stage);
        Ok(out.into())
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

impl ReadyFields for SopLine {}

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
    /// Written by the system: gathered data, baseline confirmed as demand, computed capacity, the actual of a
    /// month that was over.
    async fn generated(&self) -> bool {
        self.0.generated
    }
    /// True when the line was carried over from the previous revision by reviseSopPlan.
    async fn carried(&self) -> bool {
        self.0.carried_from_plan_id.is_some()
    }
    /// The revision the line was carried over from.
    async fn carried_from(&self, ctx: &Context<'_>) -> Result<Option<SopPlan>> {
        match self.0.carried_from_plan_id {
            None => Ok(None),
            Some(id) => Ok(load_by_id::<sop_plan::Entity>(ctx, id).await?.map(SopPlan)),
        }
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

pub struct SopTransition(pub sop_transition::Model);

impl ReadyFields for SopTransition {}

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

impl ReadyFields for SopGap {}

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

impl ReadyFields for SopVariance {}

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
    /// Token subjects whose sign-off (approveSopPlan) release needs; none: release needs no sign-off.
    pub approvers: Option<Vec<String>>,
}

#[derive(InputObject)]
pub struct SopDemandLineInput {
    /// Null: the bucket of deals without a territory.
    pub territory_id: Option<ID>,
    pub month: Date,
    /// The demand; give exactly one of amount and changePercent.
    pub amount: Option<Decimal>,
    /// The demand as a change of the territory-month's baseline in percent: 20 is +20% (a launch), -15 is -15%;
    /// not below -100.
    pub change_percent: Option<Decimal>,
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

/// An approver named on a plan and their sign-off.
pub struct SopApprover(pub sop_approver::Model, pub i32);

impl ReadyFields for SopApprover {}

#[Object]
impl SopApprover {
    /// The approver's token subject.
    async fn approver(&self) -> &str {
        &self.0.approver
    }
    /// The plan version they last approved.
    async fn approved_version(&self) -> Option<i32> {
        self.0.approved_version
    }
    async fn approved_at(&self) -> Option<DateTime<Utc>> {
        self.0.approved_at
    }
    /// True when they approved the plan's current version (a later change resets it).
    async fn approved(&self) -> bool {
        self.0.approved_version == Some(self.1)
    }
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }
}

/// Time a plan spent in one stage.
pub struct SopStageDuration {
    stage: entity::enums::SopStage,
    seconds: i64,
    visits: i32,
    entered_at: DateTime<Utc>,
    left_at: Option<DateTime<Utc>>,
}

impl ReadyFields for SopStageDuration {}

#[Object]
impl SopStageDuration {
    async fn stage(&self) -> SopStage {
        self.stage.into()
    }
    /// Whole seconds in the stage over all visits (the current visit until now).
    async fn seconds(&self) -> f64 {
        self.seconds as f64
    }
    /// How many times the plan entered the stage (more than once after a reopen).
    async fn visits(&self) -> i32 {
        self.visits
    }
    /// When the plan first entered the stage.
    async fn entered_at(&self) -> DateTime<Utc> {
        self.entered_at
    }
    /// When it last left it; null while the plan is in it.
    async fn left_at(&self) -> Option<DateTime<Utc>> {
        self.left_at
    }
}

/// A plan's lines of one kind summed for a territory (or ancestor) and month.
pub struct SopLineTotal(pub LineTotal);

impl ReadyFields for SopLineTotal {}

#[Object]
impl SopLineTotal {
    async fn kind(&self) -> SopLineKind {
        self.0.kind.into()
    }
    /// Null: deals and reps without a territory.
    async fn territory(&self, ctx: &Context<'_>) -> Result<Option<Territory>> {
        territory_of(ctx, self.0.territory_id).await
    }
    async fn month(&self) -> Date {
        Date(self.0.month)
    }
    async fn amount(&self) -> Decimal {
        self.0.amount
    }
    async fn headcount(&self) -> Option<f64> {
        self.0.headcount
    }
    async fn budget(&self) -> Option<Decimal> {
        self.0.budget
    }
    /// How many lines were added up.
    async fn lines(&self) -> i32 {
        self.0.lines.min(i64::from(i32::MAX)) as i32
    }
}

/// One plan's numbers for a territory-month in a comparison.
pub struct SopFigures(pub Figures);

#[Object]
impl SopFigures {
    async fn demand(&self) -> Decimal {
        self.0.demand
    }
    async fn supply(&self) -> Decimal {
        self.0.supply
    }
    async fn adjustments(&self) -> Decimal {
        self.0.adjustments
    }
    async fn gap(&self) -> Decimal {
        self.0.gap
    }
}

/// A territory-month whose numbers differ between the two plans compared.
pub struct SopComparisonRow(pub ComparisonRow);

impl ReadyFields for SopComparisonRow {}

#[Object]
impl SopComparisonRow {
    /// Null: deals and reps without a territory.
    async fn territory(&self, ctx: &Context<'_>) -> Result<Option<Territory>> {
        territory_of(ctx, self.0.territory_id).await
    }
    async fn month(&self) -> Date {
        Date(self.0.month)
    }
    /// The numbers in the plan compared from.
    async fn from(&self) -> SopFigures {
        SopFigures(self.0.from)
    }
    /// The numbers in the plan compared to.
    async fn to(&self) -> SopFigures {
        SopFigures(self.0.to)
    }
    /// to.demand - from.demand.
    async fn demand_change(&self) -> Decimal {
        self.0.to.demand - self.0.from.demand
    }
    async fn supply_change(&self) -> Decimal {
        self.0.to.supply - self.0.from.supply
    }
    async fn adjustments_change(&self) -> Decimal {
        self.0.to.adjustments - self.0.from.adjustments
    }
    async fn gap_change(&self) -> Decimal {
        self.0.to.gap - self.0.from.gap
    }
}

/// Two plans of one horizon compared.
pub struct SopPlanComparison {
    pub from: sop_plan::Model,
    pub to: sop_plan::Model,
    pub rows: Vec<ComparisonRow>,
}

#[Object]
impl SopPlanComparison {
    async fn from(&self) -> SopPlan {
        SopPlan(self.from.clone())
    }
    async fn to(&self) -> SopPlan {
        SopPlan(self.to.clone())
    }
    /// The territory-months (or ancestors at rollUpTo) where demand, supply, adjustments or gap changed, ordered
    /// by territory name (no territory last) then month.
    async fn changes(&self) -> EagerList<SopComparisonRow> {
        self.rows.iter().cloned().map(SopComparisonRow).collect()
    }
}
