//! The registry of exportable datasets: one `Dataset` value each, listed in
//! `DATASETS`. Roles are the lists the GraphQL reads use (service::access),
//! so an export never shows what the same token could not read.
//!
//! Extension point: a new table (as leads, lead status changes and
//! activities were) is one more `Dataset` here and its name in `DATASETS`: the columns
//! with their SQL and kind, the FROM clause, the id the batches walk, the
//! instant `updatedSince` reads, the readers and the `Scope` (`Rep("lead.owner_id")`
//! for rows a rep owns). The HTTP edge, formats, filters, audit and the
//! tests of the registry pick it up from there.
use super::Kind::{Bool, Date, Float, Int, Money, Ppm, Text, Timestamp};
use super::{col, Dataset, Scope};
use crate::service::access::{
    AUDIT_READERS, COMPENSATION_READERS, DEAL_READERS, METRIC_READERS, REFERENCE_READERS,
    SOP_READERS,
};

pub const DEALS: Dataset = Dataset {
    name: "deals",
    description: "Every deal as it stands now.",
    roles: DEAL_READERS,
    from: "deal",
    id: "deal.id",
    since: "deal.updated_at",
    scope: Scope::Deals,
    columns: &[
        col("id", "deal.id", Int),
        col("external_id", "deal.external_id", Text),
        col("name", "deal.name", Text),
        col("amount", "deal.amount_cents", Money),
        col("currency", "deal.currency", Text),
        col("owner_id", "deal.owner_id", Int),
        col("account_id", "deal.account_id", Int),
        col("territory_id", "deal.territory_id", Int),
        col("stage_id", "deal.stage_id", Int),
        col("status", "deal.status", Text),
        col("forecast_category", "deal.forecast_category", Text),
        col("source", "deal.source", Text),
        col("playbook_id", "deal.playbook_id", Int),
        col("opened_at", "deal.opened_at", Timestamp),
        col("expected_close_date", "deal.expected_close_date", Date),
        col("closed_at", "deal.closed_at", Timestamp),
        col("lost_reason", "deal.lost_reason", Text),
        col("version", "deal.version", Int),
        col("push_count", "deal.push_count", Int),
        col("created_at", "deal.created_at", Timestamp),
        col("updated_at", "deal.updated_at", Timestamp),
    ],
};

pub const DEAL_REVISIONS: Dataset = Dataset {
    name: "deal_revisions",
    description: "Every written version of every deal (docs/design.md, Deal history): amount, \
                  close date, stage and the other tracked fields as they were from valid_from on.",
    roles: DEAL_READERS,
    from: "deal_revision r JOIN deal ON deal.id = r.deal_id",
    id: "r.id",
    since: "r.recorded_at",
    scope: Scope::Deals,
    columns: &[
        col("id", "r.id", Int),
        col("deal_id", "r.deal_id", Int),
        col("version", "r.version", Int),
        col("valid_from", "r.valid_from", Timestamp),
        col("recorded_at", "r.recorded_at", Timestamp),
        col("actor", "r.actor", Text),
        col("name", "r.name", Text),
        col("amount", "r.amount_cents", Money),
        col("owner_id", "r.owner_id", Int),
        col("account_id", "r.account_id", Int),
        col("territory_id", "r.territory_id", Int),
        col("stage_id", "r.stage_id", Int),
        col("status", "r.status", Text),
        col("forecast_category", "r.forecast_category", Text),
        col("source", "r.source", Text),
        col("playbook_id", "r.playbook_id", Int),
        col("expected_close_date", "r.expected_close_date", Date),
        col("closed_at", "r.closed_at", Timestamp),
        col("lost_reason", "r.lost_reason", Text),
        col("push_count", "r.push_count", Int),
    ],
};

pub const STAGE_CHANGES: Dataset = Dataset {
    name: "stage_changes",
    description: "Every stage change of every deal (Deal.stageHistory).",
    roles: DEAL_READERS,
    from: "deal_stage_change c JOIN deal ON deal.id = c.deal_id",
    id: "c.id",
    since: "c.changed_at",
    scope: Scope::Deals,
    columns: &[
        col("id", "c.id", Int),
        col("deal_id", "c.deal_id", Int),
        col("from_stage_id", "c.from_stage_id", Int),
        col("to_stage_id", "c.to_stage_id", Int),
        col("changed_at", "c.changed_at", Timestamp),
        col("actor", "c.actor", Text),
    ],
};

pub const STAGES: Dataset = Dataset {
    name: "stages",
    description: "The pipeline stages with their win probability.",
    roles: REFERENCE_READERS,
    from: "stage",
    id: "stage.id",
    since: "stage.created_at",
    scope: Scope::Everything,
    columns: &[
        col("id", "stage.id", Int),
        col("name", "stage.name", Text),
        col("position", "stage.position", Int),
        col("probability", "stage.probability_ppm", Ppm),
        col("kind", "stage.kind", Text),
        col("created_at", "stage.created_at", Timestamp),
    ],
};

/// Directory and employment data; commission terms are compensation data
/// (COMPENSATION_READERS) and are not exported here.
pub const REPS: Dataset = Dataset {
    name: "reps",
    description: "The reps in the caller's scope (REP: itself; MANAGER: its team).",
    roles: DEAL_READERS,
    from: "rep",
    id: "rep.id",
    since: "rep.updated_at",
    scope: Scope::Rep("rep.id"),
    columns: &[
        col("id", "rep.id", Int),
        col("external_id", "rep.external_id", Text),
        col("name", "rep.name", Text),
        col("email", "rep.email", Text),
        col("title", "rep.title", Text),
        col("territory_id", "rep.territory_id", Int),
        col("manager_id", "rep.manager_id", Int),
        col("hired_at", "rep.hired_at", Date),
        col("active", "rep.active", Bool),
        col("ramp_months", "rep.ramp_months", Int),
        col("quota_carrying", "rep.quota_carrying", Bool),
        col("created_at", "rep.created_at", Timestamp),
        col("updated_at", "rep.updated_at", Timestamp),
    ],
};

pub const TERRITORIES: Dataset = Dataset {
    name: "territories",
    description: "The territory tree (parent_id).",
    roles: REFERENCE_READERS,
    from: "territory",
    id: "territory.id",
    since: "territory.updated_at",
    scope: Scope::Everything,
    columns: &[
        col("id", "territory.id", Int),
        col("name", "territory.name", Text),
        col("segment", "territory.segment", Text),
        col("region", "territory.region", Text),
        col("parent_id", "territory.parent_id", Int),
        col("created_at", "territory.created_at", Timestamp),
        col("updated_at", "territory.updated_at", Timestamp),
    ],
};

pub const ACCOUNTS: Dataset = Dataset {
    name: "accounts",
    description: "Every account.",
    roles: DEAL_READERS,
    from: "account",
    id: "account.id",
    since: "account.updated_at",
    scope: Scope::Everything,
    columns: &[
        col("id", "account.id", Int),
        col("external_id", "account.external_id", Text),
        col("name", "account.name", Text),
        col("industry", "account.industry", Text),
        col("segment", "account.segment", Text),
        col("territory_id", "account.territory_id", Int),
        col("created_at", "account.created_at", Timestamp),
        col("updated_at", "account.updated_at", Timestamp),
    ],
};

pub const QUOTAS: Dataset = Dataset {
    name: "quotas",
    description: "Quotas of the reps in scope; end_date is exclusive.",
    roles: COMPENSATION_READERS,
    from: "quota",
    id: "quota.id",
    since: "quota.updated_at",
    scope: Scope::Rep("quota.rep_id"),
    columns: &[
        col("id", "quota.id", Int),
        col("rep_id", "quota.rep_id", Int),
        col("start_date", "quota.start_date", Date),
        col("end_date", "quota.end_date", Date),
        col("amount", "quota.amount_cents", Money),
        col("created_at", "quota.created_at", Timestamp),
        col("updated_at", "quota.updated_at", Timestamp),
    ],
};

pub const FORECAST_SUBMISSIONS: Dataset = Dataset {
    name: "forecast_submissions",
    description:
        "Every forecast call and adjustment of the reps in scope; period_end is exclusive.",
    roles: METRIC_READERS,
    from: "forecast_submission",
    id: "forecast_submission.id",
    since: "forecast_submission.submitted_at",
    scope: Scope::Rep("forecast_submission.rep_id"),
    columns: &[
        col("id", "forecast_submission.id", Int),
        col("rep_id", "forecast_submission.rep_id", Int),
        col("period", "forecast_submission.period", Text),
        col("period_start", "forecast_submission.period_start", Date),
        col("period_end", "forecast_submission.period_end", Date),
        col("category", "forecast_submission.category", Text),
        col("amount", "forecast_submission.amount_cents", Money),
        col("note", "forecast_submission.note", Text),
        col(
            "submitted_at",
            "forecast_submission.submitted_at",
            Timestamp,
        ),
        col("submitted_by", "forecast_submission.submitted_by", Text),
        col("kind", "forecast_submission.kind", Text),
        col("scope", "forecast_submission.scope", Text),
    ],
};

/// The S&OP lines as the table stands, with their plan's name, revision
/// and stage.
pub const SOP_LINES: Dataset = Dataset {
    name: "sop_lines",
    description: "Every line of every S&OP plan revision (demand, supply, financial).",
    roles: SOP_READERS,
    from: "sop_line l JOIN sop_plan p ON p.id = l.plan_id",
    id: "l.id",
    since: "l.created_at",
    scope: Scope::Everything,
    columns: &[
        col("id", "l.id", Int),
        col("plan_id", "l.plan_id", Int),
        col("plan_name", "p.name", Text),
        col("plan_revision", "p.revision", Int),
        col("plan_stage", "p.stage", Text),
        col("kind", "l.kind", Text),
        col("territory_id", "l.territory_id", Int),
        col("month", "l.month", Date),
        col("amount", "l.amount_cents", Money),
        col("headcount", "l.headcount", Float),
        col("budget", "l.budget_cents", Money),
        col("note", "l.note", Text),
        col("author", "l.author", Text),
        col("generated", "l.generated", Bool),
        col("carried_from_plan_id", "l.carried_from_plan_id", Int),
        col("created_at", "l.created_at", Timestamp),
    ],
};

/// Leads (docs/design.md, Leads and activities), scoped by owner like deals.
pub const LEADS: Dataset = Dataset {
    name: "leads",
    description: "Every lead with its funnel instants, status and score.",
    roles: DEAL_READERS,
    from: "lead",
    id: "lead.id",
    since: "lead.updated_at",
    scope: Scope::Rep("lead.owner_id"),
    columns: &[
        col("id", "lead.id", Int),
        col("external_id", "lead.external_id", Text),
        col("name", "lead.name", Text),
        col("company", "lead.company", Text),
        col("email", "lead.email", Text),
        col("title", "lead.title", Text),
        col("source", "lead.source", Text),
        col("owner_id", "lead.owner_id", Int),
        col("territory_id", "lead.territory_id", Int),
        col("segment", "lead.segment", Text),
        col("industry", "lead.industry", Text),
        col("status", "lead.status", Text),
        col("disqualified_reason", "lead.disqualified_reason", Text),
        col("created_at", "lead.created_at", Timestamp),
        col("first_response_at", "lead.first_response_at", Timestamp),
        col("worked_at", "lead.worked_at", Timestamp),
        col("qualified_at", "lead.qualified_at", Timestamp),
        col("converted_at", "lead.converted_at", Timestamp),
        col("disqualified_at", "lead.disqualified_at", Timestamp),
        col("deal_id", "lead.deal_id", Int),
        col("account_id", "lead.account_id", Int),
        col("score", "lead.score", Int),
        col("version", "lead.version", Int),
        col("updated_at", "lead.updated_at", Timestamp),
    ],
};

/// Every status move of the leads in scope.
pub const LEAD_STATUS_CHANGES: Dataset = Dataset {
    name: "lead_status_changes",
    description: "Every status move of every lead (from is empty for the first).",
    roles: DEAL_READERS,
    from: "lead_status_change c JOIN lead ON lead.id = c.lead_id",
    id: "c.id",
    since: "c.changed_at",
    scope: Scope::Rep("lead.owner_id"),
    columns: &[
        col("id", "c.id", Int),
        col("lead_id", "c.lead_id", Int),
        col("from_status", "c.from_status", Text),
        col("to_status", "c.to_status", Text),
        col("changed_at", "c.changed_at", Timestamp),
        col("actor", "c.actor", Text),
    ],
};

/// Activities, scoped by the rep who did them.
pub const ACTIVITIES: Dataset = Dataset {
    name: "activities",
    description: "Every call, email, meeting and task, on leads, deals and accounts.",
    roles: DEAL_READERS,
    from: "activity",
    id: "activity.id",
    since: "activity.updated_at",
    scope: Scope::Rep("activity.rep_id"),
    columns: &[
        col("id", "activity.id", Int),
        col("external_id", "activity.external_id", Text),
        col("kind", "activity.kind", Text),
        col("rep_id", "activity.rep_id", Int),
        col("at", "activity.at", Timestamp),
        col("lead_id", "activity.lead_id", Int),
        col("deal_id", "activity.deal_id", Int),
        col("account_id", "activity.account_id", Int),
        col("subject", "activity.subject", Text),
        col("outcome", "activity.outcome", Text),
        col("duration_minutes", "activity.duration_minutes", Int),
        col("version", "activity.version", Int),
        col("created_at", "activity.created_at", Timestamp),
        col("updated_at", "activity.updated_at", Timestamp),
    ],
};

/// The audit trail (ADMIN and OPS only, as the `auditLog` query).
pub const AUDIT: Dataset = Dataset {
    name: "audit",
    description: "The audit trail, exports included.",
    roles: AUDIT_READERS,
    from: "audit_entry",
    id: "audit_entry.id",
    since: "audit_entry.at",
    scope: Scope::Everything,
    columns: &[
        col("id", "audit_entry.id", Int),
        col("at", "audit_entry.at", Timestamp),
        col("actor", "audit_entry.actor", Text),
        col("action", "audit_entry.action", Text),
        col("entity_type", "audit_entry.entity_type", Text),
        col("entity_id", "audit_entry.entity_id", Text),
        col("changes", "audit_entry.changes", Text),
    ],
};

/// Every dataset, in the order `GET /export` lists them.
pub const DATASETS: &[&Dataset] = &[
    &DEALS,
    &DEAL_REVISIONS,
    &STAGE_CHANGES,
    &STAGES,
    &REPS,
    &TERRITORIES,
    &ACCOUNTS,
    &QUOTAS,
    &FORECAST_SUBMISSIONS,
    &SOP_LINES,
    &LEADS,
    &LEAD_STATUS_CHANGES,
    &ACTIVITIES,
    &AUDIT,
];

pub fn find(name: &str) -> Option<&'static Dataset> {
    DATASETS.iter().copied().find(|d| d.name == name)
}
