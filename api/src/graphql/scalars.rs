//! The contract's custom scalars: Date (YYYY-MM-DD) and Period.
use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::NaiveDate;

use crate::domain::period::Period;

/// Calendar date, ISO 8601: YYYY-MM-DD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date(pub NaiveDate);

/// Calendar date, ISO 8601: YYYY-MM-DD.
#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .filter(|d| d.format("%Y-%m-%d").to_string() == *s)
                .map(Date)
                .ok_or_else(|| InputValueError::custom(format!("{s:?} is not a date YYYY-MM-DD"))),
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

/// A reporting period: "2026", "2026-Q3", "2026-07", "2026-W27" or "2026-07-01..2026-10-01" (end exclusive).
#[Scalar(name = "Period")]
impl ScalarType for Period {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => s
                .parse::<Period>()
                .map_err(|e| InputValueError::custom(e.to_string())),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.to_string())
    }
}
