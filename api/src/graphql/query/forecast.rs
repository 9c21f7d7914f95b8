use crate::graphql::eager::EagerList;
use crate::graphql::errors::ResultExt as _;
use async_graphql::{Context, Object, Result, ID};

use crate::graphql::enums::{Dimension, ForecastCategory};
use crate::graphql::inputs::{filter_of, DealFilterInput};
use crate::graphql::scalars::Date;
use crate::graphql::scalars::Period;
use crate::graphql::types::forecast::{
    dimension, Forecast, ForecastAccuracyRow, ForecastCallNode, ForecastMethod, ForecastPoint,
    ForecastSubmission, HistoricalParams,
};
use crate::graphql::types::metrics::Granularity;
use crate::graphql::{opt_id, principal, read_db, selects};
use crate::service;
use crate::service::forecast::{Method, Query};

#[derive(Default)]
pub struct ForecastQuery;

#[Object]
impl ForecastQuery {
    /// What the caller's deals will close in the period by one method, as of the end of a UTC day
    /// (default today; a later day is BAD_USER_INPUT). `historical` is for HISTORICAL only and
    /// `category` (default COMMIT) for REP_SUBMITTED only; `filter` narrows every method to these
    /// deals (as they stood on the as-of day).
    #[allow(clippy::too_many_arguments)]
    async fn forecast(
        &self,
        ctx: &Context<'_>,
        period: Period,
        method: ForecastMethod,
        group_by: Option<Dimension>,
        as_of: Option<Date>,
        historical: Option<HistoricalParams>,
        category: Option<ForecastCategory>,
        filter: Option<DealFilterInput>,
    ) -> Result<Forecast> {
        let p = principal(ctx)?;
        let filter = filter_of(&filter).extend()?;
        let _heavy = crate::work::heavy_permit();
        let q = Query {
            period: period.0,
            method: method.into(),
            group_by: dimension(group_by),
            as_of: as_of.map(|d| d.0),
            historical: historical.map(Into::into),
            category: category.map(Into::into),
            filter,
            bounds: selects(ctx, &[], &["low", "high"]),
        };
        Ok(Forecast(
            service::forecast::forecast(read_db(ctx)?, p, q)
                .await
                .extend()?,
        ))
    }

    /// The forecast as of the last day of each bucket of from..to (to defaults to today and is the
    /// last point), to watch a number evolve; every point equals `forecast` asked with that asOf.
    /// At most 120 points.
    #[allow(clippy::too_many_arguments)]
    async fn forecast_trend(
        &self,
        ctx: &Context<'_>,
        period: Period,
        method: ForecastMethod,
        from: Date,
        to: Option<Date>,
        granularity: Granularity,
        category: Option<ForecastCategory>,
    ) -> Result<EagerList<ForecastPoint>> {
        let p = principal(ctx)?;
        let _heavy = crate::work::heavy_permit();
        let points = service::forecast::trend::trend(
            read_db(ctx)?,
            p,
            period.0,
            method.into(),
            from.0,
            to.map(|d| d.0),
            granularity.into(),
            category.map(Into::into),
        )
        .await
        .extend()?;
        Ok(points.into_iter().map(ForecastPoint).collect())
    }

    /// Backtest: per period and method, the forecast as of period start + asOfOffsetDays (default 0)
    /// against what was actually won. Methods default to STAGE_WEIGHTED, SALES_CYCLE and HISTORICAL;
    /// at most 24 periods.
    async fn forecast_accuracy(
        &self,
        ctx: &Context<'_>,
        periods: Vec<Period>,
        methods: Option<Vec<ForecastMethod>>,
        as_of_offset_days: Option<i32>,
    ) -> Result<EagerList<ForecastAccuracyRow>> {
        let p = principal(ctx)?;
        let _heavy = crate::work::heavy_permit();
        let methods: Option<Vec<Method>> = methods.map(|m| m.into_iter().map(Into::into).collect());
        let rows = service::forecast::accuracy::backtest(
            read_db(ctx)?,
            p,
            &periods.iter().map(|p| p.0).collect::<Vec<_>>(),
            methods.as_deref(),
            as_of_offset_days,
        )
        .await
        .extend()?;
        Ok(rows.into_iter().map(ForecastAccuracyRow).collect())
    }

    /// Every forecast call for exactly this period by the visible reps (or one rep), newest first.
    async fn forecast_submissions(
        &self,
        ctx: &Context<'_>,
        period: Period,
        rep_id: Option<ID>,
    ) -> Result<EagerList<ForecastSubmission>> {
        let p = principal(ctx)?;
        let _heavy = crate::work::heavy_permit();
        let rep_id = opt_id(&rep_id, "repId").extend()?;
        let rows = service::forecast::submission::list(read_db(ctx)?, p, &period, rep_id)
            .await
            .extend()?;
        Ok(rows.into_iter().map(ForecastSubmission).collect())
    }

    /// The call roll-up tree: the caller's own node for REP and MANAGER, the organisation for the
    /// others; rootRepId narrows to a subtree (a rep outside the caller's scope is NOT_FOUND). As
    /// of the end of a UTC day (default today): the latest submissions then, closed-won and
    /// pipeline as the deals stood then. category defaults to COMMIT.
    async fn forecast_calls(
        &self,
        ctx: &Context<'_>,
        period: Period,
        category: Option<ForecastCategory>,
        as_of: Option<Date>,
        root_rep_id: Option<ID>,
    ) -> Result<ForecastCallNode> {
        let p = principal(ctx)?;
        let root_rep_id = opt_id(&root_rep_id, "rootRepId").extend()?;
        let _heavy = crate::work::heavy_permit();
        let q = service::forecast::calls::CallsQuery {
            period: period.0,
            category: category.map(Into::into),
            as_of: as_of.map(|d| d.0),
            root_rep_id,
        };
        let tree = service::forecast::calls::forecast_calls(read_db(ctx)?, p, q)
            .await
            .extend()?;
        let idx = tree.root;
        Ok(ForecastCallNode {
            tree: std::sync::Arc::new(tree),
            idx,
        })
    }
}
