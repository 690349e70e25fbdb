"""`modelops estimate` against NannyML 0.13.1's CBPE (binary classification):
per chunk, the estimated accuracy, ROC AUC, precision, recall and F1 equal
NannyML's, and so do the calibration decision and the fitted calibrator.

Tolerance: 1e-12 absolute. modelops reproduces NannyML's arithmetic
operation by operation (NumPy's pairwise sums, the sequential cumulative sum,
SciPy's PAVA, numpy.interp), and on x86-64 every figure of these cases (and
of 30 more seeds tried) is equal to the bit. The tolerance is not 0 only
because NumPy or SciPy built for another CPU may fuse a multiply-add
(aarch64) and move a last bit; a different formula would move the figures by
1e-6 or more. The calibrator thresholds are compared exactly.

The calibration decision compares two expected calibration errors (ECE) of
held-out scores. NumPy sorts those scores with an unstable sort whose order
among ties depends on the CPU; modelops keeps ties in order. The cases below
use seeds where every order of the ties gives the same decision (checked in
`test_calibration_decision_is_nannymls`), and the ECEs are compared with a
stable-sort replica of NannyML's computation.
"""

import json
import os
import warnings

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
import nannyml as nml  # noqa: E402  (installed by scripts/test from requirements-nannyml.txt)

from nannyml.calibration import _get_bin_index_edges  # noqa: E402
from sklearn.isotonic import IsotonicRegression  # noqa: E402
from sklearn.model_selection import StratifiedShuffleSplit  # noqa: E402

TOL = 1e-12
METRICS = ["roc_auc", "accuracy", "precision", "recall", "f1"]
CHUNK = 1000


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def frames(seed, kind, n_ref=5000, n_cur=5500):
    """Reference (labelled) and current (shifted) frames.

    kind: "calibrated" — the score is the true probability;
          "overconfident" — the score is the true probability pushed to the
          extremes (logit × 2.5), so calibration is needed;
          "rounded" — overconfident and rounded to 3 decimals (ties
          everywhere, across both classes);
          "separable" — a near-perfect model (reference ROC AUC > 0.999).
    The current file is shifted (mean and spread of the latent feature) and
    has an incomplete last chunk (5,500 rows in chunks of 1,000).
    """
    rng = np.random.default_rng(seed)

    def make(n, mu, sd):
        x = rng.normal(mu, sd, n)
        if kind == "separable":
            y = (x > 0).astype(int)
            s = sigmoid(6 * x)
        else:
            q = sigmoid(-0.3 + 1.6 * x)
            y = (rng.random(n) < q).astype(int)
            s = q if kind == "calibrated" else sigmoid(2.5 * np.log(q / (1 - q)))
            if kind == "rounded":
                s = np.round(s, 3)
        return pd.DataFrame({"score": s, "pred": (s >= 0.5).astype(int), "label": y})

    return make(n_ref, 0.0, 1.0), make(n_cur, 0.6, 1.3)


# (seed, kind, label as bool). Seed 31 is one where the well-calibrated
# scores are *not* recalibrated, whatever the order of tied scores.
CASES = [
    (31, "calibrated", False),
    (7, "overconfident", True),
    (11, "rounded", False),
    (5, "separable", False),
]


def nannyml_cbpe(ref, cur):
    est = nml.CBPE(
        y_pred_proba="score",
        y_pred="pred",
        y_true="label",
        metrics=METRICS,
        chunk_size=CHUNK,
        problem_type="classification_binary",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(ref)
        result = est.estimate(cur)
    return est, result.filter(period="analysis").to_df()


@pytest.fixture(scope="module", params=CASES, ids=[f"{c[1]}-seed{c[0]}" for c in CASES])
def case(request, tmp_path_factory, modelops):
    seed, kind, label_as_bool = request.param
    ref, cur = frames(seed, kind)
    if label_as_bool:
        ref = ref.assign(label=ref["label"].astype(bool))
    tmp = tmp_path_factory.mktemp(f"cbpe-{kind}")
    ref_path, cur_path = tmp / "reference.parquet", tmp / "current.parquet"
    ref.to_parquet(ref_path, index=False)
    # The current file has no labels: CBPE must not need them.
    cur.drop(columns=["label"]).to_parquet(cur_path, index=False)
    ours = json.loads(
        modelops(
            "estimate", "--reference", ref_path, "--current", cur_path,
            "--score", "score", "--prediction", "pred", "--label", "label",
            "--chunk-size", CHUNK, "--json",
        ).stdout
    )
    est, theirs = nannyml_cbpe(ref, cur)
    return {"kind": kind, "ref": ref, "cur": cur, "ours": ours, "est": est, "theirs": theirs,
            "paths": (ref_path, cur_path)}


def test_chunks_match_nannyml(case):
    ours, theirs = case["ours"]["chunks"], case["theirs"]
    assert len(ours) == len(theirs) == 6
    for i, chunk in enumerate(ours):
        row = theirs.iloc[i]
        assert chunk["start_index"] == row[("chunk", "start_index")]
        assert chunk["end_index"] == row[("chunk", "end_index")]
        assert chunk["rows"] == chunk["end_index"] - chunk["start_index"] + 1
        for metric in METRICS:
            ref_value = float(row[(metric, "value")])
            value = chunk[metric]
            assert value is not None, f"chunk {i} {metric}: {chunk['not_computed']}"
            assert abs(value - ref_value) <= TOL, f"chunk {i} {metric}: {value!r} != {ref_value!r}"
    assert ours[-1]["rows"] == 500


def ece_stable(y, p, edges):
    """NannyML's _calculate_expected_calibration_error with a stable sort."""
    order = np.argsort(p, kind="stable")
    p, y = p[order], y[order]
    return np.sum([(r - l) / len(p) * abs(np.mean(p[l:r]) - np.mean(y[l:r])) for l, r in edges])


def held_out(y, s):
    """The held-out labels, raw and calibrated scores of NannyML's test."""
    ys, raw, cal = [], [], []
    for train, test in StratifiedShuffleSplit(n_splits=10, test_size=0.1, random_state=42).split(s, y):
        iso = IsotonicRegression(out_of_bounds="clip", increasing=True).fit(s[train], y[train])
        ys.append(y[test])
        raw.append(s[test])
        cal.append(iso.predict(s[test]))
    return map(np.concatenate, (ys, raw, cal))


def test_calibration_decision_is_nannymls(case):
    ours, est, ref = case["ours"], case["est"], case["ref"]
    check = ours["calibration"]
    assert check["needed"] == est.needs_calibration
    expected = {"calibrated": False, "overconfident": True, "rounded": True, "separable": False}
    assert check["needed"] == expected[case["kind"]]
    if case["kind"] == "separable":
        # Decided on the reference ROC AUC alone.
        assert check["ece_uncalibrated"] is None and "0.999" in check["reason"]
        return
    y, s = ref["label"].to_numpy().astype(int), ref["score"].to_numpy()
    ys, raw, cal = held_out(y, s)
    edges = _get_bin_index_edges(len(raw), 10)
    before, after = ece_stable(ys, raw, edges), ece_stable(ys, cal, edges)
    assert abs(check["ece_uncalibrated"] - before) <= TOL
    assert abs(check["ece_calibrated"] - after) <= TOL
    # Whatever the order of tied calibrated scores, the decision stands.
    rng = np.random.default_rng(0)
    for _ in range(50):
        perm = rng.permutation(len(cal))
        assert (before > ece_stable(ys[perm], cal[perm], edges)) == check["needed"]


def test_calibrator_is_scikit_learns(case):
    ours, est = case["ours"], case["est"]
    calibrator = ours["estimator"]["calibrator"]
    if not est.needs_calibration:
        assert calibrator is None
        return
    reg = est.calibrator._regressor
    assert calibrator["x"] == reg.X_thresholds_.tolist()
    assert calibrator["y"] == reg.y_thresholds_.tolist()


def test_reference_performance_is_realised(case):
    from sklearn import metrics as skm

    ref, fitted = case["ref"], case["ours"]["estimator"]
    assert fitted["reference_rows"] == len(ref)
    assert abs(fitted["reference_accuracy"] - skm.accuracy_score(ref["label"].astype(int), ref["pred"])) <= TOL
    assert abs(fitted["reference_roc_auc"] - skm.roc_auc_score(ref["label"].astype(int), ref["score"])) <= 1e-9


def test_table_output_lists_every_chunk(case, modelops):
    ref_path, cur_path = case["paths"]
    out = modelops(
        "estimate", "--reference", ref_path, "--current", cur_path,
        "--score", "score", "--prediction", "pred", "--label", "label", "--chunk-size", CHUNK,
    ).stdout
    assert "calibration:" in out
    assert out.count("\n") >= 6 + 3
    assert "5000  5499" in out


@pytest.fixture(scope="module")
def small_files(tmp_path_factory):
    ref, cur = frames(3, "overconfident", n_ref=400, n_cur=300)
    tmp = tmp_path_factory.mktemp("cbpe-errors")
    paths = {"ref": tmp / "ref.parquet", "cur": tmp / "cur.parquet"}
    ref.to_parquet(paths["ref"], index=False)
    cur.to_parquet(paths["cur"], index=False)
    return tmp, ref, cur, paths


def run_estimate(modelops, ref, cur, **cols):
    args = {"score": "score", "prediction": "pred", "label": "label"} | cols
    flags = [x for k, v in args.items() for x in (f"--{k}", v)]
    return modelops("estimate", "--reference", ref, "--current", cur, *flags, "--json", check=False)


def test_missing_column_is_exit_2_naming_it(modelops, small_files):
    _, _, _, paths = small_files
    proc = run_estimate(modelops, paths["ref"], paths["cur"], label="no_such_label")
    assert proc.returncode == 2, proc.stderr
    assert "`no_such_label`" in proc.stderr and "no such column" in proc.stderr
    proc = run_estimate(modelops, paths["ref"], paths["cur"], score="proba")
    assert proc.returncode == 2 and "`proba`" in proc.stderr


def test_bad_values_are_exit_2_naming_column_and_value(modelops, small_files):
    tmp, ref, cur, paths = small_files
    bad = ref.copy()
    bad.loc[17, "score"] = 1.25
    bad.to_parquet(tmp / "bad_score.parquet", index=False)
    proc = run_estimate(modelops, tmp / "bad_score.parquet", paths["cur"])
    assert proc.returncode == 2
    assert "column `score`" in proc.stderr and "`1.25`" in proc.stderr and "bad_score.parquet" in proc.stderr

    one_class = ref.assign(label=1)
    one_class.to_parquet(tmp / "one_class.parquet", index=False)
    proc = run_estimate(modelops, tmp / "one_class.parquet", paths["cur"])
    assert proc.returncode == 2
    assert "column `label`" in proc.stderr and "`false`" in proc.stderr

    not_binary = ref.assign(label=ref["label"] * 2)
    not_binary.to_parquet(tmp / "not_binary.parquet", index=False)
    proc = run_estimate(modelops, tmp / "not_binary.parquet", paths["cur"])
    assert proc.returncode == 2 and "column `label`: value `2` is not binary" in proc.stderr

    bad_cur = cur.copy()
    bad_cur.loc[3, "score"] = -0.5
    bad_cur.to_parquet(tmp / "bad_cur.parquet", index=False)
    proc = run_estimate(modelops, paths["ref"], tmp / "bad_cur.parquet")
    assert proc.returncode == 2 and "`-0.5`" in proc.stderr and "bad_cur.parquet" in proc.stderr


def test_missing_values_are_left_out(modelops, small_files):
    tmp, ref, cur, paths = small_files
    holes = cur.copy()
    holes.loc[[5, 6, 250], "score"] = np.nan
    holes.to_parquet(tmp / "holes.parquet", index=False)
    proc = run_estimate(modelops, paths["ref"], tmp / "holes.parquet", **{"chunk-size": "100"})
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert [c["rows"] for c in out["chunks"]] == [98, 100, 99]
    assert out["current"]["rows_missing"] == 3
