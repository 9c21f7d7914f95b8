//! Webhook hardening (issue 11, item 9), each attack performed against the
//! real server: request forgery to loopback, private and metadata addresses
//! in every encoding, DNS names that resolve there, `lastError` as a port
//! scanner, secrets readable from the database, one dead receiver starving
//! the others, and deletes racing the worker.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, FromQueryResult, Statement};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::helpers::{spawn_app_with, Backend, TestApp};
use crate::webhooks::{
    all_delivered, create_hook, hmac_hex, new_deal, worker_app, Receiver, CREATE_HOOK,
};
use crate::worker_tests;

const LAST: &str = "query($w: ID) { webhookDeliveries(webhookId: $w, first: 500) { status attemptCount lastStatusCode lastError attempts { error statusCode } } }";

/// The deliveries of a webhook once each has had at least one attempt.
async fn attempted(app: &TestApp, hook: &str, n: usize, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let d = app.ok(LAST, json!({ "w": hook })).await["webhookDeliveries"]
            .as_array()
            .unwrap()
            .clone();
        if d.len() == n && d.iter().all(|x| x["attemptCount"].as_i64() >= Some(1)) {
            return d;
        }
        assert!(Instant::now() < deadline, "not attempted: {d:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn strict_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |c| {
        c.webhook_allow_http = false;
        c.webhook_allowed_hosts = String::new();
    })
    .await
}

/// The default policy: https only, and no loopback, private, link-local,
/// metadata, CGNAT, unspecified or multicast address in any spelling.
async fn default_policy_refuses_local_destinations(backend: Backend) {
    let Some(app) = strict_app(backend).await else {
        return;
    };
    let admin = app.admin_token();
    let refused = |host: &str, why: &str| {
        format!(
            "url: destination refused: {host} is {why} (permit it with SALESOPS_WEBHOOK_ALLOWED_HOSTS)"
        )
    };
    let cases = [
        (
            "http://hooks.example.com/x".to_string(),
            "url: must be https (http only when the server allows it: SALESOPS_WEBHOOK_ALLOW_HTTP)"
                .to_string(),
        ),
        (
            "http://127.0.0.1:9000/x".into(),
            "url: must be https (http only when the server allows it: SALESOPS_WEBHOOK_ALLOW_HTTP)"
                .into(),
        ),
        (
            "https://127.0.0.1/x".into(),
            refused("127.0.0.1", "a loopback address"),
        ),
        (
            "https://2130706433/x".into(),
            refused("127.0.0.1", "a loopback address"),
        ),
        (
            "https://0x7f.1/x".into(),
            refused("127.0.0.1", "a loopback address"),
        ),
        (
            "https://017700000001/x".into(),
            refused("127.0.0.1", "a loopback address"),
        ),
        (
            "https://127.1/x".into(),
            refused("127.0.0.1", "a loopback address"),
        ),
        (
            "https://[::1]/x".into(),
            refused("::1", "a loopback address"),
        ),
        (
            "https://[::ffff:127.0.0.1]/x".into(),
            refused("::ffff:127.0.0.1", "a loopback address"),
        ),
        (
            "https://localhost:8443/x".into(),
            refused("localhost", "a loopback address"),
        ),
        (
            "https://10.0.0.5/x".into(),
            refused("10.0.0.5", "a private address"),
        ),
        (
            "https://172.20.1.1/x".into(),
            refused("172.20.1.1", "a private address"),
        ),
        (
            "https://192.168.0.10/x".into(),
            refused("192.168.0.10", "a private address"),
        ),
        (
            "https://[fd12::1]/x".into(),
            refused("fd12::1", "a private address"),
        ),
        (
            "https://169.254.169.254/latest/meta-data/".into(),
            refused("169.254.169.254", "a cloud metadata address"),
        ),
        (
            "https://[::ffff:a9fe:a9fe]/x".into(),
            refused("::ffff:169.254.169.254", "a cloud metadata address"),
        ),
        (
            "https://[fd00:ec2::254]/x".into(),
            refused("fd00:ec2::254", "a cloud metadata address"),
        ),
        (
            "https://169.254.10.1/x".into(),
            refused("169.254.10.1", "a link-local address"),
        ),
        (
            "https://[fe80::1]/x".into(),
            refused("fe80::1", "a link-local address"),
        ),
        (
            "https://0.0.0.0/x".into(),
            refused("0.0.0.0", "an unspecified address"),
        ),
        (
            "https://100.64.1.1/x".into(),
            refused("100.64.1.1", "a carrier-grade NAT (100.64/10) address"),
        ),
        (
            "https://224.0.0.1/x".into(),
            refused("224.0.0.1", "a multicast address"),
        ),
        (
            "https://255.255.255.255/x".into(),
            refused("255.255.255.255", "a broadcast address"),
        ),
    ];
    for (url, message) in &cases {
        let body = app
            .gql(&admin, CREATE_HOOK, json!({ "u": url, "e": ["DEAL_WON"] }))
            .await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{url}"
        );
        assert_eq!(body["errors"][0]["message"], message.as_str(), "{url}");
    }
    assert_eq!(app.count_rows("webhook").await, 0);
    // A public https receiver is fine.
    app.ok(
        CREATE_HOOK,
        json!({ "u": "https://hooks.example.com/salesops", "e": ["DEAL_WON"] }),
    )
    .await;
    assert_eq!(app.count_rows("webhook").await, 1);
}

/// The allow-list lets a named network through, and only it.
async fn the_allow_list_permits_only_what_it_names(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| {
        c.webhook_allow_http = true;
        c.webhook_allowed_hosts = "127.0.0.0/8, hooks.internal".into();
    })
    .await
    else {
        return;
    };
    let admin = app.admin_token();
    for ok in [
        "http://127.0.0.1:9000/x",
        "http://2130706433:9000/x",
        "http://[::ffff:127.0.0.1]:9000/x",
        "https://hooks.internal/x",
    ] {
        app.ok(CREATE_HOOK, json!({ "u": ok, "e": ["DEAL_WON"] }))
            .await;
    }
    for bad in [
        "http://10.0.0.1/x",
        "http://169.254.169.254/x",
        "http://[::1]/x",
    ] {
        assert_eq!(
            app.error_code(&admin, CREATE_HOOK, json!({ "u": bad, "e": ["DEAL_WON"] }))
                .await,
            "BAD_USER_INPUT",
            "{bad}"
        );
    }
    assert_eq!(app.count_rows("webhook").await, 4);
}

/// The machine's own host name: a name that passes creation (it is not
/// local by definition) but resolves to a loopback or private address.
async fn local_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()?
        .trim()
        .to_owned();
    let addrs: Vec<_> = tokio::net::lookup_host((name.as_str(), 0))
        .await
        .ok()?
        .map(|a| a.ip())
        .collect();
    let local = !addrs.is_empty()
        && addrs
            .iter()
            .all(|ip| api::domain::webhook::policy::refusal(*ip).is_some());
    local.then_some(name)
}

/// DNS rebinding: a name is checked by the addresses it resolves to at
/// delivery, and nothing is sent to a refused one.
async fn a_name_resolving_to_a_local_address_is_refused_at_delivery(backend: Backend) {
    let Some(name) = local_name().await else {
        eprintln!(
            "this machine's host name does not resolve to a local address: nothing to rebind"
        );
        return;
    };
    let Some(app) = worker_app(backend, |c| {
        c.webhook_allowed_hosts = String::new();
    })
    .await
    else {
        return;
    };
    let receiver = Receiver::start(0, Duration::ZERO).await;
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let url = format!("http://{name}:{port}/hooks/salesops");
    let (hook, _) = create_hook(&app, &url, json!(["DEAL_CREATED"])).await;
    let ana = app.create_rep("Ana Lima", None, None, json!({})).await;
    app.create_deal(new_deal(&ana, "Rebind")).await;
    let d = attempted(&app, &hook, 1, Duration::from_secs(20)).await;
    assert_eq!(d[0]["status"], "PENDING");
    assert_eq!(d[0]["lastError"], "destination refused by policy");
    assert_eq!(d[0]["lastStatusCode"], Value::Null);
    assert_eq!(
        d[0]["attempts"][0]["error"],
        "destination refused by policy"
    );
    assert_eq!(receiver.received().len(), 0);
}

/// A webhook stored while the policy allowed it is refused once the policy
/// no longer does: the URL is checked again before every attempt.
async fn the_policy_is_checked_again_at_delivery(backend: Backend) {
    let Some(mut app) = worker_app(backend, |_| {}).await else {
        return;
    };
    let receiver = Receiver::start(0, Duration::ZERO).await;
    let (hook, _) = create_hook(&app, &receiver.url, json!(["DEAL_CREATED"])).await;
    let ana = app.create_rep("Ana Lima", None, None, json!({})).await;
    app.create_deal(new_deal(&ana, "Before")).await;
    all_delivered(&app, &hook, 1, Duration::from_secs(20)).await;
    app.restart(true, |c| c.webhook_allowed_hosts = String::new())
        .await;
    app.create_deal(new_deal(&ana, "After")).await;
    let d = attempted(&app, &hook, 2, Duration::from_secs(20)).await;
    assert_eq!(d[1]["lastError"], "destination refused by policy");
    assert_eq!(receiver.received().len(), 1);
}

/// A listener that answers every connection with `reply` after reading the
/// request head (or, with `hang`, never answers).
async fn canned(reply: &'static str, hang: bool) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let open = Arc::new(AtomicUsize::new(0));
    let count = open.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                count.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                if hang {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
                let _ = sock.write_all(reply.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (url, open)
}

/// `lastError` is a class: the status code for a non-2xx answer (never the
/// body), a fixed word for a network failure (never an address or port).
async fn last_error_is_a_class_of_failure(backend: Backend) {
    let Some(app) = worker_app(backend, |c| c.webhook_timeout_ms = 1_000).await else {
        return;
    };
    let body = "db at 10.0.0.7:5432 said: password authentication failed";
    let (status_url, _) = canned(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 57\r\nConnection: close\r\n\r\ndb at 10.0.0.7:5432 said: password authentication failed",
        false,
    )
    .await;
    // A socket bound but never listening: connections are refused, and the
    // port stays ours (a dropped listener's port can be taken by another
    // test's receiver running in parallel, which then answers 200).
    let refusing = tokio::net::TcpSocket::new_v4().unwrap();
    refusing.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let closed = format!("http://{}/hook", refusing.local_addr().unwrap());
    let (hang_url, _) = canned("", true).await;
    // Plain HTTP where TLS is expected: the handshake fails.
    let (plain_url, _) = canned("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false).await;
    let tls_url = plain_url.replacen("http://", "https://", 1);
    let cases = [
        (status_url, "HTTP 503", json!(503)),
        (closed, "connection refused", Value::Null),
        (hang_url, "timeout", Value::Null),
        (tls_url, "tls", Value::Null),
        (
            "http://no-such-host.invalid/hook".to_string(),
            "dns",
            Value::Null,
        ),
    ];
    let mut hooks = Vec::new();
    for (url, _, _) in &cases {
        hooks.push(create_hook(&app, url, json!(["DEAL_CREATED"])).await.0);
    }
    let ana = app.create_rep("Ana Lima", None, None, json!({})).await;
    app.create_deal(new_deal(&ana, "Probe")).await;
    for (hook, (url, class, status)) in hooks.iter().zip(&cases) {
        let d = attempted(&app, hook, 1, Duration::from_secs(20)).await;
        assert_eq!(d[0]["lastError"], *class, "{url}");
        assert_eq!(d[0]["attempts"][0]["error"], *class, "{url}");
        assert_eq!(d[0]["lastStatusCode"], *status, "{url}");
    }
    // The receiver's body is stored nowhere.
    let everything = app.ok(LAST, json!({})).await.to_string();
    assert!(!everything.contains("10.0.0.7") && !everything.contains(body));
}

#[derive(FromQueryResult)]
struct Stored {
    secret: String,
}

async fn stored_secret(app: &TestApp, hook: &str) -> String {
    let stmt = Statement::from_string(
        app.db.get_database_backend(),
        format!(
            "SELECT secret FROM webhook WHERE id = {}",
            hook.parse::<i64>().unwrap()
        ),
    );
    Stored::find_by_statement(stmt)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
        .secret
}

/// Secrets are sealed in the database; a legacy plaintext row is sealed at
/// worker start; deliveries are signed with the original secret either way.
async fn secrets_are_encrypted_at_rest_and_still_sign(backend: Backend) {
    let Some(mut app) = worker_app(backend, |_| {}).await else {
        return;
    };
    let receiver = Receiver::start(0, Duration::ZERO).await;
    let (hook, secret) = create_hook(&app, &receiver.url, json!(["DEAL_CREATED"])).await;
    let raw = stored_secret(&app, &hook).await;
    assert!(raw.starts_with("v1:"), "{raw}");
    assert_eq!(raw.len(), 135);
    assert!(!raw.contains(&secret) && !raw.contains(&secret[6..]));

    // A row from before encryption: plaintext in the column.
    let (legacy, _) = create_hook(&app, &receiver.url, json!(["DEAL_CREATED"])).await;
    let legacy_secret = "whsec_legacy0123456789abcdef0123456789abcdef0123456789abcdef012345";
    app.db
        .execute_unprepared(&format!(
            "UPDATE webhook SET secret = '{legacy_secret}' WHERE id = {legacy}"
        ))
        .await
        .unwrap();
    app.restart(true, |_| {}).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !stored_secret(&app, &legacy).await.starts_with("v1:") {
        assert!(
            Instant::now() < deadline,
            "the legacy secret was not sealed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!stored_secret(&app, &legacy).await.contains("legacy0123"));

    let ana = app.create_rep("Ana Lima", None, None, json!({})).await;
    app.create_deal(new_deal(&ana, "Signed")).await;
    all_delivered(&app, &hook, 1, Duration::from_secs(20)).await;
    all_delivered(&app, &legacy, 1, Duration::from_secs(20)).await;
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    let mut signatures: Vec<String> = got
        .iter()
        .map(|r| r.header("x-salesops-signature").to_owned())
        .collect();
    signatures.sort();
    let mut expected = vec![
        format!("sha256={}", hmac_hex(&secret, &got[0].body)),
        format!("sha256={}", hmac_hex(legacy_secret, &got[0].body)),
    ];
    expected.sort();
    assert_eq!(got[0].body, got[1].body);
    assert_eq!(signatures, expected);
}

/// One receiver that never answers, with a backlog, must not delay another:
/// the healthy receiver gets every event within 2 s of the write while the
/// dead one holds only its own slots (at most 4 connections).
async fn a_dead_receiver_never_delays_a_healthy_one(backend: Backend) {
    let Some(app) = worker_app(backend, |c| {
        c.webhook_timeout_ms = 8_000;
        c.webhook_max_in_flight_per_receiver = 4;
    })
    .await
    else {
        return;
    };
    let (dead_url, dead_open) = canned("", true).await;
    create_hook(&app, &dead_url, json!(["DEAL_CREATED"])).await;
    let ana = app.create_rep("Ana Lima", None, None, json!({})).await;
    let bulk = "mutation($i: [DealInput!]!) { bulkUpsertDeals(inputs: $i) { created } }";
    let batch = |prefix: &str, n: usize| -> Value {
        (0..n)
            .map(|i| json!({ "externalId": format!("{prefix}-{i}"), "name": format!("{prefix} {i}"), "amount": "100", "ownerId": ana }))
            .collect()
    };
    // A backlog of 40 deliveries to the dead receiver; wait until it holds
    // connections.
    app.ok(bulk, json!({ "i": batch("backlog", 40) })).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while dead_open.load(Ordering::SeqCst) < 4 {
        assert!(
            Instant::now() < deadline,
            "the dead receiver got no request"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let healthy = Receiver::start(0, Duration::ZERO).await;
    create_hook(&app, &healthy.url, json!(["DEAL_CREATED"])).await;
    let t = Instant::now();
    app.ok(bulk, json!({ "i": batch("fresh", 10) })).await;
    healthy.wait_for(10, Duration::from_secs(2)).await;
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "healthy receiver waited {took:?}"
    );
    // Still inside the dead receiver's 8 s timeout: it holds its 4 slots only.
    assert_eq!(dead_open.load(Ordering::SeqCst), 4);
}

/// Deleting webhooks while the worker delivers to them and deals are being
/// written: every delete answers true, no write fails, nothing is left.
async fn deleting_webhooks_while_delivering_never_fails(backend: Backend) {
    let Some(app) = worker_app(backend, |c| c.webhook_poll_ms = 10).await else {
        return;
    };
    let app = Arc::new(app);
    let receiver = Receiver::start(0, Duration::from_millis(5)).await;
    let ana = app.create_rep("Ana Lima", None, None, json!({})).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (app, stop, ana) = (app.clone(), stop.clone(), ana.clone());
        tokio::spawn(async move {
            let bulk = "mutation($i: [DealInput!]!) { bulkUpsertDeals(inputs: $i) { created updated errors { code message } } }";
            let mut round = 0;
            while !stop.load(Ordering::SeqCst) {
                let inputs: Vec<Value> = (0..10)
                    .map(|i| json!({ "externalId": format!("w-{i}"), "name": format!("W{i}"), "amount": format!("{}", 100 + round), "ownerId": ana }))
                    .collect();
                let d = app.ok(bulk, json!({ "i": inputs })).await;
                assert_eq!(d["bulkUpsertDeals"]["errors"], json!([]));
                round += 1;
            }
            round
        })
    };
    let del = "mutation($id: ID!) { deleteWebhook(id: $id) }";
    for _ in 0..12 {
        let mut hooks = Vec::new();
        for _ in 0..3 {
            hooks.push(
                create_hook(&app, &receiver.url, json!(["DEAL_CREATED", "DEAL_UPDATED"]))
                    .await
                    .0,
            );
        }
        let before = receiver.received().len();
        let deadline = Instant::now() + Duration::from_secs(10);
        while receiver.received().len() < before + 3 {
            assert!(Instant::now() < deadline, "nothing delivered");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let admin = app.admin_token();
        let deletes = hooks
            .iter()
            .map(|h| app.gql(&admin, del, json!({ "id": h })));
        for mut body in futures::future::join_all(deletes).await {
            // Every answer states its cost; the rest is compared whole.
            let extensions = body.as_object_mut().unwrap().remove("extensions");
            assert!(extensions.unwrap()["cost"]["requested"].is_u64());
            assert_eq!(body, json!({ "data": { "deleteWebhook": true } }));
        }
    }
    stop.store(true, Ordering::SeqCst);
    let rounds = writer.await.unwrap();
    assert!(rounds > 0);
    assert_eq!(app.count_rows("webhook").await, 0);
    // Give in-flight attempts time to be recorded, then nothing is orphaned.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.count_rows("webhook_delivery").await, 0);
    assert_eq!(app.count_rows("webhook_attempt").await, 0);
}

worker_tests!(
    default_policy_refuses_local_destinations,
    the_allow_list_permits_only_what_it_names,
    a_name_resolving_to_a_local_address_is_refused_at_delivery,
    the_policy_is_checked_again_at_delivery,
    last_error_is_a_class_of_failure,
    secrets_are_encrypted_at_rest_and_still_sign,
    a_dead_receiver_never_delays_a_healthy_one,
    deleting_webhooks_while_delivering_never_fails,
);
