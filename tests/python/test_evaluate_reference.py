"""`modelops evaluate` against scikit-learn (performance) and fairlearn 0.15
(fairness): every figure to 1e-9 relative, on seeded data with the edge
cases that break naive implementations (ties in scores, a group with no
positives, a constant prediction, missing values, scores of exactly 0 and 1).
"""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from fairlearn import metrics as flm
from sklearn import metrics as skm

REL = 1e-9


def close(ours, ref, what=""):
    """ours is a JSON number or null; ref a float that may be NaN."""
    if ref is None or (isinstance(ref, float) and math.isnan(ref)):
        assert ours is None, f"{what}: expected null (reference gives NaN), got {ours}"
        return
    assert ours is not None, f"{what}: got null, reference gives {ref}"
    assert math.isclose(ours, float(ref), rel_tol=REL, abs_tol=1e-15), f"{what}: {ours} != {ref}"


def write(df: pd.DataFrame, tmp_path, fmt="parquet"):
    path = tmp_path / f"scored.{fmt}"
    if fmt == "parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)
    return path


def binary_frame(seed=7, n=3000):
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2]).astype(object)
    y = (rng.random(n) < np.where(group == "a", 0.45, 0.3)).astype(float)
    # Scores rounded to 2 decimals: many ties, across both classes.
    score = np.round(np.clip(0.35 * y + rng.normal(0.35, 0.2, n), 0.0, 1.0), 2)
    pred = (score >= np.where(group == "c", 0.55, 0.5)).astype(float)
    # Group "d": 40 rows, no actual positives at all.
    group[:40] = "d"
    y[:40] = 0.0
    # Missing values in each column, in different rows.
    y[100:110] = np.nan
    pred[200:205] = np.nan
    score[300:303] = np.nan
    group[400:420] = None
    return pd.DataFrame({"y": y, "p": pred, "s": score, "g": group})


def sklearn_binary(y, p, s):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "accuracy": skm.accuracy_score(y, p),
            "precision": skm.precision_score(y, p),
            "recall": skm.recall_score(y, p),
            "f1": skm.f1_score(y, p),
            "roc_auc": skm.roc_auc_score(y, s) if s is not None else None,
            "log_loss": skm.log_loss(y, s, labels=[0, 1]) if s is not None else None,
        }


def fairlearn_reference(y, p, g):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mf = flm.MetricFrame(
            metrics={
                "selection_rate": flm.selection_rate,
                "true_positive_rate": flm.true_positive_rate,
                "false_positive_rate": flm.false_positive_rate,
                "accuracy": skm.accuracy_score,
                "count": flm.count,
            },
            y_true=y,
            y_pred=p,
            sensitive_features=g,
        )
        return {
            "by_group": mf.by_group,
            "demographic_parity_difference": flm.demographic_parity_difference(y, p, sensitive_features=g),
            "demographic_parity_ratio": flm.demographic_parity_ratio(y, p, sensitive_features=g),
            "equalized_odds_difference": flm.equalized_odds_difference(y, p, sensitive_features=g),
            "equalized_odds_ratio": flm.equalized_odds_ratio(y, p, sensitive_features=g),
            "equal_opportunity_difference": flm.equal_opportunity_difference(y, p, sensitive_features=g),
            "equal_opportunity_ratio": flm.equal_opportunity_ratio(y, p, sensitive_features=g),
        }


def check_fairness(ours, y, p, g):
    ref = fairlearn_reference(y, p, g)
    for key in [
        "demographic_parity_difference",
        "demographic_parity_ratio",
        "equalized_odds_difference",
        "equalized_odds_ratio",
        "equal_opportunity_difference",
        "equal_opportunity_ratio",
    ]:
        close(ours[key], ref[key], key)
    by_group = ref["by_group"]
    assert [grp["group"] for grp in ours["groups"]] == sorted(map(str, by_group.index))
    for grp in ours["groups"]:
        row = by_group.loc[grp["group"]]
        assert grp["count"] == row["count"]
        for metric in ["selection_rate", "true_positive_rate", "false_positive_rate", "accuracy"]:
            close(grp[metric], row[metric], f"{grp['group']}.{metric}")
    dp_ratio = ref["demographic_parity_ratio"]
    assert ours["four_fifths"]["flagged"] == (not math.isnan(dp_ratio) and dp_ratio < 0.8)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_binary_classifier_matches_sklearn_and_fairlearn(tmp_path, modelops_json, fmt):
    df = binary_frame()
    path = write(df, tmp_path, fmt)
    out = modelops_json(
        "evaluate", "--data", path, "--target", "y", "--prediction", "p", "--score", "s", "--protected", "g"
    )
    used = df.dropna(subset=["y", "p", "s"])
    assert out["task"] == "classification"
    assert out["rows"] == len(df)
    assert out["rows_dropped_missing"] == len(df) - len(used)
    y, p, s = used["y"].astype(int), used["p"].astype(int), used["s"]
    perf = out["performance"]
    assert perf["pos_label"] == "1"
    for name, ref in sklearn_binary(y, p, s).items():
        close(perf["metrics"][name], ref, name)
    tn, fp, fn, tp = skm.confusion_matrix(y, p).ravel()
    assert perf["confusion"] == {"tp": tp, "fp": fp, "tn": tn, "fn": fn}

    groups = used["g"].fillna("(missing)").to_numpy()
    fair = out["fairness"]
    assert fair["attribute"] == "g"
    check_fairness(fair, y.to_numpy(), p.to_numpy(), groups)
    names = [grp["group"] for grp in fair["groups"]]
    assert "d" in names and "(missing)" in names
    d = next(grp for grp in fair["groups"] if grp["group"] == "d")
    assert d["actual_positives"] == 0 and d["true_positive_rate"] == 0.0
    assert any("group `d` has no actual positives" in w for w in fair["warnings"])


def test_constant_prediction_and_no_score(tmp_path, modelops_json):
    rng = np.random.default_rng(3)
    n = 500
    df = pd.DataFrame(
        {
            "y": rng.integers(0, 2, n),
            "p": np.zeros(n, dtype=int),
            "g": rng.choice(["x", "y"], n),
        }
    )
    out = modelops_json(
        "evaluate", "--data", write(df, tmp_path), "--target", "y", "--prediction", "p", "--protected", "g"
    )
    perf = out["performance"]
    for name, ref in sklearn_binary(df["y"], df["p"], None).items():
        if ref is None:
            assert perf["metrics"][name] is None
            assert perf["not_computed"][name] == "needs `--score`"
        else:
            close(perf["metrics"][name], ref, name)
    assert perf["metrics"]["precision"] == 0.0  # sklearn's zero_division result
    fair = out["fairness"]
    check_fairness(fair, df["y"].to_numpy(), df["p"].to_numpy(), df["g"].to_numpy())
    assert fair["demographic_parity_ratio"] is None  # 0/0: fairlearn says NaN
    assert fair["four_fifths"]["flagged"] is False


def test_string_labels_with_pos_label_and_certain_scores(tmp_path, modelops_json):
    rng = np.random.default_rng(11)
    n = 800
    y = rng.choice(["yes", "no"], n)
    p = np.where(rng.random(n) < 0.8, y, np.where(y == "yes", "no", "yes"))
    # Scores of exactly 0 and 1, some wrong: log loss must clip like sklearn.
    s = np.where(p == "yes", 1.0, 0.0)
    s[:50] = rng.random(50)
    group = rng.choice(["f", "m", "x"], n, p=[0.45, 0.45, 0.1])
    df = pd.DataFrame({"label": y, "pred": p, "prob": s, "sex": group})
    out = modelops_json(
        "evaluate",
        "--data", write(df, tmp_path, "csv"),
        "--target", "label",
        "--prediction", "pred",
        "--score", "prob",
        "--protected", "sex",
        "--pos-label", "yes",
    )
    yt, yp = (df["label"] == "yes").astype(int), (df["pred"] == "yes").astype(int)
    for name, ref in sklearn_binary(yt, yp, df["prob"]).items():
        close(out["performance"]["metrics"][name], ref, name)
    check_fairness(out["fairness"], yt.to_numpy(), yp.to_numpy(), df["sex"].to_numpy())


def test_four_fifths_flag_is_raised(tmp_path, modelops_json):
    rng = np.random.default_rng(5)
    n = 2000
    g = rng.choice(["major", "minor"], n)
    y = rng.integers(0, 2, n)
    p = (rng.random(n) < np.where(g == "major", 0.6, 0.3)).astype(int)
    df = pd.DataFrame({"y": y, "p": p, "g": g})
    out = modelops_json("evaluate", "--data", write(df, tmp_path), "--target", "y", "--prediction", "p", "--protected", "g")
    fair = out["fairness"]
    check_fairness(fair, y, p, g)
    assert fair["four_fifths"]["flagged"] is True
    assert fair["four_fifths"]["groups_below"] == ["minor"]


def test_single_class_target(tmp_path, modelops_json):
    df = pd.DataFrame({"y": [1] * 20, "p": [1, 0] * 10, "s": np.linspace(0, 1, 20)})
    out = modelops_json("evaluate", "--data", write(df, tmp_path), "--target", "y", "--prediction", "p", "--score", "s")
    m = out["performance"]["metrics"]
    assert m["roc_auc"] is None
    assert "one class" in out["performance"]["not_computed"]["roc_auc"]
    close(m["log_loss"], skm.log_loss(df["y"], df["s"], labels=[0, 1]), "log_loss")
    close(m["recall"], skm.recall_score(df["y"], df["p"]), "recall")


def test_regression_matches_sklearn(tmp_path, modelops_json):
    rng = np.random.default_rng(21)
    n = 2500
    y = rng.gamma(2.0, 3.0, n)
    p = y + rng.normal(0, 1.5, n)
    g = rng.choice(["north", "south"], n)
    y[:7] = np.nan
    df = pd.DataFrame({"y": y, "p": p, "region": g})
    out = modelops_json(
        "evaluate", "--data", write(df, tmp_path), "--target", "y", "--prediction", "p", "--protected", "region"
    )
    assert out["task"] == "regression"
    used = df.dropna()
    m = out["performance"]["metrics"]
    close(m["mae"], skm.mean_absolute_error(used["y"], used["p"]), "mae")
    close(m["mse"], skm.mean_squared_error(used["y"], used["p"]), "mse")
    close(m["rmse"], skm.root_mean_squared_error(used["y"], used["p"]), "rmse")
    close(m["r2"], skm.r2_score(used["y"], used["p"]), "r2")
    for grp in out["fairness"]["groups"]:
        part = used[used["region"] == grp["group"]]
        assert grp["count"] == len(part)
        close(grp["mae"], skm.mean_absolute_error(part["y"], part["p"]), "group mae")
        close(grp["r2"], skm.r2_score(part["y"], part["p"]), "group r2")


def test_regression_with_constant_target(tmp_path, modelops_json):
    df = pd.DataFrame({"y": [2.5] * 10, "p": [2.5] * 9 + [3.0]})
    out = modelops_json(
        "evaluate", "--data", write(df, tmp_path), "--target", "y", "--prediction", "p", "--task", "regression"
    )
    close(out["performance"]["metrics"]["r2"], skm.r2_score(df["y"], df["p"]), "r2")


def test_multiclass_matches_sklearn(tmp_path, modelops_json):
    rng = np.random.default_rng(8)
    n = 1500
    y = rng.integers(0, 4, n)
    p = np.where(rng.random(n) < 0.6, y, rng.integers(0, 4, n))
    p[p == 3] = 2  # class 3 never predicted: zero division in its precision
    df = pd.DataFrame({"y": y, "p": p})
    out = modelops_json(
        "evaluate", "--data", write(df, tmp_path), "--target", "y", "--prediction", "p", "--task", "classification"
    )
    m = out["performance"]["metrics"]
    assert out["performance"]["labels"] == ["0", "1", "2", "3"]
    close(m["accuracy"], skm.accuracy_score(y, p), "accuracy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for avg in ["macro", "weighted"]:
            close(m[f"precision_{avg}"], skm.precision_score(y, p, average=avg), f"precision_{avg}")
            close(m[f"recall_{avg}"], skm.recall_score(y, p, average=avg), f"recall_{avg}")
            close(m[f"f1_{avg}"], skm.f1_score(y, p, average=avg), f"f1_{avg}")
    assert m["roc_auc"] is None


# ---------------------------------------------------------------- bad input


def error_of(modelops, *args):
    proc = modelops(*args, check=False)
    assert proc.returncode != 0, proc.stdout
    assert proc.stderr.startswith("error: "), proc.stderr
    return proc.stderr


def test_missing_column_names_file_and_column(tmp_path, modelops):
    path = write(pd.DataFrame({"y": [0, 1], "p": [0, 1]}), tmp_path)
    err = error_of(modelops, "evaluate", "--data", path, "--target", "y", "--prediction", "nope")
    assert str(path) in err and "`nope`" in err


def test_all_missing_target(tmp_path, modelops):
    path = write(pd.DataFrame({"y": [np.nan] * 5, "p": [0, 1, 0, 1, 0]}), tmp_path)
    err = error_of(modelops, "evaluate", "--data", path, "--target", "y", "--prediction", "p")
    assert str(path) in err and "column `y`" in err and "all values are missing" in err


def test_infinite_values(tmp_path, modelops):
    df = pd.DataFrame({"y": [0, 1, 1], "p": [0, 1, 0], "s": [0.1, np.inf, 0.3]})
    path = write(df, tmp_path)
    err = error_of(modelops, "evaluate", "--data", path, "--target", "y", "--prediction", "p", "--score", "s")
    assert "column `s`" in err and "`inf`" in err
    df = pd.DataFrame({"y": [1.0, 2.0, 3.5], "p": [1.0, -np.inf, 3.0]})
    path = write(df, tmp_path)
    err = error_of(modelops, "evaluate", "--data", path, "--target", "y", "--prediction", "p")
    assert "column `p`" in err and "`-inf`" in err


def test_empty_and_truncated_files(tmp_path, modelops):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    err = error_of(modelops, "evaluate", "--data", empty, "--target", "y", "--prediction", "p")
    assert str(empty) in err
    header_only = tmp_path / "header.csv"
    header_only.write_text("y,p\n")
    err = error_of(modelops, "evaluate", "--data", header_only, "--target", "y", "--prediction", "p")
    assert str(header_only) in err
    good = write(binary_frame(n=500), tmp_path)
    truncated = tmp_path / "truncated.parquet"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    err = error_of(modelops, "evaluate", "--data", truncated, "--target", "y", "--prediction", "p")
    assert str(truncated) in err


def test_text_target_for_regression_and_pos_label_mistakes(tmp_path, modelops):
    df = pd.DataFrame({"y": ["a", "b", "c"], "p": [1.0, 2.0, 3.0]})
    path = write(df, tmp_path)
    err = error_of(modelops, "evaluate", "--data", path, "--target", "y", "--prediction", "p", "--task", "regression")
    assert "column `y`" in err and "numbers" in err
    df = pd.DataFrame({"y": ["cat", "dog"] * 5, "p": ["dog", "dog"] * 5})
    path = write(df, tmp_path)
    err = error_of(modelops, "evaluate", "--data", path, "--target", "y", "--prediction", "p")
    assert "--pos-label" in err
    err = error_of(modelops, "evaluate", "--data", path, "--target", "y", "--prediction", "p", "--pos-label", "bird")
    assert "`bird`" in err


def test_score_out_of_range_and_very_high_cardinality(tmp_path, modelops):
    n = 3000
    df = pd.DataFrame({"y": [0, 1] * (n // 2), "p": [0, 1] * (n // 2), "s": [0.2, 1.7] * (n // 2), "id": [f"u{i}" for i in range(n)]})
    path = write(df, tmp_path)
    err = error_of(modelops, "evaluate", "--data", path, "--target", "y", "--prediction", "p", "--score", "s")
    assert "column `s`" in err and "`1.7`" in err
    err = error_of(modelops, "evaluate", "--data", path, "--target", "y", "--prediction", "p", "--protected", "id")
    assert "column `id`" in err and "distinct values" in err


def test_every_format_renders(tmp_path, modelops):
    path = write(binary_frame(n=600), tmp_path)
    base = ["evaluate", "--data", path, "--target", "y", "--prediction", "p", "--score", "s", "--protected", "g"]
    table = modelops(*base).stdout
    assert "ROC AUC" in table and "demographic parity" in table and "four-fifths" in table
    md = modelops(*base, "--format", "md").stdout
    assert md.startswith("# Evaluation of") and "| Accuracy |" in md
    out = tmp_path / "report.html"
    modelops(*base, "--format", "html", "--out", out)
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>") and 'id="fairness"' in html
