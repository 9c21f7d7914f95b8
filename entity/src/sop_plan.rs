use crate::enums::SopStage;
use sea_orm::entity::prelude::*;

/// A sales and operations plan (one revision of it).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sop_plan")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub horizon_start: Date,
    pub horizon_months: i32,
    /// Months of closed-won actuals gathered before horizon_start.
    pub lookback_months: i32,
    /// Whole months before horizon_start that set the baseline's run rate.
    pub baseline_lookback_months: i32,
    /// Growth applied to the baseline run rate, parts per million (signed).
    pub growth_rate_ppm: i64,
    pub stage: SopStage,
    pub revision: i32,
    pub previous_revision_id: Option<i64>,
    pub owner: String,
    pub released_at: Option<DateTimeUtc>,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The first month the plan plans: months of the horizon before it were
    /// over when the plan was made and take their ACTUAL as demand. None
    /// (plans made before it was recorded): horizon_start.
    pub planned_from: Option<Date>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
