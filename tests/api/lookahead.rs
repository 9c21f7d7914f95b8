//! Each metric runs only the statements its selected fields need (the
//! query's look-ahead), and answers the same whatever else is selected.
use serde_json::{json, Value};

use crate::db_tests;
use crate::helpers::TestApp;

db_tests!(
    metrics_run_only_the_statements_their_selection_needs,
    groupings_asked_together_share_one_scan,
    a_dashboard_shares_its_scans,
    attainment_reads_more_rep_columns_only_when_asked,
    deal_pages_read_names_alone_only_when_that_is_all_they_show,
    deal_pages_read_only_the_columns_they_show,
    data_health_reads_only_what_its_selected_counts_need
);

/// Statements one request runs, and its data.
async fn run(app: &TestApp, query: &str) -> (u64, Value) {
    let before = app.statements().await;
    let data = app.ok(query, json!({})).await;
    (app.statements().await - before, data)
}

async fn metrics_run_only_the_statements_their_selection_needs(app: TestApp) {
    let ana = app.create_rep("Ana Lima", None, None, json!({})).await;
    app.set_quota(&ana, "2026-Q4", "10000").await;
    let won = app.stage("Won").await;
    let demo = app.stage("Demo").await;
    app.create_deal(
        json!({ "name": "won", "amount": "4000", "ownerId": ana, "stageId": won,
        "openedAt": "2026-09-01T00:00:00Z", "closedAt": "2026-10-15T00:00:00Z" }),
    )
    .await;
    app.create_deal(
        json!({ "name": "open", "amount": "3000", "ownerId": ana, "stageId": demo,
        "expectedCloseDate": "2026-12-20" }),
    )
    .await;
    // A request that reads nothing: what every request costs (none here).
    let (base, _) = run(&app, "{ me { role } }").await;

    // quotaAttainment: the totals (and the reps through their loader); the
    // open pipeline statement only for openPipeline, weightedPipeline or
    // pipelineCoverage.
    let (lean, a) = run(
        &app,
        "{ quotaAttainment(period: \"2026-Q4\") { rows { rep { id name } quota closedWon attainment } } }",
    )
    .await;
    let (full, b) = run(
        &app,
        "{ quotaAttainment(period: \"2026-Q4\") { rows { rep { id name } quota closedWon attainment pipelineCoverage openPipeline } } }",
    )
    .await;
    assert_eq!(full, lean + 1);
    let row = &b["quotaAttainment"]["rows"][0];
    assert_eq!(
        a["quotaAttainment"]["rows"][0]["closedWon"],
        row["closedWon"]
    );
    assert_eq!(row["closedWon"], "4000.00");
    assert_eq!(row["openPipeline"], "3000.00");
    // The gap is 6000: 3000 / 6000.
    assert_eq!(row["pipelineCoverage"], 0.5);
    // Through a fragment too.
    let (frag, _) = run(
        &app,
        "{ quotaAttainment(period: \"2026-Q4\") { rows { ...P } } } fragment P on RepAttainment { quota weightedPipeline }",
    )
    .await;
    assert_eq!(frag, full, "the totals and the pipeline");
    assert_eq!(lean - base, 1, "the totals carry the reps");

    // pipelineSummary without a grouping: each part its own statement.
    const PS: &str = "{ pipelineSummary(period: \"2026-Q4\") { SEL } }";
    let ps = |sel: &str| PS.replace("SEL", sel);
    let (open, o) = run(&app, &ps("openDeals pipelineValue")).await;
    let (closed, c) = run(&app, &ps("winRate avgDealSize")).await;
    let (median, m) = run(&app, &ps("medianSalesCycleDays")).await;
    let (all, everything) = run(
        &app,
        &ps("openDeals pipelineValue winRate avgDealSize medianSalesCycleDays"),
    )
    .await;
    assert_eq!((open - base, closed - base, median - base), (1, 1, 1));
    assert_eq!(all - base, 3);
    let e = &everything["pipelineSummary"][0];
    assert_eq!(o["pipelineSummary"][0]["pipelineValue"], e["pipelineValue"]);
    assert_eq!(e["pipelineValue"], "3000.00");
    assert_eq!(c["pipelineSummary"][0]["winRate"], e["winRate"]);
    assert_eq!(e["winRate"], 1.0);
    assert_eq!(
        m["pipelineSummary"][0]["medianSalesCycleDays"],
        e["medianSalesCycleDays"]
    );
    assert_eq!(e["medianSalesCycleDays"], 44.0);
    // Grouped, a row exists for open pipeline or closed deals, so both run;
    // the medians still only when asked.
    let (grouped, _) = run(
        &app,
        "{ pipelineSummary(period: \"2026-Q4\", groupBy: REP) { key { id } openDeals } }",
    )
    .await;
    let (grouped_median, _) = run(
        &app,
        "{ pipelineSummary(period: \"2026-Q4\", groupBy: REP) { key { id } openDeals medianSalesCycleDays } }",
    )
    .await;
    assert_eq!(grouped_median, grouped + 1);

    // A STAGE_WEIGHTED forecast over few open deals: their exact P10/P90
    // take one more statement, only for low or high.
    const F: &str = "{ forecast(period: \"2026-Q4\", method: STAGE_WEIGHTED) { SEL } }";
    let (amount, fa) = run(&app, &F.replace("SEL", "amount")).await;
    let (bounds, fb) = run(&app, &F.replace("SEL", "amount low high")).await;
    assert_eq!(bounds, amount + 1);
    assert_eq!(fa["forecast"]["amount"], fb["forecast"]["amount"]);
    assert_eq!(fb["forecast"]["low"], "4000.00");

    // dataHealth: the counts are one statement, the issues another.
    let (issues, _) = run(&app, "{ dataHealth { issues { kind } } }").await;
    let (both, h) = run(
        &app,
        "{ dataHealth { openDealsWithoutExpectedClose issues { kind } } }",
    )
    .await;
    assert_eq!((issues - base, both - base), (1, 2));
    assert_eq!(h["dataHealth"]["openDealsWithoutExpectedClose"], 0);
}

/// Territories East and West, Ana Lima in East and Bo Chen in West: their
/// ids (east, west, ana, bo).
async fn east_and_west(app: &TestApp) -> (String, String, String, String) {
    let east = app.create_territory("East", None, None).await;
    let west = app.create_territory("West", None, None).await;
    let ana = app
        .create_rep("Ana Lima", None, Some(&east), json!({}))
        .await;
    let bo = app
        .create_rep("Bo Chen", None, Some(&west), json!({}))
        .await;
    (east, west, ana, bo)
}

/// Win rates by rep, by territory and overall, and the pipeline summary's
/// closed part, asked in one document: on PostgreSQL one scan of the closed
/// deals (GROUPING SETS) answers them all, with the same numbers as asked
/// one by one.
async fn groupings_asked_together_share_one_scan(app: TestApp) {
    let (_, _, ana, bo) = east_and_west(&app).await;
    let (won, lost) = (app.stage("Won").await, app.stage("Lost").await);
    for (owner, stage, amount) in [
        (&ana, &won, "1000"),
        (&ana, &lost, "500"),
        (&ana, &won, "250"),
        (&bo, &lost, "800"),
    ] {
        app.create_deal(
            json!({ "name": "d", "amount": amount, "ownerId": owner, "stageId": stage,
            "openedAt": "2026-09-01T00:00:00Z", "closedAt": "2026-10-11T00:00:00Z" }),
        )
        .await;
    }
    const REP: &str =
        "winRates(period: \"2026-Q4\", groupBy: REP) { key { id } won lost wonAmount lostAmount }";
    const TERRITORY: &str =
        "winRates(period: \"2026-Q4\", groupBy: TERRITORY) { key { id } won lost wonAmount }";
    const ALL: &str = "winRates(period: \"2026-Q4\") { won lost winRate }";
    const SUMMARY: &str =
        "pipelineSummary(period: \"2026-Q4\") { winRate avgDealSize avgSalesCycleDays }";
    let (rep, r) = run(&app, &format!("{{ {REP} }}")).await;
    let (territory, t) = run(&app, &format!("{{ {TERRITORY} }}")).await;
    let (all, a) = run(&app, &format!("{{ {ALL} }}")).await;
    let (summary, s) = run(&app, &format!("{{ {SUMMARY} }}")).await;
    let (together, both) = run(&app, &format!("{{ r: {REP} t: {TERRITORY} }}")).await;
    assert_eq!(both["r"], r["winRates"]);
    assert_eq!(both["t"], t["winRates"]);
    assert_eq!(
        r["winRates"],
        json!([
            { "key": { "id": ana }, "won": 2, "lost": 1, "wonAmount": "1250.00", "lostAmount": "500.00" },
            { "key": { "id": bo }, "won": 0, "lost": 1, "wonAmount": "0.00", "lostAmount": "800.00" },
        ])
    );
    assert_eq!(
        a["winRates"],
        json!([{ "won": 2, "lost": 2, "winRate": 0.5 }])
    );
    // Overall and the summary's closed part (with the won cycle days).
    let (pair, p) = run(&app, &format!("{{ a: {ALL} s: {SUMMARY} }}")).await;
    assert_eq!(p["a"], a["winRates"]);
    assert_eq!(p["s"], s["pipelineSummary"]);
    assert_eq!(
        s["pipelineSummary"],
        json!([{ "winRate": 0.5, "avgDealSize": "625.00", "avgSalesCycleDays": 40.0 }])
    );
    // The same grouping asked by two fields: one statement on both.
    assert_eq!(pair, all + summary - 1);
    match app.backend {
        // One closed-deals statement for both groupings; each keeps its
        // labels statement.
        crate::helpers::Backend::Postgres => assert_eq!(together, rep + territory - 1),
        // SQLite has no grouping sets: one statement per grouping.
        crate::helpers::Backend::Sqlite => assert_eq!(together, rep + territory),
    }
}

/// Statements one request runs scanning the deals (`Salesops-Rollups:
/// off`), and its data.
async fn run_scanning(app: &TestApp, query: &str) -> (u64, Value) {
    let before = app.statements().await;
    let data = app
        .ok_rollups(&app.admin_token(), false, query, &json!({}))
        .await;
    (app.statements().await - before, data)
}

/// The VP dashboard of bench/peers.py in one document, scanning the deals:
/// its heavy fields start together (the budgets are per statement), so win
/// rates by rep and the pipeline summary by territory are one scan of the
/// closed deals (GROUPING SETS, PostgreSQL), and on PostgreSQL the
/// summary's median sales cycle comes with its closed aggregates instead of
/// a scan of its own; every field answers what it answers alone, and what
/// the rollups answer.
async fn a_dashboard_shares_its_scans(app: TestApp) {
    let (east, west, ana, bo) = east_and_west(&app).await;
    app.set_quota(&ana, "2026-Q4", "10000").await;
    let (won, lost, demo) = (
        app.stage("Won").await,
        app.stage("Lost").await,
        app.stage("Demo").await,
    );
    // Ana: won after 40, 44 and 51 days (median 44), one lost; Bo: won
    // after 10 days, one open deal.
    for (owner, stage, amount, opened) in [
        (&ana, &won, "1000", "2026-09-01"),
        (&ana, &won, "2000", "2026-08-28"),
        (&ana, &won, "500", "2026-08-21"),
        (&ana, &lost, "700", "2026-09-01"),
        (&bo, &won, "300", "2026-10-01"),
    ] {
        app.create_deal(
            json!({ "name": "d", "amount": amount, "ownerId": owner, "stageId": stage,
            "openedAt": format!("{opened}T00:00:00Z"), "closedAt": "2026-10-11T00:00:00Z" }),
        )
        .await;
    }
    app.create_deal(
        json!({ "name": "open", "amount": "900", "ownerId": bo, "stageId": demo,
        "expectedCloseDate": "2026-12-20" }),
    )
    .await;
    let fields = [
        ("winRates", "winRates(period: \"2026-Q4\", groupBy: REP) { key { id } won lost winRate wonAmount }"),
        ("quotaAttainment", "quotaAttainment(period: \"2026-Q4\") { rows { rep { id } quota closedWon attainment } }"),
        ("forecast", "forecast(period: \"2026-Q4\", method: STAGE_WEIGHTED, groupBy: TERRITORY) { amount closedWon projected rows { key { id } amount } }"),
        ("pipelineSummary", "pipelineSummary(period: \"2026-Q4\", groupBy: TERRITORY) { key { id } openDeals pipelineValue winRate avgSalesCycleDays medianSalesCycleDays }"),
    ];
    let mut alone_total = 0;
    let mut alone = Vec::new();
    for (name, field) in fields {
        let (n, data) = run_scanning(&app, &format!("{{ {field} }}")).await;
        alone_total += n;
        alone.push((name, n, data));
    }
    let all: String = fields.iter().map(|(_, f)| *f).collect::<Vec<_>>().join(" ");
    let (together, data) = run_scanning(&app, &format!("{{ {all} }}")).await;
    let (_, with_rollups) = run(&app, &format!("{{ {all} }}")).await;
    for (name, _, one) in &alone {
        assert_eq!(data[name], one[name], "{name} asked with the others");
        assert_eq!(with_rollups[name], one[name], "{name} from the rollups");
    }
    let summary = &data["pipelineSummary"];
    let row = |id: &str| {
        summary
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["key"]["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(row(&east)["medianSalesCycleDays"], 44.0);
    assert_eq!(row(&west)["medianSalesCycleDays"], 10.0);
    assert_eq!(row(&west)["openDeals"], 1);
    let summary_alone = alone[3].1;
    match app.backend {
        crate::helpers::Backend::Postgres => {
            // Open pipeline, closed aggregates with the medians, labels.
            assert_eq!(summary_alone, 3);
            assert_eq!(together, alone_total - 1, "one scan of the closed deals");
        }
        crate::helpers::Backend::Sqlite => {
            // No grouping sets, no percentile: the medians apart.
            assert_eq!(summary_alone, 4);
            assert_eq!(together, alone_total);
        }
    }
}

/// quotaAttainment reads a rep's id and name alone when the selection asks
/// nothing else of the rep; any other rep field, however it is reached
/// (fragment spread, inline fragment, alias, a second `rep` under another
/// alias), gets the whole row and its true values.
async fn attainment_reads_more_rep_columns_only_when_asked(app: TestApp) {
    let east = app.create_territory("East", None, None).await;
    let ana = app
        .create_rep("Ana Lima", None, Some(&east), json!({ "title": "AE" }))
        .await;
    app.set_quota(&ana, "2026-Q4", "10000").await;
    let rows = |d: &Value| d["quotaAttainment"]["rows"].clone();
    let q = |sel: &str| {
        let fragment = match sel.contains("...R") {
            true => " fragment R on Rep { email title }",
            false => "",
        };
        format!("{{ quotaAttainment(period: \"2026-Q4\") {{ rows {{ quota {sel} }} }} }}{fragment}")
    };
    let lean = app.ok(&q("rep { id name __typename }"), json!({})).await;
    assert_eq!(
        rows(&lean),
        json!([{ "quota": "10000.00", "rep": { "id": ana, "name": "Ana Lima", "__typename": "Rep" } }])
    );
    let whole = json!({ "id": ana, "name": "Ana Lima", "email": "ana.lima@example.com", "title": "AE",
        "active": true, "territory": { "id": east } });
    for sel in [
        "rep { id name email title active territory { id } }",
        "rep { id name ...R active territory { id } }",
        "rep { id name ... on Rep { email title active } territory { id } }",
        "rep { id name e: email title active territory { id } }",
        "rep { id name } r2: rep { email title active territory { id } }",
    ] {
        let d = app.ok(&q(sel), json!({})).await;
        let row = &rows(&d)[0];
        let mut got = row["rep"].as_object().cloned().unwrap_or_default();
        if let Some(r2) = row.get("r2").and_then(Value::as_object) {
            got.extend(r2.clone());
        }
        if let Some(e) = got.remove("e") {
            got.insert("email".into(), e);
        }
        assert_eq!(Value::Object(got), whole, "{sel}");
        assert_eq!(row["quota"], "10000.00", "{sel}");
    }
}

/// A deal page that shows its owners' and accounts' names reads those two
/// columns of each in its one statement; any other field of them asked
/// anywhere in the document (beside it, in a fragment, under `edges`, in a
/// second page) gets the whole row with its true values.
async fn deal_pages_read_names_alone_only_when_that_is_all_they_show(app: TestApp) {
    let east = app.create_territory("East", None, None).await;
    let ana = app
        .create_rep("Ana Lima", None, Some(&east), json!({ "title": "AE" }))
        .await;
    let acme = app.create_account("Acme", Some(&east)).await;
    let stage = app.stage("Discovery").await;
    let deal = |name: &str, account: Option<&str>| {
        json!({ "name": name, "amount": "100", "ownerId": ana, "stageId": stage,
                "accountId": account, "openedAt": "2026-01-05T00:00:00Z" })
    };
    let with_account = app.create_deal(deal("with account", Some(&acme))).await;
    let without = app.create_deal(deal("without account", None)).await;
    let by_id = |nodes: &Value| -> std::collections::BTreeMap<String, Value> {
        nodes
            .as_array()
            .unwrap()
            .iter()
            .map(|n| (n["id"].as_str().unwrap().to_owned(), n.clone()))
            .collect()
    };
    // Names alone: one statement, the names right, no account where none.
    let (statements, lean) = run(
        &app,
        "{ deals(first: 10) { nodes { id owner { id name __typename } account { id name } } } }",
    )
    .await;
    assert_eq!(statements, 1, "{lean:#}");
    let owner = json!({ "id": ana, "name": "Ana Lima", "__typename": "Rep" });
    assert_eq!(
        by_id(&lean["deals"]["nodes"]),
        [
            (
                with_account.clone(),
                json!({ "id": with_account, "owner": owner,
                "account": { "id": acme, "name": "Acme" } })
            ),
            (
                without.clone(),
                json!({ "id": without, "owner": owner, "account": null })
            ),
        ]
        .into_iter()
        .collect()
    );
    // More than names, asked in other ways: the whole rows' true values.
    let account_created = app
        .ok(
            "query($id: ID!) { deal(id: $id) { account { createdAt } } }",
            json!({ "id": with_account }),
        )
        .await["deal"]["account"]["createdAt"]
        .clone();
    assert!(
        account_created
            .as_str()
            .is_some_and(|t| t.starts_with("20")),
        "{account_created}"
    );
    let whole_owner = json!({ "email": "ana.lima@example.com", "title": "AE" });
    let fragment = " fragment R on Rep { email title }";
    for (doc, path) in [
        (
            "{ deals(first: 10) { nodes { id owner { id name } } edges { node { id owner { email title } account { createdAt } } } } }".to_owned(),
            "edges",
        ),
        (
            format!("{{ deals(first: 10) {{ nodes {{ id owner {{ id name ...R }} account {{ name createdAt }} }} }} }}{fragment}"),
            "nodes",
        ),
        (
            "{ deals(first: 10) { nodes { id owner { id name ... on Rep { email title } } account { name ... on Account { createdAt } } } } }".to_owned(),
            "nodes",
        ),
        (
            "{ a: deals(first: 10) { nodes { id owner { id name } account { id name } } } b: deals(first: 10) { nodes { id owner { email title } account { createdAt } } } }".to_owned(),
            "b",
        ),
    ] {
        let d = app.ok(&doc, json!({})).await;
        let nodes: Vec<Value> = match path {
            "edges" => edge_nodes(&d["deals"]),
            "b" => d["b"]["nodes"].as_array().unwrap().clone(),
            _ => d["deals"]["nodes"].as_array().unwrap().clone(),
        };
        let nodes = by_id(&Value::Array(nodes));
        assert_eq!(nodes.len(), 2, "{doc}");
        for (id, node) in nodes {
            assert_eq!(node["owner"]["email"], whole_owner["email"], "{doc}");
            assert_eq!(node["owner"]["title"], whole_owner["title"], "{doc}");
            let expected = if id == with_account {
                account_created.clone()
            } else {
                Value::Null
            };
            let got = match &node["account"] {
                Value::Null => Value::Null,
                a => a["createdAt"].clone(),
            };
            assert_eq!(got, expected, "{doc}");
        }
        if path == "b" {
            // The names-alone page beside it answers as before.
            assert_eq!(by_id(&d["a"]["nodes"]).len(), 2, "{doc}");
            for n in d["a"]["nodes"].as_array().unwrap() {
                assert_eq!(n["owner"]["name"], "Ana Lima", "{doc}");
            }
        }
    }
}

/// The nodes of a connection's `edges { node }`.
fn edge_nodes(connection: &Value) -> Vec<Value> {
    connection["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

/// The innermost named type of an introspected `type { kind name ofType }`.
fn named_type(t: &Value) -> (&str, &str) {
    match t["ofType"] {
        Value::Null => (t["kind"].as_str().unwrap(), t["name"].as_str().unwrap()),
        ref inner => named_type(inner),
    }
}

/// A deal page reads only the columns of the fields it shows (and the id
/// and its order's key, which cursors read): every field of Deal, shown
/// alone on a page (at the top, under `edges` in another order, nested
/// under reps and under accounts), answers what the deal's whole row
/// answers (`deal(id:)`), on the demo data. A field whose columns
/// `types::deal::FIELD_COLUMNS` gets wrong answers its unread zero value
/// and fails here.
async fn deal_pages_read_only_the_columns_they_show(app: TestApp) {
    use api::rows::{Columns, Positional};
    use api::service::{access::DealScope, deal, deal_filter::DealFilter, pagination::DealOrder};

    api::seed::demo(&app.db, "USD").await.expect("seed");
    // The demo's deals have no external ids: one that has, on each page.
    let first_rep = app.ok("{ reps(first: 1) { id } }", json!({})).await["reps"][0]["id"].clone();
    let stage = app.stage("Discovery").await;
    app.create_deal(
        json!({ "name": "synced", "amount": "99999999", "ownerId": first_rep,
        "stageId": stage, "externalId": "crm-1" }),
    )
    .await;
    // The service reads what it is asked (and the id and key).
    let (rows, _) = deal::page(
        &app.db,
        DealScope::All,
        &DealFilter::default(),
        DealOrder::AmountDesc,
        3,
        None,
        Columns::of::<entity::deal::Model>(&["name"]),
        deal::ToOne::default(),
    )
    .await
    .unwrap();
    assert_eq!(rows.len(), 3);
    for r in &rows {
        let whole = deal::get(&app.db, DealScope::All, r.deal.id).await.unwrap();
        assert_eq!(
            (r.deal.name.as_str(), r.deal.amount_cents),
            (whole.name.as_str(), whole.amount_cents)
        );
        assert!(whole.amount_cents > 0 && !whole.currency.is_empty());
        assert_eq!(
            (r.deal.currency.as_str(), r.deal.owner_id),
            ("", 0),
            "unread"
        );
    }
    assert_eq!(
        entity::deal::Model::select_columns(
            "d",
            Columns::of::<entity::deal::Model>(&["name", "id"])
        ),
        "d.id, d.name"
    );

    // Every field of Deal; an object's own arg-free scalars below it.
    let schema = app
        .ok(
            "{ __schema { types { name fields { name args { name } type { ...T } } } } } \
             fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }",
            json!({}),
        )
        .await;
    let types = schema["__schema"]["types"].as_array().unwrap();
    let fields_of = |name: &str| -> Vec<Value> {
        types.iter().find(|t| t["name"] == name).unwrap()["fields"]
            .as_array()
            .unwrap()
            .clone()
    };
    let deal_fields = fields_of("Deal");
    assert!(deal_fields.len() >= 26, "{deal_fields:?}");
    let selection = |f: &Value| -> String {
        let name = f["name"].as_str().unwrap();
        // Small pages for lists with an argument (complexity).
        let takes_first = f["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "first");
        let call = match takes_first {
            true => format!("{name}(first: 2)"),
            false => name.to_owned(),
        };
        match named_type(&f["type"]) {
            ("OBJECT", t) => {
                let scalars: Vec<String> = fields_of(t)
                    .iter()
                    .filter(|g| g["args"].as_array().unwrap().is_empty())
                    .filter(|g| matches!(named_type(&g["type"]).0, "SCALAR" | "ENUM"))
                    .map(|g| g["name"].as_str().unwrap().to_owned())
                    .collect();
                format!("{call} {{ __typename {} }}", scalars.join(" "))
            }
            _ => call,
        }
    };
    let pages = [
        ("{ deals(first: 12) { nodes { id SEL } } }", "/deals/nodes"),
        (
            "{ deals(first: 12, orderBy: AMOUNT_DESC) { edges { cursor node { id SEL } } } }",
            "/deals/edges",
        ),
        (
            "{ reps(first: 6) { deals(first: 3) { nodes { id SEL } } } }",
            "/reps",
        ),
        (
            "{ accounts(first: 6) { deals(first: 3) { nodes { id SEL } } } }",
            "/accounts",
        ),
    ];
    let mut compared = 0;
    let mut uniform = Vec::new();
    for f in &deal_fields {
        let sel = selection(f);
        let name = f["name"].as_str().unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for (doc, at) in pages {
            let page = app.ok(&doc.replace("SEL", &sel), json!({})).await;
            let nodes: Vec<Value> = match at {
                "/deals/edges" => edge_nodes(&page["deals"]),
                "/deals/nodes" => page["deals"]["nodes"].as_array().unwrap().clone(),
                _ => page[&at[1..]]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|p| p["deals"]["nodes"].as_array().unwrap().clone())
                    .collect(),
            };
            assert!(nodes.len() >= 6, "{doc}: {page}");
            // Whole rows, a few deals a document (a field like history
            // weighs its default page against the complexity limit).
            for chunk in nodes.chunks(3) {
                let truth_doc = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, n)| format!("d{i}: deal(id: {}) {{ {sel} }}", n["id"]))
                    .collect::<Vec<_>>()
                    .join(" ");
                let truth = app.ok(&format!("{{ {truth_doc} }}"), json!({})).await;
                for (i, n) in chunk.iter().enumerate() {
                    assert_eq!(n[name], truth[format!("d{i}")][name], "{name} at {at}");
                    seen.insert(n[name].to_string());
                    compared += 1;
                }
            }
        }
        if seen.len() < 2 {
            uniform.push(name.to_owned());
        }
    }
    // The pages hold deals that differ in every field (else a field read
    // as its unread value could match them all), but the currency: the
    // demo's is USD throughout, and unread it would be "".
    assert_eq!(uniform, ["currency"], "fields with one value on every page");
    assert!(compared >= deal_fields.len() * 4 * 6, "{compared}");
}

/// dataHealth computes the counts selected and no other: with the lead
/// table gone, the deal and rep counts still answer (the lead counts read
/// every open lead and its activities: 2.7 s of a deal-only dashboard on
/// 2,000,000 leads), and a lead count asked for fails.
async fn data_health_reads_only_what_its_selected_counts_need(app: TestApp) {
    use sea_orm::ConnectionTrait;
    let ana = app.create_rep("Ana Lima", None, None, json!({})).await;
    let demo = app.stage("Demo").await;
    app.create_deal(
        json!({ "name": "undated", "amount": "3000", "ownerId": ana, "stageId": demo }),
    )
    .await;
    let deal_counts = "{ dataHealth { openDealsPastExpectedClose openDealsWithoutExpectedClose \
        openDealsNotUpdated repsWithoutTerritory inactiveRepsOwningOpenDeals } }";
    let all = app
        .ok(
            &deal_counts.replace(" } }", " leadsNotAnswered staleLeads leadsSharingEmail } }"),
            json!({}),
        )
        .await;
    let rename = |from: &str, to: &str| format!("ALTER TABLE {from} RENAME TO {to}");
    app.db
        .execute_unprepared(&rename("lead", "lead_away"))
        .await
        .unwrap();
    let deals_only = app.gql(&app.admin_token(), deal_counts, json!({})).await;
    let lead_count = app
        .error_code(
            &app.admin_token(),
            "{ dataHealth { staleLeads } }",
            json!({}),
        )
        .await;
    app.db
        .execute_unprepared(&rename("lead_away", "lead"))
        .await
        .unwrap();
    assert!(deals_only.get("errors").is_none(), "{deals_only:#}");
    let h = &deals_only["data"]["dataHealth"];
    assert_eq!(h["openDealsWithoutExpectedClose"], 1);
    assert_eq!(h["repsWithoutTerritory"], 1);
    for field in [
        "openDealsPastExpectedClose",
        "openDealsWithoutExpectedClose",
        "openDealsNotUpdated",
        "repsWithoutTerritory",
        "inactiveRepsOwningOpenDeals",
    ] {
        assert_eq!(h[field], all["dataHealth"][field], "{field}");
    }
    assert_eq!(lead_count, "INTERNAL");
}
