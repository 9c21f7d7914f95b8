#!/usr/bin/env bash
# The client ecosystem against a live `serve --demo` (issue 14): the
# graphql-http audit (npm), Python gql (PyPI) and GraphiQL in headless
# Chromium (Debian). Each installs what it needs, and is skipped with a
# message when that cannot be installed (no registry, no package); a check
# that runs and fails, fails the script.
#   bash .ci/clients.sh [path to the salesops binary, default target/debug/salesops]
set -uo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/debug/salesops}
work=$(mktemp -d /tmp/salesops-clients.XXXXXX)
status=0
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port/graphql"
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
echo "demo at $url"

echo "== graphql-http audit (GraphQL over HTTP)"
if command -v npm >/dev/null && (cd "$work" && npm install --silent --no-audit --no-fund --prefix "$work/npm" graphql-http@1.23.1 graphql@16.11.0 >/dev/null 2>&1); then
  NODE_PATH="$work/npm/node_modules" node .ci/graphql_http_audit.cjs "$url" "$token" || status=1
else
  echo "SKIPPED: npm or the npm registry is unavailable (graphql-http not installed)"
fi

echo "== Python gql: schema by introspection, query, subscription"
if python3 -c 'import gql, websockets, requests' 2>/dev/null \
  || pip install -q "gql[requests,websockets]>=3.5,<4" >/dev/null 2>&1; then
  timeout 180 python3 .ci/gql_client.py "$url" "$token" || status=1
else
  echo "SKIPPED: pip could not install gql"
fi

echo "== GraphiQL in headless Chromium"
if ! command -v chromium >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 || true
fi
if command -v chromium >/dev/null && python3 -c 'import websockets' 2>/dev/null; then
  timeout 180 python3 .ci/graphiql_browser.py --url "$url" || status=1
else
  echo "SKIPPED: chromium (Debian package) or python websockets unavailable"
fi
exit $status
