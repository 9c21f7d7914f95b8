use sea_orm::entity::prelude::*;

/// One lead-scoring rule: `points` when the lead's `field` matches `value`
/// by `operator`. Rules are replaced as a set; the replaced ones keep their
/// row with `retired_at` so scores computed from them stay explainable.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "lead_scoring_rule")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub position: i32,
    pub field: String,
    pub operator: String,
    pub value: String,
    pub points: i32,
    pub created_at: DateTimeUtc,
    pub created_by: String,
    pub retired_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
