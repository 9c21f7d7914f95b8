use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The default pipeline: (name, position, probability in ppm, kind).
const DEFAULT_STAGES: [(&str, i32, i64, &str); 7] = [
    ("Discovery", 1, 100_000, "OPEN"),
    ("Qualified", 2, 200_000, "OPEN"),
    ("Demo", 3, 400_000, "OPEN"),
    ("Trial", 4, 600_000, "OPEN"),
    ("Final Call", 5, 800_000, "OPEN"),
    ("Won", 6, 1_000_000, "WON"),
    ("Lost", 7, 0, "LOST"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Stage::Table)
                .if_not_exists()
                .col(big_pk_auto(Stage::Id))
                .col(string_len(Stage::Name, 100))
                .col(integer(Stage::Position))
                .col(big_integer(Stage::ProbabilityPpm))
                .col(string_len(Stage::Kind, 8))
                .col(timestamp_with_time_zone(Stage::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("uq_stage_name")
                .table(Stage::Table)
                .col(Stage::Name)
                .unique()
                .to_owned(),
        )
        .await?;
        let mut insert = Query::insert();
        insert.into_table(Stage::Table).columns([
            Stage::Name,
            Stage::Position,
            Stage::ProbabilityPpm,
            Stage::Kind,
            Stage::CreatedAt,
        ]);
        for (name, position, ppm, kind) in DEFAULT_STAGES {
            insert.values_panic([
                name.into(),
                position.into(),
                ppm.into(),
                kind.into(),
                crate::now_expr(m),
            ]);
        }
        m.exec_stmt(insert.to_owned()).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Stage::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum Stage {
    Table,
    Id,
    Name,
    Position,
    ProbabilityPpm,
    Kind,
    CreatedAt,
}
