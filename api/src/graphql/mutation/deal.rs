use crate::graphql::errors::ResultExt as _;
use async_graphql::{Context, Object, Result, ID};
use chrono::{DateTime, Utc};

use crate::graphql::inputs::{DealInput, DealPatch};
use crate::graphql::types::Deal;
use crate::graphql::{lookup_id, parse_id, principal, state, write_db};
use crate::service;
use crate::service::deal::StageMove;

#[derive(Default)]
pub struct DealMutation;

#[Object]
impl DealMutation {
    async fn create_deal(&self, ctx: &Context<'_>, input: DealInput) -> Result<Deal> {
        let p = principal(ctx)?;
        let new = input.to_new_deal().extend()?;
        let rules = &state(ctx)?.deal_rules;
        Ok(Deal(
            service::deal::create(write_db(ctx)?, p, rules, new)
                .await
                .extend()?,
        ))
    }

    /// Changes a deal's fields; a stale expectedVersion is CONFLICT.
    async fn update_deal(
        &self,
        ctx: &Context<'_>,
        id: ID,
        patch: DealPatch,
        expected_version: Option<i32>,
    ) -> Result<Deal> {
        let p = principal(ctx)?;
        let id = lookup_id(&id, "deal").extend()?;
        let changes = patch.into_changes().extend()?;
        Ok(Deal(
            service::deal::update(write_db(ctx)?, p, id, changes, expected_version)
                .await
                .extend()?,
        ))
    }

    /// Moves a deal to a stage, recording history; a WON or LOST stage closes it (closedAt = at, default now).
    async fn move_deal_stage(
        &self,
        ctx: &Context<'_>,
        id: ID,
        stage_id: ID,
        at: Option<DateTime<Utc>>,
        lost_reason: Option<String>,
        expected_version: Option<i32>,
    ) -> Result<Deal> {
        let p = principal(ctx)?;
        let id = lookup_id(&id, "deal").extend()?;
        let mv = StageMove {
            stage_id: parse_id(&stage_id, "stageId").extend()?,
            at: crate::graphql::scalars::check_opt_instant(at, "at").extend()?,
            lost_reason,
            forecast_category: None,
        };
        Ok(Deal(
            service::deal::move_stage(write_db(ctx)?, p, id, mv, expected_version)
                .await
                .extend()?,
        ))
    }
}
