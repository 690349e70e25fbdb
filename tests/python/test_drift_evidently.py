"""`modelops drift --mode evidently` against Evidently 0.7.23 itself.

Each case generates reference and current frames with a seeded NumPy
generator, writes them as Parquet (or CSV), runs the real binary with
`--format json` and Evidently's `Report([DataDriftPreset()]).run(...)` on the
same files, and requires every per-column method, threshold and score
(1e-9 relative) and every verdict to match, plus the dataset drift.
Sizes straddle Evidently's switch at 1,000 reference rows.
"""

import math
import os

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")

from evidently import Dataset, Report  # noqa: E402
from evidently.presets import DataDriftPreset  # noqa: E402

REL = 1e-9
# p-values below this are compared absolutely: both sides are "zero".
ABS = 1e-300


def frames(seed: int, n_ref: int, n_cur: int):
    rng = np.random.default_rng(seed)

    def side(n, drift):
        shift = 0.4 if drift else 0.0
        num_missing = rng.normal(10, 2, n)
        num_missing[rng.random(n) < 0.05] = np.nan
        num_missing[rng.random(n) < 0.01] = np.inf
        num_missing[rng.random(n) < 0.01] = -np.inf
        cat_p = [0.4, 0.3, 0.2, 0.1] if not drift else [0.3, 0.3, 0.25, 0.15]
        cat = rng.choice(["red", "green", "blue", "grey"], n, p=cat_p).astype(object)
        cat[rng.random(n) < 0.03] = None
        new_cat = rng.choice(["a", "b", "c"], n).astype(object)
        if drift:
            new_cat[rng.random(n) < 0.05] = "new"
        return pd.DataFrame(
            {
                "num_normal": rng.normal(0, 1, n),
                "num_shift": rng.normal(shift, 1, n),
                "num_scale": rng.exponential(1.0 + shift, n),
                "num_missing": num_missing,
                "num_few": rng.choice([0.5, 1.5, 2.5, 3.5], n),
                "num_two": rng.choice([0.0, 1.0], n, p=[0.7, 0.3]),
                "int_low": rng.integers(0, 5, n),
                "int_binary": rng.integers(0, 2, n),
                "int_high": rng.integers(0, 1000, n) + (30 if drift else 0),
                "bool_flag": rng.random(n) < (0.5 if not drift else 0.6),
                "cat": cat,
                "cat_new": new_cat,
                "cat_binary": rng.choice(["yes", "no"], n),
            }
        )

    return side(n_ref, False), side(n_cur, True)


def evidently_results(reference: pd.DataFrame, current: pd.DataFrame, **preset):
    snapshot = Report([DataDriftPreset(**preset)], include_tests=True).run(
        Dataset.from_pandas(current), Dataset.from_pandas(reference)
    )
    d = snapshot.dict()
    columns = {}
    share = None
    for m in d["metrics"]:
        cfg = m["config"]
        if cfg["type"].endswith("ValueDrift"):
            columns[cfg["column"]] = {
                "method": cfg["method"],
                "threshold": cfg["threshold"],
                "score": float(m["value"]),
            }
        elif cfg["type"].endswith("DriftedColumnsCount"):
            share = m["value"]["share"]
    for t in d["tests"]:
        if t["id"] == "drift":
            col = t["metric_config"]["params"]["column"]
            columns[col]["drift"] = t["status"] == "FAIL"
    return columns, share


def write(df: pd.DataFrame, path):
    if str(path).endswith(".csv"):
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)


def assert_same(ours, theirs, their_share):
    by_name = {c["column"]: c for c in ours["columns"]}
    assert set(by_name) == set(theirs), (sorted(by_name), sorted(theirs))
    for name, ev in theirs.items():
        c = by_name[name]
        assert c["not_computed"] is None, (name, c["not_computed"])
        # Evidently records the display name it chose, or the key it was given.
        assert ev["method"] in (c["method_name"], c["method"]), (name, c["method_name"], ev["method"])
        assert c["threshold"] == ev["threshold"], name
        a, b = c["score"], ev["score"]
        assert math.isclose(a, b, rel_tol=REL, abs_tol=ABS), f"{name}: modelops {a!r} evidently {b!r}"
        assert c["drift_detected"] == ev["drift"], (name, a, b)
    assert math.isclose(ours["share_of_drifted_columns"], their_share, rel_tol=1e-12)
    assert ours["dataset_drift"] == (their_share >= 0.5)


@pytest.mark.parametrize(
    "n_ref,n_cur,ext",
    [
        (300, 250, "parquet"),
        (1000, 1500, "parquet"),  # largest reference of the small-sample branch
        (1001, 700, "parquet"),  # smallest of the large-sample branch
        (4000, 5000, "parquet"),
        (800, 800, "csv"),
        (2500, 2000, "csv"),
    ],
)
def test_default_methods_match_evidently(modelops_json, tmp_path, n_ref, n_cur, ext):
    reference, current = frames(seed=n_ref + n_cur, n_ref=n_ref, n_cur=n_cur)
    ref_path, cur_path = tmp_path / f"ref.{ext}", tmp_path / f"cur.{ext}"
    write(reference, ref_path)
    write(current, cur_path)
    if ext == "csv":  # compare with what pandas itself reads back from the CSV
        reference, current = pd.read_csv(ref_path), pd.read_csv(cur_path)
    theirs, share = evidently_results(reference, current)
    ours = modelops_json("drift", "--mode", "evidently", "--reference", ref_path, "--current", cur_path)
    assert_same(ours, theirs, share)
    # Both sides of the switch really were exercised.
    methods = {c["method"] for c in ours["columns"]}
    if n_ref <= 1000:
        assert {"ks", "chisquare", "z"} <= methods, methods
    else:
        assert {"wasserstein", "jensenshannon"} <= methods, methods


@pytest.mark.parametrize("method", ["ks", "wasserstein", "psi", "jensenshannon", "kl_div", "hellinger", "chisquare", "z"])
@pytest.mark.parametrize("n_ref,n_cur", [(600, 500), (3000, 2000)])
def test_forced_methods_match_evidently(modelops_json, tmp_path, method, n_ref, n_cur):
    reference, current = frames(seed=7, n_ref=n_ref, n_cur=n_cur)
    if method in ("ks", "wasserstein"):
        keep = ["num_normal", "num_shift", "num_scale", "num_missing", "num_few", "int_high"]
    elif method in ("chisquare", "z"):
        keep = ["cat", "cat_binary", "int_low", "int_binary", "bool_flag", "cat_new"]
        if method == "z":
            keep = ["cat_binary", "int_binary", "bool_flag"]
    else:
        keep = list(reference.columns)
    reference, current = reference[keep], current[keep]
    ref_path, cur_path = tmp_path / "ref.parquet", tmp_path / "cur.parquet"
    write(reference, ref_path)
    write(current, cur_path)
    theirs, share = evidently_results(reference, current, method=method)
    ours = modelops_json(
        "drift", "--mode", "evidently", "--method", method, "--reference", ref_path, "--current", cur_path
    )
    assert_same(ours, theirs, share)


def test_schema_mismatch_names_file_and_column(modelops, tmp_path):
    reference, current = frames(seed=1, n_ref=200, n_cur=200)
    write(reference.drop(columns=["cat"]), tmp_path / "ref.parquet")
    write(current, tmp_path / "cur.parquet")
    proc = modelops(
        "drift", "--mode", "evidently", "--reference", tmp_path / "ref.parquet",
        "--current", tmp_path / "cur.parquet", check=False,
    )
    assert proc.returncode != 0
    assert "ref.parquet" in proc.stderr and "`cat`" in proc.stderr, proc.stderr


def test_bad_columns_are_not_computed_not_panics(modelops_json, tmp_path):
    n = 300
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"ok": rng.normal(size=n), "empty": np.full(n, np.nan), "inf": np.full(n, np.inf),
                              "id": [f"user-{i}" for i in range(n)]})
    current = pd.DataFrame({"ok": rng.normal(size=n), "empty": np.full(n, np.nan), "inf": rng.normal(size=n),
                            "id": [f"user-{i + n}" for i in range(n)]})
    write(reference, tmp_path / "ref.parquet")
    write(current, tmp_path / "cur.parquet")
    for mode in ("evidently", "default"):
        out = modelops_json("drift", "--mode", mode, "--reference", tmp_path / "ref.parquet",
                            "--current", tmp_path / "cur.parquet")
        by = {c["column"]: c for c in out["columns"]}
        assert by["ok"]["score"] is not None
        for bad in ("empty", "inf", "id"):
            assert by[bad]["score"] is None and by[bad]["not_computed"], (mode, bad, by[bad])
        assert "missing or infinite" in by["empty"]["not_computed"]
        assert "text column" in by["id"]["not_computed"]
        assert out["number_of_columns"] == 1


def test_truncated_and_empty_files_are_clear_errors(modelops, tmp_path):
    reference, current = frames(seed=2, n_ref=500, n_cur=500)
    write(reference, tmp_path / "ref.parquet")
    data = (tmp_path / "ref.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.csv").write_text("")
    write(current, tmp_path / "cur.parquet")
    for bad in ("cut.parquet", "empty.csv", "absent.parquet"):
        proc = modelops("drift", "--reference", tmp_path / bad, "--current", tmp_path / "cur.parquet", check=False)
        assert proc.returncode != 0
        assert bad in proc.stderr, proc.stderr


def test_profile_gives_the_same_numbers_as_the_reference_file(modelops, modelops_json, tmp_path):
    reference, current = frames(seed=11, n_ref=20_000, n_cur=3_000)
    write(reference, tmp_path / "ref.parquet")
    write(current, tmp_path / "cur.parquet")
    modelops("profile", "fit", tmp_path / "ref.parquet", "-o", tmp_path / "ref.profile")
    from_file = modelops_json("drift", "--reference", tmp_path / "ref.parquet", "--current", tmp_path / "cur.parquet")
    from_profile = modelops_json("drift", "--profile", tmp_path / "ref.profile", "--current", tmp_path / "cur.parquet")
    strip = lambda r: [{k: v for k, v in c.items()} for c in r["columns"]]  # noqa: E731
    assert strip(from_file) == strip(from_profile)
    assert from_file["dataset_drift"] == from_profile["dataset_drift"]
    by = {c["column"]: c for c in from_profile["columns"]}
    assert by["num_shift"]["drift_detected"] and not by["num_normal"]["drift_detected"]
    assert by["num_shift"]["method"] == "wasserstein"
    assert by["cat"]["method"] == "jensenshannon"


@pytest.mark.parametrize(
    "n_ref,n_cur,seed",
    [
        (1000, 12000, 11),  # en = round(923.08) = 923: Smirnov, Pelz-Good, DMTW
        (300, 20000, 12),
        (120, 15000, 13),  # en <= 140: DMTW, Pomeranz, Smirnov for small n
        (60, 10001, 14),  # just over MAX_AUTO_N
    ],
)
def test_ks_asymptotic_branch_matches_evidently(modelops_json, tmp_path, n_ref, n_cur, seed):
    # Reference <= 1,000 rows: Evidently picks K-S; the current side has more
    # than 10,000 values, so SciPy's ks_2samp takes its asymptotic branch
    # (kstwo.sf(d, round(m*n/(m+n)))).
    reference, current = frames(seed=seed, n_ref=n_ref, n_cur=n_cur)
    ref_path, cur_path = tmp_path / "ref.parquet", tmp_path / "cur.parquet"
    write(reference, ref_path)
    write(current, cur_path)
    theirs, share = evidently_results(reference, current)
    ours = modelops_json("drift", "--mode", "evidently", "--reference", ref_path, "--current", cur_path)
    assert_same(ours, theirs, share)
    ks = [c for c in ours["columns"] if c["method"] == "ks"]
    assert len(ks) >= 4, [c["method"] for c in ours["columns"]]
    assert all(c["current_count"] > 10000 for c in ks if c["column"] != "num_missing"), ks


def test_forced_ks_on_large_samples_matches_evidently(modelops_json, tmp_path):
    # Both samples large (reference > 1,000 would default to Wasserstein):
    # forced K-S goes through the asymptotic branch with a large en.
    reference, current = frames(seed=15, n_ref=3000, n_cur=12000)
    keep = ["num_normal", "num_shift", "num_scale", "num_missing", "int_high"]
    reference, current = reference[keep], current[keep]
    ref_path, cur_path = tmp_path / "ref.parquet", tmp_path / "cur.parquet"
    write(reference, ref_path)
    write(current, cur_path)
    theirs, share = evidently_results(reference, current, method="ks")
    ours = modelops_json(
        "drift", "--mode", "evidently", "--method", "ks", "--reference", ref_path, "--current", cur_path
    )
    assert_same(ours, theirs, share)
