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
    /// The risk facts (docs/design.md, Deal risk), kept by the writers so a
    /// page of deals reads them with its rows: the amount the deal was
    /// created with (its first revision's)...
    pub first_amount_cents: Option<i64>,
    /// ...when its latest push took effect (none before the first push)...
    pub pushed_at: Option<DateTimeUtc>,
    /// ...when it last entered its current stage (its latest stage change
    /// into that stage)...
    pub stage_entered_at: Option<DateTimeUtc>,
    /// ...and its latest activity (kept by the activity writers alone).
    pub last_activity_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
