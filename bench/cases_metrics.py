"""Benchmark cases of the sales metrics (issue 3): each GraphQL request (run
as ADMIN) beside ONE hand-written PostgreSQL statement answering the same
question with the same semantics (docs/design.md, Metrics), for the runner that
times both at 1,000,000 deals.

Shared rules the SQL spells out by hand:
- won/lost in a period: status WON/LOST and closed_at in [start, end) (UTC);
- day counts: differences of UTC calendar dates;
- open pipeline: OPEN deals whose expected close (expected_close_date, else
  the UTC date of opened_at + the mean won cycle of the 365 days ending
  today, rounded half up) falls in the period, weighted by stage
  probability (ppm);
- quotas count when their range lies inside the period; the reps measured
  are the active reps plus reps with a quota or closed-won in the period(s).
"""

Q3 = "2026-Q3"
Q3_START, Q3_END = "'2026-07-01T00:00:00Z'::timestamptz", "'2026-10-01T00:00:00Z'::timestamptz"
Q2_START = "'2026-04-01T00:00:00Z'::timestamptz"
OCT = "2026-10"
OCT_START, OCT_END = "'2026-10-01T00:00:00Z'::timestamptz", "'2026-11-01T00:00:00Z'::timestamptz"

UTC_TODAY = "(now() AT TIME ZONE 'UTC')::date"
# The mean won cycle in whole days (half up) of the 365 days ending today.
CYCLE = (
    "cyc AS (SELECT FLOOR(AVG(((closed_at AT TIME ZONE 'UTC')::date - (opened_at AT TIME ZONE 'UTC')::date)) + 0.5)::int AS days "
    f"FROM deal WHERE status = 'WON' AND closed_at >= ({UTC_TODAY} - 364)::timestamp AT TIME ZONE 'UTC' "
    f"AND closed_at < ({UTC_TODAY} + 1)::timestamp AT TIME ZONE 'UTC')"
)
EXPECTED = "COALESCE(d.expected_close_date, (d.opened_at AT TIME ZONE 'UTC')::date + cyc.days)"

CASES = [
    dict(
        name="winRates by REP (quarter)",
        query="query($p: Period!) { winRates(period: $p, groupBy: REP) { key { id label } won lost winRate wonAmount lostAmount amountWinRate } }",
        variables={"p": Q3},
        sql=(
            "SELECT d.owner_id, r.name, COUNT(*) FILTER (WHERE d.status = 'WON') AS won, "
            "COUNT(*) FILTER (WHERE d.status = 'LOST') AS lost, "
            "COALESCE(SUM(d.amount_cents) FILTER (WHERE d.status = 'WON'), 0) AS won_cents, "
            "COALESCE(SUM(d.amount_cents) FILTER (WHERE d.status = 'LOST'), 0) AS lost_cents "
            "FROM deal d JOIN rep r ON r.id = d.owner_id "
            f"WHERE d.status IN ('WON', 'LOST') AND d.closed_at >= {Q3_START} AND d.closed_at < {Q3_END} "
            "GROUP BY d.owner_id, r.name ORDER BY r.name, d.owner_id::text"
        ),
    ),
    dict(
        name="winRates by SOURCE, ENTERPRISE deals over 10,000 (quarter)",
        query="query($p: Period!, $f: DealFilter) { winRates(period: $p, groupBy: SOURCE, filter: $f) { key { id label } won lost winRate wonAmount lostAmount amountWinRate } }",
        variables={"p": Q3, "f": {"segments": ["ENTERPRISE"], "minAmount": "10000"}},
        sql=(
            "SELECT d.source, COUNT(*) FILTER (WHERE d.status = 'WON') AS won, "
            "COUNT(*) FILTER (WHERE d.status = 'LOST') AS lost, "
            "COALESCE(SUM(d.amount_cents) FILTER (WHERE d.status = 'WON'), 0) AS won_cents, "
            "COALESCE(SUM(d.amount_cents) FILTER (WHERE d.status = 'LOST'), 0) AS lost_cents "
            "FROM deal d JOIN territory t ON t.id = d.territory_id "
            f"WHERE d.status IN ('WON', 'LOST') AND d.closed_at >= {Q3_START} AND d.closed_at < {Q3_END} "
            "AND t.segment = 'ENTERPRISE' AND d.amount_cents >= 1000000 "
            "GROUP BY d.source ORDER BY d.source NULLS LAST"
        ),
    ),
    dict(
        name="quotaAttainment (month)",
        query="query($p: Period!) { quotaAttainment(period: $p) { totalQuota totalClosedWon attainment repsWithQuota repsAtQuota quotaAchievementRate "
        "rows { rep { id name } quota closedWon attainment attainedQuota openPipeline weightedPipeline gapToQuota pipelineCoverage } } }",
        variables={"p": OCT},
        sql=(
            f"WITH {CYCLE}, "
            "q AS (SELECT rep_id, SUM(amount_cents) AS quota FROM quota WHERE start_date >= '2026-10-01' AND end_date <= '2026-11-01' GROUP BY rep_id), "
            f"w AS (SELECT owner_id, SUM(amount_cents) AS won FROM deal WHERE status = 'WON' AND closed_at >= {OCT_START} AND closed_at < {OCT_END} GROUP BY owner_id), "
            "p AS (SELECT d.owner_id, SUM(d.amount_cents) AS pipe, SUM(d.amount_cents::numeric * s.probability_ppm) / 100000000 AS weighted "
            "FROM deal d JOIN stage s ON s.id = d.stage_id CROSS JOIN cyc "
            f"WHERE d.status = 'OPEN' AND {EXPECTED} >= '2026-10-01' AND {EXPECTED} < '2026-11-01' GROUP BY d.owner_id) "
            "SELECT r.id, r.name, COALESCE(q.quota, 0) AS quota, COALESCE(w.won, 0) AS won, "
            "COALESCE(w.won, 0)::float8 / NULLIF(q.quota, 0) AS attainment, COALESCE(p.pipe, 0) AS pipe, "
            "ROUND(COALESCE(p.weighted, 0), 2) AS weighted, GREATEST(COALESCE(q.quota, 0) - COALESCE(w.won, 0), 0) AS gap, "
            "COALESCE(p.pipe, 0)::float8 / NULLIF(GREATEST(COALESCE(q.quota, 0) - COALESCE(w.won, 0), 0), 0) AS coverage, "
            "SUM(COALESCE(q.quota, 0)) OVER () AS total_quota, SUM(COALESCE(w.won, 0)) OVER () AS total_won, "
            "COUNT(*) FILTER (WHERE q.quota > 0) OVER () AS with_quota, "
            "COUNT(*) FILTER (WHERE q.quota > 0 AND w.won >= q.quota) OVER () AS at_quota "
            "FROM rep r LEFT JOIN q ON q.rep_id = r.id LEFT JOIN w ON w.owner_id = r.id LEFT JOIN p ON p.owner_id = r.id "
            "WHERE r.active OR q.rep_id IS NOT NULL OR w.owner_id IS NOT NULL ORDER BY r.id"
        ),
    ),
    dict(
        name="pipelineSummary by TERRITORY (quarter)",
        query="query($p: Period!) { pipelineSummary(period: $p, groupBy: TERRITORY) { key { id label } openDeals pipelineValue weightedPipeline "
        "avgDealSize avgSalesCycleDays medianSalesCycleDays winRate } }",
        variables={"p": Q3},
        sql=(
            f"WITH {CYCLE}, "
            "o AS (SELECT d.territory_id AS tid, COUNT(*) AS open_deals, SUM(d.amount_cents) AS pipe, "
            "ROUND(SUM(d.amount_cents::numeric * s.probability_ppm) / 100000000, 2) AS weighted "
            "FROM deal d JOIN stage s ON s.id = d.stage_id CROSS JOIN cyc "
            f"WHERE d.status = 'OPEN' AND {EXPECTED} >= '2026-07-01' AND {EXPECTED} < '2026-10-01' GROUP BY d.territory_id), "
            "c AS (SELECT d.territory_id AS tid, COUNT(*) FILTER (WHERE d.status = 'WON') AS won, COUNT(*) FILTER (WHERE d.status = 'LOST') AS lost, "
            "ROUND(AVG(d.amount_cents) FILTER (WHERE d.status = 'WON') / 100, 2) AS avg_deal, "
            "AVG((d.closed_at AT TIME ZONE 'UTC')::date - (d.opened_at AT TIME ZONE 'UTC')::date) FILTER (WHERE d.status = 'WON') AS avg_cycle, "
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY (d.closed_at AT TIME ZONE 'UTC')::date - (d.opened_at AT TIME ZONE 'UTC')::date) "
            "FILTER (WHERE d.status = 'WON') AS median_cycle "
            f"FROM deal d WHERE d.status IN ('WON', 'LOST') AND d.closed_at >= {Q3_START} AND d.closed_at < {Q3_END} GROUP BY d.territory_id) "
            "SELECT COALESCE(o.tid, c.tid) AS tid, t.name, COALESCE(o.open_deals, 0), COALESCE(o.pipe, 0), COALESCE(o.weighted, 0), "
            "c.avg_deal, c.avg_cycle, c.median_cycle, c.won::float8 / NULLIF(c.won + c.lost, 0) AS win_rate "
            "FROM o FULL JOIN c ON COALESCE(c.tid, -1) = COALESCE(o.tid, -1) LEFT JOIN territory t ON t.id = COALESCE(o.tid, c.tid) "
            "ORDER BY t.name NULLS LAST"
        ),
    ),
    dict(
        name="funnel (quarter)",
        query="query($p: Period!) { funnel(period: $p) { stage { id name } entered advanced lostHere conversionRate avgDaysInStage } }",
        variables={"p": Q3},
        sql=(
            "WITH h AS (SELECT c.deal_id, c.to_stage_id, c.changed_at, s.position, "
            "LEAD(c.changed_at) OVER w AS next_at, LEAD(s.kind) OVER w AS next_kind, "
            "MAX(s.position) FILTER (WHERE s.kind <> 'LOST') OVER (PARTITION BY c.deal_id ORDER BY c.changed_at, c.id "
            "ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS later_max "
            f"FROM deal_stage_change c JOIN stage s ON s.id = c.to_stage_id WHERE c.changed_at >= {Q3_START} "
            "WINDOW w AS (PARTITION BY c.deal_id ORDER BY c.changed_at, c.id)) "
            "SELECT s.id, s.name, COUNT(DISTINCT h.deal_id) AS entered, "
            "COUNT(DISTINCT h.deal_id) FILTER (WHERE h.later_max > h.position) AS advanced, "
            "COUNT(DISTINCT h.deal_id) FILTER (WHERE h.next_kind = 'LOST') AS lost_here, "
            "CASE WHEN s.kind = 'OPEN' THEN AVG((COALESCE(h.next_at, now()) AT TIME ZONE 'UTC')::date - (h.changed_at AT TIME ZONE 'UTC')::date) END AS avg_days "
            f"FROM stage s LEFT JOIN h ON h.to_stage_id = s.id AND h.changed_at < {Q3_END} "
            "GROUP BY s.id, s.name, s.kind, s.position ORDER BY s.position, s.id"
        ),
    ),
    dict(
        name="repPerformance (quarter against the previous one)",
        query="query($p: Period!) { repPerformance(period: $p) { rep { id name } current previous currentAttainment previousAttainment change quadrant } }",
        variables={"p": Q3},
        sql=(
            "WITH q AS (SELECT rep_id, SUM(amount_cents) FILTER (WHERE start_date >= '2026-07-01' AND end_date <= '2026-10-01') AS cur, "
            "SUM(amount_cents) FILTER (WHERE start_date >= '2026-04-01' AND end_date <= '2026-07-01') AS prev FROM quota "
            "WHERE (start_date >= '2026-07-01' AND end_date <= '2026-10-01') OR (start_date >= '2026-04-01' AND end_date <= '2026-07-01') GROUP BY rep_id), "
            f"w AS (SELECT owner_id, COALESCE(SUM(amount_cents) FILTER (WHERE closed_at >= {Q3_START}), 0) AS cur, "
            f"COALESCE(SUM(amount_cents) FILTER (WHERE closed_at < {Q3_START}), 0) AS prev FROM deal "
            f"WHERE status = 'WON' AND closed_at >= {Q2_START} AND closed_at < {Q3_END} GROUP BY owner_id), "
            "b AS (SELECT r.id, r.name, COALESCE(q.cur, 0) AS quota, COALESCE(q.prev, 0) AS prev_quota, "
            "COALESCE(w.cur, 0) AS won, COALESCE(w.prev, 0) AS prev_won FROM rep r LEFT JOIN q ON q.rep_id = r.id "
            "LEFT JOIN w ON w.owner_id = r.id WHERE r.active OR q.rep_id IS NOT NULL OR w.owner_id IS NOT NULL), "
            "m AS (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY won) AS median FROM b) "
            "SELECT b.id, b.name, b.won, b.prev_won, b.won::float8 / NULLIF(b.quota, 0), b.prev_won::float8 / NULLIF(b.prev_quota, 0), "
            "(b.won - b.prev_won)::float8 / NULLIF(b.prev_won, 0), "
            "CASE WHEN (CASE WHEN b.quota > 0 THEN b.won >= b.quota ELSE b.won >= m.median END) "
            "THEN CASE WHEN b.won >= b.prev_won THEN 'RISING_STAR' ELSE 'FALLING_STAR' END "
            "ELSE CASE WHEN b.won >= b.prev_won THEN 'IMPROVING_LAGGARD' ELSE 'DETERIORATING_LAGGARD' END END AS quadrant "
            "FROM b CROSS JOIN m ORDER BY b.id"
        ),
    ),
    dict(
        name="commissions (month)",
        query="query($p: Period!) { commissions(period: $p) { rep { id name } quota closedWon attainment rate qualified earned } }",
        variables={"p": OCT},
        sql=(
            "WITH q AS (SELECT rep_id, SUM(amount_cents) AS quota FROM quota WHERE start_date >= '2026-10-01' AND end_date <= '2026-11-01' GROUP BY rep_id), "
            f"w AS (SELECT owner_id, SUM(amount_cents) AS won FROM deal WHERE status = 'WON' AND closed_at >= {OCT_START} AND closed_at < {OCT_END} GROUP BY owner_id), "
            "b AS (SELECT r.id, r.name, r.commission_rate_ppm AS rate, r.commission_threshold_ppm AS threshold, "
            "COALESCE(q.quota, 0) AS quota, COALESCE(w.won, 0) AS won FROM rep r LEFT JOIN q ON q.rep_id = r.id "
            "LEFT JOIN w ON w.owner_id = r.id WHERE r.active OR q.rep_id IS NOT NULL OR w.owner_id IS NOT NULL) "
            "SELECT id, name, quota, won, won::float8 / NULLIF(quota, 0) AS attainment, rate, "
            "(CASE WHEN quota > 0 THEN won::numeric * 1000000 >= threshold::numeric * quota ELSE threshold = 0 END) AS qualified, "
            "CASE WHEN (CASE WHEN quota > 0 THEN won::numeric * 1000000 >= threshold::numeric * quota ELSE threshold = 0 END) "
            "THEN ROUND(won::numeric * rate / 100000000, 2) ELSE 0 END AS earned FROM b ORDER BY id"
        ),
    ),
    dict(
        name="metricSeries WIN_RATE by MONTH (year)",
        query="query($p: Period!) { metricSeries(metric: WIN_RATE, period: $p, granularity: MONTH) { bucket start key { label } value change } }",
        variables={"p": "2025"},
        sql=(
            "WITH months AS (SELECT generate_series('2025-01-01'::date, '2025-12-01'::date, interval '1 month')::date AS m), "
            "a AS (SELECT date_trunc('month', closed_at AT TIME ZONE 'UTC')::date AS m, COUNT(*) FILTER (WHERE status = 'WON') AS won, "
            "COUNT(*) FILTER (WHERE status = 'LOST') AS lost FROM deal WHERE status IN ('WON', 'LOST') "
            "AND closed_at >= '2025-01-01T00:00:00Z'::timestamptz AND closed_at < '2026-01-01T00:00:00Z'::timestamptz GROUP BY 1), "
            "v AS (SELECT months.m, a.won::float8 / NULLIF(a.won + a.lost, 0) AS rate FROM months LEFT JOIN a ON a.m = months.m) "
            "SELECT m, rate, rate / NULLIF(LAG(rate) OVER (ORDER BY m), 0) - 1 AS change FROM v ORDER BY m"
        ),
    ),
    dict(
        name="dataHealth with 20 issues",
        query="{ dataHealth { openDealsPastExpectedClose openDealsWithoutExpectedClose openDealsNotUpdated repsWithoutTerritory "
        "inactiveRepsOwningOpenDeals issues(first: 20) { kind entityType entityId message } } }",
        variables={},
        sql=(
            "SELECT (SELECT COUNT(*) FROM deal WHERE status = 'OPEN' AND expected_close_date < (now() AT TIME ZONE 'UTC')::date) AS past, "
            "(SELECT COUNT(*) FROM deal WHERE status = 'OPEN' AND expected_close_date IS NULL) AS undated, "
            "(SELECT COUNT(*) FROM deal WHERE status = 'OPEN' AND updated_at < now() - interval '30 days') AS stale, "
            "(SELECT COUNT(*) FROM rep WHERE active AND territory_id IS NULL) AS no_territory, "
            "(SELECT COUNT(*) FROM rep WHERE NOT active AND id IN (SELECT owner_id FROM deal WHERE status = 'OPEN')) AS inactive_owners, "
            "(SELECT json_agg(i) FROM (SELECT * FROM ("
            "(SELECT 1 AS k, 'OPEN_DEAL_PAST_EXPECTED_CLOSE' AS kind, 'Deal' AS entity_type, id, name, expected_close_date::text AS detail FROM deal "
            "WHERE status = 'OPEN' AND expected_close_date < (now() AT TIME ZONE 'UTC')::date ORDER BY id LIMIT 20) UNION ALL "
            "(SELECT 2, 'OPEN_DEAL_WITHOUT_EXPECTED_CLOSE', 'Deal', id, name, NULL FROM deal WHERE status = 'OPEN' AND expected_close_date IS NULL ORDER BY id LIMIT 20) UNION ALL "
            "(SELECT 3, 'OPEN_DEAL_NOT_UPDATED', 'Deal', id, name, ((updated_at AT TIME ZONE 'UTC')::date)::text FROM deal WHERE status = 'OPEN' "
            "AND updated_at < now() - interval '30 days' ORDER BY id LIMIT 20) UNION ALL "
            "(SELECT 4, 'REP_WITHOUT_TERRITORY', 'Rep', id, name, NULL FROM rep WHERE active AND territory_id IS NULL ORDER BY id LIMIT 20) UNION ALL "
            "(SELECT 5, 'INACTIVE_REP_OWNS_OPEN_DEALS', 'Rep', r.id, r.name, COUNT(*)::text FROM rep r JOIN deal d ON d.owner_id = r.id AND d.status = 'OPEN' "
            "WHERE NOT r.active GROUP BY r.id, r.name ORDER BY r.id LIMIT 20)) u ORDER BY k, id LIMIT 20) i) AS issues"
        ),
    ),
    dict(
        name="playbooks with effectiveness (quarter)",
        query="query($p: Period!) { playbooks { id name effectiveness(period: $p) { deals won lost winRate baselineWinRate avgCycleDays baselineAvgCycleDays } } }",
        variables={"p": Q3},
        sql=(
            "WITH a AS (SELECT playbook_id, COUNT(*) FILTER (WHERE status = 'WON') AS won, COUNT(*) FILTER (WHERE status = 'LOST') AS lost, "
            "COALESCE(SUM((closed_at AT TIME ZONE 'UTC')::date - (opened_at AT TIME ZONE 'UTC')::date) FILTER (WHERE status = 'WON'), 0) AS won_days "
            f"FROM deal WHERE status IN ('WON', 'LOST') AND closed_at >= {Q3_START} AND closed_at < {Q3_END} GROUP BY playbook_id), "
            "t AS (SELECT SUM(won) AS won, SUM(lost) AS lost, SUM(won_days) AS won_days FROM a) "
            "SELECT p.id, p.name, COALESCE(a.won + a.lost, 0) AS deals, COALESCE(a.won, 0) AS won, COALESCE(a.lost, 0) AS lost, "
            "a.won::float8 / NULLIF(a.won + a.lost, 0) AS win_rate, "
            "(t.won - COALESCE(a.won, 0))::float8 / NULLIF(t.won + t.lost - COALESCE(a.won + a.lost, 0), 0) AS baseline_win_rate, "
            "a.won_days::float8 / NULLIF(a.won, 0) AS avg_cycle, "
            "(t.won_days - COALESCE(a.won_days, 0))::float8 / NULLIF(t.won - COALESCE(a.won, 0), 0) AS baseline_avg_cycle "
            "FROM playbook p CROSS JOIN t LEFT JOIN a ON a.playbook_id = p.id ORDER BY p.name"
        ),
    ),
]
