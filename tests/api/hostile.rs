//! Attacks an ordinary token can make on the request path, each performed at
//! a scale that runs in seconds, with the legitimate request beside it still
//! answered within a stated bound (issue: hardening). The full-size rerun is
//! bench/attacks.py.
use std::time::{Duration, Instant};

use api::auth::Role;
use serde_json::{json, Value};

use crate::db_tests;
use crate::helpers::{spawn_app_with, Backend, TestApp, TEST_SECRET};

/// `mod name { sqlite, postgres }` for a test that starts its own app with
/// adjusted settings: `async fn f(backend: Backend)`.
macro_rules! backend_tests {
    ($name:ident => $f:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$f(super::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$f(super::Backend::Postgres).await;
            }
        }
    };
}

/// The code of the first error of a raw response body.
fn first_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error, got {body:#}"))
}

/// The server still answers a cheap legitimate request, quickly.
async fn still_serves(app: &TestApp) {
    let started = Instant::now();
    let data = app.ok("{ me { role } }", json!({})).await;
    assert_eq!(data["me"]["role"], "ADMIN");
    let health = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(1));
}

async fn deep_nesting_is_refused_and_the_server_stays_up(app: TestApp) {
    let viewer = app.token(Role::Viewer, None);
    let n = 2_000;
    let list = format!(
        "{{ me(x: {}1{}) {{ role }} }}",
        "[".repeat(n),
        "]".repeat(n)
    );
    let object = format!(
        "{{ me(x: {}1{}) {{ role }} }}",
        "{a: ".repeat(n),
        "}".repeat(n)
    );
    let default = format!(
        "query($v: Int = {}1{}) {{ me {{ role }} }}",
        "[".repeat(n),
        "]".repeat(n)
    );
    let selections = format!("{{ {} role {} }}", "me { ".repeat(n), "}".repeat(n));
    for doc in [&list, &object, &default, &selections] {
        let (_, body) = app.post_raw(&viewer, &json!({ "query": doc })).await;
        assert_eq!(first_code(&body), "QUERY_TOO_COMPLEX", "{body}");
        assert!(body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nests brackets more than 64 levels"));
    }
    // Over GET too.
    let res = app
        .http
        .get(&app.url)
        .bearer_auth(&viewer)
        .query(&[("query", list.as_str())])
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(first_code(&body), "QUERY_TOO_COMPLEX");
    // Deep variables are refused by the JSON reader, not the stack.
    // (Built as text: a nested serde_json::Value this deep would overflow
    // the test's own stack when dropped.)
    let raw = format!(
        r#"{{"query":"query($v: Int) {{ me {{ role }} }}","variables":{{"v":{}1{}}}}}"#,
        "[".repeat(2_000),
        "]".repeat(2_000)
    );
    let res = app
        .http
        .post(&app.url)
        .bearer_auth(&viewer)
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    still_serves(&app).await;
}

async fn fragment_doubling_is_refused_before_validation(app: TestApp) {
    let viewer = app.token(Role::Viewer, None);
    // 2^20 copies of `me { role }` once expanded; 1 KB of text.
    let mut doc = String::from("query { ...F20 }\nfragment F0 on Query { me { role } }\n");
    for i in 1..=20 {
        doc.push_str(&format!(
            "fragment F{i} on Query {{ ...F{p} ...F{p} }}\n",
            p = i - 1
        ));
    }
    // Two attackers at once and a legitimate reader beside them.
    let attack = || async {
        let started = Instant::now();
        let (_, body) = app.post_raw(&viewer, &json!({ "query": doc })).await;
        (started.elapsed(), body)
    };
    let ((t1, b1), (t2, b2), ()) = tokio::join!(attack(), attack(), still_serves(&app));
    for (t, body) in [(t1, b1), (t2, b2)] {
        assert_eq!(first_code(&body), "QUERY_TOO_COMPLEX", "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("costs 2097152"), "{message}");
        assert!(
            message.contains("SALESOPS_MAX_QUERY_COMPLEXITY"),
            "{message}"
        );
        assert!(t < Duration::from_secs(1), "refused after {t:?}");
    }
}

async fn aliases_of_metrics_are_priced(app: TestApp) {
    let viewer = app.token(Role::Viewer, None);
    let aliases: String = (0..50)
        .map(|i| format!("f{i}: funnel(period: \"2026-Q1\") {{ stage {{ id }} }} "))
        .collect();
    let (status, body) = app
        .post_raw(&viewer, &json!({ "query": format!("{{ {aliases} }}") }))
        .await;
    // A request error; reqwest accepts */*, answered as application/json,
    // where a well-formed request is HTTP 200 (tests/api/http.rs).
    assert_eq!(status, 200);
    assert_eq!(first_code(&body), "QUERY_TOO_COMPLEX", "{body}");
    assert!(body["data"].is_null());
    // Nine fit in the default limit (a dashboard asks four to six).
    let ten: String = (0..9)
        .map(|i| format!("f{i}: funnel(period: \"2026-Q1\") {{ stage {{ id }} }} "))
        .collect();
    app.ok_as(&viewer, &format!("{{ {ten} }}"), json!({})).await;
    // A batch shares one budget.
    let nine: String = (0..6)
        .map(|i| format!("f{i}: funnel(period: \"2026-Q1\") {{ stage {{ id }} }} "))
        .collect();
    let batch: Vec<Value> = (0..3)
        .map(|_| json!({ "query": format!("{{ {nine} }}") }))
        .collect();
    let (_, body) = app.post_raw(&viewer, &json!(batch)).await;
    assert!(body[0].get("errors").is_none(), "{body:#}");
    assert_eq!(first_code(&body[1]), "QUERY_TOO_COMPLEX");
    assert!(body[1]["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("shared by the batch"));
}

async fn every_answer_states_its_cost(app: TestApp) {
    let viewer = app.token(Role::Viewer, None);
    let body = app
        .gql(
            &viewer,
            "{ me { role } reps(first: 3) { name } }",
            json!({}),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body:#}");
    assert_eq!(
        body["extensions"]["cost"],
        json!({ "requested": 2 + 1 + 3, "limit": 50_000 })
    );
}

async fn nested_lists_are_multiplied(app: TestApp) {
    let viewer = app.token(Role::Viewer, None);
    // Lists without paging under a paged list: 500 reps x 10 x 10 x 2.
    let doc = "{ reps { directReports { directReports { id email } } } }";
    assert_eq!(
        app.error_code(&viewer, doc, json!({})).await,
        "QUERY_TOO_COMPLEX"
    );
    // 100 territories x 10 reps x 500 deals: the 164,000-deal dump.
    let doc =
        "{ territories(first: 100) { reps { deals(first: 500) { nodes { id name amount } } } } }";
    assert_eq!(
        app.error_code(&viewer, doc, json!({})).await,
        "QUERY_TOO_COMPLEX"
    );
    // `first` from a variable counts as given.
    let doc = "query($n: Int) { reps(first: $n) { deals(first: $n) { nodes { id } } } }";
    assert_eq!(
        app.error_code(&viewer, doc, json!({ "n": 500 })).await,
        "QUERY_TOO_COMPLEX"
    );
    app.ok_as(&viewer, doc, json!({ "n": 20 })).await;
}

/// A series answers at most 50,000 points (groups x buckets): 19,600
/// weekly buckets per rep once answered 80 MB.
async fn series_points_are_capped(app: TestApp) {
    let summary = api::seed::synthetic(&app.db, 3_000, 11, "USD")
        .await
        .expect("seed");
    assert!(summary.reps >= 8);
    let viewer = app.token(Role::Viewer, None);
    let weekly = "{ metricSeries(metric: DEALS_WON, period: \"1900-01-01..2026-12-31\", granularity: WEEK, groupBy: REP) { value } }";
    let body = app.gql(&viewer, weekly, json!({})).await;
    assert_eq!(first_code(&body), "QUERY_TOO_COMPLEX", "{body:#}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("more than 50000"), "{message}");
    // Yearly over the same span, per rep: well inside the cap.
    let yearly = weekly.replace("WEEK", "YEAR");
    let data = app.ok_as(&viewer, &yearly, json!({})).await;
    let points = data["metricSeries"].as_array().unwrap().len();
    assert_eq!(points % 127, 0, "every rep has all 127 yearly buckets");
    assert!(points >= 127 * 8);
}

/// Heavy requests from four attackers at once leave connections for cheap
/// readers: with a pool of 4, heavy work holds at most one connection.
async fn heavy_work_leaves_the_pool_to_readers(app: TestApp) {
    api::seed::synthetic(&app.db, 20_000, 7, "USD")
        .await
        .expect("seed");
    let viewer = app.token(Role::Viewer, None);
    let deal = app
        .ok("{ deals(first: 1) { nodes { id } } }", json!({}))
        .await["deals"]["nodes"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let dashboard: String = (0..4)
        .map(|i| {
            format!(
                "f{i}: funnel(period: \"2026\") {{ stage {{ id }} }} w{i}: winRates(period: \"2026\", groupBy: REP) {{ winRate }} "
            )
        })
        .collect();
    let dashboard = format!("{{ {dashboard} }}");
    let attackers = (0..4).map(|_| {
        let viewer = viewer.clone();
        let dashboard = dashboard.clone();
        let app = &app;
        async move {
            let (_, body) = app.post_raw(&viewer, &json!({ "query": dashboard })).await;
            body
        }
    });
    let reader = async {
        // Let the attackers start first.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut worst = Duration::ZERO;
        for _ in 0..20 {
            let started = Instant::now();
            let data = app
                .ok_as(
                    &viewer,
                    "query($id: ID!) { deal(id: $id) { id name } }",
                    json!({ "id": deal }),
                )
                .await;
            assert_eq!(data["deal"]["id"], deal.as_str());
            worst = worst.max(started.elapsed());
        }
        worst
    };
    let (bodies, worst) = tokio::join!(futures::future::join_all(attackers), reader);
    assert!(worst < Duration::from_secs(1), "a reader waited {worst:?}");
    // The attackers' own work was not lost, only queued.
    for body in bodies {
        assert!(body.get("errors").is_none(), "{body:#}");
    }
}

async fn a_request_past_its_deadline_is_stopped(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.request_timeout_ms = 1).await else {
        return;
    };
    api::seed::synthetic(&app.db, 20_000, 3, "USD")
        .await
        .expect("seed");
    let viewer = app.token(Role::Viewer, None);
    let doc = "{ a: funnel(period: \"2026\") { stage { id } } b: winRates(period: \"2026\", groupBy: REP) { winRate } }";
    let body = app.gql(&viewer, doc, json!({})).await;
    assert_eq!(first_code(&body), "QUERY_TOO_COMPLEX", "{body}");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("SALESOPS_REQUEST_TIMEOUT_MS"));
}

/// A document of `n` weekly win-rate series over eleven years, each its own
/// heavy field (with one permit per request they run one after another): a
/// request slow enough to be interrupted.
fn weekly_series_doc(n: usize) -> String {
    let series: String = (0..n)
        .map(|i| {
            format!(
                "s{i}: metricSeries(metric: WIN_RATE, period: \"2016-01-01..2026-12-31\", granularity: WEEK, filter: {{ minAmount: \"{i}\" }}) {{ value }} "
            )
        })
        .collect();
    format!("{{ {series} }}")
}

/// A client that closes its connection mid-request abandons it: the request
/// is dropped (counted at /metrics) and its SQL cancelled, instead of running
/// to the end for nobody.
async fn a_client_that_leaves_abandons_its_request(backend: Backend) {
    use tokio::io::AsyncWriteExt;
    let Some(app) = spawn_app_with(backend, |c| c.max_heavy_per_request = 1).await else {
        return;
    };
    api::seed::synthetic(&app.db, 50_000, 5, "USD")
        .await
        .expect("seed");
    let viewer = app.token(Role::Viewer, None);
    let doc = weekly_series_doc(9);
    // How long it runs when the client waits.
    let started = Instant::now();
    app.ok_as(&viewer, &doc, json!({})).await;
    let full = started.elapsed();
    assert!(
        full > Duration::from_millis(150),
        "too fast to test: {full:?}"
    );
    let abandoned = || async {
        let page = app
            .http
            .get(format!("{}/metrics", app.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        page.lines()
            .find_map(|l| l.strip_prefix("salesops_requests_abandoned_total "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap()
    };
    assert_eq!(abandoned().await, 0);
    // The same request over a socket the client closes a quarter of the way in.
    let body = json!({ "query": doc }).to_string();
    let port = app.base.rsplit(':').next().unwrap();
    let mut socket = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {viewer}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(full / 4).await;
    let left = Instant::now();
    drop(socket);
    let mut count = 0;
    while count == 0 && left.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        count = abandoned().await;
    }
    assert_eq!(count, 1, "the request was not abandoned");
    // Dropped well before it would have finished.
    assert!(left.elapsed() < full, "{:?} vs {full:?}", left.elapsed());
    still_serves(&app).await;
}

/// SIGTERM lets the requests in flight finish (the shutdown waits for the
/// request deadline plus a margin, so no request is cut mid-way and no
/// connection is dropped outside its runtime).
async fn shutdown_drains_requests_in_flight(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.max_heavy_per_request = 1).await else {
        return;
    };
    api::seed::synthetic(&app.db, 20_000, 9, "USD")
        .await
        .expect("seed");
    let viewer = app.token(Role::Viewer, None);
    let doc = weekly_series_doc(6);
    let server = app.server.clone();
    let before = app.statements().await;
    let (body, ()) = tokio::join!(app.gql(&viewer, &doc, json!({})), async {
        // Stop once the request is running (its first statements counted),
        // not before it reached the server.
        let started = Instant::now();
        while app.statements().await <= before + 1 && started.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        server.stop(true).await;
    });
    assert!(body.get("errors").is_none(), "{body:#}");
    assert_eq!(body["data"]["s5"].as_array().unwrap().len(), 575);
}

backend_tests!(shutdown_drains => shutdown_drains_requests_in_flight);

backend_tests!(client_leaves => a_client_that_leaves_abandons_its_request);

/// Lists without paging are bounded by the rows they actually read: a
/// writer can make a deal's history as long as it likes.
async fn unpaged_lists_spend_a_row_budget(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.max_rows_per_request = 5).await else {
        return;
    };
    let rep = app.create_rep("Row Rep", None, None, json!({})).await;
    let first = app.stage("Discovery").await;
    for i in 0..3 {
        let deal = app
            .create_deal(json!({
                "name": format!("deal {i}"), "amount": "100", "ownerId": rep,
                "stageId": first, "openedAt": "2026-01-05T00:00:00Z",
            }))
            .await;
        if i > 0 {
            app.move_deal(&deal, "Qualified", "2026-01-10T00:00:00Z")
                .await;
            app.move_deal(&deal, "Demo", "2026-01-20T00:00:00Z").await;
        }
    }
    let doc = "{ deals(first: 10) { nodes { stageHistory { changedAt } } } }";
    let body = app.gql(&app.admin_token(), doc, json!({})).await;
    assert_eq!(first_code(&body), "QUERY_TOO_COMPLEX", "{body:#}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("more than 5 rows"), "{message}");
    assert!(
        message.contains("SALESOPS_MAX_ROWS_PER_REQUEST"),
        "{message}"
    );
    // Within the budget: the first deal's single change.
    let data = app
        .ok(
            "{ deals(first: 1, orderBy: UPDATED_ASC) { nodes { stageHistory { changedAt } } } }",
            json!({}),
        )
        .await;
    assert!(!data["deals"]["nodes"][0]["stageHistory"]
        .as_array()
        .unwrap()
        .is_empty());
}

backend_tests!(row_budget => unpaged_lists_spend_a_row_budget);

backend_tests!(deadline => a_request_past_its_deadline_is_stopped);

/// The cancellation itself, on a statement that would run for minutes: once
/// its request is dropped, the database stops it and the connection is free.
async fn abandoned_sql_is_cancelled(app: TestApp) {
    use api::db::Sql;
    use sea_orm::ConnectionTrait;
    let limits = api::work::WorkLimits::default();
    let work = api::work::RequestWork::new(&limits);
    let backend = app.db.get_database_backend();
    let slow = match app.backend {
        Backend::Postgres => Sql::new("SELECT pg_sleep(120)"),
        Backend::Sqlite => Sql::new(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000000000) \
             SELECT count(*) FROM c",
        ),
    };
    // What a request reads through (its statements counted nowhere here).
    let db = api::request_db::RequestDb::new(app.db.clone(), None);
    let guard = api::work::CancelOnDrop::new(work.clone());
    let run = api::work::scope(work.clone(), async move {
        let _guard = guard;
        // Heavy work (metrics, forecasts) is what runs this long; on
        // PostgreSQL its statements run on connections closed when dropped.
        let _heavy = api::work::heavy_permit();
        db.query_one_raw(slow.statement(backend)).await
    });
    let started = Instant::now();
    assert!(tokio::time::timeout(Duration::from_millis(300), run)
        .await
        .is_err());
    assert!(work.is_cancelled());
    // The statement ends within a second of the drop.
    let mut running = true;
    while running && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        running = match app.backend {
            Backend::Postgres => {
                let rows = app
                    .db
                    .query_all_raw(sea_orm::Statement::from_string(
                        backend,
                        "SELECT pid FROM pg_stat_activity WHERE query LIKE '%pg_sleep(120)%' \
                         AND pid <> pg_backend_pid() AND state = 'active'",
                    ))
                    .await
                    .unwrap();
                !rows.is_empty()
            }
            // On SQLite the pool hands out a connection only once the
            // interrupted statement has given its connection back.
            Backend::Sqlite => false,
        };
    }
    assert!(!running, "the abandoned statement still runs");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    still_serves(&app).await;
}

async fn metric_labels_are_bounded(app: TestApp) {
    let viewer = app.token(Role::Viewer, None);
    for i in 0..250 {
        let name = format!("Op{i}_{}", "x".repeat(10_000));
        let doc = format!("query {name} {{ me {{ role }} }}");
        app.ok_as(&viewer, &doc, json!({})).await;
    }
    let page = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // 200 labels of at most 64 bytes, each with its histogram lines.
    assert!(page.len() < 500_000, "{} bytes", page.len());
    assert!(page.contains("operation=\"other\""));
    assert!(!page.contains(&"x".repeat(65)));
}

async fn metrics_can_require_a_token(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| {
        c.metrics_token = Some("metrics-secret-123".into())
    })
    .await
    else {
        return;
    };
    let url = format!("{}/metrics", app.base);
    let res = app.http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let res = app
        .http
        .get(&url)
        .bearer_auth("metrics-secret-12")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = app
        .http
        .get(&url)
        .bearer_auth("metrics-secret-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("salesops_db_statements_total"));
}

backend_tests!(metrics_token => metrics_can_require_a_token);

fn sign(header: Value, claims: Value) -> String {
    use base64::Engine;
    use hmac::Mac;
    let b64 = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    };
    let input = format!("{}.{}", b64(&header), b64(&claims));
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(TEST_SECRET.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{input}.{sig}")
}

async fn status_of(app: &TestApp, token: &str) -> u16 {
    app.http
        .post(&app.url)
        .bearer_auth(token)
        .json(&json!({ "query": "{ me { role } }" }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn tokens_are_checked_strictly(app: TestApp) {
    let now = chrono::Utc::now().timestamp();
    let claims = |extra: Value| {
        let mut c = json!({
            "sub": "mallory", "role": "VIEWER", "iss": "salesops", "aud": "salesops",
            "iat": now, "exp": now + 600,
        });
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let hs = json!({ "alg": "HS256", "typ": "JWT" });
    // The well-formed token passes: the checks below fail for their reason.
    assert_eq!(
        status_of(&app, &sign(hs.clone(), claims(json!({})))).await,
        200
    );
    // Not valid before an hour from now.
    let nbf = sign(hs.clone(), claims(json!({ "nbf": now + 3600 })));
    assert_eq!(status_of(&app, &nbf).await, 401);
    // An unknown critical header extension.
    let crit = sign(
        json!({ "alg": "HS256", "typ": "JWT", "crit": ["exp-v2"], "exp-v2": 1 }),
        claims(json!({})),
    );
    assert_eq!(status_of(&app, &crit).await, 401);
    // A lifetime past the maximum (30 days by default).
    let long = sign(hs.clone(), claims(json!({ "exp": now + 31 * 86_400 })));
    assert_eq!(status_of(&app, &long).await, 401);
    // Issued in the future.
    let future = sign(
        hs.clone(),
        claims(json!({ "iat": now + 3600, "exp": now + 4000 })),
    );
    assert_eq!(status_of(&app, &future).await, 401);
    // A REP token naming no rep, and one naming an inactive rep.
    let ghost = app.token(Role::Rep, Some(987_654));
    assert_eq!(status_of(&app, &ghost).await, 401);
    let rep = app.create_rep("Gone Rep", None, None, json!({})).await;
    app.ok(
        "mutation($id: ID!) { updateRep(id: $id, patch: { active: false }) { id } }",
        json!({ "id": rep }),
    )
    .await;
    let gone = app.token(Role::Manager, Some(crate::helpers::id_num(&rep)));
    let res = app
        .http
        .post(&app.url)
        .bearer_auth(&gone)
        .json(&json!({ "query": "{ me { role } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(first_code(&body), "UNAUTHENTICATED");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("no active rep"));
    // An active rep's token works.
    let active = app.create_rep("Here Rep", None, None, json!({})).await;
    let here = app.token(Role::Rep, Some(crate::helpers::id_num(&active)));
    assert_eq!(status_of(&app, &here).await, 200);
}

/// Writes without expectedVersion that race each other re-read and apply:
/// none answers CONFLICT, none is lost (25 of 32 used to fail on
/// PostgreSQL).
async fn racing_writes_without_a_version_all_apply(app: TestApp) {
    let rep = app.create_rep("Race Rep", None, None, json!({})).await;
    let stage = app.stage("Discovery").await;
    let deal = app
        .create_deal(json!({ "name": "raced", "amount": "1", "ownerId": rep, "stageId": stage }))
        .await;
    let token = app.admin_token();
    let writes = (0..32).map(|i| {
        let (app, token, deal) = (&app, token.clone(), deal.clone());
        async move {
            app.gql(
                &token,
                "mutation($id: ID!, $a: Decimal!) { updateDeal(id: $id, patch: { amount: $a }) { version } }",
                json!({ "id": deal, "a": format!("{}", 100 + i) }),
            )
            .await
        }
    });
    let moves = (0..8).map(|i| {
        let (app, token, deal) = (&app, token.clone(), deal.clone());
        async move {
            let stage = app.stage(["Qualified", "Demo"][i % 2]).await;
            app.gql(
                &token,
                "mutation($id: ID!, $s: ID!) { moveDealStage(id: $id, stageId: $s) { version } }",
                json!({ "id": deal, "s": stage }),
            )
            .await
        }
    });
    let (updates, moved) = tokio::join!(
        futures::future::join_all(writes),
        futures::future::join_all(moves)
    );
    for body in updates.iter().chain(moved.iter()) {
        assert!(body.get("errors").is_none(), "{body:#}");
    }
    let d = app
        .ok(
            "query($id: ID!) { deal(id: $id) { version stageHistory { changedAt } } }",
            json!({ "id": deal }),
        )
        .await;
    // Every update changed the amount (all distinct), every move the stage
    // unless it was already there.
    let moves_applied = d["deal"]["stageHistory"].as_array().unwrap().len() as i64 - 1;
    assert_eq!(
        d["deal"]["version"].as_i64().unwrap(),
        1 + 32 + moves_applied
    );
}

async fn get_honours_the_operation_name(app: TestApp) {
    let viewer = app.token(Role::Viewer, None);
    let doc = "query A { me { role } } query B { stages { name } }";
    let res = app
        .http
        .get(&app.url)
        .bearer_auth(&viewer)
        .query(&[("query", doc), ("operationName", "B")])
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert!(body.get("errors").is_none(), "{body:#}");
    assert!(body["data"]["stages"].is_array());
    assert!(body["data"].get("me").is_none());
    // A mutation named by operationName is refused over GET, even beside a query.
    let doc = "query A { me { role } } mutation M { createStage(input: {name: \"x\", probability: 0.5}) { id } }";
    let res = app
        .http
        .get(&app.url)
        .bearer_auth(&viewer)
        .query(&[("query", doc), ("operationName", "M")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
}

db_tests!(
    deep_nesting_is_refused_and_the_server_stays_up,
    fragment_doubling_is_refused_before_validation,
    aliases_of_metrics_are_priced,
    nested_lists_are_multiplied,
    every_answer_states_its_cost,
    series_points_are_capped,
    heavy_work_leaves_the_pool_to_readers,
    abandoned_sql_is_cancelled,
    metric_labels_are_bounded,
    tokens_are_checked_strictly,
    get_honours_the_operation_name,
    racing_writes_without_a_version_all_apply,
);
