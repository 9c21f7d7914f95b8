//! Input both databases accept alike (issue 11, item 8): NUL characters,
//! dates outside 1900-01-01..9999-12-31, oversized id and value lists,
//! oversized search text, variables of the wrong type, and error messages
//! that would echo huge input. Each is BAD_USER_INPUT on SQLite and
//! PostgreSQL and changes nothing; a bulk call rejects only its bad inputs.
use serde_json::{json, Value};

use crate::db_tests;
use crate::helpers::TestApp;

const CREATE_DEAL: &str = "mutation($i: DealInput!) { createDeal(input: $i) { id } }";
const BULK: &str =
    "mutation($i: [DealInput!]!) { bulkUpsertDeals(inputs: $i) { created errors { index code message } } }";
const DEALS: &str = "query($f: DealFilter) { deals(filter: $f) { totalCount } }";

async fn code_and_message(app: &TestApp, query: &str, vars: Value) -> (String, String) {
    let body = app.gql(&app.admin_token(), query, vars).await;
    let err = &body["errors"][0];
    (
        err["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("expected an error, got {body}"))
            .to_owned(),
        err["message"].as_str().unwrap().to_owned(),
    )
}

async fn bad(app: &TestApp, query: &str, vars: Value) -> String {
    let (code, message) = code_and_message(app, query, vars).await;
    assert_eq!(code, "BAD_USER_INPUT", "{message}");
    message
}

async fn nul_characters_are_refused_everywhere(app: TestApp) {
    let rep = app.create_rep("Nul", None, None, json!({})).await;
    let nul = "a\u{0}b";
    let nul_message = "strings must not contain the NUL character (U+0000)";
    // Variables, at any depth.
    let deal = json!({ "name": nul, "amount": "10", "ownerId": rep });
    assert_eq!(
        bad(&app, CREATE_DEAL, json!({ "i": deal })).await,
        nul_message
    );
    assert_eq!(
        bad(
            &app,
            "mutation($i: AccountInput!) { createAccount(input: $i) { id } }",
            json!({ "i": { "name": nul } })
        )
        .await,
        nul_message
    );
    assert_eq!(
        bad(&app, DEALS, json!({ "f": { "search": nul } })).await,
        nul_message
    );
    // Literals in the document, and variable defaults.
    assert_eq!(
        bad(
            &app,
            r#"mutation { createTerritory(input: { name: "East\u0000" }) { id } }"#,
            json!({})
        )
        .await,
        nul_message
    );
    assert_eq!(
        bad(
            &app,
            r#"query($s: String = "x\u0000") { accounts(search: $s) { id } }"#,
            json!({})
        )
        .await,
        nul_message
    );
    // Nothing was written.
    assert_eq!(app.count_rows("deal").await, 0);
    assert_eq!(app.count_rows("account").await, 0);
    assert_eq!(app.count_rows("territory").await, 0);

    // A bulk call applies its good inputs and reports the bad ones.
    let r = app
        .ok(
            BULK,
            json!({ "i": [
                { "externalId": "good", "name": "Good", "amount": "10", "ownerId": rep },
                { "externalId": "nul-name", "name": nul, "amount": "10", "ownerId": rep },
                { "externalId": "nul-reason", "name": "Lost", "amount": "10", "ownerId": rep, "lostReason": nul },
                { "externalId": "year-0", "name": "Old", "amount": "10", "ownerId": rep,
                  "openedAt": "0000-06-01T00:00:00Z" },
                { "externalId": "year-1899", "name": "Old", "amount": "10", "ownerId": rep,
                  "closedAt": "1899-12-31T23:59:59Z" },
            ] }),
        )
        .await;
    assert_eq!(
        r["bulkUpsertDeals"],
        json!({ "created": 1, "errors": [
            { "index": 1, "code": "BAD_USER_INPUT", "message": nul_message },
            { "index": 2, "code": "BAD_USER_INPUT", "message": nul_message },
            { "index": 3, "code": "BAD_USER_INPUT",
              "message": "openedAt must lie between 1900-01-01 and 9999-12-31" },
            { "index": 4, "code": "BAD_USER_INPUT",
              "message": "closedAt must lie between 1900-01-01 and 9999-12-31" },
        ] })
    );
    assert_eq!(app.count_rows("deal").await, 1);
}

async fn dates_outside_the_range_are_refused(app: TestApp) {
    let rep = app.create_rep("Dates", None, None, json!({})).await;
    for date in ["0000-01-01", "0001-01-01", "1899-12-31"] {
        let deal =
            json!({ "name": "D", "amount": "10", "ownerId": rep, "expectedCloseDate": date });
        assert_eq!(
            bad(&app, CREATE_DEAL, json!({ "i": deal })).await,
            "Failed to parse \"Date\": a date must lie between 1900-01-01 and 9999-12-31 \
             (occurred while parsing \"DealInput\")"
        );
        let plan = json!({ "name": "P", "horizonStart": date, "horizonMonths": 1 });
        bad(
            &app,
            "mutation($i: CreateSopPlanInput!) { createSopPlan(input: $i) { id } }",
            json!({ "i": plan }),
        )
        .await;
        bad(
            &app,
            "query($d: Date) { forecast(period: \"2025\", method: STAGE_WEIGHTED, asOf: $d) { amount } }",
            json!({ "d": date }),
        )
        .await;
    }
    for instant in ["0000-01-01T00:00:00Z", "1899-12-31T23:59:59Z"] {
        let deal = json!({ "name": "D", "amount": "10", "ownerId": rep, "openedAt": instant });
        assert_eq!(
            bad(&app, CREATE_DEAL, json!({ "i": deal })).await,
            "openedAt must lie between 1900-01-01 and 9999-12-31"
        );
        bad(&app, DEALS, json!({ "f": { "updatedSince": instant } })).await;
    }
    for period in ["0001", "0000-Q1", "1899-12", "1899-12-01..1900-02-01"] {
        bad(
            &app,
            "query($p: Period!) { winRates(period: $p) { won } }",
            json!({ "p": period }),
        )
        .await;
    }
    assert_eq!(app.count_rows("deal").await, 0);
    assert_eq!(app.count_rows("sop_plan").await, 0);
    // The bounds themselves are accepted.
    let deal = json!({ "name": "Edge", "amount": "10", "ownerId": rep,
                       "expectedCloseDate": "9999-12-31", "openedAt": "1900-01-01T00:00:00Z" });
    app.create_deal(deal).await;
    let d = app
        .ok(
            "{ a: winRates(period: \"1900\") { won } b: winRates(period: \"9998\") { won } }",
            json!({}),
        )
        .await;
    assert_eq!(d["a"], json!([{ "won": 0 }]));
    assert_eq!(app.count_rows("deal").await, 1);
}

async fn long_lists_and_searches_are_capped(app: TestApp) {
    let rep = app.create_rep("Lists", None, None, json!({})).await;
    app.create_deal(json!({ "name": "Findme", "amount": "10", "ownerId": rep }))
        .await;
    // The attack sizes (SQLite failed at 40,000 ids, PostgreSQL at 70,000).
    for n in [1_001, 40_000, 70_000] {
        let ids: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
        assert_eq!(
            bad(&app, DEALS, json!({ "f": { "ownerIds": ids } })).await,
            format!("ownerIds: at most 1000 ids, got {n}")
        );
        let statuses = vec!["OPEN"; n];
        assert_eq!(
            bad(&app, DEALS, json!({ "f": { "status": statuses } })).await,
            format!("status: at most 1000 values, got {n}")
        );
    }
    // 1,000 ids is fine and finds the deal.
    let mut ids: Vec<String> = (1_000..1_999).map(|i| i.to_string()).collect();
    ids.push(rep.clone());
    let d = app.ok(DEALS, json!({ "f": { "ownerIds": ids } })).await;
    assert_eq!(d["deals"]["totalCount"], json!(1));

    // A 100 KB search failed SQLite's LIKE ("pattern too complex").
    let huge = "a".repeat(100_000);
    let too_long = "search must be at most 1000 characters";
    assert_eq!(
        bad(&app, DEALS, json!({ "f": { "search": huge } })).await,
        too_long
    );
    assert_eq!(
        bad(
            &app,
            "query($s: String) { accounts(search: $s) { id } }",
            json!({ "s": huge })
        )
        .await,
        too_long
    );
    // 1,000 characters of 4 bytes each, and of characters that escape to
    // two, are matched on both databases.
    for s in ["\u{1D538}".repeat(1_000), "%_\\".repeat(333)] {
        let d = app.ok(DEALS, json!({ "f": { "search": s } })).await;
        assert_eq!(d["deals"]["totalCount"], json!(0));
        let d = app
            .ok(
                "query($s: String) { accounts(search: $s) { id } }",
                json!({ "s": s }),
            )
            .await;
        assert_eq!(d["accounts"], json!([]));
    }
    let d = app.ok(DEALS, json!({ "f": { "search": "FINDME" } })).await;
    assert_eq!(d["deals"]["totalCount"], json!(1));
}

async fn wrong_variable_types_are_bad_input(app: TestApp) {
    let cases = [
        ("query($p: Period!) { winRates(period: $p) { won } }", json!({ "p": 5 })),
        ("query($p: Period!) { winRates(period: $p) { won } }", json!({ "p": ["2025"] })),
        ("query($n: Int) { deals(first: $n) { totalCount } }", json!({ "n": "ten" })),
        ("query($n: Int) { deals(first: $n) { totalCount } }", json!({ "n": 1e20 })),
        ("query($f: DealFilter) { deals(filter: $f) { totalCount } }", json!({ "f": "x" })),
        ("query($f: DealFilter) { deals(filter: $f) { totalCount } }", json!({ "f": { "nope": 1 } })),
        ("query($f: DealFilter) { deals(filter: $f) { totalCount } }", json!({ "f": { "minAmount": "ten" } })),
        ("query($f: DealFilter) { deals(filter: $f) { totalCount } }", json!({ "f": { "ownerIds": [{ "a": 1 }] } })),
        ("query($d: Date) { forecast(period: \"2025\", method: STAGE_WEIGHTED, asOf: $d) { amount } }", json!({ "d": 20250101 })),
        ("query($m: ForecastMethod!) { forecast(period: \"2025\", method: $m) { amount } }", json!({ "m": "NOPE" })),
        ("query($i: ID!) { deal(id: $i) { id } }", json!({ "i": 1.5 })),
        ("query($i: ID!) { deal(id: $i) { id } }", json!({ "i": null })),
        ("query { deal(id: 1.5) { id } }", json!({})),
    ];
    for (query, vars) in cases {
        let (code, message) = code_and_message(&app, query, vars.clone()).await;
        assert_eq!(code, "BAD_USER_INPUT", "{query} {vars}: {message}");
    }
}

async fn error_messages_do_not_echo_huge_input(app: TestApp) {
    let rep = app.create_rep("Echo", None, None, json!({})).await;
    let huge = "9x".repeat(250_000);
    // Our own messages echo at most 100 characters of input.
    let deal = json!({ "name": "E", "amount": "10", "ownerId": rep, "accountId": huge });
    let message = bad(&app, CREATE_DEAL, json!({ "i": deal })).await;
    assert!(message.starts_with("accountId: \"9x9x"), "{message}");
    assert!(message.chars().count() < 130, "{message}");
    // async-graphql's own messages are cut to 300 characters.
    for (query, vars) in [
        ("query($p: Period!) { winRates(period: $p) { won } }", json!({ "p": huge })),
        ("query($d: Date) { forecast(period: \"2025\", method: STAGE_WEIGHTED, asOf: $d) { amount } }", json!({ "d": huge })),
        ("query($n: Int) { deals(first: $n) { totalCount } }", json!({ "n": huge })),
    ] {
        let message = bad(&app, query, vars).await;
        assert!(message.chars().count() <= 301, "{} chars", message.len());
    }
    let body = app
        .gql(
            &app.admin_token(),
            "query($p: Period!) { winRates(period: $p) { won } }",
            json!({ "p": huge }),
        )
        .await;
    assert!(
        body.to_string().len() < 2_000,
        "{} bytes",
        body.to_string().len()
    );
    assert_eq!(app.count_rows("deal").await, 0);
}

db_tests!(
    nul_characters_are_refused_everywhere,
    dates_outside_the_range_are_refused,
    long_lists_and_searches_are_capped,
    wrong_variable_types_are_bad_input,
    error_messages_do_not_echo_huge_input,
);
