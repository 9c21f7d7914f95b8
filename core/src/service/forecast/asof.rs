//! The deals behind a forecast as they stood at the end of a UTC day,
//! aggregated in ONE statement for one or many questions ("asks") at once.
//!
//! Reconstruction (docs/design.md, Deal history): every field of every
//! deal (amount, close date, stage, category, owner, territory...) as of
//! the end of the as-of day comes from its revision in force then, through
//! `deal_state::deals_as_of`; deals opened after the day are ignored. With
//! `Source::Current` (the default "today") the deal table is read as it is.
//!
//! Every ask is one row of a small relation `q` (index, as-of bounds, period
//! bounds, lookback start, won cycle), so forecastAccuracy's many periods
//! cost one statement, not one per period.
use chrono::{Duration, NaiveDate};
use sea_orm::{ActiveEnum, ConnectionTrait, FromQueryResult};

use entity::enums::DealStatus;

use crate::clock::start_of;
use crate::db::{Dialect, Sql, SumCents};
use crate::domain::period::Period;
use crate::error::AppResult;
use crate::service::access::DealScope;
use crate::service::deal_filter::DealFilter;
use crate::service::deal_sets::{WonCycle, CYCLE_WINDOW_DAYS};
use crate::service::deal_state::deals_as_of;
use crate::service::grouping::Dimension;
use crate::service::rollup;

/// One forecast question: the state at the end of `as_of` over `period`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ask {
    pub as_of: NaiveDate,
    pub period: Period,
    /// The lookback window (HISTORICAL), half-open; empty (both the
    /// period's start) when there is none.
    pub lookback_start: NaiveDate,
    pub lookback_end: NaiveDate,
    /// The average won cycle as of `as_of` (expected close fallback and
    /// SALES_CYCLE).
    pub cycle: WonCycle,
}

pub use crate::service::deal_state::Source;

/// What the aggregate must compute (the less, the cheaper the statement).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// Open deals expected to close in the period (STAGE_WEIGHTED, SALES_CYCLE).
    pub open: bool,
    /// Rows per stage probability (STAGE_WEIGHTED); otherwise `ppm` is 0.
    pub by_probability: bool,
}

/// Per ask, group and stage probability: won deals in the period and in the
/// lookback, and the open deals expected to close in the period.
#[derive(Debug, Clone, FromQueryResult)]
pub struct AggRow {
    pub idx: i64,
    pub group_id: Option<i64>,
    pub ppm: i64,
    pub won_deals: i64,
    pub won_cents: SumCents,
    pub lookback_deals: i64,
    pub lookback_cents: SumCents,
    pub open_deals: i64,
    pub open_cents: SumCents,
    pub open_sq: f64,
    pub open_cube: f64,
    /// Open deals at or past the average won cycle: their amounts.
    pub full_cents: SumCents,
    /// Younger open deals: the sum of amount (cents) x age (days).
    pub aged_cents_days: SumCents,
}

/// An open deal's amount and stage probability (exact P10/P90).
#[derive(Debug, Clone, FromQueryResult)]
pub struct OpenPair {
    pub idx: i64,
    pub amount_cents: i64,
    pub ppm: i64,
}

fn typed(d: Dialect, ty: &str) -> String {
    match d {
        Dialect::Postgres => format!("CAST(? AS {ty})"),
        Dialect::Sqlite => "?".to_owned(),
    }
}

/// `q AS (SELECT ... UNION ALL SELECT ...)`: one row per ask.
pub fn asks_relation(d: Dialect, asks: &[Ask]) -> Sql {
    let (ts, date, big) = (
        typed(d, "timestamptz"),
        typed(d, "date"),
        typed(d, "bigint"),
    );
    // Inlined where referenced, so the planner sees the bounds as constants.
    let mut sql = Sql::new("q AS NOT MATERIALIZED (");
    for (i, a) in asks.iter().enumerate() {
        if i > 0 {
            sql.push(" UNION ALL ");
        }
        let end = a.as_of + Duration::days(1);
        let cycle_from = a.as_of - Duration::days(CYCLE_WINDOW_DAYS - 1);
        sql.push(&format!("SELECT {big} AS idx, {ts} AS as_of_end, {date} AS as_of_day, {ts} AS p_start, {ts} AS p_end, {date} AS p_start_day, {date} AS p_end_day, {ts} AS lb_start, {ts} AS lb_end, {ts} AS cyc_from, {big} AS cyc_days, {big} AS cyc_total, {big} AS cyc_deals"))
            .push_with(
                "",
                [
                    (i as i64).into(),
                    start_of(end).into(),
                    a.as_of.into(),
                    start_of(a.period.start()).into(),
                    start_of(a.period.end()).into(),
                    a.period.start().into(),
                    a.period.end().into(),
                    start_of(a.lookback_start).into(),
                    start_of(a.lookback_end).into(),
                    start_of(cycle_from).into(),
                    a.cycle.whole_days().into(),
                    a.cycle.total_days.into(),
                    a.cycle.deals.into(),
                ],
            );
    }
    sql.push(")");
    sql
}

/// Whole UTC days from a deal's opened_at to the ask's as-of day.
fn age_sql(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => {
            "CAST(julianday(q.as_of_day) - julianday(date(deal.opened_at)) AS INTEGER)"
        }
        Dialect::Postgres => "(q.as_of_day - (deal.opened_at AT TIME ZONE 'UTC')::date)",
    }
}

/// The expected close date: the deal's own, else the UTC date of opened_at
/// plus the ask's average won cycle in whole days (none when nothing was
/// won), the rule of `deal_sets::expected_close_sql` with the cycle taken
/// from the ask row.
pub(crate) fn expected_close_sql(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => {
            "COALESCE(deal.expected_close_date, date(deal.opened_at, '+' || q.cyc_days || ' days'))"
        }
        Dialect::Postgres => {
            "COALESCE(deal.expected_close_date, (deal.opened_at AT TIME ZONE 'UTC')::date + CAST(q.cyc_days AS INTEGER))"
        }
    }
}

/// The deals of each ask that can count, as of its day (derived table
/// `deal`): open ones (when `open`), and deals won in the lookback or the
/// period up to the as-of day.
fn state_sql(d: Dialect, source: Source, open: bool, filter: &DealFilter, scope: DealScope) -> Sql {
    let won = format!(
        "({{t}}.status = '{won}' AND {{t}}.closed_at >= q.lb_start AND {{t}}.closed_at < q.as_of_end)",
        won = DealStatus::Won.to_value()
    );
    let keep = if open {
        format!(
            "({{t}}.status = '{opened}' OR {won})",
            opened = DealStatus::Open.to_value()
        )
    } else {
        won
    };
    deals_as_of(d, source, &keep, filter, scope)
}

/// What the outer select returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Head {
    Aggregate,
    OpenPairs,
}

#[allow(clippy::too_many_arguments)]
fn statement(
    d: Dialect,
    asks: &[Ask],
    source: Source,
    needs: Needs,
    dim: Dimension,
    filter: &DealFilter,
    scope: DealScope,
    head: Head,
) -> Sql {
    let kind_won = DealStatus::Won.to_value();
    let kind_open = DealStatus::Open.to_value();
    let won = format!(
        "deal.status = '{kind_won}' AND deal.closed_at >= q.p_start AND deal.closed_at < q.p_end"
    );
    let lookback = format!(
        "deal.status = '{kind_won}' AND deal.closed_at >= q.lb_start AND deal.closed_at < q.lb_end"
    );
    let (open_cond, age) = if needs.open {
        let exp = expected_close_sql(d);
        (
            format!(
                "deal.status = '{kind_open}' AND {exp} >= q.p_start_day AND {exp} < q.p_end_day"
            ),
            age_sql(d).to_owned(),
        )
    } else {
        ("1 = 0".to_owned(), "0".to_owned())
    };
    // The stage is joined only for its probability.
    let (ppm, stage_join) = if needs.by_probability {
        ("s.probability_ppm", " JOIN stage s ON s.id = deal.stage_id")
    } else {
        ("0", "")
    };
    let state = state_sql(d, source, needs.open, filter, scope);
    let mut sql = Sql::new("WITH ");
    sql.append(&asks_relation(d, asks));
    let inner_head = format!(
        "SELECT deal.idx AS idx, {key} AS group_id, {ppm} AS ppm, deal.amount_cents AS a, \
         CASE WHEN {won} THEN 1 ELSE 0 END AS is_won, CASE WHEN {lookback} THEN 1 ELSE 0 END AS is_lb, \
         CASE WHEN {open_cond} THEN 1 ELSE 0 END AS is_open, {age} AS age, \
         q.cyc_deals AS cyc_deals, q.cyc_total AS cyc_total FROM ",
        key = dim.key_sql()
    );
    let inner_tail = format!(
        " JOIN q ON q.idx = deal.idx{stage_join}{join} \
         WHERE ({won}) OR ({lookback}) OR ({open_cond})",
        join = dim.join_sql()
    );
    match head {
        Head::Aggregate => {
            let float = match d {
                Dialect::Sqlite => "REAL",
                Dialect::Postgres => "DOUBLE PRECISION",
            };
            let open_aggs = if needs.open {
                format!(
                    "{open_n} AS open_deals, {open_c} AS open_cents, \
                     CAST(COALESCE(SUM(CASE WHEN x.is_open = 1 THEN CAST(x.a AS {float}) * x.a ELSE 0 END), 0) AS {float}) AS open_sq, \
                     CAST(COALESCE(SUM(CASE WHEN x.is_open = 1 THEN CAST(x.a AS {float}) * x.a * x.a ELSE 0 END), 0) AS {float}) AS open_cube, \
                     {full} AS full_cents, {aged} AS aged_cents_days",
                    open_n = d.sum_i64("x.is_open"),
                    open_c = d.sum_cents("CASE WHEN x.is_open = 1 THEN x.a ELSE 0 END"),
                    full = d.sum_cents(
                        "CASE WHEN x.is_open = 1 AND x.age * x.cyc_deals >= x.cyc_total THEN x.a ELSE 0 END"
                    ),
                    aged = d.sum_cents(
                        "CASE WHEN x.is_open = 1 AND x.age * x.cyc_deals < x.cyc_total THEN x.a * x.age ELSE 0 END"
                    ),
                )
            } else {
                format!(
                    "CAST(0 AS BIGINT) AS open_deals, {zero} AS open_cents, \
                     CAST(0 AS {float}) AS open_sq, CAST(0 AS {float}) AS open_cube, \
                     {zero} AS full_cents, {zero} AS aged_cents_days",
                    zero = d.zero_cents()
                )
            };
            let (ppm_out, ppm_group) = if needs.by_probability {
                ("x.ppm", ", x.ppm")
            } else {
                ("CAST(0 AS BIGINT)", "")
            };
            sql.push(&format!(
                " SELECT x.idx AS idx, x.group_id AS group_id, {ppm_out} AS ppm, \
                 {won_n} AS won_deals, {won_c} AS won_cents, {lb_n} AS lookback_deals, {lb_c} AS lookback_cents, \
                 {open_aggs} FROM (",
                won_n = d.sum_i64("x.is_won"),
                won_c = d.sum_cents("CASE WHEN x.is_won = 1 THEN x.a ELSE 0 END"),
                lb_n = d.sum_i64("x.is_lb"),
                lb_c = d.sum_cents("CASE WHEN x.is_lb = 1 THEN x.a ELSE 0 END"),
            ))
            .push(&inner_head)
            .append(&state)
            .push(&inner_tail)
            .push(&format!(") x GROUP BY x.idx, x.group_id{ppm_group}"));
        }
        Head::OpenPairs => {
            sql.push(" SELECT x.idx AS idx, x.a AS amount_cents, x.ppm AS ppm FROM (")
                .push(&inner_head)
                .append(&state)
                .push(&inner_tail)
                .push(") x WHERE x.is_open = 1");
        }
    }
    sql
}

/// The aggregate of every ask, grouped by `dim` (and stage probability when
/// `needs.by_probability`).
#[allow(clippy::too_many_arguments)]
pub async fn aggregate(
    db: &impl ConnectionTrait,
    asks: &[Ask],
    source: Source,
    needs: Needs,
    dim: Dimension,
    filter: &DealFilter,
    scope: DealScope,
) -> AppResult<Vec<AggRow>> {
    if asks.is_empty() {
        return Ok(Vec::new());
    }
    let sql = statement(
        Dialect::of(db),
        asks,
        source,
        needs,
        dim,
        filter,
        scope,
        Head::Aggregate,
    );
    Ok(
        AggRow::find_by_statement(sql.statement(db.get_database_backend()))
            .all(db)
            .await?,
    )
}

/// The open deals of each ask as (ask index, amount, probability): for
/// exact P10/P90, so only for asks known to have few open deals.
pub async fn open_pairs(
    db: &impl ConnectionTrait,
    asks: &[Ask],
    source: Source,
    filter: &DealFilter,
    scope: DealScope,
) -> AppResult<Vec<OpenPair>> {
    if asks.is_empty() {
        return Ok(Vec::new());
    }
    let needs = Needs {
        open: true,
        by_probability: true,
    };
    let sql = statement(
        Dialect::of(db),
        asks,
        source,
        needs,
        Dimension::None,
        filter,
        scope,
        Head::OpenPairs,
    );
    Ok(
        OpenPair::find_by_statement(sql.statement(db.get_database_backend()))
            .all(db)
            .await?,
    )
}

#[derive(FromQueryResult)]
struct IdxCycle {
    idx: i64,
    days: Option<i64>,
    deals: i64,
}

/// The average won cycle for many as-of days in one statement: per ask,
/// the won cycles of the deals won (as of its day) in the 365 days ending
/// with its as-of day (cycle fields of the asks are ignored). The
/// organisation's, or the filtered segment's: never narrowed to a caller's
/// scope, which limits which open deals are summed, not the method's
/// parameters (docs/design.md, Forecast calls).
pub async fn won_cycles(
    db: &impl ConnectionTrait,
    asks: &[Ask],
    source: Source,
    filter: &DealFilter,
) -> AppResult<Vec<WonCycle>> {
    if asks.is_empty() {
        return Ok(Vec::new());
    }
    let d = Dialect::of(db);
    let keep = format!(
        "({{t}}.status = '{won}' AND {{t}}.closed_at >= q.cyc_from AND {{t}}.closed_at < q.as_of_end)",
        won = DealStatus::Won.to_value()
    );
    let mut sql = Sql::new("WITH ");
    sql.append(&asks_relation(d, asks)).push(&format!(
        " SELECT deal.idx AS idx, SUM({days}) AS days, COUNT(*) AS deals FROM ",
        days = d.day_diff("deal.opened_at", "deal.closed_at"),
    ));
    sql.append(&deals_as_of(d, source, &keep, filter, DealScope::All))
        .push(" GROUP BY deal.idx");
    let rows = IdxCycle::find_by_statement(sql.statement(db.get_database_backend()))
        .all(db)
        .await?;
    let mut out = vec![WonCycle::default(); asks.len()];
    for r in rows {
        if let Some(slot) = usize::try_from(r.idx).ok().and_then(|i| out.get_mut(i)) {
            *slot = WonCycle {
                total_days: r.days.unwrap_or(0),
                deals: r.deals,
            };
        }
    }
    Ok(out)
}

#[derive(FromQueryResult)]
struct IdxCents {
    idx: i64,
    cents: SumCents,
}

/// Closed-won in each ask's period as the deals stand now (the actual a
/// backtest compares with).
pub async fn won_now(
    db: &impl ConnectionTrait,
    asks: &[Ask],
    filter: &DealFilter,
    scope: DealScope,
) -> AppResult<Vec<i128>> {
    if asks.is_empty() {
        return Ok(Vec::new());
    }
    let d = Dialect::of(db);
    let mut sql = Sql::new("WITH ");
    sql.append(&asks_relation(d, asks)).push(&format!(
        " SELECT q.idx AS idx, {cents} AS cents FROM q JOIN deal \
         ON deal.status = '{won}' AND deal.closed_at >= q.p_start AND deal.closed_at < q.p_end WHERE 1 = 1",
        cents = d.sum_cents("deal.amount_cents"),
        won = DealStatus::Won.to_value()
    ));
    filter.push_sql(&mut sql, scope, d);
    sql.push(" GROUP BY q.idx");
    let rows = IdxCents::find_by_statement(sql.statement(db.get_database_backend()))
        .all(db)
        .await?;
    let mut out = vec![0; asks.len()];
    for r in rows {
        if let Some(slot) = usize::try_from(r.idx).ok().and_then(|i| out.get_mut(i)) {
            *slot = r.cents.0;
        }
    }
    Ok(out)
}

/// Whether one ask over the current deals is answered from the rollups:
/// STAGE_WEIGHTED and HISTORICAL need only won and open measures of months
/// (SALES_CYCLE ages each open deal, an as-of day reads the history).
pub(crate) fn rollups_answer(
    asks: &[Ask],
    source: Source,
    needs: Needs,
    sales_cycle: bool,
    dim: Dimension,
    filter: &DealFilter,
) -> bool {
    asks.len() == 1
        && source == Source::Current
        && !sales_cycle
        && (needs.by_probability || !needs.open)
        && rollup::usable(filter, &[dim])
}

/// `won_cycles` of one ask from the rollups: the won measures of the 365
/// days ending with its as-of day (organisation-wide in the filter).
pub async fn won_cycle_from_rollups(
    db: &impl ConnectionTrait,
    ask: &Ask,
    filter: &DealFilter,
) -> AppResult<WonCycle> {
    let d = Dialect::of(db);
    let mut parts = rollup::Parts::new(d);
    parts.won(
        0,
        ask.as_of - Duration::days(CYCLE_WINDOW_DAYS - 1),
        ask.as_of + Duration::days(1),
    );
    let Some(rel) = parts.relation() else {
        return Ok(WonCycle::default());
    };
    let mut sql = Sql::new(format!(
        "SELECT CAST(0 AS BIGINT) AS idx, {} AS days, {} AS deals FROM ",
        d.sum_i64("deal.won_days"),
        d.sum_i64("deal.won")
    ));
    sql.append(&rel).push(" WHERE 1 = 1");
    filter.push_sql(&mut sql, DealScope::All, d);
    let row = IdxCycle::find_by_statement(sql.statement(db.get_database_backend()))
        .one(db)
        .await?;
    Ok(row
        .map(|r| WonCycle {
            total_days: r.days.unwrap_or(0),
            deals: r.deals,
        })
        .unwrap_or_default())
}

/// `aggregate` of one ask from the rollups (see `rollups_answer`): won in
/// the period up to the as-of day (tag 0), in the lookback (tag 1), and the
/// open deals expected in the period (tag 2; undated ones by the ask's won
/// cycle). The open amounts' squares and cubes (for approximate P10/P90)
/// are not in the cells: 0 here, see `open_moments`.
pub async fn aggregate_from_rollups(
    db: &impl ConnectionTrait,
    ask: &Ask,
    needs: Needs,
    dim: Dimension,
    filter: &DealFilter,
    scope: DealScope,
) -> AppResult<Vec<AggRow>> {
    let d = Dialect::of(db);
    let as_of_end = ask.as_of + Duration::days(1);
    let mut parts = rollup::Parts::new(d);
    parts.won(0, ask.period.start(), ask.period.end().min(as_of_end));
    parts.won(1, ask.lookback_start, ask.lookback_end.min(as_of_end));
    let days = ask.cycle.whole_days().map(|n| n.to_string());
    if needs.open {
        parts.open(
            2,
            ask.period.start(),
            ask.period.end(),
            days.as_deref().map(|n| (n, "")),
        );
    }
    let Some(rel) = parts.relation() else {
        return Ok(Vec::new());
    };
    let (ppm, stage_join, ppm_group) = if needs.by_probability {
        (
            "s.probability_ppm",
            " JOIN stage s ON s.id = deal.stage_id",
            ", s.probability_ppm",
        )
    } else {
        ("CAST(0 AS BIGINT)", "", "")
    };
    let float = match d {
        Dialect::Sqlite => "REAL",
        Dialect::Postgres => "DOUBLE PRECISION",
    };
    let key = dim.key_sql();
    let mut sql = Sql::new(format!(
        "SELECT CAST(0 AS BIGINT) AS idx, {key} AS group_id, {ppm} AS ppm, \
         {won_n} AS won_deals, {won_c} AS won_cents, {lb_n} AS lookback_deals, {lb_c} AS lookback_cents, \
         {open_n} AS open_deals, {open_c} AS open_cents, CAST(0 AS {float}) AS open_sq, \
         CAST(0 AS {float}) AS open_cube, {zero} AS full_cents, {zero} AS aged_cents_days FROM ",
        won_n = d.sum_i64("CASE WHEN deal.tag = 0 THEN deal.won ELSE 0 END"),
        won_c = rollup::sum_cents(d, "won_cents", Some("deal.tag = 0")),
        lb_n = d.sum_i64("CASE WHEN deal.tag = 1 THEN deal.won ELSE 0 END"),
        lb_c = rollup::sum_cents(d, "won_cents", Some("deal.tag = 1")),
        open_n = d.sum_i64("deal.open_deals"),
        open_c = rollup::sum_cents(d, "open_cents", None),
        zero = d.zero_cents(),
    ));
    sql.append(&rel)
        .push(&format!("{stage_join}{} WHERE 1 = 1", dim.join_sql()));
    filter.push_sql(&mut sql, scope, d);
    // A group of cells whose deals all left sums to nothing: the scan
    // never sees it.
    sql.push(&format!(
        " GROUP BY {key}{ppm_group} HAVING SUM(deal.won) <> 0 OR SUM(deal.open_deals) <> 0"
    ));
    Ok(
        AggRow::find_by_statement(sql.statement(db.get_database_backend()))
            .all(db)
            .await?,
    )
}

#[derive(FromQueryResult)]
struct Moments {
    group_id: Option<i64>,
    ppm: i64,
    open_sq: f64,
    open_cube: f64,
}

/// The squares and cubes of the open amounts of one ask per group and stage
/// probability, from the deals (the approximate P10/P90 of many open deals
/// needs them; the cells keep exact sums only), set into `rows` from
/// `aggregate_from_rollups`. Only the open deals expected in the period are
/// read: by their own date, or undated and dated by the ask's won cycle.
pub async fn open_moments(
    db: &impl ConnectionTrait,
    ask: &Ask,
    dim: Dimension,
    filter: &DealFilter,
    scope: DealScope,
    rows: &mut [AggRow],
) -> AppResult<()> {
    let d = Dialect::of(db);
    let float = match d {
        Dialect::Sqlite => "REAL",
        Dialect::Postgres => "DOUBLE PRECISION",
    };
    let key = dim.key_sql();
    // Two branches, each a range of idx_deal_open_expected read from the
    // index alone (an OR of the two made one bitmap scan of the heap). The
    // rollups' filters and groupings read only these columns of a deal.
    const COLUMNS: &str = "deal.owner_id, deal.territory_id, deal.stage_id, deal.amount_cents";
    let mut sql = Sql::new(format!(
        "SELECT {key} AS group_id, s.probability_ppm AS ppm, \
         CAST(COALESCE(SUM(CAST(deal.amount_cents AS {float}) * deal.amount_cents), 0) AS {float}) AS open_sq, \
         CAST(COALESCE(SUM(CAST(deal.amount_cents AS {float}) * deal.amount_cents * deal.amount_cents), 0) AS {float}) AS open_cube \
         FROM (SELECT {COLUMNS} FROM deal WHERE deal.status = 'OPEN' AND deal.expected_close_date >= "
    ));
    sql.bind(ask.period.start())
        .push(" AND deal.expected_close_date < ")
        .bind(ask.period.end());
    if let Some(days) = ask.cycle.whole_days() {
        let dated = match d {
            Dialect::Postgres => "((deal.opened_at) AT TIME ZONE 'UTC')::date + CAST(? AS INTEGER)",
            Dialect::Sqlite => "date(deal.opened_at, '+' || ? || ' days')",
        };
        sql.push(&format!(
            " UNION ALL SELECT {COLUMNS} FROM deal WHERE deal.status = 'OPEN' \
             AND deal.expected_close_date IS NULL AND "
        ))
        .push_with(dated, [days.into()])
        .push(" >= ")
        .bind(ask.period.start())
        .push(" AND ")
        .push_with(dated, [days.into()])
        .push(" < ")
        .bind(ask.period.end());
    }
    sql.push(&format!(
        ") deal JOIN stage s ON s.id = deal.stage_id{} WHERE 1 = 1",
        dim.join_sql()
    ));
    filter.push_sql(&mut sql, scope, d);
    sql.push(&format!(" GROUP BY {key}, s.probability_ppm"));
    let found = Moments::find_by_statement(sql.statement(db.get_database_backend()))
        .all(db)
        .await?;
    for m in found {
        if let Some(r) = rows
            .iter_mut()
            .find(|r| r.group_id == m.group_id && r.ppm == m.ppm)
        {
            r.open_sq = m.open_sq;
            r.open_cube = m.open_cube;
        }
    }
    Ok(())
}
