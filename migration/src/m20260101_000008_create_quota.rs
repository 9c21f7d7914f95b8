use sea_orm_migration::{prelude::*, schema::*};

use crate::m20260101_000002_create_rep::Rep;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Quota::Table)
                .if_not_exists()
                .col(big_pk_auto(Quota::Id))
                .col(big_integer(Quota::RepId))
                .col(date(Quota::StartDate))
                .col(date(Quota::EndDate))
                .col(big_integer(Quota::AmountCents))
                .col(timestamp_with_time_zone(Quota::CreatedAt))
                .col(timestamp_with_time_zone(Quota::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_quota_rep")
                        .from(Quota::Table, Quota::RepId)
                        .to(Rep::Table, Rep::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("uq_quota_rep_range")
                .table(Quota::Table)
                .col(Quota::RepId)
                .col(Quota::StartDate)
                .col(Quota::EndDate)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_quota_range")
                .table(Quota::Table)
                .col(Quota::StartDate)
                .col(Quota::EndDate)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Quota::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum Quota {
    Table,
    Id,
    RepId,
    StartDate,
    EndDate,
    AmountCents,
    CreatedAt,
    UpdatedAt,
}
