//! S&OP second pass over HTTP: the monthly cycle on a territory tree (plan,
//! revise the next month, compare, roll up, approve, release), demand from
//! percentages and from the pipeline, and every bad input of it. The
//! application's clock is set (TestApp::set_clock) so month boundaries are
//! fixed; every number is worked out by hand in the comments.
use api::auth::Role;
use serde_json::{json, Value};

use crate::db_tests;
use crate::helpers::{id_num, TestApp};
use crate::webhooks::{create_hook, deliveries};

db_tests!(
    monthly_cycle_on_the_territory_tree,
    demand_seeded_from_the_pipeline,
    second_pass_bad_inputs_write_nothing,
);

const CREATE: &str =
    "mutation($i: CreateSopPlanInput!) { createSopPlan(input: $i) { id version stage plannedFrom } }";
const ADVANCE: &str = "mutation($id: ID!, $v: Int!) { advanceSopPlan(id: $id, expectedVersion: $v) { id stage version } }";
const RELEASE: &str = "mutation($id: ID!, $v: Int!) { releaseSopPlan(id: $id, expectedVersion: $v) { id stage version } }";
const DEMAND: &str = "mutation($id: ID!, $l: [SopDemandLineInput!]!) { setSopDemand(planId: $id, lines: $l) { id version } }";
const ADJUST: &str = "mutation($id: ID!, $a: [SopAdjustmentInput!]!) { addSopAdjustments(planId: $id, adjustments: $a) { id version } }";
const APPROVE: &str = "mutation($id: ID!, $v: Int!, $n: String) { approveSopPlan(id: $id, expectedVersion: $v, note: $n) { id version } }";
const REVISE: &str =
    "mutation($id: ID!) { reviseSopPlan(id: $id) { id stage version revision plannedFrom } }";
const SEED: &str = "mutation($id: ID!, $n: String!) { seedSopDemandFromPipeline(planId: $id, note: $n) { id version } }";
const COMPARE: &str = "query($f: ID!, $t: ID!, $l: Int) { sopPlanComparison(fromId: $f, toId: $t, rollUpTo: $l) { \
    from { id } to { id } changes { territory { name } month from { demand supply adjustments gap } \
    to { demand supply adjustments gap } demandChange supplyChange adjustmentsChange gapChange } } }";

async fn won(app: &TestApp, owner: &str, territory: Option<&str>, amount: &str, at: &str) {
    let stage = app.stage("Won").await;
    app.create_deal(json!({
        "name": format!("Won {amount} {at}"),
        "amount": amount,
        "ownerId": owner,
        "territoryId": territory,
        "stageId": stage,
        "openedAt": "2024-01-02T00:00:00Z",
        "closedAt": at,
    }))
    .await;
}

async fn version(app: &TestApp, id: &str) -> i64 {
    app.ok(
        "query($id: ID!) { sopPlan(id: $id) { version } }",
        json!({ "id": id }),
    )
    .await["sopPlan"]["version"]
        .as_i64()
        .unwrap()
}

async fn advance(app: &TestApp, id: &str) -> i64 {
    let v = version(app, id).await;
    app.ok(ADVANCE, json!({ "id": id, "v": v })).await["advanceSopPlan"]["version"]
        .as_i64()
        .unwrap()
}

/// Lines of one kind as [territory, month, amount, note, generated, carried].
async fn lines(app: &TestApp, id: &str, kind: &str) -> Vec<Value> {
    let d = app
        .ok(
            "query($id: ID!, $k: SopLineKind) { sopPlan(id: $id) { lines(kind: $k) { territory { name } month amount note generated carried } } }",
            json!({ "id": id, "k": kind }),
        )
        .await;
    d["sopPlan"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            json!([
                l["territory"]["name"],
                l["month"],
                l["amount"],
                l["note"],
                l["generated"],
                l["carried"]
            ])
        })
        .collect()
}

/// Gaps as [territory, month, demand, supply, headcount, adjustments, gap].
async fn gaps(app: &TestApp, id: &str, level: Option<i64>) -> Vec<Value> {
    let d = app
        .ok(
            "query($id: ID!, $l: Int) { sopPlan(id: $id) { gaps(rollUpTo: $l) { territory { name } month demand supply headcount adjustments gap } } }",
            json!({ "id": id, "l": level }),
        )
        .await;
    d["sopPlan"]["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            json!([
                g["territory"]["name"],
                g["month"],
                g["demand"],
                g["supply"],
                g["headcount"],
                g["adjustments"],
                g["gap"]
            ])
        })
        .collect()
}

/// Comparison rows as [territory, month, [from d s a g], [to d s a g], [changes d s a g]].
async fn compare(app: &TestApp, from: &str, to: &str, level: Option<i64>) -> Vec<Value> {
    let d = app
        .ok(COMPARE, json!({ "f": from, "t": to, "l": level }))
        .await;
    assert_eq!(d["sopPlanComparison"]["from"]["id"], from);
    assert_eq!(d["sopPlanComparison"]["to"]["id"], to);
    let f = |x: &Value| json!([x["demand"], x["supply"], x["adjustments"], x["gap"]]);
    d["sopPlanComparison"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            json!([
                r["territory"]["name"],
                r["month"],
                f(&r["from"]),
                f(&r["to"]),
                [
                    r["demandChange"],
                    r["supplyChange"],
                    r["adjustmentsChange"],
                    r["gapChange"]
                ]
            ])
        })
        .collect()
}

/// The organisation of the monthly cycle.
///
/// Territory tree: Americas (level 0) > East, West (level 1); West > Bay
/// (level 2); EMEA (level 0) has nothing.
/// Reps: Ann (East) and Bob (Bay), fully ramped, one-month quotas for
/// January 2025 of 10,000 and 6,000 (the latest one counts for February and
/// March too); Dora, the Americas director, does not carry a quota
/// (quotaCarrying false, a 50,000 quota row): neither capacity nor headcount.
/// History (written on 15 January 2025): East won 3,000 in October, 3,000 in
/// November, 6,000 in December 2024 and 1,000 on 10 January; Bay 3,000 in
/// December.
struct Org {
    americas: String,
    east: String,
    bay: String,
    ann: String,
    bob: String,
}

async fn org(app: &TestApp) -> Org {
    let americas = app.create_territory("Americas", None, None).await;
    let east = app.create_territory("East", None, Some(&americas)).await;
    let west = app.create_territory("West", None, Some(&americas)).await;
    let bay = app.create_territory("Bay", None, Some(&west)).await;
    app.create_territory("EMEA", None, None).await;
    let full = json!({ "hiredAt": "2023-01-01", "rampMonths": 0 });
    let ann = app.create_rep("Ann", None, Some(&east), full.clone()).await;
    let bob = app.create_rep("Bob", None, Some(&bay), full).await;
    let dora = app
        .create_rep(
            "Dora",
            None,
            Some(&americas),
            json!({ "hiredAt": "2020-01-01", "rampMonths": 0, "quotaCarrying": false }),
        )
        .await;
    app.set_quota(&ann, "2025-01", "10000").await;
    app.set_quota(&bob, "2025-01", "6000").await;
    app.set_quota(&dora, "2025-01", "50000").await;
    won(app, &ann, Some(&east), "3000", "2024-10-10T10:00:00Z").await;
    won(app, &ann, Some(&east), "3000", "2024-11-10T10:00:00Z").await;
    won(app, &ann, Some(&east), "6000", "2024-12-10T10:00:00Z").await;
    won(app, &ann, Some(&east), "1000", "2025-01-10T10:00:00Z").await;
    won(app, &bob, Some(&bay), "3000", "2024-12-12T10:00:00Z").await;
    Org {
        americas,
        east,
        bay,
        ann,
        bob,
    }
}

async fn monthly_cycle_on_the_territory_tree(app: TestApp) {
    app.set_clock("2025-01-15T12:00:00Z");
    let o = org(&app).await;
    let ops = app.token(Role::Ops, None);
    let cfo = app.token_for("cfo", Role::Admin);
    let vp = app.token_for("vp-sales", Role::Ops);
    let (hook, _) = create_hook(
        &app,
        "http://127.0.0.1:9/hook",
        json!(["SOP_PLAN_APPROVED"]),
    )
    .await;

    // --- Revision 1, made on 15 January 2025 12:00: every month is planned
    // (January is the current month, not over).
    let created = app
        .ok_as(
            &ops,
            CREATE,
            json!({ "i": { "name": "Q1", "horizonStart": "2025-01-01", "horizonMonths": 3,
                           "lookbackMonths": 3, "approvers": ["vp-sales", "cfo"] } }),
        )
        .await;
    let p1 = created["createSopPlan"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created["createSopPlan"]["plannedFrom"], "2025-01-01");
    // ACTUAL: Oct..Dec 2024 (January's 1,000 is not in the lookback).
    assert_eq!(
        lines(&app, &p1, "ACTUAL").await,
        [
            json!([
                "Bay",
                "2024-12-01",
                "3000.00",
                "Closed-won in 2024-12",
                true,
                false
            ]),
            json!([
                "East",
                "2024-10-01",
                "3000.00",
                "Closed-won in 2024-10",
                true,
                false
            ]),
            json!([
                "East",
                "2024-11-01",
                "3000.00",
                "Closed-won in 2024-11",
                true,
                false
            ]),
            json!([
                "East",
                "2024-12-01",
                "6000.00",
                "Closed-won in 2024-12",
                true,
                false
            ]),
        ]
    );
    // BASELINE: run rate over Oct..Dec 2024, the whole months before the
    // current one: East 12,000 / 3 = 4,000 (above January's 1,000 so far);
    // Bay 3,000 / 3 = 1,000.
    let baseline: Vec<Value> = lines(&app, &p1, "BASELINE")
        .await
        .into_iter()
        .map(|l| json!([l[0], l[1], l[2]]))
        .collect();
    assert_eq!(
        baseline,
        [
            json!(["Bay", "2025-01-01", "1000.00"]),
            json!(["Bay", "2025-02-01", "1000.00"]),
            json!(["Bay", "2025-03-01", "1000.00"]),
            json!(["East", "2025-01-01", "4000.00"]),
            json!(["East", "2025-02-01", "4000.00"]),
            json!(["East", "2025-03-01", "4000.00"]),
        ]
    );

    // --- DEMAND_PLANNING on 16 January: East February +20% for a launch
    // (4,000 x 1.2 = 4,800), Bay March -12.5% (1,000 x 0.875 = 875), and
    // 2,000 on the Americas region itself (a line on a parent is its own).
    app.set_clock("2025-01-16T12:00:00Z");
    assert_eq!(advance(&app, &p1).await, 2);
    let d = app
        .ok_as(
            &ops,
            DEMAND,
            json!({ "id": p1, "l": [
                { "territoryId": o.east, "month": "2025-02-01", "changePercent": "20", "note": "Launch" },
                { "territoryId": o.bay, "month": "2025-03-01", "changePercent": "-12.5" },
                { "territoryId": o.americas, "month": "2025-03-01", "amount": "2000", "note": "Key account" },
            ] }),
        )
        .await;
    assert_eq!(d["setSopDemand"]["version"], 3);
    assert_eq!(
        lines(&app, &p1, "DEMAND").await,
        [
            json!([
                "Americas",
                "2025-03-01",
                "2000.00",
                "Key account",
                false,
                false
            ]),
            json!([
                "Bay",
                "2025-03-01",
                "875.00",
                "-12.5% of the baseline 1000.00",
                false,
                false
            ]),
            json!([
                "East",
                "2025-02-01",
                "4800.00",
                "Launch (+20% of the baseline 4000.00)",
                false,
                false
            ]),
        ]
    );

    // --- SUPPLY_PLANNING on 20 January: the baseline is confirmed for the
    // 4 territory-months without demand (Bay Jan/Feb, East Jan/Mar).
    app.set_clock("2025-01-20T12:00:00Z");
    assert_eq!(advance(&app, &p1).await, 4);
    // --- RECONCILIATION on 21 January: capacity of the quota-carrying reps
    // only (Ann 10,000 in East, Bob 6,000 in Bay, 1 head each; Dora none).
    app.set_clock("2025-01-21T12:00:00Z");
    assert_eq!(advance(&app, &p1).await, 5);
    let supply: Vec<Value> = lines(&app, &p1, "SUPPLY")
        .await
        .into_iter()
        .map(|l| json!([l[0], l[1], l[2]]))
        .collect();
    assert_eq!(
        supply,
        [
            json!(["Bay", "2025-01-01", "6000.00"]),
            json!(["Bay", "2025-02-01", "6000.00"]),
            json!(["Bay", "2025-03-01", "6000.00"]),
            json!(["East", "2025-01-01", "10000.00"]),
            json!(["East", "2025-02-01", "10000.00"]),
            json!(["East", "2025-03-01", "10000.00"]),
        ]
    );
    // Adjustments: the region's own 2,000 closed by a partner programme
    // (budget 1,500); East February widened by 200 (budget 300).
    app.ok_as(
        &ops,
        ADJUST,
        json!({ "id": p1, "a": [
            { "territoryId": o.americas, "month": "2025-03-01", "amount": "2000", "budget": "1500", "note": "Partner programme" },
            { "territoryId": o.east, "month": "2025-02-01", "amount": "-200", "budget": "300", "note": "Event" },
        ] }),
    )
    .await;
    // Per territory: Americas Mar 2,000 - 0 - 2,000 = 0 (no quota carrier);
    // East 4,000 - 10,000 = -6,000, 4,800 - 10,000 + 200 = -5,000, -6,000;
    // Bay 1,000 - 6,000 = -5,000 twice, 875 - 6,000 = -5,125.
    assert_eq!(
        gaps(&app, &p1, None).await,
        [
            json!([
                "Americas",
                "2025-03-01",
                "2000.00",
                "0.00",
                null,
                "2000.00",
                "0.00"
            ]),
            json!([
                "Bay",
                "2025-01-01",
                "1000.00",
                "6000.00",
                1.0,
                "0.00",
                "-5000.00"
            ]),
            json!([
                "Bay",
                "2025-02-01",
                "1000.00",
                "6000.00",
                1.0,
                "0.00",
                "-5000.00"
            ]),
            json!([
                "Bay",
                "2025-03-01",
                "875.00",
                "6000.00",
                1.0,
                "0.00",
                "-5125.00"
            ]),
            json!([
                "East",
                "2025-01-01",
                "4000.00",
                "10000.00",
                1.0,
                "0.00",
                "-6000.00"
            ]),
            json!([
                "East",
                "2025-02-01",
                "4800.00",
                "10000.00",
                1.0,
                "-200.00",
                "-5000.00"
            ]),
            json!([
                "East",
                "2025-03-01",
                "4000.00",
                "10000.00",
                1.0,
                "0.00",
                "-6000.00"
            ]),
        ]
    );
    // Rolled up to level 0, everything is Americas': January 4,000 + 1,000
    // = 5,000 against 16,000 (2 heads); February 4,800 + 1,000 = 5,800,
    // adjustments -200, gap 5,800 - 16,000 + 200 = -10,000; March 2,000 +
    // 4,000 + 875 = 6,875, adjustments 2,000, gap -11,125.
    assert_eq!(
        gaps(&app, &p1, Some(0)).await,
        [
            json!([
                "Americas",
                "2025-01-01",
                "5000.00",
                "16000.00",
                2.0,
                "0.00",
                "-11000.00"
            ]),
            json!([
                "Americas",
                "2025-02-01",
                "5800.00",
                "16000.00",
                2.0,
                "-200.00",
                "-10000.00"
            ]),
            json!([
                "Americas",
                "2025-03-01",
                "6875.00",
                "16000.00",
                2.0,
                "2000.00",
                "-11125.00"
            ]),
        ]
    );
    // Level 1: Bay rolls into West; Americas keeps its own line.
    assert_eq!(
        gaps(&app, &p1, Some(1)).await,
        [
            json!([
                "Americas",
                "2025-03-01",
                "2000.00",
                "0.00",
                null,
                "2000.00",
                "0.00"
            ]),
            json!([
                "East",
                "2025-01-01",
                "4000.00",
                "10000.00",
                1.0,
                "0.00",
                "-6000.00"
            ]),
            json!([
                "East",
                "2025-02-01",
                "4800.00",
                "10000.00",
                1.0,
                "-200.00",
                "-5000.00"
            ]),
            json!([
                "East",
                "2025-03-01",
                "4000.00",
                "10000.00",
                1.0,
                "0.00",
                "-6000.00"
            ]),
            json!([
                "West",
                "2025-01-01",
                "1000.00",
                "6000.00",
                1.0,
                "0.00",
                "-5000.00"
            ]),
            json!([
                "West",
                "2025-02-01",
                "1000.00",
                "6000.00",
                1.0,
                "0.00",
                "-5000.00"
            ]),
            json!([
                "West",
                "2025-03-01",
                "875.00",
                "6000.00",
                1.0,
                "0.00",
                "-5125.00"
            ]),
        ]
    );
    // Level 2 is the leaves: the same as no roll-up.
    assert_eq!(gaps(&app, &p1, Some(2)).await, gaps(&app, &p1, None).await);

    // --- Sign-off on 24 January (version 6). Release waits for both
    // approvers, named in order.
    app.set_clock("2025-01-24T12:00:00Z");
    let v = version(&app, &p1).await;
    assert_eq!(v, 6);
    let body = app.gql(&ops, RELEASE, json!({ "id": p1, "v": v })).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "INVALID_TRANSITION"
    );
    assert_eq!(
        body["errors"][0]["message"],
        format!(
            "S&OP plan {} cannot be released before every approver has approved version 6: waiting for cfo, vp-sales",
            id_num(&p1)
        )
    );
    // Advancing from RECONCILIATION releases too, and waits the same way.
    let body = app.gql(&ops, ADVANCE, json!({ "id": p1, "v": v })).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "INVALID_TRANSITION"
    );
    assert_eq!(version(&app, &p1).await, 6);
    // Someone not named: FORBIDDEN.
    let body = app.gql(&ops, APPROVE, json!({ "id": p1, "v": v })).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
    // The CFO approves version 6; twice is a CONFLICT. Approving does not
    // change the version.
    let a = app
        .ok_as(
            &cfo,
            APPROVE,
            json!({ "id": p1, "v": v, "n": "Budget fits" }),
        )
        .await;
    assert_eq!(a["approveSopPlan"]["version"], 6);
    let body = app.gql(&cfo, APPROVE, json!({ "id": p1, "v": v })).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "CONFLICT");
    assert_eq!(
        body["errors"][0]["message"],
        format!(
            "cfo already approved version 6 of S&OP plan {}",
            id_num(&p1)
        )
    );
    let body = app.gql(&ops, RELEASE, json!({ "id": p1, "v": v })).await;
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .ends_with("waiting for vp-sales"));
    // A change after the CFO's approval (version 7) resets it: Bay February
    // gets 500 of overtime (budget 250).
    app.ok_as(
        &ops,
        ADJUST,
        json!({ "id": p1, "a": [
            { "territoryId": o.bay, "month": "2025-02-01", "amount": "500", "budget": "250", "note": "Overtime" },
        ] }),
    )
    .await;
    // The VP's approval of the stale version 6 is a CONFLICT.
    let body = app.gql(&vp, APPROVE, json!({ "id": p1, "v": 6 })).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "CONFLICT");
    app.ok_as(&vp, APPROVE, json!({ "id": p1, "v": 7 })).await;
    let body = app.gql(&ops, RELEASE, json!({ "id": p1, "v": 7 })).await;
    assert_eq!(
        body["errors"][0]["message"],
        format!(
            "S&OP plan {} cannot be released before every approver has approved version 7: waiting for cfo",
            id_num(&p1)
        )
    );
    app.ok_as(&cfo, APPROVE, json!({ "id": p1, "v": 7 })).await;
    let approvers = app
        .ok(
            "query($id: ID!) { sopPlan(id: $id) { approvers { approver approvedVersion approvedAt approved note } budgetTotal } }",
            json!({ "id": p1 }),
        )
        .await;
    assert_eq!(
        approvers["sopPlan"]["approvers"],
        json!([
            { "approver": "cfo", "approvedVersion": 7, "approvedAt": "2025-01-24T12:00:00+00:00", "approved": true, "note": null },
            { "approver": "vp-sales", "approvedVersion": 7, "approvedAt": "2025-01-24T12:00:00+00:00", "approved": true, "note": null },
        ])
    );
    // Budget total: 1,500 + 300 + 250 = 2,050.
    assert_eq!(approvers["sopPlan"]["budgetTotal"], "2050.00");
    // Released on 25 January.
    app.set_clock("2025-01-25T12:00:00Z");
    let r = app.ok_as(&ops, RELEASE, json!({ "id": p1, "v": 7 })).await;
    assert_eq!(r["releaseSopPlan"]["stage"], "RELEASED");
    // Approving a released plan: PLAN_LOCKED.
    assert_eq!(
        app.error_code(&cfo, APPROVE, json!({ "id": p1, "v": 8 }))
            .await,
        "PLAN_LOCKED"
    );
    // Three approvals, three SOP_PLAN_APPROVED events queued with the move.
    let events: Vec<Value> = deliveries(&app, &hook)
        .await
        .iter()
        .map(|d| {
            let body: Value = serde_json::from_str(d["payload"].as_str().unwrap()).unwrap();
            assert_eq!(d["event"], "SOP_PLAN_APPROVED");
            assert_eq!(body["entityId"], p1.as_str());
            json!([
                body["data"]["approver"],
                body["data"]["approvedVersion"],
                body["data"]["note"],
                body["data"]["pendingApprovers"]
            ])
        })
        .collect();
    let mut events = events;
    events.sort_by_key(|e| (e[1].as_i64().unwrap(), e[0].as_str().unwrap().to_owned()));
    assert_eq!(
        events,
        [
            json!(["cfo", 6, "Budget fits", ["vp-sales"]]),
            json!(["cfo", 7, null, []]),
            json!(["vp-sales", 7, null, ["cfo"]]),
        ]
    );
    // Stage durations: gathering 15 -> 16 January (1 day), demand 16 -> 20
    // (4 days), supply 20 -> 21 (1 day), reconciliation 21 -> 25 (4 days),
    // released since 25 January 12:00, and it is now 26 January 12:00.
    app.set_clock("2025-01-26T12:00:00Z");
    let durations = app
        .ok(
            "query($id: ID!) { sopPlan(id: $id) { stageDurations { stage seconds visits enteredAt leftAt } } }",
            json!({ "id": p1 }),
        )
        .await;
    assert_eq!(
        durations["sopPlan"]["stageDurations"],
        json!([
            { "stage": "DATA_GATHERING", "seconds": 86400.0, "visits": 1,
              "enteredAt": "2025-01-15T12:00:00+00:00", "leftAt": "2025-01-16T12:00:00+00:00" },
            { "stage": "DEMAND_PLANNING", "seconds": 345600.0, "visits": 1,
              "enteredAt": "2025-01-16T12:00:00+00:00", "leftAt": "2025-01-20T12:00:00+00:00" },
            { "stage": "SUPPLY_PLANNING", "seconds": 86400.0, "visits": 1,
              "enteredAt": "2025-01-20T12:00:00+00:00", "leftAt": "2025-01-21T12:00:00+00:00" },
            { "stage": "RECONCILIATION", "seconds": 345600.0, "visits": 1,
              "enteredAt": "2025-01-21T12:00:00+00:00", "leftAt": "2025-01-25T12:00:00+00:00" },
            { "stage": "RELEASED", "seconds": 86400.0, "visits": 1,
              "enteredAt": "2025-01-25T12:00:00+00:00", "leftAt": null },
        ])
    );
    // Line totals rolled up to the top: the adjustments of February (East
    // -200 + Bay 500 = 300, budgets 300 + 250 = 550) and March (2,000).
    let totals = app
        .ok(
            "query($id: ID!) { sopPlan(id: $id) { lineTotals(kind: ADJUSTMENT, rollUpTo: 0) { kind territory { name } month amount budget lines } } }",
            json!({ "id": p1 }),
        )
        .await;
    assert_eq!(
        totals["sopPlan"]["lineTotals"],
        json!([
            { "kind": "ADJUSTMENT", "territory": { "name": "Americas" }, "month": "2025-02-01", "amount": "300.00", "budget": "550.00", "lines": 2 },
            { "kind": "ADJUSTMENT", "territory": { "name": "Americas" }, "month": "2025-03-01", "amount": "2000.00", "budget": "1500.00", "lines": 1 },
        ])
    );

    // --- The next month: by 10 February East won 5,000 more in January
    // (6,000 in all) and 1,500 in February, Bay 2,000 in January.
    app.set_clock("2025-02-10T10:00:00Z");
    won(&app, &o.ann, Some(&o.east), "5000", "2025-01-25T10:00:00Z").await;
    won(&app, &o.bob, Some(&o.bay), "2000", "2025-01-20T10:00:00Z").await;
    won(&app, &o.ann, Some(&o.east), "1500", "2025-02-05T10:00:00Z").await;
    let rev = app.ok_as(&ops, REVISE, json!({ "id": p1 })).await;
    let p2 = rev["reviseSopPlan"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        rev["reviseSopPlan"],
        json!({ "id": p2, "stage": "DATA_GATHERING", "version": 1, "revision": 2, "plannedFrom": "2025-02-01" })
    );
    // Gathered again: ACTUAL up to February (January now in), January's
    // actual as its demand (not planned), and the baseline of February and
    // March from Nov..Jan: East (3,000 + 6,000 + 6,000) / 3 = 5,000 (above
    // February's 1,500 so far), Bay (3,000 + 2,000) / 3 = 1,666.67.
    let actual: Vec<Value> = lines(&app, &p2, "ACTUAL")
        .await
        .into_iter()
        .map(|l| json!([l[0], l[1], l[2]]))
        .collect();
    assert_eq!(
        actual,
        [
            json!(["Bay", "2024-12-01", "3000.00"]),
            json!(["Bay", "2025-01-01", "2000.00"]),
            json!(["East", "2024-10-01", "3000.00"]),
            json!(["East", "2024-11-01", "3000.00"]),
            json!(["East", "2024-12-01", "6000.00"]),
            json!(["East", "2025-01-01", "6000.00"]),
        ]
    );
    let baseline: Vec<Value> = lines(&app, &p2, "BASELINE")
        .await
        .into_iter()
        .map(|l| json!([l[0], l[1], l[2]]))
        .collect();
    assert_eq!(
        baseline,
        [
            json!(["Bay", "2025-02-01", "1666.67"]),
            json!(["Bay", "2025-03-01", "1666.67"]),
            json!(["East", "2025-02-01", "5000.00"]),
            json!(["East", "2025-03-01", "5000.00"]),
        ]
    );
    // DEMAND: January's actuals (generated), and the three lines people
    // entered for February and March, carried with their amounts and notes
    // (the confirmed baselines are not carried: they are worked out again).
    let over =
        "2025-01 was over when the plan was made: its closed-won is the demand (not planned)";
    assert_eq!(
        lines(&app, &p2, "DEMAND").await,
        [
            json!([
                "Americas",
                "2025-03-01",
                "2000.00",
                "Key account",
                false,
                true
            ]),
            json!(["Bay", "2025-01-01", "2000.00", over, true, false]),
            json!([
                "Bay",
                "2025-03-01",
                "875.00",
                "-12.5% of the baseline 1000.00",
                false,
                true
            ]),
            json!(["East", "2025-01-01", "6000.00", over, true, false]),
            json!([
                "East",
                "2025-02-01",
                "4800.00",
                "Launch (+20% of the baseline 4000.00)",
                false,
                true
            ]),
        ]
    );
    // SUPPLY was all computed: nothing carried. ADJUSTMENT: the three of
    // February and March, carried.
    assert_eq!(lines(&app, &p2, "SUPPLY").await, Vec::<Value>::new());
    let adj: Vec<Value> = lines(&app, &p2, "ADJUSTMENT")
        .await
        .into_iter()
        .map(|l| json!([l[0], l[1], l[2], l[5]]))
        .collect();
    assert_eq!(
        adj,
        [
            json!(["Americas", "2025-03-01", "2000.00", true]),
            json!(["Bay", "2025-02-01", "500.00", true]),
            json!(["East", "2025-02-01", "-200.00", true]),
        ]
    );
    // The approvers are named again, without their approvals.
    let again = app
        .ok(
            "query($id: ID!) { sopPlan(id: $id) { approvers { approver approved approvedVersion } budgetTotal } }",
            json!({ "id": p2 }),
        )
        .await;
    assert_eq!(
        again["sopPlan"],
        json!({ "approvers": [
            { "approver": "cfo", "approved": false, "approvedVersion": null },
            { "approver": "vp-sales", "approved": false, "approvedVersion": null },
        ], "budgetTotal": "2050.00" })
    );

    // --- Compare revision 1 (released) with revision 2 (live capacity for
    // February and March). Unchanged: Americas March (2,000 / 0 / 2,000),
    // East February (carried 4,800 / 10,000 / -200) and Bay March (carried
    // 875 / 6,000). Changed:
    // - Bay January: 1,000 / 6,000 / 0 / -5,000 -> its actual 2,000, not
    //   planned (no supply): gap 2,000;
    // - Bay February: baseline 1,000 -> 1,666.67, gap -5,500 -> 1,666.67 -
    //   6,000 - 500 = -4,833.33;
    // - East January: 4,000 / 10,000 -> actual 6,000 / 0, gap -6,000 -> 6,000;
    // - East March: baseline 4,000 -> 5,000, gap -6,000 -> -5,000.
    assert_eq!(
        compare(&app, &p1, &p2, None).await,
        [
            json!([
                "Bay",
                "2025-01-01",
                ["1000.00", "6000.00", "0.00", "-5000.00"],
                ["2000.00", "0.00", "0.00", "2000.00"],
                ["1000.00", "-6000.00", "0.00", "7000.00"]
            ]),
            json!([
                "Bay",
                "2025-02-01",
                ["1000.00", "6000.00", "500.00", "-5500.00"],
                ["1666.67", "6000.00", "500.00", "-4833.33"],
                ["666.67", "0.00", "0.00", "666.67"]
            ]),
            json!([
                "East",
                "2025-01-01",
                ["4000.00", "10000.00", "0.00", "-6000.00"],
                ["6000.00", "0.00", "0.00", "6000.00"],
                ["2000.00", "-10000.00", "0.00", "12000.00"]
            ]),
            json!([
                "East",
                "2025-03-01",
                ["4000.00", "10000.00", "0.00", "-6000.00"],
                ["5000.00", "10000.00", "0.00", "-5000.00"],
                ["1000.00", "0.00", "0.00", "1000.00"]
            ]),
        ]
    );
    // Rolled up to the top: revision 1 January 5,000 / 16,000 / 0 / -11,000,
    // February 5,800 / 16,000 / 300 / -10,500, March 6,875 / 16,000 / 2,000 /
    // -11,125; revision 2 January 6,000 + 2,000 = 8,000 / 0 / 0 / 8,000,
    // February 4,800 + 1,666.67 = 6,466.67 / 16,000 / 300 / -9,833.33, March
    // 2,000 + 5,000 + 875 = 7,875 / 16,000 / 2,000 / -10,125.
    assert_eq!(
        compare(&app, &p1, &p2, Some(0)).await,
        [
            json!([
                "Americas",
                "2025-01-01",
                ["5000.00", "16000.00", "0.00", "-11000.00"],
                ["8000.00", "0.00", "0.00", "8000.00"],
                ["3000.00", "-16000.00", "0.00", "19000.00"]
            ]),
            json!([
                "Americas",
                "2025-02-01",
                ["5800.00", "16000.00", "300.00", "-10500.00"],
                ["6466.67", "16000.00", "300.00", "-9833.33"],
                ["666.67", "0.00", "0.00", "666.67"]
            ]),
            json!([
                "Americas",
                "2025-03-01",
                ["6875.00", "16000.00", "2000.00", "-11125.00"],
                ["7875.00", "16000.00", "2000.00", "-10125.00"],
                ["1000.00", "0.00", "0.00", "1000.00"]
            ]),
        ]
    );
    // Comparing a plan with itself lists nothing.
    assert_eq!(compare(&app, &p2, &p2, None).await, Vec::<Value>::new());

    // --- Revision 2 through its cycle: East March +10% of its new baseline
    // (5,000 x 1.1 = 5,500); January cannot be planned any more.
    advance(&app, &p2).await;
    let body = app
        .gql(
            &ops,
            DEMAND,
            json!({ "id": p2, "l": [{ "territoryId": o.east, "month": "2025-01-01", "amount": "1" }] }),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(
        body["errors"][0]["message"],
        "lines[0].month: 2025-01 was over when the plan was made and is not planned (its closed-won is the demand); the plan plans from 2025-02"
    );
    app.ok_as(
        &ops,
        DEMAND,
        json!({ "id": p2, "l": [{ "territoryId": o.east, "month": "2025-03-01", "changePercent": 10 }] }),
    )
    .await;
    advance(&app, &p2).await; // SUPPLY_PLANNING: Bay February's baseline confirmed
                              // Supply for January (over) is refused like demand, nothing written.
    let lines_before = app.count_rows("sop_line").await;
    let body = app
        .gql(
            &ops,
            "mutation($id: ID!, $l: [SopSupplyLineInput!]!) { setSopSupply(planId: $id, lines: $l) { id } }",
            json!({ "id": p2, "l": [{ "territoryId": o.east, "month": "2025-01-01", "headcount": 1, "amount": "1" }] }),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(app.count_rows("sop_line").await, lines_before);
    advance(&app, &p2).await; // RECONCILIATION: capacity for February and March
    let v = version(&app, &p2).await;
    app.ok_as(&cfo, APPROVE, json!({ "id": p2, "v": v })).await;
    app.ok_as(&vp, APPROVE, json!({ "id": p2, "v": v })).await;
    app.ok_as(&ops, RELEASE, json!({ "id": p2, "v": v })).await;
    // Plan against actual, rolled up to the top, for the months planned:
    // February demand 4,800 + 1,666.67 = 6,466.67 against 1,500 won;
    // March 2,000 + 5,500 + 875 = 8,375 against nothing yet.
    let pva = app
        .ok(
            "query($id: ID!) { sopPlan(id: $id) { planVsActual(rollUpTo: 0) { territory { name } month planned actual variance variancePct } } }",
            json!({ "id": p2 }),
        )
        .await;
    assert_eq!(
        pva["sopPlan"]["planVsActual"],
        json!([
            { "territory": { "name": "Americas" }, "month": "2025-02-01", "planned": "6466.67", "actual": "1500.00",
              "variance": "-4966.67", "variancePct": -4966.67 / 6466.67 },
            { "territory": { "name": "Americas" }, "month": "2025-03-01", "planned": "8375.00", "actual": "0.00",
              "variance": "-8375.00", "variancePct": -1.0 },
        ])
    );
    // Once the horizon is over there is nothing left to revise into.
    app.set_clock("2025-04-02T00:00:00Z");
    let plans = app.count_rows("sop_plan").await;
    let body = app.gql(&ops, REVISE, json!({ "id": p2 })).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(
        body["errors"][0]["message"],
        "every month of the horizon 2025-01..2025-03 is over: there is nothing left to plan"
    );
    assert_eq!(app.count_rows("sop_plan").await, plans);
    // Per territory, January is left out (it was over when revision 2 was made).
    let pva = app
        .ok(
            "query($id: ID!) { sopPlan(id: $id) { planVsActual { territory { name } month planned actual } } }",
            json!({ "id": p2 }),
        )
        .await;
    assert_eq!(
        pva["sopPlan"]["planVsActual"],
        json!([
            { "territory": { "name": "Americas" }, "month": "2025-03-01", "planned": "2000.00", "actual": "0.00" },
            { "territory": { "name": "Bay" }, "month": "2025-02-01", "planned": "1666.67", "actual": "0.00" },
            { "territory": { "name": "Bay" }, "month": "2025-03-01", "planned": "875.00", "actual": "0.00" },
            { "territory": { "name": "East" }, "month": "2025-02-01", "planned": "4800.00", "actual": "1500.00" },
            { "territory": { "name": "East" }, "month": "2025-03-01", "planned": "5500.00", "actual": "0.00" },
        ])
    );
}

/// Demand from the open pipeline. On 15 January 2025 East has won 1,000
/// (10 January) and has 10,000 in Demo (40%) expected 28 January and 5,000
/// in Final Call (80%) expected 14 February; Uma's deal without a territory
/// has 2,000 in Qualified (20%) expected 3 February; 7,000 in Trial expected in
/// March is outside the horizon (January and February).
/// STAGE_WEIGHTED per territory-month: East January 1,000 + 4,000 = 5,000,
/// East February 4,000; no territory February 400.
async fn demand_seeded_from_the_pipeline(app: TestApp) {
    app.set_clock("2025-01-15T12:00:00Z");
    let east = app.create_territory("East", None, None).await;
    let ann = app
        .create_rep("Ann", None, Some(&east), json!({ "hiredAt": "2023-01-01" }))
        .await;
    let uma = app
        .create_rep("Uma", None, None, json!({ "hiredAt": "2023-01-01" }))
        .await;
    won(&app, &ann, Some(&east), "1000", "2025-01-10T10:00:00Z").await;
    for (amount, stage, owner, territory, close) in [
        ("10000", "Demo", &ann, Some(&east), "2025-01-28"),
        ("5000", "Final Call", &ann, Some(&east), "2025-02-14"),
        ("2000", "Qualified", &uma, None, "2025-02-03"),
        ("7000", "Trial", &ann, Some(&east), "2025-03-10"),
    ] {
        let stage_id = app.stage(stage).await;
        app.create_deal(json!({
            "name": format!("{stage} {amount}"), "amount": amount, "ownerId": owner,
            "territoryId": territory, "stageId": stage_id, "expectedCloseDate": close,
        }))
        .await;
    }
    let ops = app.token(Role::Ops, None);
    let created = app
        .ok_as(
            &ops,
            CREATE,
            json!({ "i": { "name": "Pipeline", "horizonStart": "2025-01-01", "horizonMonths": 2 } }),
        )
        .await;
    let id = created["createSopPlan"]["id"].as_str().unwrap().to_owned();
    advance(&app, &id).await;
    // The forecast the demand comes from.
    let f = app
        .ok(
            "{ forecast(period: \"2025-02\", method: STAGE_WEIGHTED, groupBy: TERRITORY) { rows { key { label } amount } } }",
            json!({}),
        )
        .await;
    let mut amounts: Vec<&str> = f["forecast"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["amount"].as_str().unwrap())
        .collect();
    amounts.sort();
    assert_eq!(amounts, ["400.00", "4000.00"]);
    let seeded = app
        .ok_as(&ops, SEED, json!({ "id": id, "n": "Pipeline review" }))
        .await;
    assert_eq!(seeded["seedSopDemandFromPipeline"]["version"], 3);
    let demand = app
        .ok(
            "query($id: ID!) { sopPlan(id: $id) { lines(kind: DEMAND) { territory { name } month amount note author generated } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        demand["sopPlan"]["lines"],
        json!([
            { "territory": { "name": "East" }, "month": "2025-01-01", "amount": "5000.00", "author": "ops-tester", "generated": false,
              "note": "Pipeline review (STAGE_WEIGHTED forecast 5000.00: closed-won 1000.00 + weighted pipeline 4000.00)" },
            { "territory": { "name": "East" }, "month": "2025-02-01", "amount": "4000.00", "author": "ops-tester", "generated": false,
              "note": "Pipeline review (STAGE_WEIGHTED forecast 4000.00: closed-won 0.00 + weighted pipeline 4000.00)" },
            { "territory": null, "month": "2025-02-01", "amount": "400.00", "author": "ops-tester", "generated": false,
              "note": "Pipeline review (STAGE_WEIGHTED forecast 400.00: closed-won 0.00 + weighted pipeline 400.00)" },
        ])
    );
    let audit = app
        .ok(
            "query($id: ID!) { auditLog(entityType: \"SopPlan\", entityId: $id) { action actor } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        audit["auditLog"][0],
        json!({ "action": "seedSopDemandFromPipeline", "actor": "ops-tester" })
    );
    // A blank note is refused, and nothing is written.
    let body = app.gql(&ops, SEED, json!({ "id": id, "n": "  " })).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(version(&app, &id).await, 3);
}

async fn second_pass_bad_inputs_write_nothing(app: TestApp) {
    app.set_clock("2025-01-15T12:00:00Z");
    let o = org(&app).await;
    let ops = app.token(Role::Ops, None);
    let admin = app.admin_token();
    let plans_before = app.count_rows("sop_plan").await;
    let bad = |input: Value| {
        let app = &app;
        let ops = ops.clone();
        async move {
            let body = app.gql(&ops, CREATE, json!({ "i": input })).await;
            assert_eq!(
                body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
                "{body}"
            );
            body["errors"][0]["message"].as_str().unwrap().to_owned()
        }
    };
    // A horizon wholly over, and an approver named twice.
    assert_eq!(
        bad(json!({ "name": "Past", "horizonStart": "2024-10-01", "horizonMonths": 3 })).await,
        "every month of the horizon 2024-10..2024-12 is over: there is nothing left to plan"
    );
    assert_eq!(
        bad(json!({ "name": "Twice", "horizonStart": "2025-01-01", "horizonMonths": 1, "approvers": ["cfo", " cfo "] })).await,
        "approvers[1] names cfo again: each approver once"
    );
    assert_eq!(app.count_rows("sop_plan").await, plans_before);

    // A plan for January and February, made on 15 January.
    let created = app
        .ok_as(
            &ops,
            CREATE,
            json!({ "i": { "name": "Q1", "horizonStart": "2025-01-01", "horizonMonths": 2, "approvers": ["cfo"] } }),
        )
        .await;
    let id = created["createSopPlan"]["id"].as_str().unwrap().to_owned();
    // Approving outside RECONCILIATION.
    assert_eq!(
        app.error_code(&admin, APPROVE, json!({ "id": id, "v": 1 }))
            .await,
        "FORBIDDEN"
    );
    let cfo = app.token_for("cfo", Role::Admin);
    assert_eq!(
        app.error_code(&cfo, APPROVE, json!({ "id": id, "v": 1 }))
            .await,
        "INVALID_TRANSITION"
    );
    advance(&app, &id).await;
    let v = version(&app, &id).await;
    let lines_before = app.count_rows("sop_line").await;
    let demand_error = |l: Value| {
        let app = &app;
        let id = id.clone();
        let ops = ops.clone();
        async move {
            let body = app.gql(&ops, DEMAND, json!({ "id": id, "l": [l] })).await;
            assert_eq!(
                body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
                "{body}"
            );
            body["errors"][0]["message"].as_str().unwrap().to_owned()
        }
    };
    assert_eq!(
        demand_error(
            json!({ "territoryId": o.east, "month": "2025-01-01", "changePercent": "-100.5" })
        )
        .await,
        "lines[0].changePercent: -100.5% is below -100% (demand cannot go below zero)"
    );
    assert_eq!(
        demand_error(json!({ "territoryId": o.east, "month": "2025-01-01", "changePercent": "5", "amount": "10" })).await,
        "lines[0]: give exactly one of amount and changePercent"
    );
    assert_eq!(
        demand_error(json!({ "territoryId": o.east, "month": "2025-01-01" })).await,
        "lines[0]: give exactly one of amount and changePercent"
    );
    assert_eq!(
        demand_error(json!({ "territoryId": o.americas, "month": "2025-01-01", "changePercent": "5" })).await,
        format!(
            "lines[0].changePercent: demand territory {} 2025-01 has no baseline to change; give an amount",
            id_num(&o.americas)
        )
    );
    assert_eq!(app.count_rows("sop_line").await, lines_before);
    assert_eq!(version(&app, &id).await, v);
    // -100% is allowed: no demand at all.
    app.ok_as(
        &ops,
        DEMAND,
        json!({ "id": id, "l": [{ "territoryId": o.bay, "month": "2025-01-01", "changePercent": -100 }] }),
    )
    .await;

    // Roll-ups to a level the tree does not have (levels 0..2).
    for level in [3, -1] {
        for q in [
            "query($id: ID!, $l: Int) { sopPlan(id: $id) { gaps(rollUpTo: $l) { gap } } }",
            "query($id: ID!, $l: Int) { sopPlan(id: $id) { planVsActual(rollUpTo: $l) { variance } } }",
            "query($id: ID!, $l: Int) { sopPlan(id: $id) { lineTotals(rollUpTo: $l) { amount } } }",
        ] {
            let body = app.gql(&ops, q, json!({ "id": id, "l": level })).await;
            assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body}");
            assert_eq!(
                body["errors"][0]["message"],
                format!("rollUpTo: the territory tree has no level {level}: its levels are 0 (top) to 2")
            );
        }
        let body = app
            .gql(&ops, COMPARE, json!({ "f": id, "t": id, "l": level }))
            .await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    }

    // Plans of different horizons cannot be compared.
    let other = app
        .ok_as(
            &ops,
            CREATE,
            json!({ "i": { "name": "Q1 long", "horizonStart": "2025-01-01", "horizonMonths": 3 } }),
        )
        .await;
    let other = other["createSopPlan"]["id"].as_str().unwrap().to_owned();
    let body = app.gql(&ops, COMPARE, json!({ "f": id, "t": other })).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(
        body["errors"][0]["message"],
        format!(
            "plans of different horizons cannot be compared: S&OP plan {} covers 2 month(s) from 2025-01-01, \
             S&OP plan {} 3 month(s) from 2025-01-01",
            id_num(&id),
            id_num(&other)
        )
    );

    // Naming approvers is a change: it bumps the version; a released plan
    // cannot be changed.
    let v = version(&app, &id).await;
    let set = app
        .ok_as(
            &ops,
            "mutation($id: ID!, $a: [String!]!) { setSopApprovers(planId: $id, approvers: $a) { version approvers { approver } } }",
            json!({ "id": id, "a": ["cfo", "coo"] }),
        )
        .await;
    assert_eq!(set["setSopApprovers"]["version"], v + 1);
    assert_eq!(
        set["setSopApprovers"]["approvers"],
        json!([{ "approver": "cfo" }, { "approver": "coo" }])
    );
}
