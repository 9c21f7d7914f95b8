//! salesops core: the services, rules and storage of the product, with no
//! GraphQL and no HTTP (the `api` crate adds those at its edge). The sales
//! math itself lives in the `domain` crate, re-exported here.
pub mod auth;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod live;
pub mod observability;
pub mod replica;
pub mod request_db;
pub mod rows;
pub mod seed;
pub mod service;
pub mod warm_connections;
pub mod webhook_worker;
pub mod work;

pub use config::Config;
pub use domain;
