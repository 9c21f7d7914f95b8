//! Deals as they stood at the end of a day, read from their revisions
//! (docs/design.md, Deal history): one derived table for any number of
//! as-of days at once.
//!
//! A deal whose current revision took effect before the as-of instant
//! (`deal.valid_from < q.as_of_end`) has not changed since, so its row is
//! its state then; only the deals changed since (found on
//! `idx_deal_valid_from`) look up the revision in force, per deal the last
//! one before the instant in (valid_from, version) order, one backward probe
//! of `idx_deal_revision_in_force`: a LATERAL subquery on PostgreSQL (a
//! correlated scalar subquery in the join condition made it hash the whole
//! revision table), and on SQLite, which has no LATERAL, a correlated
//! subquery returning the revision's id from the index, the row then
//! fetched by primary key. Deals opened later are not there at all.
//!
//! The derived table is aliased `deal` and has the deal's columns (with
//! their as-of values), so `DealFilter` and the group dimensions apply to
//! it unchanged, plus `idx`, the ask the row belongs to.
use crate::db::{Dialect, Sql};
use crate::service::access::DealScope;
use crate::service::deal_filter::DealFilter;

/// Where the state comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The deal table as it is: only valid for today (nothing is stamped
    /// later than the end of today).
    Current,
    /// The revisions in force at each ask's `as_of_end`.
    History,
}

/// Columns taken from the deal row in either branch: identity and when it
/// opened (neither ever changes), when it was last written, and the risk
/// facts (`DealFilter.riskSignals` is about now, as of any instant).
const FIXED: [&str; 8] = [
    "id",
    "opened_at",
    "updated_at",
    "external_id",
    "first_amount_cents",
    "pushed_at",
    "stage_entered_at",
    "last_activity_at",
];

/// Columns a revision carries: the deal's values as of the instant.
const REVISED: [&str; 14] = [
    "name",
    "amount_cents",
    "owner_id",
    "account_id",
    "territory_id",
    "stage_id",
    "status",
    "forecast_category",
    "source",
    "playbook_id",
    "expected_close_date",
    "closed_at",
    "lost_reason",
    "push_count",
];

fn columns(revised_from: &str) -> String {
    FIXED
        .iter()
        .map(|c| format!("deal.{c} AS {c}"))
        .chain(REVISED.iter().map(|c| format!("{revised_from}.{c} AS {c}")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `(...) deal`: per row of the relation `q` (columns `idx`, `as_of_end`),
/// every deal opened before `q.as_of_end` as it stood then, restricted to
/// `keep` (a condition over the state written with `{t}.` before each
/// column, applied inside both branches so it reaches the indexes), then to
/// the filter and the caller's scope (over the as-of owner, territory...).
pub fn deals_as_of(
    d: Dialect,
    source: Source,
    keep: &str,
    filter: &DealFilter,
    scope: DealScope,
) -> Sql {
    deals_as_of_over(d, "q", source, keep, filter, scope)
}

/// [`deals_as_of`] over the asks of relation `asks` (aliased `q` inside).
pub fn deals_as_of_over(
    d: Dialect,
    asks: &str,
    source: Source,
    keep: &str,
    filter: &DealFilter,
    scope: DealScope,
) -> Sql {
    let current = keep.replace("{t}", "deal");
    let mut sql = Sql::new(format!(
        "(SELECT * FROM (SELECT q.idx AS idx, {cols} FROM {asks} q JOIN deal ON deal.opened_at < q.as_of_end",
        cols = columns("deal")
    ));
    match source {
        Source::Current => {
            sql.push(&format!(" WHERE {current}"));
        }
        Source::History => {
            let revised = keep.replace("{t}", "r");
            let lookup = match d {
                Dialect::Postgres => {
                    "CROSS JOIN LATERAL (SELECT * FROM deal_revision r2 WHERE r2.deal_id = deal.id \
                     AND r2.valid_from < q.as_of_end ORDER BY r2.valid_from DESC, r2.version DESC LIMIT 1) r"
                }
                Dialect::Sqlite => {
                    "JOIN deal_revision r ON r.id = (SELECT r2.id FROM deal_revision r2 \
                     WHERE r2.deal_id = deal.id AND r2.valid_from < q.as_of_end \
                     ORDER BY r2.valid_from DESC, r2.version DESC LIMIT 1)"
                }
            };
            sql.push(&format!(
                " AND deal.valid_from < q.as_of_end WHERE {current} \
                 UNION ALL SELECT q.idx AS idx, {cols} FROM {asks} q JOIN deal \
                 ON deal.opened_at < q.as_of_end AND deal.valid_from >= q.as_of_end \
                 {lookup} WHERE {revised}",
                cols = columns("r")
            ));
        }
    }
    sql.push(") deal WHERE 1 = 1");
    filter.push_sql(&mut sql, scope, d);
    sql.push(") deal");
    sql
}
