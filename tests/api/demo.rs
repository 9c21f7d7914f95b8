//! The demo organisation of `serve --demo` looks like a real sales team.
use serde_json::json;

use crate::db_tests;
use crate::helpers::TestApp;

db_tests!(demo_data_is_realistic);

async fn demo_data_is_realistic(app: TestApp) {
    let summary = api::seed::demo(&app.db, "USD").await.expect("seed");
    assert!(summary.deals >= 3_000);
    // The seed writes each deal's risk facts with its rows: the same as
    // its revisions, stage changes and activities say.
    assert_eq!(app.deals_with_stale_risk_facts().await, 0);
    assert_eq!(app.rollup_drift().await, 0);
    assert!(
        app.count_rows("deal WHERE last_activity_at IS NOT NULL")
            .await
            > 1_000
    );
    assert!(app.count_rows("deal WHERE pushed_at IS NOT NULL").await > 100);
    assert!(
        app.count_rows("deal WHERE amount_cents < first_amount_cents")
            .await
            > 10
    );
    let d = app
        .ok(
            "{ territories(first: 500) { segment parent { id } } reps(first: 500) { id manager { id } hiredAt } accounts(first: 500) { id } playbooks { name steps { title } }
               all: deals { totalCount } won: deals(filter: {status: [WON]}) { totalCount } lost: deals(filter: {status: [LOST]}) { totalCount }
               open: deals(filter: {status: [OPEN]}) { totalCount } }",
            json!({}),
        )
        .await;
    let territories = d["territories"].as_array().unwrap();
    let leaves: Vec<_> = territories
        .iter()
        .filter(|t| !t["segment"].is_null())
        .collect();
    assert!(leaves.len() >= 6);
    let segments: std::collections::BTreeSet<_> = leaves
        .iter()
        .map(|t| t["segment"].as_str().unwrap())
        .collect();
    assert_eq!(segments.len(), 3);
    let reps = d["reps"].as_array().unwrap();
    assert!(reps.len() >= 30);
    assert!(reps.iter().filter(|r| !r["manager"].is_null()).count() >= 29);
    let hire_dates: std::collections::BTreeSet<_> = reps
        .iter()
        .map(|r| r["hiredAt"].as_str().unwrap())
        .collect();
    assert!(hire_dates.len() >= 20, "staggered hire dates");
    assert!(d["accounts"].as_array().unwrap().len() >= 300);
    assert_eq!(d["playbooks"].as_array().unwrap().len(), 3);
    let total = d["all"]["totalCount"].as_i64().unwrap();
    let won = d["won"]["totalCount"].as_f64().unwrap();
    let lost = d["lost"]["totalCount"].as_f64().unwrap();
    assert!(total >= 3_000);
    assert!(d["open"]["totalCount"].as_i64().unwrap() > 50);
    let rate = won / (won + lost);
    assert!((0.15..=0.40).contains(&rate), "win rate {rate}");
    // Deals are spread over 24 months and have stage histories.
    let d = app.ok("{ deals(first: 1, orderBy: OPENED_DESC) { nodes { openedAt } } oldest: deals(first: 200, orderBy: AMOUNT_DESC, filter: {status: [WON]}) { nodes { stageHistory { toStage { name } } ageDays } } }", json!({})).await;
    let nodes = d["oldest"]["nodes"].as_array().unwrap();
    assert!(
        nodes
            .iter()
            .all(|n| n["stageHistory"].as_array().unwrap().len() == 6),
        "won deals went through every stage"
    );
    let mean_age = nodes
        .iter()
        .map(|n| n["ageDays"].as_f64().unwrap())
        .sum::<f64>()
        / nodes.len() as f64;
    assert!(
        (14.0..=180.0).contains(&mean_age),
        "cycles of weeks to months: {mean_age}"
    );
    // New records after the seed get fresh ids (sequences moved past the seed).
    let t = app.create_territory("New", None, None).await;
    assert!(t.parse::<i64>().unwrap() > territories.len() as i64);
    let r = app.create_rep("New Rep", None, None, json!({})).await;
    app.create_deal(json!({ "name": "after seed", "amount": "1", "ownerId": r }))
        .await;
}
