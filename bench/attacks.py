#!/usr/bin/env python3
"""The hostile-client attacks of the hardening issue, at full size, against a
release build: one PASS/FAIL line per attack.

One command (from the repository root):

    python3 bench/attacks.py                            # 200,000 deals on PostgreSQL
    python3 bench/attacks.py --db sqlite --deals 50000
    python3 bench/attacks.py --only nesting --only auth --no-build

It builds the release binary (`cargo build --release`; a clean release build
takes about 6 minutes), creates a fresh database (PostgreSQL: the database
`salesops_attacks` on --pg, dropped first; SQLite: a temporary file), seeds
it with `salesops seed --deals N`, starts `salesops serve` on a free loopback
port with the default limits (no webhook allow-list, no /metrics token, the
webhook worker off so nothing is ever delivered) and samples the server's RSS
(/proc/PID/status VmRSS) every 100 ms for the whole run.

Each attack runs at the size the issue reported it with, while a legitimate
reader (a VIEWER sending `deal(id)` in a loop) runs beside it. An attack
PASSes when
  * the attack got the expected refusal (or, for the money attack, every
    metric still answers),
  * the reader's p99 stayed under 1 s and none of its requests failed,
  * the server process is alive and /healthz answers 200 within 1 s after it.
A final line checks the peak RSS of the whole run against 300 MB. The exit
status is 1 when anything FAILed. If an attack kills the server, it is
restarted on the same database so the remaining attacks still run.

All traffic goes to 127.0.0.1 only. The scaled versions of these attacks run
in the test suite on both databases (tests/api/hostile.rs and friends); this
script is the full-size rerun. Needs Python 3.11 (standard library only) and,
for PostgreSQL, psql.
"""
import argparse
import base64
import datetime as dt
import hashlib
import hmac
import http.client
import itertools
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "salesops")
SECRET = "attacks-secret-0123456789abcdef0123456789"
PG_DB = "salesops_attacks"
RSS_LIMIT_MB = 300
READER_P99_LIMIT_S = 1.0
READ = "query($id: ID!) { deal(id: $id) { id name amount } }"


def sh(cmd, env=None, check=True):
    res = subprocess.run(cmd, env=env, check=False, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if check and res.returncode != 0:
        sys.exit(f"command failed ({res.returncode}): {' '.join(cmd)}\n{res.stdout}")
    return res.stdout


def psql(url, sql):
    return sh(["psql", url, "-AtX", "-v", "ON_ERROR_STOP=1", "-c", sql]).strip()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(header, claims, secret=SECRET):
    """An HS256 JWT with exactly these header and claims."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    sig = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(sig)}"


def codes(body):
    """extensions.code of every error of a parsed GraphQL response."""
    if not isinstance(body, dict):
        return []
    return [(e.get("extensions") or {}).get("code") for e in body.get("errors") or []]


def only(body, code):
    """The response was refused with `code` and nothing else."""
    got = codes(body)
    return bool(got) and all(c == code for c in got)


def pct(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))]


class Http:
    """One HTTP exchange per connection (thread-safe, nothing shared)."""

    def __init__(self, port):
        self.port = port

    def request(self, method, path, body=None, headers=None, timeout=120, limit=None):
        """(status, body bytes, seconds). `limit` stops reading past that many bytes."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        started = time.monotonic()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            res = conn.getresponse()
            data = res.read(limit + 1) if limit else res.read()
            return res.status, data, time.monotonic() - started
        finally:
            conn.close()

    def gql(self, token, query, variables=None, operation=None, get=False, timeout=120, limit=None, raw=None):
        """(status, parsed body or None, raw bytes, seconds)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if get:
            params = {"query": query}
            if variables is not None:
                params["variables"] = json.dumps(variables)
            if operation:
                params["operationName"] = operation
            path = "/graphql?" + urllib.parse.urlencode(params)
            status, data, secs = self.request("GET", path, headers=headers, timeout=timeout, limit=limit)
        else:
            headers["Content-Type"] = "application/json"
            if raw is None:
                payload = {"query": query, "variables": variables or {}}
                if operation:
                    payload["operationName"] = operation
                raw = json.dumps(payload).encode()
            status, data, secs = self.request("POST", "/graphql", body=raw, headers=headers, timeout=timeout, limit=limit)
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = None
        return status, parsed, data, secs

    def ok(self, token, query, variables=None):
        """The data of a request that must succeed."""
        status, body, data, _ = self.gql(token, query, variables)
        if status != 200 or body is None or body.get("errors"):
            raise RuntimeError(f"{query[:80]!r} answered {status}: {data[:500]!r}")
        return body["data"]


class RssSampler(threading.Thread):
    """VmRSS of the server every 100 ms: the peak of the run and of a window."""

    def __init__(self):
        super().__init__(daemon=True)
        self.pid = None
        self.peak = 0.0
        self.window_peak = 0.0
        self.current = 0.0
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.wait(0.1):
            pid = self.pid
            if pid is None:
                continue
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            mb = int(line.split()[1]) / 1024
                            self.current = mb
                            self.peak = max(self.peak, mb)
                            self.window_peak = max(self.window_peak, mb)
                            break
            except OSError:
                pass

    def reset_window(self):
        self.window_peak = self.current


class Server:
    """A release build serving a freshly seeded database."""

    def __init__(self, args):
        self.args = args
        self.port = args.port or free_port()
        self.tmp = tempfile.mkdtemp(prefix="salesops-attacks-")
        if args.db == "postgres":
            self.db_url = f"{args.pg}/{PG_DB}"
        else:
            self.db_url = f"sqlite://{os.path.join(self.tmp, 'attacks.db')}?mode=rwc"
        self.env = dict(os.environ, SALESOPS_DATABASE_URL=self.db_url, SALESOPS_JWT_SECRET=SECRET,
                        SALESOPS_BIND=f"127.0.0.1:{self.port}", RUST_LOG="warn",
                        # Nothing is ever delivered: a webhook the SSRF attack
                        # managed to create must not send traffic anywhere.
                        SALESOPS_WEBHOOK_WORKER="false")
        for k in ("SALESOPS_WEBHOOK_ALLOW", "SALESOPS_WEBHOOK_ALLOWLIST", "SALESOPS_METRICS_TOKEN"):
            self.env.pop(k, None)
        self.log = os.path.join(self.tmp, "server.log")
        self.proc = None
        self.http = Http(self.port)
        self.restarts = 0

    def seed(self):
        if self.args.db == "postgres":
            admin = f"{self.args.pg}/postgres"
            psql(admin, f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
            psql(admin, f"CREATE DATABASE {PG_DB}")
        print(f"== seeding {self.args.deals:,} deals ({self.args.db})", flush=True)
        started = time.time()
        print("   " + sh([BIN, "seed", "--deals", str(self.args.deals)], env=self.env).strip().splitlines()[-1])
        if self.args.db == "postgres":
            psql(self.db_url, "VACUUM ANALYZE")
        print(f"   seed wall time: {time.time() - started:.1f}s", flush=True)

    def start(self):
        log = open(self.log, "a")
        self.proc = subprocess.Popen([BIN, "serve"], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"the server exited at start ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                if self.http.request("GET", "/readyz", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        sys.exit(f"the server did not become ready:\n{self.log_tail()}")

    def alive(self):
        return self.proc.poll() is None

    def log_tail(self, lines=5):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-lines:]).strip()
        except OSError:
            return ""

    def token(self, role, rep_id=None):
        cmd = [BIN, "token", "--role", role, "--sub", f"attacks-{role.lower()}", "--ttl", "4h"]
        if rep_id is not None:
            cmd += ["--rep-id", str(rep_id)]
        return sh(cmd, env=self.env).strip()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Reader(threading.Thread):
    """The legitimate user beside an attack: `deal(id)` as VIEWER in a loop."""

    def __init__(self, http_, token, deal_id):
        super().__init__(daemon=True)
        self.http, self.token, self.deal_id = http_, token, deal_id
        self.latencies = []
        self.failures = []
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.is_set():
            started = time.monotonic()
            try:
                status, body, data, _ = self.http.gql(self.token, READ, {"id": self.deal_id}, timeout=30)
                good = status == 200 and body is not None and not body.get("errors") \
                    and (body.get("data") or {}).get("deal", {}).get("id") == self.deal_id
                if not good:
                    self.failures.append(f"HTTP {status} {data[:200]!r}")
            except OSError as e:
                self.failures.append(repr(e))
            self.latencies.append(time.monotonic() - started)
            self.stopped.wait(0.02)

    def stop(self):
        self.stopped.set()
        self.join(timeout=60)


class Ctx:
    """What the attacks share: the server, tokens and ids of the seeded data."""

    def __init__(self, server, rss):
        self.server, self.http, self.rss, self.db = server, server.http, rss, server.args.db
        s = server
        self.admin = s.token("ADMIN")
        self.ops = s.token("OPS")
        self.viewer = s.token("VIEWER")
        self.integration = s.token("INTEGRATION")
        reps = self.http.ok(self.admin, "{ reps(active: true, first: 500) { id email manager { id } territory { id } "
                                        "quotas { id } } }")["reps"]
        # A seller with a manager, in a territory it shares with other reps.
        by_territory = {}
        for r in reps:
            if r["territory"]:
                by_territory.setdefault(r["territory"]["id"], []).append(r)
        rep = next(r for r in reps if r["manager"] and r["quotas"] and r["territory"]
                   and len(by_territory[r["territory"]["id"]]) > 1)
        other = next(r for r in reps if r["quotas"] and r["id"] != rep["id"]
                     and (r["manager"] or {}).get("id") != rep["manager"]["id"])
        self.rep_id, self.manager_id, self.other_rep_id = rep["id"], rep["manager"]["id"], other["id"]
        self.territory_id = rep["territory"]["id"]
        self.emails = {r["id"]: r["email"] for r in reps}
        self.rep = s.token("REP", rep["id"])
        self.manager = s.token("MANAGER", rep["manager"]["id"])
        self.other_rep = s.token("REP", other["id"])
        self.deal_id = self.http.ok(self.viewer, "{ deals(first: 1) { nodes { id } } }")["deals"]["nodes"][0]["id"]
        stages = self.http.ok(self.admin, "{ stages { id kind position probability } }")["stages"]
        self.won_stage = next(st["id"] for st in stages if st["kind"] == "WON")
        self.late_stage = max((st for st in stages if st["kind"] == "OPEN"), key=lambda st: st["position"])["id"]
        today = dt.date.today()
        self.year = str(today.year)
        q = (today.month - 1) // 3 + 1
        self.quarter = f"{today.year}-Q{q}"
        self.prev_quarter = f"{today.year}-Q{q - 1}" if q > 1 else f"{today.year - 1}-Q4"
        self.quarter_end = dt.date(today.year + (q == 4), (q % 4) * 3 + 1, 1) - dt.timedelta(days=1)

    def expect_code(self, what, code, token, query, variables=None, **kw):
        """None when the request was refused with `code`, else what went wrong."""
        status, body, data, secs = self.http.gql(token, query, variables, **kw)
        got = codes(body)
        if status >= 500 or code not in got or any(c != code for c in got):
            return f"{what}: HTTP {status} codes {got} {data[:160]!r}"
        return None


def heavy_doc(ctx, n, period=None):
    """n metric fields (funnel and winRates, alternately) over a year."""
    period = period or ctx.year
    fields = []
    for i in range(n):
        if i % 2 == 0:
            fields.append(f'f{i}: funnel(period: "{period}") {{ stage {{ id }} entered }}')
        else:
            fields.append(f'w{i}: winRates(period: "{period}", groupBy: REP) {{ winRate wonAmount }}')
    return "{ " + " ".join(fields) + " }"


# ---------------------------------------------------------------- attacks


def attack_nesting(ctx):
    """Value literals nested 1,700 and 5,000 levels (lists, objects, a
    variable default), over POST and GET; deep JSON variables."""
    problems, sent, worst = [], 0, 0.0
    for n in (1_700, 5_000):
        docs = {
            f"list {n}": "{ me(x: " + "[" * n + "1" + "]" * n + ") { role } }",
            f"object {n}": "{ me(x: " + "{a: " * n + "1" + "}" * n + ") { role } }",
            f"default {n}": "query($v: Int = " + "[" * n + "1" + "]" * n + ") { me { role } }",
        }
        for name, doc in docs.items():
            for get in (False, True):
                status, body, data, secs = ctx.http.gql(ctx.viewer, doc, get=get, timeout=30)
                sent += 1
                worst = max(worst, secs)
                if not only(body, "QUERY_TOO_COMPLEX"):
                    problems.append(f"{name} {'GET' if get else 'POST'}: HTTP {status} {data[:120]!r}")
                if not ctx.server.alive():
                    return False, f"the server died on {name} ({'GET' if get else 'POST'}): {ctx.server.log_tail(2)}"
    # Variables nested 5,000 levels: refused by the JSON reader.
    raw = ('{"query":"query($v: Int) { me { role } }","variables":{"v":' + "[" * 5000 + "1" + "]" * 5000 + "}}").encode()
    status, body, data, secs = ctx.http.gql(ctx.viewer, None, raw=raw, timeout=30)
    sent += 1
    worst = max(worst, secs)
    if status != 400:
        problems.append(f"deep variables: HTTP {status} {data[:120]!r}")
    if problems:
        return False, "; ".join(problems)
    return True, f"{sent} documents refused (QUERY_TOO_COMPLEX; deep variables HTTP 400), slowest {worst * 1000:.0f} ms"


def fragment_doc(levels):
    doc = f"query {{ ...F{levels} }}\nfragment F0 on Query {{ me {{ role }} }}\n"
    for i in range(1, levels + 1):
        doc += f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}\n"
    return doc


def attack_fragments(ctx):
    """`...F23` and `...F31` (each fragment spreading the one below twice)
    from two concurrent attackers, with /healthz probed meanwhile."""
    results, health = [], []
    done = threading.Event()

    def attacker(levels):
        doc = fragment_doc(levels)
        # Over and over for 1.5 s (at least 5 times) per depth.
        until, sent = time.monotonic() + 1.5, 0
        while sent < 5 or time.monotonic() < until:
            status, body, data, secs = ctx.http.gql(ctx.viewer, doc, timeout=120)
            results.append((levels, status, codes(body), secs, data[:160]))
            sent += 1
            time.sleep(0.02)
            if not ctx.server.alive():
                return

    def prober():
        while not done.is_set():
            try:
                status, _, secs = ctx.http.request("GET", "/healthz", timeout=30)
            except OSError as e:
                status, secs = repr(e), 30.0
            health.append((status, secs))
            time.sleep(0.02)

    probe = threading.Thread(target=prober, daemon=True)
    probe.start()
    for levels in (23, 31):
        threads = [threading.Thread(target=attacker, args=(levels,)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    done.set()
    probe.join()
    problems = [f"F{lv}: HTTP {st} {c} {d!r}" for lv, st, c, s, d in results if not c or any(x != "QUERY_TOO_COMPLEX" for x in c)]
    slow = max(s for *_, s, _ in results)
    if slow >= 0.1:
        problems.append(f"slowest refusal {slow * 1000:.0f} ms (limit 100 ms)")
    worst_health = max((s for _, s in health), default=0.0)
    bad_health = [st for st, _ in health if st != 200]
    if worst_health >= 1.0 or bad_health:
        problems.append(f"/healthz slowest {worst_health * 1000:.0f} ms, failures {bad_health[:3]}")
    detail = (f"{len(results)} requests (F23, F31: {len(fragment_doc(23))} B, {len(fragment_doc(31))} B) refused, slowest {slow * 1000:.0f} ms; "
              f"/healthz {len(health)} probes, slowest {worst_health * 1000:.0f} ms")
    return (not problems), detail + ("; " + "; ".join(problems) if problems else "")


def pg_active_tags(ctx):
    """Request tags of the statements running now on the attacked database."""
    out = psql(f"{ctx.server.args.pg}/postgres",
               f"SELECT substring(query from '^/\\*rq:[0-9a-f]+\\*/') FROM pg_stat_activity "
               f"WHERE datname = '{PG_DB}' AND state = 'active' AND query LIKE '/*rq:%'")
    return {line for line in out.splitlines() if line}


def abandoned_request(ctx, doc):
    """Sends a heavy request on a raw socket and closes it after 200 ms; the
    seconds until none of its statements run (None: never seen running)."""
    body = json.dumps({"query": doc}).encode()
    head = (f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ctx.viewer}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    sock = socket.create_connection(("127.0.0.1", ctx.server.port))
    sent_at = time.monotonic()
    sock.sendall(head + body)
    seen = set()
    while time.monotonic() - sent_at < 0.2:
        seen |= pg_active_tags(ctx)
        time.sleep(0.02)
    # Only a statement still running at the close is the abandoned request's
    # (the reader's statements take milliseconds).
    seen &= pg_active_tags(ctx)
    sock.close()
    closed_at = time.monotonic()
    if not seen:
        return None, 0.0
    while time.monotonic() - closed_at < 10:
        if not (pg_active_tags(ctx) & seen):
            return True, time.monotonic() - closed_at
        time.sleep(0.05)
    return False, time.monotonic() - closed_at


def attack_aliases(ctx):
    """50 funnel aliases; then four attackers sending the largest accepted
    metric document for 20 s; then a client that disconnects mid-request."""
    problems = []
    fifty = "{ " + " ".join(f'f{i}: funnel(period: "{ctx.year}") {{ stage {{ id }} }}' for i in range(50)) + " }"
    p = ctx.expect_code("50 funnel aliases", "QUERY_TOO_COMPLEX", ctx.viewer, fifty)
    if p:
        problems.append(p)
    # The largest accepted document: as many metric aliases as the cost limit allows.
    largest = None
    for n in range(12, 0, -1):
        status, body, data, secs = ctx.http.gql(ctx.viewer, heavy_doc(ctx, n), timeout=60)
        if "QUERY_TOO_COMPLEX" not in codes(body):
            largest = n
            single = secs
            break
    if largest is None:
        return False, "no metric document was accepted at all"
    doc = heavy_doc(ctx, largest)
    stats = {"ok": 0, "codes": {}}
    lock = threading.Lock()
    until = time.monotonic() + 20

    def attacker():
        while time.monotonic() < until:
            try:
                status, body, data, secs = ctx.http.gql(ctx.viewer, doc, timeout=120)
                got = codes(body) or (["OK"] if status == 200 else [f"HTTP {status}"])
            except OSError as e:
                got = [repr(e)]
            with lock:
                for c in set(got):
                    stats["codes"][c] = stats["codes"].get(c, 0) + 1

    threads = [threading.Thread(target=attacker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    answered = sum(stats["codes"].values())
    # Queued work may hit the request deadline (QUERY_TOO_COMPLEX); nothing else.
    unexpected = {c: n for c, n in stats["codes"].items() if c not in ("OK", "QUERY_TOO_COMPLEX")}
    if unexpected:
        problems.append(f"attackers got {unexpected}")
    detail = (f"50 aliases refused; {largest} metric aliases accepted (alone {single:.2f} s); "
              f"4 attackers x 20 s: {answered} answers {stats['codes']}")
    if ctx.db == "postgres":
        # Two years so the request is still running when the client leaves.
        gone, secs = abandoned_request(ctx, heavy_doc(ctx, largest, f"{int(ctx.year) - 1}-01-01..{int(ctx.year) + 1}-01-01"))
        if gone is None:
            problems.append("the abandoned request was never seen running (finished within 200 ms?)")
        elif not gone or secs >= 2.0:
            problems.append(f"the abandoned request's SQL still ran {secs:.1f} s after the client left")
        else:
            detail += f"; abandoned request's SQL gone {secs * 1000:.0f} ms after the disconnect"
    else:
        detail += "; disconnect check skipped (pg_stat_activity: PostgreSQL only)"
    return (not problems), detail + ("; " + "; ".join(problems) if problems else "")


def money_queries(ctx):
    y, q = ctx.year, ctx.quarter
    queries = {
        "winRates": f'{{ winRates(period: "{y}", groupBy: REP) {{ won lost wonAmount lostAmount winRate amountWinRate }} }}',
        "quotaAttainment": f'{{ quotaAttainment(period: "{y}") {{ totalClosedWon totalQuota attainment quotaAchievementRate '
                           f'rows {{ closedWon quota gapToQuota openPipeline weightedPipeline pipelineCoverage }} }} }}',
        "pipelineSummary": f'{{ pipelineSummary(period: "{y}", groupBy: REP) {{ openDeals pipelineValue weightedPipeline '
                           f'avgDealSize winRate avgSalesCycleDays }} }}',
        "funnel": f'{{ funnel(period: "{y}") {{ entered advanced lostHere conversionRate avgDaysInStage }} }}',
        "repPerformance": f'{{ repPerformance(period: "{q}") {{ current previous change currentAttainment quadrant }} }}',
        "commissions": f'{{ commissions(period: "{y}") {{ closedWon quota attainment earned qualified }} }}',
        "metricSeries amounts": f'{{ a: metricSeries(metric: CLOSED_WON_AMOUNT, period: "{y}", granularity: MONTH, groupBy: REP) '
                                f'{{ value change }} b: metricSeries(metric: AVG_DEAL_SIZE, period: "{y}", granularity: MONTH) '
                                f'{{ value change }} }}',
        "metricSeries pipeline": f'{{ a: metricSeries(metric: NEW_PIPELINE, period: "{y}", granularity: QUARTER, groupBy: MANAGER) '
                                 f'{{ value change }} b: metricSeries(metric: WIN_RATE, period: "{y}", granularity: MONTH) '
                                 f'{{ value change }} }}',
        "dataHealth": "{ dataHealth { openDealsNotUpdated openDealsPastExpectedClose openDealsWithoutExpectedClose "
                      "inactiveRepsOwningOpenDeals repsWithoutTerritory issues(first: 20) { kind } } }",
    }
    for m in ("STAGE_WEIGHTED", "SALES_CYCLE", "HISTORICAL", "REP_SUBMITTED"):
        queries[f"forecast {m}"] = (f'{{ forecast(period: "{q}", method: {m}, groupBy: REP) {{ amount closedWon projected '
                                    f'low high rows {{ amount closedWon projected dealCount }} }} }}')
    queries["forecastAccuracy"] = (f'{{ forecastAccuracy(periods: ["{ctx.prev_quarter}", "{q}"], '
                                   f'methods: [STAGE_WEIGHTED, SALES_CYCLE, HISTORICAL, REP_SUBMITTED]) '
                                   f'{{ forecast actual accuracy }} }}')
    return queries


def money_inputs(ctx, call, amount):
    """1,000 won deals of the attacking REP (closed now): 10,000 of them at
    the old maximum overflowed every 64-bit sum of closed-won."""
    return [{"externalId": f"attack-money-{call}-{i}", "name": f"Attack {call}-{i}", "amount": amount,
             "ownerId": ctx.rep_id, "stageId": ctx.won_stage} for i in range(1000)]


def money_open_deal(ctx, amount):
    """One open deal at the amount, closing this quarter: its weighted amount
    (amount x probability) is what overflowed the pipeline sums."""
    return {"externalId": "attack-money-open", "name": "Attack open", "amount": amount, "ownerId": ctx.rep_id,
            "stageId": ctx.late_stage, "expectedCloseDate": ctx.quarter_end.isoformat()}


BULK = "mutation($in: [DealInput!]!) { bulkUpsertDeals(inputs: $in) { created updated unchanged errors { index code message } } }"


def attack_money(ctx):
    """A REP writes 10,000 won deals at the largest accepted amount in 10
    bulk calls (and one open deal at it, the probe); then every metric and
    forecast answers for ADMIN, the REP's manager and another REP."""
    # The largest amount accepted: the old maximum first, then the documented one.
    amount = None
    tried = []
    for candidate in ("9999999999999.99", "1000000000000.00", "999999999999.99", "99999999999.99"):
        probe = [money_open_deal(ctx, candidate)]
        status, body, data, _ = ctx.http.gql(ctx.rep, BULK, {"in": probe}, timeout=120)
        res = ((body or {}).get("data") or {}).get("bulkUpsertDeals")
        if res and res["created"] + res["updated"] + res["unchanged"] == 1:
            amount = candidate
            break
        tried.append(f"{candidate}: {codes(body) or [e['code'] for e in (res or {}).get('errors', [])]}")
        if not (only(body, "BAD_USER_INPUT") or (res and {e["code"] for e in res["errors"]} == {"BAD_USER_INPUT"})):
            return False, f"probing {candidate} answered HTTP {status} {data[:200]!r}"
    if amount is None:
        return False, f"no amount accepted: {tried}"
    started = time.monotonic()
    written = 0
    for call in range(10):
        status, body, data, _ = ctx.http.gql(ctx.rep, BULK, {"in": money_inputs(ctx, call, amount)}, timeout=300)
        res = ((body or {}).get("data") or {}).get("bulkUpsertDeals")
        if not res or res["errors"]:
            return False, f"bulk call {call} at {amount}: HTTP {status} {data[:300]!r}"
        written += res["created"] + res["updated"] + res["unchanged"]
    write_secs = time.monotonic() - started
    queries = money_queries(ctx)
    failures, forbidden, lock = [], [], threading.Lock()
    timings = []

    def role(name, token):
        for qname, doc in queries.items():
            status, body, data, secs = ctx.http.gql(token, doc, timeout=120)
            with lock:
                timings.append(secs)
                got = codes(body)
                # A field the role table refuses the role is not poisoned data.
                if status == 200 and got and all(c == "FORBIDDEN" for c in got):
                    forbidden.append(f"{name} {qname}")
                elif status != 200 or body is None or got:
                    failures.append(f"{name} {qname}: HTTP {status} {got} {data[:120]!r}")

    threads = [threading.Thread(target=role, args=a) for a in
               (("ADMIN", ctx.admin), ("MANAGER", ctx.manager), ("other REP", ctx.other_rep))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    detail = (f"{written:,} won deals and 1 open at {amount} written in {write_secs:.1f} s; {len(timings)} metric/forecast requests "
              f"(3 roles x {len(queries)}), slowest {max(timings):.1f} s"
              + (f", FORBIDDEN by role: {', '.join(forbidden)}" if forbidden else ""))
    if failures:
        return False, f"{detail}; {len(failures)} failed: " + "; ".join(failures[:4])
    return True, detail + ", all answered"


def attack_amplification(ctx):
    """19,600 weekly buckets by rep; nested lists without paging; 600
    distinct 16 KB documents."""
    problems = []
    limit = 5 * 1024 * 1024
    doc = ('{ metricSeries(metric: CLOSED_WON_AMOUNT, period: "1650-01-01..2026-12-31", granularity: WEEK, '
           'groupBy: REP) { bucket start value change key { id label } } }')
    status, body, data, secs = ctx.http.gql(ctx.viewer, doc, timeout=120, limit=limit)
    if len(data) > limit:
        problems.append(f"metricSeries over 19,600 weeks answered more than 5 MB")
    elif status >= 500 or "INTERNAL" in codes(body) or body is None:
        problems.append(f"metricSeries over 19,600 weeks: HTTP {status} {data[:160]!r}")
    series = f"19,600-week series: {len(data):,} B in {secs:.1f} s ({codes(body) or 'data'})"
    for what, doc in (
            ("territories x reps x deals", "{ territories(first: 500) { reps { deals(first: 500) { nodes { id name amount } } } } }"),
            ("reps x directReports^3", "{ reps { directReports { directReports { directReports { email } } } } }")):
        p = ctx.expect_code(what, "QUERY_TOO_COMPLEX", ctx.viewer, doc)
        if p:
            problems.append(p)
    # 600 distinct documents of 16 KB: valid queries padded with a comment.
    time.sleep(0.3)
    before = ctx.rss.current
    bad = []

    def sender(offset):
        for i in range(offset, 600, 2):
            pad = f"# {i} " + "x" * (16 * 1024 - 40) + "\n"
            status, body, data, _ = ctx.http.gql(ctx.viewer, pad + "{ me { role } }", timeout=60)
            if status != 200 or not body or body.get("errors"):
                bad.append(f"HTTP {status} {data[:100]!r}")

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(0.3)
    growth = ctx.rss.current - before
    if bad:
        problems.append(f"{len(bad)} padded documents failed: {bad[0]}")
    # An unbounded cache grew 375 MB here; the cache holds at most
    # SALESOPS_DOCUMENT_CACHE_BYTES (1 MB) of text, about 40 MB parsed.
    if growth >= 100:
        problems.append(f"RSS grew {growth:.0f} MB over 600 documents (limit 100 MB)")
    detail = f"{series}; nested lists refused; 600 x 16 KB documents: RSS {before:.0f} -> {ctx.rss.current:.0f} MB ({growth:+.0f} MB)"
    return (not problems), detail + ("; " + "; ".join(problems) if problems else "")


def leaks(node, own_ids):
    """Emails, commission rates or quotas of reps other than `own_ids` in a response."""
    found = []
    if isinstance(node, dict):
        if node.get("id") is not None and node.get("id") not in own_ids:
            for k in ("email", "commissionRate", "quotas"):
                if node.get(k) not in (None, []):
                    found.append(f"rep {node['id']}.{k}")
        for v in node.values():
            found += leaks(v, own_ids)
    elif isinstance(node, list):
        for v in node:
            found += leaks(v, own_ids)
    return found


def attack_scope(ctx):
    """A REP walks to other reps through territory.reps and its manager;
    INTEGRATION reads quotas through reps."""
    problems, seen = [], []
    own = {ctx.rep_id}
    others = {i: e for i, e in ctx.emails.items() if i != ctx.rep_id}
    for what, doc in (
            ("territory.reps", f'{{ territory(id: "{ctx.territory_id}") {{ reps {{ id email commissionRate quotas {{ amount }} }} }} }}'),
            ("me.rep.manager", "{ me { rep { id manager { id email directReports { id email } } } } }")):
        status, body, data, _ = ctx.http.gql(ctx.rep, doc)
        text = data.decode(errors="replace")
        got = codes(body)
        found = leaks((body or {}).get("data"), own) + [f"email of rep {i}" for i, e in others.items() if e in text]
        if found:
            problems.append(f"{what} leaked {sorted(set(found))[:4]}")
        if status >= 500 or any(c != "FORBIDDEN" for c in got):
            problems.append(f"{what}: HTTP {status} codes {got}")
        seen.append(f"{what}: {len(got)} FORBIDDEN")
    status, body, data, _ = ctx.http.gql(ctx.integration, "{ reps(first: 50) { id quotas { amount } } }")
    got = codes(body)
    amounts = [q for r in (((body or {}).get("data") or {}).get("reps") or []) if r for q in (r.get("quotas") or [])]
    if "FORBIDDEN" not in got or amounts or any(c != "FORBIDDEN" for c in got):
        problems.append(f"INTEGRATION reps.quotas: HTTP {status} codes {got[:3]} quotas seen {len(amounts)}")
    detail = "no email, commission rate or quota of another rep; " + ", ".join(seen) + "; INTEGRATION quotas FORBIDDEN"
    return (not problems), ("; ".join(problems) if problems else detail)


HUGE = "79228162514264337593543950335"
# Repeated attacks upsert fresh external ids, so concurrent repeats never race.
UNIQUE = itertools.count()


def attack_panics(ctx):
    """Amounts at Decimal::MAX in createDeal, setQuota, a bulk call and a
    filter; asOfOffsetDays at i32::MIN."""
    problems = []
    cases = [
        ("createDeal", ctx.rep, "mutation($a: Decimal!, $o: ID!) { createDeal(input: {name: \"huge\", amount: $a, ownerId: $o}) { id } }",
         {"a": HUGE, "o": ctx.rep_id}),
        ("setQuota", ctx.admin, f'mutation($a: Decimal!) {{ setQuota(repId: "{ctx.rep_id}", period: "{ctx.year}-12", amount: $a) {{ id }} }}',
         {"a": HUGE}),
        ("minAmount filter", ctx.viewer, "query($a: Decimal!) { deals(filter: {minAmount: $a}) { totalCount } }", {"a": HUGE}),
        ("forecastAccuracy offset", ctx.viewer,
         f'{{ forecastAccuracy(periods: ["{ctx.prev_quarter}"], asOfOffsetDays: -2147483648) {{ forecast actual }} }}', None),
    ]
    for what, token, doc, variables in cases:
        status, body, data, _ = ctx.http.gql(token, doc, variables)
        if status not in (200, 400) or not only(body, "BAD_USER_INPUT"):
            problems.append(f"{what}: HTTP {status} {data[:160]!r}")
    # In a bulk call the huge amount fails its own item only.
    n = next(UNIQUE)
    inputs = [{"externalId": f"attack-panic-ok-{n}", "name": "fine", "amount": "10.00", "ownerId": ctx.rep_id},
              {"externalId": f"attack-panic-huge-{n}", "name": "huge", "amount": HUGE, "ownerId": ctx.rep_id}]
    status, body, data, _ = ctx.http.gql(ctx.rep, BULK, {"in": inputs})
    res = ((body or {}).get("data") or {}).get("bulkUpsertDeals")
    per_item = res and [(e["index"], e["code"]) for e in res["errors"]] == [(1, "BAD_USER_INPUT")] \
        and res["created"] + res["updated"] + res["unchanged"] == 1
    if status >= 500 or not (per_item or only(body, "BAD_USER_INPUT")):
        problems.append(f"bulkUpsertDeals: HTTP {status} {data[:160]!r}")
    detail = f"{len(cases) + 1} requests answered BAD_USER_INPUT, none HTTP 500"
    return (not problems), ("; ".join(problems) if problems else detail)


def attack_inputs(ctx):
    """NUL bytes, year-0 dates, huge id lists and search strings, a variable
    type mismatch, a 500 KB bad value."""
    problems = []
    create = "mutation($i: DealInput!) { createDeal(input: $i) { id } }"
    deal = {"name": "ok", "amount": "10.00", "ownerId": ctx.rep_id}
    ids40 = [str(i) for i in range(1, 40_001)]
    ids70 = [str(i) for i in range(1, 70_001)]
    cases = [
        ("NUL in a deal name", ctx.rep, create, {"i": dict(deal, name="a\u0000b")}),
        ("date 0000-01-01", ctx.rep, create, {"i": dict(deal, expectedCloseDate="0000-01-01")}),
        ("horizonStart 0001-01-01", ctx.ops,
         'mutation { createSopPlan(input: {name: "attack", horizonStart: "0001-01-01", horizonMonths: 3}) { id } }', None),
        ("40,000 owner ids", ctx.viewer, "query($o: [ID!]) { deals(filter: {ownerIds: $o}) { totalCount } }", {"o": ids40}),
        ("70,000 stage ids", ctx.viewer, "query($s: [ID!]) { deals(filter: {stageIds: $s}) { totalCount } }", {"s": ids70}),
        ("100 KB search", ctx.viewer, "query($s: String) { deals(filter: {search: $s}) { totalCount } }", {"s": "x" * 100_000}),
        ("variable of the wrong type", ctx.viewer, READ, {"id": {"a": 1}}),
        ("variable declared with the wrong type", ctx.viewer, "query($n: String) { deals(first: $n) { totalCount } }", {"n": "5"}),
    ]
    for what, token, doc, variables in cases:
        status, body, data, _ = ctx.http.gql(token, doc, variables)
        if status >= 500 or not only(body, "BAD_USER_INPUT"):
            problems.append(f"{what}: HTTP {status} {codes(body)} {data[:140]!r}")
    # In a bulk call a bad item either fails alone (the good one written) or
    # fails the whole call as a request error (nothing written).
    for what, bad in (("bulk with a year-0 date", {"expectedCloseDate": "0000-06-30"}),
                      ("bulk with a NUL", {"name": "nul\u0000"})):
        n = next(UNIQUE)
        ok_id = f"attack-input-ok-{n}"
        inputs = [dict(deal, externalId=ok_id), dict(deal, externalId=f"attack-input-bad-{n}", **bad)]
        status, body, data, _ = ctx.http.gql(ctx.rep, BULK, {"in": inputs})
        res = ((body or {}).get("data") or {}).get("bulkUpsertDeals")
        if res is not None:
            fine = [(e["index"], e["code"]) for e in res["errors"]] == [(1, "BAD_USER_INPUT")] \
                and res["created"] + res["updated"] + res["unchanged"] == 1
        else:
            _, found, _, _ = ctx.http.gql(ctx.admin, "query($e: String) { deal(externalId: $e) { id } }", {"e": ok_id})
            written = bool(((found or {}).get("data") or {}).get("deal")) or not only(found, "NOT_FOUND")
            fine = only(body, "BAD_USER_INPUT") and not written
        if status >= 500 or not fine:
            problems.append(f"{what}: HTTP {status} {data[:200]!r}")
    # 500 KB bad values: the message does not echo them.
    echoes = []
    for what, doc, variables in (
            ("period", "query($p: Period!) { winRates(period: $p) { winRate } }", {"p": "x" * 500_000}),
            ("date", "query($d: Date!) { forecast(period: \"2026\", method: STAGE_WEIGHTED, asOf: $d) { amount } }",
             {"d": "9" * 500_000})):
        status, body, data, _ = ctx.http.gql(ctx.viewer, doc, variables)
        longest = max((len(e.get("message", "").encode()) for e in (body or {}).get("errors") or []), default=0)
        echoes.append(longest)
        if status >= 500 or not only(body, "BAD_USER_INPUT") or longest >= 1024:
            problems.append(f"500 KB {what}: HTTP {status} {codes(body)} message {longest:,} B")
    detail = (f"{len(cases) + 4} requests answered BAD_USER_INPUT (bulk: the bad item only or nothing written); "
              f"500 KB values echoed in {max(echoes)} B at most")
    return (not problems), ("; ".join(problems) if problems else detail)


def attack_webhooks(ctx):
    """Webhooks to metadata, loopback, private and encoded-loopback addresses
    (no allow-list configured; the worker is off, so nothing is sent)."""
    problems = []
    doc = "mutation($u: String!) { createWebhook(url: $u, events: [DEAL_CREATED]) { webhook { id } } }"
    urls = ["http://169.254.169.254/", "http://127.0.0.1:9/", "http://10.0.0.1/", "http://2130706433/",
            "http://[::ffff:127.0.0.1]/"]
    for url in urls:
        status, body, data, _ = ctx.http.gql(ctx.admin, doc, {"u": url})
        created = (((body or {}).get("data") or {}).get("createWebhook") or {}).get("webhook")
        if created:
            # Accepted: removed at once so it can never deliver.
            ctx.http.gql(ctx.admin, "mutation($id: ID!) { deleteWebhook(id: $id) }", {"id": created["id"]})
        if not only(body, "BAD_USER_INPUT"):
            problems.append(f"{url}: HTTP {status} {'created' if created else codes(body)}")
    return (not problems), ("; ".join(problems) if problems else f"{len(urls)} destinations refused (BAD_USER_INPUT)")


def attack_metrics(ctx):
    """190 requests whose operation names are 300 KB long; /metrics stays small."""
    problems, lock = [], threading.Lock()

    def sender(offset):
        for i in range(offset, 190, 2):
            name = f"Op{i}_" + "x" * 300_000
            status, body, data, _ = ctx.http.gql(ctx.viewer, f"query {name} {{ me {{ role }} }}", timeout=60)
            if status != 200 or not body or body.get("errors"):
                with lock:
                    problems.append(f"request {i}: HTTP {status} {data[:100]!r}")

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    status, page, secs = ctx.http.request("GET", "/metrics", timeout=30)
    if status != 200 or len(page) >= 1024 * 1024:
        problems.append(f"/metrics: HTTP {status}, {len(page):,} B")
    detail = f"190 x 300 KB operation names; /metrics {len(page):,} B in {secs * 1000:.0f} ms"
    return (not problems), detail + ("; " + "; ".join(problems[:3]) if problems else "")


def attack_auth(ctx):
    """Tokens not yet valid, with an unknown crit header, living a year, or
    naming no rep; /readyz answers quickly."""
    now = int(time.time())
    hs = {"alg": "HS256", "typ": "JWT"}

    def claims(**extra):
        c = {"sub": "mallory", "role": "VIEWER", "iss": "salesops", "aud": "salesops", "iat": now, "exp": now + 600}
        c.update(extra)
        return c

    tokens = [
        ("well-formed", sign(hs, claims()), 200),
        ("nbf in an hour", sign(hs, claims(nbf=now + 3600)), 401),
        ("unknown crit header", sign({"alg": "HS256", "typ": "JWT", "crit": ["exp-v2"], "exp-v2": 1}, claims()), 401),
        ("365-day lifetime", sign(hs, claims(exp=now + 365 * 86_400)), 401),
        ("REP of no rep", sign(hs, claims(role="REP", rep_id=987_654_321)), 401),
    ]
    problems = []
    for what, token, want in tokens:
        status, body, data, _ = ctx.http.gql(token, "{ me { role } }")
        if status != want:
            problems.append(f"{what}: HTTP {status} (want {want})")
    status, _, secs = ctx.http.request("GET", "/readyz", timeout=10)
    if status != 200 or secs >= 1.5:
        problems.append(f"/readyz: HTTP {status} in {secs * 1000:.0f} ms")
    detail = f"4 bad tokens 401 (the well-formed one 200); /readyz {secs * 1000:.0f} ms"
    return (not problems), ("; ".join(problems) if problems else detail)


# (name, attack, repeated): a repeated attack is cheap, so it is sent over
# and over from two threads for REPEAT_SECONDS to give the reader beside it
# something to measure.
ATTACKS = [
    ("nesting", attack_nesting, True),
    ("fragments", attack_fragments, False),
    ("aliases", attack_aliases, False),
    ("money", attack_money, False),
    ("amplification", attack_amplification, False),
    ("scope", attack_scope, True),
    ("panics", attack_panics, True),
    ("inputs", attack_inputs, True),
    ("webhooks", attack_webhooks, True),
    ("metrics", attack_metrics, False),
    ("auth", attack_auth, True),
]
REPEAT_SECONDS = 3.0


def repeated(ctx, fn):
    """Runs `fn` from two threads until REPEAT_SECONDS passed: the first
    failure, else the first detail with the count."""
    results, lock = [], threading.Lock()
    until = time.monotonic() + REPEAT_SECONDS

    def loop():
        while True:
            try:
                r = fn(ctx)
            except Exception as e:
                r = (False, f"{type(e).__name__}: {e}"[:400])
            with lock:
                results.append(r)
            if not r[0] or time.monotonic() >= until or not ctx.server.alive():
                return

    threads = [threading.Thread(target=loop) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failed = [r for r in results if not r[0]]
    if failed:
        return False, failed[0][1]
    return True, f"{results[0][1]} (x{len(results)} from 2 threads)"


def run(ctx, name, fn, repeat):
    """One attack with the reader beside it: (passed, line)."""
    server = ctx.server
    ctx.rss.reset_window()
    reader = Reader(ctx.http, ctx.viewer, ctx.deal_id)
    reader.start()
    started = time.monotonic()
    try:
        ok, detail = repeated(ctx, fn) if repeat else fn(ctx)
    except Exception as e:  # a broken expectation is a FAIL, not a crash of the script
        ok, detail = False, f"{type(e).__name__}: {e}"[:400]
    reader.stop()
    took = time.monotonic() - started
    problems = [] if ok else ["attack not refused as expected"]
    lat = reader.latencies
    p50, p99 = pct(lat, 0.5), pct(lat, 0.99)
    if reader.failures:
        problems.append(f"{len(reader.failures)} reader requests failed ({reader.failures[0][:120]})")
    if not lat or p99 >= READER_P99_LIMIT_S:
        problems.append(f"reader p99 {p99 * 1000:.0f} ms >= {READER_P99_LIMIT_S * 1000:.0f} ms")
    if not server.alive():
        problems.append(f"the server died (exit {server.proc.returncode}): {server.log_tail(2)[:300]}")
        server.restarts += 1
        server.start()
    else:
        try:
            status, _, secs = ctx.http.request("GET", "/healthz", timeout=5)
        except OSError as e:
            status, secs = repr(e), 5.0
        if status != 200 or secs >= 1.0:
            problems.append(f"/healthz after the attack: {status} in {secs * 1000:.0f} ms")
    line = (f"{'PASS' if not problems else 'FAIL'} {name}: {detail} | reader {len(lat)} reads p50 {p50 * 1000:.0f} ms "
            f"p99 {p99 * 1000:.0f} ms | RSS peak {ctx.rss.window_peak:.0f} MB | {took:.1f} s")
    if problems:
        line += " | " + "; ".join(problems)
    return not problems, line


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--deals", type=int, default=200_000)
    ap.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    ap.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432", help="PostgreSQL server (no database)")
    ap.add_argument("--only", action="append", help="run only this attack (repeatable): "
                                                    + ", ".join(a[0] for a in ATTACKS))
    ap.add_argument("--port", type=int, default=0, help="port to serve on (default: a free one)")
    ap.add_argument("--no-build", action="store_true", help="use the existing binary, do not build")
    ap.add_argument("--binary", help="the salesops binary to attack (implies --no-build; default target/release/salesops)")
    args = ap.parse_args()
    names = [a[0] for a in ATTACKS]
    unknown = set(args.only or []) - set(names)
    if unknown:
        sys.exit(f"unknown attack(s) {sorted(unknown)}: choose from {', '.join(names)}")
    began = time.monotonic()
    if args.binary:
        global BIN
        BIN = os.path.abspath(args.binary)
    elif not args.no_build:
        print("== building the release binary (cargo build --release; a clean build takes about 6 minutes)", flush=True)
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "api"], cwd=ROOT, check=True)
    server = Server(args)
    server.seed()
    rss = RssSampler()
    rss.start()
    server.start()
    rss.pid = server.proc.pid
    results = []
    try:
        ctx = Ctx(server, rss)
        print(f"== attacking 127.0.0.1:{server.port} (reader: VIEWER deal(id: {ctx.deal_id}); "
              f"REP {ctx.rep_id}, its MANAGER {ctx.manager_id}, other REP {ctx.other_rep_id})", flush=True)
        for name, fn, repeat in ATTACKS:
            if args.only and name not in args.only:
                continue
            passed, line = run(ctx, name, fn, repeat)
            rss.pid = server.proc.pid
            results.append(passed)
            print(line, flush=True)
    finally:
        server.stop()
        rss.stopped.set()
        if args.db == "sqlite":
            shutil.rmtree(server.tmp, ignore_errors=True)
    rss_ok = rss.peak < RSS_LIMIT_MB
    results.append(rss_ok)
    print(f"{'PASS' if rss_ok else 'FAIL'} rss: peak {rss.peak:.0f} MB over the whole run (limit {RSS_LIMIT_MB} MB)")
    failed = results.count(False)
    print(f"== {len(results) - failed} passed, {failed} failed ({args.db}, {args.deals:,} deals, "
          f"{time.monotonic() - began:.0f} s{f', server restarted {server.restarts} times' if server.restarts else ''})")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
