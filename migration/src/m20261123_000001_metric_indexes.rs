use sea_orm_migration::prelude::*;

/// Indexes for the sales metrics: the funnel reads every stage change from
/// the period start on (across all stages), which the (deal, time) and
/// (stage, time) indexes cannot range-scan.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DealStageChange {
    Table,
    ChangedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name("idx_dsc_changed")
                .table(DealStageChange::Table)
                .col(DealStageChange::ChangedAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("idx_dsc_changed")
                .table(DealStageChange::Table)
                .to_owned(),
        )
        .await
    }
}
