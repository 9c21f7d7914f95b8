//! The sales metrics queries (docs/design.md, Metrics): parse, authorise in the
//! service, wrap the rows.
use crate::graphql::eager::EagerList;
use crate::graphql::errors::ResultExt as _;
use async_graphql::{Context, Object, Result, ID};

use crate::graphql::enums::Dimension;
use crate::graphql::inputs::{filter_of, DealFilterInput};
use crate::graphql::scalars::{Date, Period};
use crate::graphql::types::metrics::{
    CommissionRow, DataHealth, FunnelStep, Granularity, Metric, MetricDefinition,
    PipelineSummaryRow, QuotaAttainmentReport, RepAttainment, RepPerformance, SeriesPoint,
    WinRateRow,
};
use crate::graphql::types::pipeline_changes::PipelineChanges;
use crate::graphql::{opt_id, principal, read_db, selects, selects_only};
use crate::rows::Columns;
use crate::service::access::{METRIC_READERS, REFERENCE_READERS};
use crate::service::metrics::reps::RepNarrowing;
use crate::service::metrics::{
    attainment, commissions, funnel, health, performance, pipeline, pipeline_changes, series,
    win_rates,
};
use crate::service::{grouping, referenced};
use entity::{rep, territory};

#[derive(Default)]
pub struct MetricsQuery;

/// The territory or manager a rep report is narrowed to, each checked to
/// exist (BAD_USER_INPUT naming the argument otherwise).
async fn narrowing(
    db: &impl sea_orm::ConnectionTrait,
    territory_id: &Option<ID>,
    manager_id: &Option<ID>,
) -> Result<RepNarrowing> {
    let territory_id = opt_id(territory_id, "territoryId").extend()?;
    let manager_id = opt_id(manager_id, "managerId").extend()?;
    if let Some(t) = territory_id {
        referenced::<territory::Entity>(db, t, "territoryId")
            .await
            .extend()?;
    }
    if let Some(m) = manager_id {
        referenced::<rep::Entity>(db, m, "managerId")
            .await
            .extend()?;
    }
    Ok(RepNarrowing {
        territory_id,
        manager_id,
    })
}

/// The request's shared won/lost aggregates (see `loaders::ClosedBatches`).
fn closed_source<'a>(ctx: &'a Context<'_>) -> Result<crate::graphql::loaders::BatchedClosed<'a>> {
    Ok(crate::graphql::loaders::BatchedClosed(
        ctx.data::<async_graphql::dataloader::DataLoader<crate::graphql::loaders::ClosedBatches>>(
        )?,
    ))
}

fn dim(d: Option<Dimension>) -> grouping::Dimension {
    d.map(Into::into).unwrap_or_default()
}

#[Object]
impl MetricsQuery {
    /// Win rates of the deals closed in the period, per group (groupBy defaults to NONE).
    async fn win_rates(
        &self,
        ctx: &Context<'_>,
        period: Period,
        group_by: Option<Dimension>,
        filter: Option<DealFilterInput>,
    ) -> Result<EagerList<WinRateRow>> {
        let p = principal(ctx)?;
        p.require(METRIC_READERS).extend()?;
        let _heavy = crate::work::heavy_permit();
        let filter = filter_of(&filter).extend()?;
        let closed = closed_source(ctx)?;
        let rows = win_rates::win_rates(read_db(ctx)?, &closed, p, &period, dim(group_by), &filter)
            .await
            .extend()?;
        Ok(rows.into_iter().map(WinRateRow).collect())
    }

    /// Quota attainment of the active reps in scope and of reps with a quota in the period,
    /// by rep id; territoryId narrows to that territory's subtree, managerId to the manager and their team.
    async fn quota_attainment(
        &self,
        ctx: &Context<'_>,
        period: Period,
        territory_id: Option<ID>,
        manager_id: Option<ID>,
    ) -> Result<QuotaAttainmentReport> {
        let p = principal(ctx)?;
        // Authorise before looking the narrowing ids up.
        p.require(METRIC_READERS).extend()?;
        let _heavy = crate::work::heavy_permit();
        let db = read_db(ctx)?;
        let narrow = narrowing(db, &territory_id, &manager_id).await?;
        let with_pipeline = selects(ctx, &["rows"], &RepAttainment::PIPELINE_FIELDS);
        let rep_columns = match selects_only(ctx, &["rows", "rep"], &["id", "name", "__typename"]) {
            true => Columns::id_and_name::<entity::rep::Model>(),
            false => Columns::all::<entity::rep::Model>(),
        };
        Ok(QuotaAttainmentReport(
            attainment::quota_attainment(db, p, &period, narrow, with_pipeline, rep_columns)
                .await
                .extend()?,
        ))
    }

    /// Open pipeline of the period beside what closed in it, per group.
    async fn pipeline_summary(
        &self,
        ctx: &Context<'_>,
        period: Period,
        group_by: Option<Dimension>,
        filter: Option<DealFilterInput>,
    ) -> Result<EagerList<PipelineSummaryRow>> {
        let p = principal(ctx)?;
        p.require(METRIC_READERS).extend()?;
        let _heavy = crate::work::heavy_permit();
        let filter = filter_of(&filter).extend()?;
        let parts = pipeline::SummaryParts {
            open: selects(ctx, &[], &PipelineSummaryRow::OPEN_FIELDS),
            closed: selects(ctx, &[], &PipelineSummaryRow::CLOSED_FIELDS),
            medians: selects(ctx, &[], &PipelineSummaryRow::MEDIAN_FIELDS),
        };
        let closed = closed_source(ctx)?;
        let rows = pipeline::pipeline_summary(
            read_db(ctx)?,
            &closed,
            p,
            &period,
            dim(group_by),
            &filter,
            parts,
        )
        .await
        .extend()?;
        Ok(rows.into_iter().map(PipelineSummaryRow).collect())
    }

    /// The open pipeline expected to close in the period as of the end of `from` and of `to`
    /// (default to = today, from = to - 7 days), and every deal's move between them in exactly
    /// one bucket (docs/design.md, Deal history).
    async fn pipeline_changes(
        &self,
        ctx: &Context<'_>,
        period: Period,
        from: Option<Date>,
        to: Option<Date>,
        group_by: Option<Dimension>,
        filter: Option<DealFilterInput>,
    ) -> Result<PipelineChanges> {
        let p = principal(ctx)?;
        let _heavy = crate::work::heavy_permit();
        let filter = filter_of(&filter).extend()?;
        Ok(PipelineChanges(
            pipeline_changes::pipeline_changes(
                read_db(ctx)?,
                p,
                period.0,
                from.map(|d| d.0),
                to.map(|d| d.0),
                dim(group_by),
                &filter,
            )
            .await
            .extend()?,
        ))
    }

    /// Stage by stage, in position order: where the deals entering in the period went.
    async fn funnel(
        &self,
        ctx: &Context<'_>,
        period: Period,
        filter: Option<DealFilterInput>,
    ) -> Result<EagerList<FunnelStep>> {
        let p = principal(ctx)?;
        p.require(METRIC_READERS).extend()?;
        let _heavy = crate::work::heavy_permit();
        let filter = filter_of(&filter).extend()?;
        let rows = funnel::funnel(read_db(ctx)?, p, &period, &filter)
            .await
            .extend()?;
        Ok(rows.into_iter().map(FunnelStep).collect())
    }

    /// Each rep's quadrant: this period against compareTo (default: the period of the same kind
    /// just before; while the period is under way, the same number of days at the start of the
    /// previous one). NO_ACTIVITY: no quota and nothing closed in either period. Reps that do not
    /// carry a quota are left out unless they have one. territoryId narrows to that territory's
    /// subtree, managerId to the manager and their team.
    async fn rep_performance(
        &self,
        ctx: &Context<'_>,
        period: Period,
        compare_to: Option<Period>,
        territory_id: Option<ID>,
        manager_id: Option<ID>,
    ) -> Result<EagerList<RepPerformance>> {
        let p = principal(ctx)?;
        p.require(METRIC_READERS).extend()?;
        let _heavy = crate::work::heavy_permit();
        let db = read_db(ctx)?;
        let narrow = narrowing(db, &territory_id, &manager_id).await?;
        let rows = performance::rep_performance(db, p, &period, compare_to.map(|c| c.0), narrow)
            .await
            .extend()?;
        Ok(rows.into_iter().map(RepPerformance).collect())
    }

    /// Commission earned per rep in the period (rate and threshold from the rep).
    async fn commissions(
        &self,
        ctx: &Context<'_>,
        period: Period,
    ) -> Result<EagerList<CommissionRow>> {
        let p = principal(ctx)?;
        let _heavy = crate::work::heavy_permit();
        let rows = commissions::commissions(read_db(ctx)?, p, &period)
            .await
            .extend()?;
        Ok(rows.into_iter().map(CommissionRow).collect())
    }

    /// A metric bucketed inside the period, per group, with the change from the previous bucket.
    async fn metric_series(
        &self,
        ctx: &Context<'_>,
        metric: Metric,
        period: Period,
        granularity: Granularity,
        group_by: Option<Dimension>,
        filter: Option<DealFilterInput>,
    ) -> Result<EagerList<SeriesPoint>> {
        let p = principal(ctx)?;
        p.require(METRIC_READERS).extend()?;
        let _heavy = crate::work::heavy_permit();
        let filter = filter_of(&filter).extend()?;
        let rows = series::metric_series(
            read_db(ctx)?,
            p,
            metric.into(),
            &period,
            granularity.into(),
            dim(group_by),
            &filter,
        )
        .await
        .extend()?;
        Ok(rows.into_iter().map(SeriesPoint).collect())
    }

    /// Every metric and forecast method with its formula, the fields it reads, its grouping
    /// dimensions and its conventions (docs/design.md, BI access).
    async fn metric_definitions(&self, ctx: &Context<'_>) -> Result<EagerList<MetricDefinition>> {
        principal(ctx)?.require(REFERENCE_READERS).extend()?;
        Ok(crate::service::metric_definitions::DEFINITIONS
            .iter()
            .map(MetricDefinition)
            .collect())
    }

    /// What decays in the data (staleAfterDays defaults to 30, leadSlaHours to 24).
    async fn data_health(
        &self,
        ctx: &Context<'_>,
        stale_after_days: Option<i32>,
        lead_sla_hours: Option<f64>,
    ) -> Result<DataHealth> {
        let p = principal(ctx)?;
        let _heavy = crate::work::heavy_permit();
        let criteria = health::criteria(p, stale_after_days, lead_sla_hours).extend()?;
        // The selected counts are one statement (none when no count is
        // selected), the issues another (when selected).
        let wanted: Vec<health::Count> = DataHealth::COUNT_FIELDS
            .iter()
            .filter(|(field, _)| selects(ctx, &[], &[field]))
            .map(|(_, count)| *count)
            .collect();
        let counts = health::data_health(read_db(ctx)?, &criteria, &wanted)
            .await
            .extend()?;
        Ok(DataHealth { counts, criteria })
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::resolver_utils::EnumType;
    use async_graphql::{EmptyMutation, EmptySubscription, MergedObject, Schema};

    use crate::graphql::types::forecast::ForecastMethod;
    use crate::service::metric_definitions::{find, DEFINITIONS};

    #[derive(MergedObject, Default)]
    struct MetricFields(super::MetricsQuery, super::super::forecast::ForecastQuery);

    /// The Query fields of the metrics and forecast objects, by introspection.
    fn fields() -> Vec<String> {
        let schema =
            Schema::build(MetricFields::default(), EmptyMutation, EmptySubscription).finish();
        let resp = futures::executor::block_on(
            schema.execute("{ __schema { queryType { fields { name } } } }"),
        );
        let data = resp.data.into_json().expect("json");
        data["__schema"]["queryType"]["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn every_metric_and_forecast_query_field_has_a_definition() {
        let fields = fields();
        assert!(fields.len() >= 15, "{fields:?}");
        for f in &fields {
            if f == "metricDefinitions" {
                continue;
            }
            if f == "forecast" {
                for m in ForecastMethod::items() {
                    assert!(
                        find("forecast", Some(m.name)).is_some_and(|d| d.method == Some(m.name)),
                        "forecast method {} has no definition",
                        m.name
                    );
                }
            } else {
                assert!(
                    find(f, None).is_some(),
                    "Query.{f} has no metric definition"
                );
            }
        }
        for d in DEFINITIONS {
            assert!(
                fields.iter().any(|f| f == d.name),
                "{} is no Query field",
                d.name
            );
        }
    }
}
