use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryOrder, Set,
};

use entity::enums::StageKind;
use entity::stage;

use super::access::CONFIG_WRITERS;
use super::audit::{self, Changes};
use super::required_text;
use crate::auth::Principal;
use crate::clock;
use crate::db::begin_write;
use crate::domain::money::{ppm_to_decimal, probability_to_ppm};
use crate::error::{AppError, AppResult};

pub struct NewStage {
    pub name: String,
    pub position: i32,
    pub probability: f64,
    pub kind: StageKind,
}

/// All stages in pipeline order.
pub async fn list(db: &impl ConnectionTrait) -> AppResult<Vec<stage::Model>> {
    Ok(stage::Entity::find()
        .order_by_asc(stage::Column::Position)
        .order_by_asc(stage::Column::Id)
        .all(db)
        .await?)
}

pub async fn get(db: &impl ConnectionTrait, id: i64) -> AppResult<stage::Model> {
    stage::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("stage"))
}

/// The stage a new deal starts in: the first OPEN stage.
pub fn first_open(stages: &[stage::Model]) -> AppResult<&stage::Model> {
    stages
        .iter()
        .find(|s| s.kind == StageKind::Open)
        .ok_or_else(|| AppError::bad_input("no OPEN stage is configured"))
}

pub async fn create(
    db: &DatabaseConnection,
    actor: &Principal,
    input: NewStage,
) -> AppResult<stage::Model> {
    actor.require(CONFIG_WRITERS)?;
    let name = required_text(&input.name, "name", 100)?;
    if input.position < 0 {
        return Err(AppError::bad_input("position must not be negative"));
    }
    let ppm = probability_to_ppm(input.probability, "probability")?;
    let tx = begin_write(db).await?;
    let model = stage::ActiveModel {
        name: Set(name),
        position: Set(input.position),
        probability_ppm: Set(ppm),
        kind: Set(input.kind),
        created_at: Set(clock::now()),
        ..Default::default()
    }
    .insert(&tx)
    .await?;
    let mut changes = Changes::new();
    changes
        .created("name", &model.name)
        .created("position", &model.position)
        .created("probability", &ppm_to_decimal(model.probability_ppm))
        .created("kind", &model.kind);
    audit::record(
        &tx,
        &actor.subject,
        "createStage",
        "Stage",
        model.id,
        &changes,
    )
    .await?;
    tx.commit().await?;
    Ok(model)
}

pub async fn update_probability(
    db: &DatabaseConnection,
    actor: &Principal,
    id: i64,
    probability: f64,
) -> AppResult<stage::Model> {
    actor.require(CONFIG_WRITERS)?;
    let ppm = probability_to_ppm(probability, "probability")?;
    let tx = begin_write(db).await?;
    let current = get(&tx, id).await?;
    let mut changes = Changes::new();
    changes.field(
        "probability",
        &ppm_to_decimal(current.probability_ppm),
        &ppm_to_decimal(ppm),
    );
    if changes.is_empty() {
        return Ok(current);
    }
    let mut am: stage::ActiveModel = current.into();
    am.probability_ppm = Set(ppm);
    let model = am.update(&tx).await?;
    audit::record(
        &tx,
        &actor.subject,
        "updateStageProbability",
        "Stage",
        id,
        &changes,
    )
    .await?;
    tx.commit().await?;
    Ok(model)
}
