#!/usr/bin/env bash
# Audit log benchmark (the verifiable audit log: Merkle tree, signed
# checkpoints, proofs, export bundles). One command:  bench/audit.sh [--quick]
#
# 1. Append throughput, tree on vs off: the release before the tree existed
#    ($BASE, extracted with `git archive` and built in a target dir of its
#    own) and this checkout's release, each serving a fresh SQLite data dir;
#    the same write workload against each (bench/loadgen populate: $VERSIONS
#    versions with distinct 4 KiB ONNX artifacts, upload + create, 32
#    clients; every version writes its audit event, and with the tree its
#    Merkle hashes, in its transaction). Builds with the tree run with
#    --audit-checkpoint-interval 1, so checkpoints are signed (each after
#    re-hashing the events since the last) during the run. $ROUNDS rounds,
#    the builds taking turns (each round starting with the next one);
#    medians, and the ratio to the base per round and of the medians.
# 2. Offline verification: a synthetic, valid export bundle of $EVENTS events
#    (bench/loadgen audit-bundle: events sealed as the server seals them, a
#    checkpoint every $CHECKPOINT_EVERY events signed with a fresh key,
#    consistency proofs between them), then `modelops audit verify --bundle
#    DIR --key KEY`, $VERIFY_RUNS runs, as whole processes under
#    /usr/bin/time (warm page cache).
# 3. Inclusion proofs at scale: a fresh SQLite store filled with $DB_EVENTS
#    events through the store's write path, $DB_BATCH to a transaction
#    (bench/loadgen audit-db: events/s with the tree, database size), the
#    first checkpoint signed over it, $PROOFS inclusion proofs of random
#    events through Registry::inclusion_proof, then over HTTP from
#    `modelops serve` on that data dir (GET /api/v1/audit/events/{seq}/proof,
#    sequential, each checked with the key); and `modelops audit verify
#    --database-url` on the same database ($VERIFY_RUNS runs).
# ALSO="commit …" adds other commits' releases to the turns of step 1 (each
# built in $CARGO_TARGET_DIR-<commit>, with checkpoints every second).
# --append: step 1 only (results in bench/out/audit-append.json).
# --instructions: step 1 counted in instructions instead of timed, which no
#    other load on the machine can move: each build serves under valgrind's
#    callgrind (collection switched on only for the windows measured) and
#    takes $IVERSIONS versions from the same populate workload; the server's
#    instructions over that window (and, with the tree, over one last
#    checkpoint signed on demand, so every event's re-hashing is counted)
#    minus those of an idle window as long (timers, background loops),
#    per version. Checkpoints every $ICHECKPOINT s under valgrind (~50×
#    slower), so each covers about as many events as at native speed with
#    the timed step's 1 s. Results in bench/out/audit-instructions.json;
#    KEEP_PROFILES=DIR keeps each build's callgrind dumps there.
# --quick: 2,000 versions per run and 100,000 events. ROUNDS, VERSIONS,
# EVENTS, CHECKPOINT_EVERY, VERIFY_RUNS, DB_EVENTS, DB_BATCH, PROOFS, BASE,
# BASE_REPO (the git repository the commits are taken from) and
# BASE_TARGET_DIR override the defaults. Prints tables and writes
# bench/out/audit.json.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
quick=0
append_only=0
instructions=0
for arg in "$@"; do
    case $arg in
        --quick) quick=1 ;;
        --append) append_only=1 ;;
        --instructions) instructions=1 ;;
        *) echo "usage: bench/audit.sh [--quick] [--append | --instructions]" >&2; exit 64 ;;
    esac
done
if [ $quick -eq 1 ]; then
    VERSIONS=${VERSIONS:-2000}; EVENTS=${EVENTS:-100000}; DB_EVENTS=${DB_EVENTS:-100000}; PROOFS=${PROOFS:-300}
    CHECKPOINT_EVERY=${CHECKPOINT_EVERY:-10000}
fi
ROUNDS=${ROUNDS:-3}
VERSIONS=${VERSIONS:-10000}
EVENTS=${EVENTS:-1000000}
CHECKPOINT_EVERY=${CHECKPOINT_EVERY:-100000}
VERIFY_RUNS=${VERIFY_RUNS:-3}
DB_EVENTS=${DB_EVENTS:-1000000}
DB_BATCH=${DB_BATCH:-1000}
PROOFS=${PROOFS:-1000}
BASE=${BASE:-1c38bc9}
BASE_REPO=${BASE_REPO:-$root}
ALSO=${ALSO:-}
out=bench/out
mkdir -p "$out"
# Builds before 7f4dcca capture a backtrace for every library error when
# RUST_BACKTRACE is set (tract makes hundreds while loading a pushed model);
# the same for every build, whatever the caller's environment.
export RUST_LIB_BACKTRACE=0
# cargo builds where CARGO_TARGET_DIR says, else in ./target as the other
# scripts; the other commits in target dirs of their own beside it.
target_dir=$(realpath -m "${CARGO_TARGET_DIR:-target}")
base_target=$(realpath -m "${BASE_TARGET_DIR:-$target_dir-base}")
bin="$target_dir/release/modelops"
loadgen="$target_dir/release/modelops-loadgen"

cargo build --release --locked -p modelops -p modelops-loadgen
# Another commit's release: its sources (git archive, read-only for the
# repository) and target dir. Sets $built to the binary.
build_commit() { # commit target_dir
    local src="$2/src-$1"
    if [ "$(cat "$src/.extracted" 2>/dev/null)" != "$1" ]; then
        rm -rf "$src" && mkdir -p "$src"
        git -C "$BASE_REPO" archive "$1" | tar -x -C "$src"
        echo "$1" > "$src/.extracted"
    fi
    (cd "$src" && CARGO_TARGET_DIR="$2" cargo build --release --locked -p modelops)
    built="$2/release/modelops"
}
# The builds that take turns: their names and binaries.
build_commit "$BASE" "$base_target"
names=(base); bins=("$built")
for commit in $ALSO; do
    build_commit "$commit" "$target_dir-$commit"
    names+=("$commit"); bins+=("$built")
done
names+=(tree); bins+=("$bin")
build="${BUILD_LABEL:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- crates bench/loadgen 2>/dev/null || echo '+changes')}"

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

# Starts `$1 serve` on data dir $2 (more flags after) on a free port; sets
# $url and $pgid.
start_server() {
    local server=$1 data=$2 log="$2.log"
    shift 2
    (exec setsid "$server" serve --addr 127.0.0.1:0 --data-dir "$data" --log warn "$@" 2>"$log") & pgid=$!; groups+=("$pgid")
    for _ in $(seq 600); do grep -q "modelops listening on" "$log" 2>/dev/null && break; sleep 0.1; done
    url=$(grep -o "modelops listening on http://[^ ]*" "$log" | head -n 1 | awk '{print $4}')
    [ -n "$url" ] || { echo "modelops did not start:" >&2; cat "$log" >&2; exit 1; }
    for _ in $(seq 300); do curl -fsS "$url/healthz" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "modelops at $url does not answer" >&2; exit 1
}
stop_server() {
    stop_group "$pgid"
    local rest=() g
    for g in "${groups[@]}"; do [ "$g" = "$pgid" ] || rest+=("$g"); done
    groups=("${rest[@]}")
}
# Audit events, tree hashes and checkpoints in a stopped server's database (JSON).
db_counts() {
    python3 - "$1/modelops.db" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
count = lambda t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] if t in tables else None
size = db.execute("SELECT avg(length(coalesce(before, '')) + length(coalesce(after, ''))) FROM audit_events").fetchone()[0]
print(json.dumps({"audit_events": count("audit_events"), "tree_hashes": count("audit_tree"), "checkpoints": count("audit_checkpoints"),
                  "before_after_bytes_per_event": round(size or 0)}))
PY
}
# Runs a command under /usr/bin/time; appends wall, CPU and peak RSS (JSON) to $1.
timed() { # jsonl command…
    local jsonl=$1
    shift
    /usr/bin/time -f '%e %U %S %M' -o "$tmp/time" "$@" > "$tmp/verify.out"
    read -r wall user sys rss < "$tmp/time"
    echo "{\"wall_s\": $wall, \"user_s\": $user, \"sys_s\": $sys, \"max_rss_kib\": $rss}" >> "$jsonl"
    echo "   $wall s wall, $user s user, $sys s system, $((rss / 1024)) MiB peak" >&2
}

# 1'. Instructions per appended version, under callgrind.
if [ $instructions -eq 1 ]; then
    IVERSIONS=${IVERSIONS:-300}
    ICHECKPOINT=${ICHECKPOINT:-20}
    command -v valgrind >/dev/null || { echo "--instructions needs valgrind (Debian package valgrind)" >&2; exit 1; }
    : > "$tmp/instructions.jsonl"
    # Ir of the dump callgrind wrote last for process $1 ("totals:" line).
    dumped_ir() { # pid
        local file
        file=$(ls -t "$tmp"/callgrind.out."$1"* 2>/dev/null | head -n 1)
        awk '/^(totals|summary):/ {print $2; exit}' "$file"
    }
    # With KEEP_PROFILES=DIR: that dump kept as DIR/<name>.callgrind, for callgrind_annotate.
    keep_profile() { # pid name
        [ -n "${KEEP_PROFILES:-}" ] || return 0
        mkdir -p "$KEEP_PROFILES"
        cp "$(ls -t "$tmp"/callgrind.out."$1"* | head -n 1)" "$KEEP_PROFILES/$2.callgrind"
    }
    for i in "${!names[@]}"; do
        which=${names[$i]}
        data="$tmp/instr-$which"
        flags=()
        [ "$which" = base ] || flags=(--audit-checkpoint-interval "$ICHECKPOINT")
        log="$data.log"
        (cd "$tmp" && exec setsid valgrind --tool=callgrind --instr-atstart=no --trace-children=no \
            "${bins[$i]}" serve --addr 127.0.0.1:0 --data-dir "$data" --log warn "${flags[@]}" 2>"$log") & pgid=$!; groups+=("$pgid")
        for _ in $(seq 3000); do grep -q "modelops listening on" "$log" 2>/dev/null && break; sleep 0.1; done
        url=$(grep -o "modelops listening on http://[^ ]*" "$log" | head -n 1 | awk '{print $4}')
        [ -n "$url" ] || { echo "modelops did not start under valgrind:" >&2; cat "$log" >&2; exit 1; }
        for _ in $(seq 600); do curl -fsS "$url/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
        vpid=$pgid
        token=$(cat "$data/admin.token")
        callgrind_control -i on "$vpid" >/dev/null
        # The workload: populate, then (with the tree) one checkpoint over all of it.
        callgrind_control -z "$vpid" >/dev/null
        started=$(date +%s.%N)
        result=$(MODELOPS_TOKEN=$token "$loadgen" populate --server "$url" --versions "$IVERSIONS")
        if [ "$which" != base ]; then
            curl -fsS -X POST -H "Authorization: Bearer $token" "$url/api/v1/audit/checkpoints" >/dev/null
        fi
        seconds=$(python3 -c "import sys,time; print(round(time.time() - float(sys.argv[1]), 3))" "$started")
        callgrind_control -d "$vpid" >/dev/null
        work=$(dumped_ir "$vpid")
        keep_profile "$vpid" "$which.work"
        # Idle for as long: what the timers and background loops cost.
        callgrind_control -z "$vpid" >/dev/null
        sleep "$seconds"
        callgrind_control -d "$vpid" >/dev/null
        idle=$(dumped_ir "$vpid")
        keep_profile "$vpid" "$which.idle"
        stop_server
        echo "{\"build\": \"$which\", \"versions\": $IVERSIONS, \"seconds\": $seconds, \"populate\": $result, \"instructions_window\": $work, \"instructions_idle\": $idle, \"database\": $(db_counts "$data")}" >> "$tmp/instructions.jsonl"
        echo "   $which: $work instructions over ${seconds} s, $idle idle over as long" >&2
        rm -rf "$data" "$data.log"
    done
    python3 - "$tmp/instructions.jsonl" "$out/audit-instructions.json" "$build" "$BASE" <<'PY'
import datetime, json, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for r in runs:
    r["instructions_per_version"] = (r["instructions_window"] - r["instructions_idle"]) / r["versions"]
base = next(r for r in runs if r["build"] == "base")
result = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "build": sys.argv[3], "base": sys.argv[4],
          "runs": runs, "ratio": {r["build"]: r["instructions_per_version"] / base["instructions_per_version"] for r in runs if r is not base}}
json.dump(result, open(sys.argv[2], "w"), indent=1)
print(f"\nServer instructions per appended version (callgrind; workload minus idle), base {sys.argv[4]}:")
for r in runs:
    print(f"  {r['build']:>8}: {r['instructions_per_version'] / 1e6:8.2f} M  ({r['database']['audit_events']} events, {r['database']['tree_hashes']} tree hashes, {r['database']['checkpoints']} checkpoints)")
for w, x in result["ratio"].items():
    print(f"  {w} / base: {x:.3f}  (target <= 1.10)")
PY
    exit 0
fi

# 1. Append throughput, the builds taking turns.
echo "1. append throughput: $ROUNDS rounds of $VERSIONS versions against ${names[*]}, taking turns" >&2
: > "$tmp/append.jsonl"
count=${#names[@]}
for round in $(seq "$ROUNDS"); do
    for k in $(seq 0 $((count - 1))); do
        i=$(((round - 1 + k) % count))
        which=${names[$i]}
        data="$tmp/append-$which-$round"
        if [ "$which" = base ]; then
            start_server "${bins[$i]}" "$data"
        else
            start_server "${bins[$i]}" "$data" --audit-checkpoint-interval 1
        fi
        load=$(cut -d' ' -f1 /proc/loadavg)
        # The server's CPU time (user + system, clock ticks) over the workload:
        # less moved by the other processes sharing the cores than the rate.
        cpu_before=$(awk '{print $14 + $15}' "/proc/$pgid/stat")
        result=$(MODELOPS_TOKEN=$(cat "$data/admin.token") "$loadgen" populate --server "$url" --versions "$VERSIONS")
        cpu_s=$(awk -v before="$cpu_before" -v hz="$(getconf CLK_TCK)" '{print ($14 + $15 - before) / hz}' "/proc/$pgid/stat")
        stop_server
        echo "{\"build\": \"$which\", \"round\": $round, \"load_average_before\": $load, \"server_cpu_s\": $cpu_s, \"populate\": $result, \"database\": $(db_counts "$data")}" >> "$tmp/append.jsonl"
        echo "   round $round, $which: $result" >&2
        rm -rf "$data" "$data.log"
    done
done

bundle_bytes=0; http='{}'; tables='{}'; result_file="$out/audit.json"
if [ $append_only -eq 1 ]; then
    result_file="$out/audit-append.json"
else
# 2. Offline verification of an export bundle.
echo "2. a bundle of $EVENTS events, then audit verify --bundle, $VERIFY_RUNS runs" >&2
"$loadgen" audit-bundle --events "$EVENTS" --checkpoint-every "$CHECKPOINT_EVERY" -o "$tmp/bundle" > "$tmp/bundle.json"
key=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["public_key"])' "$tmp/bundle.json")
bundle_bytes=$(du -sb "$tmp/bundle" | cut -f1)
: > "$tmp/verify-bundle.jsonl"
for _ in $(seq "$VERIFY_RUNS"); do
    timed "$tmp/verify-bundle.jsonl" "$bin" audit verify --bundle "$tmp/bundle" --key "$key"
    grep -q "^bundle verified" "$tmp/verify.out" || { echo "the bundle does not verify:" >&2; cat "$tmp/verify.out" >&2; exit 1; }
done
cp "$tmp/verify.out" "$tmp/verify-bundle.out"
rm -rf "$tmp/bundle"

# 3. A database of $DB_EVENTS events: build, first checkpoint, inclusion proofs.
echo "3. a database of $DB_EVENTS events ($DB_BATCH per transaction), $PROOFS inclusion proofs" >&2
"$loadgen" audit-db --dir "$tmp/db" --events "$DB_EVENTS" --batch "$DB_BATCH" --proofs "$PROOFS" > "$tmp/db.json"
db_key=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["public_key"])' "$tmp/db.json")
# Bytes of the events (rows and indexes) and of the tree, from SQLite's dbstat.
tables=$(python3 - "$tmp/db/modelops.db" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
try:
    rows = dict(db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"))
except sqlite3.Error:
    rows = {}
part = lambda table: sum(v for k, v in rows.items() if k == table or k.startswith(table + "_") or k.startswith("sqlite_autoindex_" + table + "_"))
print(json.dumps({"audit_events_bytes": part("audit_events"), "audit_tree_bytes": part("audit_tree"), "by_name": rows}))
PY
)
# Over HTTP: the server takes the data dir's key file (the benchmark's); it
# bootstraps an admin and the default policy (a few events more) and signs a
# checkpoint of them at start.
start_server "$bin" "$tmp/db" --audit-checkpoint-interval 3600
http=$(MODELOPS_TOKEN=$(cat "$tmp/db/admin.token") "$loadgen" audit-proofs --server "$url" --count "$PROOFS" --max-seq "$DB_EVENTS")
stop_server
: > "$tmp/verify-db.jsonl"
for _ in $(seq "$VERIFY_RUNS"); do
    timed "$tmp/verify-db.jsonl" "$bin" audit verify --database-url "sqlite://$tmp/db/modelops.db" --key "$db_key"
    grep -q "^audit chain intact" "$tmp/verify.out" || { echo "the database does not verify:" >&2; cat "$tmp/verify.out" >&2; exit 1; }
done
rm -rf "$tmp/db"
fi

python3 - "$tmp" "$result_file" "$build" "$BASE" "$bundle_bytes" "$http" "$tables" <<'PY'
import datetime, json, statistics, sys
tmp, path, build, base, bundle_bytes = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
http, tables = json.loads(sys.argv[6]), json.loads(sys.argv[7])
lines = lambda name: [json.loads(l) for l in open(f"{tmp}/{name}") if l.strip()]
append = lines("append.jsonl")
names = list(dict.fromkeys(a["build"] for a in append))
rate = {w: [a["populate"]["per_second"] for a in append if a["build"] == w] for w in names}
med = {w: statistics.median(v) for w, v in rate.items()}
# Per round, a build's rate over the base's (they ran in the same minutes).
def per_round(w):
    return [t["populate"]["per_second"] / b["populate"]["per_second"]
            for b in append if b["build"] == "base" for t in append if t["build"] == w and t["round"] == b["round"]]
import os
append_only = not os.path.exists(f"{tmp}/bundle.json")
vb, vd = ([], []) if append_only else (lines("verify-bundle.jsonl"), lines("verify-db.jsonl"))
result = {
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "build": build, "base": base,
    "append": {"runs": append, "median_per_second": med,
               "ratio_of_medians": {w: med[w] / med["base"] for w in names if w != "base"},
               "per_round_ratios": {w: per_round(w) for w in names if w != "base"}},
}
# The server's CPU milliseconds per version, where recorded (older runs lack it).
cpu = {w: [1000 * a["server_cpu_s"] / a["populate"]["versions"] for a in append if a["build"] == w and "server_cpu_s" in a] for w in names}
if all(cpu.values()):
    result["append"]["server_cpu_ms_per_version"] = {w: statistics.median(v) for w, v in cpu.items()}
if not append_only:
    result["bundle"] = {"generated": json.load(open(f"{tmp}/bundle.json")), "bytes": bundle_bytes, "verify_runs": vb,
                        "verify_median_s": statistics.median(r["wall_s"] for r in vb), "verify_output": open(f"{tmp}/verify-bundle.out").read().strip()}
    result["database"] = {**json.load(open(f"{tmp}/db.json")), "tables": tables, "http_proofs": http, "verify_runs": vd,
                          "verify_median_s": statistics.median(r["wall_s"] for r in vd)}
json.dump(result, open(path, "w"), indent=1)

print(f"\nAudit log benchmark ({result['date']}, build {build}, base {base})")
print(f"\n1. Append throughput: versions/s (upload + create, 32 clients; one version = 2 requests), {len(rate['base'])} rounds, builds taking turns")
print(f"{'build':46} | {'per run':22} | {'median':>6} | {'vs base':>7} | {'per round':16} | {'events/version':>14} | checkpoints signed")
for w in names:
    label = {"base": f"{base} (no Merkle tree)", "tree": f"this build {build}"}.get(w, w)
    if w != "base":
        label += ", checkpoint every 1 s"
    runs = [a for a in append if a["build"] == w]
    events = runs[-1]["database"]["audit_events"] / runs[-1]["populate"]["versions"]
    signed = " / ".join(str(a["database"]["checkpoints"]) for a in runs) if w != "base" else "—"
    ratio = f"{med[w] / med['base']:.3f}"
    rounds = ", ".join(f"{p:.2f}" for p in per_round(w)) if w != "base" else ""
    print(f"{label:46} | {' / '.join(f'{x:.0f}' for x in rate[w]):22} | {med[w]:6.0f} | {ratio:>7} | {rounds:16} | {events:14.2f} | {signed}")
slow = 1 - result["append"]["ratio_of_medians"]["tree"]
print(f"this build against {base}: slowdown {slow * 100:.1f} % (ratio of medians); target <= 10 %: {'met' if slow <= 0.10 else 'NOT met'}")
if "server_cpu_ms_per_version" in result["append"]:
    c = result["append"]["server_cpu_ms_per_version"]
    print("server CPU per version (user + system, median of rounds): " + ", ".join(
        f"{w} {' / '.join(f'{x:.3f}' for x in cpu[w])} ms → {c[w]:.3f}" for w in names))
    for w in names:
        if w != "base":
            print(f"   {w} / base: {c[w] / c['base']:.3f} of the base's CPU per version")
if append_only:
    sys.exit(0)

g = result["bundle"]["generated"]
print(f"\n2. Offline verification of an export bundle: {g['events']:,} events, {g['checkpoints']} checkpoints, "
      f"{g['consistency_proofs']} consistency proofs, {bundle_bytes / 1e6:.0f} MB (written in {g['seconds']} s)")
for i, r in enumerate(vb, 1):
    print(f"   run {i}: {r['wall_s']:.2f} s wall, {r['user_s']:.2f} s user + {r['sys_s']:.2f} s system, peak RSS {r['max_rss_kib'] / 1024:.0f} MiB")
m = result["bundle"]["verify_median_s"]
per_million = m * 1e6 / g["events"]
print(f"median {m:.2f} s ({g['events'] / m:,.0f} events/s, {per_million:.2f} s per million); target <= 5 s per million: {'met' if per_million <= 5 else 'NOT met'}")

d = result["database"]
print(f"\n3. A SQLite database of {d['events']:,} events ({d['batch']} per transaction)")
tenths = ", ".join(f"{x:,.0f}" for x in d["events_per_second_by_tenth"])
print(f"   built in {d['build_seconds']} s: {d['events_per_second']:,.0f} events/s with the tree (each tenth of the run: {tenths})")
print(f"   database {d['database_bytes'] / 1e6:.0f} MB ({d['database_bytes_per_event']:.0f} bytes per event): events and their indexes "
      f"{tables['audit_events_bytes'] / d['events']:.0f} bytes per event, the Merkle tree {tables['audit_tree_bytes'] / d['events']:.0f}")
print(f"   first checkpoint (re-hashes every event and compares it with its stored leaf): {d['first_checkpoint_seconds']} s")
p = d["proofs"]
r, h = p["registry_us"], http["http_us"]
print(f"{'inclusion proof of a random event':38} | {'n':>5} | {'p50 µs':>7} | {'p90 µs':>7} | {'p99 µs':>7} | hashes min/median/max | bytes (median)")
print(f"{'Registry::inclusion_proof, in process':38} | {r['n']:5} | {r['p50']:7.0f} | {r['p90']:7.0f} | {r['p99']:7.0f} | "
      f"{p['hashes']['min']}/{p['hashes']['median']}/{p['hashes']['max']:<13} | path {p['path_bytes']['median']}, proof JSON {p['proof_json_bytes']['median']}")
print(f"{'GET /api/v1/audit/events/{seq}/proof':38} | {h['n']:5} | {h['p50']:7.0f} | {h['p90']:7.0f} | {h['p99']:7.0f} | "
      f"{http['hashes']['min']}/{http['hashes']['median']}/{http['hashes']['max']:<13} | response {http['response_bytes']['median']}")
print(f"   checking a proof against its checkpoint (client side): p50 {p['verify_us']['p50']} µs")
walls = " / ".join(f"{x['wall_s']:.2f}" for x in vd)
print(f"   modelops audit verify --database-url: {walls} s (median {d['verify_median_s']:.2f} s)")
PY
