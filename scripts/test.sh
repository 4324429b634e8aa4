#!/usr/bin/env bash
# One command: set up and run the whole test suite (CI calls exactly this).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Browser tests drive Debian's Chromium; install it when we can (root + apt), as CI machines start bare.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
    || echo "warning: could not install chromium; browser tests will be skipped" >&2
fi
. .venv/bin/activate
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
ruff check harness tasks tests scripts
mypy harness tasks
python -m pytest "$@"
# The torchvision / timm adapters run in a second environment (CUDA-build torch + torchvision + timm,
# see scripts/vision_env.sh); HARNESS_REQUIRE_VISION=1 turns a skipped vision test into a failure.
# Opt out with HARNESS_SKIP_VISION=1 (e.g. a quick local run); CI runs it.
if [ "${HARNESS_SKIP_VISION:-0}" != 1 ]; then
  bash scripts/vision_env.sh
  vision_start=$(date +%s)
  HARNESS_REQUIRE_VISION=1 .venv-vision/bin/python -m pytest tests/test_vision.py -v -rs -s -p no:cacheprovider
  echo "vision tests: $(( $(date +%s) - vision_start )) s"
fi
