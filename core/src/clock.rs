//! Time as the database stores it: UTC, microsecond precision (PostgreSQL's
//! timestamptz), so a value read back compares equal to the one written.
use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Timelike, Utc};
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};

tokio::task_local! {
    /// How far the serving application's clock is set from the system's
    /// (`Config::clock`), for the request running on this task.
    static OFFSET: TimeDelta;
}

/// A clock that can be set while the application runs (tests, demos): an
/// offset from the system clock, in microseconds. Setting it to an instant
/// makes "now" that instant, running on from there.
#[derive(Debug, Default)]
pub struct ManualClock {
    offset_us: AtomicI64,
}

impl ManualClock {
    /// From now on, "now" is `at` (and runs on from it).
    pub fn set(&self, at: DateTime<Utc>) {
        let offset = (at - Utc::now()).num_microseconds().unwrap_or(0);
        self.offset_us.store(offset, Ordering::Relaxed);
    }

    pub fn offset(&self) -> TimeDelta {
        TimeDelta::microseconds(self.offset_us.load(Ordering::Relaxed))
    }
}

/// Runs `fut` with the clock moved by `offset` (None: the system clock).
/// The HTTP and WebSocket edges wrap each request in it, so a test can run
/// an application whose "now" is a chosen instant (month boundaries
/// deterministic) while other applications in the process keep theirs.
pub async fn scope<F: Future>(offset: Option<TimeDelta>, fut: F) -> F::Output {
    match offset {
        Some(o) => OFFSET.scope(o, fut).await,
        None => fut.await,
    }
}

pub fn now() -> DateTime<Utc> {
    truncate_micros(Utc::now() + OFFSET.try_with(|o| *o).unwrap_or_default())
}

pub fn today() -> NaiveDate {
    now().date_naive()
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

/// Dates and instants accepted from clients: 1900-01-01 to 9999-12-31.
/// Both databases store this range alike (PostgreSQL refused year 0 and
/// SQLite stored it; chrono reads years up to 262,143).
pub const MIN_DATE: NaiveDate = NaiveDate::from_ymd_opt(1900, 1, 1).expect("valid date");
pub const MAX_DATE: NaiveDate = NaiveDate::from_ymd_opt(9999, 12, 31).expect("valid date");

pub fn date_in_range(d: NaiveDate) -> bool {
    (MIN_DATE..=MAX_DATE).contains(&d)
}

pub fn range_message(what: &str) -> String {
    format!("{what} must lie between {MIN_DATE} and {MAX_DATE}")
}

/// An instant (the DateTime scalar) within the accepted date range.
pub fn check_instant(t: DateTime<Utc>, field: &str) -> crate::error::AppResult<DateTime<Utc>> {
    if date_in_range(t.date_naive()) {
        Ok(t)
    } else {
        Err(crate::error::AppError::bad_input(range_message(field)))
    }
}
