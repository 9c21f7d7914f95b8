//! Lead metrics (docs/design.md, Leads and activities), over the leads
//! created in the period (half-open, UTC days) that the caller may see:
//! - response time: hours from created to first response, median and p90
//!   (linear interpolation between the two nearest ranks, as PostgreSQL's
//!   percentile_cont), and the share answered within the SLA among the leads
//!   that are due (answered, or created at least the SLA ago);
//! - the funnel: how many of them were worked, qualified, converted and
//!   disqualified by `asOf` (default now), with the rates between steps;
//! - score calibration: per score band, how many converted.
//!
//! Grouped by the lead's owner (REP), its manager, territory, segment,
//! source or industry.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult};

use entity::enums::Segment;

use crate::auth::Principal;
use crate::clock::start_of;
use crate::db::{Dialect, Sql};
use crate::domain::period::Period;
use crate::error::{AppError, AppResult};
use crate::service::access::METRIC_READERS;
use crate::service::grouping::{self, case_codes, missing_label, Dimension, GroupKey};
use crate::service::lead::LeadFilter;
use crate::service::lead_scoring;

/// A group as the SQL returns it: the id key and the text key.
type RawKey = (Option<i64>, Option<String>);

/// The SQL of a lead grouping: a join, an id key and a text key.
struct LeadGroup {
    join: &'static str,
    id: String,
    text: &'static str,
}

fn lead_group(dim: Dimension) -> AppResult<LeadGroup> {
    let g = |id: &str, text: &'static str| LeadGroup {
        join: "",
        id: id.to_owned(),
        text,
    };
    Ok(match dim {
        Dimension::None => g("CAST(NULL AS BIGINT)", "CAST(NULL AS TEXT)"),
        Dimension::Rep => g("lead.owner_id", "CAST(NULL AS TEXT)"),
        Dimension::Territory => g("lead.territory_id", "CAST(NULL AS TEXT)"),
        Dimension::Manager => LeadGroup {
            join: " JOIN rep g_owner ON g_owner.id = lead.owner_id",
            id: "g_owner.manager_id".to_owned(),
            text: "CAST(NULL AS TEXT)",
        },
        Dimension::Segment => g(&case_codes::<Segment>("lead.segment"), "CAST(NULL AS TEXT)"),
        Dimension::Source => g("CAST(NULL AS BIGINT)", "lead.source"),
        Dimension::Industry => g("CAST(NULL AS BIGINT)", "lead.industry"),
        other => {
            return Err(AppError::bad_input(format!(
                "groupBy: lead metrics group by NONE, REP, MANAGER, TERRITORY, SEGMENT, SOURCE or INDUSTRY, not {other:?}"
            )))
        }
    })
}

/// The group keys of rows (id key, text key).
async fn keys(
    db: &impl ConnectionTrait,
    dim: Dimension,
    rows: impl Iterator<Item = RawKey>,
) -> AppResult<HashMap<RawKey, GroupKey>> {
    let rows: Vec<_> = rows.collect();
    let text_dim = matches!(dim, Dimension::Source | Dimension::Industry);
    let labels = if text_dim {
        HashMap::new()
    } else {
        grouping::labels(db, dim, rows.iter().map(|(id, _)| *id)).await?
    };
    Ok(rows
        .into_iter()
        .map(|(id, text)| {
            let key = if text_dim {
                match &text {
                    Some(t) => GroupKey {
                        dimension: dim,
                        id: Some(t.clone()),
                        label: t.clone(),
                    },
                    None => GroupKey {
                        dimension: dim,
                        id: None,
                        label: missing_label(dim).to_owned(),
                    },
                }
            } else {
                labels[&id].clone()
            };
            ((id, text), key)
        })
        .collect())
}

fn cohort(sql: &mut Sql, period: &Period, p: &Principal, filter: &LeadFilter) {
    sql.push(" WHERE lead.created_at >= ")
        .bind(start_of(period.start()))
        .push(" AND lead.created_at < ")
        .bind(start_of(period.end()));
    filter.push_sql(sql, p.scope());
}

/// Whole seconds from `from` to `to` (timestamps).
fn seconds(d: Dialect, from: &str, to: &str) -> String {
    match d {
        Dialect::Sqlite => {
            format!("CAST(ROUND((julianday({to}) - julianday({from})) * 86400) AS INTEGER)")
        }
        Dialect::Postgres => format!("CAST(ROUND(EXTRACT(EPOCH FROM ({to} - {from}))) AS BIGINT)"),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResponseTimeRow {
    pub key: GroupKey,
    /// Leads created in the period.
    pub leads: i64,
    /// Of those, answered (a first response).
    pub responded: i64,
    pub median_hours: Option<f64>,
    pub p90_hours: Option<f64>,
    /// Answered within the SLA.
    pub within_sla: i64,
    /// Answered, or created at least the SLA ago (still unanswered: a miss).
    pub due: i64,
    /// within_sla / due.
    pub within_sla_share: Option<f64>,
}

#[derive(FromQueryResult)]
struct ResponseAgg {
    key_id: Option<i64>,
    key_text: Option<String>,
    leads: i64,
    responded: i64,
    within_sla: i64,
    due: i64,
    /// PostgreSQL computes the percentiles in the aggregate itself.
    median_secs: Option<f64>,
    p90_secs: Option<f64>,
}

#[derive(FromQueryResult)]
struct RankRow {
    key_id: Option<i64>,
    key_text: Option<String>,
    n: i64,
    rn: i64,
    secs: i64,
}

/// The p-quantile of n sorted values by linear interpolation, from the
/// values at 0-based ranks lo and lo+1: p = num/den.
fn quantile(values: &HashMap<i64, i64>, n: i64, num: i64, den: i64) -> Option<f64> {
    if n == 0 {
        return None;
    }
    let pos = num * (n - 1);
    let lo = pos / den;
    let frac = (pos % den) as f64 / den as f64;
    let a = *values.get(&(lo + 1))? as f64;
    let b = if frac > 0.0 {
        *values.get(&(lo + 2))? as f64
    } else {
        a
    };
    Some(a + frac * (b - a))
}

fn hours(secs: Option<f64>) -> Option<f64> {
    secs.map(|s| (s / 3600.0 * 100.0).round() / 100.0)
}

/// Two statements (the counts, and the ranks that make the median and
/// p90) plus the labels.
pub async fn response_time(
    db: &impl ConnectionTrait,
    p: &Principal,
    period: &Period,
    sla_hours: f64,
    dim: Dimension,
    filter: &LeadFilter,
    now: DateTime<Utc>,
) -> AppResult<Vec<ResponseTimeRow>> {
    p.require(METRIC_READERS)?;
    if !(sla_hours > 0.0 && sla_hours <= 24.0 * 365.0) {
        return Err(AppError::bad_input(
            "slaHours must be more than 0 and at most 8760",
        ));
    }
    let sla_secs = (sla_hours * 3600.0).round() as i64;
    let g = lead_group(dim)?;
    let d = Dialect::of(db);
    let secs = seconds(d, "lead.created_at", "lead.first_response_at");
    let due_before = now - chrono::Duration::seconds(sla_secs);
    let mut sql = Sql::new(format!(
        "SELECT {id} AS key_id, {text} AS key_text, {n} AS leads, {r} AS responded, {w} AS within_sla, ",
        id = g.id,
        text = g.text,
        n = d.count("*"),
        r = d.count("lead.first_response_at"),
        w = d.count(&format!("CASE WHEN lead.first_response_at IS NOT NULL AND {secs} <= {sla_secs} THEN 1 END")),
    ));
    // PostgreSQL has percentile_cont; SQLite takes the ranks in a second
    // statement (the same interpolation).
    let percentiles = match d {
        Dialect::Postgres => format!(
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY {secs}) AS median_secs, \
             percentile_cont(0.9) WITHIN GROUP (ORDER BY {secs}) AS p90_secs"
        ),
        Dialect::Sqlite => {
            "CAST(NULL AS REAL) AS median_secs, CAST(NULL AS REAL) AS p90_secs".to_owned()
        }
    };
    sql.push(&format!(
        "{} AS due, {percentiles} FROM lead{}",
        d.count("CASE WHEN lead.first_response_at IS NOT NULL OR lead.created_at <= ? THEN 1 END"),
        g.join
    ));
    // The one `?` above: bound first, in text order.
    let mut head = Sql::new("");
    head.push_with(sql.text(), [due_before.into()]);
    let mut sql = head;
    cohort(&mut sql, period, p, filter);
    sql.push(&format!(" GROUP BY {}, {}", g.id, g.text));
    let aggs = ResponseAgg::find_by_statement(sql.statement(db.get_database_backend()))
        .all(db)
        .await?;

    // Per group: its count and the seconds at the ranks asked for.
    let mut by_key: HashMap<RawKey, (i64, HashMap<i64, i64>)> = HashMap::new();
    if d == Dialect::Sqlite {
        let mut ranks = Sql::new(format!(
            "SELECT key_id, key_text, n, rn, secs FROM (SELECT {id} AS key_id, {text} AS key_text, {secs} AS secs, \
             ROW_NUMBER() OVER (PARTITION BY {id}, {text} ORDER BY {secs}) AS rn, \
             COUNT(*) OVER (PARTITION BY {id}, {text}) AS n FROM lead{join}",
            id = g.id,
            text = g.text,
            join = g.join,
        ));
        cohort(&mut ranks, period, p, filter);
        ranks.push(
            " AND lead.first_response_at IS NOT NULL) o WHERE rn - 1 IN ((n - 1) / 2, (n - 1) / 2 + 1, (9 * (n - 1)) / 10, (9 * (n - 1)) / 10 + 1)",
        );
        for r in RankRow::find_by_statement(ranks.statement(db.get_database_backend()))
            .all(db)
            .await?
        {
            let e = by_key
                .entry((r.key_id, r.key_text))
                .or_insert_with(|| (r.n, HashMap::new()));
            e.1.insert(r.rn, r.secs);
        }
    }
    let labels = keys(db, dim, aggs.iter().map(|a| (a.key_id, a.key_text.clone()))).await?;
    let mut out: Vec<ResponseTimeRow> = aggs
        .into_iter()
        .map(|a| {
            let k = (a.key_id, a.key_text.clone());
            let (median, p90) = match by_key.get(&k) {
                Some((n, v)) => (quantile(v, *n, 1, 2), quantile(v, *n, 9, 10)),
                None => (a.median_secs, a.p90_secs),
            };
            ResponseTimeRow {
                key: labels[&k].clone(),
                leads: a.leads,
                responded: a.responded,
                median_hours: hours(median),
                p90_hours: hours(p90),
                within_sla: a.within_sla,
                due: a.due,
                within_sla_share: (a.due > 0).then(|| a.within_sla as f64 / a.due as f64),
            }
        })
        .collect();
    grouping::sort_by_key(&mut out, |r| &r.key);
    Ok(out)
}

#[derive(Debug, Clone, PartialEq)]
pub struct LeadFunnelRow {
    pub key: GroupKey,
    pub created: i64,
    pub worked: i64,
    pub qualified: i64,
    pub converted: i64,
    pub disqualified: i64,
}

impl LeadFunnelRow {
    fn rate(num: i64, den: i64) -> Option<f64> {
        (den > 0).then(|| num as f64 / den as f64)
    }
    /// worked / created
    pub fn worked_rate(&self) -> Option<f64> {
        Self::rate(self.worked, self.created)
    }
    /// qualified / worked (MQL -> SQL)
    pub fn qualified_rate(&self) -> Option<f64> {
        Self::rate(self.qualified, self.worked)
    }
    /// converted / qualified
    pub fn converted_rate(&self) -> Option<f64> {
        Self::rate(self.converted, self.qualified)
    }
    /// converted / created
    pub fn overall_rate(&self) -> Option<f64> {
        Self::rate(self.converted, self.created)
    }
    /// disqualified / created
    pub fn disqualified_rate(&self) -> Option<f64> {
        Self::rate(self.disqualified, self.created)
    }
}

#[derive(FromQueryResult)]
struct FunnelAgg {
    key_id: Option<i64>,
    key_text: Option<String>,
    created: i64,
    worked: i64,
    qualified: i64,
    converted: i64,
    disqualified: i64,
}

/// One statement plus the labels. A lead's status instants are set once,
/// so the counts as of a past day are exact.
pub async fn funnel(
    db: &impl ConnectionTrait,
    p: &Principal,
    period: &Period,
    as_of: DateTime<Utc>,
    dim: Dimension,
    filter: &LeadFilter,
) -> AppResult<Vec<LeadFunnelRow>> {
    p.require(METRIC_READERS)?;
    let g = lead_group(dim)?;
    let d = Dialect::of(db);
    let by = |col: &str| d.count(&format!("CASE WHEN lead.{col} <= ? THEN 1 END"));
    let text = format!(
        "SELECT {id} AS key_id, {t} AS key_text, {n} AS created, {w} AS worked, {q} AS qualified, {c} AS converted, {x} AS disqualified FROM lead{join}",
        id = g.id,
        t = g.text,
        n = d.count("*"),
        w = by("worked_at"),
        q = by("qualified_at"),
        c = by("converted_at"),
        x = by("disqualified_at"),
        join = g.join,
    );
    let mut sql = Sql::new("");
    sql.push_with(
        &text,
        [as_of.into(), as_of.into(), as_of.into(), as_of.into()],
    );
    cohort(&mut sql, period, p, filter);
    sql.push(" AND lead.created_at <= ").bind(as_of);
    sql.push(&format!(" GROUP BY {}, {}", g.id, g.text));
    let aggs = FunnelAgg::find_by_statement(sql.statement(db.get_database_backend()))
        .all(db)
        .await?;
    let labels = keys(db, dim, aggs.iter().map(|a| (a.key_id, a.key_text.clone()))).await?;
    let mut out: Vec<LeadFunnelRow> = aggs
        .into_iter()
        .map(|a| LeadFunnelRow {
            key: labels[&(a.key_id, a.key_text.clone())].clone(),
            created: a.created,
            worked: a.worked,
            qualified: a.qualified,
            converted: a.converted,
            disqualified: a.disqualified,
        })
        .collect();
    grouping::sort_by_key(&mut out, |r| &r.key);
    Ok(out)
}

/// Conversion per score band of the leads created in the period.
pub async fn calibration(
    db: &impl ConnectionTrait,
    p: &Principal,
    period: &Period,
    band_width: i32,
) -> AppResult<Vec<lead_scoring::Band>> {
    p.require(METRIC_READERS)?;
    lead_scoring::calibration(
        db,
        p.scope(),
        start_of(period.start()),
        start_of(period.end()),
        band_width,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_between_ranks() {
        // Sorted seconds 10, 20, 30, 40 (ranks 1..4): median at 0-based 1.5
        // = 25; p90 at 0-based 2.7 = 30 + 0.7 * 10 = 37.
        let v: HashMap<i64, i64> = [(1, 10), (2, 20), (3, 30), (4, 40)].into_iter().collect();
        assert_eq!(quantile(&v, 4, 1, 2), Some(25.0));
        assert!((quantile(&v, 4, 9, 10).unwrap() - 37.0).abs() < 1e-9);
        let one: HashMap<i64, i64> = [(1, 7)].into_iter().collect();
        assert_eq!(quantile(&one, 1, 1, 2), Some(7.0));
        assert_eq!(quantile(&one, 1, 9, 10), Some(7.0));
        assert_eq!(quantile(&HashMap::new(), 0, 1, 2), None);
    }
}
