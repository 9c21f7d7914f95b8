//! S&OP plans (docs/design.md, S&OP plans): the monthly planning cycle
//! DATA_GATHERING -> DEMAND_PLANNING -> SUPPLY_PLANNING -> RECONCILIATION ->
//! RELEASED, with its lines, transitions, gaps and plan-against-actual.
//!
//! Conventions a planning team can rely on:
//! - Every number is per territory and month. A line with no territory
//!   (`territory_id` NULL) is the "unassigned" bucket: closed-won deals that
//!   carry no territory, and active reps without one. It is planned like any
//!   territory (demand, supply and adjustment inputs take `territoryId: null`).
//!   Territories are not rolled up their tree: a deal counts for the
//!   territory it names.
//! - ACTUAL lines: closed-won (status WON, closed_at in the month, UTC) per
//!   territory and month over the `lookback_months` before the horizon; only
//!   territory-months that won something get a line.
//! - BASELINE lines: the HISTORICAL forecast (`domain::forecast`) of every
//!   horizon month for every territory that won something in the
//!   `baseline_lookback_months` before the horizon or already in the horizon.
//!   The run rate is taken once, from the months before horizonStart (months
//!   inside the horizon have not happened yet when the plan is made), so
//!   each month is R x (1 + growth), never below what the territory has
//!   already won in that month.
//! - Capacity (SUPPLY_PLANNING, without a SUPPLY line for the
//!   territory-month): the sum over active reps of the territory on board in
//!   the month (hired before it ends) of monthly quota x ramp. The monthly
//!   quota is the rep's quota row spanning exactly that month or, failing
//!   that, the rep's latest one-month quota row starting before it (future
//!   months rarely have quota rows yet); a rep with neither counts in the
//!   headcount with no capacity. Ramp = min(k / ramp_months, 1), k from
//!   `domain::sop::months_since_hire`; ramp_months 0 is fully ramped.
//! - Advancing out of DEMAND_PLANNING writes a DEMAND line (generated) with
//!   the baseline for every territory-month without one; advancing out of
//!   SUPPLY_PLANNING writes the computed capacity as SUPPLY lines
//!   (generated) for every territory-month with reps on board and no SUPPLY
//!   line. From RECONCILIATION on, the plan's numbers are its lines only, so
//!   a released plan never moves when reps or quotas change later.
//! - Every mutation is one transaction that bumps the plan's version once,
//!   with one audit entry. Stage checks and the version bump are one
//!   conditional UPDATE, so concurrent writers cannot both pass a check.
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Months, NaiveDate, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use sea_orm::{
    ActiveEnum, ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Set,
};

use entity::enums::{DealStatus, SopLineKind, SopStage};
use entity::{sop_line, sop_plan, sop_transition, territory};

use super::access::{DealScope, SOP_READERS, SOP_WRITERS};
use super::audit::{self, Changes};
use super::deal_filter::DealFilter;
use super::{optional_text, required_text};
use crate::auth::Principal;
use crate::clock;
use crate::db::{begin_write, Dialect, Sql, SumCents};
use crate::domain::forecast::{historical_amount, HistoricalParams, HistoricalRow};
use crate::domain::money::{from_cents, round_money, to_cents, to_signed_cents, PPM};
use crate::domain::period::Period;
use crate::domain::sop::{
    self as math, headcount_f64, month_index, month_label, month_start, Capacity, Horizon,
    RampGroup,
};
use crate::error::{AppError, AppResult};

pub const DEFAULT_LOOKBACK_MONTHS: i32 = 12;
pub const MAX_LOOKBACK_MONTHS: i32 = 36;
pub const DEFAULT_BASELINE_LOOKBACK_MONTHS: i32 = 3;
pub const MAX_BASELINE_LOOKBACK_MONTHS: i32 = 24;
const MAX_NOTE: usize = 2_000;
const MAX_LINES: usize = 1_000;
const INSERT_CHUNK: usize = 500;

/// A plan to create.
#[derive(Debug, Clone)]
pub struct NewPlan {
    pub name: String,
    pub horizon_start: NaiveDate,
    pub horizon_months: i32,
    pub lookback_months: Option<i32>,
    pub baseline_lookback_months: Option<i32>,
    pub growth_rate: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct DemandLine {
    pub territory_id: Option<i64>,
    pub month: NaiveDate,
    pub amount: Decimal,
    pub note: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SupplyLine {
    pub territory_id: Option<i64>,
    pub month: NaiveDate,
    pub headcount: f64,
    pub amount: Option<Decimal>,
    pub note: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Adjustment {
    pub territory_id: Option<i64>,
    pub month: NaiveDate,
    pub amount: Decimal,
    pub budget: Option<Decimal>,
    pub note: String,
}

/// One territory-month of reconciliation.
#[derive(Debug, Clone, PartialEq)]
pub struct Gap {
    pub territory_id: Option<i64>,
    pub month: NaiveDate,
    pub demand: Decimal,
    pub supply: Decimal,
    /// Ramped headcount behind the supply, when known.
    pub headcount: Option<f64>,
    /// True while supply is the live computed capacity (no SUPPLY line yet).
    pub supply_computed: bool,
    pub adjustments: Decimal,
    pub gap: Decimal,
}

/// One territory-month of a released plan against what was won.
#[derive(Debug, Clone, PartialEq)]
pub struct Variance {
    pub territory_id: Option<i64>,
    pub month: NaiveDate,
    pub planned: Decimal,
    pub actual: Decimal,
    pub variance: Decimal,
    pub variance_pct: Option<f64>,
}

type Key = (Option<i64>, NaiveDate);

// ---------------------------------------------------------------- stages

pub fn stage_name(s: SopStage) -> String {
    s.to_value()
}

fn next_stage(s: SopStage) -> Option<SopStage> {
    match s {
        SopStage::DataGathering => Some(SopStage::DemandPlanning),
        SopStage::DemandPlanning => Some(SopStage::SupplyPlanning),
        SopStage::SupplyPlanning => Some(SopStage::Reconciliation),
        SopStage::Reconciliation => Some(SopStage::Released),
        SopStage::Released => None,
    }
}

fn horizon_of(plan: &sop_plan::Model) -> AppResult<Horizon> {
    Horizon::new(plan.horizon_start, i64::from(plan.horizon_months))
        .map_err(|e| AppError::internal(format!("stored plan {} has a bad horizon: {e}", plan.id)))
}

fn growth_of(plan: &sop_plan::Model) -> Decimal {
    Decimal::new(plan.growth_rate_ppm, 6).normalize()
}

fn territory_label(t: Option<i64>) -> String {
    match t {
        Some(id) => format!("territory {id}"),
        None => "no territory".to_owned(),
    }
}

fn key_label(kind: &str, (t, m): &Key) -> String {
    format!("{kind} {} {}", territory_label(*t), month_label(*m))
}

// ---------------------------------------------------------------- reads

/// A plan by id, for the roles that read plans.
pub async fn get(
    db: &impl ConnectionTrait,
    actor: &Principal,
    id: i64,
) -> AppResult<sop_plan::Model> {
    actor.require(SOP_READERS)?;
    load(db, id).await
}

async fn load(db: &impl ConnectionTrait, id: i64) -> AppResult<sop_plan::Model> {
    sop_plan::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found(format!("S&OP plan {id}")))
}

/// Plans, optionally in one stage: latest horizon first, then latest revision.
pub async fn list(
    db: &impl ConnectionTrait,
    actor: &Principal,
    stage: Option<SopStage>,
    limit: u64,
) -> AppResult<Vec<sop_plan::Model>> {
    actor.require(SOP_READERS)?;
    let mut q = sop_plan::Entity::find();
    if let Some(s) = stage {
        q = q.filter(sop_plan::Column::Stage.eq(s));
    }
    Ok(q.order_by_desc(sop_plan::Column::HorizonStart)
        .order_by_desc(sop_plan::Column::Revision)
        .order_by_desc(sop_plan::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

fn kind_rank(k: SopLineKind) -> u8 {
    match k {
        SopLineKind::Actual => 0,
        SopLineKind::Baseline => 1,
        SopLineKind::Demand => 2,
        SopLineKind::Supply => 3,
        SopLineKind::Adjustment => 4,
    }
}

/// Territory names, for ordering by territory.
async fn territory_names(
    db: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = i64>,
) -> AppResult<HashMap<i64, String>> {
    let ids: BTreeSet<i64> = ids.into_iter().collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = territory::Entity::find()
        .filter(territory::Column::Id.is_in(ids))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|t| (t.id, t.name)).collect())
}

/// Territory order: by name (case-insensitive, then exact), then id; lines
/// without a territory last. The same on both databases whatever their
/// collation.
fn cmp_territory(names: &HashMap<i64, String>, a: Option<i64>, b: Option<i64>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => {
            let (nx, ny) = (
                names.get(&x).map(String::as_str).unwrap_or(""),
                names.get(&y).map(String::as_str).unwrap_or(""),
            );
            nx.to_lowercase()
                .cmp(&ny.to_lowercase())
                .then_with(|| nx.cmp(ny))
                .then_with(|| x.cmp(&y))
        }
    }
}

/// The lines of many plans, each plan's ordered by kind (in cycle order),
/// territory, month, then entry order.
pub async fn lines_for(
    db: &impl ConnectionTrait,
    plan_ids: &[i64],
) -> AppResult<HashMap<i64, Vec<sop_line::Model>>> {
    let rows = sop_line::Entity::find()
        .filter(sop_line::Column::PlanId.is_in(plan_ids.iter().copied()))
        .all(db)
        .await?;
    let names = territory_names(db, rows.iter().filter_map(|l| l.territory_id)).await?;
    let mut out: HashMap<i64, Vec<sop_line::Model>> = HashMap::new();
    for row in rows {
        out.entry(row.plan_id).or_default().push(row);
    }
    for lines in out.values_mut() {
        lines.sort_by(|a, b| {
            kind_rank(a.kind)
                .cmp(&kind_rank(b.kind))
                .then_with(|| cmp_territory(&names, a.territory_id, b.territory_id))
                .then_with(|| a.month.cmp(&b.month))
                .then_with(|| a.id.cmp(&b.id))
        });
    }
    Ok(out)
}

#[derive(Debug, FromQueryResult)]
struct LineTotalRow {
    plan_id: i64,
    territory_id: Option<i64>,
    month: NaiveDate,
    kind: String,
    amount_cents: SumCents,
    headcount: Option<f64>,
}

/// Line amounts summed per plan, territory, month and kind (in SQL).
async fn line_totals(
    db: &impl ConnectionTrait,
    plan_ids: &[i64],
    kinds: &[SopLineKind],
) -> AppResult<Vec<(i64, Key, SopLineKind, i128, Option<f64>)>> {
    let d = Dialect::of(db);
    let mut sql = Sql::new(format!(
        "SELECT plan_id, territory_id, month, kind, {} AS amount_cents, SUM(headcount) AS headcount \
         FROM sop_line WHERE plan_id IN ",
        d.sum_cents("amount_cents")
    ));
    sql.bind_list(plan_ids.iter().copied())
        .push(" AND kind IN ")
        .bind_list(kinds.iter().map(|k| k.to_value()))
        .push(" GROUP BY plan_id, territory_id, month, kind");
    let rows = LineTotalRow::find_by_statement(sql.statement(db.get_database_backend()))
        .all(db)
        .await?;
    rows.into_iter()
        .map(|r| {
            let kind = SopLineKind::try_from_value(&r.kind)
                .map_err(|_| AppError::internal(format!("unknown sop_line kind {}", r.kind)))?;
            Ok((
                r.plan_id,
                (r.territory_id, r.month),
                kind,
                r.amount_cents.0,
                r.headcount,
            ))
        })
        .collect()
}

#[derive(Debug, FromQueryResult)]
struct CapacityRow {
    territory_id: Option<i64>,
    month_idx: i64,
    ramp_num: i64,
    ramp_den: i64,
    reps: i64,
    quota_reps: i64,
    quota_cents: SumCents,
}

/// Computed selling capacity per territory and month (by month index), for
/// the given months. The reps are grouped in SQL by territory, month and ramp
/// fraction; `Capacity::of` weighs each group's quota sum exactly.
async fn capacity(
    db: &impl ConnectionTrait,
    months: &BTreeSet<i64>,
) -> AppResult<HashMap<(Option<i64>, i64), Capacity>> {
    if months.is_empty() {
        return Ok(HashMap::new());
    }
    let d = Dialect::of(db);
    let hired = d.month_index_date("r.hired_at");
    let hired_day = d.day_of_month("r.hired_at");
    // k = whole months from hire to the month's first day (domain::sop::months_since_hire).
    let k = format!("(m.month_idx - {hired} - CASE WHEN {hired_day} > 1 THEN 1 ELSE 0 END)");
    let (qs, qe) = (
        d.month_index_date("q.start_date"),
        d.month_index_date("q.end_date"),
    );
    let (qsd, qed) = (d.day_of_month("q.start_date"), d.day_of_month("q.end_date"));
    let mut sql = Sql::new(format!(
        "SELECT territory_id, month_idx, ramp_num, ramp_den, COUNT(*) AS reps, \
         COUNT(quota_cents) AS quota_reps, {sum} AS quota_cents FROM (\
         SELECT r.territory_id AS territory_id, m.month_idx AS month_idx, \
         CAST(CASE WHEN r.ramp_months <= 0 THEN 1 WHEN {k} >= r.ramp_months THEN r.ramp_months \
         WHEN {k} <= 0 THEN 0 ELSE {k} END AS BIGINT) AS ramp_num, \
         CAST(CASE WHEN r.ramp_months <= 0 THEN 1 ELSE r.ramp_months END AS BIGINT) AS ramp_den, \
         (SELECT q.amount_cents FROM quota q WHERE q.rep_id = r.id \
         AND {qsd} = 1 AND {qed} = 1 AND {qe} = {qs} + 1 AND {qs} <= m.month_idx \
         ORDER BY q.start_date DESC LIMIT 1) AS quota_cents \
         FROM rep r CROSS JOIN (",
        sum = d.sum_cents("quota_cents"),
    ));
    for (i, m) in months.iter().enumerate() {
        if i > 0 {
            sql.push(" UNION ALL ");
        }
        sql.push("SELECT ").bind(*m).push(" AS month_idx");
    }
    sql.push(") m WHERE r.active = ").bind(true).push(&format!(
        " AND {hired} <= m.month_idx) staff GROUP BY territory_id, month_idx, ramp_num, ramp_den"
    ));
    let rows = CapacityRow::find_by_statement(sql.statement(db.get_database_backend()))
        .all(db)
        .await?;
    let mut groups: HashMap<(Option<i64>, i64), Vec<RampGroup>> = HashMap::new();
    for r in rows {
        groups
            .entry((r.territory_id, r.month_idx))
            .or_default()
            .push(RampGroup {
                reps: r.reps,
                quota_reps: r.quota_reps,
                quota_cents: r.quota_cents.0,
                ramp_num: r.ramp_num,
                ramp_den: r.ramp_den,
            });
    }
    Ok(groups
        .into_iter()
        .map(|(k, g)| (k, Capacity::of(&g)))
        .collect())
}

#[derive(Debug, FromQueryResult)]
struct WonRow {
    territory_id: Option<i64>,
    bucket: i64,
    amount_cents: SumCents,
}

/// Closed-won in [start, end) per territory and month index (in SQL), over
/// every deal (plans are organisation-wide).
async fn won_by_month(
    db: &impl ConnectionTrait,
    start: NaiveDate,
    end: NaiveDate,
) -> AppResult<HashMap<(Option<i64>, i64), i128>> {
    let Some(range) = Period::range(start, end) else {
        return Ok(HashMap::new());
    };
    let d = Dialect::of(db);
    let month = d.month_index_utc("deal.closed_at");
    let mut sql = Sql::new(format!(
        "SELECT deal.territory_id AS territory_id, {month} AS bucket, {} AS amount_cents \
         FROM deal WHERE 1 = 1",
        d.sum_cents("deal.amount_cents")
    ));
    won_filter(range).push_sql(&mut sql, DealScope::All);
    sql.push(&format!(" GROUP BY deal.territory_id, {month}"));
    let rows = WonRow::find_by_statement(sql.statement(db.get_database_backend()))
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| ((r.territory_id, r.bucket), r.amount_cents.0))
        .collect())
}

fn won_filter(range: Period) -> DealFilter {
    DealFilter {
        status: Some(vec![DealStatus::Won]),
        closed_in: Some(range),
        ..Default::default()
    }
}

/// Gaps of many plans. Demand is the DEMAND line, else the BASELINE line;
/// supply is the SUPPLY line, else (until the plan leaves SUPPLY_PLANNING)
/// the live computed capacity; adjustments are summed. Ordered by territory
/// then month.
pub async fn gaps_for(
    db: &impl ConnectionTrait,
    plans: &[sop_plan::Model],
) -> AppResult<HashMap<i64, Vec<Gap>>> {
    if plans.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<i64> = plans.iter().map(|p| p.id).collect();
    let totals = line_totals(
        db,
        &ids,
        &[
            SopLineKind::Baseline,
            SopLineKind::Demand,
            SopLineKind::Supply,
            SopLineKind::Adjustment,
        ],
    )
    .await?;
    let live: Vec<&sop_plan::Model> = plans
        .iter()
        .filter(|p| p.stage <= SopStage::SupplyPlanning)
        .collect();
    let mut months = BTreeSet::new();
    for p in &live {
        months.extend(horizon_of(p)?.month_indexes());
    }
    let computed = capacity(db, &months).await?;

    #[derive(Default)]
    struct Parts {
        baseline: Option<i128>,
        demand: Option<i128>,
        supply: Option<(i128, Option<f64>)>,
        adjustments: i128,
    }
    let mut per_plan: HashMap<i64, BTreeMap<Key, Parts>> = HashMap::new();
    for (plan_id, key, kind, cents, headcount) in totals {
        let parts = per_plan.entry(plan_id).or_default().entry(key).or_default();
        match kind {
            SopLineKind::Baseline => parts.baseline = Some(cents),
            SopLineKind::Demand => parts.demand = Some(cents),
            SopLineKind::Supply => parts.supply = Some((cents, headcount)),
            SopLineKind::Adjustment => parts.adjustments += cents,
            SopLineKind::Actual => {}
        }
    }
    let mut territories = BTreeSet::new();
    let mut out = HashMap::new();
    for plan in plans {
        let horizon = horizon_of(plan)?;
        let mut parts = per_plan.remove(&plan.id).unwrap_or_default();
        let is_live = plan.stage <= SopStage::SupplyPlanning;
        let mut computed_here: HashMap<Key, &Capacity> = HashMap::new();
        if is_live {
            for ((t, mi), cap) in &computed {
                let Some(m) = month_start(*mi) else { continue };
                if horizon.contains_month(m) {
                    computed_here.insert((*t, m), cap);
                    parts.entry((*t, m)).or_default();
                }
            }
        }
        let mut gaps = Vec::with_capacity(parts.len());
        for (key, p) in parts {
            let demand = from_cents(p.demand.or(p.baseline).unwrap_or(0));
            let (supply, headcount, supply_computed) = match (p.supply, computed_here.get(&key)) {
                (Some((cents, hc)), _) => (from_cents(cents), hc, false),
                (None, Some(cap)) => (cap.amount, Some(headcount_f64(cap.headcount)), true),
                (None, None) => (Decimal::ZERO, None, false),
            };
            let supply = round_money(supply);
            let adjustments = from_cents(p.adjustments);
            territories.extend(key.0);
            gaps.push(Gap {
                territory_id: key.0,
                month: key.1,
                demand,
                supply,
                headcount,
                supply_computed,
                adjustments,
                gap: math::gap(demand, supply, adjustments),
            });
        }
        out.insert(plan.id, gaps);
    }
    let names = territory_names(db, territories).await?;
    for gaps in out.values_mut() {
        gaps.sort_by(|a, b| {
            cmp_territory(&names, a.territory_id, b.territory_id).then(a.month.cmp(&b.month))
        });
    }
    Ok(out)
}

/// Plan against actual of many plans: for a released plan, its DEMAND per
/// territory-month against the closed-won of that territory-month now
/// (every deal), with territory-months that won without a plan included.
/// Plans not yet released have none. Ordered by territory then month.
pub async fn variances_for(
    db: &impl ConnectionTrait,
    plans: &[sop_plan::Model],
) -> AppResult<HashMap<i64, Vec<Variance>>> {
    let released: Vec<&sop_plan::Model> = plans
        .iter()
        .filter(|p| p.stage == SopStage::Released)
        .collect();
    let mut out: HashMap<i64, Vec<Variance>> = plans.iter().map(|p| (p.id, vec![])).collect();
    if released.is_empty() {
        return Ok(out);
    }
    let ids: Vec<i64> = released.iter().map(|p| p.id).collect();
    let totals = line_totals(db, &ids, &[SopLineKind::Demand]).await?;
    let horizons: Vec<Horizon> = released
        .iter()
        .map(|p| horizon_of(p))
        .collect::<AppResult<_>>()?;
    let start = horizons
        .iter()
        .map(Horizon::start)
        .min()
        .unwrap_or_default();
    let end = horizons.iter().map(Horizon::end).max().unwrap_or_default();
    let actual = won_by_month(db, start, end).await?;

    let mut planned: HashMap<i64, BTreeMap<Key, i128>> = HashMap::new();
    for (plan_id, key, _, cents, _) in totals {
        *planned.entry(plan_id).or_default().entry(key).or_default() += cents;
    }
    let mut territories = BTreeSet::new();
    for (plan, horizon) in released.iter().zip(&horizons) {
        let mut rows: BTreeMap<Key, (i128, i128)> = planned
            .remove(&plan.id)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, c)| (k, (c, 0)))
            .collect();
        for ((t, mi), cents) in &actual {
            let Some(m) = month_start(*mi) else { continue };
            if horizon.contains_month(m) {
                rows.entry((*t, m)).or_default().1 += cents;
            }
        }
        let list = rows
            .into_iter()
            .map(|((t, m), (p, a))| {
                territories.extend(t);
                let (planned, actual) = (from_cents(p), from_cents(a));
                let (variance, variance_pct) = math::variance(planned, actual);
                Variance {
                    territory_id: t,
                    month: m,
                    planned,
                    actual,
                    variance,
                    variance_pct,
                }
            })
            .collect();
        out.insert(plan.id, list);
    }
    let names = territory_names(db, territories).await?;
    for rows in out.values_mut() {
        rows.sort_by(|a, b| {
            cmp_territory(&names, a.territory_id, b.territory_id).then(a.month.cmp(&b.month))
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------- writes

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
    super::outbox::enqueue(
        tx,
        super::outbox::EventKind::SopPlanStageChanged,
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

fn check_version(plan: &sop_plan::Model, expected: Option<i32>) -> AppResult<()> {
    match expected {
        Some(v) if v != plan.version => Err(AppError::conflict(format!(
            "S&OP plan {} is at version {}, not {v}: reload it and retry",
            plan.id, plan.version
        ))),
        _ => Ok(()),
    }
}

fn changed_meanwhile(id: i64) -> AppError {
    AppError::conflict(format!(
        "S&OP plan {id} changed while this write was applied: reload it and retry"
    ))
}

/// The one atomic check-and-update of a plan row: moves it to `to` (or
/// keeps its stage) and bumps its version, only if it is still at the
/// version and stage that were read. Returns false when another writer got
/// there first. On PostgreSQL the row stays locked until commit.
async fn bump(
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

fn bumped(plan: &sop_plan::Model, to: SopStage, now: DateTime<Utc>) -> sop_plan::Model {
    let mut next = plan.clone();
    next.stage = to;
    next.version += 1;
    next.updated_at = now;
    if to == SopStage::Released {
        next.released_at = Some(now);
    }
    next
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

/// A gathered amount (a sum of deals, not an input) as the cents of one
/// S&OP line: exact up to the 64-bit column (92,233,720,368,547,758.07),
/// a clear error beyond it, never a wrapped or failed write.
fn line_cents(amount: Decimal, what: &str) -> AppResult<i64> {
    amount
        .checked_mul(Decimal::ONE_HUNDRED)
        .and_then(|c| c.round().to_i64())
        .ok_or_else(|| {
            AppError::bad_input(format!(
                "a gathered {what} of {amount} exceeds what an S&OP line can hold"
            ))
        })
}

fn new_line(
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
        ..Default::default()
    }
}

async fn insert_lines(
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
    let tx = begin_write(db).await?;
    let now = clock::now();
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
        ..Default::default()
    }
    .insert(&tx)
    .await?;
    let (actuals, baselines) = gather(&tx, &plan, &horizon, actor, now).await?;
    record_transition(
        &tx,
        &plan,
        None,
        actor,
        Some(format!(
            "Plan created for {}: gathered {actuals} actual and {baselines} baseline lines",
            horizon.label()
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
        .created("actualLines", &actuals)
        .created("baselineLines", &baselines);
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

#[derive(Debug, FromQueryResult)]
struct BaselineRow {
    territory_id: Option<i64>,
    bucket: i64,
    amount_cents: SumCents,
}

/// Writes the ACTUAL and BASELINE lines of a new plan.
async fn gather(
    tx: &DatabaseTransaction,
    plan: &sop_plan::Model,
    horizon: &Horizon,
    actor: &Principal,
    now: DateTime<Utc>,
) -> AppResult<(usize, usize)> {
    let start = horizon.start();
    let actual_start = start
        .checked_sub_months(Months::new(plan.lookback_months as u32))
        .ok_or_else(|| AppError::bad_input("lookbackMonths reaches before the calendar"))?;
    let mut lines = Vec::new();
    let mut actual = won_by_month(tx, actual_start, start)
        .await?
        .into_iter()
        .collect::<Vec<_>>();
    actual.sort();
    for ((t, mi), cents) in actual {
        let Some(m) = month_start(mi) else { continue };
        let mut line = new_line(
            plan.id,
            SopLineKind::Actual,
            (t, m),
            line_cents(from_cents(cents), "closed-won")?,
            &actor.subject,
            now,
        );
        line.generated = Set(true);
        line.note = Set(Some(format!("Closed-won in {}", month_label(m))));
        lines.push(line);
    }
    let actuals = lines.len();

    // BASELINE: closed-won of the run-rate lookback (bucket -1) and of each
    // horizon month, per territory, in one GROUP BY.
    let baseline_start = start
        .checked_sub_months(Months::new(plan.baseline_lookback_months as u32))
        .ok_or_else(|| AppError::bad_input("baselineLookbackMonths reaches before the calendar"))?;
    let range = Period::range(baseline_start, horizon.end())
        .ok_or_else(|| AppError::internal("empty baseline range"))?;
    let d = Dialect::of(tx);
    let mut sql = Sql::new(format!(
        "SELECT territory_id, bucket, {} AS amount_cents FROM (SELECT deal.territory_id AS territory_id, \
         CASE WHEN deal.closed_at < ",
        d.sum_cents("amount_cents")
    ));
    sql.bind(clock::start_of(start)).push(&format!(
        " THEN -1 ELSE {} END AS bucket, deal.amount_cents AS amount_cents FROM deal WHERE 1 = 1",
        d.month_index_utc("deal.closed_at")
    ));
    won_filter(range).push_sql(&mut sql, DealScope::All);
    sql.push(") won GROUP BY territory_id, bucket");
    let rows = BaselineRow::find_by_statement(sql.statement(tx.get_database_backend()))
        .all(tx)
        .await?;
    let mut by_territory: BTreeMap<Option<i64>, (i128, HashMap<i64, i128>)> = BTreeMap::new();
    for r in rows {
        let entry = by_territory.entry(r.territory_id).or_default();
        if r.bucket < 0 {
            entry.0 += r.amount_cents.0;
        } else {
            *entry.1.entry(r.bucket).or_default() += r.amount_cents.0;
        }
    }
    let params = HistoricalParams {
        lookback_months: plan.baseline_lookback_months as u32,
        growth_rate: growth_of(plan),
        ..HistoricalParams::default()
    };
    let lookback_label = Horizon::new(baseline_start, i64::from(plan.baseline_lookback_months))
        .map(|h| h.label())
        .unwrap_or_default();
    for (t, (lookback_cents, won)) in by_territory {
        let lookback_won = from_cents(lookback_cents);
        let rate = round_money(crate::domain::forecast::run_rate(
            lookback_won,
            params.lookback_months,
        ));
        for m in horizon.month_starts() {
            let won_in_month = from_cents(won.get(&month_index(m)).copied().unwrap_or(0));
            let amount = round_money(historical_amount(
                &params,
                &HistoricalRow {
                    lookback_won,
                    won_in_period: won_in_month,
                    months: 1,
                    ramp_share: Decimal::ZERO,
                },
            ));
            let mut note = format!(
                "HISTORICAL: run rate {rate} a month (closed-won {lookback_label} / {})",
                params.lookback_months
            );
            if !params.growth_rate.is_zero() {
                note.push_str(&format!(", growth {}", params.growth_rate));
            }
            if won_in_month > Decimal::ZERO && amount == round_money(won_in_month) {
                note.push_str(&format!(
                    "; raised to the {} already won in {}",
                    round_money(won_in_month),
                    month_label(m)
                ));
            }
            let mut line = new_line(
                plan.id,
                SopLineKind::Baseline,
                (t, m),
                line_cents(amount, "baseline")?,
                &actor.subject,
                now,
            );
            line.generated = Set(true);
            line.note = Set(Some(note));
            lines.push(line);
        }
    }
    let baselines = lines.len() - actuals;
    insert_lines(tx, lines).await?;
    Ok((actuals, baselines))
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

/// Writes a DEMAND line with the baseline for every territory-month that
/// has a BASELINE line and no DEMAND line. One INSERT ... SELECT.
async fn confirm_baseline(
    tx: &DatabaseTransaction,
    plan: &sop_plan::Model,
    actor: &Principal,
    now: DateTime<Utc>,
) -> AppResult<u64> {
    let mut sql = Sql::new(
        "INSERT INTO sop_line (plan_id, kind, territory_id, month, amount_cents, headcount, \
         budget_cents, note, author, generated, created_at) \
         SELECT b.plan_id, ",
    );
    sql.bind(SopLineKind::Demand.to_value())
        .push(
            ", b.territory_id, b.month, b.amount_cents, CAST(NULL AS DOUBLE PRECISION), \
             CAST(NULL AS BIGINT), ",
        )
        .bind("Baseline confirmed as demand (no revision entered)")
        .push(", ")
        .bind(actor.subject.clone())
        .push(", ")
        .bind(true)
        .push(", ")
        .bind(now)
        .push(" FROM sop_line b WHERE b.plan_id = ")
        .bind(plan.id)
        .push(" AND b.kind = ")
        .bind(SopLineKind::Baseline.to_value())
        .push(" AND NOT EXISTS (SELECT 1 FROM sop_line d WHERE d.plan_id = b.plan_id AND d.kind = ")
        .bind(SopLineKind::Demand.to_value())
        .push(
            " AND d.month = b.month AND (d.territory_id = b.territory_id \
             OR (d.territory_id IS NULL AND b.territory_id IS NULL)))",
        );
    let res = tx
        .execute_raw(sql.statement(tx.get_database_backend()))
        .await?;
    Ok(res.rows_affected())
}

/// Writes the computed capacity as SUPPLY lines for every territory-month
/// of the horizon with reps on board and no SUPPLY line.
async fn record_capacity(
    tx: &DatabaseTransaction,
    plan: &sop_plan::Model,
    actor: &Principal,
    now: DateTime<Utc>,
) -> AppResult<u64> {
    let horizon = horizon_of(plan)?;
    let computed = capacity(tx, &horizon.month_indexes().collect()).await?;
    let existing: BTreeSet<Key> = sop_line::Entity::find()
        .filter(sop_line::Column::PlanId.eq(plan.id))
        .filter(sop_line::Column::Kind.eq(SopLineKind::Supply))
        .all(tx)
        .await?
        .into_iter()
        .map(|l| (l.territory_id, l.month))
        .collect();
    let mut rows: Vec<_> = computed.into_iter().collect();
    rows.sort_by_key(|((t, m), _)| (*t, *m));
    let mut lines = Vec::new();
    for ((t, mi), cap) in rows {
        let Some(m) = month_start(mi) else { continue };
        if existing.contains(&(t, m)) {
            continue;
        }
        let hc = headcount_f64(cap.headcount);
        let mut line = new_line(
            plan.id,
            SopLineKind::Supply,
            (t, m),
            to_cents(cap.amount, "capacity")?,
            &actor.subject,
            now,
        );
        line.headcount = Set(Some(hc));
        line.generated = Set(true);
        line.note = Set(Some(format!(
            "Computed capacity: {} active reps ({hc} ramped) x monthly quota",
            cap.reps
        )));
        lines.push(line);
    }
    let n = lines.len() as u64;
    insert_lines(tx, lines).await?;
    Ok(n)
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

/// Starts revision n+1 of a released plan in DATA_GATHERING with a copy of
/// its lines (authors and times kept), linked by previous_revision_id. Only
/// one revision follows a plan: revise the latest.
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
    let now = clock::now();
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
        ..Default::default()
    }
    .insert(&tx)
    .await?;
    let mut sql = Sql::new(
        "INSERT INTO sop_line (plan_id, kind, territory_id, month, amount_cents, headcount, \
         budget_cents, note, author, generated, created_at) SELECT ",
    );
    sql.bind(revised.id)
        .push(
            ", kind, territory_id, month, amount_cents, headcount, budget_cents, note, author, \
             generated, created_at FROM sop_line WHERE plan_id = ",
        )
        .bind(plan.id)
        .push(" ORDER BY id");
    let copied = tx
        .execute_raw(sql.statement(tx.get_database_backend()))
        .await?
        .rows_affected();
    record_transition(
        &tx,
        &revised,
        None,
        actor,
        Some(format!(
            "Revision {} started from released plan {} (revision {}); {copied} lines copied",
            revised.revision, plan.id, plan.revision
        )),
    )
    .await?;
    let mut changes = Changes::new();
    changes
        .created("name", &revised.name)
        .created("revision", &revised.revision)
        .created("previousRevisionId", &revised.previous_revision_id)
        .created("stage", &stage_name(revised.stage))
        .created("copiedLines", &copied);
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
