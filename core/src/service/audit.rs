//! The audit trail: every mutation records who changed which fields of what,
//! in the same transaction as the change.
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde_json::{Map, Value};

use entity::audit_entry;

use crate::clock;
use crate::error::AppResult;

/// The changed fields of one entity: `{field: [old, new]}`.
#[derive(Debug, Default, Clone)]
pub struct Changes(Map<String, Value>);

impl Changes {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a field when its value changed.
    pub fn field<T: serde::Serialize + PartialEq>(
        &mut self,
        name: &str,
        old: &T,
        new: &T,
    ) -> &mut Self {
        if old != new {
            self.0
                .insert(name.to_owned(), Value::Array(vec![json(old), json(new)]));
        }
        self
    }

    /// Records a field of a newly created entity (old is null).
    pub fn created<T: serde::Serialize>(&mut self, name: &str, new: &T) -> &mut Self {
        let v = json(new);
        if !v.is_null() {
            self.0
                .insert(name.to_owned(), Value::Array(vec![Value::Null, v]));
        }
        self
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn to_json(&self) -> String {
        Value::Object(self.0.clone()).to_string()
    }

    pub fn as_value(&self) -> Value {
        Value::Object(self.0.clone())
    }

    /// Adds another set of changes (of other fields) to this one.
    pub fn merge(&mut self, other: Changes) -> &mut Self {
        self.0.extend(other.0);
        self
    }

    pub fn contains(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }

    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// The changes as a list of `{field, from, to}` (the API's FieldChange
    /// shape), values as their JSON text form.
    pub fn field_changes(&self) -> Value {
        Value::Array(
            self.0
                .iter()
                .map(|(field, pair)| {
                    let at = |i: usize| pair.get(i).cloned().unwrap_or(Value::Null);
                    serde_json::json!({"field": field, "from": at(0), "to": at(1)})
                })
                .collect(),
        )
    }
}

fn json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

pub async fn record(
    db: &impl ConnectionTrait,
    actor: &str,
    action: &str,
    entity_type: &str,
    entity_id: impl ToString,
    changes: &Changes,
) -> AppResult<()> {
    audit_entry::ActiveModel {
        at: Set(clock::now()),
        actor: Set(actor.to_owned()),
        action: Set(action.to_owned()),
        entity_type: Set(entity_type.to_owned()),
        entity_id: Set(entity_id.to_string()),
        changes: Set(changes.to_json()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Newest first.
pub async fn list(
    db: &impl ConnectionTrait,
    entity_type: Option<&str>,
    entity_id: Option<&str>,
    limit: u64,
) -> AppResult<Vec<audit_entry::Model>> {
    use sea_orm::ColumnTrait;
    let mut q = audit_entry::Entity::find();
    if let Some(t) = entity_type {
        q = q.filter(audit_entry::Column::EntityType.eq(t));
    }
    if let Some(id) = entity_id {
        q = q.filter(audit_entry::Column::EntityId.eq(id));
    }
    Ok(q.order_by_desc(audit_entry::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}
