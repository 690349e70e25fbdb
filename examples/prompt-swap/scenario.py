"""The prompt-swap example: an LLM prompt version swapped through a canary
whose rollback condition watches latency and cost, against a local
OpenAI-compatible upstream (`upstream.py`; no provider is reachable here).

1. A server is configured with the upstream and a price for its model. The
   support assistant `support-reply` (an `llm` model, low tier: the policy
   asks for no person) serves `support-live` with `prompt_v1.yaml`.
2. dana defines the assistant's job: `swap_prompt.sh` registers the prompt
   the team wrote; the rollout is a canary (20% → 50%, then all) that rolls
   back when a call costs 1.5 times the champion's, or is much slower.
3. dana starts a run by hand; the new prompt is approved by policy (low
   tier), canaried on live questions, and promoted — or rolled back.

`--scenario brief` (shorter answers: cheaper — promoted) or `detailed`
(answers six times longer: costlier — rolled back by the canary, the
champion prompt serving on).
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import upstream  # noqa: E402
from common import Server, follow, log, report_run  # noqa: E402

QUESTIONS = [
    "My card was declined abroad, why?",
    "How do I raise my contactless limit?",
    "I see a payment I do not recognise.",
    "Can I freeze my card for a week?",
    "When does my statement close?",
]

CONDITION = (
    "canary.requests >= 20 && stable.requests >= 20 && ("
    "canary.cost / double(canary.requests) > 1.5 * (stable.cost / double(stable.requests))"
    " || canary.p99_ms > 2.0 * stable.p99_ms + 100.0)"
)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", choices=["brief", "detailed"], default="brief")
    ap.add_argument("--small", action="store_true", help="the CI scale")
    ap.add_argument("--binary", default="modelops")
    ap.add_argument("--json-out")
    ap.add_argument("--keep")
    args = ap.parse_args()
    hold = 30 if args.small else 100
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="modelops-prompt-"))
    folder.mkdir(parents=True, exist_ok=True)
    base_url, httpd = upstream.start()
    config = folder / "modelops.toml"
    config.write_text(
        f"""[llm.upstreams.local]
base_url = "{base_url}"
max_concurrency = 8

[llm.prices."support-model"]
prompt_per_million = 2.50
completion_per_million = 10.00
"""
    )
    server = Server(args.binary, folder, "--config", config, env=dict(os.environ))
    sent = [0]

    def send(n=10):
        for _ in range(n):
            question = QUESTIONS[sent[0] % len(QUESTIONS)]
            server.call("POST", "/api/v1/deployments/support-live/predict", {"rows": [{"question": question}]}, headers={"x-request-id": f"q-{sent[0]}"})
            sent[0] += 1

    figures = {"scenario": args.scenario}
    try:
        log(f"== modelops serving on {server.url} with the local upstream {base_url}; data in {folder}")
        server.cli("users", "create", "dana", "--role", "developer")
        server.tokens["dana"] = server.cli("tokens", "create", "--name", "example", "--user", "dana").stdout.strip()
        server.cli("models", "create", "support-reply", "--kind", "llm", "--owner", "dana", "--developer", "dana", "--risk-tier", "low",
                   "--purpose", "draft answers to card customers", "--intended-use", "drafts reviewed by an agent")
        card = folder / "card.json"
        card.write_text(json.dumps({"intended_use": "drafting answers to card customers, reviewed by an agent"}))
        v1 = server.json("versions", "push", "support-reply", HERE / "prompt_v1.yaml", "--card", card, user="dana")["version"]
        server.cli("versions", "submit", "support-reply", v1, user="dana")
        server.cli("versions", "approve", "support-reply", v1, "--comment", "prompt reviewed")
        server.cli("deploy", "create", "support-live", "--model", "support-reply", "--version", v1)
        send(20)

        prompt = HERE / f"prompt_{args.scenario}.yaml"
        log(f"== the assistant's job registers {prompt.name}; canary 20% → 50% (holds of {hold} calls), rolled back when: {CONDITION}")
        server.cli("jobs", "define", "--run-as", "dana", "support-reply", "--timeout", "2m", "--cooldown", "0s",
                   "--deployment", "support-live", "--steps", "20,50", "--hold-requests", hold, "--condition", CONDITION,
                   "--env", f"PROMPT={prompt}", "--", "bash", HERE / "swap_prompt.sh")
        run_id = int(server.cli("retrain", "support-reply", user="dana").stdout.strip())
        run = follow(server, "support-reply", run_id, lambda: send(10))
        figures.update(report_run(server, "support-reply", "support-live", run))
        figures["calls"] = sent[0]
    finally:
        server.stop()
        httpd.shutdown()
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()
