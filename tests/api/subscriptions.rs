//! Subscriptions over graphql-transport-ws, with a real WebSocket client
//! (tokio-tungstenite): committed deal changes and forecast calls, scoped
//! by role, the protocol's rules and the limits.
use std::time::Duration;

use api::auth::Role;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::db_tests;
use crate::helpers::{id_num, spawn_app_with, TestApp};

db_tests!(
    deal_changes_in_commit_order_and_scope,
    deal_changed_filter,
    forecast_calls,
    protocol_rules,
    limits
);

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(app: &TestApp) -> Ws {
    let url = app.url.replace("http://", "ws://");
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (ws, res) = tokio_tungstenite::connect_async(req)
        .await
        .expect("upgrade");
    assert_eq!(
        res.headers()["sec-websocket-protocol"],
        "graphql-transport-ws"
    );
    ws
}

async fn send(ws: &mut Ws, msg: Value) {
    ws.send(Message::Text(msg.to_string().into()))
        .await
        .unwrap();
}

/// The next JSON message (pings answered); panics after 10 s.
async fn recv(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s")
            .expect("the connection is open")
            .expect("a frame");
        match msg {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => continue,
        }
    }
}

/// The close code and reason the server ends the connection with.
async fn closed(ws: &mut Ws) -> (u16, String) {
    loop {
        match tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .expect("closed within 15 s")
        {
            Some(Ok(Message::Close(Some(c)))) => return (c.code.into(), c.reason.to_string()),
            Some(Ok(Message::Text(t))) => panic!("expected a close, got {t}"),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// Connects and initialises with `token`.
async fn session(app: &TestApp, token: &str) -> Ws {
    let mut ws = connect(app).await;
    send(
        &mut ws,
        json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }),
    )
    .await;
    assert_eq!(recv(&mut ws).await, json!({ "type": "connection_ack" }));
    ws
}

async fn subscribe(ws: &mut Ws, id: &str, query: &str, variables: Value) {
    send(
        ws,
        json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } }),
    )
    .await;
}

/// No message arrives for a while (the poller runs every 50 ms in these
/// tests, so half a second is ten polls).
async fn quiet(ws: &mut Ws) {
    if let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_millis(500), ws.next()).await {
        panic!("expected nothing, got {m:?}");
    }
}

const DEAL_CHANGED: &str = "subscription($f: DealFilter) { dealChanged(filter: $f) { kind version deal { id name amount } revision { version actor amount changes { field from to } } } }";

struct Org {
    ana: String,
    bo: String,
    deal_a: String,
    deal_b: String,
}

/// Ana and Bo with one deal each (created before anyone subscribes).
async fn org(app: &TestApp) -> Org {
    let ana = app.create_rep("Ana", None, None, json!({})).await;
    let bo = app.create_rep("Bo", None, None, json!({})).await;
    let deal_a = app
        .create_deal(json!({ "name": "A", "amount": "100", "ownerId": ana }))
        .await;
    let deal_b = app
        .create_deal(json!({ "name": "B", "amount": "200", "ownerId": bo }))
        .await;
    Org {
        ana,
        bo,
        deal_a,
        deal_b,
    }
}

async fn live(app_cfg: impl FnOnce(&mut api::Config), app: TestApp) -> TestApp {
    let backend = app.backend;
    drop(app);
    spawn_app_with(backend, |c| {
        c.live_poll_ms = 50;
        app_cfg(c);
    })
    .await
    .unwrap()
}

const UPDATE: &str =
    "mutation($id: ID!, $p: DealPatch!, $v: Int) { updateDeal(id: $id, patch: $p, expectedVersion: $v) { version } }";

async fn deal_changes_in_commit_order_and_scope(app: TestApp) {
    let app = live(|_| {}, app).await;
    let o = org(&app).await;
    let mut admin = session(&app, &app.admin_token()).await;
    subscribe(&mut admin, "all", DEAL_CHANGED, json!({})).await;
    let ana_token = app.token(Role::Rep, Some(id_num(&o.ana)));
    let mut ana = session(&app, &ana_token).await;
    subscribe(&mut ana, "mine", DEAL_CHANGED, json!({})).await;
    // Subscriptions start now: the deals created before are not replayed.
    quiet(&mut admin).await;

    // A: amount 100 -> 150 (version 2); B moves to Demo (version
    // 2); a stale write to A (CONFLICT) rolls back and is never seen; A is
    // won (version 3).
    app.ok(
        UPDATE,
        json!({ "id": o.deal_a, "p": { "amount": "150" }, "v": 1 }),
    )
    .await;
    let now = chrono::Utc::now().to_rfc3339();
    app.move_deal(&o.deal_b, "Demo", &now).await;
    assert_eq!(
        app.error_code(
            &app.admin_token(),
            UPDATE,
            json!({ "id": o.deal_a, "p": { "amount": "999" }, "v": 1 })
        )
        .await,
        "CONFLICT"
    );
    app.move_deal(&o.deal_a, "Won", &now).await;

    let next = |m: Value, id: &str| {
        assert_eq!(
            (m["type"].as_str(), m["id"].as_str()),
            (Some("next"), Some(id)),
            "{m}"
        );
        m["payload"]["data"]["dealChanged"].clone()
    };
    let e1 = next(recv(&mut admin).await, "all");
    assert_eq!(
        e1,
        json!({
            "kind": "UPDATED", "version": 2,
            "deal": { "id": o.deal_a, "name": "A", "amount": "150.00" },
            "revision": { "version": 2, "actor": "admin-tester", "amount": "150.00",
                          "changes": [{ "field": "amount", "from": "100.00", "to": "150.00" }] }
        })
    );
    let e2 = next(recv(&mut admin).await, "all");
    assert_eq!(
        (
            e2["kind"].clone(),
            e2["version"].clone(),
            e2["deal"]["id"].clone()
        ),
        (json!("STAGE_CHANGED"), json!(2), json!(o.deal_b))
    );
    let e3 = next(recv(&mut admin).await, "all");
    assert_eq!(
        (
            e3["kind"].clone(),
            e3["version"].clone(),
            e3["deal"]["id"].clone()
        ),
        (json!("WON"), json!(3), json!(o.deal_a))
    );
    quiet(&mut admin).await;

    // Ana (REP) sees her deal's two versions only, not Bo's.
    let a1 = next(recv(&mut ana).await, "mine");
    let a2 = next(recv(&mut ana).await, "mine");
    assert_eq!(
        [a1["version"].clone(), a2["version"].clone()],
        [json!(2), json!(3)]
    );
    assert_eq!(a1["deal"]["id"], json!(o.deal_a));
    assert_eq!(a2["kind"], "WON");
    quiet(&mut ana).await;

    // Completing the subscription stops it; the connection stays usable.
    send(&mut admin, json!({ "id": "all", "type": "complete" })).await;
    app.ok(UPDATE, json!({ "id": o.deal_b, "p": { "name": "B2" } }))
        .await;
    quiet(&mut admin).await;
    let _ = o.bo;
}

async fn deal_changed_filter(app: TestApp) {
    let app = live(|_| {}, app).await;
    let o = org(&app).await;
    let mut ws = session(&app, &app.admin_token()).await;
    // Bo's deals of at least 300: B qualifies only after its raise.
    subscribe(
        &mut ws,
        "f",
        DEAL_CHANGED,
        json!({ "f": { "ownerIds": [o.bo], "minAmount": "300" } }),
    )
    .await;
    quiet(&mut ws).await;
    app.ok(UPDATE, json!({ "id": o.deal_a, "p": { "amount": "900" } }))
        .await;
    app.ok(
        UPDATE,
        json!({ "id": o.deal_b, "p": { "name": "B small" } }),
    )
    .await;
    // The filter is matched against the deal as it is when the poller
    // delivers the change: wait for that before raising the amount.
    quiet(&mut ws).await;
    app.ok(UPDATE, json!({ "id": o.deal_b, "p": { "amount": "300" } }))
        .await;
    let m = recv(&mut ws).await;
    let e = &m["payload"]["data"]["dealChanged"];
    assert_eq!(
        (
            e["deal"]["id"].clone(),
            e["version"].clone(),
            e["deal"]["amount"].clone()
        ),
        (json!(o.deal_b), json!(3), json!("300.00")),
        "{m}"
    );
    quiet(&mut ws).await;
    // A filter that does not parse is refused at subscribe time.
    subscribe(
        &mut ws,
        "bad",
        DEAL_CHANGED,
        json!({ "f": { "ownerIds": ["x"] } }),
    )
    .await;
    let m = recv(&mut ws).await;
    assert_eq!(m["id"], "bad");
    assert_eq!(m["type"], "next", "{m}");
    assert_eq!(
        m["payload"]["errors"][0]["extensions"]["code"],
        "BAD_USER_INPUT"
    );
    assert!(m["payload"]["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("ownerIds"));
    assert_eq!(
        recv(&mut ws).await,
        json!({ "id": "bad", "type": "complete" })
    );
}

const CALLS: &str = "subscription($p: Period) { forecastCallChanged(period: $p) { rep { id } period category amount } }";
const SUBMIT: &str = "mutation($i: SubmitForecastInput!) { submitForecast(input: $i) { id } }";

async fn forecast_calls(app: TestApp) {
    let app = live(|_| {}, app).await;
    let mia = app.create_rep("Mia", None, None, json!({})).await;
    let ann = app.create_rep("Ann", Some(&mia), None, json!({})).await;
    let cy = app.create_rep("Cy", None, None, json!({})).await;
    let mgr = app.token(Role::Manager, Some(id_num(&mia)));
    let mut m = session(&app, &mgr).await;
    subscribe(&mut m, "q3", CALLS, json!({ "p": "2026-Q3" })).await;
    let mut admin = session(&app, &app.admin_token()).await;
    subscribe(&mut admin, "any", CALLS, json!({})).await;
    quiet(&mut m).await;
    let admin_token = app.admin_token();
    for (rep, period, amount) in [
        (&ann, "2026-Q3", "1000"),
        (&cy, "2026-Q3", "700"),
        (&ann, "2026-07", "300"),
    ] {
        app.ok_as(
            &admin_token,
            SUBMIT,
            json!({ "i": { "repId": rep, "period": period, "category": "COMMIT", "amount": amount } }),
        )
        .await;
    }
    // Mia manages Ann, not Cy; she asked for Q3 only.
    let e = recv(&mut m).await;
    assert_eq!(
        e["payload"]["data"]["forecastCallChanged"],
        json!({ "rep": { "id": ann }, "period": "2026-Q3", "category": "COMMIT", "amount": "1000.00" })
    );
    quiet(&mut m).await;
    let mut amounts = vec![];
    for _ in 0..3 {
        amounts.push(
            recv(&mut admin).await["payload"]["data"]["forecastCallChanged"]["amount"].clone(),
        );
    }
    assert_eq!(
        amounts,
        [json!("1000.00"), json!("700.00"), json!("300.00")]
    );
    // INTEGRATION reads no forecasts: FORBIDDEN, then the operation ends.
    let mut int = session(&app, &app.token(Role::Integration, None)).await;
    subscribe(&mut int, "x", CALLS, json!({})).await;
    let e = recv(&mut int).await;
    assert_eq!(e["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN");
    assert_eq!(
        recv(&mut int).await,
        json!({ "id": "x", "type": "complete" })
    );
}

async fn protocol_rules(app: TestApp) {
    // No token, a bad token: 4403.
    let mut ws = connect(&app).await;
    send(&mut ws, json!({ "type": "connection_init" })).await;
    assert_eq!(closed(&mut ws).await.0, 4403);
    let mut ws = connect(&app).await;
    send(
        &mut ws,
        json!({ "type": "connection_init", "payload": { "Authorization": "Bearer nope" } }),
    )
    .await;
    assert_eq!(closed(&mut ws).await.0, 4403);
    // Subscribing before the ack: 4401.
    let mut ws = connect(&app).await;
    subscribe(&mut ws, "1", "{ stages { name } }", json!({})).await;
    assert_eq!(closed(&mut ws).await, (4401, "Unauthorized".into()));
    // A second init: 4429.
    let mut ws = session(&app, &app.admin_token()).await;
    send(&mut ws, json!({ "type": "connection_init", "payload": {} })).await;
    assert_eq!(closed(&mut ws).await.0, 4429);
    // The token may also come as headers in the payload; ping gets pong;
    // queries run over the socket too (next, then complete).
    let mut ws = connect(&app).await;
    send(
        &mut ws,
        json!({ "type": "connection_init", "payload": { "headers": { "Authorization": format!("Bearer {}", app.admin_token()) } } }),
    )
    .await;
    assert_eq!(recv(&mut ws).await["type"], "connection_ack");
    send(&mut ws, json!({ "type": "ping" })).await;
    assert_eq!(recv(&mut ws).await, json!({ "type": "pong" }));
    subscribe(&mut ws, "q", "{ stages { name } }", json!({})).await;
    let m = recv(&mut ws).await;
    assert_eq!(
        m["payload"]["data"]["stages"][0]["name"], "Discovery",
        "{m}"
    );
    assert_eq!(
        recv(&mut ws).await,
        json!({ "id": "q", "type": "complete" })
    );
    // Invalid documents and over-limit ones are an `error`, nothing runs.
    subscribe(&mut ws, "v", "subscription { noSuchField }", json!({})).await;
    let m = recv(&mut ws).await;
    assert_eq!(
        (m["id"].clone(), m["type"].clone()),
        (json!("v"), json!("error")),
        "{m}"
    );
    assert_eq!(m["payload"][0]["extensions"]["code"], "BAD_USER_INPUT");
    let deep = format!(
        "{{ reps {{ {} name {} }} }}",
        "manager { ".repeat(14),
        "}".repeat(14)
    );
    subscribe(&mut ws, "d", &deep, json!({})).await;
    let m = recv(&mut ws).await;
    assert_eq!(m["type"], "error");
    assert_eq!(m["payload"][0]["extensions"]["code"], "QUERY_TOO_COMPLEX");
    assert!(m["payload"][0]["message"]
        .as_str()
        .unwrap()
        .contains("SALESOPS_MAX_QUERY_DEPTH"));
    // The same id twice while the first runs: 4409.
    subscribe(&mut ws, "s", DEAL_CHANGED, json!({})).await;
    subscribe(&mut ws, "s", DEAL_CHANGED, json!({})).await;
    assert_eq!(
        closed(&mut ws).await,
        (4409, "Subscriber for s already exists".into())
    );
    // Another protocol is refused at the upgrade.
    let mut req = app
        .url
        .replace("http://", "ws://")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "graphql-ws".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status().as_u16(), 400)
        }
        other => panic!("expected HTTP 400, got {:?}", other.map(|x| x.1)),
    }
}

async fn limits(app: TestApp) {
    let backend = app.backend;
    drop(app);
    let app = spawn_app_with(backend, |c| {
        c.max_ws_connections = 2;
        c.max_subscriptions_per_connection = 2;
    })
    .await
    .unwrap();
    let mut a = session(&app, &app.admin_token()).await;
    subscribe(&mut a, "1", DEAL_CHANGED, json!({})).await;
    subscribe(&mut a, "2", DEAL_CHANGED, json!({})).await;
    subscribe(&mut a, "3", DEAL_CHANGED, json!({})).await;
    let m = recv(&mut a).await;
    assert_eq!(
        (m["id"].clone(), m["type"].clone()),
        (json!("3"), json!("error"))
    );
    assert_eq!(
        m["payload"][0]["extensions"]["code"],
        "TOO_MANY_SUBSCRIPTIONS"
    );
    assert!(m["payload"][0]["message"]
        .as_str()
        .unwrap()
        .contains("SALESOPS_MAX_SUBSCRIPTIONS_PER_CONNECTION"));
    // Completing one frees its slot.
    send(&mut a, json!({ "id": "1", "type": "complete" })).await;
    subscribe(&mut a, "4", DEAL_CHANGED, json!({})).await;
    quiet(&mut a).await;
    // Two connections at most: the third is HTTP 503, until one closes.
    let _b = session(&app, &app.admin_token()).await;
    let mut req = app
        .url
        .replace("http://", "ws://")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status().as_u16(), 503)
        }
        other => panic!("expected HTTP 503, got {:?}", other.map(|x| x.1)),
    }
    a.close(None).await.unwrap();
    drop(a);
    let mut ok = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let url = app.url.replace("http://", "ws://");
        let mut req = url.into_client_request().unwrap();
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        if tokio_tungstenite::connect_async(req).await.is_ok() {
            ok = true;
            break;
        }
    }
    assert!(ok, "a closed connection frees its slot");
}
