//! S&OP math: the plan horizon, a rep's ramp, selling capacity, gaps and
//! plan-against-actual variances (docs/design.md, S&OP plans). No database here;
//! the services feed these functions with SQL aggregates.
use chrono::{Datelike, Months, NaiveDate};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use super::money::{from_cents, round_money};

pub const MAX_HORIZON_MONTHS: u32 = 12;

/// Months since year 0 (January of year 0 is 0): a month as one integer,
/// the same number SQL computes as year * 12 + month - 1.
pub fn month_index(d: NaiveDate) -> i64 {
    i64::from(d.year()) * 12 + i64::from(d.month0())
}

/// The first day of the month with this index.
pub fn month_start(index: i64) -> Option<NaiveDate> {
    let year = i32::try_from(index.div_euclid(12)).ok()?;
    NaiveDate::from_ymd_opt(year, index.rem_euclid(12) as u32 + 1, 1)
}

/// "2026-07" for a month.
pub fn month_label(d: NaiveDate) -> String {
    format!("{:04}-{:02}", d.year(), d.month())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HorizonError {
    #[error("horizonStart must be the first day of a month, e.g. {suggestion} (got {got})")]
    NotFirstOfMonth {
        got: NaiveDate,
        suggestion: NaiveDate,
    },
    #[error("horizonMonths must be between 1 and {MAX_HORIZON_MONTHS} (got {0})")]
    BadLength(i64),
    #[error("horizonStart {0} is out of range")]
    OutOfRange(NaiveDate),
}

/// The months a plan covers: 1 to 12 whole months from a first of month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Horizon {
    start: NaiveDate,
    months: u32,
}

impl Horizon {
    pub fn new(start: NaiveDate, months: i64) -> Result<Self, HorizonError> {
        if start.day() != 1 {
            return Err(HorizonError::NotFirstOfMonth {
                got: start,
                suggestion: start.with_day(1).unwrap_or(start),
            });
        }
        if !(1..=i64::from(MAX_HORIZON_MONTHS)).contains(&months) {
            return Err(HorizonError::BadLength(months));
        }
        if start
            .checked_add_months(Months::new(months as u32))
            .is_none()
            || start.checked_sub_months(Months::new(120)).is_none()
        {
            return Err(HorizonError::OutOfRange(start));
        }
        Ok(Self {
            start,
            months: months as u32,
        })
    }

    pub fn start(&self) -> NaiveDate {
        self.start
    }

    pub fn months(&self) -> u32 {
        self.months
    }

    /// The first day after the horizon.
    pub fn end(&self) -> NaiveDate {
        self.start + Months::new(self.months)
    }

    /// The first day of every month of the horizon, in order.
    pub fn month_starts(&self) -> Vec<NaiveDate> {
        (0..self.months)
            .map(|i| self.start + Months::new(i))
            .collect()
    }

    pub fn month_indexes(&self) -> std::ops::Range<i64> {
        let first = month_index(self.start);
        first..first + i64::from(self.months)
    }

    /// True for the first day of a month inside the horizon.
    pub fn contains_month(&self, month: NaiveDate) -> bool {
        month.day() == 1 && month >= self.start && month < self.end()
    }

    /// "2026-01..2026-03" (both months included), for messages.
    pub fn label(&self) -> String {
        let last = self.start + Months::new(self.months - 1);
        if self.months == 1 {
            month_label(self.start)
        } else {
            format!("{}..{}", month_label(self.start), month_label(last))
        }
    }
}

/// Whole months a rep hired on `hired_at` has been with the company at the
/// start of the month `month_start` (a first of month): the largest k >= 0
/// with hired_at + k months <= month_start (adding months clamps to the
/// month's last day). A rep hired on the 1st has k = 2 on the 1st two months
/// later; hired on the 15th, k = 1 then. Equivalently (and this is what SQL
/// computes): month_index(month) - month_index(hired_at) - (1 if the hire day
/// is after the 1st), floored at 0.
pub fn months_since_hire(hired_at: NaiveDate, month_start: NaiveDate) -> i64 {
    let late_start = i64::from(hired_at.day() > 1);
    (month_index(month_start) - month_index(hired_at) - late_start).max(0)
}

/// True when a rep hired on `hired_at` is on board during the month (hired
/// before the month ends).
pub fn on_board_in(hired_at: NaiveDate, month_start: NaiveDate) -> bool {
    month_index(hired_at) <= month_index(month_start)
}

/// The ramp as an exact fraction (numerator, denominator):
/// min(k / ramp_months, 1); ramp_months 0 means fully ramped from day one.
pub fn ramp_fraction(months_since_hire: i64, ramp_months: i64) -> (i64, i64) {
    if ramp_months <= 0 {
        (1, 1)
    } else {
        (months_since_hire.clamp(0, ramp_months), ramp_months)
    }
}

/// Reps of one territory-month that share a ramp fraction, summed in SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RampGroup {
    /// Active reps on board in the month.
    pub reps: i64,
    /// How many of them have a monthly quota to count.
    pub quota_reps: i64,
    /// Their monthly quotas, summed (cents).
    pub quota_cents: i128,
    pub ramp_num: i64,
    pub ramp_den: i64,
}

/// Selling capacity of a territory-month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capacity {
    /// Sum of monthly quota x ramp, rounded to cents once.
    pub amount: Decimal,
    /// Ramped headcount: the sum of the reps' ramp fractions.
    pub headcount: Decimal,
    /// Active reps on board (unramped).
    pub reps: i64,
    /// Reps with a monthly quota, and the sum of those quotas (unramped):
    /// the basis of the average monthly quota per rep.
    pub quota_reps: i64,
    pub quota_cents: i128,
}

impl Capacity {
    pub fn of(groups: &[RampGroup]) -> Self {
        let mut amount = Decimal::ZERO;
        let mut headcount = Decimal::ZERO;
        let mut out = Capacity::default();
        for g in groups {
            let den = Decimal::from(g.ramp_den.max(1));
            let num = Decimal::from(g.ramp_num);
            amount += from_cents(g.quota_cents) * num / den;
            headcount += Decimal::from(g.reps) * num / den;
            out.reps += g.reps;
            out.quota_reps += g.quota_reps;
            out.quota_cents += g.quota_cents;
        }
        out.amount = round_money(amount);
        out.headcount = headcount;
        out
    }

    /// The average (unramped) monthly quota of the reps that have one.
    pub fn average_quota(&self) -> Option<Decimal> {
        (self.quota_reps > 0).then(|| from_cents(self.quota_cents) / Decimal::from(self.quota_reps))
    }

    /// Adds another territory's capacity (for organisation-wide averages).
    pub fn add(&mut self, other: &Capacity) {
        self.amount += other.amount;
        self.headcount += other.headcount;
        self.reps += other.reps;
        self.quota_reps += other.quota_reps;
        self.quota_cents += other.quota_cents;
    }
}

/// Capacity of a planned headcount: headcount x the average monthly quota
/// per rep, rounded to cents.
pub fn planned_capacity(headcount: f64, average_quota: Decimal) -> Option<Decimal> {
    let hc = Decimal::try_from(headcount).ok()?;
    Some(round_money(hc * average_quota))
}

/// demand - supply - adjustments: positive means capacity is short.
pub fn gap(demand: Decimal, supply: Decimal, adjustments: Decimal) -> Decimal {
    demand - supply - adjustments
}

/// actual - planned (positive: the plan was beaten), and that variance over
/// the planned amount (None when nothing was planned). The ratio is one
/// correctly rounded float division of the two exact amounts.
pub fn variance(planned: Decimal, actual: Decimal) -> (Decimal, Option<f64>) {
    let v = actual - planned;
    let pct = match (v.to_f64(), planned.to_f64()) {
        (Some(num), Some(den)) if !planned.is_zero() => Some(num / den),
        _ => None,
    };
    (v, pct)
}

/// A headcount for the API and the stored line: four decimal places
/// (a rep a third into their ramp is 0.3333).
pub fn headcount_f64(h: Decimal) -> f64 {
    h.round_dp(4).to_f64().unwrap_or(0.0)
}

/// The first month a plan made on `today` plans: months of the horizon
/// that are over (ended before today's month began) are not planned. The
/// current month is not over.
pub fn first_planned_month(horizon: &Horizon, today: NaiveDate) -> NaiveDate {
    let current = today.with_day(1).unwrap_or(today);
    horizon.start().max(current)
}

/// Demand stated as a percentage change of the baseline (+20 for a launch,
/// -15 for a cut): baseline x (1 + percent / 100), rounded to cents. None
/// below -100% (a demand below zero) or when it overflows.
pub fn demand_from_percent(baseline: Decimal, percent: Decimal) -> Option<Decimal> {
    if percent < -Decimal::ONE_HUNDRED {
        return None;
    }
    let factor = Decimal::ONE.checked_add(percent.checked_div(Decimal::ONE_HUNDRED)?)?;
    Some(round_money(baseline.checked_mul(factor)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_over_are_not_planned() {
        let h = Horizon::new(d("2025-01-01"), 3).unwrap();
        // Made on 6 February: January is over, February is the current month.
        assert_eq!(first_planned_month(&h, d("2025-02-06")), d("2025-02-01"));
        // Made before the horizon: every month is planned.
        assert_eq!(first_planned_month(&h, d("2024-12-31")), d("2025-01-01"));
        assert_eq!(first_planned_month(&h, d("2025-01-01")), d("2025-01-01"));
    }

    #[test]
    fn demand_as_a_percentage_of_the_baseline() {
        // 10,500 + 20% = 12,600; 2,450 - 15% = 2,082.50; 350.01 + 33.3% = 466.56333 -> 466.56.
        assert_eq!(
            demand_from_percent(dec("10500"), dec("20")),
            Some(dec("12600"))
        );
        assert_eq!(
            demand_from_percent(dec("2450"), dec("-15")),
            Some(dec("2082.5"))
        );
        assert_eq!(
            demand_from_percent(dec("350.01"), dec("33.3")),
            Some(dec("466.56"))
        );
        assert_eq!(demand_from_percent(dec("100"), dec("-100")), Some(dec("0")));
        assert_eq!(demand_from_percent(dec("100"), dec("-100.01")), None);
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }
    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn horizons() {
        let h = Horizon::new(d("2025-11-01"), 3).unwrap();
        assert_eq!(h.end(), d("2026-02-01"));
        assert_eq!(
            h.month_starts(),
            [d("2025-11-01"), d("2025-12-01"), d("2026-01-01")]
        );
        assert_eq!(h.label(), "2025-11..2026-01");
        assert!(h.contains_month(d("2026-01-01")));
        assert!(!h.contains_month(d("2026-02-01")));
        assert!(!h.contains_month(d("2025-12-15")));
        assert!(!h.contains_month(d("2025-10-01")));
        assert_eq!(h.month_indexes().count(), 3);
        assert_eq!(Horizon::new(d("2025-11-01"), 1).unwrap().label(), "2025-11");
        assert_eq!(
            Horizon::new(d("2025-11-01"), 12).unwrap().end(),
            d("2026-11-01")
        );
    }

    #[test]
    fn bad_horizons() {
        assert_eq!(
            Horizon::new(d("2025-11-15"), 3),
            Err(HorizonError::NotFirstOfMonth {
                got: d("2025-11-15"),
                suggestion: d("2025-11-01")
            })
        );
        assert_eq!(
            Horizon::new(d("2025-11-01"), 0),
            Err(HorizonError::BadLength(0))
        );
        assert_eq!(
            Horizon::new(d("2025-11-01"), 13),
            Err(HorizonError::BadLength(13))
        );
        assert_eq!(
            HorizonError::NotFirstOfMonth {
                got: d("2025-11-15"),
                suggestion: d("2025-11-01")
            }
            .to_string(),
            "horizonStart must be the first day of a month, e.g. 2025-11-01 (got 2025-11-15)"
        );
    }

    #[test]
    fn month_indexes_round_trip() {
        for s in ["2024-01-01", "2024-12-01", "2025-02-01", "0001-01-01"] {
            assert_eq!(month_start(month_index(d(s))), Some(d(s)));
        }
        assert_eq!(
            month_index(d("2025-01-31")) - month_index(d("2024-12-01")),
            1
        );
    }

    #[test]
    fn months_since_hire_examples() {
        // Hired on the 1st: whole months are calendar months.
        assert_eq!(months_since_hire(d("2024-11-01"), d("2025-01-01")), 2);
        assert_eq!(months_since_hire(d("2024-11-01"), d("2024-11-01")), 0);
        // Hired mid-month: the partial month does not count.
        assert_eq!(months_since_hire(d("2024-11-15"), d("2025-01-01")), 1);
        assert_eq!(months_since_hire(d("2024-11-15"), d("2024-12-01")), 0);
        // Hired on the 31st: Jan 31 + 1 month is Feb 28, still after Feb 1.
        assert_eq!(months_since_hire(d("2025-01-31"), d("2025-03-01")), 1);
        // Hired after the month started (or in the future): 0.
        assert_eq!(months_since_hire(d("2025-01-10"), d("2025-01-01")), 0);
        assert_eq!(months_since_hire(d("2025-06-01"), d("2025-01-01")), 0);
        assert!(on_board_in(d("2025-01-31"), d("2025-01-01")));
        assert!(!on_board_in(d("2025-02-01"), d("2025-01-01")));
    }

    #[test]
    fn months_since_hire_matches_adding_months() {
        // The closed form equals "the largest k with hired + k months <= month".
        let mut hired = d("2023-01-01");
        while hired < d("2025-03-01") {
            for m in 0..30 {
                let month = d("2023-01-01") + Months::new(m);
                let mut k = 0;
                while hired + Months::new(k + 1) <= month {
                    k += 1;
                }
                let expected = if hired <= month { i64::from(k) } else { 0 };
                assert_eq!(months_since_hire(hired, month), expected, "{hired} {month}");
            }
            hired = hired.succ_opt().unwrap();
        }
    }

    #[test]
    fn ramp_fractions() {
        assert_eq!(ramp_fraction(1, 3), (1, 3));
        assert_eq!(ramp_fraction(3, 3), (3, 3));
        assert_eq!(ramp_fraction(7, 3), (3, 3));
        assert_eq!(ramp_fraction(0, 3), (0, 3));
        assert_eq!(ramp_fraction(0, 0), (1, 1));
    }

    #[test]
    fn capacity_sums_ramped_quotas_exactly() {
        // A ramped rep with 10,000 and a rep 1/3 into a 3-month ramp with
        // 10,000: 10,000 + 3,333.33 = 13,333.33; headcount 1 + 1/3.
        let c = Capacity::of(&[
            RampGroup {
                reps: 1,
                quota_reps: 1,
                quota_cents: 1_000_000,
                ramp_num: 3,
                ramp_den: 3,
            },
            RampGroup {
                reps: 1,
                quota_reps: 1,
                quota_cents: 1_000_000,
                ramp_num: 1,
                ramp_den: 3,
            },
        ]);
        assert_eq!(c.amount, dec("13333.33"));
        assert_eq!(headcount_f64(c.headcount), 1.3333);
        assert_eq!(c.average_quota(), Some(dec("10000")));
        // Three reps at 1/3 each: rounding happens once, on the sum.
        let c = Capacity::of(&[RampGroup {
            reps: 3,
            quota_reps: 3,
            quota_cents: 3_000_000,
            ramp_num: 1,
            ramp_den: 3,
        }]);
        assert_eq!(c.amount, dec("10000.00"));
        assert_eq!(Capacity::of(&[]).average_quota(), None);
    }

    #[test]
    fn gaps_and_variances() {
        assert_eq!(gap(dec("100"), dec("60"), dec("40")), dec("0"));
        assert_eq!(gap(dec("100"), dec("60"), dec("-10")), dec("50"));
        assert_eq!(variance(dec("200"), dec("150")), (dec("-50"), Some(-0.25)));
        assert_eq!(variance(dec("0"), dec("150")), (dec("150"), None));
        assert_eq!(variance(dec("10500"), dec("9000")).1, Some(-1.0 / 7.0));
        assert_eq!(planned_capacity(1.5, dec("10000")), Some(dec("15000.00")));
        assert_eq!(planned_capacity(f64::NAN, dec("10000")), None);
    }
}
