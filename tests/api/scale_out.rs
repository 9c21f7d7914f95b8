//! Scale-out: queries read the replica within the configured lag and fall
//! back to the primary past it or when it is unreachable; a client reads
//! its own writes (in-process per principal, across processes with the
//! `Salesops-Read-After` header); several webhook workers on one database
//! deliver each event once. The replica here is another database with
//! different rows (so each answer shows where it was read) and its lag
//! comes from a hand-set source; bench/scale_out.py runs the same against a
//! real streaming replica.
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::auth::Role;
use api::replica::{format_lsn, ManualLag};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::{json, Value};

use crate::helpers::{create_schema, spawn_app_with, with_search_path, Backend, TestApp};
use crate::webhooks::{all_delivered, create_hook, new_deal, worker_app, Receiver};

/// A second database, migrated, holding one territory the primary lacks.
async fn replica_db(backend: Backend) -> Option<(String, DatabaseConnection)> {
    let url = match backend {
        Backend::Sqlite => {
            let path = std::env::temp_dir().join(format!(
                "salesops-scale-replica-{}.db",
                uuid::Uuid::new_v4().simple()
            ));
            format!("sqlite://{}?mode=rwc", path.display())
        }
        Backend::Postgres => {
            let admin = std::env::var("SALESOPS_TEST_DATABASE_URL")
                .ok()
                .filter(|u| !u.is_empty())?;
            with_search_path(&admin, &create_schema(&admin).await)
        }
    };
    let pool = api::db::PoolSettings {
        max_connections: 2,
        min_connections: 1,
        acquire_timeout: Duration::from_secs(5),
        statement_timeout: None,
        parallel_workers: None,
    };
    let db = api::db::connect(&url, &pool, None).await.unwrap();
    api::db::migrate(&db).await.unwrap();
    db.execute_unprepared(
        "INSERT INTO territory (name, created_at, updated_at) \
         VALUES ('Replica only', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
    )
    .await
    .unwrap();
    Some((url, db))
}

async fn drop_replica(backend: Backend, url: &str, db: DatabaseConnection) {
    match backend {
        Backend::Sqlite => {
            let path = url
                .trim_start_matches("sqlite://")
                .trim_end_matches("?mode=rwc")
                .to_owned();
            db.close().await.ok();
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{path}{suffix}"));
            }
        }
        Backend::Postgres => {
            let schema = url.rsplit("%3D").next().unwrap().to_owned();
            db.execute_unprepared(&format!("DROP SCHEMA {schema} CASCADE"))
                .await
                .unwrap();
        }
    }
}

const TERRITORIES: &str = "{ territories { name } }";

/// The territory names a query answers, and the response's
/// Salesops-Read-After header.
async fn post(
    app: &TestApp,
    token: &str,
    query: &str,
    read_after: Option<&str>,
) -> (reqwest::StatusCode, Value, Option<String>) {
    let mut req = app
        .http
        .post(&app.url)
        .bearer_auth(token)
        .json(&json!({ "query": query }));
    if let Some(h) = read_after {
        req = req.header("Salesops-Read-After", h);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let header = res
        .headers()
        .get("salesops-read-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, res.json().await.unwrap(), header)
}

async fn names(app: &TestApp, token: &str, read_after: Option<&str>) -> Vec<String> {
    let (_, body, _) = post(app, token, TERRITORIES, read_after).await;
    assert!(body.get("errors").is_none(), "{body:#}");
    let mut v: Vec<String> = body["data"]["territories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

async fn metrics(app: &TestApp) -> String {
    app.http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn counter(text: &str, line: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(line))
        .unwrap_or_else(|| panic!("no {line} in /metrics:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

/// Waits until `names` answers `want` (the monitor polls every 20 ms).
async fn eventually(app: &TestApp, token: &str, want: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = names(app, token, None).await;
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "still {got:?}, want {want:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const REPLICA: &[&str] = &["Replica only"];
const PRIMARY: &[&str] = &["Primary"];

async fn reads_follow_lag_and_writes(backend: Backend) {
    let Some((replica_url, replica)) = replica_db(backend).await else {
        return;
    };
    let lag = Arc::new(ManualLag::default());
    let (url, source) = (replica_url.clone(), lag.clone());
    let app = spawn_app_with(backend, move |c| {
        c.read_database_url = Some(url);
        c.read_lag_source = Some(source);
        c.read_max_lag_ms = 1_000;
        c.read_lag_poll_ms = 20;
    })
    .await
    .unwrap();
    let ana = app.token_for("ana", Role::Admin);
    let bob = app.token_for("bob", Role::Admin);
    // Caught up: queries read the replica.
    eventually(&app, &ana, REPLICA).await;

    // Ana writes at position 0/50 while the replica has replayed 0/1: the
    // answer carries the position, and Ana's next queries read the primary.
    lag.set(0x50, 1);
    let (status, body, header) = post(
        &app,
        &ana,
        "mutation { createTerritory(input: {name: \"Primary\"}) { id name } }",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body:#}");
    assert_eq!(body["data"]["createTerritory"]["name"], "Primary");
    let territory = body["data"]["createTerritory"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(header.as_deref(), Some("0/50"));
    assert_eq!(format_lsn(0x50), "0/50");
    assert_eq!(names(&app, &ana, None).await, PRIMARY);
    // Bob reads the replica, unless he carries Ana's position (as a client
    // of another API process would).
    assert_eq!(names(&app, &bob, None).await, REPLICA);
    assert_eq!(names(&app, &bob, Some("0/50")).await, PRIMARY);
    assert_eq!(names(&app, &bob, Some("0/1")).await, REPLICA);
    // A batch: the query after the mutation reads the primary.
    let (_, batch, header) = {
        let res = app
            .http
            .post(&app.url)
            .bearer_auth(&bob)
            .json(&json!([
                {
                    "query": "mutation($id: ID!) { updateTerritory(id: $id, patch: {region: \"EMEA\"}) { name } }",
                    "variables": { "id": territory }
                },
                { "query": TERRITORIES }
            ]))
            .send()
            .await
            .unwrap();
        let h = res
            .headers()
            .get("salesops-read-after")
            .map(|v| v.to_str().unwrap().to_owned());
        (res.status(), res.json::<Value>().await.unwrap(), h)
    };
    assert_eq!(header.as_deref(), Some("0/50"), "{batch:#}");
    assert_eq!(batch[1]["data"]["territories"][0]["name"], "Primary");
    // The replica replays 0/50: everyone reads it again.
    lag.set(0x50, 0x50);
    assert_eq!(names(&app, &ana, None).await, REPLICA);
    assert_eq!(names(&app, &bob, Some("0/50")).await, REPLICA);

    // Lag: the primary moves on and the replica stops; past 1 s every
    // query reads the primary, and the replica again once it catches up.
    let before = metrics(&app).await;
    lag.set(0x90, 0x50);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(names(&app, &bob, None).await, REPLICA);
    eventually(&app, &bob, PRIMARY).await;
    let during = metrics(&app).await;
    let lagged = |t: &str| counter(t, "salesops_reads_total{target=\"primary\",reason=\"lag\"}");
    assert!(lagged(&during) > lagged(&before));
    // The gauge is the lag at the last measurement (routing adds the
    // measurement's age): it passes 1 s too.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let gauge: f64 = metrics(&app)
            .await
            .lines()
            .find_map(|l| l.strip_prefix("salesops_replica_lag_seconds "))
            .unwrap()
            .parse()
            .unwrap();
        if gauge > 1.0 {
            break;
        }
        assert!(Instant::now() < deadline, "lag gauge {gauge}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    lag.set(0x90, 0x90);
    eventually(&app, &bob, REPLICA).await;

    // Unreachable: the primary answers; back when it answers again.
    lag.set_down(true);
    eventually(&app, &bob, PRIMARY).await;
    let down = metrics(&app).await;
    assert!(
        counter(
            &down,
            "salesops_reads_total{target=\"primary\",reason=\"unreachable\"}"
        ) > 0
    );
    assert!(down.contains("salesops_replica_lag_seconds -1"));
    lag.set_down(false);
    eventually(&app, &bob, REPLICA).await;

    // A malformed position is refused, nothing runs.
    for bad in ["yesterday", "0/", "1/2/3", "0/123456789"] {
        let (status, body, _) = post(&app, &bob, TERRITORIES, Some(bad)).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    }
    drop_replica(backend, &replica_url, replica).await;
}

/// The settings without a lag source: on SQLite the replica is simply read
/// (no positions); on PostgreSQL a read database that is not a standby is
/// current. Either way every answer is as without a replica.
async fn replica_settings_are_harmless(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| {
        c.read_database_url = Some(c.database_url.clone());
        c.read_max_lag_ms = 1;
        c.read_lag_poll_ms = 10;
    })
    .await
    else {
        return;
    };
    let rep = app.create_rep("Ana Lima", None, None, json!({})).await;
    let deal = app.create_deal(new_deal(&rep, "Initech")).await;
    let admin = app.admin_token();
    let update = format!(
        "mutation {{ updateDeal(id: \"{deal}\", patch: {{name: \"Initech 2\"}}) {{ name }} }}"
    );
    let (status, body, header) = post(&app, &admin, &update, None).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["updateDeal"]["name"], "Initech 2", "{body:#}");
    let q = format!("{{ deal(id: \"{deal}\") {{ name }} }}");
    // Read back at once, with and without the header.
    let (_, read, _) = post(&app, &admin, &q, header.as_deref()).await;
    assert_eq!(read["data"]["deal"]["name"], "Initech 2");
    let (_, read, _) = post(&app, &admin, &q, None).await;
    assert_eq!(read["data"]["deal"]["name"], "Initech 2");
    let text = metrics(&app).await;
    assert!(
        counter(
            &text,
            "salesops_reads_total{target=\"replica\",reason=\"fresh\"}"
        ) >= 2
    );
    for reason in ["lag", "unreachable", "read_after"] {
        assert_eq!(
            counter(
                &text,
                &format!("salesops_reads_total{{target=\"primary\",reason=\"{reason}\"}}")
            ),
            0,
            "{text}"
        );
    }
    match backend {
        // No positions on SQLite: no header, no lag gauge.
        Backend::Sqlite => {
            assert_eq!(header, None);
            assert!(!text.contains("salesops_replica_lag_seconds"));
        }
        // A position, and a lag of 0 (not a standby).
        Backend::Postgres => {
            assert!(api::replica::parse_lsn(header.as_deref().unwrap()).is_some());
            assert!(text.contains("salesops_replica_lag_seconds 0\n"), "{text}");
        }
    }
}

/// Four workers (one per API process in a scaled-out deployment) share one
/// outbox: every event reaches the receiver exactly once. Without the lease
/// rechecked on the locked row (webhook_worker.rs, `claim`), PostgreSQL
/// delivered 121-122 requests for the 120 events here.
async fn four_workers_deliver_each_event_once(backend: Backend) {
    let Some(app) = worker_app(backend, |c| {
        c.webhook_poll_ms = 5;
        c.webhook_max_in_flight_per_receiver = 64;
    })
    .await
    else {
        return;
    };
    let settings = api::webhook_worker::WorkerSettings::from_config(
        &app.config,
        api::service::webhook::WebhookSettings::from_config(&app.config).unwrap(),
    );
    let others: Vec<_> = (0..3)
        .map(|_| api::webhook_worker::Worker::spawn(app.db.clone(), settings.clone()).unwrap())
        .collect();
    let receiver = Receiver::start(0, Duration::ZERO).await;
    let (hook, _) = create_hook(&app, &receiver.url, json!(["DEAL_CREATED", "DEAL_UPDATED"])).await;
    let ana = app.create_rep("Ana Lima", None, None, json!({})).await;
    // Each deal is its own ordering queue, so many are claimable at once.
    let deals = 60;
    for i in 0..deals {
        let id = app.create_deal(new_deal(&ana, &format!("Deal {i}"))).await;
        app.ok(
            "mutation($id: ID!) { updateDeal(id: $id, patch: {name: \"Renamed\"}) { id } }",
            json!({ "id": id }),
        )
        .await;
    }
    let expected = deals * 2;
    receiver.wait_for(expected, Duration::from_secs(60)).await;
    let d = all_delivered(&app, &hook, expected, Duration::from_secs(30)).await;
    assert!(d.iter().all(|x| x["attemptCount"] == 1), "{d:#?}");
    // A duplicate would arrive within a poll or two.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = receiver.received();
    let ids: HashSet<String> = got
        .iter()
        .map(|r| r.header("x-salesops-event-id").to_owned())
        .collect();
    assert_eq!(got.len(), expected);
    assert_eq!(ids.len(), expected);
    for w in others {
        w.shutdown().await;
    }
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(crate::helpers::Backend::Sqlite).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if std::env::var("SALESOPS_TEST_DATABASE_URL").map_or(true, |v| v.is_empty()) {
                        eprintln!("SALESOPS_TEST_DATABASE_URL is not set: skipping the PostgreSQL run");
                        return;
                    }
                    super::$name(crate::helpers::Backend::Postgres).await;
                }
            }
        )*
    };
}

both!(
    reads_follow_lag_and_writes,
    replica_settings_are_harmless,
    four_workers_deliver_each_event_once
);
