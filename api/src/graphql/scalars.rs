//! The contract's custom scalars: Date (YYYY-MM-DD) and Period, and the
//! range every date and instant of the API must lie in.
use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::period::Period as DomainPeriod;
use crate::error::AppResult;

pub use crate::clock::{check_instant, date_in_range, range_message, MAX_DATE, MIN_DATE};

/// `check_instant` of an optional instant.
pub fn check_opt_instant(
    t: Option<DateTime<Utc>>,
    field: &str,
) -> AppResult<Option<DateTime<Utc>>> {
    t.map(|t| check_instant(t, field)).transpose()
}

/// Calendar date, ISO 8601: YYYY-MM-DD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date(pub NaiveDate);

/// Calendar date, ISO 8601: YYYY-MM-DD.
#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => {
                let d = NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .ok()
                    .filter(|d| d.format("%Y-%m-%d").to_string() == *s)
                    .ok_or_else(|| {
                        InputValueError::custom(format!(
                            "{} is not a date YYYY-MM-DD",
                            crate::error::echo(s)
                        ))
                    })?;
                if date_in_range(d) {
                    Ok(Date(d))
                } else {
                    Err(InputValueError::custom(range_message("a date")))
                }
            }
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

impl From<NaiveDate> for Date {
    fn from(d: NaiveDate) -> Self {
        Date(d)
    }
}

/// A reporting period at the GraphQL edge: the domain's Period (which knows
/// nothing of GraphQL), read and written as the contract's scalar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Period(pub DomainPeriod);

impl std::ops::Deref for Period {
    type Target = DomainPeriod;
    fn deref(&self) -> &DomainPeriod {
        &self.0
    }
}

impl From<DomainPeriod> for Period {
    fn from(p: DomainPeriod) -> Self {
        Period(p)
    }
}

/// A reporting period: "2026", "2026-Q3", "2026-07", "2026-W27" or "2026-07-01..2026-10-01" (end exclusive).
#[Scalar(name = "Period")]
impl ScalarType for Period {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => {
                let p = s
                    .parse::<DomainPeriod>()
                    .map_err(|e| InputValueError::custom(e.to_string()))?;
                // The end is exclusive: a period may end on 10000-01-01.
                let end_ok = p.end() <= MAX_DATE.succ_opt().unwrap_or(MAX_DATE);
                if p.start() >= MIN_DATE && end_ok {
                    Ok(Period(p))
                } else {
                    Err(InputValueError::custom(range_message("a period")))
                }
            }
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}
