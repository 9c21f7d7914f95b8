use sea_orm_migration::{prelude::*, schema::*};

use crate::m20260101_000002_create_rep::Rep;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ForecastSubmission::Table)
                .if_not_exists()
                .col(big_pk_auto(ForecastSubmission::Id))
                .col(big_integer(ForecastSubmission::RepId))
                .col(string_len(ForecastSubmission::Period, 32))
                .col(date(ForecastSubmission::PeriodStart))
                .col(date(ForecastSubmission::PeriodEnd))
                .col(string_len(ForecastSubmission::Category, 16))
                .col(big_integer(ForecastSubmission::AmountCents))
                .col(text_null(ForecastSubmission::Note))
                .col(timestamp_with_time_zone(ForecastSubmission::SubmittedAt))
                .col(string_len(ForecastSubmission::SubmittedBy, 200))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_forecast_submission_rep")
                        .from(ForecastSubmission::Table, ForecastSubmission::RepId)
                        .to(Rep::Table, Rep::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_forecast_submission_lookup")
                .table(ForecastSubmission::Table)
                .col(ForecastSubmission::PeriodStart)
                .col(ForecastSubmission::PeriodEnd)
                .col(ForecastSubmission::RepId)
                .col(ForecastSubmission::SubmittedAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(ForecastSubmission::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum ForecastSubmission {
    Table,
    Id,
    RepId,
    Period,
    PeriodStart,
    PeriodEnd,
    Category,
    AmountCents,
    Note,
    SubmittedAt,
    SubmittedBy,
}
