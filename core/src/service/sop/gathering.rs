//! Gathering: closed-won per territory and month (ACTUAL lines), the
//! HISTORICAL baseline (BASELINE lines), computed selling capacity, and the
//! lines generated from them when a plan leaves DEMAND_PLANNING (confirmed
//! baseline demand) and SUPPLY_PLANNING (computed capacity as supply).
use sea_orm::{IdenStatic, Iterable};
use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use sea_orm::{
    ActiveEnum, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, FromQueryResult,
    QueryFilter, Set,
};

use entity::enums::{DealStatus, SopLineKind};
use entity::{sop_line, sop_plan};

use super::shared::{growth_of, horizon_of, insert_lines, new_line, planned_from};
use super::Key;
use crate::auth::Principal;
use crate::clock;
use crate::db::{Dialect, Sql, SumCents};
use crate::domain::forecast::{historical_amount, HistoricalParams, HistoricalRow};
use crate::domain::money::{from_cents, round_money, to_cents};
use crate::domain::period::Period;
use crate::domain::sop::{
    headcount_f64, month_index, month_label, month_start, Capacity, Horizon, RampGroup,
};
use crate::error::{AppError, AppResult};
use crate::service::access::DealScope;
use crate::service::deal_filter::DealFilter;

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
pub(super) async fn capacity(
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
    sql.push(") m WHERE r.active = ")
        .bind(true)
        .push(" AND r.quota_carrying = ")
        .bind(true)
        .push(&format!(
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
pub(super) async fn won_by_month(
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
    won_filter(range).push_sql(&mut sql, DealScope::All, d);
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

#[derive(Debug, FromQueryResult)]
struct BaselineRow {
    territory_id: Option<i64>,
    bucket: i64,
    amount_cents: SumCents,
}

/// What `gather` wrote.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Gathered {
    pub actuals: usize,
    pub baselines: usize,
    /// DEMAND lines of the months that were over (their ACTUAL).
    pub over: usize,
}

/// Writes the gathered lines of a new plan or revision, as of `now`:
/// - ACTUAL: closed-won per territory-month from `lookback_months` before
///   the horizon up to the first planned month (so the months of the
///   horizon that are over are included; the current month, when it is
///   before the horizon, counts what it has won so far);
/// - DEMAND (generated) for each territory-month of a month that is over:
///   its ACTUAL, since it is not planned;
/// - BASELINE: the HISTORICAL forecast of every planned month, its run rate
///   from the `baseline_lookback_months` whole months before the current
///   month (never the unfinished current month), never below what the
///   territory has already won in the month.
pub(super) async fn gather(
    tx: &DatabaseTransaction,
    plan: &sop_plan::Model,
    horizon: &Horizon,
    actor: &Principal,
    now: DateTime<Utc>,
) -> AppResult<Gathered> {
    let start = horizon.start();
    let planned = planned_from(plan);
    let current = now.date_naive().with_day(1).unwrap_or(start);
    let actual_start = start
        .checked_sub_months(Months::new(plan.lookback_months as u32))
        .ok_or_else(|| AppError::bad_input("lookbackMonths reaches before the calendar"))?;
    let mut lines = Vec::new();
    let mut actual = won_by_month(tx, actual_start, start.max(planned))
        .await?
        .into_iter()
        .collect::<Vec<_>>();
    actual.sort();
    let mut over = Vec::new();
    for ((t, mi), cents) in actual {
        let Some(m) = month_start(mi) else { continue };
        let amount = line_cents(from_cents(cents), "closed-won")?;
        let mut line = new_line(
            plan.id,
            SopLineKind::Actual,
            (t, m),
            amount,
            &actor.subject,
            now,
        );
        line.generated = Set(true);
        line.note = Set(Some(format!("Closed-won in {}", month_label(m))));
        lines.push(line);
        if horizon.contains_month(m) && m < planned {
            let mut demand = new_line(
                plan.id,
                SopLineKind::Demand,
                (t, m),
                amount,
                &actor.subject,
                now,
            );
            demand.generated = Set(true);
            demand.note = Set(Some(format!(
                "{} was over when the plan was made: its closed-won is the demand (not planned)",
                month_label(m)
            )));
            over.push(demand);
        }
    }
    let actuals = lines.len();
    let over_count = over.len();
    lines.extend(over);

    // BASELINE: closed-won of the run-rate lookback (bucket -1, the whole
    // months before the current one) and of each month from the current one
    // on, per territory, in one GROUP BY.
    let baseline_start = current
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
    sql.bind(clock::start_of(current)).push(&format!(
        " THEN -1 ELSE {} END AS bucket, deal.amount_cents AS amount_cents FROM deal WHERE 1 = 1",
        d.month_index_utc("deal.closed_at")
    ));
    won_filter(range).push_sql(&mut sql, DealScope::All, d);
    sql.push(") won GROUP BY territory_id, bucket");
    let rows = BaselineRow::find_by_statement(sql.statement(tx.get_database_backend()))
        .all(tx)
        .await?;
    let planned_months: Vec<NaiveDate> = horizon
        .month_starts()
        .into_iter()
        .filter(|m| *m >= planned)
        .collect();
    let planned_idx: BTreeSet<i64> = planned_months.iter().map(|m| month_index(*m)).collect();
    let mut by_territory: BTreeMap<Option<i64>, (i128, HashMap<i64, i128>)> = BTreeMap::new();
    for r in rows {
        if r.bucket < 0 {
            by_territory.entry(r.territory_id).or_default().0 += r.amount_cents.0;
        } else if planned_idx.contains(&r.bucket) {
            *by_territory
                .entry(r.territory_id)
                .or_default()
                .1
                .entry(r.bucket)
                .or_default() += r.amount_cents.0;
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
        for m in &planned_months {
            let m = *m;
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
    let baselines = lines.len() - actuals - over_count;
    insert_lines(tx, lines).await?;
    Ok(Gathered {
        actuals,
        baselines,
        over: over_count,
    })
}

/// Writes a DEMAND line with the baseline for every territory-month that
/// has a BASELINE line and no DEMAND line. One INSERT ... SELECT.
pub(super) async fn confirm_baseline(
    tx: &DatabaseTransaction,
    plan: &sop_plan::Model,
    actor: &Principal,
    now: DateTime<Utc>,
) -> AppResult<u64> {
    // Every column of a line, each with its value in the new DEMAND line
    // (a match, so a new sop_line field does not compile until it has one).
    use sop_line::Column as C;
    let mut names = Vec::new();
    let mut select = Sql::new("");
    for c in C::iter() {
        if matches!(c, C::Id) {
            continue;
        }
        if !names.is_empty() {
            select.push(", ");
        }
        match c {
            C::Id => unreachable!("skipped above"),
            C::PlanId => select.push("b.plan_id"),
            C::Kind => select.bind(SopLineKind::Demand.to_value()),
            C::TerritoryId => select.push("b.territory_id"),
            C::Month => select.push("b.month"),
            C::AmountCents => select.push("b.amount_cents"),
            C::Headcount => select.push("CAST(NULL AS DOUBLE PRECISION)"),
            C::BudgetCents => select.push("CAST(NULL AS BIGINT)"),
            C::Note => select.bind("Baseline confirmed as demand (no revision entered)"),
            C::Author => select.bind(actor.subject.clone()),
            C::Generated => select.bind(true),
            C::CreatedAt => select.bind(now),
            C::CarriedFromPlanId => select.push("CAST(NULL AS BIGINT)"),
        };
        names.push(c.as_str());
    }
    let mut sql = Sql::new(format!(
        "INSERT INTO sop_line ({}) SELECT ",
        names.join(", ")
    ));
    sql.append(&select)
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
pub(super) async fn record_capacity(
    tx: &DatabaseTransaction,
    plan: &sop_plan::Model,
    actor: &Principal,
    now: DateTime<Utc>,
) -> AppResult<u64> {
    let horizon = horizon_of(plan)?;
    let first = month_index(planned_from(plan));
    let computed = capacity(
        tx,
        &horizon.month_indexes().filter(|m| *m >= first).collect(),
    )
    .await?;
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
