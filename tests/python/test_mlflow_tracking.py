"""The unmodified `mlflow` client (pinned in requirements.txt) against
modelops: experiments, runs, params, metrics (NaN and infinities too),
tags, metric history, search with filter strings, order and pages, and
MLflow's error codes. Runs the real binary with a fresh data directory."""

import math
import os
import subprocess

import pytest

from conftest import start_server, stop_server

import mlflow
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    """A server of its own, the client pointed at it with the admin's token
    (MLFLOW_TRACKING_TOKEN), and no retries: a 5xx fails the test at once
    instead of being retried for minutes."""
    proc, server = start_server(tmp_path_factory.mktemp("mlflow-data"))
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


def error_code(excinfo):
    return excinfo.value.error_code


def test_a_training_script_logs_a_run_as_it_would_to_mlflow(tracking):
    experiment = mlflow.set_experiment("churn")  # get-by-name (404) → create → get
    assert mlflow.set_experiment("churn").experiment_id == experiment.experiment_id
    with mlflow.start_run(run_name="baseline") as run:
        mlflow.log_param("alpha", 0.5)
        mlflow.log_params({"l1_ratio": 1, "solver": "lbfgs"})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"accuracy": 0.9, "undefined": float("nan"), "overflow": float("inf"), "underflow": float("-inf")})
        mlflow.set_tag("team", "risk")
        mlflow.set_tags({"dataset": "loans-2026"})
    client = MlflowClient()
    got = client.get_run(run.info.run_id)
    assert got.info.status == "FINISHED"
    assert got.info.end_time >= got.info.start_time > 0
    assert got.info.run_name == "baseline"
    assert got.info.experiment_id == experiment.experiment_id
    assert got.info.user_id == "admin", "the run belongs to whom the token names"
    assert got.info.artifact_uri == f"mlflow-artifacts:/{experiment.experiment_id}/{run.info.run_id}/artifacts"
    assert got.data.params == {"alpha": "0.5", "l1_ratio": "1", "solver": "lbfgs"}
    assert got.data.metrics["loss"] == pytest.approx(0.2)
    assert got.data.metrics["accuracy"] == 0.9
    assert math.isnan(got.data.metrics["undefined"])
    assert got.data.metrics["overflow"] == math.inf and got.data.metrics["underflow"] == -math.inf
    assert got.data.tags["team"] == "risk" and got.data.tags["dataset"] == "loans-2026"
    assert got.data.tags["mlflow.runName"] == "baseline"
    assert "mlflow.source.name" in got.data.tags, "the client's own tags are kept"
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(s, pytest.approx(1.0 / (s + 1))) for s in range(5)]
    assert all(m.timestamp > 0 for m in history)


def test_params_never_change_and_bad_input_gets_mlflow_codes(tracking):
    client = MlflowClient()
    experiment_id = client.create_experiment("params-immutable")
    run = client.create_run(experiment_id)
    client.log_param(run.info.run_id, "alpha", "0.5")
    client.log_param(run.info.run_id, "alpha", "0.5")  # the same value again is fine
    with pytest.raises(MlflowException) as e:
        client.log_param(run.info.run_id, "alpha", "0.7")
    assert error_code(e) == "INVALID_PARAMETER_VALUE"
    assert "alpha" in str(e.value)
    with pytest.raises(MlflowException) as e:
        client.get_run("0123456789abcdef0123456789abcdef")
    assert error_code(e) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as e:
        client.create_experiment("params-immutable")
    assert error_code(e) == "RESOURCE_ALREADY_EXISTS"
    assert client.get_experiment_by_name("no-such-experiment") is None
    with pytest.raises(MlflowException) as e:
        client.search_runs([experiment_id], "metrics.loss < 'low'")
    assert error_code(e) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as e:
        client.search_runs([experiment_id], "params.alpha = '1' OR params.alpha = '2'")
    assert error_code(e) == "INVALID_PARAMETER_VALUE" and "OR" in str(e.value)


def test_search_runs_filters_orders_and_pages(tracking):
    client = MlflowClient()
    experiment_id = client.create_experiment("search")
    ids = {}
    for name, loss, alpha in [("a", 0.3, "0.1"), ("b", 0.1, "0.5"), ("c", 0.2, "0.5"), ("d", 0.4, "0.9")]:
        run = client.create_run(experiment_id, run_name=name, tags={"family": "gbm" if name in "ab" else "linear"})
        client.log_batch(run.info.run_id, metrics=[mlflow.entities.Metric("loss", loss, 1, 0)], params=[mlflow.entities.Param("alpha", alpha)])
        client.set_terminated(run.info.run_id)
        ids[name] = run.info.run_id
    names = lambda runs: [r.info.run_name for r in runs]  # noqa: E731
    assert names(client.search_runs([experiment_id], "metrics.loss < 0.25", order_by=["metrics.loss ASC"])) == ["b", "c"]
    assert sorted(names(client.search_runs([experiment_id], "params.alpha = '0.5'"))) == ["b", "c"]
    assert sorted(names(client.search_runs([experiment_id], "tags.family = 'gbm' and metrics.loss >= 0.2"))) == ["a"]
    assert names(client.search_runs([experiment_id], "attributes.run_name ILIKE 'D%'")) == ["d"]
    assert names(client.search_runs([experiment_id], "tags.`mlflow.runName` = 'c'")) == ["c"]
    assert names(client.search_runs([experiment_id], "attributes.status = 'FINISHED'", order_by=["metrics.loss DESC"])) == ["d", "a", "c", "b"]
    # Pages of two, in order, then the end.
    first = client.search_runs([experiment_id], order_by=["params.alpha ASC", "metrics.loss ASC"], max_results=2)
    assert names(first) == ["a", "b"] and first.token
    second = client.search_runs([experiment_id], order_by=["params.alpha ASC", "metrics.loss ASC"], max_results=2, page_token=first.token)
    assert names(second) == ["c", "d"] and not second.token
    # Deleted runs leave the default view and come back.
    client.delete_run(ids["d"])
    assert "d" not in names(client.search_runs([experiment_id]))
    assert "d" in names(client.search_runs([experiment_id], run_view_type=ViewType.ALL))
    assert names(client.search_runs([experiment_id], run_view_type=ViewType.DELETED_ONLY)) == ["d"]
    client.restore_run(ids["d"])
    assert len(client.search_runs([experiment_id])) == 4


def test_experiments_rename_delete_restore_and_the_default_one(tracking):
    client = MlflowClient()
    default = client.get_experiment("0")
    assert default.name == "Default" and default.lifecycle_stage == "active"
    experiment_id = client.create_experiment("to-rename", tags={"owner": "risk"})
    client.rename_experiment(experiment_id, "renamed")
    got = client.get_experiment_by_name("renamed")
    assert got.experiment_id == experiment_id and got.tags == {"owner": "risk"}
    client.set_experiment_tag(experiment_id, "stage", "dev")
    assert client.get_experiment(experiment_id).tags == {"owner": "risk", "stage": "dev"}
    client.delete_experiment(experiment_id)
    with pytest.raises(MlflowException, match="deleted"):
        mlflow.set_experiment("renamed")
    assert experiment_id not in [e.experiment_id for e in client.search_experiments()]
    assert experiment_id in [e.experiment_id for e in client.search_experiments(view_type=ViewType.DELETED_ONLY)]
    client.restore_experiment(experiment_id)
    found = client.search_experiments(filter_string="name LIKE 'renam%'")
    assert [e.experiment_id for e in found] == [experiment_id]
    # A run started with no experiment set goes to the default one.
    script = (
        "import mlflow\n"
        "with mlflow.start_run() as run:\n"
        "    mlflow.log_metric('m', 1.0)\n"
        "print(run.info.experiment_id)\n"
    )
    # (`set_experiment` above exported its choice to child processes.)
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")}
    out = subprocess.run([os.sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "0"


def test_a_viewer_reads_but_may_not_record(tracking):
    tracking.cli("users", "create", "vera", "--role", "viewer")
    token = tracking.cli("tokens", "create", "--user", "vera", "--name", "ci").stdout.strip().split()[-1]
    client = MlflowClient()
    experiment_id = client.create_experiment("viewer-can-read")
    os.environ["MLFLOW_TRACKING_TOKEN"] = token
    try:
        assert client.get_experiment(experiment_id).name == "viewer-can-read"
        with pytest.raises(MlflowException) as e:
            client.create_run(experiment_id)
        assert error_code(e) == "PERMISSION_DENIED"
        assert "role" in str(e.value)
    finally:
        os.environ["MLFLOW_TRACKING_TOKEN"] = tracking.token
    os.environ["MLFLOW_TRACKING_TOKEN"] = "mdo_000000000000_not-a-real-secret"
    try:
        with pytest.raises(MlflowException) as e:
            client.get_experiment(experiment_id)
        assert error_code(e) == "UNAUTHENTICATED"
    finally:
        os.environ["MLFLOW_TRACKING_TOKEN"] = tracking.token


def test_malformed_requests_get_mlflow_errors_never_a_5xx(tracking):
    """What a buggy or hostile client sends: wrong types, missing fields,
    unknown ids, NUL characters, broken JSON, unknown routes. Each answer is
    a 4xx in MLflow's form ({"error_code", "message"}), which the client
    does not retry."""
    import requests

    base = f"{tracking.url}/api/2.0/mlflow"
    auth = {"Authorization": f"Bearer {tracking.token}"}
    run_id = MlflowClient().create_run("0").info.run_id
    nul = "a\u0000b"
    cases = [
        ("POST", "experiments/create", {}),
        ("POST", "experiments/create", {"name": nul}),
        ("POST", "experiments/create", {"name": "x" * 600}),
        ("POST", "experiments/create", {"name": "t", "tags": "not a list"}),
        ("GET", "experiments/get", {"experiment_id": "abc"}),
        ("GET", "experiments/get", {"experiment_id": "99999"}),
        ("GET", "experiments/get-by-name", {"experiment_name": nul}),
        ("POST", "experiments/search", {"max_results": 0}),
        ("POST", "experiments/search", {"max_results": "many"}),
        ("POST", "experiments/search", {"page_token": "garbage"}),
        ("POST", "experiments/search", {"filter": "name = "}),
        ("POST", "experiments/search", {"view_type": "SOME"}),
        ("POST", "experiments/update", {"experiment_id": "0"}),
        ("POST", "experiments/delete", {"experiment_id": "0"}),
        ("POST", "runs/create", {"experiment_id": "424242"}),
        ("POST", "runs/create", {"experiment_id": "0", "start_time": "soon"}),
        ("POST", "runs/create", {"experiment_id": "0", "run_name": nul}),
        ("GET", "runs/get", {"run_id": "../../etc/passwd"}),
        ("POST", "runs/update", {"run_id": run_id, "status": "SLEEPING"}),
        ("POST", "runs/log-metric", {"run_id": run_id, "key": "m", "value": "high", "timestamp": 1}),
        ("POST", "runs/log-metric", {"run_id": run_id, "key": "m", "value": 1.0}),
        ("POST", "runs/log-metric", {"run_id": run_id, "key": nul, "value": 1.0, "timestamp": 1}),
        ("POST", "runs/log-parameter", {"run_id": run_id, "key": "p", "value": nul}),
        ("POST", "runs/log-batch", {"run_id": run_id, "metrics": [{"key": "m", "value": 1, "timestamp": 1}] * 1001}),
        ("POST", "runs/log-batch", {"run_id": run_id, "params": [{"key": f"p{i}", "value": "1"} for i in range(101)]}),
        ("POST", "runs/log-batch", {"run_id": run_id, "metrics": [5]}),
        ("POST", "runs/set-tag", {"run_id": run_id, "key": "../x", "value": "v"}),
        ("POST", "runs/delete-tag", {"run_id": run_id, "key": "never-set"}),
        ("POST", "runs/search", {"experiment_ids": ["0"], "filter": "metrics.m > 'x'"}),
        ("POST", "runs/search", {"experiment_ids": ["0"], "order_by": ["metrics.m SIDEWAYS"]}),
        ("POST", "runs/search", {"experiment_ids": ["x"]}),
        ("GET", "metrics/get-history", {"run_id": run_id, "metric_key": nul}),
        ("GET", "metrics/get-history", {"run_id": run_id}),
        ("POST", "no/such/route", {}),
    ]
    for method, path, fields in cases:
        if method == "GET":
            r = requests.get(f"{base}/{path}", params=fields, headers=auth, timeout=30)
        else:
            r = requests.request(method, f"{base}/{path}", json=fields, headers=auth, timeout=30)
        assert 400 <= r.status_code < 500, (method, path, fields, r.status_code, r.text)
        body = r.json()
        assert body["error_code"] and body["message"], (path, body)
    r = requests.post(f"{base}/runs/log-batch", data=b"{not json", headers={**auth, "Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 400 and r.json()["error_code"] == "BAD_REQUEST"
    # The run is as it was: nothing half-written.
    got = MlflowClient().get_run(run_id)
    assert got.data.metrics == {} and got.data.params == {}


def test_the_datasets_a_run_read_are_recorded_with_their_context(tracking):
    """`mlflow.log_input` and autolog's training datasets: name, digest,
    source, schema and profile as the client computed them, the context
    tag, each dataset once per run; bad input named, never a 5xx."""
    import json

    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    mlflow.set_experiment("datasets")
    loans = pd.DataFrame({"income": [52000.0, 61000.0, 38000.0], "region": ["north", "south", "north"]})
    training = mlflow.data.from_pandas(loans, source="s3://bank/loans-2026.parquet", name="loans-2026")
    holdout = mlflow.data.from_pandas(loans.head(1), name="holdout")
    with mlflow.start_run() as run:
        mlflow.log_input(training, context="training")
        mlflow.log_input(training, context="training")  # again: kept once
        mlflow.log_input(holdout, context="evaluation", tags={"owner": "risk"})
    got = MlflowClient().get_run(run.info.run_id).inputs.dataset_inputs
    assert [(i.dataset.name, i.dataset.digest) for i in got] == [("loans-2026", training.digest), ("holdout", holdout.digest)]
    assert {t.key: t.value for t in got[0].tags} == {"mlflow.data.context": "training"}
    assert {t.key: t.value for t in got[1].tags} == {"mlflow.data.context": "evaluation", "owner": "risk"}
    assert got[0].dataset.source_type == training.source._get_source_type()
    assert json.loads(got[0].dataset.source) == json.loads(training.source.to_json())
    assert json.loads(got[0].dataset.schema) == json.loads(training.to_dict()["schema"])
    assert json.loads(got[0].dataset.profile) == {"num_rows": 3, "num_elements": 6}
    # search_runs returns them too.
    [found] = MlflowClient().search_runs([run.info.experiment_id], f"attributes.run_id = '{run.info.run_id}'")
    assert [i.dataset.name for i in found.inputs.dataset_inputs] == ["loans-2026", "holdout"]

    # Autolog records the training set without a warning.
    mlflow.sklearn.autolog(log_input_examples=False, log_models=False)
    try:
        rng = np.random.default_rng(1)
        x = rng.normal(size=(50, 3))
        with mlflow.start_run() as auto:
            LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    finally:
        mlflow.sklearn.autolog(disable=True)
    [auto_input] = MlflowClient().get_run(auto.info.run_id).inputs.dataset_inputs
    assert {t.key: t.value for t in auto_input.tags}["mlflow.data.context"] == "train"

    client = MlflowClient()
    # A logged model the run used (mlflow.evaluate on a model, metrics logged for one).
    from mlflow.entities import LoggedModelInput

    model = client.create_logged_model(run.info.experiment_id, name="scorer")
    client.log_inputs(run.info.run_id, models=[LoggedModelInput(model.model_id)])
    assert [m.model_id for m in client.get_run(run.info.run_id).inputs.model_inputs] == [model.model_id]
    with pytest.raises(MlflowException) as unknown:
        client.log_inputs(run.info.run_id, models=[LoggedModelInput("m-00000000000000000000000000000000")])
    assert error_code(unknown) == "RESOURCE_DOES_NOT_EXIST"
    too_long = mlflow.data.from_pandas(loans, name="x" * 501)
    with pytest.raises(MlflowException) as refused:
        client.log_inputs(run.info.run_id, [mlflow.entities.DatasetInput(too_long._to_mlflow_entity(), [])])
    assert error_code(refused) == "INVALID_PARAMETER_VALUE" and "datasets[0].dataset.name" in refused.value.message
    with pytest.raises(MlflowException) as missing:
        client.log_inputs("0" * 32, [mlflow.entities.DatasetInput(training._to_mlflow_entity(), [])])
    assert error_code(missing) == "RESOURCE_DOES_NOT_EXIST"
    # A deleted run takes no more inputs, as MLflow's server answers.
    client.delete_run(run.info.run_id)
    with pytest.raises(MlflowException) as deleted:
        client.log_inputs(run.info.run_id, [mlflow.entities.DatasetInput(holdout._to_mlflow_entity(), [])])
    assert error_code(deleted) == "INVALID_PARAMETER_VALUE"
    client.restore_run(run.info.run_id)
    assert len(client.get_run(run.info.run_id).inputs.dataset_inputs) == 2, "nothing half-written"
