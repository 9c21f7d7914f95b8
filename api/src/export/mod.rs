//! BI exports over HTTP (docs/design.md, BI access):
//!
//! - `GET /export` lists the datasets; `GET /export/<dataset>` streams one
//!   (service::export) under the caller's scope, as CSV or NDJSON
//!   (`?format=` or `Accept`), gzip (or brotli, zstd) when the client
//!   accepts it;
//! - `GET /export/metrics/<name>` answers a metric or forecast query as a
//!   table (metrics.rs);
//! - `GET /export/metric-definitions` the metric layer.
//!
//! The same bearer tokens as `/graphql` (http::principal_of). Refusals are
//! `{"error": {"code", "message"}}` with 400, 401, 403, 404 or 406. Rows
//! are read in keyset batches by a producer task and handed to the socket
//! through a bounded channel: memory stays at a few batches whatever the
//! size, and when the client goes the channel closes and the producer stops
//! before its next statement. A failure after the first byte ends an NDJSON
//! stream with an `{"error": ...}` line and aborts a CSV one (no clean end
//! of the chunked body), so a partial table is never taken for a whole one.
pub mod format;
pub mod metrics;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Compress;
use actix_web::{web, HttpRequest, HttpResponse};
use rust_decimal::Decimal;
use sea_orm::ActiveEnum;
use serde_json::json;

use crate::auth::Principal;
use crate::error::AppError;
use crate::http::{principal_of, AppState};
use crate::service::deal_filter::{check_search, max_cents, min_cents};
use crate::service::export::{self as svc, Dataset, ExportFilter};
use format::Format;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/export")
            .wrap(Compress::default())
            .route("", web::get().to(list))
            .route("/metric-definitions", web::get().to(metrics::definitions))
            .route("/metrics/{name}", web::get().to(metrics::table_export))
            .route("/{dataset}", web::get().to(dataset)),
    );
}

/// A refusal, answered as `{"error": {"code": ..., "message": ...}}`.
#[derive(Debug)]
pub(crate) struct Refused {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl From<Refused> for HttpResponse {
    fn from(r: Refused) -> Self {
        let mut res = HttpResponse::build(r.status)
            .content_type("application/json; charset=utf-8")
            .body(json!({ "error": { "code": r.code, "message": r.message } }).to_string());
        if r.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if r.status == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        res
    }
}

pub(crate) fn refuse(status: StatusCode, code: &'static str, message: &str) -> Refused {
    Refused {
        status,
        code,
        message: message.to_owned(),
    }
}

/// The HTTP status of a service error.
pub(crate) fn refuse_app(e: &AppError) -> Refused {
    let status = match e {
        AppError::Forbidden(_) => StatusCode::FORBIDDEN,
        AppError::NotFound(_) => StatusCode::NOT_FOUND,
        AppError::Unauthenticated => StatusCode::UNAUTHORIZED,
        AppError::Unavailable | AppError::Internal(_) => {
            tracing::error!(error = %e, "export failed");
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "internal error",
            );
        }
        _ => StatusCode::BAD_REQUEST,
    };
    refuse(status, e.code(), &e.to_string())
}

/// The caller, or the refusal to send.
pub(crate) async fn caller(st: &AppState, req: &HttpRequest) -> Result<Principal, Refused> {
    principal_of(st, req)
        .await
        .map_err(|r| refuse(r.status, r.code, r.message))
}

/// The query string's parameters, each given at most once.
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn parse(query: &str) -> Result<Self, Refused> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            if out.iter().any(|(n, _)| *n == k) {
                return Err(bad_param(&k, "is given more than once"));
            }
            out.push((k.into_owned(), v.into_owned()));
        }
        Ok(Params(out))
    }

    /// Removes and returns a parameter.
    pub(crate) fn take(&mut self, name: &str) -> Option<String> {
        let i = self.0.iter().position(|(n, _)| n == name)?;
        Some(self.0.remove(i).1)
    }

    /// The parameters as given, for the audit entry.
    pub(crate) fn as_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
                .collect(),
        )
    }

    /// A parameter nobody took: 400 naming it.
    pub(crate) fn refuse_leftover(&self, known: &str) -> Result<(), Refused> {
        match self.0.first() {
            Some((name, _)) => Err(bad_param(
                name,
                &format!("is not a parameter here ({known})"),
            )),
            None => Ok(()),
        }
    }
}

pub(crate) fn bad_param(name: &str, why: &str) -> Refused {
    refuse(
        StatusCode::BAD_REQUEST,
        "BAD_USER_INPUT",
        &format!("{name} {why}"),
    )
}

/// The format from `?format=` or else `Accept`; None is 406.
fn negotiate(req: &HttpRequest, asked: Option<&str>) -> Option<Format> {
    if let Some(f) = asked {
        return match f.to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "ndjson" | "jsonl" => Some(Format::Ndjson),
            _ => None,
        };
    }
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim();
    if accept.is_empty() {
        return Some(Format::Csv);
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
            "text/csv" => return Some(Format::Csv),
            "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonlines" => return Some(Format::Ndjson),
            "*/*" | "text/*" => fallback = fallback.or(Some(Format::Csv)),
            _ => {}
        }
    }
    fallback
}

fn not_acceptable() -> Refused {
    refuse(
        StatusCode::NOT_ACCEPTABLE,
        "NOT_ACCEPTABLE",
        "exports are text/csv (?format=csv) or application/x-ndjson (?format=ndjson)",
    )
}

/// `GET /export`: the datasets the caller may export, with their columns.
async fn list(req: HttpRequest, st: web::Data<AppState>) -> HttpResponse {
    let p = match caller(&st, &req).await {
        Ok(p) => p,
        Err(res) => return res.into(),
    };
    let datasets: Vec<_> = svc::DATASETS
        .iter()
        .filter(|d| d.authorize(&p).is_ok())
        .map(|d| {
            json!({
                "name": d.name,
                "description": d.description,
                "columns": d.column_names(),
                "dealFilters": d.takes_deal_filter(),
            })
        })
        .collect();
    HttpResponse::Ok().json(json!({ "datasets": datasets }))
}

const COMMON_PARAMS: &str = "format, updatedSince, ids";
const DEAL_PARAMS: &str = "status, stageIds, ownerIds, territoryIds, segments, \
                           forecastCategories, minAmount, maxAmount, openedIn, expectedCloseIn, \
                           closedIn, search";

fn ids(name: &str, raw: &str) -> Result<Vec<i64>, Refused> {
    let out: Result<Vec<i64>, _> = raw.split(',').map(|s| s.trim().parse::<i64>()).collect();
    match out {
        Ok(v) if v.len() <= 5_000 => Ok(v),
        Ok(_) => Err(bad_param(name, "takes at most 5000 ids")),
        Err(_) => Err(bad_param(name, "must be comma-separated integer ids")),
    }
}

fn enums<E>(name: &str, raw: &str) -> Result<Vec<E>, Refused>
where
    E: ActiveEnum<Value = String> + sea_orm::Iterable,
{
    raw.split(',')
        .map(|s| {
            E::try_from_value(&s.trim().to_owned()).map_err(|_| {
                let names: Vec<String> = E::iter().map(|e| e.to_value()).collect();
                bad_param(
                    name,
                    &format!("has an unknown value {:?} (one of {})", s, names.join(", ")),
                )
            })
        })
        .collect()
}

fn period(name: &str, raw: &str) -> Result<crate::domain::period::Period, Refused> {
    raw.parse()
        .map_err(|e: crate::domain::period::PeriodError| {
            bad_param(name, &format!("is not a period: {e}"))
        })
}

/// An RFC 3339 instant, or a date meaning its start (UTC).
pub(crate) fn instant(name: &str, raw: &str) -> Result<chrono::DateTime<chrono::Utc>, Refused> {
    // An unencoded `+` of an offset arrives as a space.
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&raw.replace(' ', "+")) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map(crate::clock::start_of)
        .map_err(|_| bad_param(name, "must be an RFC 3339 instant or a date YYYY-MM-DD"))
}

fn money(
    name: &str,
    raw: &str,
    bound: fn(Decimal) -> Result<i64, AppError>,
) -> Result<i64, Refused> {
    let d: Decimal = raw
        .trim()
        .parse()
        .map_err(|_| bad_param(name, "must be a decimal amount"))?;
    bound(d).map_err(|e| refuse_app(&e))
}

/// The dataset's filters from the query parameters.
fn filter_of(d: &Dataset, params: &mut Params) -> Result<ExportFilter, Refused> {
    let mut f = ExportFilter::default();
    if let Some(v) = params.take("updatedSince") {
        f.updated_since = Some(instant("updatedSince", &v)?);
    }
    if let Some(v) = params.take("ids") {
        f.ids = Some(ids("ids", &v)?);
    }
    if !d.takes_deal_filter() {
        return params.refuse_leftover(COMMON_PARAMS).map(|()| f);
    }
    let g = &mut f.deal;
    if let Some(v) = params.take("status") {
        g.status = Some(enums("status", &v)?);
    }
    if let Some(v) = params.take("stageIds") {
        g.stage_ids = Some(ids("stageIds", &v)?);
    }
    if let Some(v) = params.take("ownerIds") {
        g.owner_ids = Some(ids("ownerIds", &v)?);
    }
    if let Some(v) = params.take("territoryIds") {
        g.territory_ids = Some(ids("territoryIds", &v)?);
    }
    if let Some(v) = params.take("segments") {
        g.segments = Some(enums("segments", &v)?);
    }
    if let Some(v) = params.take("forecastCategories") {
        g.forecast_categories = Some(enums("forecastCategories", &v)?);
    }
    if let Some(v) = params.take("minAmount") {
        g.min_amount_cents = Some(money("minAmount", &v, min_cents)?);
    }
    if let Some(v) = params.take("maxAmount") {
        g.max_amount_cents = Some(money("maxAmount", &v, max_cents)?);
    }
    if let Some(v) = params.take("openedIn") {
        g.opened_in = Some(period("openedIn", &v)?);
    }
    if let Some(v) = params.take("expectedCloseIn") {
        g.expected_close_in = Some(period("expectedCloseIn", &v)?);
    }
    if let Some(v) = params.take("closedIn") {
        g.closed_in = Some(period("closedIn", &v)?);
    }
    if let Some(v) = params.take("search") {
        check_search(&v, "search").map_err(|e| refuse_app(&e))?;
        g.search = Some(v);
    }
    params
        .refuse_leftover(&format!("{COMMON_PARAMS}, {DEAL_PARAMS}"))
        .map(|()| f)
}

/// `GET /export/<dataset>`.
async fn dataset(
    req: HttpRequest,
    name: web::Path<String>,
    st: web::Data<AppState>,
) -> HttpResponse {
    let p = match caller(&st, &req).await {
        Ok(p) => p,
        Err(res) => return res.into(),
    };
    let Some(d) = svc::find(&name) else {
        let names: Vec<&str> = svc::DATASETS.iter().map(|d| d.name).collect();
        return refuse(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!(
                "no dataset {:?}; the datasets are {}",
                crate::error::truncate(&name, 100),
                names.join(", ")
            ),
        )
        .into();
    };
    let mut params = match Params::parse(req.query_string()) {
        Ok(p) => p,
        Err(res) => return res.into(),
    };
    let audited = params.as_json();
    let Some(format) = negotiate(&req, params.take("format").as_deref()) else {
        return not_acceptable().into();
    };
    if let Err(e) = d.authorize(&p) {
        return refuse_app(&e).into();
    }
    let filter = match filter_of(d, &mut params) {
        Ok(f) => f,
        Err(res) => return res.into(),
    };
    stream(&st, p, d, filter, format, audited)
}

/// Starts the producer and answers with the streaming body.
fn stream(
    st: &AppState,
    p: Principal,
    d: &'static Dataset,
    filter: ExportFilter,
    format: Format,
    audited: serde_json::Value,
) -> HttpResponse {
    // Two encoded batches ahead of the socket at most.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<web::Bytes, std::io::Error>>(2);
    let reads = st.reads.clone();
    let db = st.db.clone();
    let metrics = st.metrics.clone();
    let limit = st.settings.export_batch_rows;
    actix_web::rt::spawn(async move {
        // One choice for the whole export: its batches read one database.
        let read_db = reads.route(&p.subject, None).await.0;
        let columns = d.column_names();
        let mut out = Vec::new();
        format.header(&mut out, &columns);
        let mut after = None;
        let mut rows = 0u64;
        let complete = loop {
            let batch = match d.batch(&read_db, &p, &filter, after, limit).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(dataset = d.name, error = %e, rows, "export failed");
                    let last = match format {
                        Format::Ndjson => {
                            let line = json!({ "error": {
                                "code": "INTERNAL",
                                "message": format!(
                                    "the export failed after {rows} rows: the rows above are not the whole table"
                                ),
                            }});
                            out.extend_from_slice(line.to_string().as_bytes());
                            out.push(b'\n');
                            Ok(web::Bytes::from(std::mem::take(&mut out)))
                        }
                        // An error item aborts the connection: no clean
                        // end of the chunked body.
                        Format::Csv => {
                            if !out.is_empty() {
                                let _ = tx
                                    .send(Ok(web::Bytes::from(std::mem::take(&mut out))))
                                    .await;
                            }
                            Err(std::io::Error::other("export failed"))
                        }
                    };
                    let _ = tx.send(last).await;
                    break false;
                }
            };
            metrics.record_export_batch(batch.rows.len() as u64);
            rows += batch.rows.len() as u64;
            for row in &batch.rows {
                format.row(&mut out, &columns, row);
            }
            if !out.is_empty()
                && tx
                    .send(Ok(web::Bytes::from(std::mem::take(&mut out))))
                    .await
                    .is_err()
            {
                // The client went away: stop before the next statement.
                break false;
            }
            match batch.next_after {
                Some(a) => after = Some(a),
                None => break true,
            }
        };
        // Audited before the stream ends, so a client that has the whole
        // table also finds the entry.
        if let Err(e) = svc::record(&db, &p, d.name, &audited, rows, complete).await {
            tracing::error!(dataset = d.name, error = %e, "export not audited");
        }
        drop(tx);
    });
    let body = async_stream::stream! {
        while let Some(item) = rx.recv().await {
            yield item;
        }
    };
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, format.content_type()))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}.{}\"", d.name, format.extension()),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .streaming(body)
}
