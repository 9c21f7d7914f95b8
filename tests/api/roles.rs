//! The role table of docs/design.md and row scope: REP sees its own deals, a
//! MANAGER its team transitively; a deal outside the scope is NOT_FOUND for
//! reads and writes alike.
use api::auth::Role;
use serde_json::{json, Value};

use crate::db_tests;
use crate::helpers::{id_num, TestApp};

/// vp -> (mia -> (ana, ben), max -> cy); one deal each for ana, ben, cy, mia.
struct Team {
    vp: String,
    mia: String,
    ana: String,
    ben: String,
    cy: String,
    deals: std::collections::HashMap<&'static str, String>,
}

async fn team(app: &TestApp) -> Team {
    let vp = app.create_rep("Vera VP", None, None, json!({})).await;
    let mia = app
        .create_rep("Mia Manager", Some(&vp), None, json!({}))
        .await;
    let max = app
        .create_rep("Max Manager", Some(&vp), None, json!({}))
        .await;
    let ana = app.create_rep("Ana Rep", Some(&mia), None, json!({})).await;
    let ben = app.create_rep("Ben Rep", Some(&mia), None, json!({})).await;
    let cy = app.create_rep("Cy Rep", Some(&max), None, json!({})).await;
    let mut deals = std::collections::HashMap::new();
    for (name, owner) in [
        ("ana-deal", &ana),
        ("ben-deal", &ben),
        ("cy-deal", &cy),
        ("mia-deal", &mia),
    ] {
        let id = app
            .create_deal(json!({ "name": name, "amount": "100", "ownerId": owner }))
            .await;
        deals.insert(name, id);
    }
    Team {
        vp,
        mia,
        ana,
        ben,
        cy,
        deals,
    }
}

async fn visible(app: &TestApp, token: &str) -> (Vec<String>, i64) {
    let d = app
        .ok_as(
            token,
            "{ deals(orderBy: AMOUNT_ASC) { totalCount nodes { name } } }",
            json!({}),
        )
        .await;
    let mut names: Vec<String> = d["deals"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    (names, d["deals"]["totalCount"].as_i64().unwrap())
}

db_tests!(
    deal_scope_by_role,
    writes_respect_scope,
    role_table_for_writes,
    role_table_for_reads
);

async fn deal_scope_by_role(app: TestApp) {
    let t = team(&app).await;
    let rep = app.token(Role::Rep, Some(id_num(&t.ana)));
    let mgr = app.token(Role::Manager, Some(id_num(&t.mia)));
    let vp = app.token(Role::Manager, Some(id_num(&t.vp)));
    assert_eq!(visible(&app, &rep).await, (vec!["ana-deal".to_owned()], 1));
    assert_eq!(
        visible(&app, &mgr).await,
        (
            vec!["ana-deal".into(), "ben-deal".into(), "mia-deal".into()],
            3
        )
    );
    // Transitively: the VP's team is everyone below.
    assert_eq!(visible(&app, &vp).await.1, 4);
    for role in [Role::Admin, Role::Ops, Role::Viewer, Role::Integration] {
        assert_eq!(visible(&app, &app.token(role, None)).await.1, 4, "{role:?}");
    }
    // Out of scope is NOT_FOUND, by id and by externalId.
    let q = "query($id: ID) { deal(id: $id) { name } }";
    assert_eq!(
        app.error_code(&rep, q, json!({ "id": t.deals["ben-deal"] }))
            .await,
        "NOT_FOUND"
    );
    assert_eq!(
        app.error_code(&mgr, q, json!({ "id": t.deals["cy-deal"] }))
            .await,
        "NOT_FOUND"
    );
    assert_eq!(
        app.ok_as(&mgr, q, json!({ "id": t.deals["ben-deal"] }))
            .await["deal"]["name"],
        "ben-deal"
    );
    // Reps are scoped the same way.
    let reps = |v: Value| -> Vec<String> {
        v["reps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        reps(app.ok_as(&rep, "{ reps { name } }", json!({})).await),
        ["Ana Rep"]
    );
    assert_eq!(
        reps(app.ok_as(&mgr, "{ reps { name } }", json!({})).await),
        ["Ana Rep", "Ben Rep", "Mia Manager"]
    );
    assert_eq!(
        app.error_code(
            &rep,
            "query($id: ID!) { rep(id: $id) { name } }",
            json!({ "id": t.ben })
        )
        .await,
        "NOT_FOUND"
    );
    // Nested deal lists stay scoped: the manager reading a rep sees its deals,
    // a rep's own rep shows only its own.
    let d = app
        .ok_as(
            &mgr,
            "query($id: ID!) { rep(id: $id) { deals { totalCount } } }",
            json!({ "id": t.ben }),
        )
        .await;
    assert_eq!(d["rep"]["deals"]["totalCount"], 1);
    let d = app
        .ok_as(
            &rep,
            "{ me { rep { name deals { totalCount } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        d["me"]["rep"],
        json!({ "name": "Ana Rep", "deals": { "totalCount": 1 } })
    );
}

async fn writes_respect_scope(app: TestApp) {
    let t = team(&app).await;
    let rep = app.token(Role::Rep, Some(id_num(&t.ana)));
    let mgr = app.token(Role::Manager, Some(id_num(&t.mia)));
    let update = "mutation($id: ID!) { updateDeal(id: $id, patch: {name: \"renamed\"}) { name } }";
    let mv = "mutation($id: ID!, $s: ID!) { moveDealStage(id: $id, stageId: $s) { status } }";
    let won = app.stage("Won").await;
    assert_eq!(
        app.error_code(&rep, update, json!({ "id": t.deals["ben-deal"] }))
            .await,
        "NOT_FOUND"
    );
    assert_eq!(
        app.error_code(&rep, mv, json!({ "id": t.deals["ben-deal"], "s": won }))
            .await,
        "NOT_FOUND"
    );
    assert_eq!(
        app.error_code(&mgr, update, json!({ "id": t.deals["cy-deal"] }))
            .await,
        "NOT_FOUND"
    );
    assert_eq!(
        app.ok_as(&rep, update, json!({ "id": t.deals["ana-deal"] }))
            .await["updateDeal"]["name"],
        "renamed"
    );
    assert_eq!(
        app.ok_as(&mgr, mv, json!({ "id": t.deals["ben-deal"], "s": won }))
            .await["moveDealStage"]["status"],
        "WON"
    );
    // Creating or reassigning outside the scope is FORBIDDEN.
    let create = "mutation($o: ID!) { createDeal(input: {name: \"x\", amount: \"1\", ownerId: $o}) { owner { name } } }";
    assert_eq!(
        app.error_code(&rep, create, json!({ "o": t.ben })).await,
        "FORBIDDEN"
    );
    assert_eq!(
        app.ok_as(&rep, create, json!({ "o": t.ana })).await["createDeal"]["owner"]["name"],
        "Ana Rep"
    );
    assert_eq!(
        app.error_code(&mgr, create, json!({ "o": t.cy })).await,
        "FORBIDDEN"
    );
    assert_eq!(
        app.ok_as(&mgr, create, json!({ "o": t.ben })).await["createDeal"]["owner"]["name"],
        "Ben Rep"
    );
    let reassign = "mutation($id: ID!, $o: ID!) { updateDeal(id: $id, patch: {ownerId: $o}) { owner { name } } }";
    assert_eq!(
        app.error_code(
            &mgr,
            reassign,
            json!({ "id": t.deals["ana-deal"], "o": t.cy })
        )
        .await,
        "FORBIDDEN"
    );
    assert_eq!(
        app.ok_as(
            &mgr,
            reassign,
            json!({ "id": t.deals["ana-deal"], "o": t.ben })
        )
        .await["updateDeal"]["owner"]["name"],
        "Ben Rep"
    );
    // Nothing out of scope changed.
    let d = app
        .ok(
            "query($id: ID) { deal(id: $id) { name status version } }",
            json!({ "id": t.deals["cy-deal"] }),
        )
        .await;
    assert_eq!(
        d["deal"],
        json!({ "name": "cy-deal", "status": "OPEN", "version": 1 })
    );
}

async fn role_table_for_writes(app: TestApp) {
    let t = team(&app).await;
    let rep = app.token(Role::Rep, Some(id_num(&t.ana)));
    let mgr = app.token(Role::Manager, Some(id_num(&t.mia)));
    let viewer = app.token(Role::Viewer, None);
    let integ = app.token(Role::Integration, None);
    let ops = app.token(Role::Ops, None);
    let writes: [(&str, Value); 8] = [
        ("mutation { createTerritory(input: {name: \"T\"}) { id } }", json!({})),
        ("mutation { createStage(input: {name: \"S\", position: 9, probability: 0.5, kind: OPEN}) { id } }", json!({})),
        ("mutation($r: ID!) { setQuota(repId: $r, period: \"2026-07\", amount: \"10\") { id } }", json!({ "r": t.ana })),
        ("mutation { createPlaybook(input: {name: \"P\"}) { id } }", json!({})),
        ("mutation { createRep(input: {name: \"N\", email: \"n@example.com\"}) { id } }", json!({})),
        ("mutation { createAccount(input: {name: \"A\"}) { id } }", json!({})),
        ("mutation($id: ID!) { updateRep(id: $id, patch: {title: \"AE\"}) { id } }", json!({ "id": t.ana })),
        ("mutation($id: ID!) { updateDeal(id: $id, patch: {name: \"v\"}) { id } }", json!({ "id": t.deals["ana-deal"] })),
    ];
    // (token, which of the writes above it may do)
    let table: [(&str, &String, [bool; 8]); 5] = [
        (
            "REP",
            &rep,
            [false, false, false, false, false, false, false, true],
        ),
        (
            "MANAGER",
            &mgr,
            [false, false, false, false, false, false, false, true],
        ),
        (
            "VIEWER",
            &viewer,
            [false, false, false, false, false, false, false, false],
        ),
        (
            "INTEGRATION",
            &integ,
            [false, false, false, false, true, true, true, true],
        ),
        (
            "OPS",
            &ops,
            [true, true, true, true, true, true, true, true],
        ),
    ];
    for (role, token, allowed) in table {
        for (i, (q, vars)) in writes.iter().enumerate() {
            // Each role creates reps under its own email.
            let q = q.replace(
                "n@example.com",
                &format!("{}@example.com", role.to_lowercase()),
            );
            let body = app.gql(token, &q, vars.clone()).await;
            if allowed[i] {
                assert!(
                    body.get("errors").is_none(),
                    "{role} should be allowed {q}: {body}"
                );
            } else {
                assert_eq!(
                    body["errors"][0]["extensions"]["code"], "FORBIDDEN",
                    "{role} must not {q}"
                );
            }
        }
    }
}

async fn role_table_for_reads(app: TestApp) {
    let t = team(&app).await;
    app.set_quota(&t.ana, "2026-07", "1000").await;
    app.set_quota(&t.ben, "2026-07", "2000").await;
    let rep = app.token(Role::Rep, Some(id_num(&t.ana)));
    let integ = app.token(Role::Integration, None);
    let viewer = app.token(Role::Viewer, None);
    let ops = app.token(Role::Ops, None);
    // Reference data is readable by every role.
    for token in [&rep, &integ, &viewer] {
        app.ok_as(
            token,
            "{ stages { name } territories { name } playbooks { name } }",
            json!({}),
        )
        .await;
    }
    // Quotas: scoped for REP, forbidden for INTEGRATION.
    let q = "{ quotas(period: \"2026\") { rep { name } amount } }";
    assert_eq!(
        app.ok_as(&rep, q, json!({})).await["quotas"],
        json!([{ "rep": { "name": "Ana Rep" }, "amount": "1000.00" }])
    );
    assert_eq!(
        app.ok_as(&viewer, q, json!({})).await["quotas"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(app.error_code(&integ, q, json!({})).await, "FORBIDDEN");
    // The audit log is for OPS and ADMIN.
    let audit = "{ auditLog(first: 1) { action } }";
    assert_eq!(app.error_code(&viewer, audit, json!({})).await, "FORBIDDEN");
    assert_eq!(app.error_code(&rep, audit, json!({})).await, "FORBIDDEN");
    assert_eq!(
        app.ok_as(&ops, audit, json!({})).await["auditLog"][0]["action"],
        "createQuota"
    );
    // Integration reads reps, accounts and deals.
    app.ok_as(
        &integ,
        "{ reps { name } accounts { name } deals { totalCount } }",
        json!({}),
    )
    .await;
}
