#!/usr/bin/env bash
# One command: set up, run the offline demo suite, build the leaderboard site.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
status=0
harness run suites/demo.yaml "$@" || status=$?
harness site --db results/harness.db --out site
exit $status
