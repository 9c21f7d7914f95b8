use crate::graphql::errors::ResultExt as _;
use async_graphql::{Context, Object, Result, ID};
use rust_decimal::Decimal;

use crate::graphql::inputs::{
    patch, AccountInput, AccountPatch, PlaybookInput, PlaybookPatch, RepInput, RepPatch,
    StageInput, TerritoryInput, TerritoryPatch,
};
use crate::graphql::scalars::Period;
use crate::graphql::types::{Account, Playbook, Quota, Rep, Stage, Territory};
use crate::graphql::{lookup_id, opt_id, parse_id, principal, write_db};
use crate::service;
use crate::service::playbook::{NewPlaybook, NewStep};
use crate::service::rep::{NewRep, RepChanges};
use crate::service::stage::NewStage;
use crate::service::territory::{NewTerritory, TerritoryChanges};

#[derive(Default)]
pub struct OrgMutation;

#[Object]
impl OrgMutation {
    async fn create_territory(
        &self,
        ctx: &Context<'_>,
        input: TerritoryInput,
    ) -> Result<Territory> {
        let p = principal(ctx)?;
        let new = NewTerritory {
            name: input.name,
            segment: input.segment.map(Into::into),
            region: input.region,
            parent_id: opt_id(&input.parent_id, "parentId").extend()?,
        };
        Ok(Territory(
            service::territory::create(write_db(ctx)?, p, new)
                .await
                .extend()?,
        ))
    }

    async fn update_territory(
        &self,
        ctx: &Context<'_>,
        id: ID,
        patch: TerritoryPatch,
    ) -> Result<Territory> {
        let p = principal(ctx)?;
        let id = lookup_id(&id, "territory").extend()?;
        let changes = TerritoryChanges {
            name: patch.name,
            segment: self::patch(patch.segment, |s| Ok(s.into())).extend()?,
            region: self::patch(patch.region, Ok).extend()?,
            parent_id: self::patch(patch.parent_id, |i| parse_id(&i, "parentId")).extend()?,
        };
        Ok(Territory(
            service::territory::update(write_db(ctx)?, p, id, changes)
                .await
                .extend()?,
        ))
    }

    async fn create_rep(&self, ctx: &Context<'_>, input: RepInput) -> Result<Rep> {
        let p = principal(ctx)?;
        let new = NewRep {
            external_id: input.external_id,
            name: input.name,
            email: input.email,
            title: input.title,
            territory_id: opt_id(&input.territory_id, "territoryId").extend()?,
            manager_id: opt_id(&input.manager_id, "managerId").extend()?,
            hired_at: input.hired_at.map(|d| d.0),
            active: input.active,
            ramp_months: input.ramp_months,
            commission_rate: input.commission_rate,
            commission_threshold: input.commission_threshold,
            quota_carrying: input.quota_carrying,
        };
        Ok(Rep(service::rep::create(write_db(ctx)?, p, new)
            .await
            .extend()?))
    }

    async fn update_rep(&self, ctx: &Context<'_>, id: ID, patch: RepPatch) -> Result<Rep> {
        let p = principal(ctx)?;
        let id = lookup_id(&id, "rep").extend()?;
        let changes = RepChanges {
            name: patch.name,
            email: patch.email,
            title: self::patch(patch.title, Ok).extend()?,
            territory_id: self::patch(patch.territory_id, |i| parse_id(&i, "territoryId"))
                .extend()?,
            manager_id: self::patch(patch.manager_id, |i| parse_id(&i, "managerId")).extend()?,
            hired_at: patch.hired_at.map(|d| d.0),
            active: patch.active,
            ramp_months: patch.ramp_months,
            commission_rate: patch.commission_rate,
            commission_threshold: patch.commission_threshold,
            quota_carrying: patch.quota_carrying,
        };
        Ok(Rep(service::rep::update(write_db(ctx)?, p, id, changes)
            .await
            .extend()?))
    }

    async fn create_account(&self, ctx: &Context<'_>, input: AccountInput) -> Result<Account> {
        let p = principal(ctx)?;
        let new = service::account::NewAccount {
            external_id: input.external_id,
            name: input.name,
            industry: input.industry,
            segment: input.segment.map(Into::into),
            territory_id: opt_id(&input.territory_id, "territoryId").extend()?,
        };
        Ok(Account(
            service::account::create(write_db(ctx)?, p, new)
                .await
                .extend()?,
        ))
    }

    async fn update_account(
        &self,
        ctx: &Context<'_>,
        id: ID,
        patch: AccountPatch,
    ) -> Result<Account> {
        let p = principal(ctx)?;
        let id = lookup_id(&id, "account").extend()?;
        let changes = service::account::AccountChanges {
            name: patch.name,
            external_id: self::patch(patch.external_id, Ok).extend()?,
            industry: self::patch(patch.industry, Ok).extend()?,
            segment: self::patch(patch.segment, |s| Ok(s.into())).extend()?,
            territory_id: self::patch(patch.territory_id, |i| parse_id(&i, "territoryId"))
                .extend()?,
        };
        Ok(Account(
            service::account::update(write_db(ctx)?, p, id, changes)
                .await
                .extend()?,
        ))
    }

    async fn create_stage(&self, ctx: &Context<'_>, input: StageInput) -> Result<Stage> {
        let p = principal(ctx)?;
        let new = NewStage {
            name: input.name,
            position: input.position,
            probability: input.probability,
            kind: input.kind.into(),
        };
        Ok(Stage(
            service::stage::create(write_db(ctx)?, p, new)
                .await
                .extend()?,
        ))
    }

    async fn update_stage_probability(
        &self,
        ctx: &Context<'_>,
        id: ID,
        probability: f64,
    ) -> Result<Stage> {
        let p = principal(ctx)?;
        let id = lookup_id(&id, "stage").extend()?;
        Ok(Stage(
            service::stage::update_probability(write_db(ctx)?, p, id, probability)
                .await
                .extend()?,
        ))
    }

    /// Sets a rep's quota for exactly this period, replacing its amount if set.
    async fn set_quota(
        &self,
        ctx: &Context<'_>,
        rep_id: ID,
        period: Period,
        amount: Decimal,
    ) -> Result<Quota> {
        let p = principal(ctx)?;
        let rep_id = parse_id(&rep_id, "repId").extend()?;
        Ok(Quota(
            service::quota::set(write_db(ctx)?, p, rep_id, &period, amount)
                .await
                .extend()?,
        ))
    }

    async fn create_playbook(&self, ctx: &Context<'_>, input: PlaybookInput) -> Result<Playbook> {
        let p = principal(ctx)?;
        let mut steps = Vec::new();
        for (i, s) in input.steps.unwrap_or_default().into_iter().enumerate() {
            steps.push(NewStep {
                title: s.title,
                guidance: s.guidance,
                stage_id: opt_id(&s.stage_id, &format!("steps[{i}].stageId")).extend()?,
            });
        }
        let new = NewPlaybook {
            name: input.name,
            description: input.description,
            segment: input.segment.map(Into::into),
            steps,
        };
        Ok(Playbook(
            service::playbook::create(write_db(ctx)?, p, new)
                .await
                .extend()?,
        ))
    }

    /// Renames, re-segments or retires (active: false) a playbook.
    async fn update_playbook(
        &self,
        ctx: &Context<'_>,
        id: ID,
        patch: PlaybookPatch,
    ) -> Result<Playbook> {
        let p = principal(ctx)?;
        let id = lookup_id(&id, "playbook").extend()?;
        let changes = service::playbook::PlaybookChanges {
            name: patch.name,
            description: self::patch(patch.description, Ok).extend()?,
            segment: self::patch(patch.segment, |s| Ok(s.into())).extend()?,
            active: patch.active,
        };
        Ok(Playbook(
            service::playbook::update(write_db(ctx)?, p, id, changes)
                .await
                .extend()?,
        ))
    }
}
