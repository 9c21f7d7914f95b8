use sea_orm::entity::prelude::*;

/// A rep's target over the half-open range [start_date, end_date).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "quota")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub rep_id: i64,
    pub start_date: Date,
    pub end_date: Date,
    pub amount_cents: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
