//! A deal's revisions as the API lists them (docs/design.md, Deal history):
//! pages newest first for many deals in one statement, and what each
//! revision changed against the one before it.
use std::collections::HashMap;

use sea_orm::{ActiveEnum, ConnectionTrait, EntityTrait, FromQueryResult};

use entity::deal_revision;

use crate::db::Sql;
use crate::domain::money::from_cents;
use crate::error::AppResult;

/// One changed field, values in their API text form (null when unset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    pub field: &'static str,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// Every field of a revision in its API name and text form.
fn fields(r: &deal_revision::Model) -> [(&'static str, Option<String>); 13] {
    let id = |v: Option<i64>| v.map(|v| v.to_string());
    [
        ("name", Some(r.name.clone())),
        ("amount", Some(from_cents(r.amount_cents).to_string())),
        (
            "expectedCloseDate",
            r.expected_close_date.map(|d| d.to_string()),
        ),
        ("stageId", Some(r.stage_id.to_string())),
        ("status", Some(r.status.to_value())),
        ("forecastCategory", Some(r.forecast_category.to_value())),
        ("ownerId", Some(r.owner_id.to_string())),
        ("territoryId", id(r.territory_id)),
        ("accountId", id(r.account_id)),
        ("source", r.source.map(|s| s.to_value())),
        ("playbookId", id(r.playbook_id)),
        ("closedAt", r.closed_at.map(|t| t.to_rfc3339())),
        ("lostReason", r.lost_reason.clone()),
    ]
}

/// The fields `r` changed against `previous` (every set field of a first
/// revision, `from` null).
pub fn changes(
    r: &deal_revision::Model,
    previous: Option<&deal_revision::Model>,
) -> Vec<FieldChange> {
    let now = fields(r);
    match previous {
        None => now
            .into_iter()
            .filter(|(_, v)| v.is_some())
            .map(|(field, to)| FieldChange {
                field,
                from: None,
                to,
            })
            .collect(),
        Some(p) => now
            .into_iter()
            .zip(fields(p))
            .filter(|((_, to), (_, from))| to != from)
            .map(|((field, to), (_, from))| FieldChange { field, from, to })
            .collect(),
    }
}

/// Up to `first + 1` revisions per deal, newest first, older than version
/// `before` when given: the extra row tells whether more follow and is the
/// "previous" of the page's oldest revision. One statement for all deals.
/// Versions and valid_from grow together, so (valid_from, version) order is
/// version order and the in-force index serves it.
pub async fn pages(
    db: &impl ConnectionTrait,
    deal_ids: &[i64],
    first: u64,
    before: Option<i32>,
) -> AppResult<HashMap<i64, Vec<deal_revision::Model>>> {
    if deal_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut sql = Sql::new(
        "SELECT * FROM (SELECT r.*, ROW_NUMBER() OVER (PARTITION BY r.deal_id ORDER BY r.valid_from DESC, r.version DESC) AS page_rn \
         FROM deal_revision r WHERE r.deal_id IN ",
    );
    sql.bind_list(deal_ids.iter().copied());
    if let Some(v) = before {
        sql.push(" AND r.version < ").bind(v);
    }
    sql.push(") ranked WHERE page_rn <= ")
        .bind(first as i64 + 1)
        .push(" ORDER BY deal_id, page_rn");
    let rows = deal_revision::Entity::find()
        .from_raw_sql(sql.statement(db.get_database_backend()))
        .all(db)
        .await?;
    let mut out: HashMap<i64, Vec<deal_revision::Model>> = HashMap::new();
    for r in rows {
        out.entry(r.deal_id).or_default().push(r);
    }
    Ok(out)
}

#[derive(FromQueryResult)]
struct CountRow {
    deal_id: i64,
    n: i64,
}

/// How many revisions each deal has (from the version index alone).
pub async fn counts(db: &impl ConnectionTrait, deal_ids: &[i64]) -> AppResult<HashMap<i64, i64>> {
    if deal_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut sql = Sql::new("SELECT deal_id, COUNT(*) AS n FROM deal_revision WHERE deal_id IN ");
    sql.bind_list(deal_ids.iter().copied())
        .push(" GROUP BY deal_id");
    Ok(
        CountRow::find_by_statement(sql.statement(db.get_database_backend()))
            .all(db)
            .await?
            .into_iter()
            .map(|r| (r.deal_id, r.n))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone, Utc};
    use entity::enums::{DealStatus, ForecastCategory};

    fn rev(version: i32, amount_cents: i64, close: Option<NaiveDate>) -> deal_revision::Model {
        deal_revision::Model {
            id: version.into(),
            deal_id: 1,
            version,
            valid_from: Utc.with_ymd_and_hms(2026, 10, 1, 9, 0, 0).unwrap(),
            recorded_at: Utc.with_ymd_and_hms(2026, 10, 1, 9, 0, 0).unwrap(),
            actor: "ops".into(),
            name: "Acme".into(),
            amount_cents,
            owner_id: 7,
            account_id: None,
            territory_id: Some(3),
            stage_id: 4,
            status: DealStatus::Open,
            forecast_category: ForecastCategory::Pipeline,
            source: None,
            playbook_id: None,
            expected_close_date: close,
            closed_at: None,
            lost_reason: None,
            push_count: 0,
        }
    }

    #[test]
    fn a_first_revision_lists_every_set_field() {
        let r = rev(1, 100_000, NaiveDate::from_ymd_opt(2026, 12, 20));
        let c = changes(&r, None);
        let names: Vec<_> = c.iter().map(|c| c.field).collect();
        assert_eq!(
            names,
            [
                "name",
                "amount",
                "expectedCloseDate",
                "stageId",
                "status",
                "forecastCategory",
                "ownerId",
                "territoryId"
            ]
        );
        assert!(c.iter().all(|c| c.from.is_none()));
        assert_eq!(c[1].to.as_deref(), Some("1000.00"));
    }

    #[test]
    fn a_later_revision_lists_only_what_differs() {
        let a = rev(1, 100_000, NaiveDate::from_ymd_opt(2026, 12, 20));
        let b = rev(2, 500_000, NaiveDate::from_ymd_opt(2026, 12, 20));
        let c = rev(3, 500_000, NaiveDate::from_ymd_opt(2027, 2, 1));
        assert_eq!(
            changes(&b, Some(&a)),
            [FieldChange {
                field: "amount",
                from: Some("1000.00".into()),
                to: Some("5000.00".into())
            }]
        );
        assert_eq!(
            changes(&c, Some(&b)),
            [FieldChange {
                field: "expectedCloseDate",
                from: Some("2026-12-20".into()),
                to: Some("2027-02-01".into())
            }]
        );
    }
}
