use sea_orm::entity::prelude::*;

/// A seller. Ratios are stored as integer parts per million so they stay
/// exact on both databases (0.10 is 100_000).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rep")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub external_id: Option<String>,
    pub name: String,
    pub email: String,
    pub title: Option<String>,
    pub territory_id: Option<i64>,
    pub manager_id: Option<i64>,
    pub hired_at: Date,
    pub active: bool,
    pub ramp_months: i32,
    pub commission_rate_ppm: i64,
    pub commission_threshold_ppm: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// False for people who manage but do not sell (docs/design.md,
    /// Forecast calls).
    pub quota_carrying: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
