use sea_orm_migration::{prelude::*, schema::*};

/// Deal risk facts on the deal row (docs/design.md, Deal risk): the amount
/// it was created with, when its latest push took effect, when it entered
/// its current stage and its latest activity. Each was a per-deal probe of
/// the revisions, stage changes or activities for every deal of a page; the
/// writers now keep them (deal writes in `service::deal_write`, activity
/// writes in `service::activity`). Existing deals get them from the same
/// probes once.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Deal {
    Table,
    FirstAmountCents,
    PushedAt,
    StageEnteredAt,
    LastActivityAt,
}

const BACKFILL: &str = "\
UPDATE deal SET \
first_amount_cents = (SELECT r.amount_cents FROM deal_revision r WHERE r.deal_id = deal.id \
ORDER BY r.valid_from, r.version LIMIT 1), \
pushed_at = CASE WHEN deal.push_count > 0 THEN (SELECT MIN(r.valid_from) FROM deal_revision r \
WHERE r.deal_id = deal.id AND r.push_count = deal.push_count) END, \
stage_entered_at = (SELECT MAX(c.changed_at) FROM deal_stage_change c \
WHERE c.deal_id = deal.id AND c.to_stage_id = deal.stage_id), \
last_activity_at = (SELECT MAX(a.at) FROM activity a WHERE a.deal_id = deal.id)";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        m.alter_table(
            Table::alter()
                .table(Deal::Table)
                .add_column(big_integer_null(Deal::FirstAmountCents))
                .to_owned(),
        )
        .await?;
        for col in [Deal::PushedAt, Deal::StageEnteredAt, Deal::LastActivityAt] {
            m.alter_table(
                Table::alter()
                    .table(Deal::Table)
                    .add_column(timestamp_with_time_zone_null(col))
                    .to_owned(),
            )
            .await?;
        }
        m.get_connection().execute_unprepared(BACKFILL).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for col in [
            Deal::FirstAmountCents,
            Deal::PushedAt,
            Deal::StageEnteredAt,
            Deal::LastActivityAt,
        ] {
            m.alter_table(
                Table::alter()
                    .table(Deal::Table)
                    .drop_column(col)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
