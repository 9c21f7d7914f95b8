use crate::enums::{DealSource, DealStatus, ForecastCategory};
use sea_orm::entity::prelude::*;

/// An opportunity. Money is integer cents so SQL sums are exact everywhere.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deal")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub external_id: Option<String>,
    pub name: String,
    pub amount_cents: i64,
    pub currency: String,
    pub owner_id: i64,
    pub account_id: Option<i64>,
    pub territory_id: Option<i64>,
    pub stage_id: i64,
    pub status: DealStatus,
    pub forecast_category: ForecastCategory,
    pub source: Option<DealSource>,
    pub playbook_id: Option<i64>,
    pub opened_at: DateTimeUtc,
    pub expected_close_date: Option<Date>,
    pub closed_at: Option<DateTimeUtc>,
    pub lost_reason: Option<String>,
    pub version: i32,
    /// When the current revision took effect (deal_revision.valid_from of
    /// the latest version): a deal with `valid_from` before a time T is at
    /// its current state at T, so as-of reads only look up revisions of the
    /// deals changed since.
    pub valid_from: DateTimeUtc,
    /// Close-date moves to a later date while open (the latest revision's).
    pub push_count: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
