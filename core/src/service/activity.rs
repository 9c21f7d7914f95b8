//! Activities (docs/design.md, Leads and activities): calls, emails,
//! meetings and tasks by a rep, on a lead, a deal or an account. Scoped by
//! the rep who did them (REP: own; MANAGER: team). Written like leads (one
//! writer for single, upsert and bulk writes, a fixed number of statements
//! per call), and each write keeps the leads it touches right: a lead's
//! first response is its earliest activity (unless given explicitly), and
//! a NEW lead becomes WORKING at its first activity.
use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveEnum, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    FromQueryResult, QueryFilter,
};
use serde_json::{json, Value};

use entity::enums::{ActivityKind, LeadStatus};
use entity::{activity, audit_entry, lead};

use super::access::DealScope;
use super::audit::Changes;
use super::deal::{RefIds, Refs};
use super::lead::{self as leads, LeadWrite, LEAD_WRITERS};
use super::outbox::{self, Event, EventKind};
use super::pagination::decode_time_cursor;
use super::upsert::{external_key, plan_bulk, split_bulk, BulkSummary, Outcome, MAX_BULK};
use super::{optional_text, sync, versioned_rows, Patch};
use crate::auth::Principal;
use crate::clock;
use crate::db::{begin_write, insert_models, Dialect, Sql};
use crate::error::{AppError, AppResult};

pub const LIST: &str = "activities";
/// The longest activity, in minutes (a week).
pub const MAX_DURATION_MINUTES: i32 = 7 * 24 * 60;
const CLOCK_SKEW: Duration = Duration::minutes(5);

#[derive(Debug, Clone)]
pub struct NewActivity {
    pub external_id: Option<String>,
    pub kind: ActivityKind,
    /// Default: the caller's own rep (REP, MANAGER).
    pub rep_id: Option<i64>,
    /// Default: now.
    pub at: Option<DateTime<Utc>>,
    pub lead_id: Option<i64>,
    pub deal_id: Option<i64>,
    pub account_id: Option<i64>,
    pub subject: Option<String>,
    pub outcome: Option<String>,
    pub duration_minutes: Option<i32>,
}

#[derive(Debug, Clone, Default)]
pub struct ActivityChanges {
    pub kind: Option<ActivityKind>,
    pub at: Option<DateTime<Utc>>,
    pub lead_id: Patch<i64>,
    pub deal_id: Patch<i64>,
    pub account_id: Patch<i64>,
    pub subject: Patch<String>,
    pub outcome: Patch<String>,
    pub duration_minutes: Patch<i32>,
}

impl NewActivity {
    fn as_changes(&self) -> ActivityChanges {
        let set = |v: Option<i64>| v.map(Patch::Set).unwrap_or_default();
        let text = |v: &Option<String>| v.clone().map(Patch::Set).unwrap_or_default();
        ActivityChanges {
            kind: Some(self.kind),
            at: self.at,
            lead_id: set(self.lead_id),
            deal_id: set(self.deal_id),
            account_id: set(self.account_id),
            subject: text(&self.subject),
            outcome: text(&self.outcome),
            duration_minutes: self.duration_minutes.map(Patch::Set).unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ActivityFilter {
    pub ids: Option<Vec<i64>>,
    pub rep_ids: Option<Vec<i64>>,
    pub lead_ids: Option<Vec<i64>>,
    pub deal_ids: Option<Vec<i64>>,
    pub account_ids: Option<Vec<i64>>,
    pub kinds: Option<Vec<ActivityKind>>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub updated_since: Option<DateTime<Utc>>,
}

fn in_list<V: Into<sea_orm::Value>>(sql: &mut Sql, col: &str, values: Vec<V>) {
    if values.is_empty() {
        sql.push(" AND 1 = 0");
    } else {
        sql.push(&format!(" AND {col} IN ")).bind_list(values);
    }
}

impl ActivityFilter {
    pub fn push_sql(&self, sql: &mut Sql, scope: DealScope) {
        let (cond, values) = scope.rep_sql("activity.rep_id");
        sql.push(" AND ").push_with(&cond, values);
        if let Some(v) = &self.ids {
            in_list(sql, "activity.id", v.clone());
        }
        if let Some(v) = &self.rep_ids {
            in_list(sql, "activity.rep_id", v.clone());
        }
        if let Some(v) = &self.lead_ids {
            in_list(sql, "activity.lead_id", v.clone());
        }
        if let Some(v) = &self.deal_ids {
            in_list(sql, "activity.deal_id", v.clone());
        }
        if let Some(v) = &self.account_ids {
            in_list(sql, "activity.account_id", v.clone());
        }
        if let Some(v) = &self.kinds {
            in_list(
                sql,
                "activity.kind",
                v.iter().map(|k| k.to_value()).collect(),
            );
        }
        if let Some(t) = self.from {
            sql.push(" AND activity.at >= ").bind(t);
        }
        if let Some(t) = self.to {
            sql.push(" AND activity.at < ").bind(t);
        }
        if let Some(t) = self.updated_since {
            sql.push(" AND activity.updated_at > ").bind(t);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ActivityOrder {
    /// Latest first, by (at, id).
    #[default]
    LatestFirst,
    /// The sync feed: by (updated_at, id).
    UpdatedAsc,
}

pub async fn get(
    db: &impl ConnectionTrait,
    scope: DealScope,
    id: i64,
) -> AppResult<activity::Model> {
    let mut q = activity::Entity::find_by_id(id);
    if let Some(c) = scope.rep_condition("activity.rep_id", db.get_database_backend()) {
        q = q.filter(c);
    }
    q.one(db)
        .await?
        .ok_or_else(|| AppError::not_found("activity"))
}

pub async fn page(
    db: &impl ConnectionTrait,
    scope: DealScope,
    filter: &ActivityFilter,
    order: ActivityOrder,
    after: Option<&str>,
    limit: u64,
) -> AppResult<Vec<activity::Model>> {
    let mut sql = Sql::new("SELECT activity.* FROM activity WHERE 1 = 1");
    filter.push_sql(&mut sql, scope);
    match order {
        ActivityOrder::LatestFirst => {
            if let Some(c) = after {
                let (t, id) = decode_time_cursor(c, LIST)?;
                sql.push(" AND (activity.at < ")
                    .bind(t)
                    .push(" OR (activity.at = ")
                    .bind(t)
                    .push(" AND activity.id < ")
                    .bind(id)
                    .push("))");
            }
            sql.push(" ORDER BY activity.at DESC, activity.id DESC");
        }
        ActivityOrder::UpdatedAsc => {
            if let Some(c) = after {
                let (t, id) = decode_time_cursor(c, "activities-sync")?;
                sql.push(" AND (activity.updated_at > ")
                    .bind(t)
                    .push(" OR (activity.updated_at = ")
                    .bind(t)
                    .push(" AND activity.id > ")
                    .bind(id)
                    .push("))");
            }
            sql.push(" ORDER BY activity.updated_at, activity.id");
        }
    }
    sql.push_limit(limit);
    Ok(
        activity::Model::find_by_statement(sql.statement(db.get_database_backend()))
            .all(db)
            .await?,
    )
}

/// The cursor of an activity in a list of this order.
pub fn cursor(order: ActivityOrder, a: &activity::Model) -> String {
    match order {
        ActivityOrder::LatestFirst => super::pagination::encode_time_cursor(LIST, a.at, a.id),
        ActivityOrder::UpdatedAsc => {
            super::pagination::encode_time_cursor("activities-sync", a.updated_at, a.id)
        }
    }
}

#[derive(FromQueryResult)]
struct CountRow {
    n: i64,
}

pub async fn count(
    db: &impl ConnectionTrait,
    scope: DealScope,
    filter: &ActivityFilter,
) -> AppResult<i64> {
    let mut sql = Sql::new("SELECT COUNT(*) AS n FROM activity WHERE 1 = 1");
    filter.push_sql(&mut sql, scope);
    Ok(
        CountRow::find_by_statement(sql.statement(db.get_database_backend()))
            .one(db)
            .await?
            .map_or(0, |r| r.n),
    )
}

// ---------------------------------------------------------------- references

#[derive(FromQueryResult)]
struct IdRow {
    id: i64,
}

/// Everything a batch of activity writes refers to, loaded once.
struct ActivityRefs {
    refs: Refs,
    leads: HashMap<i64, lead::Model>,
    deals: HashSet<i64>,
}

impl ActivityRefs {
    async fn load(
        tx: &DatabaseTransaction,
        actor: &Principal,
        reps: BTreeSet<i64>,
        leads: BTreeSet<i64>,
        deals: BTreeSet<i64>,
        accounts: BTreeSet<i64>,
    ) -> AppResult<Self> {
        let ids = RefIds {
            reps,
            accounts,
            ..Default::default()
        };
        let refs = Refs::load(tx, actor, &ids).await?;
        let scope = actor.scope();
        let leads: HashMap<i64, lead::Model> =
            leads::by_ids(tx, scope, &leads.into_iter().collect::<Vec<_>>())
                .await?
                .into_iter()
                .map(|l| (l.id, l))
                .collect();
        let deals = if deals.is_empty() {
            HashSet::new()
        } else {
            let mut sql = Sql::new("SELECT deal.id AS id FROM deal WHERE deal.id IN ");
            sql.bind_list(deals.iter().copied());
            let (cond, values) = scope.rep_sql("deal.owner_id");
            sql.push(" AND ").push_with(&cond, values);
            IdRow::find_by_statement(sql.statement(tx.get_database_backend()))
                .all(tx)
                .await?
                .into_iter()
                .map(|r| r.id)
                .collect()
        };
        Ok(Self { refs, leads, deals })
    }
}

fn check_at(t: DateTime<Utc>, now: DateTime<Utc>) -> AppResult<DateTime<Utc>> {
    let t = clock::check_instant(clock::truncate_micros(t), "at")?;
    if t > now + CLOCK_SKEW {
        return Err(AppError::bad_input("at must not be in the future"));
    }
    Ok(t.min(now))
}

/// Validates the activity as it will be written.
fn check(refs: &ActivityRefs, a: &activity::Model) -> AppResult<()> {
    if let Some(l) = a.lead_id {
        // A lead outside the scope reads as missing: its existence is not leaked.
        let lead = refs
            .leads
            .get(&l)
            .ok_or_else(|| AppError::bad_input(format!("leadId: no record with id {l}")))?;
        if a.at < lead.created_at {
            return Err(AppError::bad_input(format!(
                "at must not be before the lead was created ({})",
                lead.created_at.to_rfc3339()
            )));
        }
    }
    if let Some(d) = a.deal_id {
        if !refs.deals.contains(&d) {
            return Err(AppError::bad_input(format!(
                "dealId: no record with id {d}"
            )));
        }
    }
    if let Some(acc) = a.account_id {
        refs.refs.account_ref(acc)?;
    }
    if let Some(m) = a.duration_minutes {
        if !(0..=MAX_DURATION_MINUTES).contains(&m) {
            return Err(AppError::bad_input(format!(
                "durationMinutes must be between 0 and {MAX_DURATION_MINUTES}"
            )));
        }
    }
    Ok(())
}

fn rep_of(actor: &Principal, given: Option<i64>) -> AppResult<i64> {
    given
        .or(actor.rep_id)
        .ok_or_else(|| AppError::bad_input("repId is required (the caller is not a rep)"))
}

fn plan_create(
    refs: &ActivityRefs,
    actor: &Principal,
    input: &NewActivity,
    now: DateTime<Utc>,
) -> AppResult<activity::Model> {
    let rep_id = rep_of(actor, input.rep_id)?;
    refs.refs.owner(rep_id).map_err(|e| match e {
        AppError::Forbidden(_) => {
            AppError::forbidden("activities can only be logged for reps in your scope")
        }
        AppError::BadInput(_) => AppError::bad_input(format!("repId: no record with id {rep_id}")),
        other => other,
    })?;
    let a = activity::Model {
        id: 0,
        external_id: optional_text(input.external_id.as_deref(), "externalId", 200)?,
        kind: input.kind,
        rep_id,
        at: input
            .at
            .map(|t| check_at(t, now))
            .transpose()?
            .unwrap_or(now),
        lead_id: input.lead_id,
        deal_id: input.deal_id,
        account_id: input.account_id,
        subject: optional_text(input.subject.as_deref(), "subject", 300)?,
        outcome: optional_text(input.outcome.as_deref(), "outcome", 200)?,
        duration_minutes: input.duration_minutes,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    check(refs, &a)?;
    Ok(a)
}

fn plan_update(
    refs: &ActivityRefs,
    current: &activity::Model,
    patch: ActivityChanges,
    now: DateTime<Utc>,
) -> AppResult<(activity::Model, Changes)> {
    let text = |p: Patch<String>,
                cur: &Option<String>,
                field: &str,
                max: usize|
     -> AppResult<Option<String>> {
        match p {
            Patch::Set(v) => optional_text(Some(&v), field, max),
            other => Ok(other.apply(cur.clone())),
        }
    };
    let next = activity::Model {
        kind: patch.kind.unwrap_or(current.kind),
        at: match patch.at {
            Some(t) => check_at(t, now)?,
            None => current.at,
        },
        lead_id: patch.lead_id.apply(current.lead_id),
        deal_id: patch.deal_id.apply(current.deal_id),
        account_id: patch.account_id.apply(current.account_id),
        subject: text(patch.subject, &current.subject, "subject", 300)?,
        outcome: text(patch.outcome, &current.outcome, "outcome", 200)?,
        duration_minutes: patch.duration_minutes.apply(current.duration_minutes),
        ..current.clone()
    };
    check(refs, &next)?;
    let mut changes = Changes::new();
    changes
        .field("kind", &current.kind, &next.kind)
        .field("at", &current.at, &next.at)
        .field("leadId", &current.lead_id, &next.lead_id)
        .field("dealId", &current.deal_id, &next.deal_id)
        .field("accountId", &current.account_id, &next.account_id)
        .field("subject", &current.subject, &next.subject)
        .field("outcome", &current.outcome, &next.outcome)
        .field(
            "durationMinutes",
            &current.duration_minutes,
            &next.duration_minutes,
        );
    Ok((next, changes))
}

fn created_changes(a: &activity::Model) -> Changes {
    let mut c = Changes::new();
    c.created("externalId", &a.external_id)
        .created("kind", &a.kind)
        .created("repId", &a.rep_id)
        .created("at", &a.at)
        .created("leadId", &a.lead_id)
        .created("dealId", &a.deal_id)
        .created("accountId", &a.account_id)
        .created("subject", &a.subject)
        .created("outcome", &a.outcome)
        .created("durationMinutes", &a.duration_minutes);
    c
}

/// An activity as webhook consumers see it.
pub fn activity_json(a: &activity::Model) -> Value {
    let id = |v: Option<i64>| v.map(|x| x.to_string());
    json!({
        "id": a.id.to_string(),
        "externalId": a.external_id,
        "kind": a.kind.to_value(),
        "repId": a.rep_id.to_string(),
        "at": a.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "leadId": id(a.lead_id),
        "dealId": id(a.deal_id),
        "accountId": id(a.account_id),
        "subject": a.subject,
        "outcome": a.outcome,
        "durationMinutes": a.duration_minutes,
        "version": a.version,
    })
}

// ---------------------------------------------------------------- the writer

#[allow(clippy::large_enum_variant)] // short-lived, one per input
enum ActivityWrite {
    Create {
        row: activity::Model,
        action: &'static str,
    },
    Update {
        read: activity::Model,
        next: activity::Model,
        changes: Changes,
        action: &'static str,
    },
}

#[derive(FromQueryResult)]
struct FirstRow {
    lead_id: i64,
    first_at: DateTime<Utc>,
}

/// Writes activities (and the leads they touch) in the caller's transaction.
async fn apply(
    tx: &DatabaseTransaction,
    actor: &Principal,
    refs: &ActivityRefs,
    writes: Vec<ActivityWrite>,
) -> AppResult<Vec<activity::Model>> {
    if writes.is_empty() {
        return Ok(Vec::new());
    }
    let stamp = sync::stamp(tx).await?;
    let mut touched: BTreeSet<i64> = BTreeSet::new();
    let deals: BTreeSet<i64> = writes
        .iter()
        .flat_map(|w| match w {
            ActivityWrite::Create { row, .. } => [row.deal_id, None],
            ActivityWrite::Update { read, next, .. } => [read.deal_id, next.deal_id],
        })
        .flatten()
        .collect();
    lock_deals(tx, &deals).await?;

    let creates: Vec<activity::Model> = writes
        .iter()
        .filter_map(|w| match w {
            ActivityWrite::Create { row, .. } => Some(activity::Model {
                created_at: stamp,
                updated_at: stamp,
                ..row.clone()
            }),
            _ => None,
        })
        .collect();
    let new_ids = versioned_rows::insert::<activity::Entity>(
        tx,
        activity::Column::Id,
        &creates,
        external_id_taken,
    )
    .await?;

    let updates: Vec<(i64, i32, activity::Model)> = writes
        .iter()
        .filter_map(|w| match w {
            ActivityWrite::Update { read, next, .. } => Some((
                read.id,
                read.version,
                activity::Model {
                    version: read.version + 1,
                    updated_at: stamp,
                    ..next.clone()
                },
            )),
            _ => None,
        })
        .collect();
    versioned_rows::update::<activity::Entity>(
        tx,
        (activity::Column::Id, activity::Column::Version),
        &[activity::Column::Id, activity::Column::CreatedAt],
        &updates,
        external_id_taken,
    )
    .await?;

    let subscribers = outbox::Subscribers::load(tx).await?;
    let mut new_ids = new_ids.into_iter();
    let mut saved = Vec::with_capacity(writes.len());
    let mut audit = Vec::new();
    let mut events = Vec::new();
    for w in writes {
        match w {
            ActivityWrite::Create { row, action } => {
                let id = new_ids
                    .next()
                    .ok_or_else(|| AppError::internal("a created activity is missing"))?;
                let a = activity::Model {
                    id,
                    created_at: stamp,
                    updated_at: stamp,
                    ..row
                };
                touched.extend(a.lead_id);
                audit.push((id, action, created_changes(&a)));
                if subscribers.wants(EventKind::ActivityLogged) {
                    events.push(Event::new(
                        EventKind::ActivityLogged,
                        "Activity",
                        id,
                        json!({ "activity": activity_json(&a) }),
                    ));
                }
                saved.push(a);
            }
            ActivityWrite::Update {
                read,
                next,
                changes,
                action,
            } => {
                touched.extend(read.lead_id);
                touched.extend(next.lead_id);
                let a = activity::Model {
                    version: read.version + 1,
                    updated_at: stamp,
                    ..next
                };
                audit.push((a.id, action, changes));
                saved.push(a);
            }
        }
    }
    let rows: Vec<audit_entry::Model> = audit
        .into_iter()
        .map(|(id, action, changes)| audit_entry::Model {
            id: 0,
            at: stamp,
            actor: actor.subject.clone(),
            action: action.to_owned(),
            entity_type: "Activity".to_owned(),
            entity_id: id.to_string(),
            changes: changes.to_json(),
        })
        .collect();
    insert_models::<audit_entry::Entity>(tx, &[audit_entry::Column::Id], &rows).await?;
    outbox::enqueue_to(tx, &subscribers, events).await?;
    respond_to_leads(tx, actor, refs, &touched).await?;
    mark_latest_activity(tx, &deals).await?;
    Ok(saved)
}

/// Locks the deals whose latest activity this write moves, before the
/// activities are written (PostgreSQL; SQLite runs one writer at a time):
/// a concurrent activity write on the same deal waits, and its own count
/// (a fresh snapshot under READ COMMITTED) then sees this one's activities.
async fn lock_deals(tx: &DatabaseTransaction, deals: &BTreeSet<i64>) -> AppResult<()> {
    if deals.is_empty() || Dialect::of(tx) != Dialect::Postgres {
        return Ok(());
    }
    let mut sql = Sql::new("SELECT id FROM deal WHERE id IN ");
    sql.bind_list(deals.iter().copied())
        .push(" ORDER BY id FOR UPDATE");
    tx.execute_raw(sql.statement(tx.get_database_backend()))
        .await?;
    Ok(())
}

/// `deal.last_activity_at` (a deal risk fact, docs/design.md) of the deals
/// an activity write touched, from their activities as now written: one
/// statement, however many activities moved.
async fn mark_latest_activity(tx: &DatabaseTransaction, deals: &BTreeSet<i64>) -> AppResult<()> {
    if deals.is_empty() {
        return Ok(());
    }
    let mut sql = Sql::new(
        "UPDATE deal SET last_activity_at = \
         (SELECT MAX(a.at) FROM activity a WHERE a.deal_id = deal.id) WHERE deal.id IN ",
    );
    sql.bind_list(deals.iter().copied());
    tx.execute_raw(sql.statement(tx.get_database_backend()))
        .await?;
    Ok(())
}

/// Leads touched by activities: the first response is the earliest
/// activity (unless given), and a NEW lead is WORKING from then on.
async fn respond_to_leads(
    tx: &DatabaseTransaction,
    actor: &Principal,
    refs: &ActivityRefs,
    touched: &BTreeSet<i64>,
) -> AppResult<()> {
    if touched.is_empty() {
        return Ok(());
    }
    let mut sql = Sql::new("SELECT lead_id, MIN(at) AS first_at FROM activity WHERE lead_id IN ");
    sql.bind_list(touched.iter().copied())
        .push(" GROUP BY lead_id");
    let firsts: HashMap<i64, DateTime<Utc>> =
        FirstRow::find_by_statement(sql.statement(tx.get_database_backend()))
            .all(tx)
            .await?
            .into_iter()
            .map(|r| (r.lead_id, r.first_at))
            .collect();
    let mut writes = Vec::new();
    for id in touched {
        let Some(read) = refs.leads.get(id) else {
            continue;
        };
        let first = firsts.get(id).copied();
        let mut next = read.clone();
        if !read.first_response_given {
            next.first_response_at = first;
        }
        if read.status == LeadStatus::New {
            if let Some(t) = next.first_response_at {
                next.status = LeadStatus::Working;
                next.worked_at = Some(t);
            }
        }
        let mut changes = Changes::new();
        changes
            .field(
                "firstResponseAt",
                &read.first_response_at,
                &next.first_response_at,
            )
            .field("status", &read.status, &next.status);
        if !changes.is_empty() {
            writes.push(LeadWrite::Update {
                read: read.clone(),
                next,
                changes,
                action: "logActivity",
                event: None,
            });
        }
    }
    leads::apply(tx, actor, writes).await?;
    Ok(())
}

fn external_id_taken(e: sea_orm::DbErr) -> AppError {
    let text = e.to_string();
    if text.contains("uq_activity_external_id") || text.contains("activity.external_id") {
        AppError::conflict("another activity has this externalId")
    } else {
        e.into()
    }
}

// ---------------------------------------------------------------- use cases

async fn load_refs<'a>(
    tx: &DatabaseTransaction,
    actor: &Principal,
    inputs: impl Iterator<Item = &'a NewActivity> + Clone,
    existing: &[&activity::Model],
) -> AppResult<ActivityRefs> {
    let mut reps: BTreeSet<i64> = inputs
        .clone()
        .filter_map(|i| i.rep_id.or(actor.rep_id))
        .collect();
    reps.extend(existing.iter().map(|a| a.rep_id));
    let mut leads: BTreeSet<i64> = inputs.clone().filter_map(|i| i.lead_id).collect();
    leads.extend(existing.iter().filter_map(|a| a.lead_id));
    let deals = inputs.clone().filter_map(|i| i.deal_id).collect();
    let accounts = inputs.filter_map(|i| i.account_id).collect();
    ActivityRefs::load(tx, actor, reps, leads, deals, accounts).await
}

pub async fn create(
    db: &DatabaseConnection,
    actor: &Principal,
    input: NewActivity,
) -> AppResult<activity::Model> {
    actor.require(LEAD_WRITERS)?;
    let tx = begin_write(db).await?;
    let refs = load_refs(&tx, actor, std::iter::once(&input), &[]).await?;
    let row = plan_create(&refs, actor, &input, clock::now())?;
    let mut saved = apply(
        &tx,
        actor,
        &refs,
        vec![ActivityWrite::Create {
            row,
            action: "logActivity",
        }],
    )
    .await?;
    tx.commit().await?;
    saved
        .pop()
        .ok_or_else(|| AppError::internal("the activity was not written"))
}

pub async fn update(
    db: &DatabaseConnection,
    actor: &Principal,
    id: i64,
    patch: ActivityChanges,
    expected_version: Option<i32>,
) -> AppResult<activity::Model> {
    actor.require(LEAD_WRITERS)?;
    let tx = begin_write(db).await?;
    let current = get(&tx, actor.scope(), id).await?;
    check_version(&current, expected_version)?;
    let mut reps = BTreeSet::from([current.rep_id]);
    reps.extend(actor.rep_id);
    let leads = patch
        .lead_id
        .as_set()
        .copied()
        .into_iter()
        .chain(current.lead_id)
        .collect();
    let deals = patch
        .deal_id
        .as_set()
        .copied()
        .into_iter()
        .chain(current.deal_id)
        .collect();
    let accounts = patch
        .account_id
        .as_set()
        .copied()
        .into_iter()
        .chain(current.account_id)
        .collect();
    let refs = ActivityRefs::load(&tx, actor, reps, leads, deals, accounts).await?;
    let (next, changes) = plan_update(&refs, &current, patch, clock::now())?;
    if changes.is_empty() {
        return Ok(current);
    }
    let mut saved = apply(
        &tx,
        actor,
        &refs,
        vec![ActivityWrite::Update {
            read: current,
            next,
            changes,
            action: "updateActivity",
        }],
    )
    .await?;
    tx.commit().await?;
    saved
        .pop()
        .ok_or_else(|| AppError::internal("the activity was not written"))
}

fn check_version(current: &activity::Model, expected: Option<i32>) -> AppResult<()> {
    match expected {
        Some(v) if v != current.version => Err(AppError::conflict(format!(
            "the activity is at version {}, not {v}: reload it and retry",
            current.version
        ))),
        _ => Ok(()),
    }
}

async fn by_external_ids(
    db: &impl ConnectionTrait,
    ids: &[String],
) -> AppResult<HashMap<String, activity::Model>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(activity::Entity::find()
        .filter(activity::Column::ExternalId.is_in(ids.iter().cloned()))
        .all(db)
        .await?
        .into_iter()
        .filter_map(|a| a.external_id.clone().map(|e| (e, a)))
        .collect())
}

fn plan_upsert(
    refs: &ActivityRefs,
    actor: &Principal,
    existing: Option<&activity::Model>,
    input: &NewActivity,
    now: DateTime<Utc>,
) -> AppResult<(Option<ActivityWrite>, Outcome)> {
    match existing {
        None => Ok((
            Some(ActivityWrite::Create {
                row: plan_create(refs, actor, input, now)?,
                action: "upsertActivity",
            }),
            Outcome::Created,
        )),
        Some(current) => {
            if !refs.refs.in_scope(current.rep_id) {
                return Err(AppError::not_found("activity"));
            }
            if let Some(r) = input.rep_id.filter(|r| *r != current.rep_id) {
                return Err(AppError::bad_input(format!(
                    "repId: the activity was logged by rep {}, not {r} (an activity keeps its rep)",
                    current.rep_id
                )));
            }
            let (next, changes) = plan_update(refs, current, input.as_changes(), now)?;
            if changes.is_empty() {
                return Ok((None, Outcome::Unchanged));
            }
            Ok((
                Some(ActivityWrite::Update {
                    read: current.clone(),
                    next,
                    changes,
                    action: "upsertActivity",
                }),
                Outcome::Updated,
            ))
        }
    }
}

/// Idempotent by externalId (required).
pub async fn upsert(
    db: &DatabaseConnection,
    actor: &Principal,
    input: NewActivity,
) -> AppResult<(activity::Model, Outcome)> {
    actor.require(LEAD_WRITERS)?;
    let ext = optional_text(input.external_id.as_deref(), "externalId", 200)?
        .ok_or_else(|| AppError::bad_input("externalId is required to upsert an activity"))?;
    let tx = begin_write(db).await?;
    let existing = by_external_ids(&tx, std::slice::from_ref(&ext)).await?;
    let refs = load_refs(
        &tx,
        actor,
        std::iter::once(&input),
        &existing.values().collect::<Vec<_>>(),
    )
    .await?;
    let (write, outcome) = plan_upsert(&refs, actor, existing.get(&ext), &input, clock::now())?;
    let Some(write) = write else {
        let current = existing
            .get(&ext)
            .cloned()
            .ok_or_else(|| AppError::internal("unchanged activity missing"))?;
        return Ok((current, outcome));
    };
    let mut saved = apply(&tx, actor, &refs, vec![write]).await?;
    tx.commit().await?;
    Ok((
        saved
            .pop()
            .ok_or_else(|| AppError::internal("the activity was not written"))?,
        outcome,
    ))
}

/// One bulk input: its externalId as given, and the input or why it could not be read.
pub type BulkItem = (Option<String>, AppResult<NewActivity>);

pub async fn bulk_upsert(
    db: &DatabaseConnection,
    actor: &Principal,
    items: Vec<BulkItem>,
) -> AppResult<BulkSummary> {
    actor.require(LEAD_WRITERS)?;
    if items.len() > MAX_BULK {
        return Err(AppError::bad_input(format!(
            "at most {MAX_BULK} inputs per call, got {}",
            items.len()
        )));
    }
    let (inputs, mut summary) = split_bulk(items);
    let tx = begin_write(db).await?;
    let keys: Vec<String> = inputs
        .iter()
        .filter_map(|(_, i)| external_key(i.external_id.as_deref()))
        .collect();
    let existing = by_external_ids(&tx, &keys).await?;
    let refs = load_refs(
        &tx,
        actor,
        inputs.iter().map(|(_, i)| i),
        &existing.values().collect::<Vec<_>>(),
    )
    .await?;
    let now = clock::now();
    let writes = plan_bulk(
        &inputs,
        |i: &NewActivity| i.external_id.as_deref(),
        "an activity",
        &mut summary,
        |input, e| plan_upsert(&refs, actor, existing.get(e), input, now),
    );
    apply(&tx, actor, &refs, writes).await?;
    tx.commit().await?;
    summary.errors.sort_by_key(|e| e.index);
    Ok(summary)
}
