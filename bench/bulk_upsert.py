#!/usr/bin/env python3
"""Write throughput of salesops on PostgreSQL, through the API.

Creates a fresh database, starts the release binary on it, and times
bulkUpsertDeals calls of 1,000 deals each: fresh inserts, replays of the same
inputs (nothing changes), and updates (every amount changes); then single
createDeal and updateDeal calls one after the other. Prints deals per
second for each.

With --compare OTHER_BINARY (e.g. a release build of an earlier commit) both
binaries run the same phases alternately (other, this, other, this), each on
its own fresh database, and the table shows this binary's throughput as a
ratio of the other's (the best of its two runs each): how much a change
costs the write path.

Needs: Python 3 (stdlib only), psql, a PostgreSQL server the current user can
create databases on, and `cargo build --release -p api` done beforehand.

    python3 bench/bulk_upsert.py [--pg postgres://postgres@127.0.0.1:5432] [--calls 20]
    python3 bench/bulk_upsert.py --compare /path/to/old/salesops
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(ROOT, "target", "release", "salesops")
SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
BATCH = 1000


def psql(admin_url, sql):
    subprocess.run(["psql", admin_url, "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    def __init__(self, url, token):
        self.url = url
        self.token = token

    def call(self, query, variables=None):
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        req = urllib.request.Request(
            self.url,
            data=body,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"},
        )
        with urllib.request.urlopen(req, timeout=300) as res:
            out = json.load(res)
        if out.get("errors"):
            raise RuntimeError(json.dumps(out["errors"])[:2000])
        return out["data"]


BULK = """mutation($i: [DealInput!]!) { bulkUpsertDeals(inputs: $i) {
  created updated unchanged errors { index code message } } }"""


def batches(calls, owners, stages, amount_offset):
    """`calls` lists of 1,000 DealInputs with stable externalIds."""
    out = []
    for c in range(calls):
        items = []
        for i in range(BATCH):
            n = c * BATCH + i
            items.append({
                "externalId": f"bench-{n}",
                "name": f"Bench deal {n}",
                "amount": f"{1000 + (n % 9000) + amount_offset}.50",
                "ownerId": owners[n % len(owners)],
                "stageId": stages[n % len(stages)],
                "openedAt": "2025-01-15T09:00:00Z",
                "expectedCloseDate": "2025-06-30",
                "source": "INBOUND",
            })
        out.append(items)
    return out


def run(api, label, payloads, expect):
    # Encode outside the timed section: we measure the server.
    times = []
    for items in payloads:
        t = time.perf_counter()
        r = api.call(BULK, {"i": items})["bulkUpsertDeals"]
        times.append(time.perf_counter() - t)
        if r["errors"] or r[expect] != len(items):
            raise RuntimeError(f"{label}: unexpected result {r}")
    total = sum(times)
    n = sum(len(p) for p in payloads)
    return {
        "label": label,
        "deals": n,
        "seconds": total,
        "rate": n / total,
        "p50_ms": statistics.median(times) * 1000,
        "max_ms": max(times) * 1000,
    }


CREATE = "mutation($i: DealInput!) { createDeal(input: $i) { id } }"
UPDATE = "mutation($id: ID!, $p: DealPatch!) { updateDeal(id: $id, patch: $p) { id } }"


def singles(api, owners, n):
    """n createDeal calls, then n updateDeal calls of those deals."""
    ids, t_create, t_update = [], [], []
    for i in range(n):
        t = time.perf_counter()
        r = api.call(CREATE, {"i": {"name": f"Single {i}", "amount": f"{1000 + i}.00", "ownerId": owners[i % len(owners)],
                                    "expectedCloseDate": "2025-06-30"}})
        t_create.append(time.perf_counter() - t)
        ids.append(r["createDeal"]["id"])
    for i, d in enumerate(ids):
        t = time.perf_counter()
        api.call(UPDATE, {"id": d, "p": {"amount": f"{2000 + i}.00", "expectedCloseDate": "2025-07-31"}})
        t_update.append(time.perf_counter() - t)

    def row(label, times):
        return {"label": label, "deals": len(times), "seconds": sum(times), "rate": len(times) / sum(times),
                "p50_ms": statistics.median(times) * 1000, "max_ms": max(times) * 1000}
    return [row("createDeal (one at a time)", t_create), row("updateDeal (one at a time)", t_update)]


def measure(binary, args):
    """Every phase on a fresh database served by `binary`."""
    db = f"salesops_bench_{os.getpid()}"
    admin = f"{args.pg}/postgres"
    psql(admin, f"DROP DATABASE IF EXISTS {db}")
    psql(admin, f"CREATE DATABASE {db}")
    port = free_port()
    env = dict(os.environ)
    env.update({
        "SALESOPS_DATABASE_URL": f"{args.pg}/{db}",
        "SALESOPS_BIND": f"127.0.0.1:{port}",
        "SALESOPS_JWT_SECRET": SECRET,
        "SALESOPS_LOG_FORMAT": "json",
        "RUST_LOG": "warn",
    })
    server = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        token = subprocess.run(
            [binary, "token", "--role", "ADMIN", "--sub", "bench"],
            env=env, check=True, capture_output=True, text=True,
        ).stdout.strip()
        api = Api(f"http://127.0.0.1:{port}/graphql", token)
        for _ in range(300):
            try:
                api.call("{ stages { id } }")
                break
            except Exception:
                time.sleep(0.1)
        stages = [s["id"] for s in api.call("{ stages { id kind } }")["stages"] if s["kind"] == "OPEN"]
        owners = []
        for i in range(20):
            r = api.call(
                "mutation($i: RepInput!) { createRep(input: $i) { id } }",
                {"i": {"name": f"Bench Rep {i}", "email": f"bench{i}@example.com"}},
            )
            owners.append(r["createRep"]["id"])

        fresh = batches(args.calls, owners, stages, 0)
        changed = batches(args.calls, owners, stages, 1)
        return [
            run(api, "fresh inserts", fresh, "created"),
            run(api, "replays (unchanged)", fresh, "unchanged"),
            run(api, "updates (amount changed)", changed, "updated"),
        ] + singles(api, owners, args.singles)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        if not args.keep:
            psql(admin, f"DROP DATABASE IF EXISTS {db}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pg", default=os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432"))
    ap.add_argument("--calls", type=int, default=20, help="bulk calls of 1,000 deals per phase")
    ap.add_argument("--singles", type=int, default=500, help="single createDeal and updateDeal calls")
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    ap.add_argument("--binary", default=BINARY, help="the salesops binary to run")
    ap.add_argument("--compare", help="another salesops binary to compare with (runs alternate)")
    args = ap.parse_args()
    for b in [args.binary] + ([args.compare] if args.compare else []):
        if not os.path.exists(b):
            sys.exit(f"{b} is missing: run `cargo build --release -p api` first")

    print(f"writes on PostgreSQL: {args.calls} bulkUpsertDeals calls x {BATCH} deals per phase, "
          f"{args.singles} single calls (release build, fresh database each run)")
    if not args.compare:
        results = measure(args.binary, args)
        print(f"{'phase':<28}{'deals':>8}{'seconds':>10}{'deals/s':>10}{'p50 ms':>9}{'max ms':>9}")
        for r in results:
            print(f"{r['label']:<28}{r['deals']:>8}{r['seconds']:>10.2f}{r['rate']:>10.0f}{r['p50_ms']:>9.1f}{r['max_ms']:>9.1f}")
        return
    runs = {"other": [], "this": []}
    for _ in range(2):
        runs["other"].append(measure(args.compare, args))
        runs["this"].append(measure(args.binary, args))
    print(f"{'phase':<28}{'other/s':>10}{'this/s':>10}{'this/other':>12}")
    for i, r in enumerate(runs["this"][0]):
        other = max(run[i]["rate"] for run in runs["other"])
        this = max(run[i]["rate"] for run in runs["this"])
        flag = "" if this >= 0.8 * other else "  (more than 25% slower)"
        print(f"{r['label']:<28}{other:>10.0f}{this:>10.0f}{this / other:>12.2f}{flag}")


if __name__ == "__main__":
    main()
