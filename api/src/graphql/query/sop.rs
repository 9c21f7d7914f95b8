use crate::graphql::eager::EagerList;
use crate::graphql::errors::ResultExt as _;
use async_graphql::{Context, Object, Result, ID};

use crate::graphql::enums::SopStage;
use crate::graphql::types::sop::{SopPlan, SopPlanComparison};
use crate::graphql::{list_complexity, lookup_id, page_size, principal, read_db};
use crate::service;
use crate::service::access::SOP_READERS;

#[derive(Default)]
pub struct SopQuery;

#[Object]
impl SopQuery {
    /// An S&OP plan (OPS, ADMIN, VIEWER, MANAGER).
    async fn sop_plan(&self, ctx: &Context<'_>, id: ID) -> Result<Option<SopPlan>> {
        let p = principal(ctx)?;
        p.require(SOP_READERS).extend()?;
        let id = lookup_id(&id, "S&OP plan").extend()?;
        Ok(Some(SopPlan(
            service::sop::get(read_db(ctx)?, p, id).await.extend()?,
        )))
    }

    /// S&OP plans, optionally in one stage: the latest horizon first, then the latest revision.
    #[graphql(complexity = "list_complexity(first, 100, child_complexity)")]
    async fn sop_plans(
        &self,
        ctx: &Context<'_>,
        stage: Option<SopStage>,
        first: Option<i32>,
    ) -> Result<EagerList<SopPlan>> {
        let p = principal(ctx)?;
        p.require(SOP_READERS).extend()?;
        let limit = page_size(ctx, first, 100)?;
        let rows = service::sop::list(read_db(ctx)?, p, stage.map(Into::into), limit)
            .await
            .extend()?;
        Ok(rows.into_iter().map(SopPlan).collect())
    }

    /// What changed per territory-month between two plans of the same horizon (two revisions, usually): demand,
    /// supply, adjustments and gap in each, over the whole horizon. rollUpTo: compare at that level of the
    /// territory tree. Plans of different horizons, or a level the tree does not have, are BAD_USER_INPUT.
    async fn sop_plan_comparison(
        &self,
        ctx: &Context<'_>,
        from_id: ID,
        to_id: ID,
        roll_up_to: Option<i32>,
    ) -> Result<SopPlanComparison> {
        let p = principal(ctx)?;
        p.require(SOP_READERS).extend()?;
        let from_id = lookup_id(&from_id, "S&OP plan").extend()?;
        let to_id = lookup_id(&to_id, "S&OP plan").extend()?;
        let (from, to, rows) = service::sop::compare(read_db(ctx)?, p, from_id, to_id, roll_up_to)
            .await
            .extend()?;
        Ok(SopPlanComparison { from, to, rows })
    }
}
