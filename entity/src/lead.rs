use crate::enums::{LeadStatus, Segment};
use sea_orm::entity::prelude::*;

/// A prospect before it is a deal. Status moves forward
/// (NEW -> WORKING -> QUALIFIED -> CONVERTED, or DISQUALIFIED) and each
/// move's instant is kept on the row (worked_at, qualified_at, ...), set once
/// and never rewritten, so the funnel as of any past day reads the row alone.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "lead")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub external_id: Option<String>,
    pub name: String,
    pub company: Option<String>,
    pub email: Option<String>,
    pub title: Option<String>,
    pub source: Option<String>,
    pub owner_id: i64,
    pub territory_id: Option<i64>,
    pub segment: Option<Segment>,
    pub industry: Option<String>,
    pub status: LeadStatus,
    pub disqualified_reason: Option<String>,
    pub created_at: DateTimeUtc,
    /// The first activity on the lead, unless given explicitly
    /// (`first_response_given`).
    pub first_response_at: Option<DateTimeUtc>,
    pub first_response_given: bool,
    pub worked_at: Option<DateTimeUtc>,
    pub qualified_at: Option<DateTimeUtc>,
    pub converted_at: Option<DateTimeUtc>,
    pub disqualified_at: Option<DateTimeUtc>,
    /// The deal it became (CONVERTED).
    pub deal_id: Option<i64>,
    pub account_id: Option<i64>,
    /// 0..100, from the scoring rules in force when it was last scored.
    pub score: i32,
    /// The ids of the rules that matched, comma-separated (",3,7"; empty when none).
    pub score_rule_ids: String,
    pub version: i32,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
