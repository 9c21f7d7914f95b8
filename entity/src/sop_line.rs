use crate::enums::SopLineKind;
use sea_orm::entity::prelude::*;

/// One number of a plan for a territory (None: deals and reps without a
/// territory) and month.
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
    /// Written by the system (confirmed baseline demand, computed capacity)
    /// rather than entered by a planner.
    pub generated: bool,
    pub created_at: DateTimeUtc,
    /// The previous revision this line was carried over from (reviseSopPlan);
    /// None for a line entered or generated in this plan.
    pub carried_from_plan_id: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
