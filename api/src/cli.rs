//! The `salesops` command line.
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::auth::{self, JwtKeys, Role};
use crate::config::Config;
use crate::db::{self, PoolSettings};
use crate::observability::Metrics;
use crate::startup::{self, Application};
use crate::{graphql, seed, telemetry};

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
        /// Seed realistic demo data into an empty database, generate a JWT
        /// secret if none is set, and print an admin token.
        #[arg(long)]
        demo: bool,
        #[command(flatten)]
        config: Config,
    },
    /// Apply pending migrations and exit.
    Migrate {
        #[command(flatten)]
        config: Config,
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
        config: Config,
    },
    /// Print a signed JWT for an operator or integration.
    Token {
        #[arg(long)]
        role: Role,
        #[arg(long)]
        sub: String,
        /// The rep a REP or MANAGER token acts as.
        #[arg(long)]
        rep_id: Option<i64>,
        /// Lifetime, e.g. 30m, 1h, 7d.
        #[arg(long, default_value = "1h", value_parser = auth::parse_ttl)]
        ttl: std::time::Duration,
        #[command(flatten)]
        config: Config,
    },
    /// Print the GraphQL schema (SDL).
    Schema,
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
    let mut pool = PoolSettings::from_config(config);
    if batch {
        pool.statement_timeout = None;
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
        Command::Migrate { config } => {
            telemetry::init(&config.log_format);
            let metrics = Arc::new(Metrics::default());
            open(&config, &metrics, true).await;
            println!("migrations applied to {}", redact(&config.database_url));
        }
        Command::Seed {
            demo,
            deals,
            seed: seed_value,
            config,
        } => {
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
            println!(
                "seeded {} territories, {} reps, {} accounts, {} deals ({} stage changes) in {:.1}s",
                summary.territories,
                summary.reps,
                summary.accounts,
                summary.deals,
                summary.stage_changes,
                started.elapsed().as_secs_f64()
            );
        }
        Command::Token {
            role,
            sub,
            rep_id,
            ttl,
            config,
        } => {
            let keys = JwtKeys::from_config(&config).unwrap_or_else(|e| fail(e));
            let token = keys
                .issue(&sub, role, rep_id, ttl)
                .unwrap_or_else(|e| fail(e));
            println!("{token}");
        }
        Command::Serve { demo, mut config } => {
            telemetry::init(&config.log_format);
            if demo && config.jwt_secret.is_none() && config.jwt_public_key.is_none() {
                config.jwt_secret = Some(auth::generate_secret());
            }
            // Fail before touching the database when no key is configured.
            let keys = JwtKeys::from_config(&config).unwrap_or_else(|e| fail(e));
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
            if demo {
                let token = keys
                    .issue(
                        "demo-admin",
                        Role::Admin,
                        None,
                        std::time::Duration::from_secs(7 * 86_400),
                    )
                    .unwrap_or_else(|e| fail(e));
                print_demo_banner(&url, &token);
            }
            tracing::info!(%url, "serving");
            if let Err(e) = app.run_until_stopped().await {
                fail(e);
            }
        }
    }
}

fn print_demo_banner(url: &str, token: &str) {
    println!(
        r#"
salesops demo is running at {url}
GraphiQL: open {url} in a browser and add the header
  {{"Authorization": "Bearer {token}"}}

Admin token (valid 7 days):
  export TOKEN={token}

Try:
  curl -s {url} -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{{"query":"{{ me {{ subject role }} deals(first: 5, orderBy: AMOUNT_DESC) {{ totalCount nodes {{ name amount stage {{ name }} owner {{ name }} }} }} }}"}}'

  curl -s {url} -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{{"query":"{{ reps(first: 5) {{ name title territory {{ name }} quotas {{ period amount }} }} }}"}}'
"#
    );
}
