//! Reports over the territory tree and between revisions: rolling lines,
//! gaps and plan-against-actual up to a level of the tree, the budget
//! total, line totals, and the comparison of two plans of one horizon.
//!
//! The amounts rolled up are per territory-month aggregates computed in SQL
//! (one row per territory and month, never per deal); rolling up adds a
//! territory's row to its ancestor's at the level asked.
use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sea_orm::{ActiveEnum, ConnectionTrait, EntityTrait, FromQueryResult};

use entity::enums::SopLineKind;
use entity::territory;

use super::reporting::{cmp_territory, figures_for};
use super::shared::load;
use super::{Gap, Variance};
use crate::auth::Principal;
use crate::db::{Dialect, Sql, SumCents};
use crate::domain::money::from_cents;
use crate::domain::sop as math;
use crate::error::{AppError, AppResult};
use crate::service::access::SOP_READERS;

/// The territory tree: each territory's parent, depth (0: a territory
/// without a parent) and name.
#[derive(Debug, Clone, Default)]
pub struct TerritoryTree {
    nodes: HashMap<i64, (Option<i64>, i32, String)>,
    deepest: Option<i32>,
}

impl TerritoryTree {
    pub async fn load(db: &impl ConnectionTrait) -> AppResult<Self> {
        let rows = territory::Entity::find().all(db).await?;
        let parent: HashMap<i64, Option<i64>> = rows.iter().map(|t| (t.id, t.parent_id)).collect();
        let mut nodes = HashMap::with_capacity(rows.len());
        let mut deepest = None;
        for t in rows {
            // Walk up to a root; a broken chain (or a cycle) stops the walk.
            let mut depth = 0;
            let mut at = t.parent_id;
            while let Some(p) = at {
                if depth > parent.len() as i32 {
                    break;
                }
                depth += 1;
                at = parent.get(&p).copied().flatten();
            }
            deepest = deepest.max(Some(depth));
            nodes.insert(t.id, (t.parent_id, depth, t.name));
        }
        Ok(Self { nodes, deepest })
    }

    /// A level to roll up to must exist: 0 (the top) to the deepest level.
    pub fn check_level(&self, level: i32) -> AppResult<()> {
        match self.deepest {
            Some(d) if (0..=d).contains(&level) => Ok(()),
            Some(d) => Err(AppError::bad_input(format!(
                "rollUpTo: the territory tree has no level {level}: its levels are 0 (top) to {d}"
            ))),
            None => Err(AppError::bad_input(format!(
                "rollUpTo: the territory tree has no level {level}: there are no territories"
            ))),
        }
    }

    /// The territory's ancestor at `level` (itself when it is at or above
    /// it); no territory stays no territory.
    pub fn at_level(&self, t: Option<i64>, level: i32) -> Option<i64> {
        let mut id = t?;
        loop {
            match self.nodes.get(&id) {
                Some((Some(parent), depth, _)) if *depth > level => id = *parent,
                _ => return Some(id),
            }
        }
    }

    pub fn names(&self) -> HashMap<i64, String> {
        self.nodes
            .iter()
            .map(|(id, (_, _, n))| (*id, n.clone()))
            .collect()
    }
}

/// A checked tree for an optional `rollUpTo`.
pub async fn tree_for(
    db: &impl ConnectionTrait,
    level: Option<i32>,
) -> AppResult<Option<TerritoryTree>> {
    match level {
        None => Ok(None),
        Some(l) => {
            let tree = TerritoryTree::load(db).await?;
            tree.check_level(l)?;
            Ok(Some(tree))
        }
    }
}

fn sort_by_territory<T>(
    rows: &mut [T],
    names: &HashMap<i64, String>,
    key: impl Fn(&T) -> (Option<i64>, NaiveDate),
) {
    rows.sort_by(|a, b| {
        let (ta, ma) = key(a);
        let (tb, mb) = key(b);
        cmp_territory(names, ta, tb).then(ma.cmp(&mb))
    });
}

/// Gaps added up per ancestor at `level` and month.
pub fn roll_up_gaps(gaps: Vec<Gap>, tree: &TerritoryTree, level: i32) -> Vec<Gap> {
    let mut out: BTreeMap<(Option<i64>, NaiveDate), Gap> = BTreeMap::new();
    for g in gaps {
        let t = tree.at_level(g.territory_id, level);
        let e = out.entry((t, g.month)).or_insert_with(|| Gap {
            territory_id: t,
            month: g.month,
            demand: Decimal::ZERO,
            supply: Decimal::ZERO,
            headcount: None,
            supply_computed: false,
            adjustments: Decimal::ZERO,
            gap: Decimal::ZERO,
        });
        e.demand += g.demand;
        e.supply += g.supply;
        e.adjustments += g.adjustments;
        e.headcount = match (e.headcount, g.headcount) {
            (None, h) | (h, None) => h,
            (Some(a), Some(b)) => Some(math::headcount_f64(
                Decimal::try_from(a).unwrap_or_default() + Decimal::try_from(b).unwrap_or_default(),
            )),
        };
        e.supply_computed |= g.supply_computed;
        e.gap = math::gap(e.demand, e.supply, e.adjustments);
    }
    let mut rows: Vec<Gap> = out.into_values().collect();
    sort_by_territory(&mut rows, &tree.names(), |g| (g.territory_id, g.month));
    rows
}

/// Plan against actual added up per ancestor at `level` and month.
pub fn roll_up_variances(rows: Vec<Variance>, tree: &TerritoryTree, level: i32) -> Vec<Variance> {
    let mut out: BTreeMap<(Option<i64>, NaiveDate), (Decimal, Decimal)> = BTreeMap::new();
    for v in rows {
        let e = out
            .entry((tree.at_level(v.territory_id, level), v.month))
            .or_default();
        e.0 += v.planned;
        e.1 += v.actual;
    }
    let mut rows: Vec<Variance> = out
        .into_iter()
        .map(|((t, m), (planned, actual))| {
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
    sort_by_territory(&mut rows, &tree.names(), |v| (v.territory_id, v.month));
    rows
}

/// A plan's lines of one kind summed per territory (or ancestor) and month.
#[derive(Debug, Clone, PartialEq)]
pub struct LineTotal {
    pub kind: SopLineKind,
    pub territory_id: Option<i64>,
    pub month: NaiveDate,
    pub amount: Decimal,
    /// Sum of the lines' headcounts, when any line has one.
    pub headcount: Option<f64>,
    /// Sum of the lines' budgets, when any line has one.
    pub budget: Option<Decimal>,
    pub lines: i64,
}

#[derive(Debug, FromQueryResult)]
struct LineSumRow {
    kind: String,
    territory_id: Option<i64>,
    month: NaiveDate,
    amount_cents: SumCents,
    headcount: Option<f64>,
    budget_cents: SumCents,
    budgets: i64,
    lines: i64,
}

/// A plan's lines summed in SQL per kind, territory and month, then (with
/// a level) added up per ancestor; ordered by kind, territory, month.
pub async fn line_totals_of(
    db: &impl ConnectionTrait,
    actor: &Principal,
    plan_id: i64,
    kind: Option<SopLineKind>,
    level: Option<i32>,
) -> AppResult<Vec<LineTotal>> {
    actor.require(SOP_READERS)?;
    let tree = tree_for(db, level).await?;
    let d = Dialect::of(db);
    let mut sql = Sql::new(format!(
        "SELECT kind, territory_id, month, {} AS amount_cents, SUM(headcount) AS headcount, \
         {} AS budget_cents, COUNT(budget_cents) AS budgets, COUNT(*) AS lines \
         FROM sop_line WHERE plan_id = ",
        d.sum_cents("amount_cents"),
        d.sum_cents("budget_cents")
    ));
    sql.bind(plan_id);
    if let Some(k) = kind {
        sql.push(" AND kind = ").bind(k.to_value());
    }
    sql.push(" GROUP BY kind, territory_id, month");
    let rows = LineSumRow::find_by_statement(sql.statement(db.get_database_backend()))
        .all(db)
        .await?;
    let mut out: BTreeMap<(u8, Option<i64>, NaiveDate), LineTotal> = BTreeMap::new();
    for r in rows {
        let kind = SopLineKind::try_from_value(&r.kind)
            .map_err(|_| AppError::internal(format!("unknown sop_line kind {}", r.kind)))?;
        let t = match (&tree, level) {
            (Some(tree), Some(l)) => tree.at_level(r.territory_id, l),
            _ => r.territory_id,
        };
        let e = out
            .entry((rank(kind), t, r.month))
            .or_insert_with(|| LineTotal {
                kind,
                territory_id: t,
                month: r.month,
                amount: Decimal::ZERO,
                headcount: None,
                budget: None,
                lines: 0,
            });
        e.amount += from_cents(r.amount_cents.0);
        if let Some(h) = r.headcount {
            e.headcount = Some(math::headcount_f64(
                Decimal::try_from(e.headcount.unwrap_or(0.0)).unwrap_or_default()
                    + Decimal::try_from(h).unwrap_or_default(),
            ));
        }
        if r.budgets > 0 {
            e.budget = Some(e.budget.unwrap_or_default() + from_cents(r.budget_cents.0));
        }
        e.lines += r.lines;
    }
    let names = match &tree {
        Some(t) => t.names(),
        None => TerritoryTree::load(db).await?.names(),
    };
    let mut rows: Vec<LineTotal> = out.into_values().collect();
    rows.sort_by(|a, b| {
        rank(a.kind)
            .cmp(&rank(b.kind))
            .then_with(|| cmp_territory(&names, a.territory_id, b.territory_id))
            .then(a.month.cmp(&b.month))
    });
    Ok(rows)
}

fn rank(k: SopLineKind) -> u8 {
    match k {
        SopLineKind::Actual => 0,
        SopLineKind::Baseline => 1,
        SopLineKind::Demand => 2,
        SopLineKind::Supply => 3,
        SopLineKind::Adjustment => 4,
    }
}

#[derive(Debug, FromQueryResult)]
struct BudgetRow {
    plan_id: i64,
    budget_cents: SumCents,
}

/// The budget total of many plans: the sum of their adjustments' budgets.
pub async fn budget_totals(
    db: &impl ConnectionTrait,
    plan_ids: &[i64],
) -> AppResult<HashMap<i64, Decimal>> {
    let d = Dialect::of(db);
    let mut sql = Sql::new(format!(
        "SELECT plan_id, {} AS budget_cents FROM sop_line WHERE plan_id IN ",
        d.sum_cents("budget_cents")
    ));
    sql.bind_list(plan_ids.iter().copied())
        .push(" AND kind = ")
        .bind(SopLineKind::Adjustment.to_value())
        .push(" GROUP BY plan_id");
    let rows = BudgetRow::find_by_statement(sql.statement(db.get_database_backend()))
        .all(db)
        .await?;
    let mut out: HashMap<i64, Decimal> = plan_ids.iter().map(|id| (*id, Decimal::ZERO)).collect();
    for r in rows {
        out.insert(r.plan_id, from_cents(r.budget_cents.0));
    }
    Ok(out)
}

/// One plan's numbers of a territory-month in a comparison.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Figures {
    pub demand: Decimal,
    pub supply: Decimal,
    pub adjustments: Decimal,
    pub gap: Decimal,
}

/// A territory-month whose numbers differ between two plans.
#[derive(Debug, Clone, PartialEq)]
pub struct ComparisonRow {
    pub territory_id: Option<i64>,
    pub month: NaiveDate,
    pub from: Figures,
    pub to: Figures,
}

/// Two plans of one horizon compared per territory-month (or per ancestor
/// at `level`): demand, supply, adjustments and gap in each (as `gaps`
/// computes them, over the whole horizon, months over included), listing
/// only the territory-months where any of them changed. Plans of different
/// horizons are BAD_USER_INPUT.
pub async fn compare(
    db: &impl ConnectionTrait,
    actor: &Principal,
    from_id: i64,
    to_id: i64,
    level: Option<i32>,
) -> AppResult<(
    entity::sop_plan::Model,
    entity::sop_plan::Model,
    Vec<ComparisonRow>,
)> {
    actor.require(SOP_READERS)?;
    let from = load(db, from_id).await?;
    let to = load(db, to_id).await?;
    if (from.horizon_start, from.horizon_months) != (to.horizon_start, to.horizon_months) {
        return Err(AppError::bad_input(format!(
            "plans of different horizons cannot be compared: S&OP plan {from_id} covers {} month(s) \
             from {}, S&OP plan {to_id} {} month(s) from {}",
            from.horizon_months, from.horizon_start, to.horizon_months, to.horizon_start
        )));
    }
    let tree = tree_for(db, level).await?;
    let figures = figures_for(db, &[from.clone(), to.clone()]).await?;
    let side = |id: i64| -> Vec<Gap> {
        // A plan compared with itself is read once.
        let g = figures.get(&id).cloned().unwrap_or_default();
        match (&tree, level) {
            (Some(t), Some(l)) => roll_up_gaps(g, t, l),
            _ => g,
        }
    };
    let (a, b) = (side(from.id), side(to.id));
    let fig = |g: &Gap| Figures {
        demand: g.demand,
        supply: g.supply,
        adjustments: g.adjustments,
        gap: g.gap,
    };
    // A territory-month one plan has no numbers for is all zero there.
    let zero = Decimal::new(0, 2);
    let none = Figures {
        demand: zero,
        supply: zero,
        adjustments: zero,
        gap: zero,
    };
    let mut rows: BTreeMap<(Option<i64>, NaiveDate), (Figures, Figures)> = BTreeMap::new();
    for g in &a {
        rows.entry((g.territory_id, g.month))
            .or_insert((none, none))
            .0 = fig(g);
    }
    for g in &b {
        rows.entry((g.territory_id, g.month))
            .or_insert((none, none))
            .1 = fig(g);
    }
    let mut out: Vec<ComparisonRow> = rows
        .into_iter()
        .filter(|(_, (x, y))| x != y)
        .map(|((t, m), (x, y))| ComparisonRow {
            territory_id: t,
            month: m,
            from: x,
            to: y,
        })
        .collect();
    let names = match &tree {
        Some(t) => t.names(),
        None => TerritoryTree::load(db).await?.names(),
    };
    sort_by_territory(&mut out, &names, |r| (r.territory_id, r.month));
    Ok((from, to, out))
}
