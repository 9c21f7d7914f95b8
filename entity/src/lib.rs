//! SeaORM entities of the salesops data model, one module per table.
//! No GraphQL here: the API maps these into its own types.
pub mod account;
pub mod activity;
pub mod audit_entry;
pub mod deal;
pub mod deal_revision;
pub mod deal_stage_change;
pub mod enums;
pub mod forecast_submission;
pub mod lead;
pub mod lead_scoring_rule;
pub mod lead_status_change;
pub mod playbook;
pub mod playbook_step;
pub mod quota;
pub mod rep;
pub mod sop_approver;
pub mod sop_line;
pub mod sop_plan;
pub mod sop_transition;
pub mod stage;
pub mod territory;
pub mod webhook;
pub mod webhook_attempt;
pub mod webhook_delivery;

pub use sea_orm;
