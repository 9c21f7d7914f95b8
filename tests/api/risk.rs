//! Deal risk (docs/design.md, Deal risk): each signal with its evidence,
//! the score, and the filter finding exactly the deals that show a signal.
use chrono::{Duration, Utc};
use serde_json::{json, Value};

use crate::db_tests;
use crate::helpers::TestApp;

db_tests!(every_signal_is_shown_and_found_by_the_filter);

const DEALS: &str = "query($f: DealFilter) { deals(first: 50, filter: $f, orderBy: OPENED_DESC) { nodes { name pushCount risk { score signals { kind detail } } } } }";

async fn names(app: &TestApp, filter: Value) -> Vec<String> {
    let mut n: Vec<String> = app.ok(DEALS, json!({ "f": filter })).await["deals"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_owned())
        .collect();
    n.sort();
    n
}

async fn every_signal_is_shown_and_found_by_the_filter(app: TestApp) {
    let ana = app.create_rep("Ana Lima", None, None, json!({})).await;
    let today = Utc::now().date_naive();
    let ago = |days: i64| format!("{}T09:00:00Z", today - Duration::days(days));
    let day = |days: i64| (today + Duration::days(days)).to_string();
    let stage = |name: &'static str| app.stage(name);
    let (trial, final_call, demo, won) = (
        stage("Trial").await,
        stage("Final Call").await,
        stage("Demo").await,
        stage("Won").await,
    );
    let deal = |name: &str, extra: Value| {
        let mut d = json!({ "name": name, "amount": "1000", "ownerId": ana });
        for (k, v) in extra.as_object().unwrap() {
            d[k] = v.clone();
        }
        d
    };
    // Each deal alone in its stage (or with deals spending the same days),
    // so only the intended signal shows.
    app.create_deal(deal(
        "late",
        json!({ "stageId": trial, "openedAt": ago(10), "expectedCloseDate": day(-3) }),
    ))
    .await;
    let pushed = app
        .create_deal(deal(
            "pushed",
            json!({ "stageId": final_call, "expectedCloseDate": day(10) }),
        ))
        .await;
    for d in [20, 30] {
        app.ok(
            "mutation($id: ID!, $d: Date) { updateDeal(id: $id, patch: {expectedCloseDate: $d}) { id } }",
            json!({ "id": pushed, "d": day(d) }),
        )
        .await;
    }
    let shrunk = app
        .create_deal(deal(
            "shrunk",
            json!({ "stageId": demo, "expectedCloseDate": day(40) }),
        ))
        .await;
    app.ok(
        "mutation($id: ID!) { updateDeal(id: $id, patch: {amount: \"800\"}) { id } }",
        json!({ "id": shrunk }),
    )
    .await;
    let idle = app
        .create_deal(deal("idle", json!({ "stageId": demo })))
        .await;
    // Discovery: two deals left it after 10 days; "stuck" has been there 60.
    app.create_deal(deal("stuck", json!({ "openedAt": ago(60) })))
        .await;
    for name in ["moved-1", "moved-2"] {
        let d = app
            .create_deal(deal(name, json!({ "openedAt": ago(100) })))
            .await;
        app.move_deal(&d, "Qualified", &ago(90)).await;
    }
    app.create_deal(deal(
        "won",
        json!({ "stageId": won, "openedAt": ago(30), "expectedCloseDate": day(-20) }),
    ))
    .await;
    // Forty days without a write (the clock cannot be turned back through
    // the API).
    let forty = Utc::now() - Duration::days(40);
    let sql = match app.backend {
        crate::helpers::Backend::Sqlite => format!(
            "UPDATE deal SET updated_at = '{}' WHERE id = {idle}",
            forty.format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        ),
        crate::helpers::Backend::Postgres => {
            format!(
                "UPDATE deal SET updated_at = '{}' WHERE id = {idle}",
                forty.to_rfc3339()
            )
        }
    };
    use sea_orm::ConnectionTrait;
    app.db.execute_unprepared(&sql).await.unwrap();

    let all = app.ok(DEALS, json!({ "f": null })).await;
    let risk: std::collections::HashMap<String, Value> = all["deals"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["name"].as_str().unwrap().to_owned(), d["risk"].clone()))
        .collect();
    let one = |kind: &str, detail: String| json!({ "score": 1.0 / 6.0, "signals": [{ "kind": kind, "detail": detail }] });
    assert_eq!(
        risk["late"],
        one(
            "CLOSE_DATE_PASSED",
            format!("expected to close on {}, 3 days ago", day(-3))
        )
    );
    assert_eq!(
        risk["pushed"],
        one(
            "PUSHED_REPEATEDLY",
            format!("close date moved later 2 times, last on {today}")
        )
    );
    assert_eq!(
        risk["shrunk"],
        one(
            "AMOUNT_DECREASED",
            "amount 800.00, down from 1000.00 when created".into()
        )
    );
    assert_eq!(
        risk["idle"],
        one(
            "STALE",
            format!("no change for 40 days (last on {})", forty.date_naive())
        )
    );
    // Discovery: stays of 60 (still going), 10, 10 and 30 days (the won deal
    // was open there until it closed today), a mean of 27.5; 60 > 1.5 x 27.5.
    assert_eq!(
        risk["stuck"],
        one(
            "STUCK_IN_STAGE",
            "60 days in Discovery, where deals spend 27.5 days on average".into()
        )
    );
    let none = json!({ "score": 0.0, "signals": [] });
    for name in ["moved-1", "moved-2", "won"] {
        assert_eq!(risk[name], none, "{name}");
    }

    // The filter finds exactly the deals showing a signal.
    for (kind, expected) in [
        ("STALE", vec!["idle"]),
        ("CLOSE_DATE_PASSED", vec!["late"]),
        ("PUSHED_REPEATEDLY", vec!["pushed"]),
        ("AMOUNT_DECREASED", vec!["shrunk"]),
        ("STUCK_IN_STAGE", vec!["stuck"]),
        ("NO_RECENT_ACTIVITY", vec![]),
    ] {
        assert_eq!(
            names(&app, json!({ "riskSignals": [kind] })).await,
            expected,
            "{kind}"
        );
    }
    assert_eq!(
        names(
            &app,
            json!({ "riskSignals": ["STALE", "AMOUNT_DECREASED"] })
        )
        .await,
        ["idle", "shrunk"]
    );
    // notUpdatedSince: not changed in the last 30 days.
    let since = (Utc::now() - Duration::days(30)).to_rfc3339();
    assert_eq!(
        names(&app, json!({ "notUpdatedSince": since })).await,
        ["idle"]
    );
    // Counts agree with the list.
    let c = app
        .ok(
            "{ deals(filter: {riskSignals: [CLOSE_DATE_PASSED, PUSHED_REPEATEDLY, STUCK_IN_STAGE]}) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(c["deals"]["totalCount"], 3);
    // A metric narrows to risky deals too: the open pipeline of risky deals.
    let p = app
        .ok(
            "{ pipelineSummary(period: \"2020-01-01..2030-01-01\", filter: {riskSignals: [AMOUNT_DECREASED]}) { openDeals pipelineValue } }",
            json!({}),
        )
        .await;
    assert_eq!(p["pipelineSummary"][0]["openDeals"], 1);
    assert_eq!(p["pipelineSummary"][0]["pipelineValue"], "800.00");
    // The facts behind the signals are kept on the deal rows by every
    // write above: the same as the revisions and stage changes say.
    assert_eq!(app.deals_with_stale_risk_facts().await, 0);
    assert_eq!(app.rollup_drift().await, 0);
}
