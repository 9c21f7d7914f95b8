//! pipelineChanges: what moved the open pipeline between two days.
use crate::graphql::eager::{Eager, EagerList, ReadyFields};
use crate::graphql::errors::ResultExt as _;
use async_graphql::{Context, Enum, Object, Result};
use rust_decimal::Decimal;

use super::deal::Deal;
use super::GroupKey;
use crate::graphql::scalars::{Date, Period};
use crate::graphql::{page_size, read_db};
use crate::service::metrics::pipeline_changes as svc;

/// How a deal moved the pipeline between from and to; each deal lands in exactly one.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "crate::service::metrics::pipeline_changes::Bucket")]
pub enum ChangeBucket {
    Created,
    MovedIn,
    Increased,
    Decreased,
    MovedOut,
    Won,
    Lost,
}

pub struct PipelineChangeDeal(svc::DealMove);

impl ReadyFields for PipelineChangeDeal {}

#[Object]
impl PipelineChangeDeal {
    /// The deal as it is now.
    async fn deal(&self) -> Deal {
        Deal(self.0.deal.clone())
    }
    async fn bucket(&self) -> ChangeBucket {
        self.0.bucket.into()
    }
    /// The deal's contribution at from (0 when it was not in the period's open pipeline).
    async fn amount_before(&self) -> Decimal {
        self.0.amount_before
    }
    /// Its contribution at to.
    async fn amount_after(&self) -> Decimal {
        self.0.amount_after
    }
    /// Its expected close date at from, when it was open then (opened_at + the average won cycle without one).
    async fn expected_close_before(&self) -> Option<Date> {
        self.0.expected_close_before.map(Date)
    }
    /// Its expected close date at to.
    async fn expected_close_after(&self) -> Option<Date> {
        self.0.expected_close_after.map(Date)
    }
}

pub struct PipelineChangeRow(svc::ChangeRow);

impl ReadyFields for PipelineChangeRow {}

#[Object]
impl PipelineChangeRow {
    /// The group of the deals as of to.
    async fn key(&self) -> Eager<GroupKey> {
        Eager(GroupKey(self.0.key.clone()))
    }
    async fn starting(&self) -> Decimal {
        self.0.walk.starting
    }
    async fn created(&self) -> Decimal {
        self.0.walk.created
    }
    async fn moved_in(&self) -> Decimal {
        self.0.walk.moved_in
    }
    async fn increased(&self) -> Decimal {
        self.0.walk.increased
    }
    async fn decreased(&self) -> Decimal {
        self.0.walk.decreased
    }
    async fn moved_out(&self) -> Decimal {
        self.0.walk.moved_out
    }
    async fn won(&self) -> Decimal {
        self.0.walk.won
    }
    async fn lost(&self) -> Decimal {
        self.0.walk.lost
    }
    async fn ending(&self) -> Decimal {
        self.0.walk.ending
    }
}

/// The open pipeline expected to close in period, as of the end of from and of to, and what moved it.
pub struct PipelineChanges(pub svc::Changes);

#[Object]
impl PipelineChanges {
    async fn period(&self) -> Period {
        self.0.period.into()
    }
    async fn from(&self) -> Date {
        Date(self.0.from)
    }
    async fn to(&self) -> Date {
        Date(self.0.to)
    }
    /// The open pipeline expected in the period at the end of from (unweighted).
    async fn starting(&self) -> Decimal {
        self.0.total.starting
    }
    /// Deals opened after from, in the period at to.
    async fn created(&self) -> Decimal {
        self.0.total.created
    }
    /// Deals opened by from that entered the period's pipeline (a close date moved in, a reopened deal).
    async fn moved_in(&self) -> Decimal {
        self.0.total.moved_in
    }
    async fn increased(&self) -> Decimal {
        self.0.total.increased
    }
    async fn decreased(&self) -> Decimal {
        self.0.total.decreased
    }
    /// Still open but no longer expected in the period (slipped or pulled in elsewhere).
    async fn moved_out(&self) -> Decimal {
        self.0.total.moved_out
    }
    async fn won(&self) -> Decimal {
        self.0.total.won
    }
    async fn lost(&self) -> Decimal {
        self.0.total.lost
    }
    /// ending = starting + created + movedIn + increased - decreased - movedOut - won - lost, exactly.
    async fn ending(&self) -> Decimal {
        self.0.total.ending
    }
    /// Per group (by the deals' attributes as of to), adding up to the totals.
    async fn rows(&self) -> EagerList<PipelineChangeRow> {
        self.0.rows.iter().cloned().map(PipelineChangeRow).collect()
    }
    /// The deals in one bucket, largest change first (default 20).
    async fn deals(
        &self,
        ctx: &Context<'_>,
        bucket: ChangeBucket,
        first: Option<i32>,
    ) -> Result<EagerList<PipelineChangeDeal>> {
        let first = page_size(ctx, first, 20)?;
        let _heavy = crate::work::heavy_permit();
        Ok(svc::deals_in(read_db(ctx)?, &self.0, bucket.into(), first)
            .await
            .extend()?
            .into_iter()
            .map(PipelineChangeDeal)
            .collect())
    }
}
