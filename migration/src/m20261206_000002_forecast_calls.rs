use sea_orm_migration::{prelude::*, schema::*};

/// Forecast calls (docs/design.md, Forecast calls): who sells
/// (`rep.quota_carrying`, default true) and what a submission is (`kind`
/// CALL or ADJUSTMENT, `scope` PERSONAL or TEAM). Submissions made before
/// this migration were the reps' own calls: CALL and PERSONAL. One column
/// per ALTER (SQLite takes one change per statement).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Rep {
    Table,
    QuotaCarrying,
}

#[derive(DeriveIden)]
enum ForecastSubmission {
    Table,
    Kind,
    Scope,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Rep::Table)
                .add_column(boolean(Rep::QuotaCarrying).default(true))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(ForecastSubmission::Table)
                .add_column(string_len(ForecastSubmission::Kind, 16).default("CALL"))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(ForecastSubmission::Table)
                .add_column(string_len(ForecastSubmission::Scope, 16).default("PERSONAL"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (table, col) in [
            (
                ForecastSubmission::Table.into_iden(),
                ForecastSubmission::Scope.into_iden(),
            ),
            (
                ForecastSubmission::Table.into_iden(),
                ForecastSubmission::Kind.into_iden(),
            ),
            (Rep::Table.into_iden(), Rep::QuotaCarrying.into_iden()),
        ] {
            m.alter_table(Table::alter().table(table).drop_column(col).to_owned())
                .await?;
        }
        Ok(())
    }
}
