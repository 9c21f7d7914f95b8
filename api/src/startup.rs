//! Building and running the HTTP application.
use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use sea_orm::DatabaseConnection;

use crate::auth::JwtKeys;
use crate::config::Config;
use crate::db::{self, PoolSettings, StatementObserver};
use crate::graphql::{self, AppSchema, AppSchemas, Limits, Shared};
use crate::http::{self, AppState, Settings};
use crate::observability::Metrics;
use crate::service::deal::DealRules;
use crate::webhook_worker::{Worker, WorkerControl, WorkerSettings};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Keys(#[from] crate::auth::KeyError),
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error("cannot listen on {0}: {1}")]
    Bind(String, std::io::Error),
    #[error("webhooks: {0}")]
    Worker(String),
    #[error("{0}")]
    Setting(String),
}

/// Connects the primary (and the read replica, if configured), counting
/// every statement into `metrics`.
pub async fn connect(
    cfg: &Config,
    pool: &PoolSettings,
    metrics: &Arc<Metrics>,
) -> Result<(DatabaseConnection, DatabaseConnection), sea_orm::DbErr> {
    let m = metrics.clone();
    let observer: StatementObserver =
        Arc::new(move |elapsed, failed| m.record_statement(elapsed, failed));
    let primary = db::connect(&cfg.database_url, pool, Some(observer.clone())).await?;
    let read = match &cfg.read_database_url {
        Some(url) => db::connect(url, pool, Some(observer)).await?,
        None => primary.clone(),
    };
    Ok((primary, read))
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres")
}

pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
    worker: Option<Worker>,
    /// Folds rollup deltas into their cells (service/rollup.rs).
    compactor: Option<tokio::task::JoinHandle<()>>,
}

/// Stops a running application from elsewhere (tests, restarts).
#[derive(Clone)]
pub struct AppHandle {
    server: actix_web::dev::ServerHandle,
    worker: Option<WorkerControl>,
}

impl AppHandle {
    /// Stops accepting requests and stops the webhook worker. `graceful`
    /// lets requests and deliveries in flight finish; otherwise the worker
    /// is dropped mid-delivery, as in a crash.
    pub async fn stop(&self, graceful: bool) {
        if let Some(w) = &self.worker {
            if graceful {
                w.stop();
            } else {
                w.kill();
            }
        }
        self.server.stop(graceful).await;
    }
}

impl Application {
    /// Binds the configured address (port 0 picks a free port) and wires the
    /// routes. The databases must already be migrated.
    pub async fn build(
        cfg: &Config,
        db: DatabaseConnection,
        read_db: DatabaseConnection,
        metrics: Arc<Metrics>,
    ) -> Result<Self, StartupError> {
        crate::webhook_worker::install_tls_provider();
        let jwt = Arc::new(JwtKeys::from_config(cfg)?);
        let settings = Arc::new(Settings {
            deal_rules: DealRules {
                currency: cfg.currency.trim().to_uppercase(),
            },
            max_page_size: cfg.max_page_size,
            max_body_bytes: cfg.max_body_bytes,
            max_complexity: cfg.max_query_complexity,
            max_depth: cfg.max_query_depth,
            max_rows_per_request: cfg.max_rows_per_request,
            metrics_token: cfg.metrics_token.clone().filter(|t| !t.is_empty()),
            graphiql_token: cfg.graphiql_token.clone(),
            clock: cfg.clock.clone(),
            export_batch_rows: cfg.export_batch_rows.max(1),
        });
        let reads = match &cfg.read_database_url {
            None => crate::replica::ReadRouter::primary_only(db.clone()),
            Some(url) => {
                let source: Option<Arc<dyn crate::replica::LagSource>> = match &cfg.read_lag_source
                {
                    Some(s) => Some(s.clone()),
                    None if is_postgres(url) && is_postgres(&cfg.database_url) => {
                        let (max, acquire, statement) = crate::replica::LAG_POOL;
                        let small = crate::db::PoolSettings {
                            max_connections: max,
                            min_connections: 1,
                            acquire_timeout: acquire,
                            statement_timeout: Some(statement),
                            parallel_workers: None,
                        };
                        Some(Arc::new(crate::replica::PgLagSource::new(
                            crate::db::connect(&cfg.database_url, &small, None).await?,
                            crate::db::connect(url, &small, None).await?,
                        )))
                    }
                    // SQLite has no WAL positions: the replica is read.
                    None => None,
                };
                crate::replica::ReadRouter::new(
                    db.clone(),
                    read_db,
                    source,
                    crate::replica::LagSettings {
                        max_lag: std::time::Duration::from_millis(cfg.read_max_lag_ms),
                        poll: std::time::Duration::from_millis(cfg.read_lag_poll_ms),
                    },
                )
            }
        };
        let state = AppState {
            db,
            reads,
            jwt,
            settings,
            metrics,
            documents: Arc::new(crate::documents::DocumentCache::with_budget(
                cfg.document_cache_bytes,
            )),
            cost: Arc::new(crate::graphql::cost::CostModel::from_sdl(
                &graphql::sdl(),
                cfg.max_page_size,
            )),
            work: Arc::new({
                let mut limits = crate::work::WorkLimits::new(
                    crate::db::pool_size(&cfg.database_url, cfg.db_max_connections),
                    cfg.max_heavy_per_request,
                    cfg.request_timeout(),
                )
                .with_parallel_workers(
                    cfg.parallel_workers()
                        .filter(|_| is_postgres(&cfg.database_url)),
                );
                limits.rollups = cfg.rollups;
                limits
            }),
            active_reps: Default::default(),
            admission: Arc::new(crate::admission::CostAdmission::new(cfg.max_cost_in_flight)),
            persisted: Arc::new(crate::persisted::Persisted::new(
                cfg.apq_cache_bytes,
                match &cfg.persisted_documents {
                    Some(path) if !path.is_empty() => Some(
                        crate::persisted::load_allow_list(path).map_err(StartupError::Setting)?,
                    ),
                    _ => None,
                },
            )),
        };
        let limits = Limits {
            max_depth: cfg.max_query_depth,
            max_complexity: cfg.max_query_complexity,
        };
        let webhooks = crate::service::webhook::WebhookSettings::from_config(cfg)
            .map_err(StartupError::Worker)?;
        let shared = Shared {
            db: state.db.clone(),
            deal_rules: state.settings.deal_rules.clone(),
            max_page_size: state.settings.max_page_size,
        };
        let live = crate::live::LiveFeed::spawn(
            state.db.clone(),
            std::time::Duration::from_millis(cfg.live_poll_ms),
        );
        let schemas = AppSchemas::build(|| {
            graphql::schema_builder(&limits)
                .data(shared.clone())
                .data(webhooks.clone())
                .data(live.clone())
        });
        let schema: AppSchema = schemas.strict.clone();
        let ws_limits = Arc::new(crate::ws::WsLimits::new(
            cfg.max_ws_connections,
            cfg.max_subscriptions_per_connection,
        ));
        let listener =
            TcpListener::bind(&cfg.bind).map_err(|e| StartupError::Bind(cfg.bind.clone(), e))?;
        let port = listener
            .local_addr()
            .map_err(|e| StartupError::Bind(cfg.bind.clone(), e))?
            .port();
        let max_body = cfg.max_body_bytes;
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(app_state.clone()))
                .app_data(web::Data::new(schema.clone()))
                .app_data(web::Data::new(schemas.clone()))
                .app_data(web::PayloadConfig::new(max_body))
                .app_data(web::Data::new(ws_limits.clone()))
                // WebSocket upgrades of /graphql first (routes match in order).
                .configure(crate::ws::routes)
                .configure(http::routes)
                // BI exports (api/src/export): tables as CSV and NDJSON.
                .configure(crate::export::routes)
        })
        // A client that closes its connection abandons its request: it is
        // dropped (and its SQL cancelled) instead of running to the end.
        .h1_allow_half_closed(false)
        .listen(listener)
        .map_err(|e| StartupError::Bind(cfg.bind.clone(), e))?
        // Requests in flight at SIGTERM may run to their deadline.
        .shutdown_timeout(cfg.request_timeout().as_secs() + 5)
        .run();
        // The webhook worker shares the pool but never holds a connection
        // while it waits on a receiver.
        let worker = if cfg.webhook_worker {
            Some(
                Worker::spawn(state.db.clone(), WorkerSettings::from_config(cfg, webhooks))
                    .map_err(StartupError::Worker)?,
            )
        } else {
            None
        };
        let compactor = (cfg.rollup_compact_ms > 0).then(|| {
            crate::service::rollup::spawn_compactor(
                state.db.clone(),
                std::time::Duration::from_millis(cfg.rollup_compact_ms),
            )
        });
        Ok(Self {
            port,
            server,
            state,
            worker,
            compactor,
        })
    }

    /// Stops the server and the webhook worker together.
    pub fn app_handle(&self) -> AppHandle {
        AppHandle {
            server: self.server.handle(),
            worker: self.worker.as_ref().map(Worker::control),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops the server: `stop(true)` finishes in-flight requests first, as
    /// SIGTERM and SIGINT do.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT/SIGTERM; in-flight requests are finished first,
    /// then the webhook worker finishes its round and stops.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        if let Some(c) = self.compactor {
            c.abort();
        }
        if let Some(worker) = self.worker {
            worker.shutdown().await;
        }
        result
    }
}
