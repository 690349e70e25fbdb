"""Live monitoring end to end, as an SRE meets it: the real binary, a
deployment fed first ordinary then shifted traffic, a monitor over time
windows, the drift the server computes compared with `modelops drift` on the
exported Parquet of the same window, late labels changing the performance of
their window only, an alert whose webhook a local receiver checks (HMAC
signature), a canary rolled back by an alert, and the state surviving a
restart.

The model is a rule set (CEL) with inputs `x`, `y` and the output `score`,
so each call's answer is known: `score = x * 0.1` (0 for negative x); the
"broken" version adds 0.5.
"""

import hashlib
import hmac
import json
import os
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest
import requests

from conftest import modelops_bin, start_server, stop_server

MODEL = """
kind: rules
inputs: [{name: x, type: double}, {name: y, type: double}]
outputs: [{name: score, type: double}]
mode: first_match
rules:
  - {name: negative, when: x < 0.0, then: {score: "0.0"}}
default: {score: "x * 0.1%s"}
"""

SECRET = "webhook-secret-for-tests"
WINDOW_S = 4


class Receiver(BaseHTTPRequestHandler):
    """A webhook receiver recording every POST; fails the first `fail_first` calls."""

    calls = []
    fail_first = 0

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.calls.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
        status = 500 if len(Receiver.calls) <= Receiver.fail_first else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture(scope="module")
def receiver():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/hook"
    httpd.shutdown()


def training(n=2000, seed=7, shift=0.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(1.0 + shift, 1.0, n)
    y = rng.normal(5.0, 2.0, n)
    score = np.where(x < 0.0, 0.0, x * 0.1)
    return pd.DataFrame({"x": x, "y": y, "score": score})


@pytest.fixture(scope="module")
def s(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("watch-data")
    env = dict(os.environ, WEBHOOK_SECRET=SECRET)
    proc, server = start_server(data_dir, env=env)
    server.proc = proc
    server.data_dir = data_dir
    server.start_env = env
    server.cli("users", "create", "vic", "--role", "validator")
    vic = json.loads(server.cli("tokens", "create", "--name", "t", "--user", "vic", "--json").stdout)
    server.vic_env = dict(server.env, MODELOPS_TOKEN=vic["token"])
    server.cli("models", "create", "churn", "--kind", "rules", "--owner", "admin", "--risk-tier", "low")
    server.workdir = data_dir
    train = data_dir / "train.parquet"
    training().to_parquet(train)
    server.train = train
    yield server
    stop_server(server.proc)


def approved(s, suffix="", reference=True):
    path = s.workdir / "rules.yaml"
    path.write_text(MODEL % suffix)
    card = s.workdir / "card.json"
    card.write_text(json.dumps({"intended_use": "monitoring tests"}))
    args = ["versions", "push", "churn", path, "--card", card, "--json"]
    if reference:
        args += ["--reference", s.train]
    v = json.loads(s.cli(*args).stdout)["version"]
    s.cli("versions", "submit", "churn", v)
    out = subprocess.run([modelops_bin(), "versions", "approve", "churn", str(v), "--comment", "ok"], capture_output=True, text=True, env=s.vic_env)
    assert out.returncode == 0, out.stderr
    return v


def send(s, deployment, frame, threads=4):
    """One call per row; returns the request ids in order."""
    ids = []
    session = requests.Session()
    for i, row in enumerate(frame.itertuples()):
        rid = f"{deployment}-{time.time_ns()}-{i}"
        r = session.post(
            f"{s.url}/api/v1/deployments/{deployment}/predict",
            json={"rows": [{c: float(getattr(row, c)) for c in frame.columns}]},
            headers=dict(s.headers(), **{"x-request-id": rid}),
        )
        assert r.status_code == 200, r.text
        ids.append(rid)
    return ids


def results(s, deployment, monitor):
    return json.loads(s.cli("monitor", "show", deployment, monitor, "--format", "json").stdout)["results"]


def wait_for(predicate, timeout=40, every=0.5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out")


def wait_window_boundary():
    """Sleeps to just after a window boundary, so a burst of calls lands in one window."""
    now = time.time()
    time.sleep(WINDOW_S - (now % WINDOW_S) + 0.05)


def closed_window_with(s, deployment, monitor, rows):
    def find():
        for w in results(s, deployment, monitor):
            if w["closed"] and w["rows"] == rows:
                return w
        return None

    return wait_for(find)


def test_drift_appears_on_shifted_traffic_equals_offline_drift_and_fires_a_signed_webhook(s, receiver, tmp_path):
    v = approved(s)
    s.cli("deploy", "create", "churn-live", "--model", "churn", "--version", v)
    # A reference is immutable: a second one is refused.
    again = s.cli("reference", "set", "churn", v, s.train, check=False)
    assert again.returncode != 0 and "immutable" in again.stderr
    s.cli(
        "monitor", "create", "churn-live", "drift", "--every", f"{WINDOW_S}s", "--min-rows", "50",
        "--prediction", "score",
        "--alert", "shifted=drift.dataset_drift",
        "--webhook", receiver, "--secret-env", "WEBHOOK_SECRET", "--degrade", "--retrain",
    )
    listed = json.loads(s.cli("monitor", "list", "churn-live", "--json").stdout)["monitors"]
    assert [m["name"] for m in listed] == ["drift"]

    wait_window_boundary()
    calm_ids = send(s, "churn-live", training(n=300, seed=1)[["x", "y"]])
    calm = closed_window_with(s, "churn-live", "drift", 300)
    assert calm["result"]["drift"]["dataset_drift"] is False, calm
    assert {c["column"] for c in calm["result"]["drift"]["columns"]} == {"x", "y", "score"}

    wait_window_boundary()
    send(s, "churn-live", training(n=400, seed=2, shift=1.5)[["x", "y"]])
    shifted = closed_window_with(s, "churn-live", "drift", 400)
    drift = shifted["result"]["drift"]
    assert drift["dataset_drift"] is True
    detected = {c["column"] for c in drift["columns"] if c["drift_detected"]}
    assert {"x", "score"} <= detected and "y" not in detected

    # The same window exported and compared offline: the same numbers.
    window = tmp_path / "window.parquet"
    s.cli("predictions", "export", "churn-live", "--since", shifted["start"], "--until", shifted["end"], "-o", window)
    assert len(pd.read_parquet(window)) == 400
    profile = tmp_path / "reference.json"
    s.cli("profile", "fit", s.train, "-o", profile)
    offline = json.loads(s.cli("drift", "--profile", profile, "--current", window, "--json").stdout)
    online = {c["column"]: c for c in drift["columns"]}
    for c in offline["columns"]:
        mine = online[c["column"]]
        assert mine["method"] == c["method"]
        assert mine["drift_detected"] == c["drift_detected"]
        assert mine["score"] == pytest.approx(c["score"], rel=1e-12, abs=1e-15), c["column"]
    assert drift["share_of_drifted_columns"] == offline["share_of_drifted_columns"]

    # The alert fired once, with a webhook signed with the shared secret.
    def fired():
        alerts = json.loads(s.cli("alerts", "list", "--deployment", "churn-live", "--json").stdout)["alerts"]
        return alerts if alerts and alerts[0]["detail"].get("deliveries") else None

    alerts = wait_for(fired)
    assert len(alerts) == 1 and alerts[0]["state"] == "firing" and alerts[0]["rule"] == "shifted"
    hook = wait_for(lambda: [c for c in Receiver.calls if c["headers"].get("x-modelops-event") == "alert.fire"])
    body = hook[0]["body"]
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hook[0]["headers"]["x-modelops-signature"] == expected
    payload = json.loads(body)
    assert payload["deployment"] == "churn-live" and payload["rule"] == "shifted" and payload["values"]["drift"]["dataset_drift"] is True
    # Degraded and a retraining request, both on record; the firing in the audit chain.
    requests_ = json.loads(s.cli("alerts", "retrain", "--model", "churn", "--json").stdout)["requests"]
    assert len(requests_) == 1 and requests_[0]["alert"] == alerts[0]["id"]
    audit = json.loads(s.cli("audit", "log", "--action", "alert.fire", "--json").stdout)
    assert len(audit["events"]) == 1

    # Prometheus sees the same window (parsed by the official client), the
    # alert firing and the deployment degraded: what Grafana charts.
    from prometheus_client.parser import text_string_to_metric_families
    text = requests.get(f"{s.url}/metrics", headers=s.headers()).text
    samples = {(m.name, tuple(sorted(x.labels.items()))): x.value for m in text_string_to_metric_families(text) for x in m.samples}
    base = (("deployment", "churn-live"), ("monitor", "drift"), ("version", str(v)))
    score_x = samples[("modelops_monitor_drift_score", tuple(sorted(base + (("feature", "x"), ("method", online["x"]["method"])))))]
    assert score_x == pytest.approx(online["x"]["score"], rel=1e-12)
    assert samples[("modelops_monitor_drift_detected", tuple(sorted(base + (("feature", "x"),))))] == 1
    assert samples[("modelops_monitor_dataset_drift", base)] == 1
    assert samples[("modelops_alerts_firing", (("deployment", "churn-live"), ("monitor", "drift"), ("rule", "shifted")))] == 1
    assert samples[("modelops_deployment_degraded", (("deployment", "churn-live"),))] == 1

    # Late labels for the calm window: its performance appears, the shifted
    # window's stays "no labels".
    labels = tmp_path / "labels.json"
    frame = training(n=300, seed=1)
    truth = np.where(frame.x < 0, 0.0, frame.x * 0.1) + 0.01
    labels.write_text(json.dumps([{"request_id": rid, "label": float(t)} for rid, t in zip(calm_ids, truth)] + [{"request_id": "nobody", "label": 1.0}]))
    out = json.loads(s.cli("labels", "churn-live", labels, "--json").stdout)
    assert out["joined"] == 300 and out["unknown"] == 1 and out["unknown_request_ids"] == ["nobody"]

    def relabelled():
        for w in results(s, "churn-live", "drift"):
            if w["start"] == calm["start"] and w["result"].get("labeled_rows") == 300:
                return w
        return None

    calm_again = wait_for(relabelled)
    assert calm_again["result"]["performance"]["metrics"]["mae"] == pytest.approx(0.01, abs=1e-9)
    shifted_again = [w for w in results(s, "churn-live", "drift") if w["start"] == shifted["start"]][0]
    assert "no labels" in shifted_again["result"]["performance"]["not_computed"]

    # A label of the wrong type is refused, naming it.
    bad = requests.post(f"{s.url}/api/v1/deployments/churn-live/labels", json={"labels": [{"request_id": "a", "label": 1}, {"request_id": "b", "label": "yes"}]}, headers=s.headers())
    assert bad.status_code == 400 and "labels[1].label" in bad.text

    # The HTML report renders the windows.
    report = tmp_path / "report.html"
    s.cli("monitor", "show", "churn-live", "drift", "--format", "html", "-o", report)
    assert "<svg" in report.read_text() and "share of drifted columns" in report.read_text()

    # A restart loses nothing: the monitor, its windows and the alert's state.
    before = results(s, "churn-live", "drift")
    stop_server(s.proc)
    proc, again = start_server(s.data_dir, env=s.start_env)
    s.proc, s.url, s.env, s.token = proc, again.url, again.env, again.token
    s.vic_env = dict(s.vic_env, MODELOPS_SERVER=again.url)
    after = results(s, "churn-live", "drift")
    assert [(w["start"], w["rows"], w["closed"]) for w in after if w["closed"]] == [(w["start"], w["rows"], w["closed"]) for w in before if w["closed"]]
    wait_window_boundary()
    send(s, "churn-live", training(n=200, seed=3, shift=1.5)[["x", "y"]])
    closed_window_with(s, "churn-live", "drift", 200)
    time.sleep(1.5)
    # Still firing from before the restart: not fired a second time.
    alerts = json.loads(s.cli("alerts", "list", "--deployment", "churn-live", "--json").stdout)["alerts"]
    assert len(alerts) == 1 and alerts[0]["state"] == "firing"


def test_bad_monitors_are_refused_naming_the_field(s):
    v = approved(s, reference=False)
    s.cli("deploy", "create", "churn-bad", "--model", "churn", "--version", v)
    url = f"{s.url}/api/v1/deployments/churn-bad/monitors"
    cases = [
        ({"name": "m", "window": {"every": "1h"}, "features": ["x", "age"]}, "features[1]"),
        ({"name": "m", "window": {"every": "1h", "rows": 5}}, "window"),
        ({"name": "m", "window": {"every": "1ms"}}, "window.every"),
        ({"name": "m", "window": {"rows": 10}, "alerts": [{"name": "a", "condition": "drift.sharez > 1"}]}, "alerts[0].condition"),
        ({"name": "m", "window": {"rows": 10}, "alerts": [{"name": "a", "condition": "true", "actions": [{"kind": "webhook"}]}]}, "alerts[0].actions[0].url"),
        ({"name": "m", "window": {"rows": 10}, "performance": {"prediction": "x"}}, "performance.prediction"),
        ({"name": "M!", "window": {"rows": 10}}, "name"),
        ({"name": "m", "window": {"rows": 10}, "drift": {"method": "magic"}}, "drift.method"),
    ]
    for body, field in cases:
        r = requests.post(url, json=body, headers=s.headers())
        assert r.status_code == 400, (body, r.text)
        assert field in r.text, (field, r.text)
    # A version without a reference: windows say why drift is not computed.
    s.cli("monitor", "create", "churn-bad", "count", "--rows", "40", "--min-rows", "10")
    send(s, "churn-bad", training(n=40, seed=4)[["x", "y"]])
    w = wait_for(lambda: [w for w in results(s, "churn-bad", "count") if w["closed"]])
    assert "no reference profile" in w[0]["result"]["drift"]["not_computed"]
    # Too few rows: not computed, not a verdict.
    s.cli("monitor", "create", "churn-bad", "tiny", "--rows", "5", "--min-rows", "10")
    send(s, "churn-bad", training(n=5, seed=5)[["x", "y"]])
    w = wait_for(lambda: [w for w in results(s, "churn-bad", "tiny") if w["closed"]])
    assert "fewer than the monitor's min_rows" in w[0]["result"]["not_computed"]
    assert s.cli("monitor", "rm", "churn-bad", "tiny").returncode == 0
    assert requests.get(f"{url}/tiny", headers=s.headers()).status_code == 404


def test_an_alert_rolls_back_a_drifting_canary(s, receiver):
    stable = approved(s)
    broken = approved(s, suffix=" + 0.5")
    s.cli("deploy", "create", "churn-canary", "--model", "churn", "--version", stable)
    s.cli(
        # K-S at p < 0.001: a stable version's window of 100 rows never trips by chance.
        "monitor", "create", "churn-canary", "score", "--rows", "100", "--min-rows", "50", "--features", "score", "--method", "ks", "--threshold", "0.001",
        "--alert", "score-moved=drift.detected['score']", "--rollback-canary",
    )
    # A canary held long enough that only the alert can end it.
    s.cli("deploy", "set", "churn-canary", "--canary", broken, "--steps", "50,100", "--hold-requests", "100000", "--condition", "false")
    d = json.loads(s.cli("deploy", "show", "churn-canary", "--json").stdout)
    assert d["state"] == "progressing"
    send(s, "churn-canary", training(n=400, seed=6)[["x", "y"]])

    def rolled_back():
        d = json.loads(s.cli("deploy", "show", "churn-canary", "--json").stdout)
        return d if d["state"] == "rolled_back" else None

    d = wait_for(rolled_back)
    assert [r["version"] for r in d["routes"]] == [stable]
    assert "score-moved" in d["reason"]
    alerts = json.loads(s.cli("alerts", "list", "--deployment", "churn-canary", "--json").stdout)["alerts"]
    assert [a["version"] for a in alerts] == [broken], alerts
    assert alerts[0]["detail"]["actions"][0]["outcome"]["rolled_back"] is True


CLASSIFIER = """
kind: rules
inputs: [{name: x, type: double}]
outputs: [{name: label, type: int}, {name: proba, type: double}]
mode: first_match
rules:
  - {name: positive, when: x >= 0.5, then: {label: "1", proba: "x"}}
default: {label: "0", proba: "x"}
"""


def test_label_free_estimate_of_a_window_equals_the_offline_estimate(s, tmp_path):
    """CBPE per window: the server's estimate over a closed window equals
    `modelops estimate` (itself checked against nannyml) on the exported
    window, with the estimator fitted on the same reference."""
    s.cli("models", "create", "approve-loan", "--kind", "rules", "--owner", "admin", "--risk-tier", "low")
    rng = np.random.default_rng(11)
    x = rng.beta(2, 2, 3000)
    reference = pd.DataFrame({"x": x, "proba": x, "label": (x >= 0.5).astype("int64"), "y_true": (rng.random(3000) < x).astype("int64")})
    ref_path = tmp_path / "reference.parquet"
    reference.to_parquet(ref_path)
    path = tmp_path / "classifier.yaml"
    path.write_text(CLASSIFIER)
    card = tmp_path / "card.json"
    card.write_text(json.dumps({"intended_use": "estimate tests"}))
    v = json.loads(s.cli("versions", "push", "approve-loan", path, "--card", card, "--reference", ref_path,
                         "--label", "y_true", "--score", "proba", "--prediction", "label", "--json").stdout)["version"]
    assert json.loads(s.cli("reference", "show", "approve-loan", v, "--json").stdout)["estimator"] is True
    s.cli("versions", "submit", "approve-loan", v)
    out = subprocess.run([modelops_bin(), "versions", "approve", "approve-loan", str(v), "--comment", "ok"], capture_output=True, text=True, env=s.vic_env)
    assert out.returncode == 0, out.stderr
    s.cli("deploy", "create", "loans", "--model", "approve-loan", "--version", v)
    s.cli("monitor", "create", "loans", "quality", "--every", f"{WINDOW_S}s", "--features", "x,proba,label",
          "--prediction", "label", "--score", "proba")
    wait_window_boundary()
    # The current data drifted towards confident scores: the estimate moves.
    current = pd.DataFrame({"x": rng.beta(0.6, 0.6, 500)})
    send(s, "loans", current)
    w = closed_window_with(s, "loans", "quality", 500)
    estimated = w["result"]["estimated"]
    assert estimated["method"] == "cbpe" and estimated["rows"] == 500
    window = tmp_path / "loans.parquet"
    s.cli("predictions", "export", "loans", "--since", w["start"], "--until", w["end"], "-o", window)
    offline = json.loads(s.cli("estimate", "--reference", ref_path, "--current", window, "--score", "proba",
                               "--prediction", "label", "--label", "y_true", "--chunk-size", "500", "--json").stdout)
    chunk = offline["chunks"][0]["estimate"] if "estimate" in offline["chunks"][0] else offline["chunks"][0]
    for metric in ["accuracy", "roc_auc", "precision", "recall", "f1"]:
        assert estimated[metric] == pytest.approx(chunk[metric], rel=1e-12), metric
    # And in /metrics, for Prometheus.
    text = requests.get(f"{s.url}/metrics", headers=s.headers()).text
    assert f'modelops_monitor_estimated_performance{{deployment="loans",monitor="quality",version="{v}",metric="accuracy"}}' in text


class Hanging(BaseHTTPRequestHandler):
    """A webhook receiver that never answers in time."""

    calls = 0

    def log_message(self, *args):
        pass

    def do_POST(self):
        Hanging.calls += 1
        time.sleep(3)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_a_hanging_webhook_costs_bounded_recorded_attempts_and_never_blocks_monitoring(tmp_path_factory):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Hanging)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{httpd.server_address[1]}/slow"
    data_dir = tmp_path_factory.mktemp("watch-hang")
    proc, s = start_server(data_dir, "--alert-webhook-timeout", "1", "--alert-webhook-attempts", "2")
    try:
        s.workdir = data_dir
        s.cli("users", "create", "vic", "--role", "validator")
        vic = json.loads(s.cli("tokens", "create", "--name", "t", "--user", "vic", "--json").stdout)
        s.vic_env = dict(s.env, MODELOPS_TOKEN=vic["token"])
        s.cli("models", "create", "churn", "--kind", "rules", "--owner", "admin", "--risk-tier", "low")
        s.train = data_dir / "train.parquet"
        training().to_parquet(s.train)
        v = approved(s)
        s.cli("deploy", "create", "hang", "--model", "churn", "--version", v)
        s.cli("monitor", "create", "hang", "m", "--rows", "100", "--min-rows", "50", "--alert", "always=rows > 0", "--webhook", hook)
        send(s, "hang", training(n=300, seed=8)[["x", "y"]])
        # Three windows close while the receiver hangs: monitoring does not wait for it.
        windows = wait_for(lambda: [w for w in results(s, "hang", "m") if w["closed"]] if len([w for w in results(s, "hang", "m") if w["closed"]]) == 3 else None)
        assert len(windows) == 3

        def recorded():
            alerts = json.loads(s.cli("alerts", "list", "--deployment", "hang", "--json").stdout)["alerts"]
            return alerts if alerts and len(alerts[0]["detail"]["deliveries"]) == 2 else None

        alerts = wait_for(recorded)
        attempts = alerts[0]["detail"]["deliveries"]
        assert [a["attempt"] for a in attempts] == [1, 2]
        assert all("no answer within 1000 ms" in a["error"] for a in attempts), attempts
        # Bounded: no third attempt, ever.
        time.sleep(3)
        alerts = json.loads(s.cli("alerts", "list", "--deployment", "hang", "--json").stdout)["alerts"]
        assert len(alerts) == 1 and len(alerts[0]["detail"]["deliveries"]) == 2
    finally:
        stop_server(proc)
        httpd.shutdown()


def test_evidently_mode_windows_are_evidentlys_numbers_on_the_window(s, tmp_path):
    """Evidently mode: a closed window's drift is Evidently's DataDriftPreset
    over the window's every call against the reference data kept with the
    version — checked against Evidently itself on the exported window, and
    equal to `modelops drift --mode evidently` on the same files."""
    from test_drift_evidently import assert_same, evidently_results

    s.cli("models", "create", "pricing", "--kind", "rules", "--owner", "admin", "--risk-tier", "low")
    reference = training(n=1500, seed=21)
    ref_path = tmp_path / "pricing-train.parquet"
    reference.to_parquet(ref_path, index=False)
    path = tmp_path / "rules.yaml"
    path.write_text(MODEL % "")
    card = tmp_path / "card.json"
    card.write_text(json.dumps({"intended_use": "evidently mode tests"}))
    v = json.loads(s.cli("versions", "push", "pricing", path, "--card", card, "--reference", ref_path,
                         "--store-reference-data", "--json").stdout)["version"]
    shown = json.loads(s.cli("reference", "show", "pricing", v, "--json").stdout)
    assert shown["data"]["filename"] == "pricing-train.parquet"
    # Kept data is an artifact that garbage collection keeps.
    gc = json.loads(s.cli("gc", "--dry-run", "--grace", "0s", "--json").stdout)
    assert shown["data"]["sha256"] not in json.dumps(gc)
    s.cli("versions", "submit", "pricing", v)
    out = subprocess.run([modelops_bin(), "versions", "approve", "pricing", str(v), "--comment", "ok"], capture_output=True, text=True, env=s.vic_env)
    assert out.returncode == 0, out.stderr
    s.cli("deploy", "create", "prices", "--model", "pricing", "--version", v)

    # A version whose reference kept only its profile cannot be watched in evidently mode.
    plain = approved(s, " + 0.0")
    s.cli("deploy", "create", "plain", "--model", "churn", "--version", plain)
    refused = s.cli("monitor", "create", "plain", "ev", "--every", "4s", "--mode", "evidently", check=False)
    assert refused.returncode != 0 and "drift.mode" in refused.stderr and "--store-data" in refused.stderr, refused.stderr

    s.cli("monitor", "create", "prices", "ev", "--every", f"{WINDOW_S}s", "--mode", "evidently")
    wait_window_boundary()
    current = training(n=400, seed=22, shift=0.3)[["x", "y"]]
    send(s, "prices", current)
    w = closed_window_with(s, "prices", "ev", 400)
    ours = w["result"]["drift"]
    assert ours["mode"] == "evidently", ours
    window = tmp_path / "prices-window.parquet"
    s.cli("predictions", "export", "prices", "--since", w["start"], "--until", w["end"], "-o", window)
    exported = pd.read_parquet(window)
    assert len(exported) == 400
    theirs, share = evidently_results(reference, exported[["x", "y", "score"]])
    assert_same(ours, theirs, share)
    assert ours["dataset_drift"] is True
    offline = json.loads(s.cli("drift", "--mode", "evidently", "--reference", ref_path, "--current", window,
                               "--columns", "x,y,score", "--json").stdout)
    for c in offline["columns"]:
        mine = next(m for m in ours["columns"] if m["column"] == c["column"])
        assert (mine["score"], mine["drift_detected"], mine["method"]) == (c["score"], c["drift_detected"], c["method"]), c["column"]
