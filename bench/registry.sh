#!/usr/bin/env bash
# Registry benchmark (issue 2). One command:  bench/registry.sh
#
# Starts the release server on an empty SQLite store, creates 10,000 versions
# with distinct 4 KiB artifacts (bench/loadgen populate, 32 concurrent
# clients; every request carries the bootstrap admin's token), then drives get-by-alias, get-version and search with wrk at full
# concurrency for $DURATION each, next to a bare axum handler measured with the
# same wrk settings in the same run (the ceiling of loopback HTTP here).
# Prints a table and writes bench/out/registry.json.
set -euo pipefail
cd "$(dirname "$0")/.."
# The release build, in $CARGO_TARGET_DIR when set (as cargo builds it).
release="${CARGO_TARGET_DIR:-target}/release"
DURATION=${DURATION:-30s}
VERSIONS=${VERSIONS:-10000}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
out=bench/out
mkdir -p "$out"

if ! command -v wrk >/dev/null; then
    [ "$(id -u)" -eq 0 ] && sudo="" || sudo=sudo
    $sudo apt-get update -qq && $sudo apt-get install -y -qq wrk >/dev/null
fi
cargo build --release --locked -p modelops -p modelops-loadgen

tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

wait_for() { for _ in $(seq 100); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "server at $1 did not start" >&2; exit 1; }

# wrk prints one JSON line from done(): requests/s and latency percentiles in ms.
cat > "$tmp/report.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format('{"requests": %d, "errors": %d, "per_second": %.1f, "p50_ms": %.3f, "p99_ms": %.3f}\n',
    summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout,
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
LUA
cat > "$tmp/get_version.lua" <<LUA
dofile("$tmp/report.lua")
math.randomseed(42)
request = function() return wrk.format("GET", "/api/v1/models/bench/versions/" .. math.random(1, $VERSIONS)) end
LUA

run_wrk() { # name url [script]
    local script="$tmp/report.lua"; [ $# -ge 3 ] && script=$3
    local line
    line=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -H "$auth" -s "$script" "$2" | tail -n 1)
    echo "\"$1\": $line"
}

"$release"/modelops-loadgen baseline --addr 127.0.0.1:5998 & pids+=($!)
wait_for http://127.0.0.1:5998/
"$release"/modelops serve --addr 127.0.0.1:5997 --data-dir "$tmp/data" --log warn & pids+=($!)
wait_for http://127.0.0.1:5997/healthz

# Every request is authenticated, as in production: the bootstrap admin's token.
MODELOPS_TOKEN=$(cat "$tmp/data/admin.token")
export MODELOPS_TOKEN
auth="Authorization: Bearer $MODELOPS_TOKEN"
echo "creating $VERSIONS versions with 4 KiB artifacts…" >&2
create=$("$release"/modelops-loadgen populate --server http://127.0.0.1:5997 --versions "$VERSIONS")
curl -fsS -X PUT -H 'content-type: application/json' -H "$auth" \
    -d '{"version": 1234}' http://127.0.0.1:5997/api/v1/models/bench/aliases/staging >/dev/null

{
    echo "{"
    echo "\"create_version\": $create,"
    run_wrk baseline http://127.0.0.1:5998/; echo ","
    run_wrk get_by_alias http://127.0.0.1:5997/api/v1/models/bench/aliases/staging; echo ","
    run_wrk get_version http://127.0.0.1:5997/ "$tmp/get_version.lua"; echo ","
    run_wrk search "http://127.0.0.1:5997/api/v1/models?owner=bench&risk_tier=low&name_prefix=be&page_size=20"
    echo "}"
} > "$out/registry.json"

python3 - "$out/registry.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
base = r["baseline"]["per_second"]
print(f"{'operation':<16}{'req/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'vs bare axum':>14}")
for name in ["baseline", "get_by_alias", "get_version", "search"]:
    x = r[name]
    print(f"{name:<16}{x['per_second']:>12.0f}{x['p50_ms']:>10.3f}{x['p99_ms']:>10.3f}{x['per_second']/base:>13.2f}x" + (f"  ({x['errors']} errors)" if x['errors'] else ""))
c = r["create_version"]
print(f"{'create_version':<16}{c['per_second']:>12.0f}{c['p50_ms']:>10.3f}{c['p99_ms']:>10.3f}   (upload + create, 32 clients)")
PY
