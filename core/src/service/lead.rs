//! Leads (docs/design.md, Leads and activities): reads scoped like deals
//! (REP: own; MANAGER: team), idempotent writes by externalId, the status
//! funnel NEW -> WORKING -> QUALIFIED -> CONVERTED or DISQUALIFIED, and
//! conversion into a deal in one transaction.
//!
//! Every write goes through [`apply`]: one change-clock stamp for the batch
//! (the sync feed's `updated_at`, see `service::sync`), one INSERT per
//! chunk of new leads, one version-guarded UPDATE per chunk of changed
//! ones, their status changes, one scoring UPDATE for all of them, audit
//! entries and outbox events: a fixed number of statements per bulk call.
//! Status timestamps are set once and never rewritten, and statuses only
//! move forward, so the funnel as of a past day reads the lead rows alone;
//! `lead_status_change` keeps each move with its actor.
use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use sea_orm::{
    ActiveEnum, ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, EntityTrait, FromQueryResult, QueryFilter, Set,
};
use serde_json::{json, Value};

use entity::enums::{DealSource, LeadStatus, Segment};
use entity::{account, audit_entry, lead, lead_status_change};

use super::access::{DealScope, DEAL_READERS, DEAL_WRITERS};
use super::audit::Changes;
use super::deal::{self, DealRules, NewDeal, RefIds, Refs};
use super::outbox::{self, Event, EventKind};
use super::pagination::{decode_id_cursor, decode_time_cursor};
use super::upsert::{external_key, plan_bulk, split_bulk, BulkSummary, Outcome, MAX_BULK};
use super::{lead_scoring, optional_text, required_text, sync, versioned_rows, Patch};
use crate::auth::Principal;
use crate::clock;
use crate::db::{begin_write, insert_models, Sql};
use crate::error::{AppError, AppResult};

/// Roles that read leads (REP and MANAGER within their scope).
pub const LEAD_READERS: &[crate::auth::Role] = DEAL_READERS;
/// Roles that write leads (REP and MANAGER within their scope).
pub const LEAD_WRITERS: &[crate::auth::Role] = DEAL_WRITERS;

/// How far in the future a client clock may be when it stamps a change.
const CLOCK_SKEW: Duration = Duration::minutes(5);

#[derive(Debug, Clone, Default)]
pub struct NewLead {
    pub external_id: Option<String>,
    pub name: String,
    pub company: Option<String>,
    pub email: Option<String>,
    pub title: Option<String>,
    pub source: Option<String>,
    pub owner_id: i64,
    pub territory_id: Option<i64>,
    pub segment: Option<Segment>,
    pub industry: Option<String>,
    /// Backfills (OPS, ADMIN, INTEGRATION): when the lead came in; default now.
    pub created_at: Option<DateTime<Utc>>,
    /// The first response, when known from elsewhere (else the first activity).
    pub first_response_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default)]
pub struct LeadChanges {
    pub name: Option<String>,
    pub company: Patch<String>,
    pub email: Patch<String>,
    pub title: Patch<String>,
    pub source: Patch<String>,
    pub owner_id: Option<i64>,
    pub territory_id: Patch<i64>,
    pub segment: Patch<Segment>,
    pub industry: Patch<String>,
    pub first_response_at: Option<DateTime<Utc>>,
}

impl NewLead {
    /// The input as a patch of an existing lead (upserts): given fields
    /// replace the stored ones, absent ones keep them; createdAt is only
    /// read when the lead is created.
    fn as_changes(&self) -> LeadChanges {
        let set = |v: &Option<String>| v.clone().map(Patch::Set).unwrap_or_default();
        LeadChanges {
            name: Some(self.name.clone()),
            company: set(&self.company),
            email: set(&self.email),
            title: set(&self.title),
            source: set(&self.source),
            owner_id: Some(self.owner_id),
            territory_id: self.territory_id.map(Patch::Set).unwrap_or_default(),
            segment: self.segment.map(Patch::Set).unwrap_or_default(),
            industry: set(&self.industry),
            first_response_at: self.first_response_at,
        }
    }
}

/// What a list of leads is narrowed to.
#[derive(Debug, Clone, Default)]
pub struct LeadFilter {
    pub ids: Option<Vec<i64>>,
    pub owner_ids: Option<Vec<i64>>,
    pub statuses: Option<Vec<LeadStatus>>,
    pub sources: Option<Vec<String>>,
    pub territory_ids: Option<Vec<i64>>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    pub updated_since: Option<DateTime<Utc>>,
    pub min_score: Option<i32>,
    /// Case-insensitive text in name, company or email.
    pub search: Option<String>,
}

impl LeadFilter {
    /// Appends ` AND ...` conditions on `lead` (and the scope).
    pub fn push_sql(&self, sql: &mut Sql, scope: DealScope) {
        let (cond, values) = scope.rep_sql("lead.owner_id");
        sql.push(" AND ").push_with(&cond, values);
        if let Some(ids) = &self.ids {
            in_list(sql, "lead.id", ids.iter().copied());
        }
        if let Some(ids) = &self.owner_ids {
            in_list(sql, "lead.owner_id", ids.iter().copied());
        }
        if let Some(st) = &self.statuses {
            in_list(sql, "lead.status", st.iter().map(|s| s.to_value()));
        }
        if let Some(src) = &self.sources {
            in_list(sql, "lead.source", src.iter().cloned());
        }
        if let Some(ids) = &self.territory_ids {
            in_list(sql, "lead.territory_id", ids.iter().copied());
        }
        if let Some(t) = self.created_from {
            sql.push(" AND lead.created_at >= ").bind(t);
        }
        if let Some(t) = self.created_to {
            sql.push(" AND lead.created_at < ").bind(t);
        }
        if let Some(t) = self.updated_since {
            sql.push(" AND lead.updated_at > ").bind(t);
        }
        if let Some(s) = self.min_score {
            sql.push(" AND lead.score >= ").bind(s);
        }
        if let Some(s) = self
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let p = super::account::like_pattern(s);
            sql.push(" AND (LOWER(lead.name) LIKE ")
                .bind(p.clone())
                .push(" ESCAPE '\\' OR LOWER(COALESCE(lead.company, '')) LIKE ")
                .bind(p.clone())
                .push(" ESCAPE '\\' OR LOWER(COALESCE(lead.email, '')) LIKE ")
                .bind(p)
                .push(" ESCAPE '\\')");
        }
    }
}

fn in_list<V: Into<sea_orm::Value>>(sql: &mut Sql, col: &str, values: impl Iterator<Item = V>) {
    let values: Vec<V> = values.collect();
    if values.is_empty() {
        sql.push(" AND 1 = 0");
    } else {
        sql.push(&format!(" AND {col} IN ")).bind_list(values);
    }
}

/// The order of a lead list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LeadOrder {
    /// Newest first (by id).
    #[default]
    NewestFirst,
    /// The sync feed: oldest write first, by (updated_at, id).
    UpdatedAsc,
}

pub const LIST: &str = "leads";

/// A lead the principal may see, else NOT_FOUND (existence is not leaked).
pub async fn get(db: &impl ConnectionTrait, scope: DealScope, id: i64) -> AppResult<lead::Model> {
    let mut q = lead::Entity::find_by_id(id);
    if let Some(c) = scope.rep_condition("lead.owner_id", db.get_database_backend()) {
        q = q.filter(c);
    }
    q.one(db).await?.ok_or_else(|| AppError::not_found("lead"))
}

/// A lead by externalId the principal may see, else NOT_FOUND.
pub async fn get_by_external_id(
    db: &impl ConnectionTrait,
    scope: DealScope,
    external_id: &str,
) -> AppResult<lead::Model> {
    let mut q = lead::Entity::find().filter(lead::Column::ExternalId.eq(external_id));
    if let Some(c) = scope.rep_condition("lead.owner_id", db.get_database_backend()) {
        q = q.filter(c);
    }
    q.one(db).await?.ok_or_else(|| AppError::not_found("lead"))
}

/// One page of leads after the cursor (keyset, no OFFSET).
pub async fn page(
    db: &impl ConnectionTrait,
    scope: DealScope,
    filter: &LeadFilter,
    order: LeadOrder,
    after: Option<&str>,
    limit: u64,
) -> AppResult<Vec<lead::Model>> {
    let mut sql = Sql::new("SELECT lead.* FROM lead WHERE 1 = 1");
    filter.push_sql(&mut sql, scope);
    match order {
        LeadOrder::NewestFirst => {
            if let Some(c) = after {
                sql.push(" AND lead.id < ").bind(decode_id_cursor(c, LIST)?);
            }
            sql.push(" ORDER BY lead.id DESC");
        }
        LeadOrder::UpdatedAsc => {
            if let Some(c) = after {
                let (t, id) = decode_time_cursor(c, LIST)?;
                sql.push(" AND (lead.updated_at > ")
                    .bind(t)
                    .push(" OR (lead.updated_at = ")
                    .bind(t)
                    .push(" AND lead.id > ")
                    .bind(id)
                    .push("))");
            }
            sql.push(" ORDER BY lead.updated_at, lead.id");
        }
    }
    sql.push_limit(limit);
    Ok(
        lead::Model::find_by_statement(sql.statement(db.get_database_backend()))
            .all(db)
            .await?,
    )
}

#[derive(FromQueryResult)]
struct CountRow {
    n: i64,
}

pub async fn count(
    db: &impl ConnectionTrait,
    scope: DealScope,
    filter: &LeadFilter,
) -> AppResult<i64> {
    let mut sql = Sql::new("SELECT COUNT(*) AS n FROM lead WHERE 1 = 1");
    filter.push_sql(&mut sql, scope);
    Ok(
        CountRow::find_by_statement(sql.statement(db.get_database_backend()))
            .one(db)
            .await?
            .map_or(0, |r| r.n),
    )
}

/// The status changes of leads, oldest first, for `Lead.statusHistory`.
pub async fn status_history(
    db: &impl ConnectionTrait,
    lead_ids: &[i64],
) -> AppResult<Vec<lead_status_change::Model>> {
    use sea_orm::QueryOrder;
    if lead_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(lead_status_change::Entity::find()
        .filter(lead_status_change::Column::LeadId.is_in(lead_ids.iter().copied()))
        .order_by_asc(lead_status_change::Column::ChangedAt)
        .order_by_asc(lead_status_change::Column::Id)
        .all(db)
        .await?)
}

// ---------------------------------------------------------------- validation

fn not_in_future(t: DateTime<Utc>, field: &str, now: DateTime<Utc>) -> AppResult<DateTime<Utc>> {
    let t = clock::check_instant(clock::truncate_micros(t), field)?;
    if t > now + CLOCK_SKEW {
        return Err(AppError::bad_input(format!(
            "{field} must not be in the future"
        )));
    }
    Ok(t.min(now))
}

fn email(v: Option<&str>) -> AppResult<Option<String>> {
    let e = optional_text(v, "email", 320)?;
    if let Some(e) = &e {
        if !e.contains('@') || e.contains(char::is_whitespace) {
            return Err(AppError::bad_input(format!(
                "email: {e:?} is not an email address"
            )));
        }
    }
    Ok(e.map(|e| e.to_lowercase()))
}

/// The lead references of a batch: owners (and their scope), territories.
fn ref_ids(owners: impl Iterator<Item = i64>, territories: impl Iterator<Item = i64>) -> RefIds {
    let mut ids = RefIds::default();
    ids.reps.extend(owners);
    ids.territories.extend(territories);
    ids
}

fn plan_create(
    refs: &Refs,
    actor: &Principal,
    input: &NewLead,
    now: DateTime<Utc>,
) -> AppResult<lead::Model> {
    refs.owner(input.owner_id)?;
    if let Some(t) = input.territory_id {
        refs.territory(t)?;
    }
    if input.created_at.is_some() {
        deal::check_backfill(actor, input.created_at).map_err(|_| {
            AppError::forbidden("createdAt backfills are for OPS, ADMIN and INTEGRATION")
        })?;
    }
    let created_at = match input.created_at {
        Some(t) => not_in_future(t, "createdAt", now)?,
        None => now,
    };
    let first_response_at = input
        .first_response_at
        .map(|t| first_response(t, created_at, now))
        .transpose()?;
    Ok(lead::Model {
        id: 0,
        external_id: optional_text(input.external_id.as_deref(), "externalId", 200)?,
        name: required_text(&input.name, "name", 300)?,
        company: optional_text(input.company.as_deref(), "company", 300)?,
        email: email(input.email.as_deref())?,
        title: optional_text(input.title.as_deref(), "title", 200)?,
        source: optional_text(input.source.as_deref(), "source", 100)?,
        owner_id: input.owner_id,
        territory_id: input.territory_id,
        segment: input.segment,
        industry: optional_text(input.industry.as_deref(), "industry", 200)?,
        status: if first_response_at.is_some() {
            LeadStatus::Working
        } else {
            LeadStatus::New
        },
        disqualified_reason: None,
        created_at,
        first_response_at,
        first_response_given: first_response_at.is_some(),
        worked_at: first_response_at,
        qualified_at: None,
        converted_at: None,
        disqualified_at: None,
        deal_id: None,
        account_id: None,
        score: 0,
        score_rule_ids: String::new(),
        version: 1,
        updated_at: now,
    })
}

fn first_response(
    t: DateTime<Utc>,
    created_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> AppResult<DateTime<Utc>> {
    let t = not_in_future(t, "firstResponseAt", now)?;
    if t < created_at {
        return Err(AppError::bad_input(format!(
            "firstResponseAt must not be before the lead was created ({})",
            created_at.to_rfc3339()
        )));
    }
    Ok(t)
}

/// The lead after `patch`, with its audit changes (empty: nothing changes).
fn plan_update(
    refs: &Refs,
    current: &lead::Model,
    patch: LeadChanges,
    now: DateTime<Utc>,
) -> AppResult<(lead::Model, Changes)> {
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
    let mut next = current.clone();
    if let Some(n) = &patch.name {
        next.name = required_text(n, "name", 300)?;
    }
    next.company = text(patch.company, &current.company, "company", 300)?;
    next.email = match patch.email {
        Patch::Set(v) => email(Some(&v))?,
        other => other.apply(current.email.clone()),
    };
    next.title = text(patch.title, &current.title, "title", 200)?;
    next.source = text(patch.source, &current.source, "source", 100)?;
    next.industry = text(patch.industry, &current.industry, "industry", 200)?;
    if let Some(o) = patch.owner_id {
        if o != current.owner_id {
            refs.owner(o)?;
        }
        next.owner_id = o;
    }
    if let Some(t) = patch.territory_id.as_set() {
        refs.territory(*t)?;
    }
    next.territory_id = patch.territory_id.apply(current.territory_id);
    next.segment = patch.segment.apply(current.segment);
    if let Some(t) = patch.first_response_at {
        let t = first_response(t, current.created_at, now)?;
        next.first_response_at = Some(t);
        next.first_response_given = true;
        if next.status == LeadStatus::New {
            next.status = LeadStatus::Working;
            next.worked_at = Some(t);
        }
    }
    let mut changes = Changes::new();
    changes
        .field("name", &current.name, &next.name)
        .field("company", &current.company, &next.company)
        .field("email", &current.email, &next.email)
        .field("title", &current.title, &next.title)
        .field("source", &current.source, &next.source)
        .field("ownerId", &current.owner_id, &next.owner_id)
        .field("territoryId", &current.territory_id, &next.territory_id)
        .field("segment", &current.segment, &next.segment)
        .field("industry", &current.industry, &next.industry)
        .field(
            "firstResponseAt",
            &current.first_response_at,
            &next.first_response_at,
        )
        .field("status", &current.status, &next.status);
    Ok((next, changes))
}

fn created_changes(l: &lead::Model) -> Changes {
    let mut c = Changes::new();
    c.created("externalId", &l.external_id)
        .created("name", &l.name)
        .created("company", &l.company)
        .created("email", &l.email)
        .created("title", &l.title)
        .created("source", &l.source)
        .created("ownerId", &l.owner_id)
        .created("territoryId", &l.territory_id)
        .created("segment", &l.segment)
        .created("industry", &l.industry)
        .created("status", &l.status)
        .created("createdAt", &l.created_at)
        .created("firstResponseAt", &l.first_response_at);
    c
}

fn check_version(current: &lead::Model, expected: Option<i32>) -> AppResult<()> {
    match expected {
        Some(v) if v != current.version => Err(AppError::conflict(format!(
            "the lead is at version {}, not {v}: reload it and retry",
            current.version
        ))),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------- the writer

/// One planned lead write.
#[allow(clippy::large_enum_variant)] // short-lived, one per input
pub enum LeadWrite {
    Create {
        row: lead::Model,
        action: &'static str,
    },
    Update {
        read: lead::Model,
        next: lead::Model,
        changes: Changes,
        action: &'static str,
        /// An event beyond the status changes (LEAD_CONVERTED carries the deal).
        event: Option<(EventKind, Value)>,
    },
}

const UPDATE_SKIP: [lead::Column; 4] = [
    lead::Column::Id,
    lead::Column::CreatedAt,
    lead::Column::Score,
    lead::Column::ScoreRuleIds,
];

/// Writes the leads in the caller's transaction and returns them as
/// written (scored), in the order given.
pub async fn apply(
    tx: &DatabaseTransaction,
    actor: &Principal,
    writes: Vec<LeadWrite>,
) -> AppResult<Vec<lead::Model>> {
    if writes.is_empty() {
        return Ok(Vec::new());
    }
    let stamp = sync::stamp(tx).await?;

    // New leads: ids come back in row order (sorted), as for deals.
    let creates: Vec<lead::Model> = writes
        .iter()
        .filter_map(|w| match w {
            LeadWrite::Create { row, .. } => Some(lead::Model {
                updated_at: stamp,
                ..row.clone()
            }),
            _ => None,
        })
        .collect();
    let new_ids =
        versioned_rows::insert::<lead::Entity>(tx, lead::Column::Id, &creates, external_id_taken)
            .await?;

    // Changed leads: one UPDATE per chunk, each row guarded by its version.
    let updates: Vec<(i64, i32, lead::Model)> = writes
        .iter()
        .filter_map(|w| match w {
            LeadWrite::Update { read, next, .. } => Some((
                read.id,
                read.version,
                lead::Model {
                    version: read.version + 1,
                    updated_at: stamp,
                    ..next.clone()
                },
            )),
            _ => None,
        })
        .collect();
    versioned_rows::update::<lead::Entity>(
        tx,
        (lead::Column::Id, lead::Column::Version),
        &UPDATE_SKIP,
        &updates,
        external_id_taken,
    )
    .await?;

    // Status changes, audit entries and events, in the order given.
    let subscribers = outbox::Subscribers::load(tx).await?;
    let mut new_ids = new_ids.into_iter();
    let mut saved = Vec::with_capacity(writes.len());
    let mut moves = Vec::new();
    let mut audit = Vec::new();
    let mut events = Vec::new();
    for w in writes {
        match w {
            LeadWrite::Create { row, action } => {
                let id = new_ids
                    .next()
                    .ok_or_else(|| AppError::internal("a created lead is missing"))?;
                let l = lead::Model {
                    id,
                    updated_at: stamp,
                    ..row
                };
                moves.push(status_change(
                    &l,
                    None,
                    LeadStatus::New,
                    l.created_at,
                    actor,
                ));
                if l.status != LeadStatus::New {
                    let at = l.worked_at.unwrap_or(l.created_at);
                    moves.push(status_change(
                        &l,
                        Some(LeadStatus::New),
                        l.status,
                        at,
                        actor,
                    ));
                }
                audit.push((id, action, created_changes(&l)));
                if subscribers.wants(EventKind::LeadCreated) {
                    events.push(Event::new(
                        EventKind::LeadCreated,
                        "Lead",
                        id,
                        json!({ "lead": lead_json(&l) }),
                    ));
                }
                saved.push(l);
            }
            LeadWrite::Update {
                read,
                next,
                changes,
                action,
                event,
            } => {
                let l = lead::Model {
                    version: read.version + 1,
                    updated_at: stamp,
                    ..next
                };
                for (from, to, at) in status_path(&read, &l) {
                    moves.push(status_change(&l, Some(from), to, at, actor));
                }
                audit.push((l.id, action, changes));
                if let Some((kind, data)) = event {
                    if subscribers.wants(kind) {
                        events.push(Event::new(kind, "Lead", l.id, data));
                    }
                }
                saved.push(l);
            }
        }
    }
    insert_models::<lead_status_change::Entity>(tx, &[lead_status_change::Column::Id], &moves)
        .await?;
    let rows: Vec<audit_entry::Model> = audit
        .into_iter()
        .map(|(id, action, changes)| audit_entry::Model {
            id: 0,
            at: stamp,
            actor: actor.subject.clone(),
            action: action.to_owned(),
            entity_type: "Lead".to_owned(),
            entity_id: id.to_string(),
            changes: changes.to_json(),
        })
        .collect();
    insert_models::<audit_entry::Entity>(tx, &[audit_entry::Column::Id], &rows).await?;
    outbox::enqueue_to(tx, &subscribers, events).await?;

    // Scores: one statement for every lead written, then read back.
    let ids: Vec<i64> = saved.iter().map(|l| l.id).collect();
    lead_scoring::score(tx, lead_scoring::Which::Ids(&ids)).await?;
    let scores = scores_of(tx, &ids).await?;
    for l in &mut saved {
        if let Some((s, r)) = scores.get(&l.id) {
            l.score = *s;
            l.score_rule_ids = r.clone();
        }
    }
    Ok(saved)
}

#[derive(FromQueryResult)]
struct ScoreRow {
    id: i64,
    score: i32,
    score_rule_ids: String,
}

async fn scores_of(
    tx: &DatabaseTransaction,
    ids: &[i64],
) -> AppResult<HashMap<i64, (i32, String)>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(5_000) {
        let mut sql = Sql::new("SELECT id, score, score_rule_ids FROM lead WHERE id IN ");
        sql.bind_list(chunk.iter().copied());
        for r in ScoreRow::find_by_statement(sql.statement(tx.get_database_backend()))
            .all(tx)
            .await?
        {
            out.insert(r.id, (r.score, r.score_rule_ids));
        }
    }
    Ok(out)
}

fn external_id_taken(e: sea_orm::DbErr) -> AppError {
    let text = e.to_string();
    if text.contains("uq_lead_external_id") || text.contains("lead.external_id") {
        AppError::conflict("another lead has this externalId")
    } else {
        e.into()
    }
}

fn status_change(
    l: &lead::Model,
    from: Option<LeadStatus>,
    to: LeadStatus,
    at: DateTime<Utc>,
    actor: &Principal,
) -> lead_status_change::Model {
    lead_status_change::Model {
        id: 0,
        lead_id: l.id,
        from_status: from,
        to_status: to,
        changed_at: at,
        actor: Some(actor.subject.clone()),
    }
}

/// The statuses a lead passed from `read` to `next`, each with its instant
/// (a conversion of a NEW lead passes WORKING and QUALIFIED at once).
fn status_path(
    read: &lead::Model,
    next: &lead::Model,
) -> Vec<(LeadStatus, LeadStatus, DateTime<Utc>)> {
    if read.status == next.status {
        return Vec::new();
    }
    let mut path = Vec::new();
    let mut from = read.status;
    let steps = [
        (LeadStatus::Working, next.worked_at),
        (LeadStatus::Qualified, next.qualified_at),
        (LeadStatus::Converted, next.converted_at),
    ];
    if next.status == LeadStatus::Disqualified {
        if let Some(at) = next.disqualified_at {
            path.push((from, LeadStatus::Disqualified, at));
        }
        return path;
    }
    for (to, at) in steps {
        if rank(to) <= rank(read.status) || rank(to) > rank(next.status) {
            continue;
        }
        if let Some(at) = at {
            path.push((from, to, at));
            from = to;
        }
    }
    path
}

fn rank(s: LeadStatus) -> u8 {
    match s {
        LeadStatus::New => 0,
        LeadStatus::Working => 1,
        LeadStatus::Qualified => 2,
        LeadStatus::Converted => 3,
        LeadStatus::Disqualified => 4,
    }
}

/// A lead as webhook consumers see it.
pub fn lead_json(l: &lead::Model) -> Value {
    let id = |v: Option<i64>| v.map(|x| x.to_string());
    let ts = |t: Option<DateTime<Utc>>| {
        t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
    };
    json!({
        "id": l.id.to_string(),
        "externalId": l.external_id,
        "name": l.name,
        "company": l.company,
        "email": l.email,
        "title": l.title,
        "source": l.source,
        "ownerId": l.owner_id.to_string(),
        "territoryId": id(l.territory_id),
        "segment": l.segment.map(|s| s.to_value()),
        "industry": l.industry,
        "status": l.status.to_value(),
        "disqualifiedReason": l.disqualified_reason,
        "createdAt": ts(Some(l.created_at)),
        "firstResponseAt": ts(l.first_response_at),
        "qualifiedAt": ts(l.qualified_at),
        "convertedAt": ts(l.converted_at),
        "dealId": id(l.deal_id),
        "accountId": id(l.account_id),
        "version": l.version,
    })
}

// ---------------------------------------------------------------- use cases

async fn get_for_write(
    tx: &DatabaseTransaction,
    scope: DealScope,
    id: i64,
) -> AppResult<lead::Model> {
    use sea_orm::QuerySelect;
    let backend = tx.get_database_backend();
    let mut q = lead::Entity::find_by_id(id);
    if let Some(c) = scope.rep_condition("lead.owner_id", backend) {
        q = q.filter(c);
    }
    if backend == sea_orm::DatabaseBackend::Postgres {
        q = q.lock_exclusive();
    }
    q.one(tx).await?.ok_or_else(|| AppError::not_found("lead"))
}

pub async fn create(
    db: &DatabaseConnection,
    actor: &Principal,
    input: NewLead,
) -> AppResult<lead::Model> {
    actor.require(LEAD_WRITERS)?;
    let tx = begin_write(db).await?;
    let refs = Refs::load(
        &tx,
        actor,
        &ref_ids([input.owner_id].into_iter(), input.territory_id.into_iter()),
    )
    .await?;
    let row = plan_create(&refs, actor, &input, clock::now())?;
    let mut saved = apply(
        &tx,
        actor,
        vec![LeadWrite::Create {
            row,
            action: "createLead",
        }],
    )
    .await?;
    tx.commit().await?;
    saved
        .pop()
        .ok_or_else(|| AppError::internal("the lead was not written"))
}

pub async fn update(
    db: &DatabaseConnection,
    actor: &Principal,
    id: i64,
    patch: LeadChanges,
    expected_version: Option<i32>,
) -> AppResult<lead::Model> {
    actor.require(LEAD_WRITERS)?;
    let tx = begin_write(db).await?;
    let current = get_for_write(&tx, actor.scope(), id).await?;
    check_version(&current, expected_version)?;
    let refs = Refs::load(
        &tx,
        actor,
        &ref_ids(
            patch.owner_id.into_iter(),
            patch.territory_id.as_set().copied().into_iter(),
        ),
    )
    .await?;
    let (next, changes) = plan_update(&refs, &current, patch, clock::now())?;
    if changes.is_empty() {
        return Ok(current);
    }
    let mut saved = apply(
        &tx,
        actor,
        vec![LeadWrite::Update {
            read: current,
            next,
            changes,
            action: "updateLead",
            event: None,
        }],
    )
    .await?;
    tx.commit().await?;
    saved
        .pop()
        .ok_or_else(|| AppError::internal("the lead was not written"))
}

/// Creates, updates or leaves unchanged the lead with the input's externalId.
pub async fn upsert(
    db: &DatabaseConnection,
    actor: &Principal,
    input: NewLead,
    expected_version: Option<i32>,
) -> AppResult<(lead::Model, Outcome)> {
    actor.require(LEAD_WRITERS)?;
    let ext = optional_text(input.external_id.as_deref(), "externalId", 200)?
        .ok_or_else(|| AppError::bad_input("externalId is required to upsert a lead"))?;
    let tx = begin_write(db).await?;
    let existing = by_external_ids(&tx, std::slice::from_ref(&ext)).await?;
    let refs = Refs::load(
        &tx,
        actor,
        &ref_ids(
            [input.owner_id]
                .into_iter()
                .chain(existing.values().map(|l| l.owner_id)),
            input.territory_id.into_iter(),
        ),
    )
    .await?;
    let (write, outcome) = plan_upsert(
        &refs,
        actor,
        existing.get(&ext),
        &input,
        expected_version,
        clock::now(),
    )?;
    let Some(write) = write else {
        let current = existing
            .get(&ext)
            .cloned()
            .ok_or_else(|| AppError::internal("unchanged lead missing"))?;
        return Ok((current, outcome));
    };
    let mut saved = apply(&tx, actor, vec![write]).await?;
    tx.commit().await?;
    Ok((
        saved
            .pop()
            .ok_or_else(|| AppError::internal("the lead was not written"))?,
        outcome,
    ))
}

fn plan_upsert(
    refs: &Refs,
    actor: &Principal,
    existing: Option<&lead::Model>,
    input: &NewLead,
    expected_version: Option<i32>,
    now: DateTime<Utc>,
) -> AppResult<(Option<LeadWrite>, Outcome)> {
    match existing {
        None => {
            if expected_version.is_some() {
                return Err(AppError::conflict(
                    "no lead has this externalId yet: expectedVersion cannot match",
                ));
            }
            let row = plan_create(refs, actor, input, now)?;
            Ok((
                Some(LeadWrite::Create {
                    row,
                    action: "upsertLead",
                }),
                Outcome::Created,
            ))
        }
        Some(current) => {
            if !refs.in_scope(current.owner_id) {
                return Err(AppError::not_found("lead"));
            }
            check_version(current, expected_version)?;
            let mut patch = input.as_changes();
            // An explicit first response equal to the stored one is no change.
            if patch.first_response_at.map(clock::truncate_micros) == current.first_response_at {
                patch.first_response_at = None;
            }
            let (next, changes) = plan_update(refs, current, patch, now)?;
            if changes.is_empty() {
                return Ok((None, Outcome::Unchanged));
            }
            Ok((
                Some(LeadWrite::Update {
                    read: current.clone(),
                    next,
                    changes,
                    action: "upsertLead",
                    event: None,
                }),
                Outcome::Updated,
            ))
        }
    }
}

async fn by_external_ids(
    db: &impl ConnectionTrait,
    ids: &[String],
) -> AppResult<HashMap<String, lead::Model>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(lead::Entity::find()
        .filter(lead::Column::ExternalId.is_in(ids.iter().cloned()))
        .all(db)
        .await?
        .into_iter()
        .filter_map(|l| l.external_id.clone().map(|e| (e, l)))
        .collect())
}

/// At most MAX_BULK inputs, each validated on its own; the valid ones are
/// written together (a fixed number of statements), a bad one is reported
/// with its index and code.
/// One bulk input: its externalId as given, and the input or why it could not be read.
pub type BulkItem = (Option<String>, AppResult<NewLead>);

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
    let refs = Refs::load(
        &tx,
        actor,
        &ref_ids(
            inputs
                .iter()
                .map(|(_, i)| i.owner_id)
                .chain(existing.values().map(|l| l.owner_id)),
            inputs.iter().filter_map(|(_, i)| i.territory_id),
        ),
    )
    .await?;
    let now = clock::now();
    let writes = plan_bulk(
        &inputs,
        |i: &NewLead| i.external_id.as_deref(),
        "a lead",
        &mut summary,
        |input, e| plan_upsert(&refs, actor, existing.get(e), input, None, now),
    );
    apply(&tx, actor, writes).await?;
    tx.commit().await?;
    summary.errors.sort_by_key(|e| e.index);
    Ok(summary)
}

/// A status move forward: WORKING or QUALIFIED, at `at` (default now).
pub async fn move_status(
    db: &DatabaseConnection,
    actor: &Principal,
    id: i64,
    status: LeadStatus,
    at: Option<DateTime<Utc>>,
    expected_version: Option<i32>,
) -> AppResult<lead::Model> {
    actor.require(LEAD_WRITERS)?;
    if !matches!(status, LeadStatus::Working | LeadStatus::Qualified) {
        return Err(AppError::bad_input(
            "status: moveLeadStatus moves to WORKING or QUALIFIED; use convertLead or disqualifyLead",
        ));
    }
    let tx = begin_write(db).await?;
    let current = get_for_write(&tx, actor.scope(), id).await?;
    check_version(&current, expected_version)?;
    let now = clock::now();
    let at = at_or_now(at, &current, now)?;
    if !current.status.is_open() || rank(status) <= rank(current.status) {
        return Err(AppError::conflict(format!(
            "the lead is {}: it cannot move to {}",
            current.status.to_value(),
            status.to_value()
        )));
    }
    let mut next = current.clone();
    next.status = status;
    next.worked_at = next.worked_at.or(Some(at));
    if status == LeadStatus::Qualified {
        next.qualified_at = Some(at);
    }
    let mut changes = Changes::new();
    changes.field("status", &current.status, &next.status);
    let mut saved = apply(
        &tx,
        actor,
        vec![LeadWrite::Update {
            read: current,
            next,
            changes,
            action: "moveLeadStatus",
            event: None,
        }],
    )
    .await?;
    tx.commit().await?;
    saved
        .pop()
        .ok_or_else(|| AppError::internal("the lead was not written"))
}

/// The instant of a status move: not in the future, not before the
/// lead's latest move (its timestamps stay in order).
fn at_or_now(
    at: Option<DateTime<Utc>>,
    current: &lead::Model,
    now: DateTime<Utc>,
) -> AppResult<DateTime<Utc>> {
    let Some(at) = at else {
        return Ok(now);
    };
    let at = not_in_future(at, "at", now)?;
    let latest = [
        Some(current.created_at),
        current.worked_at,
        current.qualified_at,
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(current.created_at);
    if at < latest {
        return Err(AppError::bad_input(format!(
            "at must not be before the lead's latest status change ({})",
            latest.to_rfc3339()
        )));
    }
    Ok(at)
}

pub async fn disqualify(
    db: &DatabaseConnection,
    actor: &Principal,
    id: i64,
    reason: &str,
    at: Option<DateTime<Utc>>,
    expected_version: Option<i32>,
) -> AppResult<lead::Model> {
    actor.require(LEAD_WRITERS)?;
    let reason = required_text(reason, "reason", 500)?;
    let tx = begin_write(db).await?;
    let current = get_for_write(&tx, actor.scope(), id).await?;
    check_version(&current, expected_version)?;
    if !current.status.is_open() {
        return Err(AppError::conflict(format!(
            "the lead is already {}",
            current.status.to_value()
        )));
    }
    let at = at_or_now(at, &current, clock::now())?;
    let mut next = current.clone();
    next.status = LeadStatus::Disqualified;
    next.disqualified_at = Some(at);
    next.disqualified_reason = Some(reason);
    let mut changes = Changes::new();
    changes
        .field("status", &current.status, &next.status)
        .field(
            "disqualifiedReason",
            &current.disqualified_reason,
            &next.disqualified_reason,
        );
    let mut saved = apply(
        &tx,
        actor,
        vec![LeadWrite::Update {
            read: current,
            next,
            changes,
            action: "disqualifyLead",
            event: None,
        }],
    )
    .await?;
    tx.commit().await?;
    saved
        .pop()
        .ok_or_else(|| AppError::internal("the lead was not written"))
}

/// What the deal made from a lead is.
#[derive(Debug, Clone, Default)]
pub struct Conversion {
    /// Default: the lead's company, else its name.
    pub deal_name: Option<String>,
    pub amount: Decimal,
    pub stage_id: Option<i64>,
    pub expected_close_date: Option<chrono::NaiveDate>,
    /// Default: the lead's owner.
    pub owner_id: Option<i64>,
    pub account_id: Option<i64>,
    /// Create an account named after the lead's company (with its industry,
    /// segment and territory) for the deal.
    pub create_account: bool,
    pub source: Option<DealSource>,
    pub at: Option<DateTime<Utc>>,
}

pub struct Converted {
    pub lead: lead::Model,
    pub deal: entity::deal::Model,
    pub account: Option<account::Model>,
}

/// Converts an open lead: creates the deal (and the account when asked)
/// and marks the lead CONVERTED, in one transaction.
pub async fn convert(
    db: &DatabaseConnection,
    actor: &Principal,
    rules: &DealRules,
    id: i64,
    c: Conversion,
) -> AppResult<Converted> {
    actor.require(LEAD_WRITERS)?;
    if c.create_account && c.account_id.is_some() {
        return Err(AppError::bad_input(
            "give accountId or createAccount, not both",
        ));
    }
    let tx = begin_write(db).await?;
    let current = get_for_write(&tx, actor.scope(), id).await?;
    match current.status {
        LeadStatus::Converted => {
            return Err(AppError::conflict(format!(
                "the lead was already converted (deal {})",
                current.deal_id.map_or("?".to_owned(), |d| d.to_string())
            )))
        }
        LeadStatus::Disqualified => {
            return Err(AppError::conflict(
                "a disqualified lead cannot be converted",
            ))
        }
        _ => {}
    }
    let now = clock::now();
    let at = at_or_now(c.at, &current, now)?;
    let account = if c.create_account {
        let name = current.company.clone().ok_or_else(|| {
            AppError::bad_input("createAccount: the lead has no company to name the account")
        })?;
        let a = account::ActiveModel {
            external_id: Set(None),
            name: Set(name),
            industry: Set(current.industry.clone()),
            segment: Set(current.segment),
            territory_id: Set(current.territory_id),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&tx)
        .await?;
        let mut changes = Changes::new();
        changes
            .created("name", &a.name)
            .created("fromLeadId", &current.id);
        super::audit::record(
            &tx,
            &actor.subject,
            "convertLead",
            "Account",
            a.id,
            &changes,
        )
        .await?;
        Some(a)
    } else {
        None
    };
    let deal_input = NewDeal {
        external_id: None,
        name: c
            .deal_name
            .clone()
            .or_else(|| current.company.clone())
            .unwrap_or_else(|| current.name.clone()),
        amount: c.amount,
        currency: None,
        owner_id: c.owner_id.unwrap_or(current.owner_id),
        account_id: account.as_ref().map(|a| a.id).or(c.account_id),
        territory_id: current.territory_id,
        stage_id: c.stage_id,
        forecast_category: None,
        source: c.source,
        playbook_id: None,
        opened_at: Some(at),
        expected_close_date: c.expected_close_date,
        closed_at: None,
        lost_reason: None,
        stage_changed_at: None,
        effective_at: None,
    };
    let deal = deal::create_in(&tx, actor, rules, deal_input).await?;
    let mut next = current.clone();
    next.status = LeadStatus::Converted;
    next.worked_at = next.worked_at.or(Some(at));
    next.qualified_at = next.qualified_at.or(Some(at));
    next.converted_at = Some(at);
    next.deal_id = Some(deal.id);
    next.account_id = account.as_ref().map(|a| a.id).or(deal.account_id);
    let mut changes = Changes::new();
    changes
        .field("status", &current.status, &next.status)
        .field("dealId", &current.deal_id, &next.deal_id)
        .field("accountId", &current.account_id, &next.account_id);
    let event = json!({
        "lead": lead_json(&lead::Model { version: next.version + 1, ..next.clone() }),
        "deal": outbox::deal_json(&deal),
    });
    let mut saved = apply(
        &tx,
        actor,
        vec![LeadWrite::Update {
            read: current,
            next,
            changes,
            action: "convertLead",
            event: Some((EventKind::LeadConverted, event)),
        }],
    )
    .await?;
    tx.commit().await?;
    Ok(Converted {
        lead: saved
            .pop()
            .ok_or_else(|| AppError::internal("the lead was not written"))?,
        deal,
        account,
    })
}

/// Leads by id in the principal's scope (loaders).
pub async fn by_ids(
    db: &impl ConnectionTrait,
    scope: DealScope,
    ids: &[i64],
) -> AppResult<Vec<lead::Model>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::new("SELECT lead.* FROM lead WHERE lead.id IN ");
    sql.bind_list(ids.iter().copied());
    let (cond, values) = scope.rep_sql("lead.owner_id");
    sql.push(" AND ").push_with(&cond, values);
    Ok(
        lead::Model::find_by_statement(sql.statement(db.get_database_backend()))
            .all(db)
            .await?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn lead_at(status: LeadStatus) -> lead::Model {
        let t = Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap();
        lead::Model {
            id: 1,
            external_id: None,
            name: "n".into(),
            company: None,
            email: None,
            title: None,
            source: None,
            owner_id: 1,
            territory_id: None,
            segment: None,
            industry: None,
            status,
            disqualified_reason: None,
            created_at: t,
            first_response_at: None,
            first_response_given: false,
            worked_at: None,
            qualified_at: None,
            converted_at: None,
            disqualified_at: None,
            deal_id: None,
            account_id: None,
            score: 0,
            score_rule_ids: String::new(),
            version: 1,
            updated_at: t,
        }
    }

    #[test]
    fn a_conversion_of_a_new_lead_passes_every_status() {
        let read = lead_at(LeadStatus::New);
        let t = read.created_at + Duration::hours(3);
        let next = lead::Model {
            status: LeadStatus::Converted,
            worked_at: Some(t),
            qualified_at: Some(t),
            converted_at: Some(t),
            ..read.clone()
        };
        let path: Vec<_> = status_path(&read, &next)
            .into_iter()
            .map(|(f, s, _)| (f, s))
            .collect();
        assert_eq!(
            path,
            vec![
                (LeadStatus::New, LeadStatus::Working),
                (LeadStatus::Working, LeadStatus::Qualified),
                (LeadStatus::Qualified, LeadStatus::Converted)
            ]
        );
    }

    #[test]
    fn a_disqualification_is_one_move() {
        let read = lead::Model {
            worked_at: Some(Utc::now()),
            ..lead_at(LeadStatus::Working)
        };
        let next = lead::Model {
            status: LeadStatus::Disqualified,
            disqualified_at: Some(Utc::now()),
            ..read.clone()
        };
        let path: Vec<_> = status_path(&read, &next)
            .into_iter()
            .map(|(f, s, _)| (f, s))
            .collect();
        assert_eq!(path, vec![(LeadStatus::Working, LeadStatus::Disqualified)]);
    }

    #[test]
    fn emails_are_checked_and_lower_cased() {
        assert_eq!(
            email(Some(" Ann@Acme.COM ")).unwrap().as_deref(),
            Some("ann@acme.com")
        );
        assert!(email(Some("not an email")).is_err());
        assert_eq!(email(Some("  ")).unwrap(), None);
    }
}
