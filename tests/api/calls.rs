//! Forecast calls (issue 13, docs/design.md, Forecast calls): submissions
//! as calls and adjustments, the forecastCalls roll-up tree under every
//! role, as of a past day, REP_SUBMITTED on the same rules, bad input, and
//! a fixed number of statements whatever the tree.
//!
//! The organisation of every scenario (period 2026-Q3, category COMMIT):
//!
//! ```text
//! Vera (VP, no quota-carrying)            TEAM 25,000 on her own node (her token)
//! |-- Dan (director, not quota-carrying)  puts TEAM 14,000 on Mia's node
//! |   `-- Mia (manager, sells)            calls her own Q3 1,500; adjusts Ann's August to 3,000
//! |       |-- Ann                         calls July 4,000 and August 5,000 (imported 07-01), no Q3 call
//! |       `-- Bob                         calls Q3 6,000 (imported 07-02), then 6,500 (imported 08-10)
//! `-- Cy                                  calls Q3 10,000 (own token); OPS adjusts it to 9,500
//! Zed (inactive, nothing)                 left out of the tree
//! ```
//!
//! Deals: Ann won 3,000 on 07-10 and has 5,000 open in Trial expected
//! 09-15 (opened 07-01); Bob won 2,000 on 08-20 (opened 08-01, expected
//! 08-20) and has 1,000 open expected 10-15; Mia won 1,000 on 08-01; Cy won
//! 4,000 on 09-05 (opened 08-20). Quotas: Ann Q3 10,000, Bob Q3 8,000, Mia
//! Q3 2,000, Cy 3,000 for each month of Q3; Vera and Dan none.
//!
//! Today (every submission made with a token counts):
//! - Ann: personal from parts = July 4,000 + August 3,000 (Mia's
//!   adjustment over her 5,000) + September's closed-won 0 = 7,000.
//! - Bob 6,500; Mia 1,500; Mia's roll-up would be 1,500 + 7,000 + 6,500 =
//!   15,000, but Dan's TEAM adjustment makes it 14,000.
//! - Dan: no number, 0 + 14,000 = 14,000. Cy: adjustment 9,500 over the
//!   call 10,000. Vera: TEAM 25,000 (else 14,000 + 9,500 = 23,500).
//! - closed-won: Ann 3,000, Bob 2,000, Mia's subtree 6,000, Cy 4,000,
//!   Vera and the organisation 10,000. Pipeline (open, expected in Q3):
//!   Ann's 5,000 only. Quotas: Mia's subtree 20,000, Cy 9,000, Vera 29,000.
use api::auth::Role;
use serde_json::{json, Value};

use crate::db_tests;
use crate::helpers::{id_num, TestApp};

db_tests!(
    the_design_example,
    the_call_tree_under_every_role,
    the_tree_as_of_a_past_day,
    rep_submitted_uses_personal_numbers_and_rollups,
    bad_submissions_and_questions_write_nothing,
    statements_do_not_grow_with_the_tree,
);

const SUBMIT: &str = "mutation($i: SubmitForecastInput!) { submitForecast(input: $i) { id amount kind scope submittedBy rep { id } } }";

const NODE: &str = "rep { name } personal fromParts rollup closedWon quota pipeline attainment \
    call { amount kind scope submittedBy } adjustment { amount kind scope submittedBy } \
    teamAdjustment { amount kind scope submittedBy }";

/// The root and three levels below it, every field.
fn calls_query() -> String {
    format!(
        "query($p: Period!, $a: Date, $r: ID, $c: ForecastCategory) {{ forecastCalls(period: $p, asOf: $a, rootRepId: $r, category: $c) {{ {NODE} \
         children {{ {NODE} children {{ {NODE} children {{ {NODE} }} }} }} }} }}"
    )
}

struct Org {
    vera: String,
    dan: String,
    mia: String,
    ann: String,
    bob: String,
    cy: String,
}

async fn deal(
    app: &TestApp,
    amount: &str,
    owner: &str,
    stage: &str,
    opened: &str,
    expected: Option<&str>,
) -> String {
    let stage_id = app.stage(stage).await;
    app.create_deal(json!({
        "name": format!("{stage} {amount} {opened}"),
        "amount": amount,
        "ownerId": owner,
        "stageId": stage_id,
        "openedAt": opened,
        "expectedCloseDate": expected,
    }))
    .await
}

async fn submit(app: &TestApp, token: &str, input: Value) -> Value {
    app.ok_as(token, SUBMIT, json!({ "i": input })).await["submitForecast"].clone()
}

async fn setup(app: &TestApp) -> Org {
    let no = json!({ "quotaCarrying": false });
    let vera = app.create_rep("Vera", None, None, no.clone()).await;
    let dan = app.create_rep("Dan", Some(&vera), None, no.clone()).await;
    let mia = app.create_rep("Mia", Some(&dan), None, json!({})).await;
    let ann = app.create_rep("Ann", Some(&mia), None, json!({})).await;
    let bob = app.create_rep("Bob", Some(&mia), None, json!({})).await;
    let cy = app.create_rep("Cy", Some(&vera), None, json!({})).await;
    app.create_rep("Zed", None, None, json!({ "active": false }))
        .await;

    let d = deal(app, "3000", &ann, "Discovery", "2026-06-01T08:00:00Z", None).await;
    app.move_deal(&d, "Won", "2026-07-10T08:00:00Z").await;
    deal(
        app,
        "5000",
        &ann,
        "Trial",
        "2026-07-01T08:00:00Z",
        Some("2026-09-15"),
    )
    .await;
    let d = deal(
        app,
        "2000",
        &bob,
        "Demo",
        "2026-08-01T08:00:00Z",
        Some("2026-08-20"),
    )
    .await;
    app.move_deal(&d, "Won", "2026-08-20T08:00:00Z").await;
    deal(
        app,
        "1000",
        &bob,
        "Demo",
        "2026-08-01T08:00:00Z",
        Some("2026-10-15"),
    )
    .await;
    let d = deal(app, "1000", &mia, "Discovery", "2026-07-01T08:00:00Z", None).await;
    app.move_deal(&d, "Won", "2026-08-01T08:00:00Z").await;
    let d = deal(app, "4000", &cy, "Discovery", "2026-08-20T08:00:00Z", None).await;
    app.move_deal(&d, "Won", "2026-09-05T08:00:00Z").await;

    app.set_quota(&ann, "2026-Q3", "10000").await;
    app.set_quota(&bob, "2026-Q3", "8000").await;
    app.set_quota(&mia, "2026-Q3", "2000").await;
    for m in ["2026-07", "2026-08", "2026-09"] {
        app.set_quota(&cy, m, "3000").await;
    }

    // Calls imported by an integration are the reps' own calls.
    let integration = app.token(Role::Integration, None);
    for (rep, period, amount, at) in [
        (&ann, "2026-07", "4000", "2026-07-01T09:00:00Z"),
        (&ann, "2026-08", "5000", "2026-07-01T09:00:00Z"),
        (&bob, "2026-Q3", "6000", "2026-07-02T09:00:00Z"),
        (&bob, "2026-Q3", "6500", "2026-08-10T09:00:00Z"),
    ] {
        let s = submit(app, &integration, json!({ "repId": rep, "period": period, "category": "COMMIT", "amount": amount, "submittedAt": at })).await;
        assert_eq!(
            (s["kind"].as_str(), s["scope"].as_str()),
            (Some("CALL"), Some("PERSONAL"))
        );
        assert_eq!(s["submittedBy"], "integration-tester");
    }
    let mia_t = app.token(Role::Manager, Some(id_num(&mia)));
    let s = submit(
        app,
        &mia_t,
        json!({ "period": "2026-Q3", "category": "COMMIT", "amount": "1500" }),
    )
    .await;
    assert_eq!(
        (s["kind"].as_str(), s["rep"]["id"].as_str()),
        (Some("CALL"), Some(mia.as_str()))
    );
    let s = submit(
        app,
        &mia_t,
        json!({ "repId": ann, "period": "2026-08", "category": "COMMIT", "amount": "3000" }),
    )
    .await;
    assert_eq!(
        (s["kind"].as_str(), s["scope"].as_str()),
        (Some("ADJUSTMENT"), Some("PERSONAL"))
    );
    assert_eq!(s["submittedBy"], "manager-tester");
    let dan_t = app.token(Role::Manager, Some(id_num(&dan)));
    let s = submit(app, &dan_t, json!({ "repId": mia, "period": "2026-Q3", "category": "COMMIT", "amount": "14000", "scope": "TEAM" })).await;
    assert_eq!(
        (s["kind"].as_str(), s["scope"].as_str()),
        (Some("ADJUSTMENT"), Some("TEAM"))
    );
    let cy_t = app.token(Role::Rep, Some(id_num(&cy)));
    let s = submit(
        app,
        &cy_t,
        json!({ "period": "2026-Q3", "category": "COMMIT", "amount": "10000" }),
    )
    .await;
    assert_eq!(
        (s["kind"].as_str(), s["scope"].as_str()),
        (Some("CALL"), Some("PERSONAL"))
    );
    let ops = app.token(Role::Ops, None);
    let s = submit(
        app,
        &ops,
        json!({ "repId": cy, "period": "2026-Q3", "category": "COMMIT", "amount": "9500" }),
    )
    .await;
    assert_eq!(
        (s["kind"].as_str(), s["submittedBy"].as_str()),
        (Some("ADJUSTMENT"), Some("ops-tester"))
    );
    let vera_t = app.token(Role::Manager, Some(id_num(&vera)));
    let s = submit(
        app,
        &vera_t,
        json!({ "period": "2026-Q3", "category": "COMMIT", "amount": "25000", "scope": "TEAM" }),
    )
    .await;
    assert_eq!(
        (s["kind"].as_str(), s["scope"].as_str()),
        (Some("CALL"), Some("TEAM"))
    );
    // Another category does not mix in.
    submit(
        app,
        &ops,
        json!({ "repId": ann, "period": "2026-Q3", "category": "BEST_CASE", "amount": "99999" }),
    )
    .await;
    Org {
        vera,
        dan,
        mia,
        ann,
        bob,
        cy,
    }
}

/// One line per node, depth-first: "indent name | personal fromParts |
/// rollup | closedWon | quota | pipeline | attainment | call / adjustment
/// / team".
fn lines(node: &Value) -> Vec<String> {
    fn amount(s: &Value) -> String {
        if s.is_null() {
            "-".into()
        } else {
            format!(
                "{} {} {}",
                s["amount"].as_str().unwrap(),
                s["kind"].as_str().unwrap(),
                s["submittedBy"].as_str().unwrap()
            )
        }
    }
    fn walk(node: &Value, depth: usize, out: &mut Vec<String>) {
        let name = node["rep"]["name"].as_str().unwrap_or("(organisation)");
        out.push(format!(
            "{}{} | {} {} | {} | {} | {} | {} | {} | {} / {} / {}",
            "  ".repeat(depth),
            name,
            node["personal"].as_str().unwrap_or("null"),
            node["fromParts"],
            node["rollup"].as_str().unwrap(),
            node["closedWon"].as_str().unwrap(),
            node["quota"].as_str().unwrap_or("null"),
            node["pipeline"].as_str().unwrap(),
            node["attainment"]
                .as_f64()
                .map(|a| format!("{a:.4}"))
                .unwrap_or("null".into()),
            amount(&node["call"]),
            amount(&node["adjustment"]),
            amount(&node["teamAdjustment"]),
        ));
        for c in node["children"].as_array().into_iter().flatten() {
            walk(c, depth + 1, out);
        }
    }
    let mut out = Vec::new();
    walk(node, 0, &mut out);
    out
}

/// The roll-up lines below the organisation today (see the module comment).
const TODAY: &[&str] = &[
    "Vera | null false | 25000.00 | 10000.00 | 29000.00 | 5000.00 | 0.8621 | - / - / 25000.00 CALL manager-tester",
    "  Cy | 9500.00 false | 9500.00 | 4000.00 | 9000.00 | 0.00 | 1.0556 | 10000.00 CALL rep-tester / 9500.00 ADJUSTMENT ops-tester / -",
    "  Dan | null false | 14000.00 | 6000.00 | 20000.00 | 5000.00 | 0.7000 | - / - / -",
    "    Mia | 1500.00 false | 14000.00 | 6000.00 | 20000.00 | 5000.00 | 0.7000 | 1500.00 CALL manager-tester / - / 14000.00 ADJUSTMENT manager-tester",
    "      Ann | 7000.00 true | 7000.00 | 3000.00 | 10000.00 | 5000.00 | 0.7000 | - / - / -",
    "      Bob | 6500.00 false | 6500.00 | 2000.00 | 8000.00 | 0.00 | 0.8125 | 6500.00 CALL integration-tester / - / -",
];

async fn calls_as(app: &TestApp, token: &str, vars: Value) -> Value {
    app.ok_as(token, &calls_query(), vars).await["forecastCalls"].clone()
}

/// docs/design.md, Forecast calls: a rep calls 10,000 for 2026-11 and
/// 6,000 for 2026-12 and nothing for Q4, having won 3,000 in October: its
/// Q4 personal is 19,000 (from parts). Its manager adjusts November to
/// 8,000: 17,000. The manager calls its own 0 and puts a TEAM adjustment of
/// 40,000 on its node: its rollup is 40,000.
async fn the_design_example(app: TestApp) {
    let boss = app.create_rep("Boss", None, None, json!({})).await;
    let rep = app.create_rep("Rep", Some(&boss), None, json!({})).await;
    let d = deal(
        &app,
        "3000",
        &rep,
        "Discovery",
        "2026-09-01T08:00:00Z",
        None,
    )
    .await;
    app.move_deal(&d, "Won", "2026-10-15T08:00:00Z").await;
    let rep_t = app.token(Role::Rep, Some(id_num(&rep)));
    let boss_t = app.token(Role::Manager, Some(id_num(&boss)));
    for (period, amount) in [("2026-11", "10000"), ("2026-12", "6000")] {
        submit(
            &app,
            &rep_t,
            json!({ "period": period, "category": "COMMIT", "amount": amount }),
        )
        .await;
    }
    let q4 = json!({ "p": "2026-Q4" });
    let node = calls_as(&app, &rep_t, q4.clone()).await;
    assert_eq!(
        (
            node["personal"].as_str(),
            node["fromParts"].as_bool(),
            node["rollup"].as_str()
        ),
        (Some("19000.00"), Some(true), Some("19000.00"))
    );
    assert!(node["call"].is_null());
    submit(
        &app,
        &boss_t,
        json!({ "repId": rep, "period": "2026-11", "category": "COMMIT", "amount": "8000" }),
    )
    .await;
    let node = calls_as(&app, &rep_t, q4.clone()).await;
    assert_eq!(node["personal"], "17000.00");
    // The manager: nothing of its own yet, so 0 + 17,000.
    let tree = calls_as(&app, &boss_t, q4.clone()).await;
    assert_eq!(
        (tree["personal"].as_str(), tree["rollup"].as_str()),
        (None, Some("17000.00"))
    );
    submit(
        &app,
        &boss_t,
        json!({ "period": "2026-Q4", "category": "COMMIT", "amount": "0" }),
    )
    .await;
    submit(
        &app,
        &boss_t,
        json!({ "period": "2026-Q4", "category": "COMMIT", "amount": "40000", "scope": "TEAM" }),
    )
    .await;
    let tree = calls_as(&app, &boss_t, q4.clone()).await;
    assert_eq!(
        lines(&tree),
        vec![
            "Boss | 0.00 false | 40000.00 | 3000.00 | null | 0.00 | null | 0.00 CALL manager-tester / - / 40000.00 CALL manager-tester",
            "  Rep | 17000.00 true | 17000.00 | 3000.00 | null | 0.00 | null | - / - / -",
        ]
    );
}

async fn the_call_tree_under_every_role(app: TestApp) {
    let org = setup(&app).await;
    let q3 = json!({ "p": "2026-Q3" });
    // ADMIN, OPS and VIEWER: the organisation, Zed (inactive, nothing) left
    // out; the document reaches three levels below it (down to Mia).
    let mut whole = vec![
        "(organisation) | null false | 25000.00 | 10000.00 | 29000.00 | 5000.00 | 0.8621 | - / - / -".to_owned(),
    ];
    whole.extend(TODAY[..4].iter().map(|l| format!("  {l}")));
    for role in [Role::Admin, Role::Ops, Role::Viewer] {
        let t = app.token(role, None);
        let tree = calls_as(&app, &t, q3.clone()).await;
        assert_eq!(lines(&tree), whole, "{role:?}");
    }
    // rootRepId narrows the organisation to Dan's subtree: every field.
    let admin = app.admin_token();
    let dan = calls_as(&app, &admin, json!({ "p": "2026-Q3", "r": org.dan })).await;
    let expect: Vec<String> = TODAY[2..].iter().map(|l| l[2..].to_owned()).collect();
    assert_eq!(lines(&dan), expect);
    // MANAGER: its own node. Dan sees the same subtree; Mia hers.
    let dan_t = app.token(Role::Manager, Some(id_num(&org.dan)));
    assert_eq!(lines(&calls_as(&app, &dan_t, q3.clone()).await), expect);
    let mia_t = app.token(Role::Manager, Some(id_num(&org.mia)));
    let mia = calls_as(&app, &mia_t, q3.clone()).await;
    let expect_mia: Vec<String> = TODAY[3..].iter().map(|l| l[4..].to_owned()).collect();
    assert_eq!(lines(&mia), expect_mia);
    // Mia narrowing to Ann works; to Cy (outside her team) is NOT_FOUND.
    let ann = calls_as(&app, &mia_t, json!({ "p": "2026-Q3", "r": org.ann })).await;
    assert_eq!(lines(&ann), vec![TODAY[4][6..].to_owned()]);
    assert_eq!(
        app.error_code(
            &mia_t,
            &calls_query(),
            json!({ "p": "2026-Q3", "r": org.cy })
        )
        .await,
        "NOT_FOUND"
    );
    // REP: its own node, no one below.
    let ann_t = app.token(Role::Rep, Some(id_num(&org.ann)));
    assert_eq!(
        lines(&calls_as(&app, &ann_t, q3.clone()).await),
        vec![TODAY[4][6..].to_owned()]
    );
    assert_eq!(
        app.error_code(
            &ann_t,
            &calls_query(),
            json!({ "p": "2026-Q3", "r": org.bob })
        )
        .await,
        "NOT_FOUND"
    );
    // INTEGRATION does not read forecasts.
    let integration = app.token(Role::Integration, None);
    assert_eq!(
        app.error_code(&integration, &calls_query(), q3.clone())
            .await,
        "FORBIDDEN"
    );
    // Another category: only Ann's BEST_CASE 99,999 (an OPS adjustment).
    let best = calls_as(
        &app,
        &admin,
        json!({ "p": "2026-Q3", "c": "BEST_CASE", "r": org.mia }),
    )
    .await;
    assert_eq!(best["rollup"], "99999.00");
    assert_eq!(best["children"][0]["adjustment"]["amount"], "99999.00");
    // Vera's team quota is the quota of the tree below her; Dan's, Mia's subtree.
    let q = "query($id: ID!) { rep(id: $id) { quotaCarrying teamQuota(period: \"2026-Q3\") } }";
    for (rep, carrying, team) in [
        (&org.vera, false, Some("29000.00")),
        (&org.dan, false, Some("20000.00")),
        (&org.cy, true, Some("9000.00")),
        (&org.bob, true, Some("8000.00")),
    ] {
        let r = app.ok(q, json!({ "id": rep })).await;
        assert_eq!(r["rep"]["quotaCarrying"], carrying);
        assert_eq!(r["rep"]["teamQuota"].as_str(), team);
    }
    let r = app
        .ok(
            "query($id: ID!) { rep(id: $id) { teamQuota(period: \"2026-Q2\") } }",
            json!({ "id": org.vera }),
        )
        .await;
    assert!(r["rep"]["teamQuota"].is_null());
    // The rep's call stays visible beside the adjustment in the list.
    let list = app
        .ok(
            "query($r: ID) { forecastSubmissions(period: \"2026-Q3\", repId: $r) { amount kind scope submittedBy } }",
            json!({ "r": org.cy }),
        )
        .await;
    assert_eq!(
        list["forecastSubmissions"],
        json!([
            { "amount": "9500.00", "kind": "ADJUSTMENT", "scope": "PERSONAL", "submittedBy": "ops-tester" },
            { "amount": "10000.00", "kind": "CALL", "scope": "PERSONAL", "submittedBy": "rep-tester" }
        ])
    );
}

async fn the_tree_as_of_a_past_day(app: TestApp) {
    let org = setup(&app).await;
    // As of 2026-08-15 only the imported calls exist: Ann 4,000 + 5,000 +
    // September's closed-won 0 = 9,000 (from parts); Bob 6,500 (08-10);
    // Mia, Cy, Dan and Vera had no number: Mia 0 + 9,000 + 6,500 = 15,500.
    // Won by then: Ann 3,000 (07-10), Mia 1,000 (08-01); Bob's 2,000 was
    // still open, expected 08-20, so pipeline 5,000 + 2,000. Cy's deal did
    // not exist yet.
    let dan = calls_as(
        &app,
        &app.admin_token(),
        json!({ "p": "2026-Q3", "a": "2026-08-15", "r": org.dan }),
    )
    .await;
    assert_eq!(
        lines(&dan),
        vec![
            "Dan | null false | 15500.00 | 4000.00 | 20000.00 | 7000.00 | 0.7750 | - / - / -",
            "  Mia | null false | 15500.00 | 4000.00 | 20000.00 | 7000.00 | 0.7750 | - / - / -",
            "    Ann | 9000.00 true | 9000.00 | 3000.00 | 10000.00 | 5000.00 | 0.9000 | - / - / -",
            "    Bob | 6500.00 false | 6500.00 | 0.00 | 8000.00 | 2000.00 | 0.8125 | 6500.00 CALL integration-tester / - / -",
        ]
    );
    // As of 08-05 Bob's number was his first call, 6,000.
    let bob = calls_as(
        &app,
        &app.admin_token(),
        json!({ "p": "2026-Q3", "a": "2026-08-05", "r": org.bob }),
    )
    .await;
    assert_eq!(bob["personal"], "6000.00");
    assert_eq!(bob["call"]["amount"], "6000.00");
    // The organisation as of 08-15: 15,500 + Cy 0.
    let root = calls_as(
        &app,
        &app.token(Role::Viewer, None),
        json!({ "p": "2026-Q3", "a": "2026-08-15" }),
    )
    .await;
    assert_eq!(root["rollup"], "15500.00");
    assert_eq!(root["closedWon"], "4000.00");
    assert!(root["rep"].is_null());
    // The future has no state.
    assert_eq!(
        app.error_code(
            &app.admin_token(),
            &calls_query(),
            json!({ "p": "2026-Q3", "a": "2999-01-01" })
        )
        .await,
        "BAD_USER_INPUT"
    );
    // Year from quarters: 2026 for Ann today is Q1..Q2 closed-won (0) + Q3
    // from parts 7,000 + Q4 closed-won (0) = 7,000.
    let ann = calls_as(
        &app,
        &app.admin_token(),
        json!({ "p": "2026", "r": org.ann }),
    )
    .await;
    assert_eq!(
        (ann["personal"].as_str(), ann["fromParts"].as_bool()),
        (Some("7000.00"), Some(true))
    );
    // A month has no parts: Ann's September has no number.
    let sep = calls_as(
        &app,
        &app.admin_token(),
        json!({ "p": "2026-09", "r": org.ann }),
    )
    .await;
    assert!(sep["personal"].is_null());
    assert_eq!(sep["rollup"], "0.00");
}

async fn rep_submitted_uses_personal_numbers_and_rollups(app: TestApp) {
    let org = setup(&app).await;
    let q = "query($g: Dimension, $a: Date) { forecast(period: \"2026-Q3\", method: REP_SUBMITTED, groupBy: $g, asOf: $a) { amount closedWon projected rows { key { label } amount } } }";
    // The organisation: Vera's TEAM 25,000; 10,000 won.
    let f = app.ok(q, json!({})).await["forecast"].clone();
    assert_eq!(
        (
            f["amount"].as_str(),
            f["closedWon"].as_str(),
            f["projected"].as_str()
        ),
        (Some("25000.00"), Some("10000.00"), Some("15000.00"))
    );
    // By rep: each personal number (Dan and Vera have none, so no row).
    let f = app.ok(q, json!({ "g": "REP" })).await["forecast"].clone();
    let rows: Vec<(&str, &str)> = f["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["key"]["label"].as_str().unwrap(),
                r["amount"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("Ann", "7000.00"),
            ("Bob", "6500.00"),
            ("Cy", "9500.00"),
            ("Mia", "1500.00")
        ]
    );
    // By manager: Mia's reports 13,500, Dan's (Mia) 1,500, Vera's (Cy) 9,500.
    let f = app.ok(q, json!({ "g": "MANAGER" })).await["forecast"].clone();
    let rows: Vec<(&str, &str)> = f["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["key"]["label"].as_str().unwrap(),
                r["amount"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [("Dan", "1500.00"), ("Mia", "13500.00"), ("Vera", "9500.00")]
    );
    // A manager's forecast is its roll-up: Mia 14,000 (Dan's TEAM), Dan 14,000.
    for (who, amount) in [
        (&org.mia, "14000.00"),
        (&org.dan, "14000.00"),
        (&org.vera, "25000.00"),
    ] {
        let t = app.token(Role::Manager, Some(id_num(who)));
        let f = app.ok_as(&t, q, json!({})).await["forecast"].clone();
        assert_eq!(f["amount"].as_str(), Some(amount));
    }
    // A rep's: its personal number from parts (no longer 0).
    let t = app.token(Role::Rep, Some(id_num(&org.ann)));
    let f = app.ok_as(&t, q, json!({})).await["forecast"].clone();
    assert_eq!(
        (f["amount"].as_str(), f["closedWon"].as_str()),
        (Some("7000.00"), Some("3000.00"))
    );
    // As of 08-15: the organisation's 15,500, from parts included.
    let f = app.ok(q, json!({ "a": "2026-08-15" })).await["forecast"].clone();
    assert_eq!(
        (f["amount"].as_str(), f["closedWon"].as_str()),
        (Some("15500.00"), Some("4000.00"))
    );
    // The backtest as of 2026-07-01 + 44 days (08-14): 15,500 against the
    // 10,000 actually won: APE 0.55.
    let b = app
        .ok("{ forecastAccuracy(periods: [\"2026-Q3\"], methods: [REP_SUBMITTED], asOfOffsetDays: 44) { forecast actual absolutePercentageError } }", json!({}))
        .await;
    let r = &b["forecastAccuracy"][0];
    assert_eq!(
        (r["forecast"].as_str(), r["actual"].as_str()),
        (Some("15500.00"), Some("10000.00"))
    );
    assert!((r["absolutePercentageError"].as_f64().unwrap() - 0.55).abs() < 1e-9);
    // ownerIds narrows to those reps' personal numbers: Ann + Cy.
    let f = app
        .ok(
            "query($o: [ID!]) { forecast(period: \"2026-Q3\", method: REP_SUBMITTED, filter: { ownerIds: $o }) { amount } }",
            json!({ "o": [org.ann, org.cy] }),
        )
        .await;
    assert_eq!(f["forecast"]["amount"], "16500.00");
}

async fn bad_submissions_and_questions_write_nothing(app: TestApp) {
    let org = setup(&app).await;
    let before = app.count_rows("forecast_submission").await;
    let audits = app.count_rows("audit_entry").await;
    let mia_t = app.token(Role::Manager, Some(id_num(&org.mia)));
    let dan_t = app.token(Role::Manager, Some(id_num(&org.dan)));
    let ann_t = app.token(Role::Rep, Some(id_num(&org.ann)));
    let viewer = app.token(Role::Viewer, None);
    let admin = app.admin_token();
    let input = |rep: &str, extra: Value| {
        let mut i =
            json!({ "repId": rep, "period": "2026-Q3", "category": "COMMIT", "amount": "100" });
        for (k, v) in extra.as_object().unwrap() {
            i[k] = v.clone();
        }
        json!({ "i": i })
    };
    for (token, vars, code) in [
        // Outside the manager's team, above it, or a peer's: FORBIDDEN.
        (&mia_t, input(&org.cy, json!({})), "FORBIDDEN"),
        (
            &mia_t,
            input(&org.dan, json!({ "scope": "TEAM" })),
            "FORBIDDEN",
        ),
        (
            &dan_t,
            input(&org.cy, json!({ "scope": "TEAM" })),
            "FORBIDDEN",
        ),
        // A REP: another rep's number, or any TEAM number (even its own).
        (&ann_t, input(&org.bob, json!({})), "FORBIDDEN"),
        (
            &ann_t,
            input(&org.ann, json!({ "scope": "TEAM" })),
            "FORBIDDEN",
        ),
        (&viewer, input(&org.ann, json!({})), "FORBIDDEN"),
        // Weeks are not called; amounts are not negative.
        (
            &admin,
            input(&org.ann, json!({ "period": "2026-W30" })),
            "BAD_USER_INPUT",
        ),
        (
            &mia_t,
            input(&org.ann, json!({ "amount": "-5" })),
            "BAD_USER_INPUT",
        ),
        (
            &mia_t,
            input(&org.ann, json!({ "scope": "EVERYONE" })),
            "BAD_USER_INPUT",
        ),
    ] {
        let body = app.gql(token, SUBMIT, vars.clone()).await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], code,
            "{vars}: {body}"
        );
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(!message.is_empty());
    }
    let body = app
        .gql(
            &admin,
            SUBMIT,
            input(&org.ann, json!({ "period": "2026-W30" })),
        )
        .await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("period"),
        "{body}"
    );
    let body = app
        .gql(&ann_t, SUBMIT, input(&org.ann, json!({ "scope": "TEAM" })))
        .await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("scope"),
        "{body}"
    );
    assert_eq!(app.count_rows("forecast_submission").await, before);
    assert_eq!(app.count_rows("audit_entry").await, audits);
    // A manager's TEAM on its own node and on a node below are allowed.
    submit(
        &app,
        &mia_t,
        json!({ "period": "2026-Q3", "category": "COMMIT", "amount": "1", "scope": "TEAM" }),
    )
    .await;
    submit(&app, &dan_t, json!({ "repId": org.ann, "period": "2026-Q3", "category": "COMMIT", "amount": "1", "scope": "TEAM" })).await;
    assert_eq!(app.count_rows("forecast_submission").await, before + 2);
    // forecastCalls: a week is BAD_USER_INPUT; VIEWER reads, INTEGRATION does not.
    assert_eq!(
        app.error_code(&admin, &calls_query(), json!({ "p": "2026-W30" }))
            .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        app.error_code(
            &admin,
            &calls_query(),
            json!({ "p": "2026-Q3", "r": "abc" })
        )
        .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        app.error_code(
            &admin,
            &calls_query(),
            json!({ "p": "2026-Q3", "r": "999999" })
        )
        .await,
        "NOT_FOUND"
    );
}

async fn statements_do_not_grow_with_the_tree(app: TestApp) {
    let org = setup(&app).await;
    let admin = app.admin_token();
    let q = calls_query();
    let count = |vars: Value| {
        let app = &app;
        let admin = admin.clone();
        let q = q.clone();
        async move {
            let before = app.statements().await;
            app.ok_as(&admin, &q, vars).await;
            app.statements().await - before
        }
    };
    let small = count(json!({ "p": "2026-Q3" })).await;
    // Rep.teamQuota of every rep loads through one batched statement.
    let team_quotas = "{ reps { id teamQuota(period: \"2026-Q3\") } }";
    let quotas_small = {
        let before = app.statements().await;
        app.ok(team_quotas, json!({})).await;
        app.statements().await - before
    };
    // Three more levels below Ann, each with a deal, a quota and calls.
    let integration = app.token(Role::Integration, None);
    let mut manager = org.ann.clone();
    for i in 0..6 {
        let r = app
            .create_rep(&format!("Deep {i}"), Some(&manager), None, json!({}))
            .await;
        let d = deal(&app, "100", &r, "Discovery", "2026-07-01T08:00:00Z", None).await;
        app.move_deal(&d, "Won", "2026-07-02T08:00:00Z").await;
        app.set_quota(&r, "2026-Q3", "100").await;
        submit(&app, &integration, json!({ "repId": r, "period": "2026-07", "category": "COMMIT", "amount": "50", "submittedAt": "2026-07-01T10:00:00Z" })).await;
        if i % 2 == 0 {
            manager = r;
        }
    }
    let large = count(json!({ "p": "2026-Q3" })).await;
    assert_eq!(small, large, "statements grew with the tree");
    let before = app.statements().await;
    let data = app.ok(team_quotas, json!({})).await;
    assert_eq!(app.statements().await - before, quotas_small);
    assert_eq!(data["reps"].as_array().unwrap().len(), 13);
    // Ann's team quota now holds her six reports' 100 each.
    let ann = data["reps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == org.ann.as_str())
        .unwrap();
    assert_eq!(ann["teamQuota"], "10600.00");
    // The reps with their quotas, the submissions, the won cycle, the
    // closed-won and pipeline per rep and month.
    assert_eq!(large, 4);
    let narrowed = count(json!({ "p": "2026", "r": org.dan })).await;
    assert_eq!(narrowed, 4);
}
