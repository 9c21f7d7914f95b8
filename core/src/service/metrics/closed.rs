//! The won/lost aggregates behind win rates and the pipeline summary,
//! shared between the fields of one request: groupings asked together over
//! the same period, filter and scope are one scan (`GROUPING SETS` on
//! PostgreSQL) instead of one per field.
use futures::future::BoxFuture;
use sea_orm::{ConnectionTrait, FromQueryResult};

use super::{closed_by_key, closed_from, ClosedAgg, Cycle};
use crate::db::{Dialect, Sql, SumCents};
use crate::domain::period::Period;
use crate::error::AppResult;
use crate::service::access::DealScope;
use crate::service::deal_filter::DealFilter;
use crate::service::grouping::Dimension;

/// Where a metric gets its won/lost aggregates: the database directly
/// ([`Direct`]), or a request's batcher that gathers the groupings its
/// fields ask at the same time and answers them with [`closed_by_keys`].
pub trait ClosedSource: Send + Sync {
    fn closed_by_key<'a>(
        &'a self,
        scope: DealScope,
        filter: &'a DealFilter,
        period: &'a Period,
        dim: Dimension,
        cycle: Cycle,
    ) -> BoxFuture<'a, AppResult<Vec<ClosedAgg>>>;
}

/// Straight to the database, one statement per call.
pub struct Direct<'c, C>(pub &'c C);

impl<C: ConnectionTrait + Sync> ClosedSource for Direct<'_, C> {
    fn closed_by_key<'a>(
        &'a self,
        scope: DealScope,
        filter: &'a DealFilter,
        period: &'a Period,
        dim: Dimension,
        cycle: Cycle,
    ) -> BoxFuture<'a, AppResult<Vec<ClosedAgg>>> {
        Box::pin(closed_by_key(self.0, scope, filter, period, dim, cycle))
    }
}

#[derive(FromQueryResult)]
struct SetRow {
    grouping_set: i64,
    group_id: Option<i64>,
    won: i64,
    lost: i64,
    won_cents: SumCents,
    lost_cents: SumCents,
    won_days: i64,
    median_days: Option<f64>,
}

/// The aggregates of several groupings of the same deals, in the order of
/// `dims` (each as [`closed_by_key`] answers it; a median asked by one is
/// computed for all). On PostgreSQL one
/// statement scans the closed deals once, grouped by every dimension at
/// once (GROUPING SETS; NONE is the empty set); SQLite has no grouping
/// sets, so there each grouping is its own statement, run concurrently.
pub async fn closed_by_keys(
    db: &impl ConnectionTrait,
    scope: DealScope,
    filter: &DealFilter,
    period: &Period,
    dims: &[Dimension],
    cycle: Cycle,
) -> AppResult<Vec<Vec<ClosedAgg>>> {
    let mut distinct: Vec<Dimension> = Vec::with_capacity(dims.len());
    for dim in dims {
        if !distinct.contains(dim) {
            distinct.push(*dim);
        }
    }
    let d = Dialect::of(db);
    if distinct.len() < 2 || d == Dialect::Sqlite {
        let runs = distinct
            .iter()
            .map(|dim| closed_by_key(db, scope, filter, period, *dim, cycle));
        let answers = futures::future::try_join_all(runs).await?;
        let by_dim: Vec<(Dimension, Vec<ClosedAgg>)> = distinct.into_iter().zip(answers).collect();
        return Ok(dims
            .iter()
            .map(|dim| {
                by_dim
                    .iter()
                    .find(|(d, _)| d == dim)
                    .map(|(_, rows)| rows.clone())
                    .unwrap_or_default()
            })
            .collect());
    }
    // The grouped dimensions (NONE is the empty grouping set), each with
    // the GROUPING() bits of its own set: every other key's bit is 1.
    let keyed: Vec<Dimension> = distinct
        .iter()
        .copied()
        .filter(|d| *d != Dimension::None)
        .collect();
    let keys: Vec<String> = keyed.iter().map(|d| d.key_sql()).collect();
    let n = keyed.len();
    let all_bits: i64 = (1 << n) - 1;
    let bits = |i: usize| all_bits ^ (1 << (n - 1 - i));
    let grouping = format!("CAST(GROUPING({}) AS BIGINT)", keys.join(", "));
    let mut group_id = format!("CAST(CASE {grouping}");
    for (i, k) in keys.iter().enumerate() {
        group_id.push_str(&format!(" WHEN {} THEN {k}", bits(i)));
    }
    group_id.push_str(" END AS BIGINT)");
    let joins: String = keyed.iter().map(|d| d.join_sql()).collect();
    let src = closed_from(d, filter, &distinct, period, cycle);
    let mut sql = Sql::new(format!(
        "SELECT {grouping} AS grouping_set, {group_id} AS group_id, {} FROM ",
        src.columns,
    ));
    sql.append(&src.from)
        .push(&joins)
        .push(" WHERE ")
        .append(&src.cond);
    filter.push_sql(&mut sql, scope, d);
    let mut sets: Vec<String> = keys.iter().map(|k| format!("({k})")).collect();
    if distinct.contains(&Dimension::None) {
        sets.push("()".to_owned());
    }
    sql.push(&format!(" GROUP BY GROUPING SETS ({})", sets.join(", ")));
    let rows = SetRow::find_by_statement(sql.statement(db.get_database_backend()))
        .all(db)
        .await?;
    Ok(dims
        .iter()
        .map(|dim| {
            let set = match keyed.iter().position(|k| k == dim) {
                Some(i) => bits(i),
                None => all_bits,
            };
            rows.iter()
                .filter(|r| r.grouping_set == set)
                // As closed_by_key: NONE always answers its row; a group
                // only with closed deals.
                .filter(|r| *dim == Dimension::None || r.won + r.lost > 0)
                .map(|r| ClosedAgg {
                    group_id: r.group_id,
                    won: r.won,
                    lost: r.lost,
                    won_cents: r.won_cents,
                    lost_cents: r.lost_cents,
                    won_days: r.won_days,
                    median_days: r.median_days,
                })
                .collect()
        })
        .collect())
}
