use crate::enums::{ForecastCategory, SubmissionKind, SubmissionScope};
use sea_orm::entity::prelude::*;

/// A rep's call for a period. Rows are never overwritten: the latest
/// submitted_at on or before a date is the one that counts as of that date.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "forecast_submission")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub rep_id: i64,
    pub period: String,
    pub period_start: Date,
    pub period_end: Date,
    pub category: ForecastCategory,
    pub amount_cents: i64,
    pub note: Option<String>,
    pub submitted_at: DateTimeUtc,
    pub submitted_by: String,
    /// CALL when the rep's own token made it, ADJUSTMENT otherwise.
    pub kind: SubmissionKind,
    /// PERSONAL: the rep's own number; TEAM: its roll-up.
    pub scope: SubmissionScope,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
