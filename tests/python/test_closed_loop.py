"""The closed loop end to end at CI scale: the fraud example's three stories
(`examples/fraud/scenario.py --small`) against the real binary — drift
injected at a known call, detected by a live monitor, one retraining run
whose version waits for a validator, a canary that promotes it; a
deliberately worse retrain that the canary rolls back by itself, the
champion serving on; a failing job recorded and alerted with no version.
Each story's audit events are checked in order and the chain verifies."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import modelops_bin

REPO = Path(__file__).resolve().parents[2]
WINDOW = 200  # calls per monitor window at --small


def run_example(tmp_path, example, scenario):
    """Runs `examples/<example>/scenario.py --small` against the binary
    under test; returns its figures, with what it printed."""
    out = tmp_path / f"{example}-{scenario}.json"
    proc = subprocess.run(
        [sys.executable, REPO / "examples" / example / "scenario.py", "--small", "--scenario", scenario, "--binary", modelops_bin(), "--json-out", out, "--keep", tmp_path / "run"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    figures = json.loads(out.read_text())
    figures["stdout"] = proc.stdout
    return figures


def story(tmp_path, scenario):
    return run_example(tmp_path, "fraud", scenario)


def actions(figures):
    return [(e["action"], e["actor"], e["subject"], e["state"]) for e in figures["audit_story"]]


def index(steps, action, subject=None, state=None, actor=None):
    for i, (a, who, subj, st) in enumerate(steps):
        if a == action and (subject is None or subj == subject) and (state is None or st == state) and (actor is None or who == actor):
            return i
    raise AssertionError(f"no {action} {subject or ''} {state or ''} in {steps}")


def test_drift_is_retrained_approved_by_a_person_canaried_and_promoted(tmp_path):
    f = story(tmp_path, "good")
    assert f["state"] == "promoted", f["reason"]
    # Detected by the first window wholly after the injection: 200 drifted
    # calls close it; the engine's pass and the alert follow within a window.
    assert 0 < f["calls_to_detect"] <= 2 * WINDOW, f
    assert 0 < f["time_to_detect_s"] < f["time_to_recover_s"], f
    assert f["runs"] == 1
    assert f["parent_version"] == 1 and f["version"] == 2
    assert f["serving"] == [2]
    # The lineage points at the run and the window that triggered it.
    retrain = f["lineage"]["retrain"]
    assert retrain["job_run"] == f["run"] and retrain["trigger"] == "alert"
    assert retrain["window"]["deployment"] == "fraud-live" and retrain["window"]["monitor"] == "drift" and retrain["window"]["version"] == 1
    assert f["lineage"]["parent_version"] == 1
    steps = actions(f)
    order = [
        index(steps, "alert.fire", "deployment/fraud-live/monitor/drift"),
        index(steps, "retrain.start", state="running"),
        index(steps, "version.create", "model/fraud/version/2", actor="dana"),
        index(steps, "version.submit", "model/fraud/version/2"),
        next(i for i, e in enumerate(f["audit_story"]) if e["state"] == "awaiting_approval" and "waits for approval" in e["reason"]),
        index(steps, "version.approve", "model/fraud/version/2", actor="vic"),
        index(steps, "retrain.progress", state="canary"),
        index(steps, "deployment.advance", "deployment/fraud-live"),
        index(steps, "version.promote", "model/fraud/version/2", actor="system"),
        index(steps, "retrain.progress", state="promoted"),
    ]
    assert order == sorted(order), steps
    waiting = [e for e in f["audit_story"] if e["state"] == "awaiting_approval" and "waits for approval" in e["reason"]]
    assert waiting and "validator" in waiting[0]["reason"]
    assert f["audit_verified"]


def test_a_worse_retrain_is_rolled_back_by_its_canary_and_the_champion_stays(tmp_path):
    f = story(tmp_path, "worse")
    assert f["state"] == "rolled_back", f["reason"]
    assert "prediction_mean" in f["reason"] and "champion keeps serving" in f["reason"]
    assert f["serving"] == [1]
    assert {"monitor": "retraining", "rule": "canary_rolled_back"} in f["alerts"]
    steps = actions(f)
    assert index(steps, "deployment.rollback", "deployment/fraud-live", actor="system") < index(steps, "retrain.progress", state="rolled_back")
    assert not any(a == "version.promote" and s == "model/fraud/version/2" for a, _, s, _ in steps)
    assert f["audit_verified"]


def test_a_failing_job_is_recorded_and_alerted_and_registers_nothing(tmp_path):
    f = story(tmp_path, "failing")
    assert f["state"] == "failed" and "status 3" in f["reason"]
    assert f.get("version") is None
    assert {"monitor": "retraining", "rule": "run_failed"} in f["alerts"]
    assert "the feature store is unreachable" in f["stdout"]
    steps = actions(f)
    assert index(steps, "retrain.start") < index(steps, "retrain.progress", state="failed")
    assert not any(a == "version.create" and s == "model/fraud/version/2" for a, _, s, _ in steps)
    assert f["audit_verified"]


RULES = """
kind: rules
inputs: [{name: x, type: double}]
outputs: [{name: score, type: double}]
mode: first_match
rules:
  - {name: negative, when: x < 0.0, then: {score: "0.0"}}
default: {score: "x * 0.2"}
"""


def test_a_webhook_job_registers_with_its_token_and_a_low_tier_version_is_approved_by_policy(tmp_path):
    """An external trainer (an Airflow DAG, a CI job) started by a signed
    webhook registers its version with the run's token; the default policy
    asks no person for a low-tier model, so the loop approves it by policy —
    and, with no rollout in the job, stops at `approved` for a deployer."""
    import hashlib
    import hmac
    import os
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from conftest import start_server, stop_server

    secret = "retrain-webhook-secret"
    received = []
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    card = tmp_path / "card.json"
    card.write_text(json.dumps({"intended_use": "closed-loop tests"}))
    pushed = []

    def external_trainer(body):
        env = dict(os.environ, MODELOPS_SERVER=body["server"], MODELOPS_TOKEN=body["token"])
        pushed.append(subprocess.run([modelops_bin(), "versions", "push", body["model"], rules, "--card", card, "--json"], capture_output=True, text=True, env=env))

    class Receiver(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "raw": raw})
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            threading.Thread(target=external_trainer, args=(json.loads(raw),)).start()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    proc, s = start_server(tmp_path / "data", env=dict(os.environ, RETRAIN_SECRET=secret))
    try:
        s.cli("models", "create", "churn", "--kind", "rules", "--owner", "admin", "--risk-tier", "low")
        s.cli("jobs", "define", "churn", "--webhook", f"http://127.0.0.1:{httpd.server_address[1]}/dags/retrain", "--secret-env", "RETRAIN_SECRET", "--timeout", "60s")
        run_id = int(s.cli("retrain", "churn").stdout.strip())
        for _ in range(200):
            run = json.loads(s.cli("jobs", "show", run_id, "--json").stdout)
            if run.get("ended_at"):
                break
            time.sleep(0.1)
        assert run["state"] == "approved", run
        assert run["version"] == 1 and "deployer" in run["reason"], run
        assert pushed and pushed[0].returncode == 0, pushed and pushed[0].stderr
        # The webhook: signed with the secret, carrying the run and a token.
        (call,) = received
        assert call["headers"]["x-modelops-signature"] == "sha256=" + hmac.new(secret.encode(), call["raw"], hashlib.sha256).hexdigest()
        body = json.loads(call["raw"])
        assert body["run"] == run_id and body["model"] == "churn" and body["trigger"] == "manual" and body["window"] is None
        # The token died with the job.
        stale = subprocess.run([modelops_bin(), "models", "list"], capture_output=True, text=True, env=dict(os.environ, MODELOPS_SERVER=s.url, MODELOPS_TOKEN=body["token"]))
        assert stale.returncode != 0 and "revoked" in stale.stderr, stale.stderr
        version = json.loads(s.cli("versions", "show", "churn", "1", "--json").stdout)
        assert version["state"] == "approved" and version["lineage"]["retrain"]["job_run"] == run_id
        events = json.loads(s.cli("audit", "log", "--subject", "model/churn/version/1", "--action", "version.approve", "--json").stdout)["events"]
        assert events[0]["actor"] == "system" and "without a further approval" in events[0]["after"]["by_policy"], events
        assert "POST http://127.0.0.1" in s.cli("jobs", "logs", run_id).stdout
    finally:
        stop_server(proc)
        httpd.shutdown()


def credit_story(tmp_path, scenario):
    return run_example(tmp_path, "credit-rules", scenario)


def test_a_rule_change_is_approved_shadowed_then_canaried_and_promoted(tmp_path):
    f = credit_story(tmp_path, "change")
    assert f["state"] == "promoted", f["reason"]
    assert f["serving"] == [2] and f["shadows"] == []
    steps = actions(f)
    shadow = next(e for e in f["audit_story"] if e["state"] == "canary")
    # 200 calls compared; a 22k threshold moves a few percent of decisions.
    agreed = float(shadow["reason"].split("decisions agreed on ")[1].split("%")[0])
    assert 90.0 <= agreed < 100.0, shadow["reason"]
    order = [
        index(steps, "version.create", "model/credit-policy/version/2", actor="dana"),
        index(steps, "version.approve", "model/credit-policy/version/2", actor="vic"),
        index(steps, "retrain.progress", state="shadow"),
        index(steps, "retrain.progress", state="canary"),
        index(steps, "version.promote", "model/credit-policy/version/2", actor="system"),
        index(steps, "retrain.progress", state="promoted"),
    ]
    assert order == sorted(order), steps
    assert f["audit_verified"]


def test_a_rule_change_that_moves_too_many_decisions_stops_at_the_shadow(tmp_path):
    f = credit_story(tmp_path, "too-strict")
    assert f["state"] == "rolled_back", f["reason"]
    assert "below the 90.0%" in f["reason"] and "served nobody" in f["reason"]
    assert f["serving"] == [1] and f["shadows"] == []
    assert {"monitor": "retraining", "rule": "shadow_disagreed"} in f["alerts"]
    steps = actions(f)
    assert not any(a == "deployment.advance" for a, _, _, _ in steps), steps
    assert f["audit_verified"]


def prompt_story(tmp_path, scenario):
    return run_example(tmp_path, "prompt-swap", scenario)


def test_a_cheaper_prompt_is_approved_by_policy_canaried_and_promoted(tmp_path):
    f = prompt_story(tmp_path, "brief")
    assert f["state"] == "promoted", f["reason"]
    assert f["serving"] == [2]
    steps = actions(f)
    # Low tier: no person is asked; the approval is the system's, by policy.
    approve = index(steps, "version.approve", "model/support-reply/version/2", actor="system")
    assert "without a further approval" in f["audit_story"][approve]["reason"]
    assert approve < index(steps, "retrain.progress", state="canary") < index(steps, "version.promote", "model/support-reply/version/2") < index(steps, "retrain.progress", state="promoted")
    assert f["audit_verified"]


def test_a_costlier_prompt_is_rolled_back_by_its_canary(tmp_path):
    f = prompt_story(tmp_path, "detailed")
    assert f["state"] == "rolled_back", f["reason"]
    assert "cost" in f["reason"] and "champion keeps serving" in f["reason"]
    assert f["serving"] == [1]
    assert {"monitor": "retraining", "rule": "canary_rolled_back"} in f["alerts"]
    assert f["audit_verified"]
