//! The math of docs/design.md (Metrics) on aggregates the database already
//! summed: ratios, quota attainment and coverage, the performance quadrant,
//! commissions, medians and relative change. Money is integer cents here;
//! a null denominator gives None, never NaN.
use rust_decimal::Decimal;

use super::money::{from_cents, round_money, PPM};

/// num / den, None when den is 0.
pub fn ratio(num: impl Into<i128>, den: impl Into<i128>) -> Option<f64> {
    let (num, den) = (num.into(), den.into());
    (den != 0).then(|| num as f64 / den as f64)
}

/// won / (won + lost) by count; None when nothing closed.
pub fn win_rate(won: impl Into<i128>, lost: impl Into<i128>) -> Option<f64> {
    let won = won.into();
    ratio(won, won + lost.into())
}

/// Mean of a total over a count (mean days, mean cents), None for no items.
pub fn mean(total: impl Into<i128>, count: i64) -> Option<f64> {
    ratio(total, count)
}

/// Mean amount in cents as money rounded to cents, None for no items.
pub fn mean_money(total_cents: impl Into<i128>, count: i64) -> Option<Decimal> {
    (count != 0).then(|| round_money(from_cents(total_cents) / Decimal::from(count)))
}

/// closed-won / quota; None without a quota.
pub fn attainment(closed_won_cents: i128, quota_cents: i128) -> Option<f64> {
    ratio(closed_won_cents, quota_cents)
}

/// True when a rep with a quota closed at least all of it.
pub fn attained_quota(closed_won_cents: i128, quota_cents: i128) -> bool {
    quota_cents > 0 && closed_won_cents >= quota_cents
}

/// max(quota - closed-won, 0).
pub fn gap_to_quota(quota_cents: i128, closed_won_cents: i128) -> i128 {
    (quota_cents - closed_won_cents).max(0)
}

/// open pipeline / gap; None when the gap is 0.
pub fn coverage(open_pipeline_cents: i128, gap_cents: i128) -> Option<f64> {
    ratio(open_pipeline_cents, gap_cents)
}

/// Amount weighted by a probability in ppm, exact (rounded by the caller
/// once, after summing): cents x ppm in i128, then a Decimal of scale 8,
/// exact below 7.9 x 10^28 (7.9 x 10^14 currency units at probability 1,
/// far past any sum `db::SumCents` lets through at 2^31 deals); beyond
/// it Decimal keeps 28 significant digits, still far below a cent.
pub fn weighted(cents: impl Into<i128>, probability_ppm: i64) -> Decimal {
    let cents = cents.into();
    cents
        .checked_mul(probability_ppm as i128)
        .and_then(|p| Decimal::try_from_i128_with_scale(p, 8).ok())
        .unwrap_or_else(|| from_cents(cents) * Decimal::new(probability_ppm, 6))
}

/// The median of a histogram of (value, count) pairs in any order; the
/// mean of the two middle values for an even count. None when empty.
/// Values widen to i128 so two money sums can be added without overflow.
pub fn median_of_histogram<V: Copy + Into<i128>>(hist: &[(V, i64)]) -> Option<f64> {
    let mut h: Vec<(i128, i64)> = hist
        .iter()
        .map(|(v, n)| ((*v).into(), *n))
        .filter(|(_, n)| *n > 0)
        .collect();
    h.sort_unstable();
    let total: i64 = h.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return None;
    }
    // 0-based ranks of the middle value(s).
    let (lo, hi) = ((total - 1) / 2, total / 2);
    let at = |rank: i64| {
        let mut seen = 0;
        for (v, n) in &h {
            seen += n;
            if rank < seen {
                return *v;
            }
        }
        h[h.len() - 1].0
    };
    Some((at(lo) + at(hi)) as f64 / 2.0)
}

/// The median of plain values (cents, days).
pub fn median<V: Copy + Into<i128>>(values: &[V]) -> Option<f64> {
    let hist: Vec<(V, i64)> = values.iter().map(|v| (*v, 1)).collect();
    median_of_histogram(&hist)
}

/// (current - previous) / previous; None for a missing value or a previous
/// value of 0.
pub fn relative_change(previous: Option<f64>, current: Option<f64>) -> Option<f64> {
    match (previous, current) {
        (Some(p), Some(c)) if p != 0.0 => Some((c - p) / p),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quadrant {
    RisingStar,
    FallingStar,
    ImprovingLaggard,
    DeterioratingLaggard,
    /// No quota and nothing closed in either period: nothing to judge.
    NoActivity,
}

/// Whether a rep has anything to be judged on: a quota or closed-won in
/// the current or the previous period.
pub fn has_activity(quotas: [i128; 2], closed_won: [i128; 2]) -> bool {
    quotas.iter().chain(&closed_won).any(|c| *c != 0)
}

/// A high performer has attainment >= 1.0; without a quota, closed-won at
/// or above the median closed-won of the reps compared.
pub fn is_high_performer(
    closed_won_cents: i128,
    quota_cents: i128,
    median_closed_won_cents: Option<f64>,
) -> bool {
    if quota_cents > 0 {
        closed_won_cents >= quota_cents
    } else {
        median_closed_won_cents.is_some_and(|m| closed_won_cents as f64 >= m)
    }
}

/// Improving means closed-won did not fall.
pub fn quadrant(high: bool, current_cents: i128, previous_cents: i128) -> Quadrant {
    match (high, current_cents >= previous_cents) {
        (true, true) => Quadrant::RisingStar,
        (true, false) => Quadrant::FallingStar,
        (false, true) => Quadrant::ImprovingLaggard,
        (false, false) => Quadrant::DeterioratingLaggard,
    }
}

/// Commission: closed-won x rate when attainment reaches the threshold,
/// else 0. Compared exactly in integers: closed x 1e6 >= threshold x quota.
/// Without a quota attainment is undefined, so only a threshold of 0 pays.
pub fn commission(
    closed_won_cents: i128,
    quota_cents: i128,
    rate_ppm: i64,
    threshold_ppm: i64,
) -> (bool, Decimal) {
    let qualified = if quota_cents > 0 {
        closed_won_cents * PPM as i128 >= threshold_ppm as i128 * quota_cents
    } else {
        threshold_ppm == 0
    };
    let earned = if qualified {
        round_money(weighted(closed_won_cents, rate_ppm))
    } else {
        from_cents(0)
    };
    (qualified, earned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn design_commission_example() {
        // 10,000 quota, rate 0.10, threshold 1.0: closing 12,000 earns 1,200.
        assert_eq!(
            commission(1_200_000, 1_000_000, 100_000, 1_000_000),
            (true, dec("1200.00"))
        );
        // Closing 9,000 (90%) earns nothing.
        assert_eq!(
            commission(900_000, 1_000_000, 100_000, 1_000_000),
            (false, dec("0.00"))
        );
        // Exactly at the threshold pays; a lower threshold pays earlier.
        assert_eq!(
            commission(1_000_000, 1_000_000, 100_000, 1_000_000),
            (true, dec("1000.00"))
        );
        assert_eq!(
            commission(900_000, 1_000_000, 100_000, 800_000),
            (true, dec("900.00"))
        );
        // No quota: attainment is undefined.
        assert!(!commission(500_000, 0, 100_000, 1_000_000).0);
        assert_eq!(commission(500_000, 0, 100_000, 0), (true, dec("500.00")));
        // Rounded once, half away from zero: 0.05 x 10.01 = 0.5005.
        assert_eq!(commission(1_001, 0, 50_000, 0).1, dec("0.50"));
    }

    #[test]
    fn ratios_with_null_denominators() {
        assert_eq!(win_rate(3, 1), Some(0.75));
        assert_eq!(win_rate(0, 0), None);
        assert_eq!(attainment(1_200_000, 1_000_000), Some(1.2));
        assert_eq!(attainment(5, 0), None);
        assert_eq!(mean(91, 2), Some(45.5));
        assert_eq!(mean(0, 0), None);
        assert_eq!(mean_money(1_001, 2), Some(dec("5.01")));
        assert_eq!(mean_money(0, 0), None);
    }

    #[test]
    fn gap_and_coverage() {
        // quota 10,000, won 4,000: gap 6,000; pipeline 9,000 covers 1.5x.
        assert_eq!(gap_to_quota(1_000_000, 400_000), 600_000);
        assert_eq!(coverage(900_000, 600_000), Some(1.5));
        // Over quota: no gap, coverage undefined.
        assert_eq!(gap_to_quota(1_000_000, 1_200_000), 0);
        assert_eq!(coverage(900_000, 0), None);
        assert!(attained_quota(1_000_000, 1_000_000));
        assert!(!attained_quota(999_999, 1_000_000));
        assert!(!attained_quota(5, 0));
    }

    #[test]
    fn weighted_is_exact() {
        // A 1,000 deal in Trial (0.60) counts 600 (docs/design.md).
        assert_eq!(round_money(weighted(100_000, 600_000)), dec("600.00"));
        assert_eq!(weighted(1, 500_000), dec("0.005"));
    }

    #[test]
    fn medians() {
        assert_eq!(median::<i64>(&[]), None);
        assert_eq!(median(&[7i64]), Some(7.0));
        assert_eq!(median(&[30, 10, 20]), Some(20.0));
        assert_eq!(median(&[40, 10, 20, 30]), Some(25.0));
        assert_eq!(median_of_histogram(&[(10, 3), (50, 1)]), Some(10.0));
        assert_eq!(median_of_histogram(&[(50, 2), (10, 2)]), Some(30.0));
        assert_eq!(median_of_histogram(&[(10i64, 0)]), None);
    }

    #[test]
    fn changes() {
        assert_eq!(relative_change(Some(0.5), Some(0.25)), Some(-0.5));
        assert_eq!(relative_change(Some(2.0), Some(3.0)), Some(0.5));
        assert_eq!(relative_change(Some(0.0), Some(3.0)), None);
        assert_eq!(relative_change(None, Some(3.0)), None);
        assert_eq!(relative_change(Some(3.0), None), None);
    }

    #[test]
    fn quadrants() {
        // With a quota: attainment decides.
        assert!(is_high_performer(1_000_000, 1_000_000, None));
        assert!(!is_high_performer(999_999, 1_000_000, Some(0.0)));
        // Without: the median of the reps compared.
        assert!(is_high_performer(500, 0, Some(500.0)));
        assert!(!is_high_performer(499, 0, Some(500.0)));
        assert!(!is_high_performer(499, 0, None));
        assert_eq!(quadrant(true, 10, 10), Quadrant::RisingStar);
        assert_eq!(quadrant(true, 9, 10), Quadrant::FallingStar);
        assert_eq!(quadrant(false, 11, 10), Quadrant::ImprovingLaggard);
        assert_eq!(quadrant(false, 0, 10), Quadrant::DeterioratingLaggard);
        assert!(!has_activity([0, 0], [0, 0]));
        assert!(has_activity([0, 1], [0, 0]));
        assert!(has_activity([0, 0], [0, 5]));
    }
}
