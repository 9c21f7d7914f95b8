//! Writes a generated organisation with batched multi-row INSERTs (explicit
//! ids, so child rows can reference parents without a round trip per row).
use std::collections::HashMap;

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbErr, FromQueryResult, TransactionTrait, Value,
};

use super::generator::Org;
use crate::clock;
use crate::db::{Dialect, Sql};
use crate::error::{AppError, AppResult};

/// Rows per INSERT: under SQLite's 32,766 and PostgreSQL's 65,535 bound
/// parameters for the widest table.
const MAX_PARAMS: usize = 30_000;

/// Writes rows: COPY on PostgreSQL (the fastest bulk path), multi-row
/// INSERTs on SQLite.
async fn insert_rows(
    db: &DatabaseConnection,
    table: &str,
    columns: &[&str],
    rows: impl Iterator<Item = Vec<Value>>,
) -> Result<(), DbErr> {
    let started = std::time::Instant::now();
    let result = write_rows(db, table, columns, rows).await;
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
    let per_batch = (MAX_PARAMS / columns.len()).max(1);
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

pub async fn write(db: &DatabaseConnection, org: &Org, currency: &str) -> AppResult<()> {
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
    let v = |x: &str| Value::from(x.to_owned());

    insert_rows(
        db,
        "territory",
        &[
            "id",
            "name",
            "segment",
            "region",
            "parent_id",
            "created_at",
            "updated_at",
        ],
        org.territories.iter().map(|t| {
            vec![
                t.id.into(),
                v(&t.name),
                t.segment.map(|s| s.db().to_owned()).into(),
                v(&t.region),
                t.parent_id.into(),
                now.into(),
                now.into(),
            ]
        }),
    )
    .await?;
    // Managers come before their reports, so one pass satisfies the foreign key.
    insert_rows(
        db,
        "rep",
        &[
            "id",
            "name",
            "email",
            "title",
            "territory_id",
            "manager_id",
            "hired_at",
            "active",
            "ramp_months",
            "commission_rate_ppm",
            "commission_threshold_ppm",
            "created_at",
            "updated_at",
        ],
        org.reps.iter().map(|r| {
            vec![
                r.id.into(),
                v(&r.name),
                v(&r.email),
                v(&r.title),
                r.territory_id.into(),
                r.manager_id.into(),
                r.hired_at.into(),
                r.active.into(),
                r.ramp_months.into(),
                r.commission_rate_ppm.into(),
                1_000_000i64.into(),
                now.into(),
                now.into(),
            ]
        }),
    )
    .await?;
    insert_rows(
        db,
        "account",
        &[
            "id",
            "name",
            "industry",
            "segment",
            "territory_id",
            "created_at",
            "updated_at",
        ],
        org.accounts.iter().map(|a| {
            vec![
                a.id.into(),
                v(&a.name),
                v(&a.industry),
                v(a.segment.db()),
                a.territory_id.into(),
                now.into(),
                now.into(),
            ]
        }),
    )
    .await?;
    insert_rows(
        db,
        "playbook",
        &[
            "id",
            "name",
            "description",
            "segment",
            "active",
            "created_at",
        ],
        org.playbooks.iter().map(|p| {
            vec![
                p.id.into(),
                v(&p.name),
                v(&p.description),
                v(p.segment.db()),
                true.into(),
                now.into(),
            ]
        }),
    )
    .await?;
    insert_rows(
        db,
        "playbook_step",
        &["playbook_id", "position", "title", "guidance", "stage_id"],
        org.playbooks.iter().flat_map(|p| {
            let stage = &stage;
            p.steps
                .iter()
                .enumerate()
                .map(move |(i, (title, guidance, pos))| {
                    vec![
                        p.id.into(),
                        (i as i32 + 1).into(),
                        v(title),
                        v(guidance),
                        stage.get(pos).copied().into(),
                    ]
                })
        }),
    )
    .await?;
    let currency = Value::from(currency.to_owned());
    // Bulk load: PostgreSQL builds indexes and checks foreign keys far
    // faster once over the loaded table than row by row.
    let deferred = BulkLoad::begin(db, &["deal", "deal_stage_change"]).await?;
    insert_rows(
        db,
        "deal",
        &[
            "id",
            "name",
            "amount_cents",
            "currency",
            "owner_id",
            "account_id",
            "territory_id",
            "stage_id",
            "status",
            "forecast_category",
            "source",
            "playbook_id",
            "opened_at",
            "expected_close_date",
            "closed_at",
            "lost_reason",
            "version",
            "created_at",
            "updated_at",
        ],
        org.deals.iter().map(|d| {
            let status = match d.stage {
                6 => "WON",
                7 => "LOST",
                _ => "OPEN",
            };
            vec![
                d.id.into(),
                v(&d.name),
                d.amount_cents.into(),
                currency.clone(),
                d.owner_id.into(),
                Some(d.account_id).into(),
                Some(d.territory_id).into(),
                stage[&d.stage].into(),
                v(status),
                v(d.forecast_category),
                Some(d.source.to_owned()).into(),
                d.playbook_id.into(),
                d.opened_at.into(),
                d.expected_close_date.into(),
                d.closed_at.into(),
                d.lost_reason.map(str::to_owned).into(),
                (d.history.len() as i32).into(),
                d.opened_at.into(),
                d.updated_at.into(),
            ]
        }),
    )
    .await?;
    let seed_actor = Value::from(Some("seed".to_owned()));
    insert_rows(
        db,
        "deal_stage_change",
        &[
            "deal_id",
            "from_stage_id",
            "to_stage_id",
            "changed_at",
            "actor",
        ],
        org.deals.iter().flat_map(|d| {
            let stage = &stage;
            let actor = seed_actor.clone();
            d.history.iter().map(move |(from, to, at)| {
                vec![
                    d.id.into(),
                    from.map(|f| stage[&f]).into(),
                    stage[to].into(),
                    (*at).into(),
                    actor.clone(),
                ]
            })
        }),
    )
    .await?;
    insert_rows(
        db,
        "quota",
        &[
            "rep_id",
            "start_date",
            "end_date",
            "amount_cents",
            "created_at",
            "updated_at",
        ],
        org.quotas.iter().map(|q| {
            vec![
                q.rep_id.into(),
                q.start.into(),
                q.end.into(),
                q.amount_cents.into(),
                now.into(),
                now.into(),
            ]
        }),
    )
    .await?;
    insert_rows(
        db,
        "forecast_submission",
        &[
            "rep_id",
            "period",
            "period_start",
            "period_end",
            "category",
            "amount_cents",
            "submitted_at",
            "submitted_by",
        ],
        org.submissions.iter().map(|s| {
            vec![
                s.rep_id.into(),
                v(&s.period),
                s.start.into(),
                s.end.into(),
                v(s.category),
                s.amount_cents.into(),
                s.submitted_at.into(),
                v("seed"),
            ]
        }),
    )
    .await?;
    deferred.finish(db).await?;
    reset_sequences(db, &["territory", "rep", "account", "playbook", "deal"]).await?;
    Ok(())
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
        db.execute_unprepared("ANALYZE").await?;
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
