//! Integrations: idempotent upserts, bulk writes, concurrent writers, the
//! incremental sync feed and the audit trail of deal writes.
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use api::auth::Role;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::db_tests;
use crate::helpers::{id_num, TestApp};

const UPSERT: &str =
    "mutation($i: DealInput!, $v: Int) { upsertDeal(input: $i, expectedVersion: $v) { \
    created updated unchanged deal { id externalId name version updatedAt amount status closedAt \
    stage { name } stageHistory { fromStage { name } toStage { name } changedAt } } } }";

const BULK: &str = "mutation($i: [DealInput!]!) { bulkUpsertDeals(inputs: $i) { \
    created updated unchanged errors { index externalId code message } } }";

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")))
        .unwrap()
        .with_timezone(&Utc)
}

/// (from stage, to stage, changedAt) of a deal's stage history.
fn history(deal: &Value) -> Vec<(Option<String>, String, DateTime<Utc>)> {
    deal["stageHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["fromStage"]["name"].as_str().map(str::to_owned),
                h["toStage"]["name"].as_str().unwrap().to_owned(),
                time(&h["changedAt"]),
            )
        })
        .collect()
}

fn at(s: &str) -> DateTime<Utc> {
    time(&json!(s))
}

async fn upsert(app: &TestApp, input: Value) -> Value {
    app.ok(UPSERT, json!({ "i": input })).await["upsertDeal"].clone()
}

async fn upsert_replays_are_unchanged(app: TestApp) {
    let ana = app.create_rep("Ana Lima", None, None, json!({})).await;
    let input = json!({
        "externalId": "crm-1", "name": "Acme renewal", "amount": "1200.50",
        "ownerId": ana, "openedAt": "2024-01-10T09:00:00Z",
    });
    let first = upsert(&app, input.clone()).await;
    assert_eq!(
        (&first["created"], &first["updated"], &first["unchanged"]),
        (&json!(true), &json!(false), &json!(false))
    );
    let deal = &first["deal"];
    assert_eq!(deal["version"], 1);
    assert_eq!(deal["amount"], "1200.50");
    assert_eq!(deal["stage"]["name"], "Discovery");
    let id = deal["id"].as_str().unwrap().to_owned();

    // The same input again: nothing written, not even updatedAt.
    let replay = upsert(&app, input.clone()).await;
    assert_eq!(
        (&replay["created"], &replay["updated"], &replay["unchanged"]),
        (&json!(false), &json!(false), &json!(true))
    );
    assert_eq!(replay["deal"]["id"], id.as_str());
    assert_eq!(replay["deal"]["version"], 1);
    assert_eq!(replay["deal"]["updatedAt"], deal["updatedAt"]);

    // A changed amount updates: version 2, a later updatedAt.
    let mut changed = input.clone();
    changed["amount"] = json!("1300");
    let updated = upsert(&app, changed.clone()).await;
    assert_eq!(
        (
            &updated["created"],
            &updated["updated"],
            &updated["unchanged"]
        ),
        (&json!(false), &json!(true), &json!(false))
    );
    assert_eq!(updated["deal"]["version"], 2);
    assert_eq!(updated["deal"]["amount"], "1300.00");
    assert!(time(&updated["deal"]["updatedAt"]) > time(&deal["updatedAt"]));

    // Replaying the changed input, or sending only the required fields
    // (absent ones keep their values; openedAt is only read on creation),
    // changes nothing.
    let again = upsert(&app, changed).await;
    assert_eq!(again["unchanged"], true);
    assert_eq!(again["deal"]["version"], 2);
    let minimal = upsert(
        &app,
        json!({ "externalId": "crm-1", "name": "Acme renewal", "amount": "1300", "ownerId": ana }),
    )
    .await;
    assert_eq!(minimal["unchanged"], true);
    assert_eq!(minimal["deal"]["version"], 2);
    assert_eq!(minimal["deal"]["updatedAt"], updated["deal"]["updatedAt"]);

    // One deal, one stage change, and two audit entries (create, update).
    assert_eq!(app.count_rows("deal").await, 1);
    assert_eq!(app.count_rows("deal_stage_change").await, 1);
    let log = app
        .ok(
            "query($id: ID!) { auditLog(entityType: \"Deal\", entityId: $id) { action actor changes } }",
            json!({ "id": id }),
        )
        .await;
    let entries = log["auditLog"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["action"], "upsertDeal");
    assert_eq!(entries[0]["actor"], "admin-tester");
    let changes: Value = serde_json::from_str(entries[0]["changes"].as_str().unwrap()).unwrap();
    assert_eq!(changes, json!({ "amount": ["1200.50", "1300.00"] }));
    assert_eq!(entries[1]["action"], "upsertDeal");
    let created: Value = serde_json::from_str(entries[1]["changes"].as_str().unwrap()).unwrap();
    assert_eq!(created["externalId"], json!([null, "crm-1"]));
    assert_eq!(created["amount"], json!([null, "1200.50"]));
}

async fn upsert_backfills_stage_history(app: TestApp) {
    let ana = app.create_rep("Ana Lima", None, None, json!({})).await;
    let demo = app.stage("Demo").await;
    let won = app.stage("Won").await;
    let trial = app.stage("Trial").await;
    let base = json!({
        "externalId": "crm-2", "name": "Globex", "amount": "5000", "ownerId": ana,
        "openedAt": "2024-01-10T09:00:00Z",
    });

    // Created in Demo since Feb 1: Discovery at openedAt, then Demo.
    let mut input = base.clone();
    input["stageId"] = json!(demo);
    input["stageChangedAt"] = json!("2024-02-01T12:00:00Z");
    let created = upsert(&app, input.clone()).await;
    assert_eq!(created["created"], true);
    assert_eq!(
        history(&created["deal"]),
        vec![
            (None, "Discovery".into(), at("2024-01-10T09:00:00Z")),
            (
                Some("Discovery".into()),
                "Demo".into(),
                at("2024-02-01T12:00:00Z")
            ),
        ]
    );
    assert_eq!(upsert(&app, input).await["unchanged"], true);

    // The CRM reports it won on March 15: a move recorded at closedAt.
    let mut input = base.clone();
    input["stageId"] = json!(won);
    input["closedAt"] = json!("2024-03-15T10:00:00Z");
    let moved = upsert(&app, input.clone()).await;
    assert_eq!(moved["updated"], true);
    let deal = &moved["deal"];
    // Versions 1 (opened in Discovery) and 2 (in Demo) came with its
    // creation; the move is version 3.
    assert_eq!(deal["version"], 3);
    assert_eq!(deal["status"], "WON");
    assert_eq!(time(&deal["closedAt"]), at("2024-03-15T10:00:00Z"));
    assert_eq!(
        history(deal),
        vec![
            (None, "Discovery".into(), at("2024-01-10T09:00:00Z")),
            (
                Some("Discovery".into()),
                "Demo".into(),
                at("2024-02-01T12:00:00Z")
            ),
            (
                Some("Demo".into()),
                "Won".into(),
                at("2024-03-15T10:00:00Z")
            ),
        ]
    );
    let replay = upsert(&app, input).await;
    assert_eq!(replay["unchanged"], true);
    assert_eq!(replay["deal"]["version"], 3);

    // A move stamped before the last change is rejected, and so is a
    // lostReason for a stage that is not LOST; neither writes anything.
    let token = app.admin_token();
    let mut early = base.clone();
    early["stageId"] = json!(trial);
    early["stageChangedAt"] = json!("2024-03-01T00:00:00Z");
    assert_eq!(
        app.error_code(&token, UPSERT, json!({ "i": early })).await,
        "BAD_USER_INPUT"
    );
    let mut reason = base.clone();
    reason["stageId"] = json!(trial);
    reason["lostReason"] = json!("price");
    assert_eq!(
        app.error_code(&token, UPSERT, json!({ "i": reason })).await,
        "BAD_USER_INPUT"
    );
    assert_eq!(app.count_rows("deal_stage_change").await, 3);
}

async fn bulk_reports_bad_items_and_applies_the_rest(app: TestApp) {
    let ana = app.create_rep("Ana Lima", None, None, json!({})).await;
    let bo = app.create_rep("Bo Chen", None, None, json!({})).await;
    let deal = |ext: &str, amount: &str, owner: &str| json!({ "externalId": ext, "name": format!("Deal {ext}"), "amount": amount, "ownerId": owner });
    let first = app
        .ok(
            BULK,
            json!({ "i": [deal("b-1", "100", &ana), deal("b-2", "200", &ana)] }),
        )
        .await;
    assert_eq!(
        first["bulkUpsertDeals"],
        json!({ "created": 2, "updated": 0, "unchanged": 0, "errors": [] })
    );

    let mut no_ext = deal("ignored", "10", &ana);
    no_ext.as_object_mut().unwrap().remove("externalId");
    let mut eur = deal("b-6", "600", &ana);
    eur["currency"] = json!("EUR");
    let inputs = json!([
        deal("b-1", "100", &ana),     // 0: unchanged
        deal("b-2", "250", &ana),     // 1: updated
        deal("b-3", "300", &ana),     // 2: created
        deal("b-4", "400", "999999"), // 3: unknown owner
        deal("b-5", "-5", &ana),      // 4: negative amount
        no_ext,                       // 5: no externalId
        eur,                          // 6: another currency
        deal("b-3", "310", &ana),     // 7: b-3 twice in one call
        deal("b-7", "700", &ana),     // 8: created
        deal("b-8", "800", "abc"),    // 9: an ownerId that is no id
    ]);
    let result = app.ok(BULK, json!({ "i": inputs })).await["bulkUpsertDeals"].clone();
    assert_eq!(result["created"], 2);
    assert_eq!(result["updated"], 1);
    assert_eq!(result["unchanged"], 1);
    let errors: Vec<(i64, Value, String)> = result["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["index"].as_i64().unwrap(),
                e["externalId"].clone(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let bad = "BAD_USER_INPUT".to_owned();
    assert_eq!(
        errors,
        vec![
            (3, json!("b-4"), bad.clone()),
            (4, json!("b-5"), bad.clone()),
            (5, Value::Null, bad.clone()),
            (6, json!("b-6"), bad.clone()),
            (7, json!("b-3"), bad.clone()),
            (9, json!("b-8"), bad.clone()),
        ]
    );
    let message = |i: usize| result["errors"][i]["message"].as_str().unwrap().to_owned();
    assert!(message(0).contains("ownerId"), "{}", message(0));
    assert!(message(2).contains("externalId"), "{}", message(2));
    assert!(message(3).contains("EUR"), "{}", message(3));
    assert!(message(4).contains("twice"), "{}", message(4));

    // b-1, b-2 (now 250, version 2), b-3 (300) and b-7 exist; nothing else.
    assert_eq!(app.count_rows("deal").await, 4);
    let data = app
        .ok(
            "{ deals(orderBy: AMOUNT_ASC) { nodes { externalId amount version } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["deals"]["nodes"],
        json!([
            { "externalId": "b-1", "amount": "100.00", "version": 1 },
            { "externalId": "b-2", "amount": "250.00", "version": 2 },
            { "externalId": "b-3", "amount": "300.00", "version": 1 },
            { "externalId": "b-7", "amount": "700.00", "version": 1 },
        ])
    );

    // A REP: its own new deal is created; one for another rep is FORBIDDEN;
    // another rep's existing deal is NOT_FOUND.
    app.ok(BULK, json!({ "i": [deal("bo-1", "50", &bo)] }))
        .await;
    let rep = app.token(Role::Rep, Some(id_num(&ana)));
    let result = app
        .ok_as(
            &rep,
            BULK,
            json!({ "i": [deal("r-1", "10", &ana), deal("r-2", "20", &bo), deal("bo-1", "55", &ana)] }),
        )
        .await["bulkUpsertDeals"]
        .clone();
    assert_eq!(result["created"], 1);
    assert_eq!(result["updated"], 0);
    assert_eq!(
        result["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["index"].as_i64().unwrap(), e["code"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        vec![(1, "FORBIDDEN"), (2, "NOT_FOUND")]
    );
    assert_eq!(app.count_rows("deal").await, 6);
    // Bulk creates and updates keep the deals' risk facts.
    assert_eq!(app.deals_with_stale_risk_facts().await, 0);
    assert_eq!(app.rollup_drift().await, 0);
}

async fn bulk_of_a_thousand_is_batched(app: TestApp) {
    let ana = app.create_rep("Ana Lima", None, None, json!({})).await;
    let inputs: Vec<Value> = (0..1000)
        .map(|i| {
            json!({ "externalId": format!("k-{i}"), "name": format!("Deal {i}"),
                    "amount": format!("{}.25", 100 + i), "ownerId": ana })
        })
        .collect();
    let before = app.statements().await;
    let result = app.ok(BULK, json!({ "i": inputs })).await;
    let used = app.statements().await - before;
    assert_eq!(
        result["bulkUpsertDeals"],
        json!({ "created": 1000, "updated": 0, "unchanged": 0, "errors": [] })
    );
    // One SELECT of the externalIds, one per referenced table, the clock,
    // one INSERT of the deals, one of their history, one of the audit
    // entries and one SELECT of webhooks: about a dozen statements, where a
    // round trip per deal would be thousands.
    assert!(used <= 25, "{used} statements for 1,000 deals");
    assert_eq!(app.count_rows("deal").await, 1000);
    assert_eq!(app.count_rows("deal_stage_change").await, 1000);
    assert_eq!(app.count_rows("audit_entry").await, 1001); // + createRep

    let before = app.statements().await;
    let replay = app.ok(BULK, json!({ "i": inputs })).await;
    let used = app.statements().await - before;
    assert_eq!(
        replay["bulkUpsertDeals"],
        json!({ "created": 0, "updated": 0, "unchanged": 1000, "errors": [] })
    );
    assert!(used <= 12, "{used} statements for a replay of 1,000 deals");
    assert_eq!(app.count_rows("audit_entry").await, 1001);

    let mut too_many = inputs.clone();
    too_many
        .push(json!({ "externalId": "k-1000", "name": "one more", "amount": "1", "ownerId": ana }));
    assert_eq!(
        app.error_code(&app.admin_token(), BULK, json!({ "i": too_many }))
            .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(app.count_rows("deal").await, 1000);
}

async fn concurrent_upserts_make_one_deal(app: TestApp) {
    let ana = app.create_rep("Ana Lima", None, None, json!({})).await;
    let input = json!({ "externalId": "race-1", "name": "Race", "amount": "100", "ownerId": ana });
    let same = futures::future::join_all((0..8).map(|_| upsert(&app, input.clone()))).await;
    let created = same.iter().filter(|r| r["created"] == true).count();
    let unchanged = same.iter().filter(|r| r["unchanged"] == true).count();
    assert_eq!((created, unchanged), (1, 7));
    let ids: HashSet<&str> = same
        .iter()
        .map(|r| r["deal"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(app.count_rows("deal").await, 1);

    // Eight different amounts at once: each applies on the previous state,
    // so all eight update and the deal ends at version 1 + 8 = 9.
    let different = futures::future::join_all((0..8).map(|i| {
        let mut input = input.clone();
        input["amount"] = json!(format!("{}", 200 + i));
        upsert(&app, input)
    }))
    .await;
    assert_eq!(different.iter().filter(|r| r["updated"] == true).count(), 8);
    let versions: HashSet<i64> = different
        .iter()
        .map(|r| r["deal"]["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, (2..=9).collect());
    assert_eq!(app.count_rows("deal").await, 1);

    // Four bulks of the same 50 new externalIds at once: 50 deals, each
    // created by exactly one of them.
    let batch: Vec<Value> = (0..50)
        .map(|i| json!({ "externalId": format!("rb-{i}"), "name": "R", "amount": "1", "ownerId": ana }))
        .collect();
    let bulks =
        futures::future::join_all((0..4).map(|_| app.ok(BULK, json!({ "i": batch.clone() }))))
            .await;
    let created: i64 = bulks
        .iter()
        .map(|b| b["bulkUpsertDeals"]["created"].as_i64().unwrap())
        .sum();
    let unchanged: i64 = bulks
        .iter()
        .map(|b| b["bulkUpsertDeals"]["unchanged"].as_i64().unwrap())
        .sum();
    assert_eq!((created, unchanged), (50, 150));
    assert_eq!(app.count_rows("deal").await, 51);
    // Racing writers keep the risk facts of what won.
    assert_eq!(app.deals_with_stale_risk_facts().await, 0);
    assert_eq!(app.rollup_drift().await, 0);
}

const FEED: &str = "query($since: DateTime, $after: String) { deals(filter: {updatedSince: $since}, \
    orderBy: UPDATED_ASC, first: 5, after: $after) { nodes { externalId version } pageInfo { hasNextPage endCursor } } }";

async fn sync_feed_sees_every_change_once_under_writes(app: TestApp) {
    let ana = app.create_rep("Ana Lima", None, None, json!({})).await;
    let seed: Vec<Value> = (0..12)
        .map(|i| json!({ "externalId": format!("s-{i}"), "name": format!("S{i}"), "amount": "1000", "ownerId": ana }))
        .collect();
    app.ok(BULK, json!({ "i": seed })).await;
    let first = app
        .ok(
            "{ deals(orderBy: UPDATED_ASC, first: 1) { nodes { updatedAt } } }",
            json!({}),
        )
        .await;
    let since = first["deals"]["nodes"][0]["updatedAt"].clone();

    let done = AtomicBool::new(false);
    let writer = async {
        let mut written: Vec<(String, i64)> = Vec::new();
        for round in 0..40 {
            let i = (round * 7) % 12;
            let r = upsert(
                &app,
                json!({ "externalId": format!("s-{i}"), "name": format!("S{i}"),
                        "amount": format!("{}", 2000 + round), "ownerId": ana }),
            )
            .await;
            written.push((
                r["deal"]["externalId"].as_str().unwrap().to_owned(),
                r["deal"]["version"].as_i64().unwrap(),
            ));
            if round % 5 == 0 {
                let r = upsert(
                    &app,
                    json!({ "externalId": format!("n-{round}"), "name": "New",
                            "amount": "10", "ownerId": ana }),
                )
                .await;
                written.push((format!("n-{round}"), r["deal"]["version"].as_i64().unwrap()));
            }
            tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        }
        done.store(true, Ordering::SeqCst);
        written
    };
    let reader = async {
        let mut seen: Vec<(String, i64)> = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let finished = done.load(Ordering::SeqCst);
            let page = app
                .ok(FEED, json!({ "since": since, "after": after }))
                .await;
            let conn = &page["deals"];
            for n in conn["nodes"].as_array().unwrap() {
                seen.push((
                    n["externalId"].as_str().unwrap().to_owned(),
                    n["version"].as_i64().unwrap(),
                ));
            }
            if let Some(c) = conn["pageInfo"]["endCursor"].as_str() {
                after = Some(c.to_owned());
            }
            // Caught up with every write the writer made: stop.
            if finished && conn["pageInfo"]["hasNextPage"] == false {
                break;
            }
        }
        seen
    };
    let (written, seen) = futures::join!(writer, reader);

    // No version is read twice, and each deal's versions come in order.
    let unique: HashSet<&(String, i64)> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a version was read twice");
    let mut last_seen: HashMap<&str, i64> = HashMap::new();
    for (id, v) in &seen {
        if let Some(prev) = last_seen.insert(id, *v) {
            assert!(*v > prev, "deal {id}: version {v} after {prev}");
        }
    }
    // Every deal is seen at its latest version. Round r writes s-(7r mod 12);
    // 7 and 12 are coprime, so rounds 0..36 write every seeded deal 3 times
    // and rounds 36..40 write s-0, s-7, s-2, s-9 once more; every write
    // changes the amount. Seeded deals end at 1 + 3 = 4 or 1 + 4 = 5, the 8
    // new ones (rounds 0, 5, .., 35) at 1.
    let mut expected: HashMap<String, i64> = HashMap::new();
    for i in 0..12 {
        let v = if [0, 2, 7, 9].contains(&i) { 5 } else { 4 };
        expected.insert(format!("s-{i}"), v);
    }
    for r in (0..40).step_by(5) {
        expected.insert(format!("n-{r}"), 1);
    }
    let mut written_latest: HashMap<String, i64> = HashMap::new();
    for (ext, v) in &written {
        let e = written_latest.entry(ext.clone()).or_insert(*v);
        *e = (*e).max(*v);
    }
    for i in 0..12 {
        written_latest.entry(format!("s-{i}")).or_insert(1);
    }
    assert_eq!(written_latest, expected);
    let last_seen: HashMap<String, i64> = last_seen
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    assert_eq!(last_seen, expected);
}

async fn audit_log_shows_every_deal_write(app: TestApp) {
    let ana = app.create_rep("Ana Lima", None, None, json!({})).await;
    let ops = app.token(Role::Ops, None);
    let demo = app.stage("Demo").await;
    let won = app.stage("Won").await;
    let discovery = app.stage("Discovery").await;
    let created = app
        .ok_as(
            &ops,
            "mutation($i: DealInput!) { createDeal(input: $i) { id } }",
            json!({ "i": { "externalId": "a-1", "name": "Deal A", "amount": "100", "ownerId": ana } }),
        )
        .await;
    let id = created["createDeal"]["id"].as_str().unwrap().to_owned();
    app.ok_as(
        &ops,
        "mutation($id: ID!) { updateDeal(id: $id, patch: {name: \"Deal A2\"}) { id } }",
        json!({ "id": id }),
    )
    .await;
    app.ok_as(
        &ops,
        "mutation($id: ID!, $s: ID!) { moveDealStage(id: $id, stageId: $s) { id } }",
        json!({ "id": id, "s": demo }),
    )
    .await;
    app.ok_as(
        &ops,
        UPSERT,
        json!({ "i": { "externalId": "a-1", "name": "Deal A2", "amount": "150", "ownerId": ana, "stageId": won } }),
    )
    .await;
    let log = app
        .ok_as(
            &ops,
            "query($id: ID!) { auditLog(entityType: \"Deal\", entityId: $id) { action actor changes } }",
            json!({ "id": id }),
        )
        .await;
    let entries = log["auditLog"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec!["upsertDeal", "moveDealStage", "updateDeal", "createDeal"]
    );
    assert!(entries.iter().all(|e| e["actor"] == "ops-tester"));
    let changes: Vec<Value> = entries
        .iter()
        .map(|e| serde_json::from_str(e["changes"].as_str().unwrap()).unwrap())
        .collect();
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    // Closing sets the category CLOSED (it follows the stage).
    assert_eq!(
        keys(&changes[0]),
        vec![
            "amount",
            "closedAt",
            "forecastCategory",
            "stageId",
            "status"
        ]
    );
    assert_eq!(
        changes[0]["forecastCategory"],
        json!(["PIPELINE", "CLOSED"])
    );
    assert_eq!(changes[0]["amount"], json!(["100.00", "150.00"]));
    assert_eq!(changes[0]["stageId"], json!([id_num(&demo), id_num(&won)]));
    // Discovery -> Demo: both open, so only the stage changes.
    assert_eq!(
        changes[1],
        json!({ "stageId": [id_num(&discovery), id_num(&demo)] })
    );
    assert_eq!(changes[2], json!({ "name": ["Deal A", "Deal A2"] }));
    assert_eq!(changes[3]["name"], json!([null, "Deal A"]));
    assert_eq!(changes[3]["externalId"], json!([null, "a-1"]));
}

async fn upsert_checks_scope_roles_and_versions(app: TestApp) {
    let ana = app.create_rep("Ana Lima", None, None, json!({})).await;
    let bo = app.create_rep("Bo Chen", None, None, json!({})).await;
    let input = |ext: &str, owner: &str, amount: &str| json!({ "externalId": ext, "name": "X", "amount": amount, "ownerId": owner });
    upsert(&app, input("v-1", &bo, "10")).await;
    let rep = app.token(Role::Rep, Some(id_num(&ana)));
    let app = &app;
    let code = |token: String, i: Value, v: Value| async move {
        app.error_code(&token, UPSERT, json!({ "i": i, "v": v }))
            .await
    };
    // Bo's deal is invisible to Ana.
    assert_eq!(
        code(rep.clone(), input("v-1", &ana, "10"), Value::Null).await,
        "NOT_FOUND"
    );
    let mut no_ext = input("x", &ana, "10");
    no_ext.as_object_mut().unwrap().remove("externalId");
    assert_eq!(
        code(rep.clone(), no_ext, Value::Null).await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        code(
            app.token(Role::Viewer, None),
            input("v-2", &ana, "10"),
            Value::Null
        )
        .await,
        "FORBIDDEN"
    );
    let admin = app.admin_token();
    assert_eq!(
        code(admin.clone(), input("v-1", &bo, "20"), json!(2)).await,
        "CONFLICT"
    );
    assert_eq!(
        code(admin.clone(), input("v-9", &bo, "20"), json!(1)).await,
        "CONFLICT"
    );
    let ok = app
        .ok(UPSERT, json!({ "i": input("v-1", &bo, "20"), "v": 1 }))
        .await;
    assert_eq!(ok["upsertDeal"]["updated"], true);
    assert_eq!(ok["upsertDeal"]["deal"]["version"], 2);
    assert_eq!(app.count_rows("deal").await, 1);
}

db_tests!(
    upsert_replays_are_unchanged,
    upsert_backfills_stage_history,
    bulk_reports_bad_items_and_applies_the_rest,
    bulk_of_a_thousand_is_batched,
    concurrent_upserts_make_one_deal,
    sync_feed_sees_every_change_once_under_writes,
    audit_log_shows_every_deal_write,
    upsert_checks_scope_roles_and_versions,
);
