//! A plan's lifecycle: create (with its gathered lines), advance, release,
//! reopen, revise; every stage change recorded as a transition, every write
//! checked against the plan's version in one conditional UPDATE.
use crate::db::RowShape;
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::IdenStatic;
use sea_orm::{
    ActiveEnum, ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, EntityTrait, QueryFilter, Set,
};

use entity::enums::{SopLineKind, SopStage};
use entity::{sop_line, sop_plan, sop_transition};

use super::approvals::{check_approvers, copy_approvers, insert_approvers, missing_approvers};
use super::gathering::{confirm_baseline, gather, record_capacity};
use super::shared::{growth_of, horizon_of, load, stage_name};
use super::{
    NewPlan, DEFAULT_BASELINE_LOOKBACK_MONTHS, DEFAULT_LOOKBACK_MONTHS,
    MAX_BASELINE_LOOKBACK_MONTHS, MAX_LOOKBACK_MONTHS, MAX_NOTE,
};
use crate::auth::Principal;
use crate::clock;
use crate::db::{begin_write, Sql};
use crate::domain::money::PPM;
use crate::domain::sop::Horizon;
use crate::error::{AppError, AppResult};
use crate::service::access::SOP_WRITERS;
use crate::service::audit::{self, Changes};
use crate::service::{optional_text, required_text};

fn next_stage(s: SopStage) -> Option<SopStage> {
    match s {
        SopStage::DataGathering => Some(SopStage::DemandPlanning),
        SopStage::DemandPlanning => Some(SopStage::SupplyPlanning),
        SopStage::SupplyPlanning => Some(SopStage::Reconciliation),
        SopStage::Reconciliation => Some(SopStage::Released),
        SopStage::Released => None,
    }
}

/// Records a stage change of a plan (creation included: `from` None). Every
/// stage change goes through here, after the plan row has been moved to
/// `plan.stage`, in the same transaction: this is the one place to hang
/// anything that must follow a stage change (the SOP_PLAN_STAGE_CHANGED
/// webhook event belongs here).
pub async fn record_transition(
    tx: &DatabaseTransaction,
    plan: &sop_plan::Model,
    from: Option<SopStage>,
    actor: &Principal,
    note: Option<String>,
) -> AppResult<sop_transition::Model> {
    let transition = sop_transition::ActiveModel {
        plan_id: Set(plan.id),
        from_stage: Set(from),
        to_stage: Set(plan.stage),
        at: Set(plan.updated_at),
        actor: Set(actor.subject.clone()),
        note: Set(note),
        ..Default::default()
    }
    .insert(tx)
    .await?;
    // The webhook event, in the same transaction as the move.
    crate::service::outbox::enqueue(
        tx,
        crate::service::outbox::EventKind::SopPlanStageChanged,
        "SopPlan",
        plan.id,
        serde_json::json!({
            "plan": {
                "id": plan.id.to_string(),
                "name": plan.name,
                "revision": plan.revision,
                "horizonStart": plan.horizon_start,
                "horizonMonths": plan.horizon_months,
                "stage": plan.stage.to_value(),
                "version": plan.version,
                "releasedAt": plan.released_at,
                "updatedAt": plan.updated_at,
            },
            "fromStage": from.map(|s| s.to_value()),
            "toStage": plan.stage.to_value(),
            "at": transition.at,
            "actor": transition.actor,
            "note": transition.note,
        }),
    )
    .await?;
    Ok(transition)
}

pub(super) fn check_version(plan: &sop_plan::Model, expected: Option<i32>) -> AppResult<()> {
    match expected {
        Some(v) if v != plan.version => Err(AppError::conflict(format!(
            "S&OP plan {} is at version {}, not {v}: reload it and retry",
            plan.id, plan.version
        ))),
        _ => Ok(()),
    }
}

pub(super) fn changed_meanwhile(id: i64) -> AppError {
    AppError::conflict(format!(
        "S&OP plan {id} changed while this write was applied: reload it and retry"
    ))
}

/// The one atomic check-and-update of a plan row: moves it to `to` (or
/// keeps its stage) and bumps its version, only if it is still at the
/// version and stage that were read. Returns false when another writer got
/// there first. On PostgreSQL the row stays locked until commit.
pub(super) async fn bump(
    tx: &DatabaseTransaction,
    plan: &sop_plan::Model,
    to: SopStage,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let mut sql = Sql::new("UPDATE sop_plan SET stage = ");
    sql.bind(to.to_value())
        .push(", version = version + 1, updated_at = ")
        .bind(now);
    if to == SopStage::Released {
        sql.push(", released_at = ").bind(now);
    }
    sql.push(" WHERE id = ")
        .bind(plan.id)
        .push(" AND version = ")
        .bind(plan.version)
        .push(" AND stage = ")
        .bind(plan.stage.to_value());
    let res = tx
        .execute_raw(sql.statement(tx.get_database_backend()))
        .await?;
    Ok(res.rows_affected() == 1)
}

pub(super) fn bumped(plan: &sop_plan::Model, to: SopStage, now: DateTime<Utc>) -> sop_plan::Model {
    let mut next = plan.clone();
    next.stage = to;
    next.version += 1;
    next.updated_at = now;
    if to == SopStage::Released {
        next.released_at = Some(now);
    }
    next
}

fn check_range(value: i32, field: &str, min: i32, max: i32) -> AppResult<i32> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(AppError::bad_input(format!(
            "{field} must be between {min} and {max} (got {value})"
        )))
    }
}

fn growth_ppm(g: f64) -> AppResult<i64> {
    if !g.is_finite() || g <= -1.0 || g > 10.0 {
        return Err(AppError::bad_input(
            "growthRate must be greater than -1 and at most 10 (0.05 is 5% growth)",
        ));
    }
    Ok((g * PPM as f64).round() as i64)
}

/// Creates a plan in DATA_GATHERING and gathers its ACTUAL and BASELINE
/// lines in the same transaction.
pub async fn create(
    db: &DatabaseConnection,
    actor: &Principal,
    input: NewPlan,
) -> AppResult<sop_plan::Model> {
    actor.require(SOP_WRITERS)?;
    let name = required_text(&input.name, "name", 300)?;
    let horizon = Horizon::new(input.horizon_start, i64::from(input.horizon_months))
        .map_err(|e| AppError::bad_input(e.to_string()))?;
    let lookback = check_range(
        input.lookback_months.unwrap_or(DEFAULT_LOOKBACK_MONTHS),
        "lookbackMonths",
        1,
        MAX_LOOKBACK_MONTHS,
    )?;
    let baseline_lookback = check_range(
        input
            .baseline_lookback_months
            .unwrap_or(DEFAULT_BASELINE_LOOKBACK_MONTHS),
        "baselineLookbackMonths",
        1,
        MAX_BASELINE_LOOKBACK_MONTHS,
    )?;
    let growth = growth_ppm(input.growth_rate.unwrap_or(0.0))?;
    let approvers = check_approvers(&input.approvers, "approvers")?;
    let now = clock::now();
    let planned = check_planned_from(&horizon, now)?;
    let tx = begin_write(db).await?;
    let plan = sop_plan::ActiveModel {
        name: Set(name),
        horizon_start: Set(horizon.start()),
        horizon_months: Set(horizon.months() as i32),
        lookback_months: Set(lookback),
        baseline_lookback_months: Set(baseline_lookback),
        growth_rate_ppm: Set(growth),
        stage: Set(SopStage::DataGathering),
        revision: Set(1),
        previous_revision_id: Set(None),
        owner: Set(actor.subject.clone()),
        released_at: Set(None),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
        planned_from: Set(Some(planned)),
        ..Default::default()
    }
    .insert(&tx)
    .await?;
    let g = gather(&tx, &plan, &horizon, actor, now).await?;
    insert_approvers(&tx, plan.id, &approvers).await?;
    record_transition(
        &tx,
        &plan,
        None,
        actor,
        Some(format!(
            "Plan created for {}: gathered {} actual and {} baseline lines{}",
            horizon.label(),
            g.actuals,
            g.baselines,
            over_note(&plan, g.over)
        )),
    )
    .await?;
    let mut changes = Changes::new();
    changes
        .created("name", &plan.name)
        .created("horizonStart", &plan.horizon_start)
        .created("horizonMonths", &plan.horizon_months)
        .created("lookbackMonths", &plan.lookback_months)
        .created("baselineLookbackMonths", &plan.baseline_lookback_months)
        .created("growthRate", &growth_of(&plan))
        .created("stage", &stage_name(plan.stage))
        .created("version", &plan.version)
        .created("plannedFrom", &plan.planned_from)
        .created("approvers", &approvers)
        .created("actualLines", &g.actuals)
        .created("baselineLines", &g.baselines)
        .created("monthsOverDemandLines", &g.over);
    audit::record(
        &tx,
        &actor.subject,
        "createSopPlan",
        "SopPlan",
        plan.id,
        &changes,
    )
    .await?;
    tx.commit().await?;
    Ok(plan)
}

/// Moves a plan to the next stage, checking `expected_version`.
pub async fn advance(
    db: &DatabaseConnection,
    actor: &Principal,
    id: i64,
    expected_version: i32,
    note: Option<&str>,
) -> AppResult<sop_plan::Model> {
    actor.require(SOP_WRITERS)?;
    let note = optional_text(note, "note", MAX_NOTE)?;
    let tx = begin_write(db).await?;
    let plan = load(&tx, id).await?;
    let Some(to) = next_stage(plan.stage) else {
        return Err(AppError::InvalidTransition(format!(
            "S&OP plan {id} is RELEASED, the last stage: start a new revision with reviseSopPlan"
        )));
    };
    let moved = move_forward(
        &tx,
        actor,
        &plan,
        to,
        expected_version,
        note,
        "advanceSopPlan",
    )
    .await?;
    tx.commit().await?;
    Ok(moved)
}

/// RECONCILIATION -> RELEASED; the plan is read-only afterwards.
pub async fn release(
    db: &DatabaseConnection,
    actor: &Principal,
    id: i64,
    expected_version: i32,
    note: Option<&str>,
) -> AppResult<sop_plan::Model> {
    actor.require(SOP_WRITERS)?;
    let note = optional_text(note, "note", MAX_NOTE)?;
    let tx = begin_write(db).await?;
    let plan = load(&tx, id).await?;
    match plan.stage {
        SopStage::Released => return Err(AppError::PlanLocked),
        SopStage::Reconciliation => {}
        other => {
            return Err(AppError::InvalidTransition(format!(
                "only a plan in RECONCILIATION can be released; S&OP plan {id} is in {}",
                stage_name(other)
            )))
        }
    }
    let moved = move_forward(
        &tx,
        actor,
        &plan,
        SopStage::Released,
        expected_version,
        note,
        "releaseSopPlan",
    )
    .await?;
    tx.commit().await?;
    Ok(moved)
}

async fn move_forward(
    tx: &DatabaseTransaction,
    actor: &Principal,
    plan: &sop_plan::Model,
    to: SopStage,
    expected_version: i32,
    note: Option<String>,
    action: &str,
) -> AppResult<sop_plan::Model> {
    check_version(plan, Some(expected_version))?;
    if to == SopStage::Released {
        // Sign-off: releasing (by releaseSopPlan or advanceSopPlan) needs
        // every approver's approval of this version.
        let missing = missing_approvers(tx, plan).await?;
        if !missing.is_empty() {
            return Err(AppError::InvalidTransition(format!(
                "S&OP plan {} cannot be released before every approver has approved version {}: \
                 waiting for {}",
                plan.id,
                plan.version,
                missing.join(", ")
            )));
        }
    }
    let now = clock::now().max(plan.updated_at);
    if !bump(tx, plan, to, now).await? {
        return Err(changed_meanwhile(plan.id));
    }
    let moved = bumped(plan, to, now);
    let mut changes = Changes::new();
    changes
        .field("stage", &stage_name(plan.stage), &stage_name(moved.stage))
        .field("version", &plan.version, &moved.version);
    let default_note = match (plan.stage, to) {
        (SopStage::DemandPlanning, _) => {
            let n = confirm_baseline(tx, &moved, actor, now).await?;
            changes.created("confirmedDemandLines", &n);
            format!("Demand signed off; baseline confirmed as demand for {n} territory-months")
        }
        (SopStage::SupplyPlanning, _) => {
            let n = record_capacity(tx, &moved, actor, now).await?;
            changes.created("computedSupplyLines", &n);
            format!("Supply signed off; computed capacity recorded for {n} territory-months")
        }
        (_, SopStage::Released) => {
            changes.created("releasedAt", &moved.released_at);
            "Plan released".to_owned()
        }
        (_, to) => format!("Moved to {}", stage_name(to)),
    };
    record_transition(
        tx,
        &moved,
        Some(plan.stage),
        actor,
        Some(note.unwrap_or(default_note)),
    )
    .await?;
    audit::record(tx, &actor.subject, action, "SopPlan", plan.id, &changes).await?;
    Ok(moved)
}

/// Takes a plan back to an earlier stage before release, with a reason
/// kept as the transition's note. Lines the system generated when leaving
/// the reopened stages (confirmed baseline demand, computed capacity) are
/// removed, so they are worked out again on the next advance; lines people
/// entered stay.
pub async fn reopen(
    db: &DatabaseConnection,
    actor: &Principal,
    id: i64,
    to: SopStage,
    reason: &str,
    expected_version: Option<i32>,
) -> AppResult<sop_plan::Model> {
    actor.require(SOP_WRITERS)?;
    let reason = required_text(reason, "reason", MAX_NOTE)?;
    let tx = begin_write(db).await?;
    let plan = load(&tx, id).await?;
    if plan.stage == SopStage::Released {
        return Err(AppError::PlanLocked);
    }
    if to >= plan.stage {
        return Err(AppError::InvalidTransition(format!(
            "reopening goes back to an earlier stage: S&OP plan {id} is in {}, and {} is not before it",
            stage_name(plan.stage),
            stage_name(to)
        )));
    }
    check_version(&plan, expected_version)?;
    let now = clock::now().max(plan.updated_at);
    if !bump(&tx, &plan, to, now).await? {
        return Err(changed_meanwhile(id));
    }
    let moved = bumped(&plan, to, now);
    let mut kinds = Vec::new();
    if to <= SopStage::DemandPlanning {
        kinds.push(SopLineKind::Demand);
    }
    if to <= SopStage::SupplyPlanning {
        kinds.push(SopLineKind::Supply);
    }
    let removed = if kinds.is_empty() {
        0
    } else {
        sop_line::Entity::delete_many()
            .filter(sop_line::Column::PlanId.eq(id))
            .filter(sop_line::Column::Generated.eq(true))
            .filter(sop_line::Column::Kind.is_in(kinds))
            .exec(&tx)
            .await?
            .rows_affected
    };
    record_transition(&tx, &moved, Some(plan.stage), actor, Some(reason.clone())).await?;
    let mut changes = Changes::new();
    changes
        .field("stage", &stage_name(plan.stage), &stage_name(moved.stage))
        .field("version", &plan.version, &moved.version)
        .created("reason", &reason)
        .created("removedGeneratedLines", &removed);
    audit::record(
        &tx,
        &actor.subject,
        "reopenSopPlan",
        "SopPlan",
        id,
        &changes,
    )
    .await?;
    tx.commit().await?;
    Ok(moved)
}

/// Starts revision n+1 of a released plan in DATA_GATHERING, linked by
/// previous_revision_id: it gathers ACTUAL and BASELINE again as of now
/// (months over by now take their ACTUAL as demand) and carries over the
/// DEMAND, SUPPLY and ADJUSTMENT lines people entered in the previous
/// revision for the months it still plans (authors, notes and times kept,
/// `carried_from_plan_id` set). Lines the system generated there (confirmed
/// baseline, computed capacity, months-over demand) are not carried: they
/// are worked out again from the fresh data. The approvers are named again
/// (their approvals are not carried). Only one revision follows a plan:
/// revise the latest.
pub async fn revise(
    db: &DatabaseConnection,
    actor: &Principal,
    id: i64,
) -> AppResult<sop_plan::Model> {
    actor.require(SOP_WRITERS)?;
    let tx = begin_write(db).await?;
    let plan = load(&tx, id).await?;
    if plan.stage != SopStage::Released {
        return Err(AppError::InvalidTransition(format!(
            "only a released plan can be revised; S&OP plan {id} is in {} (reopen it to change it before release)",
            stage_name(plan.stage)
        )));
    }
    if let Some(next) = sop_plan::Entity::find()
        .filter(sop_plan::Column::PreviousRevisionId.eq(id))
        .one(&tx)
        .await?
    {
        return Err(AppError::conflict(format!(
            "S&OP plan {id} already has revision {} (plan {}): revise that one",
            next.revision, next.id
        )));
    }
    let horizon = horizon_of(&plan)?;
    let now = clock::now();
    let planned = check_planned_from(&horizon, now)?;
    let revised = sop_plan::ActiveModel {
        name: Set(plan.name.clone()),
        horizon_start: Set(plan.horizon_start),
        horizon_months: Set(plan.horizon_months),
        lookback_months: Set(plan.lookback_months),
        baseline_lookback_months: Set(plan.baseline_lookback_months),
        growth_rate_ppm: Set(plan.growth_rate_ppm),
        stage: Set(SopStage::DataGathering),
        revision: Set(plan.revision + 1),
        previous_revision_id: Set(Some(plan.id)),
        owner: Set(actor.subject.clone()),
        released_at: Set(None),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
        planned_from: Set(Some(planned)),
        ..Default::default()
    }
    .insert(&tx)
    .await?;
    let g = gather(&tx, &revised, &horizon, actor, now).await?;
    // Every column of each carried line but its id: the new plan's id for
    // plan_id, the previous plan's for carried_from_plan_id.
    let copy = RowShape::<sop_line::Entity>::all_but(&[sop_line::Column::Id]);
    let mut sql = Sql::new(format!(
        "INSERT INTO sop_line ({}) SELECT ",
        copy.names().join(", ")
    ));
    for (i, c) in copy.names().into_iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        if c == sop_line::Column::PlanId.as_str() {
            sql.bind(revised.id);
        } else if c == sop_line::Column::CarriedFromPlanId.as_str() {
            sql.bind(plan.id);
        } else {
            sql.push(c);
        }
    }
    sql.push(" FROM sop_line WHERE plan_id = ")
        .bind(plan.id)
        .push(" AND kind IN ")
        .bind_list(
            [
                SopLineKind::Demand,
                SopLineKind::Supply,
                SopLineKind::Adjustment,
            ]
            .iter()
            .map(|k| k.to_value()),
        )
        .push(" AND generated = ")
        .bind(false)
        .push(" AND month >= ")
        .bind(planned)
        .push(" ORDER BY id");
    let carried = tx
        .execute_raw(sql.statement(tx.get_database_backend()))
        .await?
        .rows_affected();
    let approvers = copy_approvers(&tx, plan.id, revised.id).await?;
    record_transition(
        &tx,
        &revised,
        None,
        actor,
        Some(format!(
            "Revision {} started from released plan {} (revision {}): gathered {} actual and {} \
             baseline lines{}; {carried} lines carried over",
            revised.revision,
            plan.id,
            plan.revision,
            g.actuals,
            g.baselines,
            over_note(&revised, g.over)
        )),
    )
    .await?;
    let mut changes = Changes::new();
    changes
        .created("name", &revised.name)
        .created("revision", &revised.revision)
        .created("previousRevisionId", &revised.previous_revision_id)
        .created("stage", &stage_name(revised.stage))
        .created("plannedFrom", &revised.planned_from)
        .created("approvers", &approvers)
        .created("actualLines", &g.actuals)
        .created("baselineLines", &g.baselines)
        .created("monthsOverDemandLines", &g.over)
        .created("carriedLines", &carried);
    audit::record(
        &tx,
        &actor.subject,
        "reviseSopPlan",
        "SopPlan",
        revised.id,
        &changes,
    )
    .await?;
    tx.commit().await?;
    Ok(revised)
}

/// The first month a plan made now plans; a horizon that is wholly over has
/// nothing to plan (BAD_USER_INPUT).
fn check_planned_from(horizon: &Horizon, now: DateTime<Utc>) -> AppResult<NaiveDate> {
    let first = crate::domain::sop::first_planned_month(horizon, now.date_naive());
    if first >= horizon.end() {
        return Err(AppError::bad_input(format!(
            "every month of the horizon {} is over: there is nothing left to plan",
            horizon.label()
        )));
    }
    Ok(first)
}

fn over_note(plan: &sop_plan::Model, over: usize) -> String {
    match plan.planned_from {
        Some(p) if p > plan.horizon_start => format!(
            "; months before {} were over: their closed-won is the demand ({over} lines)",
            crate::domain::sop::month_label(p)
        ),
        _ => String::new(),
    }
}
