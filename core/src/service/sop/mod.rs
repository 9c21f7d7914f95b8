//! S&OP plans (docs/design.md, S&OP plans): the monthly planning cycle
//! DATA_GATHERING -> DEMAND_PLANNING -> SUPPLY_PLANNING -> RECONCILIATION ->
//! RELEASED, with its lines, transitions, gaps and plan-against-actual.
//!
//! Conventions a planning team can rely on:
//! - Every number is per territory and month. A line with no territory
//!   (`territory_id` NULL) is the "unassigned" bucket: closed-won deals that
//!   carry no territory, and active reps without one. It is planned like any
//!   territory (demand, supply and adjustment inputs take `territoryId: null`).
//!   A deal counts for the territory it names; a line on a parent territory
//!   is the parent's own. Reports roll up the tree on request (`rollup`).
//! - Months of the horizon over when a plan (or revision) is made are not
//!   planned (`planned_from` is the first planned month): their closed-won
//!   is written as their DEMAND and line writes for them are refused.
//! - ACTUAL lines: closed-won (status WON, closed_at in the month, UTC) per
//!   territory and month from `lookback_months` before the horizon up to the
//!   first planned month; only territory-months that won something get a
//!   line.
//! - BASELINE lines: the HISTORICAL forecast (`domain::forecast`) of every
//!   planned month for every territory that won something in the run-rate
//!   window or in a planned month. The run rate is taken once, from the
//!   `baseline_lookback_months` whole months before the current month (never
//!   the unfinished current month), so each month is R x (1 + growth), never
//!   below what the territory has already won in that month.
//! - Capacity (SUPPLY_PLANNING, without a SUPPLY line for the
//!   territory-month): the sum over active quota-carrying reps of the
//!   territory on board in the month (hired before it ends) of monthly quota x ramp. The monthly
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
//!
//! The code is split by concern: `lifecycle` (create, advance, release,
//! reopen, revise, transitions, version checks), `gathering` (closed-won
//! actuals, baseline, capacity and the lines generated from them), `lines`
//! (demand, supply and adjustment writes and their checks, demand seeded
//! from the pipeline), `approvals` (approvers and sign-off), `reporting`
//! (plan reads, lines, gaps, variances), `rollup` (territory roll-ups, line
//! totals, budget totals, comparison of two plans) and `shared` (helpers
//! they all use).
mod approvals;
mod gathering;
mod lifecycle;
mod lines;
mod reporting;
mod rollup;
mod shared;

use chrono::NaiveDate;
use rust_decimal::Decimal;

pub use approvals::{approve, approvers_of, set_approvers};
pub use lifecycle::{advance, create, record_transition, release, reopen, revise};
pub use lines::{add_adjustments, seed_demand_from_pipeline, set_demand, set_supply};
pub use reporting::{gaps_for, get, lines_for, list, variances_for};
pub use rollup::{
    budget_totals, compare, line_totals_of, roll_up_gaps, roll_up_variances, tree_for,
    ComparisonRow, Figures, LineTotal, TerritoryTree,
};
pub use shared::stage_name;

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
    /// Token subjects whose sign-off release needs.
    pub approvers: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct DemandLine {
    pub territory_id: Option<i64>,
    pub month: NaiveDate,
    /// Exactly one of amount and change_percent.
    pub amount: Option<Decimal>,
    /// A change of the territory-month's baseline in percent (20 is +20%),
    /// not below -100.
    pub change_percent: Option<Decimal>,
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
