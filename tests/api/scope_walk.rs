//! Scope on every nested path (issue 11, item 6): for each role, every path
//! that reaches a Rep, a Quota or a Deal from `me`, `territory`,
//! `territories`, `rep`, `reps`, `deal`, `deals`, `accounts` and `quotas` is
//! walked, and every field of every rep reached is compared against the
//! role table: a rep in the caller's scope (REP: itself; MANAGER: its team,
//! transitively; the others: everyone) is fully readable, except quotas and
//! commission terms for INTEGRATION; a rep outside it shows only id, name,
//! title and the org chart, every other field is FORBIDDEN.
use std::collections::HashMap;

use api::auth::Role;
use serde_json::{json, Value};

use crate::db_tests;
use crate::helpers::{id_num, TestApp};

db_tests!(
    the_issue_attacks_are_refused,
    out_of_scope_checks_are_batched
);

/// The walk reads every field of every rep on paths three lists deep in one
/// request: it tests scope, so it runs with a complexity limit that lets it
/// (the limits have their own tests).
mod every_path_under_every_role_matches_the_role_table {
    use crate::helpers::{spawn_app_with, Backend};

    fn roomy(c: &mut api::config::Config) {
        c.max_query_complexity = 10_000_000;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let app = spawn_app_with(Backend::Sqlite, roomy)
            .await
            .expect("sqlite app");
        super::every_path_under_every_role_matches_the_role_table(app).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let Some(app) = spawn_app_with(Backend::Postgres, roomy).await else {
            eprintln!("SALESOPS_TEST_DATABASE_URL is not set: skipping the PostgreSQL run");
            return;
        };
        super::every_path_under_every_role_matches_the_role_table(app).await;
    }
}

/// Every field of Rep the walk reads, with `__typename` so the walk finds
/// reps wherever they are in a response.
const PROBE: &str = "__typename id name title territory { name } externalId email hiredAt active rampMonths createdAt updatedAt deals { totalCount } commissionRate commissionThreshold quotas { period amount }";

/// The role table's groups of Rep fields (response keys of PROBE).
const DIRECTORY: &[&str] = &["id", "name", "title", "territory"];
const PERSONAL: &[&str] = &[
    "externalId",
    "email",
    "hiredAt",
    "active",
    "rampMonths",
    "createdAt",
    "updatedAt",
    "deals",
];
const COMPENSATION: &[&str] = &["commissionRate", "commissionThreshold", "quotas"];

/// West (Vera VP, Mia Manager -> Ana Rep, Ben Rep) and its child North
/// (Max Manager -> Cy Rep); Mia and Max report to Vera. Every rep has a
/// quota; Ana, Ben, Cy and Mia own one deal each, Ana's and Cy's at Acme.
struct Org {
    west: String,
    reps: HashMap<&'static str, String>,
    deals: Vec<(&'static str, String)>,
    rep_token: String,
    manager_token: String,
}

const REPS: [(&str, Option<&str>, bool, &str, &str); 6] = [
    // (name, manager, in West (else North), title, commission rate)
    ("Vera VP", None, true, "VP Sales", "0.05"),
    (
        "Mia Manager",
        Some("Vera VP"),
        true,
        "Sales Manager",
        "0.06",
    ),
    (
        "Max Manager",
        Some("Vera VP"),
        false,
        "Sales Manager",
        "0.07",
    ),
    ("Ana Rep", Some("Mia Manager"), true, "AE", "0.12"),
    ("Ben Rep", Some("Mia Manager"), true, "AE", "0.13"),
    ("Cy Rep", Some("Max Manager"), false, "AE", "0.14"),
];

async fn org(app: &TestApp) -> Org {
    let west = app.create_territory("West", None, None).await;
    let north = app.create_territory("North", None, Some(&west)).await;
    let mut reps: HashMap<&'static str, String> = HashMap::new();
    for (i, (name, manager, in_west, title, rate)) in REPS.iter().enumerate() {
        let territory = if *in_west { &west } else { &north };
        let id = app
            .create_rep(
                name,
                manager.map(|m| reps[m].as_str()),
                Some(territory),
                json!({ "title": title, "commissionRate": rate, "externalId": format!("hr-{i}"), "hiredAt": "2024-03-01" }),
            )
            .await;
        app.set_quota(&id, "2026-07", &format!("{}000", i + 1))
            .await;
        reps.insert(name, id);
    }
    let acme = app.create_account("Acme", Some(&west)).await;
    let mut deals = Vec::new();
    for (name, owner, account) in [
        ("ana-deal", "Ana Rep", Some(&acme)),
        ("ben-deal", "Ben Rep", None),
        ("cy-deal", "Cy Rep", Some(&acme)),
        ("mia-deal", "Mia Manager", None),
    ] {
        let id = app
            .create_deal(json!({ "name": name, "amount": "100", "ownerId": reps[owner], "accountId": account }))
            .await;
        deals.push((owner, id));
    }
    Org {
        west,
        rep_token: app.token(Role::Rep, Some(id_num(&reps["Ana Rep"]))),
        manager_token: app.token(Role::Manager, Some(id_num(&reps["Mia Manager"]))),
        reps,
        deals,
    }
}

/// The role table: which reps are in the caller's scope (None: all).
fn team(role: Role) -> Option<&'static [&'static str]> {
    match role {
        Role::Rep => Some(&["Ana Rep"]),
        Role::Manager => Some(&["Mia Manager", "Ana Rep", "Ben Rep"]),
        _ => None,
    }
}

fn in_scope(role: Role, rep: &str) -> bool {
    team(role).is_none_or(|t| t.contains(&rep))
}

/// May `role` read `field` of `rep`?
fn may_read(role: Role, rep: &str, field: &str) -> bool {
    if DIRECTORY.contains(&field) {
        true
    } else if COMPENSATION.contains(&field) && role == Role::Integration {
        false
    } else {
        assert!(PERSONAL.contains(&field) || COMPENSATION.contains(&field));
        in_scope(role, rep)
    }
}

/// Every object with `__typename: "Rep"` in `data`, with its GraphQL path.
fn reps_in(data: &Value, path: &mut Vec<Value>, out: &mut Vec<(Vec<Value>, Value)>) {
    match data {
        Value::Object(m) => {
            if m.get("__typename") == Some(&json!("Rep")) {
                out.push((path.clone(), data.clone()));
            }
            for (k, v) in m {
                path.push(json!(k));
                reps_in(v, path, out);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                path.push(json!(i));
                reps_in(v, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Runs one path as `role` and checks every rep it reaches against the role
/// table and against the full record an ADMIN reads (`truth`). `PROBE` in
/// the query stands for every field of Rep. Returns the names of the reps
/// reached, sorted.
async fn walk(
    app: &TestApp,
    role: Role,
    token: &str,
    query: &str,
    truth: &HashMap<String, Value>,
) -> Vec<String> {
    let query = query.replace("PROBE", PROBE);
    let body = app.gql(token, &query, json!({})).await;
    let mut found = Vec::new();
    reps_in(&body["data"], &mut Vec::new(), &mut found);
    let errors: Vec<Value> = body["errors"].as_array().cloned().unwrap_or_default();
    let mut expected_errors = 0;
    for (path, rep) in &found {
        let name = rep["name"].as_str().unwrap();
        let full = &truth[name];
        for field in DIRECTORY.iter().chain(PERSONAL).chain(COMPENSATION) {
            let mut field_path = path.clone();
            field_path.push(json!(field));
            let error = errors.iter().find(|e| e["path"] == json!(field_path));
            if may_read(role, name, field) {
                assert_eq!(
                    rep.get(*field),
                    Some(&full[*field]),
                    "{role:?} must read {field} of {name} in {query}: {body}"
                );
                assert!(error.is_none(), "{role:?}: {error:?}");
            } else {
                expected_errors += 1;
                assert!(
                    rep.get(*field).is_none_or(Value::is_null),
                    "{role:?} must not read {field} of {name} in {query}: {body}"
                );
                let error = error.unwrap_or_else(|| {
                    panic!("{role:?}: no error for {field} of {name} in {query}: {body}")
                });
                assert_eq!(error["extensions"]["code"], "FORBIDDEN", "{error}");
                let expected = if COMPENSATION.contains(field) && role == Role::Integration {
                    "not allowed: the INTEGRATION role cannot read quotas or commission terms"
                } else {
                    "not allowed: only name and title of reps outside your team are visible"
                };
                assert_eq!(error["message"], expected);
            }
        }
    }
    // Nothing else failed.
    assert_eq!(errors.len(), expected_errors, "{role:?} {query}: {body}");
    sorted(found.iter().map(|(_, r)| r["name"].as_str().unwrap()))
}

/// Like `walk` for a path whose root the role may not read at all.
async fn refused(app: &TestApp, token: &str, query: &str) -> String {
    let body = app
        .gql(token, &query.replace("PROBE", PROBE), json!({}))
        .await;
    assert_eq!(body["errors"].as_array().unwrap().len(), 1, "{body}");
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The reps of `all` that `role` sees in a scoped list, sorted.
fn scoped(role: Role, all: &[&str]) -> Vec<String> {
    sorted(all.iter().filter(|n| in_scope(role, n)).copied())
}

fn sorted<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut v: Vec<String> = names.into_iter().map(str::to_owned).collect();
    v.sort();
    v
}

fn manager_of(rep: &str) -> Option<&'static str> {
    REPS.iter().find(|r| r.0 == rep).and_then(|r| r.1)
}

fn reports_of(rep: &str) -> Vec<&'static str> {
    REPS.iter()
        .filter(|r| r.1 == Some(rep))
        .map(|r| r.0)
        .collect()
}

/// A rep with its manager and direct reports, as `{ PROBE manager { PROBE }
/// directReports { PROBE } }` reaches them.
fn with_links(rep: &'static str) -> Vec<&'static str> {
    let mut v = vec![rep];
    v.extend(manager_of(rep));
    v.extend(reports_of(rep));
    v
}

async fn every_path_under_every_role_matches_the_role_table(app: TestApp) {
    let o = org(&app).await;
    // The full records, as ADMIN reads them; spot-checked against the fixture.
    let all = app
        .ok(&format!("{{ reps {{ {PROBE} }} }}"), json!({}))
        .await;
    let truth: HashMap<String, Value> = all["reps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap().to_owned(), r.clone()))
        .collect();
    let ana = &truth["Ana Rep"];
    assert_eq!(
        [
            &ana["email"],
            &ana["commissionRate"],
            &ana["quotas"],
            &ana["deals"],
            &ana["territory"]
        ],
        [
            &json!("ana.rep@example.com"),
            &json!("0.12"),
            &json!([{ "period": "2026-07", "amount": "4000.00" }]),
            &json!({ "totalCount": 1 }),
            &json!({ "name": "West" })
        ]
    );
    assert_eq!(truth["Cy Rep"]["externalId"], "hr-5");

    let everyone: Vec<&'static str> = REPS.iter().map(|r| r.0).collect();
    let roles = [
        (Role::Admin, app.token(Role::Admin, None)),
        (Role::Ops, app.token(Role::Ops, None)),
        (Role::Viewer, app.token(Role::Viewer, None)),
        (Role::Integration, app.token(Role::Integration, None)),
        (Role::Manager, o.manager_token.clone()),
        (Role::Rep, o.rep_token.clone()),
    ];
    for (role, token) in &roles {
        let (role, token) = (*role, token.as_str());

        // me: the caller's own rep, its manager, the manager's reports
        // (the caller and its peers) and its own reports.
        let seen = walk(
            &app,
            role,
            token,
            "{ me { rep { PROBE manager { PROBE directReports { PROBE } } directReports { PROBE } } } }",
            &truth,
        )
        .await;
        let expected = match role {
            Role::Rep => sorted(["Ana Rep", "Mia Manager", "Ana Rep", "Ben Rep"]),
            Role::Manager => sorted([
                "Mia Manager",
                "Vera VP",
                "Max Manager",
                "Mia Manager",
                "Ana Rep",
                "Ben Rep",
            ]),
            // No rep behind the token.
            _ => vec![],
        };
        assert_eq!(seen, expected, "{role:?} me");

        // territory(id): the members of the territory and of its children
        // are listed for every role, restricted outside the scope.
        let seen = walk(
            &app,
            role,
            token,
            &format!(
                "{{ territory(id: \"{}\") {{ reps {{ PROBE manager {{ PROBE }} }} children {{ reps {{ PROBE directReports {{ PROBE }} }} }} }} }}",
                o.west
            ),
            &truth,
        )
        .await;
        let expected = sorted([
            // West's members and their managers.
            "Ana Rep",
            "Mia Manager",
            "Ben Rep",
            "Mia Manager",
            "Mia Manager",
            "Vera VP",
            "Vera VP",
            // North's members and their reports.
            "Cy Rep",
            "Max Manager",
            "Cy Rep",
        ]);
        assert_eq!(seen, expected, "{role:?} territory");

        // territories: every territory's members.
        let seen = walk(
            &app,
            role,
            token,
            "{ territories { reps { PROBE } } }",
            &truth,
        )
        .await;
        assert_eq!(
            seen,
            sorted(everyone.iter().copied()),
            "{role:?} territories"
        );

        // rep(id): NOT_FOUND outside the scope; inside, the rep with its
        // manager and reports as links.
        let linked = "{ rep(id: \"ID\") { PROBE manager { PROBE } directReports { PROBE } } }";
        for name in &everyone {
            let q = linked.replace("ID", &o.reps[name]);
            if in_scope(role, name) {
                let seen = walk(&app, role, token, &q, &truth).await;
                assert_eq!(seen, sorted(with_links(name)), "{role:?} rep {name}");
            } else {
                assert_eq!(
                    refused(&app, token, &q).await,
                    "NOT_FOUND",
                    "{role:?} rep {name}"
                );
            }
        }

        // reps: the scope, each with its manager and reports.
        let seen = walk(
            &app,
            role,
            token,
            "{ reps { PROBE manager { PROBE } directReports { PROBE } } }",
            &truth,
        )
        .await;
        let expected = sorted(
            everyone
                .iter()
                .filter(|n| in_scope(role, n))
                .flat_map(|n| with_links(n)),
        );
        assert_eq!(seen, expected, "{role:?} reps");

        // deal(id): NOT_FOUND outside the scope; inside, its owner, the
        // owner's manager, and the account's deals (scoped) with their owners.
        for (owner, deal) in &o.deals {
            let q = format!(
                "{{ deal(id: \"{deal}\") {{ owner {{ PROBE manager {{ PROBE }} }} account {{ deals {{ nodes {{ owner {{ PROBE }} }} }} }} }} }}"
            );
            if in_scope(role, owner) {
                let seen = walk(&app, role, token, &q, &truth).await;
                let mut expected = vec![*owner];
                expected.extend(manager_of(owner));
                if ["Ana Rep", "Cy Rep"].contains(owner) {
                    expected.extend(["Ana Rep", "Cy Rep"].iter().filter(|n| in_scope(role, n)));
                }
                assert_eq!(seen, sorted(expected), "{role:?} deal of {owner}");
            } else {
                assert_eq!(
                    refused(&app, token, &q).await,
                    "NOT_FOUND",
                    "{role:?} deal of {owner}"
                );
            }
        }

        // deals: only the scope's deals, hence only in-scope owners.
        let seen = walk(
            &app,
            role,
            token,
            "{ deals { nodes { owner { PROBE } } } }",
            &truth,
        )
        .await;
        assert_eq!(
            seen,
            scoped(role, &["Ana Rep", "Ben Rep", "Cy Rep", "Mia Manager"]),
            "{role:?} deals"
        );

        // accounts: nested deals are scoped like the top-level list.
        let seen = walk(
            &app,
            role,
            token,
            "{ accounts { deals { nodes { owner { PROBE } } } } }",
            &truth,
        )
        .await;
        assert_eq!(
            seen,
            scoped(role, &["Ana Rep", "Cy Rep"]),
            "{role:?} accounts"
        );

        // Metric rows name reps too: scoped like the metrics themselves, and
        // not for INTEGRATION.
        for q in [
            "{ quotaAttainment(period: \"2026-07\") { rows { rep { PROBE } } } }",
            "{ commissions(period: \"2026-07\") { rep { PROBE } } }",
            "{ repPerformance(period: \"2026-07\") { rep { PROBE } } }",
        ] {
            if role == Role::Integration {
                assert_eq!(refused(&app, token, q).await, "FORBIDDEN", "{q}");
            } else {
                let seen = walk(&app, role, token, q, &truth).await;
                assert_eq!(seen, scoped(role, &everyone), "{role:?} {q}");
            }
        }

        // quotas: scoped, with exact amounts; FORBIDDEN to INTEGRATION.
        let q = "{ quotas(period: \"2026\") { amount rep { PROBE } } }";
        if role == Role::Integration {
            assert_eq!(refused(&app, token, q).await, "FORBIDDEN");
        } else {
            let seen = walk(&app, role, token, q, &truth).await;
            assert_eq!(seen, scoped(role, &everyone), "{role:?} quotas");
            let body = app
                .ok_as(token, &q.replace("PROBE", "name"), json!({}))
                .await;
            let mut got: Vec<(String, String)> = body["quotas"]
                .as_array()
                .unwrap()
                .iter()
                .map(|q| {
                    (
                        q["rep"]["name"].as_str().unwrap().to_owned(),
                        q["amount"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            got.sort();
            let mut expected: Vec<(String, String)> = REPS
                .iter()
                .enumerate()
                .filter(|(_, r)| in_scope(role, r.0))
                .map(|(i, r)| (r.0.to_owned(), format!("{}000.00", i + 1)))
                .collect();
            expected.sort();
            assert_eq!(got, expected, "{role:?} quota amounts");
        }
    }
}

/// The three requests of the hostile-client report, exactly.
async fn the_issue_attacks_are_refused(app: TestApp) {
    let o = org(&app).await;
    let cy = &o.reps["Cy Rep"];
    // `rep(id)` of another rep is NOT_FOUND for a REP...
    assert_eq!(
        app.error_code(
            &o.rep_token,
            "query($id: ID!) { rep(id: $id) { email } }",
            json!({ "id": cy })
        )
        .await,
        "NOT_FOUND"
    );
    // ...and so are its email, commission and quotas through a territory.
    let q = "query($t: ID!) { territory(id: $t) { children { reps { name email commissionRate quotas { period amount } } } } }";
    let body = app.gql(&o.rep_token, q, json!({ "t": o.west })).await;
    let mut errors: Vec<(String, String)> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["path"].to_string(),
                e["extensions"]["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    errors.sort();
    let mut expected = Vec::new();
    for i in 0..2 {
        for f in ["commissionRate", "email", "quotas"] {
            expected.push((
                json!(["territory", "children", 0, "reps", i, f]).to_string(),
                "FORBIDDEN".to_owned(),
            ));
        }
    }
    expected.sort();
    assert_eq!(errors, expected, "{body}");
    assert!(!body.to_string().contains("cy.rep@example.com"));
    assert!(!body.to_string().contains("6000.00"));
    // Through the manager's direct reports: the peer's name and title only.
    let q = "{ me { rep { manager { name title email directReports { name title email commissionRate quotas { amount } } } } } }";
    let body = app.gql(&o.rep_token, q, json!({})).await;
    let text = body.to_string();
    assert!(!text.contains("ben.rep@example.com"), "{body}");
    assert!(!text.contains("mia.manager@example.com"), "{body}");
    assert!(!text.contains("5000.00"), "{body}");
    let errors = body["errors"].as_array().unwrap();
    // Mia's email; Ben's email, commissionRate and quotas.
    assert_eq!(errors.len(), 4, "{body}");
    assert!(errors
        .iter()
        .all(|e| e["extensions"]["code"] == "FORBIDDEN"));
    // The REP's own row beside them is whole.
    let body = app
        .ok_as(
            &o.rep_token,
            "{ me { rep { email commissionRate quotas { amount } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["me"]["rep"],
        json!({ "email": "ana.rep@example.com", "commissionRate": "0.12", "quotas": [{ "amount": "4000.00" }] })
    );
    // INTEGRATION reads reps but not their quotas or commission terms, on any path.
    let integ = app.token(Role::Integration, None);
    for q in [
        "{ reps { quotas { amount } } }",
        "{ reps { commissionRate } }",
        "{ reps { commissionThreshold } }",
        "{ deals { nodes { owner { quotas { period } } } } }",
    ] {
        let body = app.gql(&integ, q, json!({})).await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "FORBIDDEN",
            "{q}: {body}"
        );
        assert_eq!(
            body["errors"][0]["message"],
            "not allowed: the INTEGRATION role cannot read quotas or commission terms"
        );
    }
    assert_eq!(
        app.ok_as(&integ, "{ reps(first: 1) { name email } }", json!({}))
            .await["reps"],
        json!([{ "name": "Ana Rep", "email": "ana.rep@example.com" }])
    );
}

async fn statements_for(app: &TestApp, token: &str, query: &str) -> u64 {
    let before = app.statements().await;
    app.gql(token, query, json!({})).await;
    app.statements().await - before
}

/// The scope of reps reached through links is decided by one team query per
/// batch, not one per rep: a MANAGER reading 4 or 24 territory members (half
/// outside its team) pays one statement more than for their names alone.
async fn out_of_scope_checks_are_batched(app: TestApp) {
    let o = org(&app).await;
    let names = format!("{{ territory(id: \"{}\") {{ reps {{ name }} }} }}", o.west);
    let emails = names.replace("name", "name email");
    let mut costs = Vec::new();
    for round in 0..2 {
        if round == 1 {
            for i in 0..20 {
                let manager = ["Mia Manager", "Max Manager"][i % 2];
                app.create_rep(
                    &format!("Extra {i:02}"),
                    Some(&o.reps[manager]),
                    Some(&o.west),
                    json!({}),
                )
                .await;
            }
        }
        // Warm the token's active-rep check (cached for a few seconds), so
        // both measurements below count only the query's own statements.
        app.gql(&o.manager_token, &names, json!({})).await;
        let base = statements_for(&app, &o.manager_token, &names).await;
        let checked = statements_for(&app, &o.manager_token, &emails).await;
        costs.push(checked - base);
    }
    assert_eq!(costs, [1, 1]);
}
