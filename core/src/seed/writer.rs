//! Writes a generated organisation with batched multi-row INSERTs (explicit
//! ids, so child rows can reference parents without a round trip per row).
use std::collections::HashMap;

use chrono::{DateTime, Utc};

use sea_orm::{
    ActiveEnum, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, FromQueryResult,
    TransactionTrait, Value,
};

use entity::enums::{
    DealSource, DealStatus, ForecastCategory, Segment, SubmissionKind, SubmissionScope,
};
use entity::{
    account, deal, deal_revision, deal_stage_change, forecast_submission, playbook, playbook_step,
    quota, rep, territory,
};

use super::generator::{self, Edit, Org, Seg};
use crate::clock;
use crate::db::{rows_per_statement, Dialect, RowShape, Sql};
use crate::error::{AppError, AppResult};

/// Writes whole models of `E` (every column but `skip`): COPY on
/// PostgreSQL (the fastest bulk path), multi-row INSERTs on SQLite.
async fn insert_rows<E: EntityTrait>(
    db: &DatabaseConnection,
    skip: &[E::Column],
    models: impl Iterator<Item = E::Model>,
) -> Result<(), DbErr> {
    let started = std::time::Instant::now();
    let shape = RowShape::<E>::all_but(skip);
    let rows = models.map(|m| shape.values(&m));
    let table = shape.table();
    let result = write_rows(db, table, &shape.names(), rows).await;
    tracing::info!(table, seconds = started.elapsed().as_secs_f64(), "seeded");
    result
}

async fn write_rows(
    db: &DatabaseConnection,
    table: &str,
    columns: &[&str],
    rows: impl Iterator<Item = Vec<Value>>,
) -> Result<(), DbErr> {
    if db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        return copy_rows(db, table, columns, rows).await;
    }
    let per_batch = rows_per_statement(db.get_database_backend(), columns.len());
    let head = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    let mut sql = Sql::new(head.clone());
    let mut n = 0;
    for row in rows {
        if n > 0 {
            sql.push(", ");
        }
        sql.bind_list(row);
        n += 1;
        if n == per_batch {
            db.execute_raw(sql.statement(db.get_database_backend()))
                .await?;
            sql = Sql::new(head.clone());
            n = 0;
        }
    }
    if n > 0 {
        db.execute_raw(sql.statement(db.get_database_backend()))
            .await?;
    }
    Ok(())
}

/// COPY ... FROM STDIN in CSV, streamed in chunks of about 1 MiB.
async fn copy_rows(
    db: &DatabaseConnection,
    table: &str,
    columns: &[&str],
    rows: impl Iterator<Item = Vec<Value>>,
) -> Result<(), DbErr> {
    use sea_orm::sqlx::postgres::PgPoolCopyExt;
    let err = |e: sea_orm::sqlx::Error| DbErr::Custom(format!("COPY {table}: {e}"));
    let pool = db.get_postgres_connection_pool();
    let statement = format!(
        "COPY {table} ({}) FROM STDIN WITH (FORMAT csv)",
        columns.join(", ")
    );
    let mut copy = pool.copy_in_raw(&statement).await.map_err(err)?;
    let mut buf = String::with_capacity(1 << 21);
    for row in rows {
        for (i, v) in row.iter().enumerate() {
            if i > 0 {
                buf.push(',');
            }
            csv_field(&mut buf, v);
        }
        buf.push('\n');
        if buf.len() >= 1 << 20 {
            copy.send(buf.as_bytes()).await.map_err(err)?;
            buf.clear();
        }
    }
    if !buf.is_empty() {
        copy.send(buf.as_bytes()).await.map_err(err)?;
    }
    copy.finish().await.map_err(err)?;
    Ok(())
}

/// One CSV field in PostgreSQL's COPY format: an unquoted empty field is
/// NULL, text is always quoted.
fn csv_field(out: &mut String, v: &Value) {
    use std::fmt::Write;
    match v {
        Value::Bool(Some(b)) => out.push_str(if *b { "t" } else { "f" }),
        Value::Int(Some(n)) => {
            let _ = write!(out, "{n}");
        }
        Value::BigInt(Some(n)) => {
            let _ = write!(out, "{n}");
        }
        Value::Double(Some(x)) => {
            let _ = write!(out, "{x}");
        }
        Value::String(Some(s)) => {
            out.push('"');
            out.push_str(&s.replace('"', "\"\""));
            out.push('"');
        }
        Value::ChronoDate(Some(d)) => {
            let _ = write!(out, "{}", d.format("%Y-%m-%d"));
        }
        Value::ChronoDateTimeUtc(Some(t)) => {
            out.push_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
        }
        // NULL is an unquoted empty field.
        Value::Bool(None)
        | Value::Int(None)
        | Value::BigInt(None)
        | Value::Double(None)
        | Value::String(None)
        | Value::ChronoDate(None)
        | Value::ChronoDateTimeUtc(None) => {}
        other => unreachable!("the seed writes no {other:?} values"),
    }
}

#[derive(FromQueryResult)]
struct StageRow {
    id: i64,
    position: i32,
}

#[derive(FromQueryResult)]
struct Count {
    n: i64,
}

/// True when the database has no reps yet (a fresh install).
pub async fn is_empty(db: &DatabaseConnection) -> AppResult<bool> {
    let row = Count::find_by_statement(
        Sql::new("SELECT COUNT(*) AS n FROM rep").statement(db.get_database_backend()),
    )
    .one(db)
    .await?;
    Ok(row.map(|r| r.n == 0).unwrap_or(true))
}

pub async fn write(
    db: &DatabaseConnection,
    org: &Org,
    currency: &str,
    leads: &super::leads::LeadSeed<'_>,
) -> AppResult<()> {
    if !is_empty(db).await? {
        return Err(AppError::conflict(
            "the database already holds data; seed an empty database",
        ));
    }
    let backend = db.get_database_backend();
    let stages = StageRow::find_by_statement(
        Sql::new("SELECT id, position FROM stage WHERE position BETWEEN 1 AND 7")
            .statement(backend),
    )
    .all(db)
    .await?;
    let stage: HashMap<i32, i64> = stages.into_iter().map(|s| (s.position, s.id)).collect();
    if stage.len() != 7 {
        return Err(AppError::bad_input(
            "seeding needs the seven default stages",
        ));
    }
    let now = clock::now();
    let segment = |s: Seg| Segment::try_from_value(&s.db().to_owned());
    let territories = org
        .territories
        .iter()
        .map(|t| {
            Ok(territory::Model {
                id: t.id,
                name: t.name.clone(),
                segment: t.segment.map(segment).transpose()?,
                region: Some(t.region.clone()),
                parent_id: t.parent_id,
                created_at: now,
                updated_at: now,
            })
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    insert_rows::<territory::Entity>(db, &[], territories.into_iter()).await?;
    // Managers come before their reports, so one pass satisfies the foreign key.
    let reps = org.reps.iter().map(|r| rep::Model {
        id: r.id,
        external_id: None,
        name: r.name.clone(),
        email: r.email.clone(),
        title: Some(r.title.clone()),
        territory_id: r.territory_id,
        manager_id: r.manager_id,
        hired_at: r.hired_at,
        active: r.active,
        ramp_months: r.ramp_months,
        commission_rate_ppm: r.commission_rate_ppm,
        commission_threshold_ppm: 1_000_000,
        created_at: now,
        updated_at: now,
        // Managers who do not sell carry no quota (docs/design.md, Forecast calls).
        quota_carrying: r.seller,
    });
    insert_rows::<rep::Entity>(db, &[], reps).await?;
    let accounts = org
        .accounts
        .iter()
        .map(|a| {
            Ok(account::Model {
                id: a.id,
                external_id: None,
                name: a.name.clone(),
                industry: Some(a.industry.clone()),
                segment: Some(segment(a.segment)?),
                territory_id: Some(a.territory_id),
                created_at: now,
                updated_at: now,
            })
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    insert_rows::<account::Entity>(db, &[], accounts.into_iter()).await?;
    let playbooks = org
        .playbooks
        .iter()
        .map(|p| {
            Ok(playbook::Model {
                id: p.id,
                name: p.name.clone(),
                description: Some(p.description.clone()),
                segment: Some(segment(p.segment)?),
                active: true,
                created_at: now,
            })
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    insert_rows::<playbook::Entity>(db, &[], playbooks.into_iter()).await?;
    let steps = org.playbooks.iter().flat_map(|p| {
        let stage = &stage;
        p.steps
            .iter()
            .enumerate()
            .map(move |(i, (title, guidance, pos))| playbook_step::Model {
                id: 0,
                playbook_id: p.id,
                position: i as i32 + 1,
                title: (*title).to_owned(),
                guidance: Some((*guidance).to_owned()),
                stage_id: stage.get(pos).copied(),
            })
    });
    insert_rows::<playbook_step::Entity>(db, &[playbook_step::Column::Id], steps).await?;
    // The generator names enums by their stored words; parsed once each.
    let forecast_category = |s: &str| ForecastCategory::try_from_value(&s.to_owned());
    let source = |s: &str| DealSource::try_from_value(&s.to_owned());
    let deals = org
        .deals
        .iter()
        .enumerate()
        .map(|(j, d)| {
            Ok(deal::Model {
                id: d.id,
                external_id: None,
                name: d.name.clone(),
                amount_cents: d.amount_cents,
                currency: currency.to_owned(),
                owner_id: d.owner_id,
                account_id: Some(d.account_id),
                territory_id: Some(d.territory_id),
                stage_id: stage[&d.stage],
                status: match d.stage {
                    6 => DealStatus::Won,
                    7 => DealStatus::Lost,
                    _ => DealStatus::Open,
                },
                forecast_category: forecast_category(d.forecast_category)?,
                source: Some(source(d.source)?),
                playbook_id: d.playbook_id,
                opened_at: d.opened_at,
                expected_close_date: d.expected_close_date,
                closed_at: d.closed_at,
                lost_reason: d.lost_reason.map(str::to_owned),
                version: (d.history.len() + d.edits.len()) as i32,
                valid_from: d.updated_at,
                push_count: d
                    .edits
                    .iter()
                    .filter(|e| matches!(e, Edit::CloseDate { .. }))
                    .count() as i32,
                // The risk facts the writers keep (see `deal_write`): the
                // amount before the first amount edit, the last push, the
                // latest entry into the final stage, the latest activity
                // of the ones `write_leads` logs on this deal.
                first_amount_cents: Some(
                    d.edits
                        .iter()
                        .find_map(|e| match e {
                            Edit::Amount { before_cents, .. } => Some(*before_cents),
                            _ => None,
                        })
                        .unwrap_or(d.amount_cents),
                ),
                pushed_at: d
                    .edits
                    .iter()
                    .filter(|e| matches!(e, Edit::CloseDate { .. }))
                    .map(Edit::at)
                    .max(),
                stage_entered_at: d
                    .history
                    .iter()
                    .filter(|(_, to, _)| *to == d.stage)
                    .map(|(_, _, at)| *at)
                    .max(),
                last_activity_at: leads.deal_activities(j).iter().map(|a| a.at).max(),
                created_at: d.opened_at,
                updated_at: d.updated_at,
            })
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    // Bulk load: PostgreSQL builds indexes and checks foreign keys far
    // faster once over the loaded table than row by row.
    let deferred = BulkLoad::begin(db, &["deal", "deal_stage_change", "deal_revision"]).await?;
    let revisions = deals
        .iter()
        .zip(&org.deals)
        .flat_map(|(row, d)| revisions_of(row, d, &stage, forecast_category))
        .collect::<Result<Vec<_>, DbErr>>()?;
    insert_rows::<deal::Entity>(db, &[], deals.into_iter()).await?;
    insert_rows::<deal_revision::Entity>(db, &[deal_revision::Column::Id], revisions.into_iter())
        .await?;
    let changes = org.deals.iter().flat_map(|d| {
        let stage = &stage;
        d.history
            .iter()
            .map(move |(from, to, at)| deal_stage_change::Model {
                id: 0,
                deal_id: d.id,
                from_stage_id: from.map(|f| stage[&f]),
                to_stage_id: stage[to],
                changed_at: *at,
                actor: Some("seed".to_owned()),
            })
    });
    insert_rows::<deal_stage_change::Entity>(db, &[deal_stage_change::Column::Id], changes).await?;
    let quotas = org.quotas.iter().map(|q| quota::Model {
        id: 0,
        rep_id: q.rep_id,
        start_date: q.start,
        end_date: q.end,
        amount_cents: q.amount_cents,
        created_at: now,
        updated_at: now,
    });
    insert_rows::<quota::Entity>(db, &[quota::Column::Id], quotas).await?;
    let submissions = org
        .submissions
        .iter()
        .map(|s| {
            Ok(forecast_submission::Model {
                id: 0,
                rep_id: s.rep_id,
                period: s.period.clone(),
                period_start: s.start,
                period_end: s.end,
                category: forecast_category(s.category)?,
                amount_cents: s.amount_cents,
                note: None,
                submitted_at: s.submitted_at,
                submitted_by: "seed".to_owned(),
                kind: SubmissionKind::Call,
                scope: SubmissionScope::Personal,
            })
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    insert_rows::<forecast_submission::Entity>(
        db,
        &[forecast_submission::Column::Id],
        submissions.into_iter(),
    )
    .await?;
    deferred.finish(db).await?;
    reset_sequences(db, &["territory", "rep", "account", "playbook", "deal"]).await?;
    Ok(())
}

/// A seeded deal's revisions: one per stage change and per edit, in time
/// order (a stage change first at equal times), each with the deal's fields
/// after it; the last one is the deal as written.
fn revisions_of(
    row: &deal::Model,
    d: &generator::Deal,
    stage: &HashMap<i32, i64>,
    category: impl Fn(&str) -> Result<ForecastCategory, DbErr>,
) -> Vec<Result<deal_revision::Model, DbErr>> {
    // Fields before the first edit: each edit records the value before it.
    let mut amount = d
        .edits
        .iter()
        .find_map(|e| match e {
            Edit::Amount { before_cents, .. } => Some(*before_cents),
            _ => None,
        })
        .unwrap_or(row.amount_cents);
    let mut close = d
        .edits
        .iter()
        .find_map(|e| match e {
            Edit::CloseDate { before, .. } => Some(*before),
            _ => None,
        })
        .or(row.expected_close_date);
    enum Ev<'a> {
        Stage(i32, DateTime<Utc>),
        Edit(&'a Edit),
    }
    let mut events: Vec<(DateTime<Utc>, u8, Ev)> = d
        .history
        .iter()
        .map(|(_, to, at)| (*at, 0, Ev::Stage(*to, *at)))
        .chain(d.edits.iter().map(|e| (e.at(), 1, Ev::Edit(e))))
        .collect();
    events.sort_by_key(|(at, order, _)| (*at, *order));
    let (mut position, mut closed_at, mut pushes) = (1, None, 0);
    let mut edits = d.edits.iter().peekable();
    events
        .into_iter()
        .enumerate()
        .map(|(i, (at, _, ev))| {
            match ev {
                Ev::Stage(to, t) => {
                    position = to;
                    closed_at = (to >= 6).then_some(t);
                }
                Ev::Edit(e) => {
                    // The value after this edit: the next edit's "before" of
                    // the same field, else the final one.
                    edits.next();
                    match e {
                        Edit::Amount { .. } => {
                            amount = edits
                                .clone()
                                .find_map(|n| match n {
                                    Edit::Amount { before_cents, .. } => Some(*before_cents),
                                    _ => None,
                                })
                                .unwrap_or(row.amount_cents)
                        }
                        Edit::CloseDate { .. } => {
                            pushes += 1;
                            close = edits
                                .clone()
                                .find_map(|n| match n {
                                    Edit::CloseDate { before, .. } => Some(*before),
                                    _ => None,
                                })
                                .or(row.expected_close_date)
                        }
                    }
                }
            }
            Ok(deal_revision::Model {
                id: 0,
                deal_id: row.id,
                version: i as i32 + 1,
                valid_from: at,
                recorded_at: at,
                actor: "seed".to_owned(),
                name: row.name.clone(),
                amount_cents: amount,
                owner_id: row.owner_id,
                account_id: row.account_id,
                territory_id: row.territory_id,
                stage_id: stage[&position],
                status: match position {
                    6 => DealStatus::Won,
                    7 => DealStatus::Lost,
                    _ => DealStatus::Open,
                },
                forecast_category: category(generator::category_of(position))?,
                source: row.source,
                playbook_id: row.playbook_id,
                expected_close_date: close,
                closed_at,
                lost_reason: (position == 7).then(|| row.lost_reason.clone()).flatten(),
                push_count: pushes,
            })
        })
        .collect()
}

/// The secondary indexes and foreign keys of tables being bulk loaded,
/// dropped before the load and recreated (from their own definitions in the
/// catalog) after it. A no-op on SQLite.
struct BulkLoad {
    indexes: Vec<String>,
    foreign_keys: Vec<(String, String, String)>,
}

#[derive(FromQueryResult)]
struct IndexDef {
    name: String,
    def: String,
}

#[derive(FromQueryResult)]
struct ForeignKeyDef {
    tbl: String,
    name: String,
    def: String,
}

impl BulkLoad {
    async fn begin(db: &DatabaseConnection, tables: &[&str]) -> Result<Self, DbErr> {
        let mut load = Self {
            indexes: Vec::new(),
            foreign_keys: Vec::new(),
        };
        if Dialect::of(db) != Dialect::Postgres {
            return Ok(load);
        }
        let backend = db.get_database_backend();
        let mut fk = Sql::new(
            "SELECT c.conrelid::regclass::text AS tbl, c.conname AS name, pg_get_constraintdef(c.oid) AS def \
             FROM pg_constraint c WHERE c.contype = 'f' AND c.conrelid::regclass::text IN ",
        );
        fk.bind_list(tables.iter().map(|t| t.to_string()));
        for f in ForeignKeyDef::find_by_statement(fk.statement(backend))
            .all(db)
            .await?
        {
            db.execute_unprepared(&format!("ALTER TABLE {} DROP CONSTRAINT {}", f.tbl, f.name))
                .await?;
            load.foreign_keys.push((f.tbl, f.name, f.def));
        }
        let mut ix = Sql::new(
            "SELECT indexname AS name, indexdef AS def FROM pg_indexes \
             WHERE schemaname = current_schema() AND indexname NOT LIKE '%\\_pkey' AND tablename IN ",
        );
        ix.bind_list(tables.iter().map(|t| t.to_string()));
        for i in IndexDef::find_by_statement(ix.statement(backend))
            .all(db)
            .await?
        {
            db.execute_unprepared(&format!("DROP INDEX {}", i.name))
                .await?;
            load.indexes.push(i.def);
        }
        Ok(load)
    }

    async fn finish(self, db: &DatabaseConnection) -> Result<(), DbErr> {
        if self.indexes.is_empty() && self.foreign_keys.is_empty() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let tx = db.begin().await?;
        tx.execute_unprepared("SET LOCAL maintenance_work_mem = '256MB'")
            .await?;
        for def in &self.indexes {
            tx.execute_unprepared(def).await?;
        }
        for (table, name, def) in &self.foreign_keys {
            tx.execute_unprepared(&format!("ALTER TABLE {table} ADD CONSTRAINT {name} {def}"))
                .await?;
        }
        tx.commit().await?;
        tracing::info!(
            seconds = started.elapsed().as_secs_f64(),
            "indexes and foreign keys rebuilt"
        );
        // PostgreSQL only (SQLite never dropped its indexes): statistics
        // for the planner, and the visibility map and dead rows the seed's
        // own updates (leads, stages) left, as autovacuum would leave them.
        db.execute_unprepared("VACUUM (ANALYZE)").await?;
        Ok(())
    }
}

/// After explicit ids, PostgreSQL's sequences must move past them (SQLite
/// tracks AUTOINCREMENT itself).
async fn reset_sequences(db: &impl ConnectionTrait, tables: &[&str]) -> Result<(), DbErr> {
    if Dialect::of(db) == Dialect::Postgres {
        for t in tables {
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence('{t}', 'id'), GREATEST((SELECT MAX(id) FROM {t}), 1))"
            );
            db.execute_unprepared(&sql).await?;
        }
    }
    Ok(())
}

/// Writes the organisation's leads, their status moves and activities (see
/// `seed::leads`), the demo's lead-scoring rules, and scores every lead.
pub async fn write_leads(
    db: &DatabaseConnection,
    org: &Org,
    plan: &super::leads::LeadSeed<'_>,
) -> AppResult<(usize, usize)> {
    use super::leads::DEMO_RULES;
    use entity::{activity, lead, lead_scoring_rule, lead_status_change};
    let now = clock::now();
    let n = plan.leads();
    let deferred = BulkLoad::begin(db, &["lead", "lead_status_change", "activity"]).await?;
    insert_rows::<lead::Entity>(db, &[], (0..n).map(|k| plan.lead(k).lead)).await?;
    insert_rows::<lead_status_change::Entity>(
        db,
        &[lead_status_change::Column::Id],
        (0..n).flat_map(|k| plan.lead(k).moves),
    )
    .await?;
    let activities = std::cell::Cell::new(0usize);
    let count = |a: activity::Model| {
        activities.set(activities.get() + 1);
        a
    };
    insert_rows::<activity::Entity>(
        db,
        &[activity::Column::Id],
        (0..n)
            .flat_map(|k| plan.lead(k).activities)
            .chain((0..org.deals.len()).flat_map(|j| plan.deal_activities(j)))
            .map(count),
    )
    .await?;
    deferred.finish(db).await?;
    reset_sequences(db, &["lead"]).await?;
    let rules = DEMO_RULES
        .iter()
        .enumerate()
        .map(
            |(i, (field, operator, value, points))| lead_scoring_rule::Model {
                id: 0,
                position: i as i32,
                field: (*field).to_owned(),
                operator: (*operator).to_owned(),
                value: (*value).to_owned(),
                points: *points,
                created_at: now,
                created_by: "seed".to_owned(),
                retired_at: None,
            },
        );
    insert_rows::<lead_scoring_rule::Entity>(db, &[lead_scoring_rule::Column::Id], rules).await?;
    let started = std::time::Instant::now();
    crate::service::lead_scoring::score(db, crate::service::lead_scoring::Which::All).await?;
    tracing::info!(seconds = started.elapsed().as_secs_f64(), "leads scored");
    Ok((n, activities.get()))
}
