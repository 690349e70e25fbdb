#!/usr/bin/env bash
# The support assistant's "retraining" job: an LLM's behaviour is changed by
# its prompt, so this job registers the prompt the team wrote ($PROMPT) as
# the model's next version, with the run's token; the policy, and the
# canary watching latency and cost, decide whether it serves.
set -euo pipefail
echo "run $MODELOPS_RUN of $MODELOPS_MODEL: new prompt $(basename "$PROMPT")"
printf '{"intended_use": "drafting answers to card customers, reviewed by an agent"}' > "$MODELOPS_WORK_DIR/card.json"
"$MODELOPS_BIN" versions push "$MODELOPS_MODEL" "$PROMPT" --card "$MODELOPS_WORK_DIR/card.json" --description "prompt: $(basename "$PROMPT" .yaml)"
