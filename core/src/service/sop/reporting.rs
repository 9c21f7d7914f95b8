//! Reading plans: a plan, the list of plans, and per plan (many at once, for
//! the DataLoaders) its lines, its gaps and its plan-against-actual, each
//! ordered by territory (by name, unassigned last) then month.
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sea_orm::{
    ActiveEnum, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, QuerySelect,
};

use entity::enums::{SopLineKind, SopStage};
use entity::{sop_line, sop_plan, territory};

use super::gathering::{capacity, won_by_month};
use super::shared::{horizon_of, load, planned_from};
use super::{Gap, Key, Variance};
use crate::auth::Principal;
use crate::db::{Dialect, Sql, SumCents};
use crate::domain::money::{from_cents, round_money};
use crate::domain::sop::{
    self as math, headcount_f64, month_index, month_start, Capacity, Horizon,
};
use crate::error::{AppError, AppResult};
use crate::service::access::SOP_READERS;

/// A plan by id, for the roles that read plans.
pub async fn get(
    db: &impl ConnectionTrait,
    actor: &Principal,
    id: i64,
) -> AppResult<sop_plan::Model> {
    actor.require(SOP_READERS)?;
    load(db, id).await
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
pub(super) async fn territory_names(
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
pub(super) fn cmp_territory(
    names: &HashMap<i64, String>,
    a: Option<i64>,
    b: Option<i64>,
) -> Ordering {
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
pub(super) async fn line_totals(
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

/// Gaps of many plans: their figures (below) for the months they plan.
pub async fn gaps_for(
    db: &impl ConnectionTrait,
    plans: &[sop_plan::Model],
) -> AppResult<HashMap<i64, Vec<Gap>>> {
    let mut all = figures_for(db, plans).await?;
    for plan in plans {
        let first = planned_from(plan);
        if let Some(g) = all.get_mut(&plan.id) {
            g.retain(|g| g.month >= first);
        }
    }
    Ok(all)
}

/// The figures of many plans per territory-month over the whole horizon
/// (months over included). Demand is the DEMAND line, else the BASELINE
/// line; supply is the SUPPLY line, else (for a planned month, until the
/// plan leaves SUPPLY_PLANNING) the live computed capacity; adjustments are
/// summed. Ordered by territory then month.
pub(super) async fn figures_for(
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
        let first = month_index(planned_from(p));
        months.extend(horizon_of(p)?.month_indexes().filter(|m| *m >= first));
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
                if horizon.contains_month(m) && m >= planned_from(plan) {
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
/// territory-month of the months it planned against the closed-won of that
/// territory-month now (every deal), with territory-months that won without
/// a plan included. Months that were over when the plan was made are left
/// out (their demand was their actual). Plans not yet released have none.
/// Ordered by territory then month.
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
        let first = planned_from(plan);
        let mut rows: BTreeMap<Key, (i128, i128)> = planned
            .remove(&plan.id)
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| k.1 >= first)
            .map(|(k, c)| (k, (c, 0)))
            .collect();
        for ((t, mi), cents) in &actual {
            let Some(m) = month_start(*mi) else { continue };
            if horizon.contains_month(m) && m >= first {
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
