//! Lead scoring (docs/design.md, Leads and activities): rules set by sales
//! ops as a whole list, each `points` when a lead's field matches a value.
//! A lead's score is the sum of the points of the rules it matches,
//! clamped to 0..100, and it keeps the ids of those rules so the score
//! explains itself.
//!
//! The rules are compiled to one SQL expression, so the same code scores a
//! lead on its write (the leads just written, by id) and re-scores every
//! open lead when the rules change (one UPDATE, in the transaction that
//! replaces the rules): there is no second implementation in Rust to drift.
//! Text comparisons ignore case; a missing field compares as empty text.
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveEnum, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder,
};

use entity::enums::LeadStatus;
use entity::lead_scoring_rule;

use super::access::CONFIG_WRITERS;
use super::audit::{self, Changes};
use crate::auth::Principal;
use crate::clock;
use crate::db::{begin_write, insert_models, Dialect, Sql};
use crate::error::{AppError, AppResult};

/// The most rules in force at once (each is one CASE in the scoring statement).
pub const MAX_RULES: usize = 100;
/// Points of one rule: -100..=100.
pub const MAX_POINTS: i32 = 100;
/// Scores are clamped to 0..=100.
pub const MAX_SCORE: i32 = 100;

/// A lead field a rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleField {
    Source,
    Industry,
    Segment,
    Title,
    Company,
    Email,
    Name,
    TerritoryId,
}

impl RuleField {
    pub const ALL: [RuleField; 8] = [
        RuleField::Source,
        RuleField::Industry,
        RuleField::Segment,
        RuleField::Title,
        RuleField::Company,
        RuleField::Email,
        RuleField::Name,
        RuleField::TerritoryId,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleField::Source => "SOURCE",
            RuleField::Industry => "INDUSTRY",
            RuleField::Segment => "SEGMENT",
            RuleField::Title => "TITLE",
            RuleField::Company => "COMPANY",
            RuleField::Email => "EMAIL",
            RuleField::Name => "NAME",
            RuleField::TerritoryId => "TERRITORY_ID",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// The column's text, lower-cased, '' when missing.
    fn sql(self) -> &'static str {
        match self {
            RuleField::Source => "COALESCE(LOWER(lead.source), '')",
            RuleField::Industry => "COALESCE(LOWER(lead.industry), '')",
            RuleField::Segment => "COALESCE(LOWER(lead.segment), '')",
            RuleField::Title => "COALESCE(LOWER(lead.title), '')",
            RuleField::Company => "COALESCE(LOWER(lead.company), '')",
            RuleField::Email => "COALESCE(LOWER(lead.email), '')",
            RuleField::Name => "COALESCE(LOWER(lead.name), '')",
            RuleField::TerritoryId => "COALESCE(CAST(lead.territory_id AS TEXT), '')",
        }
    }
}

/// How a rule compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleOperator {
    Equals,
    NotEquals,
    Contains,
    StartsWith,
    EndsWith,
    /// One of a comma-separated list.
    In,
    IsSet,
    IsNotSet,
}

impl RuleOperator {
    pub const ALL: [RuleOperator; 8] = [
        RuleOperator::Equals,
        RuleOperator::NotEquals,
        RuleOperator::Contains,
        RuleOperator::StartsWith,
        RuleOperator::EndsWith,
        RuleOperator::In,
        RuleOperator::IsSet,
        RuleOperator::IsNotSet,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleOperator::Equals => "EQUALS",
            RuleOperator::NotEquals => "NOT_EQUALS",
            RuleOperator::Contains => "CONTAINS",
            RuleOperator::StartsWith => "STARTS_WITH",
            RuleOperator::EndsWith => "ENDS_WITH",
            RuleOperator::In => "IN",
            RuleOperator::IsSet => "IS_SET",
            RuleOperator::IsNotSet => "IS_NOT_SET",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }

    fn takes_value(self) -> bool {
        !matches!(self, RuleOperator::IsSet | RuleOperator::IsNotSet)
    }
}

#[derive(Debug, Clone)]
pub struct RuleInput {
    pub field: RuleField,
    pub operator: RuleOperator,
    pub value: Option<String>,
    pub points: i32,
}

/// A validated rule: value trimmed and lower-cased ('' for IS_SET/IS_NOT_SET).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ValidRule {
    field: RuleField,
    operator: RuleOperator,
    value: String,
    points: i32,
}

fn validate(rules: &[RuleInput]) -> AppResult<Vec<ValidRule>> {
    if rules.len() > MAX_RULES {
        return Err(AppError::bad_input(format!(
            "rules: at most {MAX_RULES} rules, got {}",
            rules.len()
        )));
    }
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            if !(-MAX_POINTS..=MAX_POINTS).contains(&r.points) {
                return Err(AppError::bad_input(format!(
                    "rules[{i}].points must be between -{MAX_POINTS} and {MAX_POINTS}, got {}",
                    r.points
                )));
            }
            let value = r.value.as_deref().map(str::trim).unwrap_or("");
            if r.operator.takes_value() {
                if value.is_empty() {
                    return Err(AppError::bad_input(format!(
                        "rules[{i}].value is required for {}",
                        r.operator.as_str()
                    )));
                }
                if value.chars().count() > 300 {
                    return Err(AppError::bad_input(format!(
                        "rules[{i}].value must be at most 300 characters"
                    )));
                }
            } else if !value.is_empty() {
                return Err(AppError::bad_input(format!(
                    "rules[{i}].value must be empty for {}",
                    r.operator.as_str()
                )));
            }
            Ok(ValidRule {
                field: r.field,
                operator: r.operator,
                value: value.to_lowercase(),
                points: r.points,
            })
        })
        .collect()
}

/// The condition of one rule on the lead row (alias `lead`), with its values bound.
fn condition(d: Dialect, r: &lead_scoring_rule::Model) -> AppResult<Sql> {
    let field = RuleField::parse(&r.field)
        .ok_or_else(|| AppError::internal(format!("stored rule {} has field {}", r.id, r.field)))?
        .sql();
    let op = RuleOperator::parse(&r.operator).ok_or_else(|| {
        AppError::internal(format!("stored rule {} has operator {}", r.id, r.operator))
    })?;
    let v = r.value.clone();
    let mut sql = Sql::new("");
    match op {
        RuleOperator::Equals => {
            sql.push(&format!("{field} = ")).bind(v);
        }
        RuleOperator::NotEquals => {
            sql.push(&format!("{field} <> ")).bind(v);
        }
        RuleOperator::Contains => {
            let f = match d {
                Dialect::Sqlite => "instr",
                Dialect::Postgres => "strpos",
            };
            sql.push(&format!("{f}({field}, ")).bind(v).push(") > 0");
        }
        RuleOperator::StartsWith => {
            let n = v.chars().count();
            sql.push(&format!("substr({field}, 1, {n}) = ")).bind(v);
        }
        RuleOperator::EndsWith => {
            let n = v.chars().count();
            let tail = match d {
                Dialect::Sqlite => format!("substr({field}, -{n})"),
                Dialect::Postgres => format!("right({field}, {n})"),
            };
            sql.push(&format!("{tail} = ")).bind(v);
        }
        RuleOperator::In => {
            let items: Vec<String> = v
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect();
            sql.push(&format!("{field} IN ")).bind_list(items);
        }
        RuleOperator::IsSet => {
            sql.push(&format!("{field} <> ''"));
        }
        RuleOperator::IsNotSet => {
            sql.push(&format!("{field} = ''"));
        }
    }
    Ok(sql)
}

/// `UPDATE lead SET score = ..., score_rule_ids = ... WHERE <which>`: the
/// rules' points summed and clamped, and the ids of the rules matched
/// (",3,7", empty when none); leads whose score does not change are not
/// rewritten.
fn score_statement(
    d: Dialect,
    rules: &[lead_scoring_rule::Model],
    which: &Which,
) -> AppResult<Sql> {
    let mut sum = Sql::new("0");
    let mut ids = Sql::new("''");
    for r in rules {
        let cond = condition(d, r)?;
        sum.push(" + CASE WHEN ")
            .append(&cond)
            .push(&format!(" THEN {} ELSE 0 END", r.points));
        ids.push(" || CASE WHEN ")
            .append(&cond)
            .push(&format!(" THEN ',{}' ELSE '' END", r.id));
    }
    let (lo, hi) = match d {
        Dialect::Sqlite => ("MAX", "MIN"),
        Dialect::Postgres => ("GREATEST", "LEAST"),
    };
    let mut score = Sql::new(format!("{lo}(0, {hi}({MAX_SCORE}, "));
    score.append(&sum).push("))");
    let ids = if rules.is_empty() {
        Sql::new("''")
    } else {
        ids
    };
    let mut sql = Sql::new("UPDATE lead SET score = ");
    sql.append(&score)
        .push(", score_rule_ids = ")
        .append(&ids)
        .push(" WHERE ");
    match which {
        Which::Ids(list) => {
            sql.push("lead.id IN ").bind_list(list.iter().copied());
        }
        Which::All => {
            sql.push("1 = 1");
        }
        Which::Open => {
            sql.push(&format!(
                "lead.status IN ('{}', '{}', '{}')",
                LeadStatus::New.to_value(),
                LeadStatus::Working.to_value(),
                LeadStatus::Qualified.to_value()
            ));
        }
    }
    // Rewrite only the leads whose score or rules change.
    sql.push(" AND (lead.score <> ")
        .append(&score)
        .push(" OR lead.score_rule_ids <> ")
        .append(&ids)
        .push(")");
    Ok(sql)
}

/// Which leads a scoring pass rewrites.
pub enum Which<'a> {
    Ids(&'a [i64]),
    /// Every open lead (NEW, WORKING, QUALIFIED): after the rules change.
    Open,
    /// Every lead (the seed, which writes leads before their rules).
    All,
}

/// The rules in force, in their order.
pub async fn rules_in_force(db: &impl ConnectionTrait) -> AppResult<Vec<lead_scoring_rule::Model>> {
    Ok(lead_scoring_rule::Entity::find()
        .filter(lead_scoring_rule::Column::RetiredAt.is_null())
        .order_by_asc(lead_scoring_rule::Column::Position)
        .order_by_asc(lead_scoring_rule::Column::Id)
        .all(db)
        .await?)
}

/// Scores leads with the rules in force; returns how many changed.
pub async fn score(db: &impl ConnectionTrait, which: Which<'_>) -> AppResult<u64> {
    if matches!(which, Which::Ids(ids) if ids.is_empty()) {
        return Ok(0);
    }
    let rules = rules_in_force(db).await?;
    score_with(db, &rules, which).await
}

async fn score_with(
    db: &impl ConnectionTrait,
    rules: &[lead_scoring_rule::Model],
    which: Which<'_>,
) -> AppResult<u64> {
    let d = Dialect::of(db);
    let sql = score_statement(d, rules, &which)?;
    Ok(db
        .execute_raw(sql.statement(db.get_database_backend()))
        .await?
        .rows_affected())
}

pub struct RulesSet {
    pub rules: Vec<lead_scoring_rule::Model>,
    /// Open leads whose score changed.
    pub rescored: u64,
}

/// Replaces the rules (OPS, ADMIN) and re-scores every open lead, in one
/// transaction: a reader sees the old rules and scores or the new ones.
pub async fn set_rules(
    db: &DatabaseConnection,
    actor: &Principal,
    inputs: Vec<RuleInput>,
) -> AppResult<RulesSet> {
    actor.require(CONFIG_WRITERS)?;
    let valid = validate(&inputs)?;
    let tx = begin_write(db).await?;
    let now = clock::now();
    let old = rules_in_force(&tx).await?;
    let mut retire = Sql::new("UPDATE lead_scoring_rule SET retired_at = ");
    retire.bind(now).push(" WHERE retired_at IS NULL");
    tx.execute_raw(retire.statement(tx.get_database_backend()))
        .await?;
    let rows: Vec<lead_scoring_rule::Model> = valid
        .iter()
        .enumerate()
        .map(|(i, r)| lead_scoring_rule::Model {
            id: 0,
            position: i as i32,
            field: r.field.as_str().to_owned(),
            operator: r.operator.as_str().to_owned(),
            value: r.value.clone(),
            points: r.points,
            created_at: now,
            created_by: actor.subject.clone(),
            retired_at: None,
        })
        .collect();
    insert_models::<lead_scoring_rule::Entity>(&tx, &[lead_scoring_rule::Column::Id], &rows)
        .await?;
    let rules = rules_in_force(&tx).await?;
    let rescored = score_with(&tx, &rules, Which::Open).await?;
    let text = |rs: &[lead_scoring_rule::Model]| -> Vec<String> {
        rs.iter()
            .map(|r| format!("{} {} {:?}: {:+}", r.field, r.operator, r.value, r.points))
            .collect()
    };
    let mut changes = Changes::new();
    changes
        .field("rules", &text(&old), &text(&rules))
        .created("rescoredLeads", &rescored);
    audit::record(
        &tx,
        &actor.subject,
        "setLeadScoringRules",
        "LeadScoringRules",
        0,
        &changes,
    )
    .await?;
    tx.commit().await?;
    Ok(RulesSet { rules, rescored })
}

/// The rule ids stored on a lead (",3,7").
pub fn rule_ids(stored: &str) -> Vec<i64> {
    stored
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

/// Rules by id (retired ones included), for explaining stored scores.
pub async fn rules_by_id(
    db: &impl ConnectionTrait,
    ids: &[i64],
) -> AppResult<Vec<lead_scoring_rule::Model>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(lead_scoring_rule::Entity::find()
        .filter(lead_scoring_rule::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?)
}

#[derive(Debug, Clone, PartialEq, FromQueryResult)]
pub struct Band {
    /// Lowest score of the band.
    pub low: i32,
    pub leads: i64,
    pub converted: i64,
    pub disqualified: i64,
}

/// Leads created in [from, to) per score band of `width` points (0..width-1,
/// ..., the last band ending at 100), and how many of them converted: one
/// statement. Every band is returned, empty ones with zeros.
pub async fn calibration(
    db: &impl ConnectionTrait,
    scope: super::access::DealScope,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    width: i32,
) -> AppResult<Vec<Band>> {
    if !(1..=100).contains(&width) {
        return Err(AppError::bad_input("bandWidth must be between 1 and 100"));
    }
    let d = Dialect::of(db);
    let band = format!(
        "(CASE WHEN lead.score >= {MAX_SCORE} THEN {last} ELSE lead.score / {width} END) * {width}",
        last = (MAX_SCORE - 1) / width
    );
    let mut sql = Sql::new(format!(
        "SELECT {band} AS low, {n} AS leads, {c} AS converted, {q} AS disqualified FROM lead WHERE lead.created_at >= ",
        n = d.count("*"),
        c = d.count(&format!("CASE WHEN lead.status = '{}' THEN 1 END", LeadStatus::Converted.to_value())),
        q = d.count(&format!("CASE WHEN lead.status = '{}' THEN 1 END", LeadStatus::Disqualified.to_value())),
    ));
    sql.bind(from).push(" AND lead.created_at < ").bind(to);
    let (cond, values) = scope.rep_sql("lead.owner_id");
    sql.push(" AND ").push_with(&cond, values);
    sql.push(&format!(" GROUP BY {band}"));
    let found = Band::find_by_statement(sql.statement(db.get_database_backend()))
        .all(db)
        .await?;
    let mut bands = Vec::new();
    let mut low = 0;
    while low < MAX_SCORE {
        bands.push(
            found
                .iter()
                .find(|b| b.low == low)
                .cloned()
                .unwrap_or(Band {
                    low,
                    leads: 0,
                    converted: 0,
                    disqualified: 0,
                }),
        );
        low += width;
    }
    Ok(bands)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(points: i32, op: RuleOperator, value: Option<&str>) -> RuleInput {
        RuleInput {
            field: RuleField::Source,
            operator: op,
            value: value.map(str::to_owned),
            points,
        }
    }

    #[test]
    fn points_outside_the_range_are_refused() {
        let e = validate(&[input(101, RuleOperator::Equals, Some("web"))]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "rules[0].points must be between -100 and 100, got 101"
        );
        assert!(validate(&[input(-100, RuleOperator::Equals, Some("web"))]).is_ok());
    }

    #[test]
    fn values_are_required_except_for_set_checks() {
        assert!(validate(&[input(5, RuleOperator::Contains, Some("  "))]).is_err());
        assert!(validate(&[input(5, RuleOperator::IsSet, Some("x"))]).is_err());
        let v = validate(&[input(5, RuleOperator::Equals, Some(" Web "))]).unwrap();
        assert_eq!(v[0].value, "web");
    }

    #[test]
    fn stored_rule_ids_parse() {
        assert_eq!(rule_ids(",3,17"), vec![3, 17]);
        assert!(rule_ids("").is_empty());
    }
}
