use rust_decimal::Decimal;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, Set,
};

use entity::{quota, rep};

use super::access::{DealScope, CONFIG_WRITERS};
use super::audit::{self, Changes};
use super::referenced;
use crate::auth::Principal;
use crate::clock;
use crate::db::begin_write;
use crate::domain::money::{from_cents, to_cents};
use crate::domain::period::Period;
use crate::error::{AppError, AppResult};

/// Quotas whose range lies inside the period (the ones a metric over the
/// period counts), ordered by rep then start.
pub async fn list(
    db: &impl ConnectionTrait,
    scope: DealScope,
    period: &Period,
    rep_id: Option<i64>,
) -> AppResult<Vec<quota::Model>> {
    let mut q = quota::Entity::find()
        .filter(quota::Column::StartDate.gte(period.start()))
        .filter(quota::Column::EndDate.lte(period.end()));
    if let Some(cond) = scope.rep_condition("quota.rep_id", db.get_database_backend()) {
        q = q.filter(cond);
    }
    if let Some(r) = rep_id {
        q = q.filter(quota::Column::RepId.eq(r));
    }
    Ok(q.order_by_asc(quota::Column::RepId)
        .order_by_asc(quota::Column::StartDate)
        .all(db)
        .await?)
}

/// Sets a rep's quota for exactly this period (replacing the amount if one
/// is already set). A period that overlaps another of the rep's quotas
/// without being the same range is a CONFLICT: overlapping quotas would be
/// counted twice.
pub async fn set(
    db: &DatabaseConnection,
    actor: &Principal,
    rep_id: i64,
    period: &Period,
    amount: Decimal,
) -> AppResult<quota::Model> {
    actor.require(CONFIG_WRITERS)?;
    let cents = to_cents(amount, "amount")?;
    let tx = begin_write(db).await?;
    referenced::<rep::Entity>(&tx, rep_id, "repId").await?;
    let overlapping = quota::Entity::find()
        .filter(quota::Column::RepId.eq(rep_id))
        .filter(quota::Column::StartDate.lt(period.end()))
        .filter(quota::Column::EndDate.gt(period.start()))
        .all(&tx)
        .await?;
    let now = clock::now();
    let (model, action, changes) = match overlapping.as_slice() {
        [] => {
            let model = quota::ActiveModel {
                rep_id: Set(rep_id),
                start_date: Set(period.start()),
                end_date: Set(period.end()),
                amount_cents: Set(cents),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(&tx)
            .await?;
            let mut c = Changes::new();
            c.created("repId", &rep_id)
                .created("period", &period.to_string())
                .created("amount", &from_cents(cents));
            (model, "createQuota", c)
        }
        [same] if same.start_date == period.start() && same.end_date == period.end() => {
            let mut c = Changes::new();
            c.field("amount", &from_cents(same.amount_cents), &from_cents(cents));
            if c.is_empty() {
                return Ok(same.clone());
            }
            let mut am: quota::ActiveModel = same.clone().into();
            am.amount_cents = Set(cents);
            am.updated_at = Set(now);
            (am.update(&tx).await?, "updateQuota", c)
        }
        [other, ..] => {
            let existing = Period::canonical(other.start_date, other.end_date)
                .map(|p| p.to_string())
                .unwrap_or_default();
            return Err(AppError::conflict(format!(
                "the rep already has a quota for {existing}, which overlaps {period}"
            )));
        }
    };
    audit::record(&tx, &actor.subject, action, "Quota", model.id, &changes).await?;
    tx.commit().await?;
    Ok(model)
}

#[derive(sea_orm::FromQueryResult)]
struct TeamQuotaRow {
    rep_id: i64,
    cents: crate::db::SumCents,
}

/// Rep.teamQuota for many reps in one statement: per rep, the sum of the
/// quotas lying inside the period of the rep and everyone below it
/// (transitively); reps whose subtree has none are absent. A rep that does
/// not carry a quota has none unless one was set for it, so every quota of
/// the subtree counts.
pub async fn team_quotas(
    db: &impl ConnectionTrait,
    period: &Period,
    rep_ids: &[i64],
) -> AppResult<std::collections::HashMap<i64, Decimal>> {
    if rep_ids.is_empty() {
        return Ok(Default::default());
    }
    let d = crate::db::Dialect::of(db);
    let mut sql = crate::db::Sql::new(
        "WITH RECURSIVE sub(root_id, id) AS (SELECT id, id FROM rep WHERE id IN ",
    );
    sql.bind_list(rep_ids.iter().copied()).push(&format!(
        " UNION SELECT sub.root_id, r.id FROM rep r JOIN sub ON r.manager_id = sub.id) \
         SELECT sub.root_id AS rep_id, {cents} AS cents FROM sub JOIN quota ON quota.rep_id = sub.id \
         AND quota.start_date >= ",
        cents = d.sum_cents("quota.amount_cents")
    ));
    sql.bind(period.start())
        .push(" AND quota.end_date <= ")
        .bind(period.end())
        .push(" GROUP BY sub.root_id");
    use sea_orm::FromQueryResult as _;
    let rows = TeamQuotaRow::find_by_statement(sql.statement(db.get_database_backend()))
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.rep_id, crate::domain::money::from_cents(r.cents.0)))
        .collect())
}
