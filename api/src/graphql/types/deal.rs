use crate::graphql::eager::{
    ready, ready_decimal, ready_enum, ready_id, ready_list, ready_node, ready_opt, ready_opt_enum,
    ready_opt_str, ready_str, Eager, EagerList, ReadyFields,
};
use crate::graphql::errors::{Extend as _, ResultExt as _};
use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};
use ref_cast::RefCast;
use rust_decimal::Decimal;

use entity::{account, deal, deal_stage_change, playbook, rep, stage, territory};

use super::deal_history::DealRevisionConnection;
use super::org::{Account, Rep, Stage, Territory};
use super::playbook::Playbook;
use crate::clock;
use crate::domain::money::from_cents;
use crate::error::AppError;
use crate::graphql::enums::{DealSource, DealStatus, ForecastCategory};
use crate::graphql::loaders::{
    load_by_id, load_children, prefetch, CountKey, DealCounts, DealPages, DealParent, Known, Named,
    PageArgs, PageKey, StageHistory,
};
use crate::graphql::scalars::Date;
use crate::graphql::{read_db, request, selects, selects_only};
use crate::rows::Columns;
use crate::service;
use crate::service::access::DealScope;
use crate::service::deal_filter::DealFilter;
use crate::service::pagination::{Cursor, DealOrder};

#[derive(RefCast)]
#[repr(transparent)]
pub struct Deal(pub deal::Model);

/// The deal columns each field of [`Deal`] reads (its resolver below): a
/// page reads the union over the fields it shows
/// ([`DealConnection::node_columns`]), and any field not listed here reads
/// every column. Fields that load by the deal's id read just the id.
/// tests/api/lookahead.rs checks every field of Deal against a whole row.
const FIELD_COLUMNS: &[(&str, &[&str])] = &[
    ("__typename", &[]),
    ("id", &["id"]),
    ("externalId", &["external_id"]),
    ("name", &["name"]),
    ("amount", &["amount_cents"]),
    ("currency", &["currency"]),
    ("status", &["status"]),
    ("stage", &["stage_id"]),
    ("forecastCategory", &["forecast_category"]),
    ("source", &["source"]),
    ("owner", &["owner_id"]),
    ("account", &["account_id"]),
    ("territory", &["territory_id"]),
    ("playbook", &["playbook_id"]),
    ("openedAt", &["opened_at"]),
    ("expectedCloseDate", &["expected_close_date"]),
    ("closedAt", &["closed_at"]),
    ("lostReason", &["lost_reason"]),
    ("ageDays", &["opened_at", "closed_at"]),
    ("stageHistory", &["id"]),
    ("history", &["id"]),
    ("pushCount", &["push_count"]),
    ("risk", &["id"]),
    ("activities", &["id"]),
    ("version", &["version"]),
    ("createdAt", &["created_at"]),
    ("updatedAt", &["updated_at"]),
];

/// The columns of the deal fields a selection shows (every column if one is
/// not in [`FIELD_COLUMNS`]).
fn columns_of(node: async_graphql::SelectionField<'_>) -> Columns {
    let mut set = Columns::NONE;
    for f in node.selection_set() {
        match FIELD_COLUMNS.iter().find(|(name, _)| *name == f.name()) {
            Some((_, columns)) => set = set.union(Columns::of::<deal::Model>(columns)),
            None => return Columns::all::<deal::Model>(),
        }
    }
    set
}

/// The fields below that read the row alone, answered without a future
/// (eager.rs); each gives what its resolver gives.
impl ReadyFields for Deal {
    fn ready_field(&self, field: &str) -> Option<async_graphql::Value> {
        let d = &self.0;
        Some(match field {
            "id" => ready_id(d.id),
            "externalId" => ready_opt_str(d.external_id.as_deref()),
            "name" => ready_str(&d.name),
            "amount" => ready_decimal(&from_cents(d.amount_cents)),
            "currency" => ready_str(&d.currency),
            "status" => ready_enum(DealStatus::from(d.status)),
            "forecastCategory" => ready_enum(ForecastCategory::from(d.forecast_category)),
            "source" => ready_opt_enum(d.source.map(DealSource::from)),
            "openedAt" => ready(&d.opened_at),
            "expectedCloseDate" => ready_opt(d.expected_close_date.map(Date).as_ref()),
            "closedAt" => ready_opt(d.closed_at.as_ref()),
            "lostReason" => ready_opt_str(d.lost_reason.as_deref()),
            "pushCount" => ready(&d.push_count),
            "version" => ready(&d.version),
            "createdAt" => ready(&d.created_at),
            "updatedAt" => ready(&d.updated_at),
            _ => return None,
        })
    }

    /// The stage, owner and account when the request holds them (what
    /// their resolvers read first).
    fn ready_object(&self, ctx: &Context<'_>, field: &str) -> Option<async_graphql::Value> {
        let d = &self.0;
        match field {
            "stage" => ready_node(
                ctx,
                Stage::ref_cast(&*Known::<stage::Model>::shared(ctx, d.stage_id)?),
            ),
            "owner" => {
                let owner = Named::<rep::Model>::for_field(ctx, d.owner_id)
                    .or_else(|| Known::<rep::Model>::shared(ctx, d.owner_id))?;
                ready_node(ctx, Rep::ref_cast(&*owner))
            }
            "account" => match d.account_id {
                None => Some(async_graphql::Value::Null),
                Some(id) => {
                    let account = Named::<account::Model>::for_field(ctx, id)
                        .or_else(|| Known::<account::Model>::shared(ctx, id))?;
                    ready_node(ctx, Account::ref_cast(&*account))
                }
            },
            _ => None,
        }
    }
}

#[Object]
impl Deal {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn external_id(&self) -> Option<&str> {
        self.0.external_id.as_deref()
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn amount(&self) -> Decimal {
        from_cents(self.0.amount_cents)
    }
    async fn currency(&self) -> &str {
        &self.0.currency
    }
    async fn status(&self) -> DealStatus {
        self.0.status.into()
    }
    async fn stage(&self, ctx: &Context<'_>) -> Result<Eager<Stage>> {
        load_by_id::<stage::Entity>(ctx, self.0.stage_id)
            .await?
            .map(|s| Eager(Stage(s)))
            .ok_or_else(|| AppError::internal("deal without a stage").extend())
    }
    async fn forecast_category(&self) -> ForecastCategory {
        self.0.forecast_category.into()
    }
    async fn source(&self) -> Option<DealSource> {
        self.0.source.map(Into::into)
    }
    async fn owner(&self, ctx: &Context<'_>) -> Result<Eager<Rep>> {
        if let Some(r) = Named::<rep::Model>::for_field(ctx, self.0.owner_id) {
            return Ok(Eager(Rep((*r).clone())));
        }
        load_by_id::<rep::Entity>(ctx, self.0.owner_id)
            .await?
            .map(|r| Eager(Rep(r)))
            .ok_or_else(|| AppError::internal("deal without an owner").extend())
    }
    async fn account(&self, ctx: &Context<'_>) -> Result<Option<Eager<Account>>> {
        match self.0.account_id {
            None => Ok(None),
            Some(id) => {
                if let Some(a) = Named::<account::Model>::for_field(ctx, id) {
                    return Ok(Some(Eager(Account((*a).clone()))));
                }
                Ok(load_by_id::<account::Entity>(ctx, id)
                    .await?
                    .map(|a| Eager(Account(a))))
            }
        }
    }
    async fn territory(&self, ctx: &Context<'_>) -> Result<Option<Territory>> {
        match self.0.territory_id {
            None => Ok(None),
            Some(id) => Ok(load_by_id::<territory::Entity>(ctx, id)
                .await?
                .map(Territory)),
        }
    }
    async fn playbook(&self, ctx: &Context<'_>) -> Result<Option<Playbook>> {
        match self.0.playbook_id {
            None => Ok(None),
            Some(id) => Ok(load_by_id::<playbook::Entity>(ctx, id).await?.map(Playbook)),
        }
    }
    /// When the opportunity was opened; integrations may backfill it.
    async fn opened_at(&self) -> DateTime<Utc> {
        self.0.opened_at
    }
    async fn expected_close_date(&self) -> Option<Date> {
        self.0.expected_close_date.map(Date)
    }
    async fn closed_at(&self) -> Option<DateTime<Utc>> {
        self.0.closed_at
    }
    async fn lost_reason(&self) -> Option<&str> {
        self.0.lost_reason.as_deref()
    }
    /// Whole days from openedAt to closedAt, or to now while open.
    async fn age_days(&self) -> i32 {
        clock::days_between(
            self.0.opened_at,
            self.0.closed_at.unwrap_or_else(clock::now),
        ) as i32
    }
    /// Every stage change, oldest first.
    async fn stage_history(&self, ctx: &Context<'_>) -> Result<EagerList<StageChange>> {
        Ok(load_children::<StageHistory>(ctx, self.0.id)
            .await?
            .into_iter()
            .map(StageChange)
            .collect())
    }
    /// Every written version of the deal, newest first (docs/design.md, Deal history). `first`
    /// defaults to 20.
    async fn history(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<DealRevisionConnection> {
        let first = crate::graphql::page_size(ctx, first, 20)?;
        DealRevisionConnection::load(ctx, self.0.id, first, after.as_deref()).await
    }
    /// How many times the expected close date moved to a later date while the deal was open.
    async fn push_count(&self) -> i32 {
        self.0.push_count
    }
    /// The risk signals the deal shows now (none once closed) and their share of the six.
    async fn risk(&self, ctx: &Context<'_>) -> Result<DealRisk> {
        let risk = ctx
            .data::<DataLoader<crate::graphql::loaders::DealRisks>>()?
            .load_one(self.0.id)
            .await
            .map_err(|e| (*e).clone().extend())?
            .ok_or_else(|| AppError::internal("a deal without its risk").extend())?;
        Ok(DealRisk(risk))
    }
    /// The latest activities logged on the deal (by reps in the caller's scope), newest first (first defaults to 10).
    #[graphql(complexity = "crate::graphql::list_complexity(first, 10, child_complexity)")]
    async fn activities(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
    ) -> Result<EagerList<super::lead::Activity>> {
        super::lead::recent_activities(
            ctx,
            crate::graphql::lead_loaders::ActivityParent::Deal(self.0.id),
            first,
        )
        .await
    }
    /// Incremented on every change; pass it back as expectedVersion for optimistic concurrency.
    async fn version(&self) -> i32 {
        self.0.version
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// An open deal's risk: its signals and their share of the six kinds.
pub struct DealRisk(crate::domain::risk::DealRisk);

#[Object]
impl DealRisk {
    /// The share of the six signals present, weighted equally (0 to 1).
    async fn score(&self) -> f64 {
        self.0.score
    }
    async fn signals(&self) -> EagerList<RiskSignal> {
        self.0
            .signals
            .iter()
            .map(|s| RiskSignal {
                kind: s.kind.into(),
                detail: s.detail.clone(),
            })
            .collect()
    }
}

#[derive(SimpleObject)]
pub struct RiskSignal {
    kind: crate::graphql::enums::RiskKind,
    /// Why, in words a manager reads, e.g. "close date moved later 3 times, last on 2026-11-20".
    detail: String,
}

impl ReadyFields for RiskSignal {}

pub struct StageChange(pub deal_stage_change::Model);

impl ReadyFields for StageChange {}

#[Object]
#[allow(clippy::wrong_self_convention)]
impl StageChange {
    async fn from_stage(&self, ctx: &Context<'_>) -> Result<Option<Stage>> {
        match self.0.from_stage_id {
            None => Ok(None),
            Some(id) => Ok(load_by_id::<stage::Entity>(ctx, id).await?.map(Stage)),
        }
    }
    async fn to_stage(&self, ctx: &Context<'_>) -> Result<Stage> {
        load_by_id::<stage::Entity>(ctx, self.0.to_stage_id)
            .await?
            .map(Stage)
            .ok_or_else(|| AppError::internal("stage change without a stage").extend())
    }
    async fn changed_at(&self) -> DateTime<Utc> {
        self.0.changed_at
    }
    async fn actor(&self) -> Option<&str> {
        self.0.actor.as_deref()
    }
}

#[derive(SimpleObject)]
pub struct PageInfo {
    pub has_previous_page: bool,
    pub has_next_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

pub struct DealEdge {
    node: deal::Model,
    order: DealOrder,
}

impl ReadyFields for DealEdge {
    fn ready_field(&self, field: &str) -> Option<async_graphql::Value> {
        match field {
            "cursor" => Some(ready_str(
                &Cursor::for_deal(self.order, &self.node).encode(),
            )),
            _ => None,
        }
    }
    fn ready_object(&self, ctx: &Context<'_>, field: &str) -> Option<async_graphql::Value> {
        match field {
            "node" => ready_node(ctx, Deal::ref_cast(&self.node)),
            _ => None,
        }
    }
}

#[Object]
impl DealEdge {
    async fn node(&self) -> Eager<Deal> {
        Eager(Deal(self.node.clone()))
    }
    async fn cursor(&self) -> String {
        Cursor::for_deal(self.order, &self.node).encode()
    }
}

enum CountSource {
    Top {
        scope: DealScope,
        filter: DealFilter,
    },
    Nested(CountKey),
}

/// A page of deals. totalCount counts the whole filtered set and is only
/// computed when selected.
pub struct DealConnection {
    rows: std::sync::Arc<[deal::Model]>,
    has_next: bool,
    has_previous: bool,
    order: DealOrder,
    count: CountSource,
}

impl DealConnection {
    pub fn top(
        rows: Vec<deal::Model>,
        has_next: bool,
        has_previous: bool,
        order: DealOrder,
        scope: DealScope,
        filter: DealFilter,
    ) -> Self {
        Self {
            rows: rows.into(),
            has_next,
            has_previous,
            order,
            count: CountSource::Top { scope, filter },
        }
    }

    /// Whether the page's nodes (as `nodes` or `edges { node }`) select
    /// `field`.
    pub fn selects_node(ctx: &Context<'_>, field: &str) -> bool {
        selects(ctx, &["nodes"], &[field]) || selects(ctx, &["edges", "node"], &[field])
    }

    /// Whether every field the page's nodes select under `field` (as
    /// `nodes` or `edges { node }`) is one of `fields`.
    pub fn selects_node_only(ctx: &Context<'_>, field: &str, fields: &[&str]) -> bool {
        selects_only(ctx, &["nodes", field], fields)
            && selects_only(ctx, &["edges", "node", field], fields)
    }

    /// The deal columns the page's nodes show (as `nodes` or `edges {
    /// node }`, through fragments, under any alias; directives are not
    /// evaluated, so a field under `@include(if: false)` still counts).
    /// The page adds the id and its order's key, which cursors read.
    pub fn node_columns(ctx: &Context<'_>) -> Columns {
        let mut set = Columns::NONE;
        for f in ctx.field().selection_set() {
            match f.name() {
                "nodes" => set = set.union(columns_of(f)),
                "edges" => {
                    for node in f.selection_set().filter(|e| e.name() == "node") {
                        set = set.union(columns_of(node));
                    }
                }
                _ => {}
            }
        }
        set
    }

    /// A connection under a rep or account, loaded for all parents at once.
    pub async fn nested(ctx: &Context<'_>, parent: DealParent, args: PageArgs) -> Result<Self> {
        let has_previous = args.after.is_some();
        let order = args.order;
        let count = CountSource::Nested(CountKey {
            parent,
            filter: args.filter.clone(),
        });
        // Boxed: the loader's future is about 2.4 KB, and a resolver's
        // future is as large as its largest field's (Rep and Account, which
        // hold `deals`, were 3.1 and 2.5 KB for every field they resolve).
        let (rows, has_next) = Box::pin(
            ctx.data::<DataLoader<DealPages>>()?
                .load_one(PageKey { parent, args }),
        )
        .await
        .map_err(|e| (*e).clone().extend())?
        .unwrap_or_default();
        if Self::selects_node(ctx, "stage") {
            Box::pin(prefetch::<stage::Entity>(
                ctx,
                rows.iter().map(|d| d.stage_id),
            ))
            .await?;
        }
        Ok(Self {
            rows,
            has_next,
            has_previous,
            order,
            count,
        })
    }
}

/// A page's nodes and edges when all of them are ready (the 220 pages of
/// a territories > reps > deals document skip async-graphql's per-field
/// futures); pageInfo and totalCount go through their resolvers.
impl ReadyFields for DealConnection {
    fn ready_object(&self, ctx: &Context<'_>, field: &str) -> Option<async_graphql::Value> {
        match field {
            "nodes" => ready_list(ctx, self.rows.iter().map(Deal::ref_cast)),
            "edges" => ready_list(
                ctx,
                self.rows.iter().map(|d| DealEdge {
                    node: d.clone(),
                    order: self.order,
                }),
            ),
            _ => None,
        }
    }
}

#[Object]
impl DealConnection {
    async fn edges(&self) -> EagerList<DealEdge> {
        self.rows
            .iter()
            .map(|d| DealEdge {
                node: d.clone(),
                order: self.order,
            })
            .collect()
    }
    async fn nodes(&self) -> EagerList<&Deal> {
        self.rows.iter().map(Deal::ref_cast).collect()
    }
    async fn page_info(&self) -> PageInfo {
        PageInfo {
            has_previous_page: self.has_previous,
            has_next_page: self.has_next,
            start_cursor: self
                .rows
                .first()
                .map(|d| Cursor::for_deal(self.order, d).encode()),
            end_cursor: self
                .rows
                .last()
                .map(|d| Cursor::for_deal(self.order, d).encode()),
        }
    }
    /// The size of the whole filtered set, on every page.
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i32> {
        let n = match &self.count {
            CountSource::Top { scope, filter } => {
                let _ = request(ctx)?;
                service::deal::count(read_db(ctx)?, *scope, filter)
                    .await
                    .extend()?
            }
            CountSource::Nested(key) => ctx
                .data::<DataLoader<DealCounts>>()?
                .load_one(key.clone())
                .await
                .map_err(|e| (*e).clone().extend())?
                .unwrap_or(0),
        };
        Ok(n as i32)
    }
}
