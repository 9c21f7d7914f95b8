//! Random GraphQL documents and variables never crash the server: every
//! answer is a well-formed GraphQL response whose errors carry a known code,
//! and the server keeps serving afterwards.
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as PropConfig, TestRunner};
use serde_json::{json, Value};

use crate::db_tests;
use crate::helpers::TestApp;

const CODES: &[&str] = &[
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "BAD_USER_INPUT",
    "CONFLICT",
    "INVALID_TRANSITION",
    "PLAN_LOCKED",
    "QUERY_TOO_COMPLEX",
    "INTERNAL",
];
const ROOTS: &[&str] = &[
    "deals",
    "deal",
    "reps",
    "rep",
    "territories",
    "territory",
    "accounts",
    "account",
    "stages",
    "playbooks",
    "playbook",
    "quotas",
    "me",
    "auditLog",
    "createDeal",
    "updateDeal",
    "moveDealStage",
    "setQuota",
    "createRep",
    "nope",
];
const FIELDS: &[&str] = &[
    "id",
    "name",
    "amount",
    "owner",
    "account",
    "territory",
    "stage",
    "nodes",
    "edges",
    "node",
    "totalCount",
    "pageInfo",
    "stageHistory",
    "deals",
    "quotas",
    "manager",
    "directReports",
    "children",
    "reps",
    "period",
    "probability",
    "__typename",
];
const ARGS: &[&str] = &[
    "id",
    "first",
    "after",
    "filter",
    "orderBy",
    "period",
    "input",
    "patch",
    "search",
    "externalId",
    "$v",
];

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| if f.is_finite() {
            f.to_string()
        } else {
            "1.5".into()
        }),
        "[a-zA-Z0-9 %_\\-:.]{0,12}".prop_map(|s| format!("{s:?}")),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("AMOUNT_DESC".to_owned()),
        Just("\"2026-Q3\"".to_owned()),
        Just("{status: [OPEN], minAmount: \"-1\"}".to_owned()),
        Just("$v".to_owned()),
    ]
}

fn selection(depth: u32) -> BoxedStrategy<String> {
    let leaf = prop::sample::select(FIELDS).prop_map(str::to_owned);
    if depth == 0 {
        return leaf.boxed();
    }
    let args = prop::collection::vec((prop::sample::select(ARGS), value()), 0..3).prop_map(|a| {
        if a.is_empty() {
            String::new()
        } else {
            format!(
                "({})",
                a.iter()
                    .map(|(k, v)| format!("{}: {v}", k.trim_start_matches('$')))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    });
    (
        prop::sample::select(FIELDS),
        args,
        prop::collection::vec(selection(depth - 1), 0..4),
    )
        .prop_map(|(f, a, subs)| {
            if subs.is_empty() {
                format!("{f}{a}")
            } else {
                format!("{f}{a} {{ {} }}", subs.join(" "))
            }
        })
        .boxed()
}

/// Well-formed operations with odd argument values, so resolvers, parsers
/// of scalars and services see hostile input too.
fn shaped() -> impl Strategy<Value = String> {
    let period =
        "[0-9]{0,4}(-(Q[0-9]|W[0-9]{1,2}|[0-9]{1,2}(-[0-9]{1,2})?))?(\\.\\.[0-9\\-]{0,10})?";
    let decimal = "-?[0-9]{0,22}(\\.[0-9]{0,6})?";
    let id = prop_oneof!["-?[0-9]{0,20}", Just("1".to_owned()), "[a-z]{0,5}"];
    let text = "\\PC{0,20}";
    let order = prop::sample::select(
        &[
            "UPDATED_DESC",
            "UPDATED_ASC",
            "AMOUNT_DESC",
            "AMOUNT_ASC",
            "EXPECTED_CLOSE_ASC",
            "OPENED_DESC",
        ][..],
    );
    let first = -5i32..600;
    prop_oneof![
        (period, decimal, text, order, first.clone(), text).prop_map(|(p, d, t, o, f, a)| format!(
            "{{ deals(filter: {{openedIn: {p:?}, minAmount: {d:?}, search: {t:?}}}, orderBy: {o}, first: {f}, after: {a:?}) {{ totalCount nodes {{ id name amount owner {{ name }} stageHistory {{ changedAt }} }} }} }}"
        )),
        (id.clone(), text).prop_map(|(i, e)| format!("{{ deal(id: {i:?}) {{ id }} byExt: deal(externalId: {e:?}) {{ id }} rep(id: {i:?}) {{ name }} territory(id: {i:?}) {{ name }} }}")),
        (period, id.clone()).prop_map(|(p, i)| format!("{{ quotas(period: {p:?}, repId: {i:?}) {{ amount period }} }}")),
        (text, decimal, id.clone(), text, period).prop_map(|(n, d, o, c, p)| format!(
            "mutation {{ createDeal(input: {{name: {n:?}, amount: {d:?}, ownerId: {o:?}, currency: {c:?}, openedAt: {p:?}}}) {{ id }} }}"
        )),
        (id.clone(), period, decimal).prop_map(|(r, p, d)| format!("mutation {{ setQuota(repId: {r:?}, period: {p:?}, amount: {d:?}) {{ id }} }}")),
        (id.clone(), id.clone(), text, -3i32..5).prop_map(|(d, st, at, v)| format!(
            "mutation {{ moveDealStage(id: {d:?}, stageId: {st:?}, at: {at:?}, expectedVersion: {v}) {{ id }} }}"
        )),
        (id, text, decimal).prop_map(|(d, n, a)| format!("mutation {{ updateDeal(id: {d:?}, patch: {{name: {n:?}, amount: {a:?}}}) {{ id version }} }}")),
        (text, text).prop_map(|(n, e)| format!("mutation {{ createRep(input: {{name: {n:?}, email: {e:?}}}) {{ id }} }}")),
    ]
}

fn document() -> impl Strategy<Value = String> {
    let op = prop::sample::select(
        &[
            "",
            "query",
            "mutation",
            "query Q($v: Int)",
            "subscription",
            "fragment F on Deal",
        ][..],
    );
    let root = (
        prop::sample::select(ROOTS),
        prop::collection::vec((prop::sample::select(ARGS), value()), 0..3),
        prop::collection::vec(selection(3), 0..4),
    )
        .prop_map(|(r, a, subs)| {
            let args = if a.is_empty() {
                String::new()
            } else {
                format!(
                    "({})",
                    a.iter()
                        .map(|(k, v)| format!("{}: {v}", k.trim_start_matches('$')))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            if subs.is_empty() {
                format!("{r}{args}")
            } else {
                format!("{r}{args} {{ {} }}", subs.join(" "))
            }
        });
    let garbage = "\\PC{0,40}";
    prop_oneof![
        8 => (op.clone(), prop::collection::vec(root, 1..3)).prop_map(|(op, roots)| format!("{op} {{ {} }}", roots.join(" "))),
        8 => shaped(),
        1 => garbage.prop_map(|g| g),
        1 => (op, garbage).prop_map(|(op, g)| format!("{op} {{ {g}")),
    ]
}

fn variables() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({})),
        any::<i32>().prop_map(|n| json!({ "v": n })),
        "\\PC{0,10}".prop_map(|s| json!({ "v": s })),
        Just(json!({ "v": { "nested": [1, 2, null] } })),
        Just(json!(["not", "an", "object"])),
    ]
}

db_tests!(random_documents_never_crash_the_server);

async fn random_documents_never_crash_the_server(app: TestApp) {
    let owner = app.create_rep("Ana", None, None, json!({})).await;
    app.create_deal(json!({ "name": "D", "amount": "5", "ownerId": owner }))
        .await;
    let mut runner = TestRunner::new(PropConfig {
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x5a1e5),
        ..PropConfig::default()
    });
    let strategy = (document(), variables());
    let token = app.admin_token();
    for case in 0..300 {
        let (doc, vars) = strategy.new_tree(&mut runner).unwrap().current();
        let res = app
            .http
            .post(&app.url)
            .bearer_auth(&token)
            .json(&json!({ "query": doc, "variables": vars }))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        assert!(
            status == 200 || status == 400,
            "case {case}: status {status} for {doc}"
        );
        let body: Value = res
            .json()
            .await
            .unwrap_or_else(|e| panic!("case {case}: not JSON ({e}) for {doc}"));
        assert!(
            body.get("data").is_some() || body.get("errors").is_some(),
            "case {case}: {body}"
        );
        for err in body["errors"].as_array().into_iter().flatten() {
            let code = err["extensions"]["code"]
                .as_str()
                .unwrap_or_else(|| panic!("case {case}: error without code {err} for {doc}"));
            assert!(CODES.contains(&code), "case {case}: unknown code {code}");
            assert_ne!(
                code, "INTERNAL",
                "case {case}: internal error {err} for {doc}"
            );
        }
    }
    // Still serving, and the data is intact.
    let d = app.ok("{ deals { totalCount } }", json!({})).await;
    assert_eq!(d["deals"]["totalCount"], 1);
}
