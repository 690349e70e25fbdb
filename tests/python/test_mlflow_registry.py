"""The unmodified `mlflow` client's model logging, artifacts and model
registry against modelops: `log_model` with `registered_model_name`,
`register_model` from `runs:/` and `models:/`, loading by version, alias
and run (the loaded model predicts as the original), every MlflowClient
registry call, the artifact proxy (subdirectories, listing, download),
and that what MLflow registers is governed: kind `mlflow` in the native
inventory, deletions are retirements in the audit chain, the champion
alias and the Production stage pass the promotion gate (PERMISSION_DENIED
with its reasons otherwise)."""

import hashlib
import json
import os
import subprocess
import urllib.request

import numpy as np
import pytest

from conftest import start_server, stop_server

import mlflow
import mlflow.pyfunc
import mlflow.sklearn
from mlflow.exceptions import MlflowException, RestException
from mlflow.tracking import MlflowClient
from sklearn.linear_model import LogisticRegression


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A server of its own, the client pointed at it with the admin's token
    and no retries (a 5xx fails at once instead of minutes later)."""
    proc, server = start_server(tmp_path_factory.mktemp("mlflow-registry"))
    saved = dict(os.environ)
    os.environ.update(
        MLFLOW_TRACKING_URI=server.url,
        MLFLOW_TRACKING_TOKEN=server.token,
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
        MLFLOW_HTTP_REQUEST_TIMEOUT="30",
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
    )
    mlflow.set_tracking_uri(server.url)
    yield server
    os.environ.clear()
    os.environ.update(saved)
    stop_server(proc)


def native(server, path):
    request = urllib.request.Request(server.url + path, headers=server.headers())
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def trained():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(200, 4))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    return LogisticRegression().fit(x, y), x


def test_log_model_registers_a_governed_version_that_loads_back(registry):
    model, x = trained()
    mlflow.set_experiment("credit")
    with mlflow.start_run() as run:
        mlflow.log_param("C", 1.0)
        mlflow.log_metric("accuracy", 0.93)
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name="credit-scorer", input_example=x[:2])
    assert str(info.registered_model_version) == "1"
    client = MlflowClient()
    mv = client.get_model_version("credit-scorer", "1")
    assert mv.status == "READY"
    assert mv.run_id == run.info.run_id
    assert mv.current_stage == "None"
    # Loaded back by version, by run and by logged model: predicts as the original.
    expected = model.predict_proba(x)[:, 1]
    for uri in ["models:/credit-scorer/1", f"runs:/{run.info.run_id}/model", info.model_uri]:
        loaded = mlflow.sklearn.load_model(uri)
        np.testing.assert_allclose(loaded.predict_proba(x)[:, 1], expected, rtol=0, atol=0)
    pyfunc = mlflow.pyfunc.load_model("models:/credit-scorer/1")
    np.testing.assert_array_equal(pyfunc.predict(x), model.predict(x))
    # The run records the model it produced.
    assert [o.model_id for o in client.get_run(run.info.run_id).outputs.model_outputs] == [info.model_id]

    # One inventory: the native API sees a governed model of kind mlflow,
    # whose version's artifact is the manifest of the logged files.
    m = native(registry, "/api/v1/models/credit-scorer")
    assert m["kind"] == "mlflow"
    assert m["risk_tier"] == "medium"
    v = native(registry, "/api/v1/models/credit-scorer/versions/1")
    assert v["state"] == "draft"
    assert v["lineage"]["mlflow_run_id"] == run.info.run_id
    events = native(registry, "/api/v1/audit?subject=model/credit-scorer")["events"]
    assert "model.create" in [e["action"] for e in events]


def test_registered_files_never_change_and_download_bit_for_bit(registry, tmp_path):
    model, x = trained()
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name="immutable")
    client = MlflowClient()
    uri = client.get_model_version_download_uri("immutable", "1")
    assert uri.startswith("mlflow-artifacts:/_manifests/")
    first = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(tmp_path / "a"))
    logged = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{info.model_id}", dst_path=str(tmp_path / "b"))
    names = sorted(os.listdir(first))
    assert "MLmodel" in names and "model.skops" in names
    for name in names:
        with open(os.path.join(first, name), "rb") as a, open(os.path.join(logged, name), "rb") as b:
            assert a.read() == b.read(), name
    # Overwriting the logged model's file does not change the version.
    logged_uri = client.get_logged_model(info.model_id).artifact_location
    (tmp_path / "MLmodel").write_text("tampered")
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    get_artifact_repository(logged_uri).log_artifact(str(tmp_path / "MLmodel"))
    again = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(tmp_path / "c"))
    with open(os.path.join(first, "MLmodel"), "rb") as a, open(os.path.join(again, "MLmodel"), "rb") as b:
        assert a.read() == b.read()
    loaded = mlflow.sklearn.load_model("models:/immutable/1")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_run_artifacts_with_subdirectories_list_and_download(registry, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    sub = tmp_path / "plots"
    sub.mkdir()
    (sub / "a.bin").write_bytes(bytes(range(256)) * 100)
    (sub / "b.txt").write_text("b")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "notes.txt"))
        mlflow.log_artifacts(str(sub), artifact_path="figures/plots")
    client = MlflowClient()
    top = {f.path: f for f in client.list_artifacts(run.info.run_id)}
    assert set(top) == {"notes.txt", "figures"}
    assert top["notes.txt"].file_size == 5 and not top["notes.txt"].is_dir
    assert top["figures"].is_dir
    deep = {f.path: f.file_size for f in client.list_artifacts(run.info.run_id, "figures/plots")}
    assert deep == {"figures/plots/a.bin": 25600, "figures/plots/b.txt": 1}
    out = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="figures", dst_path=str(tmp_path / "dl"))
    with open(os.path.join(out, "plots", "a.bin"), "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == hashlib.sha256(bytes(range(256)) * 100).hexdigest()
    # A path that leaves the artifact root is refused, never served.
    request = urllib.request.Request(
        registry.url + "/api/2.0/mlflow-artifacts/artifacts/1/%2e%2e/%2e%2e/etc/passwd", headers=registry.headers()
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 400
    assert json.loads(refused.value.read())["error_code"] == "INVALID_PARAMETER_VALUE"


def test_large_files_upload_in_parallel_parts_and_download_bit_for_bit(registry, tmp_path, monkeypatch):
    """The client uploads a file of at least MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE
    in parts (server-info enables it; 500 MiB by default, lowered here) to
    the part URLs the server hands out, then completes; the file reads back
    whole. The part URLs carry their own credential: a forged upload id, a
    part ETag from another upload, a missing part are refused by name."""
    from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository

    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(1 << 20))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(256 << 10))
    parts_sent = []
    upload_part = HttpArtifactRepository._upload_part

    def counting(credential, local_file, size, start_byte):
        parts_sent.append(credential.part_number)
        return upload_part(credential, local_file, size, start_byte)

    monkeypatch.setattr(HttpArtifactRepository, "_upload_part", staticmethod(counting))
    data = np.random.default_rng(3).bytes((1 << 20) + 12345)
    (tmp_path / "weights.bin").write_bytes(data)
    (tmp_path / "small.txt").write_text("one request")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "weights.bin"), artifact_path="model")
        mlflow.log_artifact(str(tmp_path / "small.txt"))
    assert sorted(parts_sent) == [1, 2, 3, 4, 5], "the large file went in five parts, the small one in one request"
    client = MlflowClient()
    listed = {f.path: f.file_size for f in client.list_artifacts(run.info.run_id, "model")}
    assert listed == {"model/weights.bin": len(data)}
    out = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="model/weights.bin", dst_path=str(tmp_path / "dl"))
    with open(out, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == hashlib.sha256(data).hexdigest()

    import requests

    auth = registry.headers()
    base = f"{registry.url}/api/2.0/mlflow-artifacts"
    root = f"{run.info.experiment_id}/{run.info.run_id}/artifacts"

    def create(name, parts):
        r = requests.post(f"{base}/mpu/create/{root}", json={"path": f"/home/ana/{name}", "num_parts": parts}, headers=auth, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()

    def refused(r, *words):
        assert r.status_code == 400, (r.status_code, r.text)
        body = r.json()
        assert body["error_code"] == "INVALID_PARAMETER_VALUE", body
        for word in words:
            assert word in body["message"], body

    first, second = create("a.bin", 2), create("b.bin", 1)
    etags = []
    for credential, chunk in zip(first["credentials"], [b"first half ", b"second half"]):
        assert credential["url"].startswith(registry.url + "/api/2.0/mlflow-artifacts/mpu/part/")
        r = requests.put(credential["url"], data=chunk, timeout=30)  # no credentials, as the client sends them
        assert r.status_code == 200, r.text
        etags.append(r.headers["ETag"])
    other = requests.put(second["credentials"][0]["url"], data=b"another upload's part", timeout=30).headers["ETag"]
    complete = f"{base}/mpu/complete/{root}"
    # A forged upload id, a part number the upload does not have.
    forged = first["credentials"][0]["url"].replace(first["upload_id"], first["upload_id"][:-4] + "AAAA")
    refused(requests.put(forged, data=b"x", timeout=30), "upload_id")
    refused(requests.put(first["credentials"][0]["url"].rsplit("/", 1)[0] + "/3", data=b"x", timeout=30), "part_number", "3")
    # A part from another upload, a part missing, another file's path.
    parts = [{"part_number": 1, "etag": etags[0]}, {"part_number": 2, "etag": other}]
    refused(requests.post(complete, json={"path": "a.bin", "upload_id": first["upload_id"], "parts": parts}, headers=auth, timeout=30), "parts[1].etag")
    parts = [{"part_number": 1, "etag": etags[0]}]
    refused(requests.post(complete, json={"path": "a.bin", "upload_id": first["upload_id"], "parts": parts}, headers=auth, timeout=30), "1 parts where the upload has 2")
    parts = [{"part_number": 1, "etag": etags[0]}, {"part_number": 2, "etag": etags[1]}]
    refused(requests.post(complete, json={"path": "b.bin", "upload_id": first["upload_id"], "parts": parts}, headers=auth, timeout=30), "path")
    assert {f.path for f in client.list_artifacts(run.info.run_id)} == {"model", "small.txt"}, "nothing was written by a refused completion"
    r = requests.post(complete, json={"path": "a.bin", "upload_id": first["upload_id"], "parts": parts}, headers=auth, timeout=30)
    assert r.status_code == 200, r.text
    got = requests.get(f"{base}/artifacts/{root}/a.bin", headers=auth, timeout=30)
    assert got.content == b"first half second half"
    # Aborting needs the caller's credentials, like completing.
    assert requests.post(f"{base}/mpu/abort/{root}", json={"path": "b.bin", "upload_id": second["upload_id"]}, timeout=30).status_code == 401
    r = requests.post(f"{base}/mpu/abort/{root}", json={"path": "b.bin", "upload_id": second["upload_id"]}, headers=auth, timeout=30)
    assert r.status_code == 200, r.text


def test_every_registry_call_of_the_client(registry):
    client = MlflowClient()
    created = client.create_registered_model("rm-1", tags={"team": "risk"}, description="first")
    assert created.name == "rm-1" and created.description == "first"
    with pytest.raises(MlflowException) as dup:
        client.create_registered_model("rm-1")
    assert dup.value.error_code == "RESOURCE_ALREADY_EXISTS"
    for i in range(2, 6):
        client.create_registered_model(f"rm-{i}")
    client.update_registered_model("rm-1", description="updated")
    assert client.get_registered_model("rm-1").description == "updated"
    client.set_registered_model_tag("rm-1", "stage", "pilot")
    client.delete_registered_model_tag("rm-1", "team")
    assert client.get_registered_model("rm-1").tags == {"stage": "pilot"}

    # Versions from any source the client sends (a run this server never
    # saw, as MLflow's own tests do): recorded with their source.
    fake_run = "0123456789abcdef0123456789abcdef"
    for _ in range(3):
        mv = client.create_model_version("rm-1", f"runs:/{fake_run}/model", fake_run, tags={"k": "v"}, description="d")
    assert mv.version == "3" and mv.status == "READY" and mv.source == f"runs:/{fake_run}/model"
    client.update_model_version("rm-1", "3", description="third")
    assert client.get_model_version("rm-1", "3").description == "third"
    client.set_model_version_tag("rm-1", "3", "quality", "good")
    client.delete_model_version_tag("rm-1", "3", "k")
    assert client.get_model_version("rm-1", "3").tags == {"quality": "good"}

    # Aliases.
    client.set_registered_model_alias("rm-1", "challenger", "2")
    assert client.get_model_version_by_alias("rm-1", "challenger").version == "2"
    assert client.get_registered_model("rm-1").aliases == {"challenger": "2"}
    client.delete_registered_model_alias("rm-1", "challenger")
    with pytest.raises(MlflowException) as missing:
        client.get_model_version_by_alias("rm-1", "challenger")
    assert missing.value.error_code == "INVALID_PARAMETER_VALUE"

    # Searches: filters, order and pages across tokens.
    page = client.search_registered_models("name LIKE 'rm-%'", max_results=2, order_by=["name DESC"])
    names = [m.name for m in page]
    while page.token:
        page = client.search_registered_models("name LIKE 'rm-%'", max_results=2, order_by=["name DESC"], page_token=page.token)
        names += [m.name for m in page]
    assert names == ["rm-5", "rm-4", "rm-3", "rm-2", "rm-1"]
    assert [m.name for m in client.search_registered_models("tags.stage = 'pilot'")] == ["rm-1"]
    assert [m.name for m in client.search_registered_models("name ILIKE 'RM-1'")] == ["rm-1"]
    versions = client.search_model_versions("name = 'rm-1' AND version_number >= 2", order_by=["version_number ASC"])
    assert [v.version for v in versions] == ["2", "3"]
    assert [v.version for v in client.search_model_versions("tags.quality = 'good'")] == ["3"]
    assert len(client.search_model_versions(f"run_id = '{fake_run}'")) == 3
    with pytest.raises(MlflowException) as bad:
        client.search_registered_models("name LIKE")
    assert bad.value.error_code == "INVALID_PARAMETER_VALUE"

    # Rename keeps versions; delete of a version hides it, numbers go on.
    client.rename_registered_model("rm-1", "rm-one")
    assert client.get_model_version("rm-one", "3").description == "third"
    client.delete_model_version("rm-one", "3")
    with pytest.raises(MlflowException) as gone:
        client.get_model_version("rm-one", "3")
    assert gone.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert client.create_model_version("rm-one", "s3://bucket/model", None).version == "4"

    # Delete a registered model: gone to MLflow, name reusable, numbers
    # never reused; the record and the deletion stay in the inventory.
    client.delete_registered_model("rm-one")
    with pytest.raises(MlflowException) as deleted:
        client.get_registered_model("rm-one")
    assert deleted.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert native(registry, "/api/v1/models/rm-one")["state"] == "retired"
    client.create_registered_model("rm-one")
    assert client.search_model_versions("name = 'rm-one'") == []
    assert client.create_model_version("rm-one", "s3://bucket/model2", None).version == "5"
    actions = [e["action"] for e in native(registry, "/api/v1/audit?subject=model/rm-one")["events"]]
    assert "model.retire" in actions and "model.restore" in actions and "model.rename" in actions


def test_stages_are_the_governed_lifecycle(registry):
    client = MlflowClient()
    client.create_registered_model("staged")
    for _ in range(2):
        client.create_model_version("staged", "s3://bucket/m", None)
    staged = client.transition_model_version_stage("staged", "1", "staging")
    assert staged.current_stage == "Staging"
    assert native(registry, "/api/v1/models/staged/versions/1")["state"] == "in_validation"
    latest = client.get_latest_versions("staged", stages=["Staging"])
    assert [v.version for v in latest] == ["1"]
    assert {v.current_stage for v in client.get_latest_versions("staged")} == {"Staging", "None"}
    # Production is promotion: refused by the gate, with its reasons.
    with pytest.raises(MlflowException) as denied:
        client.transition_model_version_stage("staged", "1", "Production")
    assert denied.value.error_code == "PERMISSION_DENIED"
    assert "validator" in denied.value.message
    with pytest.raises(MlflowException) as denied_alias:
        client.set_registered_model_alias("staged", "champion", "1")
    assert denied_alias.value.error_code == "PERMISSION_DENIED"
    archived = client.transition_model_version_stage("staged", "2", "Archived")
    assert archived.current_stage == "Archived"
    with pytest.raises(MlflowException) as back:
        client.transition_model_version_stage("staged", "2", "None")
    assert back.value.error_code == "RESOURCE_CONFLICT"
    with pytest.raises(MlflowException) as bad_stage:
        client.transition_model_version_stage("staged", "1", "Prod")
    assert bad_stage.value.error_code == "INVALID_PARAMETER_VALUE"


def test_register_model_from_runs_and_models_uris_and_copy(registry):
    class Add(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input + 1

    with mlflow.start_run() as run:
        info = mlflow.pyfunc.log_model(name="addmodel", python_model=Add())
    by_run = mlflow.register_model(f"runs:/{run.info.run_id}/addmodel", "adder")
    by_model = mlflow.register_model(info.model_uri, "adder")
    assert (by_run.version, by_model.version) == ("1", "2")
    client = MlflowClient()
    # (the 3.17 client does not read `model_id` back; the source names it)
    assert client.get_model_version("adder", "1").source == f"models:/{info.model_id}"
    copied = client.copy_model_version("models:/adder/1", "adder-copy")
    assert copied.version == "1"
    for uri in ["models:/adder/2", "models:/adder-copy/1"]:
        loaded = mlflow.pyfunc.load_model(uri)
        assert loaded.predict(np.array([1.0, 2.0])).tolist() == [2.0, 3.0]


def test_prompts_are_governed_llm_models(registry):
    template = "Summarise {{ text }} in {{ n }} words.\n" + "Be precise. " * 800  # ~9,600 characters
    registered = mlflow.genai.register_prompt(name="summariser", template=template, commit_message="first")
    assert registered.version == 1
    second = mlflow.genai.register_prompt(name="summariser", template="Summarise {{ text }}.")
    assert second.version == 2
    loaded = mlflow.genai.load_prompt("prompts:/summariser/1")
    assert loaded.template == template
    assert loaded.format(text="the report", n=5).startswith("Summarise the report in 5 words.")
    mlflow.genai.set_prompt_alias("summariser", alias="production-candidate", version=2)
    assert mlflow.genai.load_prompt("prompts:/summariser@production-candidate").template == "Summarise {{ text }}."
    # A prompt is an llm model in the inventory; ordinary model searches
    # leave it out (the client's own filter), prompt searches find it.
    assert native(registry, "/api/v1/models/summariser")["kind"] == "llm"
    assert native(registry, "/api/v1/models/summariser/versions/1")["state"] == "draft"
    assert "summariser" not in [m.name for m in MlflowClient().search_registered_models()]
    assert "summariser" in [p.name for p in mlflow.genai.search_prompts()]


def test_autolog_runs_unchanged(registry):
    mlflow.set_experiment("autolog")
    mlflow.sklearn.autolog(log_input_examples=False, silent=True)
    try:
        model, x = trained()
        with mlflow.start_run() as run:
            LogisticRegression(C=0.5, max_iter=200).fit(x, (x[:, 0] > 0).astype(int))
    finally:
        mlflow.sklearn.autolog(disable=True)
    got = MlflowClient().get_run(run.info.run_id)
    assert got.data.params["C"] == "0.5"
    assert got.data.params["max_iter"] == "200"
    assert 0.9 <= got.data.metrics["training_accuracy_score"] <= 1.0
    assert got.data.tags["estimator_name"] == "LogisticRegression"
    # The model autolog logged loads back.
    [output] = got.outputs.model_outputs
    loaded = mlflow.sklearn.load_model(f"models:/{output.model_id}")
    assert loaded.get_params()["C"] == 0.5


def test_malformed_registry_requests_get_mlflow_errors_never_a_5xx(registry):
    """Wrong types, missing fields, unknown names and versions, NUL and
    control characters, traversal paths, oversized tags, bad stages and
    filters, on the registry, logged-model and artifact routes: each a 4xx
    in MLflow's form, which the client does not retry; nothing half-written."""
    import requests

    base = f"{registry.url}/api/2.0/mlflow"
    auth = {"Authorization": f"Bearer {registry.token}"}
    client = MlflowClient()
    client.create_registered_model("bad-input")
    client.create_model_version("bad-input", "s3://b/m", None)
    nul = "a\u0000b"
    cases = [
        ("POST", "registered-models/create", {}),
        ("POST", "registered-models/create", {"name": nul}),
        ("POST", "registered-models/create", {"name": "a/b"}),
        ("POST", "registered-models/create", {"name": "x" * 300}),
        ("POST", "registered-models/create", {"name": "t1", "tags": [{"key": "k", "value": "v" * 100_001}]}),
        ("POST", "registered-models/create", {"name": "t2", "tags": "not a list"}),
        ("GET", "registered-models/get", {"name": "never-registered"}),
        ("GET", "registered-models/search", {"filter": "name LIKE"}),
        ("GET", "registered-models/search", {"max_results": "0"}),
        ("GET", "registered-models/search", {"max_results": "5000"}),
        ("GET", "registered-models/search", {"page_token": "garbage"}),
        ("GET", "registered-models/search", {"order_by": "name SIDEWAYS"}),
        ("PATCH", "registered-models/update", {"name": "never-registered", "description": "d"}),
        ("POST", "registered-models/rename", {"name": "bad-input"}),
        ("POST", "registered-models/rename", {"name": "bad-input", "new_name": nul}),
        ("DELETE", "registered-models/delete", {"name": "never-registered"}),
        ("POST", "registered-models/set-tag", {"name": "bad-input", "key": "k=v", "value": "v"}),
        ("DELETE", "registered-models/delete-tag", {"name": "bad-input", "key": "never-set"}),
        ("POST", "registered-models/alias", {"name": "bad-input", "alias": "v1", "version": "1"}),
        ("POST", "registered-models/alias", {"name": "bad-input", "alias": "ok", "version": "one"}),
        ("POST", "registered-models/alias", {"name": "bad-input", "alias": "ok", "version": "99"}),
        ("GET", "registered-models/alias", {"name": "bad-input", "alias": "never-set"}),
        ("DELETE", "registered-models/alias", {"name": "bad-input", "alias": "champion"}),
        ("POST", "registered-models/get-latest-versions", {"name": "bad-input", "stages": ["Prod"]}),
        ("POST", "model-versions/create", {"name": "bad-input"}),
        ("POST", "model-versions/create", {"name": "never-registered", "source": "s3://b/m"}),
        ("POST", "model-versions/create", {"name": "bad-input", "source": "models:/m-0000", "model_id": "m-0000"}),
        ("POST", "model-versions/create", {"name": "bad-input", "source": nul}),
        ("GET", "model-versions/get", {"name": "bad-input", "version": "0"}),
        ("GET", "model-versions/get", {"name": "bad-input", "version": "-1"}),
        ("GET", "model-versions/get", {"name": "bad-input", "version": "99"}),
        ("POST", "model-versions/transition-stage", {"name": "bad-input", "version": "1", "stage": "Gone"}),
        ("POST", "model-versions/transition-stage", {"name": "bad-input", "version": "1", "stage": "None", "archive_existing_versions": "maybe"}),
        ("GET", "model-versions/search", {"filter": "version_number > 'x'"}),
        ("GET", "model-versions/search", {"max_results": "200001"}),
        ("DELETE", "model-versions/delete", {"name": "bad-input", "version": "99"}),
        ("POST", "model-versions/set-tag", {"name": "bad-input", "version": "1", "key": "", "value": "v"}),
        ("GET", "model-versions/get-download-uri", {"name": "bad-input"}),
        ("POST", "logged-models", {"experiment_id": "424242"}),
        ("POST", "logged-models", {"experiment_id": "0", "source_run_id": "not-a-run"}),
        ("GET", "logged-models/m-unknown", {}),
        ("PATCH", "logged-models/m-unknown", {"status": "LOGGED_MODEL_READY"}),
        ("PATCH", "logged-models/m-unknown/tags", {"tags": [{"key": "k", "value": "v"}]}),
        ("POST", "logged-models/search", {"experiment_ids": ["0"], "filter": "name ="}),
        ("POST", "logged-models/search", {"experiment_ids": ["0"], "order_by": [{"ascending": True}]}),
        ("POST", "runs/outputs", {"run_id": "0123456789abcdef0123456789abcdef", "models": [{"model_id": "m-x"}]}),
    ]
    for method, path, fields in cases:
        if method == "GET":
            r = requests.get(f"{base}/{path}", params=fields, headers=auth, timeout=30)
        else:
            r = requests.request(method, f"{base}/{path}", json=fields, headers=auth, timeout=30)
        assert 400 <= r.status_code < 500, (method, path, fields, r.status_code, r.text)
        body = r.json()
        assert body["error_code"] and body["message"], (path, body)
    artifacts = f"{registry.url}/api/2.0/mlflow-artifacts"
    for method, path in [
        ("PUT", "artifacts/_manifests/x"),
        ("PUT", "artifacts/0/a/%2e%2e/%2e%2e/b"),
        ("PUT", "artifacts/0/a%5Cb"),
        ("GET", "artifacts/0/never/written"),
        ("DELETE", "artifacts/0/never/written"),
        ("POST", "mpu/create/0/x"),
        ("GET", "no/such/route"),
    ]:
        r = requests.request(method, f"{artifacts}/{path}", data=b"x", headers=auth, timeout=30)
        assert 400 <= r.status_code < 500, (method, path, r.status_code, r.text)
        assert r.json()["error_code"], (path, r.text)
    # Nothing half-written: the model is as it was.
    assert [v.version for v in client.search_model_versions("name = 'bad-input'")] == ["1"]
    assert client.get_registered_model("bad-input").tags == {}
    assert client.get_model_version("bad-input", "1").current_stage == "None"


def test_a_model_logged_with_the_onnx_flavour_is_served(registry):
    """Train and log with MLflow, serve with modelops: the ONNX flavour of
    a registered version answers the Open Inference Protocol as
    onnxruntime does; a Python-only flavour is refused with the reason."""
    import onnxruntime
    import requests
    from skl2onnx import to_onnx

    model, x = trained()
    x = x.astype(np.float32)
    onnx_model = to_onnx(model, x[:1], options={id(model): {"zipmap": False}})
    with mlflow.start_run():
        mlflow.onnx.log_model(onnx_model, name="model", registered_model_name="onnx-scorer")
    body = {"inputs": [{"name": "X", "shape": list(x.shape), "datatype": "FP32", "data": x.ravel().tolist()}]}
    r = requests.post(f"{registry.url}/v2/models/onnx-scorer/versions/1/infer", json=body, headers=registry.headers(), timeout=30)
    assert r.status_code == 200, r.text
    outputs = {o["name"]: np.asarray(o["data"]).reshape(o["shape"]) for o in r.json()["outputs"]}
    session = onnxruntime.InferenceSession(onnx_model.SerializeToString())
    label, proba = session.run(None, {"X": x})
    np.testing.assert_array_equal(outputs["label"].ravel(), label.ravel())
    np.testing.assert_allclose(outputs["probabilities"], proba, rtol=1e-5, atol=1e-5)
    # credit-scorer was logged with the sklearn flavour only.
    r = requests.post(f"{registry.url}/v2/models/credit-scorer/versions/1/infer", json=body, headers=registry.headers(), timeout=30)
    assert r.status_code == 409, r.text
    assert "onnx" in r.json()["error"] and "sklearn" in r.json()["error"], r.text
