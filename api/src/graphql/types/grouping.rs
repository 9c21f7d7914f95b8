//! The key of a grouped metric or forecast row.
use async_graphql::{Object, ID};

use crate::graphql::enums::Dimension;
use crate::service::grouping;

/// Which group a row belongs to: a rep, territory, manager or playbook id,
/// a segment or source name, or no id for NONE and for deals without one.
pub struct GroupKey(pub grouping::GroupKey);

#[Object]
impl GroupKey {
    async fn dimension(&self) -> Dimension {
        self.0.dimension.into()
    }
    async fn id(&self) -> Option<ID> {
        self.0.id.clone().map(ID)
    }
    async fn label(&self) -> &str {
        &self.0.label
    }
}
