//! Subscriptions (graphql-transport-ws, see crate::ws): committed deal
//! changes and forecast calls, fed by crate::live from the rows written in
//! the same transactions as the changes, and scoped like the queries.
use std::sync::Arc;

use async_graphql::{Context, Enum, Object, Result, Subscription};
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;

use entity::enums::DealStatus as Status;

use crate::graphql::errors::{Extend as _, ResultExt as _};
use crate::graphql::inputs::{filter_of, DealFilterInput};
use crate::graphql::scalars::Period;
use crate::graphql::types::deal_history::DealRevision;
use crate::graphql::types::forecast::ForecastSubmission;
use crate::graphql::types::Deal;
use crate::graphql::{principal, read_db};
use crate::live::{DealEvent, LiveFeed};
use crate::service;
use crate::service::access::{DEAL_READERS, METRIC_READERS};

/// The code of the error that ends a subscription that fell behind.
pub const SLOW_CONSUMER: &str = "SLOW_CONSUMER";

#[derive(Default)]
pub struct SubscriptionRoot;

/// What a committed deal write did.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum DealChangeKind {
    /// The deal's first version.
    Created,
    /// Moved to another open stage.
    StageChanged,
    /// Closed won.
    Won,
    /// Closed lost.
    Lost,
    /// Any other change (amount, dates, owner, a reopening...).
    Updated,
}

fn kind_of(e: &DealEvent) -> DealChangeKind {
    let Some(prev) = &e.previous else {
        return DealChangeKind::Created;
    };
    match (prev.status, e.row.status) {
        (p, Status::Won) if p != Status::Won => DealChangeKind::Won,
        (p, Status::Lost) if p != Status::Lost => DealChangeKind::Lost,
        _ if prev.stage_id != e.row.stage_id => DealChangeKind::StageChanged,
        _ => DealChangeKind::Updated,
    }
}

/// One committed version of a deal.
pub struct DealChange {
    event: DealEvent,
    deal: entity::deal::Model,
}

#[Object]
impl DealChange {
    async fn kind(&self) -> DealChangeKind {
        kind_of(&self.event)
    }
    /// The version written (a deal's versions increase by one per write).
    async fn version(&self) -> i32 {
        self.event.row.version
    }
    /// The revision as committed: its fields, who wrote it, and what changed.
    async fn revision(&self) -> DealRevision {
        DealRevision::new(self.event.row.clone(), self.event.previous.clone())
    }
    /// The deal as it is when the change is delivered (a later version if
    /// it was written again since).
    async fn deal(&self) -> Deal {
        Deal(self.deal.clone())
    }
}

fn slow_consumer(missed: u64) -> async_graphql::Error {
    let mut e = async_graphql::Error::new(format!(
        "this subscription fell {missed} batches of changes behind and was ended; \
         subscribe again (and read what you missed with a query)"
    ));
    e.extensions
        .get_or_insert_with(Default::default)
        .set("code", SLOW_CONSUMER);
    e
}

fn feed<'a>(ctx: &'a Context<'_>) -> Result<&'a Arc<LiveFeed>> {
    ctx.data::<Arc<LiveFeed>>()
}

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// Every committed write of a deal the caller may see (same scope as
    /// `deals`) that matches `filter` when it is delivered, in commit order,
    /// from the moment of subscribing. A subscriber that falls 64 batches
    /// behind gets an error with code SLOW_CONSUMER and the subscription ends.
    async fn deal_changed(
        &self,
        ctx: &Context<'_>,
        filter: Option<DealFilterInput>,
    ) -> Result<impl Stream<Item = Result<DealChange>>> {
        let p = principal(ctx)?.clone();
        p.require(DEAL_READERS).extend()?;
        let filter = filter_of(&filter).extend()?;
        let db = read_db(ctx)?.clone();
        let mut rx = feed(ctx)?.subscribe().await.extend()?;
        Ok(async_stream::stream! {
            loop {
                let batch = match rx.recv().await {
                    Ok(b) => b,
                    Err(RecvError::Lagged(n)) => {
                        yield Err(slow_consumer(n));
                        break;
                    }
                    Err(RecvError::Closed) => break,
                };
                if batch.deals.is_empty() {
                    continue;
                }
                let mut ids: Vec<i64> = batch.deals.iter().map(|e| e.row.deal_id).collect();
                ids.sort_unstable();
                ids.dedup();
                match service::live::visible_deals(&db, &p, &filter, &ids).await {
                    Ok(visible) => {
                        for e in &batch.deals {
                            if let Some(d) = visible.get(&e.row.deal_id) {
                                yield Ok(DealChange { event: e.clone(), deal: d.clone() });
                            }
                        }
                    }
                    Err(e) => {
                        yield Err(e.extend());
                        break;
                    }
                }
            }
        })
    }

    /// Every forecast call committed from now on that the caller may see
    /// (same scope as `forecastSubmissions`), of `period` when given.
    async fn forecast_call_changed(
        &self,
        ctx: &Context<'_>,
        period: Option<Period>,
    ) -> Result<impl Stream<Item = Result<ForecastSubmission>>> {
        let p = principal(ctx)?.clone();
        p.require(METRIC_READERS).extend()?;
        let db = read_db(ctx)?.clone();
        let period = period.map(|p| p.0);
        let mut rx = feed(ctx)?.subscribe().await.extend()?;
        Ok(async_stream::stream! {
            loop {
                let batch = match rx.recv().await {
                    Ok(b) => b,
                    Err(RecvError::Lagged(n)) => {
                        yield Err(slow_consumer(n));
                        break;
                    }
                    Err(RecvError::Closed) => break,
                };
                if batch.submissions.is_empty() {
                    continue;
                }
                let ids: Vec<i64> = batch.submissions.iter().map(|s| s.id).collect();
                match service::live::visible_submissions(&db, &p, period.as_ref(), &ids).await {
                    Ok(visible) => {
                        for s in &batch.submissions {
                            if let Some(row) = visible.get(&s.id) {
                                yield Ok(ForecastSubmission(row.clone()));
                            }
                        }
                    }
                    Err(e) => {
                        yield Err(e.extend());
                        break;
                    }
                }
            }
        })
    }
}
