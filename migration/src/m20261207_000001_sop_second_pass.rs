use sea_orm_migration::{prelude::*, schema::*};

/// S&OP second pass (docs/design.md, S&OP plans): the first month a plan
/// plans (`sop_plan.planned_from`; earlier months of its horizon were over
/// when it was made and take their actuals as demand), the plan a carried
/// line came from (`sop_line.carried_from_plan_id`), and the approvers
/// named on a plan with their sign-off (`sop_approver`). One column per
/// ALTER (SQLite takes one change per statement).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SopPlan {
    Table,
    Id,
    PlannedFrom,
}

#[derive(DeriveIden)]
enum SopLine {
    Table,
    CarriedFromPlanId,
}

#[derive(DeriveIden)]
enum SopApprover {
    Table,
    Id,
    PlanId,
    Approver,
    ApprovedVersion,
    ApprovedAt,
    Note,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(SopPlan::Table)
                .add_column(date_null(SopPlan::PlannedFrom))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(SopLine::Table)
                .add_column(big_integer_null(SopLine::CarriedFromPlanId))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(SopApprover::Table)
                .if_not_exists()
                .col(big_pk_auto(SopApprover::Id))
                .col(big_integer(SopApprover::PlanId))
                .col(string_len(SopApprover::Approver, 200))
                .col(integer_null(SopApprover::ApprovedVersion))
                .col(timestamp_with_time_zone_null(SopApprover::ApprovedAt))
                .col(text_null(SopApprover::Note))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_sop_approver_plan")
                        .from(SopApprover::Table, SopApprover::PlanId)
                        .to(SopPlan::Table, SopPlan::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_sop_approver_plan_approver")
                .table(SopApprover::Table)
                .col(SopApprover::PlanId)
                .col(SopApprover::Approver)
                .unique()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(SopApprover::Table).to_owned())
            .await?;
        m.alter_table(
            Table::alter()
                .table(SopLine::Table)
                .drop_column(SopLine::CarriedFromPlanId)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(SopPlan::Table)
                .drop_column(SopPlan::PlannedFrom)
                .to_owned(),
        )
        .await
    }
}
