use sea_orm_migration::{prelude::*, schema::*};

use crate::m20260101_000001_create_territory::Territory;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Rep::Table)
                .if_not_exists()
                .col(big_pk_auto(Rep::Id))
                .col(string_len_null(Rep::ExternalId, 200))
                .col(string_len(Rep::Name, 200))
                .col(string_len(Rep::Email, 320))
                .col(string_len_null(Rep::Title, 200))
                .col(big_integer_null(Rep::TerritoryId))
                .col(big_integer_null(Rep::ManagerId))
                .col(date(Rep::HiredAt))
                .col(boolean(Rep::Active).default(true))
                .col(integer(Rep::RampMonths).default(3))
                .col(big_integer(Rep::CommissionRatePpm).default(100_000))
                .col(big_integer(Rep::CommissionThresholdPpm).default(1_000_000))
                .col(timestamp_with_time_zone(Rep::CreatedAt))
                .col(timestamp_with_time_zone(Rep::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_rep_territory")
                        .from(Rep::Table, Rep::TerritoryId)
                        .to(Territory::Table, Territory::Id)
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_rep_manager")
                        .from(Rep::Table, Rep::ManagerId)
                        .to(Rep::Table, Rep::Id)
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .to_owned(),
        )
        .await?;
        for (name, col, unique) in [
            ("uq_rep_email", Rep::Email, true),
            ("uq_rep_external_id", Rep::ExternalId, true),
            ("idx_rep_manager", Rep::ManagerId, false),
            ("idx_rep_territory", Rep::TerritoryId, false),
        ] {
            let mut idx = Index::create();
            idx.name(name).table(Rep::Table).col(col);
            if unique {
                idx.unique();
            }
            m.create_index(idx.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Rep::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum Rep {
    Table,
    Id,
    ExternalId,
    Name,
    Email,
    Title,
    TerritoryId,
    ManagerId,
    HiredAt,
    Active,
    RampMonths,
    CommissionRatePpm,
    CommissionThresholdPpm,
    CreatedAt,
    UpdatedAt,
}
