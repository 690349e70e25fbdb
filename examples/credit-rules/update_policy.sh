#!/usr/bin/env bash
# The credit policy's "retraining" job: a rule-based model is not fitted,
# it is re-authored — this job takes the policy as the risk team changed it
# (the low-income threshold, $THRESHOLD) and registers it as the model's
# next version with the run's token; the gates, the shadow comparison and
# the canary do the rest.
set -euo pipefail
echo "run $MODELOPS_RUN of $MODELOPS_MODEL: low-income threshold $THRESHOLD (was 20000)"
sed "s/__THRESHOLD__/$THRESHOLD/" "$TEMPLATE" > "$MODELOPS_WORK_DIR/policy.yaml"
printf '{"intended_use": "credit line decisions for new retail applications", "limitations": "rule-based; thresholds set by the credit risk committee"}' > "$MODELOPS_WORK_DIR/card.json"
"$MODELOPS_BIN" versions push "$MODELOPS_MODEL" "$MODELOPS_WORK_DIR/policy.yaml" \
    --card "$MODELOPS_WORK_DIR/card.json" --description "low-income threshold $THRESHOLD (policy memo 2026-14)"
