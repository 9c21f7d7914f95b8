use sea_orm_migration::{prelude::*, schema::*};

use crate::m20260101_000001_create_territory::Territory;
use crate::m20260101_000002_create_rep::Rep;
use crate::m20260101_000003_create_account::Account;
use crate::m20260101_000004_create_stage::Stage;
use crate::m20260101_000005_create_playbook::Playbook;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Deal::Table)
                .if_not_exists()
                .col(big_pk_auto(Deal::Id))
                .col(string_len_null(Deal::ExternalId, 200))
                .col(string_len(Deal::Name, 300))
                .col(big_integer(Deal::AmountCents))
                .col(string_len(Deal::Currency, 3))
                .col(big_integer(Deal::OwnerId))
                .col(big_integer_null(Deal::AccountId))
                .col(big_integer_null(Deal::TerritoryId))
                .col(big_integer(Deal::StageId))
                .col(string_len(Deal::Status, 8))
                .col(string_len(Deal::ForecastCategory, 16))
                .col(string_len_null(Deal::Source, 16))
                .col(big_integer_null(Deal::PlaybookId))
                .col(timestamp_with_time_zone(Deal::OpenedAt))
                .col(date_null(Deal::ExpectedCloseDate))
                .col(timestamp_with_time_zone_null(Deal::ClosedAt))
                .col(text_null(Deal::LostReason))
                .col(integer(Deal::Version).default(1))
                .col(timestamp_with_time_zone(Deal::CreatedAt))
                .col(timestamp_with_time_zone(Deal::UpdatedAt))
                .foreign_key(&mut fk("fk_deal_owner", Deal::OwnerId, Rep::Table, Rep::Id))
                .foreign_key(&mut fk(
                    "fk_deal_account",
                    Deal::AccountId,
                    Account::Table,
                    Account::Id,
                ))
                .foreign_key(&mut fk(
                    "fk_deal_territory",
                    Deal::TerritoryId,
                    Territory::Table,
                    Territory::Id,
                ))
                .foreign_key(&mut fk(
                    "fk_deal_stage",
                    Deal::StageId,
                    Stage::Table,
                    Stage::Id,
                ))
                .foreign_key(&mut fk(
                    "fk_deal_playbook",
                    Deal::PlaybookId,
                    Playbook::Table,
                    Playbook::Id,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("uq_deal_external_id")
                .table(Deal::Table)
                .col(Deal::ExternalId)
                .unique()
                .to_owned(),
        )
        .await?;
        // The list orders (keyset pagination on (key, id)) and the metric
        // filters: owner scope, territory, stage, status with its dates.
        let indexes: [(&str, Vec<Deal>); 11] = [
            ("idx_deal_owner", vec![Deal::OwnerId, Deal::Status]),
            ("idx_deal_territory", vec![Deal::TerritoryId]),
            ("idx_deal_account", vec![Deal::AccountId]),
            ("idx_deal_stage", vec![Deal::StageId]),
            ("idx_deal_playbook", vec![Deal::PlaybookId]),
            ("idx_deal_status_closed", vec![Deal::Status, Deal::ClosedAt]),
            (
                "idx_deal_status_expected",
                vec![Deal::Status, Deal::ExpectedCloseDate],
            ),
            ("idx_deal_closed_at", vec![Deal::ClosedAt]),
            ("idx_deal_updated", vec![Deal::UpdatedAt, Deal::Id]),
            ("idx_deal_opened", vec![Deal::OpenedAt, Deal::Id]),
            ("idx_deal_amount", vec![Deal::AmountCents, Deal::Id]),
        ];
        for (name, cols) in indexes {
            let mut idx = Index::create();
            idx.name(name).table(Deal::Table);
            for c in cols {
                idx.col(c);
            }
            m.create_index(idx.to_owned()).await?;
        }
        m.create_index(
            Index::create()
                .name("idx_deal_expected_close")
                .table(Deal::Table)
                .col(Deal::ExpectedCloseDate)
                .col(Deal::Id)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Deal::Table).to_owned())
            .await
    }
}

fn fk<T: IntoIden + 'static, C: IntoIden + 'static>(
    name: &str,
    from: Deal,
    table: T,
    col: C,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(Deal::Table, from)
        .to(table, col)
        .on_delete(ForeignKeyAction::Restrict)
        .to_owned()
}

#[derive(DeriveIden, Clone, Copy)]
pub enum Deal {
    Table,
    Id,
    ExternalId,
    Name,
    AmountCents,
    Currency,
    OwnerId,
    AccountId,
    TerritoryId,
    StageId,
    Status,
    ForecastCategory,
    Source,
    PlaybookId,
    OpenedAt,
    ExpectedCloseDate,
    ClosedAt,
    LostReason,
    Version,
    CreatedAt,
    UpdatedAt,
}
