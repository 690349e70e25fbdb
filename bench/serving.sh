#!/usr/bin/env bash
# Serving benchmark (issue 8). One command:  bench/serving.sh
#
# Trains a 100-tree random forest (depth 8) and a logistic regression on
# fixed data (10 features), exports both with skl2onnx, and serves them
#   - through modelops (release build, the ONNX exports, authenticated), and
#   - through MLServer 1.7.1 with mlserver-sklearn (the original scikit-learn
#     models, MLServer's defaults; a virtualenv of its own, bench/.venv-mlserver)
# in the same run on the same machine, then drives both with the same load
# generator (wrk, 2 threads) over loopback: OIP V2 JSON, one row of 10
# features, at concurrency 1, 8 and 64, $DURATION each. Then model-only time
# per row, single row and 1,000-row batch: modelops' runtime
# (bench/loadgen model-time) against onnxruntime (Python, default threads and
# 1 thread). Prints tables and writes bench/out/serving.json.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# The release build, in $CARGO_TARGET_DIR when set (as cargo builds it).
release="${CARGO_TARGET_DIR:-target}/release"
DURATION=${DURATION:-15s}
CONCURRENCY=${CONCURRENCY:-"1 8 64"}
out=bench/out
mkdir -p "$out"

if ! command -v wrk >/dev/null; then
    [ "$(id -u)" -eq 0 ] && sudo="" || sudo=sudo
    $sudo apt-get update -qq && $sudo apt-get install -y -qq wrk >/dev/null
fi
# The test virtualenv trains and exports the models and runs onnxruntime.
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
pids=()
groups=()
# MLServer forks its inference workers: it runs in a process group of its own, stopped whole.
cleanup() { for g in "${groups[@]}"; do kill -- "-$g" 2>/dev/null || true; done; for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
wait_for() { for _ in $(seq 300); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "server at $1 did not start" >&2; exit 1; }

"$venv/bin/python" bench/serving_models.py make "$tmp"
row=$(cat "$tmp/row.json")

# modelops: the two ONNX exports as version 1 of two models.
"$release"/modelops serve --addr 127.0.0.1:5980 --data-dir "$tmp/data" --log warn & pids+=($!)
wait_for http://127.0.0.1:5980/healthz
export MODELOPS_SERVER=http://127.0.0.1:5980 MODELOPS_TOKEN=$(cat "$tmp/data/admin.token")
for m in rf logreg; do
    "$release"/modelops models create "$m" --kind onnx --owner admin --risk-tier low >/dev/null
    "$release"/modelops versions push "$m" "$tmp/$m.onnx" >/dev/null
done

# MLServer: the scikit-learn originals, its defaults (ports apart).
(cd "$tmp/mlserver" && exec setsid "$mls/bin/mlserver" start . >"$tmp/mlserver.log" 2>&1) & groups+=($!)
wait_for http://127.0.0.1:5981/v2/health/ready
for m in rf logreg; do wait_for "http://127.0.0.1:5981/v2/models/$m/ready"; done

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
wrk.method = "POST"
wrk.body = '{"inputs": [{"name": "X", "shape": [1, 10], "datatype": "FP32", "data": $row}]}'
wrk.headers["Content-Type"] = "application/json"
LUA

"$release"/modelops-loadgen baseline --addr 127.0.0.1:5984 & pids+=($!)
wait_for http://127.0.0.1:5984/
echo "{\"inputs\": [{\"name\": \"X\", \"shape\": [1, 10], \"datatype\": \"FP32\", \"data\": $row}]}" > "$tmp/infer.json"

# Both answer before the measured runs (loading, first-call costs).
for m in rf logreg; do
    curl -fsS -H "Authorization: Bearer $MODELOPS_TOKEN" -H 'content-type: application/json' -d "{\"inputs\": [{\"name\": \"X\", \"shape\": [1, 10], \"datatype\": \"FP32\", \"data\": $row}]}" \
        "http://127.0.0.1:5980/v2/models/$m/versions/1/infer" >/dev/null
    curl -fsS -H 'content-type: application/json' -d "{\"inputs\": [{\"name\": \"X\", \"shape\": [1, 10], \"datatype\": \"FP32\", \"data\": $row}]}" \
        "http://127.0.0.1:5981/v2/models/$m/infer" >/dev/null
done

run_wrk() { # concurrency url [header]
    local c=$1 threads=2
    [ "$c" -lt 2 ] && threads=1
    if [ $# -ge 3 ]; then
        wrk -t"$threads" -c"$c" -d"$DURATION" -H "$3" -s "$tmp/infer.lua" "$2" | tail -n 1
    else
        wrk -t"$threads" -c"$c" -d"$DURATION" -s "$tmp/infer.lua" "$2" | tail -n 1
    fi
}

{
    echo "{"
    echo "\"load\": {"
    first=1
    for m in logreg rf; do
        for c in $CONCURRENCY; do
            [ $first -eq 1 ] || echo ","
            first=0
            echo "\"$m/modelops/c$c\": $(run_wrk "$c" "http://127.0.0.1:5980/v2/models/$m/versions/1/infer" "Authorization: Bearer $MODELOPS_TOKEN"),"
            echo "\"$m/mlserver/c$c\": $(run_wrk "$c" "http://127.0.0.1:5981/v2/models/$m/infer")"
        done
    done
    echo "},"
    # The ceiling of loopback HTTP on this machine today (a bare axum
    # handler, same wrk), and modelops' own code per request without TCP.
    echo "\"bare_axum_c64\": $(wrk -t2 -c64 -d"$DURATION" -s "$tmp/report.lua" http://127.0.0.1:5984/ | tail -n 1),"
    echo "\"in_process\": {"
    echo "\"logreg\": $("$release"/modelops-loadgen in-process --data-dir "$tmp/data" --request 'POST /v2/models/logreg/versions/1/infer' --body "$tmp/infer.json"),"
    echo "\"rf\": $("$release"/modelops-loadgen in-process --data-dir "$tmp/data" --request 'POST /v2/models/rf/versions/1/infer' --body "$tmp/infer.json")"
    echo "},"
    echo "\"model_only\": {"
    echo "\"modelops\": $("$release"/modelops-loadgen model-time --batch "$tmp/batch.json" --model "rf=$tmp/rf.onnx" --model "logreg=$tmp/logreg.onnx"),"
    echo "\"onnxruntime\": $("$venv/bin/python" bench/serving_models.py ort "$tmp")"
    echo "}"
    echo "}"
} > "$out/serving.json"

python3 - "$out/serving.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("\nOIP V2 JSON, one row of 10 features (wrk over loopback, same machine)")
print(f"{'model':8} {'c':>3} | {'modelops req/s':>14} {'p50 ms':>7} {'p99 ms':>7} | {'MLServer req/s':>14} {'p50 ms':>7} {'p99 ms':>7} | ratio")
for key, ours in r["load"].items():
    model, server, c = key.split("/")
    if server != "modelops":
        continue
    theirs = r["load"][f"{model}/mlserver/{c}"]
    ratio = ours["per_second"] / theirs["per_second"] if theirs["per_second"] else float("inf")
    bad = "" if ours["errors"] + ours["non_2xx"] == 0 else f"  ({ours['errors'] + ours['non_2xx']} failed)"
    print(f"{model:8} {c[1:]:>3} | {ours['per_second']:14.0f} {ours['p50_ms']:7.2f} {ours['p99_ms']:7.2f} | {theirs['per_second']:14.0f} {theirs['p50_ms']:7.2f} {theirs['p99_ms']:7.2f} | {ratio:6.1f}x{bad}")
bare = r["bare_axum_c64"]["per_second"]
print(f"\nLoopback ceiling today: a bare axum handler answers {bare:.0f} req/s at c=64 (same wrk).")
for model in ["logreg", "rf"]:
    ours = r["load"][f"{model}/modelops/c64"]["per_second"]
    print(f"  {model}: modelops at c=64 is {ours / bare:.2f} of it; its own code costs {r['in_process'][model]['us_per_request']:.1f} µs per request in process (no TCP)")
print("\nModel only, µs per row (medians)")
ours, ort = r["model_only"]["modelops"], r["model_only"]["onnxruntime"]
for model in ["rf", "logreg"]:
    for rows, key in [("1 row", "1_row_us"), ("1000 rows", "1000_rows_us_per_row")]:
        o = ours[f"{model}/{key}"]
        d = ort[f"{model}/ort_default_threads/{key}"]
        one = ort[f"{model}/ort_1_threads/{key}"]
        print(f"{model:7} {rows:10}: modelops {o:8.3f}   onnxruntime default {d:8.3f} ({d / o:5.2f}x)   1 thread {one:8.3f} ({one / o:5.2f}x)")
PY
