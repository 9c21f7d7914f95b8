//! Deals: writes with history, versions and validation; the list with every
//! filter, order and keyset pagination.
use serde_json::{json, Value};

use crate::db_tests;
use crate::helpers::TestApp;

const DEAL_FIELDS: &str = "id externalId name amount currency status stage { name } forecastCategory source \
    owner { id } account { id } territory { id } playbook { id } openedAt expectedCloseDate closedAt lostReason \
    version stageHistory { fromStage { name } toStage { name } changedAt actor }";

async fn deal(app: &TestApp, id: &str) -> Value {
    let q = format!("query($id: ID) {{ deal(id: $id) {{ {DEAL_FIELDS} }} }}");
    app.ok(&q, json!({ "id": id })).await["deal"].clone()
}

struct Org {
    territory: String,
    other_territory: String,
    owner: String,
    account: String,
}

async fn org(app: &TestApp) -> Org {
    let territory = app.create_territory("West", Some("SMB"), None).await;
    let other_territory = app.create_territory("East", Some("ENTERPRISE"), None).await;
    let owner = app
        .create_rep("Ana Silva", None, Some(&other_territory), json!({}))
        .await;
    let account = app.create_account("Acme", Some(&territory)).await;
    Org {
        territory,
        other_territory,
        owner,
        account,
    }
}

db_tests!(
    create_with_defaults_and_history,
    bad_input_writes_nothing,
    update_with_versions,
    stage_moves_close_and_reopen,
    backfilled_closed_deal,
    lookups_by_external_id,
    every_filter_narrows,
    every_order_and_keyset_pages,
    page_limits_and_bad_cursors,
    nested_deal_connections,
);

async fn create_with_defaults_and_history(app: TestApp) {
    let o = org(&app).await;
    let id = app
        .create_deal(json!({
            "name": "Acme platform", "amount": "1250.5", "ownerId": o.owner, "accountId": o.account,
            "openedAt": "2026-03-01T10:00:00Z", "expectedCloseDate": "2026-05-31", "source": "INBOUND"
        }))
        .await;
    let d = deal(&app, &id).await;
    // Defaults: the first OPEN stage, the org currency, the account's
    // territory (not the owner's), PIPELINE, version 1; money has 2 places.
    assert_eq!(d["amount"], "1250.50");
    assert_eq!(d["currency"], "USD");
    assert_eq!(d["status"], "OPEN");
    assert_eq!(d["stage"]["name"], "Discovery");
    assert_eq!(d["forecastCategory"], "PIPELINE");
    assert_eq!(d["territory"]["id"], json!(o.territory));
    assert_eq!(d["version"], 1);
    assert_eq!(d["closedAt"], Value::Null);
    assert_eq!(d["expectedCloseDate"], "2026-05-31");
    // One history entry, no fromStage, stamped openedAt, with the actor.
    assert_eq!(
        d["stageHistory"],
        json!([{ "fromStage": null, "toStage": { "name": "Discovery" }, "changedAt": "2026-03-01T10:00:00+00:00", "actor": "admin-tester" }])
    );
    // Without an account the owner's territory is used.
    let id2 = app
        .create_deal(json!({ "name": "No account", "amount": "10", "ownerId": o.owner }))
        .await;
    assert_eq!(
        deal(&app, &id2).await["territory"]["id"],
        json!(o.other_territory)
    );
    // The currency is accepted in any case and normalised.
    let id3 = app
        .create_deal(
            json!({ "name": "Lower", "amount": "10", "ownerId": o.owner, "currency": "usd" }),
        )
        .await;
    assert_eq!(deal(&app, &id3).await["currency"], "USD");
}

async fn bad_input_writes_nothing(app: TestApp) {
    let o = org(&app).await;
    let base = json!({ "name": "Deal", "amount": "100", "ownerId": o.owner });
    let with = |k: &str, v: Value| {
        let mut x = base.clone();
        x[k] = v;
        x
    };
    let audit_before = app.count_rows("audit_entry").await;
    let cases = [
        (with("amount", json!("-1")), "negative amount"),
        (with("amount", json!("1.005")), "sub-cent amount"),
        (with("currency", json!("EUR")), "another currency"),
        (with("ownerId", json!("999999")), "unknown owner"),
        (with("ownerId", json!("abc")), "malformed owner id"),
        (with("accountId", json!("999999")), "unknown account"),
        (with("territoryId", json!("999999")), "unknown territory"),
        (with("stageId", json!("999999")), "unknown stage"),
        (with("playbookId", json!("999999")), "unknown playbook"),
        (with("name", json!("   ")), "blank name"),
        (
            with("openedAt", json!("2999-01-01T00:00:00Z")),
            "opened in the future",
        ),
        (
            with("closedAt", json!("2026-01-01T00:00:00Z")),
            "closedAt on an open stage",
        ),
        (
            with("lostReason", json!("Price")),
            "lostReason on an open stage",
        ),
    ];
    let token = app.admin_token();
    for (input, why) in cases {
        let code = app
            .error_code(
                &token,
                "mutation($i: DealInput!) { createDeal(input: $i) { id } }",
                json!({ "i": input }),
            )
            .await;
        assert_eq!(code, "BAD_USER_INPUT", "{why}");
    }
    assert_eq!(app.count_rows("deal").await, 0);
    assert_eq!(app.count_rows("deal_stage_change").await, 0);
    assert_eq!(app.count_rows("audit_entry").await, audit_before);
    // A duplicate externalId is a CONFLICT and leaves only the first deal.
    app.create_deal(with("externalId", json!("crm-1"))).await;
    let code = app
        .error_code(
            &token,
            "mutation($i: DealInput!) { createDeal(input: $i) { id } }",
            json!({ "i": with("externalId", json!("crm-1")) }),
        )
        .await;
    assert_eq!(code, "CONFLICT");
    assert_eq!(app.count_rows("deal").await, 1);
    assert_eq!(app.count_rows("deal_stage_change").await, 1);
}

async fn update_with_versions(app: TestApp) {
    let o = org(&app).await;
    let id = app
        .create_deal(
            json!({ "name": "Deal", "amount": "100", "ownerId": o.owner, "accountId": o.account }),
        )
        .await;
    let m = "mutation($id: ID!, $p: DealPatch!, $v: Int) { updateDeal(id: $id, patch: $p, expectedVersion: $v) { name amount version account { id } territory { id } expectedCloseDate updatedAt } }";
    let d = app.ok(m, json!({ "id": id, "p": { "name": "Deal v2", "amount": "250.00", "expectedCloseDate": "2026-06-30" }, "v": 1 })).await;
    assert_eq!(d["updateDeal"]["version"], 2);
    assert_eq!(d["updateDeal"]["amount"], "250.00");
    assert_eq!(d["updateDeal"]["name"], "Deal v2");
    // A stale version is a CONFLICT and changes nothing.
    let token = app.admin_token();
    let code = app
        .error_code(
            &token,
            m,
            json!({ "id": id, "p": { "name": "stale" }, "v": 1 }),
        )
        .await;
    assert_eq!(code, "CONFLICT");
    assert_eq!(deal(&app, &id).await["name"], "Deal v2");
    // A patch that changes nothing does not bump the version.
    let d = app
        .ok(m, json!({ "id": id, "p": { "name": "Deal v2" } }))
        .await;
    assert_eq!(d["updateDeal"]["version"], 2);
    // null clears a nullable field; absent keeps it.
    let d = app
        .ok(m, json!({ "id": id, "p": { "accountId": null } }))
        .await;
    assert_eq!(d["updateDeal"]["account"], Value::Null);
    assert_eq!(d["updateDeal"]["expectedCloseDate"], "2026-06-30");
    assert_eq!(d["updateDeal"]["version"], 3);
    // Unknown references are BAD_USER_INPUT; an unknown deal is NOT_FOUND.
    assert_eq!(
        app.error_code(&token, m, json!({ "id": id, "p": { "ownerId": "424242" } }))
            .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        app.error_code(&token, m, json!({ "id": id, "p": { "amount": "-5" } }))
            .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        app.error_code(&token, m, json!({ "id": "424242", "p": { "name": "x" } }))
            .await,
        "NOT_FOUND"
    );
    assert_eq!(deal(&app, &id).await["version"], 3);
}

async fn stage_moves_close_and_reopen(app: TestApp) {
    let o = org(&app).await;
    let id = app
        .create_deal(json!({ "name": "Deal", "amount": "100", "ownerId": o.owner, "openedAt": "2026-01-10T09:00:00Z" }))
        .await;
    let token = app.admin_token();
    let m = "mutation($id: ID!, $s: ID!, $at: DateTime, $r: String, $v: Int) { moveDealStage(id: $id, stageId: $s, at: $at, lostReason: $r, expectedVersion: $v) { status stage { name } closedAt lostReason version } }";
    let demo = app.stage("Demo").await;
    let won = app.stage("Won").await;
    let lost = app.stage("Lost").await;
    let trial = app.stage("Trial").await;
    let d = app
        .ok(
            m,
            json!({ "id": id, "s": demo, "at": "2026-01-20T12:00:00Z", "v": 1 }),
        )
        .await;
    assert_eq!(
        d["moveDealStage"],
        json!({ "status": "OPEN", "stage": { "name": "Demo" }, "closedAt": null, "lostReason": null, "version": 2 })
    );
    // Errors: lostReason on a non-LOST stage, a time before the last change,
    // a stale version, an unknown stage.
    assert_eq!(
        app.error_code(&token, m, json!({ "id": id, "s": won, "r": "Price" }))
            .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        app.error_code(
            &token,
            m,
            json!({ "id": id, "s": won, "at": "2026-01-15T00:00:00Z" })
        )
        .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        app.error_code(&token, m, json!({ "id": id, "s": won, "v": 1 }))
            .await,
        "CONFLICT"
    );
    assert_eq!(
        app.error_code(&token, m, json!({ "id": id, "s": "999999" }))
            .await,
        "BAD_USER_INPUT"
    );
    // WON closes at `at`.
    let d = app
        .ok(
            m,
            json!({ "id": id, "s": won, "at": "2026-02-01T08:30:00Z" }),
        )
        .await;
    assert_eq!(
        d["moveDealStage"],
        json!({ "status": "WON", "stage": { "name": "Won" }, "closedAt": "2026-02-01T08:30:00+00:00", "lostReason": null, "version": 3 })
    );
    // Moving to the stage it is in changes nothing.
    let d = app.ok(m, json!({ "id": id, "s": won })).await;
    assert_eq!(d["moveDealStage"]["version"], 3);
    // Reopening clears closedAt; losing records the reason.
    let d = app
        .ok(
            m,
            json!({ "id": id, "s": trial, "at": "2026-02-02T08:30:00Z" }),
        )
        .await;
    assert_eq!(
        d["moveDealStage"],
        json!({ "status": "OPEN", "stage": { "name": "Trial" }, "closedAt": null, "lostReason": null, "version": 4 })
    );
    let d = app
        .ok(
            m,
            json!({ "id": id, "s": lost, "at": "2026-02-03T00:00:00Z", "r": "Chose a competitor" }),
        )
        .await;
    assert_eq!(
        d["moveDealStage"],
        json!({ "status": "LOST", "stage": { "name": "Lost" }, "closedAt": "2026-02-03T00:00:00+00:00", "lostReason": "Chose a competitor", "version": 5 })
    );
    let history: Vec<Value> = deal(&app, &id).await["stageHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| json!([h["fromStage"]["name"], h["toStage"]["name"], h["changedAt"]]))
        .collect();
    assert_eq!(
        history,
        vec![
            json!([null, "Discovery", "2026-01-10T09:00:00+00:00"]),
            json!(["Discovery", "Demo", "2026-01-20T12:00:00+00:00"]),
            json!(["Demo", "Won", "2026-02-01T08:30:00+00:00"]),
            json!(["Won", "Trial", "2026-02-02T08:30:00+00:00"]),
            json!(["Trial", "Lost", "2026-02-03T00:00:00+00:00"]),
        ]
    );
    // ageDays: 2026-01-10 to 2026-02-03 is 24 calendar days.
    let d = app
        .ok(
            "query($id: ID) { deal(id: $id) { ageDays } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(d["deal"]["ageDays"], 24);
}

async fn backfilled_closed_deal(app: TestApp) {
    let o = org(&app).await;
    let won = app.stage("Won").await;
    let id = app
        .create_deal(json!({
            "name": "Old win", "amount": "900", "ownerId": o.owner, "stageId": won,
            "openedAt": "2025-01-05T00:00:00Z", "closedAt": "2025-03-01T00:00:00Z"
        }))
        .await;
    let d = deal(&app, &id).await;
    assert_eq!(d["status"], "WON");
    assert_eq!(d["forecastCategory"], "CLOSED");
    assert_eq!(d["closedAt"], "2025-03-01T00:00:00+00:00");
    // Open in the first stage from openedAt, won at closedAt.
    let history: Vec<Value> = d["stageHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| json!([h["fromStage"]["name"], h["toStage"]["name"], h["changedAt"]]))
        .collect();
    assert_eq!(
        history,
        vec![
            json!([null, "Discovery", "2025-01-05T00:00:00+00:00"]),
            json!(["Discovery", "Won", "2025-03-01T00:00:00+00:00"])
        ]
    );
    let token = app.admin_token();
    let bad = json!({ "name": "x", "amount": "1", "ownerId": o.owner, "stageId": won, "openedAt": "2025-03-01T00:00:00Z", "closedAt": "2025-01-01T00:00:00Z" });
    assert_eq!(
        app.error_code(
            &token,
            "mutation($i: DealInput!) { createDeal(input: $i) { id } }",
            json!({ "i": bad })
        )
        .await,
        "BAD_USER_INPUT"
    );
}

async fn lookups_by_external_id(app: TestApp) {
    let o = org(&app).await;
    let id = app
        .create_deal(
            json!({ "name": "Ext", "amount": "1", "ownerId": o.owner, "externalId": "sf-006" }),
        )
        .await;
    let d = app
        .ok(
            "{ deal(externalId: \"sf-006\") { id externalId } }",
            json!({}),
        )
        .await;
    assert_eq!(d["deal"], json!({ "id": id, "externalId": "sf-006" }));
    let token = app.admin_token();
    assert_eq!(
        app.error_code(&token, "{ deal(externalId: \"nope\") { id } }", json!({}))
            .await,
        "NOT_FOUND"
    );
    assert_eq!(
        app.error_code(&token, "{ deal(id: \"999999\") { id } }", json!({}))
            .await,
        "NOT_FOUND"
    );
    assert_eq!(
        app.error_code(&token, "{ deal { id } }", json!({})).await,
        "BAD_USER_INPUT"
    );
}

/// Six deals with distinct attributes; each filter selects a known subset.
async fn filter_fixture(app: &TestApp) -> (Value, Value) {
    let root = app.create_territory("Americas", None, None).await;
    let west = app.create_territory("West", Some("SMB"), Some(&root)).await;
    let east = app.create_territory("East", Some("ENTERPRISE"), None).await;
    let ana = app.create_rep("Ana", None, Some(&west), json!({})).await;
    let bo = app.create_rep("Bo", None, Some(&east), json!({})).await;
    let won = app.stage("Won").await;
    let lost = app.stage("Lost").await;
    let trial = app.stage("Trial").await;
    let deals = [
        json!({ "name": "Alpha Widgets", "amount": "100.00", "ownerId": ana, "territoryId": west, "openedAt": "2026-01-05T00:00:00Z", "expectedCloseDate": "2026-02-15", "forecastCategory": "COMMIT" }),
        json!({ "name": "Beta Gadgets", "amount": "200.00", "ownerId": ana, "territoryId": root, "openedAt": "2026-02-05T00:00:00Z", "expectedCloseDate": "2026-03-15", "stageId": trial }),
        json!({ "name": "Gamma WIDGETS", "amount": "300.00", "ownerId": bo, "territoryId": east, "openedAt": "2026-03-05T00:00:00Z", "stageId": won, "closedAt": "2026-03-20T00:00:00Z" }),
        json!({ "name": "Delta", "amount": "400.00", "ownerId": bo, "territoryId": east, "openedAt": "2026-01-10T00:00:00Z", "stageId": lost, "closedAt": "2026-04-01T00:00:00Z" }),
        json!({ "name": "Epsilon 50% off", "amount": "500.00", "ownerId": ana, "territoryId": west, "openedAt": "2026-04-01T00:00:00Z", "expectedCloseDate": "2026-04-30" }),
        json!({ "name": "Zeta_x", "amount": "600.00", "ownerId": bo, "openedAt": "2026-04-15T00:00:00Z" }),
    ];
    for d in deals {
        app.create_deal(d).await;
    }
    (
        json!({ "ana": ana, "bo": bo, "west": west, "east": east, "root": root }),
        json!({ "trial": trial, "won": won }),
    )
}

async fn names(app: &TestApp, filter: Value) -> Vec<String> {
    let d = app
        .ok("query($f: DealFilter) { deals(filter: $f, orderBy: AMOUNT_ASC, first: 50) { totalCount nodes { name } } }", json!({ "f": filter }))
        .await;
    let names: Vec<String> = d["deals"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        d["deals"]["totalCount"],
        names.len(),
        "totalCount matches the filtered set"
    );
    names
}

async fn every_filter_narrows(app: TestApp) {
    let (ids, stages) = filter_fixture(&app).await;
    let all = [
        "Alpha Widgets",
        "Beta Gadgets",
        "Gamma WIDGETS",
        "Delta",
        "Epsilon 50% off",
        "Zeta_x",
    ];
    assert_eq!(names(&app, json!({})).await, all);
    assert_eq!(
        names(&app, json!({ "status": ["WON", "LOST"] })).await,
        ["Gamma WIDGETS", "Delta"]
    );
    assert_eq!(
        names(&app, json!({ "status": [] })).await,
        Vec::<String>::new()
    );
    assert_eq!(
        names(&app, json!({ "stageIds": [stages["trial"]] })).await,
        ["Beta Gadgets"]
    );
    assert_eq!(
        names(&app, json!({ "ownerIds": [ids["bo"]] })).await,
        ["Gamma WIDGETS", "Delta", "Zeta_x"]
    );
    // A territory includes the territories below it: Americas covers West.
    assert_eq!(
        names(&app, json!({ "territoryIds": [ids["root"]] })).await,
        ["Alpha Widgets", "Beta Gadgets", "Epsilon 50% off"]
    );
    assert_eq!(
        names(&app, json!({ "territoryIds": [ids["west"]] })).await,
        ["Alpha Widgets", "Epsilon 50% off"]
    );
    // Segment of the deal's territory (Americas has none; Zeta_x's is Bo's East).
    assert_eq!(
        names(&app, json!({ "segments": ["ENTERPRISE"] })).await,
        ["Gamma WIDGETS", "Delta", "Zeta_x"]
    );
    assert_eq!(
        names(&app, json!({ "segments": ["SMB", "MID_MARKET"] })).await,
        ["Alpha Widgets", "Epsilon 50% off"]
    );
    assert_eq!(
        names(&app, json!({ "forecastCategories": ["COMMIT", "CLOSED"] })).await,
        ["Alpha Widgets", "Gamma WIDGETS"]
    );
    // Amount bounds are inclusive.
    assert_eq!(
        names(&app, json!({ "minAmount": "200", "maxAmount": "400.00" })).await,
        ["Beta Gadgets", "Gamma WIDGETS", "Delta"]
    );
    assert_eq!(
        names(&app, json!({ "minAmount": "199.995" })).await,
        [
            "Beta Gadgets",
            "Gamma WIDGETS",
            "Delta",
            "Epsilon 50% off",
            "Zeta_x"
        ]
    );
    // Periods are half-open: opened in Q1 2026 = Jan 1 .. Apr 1 exclusive.
    assert_eq!(
        names(&app, json!({ "openedIn": "2026-Q1" })).await,
        ["Alpha Widgets", "Beta Gadgets", "Gamma WIDGETS", "Delta"]
    );
    assert_eq!(
        names(&app, json!({ "openedIn": "2026-01-01..2026-04-01" })).await,
        ["Alpha Widgets", "Beta Gadgets", "Gamma WIDGETS", "Delta"]
    );
    assert_eq!(
        names(&app, json!({ "closedIn": "2026-03" })).await,
        ["Gamma WIDGETS"]
    );
    assert_eq!(
        names(&app, json!({ "closedIn": "2026-04" })).await,
        ["Delta"]
    );
    assert_eq!(
        names(&app, json!({ "expectedCloseIn": "2026-Q1" })).await,
        ["Alpha Widgets", "Beta Gadgets"]
    );
    // Search: case-insensitive substring; % and _ are literal.
    assert_eq!(
        names(&app, json!({ "search": "widgets" })).await,
        ["Alpha Widgets", "Gamma WIDGETS"]
    );
    assert_eq!(
        names(&app, json!({ "search": "50%" })).await,
        ["Epsilon 50% off"]
    );
    assert_eq!(names(&app, json!({ "search": "_" })).await, ["Zeta_x"]);
    assert_eq!(
        names(&app, json!({ "search": "%" })).await,
        ["Epsilon 50% off"]
    );
    // updatedSince: everything now, nothing from the future.
    assert_eq!(
        names(&app, json!({ "updatedSince": "2000-01-01T00:00:00Z" }))
            .await
            .len(),
        6
    );
    assert_eq!(
        names(&app, json!({ "updatedSince": "2999-01-01T00:00:00Z" })).await,
        Vec::<String>::new()
    );
    // Combined fields must all match.
    assert_eq!(
        names(
            &app,
            json!({ "ownerIds": [ids["ana"]], "status": ["OPEN"], "minAmount": "150" })
        )
        .await,
        ["Beta Gadgets", "Epsilon 50% off"]
    );
    // Bad filter values are BAD_USER_INPUT.
    let token = app.admin_token();
    let q = "query($f: DealFilter) { deals(filter: $f) { totalCount } }";
    assert_eq!(
        app.error_code(&token, q, json!({ "f": { "openedIn": "2026-13" } }))
            .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        app.error_code(&token, q, json!({ "f": { "ownerIds": ["x"] } }))
            .await,
        "BAD_USER_INPUT"
    );
}

async fn ordered(app: &TestApp, order: &str) -> Vec<String> {
    let d = app
        .ok(
            &format!("{{ deals(orderBy: {order}, first: 50) {{ nodes {{ name }} }} }}"),
            json!({}),
        )
        .await;
    d["deals"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn every_order_and_keyset_pages(app: TestApp) {
    let (ids, _) = filter_fixture(&app).await;
    assert_eq!(
        ordered(&app, "AMOUNT_DESC").await,
        [
            "Zeta_x",
            "Epsilon 50% off",
            "Delta",
            "Gamma WIDGETS",
            "Beta Gadgets",
            "Alpha Widgets"
        ]
    );
    assert_eq!(
        ordered(&app, "AMOUNT_ASC").await,
        [
            "Alpha Widgets",
            "Beta Gadgets",
            "Gamma WIDGETS",
            "Delta",
            "Epsilon 50% off",
            "Zeta_x"
        ]
    );
    assert_eq!(
        ordered(&app, "OPENED_DESC").await,
        [
            "Zeta_x",
            "Epsilon 50% off",
            "Gamma WIDGETS",
            "Beta Gadgets",
            "Delta",
            "Alpha Widgets"
        ]
    );
    // Dated deals first by date, then undated ones by id.
    assert_eq!(
        ordered(&app, "EXPECTED_CLOSE_ASC").await,
        [
            "Alpha Widgets",
            "Beta Gadgets",
            "Epsilon 50% off",
            "Gamma WIDGETS",
            "Delta",
            "Zeta_x"
        ]
    );
    // Creation order is update order until something changes.
    assert_eq!(
        ordered(&app, "UPDATED_ASC").await,
        [
            "Alpha Widgets",
            "Beta Gadgets",
            "Gamma WIDGETS",
            "Delta",
            "Epsilon 50% off",
            "Zeta_x"
        ]
    );
    assert_eq!(
        ordered(&app, "UPDATED_DESC").await,
        [
            "Zeta_x",
            "Epsilon 50% off",
            "Delta",
            "Gamma WIDGETS",
            "Beta Gadgets",
            "Alpha Widgets"
        ]
    );

    // Page through EXPECTED_CLOSE_ASC two at a time (crossing from dated to
    // undated rows), inserting rows between pages: the cursor continues after
    // the last row seen, without repeats or gaps among the original rows.
    let q = "query($a: String, $o: DealOrder) { deals(orderBy: $o, first: 2, after: $a) { totalCount edges { cursor node { name } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }";
    let mut after = Value::Null;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let d = app
            .ok(q, json!({ "a": after, "o": "EXPECTED_CLOSE_ASC" }))
            .await["deals"]
            .clone();
        let edges = d["edges"].as_array().unwrap();
        seen.extend(
            edges
                .iter()
                .map(|e| e["node"]["name"].as_str().unwrap().to_owned()),
        );
        assert_eq!(d["pageInfo"]["hasPreviousPage"], pages > 0);
        assert_eq!(d["pageInfo"]["endCursor"], edges.last().unwrap()["cursor"]);
        pages += 1;
        if pages == 1 {
            // A deal that sorts before the cursor: not seen on later pages.
            app.create_deal(json!({ "name": "Early", "amount": "1", "ownerId": ids["ana"], "expectedCloseDate": "2025-01-01" })).await;
        }
        if d["pageInfo"]["hasNextPage"] == json!(false) {
            break;
        }
        after = d["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(
        seen,
        [
            "Alpha Widgets",
            "Beta Gadgets",
            "Epsilon 50% off",
            "Gamma WIDGETS",
            "Delta",
            "Zeta_x"
        ]
    );
    assert_eq!(pages, 3);

    // UPDATED_ASC as a sync feed: a row changed after it was read comes
    // again at the end, so no change is missed.
    let mut after = Value::Null;
    let mut seen = Vec::new();
    let mut first_page = true;
    loop {
        let d = app.ok(q, json!({ "a": after, "o": "UPDATED_ASC" })).await["deals"].clone();
        for e in d["edges"].as_array().unwrap() {
            seen.push(e["node"]["name"].as_str().unwrap().to_owned());
        }
        if first_page {
            first_page = false;
            let alpha = app
                .ok(
                    "{ deals(filter: {search: \"Alpha\"}) { nodes { id } } }",
                    json!({}),
                )
                .await["deals"]["nodes"][0]["id"]
                .clone();
            app.ok("mutation($id: ID!) { updateDeal(id: $id, patch: {name: \"Alpha Widgets v2\"}) { id } }", json!({ "id": alpha })).await;
        }
        if d["pageInfo"]["hasNextPage"] == json!(false) {
            break;
        }
        after = d["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen.first().unwrap(), "Alpha Widgets");
    assert_eq!(seen.last().unwrap(), "Alpha Widgets v2");
    assert_eq!(
        seen.len(),
        8,
        "6 originals, Early, and Alpha's new version: {seen:?}"
    );
}

async fn page_limits_and_bad_cursors(app: TestApp) {
    let token = app.admin_token();
    assert_eq!(
        app.error_code(&token, "{ deals(first: 501) { totalCount } }", json!({}))
            .await,
        "QUERY_TOO_COMPLEX"
    );
    assert_eq!(
        app.error_code(&token, "{ deals(first: -1) { totalCount } }", json!({}))
            .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        app.error_code(
            &token,
            "{ deals(after: \"garbage\") { totalCount } }",
            json!({})
        )
        .await,
        "BAD_USER_INPUT"
    );
    let o = org(&app).await;
    app.create_deal(json!({ "name": "A", "amount": "1", "ownerId": o.owner }))
        .await;
    app.create_deal(json!({ "name": "B", "amount": "2", "ownerId": o.owner }))
        .await;
    let d = app.ok("{ deals(first: 1, orderBy: AMOUNT_DESC) { totalCount pageInfo { endCursor hasNextPage } } }", json!({})).await;
    assert_eq!(d["deals"]["totalCount"], 2);
    assert_eq!(d["deals"]["pageInfo"]["hasNextPage"], true);
    // A cursor belongs to its order.
    let code = app
        .error_code(
            &token,
            "query($a: String) { deals(orderBy: UPDATED_DESC, after: $a) { totalCount } }",
            json!({ "a": d["deals"]["pageInfo"]["endCursor"] }),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    // first: 500 is allowed, first: 0 is an empty page.
    let d = app.ok("{ deals(first: 500) { totalCount } empty: deals(first: 0) { nodes { id } pageInfo { hasNextPage } } }", json!({})).await;
    assert_eq!(d["deals"]["totalCount"], 2);
    assert_eq!(
        d["empty"],
        json!({ "nodes": [], "pageInfo": { "hasNextPage": true } })
    );
}

async fn nested_deal_connections(app: TestApp) {
    let o = org(&app).await;
    let bo = app.create_rep("Bo", None, None, json!({})).await;
    for (name, amount, owner) in [
        ("A1", "10", &o.owner),
        ("A2", "20", &o.owner),
        ("A3", "30", &o.owner),
        ("B1", "5", &bo),
    ] {
        app.create_deal(
            json!({ "name": name, "amount": amount, "ownerId": owner, "accountId": o.account }),
        )
        .await;
    }
    let d = app
        .ok(
            "query($acc: ID!) { reps { name deals(first: 2, orderBy: AMOUNT_DESC, filter: {minAmount: \"6\"}) { totalCount nodes { name } pageInfo { hasNextPage } } } account(id: $acc) { deals(first: 10) { totalCount } } }",
            json!({ "acc": o.account }),
        )
        .await;
    assert_eq!(
        d["reps"],
        json!([
            { "name": "Ana Silva", "deals": { "totalCount": 3, "nodes": [{ "name": "A3" }, { "name": "A2" }], "pageInfo": { "hasNextPage": true } } },
            { "name": "Bo", "deals": { "totalCount": 0, "nodes": [], "pageInfo": { "hasNextPage": false } } }
        ])
    );
    assert_eq!(d["account"]["deals"]["totalCount"], 4);
}
