//! The one migration history of salesops; the same steps run on SQLite and
//! PostgreSQL.
pub use sea_orm_migration::prelude::*;

mod m20260101_000001_create_territory;
mod m20260101_000002_create_rep;
mod m20260101_000003_create_account;
mod m20260101_000004_create_stage;
mod m20260101_000005_create_playbook;
mod m20260101_000006_create_deal;
mod m20260101_000007_create_deal_stage_change;
mod m20260101_000008_create_quota;
mod m20260101_000009_create_forecast_submission;
mod m20260101_000010_create_sop;
mod m20260101_000011_create_audit_entry;
mod m20260101_000012_create_webhook;
mod m20260301_000001_extend_sop;
mod m20260310_000001_create_change_clock;
mod m20260310_000002_webhook_delivery_ordering;
mod m20261123_000001_metric_indexes;
mod m20261201_000001_webhook_secret_sealed;
mod m20261206_000001_deal_revision;
mod m20261206_000002_forecast_calls;
mod m20261207_000001_sop_second_pass;
mod m20261207_000002_leads_activities;
mod m20261208_000001_deal_risk_facts;
mod m20261208_000002_deal_owner_page_index;
mod m20261209_000001_deal_rollup;
mod m20261210_000001_open_deal_index;
pub mod rollup_sql;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20260101_000001_create_territory::Migration),
            Box::new(m20260101_000002_create_rep::Migration),
            Box::new(m20260101_000003_create_account::Migration),
            Box::new(m20260101_000004_create_stage::Migration),
            Box::new(m20260101_000005_create_playbook::Migration),
            Box::new(m20260101_000006_create_deal::Migration),
            Box::new(m20260101_000007_create_deal_stage_change::Migration),
            Box::new(m20260101_000008_create_quota::Migration),
            Box::new(m20260101_000009_create_forecast_submission::Migration),
            Box::new(m20260101_000010_create_sop::Migration),
            Box::new(m20260101_000011_create_audit_entry::Migration),
            Box::new(m20260101_000012_create_webhook::Migration),
            Box::new(m20260301_000001_extend_sop::Migration),
            Box::new(m20260310_000001_create_change_clock::Migration),
            Box::new(m20260310_000002_webhook_delivery_ordering::Migration),
            Box::new(m20261123_000001_metric_indexes::Migration),
            Box::new(m20261201_000001_webhook_secret_sealed::Migration),
            Box::new(m20261206_000001_deal_revision::Migration),
            Box::new(m20261206_000002_forecast_calls::Migration),
            Box::new(m20261207_000001_sop_second_pass::Migration),
            Box::new(m20261207_000002_leads_activities::Migration),
            Box::new(m20261208_000001_deal_risk_facts::Migration),
            Box::new(m20261208_000002_deal_owner_page_index::Migration),
            Box::new(m20261209_000001_deal_rollup::Migration),
            Box::new(m20261210_000001_open_deal_index::Migration),
        ]
    }
}

/// "Now" as the backend stores a UTC timestamp: SQLite keeps RFC 3339 text
/// (the format sqlx writes, so text order is time order), PostgreSQL a
/// timestamptz.
pub(crate) fn now_expr(m: &SchemaManager) -> SimpleExpr {
    match m.get_database_backend() {
        sea_orm_migration::sea_orm::DatabaseBackend::Sqlite => {
            Expr::cust("strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now')")
        }
        _ => Expr::current_timestamp(),
    }
}
