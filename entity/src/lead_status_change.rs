use crate::enums::LeadStatus;
use sea_orm::entity::prelude::*;

/// One move of a lead between statuses; a new lead's first row has no
/// `from_status` and is stamped with its created_at.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "lead_status_change")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub lead_id: i64,
    pub from_status: Option<LeadStatus>,
    pub to_status: LeadStatus,
    pub changed_at: DateTimeUtc,
    pub actor: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
