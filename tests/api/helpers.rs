#![allow(dead_code)]
//! Test harness: every test starts the real server on a free port against a
//! fresh database (a temporary SQLite file, or a fresh PostgreSQL schema when
//! SALESOPS_TEST_DATABASE_URL is set) and talks GraphQL over HTTP with real
//! JWTs.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use api::auth::{JwtKeys, Role};
use api::config::Config;
use api::db::{self, PoolSettings};
use api::observability::Metrics;
use api::startup::{self, AppHandle, Application};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::{json, Value};

pub const TEST_SECRET: &str = "test-secret-0123456789abcdef0123456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs one async test body on SQLite and, when configured, on PostgreSQL:
/// `db_tests!(name, ...)` expects `async fn name(app: TestApp)` in scope and
/// makes the tests `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! db_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let app = $crate::helpers::spawn_app($crate::helpers::Backend::Sqlite).await.expect("sqlite app");
                    super::$name(app).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let Some(app) = $crate::helpers::spawn_app($crate::helpers::Backend::Postgres).await else {
                        eprintln!("SALESOPS_TEST_DATABASE_URL is not set: skipping the PostgreSQL run");
                        return;
                    };
                    super::$name(app).await;
                }
            }
        )*
    };
}

pub struct TestApp {
    pub url: String,
    pub base: String,
    pub http: reqwest::Client,
    /// A connection to the test database, for assertions on stored rows.
    pub db: DatabaseConnection,
    pub backend: Backend,
    pub config: Config,
    keys: Arc<JwtKeys>,
    /// Stops the server (`stop(true)` is graceful, like SIGTERM).
    pub server: actix_web::dev::ServerHandle,
    /// The server and its webhook worker, for stop and restart.
    handle: Option<AppHandle>,
    cleanup: Option<Cleanup>,
    stages: std::sync::OnceLock<HashMap<String, String>>,
}

enum Cleanup {
    File(String),
    Schema { admin_url: String, schema: String },
}

impl Drop for TestApp {
    fn drop(&mut self) {
        match self.cleanup.take() {
            Some(Cleanup::File(path)) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{path}{suffix}"));
                }
            }
            Some(Cleanup::Schema { admin_url, schema }) => {
                // Drop the schema from a separate thread with its own runtime:
                // Drop cannot await.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        if let Ok(db) = sea_orm::Database::connect(admin_url.as_str()).await {
                            let _ = db
                                .execute_unprepared(&format!(
                                    "DROP SCHEMA IF EXISTS {schema} CASCADE"
                                ))
                                .await;
                            let _ = db.close().await;
                        }
                    });
                })
                .join();
            }
            None => {}
        }
    }
}

/// The settings every test starts from, independent of the caller's
/// environment.
/// Server logs for a failing test: with RUST_LOG set (e.g. `RUST_LOG=warn`)
/// every app the harness starts writes its tracing events to the test's
/// captured output, so an INTERNAL answer shows the error behind it.
fn init_test_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("RUST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_test_writer()
                .try_init();
        }
    });
}

pub fn test_config() -> Config {
    init_test_logs();
    #[derive(clap::Parser)]
    struct P {
        #[command(flatten)]
        c: Config,
    }
    let mut cfg = <P as clap::Parser>::parse_from(["test"]).c;
    cfg.bind = "127.0.0.1:0".into();
    cfg.read_database_url = None;
    cfg.jwt_secret = Some(TEST_SECRET.into());
    cfg.jwt_public_key = None;
    cfg.jwt_private_key = None;
    cfg.jwt_issuer = "salesops".into();
    cfg.jwt_audience = "salesops".into();
    cfg.currency = "USD".into();
    cfg.max_query_depth = 15;
    cfg.max_query_complexity = 50_000;
    cfg.max_page_size = 500;
    cfg.max_body_bytes = 1_048_576;
    cfg.db_max_connections = 8;
    cfg.db_min_connections = 1;
    cfg.webhook_worker = false;
    // Tests compact rollups when they mean to (tests/api/rollups.rs): a
    // background compaction would add statements to the ones tests count.
    cfg.rollup_compact_ms = 0;
    // Test receivers listen on http://127.0.0.1: the default policy refuses
    // both (tests/api/webhook_security.rs proves it), so allow them here.
    cfg.webhook_allow_http = true;
    cfg.webhook_allowed_hosts = "127.0.0.1".into();
    // The system clock until a scenario sets it (TestApp::set_clock).
    cfg.clock = Some(Default::default());
    cfg
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

/// Starts the server with test settings adjusted by `configure`.
pub async fn spawn_app_with(
    backend: Backend,
    configure: impl FnOnce(&mut Config),
) -> Option<TestApp> {
    let mut cfg = test_config();
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let cleanup = match backend {
        Backend::Sqlite => {
            let path = std::env::temp_dir().join(format!("salesops-test-{unique}.db"));
            let path = path.to_string_lossy().to_string();
            cfg.database_url = format!("sqlite://{path}?mode=rwc");
            Cleanup::File(path)
        }
        Backend::Postgres => {
            let admin_url = std::env::var("SALESOPS_TEST_DATABASE_URL")
                .ok()
                .filter(|u| !u.is_empty())?;
            let name = create_schema(&admin_url).await;
            cfg.database_url = with_search_path(&admin_url, &name);
            Cleanup::Schema {
                admin_url,
                schema: name,
            }
        }
    };
    configure(&mut cfg);
    let pool = PoolSettings::from_config(&cfg);
    let metrics = Arc::new(Metrics::default());
    let (primary, read) = startup::connect(&cfg, &pool, &metrics)
        .await
        .expect("connect");
    db::migrate(&primary).await.expect("migrate");
    let app = Application::build(&cfg, primary.clone(), read, metrics)
        .await
        .expect("build app");
    let port = app.port();
    let server = app.handle();
    let handle = app.app_handle();
    tokio::spawn(app.run_until_stopped());
    let keys = Arc::new(JwtKeys::from_config(&cfg).expect("keys"));
    Some(TestApp {
        url: format!("http://127.0.0.1:{port}/graphql"),
        base: format!("http://127.0.0.1:{port}"),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap(),
        db: primary,
        backend,
        config: cfg,
        keys,
        server,
        handle: Some(handle),
        cleanup: Some(cleanup),
        stages: Default::default(),
    })
}

impl TestApp {
    /// Stops the server and its webhook worker; `graceful: false` drops the
    /// deliveries in flight, as a crash would.
    pub async fn stop(&mut self, graceful: bool) {
        if let Some(h) = self.handle.take() {
            h.stop(graceful).await;
        }
    }

    /// Stops the running server (see `stop`) and starts a new Application
    /// on the same database with the config adjusted by `configure`.
    pub async fn restart(&mut self, graceful: bool, configure: impl FnOnce(&mut Config)) {
        self.stop(graceful).await;
        configure(&mut self.config);
        // A fresh pool: connections opened by the old server's actix workers
        // are bound to their Tokio runtimes, which are gone now ("a Tokio
        // context ... is being shutdown" on the next query through them).
        let metrics = Arc::new(Metrics::default());
        let pool = PoolSettings::from_config(&self.config);
        let (primary, read) = startup::connect(&self.config, &pool, &metrics)
            .await
            .expect("reconnect");
        self.db = primary.clone();
        let app = Application::build(&self.config, primary, read, metrics)
            .await
            .expect("rebuild app");
        let port = app.port();
        self.url = format!("http://127.0.0.1:{port}/graphql");
        self.base = format!("http://127.0.0.1:{port}");
        self.server = app.handle();
        self.handle = Some(app.app_handle());
        tokio::spawn(app.run_until_stopped());
    }

    /// Sets the application's clock to `at` (RFC 3339): "now" is that
    /// instant until it is set again, so month boundaries and durations in
    /// S&OP scenarios are exact.
    /// Writes checked against "now" (a deal's closedAt must not be in the
    /// future) follow this clock too.
    pub fn set_clock(&self, at: &str) {
        let t: chrono::DateTime<chrono::Utc> = at.parse().expect("an RFC 3339 instant");
        self.config
            .clock
            .as_ref()
            .expect("test apps have a settable clock")
            .set(t);
    }

    /// A real signed token for a role (REP and MANAGER need a rep id).
    pub fn token(&self, role: Role, rep_id: Option<i64>) -> String {
        self.keys
            .issue(
                &format!("{}-tester", role.as_str().to_lowercase()),
                role,
                rep_id,
                Duration::from_secs(3600),
            )
            .expect("issue token")
    }

    /// A real signed token for a named user (its `sub`) with a role.
    pub fn token_for(&self, sub: &str, role: Role) -> String {
        self.keys
            .issue(sub, role, None, Duration::from_secs(3600))
            .expect("issue token")
    }

    pub fn admin_token(&self) -> String {
        self.token(Role::Admin, None)
    }

    /// POSTs a GraphQL request and returns the JSON body.
    pub async fn gql(&self, token: &str, query: &str, variables: Value) -> Value {
        let res = self
            .http
            .post(&self.url)
            .bearer_auth(token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("request");
        res.json().await.expect("json body")
    }

    /// POSTs any JSON body (operationName, batches, odd shapes) and returns
    /// the HTTP status and the JSON body.
    pub async fn post_raw(&self, token: &str, body: &Value) -> (u16, Value) {
        let res = self
            .http
            .post(&self.url)
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("the server answers");
        let status = res.status().as_u16();
        (status, res.json().await.expect("json body"))
    }

    /// As ADMIN; panics with the errors if there are any.
    pub async fn ok(&self, query: &str, variables: Value) -> Value {
        self.ok_as(&self.admin_token(), query, variables).await
    }

    /// As the given token; panics with the errors if there are any.
    pub async fn ok_as(&self, token: &str, query: &str, variables: Value) -> Value {
        let body = self.gql(token, query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    /// As `ok_as`, with the rollups on or off for this request
    /// (`Salesops-Rollups`, docs/design.md, Rollups).
    pub async fn ok_rollups(&self, token: &str, rollups: bool, query: &str, vars: &Value) -> Value {
        let body: Value = self
            .http
            .post(&self.url)
            .bearer_auth(token)
            .header("Salesops-Rollups", if rollups { "on" } else { "off" })
            .json(&json!({ "query": query, "variables": vars }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(body.get("errors").is_none(), "{query} {vars}: {body:#}");
        body["data"].clone()
    }

    /// The extensions.code of the first error (panics when there is none).
    pub async fn error_code(&self, token: &str, query: &str, variables: Value) -> String {
        let body = self.gql(token, query, variables).await;
        body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("expected an error, got {body:#}"))
            .to_owned()
    }

    /// SQL statements the server has executed so far (from GET /metrics).
    pub async fn statements(&self) -> u64 {
        self.metric("salesops_db_statements_total").await
    }

    /// An unlabelled counter or gauge from GET /metrics.
    pub async fn metric(&self, name: &str) -> u64 {
        let text = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /metrics"))
    }

    /// Stage ids by name.
    pub async fn stage(&self, name: &str) -> String {
        if self.stages.get().is_none() {
            let data = self.ok("{ stages { id name } }", json!({})).await;
            let map = data["stages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    (
                        s["name"].as_str().unwrap().to_owned(),
                        s["id"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            let _ = self.stages.set(map);
        }
        self.stages
            .get()
            .unwrap()
            .get(name)
            .unwrap_or_else(|| panic!("no stage {name}"))
            .clone()
    }

    pub async fn create_territory(
        &self,
        name: &str,
        segment: Option<&str>,
        parent: Option<&str>,
    ) -> String {
        let d = self
            .ok(
                "mutation($i: TerritoryInput!) { createTerritory(input: $i) { id } }",
                json!({ "i": { "name": name, "segment": segment, "parentId": parent } }),
            )
            .await;
        d["createTerritory"]["id"].as_str().unwrap().to_owned()
    }

    /// Creates a rep; `extra` is merged into the RepInput.
    pub async fn create_rep(
        &self,
        name: &str,
        manager: Option<&str>,
        territory: Option<&str>,
        extra: Value,
    ) -> String {
        let mut input = json!({
            "name": name,
            "email": format!("{}@example.com", name.to_lowercase().replace(' ', ".")),
            "managerId": manager,
            "territoryId": territory,
        });
        if let (Some(obj), Some(more)) = (input.as_object_mut(), extra.as_object()) {
            for (k, v) in more {
                obj.insert(k.clone(), v.clone());
            }
        }
        let d = self
            .ok(
                "mutation($i: RepInput!) { createRep(input: $i) { id } }",
                json!({ "i": input }),
            )
            .await;
        d["createRep"]["id"].as_str().unwrap().to_owned()
    }

    pub async fn create_account(&self, name: &str, territory: Option<&str>) -> String {
        let d = self
            .ok(
                "mutation($i: AccountInput!) { createAccount(input: $i) { id } }",
                json!({ "i": { "name": name, "territoryId": territory } }),
            )
            .await;
        d["createAccount"]["id"].as_str().unwrap().to_owned()
    }

    /// Creates a deal from a DealInput JSON object and returns its id.
    pub async fn create_deal(&self, input: Value) -> String {
        let d = self
            .ok(
                "mutation($i: DealInput!) { createDeal(input: $i) { id } }",
                json!({ "i": input }),
            )
            .await;
        d["createDeal"]["id"].as_str().unwrap().to_owned()
    }

    /// Moves a deal to a stage (by name) at an RFC 3339 instant.
    pub async fn move_deal(&self, deal: &str, stage: &str, at: &str) {
        let stage_id = self.stage(stage).await;
        self.ok(
            "mutation($id: ID!, $s: ID!, $at: DateTime) { moveDealStage(id: $id, stageId: $s, at: $at) { id } }",
            json!({ "id": deal, "s": stage_id, "at": at }),
        )
        .await;
    }

    pub async fn set_quota(&self, rep: &str, period: &str, amount: &str) {
        self.ok(
            "mutation($r: ID!, $p: Period!, $a: Decimal!) { setQuota(repId: $r, period: $p, amount: $a) { id } }",
            json!({ "r": rep, "p": period, "a": amount }),
        )
        .await;
    }

    /// Deals whose risk facts (kept on the row by the writers) differ from
    /// what their revisions, stage changes and activities say.
    pub async fn deals_with_stale_risk_facts(&self) -> i64 {
        self.count_rows(
            "deal d WHERE NOT (\
             d.first_amount_cents IS NOT DISTINCT FROM (SELECT r.amount_cents FROM deal_revision r \
               WHERE r.deal_id = d.id ORDER BY r.valid_from, r.version LIMIT 1) \
             AND d.pushed_at IS NOT DISTINCT FROM (CASE WHEN d.push_count > 0 THEN \
               (SELECT MIN(r.valid_from) FROM deal_revision r \
                WHERE r.deal_id = d.id AND r.push_count = d.push_count) END) \
             AND d.push_count = (SELECT r.push_count FROM deal_revision r WHERE r.deal_id = d.id \
               ORDER BY r.valid_from DESC, r.version DESC LIMIT 1) \
             AND d.stage_entered_at IS NOT DISTINCT FROM (SELECT MAX(c.changed_at) \
               FROM deal_stage_change c WHERE c.deal_id = d.id AND c.to_stage_id = d.stage_id) \
             AND d.last_activity_at IS NOT DISTINCT FROM (SELECT MAX(a.at) FROM activity a \
               WHERE a.deal_id = d.id))",
        )
        .await
    }

    /// Rollup cells (cells plus pending deltas) that differ from what the
    /// deal table says now.
    pub async fn rollup_drift(&self) -> i64 {
        api::service::rollup::drift(&self.db).await.unwrap()
    }

    /// Rows in a table (or `table alias WHERE ...`), straight from the database.
    pub async fn count_rows(&self, table: &str) -> i64 {
        #[derive(sea_orm::FromQueryResult)]
        struct N {
            n: i64,
        }
        let stmt = sea_orm::Statement::from_string(
            self.db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {table}"),
        );
        <N as sea_orm::FromQueryResult>::find_by_statement(stmt)
            .one(&self.db)
            .await
            .unwrap()
            .unwrap()
            .n
    }
}

/// A PostgreSQL URL whose connections use `schema` (tests isolate themselves
/// in a fresh schema each).
pub fn with_search_path(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

/// Creates an empty schema for a test and returns its name.
pub async fn create_schema(admin_url: &str) -> String {
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let admin = sea_orm::Database::connect(admin_url)
        .await
        .expect("connect to the test PostgreSQL");
    admin
        .execute_unprepared(&format!("CREATE SCHEMA {name}"))
        .await
        .expect("create schema");
    admin.close().await.ok();
    name
}

pub fn id_num(id: &str) -> i64 {
    id.parse().expect("numeric id")
}
