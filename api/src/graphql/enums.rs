//! GraphQL enums, mapped one-to-one onto the stored enums.
use async_graphql::Enum;

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "entity::enums::Segment")]
pub enum Segment {
    Smb,
    MidMarket,
    Enterprise,
}

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "entity::enums::DealStatus")]
pub enum DealStatus {
    Open,
    Won,
    Lost,
}

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "entity::enums::StageKind")]
pub enum StageKind {
    Open,
    Won,
    Lost,
}

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "entity::enums::DealSource")]
pub enum DealSource {
    Inbound,
    Outbound,
    Partner,
    Referral,
    Expansion,
}

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "entity::enums::ForecastCategory")]
pub enum ForecastCategory {
    Pipeline,
    BestCase,
    Commit,
    Closed,
    Omitted,
}

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "entity::enums::SubmissionKind")]
pub enum SubmissionKind {
    Call,
    Adjustment,
}

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "entity::enums::SubmissionScope")]
pub enum SubmissionScope {
    Personal,
    Team,
}

/// The S&OP cycle, in order; a plan moves one stage at a time.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "entity::enums::SopStage")]
pub enum SopStage {
    DataGathering,
    DemandPlanning,
    SupplyPlanning,
    Reconciliation,
    Released,
}

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "entity::enums::SopLineKind")]
pub enum SopLineKind {
    Actual,
    Baseline,
    Demand,
    Supply,
    Adjustment,
}

/// Sort orders of deal lists. Every order is a keyset on (key, id), so
/// cursors stay valid while rows change. UPDATED_ASC is the incremental
/// sync order.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "crate::service::pagination::DealOrder")]
pub enum DealOrder {
    UpdatedDesc,
    UpdatedAsc,
    AmountDesc,
    AmountAsc,
    ExpectedCloseAsc,
    OpenedDesc,
}

pub fn map_list<A: Copy, B: From<A>>(v: &Option<Vec<A>>) -> Option<Vec<B>> {
    v.as_ref().map(|v| v.iter().map(|x| B::from(*x)).collect())
}

/// What metric and forecast rows are grouped by.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "crate::service::grouping::Dimension")]
pub enum Dimension {
    None,
    Rep,
    Territory,
    Segment,
    Manager,
    Source,
    Playbook,
    Stage,
    ForecastCategory,
    LostReason,
    Industry,
}

// No description: the contract's Role has none.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "crate::auth::Role")]
pub enum Role {
    Admin,
    Ops,
    Manager,
    Rep,
    Viewer,
    Integration,
}

/// A risk signal of an open deal (docs/design.md, Deal risk).
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "crate::domain::risk::RiskKind")]
pub enum RiskKind {
    /// No write for 30 days.
    Stale,
    /// The expected close date is past.
    CloseDatePassed,
    /// The close date moved later at least twice while open.
    PushedRepeatedly,
    /// The amount is below its first amount.
    AmountDecreased,
    /// Longer in its stage than 1.5x the mean days deals spend there.
    StuckInStage,
    /// No activity for 14 days (activities are not recorded yet: never shown).
    NoRecentActivity,
}

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "entity::enums::LeadStatus")]
pub enum LeadStatus {
    New,
    Working,
    Qualified,
    Converted,
    Disqualified,
}

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "entity::enums::ActivityKind")]
pub enum ActivityKind {
    Call,
    Email,
    Meeting,
    Task,
}

/// The order of a lead list.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "crate::service::lead::LeadOrder")]
pub enum LeadOrder {
    /// Newest first (by id); the default.
    NewestFirst,
    /// The incremental sync feed: oldest write first, by (updatedAt, id).
    UpdatedAsc,
}

/// The order of an activity list.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "crate::service::activity::ActivityOrder")]
pub enum ActivityOrder {
    /// Latest first, by (at, id); the default.
    LatestFirst,
    /// The incremental sync feed: oldest write first, by (updatedAt, id).
    UpdatedAsc,
}

/// The lead field a scoring rule reads.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "crate::service::lead_scoring::RuleField")]
pub enum LeadScoringField {
    Source,
    Industry,
    Segment,
    Title,
    Company,
    Email,
    Name,
    /// The territory's id, as text.
    TerritoryId,
}

/// How a scoring rule compares (text, ignoring case; a missing field is empty text).
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "crate::service::lead_scoring::RuleOperator")]
pub enum LeadScoringOperator {
    Equals,
    NotEquals,
    Contains,
    StartsWith,
    EndsWith,
    /// One of a comma-separated list.
    In,
    IsSet,
    IsNotSet,
}
