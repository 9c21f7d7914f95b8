//! The one write path of deals. createDeal, updateDeal, moveDealStage,
//! upsertDeal and bulkUpsertDeals validate with the planners in
//! `service::deal`, then hand their writes here, which applies any number of
//! them with a fixed number of statements: the change-clock stamp, one
//! multi-row INSERT ... RETURNING for new deals, one UPDATE ... FROM (VALUES
//! ...) for changed ones (each row still checked against the version that
//! was read), and multi-row INSERTs for stage history, audit entries and
//! outbox events, all in the caller's transaction.
use sea_orm::{
    ActiveEnum, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, FromQueryResult,
    Value as SqlValue,
};
use serde_json::json;

use entity::deal;
use entity::enums::DealStatus;

use super::audit::Changes;
use super::deal::{created_changes, HistoryRow, PlannedCreate};
use super::outbox::{self, deal_json, Event, EventKind};
use super::sync;
use crate::auth::Principal;
use crate::db::{insert_rows, Sql, MAX_PARAMS};
use crate::error::AppError;

/// One validated write of one deal.
// Short-lived values gathered in one Vec per call: boxing buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum DealWrite {
    Create {
        row: deal::Model,
        history: Vec<HistoryRow>,
        action: &'static str,
    },
    Update {
        /// The deal as read; the write only applies if it is still at this version.
        read: deal::Model,
        next: deal::Model,
        changes: Changes,
        /// A stage move, if the write makes one.
        history: Option<HistoryRow>,
        action: &'static str,
    },
}

impl DealWrite {
    pub fn create(p: PlannedCreate, action: &'static str) -> Self {
        DealWrite::Create {
            row: p.row,
            history: p.history,
            action,
        }
    }

    pub fn update(
        read: deal::Model,
        next: deal::Model,
        changes: Changes,
        history: Option<HistoryRow>,
        action: &'static str,
    ) -> Self {
        DealWrite::Update {
            read,
            next,
            changes,
            history,
            action,
        }
    }
}

/// Why a write did not apply.
#[derive(Debug, Clone)]
pub enum WriteError {
    /// Another transaction wrote one of these deals first (the same new
    /// externalId, or a newer version): re-reading and planning again
    /// resolves it. The error is what a caller that does not retry reports.
    Raced(AppError),
    Failed(AppError),
}

impl From<WriteError> for AppError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Raced(e) | WriteError::Failed(e) => e,
        }
    }
}

impl From<AppError> for WriteError {
    fn from(e: AppError) -> Self {
        WriteError::Failed(e)
    }
}

impl From<DbErr> for WriteError {
    fn from(e: DbErr) -> Self {
        WriteError::Failed(e.into())
    }
}

fn is_external_id_race(e: &DbErr) -> bool {
    // PostgreSQL names the index, SQLite the column.
    AppError::is_unique_violation_of(e, "uq_deal_external_id")
        || AppError::is_unique_violation_of(e, "deal.external_id")
}

const INSERT_COLUMNS: [&str; 19] = [
    "external_id",
    "name",
    "amount_cents",
    "currency",
    "owner_id",
    "account_id",
    "territory_id",
    "stage_id",
    "status",
    "forecast_category",
    "source",
    "playbook_id",
    "opened_at",
    "expected_close_date",
    "closed_at",
    "lost_reason",
    "version",
    "created_at",
    "updated_at",
];

/// The columns an update rewrites, after `id` and the version read.
const UPDATE_COLUMNS: [&str; 13] = [
    "name",
    "amount_cents",
    "owner_id",
    "account_id",
    "territory_id",
    "stage_id",
    "status",
    "forecast_category",
    "source",
    "playbook_id",
    "expected_close_date",
    "closed_at",
    "lost_reason",
];

fn updated_values(d: &deal::Model) -> Vec<SqlValue> {
    vec![
        d.name.clone().into(),
        d.amount_cents.into(),
        d.owner_id.into(),
        d.account_id.into(),
        d.territory_id.into(),
        d.stage_id.into(),
        d.status.to_value().into(),
        d.forecast_category.to_value().into(),
        d.source.map(|s| s.to_value()).into(),
        d.playbook_id.into(),
        d.expected_close_date.into(),
        d.closed_at.into(),
        d.lost_reason.clone().into(),
    ]
}

#[derive(FromQueryResult)]
struct IdRow {
    id: i64,
}

/// Applies the writes in the caller's transaction and returns the deals as
/// written, in the order given. Every deal written gets the same
/// `updated_at` from the change clock (see `service::sync`), and its
/// version goes up by one.
pub async fn apply(
    tx: &DatabaseTransaction,
    actor: &Principal,
    writes: Vec<DealWrite>,
) -> Result<Vec<deal::Model>, WriteError> {
    if writes.is_empty() {
        return Ok(Vec::new());
    }
    let backend = tx.get_database_backend();
    let stamp = sync::stamp(tx).await?;

    // New deals: multi-row INSERT ... RETURNING, matched back by position.
    let creates: Vec<&deal::Model> = writes
        .iter()
        .filter_map(|w| match w {
            DealWrite::Create { row, .. } => Some(row),
            _ => None,
        })
        .collect();
    let mut inserted = Vec::with_capacity(creates.len());
    for chunk in creates.chunks(MAX_PARAMS / INSERT_COLUMNS.len()) {
        let mut sql = Sql::new(format!(
            "INSERT INTO deal ({}) VALUES ",
            INSERT_COLUMNS.join(", ")
        ));
        for (i, d) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            let mut values = vec![SqlValue::from(d.external_id.clone()), d.name.clone().into()];
            values.extend([
                d.amount_cents.into(),
                d.currency.clone().into(),
                d.owner_id.into(),
                d.account_id.into(),
                d.territory_id.into(),
                d.stage_id.into(),
                d.status.to_value().into(),
                d.forecast_category.to_value().into(),
                d.source.map(|s| s.to_value()).into(),
                d.playbook_id.into(),
                d.opened_at.into(),
                d.expected_close_date.into(),
                d.closed_at.into(),
                d.lost_reason.clone().into(),
                1i32.into(),
                stamp.into(),
                stamp.into(),
            ]);
            sql.bind_list(values);
        }
        sql.push(" RETURNING *");
        let rows = deal::Entity::find()
            .from_raw_sql(sql.statement(backend))
            .all(tx)
            .await
            .map_err(|e| {
                if is_external_id_race(&e) {
                    WriteError::Raced(e.into())
                } else {
                    WriteError::Failed(e.into())
                }
            })?;
        inserted.extend(rows);
    }
    if inserted.len() != creates.len() {
        return Err(AppError::internal("INSERT returned fewer deals than it wrote").into());
    }
    // Ids are assigned in VALUES order: sorted by id, the rows line up with
    // the creates (checked by externalId below).
    inserted.sort_by_key(|d| d.id);

    // Changed deals: one UPDATE per chunk, each row guarded by its version.
    let updates: Vec<(&deal::Model, &deal::Model)> = writes
        .iter()
        .filter_map(|w| match w {
            DealWrite::Update { read, next, .. } => Some((read, next)),
            _ => None,
        })
        .collect();
    let width = UPDATE_COLUMNS.len() + 2;
    for chunk in updates.chunks(MAX_PARAMS / width) {
        let set = UPDATE_COLUMNS
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = v.column{}", i + 3))
            .collect::<Vec<_>>()
            .join(", ");
        let mut sql = Sql::new(format!(
            "UPDATE deal SET {set}, version = deal.version + 1, updated_at = "
        ));
        sql.bind(stamp).push(" FROM (VALUES ");
        for (i, (read, next)) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            let mut values = vec![SqlValue::from(read.id), read.version.into()];
            values.extend(updated_values(next));
            sql.bind_list(values);
        }
        sql.push(") AS v WHERE deal.id = v.column1 AND deal.version = v.column2 RETURNING id");
        let done: std::collections::HashSet<i64> = IdRow::find_by_statement(sql.statement(backend))
            .all(tx)
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect();
        if chunk.iter().any(|(read, _)| !done.contains(&read.id)) {
            return Err(WriteError::Raced(AppError::conflict(
                "the deal changed while this write was applied: reload it and retry",
            )));
        }
    }

    // Every deal as written, with what the history, audit and outbox need.
    let mut created = inserted.into_iter();
    let mut saved = Vec::with_capacity(writes.len());
    let mut history = Vec::new();
    let mut audit = Vec::new();
    let mut events = Vec::new();
    for w in writes {
        match w {
            DealWrite::Create {
                row,
                history: rows,
                action,
            } => {
                let d = created
                    .next()
                    .filter(|d| d.external_id == row.external_id)
                    .ok_or_else(|| AppError::internal("a created deal is missing"))?;
                history.extend(rows.into_iter().map(|h| (d.id, h)));
                let changes = created_changes(&d);
                events.push(deal_event(EventKind::DealCreated, &d, &changes, None));
                if let Some(kind) = closing_event(d.status) {
                    events.push(deal_event(kind, &d, &changes, None));
                }
                audit.push((d.id, action, changes));
                saved.push(d);
            }
            DealWrite::Update {
                read,
                next,
                changes,
                history: moved,
                action,
            } => {
                let d = deal::Model {
                    version: read.version + 1,
                    updated_at: stamp,
                    ..next
                };
                let stage_fields = ["stageId", "status", "closedAt", "lostReason"];
                let other_fields = changes.fields().any(|f| !stage_fields.contains(&f));
                if other_fields || moved.is_none() {
                    events.push(deal_event(EventKind::DealUpdated, &d, &changes, None));
                }
                if let Some(h) = &moved {
                    events.push(deal_event(
                        EventKind::DealStageChanged,
                        &d,
                        &changes,
                        Some(h),
                    ));
                    if let Some(kind) = closing_event(d.status) {
                        events.push(deal_event(kind, &d, &changes, Some(h)));
                    }
                    history.push((d.id, h.clone()));
                }
                audit.push((d.id, action, changes));
                saved.push(d);
            }
        }
    }
    insert_rows(
        tx,
        "deal_stage_change",
        &[
            "deal_id",
            "from_stage_id",
            "to_stage_id",
            "changed_at",
            "actor",
        ],
        history
            .into_iter()
            .map(|(id, h)| {
                vec![
                    SqlValue::from(id),
                    h.from.into(),
                    h.to.into(),
                    h.at.into(),
                    actor.subject.clone().into(),
                ]
            })
            .collect(),
    )
    .await?;
    insert_rows(
        tx,
        "audit_entry",
        &[
            "at",
            "actor",
            "action",
            "entity_type",
            "entity_id",
            "changes",
        ],
        audit
            .into_iter()
            .map(|(id, action, changes)| {
                vec![
                    SqlValue::from(stamp),
                    actor.subject.clone().into(),
                    action.into(),
                    "Deal".into(),
                    id.to_string().into(),
                    changes.to_json().into(),
                ]
            })
            .collect(),
    )
    .await?;
    outbox::enqueue_many(tx, events).await?;
    Ok(saved)
}

fn closing_event(status: DealStatus) -> Option<EventKind> {
    match status {
        DealStatus::Won => Some(EventKind::DealWon),
        DealStatus::Lost => Some(EventKind::DealLost),
        DealStatus::Open => None,
    }
}

fn deal_event(
    kind: EventKind,
    d: &deal::Model,
    changes: &Changes,
    moved: Option<&HistoryRow>,
) -> Event {
    let stage_change = moved.map(|h| {
        json!({
            "fromStageId": h.from.map(|s| s.to_string()),
            "toStageId": h.to.to_string(),
            "at": h.at,
        })
    });
    Event::new(
        kind,
        "Deal",
        d.id,
        json!({
            "deal": deal_json(d),
            "changes": changes.as_value(),
            "stageChange": stage_change,
        }),
    )
}
