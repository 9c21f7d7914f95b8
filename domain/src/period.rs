//! The reporting period: a half-open range of days `[start, end)` with the
//! spelling it was named by. Parse, don't validate: a `Period` value is
//! always a valid, non-empty range.
use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, Days, Months, NaiveDate, Weekday};

/// How a period is spelled, which also fixes what "the previous period" is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeriodKind {
    Year,
    Quarter,
    Month,
    IsoWeek,
    Range,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Granularity {
    Week,
    Month,
    Quarter,
    Year,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Period {
    kind: PeriodKind,
    start: NaiveDate,
    end: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid period {input:?}: {reason}; expected \"2026\", \"2026-Q3\", \"2026-07\", \"2026-W27\" or \"2026-07-01..2026-10-01\"")]
pub struct PeriodError {
    input: String,
    reason: &'static str,
}

const MIN_YEAR: i32 = 1;
const MAX_YEAR: i32 = 9998;

fn ymd(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

impl Period {
    pub fn year(year: i32) -> Option<Self> {
        if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
            return None;
        }
        Some(Self {
            kind: PeriodKind::Year,
            start: ymd(year, 1, 1)?,
            end: ymd(year + 1, 1, 1)?,
        })
    }

    pub fn quarter(year: i32, quarter: u32) -> Option<Self> {
        if !(1..=4).contains(&quarter) || !(MIN_YEAR..=MAX_YEAR).contains(&year) {
            return None;
        }
        let start = ymd(year, (quarter - 1) * 3 + 1, 1)?;
        Some(Self {
            kind: PeriodKind::Quarter,
            start,
            end: start.checked_add_months(Months::new(3))?,
        })
    }

    pub fn month(year: i32, month: u32) -> Option<Self> {
        if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
            return None;
        }
        let start = ymd(year, month, 1)?;
        Some(Self {
            kind: PeriodKind::Month,
            start,
            end: start.checked_add_months(Months::new(1))?,
        })
    }

    /// ISO 8601 week `week` of ISO week-year `year` (Monday to Monday).
    pub fn iso_week(year: i32, week: u32) -> Option<Self> {
        if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
            return None;
        }
        let start = NaiveDate::from_isoywd_opt(year, week, Weekday::Mon)?;
        Some(Self {
            kind: PeriodKind::IsoWeek,
            start,
            end: start.checked_add_days(Days::new(7))?,
        })
    }

    /// An explicit range; `end` is exclusive and must be after `start`.
    pub fn range(start: NaiveDate, end: NaiveDate) -> Option<Self> {
        (start < end && start.year() >= MIN_YEAR && end.year() <= MAX_YEAR + 1).then_some(Self {
            kind: PeriodKind::Range,
            start,
            end,
        })
    }

    /// The most specific spelling for a range: a whole month, quarter, year
    /// or ISO week is named as such, anything else as an explicit range.
    pub fn canonical(start: NaiveDate, end: NaiveDate) -> Option<Self> {
        let candidates = [
            Self::month(start.year(), start.month()),
            Self::quarter(start.year(), (start.month() - 1) / 3 + 1),
            Self::year(start.year()),
            Self::iso_week(start.iso_week().year(), start.iso_week().week()),
        ];
        candidates
            .into_iter()
            .flatten()
            .find(|p| p.start == start && p.end == end)
            .or_else(|| Self::range(start, end))
    }

    pub fn kind(&self) -> PeriodKind {
        self.kind
    }
    pub fn start(&self) -> NaiveDate {
        self.start
    }
    /// The first day after the period.
    pub fn end(&self) -> NaiveDate {
        self.end
    }
    pub fn days(&self) -> i64 {
        (self.end - self.start).num_days()
    }
    pub fn contains(&self, day: NaiveDate) -> bool {
        self.start <= day && day < self.end
    }
    /// True when `other` lies wholly inside this period.
    pub fn covers(&self, start: NaiveDate, end: NaiveDate) -> bool {
        self.start <= start && end <= self.end
    }

    /// Whole calendar months in the period, or None if it does not start and
    /// end on the first of a month.
    pub fn whole_months(&self) -> Option<u32> {
        if self.start.day() != 1 || self.end.day() != 1 {
            return None;
        }
        let months = (self.end.year() - self.start.year()) * 12 + self.end.month() as i32
            - self.start.month() as i32;
        u32::try_from(months).ok().filter(|m| *m > 0)
    }

    /// The period of the same kind just before: the previous year, quarter,
    /// month or ISO week; for a range, as many days ending where it starts.
    pub fn previous(&self) -> Option<Self> {
        match self.kind {
            PeriodKind::Year => Self::year(self.start.year() - 1),
            PeriodKind::Quarter => {
                let start = self.start.checked_sub_months(Months::new(3))?;
                Self::quarter(start.year(), (start.month() - 1) / 3 + 1)
            }
            PeriodKind::Month => {
                let start = self.start.checked_sub_months(Months::new(1))?;
                Self::month(start.year(), start.month())
            }
            PeriodKind::IsoWeek => {
                let start = self.start.checked_sub_days(Days::new(7))?;
                Self::iso_week(start.iso_week().year(), start.iso_week().week())
            }
            PeriodKind::Range => {
                let start = self.start.checked_sub_days(Days::new(self.days() as u64))?;
                Self::range(start, self.start)
            }
        }
    }

    /// True when the period is not over on `today`: it ends after it (today
    /// itself is still moving).
    pub fn is_partial(&self, today: NaiveDate) -> bool {
        self.end > today
    }

    /// What a period is compared with by default (docs/design.md, Forecast
    /// calls): the previous period, or, while the period is under way
    /// (`start <= today < end`), the same number of days (today included)
    /// at the start of the previous one: quarter-to-date against the
    /// previous quarter's first as many days.
    pub fn default_comparison(&self, today: NaiveDate) -> Option<Self> {
        let previous = self.previous()?;
        if !(self.start <= today && today < self.end) {
            return Some(previous);
        }
        let elapsed = (today - self.start).num_days() + 1;
        let end = previous
            .start
            .checked_add_days(Days::new(elapsed as u64))?
            .min(previous.end);
        if end == previous.end {
            return Some(previous);
        }
        Self::range(previous.start, end)
    }

    /// The bucket of `granularity` that contains `day`.
    pub fn bucket_of(day: NaiveDate, granularity: Granularity) -> Option<Self> {
        match granularity {
            Granularity::Week => Self::iso_week(day.iso_week().year(), day.iso_week().week()),
            Granularity::Month => Self::month(day.year(), day.month()),
            Granularity::Quarter => Self::quarter(day.year(), (day.month() - 1) / 3 + 1),
            Granularity::Year => Self::year(day.year()),
        }
    }

    /// The whole buckets of `granularity` that overlap this period, in order.
    /// The first and last may reach outside it; callers clip to the period.
    pub fn buckets(&self, granularity: Granularity) -> Vec<Self> {
        let mut out = Vec::new();
        let mut cursor = Self::bucket_of(self.start, granularity);
        while let Some(bucket) = cursor {
            if bucket.start >= self.end {
                break;
            }
            cursor = Self::bucket_of(bucket.end, granularity);
            out.push(bucket);
        }
        out
    }

    /// The part of this period that overlaps `other`, if any.
    pub fn intersect(&self, other: &Self) -> Option<(NaiveDate, NaiveDate)> {
        let start = self.start.max(other.start);
        let end = self.end.min(other.end);
        (start < end).then_some((start, end))
    }
}

fn digits(s: &str, len: usize) -> Option<u32> {
    (s.len() == len && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    let mut parts = s.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    ymd(digits(y, 4)? as i32, digits(m, 2)?, digits(d, 2)?)
}

impl FromStr for Period {
    type Err = PeriodError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |reason| PeriodError {
            input: input.to_owned(),
            reason,
        };
        if let Some((a, b)) = input.split_once("..") {
            let start =
                parse_date(a).ok_or_else(|| fail("the range start is not a date YYYY-MM-DD"))?;
            let end =
                parse_date(b).ok_or_else(|| fail("the range end is not a date YYYY-MM-DD"))?;
            return Self::range(start, end)
                .ok_or_else(|| fail("the range must end after it starts"));
        }
        let (year, rest) = match input.split_once('-') {
            Some((y, rest)) => (y, Some(rest)),
            None => (input, None),
        };
        let year = digits(year, 4).ok_or_else(|| fail("the year must be four digits"))? as i32;
        match rest {
            None => Self::year(year).ok_or_else(|| fail("the year is out of range")),
            Some(rest) => {
                if let Some(q) = rest.strip_prefix('Q') {
                    let q = digits(q, 1).ok_or_else(|| fail("the quarter must be Q1 to Q4"))?;
                    Self::quarter(year, q).ok_or_else(|| fail("the quarter must be Q1 to Q4"))
                } else if let Some(w) = rest.strip_prefix('W') {
                    let w = digits(w, 2)
                        .ok_or_else(|| fail("the ISO week must be two digits, W01 to W53"))?;
                    Self::iso_week(year, w)
                        .ok_or_else(|| fail("that ISO week does not exist in that year"))
                } else {
                    let m = digits(rest, 2)
                        .ok_or_else(|| fail("the month must be two digits, 01 to 12"))?;
                    Self::month(year, m).ok_or_else(|| fail("the month must be 01 to 12"))
                }
            }
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            PeriodKind::Year => write!(f, "{:04}", self.start.year()),
            PeriodKind::Quarter => write!(
                f,
                "{:04}-Q{}",
                self.start.year(),
                (self.start.month() - 1) / 3 + 1
            ),
            PeriodKind::Month => write!(f, "{:04}-{:02}", self.start.year(), self.start.month()),
            PeriodKind::IsoWeek => {
                let w = self.start.iso_week();
                write!(f, "{:04}-W{:02}", w.year(), w.week())
            }
            PeriodKind::Range => write!(
                f,
                "{}..{}",
                self.start.format("%Y-%m-%d"),
                self.end.format("%Y-%m-%d")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }
    fn p(s: &str) -> Period {
        s.parse().unwrap()
    }

    /// Quarter-to-date on 2026-12-06 (67 days of Q4, today included)
    /// against the first 67 days of Q3: 07-01 to 09-06 (exclusive).
    #[test]
    fn a_partial_period_is_compared_with_as_many_days() {
        let q4 = p("2026-Q4");
        assert!(q4.is_partial(d("2026-12-06")));
        assert!(q4.is_partial(d("2026-12-31")));
        assert!(!q4.is_partial(d("2027-01-01")));
        assert_eq!(
            q4.default_comparison(d("2026-12-06")),
            Some(p("2026-07-01..2026-09-06"))
        );
        // The first day: one day each.
        assert_eq!(
            q4.default_comparison(d("2026-10-01")),
            Some(p("2026-07-01..2026-07-02"))
        );
        // Over, or not begun: the whole previous period.
        assert_eq!(q4.default_comparison(d("2027-02-01")), Some(p("2026-Q3")));
        assert_eq!(q4.default_comparison(d("2026-09-30")), Some(p("2026-Q3")));
        // The last day of a month longer than the previous one: capped.
        assert_eq!(
            p("2026-03").default_comparison(d("2026-03-31")),
            Some(p("2026-02"))
        );
    }

    #[test]
    fn every_spelling_parses_to_its_range() {
        let cases = [
            ("2026", "2026-01-01", "2027-01-01", PeriodKind::Year),
            ("2026-Q1", "2026-01-01", "2026-04-01", PeriodKind::Quarter),
            ("2026-Q3", "2026-07-01", "2026-10-01", PeriodKind::Quarter),
            ("2026-Q4", "2026-10-01", "2027-01-01", PeriodKind::Quarter),
            ("2026-07", "2026-07-01", "2026-08-01", PeriodKind::Month),
            ("2026-12", "2026-12-01", "2027-01-01", PeriodKind::Month),
            ("2026-W27", "2026-06-29", "2026-07-06", PeriodKind::IsoWeek),
            (
                "2026-07-01..2026-10-01",
                "2026-07-01",
                "2026-10-01",
                PeriodKind::Range,
            ),
        ];
        for (s, start, end, kind) in cases {
            let period = p(s);
            assert_eq!(
                (period.start(), period.end(), period.kind()),
                (d(start), d(end), kind),
                "{s}"
            );
            assert_eq!(period.to_string(), s);
        }
    }

    #[test]
    fn iso_weeks_cross_year_ends() {
        // 2020-W53 exists (2020 has 53 ISO weeks) and ends in January 2021.
        assert_eq!(
            (p("2020-W53").start(), p("2020-W53").end()),
            (d("2020-12-28"), d("2021-01-04"))
        );
        // 2026-W01 starts in December 2025.
        assert_eq!(p("2026-W01").start(), d("2025-12-29"));
        // 2024-12-30 belongs to 2025-W01.
        assert_eq!(
            Period::bucket_of(d("2024-12-30"), Granularity::Week)
                .unwrap()
                .to_string(),
            "2025-W01"
        );
        // 2021 has only 52 weeks.
        assert!("2021-W53".parse::<Period>().is_err());
        assert_eq!(p("2021-W01").previous().unwrap().to_string(), "2020-W53");
    }

    #[test]
    fn leap_years() {
        assert_eq!(p("2024-02").days(), 29);
        assert_eq!(p("2023-02").days(), 28);
        assert_eq!(p("2024").days(), 366);
        assert_eq!(p("1900-02").days(), 28);
        assert_eq!(p("2000-02").days(), 29);
        assert!("2023-02-29..2023-03-01".parse::<Period>().is_err());
        assert_eq!(p("2024-02-29..2024-03-01").days(), 1);
    }

    #[test]
    fn bad_input_is_rejected() {
        for bad in [
            "",
            "26",
            "20260",
            "2026-13",
            "2026-00",
            "2026-7",
            "2026-Q0",
            "2026-Q5",
            "2026-q3",
            "2026-W00",
            "2026-W54",
            "2026-W7",
            "2026-w27",
            "2026-07-01..2026-07-01",
            "2026-10-01..2026-07-01",
            "2026-07-01..",
            "..2026-07-01",
            "2026-07-32..2026-08-01",
            "2026-07-01..2026-08-01..2026-09-01",
            " 2026",
            "2026 ",
            "+2026",
            "2026-Q3x",
            "0000",
        ] {
            assert!(bad.parse::<Period>().is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn previous_periods() {
        assert_eq!(p("2026").previous().unwrap().to_string(), "2025");
        assert_eq!(p("2026-Q1").previous().unwrap().to_string(), "2025-Q4");
        assert_eq!(p("2026-01").previous().unwrap().to_string(), "2025-12");
        assert_eq!(p("2026-W01").previous().unwrap().to_string(), "2025-W52");
        assert_eq!(
            p("2026-07-01..2026-07-11").previous().unwrap().to_string(),
            "2026-06-21..2026-07-01"
        );
    }

    #[test]
    fn whole_months_and_canonical() {
        assert_eq!(p("2026-Q3").whole_months(), Some(3));
        assert_eq!(p("2026").whole_months(), Some(12));
        assert_eq!(p("2026-W27").whole_months(), None);
        assert_eq!(p("2026-07-01..2026-07-15").whole_months(), None);
        assert_eq!(p("2026-05-01..2026-08-01").whole_months(), Some(3));
        assert_eq!(
            Period::canonical(d("2026-07-01"), d("2026-08-01"))
                .unwrap()
                .to_string(),
            "2026-07"
        );
        assert_eq!(
            Period::canonical(d("2026-07-01"), d("2026-10-01"))
                .unwrap()
                .to_string(),
            "2026-Q3"
        );
        assert_eq!(
            Period::canonical(d("2026-01-01"), d("2027-01-01"))
                .unwrap()
                .to_string(),
            "2026"
        );
        assert_eq!(
            Period::canonical(d("2026-06-29"), d("2026-07-06"))
                .unwrap()
                .to_string(),
            "2026-W27"
        );
        assert_eq!(
            Period::canonical(d("2026-07-01"), d("2026-09-01"))
                .unwrap()
                .to_string(),
            "2026-07-01..2026-09-01"
        );
    }

    #[test]
    fn buckets_cover_the_period() {
        let names: Vec<String> = p("2026-Q1")
            .buckets(Granularity::Month)
            .iter()
            .map(|b| b.to_string())
            .collect();
        assert_eq!(names, ["2026-01", "2026-02", "2026-03"]);
        let weeks = p("2026-01").buckets(Granularity::Week);
        assert_eq!(weeks.first().unwrap().to_string(), "2026-W01");
        assert_eq!(weeks.last().unwrap().to_string(), "2026-W05");
        assert_eq!(p("2026").buckets(Granularity::Quarter).len(), 4);
        assert_eq!(
            p("2025-07-01..2027-01-01").buckets(Granularity::Year).len(),
            2
        );
    }

    fn any_period() -> impl Strategy<Value = Period> {
        prop_oneof![
            (1i32..=9998).prop_map(|y| Period::year(y).unwrap()),
            (1i32..=9998, 1u32..=4).prop_map(|(y, q)| Period::quarter(y, q).unwrap()),
            (1i32..=9998, 1u32..=12).prop_map(|(y, m)| Period::month(y, m).unwrap()),
            (2i32..=9997, 1u32..=53)
                .prop_filter_map("week exists", |(y, w)| Period::iso_week(y, w)),
            (0i64..3_600_000, 1i64..4000).prop_map(|(s, len)| {
                let start = d("0001-01-01") + chrono::Duration::days(s);
                Period::range(start, start + chrono::Duration::days(len)).unwrap()
            }),
        ]
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(period in any_period()) {
            let text = period.to_string();
            let back: Period = text.parse().unwrap();
            prop_assert_eq!(back, period);
            prop_assert_eq!(back.to_string(), text);
        }

        #[test]
        fn previous_is_adjacent_and_same_kind(period in any_period()) {
            if let Some(prev) = period.previous() {
                prop_assert_eq!(prev.end(), period.start());
                prop_assert_eq!(prev.kind(), period.kind());
            }
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(s in "\\PC{0,30}") {
            let _ = s.parse::<Period>();
        }
    }
}
