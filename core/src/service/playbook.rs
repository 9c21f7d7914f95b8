use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, Set,
};

use entity::enums::Segment;
use entity::{playbook, playbook_step, stage};

use super::access::CONFIG_WRITERS;
use super::audit::{self, Changes};
use super::{optional_text, referenced, required_text};
use crate::auth::Principal;
use crate::clock;
use crate::db::begin_write;
use crate::error::{AppError, AppResult};

pub struct NewPlaybook {
    pub name: String,
    pub description: Option<String>,
    pub segment: Option<Segment>,
    pub steps: Vec<NewStep>,
}

pub struct NewStep {
    pub title: String,
    pub guidance: Option<String>,
    pub stage_id: Option<i64>,
}

pub async fn get(db: &impl ConnectionTrait, id: i64) -> AppResult<playbook::Model> {
    playbook::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("playbook"))
}

pub async fn list(
    db: &impl ConnectionTrait,
    active: Option<bool>,
) -> AppResult<Vec<playbook::Model>> {
    let mut q = playbook::Entity::find();
    if let Some(a) = active {
        q = q.filter(playbook::Column::Active.eq(a));
    }
    Ok(q.order_by_asc(playbook::Column::Name)
        .order_by_asc(playbook::Column::Id)
        .all(db)
        .await?)
}

pub async fn create(
    db: &DatabaseConnection,
    actor: &Principal,
    input: NewPlaybook,
) -> AppResult<playbook::Model> {
    actor.require(CONFIG_WRITERS)?;
    let name = required_text(&input.name, "name", 200)?;
    let description = optional_text(input.description.as_deref(), "description", 10_000)?;
    if input.steps.len() > 100 {
        return Err(AppError::bad_input("a playbook has at most 100 steps"));
    }
    let tx = begin_write(db).await?;
    let model = playbook::ActiveModel {
        name: Set(name),
        description: Set(description),
        segment: Set(input.segment),
        active: Set(true),
        created_at: Set(clock::now()),
        ..Default::default()
    }
    .insert(&tx)
    .await?;
    let mut steps = Vec::with_capacity(input.steps.len());
    for (i, step) in input.steps.into_iter().enumerate() {
        let title = required_text(&step.title, &format!("steps[{i}].title"), 300)?;
        let guidance = optional_text(
            step.guidance.as_deref(),
            &format!("steps[{i}].guidance"),
            10_000,
        )?;
        if let Some(s) = step.stage_id {
            referenced::<stage::Entity>(&tx, s, &format!("steps[{i}].stageId")).await?;
        }
        steps.push(playbook_step::ActiveModel {
            playbook_id: Set(model.id),
            position: Set(i as i32 + 1),
            title: Set(title),
            guidance: Set(guidance),
            stage_id: Set(step.stage_id),
            ..Default::default()
        });
    }
    let step_titles: Vec<String> = steps.iter().map(|s| s.title.clone().unwrap()).collect();
    if !steps.is_empty() {
        playbook_step::Entity::insert_many(steps).exec(&tx).await?;
    }
    let mut changes = Changes::new();
    changes
        .created("name", &model.name)
        .created("description", &model.description)
        .created("segment", &model.segment)
        .created("steps", &step_titles);
    audit::record(
        &tx,
        &actor.subject,
        "createPlaybook",
        "Playbook",
        model.id,
        &changes,
    )
    .await?;
    tx.commit().await?;
    Ok(model)
}

#[derive(Default)]
pub struct PlaybookChanges {
    pub name: Option<String>,
    pub description: super::Patch<String>,
    pub segment: super::Patch<Segment>,
    pub active: Option<bool>,
}

/// Renames, re-segments or retires a playbook (its steps are kept).
pub async fn update(
    db: &DatabaseConnection,
    actor: &Principal,
    id: i64,
    patch: PlaybookChanges,
) -> AppResult<playbook::Model> {
    use super::Patch;
    actor.require(CONFIG_WRITERS)?;
    let tx = begin_write(db).await?;
    let current = get(&tx, id).await?;
    let name = match &patch.name {
        Some(n) => required_text(n, "name", 200)?,
        None => current.name.clone(),
    };
    let description = match patch.description {
        Patch::Set(d) => optional_text(Some(&d), "description", 10_000)?,
        other => other.apply(current.description.clone()),
    };
    let segment = patch.segment.apply(current.segment);
    let active = patch.active.unwrap_or(current.active);
    let mut changes = Changes::new();
    changes
        .field("name", &current.name, &name)
        .field("description", &current.description, &description)
        .field("segment", &current.segment, &segment)
        .field("active", &current.active, &active);
    if changes.is_empty() {
        return Ok(current);
    }
    let mut am: playbook::ActiveModel = current.into();
    am.name = Set(name);
    am.description = Set(description);
    am.segment = Set(segment);
    am.active = Set(active);
    let model = am.update(&tx).await?;
    audit::record(
        &tx,
        &actor.subject,
        "updatePlaybook",
        "Playbook",
        id,
        &changes,
    )
    .await?;
    tx.commit().await?;
    Ok(model)
}
