//! Helpers every S&OP concern uses: stage names, a stored plan's horizon and
//! growth, loading a plan, building and inserting lines.
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sea_orm::{ActiveEnum, ConnectionTrait, DatabaseTransaction, EntityTrait, Set};

use entity::enums::{SopLineKind, SopStage};
use entity::{sop_line, sop_plan};

use super::{Key, INSERT_CHUNK};
use crate::domain::sop::Horizon;
use crate::error::{AppError, AppResult};

pub fn stage_name(s: SopStage) -> String {
    s.to_value()
}

pub(super) fn horizon_of(plan: &sop_plan::Model) -> AppResult<Horizon> {
    Horizon::new(plan.horizon_start, i64::from(plan.horizon_months))
        .map_err(|e| AppError::internal(format!("stored plan {} has a bad horizon: {e}", plan.id)))
}

/// The first month the plan plans (earlier months were over when it was
/// made and took their ACTUAL as demand).
pub(super) fn planned_from(plan: &sop_plan::Model) -> chrono::NaiveDate {
    plan.planned_from.unwrap_or(plan.horizon_start)
}

pub(super) fn growth_of(plan: &sop_plan::Model) -> Decimal {
    Decimal::new(plan.growth_rate_ppm, 6).normalize()
}

pub(super) async fn load(db: &impl ConnectionTrait, id: i64) -> AppResult<sop_plan::Model> {
    sop_plan::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found(format!("S&OP plan {id}")))
}

pub(super) fn new_line(
    plan_id: i64,
    kind: SopLineKind,
    key: Key,
    amount_cents: i64,
    actor: &str,
    now: DateTime<Utc>,
) -> sop_line::ActiveModel {
    sop_line::ActiveModel {
        plan_id: Set(plan_id),
        kind: Set(kind),
        territory_id: Set(key.0),
        month: Set(key.1),
        amount_cents: Set(amount_cents),
        headcount: Set(None),
        budget_cents: Set(None),
        note: Set(None),
        author: Set(actor.to_owned()),
        generated: Set(false),
        created_at: Set(now),
        carried_from_plan_id: Set(None),
        ..Default::default()
    }
}

pub(super) async fn insert_lines(
    tx: &DatabaseTransaction,
    lines: Vec<sop_line::ActiveModel>,
) -> AppResult<()> {
    let mut it = lines.into_iter().peekable();
    while it.peek().is_some() {
        let chunk: Vec<_> = it.by_ref().take(INSERT_CHUNK).collect();
        sop_line::Entity::insert_many(chunk).exec(tx).await?;
    }
    Ok(())
}
