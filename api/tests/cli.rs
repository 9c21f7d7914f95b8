//! The `salesops` binary as a user runs it (issue 14, items 3 and 7): its
//! help, its refusals and their messages, plain logs when redirected, and
//! demo tokens that survive a restart. Each test runs the built binary with
//! a clean environment (no SALESOPS_* variable of the caller's).
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_salesops");
const SECRET: &str = "cli-test-secret-0123456789abcdef0123456789";

fn salesops(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("SALESOPS_") || k == "RUST_LOG" || k == "NO_COLOR" {
            cmd.env_remove(k);
        }
    }
    cmd.args(args).envs(env.iter().copied());
    cmd
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    salesops(args, env).output().expect("run salesops")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A path in the temp directory no other test uses.
fn temp_db(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!(
        "salesops-cli-{name}-{}-{}.db",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    remove_db(&p);
    p
}

fn remove_db(p: &Path) {
    for suffix in ["", "-wal", "-shm", ".secret"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
    }
}

/// A local port nothing listens on.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn token_refuses_rep_and_manager_without_rep_id() {
    for role in ["REP", "MANAGER", "rep"] {
        let o = run(
            &["token", "--role", role, "--sub", "ana"],
            &[("SALESOPS_JWT_SECRET", SECRET)],
        );
        assert_eq!(o.status.code(), Some(1), "{role}");
        assert_eq!(stdout(&o), "", "no token is printed");
        assert_eq!(
            stderr(&o),
            format!(
                "salesops: a {} token acts as a rep: add --rep-id <id> (list ids with the query {{ reps {{ id name title }} }})\n",
                role.to_ascii_uppercase()
            )
        );
    }
    // With a rep id, and for roles without one, a token is printed.
    for args in [
        &["token", "--role", "REP", "--sub", "ana", "--rep-id", "3"][..],
        &["token", "--role", "viewer", "--sub", "bi"][..],
    ] {
        let o = run(args, &[("SALESOPS_JWT_SECRET", SECRET)]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o).trim().split('.').count(), 3, "a JWT");
    }
}

#[test]
fn each_subcommand_shows_only_its_own_flags() {
    let help = |cmd: &str| {
        let o = run(&[cmd, "--help"], &[]);
        assert!(o.status.success());
        stdout(&o)
    };
    let token = help("token");
    for role in [
        "ADMIN",
        "OPS",
        "MANAGER",
        "REP",
        "VIEWER",
        "INTEGRATION",
        "needs --rep-id",
    ] {
        assert!(token.contains(role), "token --help lists {role}:\n{token}");
    }
    for flag in ["--role", "--sub", "--rep-id", "--ttl", "--jwt-secret"] {
        assert!(token.contains(flag), "token --help has {flag}");
    }
    let migrate = help("migrate");
    assert!(migrate.contains("--database-url"));
    let seed = help("seed");
    for flag in ["--database-url", "--demo", "--deals", "--currency"] {
        assert!(seed.contains(flag), "seed --help has {flag}");
    }
    // serve's settings belong to serve alone.
    for (name, text) in [("token", &token), ("migrate", &migrate), ("seed", &seed)] {
        for flag in [
            "--bind",
            "--max-query-depth",
            "--webhook-timeout-ms",
            "--db-max-connections",
        ] {
            assert!(!text.contains(flag), "{name} --help lists {flag}:\n{text}");
        }
    }
    assert!(!migrate.contains("--jwt-secret"));
    let serve = help("serve");
    for flag in ["--bind", "--max-query-depth", "--demo", "--jwt-secret"] {
        assert!(serve.contains(flag), "serve --help has {flag}");
    }
}

#[test]
fn wrong_postgres_port_says_connection_refused_at_once() {
    let port = free_port();
    let url = format!("postgres://salesops:pw@127.0.0.1:{port}/salesops");
    let started = Instant::now();
    let o = run(&["migrate"], &[("SALESOPS_DATABASE_URL", &url)]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "salesops: cannot connect to postgres://salesops:***@127.0.0.1:{port}/salesops: \
             connection refused at 127.0.0.1:{port}: is PostgreSQL running and listening on that port?\n"
        )
    );
    // Not after the pool's 5 s acquire timeout.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn sqlite_url_of_a_missing_file_hints_mode_rwc() {
    let db = temp_db("norwc");
    let url = format!("sqlite://{}", db.display());
    let o = run(&["migrate", "--database-url", &url], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "salesops: cannot open {url}: the SQLite database {} does not exist; \
             to create it, add mode=rwc to the URL: {url}?mode=rwc\n",
            db.display()
        )
    );
    assert!(!db.exists());
    // With the hint applied it works.
    let o = run(
        &["migrate", "--database-url", &format!("{url}?mode=rwc")],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(db.exists());
    remove_db(&db);
}

#[test]
fn a_port_in_use_is_reported_before_migrating() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let db = temp_db("port");
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let o = run(
        &["serve", "--demo", "--bind", &addr],
        &[("SALESOPS_DATABASE_URL", &url)],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).ends_with(&format!(
            "salesops: cannot listen on {addr}: the address is already in use \
             (another salesops?); choose another with --bind or SALESOPS_BIND\n"
        )),
        "{}",
        stderr(&o)
    );
    // Nothing was migrated or seeded: the database file was never created.
    assert!(!db.exists());
    remove_db(&db);
}

/// A running `serve --demo`: its output lines arrive on a channel.
struct Demo {
    child: Child,
    lines: mpsc::Receiver<String>,
    url: String,
    token: String,
    output: Vec<String>,
}

impl Demo {
    fn start(db_url: &str) -> Demo {
        let mut child = salesops(
            &["serve", "--demo", "--bind", "127.0.0.1:0"],
            &[
                ("SALESOPS_DATABASE_URL", db_url),
                ("SALESOPS_WEBHOOK_WORKER", "false"),
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve --demo");
        let (tx, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let mut demo = Demo {
            child,
            lines,
            url: String::new(),
            token: String::new(),
            output: Vec::new(),
        };
        demo.url = demo
            .wait_for("salesops demo is running at ")
            .trim()
            .to_owned();
        demo.token = demo.wait_for("export TOKEN=").trim().to_owned();
        // Serving once the log line is out.
        demo.wait_for("serving");
        demo
    }

    /// The rest of the first line containing `marker`, after it.
    fn wait_for(&mut self, marker: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.output.push(line.clone());
                    if let Some(at) = line.find(marker) {
                        return line[at + marker.len()..].to_owned();
                    }
                }
                Err(_) => panic!(
                    "no line with {marker:?}; output so far:\n{}",
                    self.output.join("\n")
                ),
            }
        }
    }

    fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.output.push(line);
        }
        self.output
    }
}

/// POSTs a GraphQL query over a plain HTTP/1.1 connection.
fn graphql(url: &str, token: &str, query: &str) -> Value {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let body = json!({ "query": query }).to_string();
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (_, body) = raw.split_once("\r\n\r\n").unwrap();
    let mut body: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {raw}"));
    // Every answer states its cost; the callers compare the rest whole.
    let extensions = body.as_object_mut().unwrap().remove("extensions");
    assert!(extensions.unwrap()["cost"]["requested"].is_u64(), "{raw}");
    body
}

fn mint(args: &[&str], db_url: &str) -> String {
    let o = run(args, &[("SALESOPS_DATABASE_URL", db_url)]);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o).trim().to_owned()
}

#[test]
fn demo_tokens_survive_restarts_and_token_mints_more() {
    let db = temp_db("demo");
    let db_url = format!("sqlite://{}?mode=rwc", db.display());
    let secret_file = PathBuf::from(format!("{}.secret", db.display()));

    let demo = Demo::start(&db_url);
    let admin = demo.token.clone();
    let me = graphql(&demo.url, &admin, "{ me { role } }");
    assert_eq!(me, json!({ "data": { "me": { "role": "ADMIN" } } }));

    // The secret is kept beside the database, readable by its owner only.
    let secret = std::fs::read_to_string(&secret_file).unwrap();
    assert_eq!(secret.trim().len(), 64, "32 random bytes, hex");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // `salesops token` with the same database URL and no secret mints
    // tokens the demo accepts: REP and MANAGER with real rep ids.
    let reps = graphql(
        &demo.url,
        &admin,
        "{ reps(first: 200) { id directReports { id } } }",
    );
    let reps = reps["data"]["reps"].as_array().unwrap();
    let manager = reps
        .iter()
        .find(|r| !r["directReports"].as_array().unwrap().is_empty())
        .expect("the demo has managers");
    let rep = reps
        .iter()
        .find(|r| r["directReports"].as_array().unwrap().is_empty())
        .expect("the demo has reps");
    for (role, rep_id) in [
        ("REP", rep["id"].as_str()),
        ("MANAGER", manager["id"].as_str()),
        ("VIEWER", None),
    ] {
        let mut args = vec!["token", "--role", role, "--sub", "someone"];
        if let Some(id) = rep_id {
            args.extend(["--rep-id", id]);
        }
        let token = mint(&args, &db_url);
        let body = graphql(&demo.url, &token, "{ me { role rep { id } } }");
        assert_eq!(
            body,
            json!({ "data": { "me": {
                "role": role,
                "rep": rep_id.map(|id| json!({ "id": id })).unwrap_or(Value::Null),
            } } }),
            "{role}"
        );
    }
    let output = demo.stop();
    // Redirected output carries no colour codes.
    assert!(
        output.iter().all(|l| !l.contains('\u{1b}')),
        "{}",
        output.join("\n")
    );
    assert!(output.iter().any(|l| l.ends_with(&format!(
        "demo JWT secret created in {}",
        secret_file.display()
    ))));

    // After a restart the first run's token still works, and the secret is
    // the same file.
    let demo = Demo::start(&db_url);
    let me = graphql(&demo.url, &admin, "{ me { role } }");
    assert_eq!(me, json!({ "data": { "me": { "role": "ADMIN" } } }));
    assert_eq!(std::fs::read_to_string(&secret_file).unwrap(), secret);
    let output = demo.stop();
    assert!(output.iter().any(|l| l.ends_with(&format!(
        "demo JWT secret read from {}",
        secret_file.display()
    ))));
    remove_db(&db);

    // Without a demo secret file, `token` says where it looked.
    let o = run(
        &["token", "--role", "ADMIN", "--sub", "me"],
        &[("SALESOPS_DATABASE_URL", &db_url)],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains(&format!(
        "(no demo secret at {} either: start `serve --demo` once with this SALESOPS_DATABASE_URL)",
        secret_file.display()
    )));
}
