//! dataHealth (docs/design.md, Data health): what decays in the data, over the
//! deals and reps the caller may see.
//! - open deals past their expected close: expected_close_date before today;
//! - open deals with no expected close date;
//! - open deals not updated for staleAfterDays: updated_at before now minus
//!   that many days;
//! - reps with no territory: active reps only (an inactive rep without a
//!   territory is not a gap);
//! - inactive reps still owning open deals;
//! - open leads (NEW, WORKING, QUALIFIED) not answered within the lead SLA:
//!   no first response, created more than the SLA ago;
//! - open leads untouched for staleAfterDays: not updated and no activity
//!   on them since;
//! - open leads sharing their email with another lead (any status).
use chrono::{DateTime, Duration, NaiveDate, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult};

use crate::auth::Principal;
use crate::clock;
use crate::db::{Dialect, Sql};
use crate::error::{AppError, AppResult};
use crate::service::access::{DealScope, METRIC_READERS};

pub const DEFAULT_STALE_AFTER_DAYS: i32 = 30;
/// Hours within which a new lead should be answered, unless asked otherwise.
pub const DEFAULT_LEAD_SLA_HOURS: f64 = 24.0;

/// Open lead statuses, as SQL.
const OPEN_LEAD: &str = "lead.status IN ('NEW', 'WORKING', 'QUALIFIED')";
const STALE_LEAD: &str = "lead.updated_at < ? AND NOT EXISTS (SELECT 1 FROM activity a WHERE a.lead_id = lead.id AND a.at >= ?)";
const DUPLICATE_EMAIL: &str = "lead.email IS NOT NULL AND EXISTS (SELECT 1 FROM lead o WHERE o.email = lead.email AND o.id <> lead.id)";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthCriteria {
    pub scope: DealScope,
    pub today: NaiveDate,
    /// Open deals updated before this instant are stale (and open leads
    /// neither updated nor touched by an activity since).
    pub stale_before: DateTime<Utc>,
    /// Open leads created at or before this instant without a first
    /// response missed the SLA.
    pub lead_sla_before: DateTime<Utc>,
}

/// The counts; `None` for a count not asked for (`data_health`).
#[derive(Debug, Clone, Default, PartialEq, Eq, FromQueryResult)]
pub struct DataHealth {
    pub past_expected_close: Option<i64>,
    pub without_expected_close: Option<i64>,
    pub not_updated: Option<i64>,
    pub reps_without_territory: Option<i64>,
    pub inactive_reps_owning_open_deals: Option<i64>,
    pub leads_not_answered: Option<i64>,
    pub stale_leads: Option<i64>,
    pub leads_sharing_email: Option<i64>,
}

/// The counts of `DataHealth`, in its field order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    PastExpectedClose,
    WithoutExpectedClose,
    NotUpdated,
    RepsWithoutTerritory,
    InactiveRepsOwningOpenDeals,
    LeadsNotAnswered,
    StaleLeads,
    LeadsSharingEmail,
}

impl Count {
    pub const ALL: [Count; 8] = [
        Count::PastExpectedClose,
        Count::WithoutExpectedClose,
        Count::NotUpdated,
        Count::RepsWithoutTerritory,
        Count::InactiveRepsOwningOpenDeals,
        Count::LeadsNotAnswered,
        Count::StaleLeads,
        Count::LeadsSharingEmail,
    ];

    fn column(self) -> &'static str {
        match self {
            Count::PastExpectedClose => "past_expected_close",
            Count::WithoutExpectedClose => "without_expected_close",
            Count::NotUpdated => "not_updated",
            Count::RepsWithoutTerritory => "reps_without_territory",
            Count::InactiveRepsOwningOpenDeals => "inactive_reps_owning_open_deals",
            Count::LeadsNotAnswered => "leads_not_answered",
            Count::StaleLeads => "stale_leads",
            Count::LeadsSharingEmail => "leads_sharing_email",
        }
    }

    /// The count as a scalar subquery.
    fn push_subquery(self, sql: &mut Sql, c: &HealthCriteria) {
        match self {
            Count::PastExpectedClose => {
                sql.push("(SELECT COUNT(*) FROM deal WHERE deal.status = 'OPEN' AND deal.expected_close_date < ")
                    .bind(c.today);
                push_open_deal_scope(sql, c);
            }
            Count::WithoutExpectedClose => {
                sql.push("(SELECT COUNT(*) FROM deal WHERE deal.status = 'OPEN' AND deal.expected_close_date IS NULL");
                push_open_deal_scope(sql, c);
            }
            Count::NotUpdated => {
                sql.push(
                    "(SELECT COUNT(*) FROM deal WHERE deal.status = 'OPEN' AND deal.updated_at < ",
                )
                .bind(c.stale_before);
                push_open_deal_scope(sql, c);
            }
            Count::RepsWithoutTerritory => {
                sql.push("(SELECT COUNT(*) FROM rep WHERE rep.active = ")
                    .bind(true)
                    .push(" AND rep.territory_id IS NULL");
                push_rep_scope(sql, c);
            }
            Count::InactiveRepsOwningOpenDeals => {
                sql.push("(SELECT COUNT(*) FROM rep WHERE rep.active = ")
                    .bind(false)
                    .push(" AND rep.id IN (SELECT deal.owner_id FROM deal WHERE deal.status = 'OPEN')");
                push_rep_scope(sql, c);
            }
            Count::LeadsNotAnswered => {
                sql.push(&format!("(SELECT COUNT(*) FROM lead WHERE {OPEN_LEAD} AND lead.first_response_at IS NULL AND lead.created_at <= "))
                    .bind(c.lead_sla_before);
                push_lead_scope(sql, c);
            }
            Count::StaleLeads => {
                sql.push(&format!(
                    "(SELECT COUNT(*) FROM lead WHERE {OPEN_LEAD} AND "
                ))
                .push_with(STALE_LEAD, [c.stale_before.into(), c.stale_before.into()]);
                push_lead_scope(sql, c);
            }
            Count::LeadsSharingEmail => {
                sql.push(&format!(
                    "(SELECT COUNT(*) FROM lead WHERE {OPEN_LEAD} AND {DUPLICATE_EMAIL}"
                ));
                push_lead_scope(sql, c);
            }
        }
        sql.push(")");
    }
}

#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct DataIssue {
    pub kind: String,
    pub entity_type: String,
    pub entity_id: i64,
    pub name: String,
    pub detail: Option<String>,
}

impl DataIssue {
    pub fn message(&self) -> String {
        let detail = self.detail.as_deref().unwrap_or("");
        match self.kind.as_str() {
            "OPEN_DEAL_PAST_EXPECTED_CLOSE" => format!(
                "Open deal \"{}\" was expected to close on {detail}",
                self.name
            ),
            "OPEN_DEAL_WITHOUT_EXPECTED_CLOSE" => {
                format!("Open deal \"{}\" has no expected close date", self.name)
            }
            "OPEN_DEAL_NOT_UPDATED" => format!(
                "Open deal \"{}\" has not been updated since {detail}",
                self.name
            ),
            "REP_WITHOUT_TERRITORY" => format!("Rep {} has no territory", self.name),
            "LEAD_NOT_ANSWERED" => format!(
                "Lead \"{}\" created {detail} has not been answered within the SLA",
                self.name
            ),
            "LEAD_STALE" => format!("Lead \"{}\" has not been touched since {detail}", self.name),
            "LEAD_SHARES_EMAIL" => format!(
                "Lead \"{}\" shares its email {detail} with another lead",
                self.name
            ),
            _ => format!("Inactive rep {} still owns {detail} open deals", self.name),
        }
    }
}

pub fn criteria(
    p: &Principal,
    stale_after_days: Option<i32>,
    lead_sla_hours: Option<f64>,
) -> AppResult<HealthCriteria> {
    p.require(METRIC_READERS)?;
    let days = stale_after_days.unwrap_or(DEFAULT_STALE_AFTER_DAYS);
    if !(0..=36_500).contains(&days) {
        return Err(AppError::bad_input(
            "staleAfterDays must be between 0 and 36500",
        ));
    }
    let sla = lead_sla_hours.unwrap_or(DEFAULT_LEAD_SLA_HOURS);
    if !(sla > 0.0 && sla <= 8760.0) {
        return Err(AppError::bad_input(
            "leadSlaHours must be more than 0 and at most 8760",
        ));
    }
    let now = clock::now();
    Ok(HealthCriteria {
        scope: p.scope(),
        today: clock::today(),
        stale_before: now - Duration::days(i64::from(days)),
        lead_sla_before: now - Duration::seconds((sla * 3600.0).round() as i64),
    })
}

fn push_open_deal_scope(sql: &mut Sql, c: &HealthCriteria) {
    let (s, v) = c.scope.rep_sql("deal.owner_id");
    sql.push(" AND ").push_with(&s, v);
}

fn push_lead_scope(sql: &mut Sql, c: &HealthCriteria) {
    let (s, v) = c.scope.rep_sql("lead.owner_id");
    sql.push(" AND ").push_with(&s, v);
}

fn push_rep_scope(sql: &mut Sql, c: &HealthCriteria) {
    let (s, v) = c.scope.rep_sql("rep.id");
    sql.push(" AND ").push_with(&s, v);
}

/// The `wanted` counts in one statement (uncorrelated scalar subqueries);
/// the others are not computed (`None`): the lead counts read every open
/// lead and its activities, 2.7 s on 2,000,000 leads, and a deal-only
/// dashboard does not ask for them.
pub async fn data_health(
    db: &impl ConnectionTrait,
    c: &HealthCriteria,
    wanted: &[Count],
) -> AppResult<DataHealth> {
    if wanted.is_empty() {
        return Ok(DataHealth::default());
    }
    let mut sql = Sql::new("SELECT ");
    for (i, count) in Count::ALL.into_iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        if wanted.contains(&count) {
            count.push_subquery(&mut sql, c);
        } else {
            sql.push("CAST(NULL AS BIGINT)");
        }
        sql.push(&format!(" AS {}", count.column()));
    }
    Ok(
        DataHealth::find_by_statement(sql.statement(db.get_database_backend()))
            .one(db)
            .await?
            .unwrap_or_default(),
    )
}

/// Concrete issues, in the order of the counts and by id within a kind, at
/// most `limit`: one statement, each branch capped at `limit` first.
pub async fn data_issues(
    db: &impl ConnectionTrait,
    c: &HealthCriteria,
    limit: u64,
) -> AppResult<Vec<DataIssue>> {
    let limit = limit as i64;
    let d = Dialect::of(db);
    // A DATE expression as YYYY-MM-DD text.
    let date_text = |date: &str| match d {
        Dialect::Postgres => format!("to_char({date}, 'YYYY-MM-DD')"),
        Dialect::Sqlite => format!("date({date})"),
    };
    let branch = |sql: &mut Sql, order: i64, select: &str, from_where: &str| {
        sql.push(&format!(
            "SELECT * FROM (SELECT {order} AS kind_order, {select} {from_where}"
        ));
    };
    let mut sql = Sql::new("SELECT kind, entity_type, entity_id, name, detail FROM (");
    branch(
        &mut sql,
        1,
        &format!(
            "'OPEN_DEAL_PAST_EXPECTED_CLOSE' AS kind, 'Deal' AS entity_type, deal.id AS entity_id, deal.name AS name, {} AS detail",
            date_text("deal.expected_close_date")
        ),
        "FROM deal WHERE deal.status = 'OPEN' AND deal.expected_close_date < ",
    );
    sql.bind(c.today);
    push_open_deal_scope(&mut sql, c);
    sql.push(" ORDER BY deal.id LIMIT ")
        .bind(limit)
        .push(") a1 UNION ALL ");
    branch(
        &mut sql,
        2,
        "'OPEN_DEAL_WITHOUT_EXPECTED_CLOSE' AS kind, 'Deal' AS entity_type, deal.id AS entity_id, deal.name AS name, CAST(NULL AS TEXT) AS detail",
        "FROM deal WHERE deal.status = 'OPEN' AND deal.expected_close_date IS NULL",
    );
    push_open_deal_scope(&mut sql, c);
    sql.push(" ORDER BY deal.id LIMIT ")
        .bind(limit)
        .push(") a2 UNION ALL ");
    branch(
        &mut sql,
        3,
        &format!(
            "'OPEN_DEAL_NOT_UPDATED' AS kind, 'Deal' AS entity_type, deal.id AS entity_id, deal.name AS name, {} AS detail",
            date_text(&d.utc_date("deal.updated_at"))
        ),
        "FROM deal WHERE deal.status = 'OPEN' AND deal.updated_at < ",
    );
    sql.bind(c.stale_before);
    push_open_deal_scope(&mut sql, c);
    sql.push(" ORDER BY deal.id LIMIT ")
        .bind(limit)
        .push(") a3 UNION ALL ");
    branch(
        &mut sql,
        4,
        "'REP_WITHOUT_TERRITORY' AS kind, 'Rep' AS entity_type, rep.id AS entity_id, rep.name AS name, CAST(NULL AS TEXT) AS detail",
        "FROM rep WHERE rep.active = ",
    );
    sql.bind(true).push(" AND rep.territory_id IS NULL");
    push_rep_scope(&mut sql, c);
    sql.push(" ORDER BY rep.id LIMIT ")
        .bind(limit)
        .push(") a4 UNION ALL ");
    branch(
        &mut sql,
        5,
        "'INACTIVE_REP_OWNS_OPEN_DEALS' AS kind, 'Rep' AS entity_type, rep.id AS entity_id, rep.name AS name, CAST(COUNT(*) AS TEXT) AS detail",
        "FROM rep JOIN deal ON deal.owner_id = rep.id AND deal.status = 'OPEN' WHERE rep.active = ",
    );
    sql.bind(false);
    push_rep_scope(&mut sql, c);
    sql.push(" GROUP BY rep.id, rep.name ORDER BY rep.id LIMIT ")
        .bind(limit)
        .push(") a5 UNION ALL ");
    branch(
        &mut sql,
        6,
        &format!(
            "'LEAD_NOT_ANSWERED' AS kind, 'Lead' AS entity_type, lead.id AS entity_id, lead.name AS name, {} AS detail",
            date_text(&d.utc_date("lead.created_at"))
        ),
        &format!("FROM lead WHERE {OPEN_LEAD} AND lead.first_response_at IS NULL AND lead.created_at <= "),
    );
    sql.bind(c.lead_sla_before);
    push_lead_scope(&mut sql, c);
    sql.push(" ORDER BY lead.id LIMIT ")
        .bind(limit)
        .push(") a6 UNION ALL ");
    branch(
        &mut sql,
        7,
        &format!(
            "'LEAD_STALE' AS kind, 'Lead' AS entity_type, lead.id AS entity_id, lead.name AS name, {} AS detail",
            date_text(&d.utc_date("lead.updated_at"))
        ),
        &format!("FROM lead WHERE {OPEN_LEAD} AND "),
    );
    sql.push_with(STALE_LEAD, [c.stale_before.into(), c.stale_before.into()]);
    push_lead_scope(&mut sql, c);
    sql.push(" ORDER BY lead.id LIMIT ")
        .bind(limit)
        .push(") a7 UNION ALL ");
    branch(
        &mut sql,
        8,
        "'LEAD_SHARES_EMAIL' AS kind, 'Lead' AS entity_type, lead.id AS entity_id, lead.name AS name, lead.email AS detail",
        &format!("FROM lead WHERE {OPEN_LEAD} AND {DUPLICATE_EMAIL}"),
    );
    push_lead_scope(&mut sql, c);
    sql.push(" ORDER BY lead.id LIMIT ")
        .bind(limit)
        .push(") a8) issues ORDER BY kind_order, entity_id LIMIT ")
        .bind(limit);
    Ok(
        DataIssue::find_by_statement(sql.statement(db.get_database_backend()))
            .all(db)
            .await?,
    )
}
