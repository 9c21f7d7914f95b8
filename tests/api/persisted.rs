//! Automatic Persisted Queries (Apollo's protocol) and the allow-list mode
//! (SALESOPS_PERSISTED_DOCUMENTS).
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::db_tests;
use crate::helpers::TestApp;

db_tests!(
    automatic_persisted_queries,
    persisted_documents_are_priced_like_any,
    allow_list_serves_only_registered_documents,
    allow_list_from_an_apollo_manifest
);

fn sha(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn persisted(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

async fn post(app: &TestApp, body: Value) -> Value {
    app.http
        .post(&app.url)
        .bearer_auth(app.admin_token())
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

const STAGES: &str = "query Stages { stages { name } }";

fn first_stage(body: &Value) -> &Value {
    &body["data"]["stages"][0]["name"]
}

async fn automatic_persisted_queries(app: TestApp) {
    let hash = sha(STAGES);
    // Unknown hash: Apollo clients look for this message and code, then
    // send the text with its hash.
    let body = post(&app, json!({ "extensions": persisted(&hash) })).await;
    assert_eq!(body["errors"][0]["message"], "PersistedQueryNotFound");
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_FOUND"
    );
    assert_eq!(body.get("data"), None, "{body}");
    // Text and hash: runs, and is kept.
    let body = post(
        &app,
        json!({ "query": STAGES, "extensions": persisted(&hash) }),
    )
    .await;
    assert_eq!(first_stage(&body), "Discovery", "{body}");
    // From now on the hash alone is enough, by POST ...
    let body = post(&app, json!({ "extensions": persisted(&hash) })).await;
    assert_eq!(first_stage(&body), "Discovery", "{body}");
    assert_eq!(body["data"]["stages"].as_array().unwrap().len(), 7);
    // ... and by GET (Apollo's useGETForHashedQueries), upper-case hex too.
    let res = app
        .http
        .get(&app.url)
        .bearer_auth(app.admin_token())
        .query(&[
            ("operationName", "Stages"),
            ("extensions", &persisted(&hash.to_uppercase()).to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(first_stage(&body), "Discovery", "{body}");
    // A hash that is not the text's is refused and nothing is kept under it.
    let other = sha("{ me { role } }");
    let body = post(
        &app,
        json!({ "query": "{ territories { name } }", "extensions": persisted(&other) }),
    )
    .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(
        body["errors"][0]["message"],
        "extensions.persistedQuery.sha256Hash: the provided sha does not match the query's SHA-256"
    );
    let body = post(&app, json!({ "extensions": persisted(&other) })).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_FOUND"
    );
    // Malformed extensions name the field.
    let body = post(
        &app,
        json!({ "extensions": { "persistedQuery": { "version": 2, "sha256Hash": hash } } }),
    )
    .await;
    assert_eq!(
        body["errors"][0]["message"],
        "extensions.persistedQuery.version: only version 1 is supported"
    );
    let body = post(
        &app,
        json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": "abc" } } }),
    )
    .await;
    assert_eq!(
        body["errors"][0]["message"],
        "extensions.persistedQuery.sha256Hash: must be 64 hex digits (the SHA-256 of the query)"
    );
    // A persisted mutation runs once per request, like any other.
    let create = r#"mutation { createTerritory(input: { name: "APQ", region: "EMEA" }) { id } }"#;
    let h = sha(create);
    let body = post(
        &app,
        json!({ "query": create, "extensions": persisted(&h) }),
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(app.count_rows("territory").await, 1);
    // APQ off: a hash alone is refused as unsupported.
    let mut app = app;
    app.restart(true, |c| c.apq_cache_bytes = 0).await;
    let body = post(&app, json!({ "extensions": persisted(&hash) })).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_SUPPORTED"
    );
}

async fn persisted_documents_are_priced_like_any(app: TestApp) {
    // 500 deals x 500 nested deals: over the cost limit whether it comes
    // as text or by hash (the hash is resolved before pricing).
    let wide =
        "{ deals(first: 500) { nodes { owner { deals(first: 500) { nodes { name amount } } } } } }";
    let h = sha(wide);
    let body = post(&app, json!({ "query": wide, "extensions": persisted(&h) })).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "QUERY_TOO_COMPLEX");
    let body = post(&app, json!({ "extensions": persisted(&h) })).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "QUERY_TOO_COMPLEX");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("SALESOPS_MAX_QUERY_COMPLEXITY"),
        "{body}"
    );
    // In a batch, each operation resolves its own hash.
    let body = post(
        &app,
        json!([
            { "query": STAGES, "extensions": persisted(&sha(STAGES)) },
            { "extensions": persisted(&sha(STAGES)) },
        ]),
    )
    .await;
    assert_eq!(body[0]["data"]["stages"][0]["name"], "Discovery", "{body}");
    assert_eq!(body[1]["data"]["stages"][0]["name"], "Discovery", "{body}");
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "salesops-persisted-{tag}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const ME: &str = "query Me {\n  me {\n    role\n  }\n}\n";

async fn allow_list_serves_only_registered_documents(mut app: TestApp) {
    let dir = temp_dir("dir");
    std::fs::write(dir.join("stages.graphql"), STAGES).unwrap();
    std::fs::write(dir.join("me.graphql"), ME).unwrap();
    std::fs::write(dir.join("notes.txt"), "{ not a document").unwrap();
    let path = dir.to_string_lossy().to_string();
    app.restart(true, |c| c.persisted_documents = Some(path))
        .await;

    // Registered: in full, without the final newline, or by hash.
    let body = post(&app, json!({ "query": STAGES })).await;
    assert_eq!(first_stage(&body), "Discovery", "{body}");
    let body = post(&app, json!({ "query": ME.trim_end() })).await;
    assert_eq!(body["data"]["me"]["role"], "ADMIN", "{body}");
    let body = post(&app, json!({ "extensions": persisted(&sha(ME)) })).await;
    assert_eq!(body["data"]["me"]["role"], "ADMIN", "{body}");

    // Anything else is refused before it runs, and writes nothing.
    let create = r#"mutation { createTerritory(input: { name: "X", region: "EMEA" }) { id } }"#;
    let body = post(&app, json!({ "query": create })).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_ALLOWED"
    );
    assert_eq!(
        body["errors"][0]["message"],
        "this server runs only registered documents (SALESOPS_PERSISTED_DOCUMENTS) and this \
         document is not one of them"
    );
    assert_eq!(body.get("data"), None, "{body}");
    assert_eq!(app.count_rows("territory").await, 0);
    // Registering through APQ is not a way around it.
    let body = post(
        &app,
        json!({ "query": create, "extensions": persisted(&sha(create)) }),
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_ALLOWED"
    );
    let body = post(&app, json!({ "extensions": persisted(&sha(create)) })).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_ALLOWED"
    );
    assert_eq!(app.count_rows("territory").await, 0);
    // A registered text with one more space is another document.
    let body = post(&app, json!({ "query": STAGES.replace("{ ", "{  ") })).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_ALLOWED"
    );
    // GET is held to the same list.
    let res = app
        .http
        .get(&app.url)
        .bearer_auth(app.admin_token())
        .query(&[("query", "{ territories { name } }")])
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_ALLOWED"
    );
    std::fs::remove_dir_all(dir).ok();
}

async fn allow_list_from_an_apollo_manifest(mut app: TestApp) {
    let dir = temp_dir("manifest");
    let manifest = dir.join("persisted-query-manifest.json");
    std::fs::write(
        &manifest,
        json!({
            "format": "apollo-persisted-query-manifest",
            "version": 1,
            "operations": [
                { "id": sha(STAGES), "name": "Stages", "type": "query", "body": STAGES }
            ]
        })
        .to_string(),
    )
    .unwrap();
    let path = manifest.to_string_lossy().to_string();
    app.restart(true, |c| c.persisted_documents = Some(path))
        .await;
    let body = post(&app, json!({ "extensions": persisted(&sha(STAGES)) })).await;
    assert_eq!(first_stage(&body), "Discovery", "{body}");
    let body = post(&app, json!({ "query": ME })).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_ALLOWED"
    );
    std::fs::remove_dir_all(dir).ok();
}
