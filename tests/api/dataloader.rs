//! Relations load through DataLoaders: a page of deals with its owner,
//! account, territory, stage and playbook costs the same number of SQL
//! statements whatever the page size.
use serde_json::json;

use crate::db_tests;
use crate::helpers::TestApp;
use api::auth::Role;

db_tests!(
    statements_do_not_grow_with_the_page,
    joined_relations_answer_as_their_loaders_do
);

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
    // One query for the page with its owner and account joined, one per
    // other relation: territory, stage, playbook.
    let small = statements_for(&app, PAGE, 5).await;
    let large = statements_for(&app, PAGE, 50).await;
    assert_eq!(small, 4);
    assert_eq!(large, 4);
    // The owner and account alone (as a deal list shows them): one statement,
    // also when asked through edges or a fragment.
    let list =
        "query($n: Int) { deals(first: $n) { nodes { name owner { name } account { name } } } }";
    assert_eq!(statements_for(&app, list, 50).await, 1);
    let edges = "query($n: Int) { deals(first: $n) { edges { node { ...D } } } } fragment D on Deal { owner { name } account { name } }";
    assert_eq!(statements_for(&app, edges, 50).await, 1);
    // totalCount adds exactly one COUNT.
    let with_count = "query($n: Int) { deals(first: $n) { totalCount nodes { owner { name } } } }";
    assert_eq!(statements_for(&app, with_count, 50).await, 2);
    // Nested connections are batched too: reps, their deal pages (one
    // windowed query), their counts (one GROUP BY), and the deals' accounts.
    let nested = "query($n: Int) { reps(first: $n) { name deals(first: 3) { totalCount nodes { account { name } } } } }";
    let a = statements_for(&app, nested, 2).await;
    let b = statements_for(&app, nested, 10).await;
    assert_eq!((a, b), (4, 4));
    // The nested deals' stages: fetched once per request (the connections
    // ask the stage loader for their rows' stages together, so each deal's
    // stage is then a cache hit), answering as a single deal does.
    let staged = "query($n: Int) { reps(first: $n) { deals(first: 3) { nodes { id stage { id name } } edges { node { stage { position } } } } } }";
    let a = statements_for(&app, staged, 2).await;
    let b = statements_for(&app, staged, 10).await;
    assert_eq!((a, b), (3, 3));
    let d = app.ok(staged, json!({ "n": 10 })).await;
    let mut seen = 0;
    for rep in d["reps"].as_array().unwrap() {
        for n in rep["deals"]["nodes"].as_array().unwrap() {
            let one = app
                .ok(
                    "query($id: ID!) { deal(id: $id) { stage { id name } } }",
                    json!({ "id": n["id"] }),
                )
                .await;
            assert_eq!(one["deal"]["stage"], n["stage"]);
            seen += 1;
        }
    }
    assert_eq!(seen, 30);
}

/// A page's owner and account come joined in its statement (and fill the
/// loaders' cache): every field of them answers as the loaders answer it
/// (a single deal reads them through the loaders), deals without an
/// account answer null, and a rep scope sees the same.
async fn joined_relations_answer_as_their_loaders_do(app: TestApp) {
    let north = app.create_territory("North", None, None).await;
    let ana = app
        .create_rep("Ana Lima", None, Some(&north), json!({"title": "AE"}))
        .await;
    let bo = app.create_rep("Bo Chen", None, None, json!({})).await;
    let acme = app.create_account("Acme", Some(&north)).await;
    for (i, (owner, account)) in [
        (&ana, Some(&acme)),
        (&bo, None),
        (&ana, None),
        (&bo, Some(&acme)),
    ]
    .into_iter()
    .enumerate()
    {
        let mut d = json!({ "name": format!("D{i}"), "amount": "100", "ownerId": owner });
        if let Some(a) = account {
            d["accountId"] = json!(a);
        }
        app.create_deal(d).await;
    }
    const REL: &str = "id owner { id name email title active hiredAt territory { name } } account { id name industry segment territory { name } }";
    let page = app
        .ok(
            &format!("{{ deals(first: 10) {{ nodes {{ {REL} }} }} }}"),
            json!({}),
        )
        .await;
    let nodes = page["deals"]["nodes"].as_array().unwrap().clone();
    assert_eq!(nodes.len(), 4);
    assert_eq!(nodes.iter().filter(|n| n["account"].is_null()).count(), 2);
    for n in &nodes {
        let one = app
            .ok(
                &format!("query($id: ID!) {{ deal(id: $id) {{ {REL} }} }}"),
                json!({ "id": n["id"] }),
            )
            .await;
        assert_eq!(&one["deal"], n);
    }
    // A rep sees their own deals, owner and account alike.
    let rep_token = app.token(Role::Rep, Some(ana.parse().unwrap()));
    let mine = app
        .gql(
            &rep_token,
            &format!("{{ deals(first: 10) {{ nodes {{ {REL} }} }} }}"),
            json!({}),
        )
        .await;
    let mine = mine["data"]["deals"]["nodes"].as_array().unwrap().clone();
    assert_eq!(mine.len(), 2);
    for n in &mine {
        assert!(nodes.contains(n), "{n} differs from the admin's page");
    }
}
