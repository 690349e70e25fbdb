#!/usr/bin/env bash
# The fraud model's retraining job, as `modelops jobs define fraud … -- bash
# retrain_job.sh` runs it: the server gives it the triggering window
# ($MODELOPS_WINDOW, Parquet, with the `ground_truth` that arrived for each
# call) and a token that registers one version of this model
# ($MODELOPS_TOKEN, read by the modelops CLI with $MODELOPS_SERVER).
set -euo pipefail
echo "run $MODELOPS_RUN of $MODELOPS_MODEL (trigger: $MODELOPS_TRIGGER, parent version ${MODELOPS_PARENT_VERSION:-none})"
if [ -n "${FAIL:-}" ]; then
    echo "the feature store is unreachable (FAIL is set)" >&2
    exit 3
fi
if [ -z "${MODELOPS_WINDOW:-}" ]; then
    echo "no window to learn from (a run by hand or by the schedule)" >&2
    exit 2
fi
echo "window: $MODELOPS_WINDOW_DEPLOYMENT $MODELOPS_WINDOW_START → $MODELOPS_WINDOW_END"
out="$MODELOPS_WORK_DIR/out"
worse=()
if [ -n "${WORSE:-}" ]; then worse=(--worse); fi
"${PYTHON:-python3}" "$TRAINER" --data "$MODELOPS_WINDOW" --out "$out" "${worse[@]}"
auc=$("${PYTHON:-python3}" -c "import json,sys; print(json.load(open(sys.argv[1]))['roc_auc'])" "$out/metrics.json")
"$MODELOPS_BIN" versions push "$MODELOPS_MODEL" "$out/model.onnx" \
    --card "$out/card.json" --reference "$out/reference.csv" \
    --description "retrained on the drifted window by run $MODELOPS_RUN" --metric "auc=$auc"
