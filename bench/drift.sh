#!/usr/bin/env bash
# One command: generate 1M x 25 Parquet data, time Evidently 0.7.23 and
# `modelops drift` (both modes, and a second window against a saved profile).
# Usage: bench/drift.sh [--rows N]   (needs the .venv from tests/python/requirements.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/time ]; then
  apt-get update -qq && apt-get install -y -qq time
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -p modelops
PY="${PYTHON:-.venv/bin/python}"
exec "$PY" bench/drift_bench.py --bin "$CARGO_TARGET_DIR/release/modelops" "$@"
