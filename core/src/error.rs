//! The crate-wide error type and its mapping to GraphQL error codes. This is
//! the only place codes are assigned; database text never reaches a client.
use std::sync::Arc;

use sea_orm::{DbErr, SqlErr};

#[derive(Debug, Clone, thiserror::Error)]
pub enum AppError {
    #[error("authentication required")]
    Unauthenticated,
    #[error("not allowed: {0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidTransition(String),
    #[error(
        "the plan is released and read-only: start a new revision with reviseSopPlan to change it"
    )]
    PlanLocked,
    #[error("{0}")]
    QueryTooComplex(String),
    #[error("the database is busy, try again")]
    Unavailable,
    #[error("internal error")]
    Internal(#[source] Arc<dyn std::error::Error + Send + Sync>),
}

pub type AppResult<T> = Result<T, AppError>;

/// The text a loader's error starts with when the request's row budget is
/// spent (see graphql::loaders::RowBudget); it maps to QUERY_TOO_COMPLEX.
pub const ROW_BUDGET_EXCEEDED: &str = "row budget exceeded";

impl AppError {
    pub fn bad_input(msg: impl Into<String>) -> Self {
        Self::BadInput(msg.into())
    }
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound(what.into())
    }
    pub fn forbidden(what: impl Into<String>) -> Self {
        Self::Forbidden(what.into())
    }
    pub fn conflict(msg: impl Into<String>) -> Self {
        Self::Conflict(msg.into())
    }
    pub fn internal(msg: impl Into<String>) -> Self {
        let msg: String = msg.into();
        Self::Internal(Arc::new(std::io::Error::other(msg)))
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::BadInput(_) => "BAD_USER_INPUT",
            Self::Conflict(_) => "CONFLICT",
            Self::InvalidTransition(_) => "INVALID_TRANSITION",
            Self::PlanLocked => "PLAN_LOCKED",
            Self::QueryTooComplex(_) => "QUERY_TOO_COMPLEX",
            Self::Unavailable | Self::Internal(_) => "INTERNAL",
        }
    }
}

/// Friendly messages for the named unique constraints, matched against the
/// database's own text (PostgreSQL names the index, SQLite the columns).
const UNIQUE_MESSAGES: &[(&[&str], &str)] = &[
    (
        &["uq_rep_email", "rep.email"],
        "a rep with this email already exists",
    ),
    (
        &["uq_rep_external_id", "rep.external_id"],
        "a rep with this externalId already exists",
    ),
    (
        &["uq_account_external_id", "account.external_id"],
        "an account with this externalId already exists",
    ),
    (
        &["uq_deal_external_id", "deal.external_id"],
        "a deal with this externalId already exists",
    ),
    (
        &["uq_stage_name", "stage.name"],
        "a stage with this name already exists",
    ),
    (
        &["uq_quota_rep_range", "quota.rep_id"],
        "this rep already has a quota for this period",
    ),
    (
        &[
            "uq_sop_plan_previous_revision",
            "sop_plan.previous_revision_id",
        ],
        "this plan has already been revised: revise its latest revision",
    ),
];

impl AppError {
    /// True when the error is the unique violation of the named constraint.
    pub fn is_unique_violation_of(err: &DbErr, constraint: &str) -> bool {
        matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(msg)) if msg.contains(constraint))
    }
}

impl From<DbErr> for AppError {
    fn from(e: DbErr) -> Self {
        match e.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(msg)) => {
                let friendly = UNIQUE_MESSAGES
                    .iter()
                    .find(|(needles, _)| needles.iter().any(|n| msg.contains(n)))
                    .map(|(_, m)| *m)
                    .unwrap_or("a record with these values already exists");
                Self::Conflict(friendly.to_string())
            }
            Some(SqlErr::ForeignKeyConstraintViolation(_)) => {
                Self::BadInput("a referenced record does not exist or is still in use".into())
            }
            _ if matches!(
                e,
                DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout)
            ) =>
            {
                tracing::warn!("database pool exhausted: no connection within the acquire timeout");
                Self::Unavailable
            }
            _ if matches!(&e, DbErr::Custom(m) if m.contains(ROW_BUDGET_EXCEEDED)) => {
                Self::QueryTooComplex(
                    e.to_string()
                        .split_once(ROW_BUDGET_EXCEEDED)
                        .map(|(_, rest)| rest.trim_start_matches(": ").to_owned())
                        .unwrap_or_default(),
                )
            }
            _ => {
                let text = e.to_string();
                if text.contains("canceling statement due to statement timeout") {
                    Self::QueryTooComplex("the query ran past the statement timeout".into())
                } else {
                    Self::Internal(Arc::new(e))
                }
            }
        }
    }
}

impl From<Arc<DbErr>> for AppError {
    fn from(e: Arc<DbErr>) -> Self {
        AppError::from(match Arc::try_unwrap(e) {
            Ok(e) => e,
            Err(shared) => DbErr::Custom(shared.to_string()),
        })
    }
}

impl From<sea_orm::TransactionError<AppError>> for AppError {
    fn from(e: sea_orm::TransactionError<AppError>) -> Self {
        match e {
            sea_orm::TransactionError::Connection(db) => db.into(),
            sea_orm::TransactionError::Transaction(app) => app,
        }
    }
}

/// Characters of client input an error message may repeat.
pub const MAX_ECHO_CHARS: usize = 100;
/// Characters of any error message: async-graphql's own messages repeat
/// input too (a 500 KB value came back whole).
pub const MAX_MESSAGE_CHARS: usize = 300;

/// Client input for an error message, cut to `MAX_ECHO_CHARS` with "…".
pub fn echo(input: &str) -> String {
    truncate(&format!("{input:?}"), MAX_ECHO_CHARS)
}

pub fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_echoes_are_cut() {
        let long = "x".repeat(500_000);
        assert_eq!(echo(&long).chars().count(), MAX_ECHO_CHARS + 1);
        assert!(echo(&long).ends_with('…'));
        assert_eq!(echo("ab"), "\"ab\"");
    }
}
