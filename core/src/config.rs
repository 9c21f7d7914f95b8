//! The one place that reads the environment. Every setting is a clap
//! argument with its environment variable, so `salesops serve --help`
//! documents them and a flag overrides the variable.
use std::time::Duration;

use clap::Args;

/// The database when none is configured: a SQLite file in the working
/// directory, created if missing.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://salesops.db?mode=rwc";

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Database URL: sqlite://file.db?mode=rwc or postgres://user@host/db.
    #[arg(long, env = "SALESOPS_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,

    /// Optional read replica for read-only requests (queries, not mutations).
    #[arg(long, env = "SALESOPS_READ_DATABASE_URL")]
    pub read_database_url: Option<String>,

    /// Address the HTTP server listens on.
    #[arg(long, env = "SALESOPS_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,

    /// HS256 secret for bearer tokens.
    #[arg(long, env = "SALESOPS_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Path to a PEM public key (RSA for RS256, EC P-256 for ES256) of the identity provider.
    #[arg(long, env = "SALESOPS_JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<String>,

    /// Path to the matching PEM private key, only for `salesops token` with a key pair.
    #[arg(long, env = "SALESOPS_JWT_PRIVATE_KEY")]
    pub jwt_private_key: Option<String>,

    /// Required `iss` claim.
    #[arg(long, env = "SALESOPS_JWT_ISSUER", default_value = "salesops")]
    pub jwt_issuer: String,

    /// Required `aud` claim.
    #[arg(long, env = "SALESOPS_JWT_AUDIENCE", default_value = "salesops")]
    pub jwt_audience: String,

    /// The organisation's currency; deals in another currency are rejected.
    #[arg(long, env = "SALESOPS_CURRENCY", default_value = "USD")]
    pub currency: String,

    /// Deepest selection nesting a query may have. 15 is the least the
    /// standard introspection queries need (graphql-js 16 and graphql-core
    /// 3.2: `__schema types fields args type` and nine `ofType`); the query
    /// cost, not the depth, bounds the work of a data query.
    #[arg(long, env = "SALESOPS_MAX_QUERY_DEPTH", default_value_t = 15)]
    pub max_query_depth: usize,

    /// Highest cost a request may have: fields times list lengths, 5,000 per
    /// metric or forecast (SECURITY.md, "Request limits").
    #[arg(long, env = "SALESOPS_MAX_QUERY_COMPLEXITY", default_value_t = 50_000)]
    pub max_query_complexity: usize,

    /// Largest `first` a list or connection accepts.
    #[arg(long, env = "SALESOPS_MAX_PAGE_SIZE", default_value_t = 500)]
    pub max_page_size: usize,

    /// Largest request body in bytes.
    #[arg(long, env = "SALESOPS_MAX_BODY_BYTES", default_value_t = 1_048_576)]
    pub max_body_bytes: usize,

    /// Milliseconds a GraphQL request may run; past it, its SQL is cancelled
    /// and it answers QUERY_TOO_COMPLEX.
    #[arg(long, env = "SALESOPS_REQUEST_TIMEOUT_MS", default_value_t = 30_000)]
    pub request_timeout_ms: u64,

    /// Rows one request may read through lists that take no page argument
    /// (direct reports, territory members, stage histories, quotas).
    #[arg(long, env = "SALESOPS_MAX_ROWS_PER_REQUEST", default_value_t = 50_000)]
    pub max_rows_per_request: usize,

    /// Whether metrics read the exact deal rollups where they cover the
    /// question (docs/design.md, Rollups); off: every metric scans the deals.
    #[arg(long, env = "SALESOPS_ROLLUPS", default_value_t = true, action = clap::ArgAction::Set)]
    pub rollups: bool,

    /// Milliseconds between compactions of the rollup deltas into their
    /// cells (0: never; reads stay exact either way, deltas only cost reads).
    #[arg(long, env = "SALESOPS_ROLLUP_COMPACT_MS", default_value_t = 2_000)]
    pub rollup_compact_ms: u64,

    /// Cost (the price SALESOPS_MAX_QUERY_COMPLEXITY limits) of the GraphQL
    /// operations executing at once; others wait their turn within their
    /// deadline. Bounds peak memory: an answer takes about 500-700 bytes per
    /// unit of cost while it is built (0: no bound).
    #[arg(long, env = "SALESOPS_MAX_COST_IN_FLIGHT", default_value_t = 60_000)]
    pub max_cost_in_flight: usize,

    /// Statements of metric and forecast fields one request runs at once.
    #[arg(long, env = "SALESOPS_MAX_HEAVY_PER_REQUEST", default_value_t = 2)]
    pub max_heavy_per_request: usize,

    /// Bytes of query text the parsed-document cache may hold (parsed
    /// documents take about 40 times their text).
    #[arg(
        long,
        env = "SALESOPS_DOCUMENT_CACHE_BYTES",
        default_value_t = 1_048_576
    )]
    pub document_cache_bytes: usize,

    /// Bearer token `/metrics` requires (none: `/metrics` is open, so bind
    /// the API to a private address).
    #[arg(long, env = "SALESOPS_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Longest lifetime (`exp - iat`) a bearer token may have, in seconds.
    #[arg(long, env = "SALESOPS_JWT_MAX_TTL_SECS", default_value_t = 30 * 86_400)]
    pub jwt_max_ttl_secs: u64,

    /// Connections in the database pool (SQLite: at most 8).
    #[arg(long, env = "SALESOPS_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,

    /// Connections kept open when idle.
    #[arg(long, env = "SALESOPS_DB_MIN_CONNECTIONS", default_value_t = 1)]
    pub db_min_connections: u32,

    /// Milliseconds a request waits for a pooled connection before failing.
    #[arg(long, env = "SALESOPS_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 5_000)]
    pub db_acquire_timeout_ms: u64,

    /// Per-statement timeout in milliseconds (PostgreSQL); 0 disables it.
    #[arg(long, env = "SALESOPS_STATEMENT_TIMEOUT_MS", default_value_t = 30_000)]
    pub statement_timeout_ms: u64,

    /// PostgreSQL parallel workers (`max_parallel_workers_per_gather`) a
    /// metric's statement may use when no other metric statement runs; with
    /// others running it uses none (at load, launching workers costs
    /// throughput). -1 leaves the database's own setting for every statement.
    #[arg(
        long,
        env = "SALESOPS_DB_PARALLEL_WORKERS",
        default_value_t = 2,
        allow_negative_numbers = true
    )]
    pub db_parallel_workers: i32,

    /// Run the webhook delivery worker in this process.
    #[arg(long, env = "SALESOPS_WEBHOOK_WORKER", default_value_t = true, action = clap::ArgAction::Set)]
    pub webhook_worker: bool,

    /// Milliseconds between polls of the webhook outbox when idle.
    #[arg(long, env = "SALESOPS_WEBHOOK_POLL_MS", default_value_t = 1_000)]
    pub webhook_poll_ms: u64,

    /// Milliseconds before the first webhook retry; doubled after each failure.
    #[arg(long, env = "SALESOPS_WEBHOOK_BACKOFF_MS", default_value_t = 1_000)]
    pub webhook_backoff_ms: u64,

    /// Longest wait between two webhook attempts, in milliseconds.
    #[arg(
        long,
        env = "SALESOPS_WEBHOOK_BACKOFF_MAX_MS",
        default_value_t = 3_600_000
    )]
    pub webhook_backoff_max_ms: u64,

    /// Timeout of one webhook request, in milliseconds.
    #[arg(long, env = "SALESOPS_WEBHOOK_TIMEOUT_MS", default_value_t = 10_000)]
    pub webhook_timeout_ms: u64,

    /// Attempts before a webhook delivery is given up (status FAILED).
    #[arg(long, env = "SALESOPS_WEBHOOK_MAX_ATTEMPTS", default_value_t = 12)]
    pub webhook_max_attempts: u32,

    /// Log format: `json` (one object per line) or `pretty`.
    #[arg(long, env = "SALESOPS_LOG_FORMAT", default_value = "pretty")]
    pub log_format: String,

    // --- Webhook hardening: destination policy, secrets at rest and
    // per-receiver concurrency (see SECURITY.md). ---
    /// Allow plain http:// webhook URLs; when false (the default) only https.
    #[arg(long, env = "SALESOPS_WEBHOOK_ALLOW_HTTP", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhook_allow_http: bool,

    /// Comma-separated host names, IP addresses and CIDR networks webhooks
    /// may reach although they are loopback, private, link-local or
    /// otherwise refused (e.g. `hooks.internal,10.20.0.0/16`). Empty: none.
    #[arg(long, env = "SALESOPS_WEBHOOK_ALLOWED_HOSTS", default_value = "")]
    pub webhook_allowed_hosts: String,

    /// 32-byte key (64 hex digits or base64) that encrypts webhook secrets
    /// at rest. Unset: derived from SALESOPS_JWT_SECRET with HKDF-SHA256;
    /// with neither, createWebhook is refused.
    #[arg(long, env = "SALESOPS_WEBHOOK_KEY", hide_env_values = true)]
    pub webhook_key: Option<String>,

    /// Webhook deliveries in flight at once in this process, over all receivers.
    #[arg(long, env = "SALESOPS_WEBHOOK_MAX_IN_FLIGHT", default_value_t = 64)]
    pub webhook_max_in_flight: usize,

    /// Webhook deliveries in flight at once to one webhook, so a dead or
    /// slow receiver holds at most this many slots.
    #[arg(
        long,
        env = "SALESOPS_WEBHOOK_MAX_IN_FLIGHT_PER_RECEIVER",
        default_value_t = 4
    )]
    pub webhook_max_in_flight_per_receiver: usize,

    // --- Client conventions: persisted queries, subscriptions (issue 14). ---
    /// Bytes of query text kept for Automatic Persisted Queries (Apollo's
    /// `persistedQuery` extension); 0 turns APQ off.
    #[arg(long, env = "SALESOPS_APQ_CACHE_BYTES", default_value_t = 1_048_576)]
    pub apq_cache_bytes: usize,

    /// Allow-list mode: a `.graphql` file, a directory of them, or an Apollo
    /// persisted-query manifest (`.json`). When set, only these documents
    /// run (sent in full or by their SHA-256); any other answers
    /// PERSISTED_QUERY_NOT_ALLOWED.
    #[arg(long, env = "SALESOPS_PERSISTED_DOCUMENTS")]
    pub persisted_documents: Option<String>,

    /// WebSocket connections for subscriptions open at once; more are
    /// refused with HTTP 503.
    #[arg(long, env = "SALESOPS_MAX_WS_CONNECTIONS", default_value_t = 256)]
    pub max_ws_connections: usize,

    /// Subscriptions one WebSocket connection may hold at once.
    #[arg(
        long,
        env = "SALESOPS_MAX_SUBSCRIPTIONS_PER_CONNECTION",
        default_value_t = 16
    )]
    pub max_subscriptions_per_connection: usize,

    /// How often committed changes are read for subscriptions, in ms.
    #[arg(long, env = "SALESOPS_LIVE_POLL_MS", default_value_t = 250)]
    pub live_poll_ms: u64,

    /// The Authorization header GraphiQL opens with (set by `serve --demo`
    /// to its admin token; never from the environment).
    #[arg(skip)]
    pub graphiql_token: Option<String>,

    /// A clock that can be set while the application runs (tests that need
    /// a fixed calendar; never from the environment). None: the system
    /// clock.
    #[arg(skip)]
    pub clock: Option<std::sync::Arc<crate::clock::ManualClock>>,

    // --- BI exports (issue 16). ---
    /// Rows an export reads per statement (keyset batches in id order):
    /// the memory one export holds and the granularity of stopping when
    /// its client leaves.
    #[arg(long, env = "SALESOPS_EXPORT_BATCH_ROWS", default_value_t = 5_000)]
    pub export_batch_rows: u64,

    // --- Scale-out: reads on a streaming replica (issue 19). ---
    /// Milliseconds of replica staleness past which queries read the
    /// primary (measured from WAL positions, see core/src/replica.rs).
    #[arg(long, env = "SALESOPS_READ_MAX_LAG_MS", default_value_t = 5_000)]
    pub read_max_lag_ms: u64,

    /// How often the replica's lag is measured, in milliseconds.
    #[arg(long, env = "SALESOPS_READ_LAG_POLL_MS", default_value_t = 250)]
    pub read_lag_poll_ms: u64,

    /// Where replica positions come from (tests; never from the
    /// environment). None: asked of PostgreSQL when both databases are
    /// PostgreSQL, otherwise not measured.
    #[arg(skip)]
    pub read_lag_source: Option<std::sync::Arc<dyn crate::replica::LagSource>>,
}

/// Wrapper so a Config can be read from the environment alone.
#[derive(clap::Parser)]
struct EnvOnly {
    #[command(flatten)]
    config: Config,
}

impl Config {
    /// Settings from the environment and defaults, without command-line flags.
    pub fn from_env() -> Self {
        <EnvOnly as clap::Parser>::parse_from(["salesops"]).config
    }

    pub fn db_acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.db_acquire_timeout_ms)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms.max(1))
    }

    /// None: leave PostgreSQL's parallel-worker setting alone.
    pub fn parallel_workers(&self) -> Option<u32> {
        u32::try_from(self.db_parallel_workers).ok()
    }

    pub fn statement_timeout(&self) -> Option<Duration> {
        (self.statement_timeout_ms > 0).then(|| Duration::from_millis(self.statement_timeout_ms))
    }
}
