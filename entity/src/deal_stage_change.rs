use sea_orm::entity::prelude::*;

/// One move of a deal between stages; a new deal's first row has no
/// `from_stage_id` and is stamped with the deal's opened_at.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deal_stage_change")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub deal_id: i64,
    pub from_stage_id: Option<i64>,
    pub to_stage_id: i64,
    pub changed_at: DateTimeUtc,
    pub actor: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
