//! DealFilter as one SQL condition over the `deal` table (aliased `deal`),
//! shared by the deal list and by every metric that takes a filter.
use chrono::{DateTime, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use entity::enums::{DealStatus, ForecastCategory, Segment};
use sea_orm::ActiveEnum;

use super::access::DealScope;
use super::account::like_pattern;
use crate::clock::start_of;
use crate::db::{Dialect, Sql};
use crate::domain::money::MAX_CENTS;
use crate::domain::period::Period;
use crate::domain::risk::RiskKind;
use crate::error::{AppError, AppResult};

#[derive(Debug, Default, Clone, PartialEq, Eq, Hash)]
pub struct DealFilter {
    pub status: Option<Vec<DealStatus>>,
    pub stage_ids: Option<Vec<i64>>,
    pub owner_ids: Option<Vec<i64>>,
    /// Deals in these territories or any territory below them.
    pub territory_ids: Option<Vec<i64>>,
    /// By the segment of the deal's territory.
    pub segments: Option<Vec<Segment>>,
    pub forecast_categories: Option<Vec<ForecastCategory>>,
    pub min_amount_cents: Option<i64>,
    pub max_amount_cents: Option<i64>,
    pub opened_in: Option<Period>,
    pub expected_close_in: Option<Period>,
    pub closed_in: Option<Period>,
    pub search: Option<String>,
    pub updated_since: Option<DateTime<Utc>>,
    /// Deals following these playbooks (not in the contract's filter; used by
    /// playbook metrics).
    pub playbook_ids: Option<Vec<i64>>,
    /// Deals not changed since this instant (updated_at before it).
    pub not_updated_since: Option<DateTime<Utc>>,
    /// Open deals showing at least one of these risk signals now.
    pub risk_signals: Option<Vec<RiskKind>>,
}

/// A filter bound in cents, refused beyond the amounts a deal may carry
/// (checked: scaling a huge Decimal overflows).
fn bound_cents(amount: Decimal, round: fn(&Decimal) -> Decimal, field: &str) -> AppResult<i64> {
    amount
        .checked_mul(Decimal::ONE_HUNDRED)
        .map(|c| round(&c))
        .and_then(|c| c.to_i64())
        .filter(|c| c.unsigned_abs() <= MAX_CENTS as u64)
        .ok_or_else(|| {
            AppError::bad_input(format!(
                "{field} must be at most 1000000000000 (10^12) in absolute value"
            ))
        })
}

/// Inclusive lower bound in cents: 10.005 means at least 10.01.
pub fn min_cents(amount: Decimal) -> AppResult<i64> {
    bound_cents(amount, Decimal::ceil, "minAmount")
}

/// Inclusive upper bound in cents: 10.005 means at most 10.00.
pub fn max_cents(amount: Decimal) -> AppResult<i64> {
    bound_cents(amount, Decimal::floor, "maxAmount")
}

/// Characters of a search text. SQLite refuses a LIKE pattern over 50,000
/// bytes (SQLITE_MAX_LIKE_PATTERN_LENGTH, measured: 50,000 accepted, 50,001
/// "LIKE or GLOB pattern too complex", an INTERNAL error before); a
/// character takes at most 8 bytes once lowercased and escaped, so 1,000
/// characters stay under 8,002 bytes on both databases.
pub const MAX_SEARCH_CHARS: usize = 1_000;

/// A search text both databases can match.
pub fn check_search(s: &str, field: &str) -> AppResult<()> {
    if s.chars().count() > MAX_SEARCH_CHARS {
        Err(AppError::bad_input(format!(
            "{field} must be at most {MAX_SEARCH_CHARS} characters"
        )))
    } else {
        Ok(())
    }
}

fn push_in<V: Into<sea_orm::Value>>(sql: &mut Sql, col: &str, values: impl IntoIterator<Item = V>) {
    sql.push(" AND ").push(col).push(" IN ").bind_list(values);
}

fn push_range(sql: &mut Sql, col: &str, p: &Period) {
    sql.push(&format!(" AND {col} >= "))
        .bind(start_of(p.start()))
        .push(&format!(" AND {col} < "))
        .bind(start_of(p.end()));
}

impl DealFilter {
    /// Appends ` AND ...` conditions for this filter and the caller's scope.
    pub fn push_sql(&self, sql: &mut Sql, scope: DealScope, d: Dialect) {
        let (scope_sql, scope_values) = scope.rep_sql("deal.owner_id");
        sql.push(" AND ").push_with(&scope_sql, scope_values);
        if let Some(s) = &self.status {
            push_in(sql, "deal.status", s.iter().map(|v| v.to_value()));
        }
        if let Some(ids) = &self.stage_ids {
            push_in(sql, "deal.stage_id", ids.iter().copied());
        }
        if let Some(ids) = &self.owner_ids {
            push_in(sql, "deal.owner_id", ids.iter().copied());
        }
        if let Some(ids) = &self.playbook_ids {
            push_in(sql, "deal.playbook_id", ids.iter().copied());
        }
        if let Some(ids) = &self.territory_ids {
            sql.push(" AND deal.territory_id IN (WITH RECURSIVE sub(id) AS (SELECT id FROM territory WHERE id IN ")
                .bind_list(ids.iter().copied())
                .push(" UNION SELECT t.id FROM territory t JOIN sub ON t.parent_id = sub.id) SELECT id FROM sub)");
        }
        if let Some(segs) = &self.segments {
            sql.push(" AND deal.territory_id IN (SELECT id FROM territory WHERE segment IN ")
                .bind_list(segs.iter().map(|v| v.to_value()))
                .push(")");
        }
        if let Some(c) = &self.forecast_categories {
            push_in(
                sql,
                "deal.forecast_category",
                c.iter().map(|v| v.to_value()),
            );
        }
        if let Some(min) = self.min_amount_cents {
            sql.push(" AND deal.amount_cents >= ").bind(min);
        }
        if let Some(max) = self.max_amount_cents {
            sql.push(" AND deal.amount_cents <= ").bind(max);
        }
        if let Some(p) = &self.opened_in {
            push_range(sql, "deal.opened_at", p);
        }
        if let Some(p) = &self.closed_in {
            push_range(sql, "deal.closed_at", p);
        }
        if let Some(p) = &self.expected_close_in {
            sql.push(" AND deal.expected_close_date >= ")
                .bind(p.start())
                .push(" AND deal.expected_close_date < ")
                .bind(p.end());
        }
        if let Some(s) = self
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            sql.push(" AND LOWER(deal.name) LIKE ")
                .bind(like_pattern(s))
                .push(" ESCAPE '\\'");
        }
        if let Some(t) = self.updated_since {
            sql.push(" AND deal.updated_at >= ").bind(t);
        }
        if let Some(t) = self.not_updated_since {
            sql.push(" AND deal.updated_at < ").bind(t);
        }
        if let Some(kinds) = &self.risk_signals {
            super::deal_risk::push_filter(sql, d, kinds, crate::clock::now());
        }
    }
}
