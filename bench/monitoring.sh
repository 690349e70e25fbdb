#!/usr/bin/env bash
# Live monitoring benchmark. One command:  bench/monitoring.sh [--quick]
#
# A rules model of ten FP64 inputs f0 … f9 and one output `score`
# (bench/monitoring.sh writes it), pushed, approved, and deployed twice on a
# fresh SQLite data dir of the release `modelops serve`: `live` (called by
# wrk) and `ingest` (never called; the in-process runs fill its log); its
# reference profile fitted on $TRAIN_ROWS rows of training data
# (`versions push --reference train.parquet`).
# 1. Ingest (bench/loadgen monitor-ingest, in process, on a copy of the data
#    dir with the server stopped): a count-window monitor (windows of
#    $WINDOW_ROWS rows, every column of the profile) on `ingest`, N records
#    appended to the log through the store (one row each, the JSON the
#    recorder writes for a /predict call of this model), then
#    `Watch::run_once` until the engine has read all N: rows/s, RSS every
#    100 ms along the run (peak; at 25/50/75/100 % of it), for each N of
#    $RECORDS, $RUNS times; then a second pass timing the ingest path's
#    sections (SQLite read, JSON → arrow builders, arrow batch, table,
#    aggregates, merge into the window).
# 2. Drift of a closed $WINDOW_ROWS-row window: the engine's computation
#    from the window's aggregates (`compare_aggregates`, median of 5) vs
#    `modelops drift --profile P --current window.parquet` ($RUNS times,
#    /usr/bin/time) on the same rows exported (`ParquetExport`, as
#    `modelops predictions export`) against the same reference profile; the
#    scores compared column by column with the engine's stored result.
# 3. Inference latency with and without a monitor: the server restarted,
#    wrk on /api/v1/deployments/live/predict (one row per call, every call
#    recorded) for $DURATION at each of $CONCURRENCY connections, monitor
#    off then on (`--every 10s`, every column, created just after a window
#    boundary), $ROUNDS rounds taking turns; how far the engine was behind
#    the log when wrk stopped and how long it took to catch up.
# Prints tables and writes bench/out/monitoring.json.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
if [ "${1:-}" = "--quick" ]; then
    : "${RECORDS:=200000 600000}" "${WINDOW_ROWS:=200000}" "${RUNS:=1}" "${DURATION:=10s}" "${ROUNDS:=1}"
fi
RECORDS=${RECORDS:-"1000000 3000000"}
WINDOW_ROWS=${WINDOW_ROWS:-1000000}
RUNS=${RUNS:-3}
DURATION=${DURATION:-30s}
CONCURRENCY=${CONCURRENCY:-"1 64"}
ROUNDS=${ROUNDS:-3}
TRAIN_ROWS=${TRAIN_ROWS:-20000}
CAP_ROWS=${CAP_ROWS:-100000}
out=bench/out
mkdir -p "$out"
# cargo builds where CARGO_TARGET_DIR says, else in ./target as the other scripts.
target_dir=${CARGO_TARGET_DIR:-target}
bin="$target_dir/release/modelops"
loadgen="$target_dir/release/modelops-loadgen"

if ! command -v wrk >/dev/null || [ ! -x /usr/bin/time ]; then
    [ "$(id -u)" -eq 0 ] && sudo="" || sudo=sudo
    $sudo apt-get update -qq && $sudo apt-get install -y -qq wrk time >/dev/null
fi
# The test virtualenv writes the training data (pandas, pyarrow).
venv="$root/.venv"
scripts/python-venv
cargo build --release --locked -p modelops -p modelops-loadgen

tmp=$(mktemp -d)
server_pgid=""
stop_server() {
    [ -n "$server_pgid" ] || return 0
    kill -- "-$server_pgid" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 -- "-$server_pgid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$server_pgid" 2>/dev/null || true
    server_pgid=""
}
cleanup() { stop_server; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
start_server() { # sets mo_url
    : > "$tmp/modelops.log"
    (exec setsid "$bin" serve --addr 127.0.0.1:0 --data-dir "$tmp/data" --log warn 2>"$tmp/modelops.log") & server_pgid=$!
    for _ in $(seq 300); do grep -q "modelops listening on" "$tmp/modelops.log" 2>/dev/null && break; sleep 0.1; done
    mo_url=$(grep -o "modelops listening on http://[^ ]*" "$tmp/modelops.log" | head -n 1 | awk '{print $4}')
    [ -n "$mo_url" ] || { echo "modelops did not start:" >&2; cat "$tmp/modelops.log" >&2; exit 1; }
    for _ in $(seq 300); do curl -fsS "$mo_url/readyz" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "modelops is not ready" >&2; exit 1
}

# The model: score = 0.3 f0 + 0.2 f1 + 0.1 f2 − 0.1 f3 + 0.05 f4 (0 below
# f0 = −2), the formula bench/loadgen's records carry.
python3 - "$tmp" <<'PY'
import sys
tmp = sys.argv[1]
inputs = ", ".join(f"{{name: f{i}, type: double}}" for i in range(10))
open(f"{tmp}/model.yaml", "w").write(f"""kind: rules
inputs: [{inputs}]
outputs: [{{name: score, type: double}}]
mode: first_match
rules:
  - {{name: low, when: f0 < -2.0, then: {{score: "0.0"}}}}
default: {{score: "f0 * 0.3 + f1 * 0.2 + f2 * 0.1 - f3 * 0.1 + f4 * 0.05"}}
""")
PY
# Training data: f_i ~ N(0.5 i, 1 + 0.1 i) (bench/loadgen's traffic shifts f0 and widens f1).
"$venv/bin/python" - "$tmp" "$TRAIN_ROWS" <<'PY'
import json, sys
import numpy as np, pandas as pd
tmp, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(11)
f = {f"f{i}": rng.normal(0.5 * i, 1 + 0.1 * i, n) for i in range(10)}
score = np.where(f["f0"] < -2.0, 0.0, f["f0"] * 0.3 + f["f1"] * 0.2 + f["f2"] * 0.1 - f["f3"] * 0.1 + f["f4"] * 0.05)
pd.DataFrame({**f, "score": score}).to_parquet(f"{tmp}/train.parquet")
# wrk's bodies: rows drawn alike.
rows = [{f"f{i}": round(float(rng.normal(0.5 * i, 1 + 0.1 * i)), 6) for i in range(10)} for _ in range(256)]
with open(f"{tmp}/bodies.lua", "w") as out:
    out.write("bodies = {\n" + "".join(f"  '{json.dumps({'rows': [r]})}',\n" for r in rows) + "}\n")
open(f"{tmp}/body.json", "w").write(json.dumps({"rows": [rows[0]]}))
PY

echo "setting up: model, reference profile, deployments" >&2
mkdir -p "$tmp/data"
start_server
export MODELOPS_SERVER=$mo_url MODELOPS_TOKEN=$(cat "$tmp/data/admin.token")
auth="Authorization: Bearer $MODELOPS_TOKEN"
mo() { "$bin" "$@"; }
mo users create vic --role validator >/dev/null
vic_token=$(mo tokens create --name bench --user vic 2>/dev/null)
echo '{"intended_use": "benchmark of live monitoring"}' > "$tmp/card.json"
mo models create scorer --kind rules --owner admin --risk-tier low >/dev/null
mo versions push scorer "$tmp/model.yaml" --card "$tmp/card.json" --reference "$tmp/train.parquet" >/dev/null 2>&1
mo versions submit scorer 1 >/dev/null
MODELOPS_TOKEN=$vic_token mo versions approve scorer 1 --comment "benchmark" >/dev/null
mo deploy create live --model scorer --version 1 >/dev/null
mo deploy create ingest --model scorer --version 1 >/dev/null
answer=$(curl -fsS -H "$auth" -H 'content-type: application/json' -d @"$tmp/body.json" "$mo_url/api/v1/deployments/live/predict")
echo "$answer" | python3 -c 'import json,sys; a=json.load(sys.stdin); assert "score" in json.dumps(a), a' || { echo "live answered: $answer" >&2; exit 1; }
stop_server
# The data dir as set up; each in-process run works on a copy.
cp -a "$tmp/data" "$tmp/template"

# 1 and 2: in process.
echo "[" > "$tmp/ingest.json"
first=1
for n in $RECORDS; do
    for run in $(seq "$RUNS"); do
        echo "ingest: $n records, run $run of $RUNS" >&2
        rm -rf "$tmp/run"; cp -a "$tmp/template" "$tmp/run"
        extra=()
        if [ "$run" -eq 1 ] && [ "$first" -eq 1 ]; then extra=(--window-out "$tmp/window"); fi
        result=$("$loadgen" monitor-ingest --dir "$tmp/run" --records "$n" --window-rows "$WINDOW_ROWS" --split "${extra[@]}")
        [ $first -eq 1 ] || echo "," >> "$tmp/ingest.json"
        first=0
        echo "$result" >> "$tmp/ingest.json"
        echo "  $(echo "$result" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("%.0f rows/s, peak RSS %.0f MiB" % (r["engine"]["rows_per_second"], r["memory_mib"]["peak_rss_during_run"]))')" >&2
        rm -rf "$tmp/run"
    done
done
echo "]" >> "$tmp/ingest.json"

echo "modelops drift on the exported window ($RUNS runs)" >&2
echo "[" > "$tmp/offline.json"
for run in $(seq "$RUNS"); do
    /usr/bin/time -f '%e %M' -o "$tmp/time.txt" "$bin" drift --profile "$tmp/window/profile.json" --current "$tmp/window/window.parquet" --json > "$tmp/offline-drift.json"
    read -r secs kb < "$tmp/time.txt"
    [ "$run" -eq 1 ] || echo "," >> "$tmp/offline.json"
    echo "{\"seconds\": $secs, \"max_rss_kb\": $kb}" >> "$tmp/offline.json"
done
echo "]" >> "$tmp/offline.json"
window_bytes=$(stat -c %s "$tmp/window/window.parquet")
# Below the reservoir's cap the window keeps every value: the same numbers
# to the last bit.
echo "a window of $CAP_ROWS rows (the reservoir's cap) against modelops drift" >&2
rm -rf "$tmp/run"; cp -a "$tmp/template" "$tmp/run"
"$loadgen" monitor-ingest --dir "$tmp/run" --records "$CAP_ROWS" --window-rows "$CAP_ROWS" --window-out "$tmp/window-cap" > "$tmp/cap.json"
rm -rf "$tmp/run"
"$bin" drift --profile "$tmp/window-cap/profile.json" --current "$tmp/window-cap/window.parquet" --json > "$tmp/offline-cap.json"

# 3: over HTTP, monitor off and on.
start_server
export MODELOPS_SERVER=$mo_url
cat > "$tmp/predict.lua" <<LUA
dofile("$tmp/bodies.lua")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
  n = n % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[n])
end
done = function(summary, latency, requests)
  io.write(string.format('{"requests": %d, "errors": %d, "non_2xx": %d, "per_second": %.1f, "p50_ms": %.3f, "p99_ms": %.3f}\n',
    summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status,
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
LUA
url="$mo_url/api/v1/deployments/live/predict"
run_wrk() { # concurrency duration
    local threads=2
    [ "$1" -lt 2 ] && threads=1
    wrk -t"$threads" -c"$1" -d"$2" -H "$auth" -s "$tmp/predict.lua" "$url" | tail -n 1
}
status() { curl -fsS -H "$auth" "$mo_url/api/v1/deployments/live/monitors/$1"; }
rows_read() { status "$1" | python3 -c 'import json,sys; print((json.load(sys.stdin).get("live") or {}).get("rows_read", 0))'; }
written() { curl -fsS -H "$auth" "$mo_url/api/v1/deployments/live" | python3 -c 'import json,sys; print(json.load(sys.stdin)["live"]["records"]["written"])'; }
# Waits until the recorder has written what the last case queued.
drain() {
    local last="" now
    for _ in $(seq 600); do
        now=$(curl -fsS -H "$auth" "$mo_url/api/v1/deployments/live" | python3 -c 'import json,sys; r=json.load(sys.stdin)["live"]["records"]; print(r["queued"], r["submitted"])')
        [ "${now%% *}" = 0 ] && [ "$now" = "$last" ] && break
        last=$now
        sleep 0.2
    done
}
run_wrk 64 5s >/dev/null
drain
echo "{" > "$tmp/latency.json"
firstc=1
for c in $CONCURRENCY; do
    [ $firstc -eq 1 ] || echo "," >> "$tmp/latency.json"
    firstc=0
    echo "\"c$c\": [" >> "$tmp/latency.json"
    for round in $(seq "$ROUNDS"); do
        echo "wrk c=$c round $round: monitor off" >&2
        off=$(run_wrk "$c" "$DURATION")
        drain
        name="lat-c$c-r$round"
        # Created just after a 10 s boundary: its first window (aligned to
        # the epoch) holds none of the calls of the round without it.
        sleep "$(python3 -c 'import time; print(10 - time.time() % 10 + 0.05)')"
        mo monitor create live "$name" --every 10s >/dev/null
        echo "wrk c=$c round $round: monitor on ($name)" >&2
        on=$(run_wrk "$c" "$DURATION")
        # Whether the engine kept up: the rows it had read when wrk ended,
        # the calls written by then, and how long it took to read the rest.
        at_end=$(rows_read "$name")
        written_at_end=$(written)
        drain
        started=$SECONDS last=-1 now=""
        for _ in $(seq 120); do
            now=$(rows_read "$name")
            [ "$now" = "$last" ] && break
            last=$now
            sleep 1
        done
        live=$(status "$name" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin).get("live")))')
        mo monitor rm live "$name" >/dev/null
        [ "$round" -eq 1 ] || echo "," >> "$tmp/latency.json"
        echo "{\"off\": $off, \"on\": $on, \"monitor\": $live, \"rows_read_when_wrk_ended\": $at_end, \"written_when_wrk_ended\": $written_at_end, \"rows_read_settled\": $now, \"settle_seconds\": $((SECONDS - started))}" >> "$tmp/latency.json"
    done
    echo "]" >> "$tmp/latency.json"
done
echo "}" >> "$tmp/latency.json"
stop_server

{
    echo "{"
    echo "\"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\", \"build\": \"$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- crates bench/loadgen 2>/dev/null || echo '+changes')\","
    echo "\"load_average\": \"$(cut -d' ' -f1-3 /proc/loadavg)\", \"duration\": \"$DURATION\","
    echo "\"ingest\": $(cat "$tmp/ingest.json"),"
    echo "\"offline_drift\": {\"runs\": $(cat "$tmp/offline.json"), \"window_parquet_bytes\": $window_bytes, \"result\": $(cat "$tmp/offline-drift.json")},"
    echo "\"server_window\": $(cat "$tmp/window/server_window.json"),"
    echo "\"at_cap\": {\"run\": $(cat "$tmp/cap.json"), \"server_window\": $(cat "$tmp/window-cap/server_window.json"), \"offline\": $(cat "$tmp/offline-cap.json")},"
    echo "\"latency\": $(cat "$tmp/latency.json")"
    echo "}"
} > "$out/monitoring.json"

python3 - "$out/monitoring.json" <<'PY'
import json, statistics, sys
r = json.load(open(sys.argv[1]))
med = statistics.median
print(f"\nLive monitoring ({r['date']}, build {r['build']}, load average after {r['load_average']})")
print("\n1. Ingest: the engine reading N recorded calls of 10 features + 1 output (count windows)")
print(f"{'records':>9} | {'rows/s (runs)':>34} | {'append/s':>8} | {'RSS before':>10} {'peak':>6} {'at 25/50/75/100 %':>24} MiB")
by_n = {}
for x in r["ingest"]:
    by_n.setdefault(x["records"], []).append(x)
for n, runs in by_n.items():
    rates = [x["engine"]["rows_per_second"] for x in runs]
    for x in runs:
        m = x["memory_mib"]
        marks = " / ".join(f"{v:.0f}" for v in m["rss_at_25_50_75_100"])
        print(f"{n:9} | {x['engine']['rows_per_second']:10.0f} in {x['engine']['seconds']:6.2f} s, {len(x['engine']['passes'])} passes | {x['append']['records_per_second']:8.0f} | {m['rss_before_run']:10.0f} {m['peak_rss_during_run']:6.0f} {marks:>24}")
    print(f"{'':9} | median {med(rates):.0f} rows/s; windows closed {runs[0]['engine']['windows_closed']} ({runs[0]['engine']['closed_window_rows']})")
print(f"\nWhere the time goes (second pass over the same log, one thread, batches of {r['ingest'][0]['engine']['read_batch']:,} as the engine reads them; medians over runs, µs per row)")
for n, runs in by_n.items():
    m = lambda f: med([f(x["split"]) for x in runs])
    print(f"{n:9}: SQLite read {m(lambda s: s['sqlite_read']['us_per_row']):.2f}, monitored columns from the JSON {m(lambda s: s['fast_table']['us_per_row']):.2f}, "
          f"aggregates {m(lambda s: s['fast_aggregates']['us_per_row']):.2f}, merge {m(lambda s: s['merge_into_window']['us_per_row']):.2f}: "
          f"{m(lambda s: s['engine_way']['us_per_row']):.2f} µs ({m(lambda s: s['engine_way']['rows_per_second']):.0f} rows/s)")
    print(f"{'':9}  the general way instead (the whole exported table): JSON → arrow builders {m(lambda s: s['general']['json_parse_and_arrow_builders']['us_per_row']):.2f}, "
          f"batch {m(lambda s: s['general']['arrow_batch']['us_per_row']):.2f}, table {m(lambda s: s['general']['table_from_batch']['us_per_row']):.2f}, "
          f"aggregates {m(lambda s: s['general']['aggregates']['us_per_row']):.2f}: {m(lambda s: s['general']['us_per_row']):.2f} µs with the read and merge ({m(lambda s: s['general']['rows_per_second']):.0f} rows/s)")
first = r["ingest"][0]
d = first["drift"]
off = r["offline_drift"]
secs = [x["seconds"] for x in off["runs"]]
print(f"\n2. Drift of a closed {d['window_rows']}-row window")
print(f"engine, from the window's aggregates (compare_aggregates): median {d['compare_aggregates_ms']['median']:.1f} ms {d['compare_aggregates_ms']['runs']}; equals the engine's stored result: {d['equals_engine_result']}")
print(f"modelops drift --profile --current window.parquet ({off['window_parquet_bytes'] / 1e6:.1f} MB): median {med(secs):.2f} s {secs}, max RSS {max(x['max_rss_kb'] for x in off['runs']) / 1024:.0f} MiB")
server = {c["column"]: c for c in r["server_window"]["result"]["drift"]["columns"]}
print(f"{'column':8} {'method':12} {'server score':>22} {'offline score':>22} {'difference':>11} {'drift (server/offline)':>22}")
for c in off["result"]["columns"]:
    s = server[c["column"]]
    diff = (s["score"] - c["score"]) if s["score"] is not None and c["score"] is not None else float("nan")
    print(f"{c['column']:8} {c['method']:12} {s['score']:22.17g} {c['score']:22.17g} {diff:11.2e} {str(s['drift_detected']) + '/' + str(c['drift_detected']):>22}")
print(f"dataset drift: server {r['server_window']['result']['drift']['dataset_drift']}, offline {off['result']['dataset_drift']}")
cap = r["at_cap"]
server = {c["column"]: c for c in cap["server_window"]["result"]["drift"]["columns"]}
equal = [c["column"] for c in cap["offline"]["columns"] if server[c["column"]]["score"] == c["score"] and server[c["column"]]["drift_detected"] == c["drift_detected"]]
print(f"a window of {cap['server_window']['rows']} rows (every value in the reservoir): {len(equal)} of {len(cap['offline']['columns'])} columns' scores identical to modelops drift's; "
      f"compare_aggregates {cap['run']['drift']['compare_aggregates_ms']['median']:.1f} ms")
print(f"\n3. /api/v1/deployments/live/predict, every call recorded; wrk {r['duration']} per case, monitor off then on (every 10 s, all columns)")
print(f"{'c':>3} {'round':>5} | {'off req/s':>9} {'p50 ms':>7} {'p99 ms':>7} | {'on req/s':>9} {'p50 ms':>7} {'p99 ms':>7} | {'req/s on/off':>12} {'p50 on/off':>10} {'p99 on/off':>10} | monitor: rows read, behind when wrk ended (caught up in s), windows")
for c, rounds in r["latency"].items():
    for i, x in enumerate(rounds, 1):
        a, b, m = x["off"], x["on"], x["monitor"] or {}
        print(f"{c[1:]:>3} {i:5} | {a['per_second']:9.0f} {a['p50_ms']:7.3f} {a['p99_ms']:7.3f} | {b['per_second']:9.0f} {b['p50_ms']:7.3f} {b['p99_ms']:7.3f} | {b['per_second'] / a['per_second']:12.3f} {b['p50_ms'] / a['p50_ms']:10.3f} {b['p99_ms'] / a['p99_ms']:10.3f} | {x['rows_read_settled']}, {x['rows_read_settled'] - x['rows_read_when_wrk_ended']} ({x['settle_seconds']} s), {m.get('windows_closed')}"
              + (f"  ({a['non_2xx'] + b['non_2xx']} non-2xx, {a['errors'] + b['errors']} socket errors)" if a['non_2xx'] + b['non_2xx'] + a['errors'] + b['errors'] else ""))
    mo = lambda k, side: med([x[side][k] for x in rounds])
    print(f"{c[1:]:>3} {'med':>5} | {mo('per_second', 'off'):9.0f} {mo('p50_ms', 'off'):7.3f} {mo('p99_ms', 'off'):7.3f} | {mo('per_second', 'on'):9.0f} {mo('p50_ms', 'on'):7.3f} {mo('p99_ms', 'on'):7.3f} | "
          f"{med([x['on']['per_second'] / x['off']['per_second'] for x in rounds]):12.3f} {med([x['on']['p50_ms'] / x['off']['p50_ms'] for x in rounds]):10.3f} {med([x['on']['p99_ms'] / x['off']['p99_ms'] for x in rounds]):10.3f} |")
PY
