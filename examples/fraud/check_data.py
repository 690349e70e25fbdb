"""Checks data.py and train.py end to end; exits 1 if any check fails.

    python check_data.py [--seed S] [--keep DIR]

Runs both scripts through their command lines (as a retraining job would)
in a temporary directory, prints one line per figure, and checks:

* data.py: exact columns and dtypes; byte-identical output for the same
  arguments (CSV and Parquet); fraud rate 10-22% in both regimes;
  a Kolmogorov-Smirnov test on 300 rows either side of the drift flags
  at least 3 of the 6 features (p < 0.001).
* concept drift: a model trained on regime A scores ROC AUC <= 0.70 on
  regime B; a model trained on regime B scores >= 0.90 on its held-out rows.
* train.py: onnxruntime's probabilities (fed six [n, 1] arrays by feature
  name) equal sklearn's predict_proba to 1e-5 on the held-out rows; the
  ONNX interface (six float32 [None, 1] inputs named and ordered like the
  features, outputs `label` int64 [None], `probabilities` float32
  [None, 2], opsets <= 17 / ai.onnx.ml <= 3); only standard ONNX ops plus
  ai.onnx.ml Scaler / LinearClassifier (op types printed); the output files.
* --worse: held-out AUC < 0.3, and its probabilities_1 on 500 fresh
  regime-B rows differ from the good model's (KS D >= 0.3).
* small scale: 300, 400 and 600 regime-B rows still give AUC >= 0.85.
* an exported prediction window (features by name, extra columns, the
  model's predicted `label` deliberately inverted, `ground_truth` as
  "1"/"0"/"1.0"/"true"/"false" with gaps) trains on ground_truth by
  default; is_fraud wins over ground_truth; --label label still works;
  --min-rows is honoured; bad inputs (including a window with only the
  predicted `label`, or features as input_0..input_5) exit 2 naming the
  problem.
* train.py on 5000 rows takes under 5 s.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
from scipy.stats import ks_2samp
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import data  # noqa: E402
import train  # noqa: E402

FEATURES = data.FEATURES
failures = []


def check(name, ok, figure):
    """Prints one figure and records a failure."""
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {figure}")
    if not ok:
        failures.append(name)


def run(script, *args):
    """Runs a script of this directory; (exit code, stdout, stderr)."""
    done = subprocess.run([sys.executable, os.path.join(HERE, script), *map(str, args)], capture_output=True, text=True)
    return done.returncode, done.stdout.strip(), done.stderr.strip()


def trained(data_path, out, *extra):
    """Runs train.py; fails loudly if it does not succeed. Returns metrics.json."""
    code, out_text, err = run("train.py", "--data", data_path, "--out", out, *extra)
    if code != 0:
        raise SystemExit(f"train.py --data {data_path} {' '.join(extra)} failed ({code}): {err}")
    with open(os.path.join(out, "metrics.json")) as f:
        return json.load(f)


def onnx_scores(model_dir, frame):
    """Positive-class probabilities of DIR/model.onnx on `frame`'s features."""
    session = ort.InferenceSession(os.path.join(model_dir, "model.onnx"), providers=["CPUExecutionProvider"])
    feed = {name: frame[[name]].to_numpy(np.float32) for name in FEATURES}  # six [n, 1] arrays
    _, probabilities = session.run(["label", "probabilities"], feed)
    return probabilities[:, 1].astype(np.float64)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", help="work in this directory (kept) instead of a temporary one")
    args = parser.parse_args()
    seed, rows, drift_at = args.seed, 6000, 3000
    work = args.keep or tempfile.mkdtemp(prefix="fraud-check-")
    os.makedirs(work, exist_ok=True)
    path = lambda *p: os.path.join(work, *p)  # noqa: E731

    # --- data.py -------------------------------------------------------
    for ext in ("csv", "parquet"):
        for copy in (1, 2):
            code, _, err = run("data.py", "--rows", rows, "--drift-at", drift_at, "--seed", seed, "--out", path(f"all{copy}.{ext}"))
            if code != 0:
                raise SystemExit(f"data.py failed: {err}")
        with open(path(f"all1.{ext}"), "rb") as a, open(path(f"all2.{ext}"), "rb") as b:
            check(f"data.py {ext} byte-identical on rerun", a.read() == b.read(), f"{os.path.getsize(path(f'all1.{ext}'))} bytes")
    frame = pd.read_parquet(path("all1.parquet"))
    from_csv = pd.read_csv(path("all1.csv"))
    dtypes = [str(t) for t in frame.dtypes]
    check("columns and dtypes", list(frame.columns) == data.COLUMNS and dtypes == ["float64"] * 6 + ["int64"], ", ".join(f"{c}:{t}" for c, t in zip(frame.columns, dtypes)))
    check("csv, parquet and generate() agree", frame.equals(from_csv) and frame.equals(data.generate(rows, drift_at, seed)), f"{len(frame)} rows")
    prefix = data.generate(drift_at + 500, drift_at, seed).iloc[:drift_at]
    check("regime A rows do not depend on --rows", prefix.equals(frame.iloc[:drift_at]), f"first {drift_at} rows")
    check("hour is whole hours 0..23", bool(((frame.hour % 1 == 0) & frame.hour.between(0, 23)).all()), f"{frame.hour.min():.0f}..{frame.hour.max():.0f}")
    before, after = frame.iloc[:drift_at].reset_index(drop=True), frame.iloc[drift_at:].reset_index(drop=True)
    for name, part in (("A", before), ("B", after)):
        rate = part.is_fraud.mean()
        check(f"fraud rate regime {name}", 0.10 <= rate <= 0.22, f"{rate:.3f}")
    flagged = []
    for feature in FEATURES:
        result = ks_2samp(before[feature].iloc[-300:], after[feature].iloc[:300])
        print(f"      KS 300 vs 300 rows {feature:>14}: D {result.statistic:.3f} p {result.pvalue:.2g}")
        if result.pvalue < 1e-3:
            flagged.append(feature)
    check("KS flags >= 3 features (p < 0.001)", len(flagged) >= 3, ", ".join(flagged))

    # --- concept drift -------------------------------------------------
    before.to_csv(path("a.csv"), index=False)
    after.to_parquet(path("b.parquet"), index=False)
    metrics_a = trained(path("a.csv"), path("model_a"))
    print(f"      model A on its own holdout: roc_auc {metrics_a['roc_auc']:.3f}")
    auc_a_on_b = roc_auc_score(after.is_fraud, onnx_scores(path("model_a"), after))
    check("model trained on A, AUC on all B rows <= 0.70", auc_a_on_b <= 0.70, f"{auc_a_on_b:.3f}")
    metrics_b = trained(path("b.parquet"), path("model_b"))
    check("model trained on B, AUC on B holdout >= 0.90", metrics_b["roc_auc"] >= 0.90, f"{metrics_b['roc_auc']:.3f} (accuracy {metrics_b['accuracy']:.3f}, {metrics_b['rows']} + {metrics_b['holdout_rows']} rows)")

    # --- train.py outputs ----------------------------------------------
    files = sorted(os.listdir(path("model_b")))
    check("output files", files == ["card.json", "metrics.json", "model.onnx", "reference.csv"], ", ".join(files))
    reference = pd.read_csv(path("model_b", "reference.csv"))
    check("reference.csv columns", list(reference.columns) == FEATURES + ["is_fraud", "probabilities_1", "label"], ", ".join(reference.columns))
    with open(path("model_b", "card.json")) as f:
        card = json.load(f)
    check("card.json keys, mentions rows", sorted(card) == ["evaluation_data", "intended_use", "limitations"] and str(metrics_b["rows"]) in card["limitations"], ", ".join(sorted(card)))
    # Refit as train.py does (same split, same seed) and compare with sklearn.
    X, y = train.load(path("b.parquet"), "is_fraud")
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=train.HOLDOUT, stratify=y, random_state=0)
    sk = train.fit(X_train, y_train, 0)
    sk_p1 = sk.predict_proba(X_test.to_numpy(np.float32))[:, 1]
    same_rows = np.allclose(reference[FEATURES].to_numpy(), X_test.to_numpy()) and (reference.is_fraud.to_numpy() == y_test.to_numpy()).all()
    gap = float(np.max(np.abs(reference.probabilities_1.to_numpy() - sk_p1)))
    check("onnxruntime vs sklearn predict_proba on holdout", same_rows and gap <= 1e-5, f"max |diff| {gap:.2e}")
    label_agree = float((reference.label.to_numpy() == sk.predict(X_test.to_numpy(np.float32))).mean())
    check("onnxruntime vs sklearn labels on holdout", label_agree == 1.0, f"{label_agree:.4f} agree")
    auc_ref = roc_auc_score(reference.is_fraud, reference.probabilities_1)
    check("metrics.json roc_auc matches reference.csv", abs(auc_ref - metrics_b["roc_auc"]) < 1e-4, f"{auc_ref:.4f}")
    model = onnx.load(path("model_b", "model.onnx"))
    onnx.checker.check_model(model, full_check=True)
    opsets = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    io = [(v.name, v.type.tensor_type.elem_type, [d.dim_value or None for d in v.type.tensor_type.shape.dim]) for v in list(model.graph.input) + list(model.graph.output)]
    want_io = [(f, onnx.TensorProto.FLOAT, [None, 1]) for f in FEATURES]
    want_io += [("label", onnx.TensorProto.INT64, [None]), ("probabilities", onnx.TensorProto.FLOAT, [None, 2])]
    check("onnx interface (six per-feature inputs)", io == want_io, f"{io}")
    check("onnx opsets <= 17 / ml <= 3", opsets.get("ai.onnx", 0) <= 17 and opsets.get("ai.onnx.ml", 0) <= 3 and len(model.opset_import) == len(opsets), f"{opsets}")
    ops = [(n.domain or "ai.onnx", n.op_type) for n in model.graph.node]
    allowed = all(d == "ai.onnx" or (d == "ai.onnx.ml" and t in ("Scaler", "LinearClassifier")) for d, t in ops)
    check("onnx ops: standard + ai.onnx.ml Scaler/LinearClassifier only", allowed, ", ".join(f"{d}:{t}" for d, t in ops))

    # --- --worse -------------------------------------------------------
    metrics_w = trained(path("b.parquet"), path("model_worse"), "--worse")
    check("--worse AUC on B holdout < 0.3", metrics_w["roc_auc"] < 0.3, f"{metrics_w['roc_auc']:.3f}")
    fresh = data.generate(500, 0, seed + 1)  # 500 new regime-B rows
    good_p1, worse_p1 = onnx_scores(path("model_b"), fresh), onnx_scores(path("model_worse"), fresh)
    ks = ks_2samp(good_p1, worse_p1)
    check("KS D good vs --worse probabilities_1, 500 B rows", ks.statistic >= 0.3, f"D {ks.statistic:.3f} (means {good_p1.mean():.3f} vs {worse_p1.mean():.3f})")

    # --- small scale ---------------------------------------------------
    for n in (300, 400, 600):
        after.iloc[:n].to_csv(path(f"b{n}.csv"), index=False)
        m = trained(path(f"b{n}.csv"), path(f"model_b{n}"))
        check(f"{n} regime-B rows, AUC on holdout >= 0.85", m["roc_auc"] >= 0.85, f"{m['roc_auc']:.3f} ({m['holdout_rows']} held out, {int(after.is_fraud.iloc[:n].sum())} fraud in {n})")

    # --- an exported prediction window ----------------------------------
    # What the server exports: features by name (one model input each),
    # the model's predicted `label`, probabilities, and `ground_truth` posted
    # later as text, null where none arrived. `label` is inverted here, so
    # training on it by mistake would give AUC near 0.
    window = after.iloc[:500].reset_index(drop=True)
    exported = pd.DataFrame({"request_id": [f"r{i}" for i in range(len(window))], "at": pd.Timestamp("2024-01-01", tz="UTC"), "version": 1, "route": "primary", "latency_us": 420, "error": None, "row": 0})
    for feature in FEATURES:
        exported[feature] = window[feature]
    exported["label"] = (1 - window.is_fraud).astype(np.int64)
    exported["probabilities_0"], exported["probabilities_1"] = 0.5, 0.5
    spellings = [{0: "0", 1: "1"}, {0: "0.0", 1: "1.0"}, {0: "false", 1: "true"}]
    exported["ground_truth"] = [spellings[i % 3][v] for i, v in enumerate(window.is_fraud)]
    exported["ground_truth"] = exported["ground_truth"].astype(object)
    exported.loc[::10, "ground_truth"] = None  # every tenth row: no ground truth arrived
    exported.to_parquet(path("window.parquet"), index=False)
    exported.to_csv(path("window.csv"), index=False)
    for ext in ("parquet", "csv"):
        m = trained(path(f"window.{ext}"), path(f"model_window_{ext}"))
        check(f"exported window ({ext}) trains on ground_truth by default", m["rows"] + m["holdout_rows"] == 450 and m["roc_auc"] >= 0.85, f"{m['rows']} + {m['holdout_rows']} rows, roc_auc {m['roc_auc']:.3f}")
    m = trained(path("window.parquet"), path("model_window_pred"), "--label", "label")
    check("--label label still overrides (trains on the predicted, inverted label)", m["rows"] + m["holdout_rows"] == 500 and m["roc_auc"] >= 0.85, f"{m['rows']} + {m['holdout_rows']} rows, roc_auc {m['roc_auc']:.3f} (against the inverted labels)")
    both = exported.assign(is_fraud=window.is_fraud, ground_truth=(1 - window.is_fraud).astype(str))
    both.to_csv(path("both.csv"), index=False)
    m = trained(path("both.csv"), path("model_both"))
    check("is_fraud wins over ground_truth", m["rows"] + m["holdout_rows"] == 500 and m["roc_auc"] >= 0.85, f"{m['rows']} + {m['holdout_rows']} rows, roc_auc {m['roc_auc']:.3f}")
    after.iloc[:40].to_csv(path("forty.csv"), index=False)
    m = trained(path("forty.csv"), path("model_forty"), "--min-rows", 30)
    check("--min-rows 30 accepts 40 rows", m["rows"] + m["holdout_rows"] == 40, f"{m['rows']} + {m['holdout_rows']} rows")

    # --- bad inputs exit 2 ----------------------------------------------
    bad = {
        "no_feature": (after.drop(columns="velocity_1h").iloc[:200], "velocity_1h"),
        "no_label": (after.drop(columns="is_fraud").iloc[:200], "is_fraud"),
        "few_rows": (after.iloc[:40], "40 labelled rows"),
        "only_predicted_label": (exported.drop(columns="ground_truth").iloc[:200], "ground_truth"),
        "input_columns": (exported.drop(columns="ground_truth").rename(columns=dict(zip(FEATURES, [f"input_{i}" for i in range(6)]))).assign(is_fraud=window.is_fraud).iloc[:200], "amount"),
        "one_class": (after[after.is_fraud == 0].iloc[:200], "both classes"),
    }
    for name, (part, needle) in bad.items():
        part.to_csv(path(f"{name}.csv"), index=False)
        code, _, err = run("train.py", "--data", path(f"{name}.csv"), "--out", path(f"model_{name}"))
        check(f"{name} exits 2 naming the problem", code == 2 and needle in err, f"exit {code}: {err}")

    # --- runtime -------------------------------------------------------
    data.write(data.generate(5000, 0, seed), path("b5000.csv"))
    start = time.perf_counter()
    trained(path("b5000.csv"), path("model_b5000"))
    elapsed = time.perf_counter() - start
    check("train.py on 5000 rows < 5 s", elapsed < 5.0, f"{elapsed:.2f} s")

    if args.keep:
        print(f"      outputs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print("all checks passed" if not failures else f"{len(failures)} failed: " + "; ".join(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
