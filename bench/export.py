#!/usr/bin/env python3
"""BI export throughput and memory: GET /export/deals on PostgreSQL.

One command (from the repository root):

    python3 bench/export.py                          # 1,000,000 deals (database salesops_bench)
    python3 bench/export.py --reuse                  # keep the seeded database
    python3 bench/export.py --deals 100000 --db salesops_export_100k

Seeds (or reuses, with --reuse) a PostgreSQL database with `salesops seed
--deals N` the way bench/metrics.py and bench/load.py do, serves it with
the release binary, and downloads the whole deals table as CSV, NDJSON and
gzip-compressed CSV with a local client reading as fast as it can. For
each it prints rows, bytes, seconds, rows/s (target: at least 100,000) and
the server's peak RSS growth during the export (target: under 50 MB for
1,000,000 deals): the peak is reset before each export (/proc/PID/clear_refs)
and compared with the resident size just before it.
"""
import os
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import load  # noqa: E402


def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def export(base, token, path, headers, pid):
    """(rows, bytes on the wire, seconds, RSS growth in MB) of one download."""
    # Reset the peak resident size so VmHWM is this export's peak.
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")
    before = status_kb(pid, "VmRSS")
    req = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}", **headers})
    started = time.time()
    newlines = 0
    size = 0
    with urllib.request.urlopen(req, timeout=3600) as res:
        while True:
            chunk = res.read(1 << 20)
            if not chunk:
                break
            size += len(chunk)
            newlines += chunk.count(b"\n")
    seconds = time.time() - started
    peak = status_kb(pid, "VmHWM")
    return newlines, size, seconds, (peak - before) / 1024


def main():
    args = load.arguments(__doc__)
    print("== building the release binary", flush=True)
    load.sh(["cargo", "build", "--release", "-q", "-p", "api"], capture=False)
    db_url = f"{args.pg}/{args.db}"
    env = dict(os.environ, SALESOPS_DATABASE_URL=db_url, SALESOPS_JWT_SECRET=load.SECRET,
               SALESOPS_BIND=f"127.0.0.1:{args.port}", RUST_LOG="warn", SALESOPS_WEBHOOK_WORKER="false")
    exists = load.psql(f"{args.pg}/postgres", f"SELECT 1 FROM pg_database WHERE datname = '{args.db}'") == "1"
    if args.reuse and exists:
        load.sh([load.BIN, "migrate"], env=env)
    else:
        load.psql(f"{args.pg}/postgres", f"DROP DATABASE IF EXISTS {args.db}")
        load.psql(f"{args.pg}/postgres", f"CREATE DATABASE {args.db}")
        print(f"== seeding {args.deals:,} deals", flush=True)
        started = time.time()
        print(load.sh([load.BIN, "seed", "--deals", str(args.deals)], env=env).strip().splitlines()[-1])
        print(f"   seed wall time: {time.time() - started:.1f}s", flush=True)
    load.psql(db_url, "VACUUM ANALYZE")
    deals = int(load.psql(db_url, "SELECT COUNT(*) FROM deal"))
    server = subprocess.Popen([load.BIN, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{args.port}"
    try:
        for _ in range(300):
            try:
                if urllib.request.urlopen(f"{base}/readyz").status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        token = load.sh([load.BIN, "token", "--role", "ADMIN", "--sub", "bench", "--ttl", "4h"], env=env).strip()
        # Warm the connection pool and the table's pages once.
        export(base, token, "/export/deals?format=csv&ids=1", {}, server.pid)
        runs = [
            ("CSV", "/export/deals?format=csv", {}, 1),
            ("NDJSON", "/export/deals?format=ndjson", {}, 0),
            ("CSV, gzip", "/export/deals?format=csv", {"Accept-Encoding": "gzip"}, None),
        ]
        print(f"\n{'format':12} {'rows':>10} {'MB on wire':>11} {'seconds':>8} {'rows/s':>10} {'RSS growth MB':>14}")
        for name, path, headers, header_lines in runs:
            lines, size, seconds, growth = export(base, token, path, headers, server.pid)
            # Rows: the lines less the CSV header (gzip: the body is compressed,
            # so the table's row count stands in).
            rows = deals if header_lines is None else lines - header_lines
            if rows != deals:
                sys.exit(f"{name}: {rows} rows for {deals} deals")
            print(f"{name:12} {rows:>10,} {size / 1e6:>11.1f} {seconds:>8.2f} {rows / seconds:>10,.0f} {growth:>14.1f}",
                  flush=True)
        print(f"\ndeals: {deals:,}; one local client; server peak RSS overall: {load.peak_rss_mb(server.pid):.0f} MB")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
