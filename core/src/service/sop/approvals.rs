//! Sign-off: the approvers named on a plan, each one's approval of a plan
//! version, and the check release makes. An approval is of the version the
//! approver saw; any later change bumps the version, so an approval of an
//! older version no longer counts and the approver approves again.
use std::collections::BTreeSet;

use sea_orm::{
    ActiveEnum, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, Set,
};

use entity::enums::SopStage;
use entity::{sop_approver, sop_plan};

use super::lifecycle::{bump, bumped, changed_meanwhile, check_version};
use super::shared::{load, stage_name};
use super::MAX_NOTE;
use crate::auth::Principal;
use crate::clock;
use crate::db::{begin_write, Sql};
use crate::error::{AppError, AppResult};
use crate::service::access::{SOP_READERS, SOP_WRITERS};
use crate::service::audit::{self, Changes};
use crate::service::outbox::{self, EventKind};
use crate::service::{optional_text, required_text};

const MAX_APPROVERS: usize = 20;

/// Approvers as given: token subjects, trimmed, each named once.
pub(super) fn check_approvers(names: &[String], field: &str) -> AppResult<Vec<String>> {
    if names.len() > MAX_APPROVERS {
        return Err(AppError::bad_input(format!(
            "{field} may name at most {MAX_APPROVERS} approvers"
        )));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(names.len());
    for (i, n) in names.iter().enumerate() {
        let n = required_text(n, &format!("{field}[{i}]"), 200)?;
        if !seen.insert(n.clone()) {
            return Err(AppError::bad_input(format!(
                "{field}[{i}] names {n} again: each approver once"
            )));
        }
        out.push(n);
    }
    Ok(out)
}

pub(super) async fn insert_approvers(
    tx: &DatabaseTransaction,
    plan_id: i64,
    names: &[String],
) -> AppResult<()> {
    if names.is_empty() {
        return Ok(());
    }
    sop_approver::Entity::insert_many(names.iter().map(|n| sop_approver::ActiveModel {
        plan_id: Set(plan_id),
        approver: Set(n.clone()),
        approved_version: Set(None),
        approved_at: Set(None),
        note: Set(None),
        ..Default::default()
    }))
    .exec(tx)
    .await?;
    Ok(())
}

/// The approvers of a plan, by name.
pub async fn approvers_of(
    db: &impl ConnectionTrait,
    plan_id: i64,
) -> AppResult<Vec<sop_approver::Model>> {
    Ok(sop_approver::Entity::find()
        .filter(sop_approver::Column::PlanId.eq(plan_id))
        .order_by_asc(sop_approver::Column::Approver)
        .all(db)
        .await?)
}

/// Names the previous revision's approvers on the new one (without their
/// approvals).
pub(super) async fn copy_approvers(
    tx: &DatabaseTransaction,
    from: i64,
    to: i64,
) -> AppResult<Vec<String>> {
    let names: Vec<String> = approvers_of(tx, from)
        .await?
        .into_iter()
        .map(|a| a.approver)
        .collect();
    insert_approvers(tx, to, &names).await?;
    Ok(names)
}

/// The approvers who have not approved the plan's current version, by name.
pub(super) async fn missing_approvers(
    db: &impl ConnectionTrait,
    plan: &sop_plan::Model,
) -> AppResult<Vec<String>> {
    Ok(approvers_of(db, plan.id)
        .await?
        .into_iter()
        .filter(|a| a.approved_version != Some(plan.version))
        .map(|a| a.approver)
        .collect())
}

/// Names the approvers of a plan before release (replacing the list); a
/// change like any other, so it bumps the version and earlier approvals no
/// longer count.
pub async fn set_approvers(
    db: &DatabaseConnection,
    actor: &Principal,
    plan_id: i64,
    approvers: Vec<String>,
    expected_version: Option<i32>,
) -> AppResult<sop_plan::Model> {
    actor.require(SOP_WRITERS)?;
    let names = check_approvers(&approvers, "approvers")?;
    let tx = begin_write(db).await?;
    let plan = load(&tx, plan_id).await?;
    if plan.stage == SopStage::Released {
        return Err(AppError::PlanLocked);
    }
    check_version(&plan, expected_version)?;
    let now = clock::now().max(plan.updated_at);
    if !bump(&tx, &plan, plan.stage, now).await? {
        return Err(changed_meanwhile(plan_id));
    }
    let next = bumped(&plan, plan.stage, now);
    let old: Vec<String> = approvers_of(&tx, plan_id)
        .await?
        .into_iter()
        .map(|a| a.approver)
        .collect();
    sop_approver::Entity::delete_many()
        .filter(sop_approver::Column::PlanId.eq(plan_id))
        .exec(&tx)
        .await?;
    insert_approvers(&tx, plan_id, &names).await?;
    let mut changes = Changes::new();
    changes
        .field("version", &plan.version, &next.version)
        .field("approvers", &old, &names);
    audit::record(
        &tx,
        &actor.subject,
        "setSopApprovers",
        "SopPlan",
        plan_id,
        &changes,
    )
    .await?;
    tx.commit().await?;
    Ok(next)
}

/// The caller's sign-off of the plan's current version (RECONCILIATION
/// only). FORBIDDEN for someone not named as an approver, CONFLICT for a
/// stale expectedVersion or a second approval of the same version. It
/// does not change the plan's version (other approvals still count), and
/// it queues SOP_PLAN_APPROVED in the same transaction.
pub async fn approve(
    db: &DatabaseConnection,
    actor: &Principal,
    plan_id: i64,
    expected_version: i32,
    note: Option<&str>,
) -> AppResult<(sop_plan::Model, sop_approver::Model)> {
    actor.require(SOP_READERS)?;
    let note = optional_text(note, "note", MAX_NOTE)?;
    let tx = begin_write(db).await?;
    let plan = load(&tx, plan_id).await?;
    let approvers = approvers_of(&tx, plan_id).await?;
    let Some(mine) = approvers.iter().find(|a| a.approver == actor.subject) else {
        return Err(AppError::forbidden(format!(
            "{} is not an approver of S&OP plan {plan_id}",
            actor.subject
        )));
    };
    match plan.stage {
        SopStage::Released => return Err(AppError::PlanLocked),
        SopStage::Reconciliation => {}
        other => {
            return Err(AppError::InvalidTransition(format!(
                "a plan is approved in RECONCILIATION; S&OP plan {plan_id} is in {}",
                stage_name(other)
            )))
        }
    }
    check_version(&plan, Some(expected_version))?;
    if mine.approved_version == Some(plan.version) {
        return Err(AppError::conflict(format!(
            "{} already approved version {} of S&OP plan {plan_id}",
            actor.subject, plan.version
        )));
    }
    // Holds the plan at the version approved until commit (a no-op write
    // that locks the row on PostgreSQL; SQLite writes one at a time).
    let mut hold = Sql::new("UPDATE sop_plan SET version = version WHERE id = ");
    hold.bind(plan.id)
        .push(" AND version = ")
        .bind(plan.version)
        .push(" AND stage = ")
        .bind(plan.stage.to_value());
    if tx
        .execute_raw(hold.statement(tx.get_database_backend()))
        .await?
        .rows_affected()
        != 1
    {
        return Err(changed_meanwhile(plan_id));
    }
    let now = clock::now();
    let mut set = Sql::new("UPDATE sop_approver SET approved_version = ");
    set.bind(plan.version)
        .push(", approved_at = ")
        .bind(now)
        .push(", note = ")
        .bind(note.clone())
        .push(" WHERE id = ")
        .bind(mine.id)
        .push(" AND (approved_version IS NULL OR approved_version <> ")
        .bind(plan.version)
        .push(")");
    if tx
        .execute_raw(set.statement(tx.get_database_backend()))
        .await?
        .rows_affected()
        != 1
    {
        return Err(AppError::conflict(format!(
            "{} already approved version {} of S&OP plan {plan_id}",
            actor.subject, plan.version
        )));
    }
    let approved = sop_approver::Model {
        approved_version: Some(plan.version),
        approved_at: Some(now),
        note: note.clone(),
        ..mine.clone()
    };
    let pending: Vec<&str> = approvers
        .iter()
        .filter(|a| a.id != mine.id && a.approved_version != Some(plan.version))
        .map(|a| a.approver.as_str())
        .collect();
    outbox::enqueue(
        &tx,
        EventKind::SopPlanApproved,
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
            },
            "approver": approved.approver,
            "approvedVersion": plan.version,
            "approvedAt": now,
            "note": note,
            "pendingApprovers": pending,
        }),
    )
    .await?;
    let mut changes = Changes::new();
    changes
        .created("approver", &approved.approver)
        .created("approvedVersion", &plan.version)
        .created("note", &note);
    audit::record(
        &tx,
        &actor.subject,
        "approveSopPlan",
        "SopPlan",
        plan_id,
        &changes,
    )
    .await?;
    tx.commit().await?;
    Ok((plan, approved))
}
