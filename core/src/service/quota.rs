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
