//! Operating under stress: an exhausted pool answers a clear error instead
//! of hanging, a graceful stop finishes in-flight requests, and the
//! statement timeout cancels runaway SQL.
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, Backend};

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
        max_connections: 1,
        min_connections: 1,
        acquire_timeout: Duration::from_secs(5),
        statement_timeout: Some(Duration::from_millis(100)),
        schema: None,
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

mod pool {
    use super::*;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn exhaustion_sqlite() {
        pool_exhaustion_is_a_clear_error(Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn exhaustion_postgres() {
        pool_exhaustion_is_a_clear_error(Backend::Postgres).await;
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
