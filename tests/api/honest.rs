//! Honest comparisons and the new dimensions (issue 13, items 4-6):
//! quotaCarrying in quotaAttainment, repPerformance and commissions,
//! NO_ACTIVITY, a partial period compared with as many days of the previous
//! one, SeriesPoint amount and partial, and grouping by STAGE,
//! FORECAST_CATEGORY, LOST_REASON and INDUSTRY.
use api::auth::Role;
use chrono::{Datelike, Duration, NaiveDate, Utc};
use serde_json::{json, Value};

use crate::db_tests;
use crate::helpers::{id_num, TestApp};

db_tests!(
    quota_carrying_no_activity_and_quarter_to_date,
    series_points_are_exact_and_say_when_partial,
    new_dimensions_group_every_metric,
);

/// (label, id, won, lost, winRate) of a winRates row.
type WinRow = (String, Option<String>, i64, i64, Option<f64>);

fn quarter_start(d: NaiveDate) -> NaiveDate {
    NaiveDate::from_ymd_opt(d.year(), (d.month0() / 3) * 3 + 1, 1).unwrap()
}

fn quarter_name(d: NaiveDate) -> String {
    format!("{}-Q{}", d.year(), d.month0() / 3 + 1)
}

fn at(d: NaiveDate) -> String {
    format!("{d}T00:30:00Z")
}

async fn won(app: &TestApp, amount: &str, owner: &str, opened: NaiveDate, closed: NaiveDate) {
    let stage = app.stage("Discovery").await;
    let id = app
        .create_deal(json!({ "name": format!("{amount} {closed}"), "amount": amount, "ownerId": owner, "stageId": stage, "openedAt": at(opened) }))
        .await;
    app.move_deal(&id, "Won", &at(closed)).await;
}

/// This quarter so far against the previous quarter's first as many days
/// (today included). Ann: quota 2,000 this quarter; won 800 on its first
/// day; last quarter she won 500 on its n-th day (n = the days of this
/// quarter so far) and 5,000 the day after (when that day is still in the
/// quarter). Compared with as many days: 800 against 500, IMPROVING_LAGGARD
/// (change 0.6); against the whole quarter it would have been 5,500 and
/// DETERIORATING_LAGGARD.
/// Max manages and does not sell but has a quota of 1,000: measured (0
/// won: IMPROVING_LAGGARD). Mia manages, does not sell, no quota: in no
/// list. Bo: no quota, nothing closed: NO_ACTIVITY, out of the median. Cy
/// (300) and Eve (1,000), no quota: the median of Max 0, Ann 800, Cy 300
/// and Eve 1,000 is 550, so Cy is a laggard and Eve a rising star (with
/// Bo's 0 in it, the median would have been 300 and Cy a star).
async fn quota_carrying_no_activity_and_quarter_to_date(app: TestApp) {
    let today = Utc::now().date_naive();
    let qs = quarter_start(today);
    let ps = quarter_start(qs - Duration::days(1));
    let n = (today - qs).num_days() + 1;
    let mia = app
        .create_rep("Mia", None, None, json!({ "quotaCarrying": false }))
        .await;
    let max = app
        .create_rep("Max", None, None, json!({ "quotaCarrying": false }))
        .await;
    let ann = app.create_rep("Ann", Some(&mia), None, json!({})).await;
    app.create_rep("Bo", Some(&mia), None, json!({})).await;
    let cy = app.create_rep("Cy", Some(&mia), None, json!({})).await;
    let eve = app.create_rep("Eve", Some(&mia), None, json!({})).await;
    let q = quarter_name(today);
    app.set_quota(&ann, &q, "2000").await;
    app.set_quota(&max, &q, "1000").await;
    won(&app, "800", &ann, ps - Duration::days(30), qs).await;
    won(
        &app,
        "500",
        &ann,
        ps - Duration::days(30),
        ps + Duration::days(n - 1),
    )
    .await;
    let after = ps + Duration::days(n);
    let later_in_quarter = after < qs;
    if later_in_quarter {
        won(&app, "5000", &ann, ps - Duration::days(30), after).await;
    }
    won(&app, "300", &cy, qs - Duration::days(5), qs).await;
    won(&app, "1000", &eve, qs - Duration::days(5), qs).await;

    let perf = "query($p: Period!, $m: ID) { repPerformance(period: $p, managerId: $m) { rep { name } current previous change quadrant } }";
    let d = app.ok(perf, json!({ "p": q })).await;
    let rows: Vec<(String, String, String, String)> = d["repPerformance"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["rep"]["name"].as_str().unwrap().to_owned(),
                r["current"].as_str().unwrap().to_owned(),
                r["previous"].as_str().unwrap().to_owned(),
                r["quadrant"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let row = |a: &str, b: &str, c: &str, e: &str| {
        (a.to_owned(), b.to_owned(), c.to_owned(), e.to_owned())
    };
    assert_eq!(
        rows,
        vec![
            row("Max", "0.00", "0.00", "IMPROVING_LAGGARD"),
            row("Ann", "800.00", "500.00", "IMPROVING_LAGGARD"),
            row("Bo", "0.00", "0.00", "NO_ACTIVITY"),
            row("Cy", "300.00", "0.00", "IMPROVING_LAGGARD"),
            row("Eve", "1000.00", "0.00", "RISING_STAR"),
        ]
    );
    let ann_row = &d["repPerformance"][1];
    assert!((ann_row["change"].as_f64().unwrap() - 0.6).abs() < 1e-12);
    // An explicit compareTo is taken as given: the whole previous quarter.
    if later_in_quarter {
        let d = app
            .ok(
                "query($p: Period!, $c: Period) { repPerformance(period: $p, compareTo: $c) { rep { name } previous quadrant } }",
                json!({ "p": q, "c": quarter_name(ps) }),
            )
            .await;
        assert_eq!(d["repPerformance"][1]["previous"], "5500.00");
        assert_eq!(d["repPerformance"][1]["quadrant"], "DETERIORATING_LAGGARD");
    }
    // managerId narrows to Mia's team (Mia herself is left out: she does
    // not sell and has no quota).
    let d = app.ok(perf, json!({ "p": q, "m": mia })).await;
    let names: Vec<&str> = d["repPerformance"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rep"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Ann", "Bo", "Cy", "Eve"]);
    assert_eq!(
        app.error_code(&app.admin_token(), perf, json!({ "p": q, "m": "999999" }))
            .await,
        "BAD_USER_INPUT"
    );
    // A manager reads its team the same way.
    let t = app.token(Role::Manager, Some(id_num(&mia)));
    let d = app.ok_as(&t, perf, json!({ "p": q })).await;
    assert_eq!(d["repPerformance"].as_array().unwrap().len(), 4);

    // quotaAttainment and commissions: Mia in neither, Max in both.
    let att = app
        .ok(
            "query($p: Period!) { quotaAttainment(period: $p) { rows { rep { name } quota closedWon } repsWithQuota repsAtQuota totalQuota } }",
            json!({ "p": q }),
        )
        .await;
    let names: Vec<&str> = att["quotaAttainment"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rep"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Max", "Ann", "Bo", "Cy", "Eve"]);
    assert_eq!(att["quotaAttainment"]["repsWithQuota"], 2);
    assert_eq!(att["quotaAttainment"]["totalQuota"], "3000.00");
    let com = app
        .ok(
            "query($p: Period!) { commissions(period: $p) { rep { name } earned } }",
            json!({ "p": q }),
        )
        .await;
    let names: Vec<&str> = com["commissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rep"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Max", "Ann", "Bo", "Cy", "Eve"]);
    // Mia's team quota is her reps' quotas: Ann's 2,000.
    let r = app
        .ok(
            "query($id: ID!, $p: Period!) { rep(id: $id) { quotaCarrying teamQuota(period: $p) } }",
            json!({ "id": mia, "p": q }),
        )
        .await;
    assert_eq!(
        r["rep"],
        json!({ "quotaCarrying": false, "teamQuota": "2000.00" })
    );
    // updateRep flips it: Mia now sells, and appears (NO_ACTIVITY).
    app.ok(
        "mutation($id: ID!) { updateRep(id: $id, patch: { quotaCarrying: true }) { quotaCarrying } }",
        json!({ "id": mia }),
    )
    .await;
    let d = app.ok(perf, json!({ "p": q })).await;
    let mia_row: Vec<&Value> = d["repPerformance"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["rep"]["name"] == "Mia")
        .collect();
    assert_eq!(mia_row.len(), 1);
    assert_eq!(mia_row[0]["quadrant"], "NO_ACTIVITY");
}

/// metricSeries over the previous and the current quarter by quarter: the
/// previous quarter is over, the current one partial; money comes exact
/// (CLOSED_WON_AMOUNT 1,000.10 + 2,000.20 = 3,000.30 last quarter, 0.05
/// this one; AVG_DEAL_SIZE 1,500.15), counts have no amount.
async fn series_points_are_exact_and_say_when_partial(app: TestApp) {
    let today = Utc::now().date_naive();
    let qs = quarter_start(today);
    let ps = quarter_start(qs - Duration::days(1));
    let ann = app.create_rep("Ann", None, None, json!({})).await;
    won(&app, "1000.10", &ann, ps - Duration::days(9), ps).await;
    won(
        &app,
        "2000.20",
        &ann,
        ps - Duration::days(9),
        ps + Duration::days(1),
    )
    .await;
    won(&app, "0.05", &ann, qs - Duration::days(9), qs).await;
    let period = format!("{ps}..{}", quarter_start(qs + Duration::days(95)));
    let q = "query($m: Metric!, $p: Period!) { metricSeries(metric: $m, period: $p, granularity: QUARTER) { bucket value amount partial } }";
    let d = app
        .ok(q, json!({ "m": "CLOSED_WON_AMOUNT", "p": period }))
        .await;
    assert_eq!(
        d["metricSeries"],
        json!([
            { "bucket": quarter_name(ps), "value": 3000.3, "amount": "3000.30", "partial": false },
            { "bucket": quarter_name(qs), "value": 0.05, "amount": "0.05", "partial": true },
        ])
    );
    let d = app
        .ok(q, json!({ "m": "AVG_DEAL_SIZE", "p": period }))
        .await;
    assert_eq!(d["metricSeries"][0]["amount"], "1500.15");
    assert_eq!(d["metricSeries"][1]["amount"], "0.05");
    // NEW_PIPELINE: the 0.05 deal opened 9 days before this quarter; the
    // other two before the period.
    let d = app.ok(q, json!({ "m": "NEW_PIPELINE", "p": period })).await;
    let amounts: Vec<&str> = d["metricSeries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["amount"].as_str().unwrap())
        .collect();
    assert_eq!(amounts, ["0.05", "0.00"]);
    let d = app.ok(q, json!({ "m": "DEALS_WON", "p": period })).await;
    assert_eq!(d["metricSeries"][0]["amount"], Value::Null);
    assert_eq!(d["metricSeries"][0]["value"], 2.0);
    assert_eq!(d["metricSeries"][1]["partial"], true);
}

/// May 2026. Accounts: Acme (Retail), Birch (Banking), Cobalt (no
/// industry). Deals: D1 1,000 won 05-10 (Acme); D2 2,000 lost 05-12
/// "Price" (Birch); D3 500 lost 05-15 "Price" (Acme); D4 700 lost 05-20
/// without a reason (Cobalt); D5 3,000 in Trial (0.60) expected 05-25,
/// COMMIT (Birch); D6 1,500 in Demo (0.40) expected 05-28, PIPELINE (no
/// account).
async fn new_dimensions_group_every_metric(app: TestApp) {
    let ann = app.create_rep("Ann", None, None, json!({})).await;
    let account = |name: &'static str, industry: Option<&'static str>| {
        let app = &app;
        async move {
            app.ok(
                "mutation($i: AccountInput!) { createAccount(input: $i) { id } }",
                json!({ "i": { "name": name, "industry": industry } }),
            )
            .await["createAccount"]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let acme = account("Acme", Some("Retail")).await;
    let birch = account("Birch", Some("Banking")).await;
    let cobalt = account("Cobalt", None).await;
    let create = |amount: &'static str,
                  stage: &'static str,
                  acct: Option<String>,
                  expected: Option<&'static str>,
                  category: Option<&'static str>| {
        let app = &app;
        let ann = ann.clone();
        async move {
            let s = app.stage(stage).await;
            app.create_deal(json!({ "name": format!("{amount}"), "amount": amount, "ownerId": ann, "stageId": s, "accountId": acct, "openedAt": "2026-04-01T08:00:00Z", "expectedCloseDate": expected, "forecastCategory": category }))
                .await
        }
    };
    let lose = |id: String, reason: Option<&'static str>, when: &'static str| {
        let app = &app;
        async move {
            let s = app.stage("Lost").await;
            app.ok(
                "mutation($id: ID!, $s: ID!, $at: DateTime, $r: String) { moveDealStage(id: $id, stageId: $s, at: $at, lostReason: $r) { id } }",
                json!({ "id": id, "s": s, "at": when, "r": reason }),
            )
            .await;
        }
    };
    let d1 = create("1000", "Discovery", Some(acme.clone()), None, None).await;
    app.move_deal(&d1, "Won", "2026-05-10T08:00:00Z").await;
    let d2 = create("2000", "Discovery", Some(birch.clone()), None, None).await;
    lose(d2, Some("Price"), "2026-05-12T08:00:00Z").await;
    let d3 = create("500", "Discovery", Some(acme.clone()), None, None).await;
    lose(d3, Some("Price"), "2026-05-15T08:00:00Z").await;
    let d4 = create("700", "Discovery", Some(cobalt.clone()), None, None).await;
    lose(d4, None, "2026-05-20T08:00:00Z").await;
    create(
        "3000",
        "Trial",
        Some(birch.clone()),
        Some("2026-05-25"),
        Some("COMMIT"),
    )
    .await;
    create("1500", "Demo", None, Some("2026-05-28"), Some("PIPELINE")).await;

    let wr = "query($g: Dimension) { winRates(period: \"2026-05\", groupBy: $g) { key { dimension id label } won lost winRate } }";
    let rows = |d: &Value| -> Vec<WinRow> {
        d["winRates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["key"]["label"].as_str().unwrap().to_owned(),
                    r["key"]["id"].as_str().map(str::to_owned),
                    r["won"].as_i64().unwrap(),
                    r["lost"].as_i64().unwrap(),
                    r["winRate"].as_f64(),
                )
            })
            .collect()
    };
    let s = |x: &str| Some(x.to_owned());
    // LOST_REASON: the lost deals' reasons; "none" holds D1 (won) and D4.
    let d = app.ok(wr, json!({ "g": "LOST_REASON" })).await;
    assert_eq!(
        rows(&d),
        vec![
            ("Price".into(), s("Price"), 0, 2, Some(0.0)),
            ("none".into(), None, 1, 1, Some(0.5)),
        ]
    );
    assert_eq!(d["winRates"][0]["key"]["dimension"], "LOST_REASON");
    // INDUSTRY: the account's.
    let d = app.ok(wr, json!({ "g": "INDUSTRY" })).await;
    assert_eq!(
        rows(&d),
        vec![
            ("Banking".into(), s("Banking"), 0, 1, Some(0.0)),
            ("Retail".into(), s("Retail"), 1, 1, Some(0.5)),
            ("No industry".into(), None, 0, 1, Some(0.0)),
        ]
    );
    // STAGE: where the deals are now.
    let d = app.ok(wr, json!({ "g": "STAGE" })).await;
    let won_stage = app.stage("Won").await;
    let lost_stage = app.stage("Lost").await;
    assert_eq!(
        rows(&d),
        vec![
            ("Lost".into(), Some(lost_stage), 0, 3, Some(0.0)),
            ("Won".into(), Some(won_stage), 1, 0, Some(1.0)),
        ]
    );
    // FORECAST_CATEGORY: a won deal is CLOSED, a lost one OMITTED.
    let d = app.ok(wr, json!({ "g": "FORECAST_CATEGORY" })).await;
    assert_eq!(
        rows(&d),
        vec![
            ("Closed".into(), s("CLOSED"), 1, 0, Some(1.0)),
            ("Omitted".into(), s("OMITTED"), 0, 3, Some(0.0)),
        ]
    );
    // STAGE_WEIGHTED by category: COMMIT 3,000 x 0.6, PIPELINE 1,500 x 0.4,
    // CLOSED the 1,000 won; the same as of 05-31 (from the deals' history).
    let fq = "query($g: Dimension, $a: Date) { forecast(period: \"2026-05\", method: STAGE_WEIGHTED, groupBy: $g, asOf: $a) { amount rows { key { label } amount closedWon } } }";
    for a in [Value::Null, json!("2026-05-31")] {
        let d = app
            .ok(fq, json!({ "g": "FORECAST_CATEGORY", "a": a }))
            .await;
        assert_eq!(d["forecast"]["amount"], "3400.00");
        assert_eq!(
            d["forecast"]["rows"],
            json!([
                { "key": { "label": "Closed" }, "amount": "1000.00", "closedWon": "1000.00" },
                { "key": { "label": "Commit" }, "amount": "1800.00", "closedWon": "0.00" },
                { "key": { "label": "Pipeline" }, "amount": "600.00", "closedWon": "0.00" },
            ])
        );
    }
    // By industry as of 05-31: Banking D5 1,800, Retail D1 1,000, and D6
    // without an account 600.
    let d = app
        .ok(fq, json!({ "g": "INDUSTRY", "a": "2026-05-31" }))
        .await;
    assert_eq!(
        d["forecast"]["rows"],
        json!([
            { "key": { "label": "Banking" }, "amount": "1800.00", "closedWon": "0.00" },
            { "key": { "label": "Retail" }, "amount": "1000.00", "closedWon": "1000.00" },
            { "key": { "label": "No industry" }, "amount": "600.00", "closedWon": "0.00" },
        ])
    );
    // Open pipeline by stage.
    let d = app
        .ok("{ pipelineSummary(period: \"2026-05\", groupBy: STAGE) { key { label } openDeals pipelineValue weightedPipeline } }", json!({}))
        .await;
    let open: Vec<(&str, i64, &str, &str)> = d["pipelineSummary"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["openDeals"].as_i64().unwrap() > 0)
        .map(|r| {
            (
                r["key"]["label"].as_str().unwrap(),
                r["openDeals"].as_i64().unwrap(),
                r["pipelineValue"].as_str().unwrap(),
                r["weightedPipeline"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        open,
        [
            ("Demo", 1, "1500.00", "600.00"),
            ("Trial", 1, "3000.00", "1800.00")
        ]
    );
    // A lost reason by month in a series.
    let d = app
        .ok("{ metricSeries(metric: DEALS_LOST, period: \"2026-05\", granularity: MONTH, groupBy: LOST_REASON) { key { label } value } }", json!({}))
        .await;
    assert_eq!(
        d["metricSeries"],
        json!([{ "key": { "label": "Price" }, "value": 2.0 }, { "key": { "label": "none" }, "value": 1.0 }])
    );
    let _ = cobalt;
}
