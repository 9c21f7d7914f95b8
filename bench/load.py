#!/usr/bin/env python3
"""Load test: the API against hand-written SQL for the same questions.

One command (from the repository root):

    python3 bench/load.py                      # 1,000,000 deals, 1/16/64 clients
    python3 bench/load.py --deals 100000 --seconds 5 --clients 1,16

It builds the release binary, seeds a fresh PostgreSQL database with
`salesops seed --deals N` (timed), starts `salesops serve` on it, and for a
fixed mix of realistic requests runs

  * the GraphQL request through the API with wrk (HTTP keep-alive, N clients);
  * a hand-written SQL query answering the same question with pgbench
    (N clients, prepared statements),

then prints throughput, p50/p99 latency, the API/SQL latency ratio, SQL
statements per API request (from /metrics) and the server's peak RSS.

Needs PostgreSQL (default postgres://postgres@127.0.0.1:5432), psql, pgbench
and wrk (`apt-get install wrk`; installed automatically when missing and
running as root).
"""
import argparse
import datetime as dt
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "salesops")
SECRET = "bench-secret-0123456789abcdef0123456789"


def sh(cmd, env=None, check=True, capture=True):
    res = subprocess.run(cmd, shell=isinstance(cmd, str), env=env, check=False,
                         stdout=subprocess.PIPE if capture else None, stderr=subprocess.STDOUT if capture else None,
                         text=True)
    if check and res.returncode != 0:
        sys.exit(f"command failed ({res.returncode}): {cmd}\n{res.stdout}")
    return res.stdout if capture else ""


def psql(url, sql):
    return sh(["psql", url, "-AtX", "-v", "ON_ERROR_STOP=1", "-c", sql]).strip()


class Api:
    def __init__(self, url, token):
        self.url = url
        self.token = token

    def post(self, query, variables=None):
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        req = urllib.request.Request(self.url, data=body, headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, timeout=120) as res:
            out = json.loads(res.read())
        if out.get("errors"):
            sys.exit(f"GraphQL errors for {query[:80]}: {out['errors']}")
        return out["data"]


def graphql_errors(base):
    """GraphQL errors the server answered so far (all codes)."""
    text = urllib.request.urlopen(f"{base}/metrics").read().decode()
    return sum(int(n) for n in re.findall(r'^salesops_graphql_errors_total\{[^}]*\} (\d+)', text, re.M))


def statements(base):
    text = urllib.request.urlopen(f"{base}/metrics").read().decode()
    return int(re.search(r"^salesops_db_statements_total (\d+)", text, re.M).group(1))


def wrk(url, token, body, clients, seconds):
    """Throughput and latency percentiles of one GraphQL request under wrk."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write('wrk.method = "POST"\n')
        f.write(f"wrk.body = {json.dumps(body)}\n")
        f.write('wrk.headers["Content-Type"] = "application/json"\n')
        f.write(f'wrk.headers["Authorization"] = "Bearer {token}"\n')
        # Count non-200 answers as errors.
        f.write("responses = 0\nfunction response(status, headers, body) if status ~= 200 then "
                "error('HTTP ' .. status) end end\n")
        script = f.name
    threads = max(1, min(clients, 2))
    out = sh(["wrk", "-t", str(threads), "-c", str(clients), "-d", f"{seconds}s", "--timeout", "120s", "--latency", "-s", script, url])
    os.unlink(script)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s|m)\b", out, re.M)
        if m is None:  # no request finished within the run
            return float("nan")
        v, unit = float(m.group(1)), m.group(2)
        return {"us": v / 1000, "ms": v, "s": v * 1000, "m": v * 60_000}[unit]
    if re.search(r"Non-2xx|Socket errors", out):
        sys.exit(f"wrk saw errors:\n{out}")
    return rps, pct(50), pct(99)


def pgbench(url, sql, clients, seconds):
    """Throughput and latency percentiles of a SQL script under pgbench."""
    tmp = tempfile.mkdtemp()
    script = os.path.join(tmp, "q.sql")
    with open(script, "w") as f:
        f.write(sql.strip().rstrip(";") + ";\n")
    threads = max(1, min(clients, 2))
    out = sh(["pgbench", "-n", "-M", "prepared", "-f", script, "-c", str(clients), "-j", str(threads),
              "-T", str(seconds), "-l", "--log-prefix", os.path.join(tmp, "log"), url])
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
    lat = []
    for name in os.listdir(tmp):
        if name.startswith("log"):
            with open(os.path.join(tmp, name)) as f:
                lat.extend(int(line.split()[2]) / 1000 for line in f if line.strip())
    shutil.rmtree(tmp)
    lat.sort()
    return tps, lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]


def mix(ids, only=None):
    """(name, GraphQL query, variables, hand-written SQL for the same question)."""
    reads = [
        ("deal page (50, all relations)",
         "{ deals(first: 50) { nodes { id name amount status expectedCloseDate owner { name } account { name } "
         "territory { name } stage { name probability } playbook { name } } } }", {},
         "SELECT d.id, d.name, d.amount_cents, d.status, d.expected_close_date, r.name, a.name, t.name, s.name, "
         "s.probability_ppm, p.name FROM deal d JOIN rep r ON r.id = d.owner_id LEFT JOIN account a ON a.id = d.account_id "
         "LEFT JOIN territory t ON t.id = d.territory_id JOIN stage s ON s.id = d.stage_id "
         "LEFT JOIN playbook p ON p.id = d.playbook_id ORDER BY d.updated_at DESC, d.id DESC LIMIT 50"),
        ("deal by id",
         "query($id: ID) { deal(id: $id) { id name amount status owner { name } stage { name } } }", {"id": ids["deal"]},
         f"SELECT d.id, d.name, d.amount_cents, d.status, r.name, s.name FROM deal d JOIN rep r ON r.id = d.owner_id "
         f"JOIN stage s ON s.id = d.stage_id WHERE d.id = {ids['deal']}"),
    ]
    # The metric and forecast requests, with their hand-written SQL, come from
    # the same case files as bench/metrics.py, so both compare like with like.
    cases = load_cases()
    for label, wanted in MIX_METRICS:
        if only and only not in label:
            continue
        case = next((c for c in cases if wanted(c)), None)
        if case is None:
            sys.exit(f"no bench case for {label}")
        reads.append((label, case["query"], case.get("variables", {}), case["sql"]))
    return reads


# Which case of bench/cases_*.py stands for each metric request of the mix.
MIX_METRICS = [
    ("win rates by rep", lambda c: c["name"].startswith("winRates by REP")),
    ("quota attainment", lambda c: c["name"].startswith("quotaAttainment")),
    ("stage-weighted forecast by territory", lambda c: c["name"].startswith("forecast STAGE_WEIGHTED by TERRITORY")),
    ("funnel", lambda c: c["name"].startswith("funnel")),
    ("metric series", lambda c: c["name"].startswith("metricSeries")),
]


def load_cases():
    """Every CASES entry of bench/cases_*.py, in file order."""
    import importlib.util
    cases = []
    here = os.path.dirname(os.path.abspath(__file__))
    for name in sorted(os.listdir(here)):
        if name.startswith("cases_") and name.endswith(".py"):
            spec = importlib.util.spec_from_file_location(name[:-3], os.path.join(here, name))
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            for c in mod.CASES:
                cases.append(dict(c, source=name))
    return cases


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def arguments(description, clients="1,16,64", seconds=10):
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--deals", type=int, default=1_000_000)
    ap.add_argument("--clients", default=clients)
    ap.add_argument("--seconds", type=int, default=seconds)
    ap.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    ap.add_argument("--db", default="salesops_bench", help="database to seed (shared by bench/load.py and bench/metrics.py)")
    ap.add_argument("--reuse", action="store_true", help="keep an already seeded database")
    ap.add_argument("--only", help="run only requests whose name contains this text")
    ap.add_argument("--port", type=int, default=18181)
    return ap.parse_args()


class Bench:
    """A release build serving a seeded PostgreSQL database."""

    def __init__(self, args):
        self.args = args
        if not shutil.which("wrk"):
            sh("DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk", check=True)
        print("== building the release binary", flush=True)
        sh(["cargo", "build", "--release", "-q", "-p", "api"], capture=False)
        self.db_url = f"{args.pg}/{args.db}"
        self.env = dict(os.environ, SALESOPS_DATABASE_URL=self.db_url, SALESOPS_JWT_SECRET=SECRET,
                        SALESOPS_BIND=f"127.0.0.1:{args.port}", RUST_LOG="warn", SALESOPS_WEBHOOK_WORKER="false",
                        # Under 64 clients of multi-second queries, requests queue
                        # for a pooled connection (as pgbench's queue in PostgreSQL)
                        # instead of failing after the default 5 s.
                        SALESOPS_DB_ACQUIRE_TIMEOUT_MS="300000", SALESOPS_STATEMENT_TIMEOUT_MS="0")
        exists = psql(f"{args.pg}/postgres", f"SELECT 1 FROM pg_database WHERE datname = '{args.db}'") == "1"
        if args.reuse and exists:
            # Apply any newer migrations to the kept data set.
            sh([BIN, "migrate"], env=self.env)
        else:
            psql(f"{args.pg}/postgres", f"DROP DATABASE IF EXISTS {args.db}")
            psql(f"{args.pg}/postgres", f"CREATE DATABASE {args.db}")
            print(f"== seeding {args.deals:,} deals", flush=True)
            started = time.time()
            print(sh([BIN, "seed", "--deals", str(args.deals)], env=self.env).strip().splitlines()[-1])
            print(f"   seed wall time: {time.time() - started:.1f}s", flush=True)
        psql(self.db_url, "VACUUM ANALYZE")
        self.deals = int(psql(self.db_url, "SELECT COUNT(*) FROM deal"))
        self.server = subprocess.Popen([BIN, "serve"], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{args.port}"
        for _ in range(300):
            try:
                if urllib.request.urlopen(f"{self.base}/readyz").status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        self.token = sh([BIN, "token", "--role", "ADMIN", "--sub", "bench", "--ttl", "4h"], env=self.env).strip()
        self.api = Api(f"{self.base}/graphql", self.token)

    def statements_of(self, query, variables):
        """SQL statements the API issues for one request (from /metrics)."""
        before = statements(self.base)
        self.api.post(query, variables)
        return statements(self.base) - before

    def wrk(self, query, variables, clients, seconds):
        """(req/s, p50, p99, GraphQL errors answered during the run)."""
        body = json.dumps({"query": query, "variables": variables})
        before = graphql_errors(self.base)
        rps, p50, p99 = wrk(f"{self.base}/graphql", self.token, body, clients, seconds)
        return rps, p50, p99, graphql_errors(self.base) - before

    def pgbench(self, sql, clients, seconds):
        return pgbench(self.db_url, sql, clients, seconds)

    def peak_rss_mb(self):
        return peak_rss_mb(self.server.pid)

    def stop(self):
        self.server.send_signal(signal.SIGTERM)
        self.server.wait(timeout=60)


def main():
    args = arguments(__doc__)
    clients = [int(c) for c in args.clients.split(",")]
    bench = Bench(args)
    try:
        deal = bench.api.post("{ deals(first: 1, orderBy: AMOUNT_DESC) { nodes { id } } }")["deals"]["nodes"][0]["id"]
        rows = []
        for name, query, variables, sql in mix({"deal": deal}, args.only):
            if args.only and args.only not in name:
                continue
            stmts = bench.statements_of(query, variables)
            single = None
            for c in clients:
                # Long enough for each client to finish a few requests on this
                # 2-core machine (slow aggregates under 64 clients), at most 150 s.
                secs = args.seconds if single is None else \
                    int(min(150, max(args.seconds, 4 * single / 1000 * c / os.cpu_count())))
                a_rps, a50, a99, errs = bench.wrk(query, variables, c, secs)
                s_tps, s50, s99 = bench.pgbench(sql, c, secs)
                single = single or max(a50, s50)
                rows.append((name, c, a_rps, a50, a99, s_tps, s50, s99, a50 / s50 if s50 else float("nan"), stmts, errs, secs))
                print(f"   {name} @{c} ({secs}s): API {a_rps:.1f}/s p50 {a50:.2f}ms ({errs} errors) | "
                      f"SQL {s_tps:.1f}/s p50 {s50:.2f}ms", flush=True)
        rss = bench.peak_rss_mb()
    finally:
        bench.stop()

    print()
    print(f"{'request':38} {'cli':>4} {'secs':>4} {'API req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'SQL tx/s':>9} "
          f"{'p50 ms':>8} {'p99 ms':>8} {'API/SQL':>7} {'stmts':>5} {'errors':>6}")
    for r in rows:
        print(f"{r[0]:38} {r[1]:>4} {r[11]:>4} {r[2]:>9.1f} {r[3]:>8.2f} {r[4]:>8.2f} {r[5]:>9.1f} {r[6]:>8.2f} "
              f"{r[7]:>8.2f} {r[8]:>7.2f} {r[9]:>5} {r[10]:>6}")
    print(f"\nserver peak RSS: {rss:.0f} MB; deals: {bench.deals:,}; API/SQL is the ratio of p50 latencies; "
          f"errors are GraphQL errors the API answered during the run")


if __name__ == "__main__":
    main()
