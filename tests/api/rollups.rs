//! The deal rollups answer exactly what a scan of the deals answers: random
//! histories of creates, backdated closes, stage moves (reopening too),
//! patches of owner, territory, amount and expected close, bulk upserts and
//! compactions, compared at checkpoints with every metric they serve
//! asked with rollups (the default) and without (`Salesops-Rollups: off`),
//! as an admin, a manager and a rep. A rebuild restores rollups that were
//! tampered with, and the tampering shows in the answers first (so the
//! comparison does read the rollups).
use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as PropConfig, RngAlgorithm, TestRng, TestRunner};
use sea_orm::ConnectionTrait;
use serde_json::{json, Value};

use api::auth::Role;
use api::service::rollup;

use crate::db_tests;
use crate::helpers::{Backend, TestApp};

db_tests!(
    rollups_answer_what_the_deals_answer_on_random_histories,
    a_rebuild_restores_rollups_that_drifted,
    the_rollup_header_takes_on_or_off,
    many_open_deals_bound_a_forecast_the_same,
    concurrent_writes_and_compactions_stay_exact,
    a_compaction_leaves_no_dead_delta_rows_behind
);

const STAGES: [&str; 7] = [
    "Discovery",
    "Qualified",
    "Demo",
    "Trial",
    "Final Call",
    "Won",
    "Lost",
];

#[derive(Debug, Clone)]
enum Op {
    /// A new deal, opened `opened_days` ago; a closed one closed
    /// `close_frac` of the way from opening to now (backdated).
    Create {
        owner: usize,
        territory: Option<usize>,
        stage: usize,
        cents: i64,
        opened_days: i64,
        expected_in_days: Option<i64>,
        close_frac: u8,
    },
    /// A stage move (to WON or LOST: a close; from one: a reopen) taking
    /// effect `back_frac` of the way back to the deal's latest change.
    Move {
        deal: usize,
        stage: usize,
        back_frac: u8,
    },
    Patch {
        deal: usize,
        cents: Option<i64>,
        owner: Option<usize>,
        territory: Option<usize>,
        expected_in_days: Option<i64>,
    },
    /// Several deals in one statement by external id (creates or updates).
    Bulk {
        rows: Vec<(usize, usize, usize, i64)>,
    },
    Advance {
        hours: i64,
    },
    Compact,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..4usize, prop::option::of(0..3usize), 0..7usize, 100..5_000_000i64, 0..420i64,
              prop::option::of(-60..200i64), 0..=100u8)
            .prop_map(|(owner, territory, stage, cents, opened_days, expected_in_days, close_frac)| Op::Create {
                owner, territory, stage, cents, opened_days, expected_in_days, close_frac
            }),
        3 => (0..64usize, 0..7usize, 0..=100u8).prop_map(|(deal, stage, back_frac)| Op::Move { deal, stage, back_frac }),
        2 => (0..64usize, prop::option::of(100..5_000_000i64), prop::option::of(0..4usize),
              prop::option::of(0..3usize), prop::option::of(-60..200i64))
            .prop_map(|(deal, cents, owner, territory, expected_in_days)| Op::Patch {
                deal, cents, owner, territory, expected_in_days
            }),
        1 => prop::collection::vec((0..12usize, 0..4usize, 0..7usize, 100..5_000_000i64), 2..6)
            .prop_map(|rows| Op::Bulk { rows }),
        2 => (1..24 * 20i64).prop_map(|hours| Op::Advance { hours }),
        1 => Just(Op::Compact),
    ]
}

struct Org {
    reps: Vec<String>,
    territories: Vec<String>,
    stages: Vec<String>,
    manager: String,
}

struct World {
    now: DateTime<Utc>,
    /// (id, latest change) of the deals made so far.
    deals: Vec<(String, DateTime<Utc>)>,
    /// Stage moves applied.
    moves: usize,
}

impl World {
    /// A world without deals whose clock (and the app's) starts at `at`.
    fn starting(app: &TestApp, at: &str) -> Self {
        app.set_clock(at);
        World {
            now: at.parse().unwrap(),
            deals: Vec::new(),
            moves: 0,
        }
    }
}

fn money(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Builds the org: two territories under a root (segments), a manager with
/// three reps (one without a territory), quotas.
async fn org(app: &TestApp) -> Org {
    let root = app
        .create_territory("Americas", Some("ENTERPRISE"), None)
        .await;
    let east = app
        .create_territory("East", Some("MID_MARKET"), Some(&root))
        .await;
    let west = app.create_territory("West", Some("SMB"), Some(&root)).await;
    let manager = app
        .create_rep("Mia Manager", None, Some(&root), json!({}))
        .await;
    let mut reps = vec![manager.clone()];
    for (name, t) in [
        ("Ana East", Some(&east)),
        ("Ben West", Some(&west)),
        ("Cy Nowhere", None),
    ] {
        reps.push(
            app.create_rep(name, Some(&manager), t.map(String::as_str), json!({}))
                .await,
        );
    }
    for (i, r) in reps.iter().enumerate() {
        for q in ["2026-Q1", "2026-Q2", "2026-Q3"] {
            app.set_quota(r, q, &format!("{}", 40_000 + 10_000 * i as i64))
                .await;
        }
    }
    let mut stages = Vec::new();
    for s in STAGES {
        stages.push(app.stage(s).await);
    }
    Org {
        reps,
        territories: vec![root, east, west],
        stages,
        manager,
    }
}

async fn apply(app: &TestApp, org: &Org, w: &mut World, op: &Op) {
    match op {
        Op::Create {
            owner,
            territory,
            stage,
            cents,
            opened_days,
            expected_in_days,
            close_frac,
        } => {
            let opened = w.now - Duration::days(*opened_days) - Duration::hours(3);
            let mut input = json!({
                "name": format!("deal {}", w.deals.len()),
                "amount": money(*cents),
                "ownerId": org.reps[*owner],
                "stageId": org.stages[*stage],
                "openedAt": rfc(opened),
            });
            if let Some(t) = territory {
                input["territoryId"] = json!(org.territories[*t]);
            }
            if let Some(days) = expected_in_days {
                input["expectedCloseDate"] = json!((w.now + Duration::days(*days)).date_naive());
            }
            let mut last = opened;
            if *stage >= 5 {
                let span = (w.now - opened).num_seconds();
                let closed = opened + Duration::seconds(span * i64::from(*close_frac) / 100);
                input["closedAt"] = json!(rfc(closed));
                input["stageChangedAt"] = json!(rfc(closed));
                last = closed;
            } else if *stage > 0 {
                input["stageChangedAt"] = json!(rfc(opened + Duration::hours(1)));
                last = opened + Duration::hours(1);
            }
            let id = app.create_deal(input).await;
            w.deals.push((id, last));
        }
        Op::Move {
            deal,
            stage,
            back_frac,
        } => {
            if w.deals.is_empty() {
                return;
            }
            let i = deal % w.deals.len();
            let (id, last) = w.deals[i].clone();
            let span = (w.now - last).num_seconds().max(0);
            let at = w.now - Duration::seconds(span * i64::from(*back_frac) / 100);
            let at = at.max(last + Duration::seconds(1)).min(w.now);
            let d = app
                .gql(
                    &app.admin_token(),
                    "mutation($id: ID!, $s: ID!, $at: DateTime) { moveDealStage(id: $id, stageId: $s, at: $at) { id } }",
                    json!({ "id": id, "s": org.stages[*stage], "at": rfc(at) }),
                )
                .await;
            // A move to the stage the deal is in is refused; nothing changed.
            if d.get("errors").is_none() {
                w.deals[i].1 = at;
                w.moves += 1;
            } else {
                assert_eq!(
                    d["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
                    "{d}"
                );
            }
        }
        Op::Patch {
            deal,
            cents,
            owner,
            territory,
            expected_in_days,
        } => {
            if w.deals.is_empty() {
                return;
            }
            let i = deal % w.deals.len();
            let mut patch = json!({});
            if let Some(c) = cents {
                patch["amount"] = json!(money(*c));
            }
            if let Some(o) = owner {
                patch["ownerId"] = json!(org.reps[*o]);
            }
            if let Some(t) = territory {
                patch["territoryId"] = json!(org.territories[*t]);
            }
            if let Some(days) = expected_in_days {
                patch["expectedCloseDate"] = json!((w.now + Duration::days(*days)).date_naive());
            }
            app.ok(
                "mutation($id: ID!, $p: DealPatch!) { updateDeal(id: $id, patch: $p) { id } }",
                json!({ "id": w.deals[i].0, "p": patch }),
            )
            .await;
            w.deals[i].1 = w.deals[i].1.max(w.now);
        }
        Op::Bulk { rows } => {
            let inputs: Vec<Value> = rows
                .iter()
                .map(|(ext, owner, stage, cents)| {
                    let mut v = json!({
                        "externalId": format!("ext-{ext}"),
                        "name": format!("bulk {ext}"),
                        "amount": money(*cents),
                        "ownerId": org.reps[*owner],
                        "stageId": org.stages[*stage],
                        "openedAt": rfc(w.now - Duration::days(30 + *ext as i64)),
                    });
                    if *stage < 5 {
                        v["expectedCloseDate"] =
                            json!((w.now + Duration::days(*ext as i64 * 9)).date_naive());
                    }
                    v
                })
                .collect();
            let d = app
                .ok(
                    "mutation($i: [DealInput!]!) { bulkUpsertDeals(inputs: $i) { created updated unchanged errors { index code message } } }",
                    json!({ "i": inputs }),
                )
                .await;
            // Repeated external ids in one batch are refused per row; the
            // rest is applied.
            for e in d["bulkUpsertDeals"]["errors"].as_array().unwrap() {
                assert_eq!(e["code"], "BAD_USER_INPUT", "{d}");
            }
        }
        Op::Advance { hours } => {
            w.now += Duration::hours(*hours);
            app.set_clock(&rfc(w.now));
        }
        Op::Compact => {
            rollup::compact(&app.db).await.expect("compact");
        }
    }
}

const KEY: &str = "key { dimension id label }";

fn win_rates_doc() -> String {
    let fields = format!("{KEY} won lost winRate wonAmount lostAmount amountWinRate");
    let mut q = String::from("query($p: Period!, $f: DealFilter) {");
    for dim in ["NONE", "REP", "TERRITORY", "SEGMENT", "MANAGER", "STAGE"] {
        q.push_str(&format!(
            " {dim}: winRates(period: $p, groupBy: {dim}) {{ {fields} }}"
        ));
    }
    q.push_str(&format!(
        " filtered: winRates(period: $p, groupBy: REP, filter: $f) {{ {fields} }} }}"
    ));
    q
}

fn others_doc(whole_months: bool) -> String {
    let ps = format!(
        "{KEY} openDeals pipelineValue weightedPipeline avgDealSize avgSalesCycleDays medianSalesCycleDays winRate"
    );
    let fc = "method amount closedWon projected low high rows { key { dimension id label } amount closedWon projected dealCount }";
    let historical = if whole_months {
        format!(" hist: forecast(period: $p, method: HISTORICAL, groupBy: REP) {{ {fc} }}")
    } else {
        String::new()
    };
    format!(
        "query($p: Period!, $c: Period!, $f: DealFilter) {{ \
         psNone: pipelineSummary(period: $p) {{ {ps} }} \
         psTerritory: pipelineSummary(period: $p, groupBy: TERRITORY, filter: $f) {{ {ps} }} \
         psRep: pipelineSummary(period: $p, groupBy: REP) {{ {ps} }} \
         quotaAttainment(period: $p) {{ totalQuota totalClosedWon attainment repsWithQuota repsAtQuota \
           rows {{ rep {{ id }} quota closedWon attainment attainedQuota gapToQuota openPipeline weightedPipeline pipelineCoverage }} }} \
         repPerformance(period: $p, compareTo: $c) {{ rep {{ id }} current previous change quadrant }} \
         sw: forecast(period: $p, method: STAGE_WEIGHTED, groupBy: TERRITORY, filter: $f) {{ {fc} }}{historical} }}"
    )
}

/// Every metric the rollups serve, with and without them, as three roles.
async fn compare(app: &TestApp, org: &Org, label: &str) {
    let admin = app.admin_token();
    let manager = app.token(Role::Manager, Some(super::helpers::id_num(&org.manager)));
    let rep = app.token(Role::Rep, Some(super::helpers::id_num(&org.reps[1])));
    let periods = [
        ("2026-Q1", "2025-Q4", true),
        ("2026-Q2", "2026-Q1", true),
        ("2026-06", "2026-05", true),
        ("2026", "2025", true),
        ("2026-02-10..2026-07-20", "2025-09-01..2026-02-10", false),
        ("2025-11-15..2026-01-03", "2025-10-01..2025-11-15", false),
        ("2026-04-03..2026-04-28", "2026-03-03..2026-03-28", false),
    ];
    let filters = [
        json!(null),
        json!({ "ownerIds": [org.reps[1], org.reps[3]] }),
        json!({ "territoryIds": [org.territories[0]], "stageIds": [org.stages[5], org.stages[2]] }),
    ];
    for (i, (p, c, whole)) in periods.iter().enumerate() {
        let f = &filters[i % filters.len()];
        for (who, token) in [("admin", &admin), ("manager", &manager), ("rep", &rep)] {
            if who != "admin" && i % 2 == 1 {
                continue;
            }
            for doc in [win_rates_doc(), others_doc(*whole)] {
                let vars = json!({ "p": p, "c": c, "f": f });
                let with = app.ok_rollups(token, true, &doc, &vars).await;
                let without = app.ok_rollups(token, false, &doc, &vars).await;
                assert_eq!(
                    with, without,
                    "{label}: {who} over {p} with filter {f}: rollups and the deals disagree"
                );
            }
        }
    }
}

fn histories(seed: u64, cases: usize, len: usize) -> Vec<Vec<Op>> {
    let mut runner = TestRunner::new_with_rng(
        PropConfig::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[seed as u8; 32]),
    );
    let strategy = prop::collection::vec(op(), len);
    (0..cases)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

async fn rollups_answer_what_the_deals_answer_on_random_histories(app: TestApp) {
    let org = org(&app).await;
    let mut w = World::starting(&app, "2026-03-01T09:00:00Z");
    // One long history cut into checkpoints (each case continues the last).
    for (case, ops) in histories(19, 6, 16).into_iter().enumerate() {
        for op in &ops {
            apply(&app, &org, &mut w, op).await;
        }
        assert_eq!(
            rollup::drift(&app.db).await.unwrap(),
            0,
            "the rollups drifted from the deals after case {case}: {ops:?}"
        );
        compare(&app, &org, &format!("after case {case} ({ops:?})")).await;
    }
    assert!(
        w.deals.len() >= 10,
        "the history made {} deals",
        w.deals.len()
    );
    assert!(w.moves >= 5, "the history moved deals {} times", w.moves);
    eprintln!("{} deals, {} stage moves", w.deals.len(), w.moves);
    // Folded into cells, the answers stay the same.
    rollup::compact(&app.db).await.unwrap();
    assert_eq!(app.count_rows("deal_rollup_delta").await, 0);
    assert!(app.count_rows("deal_rollup").await > 0);
    compare(&app, &org, "after the last compaction").await;
}

async fn a_rebuild_restores_rollups_that_drifted(app: TestApp) {
    let org = org(&app).await;
    let mut w = World::starting(&app, "2026-04-01T09:00:00Z");
    for stage in [5, 5, 6, 2] {
        apply(
            &app,
            &org,
            &mut w,
            &Op::Create {
                owner: 1,
                territory: Some(1),
                stage,
                cents: 1_000_000,
                opened_days: 40,
                expected_in_days: Some(20),
                close_frac: 50,
            },
        )
        .await;
    }
    rollup::compact(&app.db).await.unwrap();
    let q = "{ winRates(period: \"2026-Q1\") { won lost wonAmount } }";
    let before = app
        .ok_rollups(&app.admin_token(), true, q, &json!({}))
        .await;
    assert_eq!(before["winRates"][0]["won"], 2);
    // Lose the cells: the rollups now answer differently from the deals.
    app.db
        .execute_unprepared("DELETE FROM deal_rollup")
        .await
        .unwrap();
    let tampered = app
        .ok_rollups(&app.admin_token(), true, q, &json!({}))
        .await;
    assert_eq!(tampered["winRates"][0]["won"], 0);
    assert_eq!(
        app.ok_rollups(&app.admin_token(), false, q, &json!({}))
            .await,
        before
    );
    assert!(rollup::drift(&app.db).await.unwrap() > 0);
    // An as-of forecast reads the history, never the rollups: the lost
    // cells do not show there.
    let as_of = "{ forecast(period: \"2026-Q1\", method: STAGE_WEIGHTED, asOf: \"2026-04-01\") { closedWon } }";
    let history = app
        .ok_rollups(&app.admin_token(), true, as_of, &json!({}))
        .await;
    assert_eq!(history["forecast"]["closedWon"], "20000.00");
    assert_eq!(
        app.ok_rollups(&app.admin_token(), false, as_of, &json!({}))
            .await,
        history
    );
    let today = "{ forecast(period: \"2026-Q1\", method: STAGE_WEIGHTED) { closedWon } }";
    assert_eq!(
        app.ok_rollups(&app.admin_token(), true, today, &json!({}))
            .await["forecast"]["closedWon"],
        "0.00"
    );

    let rebuilt = rollup::rebuild(&app.db).await.unwrap();
    assert!(rebuilt.drifted > 0, "{rebuilt:?}");
    assert!(rebuilt.cells >= 2, "{rebuilt:?}");
    assert_eq!(rollup::drift(&app.db).await.unwrap(), 0);
    assert_eq!(
        app.ok_rollups(&app.admin_token(), true, q, &json!({}))
            .await,
        before
    );
    compare(&app, &org, "after the rebuild").await;
}

async fn the_rollup_header_takes_on_or_off(app: TestApp) {
    let resp = app
        .http
        .post(&app.url)
        .bearer_auth(app.admin_token())
        .header("Salesops-Rollups", "sometimes")
        .json(&json!({ "query": "{ me { role } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("Salesops-Rollups"));
}

/// More open deals than the exact P10/P90 takes: the approximation reads
/// the amounts' moments from the deals and answers as the scan does.
async fn many_open_deals_bound_a_forecast_the_same(app: TestApp) {
    let org = org(&app).await;
    app.set_clock("2026-05-10T09:00:00Z");
    let inputs: Vec<Value> = (0..40)
        .map(|i| {
            json!({
                "externalId": format!("open-{i}"),
                "name": format!("open {i}"),
                "amount": money(100_000 + 7_919 * i),
                "ownerId": org.reps[1 + (i as usize % 3)],
                "stageId": org.stages[i as usize % 5],
                "openedAt": "2026-03-01T00:00:00Z",
                "expectedCloseDate": format!("2026-06-{:02}", 1 + i % 28),
            })
        })
        .collect();
    create_deals(&app, &inputs).await;
    // Won deals of 40 days' cycle, so the undated open deals below (opened
    // May 1) are expected on June 10: the bounds' statement reads them in
    // a second branch of its own.
    for i in 0..3 {
        app.create_deal(json!({
            "name": format!("won {i}"),
            "amount": money(50_000),
            "ownerId": org.reps[1 + i],
            "stageId": org.stages[5],
            "openedAt": "2026-01-01T00:00:00Z",
            "closedAt": "2026-02-10T00:00:00Z",
            "stageChangedAt": "2026-02-10T00:00:00Z",
        }))
        .await;
    }
    let undated: Vec<Value> = (0..6)
        .map(|i| {
            json!({
                "externalId": format!("undated-{i}"),
                "name": format!("undated {i}"),
                "amount": money(3_000_000 + 1_009 * i),
                "ownerId": org.reps[1 + (i as usize % 3)],
                "stageId": org.stages[1 + i as usize % 3],
                "openedAt": "2026-05-01T00:00:00Z",
            })
        })
        .collect();
    create_deals(&app, &undated).await;
    let q = "query($g: Dimension, $f: DealFilter) { forecast(period: \"2026-06\", method: STAGE_WEIGHTED, groupBy: $g, filter: $f) { \
             amount closedWon projected low high rows { key { id } amount dealCount } } }";
    // Filtered (over 16 open deals in the two reps': still the bounds'
    // statement, with the filter outside its branches).
    let two_reps = json!({ "ownerIds": [org.reps[1], org.reps[2]] });
    let east = json!({ "territoryIds": [org.territories[1]] });
    for (g, f) in [
        ("NONE", Value::Null),
        ("TERRITORY", Value::Null),
        ("REP", Value::Null),
        ("TERRITORY", two_reps),
        ("REP", east),
    ] {
        let vars = json!({ "g": g, "f": f });
        let with = app.ok_rollups(&app.admin_token(), true, q, &vars).await;
        let without = app.ok_rollups(&app.admin_token(), false, q, &vars).await;
        assert_eq!(with, without, "grouped by {g}, filter {f}");
        let f = &with["forecast"];
        let bound = |k: &str| f[k].as_str().unwrap().parse::<f64>().unwrap();
        assert!(bound("low") < bound("high"), "{f}");
    }
    // The undated deals count: 46 open deals expected in June in all.
    let all = app
        .ok_rollups(&app.admin_token(), true, q, &json!({ "g": "NONE" }))
        .await;
    let counted: i64 = all["forecast"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["dealCount"].as_i64().unwrap())
        .sum();
    assert_eq!(counted, 46, "{all}");
}

/// `n` open deals `{prefix}-{i}` of 1,000.00 + i cents, opened 2026-04-01
/// and expected 2026-06-15; `place(i)` gives the owner, territory (none: the
/// owner's) and stage of the i-th.
fn open_deal_inputs<'a>(
    prefix: &str,
    n: usize,
    place: impl Fn(usize) -> (&'a String, Option<&'a String>, &'a String),
) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let (owner, territory, stage) = place(i);
            let mut input = json!({
                "externalId": format!("{prefix}-{i}"),
                "name": format!("{prefix} {i}"),
                "amount": money(100_000 + i as i64),
                "ownerId": owner,
                "stageId": stage,
                "openedAt": "2026-04-01T00:00:00Z",
                "expectedCloseDate": "2026-06-15",
            });
            if let Some(t) = territory {
                input["territoryId"] = json!(t);
            }
            input
        })
        .collect()
}

async fn create_deals(app: &TestApp, inputs: &[Value]) {
    let created = app
        .ok(
            "mutation($i: [DealInput!]!) { bulkUpsertDeals(inputs: $i) { created } }",
            json!({ "i": inputs }),
        )
        .await;
    assert_eq!(created["bulkUpsertDeals"]["created"], inputs.len());
}

/// Writers on the same cells while compactions run: every change lands in
/// a cell exactly once (a compaction moves the deltas it sees, writers
/// commit theirs in their own transactions). Each writer waits after each
/// round until a compaction has started after its commit: SQLite's busy
/// handler is not fair, so left alone the compactor could wait out every
/// writer and the interleaving this test is about would not happen (CI
/// saw one compaction in all).
async fn concurrent_writes_and_compactions_stay_exact(app: TestApp) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let org = org(&app).await;
    app.set_clock("2026-05-10T09:00:00Z");
    let inputs = open_deal_inputs("hot", 16, |_| {
        (&org.reps[1], Some(&org.territories[1]), &org.stages[1])
    });
    create_deals(&app, &inputs).await;
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let compacted = std::sync::Arc::new(AtomicUsize::new(0));
    let compactions = {
        let (db, done, compacted) = (app.db.clone(), done.clone(), compacted.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                rollup::compact(&db).await.expect("compact");
                compacted.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            compacted.load(Ordering::SeqCst)
        })
    };
    let writers = (0..4).map(|w| {
        let (app, org, inputs, compacted) = (&app, &org, inputs.clone(), compacted.clone());
        async move {
            for round in 0..6 {
                let batch: Vec<Value> = inputs
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % 4 == w)
                    .map(|(i, v)| {
                        let mut v = v.clone();
                        v["amount"] = json!(money(200_000 + 1_000 * round + i as i64));
                        v["stageId"] = json!(org.stages[(round as usize + i) % 7]);
                        v["expectedCloseDate"] = json!(format!("2026-{:02}-10", 5 + round % 3));
                        v
                    })
                    .collect();
                app.ok(
                    "mutation($i: [DealInput!]!) { bulkUpsertDeals(inputs: $i) { updated } }",
                    json!({ "i": batch }),
                )
                .await;
                // One compaction may be under way from before the commit;
                // the one after it started after.
                let seen = compacted.load(Ordering::SeqCst);
                let waited = tokio::time::timeout(std::time::Duration::from_secs(60), async {
                    while compacted.load(Ordering::SeqCst) < seen + 2 {
                        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    }
                })
                .await;
                assert!(waited.is_ok(), "no compaction ran within 60 s of a write");
            }
        }
    });
    futures::future::join_all(writers).await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let n = compactions.await.unwrap();
    assert!(n >= 12, "{n} compactions ran");
    assert_eq!(app.rollup_drift().await, 0);
    compare(&app, &org, "after concurrent writes and compactions").await;
}

/// Every delta row is deleted by the compaction that folds it: on
/// PostgreSQL the dead rows stayed in the table until a vacuum, and reads
/// scanned them (an empty delta table of 1,627 dead pages doubled the quota
/// attainment statement on the bench data set, whose server runs without
/// autovacuum). The compaction vacuums what it churned.
async fn a_compaction_leaves_no_dead_delta_rows_behind(app: TestApp) {
    let org = org(&app).await;
    app.set_clock("2026-05-10T09:00:00Z");
    let inputs = open_deal_inputs("churn", 200, |i| {
        (&org.reps[i % 2], None, &org.stages[i % 7])
    });
    create_deals(&app, &inputs).await;
    // (PostgreSQL's trigger appends one delta per statement and cell.)
    let pending = app.count_rows("deal_rollup_delta").await;
    assert!(pending > 0);
    assert_eq!(rollup::compact(&app.db).await.unwrap(), pending as u64);
    assert_eq!(app.count_rows("deal_rollup_delta").await, 0);
    if app.backend == Backend::Postgres {
        // The vacuum truncated the emptied pages: nothing left to scan.
        #[derive(sea_orm::FromQueryResult)]
        struct Size {
            bytes: i64,
        }
        let size =
            <Size as sea_orm::FromQueryResult>::find_by_statement(sea_orm::Statement::from_string(
                app.db.get_database_backend(),
                "SELECT pg_relation_size('deal_rollup_delta') AS bytes",
            ))
            .one(&app.db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(size.bytes, 0, "dead delta pages left after a compaction");
    }
    assert_eq!(app.rollup_drift().await, 0);
    compare(&app, &org, "after a compaction of many deltas").await;
}
