use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(AuditEntry::Table)
                .if_not_exists()
                .col(big_pk_auto(AuditEntry::Id))
                .col(timestamp_with_time_zone(AuditEntry::At))
                .col(string_len(AuditEntry::Actor, 200))
                .col(string_len(AuditEntry::Action, 64))
                .col(string_len(AuditEntry::EntityType, 64))
                .col(string_len(AuditEntry::EntityId, 64))
                .col(text(AuditEntry::Changes))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_audit_entity")
                .table(AuditEntry::Table)
                .col(AuditEntry::EntityType)
                .col(AuditEntry::EntityId)
                .col(AuditEntry::Id)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(AuditEntry::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum AuditEntry {
    Table,
    Id,
    At,
    Actor,
    Action,
    EntityType,
    EntityId,
    Changes,
}
