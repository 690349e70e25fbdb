"""The fraud example: concept drift in card transactions, caught and fixed by
the closed loop, end to end, against a real `modelops serve`.

What happens (all through the public CLI and REST API):

1. A server starts in a fresh folder; a policy makes `fraud` a high-tier
   model whose versions need one independent validator's approval.
2. dana (developer) trains version 1 on "before" transactions, pushes it
   with its reference data; vic (validator) approves it; it serves all of
   the `fraud-live` deployment. A monitor cuts windows of WINDOW calls and
   opens a retraining request when the window's data drifts.
3. dana defines the retraining job: `retrain_job.sh` (train on the
   triggering window's ground truth, push the result) with a canary rollout
   whose rollback condition catches a model flagging most traffic as fraud.
4. Traffic flows; ground truth arrives for every call. At row DRIFT the
   fraud pattern changes. The monitor's alert starts the job; its version
   waits for a person (the policy) — vic approves it; the canary runs on
   live traffic and promotes (or, with `--worse`, rolls back by itself).
5. The story is printed: time-to-detect, time-to-recover, the approvals,
   the audit events; the audit log is verified.

`--scenario good|worse|failing`: a good retrain, a deliberately worse one
(the canary must roll back, the champion stays), a failing job (recorded,
alerted, no version). `--small` runs the CI scale. `--json-out FILE` writes
the figures for the test suite.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import data  # noqa: E402
from common import Server, audit_story, log  # noqa: E402

FEATURES = ["amount", "hour", "merchant_risk", "distance_km", "velocity_1h", "card_age_days"]


def send(server, frame, offset, labels=True):
    """One call per transaction, then its ground truth (which arrives later
    in real life; at once here). Returns how many fraud calls were flagged."""
    sent = []
    for i, row in enumerate(frame.itertuples(index=False)):
        rid = f"tx-{offset + i}"
        if RATE[0]:
            # Paced like a card processor's steady stream, not a burst.
            due = PACE_START[0] + len(CALL_TIMES) / RATE[0]
            if due > time.time():
                time.sleep(due - time.time())
        CALL_TIMES.append(datetime.now(timezone.utc))
        server.call("POST", "/api/v1/deployments/fraud-live/predict", {"rows": [{f: [float(getattr(row, f))] for f in FEATURES}]}, headers={"x-request-id": rid})
        sent.append({"request_id": rid, "label": int(row.is_fraud)})
    if labels:
        server.call("POST", "/api/v1/deployments/fraud-live/labels", {"labels": sent}, user="dana")
    return len(sent)


# When each call was sent (this machine's clock, which the server shares).
CALL_TIMES = []
# Calls per second (0: as fast as the server answers), and when pacing began.
RATE = [0.0]
PACE_START = [0.0]


def at(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", choices=["good", "worse", "failing"], default="good")
    ap.add_argument("--small", action="store_true", help="the CI scale: windows of 200 calls")
    ap.add_argument("--binary", default=os.environ.get("MODELOPS_BIN", "modelops"))
    ap.add_argument("--json-out")
    ap.add_argument("--keep", help="keep the server's folder here")
    ap.add_argument("--rate", type=float, help="transactions per second (default 200; --small: as fast as answered)")
    args = ap.parse_args()
    RATE[0] = args.rate if args.rate is not None else (0.0 if args.small else 200.0)

    window = 200 if args.small else 400
    before_rows = 2 * window
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="modelops-fraud-"))
    folder.mkdir(parents=True, exist_ok=True)
    frame = data.generate(before_rows + 40 * window + 3000, before_rows + 3000, seed=7)
    train_a = frame.iloc[:3000]
    live = frame.iloc[3000:].reset_index(drop=True)
    drift_at = before_rows  # the first "after" row of the live traffic

    server = Server(args.binary, folder)
    figures = {"scenario": args.scenario, "window_calls": window, "drift_at_call": drift_at}
    try:
        log(f"== modelops serving on {server.url}; data in {folder}")
        server.cli("policy", "load", HERE / "policy.toml")
        for user, role in [("dana", "developer"), ("vic", "validator")]:
            server.cli("users", "create", user, "--role", role)
            server.tokens[user] = server.cli("tokens", "create", "--name", "example", "--user", user).stdout.strip()
        server.cli("models", "create", "fraud", "--kind", "onnx", "--owner", "dana", "--developer", "dana", "--risk-tier", "high",
                   "--purpose", "flag fraudulent card transactions", "--intended-use", "card transactions, EU retail")

        log("== version 1: trained on the transactions before the drift")
        train_a.to_csv(folder / "before.csv", index=False)
        subprocess.run([sys.executable, HERE / "train.py", "--data", folder / "before.csv", "--out", folder / "v1"], check=True)
        v1 = server.json("versions", "push", "fraud", folder / "v1" / "model.onnx", "--card", folder / "v1" / "card.json",
                         "--reference", folder / "v1" / "reference.csv", "--description", "logistic regression, before the drift", user="dana")["version"]
        server.cli("versions", "submit", "fraud", v1, user="dana")
        server.cli("versions", "approve", "fraud", v1, "--comment", "validated on the 2026 holdout", user="vic")
        server.cli("deploy", "create", "fraud-live", "--model", "fraud", "--version", v1)
        server.cli("monitor", "create", "fraud-live", "drift", "--rows", window, "--features", ",".join(FEATURES),
                   "--prediction", "label", "--score", "probabilities_1", "--pos-label", "1",
                   "--alert", "data_drift=drift.dataset_drift", "--retrain")

        # A command runs on the server's host: the operator (admin) installs
        # it, for dana, whose work the versions are; a rollout is a deployer's
        # (or admin's) to give.
        job = ["jobs", "define", "fraud", "--run-as", "dana", "--timeout", "5m", "--cooldown", "0s",
               "--deployment", "fraud-live", "--steps", "50,100", "--hold-requests", str(window // 4),
               "--condition", "canary.requests >= 30 && (canary.errors >= 3 || canary.prediction_mean > 0.5)",
               "--env", f"TRAINER={HERE / 'train.py'}", "--env", f"PYTHON={sys.executable}",
               "--env", f"WORSE={'1' if args.scenario == 'worse' else ''}", "--env", f"FAIL={'1' if args.scenario == 'failing' else ''}",
               "--", "bash", HERE / "retrain_job.sh"]
        server.cli(*job)
        log(server.cli("jobs", "definition", "fraud").stdout)

        log(f"== traffic: {drift_at} calls before the drift, then the new fraud pattern (windows of {window} calls; {RATE[0] or 'as many'} calls/s)")
        PACE_START[0] = time.time()
        sent = 0
        run = None
        approved_by = None
        deadline = time.time() + (240 if args.small else 900)
        while time.time() < deadline:
            chunk = live.iloc[sent:sent + window // 4]
            if chunk.empty:
                break
            sent += send(server, chunk, sent)
            runs = server.json("jobs", "list", "--model", "fraud")["runs"]
            if runs and run is None:
                run = runs[0]
                log(f"== drift detected: run {run['id']} started by alert {run.get('alert')} ({sent - drift_at} calls of the new pattern sent so far)")
            if runs:
                run = runs[0]
                if run["state"] == "awaiting_approval" and "waits for approval" in run["reason"] and approved_by is None:
                    log(f"   run {run['id']}: {run['reason']}")
                    log(f"== vic approves version {run['version']} (the policy asks a person for high-tier models)")
                    server.cli("versions", "approve", "fraud", run["version"], "--comment", "retrained on the drifted window; holdout AUC checked", user="vic")
                    approved_by = "vic"
                if run["state"] in ("promoted", "rolled_back", "failed", "timed_out", "no_version", "rejected"):
                    break
        if run is None:
            raise SystemExit("no retraining run started: the drift was not detected")
        # Until the run ends, the transactions keep coming (the canary needs
        # them); the drifted ones again from the start when they run out.
        for _ in range(600):
            run = server.json("jobs", "show", str(run["id"]))
            if run.get("ended_at"):
                break
            start = drift_at + (sent - drift_at) % (len(live) - drift_at)
            chunk = live.iloc[start:start + window // 4]
            sent += send(server, chunk, sent)
        log(f"== run {run['id']}: {run['state']} — {run['reason']}")
        log(server.cli("jobs", "show", str(run["id"])).stdout)
        log("-- the job's output:")
        log(server.cli("jobs", "logs", str(run["id"])).stdout)
        deployment = server.call("GET", "/api/v1/deployments/fraud-live")
        serving = [r["version"] for r in deployment["routes"]]
        alerts = server.json("alerts", "list", "--deployment", "fraud-live")["alerts"]
        figures["runs"] = len(server.json("jobs", "list", "--model", "fraud")["runs"])
        figures.update({
            "run": run["id"], "state": run["state"], "reason": run["reason"], "version": run.get("version"),
            "parent_version": run.get("parent_version"), "approved_by": approved_by, "serving": serving,
            "alerts": [{"rule": a["rule"], "monitor": a["monitor"]} for a in alerts],
        })
        # The clock of the story, from the server's own records: the first
        # drifted call, the alert, the job, the approval, the canary's end.
        drifted = CALL_TIMES[drift_at]
        fired = min(at(a["fired_at"]) for a in alerts if a["monitor"] == "drift")
        figures["calls_to_detect"] = sum(1 for t in CALL_TIMES[drift_at:] if t < fired)
        figures["time_to_detect_s"] = round((fired - drifted).total_seconds(), 2)
        if run.get("job_seconds") is not None:
            figures["job_s"] = run["job_seconds"]
        if run["state"] == "promoted":
            figures["time_to_recover_s"] = round((at(run["ended_at"]) - drifted).total_seconds(), 2)
        if run.get("version"):
            v = server.json("versions", "show", "fraud", run["version"])
            figures["lineage"] = v.get("lineage", {})
        log("== the audit events of the story")
        lines, figures["audit_story"] = audit_story(
            server, ["model/fraud*", "deployment/fraud-live*"], r"^(retrain\.|version\.(create|submit|approve|promote)|deployment\.(advance|rollback|update)|alert\.fire)"
        )
        log("\n".join(lines))
        verify = server.cli("audit", "verify", check=False)
        figures["audit_verified"] = verify.returncode == 0
        log(verify.stdout.strip() or verify.stderr.strip())
        log(f"== {json.dumps({k: figures[k] for k in ('state', 'calls_to_detect', 'time_to_detect_s', 'job_s', 'time_to_recover_s', 'serving') if k in figures})}")
    finally:
        server.stop()
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()
