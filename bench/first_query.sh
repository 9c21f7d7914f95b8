#!/usr/bin/env bash
# Time to first query: a clean build of the `salesops` binary, then
# `serve --demo` on a fresh SQLite database until the first GraphQL answer.
#
#   bench/first_query.sh [--profile release|demo|dev] [--src DIR] [--keep]
#
# --profile  the Cargo profile to build (default: demo, the fast path the
#            README's first command uses; release is the production build)
# --src      the source tree to build (default: this checkout); e.g. an
#            older commit exported with `git archive <rev> | tar -x -C DIR`
# --keep     keep the build directory (printed) instead of removing it
#
# The build goes to a new, empty target directory, so nothing is reused but
# the crates already downloaded to ~/.cargo/registry (run `cargo fetch`
# first: downloads are not part of the measurement). Prints the machine's
# load before and after, since a loaded machine builds slower.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=demo
src=$PWD
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile=$2; shift 2 ;;
    --src) src=$(cd "$2" && pwd); shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
target=$(mktemp -d /tmp/salesops-first-query.XXXXXX)
work=$(mktemp -d /tmp/salesops-first-query-run.XXXXXX)
cleanup() {
  [ -n "${server:-}" ] && kill "$server" 2>/dev/null || true
  rm -rf "$work"
  [ "$keep" = 1 ] && echo "build kept in $target" || rm -rf "$target"
}
trap cleanup EXIT

echo "source:  $src ($(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo 'not a git checkout'))"
echo "profile: $profile, $(nproc) cores, rustc $(rustc --version | cut -d' ' -f2)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
(cd "$src" && cargo fetch -q)
start=$(date +%s.%N)
# Wall time depends on what else runs; CPU time (user + sys of the
# compiler processes) is what the build costs, and on an idle 2-core
# machine the wall time is about half of it.
TIMEFORMAT='%R %U %S'
{ time (cd "$src" && CARGO_TARGET_DIR="$target" cargo build -q --profile "$profile" -p api --bin salesops 2>&3); } 3>&2 2>"$work/time"
built=$(date +%s.%N)
read -r _ cpu_user cpu_sys <"$work/time"
dir=$profile
[ "$profile" = dev ] && dir=debug
bin="$target/$dir/salesops"
echo "load after build: $(cut -d' ' -f1-3 /proc/loadavg)"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
run_start=$(date +%s.%N)
env -u SALESOPS_JWT_SECRET -u SALESOPS_JWT_PUBLIC_KEY \
  SALESOPS_DATABASE_URL="sqlite://$work/demo.db?mode=rwc" SALESOPS_BIND="127.0.0.1:$port" \
  "$bin" serve --demo >"$work/out.log" 2>&1 &
server=$!
answer=""
for _ in $(seq 1 1200); do
  token=$(grep -o 'export TOKEN=[^ ]*' "$work/out.log" 2>/dev/null | head -1 | cut -d= -f2 || true)
  if [ -n "$token" ]; then
    answer=$(curl -s "http://127.0.0.1:$port/graphql" -H "Authorization: Bearer $token" \
      -H 'Content-Type: application/json' -d '{"query":"{ deals(first: 1) { totalCount } }"}' || true)
    case "$answer" in *totalCount*) break ;; esac
  fi
  sleep 0.1
done
answered=$(date +%s.%N)
case "$answer" in *totalCount*) ;; *) echo "no answer; server log:"; tail -20 "$work/out.log"; exit 1 ;; esac
echo "first answer: $answer"
python3 - "$start" "$built" "$run_start" "$answered" "$profile" "$cpu_user" "$cpu_sys" <<'PY'
import sys
start, built, run, answered = map(float, sys.argv[1:5])
cpu = float(sys.argv[6]) + float(sys.argv[7])
print(f"clean build ({sys.argv[5]}): {built - start:7.1f} s wall, {cpu:7.1f} s CPU (user + sys)")
print(f"start to first answer:  {answered - run:7.1f} s (migrate, seed the demo, serve)")
print(f"time to first query:    {answered - start:7.1f} s")
PY
