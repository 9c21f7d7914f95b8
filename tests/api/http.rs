//! GraphQL over HTTP: media types and status codes, GET for queries, limits
//! (depth, complexity, body size), health endpoints and metrics.
use serde_json::{json, Value};

use crate::db_tests;
use crate::helpers::{spawn_app_with, Backend, TestApp};

db_tests!(
    media_types_and_status_codes,
    get_requests,
    limits_answer_query_too_complex,
    health_and_metrics,
    validation_is_skipped_only_for_what_passed_it
);

async fn post(app: &TestApp, accept: Option<&str>, body: &str) -> (u16, String, Value) {
    let mut req = app
        .http
        .post(&app.url)
        .bearer_auth(app.admin_token())
        .header("Content-Type", "application/json")
        .body(body.to_owned());
    if let Some(a) = accept {
        req = req.header("Accept", a);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = res.text().await.unwrap();
    (
        status,
        ct,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn media_types_and_status_codes(app: TestApp) {
    let good = r#"{"query":"{ stages { name } }"}"#;
    let invalid = r#"{"query":"{ noSuchField }"}"#;
    // The GraphQL-over-HTTP media type: request errors are HTTP 400.
    let (s, ct, body) = post(&app, Some("application/graphql-response+json"), good).await;
    assert_eq!(
        (s, ct.as_str()),
        (200, "application/graphql-response+json; charset=utf-8")
    );
    assert_eq!(body["data"]["stages"][0]["name"], "Discovery");
    let (s, _, body) = post(&app, Some("application/graphql-response+json"), invalid).await;
    assert_eq!(s, 400);
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    // Nothing ran: a request error has no `data` entry at all (graphql-http).
    assert_eq!(body.get("data"), None, "{body}");
    // Legacy application/json: always 200 for a well-formed request.
    let (s, ct, body) = post(&app, Some("application/json"), invalid).await;
    assert_eq!((s, ct.as_str()), (200, "application/json; charset=utf-8"));
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(body.get("data"), None, "{body}");
    // No Accept header, or */*, gets application/json, which every client
    // reads (graphql-http's audit); an explicit type wins over */*.
    let (_, ct, _) = post(&app, None, good).await;
    assert_eq!(ct, "application/json; charset=utf-8");
    let (_, ct, _) = post(&app, Some("*/*"), good).await;
    assert_eq!(ct, "application/json; charset=utf-8");
    let (_, ct, _) = post(&app, Some("*/*, application/graphql-response+json"), good).await;
    assert_eq!(ct, "application/graphql-response+json; charset=utf-8");
    // A field error is still a 200 with data (execution happened).
    let (s, _, body) = post(
        &app,
        Some("application/graphql-response+json"),
        r#"{"query":"{ stages { name } deal(id: \"999\") { id } }"}"#,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_FOUND");
    assert_eq!(body["data"]["deal"], Value::Null);
    assert_eq!(body["data"]["stages"][0]["name"], "Discovery");
    // Not JSON, not a GraphQL request, unsupported media types.
    let (s, _, body) = post(&app, None, "{not json").await;
    assert_eq!(
        (s, body["errors"][0]["extensions"]["code"].clone()),
        (400, json!("BAD_USER_INPUT"))
    );
    let (s, _, _) = post(&app, Some("text/csv"), good).await;
    assert_eq!(s, 406);
    let res = app
        .http
        .post(&app.url)
        .bearer_auth(app.admin_token())
        .header("Content-Type", "text/plain")
        .body(good)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 415);
    // Variables and operation names.
    let (_, _, body) = post(
        &app,
        None,
        r#"{"query":"query A { a: stages { name } } query B($n: Int) { reps(first: $n) { name } }","operationName":"B","variables":{"n":1}}"#,
    )
    .await;
    assert_eq!(body["data"], json!({ "reps": [] }));
}

async fn get_requests(app: TestApp) {
    let token = app.admin_token();
    let res = app
        .http
        .get(&app.url)
        .bearer_auth(&token)
        .query(&[("query", "{ stages { name } }")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"]["stages"].as_array().unwrap().len(), 7);
    // Mutations are not allowed over GET.
    let res = app
        .http
        .get(&app.url)
        .bearer_auth(&token)
        .query(&[(
            "query",
            "mutation { createTerritory(input: {name: \"T\"}) { id } }",
        )])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 405);
    assert_eq!(res.headers()["allow"], "POST");
    assert_eq!(app.count_rows("territory").await, 0);
    // GET requires a token too.
    let res = app
        .http
        .get(&app.url)
        .query(&[("query", "{ stages { name } }")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    // Browsers get GraphiQL.
    let res = app
        .http
        .get(&app.url)
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        res.headers()["content-security-policy"],
        api::graphiql::CONTENT_SECURITY_POLICY
    );
    assert_eq!(res.headers()["cache-control"], "no-store");
    let page = res.text().await.unwrap();
    // Served from the binary: no other origin is named.
    assert!(!page.contains("http"), "{page}");
    assert!(page.contains("<script src=\"/graphiql/4.0.3/graphiql.min.js\"></script>"));
    // Outside --demo no header is filled in.
    assert!(page.contains("data-headers=\"\""));
    // Its assets, cached for a year under a versioned path, no token needed.
    for (file, ct, len) in [
        (
            "graphiql.min.js",
            "text/javascript; charset=utf-8",
            1_086_002,
        ),
        ("graphiql.min.css", "text/css; charset=utf-8", 418_412),
        (
            "react.production.min.js",
            "text/javascript; charset=utf-8",
            10_751,
        ),
        (
            "react-dom.production.min.js",
            "text/javascript; charset=utf-8",
            131_835,
        ),
        ("LICENSE-graphiql", "text/plain; charset=utf-8", 1_077),
    ] {
        let res = app
            .http
            .get(format!("{}/graphiql/4.0.3/{file}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200, "{file}");
        assert_eq!(res.headers()["content-type"], ct, "{file}");
        assert_eq!(
            res.headers()["cache-control"],
            "public, max-age=31536000, immutable",
            "{file}"
        );
        assert_eq!(res.bytes().await.unwrap().len(), len, "{file}");
    }
    // Another version or file is not there.
    for path in [
        "/graphiql/4.0.2/graphiql.min.js",
        "/graphiql/4.0.3/secret.db",
    ] {
        let res = app
            .http
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 404, "{path}");
    }
}

async fn limits_answer_query_too_complex(app: TestApp) {
    let token = app.admin_token();
    // 16 levels of nesting against a depth limit of 15.
    let deep = format!(
        "{{ reps {{ {} name {} }} }}",
        "manager { ".repeat(14),
        "}".repeat(14)
    );
    let body = app.gql(&token, &deep, json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "QUERY_TOO_COMPLEX");
    assert_eq!(
        body["errors"][0]["message"],
        "the query nests fields 16 levels deep and the limit is 15 \
         (SALESOPS_MAX_QUERY_DEPTH); select fewer nested levels"
    );
    // 500 deals x 500 nested deals blows the complexity budget.
    let wide =
        "{ deals(first: 500) { nodes { owner { deals(first: 500) { nodes { name amount } } } } } }";
    assert_eq!(
        app.error_code(&token, wide, json!({})).await,
        "QUERY_TOO_COMPLEX"
    );
    // The server keeps serving.
    assert_eq!(
        app.ok("{ stages { name } }", json!({})).await["stages"][0]["name"],
        "Discovery"
    );
    // The body limit is configurable: a small one rejects a large body with 413.
    let backend = app.backend;
    drop(app);
    let Some(small) = spawn_app_with(backend, |c| c.max_body_bytes = 1024).await else {
        return;
    };
    let big = format!(
        r#"{{"query":"{{ stages {{ name }} }}","variables":{{"pad":"{}"}}}}"#,
        "x".repeat(2048)
    );
    let res = small
        .http
        .post(&small.url)
        .bearer_auth(small.admin_token())
        .header("Content-Type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 413);
    assert_eq!(
        small.ok("{ stages { name } }", json!({})).await["stages"][0]["name"],
        "Discovery"
    );
    let _ = Backend::Sqlite;
}

async fn health_and_metrics(app: TestApp) {
    let res = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let res = app
        .http
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    app.ok("query Stages { stages { name } }", json!({})).await;
    let token = app.admin_token();
    app.error_code(&token, "{ deal(id: \"999\") { id } }", json!({}))
        .await;
    let text = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("salesops_graphql_request_duration_seconds_count{operation=\"Stages\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("salesops_graphql_errors_total{code=\"NOT_FOUND\"} 1"),
        "{text}"
    );
    assert!(text.contains("salesops_db_pool_connections"), "{text}");
    assert!(app.statements().await > 0);
}

/// A response's errors as (message, code), and whether it has data.
fn outcome(body: &Value) -> (Vec<(String, String)>, bool) {
    let errors = body["errors"]
        .as_array()
        .map(|es| {
            es.iter()
                .map(|e| {
                    (
                        e["message"].as_str().unwrap_or("").to_owned(),
                        e["extensions"]["code"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    (errors, !body["data"].is_null())
}

/// A document's repeats with the operation and variables that passed
/// validation skip the rules (documents.rs, Variant); anything else is
/// validated in full, however often the document ran before.
async fn validation_is_skipped_only_for_what_passed_it(app: TestApp) {
    let token = app.admin_token();
    let q = "query Page($n: Int, $o: DealOrder) { deals(first: $n, orderBy: $o) { nodes { id name } } }";
    let ask =
        |variables: Value| json!({ "query": q, "variables": variables, "operationName": "Page" });
    let refusals = [
        json!({ "n": "two" }),
        json!({ "n": 2, "o": "SIDEWAYS" }),
        json!({ "n": 2.5 }),
    ];
    // Refused before anything passed: the reference answers.
    let mut before = Vec::new();
    for v in &refusals {
        let refused = app.post_raw(&token, &ask(v.clone())).await.1;
        let (errors, data) = outcome(&refused);
        assert!(!data && !errors.is_empty(), "{refused:#}");
        before.push(outcome(&refused));
    }
    let first = app.post_raw(&token, &ask(json!({ "n": 2 }))).await.1;
    let (errors, data) = outcome(&first);
    assert!(errors.is_empty() && data, "{first:#}");
    assert!(first["data"]["deals"]["nodes"].is_array(), "{first:#}");
    // The repeat answers the same.
    let repeat = app.post_raw(&token, &ask(json!({ "n": 2 }))).await.1;
    assert_eq!(repeat, first);
    // The same document and operation with values the rules refuse:
    // refused as before, every time.
    for _ in 0..2 {
        for (v, expected) in refusals.iter().zip(&before) {
            let again = app.post_raw(&token, &ask(v.clone())).await.1;
            assert_eq!(&outcome(&again), expected, "{again:#}");
        }
    }
}
