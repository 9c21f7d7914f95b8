use std::collections::HashSet;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Set,
};

use entity::{rep, territory};

use super::access::{DealScope, ORG_WRITERS};
use super::audit::{self, Changes};
use super::{optional_text, referenced, required_text, Patch};
use crate::auth::Principal;
use crate::clock;
use crate::db::{begin_write, Sql};
use crate::domain::money::{ppm_to_decimal, ratio_to_ppm};
use crate::error::{AppError, AppResult};

pub const DEFAULT_RAMP_MONTHS: i32 = 3;
pub const DEFAULT_COMMISSION_RATE_PPM: i64 = 100_000;
pub const DEFAULT_COMMISSION_THRESHOLD_PPM: i64 = 1_000_000;
const MAX_THRESHOLD: Decimal = Decimal::from_parts(10, 0, 0, false, 0);

pub struct NewRep {
    pub external_id: Option<String>,
    pub name: String,
    pub email: String,
    pub title: Option<String>,
    pub territory_id: Option<i64>,
    pub manager_id: Option<i64>,
    pub hired_at: Option<NaiveDate>,
    pub active: Option<bool>,
    pub ramp_months: Option<i32>,
    pub commission_rate: Option<Decimal>,
    pub commission_threshold: Option<Decimal>,
    /// Default true: the rep sells and carries a quota.
    pub quota_carrying: Option<bool>,
}

#[derive(Default)]
pub struct RepChanges {
    pub name: Option<String>,
    pub email: Option<String>,
    pub title: Patch<String>,
    pub territory_id: Patch<i64>,
    pub manager_id: Patch<i64>,
    pub hired_at: Option<NaiveDate>,
    pub active: Option<bool>,
    pub ramp_months: Option<i32>,
    pub commission_rate: Option<Decimal>,
    pub commission_threshold: Option<Decimal>,
    pub quota_carrying: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct RepFilter {
    pub active: Option<bool>,
    pub territory_id: Option<i64>,
    pub manager_id: Option<i64>,
}

fn normalize_email(email: &str) -> AppResult<String> {
    let e = email.trim().to_lowercase();
    let valid = e.len() <= 320
        && !e.contains(char::is_whitespace)
        && matches!(e.split_once('@'), Some((local, domain)) if !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.') && !domain.contains('@'));
    if valid {
        Ok(e)
    } else {
        Err(AppError::bad_input(format!(
            "email {email:?} is not a valid address"
        )))
    }
}

fn ramp(months: i32) -> AppResult<i32> {
    if (0..=60).contains(&months) {
        Ok(months)
    } else {
        Err(AppError::bad_input("rampMonths must be between 0 and 60"))
    }
}

/// A rep the principal may see, else NOT_FOUND.
pub async fn get(db: &impl ConnectionTrait, scope: DealScope, id: i64) -> AppResult<rep::Model> {
    let mut q = rep::Entity::find_by_id(id);
    if let Some(cond) = scope.rep_condition("rep.id", db.get_database_backend()) {
        q = q.filter(cond);
    }
    q.one(db).await?.ok_or_else(|| AppError::not_found("rep"))
}

/// The reps the scope sees that match the filter.
fn filtered(
    db: &impl ConnectionTrait,
    scope: DealScope,
    f: &RepFilter,
) -> sea_orm::Select<rep::Entity> {
    let mut q = rep::Entity::find();
    if let Some(cond) = scope.rep_condition("rep.id", db.get_database_backend()) {
        q = q.filter(cond);
    }
    if let Some(a) = f.active {
        q = q.filter(rep::Column::Active.eq(a));
    }
    if let Some(t) = f.territory_id {
        q = q.filter(rep::Column::TerritoryId.eq(t));
    }
    if let Some(m) = f.manager_id {
        q = q.filter(rep::Column::ManagerId.eq(m));
    }
    q
}

/// A page of reps ordered by id, after the rep with id `after`; and whether
/// more follow (one extra row is read to know).
pub async fn page(
    db: &impl ConnectionTrait,
    scope: DealScope,
    f: &RepFilter,
    after: Option<i64>,
    limit: u64,
) -> AppResult<(Vec<rep::Model>, bool)> {
    let mut q = filtered(db, scope, f);
    if let Some(a) = after {
        q = q.filter(rep::Column::Id.gt(a));
    }
    let mut rows = q
        .order_by_asc(rep::Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    Ok((rows, more))
}

/// How many reps the scope sees that match the filter.
pub async fn count(db: &impl ConnectionTrait, scope: DealScope, f: &RepFilter) -> AppResult<u64> {
    use sea_orm::PaginatorTrait;
    Ok(filtered(db, scope, f).count(db).await?)
}

pub async fn list(
    db: &impl ConnectionTrait,
    scope: DealScope,
    f: RepFilter,
    limit: u64,
) -> AppResult<Vec<rep::Model>> {
    Ok(filtered(db, scope, &f)
        .order_by_asc(rep::Column::Name)
        .order_by_asc(rep::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

#[derive(FromQueryResult)]
struct IdRow {
    id: i64,
}

/// The rep and everyone above them.
async fn management_chain(db: &impl ConnectionTrait, id: i64) -> AppResult<Vec<i64>> {
    let mut sql = Sql::new(
        "WITH RECURSIVE up(id, manager_id) AS (SELECT id, manager_id FROM rep WHERE id = ",
    );
    sql.bind(id)
        .push(" UNION SELECT r.id, r.manager_id FROM rep r JOIN up ON r.id = up.manager_id) SELECT id FROM up");
    let rows = IdRow::find_by_statement(sql.statement(db.get_database_backend()))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

pub async fn create(
    db: &DatabaseConnection,
    actor: &Principal,
    input: NewRep,
) -> AppResult<rep::Model> {
    actor.require(ORG_WRITERS)?;
    let name = required_text(&input.name, "name", 200)?;
    let email = normalize_email(&input.email)?;
    let title = optional_text(input.title.as_deref(), "title", 200)?;
    let external_id = optional_text(input.external_id.as_deref(), "externalId", 200)?;
    let ramp_months = ramp(input.ramp_months.unwrap_or(DEFAULT_RAMP_MONTHS))?;
    let rate = match input.commission_rate {
        Some(r) => ratio_to_ppm(r, Decimal::ONE, "commissionRate")?,
        None => DEFAULT_COMMISSION_RATE_PPM,
    };
    let threshold = match input.commission_threshold {
        Some(t) => ratio_to_ppm(t, MAX_THRESHOLD, "commissionThreshold")?,
        None => DEFAULT_COMMISSION_THRESHOLD_PPM,
    };
    let tx = begin_write(db).await?;
    if let Some(t) = input.territory_id {
        referenced::<territory::Entity>(&tx, t, "territoryId").await?;
    }
    if let Some(m) = input.manager_id {
        referenced::<rep::Entity>(&tx, m, "managerId").await?;
    }
    let now = clock::now();
    let model = rep::ActiveModel {
        external_id: Set(external_id),
        name: Set(name),
        email: Set(email),
        title: Set(title),
        territory_id: Set(input.territory_id),
        manager_id: Set(input.manager_id),
        hired_at: Set(input.hired_at.unwrap_or_else(clock::today)),
        active: Set(input.active.unwrap_or(true)),
        ramp_months: Set(ramp_months),
        commission_rate_ppm: Set(rate),
        commission_threshold_ppm: Set(threshold),
        quota_carrying: Set(input.quota_carrying.unwrap_or(true)),
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
        .created("email", &model.email)
        .created("title", &model.title)
        .created("territoryId", &model.territory_id)
        .created("managerId", &model.manager_id)
        .created("hiredAt", &model.hired_at)
        .created("active", &model.active)
        .created("rampMonths", &model.ramp_months)
        .created("commissionRate", &ppm_to_decimal(model.commission_rate_ppm))
        .created(
            "commissionThreshold",
            &ppm_to_decimal(model.commission_threshold_ppm),
        )
        .created("quotaCarrying", &model.quota_carrying);
    audit::record(&tx, &actor.subject, "createRep", "Rep", model.id, &changes).await?;
    tx.commit().await?;
    Ok(model)
}

pub async fn update(
    db: &DatabaseConnection,
    actor: &Principal,
    id: i64,
    patch: RepChanges,
) -> AppResult<rep::Model> {
    actor.require(ORG_WRITERS)?;
    let tx = begin_write(db).await?;
    let current = get(&tx, DealScope::All, id).await?;
    if let Some(t) = patch.territory_id.as_set() {
        referenced::<territory::Entity>(&tx, *t, "territoryId").await?;
    }
    if let Some(m) = patch.manager_id.as_set() {
        referenced::<rep::Entity>(&tx, *m, "managerId").await?;
        if management_chain(&tx, *m).await?.contains(&id) {
            return Err(AppError::bad_input(
                "managerId would make the rep their own manager",
            ));
        }
    }
    let name = match &patch.name {
        Some(n) => required_text(n, "name", 200)?,
        None => current.name.clone(),
    };
    let email = match &patch.email {
        Some(e) => normalize_email(e)?,
        None => current.email.clone(),
    };
    let title = match patch.title {
        Patch::Set(t) => optional_text(Some(&t), "title", 200)?,
        other => other.apply(current.title.clone()),
    };
    let territory_id = patch.territory_id.apply(current.territory_id);
    let manager_id = patch.manager_id.apply(current.manager_id);
    let hired_at = patch.hired_at.unwrap_or(current.hired_at);
    let active = patch.active.unwrap_or(current.active);
    let ramp_months = match patch.ramp_months {
        Some(r) => ramp(r)?,
        None => current.ramp_months,
    };
    let rate = match patch.commission_rate {
        Some(r) => ratio_to_ppm(r, Decimal::ONE, "commissionRate")?,
        None => current.commission_rate_ppm,
    };
    let threshold = match patch.commission_threshold {
        Some(t) => ratio_to_ppm(t, MAX_THRESHOLD, "commissionThreshold")?,
        None => current.commission_threshold_ppm,
    };
    let quota_carrying = patch.quota_carrying.unwrap_or(current.quota_carrying);
    let mut changes = Changes::new();
    changes
        .field("name", &current.name, &name)
        .field("email", &current.email, &email)
        .field("title", &current.title, &title)
        .field("territoryId", &current.territory_id, &territory_id)
        .field("managerId", &current.manager_id, &manager_id)
        .field("hiredAt", &current.hired_at, &hired_at)
        .field("active", &current.active, &active)
        .field("rampMonths", &current.ramp_months, &ramp_months)
        .field(
            "commissionRate",
            &ppm_to_decimal(current.commission_rate_ppm),
            &ppm_to_decimal(rate),
        )
        .field(
            "commissionThreshold",
            &ppm_to_decimal(current.commission_threshold_ppm),
            &ppm_to_decimal(threshold),
        )
        .field("quotaCarrying", &current.quota_carrying, &quota_carrying);
    if changes.is_empty() {
        return Ok(current);
    }
    let mut am: rep::ActiveModel = current.into();
    am.name = Set(name);
    am.email = Set(email);
    am.title = Set(title);
    am.territory_id = Set(territory_id);
    am.manager_id = Set(manager_id);
    am.hired_at = Set(hired_at);
    am.active = Set(active);
    am.ramp_months = Set(ramp_months);
    am.commission_rate_ppm = Set(rate);
    am.commission_threshold_ppm = Set(threshold);
    am.quota_carrying = Set(quota_carrying);
    am.updated_at = Set(clock::now());
    let model = am.update(&tx).await?;
    audit::record(&tx, &actor.subject, "updateRep", "Rep", id, &changes).await?;
    tx.commit().await?;
    Ok(model)
}

/// True when `rep_id` is the principal's own rep or (for a manager) below them.
pub async fn in_scope(db: &impl ConnectionTrait, scope: DealScope, rep_id: i64) -> AppResult<bool> {
    Ok(in_scope_many(db, scope, &[rep_id]).await?.contains(&rep_id))
}

/// The reps among `ids` that are in the scope: one query for a manager's
/// team (the recursive team walk), none otherwise.
pub async fn in_scope_many(
    db: &impl ConnectionTrait,
    scope: DealScope,
    ids: &[i64],
) -> AppResult<HashSet<i64>> {
    let (known, unknown): (Vec<i64>, Vec<i64>) =
        ids.iter().partition(|id| scope.has_rep(**id).is_some());
    let mut found: HashSet<i64> = known
        .into_iter()
        .filter(|id| scope.has_rep(*id) == Some(true))
        .collect();
    if !unknown.is_empty() {
        let mut sql = Sql::new("SELECT id FROM rep WHERE id IN ");
        sql.bind_list(unknown).push(" AND ");
        let (cond, values) = scope.rep_sql("id");
        sql.push_with(&cond, values);
        let rows = IdRow::find_by_statement(sql.statement(db.get_database_backend()))
            .all(db)
            .await?;
        found.extend(rows.into_iter().map(|r| r.id));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(
            normalize_email(" Ana@Example.COM ").unwrap(),
            "ana@example.com"
        );
        for bad in [
            "",
            "ana",
            "ana@",
            "@x.com",
            "a b@x.com",
            "ana@x",
            "ana@@x.com",
            "ana@.com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }
}
