//! Deals: reads within the caller's scope, and the writes that keep the
//! stage history, version and audit trail consistent in one transaction.
use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rust_decimal::Decimal;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QuerySelect,
};

use entity::enums::{DealSource, DealStatus, ForecastCategory, StageKind};
use entity::{account, deal, deal_stage_change, rep, stage};

use super::access::{DealScope, DEAL_WRITERS};
use super::audit::Changes;
pub use super::deal_change::{created_changes, HistoryRow, PlannedCreate};
use super::deal_filter::DealFilter;
use super::deal_write::{self as write, DealWrite};
use super::pagination::{Cursor, DealOrder};
use super::{optional_text, required_text, Patch};
use crate::auth::Principal;
use crate::clock;
use crate::db::{begin_write, Dialect, Sql};
use crate::domain::money::{from_cents, to_cents};
use crate::error::{AppError, AppResult};
use crate::rows::{Columns, Positional};

/// How far in the future a client clock may be when it stamps a change.
const CLOCK_SKEW: Duration = Duration::minutes(5);

#[derive(Debug, Clone, Default)]
pub struct NewDeal {
    pub external_id: Option<String>,
    pub name: String,
    pub amount: Decimal,
    pub currency: Option<String>,
    pub owner_id: i64,
    pub account_id: Option<i64>,
    pub territory_id: Option<i64>,
    pub stage_id: Option<i64>,
    pub forecast_category: Option<ForecastCategory>,
    pub source: Option<DealSource>,
    pub playbook_id: Option<i64>,
    pub opened_at: Option<DateTime<Utc>>,
    pub expected_close_date: Option<NaiveDate>,
    pub closed_at: Option<DateTime<Utc>>,
    pub lost_reason: Option<String>,
    /// When the deal entered `stage_id` (backfills from another CRM): for a
    /// new deal in a later stage, and for an upsert that moves the deal.
    pub stage_changed_at: Option<DateTime<Utc>>,
    /// Backfill (OPS, ADMIN, INTEGRATION): when an update of an existing
    /// deal took effect; ignored when the upsert creates the deal (its
    /// history starts at openedAt).
    pub effective_at: Option<DateTime<Utc>>,
}

impl NewDeal {
    /// The input as a patch of an existing deal (upserts): given fields
    /// replace the stored ones, absent ones keep them. The stage, openedAt,
    /// closedAt and lostReason are handled by the upsert itself.
    pub fn as_changes(&self) -> DealChanges {
        let set = |v: Option<i64>| v.map(Patch::Set).unwrap_or_default();
        DealChanges {
            name: Some(self.name.clone()),
            amount: Some(self.amount),
            owner_id: Some(self.owner_id),
            account_id: set(self.account_id),
            territory_id: set(self.territory_id),
            forecast_category: self.forecast_category,
            source: self.source.map(Patch::Set).unwrap_or_default(),
            playbook_id: set(self.playbook_id),
            expected_close_date: self.expected_close_date.map(Patch::Set).unwrap_or_default(),
            effective_at: self.effective_at,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct DealChanges {
    pub name: Option<String>,
    pub amount: Option<Decimal>,
    pub owner_id: Option<i64>,
    pub account_id: Patch<i64>,
    pub territory_id: Patch<i64>,
    pub forecast_category: Option<ForecastCategory>,
    pub source: Patch<DealSource>,
    pub playbook_id: Patch<i64>,
    pub expected_close_date: Patch<NaiveDate>,
    /// Backfill: when the change took effect (see [`revision_time`]).
    pub effective_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default)]
pub struct StageMove {
    pub stage_id: i64,
    pub at: Option<DateTime<Utc>>,
    pub lost_reason: Option<String>,
    /// The category a reopened deal takes (PIPELINE when none is given).
    pub forecast_category: Option<ForecastCategory>,
}

/// Settings the deal rules depend on.
#[derive(Debug, Clone)]
pub struct DealRules {
    pub currency: String,
}

/// A deal the principal may see, else NOT_FOUND (existence is not leaked).
pub async fn get(db: &impl ConnectionTrait, scope: DealScope, id: i64) -> AppResult<deal::Model> {
    let mut q = deal::Entity::find_by_id(id);
    if let Some(c) = scope.rep_condition("deal.owner_id", db.get_database_backend()) {
        q = q.filter(c);
    }
    q.one(db).await?.ok_or_else(|| AppError::not_found("deal"))
}

/// `get` inside a write: on PostgreSQL the row is locked (FOR UPDATE) until
/// the transaction ends, so concurrent single-deal writes queue instead of
/// racing on the version (SQLite's BEGIN IMMEDIATE already serialises
/// writers).
async fn get_for_write(
    tx: &DatabaseTransaction,
    scope: DealScope,
    id: i64,
) -> AppResult<deal::Model> {
    let backend = tx.get_database_backend();
    let mut q = deal::Entity::find_by_id(id);
    if let Some(c) = scope.rep_condition("deal.owner_id", backend) {
        q = q.filter(c);
    }
    if backend == sea_orm::DatabaseBackend::Postgres {
        q = q.lock_exclusive();
    }
    q.one(tx).await?.ok_or_else(|| AppError::not_found("deal"))
}

pub async fn get_by_external_id(
    db: &impl ConnectionTrait,
    scope: DealScope,
    external_id: &str,
) -> AppResult<deal::Model> {
    let mut q = deal::Entity::find().filter(deal::Column::ExternalId.eq(external_id));
    if let Some(c) = scope.rep_condition("deal.owner_id", db.get_database_backend()) {
        q = q.filter(c);
    }
    q.one(db).await?.ok_or_else(|| AppError::not_found("deal"))
}

/// One page: up to `first` deals after the cursor, and whether more follow.
/// Each deal holds the columns of `columns` (with its id and the order's
/// key, which cursors read) and no others (`rows::Columns`).
#[allow(clippy::too_many_arguments)]
pub async fn page(
    db: &impl ConnectionTrait,
    scope: DealScope,
    filter: &DealFilter,
    order: DealOrder,
    first: u64,
    after: Option<&Cursor>,
    columns: Columns,
    joins: ToOne,
) -> AppResult<(Vec<PageRow>, bool)> {
    let columns = columns.union(order.key_columns());
    let owner = joins.owner.columns::<rep::Model>();
    let account = joins.account.columns::<account::Model>();
    let deal_columns = deal::Model::select_columns("deal", columns);
    // The page's deals, in order.
    let mut sql = Sql::new(format!("SELECT {deal_columns} FROM deal WHERE 1 = 1"));
    filter.push_sql(&mut sql, scope, Dialect::of(db));
    if let Some(c) = after {
        sql.push(" AND ").append(&c.condition()?);
    }
    sql.push(" ORDER BY ")
        .push(order.order_by())
        .push_limit(first + 1);
    if owner.is_some() || account.is_some() {
        // The owners and accounts of those deals, joined to the page (the
        // owner is a foreign key, never NULL, so the inner join keeps every
        // deal). Joined before the LIMIT, PostgreSQL plans a Memoize per
        // relation sized for the million rows it might join and clears it
        // at every execution (a third of its time in memset): on 1,000,000
        // deals, a page of 50 with names ran 5,300 -> 6,800 statements/s in
        // pgbench at 16 clients (the raw SQL, joined plainly: 5,300-5,700).
        let mut joined = Sql::new(format!("SELECT {deal_columns}"));
        if let Some(c) = owner {
            joined
                .push(", ")
                .push(&rep::Model::select_columns("rep_of_deal", c));
        }
        if let Some(c) = account {
            joined
                .push(", ")
                .push(&account::Model::select_columns("account_of_deal", c));
        }
        joined.push(" FROM (").append(&sql).push(") deal");
        if owner.is_some() {
            joined.push(" JOIN rep rep_of_deal ON rep_of_deal.id = deal.owner_id");
        }
        if account.is_some() {
            joined
                .push(" LEFT JOIN account account_of_deal ON account_of_deal.id = deal.account_id");
        }
        joined.push(" ORDER BY ").push(order.order_by());
        sql = joined;
    }
    // Read by position: the deal's columns, then the owner's, then the
    // account's (crate::rows).
    let results = db
        .query_all_raw(sql.statement(db.get_database_backend()))
        .await?;
    let more = results.len() as u64 > first;
    let mut rows = Vec::with_capacity(results.len().min(first as usize));
    let owner_at = columns.count();
    let account_at = owner_at + owner.map_or(0, Columns::count);
    for r in results.iter().take(first as usize) {
        rows.push(PageRow {
            deal: deal::Model::decode_columns(r, 0, columns)?,
            owner: owner
                .map(|c| rep::Model::decode_columns(r, owner_at, c))
                .transpose()?,
            account: match account {
                Some(c) => account::Model::decode_columns_optional(r, account_at, c)?,
                None => None,
            },
        });
    }
    Ok((rows, more))
}

/// The to-one relations a page reads in its own statement (joined) rather
/// than through their loaders: the ones the query selects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ToOne {
    pub owner: Join,
    pub account: Join,
}

/// How a page reads one to-one relation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Join {
    /// Not at all (its loader reads it if a field asks).
    #[default]
    No,
    /// Its id and name alone, when the page shows nothing else of it (the
    /// other fields are unread, `rows::Columns`). On 1,000,000 deals, a
    /// page of 50 with its owners' and accounts' names ran 2,651 -> 2,974
    /// statements/s in pgbench (16 clients) against every column of both.
    IdAndName,
    /// Every column.
    All,
}

impl Join {
    /// The relation's columns the page reads, if joined.
    fn columns<M: Positional>(self) -> Option<Columns> {
        match self {
            Join::No => None,
            Join::IdAndName => Some(Columns::id_and_name::<M>()),
            Join::All => Some(Columns::all::<M>()),
        }
    }
}

/// A deal of a page with the relations [`ToOne`] asked for (as [`Join`]
/// read them).
pub struct PageRow {
    pub deal: deal::Model,
    pub owner: Option<rep::Model>,
    pub account: Option<account::Model>,
}

#[derive(FromQueryResult)]
struct CountRow {
    n: i64,
}

/// The size of the whole filtered set, whatever the page.
pub async fn count(
    db: &impl ConnectionTrait,
    scope: DealScope,
    filter: &DealFilter,
) -> AppResult<i64> {
    let mut sql = Sql::new("SELECT COUNT(*) AS n FROM deal WHERE 1 = 1");
    filter.push_sql(&mut sql, scope, Dialect::of(db));
    let row = CountRow::find_by_statement(sql.statement(db.get_database_backend()))
        .one(db)
        .await?;
    Ok(row.map(|r| r.n).unwrap_or(0))
}

pub(crate) fn check_currency(given: Option<&str>, rules: &DealRules) -> AppResult<String> {
    match given.map(|c| c.trim().to_uppercase()) {
        None => Ok(rules.currency.clone()),
        Some(c) if c == rules.currency => Ok(c),
        Some(c) => Err(AppError::bad_input(format!(
            "currency {c} is not the organisation's currency {}",
            rules.currency
        ))),
    }
}

fn not_in_future(t: DateTime<Utc>, field: &str, now: DateTime<Utc>) -> AppResult<()> {
    if t > now + CLOCK_SKEW {
        Err(AppError::bad_input(format!(
            "{field} must not be in the future"
        )))
    } else {
        Ok(())
    }
}

/// When a write of `current` takes effect (its revision's valid_from):
/// `effective_at` when given (OPS, ADMIN and INTEGRATION backfills; checked
/// by [`check_backfill`]), else now; never before the deal's latest
/// revision, so revisions stay in time order and the past never changes.
pub fn revision_time(
    current: &deal::Model,
    effective_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> AppResult<DateTime<Utc>> {
    match effective_at.map(clock::truncate_micros) {
        Some(t) => {
            not_in_future(t, "effectiveAt", now)?;
            if t < current.valid_from {
                return Err(AppError::bad_input(format!(
                    "effectiveAt must not be before the deal's latest revision ({})",
                    current.valid_from.to_rfc3339()
                )));
            }
            Ok(t)
        }
        // A latest revision stamped a little ahead (client clock skew) is
        // not overtaken by now.
        None => Ok(now.max(current.valid_from)),
    }
}

/// Roles that may backfill a change with effectiveAt.
pub fn check_backfill(actor: &Principal, effective_at: Option<DateTime<Utc>>) -> AppResult<()> {
    if effective_at.is_some() && !super::forecast::submission::BACKFILLERS.contains(&actor.role) {
        return Err(AppError::forbidden(
            "effectiveAt backfills are for OPS, ADMIN and INTEGRATION",
        ));
    }
    Ok(())
}

/// The category a deal takes in a stage: a WON stage means CLOSED, a LOST
/// one OMITTED (whatever was given), an open one the given category.
fn category_in(kind: StageKind, given: ForecastCategory) -> ForecastCategory {
    match kind {
        StageKind::Open => given,
        closed => default_category(closed),
    }
}

fn default_category(kind: StageKind) -> ForecastCategory {
    match kind {
        StageKind::Open => ForecastCategory::Pipeline,
        StageKind::Won => ForecastCategory::Closed,
        StageKind::Lost => ForecastCategory::Omitted,
    }
}

/// The ids a batch of deal writes refers to, loaded at once by [`Refs::load`].
#[derive(Debug, Default)]
pub struct RefIds {
    /// Owners to assign, and owners of existing deals (for the scope check).
    pub reps: BTreeSet<i64>,
    pub accounts: BTreeSet<i64>,
    pub territories: BTreeSet<i64>,
    pub playbooks: BTreeSet<i64>,
}

impl RefIds {
    pub fn add_new(&mut self, d: &NewDeal) {
        self.reps.insert(d.owner_id);
        self.accounts.extend(d.account_id);
        self.territories.extend(d.territory_id);
        self.playbooks.extend(d.playbook_id);
    }

    pub fn add_changes(&mut self, c: &DealChanges) {
        self.reps.extend(c.owner_id);
        self.accounts.extend(c.account_id.as_set().copied());
        self.territories.extend(c.territory_id.as_set().copied());
        self.playbooks.extend(c.playbook_id.as_set().copied());
    }
}

/// Everything deal validation looks up, loaded with one query per table for
/// a whole batch, so one write and a bulk of 1,000 run the same checks.
#[derive(Debug, Default)]
pub struct Refs {
    stages: Vec<stage::Model>,
    reps: HashMap<i64, rep::Model>,
    /// Every rep is in the principal's scope.
    all_in_scope: bool,
    /// Otherwise: the reps it may assign deals to (and whose deals it may change).
    in_scope: HashSet<i64>,
    accounts: HashMap<i64, account::Model>,
    territories: HashSet<i64>,
    playbooks: HashSet<i64>,
}

#[derive(FromQueryResult)]
struct IdRow {
    id: i64,
}

async fn existing_ids(
    db: &impl ConnectionTrait,
    table: &str,
    ids: &BTreeSet<i64>,
) -> AppResult<HashSet<i64>> {
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let mut sql = Sql::new(format!("SELECT id FROM {table} WHERE id IN "));
    sql.bind_list(ids.iter().copied());
    Ok(
        IdRow::find_by_statement(sql.statement(db.get_database_backend()))
            .all(db)
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect(),
    )
}

impl Refs {
    pub async fn load(
        db: &impl ConnectionTrait,
        actor: &Principal,
        ids: &RefIds,
    ) -> AppResult<Self> {
        let stages = super::stage::list(db).await?;
        let reps: HashMap<i64, rep::Model> = if ids.reps.is_empty() {
            HashMap::new()
        } else {
            rep::Entity::find()
                .filter(rep::Column::Id.is_in(ids.reps.iter().copied()))
                .all(db)
                .await?
                .into_iter()
                .map(|r| (r.id, r))
                .collect()
        };
        let in_scope = match actor.scope() {
            DealScope::All => HashSet::new(),
            DealScope::Owner(own) => HashSet::from([own]),
            scope @ DealScope::Team(_) if !ids.reps.is_empty() => {
                let mut sql = Sql::new("SELECT id FROM rep WHERE id IN ");
                sql.bind_list(ids.reps.iter().copied()).push(" AND ");
                let (cond, values) = scope.rep_sql("id");
                sql.push_with(&cond, values);
                IdRow::find_by_statement(sql.statement(db.get_database_backend()))
                    .all(db)
                    .await?
                    .into_iter()
                    .map(|r| r.id)
                    .collect()
            }
            DealScope::Team(_) => HashSet::new(),
        };
        let accounts = if ids.accounts.is_empty() {
            HashMap::new()
        } else {
            account::Entity::find()
                .filter(account::Column::Id.is_in(ids.accounts.iter().copied()))
                .all(db)
                .await?
                .into_iter()
                .map(|a| (a.id, a))
                .collect()
        };
        Ok(Self {
            stages,
            reps,
            all_in_scope: actor.scope() == DealScope::All,
            in_scope,
            accounts,
            territories: existing_ids(db, "territory", &ids.territories).await?,
            playbooks: existing_ids(db, "playbook", &ids.playbooks).await?,
        })
    }

    /// A rep the principal may assign deals to: FORBIDDEN outside its
    /// scope, BAD_USER_INPUT when it does not exist.
    pub(crate) fn owner(&self, id: i64) -> AppResult<&rep::Model> {
        if !self.all_in_scope && !self.in_scope.contains(&id) {
            return Err(AppError::forbidden(
                "deals can only be assigned to reps in your scope",
            ));
        }
        self.reps
            .get(&id)
            .ok_or_else(|| AppError::bad_input(format!("ownerId: no record with id {id}")))
    }

    /// Whether a rep is in the principal's scope (its leads and
    /// activities may be changed).
    pub(crate) fn in_scope(&self, rep_id: i64) -> bool {
        self.all_in_scope || self.in_scope.contains(&rep_id)
    }

    pub(crate) fn territory(&self, id: i64) -> AppResult<()> {
        Self::check(&self.territories, id, "territoryId")
    }

    pub(crate) fn account_ref(&self, id: i64) -> AppResult<()> {
        self.account(id).map(|_| ())
    }

    /// Whether the principal may change an existing deal.
    pub fn may_change(&self, d: &deal::Model) -> bool {
        self.all_in_scope || self.in_scope.contains(&d.owner_id)
    }

    fn account(&self, id: i64) -> AppResult<&account::Model> {
        self.accounts
            .get(&id)
            .ok_or_else(|| AppError::bad_input(format!("accountId: no record with id {id}")))
    }

    fn check(set: &HashSet<i64>, id: i64, field: &str) -> AppResult<()> {
        if set.contains(&id) {
            Ok(())
        } else {
            Err(AppError::bad_input(format!(
                "{field}: no record with id {id}"
            )))
        }
    }

    pub fn stage(&self, id: i64) -> AppResult<&stage::Model> {
        self.stages
            .iter()
            .find(|s| s.id == id)
            .ok_or_else(|| AppError::bad_input(format!("stageId: no record with id {id}")))
    }
}

/// Validates a new deal. Its first stage change is stamped openedAt. A deal
/// created in a stage after the first open one, with the time it entered
/// that stage (closedAt for a WON or LOST stage, default now; stageChangedAt
/// for an open one), gets two changes: into the first open stage at openedAt,
/// then to its stage at that time, so as-of reconstruction sees it open (and
/// in its earlier stage) until then.
pub fn plan_create(
    refs: &Refs,
    rules: &DealRules,
    input: &NewDeal,
    now: DateTime<Utc>,
) -> AppResult<PlannedCreate> {
    let name = required_text(&input.name, "name", 300)?;
    let cents = to_cents(input.amount, "amount")?;
    let currency = check_currency(input.currency.as_deref(), rules)?;
    let external_id = optional_text(input.external_id.as_deref(), "externalId", 200)?;
    let lost_reason = optional_text(input.lost_reason.as_deref(), "lostReason", 2_000)?;
    let opened_at = clock::truncate_micros(input.opened_at.unwrap_or(now));
    not_in_future(opened_at, "openedAt", now)?;

    let owner = refs.owner(input.owner_id)?;
    let account = input.account_id.map(|id| refs.account(id)).transpose()?;
    if let Some(id) = input.territory_id {
        Refs::check(&refs.territories, id, "territoryId")?;
    }
    if let Some(id) = input.playbook_id {
        Refs::check(&refs.playbooks, id, "playbookId")?;
    }
    let first_open = super::stage::first_open(&refs.stages)?;
    let stage = match input.stage_id {
        Some(id) => refs.stage(id)?,
        None => first_open,
    };
    let changed_at = input.stage_changed_at.map(clock::truncate_micros);
    let entered_at = match stage.kind {
        StageKind::Open => {
            if input.closed_at.is_some() {
                return Err(AppError::bad_input(
                    "closedAt is only for deals in a WON or LOST stage",
                ));
            }
            changed_at
        }
        _ => {
            let closed = input.closed_at.map(clock::truncate_micros);
            if let (Some(a), Some(b)) = (closed, changed_at) {
                if a != b {
                    return Err(AppError::bad_input(
                        "closedAt and stageChangedAt disagree: a closing move closes the deal when it happens",
                    ));
                }
            }
            Some(closed.or(changed_at).unwrap_or(now))
        }
    };
    if let Some(at) = entered_at {
        not_in_future(at, "stageChangedAt", now)?;
        if at < opened_at {
            return Err(AppError::bad_input(
                "the deal cannot enter its stage (closedAt, stageChangedAt) before openedAt",
            ));
        }
    }
    if lost_reason.is_some() && stage.kind != StageKind::Lost {
        return Err(AppError::bad_input(
            "lostReason is only for deals in a LOST stage",
        ));
    }
    let territory_id = input
        .territory_id
        .or_else(|| account.and_then(|a| a.territory_id))
        .or(owner.territory_id);
    let row = deal::Model {
        id: 0,
        external_id,
        name,
        amount_cents: cents,
        currency,
        owner_id: owner.id,
        account_id: input.account_id,
        territory_id,
        stage_id: stage.id,
        status: stage.kind.into(),
        forecast_category: category_in(
            stage.kind,
            input
                .forecast_category
                .unwrap_or(ForecastCategory::Pipeline),
        ),
        source: input.source,
        playbook_id: input.playbook_id,
        opened_at,
        expected_close_date: input.expected_close_date,
        closed_at: (stage.kind != StageKind::Open)
            .then_some(entered_at)
            .flatten(),
        lost_reason,
        version: 1,
        valid_from: opened_at,
        push_count: 0,
        // Set by `deal_write::apply` from the write itself.
        first_amount_cents: None,
        pushed_at: None,
        stage_entered_at: None,
        last_activity_at: None,
        created_at: now,
        updated_at: now,
    };
    let history = match entered_at {
        Some(at) if stage.id != first_open.id => vec![
            HistoryRow {
                from: None,
                to: first_open.id,
                at: opened_at,
            },
            HistoryRow {
                from: Some(first_open.id),
                to: stage.id,
                at,
            },
        ],
        _ => vec![HistoryRow {
            from: None,
            to: stage.id,
            at: opened_at,
        }],
    };
    // One revision per state the deal has had: as opened, then (when it
    // entered a later stage after opening) as it is.
    let row = deal::Model {
        version: history.len() as i32,
        valid_from: history.last().map_or(opened_at, |h| h.at),
        ..row
    };
    Ok(PlannedCreate { row, history })
}

/// Creates a deal with its first stage changes (see [`plan_create`]).
pub async fn create(
    db: &DatabaseConnection,
    actor: &Principal,
    rules: &DealRules,
    input: NewDeal,
) -> AppResult<deal::Model> {
    actor.require(DEAL_WRITERS)?;
    let tx = begin_write(db).await?;
    let model = create_in(&tx, actor, rules, input).await?;
    tx.commit().await?;
    Ok(model)
}

/// `create` inside a caller's transaction.
pub async fn create_in(
    tx: &DatabaseTransaction,
    actor: &Principal,
    rules: &DealRules,
    input: NewDeal,
) -> AppResult<deal::Model> {
    let mut ids = RefIds::default();
    ids.add_new(&input);
    let refs = Refs::load(tx, actor, &ids).await?;
    let planned = plan_create(&refs, rules, &input, clock::now())?;
    let mut saved = write::apply(tx, actor, vec![DealWrite::create(planned, "createDeal")])
        .await
        .map_err(AppError::from)?;
    saved
        .pop()
        .ok_or_else(|| AppError::internal("the deal was not written"))
}

pub(crate) fn check_version(current: &deal::Model, expected: Option<i32>) -> AppResult<()> {
    match expected {
        Some(v) if v != current.version => Err(AppError::conflict(format!(
            "the deal is at version {}, not {v}: reload it and retry",
            current.version
        ))),
        _ => Ok(()),
    }
}

/// Attempts of a write without expectedVersion that keeps racing others.
const WRITE_ATTEMPTS: usize = 8;

/// Runs a single-deal write. One without `expected_version` that lost a
/// race (another writer bumped the version between its read and its
/// update) reads the deal again and re-applies: the caller did not ask to
/// fail on a concurrent change. With `expected_version` the race is the
/// caller's CONFLICT.
async fn retrying<F, Fut>(expected_version: Option<i32>, mut once: F) -> AppResult<deal::Model>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<deal::Model, write::WriteError>>,
{
    let attempts = if expected_version.is_some() {
        1
    } else {
        WRITE_ATTEMPTS
    };
    let mut lost = None;
    for _ in 0..attempts {
        match once().await {
            Ok(d) => return Ok(d),
            Err(write::WriteError::Raced(e)) => lost = Some(e),
            Err(write::WriteError::Failed(e)) => return Err(e),
        }
    }
    Err(lost.unwrap_or_else(|| AppError::conflict("the deal kept changing: retry")))
}

pub async fn update(
    db: &DatabaseConnection,
    actor: &Principal,
    id: i64,
    patch: DealChanges,
    expected_version: Option<i32>,
) -> AppResult<deal::Model> {
    actor.require(DEAL_WRITERS)?;
    check_backfill(actor, patch.effective_at)?;
    retrying(expected_version, || {
        update_once(db, actor, id, &patch, expected_version)
    })
    .await
}

async fn update_once(
    db: &DatabaseConnection,
    actor: &Principal,
    id: i64,
    patch: &DealChanges,
    expected_version: Option<i32>,
) -> Result<deal::Model, write::WriteError> {
    let tx = begin_write(db).await?;
    let current = get_for_write(&tx, actor.scope(), id).await?;
    check_version(&current, expected_version)?;
    let mut ids = RefIds::default();
    ids.add_changes(patch);
    let refs = Refs::load(&tx, actor, &ids).await?;
    let valid_from = revision_time(&current, patch.effective_at, clock::now())?;
    let (mut next, changes) = plan_update(&refs, &current, patch)?;
    if changes.is_empty() {
        return Ok(current);
    }
    next.valid_from = valid_from;
    let write = DealWrite::update(current, next, changes, None, "updateDeal");
    let saved = write::apply(&tx, actor, vec![write]).await?;
    tx.commit().await?;
    Ok(saved
        .into_iter()
        .next()
        .ok_or_else(|| AppError::internal("the deal was not written"))?)
}

/// Validates a patch against the current deal and returns its next state
/// with the audit changes; empty changes mean nothing differs.
pub fn plan_update(
    refs: &Refs,
    current: &deal::Model,
    patch: &DealChanges,
) -> AppResult<(deal::Model, Changes)> {
    let name = match &patch.name {
        Some(n) => required_text(n, "name", 300)?,
        None => current.name.clone(),
    };
    let amount = match patch.amount {
        Some(a) => to_cents(a, "amount")?,
        None => current.amount_cents,
    };
    let owner_id = patch.owner_id.unwrap_or(current.owner_id);
    if owner_id != current.owner_id {
        refs.owner(owner_id)?;
    }
    if let Some(id) = patch.account_id.as_set() {
        refs.account(*id)?;
    }
    if let Some(id) = patch.territory_id.as_set() {
        Refs::check(&refs.territories, *id, "territoryId")?;
    }
    if let Some(id) = patch.playbook_id.as_set() {
        Refs::check(&refs.playbooks, *id, "playbookId")?;
    }
    let next = deal::Model {
        name,
        amount_cents: amount,
        owner_id,
        account_id: patch.account_id.clone().apply(current.account_id),
        territory_id: patch.territory_id.clone().apply(current.territory_id),
        playbook_id: patch.playbook_id.clone().apply(current.playbook_id),
        source: patch.source.clone().apply(current.source),
        expected_close_date: patch
            .expected_close_date
            .clone()
            .apply(current.expected_close_date),
        forecast_category: patch.forecast_category.unwrap_or(current.forecast_category),
        ..current.clone()
    };
    let mut c = Changes::new();
    c.field("name", &current.name, &next.name)
        .field(
            "amount",
            &from_cents(current.amount_cents),
            &from_cents(next.amount_cents),
        )
        .field("ownerId", &current.owner_id, &next.owner_id)
        .field("accountId", &current.account_id, &next.account_id)
        .field("territoryId", &current.territory_id, &next.territory_id)
        .field(
            "forecastCategory",
            &current.forecast_category,
            &next.forecast_category,
        )
        .field("source", &current.source, &next.source)
        .field("playbookId", &current.playbook_id, &next.playbook_id)
        .field(
            "expectedCloseDate",
            &current.expected_close_date,
            &next.expected_close_date,
        );
    Ok((next, c))
}

/// Moves a deal to a stage and records the change. A WON or LOST stage
/// closes the deal at `at`; an open stage reopens a closed one.
pub async fn move_stage(
    db: &DatabaseConnection,
    actor: &Principal,
    id: i64,
    mv: StageMove,
    expected_version: Option<i32>,
) -> AppResult<deal::Model> {
    actor.require(DEAL_WRITERS)?;
    retrying(expected_version, || async {
        let tx = begin_write(db).await?;
        let current = get_for_write(&tx, actor.scope(), id).await?;
        check_version(&current, expected_version)?;
        let result = move_stage_in(&tx, actor, &current, mv.clone()).await?;
        tx.commit().await?;
        Ok(result.unwrap_or(current))
    })
    .await
}

/// `move_stage` inside a caller's transaction; None when the deal is
/// already in that stage.
pub async fn move_stage_in(
    tx: &DatabaseTransaction,
    actor: &Principal,
    current: &deal::Model,
    mv: StageMove,
) -> Result<Option<deal::Model>, write::WriteError> {
    let refs = Refs::load(tx, actor, &RefIds::default()).await?;
    let Some(planned) = plan_move(&refs, current, &mv, clock::now())? else {
        return Ok(None);
    };
    let write = DealWrite::update(
        current.clone(),
        planned.next,
        planned.changes,
        Some(planned.history),
        "moveDealStage",
    );
    let saved = write::apply(tx, actor, vec![write]).await?;
    Ok(saved.into_iter().next())
}

/// A validated stage move.
#[derive(Debug, Clone)]
pub struct PlannedMove {
    pub next: deal::Model,
    pub changes: Changes,
    pub history: HistoryRow,
}

/// Validates a move of `current` (a deal's state, possibly with other
/// changes already planned) to a stage; None when it is already there.
/// `at` defaults to now and must not be before the deal's latest revision
/// nor its openedAt; it becomes the revision's valid_from.
pub fn plan_move(
    refs: &Refs,
    current: &deal::Model,
    mv: &StageMove,
    now: DateTime<Utc>,
) -> AppResult<Option<PlannedMove>> {
    let target = refs.stage(mv.stage_id)?;
    let lost_reason = optional_text(mv.lost_reason.as_deref(), "lostReason", 2_000)?;
    if lost_reason.is_some() && target.kind != StageKind::Lost {
        return Err(AppError::bad_input(
            "lostReason is only for a move to a LOST stage",
        ));
    }
    if target.id == current.stage_id {
        return Ok(None);
    }
    let earliest = current.valid_from.max(current.opened_at);
    let at = match mv.at {
        Some(at) => clock::truncate_micros(at),
        None => now.max(earliest),
    };
    not_in_future(at, "at", now)?;
    if at < earliest {
        return Err(AppError::bad_input(format!(
            "at must not be before the deal's latest revision ({})",
            earliest.to_rfc3339()
        )));
    }
    let status: DealStatus = target.kind.into();
    let closed_at = (target.kind != StageKind::Open).then_some(at);
    let lost_reason = if target.kind == StageKind::Lost {
        lost_reason
    } else {
        None
    };
    // The category follows the stage: closing sets CLOSED or OMITTED, and
    // reopening PIPELINE unless one is given.
    let reopened = current.status != DealStatus::Open && target.kind == StageKind::Open;
    let forecast_category = match mv.forecast_category {
        Some(given) => category_in(target.kind, given),
        None if reopened => ForecastCategory::Pipeline,
        None => category_in(target.kind, current.forecast_category),
    };
    let mut c = Changes::new();
    c.field("stageId", &current.stage_id, &target.id)
        .field("status", &current.status, &status)
        .field("closedAt", &current.closed_at, &closed_at)
        .field("lostReason", &current.lost_reason, &lost_reason)
        .field(
            "forecastCategory",
            &current.forecast_category,
            &forecast_category,
        );
    let next = deal::Model {
        stage_id: target.id,
        status,
        closed_at,
        lost_reason,
        forecast_category,
        valid_from: at,
        ..current.clone()
    };
    Ok(Some(PlannedMove {
        history: HistoryRow {
            from: Some(current.stage_id),
            to: target.id,
            at,
        },
        next,
        changes: c,
    }))
}

/// A deal's stage history, oldest first.
pub async fn history(
    db: &impl ConnectionTrait,
    deal_ids: &[i64],
) -> AppResult<Vec<deal_stage_change::Model>> {
    Ok(deal_stage_change::Entity::find()
        .filter(deal_stage_change::Column::DealId.is_in(deal_ids.iter().copied()))
        .order_by_asc(deal_stage_change::Column::ChangedAt)
        .order_by_asc(deal_stage_change::Column::Id)
        .all(db)
        .await?)
}
