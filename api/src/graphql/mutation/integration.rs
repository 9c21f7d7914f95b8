use crate::graphql::errors::ResultExt as _;
use async_graphql::{Context, Object, Result, ID};

use crate::graphql::inputs::DealInput;
use crate::graphql::types::{
    BulkUpsertResult, UpsertDealPayload, Webhook, WebhookEvent, WebhookWithSecret,
};
use crate::graphql::{lookup_id, principal, state, write_db};
use crate::service;
use crate::service::upsert::BulkInput;

#[derive(Default)]
pub struct IntegrationMutation;

#[Object]
impl IntegrationMutation {
    /// Idempotent by externalId (required here): creates, updates, or leaves unchanged.
    async fn upsert_deal(
        &self,
        ctx: &Context<'_>,
        input: DealInput,
        expected_version: Option<i32>,
    ) -> Result<UpsertDealPayload> {
        let p = principal(ctx)?;
        let new = input.to_new_deal().extend()?;
        let rules = &state(ctx)?.deal_rules;
        let (deal, outcome) =
            service::upsert::upsert(write_db(ctx)?, p, rules, new, expected_version)
                .await
                .extend()?;
        Ok(UpsertDealPayload::new(deal, outcome))
    }

    /// At most 1000 inputs; each is applied on its own, and a bad one is reported in errors without stopping the rest.
    async fn bulk_upsert_deals(
        &self,
        ctx: &Context<'_>,
        inputs: Vec<DealInput>,
    ) -> Result<BulkUpsertResult> {
        let p = principal(ctx)?;
        let rules = &state(ctx)?.deal_rules;
        let parsed = inputs
            .iter()
            .map(|i| BulkInput {
                external_id: i.external_id.clone(),
                deal: i.to_new_deal(),
            })
            .collect();
        Ok(service::upsert::bulk(write_db(ctx)?, p, rules, parsed)
            .await
            .extend()?
            .into())
    }

    /// Subscribes an https URL to events (ADMIN). Loopback, private, link-local and metadata destinations are refused unless the server allows them. The secret is returned only here.
    async fn create_webhook(
        &self,
        ctx: &Context<'_>,
        url: String,
        events: Vec<WebhookEvent>,
    ) -> Result<WebhookWithSecret> {
        let p = principal(ctx)?;
        let events: Vec<_> = events.into_iter().map(Into::into).collect();
        let settings = ctx.data::<service::webhook::WebhookSettings>()?;
        let (hook, secret) = service::webhook::create(write_db(ctx)?, p, settings, &url, &events)
            .await
            .extend()?;
        Ok(WebhookWithSecret {
            webhook: Webhook(hook),
            secret,
        })
    }

    /// Deletes a webhook with its deliveries (ADMIN).
    async fn delete_webhook(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let p = principal(ctx)?;
        let id = lookup_id(&id, "webhook").extend()?;
        service::webhook::delete(write_db(ctx)?, p, id)
            .await
            .extend()
    }
}
