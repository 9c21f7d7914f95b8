//! Time as the database stores it: UTC, microsecond precision (PostgreSQL's
//! timestamptz), so a value read back compares equal to the one written.
use chrono::{DateTime, NaiveDate, NaiveTime, Timelike, Utc};

pub fn now() -> DateTime<Utc> {
    truncate_micros(Utc::now())
}

pub fn today() -> NaiveDate {
    Utc::now().date_naive()
}

pub fn truncate_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .unwrap_or(t)
}

/// Midnight UTC at the start of `day`.
pub fn start_of(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(NaiveTime::MIN).and_utc()
}

/// Whole UTC calendar days from `from` to `to`.
pub fn days_between(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to.date_naive() - from.date_naive()).num_days()
}
