//! Bulk writes of rows that carry an id and a version (leads, activities):
//! new rows in one INSERT ... RETURNING id per chunk, changed rows in one
//! version-guarded UPDATE per chunk. Columns, types and values come from
//! the entity (`db::RowShape`), as for every bulk write.
use std::collections::HashSet;

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, FromQueryResult};

use crate::db::{insert_statement, rows_per_statement, rows_relation, ColType, RowShape, Sql};
use crate::error::{AppError, AppResult};

#[derive(FromQueryResult)]
struct IdRow {
    id: i64,
}

/// Inserts `models` (every column but `id`) and returns their new ids in
/// the order given (ids are assigned in row order within a statement).
pub async fn insert<E: EntityTrait>(
    tx: &DatabaseTransaction,
    id: E::Column,
    models: &[E::Model],
    on_error: fn(DbErr) -> AppError,
) -> AppResult<Vec<i64>> {
    let backend = tx.get_database_backend();
    let shape = RowShape::<E>::all_but(&[id]);
    let mut out = Vec::with_capacity(models.len());
    for chunk in models.chunks(rows_per_statement(backend, shape.columns().len())) {
        let stmt = insert_statement(
            backend,
            shape.table(),
            shape.columns(),
            &shape.rows(chunk),
            " RETURNING id",
        );
        let mut ids: Vec<i64> = IdRow::find_by_statement(stmt)
            .all(tx)
            .await
            .map_err(on_error)?
            .into_iter()
            .map(|r| r.id)
            .collect();
        if ids.len() != chunk.len() {
            return Err(AppError::internal(format!(
                "INSERT INTO {} returned fewer rows than it wrote",
                shape.table()
            )));
        }
        ids.sort_unstable();
        out.extend(ids);
    }
    Ok(out)
}

/// Writes each row `(id, version read, row as it is to be)` over the stored
/// one (every column but `skip`) if it is still at the version read; any
/// row that moved meanwhile fails the whole call with CONFLICT.
pub async fn update<E: EntityTrait>(
    tx: &DatabaseTransaction,
    (id, version): (E::Column, E::Column),
    skip: &[E::Column],
    rows: &[(i64, i32, E::Model)],
    on_error: fn(DbErr) -> AppError,
) -> AppResult<()> {
    let backend = tx.get_database_backend();
    let shape = RowShape::<E>::all_but(skip);
    let table = shape.table();
    let guard = [
        ("v_id", ColType::of_column(&id)),
        ("v_version", ColType::of_column(&version)),
    ];
    let columns: Vec<(&str, ColType)> = guard.iter().chain(shape.columns()).copied().collect();
    let set = shape
        .names()
        .iter()
        .map(|c| format!("{c} = v.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    for chunk in rows.chunks(rows_per_statement(backend, columns.len())) {
        let values: Vec<Vec<sea_orm::Value>> = chunk
            .iter()
            .map(|(id, version, row)| {
                let mut v = vec![sea_orm::Value::from(*id), (*version).into()];
                v.extend(shape.values(row));
                v
            })
            .collect();
        let mut sql = Sql::new("WITH ");
        sql.append(&rows_relation(backend, "v", &columns, &values))
            .push(&format!(
                " UPDATE {table} SET {set} FROM v WHERE {table}.id = v.v_id AND {table}.version = v.v_version RETURNING {table}.id AS id"
            ));
        let done: HashSet<i64> = IdRow::find_by_statement(sql.statement(backend))
            .all(tx)
            .await
            .map_err(on_error)?
            .into_iter()
            .map(|r| r.id)
            .collect();
        if chunk.iter().any(|(id, _, _)| !done.contains(id)) {
            return Err(AppError::conflict(format!(
                "the {table} changed while this write was applied: reload it and retry"
            )));
        }
    }
    Ok(())
}
