use sea_orm_migration::prelude::*;

use crate::rollup_sql;

/// Exact monthly rollups of the deals (docs/design.md, Rollups): the cells
/// `deal_rollup`, the deltas the deal triggers append to
/// `deal_rollup_delta`, the triggers, and the cells of the deals already
/// there.
#[derive(DeriveMigrationName)]
pub struct Migration;

/// Both tables have the cell's columns; the delta table keys rows by an id
/// (a cell appears there once per change) and the cell table by the cell.
fn cell_columns(t: &mut TableCreateStatement) {
    t.col(ColumnDef::new(Alias::new("month")).date().not_null());
    for k in ["owner_id", "territory_id", "stage_id"] {
        t.col(ColumnDef::new(Alias::new(k)).big_integer().not_null());
    }
    for m in rollup_sql::MEASURES {
        t.col(
            ColumnDef::new(Alias::new(m))
                .big_integer()
                .not_null()
                .default(0),
        );
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let mut cells = Table::create();
        cells.table(Alias::new("deal_rollup"));
        cell_columns(&mut cells);
        let mut pk = Index::create();
        for k in rollup_sql::KEY {
            pk.col(Alias::new(k));
        }
        cells.primary_key(&mut pk);
        m.create_table(cells.to_owned()).await?;

        let mut delta = Table::create();
        delta.table(Alias::new("deal_rollup_delta")).col(
            ColumnDef::new(Alias::new("id"))
                .big_integer()
                .not_null()
                .auto_increment()
                .primary_key(),
        );
        cell_columns(&mut delta);
        m.create_table(delta.to_owned()).await?;

        let b = m.get_database_backend();
        let db = m.get_connection();
        db.execute_unprepared(&rollup_sql::fill(b)).await?;
        for s in rollup_sql::triggers(b) {
            db.execute_unprepared(&s).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let b = m.get_database_backend();
        for s in rollup_sql::drop_triggers(b) {
            m.get_connection().execute_unprepared(&s).await?;
        }
        for t in ["deal_rollup_delta", "deal_rollup"] {
            m.drop_table(Table::drop().table(Alias::new(t)).to_owned())
                .await?;
        }
        Ok(())
    }
}
