//! Results of idempotent writes and the webhook types.
use crate::graphql::eager::{EagerList, ReadyFields};
use async_graphql::{Enum, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};

use entity::{webhook, webhook_attempt, webhook_delivery};

use super::deal::Deal;
use crate::service::outbox::parse_events;
use crate::service::upsert::{BulkSummary, Outcome};

#[derive(SimpleObject)]
pub struct UpsertDealPayload {
    pub deal: Deal,
    pub created: bool,
    /// The deal existed and the input changed it (its version went up).
    pub updated: bool,
    /// The deal already matched the input: nothing was written.
    pub unchanged: bool,
}

impl UpsertDealPayload {
    pub fn new(deal: entity::deal::Model, outcome: Outcome) -> Self {
        Self {
            deal: Deal(deal),
            created: outcome == Outcome::Created,
            updated: outcome == Outcome::Updated,
            unchanged: outcome == Outcome::Unchanged,
        }
    }
}

/// An input of bulkUpsertDeals that was not applied.
#[derive(SimpleObject)]
pub struct BulkError {
    /// Position of the input in the list, from 0.
    pub index: i32,
    pub external_id: Option<String>,
    /// The error code the input would have had on its own (BAD_USER_INPUT, FORBIDDEN, NOT_FOUND, CONFLICT).
    pub code: String,
    pub message: String,
}

#[derive(SimpleObject)]
pub struct BulkUpsertResult {
    pub created: i32,
    pub updated: i32,
    pub unchanged: i32,
    pub errors: Vec<BulkError>,
}

impl From<BulkSummary> for BulkUpsertResult {
    fn from(s: BulkSummary) -> Self {
        Self {
            created: s.created as i32,
            updated: s.updated as i32,
            unchanged: s.unchanged as i32,
            errors: s
                .errors
                .into_iter()
                .map(|e| BulkError {
                    index: e.index as i32,
                    external_id: e.external_id,
                    code: e.error.code().to_owned(),
                    message: e.error.to_string(),
                })
                .collect(),
        }
    }
}

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "crate::service::outbox::EventKind")]
pub enum WebhookEvent {
    DealCreated,
    DealUpdated,
    DealStageChanged,
    DealWon,
    DealLost,
    SopPlanStageChanged,
    /// An approver signed off an S&OP plan version (approveSopPlan).
    SopPlanApproved,
    LeadCreated,
    LeadConverted,
    ActivityLogged,
}

pub struct Webhook(pub webhook::Model);

impl ReadyFields for Webhook {}

#[Object]
impl Webhook {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn url(&self) -> &str {
        &self.0.url
    }
    async fn events(&self) -> Vec<WebhookEvent> {
        parse_events(&self.0.events)
            .into_iter()
            .map(Into::into)
            .collect()
    }
    async fn active(&self) -> bool {
        self.0.active
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
}

#[derive(SimpleObject)]
pub struct WebhookWithSecret {
    pub webhook: Webhook,
    /// Shown once: the HMAC-SHA256 key that signs every delivery.
    pub secret: String,
}

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum DeliveryStatus {
    /// Waiting for its first attempt or a retry.
    Pending,
    Delivered,
    /// Given up after the last attempt.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "PENDING",
            DeliveryStatus::Delivered => "DELIVERED",
            DeliveryStatus::Failed => "FAILED",
        }
    }
}

/// One event for one webhook, with every attempt made to deliver it.
pub struct WebhookDelivery(pub webhook_delivery::Model, pub Vec<webhook_attempt::Model>);

impl ReadyFields for WebhookDelivery {}

#[Object]
impl WebhookDelivery {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn webhook_id(&self) -> ID {
        ID(self.0.webhook_id.to_string())
    }
    /// Sent as X-Salesops-Event-Id: the same on every attempt.
    async fn event_id(&self) -> &str {
        &self.0.event_id
    }
    async fn event(&self) -> Option<WebhookEvent> {
        crate::service::outbox::EventKind::parse(&self.0.event_type).map(Into::into)
    }
    async fn entity_type(&self) -> &str {
        &self.0.entity_type
    }
    async fn entity_id(&self) -> ID {
        ID(self.0.entity_id.clone())
    }
    /// The JSON body sent (and signed).
    async fn payload(&self) -> &str {
        &self.0.payload
    }
    async fn status(&self) -> DeliveryStatus {
        match self.0.status.as_str() {
            "DELIVERED" => DeliveryStatus::Delivered,
            "FAILED" => DeliveryStatus::Failed,
            _ => DeliveryStatus::Pending,
        }
    }
    async fn attempt_count(&self) -> i32 {
        self.0.attempts
    }
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        (self.0.status == "PENDING").then_some(self.0.next_attempt_at)
    }
    async fn last_status_code(&self) -> Option<i32> {
        self.0.last_status_code
    }
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    async fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.0.delivered_at
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Every attempt, oldest first.
    async fn attempts(&self) -> EagerList<WebhookAttempt> {
        self.1.iter().cloned().map(WebhookAttempt).collect()
    }
}

pub struct WebhookAttempt(pub webhook_attempt::Model);

impl ReadyFields for WebhookAttempt {}

#[Object]
impl WebhookAttempt {
    /// 1 for the first attempt.
    async fn attempt(&self) -> i32 {
        self.0.attempt
    }
    async fn started_at(&self) -> DateTime<Utc> {
        self.0.started_at
    }
    async fn duration_ms(&self) -> i32 {
        self.0.duration_ms
    }
    /// The receiver's HTTP status, if it answered.
    async fn status_code(&self) -> Option<i32> {
        self.0.status_code
    }
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    async fn success(&self) -> bool {
        self.0.success
    }
}
