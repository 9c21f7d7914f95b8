//! Lead, activity and lead-scoring writes: parse, call the service (which
//! authorises, validates and writes in one transaction).
use crate::graphql::errors::ResultExt as _;
use async_graphql::{Context, Object, Result, ID};
use chrono::{DateTime, Utc};

use crate::graphql::enums::LeadStatus;
use crate::graphql::lead_inputs::{
    ActivityInput, ActivityPatch, ConvertLeadInput, LeadInput, LeadPatch, LeadScoringRuleInput,
};
use crate::graphql::scalars::check_opt_instant;
use crate::graphql::types::lead::{
    Activity, ConvertLeadPayload, Lead, LeadScoringRule, SetLeadScoringRulesPayload,
    UpsertActivityPayload, UpsertLeadPayload,
};
use crate::graphql::types::{Account, BulkUpsertResult, Deal};
use crate::graphql::{lookup_id, principal, state, write_db};
use crate::service;
use crate::service::upsert::Outcome;

#[derive(Default)]
pub struct LeadMutation;

#[Object]
impl LeadMutation {
    /// Creates a lead (NEW, or WORKING when firstResponseAt is given), scored by the rules in force.
    async fn create_lead(&self, ctx: &Context<'_>, input: LeadInput) -> Result<Lead> {
        let p = principal(ctx)?;
        let new = input.to_new_lead().extend()?;
        Ok(Lead(
            service::lead::create(write_db(ctx)?, p, new)
                .await
                .extend()?,
        ))
    }

    async fn update_lead(
        &self,
        ctx: &Context<'_>,
        id: ID,
        patch: LeadPatch,
        expected_version: Option<i32>,
    ) -> Result<Lead> {
        let p = principal(ctx)?;
        let id = lookup_id(&id, "lead").extend()?;
        let changes = patch.into_changes().extend()?;
        Ok(Lead(
            service::lead::update(write_db(ctx)?, p, id, changes, expected_version)
                .await
                .extend()?,
        ))
    }

    /// Idempotent by externalId (required here): creates, updates, or leaves unchanged.
    async fn upsert_lead(
        &self,
        ctx: &Context<'_>,
        input: LeadInput,
        expected_version: Option<i32>,
    ) -> Result<UpsertLeadPayload> {
        let p = principal(ctx)?;
        let new = input.to_new_lead().extend()?;
        let (lead, outcome) = service::lead::upsert(write_db(ctx)?, p, new, expected_version)
            .await
            .extend()?;
        Ok(UpsertLeadPayload {
            lead: Lead(lead),
            created: outcome == Outcome::Created,
            updated: outcome == Outcome::Updated,
            unchanged: outcome == Outcome::Unchanged,
        })
    }

    /// At most 1000 inputs, written together; a bad one is reported in errors without stopping the rest.
    async fn bulk_upsert_leads(
        &self,
        ctx: &Context<'_>,
        inputs: Vec<LeadInput>,
    ) -> Result<BulkUpsertResult> {
        let p = principal(ctx)?;
        let items = inputs
            .iter()
            .map(|i| (i.external_id.clone(), i.to_new_lead()))
            .collect();
        Ok(service::lead::bulk_upsert(write_db(ctx)?, p, items)
            .await
            .extend()?
            .into())
    }

    /// Moves a lead forward to WORKING or QUALIFIED at `at` (default now); a move backwards or out of CONVERTED/DISQUALIFIED is CONFLICT.
    async fn move_lead_status(
        &self,
        ctx: &Context<'_>,
        id: ID,
        status: LeadStatus,
        at: Option<DateTime<Utc>>,
        expected_version: Option<i32>,
    ) -> Result<Lead> {
        let p = principal(ctx)?;
        let id = lookup_id(&id, "lead").extend()?;
        let at = check_opt_instant(at, "at").extend()?;
        Ok(Lead(
            service::lead::move_status(write_db(ctx)?, p, id, status.into(), at, expected_version)
                .await
                .extend()?,
        ))
    }

    /// Disqualifies an open lead with a reason.
    async fn disqualify_lead(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: String,
        at: Option<DateTime<Utc>>,
        expected_version: Option<i32>,
    ) -> Result<Lead> {
        let p = principal(ctx)?;
        let id = lookup_id(&id, "lead").extend()?;
        let at = check_opt_instant(at, "at").extend()?;
        Ok(Lead(
            service::lead::disqualify(write_db(ctx)?, p, id, &reason, at, expected_version)
                .await
                .extend()?,
        ))
    }

    /// Converts an open lead: creates its deal (and account when asked) and marks it CONVERTED, in one transaction. Converting twice, or a disqualified lead, is CONFLICT.
    async fn convert_lead(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: ConvertLeadInput,
    ) -> Result<ConvertLeadPayload> {
        let p = principal(ctx)?;
        let id = lookup_id(&id, "lead").extend()?;
        let conversion = input.to_conversion().extend()?;
        let rules = &state(ctx)?.deal_rules;
        let done = service::lead::convert(write_db(ctx)?, p, rules, id, conversion)
            .await
            .extend()?;
        Ok(ConvertLeadPayload {
            lead: Lead(done.lead),
            deal: Deal(done.deal),
            account: done.account.map(Account),
        })
    }

    /// Logs a call, email, meeting or task; the first activity on a lead is its first response.
    async fn log_activity(&self, ctx: &Context<'_>, input: ActivityInput) -> Result<Activity> {
        let p = principal(ctx)?;
        let new = input.to_new_activity().extend()?;
        Ok(Activity(
            service::activity::create(write_db(ctx)?, p, new)
                .await
                .extend()?,
        ))
    }

    async fn update_activity(
        &self,
        ctx: &Context<'_>,
        id: ID,
        patch: ActivityPatch,
        expected_version: Option<i32>,
    ) -> Result<Activity> {
        let p = principal(ctx)?;
        let id = lookup_id(&id, "activity").extend()?;
        let changes = patch.into_changes().extend()?;
        Ok(Activity(
            service::activity::update(write_db(ctx)?, p, id, changes, expected_version)
                .await
                .extend()?,
        ))
    }

    /// Idempotent by externalId (required here): creates, updates, or leaves unchanged.
    async fn upsert_activity(
        &self,
        ctx: &Context<'_>,
        input: ActivityInput,
    ) -> Result<UpsertActivityPayload> {
        let p = principal(ctx)?;
        let new = input.to_new_activity().extend()?;
        let (activity, outcome) = service::activity::upsert(write_db(ctx)?, p, new)
            .await
            .extend()?;
        Ok(UpsertActivityPayload {
            activity: Activity(activity),
            created: outcome == Outcome::Created,
            updated: outcome == Outcome::Updated,
            unchanged: outcome == Outcome::Unchanged,
        })
    }

    /// At most 1000 inputs, written together; a bad one is reported in errors without stopping the rest.
    async fn bulk_upsert_activities(
        &self,
        ctx: &Context<'_>,
        inputs: Vec<ActivityInput>,
    ) -> Result<BulkUpsertResult> {
        let p = principal(ctx)?;
        let items = inputs
            .iter()
            .map(|i| (i.external_id.clone(), i.to_new_activity()))
            .collect();
        Ok(service::activity::bulk_upsert(write_db(ctx)?, p, items)
            .await
            .extend()?
            .into())
    }

    /// Replaces the lead-scoring rules (OPS, ADMIN; at most 100) and re-scores every open lead in the same transaction.
    async fn set_lead_scoring_rules(
        &self,
        ctx: &Context<'_>,
        rules: Vec<LeadScoringRuleInput>,
    ) -> Result<SetLeadScoringRulesPayload> {
        let p = principal(ctx)?;
        let rules = rules
            .iter()
            .map(|r| r.to_rule())
            .collect::<Result<Vec<_>, _>>()
            .extend()?;
        let set = service::lead_scoring::set_rules(write_db(ctx)?, p, rules)
            .await
            .extend()?;
        Ok(SetLeadScoringRulesPayload {
            rules: set.rules.into_iter().map(LeadScoringRule).collect(),
            rescored_leads: set.rescored as i64,
        })
    }
}
