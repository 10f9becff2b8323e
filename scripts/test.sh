#!/usr/bin/env bash
# Set up (if needed), then lint and run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-3}
.venv/bin/ruff check .
# One test per usable core, at most two: most of a Ray test's time is start-up and waiting, not both cores
# (measured: 7 min of CPU in an 18-min serial run). On one core a second worker only adds its own Python,
# TensorFlow and Ray, and contention (measured: 104 s against 76 s serially for tests/test_trainable.py and
# tests/test_models.py under taskset -c 1). Modules with an expensive module fixture are one xdist_group each.
cpus=$(.venv/bin/python -m rtune_fashion.cpus)
exec .venv/bin/python -m pytest -n "$(( cpus < 2 ? cpus : 2 ))" --dist loadgroup "$@"
