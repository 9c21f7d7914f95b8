use crate::graphql::eager::EagerList;
use crate::graphql::errors::ResultExt as _;
use async_graphql::{Context, Object, Result, ID};

use crate::graphql::types::{DeliveryStatus, Webhook, WebhookDelivery};
use crate::graphql::{opt_id, page_size, principal, write_db};
use crate::service;
use crate::service::webhook::DeliveryFilter;

#[derive(Default)]
pub struct IntegrationQuery;

#[Object]
impl IntegrationQuery {
    /// Every webhook (ADMIN); secrets are never shown.
    async fn webhooks(&self, ctx: &Context<'_>) -> Result<EagerList<Webhook>> {
        let p = principal(ctx)?;
        Ok(service::webhook::list(write_db(ctx)?, p)
            .await
            .extend()?
            .into_iter()
            .map(Webhook)
            .collect())
    }

    /// Deliveries of the outbox, oldest first, each with its attempts (ADMIN).
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        webhook_id: Option<ID>,
        event_id: Option<String>,
        status: Option<Vec<DeliveryStatus>>,
        first: Option<i32>,
    ) -> Result<EagerList<WebhookDelivery>> {
        let p = principal(ctx)?;
        let limit = page_size(ctx, first, 100)?;
        let filter = DeliveryFilter {
            webhook_id: opt_id(&webhook_id, "webhookId").extend()?,
            event_id,
            status: status.map(|s| s.iter().map(|x| x.as_str().to_owned()).collect()),
        };
        Ok(
            service::webhook::deliveries(write_db(ctx)?, p, &filter, limit)
                .await
                .extend()?
                .into_iter()
                .map(|(d, a)| WebhookDelivery(d, a))
                .collect(),
        )
    }
}
