"""Trains the fraud model and exports it to ONNX: the trainer a retraining job calls.

    python train.py --data FILE [--label COLUMN] --out DIR [--min-rows N] [--worse] [--seed S]

FILE is .csv or .parquet. Only the six feature columns

    amount, hour, merchant_risk, distance_km, velocity_1h, card_age_days

and the label column are used; any other columns are ignored. The label
column is --label if given, else `is_fraud` if present, else
`ground_truth` if present. A prediction window exported by the server has
the six features by name (one model input each), the MODEL's predicted
`label` (never used unless --label label is passed: it is not ground
truth), probabilities_0/1, request_id, at, version, ... and
`ground_truth`, the true label posted later (null where none arrived).

The label is coerced to int: 0/1, "0"/"1", "0.0"/"1.0", true/false all
read; rows with a missing label (or a missing feature) are dropped. Exit
code 2, with a message naming what is wrong, when a column is absent, a
label is not 0/1, fewer than --min-rows (default 50) labelled rows
remain, or a class has too few rows to be both trained on and held out.

The model is Pipeline(StandardScaler, LogisticRegression): it reaches ROC
AUC >= 0.9 on the drifted regime of data.py, so nothing heavier is needed.
25% of the rows (stratified, seeded) are held out for evaluation.

Written into DIR:
  model.onnx     six float32 inputs [None, 1], one per feature, named and
                 ordered as above (so the server's exported windows name
                 their columns after the features); outputs `label`
                 (int64 [None]) and `probabilities` (float32 [None, 2], no
                 ZipMap). Ops: Concat, then ai.onnx.ml Scaler and
                 LinearClassifier.
  reference.csv  the held-out rows: six features, is_fraud, probabilities_1
                 and label as onnxruntime computes them
  metrics.json   roc_auc and accuracy on the held-out rows (onnxruntime's
                 outputs), rows trained on, held-out rows
  card.json      intended_use, limitations, evaluation_data

--worse deliberately trains a broken model (for canary tests): it is fitted
on inverted labels (1 - y), so its scores are anti-correlated with fraud.
Its metrics.json reports its (bad) AUC honestly.
"""

import argparse
import json
import os
import sys

import numpy as np
import pandas as pd

FEATURES = ["amount", "hour", "merchant_risk", "distance_km", "velocity_1h", "card_age_days"]
# Label columns tried, in order, when --label is not given. Never `label`:
# in an exported window that is the model's own prediction.
DEFAULT_LABELS = ["is_fraud", "ground_truth"]
MIN_ROWS = 50
# Each class needs a few rows so that the stratified hold-out gets some too.
MIN_PER_CLASS = 4
HOLDOUT = 0.25
# skl2onnx's default opsets, capped so that older runtimes load the model.
MAX_OPSET = {"": 17, "ai.onnx.ml": 3}


class DataError(Exception):
    """Input data unusable for training: reported, exit code 2."""


def read_table(path):
    lower = str(path).lower()
    if lower.endswith(".csv"):
        return pd.read_csv(path, low_memory=False)
    if lower.endswith(".parquet"):
        return pd.read_parquet(path)
    raise DataError(f"{path}: the data must be a .csv or .parquet file")


def _label_values(column, name):
    """The label column as floats (NaN = missing); DataError for non-0/1 values."""
    if column.dtype == bool:
        values = column.astype(float)
    else:
        # Strings such as "1", "0.0", "true"; lower-case booleans map to 1/0.
        text = column.astype("string").str.strip().str.lower()
        text = text.replace({"true": "1", "false": "0", "": pd.NA})
        values = pd.to_numeric(text, errors="coerce").astype(float)
        unreadable = values.isna() & text.notna()
        if unreadable.any():
            example = column[unreadable].iloc[0]
            raise DataError(f"label column `{name}`: {example!r} is not a 0/1 label")
    bad = values.notna() & ~values.isin([0.0, 1.0])
    if bad.any():
        raise DataError(f"label column `{name}`: {values[bad].iloc[0]!r} is not a 0/1 label")
    return values


def load(path, label=None, min_rows=MIN_ROWS):
    """(X float32 [n, 6] as a DataFrame with the feature names, y int [n]).

    label=None picks the first of DEFAULT_LABELS present in the file."""
    table = read_table(path)
    columns = ", ".join(map(str, table.columns))
    if label is None:
        label = next((c for c in DEFAULT_LABELS if c in table.columns), None)
        if label is None:
            raise DataError(f"{path}: no label column (looked for {' or '.join(f'`{c}`' for c in DEFAULT_LABELS)}; pass --label) (columns: {columns})")
    elif label not in table.columns:
        raise DataError(f"{path}: no label column `{label}` (columns: {columns})")
    missing = [f for f in FEATURES if f not in table.columns]
    if missing:
        raise DataError(f"{path}: no feature column `{missing[0]}`" + (f" (missing: {', '.join(missing)})" if len(missing) > 1 else ""))
    features = table[FEATURES].apply(pd.to_numeric, errors="coerce").astype(float)
    y = _label_values(table[label], label)
    # Drop unlabelled rows, and rows with a missing (or non-numeric) feature.
    keep = y.notna() & features.notna().all(axis=1)
    X, y = features[keep].reset_index(drop=True), y[keep].astype(np.int64).reset_index(drop=True)
    if len(y) < min_rows:
        raise DataError(f"{path}: {len(y)} labelled rows with all features (label column `{label}`); at least {min_rows} are needed")
    counts = y.value_counts()
    if len(counts) < 2:
        raise DataError(f"{path}: every labelled row has label {int(counts.index[0])}; both classes are needed")
    if counts.min() < MIN_PER_CLASS:
        raise DataError(f"{path}: only {counts.min()} rows of class {int(counts.idxmin())}; at least {MIN_PER_CLASS} of each class are needed")
    return X, y


def fit(X, y, seed):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    model = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=1000, random_state=seed))])
    return model.fit(X.to_numpy(np.float32), y.to_numpy())


def to_onnx_bytes(model):
    """The pipeline as ONNX: six float32 inputs [None, 1] named after FEATURES;
    outputs `label` int64 [None], `probabilities` float32 [None, 2]."""
    from onnx import TensorProto, helper
    from skl2onnx import convert_sklearn, get_latest_tested_opset_version
    from skl2onnx.common.data_types import FloatTensorType

    opset = {"": min(MAX_OPSET[""], get_latest_tested_opset_version()), "ai.onnx.ml": MAX_OPSET["ai.onnx.ml"]}
    # Convert with one internal [None, 6] tensor, then feed it from six
    # per-feature inputs through a standard Concat. (Passing six
    # initial_types to skl2onnx instead joins them with ai.onnx.ml's
    # FeatureVectorizer, which fewer runtimes implement.)
    joined = "features_joined"
    onx = convert_sklearn(
        model,
        initial_types=[(joined, FloatTensorType([None, len(FEATURES)]))],
        # No ZipMap: probabilities stay a [None, 2] float tensor.
        options={id(model.named_steps["clf"]): {"zipmap": False}},
        target_opset=opset,
    )
    graph = onx.graph
    assert [i.name for i in graph.input] == [joined], [i.name for i in graph.input]
    del graph.input[:]
    graph.input.extend(helper.make_tensor_value_info(name, TensorProto.FLOAT, [None, 1]) for name in FEATURES)
    graph.node.insert(0, helper.make_node("Concat", FEATURES, [joined], name="concat_features", axis=1))
    # skl2onnx 1.20 lists the default domain twice in opset_import (same
    # version); keep one entry per domain so strict loaders do not balk.
    seen, unique = set(), []
    for entry in onx.opset_import:
        if entry.domain not in seen:
            seen.add(entry.domain)
            unique.append((entry.domain, entry.version))
    del onx.opset_import[:]
    for domain, version in unique:
        onx.opset_import.add(domain=domain, version=version)
    return onx.SerializeToString()


def score(onnx_bytes, X):
    """(labels, positive-class probabilities) from onnxruntime."""
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    feed = {name: X[[name]].to_numpy(np.float32) for name in FEATURES}  # six [n, 1] arrays
    labels, probabilities = session.run(["label", "probabilities"], feed)
    return labels.astype(np.int64), probabilities[:, 1].astype(np.float64)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Train the fraud model and export it to ONNX.")
    parser.add_argument("--data", required=True, help="training data, .csv or .parquet")
    parser.add_argument("--label", default=None, help="label column (default: is_fraud if present, else ground_truth; never the predicted `label` unless named here)")
    parser.add_argument("--out", required=True, help="output directory (created if needed)")
    parser.add_argument("--min-rows", type=int, default=MIN_ROWS, help=f"fewest labelled rows to train on (default {MIN_ROWS})")
    parser.add_argument("--worse", action="store_true", help="deliberately train a broken model (inverted labels), for canary tests")
    parser.add_argument("--seed", type=int, default=0, help="seed for the hold-out split and the model (default 0)")
    args = parser.parse_args(argv)
    if args.min_rows < 1:
        parser.error(f"--min-rows {args.min_rows}: must be at least 1")

    from sklearn.metrics import accuracy_score, roc_auc_score
    from sklearn.model_selection import train_test_split

    try:
        X, y = load(args.data, args.label, args.min_rows)
    except (DataError, OSError, ValueError) as e:
        print(f"train.py: {e}", file=sys.stderr)
        return 2

    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=HOLDOUT, stratify=y, random_state=args.seed)
    # --worse: fit on inverted labels, so the model ranks fraud last.
    model = fit(X_train, (1 - y_train) if args.worse else y_train, args.seed)
    onnx_bytes = to_onnx_bytes(model)

    # Evaluate what will be served: onnxruntime's outputs, not sklearn's.
    predicted, p1 = score(onnx_bytes, X_test)
    auc = float(roc_auc_score(y_test, p1))
    accuracy = float(accuracy_score(y_test, predicted))

    os.makedirs(args.out, exist_ok=True)
    model_path = os.path.join(args.out, "model.onnx")
    with open(model_path, "wb") as f:
        f.write(onnx_bytes)

    reference = X_test.reset_index(drop=True).copy()
    reference["is_fraud"] = y_test.to_numpy()
    reference["probabilities_1"] = p1
    reference["label"] = predicted
    reference.to_csv(os.path.join(args.out, "reference.csv"), index=False, lineterminator="\n")

    metrics = {"roc_auc": round(auc, 6), "accuracy": round(accuracy, 6), "rows": int(len(y_train)), "holdout_rows": int(len(y_test))}
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
        f.write("\n")

    source = os.path.basename(str(args.data))
    fraud_rate = float(y.mean())
    card = {
        "intended_use": (
            "Example model for the modelops fraud walkthrough: scores synthetic card transactions "
            "(amount, hour, merchant_risk, distance_km, velocity_1h, card_age_days) with a fraud probability. "
            "Not for real payment decisions."
            + (" DELIBERATELY BROKEN (trained on inverted labels) to exercise canary rollback; never promote it." if args.worse else "")
        ),
        "limitations": (
            f"Logistic regression trained on {len(y_train)} rows of {source} (fraud rate {fraud_rate:.1%}); it learns one linear "
            "fraud pattern and degrades when the pattern changes (concept drift), so retrain on recent labelled data. "
            "Synthetic data only; no fairness attributes were available or assessed."
        ),
        "evaluation_data": (
            f"{len(y_test)} held-out rows ({HOLDOUT:.0%} stratified split, seed {args.seed}) of {source}: "
            f"ROC AUC {auc:.3f}, accuracy {accuracy:.3f} (onnxruntime outputs, threshold 0.5)."
        ),
    }
    with open(os.path.join(args.out, "card.json"), "w") as f:
        json.dump(card, f, indent=2)
        f.write("\n")

    print(f"trained on {len(y_train)} rows: roc_auc {auc:.3f} accuracy {accuracy:.3f} -> {model_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
