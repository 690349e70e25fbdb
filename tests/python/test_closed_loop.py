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
SCENARIO = REPO / "examples" / "fraud" / "scenario.py"
WINDOW = 200  # calls per monitor window at --small


def story(tmp_path, scenario):
    out = tmp_path / f"{scenario}.json"
    proc = subprocess.run(
        [sys.executable, SCENARIO, "--small", "--scenario", scenario, "--binary", modelops_bin(), "--json-out", out, "--keep", tmp_path / "run"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    figures = json.loads(out.read_text())
    figures["stdout"] = proc.stdout
    return figures


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
    # Detected within two windows of the injection (the first window wholly
    # after it closes 200 calls in; the loop notices while traffic flows).
    assert f["calls_to_detect"] <= 3 * WINDOW, f
    assert f["runs"] == 1
    assert f["parent_version"] == 1 and f["version"] == 2
    assert f["serving"] == [2]
    assert f["approved_by"] == "vic"
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
    assert f["time_to_detect_s"] is not None and f["time_to_recover_s"] is not None


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
