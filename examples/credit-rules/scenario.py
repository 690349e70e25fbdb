"""The credit-rules example: a rule-based credit policy changed to a new
version through the same gates as any model, shadowed on live traffic —
its decisions compared with the policy in force — before a canary promotes
it. Against a real `modelops serve`, through the CLI and the REST API.

1. The policy in force (`policy_v1.yaml`, medium tier: one independent
   validator approves) serves the `credit-live` deployment.
2. dana defines the policy's job: `update_policy.sh` writes the risk
   committee's change (a new low-income threshold) and registers it; the
   rollout shadows the new version for SHADOW calls, needs 90% of its
   decisions to agree, then runs a canary.
3. dana starts the run by hand (`modelops retrain credit-policy`); the new
   version waits for vic, who approves it; the shadow compares decisions on
   live applications; the canary promotes it.

`--scenario change` (threshold 22,000: a few percent of decisions move —
promoted) or `too-strict` (threshold 45,000: about half move — the rollout
stops at the shadow, no applicant ever got a decision from it).
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from common import Server, follow, log, report_run, wait_for_run  # noqa: E402


def applications(n, seed):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {
            "age": int(rng.integers(18, 76)),
            "income": float(round(rng.lognormal(np.log(38000), 0.45), 2)),
            "employment": str(rng.choice(["salaried", "salaried", "salaried", "self", "none"])),
            "existing_customer": bool(rng.random() < 0.4),
        }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", choices=["change", "too-strict"], default="change")
    ap.add_argument("--small", action="store_true", help="the CI scale")
    ap.add_argument("--binary", default="modelops")
    ap.add_argument("--json-out")
    ap.add_argument("--keep")
    args = ap.parse_args()
    shadow_calls = 200 if args.small else 1000
    threshold = "22000.0" if args.scenario == "change" else "45000.0"
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="modelops-credit-"))
    folder.mkdir(parents=True, exist_ok=True)
    server = Server(args.binary, folder)
    traffic = applications(100_000, seed=11)
    sent = [0]

    def send(n=25):
        for _ in range(n):
            server.call("POST", "/api/v1/deployments/credit-live/predict", {"rows": [next(traffic)]}, headers={"x-request-id": f"app-{sent[0]}"})
            sent[0] += 1

    figures = {"scenario": args.scenario, "shadow_calls": shadow_calls}
    try:
        log(f"== modelops serving on {server.url}; data in {folder}")
        for user, role in [("dana", "developer"), ("vic", "validator")]:
            server.cli("users", "create", user, "--role", role)
            server.tokens[user] = server.cli("tokens", "create", "--name", "example", "--user", user).stdout.strip()
        server.cli("models", "create", "credit-policy", "--kind", "rules", "--owner", "dana", "--developer", "dana", "--risk-tier", "medium",
                   "--purpose", "credit line decisions", "--intended-use", "new retail applications")
        card = folder / "card.json"
        card.write_text(json.dumps({"intended_use": "credit line decisions for new retail applications"}))
        v1 = server.json("versions", "push", "credit-policy", HERE / "policy_v1.yaml", "--card", card, user="dana")["version"]
        server.cli("versions", "submit", "credit-policy", v1, user="dana")
        server.cli("versions", "approve", "credit-policy", v1, "--comment", "policy memo 2026-03 implemented as written", user="vic")
        server.cli("deploy", "create", "credit-live", "--model", "credit-policy", "--version", v1)
        send(100)

        log(f"== the policy's job: update_policy.sh, then a shadow of {shadow_calls} calls (90% of decisions must agree) and a canary")
        server.cli("jobs", "define", "--run-as", "dana", "credit-policy", "--timeout", "2m", "--cooldown", "0s",
                   "--deployment", "credit-live", "--shadow-calls", shadow_calls, "--min-agreement", "0.9", "--shadow-output", "decision",
                   "--steps", "25,100", "--hold-requests", str(shadow_calls // 4),
                   "--env", f"THRESHOLD={threshold}", "--env", f"TEMPLATE={HERE / 'policy_change.yaml.in'}",
                   "--", "bash", HERE / "update_policy.sh")
        run_id = int(server.cli("retrain", "credit-policy", user="dana").stdout.strip())
        log(f"== dana started run {run_id} (the risk committee's threshold: {threshold})")
        run = wait_for_run(server, "credit-policy", lambda r: "waits for approval" in r["reason"] or r.get("ended_at"), between=lambda: send(10))
        log(f"   run {run['id']}: {run['reason']}")
        if not run.get("ended_at"):
            server.cli("versions", "approve", "credit-policy", run["version"], "--comment", "matches policy memo 2026-14", user="vic")
            log(f"== vic approved version {run['version']}")
        run = follow(server, "credit-policy", run_id, lambda: send(25))
        figures.update(report_run(server, "credit-policy", "credit-live", run))
        figures["calls"] = sent[0]
    finally:
        server.stop()
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()
