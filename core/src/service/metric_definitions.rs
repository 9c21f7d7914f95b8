//! The metric layer: one definition per metric and forecast method, in one
//! place. Each says how the number is computed (in words), which stored
//! fields it reads, which grouping dimensions it takes and the conventions
//! behind it. The GraphQL `metricDefinitions` query and
//! `GET /export/metric-definitions` publish these values as they are, and
//! the services check a `groupBy` against `dimensions` here
//! (`check_group_by`), so a definition cannot promise a grouping the code
//! refuses or the other way round. docs/design.md (Metrics, Forecasts) holds
//! the worked examples.
use super::grouping::Dimension;
use crate::error::{AppError, AppResult};

/// Whether a definition is a metric or a forecast method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefinitionKind {
    Metric,
    Forecast,
}

#[derive(Debug)]
pub struct MetricDefinition {
    /// The Query field computing it.
    pub name: &'static str,
    /// The forecast method (the `method` argument), for `forecast` only.
    pub method: Option<&'static str>,
    pub kind: DefinitionKind,
    pub formula: &'static str,
    /// Stored fields read, as table.column.
    pub reads: &'static [&'static str],
    /// The `groupBy` values it takes (empty: no groupBy argument).
    pub dimensions: &'static [Dimension],
    pub conventions: &'static [&'static str],
}

use Dimension as D;

/// Every dimension, in the order of the GraphQL enum.
pub const ALL_DIMENSIONS: &[Dimension] = &[
    D::None,
    D::Rep,
    D::Territory,
    D::Segment,
    D::Manager,
    D::Source,
    D::Playbook,
    D::Stage,
    D::ForecastCategory,
    D::LostReason,
    D::Industry,
];

const PERIODS: &str = "Periods are half-open [start, end) on UTC calendar days; an instant \
                       falls in a period when start <= its UTC date < end.";
const MONEY: &str = "Money is summed exactly in integer cents and rounded to cents once, half \
                     away from zero, at the end.";
const RATIOS: &str = "A ratio with a zero denominator is null, never 0.";
const DAYS: &str = "Day counts are differences of UTC calendar dates.";
const SCOPE: &str = "Only deals the caller may read count: REP its own, MANAGER its team \
                     (transitively), other readers all.";
const OPEN_IN_PERIOD: &str = "An open deal is expected in the period by its expected close date, \
                              else opened_at + the average won cycle (whole days, half up) of \
                              the 365 days ending today.";
const AS_OF: &str = "As of the end of a UTC day (default today): every deal field is read from \
                     its revision in force then; deals opened later are ignored.";

const CLOSED: &[&str] = &[
    "deal.status",
    "deal.closed_at",
    "deal.amount_cents",
    "deal.opened_at",
];

pub const DEFINITIONS: &[MetricDefinition] = &[
    MetricDefinition {
        name: "winRates",
        method: None,
        kind: DefinitionKind::Metric,
        formula: "Per group, won = deals WON with closed_at in the period, lost = deals LOST with \
                  closed_at in the period; winRate = won / (won + lost); wonAmount and lostAmount \
                  sum their amounts; amountWinRate = wonAmount / (wonAmount + lostAmount). \
                  Grouped rows list only groups with a closed deal.",
        reads: CLOSED,
        dimensions: ALL_DIMENSIONS,
        conventions: &[PERIODS, MONEY, RATIOS, SCOPE],
    },
    MetricDefinition {
        name: "quotaAttainment",
        method: None,
        kind: DefinitionKind::Metric,
        formula: "Per rep: quota = the rep's quotas in the period prorated by overlapping days; \
                  closedWon = amounts of deals WON in the period; attainment = closedWon / quota; \
                  gapToQuota = max(quota - closedWon, 0); openPipeline and weightedPipeline = \
                  open deals expected in the period (weighted by stage probability); \
                  pipelineCoverage = openPipeline / gap. Totals over the rows; \
                  quotaAchievementRate = reps at or over 100% / reps with a quota.",
        reads: &[
            "quota.amount_cents",
            "quota.start_date",
            "quota.end_date",
            "deal.status",
            "deal.closed_at",
            "deal.amount_cents",
            "deal.expected_close_date",
            "deal.stage_id",
            "stage.probability_ppm",
            "rep.active",
            "rep.quota_carrying",
        ],
        dimensions: &[],
        conventions: &[PERIODS, MONEY, RATIOS, SCOPE, OPEN_IN_PERIOD],
    },
    MetricDefinition {
        name: "pipelineSummary",
        method: None,
        kind: DefinitionKind::Metric,
        formula: "Per group: openDeals and pipelineValue = the OPEN deals expected in the period; \
                  weightedPipeline = sum of amount x stage probability over them; beside what \
                  closed in the period: winRate = won / (won + lost), avgDealSize = won amount / \
                  won deals, avg and median sales cycle = days opened_at to closed_at of the \
                  deals won.",
        reads: &[
            "deal.status",
            "deal.amount_cents",
            "deal.expected_close_date",
            "deal.opened_at",
            "deal.closed_at",
            "deal.stage_id",
            "stage.probability_ppm",
        ],
        dimensions: ALL_DIMENSIONS,
        conventions: &[PERIODS, MONEY, RATIOS, DAYS, SCOPE, OPEN_IN_PERIOD],
    },
    MetricDefinition {
        name: "pipelineChanges",
        method: None,
        kind: DefinitionKind::Metric,
        formula: "The open pipeline expected in the period as of the end of `from` (starting) and \
                  of `to` (ending), and every deal's move between them in exactly one bucket: \
                  created, movedIn, increased, decreased, movedOut, won, lost; starting + created \
                  + movedIn + increased - decreased - movedOut - won - lost = ending.",
        reads: &[
            "deal_revision.valid_from",
            "deal_revision.amount_cents",
            "deal_revision.expected_close_date",
            "deal_revision.status",
            "deal.opened_at",
        ],
        dimensions: ALL_DIMENSIONS,
        conventions: &[PERIODS, MONEY, SCOPE, AS_OF],
    },
    MetricDefinition {
        name: "funnel",
        method: None,
        kind: DefinitionKind::Metric,
        formula:
            "Per stage in position order: entered = deals with a stage change into it stamped \
                  in the period; advanced = of those, deals that later reached a further non-LOST \
                  stage; lostHere = those whose next move was to a LOST stage; conversionRate = \
                  advanced / entered (null for WON and LOST stages); avgDaysInStage = mean days \
                  from entering to the next change (or today).",
        reads: &[
            "deal_stage_change.to_stage_id",
            "deal_stage_change.changed_at",
            "stage.position",
            "stage.kind",
        ],
        dimensions: &[],
        conventions: &[PERIODS, RATIOS, DAYS, SCOPE],
    },
    MetricDefinition {
        name: "repPerformance",
        method: None,
        kind: DefinitionKind::Metric,
        formula: "Per rep: closed-won in the period (current) against compareTo (previous; \
                  default the period before, cut to the same number of days while the period is \
                  under way); change = (current - previous) / previous; quadrant from high \
                  performer (attainment >= 1, or closed-won >= the median without a quota) \
                  crossed with improving (closed-won did not fall).",
        reads: &[
            "deal.status",
            "deal.closed_at",
            "deal.amount_cents",
            "quota.amount_cents",
            "rep.active",
        ],
        dimensions: &[],
        conventions: &[PERIODS, MONEY, RATIOS, SCOPE],
    },
    MetricDefinition {
        name: "commissions",
        method: None,
        kind: DefinitionKind::Metric,
        formula: "Per rep: earned = closedWon x rate when closedWon x 10^6 >= threshold x quota \
                  (exact integers), else 0.",
        reads: &[
            "deal.status",
            "deal.closed_at",
            "deal.amount_cents",
            "quota.amount_cents",
            "rep.commission_rate_ppm",
            "rep.commission_threshold_ppm",
        ],
        dimensions: &[],
        conventions: &[PERIODS, MONEY, SCOPE],
    },
    MetricDefinition {
        name: "metricSeries",
        method: None,
        kind: DefinitionKind::Metric,
        formula: "A metric (WIN_RATE, DEALS_WON, DEALS_LOST, CLOSED_WON_AMOUNT, AVG_DEAL_SIZE, \
                  AVG_SALES_CYCLE_DAYS, NEW_PIPELINE) per bucket (WEEK, MONTH, QUARTER, YEAR) \
                  clipped to the period and per group; change = relative change from the \
                  previous bucket of the same group. A deal counts in the bucket of closed_at \
                  (won/lost metrics) or opened_at (NEW_PIPELINE).",
        reads: CLOSED,
        dimensions: ALL_DIMENSIONS,
        conventions: &[PERIODS, MONEY, RATIOS, DAYS, SCOPE],
    },
    MetricDefinition {
        name: "dataHealth",
        method: None,
        kind: DefinitionKind::Metric,
        formula: "Counts over the deals and reps in scope: open deals past their expected close, \
                  open deals without one, open deals not updated for staleAfterDays (default \
                  30), active reps without a territory, inactive reps owning open deals.",
        reads: &[
            "deal.status",
            "deal.expected_close_date",
            "deal.updated_at",
            "rep.territory_id",
            "rep.active",
        ],
        dimensions: &[],
        conventions: &[DAYS, SCOPE],
    },
    MetricDefinition {
        name: "forecast",
        method: Some("STAGE_WEIGHTED"),
        kind: DefinitionKind::Forecast,
        formula: "amount = closedWon + projected; closedWon = deals WON with closed_at in the \
                  period; projected = sum of amount x stage probability over the OPEN deals \
                  expected in the period; low/high = P10/P90 of closedWon plus independent \
                  win/lose outcomes at the stage probabilities.",
        reads: &[
            "deal.status",
            "deal.closed_at",
            "deal.amount_cents",
            "deal.expected_close_date",
            "deal.opened_at",
            "deal.stage_id",
            "stage.probability_ppm",
        ],
        dimensions: ALL_DIMENSIONS,
        conventions: &[PERIODS, MONEY, SCOPE, OPEN_IN_PERIOD, AS_OF],
    },
    MetricDefinition {
        name: "forecast",
        method: Some("SALES_CYCLE"),
        kind: DefinitionKind::Forecast,
        formula: "amount = closedWon + projected; projected = sum over the OPEN deals expected in \
                  the period of amount x min(age / C, 1), age = days opened_at to the as-of day, \
                  C = the mean won cycle of the organisation's deals won in the 365 days ending \
                  with the as-of day.",
        reads: &[
            "deal.status",
            "deal.closed_at",
            "deal.amount_cents",
            "deal.expected_close_date",
            "deal.opened_at",
        ],
        dimensions: ALL_DIMENSIONS,
        conventions: &[PERIODS, MONEY, DAYS, SCOPE, OPEN_IN_PERIOD, AS_OF],
    },
    MetricDefinition {
        name: "forecast",
        method: Some("HISTORICAL"),
        kind: DefinitionKind::Forecast,
        formula: "R = closed-won in the lookbackMonths whole months before the period that are \
                  over / lookbackMonths; amount = max(R x months x (1 + growthRate) + newReps x \
                  dealsPerNewRep x newRepDealSize, closed-won already in the period); grouped rows \
                  split R by the group's share of the lookback.",
        reads: &["deal.status", "deal.closed_at", "deal.amount_cents"],
        dimensions: ALL_DIMENSIONS,
        conventions: &[PERIODS, MONEY, SCOPE, AS_OF],
    },
    MetricDefinition {
        name: "forecast",
        method: Some("REP_SUBMITTED"),
        kind: DefinitionKind::Forecast,
        formula: "The forecast calls of the period in the category (default COMMIT) as of the \
                  as-of day: a rep's personal number (adjustment, else call, else the sum of its \
                  parts), rolled up the manager tree; projected = amount - closedWon.",
        reads: &[
            "forecast_submission.amount_cents",
            "forecast_submission.category",
            "forecast_submission.submitted_at",
            "forecast_submission.kind",
            "forecast_submission.scope",
            "rep.manager_id",
        ],
        dimensions: &[D::None, D::Rep, D::Manager],
        conventions: &[PERIODS, MONEY, SCOPE, AS_OF],
    },
    MetricDefinition {
        name: "forecastTrend",
        method: None,
        kind: DefinitionKind::Forecast,
        formula: "The forecast of one method as of the last day of each bucket of from..to (at \
                  most 120 points); every point equals `forecast` asked with that asOf.",
        reads: &["deal_revision.*", "forecast_submission.*"],
        dimensions: &[],
        conventions: &[PERIODS, MONEY, AS_OF],
    },
    MetricDefinition {
        name: "forecastAccuracy",
        method: None,
        kind: DefinitionKind::Forecast,
        formula: "Per period and method: the forecast as of period start + asOfOffsetDays \
                  against actual = closed-won in the period as the deals stand now; \
                  absolutePercentageError = |forecast - actual| / actual; accuracy = max(1 - APE, \
                  0).",
        reads: &[
            "deal_revision.*",
            "deal.status",
            "deal.closed_at",
            "deal.amount_cents",
        ],
        dimensions: &[],
        conventions: &[PERIODS, MONEY, RATIOS, AS_OF],
    },
    MetricDefinition {
        name: "forecastSubmissions",
        method: None,
        kind: DefinitionKind::Forecast,
        formula: "Every forecast call for exactly the period by the reps in scope, newest first.",
        reads: &["forecast_submission.*"],
        dimensions: &[],
        conventions: &[SCOPE],
    },
    MetricDefinition {
        name: "forecastCalls",
        method: None,
        kind: DefinitionKind::Forecast,
        formula: "The call roll-up tree: per rep node its personal number and the roll-up of the \
                  nodes below, beside closed-won, quota and pipeline as of the as-of day.",
        reads: &[
            "forecast_submission.*",
            "rep.manager_id",
            "deal.amount_cents",
            "quota.amount_cents",
        ],
        dimensions: &[],
        conventions: &[PERIODS, MONEY, SCOPE, AS_OF],
    },
];

/// The definition of a Query field (and forecast method).
pub fn find(name: &str, method: Option<&str>) -> Option<&'static MetricDefinition> {
    DEFINITIONS
        .iter()
        .find(|d| d.name == name && (d.method.is_none() || d.method == method))
}

/// The GraphQL name of a dimension.
pub fn dimension_name(d: Dimension) -> &'static str {
    match d {
        D::None => "NONE",
        D::Rep => "REP",
        D::Territory => "TERRITORY",
        D::Segment => "SEGMENT",
        D::Manager => "MANAGER",
        D::Source => "SOURCE",
        D::Playbook => "PLAYBOOK",
        D::Stage => "STAGE",
        D::ForecastCategory => "FORECAST_CATEGORY",
        D::LostReason => "LOST_REASON",
        D::Industry => "INDUSTRY",
    }
}

/// Refuses a `groupBy` the metric's definition does not list
/// (BAD_USER_INPUT naming what it takes).
pub fn check_group_by(name: &str, method: Option<&str>, dim: Dimension) -> AppResult<()> {
    let def = find(name, method)
        .ok_or_else(|| AppError::internal(format!("no metric definition for {name}")))?;
    if def.dimensions.contains(&dim) {
        return Ok(());
    }
    let names: Vec<&str> = def.dimensions.iter().map(|d| dimension_name(*d)).collect();
    let list = match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => (*last).to_owned(),
        None => "nothing".to_owned(),
    };
    let what = method.unwrap_or(name);
    let noun = if method.is_some() { " forecasts" } else { "" };
    Err(AppError::bad_input(format!(
        "{what}{noun} group by {list} only"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rep_submitted_groups_by_the_reps_only() {
        assert!(check_group_by("forecast", Some("REP_SUBMITTED"), D::Manager).is_ok());
        let err = check_group_by("forecast", Some("REP_SUBMITTED"), D::Territory).unwrap_err();
        assert_eq!(
            err.to_string(),
            "REP_SUBMITTED forecasts group by NONE, REP or MANAGER only"
        );
        assert!(check_group_by("forecast", Some("STAGE_WEIGHTED"), D::Industry).is_ok());
        assert!(check_group_by("winRates", None, D::LostReason).is_ok());
    }

    #[test]
    fn every_definition_is_written_out() {
        for d in DEFINITIONS {
            assert!(!d.formula.is_empty() && !d.reads.is_empty() && !d.conventions.is_empty());
            assert_eq!(d.method.is_some(), d.name == "forecast", "{}", d.name);
        }
    }
}
