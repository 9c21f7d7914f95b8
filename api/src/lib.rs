//! salesops: a headless sales operations backend. This crate is the edge:
//! GraphQL (schema, resolvers, loaders), HTTP and the command line. The
//! services, rules and storage are in `salesops_core`, re-exported here so
//! `crate::service::...` reads the same from either side.
pub mod admission;
pub mod cli;
pub mod documents;
pub mod export;
pub mod graphiql;
pub mod graphql;
pub mod http;
pub mod persisted;
pub mod preflight;
pub mod response_order;
pub mod startup;
pub mod telemetry;
pub mod ws;

pub use salesops_core::{
    auth, clock, config, db, domain, error, live, observability, replica, request_db, rows, seed,
    service, warm_connections, webhook_worker, work, Config,
};
