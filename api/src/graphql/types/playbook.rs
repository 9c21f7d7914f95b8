use crate::graphql::eager::{EagerList, ReadyFields};
use crate::graphql::errors::{Extend as _, ResultExt as _};
use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Object, Result, ID};

use entity::{playbook, playbook_step, stage};

use super::metrics::PlaybookEffectiveness;
use super::org::Stage;
use crate::graphql::enums::Segment;
use crate::graphql::loaders::PlaybookEffectivenessLoader;
use crate::graphql::loaders::{load_by_id, load_children, PlaybookSteps};
use crate::service::access::METRIC_READERS;

pub struct Playbook(pub playbook::Model);

impl ReadyFields for Playbook {}

#[Object]
impl Playbook {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn segment(&self) -> Option<Segment> {
        self.0.segment.map(Into::into)
    }
    async fn active(&self) -> bool {
        self.0.active
    }
    /// The deals of this playbook closed (won or lost) in the period against those closed without it.
    async fn effectiveness(
        &self,
        ctx: &Context<'_>,
        period: crate::graphql::scalars::Period,
    ) -> Result<PlaybookEffectiveness> {
        crate::graphql::principal(ctx)?
            .require(METRIC_READERS)
            .extend()?;
        let found = ctx
            .data::<DataLoader<PlaybookEffectivenessLoader>>()?
            .load_one((self.0.id, period.0))
            .await
            .map_err(|e| (*e).clone().extend())?;
        Ok(PlaybookEffectiveness(found.unwrap_or_default()))
    }
    /// The steps in order.
    async fn steps(&self, ctx: &Context<'_>) -> Result<EagerList<PlaybookStep>> {
        Ok(load_children::<PlaybookSteps>(ctx, self.0.id)
            .await?
            .into_iter()
            .map(PlaybookStep)
            .collect())
    }
}

pub struct PlaybookStep(pub playbook_step::Model);

impl ReadyFields for PlaybookStep {}

#[Object]
impl PlaybookStep {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn position(&self) -> i32 {
        self.0.position
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn guidance(&self) -> Option<&str> {
        self.0.guidance.as_deref()
    }
    async fn stage(&self, ctx: &Context<'_>) -> Result<Option<Stage>> {
        match self.0.stage_id {
            None => Ok(None),
            Some(id) => Ok(load_by_id::<stage::Entity>(ctx, id).await?.map(Stage)),
        }
    }
}
