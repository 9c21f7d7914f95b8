//! HTTP endpoints: GraphQL over HTTP (POST, and GET for queries), GraphiQL,
//! health, readiness and metrics.
use std::sync::Arc;
use std::time::Instant;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use async_graphql::parser::types::OperationType;
use async_graphql::{BatchRequest, BatchResponse, Request, Response, ServerError};
use futures::FutureExt;
use sea_orm::DatabaseConnection;
use serde_json::json;

use crate::auth::{JwtKeys, Role};
use crate::graphql::errors::assign_codes;
use crate::graphql::{loaders, AppSchemas, RequestCtx};
use crate::observability::Metrics;
use crate::service::deal::DealRules;

/// Settings of the HTTP edge (and, through graphql::Shared, of resolvers).
#[derive(Debug, Clone)]
pub struct Settings {
    pub deal_rules: DealRules,
    pub max_page_size: usize,
    pub max_body_bytes: usize,
    /// Highest cost (graphql::cost) one request may have.
    pub max_complexity: usize,
    /// Deepest field nesting (graphql::cost::depth) a document may have.
    pub max_depth: usize,
    /// Rows a request may read through lists without paging.
    pub max_rows_per_request: usize,
    /// Bearer token `/metrics` requires, if any.
    pub metrics_token: Option<String>,
    /// The token GraphiQL's headers open with (`serve --demo` only).
    pub graphiql_token: Option<String>,
    /// The application's settable clock (`Config::clock`); None: the
    /// system clock.
    pub clock: Option<Arc<crate::clock::ManualClock>>,
    /// Rows an export reads per statement (SALESOPS_EXPORT_BATCH_ROWS).
    pub export_batch_rows: u64,
}

/// Shared by every request.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    /// Where queries read: the replica within its lag, else the primary
    /// (core/src/replica.rs).
    pub reads: Arc<crate::replica::ReadRouter>,
    pub jwt: Arc<JwtKeys>,
    pub settings: Arc<Settings>,
    pub metrics: Arc<Metrics>,
    /// Parsed GraphQL documents, reused across requests.
    pub documents: Arc<crate::documents::DocumentCache>,
    /// Prices documents before they run.
    pub cost: Arc<crate::graphql::cost::CostModel>,
    /// Budgets of database work per request and per process.
    pub work: Arc<crate::work::WorkLimits>,
    /// Which reps named by tokens are active.
    pub active_reps: Arc<crate::auth::ActiveReps>,
    /// Automatic persisted queries and the allow-list (persisted.rs).
    pub persisted: Arc<crate::persisted::Persisted>,
    /// The cost of the operations executing at once (admission.rs).
    pub admission: Arc<crate::admission::CostAdmission>,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/graphql", web::post().to(graphql_post))
        .route("/graphql", web::get().to(graphql_get))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics))
        .configure(crate::graphiql::routes);
}

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// The response media type the client accepts: the GraphQL-over-HTTP type
/// when asked for, else legacy application/json.
fn response_type(req: &HttpRequest) -> Option<&'static str> {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.is_empty() {
        return Some(JSON);
    }
    let mut fallback = None;
    for part in accept.split(',') {
        let media = part
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            GRAPHQL_RESPONSE => return Some(GRAPHQL_RESPONSE),
            JSON => fallback = fallback.or(Some(JSON)),
            // GraphQL over HTTP: a client that accepts anything gets the
            // legacy type every client understands.
            "*/*" | "application/*" => fallback = fallback.or(Some(JSON)),
            _ => {}
        }
    }
    fallback
}

fn error_body(message: &str, code: &str) -> serde_json::Value {
    json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })
}

fn reply(status: StatusCode, media: &str, body: Vec<u8>) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_str(&format!("{media}; charset=utf-8")).unwrap(),
        ))
        .body(body)
}

fn reject(status: StatusCode, media: &str, message: &str, code: &str) -> HttpResponse {
    let mut res = reply(
        status,
        media,
        error_body(message, code).to_string().into_bytes(),
    );
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    res
}

/// What is known of a request before it runs.
pub(crate) struct Prepared {
    pub(crate) kind: Option<OperationType>,
    /// The operation's name, to label logs and metrics.
    pub(crate) label: String,
    /// The document's cost (see graphql::cost); 0 when it does not parse.
    pub(crate) cost: u64,
    /// The document and operation, to put the response's keys in
    /// selection-set order (see response_order).
    pub(crate) order: Option<(
        async_graphql::parser::types::ExecutableDocument,
        Option<String>,
    )>,
}

/// Checks the text's nesting, parses it (through the cache) and prices it.
/// The parsed document is handed to the request so async-graphql does not
/// parse it again. `Err` is a request error to answer without running.
pub(crate) fn prepare(st: &AppState, req: &mut Request) -> Result<Prepared, Box<Response>> {
    crate::graphql::guard::check_nesting(&req.query, crate::graphql::guard::MAX_NESTING)
        .map_err(|m| Box::new(request_error(m, "QUERY_TOO_COMPLEX")))?;
    let Ok(doc) = st.documents.parse(&req.query) else {
        // async-graphql parses it again and reports the syntax error.
        return Ok(Prepared {
            kind: None,
            label: "invalid".to_owned(),
            cost: 0,
            order: None,
        });
    };
    crate::graphql::input_guard::check(&doc, &req.variables)
        .map_err(|e| Box::new(Response::from_errors(vec![e])))?;
    // Checked here rather than left to async-graphql, whose refusal names
    // neither the limit nor the setting that raises it.
    let depth = crate::graphql::cost::depth(&doc);
    let max_depth = st.settings.max_depth;
    if depth > max_depth {
        return Err(Box::new(request_error(
            format!(
                "the query nests fields {depth} levels deep and the limit is {max_depth} \
                 (SALESOPS_MAX_QUERY_DEPTH); select fewer nested levels"
            ),
            "QUERY_TOO_COMPLEX",
        )));
    }
    let (kind, label) = op_of(&doc, req);
    let cost = st
        .cost
        .cost(&doc, req.operation_name.as_deref(), &req.variables);
    let order = Some((doc.clone(), req.operation_name.clone()));
    req.set_parsed_query(doc);
    Ok(Prepared {
        kind,
        label,
        cost,
        order,
    })
}

/// A response carrying one request error (no execution took place).
pub(crate) fn request_error(message: impl Into<String>, code: &str) -> Response {
    let mut err = ServerError::new(message, None);
    err.extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
    Response::from_errors(vec![err])
}

fn op_of(
    doc: &async_graphql::parser::types::ExecutableDocument,
    req: &Request,
) -> (Option<OperationType>, String) {
    let op = match &req.operation_name {
        Some(name) => doc
            .operations
            .iter()
            .find(|(n, _)| n.map(|n| n.as_str()) == Some(name.as_str())),
        None => doc.operations.iter().next(),
    };
    match op {
        Some((name, op)) => (
            Some(op.node.ty),
            name.map(|n| n.to_string())
                .unwrap_or_else(|| "anonymous".to_owned()),
        ),
        None => (None, "unknown".to_owned()),
    }
}

/// Runs one operation. `budget` is the cost the request (a batch shares
/// one) may still spend; the operation's cost is taken from it.
/// `hints`: what the client's headers ask of its execution.
pub(crate) async fn execute<Q, M, S>(
    schemas: &crate::graphql::Schemas<Q, M, S>,
    st: &AppState,
    principal: &crate::auth::Principal,
    mut req: Request,
    budget: &mut u64,
    hints: Hints,
) -> Executed
where
    Q: async_graphql::ObjectType + 'static,
    M: async_graphql::ObjectType + 'static,
    S: async_graphql::SubscriptionType + 'static,
{
    if let Err((message, code)) = st.persisted.resolve(&mut req) {
        return refused(st, "persisted", request_error(message, code));
    }
    let prepared = match prepare(st, &mut req) {
        Ok(p) => p,
        Err(resp) => return refused(st, "invalid", *resp),
    };
    if prepared.cost > *budget {
        let limit = st.settings.max_complexity;
        let message = format!(
            "the query costs {} and the limit is {limit} (SALESOPS_MAX_QUERY_COMPLEXITY{}); \
             ask for smaller pages, fewer nested lists or fewer metrics",
            prepared.cost,
            if *budget < limit as u64 {
                ", shared by the batch"
            } else {
                ""
            }
        );
        return refused(
            st,
            &prepared.label,
            request_error(message, "QUERY_TOO_COMPLEX"),
        );
    }
    *budget -= prepared.cost;
    // Validated before with this operation and these variables: the rules
    // are skipped (documents.rs, Variant).
    let variant = crate::documents::Variant::of(&req);
    let repeat = variant
        .as_ref()
        .is_some_and(|v| st.documents.validated(&req.query, v));
    let first_run = match variant {
        Some(v) if !repeat => Some((req.query.clone(), v)),
        _ => None,
    };
    let schema = if repeat {
        &schemas.repeat
    } else {
        &schemas.strict
    };
    let Prepared {
        kind,
        label,
        cost,
        order,
    } = prepared;
    let is_mutation = kind == Some(OperationType::Mutation);
    // A mutation reads through the primary so it sees its own writes; a
    // query reads the replica when it is fresh enough and holds the
    // principal's last write.
    let (read_db, route) = if is_mutation {
        (st.db.clone(), crate::replica::Route::Primary)
    } else {
        st.reads.route(&principal.subject, hints.read_after).await
    };
    // One span per request: operation, role (never the token), and on
    // close its duration and error count.
    let span = tracing::info_span!(
        "graphql",
        operation = %label,
        role = principal.role.as_str(),
        duration_ms = tracing::field::Empty,
        errors = tracing::field::Empty,
    );
    let started = Instant::now();
    let work = crate::work::RequestWork::new(&st.work);
    if hints.skip_rollups {
        work.skip_rollups();
    }
    // Dropped unfinished (deadline, client gone, shutdown): the request's
    // SQL is cancelled.
    let mut cancel = crate::work::CancelOnDrop::new(work.clone()).counted(st.metrics.clone());
    if is_mutation {
        cancel = cancel.keep_sql();
    }
    let request_db =
        crate::request_db::RequestDb::new(read_db.clone(), Some(statement_observer(st)))
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
        principal: principal.clone(),
        read_db: request_db,
    });
    // Waits for its cost to fit beside the operations running (within the
    // deadline below); a panic in a resolver fails this request only.
    let admission = st.admission.clone();
    let admitted = async move {
        let _admitted = admission.admit(cost).await;
        schema.execute(req).await
    };
    let run = std::panic::AssertUnwindSafe(tracing::Instrument::instrument(
        crate::clock::scope(
            st.settings.clock.clone(),
            crate::work::scope(work, admitted),
        ),
        span.clone(),
    ))
    .catch_unwind();
    let timeout = st.work.request_timeout;
    let (mut resp, panicked) = match tokio::time::timeout(timeout, run).await {
        Ok(Ok(resp)) => {
            cancel.finish();
            (resp, false)
        }
        Ok(Err(_)) => {
            cancel.finish();
            tracing::error!(operation = %label, "resolver panicked");
            (request_error("internal error", "INTERNAL"), true)
        }
        Err(_) => {
            drop(cancel);
            tracing::warn!(operation = %label, "request ran past its deadline");
            let message = format!(
                "the request ran longer than {} ms (SALESOPS_REQUEST_TIMEOUT_MS) and was stopped",
                timeout.as_millis()
            );
            (request_error(message, "QUERY_TOO_COMPLEX"), false)
        }
    };
    if let Some((query, variant)) = first_run {
        // Executed (it has data): it passed validation.
        if !is_request_error(&resp) && !panicked {
            st.documents.mark_validated(&query, variant);
        }
    }
    assign_codes(&mut resp.errors);
    if let Some((doc, operation)) = &order {
        crate::response_order::reorder(doc, operation.as_deref(), &mut resp.data);
    }
    // Like GitHub's rateLimit: every answer says what it cost and the limit,
    // so a client sees how close it runs before it is refused.
    resp.extensions.insert(
        "cost".to_owned(),
        async_graphql::Value::from_json(serde_json::json!({
            "requested": cost,
            "limit": st.settings.max_complexity,
        }))
        .unwrap_or_default(),
    );
    let elapsed = started.elapsed();
    st.metrics.record_request(&label, elapsed);
    for e in &resp.errors {
        if let Some(async_graphql::Value::String(code)) =
            e.extensions.as_ref().and_then(|x| x.get("code"))
        {
            st.metrics.record_error(code);
        }
    }
    span.record("duration_ms", elapsed.as_secs_f64() * 1000.0);
    span.record("errors", resp.errors.len());
    // After a mutation (even a failed one: an earlier field may have
    // committed), the position the principal's next reads must see.
    let wrote = if is_mutation {
        st.reads.after_write(&principal.subject).await
    } else {
        None
    };
    Executed {
        resp,
        panicked,
        wrote,
    }
}

/// Counts a statement run outside sea-orm's pool path (request_db.rs) as
/// the pool's own are counted.
pub(crate) fn statement_observer(st: &AppState) -> crate::db::StatementObserver {
    let m = st.metrics.clone();
    Arc::new(move |elapsed, failed| m.record_statement(elapsed, failed))
}

/// A request answered without running (refused before execution).
fn refused(st: &AppState, label: &str, resp: Response) -> Executed {
    st.metrics.record_request(label, std::time::Duration::ZERO);
    for e in &resp.errors {
        if let Some(async_graphql::Value::String(code)) =
            e.extensions.as_ref().and_then(|x| x.get("code"))
        {
            st.metrics.record_error(code);
        }
    }
    Executed {
        resp,
        panicked: false,
        wrote: None,
    }
}

/// A response, and whether a resolver panicked (an HTTP 500 for this
/// request only; the server keeps serving).
pub(crate) struct Executed {
    pub(crate) resp: Response,
    panicked: bool,
    /// A mutation's WAL position, for the `Salesops-Read-After` header.
    wrote: Option<crate::replica::Lsn>,
}

/// A request error (parse, validation, limits): no execution took place.
fn is_request_error(resp: &Response) -> bool {
    resp.data == async_graphql::Value::Null
        && !resp.errors.is_empty()
        && resp.errors.iter().all(|e| e.path.is_empty())
}

fn respond(media: &'static str, executed: Vec<Executed>, batched: bool) -> HttpResponse {
    let panicked = executed.iter().any(|e| e.panicked);
    let wrote = executed.iter().filter_map(|e| e.wrote).max();
    let mut responses: Vec<Response> = executed.into_iter().map(|e| e.resp).collect();
    let batch = if batched {
        BatchResponse::Batch(responses)
    } else {
        BatchResponse::Single(responses.remove(0))
    };
    let status = match (&batch, media) {
        _ if panicked => StatusCode::INTERNAL_SERVER_ERROR,
        (BatchResponse::Single(r), GRAPHQL_RESPONSE) if is_request_error(r) => {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::OK,
    };
    // Written field by field (not through serde_json::Value, which would
    // sort the keys response_order put in selection-set order).
    let body = match &batch {
        BatchResponse::Single(r) => response_json(r),
        BatchResponse::Batch(rs) => {
            let mut out = b"[".to_vec();
            for (i, r) in rs.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend(response_json(r));
            }
            out.push(b']');
            out
        }
    };
    let mut res = reply(status, media, body);
    if let Some(lsn) = wrote {
        if let Ok(v) = HeaderValue::from_str(&crate::replica::format_lsn(lsn)) {
            res.headers_mut()
                .insert(header::HeaderName::from_static(READ_AFTER), v);
        }
    }
    res
}

/// Read-your-writes across processes: a mutation's answer carries its WAL
/// position; a query sent with it reads a replica only once it holds it.
const READ_AFTER: &str = crate::replica::READ_AFTER_HEADER;

/// What a request's headers ask of its execution.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Hints {
    /// The WAL position a query must see (`Salesops-Read-After`).
    pub read_after: Option<crate::replica::Lsn>,
    /// Scan the deals where rollups would answer (`Salesops-Rollups: off`),
    /// to compare both paths.
    pub skip_rollups: bool,
}

/// Whether a request's metrics may read the rollups.
const ROLLUPS: &str = "salesops-rollups";

/// The request's hints; Err: a malformed header, answered as is.
fn hints(req: &HttpRequest, media: &'static str) -> Result<Hints, Box<HttpResponse>> {
    let read_after = match req.headers().get(READ_AFTER) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(crate::replica::parse_lsn)
                .ok_or_else(|| {
                    bad_header(
                        media,
                        "the Salesops-Read-After header must be a WAL position as a mutation returned it (e.g. 16/B374D848)",
                    )
                })?,
        ),
    };
    let skip_rollups = match req.headers().get(ROLLUPS).map(|v| v.to_str()) {
        None => false,
        Some(Ok(v)) if v.eq_ignore_ascii_case("off") => true,
        Some(Ok(v)) if v.eq_ignore_ascii_case("on") => false,
        Some(_) => {
            return Err(bad_header(
                media,
                "the Salesops-Rollups header must be on or off",
            ))
        }
    };
    Ok(Hints {
        read_after,
        skip_rollups,
    })
}

fn bad_header(media: &'static str, message: &str) -> Box<HttpResponse> {
    Box::new(reject(
        StatusCode::BAD_REQUEST,
        media,
        message,
        "BAD_USER_INPUT",
    ))
}

/// One response as JSON. A request error (nothing executed) has no `data`
/// entry (GraphQL over HTTP; async-graphql writes `"data": null`).
pub(crate) fn response_json(resp: &Response) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct NoData<'a> {
        errors: &'a [ServerError],
        #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        extensions: &'a std::collections::BTreeMap<String, async_graphql::Value>,
    }
    if is_request_error(resp) {
        serde_json::to_vec(&NoData {
            errors: &resp.errors,
            extensions: &resp.extensions,
        })
        .unwrap_or_default()
    } else {
        serde_json::to_vec(resp).unwrap_or_default()
    }
}

/// Why a request's bearer token was refused.
pub(crate) struct Refusal {
    pub(crate) status: StatusCode,
    pub(crate) message: &'static str,
    pub(crate) code: &'static str,
}

/// The principal of a request's bearer token, checked as for every
/// endpoint (signature, expiry, issuer, audience, active rep). Exports
/// (export.rs) use it too.
pub(crate) async fn principal_of(
    st: &AppState,
    req: &HttpRequest,
) -> Result<crate::auth::Principal, Refusal> {
    let unauthenticated = |message: &'static str| {
        st.metrics.record_error("UNAUTHENTICATED");
        Refusal {
            status: StatusCode::UNAUTHORIZED,
            message,
            code: "UNAUTHENTICATED",
        }
    };
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let principal = st.jwt.authenticate(header).map_err(|e| {
        tracing::info!(reason = %e, "rejected token");
        unauthenticated(match e {
            crate::auth::AuthError::Missing => "a bearer token is required",
            crate::auth::AuthError::Malformed => {
                "the Authorization header must be `Bearer <token>`"
            }
            crate::auth::AuthError::Invalid(_) => "the token is invalid or expired",
        })
    })?;
    // A REP or MANAGER token acts as its rep: the rep must exist and be
    // active, or the token is refused like any other invalid one.
    if let (Role::Rep | Role::Manager, Some(rep_id)) = (principal.role, principal.rep_id) {
        match st.active_reps.check(&st.db, rep_id).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(rep_id, "token names an unknown or inactive rep");
                return Err(unauthenticated("the token's rep_id names no active rep"));
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not check the token's rep");
                return Err(Refusal {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    message: "the database is busy, try again",
                    code: "INTERNAL",
                });
            }
        }
    }
    Ok(principal)
}

async fn authenticate(
    st: &AppState,
    req: &HttpRequest,
    media: &'static str,
) -> Result<crate::auth::Principal, Box<HttpResponse>> {
    principal_of(st, req).await.map_err(|r| {
        let mut res = reject(r.status, media, r.message, r.code);
        if r.status == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        Box::new(res)
    })
}

async fn graphql_post(
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<AppState>,
    schema: web::Data<AppSchemas>,
) -> HttpResponse {
    let Some(media) = response_type(&req) else {
        return reject(
            StatusCode::NOT_ACCEPTABLE,
            JSON,
            "accept application/graphql-response+json or application/json",
            "BAD_USER_INPUT",
        );
    };
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.to_ascii_lowercase().starts_with(JSON) {
        return reject(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            media,
            "send the request as application/json",
            "BAD_USER_INPUT",
        );
    }
    let principal = match authenticate(&st, &req, media).await {
        Ok(p) => p,
        Err(res) => return *res,
    };
    let after = match hints(&req, media) {
        Ok(h) => h,
        Err(resp) => return *resp,
    };
    let batch: BatchRequest = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return reject(
                StatusCode::BAD_REQUEST,
                media,
                &format!("the body is not a GraphQL request: {e}"),
                "BAD_USER_INPUT",
            )
        }
    };
    let mut budget = st.settings.max_complexity as u64;
    let executed = match batch {
        BatchRequest::Single(r) => {
            vec![execute(&schema, &st, &principal, r, &mut budget, after).await]
        }
        BatchRequest::Batch(rs) => {
            if rs.len() > 20 {
                return reject(
                    StatusCode::BAD_REQUEST,
                    media,
                    "at most 20 operations per batch",
                    "QUERY_TOO_COMPLEX",
                );
            }
            let mut out = Vec::with_capacity(rs.len());
            for r in rs {
                out.push(execute(&schema, &st, &principal, r, &mut budget, after).await);
            }
            return respond(media, out, true);
        }
    };
    respond(media, executed, false)
}

async fn graphql_get(
    req: HttpRequest,
    st: web::Data<AppState>,
    schema: web::Data<AppSchemas>,
) -> HttpResponse {
    let query_string = req.query_string();
    let wants_html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_html && !query_string.contains("query=") {
        return crate::graphiql::respond(st.settings.graphiql_token.as_deref());
    }
    let Some(media) = response_type(&req) else {
        return reject(
            StatusCode::NOT_ACCEPTABLE,
            JSON,
            "accept application/graphql-response+json or application/json",
            "BAD_USER_INPUT",
        );
    };
    let principal = match authenticate(&st, &req, media).await {
        Ok(p) => p,
        Err(res) => return *res,
    };
    let after = match hints(&req, media) {
        Ok(h) => h,
        Err(resp) => return *resp,
    };
    let request = match parse_get(query_string) {
        Ok(r) => r,
        Err(e) => {
            return reject(
                StatusCode::BAD_REQUEST,
                media,
                &format!("bad query string: {e}"),
                "BAD_USER_INPUT",
            )
        }
    };
    let mut request = request;
    if let Err((message, code)) = st.persisted.resolve(&mut request) {
        let executed = refused(&st, "persisted", request_error(message, code));
        return respond(media, vec![executed], false);
    }
    let is_mutation = {
        // Only the operation's type: the text is checked again, and the
        // parsed document taken from the cache, when it runs.
        let mut probe = Request::new(request.query.clone());
        probe.operation_name = request.operation_name.clone();
        matches!(prepare(&st, &mut probe), Ok(p) if p.kind == Some(OperationType::Mutation))
    };
    if is_mutation {
        let mut res = reject(
            StatusCode::METHOD_NOT_ALLOWED,
            media,
            "mutations must be sent with POST",
            "BAD_USER_INPUT",
        );
        res.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return res;
    }
    let mut budget = st.settings.max_complexity as u64;
    let executed = execute(&schema, &st, &principal, request, &mut budget, after).await;
    respond(media, vec![executed], false)
}

/// The GraphQL-over-HTTP GET parameters (`operationName` in camel case, as
/// the spec spells it).
fn parse_get(query_string: &str) -> Result<Request, String> {
    #[derive(serde::Deserialize)]
    struct Params {
        #[serde(default)]
        query: String,
        #[serde(rename = "operationName")]
        operation_name: Option<String>,
        variables: Option<String>,
        extensions: Option<String>,
    }
    let p: Params = web::Query::<Params>::from_query(query_string)
        .map_err(|e| e.to_string())?
        .into_inner();
    let mut req = Request::new(p.query);
    req.operation_name = p.operation_name.filter(|n| !n.is_empty());
    if let Some(v) = p.variables.filter(|v| !v.is_empty()) {
        let json: serde_json::Value =
            serde_json::from_str(&v).map_err(|e| format!("invalid variables: {e}"))?;
        req.variables = async_graphql::Variables::from_json(json);
    }
    if let Some(x) = p.extensions.filter(|x| !x.is_empty()) {
        req.extensions =
            serde_json::from_str(&x).map_err(|e| format!("invalid extensions: {e}"))?;
    }
    Ok(req)
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// How long readiness waits for the database: a load balancer needs the
/// answer quickly, not after the pool's acquire timeout (5 s).
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

async fn readyz(st: web::Data<AppState>) -> HttpResponse {
    match tokio::time::timeout(READY_TIMEOUT, st.db.ping()).await {
        Ok(Ok(())) => HttpResponse::Ok().json(json!({ "status": "ready" })),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "database not reachable");
            HttpResponse::ServiceUnavailable().json(json!({ "status": "database unreachable" }))
        }
        Err(_) => {
            tracing::warn!("database did not answer within {READY_TIMEOUT:?}");
            HttpResponse::ServiceUnavailable().json(json!({ "status": "database unreachable" }))
        }
    }
}

/// Compares in time independent of where the inputs differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn metrics(req: HttpRequest, st: web::Data<AppState>) -> HttpResponse {
    if let Some(token) = &st.settings.metrics_token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !same_secret(given.trim().as_bytes(), token.as_bytes()) {
            return reject(
                StatusCode::UNAUTHORIZED,
                JSON,
                "GET /metrics needs the bearer token of SALESOPS_METRICS_TOKEN",
                "UNAUTHENTICATED",
            );
        }
    }
    let pool = match st.db.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => {
            let p = st.db.get_postgres_connection_pool();
            // Those waiting for the next cheap read are idle too (the
            // pool counts them as in use).
            let warm = st
                .reads
                .warm(crate::replica::Route::Primary)
                .map_or(0, |w| w.waiting());
            Some((p.size(), p.num_idle() + warm))
        }
        sea_orm::DatabaseBackend::Sqlite => {
            let p = st.db.get_sqlite_connection_pool();
            Some((p.size(), p.num_idle()))
        }
        _ => None,
    };
    let mut body = st.metrics.render(pool);
    body.push_str(&st.reads.render());
    body.push_str(&st.admission.render());
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};

    struct Panicky;

    #[Object]
    impl Panicky {
        async fn fine(&self) -> i32 {
            1
        }
        async fn boom(&self) -> i32 {
            if std::hint::black_box(true) {
                panic!("a bug in a resolver");
            }
            2
        }
    }

    async fn state() -> AppState {
        let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        let mut cfg = crate::config::Config::from_env();
        cfg.jwt_secret = Some("0123456789abcdef0123456789abcdef".into());
        cfg.jwt_public_key = None;
        AppState {
            db: db.clone(),
            reads: crate::replica::ReadRouter::primary_only(db),
            jwt: std::sync::Arc::new(crate::auth::JwtKeys::from_config(&cfg).unwrap()),
            settings: std::sync::Arc::new(Settings {
                deal_rules: crate::service::deal::DealRules {
                    currency: "USD".into(),
                },
                max_page_size: 500,
                max_body_bytes: 1 << 20,
                max_complexity: 50_000,
                max_depth: 15,
                max_rows_per_request: 50_000,
                metrics_token: None,
                graphiql_token: None,
                clock: None,
                export_batch_rows: 5_000,
            }),
            metrics: Default::default(),
            documents: Default::default(),
            cost: std::sync::Arc::new(crate::graphql::cost::CostModel::from_sdl(
                &crate::graphql::sdl(),
                500,
            )),
            work: Default::default(),
            active_reps: Default::default(),
            persisted: Default::default(),
            admission: std::sync::Arc::new(crate::admission::CostAdmission::new(0)),
        }
    }

    #[actix_web::test]
    async fn a_panicking_resolver_is_a_500_for_that_request_only() {
        let st = state().await;
        let schema = crate::graphql::Schemas::build(|| {
            Schema::build(Panicky, EmptyMutation, EmptySubscription)
        });
        let who = crate::auth::Principal {
            subject: "t".into(),
            role: crate::auth::Role::Admin,
            rep_id: None,
        };
        let bad = execute(
            &schema,
            &st,
            &who,
            Request::new("{ boom }"),
            &mut 100,
            Hints::default(),
        )
        .await;
        assert!(bad.panicked);
        let code = bad.resp.errors[0]
            .extensions
            .as_ref()
            .and_then(|e| e.get("code"))
            .cloned();
        assert_eq!(code, Some(async_graphql::Value::from("INTERNAL")));
        assert_eq!(
            respond(GRAPHQL_RESPONSE, vec![bad], false).status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        // The next request on the same schema and state is served normally.
        let good = execute(
            &schema,
            &st,
            &who,
            Request::new("{ fine }"),
            &mut 100,
            Hints::default(),
        )
        .await;
        assert!(!good.panicked && good.resp.errors.is_empty());
        assert_eq!(
            respond(GRAPHQL_RESPONSE, vec![good], false).status(),
            StatusCode::OK
        );
    }
}
