"""Deal-history benchmark cases (docs/design.md, Deal history): each GraphQL
request (as ADMIN) beside ONE hand-written PostgreSQL statement answering
the same question on the same tables (see bench/asof_sql.py for how the
state of the deals at the end of a day is read from deal_revision).

- STAGE_WEIGHTED for the current quarter as of 14 days ago;
- pipelineChanges over the last week for the current quarter;
- forecastTrend of 13 weekly points (STAGE_WEIGHTED, current quarter).

Dates derive from today (UTC), so the statements stay valid on any day.
"""

import datetime as _dt
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from asof_sql import _ts, asks, cycle, expected, stage_weighted_sql, state  # noqa: E402

TODAY = _dt.datetime.now(_dt.timezone.utc).date()
_QM = (TODAY.month - 1) // 3 * 3 + 1
Q_START = _dt.date(TODAY.year, _QM, 1)
Q_END = _dt.date(TODAY.year + (_QM + 3 > 12), (_QM + 3 - 1) % 12 + 1, 1)
QUARTER = f"{TODAY.year}-Q{(_QM - 1) // 3 + 1}"
PAST = TODAY - _dt.timedelta(days=14)
WEEK_FROM = TODAY - _dt.timedelta(days=7)
# 13 weekly points: the Sundays of the 12 ISO weeks before this one, and today.
TREND_FROM = TODAY - _dt.timedelta(days=TODAY.weekday()) - _dt.timedelta(weeks=12)
TREND_DAYS = [TREND_FROM + _dt.timedelta(days=6 + 7 * k) for k in range(12)] + [TODAY]


def pipeline_changes_sql(from_day, to_day):
    from_end = _ts(from_day + _dt.timedelta(days=1))
    in_q = "{e} >= DATE '" + Q_START.isoformat() + "' AND {e} < DATE '" + Q_END.isoformat() + "'"
    a = state("qf", "{t}.status = 'OPEN'")
    b = state("qt", f"({{t}}.status = 'OPEN' OR {{t}}.closed_at >= {from_end})")
    return f"""
WITH {asks([from_day, to_day])},
cyc AS ({cycle("q")}),
qf AS (SELECT * FROM q WHERE idx = 0), qt AS (SELECT * FROM q WHERE idx = 1),
a AS (SELECT s.id, s.amount_cents, {expected("s")} AS exp FROM {a} s JOIN cyc ON cyc.idx = 0),
b AS (SELECT s.*, {expected("s")} AS exp FROM {b} s JOIN cyc ON cyc.idx = 1),
m AS (
  SELECT CASE WHEN {in_q.format(e="a.exp")} THEN a.amount_cents ELSE 0 END AS a_c,
         CASE WHEN b.status = 'OPEN' AND {in_q.format(e="b.exp")} THEN b.amount_cents ELSE 0 END AS b_c,
         (b.status = 'OPEN' AND {in_q.format(e="b.exp")}) AS in_b, b.status, b.opened_at >= {from_end} AS is_new
  FROM b LEFT JOIN a ON a.id = b.id
),
k AS (
  SELECT a_c, b_c, CASE WHEN a_c > 0 THEN
           CASE WHEN status = 'WON' THEN 'WON' WHEN status = 'LOST' THEN 'LOST' WHEN NOT in_b THEN 'MOVED_OUT'
                WHEN b_c > a_c THEN 'INCREASED' WHEN b_c < a_c THEN 'DECREASED' END
         WHEN is_new THEN 'CREATED' ELSE 'MOVED_IN' END AS bucket
  FROM m WHERE a_c > 0 OR b_c > 0
)
SELECT SUM(a_c) / 100.0 AS starting,
       COALESCE(SUM(b_c) FILTER (WHERE bucket = 'CREATED'), 0) / 100.0 AS created,
       COALESCE(SUM(b_c) FILTER (WHERE bucket = 'MOVED_IN'), 0) / 100.0 AS moved_in,
       COALESCE(SUM(b_c - a_c) FILTER (WHERE bucket = 'INCREASED'), 0) / 100.0 AS increased,
       COALESCE(SUM(a_c - b_c) FILTER (WHERE bucket = 'DECREASED'), 0) / 100.0 AS decreased,
       COALESCE(SUM(a_c) FILTER (WHERE bucket = 'MOVED_OUT'), 0) / 100.0 AS moved_out,
       COALESCE(SUM(a_c) FILTER (WHERE bucket = 'WON'), 0) / 100.0 AS won,
       COALESCE(SUM(a_c) FILTER (WHERE bucket = 'LOST'), 0) / 100.0 AS lost,
       SUM(b_c) / 100.0 AS ending
FROM k
"""


FORECAST = """query($p: Period!, $m: ForecastMethod!, $a: Date) {
  forecast(period: $p, method: $m, asOf: $a) { asOf amount closedWon projected low high }
}"""

CHANGES = """query($p: Period!, $from: Date, $to: Date) {
  pipelineChanges(period: $p, from: $from, to: $to) {
    starting created movedIn increased decreased movedOut won lost ending
  }
}"""

TREND = """query($p: Period!, $from: Date!, $to: Date) {
  forecastTrend(period: $p, method: STAGE_WEIGHTED, from: $from, to: $to, granularity: WEEK) {
    asOf amount closedWon projected low high
  }
}"""

CASES = [
    dict(
        name="forecast STAGE_WEIGHTED quarter as of 14 days ago",
        query=FORECAST,
        variables={"p": QUARTER, "m": "STAGE_WEIGHTED", "a": PAST.isoformat()},
        sql=stage_weighted_sql([PAST], Q_START, Q_END),
    ),
    dict(
        name="pipelineChanges over a week, quarter",
        query=CHANGES,
        variables={"p": QUARTER, "from": WEEK_FROM.isoformat(), "to": TODAY.isoformat()},
        sql=pipeline_changes_sql(WEEK_FROM, TODAY),
    ),
    dict(
        name="forecastTrend 13 weekly points, quarter",
        query=TREND,
        variables={"p": QUARTER, "from": TREND_FROM.isoformat(), "to": TODAY.isoformat()},
        sql=stage_weighted_sql(TREND_DAYS, Q_START, Q_END),
    ),
]

if __name__ == "__main__":
    # Print the statements (to run them by hand with psql).
    for c in CASES:
        print(f"-- {c['name']}\n{c['sql']};\n")
