#!/usr/bin/env python3
"""Bulk upsert throughput of salesops on PostgreSQL, through the API.

Creates a fresh database, starts the release binary on it, and times
bulkUpsertDeals calls of 1,000 deals each: fresh inserts, replays of the same
inputs (nothing changes), and updates (every amount changes). Prints deals
per second for each.

Needs: Python 3 (stdlib only), psql, a PostgreSQL server the current user can
create databases on, and `cargo build --release -p api` done beforehand.

    python3 bench/bulk_upsert.py [--pg postgres://postgres@127.0.0.1:5432] [--calls 20]
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pg", default=os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432"))
    ap.add_argument("--calls", type=int, default=20, help="bulk calls of 1,000 deals per phase")
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    ap.add_argument("--binary", default=BINARY, help="the salesops binary to run")
    args = ap.parse_args()
    binary = args.binary
    if not os.path.exists(binary):
        sys.exit(f"{binary} is missing: run `cargo build --release -p api` first")

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
        for _ in range(100):
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
        results = [
            run(api, "fresh inserts", fresh, "created"),
            run(api, "replays (unchanged)", fresh, "unchanged"),
            run(api, "updates (amount changed)", changed, "updated"),
        ]
        print(f"bulkUpsertDeals on PostgreSQL, {args.calls} calls x {BATCH} deals per phase (release build, fresh database)")
        print(f"{'phase':<26}{'deals':>8}{'seconds':>10}{'deals/s':>10}{'p50 ms':>9}{'max ms':>9}")
        for r in results:
            print(f"{r['label']:<26}{r['deals']:>8}{r['seconds']:>10.2f}{r['rate']:>10.0f}{r['p50_ms']:>9.0f}{r['max_ms']:>9.0f}")
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        if not args.keep:
            psql(admin, f"DROP DATABASE IF EXISTS {db}")


if __name__ == "__main__":
    main()
