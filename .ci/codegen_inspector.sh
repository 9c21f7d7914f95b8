#!/usr/bin/env bash
# graphql-codegen and graphql-inspector against a live `serve --demo` (issue 14):
# inspector introspects the live URL and diffs it with schema.graphql (no
# breaking change allowed), codegen generates TypeScript types for an
# operation from the live URL. Not part of .ci/run (npm installs take a
# minute; Python gql is the client CI runs); rerun it by hand:
#   bash .ci/codegen_inspector.sh [path to the salesops binary, default target/debug/salesops]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/debug/salesops}
work=$(mktemp -d /tmp/salesops-codegen.XXXXXX)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
env -u SALESOPS_JWT_SECRET -u SALESOPS_JWT_PUBLIC_KEY \
  SALESOPS_DATABASE_URL="sqlite://$work/demo.db?mode=rwc" SALESOPS_BIND="127.0.0.1:$port" \
  "$bin" serve --demo >"$work/server.log" 2>&1 &
server=$!
token=""
for _ in $(seq 1 300); do
  token=$(grep -o "export TOKEN=[^ ]*" "$work/server.log" 2>/dev/null | head -1 | cut -d= -f2 || true)
  [ -n "$token" ] && curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
  sleep 0.2
done
[ -n "$token" ] || { echo "the demo did not start"; tail -20 "$work/server.log"; exit 1; }
url="http://127.0.0.1:$port/graphql"
cd "$work"
npm install --silent --no-audit --no-fund @graphql-inspector/cli@5 graphql@16 \
  @graphql-codegen/cli@5 @graphql-codegen/typescript@4 @graphql-codegen/typescript-operations@4 >/dev/null
echo "== graphql-inspector: introspect the live URL, diff with schema.graphql"
npx graphql-inspector introspect "$url" --header "Authorization: Bearer $token" --write live.graphql
npx graphql-inspector diff "$OLDPWD/schema.graphql" live.graphql | tail -1
echo "== graphql-codegen: TypeScript types for an operation, schema from the live URL"
echo 'query WeekPipeline { pipelineChanges(period: "2026-Q4") { starting ending rows { key { label } ending } } }' > op.graphql
cat > codegen.yml <<YML
schema:
  - $url:
      headers:
        Authorization: Bearer $token
documents: op.graphql
generates:
  out/types.ts:
    plugins: [typescript, typescript-operations]
YML
npx graphql-codegen --config codegen.yml >/dev/null
grep -q "export type WeekPipelineQuery" out/types.ts
echo "codegen: $(grep -c 'export type' out/types.ts) types generated, WeekPipelineQuery among them"
echo "== ok"
