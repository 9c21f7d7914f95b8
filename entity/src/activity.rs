use crate::enums::ActivityKind;
use sea_orm::entity::prelude::*;

/// A call, email, meeting or task by a rep, on a lead, a deal or an account.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "activity")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub external_id: Option<String>,
    pub kind: ActivityKind,
    pub rep_id: i64,
    pub at: DateTimeUtc,
    pub lead_id: Option<i64>,
    pub deal_id: Option<i64>,
    pub account_id: Option<i64>,
    pub subject: Option<String>,
    pub outcome: Option<String>,
    pub duration_minutes: Option<i32>,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
