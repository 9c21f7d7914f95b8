//! Conventions clients rely on: response keys in selection-set order, and
//! reps/territories listed past one page with cursors.
use serde_json::{json, Value};

use crate::db_tests;
use crate::helpers::{id_num, TestApp};
use api::auth::Role;

db_tests!(
    keys_follow_the_selection_set,
    reps_page_past_500_with_cursors,
    territories_page_with_cursors,
);

// --- An order-keeping view of a JSON text -------------------------------

/// JSON as written: objects keep their keys in the order of the text.
#[derive(Debug, PartialEq)]
enum J {
    Obj(Vec<(String, J)>),
    Arr(Vec<J>),
    Scalar,
}

fn parse_ordered(text: &str) -> J {
    let b = text.as_bytes();
    let mut i = 0;
    let v = value(b, &mut i);
    ws(b, &mut i);
    assert_eq!(i, b.len(), "trailing text in the body");
    v
}

fn ws(b: &[u8], i: &mut usize) {
    while *i < b.len() && b[*i].is_ascii_whitespace() {
        *i += 1;
    }
}

fn string(b: &[u8], i: &mut usize) -> String {
    assert_eq!(b[*i], b'"');
    let start = *i;
    *i += 1;
    while b[*i] != b'"' {
        *i += if b[*i] == b'\\' { 2 } else { 1 };
    }
    *i += 1;
    serde_json::from_slice(&b[start..*i]).unwrap()
}

fn value(b: &[u8], i: &mut usize) -> J {
    ws(b, i);
    match b[*i] {
        b'{' => {
            *i += 1;
            let mut fields = Vec::new();
            loop {
                ws(b, i);
                if b[*i] == b'}' {
                    *i += 1;
                    return J::Obj(fields);
                }
                if b[*i] == b',' {
                    *i += 1;
                    ws(b, i);
                }
                let k = string(b, i);
                ws(b, i);
                assert_eq!(b[*i], b':');
                *i += 1;
                fields.push((k, value(b, i)));
            }
        }
        b'[' => {
            *i += 1;
            let mut items = Vec::new();
            loop {
                ws(b, i);
                if b[*i] == b']' {
                    *i += 1;
                    return J::Arr(items);
                }
                if b[*i] == b',' {
                    *i += 1;
                }
                items.push(value(b, i));
            }
        }
        b'"' => {
            string(b, i);
            J::Scalar
        }
        _ => {
            while *i < b.len()
                && !matches!(b[*i], b',' | b'}' | b']')
                && !b[*i].is_ascii_whitespace()
            {
                *i += 1;
            }
            J::Scalar
        }
    }
}

// --- A selection written once, rendered as GraphQL and checked ----------

/// A field as selected: its text (`alias: name(args)`), its response key and
/// its sub-selection.
struct Sel {
    text: String,
    key: String,
    sub: Vec<Sel>,
}

fn leaf(text: &str) -> Sel {
    node(text, vec![])
}

fn node(text: &str, sub: Vec<Sel>) -> Sel {
    let head = text.split('(').next().unwrap();
    let key = head.split(':').next().unwrap().trim().to_owned();
    Sel {
        text: text.to_owned(),
        key,
        sub,
    }
}

fn leaves(names: &str) -> Vec<Sel> {
    names.split_whitespace().map(leaf).collect()
}

fn render(sels: &[Sel]) -> String {
    let parts: Vec<String> = sels
        .iter()
        .map(|s| {
            if s.sub.is_empty() {
                s.text.clone()
            } else {
                format!("{} {{ {} }}", s.text, render(&s.sub))
            }
        })
        .collect();
    parts.join(" ")
}

/// Every object's keys are exactly the selection's, in its order; returns
/// how many objects were checked.
fn check(v: &J, sels: &[Sel], path: &str) -> usize {
    match v {
        J::Arr(items) => items
            .iter()
            .enumerate()
            .map(|(n, item)| check(item, sels, &format!("{path}[{n}]")))
            .sum(),
        J::Obj(fields) => {
            let got: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
            let want: Vec<&str> = sels.iter().map(|s| s.key.as_str()).collect();
            assert_eq!(got, want, "key order at {path}");
            1 + fields
                .iter()
                .zip(sels)
                .filter(|(_, s)| !s.sub.is_empty())
                .map(|((k, v), s)| check(v, &s.sub, &format!("{path}.{k}")))
                .sum::<usize>()
        }
        J::Scalar => 0,
    }
}

async fn raw_post(app: &TestApp, query: &str) -> String {
    app.http
        .post(&app.url)
        .bearer_auth(app.admin_token())
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn keys_follow_the_selection_set(app: TestApp) {
    let territory = app
        .create_territory("North", Some("ENTERPRISE"), None)
        .await;
    let boss = app
        .create_rep("Zed Boss", None, Some(&territory), json!({}))
        .await;
    let mut reps = vec![];
    for n in 0..4 {
        reps.push(
            app.create_rep(
                &format!("Seller {n}"),
                Some(&boss),
                Some(&territory),
                json!({}),
            )
            .await,
        );
    }
    let account = app.create_account("Globex", Some(&territory)).await;
    // 40 deals in two aliased mutations.
    for batch in 0..2 {
        let fields: Vec<String> = (0..20)
            .map(|n| {
                let k = batch * 20 + n;
                format!(
                    r#"d{k}: createDeal(input: {{ name: "Deal {k}", amount: "{}.50", ownerId: "{}", accountId: "{account}", expectedCloseDate: "2026-0{}-15" }}) {{ id }}"#,
                    100 + k,
                    reps[k % 4],
                    1 + k % 9,
                )
            })
            .collect();
        app.ok(&format!("mutation {{ {} }}", fields.join(" ")), json!({}))
            .await;
    }

    let deal_fields = || {
        let mut v = vec![
            leaf("updatedAt"),
            leaf("status"),
            node("stage", leaves("position name kind id")),
            node(
                "owner",
                vec![
                    leaf("name"),
                    node("manager", leaves("name id")),
                    leaf("id"),
                    leaf("email"),
                    node("territory", leaves("name segment id")),
                ],
            ),
            leaf("name"),
            leaf("zzName: name"),
            leaf("id"),
            leaf("forecastCategory"),
            leaf("expectedCloseDate"),
            node(
                "stageHistory",
                vec![node("toStage", leaves("name id")), leaf("changedAt")],
            ),
            leaf("currency"),
            leaf("createdAt"),
            leaf("amount"),
            leaf("ageDays"),
            node(
                "account",
                vec![
                    leaf("name"),
                    node("territory", leaves("region name id")),
                    leaf("id"),
                ],
            ),
            node("territory", leaves("name id")),
        ];
        v.push(leaf("__typename"));
        v
    };
    let mut top = vec![
        node("zulu: me", leaves("subject role")),
        node(
            "deals(first: 40, orderBy: AMOUNT_DESC)",
            vec![
                leaf("totalCount"),
                node(
                    "pageInfo",
                    leaves("hasNextPage endCursor hasPreviousPage startCursor"),
                ),
                node("nodes", deal_fields()),
                node(
                    "edges",
                    vec![leaf("cursor"), node("node", leaves("name amount id"))],
                ),
            ],
        ),
        node("mike: stages", leaves("probability name id kind position")),
    ];
    // Aliases in reverse order, each rep's fields in a different order.
    for (n, rep) in reps.iter().enumerate().rev() {
        let fields = match n % 2 {
            0 => "name id email active hiredAt",
            _ => "hiredAt active email id name",
        };
        top.push(node(&format!(r#"r{n}: rep(id: "{rep}")"#), leaves(fields)));
    }
    top.push(node(
        "alpha: repsConnection(first: 3)",
        vec![
            leaf("totalCount"),
            node(
                "nodes",
                vec![leaf("name"), node("manager", leaves("name id")), leaf("id")],
            ),
            node("pageInfo", leaves("endCursor hasNextPage")),
        ],
    ));
    top.push(node(
        "territories",
        vec![leaf("name"), node("children", leaves("id")), leaf("id")],
    ));
    top.push(leaf("aa: __typename"));
    let query = format!("query Big {{ {} }}", render(&top));

    let mut first_body: Option<String> = None;
    for _ in 0..5 {
        let body = raw_post(&app, &query).await;
        let parsed: Value = serde_json::from_str(&body).unwrap();
        assert!(parsed.get("errors").is_none(), "unexpected errors: {body}");
        let J::Obj(outer) = parse_ordered(&body) else {
            panic!("not an object: {body}")
        };
        let outer_keys: Vec<&str> = outer.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(outer_keys, ["data", "extensions"]);
        // 1 data + 1 me + connection (1 + pageInfo 1 + 40 nodes x 7 objects
        // + 40 edges x 2) + 6 stages + 4 reps + reps connection (1 + 3 nodes
        // x 2 + pageInfo 1) + 1 territory; stage history and optional
        // relations add to it, so the floor is checked.
        let objects = check(&outer[0].1, &top, "data");
        assert!(objects > 400, "only {objects} objects checked");
        // Identical calls answer identical text.
        match &first_body {
            None => first_body = Some(body),
            Some(b) => assert_eq!(&body, b, "two identical calls answered differently"),
        }
    }
}

// --- Reps and territories past one page ---------------------------------

const REP_PAGE: &str = "query($f: Int, $a: String, $m: ID) {
  repsConnection(first: $f, after: $a, managerId: $m) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id } }
    nodes { id }
  }
}";

/// Pages through repsConnection; returns the ids in order and checks each
/// page's cursors, flags and totalCount.
async fn all_reps(app: &TestApp, token: &str, first: i64, manager: Option<&str>) -> Vec<i64> {
    let mut ids = vec![];
    let mut after: Option<String> = None;
    let mut total = None;
    for page in 0.. {
        let d = app
            .ok_as(
                token,
                REP_PAGE,
                json!({ "f": first, "a": after, "m": manager }),
            )
            .await;
        let c = &d["repsConnection"];
        let edges = c["edges"].as_array().unwrap();
        let nodes: Vec<i64> = c["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| id_num(n["id"].as_str().unwrap()))
            .collect();
        let edge_ids: Vec<i64> = edges
            .iter()
            .map(|e| id_num(e["node"]["id"].as_str().unwrap()))
            .collect();
        assert_eq!(nodes, edge_ids);
        assert_eq!(c["pageInfo"]["hasPreviousPage"], json!(page > 0));
        if let Some(last) = edges.last() {
            assert_eq!(c["pageInfo"]["endCursor"], last["cursor"]);
            assert_eq!(c["pageInfo"]["startCursor"], edges[0]["cursor"]);
        }
        let n = c["totalCount"].as_i64().unwrap();
        assert_eq!(
            *total.get_or_insert(n),
            n,
            "totalCount is the same on every page"
        );
        ids.extend(edge_ids);
        if c["pageInfo"]["hasNextPage"] == json!(false) {
            assert!(edges.len() as i64 <= first);
            break;
        }
        assert_eq!(edges.len() as i64, first, "a page before the last is full");
        after = Some(c["pageInfo"]["endCursor"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len() as i64, total.unwrap());
    ids
}

async fn rep_ids_in_db(app: &TestApp) -> Vec<i64> {
    #[derive(sea_orm::FromQueryResult)]
    struct R {
        id: i64,
    }
    let stmt = sea_orm::Statement::from_string(
        app.db.get_database_backend(),
        "SELECT id FROM rep ORDER BY id",
    );
    <R as sea_orm::FromQueryResult>::find_by_statement(stmt)
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect()
}

async fn reps_page_past_500_with_cursors(app: TestApp) {
    // A team: boss > 6 reps, one of them (sub) > 4 more.
    let boss = app.create_rep("Team Boss", None, None, json!({})).await;
    let mut team = vec![id_num(&boss)];
    let mut direct = vec![];
    for n in 0..6 {
        let r = app
            .create_rep(&format!("Direct {n}"), Some(&boss), None, json!({}))
            .await;
        team.push(id_num(&r));
        direct.push(r);
    }
    let sub = direct[0].clone();
    let mut under_sub = vec![];
    for n in 0..4 {
        let r = app
            .create_rep(&format!("Indirect {n}"), Some(&sub), None, json!({}))
            .await;
        team.push(id_num(&r));
        under_sub.push(id_num(&r));
    }
    // 510 reps outside the team, 30 per request.
    for batch in 0..17 {
        let fields: Vec<String> = (0..30)
            .map(|n| {
                let k = batch * 30 + n;
                format!(r#"c{k}: createRep(input: {{ name: "Bulk {k}", email: "bulk{k}@example.com" }}) {{ id }}"#)
            })
            .collect();
        app.ok(&format!("mutation {{ {} }}", fields.join(" ")), json!({}))
            .await;
    }
    let everyone = rep_ids_in_db(&app).await;
    assert!(everyone.len() >= 521, "{} reps", everyone.len());

    // The contract's list stops at 500; the connection goes on.
    let admin = app.admin_token();
    assert_eq!(
        app.error_code(&admin, "{ reps(first: 501) { id } }", json!({}))
            .await,
        "QUERY_TOO_COMPLEX"
    );
    let ids = all_reps(&app, &admin, 100, None).await;
    assert_eq!(ids, everyone);
    // Filters page too: the sub-manager's direct reports.
    let ids = all_reps(&app, &admin, 3, Some(&sub)).await;
    assert_eq!(ids, under_sub);

    // A MANAGER sees its team (itself and everyone below it), paged.
    let manager = app.token(Role::Manager, Some(id_num(&boss)));
    team.sort();
    assert_eq!(all_reps(&app, &manager, 5, None).await, team);
    // A REP sees itself.
    let rep = app.token(Role::Rep, Some(under_sub[0]));
    assert_eq!(all_reps(&app, &rep, 5, None).await, vec![under_sub[0]]);

    // Bad cursors and pages are refused and change nothing.
    for (after, code) in [
        ("not-a-cursor", "BAD_USER_INPUT"),
        // A territory cursor is not a rep cursor.
        ("eyJsIjoidGVycml0b3JpZXMiLCJpIjoxfQ", "BAD_USER_INPUT"),
    ] {
        assert_eq!(
            app.error_code(&admin, REP_PAGE, json!({ "f": 5, "a": after }))
                .await,
            code
        );
    }
    assert_eq!(
        app.error_code(&admin, REP_PAGE, json!({ "f": 501 })).await,
        "QUERY_TOO_COMPLEX"
    );
    assert_eq!(
        app.error_code(&admin, REP_PAGE, json!({ "f": -1 })).await,
        "BAD_USER_INPUT"
    );
}

const TERRITORY_PAGE: &str = "query($f: Int, $a: String, $p: ID) {
  territoriesConnection(first: $f, after: $a, parentId: $p) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage endCursor }
    edges { cursor node { id name } }
  }
}";

async fn territories_page_with_cursors(app: TestApp) {
    let parent = app.create_territory("Parent", None, None).await;
    let mut children = vec![];
    for n in 0..7 {
        let t = app
            .create_territory(&format!("Child {}", 7 - n), None, Some(&parent))
            .await;
        children.push(id_num(&t));
    }
    let admin = app.admin_token();
    let mut ids = vec![];
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let d = app
            .ok_as(
                &admin,
                TERRITORY_PAGE,
                json!({ "f": 3, "a": after, "p": parent }),
            )
            .await;
        let c = &d["territoriesConnection"];
        assert_eq!(c["totalCount"], json!(7));
        assert_eq!(c["pageInfo"]["hasPreviousPage"], json!(pages > 0));
        let edges = c["edges"].as_array().unwrap();
        ids.extend(
            edges
                .iter()
                .map(|e| id_num(e["node"]["id"].as_str().unwrap())),
        );
        pages += 1;
        if c["pageInfo"]["hasNextPage"] == json!(false) {
            break;
        }
        after = Some(c["pageInfo"]["endCursor"].as_str().unwrap().to_owned());
    }
    assert_eq!(pages, 3);
    assert_eq!(ids, children, "ordered by id, not by name");
    // Without a parent: every territory, the parent included.
    let d = app.ok_as(&admin, TERRITORY_PAGE, json!({ "f": 500 })).await;
    let total = app.count_rows("territory").await;
    assert_eq!(d["territoriesConnection"]["totalCount"], json!(total));
    assert_eq!(
        d["territoriesConnection"]["edges"]
            .as_array()
            .unwrap()
            .len() as i64,
        total
    );
    // A rep cursor is not a territory cursor.
    let rep_cursor = "eyJsIjoicmVwcyIsImkiOjF9";
    assert_eq!(
        app.error_code(&admin, TERRITORY_PAGE, json!({ "f": 3, "a": rep_cursor }))
            .await,
        "BAD_USER_INPUT"
    );
}
