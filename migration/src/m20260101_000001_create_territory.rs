use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Territory::Table)
                .if_not_exists()
                .col(big_pk_auto(Territory::Id))
                .col(string_len(Territory::Name, 200))
                .col(string_len_null(Territory::Segment, 16))
                .col(string_len_null(Territory::Region, 200))
                .col(big_integer_null(Territory::ParentId))
                .col(timestamp_with_time_zone(Territory::CreatedAt))
                .col(timestamp_with_time_zone(Territory::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_territory_parent")
                        .from(Territory::Table, Territory::ParentId)
                        .to(Territory::Table, Territory::Id)
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_territory_parent")
                .table(Territory::Table)
                .col(Territory::ParentId)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Territory::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum Territory {
    Table,
    Id,
    Name,
    Segment,
    Region,
    ParentId,
    CreatedAt,
    UpdatedAt,
}
