//! Metrics as tables: `GET /export/metrics/<name>?period=...&groupBy=...`
//! runs the metric's GraphQL query field with the parameters as its
//! arguments (through http::execute: the same resolver, service, scope,
//! cost and deadline as POST /graphql, so the table cannot differ from the
//! API's answer) and flattens its row list into columns: nested objects
//! join their names with `_` (`key_label`, `rep_id`). `TABLES` holds, per
//! metric definition, the arguments it takes and the columns it selects.
//! `GET /export/metric-definitions` publishes service::metric_definitions.
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use async_graphql::{Request, Value as ConstValue, Variables};
use serde_json::json;

use super::{bad_param, caller, negotiate, not_acceptable, refuse, Params, Refused};
use crate::graphql::AppSchemas;
use crate::http::{execute, AppState};
use crate::service::export::Cell;
use crate::service::metric_definitions::{self as definitions, MetricDefinition, DEFINITIONS};

/// A metric's table: its query field's arguments (parameter = argument,
/// with its GraphQL type), where its rows are, and the columns selected.
pub struct Table {
    pub field: &'static str,
    pub args: &'static [(&'static str, &'static str)],
    /// The field of the answer holding the rows; None when the answer is
    /// the row list itself, or (an object without rows) the one row.
    pub rows: Option<&'static str>,
    pub selection: &'static str,
}

const FILTER: (&str, &str) = ("filter", "DealFilter");
const PERIOD: (&str, &str) = ("period", "Period!");
const GROUP_BY: (&str, &str) = ("groupBy", "Dimension");

pub const TABLES: &[Table] = &[
    Table {
        field: "winRates",
        args: &[PERIOD, GROUP_BY, FILTER],
        rows: None,
        selection: "key { dimension id label } won lost winRate wonAmount lostAmount amountWinRate",
    },
    Table {
        field: "quotaAttainment",
        args: &[PERIOD, ("territoryId", "ID"), ("managerId", "ID")],
        rows: Some("rows"),
        selection: "rep { id name } quota closedWon attainment attainedQuota openPipeline \
                    weightedPipeline gapToQuota pipelineCoverage",
    },
    Table {
        field: "pipelineSummary",
        args: &[PERIOD, GROUP_BY, FILTER],
        rows: None,
        selection:
            "key { dimension id label } openDeals pipelineValue weightedPipeline avgDealSize \
                    avgSalesCycleDays medianSalesCycleDays winRate",
    },
    Table {
        field: "pipelineChanges",
        args: &[PERIOD, ("from", "Date"), ("to", "Date"), GROUP_BY, FILTER],
        rows: Some("rows"),
        selection: "key { dimension id label } starting created movedIn increased decreased \
                    movedOut won lost ending",
    },
    Table {
        field: "funnel",
        args: &[PERIOD, FILTER],
        rows: None,
        selection: "stage { id name } entered advanced lostHere conversionRate avgDaysInStage",
    },
    Table {
        field: "repPerformance",
        args: &[
            PERIOD,
            ("compareTo", "Period"),
            ("territoryId", "ID"),
            ("managerId", "ID"),
        ],
        rows: None,
        selection: "rep { id name } current previous currentAttainment previousAttainment change \
                    quadrant",
    },
    Table {
        field: "commissions",
        args: &[PERIOD],
        rows: None,
        selection: "rep { id name } quota closedWon attainment rate qualified earned",
    },
    Table {
        field: "metricSeries",
        args: &[
            ("metric", "Metric!"),
            PERIOD,
            ("granularity", "Granularity!"),
            GROUP_BY,
            FILTER,
        ],
        rows: None,
        selection: "bucket start key { dimension id label } value amount change partial",
    },
    Table {
        field: "dataHealth",
        args: &[("staleAfterDays", "Int")],
        rows: None,
        selection: "openDealsPastExpectedClose openDealsWithoutExpectedClose openDealsNotUpdated \
                    repsWithoutTerritory inactiveRepsOwningOpenDeals",
    },
    Table {
        field: "forecast",
        args: &[
            PERIOD,
            ("method", "ForecastMethod!"),
            GROUP_BY,
            ("asOf", "Date"),
            ("historical", "HistoricalParams"),
            ("category", "ForecastCategory"),
            FILTER,
        ],
        rows: Some("rows"),
        selection: "key { dimension id label } amount closedWon projected dealCount",
    },
    Table {
        field: "forecastTrend",
        args: &[
            PERIOD,
            ("method", "ForecastMethod!"),
            ("from", "Date!"),
            ("to", "Date"),
            ("granularity", "Granularity!"),
            ("category", "ForecastCategory"),
        ],
        rows: None,
        selection: "asOf amount closedWon projected low high",
    },
    Table {
        field: "forecastAccuracy",
        args: &[
            ("periods", "[Period!]!"),
            ("methods", "[ForecastMethod!]"),
            ("asOfOffsetDays", "Int"),
        ],
        rows: None,
        selection: "period method asOf forecast actual absolutePercentageError accuracy",
    },
    Table {
        field: "forecastSubmissions",
        args: &[PERIOD, ("repId", "ID")],
        rows: None,
        selection: "id rep { id name } period category amount note submittedAt submittedBy kind \
                    scope",
    },
];

/// Definitions that have no table, and why.
const NOT_TABULAR: &[(&str, &str)] = &[(
    "forecastCalls",
    "forecastCalls is a tree of any depth, not a table: export the forecast_submissions \
     dataset, or /export/metrics/forecast?method=REP_SUBMITTED&groupBy=REP",
)];

pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.field == name)
}

/// The path of a definition's table, None when it has none.
pub fn export_path(d: &MetricDefinition) -> Option<String> {
    table(d.name)?;
    Some(match d.method {
        Some(m) => format!("/export/metrics/{}?method={m}", d.name),
        None => format!("/export/metrics/{}", d.name),
    })
}

/// The leaves of a selection, each as its path of field names.
pub fn leaves(selection: &str) -> Vec<Vec<String>> {
    let spaced = selection.replace('{', " { ").replace('}', " } ");
    let mut stack: Vec<String> = Vec::new();
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut last: Option<String> = None;
    for tok in spaced.split_whitespace() {
        match tok {
            "{" => {
                // The field just read is an object, not a leaf.
                if let Some(l) = last.take() {
                    out.pop();
                    stack.push(l);
                }
            }
            "}" => {
                stack.pop();
                last = None;
            }
            name => {
                let mut path = stack.clone();
                path.push(name.to_owned());
                out.push(path);
                last = Some(name.to_owned());
            }
        }
    }
    out
}

/// The column names of a selection: leaves joined to their parents by `_`.
pub fn columns(selection: &str) -> Vec<String> {
    leaves(selection).iter().map(|p| p.join("_")).collect()
}

/// The value at a leaf's path in a row.
fn at<'a>(row: &'a ConstValue, path: &[String]) -> &'a ConstValue {
    let mut v = row;
    for part in path {
        v = match v {
            ConstValue::Object(o) => o.get(part.as_str()).unwrap_or(&ConstValue::Null),
            _ => &ConstValue::Null,
        };
    }
    v
}

fn cell(v: &ConstValue) -> Cell {
    match v {
        ConstValue::Null => Cell::Null,
        ConstValue::Boolean(b) => Cell::Bool(*b),
        ConstValue::Number(n) => match n.as_i64() {
            Some(i) => Cell::Int(i),
            None => n.as_f64().map(Cell::Float).unwrap_or(Cell::Null),
        },
        ConstValue::String(s) => Cell::Text(s.clone()),
        ConstValue::Enum(e) => Cell::Text(e.to_string()),
        other => Cell::Text(other.to_string()),
    }
}

/// The variables' JSON values from the parameters, by argument type.
fn variable(name: &str, ty: &str, raw: &str) -> Result<serde_json::Value, Refused> {
    let base = ty.trim_end_matches('!');
    if base.starts_with('[') {
        return Ok(serde_json::Value::Array(
            raw.split(',')
                .map(|s| serde_json::Value::from(s.trim()))
                .collect(),
        ));
    }
    match base {
        "Int" => raw
            .trim()
            .parse::<i32>()
            .map(serde_json::Value::from)
            .map_err(|_| bad_param(name, "must be an integer")),
        "DealFilter" | "HistoricalParams" => match serde_json::from_str(raw) {
            Ok(v @ serde_json::Value::Object(_)) => Ok(v),
            _ => Err(bad_param(
                name,
                &format!("must be a JSON object (the GraphQL {base} input)"),
            )),
        },
        _ => Ok(serde_json::Value::from(raw)),
    }
}

/// The GraphQL request of a table with the given parameters.
fn request(t: &Table, params: &mut Params) -> Result<Request, Refused> {
    let mut decls = Vec::new();
    let mut uses = Vec::new();
    let mut vars = serde_json::Map::new();
    for (name, ty) in t.args {
        match params.take(name) {
            Some(raw) => {
                vars.insert((*name).to_owned(), variable(name, ty, &raw)?);
                decls.push(format!("${name}: {ty}"));
                uses.push(format!("{name}: ${name}"));
            }
            None if ty.ends_with('!') => {
                return Err(bad_param(name, "is required"));
            }
            None => {}
        }
    }
    let known: Vec<&str> = t.args.iter().map(|(n, _)| *n).collect();
    params.refuse_leftover(&format!("format, {}", known.join(", ")))?;
    let decls = if decls.is_empty() {
        String::new()
    } else {
        format!("({})", decls.join(", "))
    };
    let uses = if uses.is_empty() {
        String::new()
    } else {
        format!("({})", uses.join(", "))
    };
    let body = match t.rows {
        Some(rows) => format!("{rows} {{ {} }}", t.selection),
        None => t.selection.to_owned(),
    };
    let query = format!(
        "query Export{}{decls} {{ {}{uses} {{ {body} }} }}",
        capitalised(t.field),
        t.field
    );
    Ok(Request::new(query).variables(Variables::from_json(serde_json::Value::Object(vars))))
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn status_of(code: &str) -> StatusCode {
    match code {
        "UNAUTHENTICATED" => StatusCode::UNAUTHORIZED,
        // Allow-list mode (SALESOPS_PERSISTED_DOCUMENTS) runs registered
        // documents only, these tables' included.
        "FORBIDDEN" | "PERSISTED_QUERY_NOT_ALLOWED" => StatusCode::FORBIDDEN,
        "NOT_FOUND" => StatusCode::NOT_FOUND,
        "BAD_USER_INPUT" | "QUERY_TOO_COMPLEX" | "GRAPHQL_VALIDATION_FAILED" => {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The code of a GraphQL error, as one of the codes it can be.
fn static_code(code: &str) -> &'static str {
    const CODES: &[&str] = &[
        "UNAUTHENTICATED",
        "FORBIDDEN",
        "NOT_FOUND",
        "BAD_USER_INPUT",
        "QUERY_TOO_COMPLEX",
        "GRAPHQL_VALIDATION_FAILED",
        "PERSISTED_QUERY_NOT_ALLOWED",
    ];
    CODES
        .iter()
        .find(|c| **c == code)
        .copied()
        .unwrap_or("INTERNAL")
}

/// `GET /export/metrics/<name>`.
pub async fn table_export(
    req: HttpRequest,
    name: web::Path<String>,
    st: web::Data<AppState>,
    schema: web::Data<AppSchemas>,
) -> HttpResponse {
    let p = match caller(&st, &req).await {
        Ok(p) => p,
        Err(res) => return res.into(),
    };
    let Some(t) = table(&name) else {
        if let Some((_, why)) = NOT_TABULAR.iter().find(|(n, _)| **n == *name) {
            return refuse(StatusCode::NOT_FOUND, "NOT_FOUND", why).into();
        }
        let names: Vec<&str> = TABLES.iter().map(|t| t.field).collect();
        return refuse(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!(
                "no metric {:?}; the metrics are {}",
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
    let gql = match request(t, &mut params) {
        Ok(r) => r,
        Err(res) => return res.into(),
    };
    let mut budget = st.settings.max_complexity as u64;
    let executed = execute(&schema, &st, &p, gql, &mut budget, Default::default()).await;
    let resp = executed.resp;
    if let Some(e) = resp.errors.first() {
        let code = match e.extensions.as_ref().and_then(|x| x.get("code")) {
            Some(ConstValue::String(c)) => c.clone(),
            _ => "INTERNAL".to_owned(),
        };
        let status = status_of(&code);
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            "internal error".to_owned()
        } else {
            e.message.clone()
        };
        return HttpResponse::from(Refused {
            status,
            code: static_code(&code),
            message,
        });
    }
    let value = match &resp.data {
        ConstValue::Object(o) => o.get(t.field).cloned().unwrap_or(ConstValue::Null),
        _ => ConstValue::Null,
    };
    let rows: Vec<ConstValue> = match (t.rows, value) {
        (_, ConstValue::List(l)) => l,
        (Some(r), ConstValue::Object(o)) => match o.get(r) {
            Some(ConstValue::List(l)) => l.clone(),
            _ => Vec::new(),
        },
        (None, v @ ConstValue::Object(_)) => vec![v],
        _ => Vec::new(),
    };
    let paths = leaves(t.selection);
    let names: Vec<String> = paths.iter().map(|p| p.join("_")).collect();
    let cols: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    format.header(&mut out, &cols);
    for row in &rows {
        let cells: Vec<Cell> = paths.iter().map(|path| cell(at(row, path))).collect();
        format.row(&mut out, &cols, &cells);
    }
    let entity = format!("metrics/{}", t.field);
    if let Err(e) =
        crate::service::export::record(&st.db, &p, &entity, &audited, rows.len() as u64, true).await
    {
        tracing::error!(metric = t.field, error = %e, "metric export not audited");
    }
    HttpResponse::Ok()
        .content_type(format.content_type())
        .body(out)
}

/// `GET /export/metric-definitions`: the metric layer as JSON.
pub async fn definitions(req: HttpRequest, st: web::Data<AppState>) -> HttpResponse {
    if let Err(res) = caller(&st, &req).await {
        return res.into();
    }
    let defs: Vec<_> = DEFINITIONS
        .iter()
        .map(|d| {
            json!({
                "name": d.name,
                "method": d.method,
                "kind": match d.kind {
                    definitions::DefinitionKind::Metric => "METRIC",
                    definitions::DefinitionKind::Forecast => "FORECAST",
                },
                "formula": d.formula,
                "reads": d.reads,
                "dimensions": d.dimensions.iter().map(|x| definitions::dimension_name(*x)).collect::<Vec<_>>(),
                "conventions": d.conventions,
                "exportPath": export_path(d),
            })
        })
        .collect();
    HttpResponse::Ok().json(json!({ "metricDefinitions": defs }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections_become_flat_columns() {
        assert_eq!(
            columns("key { dimension id label } won rep { id } lost"),
            vec![
                "key_dimension",
                "key_id",
                "key_label",
                "won",
                "rep_id",
                "lost"
            ]
        );
    }

    #[test]
    fn every_definition_has_a_table_or_says_why_not() {
        for d in DEFINITIONS {
            assert!(
                table(d.name).is_some() || NOT_TABULAR.iter().any(|(n, _)| *n == d.name),
                "{} has no table",
                d.name
            );
        }
        for t in TABLES {
            assert!(
                DEFINITIONS.iter().any(|d| d.name == t.field),
                "{} has no definition",
                t.field
            );
        }
    }
}
