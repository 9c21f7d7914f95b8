//! Eager resolution (api/src/graphql/eager.rs) answers exactly what
//! async-graphql's own path answers: every document here is asked twice,
//! as written (plain selections: the eager path) and with every selection
//! set wrapped in an inline fragment (`{ ... { a b } }`, which the eager
//! path hands to async-graphql), and the two answers must be equal: data,
//! field order, errors and their paths.
use chrono::Datelike;
use serde_json::{json, Value};

use api::auth::Role;

use crate::db_tests;
use crate::helpers::{id_num, TestApp};

db_tests!(
    eager_answers_equal_async_graphqls,
    ready_fields_equal_their_resolvers
);

/// The same document with each selection set inside an inline fragment
/// without a type condition (the documents here have no input objects, so
/// every brace is a selection set's).
fn wrapped(doc: &str) -> String {
    doc.replace('{', "{ ... {").replace('}', "} }")
}

/// The last whole quarter before today, e.g. "2026-Q3".
fn last_quarter() -> String {
    let today = chrono::Utc::now().date_naive();
    let q = (today.month0() / 3) as i32; // the current quarter, 0-based
    let (year, quarter) = if q == 0 {
        (today.year() - 1, 4)
    } else {
        (today.year(), q)
    };
    format!("{year}-Q{quarter}")
}

async fn both(app: &TestApp, token: &str, doc: &str, vars: &Value) -> Value {
    let plain = app.gql(token, doc, vars.clone()).await;
    let standard = app.gql(token, &wrapped(doc), vars.clone()).await;
    assert_eq!(
        serde_json::to_string(&plain["data"]).unwrap(),
        serde_json::to_string(&standard["data"]).unwrap(),
        "eager and async-graphql data differ for {doc}"
    );
    // The wrapped document moves the fields' columns: compare the rest.
    let without_locations = |body: &Value| {
        let mut errors = body["errors"].clone();
        for e in errors.as_array_mut().into_iter().flatten() {
            e.as_object_mut().unwrap().remove("locations");
        }
        errors
    };
    assert_eq!(
        without_locations(&plain),
        without_locations(&standard),
        "eager and async-graphql errors differ for {doc}"
    );
    plain
}

async fn eager_answers_equal_async_graphqls(app: TestApp) {
    api::seed::demo(&app.db, "USD").await.expect("seed");
    let period = json!({ "p": last_quarter() });
    let admin = app.admin_token();
    let docs = [
        // Q1: a page with its owners and accounts, nodes and edges.
        "{ deals(first: 50) { nodes { id name amount owner { id name } account { id name } stage { name } } \
         edges { cursor node { id __typename } } } }",
        // Q4: a list of rows, each with a nested object.
        "query($p: Period!) { quotaAttainment(period: $p) { rows { rep { id name } quota closedWon attainment attainedQuota } } }",
        // Q2 with aliases, __typename and a group key.
        "query($p: Period!) { w: winRates(period: $p, groupBy: REP) { k: key { id label dimension } won lost rate: winRate __typename } \
         t: winRates(period: $p, groupBy: TERRITORY) { key { label } wonAmount } }",
        // Q5: nested lists through loaders.
        "{ territories(first: 20) { id name reps { id name deals(first: 10) { nodes { id name amount stage { id name } } } } } }",
        // A response key given twice: that selection goes the standard way.
        "{ deals(first: 5) { nodes { id id name owner { name } } } }",
        "query($p: Period!) { pipelineSummary(period: $p, groupBy: STAGE) { key { label } openDeals pipelineValue } \
         forecast(period: $p, method: STAGE_WEIGHTED, groupBy: REP) { amount rows { key { id label } amount dealCount } } }",
    ];
    for doc in docs {
        let d = both(&app, &admin, doc, &period).await;
        assert!(d.get("errors").is_none(), "{doc}: {d}");
    }
    // The answers are not empty (the comparison would prove little).
    let d = both(&app, &admin, docs[1], &period).await;
    let rows = d["data"]["quotaAttainment"]["rows"].as_array().unwrap();
    assert!(rows.len() >= 20, "{} attainment rows", rows.len());
    assert!(rows.iter().any(|r| r["closedWon"] != "0.00"));
    let d = both(&app, &admin, docs[3], &period).await;
    let reps: usize = d["data"]["territories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["reps"].as_array().unwrap().len())
        .sum();
    assert!(reps >= 10, "{reps} reps under the territories");

    // Errors inside lists: a rep reads other reps' directory entries but
    // not their email, so each out-of-scope row records a FORBIDDEN error
    // at its own path, the same on both paths.
    let reps = app.ok("{ reps(first: 2) { id } }", json!({})).await;
    let rep_id = id_num(reps["reps"][0]["id"].as_str().unwrap());
    let rep = app.token(Role::Rep, Some(rep_id));
    let d = both(
        &app,
        &rep,
        "{ territories(first: 20) { name reps { id name email } } }",
        &json!({}),
    )
    .await;
    let errors = d["errors"]
        .as_array()
        .expect("errors for other reps' email");
    assert!(errors.len() > 1);
    assert!(errors.iter().all(
        |e| e["extensions"]["code"] == "FORBIDDEN" && e["path"].as_array().unwrap().len() == 5
    ));
}

/// The argument-less scalar and enum fields of `ty` (from introspection):
/// what a type's `ReadyFields` may answer in place.
async fn scalar_fields(app: &TestApp, ty: &str) -> String {
    let d = app
        .ok(
            "query($t: String!) { __type(name: $t) { fields { name args { name } \
             type { kind ofType { kind ofType { kind } } } } } }",
            json!({ "t": ty }),
        )
        .await;
    let fields: Vec<&str> = d["__type"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["args"].as_array().unwrap().is_empty())
        .filter(|f| {
            let mut t = &f["type"];
            while t["kind"] == "NON_NULL" {
                t = &t["ofType"];
            }
            t["kind"] == "SCALAR" || t["kind"] == "ENUM"
        })
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(fields.len() >= 3, "{ty}: {fields:?}");
    fields.join(" ")
}

/// Every field a type answers in place (`ReadyFields`) equals what its
/// resolver gives: each type's scalar and enum fields, all of them, asked
/// on both paths over rows with and without their optional values, and
/// the object fields answered in place (a deal's stage, owner and account,
/// read by name or whole; an edge's node and cursor; group keys; an
/// attainment row's rep).
async fn ready_fields_equal_their_resolvers(app: TestApp) {
    api::seed::demo(&app.db, "USD").await.expect("seed");
    let admin = app.admin_token();
    // The latest deal has no account (the demo's all have one).
    let rep = app.ok("{ reps(first: 1) { id } }", json!({})).await;
    app.ok(
        "mutation($o: ID!) { createDeal(input: { name: \"No account\", amount: \"10\", ownerId: $o }) { id } }",
        json!({ "o": rep["reps"][0]["id"] }),
    )
    .await;
    let mut f = std::collections::HashMap::new();
    for ty in [
        "Deal",
        "Stage",
        "Rep",
        "Territory",
        "Account",
        "GroupKey",
        "WinRateRow",
        "RepAttainment",
        "PipelineSummaryRow",
        "ForecastRow",
    ] {
        f.insert(ty, scalar_fields(&app, ty).await);
    }
    let vars = json!({ "p": last_quarter(), "won": { "status": ["WON"] }, "lost": { "status": ["LOST"] } });
    let doc = format!(
        "query($p: Period!, $won: DealFilter, $lost: DealFilter) {{ \
         open: deals(first: 40) {{ nodes {{ {deal} stage {{ {stage} }} owner {{ id name }} account {{ id name }} }} }} \
         edges: deals(first: 20, orderBy: AMOUNT_ASC) {{ edges {{ cursor node {{ id owner {{ id name title }} account {{ {account} }} }} }} }} \
         won: deals(first: 20, filter: $won) {{ nodes {{ {deal} }} }} \
         lost: deals(first: 20, filter: $lost) {{ nodes {{ {deal} }} }} \
         stages {{ {stage} }} \
         reps(first: 30) {{ {rep} }} \
         territories(first: 30) {{ {territory} }} \
         accounts(first: 30) {{ {account} }} \
         winRates(period: $p, groupBy: REP) {{ key {{ {key} }} {win} }} \
         quotaAttainment(period: $p) {{ rows {{ rep {{ id name title }} {attainment} }} }} \
         pipelineSummary(period: $p, groupBy: SEGMENT) {{ key {{ {key} }} {summary} }} \
         forecast(period: $p, method: STAGE_WEIGHTED, groupBy: TERRITORY) {{ rows {{ key {{ {key} }} {forecast} }} }} }}",
        deal = f["Deal"],
        stage = f["Stage"],
        rep = f["Rep"],
        territory = f["Territory"],
        account = f["Account"],
        key = f["GroupKey"],
        win = f["WinRateRow"],
        attainment = f["RepAttainment"],
        summary = f["PipelineSummaryRow"],
        forecast = f["ForecastRow"],
    );
    // The filters are variables: `wrapped` would take an object's braces
    // for a selection set's.
    let d = both(&app, &admin, &doc, &vars).await;
    assert!(d.get("errors").is_none(), "{d}");
    let d = &d["data"];
    for list in [
        &d["open"]["nodes"],
        &d["edges"]["edges"],
        &d["won"]["nodes"],
        &d["lost"]["nodes"],
        &d["stages"],
        &d["reps"],
        &d["territories"],
        &d["accounts"],
        &d["winRates"],
        &d["quotaAttainment"]["rows"],
        &d["pipelineSummary"],
        &d["forecast"]["rows"],
    ] {
        assert!(list.as_array().unwrap().len() >= 3, "{list}");
    }
    // Optional values both present and absent, so a ready null or a ready
    // value could not stand in for the other.
    let won = d["won"]["nodes"].as_array().unwrap();
    let open = d["open"]["nodes"].as_array().unwrap();
    assert!(won.iter().all(|n| n["closedAt"].is_string()));
    assert!(open.iter().any(|n| n["closedAt"].is_null()));
    assert!(d["lost"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["lostReason"].is_string()));
    assert!(open
        .iter()
        .all(|n| n["stage"]["name"].is_string() && n["owner"]["name"].is_string()));
    let edges = d["edges"]["edges"].as_array().unwrap();
    assert!(edges.iter().any(|e| e["node"]["account"].is_null()));
    assert!(edges
        .iter()
        .any(|e| e["node"]["account"]["name"].is_string()));
}
