//! S&OP details the first S&OP migration lacks: the baseline's own run-rate
//! lookback and growth assumption on the plan, a flag on lines the system
//! generated (confirmed baseline demand, computed capacity) so reopening a
//! plan can recompute them, and one revision per released plan.
use sea_orm_migration::{prelude::*, schema::*};

use crate::m20260101_000010_create_sop::{SopLine, SopPlan};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per ALTER: SQLite takes a single change per statement.
        m.alter_table(
            Table::alter()
                .table(SopPlan::Table)
                .add_column(integer(SopPlanExt::BaselineLookbackMonths).default(3))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(SopPlan::Table)
                .add_column(big_integer(SopPlanExt::GrowthRatePpm).default(0))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(SopLine::Table)
                .add_column(boolean(SopLineExt::Generated).default(false))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("uq_sop_plan_previous_revision")
                .table(SopPlan::Table)
                .col(SopPlan::PreviousRevisionId)
                .unique()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("uq_sop_plan_previous_revision")
                .table(SopPlan::Table)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(SopLine::Table)
                .drop_column(SopLineExt::Generated)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(SopPlan::Table)
                .drop_column(SopPlanExt::GrowthRatePpm)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(SopPlan::Table)
                .drop_column(SopPlanExt::BaselineLookbackMonths)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum SopPlanExt {
    BaselineLookbackMonths,
    GrowthRatePpm,
}

#[derive(DeriveIden)]
enum SopLineExt {
    Generated,
}
