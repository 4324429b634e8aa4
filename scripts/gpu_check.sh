#!/usr/bin/env bash
# GPU checks in one go, for a machine with a CUDA GPU (CI has none). Run from the repository root:
#
#   bash scripts/gpu_check.sh            # ~10 min on one GPU after the environment is built
#
# 1. builds .venv-gpu: CUDA-build torch 2.14.1 + torchvision 0.29.1 + timm + harness[demo,dev]
# 2. runs the tests that skip without CUDA (tests/test_gpu_paths.py and the CUDA parts of the timing,
#    fine-tune and vision tests; HARNESS_REQUIRE_VISION=1 so none of the vision tests can skip)
# 3. bf16-vs-fp32 fine-tune throughput: random-init BERT-base and ResNet-50 (scripts/bench_finetune_precision.py)
# 4. the encode benchmark with a random-init BERT-base, fp32 and bf16 (scripts/bench_encode.py)
# 5. harness's latency measurement of ResNet-50 and BERT-base, fp32 vs a bf16 copy (scripts/bench_latency_precision.py)
# and writes every table into docs/benchmarks.md between the "gpu-check" markers (replacing the last run).
# Raw outputs stay in ${OUT:-gpu-check}/.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-check}
VENV=${HARNESS_GPU_VENV:-.venv-gpu}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
start=$(date +%s)
[ -x "$VENV/bin/python" ] || "${PYTHON:-python3}" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "torch==2.14.1" "torchvision==0.29.1" timm nvidia-ml-py -e ".[demo,dev]"
echo "gpu env: $(( $(date +%s) - start )) s" | tee "$OUT/env.txt"
. "$VENV/bin/activate"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HARNESS_REQUIRE_VISION=1
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU visible'; print(torch.cuda.get_device_name(0))"

run() {  # name, command...: tee the output to $OUT/name.txt; a failing step is recorded, the others still run
  local name=$1; shift
  echo "== $name: $*" | tee "$OUT/$name.txt"
  if ! "$@" 2>&1 | tee -a "$OUT/$name.txt"; then echo "FAILED: $name" | tee -a "$OUT/$name.txt" "$OUT/failed.txt"; fi
}
run tests python -m pytest -q -rs tests/test_gpu_paths.py tests/test_timing.py tests/test_vision.py tests/test_finetune.py
run finetune_precision python scripts/bench_finetune_precision.py --device cuda --models bert,resnet50 --precisions fp32,bf16
run encode_fp32 python scripts/bench_encode.py --device cuda --n 2048 --batch-size 128 --random-init-config bert-base
run encode_bf16 python scripts/bench_encode.py --device cuda --n 2048 --batch-size 128 --random-init-config bert-base --precision bf16
run latency_resnet50 python scripts/bench_latency_precision.py --model resnet50 --device cuda --batch-size 64
run latency_bert python scripts/bench_latency_precision.py --model bert-base --device cuda --batch-size 64

python - "$OUT" <<'PY'
import datetime, pathlib, re, sys
out = pathlib.Path(sys.argv[1])
doc = pathlib.Path("docs/benchmarks.md")
parts = [
    "<!-- gpu-check:start -->",
    "## GPU checks (`scripts/gpu_check.sh`)",
    "",
    f"Run {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC on {(out / 'gpu.txt').read_text().strip()}.",
    "",
]
for name in ("tests", "finetune_precision", "encode_fp32", "encode_bf16", "latency_resnet50", "latency_bert"):
    text = (out / f"{name}.txt").read_text().rstrip()
    parts += [f"### {name}", "", "```", text[-6000:], "```", ""]
parts.append("<!-- gpu-check:end -->")
section = "\n".join(parts)
body = doc.read_text()
pattern = re.compile(r"<!-- gpu-check:start -->.*<!-- gpu-check:end -->", re.S)
body = pattern.sub(lambda _: section, body) if pattern.search(body) else body.rstrip() + "\n\n" + section + "\n"
doc.write_text(body)
print(f"wrote the GPU section of {doc}")
PY
[ ! -s "$OUT/failed.txt" ] || { echo "some GPU checks failed:"; cat "$OUT/failed.txt"; exit 1; }
