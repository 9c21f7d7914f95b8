//! A deal's revisions (docs/design.md, Deal history).
use crate::graphql::eager::{EagerList, ReadyFields};
use crate::graphql::errors::{Extend as _, ResultExt as _};
use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use entity::{deal_revision, rep, stage, territory};

use super::deal::PageInfo;
use super::org::{Rep, Stage, Territory};
use crate::domain::money::from_cents;
use crate::error::AppError;
use crate::graphql::enums::{DealStatus, ForecastCategory};
use crate::graphql::loaders::{load_by_id, RevisionCounts, RevisionPageKey, RevisionPages};
use crate::graphql::scalars::Date;
use crate::service::deal_history;
use crate::service::pagination::{decode_id_cursor, encode_id_cursor};

/// The list name history cursors carry.
const LIST: &str = "history";

/// One changed field, values as text (amounts as decimals, dates ISO 8601,
/// enums by name, ids as ids); null when unset.
#[derive(SimpleObject)]
pub struct FieldChange {
    /// The API field name, e.g. amount, expectedCloseDate, stageId, ownerId, forecastCategory.
    field: String,
    from: Option<String>,
    to: Option<String>,
}

impl ReadyFields for FieldChange {}

pub struct DealRevision {
    row: deal_revision::Model,
    /// The revision before it, when there is one.
    previous: Option<deal_revision::Model>,
}

impl DealRevision {
    /// A revision and the one before it (for `changes`).
    pub fn new(row: deal_revision::Model, previous: Option<deal_revision::Model>) -> Self {
        Self { row, previous }
    }
}

#[Object]
impl DealRevision {
    async fn version(&self) -> i32 {
        self.row.version
    }
    /// When the change took effect: a stage move's at, a backfill's effectiveAt, else when it was written.
    async fn valid_from(&self) -> DateTime<Utc> {
        self.row.valid_from
    }
    /// When it was written.
    async fn recorded_at(&self) -> DateTime<Utc> {
        self.row.recorded_at
    }
    /// Who wrote it (the token's subject).
    async fn actor(&self) -> &str {
        &self.row.actor
    }
    async fn amount(&self) -> Decimal {
        from_cents(self.row.amount_cents)
    }
    async fn expected_close_date(&self) -> Option<Date> {
        self.row.expected_close_date.map(Date)
    }
    async fn stage(&self, ctx: &Context<'_>) -> Result<Stage> {
        load_by_id::<stage::Entity>(ctx, self.row.stage_id)
            .await?
            .map(Stage)
            .ok_or_else(|| AppError::internal("revision without a stage").extend())
    }
    async fn status(&self) -> DealStatus {
        self.row.status.into()
    }
    async fn forecast_category(&self) -> ForecastCategory {
        self.row.forecast_category.into()
    }
    async fn owner(&self, ctx: &Context<'_>) -> Result<Rep> {
        load_by_id::<rep::Entity>(ctx, self.row.owner_id)
            .await?
            .map(Rep)
            .ok_or_else(|| AppError::internal("revision without an owner").extend())
    }
    async fn territory(&self, ctx: &Context<'_>) -> Result<Option<Territory>> {
        match self.row.territory_id {
            None => Ok(None),
            Some(id) => Ok(load_by_id::<territory::Entity>(ctx, id)
                .await?
                .map(Territory)),
        }
    }
    async fn closed_at(&self) -> Option<DateTime<Utc>> {
        self.row.closed_at
    }
    /// Fields that differ from the previous revision (every set field on the first).
    async fn changes(&self) -> EagerList<FieldChange> {
        deal_history::changes(&self.row, self.previous.as_ref())
            .into_iter()
            .map(|c| FieldChange {
                field: c.field.to_owned(),
                from: c.from,
                to: c.to,
            })
            .collect()
    }
}

/// A page of a deal's revisions, newest first.
pub struct DealRevisionConnection {
    deal_id: i64,
    nodes: Vec<DealRevision>,
    has_next: bool,
    has_previous: bool,
}

impl DealRevisionConnection {
    /// The page of `first` revisions of a deal after the cursor `after`.
    pub async fn load(
        ctx: &Context<'_>,
        deal_id: i64,
        first: u64,
        after: Option<&str>,
    ) -> Result<Self> {
        let before = after
            .map(|a| decode_id_cursor(a, LIST).map(|v| v as i32))
            .transpose()
            .extend()?;
        let mut rows = ctx
            .data::<DataLoader<RevisionPages>>()?
            .load_one(RevisionPageKey {
                deal_id,
                first,
                before,
            })
            .await
            .map_err(|e| (*e).clone().extend())?
            .unwrap_or_default();
        let has_next = rows.len() as u64 > first;
        // Each revision's previous is the next row (the extra row included).
        let mut nodes = Vec::with_capacity(rows.len());
        let mut previous = None;
        while let Some(row) = rows.pop() {
            nodes.push(DealRevision {
                row: row.clone(),
                previous: previous.replace(row),
            });
        }
        nodes.reverse();
        nodes.truncate(first as usize);
        Ok(Self {
            deal_id,
            nodes,
            has_next,
            has_previous: before.is_some(),
        })
    }
}

#[Object]
impl DealRevisionConnection {
    async fn nodes(&self) -> &[DealRevision] {
        &self.nodes
    }
    async fn page_info(&self) -> PageInfo {
        let cursor = |r: &DealRevision| encode_id_cursor(LIST, i64::from(r.row.version));
        PageInfo {
            has_previous_page: self.has_previous,
            has_next_page: self.has_next,
            start_cursor: self.nodes.first().map(cursor),
            end_cursor: self.nodes.last().map(cursor),
        }
    }
    /// Every revision of the deal, whatever the page.
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i32> {
        let n = ctx
            .data::<DataLoader<RevisionCounts>>()?
            .load_one(self.deal_id)
            .await
            .map_err(|e| (*e).clone().extend())?
            .unwrap_or(0);
        Ok(n as i32)
    }
}
