//! Relations load through DataLoaders: a page of deals with its owner,
//! account, territory, stage and playbook costs the same number of SQL
//! statements whatever the page size.
use serde_json::json;

use crate::db_tests;
use crate::helpers::TestApp;

db_tests!(statements_do_not_grow_with_the_page);

const PAGE: &str = "query($n: Int) { deals(first: $n) { nodes { name owner { name } account { name } territory { name } stage { name } playbook { name } } } }";

async fn statements_for(app: &TestApp, query: &str, n: i64) -> u64 {
    let before = app.statements().await;
    let d = app.ok(query, json!({ "n": n })).await;
    assert!(d.to_string().len() > 10);
    app.statements().await - before
}

async fn statements_do_not_grow_with_the_page(app: TestApp) {
    let mut territories = Vec::new();
    for i in 0..5 {
        territories.push(app.create_territory(&format!("T{i}"), None, None).await);
    }
    let pb = app
        .ok(
            "mutation { createPlaybook(input: {name: \"P\"}) { id } }",
            json!({}),
        )
        .await["createPlaybook"]["id"]
        .clone();
    let mut reps = Vec::new();
    for i in 0..10 {
        reps.push(
            app.create_rep(
                &format!("Rep {i}"),
                None,
                Some(&territories[i % 5]),
                json!({}),
            )
            .await,
        );
    }
    let mut accounts = Vec::new();
    for i in 0..20 {
        accounts.push(
            app.create_account(&format!("Acc {i}"), Some(&territories[i % 5]))
                .await,
        );
    }
    let stages = ["Discovery", "Qualified", "Demo", "Trial"];
    for i in 0..60 {
        let stage = app.stage(stages[i % 4]).await;
        app.create_deal(json!({
            "name": format!("Deal {i}"), "amount": format!("{}", 100 + i), "ownerId": reps[i % 10],
            "accountId": accounts[i % 20], "stageId": stage, "playbookId": pb,
        }))
        .await;
    }
    // One query for the page, one per relation: deals, rep, account,
    // territory, stage, playbook.
    let small = statements_for(&app, PAGE, 5).await;
    let large = statements_for(&app, PAGE, 50).await;
    assert_eq!(small, 6);
    assert_eq!(large, 6);
    // totalCount adds exactly one COUNT.
    let with_count = "query($n: Int) { deals(first: $n) { totalCount nodes { owner { name } } } }";
    assert_eq!(statements_for(&app, with_count, 50).await, 3);
    // Nested connections are batched too: reps, their deal pages (one
    // windowed query), their counts (one GROUP BY), and the deals' accounts.
    let nested = "query($n: Int) { reps(first: $n) { name deals(first: 3) { totalCount nodes { account { name } } } } }";
    let a = statements_for(&app, nested, 2).await;
    let b = statements_for(&app, nested, 10).await;
    assert_eq!((a, b), (4, 4));
}
