#!/bin/bash
# One question of bench/peers.py against a fresh `salesops serve`, with wrk:
# requests/s, p50, the CPU the server and PostgreSQL used, the server's peak
# RSS. For A/B runs of a setting or a binary (run alone, never beside a build):
#
#   bench/question.sh Q5 10                                   # 16 clients, 10 s
#   SALESOPS_MAX_COST_IN_FLIGHT=0 bench/question.sh VP 15     # any server setting
#   BIN=/tmp/old-salesops CLIENTS=1 bench/question.sh Q2 10   # another binary
#   QUERY='query($p: Period!) { ... }' bench/question.sh Q4 10  # another document, Q4's variables
#   SCAN=1 bench/question.sh Q2 10                            # rollups off (Salesops-Rollups: off)
#
# Needs wrk, the database bench/peers.py uses (DB=...) and a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
Q=${1:?question id: Q1..Q5 or VP}; SECONDS_=${2:-10}; CLIENTS=${CLIENTS:-16}
BIN=${BIN:-./target/release/salesops}; PORT=${PORT:-18080}
export SALESOPS_DATABASE_URL=${DB:-postgres://postgres@127.0.0.1:5432/salesops_bench}
export SALESOPS_JWT_SECRET=bench-secret-0123456789abcdef0123456789 SALESOPS_BIND=127.0.0.1:$PORT RUST_LOG=warn \
  SALESOPS_WEBHOOK_WORKER=false SALESOPS_DB_ACQUIRE_TIMEOUT_MS=300000 SALESOPS_STATEMENT_TIMEOUT_MS=0
TMP=$(mktemp -d)
SCAN_HEADER=()
WRK_SCAN=""
if [ -n "${SCAN:-}" ]; then SCAN_HEADER=(-H "Salesops-Rollups: off"); WRK_SCAN='wrk.headers["Salesops-Rollups"] = "off"'; fi
trap 'kill $PID 2>/dev/null || true; rm -rf "$TMP"' EXIT
python3 - "$Q" > "$TMP/body.json" <<'PY'
import json, sys
sys.path.insert(0, "bench")
import peers
q = sys.argv[1]
import os
query = os.environ.get("QUERY") or getattr(peers, f"{q}_OURS")
print(json.dumps({"query": query, "variables": getattr(peers, f"{q}_VARS", {})}))
PY
"$BIN" serve >"$TMP/server.log" 2>&1 &
PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
TOKEN=$("$BIN" token --role ADMIN --sub bench-question --ttl 1h)
if curl -s "${SCAN_HEADER[@]}" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' --data @"$TMP/body.json" \
  "http://127.0.0.1:$PORT/graphql" | grep -q '"errors"'; then echo "$Q answers errors" >&2; exit 1; fi
cat > "$TMP/wrk.lua" <<LUA
wrk.method = "POST"
wrk.body = io.open("$TMP/body.json"):read("*a")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
$WRK_SCAN
LUA
wrk -t1 -c"$CLIENTS" -d2s --timeout 300s -s "$TMP/wrk.lua" "http://127.0.0.1:$PORT/graphql" >/dev/null  # warm-up
cpu() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
pgcpu() { local t=0 v; for p in $(pgrep -f "postgres:" || true); do v=$(cpu "$p"); t=$((t + ${v:-0})); done; echo "$t"; }
S0=$(cpu $PID); P0=$(pgcpu); T0=$(date +%s.%N)
wrk -t1 -c"$CLIENTS" -d"${SECONDS_}s" --timeout 300s --latency -s "$TMP/wrk.lua" "http://127.0.0.1:$PORT/graphql" \
  | grep -E "Requests/sec|^ +50%|Non-2xx"
S1=$(cpu $PID); P1=$(pgcpu); T1=$(date +%s.%N)
python3 -c "d=$T1-$T0; print(f'server {($S1-$S0)/100/d:.2f} cores, postgres {($P1-$P0)/100/d:.2f} cores over {d:.1f} s')"
grep VmHWM "/proc/$PID/status"
