use crate::graphql::eager::EagerList;
use crate::graphql::errors::ResultExt as _;
use async_graphql::{Context, Object, Result, ID};

use crate::graphql::scalars::Period;
use crate::graphql::types::org_pages::{REP_LIST, TERRITORY_LIST};
use crate::graphql::types::{
    Account, Playbook, Principal, Quota, Rep, RepConnection, Stage, Territory, TerritoryConnection,
};
use crate::graphql::{list_complexity, lookup_id, opt_id, page_size, principal, read_db};
use crate::service::access::{DEAL_READERS, METRIC_READERS, REFERENCE_READERS};
use crate::service::pagination::decode_id_cursor;
use crate::service::{self, rep::RepFilter};

#[derive(Default)]
pub struct OrgQuery;

#[Object]
impl OrgQuery {
    /// The authenticated caller.
    async fn me(&self, ctx: &Context<'_>) -> Result<Principal> {
        let p = principal(ctx)?;
        Ok(Principal {
            subject: p.subject.clone(),
            role: p.role.into(),
            rep_id: p.rep_id,
        })
    }

    async fn territory(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Territory>> {
        principal(ctx)?.require(REFERENCE_READERS).extend()?;
        let id = lookup_id(&id, "territory").extend()?;
        Ok(Some(Territory(
            service::territory::get(read_db(ctx)?, id).await.extend()?,
        )))
    }

    /// Ordered by name; first caps the count.
    #[graphql(complexity = "list_complexity(first, 100, child_complexity)")]
    async fn territories(
        &self,
        ctx: &Context<'_>,
        parent_id: Option<ID>,
        first: Option<i32>,
    ) -> Result<EagerList<Territory>> {
        principal(ctx)?.require(REFERENCE_READERS).extend()?;
        let limit = page_size(ctx, first, 500)?;
        let parent = opt_id(&parent_id, "parentId").extend()?;
        let rows = service::territory::list(read_db(ctx)?, parent, limit)
            .await
            .extend()?;
        Ok(rows.into_iter().map(Territory).collect())
    }

    /// Territories ordered by id, paged by cursor (`after` is a cursor of
    /// this list); with a parent, only its direct children.
    #[graphql(complexity = "list_complexity(first, 100, child_complexity)")]
    async fn territories_connection(
        &self,
        ctx: &Context<'_>,
        parent_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<TerritoryConnection> {
        principal(ctx)?.require(REFERENCE_READERS).extend()?;
        let limit = page_size(ctx, first, 100)?;
        let parent_id = opt_id(&parent_id, "parentId").extend()?;
        let after = after
            .as_deref()
            .map(|a| decode_id_cursor(a, TERRITORY_LIST))
            .transpose()
            .extend()?;
        let (rows, has_next) = service::territory::page(read_db(ctx)?, parent_id, after, limit)
            .await
            .extend()?;
        Ok(TerritoryConnection {
            rows,
            has_next,
            has_previous: after.is_some(),
            parent_id,
        })
    }

    /// A rep the caller may see (a REP sees itself, a MANAGER its team).
    async fn rep(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Rep>> {
        let p = principal(ctx)?;
        p.require(DEAL_READERS).extend()?;
        let id = lookup_id(&id, "rep").extend()?;
        Ok(Some(Rep(service::rep::get(read_db(ctx)?, p.scope(), id)
            .await
            .extend()?)))
    }

    /// Ordered by name; first caps the count. Scoped like deals.
    #[graphql(complexity = "list_complexity(first, 100, child_complexity)")]
    async fn reps(
        &self,
        ctx: &Context<'_>,
        active: Option<bool>,
        territory_id: Option<ID>,
        manager_id: Option<ID>,
        first: Option<i32>,
    ) -> Result<EagerList<Rep>> {
        let p = principal(ctx)?;
        p.require(DEAL_READERS).extend()?;
        let limit = page_size(ctx, first, 500)?;
        let f = RepFilter {
            active,
            territory_id: opt_id(&territory_id, "territoryId").extend()?,
            manager_id: opt_id(&manager_id, "managerId").extend()?,
        };
        let rows = service::rep::list(read_db(ctx)?, p.scope(), f, limit)
            .await
            .extend()?;
        Ok(rows.into_iter().map(Rep).collect())
    }

    /// Reps ordered by id, paged by cursor (`after` is a cursor of this
    /// list). Scoped like deals: a REP sees itself, a MANAGER its team.
    #[graphql(complexity = "list_complexity(first, 100, child_complexity)")]
    async fn reps_connection(
        &self,
        ctx: &Context<'_>,
        active: Option<bool>,
        territory_id: Option<ID>,
        manager_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<RepConnection> {
        let p = principal(ctx)?;
        p.require(DEAL_READERS).extend()?;
        let limit = page_size(ctx, first, 100)?;
        let filter = RepFilter {
            active,
            territory_id: opt_id(&territory_id, "territoryId").extend()?,
            manager_id: opt_id(&manager_id, "managerId").extend()?,
        };
        let after = after
            .as_deref()
            .map(|a| decode_id_cursor(a, REP_LIST))
            .transpose()
            .extend()?;
        let (rows, has_next) = service::rep::page(read_db(ctx)?, p.scope(), &filter, after, limit)
            .await
            .extend()?;
        Ok(RepConnection {
            rows,
            has_next,
            has_previous: after.is_some(),
            scope: p.scope(),
            filter,
        })
    }

    async fn account(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Account>> {
        principal(ctx)?.require(DEAL_READERS).extend()?;
        let id = lookup_id(&id, "account").extend()?;
        Ok(Some(Account(
            service::account::get(read_db(ctx)?, id).await.extend()?,
        )))
    }

    /// Ordered by name; `after` is the id of the last account of the previous page.
    #[graphql(complexity = "list_complexity(first, 100, child_complexity)")]
    async fn accounts(
        &self,
        ctx: &Context<'_>,
        search: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<EagerList<Account>> {
        principal(ctx)?.require(DEAL_READERS).extend()?;
        if let Some(s) = &search {
            service::deal_filter::check_search(s, "search").extend()?;
        }
        let limit = page_size(ctx, first, 100)?;
        let after = after
            .map(|a| crate::graphql::parse_id(&ID(a), "after"))
            .transpose()
            .extend()?;
        let rows = service::account::list(read_db(ctx)?, search.as_deref(), after, limit)
            .await
            .extend()?;
        Ok(rows.into_iter().map(Account).collect())
    }

    /// All stages in pipeline order.
    async fn stages(&self, ctx: &Context<'_>) -> Result<EagerList<Stage>> {
        principal(ctx)?.require(REFERENCE_READERS).extend()?;
        let rows = service::stage::list(read_db(ctx)?).await.extend()?;
        Ok(rows.into_iter().map(Stage).collect())
    }

    async fn playbook(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Playbook>> {
        principal(ctx)?.require(REFERENCE_READERS).extend()?;
        let id = lookup_id(&id, "playbook").extend()?;
        Ok(Some(Playbook(
            service::playbook::get(read_db(ctx)?, id).await.extend()?,
        )))
    }

    async fn playbooks(
        &self,
        ctx: &Context<'_>,
        active: Option<bool>,
    ) -> Result<EagerList<Playbook>> {
        principal(ctx)?.require(REFERENCE_READERS).extend()?;
        let rows = service::playbook::list(read_db(ctx)?, active)
            .await
            .extend()?;
        Ok(rows.into_iter().map(Playbook).collect())
    }

    /// Quotas whose range lies inside the period (the ones its metrics count).
    async fn quotas(
        &self,
        ctx: &Context<'_>,
        period: Period,
        rep_id: Option<ID>,
    ) -> Result<EagerList<Quota>> {
        let p = principal(ctx)?;
        p.require(METRIC_READERS).extend()?;
        let rep_id = opt_id(&rep_id, "repId").extend()?;
        let rows = service::quota::list(read_db(ctx)?, p.scope(), &period, rep_id)
            .await
            .extend()?;
        Ok(rows.into_iter().map(Quota).collect())
    }
}
