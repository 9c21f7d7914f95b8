//! S&OP plans over HTTP: the whole cycle with every number worked out by
//! hand, the stage machine's refusals, optimistic locking under concurrency,
//! the released plan's lock, revisions and roles.
use api::auth::Role;
use serde_json::{json, Value};

use crate::db_tests;
use crate::helpers::{id_num, TestApp};

db_tests!(
    full_cycle_from_creation_to_release_and_revision,
    wrong_stage_writes_are_invalid_transitions,
    stale_and_concurrent_advances,
    released_plan_is_locked,
    bad_horizons_and_inputs_write_nothing,
    reopen_keeps_the_reason_and_recomputes_generated_lines,
    roles_run_and_read_plans,
);

const PLAN: &str = "id name stage version revision horizonStart horizonMonths owner releasedAt \
                    previousRevision { id revision }";

/// The clock of scenarios that plan 2025 from its first day.
const JAN_2025: &str = "2025-01-01T00:00:00Z";

const CREATE: &str =
    "mutation($i: CreateSopPlanInput!) { createSopPlan(input: $i) { id version stage } }";
const ADVANCE: &str = "mutation($id: ID!, $v: Int!, $n: String) { advanceSopPlan(id: $id, expectedVersion: $v, note: $n) { id stage version } }";
const RELEASE: &str = "mutation($id: ID!, $v: Int!, $n: String) { releaseSopPlan(id: $id, expectedVersion: $v, note: $n) { id stage version releasedAt } }";
const DEMAND: &str = "mutation($id: ID!, $l: [SopDemandLineInput!]!) { setSopDemand(planId: $id, lines: $l) { id version } }";
const SUPPLY: &str = "mutation($id: ID!, $l: [SopSupplyLineInput!]!) { setSopSupply(planId: $id, lines: $l) { id version } }";
const ADJUST: &str = "mutation($id: ID!, $a: [SopAdjustmentInput!]!) { addSopAdjustments(planId: $id, adjustments: $a) { id version } }";
const REOPEN: &str = "mutation($id: ID!, $s: SopStage!, $r: String!) { reopenSopPlan(id: $id, toStage: $s, reason: $r) { id stage version } }";
const REVISE: &str = "mutation($id: ID!) { reviseSopPlan(id: $id) { id stage version revision previousRevision { id revision } } }";

/// Creates a deal straight into Won (or Lost) at `closed_at`.
async fn closed(
    app: &TestApp,
    owner: &str,
    territory: Option<&str>,
    amount: &str,
    closed_at: &str,
    stage: &str,
) -> String {
    let stage_id = app.stage(stage).await;
    app.create_deal(json!({
        "name": format!("{stage} {amount} {closed_at}"),
        "amount": amount,
        "ownerId": owner,
        "territoryId": territory,
        "stageId": stage_id,
        "openedAt": "2024-01-02T00:00:00Z",
        "closedAt": closed_at,
    }))
    .await
}

async fn won(app: &TestApp, owner: &str, territory: Option<&str>, amount: &str, at: &str) {
    closed(app, owner, territory, amount, at, "Won").await;
}

async fn create_plan(app: &TestApp, input: Value) -> String {
    app.ok(CREATE, json!({ "i": input })).await["createSopPlan"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn plan(app: &TestApp, id: &str) -> Value {
    app.ok(
        &format!("query($id: ID!) {{ sopPlan(id: $id) {{ {PLAN} }} }}"),
        json!({ "id": id }),
    )
    .await["sopPlan"]
        .clone()
}

async fn version(app: &TestApp, id: &str) -> i64 {
    plan(app, id).await["version"].as_i64().unwrap()
}

async fn advance(app: &TestApp, id: &str) -> Value {
    let v = version(app, id).await;
    app.ok(ADVANCE, json!({ "id": id, "v": v })).await["advanceSopPlan"].clone()
}

/// A plan's lines of one kind as [territory name, month, amount, headcount].
async fn lines(app: &TestApp, id: &str, kind: &str) -> Vec<Value> {
    let d = app
        .ok(
            "query($id: ID!, $k: SopLineKind) { sopPlan(id: $id) { lines(kind: $k) { territory { name } month amount headcount } } }",
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
                l["headcount"]
            ])
        })
        .collect()
}

/// Gaps as [territory, month, demand, supply, headcount, computed, adjustments, gap].
async fn gaps(app: &TestApp, id: &str) -> Vec<Value> {
    let d = app
        .ok(
            "query($id: ID!) { sopPlan(id: $id) { gaps { territory { name } month demand supply headcount supplyComputed adjustments gap } } }",
            json!({ "id": id }),
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
                g["supplyComputed"],
                g["adjustments"],
                g["gap"]
            ])
        })
        .collect()
}

async fn line_count(app: &TestApp, id: &str) -> usize {
    lines(app, id, "ACTUAL").await.len()
        + lines(app, id, "BASELINE").await.len()
        + lines(app, id, "DEMAND").await.len()
        + lines(app, id, "SUPPLY").await.len()
        + lines(app, id, "ADJUSTMENT").await.len()
}

struct World {
    east: String,
    west: String,
    north: String,
    ann: String,
    uma: String,
}

/// The hand-built organisation of the full cycle.
///
/// Reps (capacity for 2025-01 / 02 / 03):
/// - Ann, East, hired 2023-01-01, ramp 3: fully ramped. Monthly quotas
///   2024-12 8,000, 2025-01 10,000, 2025-02 12,000; March has none, so the
///   latest one-month quota before it (February, 12,000) counts.
///   -> 10,000 / 12,000 / 12,000.
/// - Ben, East, hired 2024-11-15, ramp 3: k = 1, 2, 3 whole months at the
///   first of each month (the half month of November does not count), so
///   1/3, 2/3, 1 of his only quota 2025-01 9,000 (used for every month).
///   -> 3,000 / 6,000 / 9,000.
/// - Cy, West, hired 2025-01-01, ramp 2: k = 0, 1, 2 -> 0, 1/2, 1 of 8,000.
///   -> 0 / 4,000 / 8,000.
/// - Eve, West, hired 2025-02-10, ramp 3: not on board in January; k = 0 in
///   February and March (hired after the 1st) -> 0 / 0 / 0 with a headcount
///   of 0, quota 2025-02 6,000 (counts for the average monthly quota).
/// - Dee, West, inactive with a 50,000 quota: never counted.
/// - Uma, no territory, hired 2020-01-01, quota 2025-01 5,000 -> 5,000 each.
///
/// Closed-won history (UTC):
/// - East: 9,000 on 2024-09-20 (actuals only), 12,000 on 2024-10-05,
///   15,000 on 2024-12-01T01:30+02:00 = 2024-11-30T23:30Z (November),
///   3,000 on 2024-12-01T00:00Z; a lost 50,000 in November is ignored.
///   Baseline lookback Oct..Dec = 30,000 -> R = 10,000; x 1.05 = 10,500.
/// - West: 7,000 on 2024-10-15 -> R = 7,000 / 3; x 1.05 = 2,450.00.
///   2,000 on 2024-08-31T23:59:59Z: before every lookback.
///   11,000 already won on 2025-02-03: February's baseline is raised to it.
/// - No territory (Uma): 1,000 on 2024-12-10 -> R = 333.33..; x 1.05 = 350.
async fn world(app: &TestApp) -> World {
    let east = app.create_territory("East", None, None).await;
    let west = app.create_territory("West", None, None).await;
    let north = app.create_territory("North", None, None).await;
    let rep =
        |name: &'static str, t: Option<String>, hired: &'static str, ramp: i32, active: bool| {
            let t = t.clone();
            async move {
                app.create_rep(
                    name,
                    None,
                    t.as_deref(),
                    json!({ "hiredAt": hired, "rampMonths": ramp, "active": active }),
                )
                .await
            }
        };
    let ann = rep("Ann", Some(east.clone()), "2023-01-01", 3, true).await;
    let ben = rep("Ben", Some(east.clone()), "2024-11-15", 3, true).await;
    let cy = rep("Cy", Some(west.clone()), "2025-01-01", 2, true).await;
    let eve = rep("Eve", Some(west.clone()), "2025-02-10", 3, true).await;
    let dee = rep("Dee", Some(west.clone()), "2024-06-01", 0, false).await;
    let uma = rep("Uma", None, "2020-01-01", 3, true).await;
    app.set_quota(&ann, "2024-12", "8000").await;
    app.set_quota(&ann, "2025-01", "10000").await;
    app.set_quota(&ann, "2025-02", "12000").await;
    app.set_quota(&ben, "2025-01", "9000").await;
    for m in ["2025-01", "2025-02", "2025-03"] {
        app.set_quota(&cy, m, "8000").await;
    }
    app.set_quota(&eve, "2025-02", "6000").await;
    app.set_quota(&dee, "2025-01", "50000").await;
    app.set_quota(&uma, "2025-01", "5000").await;

    won(app, &ann, Some(&east), "9000", "2024-09-20T10:00:00Z").await;
    won(app, &ann, Some(&east), "12000", "2024-10-05T10:00:00Z").await;
    won(app, &ben, Some(&east), "15000", "2024-12-01T01:30:00+02:00").await;
    won(app, &ann, Some(&east), "3000", "2024-12-01T00:00:00Z").await;
    closed(
        app,
        &ann,
        Some(&east),
        "50000",
        "2024-11-10T10:00:00Z",
        "Lost",
    )
    .await;
    app.create_deal(json!({ "name": "Open", "amount": "40000", "ownerId": ann, "territoryId": east, "openedAt": "2024-10-01T00:00:00Z" }))
        .await;
    won(app, &cy, Some(&west), "7000", "2024-10-15T10:00:00Z").await;
    won(app, &cy, Some(&west), "2000", "2024-08-31T23:59:59Z").await;
    won(app, &cy, Some(&west), "11000", "2025-02-03T10:00:00Z").await;
    won(app, &uma, None, "1000", "2024-12-10T10:00:00Z").await;
    World {
        east,
        west,
        north,
        ann,
        uma,
    }
}

async fn full_cycle_from_creation_to_release_and_revision(app: TestApp) {
    // The history is written on 4 February 2025 (West's 11,000 of 3 February
    // included), the clock moving forward from there for every deal write.
    app.set_clock("2025-02-04T00:00:00Z");
    let w = world(&app).await;
    let ops = app.token(Role::Ops, None);
    // The plan is made on New Year's Day 2025: every month of the horizon is
    // ahead, and the baseline's run rate is Oct..Dec 2024.
    app.set_clock("2025-01-01T00:00:00Z");

    // --- DATA_GATHERING: created with its gathered data, version 1.
    let created = app
        .ok_as(
            &ops,
            CREATE,
            json!({ "i": { "name": "Q1 2025", "horizonStart": "2025-01-01", "horizonMonths": 3,
                           "lookbackMonths": 4, "growthRate": 0.05 } }),
        )
        .await;
    let id = created["createSopPlan"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created["createSopPlan"],
        json!({ "id": id, "version": 1, "stage": "DATA_GATHERING" })
    );
    let p = plan(&app, &id).await;
    assert_eq!(
        p,
        json!({ "id": id, "name": "Q1 2025", "stage": "DATA_GATHERING", "version": 1, "revision": 1,
                "horizonStart": "2025-01-01", "horizonMonths": 3, "owner": "ops-tester",
                "releasedAt": null, "previousRevision": null })
    );
    // ACTUAL: closed-won per territory-month over the 4 months before January
    // (Sep..Dec 2024); West's August deal and every 2025 deal are outside.
    assert_eq!(
        lines(&app, &id, "ACTUAL").await,
        [
            json!(["East", "2024-09-01", "9000.00", null]),
            json!(["East", "2024-10-01", "12000.00", null]),
            json!(["East", "2024-11-01", "15000.00", null]),
            json!(["East", "2024-12-01", "3000.00", null]),
            json!(["West", "2024-10-01", "7000.00", null]),
            json!([null, "2024-12-01", "1000.00", null]),
        ]
    );
    // BASELINE: HISTORICAL per territory-month (see `world`).
    assert_eq!(
        lines(&app, &id, "BASELINE").await,
        [
            json!(["East", "2025-01-01", "10500.00", null]),
            json!(["East", "2025-02-01", "10500.00", null]),
            json!(["East", "2025-03-01", "10500.00", null]),
            json!(["West", "2025-01-01", "2450.00", null]),
            json!(["West", "2025-02-01", "11000.00", null]),
            json!(["West", "2025-03-01", "2450.00", null]),
            json!([null, "2025-01-01", "350.00", null]),
            json!([null, "2025-02-01", "350.00", null]),
            json!([null, "2025-03-01", "350.00", null]),
        ]
    );
    let notes = app
        .ok(
            "query($id: ID!) { sopPlan(id: $id) { lines(kind: BASELINE) { note author generated } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        notes["sopPlan"]["lines"][0],
        json!({ "note": "HISTORICAL: run rate 10000.00 a month (closed-won 2024-10..2024-12 / 3), growth 0.05",
                "author": "ops-tester", "generated": true })
    );
    assert_eq!(
        notes["sopPlan"]["lines"][4]["note"],
        "HISTORICAL: run rate 2333.33 a month (closed-won 2024-10..2024-12 / 3), growth 0.05; raised to the 11000.00 already won in 2025-02"
    );

    // --- DEMAND_PLANNING (version 2): revisions by OPS, one replaced.
    let moved = app
        .ok_as(
            &ops,
            ADVANCE,
            json!({ "id": id, "v": 1, "n": "Data checked" }),
        )
        .await;
    assert_eq!(
        moved["advanceSopPlan"],
        json!({ "id": id, "stage": "DEMAND_PLANNING", "version": 2 })
    );
    let d = app
        .ok_as(
            &ops,
            DEMAND,
            json!({ "id": id, "l": [
                { "territoryId": w.east, "month": "2025-02-01", "amount": "14000", "note": "Spring launch" },
                { "territoryId": w.west, "month": "2025-03-01", "amount": "3000", "note": "Key account churned" },
            ] }),
        )
        .await;
    assert_eq!(d["setSopDemand"]["version"], 3);
    // Setting East February again replaces the line (version 4).
    let d = app
        .ok(
            DEMAND,
            json!({ "id": id, "l": [{ "territoryId": w.east, "month": "2025-02-01", "amount": "13500", "note": "Launch slips a week" }] }),
        )
        .await;
    assert_eq!(d["setSopDemand"]["version"], 4);
    let demand = app
        .ok(
            "query($id: ID!) { sopPlan(id: $id) { lines(kind: DEMAND) { territory { name } month amount note author generated } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        demand["sopPlan"]["lines"],
        json!([
            { "territory": { "name": "East" }, "month": "2025-02-01", "amount": "13500.00",
              "note": "Launch slips a week", "author": "admin-tester", "generated": false },
            { "territory": { "name": "West" }, "month": "2025-03-01", "amount": "3000.00",
              "note": "Key account churned", "author": "ops-tester", "generated": false },
        ])
    );

    // --- SUPPLY_PLANNING (version 5): the baseline is confirmed as demand for
    // the 9 - 2 = 7 territory-months without a revision.
    assert_eq!(advance(&app, &id).await["version"], 5);
    assert_eq!(
        lines(&app, &id, "DEMAND").await,
        [
            json!(["East", "2025-01-01", "10500.00", null]),
            json!(["East", "2025-02-01", "13500.00", null]),
            json!(["East", "2025-03-01", "10500.00", null]),
            json!(["West", "2025-01-01", "2450.00", null]),
            json!(["West", "2025-02-01", "11000.00", null]),
            json!(["West", "2025-03-01", "3000.00", null]),
            json!([null, "2025-01-01", "350.00", null]),
            json!([null, "2025-02-01", "350.00", null]),
            json!([null, "2025-03-01", "350.00", null]),
        ]
    );
    // Supply lines: West March is 2 heads (Cy and a planned hire) at West's
    // average monthly quota in March ((Cy 8,000 + Eve 6,000) / 2 = 7,000)
    // = 14,000; North (no reps) gets a hire in January at the organisation's
    // average January quota ((Ann 10,000 + Ben 9,000 + Cy 8,000 + Uma
    // 5,000) / 4 = 8,000); the unassigned bucket's February is given.
    let d = app
        .ok_as(
            &ops,
            SUPPLY,
            json!({ "id": id, "l": [
                { "territoryId": w.west, "month": "2025-03-01", "headcount": 2, "note": "Cy plus one hire" },
                { "territoryId": w.north, "month": "2025-01-01", "headcount": 1 },
                { "territoryId": null, "month": "2025-02-01", "headcount": 1.5, "amount": "9999.99" },
            ] }),
        )
        .await;
    assert_eq!(d["setSopSupply"]["version"], 6);
    let supply = app
        .ok(
            "query($id: ID!) { sopPlan(id: $id) { lines(kind: SUPPLY) { territory { name } month amount headcount note } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        supply["sopPlan"]["lines"],
        json!([
            { "territory": { "name": "North" }, "month": "2025-01-01", "amount": "8000.00", "headcount": 1.0,
              "note": "capacity = headcount 1 x the organisation's average monthly quota 8000.00" },
            { "territory": { "name": "West" }, "month": "2025-03-01", "amount": "14000.00", "headcount": 2.0,
              "note": "Cy plus one hire (capacity = headcount 2 x the territory's average monthly quota 7000.00)" },
            { "territory": null, "month": "2025-02-01", "amount": "9999.99", "headcount": 1.5, "note": null },
        ])
    );
    // While in SUPPLY_PLANNING, territory-months without a supply line show
    // the live computed capacity (see `world`).
    assert_eq!(
        gaps(&app, &id).await,
        [
            json!([
                "East",
                "2025-01-01",
                "10500.00",
                "13000.00",
                1.3333,
                true,
                "0.00",
                "-2500.00"
            ]),
            json!([
                "East",
                "2025-02-01",
                "13500.00",
                "18000.00",
                1.6667,
                true,
                "0.00",
                "-4500.00"
            ]),
            json!([
                "East",
                "2025-03-01",
                "10500.00",
                "21000.00",
                2.0,
                true,
                "0.00",
                "-10500.00"
            ]),
            json!([
                "North",
                "2025-01-01",
                "0.00",
                "8000.00",
                1.0,
                false,
                "0.00",
                "-8000.00"
            ]),
            json!([
                "West",
                "2025-01-01",
                "2450.00",
                "0.00",
                0.0,
                true,
                "0.00",
                "2450.00"
            ]),
            json!([
                "West",
                "2025-02-01",
                "11000.00",
                "4000.00",
                0.5,
                true,
                "0.00",
                "7000.00"
            ]),
            json!([
                "West",
                "2025-03-01",
                "3000.00",
                "14000.00",
                2.0,
                false,
                "0.00",
                "-11000.00"
            ]),
            json!([
                null,
                "2025-01-01",
                "350.00",
                "5000.00",
                1.0,
                true,
                "0.00",
                "-4650.00"
            ]),
            json!([
                null,
                "2025-02-01",
                "350.00",
                "9999.99",
                1.5,
                false,
                "0.00",
                "-9649.99"
            ]),
            json!([
                null,
                "2025-03-01",
                "350.00",
                "5000.00",
                1.0,
                true,
                "0.00",
                "-4650.00"
            ]),
        ]
    );

    // --- RECONCILIATION (version 7): computed capacity becomes 7 generated
    // SUPPLY lines (East x3, West Jan/Feb, unassigned Jan/Mar).
    assert_eq!(advance(&app, &id).await["version"], 7);
    assert_eq!(
        lines(&app, &id, "SUPPLY").await,
        [
            json!(["East", "2025-01-01", "13000.00", 1.3333]),
            json!(["East", "2025-02-01", "18000.00", 1.6667]),
            json!(["East", "2025-03-01", "21000.00", 2.0]),
            json!(["North", "2025-01-01", "8000.00", 1.0]),
            json!(["West", "2025-01-01", "0.00", 0.0]),
            json!(["West", "2025-02-01", "4000.00", 0.5]),
            json!(["West", "2025-03-01", "14000.00", 2.0]),
            json!([null, "2025-01-01", "5000.00", 1.0]),
            json!([null, "2025-02-01", "9999.99", 1.5]),
            json!([null, "2025-03-01", "5000.00", 1.0]),
        ]
    );
    // Adjustments: West February's 7,000 gap is closed exactly by one, West
    // January's 2,450 by two (2,000 + 450), and a negative one widens the
    // unassigned March gap by 100.
    let d = app
        .ok_as(
            &ops,
            ADJUST,
            json!({ "id": id, "a": [
                { "territoryId": w.west, "month": "2025-02-01", "amount": "7000", "budget": "5000", "note": "Contract AE for February" },
                { "territoryId": w.west, "month": "2025-01-01", "amount": "2000", "note": "Partner deal registration" },
                { "territoryId": w.west, "month": "2025-01-01", "amount": "450", "note": "Pull a renewal forward" },
                { "territoryId": null, "month": "2025-03-01", "amount": "-100", "note": "Price concession" },
            ] }),
        )
        .await;
    assert_eq!(d["addSopAdjustments"]["version"], 8);
    let adj = app
        .ok(
            "query($id: ID!) { sopPlan(id: $id) { lines(kind: ADJUSTMENT) { territory { name } month amount budget note author } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        adj["sopPlan"]["lines"][0],
        json!({ "territory": { "name": "West" }, "month": "2025-01-01", "amount": "2000.00", "budget": null,
                "note": "Partner deal registration", "author": "ops-tester" })
    );
    assert_eq!(
        adj["sopPlan"]["lines"][2],
        json!({ "territory": { "name": "West" }, "month": "2025-02-01", "amount": "7000.00", "budget": "5000.00",
                "note": "Contract AE for February", "author": "ops-tester" })
    );
    assert_eq!(
        gaps(&app, &id).await,
        [
            json!([
                "East",
                "2025-01-01",
                "10500.00",
                "13000.00",
                1.3333,
                false,
                "0.00",
                "-2500.00"
            ]),
            json!([
                "East",
                "2025-02-01",
                "13500.00",
                "18000.00",
                1.6667,
                false,
                "0.00",
                "-4500.00"
            ]),
            json!([
                "East",
                "2025-03-01",
                "10500.00",
                "21000.00",
                2.0,
                false,
                "0.00",
                "-10500.00"
            ]),
            json!([
                "North",
                "2025-01-01",
                "0.00",
                "8000.00",
                1.0,
                false,
                "0.00",
                "-8000.00"
            ]),
            json!([
                "West",
                "2025-01-01",
                "2450.00",
                "0.00",
                0.0,
                false,
                "2450.00",
                "0.00"
            ]),
            json!([
                "West",
                "2025-02-01",
                "11000.00",
                "4000.00",
                0.5,
                false,
                "7000.00",
                "0.00"
            ]),
            json!([
                "West",
                "2025-03-01",
                "3000.00",
                "14000.00",
                2.0,
                false,
                "0.00",
                "-11000.00"
            ]),
            json!([
                null,
                "2025-01-01",
                "350.00",
                "5000.00",
                1.0,
                false,
                "0.00",
                "-4650.00"
            ]),
            json!([
                null,
                "2025-02-01",
                "350.00",
                "9999.99",
                1.5,
                false,
                "0.00",
                "-9649.99"
            ]),
            json!([
                null,
                "2025-03-01",
                "350.00",
                "5000.00",
                1.0,
                false,
                "-100.00",
                "-4550.00"
            ]),
        ]
    );

    // --- RELEASED (version 9): a stale release is a CONFLICT first.
    assert_eq!(
        app.error_code(&ops, RELEASE, json!({ "id": id, "v": 7 }))
            .await,
        "CONFLICT"
    );
    let r = app
        .ok_as(
            &ops,
            RELEASE,
            json!({ "id": id, "v": 8, "n": "Signed off by the CRO" }),
        )
        .await;
    assert_eq!(r["releaseSopPlan"]["stage"], "RELEASED");
    assert_eq!(r["releaseSopPlan"]["version"], 9);
    assert!(r["releaseSopPlan"]["releasedAt"].is_string());

    // Before anything in the horizon besides West's 11,000 is won, and then
    // (by April 2nd, once the horizon is over): East 9,000 in January and 13,500 in February, 700 unassigned in March,
    // North 2,000 on the last second of March (no plan for it), and an East
    // deal on April 1st (after the horizon).
    app.set_clock("2025-04-02T00:00:00Z");
    won(&app, &w.ann, Some(&w.east), "9000", "2025-01-20T10:00:00Z").await;
    won(&app, &w.ann, Some(&w.east), "13500", "2025-02-14T10:00:00Z").await;
    won(&app, &w.uma, None, "700", "2025-03-03T10:00:00Z").await;
    won(&app, &w.ann, Some(&w.north), "2000", "2025-03-31T23:59:59Z").await;
    won(&app, &w.ann, Some(&w.east), "99000", "2025-04-01T00:00:00Z").await;
    let pva = app
        .ok(
            "query($id: ID!) { sopPlan(id: $id) { planVsActual { territory { name } month planned actual variance variancePct } } }",
            json!({ "id": id }),
        )
        .await;
    let rows: Vec<Value> = pva["sopPlan"]["planVsActual"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            json!([
                r["territory"]["name"],
                r["month"],
                r["planned"],
                r["actual"],
                r["variance"],
                r["variancePct"]
            ])
        })
        .collect();
    assert_eq!(
        rows,
        [
            // -1,500 / 10,500 = -1/7.
            json!([
                "East",
                "2025-01-01",
                "10500.00",
                "9000.00",
                "-1500.00",
                -1.0 / 7.0
            ]),
            json!(["East", "2025-02-01", "13500.00", "13500.00", "0.00", 0.0]),
            json!(["East", "2025-03-01", "10500.00", "0.00", "-10500.00", -1.0]),
            json!(["North", "2025-03-01", "0.00", "2000.00", "2000.00", null]),
            json!(["West", "2025-01-01", "2450.00", "0.00", "-2450.00", -1.0]),
            json!(["West", "2025-02-01", "11000.00", "11000.00", "0.00", 0.0]),
            json!(["West", "2025-03-01", "3000.00", "0.00", "-3000.00", -1.0]),
            json!([null, "2025-01-01", "350.00", "0.00", "-350.00", -1.0]),
            json!([null, "2025-02-01", "350.00", "0.00", "-350.00", -1.0]),
            json!([null, "2025-03-01", "350.00", "700.00", "350.00", 1.0]),
        ]
    );

    // Transitions: actor, note (default or given) for every move.
    let t = app
        .ok(
            "query($id: ID!) { sopPlan(id: $id) { transitions { from to actor note at } } }",
            json!({ "id": id }),
        )
        .await;
    let t: Vec<Value> = t["sopPlan"]["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert!(t["at"].is_string());
            json!([t["from"], t["to"], t["actor"], t["note"]])
        })
        .collect();
    assert_eq!(
        t,
        [
            json!([
                null,
                "DATA_GATHERING",
                "ops-tester",
                "Plan created for 2025-01..2025-03: gathered 6 actual and 9 baseline lines"
            ]),
            json!([
                "DATA_GATHERING",
                "DEMAND_PLANNING",
                "ops-tester",
                "Data checked"
            ]),
            json!([
                "DEMAND_PLANNING",
                "SUPPLY_PLANNING",
                "admin-tester",
                "Demand signed off; baseline confirmed as demand for 7 territory-months"
            ]),
            json!([
                "SUPPLY_PLANNING",
                "RECONCILIATION",
                "admin-tester",
                "Supply signed off; computed capacity recorded for 7 territory-months"
            ]),
            json!([
                "RECONCILIATION",
                "RELEASED",
                "ops-tester",
                "Signed off by the CRO"
            ]),
        ]
    );
    // Every mutation wrote the audit trail, newest first.
    let audit = app
        .ok(
            "query($id: ID!) { auditLog(entityType: \"SopPlan\", entityId: $id) { action actor } }",
            json!({ "id": id }),
        )
        .await;
    let actions: Vec<&str> = audit["auditLog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "releaseSopPlan",
            "addSopAdjustments",
            "advanceSopPlan",
            "setSopSupply",
            "advanceSopPlan",
            "setSopDemand",
            "setSopDemand",
            "advanceSopPlan",
            "createSopPlan"
        ]
    );

    // --- Revision 2, made on 10 March 2025: January and February are over.
    // It gathers again as of that day and carries over the lines people
    // entered for March.
    app.set_clock("2025-03-10T09:00:00Z");
    let rev = app.ok_as(&ops, REVISE, json!({ "id": id })).await;
    let rev_id = rev["reviseSopPlan"]["id"].as_str().unwrap().to_owned();
    assert_ne!(rev_id, id);
    assert_eq!(
        rev["reviseSopPlan"],
        json!({ "id": rev_id, "stage": "DATA_GATHERING", "version": 1, "revision": 2,
                "previousRevision": { "id": id, "revision": 1 } })
    );
    // ACTUAL: Sep 2024 up to the first planned month (March), so January's
    // 9,000 and February's 13,500 and 11,000 are in (revision 1 had none).
    assert_eq!(
        lines(&app, &rev_id, "ACTUAL").await,
        [
            json!(["East", "2024-09-01", "9000.00", null]),
            json!(["East", "2024-10-01", "12000.00", null]),
            json!(["East", "2024-11-01", "15000.00", null]),
            json!(["East", "2024-12-01", "3000.00", null]),
            json!(["East", "2025-01-01", "9000.00", null]),
            json!(["East", "2025-02-01", "13500.00", null]),
            json!(["West", "2024-10-01", "7000.00", null]),
            json!(["West", "2025-02-01", "11000.00", null]),
            json!([null, "2024-12-01", "1000.00", null]),
        ]
    );
    // BASELINE for March only, run rate over Dec 2024..Feb 2025 (the whole
    // months before the current one), x 1.05:
    // East (3,000 + 9,000 + 13,500) / 3 = 8,500 -> 8,925.00;
    // West 11,000 / 3 -> 3,850.00; unassigned 1,000 / 3 -> 350, raised to
    // the 700 already won on 3 March; North won 2,000 on 31 March (R = 0).
    assert_eq!(
        lines(&app, &rev_id, "BASELINE").await,
        [
            json!(["East", "2025-03-01", "8925.00", null]),
            json!(["North", "2025-03-01", "2000.00", null]),
            json!(["West", "2025-03-01", "3850.00", null]),
            json!([null, "2025-03-01", "700.00", null]),
        ]
    );
    // DEMAND: the months over take their actual (generated, not carried);
    // West March's 3,000 is carried from revision 1. East February's
    // 13,500 entered in revision 1 is not carried: February is over.
    let demand = app
        .ok(
            "query($id: ID!) { sopPlan(id: $id) { plannedFrom lines(kind: DEMAND) { territory { name } month amount \
             generated carried carriedFrom { id revision } author note } } }",
            json!({ "id": rev_id }),
        )
        .await;
    assert_eq!(demand["sopPlan"]["plannedFrom"], "2025-03-01");
    assert_eq!(
        demand["sopPlan"]["lines"],
        json!([
            { "territory": { "name": "East" }, "month": "2025-01-01", "amount": "9000.00", "generated": true,
              "carried": false, "carriedFrom": null, "author": "ops-tester",
              "note": "2025-01 was over when the plan was made: its closed-won is the demand (not planned)" },
            { "territory": { "name": "East" }, "month": "2025-02-01", "amount": "13500.00", "generated": true,
              "carried": false, "carriedFrom": null, "author": "ops-tester",
              "note": "2025-02 was over when the plan was made: its closed-won is the demand (not planned)" },
            { "territory": { "name": "West" }, "month": "2025-02-01", "amount": "11000.00", "generated": true,
              "carried": false, "carriedFrom": null, "author": "ops-tester",
              "note": "2025-02 was over when the plan was made: its closed-won is the demand (not planned)" },
            { "territory": { "name": "West" }, "month": "2025-03-01", "amount": "3000.00", "generated": false,
              "carried": true, "carriedFrom": { "id": id, "revision": 1 }, "author": "ops-tester",
              "note": "Key account churned" },
        ])
    );
    // SUPPLY and ADJUSTMENT: only what people entered for March is carried
    // (West's 2 heads; the unassigned -100), not the computed capacity.
    assert_eq!(
        lines(&app, &rev_id, "SUPPLY").await,
        [json!(["West", "2025-03-01", "14000.00", 2.0])]
    );
    assert_eq!(
        lines(&app, &rev_id, "ADJUSTMENT").await,
        [json!([null, "2025-03-01", "-100.00", null])]
    );
    let audit = app
        .ok(
            "query($id: ID!) { auditLog(entityType: \"SopPlan\", entityId: $id) { action actor changes } }",
            json!({ "id": rev_id }),
        )
        .await;
    let changes: Value =
        serde_json::from_str(audit["auditLog"][0]["changes"].as_str().unwrap()).unwrap();
    assert_eq!(audit["auditLog"][0]["action"], "reviseSopPlan");
    assert_eq!(
        changes,
        json!({ "name": [null, "Q1 2025"], "revision": [null, 2], "previousRevisionId": [null, id_num(&id)],
                "stage": [null, "DATA_GATHERING"], "plannedFrom": [null, "2025-03-01"], "approvers": [null, []],
                "actualLines": [null, 9], "baselineLines": [null, 4], "monthsOverDemandLines": [null, 3],
                "carriedLines": [null, 3] })
    );
    // The released plan kept its 38 lines.
    assert_eq!(line_count(&app, &id).await, 38);
    // The revision's gaps cover March only. East: 8,925 - computed 21,000;
    // North: 2,000 and no reps; West: carried 3,000 - carried 14,000;
    // unassigned: 700 - computed 5,000 + 100 = -4,200.
    assert_eq!(
        gaps(&app, &rev_id).await,
        [
            json!([
                "East",
                "2025-03-01",
                "8925.00",
                "21000.00",
                2.0,
                true,
                "0.00",
                "-12075.00"
            ]),
            json!([
                "North",
                "2025-03-01",
                "2000.00",
                "0.00",
                null,
                false,
                "0.00",
                "2000.00"
            ]),
            json!([
                "West",
                "2025-03-01",
                "3000.00",
                "14000.00",
                2.0,
                false,
                "0.00",
                "-11000.00"
            ]),
            json!([
                null,
                "2025-03-01",
                "700.00",
                "5000.00",
                1.0,
                true,
                "-100.00",
                "-4200.00"
            ]),
        ]
    );
    // A plan is revised once: the next revision starts from the latest.
    assert_eq!(
        app.error_code(&ops, REVISE, json!({ "id": id })).await,
        "CONFLICT"
    );
    // Not-yet-released revisions cannot be revised.
    assert_eq!(
        app.error_code(&ops, REVISE, json!({ "id": rev_id })).await,
        "INVALID_TRANSITION"
    );
    // The released plan did not change, and is listed by stage.
    assert_eq!(version(&app, &id).await, 9);
    let listed = app
        .ok(
            "{ sopPlans(stage: RELEASED) { id } all: sopPlans { id revision } }",
            json!({}),
        )
        .await;
    assert_eq!(listed["sopPlans"], json!([{ "id": id }]));
    assert_eq!(
        listed["all"],
        json!([{ "id": rev_id, "revision": 2 }, { "id": id, "revision": 1 }])
    );
}

async fn wrong_stage_writes_are_invalid_transitions(app: TestApp) {
    app.set_clock(JAN_2025);
    let admin = app.admin_token();
    let t = app.create_territory("East", None, None).await;
    let id = create_plan(
        &app,
        json!({ "name": "Stages", "horizonStart": "2025-01-01", "horizonMonths": 2 }),
    )
    .await;
    let demand =
        json!({ "id": id, "l": [{ "territoryId": t, "month": "2025-01-01", "amount": "100" }] });
    let supply = json!({ "id": id, "l": [{ "territoryId": t, "month": "2025-01-01", "headcount": 1, "amount": "100" }] });
    let adjust = json!({ "id": id, "a": [{ "territoryId": t, "month": "2025-01-01", "amount": "100", "note": "x" }] });
    let release = |v: i64| json!({ "id": id, "v": v });
    let back = |s: &str| json!({ "id": id, "s": s, "r": "why not" });

    // DATA_GATHERING (version 1): nothing can be set, nothing released, and
    // reopen has no earlier stage.
    for (q, vars) in [
        (DEMAND, demand.clone()),
        (SUPPLY, supply.clone()),
        (ADJUST, adjust.clone()),
        (RELEASE, release(1)),
        (REOPEN, back("DATA_GATHERING")),
    ] {
        assert_eq!(
            app.error_code(&admin, q, vars).await,
            "INVALID_TRANSITION",
            "{q}"
        );
    }
    assert_eq!(version(&app, &id).await, 1);
    let body = app.gql(&admin, DEMAND, demand.clone()).await;
    assert_eq!(
        body["errors"][0]["message"],
        format!("demand can only be set in DEMAND_PLANNING; S&OP plan {id} is in DATA_GATHERING: advance it to DEMAND_PLANNING first")
    );

    // DEMAND_PLANNING (version 2): only demand.
    advance(&app, &id).await;
    for (q, vars) in [
        (SUPPLY, supply.clone()),
        (ADJUST, adjust.clone()),
        (RELEASE, release(2)),
        (REOPEN, back("SUPPLY_PLANNING")),
    ] {
        assert_eq!(
            app.error_code(&admin, q, vars).await,
            "INVALID_TRANSITION",
            "{q}"
        );
    }
    app.ok(DEMAND, demand.clone()).await; // version 3

    // SUPPLY_PLANNING (version 4): only supply.
    advance(&app, &id).await;
    for (q, vars) in [
        (DEMAND, demand.clone()),
        (ADJUST, adjust.clone()),
        (RELEASE, release(4)),
    ] {
        assert_eq!(
            app.error_code(&admin, q, vars).await,
            "INVALID_TRANSITION",
            "{q}"
        );
    }
    let body = app.gql(&admin, DEMAND, demand.clone()).await;
    assert_eq!(
        body["errors"][0]["message"],
        format!("demand can only be set in DEMAND_PLANNING; S&OP plan {id} is in SUPPLY_PLANNING: reopen it to DEMAND_PLANNING first")
    );
    app.ok(SUPPLY, supply.clone()).await; // version 5

    // RECONCILIATION (version 6): only adjustments and release.
    advance(&app, &id).await;
    for (q, vars) in [(DEMAND, demand.clone()), (SUPPLY, supply.clone())] {
        assert_eq!(
            app.error_code(&admin, q, vars).await,
            "INVALID_TRANSITION",
            "{q}"
        );
    }
    assert_eq!(
        app.error_code(&admin, REOPEN, back("RELEASED")).await,
        "INVALID_TRANSITION"
    );
    app.ok(ADJUST, adjust.clone()).await; // version 7
    assert_eq!(version(&app, &id).await, 7);
    // Rejected writes changed nothing: one line of each set kind.
    assert_eq!(lines(&app, &id, "DEMAND").await.len(), 1);
    assert_eq!(lines(&app, &id, "SUPPLY").await.len(), 1);
    assert_eq!(lines(&app, &id, "ADJUSTMENT").await.len(), 1);
    // Unknown plans are NOT_FOUND.
    assert_eq!(
        app.error_code(&admin, ADVANCE, json!({ "id": "999999", "v": 1 }))
            .await,
        "NOT_FOUND"
    );
}

async fn stale_and_concurrent_advances(app: TestApp) {
    app.set_clock(JAN_2025);
    let admin = app.admin_token();
    let id = create_plan(
        &app,
        json!({ "name": "Race", "horizonStart": "2025-01-01", "horizonMonths": 1 }),
    )
    .await;
    // Stale and future versions are CONFLICTs and change nothing.
    for v in [0, 2] {
        let body = app.gql(&admin, ADVANCE, json!({ "id": id, "v": v })).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "CONFLICT");
        assert_eq!(
            body["errors"][0]["message"],
            format!("S&OP plan {id} is at version 1, not {v}: reload it and retry")
        );
    }
    assert_eq!(plan(&app, &id).await["stage"], "DATA_GATHERING");

    // Three rounds of two advances racing with the same expectedVersion:
    // exactly one wins each time and the version goes up by exactly one.
    let stages = ["DEMAND_PLANNING", "SUPPLY_PLANNING", "RECONCILIATION"];
    for (round, stage) in stages.iter().enumerate() {
        let v = 1 + round as i64;
        let vars = json!({ "id": id, "v": v });
        let (a, b) = futures::join!(
            app.gql(&admin, ADVANCE, vars.clone()),
            app.gql(&admin, ADVANCE, vars.clone())
        );
        let outcomes: Vec<&Value> = vec![&a, &b];
        let wins: Vec<&&Value> = outcomes
            .iter()
            .filter(|r| r.get("errors").is_none())
            .collect();
        let conflicts = outcomes
            .iter()
            .filter(|r| r["errors"][0]["extensions"]["code"] == "CONFLICT")
            .count();
        assert_eq!(
            (wins.len(), conflicts),
            (1, 1),
            "round {round}: {a:#} {b:#}"
        );
        assert_eq!(
            wins[0]["data"]["advanceSopPlan"],
            json!({ "id": id, "stage": stage, "version": v + 1 })
        );
        let p = plan(&app, &id).await;
        assert_eq!(
            (p["stage"].as_str().unwrap(), p["version"].as_i64().unwrap()),
            (*stage, v + 1)
        );
    }
    // One transition per successful move, none for the losers.
    assert_eq!(app.count_rows("sop_transition").await, 4);
    // A release racing an adjustment without expectedVersion: both succeed in
    // some order or the adjustment sees a released plan; never both lost.
    let t = app.create_territory("East", None, None).await;
    let (r, a) = futures::join!(
        app.gql(&admin, RELEASE, json!({ "id": id, "v": 4 })),
        app.gql(
            &admin,
            ADJUST,
            json!({ "id": id, "a": [{ "territoryId": t, "month": "2025-01-01", "amount": "10", "note": "race" }] })
        )
    );
    let adjusted = a.get("errors").is_none();
    if adjusted {
        // The adjustment went first: the release is stale.
        assert_eq!(r["errors"][0]["extensions"]["code"], "CONFLICT", "{r:#}");
        assert_eq!(plan(&app, &id).await["version"], 5);
    } else {
        assert_eq!(a["errors"][0]["extensions"]["code"], "PLAN_LOCKED", "{a:#}");
        assert_eq!(r["data"]["releaseSopPlan"]["version"], 5);
    }
}

async fn released_plan_is_locked(app: TestApp) {
    app.set_clock(JAN_2025);
    let admin = app.admin_token();
    let t = app.create_territory("East", None, None).await;
    let id = create_plan(
        &app,
        json!({ "name": "Locked", "horizonStart": "2025-01-01", "horizonMonths": 1 }),
    )
    .await;
    for _ in 0..3 {
        advance(&app, &id).await;
    }
    app.ok(RELEASE, json!({ "id": id, "v": 4 })).await;
    let lines_before = line_count(&app, &id).await;
    for (q, vars) in [
        (
            DEMAND,
            json!({ "id": id, "l": [{ "territoryId": t, "month": "2025-01-01", "amount": "1" }] }),
        ),
        (
            SUPPLY,
            json!({ "id": id, "l": [{ "territoryId": t, "month": "2025-01-01", "headcount": 1, "amount": "1" }] }),
        ),
        (
            ADJUST,
            json!({ "id": id, "a": [{ "territoryId": t, "month": "2025-01-01", "amount": "1", "note": "x" }] }),
        ),
        (RELEASE, json!({ "id": id, "v": 5 })),
        (
            REOPEN,
            json!({ "id": id, "s": "RECONCILIATION", "r": "Board asked for changes" }),
        ),
    ] {
        assert_eq!(app.error_code(&admin, q, vars).await, "PLAN_LOCKED", "{q}");
    }
    let body = app
        .gql(
            &admin,
            REOPEN,
            json!({ "id": id, "s": "DATA_GATHERING", "r": "x" }),
        )
        .await;
    assert_eq!(
        body["errors"][0]["message"],
        "the plan is released and read-only: start a new revision with reviseSopPlan to change it"
    );
    // There is no stage after RELEASED (the contract: INVALID_TRANSITION).
    assert_eq!(
        app.error_code(&admin, ADVANCE, json!({ "id": id, "v": 5 }))
            .await,
        "INVALID_TRANSITION"
    );
    assert_eq!(version(&app, &id).await, 5);
    assert_eq!(line_count(&app, &id).await, lines_before);
    assert_eq!(app.count_rows("sop_transition").await, 5);
}

async fn bad_horizons_and_inputs_write_nothing(app: TestApp) {
    app.set_clock(JAN_2025);
    let admin = app.admin_token();
    let cases = [
        (
            json!({ "name": "Mid-month", "horizonStart": "2025-01-15", "horizonMonths": 3 }),
            "horizonStart must be the first day of a month, e.g. 2025-01-01 (got 2025-01-15)",
        ),
        (
            json!({ "name": "Empty", "horizonStart": "2025-01-01", "horizonMonths": 0 }),
            "horizonMonths must be between 1 and 12 (got 0)",
        ),
        (
            json!({ "name": "Too long", "horizonStart": "2025-01-01", "horizonMonths": 13 }),
            "horizonMonths must be between 1 and 12 (got 13)",
        ),
        (
            json!({ "name": "No lookback", "horizonStart": "2025-01-01", "horizonMonths": 1, "lookbackMonths": 0 }),
            "lookbackMonths must be between 1 and 36 (got 0)",
        ),
        (
            json!({ "name": "Bad growth", "horizonStart": "2025-01-01", "horizonMonths": 1, "growthRate": -1.0 }),
            "growthRate must be greater than -1 and at most 10 (0.05 is 5% growth)",
        ),
        (
            json!({ "name": "  ", "horizonStart": "2025-01-01", "horizonMonths": 1 }),
            "name must not be empty",
        ),
    ];
    for (input, message) in cases {
        let body = app.gql(&admin, CREATE, json!({ "i": input })).await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{body:#}"
        );
        assert_eq!(body["errors"][0]["message"], message);
    }
    assert_eq!(app.count_rows("sop_plan").await, 0);
    assert_eq!(app.count_rows("sop_line").await, 0);

    // Bad lines in DEMAND_PLANNING: nothing written, version unchanged.
    let t = app.create_territory("East", None, None).await;
    let id = create_plan(
        &app,
        json!({ "name": "Inputs", "horizonStart": "2025-01-01", "horizonMonths": 2 }),
    )
    .await;
    advance(&app, &id).await;
    let line = |t: Value, month: &str, amount: &str| json!({ "territoryId": t, "month": month, "amount": amount });
    let cases: Vec<(Vec<Value>, String)> = vec![
        (vec![line(json!(t), "2025-03-01", "1")],
         "lines[0].month: 2025-03-01 is not the first day of a month of the plan's horizon 2025-01..2025-02".into()),
        (vec![line(json!(t), "2025-01-01", "1"), line(json!(t), "2025-02-15", "1")],
         "lines[1].month: 2025-02-15 is not the first day of a month of the plan's horizon 2025-01..2025-02".into()),
        (vec![line(json!("999999"), "2025-01-01", "1")],
         "lines[0].territoryId: no territory with id 999999".into()),
        (vec![line(json!(t), "2025-01-01", "-5")], "lines[0].amount: amount must not be negative".into()),
        (vec![line(json!(t), "2025-01-01", "1.001")], "lines[0].amount: amount has more than 2 decimal places".into()),
        (vec![line(json!(t), "2025-01-01", "1"), line(json!(t), "2025-01-01", "2")],
         format!("lines[1] repeats territory {t} 2025-01: one line per territory and month")),
        (vec![], "lines must not be empty".into()),
    ];
    for (l, message) in cases {
        let body = app.gql(&admin, DEMAND, json!({ "id": id, "l": l })).await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{body:#}"
        );
        assert_eq!(body["errors"][0]["message"], message);
    }
    assert_eq!(version(&app, &id).await, 2);
    assert_eq!(lines(&app, &id, "DEMAND").await.len(), 0);
    // A supply line without an amount needs some quota to average.
    advance(&app, &id).await;
    let body = app
        .gql(
            &admin,
            SUPPLY,
            json!({ "id": id, "l": [{ "territoryId": t, "month": "2025-01-01", "headcount": 1 }] }),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(
        body["errors"][0]["message"],
        "lines[0].amount is required: no active rep has a monthly quota for 2025-01 to average"
    );
    assert_eq!(
        app.error_code(&admin, SUPPLY, json!({ "id": id, "l": [{ "territoryId": t, "month": "2025-01-01", "headcount": -1, "amount": "1" }] })).await,
        "BAD_USER_INPUT"
    );
    advance(&app, &id).await;
    // Adjustments need a note.
    let body = app
        .gql(&admin, ADJUST, json!({ "id": id, "a": [{ "territoryId": t, "month": "2025-01-01", "amount": "5", "note": " " }] }))
        .await;
    assert_eq!(
        body["errors"][0]["message"],
        "adjustments[0].note must not be empty"
    );
    assert_eq!(version(&app, &id).await, 4);
}

async fn reopen_keeps_the_reason_and_recomputes_generated_lines(app: TestApp) {
    let admin = app.admin_token();
    let east = app.create_territory("East", None, None).await;
    let ann = app
        .create_rep(
            "Ann",
            None,
            Some(&east),
            json!({ "hiredAt": "2023-01-01", "rampMonths": 0 }),
        )
        .await;
    app.set_quota(&ann, "2025-01", "10000").await;
    // 3,000 won in each of Oct..Dec 2024: R = 3,000 for January.
    for m in ["2024-10-10", "2024-11-10", "2024-12-10"] {
        won(&app, &ann, Some(&east), "3000", &format!("{m}T10:00:00Z")).await;
    }
    app.set_clock(JAN_2025);
    let id = create_plan(
        &app,
        json!({ "name": "Reopen", "horizonStart": "2025-01-01", "horizonMonths": 1 }),
    )
    .await;
    advance(&app, &id).await; // DEMAND_PLANNING, v2
    advance(&app, &id).await; // SUPPLY_PLANNING, v3: demand 3,000 confirmed
    advance(&app, &id).await; // RECONCILIATION, v4: supply 10,000 computed
    app.ok(
        ADJUST,
        json!({ "id": id, "a": [{ "territoryId": east, "month": "2025-01-01", "amount": "-500", "note": "Delay" }] }),
    )
    .await; // v5
    assert_eq!(
        gaps(&app, &id).await,
        [json!([
            "East",
            "2025-01-01",
            "3000.00",
            "10000.00",
            1.0,
            false,
            "-500.00",
            "-6500.00"
        ])]
    );
    // A reason is required.
    assert_eq!(
        app.error_code(
            &admin,
            REOPEN,
            json!({ "id": id, "s": "SUPPLY_PLANNING", "r": "  " })
        )
        .await,
        "BAD_USER_INPUT"
    );
    // Ann's quota rises to 12,000; reopen supply planning to pick it up.
    app.set_quota(&ann, "2025-01", "12000").await;
    let r = app
        .ok(
            REOPEN,
            json!({ "id": id, "s": "SUPPLY_PLANNING", "r": "Quota for January was raised" }),
        )
        .await;
    assert_eq!(
        r["reopenSopPlan"],
        json!({ "id": id, "stage": "SUPPLY_PLANNING", "version": 6 })
    );
    // The generated supply line is gone (live capacity shows instead); the
    // confirmed demand and the adjustment stay.
    assert_eq!(lines(&app, &id, "SUPPLY").await.len(), 0);
    assert_eq!(lines(&app, &id, "DEMAND").await.len(), 1);
    assert_eq!(
        gaps(&app, &id).await,
        [json!([
            "East",
            "2025-01-01",
            "3000.00",
            "12000.00",
            1.0,
            true,
            "-500.00",
            "-8500.00"
        ])]
    );
    advance(&app, &id).await; // RECONCILIATION, v7, supply recomputed
    assert_eq!(
        lines(&app, &id, "SUPPLY").await,
        [json!(["East", "2025-01-01", "12000.00", 1.0])]
    );
    // Back to DEMAND_PLANNING: the confirmed demand and computed supply go.
    app.ok(
        REOPEN,
        json!({ "id": id, "s": "DEMAND_PLANNING", "r": "Pricing change" }),
    )
    .await; // v8
    assert_eq!(lines(&app, &id, "DEMAND").await.len(), 0);
    assert_eq!(lines(&app, &id, "SUPPLY").await.len(), 0);
    assert_eq!(lines(&app, &id, "ADJUSTMENT").await.len(), 1);
    let t = app
        .ok(
            "query($id: ID!) { sopPlan(id: $id) { version stage transitions { from to note } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(t["sopPlan"]["version"], 8);
    // The audit trail keeps the reason and what was removed.
    let audit = app
        .ok(
            "query($id: ID!) { auditLog(entityType: \"SopPlan\", entityId: $id, first: 1) { action actor changes } }",
            json!({ "id": id }),
        )
        .await;
    let entry = &audit["auditLog"][0];
    assert_eq!(
        (&entry["action"], &entry["actor"]),
        (&json!("reopenSopPlan"), &json!("admin-tester"))
    );
    let changes: Value = serde_json::from_str(entry["changes"].as_str().unwrap()).unwrap();
    assert_eq!(
        changes,
        json!({ "stage": ["RECONCILIATION", "DEMAND_PLANNING"], "version": [7, 8],
                "reason": [null, "Pricing change"], "removedGeneratedLines": [null, 2] })
    );
    let last: Vec<Value> = t["sopPlan"]["transitions"].as_array().unwrap()[4..].to_vec();
    assert_eq!(
        last,
        [
            json!({ "from": "RECONCILIATION", "to": "SUPPLY_PLANNING", "note": "Quota for January was raised" }),
            json!({ "from": "SUPPLY_PLANNING", "to": "RECONCILIATION", "note": "Supply signed off; computed capacity recorded for 1 territory-months" }),
            json!({ "from": "RECONCILIATION", "to": "DEMAND_PLANNING", "note": "Pricing change" }),
        ]
    );
}

async fn roles_run_and_read_plans(app: TestApp) {
    app.set_clock(JAN_2025);
    let rep = app.create_rep("Rae", None, None, json!({})).await;
    let ops = app.token(Role::Ops, None);
    let viewer = app.token(Role::Viewer, None);
    let manager = app.token(Role::Manager, Some(id_num(&rep)));
    let rep_t = app.token(Role::Rep, Some(id_num(&rep)));
    let integration = app.token(Role::Integration, None);
    let input =
        json!({ "i": { "name": "Roles", "horizonStart": "2025-01-01", "horizonMonths": 1 } });
    let created = app.ok_as(&ops, CREATE, input.clone()).await;
    let id = created["createSopPlan"]["id"].as_str().unwrap().to_owned();
    app.ok_as(&ops, ADVANCE, json!({ "id": id, "v": 1 })).await;

    let read =
        "query($id: ID!) { sopPlan(id: $id) { stage lines { id } gaps { gap } } sopPlans { id } }";
    for token in [&viewer, &manager, &ops] {
        let d = app.ok_as(token, read, json!({ "id": id })).await;
        assert_eq!(d["sopPlan"]["stage"], "DEMAND_PLANNING");
        assert_eq!(d["sopPlans"], json!([{ "id": id }]));
    }
    for token in [&rep_t, &integration] {
        assert_eq!(
            app.error_code(token, read, json!({ "id": id })).await,
            "FORBIDDEN"
        );
        assert_eq!(
            app.error_code(token, "{ sopPlans { id } }", json!({}))
                .await,
            "FORBIDDEN"
        );
    }
    let writes = [
        (CREATE, input.clone()),
        (ADVANCE, json!({ "id": id, "v": 2 })),
        (
            DEMAND,
            json!({ "id": id, "l": [{ "month": "2025-01-01", "amount": "1" }] }),
        ),
        (REOPEN, json!({ "id": id, "s": "DATA_GATHERING", "r": "x" })),
        (REVISE, json!({ "id": id })),
    ];
    for token in [&viewer, &manager, &rep_t, &integration] {
        for (q, vars) in &writes {
            assert_eq!(
                app.error_code(token, q, vars.clone()).await,
                "FORBIDDEN",
                "{q}"
            );
        }
    }
    assert_eq!(app.count_rows("sop_plan").await, 1);
    assert_eq!(version(&app, &id).await, 2);
    // OPS writes demand for the unassigned bucket (territoryId omitted).
    let d = app
        .ok_as(
            &ops,
            DEMAND,
            json!({ "id": id, "l": [{ "month": "2025-01-01", "amount": "1" }] }),
        )
        .await;
    assert_eq!(d["setSopDemand"]["version"], 3);
    assert_eq!(
        lines(&app, &id, "DEMAND").await,
        [json!([null, "2025-01-01", "1.00", null])]
    );
}
