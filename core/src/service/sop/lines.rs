//! The reconciliation writes: demand (DEMAND_PLANNING), supply
//! (SUPPLY_PLANNING) and adjustments (RECONCILIATION), with the checks of
//! their inputs (horizon, territories, amounts, list sizes).
use std::collections::{BTreeSet, HashMap};

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QuerySelect, Set,
};

use entity::enums::{SopLineKind, SopStage};
use entity::{sop_line, sop_plan, territory};

use super::gathering::capacity;
use super::lifecycle::{bump, bumped, changed_meanwhile, check_version};
use super::shared::{horizon_of, insert_lines, load, new_line, planned_from, stage_name};
use super::{Adjustment, DemandLine, Key, SupplyLine, MAX_LINES, MAX_NOTE};
use crate::auth::Principal;
use crate::clock;
use crate::db::begin_write;
use crate::domain::money::{from_cents, round_money, to_cents, to_signed_cents};
use crate::domain::period::Period;
use crate::domain::sop::{self as math, month_index, month_label, Capacity, Horizon};
use crate::error::{AppError, AppResult};
use crate::service::access::SOP_WRITERS;
use crate::service::audit::{self, Changes};
use crate::service::forecast;
use crate::service::grouping::Dimension;
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
    first: NaiveDate,
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
    if month < first {
        return Err(AppError::bad_input(format!(
            "{field}.month: {} was over when the plan was made and is not planned (its closed-won is \
             the demand); the plan plans from {}",
            month_label(month),
            month_label(first)
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

/// The BASELINE amount (cents) of these territory-months of a plan.
async fn baselines(
    tx: &DatabaseTransaction,
    plan_id: i64,
    keys: &[Key],
) -> AppResult<HashMap<Key, i64>> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let wanted: BTreeSet<Key> = keys.iter().copied().collect();
    let months: BTreeSet<NaiveDate> = keys.iter().map(|k| k.1).collect();
    Ok(sop_line::Entity::find()
        .filter(sop_line::Column::PlanId.eq(plan_id))
        .filter(sop_line::Column::Kind.eq(SopLineKind::Baseline))
        .filter(sop_line::Column::Month.is_in(months))
        .all(tx)
        .await?
        .into_iter()
        .map(|l| ((l.territory_id, l.month), l.amount_cents))
        .filter(|(k, _)| wanted.contains(k))
        .collect())
}

/// Writes DEMAND lines (replacing those of the same territory-months) with
/// their audit entry: the shared tail of setSopDemand and
/// seedSopDemandFromPipeline.
async fn write_demand(
    tx: &DatabaseTransaction,
    actor: &Principal,
    plan: &sop_plan::Model,
    next: &sop_plan::Model,
    rows: Vec<(Key, i64, Option<String>)>,
    action: &str,
) -> AppResult<()> {
    let keys: Vec<Key> = rows.iter().map(|r| r.0).collect();
    let old = replace_lines(tx, plan.id, SopLineKind::Demand, &keys).await?;
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
    insert_lines(tx, models).await?;
    audit::record(tx, &actor.subject, action, "SopPlan", plan.id, &changes).await?;
    Ok(())
}

/// Sets demand per territory-month in DEMAND_PLANNING, each as an amount or
/// as a percentage change of the territory-month's baseline (exactly one);
/// a territory-month that already has a DEMAND line gets the new one
/// instead. A percentage line's note records its basis.
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
    let first = planned_from(&plan);
    let mut seen = BTreeSet::new();
    let mut checked = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        let key = check_key(
            &horizon,
            first,
            "lines",
            i,
            l.territory_id,
            l.month,
            Some(&mut seen),
        )?;
        let note = optional_text(l.note.as_deref(), &format!("lines[{i}].note"), MAX_NOTE)?;
        match (l.amount, l.change_percent) {
            (Some(a), None) => checked.push((
                key,
                Ok(money(a, format!("lines[{i}].amount"), false)?),
                note,
            )),
            (None, Some(p)) => {
                if p < Decimal::from(-100) {
                    return Err(AppError::bad_input(format!(
                        "lines[{i}].changePercent: {p}% is below -100% (demand cannot go below zero)"
                    )));
                }
                checked.push((key, Err(p), note))
            }
            _ => {
                return Err(AppError::bad_input(format!(
                    "lines[{i}]: give exactly one of amount and changePercent"
                )))
            }
        }
    }
    let ids: Vec<_> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| (i, l.territory_id))
        .collect();
    check_territories(&tx, &ids, "lines").await?;
    let pct_keys: Vec<Key> = checked
        .iter()
        .filter(|c| c.1.is_err())
        .map(|c| c.0)
        .collect();
    let base = baselines(&tx, plan.id, &pct_keys).await?;
    let mut rows = Vec::with_capacity(checked.len());
    for (i, (key, amount, note)) in checked.into_iter().enumerate() {
        let cents = match amount {
            Ok(c) => c,
            Err(p) => {
                let Some(b) = base.get(&key) else {
                    return Err(AppError::bad_input(format!(
                        "lines[{i}].changePercent: {} has no baseline to change; give an amount",
                        key_label("demand", &key)
                    )));
                };
                let baseline = from_cents(*b);
                let amount = math::demand_from_percent(baseline, p).ok_or_else(|| {
                    AppError::bad_input(format!("lines[{i}].changePercent is out of range"))
                })?;
                let sign = if p >= Decimal::ZERO { "+" } else { "" };
                let basis = format!("{sign}{}% of the baseline {baseline}", p.normalize());
                let cents = money(amount, format!("lines[{i}].changePercent"), false)?;
                rows.push((
                    key,
                    cents,
                    Some(match note {
                        Some(n) => format!("{n} ({basis})"),
                        None => basis,
                    }),
                ));
                continue;
            }
        };
        rows.push((key, cents, note));
    }
    write_demand(&tx, actor, &plan, &next, rows, "setSopDemand").await?;
    tx.commit().await?;
    Ok(next)
}

/// Sets demand from the open pipeline in DEMAND_PLANNING: for every planned
/// month, the STAGE_WEIGHTED forecast per territory (service::forecast,
/// the same answer `forecast(method: STAGE_WEIGHTED, groupBy: TERRITORY)`
/// gives for that month: closed-won so far plus open deals expected to
/// close in the month weighted by their stage's probability) becomes the
/// territory-month's DEMAND line, replacing an earlier one. Territory-months
/// the forecast has no row for keep their demand. Returns the plan and the
/// number of lines written.
pub async fn seed_demand_from_pipeline(
    db: &DatabaseConnection,
    actor: &Principal,
    plan_id: i64,
    note: &str,
    expected_version: Option<i32>,
) -> AppResult<(sop_plan::Model, usize)> {
    actor.require(SOP_WRITERS)?;
    let note = required_text(note, "note", MAX_NOTE)?;
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
    let first = planned_from(&plan);
    let mut rows = Vec::new();
    for m in horizon.month_starts().into_iter().filter(|m| *m >= first) {
        let period = Period::month(m.year(), m.month())
            .ok_or_else(|| AppError::internal(format!("no period for {m}")))?;
        let answer = forecast::forecast(
            &tx,
            actor,
            forecast::Query {
                period,
                method: forecast::Method::StageWeighted,
                group_by: Dimension::Territory,
                as_of: None,
                historical: None,
                category: None,
                filter: Default::default(),
                bounds: false,
            },
        )
        .await?;
        for r in answer.rows {
            let territory = match r.key.id.as_deref() {
                None => None,
                Some(id) => Some(id.parse::<i64>().map_err(|_| {
                    AppError::internal(format!("forecast territory key {id} is not an id"))
                })?),
            };
            let amount = round_money(r.amount);
            let cents = money(amount, "forecast amount".to_owned(), false)?;
            rows.push((
                (territory, m),
                cents,
                Some(format!(
                    "{note} (STAGE_WEIGHTED forecast {amount}: closed-won {} + weighted pipeline {})",
                    round_money(r.closed_won),
                    round_money(r.projected)
                )),
            ));
        }
    }
    let n = rows.len();
    write_demand(&tx, actor, &plan, &next, rows, "seedSopDemandFromPipeline").await?;
    tx.commit().await?;
    Ok((next, n))
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
    let first = planned_from(&plan);
    let mut seen = BTreeSet::new();
    let mut checked = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        let key = check_key(
            &horizon,
            first,
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
    let first = planned_from(&plan);
    let now = next.updated_at;
    let mut changes = Changes::new();
    changes.field("version", &plan.version, &next.version);
    let mut models = Vec::new();
    for (i, a) in adjustments.iter().enumerate() {
        let key = check_key(
            &horizon,
            first,
            "adjustments",
            i,
            a.territory_id,
            a.month,
            None,
        )?;
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
