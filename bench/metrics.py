#!/usr/bin/env python3
"""Metric and forecast queries through the API against hand-written SQL.

One command (from the repository root):

    python3 bench/metrics.py                   # 1,000,000 deals
    python3 bench/metrics.py --reuse           # keep the seeded database
    python3 bench/metrics.py --only forecast   # only cases whose name matches
    python3 bench/metrics.py --only "as of|Trend"  # either

Every case of bench/cases_metrics.py and bench/cases_forecast.py pairs a
GraphQL request with one hand-written PostgreSQL statement that answers the
same question. On a database seeded by `salesops seed --deals N` (shared
with bench/load.py), each case runs for --seconds through the API with wrk
and as SQL with pgbench, one client each, one right after the other, and
the table shows both median latencies, their ratio (target: at most 1.5)
and the SQL statements the API issued for the request.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import load  # noqa: E402


def main():
    args = load.arguments(__doc__, clients="1", seconds=8)
    cases = load.load_cases()
    if args.only:
        # "a|b" keeps the cases whose name contains a or b.
        wanted = args.only.split("|")
        cases = [c for c in cases if any(w in c["name"] for w in wanted)]
    bench = load.Bench(args)
    rows = []
    try:
        for c in cases:
            variables = c.get("variables", {})
            stmts = bench.statements_of(c["query"], variables)
            # Warm both sides once, then measure.
            bench.pgbench(c["sql"], 1, 1)
            a_rps, a50, a99, errs = bench.wrk(c["query"], variables, 1, args.seconds)
            s_tps, s50, s99 = bench.pgbench(c["sql"], 1, args.seconds)
            ratio = a50 / s50 if s50 else float("nan")
            if errs:
                sys.exit(f"{c['name']}: the API answered {errs} GraphQL errors")
            rows.append((c["name"], a50, a99, s50, s99, ratio, stmts))
            print(f"   {c['name']}: API p50 {a50:.2f}ms | SQL p50 {s50:.2f}ms | x{ratio:.2f} | {stmts} stmts", flush=True)
        rss = bench.peak_rss_mb()
    finally:
        bench.stop()

    print()
    print(f"{'query':52} {'API p50':>9} {'API p99':>9} {'SQL p50':>9} {'SQL p99':>9} {'API/SQL':>8} {'stmts':>6}")
    for r in rows:
        flag = "" if r[5] <= 1.5 else "  > 1.5"
        print(f"{r[0]:52} {r[1]:>9.2f} {r[2]:>9.2f} {r[3]:>9.2f} {r[4]:>9.2f} {r[5]:>8.2f} {r[6]:>6}{flag}")
    print(f"\nlatencies in ms, one client, {args.seconds}s per side; deals: {bench.deals:,}; "
          f"server peak RSS: {rss:.0f} MB")


if __name__ == "__main__":
    main()
