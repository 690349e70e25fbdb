"""Rule-based, statistical, LLM and external models served by modelops.

A second server runs with an `[llm]` upstream (a small local server in this
file speaking OpenAI's chat-completions protocol, the one boundary we cannot
reach here) and an `[external]` credential, and every kind is called through
the Open Inference Protocol with `tritonclient` and through the native
`predict` route.
"""

import json
import math
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import requests
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from conftest import REPO, start_server, stop_server

ARTIFACTS = REPO / "crates" / "modelops-runtime" / "examples" / "artifacts"
KEY = "sk-test-not-a-real-key"


class FakeOpenAI(BaseHTTPRequestHandler):
    """POST /v1/chat/completions: echoes the last message; `slow` in it sleeps past the timeout."""

    calls = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeOpenAI.calls.append({"auth": self.headers.get("Authorization"), "body": body})
        if self.headers.get("Authorization") != f"Bearer {KEY}":
            return self.reply(401, {"error": {"message": "bad key", "type": "auth"}})
        prompt = body["messages"][-1]["content"]
        if "slow" in prompt:
            time.sleep(3)
        if "refuse-me" in prompt:
            return self.reply(400, {"error": {"message": "content policy: refused", "type": "invalid_request_error"}})
        answer = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": f"summary of: {prompt}"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": 7, "total_tokens": len(prompt.split()) + 7},
        }
        self.reply(200, answer)

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def upstream():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def kinds_server(tmp_path_factory, upstream, server):
    """A server whose configuration names the fake LLM upstream and a
    credential for the session's first server (the external model's host)."""
    data_dir = tmp_path_factory.mktemp("kinds-data")
    config = data_dir / "modelops.toml"
    config.write_text(
        f"""
[llm.upstreams.fake]
base_url = "{upstream}/v1"
api_key_env = "FAKE_OPENAI_KEY"
timeout_ms = 1000
total_timeout_ms = 1500
max_retries = 0

[llm.prices."fake-model"]
prompt_per_million = 1000.0
completion_per_million = 2000.0

[external]
allowed_url_prefixes = ["{server.url}/"]

[external.credentials.main]
scheme = "Bearer"
value_env = "MAIN_TOKEN"
"""
    )
    env = dict(os.environ, FAKE_OPENAI_KEY=KEY, MAIN_TOKEN=server.token)
    proc, s = start_server(data_dir, "--config", config, env=env)
    yield s
    stop_server(proc)


def push(s, name, kind, path):
    s.cli("models", "create", name, "--kind", kind, "--owner", "admin", "--risk-tier", "low")
    return json.loads(s.cli("versions", "push", name, path, "--json").stdout)


def predict(s, name, body, version="1"):
    return requests.post(f"{s.url}/api/v1/models/{name}/versions/{version}/predict", json=body, headers=s.headers())


def test_rules_through_tritonclient_and_predict(kinds_server):
    s = kinds_server
    v = push(s, "credit-rules", "rules", ARTIFACTS / "credit-rules.yaml")
    # The signature comes from the artifact.
    assert [f["name"] for f in v["signature"]["inputs"]] == ["age", "income", "employment", "existing_customer"]
    c = httpclient.InferenceServerClient(url=s.hostport)
    rows = [(17, 50000.0, "salaried", True), (30, 10000.0, "salaried", False), (45, 80000.0, "self", False), (45, 80000.0, "salaried", True)]
    inputs = []
    for name, dtype, values in [
        ("age", "INT64", np.array([[r[0]] for r in rows], dtype=np.int64)),
        ("income", "FP64", np.array([[r[1]] for r in rows], dtype=np.float64)),
        ("employment", "BYTES", np.array([[r[2].encode()] for r in rows], dtype=object)),
        ("existing_customer", "BOOL", np.array([[r[3]] for r in rows], dtype=bool)),
    ]:
        inp = httpclient.InferInput(name, list(values.shape), dtype)
        inp.set_data_from_numpy(values)
        inputs.append(inp)
    result = c.infer("credit-rules", inputs=inputs, model_version="1", headers=s.headers())
    decisions = [d.decode() for d in result.as_numpy("decision").ravel()]
    fired = [d.decode() for d in result.as_numpy("rule").ravel()]
    assert decisions == ["decline", "refer", "refer", "approve"]
    assert fired == ["minor", "low_income", "new_self_employed", "default"]
    np.testing.assert_allclose(result.as_numpy("limit").ravel(), [0.0, 500.0, 24000.0, 32000.0])
    # The native route explains: the rule that fired and the inputs it read.
    r = predict(s, "credit-rules", {"rows": [{"age": 30, "income": 10000, "employment": "salaried", "existing_customer": False}], "explain": True})
    assert r.status_code == 200, r.text
    explanation = r.json()["explanations"][0]
    assert explanation["method"] == "rules" and explanation["fired"] == ["low_income"]
    assert explanation["inputs"]["income"] == 10000
    # A missing input is named.
    r = predict(s, "credit-rules", {"rows": [{"age": 30, "employment": "salaried", "existing_customer": False}]})
    assert r.status_code == 400 and r.json()["error"]["field"] == "rows[0].income", r.text


def test_scorecard_reason_codes_and_logistic_contributions(kinds_server):
    s = kinds_server
    push(s, "scorecard", "statistical", ARTIFACTS / "credit-scorecard.json")
    r = predict(s, "scorecard", {"columns": {"age": [22], "housing": ["rent"], "utilisation": [0.9]}, "explain": True})
    assert r.status_code == 200, r.text
    body = r.json()
    score = body["predictions"][0]["score"]
    assert score == 400 + 10 + 5 + 0
    # pdo 20, base 600 at odds 50 (good:bad): odds = 50 * 2^((score - 600) / 20); probability of bad = 1 / (1 + odds)
    odds = 50 * 2 ** ((score - 600) / 20)
    assert math.isclose(body["predictions"][0]["probability"], 1 / (1 + odds), rel_tol=1e-9)
    reasons = body["explanations"][0]["reasons"]
    # Points lost against each feature's best bin: utilisation 50, age 30, housing 25.
    assert [(x["feature"], x["points_lost"]) for x in reasons] == [("utilisation", 50), ("age", 30), ("housing", 25)]
    push(s, "logistic", "statistical", ARTIFACTS / "credit-logistic.json")
    spec = json.loads((ARTIFACTS / "credit-logistic.json").read_text())
    row = {name: 1.5 for name in spec["coefficients"]}
    r = predict(s, "logistic", {"rows": [row], "explain": True})
    assert r.status_code == 200, r.text
    logit = spec.get("intercept", 0) + sum(1.5 * c for c in spec["coefficients"].values())
    assert math.isclose(r.json()["predictions"][0]["probability"], 1 / (1 + math.exp(-logit)), rel_tol=1e-12)
    e = r.json()["explanations"][0]
    assert e["scale"] == "log_odds"
    assert math.isclose(e["base_value"] + sum(c["value"] for c in e["contributions"]), logit, rel_tol=1e-12)


def test_llm_meters_tokens_and_cost_and_times_out_with_504(kinds_server, tmp_path):
    s = kinds_server
    artifact = tmp_path / "summarise.yaml"
    artifact.write_text(
        "upstream: fake\nmodel: fake-model\nmessages:\n  - {role: user, content: 'Summarise: {{text}}'}\nparameters:\n  - {name: text}\n"
    )
    v = push(s, "summariser", "llm", artifact)
    assert [f["name"] for f in v["signature"]["outputs"]] == ["text", "finish_reason"]
    FakeOpenAI.calls.clear()
    c = httpclient.InferenceServerClient(url=s.hostport)
    inp = httpclient.InferInput("text", [2], "BYTES")
    inp.set_data_from_numpy(np.array([b"quarterly results were strong", b"the model drifted"], dtype=object))
    result = c.infer("summariser", inputs=[inp], model_version="1", headers=s.headers())
    texts = [t.decode() for t in result.as_numpy("text").ravel()]
    assert texts == ["summary of: Summarise: quarterly results were strong", "summary of: Summarise: the model drifted"]
    params = result.get_response()["parameters"]
    assert params["prompt_tokens"] == 5 + 4 and params["completion_tokens"] == 14
    assert math.isclose(params["cost"], (9 * 1000 + 14 * 2000) / 1e6, rel_tol=1e-9)
    # The key went to the upstream, and nowhere in the registry.
    assert all(call["auth"] == f"Bearer {KEY}" for call in FakeOpenAI.calls)
    audit = s.cli("audit", "log", "--json").stdout
    assert KEY not in audit
    # An upstream refusal is a 502 carrying its message; a slow upstream a 504 naming it.
    r = predict(s, "summariser", {"rows": [{"text": "refuse-me"}]})
    assert r.status_code == 502 and "content policy: refused" in r.json()["error"]["message"], r.text
    r = predict(s, "summariser", {"rows": [{"text": "slow please"}]})
    assert r.status_code == 504 and "fake" in r.json()["error"]["message"], r.text
    assert KEY not in r.text
    metrics = requests.get(f"{s.url}/api/v1/inference/metrics", headers=s.headers()).json()["versions"]
    m = next(x for x in metrics if x["model"] == "summariser")
    assert m["upstream_timeouts"] == 1 and m["errors"] == 2 and m["prompt_tokens"] == 9 and m["calls"] == 3


def test_external_model_is_computed_on_another_oip_server(kinds_server, server, tmp_path):
    """The session's first server serves a rules model; this one proxies it."""
    server.cli("models", "create", "remote-rules", "--kind", "rules", "--owner", "admin", "--risk-tier", "low", check=False)
    server.cli("versions", "push", "remote-rules", ARTIFACTS / "credit-rules.yaml")
    versions = json.loads(server.cli("versions", "list", "remote-rules", "--json").stdout)
    number = max(v["version"] for v in versions["versions"])
    artifact = tmp_path / "external.json"
    artifact.write_text(
        json.dumps(
            {
                "url": server.url,
                "model": "remote-rules",
                "version": str(number),
                "inputs": [
                    {"name": "age", "dtype": "int64", "shape": []},
                    {"name": "income", "dtype": "float64", "shape": []},
                    {"name": "employment", "dtype": "string", "shape": []},
                    {"name": "existing_customer", "dtype": "bool", "shape": []},
                ],
                "outputs": [{"name": "decision", "dtype": "string", "shape": []}, {"name": "rule", "dtype": "string", "shape": []}],
                "credentials": "main",
            }
        )
    )
    push(kinds_server, "proxied-rules", "external", artifact)
    r = predict(kinds_server, "proxied-rules", {"rows": [{"age": 17, "income": 1000, "employment": "salaried", "existing_customer": True}]})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == [{"decision": "decline", "rule": "minor"}]
    # An address outside the allow-list is refused at push, nothing stored.
    artifact.write_text(json.dumps({**json.loads(artifact.read_text()), "url": "http://169.254.169.254"}))
    proc = kinds_server.cli("versions", "push", "proxied-rules", artifact, check=False)
    assert proc.returncode != 0 and "allowed" in proc.stderr, proc.stderr
