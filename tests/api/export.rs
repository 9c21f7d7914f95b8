//! BI exports over HTTP (docs/design.md, BI access): every dataset under each
//! role's scope, CSV and NDJSON, the filters, gzip, a client that leaves, a
//! failure mid-stream, the audit entry, metrics as tables and the metric
//! definitions; each on SQLite and PostgreSQL.
use std::io::Read;
use std::time::Duration;

use api::auth::Role;
use serde_json::{json, Value};

use crate::db_tests;
use crate::helpers::{id_num, spawn_app_with, Backend, TestApp};

db_tests!(
    deals_in_csv_and_ndjson_under_every_role,
    every_dataset_follows_the_graphql_roles_and_scope,
    filters_narrow_the_rows,
    bad_requests_are_refused_with_a_json_error,
    gzip_when_the_client_accepts_it,
    every_export_is_audited,
    metrics_as_tables_equal_the_graphql_answers,
    metric_definitions_are_published_and_enforced,
);

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

backend_tests!(a_client_that_leaves_stops_the_export => client_leaves);
backend_tests!(a_failure_mid_stream_is_detectable => failure_mid_stream);

/// GET an export path (with its query) with a token and headers.
async fn get(
    app: &TestApp,
    token: Option<&str>,
    path: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = app.http.get(format!("{}{path}", app.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("request")
}

/// The body of a 200 answer as text.
async fn text(app: &TestApp, token: &str, path: &str) -> String {
    let res = get(app, Some(token), path, &[]).await;
    let status = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// CSV rows (after the header) as fields; no field of these fixtures is quoted.
fn csv(body: &str) -> (Vec<String>, Vec<Vec<String>>) {
    assert!(body.ends_with("\r\n") || body.is_empty(), "{body:?}");
    let mut lines = body.split("\r\n").filter(|l| !l.is_empty());
    let header = lines
        .next()
        .expect("a header row")
        .split(',')
        .map(str::to_owned)
        .collect();
    let rows = lines
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect();
    (header, rows)
}

fn ndjson(body: &str) -> Vec<Value> {
    body.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The ids of a CSV export (first column), sorted.
async fn ids(app: &TestApp, token: &str, path: &str) -> Vec<i64> {
    let (header, rows) = csv(&text(app, token, path).await);
    assert_eq!(header[0], "id");
    let mut ids: Vec<i64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    ids.sort_unstable();
    ids
}

/// A refusal: the status and `{"error": {"code", "message"}}`.
async fn refused(
    app: &TestApp,
    token: Option<&str>,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, String) {
    let res = get(app, token, path, headers).await;
    let status = res.status().as_u16();
    let body: Value = res.json().await.expect("a JSON error body");
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// Two territories; Max manages Ada; Ben is outside the team. Deals:
/// Ada won 1,234.50 (Q1 2025, East) and open 2,000 in Trial (East, expected
/// 2025-05-15); Ben lost 500 (Q1 2025, West); Max won 10,000 (Q2 2025, West).
struct Org {
    max: String,
    ada: String,
    ben: String,
    east: String,
    west: String,
    ada_won: String,
    ada_open: String,
    ben_lost: String,
    max_won: String,
}

async fn org(app: &TestApp) -> Org {
    let east = app.create_territory("East", Some("SMB"), None).await;
    let west = app.create_territory("West", Some("ENTERPRISE"), None).await;
    let max = app.create_rep("Max", None, Some(&west), json!({})).await;
    let ada = app
        .create_rep("Ada", Some(&max), Some(&east), json!({}))
        .await;
    let ben = app.create_rep("Ben", None, Some(&west), json!({})).await;
    let deal = |name: &str,
                owner: &str,
                stage: String,
                amount: &str,
                terr: &str,
                opened: &str,
                closed: Option<&str>,
                expected: Option<&str>| {
        json!({
            "name": name, "ownerId": owner, "stageId": stage, "amount": amount,
            "territoryId": terr, "openedAt": opened, "closedAt": closed,
            "expectedCloseDate": expected,
        })
    };
    let ada_won = app
        .create_deal(deal(
            "Ada won",
            &ada,
            app.stage("Won").await,
            "1234.50",
            &east,
            "2025-01-10T00:00:00Z",
            Some("2025-02-01T00:00:00Z"),
            None,
        ))
        .await;
    let ada_open = app
        .create_deal(deal(
            "Ada, \"open\"",
            &ada,
            app.stage("Trial").await,
            "2000",
            &east,
            "2025-01-20T00:00:00Z",
            None,
            Some("2025-05-15"),
        ))
        .await;
    let ben_lost = app
        .create_deal(deal(
            "Ben lost",
            &ben,
            app.stage("Lost").await,
            "500",
            &west,
            "2025-01-05T00:00:00Z",
            Some("2025-03-01T00:00:00Z"),
            None,
        ))
        .await;
    let max_won = app
        .create_deal(deal(
            "Max won",
            &max,
            app.stage("Won").await,
            "10000",
            &west,
            "2025-03-01T00:00:00Z",
            Some("2025-04-10T00:00:00Z"),
            None,
        ))
        .await;
    Org {
        max,
        ada,
        ben,
        east,
        west,
        ada_won,
        ada_open,
        ben_lost,
        max_won,
    }
}

fn n(id: &str) -> i64 {
    id_num(id)
}

async fn deals_in_csv_and_ndjson_under_every_role(app: TestApp) {
    let o = org(&app).await;
    let all = {
        let mut v = vec![n(&o.ada_won), n(&o.ada_open), n(&o.ben_lost), n(&o.max_won)];
        v.sort_unstable();
        v
    };
    for role in [Role::Admin, Role::Ops, Role::Viewer, Role::Integration] {
        assert_eq!(
            ids(&app, &app.token(role, None), "/export/deals").await,
            all,
            "{role:?}"
        );
    }
    // MANAGER Max: his own deal and Ada's; REP Ada: hers; REP Ben: his.
    let manager = app.token(Role::Manager, Some(n(&o.max)));
    let mut team = vec![n(&o.ada_won), n(&o.ada_open), n(&o.max_won)];
    team.sort_unstable();
    assert_eq!(ids(&app, &manager, "/export/deals").await, team);
    let ada = app.token(Role::Rep, Some(n(&o.ada)));
    let mut own = vec![n(&o.ada_won), n(&o.ada_open)];
    own.sort_unstable();
    assert_eq!(ids(&app, &ada, "/export/deals").await, own);
    let ben = app.token(Role::Rep, Some(n(&o.ben)));
    assert_eq!(ids(&app, &ben, "/export/deals").await, vec![n(&o.ben_lost)]);

    // CSV: the header, exact money, ISO instants, a quoted name, empty nulls.
    let res = get(&app, Some(&ada), "/export/deals?format=csv", &[]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "text/csv; charset=utf-8; header=present"
    );
    let body = res.text().await.unwrap();
    let mut lines = body.split("\r\n");
    assert_eq!(
        lines.next().unwrap(),
        "id,external_id,name,amount,currency,owner_id,account_id,territory_id,stage_id,status,\
         forecast_category,source,playbook_id,opened_at,expected_close_date,closed_at,lost_reason,\
         version,push_count,created_at,updated_at"
    );
    let won = lines.next().unwrap();
    let prefix = format!(
        "{},,Ada won,1234.50,USD,{},,{},{},WON,CLOSED,,,2025-01-10T00:00:00.000000Z,,2025-02-01T00:00:00.000000Z,,2,0,",
        n(&o.ada_won),
        n(&o.ada),
        n(&o.east),
        n(&app.stage("Won").await)
    );
    assert!(won.starts_with(&prefix), "{won}\n{prefix}");
    let open = lines.next().unwrap();
    assert!(
        open.starts_with(&format!(
            "{},,\"Ada, \"\"open\"\"\",2000.00,USD,",
            n(&o.ada_open)
        )),
        "{open}"
    );
    assert!(
        open.contains(",OPEN,PIPELINE,,,2025-01-20T00:00:00.000000Z,2025-05-15,,,1,0,"),
        "{open}"
    );
    assert_eq!(lines.next(), Some(""));
    assert_eq!(lines.next(), None);

    // NDJSON by Accept: one object per line, money as an exact string,
    // ids as numbers, nulls as null.
    let res = get(
        &app,
        Some(&ada),
        "/export/deals",
        &[("Accept", "application/x-ndjson")],
    )
    .await;
    assert_eq!(
        res.headers()["content-type"],
        "application/x-ndjson; charset=utf-8"
    );
    let rows = ndjson(&res.text().await.unwrap());
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["id"], json!(n(&o.ada_won)));
    assert_eq!(rows[0]["amount"], "1234.50");
    assert_eq!(rows[0]["closed_at"], "2025-02-01T00:00:00.000000Z");
    assert_eq!(rows[0]["account_id"], Value::Null);
    assert_eq!(rows[1]["name"], "Ada, \"open\"");
    assert_eq!(rows[1]["expected_close_date"], "2025-05-15");
    // ?format= wins over Accept.
    let res = get(
        &app,
        Some(&ada),
        "/export/deals?format=ndjson",
        &[("Accept", "text/csv")],
    )
    .await;
    assert_eq!(ndjson(&res.text().await.unwrap()).len(), 2);
}

async fn every_dataset_follows_the_graphql_roles_and_scope(app: TestApp) {
    let o = org(&app).await;
    app.set_quota(&o.ada, "2025-Q1", "5000").await;
    app.set_quota(&o.ben, "2025-Q1", "7000").await;
    let admin = app.admin_token();
    let viewer = app.token(Role::Viewer, None);
    let integration = app.token(Role::Integration, None);
    let manager = app.token(Role::Manager, Some(n(&o.max)));
    let ada = app.token(Role::Rep, Some(n(&o.ada)));

    // Reps: REP itself, MANAGER its team, the others everyone.
    assert_eq!(ids(&app, &ada, "/export/reps").await, vec![n(&o.ada)]);
    let mut team = vec![n(&o.max), n(&o.ada)];
    team.sort_unstable();
    assert_eq!(ids(&app, &manager, "/export/reps").await, team);
    assert_eq!(ids(&app, &integration, "/export/reps").await.len(), 3);
    // Stage changes and revisions follow their deal's owner. A deal created
    // closed has two of each (opened in the first stage, then closed), an
    // open one one.
    let (h, rows) = csv(&text(&app, &ada, "/export/stage_changes").await);
    assert_eq!(
        h,
        [
            "id",
            "deal_id",
            "from_stage_id",
            "to_stage_id",
            "changed_at",
            "actor"
        ]
    );
    let mut deals: Vec<i64> = rows.iter().map(|r| r[1].parse().unwrap()).collect();
    deals.sort_unstable();
    let mut own = vec![n(&o.ada_won), n(&o.ada_won), n(&o.ada_open)];
    own.sort_unstable();
    assert_eq!(deals, own);
    let mut revs = ndjson(&text(&app, &ada, "/export/deal_revisions?format=ndjson").await);
    // In id order; the ids of one write need not follow the versions.
    revs.sort_by_key(|r| (r["deal_id"].as_i64(), r["version"].as_i64()));
    assert_eq!(revs.len(), 3);
    assert_eq!(revs[0]["deal_id"], json!(n(&o.ada_won)));
    assert_eq!(revs[0]["amount"], "1234.50");
    assert_eq!(
        (revs[0]["version"].clone(), revs[0]["status"].clone()),
        (json!(1), json!("OPEN"))
    );
    assert_eq!(revs[0]["valid_from"], "2025-01-10T00:00:00.000000Z");
    assert_eq!(
        (revs[1]["version"].clone(), revs[1]["status"].clone()),
        (json!(2), json!("WON"))
    );
    assert_eq!(revs[1]["valid_from"], "2025-02-01T00:00:00.000000Z");
    assert_eq!(revs[2]["deal_id"], json!(n(&o.ada_open)));
    // 3 closed deals x 2 + 1 open.
    assert_eq!(ids(&app, &admin, "/export/deal_revisions").await.len(), 7);
    // Quotas: compensation readers, scoped; INTEGRATION may not.
    let q = ndjson(&text(&app, &ada, "/export/quotas?format=ndjson").await);
    assert_eq!(q.len(), 1);
    assert_eq!(q[0]["amount"], "5000.00");
    assert_eq!(q[0]["start_date"], "2025-01-01");
    assert_eq!(q[0]["end_date"], "2025-04-01");
    assert_eq!(ids(&app, &viewer, "/export/quotas").await.len(), 2);
    let (status, code, message) = refused(&app, Some(&integration), "/export/quotas", &[]).await;
    assert_eq!((status, code.as_str()), (403, "FORBIDDEN"), "{message}");
    assert!(message.contains("INTEGRATION"), "{message}");
    // Reference data for every role; stages carry exact probabilities.
    let stages = ndjson(&text(&app, &integration, "/export/stages?format=ndjson").await);
    assert_eq!(stages.len(), 7);
    assert_eq!(stages[3]["name"], "Trial");
    assert_eq!(stages[3]["probability"], "0.6");
    assert_eq!(ids(&app, &ada, "/export/territories").await.len(), 2);
    assert_eq!(ids(&app, &ada, "/export/accounts").await.len(), 0);
    // S&OP lines: SOP readers only; the audit trail: ADMIN and OPS only.
    assert_eq!(
        refused(&app, Some(&ada), "/export/sop_lines", &[]).await.0,
        403
    );
    assert_eq!(
        refused(&app, Some(&integration), "/export/sop_lines", &[])
            .await
            .0,
        403
    );
    assert_eq!(text(&app, &manager, "/export/sop_lines").await.split("\r\n").next().unwrap(),
        "id,plan_id,plan_name,plan_revision,plan_stage,kind,territory_id,month,amount,headcount,budget,note,author,generated,carried_from_plan_id,created_at");
    let (status, code, _) = refused(&app, Some(&viewer), "/export/audit", &[]).await;
    assert_eq!((status, code.as_str()), (403, "FORBIDDEN"));
    assert!(!ids(&app, &admin, "/export/audit").await.is_empty());
    // Forecast submissions: metric readers, INTEGRATION not.
    assert_eq!(
        refused(
            &app,
            Some(&integration),
            "/export/forecast_submissions",
            &[]
        )
        .await
        .0,
        403
    );
    assert_eq!(
        ids(&app, &ada, "/export/forecast_submissions").await.len(),
        0
    );
    // The list shows the datasets the token may export.
    let list: Value = get(&app, Some(&integration), "/export", &[])
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = list["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "deals",
            "deal_revisions",
            "stage_changes",
            "stages",
            "reps",
            "territories",
            "accounts",
            "leads",
            "lead_status_changes",
            "activities"
        ]
    );
}

async fn filters_narrow_the_rows(app: TestApp) {
    let o = org(&app).await;
    let admin = app.admin_token();
    assert_eq!(ids(&app, &admin, "/export/deals?status=WON").await, {
        let mut v = vec![n(&o.ada_won), n(&o.max_won)];
        v.sort_unstable();
        v
    });
    assert_eq!(
        ids(
            &app,
            &admin,
            "/export/deals?status=WON,LOST&closedIn=2025-Q1"
        )
        .await,
        {
            let mut v = vec![n(&o.ada_won), n(&o.ben_lost)];
            v.sort_unstable();
            v
        }
    );
    assert_eq!(
        ids(
            &app,
            &admin,
            &format!("/export/deals?ids={},{}", n(&o.ben_lost), n(&o.max_won))
        )
        .await,
        vec![n(&o.ben_lost), n(&o.max_won)]
    );
    assert_eq!(
        ids(&app, &admin, "/export/deals?openedIn=2025-03").await,
        vec![n(&o.max_won)]
    );
    assert_eq!(
        ids(&app, &admin, "/export/deals?expectedCloseIn=2025-05").await,
        vec![n(&o.ada_open)]
    );
    assert_eq!(
        ids(
            &app,
            &admin,
            &format!("/export/deals?territoryIds={}", n(&o.west))
        )
        .await,
        {
            let mut v = vec![n(&o.ben_lost), n(&o.max_won)];
            v.sort_unstable();
            v
        }
    );
    assert_eq!(
        ids(
            &app,
            &admin,
            &format!("/export/deals?ownerIds={}&minAmount=1500", n(&o.ada))
        )
        .await,
        vec![n(&o.ada_open)]
    );
    assert_eq!(
        ids(&app, &admin, "/export/deals?segments=SMB&search=open").await,
        vec![n(&o.ada_open)]
    );
    // updatedSince: everything was written just now; nothing after 2100.
    assert_eq!(
        ids(&app, &admin, "/export/deals?updatedSince=2020-01-01")
            .await
            .len(),
        4
    );
    // An offset's `+` left unencoded arrives as a space and still parses.
    assert_eq!(
        ids(
            &app,
            &admin,
            "/export/deals?updatedSince=2020-01-01T00:00:00+01:00"
        )
        .await
        .len(),
        4
    );
    assert!(ids(
        &app,
        &admin,
        "/export/deals?updatedSince=2100-01-01T00:00:00Z"
    )
    .await
    .is_empty());
    assert!(ids(&app, &admin, "/export/reps?updatedSince=2100-01-01")
        .await
        .is_empty());
    // Deal filters narrow stage changes and revisions by their deal.
    let (_, rows) = csv(&text(&app, &admin, "/export/stage_changes?status=LOST").await);
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r[1] == n(&o.ben_lost).to_string()));
    let revs = ndjson(
        &text(
            &app,
            &admin,
            &format!(
                "/export/deal_revisions?format=ndjson&ownerIds={}",
                n(&o.max)
            ),
        )
        .await,
    );
    assert_eq!(revs.len(), 2);
    assert!(revs
        .iter()
        .all(|r| r["amount"] == "10000.00" && r["deal_id"] == json!(n(&o.max_won))));
    // Filters combine with the scope: Ada asking for Ben's deal sees nothing.
    let ada = app.token(Role::Rep, Some(n(&o.ada)));
    assert!(
        ids(&app, &ada, &format!("/export/deals?ids={}", n(&o.ben_lost)))
            .await
            .is_empty()
    );
}

async fn bad_requests_are_refused_with_a_json_error(app: TestApp) {
    let admin = app.admin_token();
    let t = Some(admin.as_str());
    let (s, c, m) = refused(&app, t, "/export/nope", &[]).await;
    assert_eq!((s, c.as_str()), (404, "NOT_FOUND"));
    assert!(
        m.contains("\"nope\"") && m.contains("deals, deal_revisions"),
        "{m}"
    );
    let (s, c, m) = refused(&app, t, "/export/deals?format=xml", &[]).await;
    assert_eq!((s, c.as_str()), (406, "NOT_ACCEPTABLE"), "{m}");
    let (s, _, _) = refused(&app, t, "/export/deals", &[("Accept", "application/xml")]).await;
    assert_eq!(s, 406);
    for (path, param) in [
        ("/export/deals?status=FOO", "status"),
        ("/export/deals?updatedSince=yesterday", "updatedSince"),
        ("/export/deals?ids=1,x", "ids"),
        ("/export/deals?closedIn=2025-Q5", "closedIn"),
        ("/export/deals?minAmount=ten", "minAmount"),
        ("/export/deals?maxAmount=1e400", "maxAmount"),
        ("/export/deals?colour=red", "colour"),
        ("/export/deals?status=WON&status=LOST", "status"),
        ("/export/reps?status=WON", "status"),
        ("/export/metrics/winRates?groupBy=REP", "period"),
        (
            "/export/metrics/dataHealth?staleAfterDays=many",
            "staleAfterDays",
        ),
        (
            "/export/metrics/winRates?period=2025&filter=notjson",
            "filter",
        ),
    ] {
        let (s, c, m) = refused(&app, t, path, &[]).await;
        assert_eq!((s, c.as_str()), (400, "BAD_USER_INPUT"), "{path}: {m}");
        assert!(m.starts_with(param), "{path}: {m}");
    }
    // Tokens: missing, forged, as for /graphql.
    let (s, c, m) = refused(&app, None, "/export/deals", &[]).await;
    assert_eq!((s, c.as_str()), (401, "UNAUTHENTICATED"), "{m}");
    let (s, c, _) = refused(&app, Some("not.a.token"), "/export/deals", &[]).await;
    assert_eq!((s, c.as_str()), (401, "UNAUTHENTICATED"));
    let (s, _, _) = refused(&app, None, "/export/metric-definitions", &[]).await;
    assert_eq!(s, 401);
    // Nothing was exported, so nothing was audited.
    let exports = app
        .ok("{ auditLog(entityType: \"Export\") { id } }", json!({}))
        .await;
    assert_eq!(exports["auditLog"].as_array().unwrap().len(), 0);
}

async fn gzip_when_the_client_accepts_it(app: TestApp) {
    org(&app).await;
    let admin = app.admin_token();
    let plain = text(&app, &admin, "/export/deals").await;
    let res = get(
        &app,
        Some(&admin),
        "/export/deals",
        &[("Accept-Encoding", "gzip")],
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-encoding"], "gzip");
    let bytes = res.bytes().await.unwrap();
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut unzipped)
        .expect("a gzip body");
    // updated_at is the same instant in both: the rows did not change.
    assert_eq!(unzipped, plain);
    assert!(!plain.is_empty());
}

async fn every_export_is_audited(app: TestApp) {
    let o = org(&app).await;
    let ada = app.token(Role::Rep, Some(n(&o.ada)));
    text(&app, &ada, "/export/deals?format=ndjson&status=WON").await;
    text(&app, &ada, "/export/metrics/winRates?period=2025-Q1").await;
    let log = app
        .ok(
            "{ auditLog(entityType: \"Export\") { actor action entityId changes } }",
            json!({}),
        )
        .await;
    let entries = log["auditLog"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{log}");
    // Newest first.
    assert_eq!(entries[1]["actor"], "rep-tester");
    assert_eq!(entries[1]["action"], "export");
    assert_eq!(entries[1]["entityId"], "deals");
    let changes: Value = serde_json::from_str(entries[1]["changes"].as_str().unwrap()).unwrap();
    assert_eq!(
        changes,
        json!({
            "filters": [null, { "format": "ndjson", "status": "WON" }],
            "rows": [null, 1],
            "complete": [null, true],
        })
    );
    assert_eq!(entries[0]["entityId"], "metrics/winRates");
}

const WIN_RATES: &str = "query($p: Period!, $g: Dimension) { winRates(period: $p, groupBy: $g) { key { dimension id label } won lost winRate wonAmount lostAmount amountWinRate } }";
const FORECAST: &str = "query($p: Period!, $g: Dimension) { forecast(period: $p, method: STAGE_WEIGHTED, groupBy: $g, asOf: \"2025-04-30\") { rows { key { dimension id label } amount closedWon projected dealCount } } }";

async fn metrics_as_tables_equal_the_graphql_answers(app: TestApp) {
    let o = org(&app).await;
    let viewer = app.token(Role::Viewer, None);
    // winRates by REP for 2025-Q1: Ada won 1 (1,234.50), Ben lost 1 (500).
    let gql = app
        .ok_as(&viewer, WIN_RATES, json!({ "p": "2025-Q1", "g": "REP" }))
        .await;
    let (header, rows) = csv(&text(
        &app,
        &viewer,
        "/export/metrics/winRates?period=2025-Q1&groupBy=REP",
    )
    .await);
    assert_eq!(
        header,
        [
            "key_dimension",
            "key_id",
            "key_label",
            "won",
            "lost",
            "winRate",
            "wonAmount",
            "lostAmount",
            "amountWinRate"
        ]
    );
    let g = gql["winRates"].as_array().unwrap();
    assert_eq!(rows.len(), g.len());
    assert_eq!(rows.len(), 2);
    for (row, want) in rows.iter().zip(g) {
        assert_eq!(row[1], want["key"]["id"].as_str().unwrap());
        assert_eq!(row[2], want["key"]["label"].as_str().unwrap());
        assert_eq!(row[3], want["won"].to_string());
        assert_eq!(row[6], want["wonAmount"].as_str().unwrap());
        assert_eq!(row[7], want["lostAmount"].as_str().unwrap());
    }
    let ada_row = rows.iter().find(|r| r[1] == o.ada).unwrap();
    assert_eq!(&ada_row[3..], ["1", "0", "1", "1234.50", "0.00", "1"]);
    // The forecast by TERRITORY as of 2025-04-30, for 2025-Q2:
    // East: Ada's 2,000 in Trial (0.6) expected 2025-05-15 projects 1,200.00;
    // West: Max won 10,000.00 on 2025-04-10.
    let gql = app
        .ok_as(
            &viewer,
            FORECAST,
            json!({ "p": "2025-Q2", "g": "TERRITORY" }),
        )
        .await;
    let rows = ndjson(&text(&app, &viewer, "/export/metrics/forecast?format=ndjson&period=2025-Q2&method=STAGE_WEIGHTED&groupBy=TERRITORY&asOf=2025-04-30").await);
    let g = gql["forecast"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), g.len());
    for (row, want) in rows.iter().zip(g) {
        assert_eq!(row["key_id"], want["key"]["id"]);
        assert_eq!(row["amount"], want["amount"]);
        assert_eq!(row["projected"], want["projected"]);
        assert_eq!(row["dealCount"], want["dealCount"]);
    }
    let east = rows
        .iter()
        .find(|r| r["key_id"] == o.east.as_str())
        .unwrap();
    assert_eq!(
        (east["amount"].as_str(), east["projected"].as_str()),
        (Some("1200.00"), Some("1200.00"))
    );
    let west = rows
        .iter()
        .find(|r| r["key_id"] == o.west.as_str())
        .unwrap();
    assert_eq!(
        (west["amount"].as_str(), west["closedWon"].as_str()),
        (Some("10000.00"), Some("10000.00"))
    );
    // One-row answers and row lists under a field.
    let health = ndjson(&text(&app, &viewer, "/export/metrics/dataHealth?format=ndjson").await);
    assert_eq!(health.len(), 1);
    assert!(health[0]["openDealsPastExpectedClose"].is_number());
    let att = ndjson(
        &text(
            &app,
            &viewer,
            "/export/metrics/quotaAttainment?format=ndjson&period=2025-Q1",
        )
        .await,
    );
    assert_eq!(att.len(), 3);
    // The resolver's own checks answer: scope, roles, bad values.
    let ada = app.token(Role::Rep, Some(n(&o.ada)));
    let (_, rows) = csv(&text(
        &app,
        &ada,
        "/export/metrics/winRates?period=2025-Q1&groupBy=REP",
    )
    .await);
    assert_eq!(rows.len(), 1);
    let integration = app.token(Role::Integration, None);
    let (s, c, _) = refused(
        &app,
        Some(&integration),
        "/export/metrics/winRates?period=2025",
        &[],
    )
    .await;
    assert_eq!((s, c.as_str()), (403, "FORBIDDEN"));
    let (s, c, m) = refused(
        &app,
        Some(&viewer),
        "/export/metrics/winRates?period=2025-Q9",
        &[],
    )
    .await;
    assert_eq!((s, c.as_str()), (400, "BAD_USER_INPUT"), "{m}");
    let (s, _, m) = refused(
        &app,
        Some(&viewer),
        "/export/metrics/forecastCalls?period=2025",
        &[],
    )
    .await;
    assert_eq!(s, 404);
    assert!(m.contains("forecast_submissions"), "{m}");
    let (s, _, _) = refused(&app, Some(&viewer), "/export/metrics/nope", &[]).await;
    assert_eq!(s, 404);
}

async fn metric_definitions_are_published_and_enforced(app: TestApp) {
    let viewer = app.token(Role::Viewer, None);
    let body: Value = get(&app, Some(&viewer), "/export/metric-definitions", &[])
        .await
        .json()
        .await
        .unwrap();
    let defs = body["metricDefinitions"].as_array().unwrap();
    let gql = app
        .ok_as(
            &viewer,
            "{ metricDefinitions { name method kind formula reads dimensions conventions } }",
            json!({}),
        )
        .await;
    let g = gql["metricDefinitions"].as_array().unwrap();
    assert_eq!(defs.len(), g.len());
    for (d, g) in defs.iter().zip(g) {
        for k in [
            "name",
            "method",
            "kind",
            "formula",
            "reads",
            "dimensions",
            "conventions",
        ] {
            assert_eq!(d[k], g[k], "{k}");
        }
    }
    let rep_submitted = defs
        .iter()
        .find(|d| d["method"] == "REP_SUBMITTED")
        .unwrap();
    assert_eq!(
        rep_submitted["dimensions"],
        json!(["NONE", "REP", "MANAGER"])
    );
    assert_eq!(
        rep_submitted["exportPath"],
        "/export/metrics/forecast?method=REP_SUBMITTED"
    );
    let win = defs.iter().find(|d| d["name"] == "winRates").unwrap();
    assert_eq!(win["dimensions"].as_array().unwrap().len(), 11);
    assert!(win["conventions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c.as_str().unwrap().contains("half-open")));
    // The definition is what the service enforces.
    let body = app
        .gql(&viewer, "{ forecast(period: \"2025-Q1\", method: REP_SUBMITTED, groupBy: TERRITORY) { amount } }", json!({}))
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(
        body["errors"][0]["message"],
        "REP_SUBMITTED forecasts group by NONE, REP or MANAGER only"
    );
    let (s, _, m) = refused(
        &app,
        Some(&viewer),
        "/export/metrics/forecast?period=2025-Q1&method=REP_SUBMITTED&groupBy=TERRITORY",
        &[],
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(
        m,
        "REP_SUBMITTED forecasts group by NONE, REP or MANAGER only"
    );
}

/// The value of a counter at /metrics.
async fn counter(app: &TestApp, name: &str) -> u64 {
    let text = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no counter {name}"))
}

/// 20,000 deals in batches of 200 are 101 statements (the last one empty)
/// and about 5 MB of CSV. A client reads the first chunk and leaves: the
/// producer stops at once (a few batches sit in the channel and the socket
/// buffers), and does not resume.
async fn client_leaves(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.export_batch_rows = 200).await else {
        return;
    };
    api::seed::synthetic(&app.db, 20_000, 5, "USD")
        .await
        .expect("seed");
    let admin = app.admin_token();
    // The whole export, for the total.
    let before = counter(&app, "salesops_export_batches_total").await;
    let full = text(&app, &admin, "/export/deals").await;
    let whole = counter(&app, "salesops_export_batches_total").await - before;
    assert_eq!(whole, 101);
    assert_eq!(full.matches("\r\n").count(), 20_001);
    let start = counter(&app, "salesops_export_batches_total").await;
    let mut res = get(&app, Some(&admin), "/export/deals", &[]).await;
    let first = res.chunk().await.unwrap().expect("a first chunk");
    assert!(first.starts_with(b"id,external_id,"));
    drop(res);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopped = counter(&app, "salesops_export_batches_total").await - start;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let later = counter(&app, "salesops_export_batches_total").await - start;
    assert_eq!(
        stopped, later,
        "the producer kept reading after the client left"
    );
    assert!(
        stopped < 60,
        "read {stopped} of 101 batches for a client that left"
    );
    // The abandoned export is audited as incomplete.
    let log = app
        .ok(
            "{ auditLog(entityType: \"Export\", first: 1) { changes } }",
            json!({}),
        )
        .await;
    let changes: Value =
        serde_json::from_str(log["auditLog"][0]["changes"].as_str().unwrap()).unwrap();
    assert_eq!(changes["complete"], json!([null, false]));
    assert!(changes["rows"][1].as_u64().unwrap() < 20_000);
}

/// The stage-change table disappears after the first chunk: NDJSON ends
/// with an error object, CSV with an aborted connection (no clean end).
async fn failure_mid_stream(backend: Backend) {
    use sea_orm::ConnectionTrait;
    let Some(app) = spawn_app_with(backend, |c| c.export_batch_rows = 200).await else {
        return;
    };
    api::seed::synthetic(&app.db, 20_000, 9, "USD")
        .await
        .expect("seed");
    let admin = app.admin_token();
    let rename = |from: &str, to: &str| format!("ALTER TABLE {from} RENAME TO {to}");

    let mut res = get(
        &app,
        Some(&admin),
        "/export/stage_changes?format=ndjson",
        &[],
    )
    .await;
    assert_eq!(res.status(), 200);
    let mut body = res.chunk().await.unwrap().expect("a first chunk").to_vec();
    app.db
        .execute_unprepared(&rename("deal_stage_change", "dsc_away"))
        .await
        .unwrap();
    while let Some(c) = res.chunk().await.expect("NDJSON ends cleanly") {
        body.extend_from_slice(&c);
    }
    app.db
        .execute_unprepared(&rename("dsc_away", "deal_stage_change"))
        .await
        .unwrap();
    let text = String::from_utf8(body).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "INTERNAL", "{last}");
    assert!(last["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not the whole table"));
    let rows = text.lines().count() - 1;
    assert!(rows > 0 && rows.is_multiple_of(200), "{rows}");

    let mut res = get(&app, Some(&admin), "/export/stage_changes?format=csv", &[]).await;
    assert_eq!(res.status(), 200);
    res.chunk().await.unwrap().expect("a first chunk");
    app.db
        .execute_unprepared(&rename("deal_stage_change", "dsc_away"))
        .await
        .unwrap();
    let mut ended = None;
    loop {
        match res.chunk().await {
            Ok(Some(_)) => continue,
            Ok(None) => {
                ended = Some("cleanly");
                break;
            }
            Err(_) => break,
        }
    }
    app.db
        .execute_unprepared(&rename("dsc_away", "deal_stage_change"))
        .await
        .unwrap();
    assert_eq!(ended, None, "the CSV body ended cleanly after a failure");
}
