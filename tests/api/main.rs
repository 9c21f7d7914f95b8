//! Black-box tests: the real server over HTTP, on SQLite and PostgreSQL.
mod helpers;

mod hostile;

mod audit;
mod auth;
mod calls;
mod client;
mod conventions;
mod dataloader;
mod deals;
mod demo;
mod export;
mod forecast;
mod fuzz;
mod history;
mod honest;
mod http;
mod input_limits;
mod integrations;
mod leads;
mod metrics;
mod money_limits;
mod ops;
mod org;
mod persisted;
mod readme;
mod risk;
mod roles;
mod scale_out;
mod schema;
mod scope_walk;
mod sop;
mod sop_cycle;
mod subscriptions;
mod webhook_security;
mod webhooks;
