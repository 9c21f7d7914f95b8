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
    out = sh(["wrk", "-t", str(threads), "-c", str(clients), "-d", f"{seconds}s", "--latency", "-s", script, url])
    os.unlink(script)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)", out, re.M)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
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


def month_range(day):
    start = day.replace(day=1)
    end = (start + dt.timedelta(days=32)).replace(day=1)
    return start, end


def quarter_range(day):
    q = (day.month - 1) // 3
    start = dt.date(day.year, q * 3 + 1, 1)
    end = dt.date(day.year + (q == 3), (q * 3 + 3) % 12 + 1, 1)
    return start, end


def mix(ids):
    """(name, GraphQL query, variables, hand-written SQL for the same question)."""
    today = dt.date.today()
    q_start, q_end = quarter_range(today)
    m_start, m_end = month_range(today)
    quarter = f"{today.year}-Q{(today.month - 1) // 3 + 1}"
    month = f"{today.year}-{today.month:02d}"
    year_start = dt.date(today.year - 1, today.month, 1)
    ts = lambda d: f"'{d.isoformat()}T00:00:00Z'::timestamptz"
    # Deals without an expected close are expected at opened_at + the average
    # won cycle (DESIGN.md); both sides compute it.
    avg_cycle = ("(SELECT COALESCE(AVG((closed_at AT TIME ZONE 'UTC')::date - (opened_at AT TIME ZONE 'UTC')::date), 0) "
                 "FROM deal WHERE status = 'WON')")
    expected = f"COALESCE(d.expected_close_date, (d.opened_at AT TIME ZONE 'UTC')::date + {avg_cycle}::int)"
    return [
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
        ("win rates by rep (quarter)",
         f'{{ winRates(period: "{quarter}", groupBy: REP) {{ key {{ id label }} won lost winRate wonAmount lostAmount amountWinRate }} }}', {},
         f"SELECT d.owner_id, r.name, COUNT(*) FILTER (WHERE d.status = 'WON'), COUNT(*) FILTER (WHERE d.status = 'LOST'), "
         f"COALESCE(SUM(d.amount_cents) FILTER (WHERE d.status = 'WON'), 0), COALESCE(SUM(d.amount_cents) FILTER (WHERE d.status = 'LOST'), 0) "
         f"FROM deal d JOIN rep r ON r.id = d.owner_id WHERE d.status IN ('WON', 'LOST') AND d.closed_at >= {ts(q_start)} "
         f"AND d.closed_at < {ts(q_end)} GROUP BY d.owner_id, r.name"),
        ("quota attainment (month)",
         f'{{ quotaAttainment(period: "{month}") {{ totalQuota totalClosedWon attainment quotaAchievementRate '
         f'rows {{ rep {{ name }} quota closedWon attainment openPipeline weightedPipeline pipelineCoverage }} }} }}', {},
         f"WITH q AS (SELECT rep_id, SUM(amount_cents) AS quota FROM quota WHERE start_date >= '{m_start}' AND end_date <= '{m_end}' GROUP BY rep_id), "
         f"w AS (SELECT owner_id, SUM(amount_cents) AS won FROM deal WHERE status = 'WON' AND closed_at >= {ts(m_start)} AND closed_at < {ts(m_end)} GROUP BY owner_id), "
         f"p AS (SELECT d.owner_id, SUM(d.amount_cents) AS pipe, SUM(d.amount_cents * s.probability_ppm) AS weighted FROM deal d JOIN stage s ON s.id = d.stage_id "
         f"WHERE d.status = 'OPEN' AND {expected} >= '{m_start}' AND {expected} < '{m_end}' GROUP BY d.owner_id) "
         f"SELECT r.id, r.name, q.quota, COALESCE(w.won, 0), COALESCE(p.pipe, 0), COALESCE(p.weighted, 0) FROM q JOIN rep r ON r.id = q.rep_id "
         f"LEFT JOIN w ON w.owner_id = q.rep_id LEFT JOIN p ON p.owner_id = q.rep_id"),
        ("stage-weighted forecast by territory (quarter)",
         f'{{ forecast(period: "{quarter}", method: STAGE_WEIGHTED, groupBy: TERRITORY) {{ amount closedWon projected low high '
         f'rows {{ key {{ label }} amount closedWon projected dealCount }} }} }}', {},
         f"SELECT d.territory_id, t.name, COALESCE(SUM(d.amount_cents) FILTER (WHERE d.status = 'WON' AND d.closed_at >= {ts(q_start)} AND d.closed_at < {ts(q_end)}), 0), "
         f"COALESCE(SUM(d.amount_cents * s.probability_ppm) FILTER (WHERE d.status = 'OPEN' AND {expected} >= '{q_start}' AND {expected} < '{q_end}'), 0), COUNT(*) "
         f"FROM deal d JOIN stage s ON s.id = d.stage_id LEFT JOIN territory t ON t.id = d.territory_id "
         f"WHERE (d.status = 'WON' AND d.closed_at >= {ts(q_start)} AND d.closed_at < {ts(q_end)}) OR d.status = 'OPEN' GROUP BY d.territory_id, t.name"),
        ("funnel (quarter)",
         f'{{ funnel(period: "{quarter}") {{ stage {{ name }} entered advanced lostHere conversionRate avgDaysInStage }} }}', {},
         "WITH h AS (SELECT c.to_stage_id, c.changed_at, LEAD(c.to_stage_id) OVER w AS next_stage, LEAD(c.changed_at) OVER w AS next_at "
         "FROM deal_stage_change c WINDOW w AS (PARTITION BY c.deal_id ORDER BY c.changed_at, c.id)) "
         "SELECT s.id, COUNT(*), COUNT(*) FILTER (WHERE ns.kind = 'WON' OR (ns.kind = 'OPEN' AND ns.position > s.position)), "
         "COUNT(*) FILTER (WHERE ns.kind = 'LOST'), AVG((h.next_at AT TIME ZONE 'UTC')::date - (h.changed_at AT TIME ZONE 'UTC')::date) "
         f"FROM h JOIN stage s ON s.id = h.to_stage_id LEFT JOIN stage ns ON ns.id = h.next_stage "
         f"WHERE h.changed_at >= {ts(q_start)} AND h.changed_at < {ts(q_end)} GROUP BY s.id"),
        ("metric series (closed-won by month, 12 months)",
         f'{{ metricSeries(metric: CLOSED_WON_AMOUNT, period: "{year_start}..{m_end}", granularity: MONTH) {{ bucket value change }} }}', {},
         f"SELECT date_trunc('month', closed_at AT TIME ZONE 'UTC'), SUM(amount_cents) FROM deal WHERE status = 'WON' "
         f"AND closed_at >= {ts(year_start)} AND closed_at < {ts(m_end)} GROUP BY 1 ORDER BY 1"),
    ]


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--deals", type=int, default=1_000_000)
    ap.add_argument("--clients", default="1,16,64")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    ap.add_argument("--db", default="salesops_load")
    ap.add_argument("--reuse", action="store_true", help="keep an already seeded database")
    ap.add_argument("--only", help="run only requests whose name contains this text")
    ap.add_argument("--port", type=int, default=18181)
    args = ap.parse_args()
    clients = [int(c) for c in args.clients.split(",")]

    if not shutil.which("wrk"):
        sh("DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk", check=True)
    print("== building the release binary")
    sh(["cargo", "build", "--release", "-q", "-p", "api"], capture=False)

    db_url = f"{args.pg}/{args.db}"
    env = dict(os.environ, SALESOPS_DATABASE_URL=db_url, SALESOPS_JWT_SECRET=SECRET,
               SALESOPS_BIND=f"127.0.0.1:{args.port}", RUST_LOG="warn", SALESOPS_WEBHOOK_WORKER="false")
    if not args.reuse:
        psql(f"{args.pg}/postgres", f"DROP DATABASE IF EXISTS {args.db}")
        psql(f"{args.pg}/postgres", f"CREATE DATABASE {args.db}")
        print(f"== seeding {args.deals:,} deals")
        started = time.time()
        print(sh([BIN, "seed", "--deals", str(args.deals)], env=env).strip().splitlines()[-1])
        print(f"   seed wall time: {time.time() - started:.1f}s")
        psql(db_url, "VACUUM ANALYZE")

    server = subprocess.Popen([BIN, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{args.port}"
    try:
        for _ in range(100):
            try:
                if urllib.request.urlopen(f"{base}/readyz").status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        token = sh([BIN, "token", "--role", "ADMIN", "--sub", "bench", "--ttl", "2h"], env=env).strip()
        api = Api(f"{base}/graphql", token)
        deal = api.post("{ deals(first: 1, orderBy: AMOUNT_DESC) { nodes { id } } }")["deals"]["nodes"][0]["id"]
        rows = []
        for name, query, variables, sql in mix({"deal": deal}):
            if args.only and args.only not in name:
                continue
            before = statements(base)
            api.post(query, variables)
            stmts = statements(base) - before
            body = json.dumps({"query": query, "variables": variables})
            for c in clients:
                a_rps, a50, a99 = wrk(f"{base}/graphql", token, body, c, args.seconds)
                s_tps, s50, s99 = pgbench(db_url, sql, c, args.seconds)
                rows.append((name, c, a_rps, a50, a99, s_tps, s50, s99, a50 / s50 if s50 else float("nan"), stmts))
                print(f"   {name} @{c}: API {a_rps:.0f}/s p50 {a50:.2f}ms | SQL {s_tps:.0f}/s p50 {s50:.2f}ms", flush=True)
        rss = peak_rss_mb(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)

    print()
    print(f"{'request':48} {'cli':>4} {'API req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'SQL tx/s':>10} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'API/SQL':>8} {'stmts':>6}")
    for r in rows:
        print(f"{r[0]:48} {r[1]:>4} {r[2]:>10.0f} {r[3]:>8.2f} {r[4]:>8.2f} {r[5]:>10.0f} {r[6]:>8.2f} {r[7]:>8.2f} "
              f"{r[8]:>8.2f} {r[9]:>6}")
    print(f"\nserver peak RSS: {rss:.0f} MB; deals: {args.deals:,}; {args.seconds}s per run; "
          f"API/SQL is the ratio of p50 latencies")


if __name__ == "__main__":
    main()
