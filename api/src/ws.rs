//! GraphQL over WebSocket, the graphql-transport-ws protocol (graphql-ws,
//! Apollo Client, urql, GraphiQL), at `GET /graphql` with
//! `Upgrade: websocket` and `Sec-WebSocket-Protocol: graphql-transport-ws`.
//!
//! The token comes in the `connection_init` payload (`{"Authorization":
//! "Bearer ..."}`, or `{"headers": {"Authorization": ...}}`) or the upgrade
//! request's Authorization header; it is checked again every 5 seconds, so
//! an expired token or a deactivated rep's ends the connection (4403).
//! Each `subscribe` goes through the same checks as an HTTP request
//! (persisted documents, nesting, depth, cost) before it runs.
//!
//! Bounded: at most `SALESOPS_MAX_WS_CONNECTIONS` connections (more get
//! HTTP 503) and `SALESOPS_MAX_SUBSCRIPTIONS_PER_CONNECTION` operations per
//! connection (more get an `error` with code TOO_MANY_SUBSCRIPTIONS). A
//! client that does not read: its operations' results queue up to
//! [`QUEUE`] messages, then the operation that cannot queue is ended with an
//! `error` (code SLOW_CONSUMER); a write that does not go through within
//! [`WRITE_TIMEOUT`] closes the connection.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{guard, web, HttpRequest, HttpResponse};
use actix_ws::{CloseCode, CloseReason, Message};
use async_graphql::parser::types::OperationType;
use async_graphql::Request;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Semaphore};

use crate::auth::{Principal, Role};
use crate::graphql::errors::assign_codes;
use crate::graphql::subscription::SLOW_CONSUMER;
use crate::graphql::{loaders, AppSchema, RequestCtx};
use crate::http::{prepare, request_error, AppState};

pub const PROTOCOL: &str = "graphql-transport-ws";
/// Results queued per connection before a non-reading client's operation
/// is ended.
pub const QUEUE: usize = 64;
/// How long one write to the client may take before the connection closes.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the client has to send `connection_init`.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the connection's token (and rep) is checked again.
pub const RECHECK: Duration = Duration::from_secs(5);
/// Largest message accepted from the client.
const MAX_FRAME: usize = 1 << 20;

/// The WebSocket limits of a process.
pub struct WsLimits {
    connections: Arc<Semaphore>,
    pub max_connections: usize,
    pub max_subscriptions: usize,
}

impl WsLimits {
    pub fn new(max_connections: usize, max_subscriptions: usize) -> Self {
        Self {
            connections: Arc::new(Semaphore::new(max_connections)),
            max_connections,
            max_subscriptions,
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.max_connections - self.connections.available_permits()
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/graphql",
        web::get()
            .guard(guard::fn_guard(|ctx| {
                ctx.head()
                    .headers()
                    .get(header::UPGRADE)
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
            }))
            .to(upgrade),
    );
}

fn offers_protocol(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == PROTOCOL)
}

fn refuse(status: actix_web::http::StatusCode, message: &str, code: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json; charset=utf-8")
        .body(
            json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })
                .to_string(),
        )
}

async fn upgrade(
    req: HttpRequest,
    body: web::Payload,
    st: web::Data<AppState>,
    schema: web::Data<AppSchema>,
    limits: web::Data<Arc<WsLimits>>,
) -> HttpResponse {
    if !offers_protocol(&req) {
        return refuse(
            actix_web::http::StatusCode::BAD_REQUEST,
            "WebSocket clients must speak graphql-transport-ws (Sec-WebSocket-Protocol)",
            "BAD_USER_INPUT",
        );
    }
    let Ok(permit) = limits.connections.clone().try_acquire_owned() else {
        let mut res = refuse(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "at most {} WebSocket connections at once (SALESOPS_MAX_WS_CONNECTIONS)",
                limits.max_connections
            ),
            "QUERY_TOO_COMPLEX",
        );
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return res;
    };
    let header_token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (mut res, session, msgs) = match actix_ws::handle(&req, body) {
        Ok(x) => x,
        Err(e) => return e.error_response(),
    };
    res.headers_mut().insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(PROTOCOL),
    );
    let conn = Connection {
        st: st.into_inner(),
        schema: schema.into_inner(),
        max_subscriptions: limits.max_subscriptions,
        header_token,
    };
    actix_web::rt::spawn(async move {
        conn.run(session, msgs.max_frame_size(MAX_FRAME)).await;
        drop(permit);
    });
    res
}

/// What operations send to the writer.
enum Out {
    /// A result, as JSON text (keys in selection-set order).
    Next(String, String),
    /// An operation ended (by itself, or refused: with errors).
    Done(String, Option<Value>),
}

struct Connection {
    st: Arc<AppState>,
    schema: Arc<AppSchema>,
    max_subscriptions: usize,
    header_token: Option<String>,
}

fn close(code: u16, description: &str) -> Option<CloseReason> {
    Some(CloseReason {
        code: CloseCode::Other(code),
        description: Some(description.to_owned()),
    })
}

/// The Authorization value of a connection_init payload.
fn token_of(payload: &Value) -> Option<String> {
    let pick = |o: &Value| {
        ["Authorization", "authorization"]
            .iter()
            .find_map(|k| o.get(k).and_then(|v| v.as_str()).map(str::to_owned))
    };
    pick(payload).or_else(|| payload.get("headers").and_then(pick))
}

impl Connection {
    /// Who the token names, if it is valid and (REP, MANAGER) its rep active.
    async fn principal(&self, token: Option<&str>) -> Option<Principal> {
        let p = self.st.jwt.authenticate(token).ok()?;
        if let (Role::Rep | Role::Manager, Some(rep)) = (p.role, p.rep_id) {
            if !self.st.active_reps.check(&self.st.db, rep).await.ok()? {
                return None;
            }
        }
        Some(p)
    }

    async fn run(self, mut session: actix_ws::Session, mut msgs: actix_ws::MessageStream) {
        let (tx, mut rx) = mpsc::channel::<Out>(QUEUE);
        // Ends of operations: never more than one per operation, so this
        // cannot grow past the subscription limit.
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Out>();
        let mut token: Option<String> = None;
        let mut principal: Option<Principal> = None;
        let mut ops: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
        let init_deadline = tokio::time::sleep(INIT_TIMEOUT);
        tokio::pin!(init_deadline);
        let mut recheck = tokio::time::interval(RECHECK);
        recheck.tick().await;
        let reason = loop {
            tokio::select! {
                biased;
                Some(out) = rx.recv() => {
                    if let Out::Next(id, payload) = out {
                        if !ops.contains_key(&id) {
                            continue;
                        }
                        // By hand: a serde_json::Value would sort the
                        // payload's keys.
                        let msg = format!(
                            r#"{{"id":{},"type":"next","payload":{payload}}}"#,
                            Value::String(id)
                        );
                        if !send_text(&mut session, msg).await {
                            break None;
                        }
                    }
                }
                Some(out) = done_rx.recv() => {
                    if let Out::Done(id, errors) = out {
                        // Already completed by the client: nothing to say.
                        if ops.remove(&id).is_none() {
                            continue;
                        }
                        let msg = match errors {
                            Some(e) => json!({ "id": id, "type": "error", "payload": e }),
                            None => json!({ "id": id, "type": "complete" }),
                        };
                        if !send(&mut session, msg).await {
                            break None;
                        }
                    }
                }
                _ = &mut init_deadline, if principal.is_none() => {
                    break close(4408, "Connection initialisation timeout");
                }
                _ = recheck.tick(), if principal.is_some() => {
                    if self.principal(token.as_deref()).await.is_none() {
                        break close(4403, "Forbidden: the token expired or its rep is no longer active");
                    }
                }
                msg = msgs.next() => {
                    let text = match msg {
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(Message::Ping(b))) => {
                            if session.pong(&b).await.is_err() { break None; }
                            continue;
                        }
                        Some(Ok(Message::Pong(_))) | Some(Ok(Message::Nop)) => continue,
                        Some(Ok(Message::Close(_))) | None => break None,
                        Some(Ok(Message::Binary(_))) | Some(Ok(Message::Continuation(_))) => {
                            break close(4400, "graphql-transport-ws messages are JSON text");
                        }
                        Some(Err(_)) => break close(4400, "invalid WebSocket frame"),
                    };
                    let Ok(msg) = serde_json::from_str::<Value>(&text) else {
                        break close(4400, "invalid message: not JSON");
                    };
                    match msg.get("type").and_then(|t| t.as_str()) {
                        Some("connection_init") => {
                            if principal.is_some() {
                                break close(4429, "Too many initialisation requests");
                            }
                            let given = msg
                                .get("payload")
                                .and_then(token_of)
                                .or_else(|| self.header_token.clone());
                            match self.principal(given.as_deref()).await {
                                Some(p) => {
                                    principal = Some(p);
                                    token = given;
                                    if !send(&mut session, json!({ "type": "connection_ack" })).await {
                                        break None;
                                    }
                                }
                                None => break close(4403, "Forbidden: a valid bearer token is required"),
                            }
                        }
                        Some("ping") => {
                            if !send(&mut session, json!({ "type": "pong" })).await {
                                break None;
                            }
                        }
                        Some("pong") => {}
                        Some("subscribe") => {
                            let Some(p) = principal.clone() else {
                                break close(4401, "Unauthorized");
                            };
                            let Some(id) = msg.get("id").and_then(|i| i.as_str()).map(str::to_owned) else {
                                break close(4400, "subscribe: id is required");
                            };
                            if ops.contains_key(&id) {
                                break close(4409, &format!("Subscriber for {id} already exists"));
                            }
                            let Some(payload) = msg.get("payload") else {
                                break close(4400, "subscribe: payload is required");
                            };
                            if ops.len() >= self.max_subscriptions {
                                let e = json!([{
                                    "message": format!(
                                        "at most {} operations per connection \
                                         (SALESOPS_MAX_SUBSCRIPTIONS_PER_CONNECTION); complete one first",
                                        self.max_subscriptions
                                    ),
                                    "extensions": { "code": "TOO_MANY_SUBSCRIPTIONS" }
                                }]);
                                let msg = json!({ "id": id, "type": "error", "payload": e });
                                if !send(&mut session, msg).await { break None; }
                                continue;
                            }
                            let req = match request_of(payload) {
                                Ok(r) => r,
                                Err(m) => break close(4400, &m),
                            };
                            let task = self.start(id.clone(), req, p, tx.clone(), done_tx.clone());
                            ops.insert(id, task);
                        }
                        Some("complete") => {
                            if let Some(id) = msg.get("id").and_then(|i| i.as_str()) {
                                if let Some(task) = ops.remove(id) {
                                    task.abort();
                                }
                            }
                        }
                        _ => break close(4400, "invalid message type"),
                    }
                }
            }
        };
        for (_, task) in ops.drain() {
            task.abort();
        }
        let _ = session.close(reason).await;
    }

    /// Checks and starts one operation; its results go to `tx`, its end to
    /// `done`.
    fn start(
        &self,
        id: String,
        mut req: Request,
        principal: Principal,
        tx: mpsc::Sender<Out>,
        done: mpsc::UnboundedSender<Out>,
    ) -> tokio::task::JoinHandle<()> {
        let refused = |resp: async_graphql::Response| {
            let mut resp = resp;
            assign_codes(&mut resp.errors);
            serde_json::to_value(&resp.errors).unwrap_or_default()
        };
        let st = self.st.clone();
        let schema = self.schema.clone();
        let checked = (|| {
            if let Err((message, code)) = st.persisted.resolve(&mut req) {
                return Err(refused(request_error(message, code)));
            }
            let prepared = prepare(&st, &mut req).map_err(|r| refused(*r))?;
            let limit = st.settings.max_complexity as u64;
            if prepared.cost > limit {
                return Err(refused(request_error(
                    format!(
                        "the query costs {} and the limit is {limit} (SALESOPS_MAX_QUERY_COMPLEXITY); \
                         ask for smaller pages, fewer nested lists or fewer metrics",
                        prepared.cost
                    ),
                    "QUERY_TOO_COMPLEX",
                )));
            }
            Ok(prepared)
        })();
        tokio::spawn(async move {
            let prepared = match checked {
                Ok(p) => p,
                Err(errors) => {
                    let _ = done.send(Out::Done(id, Some(errors)));
                    return;
                }
            };
            let kind = prepared.kind;
            let (read_db, route) = if kind == Some(OperationType::Mutation) {
                (st.db.clone(), crate::replica::Route::Primary)
            } else {
                st.reads.route(&principal.subject, None).await
            };
            let request_db = crate::request_db::RequestDb::new(
                read_db.clone(),
                Some(crate::http::statement_observer(&st)),
            )
            .with_warm(st.reads.warm(route));
            let req = loaders::attach(
                req,
                &read_db,
                &request_db,
                principal.scope(),
                st.settings.max_rows_per_request,
                kind == Some(OperationType::Query),
            )
            .data(RequestCtx {
                principal,
                read_db: request_db,
            });
            let work = crate::work::RequestWork::new(&st.work);
            let timeout = st.work.request_timeout;
            let order = prepared.order;
            let cost = prepared.cost;
            let admission = st.admission.clone();
            let run = crate::work::scope(work, async {
                // Queries and mutations wait for their cost to fit
                // (admission.rs); a subscription's events are small.
                let _admitted = match kind {
                    Some(OperationType::Subscription) => None,
                    _ => Some(admission.admit(cost).await),
                };
                let mut stream = schema.execute_stream(req);
                loop {
                    // Queries and mutations have the request deadline; a
                    // subscription runs until completed.
                    let next = if kind == Some(OperationType::Subscription) {
                        stream.next().await
                    } else {
                        match tokio::time::timeout(timeout, stream.next()).await {
                            Ok(n) => n,
                            Err(_) => {
                                return Some(refused(request_error(
                                    format!(
                                        "the request ran longer than {} ms \
                                         (SALESOPS_REQUEST_TIMEOUT_MS) and was stopped",
                                        timeout.as_millis()
                                    ),
                                    "QUERY_TOO_COMPLEX",
                                )))
                            }
                        }
                    };
                    let mut resp = next?;
                    assign_codes(&mut resp.errors);
                    if resp.data == async_graphql::Value::Null
                        && !resp.errors.is_empty()
                        && resp.errors.iter().all(|e| e.path.is_empty())
                    {
                        // Refused before running (validation): an `error`.
                        return Some(serde_json::to_value(&resp.errors).unwrap_or_default());
                    }
                    if let Some((doc, op)) = &order {
                        crate::response_order::reorder(doc, op.as_deref(), &mut resp.data);
                    }
                    let payload = String::from_utf8(serde_json::to_vec(&resp).unwrap_or_default())
                        .unwrap_or_default();
                    match tx.try_send(Out::Next(id.clone(), payload)) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            tracing::info!(operation = %id, "WebSocket client does not read: operation ended");
                            return Some(json!([{
                                "message": format!(
                                    "the client did not read its results ({QUEUE} queued): \
                                     this operation was ended; subscribe again"
                                ),
                                "extensions": { "code": SLOW_CONSUMER }
                            }]));
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => return None,
                    }
                }
            });
            let errors = crate::clock::scope(st.settings.clock.clone(), run).await;
            let _ = done.send(Out::Done(id, errors));
        })
    }
}

/// A subscribe payload as a request.
fn request_of(payload: &Value) -> Result<Request, String> {
    let query = payload
        .get("query")
        .and_then(|q| q.as_str())
        .unwrap_or("")
        .to_owned();
    let mut req = Request::new(query);
    req.operation_name = payload
        .get("operationName")
        .and_then(|o| o.as_str())
        .filter(|o| !o.is_empty())
        .map(str::to_owned);
    match payload.get("variables") {
        None | Some(Value::Null) => {}
        Some(v @ Value::Object(_)) => {
            req.variables = async_graphql::Variables::from_json(v.clone());
        }
        Some(_) => return Err("subscribe: payload.variables must be an object".into()),
    }
    match payload.get("extensions") {
        None | Some(Value::Null) => {}
        Some(x @ Value::Object(_)) => {
            req.extensions = serde_json::from_value(x.clone())
                .map_err(|e| format!("subscribe: payload.extensions: {e}"))?;
        }
        Some(_) => return Err("subscribe: payload.extensions must be an object".into()),
    }
    Ok(req)
}

async fn send(session: &mut actix_ws::Session, msg: Value) -> bool {
    send_text(session, msg.to_string()).await
}

async fn send_text(session: &mut actix_ws::Session, msg: String) -> bool {
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, session.text(msg)).await,
        Ok(Ok(()))
    )
}
