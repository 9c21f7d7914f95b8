//! Forecast submissions (intuitive forecasting): a rep's call for a period
//! and category, or someone's judgement of it (docs/design.md, Forecast
//! calls). Rows are never overwritten; the latest submitted before the end
//! of a day is the one that counts as of that day.
//!
//! Who may submit (docs/design.md, Roles): a REP its own PERSONAL call
//! only (TEAM is FORBIDDEN), a MANAGER for itself and its team
//! (transitively), PERSONAL or TEAM, OPS, ADMIN and INTEGRATION for any
//! rep; VIEWER nothing. Another rep's number out of reach is FORBIDDEN (a
//! write the role may not make).
//!
//! Kind: CALL when the rep's own token (REP or MANAGER) makes it, and for
//! INTEGRATION, which imports calls made elsewhere; ADJUSTMENT when a
//! manager above the rep, OPS or ADMIN makes it. `submittedBy` is the
//! token's subject. The period is a month, quarter, year or range (an ISO
//! week is BAD_USER_INPUT: no roll-up is made of weeks). `submittedAt` backfills a
//! call made elsewhere and only OPS, ADMIN and INTEGRATION may pass it; a
//! REP or MANAGER passing it is FORBIDDEN (the field is a privilege, not a
//! malformed value). A submittedAt in the future is BAD_USER_INPUT.
//! Submissions are read (forecastSubmissions, REP_SUBMITTED) by the metric
//! readers in their scope; INTEGRATION writes them but does not read them.
use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use sea_orm::{
    ActiveEnum, ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, Set,
};

use entity::enums::{ForecastCategory, SubmissionKind, SubmissionScope};
use entity::{forecast_submission, rep};

use crate::auth::{Principal, Role};
use crate::clock;
use crate::db::begin_write;
use crate::domain::money::{from_cents, to_cents};
use crate::domain::period::{Period, PeriodKind};
use crate::error::{AppError, AppResult};
use crate::service::access::{DealScope, METRIC_READERS};
use crate::service::audit::{self, Changes};
use crate::service::{optional_text, referenced};

/// Roles that submit forecast calls (REP and MANAGER within their scope).
pub const SUBMITTERS: &[Role] = &[
    Role::Admin,
    Role::Ops,
    Role::Integration,
    Role::Manager,
    Role::Rep,
];
/// Roles that may backfill `submittedAt`.
pub const BACKFILLERS: &[Role] = &[Role::Admin, Role::Ops, Role::Integration];
const MAX_NOTE: usize = 2_000;
/// Tolerated clock difference for a backfilled submittedAt.
const CLOCK_SKEW: Duration = Duration::minutes(5);

#[derive(Debug, Clone)]
pub struct NewSubmission {
    pub rep_id: Option<i64>,
    pub period: Period,
    pub category: ForecastCategory,
    pub amount: Decimal,
    pub note: Option<String>,
    pub submitted_at: Option<DateTime<Utc>>,
    /// Default PERSONAL.
    pub scope: Option<SubmissionScope>,
}

/// A period a number may be submitted for: a month, quarter, year or range.
pub fn check_call_period(period: &Period, field: &str) -> AppResult<()> {
    if period.kind() == PeriodKind::IsoWeek {
        return Err(AppError::bad_input(format!(
            "{field} must be a month, quarter, year or range, not a week ({period})"
        )));
    }
    Ok(())
}

/// CALL when the rep's own token (or an integration importing calls)
/// makes it, ADJUSTMENT otherwise.
fn kind_of(actor: &Principal, rep_id: i64) -> SubmissionKind {
    match actor.role {
        Role::Integration => SubmissionKind::Call,
        Role::Rep | Role::Manager if actor.rep_id == Some(rep_id) => SubmissionKind::Call,
        _ => SubmissionKind::Adjustment,
    }
}

/// Records a call (never replacing an earlier one), with an audit entry.
pub async fn submit(
    db: &DatabaseConnection,
    actor: &Principal,
    input: NewSubmission,
) -> AppResult<forecast_submission::Model> {
    actor.require(SUBMITTERS)?;
    if input.submitted_at.is_some() && !BACKFILLERS.contains(&actor.role) {
        return Err(AppError::forbidden(
            "only OPS, ADMIN and INTEGRATION may set submittedAt",
        ));
    }
    let rep_id = match (input.rep_id, actor.rep_id) {
        (Some(id), _) => id,
        (None, Some(own)) => own,
        (None, None) => {
            return Err(AppError::bad_input(
                "repId is required: the caller has no rep of its own",
            ))
        }
    };
    let scope = actor.scope();
    let submission_scope = input.scope.unwrap_or(SubmissionScope::Personal);
    if let DealScope::Owner(own) = scope {
        if own != rep_id {
            return Err(AppError::forbidden("a rep submits its own forecast only"));
        }
        if submission_scope == SubmissionScope::Team {
            return Err(AppError::forbidden(
                "scope: a rep calls its own PERSONAL number; TEAM adjustments are for managers",
            ));
        }
    }
    check_call_period(&input.period, "period")?;
    let cents = to_cents(input.amount, "amount")?;
    let note = optional_text(input.note.as_deref(), "note", MAX_NOTE)?;
    let now = clock::now();
    let submitted_at = match input.submitted_at {
        Some(t) => clock::truncate_micros(clock::check_instant(t, "submittedAt")?),
        None => now,
    };
    if submitted_at > now + CLOCK_SKEW {
        return Err(AppError::bad_input("submittedAt must not be in the future"));
    }
    let tx = begin_write(db).await?;
    referenced::<rep::Entity>(&tx, rep_id, "repId").await?;
    if let Some(cond) = scope.rep_condition("rep.id", tx.get_database_backend()) {
        let in_team = rep::Entity::find_by_id(rep_id)
            .filter(cond)
            .one(&tx)
            .await?
            .is_some();
        if !in_team {
            return Err(AppError::forbidden(
                "a manager submits forecasts for its team only",
            ));
        }
    }
    let model = forecast_submission::ActiveModel {
        rep_id: Set(rep_id),
        period: Set(input.period.to_string()),
        period_start: Set(input.period.start()),
        period_end: Set(input.period.end()),
        category: Set(input.category),
        amount_cents: Set(cents),
        note: Set(note),
        submitted_at: Set(submitted_at),
        submitted_by: Set(actor.subject.clone()),
        kind: Set(kind_of(actor, rep_id)),
        scope: Set(submission_scope),
        ..Default::default()
    }
    .insert(&tx)
    .await?;
    let mut c = Changes::new();
    c.created("repId", &rep_id)
        .created("period", &model.period)
        .created("category", &model.category.to_value())
        .created("amount", &from_cents(cents))
        .created("note", &model.note)
        .created("submittedAt", &model.submitted_at)
        .created("kind", &model.kind.to_value())
        .created("scope", &model.scope.to_value());
    audit::record(
        &tx,
        &actor.subject,
        "submitForecast",
        "ForecastSubmission",
        model.id,
        &c,
    )
    .await?;
    tx.commit().await?;
    Ok(model)
}

/// Every call for exactly the period's range, of the visible reps (or one
/// of them), newest first.
pub async fn list(
    db: &impl ConnectionTrait,
    actor: &Principal,
    period: &Period,
    rep_id: Option<i64>,
) -> AppResult<Vec<forecast_submission::Model>> {
    actor.require(METRIC_READERS)?;
    let mut q = forecast_submission::Entity::find()
        .filter(forecast_submission::Column::PeriodStart.eq(period.start()))
        .filter(forecast_submission::Column::PeriodEnd.eq(period.end()));
    if let Some(cond) = actor
        .scope()
        .rep_condition("forecast_submission.rep_id", db.get_database_backend())
    {
        q = q.filter(cond);
    }
    if let Some(r) = rep_id {
        q = q.filter(forecast_submission::Column::RepId.eq(r));
    }
    Ok(q.order_by_desc(forecast_submission::Column::SubmittedAt)
        .order_by_desc(forecast_submission::Column::Id)
        .all(db)
        .await?)
}
