//! The organisation: territories, reps, accounts, stages and the caller.
use crate::graphql::eager::{
    ready, ready_enum, ready_id, ready_opt_enum, ready_opt_str, ready_str, Eager, EagerList,
    ReadyFields,
};
use crate::graphql::errors::{Extend as _, ResultExt as _};
use async_graphql::{ComplexObject, Context, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};
use ref_cast::RefCast;
use rust_decimal::Decimal;

use entity::{account, rep, stage, territory};

use super::deal::DealConnection;
use super::quota::Quota;
use crate::domain::money::{ppm_to_decimal, ppm_to_f64};
use crate::graphql::enums::Role;
use crate::graphql::enums::{DealOrder, Segment, StageKind};
use crate::graphql::inputs::{filter_of, DealFilterInput};
use crate::graphql::loaders::{
    load_by_id, load_children, rep_in_scope, DealParent, DirectReports, PageArgs, RepQuotas,
    TerritoryChildren, TerritoryMembers,
};
use crate::graphql::scalars::Date;
use crate::graphql::{list_complexity, page_size, principal};
use crate::service::access::RepData;

pub struct Territory(pub territory::Model);

impl ReadyFields for Territory {
    fn ready_field(&self, field: &str) -> Option<async_graphql::Value> {
        let t = &self.0;
        Some(match field {
            "id" => ready_id(t.id),
            "name" => ready_str(&t.name),
            "segment" => ready_opt_enum(t.segment.map(Segment::from)),
            "region" => ready_opt_str(t.region.as_deref()),
            "createdAt" => ready(&t.created_at),
            "updatedAt" => ready(&t.updated_at),
            _ => return None,
        })
    }
}

#[Object]
impl Territory {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn segment(&self) -> Option<Segment> {
        self.0.segment.map(Into::into)
    }
    async fn region(&self) -> Option<&str> {
        self.0.region.as_deref()
    }
    async fn parent(&self, ctx: &Context<'_>) -> Result<Option<Territory>> {
        match self.0.parent_id {
            None => Ok(None),
            Some(id) => Ok(load_by_id::<territory::Entity>(ctx, id)
                .await?
                .map(Territory)),
        }
    }
    /// Direct children, ordered by name.
    async fn children(&self, ctx: &Context<'_>) -> Result<EagerList<Territory>> {
        Ok(load_children::<TerritoryChildren>(ctx, self.0.id)
            .await?
            .into_iter()
            .map(Territory)
            .collect())
    }
    /// The territory's direct members, ordered by name.
    async fn reps(&self, ctx: &Context<'_>) -> Result<EagerList<Rep>> {
        Ok(load_children::<TerritoryMembers>(ctx, self.0.id)
            .await?
            .into_iter()
            .map(Rep)
            .collect())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A rep as any path reaches it (a query, a manager, territory members,
/// direct reports, a deal's owner, a metric row). Its fields check the
/// caller's scope themselves (`Rep::check`), so no path can skip it.
#[derive(RefCast)]
#[repr(transparent)]
pub struct Rep(pub rep::Model);

impl Rep {
    /// The rep a row refers to (through the request's loader); a missing one
    /// is NOT_FOUND.
    pub async fn referenced(ctx: &Context<'_>, id: i64) -> Result<Rep> {
        load_by_id::<rep::Entity>(ctx, id)
            .await?
            .map(Rep)
            .ok_or_else(|| crate::error::AppError::not_found("rep").extend())
    }

    /// FORBIDDEN unless the caller may read `data` of this rep: reps outside
    /// the caller's scope (reached through a manager, a territory, direct
    /// reports) show only their directory entry (see access::RepData).
    async fn check(&self, ctx: &Context<'_>, data: RepData) -> Result<()> {
        let p = principal(ctx)?;
        let in_scope = match data {
            RepData::Directory => true,
            _ => rep_in_scope(ctx, self.0.id).await?,
        };
        p.may_read_rep(data, in_scope).extend()
    }
}

/// Only the directory fields: the others check the caller's scope.
impl ReadyFields for Rep {
    fn ready_field(&self, field: &str) -> Option<async_graphql::Value> {
        let r = &self.0;
        Some(match field {
            "id" => ready_id(r.id),
            "name" => ready_str(&r.name),
            "title" => ready_opt_str(r.title.as_deref()),
            _ => return None,
        })
    }
}

#[Object]
impl Rep {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn external_id(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        self.check(ctx, RepData::Personal).await?;
        Ok(self.0.external_id.as_deref())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn email(&self, ctx: &Context<'_>) -> Result<&str> {
        self.check(ctx, RepData::Personal).await?;
        Ok(&self.0.email)
    }
    async fn title(&self) -> Option<&str> {
        self.0.title.as_deref()
    }
    async fn territory(&self, ctx: &Context<'_>) -> Result<Option<Territory>> {
        match self.0.territory_id {
            None => Ok(None),
            Some(id) => Ok(load_by_id::<territory::Entity>(ctx, id)
                .await?
                .map(Territory)),
        }
    }
    async fn manager(&self, ctx: &Context<'_>) -> Result<Option<Rep>> {
        match self.0.manager_id {
            None => Ok(None),
            Some(id) => Ok(load_by_id::<rep::Entity>(ctx, id).await?.map(Rep)),
        }
    }
    /// Reps whose manager this rep is, ordered by name.
    async fn direct_reports(&self, ctx: &Context<'_>) -> Result<EagerList<Rep>> {
        Ok(load_children::<DirectReports>(ctx, self.0.id)
            .await?
            .into_iter()
            .map(Rep)
            .collect())
    }
    async fn hired_at(&self, ctx: &Context<'_>) -> Result<Date> {
        self.check(ctx, RepData::Personal).await?;
        Ok(Date(self.0.hired_at))
    }
    async fn active(&self, ctx: &Context<'_>) -> Result<bool> {
        self.check(ctx, RepData::Personal).await?;
        Ok(self.0.active)
    }
    /// Months a new hire takes to reach full quota capacity (linear ramp).
    async fn ramp_months(&self, ctx: &Context<'_>) -> Result<i32> {
        self.check(ctx, RepData::Personal).await?;
        Ok(self.0.ramp_months)
    }
    /// Commission rate on closed-won amount, e.g. "0.10".
    async fn commission_rate(&self, ctx: &Context<'_>) -> Result<Decimal> {
        self.check(ctx, RepData::Compensation).await?;
        Ok(ppm_to_decimal(self.0.commission_rate_ppm))
    }
    /// Attainment at which commission pays (1.0 = at quota).
    async fn commission_threshold(&self, ctx: &Context<'_>) -> Result<Decimal> {
        self.check(ctx, RepData::Compensation).await?;
        Ok(ppm_to_decimal(self.0.commission_threshold_ppm))
    }
    /// The rep's deals that the caller may see.
    #[graphql(complexity = "list_complexity(first, 50, child_complexity)")]
    async fn deals(
        &self,
        ctx: &Context<'_>,
        filter: Option<DealFilterInput>,
        order_by: Option<DealOrder>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Eager<DealConnection>> {
        self.check(ctx, RepData::Personal).await?;
        let args = PageArgs {
            filter: filter_of(&filter).extend()?,
            order: order_by.map(Into::into).unwrap_or_default(),
            first: page_size(ctx, first, 50)?,
            after,
            columns: DealConnection::node_columns(ctx),
        };
        DealConnection::nested(ctx, DealParent::Owner(self.0.id), args)
            .await
            .map(Eager)
    }
    /// False for people who manage but do not sell: they stay out of rep rankings, attainment and commissions unless they have a quota.
    async fn quota_carrying(&self, ctx: &Context<'_>) -> Result<bool> {
        self.check(ctx, RepData::Personal).await?;
        Ok(self.0.quota_carrying)
    }
    /// Sum of the quotas of this rep and everyone below it (quota-carrying reps) for the period.
    async fn team_quota(
        &self,
        ctx: &Context<'_>,
        period: crate::graphql::scalars::Period,
    ) -> Result<Option<Decimal>> {
        self.check(ctx, RepData::Compensation).await?;
        ctx.data::<async_graphql::dataloader::DataLoader<crate::graphql::loaders::TeamQuotaLoader>>(
        )?
        .load_one((self.0.id, period.0))
        .await
        .map_err(|e| (*e).clone().extend())
    }
    /// The rep's quotas, oldest first.
    async fn quotas(&self, ctx: &Context<'_>) -> Result<EagerList<Quota>> {
        self.check(ctx, RepData::Compensation).await?;
        Ok(load_children::<RepQuotas>(ctx, self.0.id)
            .await?
            .into_iter()
            .map(Quota)
            .collect())
    }
    async fn created_at(&self, ctx: &Context<'_>) -> Result<DateTime<Utc>> {
        self.check(ctx, RepData::Personal).await?;
        Ok(self.0.created_at)
    }
    async fn updated_at(&self, ctx: &Context<'_>) -> Result<DateTime<Utc>> {
        self.check(ctx, RepData::Personal).await?;
        Ok(self.0.updated_at)
    }
}

#[derive(RefCast)]
#[repr(transparent)]
pub struct Account(pub account::Model);

impl ReadyFields for Account {
    fn ready_field(&self, field: &str) -> Option<async_graphql::Value> {
        let a = &self.0;
        Some(match field {
            "id" => ready_id(a.id),
            "externalId" => ready_opt_str(a.external_id.as_deref()),
            "name" => ready_str(&a.name),
            "industry" => ready_opt_str(a.industry.as_deref()),
            "segment" => ready_opt_enum(a.segment.map(Segment::from)),
            "createdAt" => ready(&a.created_at),
            _ => return None,
        })
    }
}

#[Object]
impl Account {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn external_id(&self) -> Option<&str> {
        self.0.external_id.as_deref()
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn industry(&self) -> Option<&str> {
        self.0.industry.as_deref()
    }
    async fn segment(&self) -> Option<Segment> {
        self.0.segment.map(Into::into)
    }
    async fn territory(&self, ctx: &Context<'_>) -> Result<Option<Territory>> {
        match self.0.territory_id {
            None => Ok(None),
            Some(id) => Ok(load_by_id::<territory::Entity>(ctx, id)
                .await?
                .map(Territory)),
        }
    }
    /// The account's deals that the caller may see, most recently updated first.
    #[graphql(complexity = "list_complexity(first, 50, child_complexity)")]
    async fn deals(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Eager<DealConnection>> {
        let args = PageArgs {
            filter: Default::default(),
            order: Default::default(),
            first: page_size(ctx, first, 50)?,
            after,
            columns: DealConnection::node_columns(ctx),
        };
        DealConnection::nested(ctx, DealParent::Account(self.0.id), args)
            .await
            .map(Eager)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

#[derive(RefCast)]
#[repr(transparent)]
pub struct Stage(pub stage::Model);

impl ReadyFields for Stage {
    fn ready_field(&self, field: &str) -> Option<async_graphql::Value> {
        let s = &self.0;
        Some(match field {
            "id" => ready_id(s.id),
            "name" => ready_str(&s.name),
            "position" => ready(&s.position),
            "probability" => ready(&ppm_to_f64(s.probability_ppm)),
            "kind" => ready_enum(StageKind::from(s.kind)),
            _ => return None,
        })
    }
}

#[Object]
impl Stage {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn position(&self) -> i32 {
        self.0.position
    }
    /// Win probability in 0..1 used by STAGE_WEIGHTED forecasts.
    async fn probability(&self) -> f64 {
        ppm_to_f64(self.0.probability_ppm)
    }
    async fn kind(&self) -> StageKind {
        self.0.kind.into()
    }
}

/// The authenticated caller.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Principal {
    pub subject: String,
    pub role: Role,
    #[graphql(skip)]
    pub rep_id: Option<i64>,
}

#[ComplexObject]
impl Principal {
    /// The caller's own rep (REP and MANAGER tokens).
    async fn rep(&self, ctx: &Context<'_>) -> Result<Option<Rep>> {
        let _ = principal(ctx)?;
        match self.rep_id {
            None => Ok(None),
            Some(id) => Ok(load_by_id::<rep::Entity>(ctx, id).await?.map(Rep)),
        }
    }
}
