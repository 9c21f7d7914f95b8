//! Input objects of leads, activities and lead scoring, and their
//! conversion into service inputs (ids parsed, instants range-checked,
//! strings checked for NUL per input so a bulk call rejects only its bad
//! inputs).
use async_graphql::{InputObject, MaybeUndefined, ID};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::error::{AppError, AppResult};
use crate::graphql::enums::{
    ActivityKind, DealSource, LeadScoringField, LeadScoringOperator, LeadStatus, Segment,
};
use crate::graphql::input_guard::{has_nul, NUL_MESSAGE};
use crate::graphql::inputs::patch;
use crate::graphql::scalars::{check_opt_instant, Date, Period};
use crate::graphql::{opt_id, parse_id, parse_ids};
use crate::service::activity::{ActivityChanges, ActivityFilter, NewActivity};
use crate::service::lead::{Conversion, LeadChanges, LeadFilter, NewLead};
use crate::service::lead_scoring::RuleInput;

fn no_nul<'a>(strings: impl IntoIterator<Item = Option<&'a str>>) -> AppResult<()> {
    if strings.into_iter().flatten().any(has_nul) {
        return Err(AppError::bad_input(NUL_MESSAGE));
    }
    Ok(())
}

#[derive(InputObject, Clone)]
pub struct LeadInput {
    /// Required by upsertLead and bulkUpsertLeads (the idempotency key).
    pub external_id: Option<String>,
    pub name: String,
    pub company: Option<String>,
    /// Stored lower-cased; leads sharing an email show in dataHealth.
    pub email: Option<String>,
    pub title: Option<String>,
    /// Where the lead came from, in the marketing team's words ("Webinar", "Paid search").
    pub source: Option<String>,
    pub owner_id: ID,
    pub territory_id: Option<ID>,
    pub segment: Option<Segment>,
    pub industry: Option<String>,
    /// Backfill (OPS, ADMIN, INTEGRATION): when the lead came in; default now. Read on creation only.
    pub created_at: Option<DateTime<Utc>>,
    /// The first response when known elsewhere (else the first activity logged on the lead); not before createdAt.
    pub first_response_at: Option<DateTime<Utc>>,
}

impl LeadInput {
    pub fn to_new_lead(&self) -> AppResult<NewLead> {
        no_nul([
            self.external_id.as_deref(),
            Some(self.name.as_str()),
            self.company.as_deref(),
            self.email.as_deref(),
            self.title.as_deref(),
            self.source.as_deref(),
            self.industry.as_deref(),
        ])?;
        Ok(NewLead {
            external_id: self.external_id.clone(),
            name: self.name.clone(),
            company: self.company.clone(),
            email: self.email.clone(),
            title: self.title.clone(),
            source: self.source.clone(),
            owner_id: parse_id(&self.owner_id, "ownerId")?,
            territory_id: opt_id(&self.territory_id, "territoryId")?,
            segment: self.segment.map(Into::into),
            industry: self.industry.clone(),
            created_at: check_opt_instant(self.created_at, "createdAt")?,
            first_response_at: check_opt_instant(self.first_response_at, "firstResponseAt")?,
        })
    }
}

/// Fields to change; an absent field is kept, null clears a nullable one.
#[derive(InputObject)]
pub struct LeadPatch {
    pub name: Option<String>,
    pub company: MaybeUndefined<String>,
    pub email: MaybeUndefined<String>,
    pub title: MaybeUndefined<String>,
    pub source: MaybeUndefined<String>,
    pub owner_id: Option<ID>,
    pub territory_id: MaybeUndefined<ID>,
    pub segment: MaybeUndefined<Segment>,
    pub industry: MaybeUndefined<String>,
    /// Sets the first response explicitly (a NEW lead becomes WORKING then).
    pub first_response_at: Option<DateTime<Utc>>,
}

impl LeadPatch {
    pub fn into_changes(self) -> AppResult<LeadChanges> {
        let text = |v: MaybeUndefined<String>| patch(v, Ok);
        Ok(LeadChanges {
            name: self.name,
            company: text(self.company)?,
            email: text(self.email)?,
            title: text(self.title)?,
            source: text(self.source)?,
            owner_id: self
                .owner_id
                .as_ref()
                .map(|i| parse_id(i, "ownerId"))
                .transpose()?,
            territory_id: patch(self.territory_id, |i| parse_id(&i, "territoryId"))?,
            segment: patch(self.segment, |s| Ok(s.into()))?,
            industry: text(self.industry)?,
            first_response_at: check_opt_instant(self.first_response_at, "firstResponseAt")?,
        })
    }
}

/// Narrows a set of leads; every field given must match. Lists match any of their values.
#[derive(InputObject, Default, Clone)]
#[graphql(name = "LeadFilter")]
pub struct LeadFilterInput {
    pub ids: Option<Vec<ID>>,
    pub owner_ids: Option<Vec<ID>>,
    pub status: Option<Vec<LeadStatus>>,
    pub sources: Option<Vec<String>>,
    pub territory_ids: Option<Vec<ID>>,
    /// Leads created in the period (half-open).
    pub created_in: Option<Period>,
    /// The incremental sync feed: leads written after this instant (use with orderBy UPDATED_ASC).
    pub updated_since: Option<DateTime<Utc>>,
    pub min_score: Option<i32>,
    /// Case-insensitive text in name, company or email.
    pub search: Option<String>,
}

impl LeadFilterInput {
    pub fn to_filter(&self) -> AppResult<LeadFilter> {
        let ids = |v: &Option<Vec<ID>>, f: &str| v.as_ref().map(|v| parse_ids(v, f)).transpose();
        if let Some(s) = &self.search {
            crate::service::deal_filter::check_search(s, "search")?;
        }
        if let Some(src) = &self.sources {
            no_nul(src.iter().map(|s| Some(s.as_str())))?;
        }
        Ok(LeadFilter {
            ids: ids(&self.ids, "ids")?,
            owner_ids: ids(&self.owner_ids, "ownerIds")?,
            statuses: self
                .status
                .as_ref()
                .map(|v| v.iter().map(|s| (*s).into()).collect()),
            sources: self.sources.clone(),
            territory_ids: ids(&self.territory_ids, "territoryIds")?,
            created_from: self.created_in.map(|p| crate::clock::start_of(p.0.start())),
            created_to: self.created_in.map(|p| crate::clock::start_of(p.0.end())),
            updated_since: check_opt_instant(self.updated_since, "updatedSince")?,
            min_score: self.min_score,
            search: self.search.clone(),
        })
    }
}

pub fn lead_filter_of(input: &Option<LeadFilterInput>) -> AppResult<LeadFilter> {
    input
        .as_ref()
        .map(|f| f.to_filter())
        .transpose()
        .map(Option::unwrap_or_default)
}

/// The deal (and account) a lead becomes.
#[derive(InputObject)]
pub struct ConvertLeadInput {
    /// Default: the lead's company, else its name.
    pub deal_name: Option<String>,
    pub amount: Decimal,
    /// Default: the first OPEN stage.
    pub stage_id: Option<ID>,
    pub expected_close_date: Option<Date>,
    /// Default: the lead's owner.
    pub owner_id: Option<ID>,
    /// An existing account for the deal.
    pub account_id: Option<ID>,
    /// Create an account named after the lead's company (with its industry, segment and territory).
    #[graphql(default = false)]
    pub create_account: bool,
    pub source: Option<DealSource>,
    /// When the lead converted (default now); not before its latest status change.
    pub at: Option<DateTime<Utc>>,
}

impl ConvertLeadInput {
    pub fn to_conversion(&self) -> AppResult<Conversion> {
        no_nul([self.deal_name.as_deref()])?;
        Ok(Conversion {
            deal_name: self.deal_name.clone(),
            amount: self.amount,
            stage_id: opt_id(&self.stage_id, "stageId")?,
            expected_close_date: self.expected_close_date.map(|d| d.0),
            owner_id: opt_id(&self.owner_id, "ownerId")?,
            account_id: opt_id(&self.account_id, "accountId")?,
            create_account: self.create_account,
            source: self.source.map(Into::into),
            at: check_opt_instant(self.at, "at")?,
        })
    }
}

#[derive(InputObject, Clone)]
pub struct ActivityInput {
    /// Required by upsertActivity and bulkUpsertActivities (the idempotency key).
    pub external_id: Option<String>,
    pub kind: ActivityKind,
    /// Default: the caller's own rep (REP, MANAGER); required for other roles.
    pub rep_id: Option<ID>,
    /// When it happened (default now); never in the future, never before its lead was created.
    pub at: Option<DateTime<Utc>>,
    pub lead_id: Option<ID>,
    pub deal_id: Option<ID>,
    pub account_id: Option<ID>,
    pub subject: Option<String>,
    pub outcome: Option<String>,
    pub duration_minutes: Option<i32>,
}

impl ActivityInput {
    pub fn to_new_activity(&self) -> AppResult<NewActivity> {
        no_nul([
            self.external_id.as_deref(),
            self.subject.as_deref(),
            self.outcome.as_deref(),
        ])?;
        Ok(NewActivity {
            external_id: self.external_id.clone(),
            kind: self.kind.into(),
            rep_id: opt_id(&self.rep_id, "repId")?,
            at: check_opt_instant(self.at, "at")?,
            lead_id: opt_id(&self.lead_id, "leadId")?,
            deal_id: opt_id(&self.deal_id, "dealId")?,
            account_id: opt_id(&self.account_id, "accountId")?,
            subject: self.subject.clone(),
            outcome: self.outcome.clone(),
            duration_minutes: self.duration_minutes,
        })
    }
}

/// Fields to change; an absent field is kept, null clears a nullable one.
#[derive(InputObject)]
pub struct ActivityPatch {
    pub kind: Option<ActivityKind>,
    pub at: Option<DateTime<Utc>>,
    pub lead_id: MaybeUndefined<ID>,
    pub deal_id: MaybeUndefined<ID>,
    pub account_id: MaybeUndefined<ID>,
    pub subject: MaybeUndefined<String>,
    pub outcome: MaybeUndefined<String>,
    pub duration_minutes: MaybeUndefined<i32>,
}

impl ActivityPatch {
    pub fn into_changes(self) -> AppResult<ActivityChanges> {
        Ok(ActivityChanges {
            kind: self.kind.map(Into::into),
            at: check_opt_instant(self.at, "at")?,
            lead_id: patch(self.lead_id, |i| parse_id(&i, "leadId"))?,
            deal_id: patch(self.deal_id, |i| parse_id(&i, "dealId"))?,
            account_id: patch(self.account_id, |i| parse_id(&i, "accountId"))?,
            subject: patch(self.subject, Ok)?,
            outcome: patch(self.outcome, Ok)?,
            duration_minutes: patch(self.duration_minutes, Ok)?,
        })
    }
}

/// Narrows a set of activities; every field given must match.
#[derive(InputObject, Default, Clone)]
#[graphql(name = "ActivityFilter")]
pub struct ActivityFilterInput {
    pub ids: Option<Vec<ID>>,
    pub rep_ids: Option<Vec<ID>>,
    pub lead_ids: Option<Vec<ID>>,
    pub deal_ids: Option<Vec<ID>>,
    pub account_ids: Option<Vec<ID>>,
    pub kinds: Option<Vec<ActivityKind>>,
    /// Activities done in the period (half-open).
    pub at_in: Option<Period>,
    /// The incremental sync feed: activities written after this instant (use with orderBy UPDATED_ASC).
    pub updated_since: Option<DateTime<Utc>>,
}

impl ActivityFilterInput {
    pub fn to_filter(&self) -> AppResult<ActivityFilter> {
        let ids = |v: &Option<Vec<ID>>, f: &str| v.as_ref().map(|v| parse_ids(v, f)).transpose();
        Ok(ActivityFilter {
            ids: ids(&self.ids, "ids")?,
            rep_ids: ids(&self.rep_ids, "repIds")?,
            lead_ids: ids(&self.lead_ids, "leadIds")?,
            deal_ids: ids(&self.deal_ids, "dealIds")?,
            account_ids: ids(&self.account_ids, "accountIds")?,
            kinds: self
                .kinds
                .as_ref()
                .map(|v| v.iter().map(|k| (*k).into()).collect()),
            from: self.at_in.map(|p| crate::clock::start_of(p.0.start())),
            to: self.at_in.map(|p| crate::clock::start_of(p.0.end())),
            updated_since: check_opt_instant(self.updated_since, "updatedSince")?,
        })
    }
}

/// One lead-scoring rule: `points` (-100..100) when the lead's field matches.
#[derive(InputObject)]
pub struct LeadScoringRuleInput {
    pub field: LeadScoringField,
    pub operator: LeadScoringOperator,
    /// Compared ignoring case; a comma-separated list for IN; none for IS_SET and IS_NOT_SET.
    pub value: Option<String>,
    pub points: i32,
}

impl LeadScoringRuleInput {
    pub fn to_rule(&self) -> AppResult<RuleInput> {
        no_nul([self.value.as_deref()])?;
        Ok(RuleInput {
            field: self.field.into(),
            operator: self.operator.into(),
            value: self.value.clone(),
            points: self.points,
        })
    }
}
