#!/usr/bin/env bash
# The second virtual environment for the torchvision / timm adapters: a CUDA-build torch 2.14.1 with
# torchvision 0.29.1 and timm (the registry's torchvision needs that torch; the default .venv keeps the
# CPU-only torch 2.13.0, which torchvision cannot import). A CUDA-build torch runs on a CPU-only machine.
# torch + torchvision + timm: 69 s / 5.5 GB on a quiet 2-core machine, 363 s with a load average of 11;
# see the notes in README. Safe to re-run (an existing environment is reused). Prints its own install time.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${HARNESS_VISION_VENV:-.venv-vision}
PY=${PYTHON:-python3}
start=$(date +%s)
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "torch==2.14.1" "torchvision==0.29.1" timm
torch_done=$(date +%s)
# harness itself without its text-model dependencies (transformers, sentence-transformers, onnxruntime,
# datasets: imported lazily, unused by the vision tests, and most of this environment's install time);
# the rest of pyproject's [project] dependencies (pip then reports the deliberately missing text deps as a
# "dependency conflict"; that message is expected):
"$VENV/bin/python" -m pip install -q --no-deps -e .
"$VENV/bin/python" -m pip install -q scikit-learn threadpoolctl psutil scipy numpy pandas pyyaml sqlite-utils \
  typer rich jinja2 pillow datasketch safetensors pytest
end=$(date +%s)
echo "vision env $VENV: torch+torchvision+timm $((torch_done - start)) s, harness deps $((end - torch_done)) s, total $((end - start)) s, $(du -sh "$VENV" | cut -f1)"
