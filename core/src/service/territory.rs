use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Set,
};

use entity::enums::Segment;
use entity::territory;

use super::access::CONFIG_WRITERS;
use super::audit::{self, Changes};
use super::{optional_text, referenced, required_text, Patch};
use crate::auth::Principal;
use crate::clock;
use crate::db::{begin_write, Sql};
use crate::error::{AppError, AppResult};

pub struct NewTerritory {
    pub name: String,
    pub segment: Option<Segment>,
    pub region: Option<String>,
    pub parent_id: Option<i64>,
}

#[derive(Default)]
pub struct TerritoryChanges {
    pub name: Option<String>,
    pub segment: Patch<Segment>,
    pub region: Patch<String>,
    pub parent_id: Patch<i64>,
}

pub async fn get(db: &impl ConnectionTrait, id: i64) -> AppResult<territory::Model> {
    territory::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("territory"))
}

/// A page of territories ordered by id (with a parent, only its direct
/// children), after the one with id `after`; and whether more follow.
pub async fn page(
    db: &impl ConnectionTrait,
    parent_id: Option<i64>,
    after: Option<i64>,
    limit: u64,
) -> AppResult<(Vec<territory::Model>, bool)> {
    let mut q = territory::Entity::find();
    if let Some(p) = parent_id {
        q = q.filter(territory::Column::ParentId.eq(p));
    }
    if let Some(a) = after {
        q = q.filter(territory::Column::Id.gt(a));
    }
    let mut rows = q
        .order_by_asc(territory::Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    Ok((rows, more))
}

/// How many territories there are (with a parent, its direct children).
pub async fn count(db: &impl ConnectionTrait, parent_id: Option<i64>) -> AppResult<u64> {
    use sea_orm::PaginatorTrait;
    let mut q = territory::Entity::find();
    if let Some(p) = parent_id {
        q = q.filter(territory::Column::ParentId.eq(p));
    }
    Ok(q.count(db).await?)
}

/// Ordered by name; with a parent, only its direct children.
pub async fn list(
    db: &impl ConnectionTrait,
    parent_id: Option<i64>,
    limit: u64,
) -> AppResult<Vec<territory::Model>> {
    let mut q = territory::Entity::find();
    if let Some(p) = parent_id {
        q = q.filter(territory::Column::ParentId.eq(p));
    }
    Ok(q.order_by_asc(territory::Column::Name)
        .order_by_asc(territory::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

pub async fn create(
    db: &DatabaseConnection,
    actor: &Principal,
    input: NewTerritory,
) -> AppResult<territory::Model> {
    actor.require(CONFIG_WRITERS)?;
    let name = required_text(&input.name, "name", 200)?;
    let region = optional_text(input.region.as_deref(), "region", 200)?;
    let tx = begin_write(db).await?;
    if let Some(p) = input.parent_id {
        referenced::<territory::Entity>(&tx, p, "parentId").await?;
    }
    let now = clock::now();
    let model = territory::ActiveModel {
        name: Set(name),
        segment: Set(input.segment),
        region: Set(region),
        parent_id: Set(input.parent_id),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&tx)
    .await?;
    let mut changes = Changes::new();
    changes
        .created("name", &model.name)
        .created("segment", &model.segment)
        .created("region", &model.region)
        .created("parentId", &model.parent_id);
    audit::record(
        &tx,
        &actor.subject,
        "createTerritory",
        "Territory",
        model.id,
        &changes,
    )
    .await?;
    tx.commit().await?;
    Ok(model)
}

#[derive(FromQueryResult)]
struct IdRow {
    id: i64,
}

/// The territory and all its ancestors.
async fn ancestors(db: &impl ConnectionTrait, id: i64) -> AppResult<Vec<i64>> {
    let mut sql = Sql::new(
        "WITH RECURSIVE up(id, parent_id) AS (SELECT id, parent_id FROM territory WHERE id = ",
    );
    sql.bind(id).push(
        " UNION SELECT t.id, t.parent_id FROM territory t JOIN up ON t.id = up.parent_id) SELECT id FROM up",
    );
    let rows = IdRow::find_by_statement(sql.statement(db.get_database_backend()))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

pub async fn update(
    db: &DatabaseConnection,
    actor: &Principal,
    id: i64,
    patch: TerritoryChanges,
) -> AppResult<territory::Model> {
    actor.require(CONFIG_WRITERS)?;
    let tx = begin_write(db).await?;
    let current = get(&tx, id).await?;
    if let Patch::Set(p) = patch.parent_id {
        referenced::<territory::Entity>(&tx, p, "parentId").await?;
        if ancestors(&tx, p).await?.contains(&id) {
            return Err(AppError::bad_input(
                "parentId would make the territory its own ancestor",
            ));
        }
    }
    let name = match &patch.name {
        Some(n) => required_text(n, "name", 200)?,
        None => current.name.clone(),
    };
    let region = match patch.region {
        Patch::Set(r) => optional_text(Some(&r), "region", 200)?,
        other => other.apply(current.region.clone()),
    };
    let segment = patch.segment.apply(current.segment);
    let parent_id = patch.parent_id.apply(current.parent_id);
    let mut changes = Changes::new();
    changes
        .field("name", &current.name, &name)
        .field("segment", &current.segment, &segment)
        .field("region", &current.region, &region)
        .field("parentId", &current.parent_id, &parent_id);
    if changes.is_empty() {
        return Ok(current);
    }
    let mut am: territory::ActiveModel = current.into();
    am.name = Set(name);
    am.segment = Set(segment);
    am.region = Set(region);
    am.parent_id = Set(parent_id);
    am.updated_at = Set(clock::now());
    let model = am.update(&tx).await?;
    audit::record(
        &tx,
        &actor.subject,
        "updateTerritory",
        "Territory",
        id,
        &changes,
    )
    .await?;
    tx.commit().await?;
    Ok(model)
}
