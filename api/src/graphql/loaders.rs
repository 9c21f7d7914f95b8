//! DataLoaders: every relation field loads through one of these, so a page
//! of N rows costs one `IN (...)` query per relation, not N queries.
//! Loaders are created per request (they cache, and they carry the caller's
//! scope and connection).
use crate::graphql::errors::Extend as _;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, FromQueryResult,
    Iterable, PrimaryKeyToColumn, QueryFilter, QueryOrder, QuerySelect,
};

use entity::{
    account, deal, deal_revision, deal_stage_change, lead_status_change, playbook, playbook_step,
    quota, rep, sop_approver, sop_line, sop_plan, sop_transition, stage, territory,
};

use crate::db::{Dialect, Sql};
use crate::error::AppError;
use crate::rows::{self, Columns, Positional};
use crate::service::access::DealScope;
use crate::service::deal_filter::DealFilter;
use crate::service::metrics::Cycle;
use crate::service::pagination::{Cursor, DealOrder};

/// Models addressed by an i64 primary key.
pub trait HasId {
    fn id(&self) -> i64;
}

macro_rules! has_id {
    ($($m:path),*) => { $(impl HasId for $m { fn id(&self) -> i64 { self.id } })* };
}
has_id!(
    territory::Model,
    rep::Model,
    account::Model,
    stage::Model,
    playbook::Model,
    deal::Model,
    sop_plan::Model,
    entity::lead_scoring_rule::Model
);

/// Loads rows of `E` by primary key.
pub struct ById<E>(DatabaseConnection, PhantomData<E>);

/// The request's by-id loader of `E`. Its cache (on for queries only: a
/// mutation may change a row between two of its fields, a subscription
/// lives across changes) answers repeated ids without a batch, and holds the
/// rows a page read in its own statement (see [`feed_by_id`]).
pub type ByIdLoader<E> = DataLoader<ById<E>, HashMapCache>;

impl<E> Loader<i64> for ById<E>
where
    E: EntityTrait + Send + Sync + 'static,
    E::Model: HasId + Positional + Clone + Send + Sync + 'static,
{
    type Value = E::Model;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, E::Model>, Self::Error> {
        let pk = E::PrimaryKey::iter()
            .next()
            .expect("every entity has a primary key")
            .into_column();
        let rows = rows::all(&self.0, E::find().filter(pk.is_in(keys.iter().copied())))
            .await
            .map_err(Arc::new)?;
        Ok(rows.into_iter().map(|m| (m.id(), m)).collect())
    }
}

/// A one-to-many relation: the child rows of `E` whose `column` holds the
/// parent's id, in the relation's order.
pub trait ChildRelation: Send + Sync + 'static {
    type Entity: EntityTrait;
    fn column() -> <Self::Entity as EntityTrait>::Column;
    fn parent(m: &<Self::Entity as EntityTrait>::Model) -> Option<i64>;
    fn order(q: sea_orm::Select<Self::Entity>) -> sea_orm::Select<Self::Entity>;
}

pub struct Children<R>(DatabaseConnection, Arc<RowBudget>, PhantomData<R>);

/// Rows one request may read through lists that take no page argument
/// (direct reports, territory members, stage histories, quotas, plan
/// lines). Paged lists are bounded by their page and the cost analysis;
/// these are bounded only by the data, which a writer controls (a REP can
/// move a deal thousands of times), so the rows actually read are counted
/// and the request stops past the budget.
#[derive(Debug)]
pub struct RowBudget {
    left: std::sync::atomic::AtomicI64,
    max: usize,
}

use crate::error::ROW_BUDGET_EXCEEDED;

impl RowBudget {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            left: std::sync::atomic::AtomicI64::new(max as i64),
            max,
        })
    }

    /// Takes `rows` from the budget; `Err` once it is spent.
    pub fn spend(&self, rows: usize) -> Result<(), Arc<DbErr>> {
        let before = self
            .left
            .fetch_sub(rows as i64, std::sync::atomic::Ordering::Relaxed);
        if before < rows as i64 {
            return Err(Arc::new(DbErr::Custom(format!(
                "{ROW_BUDGET_EXCEEDED}: the request read more than {} rows through lists \
                 without paging (SALESOPS_MAX_ROWS_PER_REQUEST)",
                self.max
            ))));
        }
        Ok(())
    }
}

impl<R> Loader<i64> for Children<R>
where
    R: ChildRelation,
    <R::Entity as EntityTrait>::Model: Positional + Clone + Send + Sync + 'static,
{
    type Value = Vec<<R::Entity as EntityTrait>::Model>;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let q = <R::Entity as EntityTrait>::find().filter(R::column().is_in(keys.iter().copied()));
        // One more row than the budget allows is enough to know it is spent.
        let left = self
            .1
            .left
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(0) as u64;
        let rows = rows::all(&self.0, R::order(q).limit(left + 1))
            .await
            .map_err(Arc::new)?;
        self.1.spend(rows.len())?;
        let mut out: HashMap<i64, Self::Value> = HashMap::new();
        for row in rows {
            if let Some(p) = R::parent(&row) {
                out.entry(p).or_default().push(row);
            }
        }
        Ok(out)
    }
}

macro_rules! child_relation {
    ($name:ident, $entity:ident, $col:ident, $parent:expr, [$($order:ident),*]) => {
        pub struct $name;
        impl ChildRelation for $name {
            type Entity = $entity::Entity;
            fn column() -> $entity::Column { $entity::Column::$col }
            fn parent(m: &$entity::Model) -> Option<i64> { ($parent)(m) }
            fn order(q: sea_orm::Select<$entity::Entity>) -> sea_orm::Select<$entity::Entity> {
                q$(.order_by_asc($entity::Column::$order))*
            }
        }
    };
}

child_relation!(
    LeadStatusHistory,
    lead_status_change,
    LeadId,
    |m: &lead_status_change::Model| Some(m.lead_id),
    [ChangedAt, Id]
);
child_relation!(
    TerritoryChildren,
    territory,
    ParentId,
    |m: &territory::Model| m.parent_id,
    [Name, Id]
);
child_relation!(
    TerritoryMembers,
    rep,
    TerritoryId,
    |m: &rep::Model| m.territory_id,
    [Name, Id]
);
child_relation!(
    DirectReports,
    rep,
    ManagerId,
    |m: &rep::Model| m.manager_id,
    [Name, Id]
);
child_relation!(
    RepQuotas,
    quota,
    RepId,
    |m: &quota::Model| Some(m.rep_id),
    [StartDate, Id]
);
child_relation!(
    PlaybookSteps,
    playbook_step,
    PlaybookId,
    |m: &playbook_step::Model| Some(m.playbook_id),
    [Position]
);
child_relation!(
    StageHistory,
    deal_stage_change,
    DealId,
    |m: &deal_stage_change::Model| Some(m.deal_id),
    [ChangedAt, Id]
);

child_relation!(
    SopPlanTransitions,
    sop_transition,
    PlanId,
    |m: &sop_transition::Model| Some(m.plan_id),
    [At, Id]
);

child_relation!(
    SopPlanApprovers,
    sop_approver,
    PlanId,
    |m: &sop_approver::Model| Some(m.plan_id),
    [Approver, Id]
);

/// A plan's budget total (service::sop::budget_totals).
pub struct SopPlanBudgets(DatabaseConnection);

impl Loader<i64> for SopPlanBudgets {
    type Value = rust_decimal::Decimal;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        crate::service::sop::budget_totals(&self.0, keys)
            .await
            .map_err(Arc::new)
    }
}

/// A plan's lines, ordered by kind, territory, month (service::sop::lines_for).
pub struct SopPlanLines(DatabaseConnection);

impl Loader<i64> for SopPlanLines {
    type Value = Vec<sop_line::Model>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        crate::service::sop::lines_for(&self.0, keys)
            .await
            .map_err(Arc::new)
    }
}

async fn sop_plans(db: &DatabaseConnection, ids: &[i64]) -> Result<Vec<sop_plan::Model>, AppError> {
    Ok(sop_plan::Entity::find()
        .filter(sop_plan::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?)
}

/// A plan's gaps (service::sop::gaps_for), many plans at once.
pub struct SopPlanGaps(DatabaseConnection);

impl Loader<i64> for SopPlanGaps {
    type Value = Vec<crate::service::sop::Gap>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let plans = sop_plans(&self.0, keys).await.map_err(Arc::new)?;
        crate::service::sop::gaps_for(&self.0, &plans)
            .await
            .map_err(Arc::new)
    }
}

/// A released plan against actual closed-won (service::sop::variances_for).
pub struct SopPlanVariances(DatabaseConnection);

impl Loader<i64> for SopPlanVariances {
    type Value = Vec<crate::service::sop::Variance>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let plans = sop_plans(&self.0, keys).await.map_err(Arc::new)?;
        crate::service::sop::variances_for(&self.0, &plans)
            .await
            .map_err(Arc::new)
    }
}

/// Which reps are in the caller's scope (REP: itself; MANAGER: its team),
/// for the reps that nested paths reach (a manager, territory members,
/// direct reports, a quota's rep): one team query per batch, however many
/// reps a page shows.
pub struct RepsInScope {
    db: DatabaseConnection,
    scope: DealScope,
}

impl Loader<i64> for RepsInScope {
    type Value = bool;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, bool>, Self::Error> {
        let found = crate::service::rep::in_scope_many(&self.db, self.scope, keys)
            .await
            .map_err(Arc::new)?;
        Ok(keys.iter().map(|k| (*k, found.contains(k))).collect())
    }
}

/// Whether the rep is in the request's scope; asks the database (through
/// `RepsInScope`) only for a manager's team.
pub async fn rep_in_scope(
    ctx: &async_graphql::Context<'_>,
    rep_id: i64,
) -> async_graphql::Result<bool> {
    let scope = crate::graphql::principal(ctx)?.scope();
    if let Some(known) = scope.has_rep(rep_id) {
        return Ok(known);
    }
    Ok(ctx
        .data::<DataLoader<RepsInScope>>()?
        .load_one(rep_id)
        .await
        .map_err(|e| (*e).clone().extend())?
        .unwrap_or(false))
}

/// Loads one key through the request's loader of type `L`; missing is empty.
pub async fn load_list<L, T>(
    ctx: &async_graphql::Context<'_>,
    key: i64,
) -> async_graphql::Result<Vec<T>>
where
    L: Loader<i64, Value = Vec<T>, Error = Arc<AppError>>,
    T: Clone + Send + Sync + 'static,
{
    Ok(ctx
        .data::<DataLoader<L>>()?
        .load_one(key)
        .await
        .map_err(|e| (*e).clone().extend())?
        .unwrap_or_default())
}

/// The parent of a nested deal connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DealParent {
    Owner(i64),
    Account(i64),
}

impl DealParent {
    fn column(self) -> &'static str {
        match self {
            DealParent::Owner(_) => "owner_id",
            DealParent::Account(_) => "account_id",
        }
    }
    fn id(self) -> i64 {
        match self {
            DealParent::Owner(i) | DealParent::Account(i) => i,
        }
    }
    fn with_id(self, id: i64) -> Self {
        match self {
            DealParent::Owner(_) => DealParent::Owner(id),
            DealParent::Account(_) => DealParent::Account(id),
        }
    }
}

/// The arguments of a nested deal connection (the same for every parent in
/// one selection, so one query serves them all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageArgs {
    pub filter: DealFilter,
    pub order: DealOrder,
    pub first: u64,
    pub after: Option<String>,
    /// The deal columns the selection shows (`DealConnection::node_columns`).
    pub columns: Columns,
}

/// Hashes everything but the filter: keys of one request nearly always
/// share it, and hashing its sixteen fields for every key (the loader's
/// maps hash each key several times) was 1-2% of a territories > reps >
/// deals document. Equal keys still hash equally; `Eq` compares the filter.
impl std::hash::Hash for PageArgs {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.order.hash(state);
        self.first.hash(state);
        self.after.hash(state);
        self.columns.hash(state);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageKey {
    pub parent: DealParent,
    pub args: PageArgs,
}

/// Pages of deals for many parents in one query: per parent a LATERAL
/// subquery with a LIMIT (PostgreSQL), or ROW_NUMBER() per parent (SQLite).
pub struct DealPages {
    db: DatabaseConnection,
    scope: DealScope,
}

impl Loader<PageKey> for DealPages {
    // Shared: the loader hands a page to its cache and to its caller (two
    // clones of every deal for 2,090 deals in reps > deals otherwise).
    type Value = (Arc<[deal::Model]>, bool);
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[PageKey]) -> Result<HashMap<PageKey, Self::Value>, Self::Error> {
        let mut groups: HashMap<(std::mem::Discriminant<DealParent>, PageArgs), Vec<DealParent>> =
            HashMap::new();
        for k in keys {
            groups
                .entry((std::mem::discriminant(&k.parent), k.args.clone()))
                .or_default()
                .push(k.parent);
        }
        let mut out = HashMap::new();
        for ((_, args), parents) in groups {
            let sample = parents[0];
            let col = sample.column();
            let after = match &args.after {
                Some(a) => Some(Cursor::decode(a, args.order).map_err(Arc::new)?),
                None => None,
            };
            let d = Dialect::of(&self.db);
            let order = args.order.order_by();
            // What the page shows, its cursors' keys and the parent's
            // column (rows are handed out by it).
            let columns = args
                .columns
                .union(args.order.key_columns())
                .union(Columns::of::<deal::Model>(&[col]));
            let mut sql = match d {
                // Per parent, its first rows through the index on (parent,
                // order): a LATERAL subquery with a LIMIT reads first + 1
                // rows per parent, where numbering every deal of every
                // parent read (and sorted) them all (measured on 220 reps of
                // 1,000,000 deals: 46,094 rows numbered to keep 2,090).
                Dialect::Postgres => {
                    let mut sql = Sql::new(format!(
                        "SELECT {} FROM (SELECT DISTINCT p.id FROM (VALUES ",
                        deal::Model::select_columns("deal", columns)
                    ));
                    for (i, p) in parents.iter().enumerate() {
                        if i > 0 {
                            sql.push(", ");
                        }
                        sql.push("(CAST(").bind(p.id()).push(" AS BIGINT))");
                    }
                    sql.push(&format!(
                        ") p(id)) parent CROSS JOIN LATERAL (SELECT deal.* FROM deal \
                         WHERE deal.{col} = parent.id"
                    ));
                    sql
                }
                // SQLite has no LATERAL: number each parent's rows.
                Dialect::Sqlite => {
                    let mut sql = Sql::new(format!(
                        "SELECT {} FROM (SELECT deal.*, ROW_NUMBER() OVER (PARTITION BY deal.{col} ORDER BY {order}) AS page_rn \
                         FROM deal WHERE deal.{col} IN ",
                        deal::Model::select_columns("ranked", columns)
                    ));
                    sql.bind_list(parents.iter().map(|p| p.id()));
                    sql
                }
            };
            args.filter.push_sql(&mut sql, self.scope, d);
            if let Some(c) = &after {
                sql.push(" AND ").append(&c.condition().map_err(Arc::new)?);
            }
            match d {
                Dialect::Postgres => {
                    sql.push(&format!(" ORDER BY {order}"))
                        .push_limit(args.first + 1)
                        .push(&format!(") deal ORDER BY deal.{col}, {order}"));
                }
                Dialect::Sqlite => {
                    sql.push(" ) ranked WHERE page_rn <= ")
                        .bind(args.first as i64 + 1)
                        .push(" ORDER BY page_rn");
                }
            }
            let rows = self
                .db
                .query_all_raw(sql.statement(self.db.get_database_backend()))
                .await
                .map_err(|e| Arc::new(AppError::from(e)))?;
            let mut by_parent: HashMap<i64, Vec<deal::Model>> = HashMap::new();
            for row in &rows {
                let row = deal::Model::decode_columns(row, 0, columns)
                    .map_err(|e| Arc::new(AppError::from(e)))?;
                let key = match sample {
                    DealParent::Owner(_) => Some(row.owner_id),
                    DealParent::Account(_) => row.account_id,
                };
                if let Some(k) = key {
                    by_parent.entry(k).or_default().push(row);
                }
            }
            for parent in parents {
                let mut rows = by_parent.remove(&parent.id()).unwrap_or_default();
                let more = rows.len() as u64 > args.first;
                rows.truncate(args.first as usize);
                out.insert(
                    PageKey {
                        parent,
                        args: args.clone(),
                    },
                    (rows.into(), more),
                );
            }
        }
        Ok(out)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CountKey {
    pub parent: DealParent,
    pub filter: DealFilter,
}

#[derive(FromQueryResult)]
struct ParentCount {
    parent: Option<i64>,
    n: i64,
}

/// totalCount of nested deal connections: one GROUP BY for many parents.
pub struct DealCounts {
    db: DatabaseConnection,
    scope: DealScope,
}

impl Loader<CountKey> for DealCounts {
    type Value = i64;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[CountKey]) -> Result<HashMap<CountKey, i64>, Self::Error> {
        let mut groups: HashMap<(std::mem::Discriminant<DealParent>, DealFilter), Vec<DealParent>> =
            HashMap::new();
        for k in keys {
            groups
                .entry((std::mem::discriminant(&k.parent), k.filter.clone()))
                .or_default()
                .push(k.parent);
        }
        let mut out = HashMap::new();
        for ((_, filter), parents) in groups {
            let col = parents[0].column();
            let mut sql = Sql::new(format!(
                "SELECT deal.{col} AS parent, COUNT(*) AS n FROM deal WHERE deal.{col} IN "
            ));
            sql.bind_list(parents.iter().map(|p| p.id()));
            filter.push_sql(&mut sql, self.scope, Dialect::of(&self.db));
            sql.push(&format!(" GROUP BY deal.{col}"));
            let rows =
                ParentCount::find_by_statement(sql.statement(self.db.get_database_backend()))
                    .all(&self.db)
                    .await
                    .map_err(|e| Arc::new(AppError::from(e)))?;
            let counts: HashMap<i64, i64> = rows
                .into_iter()
                .filter_map(|r| r.parent.map(|p| (p, r.n)))
                .collect();
            for parent in parents {
                let n = counts.get(&parent.id()).copied().unwrap_or(0);
                out.insert(
                    CountKey {
                        parent: parent.with_id(parent.id()),
                        filter: filter.clone(),
                    },
                    n,
                );
            }
        }
        Ok(out)
    }
}

/// A page of one deal's revisions: `first` newest first, older than the
/// version `before`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RevisionPageKey {
    pub deal_id: i64,
    pub first: u64,
    pub before: Option<i32>,
}

/// Pages of revisions for many deals, one statement per distinct
/// (first, before) in the request (see `service::deal_history::pages`);
/// each page holds up to first + 1 rows (the extra one is the previous
/// revision of the page's oldest and says that more follow).
pub struct RevisionPages(DatabaseConnection);

impl Loader<RevisionPageKey> for RevisionPages {
    type Value = Vec<deal_revision::Model>;
    type Error = Arc<AppError>;

    async fn load(
        &self,
        keys: &[RevisionPageKey],
    ) -> Result<HashMap<RevisionPageKey, Self::Value>, Self::Error> {
        let mut groups: HashMap<(u64, Option<i32>), Vec<i64>> = HashMap::new();
        for k in keys {
            groups
                .entry((k.first, k.before))
                .or_default()
                .push(k.deal_id);
        }
        let mut out = HashMap::new();
        for ((first, before), ids) in groups {
            let mut pages = crate::service::deal_history::pages(&self.0, &ids, first, before)
                .await
                .map_err(Arc::new)?;
            for deal_id in ids {
                out.insert(
                    RevisionPageKey {
                        deal_id,
                        first,
                        before,
                    },
                    pages.remove(&deal_id).unwrap_or_default(),
                );
            }
        }
        Ok(out)
    }
}

/// How many revisions each deal has.
pub struct RevisionCounts(DatabaseConnection);

impl Loader<i64> for RevisionCounts {
    type Value = i64;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, i64>, Self::Error> {
        crate::service::deal_history::counts(&self.0, keys)
            .await
            .map_err(Arc::new)
    }
}

/// The risk of each deal, one statement per batch.
pub struct DealRisks(DatabaseConnection);

impl Loader<i64> for DealRisks {
    type Value = crate::domain::risk::DealRisk;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        crate::service::deal_risk::risks(&self.0, keys)
            .await
            .map_err(Arc::new)
    }
}

/// Spawns a loader's batch task. async-graphql starts the batch `delay`
/// after the first key arrives; list fields resolve their items in chunks
/// and yield between them, so under load a batch could fire before the last
/// chunk has added its keys. Yielding first lets the request's executor poll
/// every chunk (the server's executors are single-threaded), so a page costs
/// one query per relation whatever its size. The batch runs as the work of
/// the request that started it (it is spawned from the request's task): its
/// statements are tagged while heavy work runs and stop when the request is
/// abandoned, like the resolvers' own.
fn spawn_batch(fut: futures::future::BoxFuture<'static, ()>) {
    let work = crate::work::current();
    tokio::spawn(async move {
        for _ in 0..BATCH_YIELDS {
            tokio::task::yield_now().await;
        }
        match work {
            Some(w) => crate::work::scope(w, fut).await,
            None => fut.await,
        }
    });
}

/// One grouping of won/lost aggregates a field asks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClosedKey {
    pub scope: DealScope,
    pub filter: DealFilter,
    pub period: crate::domain::period::Period,
    pub dim: crate::service::grouping::Dimension,
    pub cycle: Cycle,
}

/// The won/lost aggregates the fields of one request ask at the same time:
/// the groupings over the same scope, filter and period are one statement
/// (`metrics::closed::closed_by_keys`).
pub struct ClosedBatches(crate::request_db::RequestDb);

impl Loader<ClosedKey> for ClosedBatches {
    type Value = Vec<crate::service::metrics::ClosedAgg>;
    type Error = Arc<AppError>;

    async fn load(
        &self,
        keys: &[ClosedKey],
    ) -> Result<HashMap<ClosedKey, Self::Value>, Self::Error> {
        type Question = (DealScope, DealFilter, crate::domain::period::Period);
        let mut questions: HashMap<Question, Vec<&ClosedKey>> = HashMap::new();
        for k in keys {
            questions
                .entry((k.scope, k.filter.clone(), k.period))
                .or_default()
                .push(k);
        }
        let mut out = HashMap::new();
        for ((scope, filter, period), asked) in questions {
            let dims: Vec<_> = asked.iter().map(|k| k.dim).collect();
            let cycle = asked.iter().map(|k| k.cycle).max().unwrap_or(Cycle::Skip);
            let answers = crate::service::metrics::closed::closed_by_keys(
                &self.0, scope, &filter, &period, &dims, cycle,
            )
            .await
            .map_err(Arc::new)?;
            for (k, rows) in asked.into_iter().zip(answers) {
                out.insert(k.clone(), rows);
            }
        }
        Ok(out)
    }
}

/// A metric's won/lost aggregates through the request's [`ClosedBatches`].
pub struct BatchedClosed<'a>(pub &'a DataLoader<ClosedBatches>);

impl crate::service::metrics::closed::ClosedSource for BatchedClosed<'_> {
    fn closed_by_key<'a>(
        &'a self,
        scope: DealScope,
        filter: &'a DealFilter,
        period: &'a crate::domain::period::Period,
        dim: crate::service::grouping::Dimension,
        cycle: Cycle,
    ) -> futures::future::BoxFuture<
        'a,
        crate::error::AppResult<Vec<crate::service::metrics::ClosedAgg>>,
    > {
        Box::pin(async move {
            let key = ClosedKey {
                scope,
                filter: filter.clone(),
                period: *period,
                dim,
                cycle,
            };
            self.0
                .load_one(key)
                .await
                .map_err(|e| (*e).clone())?
                .ok_or_else(|| AppError::internal("a grouping of closed deals is missing"))
        })
    }
}

/// Enough yields for pages of 1,000 items polled 32 at a time.
const BATCH_YIELDS: usize = 32;

/// A request's loader: batches are gathered by yielding (see `spawn_batch`),
/// so no timer delay is added on top.
fn batched<T>(loader: T) -> DataLoader<T> {
    DataLoader::new(loader, spawn_batch).delay(std::time::Duration::ZERO)
}

/// Attaches every loader to a request. `request_db` is what the request's
/// metrics read through (its heavy statements: see request_db.rs);
/// `query`: the operation is a query, so by-id rows may be cached for the
/// request (see [`ByIdLoader`]).
pub fn attach(
    req: async_graphql::Request,
    db: &DatabaseConnection,
    request_db: &crate::request_db::RequestDb,
    scope: DealScope,
    max_rows: usize,
    query: bool,
) -> async_graphql::Request {
    let budget = RowBudget::new(max_rows);
    /// The by-id loader of `E` and its [`Known`] rows.
    fn by_id<E>(
        req: async_graphql::Request,
        db: &DatabaseConnection,
        query: bool,
    ) -> async_graphql::Request
    where
        E: EntityTrait + Send + Sync + 'static,
        E::Model: HasId + Positional + Clone + Send + Sync + 'static,
    {
        let loader = ById::<E>(db.clone(), PhantomData);
        let l = DataLoader::with_cache(loader, spawn_batch, HashMapCache::default())
            .delay(std::time::Duration::ZERO);
        l.enable_all_cache(query);
        req.data(l).data(Known::<E::Model>::default())
    }
    fn children<R>(db: &DatabaseConnection, budget: &Arc<RowBudget>) -> DataLoader<Children<R>>
    where
        R: ChildRelation,
        <R::Entity as EntityTrait>::Model: Positional + Clone + Send + Sync + 'static,
    {
        batched(Children::<R>(db.clone(), budget.clone(), PhantomData))
    }
    let req = by_id::<territory::Entity>(req, db, query);
    let req = by_id::<rep::Entity>(req, db, query);
    let req = by_id::<account::Entity>(req, db, query);
    let req = by_id::<stage::Entity>(req, db, query);
    let req = by_id::<playbook::Entity>(req, db, query);
    let req = by_id::<sop_plan::Entity>(req, db, query);
    let req = by_id::<entity::lead_scoring_rule::Entity>(req, db, query);
    req.data(RowsCached(query))
        .data(Named::<rep::Model>::default())
        .data(Named::<account::Model>::default())
        .data(children::<SopPlanTransitions>(db, &budget))
        .data(batched(SopPlanLines(db.clone())))
        .data(batched(SopPlanGaps(db.clone())))
        .data(batched(SopPlanVariances(db.clone())))
        .data(children::<SopPlanApprovers>(db, &budget))
        .data(batched(SopPlanBudgets(db.clone())))
        .data(children::<TerritoryChildren>(db, &budget))
        .data(children::<TerritoryMembers>(db, &budget))
        .data(children::<DirectReports>(db, &budget))
        .data(children::<RepQuotas>(db, &budget))
        .data(children::<PlaybookSteps>(db, &budget))
        .data(children::<StageHistory>(db, &budget))
        .data(batched(RevisionPages(db.clone())))
        .data(batched(RevisionCounts(db.clone())))
        .data(batched(DealRisks(db.clone())))
        .data(batched(ClosedBatches(request_db.clone())))
        .data(batched(RepsInScope {
            db: db.clone(),
            scope,
        }))
        .data(batched(DealPages {
            db: db.clone(),
            scope,
        }))
        .data(batched(DealCounts {
            db: db.clone(),
            scope,
        }))
        .data(batched(PlaybookEffectivenessLoader {
            db: db.clone(),
            scope,
        }))
        .data(batched(TeamQuotaLoader { db: db.clone() }))
        .data(children::<LeadStatusHistory>(db, &budget))
        .data(batched(crate::graphql::lead_loaders::LeadsInScope {
            db: db.clone(),
            scope,
        }))
        .data(batched(crate::graphql::lead_loaders::DealsInScope {
            db: db.clone(),
            scope,
        }))
        .data(batched(crate::graphql::lead_loaders::RecentActivities {
            db: db.clone(),
            scope,
        }))
}

/// Loads one row by id through the request's loader.
pub async fn load_by_id<E>(
    ctx: &async_graphql::Context<'_>,
    id: i64,
) -> async_graphql::Result<Option<E::Model>>
where
    E: EntityTrait + Send + Sync + 'static,
    E::Model: HasId + Positional + Clone + Send + Sync + 'static,
{
    if let Some(row) = Known::<E::Model>::get(ctx, id) {
        return Ok(Some(row));
    }
    ctx.data::<ByIdLoader<E>>()?
        .load_one(id)
        .await
        .map_err(|e| AppError::from(e).extend())
}

/// The rows of a model the request's by-id loader was given or asked for
/// in one call ([`feed_by_id`], [`prefetch`]), readable without awaiting
/// the loader: [`load_by_id`] looks here first. Filled only when the
/// loader caches (queries), so it holds what the loader's cache holds.
/// Thousands of deals asking for one of ten stages each went through the
/// loader's channel, key set and answer map; here it is one lookup.
pub struct Known<M>(RowsById<M>);

impl<M> Default for Known<M> {
    fn default() -> Self {
        Self(RowsById::default())
    }
}

impl<M: HasId + Clone + Send + Sync + 'static> Known<M> {
    /// The row of `id`, when the request holds it.
    pub fn get(ctx: &async_graphql::Context<'_>, id: i64) -> Option<M> {
        Self::shared(ctx, id).map(|m| (*m).clone())
    }

    /// The row of `id` without a copy of it (a field that only reads it).
    pub fn shared(ctx: &async_graphql::Context<'_>, id: i64) -> Option<Arc<M>> {
        ctx.data_opt::<Self>()?.0.get(id)
    }

    /// Keeps `rows` when the request's loaders cache.
    fn keep<'a>(ctx: &async_graphql::Context<'_>, rows: impl IntoIterator<Item = &'a M>)
    where
        M: 'a,
    {
        if !ctx.data_opt::<RowsCached>().is_some_and(|c| c.0) {
            return;
        }
        if let Some(known) = ctx.data_opt::<Self>() {
            known.0.extend(rows.into_iter().cloned());
        }
    }
}

/// Rows by id that one request shares between its fields (shared, so a
/// lookup copies a pointer, not the row: 2,090 deals asking for their
/// stage copied its name 2,090 times).
struct RowsById<M>(std::sync::Mutex<HashMap<i64, Arc<M>>>);

impl<M> Default for RowsById<M> {
    fn default() -> Self {
        Self(std::sync::Mutex::new(HashMap::new()))
    }
}

impl<M: HasId + Clone> RowsById<M> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Arc<M>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn get(&self, id: i64) -> Option<Arc<M>> {
        self.lock().get(&id).cloned()
    }
    fn extend(&self, rows: impl IntoIterator<Item = M>) {
        self.lock()
            .extend(rows.into_iter().map(|m| (m.id(), Arc::new(m))));
    }
}

/// Puts rows read by another statement (a page's joined relations) into
/// the request's by-id cache, so their fields resolve without a batch.
pub async fn feed_by_id<E>(
    ctx: &async_graphql::Context<'_>,
    rows: impl IntoIterator<Item = E::Model>,
) -> async_graphql::Result<()>
where
    E: EntityTrait + Send + Sync + 'static,
    E::Model: HasId + Positional + Clone + Send + Sync + 'static,
{
    let rows: Vec<E::Model> = rows.into_iter().collect();
    Known::<E::Model>::keep(ctx, &rows);
    ctx.data::<ByIdLoader<E>>()?
        .feed_many(rows.into_iter().map(|m| (m.id(), m)))
        .await;
    Ok(())
}

/// The fields a row known by its id and name answers (see [`Named`]).
pub const NAME_FIELDS: &[&str] = &["id", "name", "__typename"];

/// Rows a deal page read by id and name alone (`service::deal::Join::
/// IdAndName`), by id. Kept apart from the by-id loaders' cache, whose rows
/// are whole: a field reads one of these only when its own selection asks
/// for nothing but [`NAME_FIELDS`] (checked at each field, so another part
/// of the document asking more of the same row reads the whole row).
pub struct Named<M>(RowsById<M>);

impl<M> Default for Named<M> {
    fn default() -> Self {
        Self(RowsById::default())
    }
}

impl<M: HasId + Clone + Send + Sync + 'static> Named<M> {
    /// Keeps `rows` for the fields that show only their names.
    pub fn keep(ctx: &async_graphql::Context<'_>, rows: impl IntoIterator<Item = M>) {
        if let Some(named) = ctx.data_opt::<Self>() {
            named.0.extend(rows);
        }
    }

    /// The row of `id` for the field of `ctx`, when a page read it and the
    /// field shows nothing but its names.
    pub fn for_field(ctx: &async_graphql::Context<'_>, id: i64) -> Option<Arc<M>> {
        let row = ctx.data_opt::<Self>()?.0.get(id)?;
        crate::graphql::selects_only(ctx, &[], NAME_FIELDS).then_some(row)
    }
}

/// Whether the request's by-id loaders cache rows (queries: see
/// [`ByIdLoader`]).
pub struct RowsCached(pub bool);

/// Loads the rows of `ids` through the request's by-id loader in one call,
/// so the fields that then ask for them one by one find them in [`Known`].
/// Each of those calls would otherwise wait on the batch with its own
/// channel, key set and answer map: the 2,090 deals of a territories >
/// reps > deals page asked for ten stages that way. Nothing to gain when
/// the request does not cache (mutations).
pub async fn prefetch<E>(
    ctx: &async_graphql::Context<'_>,
    ids: impl IntoIterator<Item = i64>,
) -> async_graphql::Result<()>
where
    E: EntityTrait + Send + Sync + 'static,
    E::Model: HasId + Positional + Clone + Send + Sync + 'static,
{
    if !ctx.data_opt::<RowsCached>().is_some_and(|c| c.0) {
        return Ok(());
    }
    let ids: std::collections::HashSet<i64> = ids.into_iter().collect();
    let rows = ctx
        .data::<ByIdLoader<E>>()?
        .load_many(ids)
        .await
        .map_err(|e| AppError::from(e).extend())?;
    Known::<E::Model>::keep(ctx, rows.values());
    Ok(())
}

/// Loads the children of one parent through the request's loader.
pub async fn load_children<R>(
    ctx: &async_graphql::Context<'_>,
    parent: i64,
) -> async_graphql::Result<Vec<<R::Entity as EntityTrait>::Model>>
where
    R: ChildRelation,
    <R::Entity as EntityTrait>::Model: Positional + Clone + Send + Sync + 'static,
{
    Ok(ctx
        .data::<DataLoader<Children<R>>>()?
        .load_one(parent)
        .await
        .map_err(|e| AppError::from(e).extend())?
        .unwrap_or_default())
}

use crate::domain::period::Period as DomainPeriod;

/// Playbook.effectiveness for many playbooks: one grouped statement per
/// distinct period in the batch.
pub struct PlaybookEffectivenessLoader {
    pub db: DatabaseConnection,
    pub scope: DealScope,
}

impl Loader<(i64, DomainPeriod)> for PlaybookEffectivenessLoader {
    type Value = crate::service::metrics::playbook::Effectiveness;
    type Error = Arc<AppError>;

    async fn load(
        &self,
        keys: &[(i64, DomainPeriod)],
    ) -> Result<HashMap<(i64, DomainPeriod), Self::Value>, Self::Error> {
        let mut by_period: HashMap<DomainPeriod, Vec<i64>> = HashMap::new();
        for (id, p) in keys {
            by_period.entry(*p).or_default().push(*id);
        }
        let mut out = HashMap::new();
        for (period, ids) in by_period {
            let found = crate::service::metrics::playbook::effectiveness_for(
                &self.db, self.scope, &period, &ids,
            )
            .await
            .map_err(Arc::new)?;
            out.extend(found.into_iter().map(|(id, e)| ((id, period), e)));
        }
        Ok(out)
    }
}

/// Rep.teamQuota for many reps: one statement per distinct period in the
/// batch (service::quota::team_quotas).
pub struct TeamQuotaLoader {
    pub db: DatabaseConnection,
}

impl Loader<(i64, DomainPeriod)> for TeamQuotaLoader {
    type Value = rust_decimal::Decimal;
    type Error = Arc<AppError>;

    async fn load(
        &self,
        keys: &[(i64, DomainPeriod)],
    ) -> Result<HashMap<(i64, DomainPeriod), Self::Value>, Self::Error> {
        let mut by_period: HashMap<DomainPeriod, Vec<i64>> = HashMap::new();
        for (id, p) in keys {
            by_period.entry(*p).or_default().push(*id);
        }
        let mut out = HashMap::new();
        for (period, ids) in by_period {
            let found = crate::service::quota::team_quotas(&self.db, &period, &ids)
                .await
                .map_err(Arc::new)?;
            out.extend(found.into_iter().map(|(id, q)| ((id, period), q)));
        }
        Ok(out)
    }
}
