//! Every mutation writes an audit entry with the actor, the action and the
//! changed fields, in the same transaction as the change.
use api::auth::Role;
use serde_json::{json, Value};

use crate::db_tests;
use crate::helpers::{id_num, TestApp};

db_tests!(mutations_are_audited);

async fn mutations_are_audited(app: TestApp) {
    let t = app.create_territory("West", Some("SMB"), None).await;
    let ana = app.create_rep("Ana", None, Some(&t), json!({})).await;
    let acc = app.create_account("Acme", Some(&t)).await;
    app.set_quota(&ana, "2026-07", "1000").await;
    let rep_token = app.token(Role::Rep, Some(id_num(&ana)));
    let deal = app
        .ok_as(&rep_token, "mutation($o: ID!, $a: ID!) { createDeal(input: {name: \"D\", amount: \"100\", ownerId: $o, accountId: $a, openedAt: \"2026-01-01T00:00:00Z\"}) { id } }", json!({ "o": ana, "a": acc }))
        .await["createDeal"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.ok_as(
        &rep_token,
        "mutation($id: ID!) { updateDeal(id: $id, patch: {amount: \"150\", name: \"D2\"}) { id } }",
        json!({ "id": deal }),
    )
    .await;
    let won = app.stage("Won").await;
    // A move cannot be dated before the update (the latest revision): it
    // takes effect now.
    assert_eq!(
        app.error_code(
            &rep_token,
            "mutation($id: ID!, $s: ID!) { moveDealStage(id: $id, stageId: $s, at: \"2026-02-01T00:00:00Z\") { id } }",
            json!({ "id": deal, "s": won }),
        )
        .await,
        "BAD_USER_INPUT"
    );
    app.ok_as(
        &rep_token,
        "mutation($id: ID!, $s: ID!) { moveDealStage(id: $id, stageId: $s) { id } }",
        json!({ "id": deal, "s": won }),
    )
    .await;
    // A failed mutation writes no audit entry.
    let before = app.count_rows("audit_entry").await;
    app.error_code(
        &rep_token,
        "mutation($id: ID!) { updateDeal(id: $id, patch: {amount: \"-1\"}) { id } }",
        json!({ "id": deal }),
    )
    .await;
    assert_eq!(app.count_rows("audit_entry").await, before);

    let d = app.ok("query($id: ID) { auditLog(entityType: \"Deal\", entityId: $id) { actor action entityType entityId changes } }", json!({ "id": deal })).await;
    let entries = d["auditLog"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    // Newest first.
    assert_eq!(entries[0]["action"], "moveDealStage");
    assert_eq!(entries[1]["action"], "updateDeal");
    assert_eq!(entries[2]["action"], "createDeal");
    for e in entries {
        assert_eq!(e["actor"], "rep-tester");
        assert_eq!(e["entityId"], json!(deal));
    }
    let changes =
        |e: &Value| -> Value { serde_json::from_str(e["changes"].as_str().unwrap()).unwrap() };
    assert_eq!(
        changes(&entries[1]),
        json!({ "name": ["D", "D2"], "amount": ["100.00", "150.00"] })
    );
    let moved = changes(&entries[0]);
    assert_eq!(moved["status"], json!(["OPEN", "WON"]));
    assert_eq!(moved["stageId"][1], json!(id_num(&won)));
    assert_eq!(moved["closedAt"][0], Value::Null);
    // The category follows the stage.
    assert_eq!(moved["forecastCategory"], json!(["PIPELINE", "CLOSED"]));
    let created = changes(&entries[2]);
    assert_eq!(created["name"], json!([null, "D"]));
    assert_eq!(created["amount"], json!([null, "100.00"]));
    assert_eq!(created["accountId"], json!([null, id_num(&acc)]));
    // The other entity types are there too.
    let d = app
        .ok(
            "{ auditLog(first: 100) { action entityType actor } }",
            json!({}),
        )
        .await;
    let actions: Vec<(String, String)> = d["auditLog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["entityType"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("createTerritory", "Territory"),
        ("createRep", "Rep"),
        ("createAccount", "Account"),
        ("createQuota", "Quota"),
    ] {
        assert!(
            actions.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} in {actions:?}"
        );
    }
}
