//! What a subscriber may see of a batch of committed changes (see
//! crate::live): the same scope and filters as the queries, in SQL, one
//! statement per batch.
use std::collections::HashMap;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use entity::{deal, forecast_submission};

use crate::auth::Principal;
use crate::db::Sql;
use crate::domain::period::Period;
use crate::error::AppResult;
use crate::service::access::{DEAL_READERS, METRIC_READERS};
use crate::service::deal_filter::DealFilter;

/// The deals among `ids` the caller may see that match `filter` now.
pub async fn visible_deals(
    db: &impl ConnectionTrait,
    actor: &Principal,
    filter: &DealFilter,
    ids: &[i64],
) -> AppResult<HashMap<i64, deal::Model>> {
    actor.require(DEAL_READERS)?;
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut sql = Sql::new("SELECT deal.* FROM deal WHERE deal.id IN ");
    sql.bind_list(ids.iter().copied());
    filter.push_sql(&mut sql, actor.scope(), crate::db::Dialect::of(db));
    Ok(deal::Entity::find()
        .from_raw_sql(sql.statement(db.get_database_backend()))
        .all(db)
        .await?
        .into_iter()
        .map(|d| (d.id, d))
        .collect())
}

/// The forecast calls among `ids` the caller may see (of `period`, if
/// given: exactly its range, as forecastSubmissions).
pub async fn visible_submissions(
    db: &impl ConnectionTrait,
    actor: &Principal,
    period: Option<&Period>,
    ids: &[i64],
) -> AppResult<HashMap<i64, forecast_submission::Model>> {
    actor.require(METRIC_READERS)?;
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut q = forecast_submission::Entity::find()
        .filter(forecast_submission::Column::Id.is_in(ids.iter().copied()));
    if let Some(p) = period {
        q = q
            .filter(forecast_submission::Column::PeriodStart.eq(p.start()))
            .filter(forecast_submission::Column::PeriodEnd.eq(p.end()));
    }
    if let Some(cond) = actor
        .scope()
        .rep_condition("forecast_submission.rep_id", db.get_database_backend())
    {
        q = q.filter(cond);
    }
    Ok(q.all(db).await?.into_iter().map(|s| (s.id, s)).collect())
}
