use crate::graphql::eager::ReadyFields;
use async_graphql::{Object, ID};
use chrono::{DateTime, Utc};

use entity::audit_entry;

pub struct AuditEntry(pub audit_entry::Model);

impl ReadyFields for AuditEntry {}

#[Object]
impl AuditEntry {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
    async fn actor(&self) -> &str {
        &self.0.actor
    }
    async fn action(&self) -> &str {
        &self.0.action
    }
    async fn entity_type(&self) -> &str {
        &self.0.entity_type
    }
    async fn entity_id(&self) -> ID {
        ID(self.0.entity_id.clone())
    }
    /// The changed fields as a JSON object of {field: [old, new]}.
    async fn changes(&self) -> &str {
        &self.0.changes
    }
}
