//! Output types of the sales metrics (service::metrics) and the loader that
//! computes Playbook.effectiveness for every playbook of a list at once.
use crate::graphql::errors::Extend as _;
use ref_cast::RefCast;

use async_graphql::{Context, Enum, Object, Result, Value};
use rust_decimal::Decimal;

use super::org::{Rep, Stage};
use super::GroupKey;
use crate::error::AppError;
use crate::graphql::eager::{
    ready, ready_decimal, ready_node, ready_opt, ready_opt_decimal, Eager, EagerList, ReadyFields,
};
use crate::graphql::scalars::Date;
use crate::graphql::scalars::Period;
use crate::service::metrics::{
    attainment, commissions, funnel, health, performance, pipeline, playbook, series, win_rates,
};

/// Bucket size of a metric series.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "crate::domain::period::Granularity")]
pub enum Granularity {
    Week,
    Month,
    Quarter,
    Year,
}

/// A metric that metricSeries can bucket.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "crate::service::metrics::series::Metric")]
pub enum Metric {
    ClosedWonAmount,
    DealsWon,
    DealsLost,
    WinRate,
    NewPipeline,
    AvgDealSize,
    AvgSalesCycleDays,
}

/// High/low performer crossed with improving/declining closed-won.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "crate::domain::metrics::Quadrant")]
pub enum PerformanceQuadrant {
    RisingStar,
    FallingStar,
    ImprovingLaggard,
    DeterioratingLaggard,
    NoActivity,
}

pub struct WinRateRow(pub win_rates::WinRateRow);

impl ReadyFields for WinRateRow {
    fn ready_field(&self, field: &str) -> Option<Value> {
        let r = &self.0;
        Some(match field {
            "won" => ready(&r.won),
            "lost" => ready(&r.lost),
            "winRate" => ready_opt(r.win_rate.as_ref()),
            "wonAmount" => ready_decimal(&r.won_amount),
            "lostAmount" => ready_decimal(&r.lost_amount),
            "amountWinRate" => ready_opt(r.amount_win_rate.as_ref()),
            _ => return None,
        })
    }
    fn ready_object(&self, ctx: &Context<'_>, field: &str) -> Option<Value> {
        match field {
            "key" => ready_node(ctx, GroupKey::ref_cast(&self.0.key)),
            _ => None,
        }
    }
}

#[Object]
impl WinRateRow {
    async fn key(&self) -> Eager<GroupKey> {
        Eager(GroupKey(self.0.key.clone()))
    }
    async fn won(&self) -> i64 {
        self.0.won
    }
    async fn lost(&self) -> i64 {
        self.0.lost
    }
    /// won / (won + lost); null when nothing closed.
    async fn win_rate(&self) -> Option<f64> {
        self.0.win_rate
    }
    async fn won_amount(&self) -> Decimal {
        self.0.won_amount
    }
    async fn lost_amount(&self) -> Decimal {
        self.0.lost_amount
    }
    /// wonAmount / (wonAmount + lostAmount).
    async fn amount_win_rate(&self) -> Option<f64> {
        self.0.amount_win_rate
    }
}

#[derive(RefCast)]
#[repr(transparent)]
pub struct RepAttainment(pub attainment::RepAttainment);

/// The pipeline fields are ready when their part was computed (otherwise
/// their resolvers report it).
impl ReadyFields for RepAttainment {
    fn ready_field(&self, field: &str) -> Option<Value> {
        let r = &self.0;
        let pipeline = r.pipeline.as_ref();
        Some(match field {
            "quota" => ready_decimal(&r.quota),
            "closedWon" => ready_decimal(&r.closed_won),
            "attainment" => ready_opt(r.attainment.as_ref()),
            "attainedQuota" => ready(&r.attained_quota),
            "gapToQuota" => ready_decimal(&r.gap_to_quota),
            "openPipeline" => ready_decimal(&pipeline?.open_pipeline),
            "weightedPipeline" => ready_decimal(&pipeline?.weighted_pipeline),
            "pipelineCoverage" => ready_opt(pipeline?.pipeline_coverage.as_ref()),
            _ => return None,
        })
    }
    fn ready_object(&self, ctx: &Context<'_>, field: &str) -> Option<Value> {
        match field {
            "rep" => ready_node(ctx, Rep::ref_cast(&self.0.rep)),
            _ => None,
        }
    }
}

impl RepAttainment {
    /// The pipeline part, computed when the query selects one of its
    /// fields (`RepAttainment::PIPELINE_FIELDS`).
    fn pipeline(&self) -> Result<&attainment::RepPipeline> {
        self.0
            .pipeline
            .as_ref()
            .ok_or_else(|| not_computed("pipeline"))
    }

    /// The fields that need the open pipeline statement.
    pub const PIPELINE_FIELDS: [&'static str; 3] =
        ["openPipeline", "weightedPipeline", "pipelineCoverage"];
}

#[Object]
impl RepAttainment {
    async fn rep(&self) -> Eager<Rep> {
        Eager(Rep(self.0.rep.clone()))
    }
    async fn quota(&self) -> Decimal {
        self.0.quota
    }
    async fn closed_won(&self) -> Decimal {
        self.0.closed_won
    }
    /// closedWon / quota.
    async fn attainment(&self) -> Option<f64> {
        self.0.attainment
    }
    async fn attained_quota(&self) -> bool {
        self.0.attained_quota
    }
    async fn open_pipeline(&self) -> Result<Decimal> {
        Ok(self.pipeline()?.open_pipeline)
    }
    async fn weighted_pipeline(&self) -> Result<Decimal> {
        Ok(self.pipeline()?.weighted_pipeline)
    }
    /// max(quota - closedWon, 0).
    async fn gap_to_quota(&self) -> Decimal {
        self.0.gap_to_quota
    }
    /// openPipeline / gapToQuota; null when the gap is 0.
    async fn pipeline_coverage(&self) -> Result<Option<f64>> {
        Ok(self.pipeline()?.pipeline_coverage)
    }
}

pub struct QuotaAttainmentReport(pub attainment::AttainmentReport);

#[Object]
impl QuotaAttainmentReport {
    async fn period(&self) -> Period {
        self.0.period.into()
    }
    async fn rows(&self) -> EagerList<&RepAttainment> {
        self.0.rows.iter().map(RepAttainment::ref_cast).collect()
    }
    async fn total_quota(&self) -> Decimal {
        self.0.total_quota
    }
    async fn total_closed_won(&self) -> Decimal {
        self.0.total_closed_won
    }
    async fn attainment(&self) -> Option<f64> {
        self.0.attainment
    }
    async fn reps_with_quota(&self) -> i64 {
        self.0.reps_with_quota
    }
    async fn reps_at_quota(&self) -> i64 {
        self.0.reps_at_quota
    }
    /// repsAtQuota / repsWithQuota: the quota achievement rate.
    async fn quota_achievement_rate(&self) -> Option<f64> {
        self.0.quota_achievement_rate
    }
}

pub struct PipelineSummaryRow(pub pipeline::PipelineSummaryRow);

/// A part's fields are ready when the part was computed (otherwise their
/// resolvers report it).
impl ReadyFields for PipelineSummaryRow {
    fn ready_field(&self, field: &str) -> Option<Value> {
        let r = &self.0;
        let (open, closed) = (r.open.as_ref(), r.closed.as_ref());
        Some(match field {
            "openDeals" => ready(&open?.open_deals),
            "pipelineValue" => ready_decimal(&open?.pipeline_value),
            "weightedPipeline" => ready_decimal(&open?.weighted_pipeline),
            "avgDealSize" => ready_opt_decimal(closed?.avg_deal_size.as_ref()),
            "avgSalesCycleDays" => ready_opt(closed?.avg_sales_cycle_days.as_ref()),
            "winRate" => ready_opt(closed?.win_rate.as_ref()),
            "medianSalesCycleDays" => ready_opt(r.median_sales_cycle_days?.as_ref()),
            _ => return None,
        })
    }
    fn ready_object(&self, ctx: &Context<'_>, field: &str) -> Option<Value> {
        match field {
            "key" => ready_node(ctx, GroupKey::ref_cast(&self.0.key)),
            _ => None,
        }
    }
}

impl PipelineSummaryRow {
    /// The fields of each part (`pipeline::SummaryParts`).
    pub const OPEN_FIELDS: [&'static str; 3] = ["openDeals", "pipelineValue", "weightedPipeline"];
    pub const CLOSED_FIELDS: [&'static str; 3] = ["avgDealSize", "avgSalesCycleDays", "winRate"];
    pub const MEDIAN_FIELDS: [&'static str; 1] = ["medianSalesCycleDays"];

    fn open(&self) -> Result<&pipeline::OpenPart> {
        self.0
            .open
            .as_ref()
            .ok_or_else(|| not_computed("open pipeline"))
    }
    fn closed(&self) -> Result<&pipeline::ClosedPart> {
        self.0
            .closed
            .as_ref()
            .ok_or_else(|| not_computed("closed deals"))
    }
}

/// A part of an answer its selection did not ask for (a bug if reached).
fn not_computed(part: &str) -> async_graphql::Error {
    AppError::internal(format!("the {part} part was not computed")).extend()
}

#[Object]
impl PipelineSummaryRow {
    async fn key(&self) -> Eager<GroupKey> {
        Eager(GroupKey(self.0.key.clone()))
    }
    async fn open_deals(&self) -> Result<i64> {
        Ok(self.open()?.open_deals)
    }
    async fn pipeline_value(&self) -> Result<Decimal> {
        Ok(self.open()?.pipeline_value)
    }
    async fn weighted_pipeline(&self) -> Result<Decimal> {
        Ok(self.open()?.weighted_pipeline)
    }
    /// Mean amount of deals won in the period.
    async fn avg_deal_size(&self) -> Result<Option<Decimal>> {
        Ok(self.closed()?.avg_deal_size)
    }
    /// Mean days from openedAt to closedAt of deals won in the period.
    async fn avg_sales_cycle_days(&self) -> Result<Option<f64>> {
        Ok(self.closed()?.avg_sales_cycle_days)
    }
    async fn median_sales_cycle_days(&self) -> Result<Option<f64>> {
        self.0
            .median_sales_cycle_days
            .ok_or_else(|| not_computed("median"))
    }
    async fn win_rate(&self) -> Result<Option<f64>> {
        Ok(self.closed()?.win_rate)
    }
}

pub struct FunnelStep(pub funnel::FunnelStep);

impl ReadyFields for FunnelStep {}

#[Object]
impl FunnelStep {
    async fn stage(&self) -> Stage {
        Stage(self.0.stage.clone())
    }
    /// Deals that entered this stage in the period.
    async fn entered(&self) -> i64 {
        self.0.entered
    }
    /// Of those, deals that later moved to a stage further on (won included).
    async fn advanced(&self) -> i64 {
        self.0.advanced
    }
    /// Of those, deals that were lost while in this stage.
    async fn lost_here(&self) -> i64 {
        self.0.lost_here
    }
    /// advanced / entered.
    async fn conversion_rate(&self) -> Option<f64> {
        self.0.conversion_rate
    }
    /// Mean UTC days from entering to the next move (or today while still there); null for WON and LOST stages.
    async fn avg_days_in_stage(&self) -> Option<f64> {
        self.0.avg_days_in_stage
    }
}

pub struct RepPerformance(pub performance::RepPerformance);

impl ReadyFields for RepPerformance {}

#[Object]
impl RepPerformance {
    async fn rep(&self) -> Rep {
        Rep(self.0.rep.clone())
    }
    async fn current(&self) -> Decimal {
        self.0.current
    }
    async fn previous(&self) -> Decimal {
        self.0.previous
    }
    async fn current_attainment(&self) -> Option<f64> {
        self.0.current_attainment
    }
    async fn previous_attainment(&self) -> Option<f64> {
        self.0.previous_attainment
    }
    /// current - previous closed-won, relative to previous; null when previous is 0.
    async fn change(&self) -> Option<f64> {
        self.0.change
    }
    async fn quadrant(&self) -> PerformanceQuadrant {
        self.0.quadrant.into()
    }
}

pub struct CommissionRow(pub commissions::CommissionRow);

impl ReadyFields for CommissionRow {}

#[Object]
impl CommissionRow {
    async fn rep(&self) -> Eager<Rep> {
        Eager(Rep(self.0.rep.clone()))
    }
    async fn quota(&self) -> Decimal {
        self.0.quota
    }
    async fn closed_won(&self) -> Decimal {
        self.0.closed_won
    }
    async fn attainment(&self) -> Option<f64> {
        self.0.attainment
    }
    async fn rate(&self) -> Decimal {
        self.0.rate
    }
    /// True when attainment reached the plan's threshold (1.0 unless set).
    async fn qualified(&self) -> bool {
        self.0.qualified
    }
    async fn earned(&self) -> Decimal {
        self.0.earned
    }
}

pub struct SeriesPoint(pub series::SeriesPoint);

impl ReadyFields for SeriesPoint {}

#[Object]
impl SeriesPoint {
    async fn bucket(&self) -> Period {
        self.0.bucket.into()
    }
    async fn start(&self) -> Date {
        Date(self.0.bucket.start())
    }
    async fn key(&self) -> Eager<GroupKey> {
        Eager(GroupKey(self.0.key.clone()))
    }
    async fn value(&self) -> Option<f64> {
        self.0.value
    }
    /// Exact money for money metrics (CLOSED_WON_AMOUNT, NEW_PIPELINE, AVG_DEAL_SIZE); null for the others.
    async fn amount(&self) -> Option<rust_decimal::Decimal> {
        self.0.amount
    }
    /// Relative change from the previous bucket of the same key; null for the first bucket or a previous value of 0.
    async fn change(&self) -> Option<f64> {
        self.0.change
    }
    /// True when the bucket ends after today (its value is still moving).
    async fn partial(&self) -> bool {
        self.0.partial
    }
}

pub struct DataIssue(pub health::DataIssue);

impl ReadyFields for DataIssue {}

#[Object]
impl DataIssue {
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    async fn entity_type(&self) -> &str {
        &self.0.entity_type
    }
    async fn entity_id(&self) -> async_graphql::ID {
        async_graphql::ID(self.0.entity_id.to_string())
    }
    async fn message(&self) -> String {
        self.0.message()
    }
}

pub struct DataHealth {
    /// The counts whose fields are selected (the others `None`).
    pub counts: health::DataHealth,
    pub criteria: health::HealthCriteria,
}

impl DataHealth {
    /// Each count field with its count, in `health::Count::ALL`'s order.
    pub const COUNT_FIELDS: [(&'static str, health::Count); 8] = [
        (
            "openDealsPastExpectedClose",
            health::Count::PastExpectedClose,
        ),
        (
            "openDealsWithoutExpectedClose",
            health::Count::WithoutExpectedClose,
        ),
        ("openDealsNotUpdated", health::Count::NotUpdated),
        ("repsWithoutTerritory", health::Count::RepsWithoutTerritory),
        (
            "inactiveRepsOwningOpenDeals",
            health::Count::InactiveRepsOwningOpenDeals,
        ),
        ("leadsNotAnswered", health::Count::LeadsNotAnswered),
        ("staleLeads", health::Count::StaleLeads),
        ("leadsSharingEmail", health::Count::LeadsSharingEmail),
    ];
}

/// A dataHealth count, computed when its field `field` was selected.
fn count(field: &str, value: Option<i64>) -> Result<i64> {
    value.ok_or_else(|| not_computed(field))
}

#[Object]
impl DataHealth {
    async fn open_deals_past_expected_close(&self) -> Result<i64> {
        count(
            "openDealsPastExpectedClose",
            self.counts.past_expected_close,
        )
    }
    async fn open_deals_without_expected_close(&self) -> Result<i64> {
        count(
            "openDealsWithoutExpectedClose",
            self.counts.without_expected_close,
        )
    }
    async fn open_deals_not_updated(&self) -> Result<i64> {
        count("openDealsNotUpdated", self.counts.not_updated)
    }
    async fn reps_without_territory(&self) -> Result<i64> {
        count("repsWithoutTerritory", self.counts.reps_without_territory)
    }
    async fn inactive_reps_owning_open_deals(&self) -> Result<i64> {
        count(
            "inactiveRepsOwningOpenDeals",
            self.counts.inactive_reps_owning_open_deals,
        )
    }
    /// Open leads (NEW, WORKING, QUALIFIED) without a first response, created more than leadSlaHours ago.
    async fn leads_not_answered(&self) -> Result<i64> {
        count("leadsNotAnswered", self.counts.leads_not_answered)
    }
    /// Open leads neither updated nor touched by an activity for staleAfterDays.
    async fn stale_leads(&self) -> Result<i64> {
        count("staleLeads", self.counts.stale_leads)
    }
    /// Open leads whose email another lead also has.
    async fn leads_sharing_email(&self) -> Result<i64> {
        count("leadsSharingEmail", self.counts.leads_sharing_email)
    }
    /// Concrete rows behind the counts, in the order of the counts and by id (first defaults to 100).
    #[graphql(complexity = "crate::graphql::list_complexity(first, 100, child_complexity)")]
    async fn issues(&self, ctx: &Context<'_>, first: Option<i32>) -> Result<EagerList<DataIssue>> {
        let limit = crate::graphql::page_size(ctx, first, 100)?;
        let db = crate::graphql::read_db(ctx)?;
        Ok(health::data_issues(db, &self.criteria, limit)
            .await
            .map_err(|e| e.extend())?
            .into_iter()
            .map(DataIssue)
            .collect())
    }
}

pub struct PlaybookEffectiveness(pub playbook::Effectiveness);

#[Object]
impl PlaybookEffectiveness {
    async fn deals(&self) -> i64 {
        self.0.deals
    }
    async fn won(&self) -> i64 {
        self.0.won
    }
    async fn lost(&self) -> i64 {
        self.0.lost
    }
    async fn win_rate(&self) -> Option<f64> {
        self.0.win_rate
    }
    /// Win rate of the deals closed in the same period without this playbook.
    async fn baseline_win_rate(&self) -> Option<f64> {
        self.0.baseline_win_rate
    }
    /// Mean days opened -> closed of this playbook's deals won in the period.
    async fn avg_cycle_days(&self) -> Option<f64> {
        self.0.avg_cycle_days
    }
    async fn baseline_avg_cycle_days(&self) -> Option<f64> {
        self.0.baseline_avg_cycle_days
    }
}

/// Whether a definition is a metric or a forecast method.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "crate::service::metric_definitions::DefinitionKind")]
pub enum MetricDefinitionKind {
    Metric,
    Forecast,
}

/// How a metric or forecast method is computed: the metric layer BI tools read
/// (also `GET /export/metric-definitions`). The services check `groupBy` against
/// `dimensions`, so the definition and the behaviour cannot drift apart.
pub struct MetricDefinition(pub &'static crate::service::metric_definitions::MetricDefinition);

impl ReadyFields for MetricDefinition {}

#[Object]
impl MetricDefinition {
    /// The Query field computing it.
    async fn name(&self) -> &str {
        self.0.name
    }
    /// The forecast method (the `method` argument of `forecast`); null for the others.
    async fn method(&self) -> Option<&str> {
        self.0.method
    }
    async fn kind(&self) -> MetricDefinitionKind {
        self.0.kind.into()
    }
    /// The formula in words.
    async fn formula(&self) -> &str {
        self.0.formula
    }
    /// The stored fields it reads, as table.column.
    async fn reads(&self) -> Vec<&str> {
        self.0.reads.to_vec()
    }
    /// The groupBy values it takes (empty: it takes no groupBy).
    async fn dimensions(&self) -> Vec<crate::graphql::enums::Dimension> {
        self.0.dimensions.iter().map(|d| (*d).into()).collect()
    }
    /// Periods, day counts, rounding and scope.
    async fn conventions(&self) -> Vec<&str> {
        self.0.conventions.to_vec()
    }
}
