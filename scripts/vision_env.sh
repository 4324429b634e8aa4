#!/usr/bin/env bash
# The second virtual environment for the torchvision / timm adapters: a CUDA-build torch 2.14.1 with
# torchvision 0.29.1 and timm (the registry's torchvision needs that torch; the default .venv keeps the
# CPU-only torch 2.13.0, which torchvision cannot import). A CUDA-build torch runs on a CPU-only machine.
# Measured on a 2-core machine: ~70 s and 5.5 GB for torch + torchvision + timm, plus harness's own
# dependencies. Safe to re-run (an existing environment is reused). Prints its own install time.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${HARNESS_VISION_VENV:-.venv-vision}
PY=${PYTHON:-python3}
start=$(date +%s)
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "torch==2.14.1" "torchvision==0.29.1" timm
torch_done=$(date +%s)
"$VENV/bin/python" -m pip install -q -e . pytest
end=$(date +%s)
echo "vision env $VENV: torch+torchvision+timm $((torch_done - start)) s, harness deps $((end - torch_done)) s, total $((end - start)) s, $(du -sh "$VENV" | cut -f1)"
