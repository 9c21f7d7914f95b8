//! Idempotent writes by externalId for integrations: upsertDeal and
//! bulkUpsertDeals.
//!
//! An input is matched to the deal with its externalId. No deal: it is
//! created (as createDeal would). A deal: the fields given replace the
//! stored ones and fields left out keep their values; a different `stageId`
//! is a stage move recorded in the history like moveDealStage, at
//! `stageChangedAt` (else closedAt for a WON or LOST stage, else now), so a
//! backfill from another CRM can replay when each move happened. openedAt is
//! only read when the deal is created. An input that changes nothing writes
//! nothing: the deal keeps its version and updatedAt, and the result says
//! `unchanged`.
//!
//! Concurrency: inputs are matched with one SELECT, but nothing relies on
//! that read to stay true. A concurrent writer that inserts the same
//! externalId first makes our INSERT fail on the unique index
//! `uq_deal_external_id`, and one that updates the deal first makes our
//! version-guarded UPDATE miss; either way the transaction is rolled back and
//! the whole call is planned again against the new state (where the deal
//! now exists, or has its new version), so concurrent upserts of one
//! externalId end with exactly one deal.
//!
//! Bulk: every input is validated on its own against references loaded once
//! for the batch; a bad one is reported with its index and code and the
//! others are written together by `service::deal_write` with a fixed number
//! of statements.
use std::collections::HashMap;

use sea_orm::{ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter};

use entity::deal;
use entity::enums::StageKind;

use super::access::DEAL_WRITERS;
use super::deal::{
    check_backfill, check_currency, check_version, plan_create, plan_move, plan_update,
    revision_time, DealRules, NewDeal, RefIds, Refs, StageMove,
};
use super::deal_write::{self, DealWrite, WriteError};
use super::optional_text;
use crate::auth::Principal;
use crate::clock;
use crate::db::begin_write;
use crate::error::{AppError, AppResult};

/// The most inputs one bulkUpsertDeals call takes.
pub const MAX_BULK: usize = 1_000;

/// Times a call is planned again after losing a race to another writer.
const MAX_ATTEMPTS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated,
    Unchanged,
}

/// A bulk input that was not applied.
#[derive(Debug, Clone)]
pub struct BulkError {
    pub index: usize,
    pub external_id: Option<String>,
    pub error: AppError,
}

#[derive(Debug, Clone, Default)]
pub struct BulkSummary {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub errors: Vec<BulkError>,
}

type ItemResult = AppResult<(deal::Model, Outcome)>;

/// Creates, updates or leaves unchanged the deal with the input's
/// externalId. `expected_version`, when given, must match the stored deal
/// (CONFLICT otherwise, also when no deal has this externalId yet).
pub async fn upsert(
    db: &DatabaseConnection,
    actor: &Principal,
    rules: &DealRules,
    input: NewDeal,
    expected_version: Option<i32>,
) -> AppResult<(deal::Model, Outcome)> {
    actor.require(DEAL_WRITERS)?;
    run(
        db,
        actor,
        rules,
        "upsertDeal",
        vec![Ok(input)],
        expected_version,
    )
    .await?
    .pop()
    .ok_or_else(|| AppError::internal("the upsert produced no result"))?
}

/// One input of a bulk upsert: inputs that could not even be parsed are
/// passed as errors so their index (and externalId) is reported.
#[derive(Debug, Clone)]
pub struct BulkInput {
    pub external_id: Option<String>,
    pub deal: AppResult<NewDeal>,
}

/// Applies up to [`MAX_BULK`] upserts; each input succeeds or fails on its
/// own.
pub async fn bulk(
    db: &DatabaseConnection,
    actor: &Principal,
    rules: &DealRules,
    inputs: Vec<BulkInput>,
) -> AppResult<BulkSummary> {
    actor.require(DEAL_WRITERS)?;
    if inputs.len() > MAX_BULK {
        return Err(AppError::bad_input(format!(
            "at most {MAX_BULK} inputs per call, got {}",
            inputs.len()
        )));
    }
    let (keys, inputs): (Vec<_>, Vec<_>) =
        inputs.into_iter().map(|i| (i.external_id, i.deal)).unzip();
    let results = run(db, actor, rules, "bulkUpsertDeals", inputs, None).await?;
    let mut summary = BulkSummary::default();
    for (index, (result, external_id)) in results.into_iter().zip(keys).enumerate() {
        match result {
            Ok((_, Outcome::Created)) => summary.created += 1,
            Ok((_, Outcome::Updated)) => summary.updated += 1,
            Ok((_, Outcome::Unchanged)) => summary.unchanged += 1,
            Err(error) => summary.errors.push(BulkError {
                index,
                external_id,
                error,
            }),
        }
    }
    Ok(summary)
}

/// Plans and writes the inputs in one transaction, again from the start
/// when another writer got to one of the deals first.
async fn run(
    db: &DatabaseConnection,
    actor: &Principal,
    rules: &DealRules,
    action: &'static str,
    inputs: Vec<AppResult<NewDeal>>,
    expected_version: Option<i32>,
) -> AppResult<Vec<ItemResult>> {
    let mut lost = None;
    for _ in 0..MAX_ATTEMPTS {
        let tx = begin_write(db).await?;
        match attempt(&tx, actor, rules, action, &inputs, expected_version).await {
            Ok(results) => {
                tx.commit().await?;
                return Ok(results);
            }
            Err(WriteError::Raced(e)) => {
                tx.rollback().await?;
                tracing::debug!(error = %e, "upsert raced another writer; planning again");
                lost = Some(e);
            }
            Err(WriteError::Failed(e)) => return Err(e),
        }
    }
    Err(lost.unwrap_or_else(|| AppError::conflict("the deals kept changing: retry")))
}

#[allow(clippy::large_enum_variant)] // one per input, consumed at once
enum Plan {
    Write(DealWrite, Outcome),
    Unchanged(deal::Model),
}

async fn attempt(
    tx: &DatabaseTransaction,
    actor: &Principal,
    rules: &DealRules,
    action: &'static str,
    inputs: &[AppResult<NewDeal>],
    expected_version: Option<i32>,
) -> Result<Vec<ItemResult>, WriteError> {
    let now = clock::now();
    let mut results: Vec<Option<ItemResult>> = vec![None; inputs.len()];

    // Every input needs its own externalId.
    let mut first_at: HashMap<String, usize> = HashMap::new();
    let mut valid: Vec<(usize, String, &NewDeal)> = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.iter().enumerate() {
        let keyed = input.as_ref().map_err(Clone::clone).and_then(|d| {
            let key = optional_text(d.external_id.as_deref(), "externalId", 200)?
                .ok_or_else(|| AppError::bad_input("externalId is required for an upsert"))?;
            if let Some(first) = first_at.get(&key) {
                return Err(AppError::bad_input(format!(
                    "externalId {key:?} appears twice in this call (first at index {first})"
                )));
            }
            first_at.insert(key.clone(), i);
            Ok((key, d))
        });
        match keyed {
            Ok((key, d)) => valid.push((i, key, d)),
            Err(e) => results[i] = Some(Err(e)),
        }
    }

    // The deals these externalIds already name, in one query.
    let existing: HashMap<String, deal::Model> = if valid.is_empty() {
        HashMap::new()
    } else {
        deal::Entity::find()
            .filter(deal::Column::ExternalId.is_in(valid.iter().map(|(_, k, _)| k.clone())))
            .all(tx)
            .await?
            .into_iter()
            .filter_map(|d| d.external_id.clone().map(|k| (k, d)))
            .collect()
    };

    let mut ids = RefIds::default();
    for (_, key, d) in &valid {
        ids.add_new(d);
        if let Some(current) = existing.get(key) {
            ids.reps.insert(current.owner_id);
        }
    }
    let refs = Refs::load(tx, actor, &ids).await?;

    let mut writes = Vec::new();
    let mut written = Vec::new();
    for (i, key, d) in valid {
        let current = existing.get(&key);
        let planned = check_backfill(actor, d.effective_at)
            .and_then(|()| plan(&refs, rules, d, current, expected_version, action, now));
        match planned {
            Ok(Plan::Write(w, outcome)) => {
                writes.push(w);
                written.push((i, outcome));
            }
            Ok(Plan::Unchanged(m)) => results[i] = Some(Ok((m, Outcome::Unchanged))),
            Err(e) => results[i] = Some(Err(e)),
        }
    }
    let saved = deal_write::apply(tx, actor, writes).await?;
    for ((i, outcome), d) in written.into_iter().zip(saved) {
        results[i] = Some(Ok((d, outcome)));
    }
    Ok(results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(AppError::internal("an input was not planned"))))
        .collect())
}

/// Decides what one input does to its deal (see the module comment).
fn plan(
    refs: &Refs,
    rules: &DealRules,
    input: &NewDeal,
    current: Option<&deal::Model>,
    expected_version: Option<i32>,
    action: &'static str,
    now: chrono::DateTime<chrono::Utc>,
) -> AppResult<Plan> {
    let Some(current) = current else {
        if let Some(v) = expected_version {
            return Err(AppError::conflict(format!(
                "no deal has this externalId yet, so it is not at version {v}"
            )));
        }
        let planned = plan_create(refs, rules, input, now)?;
        return Ok(Plan::Write(
            DealWrite::create(planned, action),
            Outcome::Created,
        ));
    };
    if !refs.may_change(current) {
        return Err(AppError::not_found("deal"));
    }
    check_version(current, expected_version)?;
    check_currency(input.currency.as_deref(), rules)?;
    let (mut next, mut changes) = plan_update(refs, current, &input.as_changes())?;
    let target = refs.stage(input.stage_id.unwrap_or(current.stage_id))?;
    if input.closed_at.is_some() && target.kind == StageKind::Open {
        return Err(AppError::bad_input(
            "closedAt is only for deals in a WON or LOST stage",
        ));
    }
    let mut history = None;
    // A move takes effect when the stage was entered; effectiveAt, when
    // given, must agree with it and otherwise dates the move.
    let entered = match (input.stage_changed_at, input.closed_at) {
        (Some(a), Some(b)) if a != b => return Err(AppError::bad_input(
            "closedAt and stageChangedAt disagree: a closing move closes the deal when it happens",
        )),
        (a, b) => a.or(b),
    };
    let valid_from = revision_time(current, input.effective_at, now)?;
    let moves = target.id != current.stage_id;
    if let (true, Some(e), Some(a)) = (moves, input.effective_at, entered) {
        if clock::truncate_micros(e) != clock::truncate_micros(a) {
            return Err(AppError::bad_input(
                "effectiveAt and stageChangedAt (or closedAt) disagree: a stage move takes effect when the stage is entered",
            ));
        }
    }
    let mv = StageMove {
        stage_id: target.id,
        at: entered.or(input.effective_at),
        lost_reason: input.lost_reason.clone(),
        forecast_category: input.forecast_category,
    };
    match plan_move(refs, &next, &mv, now)? {
        Some(moved) => {
            next = moved.next;
            changes.merge(moved.changes);
            history = Some(moved.history);
        }
        None => {
            // Same stage: a LOST deal's reason may still be corrected.
            let reason = optional_text(input.lost_reason.as_deref(), "lostReason", 2_000)?;
            if reason.is_some() && reason != next.lost_reason {
                changes.field("lostReason", &next.lost_reason, &reason);
                next.lost_reason = reason;
            }
            next.valid_from = valid_from;
        }
    }
    if changes.is_empty() {
        return Ok(Plan::Unchanged(current.clone()));
    }
    Ok(Plan::Write(
        DealWrite::update(current.clone(), next, changes, history, action),
        Outcome::Updated,
    ))
}

/// The trimmed externalId of a bulk input, None when missing or blank.
pub fn external_key(external_id: Option<&str>) -> Option<String> {
    external_id
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Bulk inputs as read: each input with its position, and the summary
/// holding the ones that could not be read.
pub fn split_bulk<T>(items: Vec<(Option<String>, AppResult<T>)>) -> (Vec<(usize, T)>, BulkSummary) {
    let mut summary = BulkSummary::default();
    let mut inputs = Vec::with_capacity(items.len());
    for (index, (external_id, item)) in items.into_iter().enumerate() {
        match item {
            Ok(i) => inputs.push((index, i)),
            Err(error) => summary.errors.push(BulkError {
                index,
                external_id,
                error,
            }),
        }
    }
    (inputs, summary)
}

/// Plans each bulk input on its own (an externalId is required and may
/// appear once per call), counting outcomes and errors in `summary`;
/// returns the writes to apply together.
pub fn plan_bulk<T, W>(
    inputs: &[(usize, T)],
    key: impl Fn(&T) -> Option<&str>,
    what: &str,
    summary: &mut BulkSummary,
    mut plan: impl FnMut(&T, &str) -> AppResult<(Option<W>, Outcome)>,
) -> Vec<W> {
    let mut writes = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (index, input) in inputs {
        let ext = external_key(key(input));
        let planned = match &ext {
            None => Err(AppError::bad_input(format!(
                "externalId is required to upsert {what}"
            ))),
            Some(e) if !seen.insert(e.clone()) => Err(AppError::bad_input(format!(
                "externalId {e:?} appears twice in this call"
            ))),
            Some(e) => plan(input, e),
        };
        match planned {
            Ok((Some(w), outcome)) => {
                match outcome {
                    Outcome::Created => summary.created += 1,
                    _ => summary.updated += 1,
                }
                writes.push(w);
            }
            Ok((None, _)) => summary.unchanged += 1,
            Err(error) => summary.errors.push(BulkError {
                index: *index,
                external_id: ext,
                error,
            }),
        }
    }
    writes
}
