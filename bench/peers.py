#!/usr/bin/env python3
"""Side by side: the API against hand-written SQL and PostGraphile (issue 19).

One command (from the repository root):

    python3 bench/peers.py --out bench/out/peers.md              # 3 repetitions, 10 s per cell
    python3 bench/peers.py --reps 2 --only Q1,Q4 --out /tmp/p.md  # a subset
    python3 bench/peers.py --quick                                # smoke run: 1 repetition, 3 s

On a PostgreSQL database seeded by `salesops seed --deals 1000000`
(default salesops_bench; read only: the one write is the schema peers_fn of
hand-written SQL functions for PostGraphile, dropped at the end), every
question below is answered by five systems, side by side in one run:

  raw   the hand-written SQL through pgbench (-M prepared, -c N -j N): the floor;
  pg    PostGraphile v4's generic schema (tables and relations only), where it
        can express the question (Q1, Q5); "-" where it cannot (aggregates);
  pgf   PostGraphile calling one hand-written SQL function for the question
        (the raw SQL wrapped, period inlined as in the raw SQL), for the
        aggregates and the dashboard;
  scan  ours asked with `Salesops-Rollups: off`: every metric scans the
        deals (the aggregates Q2-Q4 and VP only);
  ours  the release binary `salesops serve`, default settings (metrics read
        the exact rollups where they cover the question).

Questions: Q1 a deal page of 50 with owner and account; Q2 win rate per rep
(quarter); Q3 stage-weighted forecast per territory (this month); Q4 quota
attainment per rep (month; rep, quota, closed-won, attainment only); Q5
territories > reps > 10 deals > stage; VP the dashboard in one document
(winRates by REP + quotaAttainment + forecast STAGE_WEIGHTED by TERRITORY +
pipelineSummary by TERRITORY; raw runs its four statements one after
another in one pgbench script).

Before measuring, each question's answers are compared once: ours against
raw, PostGraphile's function and PostGraphile's generic query (money to the
cent, counts exactly, ratios to 1e-9; a mismatch exits non-zero). Then for
each repetition, for each question, for 1 and 16 clients, each system runs
for --seconds (longer at 16 clients for slow questions, the same length for
every system of that cell): requests/s and p50 latency. HTTP load comes from
wrk (Debian package wrk; C like pgbench, one thread, closed loop, one
keep-alive connection per client, every answer checked for errors) or,
without wrk or with --load-generator python, a small asyncio client (same
loop; it takes up to a core at a thousand requests/s, which the server then
lacks). The
tables print ours/raw and ours/best PostGraphile within each repetition,
and our server's peak RSS.

Needs psql, pgbench, node/npm (PostGraphile is installed into bench/peers
by `npm ci` when missing) and cargo (the release binary is built unless
--no-build).
"""
import argparse
import asyncio
import datetime as dt
import json
import math
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from decimal import Decimal

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import load  # noqa: E402
from cases_forecast import FORECAST, MONTH, STAGE_WEIGHTED_TODAY_SQL  # noqa: E402
from cases_metrics import OCT, OCT_END, OCT_START, Q3  # noqa: E402

ROOT = os.path.dirname(HERE)
BIN = load.BIN
PEERS_DIR = os.path.join(HERE, "peers")
SYSTEMS = ["raw", "pg", "pgf", "scan", "ours"]
# "scan": ours asked with `Salesops-Rollups: off`, so every metric scans the
# deals (docs/design.md, Rollups); only for the questions rollups answer.
SCAN_HEADER = "Salesops-Rollups: off"
# wrk when installed (Debian package wrk), else the asyncio client; see --load-generator.
LOAD_GENERATOR = "wrk" if shutil.which("wrk") else "python"
FN_SCHEMA = "peers_fn"


def case(name):
    """The bench case (bench/cases_*.py) whose name starts with `name`."""
    found = [c for c in load.load_cases() if c["name"].startswith(name)]
    if len(found) != 1:
        sys.exit(f"expected one bench case named {name!r}, found {len(found)}")
    return found[0]


WIN_RATES = case("winRates by REP (quarter)")
PIPELINE = case("pipelineSummary by TERRITORY (quarter)")
FORECAST_CASE = case("forecast STAGE_WEIGHTED by TERRITORY (today)")
assert FORECAST_CASE["sql"] == STAGE_WEIGHTED_TODAY_SQL

# ---------------------------------------------------------------------------
# The questions: GraphQL for ours, SQL for raw, GraphQL for PostGraphile.

Q1_OURS = "{ deals(first: 50) { nodes { id name amount owner { id name } account { id name } } } }"
Q1_SQL = (
    "SELECT d.id, d.name, d.amount_cents, r.id AS owner_id, r.name AS owner_name, a.id AS account_id, a.name AS account_name "
    "FROM deal d JOIN rep r ON r.id = d.owner_id LEFT JOIN account a ON a.id = d.account_id "
    "ORDER BY d.updated_at DESC, d.id DESC LIMIT 50"
)
Q1_COLS = "id, name, amount_cents, owner_id, owner_name, account_id, account_name"
Q1_PG = ("{ allDeals(first: 50, orderBy: [UPDATED_AT_DESC, ID_DESC]) { nodes { id name amountCents "
         "repByOwnerId { id name } accountByAccountId { id name } } } }")

Q2_OURS = WIN_RATES["query"]
Q2_VARS = WIN_RATES["variables"]
Q2_SQL = WIN_RATES["sql"]
Q2_COLS = "rep_id, rep_name, won, lost, won_cents, lost_cents"
Q2_FN = ("SELECT x.rep_id::bigint, x.rep_name::text, x.won::bigint, x.lost::bigint, "
         "x.won::float8 / NULLIF(x.won + x.lost, 0), x.won_cents::numeric / 100, x.lost_cents::numeric / 100, "
         "x.won_cents::float8 / NULLIF(x.won_cents + x.lost_cents, 0) "
         f"FROM ({Q2_SQL}) x({Q2_COLS})")
Q2_FN_RET = ("rep_id bigint, rep_name text, won bigint, lost bigint, win_rate float8, won_amount numeric, "
             "lost_amount numeric, amount_win_rate float8")
Q2_PGF_SEL = "q2WinRates { nodes { repId repName won lost winRate wonAmount lostAmount amountWinRate } }"

Q3_OURS = FORECAST
Q3_VARS = FORECAST_CASE["variables"]
Q3_SQL = STAGE_WEIGHTED_TODAY_SQL.strip()
Q3_COLS = "label, amount, closed_won, projected, deals, low, high"
Q3_FN = ("SELECT x.label::text, x.amount::numeric, x.closed_won::numeric, x.projected::numeric, x.deals::bigint, "
         f"x.low::numeric, x.high::numeric FROM ({Q3_SQL}) x({Q3_COLS})")
Q3_FN_RET = "label text, amount numeric, closed_won numeric, projected numeric, deals bigint, low numeric, high numeric"
Q3_PGF_SEL = "q3Forecast { nodes { label amount closedWon projected deals low high } }"

Q4_OURS = "query($p: Period!) { quotaAttainment(period: $p) { rows { rep { id name } quota closedWon attainment } } }"
Q4_VARS = {"p": OCT}
Q4_SQL = (
    "SELECT r.id, r.name, COALESCE(q.quota, 0) AS quota_cents, COALESCE(w.won, 0) AS won_cents, "
    "COALESCE(w.won, 0)::float8 / NULLIF(q.quota, 0) AS attainment FROM rep r "
    "LEFT JOIN (SELECT rep_id, SUM(amount_cents) AS quota FROM quota "
    "WHERE start_date >= '2026-10-01' AND end_date <= '2026-11-01' GROUP BY rep_id) q ON q.rep_id = r.id "
    "LEFT JOIN (SELECT owner_id, SUM(amount_cents) AS won FROM deal "
    f"WHERE status = 'WON' AND closed_at >= {OCT_START} AND closed_at < {OCT_END} GROUP BY owner_id) w ON w.owner_id = r.id "
    "WHERE (r.active OR q.rep_id IS NOT NULL OR w.owner_id IS NOT NULL) AND (r.quota_carrying OR q.rep_id IS NOT NULL) "
    "ORDER BY r.id"
)
assert OCT == "2026-10", "Q4_SQL spells out the dates of OCT"
Q4_COLS = "rep_id, rep_name, quota_cents, won_cents, attainment"
Q4_FN = ("SELECT x.rep_id::bigint, x.rep_name::text, x.quota_cents::numeric / 100, x.won_cents::numeric / 100, "
         f"x.attainment::float8 FROM ({Q4_SQL}) x({Q4_COLS})")
Q4_FN_RET = "rep_id bigint, rep_name text, quota numeric, closed_won numeric, attainment float8"
Q4_PGF_SEL = "q4Attainment { nodes { repId repName quota closedWon attainment } }"

Q5_OURS = ("{ territories(first: 20) { id name reps { id name deals(first: 10) { nodes { id name amount stage { id name } } } } } }")
# The first 20 territories by name, id (all 203 of the seed with their reps
# and 10 deals each cost more than the API's default complexity limit,
# 50,000); reps are the territory's members by name, id; a rep's deals
# default to UPDATED_DESC.
Q5_SQL = (
    "SELECT t.id AS territory_id, t.name AS territory_name, r.id AS rep_id, r.name AS rep_name, d.id AS deal_id, "
    "d.name AS deal_name, d.amount_cents, s.id AS stage_id, s.name AS stage_name "
    "FROM (SELECT id, name FROM territory ORDER BY name, id LIMIT 20) t "
    "LEFT JOIN rep r ON r.territory_id = t.id "
    "LEFT JOIN LATERAL (SELECT id, name, amount_cents, stage_id, updated_at FROM deal WHERE deal.owner_id = r.id "
    "ORDER BY updated_at DESC, id DESC LIMIT 10) d ON true "
    "LEFT JOIN stage s ON s.id = d.stage_id "
    "ORDER BY t.name, t.id, r.name, r.id, d.updated_at DESC, d.id DESC"
)
Q5_COLS = "territory_id, territory_name, rep_id, rep_name, deal_id, deal_name, amount_cents, stage_id, stage_name"
Q5_PG = ("{ allTerritories(first: 20, orderBy: [NAME_ASC, ID_ASC]) { nodes { id name "
         "repsByTerritoryId(orderBy: [NAME_ASC, ID_ASC]) { nodes { id name "
         "dealsByOwnerId(first: 10, orderBy: [UPDATED_AT_DESC, ID_DESC]) { nodes { id name amountCents "
         "stageByStageId { id name } } } } } } } }")

PS_OURS_SEL = ("pipelineSummary(period: $p, groupBy: TERRITORY) { key { id label } openDeals pipelineValue "
               "weightedPipeline avgDealSize avgSalesCycleDays medianSalesCycleDays winRate }")
assert PS_OURS_SEL in PIPELINE["query"]
PS_SQL = PIPELINE["sql"]
PS_COLS = "tid, name, open_deals, pipe_cents, weighted, avg_deal, avg_cycle, median_cycle, win_rate"
PS_FN = ("SELECT x.tid::bigint, x.name::text, x.open_deals::bigint, x.pipe_cents::numeric / 100, x.weighted::numeric, "
         "x.avg_deal::numeric, x.avg_cycle::float8, x.median_cycle::float8, x.win_rate::float8 "
         f"FROM ({PS_SQL}) x({PS_COLS})")
PS_FN_RET = ("territory_id bigint, territory_name text, open_deals bigint, pipeline_value numeric, weighted_pipeline numeric, "
             "avg_deal_size numeric, avg_sales_cycle_days float8, median_sales_cycle_days float8, win_rate float8")
PS_PGF_SEL = ("vpPipelineSummary { nodes { territoryId territoryName openDeals pipelineValue weightedPipeline avgDealSize "
              "avgSalesCycleDays medianSalesCycleDays winRate } }")

# The dashboard: the four selections of Q2, Q4, Q3 and the pipeline summary
# in one document.
VP_OURS = (
    "query($wp: Period!, $ap: Period!, $fp: Period!, $p: Period!) { "
    "winRates(period: $wp, groupBy: REP) { key { id label } won lost winRate wonAmount lostAmount amountWinRate } "
    "quotaAttainment(period: $ap) { rows { rep { id name } quota closedWon attainment } } "
    "forecast(period: $fp, method: STAGE_WEIGHTED, groupBy: TERRITORY) { method period asOf amount closedWon projected low high "
    "rows { key { dimension id label } amount closedWon projected dealCount } } "
    f"{PS_OURS_SEL} }}"
)
VP_VARS = {"wp": Q2_VARS["p"], "ap": Q4_VARS["p"], "fp": Q3_VARS["p"], "p": PIPELINE["variables"]["p"]}
assert Q3_VARS == {"p": MONTH, "m": "STAGE_WEIGHTED", "g": "TERRITORY"}
assert "winRates(period: $p, groupBy: REP) { key { id label } won lost winRate wonAmount lostAmount amountWinRate }" in Q2_OURS
assert "amount closedWon projected low high" in FORECAST and "rows { key { dimension id label } amount closedWon projected dealCount }" in FORECAST
assert PIPELINE["variables"] == {"p": Q3} and Q2_VARS == {"p": Q3}

FUNCTIONS = {
    "q2_win_rates": (Q2_FN_RET, Q2_FN),
    "q3_forecast": (Q3_FN_RET, Q3_FN),
    "q4_attainment": (Q4_FN_RET, Q4_FN),
    "vp_pipeline_summary": (PS_FN_RET, PS_FN),
}


def question(qid, label, ours, variables, raw, pg=None, pgf=None):
    # The aggregates (Q2-Q4, VP) read rollups; Q1 and Q5 read deals either way.
    return dict(id=qid, label=label, ours=ours, vars=variables, raw=raw, pg=pg, pgf=pgf,
                scan=qid in ("Q2", "Q3", "Q4", "VP"))


QUESTIONS = [
    question("Q1", "Q1 deal page of 50 with owner and account", Q1_OURS, {}, [(Q1_SQL, Q1_COLS)], pg=Q1_PG),
    question("Q2", "Q2 win rate per rep, quarter", Q2_OURS, Q2_VARS, [(Q2_SQL, Q2_COLS)], pgf="{ " + Q2_PGF_SEL + " }"),
    question("Q3", "Q3 stage-weighted forecast per territory", Q3_OURS, Q3_VARS, [(Q3_SQL, Q3_COLS)], pgf="{ " + Q3_PGF_SEL + " }"),
    question("Q4", "Q4 quota attainment per rep", Q4_OURS, Q4_VARS, [(Q4_SQL, Q4_COLS)], pgf="{ " + Q4_PGF_SEL + " }"),
    question("Q5", "Q5 territories > reps > 10 deals > stage", Q5_OURS, {}, [(Q5_SQL, Q5_COLS)], pg=Q5_PG),
    question("VP", "VP dashboard in one document", VP_OURS, VP_VARS, [(Q2_SQL, Q2_COLS), (Q4_SQL, Q4_COLS), (Q3_SQL, Q3_COLS), (PS_SQL, PS_COLS)],
             pgf="{ " + " ".join([Q2_PGF_SEL, Q4_PGF_SEL, Q3_PGF_SEL, PS_PGF_SEL]) + " }"),
]

# ---------------------------------------------------------------------------
# Answers in one canonical form per question, so the systems compare.


def dec(v):
    """Money or another exact number from JSON (string or number)."""
    return None if v is None else Decimal(str(v))


def cents(v):
    return None if v is None else Decimal(int(v)) / 100


def flt(v):
    return None if v is None else float(v)


def canon_q1_ours(d):
    return [(int(n["id"]), n["name"], dec(n["amount"]), int(n["owner"]["id"]), n["owner"]["name"],
             int(n["account"]["id"]) if n["account"] else None, n["account"]["name"] if n["account"] else None)
            for n in d["deals"]["nodes"]]


def canon_q1_raw(rows):
    return [(r["id"], r["name"], cents(r["amount_cents"]), r["owner_id"], r["owner_name"], r["account_id"], r["account_name"])
            for r in rows]


def canon_q1_pg(d):
    return [(int(n["id"]), n["name"], cents(n["amountCents"]), int(n["repByOwnerId"]["id"]), n["repByOwnerId"]["name"],
             int(n["accountByAccountId"]["id"]) if n["accountByAccountId"] else None,
             n["accountByAccountId"]["name"] if n["accountByAccountId"] else None)
            for n in d["allDeals"]["nodes"]]


def ratio(a, b):
    return None if not b else float(a) / float(b)


def canon_q2_ours(d):
    return sorted((int(r["key"]["id"]), r["key"]["label"], r["won"], r["lost"], flt(r["winRate"]), dec(r["wonAmount"]),
                   dec(r["lostAmount"]), flt(r["amountWinRate"])) for r in d["winRates"])


def canon_q2_raw(rows):
    return sorted((r["rep_id"], r["rep_name"], r["won"], r["lost"], ratio(r["won"], r["won"] + r["lost"]),
                   cents(r["won_cents"]), cents(r["lost_cents"]), ratio(r["won_cents"], r["won_cents"] + r["lost_cents"]))
                  for r in rows)


def canon_q2_pgf(d):
    return sorted((int(n["repId"]), n["repName"], int(n["won"]), int(n["lost"]), flt(n["winRate"]), dec(n["wonAmount"]),
                   dec(n["lostAmount"]), flt(n["amountWinRate"])) for n in d["q2WinRates"]["nodes"])


def canon_q3_ours(d):
    f = d["forecast"]
    total = ("TOTAL", dec(f["amount"]), dec(f["closedWon"]), dec(f["projected"]), None, dec(f["low"]), dec(f["high"]))
    rows = [(r["key"]["label"], dec(r["amount"]), dec(r["closedWon"]), dec(r["projected"]), r["dealCount"], None, None)
            for r in f["rows"]]
    return [total] + sorted(rows, key=lambda r: r[0])


def _canon_q3_rows(rows):
    total = [r for r in rows if r[0] == "TOTAL"]
    if len(total) != 1:
        return [("no TOTAL row",)]
    t = total[0]
    out = [("TOTAL", t[1], t[2], t[3], None, t[5], t[6])]
    out += sorted((r[0], r[1], r[2], r[3], r[4], None, None) for r in rows if r[0] != "TOTAL")
    return out


def canon_q3_raw(rows):
    return _canon_q3_rows([(r["label"], dec(r["amount"]), dec(r["closed_won"]), dec(r["projected"]), r["deals"],
                            dec(r["low"]), dec(r["high"])) for r in rows])


def canon_q3_pgf(d):
    return _canon_q3_rows([(n["label"], dec(n["amount"]), dec(n["closedWon"]), dec(n["projected"]), int(n["deals"]),
                            dec(n["low"]), dec(n["high"])) for n in d["q3Forecast"]["nodes"]])


def canon_q4_ours(d):
    return [(int(r["rep"]["id"]), r["rep"]["name"], dec(r["quota"]), dec(r["closedWon"]), flt(r["attainment"]))
            for r in d["quotaAttainment"]["rows"]]


def canon_q4_raw(rows):
    return [(r["rep_id"], r["rep_name"], cents(r["quota_cents"]), cents(r["won_cents"]), flt(r["attainment"])) for r in rows]


def canon_q4_pgf(d):
    return [(int(n["repId"]), n["repName"], dec(n["quota"]), dec(n["closedWon"]), flt(n["attainment"]))
            for n in d["q4Attainment"]["nodes"]]


def canon_q5_ours(d):
    return [(int(t["id"]), t["name"], [(int(r["id"]), r["name"], [
        (int(x["id"]), x["name"], dec(x["amount"]), int(x["stage"]["id"]), x["stage"]["name"])
        for x in r["deals"]["nodes"]]) for r in t["reps"]]) for t in d["territories"]]


def canon_q5_raw(rows):
    out, terr, rep = [], None, None
    for r in rows:
        if terr is None or terr[0] != r["territory_id"]:
            terr = (r["territory_id"], r["territory_name"], [])
            out.append(terr)
            rep = None
        if r["rep_id"] is None:
            continue
        if rep is None or rep[0] != r["rep_id"]:
            rep = (r["rep_id"], r["rep_name"], [])
            terr[2].append(rep)
        if r["deal_id"] is not None:
            rep[2].append((r["deal_id"], r["deal_name"], cents(r["amount_cents"]), r["stage_id"], r["stage_name"]))
    return out


def canon_q5_pg(d):
    return [(int(t["id"]), t["name"], [(int(r["id"]), r["name"], [
        (int(x["id"]), x["name"], cents(x["amountCents"]), int(x["stageByStageId"]["id"]), x["stageByStageId"]["name"])
        for x in r["dealsByOwnerId"]["nodes"]]) for r in t["repsByTerritoryId"]["nodes"]]) for t in d["allTerritories"]["nodes"]]


def canon_ps_ours(d):
    return sorted((int(r["key"]["id"]) if r["key"]["id"] else None, r["key"]["label"], r["openDeals"], dec(r["pipelineValue"]),
                   dec(r["weightedPipeline"]), dec(r["avgDealSize"]), flt(r["avgSalesCycleDays"]),
                   flt(r["medianSalesCycleDays"]), flt(r["winRate"])) for r in d["pipelineSummary"])


def canon_ps_raw(rows):
    return sorted((r["tid"], r["name"], r["open_deals"], cents(r["pipe_cents"]), dec(r["weighted"]), dec(r["avg_deal"]),
                   flt(r["avg_cycle"]), flt(r["median_cycle"]), flt(r["win_rate"])) for r in rows)


def canon_ps_pgf(d):
    return sorted((int(n["territoryId"]) if n["territoryId"] else None, n["territoryName"], int(n["openDeals"]),
                   dec(n["pipelineValue"]), dec(n["weightedPipeline"]), dec(n["avgDealSize"]), flt(n["avgSalesCycleDays"]),
                   flt(n["medianSalesCycleDays"]), flt(n["winRate"])) for n in d["vpPipelineSummary"]["nodes"])


CANON = {
    "Q1": dict(ours=canon_q1_ours, raw=lambda rs: canon_q1_raw(rs[0]), pg=canon_q1_pg),
    "Q2": dict(ours=canon_q2_ours, raw=lambda rs: canon_q2_raw(rs[0]), pgf=canon_q2_pgf),
    "Q3": dict(ours=canon_q3_ours, raw=lambda rs: canon_q3_raw(rs[0]), pgf=canon_q3_pgf),
    "Q4": dict(ours=canon_q4_ours, raw=lambda rs: canon_q4_raw(rs[0]), pgf=canon_q4_pgf),
    "Q5": dict(ours=canon_q5_ours, raw=lambda rs: canon_q5_raw(rs[0]), pg=canon_q5_pg),
    "VP": dict(
        ours=lambda d: (canon_q2_ours(d), canon_q4_ours(d), canon_q3_ours(d), canon_ps_ours(d)),
        raw=lambda rs: (canon_q2_raw(rs[0]), canon_q4_raw(rs[1]), canon_q3_raw(rs[2]), canon_ps_raw(rs[3])),
        pgf=lambda d: (canon_q2_pgf(d), canon_q4_pgf(d), canon_q3_pgf(d), canon_ps_pgf(d)),
    ),
}


def differences(a, b, path="", out=None):
    """Where two canonical answers differ: exact for text, integers and
    Decimal money; floats (ratios, day averages) to 1e-9 relative. The
    forecast's low/high are the only money computed in floating point on
    both sides (docs/design.md, Forecasts): they compare to the cent."""
    out = [] if out is None else out
    if len(out) > 5:
        return out
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            out.append(f"{path}: {len(a)} items vs {len(b)}")
            return out
        for i, (x, y) in enumerate(zip(a, b)):
            differences(x, y, f"{path}[{i}]", out)
    elif isinstance(a, float) or isinstance(b, float):
        if a is None or b is None or not math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12):
            out.append(f"{path}: {a!r} vs {b!r}")
    elif a != b:
        out.append(f"{path}: {a!r} vs {b!r}")
    return out


def low_high_to_the_cent(a, b):
    """Q3 answers with low/high rounded to the cent on both sides may still
    differ by the last cent (floating point on both sides): compare those two
    within 0.01 and blank them for the exact comparison."""
    def strip(ans):
        t = ans[0]
        return [t[:5] + (None, None)] + list(ans[1:]), (t[5], t[6])
    (a2, a_lh), (b2, b_lh) = strip(a), strip(b)
    bad = [f"low/high {a_lh} vs {b_lh}" for x, y in zip(a_lh, b_lh)
           if x is None or y is None or abs(x - y) > Decimal("0.01")][:1]
    return a2, b2, bad


def compare(qid, a, b):
    if qid == "Q3":
        a, b, bad = low_high_to_the_cent(a, b)
        return bad + differences(a, b)
    if qid == "VP":
        out = []
        for i, part in enumerate(["winRates", "quotaAttainment", "forecast", "pipelineSummary"]):
            if part == "forecast":
                x, y, bad = low_high_to_the_cent(a[i], b[i])
                out += [f"{part}: {m}" for m in bad + differences(x, y)]
            else:
                out += [f"{part}: {m}" for m in differences(a[i], b[i])]
        return out
    return differences(a, b)

# ---------------------------------------------------------------------------
# Running things.


def psql_json(url, sql, cols):
    """Rows of one statement as dicts (keys: cols), numbers exact (Decimal)."""
    out = load.sh(["psql", url, "-AtX", "-v", "ON_ERROR_STOP=1", "-c",
                   f"SELECT COALESCE(json_agg(x), '[]') FROM ({sql.strip().rstrip(';')}) x({cols})"])
    return json.loads(out, parse_float=Decimal)


def post(url, query, variables=None, token=None, timeout=600, scan=False):
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if scan:
        name, value = SCAN_HEADER.split(": ")
        headers[name] = value
    req = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            out = json.loads(res.read(), parse_float=Decimal)
    except urllib.error.HTTPError as e:
        out = json.loads(e.read() or b"{}")
    if out.get("errors") or "data" not in out:
        sys.exit(f"GraphQL errors from {url} for {query[:100]}...: {json.dumps(out.get('errors'), default=str)[:2000]}")
    return out["data"]


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, proc, what, seconds=180):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode} before answering")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answers (e.g. 405 for GET /graphql)
        except OSError:
            time.sleep(0.3)
    sys.exit(f"{what} did not answer {url} within {seconds}s")


def vm(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


class RssSampler(threading.Thread):
    """VmRSS of a process every 100 ms; the peak of the current window."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0.0, False

    def run(self):
        while not self.stop:
            r = vm(self.pid, "VmRSS")
            if not math.isnan(r):
                self.peak = max(self.peak, r)
            time.sleep(0.1)

    def take(self):
        p, self.peak = self.peak, 0.0
        return p


# ---------------------------------------------------------------------------
# The HTTP load generator: N keep-alive connections, closed loop.


async def _read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    m = re.search(rb"\r\ncontent-length:\s*(\d+)", lower)
    if m:
        body = await reader.readexactly(int(m.group(1)))
    elif b"transfer-encoding: chunked" in lower:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(parts)
    else:
        raise RuntimeError("response without length")
    return status, body


async def _client(port, request, deadline, lat, errors):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            writer.write(request)
            status, body = await _read_response(reader)
            t1 = time.monotonic()
            lat.append(t1 - t0)
            if status != 200 or b'"errors"' in body:
                errors.append(body[:300])
    finally:
        writer.close()


async def _load(port, request, clients, seconds):
    lat, errors = [], []
    start = time.monotonic()
    await asyncio.gather(*[_client(port, request, start + seconds, lat, errors) for _ in range(clients)])
    return lat, errors, time.monotonic() - start


WRK_SCRIPT = r"""
wrk.method = "POST"
wrk.body = os.getenv("PEERS_BODY")
for k, v in string.gmatch(os.getenv("PEERS_HEADERS"), "([^\n:]+): ([^\n]*)") do wrk.headers[k] = v end
bad = 0
first_bad = ""
response = function(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then
    if bad == 0 then first_bad = string.sub(body, 1, 300) end
    bad = bad + 1
  end
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
  local n_bad, sample = 0, ""
  for _, t in ipairs(threads) do
    n_bad = n_bad + t:get("bad")
    if sample == "" then sample = t:get("first_bad") end
  end
  local e = summary.errors
  io.write(string.format("PEERS %d %d %.3f %d %d\n", summary.requests, summary.duration,
    latency:percentile(50) / 1000, n_bad, e.connect + e.read + e.write + e.status + e.timeout))
  io.write("PEERS_SAMPLE " .. sample .. "\n")
end
"""


def wrk_load(port, path, body, headers, clients, seconds):
    """The same closed loop as the asyncio client, from wrk (C): one thread,
    one keep-alive connection per client, so the load generator takes little
    of the 2 cores it shares with the server and the database (pgbench is C
    too). (requests/s, p50 ms, load generator CPU share of one core)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT)
        script = f.name
    env = dict(os.environ, PEERS_BODY=body.decode(), PEERS_HEADERS="\n".join(f"{k}: {v}" for k, v in headers))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    res = subprocess.run(["wrk", "-t1", f"-c{clients}", f"-d{seconds}s", "--timeout", "300s", "-s", script,
                          f"http://127.0.0.1:{port}{path}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, env=env)
    elapsed = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    os.unlink(script)
    m = re.search(r"^PEERS (\d+) (\d+) ([\d.]+) (\d+) (\d+)$", res.stdout, re.M)
    if res.returncode != 0 or m is None:
        sys.exit(f"wrk failed:\n{res.stdout[-3000:]}")
    requests, micros, p50, bad, errors = int(m[1]), int(m[2]), float(m[3]), int(m[4]), int(m[5])
    if bad or errors:
        sample = re.search(r"^PEERS_SAMPLE (.*)$", res.stdout, re.M)
        sys.exit(f"{bad + errors} failed requests on port {port}, e.g. {sample[1] if sample else ''!r}")
    cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / elapsed
    return requests / (micros / 1e6), p50, cpu


def http_load(port, path, query, variables, token, clients, seconds, scan=False):
    """(requests/s, p50 ms, load generator CPU share of one core)."""
    body = json.dumps({"query": query, "variables": variables}).encode()
    if LOAD_GENERATOR == "wrk":
        headers = [("Content-Type", "application/json")]
        if token:
            headers.append(("Authorization", f"Bearer {token}"))
        if scan:
            headers.append(tuple(SCAN_HEADER.split(": ", 1)))
        return wrk_load(port, path, body, headers, clients, seconds)
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n")
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    if scan:
        head += f"{SCAN_HEADER}\r\n"
    request = head.encode() + b"\r\n" + body
    cpu0 = time.process_time()
    lat, errors, elapsed = asyncio.run(_load(port, request, clients, seconds))
    cpu = (time.process_time() - cpu0) / elapsed
    if errors:
        sys.exit(f"{len(errors)} failed requests on port {port}, e.g. {errors[0]!r}")
    return len(lat) / elapsed, statistics.median(lat) * 1000, cpu


def pgbench(url, statements, clients, seconds):
    """(transactions/s, p50 ms) of a script of the statements, one after another."""
    tmp = tempfile.mkdtemp(prefix="peers_pgbench_")
    script = os.path.join(tmp, "q.sql")
    with open(script, "w") as f:
        for s in statements:
            f.write(s.strip().rstrip(";") + ";\n")
    res = subprocess.run(["pgbench", "-n", "-M", "prepared", "-f", script, "-c", str(clients), "-j", str(clients),
                          "-T", str(seconds), "-l", "--log-prefix", os.path.join(tmp, "log"), url],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = res.stdout
    m = re.search(r"tps = ([\d.]+)", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    if res.returncode != 0 or m is None or (failed and int(failed.group(1)) > 0):
        sys.exit(f"pgbench failed:\n{out[-3000:]}")
    lat = []
    for name in os.listdir(tmp):
        if name.startswith("log"):
            with open(os.path.join(tmp, name)) as f:
                lat.extend(int(line.split()[2]) / 1000 for line in f if line.strip())
    shutil.rmtree(tmp)
    return float(m.group(1)), statistics.median(lat) if lat else float("nan")


# ---------------------------------------------------------------------------


def arguments():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default="postgres://postgres@127.0.0.1:5432/salesops_bench",
                    help="a database seeded by `salesops seed --deals N` (read only but for the schema peers_fn)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10, help="per cell (longer at 16 clients for slow questions)")
    ap.add_argument("--clients", default="1,16")
    ap.add_argument("--only", help="question ids, e.g. Q1,Q4,VP")
    ap.add_argument("--load-generator", choices=["wrk", "python"], default=LOAD_GENERATOR,
                    help="HTTP load from wrk (default when installed) or the asyncio client")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 repetition, 3 s per cell")
    ap.add_argument("--out", help="also write the tables (markdown) to this file")
    ap.add_argument("--max-seconds", type=int, default=60, help="cap of a stretched cell")
    ap.add_argument("--pg-workers", type=int, default=1,
                    help="PostGraphile --cluster-workers (default 1: a single node process, as shipped)")
    ap.add_argument("--no-build", action="store_true", help="use target/release/salesops as it is")
    ap.add_argument("--check", action="store_true", help="only compare the answers, measure nothing")
    ap.add_argument("--bin", help="another salesops binary (implies --no-build)")
    args = ap.parse_args()
    if args.quick:
        args.reps, args.seconds = 1, 3
    if args.bin:
        global BIN
        BIN, args.no_build = os.path.abspath(args.bin), True
    return args


def create_functions(url):
    stmts = [f"DROP SCHEMA IF EXISTS {FN_SCHEMA} CASCADE", f"CREATE SCHEMA {FN_SCHEMA}"]
    for name, (ret, body) in FUNCTIONS.items():
        stmts.append(f"CREATE FUNCTION {FN_SCHEMA}.{name}() RETURNS TABLE ({ret}) LANGUAGE sql STABLE AS $fn$ {body} $fn$")
    load.sh(["psql", url, "-qAtX", "-v", "ON_ERROR_STOP=1", "-1", "-c", ";\n".join(stmts)])


def drop_functions(url):
    load.sh(["psql", url, "-qAtX", "-c", f"DROP SCHEMA IF EXISTS {FN_SCHEMA} CASCADE"], check=False)


def table_writes(url):
    """Rows inserted, updated or deleted in the public tables so far (statistics)."""
    return int(load.psql(url, "SELECT COALESCE(SUM(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables "
                              "WHERE schemaname = 'public'") or 0)


def fmt_rate(v):
    if v is None:
        return "-"
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def main():
    global LOAD_GENERATOR
    args = arguments()
    LOAD_GENERATOR = args.load_generator
    clients = [int(c) for c in args.clients.split(",")]
    questions = QUESTIONS
    if args.only:
        wanted = [w.strip().upper() for w in args.only.split(",")]
        questions = [q for q in QUESTIONS if q["id"] in wanted]
        if len(questions) != len(wanted):
            sys.exit(f"--only takes ids among {', '.join(q['id'] for q in QUESTIONS)}")
    for tool in ("psql", "pgbench", "node", "npm"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is needed")

    if not args.no_build:
        print("== cargo build --release -p api", flush=True)
        load.sh(["cargo", "build", "--release", "-q", "-p", "api"], capture=False)
    if not os.path.exists(os.path.join(PEERS_DIR, "node_modules", ".bin", "postgraphile")):
        print("== npm ci in bench/peers", flush=True)
        load.sh(["npm", "ci", "--no-audit", "--no-fund", "--prefix", PEERS_DIR])
    pg_version = load.sh(["node", os.path.join(PEERS_DIR, "node_modules", ".bin", "postgraphile"), "--version"]).strip()

    deals = int(load.psql(args.db, "SELECT COUNT(*) FROM deal"))
    writes_before = table_writes(args.db)
    ours_port, pg_port = free_port(), free_port()
    env = dict(os.environ, SALESOPS_DATABASE_URL=args.db, SALESOPS_JWT_SECRET=load.SECRET,
               SALESOPS_BIND=f"127.0.0.1:{ours_port}", RUST_LOG="warn", SALESOPS_WEBHOOK_WORKER="false",
               # As bench/load.py: under 16 clients of multi-second documents a
               # request waits for a pooled connection instead of failing after
               # 5 s; no statement timeout. Pool and everything else: defaults.
               SALESOPS_DB_ACQUIRE_TIMEOUT_MS="300000", SALESOPS_STATEMENT_TIMEOUT_MS="0")
    for k in ("SALESOPS_DB_MAX_CONNECTIONS", "SALESOPS_MAX_HEAVY_PER_REQUEST"):
        env.pop(k, None)
    pool = 16  # SALESOPS_DB_MAX_CONNECTIONS default (core/src/config.rs)
    procs = {}
    create_functions(args.db)
    try:
        procs["ours"] = subprocess.Popen([BIN, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pg_cmd = ["node", os.path.join(PEERS_DIR, "node_modules", ".bin", "postgraphile"), "-c", args.db,
                  "--schema", f"public,{FN_SCHEMA}", "--host", "127.0.0.1", "--port", str(pg_port),
                  "--disable-graphiql", "--disable-query-log"]
        if args.pg_workers > 1:
            pg_cmd += ["--cluster-workers", str(args.pg_workers)]
        pg_log = open(os.path.join(tempfile.gettempdir(), "peers_postgraphile.log"), "w")
        procs["pg"] = subprocess.Popen(pg_cmd, stdout=pg_log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_http(f"http://127.0.0.1:{ours_port}/readyz", procs["ours"], "salesops serve")
        wait_http(f"http://127.0.0.1:{pg_port}/graphql", procs["pg"], "postgraphile")
        token = load.sh([BIN, "token", "--role", "ADMIN", "--sub", "bench-peers", "--ttl", "8h"], env=env).strip()
        ours_url, pg_url = f"http://127.0.0.1:{ours_port}/graphql", f"http://127.0.0.1:{pg_port}/graphql"
        print(f"== {deals:,} deals; ours pid {procs['ours'].pid} on :{ours_port} (pool {pool}); "
              f"PostGraphile {pg_version} pid {procs['pg'].pid} on :{pg_port} (pool 10, workers {args.pg_workers})",
              flush=True)

        # Verify every question once, and count our statements per request.
        stmts = {}
        for q in questions:
            c = CANON[q["id"]]
            before = load.statements(f"http://127.0.0.1:{ours_port}")
            ours = c["ours"](post(ours_url, q["ours"], q["vars"], token))
            stmts[q["id"]] = load.statements(f"http://127.0.0.1:{ours_port}") - before
            answers = {"raw": c["raw"]([psql_json(args.db, s, cols) for s, cols in q["raw"]])}
            if q["scan"]:
                answers["scan"] = c["ours"](post(ours_url, q["ours"], q["vars"], token, scan=True))
            for sys_name in ("pg", "pgf"):
                if q[sys_name]:
                    answers[sys_name] = c[sys_name](post(pg_url, q[sys_name]))
            if not ours or (q["id"] == "Q5" and not any(t[2] for t in ours)):
                sys.exit(f"{q['id']}: our answer is empty; is the database seeded?")
            for sys_name, ans in answers.items():
                diff = compare(q["id"], ours, ans)
                if diff:
                    print(f"!!! MISMATCH {q['id']} ours vs {sys_name}:", file=sys.stderr)
                    for d in diff:
                        print(f"!!!   {d}", file=sys.stderr)
                    sys.exit(1)
            print(f"   {q['id']} answers agree: ours = {' = '.join(answers)} ({stmts[q['id']]} statements per request of ours)",
                  flush=True)

        if args.check:
            return
        sampler = RssSampler(procs["ours"].pid)
        sampler.start()
        results = {}  # (rep, clients, qid, system) -> (rps, p50 ms, seconds)
        rss = {}  # (rep, clients) -> peak VmRSS while ours ran
        started = time.time()
        for rep in range(1, args.reps + 1):
            for q in questions:
                for n in clients:
                    systems = [s for s in SYSTEMS if s in ("raw", "ours") or q[s]]
                    # Rotate the order each repetition so no system always goes first.
                    k = (rep - 1) % len(systems)
                    systems = systems[k:] + systems[:k]
                    secs = args.seconds
                    if n > 1 and (rep, 1, q["id"], "raw") in results:
                        # Long enough for every client to finish a few requests.
                        slowest = max(v[1] for key, v in results.items() if key[:3] == (rep, 1, q["id"]))
                        secs = int(min(args.max_seconds, max(args.seconds, 3 * slowest / 1000 * n / os.cpu_count())))
                    for s in systems:
                        if s == "raw":
                            rps, p50 = pgbench(args.db, [sql for sql, _ in q["raw"]], n, secs)
                            note = ""
                        else:
                            mine = s in ("ours", "scan")
                            port = ours_port if mine else pg_port
                            query = q["ours"] if mine else q[s]
                            sampler.take()
                            rps, p50, cpu = http_load(port, "/graphql", query, q["vars"] if mine else {},
                                                      token if mine else None, n, secs, scan=s == "scan")
                            note = f" (load generator {cpu * 100:.0f}% of a core)"
                            if mine:
                                rss[(rep, n)] = max(rss.get((rep, n), 0.0), sampler.take())
                        results[(rep, n, q["id"], s)] = (rps, p50, secs)
                        print(f"   rep {rep} {q['id']} {s:4} @{n:<2} {secs:>3}s: {rps:9.2f}/s p50 {p50:9.2f} ms{note}", flush=True)
            print(f"   rep {rep} done after {(time.time() - started) / 60:.1f} min; our server's VmHWM "
                  f"{vm(procs['ours'].pid, 'VmHWM'):.0f} MB", flush=True)
        sampler.stop = True
        hwm = {"ours": vm(procs["ours"].pid, "VmHWM")}
        pg_children = load.sh(["pgrep", "-P", str(procs["pg"].pid)], check=False).split()
        hwm["pg"] = max([vm(procs["pg"].pid, "VmHWM")] + [vm(int(c), "VmHWM") for c in pg_children])
    finally:
        for name, p in procs.items():
            if p.poll() is None:
                if name == "pg":
                    os.killpg(p.pid, signal.SIGTERM)
                else:
                    p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
        drop_functions(args.db)
    writes = table_writes(args.db) - writes_before
    total_min = (time.time() - started) / 60

    lines = render(args, questions, clients, results, rss, stmts, hwm, deals, pool, pg_version, total_min, writes)
    text = "\n".join(lines)
    print("\n" + text)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text + "\n")
        print(f"\n(written to {args.out})")


def render(args, questions, clients, results, rss, stmts, hwm, deals, pool, pg_version, total_min, writes):
    reps = range(1, args.reps + 1)

    def cell(fn):
        vals = [fn(r) for r in reps]
        return "-" if all(v is None for v in vals) else " / ".join("-" if v is None else v for v in vals)

    def rps(r, n, qid, s):
        v = results.get((r, n, qid, s))
        return None if v is None else v[0]

    def best_pg(r, n, qid):
        vals = [v for v in (rps(r, n, qid, "pg"), rps(r, n, qid, "pgf")) if v is not None]
        return max(vals) if vals else None

    def r2(x):
        return None if x is None else f"{x:.2f}"

    head = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = [f"# bench/peers.py: {deals:,} deals, {args.reps} repetition(s), {args.seconds} s per cell ({head})", ""]
    for n in clients:
        out += [f"## {n} client{'s' if n > 1 else ''}: requests/s (repetitions separated by /)", "",
                "| question | raw | pg | pgf | ours, scan | ours | ours/raw | ours, scan/raw | ours/best PostGraphile |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for q in questions:
            qid = q["id"]
            row = [q["label"]]
            row += [cell(lambda r, s=s: None if rps(r, n, qid, s) is None else fmt_rate(rps(r, n, qid, s))) for s in SYSTEMS]
            row.append(cell(lambda r: r2(rps(r, n, qid, "ours") / rps(r, n, qid, "raw"))))
            row.append(cell(lambda r: None if rps(r, n, qid, "scan") is None
                            else r2(rps(r, n, qid, "scan") / rps(r, n, qid, "raw"))))
            row.append(cell(lambda r: None if best_pg(r, n, qid) is None else r2(rps(r, n, qid, "ours") / best_pg(r, n, qid))))
            out.append("| " + " | ".join(row) + " |")
        out += ["", f"p50 latency in ms at {n} client{'s' if n > 1 else ''} (and seconds per cell):", "",
                "| question | raw | pg | pgf | ours, scan | ours | seconds |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for q in questions:
            qid = q["id"]
            row = [qid]
            for s in SYSTEMS:
                row.append(cell(lambda r, s=s: None if (r, n, qid, s) not in results else f"{results[(r, n, qid, s)][1]:.1f}"))
            row.append(cell(lambda r: None if (r, n, qid, "ours") not in results else str(results[(r, n, qid, "ours")][2])))
            out.append("| " + " | ".join(row) + " |")
        out += [""]
    peaks = " / ".join(f"{rss.get((r, max(clients)), float('nan')):.0f}" for r in reps)
    out += [
        f"Our server's peak RSS while it served {max(clients)} clients, per repetition: {peaks} MB; "
        f"VmHWM at the end {hwm['ours']:.0f} MB (PostGraphile's node: {hwm['pg']:.0f} MB).",
        f"SQL statements per request of ours: " + ", ".join(f"{q['id']} {stmts[q['id']]}" for q in questions) + ".",
        f"raw = the hand-written SQL through pgbench -M prepared -c N -j N; pg = PostGraphile {pg_version} generic "
        f"schema (\"-\": it cannot express the aggregate); pgf = PostGraphile calling one SQL function per question "
        f"(schema {FN_SCHEMA}); ours = salesops serve, default settings (pool {pool}), release build, reading its "
        f"rollups; ours, scan = the same server asked with `{SCAN_HEADER}` (every metric scans the deals). PostGraphile: "
        f"default pool (10), --cluster-workers {args.pg_workers if args.pg_workers > 1 else 'off'}. HTTP load from "
        f"{'wrk (one thread, keep-alive)' if args.load_generator == 'wrk' else 'the asyncio client'}.",
        f"Whole measurement {total_min:.0f} min on {os.cpu_count()} cores; rows written to the database's public tables "
        f"during the run (pg_stat_user_tables, any client): {writes}.",
    ]
    return out


if __name__ == "__main__":
    main()
