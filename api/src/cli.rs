//! The `salesops` command line.
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::auth::{self, JwtKeys, Role};
use crate::config::{Config, DEFAULT_DATABASE_URL};
use crate::db::{self, PoolSettings};
use crate::observability::Metrics;
use crate::service::rollup;
use crate::startup::{self, Application};
use crate::{graphql, preflight, seed, telemetry};

#[derive(Parser)]
#[command(
    name = "salesops",
    version,
    about = "Headless sales operations backend: a GraphQL API for reps, territories, deals, forecasts and S&OP."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate the database, then serve the API.
    Serve {
        /// Seed realistic demo data into an empty database and print an
        /// admin token. Without a configured key the JWT secret is kept in a
        /// file beside the SQLite database (`<file>.secret`, mode 0600), so
        /// tokens survive restarts and `salesops token` can mint more.
        #[arg(long)]
        demo: bool,
        #[command(flatten)]
        config: Box<Config>,
    },
    /// Apply pending migrations and exit.
    Migrate {
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Seed an empty database.
    Seed {
        /// The realistic demo organisation.
        #[arg(long, conflicts_with = "deals")]
        demo: bool,
        /// A synthetic organisation with this many deals (for benchmarks).
        #[arg(long)]
        deals: Option<usize>,
        /// Random seed of the synthetic data.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[command(flatten)]
        db: DatabaseArgs,
        /// The organisation's currency.
        #[arg(long, env = "SALESOPS_CURRENCY", default_value = "USD")]
        currency: String,
    },
    /// Print a signed JWT for an operator or integration.
    ///
    /// The key is SALESOPS_JWT_SECRET (HS256) or SALESOPS_JWT_PRIVATE_KEY with
    /// SALESOPS_JWT_PUBLIC_KEY; with neither, the demo's secret file beside the
    /// SQLite database of SALESOPS_DATABASE_URL, so the token works against
    /// `serve --demo`.
    Token {
        /// The token's role.
        #[arg(long, value_enum, ignore_case = true)]
        role: RoleArg,
        /// Who the token is for (the `sub` claim; shown in audit entries).
        #[arg(long)]
        sub: String,
        /// The rep a REP or MANAGER token acts as (required for those roles).
        #[arg(long)]
        rep_id: Option<i64>,
        /// Lifetime, e.g. 30m, 1h, 7d.
        #[arg(long, default_value = "1h", value_parser = auth::parse_ttl)]
        ttl: std::time::Duration,
        #[command(flatten)]
        keys: KeyArgs,
    },
    /// Print the GraphQL schema (SDL).
    Schema,
    /// The exact deal rollups metrics read (docs/design.md, Rollups).
    Rollups {
        /// check, rebuild or compact.
        #[arg(value_enum)]
        action: RollupAction,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum RollupAction {
    /// Count the cells that differ from the deal table (exit 1 if any).
    Check,
    /// Rebuild every cell from the deal table in one transaction (deal
    /// writes wait for it on PostgreSQL; reads do not).
    Rebuild,
    /// Fold the pending deltas into their cells now.
    Compact,
}

/// The database a command other than `serve` works on. Every other setting
/// still comes from its environment variable (see `salesops serve --help`).
#[derive(Args)]
struct DatabaseArgs {
    /// Database URL: sqlite://file.db?mode=rwc or postgres://user@host/db.
    #[arg(long, env = "SALESOPS_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    database_url: String,
}

impl DatabaseArgs {
    fn config(self) -> Config {
        let mut config = Config::from_env();
        config.database_url = self.database_url;
        config
    }
}

/// What `token` signs with.
#[derive(Args)]
struct KeyArgs {
    /// HS256 secret.
    #[arg(long, env = "SALESOPS_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// PEM public key of a key pair (RS256 or ES256).
    #[arg(long, env = "SALESOPS_JWT_PUBLIC_KEY")]
    jwt_public_key: Option<String>,
    /// The matching PEM private key.
    #[arg(long, env = "SALESOPS_JWT_PRIVATE_KEY")]
    jwt_private_key: Option<String>,
    /// The `iss` claim.
    #[arg(long, env = "SALESOPS_JWT_ISSUER", default_value = "salesops")]
    jwt_issuer: String,
    /// The `aud` claim.
    #[arg(long, env = "SALESOPS_JWT_AUDIENCE", default_value = "salesops")]
    jwt_audience: String,
    /// The demo's database, whose secret file is used when no key is set.
    #[arg(long, env = "SALESOPS_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    database_url: String,
}

impl KeyArgs {
    /// The settings `JwtKeys::from_config` reads, with the demo's secret
    /// when no key is configured and the file exists.
    fn config(self) -> Config {
        let mut config = Config::from_env();
        config.jwt_secret = self.jwt_secret;
        config.jwt_public_key = self.jwt_public_key;
        config.jwt_private_key = self.jwt_private_key;
        config.jwt_issuer = self.jwt_issuer;
        config.jwt_audience = self.jwt_audience;
        if config.jwt_secret.is_none() && config.jwt_public_key.is_none() {
            if let Some(path) = preflight::demo_secret_path(&self.database_url) {
                match preflight::read_demo_secret(&path) {
                    Ok(Some(secret)) => config.jwt_secret = Some(secret),
                    Ok(None) => {}
                    Err(e) => fail(format!("cannot read {}: {e}", path.display())),
                }
            }
        }
        config.database_url = self.database_url;
        config
    }
}

/// The roles a token may carry (docs: README, "Roles").
#[derive(Clone, Copy, ValueEnum)]
#[value(rename_all = "SCREAMING_SNAKE_CASE")]
enum RoleArg {
    /// Reads and writes everything, webhooks included.
    Admin,
    /// Reads and writes everything but webhooks.
    Ops,
    /// Its team, transitively (needs --rep-id).
    Manager,
    /// Its own deals and metrics (needs --rep-id).
    Rep,
    /// Reads everything, writes nothing (BI).
    Viewer,
    /// Reps, accounts and deals (middleware).
    Integration,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Admin => Role::Admin,
            RoleArg::Ops => Role::Ops,
            RoleArg::Manager => Role::Manager,
            RoleArg::Rep => Role::Rep,
            RoleArg::Viewer => Role::Viewer,
            RoleArg::Integration => Role::Integration,
        }
    }
}

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("salesops: {msg}");
    std::process::exit(1)
}

/// Connects and migrates. `batch` is for migrate and seed, whose long
/// statements (index builds, bulk COPY) must not hit the request timeout.
async fn open(
    config: &Config,
    metrics: &Arc<Metrics>,
    batch: bool,
) -> (sea_orm::DatabaseConnection, sea_orm::DatabaseConnection) {
    for url in std::iter::once(&config.database_url).chain(&config.read_database_url) {
        if let Err(e) = preflight::check_sqlite_file(url) {
            fail(format!("cannot open {}: {e}", redact(url)));
        }
        if let Err(e) = preflight::check_postgres_reachable(url).await {
            fail(format!("cannot connect to {}: {e}", redact(url)));
        }
    }
    let mut pool = PoolSettings::from_config(config);
    if batch {
        pool.statement_timeout = None;
        // A batch (seed, rebuild) is the only work: the database's own
        // parallel-worker setting.
        pool.parallel_workers = None;
    }
    let (primary, read) = startup::connect(config, &pool, metrics)
        .await
        .unwrap_or_else(|e| {
            fail(format!(
                "cannot connect to {}: {e}",
                redact(&config.database_url)
            ))
        });
    db::migrate(&primary)
        .await
        .unwrap_or_else(|e| fail(format!("migration failed: {e}")));
    (primary, read)
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

pub async fn run() {
    let cli = Cli::parse();
    match cli.command {
        Command::Schema => print!("{}", graphql::sdl()),
        Command::Rollups { action, db } => {
            let config = db.config();
            telemetry::init(&config.log_format);
            let metrics = Arc::new(Metrics::default());
            let (db, _) = open(&config, &metrics, true).await;
            let started = std::time::Instant::now();
            match action {
                RollupAction::Check => {
                    let drift = rollup::drift(&db).await.unwrap_or_else(|e| fail(e));
                    println!(
                        "{drift} rollup cells differ from the deals ({:.1}s)",
                        started.elapsed().as_secs_f64()
                    );
                    if drift > 0 {
                        eprintln!("run `salesops rollups rebuild` to rebuild them");
                        std::process::exit(1);
                    }
                }
                RollupAction::Rebuild => {
                    let r = rollup::rebuild(&db).await.unwrap_or_else(|e| fail(e));
                    println!(
                        "rebuilt {} rollup cells ({} differed from the deals before) in {:.1}s",
                        r.cells,
                        r.drifted,
                        started.elapsed().as_secs_f64()
                    );
                }
                RollupAction::Compact => {
                    let n = rollup::compact(&db).await.unwrap_or_else(|e| fail(e));
                    println!(
                        "folded {n} rollup deltas into their cells in {:.1}s",
                        started.elapsed().as_secs_f64()
                    );
                }
            }
        }
        Command::Migrate { db } => {
            let config = db.config();
            telemetry::init(&config.log_format);
            let metrics = Arc::new(Metrics::default());
            open(&config, &metrics, true).await;
            println!("migrations applied to {}", redact(&config.database_url));
        }
        Command::Seed {
            demo,
            deals,
            seed: seed_value,
            db,
            currency,
        } => {
            let mut config = db.config();
            config.currency = currency;
            telemetry::init(&config.log_format);
            let metrics = Arc::new(Metrics::default());
            let (db, _) = open(&config, &metrics, true).await;
            let started = std::time::Instant::now();
            let summary = match (demo, deals) {
                (_, Some(n)) => seed::synthetic(&db, n, seed_value, &config.currency).await,
                (true, None) => seed::demo(&db, &config.currency).await,
                (false, None) => fail("choose --demo or --deals N"),
            }
            .unwrap_or_else(|e| fail(e));
            // The deal triggers left the seed's rollup deltas: fold them.
            rollup::compact(&db).await.unwrap_or_else(|e| fail(e));
            println!(
                "seeded {} territories, {} reps, {} accounts, {} deals ({} stage changes), {} leads, {} activities in {:.1}s",
                summary.territories,
                summary.reps,
                summary.accounts,
                summary.deals,
                summary.stage_changes,
                summary.leads,
                summary.activities,
                started.elapsed().as_secs_f64()
            );
        }
        Command::Token {
            role,
            sub,
            rep_id,
            ttl,
            keys,
        } => {
            let role = Role::from(role);
            if matches!(role, Role::Rep | Role::Manager) && rep_id.is_none() {
                fail(format!(
                    "a {} token acts as a rep: add --rep-id <id> (list ids with the query {{ reps {{ id name title }} }})",
                    role.as_str()
                ));
            }
            let config = keys.config();
            let keys = JwtKeys::from_config(&config).unwrap_or_else(|e| {
                match preflight::demo_secret_path(&config.database_url) {
                    Some(path) if config.jwt_secret.is_none() && config.jwt_public_key.is_none() => {
                        fail(format!(
                            "{e} (no demo secret at {} either: start `serve --demo` once with this SALESOPS_DATABASE_URL)",
                            path.display()
                        ))
                    }
                    _ => fail(e),
                }
            });
            let token = keys
                .issue(&sub, role, rep_id, ttl)
                .unwrap_or_else(|e| fail(e));
            println!("{token}");
        }
        Command::Serve { demo, mut config } => {
            telemetry::init(&config.log_format);
            if demo && config.jwt_secret.is_none() && config.jwt_public_key.is_none() {
                config.jwt_secret = Some(demo_secret(&config.database_url));
            }
            // Fail before touching the database when no key is configured
            // or the address is taken.
            let keys = JwtKeys::from_config(&config).unwrap_or_else(|e| fail(e));
            preflight::check_bind(&config.bind).unwrap_or_else(|e| fail(e));
            let metrics = Arc::new(Metrics::default());
            let (primary, read) = open(&config, &metrics, false).await;
            if demo && seed::writer::is_empty(&primary).await.unwrap_or(false) {
                {
                    println!("seeding demo data (a few seconds)...");
                    let s = seed::demo(&primary, &config.currency)
                        .await
                        .unwrap_or_else(|e| fail(e));
                    println!(
                        "seeded {} reps, {} accounts, {} deals",
                        s.reps, s.accounts, s.deals
                    );
                }
            }
            // The demo's admin token, printed below and filled into
            // GraphiQL's headers.
            let demo_token = demo.then(|| {
                keys.issue(
                    "demo-admin",
                    Role::Admin,
                    None,
                    std::time::Duration::from_secs(7 * 86_400),
                )
                .unwrap_or_else(|e| fail(e))
            });
            config.graphiql_token = demo_token.clone();
            let app = Application::build(&config, primary, read, metrics)
                .await
                .unwrap_or_else(|e| fail(e));
            let url = format!(
                "http://{}:{}/graphql",
                config
                    .bind
                    .rsplit_once(':')
                    .map(|x| x.0)
                    .unwrap_or("127.0.0.1"),
                app.port()
            );
            if let Some(token) = &demo_token {
                print_demo_banner(&url, token);
            }
            tracing::info!(%url, "serving");
            if let Err(e) = app.run_until_stopped().await {
                fail(e);
            }
        }
    }
}

/// The demo's JWT secret: kept beside its SQLite database so printed tokens
/// survive restarts; random for a PostgreSQL demo (tokens then end with the
/// process, as the message says).
fn demo_secret(database_url: &str) -> String {
    let Some(path) = preflight::demo_secret_path(database_url) else {
        eprintln!(
            "salesops: no SALESOPS_JWT_SECRET set: the demo's tokens are valid until it stops \
             (set SALESOPS_JWT_SECRET to keep them)"
        );
        return auth::generate_secret();
    };
    match preflight::demo_secret(&path) {
        Ok((secret, created)) => {
            if created {
                println!("demo JWT secret created in {}", path.display());
            } else {
                println!("demo JWT secret read from {}", path.display());
            }
            secret
        }
        Err(e) => fail(format!(
            "cannot keep the demo secret in {}: {e}",
            path.display()
        )),
    }
}

fn print_demo_banner(url: &str, token: &str) {
    println!("{}", demo_banner(url, token));
}

/// What `serve --demo` prints; tests/api/readme.rs runs its curl examples.
pub fn demo_banner(url: &str, token: &str) -> String {
    format!(
        r#"
salesops demo is running at {url}
GraphiQL: open {url} in a browser (the Authorization header is filled in)

Admin token (valid 7 days):
  export TOKEN={token}
Tokens of other roles (README, "Demo tokens"), with the same SALESOPS_DATABASE_URL:
  salesops token --role VIEWER --sub bi

Try:
  curl -s {url} -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{{"query":"{{ me {{ subject role }} deals(first: 5, orderBy: AMOUNT_DESC) {{ totalCount nodes {{ name amount stage {{ name }} owner {{ name }} }} }} }}"}}'

  curl -s {url} -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{{"query":"{{ reps(first: 5) {{ name title territory {{ name }} quotas {{ period amount }} }} }}"}}'
"#
    )
}
