use sea_orm_migration::prelude::*;

/// A rep's deals in the default page order (latest change first): nested
/// pages (reps > deals) read each rep's first rows from this index alone
/// instead of every deal of the rep.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Deal {
    Table,
    OwnerId,
    UpdatedAt,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name("idx_deal_owner_updated")
                .table(Deal::Table)
                .col(Deal::OwnerId)
                .col(Deal::UpdatedAt)
                .col(Deal::Id)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("idx_deal_owner_updated")
                .table(Deal::Table)
                .to_owned(),
        )
        .await
    }
}
