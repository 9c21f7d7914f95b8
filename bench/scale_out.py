#!/usr/bin/env python3
"""Scale-out, shown: a PostgreSQL primary and a streaming replica, two API
processes each with its webhook worker, the mix through both, read-your-writes
checked after every mutation, and reads under replica lag.

    python3 bench/scale_out.py                       # 100,000 deals, 8 clients, 30 s of mix
    python3 bench/scale_out.py --deals 20000 --seconds 10 --no-build

What it does (everything on 127.0.0.1, in a temporary directory removed at
exit; the clusters are stopped whatever happens):

1. initdb a primary on --primary-port (5441) with wal_level=replica and a
   replication role trusted from 127.0.0.1; pg_basebackup -R -X stream a
   standby on --replica-port (5442); `salesops migrate` and `salesops seed
   --deals N` on the primary (streamed to the standby).
2. Starts a webhook receiver (counts each event id it gets), two `salesops
   serve` processes with SALESOPS_DATABASE_URL=primary,
   SALESOPS_READ_DATABASE_URL=replica, SALESOPS_READ_MAX_LAG_MS (--max-lag-ms)
   and the webhook worker on, and subscribes the receiver to deal events.
3. The mix (--clients threads for --seconds): point reads, deal pages and
   metrics, and deal updates, each client alternating between the APIs.
   After every update the client reads the deal back at once three ways:
   through the OTHER API with the Salesops-Read-After header the mutation
   answered, and through the SAME API without it (both must see the write:
   RYW violations), and through the other API without the header (may be
   stale within the lag bound: counted, not a violation).
4. Lag: replay is paused on the standby (pg_wal_replay_pause()) while a
   writer keeps updating a probe deal and readers read it without headers
   through both APIs. Shows when reads fall back to the primary (the
   replica's lag past --max-lag-ms), that no read is staler than the bound,
   and when reads return to the replica after pg_wal_replay_resume().
5. Waits for the outbox to drain and checks the receiver got every event
   exactly once although two workers share it.

Prints requests/s per API, the share of reads the replica served (from each
API's /metrics), RYW violations, fallback timings and webhook counts; exits 1
when a check fails.
"""
import argparse
import glob
import http.client
import http.server
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "salesops")
SECRET = "scale-out-secret-0123456789abcdef0123"
DB = "scale_bench"


def sh(cmd, env=None, check=True, user=None):
    if user:
        cmd = ["runuser", "-u", user, "--"] + cmd
    res = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if check and res.returncode != 0:
        raise SystemExit(f"command failed ({res.returncode}): {' '.join(cmd)}\n{res.stdout}")
    return res.stdout


def pg_bin():
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]))
    if not dirs:
        raise SystemExit("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
    return dirs[-1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A PostgreSQL cluster in a directory, run as the postgres OS user when
    started as root (initdb refuses root)."""

    def __init__(self, bindir, datadir, port, sockdir):
        self.bindir, self.datadir, self.port, self.sockdir = bindir, datadir, port, sockdir
        self.user = "postgres" if os.geteuid() == 0 else None
        self.started = False

    def run(self, tool, *args):
        return sh([os.path.join(self.bindir, tool), *args], user=self.user)

    def url(self, db="postgres"):
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def start(self):
        self.run("pg_ctl", "-D", self.datadir, "-l", self.datadir + ".log", "-w", "-t", "120",
                 "-o", f"-p {self.port} -k {self.sockdir}", "start")
        self.started = True

    def stop(self):
        if self.started:
            self.run("pg_ctl", "-D", self.datadir, "-m", "fast", "-w", "stop")
            self.started = False

    def sql(self, sql, db="postgres"):
        return sh([os.path.join(self.bindir, "psql"), self.url(db), "-AtX", "-v", "ON_ERROR_STOP=1",
                   "-c", sql]).strip()


class Receiver:
    """A webhook receiver: answers 200 and counts each event id."""

    def __init__(self):
        self.lock = threading.Lock()
        self.events = {}
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                self.rfile.read(n)
                event = self.headers.get("X-Salesops-Event-Id", "")
                with receiver.lock:
                    receiver.events[event] = receiver.events.get(event, 0) + 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def counts(self):
        with self.lock:
            return dict(self.events)


class Client:
    """Keep-alive GraphQL over HTTP to one API."""

    def __init__(self, port, token):
        self.port, self.token = port, token
        self.conn = None

    def post(self, query, variables=None, read_after=None):
        body = json.dumps({"query": query, "variables": variables or {}})
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"}
        if read_after:
            headers["Salesops-Read-After"] = read_after
        for attempt in (0, 1):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                self.conn.request("POST", "/graphql", body, headers)
                res = self.conn.getresponse()
                data = json.loads(res.read())
                if res.status != 200 or data.get("errors"):
                    raise RuntimeError(f"HTTP {res.status}: {json.dumps(data)[:300]}")
                return data["data"], res.getheader("Salesops-Read-After")
            except (http.client.HTTPException, ConnectionError):
                self.conn = None
                if attempt:
                    raise


def metrics(port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    reads = {(t, r): int(n) for t, r, n in re.findall(
        r'^salesops_reads_total\{target="(\w+)",reason="(\w+)"\} (\d+)', text, re.M)}
    lag = re.search(r"^salesops_replica_lag_seconds (\S+)", text, re.M)
    return reads, float(lag.group(1)) if lag else None


def replica_share(before, after):
    d = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    total = sum(d.values())
    return d, (d.get(("replica", "fresh"), 0) / total if total else float("nan"))


DEAL_READ = "query($id: ID) { deal(id: $id) { id name amount status owner { name } stage { name } } }"
DEAL_NAME = "query($id: ID) { deal(id: $id) { name } }"
PAGE = ("{ deals(first: 50) { nodes { id name amount status expectedCloseDate owner { name } "
        "account { name } territory { name } stage { name probability } } } }")
UPDATE = "mutation($id: ID!, $n: String!) { updateDeal(id: $id, patch: {name: $n}) { name } }"


def metric_queries():
    """The metric requests of bench/load.py's mix (same case files)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import load  # noqa: E402
    return [(name, q, v) for name, q, v, _sql in load.mix({"deal": "1"}) if name not in
            ("deal page (50, all relations)", "deal by id")]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--deals", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=int, default=30, help="length of the mixed load")
    ap.add_argument("--write-share", type=float, default=0.1, help="share of mix operations that are updates")
    ap.add_argument("--max-lag-ms", type=int, default=1000, help="SALESOPS_READ_MAX_LAG_MS of both APIs")
    ap.add_argument("--pause-seconds", type=float, default=6, help="how long replay stays paused")
    ap.add_argument("--primary-port", type=int, default=5441)
    ap.add_argument("--replica-port", type=int, default=5442)
    ap.add_argument("--no-hot-standby-feedback", action="store_true",
                    help="leave hot_standby_feedback off: replay then waits for the standby's long queries "
                         "(cleanup conflicts, up to max_standby_streaming_delay) and the lag grows")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs) at exit")
    args = ap.parse_args()

    if not args.no_build:
        print("== building the release binary", flush=True)
        sh(["cargo", "build", "--release", "-q", "-p", "api"])
    bindir = pg_bin()
    tmp = tempfile.mkdtemp(prefix="salesops-scale-")
    os.chmod(tmp, 0o755)
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres", "postgres")
    primary = Cluster(bindir, os.path.join(tmp, "primary"), args.primary_port, tmp)
    replica = Cluster(bindir, os.path.join(tmp, "replica"), args.replica_port, tmp)
    servers = []
    failures = []

    def cleanup(*_):
        for s in servers:
            if s.poll() is None:
                s.send_signal(signal.SIGTERM)
        for s in servers:
            try:
                s.wait(timeout=30)
            except subprocess.TimeoutExpired:
                s.kill()
        for c in (replica, primary):
            try:
                c.stop()
            except SystemExit as e:
                print(f"could not stop a cluster: {e}", file=sys.stderr)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}")

    def on_signal(signum, _frame):
        raise SystemExit(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    try:
        run(args, tmp, primary, replica, servers, failures)
    finally:
        cleanup()
    if failures:
        print("\nFAILED: " + "; ".join(failures))
        sys.exit(1)
    print("\nall checks passed")


def run(args, tmp, primary, replica, servers, failures):
    def check(ok, what):
        print(f"   {'ok  ' if ok else 'FAIL'} {what}", flush=True)
        if not ok:
            failures.append(what)

    # 1. Primary, standby, data.
    print(f"== primary on {args.primary_port}, standby on {args.replica_port} ({tmp})", flush=True)
    primary.run("initdb", "-D", primary.datadir, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                "--no-instructions")
    with open(os.path.join(primary.datadir, "postgresql.conf"), "a") as f:
        f.write("\nlisten_addresses = '127.0.0.1'\nwal_level = replica\nmax_wal_senders = 4\n"
                "hot_standby = on\nshared_buffers = 128MB\nmax_connections = 200\n"
                # Throwaway clusters: no fsync. Commits stay synchronous (the
                # flushed WAL position is what read-your-writes waits for).
                "fsync = off\nsynchronous_commit = on\n")
    with open(os.path.join(primary.datadir, "pg_hba.conf"), "a") as f:
        f.write("host replication replicator 127.0.0.1/32 trust\n")
    primary.start()
    primary.sql("CREATE ROLE replicator WITH REPLICATION LOGIN")
    replica.run("pg_basebackup", "-h", "127.0.0.1", "-p", str(args.primary_port), "-U", "replicator",
                "-D", replica.datadir, "-R", "-X", "stream", "-c", "fast")
    if not args.no_hot_standby_feedback:
        with open(os.path.join(replica.datadir, "postgresql.auto.conf"), "a") as f:
            f.write("hot_standby_feedback = on\n")
    replica.start()
    print(f"   hot_standby_feedback = {replica.sql('SHOW hot_standby_feedback')}", flush=True)
    check(replica.sql("SELECT pg_is_in_recovery()") == "t", "the standby is in recovery")
    primary.sql(f"CREATE DATABASE {DB}")
    primary_url, replica_url = primary.url(DB), replica.url(DB)
    env = dict(os.environ, SALESOPS_DATABASE_URL=primary_url, SALESOPS_JWT_SECRET=SECRET, RUST_LOG="warn")
    sh([BIN, "migrate"], env=env)
    started = time.time()
    print("   " + sh([BIN, "seed", "--deals", str(args.deals)], env=env).strip().splitlines()[-1])
    print(f"   seed wall time {time.time() - started:.1f}s", flush=True)
    primary.sql("VACUUM ANALYZE", DB)
    target = primary.sql("SELECT pg_current_wal_flush_lsn()")
    started = time.time()
    while replica.sql(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn") != "t":
        time.sleep(0.1)
    print(f"   standby replayed the seed {time.time() - started:.2f}s after it ended", flush=True)

    # 2. Receiver, two APIs, the webhook.
    receiver = Receiver()
    ports = [free_port(), free_port()]
    for i, port in enumerate(ports):
        senv = dict(env, SALESOPS_READ_DATABASE_URL=replica_url, SALESOPS_BIND=f"127.0.0.1:{port}",
                    SALESOPS_READ_MAX_LAG_MS=str(args.max_lag_ms), SALESOPS_READ_LAG_POLL_MS="100",
                    SALESOPS_WEBHOOK_WORKER="true", SALESOPS_WEBHOOK_POLL_MS="100",
                    SALESOPS_WEBHOOK_ALLOW_HTTP="true", SALESOPS_WEBHOOK_ALLOWED_HOSTS="127.0.0.1",
                    SALESOPS_DB_MAX_CONNECTIONS="16", SALESOPS_DB_ACQUIRE_TIMEOUT_MS="60000")
        log = open(os.path.join(tmp, f"api{i}.log"), "w")
        servers.append(subprocess.Popen([BIN, "serve"], env=senv, stdout=log, stderr=subprocess.STDOUT))
    for port in ports:
        for _ in range(300):
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz").status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        else:
            raise SystemExit(f"API on {port} did not start (see {tmp}/api*.log)")

    def token(sub):
        return sh([BIN, "token", "--role", "ADMIN", "--sub", sub, "--ttl", "4h"], env=env).strip()

    admin = Client(ports[0], token("admin"))
    admin.post("mutation($u: String!) { createWebhook(url: $u, events: [DEAL_CREATED, DEAL_UPDATED]) "
               "{ webhook { id } } }", {"u": receiver.url})
    deal_ids = [int(x) for x in primary.sql(
        f"SELECT id FROM deal ORDER BY id LIMIT {max(100, args.clients * 50)}", DB).split()]
    metric_qs = metric_queries()

    # 3. The mix.
    print(f"== mix: {args.clients} clients, {args.seconds}s, {args.write_share:.0%} updates, both APIs", flush=True)
    before = [metrics(p)[0] for p in ports]
    done = [0, 0]
    writes = [0]
    violations = []
    stale_other = [0]
    lock = threading.Lock()
    stop_at = time.time() + args.seconds

    def client(i):
        sub = f"client-{i}"
        tok = token(sub)
        apis = [Client(ports[0], tok), Client(ports[1], tok)]
        mine = deal_ids[i::args.clients]
        rnd = random.Random(i)
        n = 0
        local = [0, 0]
        while time.time() < stop_at:
            a = n % 2
            n += 1
            api, other = apis[a], apis[1 - a]
            r = rnd.random()
            if r < args.write_share:
                deal = rnd.choice(mine)
                name = f"scale {sub} #{n}"
                _, after = api.post(UPDATE, {"id": str(deal), "n": name})
                local[a] += 1
                checks = [(other, after, "other API with header"), (api, None, "same API without header")]
                for c, hdr, how in checks:
                    got, _ = c.post(DEAL_NAME, {"id": str(deal)}, read_after=hdr)
                    local[apis.index(c)] += 1
                    if got["deal"]["name"] != name:
                        with lock:
                            violations.append((how, deal, name, got["deal"]["name"]))
                got, _ = other.post(DEAL_NAME, {"id": str(deal)})
                local[1 - a] += 1
                with lock:
                    writes[0] += 1
                    if got["deal"]["name"] != name:
                        stale_other[0] += 1
            elif r < 0.75:
                api.post(DEAL_READ, {"id": str(rnd.choice(deal_ids))})
                local[a] += 1
            elif r < 0.9:
                api.post(PAGE)
                local[a] += 1
            else:
                _, q, v = rnd.choice(metric_qs)
                api.post(q, v)
                local[a] += 1
        with lock:
            done[0] += local[0]
            done[1] += local[1]

    t0 = time.time()
    errors = []
    lags = []

    def lag_sampler():
        while time.time() < stop_at:
            lags.append(metrics(ports[0])[1])
            time.sleep(0.1)

    def guarded(f):
        def g(*a):
            try:
                f(*a)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))
        return g
    threads = [threading.Thread(target=guarded(client), args=(i,)) for i in range(args.clients)]
    threads.append(threading.Thread(target=guarded(lag_sampler)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - t0
    after = [metrics(p)[0] for p in ports]
    check(not errors, f"no request failed ({len(errors)} failed{': ' + errors[0] if errors else ''})")
    for i, port in enumerate(ports):
        d, share = replica_share(before[i], after[i])
        print(f"   API {i + 1}: {done[i] / elapsed:.1f} requests/s; queries: {share:.1%} on the replica "
              f"({d.get(('replica', 'fresh'), 0)} replica, {d.get(('primary', 'read_after'), 0)} primary for "
              f"read-your-writes, {d.get(('primary', 'lag'), 0)} primary for lag, "
              f"{d.get(('primary', 'unreachable'), 0)} unreachable)")
    print(f"   both: {(done[0] + done[1]) / elapsed:.1f} requests/s, {writes[0]} updates "
          f"({writes[0] / elapsed:.1f}/s), each read back 3 times")
    check(not violations, f"read-your-writes: {len(violations)} violations in {2 * writes[0]} read-backs "
          f"(other API with header, same API without){': ' + str(violations[:3]) if violations else ''}")
    known = sorted(x for x in lags if x is not None and x >= 0)
    if known:
        print(f"   replica lag during the mix (API 1's gauge every 100 ms, {len(known)} samples): "
              f"p50 {known[len(known) // 2] * 1000:.0f} ms, p99 {known[int(len(known) * 0.99)] * 1000:.0f} ms, "
              f"max {known[-1] * 1000:.0f} ms; {sum(x > args.max_lag_ms / 1000 for x in known) / len(known):.0%} "
              f"of samples past the max")
    print(f"   other API without header: {stale_other[0]} of {writes[0]} read-backs stale "
          f"(allowed: bounded by the lag, not a violation)")

    # 4. Lag.
    print(f"== lag: replay paused {args.pause_seconds:.0f}s while a writer updates a probe deal "
          f"(max lag {args.max_lag_ms} ms)", flush=True)
    probe = deal_ids[-1]
    wtok, rtok = token("lag-writer"), token("lag-reader")
    writer = Client(ports[0], wtok)
    # The writer's own read-backs go through the other API (a connection of
    # its own: http.client connections are not shared between threads).
    writer_other = Client(ports[1], wtok)
    readers = [Client(ports[0], rtok), Client(ports[1], rtok)]
    written = []  # (time written, version)
    reads = []    # (time started, version seen, api)
    ryw = []
    stop = threading.Event()

    def write_loop():
        v = 0
        while not stop.is_set():
            v += 1
            _, hdr = writer.post(UPDATE, {"id": str(probe), "n": f"probe {v}"})
            written.append((time.time(), v))
            got, _ = writer_other.post(DEAL_NAME, {"id": str(probe)}, read_after=hdr)
            if got["deal"]["name"] != f"probe {v}":
                ryw.append((v, got["deal"]["name"]))
            time.sleep(0.05)

    def read_loop(i):
        while not stop.is_set():
            t = time.time()
            got, _ = readers[i].post(DEAL_NAME, {"id": str(probe)})
            name = got["deal"]["name"]
            reads.append((t, int(name.split()[-1]) if name.startswith("probe ") else 0, i))
            time.sleep(0.01)

    samples = []  # (time, api, lag seconds, reads by (target, reason))

    def sample_loop():
        while not stop.is_set():
            for i, p in enumerate(ports):
                r, lag = metrics(p)
                samples.append((time.time(), i, lag, r))
            time.sleep(0.05)

    loops = [threading.Thread(target=guarded(f), args=a) for f, a in
             [(write_loop, ()), (read_loop, (0,)), (read_loop, (1,)), (sample_loop, ())]]
    for t in loops:
        t.start()
    time.sleep(1.0)
    paused_at = time.time()
    replica.sql("SELECT pg_wal_replay_pause()")
    time.sleep(args.pause_seconds)
    resumed_at = time.time()
    replica.sql("SELECT pg_wal_replay_resume()")
    time.sleep(3.0)
    stop.set()
    for t in loops:
        t.join()
    check(not errors, f"no request failed during the lag phase ({errors[:1]})")

    def first(pred, since):
        return next((t for t, *rest in samples if t >= since and pred(*rest)), None)

    max_lag = args.max_lag_ms / 1000
    for i in range(2):
        base = [r for t, a, _l, r in samples if a == i and t <= paused_at][-1]
        fell = first(lambda api, _lag, r, i=i, base=base: api == i and
                     r.get(("primary", "lag"), 0) > base.get(("primary", "lag"), 0), paused_at)
        over = first(lambda api, lag, r, i=i: api == i and lag is not None and lag > max_lag, paused_at)
        back_base = next((r for t, a, _l, r in reversed(samples) if a == i and t <= resumed_at), {})
        back = first(lambda api, lag, r, i=i: api == i and lag is not None and 0 <= lag <= max_lag
                     and r.get(("replica", "fresh"), 0) > back_base.get(("replica", "fresh"), 0), resumed_at)
        check(fell is not None, f"API {i + 1}: reads fell back to the primary "
              f"{(fell - paused_at) * 1000 if fell else float('nan'):.0f} ms after the pause "
              f"(lag gauge past {args.max_lag_ms} ms after "
              f"{(over - paused_at) * 1000 if over else float('nan'):.0f} ms)")
        check(back is not None, f"API {i + 1}: back on the replica "
              f"{(back - resumed_at) * 1000 if back else float('nan'):.0f} ms after replay resumed")
    # Staleness of every read without a header: the age of the oldest write
    # it missed (0 when it saw the latest write made before it started).
    worst = 0.0
    for t, seen, _ in reads:
        missed = [wt for wt, v in written if v > seen and wt < t]
        if missed:
            worst = max(worst, t - min(missed))
    bound = max_lag + 0.1 + 0.1  # the lag bound, one measurement interval, one write interval
    check(worst <= bound, f"no read staler than the bound: worst {worst * 1000:.0f} ms "
          f"(bound {bound * 1000:.0f} ms), {len(reads)} reads, {len(written)} writes")
    stale_reads = sum(1 for t, seen, _ in reads if any(v > seen and wt < t for wt, v in written))
    print(f"   {stale_reads} of {len(reads)} reads missed a write (all within the bound)")
    check(not ryw, f"read-your-writes during the lag phase: {len(ryw)} violations in {len(written)} "
          f"read-backs through the other API")

    # 5. Webhooks.
    print("== webhooks: two workers, one outbox", flush=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        pending = int(primary.sql("SELECT COUNT(*) FROM webhook_delivery WHERE status <> 'DELIVERED'", DB))
        if pending == 0:
            break
        time.sleep(0.5)
    time.sleep(1.0)
    rows = int(primary.sql("SELECT COUNT(*) FROM webhook_delivery", DB))
    delivered = int(primary.sql("SELECT COUNT(*) FROM webhook_delivery WHERE status = 'DELIVERED'", DB))
    distinct = primary.sql("SELECT COUNT(DISTINCT event_id) FROM webhook_delivery", DB)
    counts = receiver.counts()
    dup = sum(1 for n in counts.values() if n > 1)
    print(f"   {rows} outbox rows ({distinct} distinct events), {delivered} DELIVERED; receiver got "
          f"{sum(counts.values())} requests for {len(counts)} distinct events")
    check(rows == delivered == len(counts) == sum(counts.values()) and dup == 0,
          f"each event delivered exactly once ({dup} duplicates)")


if __name__ == "__main__":
    main()
