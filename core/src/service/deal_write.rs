//! The one write path of deals. createDeal, updateDeal, moveDealStage,
//! upsertDeal and bulkUpsertDeals validate with the planners in
//! `service::deal`, then hand their writes here, which applies any number of
//! them with a fixed number of statements: the change-clock stamp, one
//! multi-row INSERT ... RETURNING for new deals, one UPDATE ... FROM (VALUES
//! ...) for changed ones (each row still checked against the version that
//! was read), and multi-row INSERTs for stage history, audit entries and
//! outbox events, all in the caller's transaction.
use sea_orm::{
    ActiveEnum, ConnectionTrait, DatabaseTransaction, DbErr, FromQueryResult, Value as SqlValue,
};
use serde_json::json;

use entity::deal;
use entity::enums::DealStatus;

use super::audit::Changes;
use super::deal_change::{created_changes, HistoryRow, PlannedCreate};
use super::outbox::{self, deal_json, Event, EventKind};
use super::sync;
use crate::auth::Principal;
use crate::db::{insert_rows, insert_statement, rows_per_statement, rows_relation, ColType, Sql};
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

const INSERT_COLUMNS: [(&str, ColType); 19] = [
    ("external_id", ColType::Text),
    ("name", ColType::Text),
    ("amount_cents", ColType::BigInt),
    ("currency", ColType::Text),
    ("owner_id", ColType::BigInt),
    ("account_id", ColType::BigInt),
    ("territory_id", ColType::BigInt),
    ("stage_id", ColType::BigInt),
    ("status", ColType::Text),
    ("forecast_category", ColType::Text),
    ("source", ColType::Text),
    ("playbook_id", ColType::BigInt),
    ("opened_at", ColType::Timestamp),
    ("expected_close_date", ColType::Date),
    ("closed_at", ColType::Timestamp),
    ("lost_reason", ColType::Text),
    ("version", ColType::Int),
    ("created_at", ColType::Timestamp),
    ("updated_at", ColType::Timestamp),
];

/// The columns an update rewrites, after the id and the version read
/// (named `v_id` and `v_version`, apart from the deal's own).
const UPDATE_COLUMNS: [(&str, ColType); 15] = [
    ("v_id", ColType::BigInt),
    ("v_version", ColType::Int),
    ("name", ColType::Text),
    ("amount_cents", ColType::BigInt),
    ("owner_id", ColType::BigInt),
    ("account_id", ColType::BigInt),
    ("territory_id", ColType::BigInt),
    ("stage_id", ColType::BigInt),
    ("status", ColType::Text),
    ("forecast_category", ColType::Text),
    ("source", ColType::Text),
    ("playbook_id", ColType::BigInt),
    ("expected_close_date", ColType::Date),
    ("closed_at", ColType::Timestamp),
    ("lost_reason", ColType::Text),
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

#[derive(FromQueryResult)]
struct InsertedRow {
    id: i64,
    external_id: Option<String>,
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

    // New deals: one INSERT ... RETURNING id per chunk; ids are assigned
    // in row order, so sorted ids line up with the creates (checked by
    // externalId below).
    let creates: Vec<&deal::Model> = writes
        .iter()
        .filter_map(|w| match w {
            DealWrite::Create { row, .. } => Some(row),
            _ => None,
        })
        .collect();
    let mut inserted = Vec::with_capacity(creates.len());
    for chunk in creates.chunks(rows_per_statement(backend, INSERT_COLUMNS.len())) {
        let rows: Vec<Vec<SqlValue>> = chunk
            .iter()
            .map(|d| {
                vec![
                    d.external_id.clone().into(),
                    d.name.clone().into(),
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
                ]
            })
            .collect();
        let stmt = insert_statement(
            backend,
            "deal",
            &INSERT_COLUMNS,
            &rows,
            " RETURNING id, external_id",
        );
        let mut ids = InsertedRow::find_by_statement(stmt)
            .all(tx)
            .await
            .map_err(|e| {
                if is_external_id_race(&e) {
                    WriteError::Raced(e.into())
                } else {
                    WriteError::Failed(e.into())
                }
            })?;
        if ids.len() != chunk.len() {
            return Err(AppError::internal("INSERT returned fewer deals than it wrote").into());
        }
        ids.sort_by_key(|r| r.id);
        for (d, r) in chunk.iter().zip(ids) {
            if r.external_id != d.external_id {
                return Err(AppError::internal("inserted deals came back out of order").into());
            }
            inserted.push(deal::Model {
                id: r.id,
                version: 1,
                created_at: stamp,
                updated_at: stamp,
                ..(*d).clone()
            });
        }
    }

    // Changed deals: one UPDATE per chunk, each row guarded by its version.
    let updates: Vec<(&deal::Model, &deal::Model)> = writes
        .iter()
        .filter_map(|w| match w {
            DealWrite::Update { read, next, .. } => Some((read, next)),
            _ => None,
        })
        .collect();
    for chunk in updates.chunks(rows_per_statement(backend, UPDATE_COLUMNS.len())) {
        let rows: Vec<Vec<SqlValue>> = chunk
            .iter()
            .map(|(read, next)| {
                let mut row = vec![SqlValue::from(read.id), read.version.into()];
                row.extend(updated_values(next));
                row
            })
            .collect();
        let set = UPDATE_COLUMNS[2..]
            .iter()
            .map(|(c, _)| format!("{c} = v.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut sql = Sql::new("WITH ");
        sql.append(&rows_relation(backend, "v", &UPDATE_COLUMNS, &rows))
            .push(&format!(
                " UPDATE deal SET {set}, version = deal.version + 1, updated_at = "
            ))
            .bind(stamp)
            .push(" FROM v WHERE deal.id = v.v_id AND deal.version = v.v_version RETURNING id");
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

    // Every deal as written, with what the history, audit and outbox need
    // (events only of the kinds some webhook wants).
    let subscribers = outbox::Subscribers::load(tx).await?;
    let mut events = Vec::new();
    let mut event =
        |kind: EventKind, d: &deal::Model, changes: &Changes, moved: Option<&HistoryRow>| {
            if subscribers.wants(kind) {
                events.push(deal_event(kind, d, changes, moved));
            }
        };
    let mut created = inserted.into_iter();
    let mut saved = Vec::with_capacity(writes.len());
    let mut history = Vec::new();
    let mut audit = Vec::new();
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
                event(EventKind::DealCreated, &d, &changes, None);
                if let Some(kind) = closing_event(d.status) {
                    event(kind, &d, &changes, None);
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
                    event(EventKind::DealUpdated, &d, &changes, None);
                }
                if let Some(h) = &moved {
                    event(EventKind::DealStageChanged, &d, &changes, Some(h));
                    if let Some(kind) = closing_event(d.status) {
                        event(kind, &d, &changes, Some(h));
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
            ("deal_id", ColType::BigInt),
            ("from_stage_id", ColType::BigInt),
            ("to_stage_id", ColType::BigInt),
            ("changed_at", ColType::Timestamp),
            ("actor", ColType::Text),
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
            ("at", ColType::Timestamp),
            ("actor", ColType::Text),
            ("action", ColType::Text),
            ("entity_type", ColType::Text),
            ("entity_id", ColType::Text),
            ("changes", ColType::Text),
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
    outbox::enqueue_to(tx, &subscribers, events).await?;
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
