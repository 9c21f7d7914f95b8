//! Deals: reads within the caller's scope, and the writes that keep the
//! stage history, version and audit trail consistent in one transaction.
use chrono::{DateTime, Duration, NaiveDate, Utc};
use rust_decimal::Decimal;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Set,
};

use entity::enums::{DealSource, DealStatus, ForecastCategory, StageKind};
use entity::{account, deal, deal_stage_change, playbook, rep, stage, territory};

use super::access::{DealScope, DEAL_WRITERS};
use super::audit::{self, Changes};
use super::deal_filter::DealFilter;
use super::pagination::{Cursor, DealOrder};
use super::{optional_text, referenced, required_text, Patch};
use crate::auth::Principal;
use crate::clock;
use crate::db::{begin_write, Sql};
use crate::domain::money::{from_cents, to_cents};
use crate::error::{AppError, AppResult};

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
}

#[derive(Debug, Clone)]
pub struct StageMove {
    pub stage_id: i64,
    pub at: Option<DateTime<Utc>>,
    pub lost_reason: Option<String>,
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
pub async fn page(
    db: &impl ConnectionTrait,
    scope: DealScope,
    filter: &DealFilter,
    order: DealOrder,
    first: u64,
    after: Option<&Cursor>,
) -> AppResult<(Vec<deal::Model>, bool)> {
    let mut sql = Sql::new("SELECT deal.* FROM deal WHERE 1 = 1");
    filter.push_sql(&mut sql, scope);
    if let Some(c) = after {
        sql.push(" AND ").append(&c.condition()?);
    }
    sql.push(" ORDER BY ")
        .push(order.order_by())
        .push(" LIMIT ")
        .bind(first as i64 + 1);
    let mut rows = deal::Entity::find()
        .from_raw_sql(sql.statement(db.get_database_backend()))
        .all(db)
        .await?;
    let more = rows.len() as u64 > first;
    rows.truncate(first as usize);
    Ok((rows, more))
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
    filter.push_sql(&mut sql, scope);
    let row = CountRow::find_by_statement(sql.statement(db.get_database_backend()))
        .one(db)
        .await?;
    Ok(row.map(|r| r.n).unwrap_or(0))
}

fn check_currency(given: Option<&str>, rules: &DealRules) -> AppResult<String> {
    match given.map(|c| c.trim().to_uppercase()) {
        None => Ok(rules.currency.clone()),
        Some(c) if c == rules.currency => Ok(c),
        Some(c) => Err(AppError::bad_input(format!(
            "currency {c} is not the organisation's currency {}",
            rules.currency
        ))),
    }
}

fn not_in_future(t: DateTime<Utc>, field: &str) -> AppResult<()> {
    if t > clock::now() + CLOCK_SKEW {
        Err(AppError::bad_input(format!(
            "{field} must not be in the future"
        )))
    } else {
        Ok(())
    }
}

/// Checks that the principal may own-assign a deal to `owner_id`: a REP only
/// to itself, a MANAGER only within its team.
async fn check_owner_scope(
    db: &impl ConnectionTrait,
    actor: &Principal,
    owner_id: i64,
) -> AppResult<()> {
    if super::rep::in_scope(db, actor.scope(), owner_id).await? {
        Ok(())
    } else {
        Err(AppError::forbidden(
            "deals can only be assigned to reps in your scope",
        ))
    }
}

fn default_category(kind: StageKind) -> ForecastCategory {
    match kind {
        StageKind::Open => ForecastCategory::Pipeline,
        StageKind::Won => ForecastCategory::Closed,
        StageKind::Lost => ForecastCategory::Omitted,
    }
}

fn insert_change(
    deal_id: i64,
    from: Option<i64>,
    to: i64,
    at: DateTime<Utc>,
    actor: &str,
) -> deal_stage_change::ActiveModel {
    deal_stage_change::ActiveModel {
        deal_id: Set(deal_id),
        from_stage_id: Set(from),
        to_stage_id: Set(to),
        changed_at: Set(at),
        actor: Set(Some(actor.to_owned())),
        ..Default::default()
    }
}

/// Creates a deal with its first stage change (stamped openedAt). A deal
/// created straight into a WON or LOST stage (a backfill) gets two changes:
/// into the first open stage at openedAt, and to the closing stage at
/// closedAt, so as-of reconstruction sees it open until it closed.
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
    let name = required_text(&input.name, "name", 300)?;
    let cents = to_cents(input.amount, "amount")?;
    let currency = check_currency(input.currency.as_deref(), rules)?;
    let external_id = optional_text(input.external_id.as_deref(), "externalId", 200)?;
    let lost_reason = optional_text(input.lost_reason.as_deref(), "lostReason", 2_000)?;
    let now = clock::now();
    let opened_at = clock::truncate_micros(input.opened_at.unwrap_or(now));
    not_in_future(opened_at, "openedAt")?;

    check_owner_scope(tx, actor, input.owner_id).await?;
    let owner = referenced::<rep::Entity>(tx, input.owner_id, "ownerId").await?;
    let account = match input.account_id {
        Some(id) => Some(referenced::<account::Entity>(tx, id, "accountId").await?),
        None => None,
    };
    if let Some(id) = input.territory_id {
        referenced::<territory::Entity>(tx, id, "territoryId").await?;
    }
    if let Some(id) = input.playbook_id {
        referenced::<playbook::Entity>(tx, id, "playbookId").await?;
    }
    let stages = super::stage::list(tx).await?;
    let first_open = super::stage::first_open(&stages)?.clone();
    let stage = match input.stage_id {
        Some(id) => stages
            .iter()
            .find(|s| s.id == id)
            .cloned()
            .ok_or_else(|| AppError::bad_input(format!("stageId: no record with id {id}")))?,
        None => first_open.clone(),
    };
    let closed_at = match stage.kind {
        StageKind::Open => {
            if input.closed_at.is_some() {
                return Err(AppError::bad_input(
                    "closedAt is only for deals created in a WON or LOST stage",
                ));
            }
            None
        }
        _ => {
            let at = clock::truncate_micros(input.closed_at.unwrap_or(now));
            not_in_future(at, "closedAt")?;
            if at < opened_at {
                return Err(AppError::bad_input("closedAt must not be before openedAt"));
            }
            Some(at)
        }
    };
    if lost_reason.is_some() && stage.kind != StageKind::Lost {
        return Err(AppError::bad_input(
            "lostReason is only for deals in a LOST stage",
        ));
    }
    let territory_id = input
        .territory_id
        .or_else(|| account.as_ref().and_then(|a| a.territory_id))
        .or(owner.territory_id);
    let model = deal::ActiveModel {
        external_id: Set(external_id),
        name: Set(name),
        amount_cents: Set(cents),
        currency: Set(currency),
        owner_id: Set(owner.id),
        account_id: Set(input.account_id),
        territory_id: Set(territory_id),
        stage_id: Set(stage.id),
        status: Set(stage.kind.into()),
        forecast_category: Set(input
            .forecast_category
            .unwrap_or_else(|| default_category(stage.kind))),
        source: Set(input.source),
        playbook_id: Set(input.playbook_id),
        opened_at: Set(opened_at),
        expected_close_date: Set(input.expected_close_date),
        closed_at: Set(closed_at),
        lost_reason: Set(lost_reason),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(tx)
    .await?;
    let history = match closed_at {
        Some(closed) if stage.id != first_open.id => vec![
            insert_change(model.id, None, first_open.id, opened_at, &actor.subject),
            insert_change(
                model.id,
                Some(first_open.id),
                stage.id,
                closed,
                &actor.subject,
            ),
        ],
        _ => vec![insert_change(
            model.id,
            None,
            stage.id,
            opened_at,
            &actor.subject,
        )],
    };
    deal_stage_change::Entity::insert_many(history)
        .exec(tx)
        .await?;
    audit::record(
        tx,
        &actor.subject,
        "createDeal",
        "Deal",
        model.id,
        &created_changes(&model),
    )
    .await?;
    Ok(model)
}

/// Every field of a new deal as audit changes.
pub fn created_changes(d: &deal::Model) -> Changes {
    let mut c = Changes::new();
    c.created("externalId", &d.external_id)
        .created("name", &d.name)
        .created("amount", &from_cents(d.amount_cents))
        .created("currency", &d.currency)
        .created("ownerId", &d.owner_id)
        .created("accountId", &d.account_id)
        .created("territoryId", &d.territory_id)
        .created("stageId", &d.stage_id)
        .created("status", &d.status)
        .created("forecastCategory", &d.forecast_category)
        .created("source", &d.source)
        .created("playbookId", &d.playbook_id)
        .created("openedAt", &d.opened_at)
        .created("expectedCloseDate", &d.expected_close_date)
        .created("closedAt", &d.closed_at)
        .created("lostReason", &d.lost_reason);
    c
}

fn check_version(current: &deal::Model, expected: Option<i32>) -> AppResult<()> {
    match expected {
        Some(v) if v != current.version => Err(AppError::conflict(format!(
            "the deal is at version {}, not {v}: reload it and retry",
            current.version
        ))),
        _ => Ok(()),
    }
}

/// Writes the new state if the row is still at the version that was read:
/// the check and the write are one statement, so concurrent writers cannot
/// both win.
async fn save_versioned(
    tx: &DatabaseTransaction,
    read: &deal::Model,
    mut next: deal::ActiveModel,
) -> AppResult<deal::Model> {
    let now = clock::now();
    next.version = Set(read.version + 1);
    next.updated_at = Set(now.max(read.updated_at + Duration::microseconds(1)));
    let result = deal::Entity::update_many()
        .set(next)
        .filter(deal::Column::Id.eq(read.id))
        .filter(deal::Column::Version.eq(read.version))
        .exec(tx)
        .await?;
    if result.rows_affected == 0 {
        return Err(AppError::conflict(
            "the deal changed while this write was applied: reload it and retry",
        ));
    }
    deal::Entity::find_by_id(read.id)
        .one(tx)
        .await?
        .ok_or_else(|| AppError::not_found("deal"))
}

pub async fn update(
    db: &DatabaseConnection,
    actor: &Principal,
    id: i64,
    patch: DealChanges,
    expected_version: Option<i32>,
) -> AppResult<deal::Model> {
    actor.require(DEAL_WRITERS)?;
    let tx = begin_write(db).await?;
    let current = get(&tx, actor.scope(), id).await?;
    check_version(&current, expected_version)?;
    let (model, changes) = apply_changes(&tx, actor, &current, patch).await?;
    if changes.is_empty() {
        return Ok(current);
    }
    let saved = save_versioned(&tx, &current, model).await?;
    audit::record(&tx, &actor.subject, "updateDeal", "Deal", id, &changes).await?;
    tx.commit().await?;
    Ok(saved)
}

/// Validates a patch against the current deal and returns the fields to
/// write with the audit changes; empty changes mean nothing differs.
pub async fn apply_changes(
    tx: &DatabaseTransaction,
    actor: &Principal,
    current: &deal::Model,
    patch: DealChanges,
) -> AppResult<(deal::ActiveModel, Changes)> {
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
        check_owner_scope(tx, actor, owner_id).await?;
        referenced::<rep::Entity>(tx, owner_id, "ownerId").await?;
    }
    if let Some(id) = patch.account_id.as_set() {
        referenced::<account::Entity>(tx, *id, "accountId").await?;
    }
    if let Some(id) = patch.territory_id.as_set() {
        referenced::<territory::Entity>(tx, *id, "territoryId").await?;
    }
    if let Some(id) = patch.playbook_id.as_set() {
        referenced::<playbook::Entity>(tx, *id, "playbookId").await?;
    }
    let account_id = patch.account_id.apply(current.account_id);
    let territory_id = patch.territory_id.apply(current.territory_id);
    let playbook_id = patch.playbook_id.apply(current.playbook_id);
    let source = patch.source.apply(current.source);
    let expected_close_date = patch.expected_close_date.apply(current.expected_close_date);
    let forecast_category = patch.forecast_category.unwrap_or(current.forecast_category);

    let mut c = Changes::new();
    c.field("name", &current.name, &name)
        .field(
            "amount",
            &from_cents(current.amount_cents),
            &from_cents(amount),
        )
        .field("ownerId", &current.owner_id, &owner_id)
        .field("accountId", &current.account_id, &account_id)
        .field("territoryId", &current.territory_id, &territory_id)
        .field(
            "forecastCategory",
            &current.forecast_category,
            &forecast_category,
        )
        .field("source", &current.source, &source)
        .field("playbookId", &current.playbook_id, &playbook_id)
        .field(
            "expectedCloseDate",
            &current.expected_close_date,
            &expected_close_date,
        );
    let am = deal::ActiveModel {
        name: Set(name),
        amount_cents: Set(amount),
        owner_id: Set(owner_id),
        account_id: Set(account_id),
        territory_id: Set(territory_id),
        forecast_category: Set(forecast_category),
        source: Set(source),
        playbook_id: Set(playbook_id),
        expected_close_date: Set(expected_close_date),
        ..Default::default()
    };
    Ok((am, c))
}

#[derive(FromQueryResult)]
struct LastChange {
    changed_at: DateTime<Utc>,
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
    let tx = begin_write(db).await?;
    let current = get(&tx, actor.scope(), id).await?;
    check_version(&current, expected_version)?;
    let result = move_stage_in(&tx, actor, &current, mv).await?;
    tx.commit().await?;
    Ok(result.unwrap_or(current))
}

/// `move_stage` inside a caller's transaction; None when the deal is
/// already in that stage.
pub async fn move_stage_in(
    tx: &DatabaseTransaction,
    actor: &Principal,
    current: &deal::Model,
    mv: StageMove,
) -> AppResult<Option<deal::Model>> {
    let target = stage::Entity::find_by_id(mv.stage_id)
        .one(tx)
        .await?
        .ok_or_else(|| {
            AppError::bad_input(format!("stageId: no record with id {}", mv.stage_id))
        })?;
    let lost_reason = optional_text(mv.lost_reason.as_deref(), "lostReason", 2_000)?;
    if lost_reason.is_some() && target.kind != StageKind::Lost {
        return Err(AppError::bad_input(
            "lostReason is only for a move to a LOST stage",
        ));
    }
    if target.id == current.stage_id {
        return Ok(None);
    }
    let at = clock::truncate_micros(mv.at.unwrap_or_else(clock::now));
    not_in_future(at, "at")?;
    let last = deal_stage_change::Entity::find()
        .select_only()
        .column(deal_stage_change::Column::ChangedAt)
        .filter(deal_stage_change::Column::DealId.eq(current.id))
        .order_by_desc(deal_stage_change::Column::ChangedAt)
        .into_model::<LastChange>()
        .one(tx)
        .await?;
    let earliest = last
        .map(|l| l.changed_at)
        .unwrap_or(current.opened_at)
        .max(current.opened_at);
    if at < earliest {
        return Err(AppError::bad_input(format!(
            "at must not be before the deal's last stage change ({})",
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
    let mut c = Changes::new();
    c.field("stageId", &current.stage_id, &target.id)
        .field("status", &current.status, &status)
        .field("closedAt", &current.closed_at, &closed_at)
        .field("lostReason", &current.lost_reason, &lost_reason);
    let am = deal::ActiveModel {
        stage_id: Set(target.id),
        status: Set(status),
        closed_at: Set(closed_at),
        lost_reason: Set(lost_reason),
        ..Default::default()
    };
    let saved = save_versioned(tx, current, am).await?;
    insert_change(
        current.id,
        Some(current.stage_id),
        target.id,
        at,
        &actor.subject,
    )
    .insert(tx)
    .await?;
    audit::record(tx, &actor.subject, "moveDealStage", "Deal", current.id, &c).await?;
    Ok(Some(saved))
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
