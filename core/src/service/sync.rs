//! The change clock behind the incremental sync feed.
//!
//! `deals(filter: {updatedSince}, orderBy: UPDATED_ASC)` pages on the keyset
//! `(updated_at, id)`. That is only exactly-once if no transaction can commit
//! a row *behind* a reader that has already passed its key: with stamps taken
//! from the wall clock, a transaction stamped at t1 but committed after
//! another one stamped t2 > t1 (and already read) would be skipped forever.
//!
//! So every transaction that writes deals calls [`stamp`] before its first
//! write to the `deal` table and uses the returned instant as the
//! `updated_at` of every deal it writes. `stamp` is one statement,
//! `UPDATE change_clock SET last_us = max(last_us + 1, now) ... RETURNING`,
//! on a single row:
//!
//! - PostgreSQL: the UPDATE takes that row's lock and keeps it until the
//!   transaction ends, so deal writers hold the clock one at a time, from
//!   their stamp to their commit. The next writer gets the row only after the
//!   previous one committed (and became visible), and its stamp is strictly
//!   greater.
//! - SQLite: [`crate::db::begin_write`] takes the database write lock at
//!   BEGIN, so writers are already serial; the clock only makes the stamps
//!   strictly increasing even if the wall clock steps back.
//!
//! Hence, on both: stamps increase strictly in commit order, and any snapshot
//! a reader takes contains exactly the transactions up to some point of that
//! order. A page read after key K has seen every committed row with a key
//! <= K, and every row committed later carries a larger stamp, so it sorts
//! after K and is read on a later page: each written version of a deal is
//! returned once (a deal updated twice between two reads is returned once,
//! at its latest version). Rows written by one transaction share a stamp and
//! are ordered by id, which the cursor carries.
//!
//! The price is that deal writes are serialized from their stamp to their
//! commit, which is why writers stamp as late as possible (after validation)
//! and bulk writes take the clock once per batch.
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseTransaction, FromQueryResult};

use crate::clock;
use crate::db::{Dialect, Sql};
use crate::error::{AppError, AppResult};

#[derive(FromQueryResult)]
struct Stamp {
    last_us: i64,
}

/// The `updated_at` for every deal this transaction writes: after every
/// stamp handed out before, normally the current time. Holds the clock until
/// the transaction ends.
pub async fn stamp(tx: &DatabaseTransaction) -> AppResult<DateTime<Utc>> {
    let now_us = clock::now().timestamp_micros();
    let greatest = match Dialect::of(tx) {
        Dialect::Sqlite => "MAX",
        Dialect::Postgres => "GREATEST",
    };
    let mut sql = Sql::new(format!(
        "UPDATE change_clock SET last_us = {greatest}(last_us + 1, "
    ));
    sql.bind(now_us).push(") WHERE id = 1 RETURNING last_us");
    let row = Stamp::find_by_statement(sql.statement(tx.get_database_backend()))
        .one(tx)
        .await?
        .ok_or_else(|| AppError::internal("the change clock row is missing"))?;
    DateTime::from_timestamp_micros(row.last_us)
        .ok_or_else(|| AppError::internal("the change clock is out of range"))
}
