use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};

use entity::enums::Segment;
use entity::{account, territory};

use super::access::ORG_WRITERS;
use super::audit::{self, Changes};
use super::{optional_text, referenced, required_text};
use crate::auth::Principal;
use crate::clock;
use crate::db::begin_write;
use crate::error::{AppError, AppResult};

pub struct NewAccount {
    pub external_id: Option<String>,
    pub name: String,
    pub industry: Option<String>,
    pub segment: Option<Segment>,
    pub territory_id: Option<i64>,
}

pub async fn get(db: &impl ConnectionTrait, id: i64) -> AppResult<account::Model> {
    account::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("account"))
}

/// Escapes LIKE wildcards so a search for "50%" means the text "50%".
pub fn like_pattern(search: &str) -> String {
    let escaped = search
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// Ordered by name then id; `after` is the id of the last account of the
/// previous page.
pub async fn list(
    db: &impl ConnectionTrait,
    search: Option<&str>,
    after: Option<i64>,
    limit: u64,
) -> AppResult<Vec<account::Model>> {
    let mut q = account::Entity::find();
    if let Some(s) = search.map(str::trim).filter(|s| !s.is_empty()) {
        q = q.filter(
            Expr::cust("LOWER(account.name)").like(LikeExpr::new(like_pattern(s)).escape('\\')),
        );
    }
    if let Some(after) = after {
        let last = get(db, after)
            .await
            .map_err(|_| AppError::bad_input("after: no account with that id"))?;
        q = q.filter(
            account::Column::Name
                .gt(last.name.clone())
                .or(account::Column::Name
                    .eq(last.name)
                    .and(account::Column::Id.gt(last.id))),
        );
    }
    Ok(q.order_by_asc(account::Column::Name)
        .order_by_asc(account::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

pub async fn create(
    db: &DatabaseConnection,
    actor: &Principal,
    input: NewAccount,
) -> AppResult<account::Model> {
    actor.require(ORG_WRITERS)?;
    let name = required_text(&input.name, "name", 300)?;
    let industry = optional_text(input.industry.as_deref(), "industry", 200)?;
    let external_id = optional_text(input.external_id.as_deref(), "externalId", 200)?;
    let tx = begin_write(db).await?;
    if let Some(t) = input.territory_id {
        referenced::<territory::Entity>(&tx, t, "territoryId").await?;
    }
    let now = clock::now();
    let model = account::ActiveModel {
        external_id: Set(external_id),
        name: Set(name),
        industry: Set(industry),
        segment: Set(input.segment),
        territory_id: Set(input.territory_id),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&tx)
    .await?;
    let mut changes = Changes::new();
    changes
        .created("externalId", &model.external_id)
        .created("name", &model.name)
        .created("industry", &model.industry)
        .created("segment", &model.segment)
        .created("territoryId", &model.territory_id);
    audit::record(
        &tx,
        &actor.subject,
        "createAccount",
        "Account",
        model.id,
        &changes,
    )
    .await?;
    tx.commit().await?;
    Ok(model)
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(super::like_pattern("50%_Off"), "%50\\%\\_off%");
    }
}

#[derive(Default)]
pub struct AccountChanges {
    pub name: Option<String>,
    pub external_id: super::Patch<String>,
    pub industry: super::Patch<String>,
    pub segment: super::Patch<Segment>,
    pub territory_id: super::Patch<i64>,
}

pub async fn update(
    db: &DatabaseConnection,
    actor: &Principal,
    id: i64,
    patch: AccountChanges,
) -> AppResult<account::Model> {
    use super::Patch;
    actor.require(ORG_WRITERS)?;
    let tx = begin_write(db).await?;
    let current = get(&tx, id).await?;
    if let Some(t) = patch.territory_id.as_set() {
        referenced::<territory::Entity>(&tx, *t, "territoryId").await?;
    }
    let name = match &patch.name {
        Some(n) => required_text(n, "name", 300)?,
        None => current.name.clone(),
    };
    let text = |p: Patch<String>,
                cur: &Option<String>,
                field: &str,
                max: usize|
     -> AppResult<Option<String>> {
        match p {
            Patch::Set(v) => optional_text(Some(&v), field, max),
            other => Ok(other.apply(cur.clone())),
        }
    };
    let external_id = text(patch.external_id, &current.external_id, "externalId", 200)?;
    let industry = text(patch.industry, &current.industry, "industry", 200)?;
    let segment = patch.segment.apply(current.segment);
    let territory_id = patch.territory_id.apply(current.territory_id);
    let mut changes = Changes::new();
    changes
        .field("name", &current.name, &name)
        .field("externalId", &current.external_id, &external_id)
        .field("industry", &current.industry, &industry)
        .field("segment", &current.segment, &segment)
        .field("territoryId", &current.territory_id, &territory_id);
    if changes.is_empty() {
        return Ok(current);
    }
    let mut am: account::ActiveModel = current.into();
    am.name = Set(name);
    am.external_id = Set(external_id);
    am.industry = Set(industry);
    am.segment = Set(segment);
    am.territory_id = Set(territory_id);
    am.updated_at = Set(clock::now());
    let model = am.update(&tx).await?;
    audit::record(
        &tx,
        &actor.subject,
        "updateAccount",
        "Account",
        id,
        &changes,
    )
    .await?;
    tx.commit().await?;
    Ok(model)
}
