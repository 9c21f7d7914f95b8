#!/usr/bin/env bash
# The vendored GraphiQL (api/assets/graphiql) comes from pinned npm packages.
#   bash .ci/vendor_graphiql.sh --check   compares the vendored files with them
#   bash .ci/vendor_graphiql.sh           (re)writes the vendored files
# Versions: keep in line with GRAPHIQL_VERSION in api/src/graphiql.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
GRAPHIQL=4.0.3
REACT=18.3.1
dest=api/assets/graphiql
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! (cd "$tmp" && npm pack --silent "graphiql@$GRAPHIQL" "react@$REACT" "react-dom@$REACT" >/dev/null 2>&1); then
  if [ "${1:-}" = "--check" ]; then
    echo "npm registry unavailable: checking the vendored files against SHA256SUMS only"
    (cd "$dest" && sha256sum -c SHA256SUMS)
    exit $?
  fi
  echo "npm pack failed" >&2
  exit 1
fi
for p in graphiql-$GRAPHIQL react-$REACT react-dom-$REACT; do
  mkdir -p "$tmp/$p" && tar xzf "$tmp/$p.tgz" -C "$tmp/$p"
done
declare -A src=(
  [graphiql.min.js]="graphiql-$GRAPHIQL/package/graphiql.min.js"
  [graphiql.min.css]="graphiql-$GRAPHIQL/package/graphiql.min.css"
  [react.production.min.js]="react-$REACT/package/umd/react.production.min.js"
  [react-dom.production.min.js]="react-dom-$REACT/package/umd/react-dom.production.min.js"
  [LICENSE-graphiql]="graphiql-$GRAPHIQL/package/LICENSE"
  [LICENSE-react]="react-$REACT/package/LICENSE"
)
status=0
for f in "${!src[@]}"; do
  if [ "${1:-}" = "--check" ]; then
    if cmp -s "$tmp/${src[$f]}" "$dest/$f"; then echo "ok   $f"; else echo "DIFF $f"; status=1; fi
  else
    cp "$tmp/${src[$f]}" "$dest/$f"
  fi
done
if [ "${1:-}" != "--check" ]; then
  (cd "$dest" && sha256sum graphiql.min.js graphiql.min.css react.production.min.js react-dom.production.min.js > SHA256SUMS)
fi
(cd "$dest" && sha256sum --quiet -c SHA256SUMS) || status=1
exit $status
