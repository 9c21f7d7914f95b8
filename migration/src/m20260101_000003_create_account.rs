use sea_orm_migration::{prelude::*, schema::*};

use crate::m20260101_000001_create_territory::Territory;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Account::Table)
                .if_not_exists()
                .col(big_pk_auto(Account::Id))
                .col(string_len_null(Account::ExternalId, 200))
                .col(string_len(Account::Name, 300))
                .col(string_len_null(Account::Industry, 200))
                .col(string_len_null(Account::Segment, 16))
                .col(big_integer_null(Account::TerritoryId))
                .col(timestamp_with_time_zone(Account::CreatedAt))
                .col(timestamp_with_time_zone(Account::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_account_territory")
                        .from(Account::Table, Account::TerritoryId)
                        .to(Territory::Table, Territory::Id)
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("uq_account_external_id")
                .table(Account::Table)
                .col(Account::ExternalId)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_account_name")
                .table(Account::Table)
                .col(Account::Name)
                .col(Account::Id)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_account_territory")
                .table(Account::Table)
                .col(Account::TerritoryId)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Account::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum Account {
    Table,
    Id,
    ExternalId,
    Name,
    Industry,
    Segment,
    TerritoryId,
    CreatedAt,
    UpdatedAt,
}
