#!/usr/bin/env bash
# Scale-out benchmark (issue 15). One command:  bench/scale.sh
#
# On one throwaway PostgreSQL cluster and one S3-compatible server (moto, from
# the project's .venv: run scripts/test once, or set MOTO_SERVER), with the
# release binary:
#   1. writes: bench/loadgen populate creates $VERSIONS versions (a 4 KiB
#      artifact upload + the version, 16 clients) on a replica over PostgreSQL
#      and S3, on a server over PostgreSQL and a local folder (a database of
#      its own), and on a lone server over SQLite and a local folder;
#   2. reads: GET of a random version by 1, 2 and 3 replicas over the same
#      PostgreSQL, wrk driving each replica with its share of $CONNECTIONS
#      connections at once (what a round-robin balancer does), for $DURATION;
#   3. uploads: one $UPLOAD_MB MiB artifact streamed with curl to S3 and to the
#      local folder.
# Prints a table and writes bench/out/scale.json. On 2 cores, the replicas,
# PostgreSQL, moto and wrk share the same CPUs: the read figures say what
# replicas cost, not what they would add on separate machines.
set -euo pipefail
cd "$(dirname "$0")/.."
# The release build, in $CARGO_TARGET_DIR when set (as cargo builds it).
release="${CARGO_TARGET_DIR:-target}/release"
if [ -z "${MODELOPS_TEST_POSTGRES_URL:-}" ] || [ -z "${MODELOPS_TEST_S3_URL:-}" ]; then
    exec scripts/with-postgres scripts/with-s3 "$0" "$@"
fi
DURATION=${DURATION:-20s}
VERSIONS=${VERSIONS:-2000}
CONNECTIONS=${CONNECTIONS:-48}
UPLOAD_MB=${UPLOAD_MB:-1024}
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
wait_for() { for _ in $(seq 200); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "server at $1 did not start" >&2; exit 1; }

bucket_url="$MODELOPS_TEST_S3_URL/bench-$$"
replica() { # index port
    mkdir -p "$tmp/r$1"
    [ -f "$tmp/admin.token" ] && cp "$tmp/admin.token" "$tmp/r$1/admin.token"
    "$release"/modelops serve --addr "127.0.0.1:$2" --data-dir "$tmp/r$1" --database-url "$MODELOPS_TEST_POSTGRES_URL" \
        --artifacts-url "$bucket_url" --audit-key-file "$tmp/audit.key" --log warn & pids+=($!)
    wait_for "http://127.0.0.1:$2/healthz"
    [ -f "$tmp/admin.token" ] || cp "$tmp/r$1/admin.token" "$tmp/admin.token"
}
replica 0 5971
replica 1 5972
replica 2 5973
"$release"/modelops serve --addr 127.0.0.1:5974 --data-dir "$tmp/sqlite" --log warn & pids+=($!)
wait_for http://127.0.0.1:5974/healthz
# PostgreSQL with a local folder, in a database of its own on the same cluster.
pg_local="${MODELOPS_TEST_POSTGRES_URL%/*}/bench_local"
python3 - "$MODELOPS_TEST_POSTGRES_URL" <<'PY'
import subprocess, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
subprocess.run(["psql", "-h", u.hostname, "-p", str(u.port), "-U", u.username or "postgres", "-d", u.path.lstrip("/"), "-qc", "CREATE DATABASE bench_local"], check=True)
PY
"$release"/modelops serve --addr 127.0.0.1:5975 --data-dir "$tmp/pglocal" --database-url "$pg_local" --log warn & pids+=($!)
wait_for http://127.0.0.1:5975/healthz
auth="Authorization: Bearer $(cat "$tmp/admin.token")"
sqlite_auth="Authorization: Bearer $(cat "$tmp/sqlite/admin.token")"

echo "writes: $VERSIONS versions on PostgreSQL + S3, then on SQLite + a local folder…" >&2
write_pg=$(MODELOPS_TOKEN=$(cat "$tmp/admin.token") "$release"/modelops-loadgen populate --server http://127.0.0.1:5971 --versions "$VERSIONS" --concurrency 16)
write_pg_local=$(MODELOPS_TOKEN=$(cat "$tmp/pglocal/admin.token") "$release"/modelops-loadgen populate --server http://127.0.0.1:5975 --versions "$VERSIONS" --concurrency 16)
write_sqlite=$(MODELOPS_TOKEN=$(cat "$tmp/sqlite/admin.token") "$release"/modelops-loadgen populate --server http://127.0.0.1:5974 --versions "$VERSIONS" --concurrency 16)

cat > "$tmp/get_version.lua" <<LUA
math.randomseed(42)
request = function() return wrk.format("GET", "/api/v1/models/bench/versions/" .. math.random(1, $VERSIONS)) end
done = function(summary, latency, requests)
  io.write(string.format('{"per_second": %.1f, "errors": %d, "p50_ms": %.3f, "p99_ms": %.3f}\n',
    summary.requests / (summary.duration / 1e6),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
LUA
reads() { # replicas → total requests/s over them, wrk per replica at once
    local n=$1 per=$((CONNECTIONS / $1)) i wrks=()
    for i in $(seq 0 $((n - 1))); do
        wrk -t1 -c"$per" -d"$DURATION" -H "$auth" -s "$tmp/get_version.lua" "http://127.0.0.1:597$((i + 1))" | tail -n 1 > "$tmp/reads-$n-$i.json" &
        wrks+=($!)
    done
    wait "${wrks[@]}"
    python3 - "$tmp" "$n" <<'PY'
import json, sys, glob
runs = [json.load(open(f)) for f in sorted(glob.glob(f"{sys.argv[1]}/reads-{sys.argv[2]}-*.json"))]
print(json.dumps({"replicas": int(sys.argv[2]), "per_second": round(sum(r["per_second"] for r in runs), 1),
                  "errors": sum(r["errors"] for r in runs), "p50_ms": max(r["p50_ms"] for r in runs), "p99_ms": max(r["p99_ms"] for r in runs)}))
PY
}
echo "reads: 1, 2 and 3 replicas, $DURATION each…" >&2
read1=$(reads 1); read2=$(reads 2); read3=$(reads 3)

echo "uploads: $UPLOAD_MB MiB to S3 and to a local folder…" >&2
head -c "$((UPLOAD_MB * 1024 * 1024))" /dev/urandom > "$tmp/big.bin"
upload() { # url auth → seconds
    curl -fsS -o /dev/null -w '%{time_total}' -X POST -H "$2" -H 'content-type: application/octet-stream' -T "$tmp/big.bin" "$1/api/v1/artifacts?filename=big.bin"
}
up_s3=$(upload http://127.0.0.1:5971 "$auth")
up_local=$(upload http://127.0.0.1:5974 "$sqlite_auth")
rm -f "$tmp/big.bin"

python3 - "$write_pg" "$write_pg_local" "$write_sqlite" "$read1" "$read2" "$read3" "$up_s3" "$up_local" "$UPLOAD_MB" "$out/scale.json" <<'PY'
import json, sys
wp, wpl, ws, r1, r2, r3 = (json.loads(a) for a in sys.argv[1:7])
s3, local, mb = float(sys.argv[7]), float(sys.argv[8]), int(sys.argv[9])
result = {"writes": {"postgres_s3": wp, "postgres_local": wpl, "sqlite_local": ws}, "reads": [r1, r2, r3],
          "upload_mib_per_s": {"s3": round(mb / s3, 1), "local": round(mb / local, 1)}, "upload_mib": mb}
json.dump(result, open(sys.argv[10], "w"), indent=1)
rate = lambda w: w.get("per_second", w.get("versions_per_second"))
print(f"{'measure':44} {'value':>12}")
print(f"{'versions/s, PostgreSQL + S3 (16 clients)':44} {rate(wp):>12}")
print(f"{'versions/s, PostgreSQL + local folder (16 clients)':44} {rate(wpl):>12}")
print(f"{'versions/s, SQLite + local folder (16 clients)':44} {rate(ws):>12}")
for r in (r1, r2, r3):
    print(f"{'GET version/s, ' + str(r['replicas']) + ' replica(s), p99 ' + str(r['p99_ms']) + ' ms':44} {r['per_second']:>12}")
print(f"{'upload MiB/s, S3 (moto) / local folder':44} {result['upload_mib_per_s']['s3']:>6} / {result['upload_mib_per_s']['local']}")
PY
