"""ONNX models served by modelops, compared with onnxruntime and shap.

Each fixture (scikit-learn with skl2onnx — linear models, trees, MLP,
support vector machines —, XGBoost and LightGBM with onnxmltools) is pushed to a running server as an `onnx` model, then called
with the real `tritonclient[http]` over the Open Inference Protocol, with
binary tensors (the client's default) and with JSON, and through the native
`predict` route with explanations. Every output must equal onnxruntime's to
1e-5 on every test row, and TreeSHAP values shap's TreeExplainer's to 1e-6.
"""

import json

import numpy as np
import onnxruntime as ort
import pytest
import requests
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

FIXTURES = [
    "logreg",
    "logreg_strings",
    "scaler_logreg",
    "rf_classifier",
    "rf_regressor",
    "rf_regressor_v5",
    "gb_binary",
    "gb_multiclass",
    "mlp",
    "linreg",
    "svc_binary",
    "svc_binary_proba",
    "svc_multiclass",
    "svc_multiclass_proba",
    "svc_poly",
    "nusvc_sigmoid",
    "svr",
    "svr_linear",
    "one_class_svm",
    "xgb_binary",
    "xgb_multiclass",
    "xgb_regressor",
    "lgbm_binary",
    "lgbm_multiclass",
    "lgbm_regressor",
]
TREES = [f for f in FIXTURES if f.startswith(("rf_", "gb_", "xgb_", "lgbm_")) and not f.endswith("_v5")]


def model_name(fixture):
    return "onnx-" + fixture.replace("_", "-")


@pytest.fixture(scope="module")
def pushed(server, onnx_fixtures):
    """Every fixture registered as version 1 of a model of its own."""
    return push_each(server, onnx_fixtures, FIXTURES)


def push_each(server, onnx_fixtures, fixtures):
    for fixture in fixtures:
        name = model_name(fixture)
        server.cli("models", "create", name, "--kind", "onnx", "--owner", "admin", "--risk-tier", "low")
        server.cli("versions", "push", name, onnx_fixtures / f"{fixture}.onnx")
    return onnx_fixtures


def load_json(path):
    with open(path) as f:
        return json.load(f)


def onnxruntime_outputs(path, X):
    """onnxruntime's outputs by name; ZipMap's list of dicts as [rows, classes]."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    out = {}
    for name, value in zip(names, session.run(None, {session.get_inputs()[0].name: X})):
        if isinstance(value, list):
            classes = list(value[0].keys())
            value = np.array([[row[c] for c in classes] for row in value], dtype=np.float32)
        out[name] = np.asarray(value)
    return out


def client(server):
    return httpclient.InferenceServerClient(url=server.hostport)


def infer(server, fixture, X, binary):
    c = client(server)
    inp = httpclient.InferInput("X", list(X.shape), "FP32")
    inp.set_data_from_numpy(X, binary_data=binary)
    result = c.infer(model_name(fixture), inputs=[inp], model_version="1", headers=server.headers())
    return result


def assert_same(fixture, name, ours, theirs):
    if theirs.dtype.kind in "iufb":
        ours = np.asarray(ours, dtype=np.float64).reshape(theirs.shape)
        np.testing.assert_allclose(ours, theirs.astype(np.float64), rtol=1e-5, atol=1e-5, err_msg=f"{fixture}.{name}")
    else:  # string labels
        ours = np.asarray([o.decode() if isinstance(o, bytes) else str(o) for o in np.ravel(ours)])
        assert list(ours) == [str(t) for t in np.ravel(theirs)], f"{fixture}.{name}"


@pytest.mark.parametrize("fixture", FIXTURES)
def test_tritonclient_binary_outputs_equal_onnxruntime(server, pushed, fixture):
    X = np.asarray(load_json(pushed / f"{fixture}.inputs.json")["X"], dtype=np.float32)
    expected = onnxruntime_outputs(pushed / f"{fixture}.onnx", X)
    result = infer(server, fixture, X, binary=True)
    response = result.get_response()
    assert response["model_name"] == model_name(fixture)
    assert response["model_version"] == "1"
    for name, theirs in expected.items():
        assert_same(fixture, name, result.as_numpy(name), theirs)


@pytest.mark.parametrize("fixture", ["logreg", "rf_classifier", "xgb_multiclass", "lgbm_regressor"])
def test_tritonclient_json_outputs_equal_onnxruntime(server, pushed, fixture):
    X = np.asarray(load_json(pushed / f"{fixture}.inputs.json")["X"], dtype=np.float32)
    expected = onnxruntime_outputs(pushed / f"{fixture}.onnx", X)
    c = client(server)
    inp = httpclient.InferInput("X", list(X.shape), "FP32")
    inp.set_data_from_numpy(X, binary_data=False)
    outputs = [httpclient.InferRequestedOutput(name, binary_data=False) for name in expected]
    result = c.infer(model_name(fixture), inputs=[inp], outputs=outputs, model_version="1", headers=server.headers())
    for name, theirs in expected.items():
        assert_same(fixture, name, result.as_numpy(name), theirs)


@pytest.mark.parametrize("fixture", [f for f in TREES])
def test_missing_values_follow_onnxruntime(server, pushed, fixture):
    """Tree models route NaN as their exporter declared; the signature must allow it."""
    path = pushed / f"{fixture}.nan.inputs.json"
    X = np.asarray([[np.nan if v is None else v for v in row] for row in load_json(path)["X"]], dtype=np.float32)
    expected = onnxruntime_outputs(pushed / f"{fixture}.onnx", X)
    meta = requests.get(f"{server.url}/api/v1/models/{model_name(fixture)}/versions/1", headers=server.headers()).json()
    if not meta["signature"]["inputs"][0].get("allow_nan"):
        with pytest.raises(InferenceServerException) as err:
            infer(server, fixture, X, binary=True)
        assert err.value.status() == "400" and "NaN" in err.value.message()
        return
    result = infer(server, fixture, X, binary=True)
    for name, theirs in expected.items():
        assert_same(fixture, name, result.as_numpy(name), theirs)


def test_metadata_and_readiness(server, pushed):
    c = client(server)
    assert c.is_server_live() and c.is_server_ready()
    assert "binary_tensor_data" in c.get_server_metadata()["extensions"]
    meta = c.get_model_metadata(model_name("rf_classifier"), model_version="1", headers=server.headers())
    assert meta["platform"] == "onnx_onnxv1"
    assert meta["inputs"] == [{"name": "X", "datatype": "FP32", "shape": [-1, 10]}]
    assert {o["name"] for o in meta["outputs"]} == {"label", "probabilities"} or len(meta["outputs"]) == 2
    assert c.is_model_ready(model_name("rf_classifier"), model_version="1", headers=server.headers())
    # Without a version, the production version: none yet.
    with pytest.raises(InferenceServerException) as err:
        c.get_model_metadata(model_name("rf_classifier"), headers=server.headers())
    assert err.value.status() == "404"


def test_bad_requests_name_the_tensor(server, pushed):
    c = client(server)
    name = model_name("logreg")
    # Wrong width.
    inp = httpclient.InferInput("X", [2, 3], "FP32")
    inp.set_data_from_numpy(np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(InferenceServerException) as err:
        c.infer(name, inputs=[inp], model_version="1", headers=server.headers())
    assert err.value.status() == "400" and "inputs.X" in err.value.message()
    # Wrong datatype.
    inp = httpclient.InferInput("X", [1, 10], "BYTES")
    inp.set_data_from_numpy(np.array([["a"] * 10], dtype=object))
    with pytest.raises(InferenceServerException) as err:
        c.infer(name, inputs=[inp], model_version="1", headers=server.headers())
    assert err.value.status() == "400" and "inputs.X" in err.value.message()
    # Unknown input name.
    inp = httpclient.InferInput("features", [1, 10], "FP32")
    inp.set_data_from_numpy(np.zeros((1, 10), dtype=np.float32))
    with pytest.raises(InferenceServerException) as err:
        c.infer(name, inputs=[inp], model_version="1", headers=server.headers())
    assert err.value.status() == "400" and "features" in err.value.message()
    # NaN in a model whose signature does not allow it.
    inp = httpclient.InferInput("X", [1, 10], "FP32")
    inp.set_data_from_numpy(np.full((1, 10), np.nan, dtype=np.float32))
    with pytest.raises(InferenceServerException) as err:
        c.infer(name, inputs=[inp], model_version="1", headers=server.headers())
    assert err.value.status() == "400" and "NaN" in err.value.message()
    # Unknown model and version.
    with pytest.raises(InferenceServerException) as err:
        c.infer("no-such-model", inputs=[inp], model_version="1", headers=server.headers())
    assert err.value.status() == "404"
    with pytest.raises(InferenceServerException) as err:
        c.infer(name, inputs=[inp], model_version="9", headers=server.headers())
    assert err.value.status() == "404"
    # No token.
    with pytest.raises(InferenceServerException) as err:
        c.infer(name, inputs=[inp], model_version="1")
    assert err.value.status() == "401"
    # Oversized body: 413, before any model work.
    huge = b"{" + b" " * (33 * 1024 * 1024) + b"}"
    r = requests.post(f"{server.url}/v2/models/{name}/versions/1/infer", data=huge, headers=server.headers())
    assert r.status_code == 413, r.text
    assert "error" in r.json()


def test_native_predict_with_rows_and_aliases(server, pushed):
    name = model_name("rf_classifier")
    X = load_json(pushed / "rf_classifier.inputs.json")["X"][:5]
    expected = onnxruntime_outputs(pushed / "rf_classifier.onnx", np.asarray(X, dtype=np.float32))
    server.cli("alias", "set", name, "staging", "1")
    r = requests.post(
        f"{server.url}/api/v1/models/{name}/versions/staging/predict",
        json={"rows": X},
        headers=server.headers(),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["version"] == 1 and len(body["predictions"]) == 5
    label_name = [n for n, v in expected.items() if v.ndim == 1][0]
    assert [p[label_name] for p in body["predictions"]] == expected[label_name].tolist()


def test_cli_predict_reads_csv(server, pushed, tmp_path):
    name = model_name("linreg")
    X = load_json(pushed / "linreg.inputs.json")["X"][:4]
    csv = tmp_path / "rows.csv"
    csv.write_text("\n".join([",".join(f"f{i}" for i in range(10))] + [",".join(repr(v) for v in row) for row in X]) + "\n")
    out = server.cli("predict", f"{name}/1", "--input", csv).stdout.strip().splitlines()
    expected = onnxruntime_outputs(pushed / "linreg.onnx", np.asarray(X, dtype=np.float32))
    values = [list(json.loads(line).values())[0] for line in out]
    np.testing.assert_allclose(np.ravel(values), np.ravel(list(expected.values())[0]), rtol=1e-5)


def test_push_of_an_unloadable_onnx_is_refused_and_stores_nothing(server, pushed, tmp_path):
    name = "onnx-broken"
    server.cli("models", "create", name, "--kind", "onnx", "--owner", "admin", "--risk-tier", "low")
    proc = server.cli("versions", "push", name, pushed / "unsupported_op.onnx", check=False)
    assert proc.returncode != 0
    assert "artifact" in proc.stderr and "not supported" in proc.stderr, proc.stderr
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes((pushed / "logreg.onnx").read_bytes()[:100])
    proc = server.cli("versions", "push", name, corrupt, check=False)
    assert proc.returncode != 0 and "artifact" in proc.stderr, proc.stderr
    listed = json.loads(server.cli("versions", "list", name, "--json").stdout)
    assert listed["versions"] == []


@pytest.mark.parametrize("fixture", TREES)
def test_tree_shap_equals_shap(server, pushed, fixture):
    expected = load_json(pushed / f"{fixture}.shap.json")
    X = load_json(pushed / f"{fixture}.inputs.json")["X"][:50]
    r = requests.post(
        f"{server.url}/api/v1/models/{model_name(fixture)}/versions/1/predict",
        json={"rows": X, "explain": True},
        headers=server.headers(),
    )
    assert r.status_code == 200, r.text
    explanations = r.json()["explanations"]
    assert len(explanations) == len(X)
    for output, base in enumerate(expected["expected_value"]):
        ours = np.array([[c["value"] for c in e["outputs"][output]["values"]] for e in explanations])
        theirs = np.asarray(expected["values"][output])[: len(X)]
        # 1e-6 on the scale of the model's raw score: ONNX stores leaf values
        # as float32 and XGBoost's own TreeSHAP (which shap calls) computes in
        # float32, so a regressor scoring in the hundreds differs by ~1e-4.
        scale = max(1.0, float(np.max(np.abs(theirs.sum(axis=1) + base))))
        np.testing.assert_allclose(ours, theirs, atol=1e-6 * scale, rtol=0, err_msg=f"{fixture} output {output}")
        ours_base = explanations[0]["outputs"][output]["base_value"]
        assert abs(ours_base - base) < 1e-6 * scale, (fixture, output, ours_base, base)
        # Efficiency: the values and the base add up to the raw score.
        assert np.allclose(ours.sum(axis=1) + ours_base, theirs.sum(axis=1) + base, atol=1e-5 * scale)


@pytest.mark.parametrize("fixture", ["rf_classifier", "xgb_binary"])
def test_onnx_add_covers_makes_an_export_explainable(server, pushed, fixture, tmp_path):
    """scripts/onnx_add_covers.py on an export with the exporters' placeholder
    hit rates (1.0 everywhere) and the trained model: the placeholder version
    is refused for explanations, the rewritten one explained as shap does."""
    import subprocess
    import sys
    from pathlib import Path

    import onnx
    from onnx import helper

    script = Path(__file__).resolve().parents[2] / "scripts" / "onnx_add_covers.py"
    placeholder, covered = tmp_path / f"{fixture}.placeholder.onnx", tmp_path / f"{fixture}.covers.onnx"
    proto = onnx.load(pushed / f"{fixture}.onnx")
    node = next(n for n in proto.graph.node if n.domain == "ai.onnx.ml" and n.op_type.startswith("TreeEnsemble"))
    n_nodes = len(next(a for a in node.attribute if a.name == "nodes_treeids").ints)
    keep = [a for a in node.attribute if a.name != "nodes_hitrates"]
    del node.attribute[:]
    node.attribute.extend(keep)
    node.attribute.append(helper.make_attribute("nodes_hitrates", [1.0] * n_nodes))
    onnx.save(proto, placeholder)

    proc = subprocess.run(
        [sys.executable, str(script), str(placeholder), str(pushed / f"{fixture}.model.joblib"), "-o", str(covered)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"wrote {covered}") and "was all 1.0" in lines[0], proc.stdout

    name = "onnx-covers-" + fixture.replace("_", "-")
    server.cli("models", "create", name, "--kind", "onnx", "--owner", "admin", "--risk-tier", "low")
    server.cli("versions", "push", name, placeholder)
    server.cli("versions", "push", name, covered)
    X = load_json(pushed / f"{fixture}.inputs.json")["X"][:50]

    def explain(version):
        return requests.post(
            f"{server.url}/api/v1/models/{name}/versions/{version}/predict",
            json={"rows": X, "explain": True},
            headers=server.headers(),
        )

    r = explain(1)
    assert r.status_code == 400 and "nodes_hitrates" in r.json()["error"]["message"], r.text

    r = explain(2)
    assert r.status_code == 200, r.text
    expected = load_json(pushed / f"{fixture}.shap.json")
    explanations = r.json()["explanations"]
    assert len(explanations) == len(X)
    for output, base in enumerate(expected["expected_value"]):
        ours = np.array([[c["value"] for c in e["outputs"][output]["values"]] for e in explanations])
        theirs = np.asarray(expected["values"][output])[: len(X)]
        scale = max(1.0, float(np.max(np.abs(theirs.sum(axis=1) + base))))
        np.testing.assert_allclose(ours, theirs, atol=1e-6 * scale, rtol=0, err_msg=f"{fixture} output {output}")
        ours_base = explanations[0]["outputs"][output]["base_value"]
        assert abs(ours_base - base) < 1e-6 * scale, (fixture, output, ours_base, base)


def test_an_artifact_whose_own_names_break_the_rules_is_refused(server, pushed, tmp_path):
    """Names taken from the graph obey the rules pushed names do (no control characters)."""
    import onnx

    model = onnx.load(str(pushed / "linreg.onnx"))
    old = model.graph.input[0].name
    new = "X\x00\x07"
    model.graph.input[0].name = new
    for node in model.graph.node:
        node.input[:] = [new if i == old else i for i in node.input]
    path = tmp_path / "bad-names.onnx"
    onnx.save(model, str(path))
    server.cli("models", "create", "onnx-bad-names", "--kind", "onnx", "--owner", "admin", "--risk-tier", "low")
    proc = server.cli("versions", "push", "onnx-bad-names", path, check=False)
    assert proc.returncode != 0 and "signature.inputs[0].name" in proc.stderr, proc.stderr
    assert json.loads(server.cli("versions", "list", "onnx-bad-names", "--json").stdout)["versions"] == []


TABULAR = ["tabular_onehot_logreg", "tabular_onehot_rf", "tabular_ordinal_gb"]
TABULAR_TYPES = {"income": ("FP32", np.float32), "age": ("FP32", np.float32), "region": ("BYTES", object),
                 "channel": ("BYTES", object), "grade": ("INT64", np.int64)}


@pytest.fixture(scope="module")
def tabular(server, onnx_fixtures):
    """The pipelines over a table of mixed columns (string and integer
    categories one-hot or ordinal encoded, numbers scaled), each pushed as
    version 1 of a model of its own."""
    return push_each(server, onnx_fixtures, TABULAR)


def tabular_columns(path):
    return {c: np.asarray(v, dtype=TABULAR_TYPES[c][1]) for c, v in load_json(path).items()}


def tabular_expected(path, columns):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = {}
    for output, value in zip(session.get_outputs(), session.run(None, columns)):
        if isinstance(value, list):
            value = np.array([[row[c] for c in sorted(value[0])] for row in value], dtype=np.float32)
        out[output.name] = np.asarray(value)
    return out


@pytest.mark.parametrize("fixture", TABULAR)
@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_tabular_pipelines_equal_onnxruntime(server, tabular, fixture, binary):
    """Five inputs of three OIP datatypes (FP32, BYTES for the string
    categories, INT64), a tenth of the rows with categories never seen in
    training: every output equals onnxruntime's."""
    columns = tabular_columns(tabular / f"{fixture}.inputs.json")
    assert (columns["region"] == "atlantis").sum() > 5
    expected = tabular_expected(tabular / f"{fixture}.onnx", columns)
    inputs = []
    for name, values in columns.items():
        inp = httpclient.InferInput(name, list(values.shape), TABULAR_TYPES[name][0])
        inp.set_data_from_numpy(values, binary_data=binary)
        inputs.append(inp)
    outputs = [httpclient.InferRequestedOutput(name, binary_data=binary) for name in expected]
    result = client(server).infer(model_name(fixture), inputs=inputs, outputs=outputs, model_version="1", headers=server.headers())
    for name, theirs in expected.items():
        assert_same(fixture, name, result.as_numpy(name), theirs)


def test_tabular_pipeline_through_native_records_and_a_csv(server, tabular, tmp_path):
    """A user sends one object per row with plain values
    (`{"region": "north", ...}`) or a CSV with a header: the same answers."""
    fixture = "tabular_onehot_rf"
    columns = tabular_columns(tabular / f"{fixture}.inputs.json")
    expected = tabular_expected(tabular / f"{fixture}.onnx", columns)
    rows = [{c: (v[r][0].item() if hasattr(v[r][0], "item") else v[r][0]) for c, v in columns.items()} for r in range(12)]
    r = requests.post(f"{server.url}/api/v1/models/{model_name(fixture)}/versions/1/predict", json={"rows": rows}, headers=server.headers())
    assert r.status_code == 200, r.text
    predictions = r.json()["predictions"]
    assert [p["output_label"] for p in predictions] == expected["output_label"][:12].tolist()
    probabilities = np.asarray([p["output_probability"] for p in predictions])
    np.testing.assert_allclose(probabilities, expected["output_probability"][:12], rtol=1e-5, atol=1e-6)

    csv = tmp_path / "applicants.csv"
    csv.write_text("\n".join([",".join(rows[0])] + [",".join(str(row[c]) for c in row) for row in rows]) + "\n")
    out = server.cli("predict", f"{model_name(fixture)}/1", "--input", csv).stdout.strip().splitlines()
    assert [json.loads(line)["output_label"] for line in out] == expected["output_label"][:12].tolist()

    bad = dict(rows[0], grade="three")
    r = requests.post(f"{server.url}/api/v1/models/{model_name(fixture)}/versions/1/predict", json={"rows": [bad]}, headers=server.headers())
    assert r.status_code == 400 and "rows[0].grade" in r.text, r.text
