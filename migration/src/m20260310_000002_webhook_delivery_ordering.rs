use sea_orm_migration::{prelude::*, schema::*};

use crate::m20260101_000012_create_webhook::WebhookDelivery;

/// Per-entity ordering and leases on the outbox, and one row per delivery
/// attempt.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        m.alter_table(
            Table::alter()
                .table(WebhookDelivery::Table)
                .add_column(string_len(Delivery::OrderingKey, 96).default(""))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(WebhookDelivery::Table)
                .add_column(timestamp_with_time_zone_null(Delivery::LockedUntil))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(WebhookDelivery::Table)
                .add_column(string_len_null(Delivery::LockedBy, 64))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_webhook_delivery_order")
                .table(WebhookDelivery::Table)
                .col(WebhookDelivery::WebhookId)
                .col(Delivery::OrderingKey)
                .col(WebhookDelivery::Status)
                .col(WebhookDelivery::Id)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(WebhookAttempt::Table)
                .if_not_exists()
                .col(big_pk_auto(WebhookAttempt::Id))
                .col(big_integer(WebhookAttempt::DeliveryId))
                .col(integer(WebhookAttempt::Attempt))
                .col(timestamp_with_time_zone(WebhookAttempt::StartedAt))
                .col(integer(WebhookAttempt::DurationMs))
                .col(integer_null(WebhookAttempt::StatusCode))
                .col(text_null(WebhookAttempt::Error))
                .col(boolean(WebhookAttempt::Success))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_webhook_attempt_delivery")
                        .from(WebhookAttempt::Table, WebhookAttempt::DeliveryId)
                        .to(WebhookDelivery::Table, WebhookDelivery::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_webhook_attempt_delivery")
                .table(WebhookAttempt::Table)
                .col(WebhookAttempt::DeliveryId)
                .col(WebhookAttempt::Attempt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(WebhookAttempt::Table).to_owned())
            .await?;
        m.drop_index(
            Index::drop()
                .name("idx_webhook_delivery_order")
                .table(WebhookDelivery::Table)
                .to_owned(),
        )
        .await?;
        for col in [
            Delivery::LockedBy,
            Delivery::LockedUntil,
            Delivery::OrderingKey,
        ] {
            m.alter_table(
                Table::alter()
                    .table(WebhookDelivery::Table)
                    .drop_column(col)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Delivery {
    OrderingKey,
    LockedUntil,
    LockedBy,
}

#[derive(DeriveIden)]
enum WebhookAttempt {
    Table,
    Id,
    DeliveryId,
    Attempt,
    StartedAt,
    DurationMs,
    StatusCode,
    Error,
    Success,
}
