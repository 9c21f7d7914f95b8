#!/usr/bin/env python3
"""Re-scoring every open lead after a rule change, through the API.

    python3 bench/lead_scoring.py            # seeds 1,000,000 deals (2,000,000 leads)
    python3 bench/lead_scoring.py --reuse    # keep the seeded database

On the bench database (shared with bench/metrics.py), replaces the lead
scoring rules three times with setLeadScoringRules (each a different set,
so every call rewrites the open leads whose score changes) and prints the
wall time of each call with the leads it re-scored, then puts the demo
rules back. Target: under 60 s for 2,000,000 leads on PostgreSQL.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import load  # noqa: E402

SET = "mutation($r: [LeadScoringRuleInput!]!) { setLeadScoringRules(rules: $r) { rescoredLeads } }"
RULE_SETS = [
    [{"field": "SOURCE", "operator": "EQUALS", "value": "paid search", "points": 40}],
    [{"field": "TITLE", "operator": "CONTAINS", "value": "director", "points": 35},
     {"field": "EMAIL", "operator": "ENDS_WITH", "value": ".com", "points": 5},
     {"field": "INDUSTRY", "operator": "IN", "value": "software,finance", "points": 20}],
    [{"field": "SOURCE", "operator": "IN", "value": "webinar,referral", "points": 25},
     {"field": "TITLE", "operator": "CONTAINS", "value": "vp", "points": 30},
     {"field": "TITLE", "operator": "IN", "value": "cfo,director of operations,head of it", "points": 20},
     {"field": "TITLE", "operator": "EQUALS", "value": "student", "points": -40},
     {"field": "SEGMENT", "operator": "EQUALS", "value": "enterprise", "points": 15},
     {"field": "EMAIL", "operator": "STARTS_WITH", "value": "info@", "points": -10}],
]


def main():
    args = load.arguments(__doc__, clients="1", seconds=1)
    bench = load.Bench(args)
    try:
        leads = int(load.psql(bench.db_url, "SELECT COUNT(*) FROM lead"))
        open_leads = int(load.psql(bench.db_url, "SELECT COUNT(*) FROM lead WHERE status IN ('NEW', 'WORKING', 'QUALIFIED')"))
        activities = int(load.psql(bench.db_url, "SELECT COUNT(*) FROM activity"))
        print(f"deals {bench.deals:,}; leads {leads:,} ({open_leads:,} open); activities {activities:,}")
        for i, rules in enumerate(RULE_SETS):
            started = time.time()
            d = bench.api.post(SET, {"r": rules})
            took = time.time() - started
            n = d["setLeadScoringRules"]["rescoredLeads"]
            print(f"rule set {i + 1} ({len(rules)} rules): {took:.1f} s, {n:,} open leads re-scored", flush=True)
    finally:
        bench.stop()


if __name__ == "__main__":
    main()
