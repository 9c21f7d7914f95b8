use sea_orm_migration::{prelude::*, schema::*};

use crate::m20260101_000004_create_stage::Stage;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Playbook::Table)
                .if_not_exists()
                .col(big_pk_auto(Playbook::Id))
                .col(string_len(Playbook::Name, 200))
                .col(text_null(Playbook::Description))
                .col(string_len_null(Playbook::Segment, 16))
                .col(boolean(Playbook::Active).default(true))
                .col(timestamp_with_time_zone(Playbook::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(PlaybookStep::Table)
                .if_not_exists()
                .col(big_pk_auto(PlaybookStep::Id))
                .col(big_integer(PlaybookStep::PlaybookId))
                .col(integer(PlaybookStep::Position))
                .col(string_len(PlaybookStep::Title, 300))
                .col(text_null(PlaybookStep::Guidance))
                .col(big_integer_null(PlaybookStep::StageId))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_playbook_step_playbook")
                        .from(PlaybookStep::Table, PlaybookStep::PlaybookId)
                        .to(Playbook::Table, Playbook::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_playbook_step_stage")
                        .from(PlaybookStep::Table, PlaybookStep::StageId)
                        .to(Stage::Table, Stage::Id)
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("uq_playbook_step_position")
                .table(PlaybookStep::Table)
                .col(PlaybookStep::PlaybookId)
                .col(PlaybookStep::Position)
                .unique()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(PlaybookStep::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(Playbook::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum Playbook {
    Table,
    Id,
    Name,
    Description,
    Segment,
    Active,
    CreatedAt,
}

#[derive(DeriveIden)]
pub enum PlaybookStep {
    Table,
    Id,
    PlaybookId,
    Position,
    Title,
    Guidance,
    StageId,
}
