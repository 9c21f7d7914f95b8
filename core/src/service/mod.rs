//! Use cases, one module per aggregate. Services take any connection or
//! transaction, check the principal's rights, write the audit trail, and
//! push aggregation into SQL.
pub mod access;
pub mod account;
pub mod activity;
pub mod audit;
pub mod deal;
pub mod deal_change;
pub mod deal_filter;
pub mod deal_history;
pub mod deal_risk;
pub mod deal_sets;
pub mod deal_state;
pub mod deal_write;
pub mod export;
pub mod forecast;
pub mod grouping;
pub mod lead;
pub mod lead_scoring;
pub mod live;
pub mod metric_definitions;
pub mod metrics;
pub mod outbox;
pub mod pagination;
pub mod playbook;
pub mod quota;
pub mod rep;
pub mod rollup;
pub mod sop;
pub mod stage;
pub mod sync;
pub mod territory;
pub mod upsert;
pub mod versioned_rows;
pub mod webhook;

use sea_orm::{ConnectionTrait, EntityTrait, PrimaryKeyTrait};

use crate::error::{AppError, AppResult};

/// Loads a referenced row or answers BAD_USER_INPUT naming the input field.
pub async fn referenced<E>(db: &impl ConnectionTrait, id: i64, field: &str) -> AppResult<E::Model>
where
    E: EntityTrait,
    <E::PrimaryKey as PrimaryKeyTrait>::ValueType: From<i64>,
{
    E::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::bad_input(format!("{field}: no record with id {id}")))
}

/// A required, trimmed, non-empty text input of bounded length.
pub fn required_text(value: &str, field: &str, max: usize) -> AppResult<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(AppError::bad_input(format!("{field} must not be empty")));
    }
    if v.chars().count() > max {
        return Err(AppError::bad_input(format!(
            "{field} must be at most {max} characters"
        )));
    }
    Ok(v.to_owned())
}

/// An optional text input: trimmed, empty becomes None, bounded length.
pub fn optional_text(value: Option<&str>, field: &str, max: usize) -> AppResult<Option<String>> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => required_text(v, field, max).map(Some),
    }
}

/// A patch to a nullable field: leave it, clear it, or set it.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Patch<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

impl<T> Patch<T> {
    pub fn apply(self, current: Option<T>) -> Option<T> {
        match self {
            Patch::Keep => current,
            Patch::Clear => None,
            Patch::Set(v) => Some(v),
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Patch<U> {
        match self {
            Patch::Keep => Patch::Keep,
            Patch::Clear => Patch::Clear,
            Patch::Set(v) => Patch::Set(f(v)),
        }
    }

    pub fn as_set(&self) -> Option<&T> {
        match self {
            Patch::Set(v) => Some(v),
            _ => None,
        }
    }
}

impl From<crate::domain::money::MoneyError> for AppError {
    fn from(e: crate::domain::money::MoneyError) -> Self {
        AppError::bad_input(e.to_string())
    }
}

impl From<crate::domain::period::PeriodError> for AppError {
    fn from(e: crate::domain::period::PeriodError) -> Self {
        AppError::bad_input(e.to_string())
    }
}
