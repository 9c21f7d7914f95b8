//! The tools clients use work at the default settings: the standard
//! introspection documents pass, while introspection cannot be used to
//! amplify a request (issue 14, item 1) and every custom scalar is described
//! (item 6).
//!
//! The fixtures are the exact documents the libraries produce, generated
//! once with every option on:
//! - `introspection_graphql_js_16.graphql`: graphql-js 16 (npm `graphql@16`),
//!   `getIntrospectionQuery({descriptions: true, specifiedByUrl: true,
//!   directiveIsRepeatable: true, schemaDescription: true,
//!   inputValueDeprecation: true})`;
//! - `introspection_graphql_core_3_2.graphql`: graphql-core 3.2
//!   (`pip install 'graphql-core==3.2.*'`), `get_introspection_query(` the
//!   same five options `=True)`.
use serde_json::{json, Value};

use crate::db_tests;
use crate::helpers::TestApp;
use api::auth::Role;

const GRAPHQL_JS_16: &str = include_str!("fixtures/introspection_graphql_js_16.graphql");
const GRAPHQL_CORE_3_2: &str = include_str!("fixtures/introspection_graphql_core_3_2.graphql");

async fn post(app: &TestApp, token: &str, body: &Value) -> Value {
    app.http
        .post(&app.url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("json")
}

fn first_error(body: &Value) -> (&str, &str) {
    let e = &body["errors"][0];
    (
        e["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("expected an error, got {body:#}")),
        e["message"].as_str().unwrap(),
    )
}

/// The type named `name` in an introspection answer.
fn find_type<'a>(schema: &'a Value, name: &str) -> &'a Value {
    schema["types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no type {name}"))
}

async fn standard_introspection_passes(app: TestApp) {
    let viewer = app.token(Role::Viewer, None);
    for doc in [GRAPHQL_JS_16, GRAPHQL_CORE_3_2] {
        let body = post(
            &app,
            &viewer,
            &json!({ "query": doc, "operationName": "IntrospectionQuery" }),
        )
        .await;
        assert!(body.get("errors").is_none(), "{body:#}");
        let schema = &body["data"]["__schema"];
        assert_eq!(schema["queryType"]["name"], "Query");
        assert_eq!(schema["mutationType"]["name"], "Mutation");
        assert_eq!(schema["subscriptionType"]["name"], "Subscription");
        // The deepest wrapper of the schema is read whole: `[Deal!]!` is
        // NON_NULL > LIST > NON_NULL > OBJECT.
        let query = find_type(schema, "Query");
        assert_eq!(query["kind"], "OBJECT");
        let names: Vec<&str> = query["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        for field in ["me", "deals", "reps", "territories", "stages"] {
            assert!(names.contains(&field), "Query.{field} in {names:?}");
        }
        // Every custom scalar carries a description (item 6).
        for scalar in schema["types"].as_array().unwrap() {
            let name = scalar["name"].as_str().unwrap();
            let builtin = ["String", "Int", "Float", "Boolean", "ID"].contains(&name);
            if scalar["kind"] == "SCALAR" && !builtin {
                let d = scalar["description"].as_str().unwrap_or("");
                assert!(!d.is_empty(), "scalar {name} has no description");
            }
        }
        assert_eq!(
            find_type(schema, "Decimal")["description"],
            "An exact decimal number as a string, e.g. \"1250.00\" (never a float, \
             so no precision is lost). Money amounts have at most 2 decimal places."
        );
    }
}

/// A `__type { ofType { ... } }` chain far deeper than any real client's is
/// refused before it runs, naming the limit and its setting.
async fn hostile_type_chain_is_refused(app: TestApp) {
    let viewer = app.token(Role::Viewer, None);
    let doc = format!(
        "{{ __type(name: \"Query\") {{ fields {{ type {{ {} name {} }} }} }} }}",
        "ofType { ".repeat(30),
        "}".repeat(30)
    );
    let body = post(&app, &viewer, &json!({ "query": doc })).await;
    assert_eq!(body["data"], Value::Null, "{body:#}");
    assert_eq!(
        first_error(&body),
        (
            "QUERY_TOO_COMPLEX",
            "the query nests fields 34 levels deep and the limit is 15 \
             (SALESOPS_MAX_QUERY_DEPTH); select fewer nested levels"
        )
    );
    // The same through fragments, as the standard documents write it.
    let fragments = format!(
        "{{ __type(name: \"Query\") {{ fields {{ type {{ ...T }} }} }} }} \
         fragment T on __Type {{ {} name {} }}",
        "ofType { ".repeat(12),
        "}".repeat(12)
    );
    let body = post(&app, &viewer, &json!({ "query": fragments })).await;
    assert_eq!(
        first_error(&body),
        (
            "QUERY_TOO_COMPLEX",
            "the query nests fields 16 levels deep and the limit is 15 \
             (SALESOPS_MAX_QUERY_DEPTH); select fewer nested levels"
        )
    );
    // One level less is the deepest the standard documents go: it passes.
    let fifteen = format!(
        "{{ __type(name: \"Query\") {{ fields {{ type {{ {} name {} }} }} }} }}",
        "ofType { ".repeat(11),
        "}".repeat(11)
    );
    let data = app.ok_as(&viewer, &fifteen, json!({})).await;
    assert_eq!(
        data["__type"]["fields"][0]["type"]["ofType"]["name"],
        Value::Null
    );
}

/// A request holds at most one full `__schema`: aliases of it, or a batch
/// of introspections, are refused before execution.
async fn introspection_cannot_be_multiplied(app: TestApp) {
    let viewer = app.token(Role::Viewer, None);
    let full = "types { name kind fields { name type { name kind ofType { name kind } } } }";
    let two = format!("{{ a: __schema {{ {full} }} b: __schema {{ {full} }} }}");
    let body = post(&app, &viewer, &json!({ "query": two })).await;
    assert_eq!(body["data"], Value::Null, "{body:#}");
    assert_eq!(
        first_error(&body),
        (
            "QUERY_TOO_COMPLEX",
            "the query costs 60000 and the limit is 50000 (SALESOPS_MAX_QUERY_COMPLEXITY); \
             ask for smaller pages, fewer nested lists or fewer metrics"
        )
    );
    // 400 aliases (41 MB of answer once): refused, in no time.
    let many: String = (0..400)
        .map(|i| format!("s{i}: __schema {{ {full} }} "))
        .collect();
    let started = std::time::Instant::now();
    let body = post(&app, &viewer, &json!({ "query": format!("{{ {many} }}") })).await;
    assert_eq!(
        first_error(&body),
        (
            "QUERY_TOO_COMPLEX",
            "the query costs 12000000 and the limit is 50000 (SALESOPS_MAX_QUERY_COMPLEXITY); \
             ask for smaller pages, fewer nested lists or fewer metrics"
        )
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // A batch shares one budget: the first introspection runs, the second
    // is refused.
    let batch = json!([
        { "query": GRAPHQL_JS_16, "operationName": "IntrospectionQuery" },
        { "query": GRAPHQL_CORE_3_2, "operationName": "IntrospectionQuery" },
    ]);
    let body = post(&app, &viewer, &batch).await;
    assert!(body[0].get("errors").is_none(), "{:#}", body[0]["errors"]);
    assert_eq!(body[0]["data"]["__schema"]["queryType"]["name"], "Query");
    assert_eq!(
        first_error(&body[1]),
        (
            "QUERY_TOO_COMPLEX",
            "the query costs 30000 and the limit is 50000 (SALESOPS_MAX_QUERY_COMPLEXITY, \
             shared by the batch); ask for smaller pages, fewer nested lists or fewer metrics"
        )
    );
    // `__type` stays cheap: a client may look up many types at once.
    let types: String = ["Query", "Mutation", "Deal", "Rep", "Territory", "Decimal"]
        .iter()
        .map(|t| format!("{t}: __type(name: \"{t}\") {{ name kind }} "))
        .collect();
    let data = app
        .ok_as(&viewer, &format!("{{ {types} }}"), json!({}))
        .await;
    assert_eq!(
        data["Decimal"],
        json!({ "name": "Decimal", "kind": "SCALAR" })
    );
    // One full introspection plus a little data fits.
    let mixed = format!("{{ __schema {{ {full} }} me {{ role }} }}");
    let data = app.ok_as(&viewer, &mixed, json!({})).await;
    assert_eq!(data["me"]["role"], "VIEWER");
}

db_tests!(
    standard_introspection_passes,
    hostile_type_chain_is_refused,
    introspection_cannot_be_multiplied,
);
