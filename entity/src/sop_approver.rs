use sea_orm::entity::prelude::*;

/// An approver named on an S&OP plan and their sign-off: the plan version
/// they approved and when. Release needs every approver's sign-off of the
/// plan's current version.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sop_approver")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub plan_id: i64,
    /// The approver's token subject.
    pub approver: String,
    pub approved_version: Option<i32>,
    pub approved_at: Option<DateTimeUtc>,
    pub note: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
