//! Activity metrics (docs/design.md, Leads and activities):
//! - activity counts per group (REP by default), kind and bucket (ISO week
//!   or month, UTC) of the activities done in the period;
//! - activities per won deal: over the deals won in the period, the
//!   activities logged on them (whenever they were logged), per deal.
use chrono::NaiveDate;
use sea_orm::{ActiveEnum, ConnectionTrait, FromQueryResult};

use entity::enums::ActivityKind;

use super::series::bucket_sql;
use crate::auth::Principal;
use crate::clock::start_of;
use crate::db::{Dialect, Sql};
use crate::domain::period::{Granularity, Period};
use crate::error::{AppError, AppResult};
use crate::service::access::METRIC_READERS;
use crate::service::deal_filter::DealFilter;
use crate::service::grouping::{self, Dimension, GroupKey};

/// At most this many rows (groups x kinds x buckets) per answer.
pub const MAX_ROWS: usize = 50_000;

#[derive(Debug, Clone, PartialEq)]
pub struct ActivityCountRow {
    pub key: GroupKey,
    pub kind: ActivityKind,
    /// First day of the bucket.
    pub bucket: NaiveDate,
    pub count: i64,
}

#[derive(FromQueryResult)]
struct CountAgg {
    group_id: Option<i64>,
    kind: String,
    bucket: NaiveDate,
    n: i64,
}

/// The group of an activity: its rep, the rep's manager or territory.
fn activity_group(dim: Dimension) -> AppResult<(&'static str, &'static str)> {
    Ok(match dim {
        Dimension::None => ("", "CAST(NULL AS BIGINT)"),
        Dimension::Rep => ("", "activity.rep_id"),
        Dimension::Manager => (" JOIN rep g_rep ON g_rep.id = activity.rep_id", "g_rep.manager_id"),
        Dimension::Territory => (" JOIN rep g_rep ON g_rep.id = activity.rep_id", "g_rep.territory_id"),
        other => {
            return Err(AppError::bad_input(format!(
                "groupBy: activity counts group by NONE, REP, MANAGER or TERRITORY (of the rep), not {other:?}"
            )))
        }
    })
}

/// One statement plus the labels; only non-zero rows.
pub async fn activity_counts(
    db: &impl ConnectionTrait,
    p: &Principal,
    period: &Period,
    granularity: Granularity,
    dim: Dimension,
) -> AppResult<Vec<ActivityCountRow>> {
    p.require(METRIC_READERS)?;
    if !matches!(granularity, Granularity::Week | Granularity::Month) {
        return Err(AppError::bad_input(
            "bucket: activity counts are bucketed by WEEK or MONTH",
        ));
    }
    let (join, key) = activity_group(dim)?;
    let d = Dialect::of(db);
    let bucket = bucket_sql(d, "activity.at", granularity);
    let mut sql = Sql::new(format!(
        "SELECT {key} AS group_id, activity.kind AS kind, {bucket} AS bucket, {n} AS n FROM activity{join} WHERE activity.at >= ",
        n = d.count("*"),
    ));
    sql.bind(start_of(period.start()))
        .push(" AND activity.at < ")
        .bind(start_of(period.end()));
    let (cond, values) = p.scope().rep_sql("activity.rep_id");
    sql.push(" AND ").push_with(&cond, values);
    sql.push(&format!(" GROUP BY {key}, activity.kind, {bucket}"));
    let rows = CountAgg::find_by_statement(sql.statement(db.get_database_backend()))
        .all(db)
        .await?;
    if rows.len() > MAX_ROWS {
        return Err(AppError::bad_input(format!(
            "the answer has {} rows, more than {MAX_ROWS}: ask for a shorter period or a coarser bucket",
            rows.len()
        )));
    }
    let labels = grouping::labels(db, dim, rows.iter().map(|r| r.group_id)).await?;
    let mut out = rows
        .into_iter()
        .map(|r| {
            Ok(ActivityCountRow {
                key: labels[&r.group_id].clone(),
                kind: ActivityKind::try_from_value(&r.kind)
                    .map_err(|_| AppError::internal(format!("activity kind {}", r.kind)))?,
                bucket: r.bucket,
                count: r.n,
            })
        })
        .collect::<AppResult<Vec<_>>>()?;
    out.sort_by(|a, b| {
        grouping_order(&a.key, &b.key)
            .then(a.bucket.cmp(&b.bucket))
            .then(a.kind.to_value().cmp(&b.kind.to_value()))
    });
    Ok(out)
}

/// The order of `grouping::sort_by_key`: labelled groups by label, the
/// group without a value last.
fn grouping_order(a: &GroupKey, b: &GroupKey) -> std::cmp::Ordering {
    (a.id.is_none(), &a.label, &a.id).cmp(&(b.id.is_none(), &b.label, &b.id))
}

#[derive(Debug, Clone, PartialEq)]
pub struct ActivitiesPerWonDealRow {
    pub key: GroupKey,
    pub won_deals: i64,
    pub activities: i64,
    pub calls: i64,
    pub emails: i64,
    pub meetings: i64,
    pub tasks: i64,
}

impl ActivitiesPerWonDealRow {
    pub fn per_deal(&self) -> Option<f64> {
        (self.won_deals > 0).then(|| self.activities as f64 / self.won_deals as f64)
    }
}

#[derive(FromQueryResult)]
struct WonAgg {
    group_id: Option<i64>,
    won_deals: i64,
    activities: i64,
    calls: i64,
    emails: i64,
    meetings: i64,
    tasks: i64,
}

/// One statement plus the labels: the won deals of the period (scope,
/// filter, grouping as for win rates), each with its activity counts read
/// through `idx_activity_deal_at`.
pub async fn activities_per_won_deal(
    db: &impl ConnectionTrait,
    p: &Principal,
    period: &Period,
    dim: Dimension,
    filter: &DealFilter,
) -> AppResult<Vec<ActivitiesPerWonDealRow>> {
    p.require(METRIC_READERS)?;
    let d = Dialect::of(db);
    let kind_count =
        |k: ActivityKind| d.count(&format!("CASE WHEN a.kind = '{}' THEN 1 END", k.to_value()));
    let won_in_period = |sql: &mut Sql| {
        sql.push(" WHERE deal.status = 'WON' AND deal.closed_at >= ")
            .bind(start_of(period.start()))
            .push(" AND deal.closed_at < ")
            .bind(start_of(period.end()));
        filter.push_sql(sql, p.scope(), d);
    };
    // The activities of the won deals, counted per deal through
    // idx_activity_deal_at, then summed per group.
    let mut sql = Sql::new(format!(
        "SELECT {key} AS group_id, {n} AS won_deals, {all} AS activities, {c} AS calls, {e} AS emails, \
         {m} AS meetings, {t} AS tasks FROM deal{join} LEFT JOIN (SELECT a.deal_id AS deal_id, {an} AS n, \
         {ac} AS calls, {ae} AS emails, {am} AS meetings, {at} AS tasks FROM activity a WHERE a.deal_id IN (SELECT deal.id FROM deal",
        key = dim.key_sql(),
        join = dim.join_sql(),
        n = d.count("*"),
        all = d.sum_i64("c.n"),
        c = d.sum_i64("c.calls"),
        e = d.sum_i64("c.emails"),
        m = d.sum_i64("c.meetings"),
        t = d.sum_i64("c.tasks"),
        an = d.count("*"),
        ac = kind_count(ActivityKind::Call),
        ae = kind_count(ActivityKind::Email),
        am = kind_count(ActivityKind::Meeting),
        at = kind_count(ActivityKind::Task),
    ));
    won_in_period(&mut sql);
    sql.push(") GROUP BY a.deal_id) c ON c.deal_id = deal.id");
    won_in_period(&mut sql);
    dim.push_group_by(&mut sql);
    let rows = WonAgg::find_by_statement(sql.statement(db.get_database_backend()))
        .all(db)
        .await?;
    let labels = grouping::labels(db, dim, rows.iter().map(|r| r.group_id)).await?;
    let mut out: Vec<ActivitiesPerWonDealRow> = rows
        .into_iter()
        .map(|r| ActivitiesPerWonDealRow {
            key: labels[&r.group_id].clone(),
            won_deals: r.won_deals,
            activities: r.activities,
            calls: r.calls,
            emails: r.emails,
            meetings: r.meetings,
            tasks: r.tasks,
        })
        .collect();
    grouping::sort_by_key(&mut out, |r| &r.key);
    Ok(out)
}
