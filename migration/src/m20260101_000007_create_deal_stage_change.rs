use sea_orm_migration::{prelude::*, schema::*};

use crate::m20260101_000004_create_stage::Stage;
use crate::m20260101_000006_create_deal::Deal;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(DealStageChange::Table)
                .if_not_exists()
                .col(big_pk_auto(DealStageChange::Id))
                .col(big_integer(DealStageChange::DealId))
                .col(big_integer_null(DealStageChange::FromStageId))
                .col(big_integer(DealStageChange::ToStageId))
                .col(timestamp_with_time_zone(DealStageChange::ChangedAt))
                .col(string_len_null(DealStageChange::Actor, 200))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_dsc_deal")
                        .from(DealStageChange::Table, DealStageChange::DealId)
                        .to(Deal::Table, Deal::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_dsc_from_stage")
                        .from(DealStageChange::Table, DealStageChange::FromStageId)
                        .to(Stage::Table, Stage::Id)
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_dsc_to_stage")
                        .from(DealStageChange::Table, DealStageChange::ToStageId)
                        .to(Stage::Table, Stage::Id)
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .to_owned(),
        )
        .await?;
        // History of one deal in order (as-of reconstruction), and entries
        // into a stage by time (the funnel).
        m.create_index(
            Index::create()
                .name("idx_dsc_deal_changed")
                .table(DealStageChange::Table)
                .col(DealStageChange::DealId)
                .col(DealStageChange::ChangedAt)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_dsc_to_stage_changed")
                .table(DealStageChange::Table)
                .col(DealStageChange::ToStageId)
                .col(DealStageChange::ChangedAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(DealStageChange::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum DealStageChange {
    Table,
    Id,
    DealId,
    FromStageId,
    ToStageId,
    ChangedAt,
    Actor,
}
