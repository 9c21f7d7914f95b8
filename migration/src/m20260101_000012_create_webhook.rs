use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Webhook::Table)
                .if_not_exists()
                .col(big_pk_auto(Webhook::Id))
                .col(string_len(Webhook::Url, 2048))
                .col(string_len(Webhook::Secret, 128))
                .col(text(Webhook::Events))
                .col(boolean(Webhook::Active).default(true))
                .col(string_len(Webhook::CreatedBy, 200))
                .col(timestamp_with_time_zone(Webhook::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(WebhookDelivery::Table)
                .if_not_exists()
                .col(big_pk_auto(WebhookDelivery::Id))
                .col(big_integer(WebhookDelivery::WebhookId))
                .col(string_len(WebhookDelivery::EventId, 64))
                .col(string_len(WebhookDelivery::EventType, 32))
                .col(string_len(WebhookDelivery::EntityType, 32))
                .col(string_len(WebhookDelivery::EntityId, 64))
                .col(text(WebhookDelivery::Payload))
                .col(string_len(WebhookDelivery::Status, 16))
                .col(integer(WebhookDelivery::Attempts).default(0))
                .col(timestamp_with_time_zone(WebhookDelivery::NextAttemptAt))
                .col(timestamp_with_time_zone_null(
                    WebhookDelivery::LastAttemptAt,
                ))
                .col(integer_null(WebhookDelivery::LastStatusCode))
                .col(text_null(WebhookDelivery::LastError))
                .col(timestamp_with_time_zone_null(WebhookDelivery::DeliveredAt))
                .col(timestamp_with_time_zone(WebhookDelivery::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_webhook_delivery_webhook")
                        .from(WebhookDelivery::Table, WebhookDelivery::WebhookId)
                        .to(Webhook::Table, Webhook::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("uq_webhook_delivery_event")
                .table(WebhookDelivery::Table)
                .col(WebhookDelivery::WebhookId)
                .col(WebhookDelivery::EventId)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_webhook_delivery_due")
                .table(WebhookDelivery::Table)
                .col(WebhookDelivery::Status)
                .col(WebhookDelivery::NextAttemptAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(WebhookDelivery::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(Webhook::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum Webhook {
    Table,
    Id,
    Url,
    Secret,
    Events,
    Active,
    CreatedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
pub enum WebhookDelivery {
    Table,
    Id,
    WebhookId,
    EventId,
    EventType,
    EntityType,
    EntityId,
    Payload,
    Status,
    Attempts,
    NextAttemptAt,
    LastAttemptAt,
    LastStatusCode,
    LastError,
    DeliveredAt,
    CreatedAt,
}
