#!/usr/bin/env bash
# Create .venv and install harness with the offline demo assets. Safe to re-run.
# torch is pinned to the CPU wheel first: an unpinned torch would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q "torch==${HARNESS_TORCH_VERSION:-2.13.0}"
python -m pip install -q -e ".[demo,dev,ray]"
