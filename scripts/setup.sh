#!/usr/bin/env bash
# Everything rtune_fashion needs on a fresh Debian/Ubuntu machine with Python 3.11+:
#   system packages (python3-venv if missing, Debian's dataset-fashion-mnist), the .venv with the project
#   and its test tools. Idempotent: a second run only checks. Run as root or with sudo available.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

"$PYTHON" - <<'PY' || { echo "setup: Python 3.11 or newer is needed (PYTHON=$PYTHON)" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

packages=()
"$PYTHON" -c "import ensurepip, venv" 2>/dev/null || packages+=("python3-venv")
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || packages+=("dataset-fashion-mnist")
if [ ${#packages[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing ${packages[*]} with apt-get"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${packages[@]}" >/dev/null
  else
    echo "setup: no apt-get; the dataset will be downloaded on first use" >&2
  fi
fi

stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setup: creating .venv and installing rtune_fashion with its dependencies (a few minutes)"
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[test]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
