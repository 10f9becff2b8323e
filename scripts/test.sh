#!/usr/bin/env bash
# Set up (if needed), then lint and run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-3}
.venv/bin/ruff check .
# Two tests at a time: most of a Ray test's time is start-up and waiting, not both cores (measured: 7 min
# of CPU in an 18-min serial run). Modules with an expensive module fixture are one xdist_group each.
exec .venv/bin/python -m pytest -n 2 --dist loadgroup "$@"
