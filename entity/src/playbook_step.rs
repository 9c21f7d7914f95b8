use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "playbook_step")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub playbook_id: i64,
    pub position: i32,
    pub title: String,
    pub guidance: Option<String>,
    pub stage_id: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
