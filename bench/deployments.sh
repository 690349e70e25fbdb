#!/usr/bin/env bash
# Deployments benchmark (issue 10). One command:  bench/deployments.sh
#
# The logistic regression of bench/serving.sh (bench/serving_models.py: the
# skl2onnx export for modelops, the scikit-learn original for MLServer), in
# the same run on the same machine:
#   - modelops (release build, fresh SQLite data dir, every request
#     authenticated): the export pushed twice as versions 1 and 2 of model
#     `logreg`, both approved (tier low, a model card, a second user with
#     the validator role), and three deployments of it:
#       direct-rec  version 1, every prediction recorded (sampling 1.0)
#       canary-rec  version 1 → canary of version 2 held at its 10 % step
#                   for the whole run (steps 10,100; hold 10⁹ requests;
#                   the default rollback condition), recorded
#       shadow-rec  version 1, version 2 mirrored on every call, recorded
#       direct-norec  version 1, nothing recorded (sampling 0): routing
#                   alone, for the in-process decomposition
#   - MLServer 1.7.1 with mlserver-sklearn (bench/.venv-mlserver, MLServer's
#     defaults): what a KServe/Seldon user gets under the same protocol,
#     without deployments, canaries or payload logging.
# 1. wrk (2 threads; OIP V2 JSON, one row of 10 FP32 features per request,
#    $ROWS distinct rows of the training data in turn) at each of
#    $CONCURRENCY connections, $DURATION per case, the cases taking turns:
#    the version route (/v2/models/logreg/versions/1/infer, no recording),
#    the three deployments (/v2/models/<deployment>/infer) and MLServer.
#    After each deployment case the script waits until its recorder queue is
#    empty, so one case's writes do not run during the next.
# 2. Record accounting: each deployment's live counters (calls, shadow
#    calls, records submitted/written/dropped/failed/queued) and the rows in
#    the database per deployment and route, after modelops has stopped.
# 3. In process, without sockets (bench/loadgen deploy-latency): $CALLS
#    sequential calls of each route after $WARMUP, the routes taking turns
#    in $BLOCKS blocks; p50/p90/p99 per call and the p50 difference to the
#    version route: routing (direct-norec) plus recording (direct-rec,
#    canary-rec, shadow-rec). And the model alone (bench/loadgen model-time).
# 4. The recorder alone into a fresh SQLite store (bench/loadgen
#    record-sustained): $RECORDS records as fast as its queue accepts, then
#    $RATE records/s for $RATE_SECONDS; records written per second, its
#    counters, and the process's peak memory along the run.
# Prints tables and writes bench/out/deployments.json.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
DURATION=${DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-"1 64"}
CALLS=${CALLS:-20000}
WARMUP=${WARMUP:-2000}
BLOCKS=${BLOCKS:-4}
RECORDS=${RECORDS:-2000000}
RATE=${RATE:-50000}
RATE_SECONDS=${RATE_SECONDS:-20}
ROWS=${ROWS:-256}
out=bench/out
mkdir -p "$out"
# cargo builds where CARGO_TARGET_DIR says, else in ./target as the other scripts.
target_dir=${CARGO_TARGET_DIR:-target}
bin="$target_dir/release/modelops"
loadgen="$target_dir/release/modelops-loadgen"

if ! command -v wrk >/dev/null; then
    [ "$(id -u)" -eq 0 ] && sudo="" || sudo=sudo
    $sudo apt-get update -qq && $sudo apt-get install -y -qq wrk >/dev/null
fi
# The test virtualenv trains and exports the model.
venv="$root/.venv"
scripts/python-venv
mls="$root/bench/.venv-mlserver"
mreq="$root/bench/mlserver-requirements.txt"
if [ ! -x "$mls/bin/mlserver" ] || [ "$(cat "$mls/.requirements.sha256" 2>/dev/null)" != "$(sha256sum "$mreq" | cut -d' ' -f1)" ]; then
    echo "creating MLServer's virtualenv in bench/.venv-mlserver" >&2
    python3 -m venv "$mls" && "$mls/bin/pip" install -q --upgrade pip && "$mls/bin/pip" install -q -r "$mreq"
    sha256sum "$mreq" | cut -d' ' -f1 > "$mls/.requirements.sha256"
fi
cargo build --release --locked -p modelops -p modelops-loadgen

tmp=$(mktemp -d)
groups=()
# Each server runs in a process group of its own (setsid), stopped whole:
# TERM, then KILL for whatever is left after 15 s.
stop_group() {
    kill -- "-$1" 2>/dev/null || return 0
    for _ in $(seq 150); do kill -0 -- "-$1" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL -- "-$1" 2>/dev/null || true
}
cleanup() { for g in "${groups[@]}"; do stop_group "$g"; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
wait_for() { # url [seconds]
    for _ in $(seq $((${2:-30} * 10))); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "server at $1 did not start" >&2; exit 1
}

"$venv/bin/python" bench/serving_models.py make "$tmp"
# MLServer serves the logistic regression only.
rm -rf "$tmp/mlserver/rf"
# The requests: OIP V2 JSON, one row of 10 FP32 features, the first $ROWS
# rows of the training data in turn (one body per line; and as a wrk script).
python3 - "$tmp" "$ROWS" <<'PY'
import json, sys
tmp, n = sys.argv[1], int(sys.argv[2])
rows = json.load(open(f"{tmp}/batch.json"))[:n]
bodies = [json.dumps({"inputs": [{"name": "X", "shape": [1, 10], "datatype": "FP32", "data": r}]}) for r in rows]
open(f"{tmp}/bodies.jsonl", "w").write("\n".join(bodies) + "\n")
with open(f"{tmp}/bodies.lua", "w") as f:
    f.write("bodies = {\n" + "".join(f"  '{b}',\n" for b in bodies) + "}\n")
PY
body=$(head -n 1 "$tmp/bodies.jsonl")

# modelops on a free port, its address read from its "listening on" line.
(exec setsid "$bin" serve --addr 127.0.0.1:0 --data-dir "$tmp/data" --log warn 2>"$tmp/modelops.log") & mo_pgid=$!; groups+=("$mo_pgid")
for _ in $(seq 300); do grep -q "modelops listening on" "$tmp/modelops.log" 2>/dev/null && break; sleep 0.1; done
mo_url=$(grep -o "modelops listening on http://[^ ]*" "$tmp/modelops.log" | head -n 1 | awk '{print $4}')
[ -n "$mo_url" ] || { echo "modelops did not start:" >&2; cat "$tmp/modelops.log" >&2; exit 1; }
wait_for "$mo_url/readyz"
export MODELOPS_SERVER=$mo_url MODELOPS_TOKEN=$(cat "$tmp/data/admin.token")
auth="Authorization: Bearer $MODELOPS_TOKEN"
mo() { "$bin" "$@"; }

# Two approved versions of the same export; a validator who is not the author approves.
mo users create vic --role validator >/dev/null
vic_token=$(mo tokens create --name bench --user vic 2>/dev/null)
echo '{"intended_use": "benchmark of deployments: a logistic regression on synthetic data"}' > "$tmp/card.json"
mo models create logreg --kind onnx --owner admin --risk-tier low >/dev/null
for v in 1 2; do
    mo versions push logreg "$tmp/logreg.onnx" --card "$tmp/card.json" >/dev/null
    mo versions submit logreg "$v" >/dev/null
    MODELOPS_TOKEN=$vic_token mo versions approve logreg "$v" --comment "benchmark" >/dev/null
done
mo deploy create direct-rec --model logreg --version 1 --sampling 1.0 >/dev/null
mo deploy create canary-rec --model logreg --version 1 --sampling 1.0 --canary 2 --steps 10,100 --hold-requests 1000000000 >/dev/null
mo deploy create shadow-rec --model logreg --version 1 --sampling 1.0 --shadow 2 >/dev/null
# Routing without recording (sampling 0), for the in-process decomposition only.
mo deploy create direct-norec --model logreg --version 1 --sampling 0 >/dev/null

# MLServer: the scikit-learn original, its defaults (ports apart).
(cd "$tmp/mlserver" && exec setsid "$mls/bin/mlserver" start . >"$tmp/mlserver.log" 2>&1) & ml_pgid=$!; groups+=("$ml_pgid")
wait_for http://127.0.0.1:5981/v2/health/ready 120
wait_for http://127.0.0.1:5981/v2/models/logreg/ready 120

targets="version direct-rec canary-rec shadow-rec mlserver"
url_of() {
    case $1 in
        version) echo "$mo_url/v2/models/logreg/versions/1/infer" ;;
        mlserver) echo "http://127.0.0.1:5981/v2/models/logreg/infer" ;;
        *) echo "$mo_url/v2/models/$1/infer" ;;
    esac
}
# Every target answers the same prediction before the measured runs.
for t in $targets; do
    h=(-H "$auth"); [ "$t" = mlserver ] && h=()
    answer=$(curl -fsS "${h[@]}" -H 'content-type: application/json' -d "$body" "$(url_of "$t")") || { echo "$t does not answer" >&2; exit 1; }
    echo "$answer" | python3 -c 'import json,sys; a=json.load(sys.stdin); assert any(o["name"] in ("output_probability", "predict_proba", "predict") for o in a["outputs"]), a' \
        || { echo "$t answered: $answer" >&2; exit 1; }
done

cat > "$tmp/report.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format('{"requests": %d, "errors": %d, "non_2xx": %d, "per_second": %.1f, "p50_ms": %.3f, "p99_ms": %.3f}\n',
    summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status,
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
LUA
cat > "$tmp/infer.lua" <<LUA
dofile("$tmp/report.lua")
dofile("$tmp/bodies.lua")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
  n = n % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[n])
end
LUA
run_wrk() { # concurrency target
    local c=$1 threads=2
    [ "$c" -lt 2 ] && threads=1
    if [ "$2" = mlserver ]; then
        wrk -t"$threads" -c"$c" -d"$DURATION" -s "$tmp/infer.lua" "$(url_of "$2")" | tail -n 1
    else
        wrk -t"$threads" -c"$c" -d"$DURATION" -H "$auth" -s "$tmp/infer.lua" "$(url_of "$2")" | tail -n 1
    fi
}
status() { curl -fsS -H "$auth" "$mo_url/api/v1/deployments/$1"; }
# Waits until nothing of the deployment's records is queued (shadow calls
# finished and handed over too); prints the seconds it took.
drain() {
    local started=$SECONDS last="" now
    for _ in $(seq 600); do
        now=$(status "$1" | python3 -c 'import json,sys; l=json.load(sys.stdin)["live"]; r=l["records"]; print(r["queued"], r["submitted"])')
        [ "${now%% *}" = 0 ] && [ "$now" = "$last" ] && break
        last=$now
        sleep 0.1
    done
    echo $((SECONDS - started))
}

{
    echo "{"
    echo "\"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\", \"build\": \"$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- crates bench/loadgen 2>/dev/null || echo '+changes')\","
    echo "\"duration\": \"$DURATION\", \"load_average_before\": \"$(cut -d' ' -f1-3 /proc/loadavg)\","
    echo "\"load\": {"
    first=1
    for c in $CONCURRENCY; do
        for t in $targets; do
            [ $first -eq 1 ] || echo ","
            first=0
            echo "wrk: $t c=$c" >&2
            result=$(run_wrk "$c" "$t")
            if [ "$t" != mlserver ] && [ "$t" != version ]; then
                waited=$(drain "$t")
                result="${result%\}}, \"drain_seconds\": $waited}"
            fi
            echo "\"$t/c$c\": $result"
        done
    done
    echo "},"
    echo "\"deployments\": {"
    first=1
    for d in direct-rec canary-rec shadow-rec; do
        [ $first -eq 1 ] || echo ","
        first=0
        echo "\"$d\": $(status "$d" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps({"state": d["state"], "routes": d["routes"], "live": d["live"]}))')"
    done
    echo "},"
    echo "\"load_average_after_wrk\": \"$(cut -d' ' -f1-3 /proc/loadavg)\","
} > "$tmp/part1.json"

# modelops stops (its recorder writes what is queued), then the rows are counted.
stop_group "$mo_pgid"
stop_group "$ml_pgid"
groups=()
rows=$(python3 - "$tmp/data/modelops.db" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
rows = {}
for deployment, route, n in db.execute("SELECT deployment, route, count(*) FROM prediction_records GROUP BY deployment, route"):
    rows.setdefault(deployment, {})[route] = n
print(json.dumps(rows))
PY
)

echo "in process: deploy-latency ($CALLS calls per route)" >&2
latency=$("$loadgen" deploy-latency --data-dir "$tmp/data" --body "$tmp/bodies.jsonl" --calls "$CALLS" --warmup "$WARMUP" --blocks "$BLOCKS" \
    --request 'version=POST /v2/models/logreg/versions/1/infer' \
    --request 'direct-norec=POST /v2/models/direct-norec/infer' \
    --request 'direct-rec=POST /v2/models/direct-rec/infer' \
    --request 'canary-rec=POST /v2/models/canary-rec/infer' \
    --request 'shadow-rec=POST /v2/models/shadow-rec/infer')
model_only=$("$loadgen" model-time --batch "$tmp/batch.json" --model "logreg=$tmp/logreg.onnx")
echo "recorder alone: $RECORDS records as fast as accepted, then $RATE/s for $RATE_SECONDS s" >&2
sustained_max=$("$loadgen" record-sustained --dir "$tmp/record-max" --records "$RECORDS")
rm -rf "$tmp/record-max"
sustained_rate=$("$loadgen" record-sustained --dir "$tmp/record-rate" --records $((RATE * RATE_SECONDS)) --rate "$RATE")
rm -rf "$tmp/record-rate"

{
    cat "$tmp/part1.json"
    echo "\"rows_in_database\": $rows,"
    echo "\"in_process\": $latency,"
    echo "\"model_only\": $model_only,"
    echo "\"recorder\": {\"max\": $sustained_max, \"rate\": $sustained_rate}"
    echo "}"
} > "$out/deployments.json"

python3 - "$out/deployments.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
load = r["load"]
print(f"\nOIP V2 JSON, one row of 10 features, logistic regression; wrk over loopback, {r['duration']} per case ({r['date']}, build {r['build']}, load average before {r['load_average_before']})")
print(f"{'target':34} {'c':>3} | {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} | {'vs version':>10} {'vs MLServer':>11} | notes")
names = {"version": "modelops version route (no record)", "direct-rec": "deployment, 100 % recorded",
         "canary-rec": "canary 90/10, recorded", "shadow-rec": "shadow 100 %, both recorded", "mlserver": "MLServer 1.7.1 (direct)"}
for key, x in load.items():
    t, c = key.split("/")
    base = load[f"version/{c}"]["per_second"]
    ml = load[f"mlserver/{c}"]["per_second"]
    notes = []
    if x["errors"] or x["non_2xx"]:
        notes.append(f"{x['non_2xx']} non-2xx, {x['errors']} socket errors")
    if "drain_seconds" in x:
        notes.append(f"queue drained in {x['drain_seconds']} s")
    print(f"{names[t]:34} {c[1:]:>3} | {x['per_second']:8.0f} {x['p50_ms']:7.2f} {x['p99_ms']:7.2f} | {x['per_second'] / base:9.2f}x {x['per_second'] / ml:10.1f}x | {'; '.join(notes)}")

print("\nRecords (after the load; rows counted in SQLite after modelops stopped)")
print(f"{'deployment':11} {'calls':>9} {'shadow':>9} {'skipped':>7} {'submitted':>10} {'written':>10} {'dropped':>8} {'failed':>7} {'queued':>7} {'rows':>10} | accounted")
lost = False
for name, d in r["deployments"].items():
    live = d["live"]; rec = live["records"]
    rows = sum(r["rows_in_database"].get(name, {}).values())
    expected = live["calls"] - live["sampled_out"] + live["shadow_calls"]
    ok = rec["submitted"] == expected and rec["submitted"] == rec["written"] + rec["dropped"] + rec["failed"] + rec["queued"] and rows == rec["written"]
    lost |= not ok
    print(f"{name:11} {live['calls']:9} {live['shadow_calls']:9} {live.get('shadow_skipped', 0):7} {rec['submitted']:10} {rec['written']:10} {rec['dropped']:8} {rec['failed']:7} {rec['queued']:7} {rows:10} | {'yes' if ok else 'NO'}")
canary = r["deployments"]["canary-rec"]
c = canary["live"].get("canary")
print(f"canary-rec after the run: state {canary['state']}, step {c and c['step']} of {c and c['steps']} at {c and c['weight']} %, tripped: {c and c['tripped']}; routes {[(x['version'], x['stats']['requests']) for x in canary['live']['routes']]}")

p = r["in_process"]
m = r["model_only"]["logreg/1_row_us"]
print(f"\nIn process, no sockets: {p['calls_per_request']} sequential calls per route after {p['warmup']} ({p['blocks']} blocks, the routes taking turns); the model alone: {m:.2f} µs per row")
print(f"{'route':12} | {'p50 µs':>7} {'p90 µs':>7} {'p99 µs':>7} {'mean µs':>7} | {'p50 − version':>13} {'blocks: median (min–max)':>25} {'mean − version':>14} | {'ctx switches/call':>17}")
for x in p["requests"]:
    b = x["block_p50_minus_first_us"]
    print(f"{x['label']:12} | {x['p50_us']:7.1f} {x['p90_us']:7.1f} {x['p99_us']:7.1f} {x['mean_us']:7.1f} | {x['p50_minus_first_us']:13.1f} {b['median']:9.1f} ({b['min']:.1f} – {b['max']:.1f}) {x['mean_minus_first_us']:14.1f} | {x['context_switches_per_call']:17.2f}")
rec = p["records"]
print(f"records of the in-process calls: {rec['submitted']} submitted, {rec['written']} written, {rec['dropped']} dropped, {rec['failed']} failed")
for x in p["requests"]:
    l = x.get("live")
    if not l:
        continue
    ok = l["records_submitted"] == l["calls"] - l["sampled_out"] + l["shadow_calls"] and l["records_submitted"] == l["records_written"] + l["records_dropped"] + l["records_failed"] + l["records_queued"]
    lost |= not ok
    print(f"  {x['label']:12}: {l['calls']} calls, {l['sampled_out']} not sampled, {l['shadow_calls']} shadow calls ({l.get('shadow_skipped', 0)} skipped: shadows in flight at their bound), "
          f"{l['records_submitted']} records submitted, {l['records_written']} written, {l['records_dropped']} dropped, {l['records_failed']} failed; accounted: {'yes' if ok else 'NO'}")

print("\nRecorder alone into SQLite (records of 10 FP32 inputs, a label and 2 probabilities)")
for mode, x in r["recorder"].items():
    c = x["counters"]
    mem = ", ".join(f"{int(mk['submitted_share'] * 100)} %: {mk['vm_hwm_mib']:.0f}" for mk in x["memory"])
    offered = "as fast as accepted" if not x["offered_rate"] else f"{x['offered_rate']}/s offered"
    print(f"{offered:20}: {x['written_per_second']:9.0f} written/s over {x['seconds']:.1f} s; submitted {c['submitted']}, written {c['written']}, "
          f"dropped {c['dropped']} (queue full), failed {c['failed']}, balanced {x['balanced']}; peak RSS MiB at {mem}; after flush {x['after_flush']['vm_hwm_mib']:.0f}")
if lost:
    print("\nWARNING: some records are not accounted for (see above)")
PY
