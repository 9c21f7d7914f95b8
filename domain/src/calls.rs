//! The arithmetic of forecast calls (docs/design.md, Forecast calls): a
//! node's personal number and its roll-up, in integer cents.
//!
//! - personal(P) = the latest PERSONAL adjustment for exactly P, else the
//!   rep's latest CALL for exactly P, else (from parts) the sum over the
//!   shorter periods tiling P of their own personal numbers, a part without
//!   one counting its closed-won; None when neither P nor any part has a
//!   number.
//! - rollup = the latest TEAM adjustment, else personal (0 when none) plus
//!   the children's rollups.
use chrono::{Datelike, Months};

use crate::period::{Period, PeriodKind};

/// Longest whole-month range that is tiled by its months (three years).
pub const MAX_TILED_MONTHS: u32 = 36;

/// The shorter periods tiling `p`: a year's quarters, a quarter's months, a
/// range of 2 to `MAX_TILED_MONTHS` whole months its months; nothing for a
/// month, a week or any other range. Judged by the bounds, so the range
/// "2026-10-01..2027-01-01" is the quarter 2026-Q4.
pub fn parts(p: &Period) -> Vec<Period> {
    let Some(canonical) = Period::canonical(p.start(), p.end()) else {
        return Vec::new();
    };
    let step = match canonical.kind() {
        PeriodKind::Year => 3,
        PeriodKind::Quarter => 1,
        PeriodKind::Range => match canonical.whole_months() {
            Some(m) if (2..=MAX_TILED_MONTHS).contains(&m) => 1,
            _ => return Vec::new(),
        },
        PeriodKind::Month | PeriodKind::IsoWeek => return Vec::new(),
    };
    let mut out = Vec::new();
    let mut start = canonical.start();
    while start < canonical.end() {
        let Some(end) = start.checked_add_months(Months::new(step)) else {
            return Vec::new();
        };
        let part = if step == 3 {
            Period::quarter(start.year(), start.month0() / 3 + 1)
        } else {
            Period::month(start.year(), start.month())
        };
        match part {
            Some(p) => out.push(p),
            None => return Vec::new(),
        }
        start = end;
    }
    out
}

/// What was submitted for one rep and one exact period (cents).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Submitted {
    /// The rep's own latest CALL (PERSONAL).
    pub call: Option<i64>,
    /// The latest PERSONAL adjustment by someone above the rep.
    pub adjustment: Option<i64>,
}

/// A personal number and whether it was summed from parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Personal {
    pub cents: i128,
    pub from_parts: bool,
}

/// personal(P) of one rep, given what it submitted for any exact period and
/// its closed-won in any period.
pub fn personal(
    p: &Period,
    submitted: &impl Fn(&Period) -> Submitted,
    closed_won: &impl Fn(&Period) -> i128,
) -> Option<Personal> {
    let s = submitted(p);
    if let Some(c) = s.adjustment.or(s.call) {
        return Some(Personal {
            cents: i128::from(c),
            from_parts: false,
        });
    }
    let parts = parts(p);
    let numbers: Vec<Option<i128>> = parts
        .iter()
        .map(|q| personal(q, submitted, closed_won).map(|n| n.cents))
        .collect();
    if numbers.iter().all(Option::is_none) {
        return None;
    }
    Some(Personal {
        cents: parts
            .iter()
            .zip(numbers)
            .map(|(q, n)| n.unwrap_or_else(|| closed_won(q)))
            .sum(),
        from_parts: true,
    })
}

/// The roll-up of a node: its TEAM adjustment, else its personal number (0
/// when none) plus its children's roll-ups.
pub fn rollup(
    team: Option<i64>,
    personal: Option<i128>,
    children: impl IntoIterator<Item = i128>,
) -> i128 {
    match team {
        Some(t) => i128::from(t),
        None => personal.unwrap_or(0) + children.into_iter().sum::<i128>(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn p(s: &str) -> Period {
        s.parse().unwrap()
    }

    #[test]
    fn parts_tile_years_quarters_and_month_ranges() {
        let names =
            |s: &str| -> Vec<String> { parts(&p(s)).iter().map(|x| x.to_string()).collect() };
        assert_eq!(names("2026"), ["2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"]);
        assert_eq!(names("2026-Q4"), ["2026-10", "2026-11", "2026-12"]);
        assert_eq!(
            names("2026-10-01..2027-01-01"),
            ["2026-10", "2026-11", "2026-12"]
        );
        assert_eq!(
            names("2026-11-01..2027-02-01"),
            ["2026-11", "2026-12", "2027-01"]
        );
        assert!(names("2026-11").is_empty());
        assert!(names("2026-W45").is_empty());
        assert!(names("2026-11-05..2026-12-01").is_empty());
        assert!(names("2020-01-01..2026-01-01").is_empty());
    }

    /// docs/design.md, Forecast calls: calls of 10,000 for November and
    /// 6,000 for December, nothing for Q4, 3,000 won in October: 19,000.
    /// The manager adjusts November to 8,000: 17,000. The manager's own 0
    /// and a TEAM adjustment of 40,000: its roll-up is 40,000.
    #[test]
    fn the_design_example() {
        let mut subs: HashMap<Period, Submitted> = HashMap::new();
        subs.insert(
            p("2026-11"),
            Submitted {
                call: Some(1_000_000),
                adjustment: None,
            },
        );
        subs.insert(
            p("2026-12"),
            Submitted {
                call: Some(600_000),
                adjustment: None,
            },
        );
        let won = |q: &Period| if *q == p("2026-10") { 300_000 } else { 0 };
        let get = |s: &HashMap<Period, Submitted>| {
            let s = s.clone();
            move |q: &Period| s.get(q).copied().unwrap_or_default()
        };
        assert_eq!(
            personal(&p("2026-Q4"), &get(&subs), &won),
            Some(Personal {
                cents: 1_900_000,
                from_parts: true
            })
        );
        subs.get_mut(&p("2026-11")).unwrap().adjustment = Some(800_000);
        let rep = personal(&p("2026-Q4"), &get(&subs), &won).unwrap();
        assert_eq!(rep.cents, 1_700_000);
        // The year: Q1-Q3 count what they won (nothing), Q4 its parts.
        assert_eq!(
            personal(&p("2026"), &get(&subs), &won).unwrap().cents,
            1_700_000
        );
        // A quarter's own call wins over its parts.
        subs.insert(
            p("2026-Q4"),
            Submitted {
                call: Some(2_000_000),
                adjustment: None,
            },
        );
        assert_eq!(
            personal(&p("2026-Q4"), &get(&subs), &won),
            Some(Personal {
                cents: 2_000_000,
                from_parts: false
            })
        );
        // Nothing submitted: no number.
        assert_eq!(personal(&p("2026-Q3"), &get(&subs), &won), None);
        // The manager: its own 0 plus the rep's 17,000, unless TEAM says 40,000.
        assert_eq!(rollup(None, Some(0), [rep.cents]), 1_700_000);
        assert_eq!(rollup(Some(4_000_000), Some(0), [rep.cents]), 4_000_000);
        assert_eq!(rollup(None, None, [5, 7]), 12);
    }
}
