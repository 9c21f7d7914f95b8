//! Lead, activity and lead-scoring reads and their metrics: parse,
//! authorise, call the service.
use crate::graphql::eager::EagerList;
use crate::graphql::errors::ResultExt as _;
use async_graphql::{Context, Object, Result, ID};
use chrono::{DateTime, Utc};

use crate::error::AppError;
use crate::graphql::enums::{ActivityOrder, Dimension, LeadOrder};
use crate::graphql::inputs::{filter_of, DealFilterInput};
use crate::graphql::lead_inputs::{lead_filter_of, ActivityFilterInput, LeadFilterInput};
use crate::graphql::scalars::{check_opt_instant, Period};
use crate::graphql::types::lead::{
    ActivitiesPerWonDealRow, Activity, ActivityConnection, ActivityCountRow, ActivityEdge, Lead,
    LeadConnection, LeadEdge, LeadFunnelRow, LeadResponseTimeRow, LeadScoreBand, LeadScoringRule,
};
use crate::graphql::types::metrics::Granularity;
use crate::graphql::{list_complexity, lookup_id, page_size, principal, read_db};
use crate::service;
use crate::service::access::METRIC_READERS;
use crate::service::lead::LEAD_READERS;
use crate::service::metrics::{activities, leads};

#[derive(Default)]
pub struct LeadQuery;

fn dim(d: Option<Dimension>) -> service::grouping::Dimension {
    d.map(Into::into).unwrap_or_default()
}

#[Object]
impl LeadQuery {
    /// A lead by id or by externalId; one outside the caller's scope is NOT_FOUND.
    async fn lead(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
        external_id: Option<String>,
    ) -> Result<Option<Lead>> {
        let p = principal(ctx)?;
        p.require(LEAD_READERS).extend()?;
        let db = read_db(ctx)?;
        let found = match (id, external_id) {
            (Some(id), None) => {
                let id = lookup_id(&id, "lead").extend()?;
                service::lead::get(db, p.scope(), id).await
            }
            (None, Some(ext)) => service::lead::get_by_external_id(db, p.scope(), &ext).await,
            _ => Err(AppError::bad_input("pass exactly one of id and externalId")),
        };
        Ok(Some(Lead(found.extend()?)))
    }

    /// Leads the caller may see, filtered and paged by cursor (orderBy UPDATED_ASC with filter.updatedSince is the sync feed).
    #[graphql(complexity = "list_complexity(first, 50, child_complexity)")]
    async fn leads(
        &self,
        ctx: &Context<'_>,
        filter: Option<LeadFilterInput>,
        order_by: Option<LeadOrder>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<LeadConnection> {
        let p = principal(ctx)?;
        p.require(LEAD_READERS).extend()?;
        let first = page_size(ctx, first, 50)?;
        let filter = lead_filter_of(&filter).extend()?;
        let order = order_by.map(Into::into).unwrap_or_default();
        let mut rows = service::lead::page(
            read_db(ctx)?,
            p.scope(),
            &filter,
            order,
            after.as_deref(),
            first + 1,
        )
        .await
        .extend()?;
        let has_next = rows.len() as u64 > first;
        rows.truncate(first as usize);
        Ok(LeadConnection {
            edges: rows
                .into_iter()
                .map(|l| LeadEdge {
                    cursor: LeadConnection::cursor(order, &l),
                    node: l,
                })
                .collect(),
            has_next,
            has_previous: after.is_some(),
            scope: p.scope(),
            filter,
        })
    }

    /// An activity by id; one outside the caller's scope is NOT_FOUND.
    async fn activity(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Activity>> {
        let p = principal(ctx)?;
        p.require(LEAD_READERS).extend()?;
        let id = lookup_id(&id, "activity").extend()?;
        Ok(Some(Activity(
            service::activity::get(read_db(ctx)?, p.scope(), id)
                .await
                .extend()?,
        )))
    }

    /// Activities the caller may see (by the rep who did them), filtered and paged by cursor.
    #[graphql(complexity = "list_complexity(first, 50, child_complexity)")]
    async fn activities(
        &self,
        ctx: &Context<'_>,
        filter: Option<ActivityFilterInput>,
        order_by: Option<ActivityOrder>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<ActivityConnection> {
        let p = principal(ctx)?;
        p.require(LEAD_READERS).extend()?;
        let first = page_size(ctx, first, 50)?;
        let filter = filter
            .as_ref()
            .map(|f| f.to_filter())
            .transpose()
            .extend()?
            .unwrap_or_default();
        let order = order_by.map(Into::into).unwrap_or_default();
        let mut rows = service::activity::page(
            read_db(ctx)?,
            p.scope(),
            &filter,
            order,
            after.as_deref(),
            first + 1,
        )
        .await
        .extend()?;
        let has_next = rows.len() as u64 > first;
        rows.truncate(first as usize);
        Ok(ActivityConnection {
            edges: rows
                .into_iter()
                .map(|a| ActivityEdge {
                    cursor: service::activity::cursor(order, &a),
                    node: a,
                })
                .collect(),
            has_next,
            has_previous: after.is_some(),
            scope: p.scope(),
            filter,
        })
    }

    /// The lead-scoring rules in force, in order.
    async fn lead_scoring_rules(&self, ctx: &Context<'_>) -> Result<EagerList<LeadScoringRule>> {
        let p = principal(ctx)?;
        p.require(LEAD_READERS).extend()?;
        Ok(service::lead_scoring::rules_in_force(read_db(ctx)?)
            .await
            .extend()?
            .into_iter()
            .map(LeadScoringRule)
            .collect())
    }

    /// Response time of the leads created in the period: median and p90 hours to the first response, and the share answered within slaHours (default 24).
    async fn lead_response_time(
        &self,
        ctx: &Context<'_>,
        period: Period,
        sla_hours: Option<f64>,
        group_by: Option<Dimension>,
        filter: Option<LeadFilterInput>,
    ) -> Result<EagerList<LeadResponseTimeRow>> {
        let p = principal(ctx)?;
        p.require(METRIC_READERS).extend()?;
        let _heavy = crate::work::heavy_permit();
        let filter = lead_filter_of(&filter).extend()?;
        let rows = leads::response_time(
            read_db(ctx)?,
            p,
            &period,
            sla_hours.unwrap_or(crate::service::metrics::health::DEFAULT_LEAD_SLA_HOURS),
            dim(group_by),
            &filter,
            crate::clock::now(),
        )
        .await
        .extend()?;
        Ok(rows.into_iter().map(LeadResponseTimeRow).collect())
    }

    /// The funnel of the leads created in the period: how many were worked, qualified, converted and disqualified by asOf (default now), with the rates between the steps.
    async fn lead_funnel(
        &self,
        ctx: &Context<'_>,
        period: Period,
        as_of: Option<DateTime<Utc>>,
        group_by: Option<Dimension>,
        filter: Option<LeadFilterInput>,
    ) -> Result<EagerList<LeadFunnelRow>> {
        let p = principal(ctx)?;
        p.require(METRIC_READERS).extend()?;
        let _heavy = crate::work::heavy_permit();
        let filter = lead_filter_of(&filter).extend()?;
        let as_of = check_opt_instant(as_of, "asOf")
            .extend()?
            .unwrap_or_else(crate::clock::now);
        let rows = leads::funnel(read_db(ctx)?, p, &period, as_of, dim(group_by), &filter)
            .await
            .extend()?;
        Ok(rows.into_iter().map(LeadFunnelRow).collect())
    }

    /// Per score band (bandWidth points, default 20) of the leads created in the period, how many converted: whether the scoring rules predict.
    async fn lead_score_calibration(
        &self,
        ctx: &Context<'_>,
        period: Period,
        band_width: Option<i32>,
    ) -> Result<EagerList<LeadScoreBand>> {
        let p = principal(ctx)?;
        p.require(METRIC_READERS).extend()?;
        let _heavy = crate::work::heavy_permit();
        let width = band_width.unwrap_or(20);
        let rows = leads::calibration(read_db(ctx)?, p, &period, width)
            .await
            .extend()?;
        Ok(rows.into_iter().map(|b| LeadScoreBand(b, width)).collect())
    }

    /// Activities done in the period per group (default REP), kind and bucket (WEEK or MONTH); only non-zero rows.
    async fn activity_counts(
        &self,
        ctx: &Context<'_>,
        period: Period,
        bucket: Granularity,
        group_by: Option<Dimension>,
    ) -> Result<EagerList<ActivityCountRow>> {
        let p = principal(ctx)?;
        p.require(METRIC_READERS).extend()?;
        let _heavy = crate::work::heavy_permit();
        let dim = group_by
            .map(Into::into)
            .unwrap_or(service::grouping::Dimension::Rep);
        let rows = activities::activity_counts(read_db(ctx)?, p, &period, bucket.into(), dim)
            .await
            .extend()?;
        Ok(rows.into_iter().map(ActivityCountRow).collect())
    }

    /// Over the deals won in the period, the activities logged on them, per deal (groupBy and filter as for winRates).
    async fn activities_per_won_deal(
        &self,
        ctx: &Context<'_>,
        period: Period,
        group_by: Option<Dimension>,
        filter: Option<DealFilterInput>,
    ) -> Result<EagerList<ActivitiesPerWonDealRow>> {
        let p = principal(ctx)?;
        p.require(METRIC_READERS).extend()?;
        let _heavy = crate::work::heavy_permit();
        let filter = filter_of(&filter).extend()?;
        let rows =
            activities::activities_per_won_deal(read_db(ctx)?, p, &period, dim(group_by), &filter)
                .await
                .extend()?;
        Ok(rows.into_iter().map(ActivitiesPerWonDealRow).collect())
    }
}
