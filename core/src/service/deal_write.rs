//! The one write path of deals. createDeal, updateDeal, moveDealStage,
//! upsertDeal and bulkUpsertDeals validate with the planners in
//! `service::deal`, then hand their writes here, which applies any number of
//! them with a fixed number of statements: the change-clock stamp, one
//! multi-row INSERT ... RETURNING for new deals, one UPDATE ... FROM (VALUES
//! ...) for changed ones (each row still checked against the version that
//! was read), and multi-row INSERTs for revisions, stage history, audit
//! entries and outbox events, all in the caller's transaction.
//!
//! Every deal written gets one `deal_revision` per new version (a deal
//! created in a later stage gets two: as opened, then as it is), stamped
//! with the deal's `valid_from` as planned (openedAt, a move's `at`, a
//! backfill's effectiveAt, else now) and recorded at the change-clock stamp.
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, FromQueryResult, Value as SqlValue};
use serde_json::json;

use entity::enums::DealStatus;
use entity::enums::ForecastCategory;
use entity::{audit_entry, deal, deal_revision, deal_stage_change};

use super::audit::Changes;
use super::deal_change::{created_changes, HistoryRow, PlannedCreate};
use super::outbox::{self, deal_json, Event, EventKind};
use super::sync;
use crate::auth::Principal;
use crate::db::{
    insert_models, insert_statement, rows_per_statement, rows_relation, ColType, RowShape, Sql,
};
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

/// What a new deal's INSERT leaves to the database: the id.
const INSERT_SKIP: [deal::Column; 1] = [deal::Column::Id];

/// What an update never rewrites: identity and provenance (id, externalId,
/// currency, openedAt, createdAt, the amount it was created with), the
/// latest activity (the activity writers keep it), and the version and
/// updated_at, which the UPDATE sets itself. Every other column of the entity is rewritten.
const UPDATE_SKIP: [deal::Column; 9] = [
    deal::Column::Id,
    deal::Column::FirstAmountCents,
    deal::Column::LastActivityAt,
    deal::Column::ExternalId,
    deal::Column::Currency,
    deal::Column::OpenedAt,
    deal::Column::Version,
    deal::Column::CreatedAt,
    deal::Column::UpdatedAt,
];

/// The id and version read, ahead of the updated columns (named `v_id` and
/// `v_version`, apart from the deal's own).
const UPDATE_GUARD: [(&str, ColType); 2] = [("v_id", ColType::BigInt), ("v_version", ColType::Int)];

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
    // PostgreSQL writes the revision of each deal as written in the INSERT
    // or UPDATE statement itself (a data-modifying CTE over its RETURNING
    // rows); SQLite has no such CTE, so there they are inserted after.
    let revisions_in_sql = backend == sea_orm::DatabaseBackend::Postgres;
    let mut writes = writes;
    for w in &mut writes {
        match w {
            DealWrite::Update {
                read,
                next,
                history,
                ..
            } => {
                if next.valid_from < read.valid_from {
                    return Err(AppError::internal(
                        "a deal revision was planned before the latest one",
                    )
                    .into());
                }
                set_risk_facts_on_update(read, next, history.as_ref());
            }
            DealWrite::Create { row, history, .. } => set_risk_facts_on_create(row, history),
        }
    }

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
    let insert = RowShape::<deal::Entity>::all_but(&INSERT_SKIP);
    let mut inserted = Vec::with_capacity(creates.len());
    for chunk in creates.chunks(rows_per_statement(backend, insert.columns().len())) {
        let chunk: Vec<deal::Model> = chunk
            .iter()
            .map(|d| deal::Model {
                created_at: stamp,
                updated_at: stamp,
                ..(*d).clone()
            })
            .collect();
        let rows = insert.rows(&chunk);
        let stmt = if revisions_in_sql {
            // The new deals' revisions (as they are written) come from the
            // inserted rows in the same statement.
            let names = insert.names().join(", ");
            let mut sql = Sql::new("WITH ");
            sql.append(&rows_relation(backend, "src", insert.columns(), &rows))
                .push(&format!(
                    ", u AS (INSERT INTO deal ({names}) SELECT {names} FROM src RETURNING *)"
                ));
            push_revisions_from_u(&mut sql, stamp, actor);
            sql.push(" SELECT id, external_id FROM u");
            sql.statement(backend)
        } else {
            insert_statement(
                backend,
                "deal",
                insert.columns(),
                &rows,
                " RETURNING id, external_id",
            )
        };
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
        for (d, r) in chunk.into_iter().zip(ids) {
            if r.external_id != d.external_id {
                return Err(AppError::internal("inserted deals came back out of order").into());
            }
            inserted.push(deal::Model { id: r.id, ..d });
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
    let update = RowShape::<deal::Entity>::all_but(&UPDATE_SKIP);
    let update_columns: Vec<(&str, ColType)> = UPDATE_GUARD
        .iter()
        .chain(update.columns())
        .copied()
        .collect();
    for chunk in updates.chunks(rows_per_statement(backend, update_columns.len())) {
        let rows: Vec<Vec<SqlValue>> = chunk
            .iter()
            .map(|(read, next)| {
                let mut row = vec![SqlValue::from(read.id), read.version.into()];
                row.extend(update.values(next));
                row
            })
            .collect();
        let set = update
            .names()
            .iter()
            .map(|c| format!("{c} = v.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut sql = Sql::new("WITH ");
        sql.append(&rows_relation(backend, "v", &update_columns, &rows));
        if revisions_in_sql {
            // The revisions come from the updated rows themselves, in the
            // same statement: no second round trip carrying every value again.
            sql.push(&format!(
                ", u AS (UPDATE deal SET {set}, version = deal.version + 1, updated_at = "
            ))
            .bind(stamp)
            .push(
                " FROM v WHERE deal.id = v.v_id AND deal.version = v.v_version RETURNING deal.*)",
            );
            push_revisions_from_u(&mut sql, stamp, actor);
            sql.push(" SELECT id FROM u");
        } else {
            sql.push(&format!(
                " UPDATE deal SET {set}, version = deal.version + 1, updated_at = "
            ))
            .bind(stamp)
            .push(" FROM v WHERE deal.id = v.v_id AND deal.version = v.v_version RETURNING id");
        }
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
    let mut revisions = Vec::new();
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
                if d.version == 2 {
                    // Created in a later stage: first as it was opened.
                    if let Some(first) = rows.first() {
                        revisions.push(opened_revision(&d, first, actor, stamp));
                    }
                }
                if !revisions_in_sql {
                    revisions.push(revision(&d, actor, stamp));
                }
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
                if !revisions_in_sql {
                    revisions.push(revision(&d, actor, stamp));
                }
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
    let history: Vec<deal_stage_change::Model> = history
        .into_iter()
        .map(|(deal_id, h)| deal_stage_change::Model {
            id: 0,
            deal_id,
            from_stage_id: h.from,
            to_stage_id: h.to,
            changed_at: h.at,
            actor: Some(actor.subject.clone()),
        })
        .collect();
    insert_models::<deal_stage_change::Entity>(tx, &[deal_stage_change::Column::Id], &history)
        .await?;
    insert_models::<deal_revision::Entity>(tx, &[deal_revision::Column::Id], &revisions).await?;
    let audit: Vec<audit_entry::Model> = audit
        .into_iter()
        .map(|(id, action, changes)| audit_entry::Model {
            id: 0,
            at: stamp,
            actor: actor.subject.clone(),
            action: action.to_owned(),
            entity_type: "Deal".to_owned(),
            entity_id: id.to_string(),
            changes: changes.to_json(),
        })
        .collect();
    insert_models::<audit_entry::Entity>(tx, &[audit_entry::Column::Id], &audit).await?;
    outbox::enqueue_to(tx, &subscribers, events).await?;
    Ok(saved)
}

/// A revision's columns taken from the updated deal row `u` (the same
/// fields `revision()` copies; recorded_at and actor are bound apart).
const REVISION_FROM_DEAL: [(&str, &str); 17] = [
    ("deal_id", "u.id"),
    ("version", "u.version"),
    ("valid_from", "u.valid_from"),
    ("name", "u.name"),
    ("amount_cents", "u.amount_cents"),
    ("owner_id", "u.owner_id"),
    ("account_id", "u.account_id"),
    ("territory_id", "u.territory_id"),
    ("stage_id", "u.stage_id"),
    ("status", "u.status"),
    ("forecast_category", "u.forecast_category"),
    ("source", "u.source"),
    ("playbook_id", "u.playbook_id"),
    ("expected_close_date", "u.expected_close_date"),
    ("closed_at", "u.closed_at"),
    ("lost_reason", "u.lost_reason"),
    ("push_count", "u.push_count"),
];

/// Appends `, r AS (INSERT INTO deal_revision ... SELECT ... FROM u)`: the
/// revision of every row of the CTE `u` (deals as written).
fn push_revisions_from_u(sql: &mut Sql, stamp: chrono::DateTime<chrono::Utc>, actor: &Principal) {
    let cols = REVISION_FROM_DEAL
        .iter()
        .map(|(c, _)| *c)
        .collect::<Vec<_>>()
        .join(", ");
    let vals = REVISION_FROM_DEAL
        .iter()
        .map(|(_, e)| *e)
        .collect::<Vec<_>>()
        .join(", ");
    sql.push(&format!(
        ", r AS (INSERT INTO deal_revision ({cols}, recorded_at, actor) SELECT {vals}, "
    ))
    .bind(stamp)
    .push(", ")
    .bind(actor.subject.clone())
    .push(" FROM u)");
}

/// The risk facts of a new deal (docs/design.md, Deal risk): the amount it
/// is created with, when it entered its stage (its latest stage change into
/// it), no push and no activity yet.
fn set_risk_facts_on_create(row: &mut deal::Model, history: &[HistoryRow]) {
    row.first_amount_cents = Some(row.amount_cents);
    row.stage_entered_at = history
        .iter()
        .filter(|h| h.to == row.stage_id)
        .map(|h| h.at)
        .max();
    row.pushed_at = None;
    row.push_count = 0;
    row.last_activity_at = None;
}

/// The risk facts an update moves: a push counts and is when it took effect
/// (its revision's valid_from), a stage move is when the deal entered its
/// stage. The first amount and the latest activity are never rewritten here
/// (`UPDATE_SKIP`): an activity logged meanwhile keeps its mark.
fn set_risk_facts_on_update(
    read: &deal::Model,
    next: &mut deal::Model,
    moved: Option<&HistoryRow>,
) {
    if is_push(read, next) {
        next.push_count = read.push_count + 1;
        next.pushed_at = Some(next.valid_from);
    } else {
        next.push_count = read.push_count;
        next.pushed_at = read.pushed_at;
    }
    next.stage_entered_at = match moved {
        Some(h) if h.to == next.stage_id => Some(h.at),
        _ => read.stage_entered_at,
    };
}

/// A push: the expected close date of an open deal moved to a later date.
fn is_push(read: &deal::Model, next: &deal::Model) -> bool {
    read.status == DealStatus::Open
        && matches!(
            (read.expected_close_date, next.expected_close_date),
            (Some(a), Some(b)) if b > a
        )
}

/// The revision of a deal as written.
fn revision(
    d: &deal::Model,
    actor: &Principal,
    stamp: chrono::DateTime<chrono::Utc>,
) -> deal_revision::Model {
    deal_revision::Model {
        id: 0,
        deal_id: d.id,
        version: d.version,
        valid_from: d.valid_from,
        recorded_at: stamp,
        actor: actor.subject.clone(),
        name: d.name.clone(),
        amount_cents: d.amount_cents,
        owner_id: d.owner_id,
        account_id: d.account_id,
        territory_id: d.territory_id,
        stage_id: d.stage_id,
        status: d.status,
        forecast_category: d.forecast_category,
        source: d.source,
        playbook_id: d.playbook_id,
        expected_close_date: d.expected_close_date,
        closed_at: d.closed_at,
        lost_reason: d.lost_reason.clone(),
        push_count: d.push_count,
    }
}

/// Version 1 of a deal created in a later stage: open in its first stage
/// from openedAt (the category its stage implies unless it is open).
fn opened_revision(
    d: &deal::Model,
    first: &HistoryRow,
    actor: &Principal,
    stamp: chrono::DateTime<chrono::Utc>,
) -> deal_revision::Model {
    deal_revision::Model {
        version: 1,
        valid_from: first.at,
        stage_id: first.to,
        status: DealStatus::Open,
        forecast_category: if d.status == DealStatus::Open {
            d.forecast_category
        } else {
            ForecastCategory::Pipeline
        },
        closed_at: None,
        lost_reason: None,
        ..revision(d, actor, stamp)
    }
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
            "revision": {
                "version": d.version,
                "validFrom": d.valid_from,
                "changes": changes.field_changes(),
            },
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{IdenStatic, Iterable};

    /// The UPDATE rewrites every deal column but the named immutable ones,
    /// so a new field is updatable unless it is added to `UPDATE_SKIP`; and
    /// the guard columns can never shadow a deal column of the same name.
    #[test]
    fn an_update_rewrites_every_column_but_the_immutable_ones() {
        let update = RowShape::<deal::Entity>::all_but(&UPDATE_SKIP);
        for c in deal::Column::iter() {
            let skipped = UPDATE_SKIP.iter().any(|s| s.as_str() == c.as_str());
            assert_eq!(
                update.names().contains(&c.as_str()),
                !skipped,
                "deal.{}",
                c.as_str()
            );
        }
        assert_eq!(update.names().len(), 17);
        for (guard, _) in UPDATE_GUARD {
            assert!(deal::Column::iter().all(|c| c.as_str() != guard), "{guard}");
        }
        let insert = RowShape::<deal::Entity>::all_but(&INSERT_SKIP);
        assert_eq!(insert.names().len(), 25);
        // The revision an UPDATE writes in SQL names every revision column
        // but its id (recorded_at and actor are bound).
        let mut from_deal: Vec<&str> = REVISION_FROM_DEAL.iter().map(|(c, _)| *c).collect();
        from_deal.extend(["recorded_at", "actor"]);
        from_deal.sort();
        let mut columns: Vec<&str> = deal_revision::Column::iter()
            .map(|c| c.as_str())
            .filter(|c| *c != "id")
            .collect();
        columns.sort();
        assert_eq!(from_deal, columns);
        assert!(!insert.names().contains(&"id"));
    }
}
