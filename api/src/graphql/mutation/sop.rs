use crate::graphql::errors::ResultExt as _;
use async_graphql::{Context, Object, Result, ID};

use crate::graphql::enums::SopStage;
use crate::graphql::types::sop::{
    CreateSopPlanInput, SopAdjustmentInput, SopDemandLineInput, SopPlan, SopSupplyLineInput,
};
use crate::graphql::{lookup_id, opt_id, principal, write_db};
use crate::service;
use crate::service::access::{SOP_READERS, SOP_WRITERS};
use crate::service::sop::{Adjustment, DemandLine, NewPlan, SupplyLine};

#[derive(Default)]
pub struct SopMutation;

fn territory(id: &Option<ID>, list: &str, i: usize) -> async_graphql::Result<Option<i64>> {
    opt_id(id, &format!("{list}[{i}].territoryId")).extend()
}

#[Object]
impl SopMutation {
    /// Opens a plan in DATA_GATHERING and gathers its ACTUAL lines (closed-won per territory and month over
    /// lookbackMonths) and BASELINE lines (the HISTORICAL forecast per territory and month of the horizon).
    async fn create_sop_plan(
        &self,
        ctx: &Context<'_>,
        input: CreateSopPlanInput,
    ) -> Result<SopPlan> {
        let p = principal(ctx)?;
        p.require(SOP_WRITERS).extend()?;
        let new = NewPlan {
            name: input.name,
            horizon_start: input.horizon_start.0,
            horizon_months: input.horizon_months,
            lookback_months: input.lookback_months,
            baseline_lookback_months: input.baseline_lookback_months,
            growth_rate: input.growth_rate,
            approvers: input.approvers.unwrap_or_default(),
        };
        Ok(SopPlan(
            service::sop::create(write_db(ctx)?, p, new)
                .await
                .extend()?,
        ))
    }

    /// Moves the plan to the next stage; fails with INVALID_TRANSITION from RELEASED and CONFLICT on a stale version.
    /// Leaving DEMAND_PLANNING confirms the baseline as demand where none was set; leaving SUPPLY_PLANNING records
    /// the computed capacity where no supply was set.
    async fn advance_sop_plan(
        &self,
        ctx: &Context<'_>,
        id: ID,
        expected_version: i32,
        note: Option<String>,
    ) -> Result<SopPlan> {
        let p = principal(ctx)?;
        p.require(SOP_WRITERS).extend()?;
        let id = lookup_id(&id, "S&OP plan").extend()?;
        Ok(SopPlan(
            service::sop::advance(write_db(ctx)?, p, id, expected_version, note.as_deref())
                .await
                .extend()?,
        ))
    }

    /// Sets demand per territory-month (DEMAND_PLANNING only), each line as an amount or as a percentage change of
    /// its baseline (exactly one; below -100% is BAD_USER_INPUT); replaces an earlier DEMAND line of the same
    /// territory-month. A month that was over when the plan was made is BAD_USER_INPUT. expectedVersion, when
    /// given, must match.
    async fn set_sop_demand(
        &self,
        ctx: &Context<'_>,
        plan_id: ID,
        lines: Vec<SopDemandLineInput>,
        expected_version: Option<i32>,
    ) -> Result<SopPlan> {
        let p = principal(ctx)?;
        p.require(SOP_WRITERS).extend()?;
        let id = lookup_id(&plan_id, "S&OP plan").extend()?;
        let lines = lines
            .into_iter()
            .enumerate()
            .map(|(i, l)| {
                Ok(DemandLine {
                    territory_id: territory(&l.territory_id, "lines", i)?,
                    month: l.month.0,
                    amount: l.amount,
                    change_percent: l.change_percent,
                    note: l.note,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(SopPlan(
            service::sop::set_demand(write_db(ctx)?, p, id, lines, expected_version)
                .await
                .extend()?,
        ))
    }

    /// Sets capacity per territory-month (SUPPLY_PLANNING only), overriding the computed capacity; replaces an
    /// earlier SUPPLY line of the same territory-month. Planned hires are part of the headcount. Without an amount,
    /// capacity is headcount x the average monthly quota per rep of the territory that month (of the organisation
    /// when the territory has none).
    async fn set_sop_supply(
        &self,
        ctx: &Context<'_>,
        plan_id: ID,
        lines: Vec<SopSupplyLineInput>,
        expected_version: Option<i32>,
    ) -> Result<SopPlan> {
        let p = principal(ctx)?;
        p.require(SOP_WRITERS).extend()?;
        let id = lookup_id(&plan_id, "S&OP plan").extend()?;
        let lines = lines
            .into_iter()
            .enumerate()
            .map(|(i, l)| {
                Ok(SupplyLine {
                    territory_id: territory(&l.territory_id, "lines", i)?,
                    month: l.month.0,
                    headcount: l.headcount,
                    amount: l.amount,
                    note: l.note,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(SopPlan(
            service::sop::set_supply(write_db(ctx)?, p, id, lines, expected_version)
                .await
                .extend()?,
        ))
    }

    /// Records the changes that close gaps (RECONCILIATION only): hires, trimmed demand, with their budget.
    async fn add_sop_adjustments(
        &self,
        ctx: &Context<'_>,
        plan_id: ID,
        adjustments: Vec<SopAdjustmentInput>,
        expected_version: Option<i32>,
    ) -> Result<SopPlan> {
        let p = principal(ctx)?;
        p.require(SOP_WRITERS).extend()?;
        let id = lookup_id(&plan_id, "S&OP plan").extend()?;
        let adjustments = adjustments
            .into_iter()
            .enumerate()
            .map(|(i, a)| {
                Ok(Adjustment {
                    territory_id: territory(&a.territory_id, "adjustments", i)?,
                    month: a.month.0,
                    amount: a.amount,
                    budget: a.budget,
                    note: a.note,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(SopPlan(
            service::sop::add_adjustments(write_db(ctx)?, p, id, adjustments, expected_version)
                .await
                .extend()?,
        ))
    }

    /// RECONCILIATION to RELEASED; the plan is read-only afterwards (PLAN_LOCKED). With approvers named, every one
    /// must have approved the current version first (INVALID_TRANSITION naming those missing).
    async fn release_sop_plan(
        &self,
        ctx: &Context<'_>,
        id: ID,
        expected_version: i32,
        note: Option<String>,
    ) -> Result<SopPlan> {
        let p = principal(ctx)?;
        p.require(SOP_WRITERS).extend()?;
        let id = lookup_id(&id, "S&OP plan").extend()?;
        Ok(SopPlan(
            service::sop::release(write_db(ctx)?, p, id, expected_version, note.as_deref())
                .await
                .extend()?,
        ))
    }

    /// Back to an earlier stage before release, with a reason kept in transitions.
    async fn reopen_sop_plan(
        &self,
        ctx: &Context<'_>,
        id: ID,
        to_stage: SopStage,
        reason: String,
        expected_version: Option<i32>,
    ) -> Result<SopPlan> {
        let p = principal(ctx)?;
        p.require(SOP_WRITERS).extend()?;
        let id = lookup_id(&id, "S&OP plan").extend()?;
        Ok(SopPlan(
            service::sop::reopen(
                write_db(ctx)?,
                p,
                id,
                to_stage.into(),
                &reason,
                expected_version,
            )
            .await
            .extend()?,
        ))
    }

    /// Starts the next revision of a released plan in DATA_GATHERING: gathers ACTUAL and BASELINE again as of now
    /// (months over by now take their actual as demand) and carries over the DEMAND, SUPPLY and ADJUSTMENT lines
    /// people entered for the months still planned, marked carried; the approvers are named again.
    async fn revise_sop_plan(&self, ctx: &Context<'_>, id: ID) -> Result<SopPlan> {
        let p = principal(ctx)?;
        p.require(SOP_WRITERS).extend()?;
        let id = lookup_id(&id, "S&OP plan").extend()?;
        Ok(SopPlan(
            service::sop::revise(write_db(ctx)?, p, id).await.extend()?,
        ))
    }

    /// Sets demand from the open pipeline (DEMAND_PLANNING only): for every planned month, the STAGE_WEIGHTED
    /// forecast of each territory (closed-won so far plus open deals expected to close in the month weighted by
    /// stage probability) becomes its DEMAND line, replacing an earlier one; the note is required and kept on each
    /// line with the forecast's parts.
    async fn seed_sop_demand_from_pipeline(
        &self,
        ctx: &Context<'_>,
        plan_id: ID,
        note: String,
        expected_version: Option<i32>,
    ) -> Result<SopPlan> {
        let p = principal(ctx)?;
        p.require(SOP_WRITERS).extend()?;
        let id = lookup_id(&plan_id, "S&OP plan").extend()?;
        let (plan, _) =
            service::sop::seed_demand_from_pipeline(write_db(ctx)?, p, id, &note, expected_version)
                .await
                .extend()?;
        Ok(SopPlan(plan))
    }

    /// Names the plan's approvers (replacing the list) before release; a change, so it bumps the version and
    /// approvals given so far no longer count.
    async fn set_sop_approvers(
        &self,
        ctx: &Context<'_>,
        plan_id: ID,
        approvers: Vec<String>,
        expected_version: Option<i32>,
    ) -> Result<SopPlan> {
        let p = principal(ctx)?;
        p.require(SOP_WRITERS).extend()?;
        let id = lookup_id(&plan_id, "S&OP plan").extend()?;
        Ok(SopPlan(
            service::sop::set_approvers(write_db(ctx)?, p, id, approvers, expected_version)
                .await
                .extend()?,
        ))
    }

    /// The caller's sign-off of the plan's current version (RECONCILIATION only; expectedVersion must be the
    /// version approved). Not an approver of the plan: FORBIDDEN; approving the same version twice: CONFLICT.
    /// Release waits until every approver has approved the current version.
    async fn approve_sop_plan(
        &self,
        ctx: &Context<'_>,
        id: ID,
        expected_version: i32,
        note: Option<String>,
    ) -> Result<SopPlan> {
        let p = principal(ctx)?;
        p.require(SOP_READERS).extend()?;
        let id = lookup_id(&id, "S&OP plan").extend()?;
        let (plan, _) =
            service::sop::approve(write_db(ctx)?, p, id, expected_version, note.as_deref())
                .await
                .extend()?;
        Ok(SopPlan(plan))
    }
}
