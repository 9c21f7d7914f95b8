//! Operating under stress: an exhausted pool answers a clear error instead
//! of hanging, a graceful stop finishes in-flight requests, and the
//! statement timeout cancels runaway SQL.
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::{json, Value};

use crate::helpers::{create_schema, spawn_app_with, with_search_path, Backend};

/// A pool of `max_connections` for a test that connects on its own: one
/// kept open, 5 s to acquire, no statement timeout, parallel workers (2)
/// for a heavy statement alone.
fn test_pool(max_connections: u32) -> api::db::PoolSettings {
    api::db::PoolSettings {
        max_connections,
        min_connections: 1,
        acquire_timeout: Duration::from_secs(5),
        statement_timeout: None,
        parallel_workers: Some(2),
    }
}

async fn pool_exhaustion_is_a_clear_error(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| {
        c.db_max_connections = 1;
        c.db_min_connections = 1;
        c.db_acquire_timeout_ms = 300;
    })
    .await
    else {
        return;
    };
    app.ok("{ stages { name } }", json!({})).await;
    // Hold the pool's only connection.
    let tx = app.db.begin().await.unwrap();
    let started = Instant::now();
    let body = app
        .gql(&app.admin_token(), "{ stages { name } }", json!({}))
        .await;
    assert!(started.elapsed() < Duration::from_secs(5), "no hang");
    assert_eq!(body["errors"][0]["extensions"]["code"], "INTERNAL");
    assert_eq!(
        body["errors"][0]["message"],
        "the database is busy, try again"
    );
    drop(tx);
    // The connection is back: requests succeed again.
    assert_eq!(
        app.ok("{ stages { name } }", json!({})).await["stages"][0]["name"],
        "Discovery"
    );
}

async fn graceful_stop_finishes_in_flight_requests(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| {
        c.db_max_connections = 1;
        c.db_min_connections = 1;
        c.db_acquire_timeout_ms = 5_000;
    })
    .await
    else {
        return;
    };
    let tx = app.db.begin().await.unwrap();
    // A request that waits for the held connection...
    let http = app.http.clone();
    let url = app.url.clone();
    let token = app.admin_token();
    let in_flight = tokio::spawn(async move {
        http.post(url)
            .bearer_auth(token)
            .json(&json!({ "query": "{ stages { name } }" }))
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ...is still answered after a graceful stop begins.
    let stopping = tokio::spawn(app.server.clone().stop(true));
    tokio::time::sleep(Duration::from_millis(300)).await;
    tx.rollback().await.unwrap();
    let res = in_flight
        .await
        .unwrap()
        .expect("in-flight request answered");
    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"]["stages"][0]["name"], "Discovery");
    stopping.await.unwrap();
    // And the server no longer accepts connections.
    assert!(app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .is_err());
}

/// PostgreSQL cancels a statement past SALESOPS_STATEMENT_TIMEOUT_MS; the
/// error reaches clients as QUERY_TOO_COMPLEX, never as database text.
#[tokio::test]
async fn statement_timeout_cancels_runaway_sql() {
    let Ok(url) = std::env::var("SALESOPS_TEST_DATABASE_URL") else {
        return;
    };
    let pool = api::db::PoolSettings {
        statement_timeout: Some(Duration::from_millis(100)),
        parallel_workers: None,
        ..test_pool(1)
    };
    let db = api::db::connect(&url, &pool, None).await.unwrap();
    let err = db
        .execute_unprepared("SELECT pg_sleep(2)")
        .await
        .unwrap_err();
    let app_err = api::error::AppError::from(err);
    assert_eq!(app_err.code(), "QUERY_TOO_COMPLEX");
    assert!(!app_err.to_string().contains("pg_sleep"));
    // Fast statements are unaffected.
    db.execute_unprepared("SELECT 1").await.unwrap();
}

/// A heavy statement that runs alone may use PostgreSQL's parallel workers
/// (SALESOPS_DB_PARALLEL_WORKERS); beside another heavy statement it runs
/// without them, and so does every other statement: the connection goes
/// back to the pool set back to none.
#[tokio::test]
async fn parallel_workers_only_for_a_heavy_statement_alone() {
    use api::request_db::RequestDb;
    use api::work::{heavy_permit, scope, RequestWork, WorkLimits};
    let Ok(url) = std::env::var("SALESOPS_TEST_DATABASE_URL") else {
        return;
    };
    let setting = || {
        sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT current_setting('max_parallel_workers_per_gather') AS v",
        )
    };
    async fn read(db: &RequestDb, stmt: sea_orm::Statement) -> String {
        let row = db.query_one_raw(stmt).await.unwrap().unwrap();
        row.try_get::<String>("", "v").unwrap()
    }
    // One connection: what heavy work set on it is set back.
    let one = RequestDb::new(
        api::db::connect(&url, &test_pool(1), None).await.unwrap(),
        None,
    );
    let limits = WorkLimits::new(1, 2, Duration::from_secs(30)).with_parallel_workers(Some(2));
    assert_eq!(read(&one, setting()).await, "0", "a cheap read");
    let alone = scope(RequestWork::new(&limits), async {
        let _heavy = heavy_permit();
        read(&one, setting()).await
    })
    .await;
    assert_eq!(alone, "2", "a heavy statement alone");
    assert_eq!(
        read(&one, setting()).await,
        "0",
        "the same connection after it"
    );

    // Beside another request's heavy statement: none.
    let db = api::db::connect(&url, &test_pool(4), None).await.unwrap();
    let limits = WorkLimits::new(4, 2, Duration::from_secs(30)).with_parallel_workers(Some(2));
    let sleeper = RequestDb::new(db.clone(), None);
    let other = RequestWork::new(&limits);
    let sleeping = tokio::spawn(scope(other, async move {
        let _heavy = heavy_permit();
        sleeper
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DatabaseBackend::Postgres,
                "SELECT pg_sleep(1)",
            ))
            .await
            .unwrap();
    }));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reader = RequestDb::new(db.clone(), None);
    let beside = scope(RequestWork::new(&limits), async {
        let _heavy = heavy_permit();
        read(&reader, setting()).await
    })
    .await;
    assert_eq!(beside, "0", "a heavy statement beside another");
    sleeping.await.unwrap();
}

/// Cheap reads on PostgreSQL hand their connection to the next read
/// instead of giving it back to sqlx's pool (whose ping on every return
/// was a second round trip per statement): the next read runs on the same
/// backend, at most half the pool is held so, a read that failed or was
/// abandoned gives its connection back to the pool, and connections left
/// unused go back after the linger.
#[tokio::test]
async fn cheap_reads_keep_their_connections_warm() {
    use api::request_db::RequestDb;
    use api::warm_connections::{WarmConnections, LINGER};
    let Ok(url) = std::env::var("SALESOPS_TEST_DATABASE_URL") else {
        return;
    };
    let db = api::db::connect(&url, &test_pool(4), None).await.unwrap();
    let pool = db.get_postgres_connection_pool().clone();
    let warm = WarmConnections::of(&db).expect("a PostgreSQL pool of 4");
    let reads = RequestDb::new(db.clone(), None).with_warm(Some(warm.clone()));
    let sql = |s: &str| sea_orm::Statement::from_string(sea_orm::DatabaseBackend::Postgres, s);
    async fn pid(db: &RequestDb, stmt: sea_orm::Statement) -> i32 {
        let row = db.query_one_raw(stmt).await.unwrap().unwrap();
        row.try_get::<i32>("", "pid").unwrap()
    }
    let first = pid(&reads, sql("SELECT pg_backend_pid() AS pid")).await;
    assert_eq!((warm.held(), warm.waiting()), (1, 1));
    for _ in 0..5 {
        assert_eq!(
            pid(&reads, sql("SELECT pg_backend_pid() AS pid")).await,
            first,
            "the next read runs on the same connection"
        );
    }
    assert_eq!((warm.held(), warm.waiting()), (1, 1));

    // Three reads at once: two connections held (half the pool of 4), the
    // third read's from the pool goes back to it.
    let slow = "SELECT pg_backend_pid() AS pid, pg_sleep(0.3)";
    let pids = futures::future::join_all((0..3).map(|_| pid(&reads, sql(slow)))).await;
    assert_eq!(
        pids.iter().collect::<std::collections::HashSet<_>>().len(),
        3
    );
    assert_eq!((warm.held(), warm.waiting()), (2, 2));

    // A failed read's connection goes back to the pool (its ping drains
    // what the error left), and reads go on.
    let failed = reads.query_one_raw(sql("SELECT 1 / 0 AS pid")).await;
    assert!(failed.is_err());
    assert_eq!((warm.held(), warm.waiting()), (1, 1));
    // An abandoned read's too; the next read on the same connection
    // answers its own statement.
    let abandoned = tokio::time::timeout(
        Duration::from_millis(100),
        reads.query_one_raw(sql("SELECT pg_backend_pid() AS pid, pg_sleep(0.5)")),
    )
    .await;
    assert!(abandoned.is_err(), "timed out");
    assert_eq!((warm.held(), warm.waiting()), (0, 0));
    let row = reads
        .query_one_raw(sql("SELECT 42 AS answer"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get::<i32>("", "answer").unwrap(), 42);
    assert_eq!((warm.held(), warm.waiting()), (1, 1));

    // Unused for the linger: back in the pool, every connection idle there.
    assert!(pool.num_idle() < pool.size() as usize);
    tokio::time::sleep(LINGER * 3).await;
    assert_eq!((warm.held(), warm.waiting()), (0, 0));
    assert_eq!(pool.num_idle(), pool.size() as usize);
}

/// A cheap read dropped while it waits for the pool leaves no warm
/// connection counted: the next read is held again (a count left behind
/// by every abandoned wait would have turned the warm connections off).
#[tokio::test]
async fn a_read_abandoned_waiting_for_the_pool_leaves_no_count() {
    use api::request_db::RequestDb;
    use api::warm_connections::WarmConnections;
    let Ok(url) = std::env::var("SALESOPS_TEST_DATABASE_URL") else {
        return;
    };
    let db = api::db::connect(&url, &test_pool(2), None).await.unwrap();
    let pool = db.get_postgres_connection_pool().clone();
    let warm = WarmConnections::of(&db).expect("a PostgreSQL pool of 2");
    let reads = RequestDb::new(db.clone(), None).with_warm(Some(warm.clone()));
    let one =
        || sea_orm::Statement::from_string(sea_orm::DatabaseBackend::Postgres, "SELECT 1 AS one");
    // Both connections taken: the read waits for the pool, and is dropped.
    let taken = (pool.acquire().await.unwrap(), pool.acquire().await.unwrap());
    let waited = tokio::time::timeout(Duration::from_millis(200), reads.query_one_raw(one())).await;
    assert!(waited.is_err(), "the read waited for the pool");
    assert_eq!((warm.held(), warm.waiting()), (0, 0));
    drop(taken);
    reads.query_one_raw(one()).await.unwrap().unwrap();
    assert_eq!((warm.held(), warm.waiting()), (1, 1));
}

/// Warm connections outliving the runtime that used them (a process
/// tearing down) are dropped without a panic: sqlx spawns the return of a
/// dropped pool connection and panics when there is no runtime to spawn on.
#[test]
fn warm_connections_dropped_after_their_runtime_stopped() {
    use api::request_db::RequestDb;
    use api::warm_connections::WarmConnections;
    let Ok(url) = std::env::var("SALESOPS_TEST_DATABASE_URL") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let warm = rt.block_on(async {
        let db = api::db::connect(&url, &test_pool(4), None).await.unwrap();
        let warm = WarmConnections::of(&db).unwrap();
        RequestDb::new(db, None)
            .with_warm(Some(warm.clone()))
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DatabaseBackend::Postgres,
                "SELECT 1 AS one",
            ))
            .await
            .unwrap();
        warm
    });
    drop(rt);
    assert_eq!(warm.waiting(), 1);
    drop(warm);
}

/// With SALESOPS_READ_DATABASE_URL, queries read the replica and mutations
/// write (and read back) through the primary.
async fn reads_go_to_the_replica(backend: Backend) {
    let replica_url = match backend {
        Backend::Sqlite => {
            let path = std::env::temp_dir().join(format!(
                "salesops-replica-{}.db",
                uuid::Uuid::new_v4().simple()
            ));
            format!("sqlite://{}?mode=rwc", path.display())
        }
        Backend::Postgres => {
            let Ok(admin) = std::env::var("SALESOPS_TEST_DATABASE_URL") else {
                return;
            };
            with_search_path(&admin, &create_schema(&admin).await)
        }
    };
    // The replica holds different data than the primary, so the test sees
    // which one answered.
    let pool = api::db::PoolSettings {
        parallel_workers: None,
        ..test_pool(2)
    };
    let replica = api::db::connect(&replica_url, &pool, None).await.unwrap();
    api::db::migrate(&replica).await.unwrap();
    replica
        .execute_unprepared("INSERT INTO territory (name, created_at, updated_at) VALUES ('Replica only', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)")
        .await
        .unwrap();
    let url = replica_url.clone();
    let app = spawn_app_with(backend, move |c| c.read_database_url = Some(url))
        .await
        .unwrap();
    let names = |v: Value| -> Vec<String> {
        v["territories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names(app.ok("{ territories { name } }", json!({})).await),
        ["Replica only"]
    );
    // A mutation writes to the primary and reads its result back from it.
    let d = app
        .ok(
            "mutation { createTerritory(input: {name: \"Primary\"}) { name children { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        d["createTerritory"],
        json!({ "name": "Primary", "children": [] })
    );
    assert_eq!(app.count_rows("territory").await, 1);
    assert_eq!(
        names(app.ok("{ territories { name } }", json!({})).await),
        ["Replica only"]
    );
    // Clean up the replica.
    match backend {
        Backend::Sqlite => {
            let path = replica_url
                .trim_start_matches("sqlite://")
                .trim_end_matches("?mode=rwc")
                .to_owned();
            replica.close().await.ok();
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{path}{suffix}"));
            }
        }
        Backend::Postgres => {
            let schema = replica_url.rsplit("%3D").next().unwrap().to_owned();
            replica
                .execute_unprepared(&format!("DROP SCHEMA {schema} CASCADE"))
                .await
                .unwrap();
        }
    }
}

/// Operations whose cost does not fit beside those running wait for them
/// (SALESOPS_MAX_COST_IN_FLIGHT), then run: none is refused or lost.
async fn operations_wait_for_the_cost_in_flight(backend: Backend) {
    const Q: &str = "{ stages { name } }";
    let probe = {
        let Some(app) = spawn_app_with(backend, |_| {}).await else {
            return;
        };
        app.gql(&app.admin_token(), Q, json!({})).await["extensions"]["cost"]["requested"]
            .as_u64()
            .unwrap()
    };
    // Room for exactly one of them; one pooled connection, held below.
    let Some(app) = spawn_app_with(backend, |c| {
        c.max_cost_in_flight = probe as usize;
        c.db_max_connections = 1;
        c.db_min_connections = 1;
        c.db_acquire_timeout_ms = 20_000;
    })
    .await
    else {
        return;
    };
    assert_eq!(app.metric("salesops_cost_in_flight_limit").await, probe);
    let tx = app.db.begin().await.unwrap();
    let send = || {
        let (http, url, token) = (app.http.clone(), app.url.clone(), app.admin_token());
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth(token)
                .json(&json!({ "query": Q }))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        })
    };
    // The first is admitted and waits for the connection...
    let first = send();
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.metric("salesops_cost_in_flight").await != probe {
        assert!(Instant::now() < deadline, "the first was never admitted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ...the second does not fit beside it and waits for admission.
    let second = send();
    while app.metric("salesops_admission_waits_total").await != 1 {
        assert!(Instant::now() < deadline, "the second did not wait");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.metric("salesops_cost_in_flight").await, probe);
    drop(tx);
    for r in [first.await.unwrap(), second.await.unwrap()] {
        assert!(r.get("errors").is_none(), "{r}");
        assert_eq!(r["data"]["stages"][0]["name"], "Discovery");
    }
    assert_eq!(app.metric("salesops_cost_in_flight").await, 0);
}

mod pool {
    use super::*;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn admission_sqlite() {
        operations_wait_for_the_cost_in_flight(Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn admission_postgres() {
        operations_wait_for_the_cost_in_flight(Backend::Postgres).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn exhaustion_sqlite() {
        pool_exhaustion_is_a_clear_error(Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn exhaustion_postgres() {
        pool_exhaustion_is_a_clear_error(Backend::Postgres).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn read_replica_sqlite() {
        reads_go_to_the_replica(Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn read_replica_postgres() {
        reads_go_to_the_replica(Backend::Postgres).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn graceful_stop_sqlite() {
        graceful_stop_finishes_in_flight_requests(Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn graceful_stop_postgres() {
        graceful_stop_finishes_in_flight_requests(Backend::Postgres).await;
    }
}
