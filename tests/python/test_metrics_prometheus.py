"""`GET /metrics` read as Prometheus reads it: the real binary, traffic sent
through a deployment over HTTP, the exposition parsed with the official
`prometheus_client` parser. Checks the families, their types, the `_total`
naming of counters, the label sets, and that every value equals the traffic
sent, per version and route; and that the Grafana dashboard's queries name
only metrics that exist (or the live-monitoring ones to come)."""

import json
import re
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from conftest import REPO, start_server, stop_server

# `score = x * 0.1`; a negative `x` makes the rule set fail (division by zero).
RULES = """
kind: rules
inputs: [{name: x, type: double}]
outputs: [{name: score, type: double}]
mode: first_match
rules:
  - {name: broken, when: "x < 0.0 && int(x) / 0 > 1", then: {score: "1.0"}}
default: {score: "x * 0.1"}
"""

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = ["0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]

# family (as the parser names it) -> (type, label names)
FAMILIES = {
    "modelops_build_info": ("gauge", {"version"}),
    "modelops_deployment_requests": ("counter", {"deployment", "version", "route"}),
    "modelops_deployment_errors": ("counter", {"deployment", "version", "route"}),
    "modelops_deployment_request_duration_seconds": ("histogram", {"deployment", "version", "route"}),
    "modelops_prediction_records": ("counter", {"deployment", "outcome"}),
    "modelops_prediction_record_queue_depth": ("gauge", {"deployment"}),
    "modelops_inference_calls": ("counter", {"model", "version"}),
    "modelops_inference_rows": ("counter", {"model", "version"}),
    "modelops_inference_errors": ("counter", {"model", "version"}),
    "modelops_inference_upstream_timeouts": ("counter", {"model", "version"}),
    "modelops_inference_tokens": ("counter", {"model", "version"}),
    "modelops_inference_cost": ("counter", {"model", "version"}),
}

# What live monitoring exposes (families without series until a window closes).
MONITOR_METRICS = {
    "modelops_monitor_drift_score",
    "modelops_monitor_drift_detected",
    "modelops_monitor_drifted_feature_share",
    "modelops_monitor_dataset_drift",
    "modelops_monitor_performance",
    "modelops_monitor_estimated_performance",
    "modelops_alerts_firing",
    "modelops_deployment_degraded",
}

DASHBOARD = REPO / "deploy" / "grafana" / "modelops-dashboard.json"


@pytest.fixture(scope="module")
def s(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("metrics-data")
    proc, server = start_server(data_dir)
    server.cli("users", "create", "vic", "--role", "validator")
    vic = json.loads(server.cli("tokens", "create", "--name", "t", "--user", "vic", "--json").stdout)
    server.vic_env = dict(server.env, MODELOPS_TOKEN=vic["token"])
    server.cli("models", "create", "scoring", "--kind", "rules", "--owner", "admin", "--risk-tier", "low")
    server.workdir = data_dir
    yield server
    stop_server(proc)


def pushed_version(s, approve=True):
    """Push and submit a version; the validator approves it when `approve`."""
    path = s.workdir / "rules.yaml"
    path.write_text(RULES)
    card = s.workdir / "card.json"
    card.write_text(json.dumps({"intended_use": "metrics tests"}))
    v = json.loads(s.cli("versions", "push", "scoring", path, "--card", card, "--json").stdout)["version"]
    s.cli("versions", "submit", "scoring", v)
    if approve:
        r = requests.post(
            f"{s.url}/api/v1/models/scoring/versions/{v}/approve",
            json={"comment": "fine"},
            headers={"Authorization": f"Bearer {s.vic_env['MODELOPS_TOKEN']}"},
        )
        assert r.status_code == 200, r.text
    return v


def change(s, body):
    r = requests.patch(f"{s.url}/api/v1/deployments/live", json=body, headers=s.headers())
    assert r.status_code == 200, r.text


def call(s, x):
    """One call; the version that answered, or None when it failed."""
    r = requests.post(f"{s.url}/api/v1/deployments/live/predict", json={"rows": [{"x": x}]}, headers=s.headers())
    if r.status_code == 200:
        return int(r.headers["x-modelops-version"])
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    return None


def scrape(s, headers=None):
    r = requests.get(f"{s.url}/metrics", headers=s.headers() if headers is None else headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == CONTENT_TYPE
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def value(families, family, sample, **labels):
    found = [x.value for x in families[family].samples if x.name == sample and x.labels == {k: str(v) for k, v in labels.items()}]
    assert len(found) == 1, f"{sample}{labels}: {found} in {families[family].samples}"
    return found[0]


def test_metrics_count_the_traffic_sent_per_version_and_route(s):
    # A token is needed, as for every API route.
    assert requests.get(f"{s.url}/metrics").status_code == 401

    v1, v2 = pushed_version(s), pushed_version(s)
    v3 = pushed_version(s, approve=False)  # in validation: a shadow only
    s.cli("deploy", "create", "live", "--model", "scoring", "--version", v1)

    made = {}  # (version, route) -> [calls, errors]

    def count(version, route, failed):
        m = made.setdefault((version, route), [0, 0])
        m[0] += 1
        m[1] += int(failed)

    # All traffic to v1: 12 calls, 3 fail.
    for i in range(12):
        answered = call(s, -1.0 if i % 4 == 0 else float(i))
        assert answered in (v1, None)
        count(v1, "primary", answered is None)
    # All traffic to v2, mirrored to v3: 10 calls, 2 fail (on both).
    change(s, {"version": v2, "shadows": [{"version": v3, "percent": 100.0}]})
    for i in range(10):
        failed = i % 5 == 0
        answered = call(s, -2.0 if failed else float(i))
        assert answered == (None if failed else v2)
        count(v2, "primary", failed)
        count(v3, "shadow", failed)
    # A/B between v1 and v2: 40 calls that succeed, counted by the answering version.
    change(s, {"routes": [{"version": v1, "weight": 50}, {"version": v2, "weight": 50}], "shadows": []})
    for i in range(40):
        answered = call(s, float(i))
        assert answered in (v1, v2)
        count(answered, "primary", False)
    assert made[(v1, "primary")][0] > 12 and made[(v2, "primary")][0] > 10, made

    # Shadow calls and record writes finish off the request path.
    records = sum(m[0] for m in made.values())
    deadline = time.time() + 20
    while True:
        families = scrape(s)
        shadows = [x.value for x in families["modelops_deployment_requests"].samples if x.labels.get("route") == "shadow"]
        written = [x.value for x in families["modelops_prediction_records"].samples if x.labels.get("outcome") == "written"]
        if shadows == [made[(v3, "shadow")][0]] and written == [records]:
            break
        assert time.time() < deadline, (shadows, written, made)
        time.sleep(0.05)

    # Families, types, names and label sets.
    for name, (kind, labels) in FAMILIES.items():
        assert name in families, f"{name} missing: {sorted(families)}"
        family = families[name]
        assert family.type == kind, (name, family.type)
        assert family.documentation, name
        for sample in family.samples:
            assert set(sample.labels) - {"le"} == labels, (sample.name, sample.labels)
            if kind == "counter":
                assert sample.name == name + "_total", sample.name
            elif kind == "histogram":
                assert sample.name in (name + "_bucket", name + "_sum", name + "_count"), sample.name
                assert ("le" in sample.labels) == sample.name.endswith("_bucket")
            else:
                assert sample.name == name
    assert name_units_ok(families)
    assert families["modelops_build_info"].samples[0].value == 1

    # Values: exactly the traffic sent, per version and route.
    assert {(int(x.labels["version"]), x.labels["route"]) for x in families["modelops_deployment_requests"].samples} == set(made)
    for (version, route), (calls, errors) in made.items():
        labels = {"deployment": "live", "version": version, "route": route}
        assert value(families, "modelops_deployment_requests", "modelops_deployment_requests_total", **labels) == calls
        assert value(families, "modelops_deployment_errors", "modelops_deployment_errors_total", **labels) == errors
        h = "modelops_deployment_request_duration_seconds"
        assert value(families, h, h + "_count", **labels) == calls
        cumulative = [value(families, h, h + "_bucket", **labels, le=le) for le in BUCKETS]
        assert cumulative == sorted(cumulative) and cumulative[-1] == calls, cumulative
        assert 0 < value(families, h, h + "_sum", **labels) < 60
        # The serving layer counts each version's predictions through any route.
        model = {"model": "scoring", "version": version}
        assert value(families, "modelops_inference_calls", "modelops_inference_calls_total", **model) == calls
        assert value(families, "modelops_inference_errors", "modelops_inference_errors_total", **model) == errors
        assert value(families, "modelops_inference_rows", "modelops_inference_rows_total", **model) == calls - errors
    for outcome, expected in [("written", records), ("dropped", 0), ("failed", 0)]:
        assert value(families, "modelops_prediction_records", "modelops_prediction_records_total", deployment="live", outcome=outcome) == expected
    assert value(families, "modelops_prediction_record_queue_depth", "modelops_prediction_record_queue_depth", deployment="live") == 0
    # Rule sets report no LLM usage.
    assert families["modelops_inference_tokens"].samples == [] and families["modelops_inference_cost"].samples == []

    check_dashboard(exposed_names(families))


def name_units_ok(families):
    """Prometheus' naming: the `modelops_` prefix, seconds as the base unit."""
    for name in families:
        assert name.startswith("modelops_"), name
        assert not re.search(r"_(ms|milliseconds|us|microseconds)(_|$)", name), name
    return True


def exposed_names(families):
    """Every series name a query may use: families with their suffixes."""
    names = set()
    for name, family in families.items():
        names.add(name)
        names.update({"counter": [name + "_total"], "histogram": [name + s for s in ("_bucket", "_sum", "_count")]}.get(family.type, []))
    return names


PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "by", "without", "rate", "irate", "increase", "histogram_quantile",
    "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset", "topk", "bottomk",
    "delta", "deriv", "clamp_min", "clamp_max", "abs", "vector", "time", "absent",
}


def metric_names(expr):
    """The metric names a PromQL expression reads (Grafana variables and
    label matchers, grouping clauses, strings and ranges left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)  # grouping labels
    text = re.sub(r"\$\{?\w+\}?", "", text)  # Grafana variables
    # Grafana's label_values(metric, label): the second argument is a label.
    text = re.sub(r"^\s*label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$", r"\1", text)
    words = re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", text)
    unknown = [w for w in words if w not in PROMQL_WORDS and not w.startswith("modelops_")]
    assert not unknown, f"{expr}: {unknown}"
    return [w for w in words if w.startswith("modelops_")]


def check_dashboard(exposed):
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource" and variables["DS_PROMETHEUS"]["query"] == "prometheus"
    queries = []
    panels = list(dashboard["panels"])
    while panels:
        panel = panels.pop()
        panels.extend(panel.get("panels", []))
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
            queries.append((panel["title"], target["expr"]))
    for variable in variables.values():
        if variable["type"] == "query":
            q = variable["query"]
            queries.append((variable["name"], q["query"] if isinstance(q, dict) else q))
    used = set()
    for title, expr in queries:
        names = metric_names(expr)
        assert names, f"{title}: {expr} reads no metric"
        for name in names:
            assert name in exposed or name in MONITOR_METRICS, f"{title}: {name} is neither exposed by /metrics nor a monitoring metric"
        used.update(names)
    titles = " ".join(t for t, _ in queries).lower()
    for wanted in ["request rate", "error rate", "p50", "p99", "dropped", "queue depth", "drift"]:
        assert wanted in titles, wanted
    assert "histogram_quantile" in " ".join(e for _, e in queries)
    # Every monitoring metric has a panel, as do the deployment families.
    assert MONITOR_METRICS <= used, MONITOR_METRICS - used
    for name in ["modelops_deployment_requests_total", "modelops_deployment_errors_total", "modelops_deployment_request_duration_seconds_bucket",
                 "modelops_prediction_records_total", "modelops_prediction_record_queue_depth"]:
        assert name in used, name


def test_the_dashboard_parses_and_reads_only_known_metrics_offline():
    """The dashboard check on its own, with the names the exposition declares
    (this file's FAMILIES), so a broken dashboard is named without a server."""
    exposed = set()
    for name, (kind, _) in FAMILIES.items():
        exposed.add(name)
        exposed.update({"counter": [name + "_total"], "histogram": [name + s for s in ("_bucket", "_sum", "_count")]}.get(kind, []))
    check_dashboard(exposed)
    assert metric_names('histogram_quantile(0.99, sum by (le) (rate(modelops_x_bucket{a="b"}[5m])))') == ["modelops_x_bucket"]
    assert metric_names("label_values(modelops_x_total, deployment)") == ["modelops_x_total"]
    with pytest.raises(AssertionError):
        metric_names("rate(http_requests_total[5m])")


def test_every_family_and_the_dashboard_are_documented():
    docs = (REPO / "docs" / "metrics.md").read_text()
    for name in FAMILIES:
        assert name in docs, name
    assert Path(DASHBOARD).name in docs
