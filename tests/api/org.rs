//! Territories, reps, accounts, stages, playbooks and quotas.
use serde_json::{json, Value};

use crate::db_tests;
use crate::helpers::TestApp;

db_tests!(
    territory_tree,
    rep_rules,
    accounts_search_and_pages,
    stages_in_order,
    playbooks_with_steps,
    quotas_by_period
);

async fn territory_tree(app: TestApp) {
    let emea = app.create_territory("EMEA", None, None).await;
    let dach = app
        .create_territory("DACH", Some("MID_MARKET"), Some(&emea))
        .await;
    let nordics = app
        .create_territory("Nordics", Some("SMB"), Some(&emea))
        .await;
    let berlin = app
        .create_territory("Berlin", Some("SMB"), Some(&dach))
        .await;
    app.create_rep("Ana", None, Some(&dach), json!({})).await;
    app.create_rep("Ben", None, Some(&berlin), json!({})).await;
    let d = app
        .ok(
            "query($id: ID!) { territory(id: $id) { name segment parent { name } children { name } reps { name } } }",
            json!({ "id": dach }),
        )
        .await;
    // Territory.reps lists direct members only.
    assert_eq!(
        d["territory"],
        json!({ "name": "DACH", "segment": "MID_MARKET", "parent": { "name": "EMEA" }, "children": [{ "name": "Berlin" }], "reps": [{ "name": "Ana" }] })
    );
    let d = app.ok("query($p: ID) { territories(parentId: $p) { name } all: territories(first: 2) { name } }", json!({ "p": emea })).await;
    assert_eq!(
        d["territories"],
        json!([{ "name": "DACH" }, { "name": "Nordics" }])
    );
    assert_eq!(d["all"], json!([{ "name": "Berlin" }, { "name": "DACH" }]));
    // Moving a territory under its own descendant is refused.
    let m = "mutation($id: ID!, $p: TerritoryPatch!) { updateTerritory(id: $id, patch: $p) { name region parent { name } } }";
    let token = app.admin_token();
    assert_eq!(
        app.error_code(
            &token,
            m,
            json!({ "id": dach, "p": { "parentId": berlin } })
        )
        .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        app.error_code(&token, m, json!({ "id": dach, "p": { "parentId": dach } }))
            .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        app.error_code(&token, m, json!({ "id": dach, "p": { "name": "" } }))
            .await,
        "BAD_USER_INPUT"
    );
    let d = app
        .ok(
            m,
            json!({ "id": berlin, "p": { "parentId": nordics, "region": "Europe" } }),
        )
        .await;
    assert_eq!(
        d["updateTerritory"],
        json!({ "name": "Berlin", "region": "Europe", "parent": { "name": "Nordics" } })
    );
    let d = app
        .ok(m, json!({ "id": berlin, "p": { "parentId": null } }))
        .await;
    assert_eq!(d["updateTerritory"]["parent"], Value::Null);
    assert_eq!(
        app.error_code(&token, "{ territory(id: \"999\") { name } }", json!({}))
            .await,
        "NOT_FOUND"
    );
}

async fn rep_rules(app: TestApp) {
    let lead = app.create_rep("Lead", None, None, json!({})).await;
    let ana = app
        .create_rep("Ana", Some(&lead), None, json!({ "email": "Ana@Example.com", "hiredAt": "2025-02-01", "rampMonths": 4, "commissionRate": "0.125", "commissionThreshold": "0.9", "title": "AE" }))
        .await;
    let d = app
        .ok(
            "query($id: ID!) { rep(id: $id) { email title hiredAt active rampMonths commissionRate commissionThreshold manager { name } } }",
            json!({ "id": ana }),
        )
        .await;
    assert_eq!(
        d["rep"],
        json!({ "email": "ana@example.com", "title": "AE", "hiredAt": "2025-02-01", "active": true, "rampMonths": 4, "commissionRate": "0.125", "commissionThreshold": "0.90", "manager": { "name": "Lead" } })
    );
    // Defaults: ramp 3, rate 0.10, threshold 1.0.
    let d = app.ok("query($id: ID!) { rep(id: $id) { rampMonths commissionRate commissionThreshold directReports { name } } }", json!({ "id": lead })).await;
    assert_eq!(
        d["rep"],
        json!({ "rampMonths": 3, "commissionRate": "0.10", "commissionThreshold": "1.00", "directReports": [{ "name": "Ana" }] })
    );
    let token = app.admin_token();
    let create = "mutation($i: RepInput!) { createRep(input: $i) { id } }";
    // An email already used (in any case) is a CONFLICT.
    assert_eq!(
        app.error_code(
            &token,
            create,
            json!({ "i": { "name": "Other", "email": "ANA@example.com" } })
        )
        .await,
        "CONFLICT"
    );
    for (input, why) in [
        (json!({ "name": "X", "email": "not-an-email" }), "bad email"),
        (
            json!({ "name": "", "email": "x@example.com" }),
            "empty name",
        ),
        (
            json!({ "name": "X", "email": "x@example.com", "commissionRate": "1.5" }),
            "rate above 1",
        ),
        (
            json!({ "name": "X", "email": "x@example.com", "rampMonths": -1 }),
            "negative ramp",
        ),
        (
            json!({ "name": "X", "email": "x@example.com", "managerId": "999" }),
            "unknown manager",
        ),
        (
            json!({ "name": "X", "email": "x@example.com", "territoryId": "999" }),
            "unknown territory",
        ),
    ] {
        assert_eq!(
            app.error_code(&token, create, json!({ "i": input })).await,
            "BAD_USER_INPUT",
            "{why}"
        );
    }
    assert_eq!(app.count_rows("rep").await, 2);
    let update = "mutation($id: ID!, $p: RepPatch!) { updateRep(id: $id, patch: $p) { active manager { name } commissionRate } }";
    // A management cycle is refused.
    assert_eq!(
        app.error_code(
            &token,
            update,
            json!({ "id": lead, "p": { "managerId": ana } })
        )
        .await,
        "BAD_USER_INPUT"
    );
    let d = app.ok(update, json!({ "id": ana, "p": { "active": false, "managerId": null, "commissionRate": "0.2" } })).await;
    assert_eq!(
        d["updateRep"],
        json!({ "active": false, "manager": null, "commissionRate": "0.20" })
    );
    let d = app
        .ok(
            "{ active: reps(active: true) { name } inactive: reps(active: false) { name } }",
            json!({}),
        )
        .await;
    assert_eq!(
        d,
        json!({ "active": [{ "name": "Lead" }], "inactive": [{ "name": "Ana" }] })
    );
}

async fn accounts_search_and_pages(app: TestApp) {
    let t = app.create_territory("T", None, None).await;
    for name in ["Globex", "Acme Corp", "acme labs", "Initech", "Umbrella"] {
        app.create_account(name, Some(&t)).await;
    }
    let d = app
        .ok(
            "{ accounts(search: \"ACME\") { name territory { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        d["accounts"],
        json!([{ "name": "Acme Corp", "territory": { "name": "T" } }, { "name": "acme labs", "territory": { "name": "T" } }])
    );
    // Pages by name; `after` is the last account's id.
    let page1 = app
        .ok("{ accounts(first: 2) { id name } }", json!({}))
        .await["accounts"]
        .clone();
    assert_eq!(
        page1
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].clone())
            .collect::<Vec<_>>(),
        vec![json!("Acme Corp"), json!("Globex")]
    );
    let page2 = app
        .ok(
            "query($a: String) { accounts(first: 2, after: $a) { name } }",
            json!({ "a": page1[1]["id"] }),
        )
        .await;
    assert_eq!(
        page2["accounts"],
        json!([{ "name": "Initech" }, { "name": "Umbrella" }])
    );
    let token = app.admin_token();
    assert_eq!(
        app.error_code(
            &token,
            "mutation { createAccount(input: {name: \"X\", territoryId: \"999\"}) { id } }",
            json!({})
        )
        .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(app.count_rows("account").await, 5);
}

async fn stages_in_order(app: TestApp) {
    let d = app
        .ok("{ stages { name position probability kind } }", json!({}))
        .await;
    assert_eq!(
        d["stages"],
        json!([
            { "name": "Discovery", "position": 1, "probability": 0.1, "kind": "OPEN" },
            { "name": "Qualified", "position": 2, "probability": 0.2, "kind": "OPEN" },
            { "name": "Demo", "position": 3, "probability": 0.4, "kind": "OPEN" },
            { "name": "Trial", "position": 4, "probability": 0.6, "kind": "OPEN" },
            { "name": "Final Call", "position": 5, "probability": 0.8, "kind": "OPEN" },
            { "name": "Won", "position": 6, "probability": 1.0, "kind": "WON" },
            { "name": "Lost", "position": 7, "probability": 0.0, "kind": "LOST" },
        ])
    );
    let d = app.ok("mutation { createStage(input: {name: \"Negotiation\", position: 5, probability: 0.7, kind: OPEN}) { id } }", json!({})).await;
    let id = d["createStage"]["id"].clone();
    let d = app.ok("mutation($id: ID!) { updateStageProbability(id: $id, probability: 0.75) { probability } }", json!({ "id": id })).await;
    assert_eq!(d["updateStageProbability"]["probability"], 0.75);
    let token = app.admin_token();
    assert_eq!(
        app.error_code(
            &token,
            "mutation($id: ID!) { updateStageProbability(id: $id, probability: 1.5) { id } }",
            json!({ "id": id })
        )
        .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(app.error_code(&token, "mutation { createStage(input: {name: \"Won\", position: 9, probability: 1, kind: WON}) { id } }", json!({})).await, "CONFLICT");
    let d = app.ok("{ stages { name } }", json!({})).await;
    let names: Vec<&str> = d["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Discovery",
            "Qualified",
            "Demo",
            "Trial",
            "Final Call",
            "Negotiation",
            "Won",
            "Lost"
        ]
    );
}

async fn playbooks_with_steps(app: TestApp) {
    let demo = app.stage("Demo").await;
    let d = app
        .ok(
            "mutation($i: PlaybookInput!) { createPlaybook(input: $i) { id name segment active steps { position title guidance stage { name } } } }",
            json!({ "i": { "name": "Velocity", "segment": "SMB", "description": "Fast", "steps": [
                { "title": "Qualify", "guidance": "Budget first" },
                { "title": "Demo", "stageId": demo },
            ] } }),
        )
        .await;
    assert_eq!(
        d["createPlaybook"]["steps"],
        json!([
            { "position": 1, "title": "Qualify", "guidance": "Budget first", "stage": null },
            { "position": 2, "title": "Demo", "guidance": null, "stage": { "name": "Demo" } },
        ])
    );
    let token = app.admin_token();
    let bad = json!({ "i": { "name": "Broken", "steps": [{ "title": "x", "stageId": "999" }] } });
    assert_eq!(
        app.error_code(
            &token,
            "mutation($i: PlaybookInput!) { createPlaybook(input: $i) { id } }",
            bad
        )
        .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(app.count_rows("playbook").await, 1);
    assert_eq!(app.count_rows("playbook_step").await, 2);
    let d = app.ok("{ playbooks(active: true) { name description } inactive: playbooks(active: false) { name } }", json!({})).await;
    assert_eq!(
        d,
        json!({ "playbooks": [{ "name": "Velocity", "description": "Fast" }], "inactive": [] })
    );
}

async fn quotas_by_period(app: TestApp) {
    let ana = app.create_rep("Ana", None, None, json!({})).await;
    app.set_quota(&ana, "2026-07", "10000").await;
    app.set_quota(&ana, "2026-08", "12000.50").await;
    // Setting the same period again replaces the amount.
    app.set_quota(&ana, "2026-07", "11000").await;
    let d = app.ok("query($r: ID) { quotas(period: \"2026-Q3\", repId: $r) { period start end amount rep { name } } }", json!({ "r": ana })).await;
    assert_eq!(
        d["quotas"],
        json!([
            { "period": "2026-07", "start": "2026-07-01", "end": "2026-08-01", "amount": "11000.00", "rep": { "name": "Ana" } },
            { "period": "2026-08", "start": "2026-08-01", "end": "2026-09-01", "amount": "12000.50", "rep": { "name": "Ana" } },
        ])
    );
    // Only quotas lying inside the period are listed.
    let d = app
        .ok(
            "{ quotas(period: \"2026-07-15..2026-12-31\") { period } }",
            json!({}),
        )
        .await;
    assert_eq!(d["quotas"], json!([{ "period": "2026-08" }]));
    let token = app.admin_token();
    let m = "mutation($r: ID!, $p: Period!, $a: Decimal!) { setQuota(repId: $r, period: $p, amount: $a) { id } }";
    // An overlapping range would count twice: CONFLICT.
    assert_eq!(
        app.error_code(&token, m, json!({ "r": ana, "p": "2026-Q3", "a": "1" }))
            .await,
        "CONFLICT"
    );
    assert_eq!(
        app.error_code(&token, m, json!({ "r": ana, "p": "2026-09", "a": "-1" }))
            .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        app.error_code(&token, m, json!({ "r": ana, "p": "2026-9", "a": "1" }))
            .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        app.error_code(&token, m, json!({ "r": "999", "p": "2026-09", "a": "1" }))
            .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(app.count_rows("quota").await, 2);
    // ISO weeks and explicit ranges are valid quota periods too.
    app.set_quota(&ana, "2026-W53", "100").await;
    let d = app
        .ok(
            "{ quotas(period: \"2026-12-28..2027-01-04\") { period } }",
            json!({}),
        )
        .await;
    assert_eq!(d["quotas"], json!([{ "period": "2026-W53" }]));
}
