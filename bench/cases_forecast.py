"""Forecast benchmark cases: each GraphQL request (run as ADMIN) beside ONE
hand-written PostgreSQL statement answering the same question directly
against the tables (see bench/metrics.py).

Semantics mirrored by every statement (docs/design.md, Forecasts):
- closed-won in a period: status WON (as of the as-of day) with the close
  stamp in the period and before the end of the as-of day;
- open pipeline: open deals whose expected close date (their own, else the
  UTC opening date + the mean won cycle of the 365 days ending with the
  as-of day, rounded half up to whole days) falls in the period;
- "today" is the UTC date now, so the statements stay valid on any day;
- money is rounded to cents once.

The seed (`salesops seed --deals N`) writes COMMIT and BEST_CASE calls for
every active seller for the current month, so REP_SUBMITTED uses that month
(MONTH below). Checked against the
API on a 20,000-deal seed: every amount, closed-won, projected, deal count
and backtest row agrees to the cent; the approximate P10/P90 (floating
point on both sides) within one cent.

The as-of statements read the stage history only for deals that can have
moved since the as-of day (open now, or closed after it), as the API does
and as an expert would; reconstructing every deal's history instead gives
the same numbers about twice as slowly. bench/metrics.py prints the
measured ratios.
"""

import datetime as _dt
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from asof_sql import _range, cycle, expected, stage_weighted_sql, state  # noqa: E402


def _add_months(d, n):
    m = d.year * 12 + d.month - 1 + n
    return _dt.date(m // 12, m % 12 + 1, 1)


# The current month (UTC), which the seed's forecast calls are for, and the
# months before it; every date below derives from today.
_M0 = _dt.datetime.now(_dt.timezone.utc).date().replace(day=1)
MONTH = f"{_M0:%Y-%m}"
MONTH_START = _M0.isoformat()
MONTH_END = _add_months(_M0, 1).isoformat()
_PREV = _add_months(_M0, -1)
_LOOKBACK = _add_months(_M0, -3).isoformat()
_BACKTEST = [_add_months(_M0, -k) for k in (3, 2, 1)]

FORECAST = """query($p: Period!, $m: ForecastMethod!, $g: Dimension, $a: Date, $h: HistoricalParams, $c: ForecastCategory) {
  forecast(period: $p, method: $m, groupBy: $g, asOf: $a, historical: $h, category: $c) {
    method period asOf amount closedWon projected low high
    rows { key { dimension id label } amount closedWon projected dealCount }
  }
}"""

ACCURACY = """query($p: [Period!]!, $m: [ForecastMethod!], $o: Int) {
  forecastAccuracy(periods: $p, methods: $m, asOfOffsetDays: $o) {
    period method asOf forecast actual absolutePercentageError accuracy
  }
}"""

STAGE_WEIGHTED_TODAY_SQL = f"""
WITH t AS (SELECT (now() AT TIME ZONE 'UTC')::date AS today),
cyc AS (
  SELECT (SUM((d.closed_at AT TIME ZONE 'UTC')::date - (d.opened_at AT TIME ZONE 'UTC')::date) * 2 + COUNT(*))
         / NULLIF(2 * COUNT(*), 0) AS days
  FROM deal d, t
  WHERE d.status = 'WON' AND d.closed_at >= ((t.today - 364)::timestamp AT TIME ZONE 'UTC')
    AND d.closed_at < ((t.today + 1)::timestamp AT TIME ZONE 'UTC')
),
x AS (
  SELECT d.territory_id,
         CASE WHEN d.status = 'WON' THEN d.amount_cents ELSE 0 END AS won,
         CASE WHEN d.status = 'OPEN' THEN d.amount_cents::numeric * s.probability_ppm / 100000000 ELSE 0 END AS weighted,
         CASE WHEN d.status = 'OPEN' THEN s.probability_ppm / 1e6 ELSE 0 END AS p,
         CASE WHEN d.status = 'OPEN' THEN d.amount_cents / 100.0 ELSE 0 END AS a
  FROM deal d JOIN stage s ON s.id = d.stage_id CROSS JOIN cyc CROSS JOIN t
  WHERE (d.status = 'WON' AND d.closed_at >= '{MONTH_START}T00:00:00Z' AND d.closed_at < '{MONTH_END}T00:00:00Z'
         AND d.closed_at < ((t.today + 1)::timestamp AT TIME ZONE 'UTC'))
     OR (d.status = 'OPEN'
         AND COALESCE(d.expected_close_date, (d.opened_at AT TIME ZONE 'UTC')::date + cyc.days::int) >= DATE '{MONTH_START}'
         AND COALESCE(d.expected_close_date, (d.opened_at AT TIME ZONE 'UTC')::date + cyc.days::int) < DATE '{MONTH_END}')
),
g AS (
  SELECT territory_id, GROUPING(territory_id) AS is_total, COUNT(*) AS deals,
         SUM(won) / 100.0 AS closed_won, ROUND(SUM(weighted), 2) AS projected,
         SUM(p * a)::float8 AS mean, SUM(p * (1 - p) * a * a)::float8 AS var,
         SUM(p * (1 - p) * (1 - 2 * p) * a * a * a)::float8 AS m3, SUM(a)::float8 AS cap
  FROM x GROUP BY GROUPING SETS ((territory_id), ())
)
SELECT CASE WHEN g.is_total = 1 THEN 'TOTAL' ELSE COALESCE(tr.name, 'No territory') END AS label,
       g.closed_won + g.projected AS amount, g.closed_won, g.projected, g.deals,
       {_range("g.closed_won::float8", "g.mean", "g.var", "g.m3", "g.cap", "g.is_total = 1")}
FROM g LEFT JOIN territory tr ON tr.id = g.territory_id
ORDER BY g.is_total, tr.name
"""

AS_OF = _PREV.isoformat()
_AS_OF_END = (_PREV + _dt.timedelta(days=1)).isoformat()
_CYCLE_FROM = (_PREV - _dt.timedelta(days=364)).isoformat()
_PREV_END = _M0.isoformat()
# As of the first day of the previous month, for that month: every field of
# every deal from the revision in force then (bench/asof_sql.py).
STAGE_WEIGHTED_PAST_SQL = stage_weighted_sql([_PREV], _PREV, _M0)

SALES_CYCLE_SQL = f"""
WITH t AS (SELECT (now() AT TIME ZONE 'UTC')::date AS today),
cyc AS (
  SELECT SUM((d.closed_at AT TIME ZONE 'UTC')::date - (d.opened_at AT TIME ZONE 'UTC')::date) AS total, COUNT(*) AS n,
         (SUM((d.closed_at AT TIME ZONE 'UTC')::date - (d.opened_at AT TIME ZONE 'UTC')::date) * 2 + COUNT(*))
           / NULLIF(2 * COUNT(*), 0) AS days
  FROM deal d, t
  WHERE d.status = 'WON' AND d.closed_at >= ((t.today - 364)::timestamp AT TIME ZONE 'UTC')
    AND d.closed_at < ((t.today + 1)::timestamp AT TIME ZONE 'UTC')
),
x AS (
  SELECT d.owner_id,
         CASE WHEN d.status = 'WON' THEN d.amount_cents ELSE 0 END AS won,
         CASE WHEN d.status = 'OPEN' AND cyc.n > 0 THEN
           d.amount_cents::numeric * LEAST((t.today - (d.opened_at AT TIME ZONE 'UTC')::date)::numeric * cyc.n / NULLIF(cyc.total, 0), 1)
         ELSE 0 END AS projected
  FROM deal d CROSS JOIN cyc CROSS JOIN t
  WHERE (d.status = 'WON' AND d.closed_at >= '{MONTH_START}T00:00:00Z' AND d.closed_at < '{MONTH_END}T00:00:00Z'
         AND d.closed_at < ((t.today + 1)::timestamp AT TIME ZONE 'UTC'))
     OR (d.status = 'OPEN'
         AND COALESCE(d.expected_close_date, (d.opened_at AT TIME ZONE 'UTC')::date + cyc.days::int) >= DATE '{MONTH_START}'
         AND COALESCE(d.expected_close_date, (d.opened_at AT TIME ZONE 'UTC')::date + cyc.days::int) < DATE '{MONTH_END}')
)
SELECT COALESCE(r.name, 'TOTAL') AS label, SUM(x.won) / 100.0 + ROUND(SUM(x.projected) / 100, 2) AS amount,
       SUM(x.won) / 100.0 AS closed_won, ROUND(SUM(x.projected) / 100, 2) AS projected, COUNT(*) AS deals
FROM x LEFT JOIN rep r ON r.id = x.owner_id
GROUP BY GROUPING SETS ((r.name, x.owner_id), ())
ORDER BY GROUPING(r.name), r.name
"""

# HISTORICAL for the month with 5% growth and 2 new reps closing 1 deal each
# of the lookback's average size (August-October).
HISTORICAL_SQL = f"""
WITH t AS (SELECT ((now() AT TIME ZONE 'UTC')::date + 1)::timestamp AT TIME ZONE 'UTC' AS as_of_end),
w AS (
  SELECT d.territory_id,
         SUM(CASE WHEN d.closed_at < '{MONTH_START}T00:00:00Z' THEN d.amount_cents ELSE 0 END) / 100.0 AS lb,
         COUNT(*) FILTER (WHERE d.closed_at < '{MONTH_START}T00:00:00Z') AS lb_n,
         SUM(CASE WHEN d.closed_at >= '{MONTH_START}T00:00:00Z' THEN d.amount_cents ELSE 0 END) / 100.0 AS won,
         COUNT(*) FILTER (WHERE d.closed_at >= '{MONTH_START}T00:00:00Z') AS won_n
  FROM deal d, t
  WHERE d.status = 'WON' AND d.closed_at >= '{_LOOKBACK}T00:00:00Z' AND d.closed_at < '{MONTH_END}T00:00:00Z'
    AND d.closed_at < t.as_of_end
  GROUP BY d.territory_id
),
tot AS (SELECT SUM(lb) AS lb, SUM(lb_n) AS lb_n, SUM(won) AS won FROM w),
ramp AS (SELECT 2 * 1 * COALESCE(tot.lb / NULLIF(tot.lb_n, 0), 0) AS amount FROM tot)
SELECT COALESCE(tr.name, 'No territory') AS label,
       ROUND(GREATEST(w.lb / 3 * 1.05 + ramp.amount * COALESCE(w.lb / NULLIF(tot.lb, 0), 0), w.won), 2) AS amount,
       w.won AS closed_won, w.won_n AS deals
FROM w CROSS JOIN tot CROSS JOIN ramp LEFT JOIN territory tr ON tr.id = w.territory_id
UNION ALL
SELECT 'TOTAL', ROUND(GREATEST(tot.lb / 3 * 1.05 + ramp.amount, tot.won), 2), tot.won, NULL FROM tot CROSS JOIN ramp
ORDER BY 1
"""

REP_SUBMITTED_SQL = f"""
WITH t AS (SELECT ((now() AT TIME ZONE 'UTC')::date + 1)::timestamp AT TIME ZONE 'UTC' AS as_of_end),
calls AS (
  SELECT DISTINCT ON (fs.rep_id) fs.rep_id, fs.amount_cents
  FROM forecast_submission fs, t
  WHERE fs.period_start = DATE '{MONTH_START}' AND fs.period_end = DATE '{MONTH_END}'
    AND fs.category = 'COMMIT' AND fs.submitted_at < t.as_of_end
  ORDER BY fs.rep_id, fs.submitted_at DESC, fs.id DESC
),
won AS (
  SELECT d.owner_id AS rep_id, SUM(d.amount_cents) AS cents, COUNT(*) AS n
  FROM deal d, t
  WHERE d.status = 'WON' AND d.closed_at >= '{MONTH_START}T00:00:00Z' AND d.closed_at < '{MONTH_END}T00:00:00Z'
    AND d.closed_at < t.as_of_end
  GROUP BY d.owner_id
),
j AS (
  SELECT COALESCE(c.rep_id, w.rep_id) AS rep_id, COALESCE(c.amount_cents, 0) AS amount, COALESCE(w.cents, 0) AS won,
         COALESCE(w.n, 0) AS n
  FROM calls c FULL JOIN won w ON w.rep_id = c.rep_id
)
SELECT COALESCE(r.name, 'TOTAL') AS label, SUM(j.amount) / 100.0 AS amount, SUM(j.won) / 100.0 AS closed_won,
       (SUM(j.amount) - SUM(j.won)) / 100.0 AS projected, SUM(j.n) AS deals
FROM j LEFT JOIN rep r ON r.id = j.rep_id
GROUP BY GROUPING SETS ((r.name, j.rep_id), ())
ORDER BY GROUPING(r.name), r.name
"""

_BACKTEST_VALUES = ",\n  ".join(
    f"({k}, TIMESTAMPTZ '{p + _dt.timedelta(days=1)}T00:00:00Z', TIMESTAMPTZ '{p - _dt.timedelta(days=364)}T00:00:00Z', "
    f"DATE '{p}', DATE '{_add_months(p, 1)}', DATE '{_add_months(p, -3)}')"
    for k, p in enumerate(_BACKTEST))

# The three months before the current one, each as of its first day, by
# the default methods (STAGE_WEIGHTED, SALES_CYCLE, HISTORICAL with a
# 3-month lookback), against closed-won as the deals stand now. The state as
# of each day comes from the revisions (bench/asof_sql.py).
_ACC_STATE = state(
    "q", "({t}.status = 'OPEN' OR ({t}.status = 'WON' AND {t}.closed_at >= (q.lb_start::timestamp AT TIME ZONE 'UTC') "
         "AND {t}.closed_at < q.t_end))")
ACCURACY_SQL = f"""
WITH q(idx, t_end, cyc_from, p_start, p_end, lb_start) AS (VALUES
  {_BACKTEST_VALUES}),
cyc AS ({cycle("q")}),
st AS {_ACC_STATE},
x AS (
  SELECT st.idx,
    CASE WHEN st.status = 'WON' AND st.closed_at >= (q.p_start::timestamp AT TIME ZONE 'UTC')
              AND st.closed_at < (q.p_end::timestamp AT TIME ZONE 'UTC') THEN st.amount_cents ELSE 0 END AS won,
    CASE WHEN st.status = 'WON' AND st.closed_at < (q.p_start::timestamp AT TIME ZONE 'UTC') THEN st.amount_cents ELSE 0 END AS lb,
    CASE WHEN st.status = 'OPEN' THEN st.amount_cents::numeric * s.probability_ppm / 1000000 ELSE 0 END AS sw,
    CASE WHEN st.status = 'OPEN' AND cyc.n > 0 THEN st.amount_cents::numeric
      * LEAST((q.p_start - (st.opened_at AT TIME ZONE 'UTC')::date)::numeric * cyc.n / NULLIF(cyc.total, 0), 1) ELSE 0 END AS sc
  FROM st JOIN q ON q.idx = st.idx JOIN cyc ON cyc.idx = st.idx JOIN stage s ON s.id = st.stage_id
  WHERE (st.status = 'WON' AND st.closed_at < (q.p_end::timestamp AT TIME ZONE 'UTC'))
     OR (st.status = 'OPEN' AND {expected("st")} >= q.p_start AND {expected("st")} < q.p_end)
),
f AS (
  SELECT q.idx, q.p_start, COALESCE(SUM(x.won), 0) / 100.0 AS won, COALESCE(SUM(x.lb), 0) / 100.0 AS lb,
         COALESCE(SUM(x.sw), 0) / 100 AS sw, COALESCE(SUM(x.sc), 0) / 100 AS sc
  FROM q LEFT JOIN x ON x.idx = q.idx GROUP BY q.idx, q.p_start
),
actual AS (
  SELECT q.idx, COALESCE(SUM(d.amount_cents), 0) / 100.0 AS actual
  FROM q LEFT JOIN deal d ON d.status = 'WON' AND d.closed_at >= (q.p_start::timestamp AT TIME ZONE 'UTC')
    AND d.closed_at < (q.p_end::timestamp AT TIME ZONE 'UTC')
  GROUP BY q.idx
),
r AS (
  SELECT f.p_start, m.method, m.ord,
         ROUND(CASE m.method WHEN 'STAGE_WEIGHTED' THEN f.won + f.sw WHEN 'SALES_CYCLE' THEN f.won + f.sc
               ELSE GREATEST(f.lb / 3, f.won) END, 2) AS forecast, a.actual
  FROM f JOIN actual a ON a.idx = f.idx
    CROSS JOIN (VALUES ('STAGE_WEIGHTED', 1), ('SALES_CYCLE', 2), ('HISTORICAL', 3)) m(method, ord)
)
SELECT p_start, method, forecast, actual, ABS(forecast - actual) / NULLIF(actual, 0) AS ape,
       GREATEST(1 - ABS(forecast - actual) / NULLIF(actual, 0), 0) AS accuracy
FROM r ORDER BY p_start, ord
"""

FORECAST_CALLS = """query($p: Period!) {
  forecastCalls(period: $p) {
    rollup closedWon quota pipeline attainment
    children {
      rep { name } personal fromParts rollup closedWon quota pipeline attainment
      children { rep { name } personal fromParts rollup closedWon quota pipeline attainment }
    }
  }
}"""

# forecastCalls for the current month as ADMIN: the whole organisation's
# tree (docs/design.md, Forecast calls). The seed's calls are the reps' own
# PERSONAL calls for this month (no adjustments, no TEAM numbers, no parts),
# so a node's roll-up is the sum of the personal numbers of its subtree;
# closed-won, pipeline (unweighted, expected in the month, the won cycle of
# the 365 days ending today dating deals without a date) and quotas are
# summed over the subtree. One row per rep (its subtree) plus the
# organisation's. Checked against the API on a 20,000-deal seed (46 reps,
# the document five levels deep): every rollup, closed-won, quota and
# pipeline agrees to the cent; the statement also lists inactive reps with
# nothing, which the API's tree leaves out.
FORECAST_CALLS_SQL = f"""
WITH RECURSIVE t AS (SELECT ((now() AT TIME ZONE 'UTC')::date + 1)::timestamp AT TIME ZONE 'UTC' AS as_of_end),
cyc AS (
  SELECT (2 * SUM((d.closed_at AT TIME ZONE 'UTC')::date - (d.opened_at AT TIME ZONE 'UTC')::date) + COUNT(*))
         / NULLIF(2 * COUNT(*), 0) AS days
  FROM deal d, t
  WHERE d.status = 'WON' AND d.closed_at >= t.as_of_end - interval '365 days' AND d.closed_at < t.as_of_end
),
sub(anc, id) AS (
  SELECT id, id FROM rep
  UNION ALL SELECT sub.anc, r.id FROM rep r JOIN sub ON r.manager_id = sub.id
),
calls AS (
  SELECT DISTINCT ON (fs.rep_id, fs.kind) fs.rep_id, fs.kind, fs.amount_cents
  FROM forecast_submission fs, t
  WHERE fs.period_start = DATE '{MONTH_START}' AND fs.period_end = DATE '{MONTH_END}'
    AND fs.category = 'COMMIT' AND fs.scope = 'PERSONAL' AND fs.submitted_at < t.as_of_end
  ORDER BY fs.rep_id, fs.kind, fs.submitted_at DESC, fs.id DESC
),
personal AS (
  SELECT rep_id, COALESCE(MAX(amount_cents) FILTER (WHERE kind = 'ADJUSTMENT'),
                          MAX(amount_cents) FILTER (WHERE kind = 'CALL')) AS cents
  FROM calls GROUP BY rep_id
),
deals AS (
  SELECT d.owner_id AS rep_id,
         SUM(d.amount_cents) FILTER (WHERE d.status = 'WON') AS won,
         SUM(d.amount_cents) FILTER (WHERE d.status = 'OPEN') AS open
  FROM deal d, t, cyc
  WHERE (d.status = 'WON' AND d.closed_at >= '{MONTH_START}T00:00:00Z' AND d.closed_at < '{MONTH_END}T00:00:00Z'
         AND d.closed_at < t.as_of_end)
     OR (d.status = 'OPEN'
         AND COALESCE(d.expected_close_date, (d.opened_at AT TIME ZONE 'UTC')::date + cyc.days::int) >= DATE '{MONTH_START}'
         AND COALESCE(d.expected_close_date, (d.opened_at AT TIME ZONE 'UTC')::date + cyc.days::int) < DATE '{MONTH_END}')
  GROUP BY d.owner_id
),
quotas AS (
  SELECT rep_id, SUM(amount_cents) AS cents FROM quota
  WHERE start_date >= DATE '{MONTH_START}' AND end_date <= DATE '{MONTH_END}' GROUP BY rep_id
),
per_rep AS (
  SELECT r.id, COALESCE(p.cents, 0) AS personal, COALESCE(dl.won, 0) AS won, COALESCE(dl.open, 0) AS open, q.cents AS quota
  FROM rep r LEFT JOIN personal p ON p.rep_id = r.id LEFT JOIN deals dl ON dl.rep_id = r.id
  LEFT JOIN quotas q ON q.rep_id = r.id
)
SELECT r.name AS label, SUM(pr.personal) / 100.0 AS rollup, SUM(pr.won) / 100.0 AS closed_won,
       SUM(pr.quota) / 100.0 AS quota, SUM(pr.open) / 100.0 AS pipeline
FROM sub JOIN rep r ON r.id = sub.anc JOIN per_rep pr ON pr.id = sub.id
GROUP BY r.id, r.name
UNION ALL
SELECT '(organisation)', SUM(personal) / 100.0, SUM(won) / 100.0, SUM(quota) / 100.0, SUM(open) / 100.0 FROM per_rep
ORDER BY 1
"""

CASES = [
    dict(
        name="forecast STAGE_WEIGHTED by TERRITORY (today)",
        query=FORECAST,
        variables={"p": MONTH, "m": "STAGE_WEIGHTED", "g": "TERRITORY"},
        sql=STAGE_WEIGHTED_TODAY_SQL,
    ),
    dict(
        name="forecast STAGE_WEIGHTED as of a past day",
        query=FORECAST,
        variables={"p": f"{_PREV:%Y-%m}", "m": "STAGE_WEIGHTED", "a": AS_OF},
        sql=STAGE_WEIGHTED_PAST_SQL,
    ),
    dict(
        name="forecast SALES_CYCLE by REP (today)",
        query=FORECAST,
        variables={"p": MONTH, "m": "SALES_CYCLE", "g": "REP"},
        sql=SALES_CYCLE_SQL,
    ),
    dict(
        name="forecast HISTORICAL by TERRITORY (growth, new reps)",
        query=FORECAST,
        variables={
            "p": MONTH,
            "m": "HISTORICAL",
            "g": "TERRITORY",
            "h": {"growthRate": 0.05, "newReps": 2, "dealsPerNewRep": 1},
        },
        sql=HISTORICAL_SQL,
    ),
    dict(
        name="forecast REP_SUBMITTED by REP (COMMIT)",
        query=FORECAST,
        variables={"p": MONTH, "m": "REP_SUBMITTED", "g": "REP"},
        sql=REP_SUBMITTED_SQL,
    ),
    dict(
        name="forecastAccuracy over 3 months",
        query=ACCURACY,
        variables={"p": [f"{p:%Y-%m}" for p in _BACKTEST]},
        sql=ACCURACY_SQL,
    ),
    dict(
        name="forecastCalls: the organisation's call tree (COMMIT, this month)",
        query=FORECAST_CALLS,
        variables={"p": MONTH},
        sql=FORECAST_CALLS_SQL,
    ),
]
