//! Forecasts (docs/design.md, Forecasts): what the deals visible to the caller
//! will close in a period, by four methods, as of any past day.
//!
//! Conventions:
//! - Every method returns closedWon (deals WON as of the as-of day with the
//!   close stamp in the period) plus projected; amount = closedWon +
//!   projected. `asOf` (default today) is the state at the end of that UTC
//!   day, rebuilt from the stage history (see `asof`); an asOf after today is
//!   BAD_USER_INPUT (the future has no state yet).
//! - "Open deals expected to close in the period" (STAGE_WEIGHTED and
//!   SALES_CYCLE): open as of the day, with the expected close date (own,
//!   else opened_at + the average won cycle as of the day) in the period.
//! - STAGE_WEIGHTED: amount x stage probability; low/high are the P10/P90 of
//!   closedWon plus independent win/lose outcomes (exact up to
//!   `EXACT_MAX_DEALS` open deals, else the Cornish-Fisher approximation).
//! - SALES_CYCLE: amount x min(age / C, 1), C the mean won cycle of the
//!   visible deals won in the 365 days ending with the as-of day; when none
//!   was won C is undefined and projected is 0 (there is no basis to age
//!   deals against). No low/high.
//! - HISTORICAL: `domain::forecast::historical_amount` (the one
//!   implementation, shared with S&OP) on the visible deals won in the
//!   lookback as of the day. The total is computed from the totals (ramp
//!   share 1); a grouped row takes its own lookback share of R and of the
//!   ramp and is floored at its own closed-won, so rows may add up to more
//!   than the total when a group already won beyond its share. No low/high.
//! - REP_SUBMITTED: the numbers of forecast calls (`calls`, docs/design.md,
//!   Forecast calls) in the category (default COMMIT) as of the end of the
//!   as-of day: a REP row is the rep's personal number (adjustment, else
//!   call, else the sum of its parts), a MANAGER row the personal numbers
//!   of its direct reports, the total the roll-up of the caller's tree (TEAM
//!   adjustments included; with filter.ownerIds, those reps' personal
//!   numbers). projected = amount - closedWon (negative when the calls are
//!   below what is already won). Grouped by NONE, REP or MANAGER only (a
//!   call is a rep's, not a territory's). No low/high.
//! - dealCount: the deals behind closedWon plus, for STAGE_WEIGHTED and
//!   SALES_CYCLE, the open deals projected.
//! - Money is rounded to cents once, at the end.
pub mod accuracy;
pub mod asof;
pub mod calls;
pub mod submission;
pub mod trend;

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, Months, NaiveDate};
use rust_decimal::Decimal;
use sea_orm::ConnectionTrait;

use entity::enums::ForecastCategory;

use self::asof::{AggRow, Ask, Source};
use super::access::METRIC_READERS;
use super::deal_filter::DealFilter;
use super::deal_sets;
use super::grouping::{self, Dimension, GroupKey};
use crate::auth::Principal;
use crate::clock;
use crate::domain::forecast::{
    self as math, approx_p10_p90, exact_p10_p90, historical_amount, share, HistoricalParams,
    HistoricalRow, ProbabilityBucket, EXACT_MAX_DEALS,
};
use crate::domain::money::{from_cents, round_money, to_cents};
use crate::domain::period::Period;
use crate::error::{AppError, AppResult};

/// The forecasting methods of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    StageWeighted,
    SalesCycle,
    Historical,
    RepSubmitted,
}

impl Method {
    /// The method's name in the API and in its metric definition.
    pub fn name(self) -> &'static str {
        match self {
            Method::StageWeighted => "STAGE_WEIGHTED",
            Method::SalesCycle => "SALES_CYCLE",
            Method::Historical => "HISTORICAL",
            Method::RepSubmitted => "REP_SUBMITTED",
        }
    }

    /// Whether the method projects open deals.
    fn uses_pipeline(self) -> bool {
        matches!(self, Method::StageWeighted | Method::SalesCycle)
    }
}

/// HISTORICAL assumptions as given (all optional).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoricalInput {
    pub lookback_months: Option<i32>,
    pub growth_rate: Option<f64>,
    pub new_reps: Option<i32>,
    pub deals_per_new_rep: Option<f64>,
    pub new_rep_deal_size: Option<Decimal>,
}

/// Longest lookback accepted (ten years).
pub const MAX_LOOKBACK_MONTHS: i32 = 120;

/// A forecast question.
#[derive(Debug, Clone)]
pub struct Query {
    pub period: Period,
    pub method: Method,
    pub group_by: Dimension,
    /// None: today, from the deals' current state.
    pub as_of: Option<NaiveDate>,
    pub historical: Option<HistoricalInput>,
    pub category: Option<ForecastCategory>,
    /// Narrows every method to these deals, like the metrics.
    pub filter: DealFilter,
    /// Whether to compute `low` and `high` (STAGE_WEIGHTED: with few open
    /// deals, one more statement for their exact P10/P90); without them
    /// both are None.
    pub bounds: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ForecastRow {
    pub key: GroupKey,
    pub amount: Decimal,
    pub closed_won: Decimal,
    pub projected: Decimal,
    pub deal_count: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    pub method: Method,
    pub period: Period,
    pub as_of: NaiveDate,
    pub amount: Decimal,
    pub closed_won: Decimal,
    pub projected: Decimal,
    pub rows: Vec<ForecastRow>,
    pub low: Option<Decimal>,
    pub high: Option<Decimal>,
}

/// A decimal from an API float, as written ("0.05" stays 0.05).
fn decimal_of(v: f64, field: &str) -> AppResult<Decimal> {
    if !v.is_finite() {
        return Err(AppError::bad_input(format!("{field} must be a number")));
    }
    v.to_string()
        .parse::<Decimal>()
        .map_err(|_| AppError::bad_input(format!("{field} is out of range")))
}

/// Bounds of the HISTORICAL what-if inputs, so its Decimal arithmetic cannot
/// overflow (a panic before): newReps x dealsPerNewRep x newRepDealSize
/// <= 10^5 x 10^5 x 10^12 = 10^22, and a run rate of 2^31 deals at the
/// maximum amount (2.1 x 10^21) x 97,200 months (1900..9998) x (1 + 10)
/// = 2.3 x 10^27, both below Decimal's 7.9 x 10^28.
const MAX_NEW_REPS: i32 = 100_000;
const MAX_DEALS_PER_NEW_REP: i64 = 100_000;

/// Checked HISTORICAL parameters; the deal size default is filled later.
fn historical_params(input: &HistoricalInput) -> AppResult<(HistoricalParams, bool)> {
    let lookback = input
        .lookback_months
        .unwrap_or(math::DEFAULT_LOOKBACK_MONTHS as i32);
    if !(1..=MAX_LOOKBACK_MONTHS).contains(&lookback) {
        return Err(AppError::bad_input(format!(
            "historical.lookbackMonths must be between 1 and {MAX_LOOKBACK_MONTHS}"
        )));
    }
    let growth = decimal_of(input.growth_rate.unwrap_or(0.0), "historical.growthRate")?;
    if growth < Decimal::NEGATIVE_ONE || growth > Decimal::TEN {
        return Err(AppError::bad_input(
            "historical.growthRate must be between -1 and 10",
        ));
    }
    let new_reps = input.new_reps.unwrap_or(0);
    if !(0..=MAX_NEW_REPS).contains(&new_reps) {
        return Err(AppError::bad_input(format!(
            "historical.newReps must be between 0 and {MAX_NEW_REPS}"
        )));
    }
    let per_rep = decimal_of(
        input.deals_per_new_rep.unwrap_or(0.0),
        "historical.dealsPerNewRep",
    )?;
    if per_rep < Decimal::ZERO || per_rep > Decimal::from(MAX_DEALS_PER_NEW_REP) {
        return Err(AppError::bad_input(format!(
            "historical.dealsPerNewRep must be between 0 and {MAX_DEALS_PER_NEW_REP}"
        )));
    }
    if let Some(size) = input.new_rep_deal_size {
        // Same cap as any amount (and never negative).
        to_cents(size, "historical.newRepDealSize")?;
    }
    Ok((
        HistoricalParams {
            lookback_months: lookback as u32,
            growth_rate: growth,
            new_reps: Decimal::from(new_reps),
            deals_per_new_rep: per_rep,
            new_rep_deal_size: input.new_rep_deal_size.unwrap_or_default(),
        },
        input.new_rep_deal_size.is_none(),
    ))
}

/// An as-of day must not be in the future.
pub fn check_as_of(as_of: NaiveDate, field: &str) -> AppResult<()> {
    if as_of > clock::today() {
        Err(AppError::bad_input(format!(
            "{field} must not be after today ({})",
            clock::today()
        )))
    } else {
        Ok(())
    }
}

/// The lookback window (half-open) of a HISTORICAL forecast asked on
/// `as_of`: the `months` whole months before the period that are over by
/// the end of `as_of` (its own month counts only on its last day).
pub(crate) fn lookback_window(
    period: &Period,
    months: u32,
    as_of: NaiveDate,
) -> AppResult<(NaiveDate, NaiveDate)> {
    let day_after = as_of + chrono::Duration::days(1);
    let over_until = day_after - chrono::Duration::days(i64::from(day_after.day0()));
    let end = period.start().min(over_until);
    let start = end
        .checked_sub_months(Months::new(months))
        .ok_or_else(|| AppError::bad_input("historical.lookbackMonths reaches before year 1"))?;
    Ok((start, end))
}

/// The ask of a question: its lookback window (none unless HISTORICAL);
/// the won cycle is filled in later.
pub(crate) fn ask_for(plan: &Plan, period: Period, as_of: NaiveDate) -> AppResult<Ask> {
    let (lookback_start, lookback_end) = match &plan.historical {
        Some((p, _, _)) => lookback_window(&period, p.lookback_months, as_of)?,
        None => (period.start(), period.start()),
    };
    Ok(Ask {
        as_of,
        period,
        lookback_start,
        lookback_end,
        cycle: Default::default(),
    })
}

/// Validated per-method settings of a question.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub method: Method,
    pub historical: Option<(HistoricalParams, bool, u32)>,
    pub category: ForecastCategory,
}

pub(crate) fn plan(
    method: Method,
    period: &Period,
    historical: Option<&HistoricalInput>,
    category: Option<ForecastCategory>,
) -> AppResult<Plan> {
    if category.is_some() && method != Method::RepSubmitted {
        return Err(AppError::bad_input(
            "category applies to the REP_SUBMITTED method only",
        ));
    }
    if historical.is_some() && method != Method::Historical {
        return Err(AppError::bad_input(
            "historical applies to the HISTORICAL method only",
        ));
    }
    let historical = if method == Method::Historical {
        let months = period.whole_months().ok_or_else(|| {
            AppError::bad_input(format!(
                "a HISTORICAL forecast needs a period of whole months; {period} is not"
            ))
        })?;
        let (params, default_size) = historical_params(historical.unwrap_or(&Default::default()))?;
        Some((params, default_size, months))
    } else {
        None
    };
    Ok(Plan {
        method,
        historical,
        category: category.unwrap_or(ForecastCategory::Commit),
    })
}

/// The aggregate of one group (or of everything), summed over probabilities.
#[derive(Debug, Clone, Default)]
pub(crate) struct GroupAgg {
    pub won_deals: i64,
    pub won_cents: i128,
    pub lookback_deals: i64,
    pub lookback_cents: i128,
    pub open_deals: i64,
    pub full_cents: i128,
    pub aged_cents_days: i128,
    pub buckets: BTreeMap<i64, ProbabilityBucket>,
}

impl GroupAgg {
    fn add(&mut self, r: &AggRow) {
        self.won_deals += r.won_deals;
        self.won_cents += r.won_cents.0;
        self.lookback_deals += r.lookback_deals;
        self.lookback_cents += r.lookback_cents.0;
        self.open_deals += r.open_deals;
        self.full_cents += r.full_cents.0;
        self.aged_cents_days += r.aged_cents_days.0;
        if r.open_deals > 0 {
            let b = self.buckets.entry(r.ppm).or_insert(ProbabilityBucket {
                ppm: r.ppm,
                ..Default::default()
            });
            b.deals += r.open_deals;
            b.amount += from_cents(r.open_cents);
            // Cents^2 and cents^3 to currency units.
            b.amount_sq += r.open_sq / 1e4;
            b.amount_cube += r.open_cube / 1e6;
        }
    }

    fn buckets(&self) -> Vec<ProbabilityBucket> {
        self.buckets.values().copied().collect()
    }
}

/// Rows of one ask by group, plus the total.
pub(crate) fn group_rows(rows: &[AggRow], idx: i64) -> (BTreeMap<Option<i64>, GroupAgg>, GroupAgg) {
    let mut groups: BTreeMap<Option<i64>, GroupAgg> = BTreeMap::new();
    let mut total = GroupAgg::default();
    for r in rows.iter().filter(|r| r.idx == idx) {
        groups.entry(r.group_id).or_default().add(r);
        total.add(r);
    }
    (groups, total)
}

/// (amount, closedWon, dealCount) of one group or the total, unrounded;
/// `submitted` is the group's submissions for REP_SUBMITTED.
pub(crate) fn evaluate(
    plan: &Plan,
    agg: &GroupAgg,
    total: &GroupAgg,
    cycle: &deal_sets::WonCycle,
    submitted: Decimal,
    is_total: bool,
) -> (Decimal, Decimal, i64) {
    let closed = from_cents(agg.won_cents);
    match plan.method {
        Method::StageWeighted => (
            closed + math::stage_weighted(&agg.buckets()),
            closed,
            agg.won_deals + agg.open_deals,
        ),
        Method::SalesCycle => {
            let projected = math::sales_cycle_projection(
                from_cents(agg.full_cents),
                from_cents(agg.aged_cents_days),
                (cycle.total_days, cycle.deals),
            )
            .unwrap_or_default();
            (closed + projected, closed, agg.won_deals + agg.open_deals)
        }
        Method::Historical => {
            let (params, default_size, months) = plan
                .historical
                .as_ref()
                .expect("planned HISTORICAL has params");
            let mut params = params.clone();
            if *default_size {
                params.new_rep_deal_size = share(
                    from_cents(total.lookback_cents),
                    Decimal::from(total.lookback_deals),
                );
            }
            let ramp_share = if is_total {
                Decimal::ONE
            } else {
                share(
                    from_cents(agg.lookback_cents),
                    from_cents(total.lookback_cents),
                )
            };
            let amount = historical_amount(
                &params,
                &HistoricalRow {
                    lookback_won: from_cents(agg.lookback_cents),
                    won_in_period: closed,
                    months: *months,
                    ramp_share,
                },
            );
            (amount, closed, agg.won_deals)
        }
        Method::RepSubmitted => (submitted, closed, agg.won_deals),
    }
}

/// Checks a question's method, grouping and filter together.
pub(crate) fn checked_plan(
    method: Method,
    period: &Period,
    historical: Option<&HistoricalInput>,
    category: Option<ForecastCategory>,
    group_by: Dimension,
    filter: &DealFilter,
) -> AppResult<Plan> {
    let plan = plan(method, period, historical, category)?;
    // The groupings each method takes are its metric definition's.
    crate::service::metric_definitions::check_group_by(
        "forecast",
        Some(plan.method.name()),
        group_by,
    )?;
    // A call is a rep's number for the whole period: only the reps can be
    // narrowed, not the deals behind a call.
    if plan.method == Method::RepSubmitted
        && *filter
            != (DealFilter {
                owner_ids: filter.owner_ids.clone(),
                ..Default::default()
            })
    {
        return Err(AppError::bad_input(
            "filter: a REP_SUBMITTED forecast narrows by ownerIds only (a call covers all of a rep's deals)",
        ));
    }
    Ok(plan)
}

/// Answers a forecast question for the caller's deals.
pub async fn forecast(
    db: &impl ConnectionTrait,
    actor: &Principal,
    q: Query,
) -> AppResult<Forecast> {
    actor.require(METRIC_READERS)?;
    let plan = checked_plan(
        q.method,
        &q.period,
        q.historical.as_ref(),
        q.category,
        q.group_by,
        &q.filter,
    )?;
    if let Some(d) = q.as_of {
        check_as_of(d, "asOf")?;
    }
    let as_of = q.as_of.unwrap_or_else(clock::today);
    let source = if q.as_of.is_some() {
        Source::History
    } else {
        Source::Current
    };
    let mut answers = forecasts_as_of(
        db,
        actor,
        &plan,
        q.period,
        q.group_by,
        &q.filter,
        &[as_of],
        source,
        q.bounds,
    )
    .await?;
    answers
        .pop()
        .ok_or_else(|| AppError::internal("no forecast for the as-of day"))
}

/// The same question as of many days, in a fixed number of statements
/// whatever the number of days: one for the won cycles (methods that
/// project open deals), one aggregate, one for the calls (REP_SUBMITTED)
/// and, for STAGE_WEIGHTED, one for the open deals of the days with few
/// enough of them for exact P10/P90.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn forecasts_as_of(
    db: &impl ConnectionTrait,
    actor: &Principal,
    plan: &Plan,
    period: Period,
    group_by: Dimension,
    filter: &DealFilter,
    days: &[NaiveDate],
    source: Source,
    bounds: bool,
) -> AppResult<Vec<Forecast>> {
    let scope = actor.scope();
    let bounds = bounds && plan.method == Method::StageWeighted;
    let mut asks = days
        .iter()
        .map(|d| ask_for(plan, period, *d))
        .collect::<AppResult<Vec<_>>>()?;
    let needs = asof::Needs {
        open: plan.method.uses_pipeline(),
        by_probability: plan.method == Method::StageWeighted,
    };
    let rollups = asof::rollups_answer(
        &asks,
        source,
        needs,
        plan.method == Method::SalesCycle,
        group_by,
        filter,
    );
    if plan.method.uses_pipeline() {
        if rollups {
            asks[0].cycle = asof::won_cycle_from_rollups(db, &asks[0], filter).await?;
        } else {
            let cycles = asof::won_cycles(db, &asks, source, filter).await?;
            for (a, c) in asks.iter_mut().zip(cycles) {
                a.cycle = c;
            }
        }
    }
    // The deals and (for REP_SUBMITTED) the calls are independent: ask both
    // at once on two pooled connections.
    let calls = async {
        if plan.method == Method::RepSubmitted {
            calls::submitted_numbers(
                db,
                &asks,
                source,
                plan.category,
                group_by,
                scope,
                filter.owner_ids.as_deref(),
            )
            .await
            .map(Some)
        } else {
            Ok(None)
        }
    };
    let deals = async {
        if rollups {
            let mut rows =
                asof::aggregate_from_rollups(db, &asks[0], needs, group_by, filter, scope).await?;
            // Approximate P10/P90 (many open deals) need the amounts'
            // moments, which the cells do not keep.
            let open: i64 = rows.iter().map(|r| r.open_deals).sum();
            if bounds && open as usize > EXACT_MAX_DEALS {
                asof::open_moments(db, &asks[0], group_by, filter, scope, &mut rows).await?;
            }
            Ok(rows)
        } else {
            asof::aggregate(db, &asks, source, needs, group_by, filter, scope).await
        }
    };
    let (rows, calls) = futures::try_join!(deals, calls)?;

    // Per ask: its groups, total and calls (REP_SUBMITTED: personal numbers
    // per group, the roll-up as the total; docs/design.md, Forecast calls).
    let mut per_ask = Vec::with_capacity(asks.len());
    for (i, _) in asks.iter().enumerate() {
        let (mut groups, total) = group_rows(&rows, i as i64);
        let mut submitted: HashMap<Option<i64>, i128> = HashMap::new();
        let mut submitted_total = 0i128;
        if let Some(numbers) = &calls {
            for (_, k, cents) in numbers.rows.iter().filter(|(idx, _, _)| *idx == i as i64) {
                submitted.insert(*k, *cents);
            }
            for k in submitted.keys() {
                groups.entry(*k).or_default();
            }
            submitted_total = numbers.totals.get(i).copied().unwrap_or(0);
        }
        if group_by == Dimension::None {
            groups.entry(None).or_default();
        }
        per_ask.push((groups, total, submitted, submitted_total));
    }

    // Exact P10/P90 where few deals are open: their pairs in one statement.
    let exact: Vec<usize> = if bounds {
        per_ask
            .iter()
            .enumerate()
            .filter(|(_, (_, t, _, _))| {
                t.open_deals > 0 && t.open_deals as usize <= EXACT_MAX_DEALS
            })
            .map(|(i, _)| i)
            .collect()
    } else {
        Vec::new()
    };
    let exact_asks: Vec<Ask> = exact.iter().map(|i| asks[*i]).collect();
    let pairs = asof::open_pairs(db, &exact_asks, source, filter, scope).await?;

    let keys = per_ask
        .iter()
        .flat_map(|(groups, _, _, _)| groups.keys().copied())
        .collect::<std::collections::BTreeSet<_>>();
    let labels = grouping::labels(db, group_by, keys).await?;

    let mut out = Vec::with_capacity(asks.len());
    for (i, (ask, (groups, total, submitted, submitted_total))) in
        asks.iter().zip(per_ask).enumerate()
    {
        let (amount, closed_won, _) = evaluate(
            plan,
            &total,
            &total,
            &ask.cycle,
            from_cents(submitted_total),
            true,
        );
        let (low, high) = if bounds {
            let (lo, hi) = if total.open_deals == 0 {
                (closed_won, closed_won)
            } else if let Some(pos) = exact.iter().position(|e| *e == i) {
                let deals: Vec<(Decimal, i64)> = pairs
                    .iter()
                    .filter(|p| p.idx == pos as i64)
                    .map(|p| (from_cents(p.amount_cents), p.ppm))
                    .collect();
                exact_p10_p90(closed_won, &deals)
            } else {
                approx_p10_p90(closed_won, &total.buckets())
            };
            (Some(round_money(lo)), Some(round_money(hi)))
        } else {
            (None, None)
        };
        let mut out_rows = Vec::with_capacity(groups.len());
        for (k, agg) in &groups {
            let sub = from_cents(submitted.get(k).copied().unwrap_or(0));
            let (amount, closed, deal_count) = evaluate(plan, agg, &total, &ask.cycle, sub, false);
            let amount = round_money(amount);
            out_rows.push(ForecastRow {
                key: labels
                    .get(k)
                    .cloned()
                    .ok_or_else(|| AppError::internal("group key without a label"))?,
                amount,
                closed_won: round_money(closed),
                projected: amount - round_money(closed),
                deal_count,
            });
        }
        grouping::sort_by_key(&mut out_rows, |r| &r.key);
        let amount = round_money(amount);
        let closed_won = round_money(closed_won);
        out.push(Forecast {
            method: plan.method,
            period,
            as_of: ask.as_of,
            amount,
            closed_won,
            projected: amount - closed_won,
            rows: out_rows,
            low,
            high,
        });
    }
    Ok(out)
}
