//! Leads, activities, lead scoring and their metrics (docs/design.md, Leads
//! and activities). Relations load through DataLoaders.
use crate::graphql::eager::{Eager, EagerList, ReadyFields};
use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};

use entity::{account, activity, lead, lead_scoring_rule, lead_status_change, rep, territory};

use super::deal::{Deal, PageInfo};
use super::grouping::GroupKey;
use super::org::{Account, Rep, Territory};
use crate::error::AppError;
use crate::graphql::enums::{
    ActivityKind, LeadScoringField, LeadScoringOperator, LeadStatus, Segment,
};
use crate::graphql::errors::Extend as _;
use crate::graphql::lead_loaders::{ActivityParent, DealsInScope, LeadsInScope, RecentActivities};
use crate::graphql::loaders::{load_by_id, load_children, LeadStatusHistory};
use crate::graphql::scalars::Date;
use crate::service::lead_scoring::{self, RuleField, RuleOperator};
use crate::service::metrics::{activities, leads};
use crate::service::pagination::encode_time_cursor;

async fn scoped_deal(ctx: &Context<'_>, id: Option<i64>) -> Result<Option<Deal>> {
    let Some(id) = id else { return Ok(None) };
    Ok(ctx
        .data::<DataLoader<DealsInScope>>()?
        .load_one(id)
        .await
        .map_err(|e| (*e).clone().extend())?
        .map(Deal))
}

async fn scoped_lead(ctx: &Context<'_>, id: Option<i64>) -> Result<Option<Lead>> {
    let Some(id) = id else { return Ok(None) };
    Ok(ctx
        .data::<DataLoader<LeadsInScope>>()?
        .load_one(id)
        .await
        .map_err(|e| (*e).clone().extend())?
        .map(Lead))
}

pub async fn recent_activities(
    ctx: &Context<'_>,
    parent: ActivityParent,
    first: Option<i32>,
) -> Result<EagerList<Activity>> {
    let limit = crate::graphql::page_size(ctx, first, 10)?;
    Ok(ctx
        .data::<DataLoader<RecentActivities>>()?
        .load_one((parent, limit))
        .await
        .map_err(|e| (*e).clone().extend())?
        .unwrap_or_default()
        .into_iter()
        .map(Activity)
        .collect())
}

pub struct Lead(pub lead::Model);

impl ReadyFields for Lead {}

#[Object]
impl Lead {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn external_id(&self) -> Option<&str> {
        self.0.external_id.as_deref()
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn company(&self) -> Option<&str> {
        self.0.company.as_deref()
    }
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    async fn title(&self) -> Option<&str> {
        self.0.title.as_deref()
    }
    async fn source(&self) -> Option<&str> {
        self.0.source.as_deref()
    }
    async fn owner(&self, ctx: &Context<'_>) -> Result<Rep> {
        load_by_id::<rep::Entity>(ctx, self.0.owner_id)
            .await?
            .map(Rep)
            .ok_or_else(|| AppError::internal("lead without an owner").extend())
    }
    async fn territory(&self, ctx: &Context<'_>) -> Result<Option<Territory>> {
        match self.0.territory_id {
            None => Ok(None),
            Some(id) => Ok(load_by_id::<territory::Entity>(ctx, id)
                .await?
                .map(Territory)),
        }
    }
    async fn segment(&self) -> Option<Segment> {
        self.0.segment.map(Into::into)
    }
    async fn industry(&self) -> Option<&str> {
        self.0.industry.as_deref()
    }
    async fn status(&self) -> LeadStatus {
        self.0.status.into()
    }
    async fn disqualified_reason(&self) -> Option<&str> {
        self.0.disqualified_reason.as_deref()
    }
    /// When the lead came in.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// The first activity on the lead, unless set explicitly.
    async fn first_response_at(&self) -> Option<DateTime<Utc>> {
        self.0.first_response_at
    }
    /// Hours from createdAt to firstResponseAt (2 decimals); null until answered.
    async fn response_hours(&self) -> Option<f64> {
        self.0.first_response_at.map(|f| {
            let secs = (f - self.0.created_at).num_seconds() as f64;
            (secs / 3600.0 * 100.0).round() / 100.0
        })
    }
    async fn worked_at(&self) -> Option<DateTime<Utc>> {
        self.0.worked_at
    }
    async fn qualified_at(&self) -> Option<DateTime<Utc>> {
        self.0.qualified_at
    }
    async fn converted_at(&self) -> Option<DateTime<Utc>> {
        self.0.converted_at
    }
    async fn disqualified_at(&self) -> Option<DateTime<Utc>> {
        self.0.disqualified_at
    }
    /// The deal the lead became (null when it is outside the caller's scope).
    async fn deal(&self, ctx: &Context<'_>) -> Result<Option<Deal>> {
        scoped_deal(ctx, self.0.deal_id).await
    }
    async fn account(&self, ctx: &Context<'_>) -> Result<Option<Account>> {
        match self.0.account_id {
            None => Ok(None),
            Some(id) => Ok(load_by_id::<account::Entity>(ctx, id).await?.map(Account)),
        }
    }
    /// 0..100: the points of the scoring rules it matched, clamped.
    async fn score(&self) -> i32 {
        self.0.score
    }
    /// The rules that gave the score (retired ones included when the lead was scored before they were replaced).
    async fn score_rules(&self, ctx: &Context<'_>) -> Result<EagerList<LeadScoringRule>> {
        let loader =
            ctx.data::<crate::graphql::loaders::ByIdLoader<lead_scoring_rule::Entity>>()?;
        let ids = lead_scoring::rule_ids(&self.0.score_rule_ids);
        let found = loader
            .load_many(ids.iter().copied())
            .await
            .map_err(|e| AppError::from((*e).clone()).extend())?;
        Ok(ids
            .iter()
            .filter_map(|i| found.get(i).cloned())
            .map(LeadScoringRule)
            .collect())
    }
    /// Every status change, oldest first.
    async fn status_history(&self, ctx: &Context<'_>) -> Result<EagerList<LeadStatusChange>> {
        Ok(load_children::<LeadStatusHistory>(ctx, self.0.id)
            .await?
            .into_iter()
            .map(LeadStatusChange)
            .collect())
    }
    /// The latest activities on the lead, newest first (first defaults to 10).
    #[graphql(complexity = "crate::graphql::list_complexity(first, 10, child_complexity)")]
    async fn activities(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
    ) -> Result<EagerList<Activity>> {
        recent_activities(ctx, ActivityParent::Lead(self.0.id), first).await
    }
    /// Incremented on every change; pass it back as expectedVersion.
    async fn version(&self) -> i32 {
        self.0.version
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

pub struct LeadStatusChange(pub lead_status_change::Model);

impl ReadyFields for LeadStatusChange {}

#[Object]
impl LeadStatusChange {
    async fn from(&self) -> Option<LeadStatus> {
        self.0.from_status.map(Into::into)
    }
    async fn to(&self) -> LeadStatus {
        self.0.to_status.into()
    }
    async fn changed_at(&self) -> DateTime<Utc> {
        self.0.changed_at
    }
    async fn actor(&self) -> Option<&str> {
        self.0.actor.as_deref()
    }
}

pub struct LeadScoringRule(pub lead_scoring_rule::Model);

impl ReadyFields for LeadScoringRule {}

#[Object]
impl LeadScoringRule {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn field(&self) -> Result<LeadScoringField> {
        RuleField::parse(&self.0.field)
            .map(Into::into)
            .ok_or_else(|| AppError::internal("a stored rule with an unknown field").extend())
    }
    async fn operator(&self) -> Result<LeadScoringOperator> {
        RuleOperator::parse(&self.0.operator)
            .map(Into::into)
            .ok_or_else(|| AppError::internal("a stored rule with an unknown operator").extend())
    }
    /// Lower-cased; empty for IS_SET and IS_NOT_SET.
    async fn value(&self) -> &str {
        &self.0.value
    }
    async fn points(&self) -> i32 {
        self.0.points
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    /// When a new set of rules replaced it (null: in force).
    async fn retired_at(&self) -> Option<DateTime<Utc>> {
        self.0.retired_at
    }
}

pub struct LeadEdge {
    pub node: lead::Model,
    pub cursor: String,
}

impl ReadyFields for LeadEdge {}

#[Object]
impl LeadEdge {
    async fn node(&self) -> Lead {
        Lead(self.node.clone())
    }
    async fn cursor(&self) -> &str {
        &self.cursor
    }
}

/// A page of leads; totalCount counts the whole filtered set and is only computed when selected.
pub struct LeadConnection {
    pub edges: Vec<LeadEdge>,
    pub has_next: bool,
    pub has_previous: bool,
    pub scope: crate::service::access::DealScope,
    pub filter: crate::service::lead::LeadFilter,
}

impl LeadConnection {
    pub fn cursor(order: crate::service::lead::LeadOrder, l: &lead::Model) -> String {
        use crate::service::lead::{LeadOrder, LIST};
        match order {
            LeadOrder::NewestFirst => crate::service::pagination::encode_id_cursor(LIST, l.id),
            LeadOrder::UpdatedAsc => encode_time_cursor(LIST, l.updated_at, l.id),
        }
    }
}

#[Object]
impl LeadConnection {
    async fn edges(&self) -> EagerList<LeadEdge> {
        self.edges
            .iter()
            .map(|e| LeadEdge {
                node: e.node.clone(),
                cursor: e.cursor.clone(),
            })
            .collect()
    }
    async fn nodes(&self) -> EagerList<Lead> {
        self.edges.iter().map(|e| Lead(e.node.clone())).collect()
    }
    async fn page_info(&self) -> PageInfo {
        PageInfo {
            has_previous_page: self.has_previous,
            has_next_page: self.has_next,
            start_cursor: self.edges.first().map(|e| e.cursor.clone()),
            end_cursor: self.edges.last().map(|e| e.cursor.clone()),
        }
    }
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i64> {
        crate::service::lead::count(crate::graphql::read_db(ctx)?, self.scope, &self.filter)
            .await
            .map_err(|e| e.extend())
    }
}

pub struct Activity(pub activity::Model);

impl ReadyFields for Activity {}

#[Object]
impl Activity {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn external_id(&self) -> Option<&str> {
        self.0.external_id.as_deref()
    }
    async fn kind(&self) -> ActivityKind {
        self.0.kind.into()
    }
    async fn rep(&self, ctx: &Context<'_>) -> Result<Rep> {
        load_by_id::<rep::Entity>(ctx, self.0.rep_id)
            .await?
            .map(Rep)
            .ok_or_else(|| AppError::internal("activity without a rep").extend())
    }
    /// When it happened.
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
    /// The lead it was on (null when none, or outside the caller's scope).
    async fn lead(&self, ctx: &Context<'_>) -> Result<Option<Lead>> {
        scoped_lead(ctx, self.0.lead_id).await
    }
    /// The deal it was on (null when none, or outside the caller's scope).
    async fn deal(&self, ctx: &Context<'_>) -> Result<Option<Deal>> {
        scoped_deal(ctx, self.0.deal_id).await
    }
    async fn account(&self, ctx: &Context<'_>) -> Result<Option<Account>> {
        match self.0.account_id {
            None => Ok(None),
            Some(id) => Ok(load_by_id::<account::Entity>(ctx, id).await?.map(Account)),
        }
    }
    async fn subject(&self) -> Option<&str> {
        self.0.subject.as_deref()
    }
    async fn outcome(&self) -> Option<&str> {
        self.0.outcome.as_deref()
    }
    async fn duration_minutes(&self) -> Option<i32> {
        self.0.duration_minutes
    }
    async fn version(&self) -> i32 {
        self.0.version
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

pub struct ActivityEdge {
    pub node: activity::Model,
    pub cursor: String,
}

impl ReadyFields for ActivityEdge {}

#[Object]
impl ActivityEdge {
    async fn node(&self) -> Activity {
        Activity(self.node.clone())
    }
    async fn cursor(&self) -> &str {
        &self.cursor
    }
}

/// A page of activities; totalCount counts the whole filtered set and is only computed when selected.
pub struct ActivityConnection {
    pub edges: Vec<ActivityEdge>,
    pub has_next: bool,
    pub has_previous: bool,
    pub scope: crate::service::access::DealScope,
    pub filter: crate::service::activity::ActivityFilter,
}

#[Object]
impl ActivityConnection {
    async fn edges(&self) -> EagerList<ActivityEdge> {
        self.edges
            .iter()
            .map(|e| ActivityEdge {
                node: e.node.clone(),
                cursor: e.cursor.clone(),
            })
            .collect()
    }
    async fn nodes(&self) -> EagerList<Activity> {
        self.edges
            .iter()
            .map(|e| Activity(e.node.clone()))
            .collect()
    }
    async fn page_info(&self) -> PageInfo {
        PageInfo {
            has_previous_page: self.has_previous,
            has_next_page: self.has_next,
            start_cursor: self.edges.first().map(|e| e.cursor.clone()),
            end_cursor: self.edges.last().map(|e| e.cursor.clone()),
        }
    }
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i64> {
        crate::service::activity::count(crate::graphql::read_db(ctx)?, self.scope, &self.filter)
            .await
            .map_err(|e| e.extend())
    }
}

#[derive(SimpleObject)]
pub struct UpsertLeadPayload {
    pub lead: Lead,
    pub created: bool,
    pub updated: bool,
    /// The lead already matched the input: nothing was written.
    pub unchanged: bool,
}

#[derive(SimpleObject)]
pub struct UpsertActivityPayload {
    pub activity: Activity,
    pub created: bool,
    pub updated: bool,
    /// The activity already matched the input: nothing was written.
    pub unchanged: bool,
}

#[derive(SimpleObject)]
pub struct ConvertLeadPayload {
    pub lead: Lead,
    pub deal: Deal,
    /// The account created for the deal (createAccount), else null.
    pub account: Option<Account>,
}

#[derive(SimpleObject)]
pub struct SetLeadScoringRulesPayload {
    /// The rules now in force, in order.
    pub rules: Vec<LeadScoringRule>,
    /// Open leads (NEW, WORKING, QUALIFIED) whose score changed.
    pub rescored_leads: i64,
}

pub struct LeadResponseTimeRow(pub leads::ResponseTimeRow);

impl ReadyFields for LeadResponseTimeRow {}

#[Object]
impl LeadResponseTimeRow {
    async fn key(&self) -> Eager<GroupKey> {
        Eager(GroupKey(self.0.key.clone()))
    }
    /// Leads created in the period.
    async fn leads(&self) -> i64 {
        self.0.leads
    }
    /// Of those, answered.
    async fn responded(&self) -> i64 {
        self.0.responded
    }
    /// Median hours from created to first response over the answered leads (2 decimals).
    async fn median_hours(&self) -> Option<f64> {
        self.0.median_hours
    }
    /// 90th percentile of the same (linear interpolation, as percentile_cont).
    async fn p90_hours(&self) -> Option<f64> {
        self.0.p90_hours
    }
    /// Answered within slaHours.
    async fn within_sla(&self) -> i64 {
        self.0.within_sla
    }
    /// Answered, or created at least slaHours ago: the leads the SLA applies to so far.
    async fn due(&self) -> i64 {
        self.0.due
    }
    /// withinSla / due; null when none is due.
    async fn within_sla_share(&self) -> Option<f64> {
        self.0.within_sla_share
    }
}

pub struct LeadFunnelRow(pub leads::LeadFunnelRow);

impl ReadyFields for LeadFunnelRow {}

#[Object]
impl LeadFunnelRow {
    async fn key(&self) -> Eager<GroupKey> {
        Eager(GroupKey(self.0.key.clone()))
    }
    /// Leads created in the period (up to asOf).
    async fn created(&self) -> i64 {
        self.0.created
    }
    /// Of those, worked (a first response or a status move) by asOf.
    async fn worked(&self) -> i64 {
        self.0.worked
    }
    async fn qualified(&self) -> i64 {
        self.0.qualified
    }
    async fn converted(&self) -> i64 {
        self.0.converted
    }
    async fn disqualified(&self) -> i64 {
        self.0.disqualified
    }
    /// worked / created
    async fn worked_rate(&self) -> Option<f64> {
        self.0.worked_rate()
    }
    /// qualified / worked (marketing- to sales-qualified)
    async fn qualified_rate(&self) -> Option<f64> {
        self.0.qualified_rate()
    }
    /// converted / qualified
    async fn converted_rate(&self) -> Option<f64> {
        self.0.converted_rate()
    }
    /// converted / created
    async fn overall_rate(&self) -> Option<f64> {
        self.0.overall_rate()
    }
    /// disqualified / created
    async fn disqualified_rate(&self) -> Option<f64> {
        self.0.disqualified_rate()
    }
}

pub struct LeadScoreBand(pub lead_scoring::Band, pub i32);

impl ReadyFields for LeadScoreBand {}

#[Object]
impl LeadScoreBand {
    /// Lowest score of the band.
    async fn low(&self) -> i32 {
        self.0.low
    }
    /// Highest score of the band (the last band ends at 100).
    async fn high(&self) -> i32 {
        if self.0.low + self.1 >= lead_scoring::MAX_SCORE {
            lead_scoring::MAX_SCORE
        } else {
            self.0.low + self.1 - 1
        }
    }
    /// Leads created in the period with a score in the band.
    async fn leads(&self) -> i64 {
        self.0.leads
    }
    async fn converted(&self) -> i64 {
        self.0.converted
    }
    async fn disqualified(&self) -> i64 {
        self.0.disqualified
    }
    /// converted / leads; null for an empty band.
    async fn conversion_rate(&self) -> Option<f64> {
        (self.0.leads > 0).then(|| self.0.converted as f64 / self.0.leads as f64)
    }
}

pub struct ActivityCountRow(pub activities::ActivityCountRow);

impl ReadyFields for ActivityCountRow {}

#[Object]
impl ActivityCountRow {
    async fn key(&self) -> Eager<GroupKey> {
        Eager(GroupKey(self.0.key.clone()))
    }
    async fn kind(&self) -> ActivityKind {
        self.0.kind.into()
    }
    /// First day of the bucket (a Monday for WEEK, the 1st for MONTH).
    async fn bucket_start(&self) -> Date {
        Date(self.0.bucket)
    }
    async fn count(&self) -> i64 {
        self.0.count
    }
}

pub struct ActivitiesPerWonDealRow(pub activities::ActivitiesPerWonDealRow);

impl ReadyFields for ActivitiesPerWonDealRow {}

#[Object]
impl ActivitiesPerWonDealRow {
    async fn key(&self) -> Eager<GroupKey> {
        Eager(GroupKey(self.0.key.clone()))
    }
    /// Deals won in the period.
    async fn won_deals(&self) -> i64 {
        self.0.won_deals
    }
    /// Activities logged on them.
    async fn activities(&self) -> i64 {
        self.0.activities
    }
    async fn calls(&self) -> i64 {
        self.0.calls
    }
    async fn emails(&self) -> i64 {
        self.0.emails
    }
    async fn meetings(&self) -> i64 {
        self.0.meetings
    }
    async fn tasks(&self) -> i64 {
        self.0.tasks
    }
    /// activities / wonDeals; null when nothing was won.
    async fn per_deal(&self) -> Option<f64> {
        self.0.per_deal()
    }
}
