//! What a deal write changes, shared by the planning (service::deal) and
//! the writing (service::deal_write) of deals, so neither depends on the
//! other's internals.
use chrono::{DateTime, Utc};

use entity::deal;

use super::audit::Changes;
use crate::domain::money::from_cents;

/// One row of stage history to write.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    pub from: Option<i64>,
    pub to: i64,
    pub at: DateTime<Utc>,
}

/// A validated new deal: the row to insert (id, version and timestamps are
/// filled in when written) and its first stage changes.
#[derive(Debug, Clone)]
pub struct PlannedCreate {
    pub row: deal::Model,
    pub history: Vec<HistoryRow>,
}

/// Every field of a new deal as audit changes.
pub fn created_changes(d: &deal::Model) -> Changes {
    let mut c = Changes::new();
    c.created("externalId", &d.external_id)
        .created("name", &d.name)
        .created("amount", &from_cents(d.amount_cents))
        .created("currency", &d.currency)
        .created("ownerId", &d.owner_id)
        .created("accountId", &d.account_id)
        .created("territoryId", &d.territory_id)
        .created("stageId", &d.stage_id)
        .created("status", &d.status)
        .created("forecastCategory", &d.forecast_category)
        .created("source", &d.source)
        .created("playbookId", &d.playbook_id)
        .created("openedAt", &d.opened_at)
        .created("expectedCloseDate", &d.expected_close_date)
        .created("closedAt", &d.closed_at)
        .created("lostReason", &d.lost_reason);
    c
}
