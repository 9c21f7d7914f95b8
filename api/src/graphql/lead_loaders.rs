//! DataLoaders of leads and activities: one statement per relation for a
//! whole page, scoped like the lists (a lead or deal outside the caller's
//! scope loads as missing).
use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult};

use entity::{activity, deal, lead};

use crate::db::Sql;
use crate::error::{AppError, AppResult};
use crate::service::access::DealScope;

/// Leads by id, in the caller's scope.
pub struct LeadsInScope {
    pub db: DatabaseConnection,
    pub scope: DealScope,
}

impl Loader<i64> for LeadsInScope {
    type Value = lead::Model;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, lead::Model>, Self::Error> {
        Ok(crate::service::lead::by_ids(&self.db, self.scope, keys)
            .await
            .map_err(Arc::new)?
            .into_iter()
            .map(|l| (l.id, l))
            .collect())
    }
}

/// Deals by id, in the caller's scope (a lead's deal, an activity's deal).
pub struct DealsInScope {
    pub db: DatabaseConnection,
    pub scope: DealScope,
}

impl Loader<i64> for DealsInScope {
    type Value = deal::Model;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, deal::Model>, Self::Error> {
        let mut sql = Sql::new("SELECT deal.* FROM deal WHERE deal.id IN ");
        sql.bind_list(keys.iter().copied());
        let (cond, values) = self.scope.rep_sql("deal.owner_id");
        sql.push(" AND ").push_with(&cond, values);
        let rows = deal::Model::find_by_statement(sql.statement(self.db.get_database_backend()))
            .all(&self.db)
            .await
            .map_err(|e| Arc::new(AppError::from(e)))?;
        Ok(rows.into_iter().map(|d| (d.id, d)).collect())
    }
}

/// Whose latest activities a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActivityParent {
    Lead(i64),
    Deal(i64),
}

/// The latest `limit` activities of each lead or deal (in the caller's
/// scope), newest first: one statement per kind of parent and limit.
pub struct RecentActivities {
    pub db: DatabaseConnection,
    pub scope: DealScope,
}

#[derive(FromQueryResult)]
struct Ranked {
    parent: i64,
}

async fn recent(
    db: &DatabaseConnection,
    scope: DealScope,
    column: &str,
    parents: &[i64],
    limit: u64,
) -> AppResult<Vec<(i64, activity::Model)>> {
    let mut sql = Sql::new(format!(
        "SELECT x.* FROM (SELECT activity.*, activity.{column} AS parent, \
         ROW_NUMBER() OVER (PARTITION BY activity.{column} ORDER BY activity.at DESC, activity.id DESC) AS rn \
         FROM activity WHERE activity.{column} IN "
    ));
    sql.bind_list(parents.iter().copied());
    let (cond, values) = scope.rep_sql("activity.rep_id");
    sql.push(" AND ").push_with(&cond, values);
    sql.push(") x WHERE x.rn <= ").bind(limit as i64);
    sql.push(" ORDER BY x.parent, x.at DESC, x.id DESC");
    let stmt = sql.statement(db.get_database_backend());
    let rows = db.query_all_raw(stmt).await?;
    rows.iter()
        .map(|r| {
            let a = activity::Model::from_query_result(r, "")?;
            let p = Ranked::from_query_result(r, "")?;
            Ok((p.parent, a))
        })
        .collect::<Result<Vec<_>, sea_orm::DbErr>>()
        .map_err(AppError::from)
}

impl Loader<(ActivityParent, u64)> for RecentActivities {
    type Value = Vec<activity::Model>;
    type Error = Arc<AppError>;

    async fn load(
        &self,
        keys: &[(ActivityParent, u64)],
    ) -> Result<HashMap<(ActivityParent, u64), Self::Value>, Self::Error> {
        // One statement per (kind of parent, limit) asked in this batch.
        let mut groups: HashMap<(bool, u64), Vec<i64>> = HashMap::new();
        for (parent, limit) in keys {
            match parent {
                ActivityParent::Lead(id) => groups.entry((true, *limit)).or_default().push(*id),
                ActivityParent::Deal(id) => groups.entry((false, *limit)).or_default().push(*id),
            }
        }
        let mut out: HashMap<(ActivityParent, u64), Self::Value> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for ((is_lead, limit), ids) in groups {
            let column = if is_lead { "lead_id" } else { "deal_id" };
            for (parent, a) in recent(&self.db, self.scope, column, &ids, limit)
                .await
                .map_err(Arc::new)?
            {
                let key = if is_lead {
                    ActivityParent::Lead(parent)
                } else {
                    ActivityParent::Deal(parent)
                };
                out.entry((key, limit)).or_default().push(a);
            }
        }
        Ok(out)
    }
}
