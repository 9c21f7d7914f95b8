use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

/// Room for sealed webhook secrets: `v1:` and the base64 of nonce,
/// ciphertext and tag is 135 characters for a 70-character secret, past the
/// 128 the column had. The service seals the plaintext rows itself (a
/// migration has no key); SQLite does not enforce the length.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() == DatabaseBackend::Sqlite {
            return Ok(());
        }
        m.alter_table(
            Table::alter()
                .table(Webhook::Table)
                .modify_column(ColumnDef::new(Webhook::Secret).string_len(512).not_null())
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() == DatabaseBackend::Sqlite {
            return Ok(());
        }
        // Sealed secrets do not fit the old width, and the plaintext cannot
        // be recovered here: refuse rather than truncate them.
        m.alter_table(
            Table::alter()
                .table(Webhook::Table)
                .modify_column(ColumnDef::new(Webhook::Secret).string_len(128).not_null())
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum Webhook {
    Table,
    Secret,
}
