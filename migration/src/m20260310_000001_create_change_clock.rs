use sea_orm_migration::{prelude::*, schema::*};

/// The one-row clock that stamps every deal write (see api service::sync):
/// taking its row lock serializes deal writers, so `deal.updated_at` grows in
/// commit order and the incremental sync feed never skips a change.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ChangeClock::Table)
                .if_not_exists()
                .col(integer(ChangeClock::Id).primary_key())
                .col(big_integer(ChangeClock::LastUs).default(0))
                .to_owned(),
        )
        .await?;
        m.exec_stmt(
            Query::insert()
                .into_table(ChangeClock::Table)
                .columns([ChangeClock::Id, ChangeClock::LastUs])
                .values_panic([1.into(), 0i64.into()])
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(ChangeClock::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum ChangeClock {
    Table,
    Id,
    /// The last stamp handed out, in microseconds since the Unix epoch.
    LastUs,
}
