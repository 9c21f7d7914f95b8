use crate::enums::SopLineKind;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "sop_line")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub plan_id: i64,
    pub kind: SopLineKind,
    pub territory_id: Option<i64>,
    pub month: Date,
    pub amount_cents: i64,
    pub headcount: Option<f64>,
    pub budget_cents: Option<i64>,
    pub note: Option<String>,
    pub author: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
