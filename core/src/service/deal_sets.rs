//! Deal sets several metrics and forecasts share: the average won cycle (its
//! statements are the metrics' and forecasts' own, over the deals or the
//! rollups), and the expected close date of an open deal (its own, or
//! opened_at plus the average won cycle when it has none; docs/design.md,
//! Metrics).
use crate::db::Dialect;

/// Days of won deals that set the average won cycle (docs/design.md, Forecasts: SALES_CYCLE).
pub const CYCLE_WINDOW_DAYS: i64 = 365;

/// The won cycle of the deals in a scope and filter: the total of whole UTC
/// days from opened_at to closed_at and the number of deals, for deals won
/// in the `CYCLE_WINDOW_DAYS` days ending with `as_of` (its end included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WonCycle {
    pub total_days: i64,
    pub deals: i64,
}

impl WonCycle {
    /// Mean days, None when nothing was won.
    pub fn mean(&self) -> Option<f64> {
        (self.deals > 0).then(|| self.total_days as f64 / self.deals as f64)
    }

    /// The mean rounded to whole days (half up), for date arithmetic.
    pub fn whole_days(&self) -> Option<i64> {
        (self.deals > 0).then(|| (self.total_days * 2 + self.deals).div_euclid(self.deals * 2))
    }
}

/// The expected close date of a deal as an SQL date expression: its own
/// expected_close_date, else the UTC date of opened_at plus the average won
/// cycle in whole days (no fallback when nothing was won).
pub fn expected_close_sql(d: Dialect, cycle: &WonCycle) -> String {
    match cycle.whole_days() {
        Some(days) => format!(
            "COALESCE(deal.expected_close_date, {})",
            d.date_plus_days("deal.opened_at", days)
        ),
        None => "deal.expected_close_date".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_whole_days() {
        let c = WonCycle {
            total_days: 91,
            deals: 2,
        };
        assert_eq!(c.mean(), Some(45.5));
        assert_eq!(c.whole_days(), Some(46));
        let c = WonCycle {
            total_days: 89,
            deals: 2,
        };
        assert_eq!(c.whole_days(), Some(45));
        assert_eq!(WonCycle::default().mean(), None);
        assert_eq!(WonCycle::default().whole_days(), None);
    }

    #[test]
    fn expected_close_falls_back_only_with_a_cycle() {
        let none = expected_close_sql(Dialect::Postgres, &WonCycle::default());
        assert_eq!(none, "deal.expected_close_date");
        let c = WonCycle {
            total_days: 120,
            deals: 1,
        };
        assert!(expected_close_sql(Dialect::Sqlite, &c).contains("'+120 days'"));
        assert!(expected_close_sql(Dialect::Postgres, &c).contains("+ (120)"));
    }
}
