#!/usr/bin/env bash
# A real BI client against a live `serve --demo` (issue 16): DuckDB (PyPI
# `duckdb`) loads the CSV exports and recomputes winRates by REP and
# STAGE_WEIGHTED by TERRITORY from the raw rows, to the cent
# (.ci/duckdb_bi.py). Skipped with a message when duckdb cannot be
# installed; a comparison that runs and differs fails the script.
#   bash .ci/duckdb_bi.sh [path to the salesops binary, default target/debug/salesops]
set -uo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/debug/salesops}
if ! python3 -c 'import duckdb' 2>/dev/null && ! pip install -q duckdb >/dev/null 2>&1; then
  echo "SKIPPED: pip could not install duckdb"
  exit 0
fi
work=$(mktemp -d /tmp/salesops-duckdb.XXXXXX)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
env -u SALESOPS_JWT_SECRET -u SALESOPS_JWT_PUBLIC_KEY \
  SALESOPS_DATABASE_URL="sqlite://$work/demo.db?mode=rwc" SALESOPS_BIND="127.0.0.1:$port" \
  "$bin" serve --demo >"$work/server.log" 2>&1 &
server=$!
token=""
for _ in $(seq 1 300); do
  token=$(grep -o 'export TOKEN=[^ ]*' "$work/server.log" 2>/dev/null | head -1 | cut -d= -f2)
  [ -n "$token" ] && curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
  sleep 0.2
done
if [ -z "$token" ]; then
  echo "the demo did not start:"; tail -20 "$work/server.log"; exit 1
fi
timeout 300 python3 .ci/duckdb_bi.py "http://127.0.0.1:$port" "$token"
