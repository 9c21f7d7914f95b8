//! String-backed enums shared by several tables. Stored as their
//! SCREAMING_SNAKE names so BI tools reading the tables see the API's words.
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Segment {
    #[sea_orm(string_value = "SMB")]
    Smb,
    #[sea_orm(string_value = "MID_MARKET")]
    MidMarket,
    #[sea_orm(string_value = "ENTERPRISE")]
    Enterprise,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(8))")]
pub enum StageKind {
    #[sea_orm(string_value = "OPEN")]
    Open,
    #[sea_orm(string_value = "WON")]
    Won,
    #[sea_orm(string_value = "LOST")]
    Lost,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(8))")]
pub enum DealStatus {
    #[sea_orm(string_value = "OPEN")]
    Open,
    #[sea_orm(string_value = "WON")]
    Won,
    #[sea_orm(string_value = "LOST")]
    Lost,
}

impl From<StageKind> for DealStatus {
    fn from(kind: StageKind) -> Self {
        match kind {
            StageKind::Open => DealStatus::Open,
            StageKind::Won => DealStatus::Won,
            StageKind::Lost => DealStatus::Lost,
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum DealSource {
    #[sea_orm(string_value = "INBOUND")]
    Inbound,
    #[sea_orm(string_value = "OUTBOUND")]
    Outbound,
    #[sea_orm(string_value = "PARTNER")]
    Partner,
    #[sea_orm(string_value = "REFERRAL")]
    Referral,
    #[sea_orm(string_value = "EXPANSION")]
    Expansion,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum ForecastCategory {
    #[sea_orm(string_value = "PIPELINE")]
    Pipeline,
    #[sea_orm(string_value = "BEST_CASE")]
    BestCase,
    #[sea_orm(string_value = "COMMIT")]
    Commit,
    #[sea_orm(string_value = "CLOSED")]
    Closed,
    #[sea_orm(string_value = "OMITTED")]
    Omitted,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(24))")]
pub enum SopStage {
    #[sea_orm(string_value = "DATA_GATHERING")]
    DataGathering,
    #[sea_orm(string_value = "DEMAND_PLANNING")]
    DemandPlanning,
    #[sea_orm(string_value = "SUPPLY_PLANNING")]
    SupplyPlanning,
    #[sea_orm(string_value = "RECONCILIATION")]
    Reconciliation,
    #[sea_orm(string_value = "RELEASED")]
    Released,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum SopLineKind {
    #[sea_orm(string_value = "ACTUAL")]
    Actual,
    #[sea_orm(string_value = "BASELINE")]
    Baseline,
    #[sea_orm(string_value = "DEMAND")]
    Demand,
    #[sea_orm(string_value = "SUPPLY")]
    Supply,
    #[sea_orm(string_value = "ADJUSTMENT")]
    Adjustment,
}

/// Who made a forecast submission: the rep itself (CALL) or someone above
/// it, OPS or ADMIN (ADJUSTMENT).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum SubmissionKind {
    #[sea_orm(string_value = "CALL")]
    Call,
    #[sea_orm(string_value = "ADJUSTMENT")]
    Adjustment,
}

/// What a forecast submission judges: the rep's own number (PERSONAL) or
/// its whole roll-up (TEAM).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum SubmissionScope {
    #[sea_orm(string_value = "PERSONAL")]
    Personal,
    #[sea_orm(string_value = "TEAM")]
    Team,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum LeadStatus {
    #[sea_orm(string_value = "NEW")]
    New,
    #[sea_orm(string_value = "WORKING")]
    Working,
    #[sea_orm(string_value = "QUALIFIED")]
    Qualified,
    #[sea_orm(string_value = "CONVERTED")]
    Converted,
    #[sea_orm(string_value = "DISQUALIFIED")]
    Disqualified,
}

impl LeadStatus {
    /// NEW, WORKING and QUALIFIED leads are open: they are re-scored when
    /// the rules change and can still be converted or disqualified.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            LeadStatus::New | LeadStatus::Working | LeadStatus::Qualified
        )
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum ActivityKind {
    #[sea_orm(string_value = "CALL")]
    Call,
    #[sea_orm(string_value = "EMAIL")]
    Email,
    #[sea_orm(string_value = "MEETING")]
    Meeting,
    #[sea_orm(string_value = "TASK")]
    Task,
}
