use crate::enums::StageKind;
use sea_orm::entity::prelude::*;

/// A pipeline stage. `probability_ppm` is the win probability in parts per
/// million (0.60 is 600_000), exact on both databases.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "stage")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub position: i32,
    pub probability_ppm: i64,
    pub kind: StageKind,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
