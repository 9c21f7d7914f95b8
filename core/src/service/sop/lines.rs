//! The reconciliation writes: demand (DEMAND_PLANNING), supply
//! (SUPPLY_PLANNING) and adjustments (RECONCILIATION), with the checks of
//! their inputs (horizon, territories, amounts, list sizes).
use std::collections::{BTreeSet, HashMap};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QuerySelect, Set,
};

use entity::enums::{SopLineKind, SopStage};
use entity::{sop_line, sop_plan, territory};

use super::gathering::capacity;
use super::lifecycle::{bump, bumped, changed_meanwhile, check_version};
use super::shared::{horizon_of, insert_lines, load, new_line, stage_name};
use super::{Adjustment, DemandLine, Key, SupplyLine, MAX_LINES, MAX_NOTE};
use crate::auth::Principal;
use crate::clock;
use crate::db::begin_write;
use crate::domain::money::{from_cents, round_money, to_cents, to_signed_cents};
use crate::domain::sop::{self as math, month_index, month_label, Capacity, Horizon};
use crate::error::{AppError, AppResult};
use crate::service::access::SOP_WRITERS;
use crate::service::audit::{self, Changes};
use crate::service::{optional_text, required_text};

fn territory_label(t: Option<i64>) -> String {
    match t {
        Some(id) => format!("territory {id}"),
        None => "no territory".to_owned(),
    }
}

fn key_label(kind: &str, (t, m): &Key) -> String {
    format!("{kind} {} {}", territory_label(*t), month_label(*m))
}

/// Loads the plan for a line write in `stage` and bumps its version
/// atomically. Without an expected version, a concurrent change makes it
/// re-read and re-check (so a plan advanced meanwhile answers
/// INVALID_TRANSITION, not a spurious CONFLICT).
async fn open_for_lines(
    tx: &DatabaseTransaction,
    id: i64,
    stage: SopStage,
    what: &str,
    expected: Option<i32>,
) -> AppResult<(sop_plan::Model, sop_plan::Model)> {
    for _ in 0..3 {
        let plan = load(tx, id).await?;
        if plan.stage == SopStage::Released {
            return Err(AppError::PlanLocked);
        }
        if plan.stage != stage {
            let hint = if plan.stage < stage {
                format!("advance it to {} first", stage_name(stage))
            } else {
                format!("reopen it to {} first", stage_name(stage))
            };
            return Err(AppError::InvalidTransition(format!(
                "{what} can only be set in {}; S&OP plan {id} is in {}: {hint}",
                stage_name(stage),
                stage_name(plan.stage)
            )));
        }
        check_version(&plan, expected)?;
        let now = clock::now().max(plan.updated_at);
        if bump(tx, &plan, plan.stage, now).await? {
            let next = bumped(&plan, plan.stage, now);
            return Ok((plan, next));
        }
        if expected.is_some() {
            return Err(changed_meanwhile(id));
        }
    }
    Err(changed_meanwhile(id))
}

/// A line's territory and month, checked against the horizon.
fn check_key(
    horizon: &Horizon,
    list: &str,
    i: usize,
    territory_id: Option<i64>,
    month: NaiveDate,
    seen: Option<&mut BTreeSet<Key>>,
) -> AppResult<Key> {
    let field = format!("{list}[{i}]");
    if !horizon.contains_month(month) {
        return Err(AppError::bad_input(format!(
            "{field}.month: {month} is not the first day of a month of the plan's horizon {}",
            horizon.label()
        )));
    }
    let key = (territory_id, month);
    if let Some(seen) = seen {
        if !seen.insert(key) {
            return Err(AppError::bad_input(format!(
                "{field} repeats {} {}: one line per territory and month",
                territory_label(territory_id),
                month_label(month)
            )));
        }
    }
    Ok(key)
}

/// Unknown territory ids are BAD_USER_INPUT naming the line.
async fn check_territories(
    db: &impl ConnectionTrait,
    ids: &[(usize, Option<i64>)],
    list: &str,
) -> AppResult<()> {
    let wanted: BTreeSet<i64> = ids.iter().filter_map(|(_, t)| *t).collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let found: BTreeSet<i64> = territory::Entity::find()
        .select_only()
        .column(territory::Column::Id)
        .filter(territory::Column::Id.is_in(wanted))
        .into_tuple::<i64>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    for (i, t) in ids {
        if let Some(t) = t {
            if !found.contains(t) {
                return Err(AppError::bad_input(format!(
                    "{list}[{i}].territoryId: no territory with id {t}"
                )));
            }
        }
    }
    Ok(())
}

fn check_count(n: usize, list: &str) -> AppResult<()> {
    if n == 0 {
        return Err(AppError::bad_input(format!("{list} must not be empty")));
    }
    if n > MAX_LINES {
        return Err(AppError::bad_input(format!(
            "{list} may hold at most {MAX_LINES} entries"
        )));
    }
    Ok(())
}

fn money(amount: Decimal, field: String, signed: bool) -> AppResult<i64> {
    let r = if signed {
        to_signed_cents(amount, "amount")
    } else {
        to_cents(amount, "amount")
    };
    r.map_err(|e| AppError::bad_input(format!("{field}: {e}")))
}

/// Deletes the lines of `kind` for these territory-months and returns the
/// amounts they had (for the audit trail).
async fn replace_lines(
    tx: &DatabaseTransaction,
    plan_id: i64,
    kind: SopLineKind,
    keys: &[Key],
) -> AppResult<HashMap<Key, i64>> {
    let mut any = Condition::any();
    for (t, m) in keys {
        let territory = match t {
            Some(t) => sop_line::Column::TerritoryId.eq(*t),
            None => sop_line::Column::TerritoryId.is_null(),
        };
        any = any.add(
            Condition::all()
                .add(territory)
                .add(sop_line::Column::Month.eq(*m)),
        );
    }
    let scope = Condition::all()
        .add(sop_line::Column::PlanId.eq(plan_id))
        .add(sop_line::Column::Kind.eq(kind))
        .add(any);
    let old = sop_line::Entity::find()
        .filter(scope.clone())
        .all(tx)
        .await?;
    if !old.is_empty() {
        sop_line::Entity::delete_many()
            .filter(scope)
            .exec(tx)
            .await?;
    }
    Ok(old
        .into_iter()
        .map(|l| ((l.territory_id, l.month), l.amount_cents))
        .collect())
}

/// Sets demand per territory-month in DEMAND_PLANNING; a territory-month
/// that already has a DEMAND line gets the new one instead.
pub async fn set_demand(
    db: &DatabaseConnection,
    actor: &Principal,
    plan_id: i64,
    lines: Vec<DemandLine>,
    expected_version: Option<i32>,
) -> AppResult<sop_plan::Model> {
    actor.require(SOP_WRITERS)?;
    check_count(lines.len(), "lines")?;
    let tx = begin_write(db).await?;
    let (plan, next) = open_for_lines(
        &tx,
        plan_id,
        SopStage::DemandPlanning,
        "demand",
        expected_version,
    )
    .await?;
    let horizon = horizon_of(&plan)?;
    let mut seen = BTreeSet::new();
    let mut rows = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        let key = check_key(
            &horizon,
            "lines",
            i,
            l.territory_id,
            l.month,
            Some(&mut seen),
        )?;
        let cents = money(l.amount, format!("lines[{i}].amount"), false)?;
        let note = optional_text(l.note.as_deref(), &format!("lines[{i}].note"), MAX_NOTE)?;
        rows.push((key, cents, note));
    }
    let ids: Vec<_> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| (i, l.territory_id))
        .collect();
    check_territories(&tx, &ids, "lines").await?;
    let keys: Vec<Key> = rows.iter().map(|r| r.0).collect();
    let old = replace_lines(&tx, plan.id, SopLineKind::Demand, &keys).await?;
    let now = next.updated_at;
    let mut changes = Changes::new();
    changes.field("version", &plan.version, &next.version);
    let mut models = Vec::new();
    for (key, cents, note) in rows {
        changes.field(
            &key_label("demand", &key),
            &old.get(&key).map(|c| from_cents(*c)),
            &Some(from_cents(cents)),
        );
        let mut line = new_line(
            plan.id,
            SopLineKind::Demand,
            key,
            cents,
            &actor.subject,
            now,
        );
        line.note = Set(note);
        models.push(line);
    }
    insert_lines(&tx, models).await?;
    audit::record(
        &tx,
        &actor.subject,
        "setSopDemand",
        "SopPlan",
        plan.id,
        &changes,
    )
    .await?;
    tx.commit().await?;
    Ok(next)
}

/// Sets capacity per territory-month in SUPPLY_PLANNING (overriding the
/// computed capacity); a territory-month that already has a SUPPLY line
/// gets the new one instead. Without an amount, capacity is headcount x the
/// average monthly quota per rep of the territory in that month (of the
/// whole organisation when the territory has no rep with a quota).
pub async fn set_supply(
    db: &DatabaseConnection,
    actor: &Principal,
    plan_id: i64,
    lines: Vec<SupplyLine>,
    expected_version: Option<i32>,
) -> AppResult<sop_plan::Model> {
    actor.require(SOP_WRITERS)?;
    check_count(lines.len(), "lines")?;
    let tx = begin_write(db).await?;
    let (plan, next) = open_for_lines(
        &tx,
        plan_id,
        SopStage::SupplyPlanning,
        "supply",
        expected_version,
    )
    .await?;
    let horizon = horizon_of(&plan)?;
    let mut seen = BTreeSet::new();
    let mut checked = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        let key = check_key(
            &horizon,
            "lines",
            i,
            l.territory_id,
            l.month,
            Some(&mut seen),
        )?;
        if !l.headcount.is_finite() || l.headcount < 0.0 || l.headcount > 1_000_000.0 {
            return Err(AppError::bad_input(format!(
                "lines[{i}].headcount must be between 0 and 1000000"
            )));
        }
        let cents = l
            .amount
            .map(|a| money(a, format!("lines[{i}].amount"), false))
            .transpose()?;
        let note = optional_text(l.note.as_deref(), &format!("lines[{i}].note"), MAX_NOTE)?;
        checked.push((key, l.headcount, cents, note));
    }
    let ids: Vec<_> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| (i, l.territory_id))
        .collect();
    check_territories(&tx, &ids, "lines").await?;
    // Averages only when some line leaves its amount to us.
    let mut computed = HashMap::new();
    if checked.iter().any(|c| c.2.is_none()) {
        let months = checked.iter().map(|c| month_index(c.0 .1)).collect();
        computed = capacity(&tx, &months).await?;
    }
    let mut org: HashMap<i64, Capacity> = HashMap::new();
    for ((_, mi), cap) in &computed {
        org.entry(*mi).or_default().add(cap);
    }
    let old = replace_lines(
        &tx,
        plan.id,
        SopLineKind::Supply,
        &checked.iter().map(|c| c.0).collect::<Vec<_>>(),
    )
    .await?;
    let now = next.updated_at;
    let mut changes = Changes::new();
    changes.field("version", &plan.version, &next.version);
    let mut models = Vec::new();
    for (i, (key, headcount, cents, note)) in checked.into_iter().enumerate() {
        let (cents, note) = match cents {
            Some(c) => (c, note),
            None => {
                let mi = month_index(key.1);
                let (avg, whose) = match computed.get(&(key.0, mi)).and_then(Capacity::average_quota) {
                    Some(a) => (a, "the territory's"),
                    None => match org.get(&mi).and_then(Capacity::average_quota) {
                        Some(a) => (a, "the organisation's"),
                        None => {
                            return Err(AppError::bad_input(format!(
                                "lines[{i}].amount is required: no active rep has a monthly quota for {} to average",
                                month_label(key.1)
                            )))
                        }
                    },
                };
                let amount = math::planned_capacity(headcount, avg).ok_or_else(|| {
                    AppError::bad_input(format!("lines[{i}].headcount is out of range"))
                })?;
                let basis = format!(
                    "capacity = headcount {headcount} x {whose} average monthly quota {}",
                    round_money(avg)
                );
                let note = Some(match note {
                    Some(n) => format!("{n} ({basis})"),
                    None => basis,
                });
                (money(amount, format!("lines[{i}].amount"), false)?, note)
            }
        };
        changes.field(
            &key_label("supply", &key),
            &old.get(&key).map(|c| from_cents(*c)),
            &Some(from_cents(cents)),
        );
        let mut line = new_line(
            plan.id,
            SopLineKind::Supply,
            key,
            cents,
            &actor.subject,
            now,
        );
        line.headcount = Set(Some(headcount));
        line.note = Set(note);
        models.push(line);
    }
    insert_lines(&tx, models).await?;
    audit::record(
        &tx,
        &actor.subject,
        "setSopSupply",
        "SopPlan",
        plan.id,
        &changes,
    )
    .await?;
    tx.commit().await?;
    Ok(next)
}

/// Records changes that close gaps in RECONCILIATION: each adds an
/// ADJUSTMENT line (several per territory-month add up).
pub async fn add_adjustments(
    db: &DatabaseConnection,
    actor: &Principal,
    plan_id: i64,
    adjustments: Vec<Adjustment>,
    expected_version: Option<i32>,
) -> AppResult<sop_plan::Model> {
    actor.require(SOP_WRITERS)?;
    check_count(adjustments.len(), "adjustments")?;
    let tx = begin_write(db).await?;
    let (plan, next) = open_for_lines(
        &tx,
        plan_id,
        SopStage::Reconciliation,
        "adjustments",
        expected_version,
    )
    .await?;
    let horizon = horizon_of(&plan)?;
    let now = next.updated_at;
    let mut changes = Changes::new();
    changes.field("version", &plan.version, &next.version);
    let mut models = Vec::new();
    for (i, a) in adjustments.iter().enumerate() {
        let key = check_key(&horizon, "adjustments", i, a.territory_id, a.month, None)?;
        let cents = money(a.amount, format!("adjustments[{i}].amount"), true)?;
        let budget = a
            .budget
            .map(|b| money(b, format!("adjustments[{i}].budget"), false))
            .transpose()?;
        let note = required_text(&a.note, &format!("adjustments[{i}].note"), MAX_NOTE)?;
        changes.created(
            &format!("{} #{}", key_label("adjustment", &key), i + 1),
            &serde_json::json!({
                "amount": from_cents(cents),
                "budget": budget.map(from_cents),
                "note": note,
            }),
        );
        let mut line = new_line(
            plan.id,
            SopLineKind::Adjustment,
            key,
            cents,
            &actor.subject,
            now,
        );
        line.budget_cents = Set(budget);
        line.note = Set(Some(note));
        models.push(line);
    }
    let ids: Vec<_> = adjustments
        .iter()
        .enumerate()
        .map(|(i, a)| (i, a.territory_id))
        .collect();
    check_territories(&tx, &ids, "adjustments").await?;
    insert_lines(&tx, models).await?;
    audit::record(
        &tx,
        &actor.subject,
        "addSopAdjustments",
        "SopPlan",
        plan.id,
        &changes,
    )
    .await?;
    tx.commit().await?;
    Ok(next)
}
