//! Forecasts over HTTP: every method on hand-built fixtures whose numbers
//! are worked out in the comments, the as-of reconstruction, submissions,
//! role scope and the backtest.
use api::auth::Role;
use serde_json::{json, Value};

use crate::db_tests;
use crate::helpers::{id_num, TestApp};

db_tests!(
    stage_weighted_by_territory_with_range_and_scope,
    as_of_rebuilds_the_pipeline_and_is_reproducible,
    sales_cycle_by_rep,
    historical_by_territory,
    rep_submitted_calls_and_roles,
    backtest_over_three_months,
);

const FORECAST: &str = "query($p: Period!, $m: ForecastMethod!, $g: Dimension, $a: Date, $h: HistoricalParams, $c: ForecastCategory) {
  forecast(period: $p, method: $m, groupBy: $g, asOf: $a, historical: $h, category: $c) {
    method period asOf amount closedWon projected low high
    rows { key { dimension id label } amount closedWon projected dealCount }
  }
}";

const SUBMIT: &str = "mutation($i: SubmitForecastInput!) { submitForecast(input: $i) { id rep { id } period category amount note submittedAt } }";

const ACCURACY: &str = "query($p: [Period!]!, $m: [ForecastMethod!], $o: Int) {
  forecastAccuracy(periods: $p, methods: $m, asOfOffsetDays: $o) {
    period method asOf forecast actual absolutePercentageError accuracy
  }
}";

/// A deal opened at `opened` in `stage`, expected to close on `expected`.
#[allow(clippy::too_many_arguments)]
async fn deal(
    app: &TestApp,
    amount: &str,
    owner: &str,
    territory: Option<&str>,
    stage: &str,
    opened: &str,
    expected: Option<&str>,
) -> String {
    let stage_id = app.stage(stage).await;
    app.create_deal(json!({
        "name": format!("{stage} {amount} {opened}"),
        "amount": amount,
        "ownerId": owner,
        "territoryId": territory,
        "stageId": stage_id,
        "openedAt": opened,
        "expectedCloseDate": expected,
    }))
    .await
}

/// A deal opened at `opened` and won at `won_at`.
async fn won(
    app: &TestApp,
    amount: &str,
    owner: &str,
    territory: Option<&str>,
    opened: &str,
    won_at: &str,
) {
    let d = deal(app, amount, owner, territory, "Discovery", opened, None).await;
    app.move_deal(&d, "Won", won_at).await;
}

fn vars(period: &str, method: &str, group: Option<&str>, as_of: Option<&str>) -> Value {
    json!({ "p": period, "m": method, "g": group, "a": as_of })
}

async fn forecast_as(app: &TestApp, token: &str, v: Value) -> Value {
    app.ok_as(token, FORECAST, v).await["forecast"].clone()
}

async fn forecast(app: &TestApp, v: Value) -> Value {
    forecast_as(app, &app.admin_token(), v).await
}

/// (label, amount, closedWon, projected, dealCount) of every row.
fn rows(f: &Value) -> Vec<(String, String, String, String, i64)> {
    f["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["key"]["label"].as_str().unwrap().to_owned(),
                r["amount"].as_str().unwrap().to_owned(),
                r["closedWon"].as_str().unwrap().to_owned(),
                r["projected"].as_str().unwrap().to_owned(),
                r["dealCount"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn row(
    label: &str,
    amount: &str,
    won: &str,
    projected: &str,
    n: i64,
) -> (String, String, String, String, i64) {
    (label.into(), amount.into(), won.into(), projected.into(), n)
}

fn totals(f: &Value) -> (&str, &str, &str) {
    (
        f["amount"].as_str().unwrap(),
        f["closedWon"].as_str().unwrap(),
        f["projected"].as_str().unwrap(),
    )
}

async fn stage_weighted_by_territory_with_range_and_scope(app: TestApp) {
    let east = app.create_territory("East", None, None).await;
    let west = app.create_territory("West", None, None).await;
    let mgr = app
        .create_rep("Mia Manager", None, Some(&east), json!({}))
        .await;
    let ann = app
        .create_rep("Ann", Some(&mgr), Some(&east), json!({}))
        .await;
    let bob = app.create_rep("Bob", None, Some(&west), json!({})).await;
    // July 2026:
    // - 1,000 in Trial (0.60), East/Ann, expected 07-15: 600.
    // - 2,000 in Demo (0.40), West/Bob, expected 07-20: 800.
    // - 500 East/Ann won 07-10: closed-won.
    // - 3,000 in Trial, West/Bob, expected 08-20: another period.
    // - 700 East/Ann lost 07-12: nothing.
    deal(
        &app,
        "1000",
        &ann,
        Some(&east),
        "Trial",
        "2026-05-01T09:00:00Z",
        Some("2026-07-15"),
    )
    .await;
    deal(
        &app,
        "2000",
        &bob,
        Some(&west),
        "Demo",
        "2026-05-01T09:00:00Z",
        Some("2026-07-20"),
    )
    .await;
    won(
        &app,
        "500",
        &ann,
        Some(&east),
        "2026-05-01T09:00:00Z",
        "2026-07-10T12:00:00Z",
    )
    .await;
    deal(
        &app,
        "3000",
        &bob,
        Some(&west),
        "Trial",
        "2026-05-01T09:00:00Z",
        Some("2026-08-20"),
    )
    .await;
    let lost = deal(
        &app,
        "700",
        &ann,
        Some(&east),
        "Demo",
        "2026-05-01T09:00:00Z",
        Some("2026-07-12"),
    )
    .await;
    app.move_deal(&lost, "Lost", "2026-07-12T12:00:00Z").await;

    let before = app.statements().await;
    let f = forecast(
        &app,
        vars("2026-07", "STAGE_WEIGHTED", Some("TERRITORY"), None),
    )
    .await;
    let used = app.statements().await - before;
    assert!(used <= 8, "{used} statements");
    assert_eq!(f["method"], "STAGE_WEIGHTED");
    assert_eq!(f["period"], "2026-07");
    // East: 500 won + 600 = 1,100 (2 deals); West: 800 (1 deal).
    assert_eq!(
        rows(&f),
        vec![
            row("East", "1100.00", "500.00", "600.00", 2),
            row("West", "800.00", "0.00", "800.00", 1),
        ]
    );
    assert_eq!(totals(&f), ("1900.00", "500.00", "1400.00"));
    assert_eq!(f["rows"][0]["key"]["id"], east.as_str());
    // P10/P90 exactly: closed-won 500 plus 1,000 @ 0.6 and 2,000 @ 0.4.
    // Sums: 0 (0.4 x 0.6 = 0.24), 1,000 (0.6 x 0.6 = 0.36, cum 0.60),
    // 2,000 (0.4 x 0.4 = 0.16, cum 0.76), 3,000 (0.6 x 0.4 = 0.24, cum 1).
    // P10 = 0 -> 500; P90 = 3,000 -> 3,500.
    assert_eq!(f["low"], "500.00");
    assert_eq!(f["high"], "3500.00");

    // The default (today, current state) and an explicit today (rebuilt
    // from history) agree.
    let today = chrono::Utc::now().date_naive().to_string();
    let g = forecast(
        &app,
        vars("2026-07", "STAGE_WEIGHTED", Some("TERRITORY"), Some(&today)),
    )
    .await;
    assert_eq!(g["asOf"], today.as_str());
    assert_eq!(f["rows"], g["rows"]);
    assert_eq!(
        (f["amount"].clone(), f["low"].clone(), f["high"].clone()),
        (g["amount"].clone(), g["low"].clone(), g["high"].clone())
    );

    // Every method agrees between the two paths.
    for method in ["SALES_CYCLE", "HISTORICAL", "REP_SUBMITTED"] {
        let fast = forecast(&app, vars("2026-07", method, Some("REP"), None)).await;
        let slow = forecast(&app, vars("2026-07", method, Some("REP"), Some(&today))).await;
        assert_eq!(fast["rows"], slow["rows"], "{method}");
        assert_eq!(totals(&fast), totals(&slow), "{method}");
    }

    // Every dimension groups the same 1,900 on both paths (segment, source
    // and playbook are unset here: one "No ..." row each).
    for dim in ["REP", "SEGMENT", "MANAGER", "SOURCE", "PLAYBOOK"] {
        for as_of in [None, Some(today.as_str())] {
            let f = forecast(&app, vars("2026-07", "STAGE_WEIGHTED", Some(dim), as_of)).await;
            let sum: f64 = f["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["amount"].as_str().unwrap().parse::<f64>().unwrap())
                .sum();
            assert_eq!(
                (sum, f["amount"].as_str()),
                (1900.0, Some("1900.00")),
                "{dim}"
            );
            assert!(f["rows"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["key"]["dimension"] == dim));
        }
    }
    let f = forecast(
        &app,
        vars("2026-07", "STAGE_WEIGHTED", Some("MANAGER"), None),
    )
    .await;
    // Ann's 1,100 under Mia, Bob's 800 unmanaged.
    assert_eq!(
        rows(&f),
        vec![
            row("Mia Manager", "1100.00", "500.00", "600.00", 2),
            row("No manager", "800.00", "0.00", "800.00", 1),
        ]
    );

    // NONE is one row "All".
    let f = forecast(&app, vars("2026-07", "STAGE_WEIGHTED", None, None)).await;
    assert_eq!(
        rows(&f),
        vec![row("All", "1900.00", "500.00", "1400.00", 3)]
    );

    // A REP sees its own deals: Ann 1,100. Her manager sees the team (Ann):
    // 1,100. Bob: 800.
    let rep = app.token(Role::Rep, Some(id_num(&ann)));
    let f = forecast_as(&app, &rep, vars("2026-07", "STAGE_WEIGHTED", None, None)).await;
    assert_eq!(totals(&f), ("1100.00", "500.00", "600.00"));
    let manager = app.token(Role::Manager, Some(id_num(&mgr)));
    let f = forecast_as(
        &app,
        &manager,
        vars("2026-07", "STAGE_WEIGHTED", Some("REP"), None),
    )
    .await;
    assert_eq!(rows(&f), vec![row("Ann", "1100.00", "500.00", "600.00", 2)]);
    let rep = app.token(Role::Rep, Some(id_num(&bob)));
    let f = forecast_as(&app, &rep, vars("2026-07", "STAGE_WEIGHTED", None, None)).await;
    assert_eq!(totals(&f), ("800.00", "0.00", "800.00"));
    let viewer = app.token(Role::Viewer, None);
    let f = forecast_as(&app, &viewer, vars("2026-07", "STAGE_WEIGHTED", None, None)).await;
    assert_eq!(totals(&f), ("1900.00", "500.00", "1400.00"));

    // INTEGRATION does not read forecasts; a future asOf is bad input, and
    // so are arguments of another method.
    let integration = app.token(Role::Integration, None);
    assert_eq!(
        app.error_code(
            &integration,
            FORECAST,
            vars("2026-07", "STAGE_WEIGHTED", None, None)
        )
        .await,
        "FORBIDDEN"
    );
    let admin = app.admin_token();
    assert_eq!(
        app.error_code(
            &admin,
            FORECAST,
            vars("2026-07", "STAGE_WEIGHTED", None, Some("2999-01-01"))
        )
        .await,
        "BAD_USER_INPUT"
    );
    let mut v = vars("2026-07", "STAGE_WEIGHTED", None, None);
    v["c"] = json!("COMMIT");
    assert_eq!(app.error_code(&admin, FORECAST, v).await, "BAD_USER_INPUT");
}

async fn as_of_rebuilds_the_pipeline_and_is_reproducible(app: TestApp) {
    let ann = app.create_rep("Ann", None, None, json!({})).await;
    // A: 1,000 opened 05-01 in Discovery, Trial 06-10, Final Call 07-05,
    //    won 07-20 (expected 07-15).
    let a = deal(
        &app,
        "1000",
        &ann,
        None,
        "Discovery",
        "2026-05-01T09:00:00Z",
        Some("2026-07-15"),
    )
    .await;
    app.move_deal(&a, "Trial", "2026-06-10T09:00:00Z").await;
    app.move_deal(&a, "Final Call", "2026-07-05T09:00:00Z")
        .await;
    app.move_deal(&a, "Won", "2026-07-20T09:00:00Z").await;
    // B: 2,000 in Demo opened 07-02 (after June 30), expected 07-25.
    deal(
        &app,
        "2000",
        &ann,
        None,
        "Demo",
        "2026-07-02T09:00:00Z",
        Some("2026-07-25"),
    )
    .await;
    // C: 400 in Discovery opened 04-01, expected 07-10, lost 07-03.
    let c = deal(
        &app,
        "400",
        &ann,
        None,
        "Discovery",
        "2026-04-01T09:00:00Z",
        Some("2026-07-10"),
    )
    .await;
    app.move_deal(&c, "Lost", "2026-07-03T09:00:00Z").await;
    // G: 500 in Demo opened 05-01, expected 07-20 (moved to Won today below).
    let g = deal(
        &app,
        "500",
        &ann,
        None,
        "Demo",
        "2026-05-01T09:00:00Z",
        Some("2026-07-20"),
    )
    .await;

    // As of June 30: A in Trial 600, C in Discovery 40, G in Demo 200; B not
    // opened yet. 840, nothing won, 3 deals.
    let june = vars("2026-07", "STAGE_WEIGHTED", None, Some("2026-06-30"));
    let f1 = forecast(&app, june.clone()).await;
    assert_eq!(f1["asOf"], "2026-06-30");
    assert_eq!(totals(&f1), ("840.00", "0.00", "840.00"));
    assert_eq!(rows(&f1), vec![row("All", "840.00", "0.00", "840.00", 3)]);
    // As of July 31: A won (1,000); B Demo 800; G Demo 200; C lost.
    let july = vars("2026-07", "STAGE_WEIGHTED", None, Some("2026-07-31"));
    let f2 = forecast(&app, july.clone()).await;
    assert_eq!(totals(&f2), ("2000.00", "1000.00", "1000.00"));
    assert_eq!(f2["rows"][0]["dealCount"], 3);
    // As of July 4 (A still in Trial, B opened, C lost on July 3):
    // 600 + 800 + 200 = 1,600.
    let f = forecast(
        &app,
        vars("2026-07", "STAGE_WEIGHTED", None, Some("2026-07-04")),
    )
    .await;
    assert_eq!(totals(&f), ("1600.00", "0.00", "1600.00"));
    // As of July 20, the day A was won: its close counts.
    let f = forecast(
        &app,
        vars("2026-07", "STAGE_WEIGHTED", None, Some("2026-07-20")),
    )
    .await;
    assert_eq!(totals(&f), ("2000.00", "1000.00", "1000.00"));

    // Move G today: the past answers do not change; today's does (G's close
    // is today, outside July): 1,000 won + 800.
    app.move_deal(&g, "Won", &chrono::Utc::now().to_rfc3339())
        .await;
    assert_eq!(forecast(&app, june).await, f1);
    assert_eq!(forecast(&app, july).await, f2);
    let now = forecast(&app, vars("2026-07", "STAGE_WEIGHTED", None, None)).await;
    assert_eq!(totals(&now), ("1800.00", "1000.00", "800.00"));
    let today = chrono::Utc::now().date_naive().to_string();
    let again = forecast(&app, vars("2026-07", "STAGE_WEIGHTED", None, Some(&today))).await;
    assert_eq!(totals(&again), totals(&now));
}

async fn sales_cycle_by_rep(app: TestApp) {
    let ann = app.create_rep("Ann", None, None, json!({})).await;
    let bob = app.create_rep("Bob", None, None, json!({})).await;
    // Won in the 365 days ending 2026-07-01: 01-01 -> 05-01 (120 days),
    // 02-01 -> 06-01 (120), 03-03 -> 07-01 (120): C = 360 / 3 = 120.
    won(
        &app,
        "9000",
        &bob,
        None,
        "2026-01-01T08:00:00Z",
        "2026-05-01T08:00:00Z",
    )
    .await;
    won(
        &app,
        "9000",
        &bob,
        None,
        "2026-02-01T08:00:00Z",
        "2026-06-01T08:00:00Z",
    )
    .await;
    // The third is won in July, on the as-of day: Ann's closed-won 300.
    won(
        &app,
        "300",
        &ann,
        None,
        "2026-03-03T08:00:00Z",
        "2026-07-01T10:00:00Z",
    )
    .await;
    // Open, expected in July, as of 07-01:
    // - Ann 1,000 opened 06-01: 30 days, 25% -> 250.
    // - Bob 2,000 opened 05-02: 60 days, 50% -> 1,000.
    // - Bob 400 opened 01-15: 167 days, 100% -> 400.
    // - Ann 900 opened 07-05: after the as-of day, ignored.
    deal(
        &app,
        "1000",
        &ann,
        None,
        "Demo",
        "2026-06-01T23:00:00Z",
        Some("2026-07-20"),
    )
    .await;
    deal(
        &app,
        "2000",
        &bob,
        None,
        "Trial",
        "2026-05-02T00:30:00Z",
        Some("2026-07-20"),
    )
    .await;
    deal(
        &app,
        "400",
        &bob,
        None,
        "Discovery",
        "2026-01-15T12:00:00Z",
        Some("2026-07-20"),
    )
    .await;
    deal(
        &app,
        "900",
        &ann,
        None,
        "Demo",
        "2026-07-05T12:00:00Z",
        Some("2026-07-20"),
    )
    .await;
    let f = forecast(
        &app,
        vars("2026-07", "SALES_CYCLE", Some("REP"), Some("2026-07-01")),
    )
    .await;
    assert_eq!(f["method"], "SALES_CYCLE");
    // Ann: 300 + 250 = 550 (2 deals); Bob: 1,000 + 400 = 1,400 (2 deals).
    assert_eq!(
        rows(&f),
        vec![
            row("Ann", "550.00", "300.00", "250.00", 2),
            row("Bob", "1400.00", "0.00", "1400.00", 2),
        ]
    );
    assert_eq!(totals(&f), ("1950.00", "300.00", "1650.00"));
    assert!(f["low"].is_null() && f["high"].is_null());
    // Nothing was won in the year ending 2026-01-31: C is undefined and
    // SALES_CYCLE projects nothing, though Bob's 800 deal (Discovery,
    // expected 01-25) is open then: STAGE_WEIGHTED counts it 80.
    deal(
        &app,
        "800",
        &bob,
        None,
        "Discovery",
        "2026-01-02T12:00:00Z",
        Some("2026-01-25"),
    )
    .await;
    let f = forecast(
        &app,
        vars("2026-01", "SALES_CYCLE", None, Some("2026-01-31")),
    )
    .await;
    assert_eq!(rows(&f), vec![row("All", "0.00", "0.00", "0.00", 1)]);
    let f = forecast(
        &app,
        vars("2026-01", "STAGE_WEIGHTED", None, Some("2026-01-31")),
    )
    .await;
    assert_eq!(totals(&f), ("80.00", "0.00", "80.00"));
}

async fn historical_by_territory(app: TestApp) {
    let east = app.create_territory("East", None, None).await;
    let west = app.create_territory("West", None, None).await;
    let ann = app.create_rep("Ann", None, Some(&east), json!({})).await;
    let bob = app.create_rep("Bob", None, Some(&west), json!({})).await;
    // Lookback of July (April-June): East 3,000 (04-10) + 3,000 (05-10),
    // West 3,000 (06-10): 9,000 in 3 deals, R = 3,000. East won 5,000 in
    // March: outside the lookback. West won 2,000 on 07-05: July closed-won.
    won(
        &app,
        "3000",
        &ann,
        Some(&east),
        "2026-03-01T08:00:00Z",
        "2026-04-10T08:00:00Z",
    )
    .await;
    won(
        &app,
        "3000",
        &ann,
        Some(&east),
        "2026-03-01T08:00:00Z",
        "2026-05-10T08:00:00Z",
    )
    .await;
    won(
        &app,
        "3000",
        &bob,
        Some(&west),
        "2026-03-01T08:00:00Z",
        "2026-06-10T08:00:00Z",
    )
    .await;
    won(
        &app,
        "5000",
        &ann,
        Some(&east),
        "2026-01-01T08:00:00Z",
        "2026-03-10T08:00:00Z",
    )
    .await;
    won(
        &app,
        "2000",
        &bob,
        Some(&west),
        "2026-03-01T08:00:00Z",
        "2026-07-05T08:00:00Z",
    )
    .await;
    let mut v = vars(
        "2026-07",
        "HISTORICAL",
        Some("TERRITORY"),
        Some("2026-07-31"),
    );
    v["h"] = json!({ "growthRate": 0.05, "newReps": 2, "dealsPerNewRep": 1 });
    let f = forecast(&app, v.clone()).await;
    // Total: 3,000 x 1 x 1.05 = 3,150 + 2 x 1 x 3,000 (the lookback's
    // average deal) = 9,150; 2,000 already won, projected 7,150.
    assert_eq!(totals(&f), ("9150.00", "2000.00", "7150.00"));
    assert!(f["low"].is_null() && f["high"].is_null());
    // East: R 2,000 x 1.05 = 2,100 + ramp 6,000 x 2/3 = 4,000 -> 6,100.
    // West: R 1,000 x 1.05 = 1,050 + ramp 6,000 x 1/3 = 2,000 -> 3,050,
    // closed-won 2,000 (1 deal), projected 1,050.
    assert_eq!(
        rows(&f),
        vec![
            row("East", "6100.00", "0.00", "6100.00", 0),
            row("West", "3050.00", "2000.00", "1050.00", 1),
        ]
    );
    // A quarter: 3,000 x 3 x 1.05 = 9,450 + 6,000 = 15,450 (same lookback).
    v["p"] = json!("2026-Q3");
    v["g"] = json!("NONE");
    let f = forecast(&app, v.clone()).await;
    assert_eq!(totals(&f), ("15450.00", "2000.00", "13450.00"));
    // Explicit deal size, no growth, lookback 1 (June: West 3,000):
    // 3,000 + 2 x 1 x 500 = 4,000 for July.
    v["p"] = json!("2026-07");
    v["h"] =
        json!({ "lookbackMonths": 1, "newReps": 2, "dealsPerNewRep": 1, "newRepDealSize": "500" });
    let f = forecast(&app, v.clone()).await;
    assert_eq!(totals(&f), ("4000.00", "2000.00", "2000.00"));
    // By territory with a one-month lookback (June: West 3,000): West
    // R = 3,000 -> 3,000 (2,000 won, 1 deal); East won nothing in June or
    // July, so it has no row.
    v["g"] = json!("TERRITORY");
    v["h"] = json!({ "lookbackMonths": 1 });
    let f = forecast(&app, v.clone()).await;
    assert_eq!(
        rows(&f),
        vec![row("West", "3000.00", "2000.00", "1000.00", 1)]
    );
    // February: nothing in the lookback (Nov-Jan) nor in the month: 0.
    let f = forecast(
        &app,
        json!({ "p": "2026-02", "m": "HISTORICAL", "a": "2026-07-31" }),
    )
    .await;
    assert_eq!(totals(&f), ("0.00", "0.00", "0.00"));
    // April: lookback January-March = East's 5,000 in March -> R 1,666.67,
    // but 3,000 is already won in April: floored at 3,000.
    let f = forecast(
        &app,
        json!({ "p": "2026-04", "m": "HISTORICAL", "a": "2026-07-31" }),
    )
    .await;
    assert_eq!(totals(&f), ("3000.00", "3000.00", "0.00"));

    // Periods that are not whole months are bad input.
    let admin = app.admin_token();
    for p in ["2026-W27", "2026-07-01..2026-07-15"] {
        let code = app
            .error_code(&admin, FORECAST, json!({ "p": p, "m": "HISTORICAL" }))
            .await;
        assert_eq!(code, "BAD_USER_INPUT", "{p}");
    }
    let code = app
        .error_code(
            &admin,
            FORECAST,
            json!({ "p": "2026-07", "m": "HISTORICAL", "h": { "lookbackMonths": 0 } }),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    for h in [
        json!({ "growthRate": -1.5 }),
        json!({ "newReps": -1 }),
        json!({ "dealsPerNewRep": -0.5 }),
        json!({ "newRepDealSize": "-1" }),
    ] {
        let code = app
            .error_code(
                &admin,
                FORECAST,
                json!({ "p": "2026-07", "m": "HISTORICAL", "h": h }),
            )
            .await;
        assert_eq!(code, "BAD_USER_INPUT", "{h}");
    }
    // HISTORICAL parameters belong to HISTORICAL.
    let code = app
        .error_code(
            &admin,
            FORECAST,
            json!({ "p": "2026-07", "m": "STAGE_WEIGHTED", "h": { "newReps": 1 } }),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
}

async fn submit(app: &TestApp, token: &str, input: Value) -> Value {
    app.ok_as(token, SUBMIT, json!({ "i": input })).await["submitForecast"].clone()
}

async fn rep_submitted_calls_and_roles(app: TestApp) {
    let mgr = app.create_rep("Mia Manager", None, None, json!({})).await;
    let ann = app.create_rep("Ann", Some(&mgr), None, json!({})).await;
    let bob = app.create_rep("Bob", Some(&mgr), None, json!({})).await;
    let cy = app.create_rep("Cy", None, None, json!({})).await;
    let admin = app.admin_token();
    // July COMMIT calls (backfilled by ADMIN):
    //   Ann 1,000 (06-20), 1,500 (07-10), 1,200 (07-20); Bob 2,000 (06-25);
    //   Cy 700 (07-01). Ann BEST_CASE 5,000 (07-01); Ann Q3 COMMIT 9,999.
    for (rep, amount, at, cat, period) in [
        (&ann, "1000", "2026-06-20T10:00:00Z", "COMMIT", "2026-07"),
        (&ann, "1500", "2026-07-10T10:00:00Z", "COMMIT", "2026-07"),
        (&ann, "1200", "2026-07-20T10:00:00Z", "COMMIT", "2026-07"),
        (&bob, "2000", "2026-06-25T10:00:00Z", "COMMIT", "2026-07"),
        (&cy, "700", "2026-07-01T10:00:00Z", "COMMIT", "2026-07"),
        (&ann, "5000", "2026-07-01T10:00:00Z", "BEST_CASE", "2026-07"),
        (&ann, "9999", "2026-07-01T10:00:00Z", "COMMIT", "2026-Q3"),
    ] {
        let s = submit(&app, &admin, json!({ "repId": rep, "period": period, "category": cat, "amount": amount, "submittedAt": at })).await;
        assert_eq!(s["amount"], format!("{amount}.00"));
        assert_eq!(s["rep"]["id"], rep.as_str());
    }
    // Closed-won in July: Ann 400 (07-05), Cy 100 (07-08).
    won(
        &app,
        "400",
        &ann,
        None,
        "2026-06-01T08:00:00Z",
        "2026-07-05T08:00:00Z",
    )
    .await;
    won(
        &app,
        "100",
        &cy,
        None,
        "2026-06-01T08:00:00Z",
        "2026-07-08T08:00:00Z",
    )
    .await;

    // As of 07-15: Ann 1,500 (07-20 not yet), Bob 2,000, Cy 700 = 4,200;
    // closed-won 500, projected 3,700.
    let f = forecast(
        &app,
        vars("2026-07", "REP_SUBMITTED", Some("REP"), Some("2026-07-15")),
    )
    .await;
    assert_eq!(totals(&f), ("4200.00", "500.00", "3700.00"));
    assert_eq!(
        rows(&f),
        vec![
            row("Ann", "1500.00", "400.00", "1100.00", 1),
            row("Bob", "2000.00", "0.00", "2000.00", 0),
            row("Cy", "700.00", "100.00", "600.00", 1),
        ]
    );
    assert!(f["low"].is_null());
    // As of 07-31 Ann's 1,200 counts: 3,900.
    let f = forecast(
        &app,
        vars("2026-07", "REP_SUBMITTED", None, Some("2026-07-31")),
    )
    .await;
    assert_eq!(totals(&f), ("3900.00", "500.00", "3400.00"));
    // As of 06-30: Ann 1,000 + Bob 2,000; nothing won yet.
    let f = forecast(
        &app,
        vars("2026-07", "REP_SUBMITTED", None, Some("2026-06-30")),
    )
    .await;
    assert_eq!(totals(&f), ("3000.00", "0.00", "3000.00"));
    // BEST_CASE: Ann 5,000 only; Cy has no call (0) but won 100.
    let mut v = vars("2026-07", "REP_SUBMITTED", Some("REP"), Some("2026-07-31"));
    v["c"] = json!("BEST_CASE");
    let f = forecast(&app, v).await;
    assert_eq!(totals(&f), ("5000.00", "500.00", "4500.00"));
    assert_eq!(
        rows(&f),
        vec![
            row("Ann", "5000.00", "400.00", "4600.00", 1),
            row("Cy", "0.00", "100.00", "-100.00", 1),
        ]
    );
    // By manager: Mia's team 3,500 (Ann 1,500 + Bob 2,000), Cy unmanaged.
    let f = forecast(
        &app,
        vars(
            "2026-07",
            "REP_SUBMITTED",
            Some("MANAGER"),
            Some("2026-07-15"),
        ),
    )
    .await;
    assert_eq!(
        rows(&f),
        vec![
            row("Mia Manager", "3500.00", "400.00", "3100.00", 1),
            row("No manager", "700.00", "100.00", "600.00", 1),
        ]
    );
    // Backtest of the calls: as of 07-15, 4,200 against the 500 won in July:
    // APE 3,700 / 500 = 7.4, accuracy floored at 0.
    let data = app
        .ok(
            ACCURACY,
            json!({ "p": ["2026-07"], "m": ["REP_SUBMITTED"], "o": 14 }),
        )
        .await;
    let r = &data["forecastAccuracy"][0];
    assert_eq!(
        (r["forecast"].as_str(), r["actual"].as_str()),
        (Some("4200.00"), Some("500.00"))
    );
    assert!((r["absolutePercentageError"].as_f64().unwrap() - 7.4).abs() < 1e-9);
    assert_eq!(r["accuracy"].as_f64(), Some(0.0));
    // Territories do not submit.
    let code = app
        .error_code(
            &admin,
            FORECAST,
            vars("2026-07", "REP_SUBMITTED", Some("TERRITORY"), None),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");

    // Scope: the manager sees its team, a rep itself.
    let manager = app.token(Role::Manager, Some(id_num(&mgr)));
    let f = forecast_as(
        &app,
        &manager,
        vars("2026-07", "REP_SUBMITTED", None, Some("2026-07-15")),
    )
    .await;
    assert_eq!(totals(&f), ("3500.00", "400.00", "3100.00"));
    let rep = app.token(Role::Rep, Some(id_num(&ann)));
    let f = forecast_as(
        &app,
        &rep,
        vars("2026-07", "REP_SUBMITTED", None, Some("2026-07-15")),
    )
    .await;
    assert_eq!(totals(&f), ("1500.00", "400.00", "1100.00"));

    // Writes: a rep submits its own call (default rep, now), with an audit
    // entry; not another rep's, not a backfill; the manager its team's only.
    let audits = app.count_rows("audit_entry").await;
    let s = submit(
        &app,
        &rep,
        json!({ "period": "2026-07", "category": "COMMIT", "amount": "1300", "note": "upside" }),
    )
    .await;
    assert_eq!(
        (s["rep"]["id"].as_str(), s["note"].as_str()),
        (Some(ann.as_str()), Some("upside"))
    );
    assert_eq!(app.count_rows("audit_entry").await, audits + 1);
    let bad = |input: Value| json!({ "i": input });
    let for_bob = json!({ "repId": bob, "period": "2026-07", "category": "COMMIT", "amount": "1" });
    assert_eq!(
        app.error_code(&rep, SUBMIT, bad(for_bob.clone())).await,
        "FORBIDDEN"
    );
    let backfill = json!({ "period": "2026-07", "category": "COMMIT", "amount": "1", "submittedAt": "2026-07-01T00:00:00Z" });
    assert_eq!(
        app.error_code(&rep, SUBMIT, bad(backfill.clone())).await,
        "FORBIDDEN"
    );
    assert_eq!(
        app.error_code(
            &manager,
            SUBMIT,
            bad(json!({ "repId": cy, "period": "2026-07", "category": "COMMIT", "amount": "1" }))
        )
        .await,
        "FORBIDDEN"
    );
    submit(&app, &manager, for_bob.clone()).await;
    let viewer = app.token(Role::Viewer, None);
    assert_eq!(
        app.error_code(&viewer, SUBMIT, bad(for_bob.clone())).await,
        "FORBIDDEN"
    );
    assert_eq!(
        app.error_code(
            &rep,
            SUBMIT,
            bad(json!({ "period": "2026-07", "category": "COMMIT", "amount": "-1" }))
        )
        .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        app.error_code(
            &admin,
            SUBMIT,
            bad(json!({ "period": "2026-07", "category": "COMMIT", "amount": "1" }))
        )
        .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(app.error_code(&admin, SUBMIT, bad(json!({ "repId": "999999", "period": "2026-07", "category": "COMMIT", "amount": "1" }))).await, "BAD_USER_INPUT");
    assert_eq!(app.error_code(&admin, SUBMIT, bad(json!({ "repId": ann, "period": "2026-07", "category": "COMMIT", "amount": "1", "submittedAt": "2999-01-01T00:00:00Z" }))).await, "BAD_USER_INPUT");
    let integration = app.token(Role::Integration, None);
    let s = submit(
        &app,
        &integration,
        backfill
            .as_object()
            .cloned()
            .map(|mut o| {
                o.insert("repId".into(), json!(cy));
                Value::Object(o)
            })
            .unwrap(),
    )
    .await;
    assert!(
        s["submittedAt"]
            .as_str()
            .unwrap()
            .starts_with("2026-07-01T00:00:00"),
        "{s}"
    );
    // Earlier calls are kept: Ann has 3 July COMMIT + 1 BEST_CASE + 1 new.
    let list = "query($p: Period!, $r: ID) { forecastSubmissions(period: $p, repId: $r) { amount category rep { name } submittedAt } }";
    let mine = app.ok_as(&rep, list, json!({ "p": "2026-07" })).await;
    let amounts: Vec<&str> = mine["forecastSubmissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["amount"].as_str().unwrap())
        .collect();
    assert_eq!(
        amounts,
        ["1300.00", "1200.00", "1500.00", "5000.00", "1000.00"]
    );
    let bobs = app.ok(list, json!({ "p": "2026-07", "r": bob })).await;
    assert_eq!(bobs["forecastSubmissions"].as_array().unwrap().len(), 2);
    let team = app.ok_as(&manager, list, json!({ "p": "2026-07" })).await;
    assert_eq!(team["forecastSubmissions"].as_array().unwrap().len(), 7);
    assert_eq!(
        app.error_code(&integration, list, json!({ "p": "2026-07" }))
            .await,
        "FORBIDDEN"
    );
    // The quarter's call is its own period.
    let q3 = app.ok(list, json!({ "p": "2026-Q3" })).await;
    assert_eq!(q3["forecastSubmissions"][0]["amount"], "9999.00");
}

async fn backtest_over_three_months(app: TestApp) {
    let ann = app.create_rep("Ann", None, None, json!({})).await;
    // P5: 500 won 2026-01-15 (HISTORICAL lookback of April).
    won(
        &app,
        "500",
        &ann,
        None,
        "2025-12-01T08:00:00Z",
        "2026-01-15T08:00:00Z",
    )
    .await;
    // P1: 1,000 opened 03-01 expected 04-20, Trial from 03-15, won 04-18.
    let p1 = deal(
        &app,
        "1000",
        &ann,
        None,
        "Discovery",
        "2026-03-01T08:00:00Z",
        Some("2026-04-20"),
    )
    .await;
    app.move_deal(&p1, "Trial", "2026-03-15T08:00:00Z").await;
    app.move_deal(&p1, "Won", "2026-04-18T08:00:00Z").await;
    // P2: 2,000 in Demo opened 03-10 expected 05-15, won 05-12.
    let p2 = deal(
        &app,
        "2000",
        &ann,
        None,
        "Demo",
        "2026-03-10T08:00:00Z",
        Some("2026-05-15"),
    )
    .await;
    app.move_deal(&p2, "Won", "2026-05-12T08:00:00Z").await;
    // P3: 500 in Final Call opened 04-05 expected 06-10, lost 06-05.
    let p3 = deal(
        &app,
        "500",
        &ann,
        None,
        "Final Call",
        "2026-04-05T08:00:00Z",
        Some("2026-06-10"),
    )
    .await;
    app.move_deal(&p3, "Lost", "2026-06-05T08:00:00Z").await;
    // P4: 3,000 in Qualified opened 05-20 expected 06-25, won 06-20.
    let p4 = deal(
        &app,
        "3000",
        &ann,
        None,
        "Qualified",
        "2026-05-20T08:00:00Z",
        Some("2026-06-25"),
    )
    .await;
    app.move_deal(&p4, "Won", "2026-06-20T08:00:00Z").await;

    let periods = json!(["2026-04", "2026-05", "2026-06"]);
    let before = app.statements().await;
    let data = app
        .ok(
            ACCURACY,
            json!({ "p": periods, "m": ["STAGE_WEIGHTED", "HISTORICAL"] }),
        )
        .await;
    let used = app.statements().await - before;
    assert!(used <= 8, "{used} statements");
    let got: Vec<(String, String, String, String, String)> = data["forecastAccuracy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["period"].as_str().unwrap().to_owned(),
                r["method"].as_str().unwrap().to_owned(),
                r["asOf"].as_str().unwrap().to_owned(),
                r["forecast"].as_str().unwrap().to_owned(),
                r["actual"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let t = |p: &str, m: &str, a: &str, f: &str, x: &str| {
        (
            p.to_owned(),
            m.to_owned(),
            a.to_owned(),
            f.to_owned(),
            x.to_owned(),
        )
    };
    // STAGE_WEIGHTED as of each month's first day:
    //   April: P1 in Trial 600 (P2 is expected in May) vs 1,000 won.
    //   May: P2 in Demo 800 (P1 won in April) vs 2,000.
    //   June: P3 Final Call 400 + P4 Qualified 600 = 1,000 vs 3,000.
    // HISTORICAL (3 months lookback, as of the first day):
    //   April: Jan-Mar 500 / 3 = 166.67; May: Feb-Apr 1,000 / 3 = 333.33;
    //   June: Mar-May 3,000 / 3 = 1,000.
    assert_eq!(
        got,
        vec![
            t(
                "2026-04",
                "STAGE_WEIGHTED",
                "2026-04-01",
                "600.00",
                "1000.00"
            ),
            t("2026-04", "HISTORICAL", "2026-04-01", "166.67", "1000.00"),
            t(
                "2026-05",
                "STAGE_WEIGHTED",
                "2026-05-01",
                "800.00",
                "2000.00"
            ),
            t("2026-05", "HISTORICAL", "2026-05-01", "333.33", "2000.00"),
            t(
                "2026-06",
                "STAGE_WEIGHTED",
                "2026-06-01",
                "1000.00",
                "3000.00"
            ),
            t("2026-06", "HISTORICAL", "2026-06-01", "1000.00", "3000.00"),
        ]
    );
    // APE = |f - a| / a, accuracy = 1 - APE floored at 0.
    let expected_ape = [
        0.4,
        833.33 / 1000.0,
        0.6,
        1666.67 / 2000.0,
        2.0 / 3.0,
        2.0 / 3.0,
    ];
    for (r, ape) in data["forecastAccuracy"]
        .as_array()
        .unwrap()
        .iter()
        .zip(expected_ape)
    {
        let got = r["absolutePercentageError"].as_f64().unwrap();
        assert!((got - ape).abs() < 1e-9, "{r}");
        assert!(
            (r["accuracy"].as_f64().unwrap() - (1.0 - ape)).abs() < 1e-9,
            "{r}"
        );
    }
    // With an offset of 14 days, June as of 06-15: P3 lost 06-05, P4 still
    // in Qualified: 600.
    let data = app
        .ok(
            ACCURACY,
            json!({ "p": ["2026-06"], "m": ["STAGE_WEIGHTED"], "o": 14 }),
        )
        .await;
    assert_eq!(data["forecastAccuracy"][0]["asOf"], "2026-06-15");
    assert_eq!(data["forecastAccuracy"][0]["forecast"], "600.00");

    // The backtest's forecasts are forecast(asOf) answers, for every
    // default method (SALES_CYCLE included).
    let data = app.ok(ACCURACY, json!({ "p": periods })).await;
    let all = data["forecastAccuracy"].as_array().unwrap();
    assert_eq!(all.len(), 9);
    for r in all {
        let f = forecast(
            &app,
            json!({ "p": r["period"], "m": r["method"], "a": r["asOf"] }),
        )
        .await;
        assert_eq!(f["amount"], r["forecast"], "{r}");
    }
    // A month with nothing won has no error.
    let data = app
        .ok(
            ACCURACY,
            json!({ "p": ["2026-02"], "m": ["STAGE_WEIGHTED"] }),
        )
        .await;
    assert!(data["forecastAccuracy"][0]["absolutePercentageError"].is_null());
    assert!(data["forecastAccuracy"][0]["accuracy"].is_null());

    // Bad input: too many periods, HISTORICAL over a week, a future as-of.
    let admin = app.admin_token();
    let many: Vec<String> = (0..25)
        .map(|i| format!("{}-{:02}", 2023 + i / 12, i % 12 + 1))
        .collect();
    assert_eq!(
        app.error_code(&admin, ACCURACY, json!({ "p": many })).await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        app.error_code(&admin, ACCURACY, json!({ "p": ["2026-W20"] }))
            .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        app.error_code(&admin, ACCURACY, json!({ "p": ["2999-01"] }))
            .await,
        "BAD_USER_INPUT"
    );
    let integration = app.token(Role::Integration, None);
    assert_eq!(
        app.error_code(&integration, ACCURACY, json!({ "p": periods }))
            .await,
        "FORBIDDEN"
    );
}
