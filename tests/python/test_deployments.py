"""Deployments end to end, as a deployer drives them: the real binary, the
CLI, `tritonclient` against the deployment's OIP endpoint, the native
predict route, and the recorded predictions read back with pandas.

The models are rule sets (CEL) so each version's answer is known: `score =
x * 0.1` for the healthy ones, shifted by +0.5 for the one whose predictions
drift, a division by zero for the one that fails; the slow one is an
`external` model whose upstream (a small OIP server in this file) sleeps.
"""

import json
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest
import requests
import tritonclient.http as httpclient

from conftest import modelops_bin, start_server, stop_server

HEALTHY = """
kind: rules
inputs: [{name: x, type: double}]
outputs: [{name: score, type: double}]
mode: first_match
rules:
  - {name: negative, when: x < 0.0, then: {score: "0.0"}}
default: {score: "x * 0.1%s"}
"""

FAILING = """
kind: rules
inputs: [{name: x, type: double}]
outputs: [{name: score, type: double}]
mode: first_match
rules:
  - {name: broken, when: "int(x) / 0 > 1", then: {score: "1.0"}}
default: {score: "x"}
"""


class SlowOip(BaseHTTPRequestHandler):
    """An Open Inference Protocol upstream answering `score = x * 0.1` after 150 ms."""

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if "/slow/" in self.path:
            time.sleep(0.15)
        x = body["inputs"][0]["data"]
        answer = {"model_name": "slow", "outputs": [{"name": "score", "datatype": "FP64", "shape": [len(x), 1], "data": [v * 0.1 for v in x]}]}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def slow_upstream():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), SlowOip)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def s(tmp_path_factory, slow_upstream):
    data_dir = tmp_path_factory.mktemp("deploy-data")
    config = data_dir / "modelops.toml"
    config.write_text(f'[external]\nallowed_url_prefixes = ["{slow_upstream}/"]\n')
    proc, server = start_server(data_dir, "--config", config)
    server.cli("users", "create", "vic", "--role", "validator")
    vic = json.loads(server.cli("tokens", "create", "--name", "t", "--user", "vic", "--json").stdout)
    server.vic_env = dict(server.env, MODELOPS_TOKEN=vic["token"])
    server.cli("models", "create", "scoring", "--kind", "rules", "--owner", "admin", "--risk-tier", "low")
    server.workdir = data_dir
    yield server
    stop_server(proc)


def as_vic(s, *args):
    """A CLI command as the validator (the author may not approve)."""
    out = subprocess.run([modelops_bin(), *map(str, args)], capture_output=True, text=True, env=s.vic_env, timeout=120)
    assert out.returncode == 0, out.stderr
    return out


def approved_version(s, text, model="scoring", suffix="yaml"):
    """Push, submit, have the validator approve: an approved version's number."""
    path = s.workdir / f"artifact.{suffix}"
    path.write_text(text)
    card = s.workdir / "card.json"
    card.write_text(json.dumps({"intended_use": "scoring tests"}))
    v = json.loads(s.cli("versions", "push", model, path, "--card", card, "--json").stdout)["version"]
    s.cli("versions", "submit", model, v)
    as_vic(s, "versions", "approve", model, v, "--comment", "fine")
    return v


def deployment(s, name="scoring-live"):
    return json.loads(s.cli("deploy", "show", name, "--json").stdout)


def predict(s, name, x, headers=None):
    h = dict(s.headers(), **(headers or {}))
    return requests.post(f"{s.url}/api/v1/deployments/{name}/predict", json={"rows": [{"x": x}]}, headers=h)


def traffic(s, name, calls, threads=4):
    """Sends `calls` single-row calls; returns their (status, version) pairs."""

    def one(i):
        r = predict(s, name, float(i % 10))
        return r.status_code, r.headers.get("x-modelops-version")

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(calls)))


def wait_for(s, name, predicate, timeout=20, feed=0):
    """Polls the deployment until `predicate` holds, sending `feed` calls per poll."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        d = deployment(s, name)
        if predicate(d):
            return d
        if feed:
            traffic(s, name, feed)
        time.sleep(0.1)
    pytest.fail(f"deployment never reached the expected state: {json.dumps(d, indent=1)[:3000]}")


def audit(s, action):
    r = requests.get(f"{s.url}/api/v1/audit", params={"subject": "deployment/scoring-live", "action": action, "page_size": 100}, headers=s.headers())
    assert r.status_code == 200, r.text
    return r.json()["events"]


def test_a_canary_walks_to_completion_and_bad_ones_roll_back_by_themselves(s):
    v1 = approved_version(s, HEALTHY % "")
    out = s.cli("deploy", "create", "scoring-live", "--model", "scoring", "--version", v1)
    assert "scoring-live" in out.stdout
    # The OIP endpoint of the deployment answers with the version that served.
    c = httpclient.InferenceServerClient(url=s.hostport)
    inp = httpclient.InferInput("x", [3, 1], "FP64")
    inp.set_data_from_numpy(np.array([[1.0], [2.0], [3.0]]))
    result = c.infer("scoring-live", inputs=[inp], headers=s.headers())
    assert result.get_response()["model_version"] == str(v1)
    assert result.get_response()["model_name"] == "scoring-live"
    np.testing.assert_allclose(result.as_numpy("score").ravel(), [0.1, 0.2, 0.3])
    # Deploying all traffic to v1 made it the production version.
    model = requests.get(f"{s.url}/api/v1/models/scoring", headers=s.headers()).json()
    assert model["aliases"]["champion"] == v1

    # A healthy canary advances step by step and completes.
    v2 = approved_version(s, HEALTHY % "")
    s.cli("deploy", "set", "scoring-live", "--canary", v2, "--steps", "10,50,100", "--hold-requests", "20")
    d = deployment(s)
    assert d["state"] == "progressing" and d["routes"] == [{"version": v1, "weight": 90}, {"version": v2, "weight": 10}]
    d = wait_for(s, "scoring-live", lambda d: d["state"] == "stable", timeout=60, feed=40)
    assert d["routes"] == [{"version": v2, "weight": 100}] and d["previous"] == [v1]
    steps = audit(s, "deployment.advance")
    assert len(steps) == 3 and all(e["actor"] == "system" for e in steps), steps
    assert "completed" in steps[-1]["after"]["reason"], steps[-1]
    model = requests.get(f"{s.url}/api/v1/models/scoring", headers=s.headers()).json()
    assert model["aliases"]["champion"] == v2, "the completed canary is promoted"

    # Shifted predictions: rolled back by the condition, the reason in the audit log.
    v3 = approved_version(s, HEALTHY % " + 0.5")
    s.cli("deploy", "set", "scoring-live", "--canary", v3, "--steps", "50,100", "--hold-requests", "400")
    d = wait_for(s, "scoring-live", lambda d: d["state"] == "rolled_back", timeout=60, feed=40)
    assert d["routes"] == [{"version": v2, "weight": 100}]
    assert "prediction" in d["reason"], d["reason"]
    rollbacks = audit(s, "deployment.rollback")
    assert rollbacks[-1]["actor"] == "system" and "prediction" in rollbacks[-1]["after"]["reason"], rollbacks

    # Errors: rolled back likewise; every call the client made was answered
    # by the stable version or by the canary (none lost in the switch).
    v4 = approved_version(s, FAILING)
    s.cli("deploy", "set", "scoring-live", "--canary", v4, "--steps", "50,100", "--hold-requests", "400")
    d = wait_for(s, "scoring-live", lambda d: d["state"] == "rolled_back" and d["revision"] > 0 and "error" in (d["reason"] or ""), timeout=60, feed=40)
    assert d["routes"] == [{"version": v2, "weight": 100}]
    assert "error_rate" in d["reason"], d["reason"]

    # One command back to the version before.
    out = s.cli("rollback", "scoring-live")
    assert f"to version {v1}" in out.stdout
    assert deployment(s)["routes"] == [{"version": v1, "weight": 100}]
    statuses = traffic(s, "scoring-live", 20)
    assert set(statuses) == {(200, str(v1))}


def external(upstream, path):
    return json.dumps({"url": f"{upstream}/{path}", "model": "m",
                       "inputs": [{"name": "x", "dtype": "float64", "shape": []}],
                       "outputs": [{"name": "score", "dtype": "float64", "shape": []}]})


def test_a_slow_canary_rolls_back_on_latency(s, slow_upstream):
    # Both versions are computed on another OIP server (an `external`
    # model); the canary's upstream takes 150 ms a call, the stable one's none.
    s.cli("models", "create", "remote", "--kind", "external", "--owner", "admin", "--risk-tier", "low")
    fast = approved_version(s, external(slow_upstream, "fast"), model="remote", suffix="json")
    slow = approved_version(s, external(slow_upstream, "slow"), model="remote", suffix="json")
    s.cli("deploy", "create", "remote-live", "--model", "remote", "--version", fast)
    s.cli("deploy", "set", "remote-live", "--canary", slow, "--steps", "50,100", "--hold-requests", "1000")
    d = wait_for(s, "remote-live", lambda d: d["state"] == "rolled_back", timeout=60, feed=40)
    assert d["routes"] == [{"version": fast, "weight": 100}]
    assert "p99" in d["reason"], d["reason"]


def test_ab_is_sticky_and_splits_by_the_weights(s):
    v = [r["version"] for r in requests.get(f"{s.url}/api/v1/models/scoring/versions", headers=s.headers()).json()["versions"] if r["state"] in ("approved", "production")]
    a, b = sorted(v)[:2]
    s.cli("deploy", "create", "scoring-ab", "--model", "scoring", "--route", f"{a}=70", "--route", f"{b}=30", "--sticky-header", "x-customer")
    seen = {}
    for customer in range(400):
        r = predict(s, "scoring-ab", 1.0, {"x-customer": f"c{customer}"})
        assert r.status_code == 200, r.text
        seen[customer] = r.headers["x-modelops-version"]
    # The same customer always meets the same version.
    for customer in range(0, 400, 7):
        for _ in range(3):
            assert predict(s, "scoring-ab", 2.0, {"x-customer": f"c{customer}"}).headers["x-modelops-version"] == seen[customer]
    share = sum(1 for v in seen.values() if v == str(a)) / len(seen)
    # 70 % within four standard deviations of a binomial(400, 0.7).
    sd = (0.7 * 0.3 / 400) ** 0.5
    assert abs(share - 0.7) < 4 * sd, share


def test_shadow_records_both_answers_and_returns_only_the_primary(s):
    versions = requests.get(f"{s.url}/api/v1/models/scoring/versions", headers=s.headers()).json()["versions"]
    primary = next(v["version"] for v in versions if v["state"] == "production")
    # A version still in validation may shadow.
    path = s.workdir / "shadow.yaml"
    path.write_text(HEALTHY % " + 1.0")
    card = s.workdir / "card.json"
    shadow = json.loads(s.cli("versions", "push", "scoring", path, "--card", card, "--json").stdout)["version"]
    s.cli("versions", "submit", "scoring", shadow)
    s.cli("deploy", "create", "scoring-shadow", "--model", "scoring", "--version", primary, "--shadow", shadow)
    for x in range(10):
        r = predict(s, "scoring-shadow", float(x))
        assert r.status_code == 200 and r.headers["x-modelops-version"] == str(primary)
        assert r.json()["predictions"][0]["score"] == pytest.approx(x * 0.1)
    deadline = time.time() + 10
    while time.time() < deadline:
        page = requests.get(f"{s.url}/api/v1/deployments/scoring-shadow/predictions", params={"max_results": 1000}, headers=s.headers()).json()
        if sum(1 for r in page["records"] if r["route"] == "shadow") == 10:
            break
        time.sleep(0.1)
    by_request = {}
    for r in page["records"]:
        by_request.setdefault(r["request_id"], {})[r["route"]] = r
    assert len(by_request) == 10
    for pair in by_request.values():
        assert pair["primary"]["version"] == primary and pair["shadow"]["version"] == shadow
        x = pair["primary"]["inputs"][0]["data"][0]
        assert pair["shadow"]["inputs"] == pair["primary"]["inputs"]
        assert pair["primary"]["outputs"][0]["data"][0] == pytest.approx(x * 0.1)
        assert pair["shadow"]["outputs"][0]["data"][0] == pytest.approx(x * 0.1 + 1.0)


def test_predictions_export_to_parquet(s, tmp_path):
    before = requests.get(f"{s.url}/api/v1/deployments/scoring-shadow/predictions", params={"max_results": 1000}, headers=s.headers()).json()
    out = tmp_path / "window.parquet"
    s.cli("predictions", "export", "scoring-shadow", "-o", out)
    frame = pd.read_parquet(out)
    assert len(frame) == len(before["records"])
    assert {"request_id", "at", "version", "route", "latency_us", "x", "score"} <= set(frame.columns)
    primary = frame[frame.route == "primary"].sort_values("x")
    np.testing.assert_allclose(primary.score.to_numpy(), primary.x.to_numpy() * 0.1)


def test_switching_under_load_fails_no_request(s):
    versions = requests.get(f"{s.url}/api/v1/models/scoring/versions", headers=s.headers()).json()["versions"]
    a, b = sorted(v["version"] for v in versions if v["state"] in ("approved", "production"))[:2]
    s.cli("deploy", "create", "scoring-switch", "--model", "scoring", "--version", a)
    stop = threading.Event()
    results = []

    def client():
        session = requests.Session()
        while not stop.is_set():
            r = session.post(f"{s.url}/api/v1/deployments/scoring-switch/predict", json={"rows": [{"x": 3.0}]}, headers=s.headers())
            results.append((r.status_code, r.headers.get("x-modelops-version")))

    threads = [threading.Thread(target=client) for _ in range(6)]
    for t in threads:
        t.start()
    for i in range(6):
        time.sleep(0.3)
        s.cli("deploy", "set", "scoring-switch", "--version", b if i % 2 == 0 else a)
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    assert len(results) > 100
    failures = [r for r in results if r[0] != 200]
    assert failures == [], failures[:5]
    assert {v for _, v in results} == {str(a), str(b)}


def test_bad_input_names_the_field(s):
    def create(body):
        return requests.post(f"{s.url}/api/v1/deployments", json=body, headers=s.headers())

    r = create({"name": "bad", "model": "scoring", "routes": [{"version": 1, "weight": 60}, {"version": 2, "weight": 30}]})
    assert r.status_code == 400 and r.json()["error"]["field"] == "routes", r.text
    r = create({"name": "bad", "model": "scoring", "version": 1, "canary": {"version": 2, "steps": [50, 10]}})
    assert r.status_code == 400 and r.json()["error"]["field"] == "canary.steps", r.text
    r = create({"name": "bad", "model": "scoring", "version": 1, "canary": {"version": 2, "steps": [10, 100], "condition": "canary.error_rat > 0.1"}})
    assert r.status_code == 400 and r.json()["error"]["field"] == "canary.condition", r.text
    r = create({"name": "bad", "model": "scoring", "version": 1, "canary": {"version": 2, "steps": [10, 100], "hold": {"duration": "soon"}}})
    assert r.status_code == 400 and r.json()["error"]["field"] == "canary.hold.duration", r.text
    r = create({"name": "bad", "model": "scoring", "version": 1, "weights": 3})
    assert r.status_code == 400 and "weights" in r.text, r.text
    r = create({"name": "bad", "model": "nope", "version": 1})
    assert r.status_code == 404, r.text
    r = requests.get(f"{s.url}/api/v1/deployments/nope", headers=s.headers())
    assert r.status_code == 404, r.text
    r = predict(s, "nope", 1.0)
    assert r.status_code == 404, r.text
    r = requests.patch(f"{s.url}/api/v1/deployments/scoring-live", json={"revision": 1, "sampling": 0.5}, headers=s.headers())
    assert r.status_code == 409 and "revision" in r.text, r.text
    assert requests.get(f"{s.url}/api/v1/deployments/bad", headers=s.headers()).status_code == 404, "nothing half-written"
