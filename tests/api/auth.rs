//! Bearer-token authentication: only valid, unexpired tokens signed with the
//! configured key and pinned algorithm get in; everything else is HTTP 401
//! with UNAUTHENTICATED.
use api::auth::Role;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::db_tests;
use crate::helpers::{spawn_app_with, Backend, TestApp, TEST_SECRET};

fn claims(overrides: Value) -> Value {
    let now = jsonwebtoken::get_current_timestamp();
    let mut c = json!({ "sub": "tester", "role": "ADMIN", "exp": now + 600, "iat": now, "iss": "salesops", "aud": "salesops" });
    for (k, v) in overrides.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

fn hs256(secret: &str, c: &Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        c,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

async fn status_and_code(app: &TestApp, auth: Option<&str>) -> (u16, Value) {
    let mut req = app
        .http
        .post(&app.url)
        .json(&json!({ "query": "{ me { subject role } }" }));
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    (status, body["errors"][0]["extensions"]["code"].clone())
}

async fn assert_rejected(app: &TestApp, auth: Option<&str>, why: &str) {
    let (status, code) = status_and_code(app, auth).await;
    assert_eq!((status, code), (401, json!("UNAUTHENTICATED")), "{why}");
}

db_tests!(
    valid_tokens_identify_the_caller,
    bad_tokens_are_rejected_with_401
);

async fn valid_tokens_identify_the_caller(app: TestApp) {
    let rep = app.create_rep("Ana Silva", None, None, json!({})).await;
    let rep_num: i64 = rep.parse().unwrap();
    let token = app.token(Role::Rep, Some(rep_num));
    let me = app
        .ok_as(&token, "{ me { subject role rep { id name } } }", json!({}))
        .await;
    assert_eq!(
        me["me"],
        json!({ "subject": "rep-tester", "role": "REP", "rep": { "id": rep, "name": "Ana Silva" } })
    );
    // rep_id may also be a string claim.
    let t = hs256(
        TEST_SECRET,
        &claims(json!({ "role": "MANAGER", "rep_id": rep })),
    );
    let me = app.ok_as(&t, "{ me { role rep { id } } }", json!({})).await;
    assert_eq!(me["me"], json!({ "role": "MANAGER", "rep": { "id": rep } }));
}

async fn bad_tokens_are_rejected_with_401(app: TestApp) {
    let now = jsonwebtoken::get_current_timestamp();
    assert_rejected(&app, None, "no token").await;
    assert_rejected(&app, Some("Token abc"), "not a bearer header").await;
    assert_rejected(&app, Some("Bearer not.a.jwt"), "garbage").await;
    let expired = hs256(TEST_SECRET, &claims(json!({ "exp": now - 3600 })));
    assert_rejected(&app, Some(&format!("Bearer {expired}")), "expired").await;
    let forged = hs256("another-secret-another-secret-another", &claims(json!({})));
    assert_rejected(
        &app,
        Some(&format!("Bearer {forged}")),
        "signed with another key",
    )
    .await;
    let wrong_iss = hs256(TEST_SECRET, &claims(json!({ "iss": "someone-else" })));
    assert_rejected(&app, Some(&format!("Bearer {wrong_iss}")), "wrong issuer").await;
    let wrong_aud = hs256(TEST_SECRET, &claims(json!({ "aud": "another-api" })));
    assert_rejected(&app, Some(&format!("Bearer {wrong_aud}")), "wrong audience").await;
    let no_exp = hs256(TEST_SECRET, &claims(json!({ "exp": null })));
    assert_rejected(&app, Some(&format!("Bearer {no_exp}")), "no exp claim").await;
    let rep_without_rep = hs256(TEST_SECRET, &claims(json!({ "role": "REP" })));
    assert_rejected(
        &app,
        Some(&format!("Bearer {rep_without_rep}")),
        "REP without rep_id",
    )
    .await;
    let bad_role = hs256(TEST_SECRET, &claims(json!({ "role": "GOD" })));
    assert_rejected(&app, Some(&format!("Bearer {bad_role}")), "unknown role").await;
    // alg: none, with the valid claims and no signature.
    use base64::Engine;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({ "alg": "none", "typ": "JWT" })),
        b64(&claims(json!({})))
    );
    assert_rejected(&app, Some(&format!("Bearer {unsigned}")), "alg none").await;
    // A valid token still works afterwards.
    let (status, _) = status_and_code(&app, Some(&format!("Bearer {}", app.admin_token()))).await;
    assert_eq!(status, 200);
}

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// With a public key configured, only that algorithm verifies: an HS256
/// token "signed" with the public key as its secret is rejected.
async fn key_pair_case(backend: Backend, public: &str, private: &str, alg: Algorithm) {
    let Some(app) = spawn_app_with(backend, |c| {
        c.jwt_secret = None;
        c.jwt_public_key = Some(format!("{FIXTURES}/{public}"));
        c.jwt_private_key = Some(format!("{FIXTURES}/{private}"));
    })
    .await
    else {
        return;
    };
    let pem = std::fs::read(format!("{FIXTURES}/{private}")).unwrap();
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem).unwrap(),
        _ => EncodingKey::from_ec_pem(&pem).unwrap(),
    };
    let good = encode(&Header::new(alg), &claims(json!({})), &key).unwrap();
    let (status, _) = status_and_code(&app, Some(&format!("Bearer {good}"))).await;
    assert_eq!(status, 200, "{alg:?} token from the key pair");
    let public_pem = std::fs::read_to_string(format!("{FIXTURES}/{public}")).unwrap();
    let confused = hs256(&public_pem, &claims(json!({})));
    assert_rejected(
        &app,
        Some(&format!("Bearer {confused}")),
        "HS256 with the public key as secret",
    )
    .await;
    // And the CLI's minting path signs with the private key.
    let minted = app.token(Role::Viewer, None);
    let (status, _) = status_and_code(&app, Some(&format!("Bearer {minted}"))).await;
    assert_eq!(status, 200);
}

mod key_pairs {
    use super::*;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rs256_sqlite() {
        key_pair_case(
            Backend::Sqlite,
            "rsa_public.pem",
            "rsa_private.pem",
            Algorithm::RS256,
        )
        .await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rs256_postgres() {
        key_pair_case(
            Backend::Postgres,
            "rsa_public.pem",
            "rsa_private.pem",
            Algorithm::RS256,
        )
        .await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn es256_sqlite() {
        key_pair_case(
            Backend::Sqlite,
            "ec_public.pem",
            "ec_private.pem",
            Algorithm::ES256,
        )
        .await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn es256_postgres() {
        key_pair_case(
            Backend::Postgres,
            "ec_public.pem",
            "ec_private.pem",
            Algorithm::ES256,
        )
        .await;
    }
}
