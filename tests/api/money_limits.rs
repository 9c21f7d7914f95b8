//! Money at its limits (issue 11, items 4 and 7): amounts are capped at
//! 10^12 in the currency, and every metric, forecast and S&OP sum stays
//! exact on both databases however many deals sit at the cap, including
//! rows written before the cap whose 64-bit sum overflows.
use api::auth::Role;
use serde_json::{json, Value};

use crate::db_tests;
use crate::helpers::{id_num, TestApp};

const MAX: &str = "1000000000000";
/// 100 deals at the cap, in cents: 10^16.
const HUNDRED_MAX: &str = "100000000000000.00";

/// `n` deals of one rep at the largest amount, in one bulk call each 100.
async fn bulk_at_max(app: &TestApp, owner: &str, stage: &str, extra: Value, n: usize, tag: &str) {
    let stage_id = app.stage(stage).await;
    for chunk in 0..n.div_ceil(100) {
        let inputs: Vec<Value> = (0..100.min(n - chunk * 100))
            .map(|i| {
                let mut d = json!({
                    "externalId": format!("{tag}-{chunk}-{i}"),
                    "name": format!("{tag} {chunk} {i}"),
                    "amount": MAX,
                    "ownerId": owner,
                    "stageId": stage_id,
                    "openedAt": "2025-03-01T10:00:00Z",
                    "stageChangedAt": "2025-06-15T10:00:00Z",
                });
                for (k, v) in extra.as_object().unwrap() {
                    d[k] = v.clone();
                }
                d
            })
            .collect();
        let r = app
            .ok(
                "mutation($i: [DealInput!]!) { bulkUpsertDeals(inputs: $i) { created errors { index message } } }",
                json!({ "i": inputs }),
            )
            .await;
        assert_eq!(r["bulkUpsertDeals"]["errors"], json!([]));
        assert_eq!(
            r["bulkUpsertDeals"]["created"],
            json!(100.min(n - chunk * 100))
        );
    }
}

/// Every metric and forecast, one top-level field each: more than one
/// document may ask for (nine heavy fields), so `ask` sends them in parts.
const METRICS: &[&str] = &[
    r#"winRates(period: "2025") { won lost wonAmount lostAmount amountWinRate }"#,
    r#"quotaAttainment(period: "2025") { totalQuota totalClosedWon attainment repsAtQuota rows { openPipeline gapToQuota } }"#,
    r#"pipelineSummary(period: "2025") { openDeals pipelineValue weightedPipeline avgDealSize winRate }"#,
    r#"funnel(period: "2025") { stage { name } entered }"#,
    r#"repPerformance(period: "2025") { current previous currentAttainment }"#,
    r#"commissions(period: "2025") { closedWon quota qualified earned }"#,
    r#"series: metricSeries(metric: CLOSED_WON_AMOUNT, period: "2025", granularity: YEAR) { value }"#,
    r#"avg: metricSeries(metric: AVG_DEAL_SIZE, period: "2025", granularity: YEAR) { value }"#,
    r#"opened: metricSeries(metric: NEW_PIPELINE, period: "2025", granularity: YEAR) { value }"#,
    r#"dataHealth { openDealsPastExpectedClose }"#,
    r#"sw: forecast(period: "2025", method: STAGE_WEIGHTED) { amount closedWon }"#,
    r#"sc: forecast(period: "2025", method: SALES_CYCLE) { closedWon }"#,
    r#"hi: forecast(period: "2025", method: HISTORICAL) { amount closedWon }"#,
    r#"rs: forecast(period: "2025", method: REP_SUBMITTED) { amount closedWon }"#,
    r#"forecastAccuracy(periods: ["2025"], methods: [STAGE_WEIGHTED, SALES_CYCLE, HISTORICAL, REP_SUBMITTED]) { method actual }"#,
];

/// Runs top-level fields in documents of at most eight (the cost limit
/// admits nine heavy fields) and merges their data.
async fn ask(app: &TestApp, token: &str, fields: &[&str]) -> serde_json::Value {
    let mut data = serde_json::Map::new();
    for part in fields.chunks(8) {
        let doc = format!("query {{ {} }}", part.join("\n"));
        let d = app.ok_as(token, &doc, json!({})).await;
        data.extend(d.as_object().unwrap().clone());
    }
    serde_json::Value::Object(data)
}

/// 300 deals at the cap (100 won, 100 lost, 100 open at 0.6), a quota and a
/// forecast call at the cap: every metric and forecast answers, exactly.
async fn every_sum_is_exact_at_the_maximum_amount(app: TestApp) {
    let east = app.create_territory("East", None, None).await;
    let rep = app
        .create_rep("Max Rep", None, Some(&east), json!({}))
        .await;
    app.set_quota(&rep, "2025", MAX).await;
    let won_at = json!({ "closedAt": "2025-06-15T10:00:00Z" });
    bulk_at_max(&app, &rep, "Won", won_at.clone(), 100, "w").await;
    bulk_at_max(&app, &rep, "Lost", won_at, 100, "l").await;
    bulk_at_max(
        &app,
        &rep,
        "Trial",
        json!({ "expectedCloseDate": "2025-09-01" }),
        100,
        "o",
    )
    .await;
    app.ok(
        "mutation($i: SubmitForecastInput!) { submitForecast(input: $i) { id } }",
        json!({ "i": { "amount": MAX, "category": "COMMIT", "period": "2025", "repId": rep,
                       "submittedAt": "2025-01-01T00:00:00Z" } }),
    )
    .await;

    let own_view = app.token(Role::Rep, Some(id_num(&rep)));
    for token in [app.admin_token(), own_view] {
        let d = ask(&app, &token, METRICS).await;
        assert_eq!(
            d["winRates"],
            json!([{ "won": 100, "lost": 100, "wonAmount": HUNDRED_MAX,
                     "lostAmount": HUNDRED_MAX, "amountWinRate": 0.5 }])
        );
        let q = &d["quotaAttainment"];
        assert_eq!(q["totalQuota"], json!("1000000000000.00"));
        assert_eq!(q["totalClosedWon"], json!(HUNDRED_MAX));
        assert_eq!(q["attainment"], json!(100.0));
        assert_eq!(q["repsAtQuota"], json!(1));
        assert_eq!(
            q["rows"],
            json!([{ "openPipeline": HUNDRED_MAX, "gapToQuota": "0.00" }])
        );
        assert_eq!(
            d["pipelineSummary"],
            json!([{ "openDeals": 100, "pipelineValue": HUNDRED_MAX,
                     "weightedPipeline": "60000000000000.00",
                     "avgDealSize": "1000000000000.00", "winRate": 0.5 }])
        );
        let discovery = d["funnel"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["stage"]["name"] == "Discovery")
            .unwrap();
        assert_eq!(discovery["entered"], json!(300));
        assert_eq!(
            d["repPerformance"],
            json!([{ "current": HUNDRED_MAX, "previous": "0.00", "currentAttainment": 100.0 }])
        );
        assert_eq!(
            d["commissions"],
            json!([{ "closedWon": HUNDRED_MAX, "quota": "1000000000000.00",
                     "qualified": true, "earned": "10000000000000.00" }])
        );
        assert_eq!(d["series"], json!([{ "value": 1e14 }]));
        assert_eq!(d["avg"], json!([{ "value": 1e12 }]));
        assert_eq!(d["opened"], json!([{ "value": 3e14 }]));
        assert_eq!(d["dataHealth"]["openDealsPastExpectedClose"], json!(100));
        // Closed-won plus 100 x 10^12 x 0.6.
        assert_eq!(
            d["sw"],
            json!({ "amount": "160000000000000.00", "closedWon": HUNDRED_MAX })
        );
        assert_eq!(d["sc"]["closedWon"], json!(HUNDRED_MAX));
        // Nothing won in the lookback: the run rate is 0, the period's won stands.
        assert_eq!(
            d["hi"],
            json!({ "amount": HUNDRED_MAX, "closedWon": HUNDRED_MAX })
        );
        assert_eq!(
            d["rs"],
            json!({ "amount": "1000000000000.00", "closedWon": HUNDRED_MAX })
        );
        let actual: Vec<&Value> = d["forecastAccuracy"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["actual"])
            .collect();
        assert_eq!(actual, vec![&json!(HUNDRED_MAX); 4]);
    }

    // S&OP gathering sums the same deals: June's actual, and a baseline run
    // rate of April..June (10^14 / 3), for a plan made on 1 July 2025.
    app.set_clock("2025-07-01T00:00:00Z");
    let plan = app
        .ok(
            "mutation($i: CreateSopPlanInput!) { createSopPlan(input: $i) { id \
             actual: lines(kind: ACTUAL) { month amount } baseline: lines(kind: BASELINE) { month amount } } }",
            json!({ "i": { "name": "Max", "horizonStart": "2025-07-01", "horizonMonths": 1,
                           "lookbackMonths": 12, "baselineLookbackMonths": 3 } }),
        )
        .await;
    assert_eq!(
        plan["createSopPlan"]["actual"],
        json!([{ "month": "2025-06-01", "amount": HUNDRED_MAX }])
    );
    assert_eq!(
        plan["createSopPlan"]["baseline"],
        json!([{ "month": "2025-07-01", "amount": "33333333333333.33" }])
    );
}

/// Rows written before the cap (straight into the table, as a legacy import
/// would) whose sum is past 2^63 cents: the old 64-bit sums answered
/// INTERNAL ("bigint out of range" / "integer overflow"); now exact.
async fn sums_past_64_bits_stay_exact(app: TestApp) {
    let rep = app.create_rep("Legacy", None, None, json!({})).await;
    let won_at = json!({ "closedAt": "2025-06-15T10:00:00Z" });
    bulk_at_max(&app, &rep, "Won", won_at, 3, "legacy").await;
    bulk_at_max(
        &app,
        &rep,
        "Trial",
        json!({ "expectedCloseDate": "2025-09-01" }),
        3,
        "open",
    )
    .await;
    // 3 x 4 x 10^18 cents = 1.2 x 10^19 > 2^63 - 1 (9.22 x 10^18).
    sea_orm::ConnectionTrait::execute_unprepared(
        &app.db,
        "UPDATE deal SET amount_cents = 4000000000000000000",
    )
    .await
    .unwrap();
    let big = "120000000000000000.00";
    let d = ask(
        &app,
        &app.admin_token(),
        &[
            r#"winRates(period: "2025") { wonAmount }"#,
            r#"quotaAttainment(period: "2025") { totalClosedWon }"#,
            r#"pipelineSummary(period: "2025") { pipelineValue weightedPipeline avgDealSize }"#,
            r#"repPerformance(period: "2025") { current }"#,
            r#"commissions(period: "2025") { closedWon }"#,
            r#"metricSeries(metric: CLOSED_WON_AMOUNT, period: "2025", granularity: YEAR) { value }"#,
            r#"sw: forecast(period: "2025", method: STAGE_WEIGHTED) { amount closedWon }"#,
            r#"sc: forecast(period: "2025", method: SALES_CYCLE) { closedWon }"#,
            r#"hi: forecast(period: "2025", method: HISTORICAL) { closedWon }"#,
            r#"forecastAccuracy(periods: ["2025"], methods: [STAGE_WEIGHTED]) { actual }"#,
        ],
    )
    .await;
    assert_eq!(d["winRates"], json!([{ "wonAmount": big }]));
    assert_eq!(d["quotaAttainment"]["totalClosedWon"], json!(big));
    assert_eq!(
        d["pipelineSummary"],
        json!([{ "pipelineValue": big, "weightedPipeline": "72000000000000000.00",
                 "avgDealSize": "40000000000000000.00" }])
    );
    assert_eq!(d["repPerformance"], json!([{ "current": big }]));
    assert_eq!(d["commissions"], json!([{ "closedWon": big }]));
    assert_eq!(d["metricSeries"], json!([{ "value": 1.2e17 }]));
    assert_eq!(
        d["sw"],
        json!({ "amount": "192000000000000000.00", "closedWon": big })
    );
    assert_eq!(d["sc"]["closedWon"], json!(big));
    assert_eq!(d["hi"]["closedWon"], json!(big));
    assert_eq!(d["forecastAccuracy"], json!([{ "actual": big }]));
}

/// Amounts past the cap, and Decimal's own maximum (which used to panic
/// converting to cents: HTTP 500), are BAD_USER_INPUT and change nothing; in
/// a bulk call only the bad item fails.
async fn amounts_past_the_cap_are_refused(app: TestApp) {
    let rep = app.create_rep("Cap", None, None, json!({})).await;
    let admin = app.admin_token();
    for amount in ["1000000000000.01", "79228162514264337593543950335"] {
        let deal = json!({ "name": "Too big", "amount": amount, "ownerId": rep });
        assert_eq!(
            app.error_code(
                &admin,
                "mutation($i: DealInput!) { createDeal(input: $i) { id } }",
                json!({ "i": deal })
            )
            .await,
            "BAD_USER_INPUT"
        );
        assert_eq!(
            app.error_code(
                &admin,
                "mutation($r: ID!, $a: Decimal!) { setQuota(repId: $r, period: \"2025\", amount: $a) { id } }",
                json!({ "r": rep, "a": amount })
            )
            .await,
            "BAD_USER_INPUT"
        );
        for bound in ["minAmount", "maxAmount"] {
            let body = app
                .gql(
                    &admin,
                    "query($f: DealFilter) { deals(filter: $f) { totalCount } }",
                    json!({ "f": { bound: amount } }),
                )
                .await;
            assert_eq!(
                body["errors"][0]["extensions"]["code"],
                json!("BAD_USER_INPUT"),
                "{bound}: {body}"
            );
        }
        let r = app
            .ok(
                "mutation($i: [DealInput!]!) { bulkUpsertDeals(inputs: $i) { created errors { index code } } }",
                json!({ "i": [
                    { "externalId": format!("ok-{amount}"), "name": "Fine", "amount": MAX, "ownerId": rep },
                    { "externalId": format!("bad-{amount}"), "name": "Too big", "amount": amount, "ownerId": rep },
                ] }),
            )
            .await;
        assert_eq!(
            r["bulkUpsertDeals"],
            json!({ "created": 1, "errors": [{ "index": 1, "code": "BAD_USER_INPUT" }] })
        );
    }
    // Only the two fine bulk items were written, and no quota.
    assert_eq!(app.count_rows("deal").await, 2);
    assert_eq!(app.count_rows("quota").await, 0);
    // The cap itself is accepted everywhere.
    app.set_quota(&rep, "2025", MAX).await;
    let d = app
        .ok(
            "query($f: DealFilter) { deals(filter: $f) { totalCount } }",
            json!({ "f": { "minAmount": MAX, "maxAmount": MAX } }),
        )
        .await;
    assert_eq!(d["deals"]["totalCount"], json!(2));
}

/// asOfOffsetDays at i32::MIN used to overflow `abs`, and HISTORICAL what-if
/// inputs overflowed Decimal products (panics, HTTP 500).
async fn extreme_forecast_inputs_are_refused(app: TestApp) {
    let q = "query($h: HistoricalParams) { forecast(period: \"2025\", method: HISTORICAL, historical: $h) { amount } }";
    for h in [
        json!({ "growthRate": 1e27 }),
        json!({ "growthRate": 10.5 }),
        json!({ "newReps": i32::MAX, "dealsPerNewRep": 1, "newRepDealSize": "1" }),
        json!({ "newReps": 1, "dealsPerNewRep": 1e27, "newRepDealSize": "1" }),
        json!({ "newReps": 1, "dealsPerNewRep": 1, "newRepDealSize": "79228162514264337593543950335" }),
    ] {
        let code = app
            .error_code(&app.admin_token(), q, json!({ "h": h }))
            .await;
        assert_eq!(code, "BAD_USER_INPUT", "{h}");
    }
    // At the bounds: 10^5 new reps x 10^5 deals x 10^12.
    let h = json!({ "growthRate": 10, "newReps": 100000, "dealsPerNewRep": 100000, "newRepDealSize": MAX });
    let d = app.ok(q, json!({ "h": h })).await;
    assert_eq!(d["forecast"]["amount"], json!("10000000000000000000000.00"));

    for offset in [i32::MIN, i32::MAX, 3661, -3661] {
        let code = app
            .error_code(
                &app.admin_token(),
                "query($o: Int) { forecastAccuracy(periods: [\"2025\"], asOfOffsetDays: $o) { actual } }",
                json!({ "o": offset }),
            )
            .await;
        assert_eq!(code, "BAD_USER_INPUT", "offset {offset}");
    }
}

db_tests!(
    every_sum_is_exact_at_the_maximum_amount,
    sums_past_64_bits_stay_exact,
    amounts_past_the_cap_are_refused,
    extreme_forecast_inputs_are_refused,
);
