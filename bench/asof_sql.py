"""Hand-written PostgreSQL for "the deals as they stood at the end of a day",
shared by the benchmark cases (docs/design.md, Deal history).

An expert reading these tables would write it the same way the API does: a
deal whose current revision took effect before the instant (deal.valid_from)
is at its current state; the others take the revision in force then, the
last one before the instant in (valid_from, version) order, one index probe
each (LATERAL ... LIMIT 1 on idx_deal_revision_in_force).
"""

import datetime as _dt

# (z^2 - 1) / 6 for z = 1.2815515655446004 (the 90th percentile of N(0,1)).
_Z = "1.2815515655446004"
_CF = "0.10706240"


def _range(won, mean, var, m3, cap, when="TRUE"):
    """P10 and P90 of won + open outcomes: normal with a Cornish-Fisher skew
    correction, clipped to [0, cap] (the API's approximation above 16 deals)."""
    sd = f"sqrt({var})"
    skew = f"(CASE WHEN {var} > 0 THEN {m3} / power({sd}, 3) ELSE 0 END)"
    lo = f"{won} + LEAST(GREATEST({mean} + {sd} * (-{_Z} + {_CF} * {skew}), 0), {cap})"
    hi = f"{won} + LEAST(GREATEST({mean} + {sd} * ({_Z} + {_CF} * {skew}), 0), {cap})"
    return (f"CASE WHEN {when} THEN ROUND(({lo})::numeric, 2) END AS low, "
            f"CASE WHEN {when} THEN ROUND(({hi})::numeric, 2) END AS high")



COLS = "id, opened_at, amount_cents, owner_id, territory_id, stage_id, status, expected_close_date, closed_at"


def state(q, keep):
    """Per row of relation `q` (columns idx, t_end): every deal opened before
    t_end as it stood then, restricted by `keep` (a condition with {t} before
    each column)."""
    cur = keep.format(t="d")
    rev = keep.format(t="r")
    return f"""(SELECT q.idx, d.id, d.opened_at, d.amount_cents, d.owner_id, d.territory_id, d.stage_id, d.status,
          d.expected_close_date, d.closed_at
   FROM {q} q JOIN deal d ON d.opened_at < q.t_end AND d.valid_from < q.t_end
   WHERE {cur}
   UNION ALL
   SELECT q.idx, d.id, d.opened_at, r.amount_cents, r.owner_id, r.territory_id, r.stage_id, r.status,
          r.expected_close_date, r.closed_at
   FROM {q} q JOIN deal d ON d.opened_at < q.t_end AND d.valid_from >= q.t_end
   CROSS JOIN LATERAL (SELECT * FROM deal_revision r0 WHERE r0.deal_id = d.id AND r0.valid_from < q.t_end
                       ORDER BY r0.valid_from DESC, r0.version DESC LIMIT 1) r
   WHERE {rev})"""


def cycle(q):
    """Per row of `q` (idx, t_end, cyc_from): the organisation's won cycle as
    of t_end (deals won then, closed in [cyc_from, t_end)): total days, count
    and the mean rounded half up to whole days."""
    won = state(q, "{t}.status = 'WON' AND {t}.closed_at >= q.cyc_from AND {t}.closed_at < q.t_end")
    days = "((s.closed_at AT TIME ZONE 'UTC')::date - (s.opened_at AT TIME ZONE 'UTC')::date)"
    return f"""SELECT q.idx, SUM({days}) AS total, COUNT(s.id) AS n,
         (SUM({days}) * 2 + COUNT(s.id)) / NULLIF(2 * COUNT(s.id), 0) AS days
  FROM {q} q LEFT JOIN {won} s ON s.idx = q.idx GROUP BY q.idx"""


def expected(alias="s", cyc="cyc"):
    return (f"COALESCE({alias}.expected_close_date, ({alias}.opened_at AT TIME ZONE 'UTC')::date + {cyc}.days::int)")


def _ts(day):
    return f"TIMESTAMPTZ '{day.isoformat()}T00:00:00Z'"


def asks(days):
    """q(idx, t_end, cyc_from): the end of each as-of day and the start of
    its 365-day won-cycle window."""
    rows = ", ".join(
        f"({i}, {_ts(d + _dt.timedelta(days=1))}, {_ts(d - _dt.timedelta(days=364))})" for i, d in enumerate(days))
    return f"q(idx, t_end, cyc_from) AS (VALUES {rows})"


def stage_weighted_sql(days, p_start, p_end):
    """STAGE_WEIGHTED for [p_start, p_end) as of each day: amount, closed-won,
    projected and the approximate P10/P90 (as the API for more than 16 open
    deals), one row per day."""
    ps, pe = _ts(p_start), _ts(p_end)
    st = state("q", f"({{t}}.status = 'OPEN' OR ({{t}}.status = 'WON' AND {{t}}.closed_at >= {ps} "
                    f"AND {{t}}.closed_at < q.t_end))")
    exp = expected("st")
    return f"""
WITH {asks(days)},
cyc AS ({cycle("q")}),
st AS {st},
x AS (
  SELECT st.idx,
         CASE WHEN st.status = 'WON' THEN st.amount_cents ELSE 0 END AS won,
         CASE WHEN st.status = 'OPEN' THEN st.amount_cents::numeric * s.probability_ppm / 100000000 ELSE 0 END AS weighted,
         CASE WHEN st.status = 'OPEN' THEN s.probability_ppm / 1e6 ELSE 0 END AS p,
         CASE WHEN st.status = 'OPEN' THEN st.amount_cents / 100.0 ELSE 0 END AS a
  FROM st JOIN stage s ON s.id = st.stage_id JOIN cyc ON cyc.idx = st.idx
  WHERE (st.status = 'WON' AND st.closed_at >= {ps} AND st.closed_at < {pe})
     OR (st.status = 'OPEN' AND {exp} >= DATE '{p_start}' AND {exp} < DATE '{p_end}')
),
g AS (
  SELECT q.idx, COUNT(x.idx) AS deals, COALESCE(SUM(x.won), 0) / 100.0 AS closed_won,
         ROUND(COALESCE(SUM(x.weighted), 0), 2) AS projected,
         COALESCE(SUM(x.p * x.a), 0)::float8 AS mean, COALESCE(SUM(x.p * (1 - x.p) * x.a * x.a), 0)::float8 AS var,
         COALESCE(SUM(x.p * (1 - x.p) * (1 - 2 * x.p) * x.a * x.a * x.a), 0)::float8 AS m3,
         COALESCE(SUM(x.a), 0)::float8 AS cap
  FROM q LEFT JOIN x ON x.idx = q.idx GROUP BY q.idx
)
SELECT g.idx, g.closed_won + g.projected AS amount, g.closed_won, g.projected, g.deals,
       {_range("g.closed_won::float8", "g.mean", "g.var", "g.m3", "g.cap")}
FROM g ORDER BY g.idx
"""
