"""Benchmark cases of leads and activities (issue 15): each GraphQL request
(run as ADMIN) beside ONE hand-written PostgreSQL statement answering the
same question with the same semantics (docs/design.md, Leads and
activities), for bench/metrics.py (`--only "lead|activit|deals page"`).

Shared rules the SQL spells out by hand:
- the cohort of a lead metric: leads created in [start, end) (UTC);
- response seconds: first_response_at - created_at, rounded to whole
  seconds; percentiles by linear interpolation (percentile_cont);
- due for the SLA: answered, or created at least 24 hours before now;
- activity buckets: ISO weeks (date_trunc('week'), UTC).
"""

Q3 = "2026-Q3"
Q3_START, Q3_END = "'2026-07-01T00:00:00Z'::timestamptz", "'2026-10-01T00:00:00Z'::timestamptz"
OCT_START, OCT_END = "'2026-10-01T00:00:00Z'::timestamptz", "'2026-11-01T00:00:00Z'::timestamptz"
SECS = "ROUND(EXTRACT(EPOCH FROM (l.first_response_at - l.created_at)))"

CASES = [
    dict(
        name="leadResponseTime by SOURCE (quarter)",
        query="query($p: Period!) { leadResponseTime(period: $p, groupBy: SOURCE) { key { id label } leads responded medianHours p90Hours withinSla due withinSlaShare } }",
        variables={"p": Q3},
        sql=(
            f"SELECT l.source, COUNT(*) AS leads, COUNT(l.first_response_at) AS responded, "
            f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {SECS}) / 3600 AS median_hours, "
            f"percentile_cont(0.9) WITHIN GROUP (ORDER BY {SECS}) / 3600 AS p90_hours, "
            f"COUNT(*) FILTER (WHERE {SECS} <= 86400) AS within_sla, "
            "COUNT(*) FILTER (WHERE l.first_response_at IS NOT NULL OR l.created_at <= now() - interval '24 hours') AS due "
            f"FROM lead l WHERE l.created_at >= {Q3_START} AND l.created_at < {Q3_END} "
            "GROUP BY l.source ORDER BY l.source"
        ),
    ),
    dict(
        name="leadResponseTime by REP (quarter)",
        query="query($p: Period!) { leadResponseTime(period: $p, groupBy: REP) { key { id label } leads responded medianHours p90Hours withinSla due withinSlaShare } }",
        variables={"p": Q3},
        sql=(
            f"SELECT l.owner_id, r.name, COUNT(*) AS leads, COUNT(l.first_response_at) AS responded, "
            f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {SECS}) / 3600 AS median_hours, "
            f"percentile_cont(0.9) WITHIN GROUP (ORDER BY {SECS}) / 3600 AS p90_hours, "
            f"COUNT(*) FILTER (WHERE {SECS} <= 86400) AS within_sla, "
            "COUNT(*) FILTER (WHERE l.first_response_at IS NOT NULL OR l.created_at <= now() - interval '24 hours') AS due "
            f"FROM lead l JOIN rep r ON r.id = l.owner_id WHERE l.created_at >= {Q3_START} AND l.created_at < {Q3_END} "
            "GROUP BY l.owner_id, r.name ORDER BY r.name, l.owner_id"
        ),
    ),
    dict(
        name="leadFunnel by REP (quarter)",
        query="query($p: Period!) { leadFunnel(period: $p, groupBy: REP) { key { id label } created worked qualified converted disqualified workedRate qualifiedRate convertedRate overallRate } }",
        variables={"p": Q3},
        sql=(
            "SELECT l.owner_id, r.name, COUNT(*) AS created, "
            "COUNT(*) FILTER (WHERE l.worked_at <= now()) AS worked, "
            "COUNT(*) FILTER (WHERE l.qualified_at <= now()) AS qualified, "
            "COUNT(*) FILTER (WHERE l.converted_at <= now()) AS converted, "
            "COUNT(*) FILTER (WHERE l.disqualified_at <= now()) AS disqualified "
            f"FROM lead l JOIN rep r ON r.id = l.owner_id WHERE l.created_at >= {Q3_START} AND l.created_at < {Q3_END} "
            "AND l.created_at <= now() GROUP BY l.owner_id, r.name ORDER BY r.name, l.owner_id"
        ),
    ),
    dict(
        name="leadFunnel by SOURCE as of 2026-09-01 (quarter)",
        query="query($p: Period!) { leadFunnel(period: $p, groupBy: SOURCE, asOf: \"2026-09-01T00:00:00Z\") { key { id label } created worked qualified converted disqualified } }",
        variables={"p": Q3},
        sql=(
            "SELECT l.source, COUNT(*) AS created, "
            "COUNT(*) FILTER (WHERE l.worked_at <= '2026-09-01T00:00:00Z') AS worked, "
            "COUNT(*) FILTER (WHERE l.qualified_at <= '2026-09-01T00:00:00Z') AS qualified, "
            "COUNT(*) FILTER (WHERE l.converted_at <= '2026-09-01T00:00:00Z') AS converted, "
            "COUNT(*) FILTER (WHERE l.disqualified_at <= '2026-09-01T00:00:00Z') AS disqualified "
            f"FROM lead l WHERE l.created_at >= {Q3_START} AND l.created_at < {Q3_END} "
            "AND l.created_at <= '2026-09-01T00:00:00Z' GROUP BY l.source ORDER BY l.source"
        ),
    ),
    dict(
        name="leadScoreCalibration (quarter)",
        query="query($p: Period!) { leadScoreCalibration(period: $p) { low high leads converted disqualified conversionRate } }",
        variables={"p": Q3},
        sql=(
            "SELECT LEAST(l.score, 99) / 20 * 20 AS low, COUNT(*) AS leads, "
            "COUNT(*) FILTER (WHERE l.status = 'CONVERTED') AS converted, "
            "COUNT(*) FILTER (WHERE l.status = 'DISQUALIFIED') AS disqualified "
            f"FROM lead l WHERE l.created_at >= {Q3_START} AND l.created_at < {Q3_END} GROUP BY 1 ORDER BY 1"
        ),
    ),
    dict(
        name="activityCounts by REP, WEEK (month)",
        query="{ activityCounts(period: \"2026-10\", bucket: WEEK) { key { id label } kind bucketStart count } }",
        variables={},
        sql=(
            "SELECT a.rep_id, r.name, a.kind, CAST(date_trunc('week', a.at AT TIME ZONE 'UTC') AS date) AS bucket, COUNT(*) AS n "
            f"FROM activity a JOIN rep r ON r.id = a.rep_id WHERE a.at >= {OCT_START} AND a.at < {OCT_END} "
            "GROUP BY a.rep_id, r.name, a.kind, 4 ORDER BY r.name, a.rep_id, 4, a.kind"
        ),
    ),
    dict(
        name="activitiesPerWonDeal by REP (quarter)",
        query="query($p: Period!) { activitiesPerWonDeal(period: $p, groupBy: REP) { key { id label } wonDeals activities calls emails meetings tasks perDeal } }",
        variables={"p": Q3},
        sql=(
            "SELECT d.owner_id, r.name, COUNT(*) AS won, COALESCE(SUM(c.n), 0) AS activities, "
            "COALESCE(SUM(c.calls), 0), COALESCE(SUM(c.emails), 0), COALESCE(SUM(c.meetings), 0), COALESCE(SUM(c.tasks), 0) "
            "FROM deal d JOIN rep r ON r.id = d.owner_id LEFT JOIN LATERAL (SELECT COUNT(*) AS n, "
            "COUNT(*) FILTER (WHERE a.kind = 'CALL') AS calls, COUNT(*) FILTER (WHERE a.kind = 'EMAIL') AS emails, "
            "COUNT(*) FILTER (WHERE a.kind = 'MEETING') AS meetings, COUNT(*) FILTER (WHERE a.kind = 'TASK') AS tasks "
            "FROM activity a WHERE a.deal_id = d.id) c ON true "
            f"WHERE d.status = 'WON' AND d.closed_at >= {Q3_START} AND d.closed_at < {Q3_END} "
            "GROUP BY d.owner_id, r.name ORDER BY r.name, d.owner_id"
        ),
    ),
    dict(
        name="deals page of 50, no risk",
        query="{ deals(first: 50, filter: {status: [OPEN]}) { nodes { id name amount expectedCloseDate } } }",
        variables={},
        sql=(
            "SELECT d.id, d.name, d.amount_cents, d.expected_close_date FROM deal d WHERE d.status = 'OPEN' "
            "ORDER BY d.updated_at DESC, d.id DESC LIMIT 51"
        ),
    ),
    dict(
        name="deals page of 50, with risk",
        query="{ deals(first: 50, filter: {status: [OPEN]}) { nodes { id name amount expectedCloseDate risk { score signals { kind detail } } } } }",
        variables={},
        sql=(
            "WITH page AS (SELECT d.* FROM deal d WHERE d.status = 'OPEN' ORDER BY d.updated_at DESC, d.id DESC LIMIT 51), "
            "means AS (SELECT x.stage_id, AVG(x.days) AS mean_days FROM (SELECT c.to_stage_id AS stage_id, "
            "((COALESCE(LEAD(c.changed_at) OVER (PARTITION BY c.deal_id ORDER BY c.changed_at, c.id), now()) AT TIME ZONE 'UTC')::date "
            "- (c.changed_at AT TIME ZONE 'UTC')::date) AS days FROM deal_stage_change c "
            "WHERE c.changed_at >= date_trunc('day', now() - interval '365 days')) x JOIN stage st ON st.id = x.stage_id AND st.kind = 'OPEN' GROUP BY x.stage_id) "
            "SELECT p.id, p.name, p.amount_cents, p.expected_close_date, p.updated_at, p.push_count, st.name, "
            # The risk facts the writers keep on the deal row.
            "p.first_amount_cents, p.pushed_at, p.stage_entered_at, "
            "m.mean_days, p.opened_at, p.last_activity_at, EXISTS (SELECT 1 FROM activity) "
            "FROM page p JOIN stage st ON st.id = p.stage_id LEFT JOIN means m ON m.stage_id = p.stage_id"
        ),
    ),
]
