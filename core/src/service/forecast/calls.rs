//! Forecast calls (docs/design.md, Forecast calls): the weekly call as a
//! roll-up of the rep hierarchy. Each node carries the rep's own CALL, the
//! latest PERSONAL adjustment of it, its personal number (adjustment, else
//! call, else the sum of the parts tiling the period, see
//! `domain::calls`), the latest TEAM adjustment, its roll-up, and over its
//! subtree closed-won, open pipeline expected in the period and quotas.
//!
//! - As of a day D (default today): the latest submissions made before the
//!   end of D, closed-won and pipeline as the deals stood then (the as-of
//!   state of `deal_state`).
//! - The tree: the caller's own node for REP and MANAGER, the organisation
//!   (a node without a rep whose children are the reps without a manager)
//!   for OPS, ADMIN and VIEWER; `rootRepId` narrows to a node in the
//!   caller's scope (elsewhere NOT_FOUND). Inactive reps appear only when
//!   something of theirs counts (a number, a deal, a quota) or someone
//!   below them does. Children are ordered by name.
//! - quota: every quota of the subtree lying inside the period (reps that
//!   do not carry a quota have none unless one was set for them); null when
//!   the subtree has none. pipeline: unweighted open amounts expected to
//!   close in the period (own date, else opened + the organisation's average
//!   won cycle as of D). attainment = rollup / quota.
//! - Statements, whatever the size or depth of the tree: the reps with
//!   their quotas, the latest submissions, the won cycle (concurrently),
//!   then closed-won and pipeline per rep and month: four. The tree is built
//!   in Rust from those rows.
//!
//! REP_SUBMITTED (`submitted_numbers`) uses the same rules: a rep's number
//! is its personal number, the total is the roll-up of the caller's tree.
use std::collections::{BTreeSet, HashMap};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sea_orm::{ActiveEnum, ConnectionTrait, FromQueryResult};

use entity::enums::{DealStatus, ForecastCategory, SubmissionKind, SubmissionScope};
use entity::{forecast_submission, rep};

use super::asof::{self, asks_relation, Ask, Source};
use super::check_as_of;
use super::submission::check_call_period;
use crate::auth::Principal;
use crate::clock;
use crate::db::{Dialect, Sql, SumCents};
use crate::domain::calls::{self as math, Personal, Submitted};
use crate::domain::metrics::ratio;
use crate::domain::money::from_cents;
use crate::domain::period::Period;
use crate::domain::sop::month_index;
use crate::error::{AppError, AppResult};
use crate::service::access::{DealScope, METRIC_READERS};
use crate::service::deal_filter::DealFilter;
use crate::service::deal_state::deals_as_of;
use crate::service::grouping::Dimension;

/// A forecastCalls question.
#[derive(Debug, Clone)]
pub struct CallsQuery {
    pub period: Period,
    /// Default COMMIT.
    pub category: Option<ForecastCategory>,
    /// None: today.
    pub as_of: Option<NaiveDate>,
    pub root_rep_id: Option<i64>,
}

/// One node of the tree; children are indexes into `CallTree::nodes`.
#[derive(Debug, Clone)]
pub struct CallNode {
    /// None for the organisation's root.
    pub rep: Option<rep::Model>,
    pub call: Option<forecast_submission::Model>,
    pub adjustment: Option<forecast_submission::Model>,
    pub personal: Option<Decimal>,
    pub from_parts: bool,
    pub team_adjustment: Option<forecast_submission::Model>,
    pub rollup: Decimal,
    pub closed_won: Decimal,
    pub quota: Option<Decimal>,
    pub pipeline: Decimal,
    pub attainment: Option<f64>,
    pub children: Vec<usize>,
}

/// The roll-up tree as a flat arena (no recursion to build, walk or drop
/// it, however deep the hierarchy).
#[derive(Debug, Clone)]
pub struct CallTree {
    pub period: Period,
    pub as_of: NaiveDate,
    pub category: ForecastCategory,
    pub nodes: Vec<CallNode>,
    pub root: usize,
}

/// A rep with its quotas inside the period.
struct RepRow {
    rep: rep::Model,
    quota_cents: i128,
    quota_n: i64,
}

#[derive(FromQueryResult)]
struct QuotaSums {
    quota_cents: SumCents,
    quota_n: i64,
}

/// The reps in `scope`, with the sum and count of their quotas lying inside
/// `quota_period` (zero without one). One statement.
async fn reps_with_quotas(
    db: &impl ConnectionTrait,
    scope: DealScope,
    quota_period: Option<&Period>,
) -> AppResult<Vec<RepRow>> {
    let d = Dialect::of(db);
    let mut sql = match quota_period {
        Some(p) => {
            let mut sql = Sql::new(format!(
                "SELECT rep.*, COALESCE(qs.cents, '0') AS quota_cents, COALESCE(qs.n, 0) AS quota_n \
                 FROM rep LEFT JOIN (SELECT quota.rep_id AS rep_id, {cents} AS cents, COUNT(*) AS n \
                 FROM quota WHERE quota.start_date >= ",
                cents = d.sum_cents("quota.amount_cents")
            ));
            sql.bind(p.start())
                .push(" AND quota.end_date <= ")
                .bind(p.end())
                .push(" GROUP BY quota.rep_id) qs ON qs.rep_id = rep.id WHERE ");
            sql
        }
        None => Sql::new(format!(
            "SELECT rep.*, {zero} AS quota_cents, CAST(0 AS BIGINT) AS quota_n FROM rep WHERE ",
            zero = d.zero_cents()
        )),
    };
    let (cond, values) = scope.rep_sql("rep.id");
    sql.push_with(&cond, values);
    let rows = db
        .query_all_raw(sql.statement(db.get_database_backend()))
        .await?;
    rows.iter()
        .map(|row| {
            let rep = rep::Model::from_query_result(row, "")?;
            let q = QuotaSums::from_query_result(row, "")?;
            Ok(RepRow {
                rep,
                quota_cents: q.quota_cents.0,
                quota_n: q.quota_n,
            })
        })
        .collect()
}

/// Per ask, the latest submission of each rep for each exact period inside
/// the ask's period, in `category`, made before the end of the ask's as-of
/// day: one per kind for PERSONAL numbers (the CALL and the ADJUSTMENT)
/// and one for TEAM. One statement for any number of asks.
async fn latest_submissions(
    db: &impl ConnectionTrait,
    asks: &[Ask],
    category: ForecastCategory,
    scope: DealScope,
) -> AppResult<Vec<(i64, forecast_submission::Model)>> {
    if asks.is_empty() {
        return Ok(Vec::new());
    }
    let d = Dialect::of(db);
    let team = SubmissionScope::Team.to_value();
    let mut sql = Sql::new("WITH ");
    sql.append(&asks_relation(d, asks)).push(&format!(
        " SELECT x.* FROM (SELECT q.idx AS idx, fs.*, ROW_NUMBER() OVER (PARTITION BY q.idx, fs.rep_id, \
         fs.period_start, fs.period_end, CASE WHEN fs.scope = '{team}' THEN '{team}' ELSE fs.kind END \
         ORDER BY fs.submitted_at DESC, fs.id DESC) AS rn \
         FROM q JOIN forecast_submission fs ON fs.period_start >= q.p_start_day \
         AND fs.period_end <= q.p_end_day AND fs.submitted_at < q.as_of_end WHERE fs.category = "
    ));
    sql.bind(category.to_value()).push(" AND ");
    let (cond, values) = scope.rep_sql("fs.rep_id");
    sql.push_with(&cond, values).push(") x WHERE x.rn = 1");
    let rows = db
        .query_all_raw(sql.statement(db.get_database_backend()))
        .await?;
    rows.iter()
        .map(|row| {
            let idx: i64 = row.try_get("", "idx")?;
            Ok((idx, forecast_submission::Model::from_query_result(row, "")?))
        })
        .collect()
}

/// Closed-won per ask, rep and month of closing, and (`open`) the open
/// amount expected to close in the ask's period per rep (`month_no` null).
#[derive(Debug, Clone, FromQueryResult)]
struct RepMonth {
    idx: i64,
    rep_id: i64,
    month_no: Option<i64>,
    won_cents: SumCents,
    open_cents: SumCents,
}

/// The expected close date of a state row: its own, else the UTC date of
/// opened_at plus the ask's average won cycle in whole days (none when
/// nothing was won), as the as-of forecast dates it.
fn expected_close_sql(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => {
            "COALESCE(deal.expected_close_date, date(deal.opened_at, '+' || q.cyc_days || ' days'))"
        }
        Dialect::Postgres => {
            "COALESCE(deal.expected_close_date, (deal.opened_at AT TIME ZONE 'UTC')::date + CAST(q.cyc_days AS INTEGER))"
        }
    }
}

/// One statement over the as-of state of every ask.
async fn rep_months(
    db: &impl ConnectionTrait,
    asks: &[Ask],
    source: Source,
    scope: DealScope,
    open: bool,
) -> AppResult<Vec<RepMonth>> {
    if asks.is_empty() {
        return Ok(Vec::new());
    }
    let d = Dialect::of(db);
    let (won_v, open_v) = (DealStatus::Won.to_value(), DealStatus::Open.to_value());
    let won = format!(
        "deal.status = '{won_v}' AND deal.closed_at >= q.p_start AND deal.closed_at < q.p_end"
    );
    let won_keep =
        format!("({{t}}.status = '{won_v}' AND {{t}}.closed_at >= q.p_start AND {{t}}.closed_at < q.as_of_end)");
    let (open_cond, keep) = if open {
        let exp = expected_close_sql(d);
        (
            format!("deal.status = '{open_v}' AND {exp} >= q.p_start_day AND {exp} < q.p_end_day"),
            format!("({{t}}.status = '{open_v}' OR {won_keep})"),
        )
    } else {
        ("1 = 0".to_owned(), won_keep)
    };
    let month = format!(
        "CASE WHEN {won} THEN {m} END",
        m = d.month_index_utc("deal.closed_at")
    );
    let mut sql = Sql::new("WITH ");
    sql.append(&asks_relation(d, asks)).push(&format!(
        " SELECT deal.idx AS idx, deal.owner_id AS rep_id, {month} AS month_no, {won_c} AS won_cents, \
         {open_c} AS open_cents FROM ",
        won_c = d.sum_cents(&format!("CASE WHEN {won} THEN deal.amount_cents ELSE 0 END")),
        open_c = d.sum_cents(&format!("CASE WHEN {open_cond} THEN deal.amount_cents ELSE 0 END")),
    ));
    sql.append(&deals_as_of(
        d,
        source,
        &keep,
        &DealFilter::default(),
        scope,
    ))
    .push(&format!(
        " JOIN q ON q.idx = deal.idx WHERE ({won}) OR ({open_cond}) \
             GROUP BY deal.idx, deal.owner_id, {month}"
    ));
    Ok(
        RepMonth::find_by_statement(sql.statement(db.get_database_backend()))
            .all(db)
            .await?,
    )
}

/// The latest submissions of one rep for one exact period.
#[derive(Debug, Clone, Default)]
struct Slot {
    call: Option<forecast_submission::Model>,
    adjustment: Option<forecast_submission::Model>,
    team: Option<forecast_submission::Model>,
}

/// What one ask knows, per rep.
#[derive(Default)]
struct Book {
    slots: HashMap<(i64, NaiveDate, NaiveDate), Slot>,
    /// Closed-won by (rep, month index).
    won: HashMap<(i64, i64), i128>,
    won_total: HashMap<i64, i128>,
    open: HashMap<i64, i128>,
    /// Reps with any submission in the ask (for pruning).
    submitters: BTreeSet<i64>,
}

impl Book {
    fn add_submission(&mut self, s: forecast_submission::Model) {
        self.submitters.insert(s.rep_id);
        let slot = self
            .slots
            .entry((s.rep_id, s.period_start, s.period_end))
            .or_default();
        match (s.scope, s.kind) {
            (SubmissionScope::Team, _) => slot.team = Some(s),
            (SubmissionScope::Personal, SubmissionKind::Call) => slot.call = Some(s),
            (SubmissionScope::Personal, SubmissionKind::Adjustment) => slot.adjustment = Some(s),
        }
    }

    fn add_month(&mut self, r: &RepMonth) {
        if let Some(m) = r.month_no {
            *self.won.entry((r.rep_id, m)).or_default() += r.won_cents.0;
            *self.won_total.entry(r.rep_id).or_default() += r.won_cents.0;
        }
        if r.open_cents.0 != 0 {
            *self.open.entry(r.rep_id).or_default() += r.open_cents.0;
        }
    }

    fn slot(&self, rep: i64, p: &Period) -> Option<&Slot> {
        self.slots.get(&(rep, p.start(), p.end()))
    }

    /// True when a rep submitted for a shorter period than the ask's (the
    /// parts need closed-won by month).
    fn has_parts(&self, p: &Period) -> bool {
        self.slots
            .keys()
            .any(|(_, s, e)| (*s, *e) != (p.start(), p.end()))
    }

    fn personal(&self, rep: i64, p: &Period) -> Option<Personal> {
        let submitted = |q: &Period| {
            self.slot(rep, q)
                .map(|s| Submitted {
                    call: s.call.as_ref().map(|m| m.amount_cents),
                    adjustment: s.adjustment.as_ref().map(|m| m.amount_cents),
                })
                .unwrap_or_default()
        };
        let won = |q: &Period| {
            (month_index(q.start())..month_index(q.end()))
                .map(|m| self.won.get(&(rep, m)).copied().unwrap_or(0))
                .sum()
        };
        math::personal(p, &submitted, &won)
    }

    fn team(&self, rep: i64, p: &Period) -> Option<i64> {
        self.slot(rep, p)
            .and_then(|s| s.team.as_ref())
            .map(|m| m.amount_cents)
    }
}

/// The hierarchy of the loaded reps: children by manager (ordered by name,
/// then id), and the top (reps whose manager is not loaded).
struct Hierarchy {
    index: HashMap<i64, usize>,
    children: Vec<Vec<usize>>,
    top: Vec<usize>,
}

fn hierarchy(reps: &[RepRow]) -> Hierarchy {
    let index: HashMap<i64, usize> = reps
        .iter()
        .enumerate()
        .map(|(i, r)| (r.rep.id, i))
        .collect();
    let mut order: Vec<usize> = (0..reps.len()).collect();
    order.sort_by(|a, b| {
        (&reps[*a].rep.name, reps[*a].rep.id).cmp(&(&reps[*b].rep.name, reps[*b].rep.id))
    });
    let mut children = vec![Vec::new(); reps.len()];
    let mut top = Vec::new();
    for i in order {
        match reps[i].rep.manager_id.and_then(|m| index.get(&m)) {
            Some(&parent) if parent != i => children[parent].push(i),
            _ => top.push(i),
        }
    }
    Hierarchy {
        index,
        children,
        top,
    }
}

/// Every node below `roots` (roots included), parents before children,
/// without recursion. A cycle (which writes refuse) cannot loop: each rep
/// is visited once.
fn preorder(h: &Hierarchy, roots: &[usize]) -> Vec<usize> {
    let mut seen = vec![false; h.children.len()];
    let mut out = Vec::new();
    let mut stack: Vec<usize> = roots.iter().rev().copied().collect();
    while let Some(i) = stack.pop() {
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        out.push(i);
        stack.extend(h.children[i].iter().rev().copied());
    }
    out
}

/// Rollups of every rep below `roots` (by rep index), bottom-up.
fn rollups(
    reps: &[RepRow],
    h: &Hierarchy,
    roots: &[usize],
    book: &Book,
    p: &Period,
) -> (HashMap<usize, i128>, HashMap<usize, Option<Personal>>) {
    let order = preorder(h, roots);
    let mut personal: HashMap<usize, Option<Personal>> = HashMap::with_capacity(order.len());
    let mut rolled: HashMap<usize, i128> = HashMap::with_capacity(order.len());
    for &i in order.iter().rev() {
        let id = reps[i].rep.id;
        let own = book.personal(id, p);
        let kids: Vec<i128> = h.children[i]
            .iter()
            .filter_map(|c| rolled.get(c).copied())
            .collect();
        rolled.insert(
            i,
            math::rollup(book.team(id, p), own.map(|n| n.cents), kids),
        );
        personal.insert(i, own);
    }
    (rolled, personal)
}

fn source_of(as_of: Option<NaiveDate>) -> Source {
    if as_of.is_some() {
        Source::History
    } else {
        Source::Current
    }
}

/// The roll-up tree of the caller (or of `rootRepId`).
pub async fn forecast_calls(
    db: &impl ConnectionTrait,
    actor: &Principal,
    q: CallsQuery,
) -> AppResult<CallTree> {
    actor.require(METRIC_READERS)?;
    check_call_period(&q.period, "period")?;
    if let Some(d) = q.as_of {
        check_as_of(d, "asOf")?;
    }
    let category = q.category.unwrap_or(ForecastCategory::Commit);
    let as_of = q.as_of.unwrap_or_else(clock::today);
    let source = source_of(q.as_of);
    let caller = actor.scope();
    // The statements read the subtree asked for when the caller sees the
    // whole organisation; a manager's team or a rep's own node already is
    // small, and the root is looked for in it.
    let scope = match (caller, q.root_rep_id) {
        (DealScope::All, Some(root)) => DealScope::Team(root),
        _ => caller,
    };
    let mut ask = Ask {
        as_of,
        period: q.period,
        lookback_start: q.period.start(),
        lookback_end: q.period.start(),
        cycle: Default::default(),
    };
    let everything = DealFilter::default();
    let (reps, subs, cycles) = futures::try_join!(
        reps_with_quotas(db, scope, Some(&q.period)),
        latest_submissions(db, std::slice::from_ref(&ask), category, scope),
        asof::won_cycles(db, std::slice::from_ref(&ask), source, &everything),
    )?;
    ask.cycle = cycles.into_iter().next().unwrap_or_default();
    let months = rep_months(db, std::slice::from_ref(&ask), source, scope, true).await?;

    let mut book = Book::default();
    for (_, s) in subs {
        book.add_submission(s);
    }
    for r in &months {
        book.add_month(r);
    }
    let h = hierarchy(&reps);
    let own = match caller {
        DealScope::All => None,
        DealScope::Owner(id) | DealScope::Team(id) => Some(id),
    };
    let root_rep = match q.root_rep_id.or(own) {
        Some(id) => Some(
            *h.index
                .get(&id)
                .ok_or_else(|| AppError::not_found("rep (rootRepId)"))?,
        ),
        None => None,
    };
    // A rep's own node shows only itself (its scope has no one below it).
    let roots: Vec<usize> = match root_rep {
        Some(i) => vec![i],
        None => h.top.clone(),
    };
    let (rolled, personal) = rollups(&reps, &h, &roots, &book, &q.period);

    // Subtree sums and pruning, bottom-up over the reps.
    let order = preorder(&h, &roots);
    let mut won = vec![0i128; reps.len()];
    let mut open = vec![0i128; reps.len()];
    let mut quota = vec![0i128; reps.len()];
    let mut quota_n = vec![0i64; reps.len()];
    let mut keep = vec![false; reps.len()];
    for &i in order.iter().rev() {
        let r = &reps[i];
        let id = r.rep.id;
        won[i] = book.won_total.get(&id).copied().unwrap_or(0);
        open[i] = book.open.get(&id).copied().unwrap_or(0);
        quota[i] = r.quota_cents;
        quota_n[i] = r.quota_n;
        let mut kept_child = false;
        for &c in &h.children[i] {
            won[i] += won[c];
            open[i] += open[c];
            quota[i] += quota[c];
            quota_n[i] += quota_n[c];
            kept_child |= keep[c];
        }
        keep[i] = r.rep.active
            || kept_child
            || book.submitters.contains(&id)
            || book.won_total.contains_key(&id)
            || book.open.contains_key(&id)
            || r.quota_n > 0;
    }

    let mut nodes: Vec<CallNode> = Vec::with_capacity(order.len() + 1);
    let mut node_of: HashMap<usize, usize> = HashMap::with_capacity(order.len());
    let node = |rep: Option<&RepRow>,
                rollup: i128,
                won: i128,
                open: i128,
                quota: i128,
                quota_n: i64,
                personal: Option<Personal>| {
        let slot = rep
            .and_then(|r| book.slot(r.rep.id, &q.period))
            .cloned()
            .unwrap_or_default();
        CallNode {
            rep: rep.map(|r| r.rep.clone()),
            call: slot.call,
            adjustment: slot.adjustment,
            personal: personal.map(|n| from_cents(n.cents)),
            from_parts: personal.is_some_and(|n| n.from_parts),
            team_adjustment: slot.team,
            rollup: from_cents(rollup),
            closed_won: from_cents(won),
            quota: (quota_n > 0).then(|| from_cents(quota)),
            pipeline: from_cents(open),
            attainment: if quota_n > 0 {
                ratio(rollup, quota)
            } else {
                None
            },
            children: Vec::new(),
        }
    };
    let root = match root_rep {
        Some(i) => {
            nodes.push(node(
                Some(&reps[i]),
                rolled[&i],
                won[i],
                open[i],
                quota[i],
                quota_n[i],
                personal[&i],
            ));
            node_of.insert(i, 0);
            0
        }
        None => {
            let sum = |v: &[i128]| roots.iter().map(|i| v[*i]).sum::<i128>();
            let rollup = roots.iter().map(|i| rolled[i]).sum::<i128>();
            let n: i64 = roots.iter().map(|i| quota_n[*i]).sum();
            nodes.push(node(
                None,
                rollup,
                sum(&won),
                sum(&open),
                sum(&quota),
                n,
                None,
            ));
            for &i in &roots {
                if keep[i] {
                    let at = nodes.len();
                    node_of.insert(i, at);
                    nodes[0].children.push(at);
                    nodes.push(node(
                        Some(&reps[i]),
                        rolled[&i],
                        won[i],
                        open[i],
                        quota[i],
                        quota_n[i],
                        personal[&i],
                    ));
                }
            }
            0
        }
    };
    // A REP's own node has no children: its scope holds no one else.
    if !matches!(caller, DealScope::Owner(_)) {
        for &i in &order {
            let Some(&parent) = node_of.get(&i) else {
                continue;
            };
            for &c in &h.children[i] {
                if keep[c] {
                    let at = nodes.len();
                    node_of.insert(c, at);
                    nodes[parent].children.push(at);
                    nodes.push(node(
                        Some(&reps[c]),
                        rolled[&c],
                        won[c],
                        open[c],
                        quota[c],
                        quota_n[c],
                        personal[&c],
                    ));
                }
            }
        }
    }
    Ok(CallTree {
        period: q.period,
        as_of,
        category,
        nodes,
        root,
    })
}

/// REP_SUBMITTED's numbers per ask: the rows per group (REP: each rep's
/// personal number; MANAGER: the personal numbers of its direct reports
/// summed; NONE: the total) and the total: the roll-up of the caller's tree
/// (the organisation for OPS/ADMIN/VIEWER, the manager's node, the rep's
/// own), or with `owners` the sum of those reps' personal numbers.
pub(crate) struct SubmittedNumbers {
    pub rows: Vec<(i64, Option<i64>, i128)>,
    pub totals: Vec<i128>,
}

pub(crate) async fn submitted_numbers(
    db: &impl ConnectionTrait,
    asks: &[Ask],
    source: Source,
    category: ForecastCategory,
    dim: Dimension,
    scope: DealScope,
    owners: Option<&[i64]>,
) -> AppResult<SubmittedNumbers> {
    let (reps, subs) = futures::try_join!(
        reps_with_quotas(db, scope, None),
        latest_submissions(db, asks, category, scope),
    )?;
    let mut books: Vec<Book> = asks.iter().map(|_| Book::default()).collect();
    for (idx, s) in subs {
        if let Some(b) = usize::try_from(idx).ok().and_then(|i| books.get_mut(i)) {
            b.add_submission(s);
        }
    }
    // Closed-won by month only when some part was called.
    if asks.iter().zip(&books).any(|(a, b)| b.has_parts(&a.period)) {
        for r in rep_months(db, asks, source, scope, false).await? {
            if let Some(b) = usize::try_from(r.idx).ok().and_then(|i| books.get_mut(i)) {
                b.add_month(&r);
            }
        }
    }
    let h = hierarchy(&reps);
    let roots: Vec<usize> = match scope {
        DealScope::All => h.top.clone(),
        DealScope::Owner(id) | DealScope::Team(id) => {
            h.index.get(&id).copied().into_iter().collect()
        }
    };
    let owners: Option<BTreeSet<i64>> = owners.map(|o| o.iter().copied().collect());
    let mut out = SubmittedNumbers {
        rows: Vec::new(),
        totals: Vec::with_capacity(asks.len()),
    };
    for (idx, (ask, book)) in asks.iter().zip(&books).enumerate() {
        let idx = idx as i64;
        let (rolled, personal) = rollups(&reps, &h, &roots, book, &ask.period);
        let counted = |i: &usize| owners.as_ref().is_none_or(|o| o.contains(&reps[*i].rep.id));
        let mut groups: HashMap<Option<i64>, i128> = HashMap::new();
        let mut own_sum = 0i128;
        for (i, n) in personal.iter().filter(|(i, _)| counted(i)) {
            let Some(n) = n else { continue };
            own_sum += n.cents;
            let key = match dim {
                Dimension::Rep => Some(reps[*i].rep.id),
                Dimension::Manager => reps[*i].rep.manager_id,
                _ => None,
            };
            *groups.entry(key).or_default() += n.cents;
        }
        let total = if owners.is_some() {
            own_sum
        } else {
            roots.iter().map(|i| rolled[i]).sum()
        };
        if matches!(dim, Dimension::Rep | Dimension::Manager) {
            out.rows
                .extend(groups.into_iter().map(|(k, c)| (idx, k, c)));
        } else {
            out.rows.push((idx, None, total));
        }
        out.totals.push(total);
    }
    Ok(out)
}
