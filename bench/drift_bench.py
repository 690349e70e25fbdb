"""Drift benchmark: modelops vs Evidently 0.7.23 on the same Parquet files.

Generates reference and current frames (ROWS x 25 columns: 20 numeric, 5
categorical; drift injected in 8 columns), writes them as Parquet, then times
in separate processes under /usr/bin/time -v:
  1. Evidently: Report([DataDriftPreset()]).run(current, reference)
  2. modelops drift --mode evidently --format json
  3. modelops drift (default mode) against the reference file
  4. modelops profile fit, then modelops drift --profile on a second window
and prints wall time, peak RSS, the ratios and the largest score difference
between Evidently and modelops' evidently mode.

Usage: python bench/drift_bench.py [--rows 1000000] [--out bench/out] [--bin PATH]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

EVIDENTLY_RUNNER = r"""
import json, os, sys, time
os.environ["DO_NOT_TRACK"] = "1"
import pandas as pd
from evidently import Dataset, Report
from evidently.presets import DataDriftPreset
ref = pd.read_parquet(sys.argv[1]); cur = pd.read_parquet(sys.argv[2])
t0 = time.perf_counter()
snap = Report([DataDriftPreset()], include_tests=True).run(Dataset.from_pandas(cur), Dataset.from_pandas(ref))
run_s = time.perf_counter() - t0
d = snap.dict()
cols = {}
share = None
for m in d["metrics"]:
    c = m["config"]
    if c["type"].endswith("ValueDrift"):
        cols[c["column"]] = {"method": c["method"], "score": float(m["value"])}
    elif c["type"].endswith("DriftedColumnsCount"):
        share = m["value"]["share"]
for t in d["tests"]:
    if t["id"] == "drift":
        cols[t["metric_config"]["params"]["column"]]["drift"] = t["status"] == "FAIL"
json.dump({"columns": cols, "share": share, "report_run_s": run_s}, open(sys.argv[3], "w"))
"""


def generate(rows: int, seed: int, drift: bool) -> pd.DataFrame:
    rng = np.random.default_rng([seed, int(drift)])
    d = {}
    d["num_00"] = rng.normal(0.5 if drift else 0.0, 1, rows)            # mean +0.5 sd
    d["num_01"] = rng.normal(0, 1.5 if drift else 1.0, rows)            # scale x1.5
    d["num_02"] = rng.lognormal(0, 0.6 if drift else 0.5, rows)         # sigma 0.5 -> 0.6
    d["num_03"] = rng.uniform(0.1 if drift else 0.0, 1.1 if drift else 1.0, rows)
    d["num_04"] = rng.normal(0.02 if drift else 0.0, 1, rows)           # below threshold
    x = rng.normal(0, 1, rows)
    if drift:
        x[rng.random(rows) < 0.05] += 6                                  # 5 % outliers
    d["num_05"] = x
    for i in range(6, 20):
        kind = i % 5
        if kind == 0:
            d[f"num_{i:02d}"] = rng.normal(i, 1, rows)
        elif kind == 1:
            d[f"num_{i:02d}"] = rng.exponential(1.0, rows)
        elif kind == 2:
            d[f"num_{i:02d}"] = rng.poisson(20, rows)
        elif kind == 3:
            d[f"num_{i:02d}"] = rng.gamma(2.0, 2.0, rows)
        else:
            d[f"num_{i:02d}"] = rng.uniform(-1, 1, rows)
    d["num_07"] = np.where(rng.random(rows) < 0.01, np.nan, d["num_07"])
    p0 = [0.5, 0.3, 0.2] if not drift else [0.4, 0.3, 0.3]
    d["cat_0"] = rng.choice(["a", "b", "c"], rows, p=p0)
    c1 = rng.choice(["w", "x", "y", "z"], rows)
    if drift:
        c1 = np.where(rng.random(rows) < 0.1, "new", c1)
    d["cat_1"] = c1
    d["cat_2"] = rng.choice(["yes", "no"], rows)
    zipf = np.minimum(rng.zipf(1.5, rows), 50)
    d["cat_3"] = np.array([f"z{k:02d}" for k in range(51)])[zipf]
    d["cat_4"] = rng.choice([f"u{k}" for k in range(8)], rows)
    return pd.DataFrame(d)


def timed(cmd, log: Path):
    """Run under /usr/bin/time -v; returns (wall seconds, peak RSS MiB)."""
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *map(str, cmd)], capture_output=True, text=True,
                          env={**os.environ, "DO_NOT_TRACK": "1"})
    wall = time.perf_counter() - t0
    log.write_text(proc.stdout + "\n---\n" + proc.stderr)
    if proc.returncode != 0:
        sys.exit(f"command failed: {' '.join(map(str, cmd))}\n{proc.stderr[-3000:]}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    return wall, rss_kb / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    ap.add_argument("--bin", default=os.environ.get("MODELOPS_BIN", str(REPO / "target" / "release" / "modelops")))
    ap.add_argument("--skip-evidently", action="store_true")
    a = ap.parse_args()
    out = a.out
    out.mkdir(parents=True, exist_ok=True)
    ref_p, cur_p, cur2_p = out / "reference.parquet", out / "current.parquet", out / "current2.parquet"
    t0 = time.perf_counter()
    generate(a.rows, a.seed, False).to_parquet(ref_p, index=False)
    generate(a.rows, a.seed, True).to_parquet(cur_p, index=False)
    generate(a.rows, a.seed + 1, True).to_parquet(cur2_p, index=False)
    print(f"generated 3 x {a.rows:,} rows x 25 columns in {time.perf_counter() - t0:.1f} s", file=sys.stderr)

    results = {}
    if not a.skip_evidently:
        runner = out / "evidently_runner.py"
        runner.write_text(EVIDENTLY_RUNNER)
        results["evidently"] = timed([sys.executable, runner, ref_p, cur_p, out / "evidently.json"], out / "evidently.log")
    mo = a.bin
    results["modelops_evidently"] = timed(
        [mo, "drift", "--mode", "evidently", "--reference", ref_p, "--current", cur_p, "--format", "json",
         "--out", out / "modelops_evidently.json"], out / "modelops_evidently.log")
    results["modelops_default"] = timed(
        [mo, "drift", "--reference", ref_p, "--current", cur_p, "--format", "json",
         "--out", out / "modelops_default.json"], out / "modelops_default.log")
    results["profile_fit"] = timed([mo, "profile", "fit", ref_p, "-o", out / "reference.profile"], out / "profile_fit.log")
    results["modelops_default_profile_window2"] = timed(
        [mo, "drift", "--profile", out / "reference.profile", "--current", cur2_p, "--format", "json",
         "--out", out / "modelops_window2.json"], out / "modelops_window2.log")

    ours = json.loads((out / "modelops_evidently.json").read_text())
    print(f"\n{'run':<40} {'wall s':>9} {'peak RSS MiB':>13}")
    for name, (wall, rss) in results.items():
        print(f"{name:<40} {wall:>9.2f} {rss:>13.0f}")
    if "evidently" in results:
        ev = json.loads((out / "evidently.json").read_text())
        by = {c["column"]: c for c in ours["columns"]}
        max_rel, max_abs, verdicts = 0.0, 0.0, 0
        for col, e in ev["columns"].items():
            s = by[col]["score"]
            max_abs = max(max_abs, abs(s - e["score"]))
            max_rel = max(max_rel, abs(s - e["score"]) / max(abs(e["score"]), 1e-300))
            verdicts += by[col]["drift_detected"] == e["drift"]
        (ew, er), (mw, mr) = results["evidently"], results["modelops_evidently"]
        print(f"\nEvidently Report.run alone: {ev['report_run_s']:.2f} s")
        print(f"speed-up (wall, whole process): {ew / mw:.1f}x   memory ratio: {mr / er:.3f} ({er / mr:.1f}x less)")
        print(f"scores: max abs diff {max_abs:.3e}, max rel diff {max_rel:.3e}; verdicts equal {verdicts}/{len(ev['columns'])}; "
              f"dataset share evidently {ev['share']} modelops {ours['share_of_drifted_columns']}")
    default = json.loads((out / "modelops_default.json").read_text())
    drifted = [c["column"] for c in default["columns"] if c["drift_detected"]]
    print(f"default mode drifted columns: {', '.join(drifted)}")


if __name__ == "__main__":
    main()
