//! Pure domain code: no database, no GraphQL. The sales math lives here with
//! unit tests on the worked examples of docs/design.md.
pub mod calls;
pub mod forecast;
pub mod metrics;
pub mod money;
pub mod period;
pub mod risk;
pub mod sop;
pub mod webhook;
