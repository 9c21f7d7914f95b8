//! Sales metrics over HTTP (docs/design.md, Metrics), on small hand-built
//! fixtures in fixed past periods; every expected number is worked out by
//! hand in the comments.
use api::auth::Role;
use serde_json::{json, Value};

use crate::db_tests;
use crate::helpers::{id_num, TestApp};

db_tests!(
    win_rates_by_rep_source_filter_and_scope,
    quota_attainment_coverage_and_commissions,
    pipeline_summary_by_territory,
    undated_open_deals_close_after_the_average_won_cycle,
    rep_performance_has_all_four_quadrants,
    funnel_shows_the_leak_at_demo,
    funnel_counts_days_so_far_for_deals_still_in_a_stage,
    metric_series_month_by_month_with_changes,
    data_health_counts_and_issues,
    playbook_effectiveness_in_one_batch,
    metrics_refuse_integration_and_bad_input,
);

fn close(v: &Value, expected: f64) {
    let got = v
        .as_f64()
        .unwrap_or_else(|| panic!("expected {expected}, got {v}"));
    assert!(
        (got - expected).abs() < 1e-9,
        "expected {expected}, got {got}"
    );
}

/// A deal created straight into a stage; `closed_at` for Won/Lost.
#[allow(clippy::too_many_arguments)]
async fn deal(
    app: &TestApp,
    owner: &str,
    stage: &str,
    amount: &str,
    opened_at: &str,
    closed_at: Option<&str>,
    extra: Value,
) -> String {
    let stage_id = app.stage(stage).await;
    let mut input = json!({
        "name": format!("{stage} {amount} {opened_at}"),
        "amount": amount,
        "ownerId": owner,
        "stageId": stage_id,
        "openedAt": opened_at,
        "closedAt": closed_at,
    });
    if let (Some(obj), Some(more)) = (input.as_object_mut(), extra.as_object()) {
        for (k, v) in more {
            obj.insert(k.clone(), v.clone());
        }
    }
    app.create_deal(input).await
}

async fn won(app: &TestApp, owner: &str, amount: &str, opened: &str, closed: &str, extra: Value) {
    deal(app, owner, "Won", amount, opened, Some(closed), extra).await;
}

async fn lost(app: &TestApp, owner: &str, amount: &str, opened: &str, closed: &str, extra: Value) {
    deal(app, owner, "Lost", amount, opened, Some(closed), extra).await;
}

const WIN_RATES: &str = "query($p: Period!, $g: Dimension, $f: DealFilter) { winRates(period: $p, groupBy: $g, filter: $f) { key { dimension id label } won lost winRate wonAmount lostAmount amountWinRate } }";

async fn win_rates_by_rep_source_filter_and_scope(app: TestApp) {
    let max = app.create_rep("Max", None, None, json!({})).await;
    let ada = app.create_rep("Ada", None, None, json!({})).await;
    let ben = app.create_rep("Ben", Some(&max), None, json!({})).await;
    let opened = "2025-01-01T00:00:00Z";
    let inbound = json!({ "source": "INBOUND" });
    let outbound = json!({ "source": "OUTBOUND" });
    // Closed in March 2025:
    //   Ada: won 1,000 (inbound), won 3,000 (outbound), lost 1,000 (inbound)
    //   Ben: won 2,000 (inbound), lost 3,000 and 5,000 (outbound)
    won(
        &app,
        &ada,
        "1000",
        opened,
        "2025-03-03T10:00:00Z",
        inbound.clone(),
    )
    .await;
    won(
        &app,
        &ada,
        "3000",
        opened,
        "2025-03-31T23:59:59Z",
        outbound.clone(),
    )
    .await;
    lost(
        &app,
        &ada,
        "1000",
        opened,
        "2025-03-10T10:00:00Z",
        inbound.clone(),
    )
    .await;
    won(
        &app,
        &ben,
        "2000",
        opened,
        "2025-03-01T00:00:00Z",
        inbound.clone(),
    )
    .await;
    lost(
        &app,
        &ben,
        "3000",
        opened,
        "2025-03-11T10:00:00Z",
        outbound.clone(),
    )
    .await;
    lost(
        &app,
        &ben,
        "5000",
        opened,
        "2025-03-12T10:00:00Z",
        outbound.clone(),
    )
    .await;
    // Outside the month (half-open bounds) and still open: not counted.
    won(
        &app,
        &ada,
        "9999",
        opened,
        "2025-04-01T00:00:00Z",
        inbound.clone(),
    )
    .await;
    lost(
        &app,
        &ben,
        "7777",
        opened,
        "2025-02-28T23:59:59Z",
        inbound.clone(),
    )
    .await;
    deal(&app, &ada, "Demo", "500", opened, None, json!({})).await;

    let vars = |g: &str, f: Value| json!({ "p": "2025-03", "g": g, "f": f });
    // By rep (ordered by label): Ada 2 won / 1 lost = 2/3, amounts 4,000 vs
    // 1,000 -> 0.8; Ben 1 / 2 = 1/3, 2,000 vs 8,000 -> 0.2.
    let d = app.ok(WIN_RATES, vars("REP", Value::Null)).await;
    let rows = d["winRates"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0]["key"],
        json!({ "dimension": "REP", "id": ada, "label": "Ada" })
    );
    assert_eq!(
        (rows[0]["won"].as_i64(), rows[0]["lost"].as_i64()),
        (Some(2), Some(1))
    );
    close(&rows[0]["winRate"], 2.0 / 3.0);
    assert_eq!(rows[0]["wonAmount"], "4000.00");
    assert_eq!(rows[0]["lostAmount"], "1000.00");
    close(&rows[0]["amountWinRate"], 0.8);
    assert_eq!(rows[1]["key"]["label"], "Ben");
    close(&rows[1]["winRate"], 1.0 / 3.0);
    assert_eq!(rows[1]["wonAmount"], "2000.00");
    assert_eq!(rows[1]["lostAmount"], "8000.00");
    close(&rows[1]["amountWinRate"], 0.2);

    // By source: Inbound won 1,000 + 2,000, lost 1,000 -> 2/3 and 0.75;
    // Outbound won 3,000, lost 3,000 + 5,000 -> 1/3 and 3/11.
    let d = app.ok(WIN_RATES, vars("SOURCE", Value::Null)).await;
    let rows = d["winRates"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0]["key"],
        json!({ "dimension": "SOURCE", "id": "INBOUND", "label": "Inbound" })
    );
    close(&rows[0]["winRate"], 2.0 / 3.0);
    close(&rows[0]["amountWinRate"], 0.75);
    assert_eq!(rows[1]["key"]["id"], "OUTBOUND");
    close(&rows[1]["winRate"], 1.0 / 3.0);
    close(&rows[1]["amountWinRate"], 3.0 / 11.0);

    // NONE (the default): 3 won / 3 lost, 6,000 vs 9,000.
    let d = app.ok(WIN_RATES, json!({ "p": "2025-03" })).await;
    let all = &d["winRates"][0];
    assert_eq!(d["winRates"].as_array().unwrap().len(), 1);
    assert_eq!(
        all["key"],
        json!({ "dimension": "NONE", "id": null, "label": "All" })
    );
    close(&all["winRate"], 0.5);
    close(&all["amountWinRate"], 0.4);

    // The filter narrows the deals: amount >= 2,000 keeps Ada's 3,000 won,
    // Ben's 2,000 won and 3,000 + 5,000 lost: 2 / 2, 5,000 vs 8,000.
    let d = app
        .ok(WIN_RATES, vars("NONE", json!({ "minAmount": "2000" })))
        .await;
    let all = &d["winRates"][0];
    assert_eq!(
        (all["won"].as_i64(), all["lost"].as_i64()),
        (Some(2), Some(2))
    );
    assert_eq!(all["wonAmount"], "5000.00");
    close(&all["amountWinRate"], 5.0 / 13.0);
    // ownerIds and a period filter narrow too: Ada's deals closed in the
    // first ten days of March: won 1,000 only.
    let d = app
        .ok(
            WIN_RATES,
            vars(
                "NONE",
                json!({ "ownerIds": [ada], "closedIn": "2025-03-01..2025-03-11" }),
            ),
        )
        .await;
    let all = &d["winRates"][0];
    assert_eq!(
        (all["won"].as_i64(), all["lost"].as_i64()),
        (Some(1), Some(1))
    );

    // A month with nothing closed: one NONE row with a null rate.
    let d = app.ok(WIN_RATES, json!({ "p": "2024-03" })).await;
    assert_eq!(d["winRates"][0]["won"], 0);
    assert_eq!(d["winRates"][0]["winRate"], Value::Null);
    assert_eq!(d["winRates"][0]["wonAmount"], "0.00");

    // Scope: Ada as REP sees her own deals only (2 / 1); Max as MANAGER sees
    // his team, Ben (1 / 2); VIEWER sees all.
    let rep = app.token(Role::Rep, Some(id_num(&ada)));
    let d = app.ok_as(&rep, WIN_RATES, vars("REP", Value::Null)).await;
    let rows = d["winRates"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["key"]["label"], "Ada");
    let mgr = app.token(Role::Manager, Some(id_num(&max)));
    let d = app.ok_as(&mgr, WIN_RATES, vars("NONE", Value::Null)).await;
    assert_eq!(
        (
            d["winRates"][0]["won"].as_i64(),
            d["winRates"][0]["lost"].as_i64()
        ),
        (Some(1), Some(2))
    );
    let viewer = app.token(Role::Viewer, None);
    let d = app
        .ok_as(&viewer, WIN_RATES, vars("NONE", Value::Null))
        .await;
    assert_eq!(d["winRates"][0]["won"], 3);
}

/// Max (West) manages Ada (West-SF) and Ben (East); Cy (East) has no quota.
/// West and West-SF are ENTERPRISE, East is SMB.
struct Org {
    max: String,
    ada: String,
    ben: String,
    cy: String,
    west: String,
}

/// The March 2025 fixture of attainment, commissions and pipeline:
/// - quotas for 2025-03: Ada 10,000, Ben 10,000; Ada's April quota (5,000)
///   does not lie inside March and is ignored there.
/// - won in March: Ada 12,000 (opened 2025-01-01: 68 days), Ben 9,000
///   (opened 2025-02-01: 37 days), Cy 500 (opened 2025-03-01: 9 days);
///   Ben lost 3,000 in March.
/// - open, expected to close in March: Ada 4,000 in Demo (0.40), Ben 1,000
///   in Trial (0.60) and 500 in Discovery (0.10); Ben's 2,000 expected on
///   2025-04-01 is outside.
async fn march_org(app: &TestApp) -> Org {
    let west = app.create_territory("West", Some("ENTERPRISE"), None).await;
    let sf = app
        .create_territory("West-SF", Some("ENTERPRISE"), Some(&west))
        .await;
    let east = app.create_territory("East", Some("SMB"), None).await;
    let max = app.create_rep("Max", None, Some(&west), json!({})).await;
    let ada = app
        .create_rep("Ada", Some(&max), Some(&sf), json!({}))
        .await;
    let ben = app
        .create_rep("Ben", Some(&max), Some(&east), json!({}))
        .await;
    let cy = app.create_rep("Cy", None, Some(&east), json!({})).await;
    app.set_quota(&ada, "2025-03", "10000").await;
    app.set_quota(&ben, "2025-03", "10000").await;
    app.set_quota(&ada, "2025-04", "5000").await;
    let closed = "2025-03-10T12:00:00Z";
    won(
        app,
        &ada,
        "12000",
        "2025-01-01T09:00:00Z",
        closed,
        json!({}),
    )
    .await;
    won(app, &ben, "9000", "2025-02-01T09:00:00Z", closed, json!({})).await;
    won(app, &cy, "500", "2025-03-01T09:00:00Z", closed, json!({})).await;
    lost(
        app,
        &ben,
        "3000",
        "2025-02-01T09:00:00Z",
        "2025-03-15T12:00:00Z",
        json!({}),
    )
    .await;
    let opened = "2025-02-15T09:00:00Z";
    let exp = |d: &str| json!({ "expectedCloseDate": d });
    deal(app, &ada, "Demo", "4000", opened, None, exp("2025-03-05")).await;
    deal(app, &ben, "Trial", "1000", opened, None, exp("2025-03-20")).await;
    deal(
        app,
        &ben,
        "Discovery",
        "500",
        opened,
        None,
        exp("2025-03-31"),
    )
    .await;
    deal(app, &ben, "Trial", "2000", opened, None, exp("2025-04-01")).await;
    Org {
        max,
        ada,
        ben,
        cy,
        west,
    }
}

const ATTAINMENT: &str = "query($p: Period!, $t: ID, $m: ID) { quotaAttainment(period: $p, territoryId: $t, managerId: $m) { period totalQuota totalClosedWon attainment repsWithQuota repsAtQuota quotaAchievementRate rows { rep { id name } quota closedWon attainment attainedQuota openPipeline weightedPipeline gapToQuota pipelineCoverage } } }";

async fn quota_attainment_coverage_and_commissions(app: TestApp) {
    let org = march_org(&app).await;
    let d = app.ok(ATTAINMENT, json!({ "p": "2025-03" })).await;
    let r = &d["quotaAttainment"];
    assert_eq!(r["period"], "2025-03");
    // Rows by rep id: Max, Ada, Ben, Cy (active reps in scope).
    let rows = r["rows"].as_array().unwrap();
    let names: Vec<_> = rows
        .iter()
        .map(|r| r["rep"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Max", "Ada", "Ben", "Cy"]);
    // Max: nothing at all.
    assert_eq!(rows[0]["quota"], "0.00");
    assert_eq!(rows[0]["attainment"], Value::Null);
    assert_eq!(rows[0]["attainedQuota"], false);
    // Ada: 12,000 / 10,000 = 1.2, no gap so coverage is null; pipeline
    // 4,000 in Demo weighs 1,600.
    let ada = &rows[1];
    assert_eq!(ada["rep"]["id"], org.ada.as_str());
    assert_eq!(ada["quota"], "10000.00");
    assert_eq!(ada["closedWon"], "12000.00");
    close(&ada["attainment"], 1.2);
    assert_eq!(ada["attainedQuota"], true);
    assert_eq!(ada["openPipeline"], "4000.00");
    assert_eq!(ada["weightedPipeline"], "1600.00");
    assert_eq!(ada["gapToQuota"], "0.00");
    assert_eq!(ada["pipelineCoverage"], Value::Null);
    // Ben: 9,000 / 10,000 = 0.9, gap 1,000; pipeline 1,000 + 500 = 1,500
    // (the 2,000 expected in April is outside), weighted 600 + 50 = 650;
    // coverage 1,500 / 1,000 = 1.5.
    let ben = &rows[2];
    assert_eq!(ben["closedWon"], "9000.00");
    close(&ben["attainment"], 0.9);
    assert_eq!(ben["attainedQuota"], false);
    assert_eq!(ben["openPipeline"], "1500.00");
    assert_eq!(ben["weightedPipeline"], "650.00");
    assert_eq!(ben["gapToQuota"], "1000.00");
    close(&ben["pipelineCoverage"], 1.5);
    // Cy: won 500 without a quota.
    assert_eq!(rows[3]["closedWon"], "500.00");
    assert_eq!(rows[3]["attainment"], Value::Null);
    // Totals: quota 20,000, won 21,500 -> 1.075; 2 reps with a quota, 1 at
    // it: achievement rate 0.5.
    assert_eq!(r["totalQuota"], "20000.00");
    assert_eq!(r["totalClosedWon"], "21500.00");
    close(&r["attainment"], 1.075);
    assert_eq!(
        (r["repsWithQuota"].as_i64(), r["repsAtQuota"].as_i64()),
        (Some(2), Some(1))
    );
    close(&r["quotaAchievementRate"], 0.5);

    // Quotas lying inside the period: Q1 holds the March quotas (20,000),
    // Q2 Ada's April one (5,000).
    let d = app.ok(ATTAINMENT, json!({ "p": "2025-Q1" })).await;
    assert_eq!(d["quotaAttainment"]["totalQuota"], "20000.00");
    let d = app.ok(ATTAINMENT, json!({ "p": "2025-Q2" })).await;
    assert_eq!(d["quotaAttainment"]["totalQuota"], "5000.00");

    // territoryId West: its subtree holds Max and Ada: 12,000 / 10,000.
    let d = app
        .ok(ATTAINMENT, json!({ "p": "2025-03", "t": org.west }))
        .await;
    let r = &d["quotaAttainment"];
    let names: Vec<_> = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rep"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Max", "Ada"]);
    close(&r["attainment"], 1.2);
    close(&r["quotaAchievementRate"], 1.0);
    // managerId Max: Max and his team Ada, Ben: 21,000 / 20,000.
    let d = app
        .ok(ATTAINMENT, json!({ "p": "2025-03", "m": org.max }))
        .await;
    let r = &d["quotaAttainment"];
    assert_eq!(r["rows"].as_array().unwrap().len(), 3);
    close(&r["attainment"], 1.05);
    // Unknown ids are bad input.
    let admin = app.admin_token();
    assert_eq!(
        app.error_code(&admin, ATTAINMENT, json!({ "p": "2025-03", "t": "999999" }))
            .await,
        "BAD_USER_INPUT"
    );

    // Scope: Ben as REP sees his row only; Max as MANAGER his team.
    let rep = app.token(Role::Rep, Some(id_num(&org.ben)));
    let d = app.ok_as(&rep, ATTAINMENT, json!({ "p": "2025-03" })).await;
    let rows = d["quotaAttainment"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["rep"]["name"], "Ben");
    assert_eq!(d["quotaAttainment"]["totalClosedWon"], "9000.00");
    let mgr = app.token(Role::Manager, Some(id_num(&org.max)));
    let d = app.ok_as(&mgr, ATTAINMENT, json!({ "p": "2025-03" })).await;
    assert_eq!(d["quotaAttainment"]["rows"].as_array().unwrap().len(), 3);
    assert_eq!(d["quotaAttainment"]["totalClosedWon"], "21000.00");

    // Commissions (docs/design.md's example): Ada closes 12,000 of 10,000 at
    // 0.10 -> 1,200; Ben closes 9,000 (90%) -> 0; Cy has no quota -> 0.
    let q = "query($p: Period!) { commissions(period: $p) { rep { name } quota closedWon attainment rate qualified earned } }";
    let d = app.ok(q, json!({ "p": "2025-03" })).await;
    let rows = d["commissions"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(
        rows[1],
        json!({ "rep": { "name": "Ada" }, "quota": "10000.00", "closedWon": "12000.00", "attainment": 1.2, "rate": "0.10", "qualified": true, "earned": "1200.00" })
    );
    assert_eq!(rows[2]["qualified"], false);
    assert_eq!(rows[2]["earned"], "0.00");
    assert_eq!(rows[3]["rep"]["name"], "Cy");
    assert_eq!(rows[3]["earned"], "0.00");
    // A lower threshold and another rate on the rep row: Ben at 0.8 and
    // 0.05 qualifies with 90%: 9,000 x 0.05 = 450.
    app.ok(
        "mutation($id: ID!) { updateRep(id: $id, patch: { commissionRate: \"0.05\", commissionThreshold: \"0.8\" }) { id } }",
        json!({ "id": org.ben }),
    )
    .await;
    let d = app.ok_as(&rep, q, json!({ "p": "2025-03" })).await;
    let rows = d["commissions"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["rate"], "0.05");
    assert_eq!(rows[0]["qualified"], true);
    assert_eq!(rows[0]["earned"], "450.00");
    let _ = org.cy;
}

const PIPELINE: &str = "query($p: Period!, $g: Dimension, $f: DealFilter) { pipelineSummary(period: $p, groupBy: $g, filter: $f) { key { id label } openDeals pipelineValue weightedPipeline avgDealSize avgSalesCycleDays medianSalesCycleDays winRate } }";

async fn pipeline_summary_by_territory(app: TestApp) {
    let org = march_org(&app).await;
    // By territory (deals take their owner's territory):
    // East: open Ben 1,000 (Trial) + 500 (Discovery) = 1,500, weighted 650;
    //   won Ben 9,000 (37 days) and Cy 500 (9 days): mean size 4,750, mean
    //   and median cycle 23; 2 won / 1 lost -> 2/3.
    // West-SF: open 4,000 weighted 1,600; won 12,000 in 68 days; 1.0.
    let d = app
        .ok(PIPELINE, json!({ "p": "2025-03", "g": "TERRITORY" }))
        .await;
    let rows = d["pipelineSummary"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let east = &rows[0];
    assert_eq!(east["key"]["label"], "East");
    assert_eq!(east["openDeals"], 2);
    assert_eq!(east["pipelineValue"], "1500.00");
    assert_eq!(east["weightedPipeline"], "650.00");
    assert_eq!(east["avgDealSize"], "4750.00");
    close(&east["avgSalesCycleDays"], 23.0);
    close(&east["medianSalesCycleDays"], 23.0);
    close(&east["winRate"], 2.0 / 3.0);
    let west = &rows[1];
    assert_eq!(west["key"]["label"], "West-SF");
    assert_eq!(west["openDeals"], 1);
    assert_eq!(west["pipelineValue"], "4000.00");
    assert_eq!(west["weightedPipeline"], "1600.00");
    assert_eq!(west["avgDealSize"], "12000.00");
    close(&west["avgSalesCycleDays"], 68.0);
    close(&west["medianSalesCycleDays"], 68.0);
    close(&west["winRate"], 1.0);
    // NONE: 3 open, 5,500, weighted 2,250; mean size 21,500 / 3 = 7,166.67;
    // cycles 68, 37, 9: mean 38, median 37; 3 won / 1 lost.
    let d = app.ok(PIPELINE, json!({ "p": "2025-03" })).await;
    let all = &d["pipelineSummary"][0];
    assert_eq!(all["key"]["label"], "All");
    assert_eq!(all["openDeals"], 3);
    assert_eq!(all["pipelineValue"], "5500.00");
    assert_eq!(all["weightedPipeline"], "2250.00");
    assert_eq!(all["avgDealSize"], "7166.67");
    close(&all["avgSalesCycleDays"], 38.0);
    close(&all["medianSalesCycleDays"], 37.0);
    close(&all["winRate"], 0.75);
    // By manager: Max's team (Ada, Ben) and Cy without a manager.
    let d = app
        .ok(PIPELINE, json!({ "p": "2025-03", "g": "MANAGER" }))
        .await;
    let rows = d["pipelineSummary"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["key"], json!({ "id": org.max, "label": "Max" }));
    assert_eq!(rows[0]["openDeals"], 3);
    // Ada 12,000 and Ben 9,000: median cycle (37 + 68) / 2.
    close(&rows[0]["medianSalesCycleDays"], 52.5);
    assert_eq!(rows[1]["key"]["label"], "No manager");
    assert_eq!(rows[1]["avgDealSize"], "500.00");
    // By segment: Enterprise is West-SF's numbers, SMB East's.
    let d = app
        .ok(PIPELINE, json!({ "p": "2025-03", "g": "SEGMENT" }))
        .await;
    let rows = d["pipelineSummary"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0]["key"],
        json!({ "id": "ENTERPRISE", "label": "Enterprise" })
    );
    assert_eq!(rows[0]["pipelineValue"], "4000.00");
    assert_eq!(rows[1]["key"], json!({ "id": "SMB", "label": "SMB" }));
    assert_eq!(rows[1]["avgDealSize"], "4750.00");
    // The segment filter: SMB closed Ben's 9,000 and Cy's 500 won, Ben's
    // 3,000 lost.
    let d = app
        .ok(
            WIN_RATES,
            json!({ "p": "2025-03", "f": { "segments": ["SMB"] } }),
        )
        .await;
    assert_eq!(
        (
            d["winRates"][0]["won"].as_i64(),
            d["winRates"][0]["lost"].as_i64()
        ),
        (Some(2), Some(1))
    );
    // A filter on stage narrows the open part: Trial only -> Ben's 1,000.
    let trial = app.stage("Trial").await;
    let won_stage = app.stage("Won").await;
    let d = app
        .ok(
            PIPELINE,
            json!({ "p": "2025-03", "f": { "stageIds": [trial, won_stage] } }),
        )
        .await;
    assert_eq!(d["pipelineSummary"][0]["pipelineValue"], "1000.00");
    assert_eq!(d["pipelineSummary"][0]["winRate"], 1.0);
    // Ada as REP: her own pipeline only.
    let rep = app.token(Role::Rep, Some(id_num(&org.ada)));
    let d = app.ok_as(&rep, PIPELINE, json!({ "p": "2025-03" })).await;
    assert_eq!(d["pipelineSummary"][0]["pipelineValue"], "4000.00");
    let _ = (org.ben, org.cy, org.west);
}

async fn undated_open_deals_close_after_the_average_won_cycle(app: TestApp) {
    let ada = app.create_rep("Ada", None, None, json!({})).await;
    let today = chrono::Utc::now().date_naive();
    let day = |offset: i64| {
        (today + chrono::Duration::days(offset))
            .format("%Y-%m-%dT12:00:00Z")
            .to_string()
    };
    // Won in the 365 days ending today: cycles of 30 and 31 days -> mean
    // 30.5, rounded half up to 31 (a deal won 400 days ago is outside).
    won(&app, &ada, "100", &day(-40), &day(-10), json!({})).await;
    won(&app, &ada, "100", &day(-51), &day(-20), json!({})).await;
    won(&app, &ada, "100", &day(-500), &day(-400), json!({})).await;
    // Open without an expected close: Y (Trial 0.60, 500) opened 10 days ago
    // is expected in 21 days; X (Demo 0.40, 1,000) opened 5 days ago in 26.
    deal(&app, &ada, "Trial", "500", &day(-10), None, json!({})).await;
    deal(&app, &ada, "Demo", "1000", &day(-5), None, json!({})).await;
    let range = |from: i64, to: i64| {
        format!(
            "{}..{}",
            today + chrono::Duration::days(from),
            today + chrono::Duration::days(to)
        )
    };
    // [+21, +26): Y only (with a 30-day cycle it would fall on +20).
    let d = app.ok(PIPELINE, json!({ "p": range(21, 26) })).await;
    let all = &d["pipelineSummary"][0];
    assert_eq!(all["openDeals"], 1);
    assert_eq!(all["pipelineValue"], "500.00");
    assert_eq!(all["weightedPipeline"], "300.00");
    // [+21, +27): both, weighted 300 + 400.
    let d = app.ok(PIPELINE, json!({ "p": range(21, 27) })).await;
    assert_eq!(d["pipelineSummary"][0]["pipelineValue"], "1500.00");
    assert_eq!(d["pipelineSummary"][0]["weightedPipeline"], "700.00");
    let d = app.ok(ATTAINMENT, json!({ "p": range(21, 27) })).await;
    assert_eq!(d["quotaAttainment"]["rows"][0]["openPipeline"], "1500.00");
    assert_eq!(
        d["quotaAttainment"]["rows"][0]["weightedPipeline"],
        "700.00"
    );
}

const PERFORMANCE: &str = "query($p: Period!, $c: Period) { repPerformance(period: $p, compareTo: $c) { rep { name } current previous currentAttainment previousAttainment change quadrant } }";

async fn rep_performance_has_all_four_quadrants(app: TestApp) {
    // June 2025 against May 2025 (the previous month by default).
    // R1: quota 1,000, won 1,000 (May 500): high, improving -> RISING_STAR
    // R2: quota 1,000, won 1,500 (May 2,000): high, declining -> FALLING_STAR
    // R3: no quota, won 100 (May 0): the median of June closed-won over the
    //     five reps (100, 200, 700, 1,000, 1,500) is 700: low, improving
    //     -> IMPROVING_LAGGARD
    // R4: quota 1,000, won 200 (May 900): low, declining
    //     -> DETERIORATING_LAGGARD
    // R5: no quota, won 700 (May 0): 700 >= median 700 -> RISING_STAR
    let mut reps = Vec::new();
    for name in ["R1", "R2", "R3", "R4", "R5"] {
        reps.push(app.create_rep(name, None, None, json!({})).await);
    }
    for r in [&reps[0], &reps[1], &reps[3]] {
        app.set_quota(r, "2025-06", "1000").await;
    }
    let opened = "2025-01-01T00:00:00Z";
    for (rep, june, may) in [
        (&reps[0], "1000", Some("500")),
        (&reps[1], "1500", Some("2000")),
        (&reps[2], "100", None),
        (&reps[3], "200", Some("900")),
        (&reps[4], "700", None),
    ] {
        won(&app, rep, june, opened, "2025-06-15T12:00:00Z", json!({})).await;
        if let Some(may) = may {
            won(&app, rep, may, opened, "2025-05-15T12:00:00Z", json!({})).await;
        }
    }
    let d = app.ok(PERFORMANCE, json!({ "p": "2025-06" })).await;
    let rows = d["repPerformance"].as_array().unwrap();
    let quadrants: Vec<_> = rows
        .iter()
        .map(|r| r["quadrant"].as_str().unwrap())
        .collect();
    assert_eq!(
        quadrants,
        [
            "RISING_STAR",
            "FALLING_STAR",
            "IMPROVING_LAGGARD",
            "DETERIORATING_LAGGARD",
            "RISING_STAR"
        ]
    );
    // R1: (1,000 - 500) / 500 = 1.0, attainment 1.0; no May quota.
    assert_eq!(rows[0]["current"], "1000.00");
    assert_eq!(rows[0]["previous"], "500.00");
    close(&rows[0]["change"], 1.0);
    close(&rows[0]["currentAttainment"], 1.0);
    assert_eq!(rows[0]["previousAttainment"], Value::Null);
    // R2: -500 / 2,000 = -0.25; R3: previous 0 -> null; R4: -700 / 900.
    close(&rows[1]["change"], -0.25);
    close(&rows[1]["currentAttainment"], 1.5);
    assert_eq!(rows[2]["change"], Value::Null);
    assert_eq!(rows[2]["currentAttainment"], Value::Null);
    close(&rows[3]["change"], -700.0 / 900.0);
    close(&rows[3]["currentAttainment"], 0.2);
    // An explicit compareTo gives the same comparison.
    let d2 = app
        .ok(
            PERFORMANCE,
            json!({ "p": "2025-06", "c": "2025-05-01..2025-06-01" }),
        )
        .await;
    assert_eq!(d2, d);
    // Against April (nothing won): everyone improved; previous 0.
    let d = app
        .ok(PERFORMANCE, json!({ "p": "2025-06", "c": "2025-04" }))
        .await;
    let quadrants: Vec<_> = d["repPerformance"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["quadrant"].as_str().unwrap())
        .collect();
    assert_eq!(
        quadrants,
        [
            "RISING_STAR",
            "RISING_STAR",
            "IMPROVING_LAGGARD",
            "IMPROVING_LAGGARD",
            "RISING_STAR"
        ]
    );
    // R4 as REP: alone, the median rule does not apply (R4 has a quota).
    let rep = app.token(Role::Rep, Some(id_num(&reps[3])));
    let d = app
        .ok_as(&rep, PERFORMANCE, json!({ "p": "2025-06" }))
        .await;
    assert_eq!(d["repPerformance"].as_array().unwrap().len(), 1);
    assert_eq!(d["repPerformance"][0]["quadrant"], "DETERIORATING_LAGGARD");
}

const FUNNEL: &str = "query($p: Period!, $f: DealFilter) { funnel(period: $p, filter: $f) { stage { name } entered advanced lostHere conversionRate avgDaysInStage } }";

async fn funnel_shows_the_leak_at_demo(app: TestApp) {
    let ada = app.create_rep("Ada", None, None, json!({})).await;
    let ben = app.create_rep("Ben", None, None, json!({})).await;
    // February 2025; every deal starts in Discovery when opened.
    // D1: Discovery 02-01, Qualified 02-05, Demo 02-10, Won 02-20
    // D2: Discovery 02-01, Qualified 02-03, Demo 02-11, Lost 02-15
    // D3: Discovery 02-02, Qualified 02-06, Demo 02-12, Lost 02-22
    // D4: Discovery 02-02, Lost 02-04
    // D5 (Ben): Discovery 01-15, Qualified 01-20, Demo 02-03, Trial 03-05,
    //     Won 03-10
    let new = |owner: String, day: &'static str| {
        let app = &app;
        async move {
            app.create_deal(json!({
                "name": format!("deal {day}"), "amount": "100", "ownerId": owner,
                "openedAt": format!("{day}T12:00:00Z"),
            }))
            .await
        }
    };
    let at = |day: &str| format!("{day}T12:00:00Z");
    let d1 = new(ada.clone(), "2025-02-01").await;
    for (s, day) in [
        ("Qualified", "2025-02-05"),
        ("Demo", "2025-02-10"),
        ("Won", "2025-02-20"),
    ] {
        app.move_deal(&d1, s, &at(day)).await;
    }
    let d2 = new(ada.clone(), "2025-02-01").await;
    for (s, day) in [
        ("Qualified", "2025-02-03"),
        ("Demo", "2025-02-11"),
        ("Lost", "2025-02-15"),
    ] {
        app.move_deal(&d2, s, &at(day)).await;
    }
    let d3 = new(ada.clone(), "2025-02-02").await;
    for (s, day) in [
        ("Qualified", "2025-02-06"),
        ("Demo", "2025-02-12"),
        ("Lost", "2025-02-22"),
    ] {
        app.move_deal(&d3, s, &at(day)).await;
    }
    let d4 = new(ada.clone(), "2025-02-02").await;
    app.move_deal(&d4, "Lost", &at("2025-02-04")).await;
    let d5 = new(ben.clone(), "2025-01-15").await;
    for (s, day) in [
        ("Qualified", "2025-01-20"),
        ("Demo", "2025-02-03"),
        ("Trial", "2025-03-05"),
        ("Won", "2025-03-10"),
    ] {
        app.move_deal(&d5, s, &at(day)).await;
    }
    let d = app.ok(FUNNEL, json!({ "p": "2025-02" })).await;
    let steps = d["funnel"].as_array().unwrap();
    let names: Vec<_> = steps
        .iter()
        .map(|s| s["stage"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Discovery",
            "Qualified",
            "Demo",
            "Trial",
            "Final Call",
            "Won",
            "Lost"
        ]
    );
    let counts = |s: &Value| {
        (
            s["entered"].as_i64().unwrap(),
            s["advanced"].as_i64().unwrap(),
            s["lostHere"].as_i64().unwrap(),
        )
    };
    // Discovery: D1-D4 entered (D5 in January); D1-D3 moved on, D4 was lost
    // from it. Days 4, 2, 4, 2 -> 3.
    assert_eq!(counts(&steps[0]), (4, 3, 1));
    close(&steps[0]["conversionRate"], 0.75);
    close(&steps[0]["avgDaysInStage"], 3.0);
    // Qualified: D1-D3, all moved on; days 5, 8, 6 -> 19 / 3.
    assert_eq!(counts(&steps[1]), (3, 3, 0));
    close(&steps[1]["avgDaysInStage"], 19.0 / 3.0);
    // Demo, the leak: D1, D2, D3 and D5 entered; D1 (won) and D5 (Trial,
    // in March) moved on, D2 and D3 were lost here. Days 10, 4, 10, 30.
    assert_eq!(counts(&steps[2]), (4, 2, 2));
    close(&steps[2]["conversionRate"], 0.5);
    close(&steps[2]["avgDaysInStage"], 13.5);
    // Trial: D5 entered in March: nothing in February.
    assert_eq!(counts(&steps[3]), (0, 0, 0));
    assert_eq!(steps[3]["conversionRate"], Value::Null);
    assert_eq!(steps[3]["avgDaysInStage"], Value::Null);
    // Won: D1; Lost: D4, D2, D3. Closed stages have no time in stage.
    assert_eq!(counts(&steps[5]), (1, 0, 0));
    assert_eq!(steps[5]["avgDaysInStage"], Value::Null);
    assert_eq!(counts(&steps[6]), (3, 0, 0));
    // Nothing converts out of an end: WON and LOST have no conversion
    // rate (null, not 0), though deals entered them (issue 13).
    assert_eq!(steps[5]["conversionRate"], Value::Null);
    assert_eq!(steps[6]["conversionRate"], Value::Null);

    // The filter (and a REP's scope) narrow the deals: Ben's D5 alone.
    let only_ben = json!({ "p": "2025-02", "f": { "ownerIds": [ben] } });
    let d = app.ok(FUNNEL, only_ben).await;
    assert_eq!(counts(&d["funnel"][0]), (0, 0, 0));
    assert_eq!(counts(&d["funnel"][2]), (1, 1, 0));
    let rep = app.token(Role::Rep, Some(id_num(&ben)));
    let d = app.ok_as(&rep, FUNNEL, json!({ "p": "2025-02" })).await;
    assert_eq!(counts(&d["funnel"][2]), (1, 1, 0));
    close(&d["funnel"][2]["avgDaysInStage"], 30.0);
}

async fn funnel_counts_days_so_far_for_deals_still_in_a_stage(app: TestApp) {
    let ada = app.create_rep("Ada", None, None, json!({})).await;
    let today = chrono::Utc::now().date_naive();
    let day = |offset: i64| {
        (today + chrono::Duration::days(offset))
            .format("%Y-%m-%dT00:30:00Z")
            .to_string()
    };
    // A: Discovery 10 days ago, still there (10 days so far).
    // B: Discovery 4 days ago, Qualified yesterday (3 days in Discovery),
    //    still in Qualified (1 day so far).
    for (opened, moved) in [(-10, None), (-4, Some(-1))] {
        let id = app
            .create_deal(
                json!({ "name": "d", "amount": "100", "ownerId": ada, "openedAt": day(opened) }),
            )
            .await;
        if let Some(m) = moved {
            app.move_deal(&id, "Qualified", &day(m)).await;
        }
    }
    let period = format!(
        "{}..{}",
        today - chrono::Duration::days(10),
        today + chrono::Duration::days(1)
    );
    let d = app.ok(FUNNEL, json!({ "p": period })).await;
    let steps = d["funnel"].as_array().unwrap();
    // Discovery: 2 entered, B moved on; (10 + 3) / 2 days.
    assert_eq!(
        (steps[0]["entered"].as_i64(), steps[0]["advanced"].as_i64()),
        (Some(2), Some(1))
    );
    close(&steps[0]["avgDaysInStage"], 6.5);
    // Qualified: B, 1 day so far.
    assert_eq!(steps[1]["entered"], 1);
    close(&steps[1]["avgDaysInStage"], 1.0);
}

const SERIES: &str = "query($m: Metric!, $p: Period!, $g: Granularity!, $d: Dimension) { metricSeries(metric: $m, period: $p, granularity: $g, groupBy: $d) { bucket start key { label } value change } }";

async fn metric_series_month_by_month_with_changes(app: TestApp) {
    let ada = app.create_rep("Ada", None, None, json!({})).await;
    let ben = app.create_rep("Ben", None, None, json!({})).await;
    let opened = "2024-12-01T12:00:00Z";
    // Q1 2025:
    //   January: Ada won 1,000 (01-15); Ben lost 400 (01-20)
    //   February: Ada won 1,000 (Mon 02-10), lost 400 (02-11); Ben won
    //     2,000 (Thu 02-20) and 3,000 (Fri 02-28)
    //   March: nothing closed
    // Opened in Q1 (NEW_PIPELINE): 700 on 02-10, 300 on 03-01.
    won(
        &app,
        &ada,
        "1000",
        opened,
        "2025-01-15T12:00:00Z",
        json!({}),
    )
    .await;
    lost(&app, &ben, "400", opened, "2025-01-20T12:00:00Z", json!({})).await;
    won(
        &app,
        &ada,
        "1000",
        opened,
        "2025-02-10T12:00:00Z",
        json!({}),
    )
    .await;
    lost(&app, &ada, "400", opened, "2025-02-11T12:00:00Z", json!({})).await;
    won(
        &app,
        &ben,
        "2000",
        opened,
        "2025-02-20T12:00:00Z",
        json!({}),
    )
    .await;
    won(
        &app,
        &ben,
        "3000",
        opened,
        "2025-02-28T12:00:00Z",
        json!({}),
    )
    .await;
    // And in Q2: Ben won 800 on 2025-06-30 late in the day (UTC).
    won(&app, &ben, "800", opened, "2025-06-30T23:00:00Z", json!({})).await;
    deal(
        &app,
        &ada,
        "Demo",
        "700",
        "2025-02-10T12:00:00Z",
        None,
        json!({}),
    )
    .await;
    deal(
        &app,
        &ben,
        "Demo",
        "300",
        "2025-03-01T12:00:00Z",
        None,
        json!({}),
    )
    .await;

    let series = |m: &str, p: &str, g: &str, d: Option<&str>| {
        let app = &app;
        let vars = json!({ "m": m, "p": p, "g": g, "d": d });
        async move {
            app.ok(SERIES, vars).await["metricSeries"]
                .as_array()
                .unwrap()
                .clone()
        }
    };
    // WIN_RATE by month: January 1 / 2 = 0.5; February 3 won / 1 lost =
    // 0.75, change (0.75 - 0.5) / 0.5 = 0.5; March nothing: null, change null.
    let s = series("WIN_RATE", "2025-Q1", "MONTH", None).await;
    let buckets: Vec<_> = s.iter().map(|p| p["bucket"].as_str().unwrap()).collect();
    assert_eq!(buckets, ["2025-01", "2025-02", "2025-03"]);
    assert_eq!(s[0]["start"], "2025-01-01");
    assert_eq!(s[0]["key"]["label"], "All");
    close(&s[0]["value"], 0.5);
    assert_eq!(s[0]["change"], Value::Null);
    close(&s[1]["value"], 0.75);
    close(&s[1]["change"], 0.5);
    assert_eq!(s[2]["value"], Value::Null);
    assert_eq!(s[2]["change"], Value::Null);

    // CLOSED_WON_AMOUNT by rep, every bucket for every key:
    //   Ada 1,000, 1,000, 0 -> changes null, 0, -1
    //   Ben 0, 5,000, 0 -> changes null, null (previous 0), -1
    let s = series("CLOSED_WON_AMOUNT", "2025-Q1", "MONTH", Some("REP")).await;
    assert_eq!(s.len(), 6);
    let vals: Vec<_> = s
        .iter()
        .map(|p| {
            (
                p["key"]["label"].as_str().unwrap(),
                p["value"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        vals,
        [
            ("Ada", 1000.0),
            ("Ada", 1000.0),
            ("Ada", 0.0),
            ("Ben", 0.0),
            ("Ben", 5000.0),
            ("Ben", 0.0)
        ]
    );
    let changes: Vec<_> = s.iter().map(|p| p["change"].as_f64()).collect();
    assert_eq!(
        changes,
        [None, Some(0.0), Some(-1.0), None, None, Some(-1.0)]
    );

    // NEW_PIPELINE: January 0, February 700, March 300 (-400 / 700).
    let s = series("NEW_PIPELINE", "2025-Q1", "MONTH", None).await;
    let vals: Vec<_> = s.iter().map(|p| p["value"].as_f64().unwrap()).collect();
    assert_eq!(vals, [0.0, 700.0, 300.0]);
    assert_eq!(s[1]["change"], Value::Null);
    close(&s[2]["change"], -400.0 / 700.0);

    // DEALS_WON by ISO week in February: 2025-02-01 is a Saturday, so the
    // first bucket is the tail of W05 and the last the start of W09.
    let s = series("DEALS_WON", "2025-02", "WEEK", None).await;
    let got: Vec<_> = s
        .iter()
        .map(|p| (p["bucket"].as_str().unwrap(), p["value"].as_f64().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("2025-02-01..2025-02-03", 0.0),
            ("2025-W06", 0.0),
            ("2025-W07", 1.0),
            ("2025-W08", 1.0),
            ("2025-02-24..2025-03-01", 1.0),
        ]
    );
    // By quarter over the year: Q1 won 1,000 + 1,000 + 2,000 + 3,000 =
    // 7,000 in 4 deals (mean 1,750), Q2 800 in 1, Q3-Q4 nothing (null).
    let s = series("DEALS_WON", "2025", "QUARTER", None).await;
    let got: Vec<_> = s
        .iter()
        .map(|p| (p["bucket"].as_str().unwrap(), p["value"].as_f64().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("2025-Q1", 4.0),
            ("2025-Q2", 1.0),
            ("2025-Q3", 0.0),
            ("2025-Q4", 0.0)
        ]
    );
    close(&s[1]["change"], -0.75);
    let s = series("AVG_DEAL_SIZE", "2025", "QUARTER", None).await;
    close(&s[0]["value"], 1750.0);
    close(&s[1]["value"], 800.0);
    assert_eq!(s[2]["value"], Value::Null);
    // Cycles from 2024-12-01: 45, 71, 81, 89 and 211 days -> 497 / 5.
    let s = series("AVG_SALES_CYCLE_DAYS", "2025", "YEAR", None).await;
    assert_eq!(s.len(), 1);
    assert_eq!(s[0]["bucket"], "2025");
    close(&s[0]["value"], 99.4);
    // DEALS_LOST by month for Ben as REP: January 1, then 0, 0.
    let rep = app.token(Role::Rep, Some(id_num(&ben)));
    let d = app
        .ok_as(
            &rep,
            SERIES,
            json!({ "m": "DEALS_LOST", "p": "2025-Q1", "g": "MONTH" }),
        )
        .await;
    let vals: Vec<_> = d["metricSeries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    assert_eq!(vals, [1.0, 0.0, 0.0]);
}

const HEALTH: &str = "query($s: Int, $n: Int) { dataHealth(staleAfterDays: $s) { openDealsPastExpectedClose openDealsWithoutExpectedClose openDealsNotUpdated repsWithoutTerritory inactiveRepsOwningOpenDeals issues(first: $n) { kind entityType entityId message } } }";

async fn data_health_counts_and_issues(app: TestApp) {
    let west = app.create_territory("West", None, None).await;
    let ada = app.create_rep("Ada", None, Some(&west), json!({})).await;
    let nat = app.create_rep("Nat", None, None, json!({})).await;
    let ida = app.create_rep("Ida", None, Some(&west), json!({})).await;
    let opened = "2024-12-01T12:00:00Z";
    // Ada: one open deal expected on 2025-01-01 (past), one without an
    // expected close; a won deal (closed: never an issue). Ida: one open
    // deal expected in 2099, then Ida leaves (inactive). Nat: no territory.
    let past = deal(
        &app,
        &ada,
        "Demo",
        "100",
        opened,
        None,
        json!({ "name": "Past", "expectedCloseDate": "2025-01-01" }),
    )
    .await;
    let undated = deal(
        &app,
        &ada,
        "Demo",
        "100",
        opened,
        None,
        json!({ "name": "Undated" }),
    )
    .await;
    won(&app, &ada, "100", opened, "2025-01-01T00:00:00Z", json!({})).await;
    deal(
        &app,
        &ida,
        "Demo",
        "100",
        opened,
        None,
        json!({ "expectedCloseDate": "2099-01-01" }),
    )
    .await;
    app.ok(
        "mutation($id: ID!) { updateRep(id: $id, patch: { active: false }) { id } }",
        json!({ "id": ida }),
    )
    .await;
    // Counts: past 1, undated 1, none stale within 30 days (all just
    // written), Nat without territory, Ida inactive with an open deal.
    let d = app.ok(HEALTH, json!({})).await;
    let h = &d["dataHealth"];
    assert_eq!(h["openDealsPastExpectedClose"], 1);
    assert_eq!(h["openDealsWithoutExpectedClose"], 1);
    assert_eq!(h["openDealsNotUpdated"], 0);
    assert_eq!(h["repsWithoutTerritory"], 1);
    assert_eq!(h["inactiveRepsOwningOpenDeals"], 1);
    let issues = h["issues"].as_array().unwrap();
    assert_eq!(
        issues
            .iter()
            .map(|i| (
                i["kind"].as_str().unwrap(),
                i["entityType"].as_str().unwrap(),
                i["entityId"].as_str().unwrap()
            ))
            .collect::<Vec<_>>(),
        [
            ("OPEN_DEAL_PAST_EXPECTED_CLOSE", "Deal", past.as_str()),
            ("OPEN_DEAL_WITHOUT_EXPECTED_CLOSE", "Deal", undated.as_str()),
            ("REP_WITHOUT_TERRITORY", "Rep", nat.as_str()),
            ("INACTIVE_REP_OWNS_OPEN_DEALS", "Rep", ida.as_str()),
        ]
    );
    assert_eq!(
        issues[0]["message"],
        "Open deal \"Past\" was expected to close on 2025-01-01"
    );
    assert_eq!(
        issues[3]["message"],
        "Inactive rep Ida still owns 1 open deals"
    );
    // staleAfterDays 0: every open deal (3) was updated before now; first
    // caps the issues.
    let d = app.ok(HEALTH, json!({ "s": 0, "n": 2 })).await;
    assert_eq!(d["dataHealth"]["openDealsNotUpdated"], 3);
    assert_eq!(d["dataHealth"]["issues"].as_array().unwrap().len(), 2);
    // Ada as REP: her own deals and herself only.
    let rep = app.token(Role::Rep, Some(id_num(&ada)));
    let d = app.ok_as(&rep, HEALTH, json!({ "s": 0 })).await;
    let h = &d["dataHealth"];
    assert_eq!(
        (
            h["openDealsPastExpectedClose"].as_i64(),
            h["openDealsWithoutExpectedClose"].as_i64(),
            h["openDealsNotUpdated"].as_i64(),
            h["repsWithoutTerritory"].as_i64(),
            h["inactiveRepsOwningOpenDeals"].as_i64()
        ),
        (Some(1), Some(1), Some(2), Some(0), Some(0))
    );
    let admin = app.admin_token();
    assert_eq!(
        app.error_code(&admin, HEALTH, json!({ "s": -1 })).await,
        "BAD_USER_INPUT"
    );
}

async fn playbook_effectiveness_in_one_batch(app: TestApp) {
    let ada = app.create_rep("Ada", None, None, json!({})).await;
    let ben = app.create_rep("Ben", None, None, json!({})).await;
    let mut playbooks = Vec::new();
    for name in ["P1", "P2"] {
        let d = app
            .ok(
                "mutation($i: PlaybookInput!) { createPlaybook(input: $i) { id } }",
                json!({ "i": { "name": name } }),
            )
            .await;
        playbooks.push(d["createPlaybook"]["id"].as_str().unwrap().to_owned());
    }
    let with = |p: &str| json!({ "playbookId": p });
    // Closed in March 2025:
    //   P1: won in 10 days, won in 30 days (Ben's), lost -> 3 deals, 2/3,
    //       mean cycle 20
    //   P2: won in 40 days, lost -> 2 deals, 1/2, 40
    //   no playbook: 2 lost
    // P1's baseline (P2 + none): 1 won / 3 lost = 0.25, cycle 40.
    // P2's baseline (P1 + none): 2 won / 3 lost = 0.4, cycle 20.
    // A P1 deal won in April is outside.
    let mar = "2025-03-21T12:00:00Z";
    won(
        &app,
        &ada,
        "100",
        "2025-03-11T08:00:00Z",
        mar,
        with(&playbooks[0]),
    )
    .await;
    won(
        &app,
        &ben,
        "100",
        "2025-02-19T08:00:00Z",
        mar,
        with(&playbooks[0]),
    )
    .await;
    lost(
        &app,
        &ada,
        "100",
        "2025-02-01T08:00:00Z",
        mar,
        with(&playbooks[0]),
    )
    .await;
    won(
        &app,
        &ada,
        "100",
        "2025-02-09T08:00:00Z",
        mar,
        with(&playbooks[1]),
    )
    .await;
    lost(
        &app,
        &ada,
        "100",
        "2025-02-01T08:00:00Z",
        mar,
        with(&playbooks[1]),
    )
    .await;
    lost(&app, &ada, "100", "2025-02-01T08:00:00Z", mar, json!({})).await;
    lost(&app, &ben, "100", "2025-02-01T08:00:00Z", mar, json!({})).await;
    won(
        &app,
        &ada,
        "100",
        "2025-02-01T08:00:00Z",
        "2025-04-02T12:00:00Z",
        with(&playbooks[0]),
    )
    .await;

    // Win rates by playbook: P1 2 / 1, P2 1 / 1, then the deals without one
    // (0 / 2) last.
    let d = app
        .ok(WIN_RATES, json!({ "p": "2025-03", "g": "PLAYBOOK" }))
        .await;
    let got: Vec<_> = d["winRates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["key"]["label"].as_str().unwrap(),
                r["won"].as_i64().unwrap(),
                r["lost"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, [("P1", 2, 1), ("P2", 1, 1), ("No playbook", 0, 2)]);
    assert_eq!(d["winRates"][0]["key"]["id"], playbooks[0].as_str());

    let q = "query($p: Period!) { playbooks { name effectiveness(period: $p) { deals won lost winRate baselineWinRate avgCycleDays baselineAvgCycleDays } } }";
    let before = app.statements().await;
    let d = app.ok(q, json!({ "p": "2025-03" })).await;
    let used = app.statements().await - before;
    // The playbook list and one grouped statement for all effectiveness
    // fields (plus at most one for the request itself).
    assert!(used <= 3, "{used} statements");
    let rows = d["playbooks"].as_array().unwrap();
    let p1 = rows.iter().find(|r| r["name"] == "P1").unwrap();
    let p2 = rows.iter().find(|r| r["name"] == "P2").unwrap();
    let e = &p1["effectiveness"];
    assert_eq!(
        (e["deals"].as_i64(), e["won"].as_i64(), e["lost"].as_i64()),
        (Some(3), Some(2), Some(1))
    );
    close(&e["winRate"], 2.0 / 3.0);
    close(&e["baselineWinRate"], 0.25);
    close(&e["avgCycleDays"], 20.0);
    close(&e["baselineAvgCycleDays"], 40.0);
    let e = &p2["effectiveness"];
    assert_eq!(
        (e["deals"].as_i64(), e["won"].as_i64(), e["lost"].as_i64()),
        (Some(2), Some(1), Some(1))
    );
    close(&e["winRate"], 0.5);
    close(&e["baselineWinRate"], 0.4);
    close(&e["avgCycleDays"], 40.0);
    close(&e["baselineAvgCycleDays"], 20.0);
    // Ben as REP: his P1 win only; baseline his lost deal without one.
    let rep = app.token(Role::Rep, Some(id_num(&ben)));
    let d = app.ok_as(&rep, q, json!({ "p": "2025-03" })).await;
    let p1 = d["playbooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "P1")
        .unwrap()
        .clone();
    assert_eq!(p1["effectiveness"]["deals"], 1);
    close(&p1["effectiveness"]["winRate"], 1.0);
    close(&p1["effectiveness"]["baselineWinRate"], 0.0);
    // INTEGRATION reads playbooks but not their metrics.
    let integration = app.token(Role::Integration, None);
    assert_eq!(
        app.error_code(&integration, q, json!({ "p": "2025-03" }))
            .await,
        "FORBIDDEN"
    );
}

async fn metrics_refuse_integration_and_bad_input(app: TestApp) {
    let integration = app.token(Role::Integration, None);
    let admin = app.admin_token();
    let queries = [
        "{ winRates(period: \"2025-03\") { won } }",
        "{ quotaAttainment(period: \"2025-03\") { totalQuota } }",
        "{ pipelineSummary(period: \"2025-03\") { openDeals } }",
        "{ funnel(period: \"2025-03\") { entered } }",
        "{ repPerformance(period: \"2025-03\") { quadrant } }",
        "{ commissions(period: \"2025-03\") { earned } }",
        "{ metricSeries(metric: WIN_RATE, period: \"2025\", granularity: MONTH) { value } }",
        "{ dataHealth { repsWithoutTerritory } }",
    ];
    for q in queries {
        assert_eq!(
            app.error_code(&integration, q, json!({})).await,
            "FORBIDDEN",
            "{q}"
        );
        // A handful of aggregate statements per request, never one per row.
        let before = app.statements().await;
        app.ok(q, json!({})).await;
        let used = app.statements().await - before;
        assert!(used <= 8, "{q}: {used} statements");
        let viewer = app.token(Role::Viewer, None);
        app.ok_as(&viewer, q, json!({})).await;
    }
    for bad in ["2025-13", "2025-Q5", "2025-03-01..2025-02-01", "March"] {
        assert_eq!(
            app.error_code(&admin, WIN_RATES, json!({ "p": bad })).await,
            "BAD_USER_INPUT",
            "{bad}"
        );
    }
    assert_eq!(
        app.error_code(
            &admin,
            "{ winRates(period: \"2025-W60\") { won } }",
            json!({})
        )
        .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        app.error_code(&admin, PERFORMANCE, json!({ "p": "2025-06", "c": "nope" }))
            .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        app.error_code(
            &admin,
            WIN_RATES,
            json!({ "p": "2025-03", "f": { "ownerIds": ["x"] } })
        )
        .await,
        "BAD_USER_INPUT"
    );
}
