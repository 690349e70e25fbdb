#!/usr/bin/env bash
# MLflow compatibility benchmark. One command:  bench/mlflow.sh
#
# Starts, in the same run on the same machine,
#   - modelops (release build, empty SQLite store, MLflow's REST API under
#     /api/2.0/mlflow; every request carries the bootstrap admin's token), and
#   - a real `mlflow server` 3.17.2 from the test virtualenv (.venv): SQLite
#     backend, --artifacts-destination, otherwise its defaults (4 workers),
#     in a process group of its own, stopped whole,
# seeds both with the unmodified MLflow client (bench/mlflow_bench.py seed:
# an experiment and a run, 50 registered models, `bench` version 1 with the
# alias `challenger`), then
#   1. the Python client end to end, sequential, against each server:
#      500 get_model_version_by_alias, 200 create_model_version and a
#      1,000-step training loop logging 5 metrics per step
#      (mlflow.log_metrics inside mlflow.start_run) — wall time, per-call
#      median, the client's and the server's CPU time;
#   2. wrk (2 threads, sharing the 2 cores with the servers) at concurrency
#      $CONCURRENCY, $DURATION each, on get model version by alias, get model
#      version, search registered models (max_results=100), create model
#      version and log-batch of 100 metrics (distinct steps, timestamps and
#      values in every request), the two servers alternating case by case.
# Prints tables and writes bench/out/mlflow.json; the servers' logs are
# bench/out/mlflow-modelops.log and bench/out/mlflow-server.log.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
DURATION=${DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-"8 64"}
THREADS=${THREADS:-2}
MLFLOW_WORKERS=4  # `mlflow server`'s default, which the script keeps
WRK_TIMEOUT=${WRK_TIMEOUT:-30s}  # MLflow's answers at c=64 take longer than wrk's default 2 s
ALIASES=${ALIASES:-500}
CREATES=${CREATES:-200}
STEPS=${STEPS:-1000}
out=bench/out
mkdir -p "$out"
# cargo builds where CARGO_TARGET_DIR says, else in ./target as the other scripts.
target_dir=${CARGO_TARGET_DIR:-target}
bin="$target_dir/release/modelops"

if ! command -v wrk >/dev/null; then
    [ "$(id -u)" -eq 0 ] && sudo="" || sudo=sudo
    $sudo apt-get update -qq && $sudo apt-get install -y -qq wrk >/dev/null
fi
# The test virtualenv holds the mlflow client and server (mlflow==3.17.2).
venv="$root/.venv"
scripts/python-venv
cargo build --release --locked -p modelops

# Neither side phones home; a failed request fails at once, not after retries.
export MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true MLFLOW_HTTP_REQUEST_MAX_RETRIES=0 MLFLOW_HTTP_REQUEST_TIMEOUT=60
unset MLFLOW_TRACKING_URI MLFLOW_TRACKING_TOKEN
py="$venv/bin/python"

tmp=$(mktemp -d)
groups=()
# Each server runs in a process group of its own (setsid), stopped whole:
# TERM, then KILL for whatever is left after 10 s.
stop_group() {
    kill -- "-$1" 2>/dev/null || return 0
    for _ in $(seq 100); do kill -0 -- "-$1" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL -- "-$1" 2>/dev/null || true
}
cleanup() { for g in "${groups[@]}"; do stop_group "$g"; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
wait_for() { # url [seconds]
    for _ in $(seq $((${2:-30} * 10))); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "server at $1 did not start" >&2; exit 1
}

# modelops as the tests start it: a free port (127.0.0.1:0), the address read
# from its "listening on" line, then /readyz.
(exec setsid "$bin" serve --addr 127.0.0.1:0 --data-dir "$tmp/modelops" --log warn 2>"$out/mlflow-modelops.log") & mo_pgid=$!; groups+=("$mo_pgid")
for _ in $(seq 300); do grep -q "modelops listening on" "$out/mlflow-modelops.log" 2>/dev/null && break; sleep 0.1; done
mo_url=$(grep -o "modelops listening on http://[^ ]*" "$out/mlflow-modelops.log" | head -n 1 | awk '{print $4}')
[ -n "$mo_url" ] || { echo "modelops did not start:" >&2; cat "$out/mlflow-modelops.log" >&2; exit 1; }
wait_for "$mo_url/readyz"
token=$(cat "$tmp/modelops/admin.token")
auth="Authorization: Bearer $token"

# The real MLflow server on a free port, SQLite backend, local artifacts.
mkdir -p "$tmp/mlflow"
ml_port=$("$py" bench/mlflow_bench.py free-port)
ml_url="http://127.0.0.1:$ml_port"
(cd "$tmp/mlflow" && exec setsid "$venv/bin/mlflow" server --backend-store-uri "sqlite:///$tmp/mlflow/mlflow.db" \
    --artifacts-destination "$tmp/mlflow/artifacts" --port "$ml_port" >"$root/$out/mlflow-server.log" 2>&1) & ml_pgid=$!; groups+=("$ml_pgid")
wait_for "$ml_url/health" 180
# /health answers once the first of uvicorn's workers is up: wait for all of them.
for _ in $(seq 1200); do [ "$(grep -c "Application startup complete" "$out/mlflow-server.log")" -ge "$MLFLOW_WORKERS" ] && break; sleep 0.1; done

echo "seeding both servers with the MLflow client…" >&2
# The client prints to standard output too ("View run …"): the JSON is the last line.
quiet() { grep -v "Waiting up to 300 seconds for model version" >&2 || true; }
mo_seed=$(MLFLOW_TRACKING_URI=$mo_url MLFLOW_TRACKING_TOKEN=$token "$py" bench/mlflow_bench.py seed 2> >(quiet) | tail -n 1)
ml_seed=$(MLFLOW_TRACKING_URI=$ml_url "$py" bench/mlflow_bench.py seed 2> >(quiet) | tail -n 1)
mo_run=$(echo "$mo_seed" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["run_id"])')
ml_run=$(echo "$ml_seed" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["run_id"])')

# 1. The Python client, sequential, one server at a time.
echo "Python client against modelops ($mo_url):" >&2
mo_client=$(MLFLOW_TRACKING_URI=$mo_url MLFLOW_TRACKING_TOKEN=$token "$py" bench/mlflow_bench.py client --pgid "$mo_pgid" --aliases "$ALIASES" --creates "$CREATES" --steps "$STEPS" 2> >(quiet) | tail -n 1)
echo "Python client against mlflow server ($ml_url):" >&2
ml_client=$(MLFLOW_TRACKING_URI=$ml_url "$py" bench/mlflow_bench.py client --pgid "$ml_pgid" --aliases "$ALIASES" --creates "$CREATES" --steps "$STEPS" 2> >(quiet) | tail -n 1)

# 2. wrk. done() prints one JSON line: requests/s, latency percentiles in ms,
# socket errors and non-2xx answers apart.
cat > "$tmp/report.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format('{"requests": %d, "errors": %d, "non_2xx": %d, "per_second": %.1f, "p50_ms": %.3f, "p99_ms": %.3f}\n',
    summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status,
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
LUA
cat > "$tmp/create.lua" <<LUA
dofile("$tmp/report.lua")
wrk.method = "POST"
wrk.body = '{"name": "bench-create", "source": "s3://bucket/path"}'
wrk.headers["Content-Type"] = "application/json"
LUA
# log-batch: 100 metrics per request (10 keys × 10 steps), every request its
# own steps, timestamps and values (threads apart through their id), so that
# nothing is a re-sent duplicate.
for side in mo ml; do
    run_id=$mo_run; [ $side = ml ] && run_id=$ml_run
    cat > "$tmp/log_batch_$side.lua" <<LUA
dofile("$tmp/report.lua")
local threads = 0
setup = function(thread) thread:set("tid", threads); threads = threads + 1 end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
  n = n + 1
  local k = n * 64 + tid
  local parts = {}
  for j = 0, 99 do
    parts[j + 1] = string.format('{"key": "m%d", "value": %d.%02d, "timestamp": %d, "step": %d}',
      j % 10, k, j, 1780000000000 + k * 100 + j, k * 10 + math.floor(j / 10))
  end
  return wrk.format(nil, nil, nil, '{"run_id": "$run_id", "metrics": [' .. table.concat(parts, ", ") .. ']}')
end
LUA
done

# One request of every case on each server first: it must answer 2xx (a
# failure is printed and the run goes on; its wrk figures are then invalid).
probe() { # label curl-args…
    local code
    code=$(curl -sS -o "$tmp/probe.out" -w '%{http_code}' "${@:2}") || code=000
    if [ "${code:0:1}" != 2 ]; then
        echo "WARNING: $1 answered $code: $(head -c 500 "$tmp/probe.out")" >&2
    fi
}
batch_body() { printf '{"run_id": "%s", "metrics": [{"key": "probe", "value": 1.5, "timestamp": 1780000000000, "step": 0}]}' "$1"; }
for side in mo ml; do
    if [ $side = mo ]; then base=$mo_url; h=(-H "$auth"); run_id=$mo_run; else base=$ml_url; h=(); run_id=$ml_run; fi
    probe "$side alias" "${h[@]}" "$base/api/2.0/mlflow/registered-models/alias?name=bench&alias=challenger"
    probe "$side get version" "${h[@]}" "$base/api/2.0/mlflow/model-versions/get?name=bench&version=1"
    probe "$side search" "${h[@]}" "$base/api/2.0/mlflow/registered-models/search?max_results=100"
    probe "$side create" "${h[@]}" -H 'content-type: application/json' -d '{"name": "bench-create", "source": "s3://bucket/path"}' "$base/api/2.0/mlflow/model-versions/create"
    probe "$side log-batch" "${h[@]}" -H 'content-type: application/json' -d "$(batch_body "$run_id")" "$base/api/2.0/mlflow/runs/log-batch"
done
# How many registered models the search answers (the seed made 52).
searched=$(curl -fsS -H "$auth" "$mo_url/api/2.0/mlflow/registered-models/search?max_results=100" | "$py" -c 'import json,sys; print(len(json.load(sys.stdin).get("registered_models", [])))')

run_wrk() { # concurrency url script [header]
    local c=$1 threads=$THREADS
    [ "$c" -lt "$threads" ] && threads=$c
    if [ $# -ge 4 ]; then
        wrk -t"$threads" -c"$c" -d"$DURATION" --timeout "$WRK_TIMEOUT" -H "$4" -s "$3" "$2" | tail -n 1
    else
        wrk -t"$threads" -c"$c" -d"$DURATION" --timeout "$WRK_TIMEOUT" -s "$3" "$2" | tail -n 1
    fi
}
case_path() { # case → path
    case $1 in
        get_by_alias) echo "/api/2.0/mlflow/registered-models/alias?name=bench&alias=challenger" ;;
        get_version) echo "/api/2.0/mlflow/model-versions/get?name=bench&version=1" ;;
        search) echo "/api/2.0/mlflow/registered-models/search?max_results=100" ;;
        create_version) echo "/api/2.0/mlflow/model-versions/create" ;;
        log_batch) echo "/api/2.0/mlflow/runs/log-batch" ;;
    esac
}
case_script() { # case side → lua script
    case $1 in
        create_version) echo "$tmp/create.lua" ;;
        log_batch) echo "$tmp/log_batch_$2.lua" ;;
        *) echo "$tmp/report.lua" ;;
    esac
}

{
    echo "{"
    echo "\"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\", \"duration\": \"$DURATION\", \"threads\": $THREADS,"
    echo "\"mlflow_version\": \"$("$venv/bin/python" -c 'import mlflow; print(mlflow.__version__)')\", \"search_answers_models\": $searched,"
    echo "\"client\": {\"modelops\": $mo_client, \"mlflow\": $ml_client},"
    echo "\"load\": {"
    first=1
    for name in get_by_alias get_version search create_version log_batch; do
        for c in $CONCURRENCY; do
            [ $first -eq 1 ] || echo ","
            first=0
            echo "wrk: $name c=$c" >&2
            echo "\"$name/modelops/c$c\": $(run_wrk "$c" "$mo_url$(case_path $name)" "$(case_script $name mo)" "$auth"),"
            echo "\"$name/mlflow/c$c\": $(run_wrk "$c" "$ml_url$(case_path $name)" "$(case_script $name ml)")"
        done
    done
    echo "},"
    # Does modelops still accept a write once the load has stopped (wrk
    # drops the requests in flight at the end of every case)?
    echo "\"modelops_write_after_run\": $(curl -sS -o /dev/null -w '%{http_code}' -H "$auth" -H 'content-type: application/json' -d "$(batch_body "$mo_run")" "$mo_url/api/2.0/mlflow/runs/log-batch")"
    echo "}"
} > "$out/mlflow.json"

"$py" - "$out/mlflow.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"\nMLflow REST API over loopback, wrk {r['threads']} threads, {r['duration']} per case, same machine (mlflow server {r['mlflow_version']}, SQLite)")
print(f"{'operation':15} {'c':>3} | {'modelops req/s':>14} {'p50 ms':>7} {'p99 ms':>7} | {'mlflow req/s':>12} {'p50 ms':>7} {'p99 ms':>8} | ratio")
invalid = []
for key, ours in r["load"].items():
    name, server, c = key.split("/")
    if server != "modelops":
        continue
    theirs = r["load"][f"{name}/mlflow/{c}"]
    ratio = ours["per_second"] / theirs["per_second"] if theirs["per_second"] else float("inf")
    notes = []
    for who, x in [("modelops", ours), ("mlflow", theirs)]:
        if x["errors"] or x["non_2xx"]:
            notes.append(f"{who}: {x['non_2xx']} non-2xx, {x['errors']} socket errors of {x['requests']}")
            if who == "modelops":
                invalid.append(key)
    print(f"{name:15} {c[1:]:>3} | {ours['per_second']:14.0f} {ours['p50_ms']:7.2f} {ours['p99_ms']:7.2f} | {theirs['per_second']:12.1f} {theirs['p50_ms']:7.2f} {theirs['p99_ms']:8.2f} | {ratio:6.1f}x" + (f"  ({'; '.join(notes)})" if notes else ""))
print(f"(search answers {r['search_answers_models']} registered models per request on modelops)")
print("\nPython client (mlflow 3.17.2), sequential calls; CPU seconds over the phase (client: the Python process; server: its whole process group)")
print(f"{'call':32} | {'modelops wall s':>15} {'median ms':>9} {'client CPU':>10} {'server CPU':>10} | {'mlflow wall s':>13} {'median ms':>9} {'client CPU':>10} {'server CPU':>10} | ratio")
for name, label in [("get_model_version_by_alias", "get_model_version_by_alias"), ("create_model_version", "create_model_version"), ("training_loop", "log_metrics (5 per step)")]:
    o, m = r["client"]["modelops"][name], r["client"]["mlflow"][name]
    print(f"{label + ' x' + str(o['calls']):32} | {o['wall_s']:15.2f} {o['median_ms']:9.2f} {o['client_cpu_s']:10.2f} {o['server_cpu_s']:10.2f} | {m['wall_s']:13.2f} {m['median_ms']:9.2f} {m['client_cpu_s']:10.2f} {m['server_cpu_s']:10.2f} | {m['wall_s'] / o['wall_s']:5.1f}x")
print("(ratio: mlflow's wall time / modelops'; the client waits for one answer at a time, so its wall time is about client CPU + server CPU + loopback)")
if invalid:
    print(f"\nINVALID (modelops answered errors): {', '.join(invalid)}")
if r["modelops_write_after_run"] != 200:
    print(f"\nAfter the run modelops answered a log-batch with {r['modelops_write_after_run']}: its writes fail (see its log below)")
PY
if grep -q ERROR "$out/mlflow-modelops.log"; then
    echo "modelops logged $(grep -c ERROR "$out/mlflow-modelops.log") errors (bench/out/mlflow-modelops.log):"
    sed 's/\x1b\[[0-9;]*m//g' "$out/mlflow-modelops.log" | grep ERROR | sed -E 's/^[0-9T:.Z-]+ +//; s/request_id=[0-9a-f-]+ //' | sort | uniq -c | sort -rn | head -n 5
    echo "first at $(sed 's/\x1b\[[0-9;]*m//g' "$out/mlflow-modelops.log" | grep -m 1 ERROR | cut -d' ' -f1)"
fi
