//! The key of a grouped metric or forecast row.
use crate::graphql::eager::{ready_enum, ready_opt_str, ready_str, ReadyFields};
use async_graphql::{Object, ID};
use ref_cast::RefCast;

use crate::graphql::enums::Dimension;
use crate::service::grouping;

/// Which group a row belongs to: a rep, territory, manager or playbook id,
/// a segment or source name, or no id for NONE and for deals without one.
#[derive(RefCast)]
#[repr(transparent)]
pub struct GroupKey(pub grouping::GroupKey);

impl ReadyFields for GroupKey {
    fn ready_field(&self, field: &str) -> Option<async_graphql::Value> {
        let k = &self.0;
        Some(match field {
            "dimension" => ready_enum(Dimension::from(k.dimension)),
            "id" => ready_opt_str(k.id.as_deref()),
            "label" => ready_str(&k.label),
            _ => return None,
        })
    }
}

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
