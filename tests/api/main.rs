//! Black-box tests: the real server over HTTP, on SQLite and PostgreSQL.
mod helpers;

mod auth;
mod schema;
