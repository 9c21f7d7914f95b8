//! Time as the database stores it: UTC, microsecond precision (PostgreSQL's
//! timestamptz), so a value read back compares equal to the one written.
use chrono::{DateTime, NaiveDate, NaiveTime, Timelike, Utc};
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

tokio::task_local! {
    /// The serving application's settable clock (`Config::clock`), for the
    /// request running on this task.
    static CLOCK: Arc<ManualClock>;
}

/// A clock that can be set while the application runs (tests, demos):
/// unset, it is the system clock; set to an instant, "now" is that instant
/// until it is set again (so durations and month boundaries are exact).
#[derive(Debug)]
pub struct ManualClock {
    /// Microseconds since the epoch; `i64::MIN`: not set.
    at_us: AtomicI64,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self {
            at_us: AtomicI64::new(i64::MIN),
        }
    }
}

impl ManualClock {
    /// From now on, "now" is `at`.
    pub fn set(&self, at: DateTime<Utc>) {
        self.at_us.store(at.timestamp_micros(), Ordering::Relaxed);
    }

    /// The instant it is set to, if any.
    pub fn get(&self) -> Option<DateTime<Utc>> {
        match self.at_us.load(Ordering::Relaxed) {
            i64::MIN => None,
            us => DateTime::from_timestamp_micros(us),
        }
    }
}

/// Runs `fut` with `clock` as "now" (None: the system clock). The HTTP
/// and WebSocket edges wrap each request in it, so a test can run an
/// application whose "now" is a chosen instant while other applications in
/// the process keep theirs.
pub async fn scope<F: Future>(clock: Option<Arc<ManualClock>>, fut: F) -> F::Output {
    match clock {
        Some(c) => CLOCK.scope(c, fut).await,
        None => fut.await,
    }
}

pub fn now() -> DateTime<Utc> {
    let set = CLOCK.try_with(|c| c.get()).ok().flatten();
    truncate_micros(set.unwrap_or_else(Utc::now))
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
