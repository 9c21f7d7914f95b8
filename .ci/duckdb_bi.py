#!/usr/bin/env python3
"""A real BI client against a running server (issue 16): DuckDB loads the CSV
exports of deals, stage changes and stages over HTTP with a bearer token,
recomputes two answers from the raw rows in DuckDB SQL, and compares them
with the API's, money to the cent:

- winRates by REP for the current quarter: won and lost counts, wonAmount,
  lostAmount and the ratios, per owner, of the deals closed in the quarter;
- forecast STAGE_WEIGHTED by TERRITORY for the current quarter as of today:
  closedWon (deals won in the quarter) + the open deals expected in the
  quarter (their expected close date, else opened_at + the average won
  cycle of the 365 days ending today, whole days rounded half up) times
  the probability of the stage they are in, which is read from the stage
  changes export (the last change of each deal), rounded to cents once.

    python3 .ci/duckdb_bi.py http://127.0.0.1:8080 "$TOKEN"

Exit 0 when every number matches, 1 otherwise.
"""
import datetime
import decimal
import json
import os
import sys
import tempfile
import urllib.request

import duckdb

D = decimal.Decimal


def fetch(base, token, path, dest=None):
    req = urllib.request.Request(base + path, headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=120) as res:
        body = res.read()
    if dest:
        with open(dest, "wb") as f:
            f.write(body)
    return body


def graphql(base, token, query, variables):
    req = urllib.request.Request(
        base + "/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=120) as res:
        body = json.loads(res.read())
    if body.get("errors"):
        raise SystemExit(f"GraphQL errors: {body['errors']}")
    return body["data"]


def quarter_of(day):
    q = (day.month - 1) // 3
    start = datetime.date(day.year, 3 * q + 1, 1)
    end = datetime.date(day.year + (q == 3), (3 * q + 3) % 12 + 1, 1)
    return f"{day.year}-Q{q + 1}", start, end


def money(cents):
    """Cents as the API's exact decimal string."""
    return str((D(int(cents)) / 100).quantize(D("0.01")))


def main():
    base, token = sys.argv[1].rstrip("/"), sys.argv[2]
    today = datetime.datetime.now(datetime.timezone.utc).date()
    period, start, end = quarter_of(today)
    work = tempfile.mkdtemp(prefix="duckdb-bi-")
    files = {}
    for name in ("deals", "stage_changes", "stages"):
        files[name] = os.path.join(work, name + ".csv")
        fetch(base, token, f"/export/{name}?format=csv", files[name])
    db = duckdb.connect()
    # Every column as text, typed explicitly: money exact (DECIMAL), instants
    # as UTC timestamps (the export writes ...Z).
    for name, path in files.items():
        db.execute(f"CREATE TABLE raw_{name} AS SELECT * FROM read_csv(?, header = true, all_varchar = true)", [path])
    db.execute("""
        CREATE TABLE deals AS SELECT
            CAST(id AS BIGINT) AS id,
            CAST(owner_id AS BIGINT) AS owner_id,
            CAST(territory_id AS BIGINT) AS territory_id,
            CAST(stage_id AS BIGINT) AS stage_id,
            status,
            CAST(CAST(amount AS DECIMAL(18, 2)) * 100 AS BIGINT) AS cents,
            CAST(rtrim(opened_at, 'Z') AS TIMESTAMP) AS opened_at,
            CAST(rtrim(closed_at, 'Z') AS TIMESTAMP) AS closed_at,
            CAST(expected_close_date AS DATE) AS expected_close_date
        FROM raw_deals""")
    db.execute("""
        CREATE TABLE stage_changes AS SELECT
            CAST(id AS BIGINT) AS id, CAST(deal_id AS BIGINT) AS deal_id,
            CAST(to_stage_id AS BIGINT) AS to_stage_id,
            CAST(rtrim(changed_at, 'Z') AS TIMESTAMP) AS changed_at
        FROM raw_stage_changes""")
    db.execute("""
        CREATE TABLE stages AS SELECT CAST(id AS BIGINT) AS id, name,
            CAST(round(CAST(probability AS DECIMAL(9, 6)) * 1000000) AS BIGINT) AS ppm
        FROM raw_stages""")
    n_deals, n_changes = db.execute(
        "SELECT (SELECT count(*) FROM deals), (SELECT count(*) FROM stage_changes)").fetchone()
    print(f"loaded {n_deals} deals and {n_changes} stage changes; period {period} ({start}..{end}), today {today}")
    failures = []

    # --- winRates by REP -------------------------------------------------
    rows = db.execute("""
        SELECT owner_id,
               count(*) FILTER (WHERE status = 'WON') AS won,
               count(*) FILTER (WHERE status = 'LOST') AS lost,
               coalesce(sum(cents) FILTER (WHERE status = 'WON'), 0) AS won_cents,
               coalesce(sum(cents) FILTER (WHERE status = 'LOST'), 0) AS lost_cents
        FROM deals
        WHERE status IN ('WON', 'LOST') AND closed_at >= ? AND closed_at < ?
        GROUP BY owner_id""", [start, end]).fetchall()
    mine = {str(r[0]): r for r in rows}
    api = graphql(base, token,
                  "query($p: Period!) { winRates(period: $p, groupBy: REP) { key { id } won lost winRate wonAmount lostAmount amountWinRate } }",
                  {"p": period})["winRates"]
    theirs = {r["key"]["id"]: r for r in api}
    if set(mine) != set(theirs):
        failures.append(f"winRates: reps differ: duckdb {sorted(mine)} api {sorted(theirs)}")
    for rep, (owner, won, lost, wc, lc) in mine.items():
        a = theirs.get(rep)
        if a is None:
            continue
        want = {
            "won": won, "lost": lost, "wonAmount": money(wc), "lostAmount": money(lc),
            "winRate": won / (won + lost) if won + lost else None,
            "amountWinRate": wc / (wc + lc) if wc + lc else None,
        }
        for k, v in want.items():
            got = a[k]
            same = (abs(got - v) < 1e-12) if isinstance(v, float) and got is not None else got == v
            if not same:
                failures.append(f"winRates rep {rep} {k}: duckdb {v} api {got}")
    print(f"winRates by REP: {len(mine)} reps compared, won "
          f"{money(sum(r[3] for r in mine.values()))} and lost {money(sum(r[4] for r in mine.values()))}")

    # --- forecast STAGE_WEIGHTED by TERRITORY -----------------------------
    # The average won cycle: deals won in the 365 days ending today, whole
    # UTC days opened -> closed, mean rounded half up.
    cyc_from = today - datetime.timedelta(days=364)
    total, count = db.execute("""
        SELECT coalesce(sum(date_diff('day', CAST(opened_at AS DATE), CAST(closed_at AS DATE))), 0), count(*)
        FROM deals WHERE status = 'WON' AND closed_at >= ? AND closed_at < ?""",
                              [cyc_from, today + datetime.timedelta(days=1)]).fetchone()
    cyc_days = (total * 2 + count) // (count * 2) if count else None
    rows = db.execute("""
        WITH current_stage AS (
            SELECT deal_id, arg_max(to_stage_id, (changed_at, id)) AS stage_id
            FROM stage_changes GROUP BY deal_id),
        expected AS (
            SELECT d.*, cs.stage_id AS stage_from_changes,
                   coalesce(d.expected_close_date,
                            CASE WHEN ? IS NULL THEN NULL
                                 ELSE CAST(d.opened_at AS DATE) + CAST(? AS INTEGER) END) AS exp_close
            FROM deals d LEFT JOIN current_stage cs ON cs.deal_id = d.id)
        SELECT e.territory_id,
               coalesce(sum(e.cents) FILTER (WHERE e.status = 'WON' AND e.closed_at >= ? AND e.closed_at < ?), 0) AS won_cents,
               count(*) FILTER (WHERE e.status = 'WON' AND e.closed_at >= ? AND e.closed_at < ?) AS won_deals,
               coalesce(sum(CAST(e.cents AS HUGEINT) * s.ppm) FILTER (WHERE e.status = 'OPEN' AND e.exp_close >= ? AND e.exp_close < ?), 0) AS open_cents_ppm,
               count(*) FILTER (WHERE e.status = 'OPEN' AND e.exp_close >= ? AND e.exp_close < ?) AS open_deals,
               count(*) FILTER (WHERE e.stage_from_changes IS DISTINCT FROM e.stage_id) AS stage_mismatches
        FROM expected e JOIN stages s ON s.id = e.stage_from_changes
        GROUP BY e.territory_id""",
                      [cyc_days, cyc_days, start, end, start, end, start, end, start, end]).fetchall()
    mine = {}
    for terr, won_cents, won_deals, cents_ppm, open_deals, mismatches in rows:
        if mismatches:
            failures.append(f"territory {terr}: {mismatches} deals whose last stage change is not their stage")
        if won_deals == 0 and open_deals == 0:
            continue
        # cents x ppm / 10^6 = cents, rounded half away from zero (amounts >= 0).
        projected = (int(cents_ppm) * 2 + 1_000_000) // 2_000_000
        mine[None if terr is None else str(terr)] = (won_cents, projected, won_deals + open_deals)
    api = graphql(base, token,
                  "query($p: Period!) { forecast(period: $p, method: STAGE_WEIGHTED, groupBy: TERRITORY) { rows { key { id label } amount closedWon projected dealCount } } }",
                  {"p": period})["forecast"]["rows"]
    theirs = {r["key"]["id"]: r for r in api}
    if set(mine) != set(theirs):
        failures.append(f"forecast: territories differ: duckdb {sorted(map(str, mine))} api {sorted(map(str, theirs))}")
    for terr, (won_cents, projected, deals) in mine.items():
        a = theirs.get(terr)
        if a is None:
            continue
        want = {"closedWon": money(won_cents), "projected": money(projected),
                "amount": money(won_cents + projected), "dealCount": deals}
        for k, v in want.items():
            if a[k] != v:
                failures.append(f"forecast territory {terr} ({a['key']['label']}) {k}: duckdb {v} api {a[k]}")
    print(f"forecast STAGE_WEIGHTED by TERRITORY: {len(mine)} territories compared, amount "
          f"{money(sum(w + p for w, p, _ in mine.values()))} "
          f"(average won cycle {cyc_days} days over {count} deals)")

    for f in failures:
        print("MISMATCH:", f)
    if failures:
        return 1
    print("DuckDB reproduces the API to the cent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
