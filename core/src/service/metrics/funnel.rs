//! The stage funnel (docs/design.md, Funnel): for each stage, in position
//! order, the deals that entered it in the period (a stage change to it
//! stamped in the period), how many of those later reached a stage further
//! on (a higher position that is not a LOST stage, so WON counts), how many
//! were lost from it (their next move after entering was to a LOST stage),
//! and the mean days spent in it.
//!
//! Days in stage: UTC calendar days from entering the stage to the next
//! stage change of the deal; a deal still in the stage counts up to today
//! (the time spent so far). Only OPEN stages have a time in stage: WON and
//! LOST are where deals end, so their avgDaysInStage is null, and so is
//! their conversionRate (nothing converts out of an end: null, not 0).
//!
//! One statement: LEAD/MAX windows over each deal's stage changes from the
//! period start on (earlier changes cannot follow an entry in the period),
//! then one GROUP BY per stage. A deal entering a stage twice in the
//! period counts once in entered/advanced/lostHere and once per stay in the
//! days.
use std::collections::HashMap;

use entity::enums::StageKind;
use entity::stage;
use sea_orm::{ConnectionTrait, EntityTrait, FromQueryResult, QueryOrder};

use crate::auth::Principal;
use crate::clock::{self, start_of};
use crate::db::{Dialect, Sql};
use crate::domain::metrics::{mean, ratio};
use crate::domain::period::Period;
use crate::error::AppResult;
use crate::service::access::{DealScope, METRIC_READERS};
use crate::service::deal_filter::DealFilter;

#[derive(Debug, Clone, PartialEq)]
pub struct FunnelStep {
    pub stage: stage::Model,
    pub entered: i64,
    pub advanced: i64,
    pub lost_here: i64,
    pub conversion_rate: Option<f64>,
    pub avg_days_in_stage: Option<f64>,
}

#[derive(FromQueryResult, Default, Clone)]
struct StepRow {
    stage_id: i64,
    entered: i64,
    advanced: i64,
    lost_here: i64,
    stay_days: i64,
    stays: i64,
}

/// Two statements: the stages and the funnel aggregate.
pub async fn funnel(
    db: &impl ConnectionTrait,
    p: &Principal,
    period: &Period,
    filter: &DealFilter,
) -> AppResult<Vec<FunnelStep>> {
    p.require(METRIC_READERS)?;
    let d = Dialect::of(db);
    let stages = stage::Entity::find()
        .order_by_asc(stage::Column::Position)
        .order_by_asc(stage::Column::Id)
        .all(db)
        .await?;
    let mut sql = Sql::new(
        "WITH ch AS (SELECT c.deal_id AS deal_id, c.to_stage_id AS stage_id, \
         c.changed_at AS changed_at, s.position AS position, \
         LEAD(c.changed_at) OVER w AS next_at, LEAD(s.kind) OVER w AS next_kind, \
         MAX(CASE WHEN s.kind <> 'LOST' THEN s.position END) OVER (PARTITION BY c.deal_id \
         ORDER BY c.changed_at, c.id ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS later_max \
         FROM deal_stage_change c JOIN stage s ON s.id = c.to_stage_id",
    );
    // The deal is joined only when a filter or the caller's scope needs it.
    let narrowed = *filter != DealFilter::default() || p.scope() != DealScope::All;
    if narrowed {
        sql.push(" JOIN deal ON deal.id = c.deal_id");
    }
    sql.push(" WHERE c.changed_at >= ")
        .bind(start_of(period.start()));
    if narrowed {
        filter.push_sql(&mut sql, p.scope(), d);
    }
    sql.push(
        " WINDOW w AS (PARTITION BY c.deal_id ORDER BY c.changed_at, c.id)) \
         SELECT ch.stage_id AS stage_id, COUNT(DISTINCT ch.deal_id) AS entered, \
         COUNT(DISTINCT CASE WHEN ch.later_max > ch.position THEN ch.deal_id END) AS advanced, \
         COUNT(DISTINCT CASE WHEN ch.next_kind = 'LOST' THEN ch.deal_id END) AS lost_here, ",
    );
    // The bound "now" stands in for the next change of deals still there.
    let stay = d.day_diff("ch.changed_at", "COALESCE(ch.next_at, ?)");
    let (before, after) = stay.split_once('?').unwrap_or((&stay, ""));
    let sum = d.sum_i64("\u{0}");
    let (sum_before, sum_after) = sum.split_once('\u{0}').unwrap_or((&sum, ""));
    sql.push(&format!("{sum_before}{before}"))
        .bind(clock::now())
        .push(&format!(
            "{after}{sum_after} AS stay_days, COUNT(*) AS stays FROM ch WHERE ch.changed_at >= "
        ))
        .bind(start_of(period.start()))
        .push(" AND ch.changed_at < ")
        .bind(start_of(period.end()))
        .push(" GROUP BY ch.stage_id");
    let rows: HashMap<i64, StepRow> =
        StepRow::find_by_statement(sql.statement(db.get_database_backend()))
            .all(db)
            .await?
            .into_iter()
            .map(|r| (r.stage_id, r))
            .collect();
    Ok(stages
        .into_iter()
        .map(|s| {
            let r = rows.get(&s.id).cloned().unwrap_or_default();
            let (avg_days, conversion) = if s.kind == StageKind::Open {
                (mean(r.stay_days, r.stays), ratio(r.advanced, r.entered))
            } else {
                (None, None)
            };
            FunnelStep {
                entered: r.entered,
                advanced: r.advanced,
                lost_here: r.lost_here,
                conversion_rate: conversion,
                avg_days_in_stage: avg_days,
                stage: s,
            }
        })
        .collect())
}
