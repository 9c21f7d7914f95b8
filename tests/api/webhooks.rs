//! Webhooks: subscriptions (ADMIN only, secret shown once, URLs checked)
//! and delivery by the background worker to a receiver started by the test:
//! signatures, retries with backoff, per-deal order, restarts and slow
//! receivers.
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api::auth::Role;
use api::config::Config;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::db_tests;
use crate::helpers::{spawn_app_with, Backend, TestApp};

/// Runs `async fn name(backend: Backend)` on SQLite and, when configured,
/// PostgreSQL (these tests start their app with the worker on).
#[macro_export]
macro_rules! worker_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::helpers::Backend::Sqlite).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if std::env::var("SALESOPS_TEST_DATABASE_URL").map_or(true, |v| v.is_empty()) {
                        eprintln!("SALESOPS_TEST_DATABASE_URL is not set: skipping the PostgreSQL run");
                        return;
                    }
                    super::$name($crate::helpers::Backend::Postgres).await;
                }
            }
        )*
    };
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
    }
}

/// A local HTTP endpoint: answers 500 to its first `fail_first` requests
/// and 200 after, each after `delay`; logs every request fully received.
pub(crate) struct Receiver {
    pub url: String,
    log: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub async fn start(fail_first: usize, delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/salesops", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let l = log.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(serve(sock, l.clone(), count.clone(), fail_first, delay));
            }
        });
        Self { url, log }
    }

    pub fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver got {} requests, expected {n}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn serve(
    mut sock: TcpStream,
    log: Arc<Mutex<Vec<Received>>>,
    count: Arc<AtomicUsize>,
    fail_first: usize,
    delay: Duration,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let headers: HashMap<String, String> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).to_string();
    let n = count.fetch_add(1, Ordering::SeqCst);
    log.lock().unwrap().push(Received { headers, body });
    tokio::time::sleep(delay).await;
    let status = if n < fail_first {
        "500 Internal Server Error"
    } else {
        "200 OK"
    };
    let _ = sock
        .write_all(
            format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await;
    let _ = sock.shutdown().await;
}

pub(crate) fn hmac_hex(secret: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

pub(crate) async fn worker_app(
    backend: Backend,
    configure: impl FnOnce(&mut Config),
) -> Option<TestApp> {
    spawn_app_with(backend, |c| {
        c.webhook_worker = true;
        c.webhook_poll_ms = 50;
        c.webhook_backoff_ms = 100;
        c.webhook_timeout_ms = 2_000;
        configure(c);
    })
    .await
}

pub(crate) const CREATE_HOOK: &str = "mutation($u: String!, $e: [WebhookEvent!]!) { createWebhook(url: $u, events: $e) { secret webhook { id url events active } } }";

pub(crate) const DELIVERIES: &str = "query($w: ID) { webhookDeliveries(webhookId: $w, first: 500) { id eventId event entityId status attemptCount lastStatusCode payload attempts { attempt statusCode success error startedAt } } }";

pub(crate) async fn create_hook(app: &TestApp, url: &str, events: Value) -> (String, String) {
    let d = app.ok(CREATE_HOOK, json!({ "u": url, "e": events })).await;
    (
        d["createWebhook"]["webhook"]["id"]
            .as_str()
            .unwrap()
            .to_owned(),
        d["createWebhook"]["secret"].as_str().unwrap().to_owned(),
    )
}

pub(crate) async fn deliveries(app: &TestApp, hook: &str) -> Vec<Value> {
    app.ok(DELIVERIES, json!({ "w": hook })).await["webhookDeliveries"]
        .as_array()
        .unwrap()
        .clone()
}

/// Waits until `n` deliveries of the webhook exist and all are DELIVERED.
pub(crate) async fn all_delivered(
    app: &TestApp,
    hook: &str,
    n: usize,
    within: Duration,
) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let d = deliveries(app, hook).await;
        if d.len() == n && d.iter().all(|x| x["status"] == "DELIVERED") {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "not all delivered: {:#}",
            Value::Array(d)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn new_deal(owner: &str, name: &str) -> Value {
    json!({ "name": name, "amount": "1000", "ownerId": owner })
}

async fn webhooks_are_admin_only_with_the_secret_shown_once(app: TestApp) {
    let ops = app.token(Role::Ops, None);
    let url = "https://hooks.example.com/salesops";
    assert_eq!(
        app.error_code(&ops, CREATE_HOOK, json!({ "u": url, "e": ["DEAL_WON"] }))
            .await,
        "FORBIDDEN"
    );
    assert_eq!(
        app.error_code(&ops, "{ webhooks { id } }", json!({})).await,
        "FORBIDDEN"
    );
    let admin = app.admin_token();
    for bad in [
        "not a url",
        "ftp://example.com/x",
        "http://",
        "javascript:alert(1)",
        "https://user:pw@example.com/x",
    ] {
        assert_eq!(
            app.error_code(&admin, CREATE_HOOK, json!({ "u": bad, "e": ["DEAL_WON"] }))
                .await,
            "BAD_USER_INPUT",
            "{bad}"
        );
    }
    assert_eq!(
        app.error_code(&admin, CREATE_HOOK, json!({ "u": url, "e": [] }))
            .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(app.count_rows("webhook").await, 0);

    let d = app
        .ok(
            CREATE_HOOK,
            json!({ "u": url, "e": ["DEAL_WON", "DEAL_CREATED"] }),
        )
        .await;
    let secret = d["createWebhook"]["secret"].as_str().unwrap().to_owned();
    // "whsec_" and 32 random bytes in hex.
    assert_eq!(secret.len(), 6 + 64);
    assert!(secret.starts_with("whsec_"));
    let hook = &d["createWebhook"]["webhook"];
    assert_eq!(hook["url"], url);
    assert_eq!(hook["events"], json!(["DEAL_WON", "DEAL_CREATED"]));
    assert_eq!(hook["active"], true);
    let id = hook["id"].as_str().unwrap().to_owned();

    // The secret is not a field of Webhook, and nothing else shows it.
    let listed = app
        .ok("{ webhooks { id url events active createdAt } }", json!({}))
        .await;
    assert_eq!(listed["webhooks"].as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains(&secret));
    assert_eq!(
        app.error_code(&admin, "{ webhooks { secret } }", json!({}))
            .await,
        "BAD_USER_INPUT"
    );
    let log = app
        .ok(
            "{ auditLog(entityType: \"Webhook\") { action changes } }",
            json!({}),
        )
        .await;
    assert_eq!(log["auditLog"][0]["action"], "createWebhook");
    assert!(!log.to_string().contains(&secret));

    let del = "mutation($id: ID!) { deleteWebhook(id: $id) }";
    assert_eq!(
        app.error_code(&ops, del, json!({ "id": id })).await,
        "FORBIDDEN"
    );
    assert_eq!(
        app.ok(del, json!({ "id": id })).await["deleteWebhook"],
        true
    );
    assert_eq!(
        app.ok("{ webhooks { id } }", json!({})).await["webhooks"],
        json!([])
    );
    assert_eq!(
        app.error_code(&admin, del, json!({ "id": id })).await,
        "NOT_FOUND"
    );
}

async fn webhook_delivers_signed_events_in_order(backend: Backend) {
    let Some(app) = worker_app(backend, |_| {}).await else {
        return;
    };
    let receiver = Receiver::start(0, Duration::ZERO).await;
    let (hook, secret) = create_hook(
        &app,
        &receiver.url,
        json!(["DEAL_CREATED", "DEAL_STAGE_CHANGED", "DEAL_WON"]),
    )
    .await;
    let ana = app.create_rep("Ana Lima", None, None, json!({})).await;
    let started = chrono::Utc::now().timestamp();
    let deal = app.create_deal(new_deal(&ana, "Initech")).await;
    // DEAL_UPDATED is not subscribed: no delivery.
    app.ok(
        "mutation($id: ID!) { updateDeal(id: $id, patch: {name: \"Initech 2\"}) { id } }",
        json!({ "id": deal }),
    )
    .await;
    let won = app.stage("Won").await;
    app.move_deal(&deal, "Won", &chrono::Utc::now().to_rfc3339())
        .await;

    let got = receiver.wait_for(3, Duration::from_secs(20)).await;
    let delivered = all_delivered(&app, &hook, 3, Duration::from_secs(20)).await;
    let ended = chrono::Utc::now().timestamp();
    assert_eq!(receiver.received().len(), 3);
    let types: Vec<String> = got
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        types,
        vec!["DEAL_CREATED", "DEAL_STAGE_CHANGED", "DEAL_WON"]
    );
    for r in &got {
        let body = r.json();
        assert_eq!(
            r.header("x-salesops-signature"),
            format!("sha256={}", hmac_hex(&secret, &r.body))
        );
        assert_ne!(
            r.header("x-salesops-signature"),
            format!("sha256={}", hmac_hex("another secret", &r.body))
        );
        assert_eq!(
            r.header("x-salesops-event-id"),
            body["id"].as_str().unwrap()
        );
        assert_eq!(r.header("x-salesops-event"), body["type"].as_str().unwrap());
        assert_eq!(r.header("x-salesops-attempt"), "1");
        assert!(r.header("content-type").starts_with("application/json"));
        let ts: i64 = r.header("x-salesops-timestamp").parse().unwrap();
        assert!(ts >= started - 1 && ts <= ended + 1, "timestamp {ts}");
        assert_eq!(body["entityType"], "Deal");
        assert_eq!(body["entityId"], deal.as_str());
        assert_eq!(body["data"]["deal"]["id"], deal.as_str());
    }
    let ids: HashSet<&str> = got
        .iter()
        .map(|r| r.header("x-salesops-event-id"))
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(got[0].json()["data"]["deal"]["status"], "OPEN");
    assert_eq!(got[0].json()["data"]["deal"]["name"], "Initech");
    let moved = got[1].json();
    assert_eq!(moved["data"]["stageChange"]["toStageId"], won.as_str());
    assert_eq!(moved["data"]["deal"]["name"], "Initech 2");
    assert_eq!(got[2].json()["data"]["deal"]["status"], "WON");

    // Each delivery: one successful attempt, the body as sent.
    for (d, r) in delivered.iter().zip(&got) {
        assert_eq!(d["eventId"], r.header("x-salesops-event-id"));
        assert_eq!(d["payload"], r.body.as_str());
        assert_eq!(d["attemptCount"], 1);
        assert_eq!(d["lastStatusCode"], 200);
        let attempts = d["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0]["attempt"], 1);
        assert_eq!(attempts[0]["statusCode"], 200);
        assert_eq!(attempts[0]["success"], true);
    }
}

async fn failing_receiver_is_retried_with_every_attempt_recorded(backend: Backend) {
    let Some(app) = worker_app(backend, |_| {}).await else {
        return;
    };
    // 500 to the first three requests.
    let receiver = Receiver::start(3, Duration::ZERO).await;
    let (hook, _) = create_hook(&app, &receiver.url, json!(["DEAL_CREATED", "DEAL_UPDATED"])).await;
    let ana = app.create_rep("Ana Lima", None, None, json!({})).await;
    let deal = app.create_deal(new_deal(&ana, "Hooli")).await;
    app.ok(
        "mutation($id: ID!) { updateDeal(id: $id, patch: {amount: \"2000\"}) { id } }",
        json!({ "id": deal }),
    )
    .await;

    let delivered = all_delivered(&app, &hook, 2, Duration::from_secs(30)).await;
    let got = receiver.received();
    // DEAL_CREATED four times (500, 500, 500, 200), then DEAL_UPDATED once:
    // the update waited behind the earlier event of the same deal.
    assert_eq!(got.len(), 5);
    let created = &got[0];
    for (i, r) in got[..4].iter().enumerate() {
        assert_eq!(r.json()["type"], "DEAL_CREATED");
        assert_eq!(
            r.header("x-salesops-event-id"),
            created.header("x-salesops-event-id")
        );
        assert_eq!(r.body, created.body);
        assert_eq!(r.header("x-salesops-attempt"), (i + 1).to_string());
    }
    assert_eq!(got[4].json()["type"], "DEAL_UPDATED");
    assert_eq!(
        got[4].json()["data"]["changes"]["amount"],
        json!(["1000.00", "2000.00"])
    );
    // The payload carries the revision the write made.
    let revision = &got[4].json()["data"]["revision"];
    assert_eq!(revision["version"], 2);
    assert_eq!(
        revision["changes"],
        json!([{ "field": "amount", "from": "1000.00", "to": "2000.00" }])
    );
    assert!(revision["validFrom"].as_str().unwrap().starts_with("20"));
    assert_eq!(got[0].json()["data"]["revision"]["version"], 1);

    let first = &delivered[0];
    assert_eq!(first["event"], "DEAL_CREATED");
    assert_eq!(first["attemptCount"], 4);
    assert_eq!(first["lastStatusCode"], 200);
    let attempts = first["attempts"].as_array().unwrap();
    let codes: Vec<i64> = attempts
        .iter()
        .map(|a| a["statusCode"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, vec![500, 500, 500, 200]);
    let ok: Vec<bool> = attempts
        .iter()
        .map(|a| a["success"].as_bool().unwrap())
        .collect();
    assert_eq!(ok, vec![false, false, false, true]);
    assert_eq!(attempts[0]["error"], "HTTP 500");
    // Exponential backoff from 100 ms: at least 100, 200 and 400 ms between
    // the starts of consecutive attempts.
    let starts: Vec<chrono::DateTime<chrono::Utc>> = attempts
        .iter()
        .map(|a| a["startedAt"].as_str().unwrap().parse().unwrap())
        .collect();
    for (i, min_ms) in [100, 200, 400].into_iter().enumerate() {
        let gap = (starts[i + 1] - starts[i]).num_milliseconds();
        assert!(gap >= min_ms, "gap {i}: {gap} ms < {min_ms} ms");
    }
    assert_eq!(delivered[1]["event"], "DEAL_UPDATED");
    assert_eq!(delivered[1]["attemptCount"], 1);
}

async fn restart_mid_delivery_loses_nothing(backend: Backend) {
    // A 1 s timeout gives a 3 s lease (2 x timeout + 1 s).
    let Some(mut app) = worker_app(backend, |c| c.webhook_timeout_ms = 1_000).await else {
        return;
    };
    // Every answer takes 400 ms, so deliveries are in flight when we crash.
    let receiver = Receiver::start(0, Duration::from_millis(400)).await;
    let (hook, _) = create_hook(&app, &receiver.url, json!(["DEAL_CREATED", "DEAL_UPDATED"])).await;
    let ana = app.create_rep("Ana Lima", None, None, json!({})).await;
    let bulk = "mutation($i: [DealInput!]!) { bulkUpsertDeals(inputs: $i) { created updated errors { index } } }";
    let deals = |amount: &str| -> Value {
        (0..6)
            .map(|i| json!({ "externalId": format!("r-{i}"), "name": format!("R{i}"), "amount": amount, "ownerId": ana }))
            .collect()
    };
    app.ok(bulk, json!({ "i": deals("100") })).await;
    app.ok(bulk, json!({ "i": deals("200") })).await;

    receiver.wait_for(1, Duration::from_secs(20)).await;
    // Crash: the worker is dropped mid-delivery, the server stops; a new
    // process starts on the same database.
    app.restart(false, |_| {}).await;
    app.ok(bulk, json!({ "i": deals("300") })).await;

    // 6 deals x 3 events = 18 deliveries, all delivered in the end.
    let delivered = all_delivered(&app, &hook, 18, Duration::from_secs(60)).await;
    let got = receiver.received();
    let sent: HashSet<String> = got
        .iter()
        .map(|r| r.header("x-salesops-event-id").to_owned())
        .collect();
    let stored: HashSet<String> = delivered
        .iter()
        .map(|d| d["eventId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(stored.len(), 18);
    assert_eq!(sent, stored, "an event was lost");
    // Redeliveries repeat the same event id and body; only deliveries that
    // were in flight at the crash can repeat, and only the oldest pending
    // event of each of the 6 deals can be in flight. At least the one the
    // receiver was answering when the worker died is sent again.
    let mut first_body: HashMap<&str, &str> = HashMap::new();
    for r in &got {
        let body = first_body
            .entry(r.header("x-salesops-event-id"))
            .or_insert(r.body.as_str());
        assert_eq!(*body, r.body.as_str());
    }
    let duplicates = got.len() - sent.len();
    assert!((1..=6).contains(&duplicates), "{duplicates} duplicates");
    // Per deal, first receipts follow the order the events were written.
    let mut expected: HashMap<String, Vec<String>> = HashMap::new();
    for d in &delivered {
        expected
            .entry(d["entityId"].as_str().unwrap().to_owned())
            .or_default()
            .push(d["eventId"].as_str().unwrap().to_owned());
    }
    let mut seen_order: HashMap<String, Vec<String>> = HashMap::new();
    let mut seen = HashSet::new();
    for r in &got {
        let id = r.header("x-salesops-event-id").to_owned();
        if seen.insert(id.clone()) {
            seen_order
                .entry(r.json()["entityId"].as_str().unwrap().to_owned())
                .or_default()
                .push(id);
        }
    }
    assert_eq!(expected.len(), 6);
    assert_eq!(seen_order, expected);
}

async fn slow_receiver_never_blocks_the_api(backend: Backend) {
    // The receiver hangs for 10 s; the worker gives up after 3 s.
    let Some(app) = worker_app(backend, |c| c.webhook_timeout_ms = 3_000).await else {
        return;
    };
    let receiver = Receiver::start(0, Duration::from_secs(10)).await;
    let (hook, _) = create_hook(&app, &receiver.url, json!(["DEAL_CREATED"])).await;
    let ana = app.create_rep("Ana Lima", None, None, json!({})).await;
    app.create_deal(new_deal(&ana, "First")).await;
    receiver.wait_for(1, Duration::from_secs(20)).await;

    // The worker is now waiting on the receiver; writes and reads go on.
    let t = Instant::now();
    for i in 0..5 {
        app.create_deal(new_deal(&ana, &format!("Next {i}"))).await;
    }
    app.ok("{ deals { totalCount } }", json!({})).await;
    let elapsed = t.elapsed();
    assert!(
        elapsed < Duration::from_secs(1),
        "API calls took {elapsed:?} while a delivery hung"
    );

    // The hung attempt ends at the timeout and is recorded as a failure
    // without a status code.
    let deadline = Instant::now() + Duration::from_secs(20);
    let first = loop {
        let d = deliveries(&app, &hook).await;
        if d[0]["attemptCount"] == 1 {
            break d[0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "the hung attempt was not recorded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(first["status"], "PENDING");
    let attempt = &first["attempts"][0];
    assert_eq!(attempt["success"], false);
    assert_eq!(attempt["statusCode"], Value::Null);
    assert_eq!(attempt["error"], "timeout");
}

async fn sop_plan_stage_changes_are_delivered(backend: Backend) {
    let Some(app) = worker_app(backend, |_| {}).await else {
        return;
    };
    let receiver = Receiver::start(0, Duration::ZERO).await;
    let (hook, secret) = create_hook(&app, &receiver.url, json!(["SOP_PLAN_STAGE_CHANGED"])).await;
    // Planned from the last day of 2025, before its horizon.
    app.set_clock("2025-12-31T12:00:00Z");
    let created = app
        .ok(
            "mutation($i: CreateSopPlanInput!) { createSopPlan(input: $i) { id version } }",
            json!({ "i": { "name": "FY26 H1", "horizonStart": "2026-01-01", "horizonMonths": 6 } }),
        )
        .await;
    let plan = created["createSopPlan"]["id"].as_str().unwrap().to_owned();
    let version = created["createSopPlan"]["version"].clone();
    app.ok(
        "mutation($id: ID!, $v: Int!) { advanceSopPlan(id: $id, expectedVersion: $v, note: \"go\") { id } }",
        json!({ "id": plan, "v": version }),
    )
    .await;
    // Creation (none -> DATA_GATHERING), then the advance.
    all_delivered(&app, &hook, 2, Duration::from_secs(20)).await;
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    let moves: Vec<(Value, Value)> = got
        .iter()
        .map(|r| {
            assert_eq!(
                r.header("x-salesops-signature"),
                format!("sha256={}", hmac_hex(&secret, &r.body))
            );
            let b = r.json();
            assert_eq!(b["type"], "SOP_PLAN_STAGE_CHANGED");
            assert_eq!(b["entityType"], "SopPlan");
            assert_eq!(b["entityId"], plan.as_str());
            (b["data"]["fromStage"].clone(), b["data"]["toStage"].clone())
        })
        .collect();
    assert_eq!(
        moves,
        vec![
            (Value::Null, json!("DATA_GATHERING")),
            (json!("DATA_GATHERING"), json!("DEMAND_PLANNING")),
        ]
    );
    assert_eq!(got[1].json()["data"]["note"], "go");
    assert_eq!(got[1].json()["data"]["plan"]["stage"], "DEMAND_PLANNING");
}

db_tests!(webhooks_are_admin_only_with_the_secret_shown_once);

worker_tests!(
    webhook_delivers_signed_events_in_order,
    failing_receiver_is_retried_with_every_attempt_recorded,
    restart_mid_delivery_loses_nothing,
    slow_receiver_never_blocks_the_api,
    sop_plan_stage_changes_are_delivered,
);
