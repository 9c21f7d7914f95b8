//! The README is tested: every GraphQL example in README.md, CONTRIBUTING.md
//! and docs/*.md (```graphql blocks, with the ```json block right after them
//! as variables, and `curl .../graphql` commands in ```sh blocks), and the
//! curl commands `serve --demo` prints, run against a freshly seeded demo
//! and must answer without errors.
//!
//! Placeholders are `$NAME` in capitals (shell variables in curl commands);
//! the test fills them from real data it reads first: a deal's id and its
//! current version, a stage, a rep, tokens per role, and the endCursor of the
//! preceding page query (which must page the same list: same field, filter
//! and order).
use std::collections::HashMap;
use std::path::Path;

use api::auth::Role;
use async_graphql::parser::types::{DocumentOperations, Field, Selection};
use serde_json::{json, Value};

use crate::db_tests;
use crate::helpers::TestApp;

/// Examples counted by hand (README.md's curl commands and ```graphql blocks,
/// the "What changed this week" ones included, and the 2 curl commands of
/// the `serve --demo` banner, and the weekly call); an extractor that silently
/// finds fewer fails.
const MIN_EXAMPLES: usize = 15;

db_tests!(readme_examples_run_against_the_demo);

#[derive(Debug)]
enum Body {
    /// A shell command (continuation lines joined) starting with `curl`.
    Curl(String),
    Graphql {
        query: String,
        variables: Option<String>,
    },
}

#[derive(Debug)]
struct Example {
    at: String,
    body: Body,
}

impl Example {
    fn text(&self) -> String {
        match &self.body {
            Body::Curl(c) => c.clone(),
            Body::Graphql { query, variables } => {
                format!("{query}\n{}", variables.as_deref().unwrap_or(""))
            }
        }
    }
}

/// The markdown files whose examples are tested.
fn documents() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md"), root.join("CONTRIBUTING.md")];
    let mut docs: Vec<_> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
        .into_iter()
        .map(|p| {
            let name = p.strip_prefix(root).unwrap().display().to_string();
            (name, std::fs::read_to_string(&p).expect("read markdown"))
        })
        .collect()
}

/// A fenced block of a markdown file (line numbers from 1).
struct Block {
    info: String,
    /// The opening and closing fence lines.
    open: usize,
    close: usize,
    body: String,
}

fn fenced_blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        match open.as_mut() {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    open = Some(Block {
                        info: info.trim().to_owned(),
                        open: i + 1,
                        close: 0,
                        body: String::new(),
                    });
                }
            }
            Some(b) if trimmed.starts_with("```") => {
                b.close = i + 1;
                blocks.extend(open.take());
            }
            Some(b) => {
                b.body.push_str(line);
                b.body.push('\n');
            }
        }
    }
    assert!(open.is_none(), "unterminated code block");
    blocks
}

/// Shell lines of a block with `\` continuations joined, and their line.
fn shell_commands(block: &str, first_line: usize) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in block.lines().enumerate() {
        let (start, mut text) = current.take().unwrap_or((first_line + i, String::new()));
        match line.strip_suffix('\\') {
            Some(head) => {
                text.push_str(head);
                current = Some((start, text));
            }
            None => {
                text.push_str(line);
                out.push((start, text));
            }
        }
    }
    out.extend(current);
    out
}

fn extract() -> Vec<Example> {
    let mut examples = Vec::new();
    for (file, text) in documents() {
        let lines: Vec<&str> = text.lines().collect();
        let blocks = fenced_blocks(&text);
        for (n, b) in blocks.iter().enumerate() {
            let at = |l: usize| format!("{file}:{l}");
            match b.info.as_str() {
                "graphql" => {
                    // Its variables: a ```json block right after it, with
                    // only blank lines between.
                    let variables = blocks.get(n + 1).and_then(|next| {
                        let between = &lines[b.close..next.open - 1];
                        (next.info == "json" && between.iter().all(|l| l.trim().is_empty()))
                            .then(|| next.body.clone())
                    });
                    examples.push(Example {
                        at: at(b.open + 1),
                        body: Body::Graphql {
                            query: b.body.clone(),
                            variables,
                        },
                    });
                }
                "sh" | "bash" | "shell" => curl_examples(&file, &b.body, b.open + 1, &mut examples),
                _ => {}
            }
        }
    }
    // What `serve --demo` prints is copied as often as the README.
    let banner = api::cli::demo_banner("http://localhost:8080/graphql", "<token>");
    curl_examples("serve --demo banner", &banner, 1, &mut examples);
    examples
}

/// The `curl .../graphql` commands of a shell script (cargo, docker and
/// exports are not GraphQL and are skipped).
fn curl_examples(file: &str, script: &str, first_line: usize, examples: &mut Vec<Example>) {
    for (l, cmd) in shell_commands(script, first_line) {
        if !cmd.trim_start().starts_with("curl ") {
            continue;
        }
        let words = shell_words(&cmd, &|name| format!("${name}"));
        if parse_curl(&words).graphql() {
            examples.push(Example {
                at: format!("{file}:{l}"),
                body: Body::Curl(cmd),
            });
        }
    }
}

/// Splits a shell command into words like sh does: single quotes literal,
/// double quotes and bare words expand `$NAME`, `#` starts a comment.
fn shell_words(cmd: &str, var: &dyn Fn(&str) -> String) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = cmd.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some('\''), '\'') | (Some('"'), '"') => quote = None,
            (Some('\''), c) => word.get_or_insert_default().push(c),
            (_, '$')
                if chars
                    .peek()
                    .is_some_and(|n| n.is_ascii_alphabetic() || *n == '_') =>
            {
                let mut name = String::new();
                while let Some(&n) = chars.peek() {
                    if n.is_ascii_alphanumeric() || n == '_' {
                        name.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                word.get_or_insert_default().push_str(&var(&name));
            }
            (_, '$') if chars.peek() == Some(&'(') => {
                panic!("command substitution in an example: {cmd}")
            }
            (Some('"'), '\\') => match chars.next() {
                Some(n @ ('$' | '"' | '\\' | '`')) => word.get_or_insert_default().push(n),
                Some(n) => word.get_or_insert_default().extend(['\\', n]),
                None => {}
            },
            (Some(_), c) => word.get_or_insert_default().push(c),
            (None, '\'' | '"') => {
                word.get_or_insert_default();
                quote = Some(c);
            }
            (None, '\\') => {
                if let Some(n) = chars.next() {
                    word.get_or_insert_default().push(n);
                }
            }
            (None, '#') if word.is_none() => break,
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_default().push(c),
        }
    }
    assert!(quote.is_none(), "unbalanced quotes in: {cmd}");
    words.extend(word);
    words
}

#[derive(Default)]
struct Curl {
    url: String,
    get: bool,
    headers: Vec<(String, String)>,
    data: Vec<String>,
    urlencoded: Vec<String>,
}

impl Curl {
    fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    }

    fn graphql(&self) -> bool {
        self.url.trim_end_matches('/').ends_with("/graphql")
    }
}

fn parse_curl(words: &[String]) -> Curl {
    let mut curl = Curl::default();
    let mut args = words[1..].iter();
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| panic!("{a} needs a value"))
                .clone()
        };
        match a.as_str() {
            "-s" | "--silent" | "-S" | "-sS" => {}
            "-G" | "--get" => curl.get = true,
            "-H" | "--header" => {
                let h = value();
                let (k, v) = h.split_once(':').expect("header name: value");
                curl.headers
                    .push((k.trim().to_owned(), v.trim().to_owned()));
            }
            "-d" | "--data" | "--data-raw" | "--data-binary" => curl.data.push(value()),
            "--data-urlencode" => curl.urlencoded.push(value()),
            flag if flag.starts_with('-') => panic!("curl flag the test does not know: {flag}"),
            url => curl.url = url.to_owned(),
        }
    }
    curl
}

/// Values for the placeholders; VERSION and CURSOR change as examples run.
struct Placeholders {
    values: HashMap<String, String>,
    /// The signature of the paged field that returned CURSOR.
    cursor_from: Option<String>,
}

impl Placeholders {
    fn get(&self, name: &str) -> String {
        self.values
            .get(name)
            .unwrap_or_else(|| {
                panic!(
                    "placeholder ${name} has no value (known: {:?}; CURSOR needs an earlier page query)",
                    self.values.keys().collect::<Vec<_>>()
                )
            })
            .clone()
    }

    /// `$NAME` (capitals) replaced in a GraphQL document or JSON text;
    /// lowercase `$name` is a GraphQL variable and stays.
    fn fill(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let len = after
                .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(after.len());
            let name = &after[..len];
            if len > 0 && name.chars().next().unwrap().is_ascii_uppercase() {
                out.push_str(&self.get(name));
            } else {
                out.push('$');
                out.push_str(name);
            }
            rest = &after[len..];
        }
        out.push_str(rest);
        out
    }
}

/// Top-level fields of the document's operations.
fn top_fields(query: &str) -> Vec<Field> {
    let doc = async_graphql::parser::parse_query(query)
        .unwrap_or_else(|e| panic!("example is not a GraphQL document: {e}\n{query}"));
    let ops: Vec<_> = match doc.operations {
        DocumentOperations::Single(op) => vec![op],
        DocumentOperations::Multiple(ops) => ops.into_values().collect(),
    };
    ops.into_iter()
        .flat_map(|op| op.node.selection_set.node.items)
        .filter_map(|s| match s.node {
            Selection::Field(f) => Some(f.node),
            _ => None,
        })
        .collect()
}

/// What identifies the list a field pages: its name and every argument but
/// the page window.
fn paged_list(f: &Field) -> String {
    let mut args: Vec<String> = f
        .arguments
        .iter()
        .filter(|(n, _)| !matches!(n.node.as_str(), "first" | "after" | "last" | "before"))
        .map(|(n, v)| format!("{}: {}", n.node, v.node))
        .collect();
    args.sort();
    format!("{}({})", f.name.node, args.join(", "))
}

/// Every non-empty `errors` list inside `data` (bulk results report per-input
/// failures there).
fn nested_errors(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                if k == "errors" && v.as_array().is_some_and(|a| !a.is_empty()) {
                    out.push(format!("{path}.{k}: {v}"));
                }
                nested_errors(v, &format!("{path}.{k}"), out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| nested_errors(v, path, out)),
        _ => {}
    }
}

async fn readme_examples_run_against_the_demo(app: TestApp) {
    api::seed::demo(&app.db, "USD").await.expect("seed");
    let examples = extract();
    println!("found {} GraphQL examples", examples.len());
    assert!(
        examples.len() >= MIN_EXAMPLES,
        "found {} examples, expected at least {MIN_EXAMPLES}: {examples:#?}",
        examples.len()
    );

    // Real data for the placeholders.
    let d = app
        .ok(
            "{ stages { id kind } reps(first: 500) { id active directReports { id } }
               deals(first: 1, orderBy: AMOUNT_DESC, filter: {status: [OPEN]}) { nodes { id } }
               leads(first: 1, filter: {status: [WORKING]}) { nodes { id } } }",
            json!({}),
        )
        .await;
    let won_stage = d["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "WON")
        .expect("a WON stage")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let reps = d["reps"].as_array().unwrap();
    let active = |manager: bool| {
        reps.iter()
            .find(|r| {
                r["active"] == true && r["directReports"].as_array().unwrap().is_empty() != manager
            })
            .expect("an active rep")["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (rep, manager) = (active(false), active(true));
    let num = |id: &str| id.parse::<i64>().unwrap();
    let deal = d["deals"]["nodes"][0]["id"].as_str().unwrap().to_owned();
    let mut ph = Placeholders {
        values: HashMap::from([
            ("TOKEN".into(), app.admin_token()),
            ("REP_TOKEN".into(), app.token(Role::Rep, Some(num(&rep)))),
            (
                "MANAGER_TOKEN".into(),
                app.token(Role::Manager, Some(num(&manager))),
            ),
            ("VIEWER_TOKEN".into(), app.token(Role::Viewer, None)),
            ("REP_ID".into(), rep),
            ("DEAL_ID".into(), deal.clone()),
            ("STAGE_ID".into(), won_stage),
            (
                "LEAD_ID".into(),
                d["leads"]["nodes"][0]["id"].as_str().unwrap().to_owned(),
            ),
        ]),
        cursor_from: None,
    };

    let mut ran = 0;
    for ex in &examples {
        let text = ex.text();
        if text.contains("$VERSION") {
            // The deal's version as it is now, as a client would read it.
            let v = app
                .ok(
                    "query($id: ID!) { deal(id: $id) { version } }",
                    json!({ "id": deal }),
                )
                .await;
            ph.values
                .insert("VERSION".into(), v["deal"]["version"].to_string());
        }
        let (query, response) = match &ex.body {
            Body::Curl(cmd) => {
                let words = shell_words(cmd, &|name| ph.get(name));
                let curl = parse_curl(&words);
                let path = curl.url.trim_start_matches("http://");
                let path = path
                    .strip_prefix("localhost:8080")
                    .unwrap_or_else(|| panic!("{}: URL is not the demo's: {}", ex.at, curl.url));
                let url = format!("{}{path}", app.base);
                let mut req = if curl.get || curl.data.is_empty() {
                    let params: Vec<(String, String)> = curl
                        .urlencoded
                        .iter()
                        .map(|p| {
                            let (k, v) = p.split_once('=').expect("name=value");
                            (k.to_owned(), v.to_owned())
                        })
                        .collect();
                    app.http.get(&url).query(&params)
                } else {
                    assert!(curl.urlencoded.is_empty(), "{}: mixed data", ex.at);
                    // Like curl: a POST of the data, form-encoded unless a
                    // header says otherwise.
                    let mut post = app.http.post(&url).body(curl.data.join("&"));
                    if !curl.has_header("content-type") {
                        post = post.header("Content-Type", "application/x-www-form-urlencoded");
                    }
                    post
                };
                if !curl.has_header("accept") {
                    req = req.header("Accept", "*/*");
                }
                for (k, v) in &curl.headers {
                    req = req.header(k, v);
                }
                let res = req.send().await.expect("request");
                let status = res.status();
                let text = res.text().await.unwrap();
                assert_eq!(status, 200, "{}: HTTP {status}: {text}", ex.at);
                let query = if curl.data.is_empty() {
                    curl.urlencoded
                        .iter()
                        .find_map(|p| p.strip_prefix("query="))
                        .expect("query=")
                        .to_owned()
                } else {
                    let body: Value = serde_json::from_str(&curl.data.join("&"))
                        .unwrap_or_else(|e| panic!("{}: body is not JSON: {e}", ex.at));
                    body["query"].as_str().expect("a query").to_owned()
                };
                (query, serde_json::from_str::<Value>(&text).expect("JSON"))
            }
            Body::Graphql { query, variables } => {
                let query = ph.fill(query);
                let variables = match variables {
                    Some(v) => serde_json::from_str(&ph.fill(v))
                        .unwrap_or_else(|e| panic!("{}: variables are not JSON: {e}", ex.at)),
                    None => json!({}),
                };
                let body = app.gql(&ph.get("TOKEN"), &query, variables).await;
                (query, body)
            }
        };
        let shown: String = response.to_string().chars().take(200).collect();
        println!("{}: {shown}", ex.at);
        assert!(
            response.get("errors").is_none(),
            "{}: errors: {response:#}",
            ex.at
        );
        let data = response["data"]
            .as_object()
            .unwrap_or_else(|| panic!("{}: no data: {response:#}", ex.at));
        for (k, v) in data {
            assert!(!v.is_null(), "{}: {k} is null", ex.at);
        }
        let mut errors = Vec::new();
        nested_errors(&response["data"], "data", &mut errors);
        assert!(errors.is_empty(), "{}: {errors:?}", ex.at);

        let fields = top_fields(&query);
        if text.contains("$CURSOR") {
            // A next page must page the same list as the page it continues.
            let paged: Vec<_> = fields
                .iter()
                .filter(|f| f.arguments.iter().any(|(n, _)| n.node == "after"))
                .map(paged_list)
                .collect();
            assert_eq!(
                paged,
                vec![ph.cursor_from.clone().unwrap()],
                "{}: the next page drops or changes the filter or order of the page it continues",
                ex.at
            );
        }
        for f in &fields {
            let key = f.response_key().node.as_str();
            if let Some(c) = data[key]["pageInfo"]["endCursor"].as_str() {
                ph.values.insert("CURSOR".into(), c.to_owned());
                ph.cursor_from = Some(paged_list(f));
            }
        }
        ran += 1;
    }
    println!("ran {ran} examples");
    assert_eq!(ran, examples.len());

    // The `salesops token --role REP|MANAGER --rep-id N` commands name reps
    // that exist, are active, and (for MANAGER) manage someone; a token
    // like the command's reads the deals it is scoped to.
    let commands = token_commands();
    assert!(commands.len() >= 2, "token commands: {commands:?}");
    for (at, role, rep_id) in commands {
        let d = app
            .ok(
                "query($id: ID!) { rep(id: $id) { active directReports { id } } }",
                json!({ "id": rep_id.to_string() }),
            )
            .await;
        assert_eq!(d["rep"]["active"], true, "{at}: rep {rep_id}: {d}");
        let role = match role.as_str() {
            "REP" => Role::Rep,
            "MANAGER" => {
                let reports = d["rep"]["directReports"].as_array().unwrap();
                assert!(!reports.is_empty(), "{at}: {rep_id} manages nobody");
                Role::Manager
            }
            other => panic!("{at}: role {other} takes no --rep-id"),
        };
        let token = app.token(role, Some(rep_id));
        let d = app
            .ok_as(&token, "{ deals(first: 1) { totalCount } }", json!({}))
            .await;
        assert!(d["deals"]["totalCount"].as_i64().unwrap() > 0, "{at}: {d}");
    }
}

/// (where, role, rep id) of every `token ... --rep-id N` shell command.
fn token_commands() -> Vec<(String, String, i64)> {
    let mut out = Vec::new();
    for (file, text) in documents() {
        for b in fenced_blocks(&text) {
            if !matches!(b.info.as_str(), "sh" | "bash" | "shell") {
                continue;
            }
            for (l, cmd) in shell_commands(&b.body, b.open + 1) {
                let words: Vec<&str> = cmd.split_whitespace().collect();
                let flag = |f: &str| {
                    words
                        .iter()
                        .position(|w| *w == f)
                        .map(|i| words[i + 1].trim_end_matches(')'))
                };
                if let (true, Some(role), Some(rep)) =
                    (words.contains(&"token"), flag("--role"), flag("--rep-id"))
                {
                    out.push((format!("{file}:{l}"), role.to_owned(), rep.parse().unwrap()));
                }
            }
        }
    }
    out
}
