#!/usr/bin/env bash
# Set up (if needed) and run the main job: BOHB over our CNN space. Extra arguments go to the script,
# e.g. bash scripts/run.sh --smoke-test
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-3}
exec .venv/bin/python experiments/cnn_bohb.py "$@"
