//! Exact money and ratios. Amounts live in the database as integer cents and
//! ratios (probabilities, commission rates) as integer parts per million;
//! arithmetic happens on `Decimal` and is rounded to cents once, at the end.
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

pub const PPM: i64 = 1_000_000;

/// The largest amount accepted anywhere (deals, quotas, forecasts, S&OP
/// lines, filters): 10^12 in the currency, 10^14 cents. At this bound a sum
/// over any number of rows a database can hold is exact: sums are read as
/// 128-bit integers (see `db::Dialect::sum_cents`), and 2^63 rows x 10^14
/// cents < 10^33 < i128::MAX; amount x probability stays below 10^20 per
/// row and is multiplied in Rust, in i128, never in SQL.
pub const MAX_CENTS: i64 = 100_000_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("{0} must not be negative")]
    Negative(&'static str),
    #[error("{0} has more than 2 decimal places")]
    TooPrecise(&'static str),
    #[error("{0} must be at most 1000000000000 (10^12) in absolute value")]
    TooLarge(&'static str),
    #[error("{0} must be between 0 and 1 with at most 6 decimal places")]
    BadRatio(&'static str),
}

/// A non-negative amount in whole cents, the form money is stored in.
pub fn to_cents(amount: Decimal, field: &'static str) -> Result<i64, MoneyError> {
    to_signed_cents(amount, field).and_then(|c| {
        if c < 0 {
            Err(MoneyError::Negative(field))
        } else {
            Ok(c)
        }
    })
}

/// An amount in whole cents that may be negative (adjustments, variances).
pub fn to_signed_cents(amount: Decimal, field: &'static str) -> Result<i64, MoneyError> {
    let normalized = amount.normalize();
    if normalized.scale() > 2 {
        return Err(MoneyError::TooPrecise(field));
    }
    // checked: a Decimal near its 96-bit maximum overflows when scaled.
    normalized
        .checked_mul(Decimal::ONE_HUNDRED)
        .and_then(|c| c.to_i64())
        .filter(|c| c.unsigned_abs() <= MAX_CENTS as u64)
        .ok_or(MoneyError::TooLarge(field))
}

/// Cents (stored i64 or a 128-bit sum) as a Decimal with exactly two
/// places ("1250.00"). Sums reach this below 10^27 cents (`db::SumCents`),
/// well inside Decimal's 96 bits (7.9 x 10^28).
pub fn from_cents(cents: impl Into<i128>) -> Decimal {
    Decimal::from_i128_with_scale(cents.into(), 2)
}

/// Rounds to cents, half away from zero: the one rounding step of a result.
pub fn round_money(amount: Decimal) -> Decimal {
    let mut rounded = amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    rounded.rescale(2);
    rounded
}

/// A ratio in 0..=max as parts per million (exact up to 6 places).
pub fn ratio_to_ppm(value: Decimal, max: Decimal, field: &'static str) -> Result<i64, MoneyError> {
    let normalized = value.normalize();
    if value < Decimal::ZERO || value > max || normalized.scale() > 6 {
        return Err(MoneyError::BadRatio(field));
    }
    normalized
        .checked_mul(Decimal::from(PPM))
        .and_then(|v| v.to_i64())
        .ok_or(MoneyError::BadRatio(field))
}

/// A float probability from the API, kept to 6 decimal places.
pub fn probability_to_ppm(p: f64, field: &'static str) -> Result<i64, MoneyError> {
    if !p.is_finite() || !(0.0..=1.0).contains(&p) {
        return Err(MoneyError::BadRatio(field));
    }
    Ok((p * PPM as f64).round() as i64)
}

/// A stored ratio as a Decimal with at least two places ("0.10", "0.125").
pub fn ppm_to_decimal(ppm: i64) -> Decimal {
    let mut d = Decimal::new(ppm, 6).normalize();
    if d.scale() < 2 {
        d.rescale(2);
    }
    d
}

pub fn ppm_to_f64(ppm: i64) -> f64 {
    ppm as f64 / PPM as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn cents_round_trip() {
        assert_eq!(to_cents(dec("1250.00"), "amount"), Ok(125_000));
        assert_eq!(to_cents(dec("1250.5"), "amount"), Ok(125_050));
        assert_eq!(to_cents(dec("0"), "amount"), Ok(0));
        assert_eq!(from_cents(125_000).to_string(), "1250.00");
        assert_eq!(from_cents(-5).to_string(), "-0.05");
    }

    #[test]
    fn bad_amounts() {
        assert_eq!(
            to_cents(dec("-1"), "amount"),
            Err(MoneyError::Negative("amount"))
        );
        assert_eq!(
            to_cents(dec("1.005"), "amount"),
            Err(MoneyError::TooPrecise("amount"))
        );
        assert_eq!(to_cents(dec("1.0000"), "amount"), Ok(100));
        assert_eq!(
            to_cents(dec("99999999999999999999"), "amount"),
            Err(MoneyError::TooLarge("amount"))
        );
        assert_eq!(to_signed_cents(dec("-12.34"), "amount"), Ok(-1234));
        assert_eq!(to_cents(dec("1000000000000"), "amount"), Ok(MAX_CENTS));
        assert_eq!(
            to_cents(dec("1000000000000.01"), "amount"),
            Err(MoneyError::TooLarge("amount"))
        );
        assert_eq!(
            to_signed_cents(dec("-1000000000000.01"), "amount"),
            Err(MoneyError::TooLarge("amount"))
        );
        // Decimal::MAX overflows when scaled to cents: an error, not a panic.
        assert_eq!(
            to_cents(dec("79228162514264337593543950335"), "amount"),
            Err(MoneyError::TooLarge("amount"))
        );
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(round_money(dec("0.125")).to_string(), "0.13");
        assert_eq!(round_money(dec("-0.125")).to_string(), "-0.13");
        assert_eq!(round_money(dec("0.124")).to_string(), "0.12");
        assert_eq!(round_money(dec("600")).to_string(), "600.00");
    }

    #[test]
    fn ratios() {
        assert_eq!(ratio_to_ppm(dec("0.10"), Decimal::ONE, "rate"), Ok(100_000));
        assert_eq!(
            ratio_to_ppm(dec("1.5"), Decimal::ONE, "rate"),
            Err(MoneyError::BadRatio("rate"))
        );
        assert_eq!(
            ratio_to_ppm(dec("0.0000001"), Decimal::ONE, "rate"),
            Err(MoneyError::BadRatio("rate"))
        );
        assert_eq!(probability_to_ppm(0.6, "p"), Ok(600_000));
        assert!(probability_to_ppm(1.01, "p").is_err());
        assert!(probability_to_ppm(f64::NAN, "p").is_err());
        assert_eq!(ppm_to_decimal(600_000).to_string(), "0.60");
        assert_eq!(ppm_to_decimal(125_000).to_string(), "0.125");
        assert_eq!(ppm_to_decimal(1_000_000).to_string(), "1.00");
        assert_eq!(ppm_to_f64(600_000), 0.6);
    }
}
