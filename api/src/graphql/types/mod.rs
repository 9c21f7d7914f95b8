//! Output types. Each wraps an entity model and resolves its relations
//! through the request's DataLoaders.
pub mod audit;
pub mod deal;
pub mod deal_history;
pub mod forecast;
pub mod grouping;
pub mod integration;
pub mod lead;
pub mod metrics;
pub mod org;
pub mod org_pages;
pub mod pipeline_changes;
pub mod playbook;
pub mod quota;
pub mod sop;

pub use audit::AuditEntry;
pub use deal::{Deal, DealConnection, StageChange};
pub use grouping::GroupKey;
pub use integration::{
    BulkUpsertResult, DeliveryStatus, UpsertDealPayload, Webhook, WebhookDelivery, WebhookEvent,
    WebhookWithSecret,
};
pub use org::{Account, Principal, Rep, Stage, Territory};
pub use org_pages::{RepConnection, TerritoryConnection};
pub use playbook::{Playbook, PlaybookStep};
pub use quota::Quota;
