use crate::enums::{DealSource, DealStatus, ForecastCategory};
use sea_orm::entity::prelude::*;

/// One written version of a deal: its fields after the change, from
/// `valid_from` (when the change took effect) until the next revision's.
/// Never updated or deleted; a deal's revisions have increasing versions and
/// non-decreasing `valid_from`, so the revision in force at a time T is the
/// one with the highest version among those with `valid_from < T`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deal_revision")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub deal_id: i64,
    pub version: i32,
    pub valid_from: DateTimeUtc,
    pub recorded_at: DateTimeUtc,
    pub actor: String,
    pub name: String,
    pub amount_cents: i64,
    pub owner_id: i64,
    pub account_id: Option<i64>,
    pub territory_id: Option<i64>,
    pub stage_id: i64,
    pub status: DealStatus,
    pub forecast_category: ForecastCategory,
    pub source: Option<DealSource>,
    pub playbook_id: Option<i64>,
    pub expected_close_date: Option<Date>,
    pub closed_at: Option<DateTimeUtc>,
    pub lost_reason: Option<String>,
    /// Close-date moves to a later date while open, up to this revision.
    pub push_count: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
