use sea_orm_migration::{prelude::*, schema::*};

use crate::m20260101_000001_create_territory::Territory;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(SopPlan::Table)
                .if_not_exists()
                .col(big_pk_auto(SopPlan::Id))
                .col(string_len(SopPlan::Name, 300))
                .col(date(SopPlan::HorizonStart))
                .col(integer(SopPlan::HorizonMonths))
                .col(integer(SopPlan::LookbackMonths))
                .col(string_len(SopPlan::Stage, 24))
                .col(integer(SopPlan::Revision).default(1))
                .col(big_integer_null(SopPlan::PreviousRevisionId))
                .col(string_len(SopPlan::Owner, 200))
                .col(timestamp_with_time_zone_null(SopPlan::ReleasedAt))
                .col(integer(SopPlan::Version).default(1))
                .col(timestamp_with_time_zone(SopPlan::CreatedAt))
                .col(timestamp_with_time_zone(SopPlan::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_sop_plan_previous")
                        .from(SopPlan::Table, SopPlan::PreviousRevisionId)
                        .to(SopPlan::Table, SopPlan::Id)
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_sop_plan_stage")
                .table(SopPlan::Table)
                .col(SopPlan::Stage)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(SopLine::Table)
                .if_not_exists()
                .col(big_pk_auto(SopLine::Id))
                .col(big_integer(SopLine::PlanId))
                .col(string_len(SopLine::Kind, 16))
                .col(big_integer_null(SopLine::TerritoryId))
                .col(date(SopLine::Month))
                .col(big_integer(SopLine::AmountCents))
                .col(double_null(SopLine::Headcount))
                .col(big_integer_null(SopLine::BudgetCents))
                .col(text_null(SopLine::Note))
                .col(string_len(SopLine::Author, 200))
                .col(timestamp_with_time_zone(SopLine::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_sop_line_plan")
                        .from(SopLine::Table, SopLine::PlanId)
                        .to(SopPlan::Table, SopPlan::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_sop_line_territory")
                        .from(SopLine::Table, SopLine::TerritoryId)
                        .to(Territory::Table, Territory::Id)
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_sop_line_plan_kind")
                .table(SopLine::Table)
                .col(SopLine::PlanId)
                .col(SopLine::Kind)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(SopTransition::Table)
                .if_not_exists()
                .col(big_pk_auto(SopTransition::Id))
                .col(big_integer(SopTransition::PlanId))
                .col(string_len_null(SopTransition::FromStage, 24))
                .col(string_len(SopTransition::ToStage, 24))
                .col(timestamp_with_time_zone(SopTransition::At))
                .col(string_len(SopTransition::Actor, 200))
                .col(text_null(SopTransition::Note))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_sop_transition_plan")
                        .from(SopTransition::Table, SopTransition::PlanId)
                        .to(SopPlan::Table, SopPlan::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_sop_transition_plan")
                .table(SopTransition::Table)
                .col(SopTransition::PlanId)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(SopTransition::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(SopLine::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(SopPlan::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum SopPlan {
    Table,
    Id,
    Name,
    HorizonStart,
    HorizonMonths,
    LookbackMonths,
    Stage,
    Revision,
    PreviousRevisionId,
    Owner,
    ReleasedAt,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
pub enum SopLine {
    Table,
    Id,
    PlanId,
    Kind,
    TerritoryId,
    Month,
    AmountCents,
    Headcount,
    BudgetCents,
    Note,
    Author,
    CreatedAt,
}

#[derive(DeriveIden)]
pub enum SopTransition {
    Table,
    Id,
    PlanId,
    FromStage,
    ToStage,
    At,
    Actor,
    Note,
}
