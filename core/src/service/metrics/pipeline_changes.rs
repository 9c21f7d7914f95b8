//! pipelineChanges (docs/design.md, Deal history): the open pipeline
//! expected to close in a period as of the end of `from` and of `to`, and
//! every deal's move between them in exactly one bucket, so that
//! ending = starting + created + movedIn + increased - decreased - movedOut
//! - won - lost, exactly, for the whole and for every group row.
//!
//! Per deal (amounts unweighted, as of each day from its revisions):
//! a = its amount at `from` if it was then open and expected in the period,
//! else 0; b likewise at `to`. a > 0: WON a or LOST a when it closed so by
//! `to`, MOVED_OUT a when still open but no longer expected in the period,
//! else INCREASED or DECREASED by b - a (nothing when equal). a = 0 and
//! b > 0: CREATED b when opened after `from`, else MOVED_IN b.
//!
//! Membership and groups follow the deal as of `to` (the filter and the
//! caller's scope apply to that state): a deal reassigned in between counts
//! wholly in its new owner's row, starting included, so rows always add up.
//! The expected close date of a deal without one is opened_at + the
//! organisation's average won cycle as of each day. One statement for the
//! totals and rows, one for a bucket's deals.
use std::collections::HashMap;

use chrono::{Duration, NaiveDate};
use rust_decimal::Decimal;
use sea_orm::{
    ActiveEnum, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter,
};

use entity::deal;
use entity::enums::DealStatus;

use crate::auth::Principal;
use crate::clock;
use crate::db::{Dialect, Sql, SumCents};
use crate::domain::money::from_cents;
use crate::domain::period::Period;
use crate::error::{AppError, AppResult};
use crate::service::access::{DealScope, METRIC_READERS};
use crate::service::deal_filter::DealFilter;
use crate::service::deal_state::{deals_as_of_over, Source};
use crate::service::forecast::asof::{self, asks_relation, expected_close_sql, Ask};
use crate::service::grouping::{self, Dimension, GroupKey};

/// The seven buckets of a move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    Created,
    MovedIn,
    Increased,
    Decreased,
    MovedOut,
    Won,
    Lost,
}

impl Bucket {
    fn code(self) -> &'static str {
        match self {
            Bucket::Created => "CREATED",
            Bucket::MovedIn => "MOVED_IN",
            Bucket::Increased => "INCREASED",
            Bucket::Decreased => "DECREASED",
            Bucket::MovedOut => "MOVED_OUT",
            Bucket::Won => "WON",
            Bucket::Lost => "LOST",
        }
    }

    fn of_code(s: &str) -> Option<Self> {
        [
            Bucket::Created,
            Bucket::MovedIn,
            Bucket::Increased,
            Bucket::Decreased,
            Bucket::MovedOut,
            Bucket::Won,
            Bucket::Lost,
        ]
        .into_iter()
        .find(|b| b.code() == s)
    }
}

/// The walk from starting to ending (one group or the whole).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Walk {
    pub starting: Decimal,
    pub created: Decimal,
    pub moved_in: Decimal,
    pub increased: Decimal,
    pub decreased: Decimal,
    pub moved_out: Decimal,
    pub won: Decimal,
    pub lost: Decimal,
    pub ending: Decimal,
}

impl Walk {
    /// ending = starting + created + movedIn + increased - decreased -
    /// movedOut - won - lost.
    pub fn balances(&self) -> bool {
        self.starting + self.created + self.moved_in + self.increased
            - self.decreased
            - self.moved_out
            - self.won
            - self.lost
            == self.ending
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRow {
    pub key: GroupKey,
    pub walk: Walk,
}

/// The question, validated: its two days and what narrows it.
#[derive(Debug, Clone)]
pub struct Changes {
    pub period: Period,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub total: Walk,
    pub rows: Vec<ChangeRow>,
    pub(crate) asks: [Ask; 2],
    pub(crate) filter: DealFilter,
    pub(crate) scope: DealScope,
}

/// One deal's move.
#[derive(Debug, Clone, PartialEq)]
pub struct DealMove {
    pub deal: deal::Model,
    pub bucket: Bucket,
    pub amount_before: Decimal,
    pub amount_after: Decimal,
    pub expected_close_before: Option<NaiveDate>,
    pub expected_close_after: Option<NaiveDate>,
}

/// `from` defaults to `to` - 7 days and `to` to today; `to` may not be after
/// today, nor `from` after `to`.
pub fn days(from: Option<NaiveDate>, to: Option<NaiveDate>) -> AppResult<(NaiveDate, NaiveDate)> {
    let today = clock::today();
    let to = to.unwrap_or(today);
    if to > today {
        return Err(AppError::bad_input(format!(
            "to must not be after today ({today})"
        )));
    }
    let from = from.unwrap_or(to - Duration::days(7));
    if from > to {
        return Err(AppError::bad_input(format!(
            "from ({from}) must not be after to ({to})"
        )));
    }
    Ok((from, to))
}

/// The per-deal relation `k` (id, group_id, a_c, b_c, exp_before,
/// exp_after, bucket) after the asks relation `q`.
fn moves_sql(
    d: Dialect,
    asks: &[Ask; 2],
    dim: Dimension,
    filter: &DealFilter,
    scope: DealScope,
) -> Sql {
    let open = DealStatus::Open.to_value();
    let won = DealStatus::Won.to_value();
    let lost = DealStatus::Lost.to_value();
    let exp = expected_close_sql(d);
    let in_period = format!("{exp} >= q.p_start_day AND {exp} < q.p_end_day");
    let from_end = "(SELECT qf.as_of_end FROM qf)";
    let mut sql = Sql::new("WITH ");
    sql.append(&asks_relation(d, asks))
        .push(", qf AS (SELECT * FROM q WHERE idx = 0), qt AS (SELECT * FROM q WHERE idx = 1), a AS (")
        .push(&format!(
            "SELECT deal.id AS id, deal.amount_cents AS amount_cents, {exp} AS exp, \
             CASE WHEN {in_period} THEN 1 ELSE 0 END AS in_p FROM "
        ))
        .append(&deals_as_of_over(
            d,
            "qf",
            Source::History,
            &format!("{{t}}.status = '{open}'"),
            &DealFilter::default(),
            DealScope::All,
        ))
        .push(" JOIN q ON q.idx = deal.idx), b AS (")
        .push(&format!(
            "SELECT deal.*, {exp} AS exp, \
             CASE WHEN deal.status = '{open}' AND {in_period} THEN 1 ELSE 0 END AS in_p, \
             CASE WHEN deal.opened_at >= {from_end} THEN 1 ELSE 0 END AS is_new FROM "
        ))
        .append(&deals_as_of_over(
            d,
            "qt",
            Source::History,
            &format!("({{t}}.status = '{open}' OR {{t}}.closed_at >= {from_end})"),
            filter,
            scope,
        ))
        .push(&format!(
            " JOIN q ON q.idx = deal.idx), m AS (SELECT deal.id AS id, {key} AS group_id, \
             CASE WHEN a.in_p = 1 THEN a.amount_cents ELSE 0 END AS a_c, \
             CASE WHEN deal.in_p = 1 THEN deal.amount_cents ELSE 0 END AS b_c, \
             deal.in_p AS in_b, deal.status AS st, deal.is_new AS is_new, \
             a.exp AS exp_before, deal.exp AS exp_after \
             FROM b deal LEFT JOIN a ON a.id = deal.id{join} \
             WHERE (a.in_p = 1 AND a.amount_cents > 0) OR (deal.in_p = 1 AND deal.amount_cents > 0)), \
             k AS (SELECT m.*, CASE WHEN a_c > 0 THEN (CASE WHEN st = '{won}' THEN 'WON' \
             WHEN st = '{lost}' THEN 'LOST' WHEN in_b = 0 THEN 'MOVED_OUT' \
             WHEN b_c > a_c THEN 'INCREASED' WHEN b_c < a_c THEN 'DECREASED' ELSE NULL END) \
             WHEN is_new = 1 THEN 'CREATED' ELSE 'MOVED_IN' END AS bucket FROM m)",
            key = dim.key_sql(),
            join = dim.join_sql(),
        ));
    sql
}

#[derive(FromQueryResult)]
struct WalkRow {
    group_id: Option<i64>,
    starting: SumCents,
    created: SumCents,
    moved_in: SumCents,
    increased: SumCents,
    decreased: SumCents,
    moved_out: SumCents,
    won: SumCents,
    lost: SumCents,
    ending: SumCents,
}

impl WalkRow {
    fn walk(&self) -> Walk {
        Walk {
            starting: from_cents(self.starting.0),
            created: from_cents(self.created.0),
            moved_in: from_cents(self.moved_in.0),
            increased: from_cents(self.increased.0),
            decreased: from_cents(self.decreased.0),
            moved_out: from_cents(self.moved_out.0),
            won: from_cents(self.won.0),
            lost: from_cents(self.lost.0),
            ending: from_cents(self.ending.0),
        }
    }
}

/// The pipeline's walk from `from` to `to` for the caller's deals.
#[allow(clippy::too_many_arguments)]
pub async fn pipeline_changes(
    db: &impl ConnectionTrait,
    actor: &Principal,
    period: Period,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    dim: Dimension,
    filter: &DealFilter,
) -> AppResult<Changes> {
    actor.require(METRIC_READERS)?;
    crate::service::metric_definitions::check_group_by("pipelineChanges", None, dim)?;
    let (from, to) = days(from, to)?;
    let ask = |as_of| Ask {
        as_of,
        period,
        lookback_start: period.start(),
        lookback_end: period.start(),
        cycle: Default::default(),
    };
    let mut asks = [ask(from), ask(to)];
    // Deals without a close date are expected after the organisation's
    // average won cycle as of each day.
    let cycles = asof::won_cycles(db, &asks, Source::History, filter).await?;
    for (a, c) in asks.iter_mut().zip(cycles) {
        a.cycle = c;
    }
    let d = Dialect::of(db);
    let scope = actor.scope();
    let sum = |bucket: Option<&str>, expr: &str| match bucket {
        Some(b) => d.sum_cents(&format!("CASE WHEN bucket = '{b}' THEN {expr} ELSE 0 END")),
        None => d.sum_cents(expr),
    };
    let mut sql = moves_sql(d, &asks, dim, filter, scope);
    sql.push(&format!(
        " SELECT group_id, {starting} AS starting, {created} AS created, {moved_in} AS moved_in, \
         {increased} AS increased, {decreased} AS decreased, {moved_out} AS moved_out, \
         {won} AS won, {lost} AS lost, {ending} AS ending FROM k GROUP BY group_id",
        starting = sum(None, "a_c"),
        created = sum(Some("CREATED"), "b_c"),
        moved_in = sum(Some("MOVED_IN"), "b_c"),
        increased = sum(Some("INCREASED"), "b_c - a_c"),
        decreased = sum(Some("DECREASED"), "a_c - b_c"),
        moved_out = sum(Some("MOVED_OUT"), "a_c"),
        won = sum(Some("WON"), "a_c"),
        lost = sum(Some("LOST"), "a_c"),
        ending = sum(None, "b_c"),
    ));
    let rows = WalkRow::find_by_statement(sql.statement(db.get_database_backend()))
        .all(db)
        .await?;
    let mut total = WalkRow {
        group_id: None,
        starting: SumCents(0),
        created: SumCents(0),
        moved_in: SumCents(0),
        increased: SumCents(0),
        decreased: SumCents(0),
        moved_out: SumCents(0),
        won: SumCents(0),
        lost: SumCents(0),
        ending: SumCents(0),
    };
    for r in &rows {
        total.starting.0 += r.starting.0;
        total.created.0 += r.created.0;
        total.moved_in.0 += r.moved_in.0;
        total.increased.0 += r.increased.0;
        total.decreased.0 += r.decreased.0;
        total.moved_out.0 += r.moved_out.0;
        total.won.0 += r.won.0;
        total.lost.0 += r.lost.0;
        total.ending.0 += r.ending.0;
    }
    let mut by_key: HashMap<Option<i64>, Walk> =
        rows.iter().map(|r| (r.group_id, r.walk())).collect();
    if dim == Dimension::None {
        by_key.entry(None).or_default();
    }
    let labels = grouping::labels(db, dim, by_key.keys().copied()).await?;
    let mut out_rows = by_key
        .into_iter()
        .map(|(k, walk)| {
            Ok(ChangeRow {
                key: labels
                    .get(&k)
                    .cloned()
                    .ok_or_else(|| AppError::internal("group key without a label"))?,
                walk,
            })
        })
        .collect::<AppResult<Vec<_>>>()?;
    grouping::sort_by_key(&mut out_rows, |r| &r.key);
    Ok(Changes {
        period,
        from,
        to,
        total: total.walk(),
        rows: out_rows,
        asks,
        filter: filter.clone(),
        scope,
    })
}

#[derive(FromQueryResult)]
struct MoveRow {
    id: i64,
    a_c: i64,
    b_c: i64,
    exp_before: Option<NaiveDate>,
    exp_after: Option<NaiveDate>,
    bucket: String,
}

/// The deals of one bucket, largest change first (then by id), at most
/// `first`; deals the caller can no longer see today are left out.
pub async fn deals_in(
    db: &impl ConnectionTrait,
    changes: &Changes,
    bucket: Bucket,
    first: u64,
) -> AppResult<Vec<DealMove>> {
    let d = Dialect::of(db);
    let mut sql = moves_sql(
        d,
        &changes.asks,
        Dimension::None,
        &changes.filter,
        changes.scope,
    );
    sql.push(" SELECT id, a_c, b_c, exp_before, exp_after, bucket FROM k WHERE bucket = ")
        .bind(bucket.code())
        .push(
            " ORDER BY CASE WHEN bucket IN ('CREATED', 'MOVED_IN') THEN b_c \
         WHEN bucket = 'INCREASED' THEN b_c - a_c WHEN bucket = 'DECREASED' THEN a_c - b_c \
         ELSE a_c END DESC, id LIMIT ",
        )
        .bind(first as i64);
    let moves = MoveRow::find_by_statement(sql.statement(db.get_database_backend()))
        .all(db)
        .await?;
    if moves.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = deal::Entity::find().filter(deal::Column::Id.is_in(moves.iter().map(|m| m.id)));
    if let Some(c) = changes
        .scope
        .rep_condition("deal.owner_id", db.get_database_backend())
    {
        q = q.filter(c);
    }
    let mut deals: HashMap<i64, deal::Model> =
        q.all(db).await?.into_iter().map(|d| (d.id, d)).collect();
    Ok(moves
        .into_iter()
        .filter_map(|m| {
            Some(DealMove {
                deal: deals.remove(&m.id)?,
                bucket: Bucket::of_code(&m.bucket)?,
                amount_before: from_cents(m.a_c),
                amount_after: from_cents(m.b_c),
                expected_close_before: m.exp_before,
                expected_close_after: m.exp_after,
            })
        })
        .collect())
}
