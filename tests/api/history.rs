//! Deal history (docs/design.md, Deal history): revisions written with every
//! deal write, as-of answers that never change, Deal.history and pushCount,
//! pipelineChanges and forecastTrend.
use api::auth::Role;
use serde_json::{json, Value};

use crate::db_tests;
use crate::helpers::{id_num, TestApp};

db_tests!(
    a_past_forecast_never_changes,
    past_answers_survive_edits_of_every_field,
    history_lists_revisions_newest_first,
    backfills_are_checked_and_write_nothing_when_refused,
    the_category_follows_the_stage,
    pipeline_changes_walks_from_starting_to_ending,
    pipeline_changes_respects_the_rep_scope,
    forecast_trend_is_the_forecast_as_of_each_point,
    historical_counts_only_months_that_are_over,
    sales_cycle_uses_the_organisations_cycle,
    forecast_filter_narrows_every_method,
    a_page_of_deals_with_history_is_a_fixed_number_of_statements,
    pipeline_changes_balance_over_random_histories,
);

const UPDATE: &str =
    "mutation($id: ID!, $p: DealPatch!) { updateDeal(id: $id, patch: $p) { id version } }";

const FORECAST: &str = "query($p: Period!, $m: ForecastMethod!, $a: Date, $g: Dimension, $f: DealFilter) { \
    forecast(period: $p, method: $m, asOf: $a, groupBy: $g, filter: $f) { amount closedWon projected low high \
    rows { key { id label } amount closedWon projected dealCount } } }";

async fn update(app: &TestApp, deal: &str, patch: Value) -> Value {
    app.ok(UPDATE, json!({ "id": deal, "p": patch })).await["updateDeal"].clone()
}

async fn stage_weighted(app: &TestApp, period: &str, as_of: &str) -> String {
    app.ok(
        FORECAST,
        json!({ "p": period, "m": "STAGE_WEIGHTED", "a": as_of }),
    )
    .await["forecast"]["amount"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The worked example of DESIGN.md: created 2026-10-01 at 1,000 in Trial
/// expecting 2026-12-20; 5,000 from 2026-11-20; expected 2027-02-01 from
/// 2026-12-01.
async fn a_past_forecast_never_changes(app: TestApp) {
    let ana = app.create_rep("Ana Lima", None, None, json!({})).await;
    let trial = app.stage("Trial").await;
    let deal = app
        .create_deal(json!({
            "name": "Acme", "amount": "1000", "ownerId": ana, "stageId": trial,
            "openedAt": "2026-10-01T09:00:00Z", "expectedCloseDate": "2026-12-20",
        }))
        .await;
    assert_eq!(
        stage_weighted(&app, "2026-12", "2026-11-15").await,
        "600.00"
    );
    update(
        &app,
        &deal,
        json!({ "amount": "5000", "effectiveAt": "2026-11-20T10:00:00Z" }),
    )
    .await;
    assert_eq!(
        stage_weighted(&app, "2026-12", "2026-11-15").await,
        "600.00"
    );
    update(
        &app,
        &deal,
        json!({ "expectedCloseDate": "2027-02-01", "effectiveAt": "2026-12-01T10:00:00Z" }),
    )
    .await;
    assert_eq!(
        stage_weighted(&app, "2026-12", "2026-11-15").await,
        "600.00"
    );
    assert_eq!(
        stage_weighted(&app, "2026-12", "2026-11-25").await,
        "3000.00"
    );
    assert_eq!(stage_weighted(&app, "2026-12", "2026-12-02").await, "0.00");
    assert_eq!(
        stage_weighted(&app, "2027-02", "2026-12-02").await,
        "3000.00"
    );
    // The backtest sees the slipped deal: December's forecast as of
    // December 1st (the start, offset 0) held it at 3,000 of amount x 0.6.
    let acc = app
        .ok(
            "{ forecastAccuracy(periods: [\"2026-12\"], methods: [STAGE_WEIGHTED], asOfOffsetDays: -6) { asOf forecast actual } }",
            json!({}),
        )
        .await;
    assert_eq!(
        acc["forecastAccuracy"],
        json!([{ "asOf": "2026-11-25", "forecast": "3000.00", "actual": "0.00" }])
    );
    // It was pushed once while open.
    let d = app
        .ok(
            "query($id: ID) { deal(id: $id) { pushCount version } }",
            json!({ "id": deal }),
        )
        .await;
    assert_eq!(d["deal"], json!({ "pushCount": 1, "version": 3 }));
}

/// Answers as of a past day, grouped by owner, territory and category and
/// filtered by category, are byte for byte the same after today's edits of
/// amount, close date, category, owner and territory.
async fn past_answers_survive_edits_of_every_field(app: TestApp) {
    let west = app.create_territory("West", None, None).await;
    let east = app.create_territory("East", None, None).await;
    let ana = app
        .create_rep("Ana Lima", None, Some(&west), json!({}))
        .await;
    let bo = app
        .create_rep("Bo Chen", None, Some(&east), json!({}))
        .await;
    let demo = app.stage("Demo").await;
    let won = app.stage("Won").await;
    let mut deals = Vec::new();
    for (i, amount) in ["1000", "2500", "4000"].iter().enumerate() {
        deals.push(
            app.create_deal(json!({
                "name": format!("D{i}"), "amount": amount, "ownerId": ana, "stageId": demo,
                "territoryId": west, "forecastCategory": "BEST_CASE",
                "openedAt": "2026-09-01T09:00:00Z", "expectedCloseDate": "2026-12-15",
            }))
            .await,
        );
    }
    app.move_deal(&deals[2], "Won", "2026-11-02T10:00:00Z")
        .await;
    let questions: Vec<Value> = ["REP", "TERRITORY", "NONE"]
        .iter()
        .flat_map(|g| {
            [
                json!({ "p": "2026-Q4", "m": "STAGE_WEIGHTED", "a": "2026-11-10", "g": g }),
                json!({ "p": "2026-Q4", "m": "SALES_CYCLE", "a": "2026-11-10", "g": g }),
                json!({ "p": "2026-Q4", "m": "STAGE_WEIGHTED", "a": "2026-11-10", "g": g,
                        "f": { "forecastCategories": ["BEST_CASE"] } }),
            ]
        })
        .collect();
    let mut before = Vec::new();
    for q in &questions {
        before.push(app.ok(FORECAST, q.clone()).await);
    }
    // The stage-weighted total as of then: 1,000 x 0.4 + 2,500 x 0.4 + 4,000 won.
    assert_eq!(before[6]["forecast"]["amount"], "5400.00");
    assert_eq!(before[6]["forecast"]["closedWon"], "4000.00");

    // Today: every field of every deal changes.
    for d in &deals {
        update(
            &app,
            d,
            json!({ "amount": "9999", "expectedCloseDate": "2027-03-01", "forecastCategory": "COMMIT",
                    "ownerId": bo, "territoryId": east }),
        )
        .await;
    }
    app.ok(
        "mutation($id: ID!, $s: ID!) { moveDealStage(id: $id, stageId: $s) { id } }",
        json!({ "id": deals[0], "s": won }),
    )
    .await;
    for (q, was) in questions.iter().zip(&before) {
        assert_eq!(&app.ok(FORECAST, q.clone()).await, was, "{q}");
    }
    // While today's answer moved.
    let now = app
        .ok(
            FORECAST,
            json!({ "p": "2026-Q4", "m": "STAGE_WEIGHTED", "g": "REP" }),
        )
        .await;
    assert_ne!(now, before[0]);
}

const HISTORY: &str = "query($id: ID, $n: Int, $after: String) { deal(id: $id) { pushCount history(first: $n, after: $after) { \
    totalCount pageInfo { hasNextPage hasPreviousPage endCursor } \
    nodes { version validFrom actor amount expectedCloseDate status forecastCategory stage { name } owner { name } \
    territory { name } closedAt changes { field from to } } } } }";

async fn history_lists_revisions_newest_first(app: TestApp) {
    let ana = app.create_rep("Ana Lima", None, None, json!({})).await;
    let bo = app.create_rep("Bo Chen", None, None, json!({})).await;
    let deal = app
        .create_deal(json!({
            "name": "Acme", "amount": "1000", "ownerId": ana,
            "openedAt": "2026-10-01T09:00:00Z", "expectedCloseDate": "2026-12-20",
        }))
        .await;
    update(
        &app,
        &deal,
        json!({ "expectedCloseDate": "2027-01-15", "effectiveAt": "2026-10-05T00:00:00Z" }),
    )
    .await;
    // Moving it earlier is not a push.
    update(
        &app,
        &deal,
        json!({ "expectedCloseDate": "2026-12-31", "effectiveAt": "2026-10-06T00:00:00Z" }),
    )
    .await;
    update(&app, &deal, json!({ "expectedCloseDate": "2027-02-01", "ownerId": bo, "effectiveAt": "2026-10-07T00:00:00Z" })).await;
    app.move_deal(&deal, "Lost", "2026-10-08T00:00:00Z").await;
    // A closed deal's date moves are not pushes.
    update(&app, &deal, json!({ "expectedCloseDate": "2027-06-01" })).await;

    let page = app.ok(HISTORY, json!({ "id": deal, "n": 2 })).await;
    assert_eq!(page["deal"]["pushCount"], 2);
    let h = &page["deal"]["history"];
    assert_eq!(h["totalCount"], 6);
    assert_eq!(h["pageInfo"]["hasNextPage"], true);
    assert_eq!(h["pageInfo"]["hasPreviousPage"], false);
    let nodes = h["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0]["version"], 6);
    assert_eq!(
        nodes[0]["changes"],
        json!([{ "field": "expectedCloseDate", "from": "2027-02-01", "to": "2027-06-01" }])
    );
    assert_eq!(nodes[1]["version"], 5);
    assert_eq!(nodes[1]["status"], "LOST");
    assert_eq!(nodes[1]["forecastCategory"], "OMITTED");
    assert_eq!(nodes[1]["validFrom"], "2026-10-08T00:00:00+00:00");
    assert_eq!(nodes[1]["closedAt"], "2026-10-08T00:00:00+00:00");
    let fields: Vec<&str> = nodes[1]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["stageId", "status", "forecastCategory", "closedAt"]
    );

    // The next page starts after the cursor and ends with the creation,
    // whose changes are every field it set.
    let cursor = h["pageInfo"]["endCursor"].clone();
    let rest = app
        .ok(HISTORY, json!({ "id": deal, "n": 10, "after": cursor }))
        .await;
    let h = &rest["deal"]["history"];
    assert_eq!(h["pageInfo"]["hasNextPage"], false);
    assert_eq!(h["pageInfo"]["hasPreviousPage"], true);
    let nodes = h["nodes"].as_array().unwrap();
    let versions: Vec<i64> = nodes
        .iter()
        .map(|n| n["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [4, 3, 2, 1]);
    assert_eq!(nodes[0]["owner"]["name"], "Bo Chen");
    assert_eq!(
        nodes[0]["changes"],
        json!([
            { "field": "expectedCloseDate", "from": "2026-12-31", "to": "2027-02-01" },
            { "field": "ownerId", "from": id_num(&ana).to_string(), "to": id_num(&bo).to_string() }
        ])
    );
    let first = &nodes[3];
    assert_eq!(first["validFrom"], "2026-10-01T09:00:00+00:00");
    assert_eq!(first["amount"], "1000.00");
    assert_eq!(first["stage"]["name"], "Discovery");
    assert_eq!(first["actor"], "admin-tester");
    let created: Vec<(&str, Value)> = first["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["from"], Value::Null);
            (c["field"].as_str().unwrap(), c["to"].clone())
        })
        .collect();
    assert!(created.contains(&("amount", json!("1000.00"))));
    assert!(created.contains(&("expectedCloseDate", json!("2026-12-20"))));
    assert!(created.contains(&("status", json!("OPEN"))));

    // A rep outside the deal's scope cannot reach it, so not its history.
    let other = app.create_rep("Cy Doe", None, None, json!({})).await;
    let token = app.token(Role::Rep, Some(id_num(&other)));
    assert_eq!(
        app.error_code(&token, HISTORY, json!({ "id": deal, "n": 5 }))
            .await,
        "NOT_FOUND"
    );
    // Its owner can.
    let token = app.token(Role::Rep, Some(id_num(&bo)));
    let d = app
        .ok_as(&token, HISTORY, json!({ "id": deal, "n": 5 }))
        .await;
    assert_eq!(d["deal"]["history"]["totalCount"], 6);
    // A cursor from another list is refused.
    assert_eq!(
        app.error_code(
            &app.admin_token(),
            HISTORY,
            json!({ "id": deal, "n": 5, "after": "bm90IGEgY3Vyc29y" })
        )
        .await,
        "BAD_USER_INPUT"
    );
}

async fn revisions(app: &TestApp) -> i64 {
    app.count_rows("deal_revision").await
}

async fn backfills_are_checked_and_write_nothing_when_refused(app: TestApp) {
    let ana = app.create_rep("Ana Lima", None, None, json!({})).await;
    let deal = app
        .create_deal(json!({
            "name": "Acme", "amount": "1000", "ownerId": ana,
            "openedAt": "2026-10-01T09:00:00Z", "externalId": "crm-1",
        }))
        .await;
    update(
        &app,
        &deal,
        json!({ "amount": "1200", "effectiveAt": "2026-10-10T00:00:00Z" }),
    )
    .await;
    let before = (revisions(&app).await, app.count_rows("audit_entry").await);
    let admin = app.admin_token();
    let refused = [
        // Before the latest revision.
        json!({ "amount": "1300", "effectiveAt": "2026-10-09T00:00:00Z" }),
        // In the future.
        json!({ "amount": "1300", "effectiveAt": "2999-01-01T00:00:00Z" }),
    ];
    for patch in refused {
        let body = app
            .gql(&admin, UPDATE, json!({ "id": deal, "p": patch }))
            .await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{body}"
        );
        assert!(body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("effectiveAt"));
    }
    // A move dated before the latest revision.
    let won = app.stage("Won").await;
    let body = app
        .gql(
            &admin,
            "mutation($id: ID!, $s: ID!) { moveDealStage(id: $id, stageId: $s, at: \"2026-10-05T00:00:00Z\") { id } }",
            json!({ "id": deal, "s": won }),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    // An upsert backfill before the latest revision, and one whose
    // effectiveAt disagrees with its stage move.
    const UPSERT: &str = "mutation($i: DealInput!) { upsertDeal(input: $i) { updated } }";
    let base = json!({ "externalId": "crm-1", "name": "Acme", "amount": "1500", "ownerId": ana });
    let mut early = base.clone();
    early["effectiveAt"] = json!("2026-10-02T00:00:00Z");
    assert_eq!(
        app.error_code(&admin, UPSERT, json!({ "i": early })).await,
        "BAD_USER_INPUT"
    );
    let mut disagree = base.clone();
    disagree["stageId"] = json!(won);
    disagree["closedAt"] = json!("2026-11-01T00:00:00Z");
    disagree["effectiveAt"] = json!("2026-11-02T00:00:00Z");
    assert_eq!(
        app.error_code(&admin, UPSERT, json!({ "i": disagree }))
            .await,
        "BAD_USER_INPUT"
    );
    // REP and MANAGER may not backfill.
    let rep = app.token(Role::Rep, Some(id_num(&ana)));
    assert_eq!(
        app.error_code(
            &rep,
            UPDATE,
            json!({ "id": deal, "p": { "amount": "1300", "effectiveAt": "2026-11-01T00:00:00Z" } })
        )
        .await,
        "FORBIDDEN"
    );
    let manager = app.token(Role::Manager, Some(id_num(&ana)));
    assert_eq!(
        app.error_code(&manager, UPSERT, json!({ "i": { "externalId": "crm-1", "name": "Acme", "amount": "1500", "ownerId": ana, "effectiveAt": "2026-11-01T00:00:00Z" } }))
            .await,
        "FORBIDDEN"
    );
    assert_eq!(
        (revisions(&app).await, app.count_rows("audit_entry").await),
        before
    );
    let d = app
        .ok(
            "query($id: ID) { deal(id: $id) { version amount } }",
            json!({ "id": deal }),
        )
        .await;
    assert_eq!(d["deal"], json!({ "version": 2, "amount": "1200.00" }));
    // An unchanged upsert writes no revision; an INTEGRATION backfill does.
    let integration = app.token(Role::Integration, None);
    let same = json!({ "externalId": "crm-1", "name": "Acme", "amount": "1200", "ownerId": ana });
    let r = app
        .ok_as(
            &integration,
            "mutation($i: DealInput!) { upsertDeal(input: $i) { unchanged } }",
            json!({ "i": same }),
        )
        .await;
    assert_eq!(r["upsertDeal"]["unchanged"], true);
    assert_eq!(revisions(&app).await, before.0);
    let mut later = same.clone();
    later["amount"] = json!("1400");
    later["effectiveAt"] = json!("2026-11-01T00:00:00Z");
    app.ok_as(&integration, UPSERT, json!({ "i": later })).await;
    assert_eq!(revisions(&app).await, before.0 + 1);
    let h = app.ok(HISTORY, json!({ "id": deal, "n": 1 })).await;
    assert_eq!(
        h["deal"]["history"]["nodes"][0]["validFrom"],
        "2026-11-01T00:00:00+00:00"
    );
    assert_eq!(
        h["deal"]["history"]["nodes"][0]["actor"],
        "integration-tester"
    );
}

async fn the_category_follows_the_stage(app: TestApp) {
    let ana = app.create_rep("Ana Lima", None, None, json!({})).await;
    let deal = app
        .create_deal(json!({ "name": "Acme", "amount": "1000", "ownerId": ana, "forecastCategory": "COMMIT" }))
        .await;
    let d = app
        .ok(
            "query($id: ID) { deal(id: $id) { forecastCategory } }",
            json!({ "id": deal }),
        )
        .await;
    assert_eq!(d["deal"]["forecastCategory"], "COMMIT");
    let won = app.stage("Won").await;
    let lost = app.stage("Lost").await;
    let demo = app.stage("Demo").await;
    const MOVE: &str =
        "mutation($id: ID!, $s: ID!) { moveDealStage(id: $id, stageId: $s) { forecastCategory } }";
    let mv = |s: &str| json!({ "id": deal, "s": s });
    assert_eq!(
        app.ok(MOVE, mv(&won)).await["moveDealStage"]["forecastCategory"],
        "CLOSED"
    );
    assert_eq!(
        app.ok(MOVE, mv(&demo)).await["moveDealStage"]["forecastCategory"],
        "PIPELINE"
    );
    assert_eq!(
        app.ok(MOVE, mv(&lost)).await["moveDealStage"]["forecastCategory"],
        "OMITTED"
    );
    // A deal created won is CLOSED whatever category is given; a reopening
    // upsert may give the one it takes.
    let ext = app
        .create_deal(json!({ "name": "Globex", "amount": "500", "ownerId": ana, "externalId": "g-1", "stageId": won, "forecastCategory": "COMMIT" }))
        .await;
    let d = app
        .ok(
            "query($id: ID) { deal(id: $id) { forecastCategory } }",
            json!({ "id": ext }),
        )
        .await;
    assert_eq!(d["deal"]["forecastCategory"], "CLOSED");
    let r = app
        .ok(
            "mutation($i: DealInput!) { upsertDeal(input: $i) { deal { forecastCategory status } } }",
            json!({ "i": { "externalId": "g-1", "name": "Globex", "amount": "500", "ownerId": ana, "stageId": demo, "forecastCategory": "BEST_CASE" } }),
        )
        .await;
    assert_eq!(
        r["upsertDeal"]["deal"],
        json!({ "forecastCategory": "BEST_CASE", "status": "OPEN" })
    );
}

const CHANGES: &str = "query($p: Period!, $from: Date, $to: Date, $g: Dimension) { \
    pipelineChanges(period: $p, from: $from, to: $to, groupBy: $g) { \
    period from to starting created movedIn increased decreased movedOut won lost ending \
    rows { key { label } starting created movedIn increased decreased movedOut won lost ending } \
    wonDeals: deals(bucket: WON) { deal { name } bucket amountBefore amountAfter } \
    movedInDeals: deals(bucket: MOVED_IN) { deal { name } amountBefore amountAfter expectedCloseBefore expectedCloseAfter } \
    movedOutDeals: deals(bucket: MOVED_OUT, first: 1) { deal { name } amountBefore amountAfter expectedCloseBefore expectedCloseAfter } \
    increasedDeals: deals(bucket: INCREASED) { deal { name } amountBefore amountAfter } } }";

/// DESIGN.md's worked example a year earlier (so that `to` is in the
/// past): period 2026-Q1, from 2025-12-01, to 2025-12-08.
async fn seed_example(app: &TestApp) -> (String, String) {
    let ana = app.create_rep("Ana Lima", None, None, json!({})).await;
    let bo = app.create_rep("Bo Chen", None, None, json!({})).await;
    let deal = |name: &str, amount: &str, owner: &str, opened: &str, close: &str| {
        json!({ "name": name, "amount": amount, "ownerId": owner,
                "openedAt": format!("{opened}T09:00:00Z"), "expectedCloseDate": close })
    };
    app.create_deal(deal("A", "1000", &ana, "2025-11-01", "2026-01-15"))
        .await;
    let b = app
        .create_deal(deal("B", "2000", &ana, "2025-11-01", "2026-02-10"))
        .await;
    let c = app
        .create_deal(deal("C", "3000", &bo, "2025-11-01", "2026-03-10"))
        .await;
    let d = app
        .create_deal(deal("D", "4000", &bo, "2025-11-01", "2026-01-20"))
        .await;
    let e = app
        .create_deal(deal("E", "500", &ana, "2025-11-01", "2026-02-20"))
        .await;
    app.create_deal(deal("F", "1500", &bo, "2025-12-02", "2026-03-15"))
        .await;
    let g = app
        .create_deal(deal("G", "1200", &ana, "2025-11-10", "2025-12-20"))
        .await;
    // B is raised and handed to Bo on the 3rd: it counts wholly in Bo's row.
    update(
        app,
        &b,
        json!({ "amount": "2500", "ownerId": bo, "effectiveAt": "2025-12-03T10:00:00Z" }),
    )
    .await;
    update(
        app,
        &c,
        json!({ "expectedCloseDate": "2026-04-10", "effectiveAt": "2025-12-04T10:00:00Z" }),
    )
    .await;
    app.move_deal(&d, "Won", "2025-12-05T10:00:00Z").await;
    app.move_deal(&e, "Lost", "2025-12-05T11:00:00Z").await;
    update(
        app,
        &g,
        json!({ "expectedCloseDate": "2026-01-10", "effectiveAt": "2025-12-07T10:00:00Z" }),
    )
    .await;
    // After `to`: changes nothing of the answer.
    update(app, &c, json!({ "amount": "7777" })).await;
    (ana, bo)
}

fn walk(v: &Value) -> Vec<String> {
    [
        "starting",
        "created",
        "movedIn",
        "increased",
        "decreased",
        "movedOut",
        "won",
        "lost",
        "ending",
    ]
    .iter()
    .map(|k| v[*k].as_str().unwrap().to_owned())
    .collect()
}

fn balances(w: &[String]) -> bool {
    // Amounts carry two decimals: compare in cents.
    let n: Vec<i128> = w
        .iter()
        .map(|s| s.replace('.', "").parse().unwrap())
        .collect();
    n[0] + n[1] + n[2] + n[3] - n[4] - n[5] - n[6] - n[7] == n[8]
}

async fn pipeline_changes_walks_from_starting_to_ending(app: TestApp) {
    seed_example(&app).await;
    let vars = json!({ "p": "2026-Q1", "from": "2025-12-01", "to": "2025-12-08", "g": "REP" });
    let r = app.ok(CHANGES, vars.clone()).await;
    let c = &r["pipelineChanges"];
    assert_eq!(
        walk(c),
        [
            "10500.00", "1500.00", "1200.00", "500.00", "0.00", "3000.00", "4000.00", "500.00",
            "6200.00"
        ]
    );
    // Rows by owner as of `to`: B (raised and reassigned) is all Bo's.
    let rows = c["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["key"]["label"], "Ana Lima");
    // Ana: A 1,000 and E 500 to start; G moved in; E lost.
    assert_eq!(
        walk(&rows[0]),
        ["1500.00", "0.00", "1200.00", "0.00", "0.00", "0.00", "0.00", "500.00", "2200.00"]
    );
    assert_eq!(rows[1]["key"]["label"], "Bo Chen");
    // Bo: B 2,000, C 3,000, D 4,000 to start; F created; B +500; C out; D won.
    assert_eq!(
        walk(&rows[1]),
        ["9000.00", "1500.00", "0.00", "500.00", "0.00", "3000.00", "4000.00", "0.00", "4000.00"]
    );
    assert!(rows.iter().all(|r| balances(&walk(r))));
    assert_eq!(
        c["wonDeals"],
        json!([{ "deal": { "name": "D" }, "bucket": "WON", "amountBefore": "4000.00", "amountAfter": "0.00" }])
    );
    assert_eq!(
        c["movedInDeals"],
        json!([{ "deal": { "name": "G" }, "amountBefore": "0.00", "amountAfter": "1200.00",
                 "expectedCloseBefore": "2025-12-20", "expectedCloseAfter": "2026-01-10" }])
    );
    assert_eq!(
        c["movedOutDeals"],
        json!([{ "deal": { "name": "C" }, "amountBefore": "3000.00", "amountAfter": "0.00",
                 "expectedCloseBefore": "2026-03-10", "expectedCloseAfter": "2026-04-10" }])
    );
    assert_eq!(
        c["increasedDeals"],
        json!([{ "deal": { "name": "B" }, "amountBefore": "2000.00", "amountAfter": "2500.00" }])
    );
    // The same question later gives the same answer.
    assert_eq!(app.ok(CHANGES, vars).await, r);

    // Defaults: to = today, from = to - 7 days.
    let d = app
        .ok(
            "{ pipelineChanges(period: \"2026-Q1\") { from to } }",
            json!({}),
        )
        .await;
    let to: chrono::NaiveDate = d["pipelineChanges"]["to"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let from: chrono::NaiveDate = d["pipelineChanges"]["from"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(to, chrono::Utc::now().date_naive());
    assert_eq!((to - from).num_days(), 7);

    // Bad input.
    let admin = app.admin_token();
    for (from, to) in [("2025-12-08", "2025-12-01"), ("2025-12-01", "2999-01-01")] {
        let body = app
            .gql(
                &admin,
                CHANGES,
                json!({ "p": "2026-Q1", "from": from, "to": to }),
            )
            .await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{body}"
        );
    }
    for period in ["2026-13", "2026-03-01..2026-02-01", ""] {
        let code = app
            .error_code(
                &admin,
                CHANGES,
                json!({ "p": period, "from": "2025-12-01", "to": "2025-12-08" }),
            )
            .await;
        assert_eq!(code, "BAD_USER_INPUT", "{period}");
    }
}

async fn pipeline_changes_respects_the_rep_scope(app: TestApp) {
    let (ana, _bo) = seed_example(&app).await;
    let token = app.token(Role::Rep, Some(id_num(&ana)));
    let r = app
        .ok_as(
            &token,
            CHANGES,
            json!({ "p": "2026-Q1", "from": "2025-12-01", "to": "2025-12-08" }),
        )
        .await;
    let c = &r["pipelineChanges"];
    // Ana's deals as of `to`: A, E, G (B went to Bo, whole).
    assert_eq!(
        walk(c),
        ["1500.00", "0.00", "1200.00", "0.00", "0.00", "0.00", "0.00", "500.00", "2200.00"]
    );
    assert_eq!(c["wonDeals"], json!([]));
    assert_eq!(c["increasedDeals"], json!([]));
    // Ana's manager sees Ana's team: the same walk (the manager has no deals).
    let mia = app.create_rep("Mia Park", None, None, json!({})).await;
    app.ok(
        "mutation($id: ID!, $p: RepPatch!) { updateRep(id: $id, patch: $p) { id } }",
        json!({ "id": ana, "p": { "managerId": mia } }),
    )
    .await;
    let manager = app.token(Role::Manager, Some(id_num(&mia)));
    let r = app
        .ok_as(
            &manager,
            CHANGES,
            json!({ "p": "2026-Q1", "from": "2025-12-01", "to": "2025-12-08" }),
        )
        .await;
    assert_eq!(
        walk(&r["pipelineChanges"]),
        ["1500.00", "0.00", "1200.00", "0.00", "0.00", "0.00", "0.00", "500.00", "2200.00"]
    );
    // A viewer sees the organisation.
    let viewer = app.token(Role::Viewer, None);
    let r = app
        .ok_as(
            &viewer,
            CHANGES,
            json!({ "p": "2026-Q1", "from": "2025-12-01", "to": "2025-12-08" }),
        )
        .await;
    assert_eq!(r["pipelineChanges"]["ending"], "6200.00");
}

const TREND: &str = "query($p: Period!, $m: ForecastMethod!, $from: Date!, $to: Date, $g: Granularity!) { \
    forecastTrend(period: $p, method: $m, from: $from, to: $to, granularity: $g) { asOf amount closedWon projected low high } }";

async fn forecast_trend_is_the_forecast_as_of_each_point(app: TestApp) {
    let ana = app.create_rep("Ana Lima", None, None, json!({})).await;
    let trial = app.stage("Trial").await;
    let deal = app
        .create_deal(json!({
            "name": "Acme", "amount": "1000", "ownerId": ana, "stageId": trial,
            "openedAt": "2026-10-01T09:00:00Z", "expectedCloseDate": "2026-12-20",
        }))
        .await;
    app.create_deal(json!({
        "name": "Globex", "amount": "2000", "ownerId": ana,
        "openedAt": "2026-11-18T09:00:00Z", "expectedCloseDate": "2026-12-10",
    }))
    .await;
    update(
        &app,
        &deal,
        json!({ "amount": "5000", "effectiveAt": "2026-11-20T10:00:00Z" }),
    )
    .await;
    update(
        &app,
        &deal,
        json!({ "expectedCloseDate": "2027-02-01", "effectiveAt": "2026-12-01T10:00:00Z" }),
    )
    .await;
    let vars = json!({ "p": "2026-12", "m": "STAGE_WEIGHTED", "from": "2026-11-10", "to": "2026-12-02", "g": "WEEK" });
    let before = app.statements().await;
    let trend = app.ok(TREND, vars.clone()).await;
    let four_points = app.statements().await - before;
    let points = trend["forecastTrend"].as_array().unwrap();
    let days: Vec<&str> = points.iter().map(|p| p["asOf"].as_str().unwrap()).collect();
    assert_eq!(
        days,
        ["2026-11-15", "2026-11-22", "2026-11-29", "2026-12-02"]
    );
    let amounts: Vec<&str> = points
        .iter()
        .map(|p| p["amount"].as_str().unwrap())
        .collect();
    // Globex (2,000 in Discovery, 0.1) from the 18th; Acme 600, then 3,000, then gone.
    assert_eq!(amounts, ["600.00", "3200.00", "3200.00", "200.00"]);
    // Each point is the forecast asked with that asOf, low and high included.
    for p in points {
        let f = app
            .ok(
                "query($a: Date) { forecast(period: \"2026-12\", method: STAGE_WEIGHTED, asOf: $a) { amount closedWon projected low high } }",
                json!({ "a": p["asOf"] }),
            )
            .await;
        let mut expected = f["forecast"].clone();
        expected["asOf"] = p["asOf"].clone();
        assert_eq!(&expected, p);
    }
    // Twice the points, the same number of statements.
    let before = app.statements().await;
    let mut longer = vars.clone();
    longer["from"] = json!("2026-10-13");
    let eight = app.ok(TREND, longer).await;
    assert_eq!(eight["forecastTrend"].as_array().unwrap().len(), 8);
    assert_eq!(app.statements().await - before, four_points);

    // Bad input: from after to, to after today, too many points.
    let admin = app.admin_token();
    for (from, to, g) in [
        ("2026-12-03", "2026-12-02", "WEEK"),
        ("2026-11-01", "2999-01-01", "WEEK"),
        ("2000-01-01", "2026-12-01", "WEEK"),
    ] {
        let body = app
            .gql(
                &admin,
                TREND,
                json!({ "p": "2026-12", "m": "STAGE_WEIGHTED", "from": from, "to": to, "g": g }),
            )
            .await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{body}"
        );
    }
}

async fn historical_counts_only_months_that_are_over(app: TestApp) {
    let ana = app.create_rep("Ana Lima", None, None, json!({})).await;
    let won = app.stage("Won").await;
    for (opened, closed, amount) in [
        ("2026-08-01", "2026-09-10", "3000"),
        ("2026-08-01", "2026-10-10", "3000"),
        ("2026-08-01", "2026-11-10", "3000"),
        ("2026-08-01", "2026-12-02", "9000"),
    ] {
        app.create_deal(json!({
            "name": closed, "amount": amount, "ownerId": ana, "stageId": won,
            "openedAt": format!("{opened}T09:00:00Z"), "closedAt": format!("{closed}T09:00:00Z"),
        }))
        .await;
    }
    let q = "query($a: Date) { forecast(period: \"2027-Q1\", method: HISTORICAL, asOf: $a, historical: {lookbackMonths: 3}) { amount } }";
    // As of December 5th, December is not over: September to November,
    // 3,000 a month for three months.
    let r = app.ok(q, json!({ "a": "2026-12-05" })).await;
    assert_eq!(r["forecast"]["amount"], "9000.00");
    // As of November 30th, November is over.
    let r = app.ok(q, json!({ "a": "2026-11-30" })).await;
    assert_eq!(r["forecast"]["amount"], "9000.00");
    // As of November 29th it is not: August to October, 6,000 in three months.
    let r = app.ok(q, json!({ "a": "2026-11-29" })).await;
    assert_eq!(r["forecast"]["amount"], "6000.00");
}

async fn sales_cycle_uses_the_organisations_cycle(app: TestApp) {
    let ana = app.create_rep("Ana Lima", None, None, json!({})).await;
    let bo = app.create_rep("Bo Chen", None, None, json!({})).await;
    let won = app.stage("Won").await;
    // Bo won a deal in 120 days; Ana has won nothing.
    app.create_deal(json!({
        "name": "Won", "amount": "100", "ownerId": bo, "stageId": won,
        "openedAt": "2026-06-01T09:00:00Z", "closedAt": "2026-09-29T09:00:00Z",
    }))
    .await;
    app.create_deal(json!({
        "name": "Open", "amount": "1000", "ownerId": ana,
        "openedAt": "2026-10-02T09:00:00Z", "expectedCloseDate": "2026-12-20",
    }))
    .await;
    let q = "{ forecast(period: \"2026-12\", method: SALES_CYCLE, asOf: \"2026-12-01\") { amount projected } }";
    let admin = app.ok(q, json!({})).await;
    assert_eq!(admin["forecast"]["projected"], "500.00");
    let rep = app.token(Role::Rep, Some(id_num(&ana)));
    let as_rep = app.ok_as(&rep, q, json!({})).await;
    assert_eq!(as_rep["forecast"]["projected"], "500.00");
}

async fn forecast_filter_narrows_every_method(app: TestApp) {
    let ana = app.create_rep("Ana Lima", None, None, json!({})).await;
    let bo = app.create_rep("Bo Chen", None, None, json!({})).await;
    let trial = app.stage("Trial").await;
    for (owner, amount, cat) in [(&ana, "1000", "COMMIT"), (&bo, "2000", "BEST_CASE")] {
        app.create_deal(json!({
            "name": amount, "amount": amount, "ownerId": owner, "stageId": trial,
            "forecastCategory": cat, "expectedCloseDate": "2027-01-20",
        }))
        .await;
    }
    let f = |filter: Value, method: &str| json!({ "p": "2027-01", "m": method, "f": filter });
    let r = app
        .ok(FORECAST, f(json!({ "ownerIds": [ana] }), "STAGE_WEIGHTED"))
        .await;
    assert_eq!(r["forecast"]["amount"], "600.00");
    let r = app
        .ok(
            FORECAST,
            f(
                json!({ "forecastCategories": ["BEST_CASE"] }),
                "STAGE_WEIGHTED",
            ),
        )
        .await;
    assert_eq!(r["forecast"]["amount"], "1200.00");
    let r = app
        .ok(FORECAST, f(json!({ "minAmount": "1500" }), "SALES_CYCLE"))
        .await;
    assert_eq!(r["forecast"]["amount"], "0.00");
    // REP_SUBMITTED narrows by owner only.
    for (rep, amount) in [(&ana, "5000"), (&bo, "7000")] {
        app.ok(
            "mutation($r: ID!, $a: Decimal!) { submitForecast(input: {repId: $r, period: \"2027-01\", category: COMMIT, amount: $a}) { id } }",
            json!({ "r": rep, "a": amount }),
        )
        .await;
    }
    let r = app
        .ok(FORECAST, f(json!({ "ownerIds": [bo] }), "REP_SUBMITTED"))
        .await;
    assert_eq!(r["forecast"]["amount"], "7000.00");
    let code = app
        .error_code(
            &app.admin_token(),
            FORECAST,
            f(json!({ "minAmount": "1" }), "REP_SUBMITTED"),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
}

async fn a_page_of_deals_with_history_is_a_fixed_number_of_statements(app: TestApp) {
    let ana = app.create_rep("Ana Lima", None, None, json!({})).await;
    let q = "{ deals(first: 50) { nodes { id pushCount history(first: 3) { totalCount nodes { version owner { name } stage { name } changes { field } } } } } }";
    let mut deals = Vec::new();
    for i in 0..5 {
        deals.push(
            app.create_deal(json!({ "name": format!("D{i}"), "amount": "100", "ownerId": ana }))
                .await,
        );
    }
    app.ok(q, json!({})).await;
    let before = app.statements().await;
    app.ok(q, json!({})).await;
    let five = app.statements().await - before;
    for i in 5..50 {
        let d = app
            .create_deal(json!({ "name": format!("D{i}"), "amount": "100", "ownerId": ana }))
            .await;
        update(&app, &d, json!({ "amount": "200" })).await;
    }
    let before = app.statements().await;
    let r = app.ok(q, json!({})).await;
    assert_eq!(app.statements().await - before, five);
    let nodes = r["deals"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 50);
    assert!(nodes
        .iter()
        .all(|n| n["history"]["nodes"][0]["owner"]["name"] == "Ana Lima"));
}

/// Deals written before deal history existed get revisions rebuilt from
/// their stage history when the migration runs, and as-of answers read
/// them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_rebuilds_revisions_from_stage_history_sqlite() {
    migration_rebuilds_revisions(crate::helpers::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_rebuilds_revisions_from_stage_history_postgres() {
    migration_rebuilds_revisions(crate::helpers::Backend::Postgres).await;
}

async fn migration_rebuilds_revisions(backend: crate::helpers::Backend) {
    use migration::{Migrator, MigratorTrait};
    use sea_orm::ConnectionTrait;
    // The database and how to remove it afterwards.
    let (url, cleanup) = match backend {
        crate::helpers::Backend::Sqlite => {
            let path = std::env::temp_dir().join(format!(
                "salesops-migration-{}.db",
                uuid::Uuid::new_v4().simple()
            ));
            let path = path.to_string_lossy().to_string();
            (format!("sqlite://{path}?mode=rwc"), (None, Some(path)))
        }
        crate::helpers::Backend::Postgres => {
            let Some(admin) = std::env::var("SALESOPS_TEST_DATABASE_URL")
                .ok()
                .filter(|u| !u.is_empty())
            else {
                return;
            };
            let schema = crate::helpers::create_schema(&admin).await;
            (
                crate::helpers::with_search_path(&admin, &schema),
                (Some((admin, schema)), None),
            )
        }
    };
    // The database as the release before deal history left it.
    let db = sea_orm::Database::connect(&url).await.unwrap();
    let before = Migrator::migrations()
        .iter()
        .position(|m| m.name() == "m20261206_000001_deal_revision")
        .unwrap();
    Migrator::up(&db, Some(before as u32)).await.unwrap();
    for sql in [
        "INSERT INTO rep (name, email, hired_at, active, ramp_months, commission_rate_ppm, commission_threshold_ppm, created_at, updated_at) \
         VALUES ('Ana Lima', 'ana@example.com', '2025-01-01', true, 3, 100000, 1000000, '2025-01-01T00:00:00+00:00', '2025-01-01T00:00:00+00:00')",
        "INSERT INTO deal (name, amount_cents, currency, owner_id, stage_id, status, forecast_category, opened_at, expected_close_date, closed_at, version, created_at, updated_at) \
         VALUES ('X', 100000, 'USD', (SELECT id FROM rep), (SELECT id FROM stage WHERE name = 'Won'), 'WON', 'CLOSED', '2026-01-01T09:00:00+00:00', '2026-03-15', '2026-02-01T09:00:00+00:00', 4, '2026-01-01T09:00:00+00:00', '2026-02-05T09:00:00+00:00')",
        "INSERT INTO deal (name, amount_cents, currency, owner_id, stage_id, status, forecast_category, opened_at, version, created_at, updated_at) \
         VALUES ('Y', 50000, 'USD', (SELECT id FROM rep), (SELECT id FROM stage WHERE name = 'Qualified'), 'OPEN', 'BEST_CASE', '2026-01-05T09:00:00+00:00', 1, '2026-01-05T09:00:00+00:00', '2026-01-05T09:00:00+00:00')",
        "INSERT INTO deal_stage_change (deal_id, from_stage_id, to_stage_id, changed_at, actor) \
         VALUES ((SELECT id FROM deal WHERE name = 'X'), NULL, (SELECT id FROM stage WHERE name = 'Discovery'), '2026-01-01T09:00:00+00:00', 'crm')",
        "INSERT INTO deal_stage_change (deal_id, from_stage_id, to_stage_id, changed_at, actor) \
         VALUES ((SELECT id FROM deal WHERE name = 'X'), (SELECT id FROM stage WHERE name = 'Discovery'), (SELECT id FROM stage WHERE name = 'Demo'), '2026-01-10T09:00:00+00:00', 'crm')",
        "INSERT INTO deal_stage_change (deal_id, from_stage_id, to_stage_id, changed_at, actor) \
         VALUES ((SELECT id FROM deal WHERE name = 'X'), (SELECT id FROM stage WHERE name = 'Demo'), (SELECT id FROM stage WHERE name = 'Won'), '2026-02-01T09:00:00+00:00', NULL)",
    ] {
        db.execute_unprepared(sql).await.unwrap();
    }
    db.close().await.unwrap();

    // The server migrates it on start.
    let app = crate::helpers::spawn_app_with(backend, |cfg| cfg.database_url = url.clone())
        .await
        .unwrap();
    let deals = app
        .ok(
            "{ deals(orderBy: AMOUNT_DESC, first: 2) { nodes { id name version history(first: 5) { totalCount nodes { version validFrom actor status forecastCategory stage { name } closedAt amount } } } } }",
            json!({}),
        )
        .await;
    let nodes = deals["deals"]["nodes"].as_array().unwrap();
    let x = &nodes[0];
    assert_eq!(x["name"], "X");
    assert_eq!(x["history"]["totalCount"], 3);
    assert_eq!(
        x["history"]["nodes"],
        json!([
            { "version": 4, "validFrom": "2026-02-01T09:00:00+00:00", "actor": "migration", "status": "WON",
              "forecastCategory": "CLOSED", "stage": { "name": "Won" }, "closedAt": "2026-02-01T09:00:00+00:00", "amount": "1000.00" },
            { "version": 3, "validFrom": "2026-01-10T09:00:00+00:00", "actor": "crm", "status": "OPEN",
              "forecastCategory": "PIPELINE", "stage": { "name": "Demo" }, "closedAt": null, "amount": "1000.00" },
            { "version": 2, "validFrom": "2026-01-01T09:00:00+00:00", "actor": "crm", "status": "OPEN",
              "forecastCategory": "PIPELINE", "stage": { "name": "Discovery" }, "closedAt": null, "amount": "1000.00" },
        ])
    );
    let y = &nodes[1];
    assert_eq!(
        y["history"]["nodes"],
        json!([{ "version": 1, "validFrom": "2026-01-05T09:00:00+00:00", "actor": "migration", "status": "OPEN",
                 "forecastCategory": "BEST_CASE", "stage": { "name": "Qualified" }, "closedAt": null, "amount": "500.00" }])
    );
    // As of January 15th X was open in Demo (0.4) expecting March; Y had no
    // close date and nothing was won yet, so no expected close.
    assert_eq!(
        stage_weighted(&app, "2026-03", "2026-01-15").await,
        "400.00"
    );
    // As of February 2nd X was won (31 days): Y is expected 31 days after
    // it opened, in Q1, at 0.2.
    let q1 = app
        .ok(
            FORECAST,
            json!({ "p": "2026-Q1", "m": "STAGE_WEIGHTED", "a": "2026-02-02" }),
        )
        .await;
    assert_eq!(q1["forecast"]["closedWon"], "1000.00");
    assert_eq!(q1["forecast"]["amount"], "1100.00");
    // New writes append after the rebuilt versions.
    let x_id = x["id"].as_str().unwrap();
    let v = update(&app, x_id, json!({ "amount": "1200" })).await;
    assert_eq!(v["version"], 5);
    let h = app.ok(HISTORY, json!({ "id": x_id, "n": 1 })).await;
    assert_eq!(h["deal"]["history"]["totalCount"], 4);
    assert_eq!(
        h["deal"]["history"]["nodes"][0]["changes"],
        json!([{ "field": "amount", "from": "1000.00", "to": "1200.00" }])
    );
    let mut app = app;
    app.stop(true).await;
    match cleanup {
        (Some((admin, schema)), _) => {
            let db = sea_orm::Database::connect(&admin).await.unwrap();
            db.execute_unprepared(&format!("DROP SCHEMA {schema} CASCADE"))
                .await
                .unwrap();
        }
        (_, Some(path)) => {
            std::fs::remove_file(path).ok();
        }
        _ => {}
    }
}

/// A small deterministic generator (splitmix64), so a failing history can
/// be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Random deals with random edits (amount, close date, owner, territory,
/// stage moves that win, lose and reopen, at random times): for several
/// windows and groupings, every row and the whole balance exactly, rows add
/// up to the whole, consecutive windows chain (one's ending is the next
/// one's starting) and an empty window changes nothing.
async fn pipeline_changes_balance_over_random_histories(app: TestApp) {
    let territories = [
        app.create_territory("West", None, None).await,
        app.create_territory("East", None, None).await,
    ];
    let mut reps = Vec::new();
    for name in ["Ana Lima", "Bo Chen", "Cy Doe"] {
        reps.push(app.create_rep(name, None, None, json!({})).await);
    }
    let mut stages = Vec::new();
    for name in ["Discovery", "Demo", "Trial", "Won", "Lost"] {
        stages.push(app.stage(name).await);
    }
    let day = |d: u64| {
        chrono::NaiveDate::from_ymd_opt(2025, 11, 1).unwrap() + chrono::Duration::days(d as i64)
    };
    for seed in [7_u64, 42, 2026, 99] {
        let mut rng = Rng(seed);
        for i in 0..15 {
            let opened = day(rng.below(40)); // November 1st to December 10th
            let close = day(30 + rng.below(150)); // December to March
            let deal = app
                .create_deal(json!({
                    "name": format!("s{seed}-{i}"),
                    "amount": format!("{}", 100 * (1 + rng.below(50))),
                    "ownerId": reps[rng.below(3) as usize],
                    "territoryId": territories[rng.below(2) as usize],
                    "openedAt": format!("{opened}T08:00:00Z"),
                    "expectedCloseDate": if rng.below(8) == 0 { Value::Null } else { json!(close.to_string()) },
                }))
                .await;
            // Edits at increasing times after it opened.
            let mut t = opened.and_hms_opt(8, 0, 0).unwrap();
            for _ in 0..rng.below(5) {
                t += chrono::Duration::hours(1 + rng.below(120) as i64);
                let at = format!("{}Z", t.format("%Y-%m-%dT%H:%M:%S"));
                match rng.below(5) {
                    0 => {
                        update(&app, &deal, json!({ "amount": format!("{}", 100 * (1 + rng.below(50))), "effectiveAt": at })).await;
                    }
                    1 => {
                        update(&app, &deal, json!({ "expectedCloseDate": day(30 + rng.below(150)).to_string(), "effectiveAt": at })).await;
                    }
                    2 => {
                        update(&app, &deal, json!({ "ownerId": reps[rng.below(3) as usize], "territoryId": territories[rng.below(2) as usize], "effectiveAt": at })).await;
                    }
                    _ => {
                        let stage = &stages[rng.below(5) as usize];
                        app.ok(
                            "mutation($id: ID!, $s: ID!, $at: DateTime) { moveDealStage(id: $id, stageId: $s, at: $at) { id } }",
                            json!({ "id": deal, "s": stage, "at": at }),
                        )
                        .await;
                    }
                }
            }
        }
    }
    let q = "query($p: Period!, $from: Date, $to: Date, $g: Dimension) { pipelineChanges(period: $p, from: $from, to: $to, groupBy: $g) { \
        starting created movedIn increased decreased movedOut won lost ending \
        rows { starting created movedIn increased decreased movedOut won lost ending } } }";
    let cents = |s: &str| -> i128 { s.replace('.', "").parse().unwrap() };
    // Which buckets the histories exercised somewhere.
    let mut seen = [false; 9];
    for period in ["2025-12", "2026-Q1", "2025-11-15..2026-02-01"] {
        let windows = [
            ("2025-11-05", "2025-11-20"),
            ("2025-11-20", "2025-12-01"),
            ("2025-12-01", "2025-12-08"),
            ("2025-12-08", "2025-12-20"),
        ];
        let mut previous_ending: Option<String> = None;
        for (from, to) in windows {
            let mut whole: Option<Vec<String>> = None;
            for g in ["NONE", "REP", "TERRITORY", "SOURCE"] {
                let r = app
                    .ok(q, json!({ "p": period, "from": from, "to": to, "g": g }))
                    .await;
                let c = &r["pipelineChanges"];
                let total = walk(c);
                assert!(balances(&total), "{period} {from}..{to}: {total:?}");
                let rows = c["rows"].as_array().unwrap();
                for row in rows {
                    assert!(balances(&walk(row)), "{period} {from}..{to} {g}: {row}");
                }
                // Rows add up to the whole, measure by measure.
                for (k, t) in total.iter().enumerate() {
                    let sum: i128 = rows.iter().map(|r| cents(&walk(r)[k])).sum();
                    assert_eq!(sum, cents(t), "{period} {from}..{to} {g} measure {k}");
                }
                match &whole {
                    None => whole = Some(total),
                    Some(w) => assert_eq!(w, &total, "{period} {from}..{to} {g}"),
                }
            }
            let total = whole.unwrap();
            for (k, v) in total.iter().enumerate() {
                seen[k] |= v != "0.00";
            }
            if let Some(ending) = &previous_ending {
                assert_eq!(ending, &total[0], "{period}: windows chain at {from}");
            }
            previous_ending = Some(total[8].clone());
            // An empty window: starting = ending, nothing moved.
            let still = app
                .ok(q, json!({ "p": period, "from": to, "to": to }))
                .await;
            let w = walk(&still["pipelineChanges"]);
            assert_eq!(w[0], w[8]);
            assert_eq!(w[0], total[8]);
            assert!(w[1..8].iter().all(|v| v == "0.00"), "{w:?}");
        }
    }
    assert_eq!(seen, [true; 9], "every bucket moved in some window");
}

db_tests!(the_revision_in_force_is_found_on_its_index);

/// "The revision in force at T for every deal" is one statement whose
/// per-deal lookup runs on idx_deal_revision_in_force, on both databases
/// (PostgreSQL asked to avoid sequential scans, as it does on a large table;
/// SQLite by its own choice).
async fn the_revision_in_force_is_found_on_its_index(app: TestApp) {
    use api::db::{Dialect, Sql};
    use api::service::access::DealScope;
    use api::service::deal_filter::DealFilter;
    use api::service::deal_state::{deals_as_of, Source};
    use api::service::forecast::asof::{asks_relation, Ask};
    use sea_orm::{ConnectionTrait, FromQueryResult, TransactionTrait};

    let ana = app.create_rep("Ana Lima", None, None, json!({})).await;
    let deal = app
        .create_deal(json!({ "name": "Acme", "amount": "1000", "ownerId": ana, "openedAt": "2026-10-01T09:00:00Z" }))
        .await;
    update(&app, &deal, json!({ "amount": "1200" })).await;
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    let period = api::domain::period::Period::month(2026, 11).unwrap();
    let ask = Ask {
        as_of: day,
        period,
        lookback_start: period.start(),
        lookback_end: period.start(),
        cycle: Default::default(),
    };
    let d = Dialect::of(&app.db);
    let prefix = match d {
        Dialect::Sqlite => "EXPLAIN QUERY PLAN WITH ",
        Dialect::Postgres => "EXPLAIN WITH ",
    };
    let mut sql = Sql::new(prefix);
    sql.append(&asks_relation(d, &[ask]))
        .push(" SELECT COUNT(*) FROM ")
        .append(&deals_as_of(
            d,
            Source::History,
            "1 = 1",
            &DealFilter::default(),
            DealScope::All,
        ));
    let backend = app.db.get_database_backend();
    let plan: String = match d {
        Dialect::Sqlite => {
            #[derive(FromQueryResult)]
            struct Step {
                detail: String,
            }
            Step::find_by_statement(sql.statement(backend))
                .all(&app.db)
                .await
                .unwrap()
                .into_iter()
                .map(|s| s.detail)
                .collect::<Vec<_>>()
                .join("\n")
        }
        Dialect::Postgres => {
            let tx = app.db.begin().await.unwrap();
            tx.execute_unprepared("SET LOCAL enable_seqscan = off")
                .await
                .unwrap();
            let rows = tx.query_all_raw(sql.statement(backend)).await.unwrap();
            tx.rollback().await.unwrap();
            rows.iter()
                .map(|r| r.try_get_by_index::<String>(0).unwrap())
                .collect::<Vec<_>>()
                .join("\n")
        }
    };
    assert!(plan.contains("idx_deal_revision_in_force"), "{plan}");
}
