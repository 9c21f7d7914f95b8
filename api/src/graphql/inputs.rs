//! Input objects of the contract and their conversion into service inputs
//! (ids parsed, money and periods checked).
use async_graphql::{InputObject, MaybeUndefined, ID};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::error::{AppError, AppResult};
use crate::graphql::enums::{
    map_list, DealSource, DealStatus, ForecastCategory, RiskKind, Segment, StageKind,
};
use crate::graphql::input_guard::{has_nul, NUL_MESSAGE};
use crate::graphql::scalars::Period;
use crate::graphql::scalars::{check_opt_instant, Date};
use crate::graphql::{opt_id, parse_id, parse_ids};
use crate::service::deal::{DealChanges, NewDeal};
use crate::service::deal_filter::{self, DealFilter};
use crate::service::Patch;

/// Narrows a set of deals; every field given must match. Lists match any of
/// their values (an empty list matches nothing); amount bounds are inclusive;
/// periods are half-open.
#[derive(InputObject, Default, Clone)]
#[graphql(name = "DealFilter")]
pub struct DealFilterInput {
    pub status: Option<Vec<DealStatus>>,
    pub stage_ids: Option<Vec<ID>>,
    pub owner_ids: Option<Vec<ID>>,
    /// Deals in these territories or any territory below them.
    pub territory_ids: Option<Vec<ID>>,
    /// By the segment of the deal's territory.
    pub segments: Option<Vec<Segment>>,
    pub forecast_categories: Option<Vec<ForecastCategory>>,
    pub min_amount: Option<Decimal>,
    pub max_amount: Option<Decimal>,
    pub opened_in: Option<Period>,
    pub expected_close_in: Option<Period>,
    pub closed_in: Option<Period>,
    /// Case-insensitive substring of the deal's name.
    pub search: Option<String>,
    /// Deals changed at or after this instant (the incremental sync feed).
    pub updated_since: Option<DateTime<Utc>>,
    /// Deals not changed since this instant (updatedAt before it).
    pub not_updated_since: Option<DateTime<Utc>>,
    /// Deals showing at least one of these risk signals.
    pub risk_signals: Option<Vec<RiskKind>>,
}

/// Values per enum list of a filter, like ids (`MAX_IDS`): each is a bound
/// parameter.
const MAX_LIST: usize = crate::graphql::MAX_IDS;

fn check_list<T>(v: &Option<Vec<T>>, field: &str) -> AppResult<()> {
    match v {
        Some(v) if v.len() > MAX_LIST => Err(AppError::bad_input(format!(
            "{field}: at most {MAX_LIST} values, got {}",
            v.len()
        ))),
        _ => Ok(()),
    }
}

impl DealFilterInput {
    pub fn to_filter(&self) -> AppResult<DealFilter> {
        let ids = |v: &Option<Vec<ID>>, f: &str| v.as_ref().map(|v| parse_ids(v, f)).transpose();
        check_list(&self.status, "status")?;
        check_list(&self.segments, "segments")?;
        check_list(&self.forecast_categories, "forecastCategories")?;
        check_list(&self.risk_signals, "riskSignals")?;
        if let Some(s) = &self.search {
            deal_filter::check_search(s, "search")?;
        }
        Ok(DealFilter {
            status: map_list(&self.status),
            stage_ids: ids(&self.stage_ids, "stageIds")?,
            owner_ids: ids(&self.owner_ids, "ownerIds")?,
            territory_ids: ids(&self.territory_ids, "territoryIds")?,
            segments: map_list(&self.segments),
            forecast_categories: map_list(&self.forecast_categories),
            min_amount_cents: self.min_amount.map(deal_filter::min_cents).transpose()?,
            max_amount_cents: self.max_amount.map(deal_filter::max_cents).transpose()?,
            opened_in: self.opened_in.map(|p| p.0),
            expected_close_in: self.expected_close_in.map(|p| p.0),
            closed_in: self.closed_in.map(|p| p.0),
            search: self.search.clone(),
            updated_since: check_opt_instant(self.updated_since, "updatedSince")?,
            playbook_ids: None,
            not_updated_since: check_opt_instant(self.not_updated_since, "notUpdatedSince")?,
            risk_signals: map_list(&self.risk_signals),
        })
    }
}

pub fn filter_of(input: &Option<DealFilterInput>) -> AppResult<DealFilter> {
    input
        .as_ref()
        .map(|f| f.to_filter())
        .transpose()
        .map(Option::unwrap_or_default)
}

/// A nullable patch field: absent keeps the value, null clears it.
pub fn patch<T, U>(v: MaybeUndefined<T>, f: impl FnOnce(T) -> AppResult<U>) -> AppResult<Patch<U>> {
    Ok(match v {
        MaybeUndefined::Undefined => Patch::Keep,
        MaybeUndefined::Null => Patch::Clear,
        MaybeUndefined::Value(x) => Patch::Set(f(x)?),
    })
}

#[derive(InputObject)]
pub struct TerritoryInput {
    pub name: String,
    pub segment: Option<Segment>,
    pub region: Option<String>,
    pub parent_id: Option<ID>,
}

/// Fields to change; an absent field is kept, null clears a nullable one.
#[derive(InputObject)]
pub struct TerritoryPatch {
    pub name: Option<String>,
    pub segment: MaybeUndefined<Segment>,
    pub region: MaybeUndefined<String>,
    pub parent_id: MaybeUndefined<ID>,
}

#[derive(InputObject)]
pub struct RepInput {
    pub external_id: Option<String>,
    pub name: String,
    pub email: String,
    pub title: Option<String>,
    pub territory_id: Option<ID>,
    pub manager_id: Option<ID>,
    /// Defaults to today.
    pub hired_at: Option<Date>,
    pub active: Option<bool>,
    /// Default 3.
    pub ramp_months: Option<i32>,
    /// Default "0.10".
    pub commission_rate: Option<Decimal>,
    /// Attainment at which commission starts to pay; default "1.0".
    pub commission_threshold: Option<Decimal>,
    /// Default true.
    pub quota_carrying: Option<bool>,
}

/// Fields to change; an absent field is kept, null clears a nullable one.
#[derive(InputObject)]
pub struct RepPatch {
    pub name: Option<String>,
    pub email: Option<String>,
    pub title: MaybeUndefined<String>,
    pub territory_id: MaybeUndefined<ID>,
    pub manager_id: MaybeUndefined<ID>,
    pub hired_at: Option<Date>,
    pub active: Option<bool>,
    pub ramp_months: Option<i32>,
    pub commission_rate: Option<Decimal>,
    pub commission_threshold: Option<Decimal>,
    pub quota_carrying: Option<bool>,
}

#[derive(InputObject)]
pub struct AccountInput {
    pub external_id: Option<String>,
    pub name: String,
    pub industry: Option<String>,
    pub segment: Option<Segment>,
    pub territory_id: Option<ID>,
}

/// Fields to change; an absent field is kept, null clears a nullable one.
#[derive(InputObject)]
pub struct AccountPatch {
    pub name: Option<String>,
    pub external_id: MaybeUndefined<String>,
    pub industry: MaybeUndefined<String>,
    pub segment: MaybeUndefined<Segment>,
    pub territory_id: MaybeUndefined<ID>,
}

/// Fields to change; an absent field is kept, null clears a nullable one.
#[derive(InputObject)]
pub struct PlaybookPatch {
    pub name: Option<String>,
    pub description: MaybeUndefined<String>,
    pub segment: MaybeUndefined<Segment>,
    /// false retires the playbook (it stays on its deals).
    pub active: Option<bool>,
}

#[derive(InputObject, Clone)]
pub struct DealInput {
    pub external_id: Option<String>,
    pub name: String,
    pub amount: Decimal,
    /// Defaults to the organisation's currency; another currency is rejected.
    pub currency: Option<String>,
    pub owner_id: ID,
    pub account_id: Option<ID>,
    /// Defaults to the account's territory, else the owner's.
    pub territory_id: Option<ID>,
    /// Defaults to the first OPEN stage.
    pub stage_id: Option<ID>,
    /// Defaults to PIPELINE for open deals; a deal in a WON stage is always CLOSED and one in a LOST stage OMITTED. On an upsert that reopens a closed deal, the category it takes (default PIPELINE).
    pub forecast_category: Option<ForecastCategory>,
    pub source: Option<DealSource>,
    pub playbook_id: Option<ID>,
    /// When the opportunity was opened (default now); integrations may backfill it. Read when the deal is created only.
    pub opened_at: Option<DateTime<Utc>>,
    pub expected_close_date: Option<Date>,
    /// For a deal in a WON or LOST stage: when it closed (default now). On an upsert that moves the deal to such a stage, the time of the move.
    pub closed_at: Option<DateTime<Utc>>,
    /// For a deal in a LOST stage.
    pub lost_reason: Option<String>,
    /// When the deal entered stageId (default now), for backfills: a new deal in a later stage gets two history entries (the first OPEN stage at openedAt, then stageId at this time); an upsert that changes the stage records the move at this time, which must not be before the deal's latest revision.
    pub stage_changed_at: Option<DateTime<Utc>>,
    /// Backfill: when an update of an existing deal took effect (OPS, ADMIN, INTEGRATION); never before its latest revision. Ignored when the upsert creates the deal (its history starts at openedAt); on a stage move it must equal stageChangedAt (or closedAt) when both are given.
    pub effective_at: Option<DateTime<Utc>>,
}

impl DealInput {
    /// Checked per input, so a bulk call rejects only its bad inputs (the
    /// request-wide NUL check leaves bulk inputs to this one; ids holding
    /// NUL fail `parse_id`).
    pub fn to_new_deal(&self) -> AppResult<NewDeal> {
        let strings = [
            self.external_id.as_deref(),
            Some(self.name.as_str()),
            self.currency.as_deref(),
            self.lost_reason.as_deref(),
        ];
        if strings.into_iter().flatten().any(has_nul) {
            return Err(AppError::bad_input(NUL_MESSAGE));
        }
        Ok(NewDeal {
            external_id: self.external_id.clone(),
            name: self.name.clone(),
            amount: self.amount,
            currency: self.currency.clone(),
            owner_id: parse_id(&self.owner_id, "ownerId")?,
            account_id: opt_id(&self.account_id, "accountId")?,
            territory_id: opt_id(&self.territory_id, "territoryId")?,
            stage_id: opt_id(&self.stage_id, "stageId")?,
            forecast_category: self.forecast_category.map(Into::into),
            source: self.source.map(Into::into),
            playbook_id: opt_id(&self.playbook_id, "playbookId")?,
            opened_at: check_opt_instant(self.opened_at, "openedAt")?,
            expected_close_date: self.expected_close_date.map(|d| d.0),
            closed_at: check_opt_instant(self.closed_at, "closedAt")?,
            lost_reason: self.lost_reason.clone(),
            stage_changed_at: check_opt_instant(self.stage_changed_at, "stageChangedAt")?,
            effective_at: check_opt_instant(self.effective_at, "effectiveAt")?,
        })
    }
}

/// Fields to change; an absent field is kept, null clears a nullable one.
#[derive(InputObject)]
pub struct DealPatch {
    pub name: Option<String>,
    pub amount: Option<Decimal>,
    pub owner_id: Option<ID>,
    pub account_id: MaybeUndefined<ID>,
    pub territory_id: MaybeUndefined<ID>,
    pub forecast_category: Option<ForecastCategory>,
    pub source: MaybeUndefined<DealSource>,
    pub playbook_id: MaybeUndefined<ID>,
    pub expected_close_date: MaybeUndefined<Date>,
    /// Backfill: when the change took effect (OPS, ADMIN, INTEGRATION); never before the deal's latest revision.
    pub effective_at: Option<DateTime<Utc>>,
}

impl DealPatch {
    pub fn into_changes(self) -> AppResult<DealChanges> {
        Ok(DealChanges {
            name: self.name,
            amount: self.amount,
            owner_id: self
                .owner_id
                .as_ref()
                .map(|i| parse_id(i, "ownerId"))
                .transpose()?,
            account_id: patch(self.account_id, |i| parse_id(&i, "accountId"))?,
            territory_id: patch(self.territory_id, |i| parse_id(&i, "territoryId"))?,
            forecast_category: self.forecast_category.map(Into::into),
            source: patch(self.source, |s| Ok(s.into()))?,
            playbook_id: patch(self.playbook_id, |i| parse_id(&i, "playbookId"))?,
            expected_close_date: patch(self.expected_close_date, |d| Ok(d.0))?,
            effective_at: check_opt_instant(self.effective_at, "effectiveAt")?,
        })
    }
}

#[derive(InputObject)]
pub struct StageInput {
    pub name: String,
    pub position: i32,
    pub probability: f64,
    pub kind: StageKind,
}

#[derive(InputObject)]
pub struct PlaybookStepInput {
    pub title: String,
    pub guidance: Option<String>,
    pub stage_id: Option<ID>,
}

#[derive(InputObject)]
pub struct PlaybookInput {
    pub name: String,
    pub description: Option<String>,
    pub segment: Option<Segment>,
    pub steps: Option<Vec<PlaybookStepInput>>,
}
