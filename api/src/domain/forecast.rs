//! Forecast math that does not need the database.
//!
//! HISTORICAL (DESIGN.md "Forecasts"): the run rate R is the closed-won of
//! the `lookback_months` whole months before the period divided by
//! `lookback_months`; the forecast of a period of `months` whole months is
//!
//! ```text
//! amount = max(R x months x (1 + growth_rate) + newReps x dealsPerNewRep x newRepDealSize,
//!              closed-won already in the period)
//! ```
//!
//! A grouped row (a territory, a segment, ...) splits R by the group's
//! share of the lookback, which is the group's own lookback closed-won over
//! `lookback_months`; the new-rep ramp is split by whatever share the caller
//! passes (`ramp_share`: 1 for the whole set).
//!
//! Nothing here rounds: callers round the final amount to cents once.
use rust_decimal::Decimal;

/// Default whole months of closed-won that set the run rate.
pub const DEFAULT_LOOKBACK_MONTHS: u32 = 3;

/// The assumptions of a HISTORICAL forecast.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoricalParams {
    /// Whole months before the period that set the run rate (at least 1).
    pub lookback_months: u32,
    /// Expected growth on the run rate, e.g. 0.05.
    pub growth_rate: Decimal,
    /// New reps joining for the period.
    pub new_reps: Decimal,
    /// Deals each new rep is expected to close in the period.
    pub deals_per_new_rep: Decimal,
    /// Average size of a new rep's deal.
    pub new_rep_deal_size: Decimal,
}

impl Default for HistoricalParams {
    fn default() -> Self {
        Self {
            lookback_months: DEFAULT_LOOKBACK_MONTHS,
            growth_rate: Decimal::ZERO,
            new_reps: Decimal::ZERO,
            deals_per_new_rep: Decimal::ZERO,
            new_rep_deal_size: Decimal::ZERO,
        }
    }
}

/// What one row of a HISTORICAL forecast is computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoricalRow {
    /// Closed-won of the row in the lookback months.
    pub lookback_won: Decimal,
    /// Closed-won of the row already in the period (the floor).
    pub won_in_period: Decimal,
    /// Whole months in the period.
    pub months: u32,
    /// The row's share of the new-rep ramp (1 for the whole set, 0 for none).
    pub ramp_share: Decimal,
}

/// The monthly run rate R: lookback closed-won / lookback months (0 when the
/// lookback is empty).
pub fn run_rate(lookback_won: Decimal, lookback_months: u32) -> Decimal {
    if lookback_months == 0 {
        Decimal::ZERO
    } else {
        lookback_won / Decimal::from(lookback_months)
    }
}

/// newReps x dealsPerNewRep x newRepDealSize.
pub fn new_rep_ramp(params: &HistoricalParams) -> Decimal {
    params.new_reps * params.deals_per_new_rep * params.new_rep_deal_size
}

/// `part / whole`, or 0 when `whole` is 0: a group's share of the lookback.
pub fn share(part: Decimal, whole: Decimal) -> Decimal {
    if whole.is_zero() {
        Decimal::ZERO
    } else {
        part / whole
    }
}

/// The HISTORICAL forecast of one row, unrounded.
pub fn historical_amount(params: &HistoricalParams, row: &HistoricalRow) -> Decimal {
    let rate = run_rate(row.lookback_won, params.lookback_months);
    let projected = rate * Decimal::from(row.months) * (Decimal::ONE + params.growth_rate)
        + new_rep_ramp(params) * row.ramp_share;
    projected.max(row.won_in_period)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn design_params(deals_per_new_rep: &str) -> HistoricalParams {
        HistoricalParams {
            lookback_months: 3,
            growth_rate: dec("0.05"),
            new_reps: dec("5"),
            deals_per_new_rep: dec(deals_per_new_rep),
            new_rep_deal_size: dec("5000"),
        }
    }

    fn one_month(lookback_won: &str) -> HistoricalRow {
        HistoricalRow {
            lookback_won: dec(lookback_won),
            won_in_period: Decimal::ZERO,
            months: 1,
            ramp_share: Decimal::ONE,
        }
    }

    #[test]
    fn design_example_one_deal_per_new_rep() {
        // R = 3,000,000 / 3 = 1,000,000; x 1.05 = 1,050,000; + 5 x 1 x 5,000.
        let p = design_params("1");
        assert_eq!(run_rate(dec("3000000"), 3), dec("1000000"));
        assert_eq!(new_rep_ramp(&p), dec("25000"));
        assert_eq!(historical_amount(&p, &one_month("3000000")), dec("1075000"));
    }

    #[test]
    fn design_example_five_deals_per_new_rep() {
        // The ramp adds 5 x 5 x 5,000 = 125,000: 1,050,000 + 125,000.
        let p = design_params("5");
        assert_eq!(new_rep_ramp(&p), dec("125000"));
        assert_eq!(historical_amount(&p, &one_month("3000000")), dec("1175000"));
    }

    #[test]
    fn months_multiply_the_run_rate_not_the_ramp() {
        // A quarter: 1,000,000 x 3 x 1.05 + 25,000 = 3,175,000.
        let p = design_params("1");
        let row = HistoricalRow {
            months: 3,
            ..one_month("3000000")
        };
        assert_eq!(historical_amount(&p, &row), dec("3175000"));
    }

    #[test]
    fn never_below_what_is_already_won() {
        let p = HistoricalParams::default();
        // R = 900 / 3 = 300, but 450 is already won in the month.
        let row = HistoricalRow {
            won_in_period: dec("450"),
            ..one_month("900")
        };
        assert_eq!(historical_amount(&p, &row), dec("450"));
        let row = HistoricalRow {
            won_in_period: dec("250"),
            ..one_month("900")
        };
        assert_eq!(historical_amount(&p, &row), dec("300"));
    }

    #[test]
    fn groups_split_the_run_rate_by_their_share_of_the_lookback() {
        // Lookback: East won 2,000,000 and West 1,000,000 of 3,000,000.
        // R = 1,000,000 splits 2/3 : 1/3; the ramp (25,000) split the same way.
        let p = design_params("1");
        let total = dec("3000000");
        let east = HistoricalRow {
            ramp_share: share(dec("2000000"), total),
            ..one_month("2000000")
        };
        let west = HistoricalRow {
            ramp_share: share(dec("1000000"), total),
            ..one_month("1000000")
        };
        let (e, w) = (historical_amount(&p, &east), historical_amount(&p, &west));
        // East: 666,666.67 x 1.05 = 700,000 + 16,666.67 = 716,666.67 (rounded).
        assert_eq!(crate::domain::money::round_money(e), dec("716666.67"));
        // West: 333,333.33 x 1.05 = 350,000 + 8,333.33 = 358,333.33 (rounded).
        assert_eq!(crate::domain::money::round_money(w), dec("358333.33"));
        // The rows add up to the whole (up to the last representable digit).
        assert_eq!(crate::domain::money::round_money(e + w), dec("1075000.00"));
    }

    #[test]
    fn empty_lookback_and_zero_whole() {
        assert_eq!(run_rate(dec("100"), 0), Decimal::ZERO);
        assert_eq!(share(dec("5"), Decimal::ZERO), Decimal::ZERO);
        let p = HistoricalParams::default();
        assert_eq!(historical_amount(&p, &one_month("0")), Decimal::ZERO);
    }

    #[test]
    fn negative_growth_shrinks_the_run_rate() {
        let p = HistoricalParams {
            growth_rate: dec("-0.10"),
            ..HistoricalParams::default()
        };
        // R = 3,000 / 3 = 1,000; x 0.9 = 900.
        assert_eq!(historical_amount(&p, &one_month("3000")), dec("900"));
    }
}
