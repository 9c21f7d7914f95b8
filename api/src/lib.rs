//! salesops: a headless sales operations backend.
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod documents;
pub mod domain;
pub mod error;
pub mod graphql;
pub mod http;
pub mod observability;
pub mod seed;
pub mod service;
pub mod startup;
pub mod telemetry;
pub mod webhook_worker;
pub mod work;

pub use config::Config;
