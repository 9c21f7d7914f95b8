//! The GraphQL schema: per-domain query and mutation objects merged at the
//! root, with depth and complexity limits. Resolvers stay thin: they parse
//! arguments, then call a service.
pub mod cost;
pub mod eager;
pub mod enums;
pub mod errors;
pub mod guard;
pub mod input_guard;
pub mod inputs;
pub mod lead_inputs;
pub mod lead_loaders;
pub mod loaders;
pub mod mutation;
pub mod query;
pub mod scalars;
pub mod subscription;
pub mod types;

use crate::graphql::errors::Extend as _;
use async_graphql::{Context, Schema, SchemaBuilder, ID};
use sea_orm::DatabaseConnection;

use crate::auth::Principal;
use crate::error::{AppError, AppResult};

pub use mutation::MutationRoot;
pub use query::QueryRoot;
pub use subscription::SubscriptionRoot;

pub type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;
pub type AppSchemas = Schemas<QueryRoot, MutationRoot, SubscriptionRoot>;

/// The schema twice over the same data, so a document is validated once
/// per operation and variables (documents.rs, `Variant`): `strict` runs all
/// of async-graphql's validation rules; `repeat` (its Fast mode) only the
/// cost, depth and cache-control measures, for what passed `strict` before.
pub struct Schemas<Q, M, S> {
    pub strict: Schema<Q, M, S>,
    pub repeat: Schema<Q, M, S>,
}

impl<Q, M, S> Schemas<Q, M, S>
where
    Q: async_graphql::ObjectType + 'static,
    M: async_graphql::ObjectType + 'static,
    S: async_graphql::SubscriptionType + 'static,
{
    /// Both schemas from one recipe (called twice: a builder is consumed).
    pub fn build(make: impl Fn() -> SchemaBuilder<Q, M, S>) -> Self {
        Self {
            strict: make().finish(),
            repeat: make()
                .validation_mode(async_graphql::ValidationMode::Fast)
                .finish(),
        }
    }
}

impl<Q, M, S> Clone for Schemas<Q, M, S> {
    fn clone(&self) -> Self {
        Self {
            strict: self.strict.clone(),
            repeat: self.repeat.clone(),
        }
    }
}

/// Limits applied before execution; taken from Config in production.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_depth: usize,
    pub max_complexity: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 15,
            max_complexity: 50_000,
        }
    }
}

/// The description of the `Decimal` scalar.
pub const DECIMAL_DESCRIPTION: &str = "An exact decimal number as a string, e.g. \"1250.00\" \
     (never a float, so no precision is lost). Money amounts have at most 2 decimal places.";

/// The schema without data (for SDL export and drift tests).
pub fn schema_builder(limits: &Limits) -> SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot> {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot,
    )
    // async-graphql's own Decimal scalar has no description; the contract
    // documents every custom scalar.
    .override_output_type_description::<rust_decimal::Decimal>(DECIMAL_DESCRIPTION)
    .limit_depth(limits.max_depth)
    .limit_complexity(limits.max_complexity)
    // No `.extension(..)`: eager.rs resolves plain selections without the
    // per-field extension hooks.
}

/// The SDL as committed in schema.graphql.
pub fn sdl() -> String {
    schema_builder(&Limits::default())
        .finish()
        .sdl_with_options(
            async_graphql::SDLExportOptions::new()
                .sorted_fields()
                .sorted_enum_items(),
        )
}

/// Per-request data: who calls and which connection reads go to (the
/// primary for mutations, so a mutation reads its own writes; the replica,
/// if configured, for queries).
pub struct RequestCtx {
    pub principal: Principal,
    pub read_db: crate::request_db::RequestDb,
}

pub fn request<'a>(ctx: &'a Context<'_>) -> async_graphql::Result<&'a RequestCtx> {
    ctx.data_opt::<RequestCtx>()
        .ok_or_else(|| AppError::Unauthenticated.extend())
}

pub fn principal<'a>(ctx: &'a Context<'_>) -> async_graphql::Result<&'a Principal> {
    Ok(&request(ctx)?.principal)
}

pub fn read_db<'a>(
    ctx: &'a Context<'_>,
) -> async_graphql::Result<&'a crate::request_db::RequestDb> {
    Ok(&request(ctx)?.read_db)
}

/// What resolvers read besides the request: the primary database, the deal
/// rules and the page cap (built by startup; the
/// GraphQL layer knows nothing of HTTP).
#[derive(Clone)]
pub struct Shared {
    pub db: DatabaseConnection,
    pub deal_rules: crate::service::deal::DealRules,
    pub max_page_size: usize,
}

pub fn state<'a>(ctx: &'a Context<'_>) -> async_graphql::Result<&'a Shared> {
    ctx.data::<Shared>()
}

/// Whether the current field's selection reaches any of `fields` below
/// `path` (through fragments, under any alias): services compute the parts
/// of an answer that some selected field needs, and only those.
pub fn selects(ctx: &Context<'_>, path: &[&str], fields: &[&str]) -> bool {
    let mut at = ctx.look_ahead();
    for p in path {
        at = at.field(p);
    }
    fields.iter().any(|f| at.field(f).exists())
}

/// Whether every field selected below `path` (through fragments, under any
/// alias, wherever the path's fields occur) is one of `fields`: a service
/// may then read only the columns those fields need. Directives are not
/// evaluated, so a field under `@include(if: false)` still counts (reading
/// more, never less).
pub fn selects_only(ctx: &Context<'_>, path: &[&str], fields: &[&str]) -> bool {
    fn only(at: async_graphql::SelectionField<'_>, path: &[&str], fields: &[&str]) -> bool {
        match path.split_first() {
            None => at.selection_set().all(|f| fields.contains(&f.name())),
            Some((head, rest)) => at
                .selection_set()
                .filter(|f| f.name() == *head)
                .all(|f| only(f, rest, fields)),
        }
    }
    only(ctx.field(), path, fields)
}

/// The primary database, for writes.
pub fn write_db<'a>(ctx: &'a Context<'_>) -> async_graphql::Result<&'a DatabaseConnection> {
    Ok(&state(ctx)?.db)
}

/// Parses an ID argument; a malformed one is BAD_USER_INPUT naming the field.
pub fn parse_id(id: &ID, field: &str) -> AppResult<i64> {
    id.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| {
        AppError::bad_input(format!(
            "{field}: {} is not an id",
            crate::error::echo(id.as_str())
        ))
    })
}

/// Ids per list argument: every id becomes a bound parameter, and SQLite
/// takes at most 32,766 per statement (PostgreSQL 65,535).
pub const MAX_IDS: usize = 1_000;

pub fn parse_ids(ids: &[ID], field: &str) -> AppResult<Vec<i64>> {
    if ids.len() > MAX_IDS {
        return Err(AppError::bad_input(format!(
            "{field}: at most {MAX_IDS} ids, got {}",
            ids.len()
        )));
    }
    ids.iter().map(|id| parse_id(id, field)).collect()
}

/// An id used to look something up: malformed ids simply find nothing.
pub fn lookup_id(id: &ID, what: &str) -> AppResult<i64> {
    id.parse::<i64>().map_err(|_| AppError::not_found(what))
}

pub fn opt_id(id: &Option<ID>, field: &str) -> AppResult<Option<i64>> {
    id.as_ref().map(|i| parse_id(i, field)).transpose()
}

/// Checks a `first` argument against the configured page-size cap.
pub fn page_size(
    ctx: &Context<'_>,
    first: Option<i32>,
    default: usize,
) -> async_graphql::Result<u64> {
    let max = state(ctx)?.max_page_size;
    check_page_size(first, default, max).map_err(|e| e.extend())
}

pub fn check_page_size(first: Option<i32>, default: usize, max: usize) -> AppResult<u64> {
    match first {
        None => Ok(default.min(max) as u64),
        Some(n) if n < 0 => Err(AppError::bad_input("first must not be negative")),
        Some(n) if n as usize > max => Err(AppError::QueryTooComplex(format!(
            "first must be at most {max}"
        ))),
        Some(n) => Ok(n as u64),
    }
}

/// Complexity of a list field: its page size times the cost of one item.
pub fn list_complexity(first: Option<i32>, default: usize, child: usize) -> usize {
    first.map(|f| f.max(0) as usize).unwrap_or(default).max(1) * child + 1
}
