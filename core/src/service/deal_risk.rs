//! Deal risk in SQL (docs/design.md, Deal risk): the facts behind each
//! signal for a batch of deals in one statement (`domain::risk::assess`
//! turns them into signals and details), and the same rules as conditions
//! for `DealFilter.riskSignals`.
//!
//! "The mean days deals spend in a stage" is the funnel's measure over the
//! last 365 days: every stay entered in that window, from entering the stage
//! to the deal's next stage change (a stay still going counts up to now),
//! for OPEN stages.
use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use sea_orm::{ActiveEnum, ConnectionTrait, FromQueryResult};

use entity::enums::{DealStatus, StageKind};

use crate::clock::{self, start_of};
use crate::db::{Dialect, Sql};
use crate::domain::risk::{
    assess, DealRisk, RiskFacts, RiskKind, NO_ACTIVITY_DAYS, REPEATED_PUSHES, STALE_AFTER_DAYS,
    STUCK_FACTOR,
};
use crate::error::AppResult;

/// Days of stays that set a stage's mean.
pub const STAGE_MEAN_WINDOW_DAYS: i64 = 365;

/// `(SELECT stage_id, mean_days ...)`: the mean days in each OPEN stage.
fn stage_means(d: Dialect, now: DateTime<Utc>) -> Sql {
    let days = d.day_diff(
        "c.changed_at",
        "COALESCE(LEAD(c.changed_at) OVER (PARTITION BY c.deal_id ORDER BY c.changed_at, c.id), ?)",
    );
    let mut sql = Sql::new("(SELECT x.stage_id AS stage_id, AVG(x.days) AS mean_days FROM (SELECT c.to_stage_id AS stage_id, ");
    sql.push_with(&days, [now.into()])
        .push(" AS days FROM deal_stage_change c WHERE c.changed_at >= ")
        .bind(start_of(
            now.date_naive() - Duration::days(STAGE_MEAN_WINDOW_DAYS),
        ))
        .push(&format!(
            ") x JOIN stage st ON st.id = x.stage_id AND st.kind = '{}' GROUP BY x.stage_id)",
            StageKind::Open.to_value()
        ));
    sql
}

/// Whole days from a timestamp column to `today` (one `?`, today's date).
fn days_to(d: Dialect, col: &str) -> String {
    match d {
        Dialect::Sqlite => format!("CAST(julianday(?) - julianday(date({col})) AS INTEGER)"),
        Dialect::Postgres => format!("(CAST(? AS date) - (({col}) AT TIME ZONE 'UTC')::date)"),
    }
}

/// Whether any activity exists (one index probe).
const ACTIVITIES_RECORDED: &str = "EXISTS (SELECT 1 FROM activity)";

/// Appends ` AND (...)`: deals (alias `deal`) showing at least one of
/// `kinds` now. NO_RECENT_ACTIVITY matches nothing until the organisation
/// records activities.
pub fn push_filter(sql: &mut Sql, d: Dialect, kinds: &[RiskKind], now: DateTime<Utc>) {
    let today: NaiveDate = now.date_naive();
    let open = DealStatus::Open.to_value();
    sql.push(&format!(" AND deal.status = '{open}' AND (1 = 0"));
    for kind in kinds {
        match kind {
            RiskKind::Stale => {
                // idle >= 30 days: updated on or before today - 30.
                sql.push(" OR deal.updated_at < ")
                    .bind(start_of(today - Duration::days(STALE_AFTER_DAYS - 1)));
            }
            RiskKind::CloseDatePassed => {
                sql.push(" OR deal.expected_close_date < ").bind(today);
            }
            RiskKind::PushedRepeatedly => {
                sql.push(&format!(" OR deal.push_count >= {REPEATED_PUSHES}"));
            }
            RiskKind::AmountDecreased => {
                sql.push(" OR deal.amount_cents < deal.first_amount_cents");
            }
            RiskKind::StuckInStage => {
                sql.push(" OR deal.id IN (SELECT s.id FROM deal s JOIN ")
                    .append(&stage_means(d, now))
                    .push(&format!(
                        " m ON m.stage_id = s.stage_id WHERE s.status = '{open}' AND "
                    ))
                    .push_with(&days_to(d, "s.stage_entered_at"), [today.into()])
                    .push(&format!(" > {STUCK_FACTOR} * m.mean_days)"));
            }
            RiskKind::NoRecentActivity => {
                // Quiet >= 14 days: the latest activity (or the opening, if
                // later or without one) on or before today - 14.
                let last = "deal.last_activity_at";
                sql.push(&format!(
                    " OR ({ACTIVITIES_RECORDED} AND CASE WHEN {last} IS NULL OR {last} < deal.opened_at THEN deal.opened_at ELSE {last} END < "
                ))
                .bind(start_of(today - Duration::days(NO_ACTIVITY_DAYS - 1)))
                .push(")");
            }
        }
    }
    sql.push(")");
}

#[derive(FromQueryResult)]
struct FactRow {
    id: i64,
    status: String,
    updated_at: DateTime<Utc>,
    expected_close_date: Option<NaiveDate>,
    push_count: i32,
    amount_cents: i64,
    stage_name: String,
    first_cents: Option<i64>,
    last_push_at: Option<DateTime<Utc>>,
    entered_at: Option<DateTime<Utc>>,
    stage_id: i64,
    opened_at: DateTime<Utc>,
    last_activity_at: Option<DateTime<Utc>>,
    /// 1 or 0 (an integer on both backends).
    activities_recorded: i32,
    /// The newest stage change (the stage means' freshness mark).
    stage_change_mark: Option<i64>,
    /// The database and schema (PostgreSQL), naming the cache entry.
    ident: Option<String>,
}

#[derive(FromQueryResult)]
struct MeanRow {
    stage_id: i64,
    mean_days: f64,
}

/// The mean days per OPEN stage of one database, for the day and the
/// newest stage change they were computed at. Stage changes are only ever
/// appended and the means count whole days, so while neither the day nor
/// the newest stage change moves, the means are exactly the same: computing
/// them (a window over a year of stage changes, seconds at 1,000,000 deals)
/// once per change instead of once per page is what keeps a page of deals
/// with its risk close to the page alone.
type MeansKey = (String, NaiveDate, i64);
static STAGE_MEANS: std::sync::Mutex<Option<(MeansKey, HashMap<i64, f64>)>> =
    std::sync::Mutex::new(None);

async fn stage_means_now(
    db: &impl ConnectionTrait,
    key: Option<MeansKey>,
    now: DateTime<Utc>,
) -> AppResult<HashMap<i64, f64>> {
    if let Some(k) = &key {
        if let Ok(cache) = STAGE_MEANS.lock() {
            if let Some((cached, means)) = cache.as_ref() {
                if cached == k {
                    return Ok(means.clone());
                }
            }
        }
    }
    let d = Dialect::of(db);
    let float = match d {
        Dialect::Sqlite => "REAL",
        Dialect::Postgres => "DOUBLE PRECISION",
    };
    let mut sql = Sql::new(format!(
        "SELECT m.stage_id AS stage_id, CAST(m.mean_days AS {float}) AS mean_days FROM "
    ));
    sql.append(&stage_means(d, now)).push(" m");
    let means: HashMap<i64, f64> =
        MeanRow::find_by_statement(sql.statement(db.get_database_backend()))
            .all(db)
            .await?
            .into_iter()
            .map(|r| (r.stage_id, r.mean_days))
            .collect();
    if let (Some(k), Ok(mut cache)) = (key, STAGE_MEANS.lock()) {
        *cache = Some((k, means.clone()));
    }
    Ok(means)
}

/// The risk of each deal (by id), as of now: one statement for the facts,
/// and one for the stage means when they changed since the last page.
pub async fn risks(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<HashMap<i64, DealRisk>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let d = Dialect::of(db);
    let now = clock::now();
    // SQLite (the embedded database) computes the means every time: one
    // process may open several files, which PostgreSQL's name tells apart.
    let ident = match d {
        Dialect::Sqlite => "CAST(NULL AS TEXT)",
        Dialect::Postgres => "current_database() || '/' || current_schema()",
    };
    // The facts are columns of the deal row (kept by the writers), so the
    // statement reads the page's rows again and nothing per deal.
    let mut sql = Sql::new(format!(
        "SELECT d.id AS id, d.status AS status, d.updated_at AS updated_at, \
         d.expected_close_date AS expected_close_date, d.push_count AS push_count, \
         d.amount_cents AS amount_cents, st.name AS stage_name, d.first_amount_cents AS first_cents, \
         d.pushed_at AS last_push_at, d.stage_entered_at AS entered_at, d.stage_id AS stage_id, \
         d.opened_at AS opened_at, d.last_activity_at AS last_activity_at, \
         CASE WHEN {ACTIVITIES_RECORDED} THEN 1 ELSE 0 END AS activities_recorded, \
         (SELECT MAX(c.id) FROM deal_stage_change c) AS stage_change_mark, {ident} AS ident \
         FROM deal d JOIN stage st ON st.id = d.stage_id WHERE d.id IN "
    ));
    sql.bind_list(ids.iter().copied());
    let rows = FactRow::find_by_statement(sql.statement(db.get_database_backend()))
        .all(db)
        .await?;
    let key = rows
        .first()
        .and_then(|r| Some((r.ident.clone()?, now.date_naive(), r.stage_change_mark?)));
    let means = if rows.iter().any(|r| r.status == DealStatus::Open.to_value()) {
        stage_means_now(db, key, now).await?
    } else {
        HashMap::new()
    };
    Ok(rows
        .into_iter()
        .map(|r| {
            let facts = RiskFacts {
                open: r.status == DealStatus::Open.to_value(),
                updated_at: r.updated_at,
                expected_close_date: r.expected_close_date,
                push_count: r.push_count,
                last_push_at: r.last_push_at,
                amount_cents: r.amount_cents,
                first_amount_cents: r.first_cents,
                stage_name: r.stage_name,
                entered_stage_at: r.entered_at,
                stage_mean_days: means.get(&r.stage_id).copied(),
                opened_at: r.opened_at,
                last_activity_at: r.last_activity_at,
                activities_recorded: r.activities_recorded != 0,
            };
            (r.id, assess(&facts, now))
        })
        .collect())
}
